/* tencentcloud.iotexplorer.core: the only file that knows Lua. It checks arguments, moves tables in and
 * out, and drives the signer (tc3.c) and the transport (http.c). It decides no policy: no retries, no
 * sleeping between attempts, no credential look-up. Failures return nil, err; only a wrong type for the
 * first argument raises. */
#define _POSIX_C_SOURCE 200809L
#include "compat.h"
#include "http.h"
#include "tc3.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#define CORE_VERSION "0.1.0"
#define SESSION_MT "tencentcloud.iotexplorer.core.session"
#define SIGNER_MT "tencentcloud.iotexplorer.core.signer"
#define DEFAULT_SERVICE "iotexplorer"
#define DEFAULT_VERSION "2019-04-23"
#define DEFAULT_CONTENT_TYPE "application/json"
#define DEFAULT_SIGNED_HEADERS "content-type;host"
#define DEFAULT_TIMEOUT 10.0
#define DEFAULT_CONNECT_TIMEOUT 5.0
#define DEFAULT_MAX_RESPONSE (10u * 1024u * 1024u)
#define MAX_HEADERS 16

/* Upvalues shared by every function of one module instance (one per Lua VM). */
#define UV_SIGNER lua_upvalueindex(1)  /* the signer core.sign uses */
#define UV_JSON lua_upvalueindex(2)    /* a private cjson.safe instance: nobody else's settings */

typedef struct session {
    http_session *http;
    tc3_signer *signer;
    long timeout_ms, connect_timeout_ms;
    int busy;                          /* a transfer is running: Lua code in its callback may call us */
    int close_pending;                 /* close() was called during that transfer */
    char *scratch;                     /* header lines and URL of the request being sent, reused */
    size_t scratch_cap;
} session;

typedef struct signer_box { tc3_signer *signer; } signer_box;

typedef struct lstr { const char *s; size_t len; } lstr;

/* ---- errors ---- */

/* Whole numbers read as integers on Lua 5.3+ (3, not 3.0); older VMs only have doubles. */
static void push_int64(lua_State *L, int64_t v) {
#if COMPAT_HAS_INTEGERS
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/* Pushes nil and { code, message, sent = false } and returns 2: a failure before any request left. */
static int fail_local(lua_State *L, const char *code, const char *message) {
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "sent");
    return 2;
}

/* ClientError.InvalidParameter naming the field; the message is fmt with the field and `what`. */
static int fail_input(lua_State *L, const char *field, const char *fmt, const char *what) {
    fail_local(L, "ClientError.InvalidParameter", lua_pushfstring(L, fmt, field, what));
    lua_remove(L, -3);                 /* the formatted message, now in the table */
    lua_pushstring(L, field);
    lua_setfield(L, -2, "field");
    return 2;
}

/* The error table after a request was attempted; the caller fills message and extra fields. */
static void push_transport_error(lua_State *L, const char *code, const http_result *r) {
    lua_createtable(L, 0, 8);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushboolean(L, r->sent);
    lua_setfield(L, -2, "sent");
    if (r->code > 0) {
        lua_pushinteger(L, (lua_Integer)r->code);
        lua_setfield(L, -2, "http_status");
    }
    if (r->curl_code) {
        lua_pushinteger(L, r->curl_code);
        lua_setfield(L, -2, "curl_code");
    }
    if (r->server_date >= 0) {
        push_int64(L, r->server_date);
        lua_setfield(L, -2, "server_date");
    }
}

/* ---- reading request tables ---- */

/* Reads t[field] as a string, leaving the value on the stack so the pointer stays valid.
 * Returns 1 when present, 0 when absent (nil) and optional, or pushes an error (-1). */
