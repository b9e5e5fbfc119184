/* libFuzzer target: the core's argument checks (get_string, get_seconds, get_timestamp, parse_endpoint,
 * read_common, the header lines) through core.sign, core.call and core.describe_batch_production with
 * arbitrary field values and types. The harness (spec/fuzz/fuzz_sign.lua) arranges that call and
 * describe_batch_production always stop before any I/O; fuzz_lua.h aborts if libcurl is ever asked to
 * perform a request. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fuzz_L) fuzz_lua_init("fuzz_sign.lua");
    fuzz_lua_run(data, size);
    return 0;
}
