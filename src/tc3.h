/* TC3-HMAC-SHA256 request signing for Tencent Cloud API 3.0. Plain C and OpenSSL: no Lua here. */
#ifndef TC3_H
#define TC3_H

#include <stddef.h>
#include <stdint.h>

#define TC3_HEX_LEN 64                 /* a SHA-256 digest in lowercase hex */
#define TC3_DATE_LEN 10                /* YYYY-MM-DD */

typedef struct tc3_signer tc3_signer;

typedef struct tc3_request {
    const char *secret_id;
    const char *secret_key;
    size_t secret_key_len;
    const char *service;               /* "iotexplorer" */
    const char *method;                /* "POST" or "GET" */
    const char *query;                 /* canonical query string: "" for POST */
    const char *host;                  /* exactly as sent in the Host header */
    const char *action;                /* signed, lowercased, when x-tc-action is in signed_headers */
    const char *content_type;          /* exactly as sent */
    const char *signed_headers;        /* "content-type;host" or "content-type;host;x-tc-action" */
    const char *payload;
    size_t payload_len;
    int64_t timestamp;                 /* Unix seconds; the credential date is its UTC date */
} tc3_request;

typedef enum tc3_status {
    TC3_OK = 0,
    TC3_BAD_TIMESTAMP,                 /* negative or past year 9999 */
    TC3_BAD_SIGNED_HEADERS,            /* not a supported, sorted set */
    TC3_NO_MEMORY,
    TC3_CRYPTO_ERROR
} tc3_status;

/* Process-wide setup (OpenSSL algorithm fetch); safe to call from any thread, any number of times. */
int tc3_global_init(void);

/* A signer owns its hash contexts, scratch buffers and a small cache of derived signing keys.
 * One signer must not be used by two threads at once; distinct signers share nothing mutable. */
tc3_signer *tc3_signer_new(void);
void tc3_signer_free(tc3_signer *s);          /* wipes cached keys; NULL is fine */

/* Signs r. On TC3_OK the accessors below return strings owned by s, valid until the next call. */
tc3_status tc3_sign(tc3_signer *s, const tc3_request *r);

const char *tc3_authorization(const tc3_signer *s, size_t *len);
const char *tc3_canonical_request(const tc3_signer *s, size_t *len);
const char *tc3_string_to_sign(const tc3_signer *s, size_t *len);
const char *tc3_signature(const tc3_signer *s);    /* 64 hex characters */
const char *tc3_date(const tc3_signer *s);         /* the credential date, YYYY-MM-DD */

/* UTC date of a Unix timestamp as YYYY-MM-DD into out[TC3_DATE_LEN + 1]; 0 on success. */
int tc3_utc_date(int64_t timestamp, char *out);

/* Hex SHA-256 of data into out[TC3_HEX_LEN + 1], with a reusable signer context. */
tc3_status tc3_sha256_hex(tc3_signer *s, const void *data, size_t len, char *out);

#endif
