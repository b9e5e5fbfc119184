/* core.download: streams a GET body into a private temporary file (outfile.c) that becomes the target
 * only when complete, with the caller's progress function run safely inside libcurl's callback. A transfer
 * cut short can be kept in the session and resumed by the next call with a Range request; whether to retry
 * is the caller's decision (batch.download). */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"
#include "outfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BYTES (256.0 * 1024 * 1024)

typedef struct download {
    lua_State *L;
    const session *session;            /* to notice close() from the progress function */
    outfile *out;
    const char *path;
    int64_t resumed_from;              /* bytes already in the file, asked for with Range */
    int64_t max_bytes;
    int progress;                      /* stack index of the Lua progress function, 0 without one */
    long status;
    int started;                       /* a body byte of a 2xx response arrived */
    const char *failure_code;          /* set when we aborted the transfer ourselves */
    char failure[OUTFILE_MESSAGE_SIZE];
    char error_body[256];              /* the start of a non-2xx body, for the message */
    size_t error_body_len;
} download;

static int ok_status(long status) { return status >= 200 && status < 300; }

static int fail_with(download *d, const char *code, const char *what) {
    d->failure_code = code;
    if (strcmp(code, "ClientError.FileError") == 0)
        snprintf(d->failure, sizeof d->failure, "%s %s: %s", what, d->path, strerror(errno));
    else
        snprintf(d->failure, sizeof d->failure, "%s", what);
    return 1;
}

static int download_data(void *ctx, long status, const char *data, size_t len) {
    download *d = ctx;
    d->status = status;
    if (!ok_status(status)) {
        size_t room = sizeof d->error_body - 1 - d->error_body_len;
        size_t n = len < room ? len : room;
        memcpy(d->error_body + d->error_body_len, data, n);
        d->error_body_len += n;
        return 0;
    }
    if (!d->started) {
        d->started = 1;
        /* Anything but 206 Partial Content is the whole file again: start over. */
        if (status != 206 && d->out->bytes > 0 && outfile_restart(d->out))
            return fail_with(d, "ClientError.FileError", "cannot rewind the temporary file for");
    }
    if ((int64_t)len > d->max_bytes - d->out->bytes) {
        snprintf(d->failure, sizeof d->failure, "the download is larger than the %lld-byte limit (max_bytes)",
                 (long long)d->max_bytes);
        d->failure_code = "ClientError.ResponseTooLarge";
        return 1;
    }
    if (outfile_write(d->out, data, len)) return fail_with(d, "ClientError.FileError", "writing failed for");
    return 0;
}

/* Runs the caller's progress function inside libcurl's callback: under lua_pcall, so a Lua error is
 * recorded and the transfer aborted, and reported only after curl_easy_perform has returned. The counts are
 * the file's: what a resumed transfer had before is included. */
static int download_progress(void *ctx, int64_t received, int64_t total) {
    download *d = ctx;
    if (!d->progress || !ok_status(d->status)) return 0;
    int64_t base = d->status == 206 ? d->resumed_from : 0;
    lua_State *L = d->L;
    lua_pushvalue(L, d->progress);
    push_int64(L, received + base);
    push_int64(L, total > 0 ? total + base : 0);
    int rc = lua_pcall(L, 2, 1, 0);
    if (rc == 0 && d->session->close_pending) {
        lua_pop(L, 1);
        return fail_with(d, "ClientError.SessionClosed", "the session was closed during the download");
    }
    if (rc != 0) {
        const char *msg = lua_tostring(L, -1);
        d->failure_code = "ClientError.CallbackError";
        snprintf(d->failure, sizeof d->failure, "the progress function failed: %s", msg ? msg : "(not a string)");
        lua_pop(L, 1);
        return 1;
    }
    int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);   /* returning false cancels */
    lua_pop(L, 1);
    if (stop) fail_with(d, "ClientError.Cancelled", "the progress function cancelled the download");
    return stop;
}

void download_forget(session *s) {
    if (!s->partial) return;
    outfile_discard(s->partial);
    free(s->partial);
    s->partial = NULL;
}

/* Keeps a cut transfer's file in the session for the next call to resume; 0, or -1 when out of memory. */
static int keep_partial(session *s, outfile *o) {
    download_forget(s);
    if (!(s->partial = malloc(sizeof *s->partial))) return -1;
    *s->partial = *o;
    return 0;
}

static void push_file_error(lua_State *L, const char *code, const char *message, const char *path,
                            const http_result *r) {
    lua_pushnil(L);
    push_transport_error(L, code, r);
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
}

static const char *const DOWNLOAD_FIELDS[] = {
    "url", "path", "mode", "max_bytes", "on_progress", "timeout", "connect_timeout", "resume", "keep_partial",
    NULL,
};

/* core.download(session, { url, path ("-": standard output), mode?, max_bytes? (256 MiB), on_progress?,
 *                          timeout?, connect_timeout?, keep_partial?, resume? })
 *   -> { http_status, bytes, resumed, server_date? } | nil, err
 * Only a complete 2xx body reaches path; any failure leaves the target untouched and no temporary behind,
 * except that with keep_partial a transfer cut after some bytes is kept in the session (err.partial_bytes),
 * for the next call with resume = true to continue with a Range request. */
