/* Baseline (a) for `make bench`: TC3 signing written the naive way with OpenSSL's one-shot calls, SHA256()
 * and HMAC(EVP_sha256(), ...), and snprintf; the signing key is derived again for every signature.
 * usage: sign_naive SECONDS   prints RESULT <signatures/s> <CPU us/signature> <count> */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "sign_common.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>

static void hex(const unsigned char *d, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void sha256_hex(const char *s, char *out) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, strlen(s), d);
    hex(d, sizeof d, out);
}

static void hmac(const void *key, size_t key_len, const char *msg, unsigned char *out) {
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len);
}

/* Returns the Authorization header value in auth (and the signature in sig). */
static void sign(const char *secret_key, const char *service, const char *host, const char *content_type,
                 const char *payload, long timestamp, char *sig, char *auth, size_t auth_size) {
    char date[16], payload_hash[65], canonical[1024], request_hash[65], to_sign[512], key[128];
    time_t t = (time_t)timestamp;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    sha256_hex(payload, payload_hash);
    snprintf(canonical, sizeof canonical, "POST\n/\n\ncontent-type:%s\nhost:%s\n\ncontent-type;host\n%s",
             content_type, host, payload_hash);
    sha256_hex(canonical, request_hash);
    snprintf(to_sign, sizeof to_sign, "TC3-HMAC-SHA256\n%ld\n%s/%s/tc3_request\n%s", timestamp, date, service,
             request_hash);
    unsigned char k_date[32], k_service[32], k_signing[32], mac[32];
    snprintf(key, sizeof key, "TC3%s", secret_key);
    hmac(key, strlen(key), date, k_date);
    hmac(k_date, 32, service, k_service);
    hmac(k_service, 32, "tc3_request", k_signing);
    hmac(k_signing, 32, to_sign, mac);
    hex(mac, 32, sig);
    snprintf(auth, auth_size, "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=content-type;host, "
             "Signature=%s", SIGN_SECRET_ID, date, service, sig);
}

int main(int argc, char **argv) {
    double seconds = bench_seconds(argc, argv, 1, 0.3);
    char sig[65], auth[512];
    sign(SIGN_SECRET_KEY, VEC_SERVICE, VEC_HOST, VEC_CONTENT_TYPE, VEC_PAYLOAD, SIGN_TIMESTAMP, sig, auth, sizeof auth);
    if (strcmp(sig, VEC_SIGNATURE) != 0) {
        fprintf(stderr, "sign_naive: wrong signature for the published vector: %s\n", sig);
        return 1;
    }
    long ops = 0;
    double wall0 = bench_wall(), cpu0 = bench_cpu(), wall;
    do {
        for (int i = 0; i < 256; i++, ops++)
            sign(SIGN_SECRET_KEY, SIGN_SERVICE, SIGN_HOST, SIGN_CONTENT_TYPE, SIGN_PAYLOAD,
                 SIGN_TIMESTAMP + (ops & 1023), sig, auth, sizeof auth);
        wall = bench_wall() - wall0;
    } while (wall < seconds);
    bench_report(ops, wall, bench_cpu() - cpu0);
    return 0;
}