static int get_string(lua_State *L, int t, const char *field, int required, lstr *out) {
    lua_getfield(L, t, field);
    int type = lua_type(L, -1);
    if (type == LUA_TNIL && !required) {
        out->s = NULL;
        out->len = 0;
        return 0;
    }
    if (type == LUA_TNIL) return fail_input(L, field, "%s is required%s", ""), -1;
    if (type != LUA_TSTRING)
        return fail_input(L, field, "%s must be a string, got %s", lua_typename(L, type)), -1;
    out->s = lua_tolstring(L, -1, &out->len);
    if (out->len == 0) return fail_input(L, field, "%s must not be empty%s", ""), -1;
    /* Anything that may reach a header line: CR or LF would let a caller smuggle in a header. */
    for (size_t i = 0; i < out->len; i++) {
        char c = out->s[i];
        if (c == '\r' || c == '\n' || c == '\0')
            return fail_input(L, field, "%s must not contain CR, LF or NUL%s", ""), -1;
    }
    return 1;
}

/* Reads an optional positive number of seconds as milliseconds (0 when absent). */
static int get_seconds(lua_State *L, int t, const char *field, long *ms) {
    lua_getfield(L, t, field);
    int type = lua_type(L, -1);
    *ms = 0;
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    lua_Number n = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (type != LUA_TNUMBER) return fail_input(L, field, "%s must be a number of seconds, got %s",
                                               lua_typename(L, type)), -1;
    if (!(n > 0 && n <= 86400.0)) return fail_input(L, field, "%s must be between 0 and 86400 seconds%s", ""), -1;
    *ms = (long)ceil(n * 1000.0);
    return 0;
}

/* Reads an optional Unix timestamp in whole seconds (present: 1, absent: 0, bad: -1 with error pushed). */
static int get_timestamp(lua_State *L, int t, const char *field, int64_t *out) {
    lua_getfield(L, t, field);
    int type = lua_type(L, -1);
    lua_Number n = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (type == LUA_TNIL) return 0;
    if (type != LUA_TNUMBER)
        return fail_input(L, field, "%s must be an integer number of seconds, got %s", lua_typename(L, type)), -1;
    if (!(n >= 0 && n <= 253402300799.0) || floor(n) != n)
        return fail_input(L, field, "%s must be a whole number of seconds between 1970 and 9999%s", ""), -1;
    *out = (int64_t)n;
    return 1;
}

/* The length of a leading "http://" or "https://" (any case) followed by something; 0 otherwise. */
static size_t http_scheme_len(const lstr *url) {
    if (url->len > 7 && strncasecmp(url->s, "http://", 7) == 0) return 7;
    if (url->len > 8 && strncasecmp(url->s, "https://", 8) == 0) return 8;
    return 0;
}

/* Splits an http(s) endpoint into the Host header value and the URL to post to ("scheme://host/"). */
static int parse_endpoint(lua_State *L, const lstr *endpoint, lstr *host) {
    const char *s = endpoint->s;
    size_t skip = http_scheme_len(endpoint);
    if (!skip) return fail_input(L, "endpoint", "%s must be an http:// or https:// URL%s", ""), -1;
    size_t end = skip;
    while (end < endpoint->len && s[end] != '/') {
        unsigned char c = (unsigned char)s[end];
        if (c <= ' ' || c == '?' || c == '#' || c == '@' || c == '\\' || c >= 0x7f)
            return fail_input(L, "endpoint", "%s must be scheme://host[:port] without user, query or "
                                             "spaces%s", ""), -1;
        end++;
    }
    if (end == skip || (end < endpoint->len && end + 1 != endpoint->len))
        return fail_input(L, "endpoint", "%s must be scheme://host[:port], with no path%s", ""), -1;
    host->s = s + skip;
    host->len = end - skip;
    return 0;
}

/* ---- JSON ---- */

/* cjson decodes numbers as doubles and null as a sentinel: make integral values integers (on Lua 5.3+)
 * and drop nulls, so results read as the server meant them. */
static void normalise(lua_State *L, int t, int null_idx) {
    luaL_checkstack(L, 4, "response JSON nested too deeply");
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int type = lua_type(L, -1);
        if (type == LUA_TTABLE) {
            normalise(L, lua_absindex(L, -1), null_idx);
        } else if (type == LUA_TLIGHTUSERDATA && lua_rawequal(L, -1, null_idx)) {
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, t);              /* clearing an existing field during lua_next is allowed */
        }
