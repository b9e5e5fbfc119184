/* Baseline (b) for `make bench`, the limit: TC3 signing written well in C. SHA-256 and HMAC are fetched from
 * OpenSSL once, every context is allocated once and reused, strings are built with memcpy into fixed
 * buffers, and the derived signing key is kept in an HMAC context that is re-armed, not re-keyed.
 * usage: sign_tuned SECONDS [warm|cold]   (cold: a different key and date each signature)
 * prints RESULT <signatures/s> <CPU us/signature> <count> */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "sign_common.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

static EVP_MD *sha256;
static EVP_MD_CTX *md;
static EVP_MAC_CTX *derive, *signing;  /* signing holds the cached key; derive is re-keyed per step */
static char cached_key[128], cached_date[16], cached_service[32];

static void die(const char *what) {
    fprintf(stderr, "sign_tuned: %s failed\n", what);
    exit(1);
}

static void hex(const unsigned char *d, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
}

static void sha256_hex(const char *s, size_t n, char *out) {
    unsigned char d[32];
    if (!EVP_DigestInit_ex2(md, sha256, NULL) || !EVP_DigestUpdate(md, s, n) || !EVP_DigestFinal_ex(md, d, NULL))
        die("SHA-256");
    hex(d, 32, out);
}

/* out = HMAC(key, msg); key NULL re-arms ctx with the key it already holds. */
static void hmac(EVP_MAC_CTX *ctx, const unsigned char *key, size_t key_len, const char *msg, size_t n,
                 unsigned char *out) {
    size_t len;
    if (!EVP_MAC_init(ctx, key, key_len, NULL) || !EVP_MAC_update(ctx, (const unsigned char *)msg, n)
        || !EVP_MAC_final(ctx, out, &len, 32))
        die("HMAC");
}

static char *put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}
#define PUT(p, lit) put(p, lit, sizeof lit - 1)

static void utc_date(long timestamp, char *out) {
    time_t t = (time_t)timestamp;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

static void sign(const char *secret_key, const char *service, const char *host, const char *content_type,
                 const char *payload, size_t payload_len, long timestamp, char *sig, char *auth) {
    char date[16], payload_hash[64], request_hash[64], canonical[1024], to_sign[512], stamp[24];
    utc_date(timestamp, date);
    size_t service_len = strlen(service), stamp_len = (size_t)snprintf(stamp, sizeof stamp, "%ld", timestamp);
    sha256_hex(payload, payload_len, payload_hash);
    char *p = PUT(canonical, "POST\n/\n\ncontent-type:");
    p = put(p, content_type, strlen(content_type));
    p = PUT(p, "\nhost:");
    p = put(p, host, strlen(host));
    p = PUT(p, "\n\ncontent-type;host\n");
    p = put(p, payload_hash, 64);
    sha256_hex(canonical, (size_t)(p - canonical), request_hash);
    p = PUT(to_sign, "TC3-HMAC-SHA256\n");
    p = put(p, stamp, stamp_len);
    p = PUT(p, "\n");
    p = put(p, date, 10);
    p = PUT(p, "/");
    p = put(p, service, service_len);
    p = PUT(p, "/tc3_request\n");
    p = put(p, request_hash, 64);
    size_t to_sign_len = (size_t)(p - to_sign);

    unsigned char mac[32];
    if (strcmp(secret_key, cached_key) != 0 || strcmp(date, cached_date) != 0 || strcmp(service, cached_service) != 0) {
        char key[128];
        size_t key_len = strlen(secret_key) + 3;
        unsigned char k_date[32], k_service[32], k_signing[32];
        memcpy(key, "TC3", 3);
        memcpy(key + 3, secret_key, key_len - 3);
        hmac(derive, (const unsigned char *)key, key_len, date, 10, k_date);
        hmac(derive, k_date, 32, service, service_len, k_service);
        hmac(derive, k_service, 32, "tc3_request", 11, k_signing);
        hmac(signing, k_signing, 32, to_sign, to_sign_len, mac);
        strcpy(cached_key, secret_key);
        strcpy(cached_date, date);
        strcpy(cached_service, service);
    } else {
        hmac(signing, NULL, 0, to_sign, to_sign_len, mac);
    }
    hex(mac, 32, sig);
    sig[64] = '\0';
    p = PUT(auth, "TC3-HMAC-SHA256 Credential=" SIGN_SECRET_ID "/");
    p = put(p, date, 10);
    p = PUT(p, "/");
    p = put(p, service, service_len);
    p = PUT(p, "/tc3_request, SignedHeaders=content-type;host, Signature=");
    p = put(p, sig, 64);
    *p = '\0';
}

int main(int argc, char **argv) {
    double seconds = bench_seconds(argc, argv, 1, 0.3);
    int cold = argc > 2 && strcmp(argv[2], "cold") == 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    md = EVP_MD_CTX_new();
    if (!mac || !sha256 || !md || !(derive = EVP_MAC_CTX_new(mac)) || !(signing = EVP_MAC_CTX_new(mac)))
        die("OpenSSL set-up");
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                            OSSL_PARAM_construct_end() };
    if (!EVP_MAC_CTX_set_params(derive, params) || !EVP_MAC_CTX_set_params(signing, params)) die("HMAC digest");

    char sig[65], auth[512], keys[COLD_KEYS][48];
    sign(SIGN_SECRET_KEY, VEC_SERVICE, VEC_HOST, VEC_CONTENT_TYPE, VEC_PAYLOAD, strlen(VEC_PAYLOAD), SIGN_TIMESTAMP,
         sig, auth);
    if (strcmp(sig, VEC_SIGNATURE) != 0) {
        fprintf(stderr, "sign_tuned: wrong signature for the published vector: %s\n", sig);
        return 1;
    }
    for (int i = 0; i < COLD_KEYS; i++) snprintf(keys[i], sizeof keys[i], "%s%02d", SIGN_SECRET_KEY, i);
    size_t payload_len = strlen(SIGN_PAYLOAD);
    long ops = 0;
    double wall0 = bench_wall(), cpu0 = bench_cpu(), wall;
    do {
        for (int i = 0; i < 256; i++, ops++) {
            int k = (int)(ops % COLD_KEYS);
            sign(cold ? keys[k] : SIGN_SECRET_KEY, SIGN_SERVICE, SIGN_HOST, SIGN_CONTENT_TYPE, SIGN_PAYLOAD,
                 payload_len, cold ? SIGN_TIMESTAMP + 86400L * k : SIGN_TIMESTAMP + (ops & 1023), sig, auth);
        }
        wall = bench_wall() - wall0;
    } while (wall < seconds);
    bench_report(ops, wall, bench_cpu() - cpu0);
    return 0;
}
