/* The few Lua 5.1 (LuaJIT) shims the core needs. Static and not prefixed lua_, so they never clash. */
#ifndef TCIOT_COMPAT_H
#define TCIOT_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
static inline int compat_absindex(lua_State *L, int i) {
    return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex compat_absindex
#endif

/* Lua 5.3+ has a distinct integer subtype; older VMs store every number as a double. */
#if LUA_VERSION_NUM >= 503
#define COMPAT_HAS_INTEGERS 1
#else
#define COMPAT_HAS_INTEGERS 0
#endif

#endif
