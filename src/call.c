/* The API call: reads the per-call fields, signs (tc3.c) with what the session fixed, posts (http.c) and
 * turns the answer into the Response table or nil, err. core.sign exposes the same signing and the same
 * header list to the specs; the bound signer (lsigner.c) uses them too. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <openssl/crypto.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONTENT_TYPE "application/json"
#define SIGNED_HEADERS "content-type;host"
#define KEEP_BODY_BUFFER (64u * 1024u)

/* ---- JSON ---- */

/* cjson decodes numbers as doubles and null as a sentinel: make integral values integers (on Lua 5.3+)
 * and drop nulls, so results read as the server meant them. The decoder refuses nan, inf and hex
 * numbers (decode_invalid_numbers off) but reads a literal past the doubles, like 1e400, as an infinity:
 * returns -1 when one is found, so that such a body is no more valid here than the others. */
static int normalise(lua_State *L, int t, int null_idx) {
    luaL_checkstack(L, 4, "response JSON nested too deeply");
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int type = lua_type(L, -1);
        if (type == LUA_TTABLE) {
            if (normalise(L, lua_absindex(L, -1), null_idx)) return lua_pop(L, 2), -1;
        } else if (type == LUA_TLIGHTUSERDATA && lua_rawequal(L, -1, null_idx)) {
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, t);              /* clearing an existing field during lua_next is allowed */
        } else if (type == LUA_TNUMBER
#if COMPAT_HAS_INTEGERS
                   && !lua_isinteger(L, -1)
#endif
        ) {
            lua_Number n = lua_tonumber(L, -1);
            if (isinf(n)) return lua_pop(L, 2), -1;
#if COMPAT_HAS_INTEGERS
            if (floor(n) == n && fabs(n) <= 9007199254740992.0) {
                lua_pushvalue(L, -2);
                lua_pushinteger(L, (lua_Integer)n);
                lua_rawset(L, t);
            }
#endif
        }
        lua_pop(L, 1);
    }
    return 0;
}

static void push_json_fn(lua_State *L, const char *name) { lua_getfield(L, UV_JSON, name); }

/* ---- the request ---- */

/* Reads the fields call and sign share, leaving the strings on the stack. Raises on misuse. */
static void read_input(lua_State *L, int t, call_input *in) {
    luaL_checkstack(L, 24, "too many request fields");
    in->unsigned_request = arg_boolean(L, t, "unsigned");
    arg_string(L, t, "secret_id", !in->unsigned_request, HEADER_VALUE, &in->secret_id);
    arg_string(L, t, "secret_key", !in->unsigned_request, ANY_BYTES, &in->secret_key);
    arg_string(L, t, "token", 0, HEADER_VALUE, &in->token);
    arg_string(L, t, "action", 1, HEADER_VALUE, &in->action);
    arg_string(L, t, "version", 1, HEADER_VALUE, &in->version);
    if (!arg_integer(L, t, "timestamp", 0, MAX_TIMESTAMP, &in->timestamp)) in->timestamp = (int64_t)time(NULL);
}

void read_signing_target(lua_State *L, int t, target *tg, call_input *in) {
    luaL_checkstack(L, 12, "too many signing fields");
    arg_string(L, t, "host", 1, HEADER_VALUE, &tg->host);
    arg_string(L, t, "region", 1, HEADER_VALUE, &tg->region);
    arg_string(L, t, "language", 0, HEADER_VALUE, &tg->language);
    if (!arg_string(L, t, "service", 0, HEADER_VALUE, &tg->service))
        tg->service = (lstr){ DEFAULT_SERVICE, sizeof DEFAULT_SERVICE - 1 };
    if (!arg_string(L, t, "content_type", 0, HEADER_VALUE, &in->content_type))
        in->content_type = (lstr){ CONTENT_TYPE, sizeof CONTENT_TYPE - 1 };
    if (!arg_string(L, t, "signed_headers", 0, HEADER_VALUE, &in->signed_headers))
        in->signed_headers = (lstr){ SIGNED_HEADERS, sizeof SIGNED_HEADERS - 1 };
    if (strcmp(in->signed_headers.s, SIGNED_HEADERS) != 0
        && strcmp(in->signed_headers.s, SIGNED_HEADERS ";x-tc-action") != 0)
        luaL_error(L, "bad field 'signed_headers' (\"" SIGNED_HEADERS "\" or \"" SIGNED_HEADERS ";x-tc-action\")");
}

