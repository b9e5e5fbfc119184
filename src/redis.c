/* tencentcloud.iotexplorer.redis_core: one blocking Redis connection per object, over hiredis.
 *
 *   local redis_core = require("tencentcloud.iotexplorer.redis_core")
 *   local conn, err = redis_core.connect{ host = "127.0.0.1", port = 6379, connect_timeout = 0.1, timeout = 0.1 }
 *                  -- or { path = "/run/redis.sock", ... }
 *   local value, err, kind = conn:command("EVALSHA", sha, "1", key, ...)
 *   conn:close()
 *
 * Replies become Lua values: bulk and status strings -> string, integers -> integer, nil -> false, arrays ->
 * sequences. An error reply returns nil, message, "reply" (the connection stays usable). A failed connection
 * (refused, timeout, closed by the server) returns nil, message, "io" and closes the connection: hiredis
 * cannot resume a context after an I/O error, so the caller connects again.
 *
 * Thread-safety: no state outside the connection object; each object owns its context, so objects used in
 * different threads (or Lua states) never share anything. A connection must not be used by two threads at
 * once (nginx's thread-pool VMs each keep their own).
 *
 * No Lua error can leave memory behind: the reply being converted is owned by the connection object until
 * the conversion is done, so a memory error while pushing it is freed by the next command or by __gc. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <lauxlib.h>
#include <lua.h>

#define CONN_MT "tencentcloud.iotexplorer.redis_core.conn"

/* Enough for EVALSHA with a handful of keys and arguments: refused, not truncated, beyond it. */
#define MAX_ARGS 32

/* Replies nest this deep at most (the store's script returns a flat array). */
#define MAX_DEPTH 8

typedef struct {
    redisContext *ctx;
    redisReply *reply; /* a reply whose conversion to Lua values has not finished yet */
} conn_t;

static void conn_release(conn_t *c) {
    if (c->reply) {
        freeReplyObject(c->reply);
        c->reply = NULL;
    }
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}

/* Seconds (a Lua number) as a timeval; nil -> default. Raises on a bad value (before anything is owned). */
static struct timeval opt_timeout(lua_State *L, int opts, const char *name, double dflt) {
    double s = dflt;
    struct timeval tv;
    lua_getfield(L, opts, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER) {
            luaL_error(L, "%s must be a number of seconds", name);
        }
        s = lua_tonumber(L, -1);
        if (!(s > 0 && s <= 86400)) {
            luaL_error(L, "%s must be a positive number of seconds up to a day", name);
        }
    }
    lua_pop(L, 1);
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    if (tv.tv_sec == 0 && tv.tv_usec == 0) {
        tv.tv_usec = 1;
    }
    return tv;
}

static int push_failure(lua_State *L, const char *message, const char *kind) {
    lua_pushnil(L);
    lua_pushstring(L, message);
    lua_pushstring(L, kind);
    return 3;
}

/* The context's error as a message a person can act on (hiredis says "Resource temporarily unavailable"
 * for a timeout). */
static const char *context_error(const redisContext *ctx, char *buf, size_t len) {
    if (ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT)) {
        return "timed out";
    }
    if (ctx->err == REDIS_ERR_EOF) {
        return "the server closed the connection";
    }
    snprintf(buf, len, "%s", ctx->errstr[0] ? ctx->errstr : "connection error");
    return buf;
}

/* redis_core.connect(opts) -> conn | nil, message */
static int l_connect(lua_State *L) {
    const char *host = NULL, *path = NULL;
    lua_Integer port = 6379;
    struct timeval connect_tv, tv;
    conn_t *c;
    redisContext *ctx;
    char buf[256];

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    host = lua_tostring(L, -1); /* stays on the stack (and alive) until we return */
    lua_getfield(L, 1, "path");
    path = lua_tostring(L, -1);
    lua_getfield(L, 1, "port");
    if (!lua_isnil(L, -1)) {
        port = lua_tointeger(L, -1);
        if (port < 1 || port > 65535) {
            return luaL_error(L, "port must be from 1 to 65535");
        }
    }
    lua_pop(L, 1);
    if ((host == NULL) == (path == NULL)) {
        return luaL_error(L, "connect needs host (and port) or path");
    }
    connect_tv = opt_timeout(L, 1, "connect_timeout", 0.1);
    tv = opt_timeout(L, 1, "timeout", 0.1);

    /* The userdata first: once the context exists, nothing may raise before it is owned by an object. */
    c = (conn_t *)lua_newuserdata(L, sizeof *c);
    c->ctx = NULL;
    c->reply = NULL;
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);

    errno = 0;
    ctx = path ? redisConnectUnixWithTimeout(path, connect_tv) : redisConnectWithTimeout(host, (int)port, connect_tv);
    if (ctx == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    c->ctx = ctx;
    if (ctx->err) {
        const char *msg = context_error(ctx, buf, sizeof buf);
        lua_pushnil(L);
        lua_pushstring(L, msg);
        conn_release(c);
        return 2;
    }
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        const char *msg = context_error(ctx, buf, sizeof buf);
        lua_pushnil(L);
        lua_pushstring(L, msg);
        conn_release(c);
        return 2;
    }
    return 1; /* the userdata */
}

