/* libFuzzer target: bytes -> a Lua value (tables, numbers, strings, markers, cycles) -> the request encoder
 * (core.json_encode, src/jsonenc.c) -> read back by lua-cjson and by a strict reader. The generator and the
 * invariants live in spec/fuzz/fuzz_encode.lua. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fuzz_L) fuzz_lua_init("fuzz_encode.lua");
    fuzz_lua_run(data, size);
    /* Each input builds fresh tables: free them now, so that libFuzzer's malloc/free balance does not call
     * for a leak scan after every input that finds something new. */
    lua_gc(fuzz_L, LUA_GCCOLLECT, 0);
    return 0;
}
