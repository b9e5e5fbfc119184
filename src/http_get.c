/* core.http_get: a small plain-HTTP GET on a connection of its own, never through a proxy. For link-local
 * services such as the CVM role metadata endpoint, whose answers are short and whose address a proxy
 * would not reach. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_BYTES (64 * 1024)
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define MAX_GET_HEADERS 16

static const char *const GET_OPTIONS[] = {
    "timeout", "connect_timeout", "headers", "max_bytes", "interruptible", NULL,
};

/* core.http_get(url, { timeout?, connect_timeout?, headers? = { "Name: value", ... }, max_bytes? (64 KiB),
 *                      interruptible? }) -> body, status | nil, err */
int core_http_get(lua_State *L) {
    lstr url;
    url.s = luaL_checklstring(L, 1, &url.len);
    if (url.len <= 7 || strncasecmp(url.s, "http://", 7) != 0)
        luaL_argerror(L, 1, "an http:// URL expected (plain HTTP only)");
    if (memchr(url.s, '\0', url.len) || memchr(url.s, '\r', url.len) || memchr(url.s, '\n', url.len))
        luaL_argerror(L, 1, "the URL must not contain CR, LF or NUL");
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_newtable(L);
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    arg_known(L, 2, "http_get option", GET_OPTIONS);
    long timeout_ms = arg_seconds(L, 2, "timeout"), connect_timeout_ms = arg_seconds(L, 2, "connect_timeout");
    int64_t max_bytes = DEFAULT_MAX_BYTES;
    arg_integer(L, 2, "max_bytes", 1, 1073741824.0, &max_bytes);
    int interruptible = arg_boolean(L, 2, "interruptible");

    const char *lines[MAX_GET_HEADERS];
    size_t n = 0;
    lua_getfield(L, 2, "headers");
    int headers = lua_gettop(L);
    if (!lua_isnil(L, headers)) {
        if (!lua_istable(L, headers)) luaL_error(L, "bad field 'headers' (table expected, got %s)", luaL_typename(L, headers));
        luaL_checkstack(L, MAX_GET_HEADERS + 2, "too many headers");
        for (int i = 1;; i++) {
            lua_rawgeti(L, headers, i);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            size_t len;
            const char *line = lua_tolstring(L, -1, &len);
            if (lua_type(L, -1) != LUA_TSTRING || len == 0 || !memchr(line, ':', len))
                luaL_error(L, "bad field 'headers' (item %d: a \"Name: value\" string expected)", i);
            if (memchr(line, '\r', len) || memchr(line, '\n', len) || memchr(line, '\0', len))
                luaL_error(L, "bad field 'headers' (item %d must not contain CR, LF or NUL)", i);
            if (n == MAX_GET_HEADERS) luaL_error(L, "bad field 'headers' (at most %d)", MAX_GET_HEADERS);
            lines[n++] = line;            /* stays on the stack, so the pointer stays valid */
        }
    }

    http_options o = {
        .timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS,
        .connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS,
        .user_agent = "tencentcloud-iotexplorer-lua/" CORE_VERSION, .max_response_bytes = (size_t)max_bytes,
    };
    watch w;
    if (watch_begin(L, &w, interruptible)) return 2;
    char message[HTTP_MESSAGE_SIZE];
    http_session *h = http_session_new(&o, message, sizeof message);
    if (!h) {
        watch_end(&w);
        return fail_local(L, "ClientError.SessionError", message);
    }
    http_request req = {
        .method = "GET", .url = url.s, .headers = lines, .header_count = n, .direct = 1, .stop = watch_flag(&w),
    };
    http_result r;
    int results;
    if (http_perform(h, &req, &r) != HTTP_OK) {
        results = transport_failure(L, &r);
    } else {
        lua_pushlstring(L, r.body, r.body_len);
        lua_pushinteger(L, (lua_Integer)r.code);
        results = 2;
    }
    http_session_free(h);
    watch_end(&w);
    return results;
}
