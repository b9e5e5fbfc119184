/* libFuzzer target: the core's argument checks (lcore.c's arg_*, the session's target, the header list)
 * through core.sign, core.call and core.new_session with arbitrary field values and types. The harness
 * (spec/fuzz/fuzz_sign.lua) arranges that call always stops before any I/O; fuzz_lua.h aborts if libcurl
 * is ever asked to perform a request. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fuzz_L) fuzz_lua_init("fuzz_sign.lua");
    fuzz_lua_run(data, size);
    return 0;
}
