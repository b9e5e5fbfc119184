/* The argument and error helpers every Lua-facing file of the core shares (declared in lcore.h). */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <math.h>
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

/* ClientError.InvalidParameter naming the field; the message is fmt with the field and `what`. */
int fail_input(lua_State *L, const char *field, const char *fmt, const char *what) {
    fail_local(L, "ClientError.InvalidParameter", lua_pushfstring(L, fmt, field, what));
    lua_remove(L, -3);                 /* the formatted message, now in the table */
    lua_pushstring(L, field);
    lua_setfield(L, -2, "field");
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


/* ---- reading request tables ---- */

/* Reads t[field] as a string, leaving the value on the stack so the pointer stays valid.
 * Returns 1 when present, 0 when absent (nil) and optional, or pushes an error (-1). */
int get_string(lua_State *L, int t, const char *field, int required, lstr *out) {
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
int get_seconds(lua_State *L, int t, const char *field, long *ms) {
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
int get_timestamp(lua_State *L, int t, const char *field, int64_t *out) {
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
size_t http_scheme_len(const lstr *url) {
    if (url->len > 7 && strncasecmp(url->s, "http://", 7) == 0) return 7;
    if (url->len > 8 && strncasecmp(url->s, "https://", 8) == 0) return 8;
    return 0;
}


int transport_failure(lua_State *L, const http_result *r) {
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

