/* core.signer{...}: a TC3 signer bound to one set of credentials and one request shape, for callers that
 * sign many requests with the same key (the nginx transport, proxies). core.sign reads a dozen fields from
 * a table and builds two tables per call; a bound signer reads them once, so a signature costs tc3.c's
 * work plus one Lua string (the Authorization value). The header list is call.c's (build_headers); the
 * signing is tc3.c's: nothing here knows TC3. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BOUND_SIGNER_MT "tencentcloud.iotexplorer.core.bound_signer"
#define DEFAULT_SERVICE "iotexplorer"
#define DEFAULT_CONTENT_TYPE "application/json"
#define DEFAULT_SIGNED_HEADERS "content-type;host"

/* The fields copied at creation, in one block (so one wipe covers the key and the token). */
enum { F_SECRET_ID, F_SECRET_KEY, F_TOKEN, F_REGION, F_LANGUAGE, F_SERVICE, F_HOST, F_CONTENT_TYPE,
       F_SIGNED_HEADERS, F_COUNT };

typedef struct bound_signer {
    tc3_signer *signer;                /* NULL once closed */
    char *block;                       /* every field below points into it */
    size_t block_len;
    lstr f[F_COUNT];                   /* s == NULL for an absent optional field */
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
    memset(b->f, 0, sizeof b->f);
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

/* A header value: a non-empty string without CR, LF or NUL. Raises otherwise (a programming error). */
static void check_value(lua_State *L, int arg, lstr *out) {
    out->s = luaL_checklstring(L, arg, &out->len);
    if (out->len == 0) luaL_argerror(L, arg, "must not be empty");
    for (size_t i = 0; i < out->len; i++)
        if (out->s[i] == '\r' || out->s[i] == '\n' || out->s[i] == '\0')
            luaL_argerror(L, arg, "must not contain CR, LF or NUL");
}

/* Reads sign's and explain's arguments (action, version, timestamp?, payload) into in, and signs. */
static void sign_args(lua_State *L, bound_signer *b, call_input *in) {
    lstr payload;
    memset(in, 0, sizeof *in);
    check_value(L, 2, &in->action);
    check_value(L, 3, &in->version);
    if (lua_isnoneornil(L, 4)) {
        in->timestamp = (int64_t)time(NULL);
    } else {
        if (lua_type(L, 4) != LUA_TNUMBER) luaL_argerror(L, 4, "timestamp must be a number");
        lua_Number n = lua_tonumber(L, 4);
        if (!(n >= 0 && n <= 253402300799.0) || (lua_Number)(int64_t)n != n)
            luaL_argerror(L, 4, "must be a whole number of seconds between 1970 and 9999");
        in->timestamp = (int64_t)n;
    }
    payload.s = luaL_checklstring(L, 5, &payload.len);
    in->secret_id = b->f[F_SECRET_ID];
    in->secret_key = b->f[F_SECRET_KEY];
    in->token = b->f[F_TOKEN];
    in->region = b->f[F_REGION];
    in->language = b->f[F_LANGUAGE];
    in->service = b->f[F_SERVICE];
    in->host = b->f[F_HOST];
    in->content_type = b->f[F_CONTENT_TYPE];
    in->signed_headers = b->f[F_SIGNED_HEADERS];
    tc3_request r = {
        .secret_id = in->secret_id.s, .secret_key = in->secret_key.s, .secret_key_len = in->secret_key.len,
        .service = in->service.s, .method = "POST", .query = "", .host = in->host.s, .action = in->action.s,
        .content_type = in->content_type.s, .signed_headers = in->signed_headers.s, .payload = payload.s,
        .payload_len = payload.len, .timestamp = in->timestamp,
    };
    tc3_status st = tc3_sign(b->signer, &r);
    if (st != TC3_OK)
        luaL_error(L, st == TC3_NO_MEMORY ? "out of memory while signing" : "OpenSSL failed while signing");
}

/* Writes every header of the request just signed into the table at index t. */
static void fill_headers(lua_State *L, const bound_signer *b, const call_input *in, int t) {
    header_list l;
    build_headers(b->signer, in, &l);
    for (int i = 0; i < l.n; i++) {
        lua_pushlstring(L, l.h[i].value, l.h[i].value_len);
        lua_setfield(L, t, l.h[i].name);
    }
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
    fill_headers(L, b, &in, 6);
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
    lua_createtable(L, 0, MAX_HEADERS);
    fill_headers(L, b, &in, lua_gettop(L));
    lua_createtable(L, 0, 3);
    size_t len;
    const char *text = tc3_canonical_request(b->signer, &len);
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "canonical_request");
    text = tc3_string_to_sign(b->signer, &len);
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "string_to_sign");
    lua_pushstring(L, tc3_signature(b->signer));
    lua_setfield(L, -2, "signature");
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