int core_download(lua_State *L) {
    session *s = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (session_unusable(L, s)) return 2;
    arg_known(L, 2, "download field", DOWNLOAD_FIELDS);
    lstr url, path;
    arg_string(L, 2, "url", 1, HEADER_VALUE, &url);
    if (!is_http_url(&url)) luaL_error(L, "bad field 'url' (an http:// or https:// URL expected)");
    arg_string(L, 2, "path", 1, NO_NUL, &path);
    int64_t mode = -1, max_bytes = (int64_t)DEFAULT_MAX_BYTES;
    arg_integer(L, 2, "mode", 0, 0777, &mode);
    arg_integer(L, 2, "max_bytes", 1, 1125899906842624.0, &max_bytes);
    long timeout_ms = arg_seconds(L, 2, "timeout"), connect_timeout_ms = arg_seconds(L, 2, "connect_timeout");
    int keep = arg_boolean(L, 2, "keep_partial"), resume = arg_boolean(L, 2, "resume");
    lua_getfield(L, 2, "on_progress");
    int progress = 0;
    if (lua_isfunction(L, -1)) progress = lua_gettop(L);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "bad field 'on_progress' (function expected, got %s)", luaL_typename(L, -1));

    watch w;
    if (watch_begin(L, &w, s->interruptible)) return 2;
    http_result r;
    memset(&r, 0, sizeof r);
    r.server_date = -1;
    outfile o;
    if (resume && s->partial && outfile_same_target(s->partial, path.s)) {
        o = *s->partial;               /* this call owns it now */
        free(s->partial);
        s->partial = NULL;
    } else {
        download_forget(s);
        char message[OUTFILE_MESSAGE_SIZE];
        if (outfile_open(&o, path.s, message, sizeof message)) {
            push_file_error(L, "ClientError.FileError", message, path.s, &r);
            watch_end(&w);
            return 2;
        }
    }

    download d;
    memset(&d, 0, sizeof d);
    d.L = L;
    d.session = s;
    d.out = &o;
    d.path = path.s;
    d.resumed_from = o.bytes;
    d.max_bytes = max_bytes;
    d.progress = progress;
    char range[48];
    const char *headers[1] = { range };
    snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)o.bytes);
    http_request req = {
        .method = "GET", .url = url.s, .headers = headers, .header_count = o.bytes > 0 ? 1 : 0,
        .timeout_ms = timeout_ms, .connect_timeout_ms = connect_timeout_ms, .on_data = download_data,
        .on_progress = download_progress, .ctx = &d, .max_bytes = max_bytes, .stop = watch_flag(&w),
    };
    s->busy = 1;
    http_status st = http_perform(s->http, &req, &r);
    s->busy = 0;
    int closed = s->close_pending;
    if (closed) session_release(s);    /* nothing below reads the response buffer */

    int results = 2;
    if (st == HTTP_INTERRUPTED) {
        outfile_discard(&o);
        transport_failure(L, &r);
    } else if (d.failure_code) {
        outfile_discard(&o);
        push_file_error(L, d.failure_code, d.failure, path.s, &r);
    } else if (st != HTTP_OK) {
        int cut = (st == HTTP_NETWORK || st == HTTP_TIMEOUT) && ok_status(r.code) && o.bytes > 0;
        int64_t have = o.bytes;
        if (!(keep && cut && !closed && keep_partial(s, &o) == 0)) {
            outfile_discard(&o);
            have = 0;
        }
        transport_failure(L, &r);
        if (have) {
            push_int64(L, have);
            lua_setfield(L, -2, "partial_bytes");
        }
    } else if (!ok_status(r.code)) {
        outfile_discard(&o);
        for (size_t i = 0; i < d.error_body_len; i++)       /* printable text only in a message */
            if ((unsigned char)d.error_body[i] < 0x20 || (unsigned char)d.error_body[i] >= 0x7f) d.error_body[i] = ' ';
        d.error_body[d.error_body_len] = '\0';
        lua_pushnil(L);
        push_transport_error(L, "ClientError.HttpStatusCodeError", &r);
        lua_pushfstring(L, "HTTP status %d from the download URL: %s", (int)r.code, d.error_body);
        lua_setfield(L, -2, "message");
    } else {
        char message[OUTFILE_MESSAGE_SIZE];
        int restart_failed = r.code != 206 && !d.started && o.bytes > 0 && outfile_restart(&o);  /* empty 200 */
        int64_t bytes = o.bytes;
        if (restart_failed || outfile_commit(&o, (int)mode, message, sizeof message)) {
            if (restart_failed) {
                snprintf(message, sizeof message, "cannot rewind the temporary file for %s: %s", path.s, strerror(errno));
                outfile_discard(&o);
            }
            push_file_error(L, "ClientError.FileError", message, path.s, &r);
        } else {
            lua_createtable(L, 0, 4);
            lua_pushinteger(L, (lua_Integer)r.code);
            lua_setfield(L, -2, "http_status");
            push_int64(L, bytes);
            lua_setfield(L, -2, "bytes");
            lua_pushboolean(L, r.code == 206 && d.resumed_from > 0);
            lua_setfield(L, -2, "resumed");
            if (r.server_date >= 0) {
                push_int64(L, r.server_date);
                lua_setfield(L, -2, "server_date");
            }
            results = 1;
        }
    }
    watch_end(&w);                     /* last: the temporary is gone or in place before a signal goes on */
    return results;
}
