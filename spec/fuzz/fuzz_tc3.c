/* libFuzzer target: the TC3 signer (src/tc3.c) with arbitrary secret id and key, service, host, action,
 * content type, query, payload and timestamp. Plain C, no Lua. Invariants checked on every input:
 *   - tc3_sign succeeds exactly when the timestamp is in 1970..9999 (the signed-header sets are valid);
 *   - the signature is 64 lowercase hex digits and the credential date is the timestamp's UTC date
 *     (checked against a civil-calendar computation that shares nothing with tc3_utc_date);
 *   - the same input signed twice (the second time from the signing-key cache), by a long-lived signer
 *     whose cache other inputs have filled and evicted, and by a fresh signer, gives the same canonical
 *     request, string to sign, signature and Authorization;
 *   - the signature equals OpenSSL's one-shot HMAC chain over the string to sign, and the string to
 *     sign carries the SHA-256 of the canonical request.
 * Input: 8 bytes of timestamp (little endian), 1 flag byte (bit 0: sign x-tc-action too, bit 1: GET),
 * then fields separated by 0x00: secret_id, secret_key, service, host, action, content_type, query, and
 * the payload (the rest, NUL bytes included). The secret key is length-counted, so it may hold NUL via
 * the escape 0x01 0x01 -> 0x00. */
#include "tc3.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS 7

static tc3_signer *warm;               /* lives across inputs: its key cache sees every input */

static void fail(const char *what) {
    fprintf(stderr, "fuzz_tc3 invariant broken: %s\n", what);
    abort();
}

static int is_lower_hex(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian), after H. Hinnant's algorithm. */
static void civil_date(int64_t ts, char out[16]) {
    int64_t z = ts / 86400 + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    snprintf(out, 16, "%04d-%02d-%02d", (int)(y + (m <= 2)), (int)m, (int)d);
}

static void hmac(const void *key, size_t key_len, const void *msg, size_t len, unsigned char out[32]) {
    unsigned int n = 32;
    if (!HMAC(EVP_sha256(), key, (int)key_len, msg, len, out, &n) || n != 32) fail("OpenSSL HMAC failed");
}

typedef struct snapshot { char *canonical, *string_to_sign, *authorization, signature[TC3_HEX_LEN + 1]; } snapshot;

