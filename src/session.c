/* The session userdata: what is fixed per client (the URL, Host, region, language and service, built once
 * here), one libcurl handle and one signer, reused across calls; closing it frees them all.
 * A session can be closed from a progress function during its own transfer: it is then only marked, and
 * released once libcurl has returned. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT 10.0
#define DEFAULT_CONNECT_TIMEOUT 5.0
#define DEFAULT_MAX_RESPONSE (10u * 1024u * 1024u)

session *check_session(lua_State *L) { return luaL_checkudata(L, 1, SESSION_MT); }

void session_release(session *s) {
    download_forget(s);
    http_session_free(s->http);
    tc3_signer_free(s->signer);        /* wipes the cached signing keys */
    if (s->scratch) OPENSSL_cleanse(s->scratch, s->scratch_cap);   /* held Authorization, maybe a token */
    free(s->scratch);
    if (s->body.data) OPENSSL_cleanse(s->body.data, s->body.cap);  /* params may hold a device secret */
    jsonenc_buf_free(&s->body);
    s->scratch = NULL;
    s->scratch_cap = 0;
    s->http = NULL;
    s->signer = NULL;
    free(s->fixed);
    s->fixed = NULL;
    memset(&s->target, 0, sizeof s->target);
}

/* During a transfer (from a progress function) only mark the session: the transfer stops at the next
 * callback and the session is released once libcurl has returned. */
int session_close(lua_State *L) {
    session *s = check_session(L);
    if (s->busy) s->close_pending = 1;
    else session_release(s);
    return 0;
}

int session_tostring(lua_State *L) {
    session *s = check_session(L);
    if (s->http && s->target.host.s)
        lua_pushfstring(L, "tencentcloud.iotexplorer.core.session (open, %s)", s->target.url.s);
    else
        lua_pushfstring(L, "tencentcloud.iotexplorer.core.session (%s)", s->http ? "open" : "closed");
    return 1;
}

/* Copies the target's strings into one allocation: "scheme://host[:port]/", "host[:port]", region,
 * language, service, each NUL-terminated. An IPv6 literal gets its brackets in both. Returns 0, or -1 when
 * out of memory. */
static int fix_target(session *s, const char *scheme, const lstr *host, int64_t port, const lstr *region,
                      const lstr *language, const lstr *service) {
    int bracket = memchr(host->s, ':', host->len) != NULL && host->s[0] != '[';
    char port_text[8] = "";
    if (port) snprintf(port_text, sizeof port_text, ":%d", (int)port);
    size_t host_len = host->len + (bracket ? 2 : 0) + strlen(port_text);
    size_t scheme_len = strlen(scheme);
    size_t need = scheme_len + 3 + host_len + 2 + host_len + 1 + region->len + 1 + language->len + 1
                + service->len + 1;
    char *p = s->fixed = malloc(need);
    if (!p) return -1;
    char *host_start = p + scheme_len + 3;
    int n = snprintf(p, need, "%s://%s%.*s%s%s/", scheme, bracket ? "[" : "", (int)host->len, host->s,
                     bracket ? "]" : "", port_text);
    s->target.url = (lstr){ p, (size_t)n };
    p += n + 1;
    memcpy(p, host_start, host_len);
    p[host_len] = '\0';
    s->target.host = (lstr){ p, host_len };
    p += host_len + 1;
    const lstr *rest[] = { region, language, service };
    lstr *into[] = { &s->target.region, &s->target.language, &s->target.service };
    for (int i = 0; i < 3; i++) {
        if (rest[i]->s) memcpy(p, rest[i]->s, rest[i]->len);
        p[rest[i]->len] = '\0';
        *into[i] = (lstr){ rest[i]->s ? p : NULL, rest[i]->len };
        p += rest[i]->len + 1;
    }
    return 0;
}

