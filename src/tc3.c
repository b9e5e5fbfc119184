/* TC3-HMAC-SHA256 signer. OpenSSL 3's one-shot HMAC()/EVP_Q_digest() look the algorithm up and allocate
 * contexts on every call, which costs more than the hashing itself: here SHA-256 is fetched once per
 * process, every signer keeps its contexts, and HMAC is built on pre-absorbed ipad/opad states, so a
 * signature with a cached signing key costs two SHA-256 runs plus one HMAC and no algorithm look-up. */
#define _POSIX_C_SOURCE 200809L
#include "tc3.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHA256_BLOCK 64
#define SHA256_LEN 32
#define KEY_SLOTS 4                    /* distinct (key, date, service) triples kept warm */
#define MAX_TIMESTAMP 253402300799LL   /* 9999-12-31T23:59:59Z */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int sha256_available;

/* Only checks that SHA-256 can be fetched: each signer holds its own reference (freed with it), so no
 * allocation outlives the module. A process-wide EVP_MD would be lost when Lua dlcloses the module at
 * lua_close (LeakSanitizer and memcheck report it), and cannot be freed from a destructor safely: that
 * may run after OpenSSL's own atexit cleanup. */
static void check_algorithms(void) {
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    sha256_available = md != NULL;
    EVP_MD_free(md);
}

int tc3_global_init(void) {
    pthread_once(&global_once, check_algorithms);
    return sha256_available ? 0 : -1;
}

/* SHA-256 states that have already absorbed key^ipad and key^opad. */
typedef struct hmac_key { EVP_MD_CTX *inner, *outer; } hmac_key;

typedef struct key_slot {
    int used;
    char *secret;                      /* owned copy, wiped on eviction */
    size_t secret_len;
    char *service;
    char date[TC3_DATE_LEN + 1];
    hmac_key signing;
} key_slot;

typedef struct buf { char *data; size_t len, cap; } buf;

struct tc3_signer {
    EVP_MD *sha256;                    /* fetched once per signer: no algorithm look-up per hash */
    EVP_MD_CTX *work;
    hmac_key derive;                   /* used only while deriving a signing key */
    key_slot slots[KEY_SLOTS];
    unsigned next_victim;
    buf canonical, string_to_sign, authorization;
    char signature[TC3_HEX_LEN + 1];
    char date[TC3_DATE_LEN + 1];
};

/* ---- small buffer ---- */

