/* The API call: reads a request table, signs it (tc3.c), posts it (http.c) and turns the answer into the
 * Response table or nil, err. core.sign exposes the same signing and header list to the specs. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <openssl/crypto.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SERVICE "iotexplorer"
#define DEFAULT_VERSION "2019-04-23"
#define DEFAULT_CONTENT_TYPE "application/json"
#define DEFAULT_SIGNED_HEADERS "content-type;host"

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

/* One request header: its name and value, borrowed from the strings the call already holds. */
typedef struct header { const char *name, *value; size_t value_len; } header;

typedef struct header_list {
    header h[CALL_MAX_HEADERS];
    int n;
    char stamp[24];                    /* the X-TC-Timestamp value */
} header_list;

/* The headers of one signed request, in the order they are sent: written once, for core.call (as lines for
 * libcurl) and core.sign (as a table). The signer must hold the signature of this request. */
static void build_headers(const tc3_signer *signer, const call_input *in, header_list *l) {
    size_t auth_len, stamp_len = (size_t)snprintf(l->stamp, sizeof l->stamp, "%lld", (long long)in->timestamp);
    const char *auth = tc3_authorization(signer, &auth_len);
    l->n = 0;
#define ADD(name_, value_, len_) (l->h[l->n].name = name_, l->h[l->n].value = value_, l->h[l->n++].value_len = len_)
    ADD("Authorization", auth, auth_len);
    ADD("Content-Type", in->content_type.s, in->content_type.len);
    ADD("Host", in->host.s, in->host.len);
    ADD("X-TC-Action", in->action.s, strlen(in->action.s));
    ADD("X-TC-Version", in->version.s, strlen(in->version.s));
    ADD("X-TC-Timestamp", l->stamp, stamp_len);
    ADD("X-TC-Region", in->region.s, in->region.len);
    if (in->token.s) ADD("X-TC-Token", in->token.s, in->token.len);
    if (in->language.s) ADD("X-TC-Language", in->language.s, in->language.len);
    ADD("X-TC-RequestClient", "SDK_LUA_" CORE_VERSION, sizeof "SDK_LUA_" CORE_VERSION - 1);
#undef ADD
}

/* The header lines ("Name: value") and the URL of one request, NUL-terminated one after the other in the
 * scratch buffer (the session's or a multi handle's): no Lua strings, so nothing for the collector. Returns
 * the line count, or -1 when out of memory. */
static int request_lines(const tc3_signer *signer, call_scratch *scratch, const call_input *in,
                         const char **lines, const char **url) {
    header_list l;
    build_headers(signer, in, &l);
    size_t url_len = (size_t)(in->host.s + in->host.len - in->endpoint.s);
    size_t need = url_len + 2;
    for (int i = 0; i < l.n; i++) need += strlen(l.h[i].name) + 3 + l.h[i].value_len;
    if (need > scratch->cap) {
        char *p = malloc(need);
        if (!p) return -1;
        call_scratch_free(scratch);
        scratch->data = p;
        scratch->cap = need;
    }
    char *p = scratch->data;
    for (int i = 0; i < l.n; i++) {
        size_t name_len = strlen(l.h[i].name);
        lines[i] = p;
        memcpy(p, l.h[i].name, name_len);
        memcpy(p + name_len, ": ", 2);
        memcpy(p + name_len + 2, l.h[i].value, l.h[i].value_len);
        p += name_len + 2 + l.h[i].value_len;
        *p++ = '\0';
    }
    *url = p;
    memcpy(p, in->endpoint.s, url_len);
    memcpy(p + url_len, "/", 2);
    return l.n;
}

void call_scratch_free(call_scratch *scratch) {
    if (scratch->data) OPENSSL_cleanse(scratch->data, scratch->cap);   /* held Authorization, maybe a token */
    free(scratch->data);
    scratch->data = NULL;
    scratch->cap = 0;
}