#if COMPAT_HAS_INTEGERS
        else if (type == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            if (floor(n) == n && fabs(n) <= 9007199254740992.0) {
                lua_pushvalue(L, -2);
                lua_pushinteger(L, (lua_Integer)n);
                lua_rawset(L, t);
            }
        }
#endif
        lua_pop(L, 1);
    }
}

static void push_json_fn(lua_State *L, const char *name) { lua_getfield(L, UV_JSON, name); }

/* Appends s to b as a JSON string literal. Bytes >= 0x80 pass through: the server sees what the caller gave. */
static void add_json_string(luaL_Buffer *b, const lstr *s) {
    static const char hex[] = "0123456789abcdef";
    luaL_addchar(b, '"');
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->s[i];
        if (c == '"' || c == '\\') {
            luaL_addchar(b, '\\');
            luaL_addchar(b, (char)c);
        } else if (c < 0x20) {
            char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            luaL_addlstring(b, esc, sizeof esc);
        } else {
            luaL_addchar(b, (char)c);
        }
    }
    luaL_addchar(b, '"');
}

/* ---- signing ---- */

typedef struct call_input {
    lstr secret_id, secret_key, token, region, language, action, version, service, content_type,
         signed_headers, endpoint, host, method, query;
    int64_t timestamp;
    long timeout_ms, connect_timeout_ms;
    int fresh_connection;
} call_input;

/* Reads the fields shared by sign, call and describe_batch_production. Pushes values on the stack.
 * Returns 0, or 2 with nil, err pushed. */
static int read_common(lua_State *L, int t, call_input *in, int want_endpoint) {
    struct { const char *name; int required; lstr *out; const char *fallback; } fields[] = {
        { "secret_id", 1, &in->secret_id, NULL },
        { "secret_key", 1, &in->secret_key, NULL },
        { "token", 0, &in->token, NULL },
        { "region", 1, &in->region, NULL },
        { "language", 0, &in->language, NULL },
        { "service", 0, &in->service, DEFAULT_SERVICE },
        { "content_type", 0, &in->content_type, DEFAULT_CONTENT_TYPE },
        { "signed_headers", 0, &in->signed_headers, DEFAULT_SIGNED_HEADERS },
    };
    luaL_checkstack(L, 32, "too many request fields");
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int rc = get_string(L, t, fields[i].name, fields[i].required, fields[i].out);
        if (rc < 0) return 2;
        if (rc == 0 && fields[i].fallback) {
            fields[i].out->s = fields[i].fallback;
            fields[i].out->len = strlen(fields[i].fallback);
        }
    }
    if (strcmp(in->signed_headers.s, "content-type;host") != 0
        && strcmp(in->signed_headers.s, "content-type;host;x-tc-action") != 0)
        return fail_input(L, "signed_headers", "%s must be \"content-type;host\" or "
                                               "\"content-type;host;x-tc-action\"%s", "");
    int rc = get_timestamp(L, t, "timestamp", &in->timestamp);
    if (rc < 0) return 2;
    if (rc == 0) in->timestamp = (int64_t)time(NULL);
    if (get_seconds(L, t, "timeout", &in->timeout_ms) || get_seconds(L, t, "connect_timeout", &in->connect_timeout_ms))
        return 2;
    lua_getfield(L, t, "fresh_connection");
    in->fresh_connection = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (want_endpoint) {
        if (get_string(L, t, "endpoint", 1, &in->endpoint) < 0 || parse_endpoint(L, &in->endpoint, &in->host))
            return 2;
    }
    return 0;
}

static tc3_status sign_input(tc3_signer *signer, const call_input *in, const char *host, const char *payload,
                             size_t payload_len) {
    tc3_request r = {
        .secret_id = in->secret_id.s, .secret_key = in->secret_key.s, .secret_key_len = in->secret_key.len,
        .service = in->service.s, .method = in->method.s, .query = in->query.s ? in->query.s : "",
        .host = host, .action = in->action.s, .content_type = in->content_type.s,
        .signed_headers = in->signed_headers.s, .payload = payload, .payload_len = payload_len,
        .timestamp = in->timestamp,
    };
    return tc3_sign(signer, &r);
}