static int buf_reserve(buf *b, size_t extra) {
    if (b->cap - b->len > extra) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_add(buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int buf_str(buf *b, const char *s) { return buf_add(b, s, strlen(s)); }

static int buf_lower(buf *b, const char *s) {
    size_t n = strlen(s);
    if (buf_reserve(b, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        b->data[b->len++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    b->data[b->len] = '\0';
    return 0;
}

static void buf_free(buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- hashing ---- */

static void to_hex(const unsigned char *d, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static int sha256_raw(const EVP_MD *sha256, EVP_MD_CTX *ctx, const void *data, size_t len,
                      unsigned char out[SHA256_LEN]) {
    return EVP_DigestInit_ex2(ctx, sha256, NULL) && EVP_DigestUpdate(ctx, data, len)
        && EVP_DigestFinal_ex(ctx, out, NULL) ? 0 : -1;
}

tc3_status tc3_sha256_hex(tc3_signer *s, const void *data, size_t len, char *out) {
    unsigned char d[SHA256_LEN];
    if (sha256_raw(s->sha256, s->work, data, len, d)) return TC3_CRYPTO_ERROR;
    to_hex(d, SHA256_LEN, out);
    return TC3_OK;
}

static int hmac_key_init(hmac_key *k) {
    k->inner = EVP_MD_CTX_new();
    k->outer = EVP_MD_CTX_new();
    return k->inner && k->outer ? 0 : -1;
}

static void hmac_key_free(hmac_key *k) {
    EVP_MD_CTX_free(k->inner);     /* EVP_MD_CTX_free cleanses the hash state */
    EVP_MD_CTX_free(k->outer);
    k->inner = k->outer = NULL;
}

static int hmac_key_set(const EVP_MD *sha256, EVP_MD_CTX *work, hmac_key *k, const unsigned char *key,
                        size_t len) {
    unsigned char block[SHA256_BLOCK], pad[SHA256_BLOCK];
    int rc = -1;
    memset(block, 0, sizeof block);
    if (len > SHA256_BLOCK) {
        if (sha256_raw(sha256, work, key, len, block)) goto done;
    } else {
        memcpy(block, key, len);
    }
    for (size_t i = 0; i < SHA256_BLOCK; i++) pad[i] = block[i] ^ 0x36;
    if (!EVP_DigestInit_ex2(k->inner, sha256, NULL) || !EVP_DigestUpdate(k->inner, pad, sizeof pad)) goto done;
    for (size_t i = 0; i < SHA256_BLOCK; i++) pad[i] = block[i] ^ 0x5c;
    if (!EVP_DigestInit_ex2(k->outer, sha256, NULL) || !EVP_DigestUpdate(k->outer, pad, sizeof pad)) goto done;
    rc = 0;
done:
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
    return rc;
}

static int hmac_run(EVP_MD_CTX *work, const hmac_key *k, const void *msg, size_t len,
                    unsigned char out[SHA256_LEN]) {
    unsigned char inner[SHA256_LEN];
    int ok = EVP_MD_CTX_copy_ex(work, k->inner) && EVP_DigestUpdate(work, msg, len)
          && EVP_DigestFinal_ex(work, inner, NULL)
          && EVP_MD_CTX_copy_ex(work, k->outer) && EVP_DigestUpdate(work, inner, sizeof inner)
          && EVP_DigestFinal_ex(work, out, NULL);
    OPENSSL_cleanse(inner, sizeof inner);
    return ok ? 0 : -1;
}

/* One HMAC step of the derivation chain: out = HMAC(key, msg). */
static int hmac_once(tc3_signer *s, const unsigned char *key, size_t key_len, const char *msg,
                     unsigned char out[SHA256_LEN]) {
    if (hmac_key_set(s->sha256, s->work, &s->derive, key, key_len)) return -1;
    return hmac_run(s->work, &s->derive, msg, strlen(msg), out);
}

/* ---- signer ---- */

tc3_signer *tc3_signer_new(void) {
    if (tc3_global_init()) return NULL;
    tc3_signer *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    int bad = !(s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) || !(s->work = EVP_MD_CTX_new())
           || hmac_key_init(&s->derive);
    for (int i = 0; i < KEY_SLOTS; i++) bad |= hmac_key_init(&s->slots[i].signing);
    if (bad) {
        tc3_signer_free(s);
        return NULL;
    }
    return s;
}

static void slot_clear(key_slot *slot) {
    if (slot->secret) {
        OPENSSL_cleanse(slot->secret, slot->secret_len);
        free(slot->secret);
    }
    free(slot->service);
    slot->secret = slot->service = NULL;
    slot->secret_len = 0;
    slot->used = 0;
    /* The ipad/opad states are overwritten on reuse; reset them now so no key material lingers. */
    if (slot->signing.inner) EVP_MD_CTX_reset(slot->signing.inner);
    if (slot->signing.outer) EVP_MD_CTX_reset(slot->signing.outer);
}

static void forget_keys(tc3_signer *s) {
    if (!s) return;
    for (int i = 0; i < KEY_SLOTS; i++) slot_clear(&s->slots[i]);
    if (s->derive.inner) EVP_MD_CTX_reset(s->derive.inner);
    if (s->derive.outer) EVP_MD_CTX_reset(s->derive.outer);
}

void tc3_signer_free(tc3_signer *s) {
    if (!s) return;
    forget_keys(s);
    for (int i = 0; i < KEY_SLOTS; i++) hmac_key_free(&s->slots[i].signing);
    hmac_key_free(&s->derive);
    EVP_MD_CTX_free(s->work);
    EVP_MD_free(s->sha256);
    buf_free(&s->canonical);
    buf_free(&s->string_to_sign);
    buf_free(&s->authorization);
    free(s);
}

int tc3_utc_date(int64_t timestamp, char *out) {
    if (timestamp < 0 || timestamp > MAX_TIMESTAMP) return -1;
    time_t t = (time_t)timestamp;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return -1;
    int year = tm.tm_year + 1900;
    const int parts[4] = { year / 100, year % 100, tm.tm_mon + 1, tm.tm_mday };  /* two digits each */
    char *p = out;
    for (int i = 0; i < 4; i++) {
        if (i >= 2) *p++ = '-';
        *p++ = (char)('0' + parts[i] / 10);
        *p++ = (char)('0' + parts[i] % 10);
    }
    *p = '\0';
    return 0;
}

/* The signing key for (secret, date, service), derived at most once per day and cached. */
static const key_slot *signing_key(tc3_signer *s, const tc3_request *r, const char *date) {
    for (int i = 0; i < KEY_SLOTS; i++) {
        key_slot *slot = &s->slots[i];
        if (slot->used && slot->secret_len == r->secret_key_len && strcmp(slot->date, date) == 0
            && strcmp(slot->service, r->service) == 0
            && CRYPTO_memcmp(slot->secret, r->secret_key, r->secret_key_len) == 0)
            return slot;
    }
    key_slot *slot = &s->slots[s->next_victim];
    s->next_victim = (s->next_victim + 1) % KEY_SLOTS;
    slot_clear(slot);

    size_t key_len = r->secret_key_len + 3;
    unsigned char *key = malloc(key_len);
    slot->secret = malloc(r->secret_key_len ? r->secret_key_len : 1);
    slot->service = strdup(r->service);
    unsigned char k_date[SHA256_LEN], k_service[SHA256_LEN], k_signing[SHA256_LEN];
    int ok = key && slot->secret && slot->service;
    if (ok) {
        memcpy(key, "TC3", 3);
        memcpy(key + 3, r->secret_key, r->secret_key_len);
        ok = hmac_once(s, key, key_len, date, k_date) == 0
          && hmac_once(s, k_date, SHA256_LEN, r->service, k_service) == 0
          && hmac_once(s, k_service, SHA256_LEN, "tc3_request", k_signing) == 0
          && hmac_key_set(s->sha256, s->work, &slot->signing, k_signing, SHA256_LEN) == 0;
    }
    if (key) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    OPENSSL_cleanse(k_date, sizeof k_date);
    OPENSSL_cleanse(k_service, sizeof k_service);
    OPENSSL_cleanse(k_signing, sizeof k_signing);
    EVP_MD_CTX_reset(s->derive.inner);
    EVP_MD_CTX_reset(s->derive.outer);
    if (!ok) {
        slot_clear(slot);
        return NULL;
    }
    memcpy(slot->secret, r->secret_key, r->secret_key_len);
    slot->secret_len = r->secret_key_len;
    memcpy(slot->date, date, sizeof slot->date);
    slot->used = 1;
    return slot;
}

tc3_status tc3_sign(tc3_signer *s, const tc3_request *r) {
    int with_action;
    if (strcmp(r->signed_headers, "content-type;host") == 0) with_action = 0;
    else if (strcmp(r->signed_headers, "content-type;host;x-tc-action") == 0) with_action = 1;
    else return TC3_BAD_SIGNED_HEADERS;
    if (tc3_utc_date(r->timestamp, s->date)) return TC3_BAD_TIMESTAMP;

    char payload_hash[TC3_HEX_LEN + 1], request_hash[TC3_HEX_LEN + 1], stamp[24];
    if (tc3_sha256_hex(s, r->payload, r->payload_len, payload_hash)) return TC3_CRYPTO_ERROR;

    buf *c = &s->canonical;
    c->len = 0;
    int bad = buf_str(c, r->method) || buf_add(c, "\n/\n", 3) || buf_str(c, r->query)
           || buf_add(c, "\ncontent-type:", 14) || buf_str(c, r->content_type)
           || buf_add(c, "\nhost:", 6) || buf_str(c, r->host) || buf_add(c, "\n", 1);
    if (with_action) bad = bad || buf_add(c, "x-tc-action:", 12) || buf_lower(c, r->action) || buf_add(c, "\n", 1);
    bad = bad || buf_add(c, "\n", 1) || buf_str(c, r->signed_headers) || buf_add(c, "\n", 1)
              || buf_add(c, payload_hash, TC3_HEX_LEN);
    if (bad) return TC3_NO_MEMORY;
    if (tc3_sha256_hex(s, c->data, c->len, request_hash)) return TC3_CRYPTO_ERROR;

    snprintf(stamp, sizeof stamp, "%lld", (long long)r->timestamp);
    buf *t = &s->string_to_sign;
    t->len = 0;
    if (buf_add(t, "TC3-HMAC-SHA256\n", 16) || buf_str(t, stamp) || buf_add(t, "\n", 1)
        || buf_add(t, s->date, TC3_DATE_LEN) || buf_add(t, "/", 1) || buf_str(t, r->service)
        || buf_add(t, "/tc3_request\n", 13) || buf_add(t, request_hash, TC3_HEX_LEN))
        return TC3_NO_MEMORY;

    const key_slot *key = signing_key(s, r, s->date);
    unsigned char mac[SHA256_LEN];
    if (!key || hmac_run(s->work, &key->signing, t->data, t->len, mac)) return TC3_CRYPTO_ERROR;
    to_hex(mac, SHA256_LEN, s->signature);

    buf *a = &s->authorization;
    a->len = 0;
    if (buf_add(a, "TC3-HMAC-SHA256 Credential=", 27) || buf_str(a, r->secret_id) || buf_add(a, "/", 1)
        || buf_add(a, s->date, TC3_DATE_LEN) || buf_add(a, "/", 1) || buf_str(a, r->service)
        || buf_add(a, "/tc3_request, SignedHeaders=", 28) || buf_str(a, r->signed_headers)
        || buf_add(a, ", Signature=", 12) || buf_add(a, s->signature, TC3_HEX_LEN))
        return TC3_NO_MEMORY;
    return TC3_OK;
}

static const char *buf_view(const buf *b, size_t *len) {
    if (len) *len = b->len;
    return b->data ? b->data : "";
}

const char *tc3_authorization(const tc3_signer *s, size_t *len) { return buf_view(&s->authorization, len); }
const char *tc3_canonical_request(const tc3_signer *s, size_t *len) { return buf_view(&s->canonical, len); }
const char *tc3_string_to_sign(const tc3_signer *s, size_t *len) { return buf_view(&s->string_to_sign, len); }
const char *tc3_signature(const tc3_signer *s) { return s->signature; }
const char *tc3_date(const tc3_signer *s) { return s->date; }
