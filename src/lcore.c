/* The argument and error helpers every Lua-facing file of the core shares (declared in lcore.h). */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>


/* Whole numbers read as integers on Lua 5.3+ (3, not 3.0); older VMs only have doubles. */
void push_int64(lua_State *L, int64_t v) {
#if COMPAT_HAS_INTEGERS
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/* Pushes nil and { code, message, sent = false } and returns 2: a failure before any request left. */
int fail_local(lua_State *L, const char *code, const char *message) {
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

/* The error table after a request was attempted; the caller fills message and extra fields. */
void push_transport_error(lua_State *L, const char *code, const http_result *r) {
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


/* ---- reading argument tables ---- */

static int bad_field(lua_State *L, const char *field, const char *problem) {
    return luaL_error(L, "bad field '%s' (%s)", field, problem);
}

int arg_string(lua_State *L, int t, const char *field, int required, int allowed, lstr *out) {
    luaL_checkstack(L, 2, "too many fields");
    lua_getfield(L, t, field);
    int type = lua_type(L, -1);
    out->s = NULL;
    out->len = 0;
    if (type == LUA_TNIL && !required) return 0;
    if (type != LUA_TSTRING)
        return bad_field(L, field, lua_pushfstring(L, "string expected, got %s", lua_typename(L, type)));
    out->s = lua_tolstring(L, -1, &out->len);
    if (out->len == 0) return bad_field(L, field, "must not be empty");
    /* The value itself stays out of the message: it may be a key. */
    if (allowed != ANY_BYTES && memchr(out->s, '\0', out->len)) return bad_field(L, field, "must not contain NUL");
    if (allowed == HEADER_VALUE && (memchr(out->s, '\r', out->len) || memchr(out->s, '\n', out->len)))
        return bad_field(L, field, "must not contain CR or LF");
    return 1;
}

/* The steps arg_seconds, arg_integer and arg_boolean share: reads t[field] and pops it again. Returns 0 when
 * it is nil (absent) and 1 when it has type `want`, its number (a boolean as 0 or 1) in *value; any other type
 * raises "bad field '<field>' (<expected> expected, got <type>)". Each caller then applies its own rule. */
static int arg_scalar(lua_State *L, int t, const char *field, int want, const char *expected, lua_Number *value) {
    lua_getfield(L, t, field);
    int type = lua_type(L, -1);
    *value = type == LUA_TBOOLEAN ? (lua_Number)lua_toboolean(L, -1) : lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (type == LUA_TNIL) return 0;
    if (type != want)
        return bad_field(L, field, lua_pushfstring(L, "%s expected, got %s", expected, lua_typename(L, type)));
    return 1;
}

long arg_seconds(lua_State *L, int t, const char *field) {
    lua_Number n;
    if (!arg_scalar(L, t, field, LUA_TNUMBER, "number of seconds", &n)) return 0;
    if (!(n > 0 && n <= 86400.0)) return bad_field(L, field, "must be more than 0 and at most 86400 seconds");
    return (long)ceil(n * 1000.0);
}

int arg_integer(lua_State *L, int t, const char *field, double min, double max, int64_t *out) {
    lua_Number n;
    if (!arg_scalar(L, t, field, LUA_TNUMBER, "integer", &n)) return 0;
    if (!(n >= min && n <= max) || floor(n) != n) {
        char range[80];
        snprintf(range, sizeof range, "must be a whole number from %.0f to %.0f", min, max);
        return bad_field(L, field, range);
    }
    *out = (int64_t)n;
    return 1;
}

int arg_boolean(lua_State *L, int t, const char *field) {
    lua_Number v;
    return arg_scalar(L, t, field, LUA_TBOOLEAN, "boolean", &v) && v != 0;
}

void arg_known(lua_State *L, int t, const char *what, const char *const *known) {
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        int found = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *key = lua_tostring(L, -1);
            for (size_t i = 0; known[i] && !found; i++) found = strcmp(known[i], key) == 0;
        }
        if (!found) {
            lua_pushvalue(L, -1);          /* tostring on a copy: lua_next needs the key as it was */
            luaL_error(L, "unknown %s '%s'", what, lua_tostring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
        }
    }
}

int is_http_url(const lstr *url) {
    return (url->len > 7 && strncasecmp(url->s, "http://", 7) == 0)
        || (url->len > 8 && strncasecmp(url->s, "https://", 8) == 0);
}

int transport_failure(lua_State *L, const http_result *r) {
    static const char *const codes[] = {
        [HTTP_NETWORK] = "ClientError.NetworkError", [HTTP_TIMEOUT] = "ClientError.Timeout",
        [HTTP_TOO_LARGE] = "ClientError.ResponseTooLarge", [HTTP_NO_MEMORY] = "ClientError.NetworkError",
        [HTTP_ABORTED] = "ClientError.NetworkError", [HTTP_INTERRUPTED] = "ClientError.Interrupted",
    };
    lua_pushnil(L);
    push_transport_error(L, codes[r->status], r);
    lua_pushstring(L, r->message);
    lua_setfield(L, -2, "message");
    if (r->status == HTTP_INTERRUPTED) {
        lua_pushinteger(L, watch_signal());
        lua_setfield(L, -2, "signal");
    }
    return 2;
}