tc3_status sign_input(tc3_signer *signer, const target *tg, const call_input *in, const char *payload,
                      size_t payload_len) {
    tc3_request r = {
        .secret_id = in->secret_id.s, .secret_key = in->secret_key.s, .secret_key_len = in->secret_key.len,
        .service = tg->service.s, .method = in->method.s, .query = in->query.s ? in->query.s : "",
        .host = tg->host.s, .action = in->action.s, .content_type = in->content_type.s,
        .signed_headers = in->signed_headers.s, .payload = payload, .payload_len = payload_len,
        .timestamp = in->timestamp,
    };
    return tc3_sign(signer, &r);
}

static int fail_signing(lua_State *L, tc3_status st) {
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

/* The headers of one request, in the order they are sent: written once, for core.call (as lines for
 * libcurl), core.sign and the bound signer (as tables). A signed request's signer must hold its signature. */
static void build_headers(const tc3_signer *signer, const target *tg, const call_input *in, header_list *l) {
    size_t auth_len = 4, stamp_len = (size_t)snprintf(l->stamp, sizeof l->stamp, "%lld", (long long)in->timestamp);
    const char *auth = in->unsigned_request ? "SKIP" : tc3_authorization(signer, &auth_len);
    l->n = 0;
#define ADD(name_, value_, len_) (l->h[l->n].name = name_, l->h[l->n].value = value_, l->h[l->n++].value_len = len_)
    ADD("Authorization", auth, auth_len);
    ADD("Content-Type", in->content_type.s, in->content_type.len);
    ADD("Host", tg->host.s, tg->host.len);
    ADD("X-TC-Action", in->action.s, in->action.len);
    ADD("X-TC-Version", in->version.s, in->version.len);
    ADD("X-TC-Timestamp", l->stamp, stamp_len);
    ADD("X-TC-Region", tg->region.s, tg->region.len);
    if (in->token.s) ADD("X-TC-Token", in->token.s, in->token.len);
    if (tg->language.s) ADD("X-TC-Language", tg->language.s, tg->language.len);
    ADD("X-TC-RequestClient", "SDK_LUA_" CORE_VERSION, sizeof "SDK_LUA_" CORE_VERSION - 1);
#undef ADD
}

void set_headers(lua_State *L, const tc3_signer *signer, const target *tg, const call_input *in, int t) {
    header_list l;
    build_headers(signer, tg, in, &l);
    for (int i = 0; i < l.n; i++) {
        lua_pushlstring(L, l.h[i].value, l.h[i].value_len);
        lua_setfield(L, t, l.h[i].name);
    }
}

void push_signing_parts(lua_State *L, const tc3_signer *signer) {
    lua_createtable(L, 0, 3);
    size_t len;
    const char *text = tc3_canonical_request(signer, &len);
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "canonical_request");
    text = tc3_string_to_sign(signer, &len);
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "string_to_sign");
    lua_pushstring(L, tc3_signature(signer));
    lua_setfield(L, -2, "signature");
}

/* The header lines ("Name: value") of one request, NUL-terminated one after the other in the session's
 * scratch buffer: no Lua strings, so nothing for the collector. Returns the line count, or -1 when out of
 * memory. */