/* Refuses a host that would change the URL's meaning (user info, path, query) or hold spaces. */
static void check_host(lua_State *L, const lstr *host) {
    for (size_t i = 0; i < host->len; i++) {
        unsigned char c = (unsigned char)host->s[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\')
            luaL_error(L, "bad field 'host' (a host name or address only, without user, path, query or spaces)");
    }
}

static const char *const SESSION_FIELDS[] = {
    "scheme", "host", "port", "region", "language", "service", "timeout", "connect_timeout", "ca_file",
    "ca_path", "proxy", "user_agent", "max_response_bytes", "interruptible", NULL,
};

/* core.new_session{ scheme, host, port, region, language, service, timeout, connect_timeout, ca_file,
 * ca_path, proxy, user_agent, max_response_bytes, interruptible } -> session | nil, err
 * Without host the session can download and nothing else. */
int core_new_session(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    arg_known(L, 1, "session option", SESSION_FIELDS);
    lstr scheme, host, region, language, service, ca_file, ca_path, proxy, user_agent;
    int64_t port = 0, max_body = DEFAULT_MAX_RESPONSE;
    arg_string(L, 1, "scheme", 0, NO_NUL, &scheme);
    if (scheme.s && strcmp(scheme.s, "https") != 0 && strcmp(scheme.s, "http") != 0)
        luaL_error(L, "bad field 'scheme' (\"https\" or \"http\" expected)");
    int with_host = arg_string(L, 1, "host", 0, HEADER_VALUE, &host);
    if (with_host) check_host(L, &host);
    arg_integer(L, 1, "port", 1, 65535, &port);
    if (arg_string(L, 1, "region", with_host, HEADER_VALUE, &region) && !with_host)
        luaL_error(L, "bad field 'region' (only with host)");
    arg_string(L, 1, "language", 0, HEADER_VALUE, &language);
    if (!arg_string(L, 1, "service", 0, HEADER_VALUE, &service)) service = (lstr){ DEFAULT_SERVICE, sizeof DEFAULT_SERVICE - 1 };
    long timeout_ms = arg_seconds(L, 1, "timeout"), connect_timeout_ms = arg_seconds(L, 1, "connect_timeout");
    arg_string(L, 1, "ca_file", 0, NO_NUL, &ca_file);
    arg_string(L, 1, "ca_path", 0, NO_NUL, &ca_path);
    arg_string(L, 1, "proxy", 0, HEADER_VALUE, &proxy);
    arg_string(L, 1, "user_agent", 0, HEADER_VALUE, &user_agent);
    arg_integer(L, 1, "max_response_bytes", 1, 1073741824.0, &max_body);
    int interruptible = arg_boolean(L, 1, "interruptible");

    /* The metatable goes on before any foreign object exists, so every path below is collected. */
    session *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, SESSION_MT);
    lua_setmetatable(L, -2);
    s->interruptible = interruptible;
    if (with_host && fix_target(s, scheme.s ? scheme.s : "https", &host, port, &region, &language, &service))
        return fail_local(L, "ClientError.SessionError", "out of memory");
    http_options o = {
        .timeout_ms = timeout_ms ? timeout_ms : (long)(DEFAULT_TIMEOUT * 1000),
        .connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : (long)(DEFAULT_CONNECT_TIMEOUT * 1000),
        .ca_file = ca_file.s, .ca_path = ca_path.s, .proxy = proxy.s,
        .user_agent = user_agent.s ? user_agent.s : "tencentcloud-iotexplorer-lua/" CORE_VERSION,
        .max_response_bytes = (size_t)max_body,
    };
    char message[HTTP_MESSAGE_SIZE];
    s->http = http_session_new(&o, message, sizeof message);
    s->signer = s->http ? tc3_signer_new() : NULL;
    if (!s->signer) {
        int no_signer = s->http != NULL;
        session_release(s);
        return fail_local(L, "ClientError.SessionError", no_signer ? "could not create the signer (OpenSSL)" : message);
    }
    return 1;
}

/* Pushes nil, err and returns 2 when the session cannot take a request now; 0 when it can. */
int session_unusable(lua_State *L, const session *s) {
    if (!s->http || s->close_pending) return fail_local(L, "ClientError.SessionClosed", "the session is closed");
    if (s->busy)
        return fail_local(L, "ClientError.SessionBusy",
                          "the session is in the middle of a transfer (called from its own progress function)");
    return 0;
}
