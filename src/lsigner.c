/* core.signer{...}: a TC3 signer bound to one set of credentials and one target, for callers that sign
 * many requests with the same key (the nginx transport, proxies). core.sign reads a dozen fields from a
 * table and builds two tables per call; a bound signer reads them once, so a signature costs tc3.c's work
 * plus one Lua string (the Authorization value). The signing and the header list are call.c's (sign_input,
 * set_headers), over the same target and call_input core.call uses: nothing here knows TC3. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BOUND_SIGNER_MT "tencentcloud.iotexplorer.core.bound_signer"

typedef struct bound_signer {
    tc3_signer *signer;                /* NULL once closed */
    char *block;                       /* every string below, copied at creation: one wipe covers the key */
    size_t block_len;
    target tg;                         /* host, region, language, service (url unused) */
    call_input fixed;                  /* the credentials and the request shape; action, version, timestamp per call */
} bound_signer;

static void bound_release(bound_signer *b) {
    tc3_signer_free(b->signer);        /* wipes the cached signing keys */
    b->signer = NULL;
    if (b->block) {
        OPENSSL_cleanse(b->block, b->block_len);
        free(b->block);
    }
    b->block = NULL;
    b->block_len = 0;
    memset(&b->tg, 0, sizeof b->tg);
    memset(&b->fixed, 0, sizeof b->fixed);
}

/* The metatable is the methods' first upvalue: checking it costs no registry look-up per signature. */
static bound_signer *check_bound(lua_State *L) {
    bound_signer *b = lua_touserdata(L, 1);
    if (!b || !lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
        luaL_argerror(L, 1, "expected a signer made by core.signer");
    lua_pop(L, 1);
    if (!b->signer) luaL_error(L, "the signer is closed");
    return b;
}

/* A header value: a non-empty string without CR, LF or NUL. */
static int header_safe(const char *s, size_t len) {
    if (!s || len == 0) return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
    return 1;
}

/* An argument that must be a header value; raises otherwise (a programming error). */
static void check_value(lua_State *L, int arg, lstr *out) {
    out->s = luaL_checklstring(L, arg, &out->len);
    if (out->len == 0) luaL_argerror(L, arg, "must not be empty");
    if (!header_safe(out->s, out->len)) luaL_argerror(L, arg, "must not contain CR, LF or NUL");
}

/* Reads sign's and explain's arguments (action, version, timestamp?, payload) into in, and signs. */
static void sign_args(lua_State *L, bound_signer *b, call_input *in) {
    lstr payload;
    *in = b->fixed;
    check_value(L, 2, &in->action);
    check_value(L, 3, &in->version);
    if (lua_isnoneornil(L, 4)) {
        in->timestamp = (int64_t)time(NULL);
    } else {
        if (lua_type(L, 4) != LUA_TNUMBER) luaL_argerror(L, 4, "timestamp must be a number");
        lua_Number n = lua_tonumber(L, 4);
        if (!(n >= 0 && n <= MAX_TIMESTAMP) || (lua_Number)(int64_t)n != n)
            luaL_argerror(L, 4, "must be a whole number of seconds between 1970 and 9999");
        in->timestamp = (int64_t)n;
    }
    payload.s = luaL_checklstring(L, 5, &payload.len);
    tc3_status st = sign_input(b->signer, &b->tg, in, payload.s, payload.len);
    if (st != TC3_OK)
        luaL_error(L, st == TC3_NO_MEMORY ? "out of memory while signing" : "OpenSSL failed while signing");
}

/* signer:sign(action, version, timestamp?, payload[, headers]) -> authorization[, headers]
 * With a table, every request header is also written into it (a table reused across calls costs no
 * allocation but the values). */
static int signer_sign(lua_State *L) {
    bound_signer *b = check_bound(L);
    int into = !lua_isnoneornil(L, 6);
    if (into) luaL_checktype(L, 6, LUA_TTABLE);
    call_input in;
    sign_args(L, b, &in);
    size_t len;
    const char *auth = tc3_authorization(b->signer, &len);
    lua_pushlstring(L, auth, len);
    if (!into) return 1;
    set_headers(L, b->signer, &b->tg, &in, 6);
    lua_pushvalue(L, 6);
    return 2;
}

/* signer:explain(action, version, timestamp?, payload) -> headers, { canonical_request, string_to_sign,
 * signature }: what core.sign returns, for debugging a signature the server refused. */
static int signer_explain(lua_State *L) {
    bound_signer *b = check_bound(L);
    lua_settop(L, 5);
    call_input in;
    sign_args(L, b, &in);
    lua_createtable(L, 0, CALL_MAX_HEADERS);
    set_headers(L, b->signer, &b->tg, &in, lua_gettop(L));
    push_signing_parts(L, b->signer);
    return 2;
}

/* close() and __gc: wipes the key; closing twice is fine. */
static int signer_close(lua_State *L) {
    bound_signer *b = lua_touserdata(L, 1);
    if (!b || !lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
        return luaL_argerror(L, 1, "expected a signer made by core.signer");
    bound_release(b);
    return 0;
}

static int signer_tostring(lua_State *L) {
    bound_signer *b = lua_touserdata(L, 1);
    lua_pushfstring(L, "tencentcloud.iotexplorer.core.signer (%s)", b && b->signer ? "open" : "closed");
    return 1;
}

static void push_metatable(lua_State *L) {
    static const luaL_Reg methods[] = {
        { "sign", signer_sign }, { "explain", signer_explain }, { "close", signer_close }, { NULL, NULL },
    };
    if (!luaL_newmetatable(L, BOUND_SIGNER_MT)) return;
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, signer_close, 1);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, signer_close, 1);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, signer_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
}