static int fail_signing(lua_State *L, tc3_status st) {
    if (st == TC3_BAD_TIMESTAMP) return fail_input(L, "timestamp", "%s is out of range%s", "");
    return fail_local(L, "ClientError.SignatureError",
                      st == TC3_NO_MEMORY ? "out of memory while signing" : "OpenSSL failed while signing");
}

static char *put_line(char *p, const char *name, size_t name_len, const char *value, size_t value_len) {
    memcpy(p, name, name_len);
    memcpy(p + name_len, value, value_len);
    p[name_len + value_len] = '\0';
    return p + name_len + value_len + 1;
}

/* The header lines and the URL of one request, NUL-terminated one after the other in the session's scratch
 * buffer: no Lua strings, so nothing for the collector. Returns the line count, or -1 when out of memory. */
static int request_lines(session *s, const call_input *in, const char **lines, const char **url) {
    size_t auth_len, action_len = strlen(in->action.s), version_len = strlen(in->version.s);
    const char *auth = tc3_authorization(s->signer, &auth_len);
    char stamp[24];
    size_t stamp_len = (size_t)snprintf(stamp, sizeof stamp, "%lld", (long long)in->timestamp);
    size_t url_len = (size_t)(in->host.s + in->host.len - in->endpoint.s);
    size_t need = 160 + auth_len + in->content_type.len + in->host.len + action_len + version_len + stamp_len
                + in->region.len + in->token.len + in->language.len + url_len;
    if (need > s->scratch_cap) {
        char *p = malloc(need);
        if (!p) return -1;
        if (s->scratch) OPENSSL_cleanse(s->scratch, s->scratch_cap);
        free(s->scratch);
        s->scratch = p;
        s->scratch_cap = need;
    }
    char *p = s->scratch;
    int n = 0;
#define LINE(name, value, len) (lines[n++] = p, p = put_line(p, name, sizeof name - 1, value, len))
    LINE("Authorization: ", auth, auth_len);
    LINE("Content-Type: ", in->content_type.s, in->content_type.len);
    LINE("Host: ", in->host.s, in->host.len);
    LINE("X-TC-Action: ", in->action.s, action_len);
    LINE("X-TC-Version: ", in->version.s, version_len);
    LINE("X-TC-Timestamp: ", stamp, stamp_len);
    LINE("X-TC-Region: ", in->region.s, in->region.len);
    if (in->token.s) LINE("X-TC-Token: ", in->token.s, in->token.len);
    if (in->language.s) LINE("X-TC-Language: ", in->language.s, in->language.len);
#undef LINE
    lines[n++] = "X-TC-RequestClient: SDK_LUA_" CORE_VERSION;
    *url = p;
    put_line(p, in->endpoint.s, url_len, "/", 1);
    return n;
}