static int request_lines(session *s, const call_input *in, const char **lines) {
    header_list l;
    build_headers(s->signer, &s->target, in, &l);
    size_t need = 0;
    for (int i = 0; i < l.n; i++) need += strlen(l.h[i].name) + 3 + l.h[i].value_len;
    if (need > s->scratch_cap) {
        char *p = malloc(need);
        if (!p) return -1;
        if (s->scratch) OPENSSL_cleanse(s->scratch, s->scratch_cap);
        free(s->scratch);
        s->scratch = p;
        s->scratch_cap = need;
    }
    char *p = s->scratch;
    for (int i = 0; i < l.n; i++) {
        size_t name_len = strlen(l.h[i].name);
        lines[i] = p;
        memcpy(p, l.h[i].name, name_len);
        memcpy(p + name_len, ": ", 2);
        memcpy(p + name_len + 2, l.h[i].value, l.h[i].value_len);
        p += name_len + 2 + l.h[i].value_len;
        *p++ = '\0';
    }
    return l.n;
}

/* core.sign{ secret_id, secret_key, token?, host, region, language?, service?, action, version, timestamp?,
 *            method? ("POST"), query?, content_type?, signed_headers?, payload (POST) }
 *   -> headers, { canonical_request, string_to_sign, signature }
 * The signer and header list core.call uses, for the published vectors and the emulator's cross-checks. */
int core_sign(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    call_input in;
    memset(&in, 0, sizeof in);
    target tg;
    memset(&tg, 0, sizeof tg);
    read_input(L, 1, &in);
    read_signing_target(L, 1, &tg, &in);
    if (!arg_string(L, 1, "method", 0, HEADER_VALUE, &in.method)) in.method = (lstr){ "POST", 4 };
    if (strcmp(in.method.s, "POST") != 0 && strcmp(in.method.s, "GET") != 0)
        luaL_error(L, "bad field 'method' (\"POST\" or \"GET\" expected)");
    arg_string(L, 1, "query", 0, HEADER_VALUE, &in.query);
    lstr payload = { "", 0 };
    if (strcmp(in.method.s, "POST") == 0) {
        lua_getfield(L, 1, "payload");
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad field 'payload' (string expected: the exact body, got %s)", luaL_typename(L, -1));
        payload.s = lua_tolstring(L, -1, &payload.len);
    }
    signer_box *box = lua_touserdata(L, UV_SIGNER);
    if (!in.unsigned_request) {
        tc3_status st = sign_input(box->signer, &tg, &in, payload.s, payload.len);
        if (st != TC3_OK) return fail_signing(L, st);
    }

    lua_createtable(L, 0, CALL_MAX_HEADERS);
    set_headers(L, box->signer, &tg, &in, lua_gettop(L));
    if (in.unsigned_request) return 1;
    push_signing_parts(L, box->signer);
    return 2;
}

/* ---- the response ---- */

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
    int finite = 1;
    if (is_envelope) {
        push_json_fn(L, "null");
        finite = normalise(L, resp, lua_gettop(L)) == 0;
        lua_pop(L, 1);
        is_envelope = finite;
    }
    if (is_envelope) {
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
                          : !finite ? "response JSON holds a number too large for a double"
                          : is_envelope ? "the Error object in the response has no Code"
                          : lua_type(L, doc) == LUA_TTABLE ? "response JSON has no Response object"
                          : "response body is not valid JSON");
    }
    lua_setfield(L, -2, "message");
    return 2;
}

/* core.decode_response(body, http_status[, server_date]) -> Response | nil, err: the decoder, on bytes a
 * transport other than libcurl received (nginx's own upstream, see ngx_http.lua; the fuzzers). */
int core_decode_response(lua_State *L) {
    http_result r;
    memset(&r, 0, sizeof r);
    r.body = luaL_checklstring(L, 1, &r.body_len);
    r.code = (long)luaL_checkinteger(L, 2);
    r.server_date = (int64_t)luaL_optinteger(L, 3, -1);
    r.sent = 1;
    return decode_response(L, &r);
}

/* ---- the call ---- */

/* The request encoding, in one place: the params table at index t as JSON into s->body (jsonenc.h has the
 * rules). Returns 0, or 2 with nil, err pushed, err.field naming the value JSON cannot hold. */
