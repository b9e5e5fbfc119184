/* The project's own signer (src/tc3.c) driven from C, for `make bench`: what a call pays for its signature,
 * without the Lua binding's tables. Same request and timestamps as the other signing baselines.
 * usage: sign_tc3 SECONDS [warm|cold]   prints RESULT <signatures/s> <CPU us/signature> <count> */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "sign_common.h"
#include "tc3.h"

#include <string.h>

int main(int argc, char **argv) {
    double seconds = bench_seconds(argc, argv, 1, 0.3);
    int cold = argc > 2 && strcmp(argv[2], "cold") == 0;
    tc3_signer *s = tc3_signer_new();
    if (!s) return 1;
    tc3_request r = {
        .secret_id = SIGN_SECRET_ID, .secret_key = SIGN_SECRET_KEY, .secret_key_len = strlen(SIGN_SECRET_KEY),
        .service = VEC_SERVICE, .method = "POST", .query = "", .host = VEC_HOST, .action = "DescribeInstances",
        .content_type = VEC_CONTENT_TYPE, .signed_headers = "content-type;host", .payload = VEC_PAYLOAD,
        .payload_len = strlen(VEC_PAYLOAD), .timestamp = SIGN_TIMESTAMP,
    };
    if (tc3_sign(s, &r) != TC3_OK || strcmp(tc3_signature(s), VEC_SIGNATURE) != 0) {
        fprintf(stderr, "sign_tc3: wrong signature for the published vector\n");
        return 1;
    }
    char keys[COLD_KEYS][48];
    for (int i = 0; i < COLD_KEYS; i++) snprintf(keys[i], sizeof keys[i], "%s%02d", SIGN_SECRET_KEY, i);
    r.service = SIGN_SERVICE;
    r.host = SIGN_HOST;
    r.action = "DescribeBatchProduction";
    r.content_type = SIGN_CONTENT_TYPE;
    r.payload = SIGN_PAYLOAD;
    r.payload_len = strlen(SIGN_PAYLOAD);
    long ops = 0;
    double wall0 = bench_wall(), cpu0 = bench_cpu(), wall;
    do {
        for (int i = 0; i < 256; i++, ops++) {
            int k = (int)(ops % COLD_KEYS);
            if (cold) {
                r.secret_key = keys[k];
                r.secret_key_len = strlen(keys[k]);
                r.timestamp = SIGN_TIMESTAMP + 86400L * k;
            } else {
                r.timestamp = SIGN_TIMESTAMP + (ops & 1023);
            }
            if (tc3_sign(s, &r) != TC3_OK) return 1;
        }
        wall = bench_wall() - wall0;
    } while (wall < seconds);
    bench_report(ops, wall, bench_cpu() - cpu0);
    tc3_signer_free(s);
    return 0;
}