static conn_t *check_conn(lua_State *L) {
    return (conn_t *)luaL_checkudata(L, 1, CONN_MT);
}

/* Pushes r as a Lua value; may raise (memory), which is why r stays owned by the connection meanwhile. */
static void push_reply(lua_State *L, const redisReply *r, int depth) {
    size_t i;
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, (size_t)r->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        break;
    case REDIS_REPLY_ARRAY:
        if (depth >= MAX_DEPTH) {
            lua_pushboolean(L, 0);
            break;
        }
        luaL_checkstack(L, 4, "redis reply");
        lua_createtable(L, (int)r->elements, 0);
        for (i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i], depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    default: /* NIL, and an error nested in an array */
        lua_pushboolean(L, 0);
        break;
    }
}

/* conn:command(arg, ...) -> value | nil, message, "reply" | "io" */
static int l_command(lua_State *L) {
    conn_t *c = check_conn(L);
    int argc = lua_gettop(L) - 1, i;
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    redisReply *r;
    char buf[256];
    int nret = 1;

    if (c->reply) { /* left by a conversion that raised */
        freeReplyObject(c->reply);
        c->reply = NULL;
    }
    if (argc < 1 || argc > MAX_ARGS) {
        return luaL_error(L, "command takes from 1 to %d arguments", MAX_ARGS);
    }
    for (i = 0; i < argc; i++) {
        int t = lua_type(L, i + 2);
        if (t != LUA_TSTRING && t != LUA_TNUMBER) {
            return luaL_error(L, "command argument %d must be a string or a number", i + 1);
        }
        argv[i] = lua_tolstring(L, i + 2, &lens[i]); /* numbers become strings in place: still on the stack */
    }
    if (c->ctx == NULL) {
        return push_failure(L, "the connection is closed", "io");
    }
    errno = 0;
    r = (redisReply *)redisCommandArgv(c->ctx, argc, argv, lens);
    if (r == NULL) {
        const char *msg = context_error(c->ctx, buf, sizeof buf);
        lua_pushnil(L);
        lua_pushstring(L, msg);
        lua_pushliteral(L, "io");
        conn_release(c);
        return 3;
    }
    c->reply = r;
    if (r->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, r->str, (size_t)r->len);
        lua_pushliteral(L, "reply");
        nret = 3;
    } else {
        push_reply(L, r, 0);
    }
    c->reply = NULL;
    freeReplyObject(r);
    return nret;
}

static int l_close(lua_State *L) {
    conn_release(check_conn(L));
    return 0;
}

static int l_is_open(lua_State *L) {
    lua_pushboolean(L, check_conn(L)->ctx != NULL);
    return 1;
}

/* Names no host, port or path: a connection is printed in logs, and its URL may carry a password. */
static int l_tostring(lua_State *L) {
    conn_t *c = check_conn(L);
    lua_pushstring(L, c->ctx ? "redis connection (open)" : "redis connection (closed)");
    return 1;
}

/* redis_core.pid() -> this process's id: a connection made before a fork belongs to the parent. */
static int l_pid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

int luaopen_tencentcloud_iotexplorer_redis_core(lua_State *L);

__attribute__((visibility("default"))) int luaopen_tencentcloud_iotexplorer_redis_core(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"command", l_command}, {"close", l_close}, {"is_open", l_is_open}, {NULL, NULL}};
    const luaL_Reg *m;
    if (luaL_newmetatable(L, CONN_MT)) {
        lua_newtable(L);
        for (m = methods; m->name; m++) {
            lua_pushcfunction(L, m->func);
            lua_setfield(L, -2, m->name);
        }
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_connect);
    lua_setfield(L, -2, "connect");
    lua_pushcfunction(L, l_pid);
    lua_setfield(L, -2, "pid");
    return 1;
}