/* core.sign(t) -> headers, { canonical_request, string_to_sign, signature } */
static int core_sign(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    call_input in;
    memset(&in, 0, sizeof in);
    lstr payload;
    if (read_common(L, 1, &in, 0)) return 2;
    if (get_string(L, 1, "host", 1, &in.host) < 0 || get_string(L, 1, "action", 1, &in.action) < 0
        || get_string(L, 1, "version", 1, &in.version) < 0 || get_string(L, 1, "method", 0, &in.method) < 0
        || get_string(L, 1, "query", 0, &in.query) < 0)
        return 2;
    if (!in.method.s) in.method.s = "POST";
    if (strcmp(in.method.s, "POST") != 0 && strcmp(in.method.s, "GET") != 0)
        return fail_input(L, "method", "%s must be \"POST\" or \"GET\"%s", "");
    int is_get = strcmp(in.method.s, "GET") == 0;
    if (is_get) {
        payload.s = "";
        payload.len = 0;
    } else {
        lua_getfield(L, 1, "payload");
        if (lua_type(L, -1) != LUA_TSTRING)
            return fail_input(L, "payload", "%s must be a string (the exact body), got %s",
                              luaL_typename(L, -1));
        payload.s = lua_tolstring(L, -1, &payload.len);
    }
    signer_box *box = lua_touserdata(L, UV_SIGNER);
    tc3_status st = sign_input(box->signer, &in, in.host.s, payload.s, payload.len);
    if (st != TC3_OK) return fail_signing(L, st);

    /* The headers table straight from the strings we hold: no "Name: value" lines to format, then split. */
    char stamp[24];
    int stamp_len = snprintf(stamp, sizeof stamp, "%lld", (long long)in.timestamp);
    size_t auth_len;
    const char *auth = tc3_authorization(box->signer, &auth_len);
    lua_createtable(L, 0, 10);
    lua_pushlstring(L, auth, auth_len);
    lua_setfield(L, -2, "Authorization");
    lua_pushlstring(L, in.content_type.s, in.content_type.len);
    lua_setfield(L, -2, "Content-Type");
    lua_pushlstring(L, in.host.s, in.host.len);
    lua_setfield(L, -2, "Host");
    lua_pushlstring(L, in.action.s, in.action.len);
    lua_setfield(L, -2, "X-TC-Action");
    lua_pushlstring(L, in.version.s, in.version.len);
    lua_setfield(L, -2, "X-TC-Version");
    lua_pushlstring(L, stamp, (size_t)stamp_len);
    lua_setfield(L, -2, "X-TC-Timestamp");
    lua_pushlstring(L, in.region.s, in.region.len);
    lua_setfield(L, -2, "X-TC-Region");
    if (in.token.s) {
        lua_pushlstring(L, in.token.s, in.token.len);
        lua_setfield(L, -2, "X-TC-Token");
    }
    if (in.language.s) {
        lua_pushlstring(L, in.language.s, in.language.len);
        lua_setfield(L, -2, "X-TC-Language");
    }
    lua_pushliteral(L, "SDK_LUA_" CORE_VERSION);
    lua_setfield(L, -2, "X-TC-RequestClient");
    lua_createtable(L, 0, 3);
    size_t len;
    const char *text = tc3_canonical_request(box->signer, &len);
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "canonical_request");
    text = tc3_string_to_sign(box->signer, &len);
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "string_to_sign");
    lua_pushstring(L, tc3_signature(box->signer));
    lua_setfield(L, -2, "signature");
    return 2;
}

/* ---- sessions ---- */

static session *check_session(lua_State *L) { return luaL_checkudata(L, 1, SESSION_MT); }

static void session_release(session *s) {
    http_session_free(s->http);
    tc3_signer_free(s->signer);        /* wipes the cached signing keys */
    if (s->scratch) OPENSSL_cleanse(s->scratch, s->scratch_cap);   /* held Authorization, maybe a token */
    free(s->scratch);
    s->scratch = NULL;
    s->scratch_cap = 0;
    s->http = NULL;
    s->signer = NULL;
}

/* During a transfer (from a progress function) only mark the session: the transfer stops at the next
 * callback and the session is released once libcurl has returned. */
static int session_close(lua_State *L) {
    session *s = check_session(L);
    if (s->busy) s->close_pending = 1;
    else session_release(s);
    return 0;
}

static int session_tostring(lua_State *L) {
    session *s = check_session(L);
    lua_pushfstring(L, "tencentcloud.iotexplorer.core.session (%s)", s->http ? "open" : "closed");
    return 1;
}

