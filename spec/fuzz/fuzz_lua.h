/* Shared by the Lua-facing fuzz targets: one Lua 5.4 state per process with the core linked in (built
 * from src/ with the fuzzer's instrumentation) under its real module name, lua-cjson from the system, and
 * a harness chunk from spec/fuzz/<target>.lua that defines fuzz_one(data). fuzz_one raises when an
 * invariant breaks; any Lua error is a finding, so it aborts with the message.
 *
 * libcurl must never run here: curl_easy_perform below overrides libcurl's (the executable's definition
 * wins) and aborts, so a harness that reached the network would be a crash, not a silent request. */
#ifndef FUZZ_LUA_H
#define FUZZ_LUA_H

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int luaopen_tencentcloud_iotexplorer_core(lua_State *L);

CURLcode curl_easy_perform(CURL *curl);
CURLcode curl_easy_perform(CURL *curl) {
    (void)curl;
    fprintf(stderr, "fuzz: curl_easy_perform was called: a fuzz target must never perform I/O\n");
    abort();
}

static lua_State *fuzz_L;

static void fuzz_lua_die(const char *what) {
    fprintf(stderr, "fuzz: %s: %s\n", what, fuzz_L ? lua_tostring(fuzz_L, -1) : "(no state)");
    abort();
}

/* Loads the core and spec/fuzz/<name>.lua (found next to this source, or via $TCIOT_FUZZ_DIR). */
static void fuzz_lua_init(const char *script) {
    fuzz_L = luaL_newstate();
    if (!fuzz_L) abort();
    luaL_openlibs(fuzz_L);
    luaL_requiref(fuzz_L, "tencentcloud.iotexplorer.core", luaopen_tencentcloud_iotexplorer_core, 0);
    lua_pop(fuzz_L, 1);
    const char *dir = getenv("TCIOT_FUZZ_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "spec/fuzz", script);
    if (luaL_dofile(fuzz_L, path)) fuzz_lua_die("loading the harness");
}

static void fuzz_lua_run(const uint8_t *data, size_t size) {
    lua_State *L = fuzz_L;
    lua_settop(L, 0);
    lua_getglobal(L, "fuzz_one");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0)) fuzz_lua_die("invariant broken");
    static unsigned runs;
    if (++runs % 256 == 0) lua_gc(L, LUA_GCCOLLECT, 0);   /* keep garbage from looking like growth */
}

#endif