/* core.signer{ secret_id, secret_key, token?, region, language?, host, service?, content_type?,
 *              signed_headers? } -> signer | nil, err */
int core_signer(lua_State *L) {
    static const struct { const char *name; int required; const char *fallback; } fields[F_COUNT] = {
        [F_SECRET_ID] = { "secret_id", 1, NULL }, [F_SECRET_KEY] = { "secret_key", 1, NULL },
        [F_TOKEN] = { "token", 0, NULL }, [F_REGION] = { "region", 1, NULL },
        [F_LANGUAGE] = { "language", 0, NULL }, [F_SERVICE] = { "service", 0, DEFAULT_SERVICE },
        [F_HOST] = { "host", 1, NULL }, [F_CONTENT_TYPE] = { "content_type", 0, DEFAULT_CONTENT_TYPE },
        [F_SIGNED_HEADERS] = { "signed_headers", 0, DEFAULT_SIGNED_HEADERS },
    };
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_checkstack(L, F_COUNT + 8, "too many signer fields");
    lstr v[F_COUNT];
    size_t total = 0;
    for (int i = 0; i < F_COUNT; i++) {
        int rc = get_string(L, 1, fields[i].name, fields[i].required, &v[i]);
        if (rc < 0) return 2;
        if (rc == 0 && fields[i].fallback) {
            v[i].s = fields[i].fallback;
            v[i].len = strlen(fields[i].fallback);
        }
        if (v[i].s) total += v[i].len + 1;
    }
    if (strcmp(v[F_SIGNED_HEADERS].s, "content-type;host") != 0
        && strcmp(v[F_SIGNED_HEADERS].s, "content-type;host;x-tc-action") != 0)
        return fail_input(L, "signed_headers", "%s must be \"content-type;host\" or "
                                               "\"content-type;host;x-tc-action\"%s", "");

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
    for (int i = 0; i < F_COUNT; i++) {
        if (!v[i].s) continue;
        memcpy(p, v[i].s, v[i].len);
        p[v[i].len] = '\0';
        b->f[i].s = p;
        b->f[i].len = v[i].len;
        p += v[i].len + 1;
    }
    return 1;
}

/* The same signature for LuaJIT's FFI (ffi.cast("void *", signer) gives the userdata's address): no Lua
 * stack, so a compiled trace calls it directly. Returns the Authorization value (owned by the signer, valid
 * until its next signature) or NULL when the signer is closed or an argument is unusable (the caller
 * raises). */
__attribute__((visibility("default"))) const char *tciot_signer_sign(void *ud, const char *action,
    size_t action_len, const char *version, size_t version_len, double timestamp, const char *payload,
    size_t payload_len, size_t *auth_len);

static int header_safe(const char *s, size_t len) {
    if (!s || len == 0) return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
    return 1;
}

const char *tciot_signer_sign(void *ud, const char *action, size_t action_len, const char *version,
                              size_t version_len, double timestamp, const char *payload, size_t payload_len,
                              size_t *auth_len) {
    bound_signer *b = ud;
    if (!b || !b->signer || !header_safe(action, action_len) || !header_safe(version, version_len) || !payload
        || !(timestamp >= 0 && timestamp <= 253402300799.0) || (double)(int64_t)timestamp != timestamp)
        return NULL;
    tc3_request r = {
        .secret_id = b->f[F_SECRET_ID].s, .secret_key = b->f[F_SECRET_KEY].s,
        .secret_key_len = b->f[F_SECRET_KEY].len, .service = b->f[F_SERVICE].s, .method = "POST", .query = "",
        .host = b->f[F_HOST].s, .action = action, .content_type = b->f[F_CONTENT_TYPE].s,
        .signed_headers = b->f[F_SIGNED_HEADERS].s, .payload = payload, .payload_len = payload_len,
        .timestamp = (int64_t)timestamp,
    };
    if (tc3_sign(b->signer, &r) != TC3_OK) return NULL;
    return tc3_authorization(b->signer, auth_len);
}