/* core.new_session(opts?) -> session | nil, err */
static int core_new_session(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lstr ca_file, ca_path, proxy, user_agent;
    long timeout_ms, connect_timeout_ms;
    if (get_seconds(L, 1, "timeout", &timeout_ms) || get_seconds(L, 1, "connect_timeout", &connect_timeout_ms)
        || get_string(L, 1, "ca_file", 0, &ca_file) < 0 || get_string(L, 1, "ca_path", 0, &ca_path) < 0
        || get_string(L, 1, "proxy", 0, &proxy) < 0 || get_string(L, 1, "user_agent", 0, &user_agent) < 0)
        return 2;
    lua_getfield(L, 1, "max_response_bytes");
    size_t max_body = DEFAULT_MAX_RESPONSE;
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 1 && n <= 1073741824.0) || floor(n) != n)
            return fail_input(L, "max_response_bytes", "%s must be a whole number from 1 to 2^30%s", "");
        max_body = (size_t)n;
    }

    /* The metatable goes on before any foreign object exists, so every path below is collected. */
    session *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, SESSION_MT);
    lua_setmetatable(L, -2);
    s->timeout_ms = timeout_ms ? timeout_ms : (long)(DEFAULT_TIMEOUT * 1000);
    s->connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : (long)(DEFAULT_CONNECT_TIMEOUT * 1000);
    http_options o = {
        .timeout_ms = s->timeout_ms, .connect_timeout_ms = s->connect_timeout_ms, .ca_file = ca_file.s,
        .ca_path = ca_path.s, .proxy = proxy.s,
        .user_agent = user_agent.s ? user_agent.s : "tencentcloud-iotexplorer-lua/" CORE_VERSION,
        .max_response_bytes = max_body,
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

/* Turns a completed HTTP exchange into the Response table, or nil + err. */
static int decode_response(lua_State *L, const http_result *r) {
    push_json_fn(L, "decode");
    lua_pushlstring(L, r->body, r->body_len);
    lua_call(L, 1, 1);                 /* cjson.safe: returns nil on bad input instead of raising */
    int doc = lua_gettop(L);
    int is_envelope = 0;
    if (lua_type(L, doc) == LUA_TTABLE) {
        lua_getfield(L, doc, "Response");
        is_envelope = lua_type(L, -1) == LUA_TTABLE;
    } else {
        lua_pushnil(L);
    }
    int resp = lua_gettop(L);
    if (is_envelope) {
        push_json_fn(L, "null");
        normalise(L, resp, lua_gettop(L));
        lua_pop(L, 1);
        lua_getfield(L, resp, "Error");
        if (lua_isnil(L, -1) && r->code == 200) {
            lua_pushvalue(L, resp);
            return 1;
        }
        if (lua_type(L, -1) == LUA_TTABLE) {
            int error = lua_gettop(L);
            lua_getfield(L, error, "Code");
            size_t code_len = 0;
            if (lua_type(L, -1) == LUA_TSTRING) lua_tolstring(L, -1, &code_len);
            if (code_len > 0) {                /* "Code": "" is no code: not an API error */
                lua_pushnil(L);
                push_transport_error(L, lua_tostring(L, -2), r);
                lua_getfield(L, error, "Message");
                if (lua_type(L, -1) != LUA_TSTRING) {
                    lua_pop(L, 1);
                    lua_pushliteral(L, "(the service sent no message)");
                }
                lua_setfield(L, -2, "message");
                lua_getfield(L, resp, "RequestId");
                if (lua_type(L, -1) == LUA_TSTRING) lua_setfield(L, -2, "request_id");
                else lua_pop(L, 1);
                return 2;
            }
        }
    }
    lua_pushnil(L);
    if (r->code != 200) {
        push_transport_error(L, "ClientError.HttpStatusCodeError", r);
        lua_pushfstring(L, "HTTP status %d without an API error envelope", (int)r->code);
    } else {
        push_transport_error(L, "ClientError.ParseJsonError", r);
        lua_pushstring(L, r->body_len == 0 ? "empty response body"
                          : is_envelope ? "the Error object in the response has no Code"
                          : lua_type(L, doc) == LUA_TTABLE ? "response JSON has no Response object"
                          : "response body is not valid JSON");
    }
    lua_setfield(L, -2, "message");
    return 2;
}

#ifdef TCIOT_TEST_HOOKS
/* Test builds only (make fuzz): core._decode_response(body, http_status[, server_date]) runs the decoder
 * on bytes given by the caller, with no network. Not in the shipped module. */
static int core_decode_response(lua_State *L) {
    http_result r;
    memset(&r, 0, sizeof r);
    r.body = luaL_checklstring(L, 1, &r.body_len);
    r.code = (long)luaL_checkinteger(L, 2);
    r.server_date = (int64_t)luaL_optinteger(L, 3, -1);
    r.sent = 1;
    return decode_response(L, &r);
}
#endif

static int transport_failure(lua_State *L, const http_result *r) {
    static const char *const codes[] = {
        [HTTP_NETWORK] = "ClientError.NetworkError", [HTTP_TIMEOUT] = "ClientError.Timeout",
        [HTTP_TOO_LARGE] = "ClientError.ResponseTooLarge", [HTTP_NO_MEMORY] = "ClientError.NetworkError",
        [HTTP_ABORTED] = "ClientError.NetworkError",
    };
    lua_pushnil(L);
    push_transport_error(L, codes[r->status], r);
    lua_pushstring(L, r->message);
    lua_setfield(L, -2, "message");
    return 2;
}

/* Signs and posts the JSON body at stack index body_idx; the common fields are already read into in. */
static int perform(lua_State *L, session *s, call_input *in, int body_idx) {
    size_t body_len;
    const char *body = lua_tolstring(L, body_idx, &body_len);
    lua_pushlstring(L, in->host.s, in->host.len);
    const char *host = lua_tostring(L, -1);
    tc3_status st = sign_input(s->signer, in, host, body, body_len);
    if (st != TC3_OK) return fail_signing(L, st);

    const char *lines[MAX_HEADERS], *url;
    int n = request_lines(s, in, lines, &url);
    if (n < 0) return fail_signing(L, TC3_NO_MEMORY);
    http_request req = {
        .method = "POST", .url = url, .headers = lines, .header_count = (size_t)n, .body = body,
        .body_len = body_len, .timeout_ms = in->timeout_ms, .connect_timeout_ms = in->connect_timeout_ms,
        .fresh_connection = in->fresh_connection,
    };
    http_result r;
    s->busy = 1;
    http_status hs = http_perform(s->http, &req, &r);
    s->busy = 0;
    int results = hs != HTTP_OK ? transport_failure(L, &r) : decode_response(L, &r);
    if (s->close_pending) session_release(s);      /* r.body lives in the session: release after decoding */
    return results;
}

/* Pushes nil, err and returns 2 when the session cannot take a request now; 0 when it can. */
static int session_unusable(lua_State *L, const session *s) {
    if (!s->http || s->close_pending) return fail_local(L, "ClientError.SessionClosed", "the session is closed");
    if (s->busy)
        return fail_local(L, "ClientError.SessionBusy",
                          "the session is in the middle of a transfer (called from its own progress function)");
    return 0;
}

/* core.describe_batch_production(session, req) -> Response | nil, err */
static int core_describe_batch_production(lua_State *L) {
    session *s = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (session_unusable(L, s)) return 2;
    call_input in;
    memset(&in, 0, sizeof in);
    lstr product, batch;
    if (read_common(L, 2, &in, 1) || get_string(L, 2, "ProductId", 1, &product) < 0
        || get_string(L, 2, "BatchProductionId", 1, &batch) < 0)
        return 2;
    in.action.s = "DescribeBatchProduction";
    in.version.s = DEFAULT_VERSION;
    in.method.s = "POST";

    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "{\"ProductId\":");
    add_json_string(&b, &product);
    luaL_addstring(&b, ",\"BatchProductionId\":");
    add_json_string(&b, &batch);
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
    return perform(L, s, &in, lua_gettop(L));
}

