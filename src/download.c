/* core.download: streams a GET body into a file, with the caller's progress function run safely
 * inside libcurl's callback. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>


typedef struct download {
    lua_State *L;
    const session *session;            /* to notice close() from the progress function */
    const char *path;
    FILE *file;
    int progress;                      /* stack index of the Lua progress function, 0 without one */
    long status;
    int64_t bytes;
    const char *failure_code;          /* set when we aborted the transfer ourselves */
    char failure[256];
    char error_body[256];              /* the start of a non-2xx body, for the message */
    size_t error_body_len;
} download;

static int ok_status(long status) { return status >= 200 && status < 300; }

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
    if (!d->file && !(d->file = fopen(d->path, "wb"))) {
        d->failure_code = "ClientError.FileError";
        snprintf(d->failure, sizeof d->failure, "cannot open the output file: %s", strerror(errno));
        return 1;
    }
    if (fwrite(data, 1, len, d->file) != len) {
        d->failure_code = "ClientError.FileError";
        snprintf(d->failure, sizeof d->failure, "writing the output file failed: %s", strerror(errno));
        return 1;
    }
    d->bytes += (int64_t)len;
    return 0;
}

/* Runs the caller's progress function inside libcurl's callback: under lua_pcall, so a Lua error is
 * recorded and the transfer aborted, and reported only after curl_easy_perform has returned. */
static int download_progress(void *ctx, int64_t received, int64_t total) {
    download *d = ctx;
    if (!d->progress || !ok_status(d->status)) return 0;
    lua_State *L = d->L;
    lua_pushvalue(L, d->progress);
    push_int64(L, received);
    push_int64(L, total);
    int rc = lua_pcall(L, 2, 1, 0);
    if (rc == 0 && d->session->close_pending) {
        lua_pop(L, 1);
        d->failure_code = "ClientError.SessionClosed";
        snprintf(d->failure, sizeof d->failure, "the session was closed during the download");
        return 1;
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
    if (stop) {
        d->failure_code = "ClientError.Cancelled";
        snprintf(d->failure, sizeof d->failure, "the progress function cancelled the download");
    }
    return stop;
}

/* core.download(session, { url, path, on_progress?, timeout?, connect_timeout? })
 *   -> { http_status, bytes, server_date? } | nil, err
 * Streams a 2xx body into path (created on the first byte); any other status leaves no file. */
int core_download(lua_State *L) {
    session *s = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (session_unusable(L, s)) return 2;
    lstr url, path;
    arg_string(L, 2, "url", 1, HEADER_VALUE, &url);
    arg_string(L, 2, "path", 1, NO_NUL, &path);
    long timeout_ms = arg_seconds(L, 2, "timeout"), connect_timeout_ms = arg_seconds(L, 2, "connect_timeout");
    if (!is_http_url(&url)) luaL_error(L, "bad field 'url' (an http:// or https:// URL expected)");
    lua_getfield(L, 2, "on_progress");
    int progress = 0;
    if (lua_isfunction(L, -1)) progress = lua_gettop(L);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "bad field 'on_progress' (function expected, got %s)", luaL_typename(L, -1));

    download d;
    memset(&d, 0, sizeof d);
    d.L = L;
    d.session = s;
    d.path = path.s;
    d.progress = progress;
    http_request req = {
        .method = "GET", .url = url.s, .timeout_ms = timeout_ms, .connect_timeout_ms = connect_timeout_ms,
        .on_data = download_data, .on_progress = download_progress, .ctx = &d,
    };
    http_result r;
    s->busy = 1;
    http_status st = http_perform(s->http, &req, &r);
    s->busy = 0;
    if (s->close_pending) session_release(s);      /* nothing below reads the response buffer */
    if (st == HTTP_OK && ok_status(r.code) && !d.file && !(d.file = fopen(d.path, "wb"))) {
        d.failure_code = "ClientError.FileError";      /* an empty body still makes a file */
        snprintf(d.failure, sizeof d.failure, "cannot open the output file: %s", strerror(errno));
    }
    if (d.file && fclose(d.file) != 0 && !d.failure_code) {
        d.failure_code = "ClientError.FileError";
        snprintf(d.failure, sizeof d.failure, "closing the output file failed: %s", strerror(errno));
    }
    if (d.failure_code) {
        lua_pushnil(L);
        push_transport_error(L, d.failure_code, &r);
        lua_pushstring(L, d.failure);
        lua_setfield(L, -2, "message");
        return 2;
    }
    if (st != HTTP_OK) return transport_failure(L, &r);
    if (!ok_status(r.code)) {
        for (size_t i = 0; i < d.error_body_len; i++)       /* printable text only in a message */
            if ((unsigned char)d.error_body[i] < 0x20 || (unsigned char)d.error_body[i] >= 0x7f) d.error_body[i] = ' ';
        d.error_body[d.error_body_len] = '\0';
        lua_pushnil(L);
        push_transport_error(L, "ClientError.HttpStatusCodeError", &r);
        lua_pushfstring(L, "HTTP status %d from the download URL: %s", (int)r.code, d.error_body);
        lua_setfield(L, -2, "message");
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)r.code);
    lua_setfield(L, -2, "http_status");
    push_int64(L, d.bytes);
    lua_setfield(L, -2, "bytes");
    if (r.server_date >= 0) {
        push_int64(L, r.server_date);
        lua_setfield(L, -2, "server_date");
    }
    return 1;
}