/* core.sign(t) -> headers, { canonical_request, string_to_sign, signature } */
int core_sign(lua_State *L) {
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

    header_list l;
    build_headers(box->signer, &in, &l);
    lua_createtable(L, 0, l.n);
    for (int i = 0; i < l.n; i++) {
        lua_pushlstring(L, l.h[i].value, l.h[i].value_len);
        lua_setfield(L, -2, l.h[i].name);
    }
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
int core_decode_response(lua_State *L) {
    http_result r;
    memset(&r, 0, sizeof r);
    r.body = luaL_checklstring(L, 1, &r.body_len);
    r.code = (long)luaL_checkinteger(L, 2);
    r.server_date = (int64_t)luaL_optinteger(L, 3, -1);
    r.sent = 1;
    return decode_response(L, &r);
}
#endif

/* The request encoding, in one place: replaces the params table at index t by its JSON text. Returns 0, or
 * 2 with nil, err pushed. */
static int encode_request(lua_State *L, int t) {
    push_json_fn(L, "encode");
    lua_pushvalue(L, t);
    lua_call(L, 1, 2);                 /* cjson.safe: nil, message for functions, cycles, bad keys */
    if (lua_isnil(L, -2))
        return fail_input(L, "params", "%s cannot be encoded as JSON: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_replace(L, t);
    return 0;
}

/* Reads the action's own fields and pushes the JSON body: for core.describe_batch_production the two ids,
 * for core.call { action, version?, params? }. Returns 0, or 2 with nil, err pushed. */
static int read_body(lua_State *L, int t, call_kind kind, call_input *in) {
    if (kind == CALL_DESCRIBE_BATCH_PRODUCTION) {
        lstr product, batch;
        if (get_string(L, t, "ProductId", 1, &product) < 0 || get_string(L, t, "BatchProductionId", 1, &batch) < 0)
            return 2;
        in->action.s = "DescribeBatchProduction";
        in->version.s = DEFAULT_VERSION;
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "{\"ProductId\":");
        add_json_string(&b, &product);
        luaL_addstring(&b, ",\"BatchProductionId\":");
        add_json_string(&b, &batch);
        luaL_addchar(&b, '}');
        luaL_pushresult(&b);
        return 0;
    }
    if (get_string(L, t, "action", 1, &in->action) < 0 || get_string(L, t, "version", 0, &in->version) < 0)
        return 2;
    if (!in->version.s) in->version.s = DEFAULT_VERSION;
    lua_getfield(L, t, "params");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    } else if (!lua_istable(L, -1)) {
        return fail_input(L, "params", "%s must be a table, got %s", luaL_typename(L, -1));
    }
    return encode_request(L, lua_gettop(L));
}

int call_build(lua_State *L, int t, call_kind kind, tc3_signer *signer, call_scratch *scratch,
               const char **lines, http_request *req) {
    call_input in;
    memset(&in, 0, sizeof in);
    if (read_common(L, t, &in, 1) || read_body(L, t, kind, &in)) return 2;
    in.method.s = "POST";
    size_t body_len;
    const char *body = lua_tolstring(L, -1, &body_len);
    lua_pushlstring(L, in.host.s, in.host.len);
    const char *host = lua_tostring(L, -1);
    tc3_status st = sign_input(signer, &in, host, body, body_len);
    if (st != TC3_OK) return fail_signing(L, st);

    const char *url;
    int n = request_lines(signer, scratch, &in, lines, &url);
    if (n < 0) return fail_signing(L, TC3_NO_MEMORY);
    http_request r = {
        .method = "POST", .url = url, .headers = lines, .header_count = (size_t)n, .body = body,
        .body_len = body_len, .timeout_ms = in.timeout_ms, .connect_timeout_ms = in.connect_timeout_ms,
        .fresh_connection = in.fresh_connection,
    };
    *req = r;
    return 0;
}

int call_result(lua_State *L, http_status hs, const http_result *r) {
    return hs != HTTP_OK ? transport_failure(L, r) : decode_response(L, r);
}

/* Builds and performs one call on the session. */
static int perform(lua_State *L, call_kind kind) {
    session *s = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (session_unusable(L, s)) return 2;
    const char *lines[CALL_MAX_HEADERS];
    http_request req;
    if (call_build(L, 2, kind, s->signer, &s->scratch, lines, &req)) return 2;
    http_result r;
    s->busy = 1;
    http_status hs = http_perform(s->http, &req, &r);
    s->busy = 0;
    int results = call_result(L, hs, &r);
    if (s->close_pending) session_release(s);      /* r.body lives in the session: release after decoding */
    return results;
}

/* core.describe_batch_production(session, { ProductId, BatchProductionId, ...common }) -> Response | nil, err */
int core_describe_batch_production(lua_State *L) { return perform(L, CALL_DESCRIBE_BATCH_PRODUCTION); }

/* core.call(session, { action, version?, params?, ...common }) -> Response | nil, err */
int core_call(lua_State *L) { return perform(L, CALL_ACTION); }