/* core.call(session, { action, version?, params?, ...common }) -> Response | nil, err */
static int core_call(lua_State *L) {
    session *s = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (session_unusable(L, s)) return 2;
    call_input in;
    memset(&in, 0, sizeof in);
    if (read_common(L, 2, &in, 1) || get_string(L, 2, "action", 1, &in.action) < 0
        || get_string(L, 2, "version", 0, &in.version) < 0)
        return 2;
    if (!in.version.s) in.version.s = DEFAULT_VERSION;
    in.method.s = "POST";
    lua_getfield(L, 2, "params");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    } else if (!lua_istable(L, -1)) {
        return fail_input(L, "params", "%s must be a table, got %s", luaL_typename(L, -1));
    }
    push_json_fn(L, "encode");
    lua_insert(L, -2);
    lua_call(L, 1, 2);                 /* cjson.safe: nil, message for functions, cycles, bad keys */
    if (lua_isnil(L, -2))
        return fail_input(L, "params", "%s cannot be encoded as JSON: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return perform(L, s, &in, lua_gettop(L));
}

/* ---- downloads ---- */

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
static int core_download(lua_State *L) {
    session *s = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (session_unusable(L, s)) return 2;
    lstr url, path;
    long timeout_ms, connect_timeout_ms;
    if (get_string(L, 2, "url", 1, &url) < 0 || get_string(L, 2, "path", 1, &path) < 0
        || get_seconds(L, 2, "timeout", &timeout_ms) || get_seconds(L, 2, "connect_timeout", &connect_timeout_ms))
        return 2;
    if (!http_scheme_len(&url))
        return fail_input(L, "url", "%s must be an http:// or https:// URL%s", "");
    lua_getfield(L, 2, "on_progress");
    int progress = 0;
    if (lua_isfunction(L, -1)) progress = lua_gettop(L);
    else if (!lua_isnil(L, -1))
        return fail_input(L, "on_progress", "%s must be a function, got %s", luaL_typename(L, -1));

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

/* ---- clocks ---- */

static int core_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static int core_sleep(lua_State *L) {
    lua_Number seconds = luaL_checknumber(L, 1);
    if (!(seconds > 0)) return 0;
    if (seconds > 86400) seconds = 86400;
    struct timespec ts = { (time_t)seconds, (long)((seconds - floor(seconds)) * 1e9) };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
    return 0;
}

/* ---- module ---- */

static int signer_gc(lua_State *L) {
    signer_box *box = luaL_checkudata(L, 1, SIGNER_MT);
    tc3_signer_free(box->signer);
    box->signer = NULL;
    return 0;
}

/* The one exported symbol: everything else stays hidden (-fvisibility=hidden) so nothing clashes. */
__attribute__((visibility("default"))) int luaopen_tencentcloud_iotexplorer_core(lua_State *L);

int luaopen_tencentcloud_iotexplorer_core(lua_State *L) {
    static const luaL_Reg session_methods[] = {
        { "close", session_close }, { "__gc", session_close }, { "__close", session_close },
        { "__tostring", session_tostring }, { NULL, NULL },
    };
    static const luaL_Reg functions[] = {
        { "sign", core_sign }, { "new_session", core_new_session },
        { "describe_batch_production", core_describe_batch_production }, { "call", core_call },
        { "download", core_download },
#ifdef TCIOT_TEST_HOOKS
        { "_decode_response", core_decode_response },
#endif
        { NULL, NULL },
    };
    if (tc3_global_init() || http_global_init()) return luaL_error(L, "OpenSSL or libcurl failed to initialise");

    if (luaL_newmetatable(L, SESSION_MT)) {
        luaL_setfuncs(L, session_methods, 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, SIGNER_MT)) {
        lua_pushcfunction(L, signer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);

    lua_createtable(L, 0, 8);
    signer_box *box = lua_newuserdata(L, sizeof *box);
    box->signer = NULL;
    luaL_getmetatable(L, SIGNER_MT);
    lua_setmetatable(L, -2);
    if (!(box->signer = tc3_signer_new())) return luaL_error(L, "could not create the TC3 signer (OpenSSL)");

    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson.safe");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);                 /* a private instance: other code's cjson settings do not reach us */
    lua_remove(L, -2);
    lua_getfield(L, -1, "decode_max_depth");
    lua_pushinteger(L, 64);
    lua_call(L, 1, 0);

    luaL_setfuncs(L, functions, 2);
    lua_pushcfunction(L, core_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, core_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushliteral(L, CORE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