static const char *const SIGNER_FIELDS[] = {
    "secret_id", "secret_key", "token", "region", "language", "service", "host", "content_type",
    "signed_headers", NULL,
};

/* Copies s into the block at *p; returns the copy (NULL stays NULL). */
static lstr keep(char **p, lstr s) {
    if (!s.s) return s;
    char *at = *p;
    memcpy(at, s.s, s.len);
    at[s.len] = '\0';
    *p += s.len + 1;
    return (lstr){ at, s.len };
}

/* core.signer{ secret_id, secret_key, token?, host, region, language?, service?, content_type?,
 *              signed_headers? } -> signer | nil, err (no memory, OpenSSL). The fields are core.sign's;
 * misuse (a wrong type, an empty value, CR/LF/NUL in a header value, an unknown field) raises. */
int core_signer(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    arg_known(L, 1, "signer field", SIGNER_FIELDS);
    luaL_checkstack(L, 16, "too many signer fields");
    call_input in;
    memset(&in, 0, sizeof in);
    target tg;
    memset(&tg, 0, sizeof tg);
    arg_string(L, 1, "secret_id", 1, HEADER_VALUE, &in.secret_id);
    arg_string(L, 1, "secret_key", 1, ANY_BYTES, &in.secret_key);
    arg_string(L, 1, "token", 0, HEADER_VALUE, &in.token);
    read_signing_target(L, 1, &tg, &in);
    const lstr *all[] = { &in.secret_id, &in.secret_key, &in.token, &in.content_type, &in.signed_headers,
                          &tg.host, &tg.region, &tg.language, &tg.service };
    size_t total = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->s) total += all[i]->len + 1;

    /* The metatable goes on before any foreign object exists, so every path below is collected. */
    bound_signer *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    push_metatable(L);
    lua_setmetatable(L, -2);
    b->block = malloc(total);
    b->signer = b->block ? tc3_signer_new() : NULL;
    if (!b->signer) {
        bound_release(b);
        return fail_local(L, "ClientError.SignatureError", "could not create the signer (OpenSSL or memory)");
    }
    b->block_len = total;
    char *p = b->block;
    call_input *f = &b->fixed;
    f->secret_id = keep(&p, in.secret_id);
    f->secret_key = keep(&p, in.secret_key);
    f->token = keep(&p, in.token);
    f->content_type = keep(&p, in.content_type);
    f->signed_headers = keep(&p, in.signed_headers);
    f->method = (lstr){ "POST", 4 };
    b->tg.host = keep(&p, tg.host);
    b->tg.region = keep(&p, tg.region);
    b->tg.language = keep(&p, tg.language);
    b->tg.service = keep(&p, tg.service);
    return 1;
}

/* The same signature for LuaJIT's FFI (ffi.cast("void *", signer) gives the userdata's address): no Lua
 * stack, so a compiled trace calls it directly. Returns the Authorization value (owned by the signer, valid
 * until its next signature) or NULL when the signer is closed or an argument is unusable (the caller
 * raises). */
__attribute__((visibility("default"))) const char *tciot_signer_sign(void *ud, const char *action,
    size_t action_len, const char *version, size_t version_len, double timestamp, const char *payload,
    size_t payload_len, size_t *auth_len);

const char *tciot_signer_sign(void *ud, const char *action, size_t action_len, const char *version,
                              size_t version_len, double timestamp, const char *payload, size_t payload_len,
                              size_t *auth_len) {
    bound_signer *b = ud;
    if (!b || !b->signer || !header_safe(action, action_len) || !header_safe(version, version_len) || !payload
        || !(timestamp >= 0 && timestamp <= MAX_TIMESTAMP) || (double)(int64_t)timestamp != timestamp)
        return NULL;
    call_input in = b->fixed;
    in.action = (lstr){ action, action_len };
    in.version = (lstr){ version, version_len };
    in.timestamp = (int64_t)timestamp;
    if (sign_input(b->signer, &b->tg, &in, payload, payload_len) != TC3_OK) return NULL;
    return tc3_authorization(b->signer, auth_len);
}