static int encode_request(lua_State *L, session *s, int t) {
    jsonenc_error err;
    s->body.len = 0;
    jsonenc_status st = jsonenc_value(L, t, &s->body, &err);
    if (st == JSONENC_OK) return 0;
    if (st == JSONENC_NO_MEMORY) return fail_local(L, "ClientError.NetworkError", "out of memory while encoding the request body");
    const char *field = err.path[0] ? err.path : "params";
    lua_pushfstring(L, "%s %s", field, err.what);
    fail_local(L, "ClientError.InvalidParameter", lua_tostring(L, -1));
    lua_pushstring(L, field);
    lua_setfield(L, -2, "field");
    return 2;
}

int call_build(lua_State *L, session *s, int t, const char **lines, http_request *out) {
    if (!s->target.host.s) luaL_error(L, "this session has no host: give new_session a host to call the API");
    call_input in;
    memset(&in, 0, sizeof in);
    read_input(L, t, &in);
    in.content_type = (lstr){ CONTENT_TYPE, sizeof CONTENT_TYPE - 1 };
    in.signed_headers = (lstr){ SIGNED_HEADERS, sizeof SIGNED_HEADERS - 1 };
    in.method = (lstr){ "POST", 4 };
    long timeout_ms = arg_seconds(L, t, "timeout");
    int fresh = arg_boolean(L, t, "fresh_connection");
    lstr body;
    lua_getfield(L, t, "params");
    int params = lua_gettop(L);
    int has_body = arg_string(L, t, "body", 0, ANY_BYTES, &body);
    if (has_body && !lua_isnil(L, params)) luaL_error(L, "bad request (params or body, not both)");
    if (!has_body) {
        if (lua_isnil(L, params)) {
            body = (lstr){ "{}", 2 };
        } else {
            if (!lua_istable(L, params))
                luaL_error(L, "bad field 'params' (table expected, got %s)", luaL_typename(L, params));
            if (encode_request(L, s, params)) return 2;
            body = (lstr){ s->body.data, s->body.len };
        }
    }

    if (!in.unsigned_request) {
        tc3_status st = sign_input(s->signer, &s->target, &in, body.s, body.len);
        if (st != TC3_OK) return fail_signing(L, st);
    }
    int n = request_lines(s, &in, lines);
    if (n < 0) return fail_signing(L, TC3_NO_MEMORY);
    http_request req = {
        .method = "POST", .url = s->target.url.s, .headers = lines, .header_count = (size_t)n, .body = body.s,
        .body_len = body.len, .timeout_ms = timeout_ms, .fresh_connection = fresh,
    };
    *out = req;
    return 0;
}

int call_result(lua_State *L, http_status hs, const http_result *r) {
    return hs != HTTP_OK ? transport_failure(L, r) : decode_response(L, r);
}

void call_trim_body(session *s) {
    if (s->body.cap > KEEP_BODY_BUFFER) {          /* one huge request does not pin its memory */
        OPENSSL_cleanse(s->body.data, s->body.cap);
        jsonenc_buf_free(&s->body);
    }
}

/* core.call(session, { secret_id, secret_key, token?, timestamp?, action, version, params? | body?,
 *                      timeout?, fresh_connection?, unsigned? }) -> Response | nil, err */
int core_call(lua_State *L) {
    session *s = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (session_unusable(L, s)) return 2;
    const char *lines[CALL_MAX_HEADERS];
    http_request req;
    if (call_build(L, s, 2, lines, &req)) return 2;
    watch w;
    if (watch_begin(L, &w, s->interruptible)) return 2;
    req.stop = watch_flag(&w);
    http_result r;
    s->busy = 1;
    http_status hs = http_perform(s->http, &req, &r);
    s->busy = 0;
    int results = call_result(L, hs, &r);
    if (s->close_pending) session_release(s);      /* r.body lives in the session: release after decoding */
    call_trim_body(s);
    watch_end(&w);
    return results;
}
