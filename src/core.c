/* tencentcloud.iotexplorer.core: the module's entry point, the functions it registers, and its clocks.
 * The return convention and the division into files are described in lcore.h. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"
#include "multi.h"

#include <errno.h>
#include <math.h>
#include <time.h>

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
        { "download", core_download }, { "new_multi", core_new_multi },
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

    multi_open(L);
    luaL_setfuncs(L, functions, 2);
    lua_pushcfunction(L, core_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, core_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushliteral(L, CORE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