static char *dup_view(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void take(const tc3_signer *s, snapshot *out) {
    size_t n;
    const char *v = tc3_canonical_request(s, &n);
    out->canonical = dup_view(v, n);
    v = tc3_string_to_sign(s, &n);
    out->string_to_sign = dup_view(v, n);
    v = tc3_authorization(s, &n);
    out->authorization = dup_view(v, n);
    memcpy(out->signature, tc3_signature(s), sizeof out->signature);
}

static void same(const snapshot *a, const snapshot *b, const char *what) {
    if (strcmp(a->canonical, b->canonical) || strcmp(a->string_to_sign, b->string_to_sign)
        || strcmp(a->authorization, b->authorization) || strcmp(a->signature, b->signature))
        fail(what);
}

static void release(snapshot *s) {
    free(s->canonical);
    free(s->string_to_sign);
    free(s->authorization);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 9) return 0;
    if (!warm && !(warm = tc3_signer_new())) fail("tc3_signer_new failed");
    uint64_t raw = 0;
    for (int i = 0; i < 8; i++) raw |= (uint64_t)data[i] << (8 * i);
    /* Mostly plausible times (0 .. ~2^38 s, past 9999 too), sometimes anything, negatives included. */
    int64_t timestamp = (raw >> 63) ? (int64_t)raw : (int64_t)(raw & ((1ULL << 38) - 1));
    uint8_t flags = data[8];
    data += 9;
    size -= 9;

    /* Split into NUL-terminated copies; the payload keeps its NUL bytes. */
    char *copy = malloc(size + FIELDS + 1), *field[FIELDS];
    size_t field_len[FIELDS];
    if (!copy) abort();
    memcpy(copy, data, size);
    memset(copy + size, 0, FIELDS + 1);
    size_t pos = 0;
    for (int i = 0; i < FIELDS; i++) {
        field[i] = copy + pos;
        while (pos < size && copy[pos] != '\0') pos++;
        field_len[i] = (size_t)(copy + pos - field[i]);
        if (pos < size) pos++;
        else pos = size + 1 + (size_t)i;   /* past the end: empty strings from the zeroed tail */
    }
    const char *payload = pos <= size ? copy + pos : "";
    size_t payload_len = pos <= size ? size - pos : 0;
    /* The key is length-counted: 0x01 0x01 stands for a NUL byte inside it. */
    char *key = field[1];
    size_t key_len = 0;
    for (size_t i = 0; i < field_len[1]; i++) {
        if (field[1][i] == 1 && i + 1 < field_len[1] && field[1][i + 1] == 1) {
            key[key_len++] = '\0';
            i++;
        } else {
            key[key_len++] = field[1][i];
        }
    }
    const char *service = field_len[2] ? field[2] : "iotexplorer";
    int with_action = flags & 1, get = (flags >> 1) & 1;
    tc3_request r = {
        .secret_id = field[0], .secret_key = key, .secret_key_len = key_len, .service = service,
        .method = get ? "GET" : "POST", .query = field[6], .host = field[3], .action = field[4],
        .content_type = field[5], .signed_headers = with_action ? "content-type;host;x-tc-action" : "content-type;host",
        .payload = payload, .payload_len = payload_len, .timestamp = timestamp,
    };

    int valid_time = timestamp >= 0 && timestamp <= 253402300799LL;
    tc3_status st = tc3_sign(warm, &r);
    if (!valid_time) {
        if (st != TC3_BAD_TIMESTAMP) fail("an out-of-range timestamp was not refused");
        free(copy);
        return 0;
    }
    if (st != TC3_OK) fail("tc3_sign failed on a valid request");
    if (!is_lower_hex(tc3_signature(warm), TC3_HEX_LEN)) fail("signature is not 64 lowercase hex digits");
    char want_date[16];
    civil_date(timestamp, want_date);
    if (strcmp(tc3_date(warm), want_date) != 0) fail("credential date is not the UTC date of the timestamp");

    snapshot first, second, fresh_snap;
    take(warm, &first);
    if (tc3_sign(warm, &r) != TC3_OK) fail("second signature failed");
    take(warm, &second);
    same(&first, &second, "the same input signed twice gave different results");
    tc3_signer *fresh = tc3_signer_new();
    if (!fresh) fail("tc3_signer_new failed");
    if (tc3_sign(fresh, &r) != TC3_OK) fail("fresh signer failed");
    take(fresh, &fresh_snap);
    tc3_signer_free(fresh);
    same(&first, &fresh_snap, "cached and fresh signers disagree");

    /* The string to sign ends with the canonical request's hash; the signature is the HMAC chain. */
    unsigned char digest[32], k1[32], k2[32], k3[32], mac[32];
    char hex[TC3_HEX_LEN + 1];
    static const char digits[] = "0123456789abcdef";
    unsigned int dn = 32;
    EVP_Digest(first.canonical, strlen(first.canonical), digest, &dn, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) { hex[2 * i] = digits[digest[i] >> 4]; hex[2 * i + 1] = digits[digest[i] & 15]; }
    hex[TC3_HEX_LEN] = '\0';
    size_t sts_len = strlen(first.string_to_sign);
    if (sts_len < TC3_HEX_LEN || strcmp(first.string_to_sign + sts_len - TC3_HEX_LEN, hex) != 0)
        fail("string to sign does not end with the canonical request's SHA-256");
    char *tc3_key = malloc(key_len + 3);
    if (!tc3_key) abort();
    memcpy(tc3_key, "TC3", 3);
    memcpy(tc3_key + 3, key, key_len);
    hmac(tc3_key, key_len + 3, want_date, strlen(want_date), k1);
    hmac(k1, 32, service, strlen(service), k2);
    hmac(k2, 32, "tc3_request", 11, k3);
    hmac(k3, 32, first.string_to_sign, sts_len, mac);
    free(tc3_key);
    for (int i = 0; i < 32; i++) { hex[2 * i] = digits[mac[i] >> 4]; hex[2 * i + 1] = digits[mac[i] & 15]; }
    if (strcmp(hex, first.signature) != 0) fail("signature differs from OpenSSL's HMAC chain");
    if (strncmp(first.authorization, "TC3-HMAC-SHA256 Credential=", 27) != 0
        || strncmp(first.authorization + 27, r.secret_id, strlen(r.secret_id)) != 0)
        fail("Authorization does not start with the credential");

    release(&first);
    release(&second);
    release(&fresh_snap);
    free(copy);
    return 0;
}
