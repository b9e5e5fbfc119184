/* libFuzzer target: a response body and status code -> the core's decode path (cjson, the envelope
 * checks, normalise, the error table), through the test hook core._decode_response, present only when
 * src/core.c is built with -DTCIOT_TEST_HOOKS. Invariants live in spec/fuzz/fuzz_response.lua. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fuzz_L) fuzz_lua_init("fuzz_response.lua");
    fuzz_lua_run(data, size);
    return 0;
}
