/* One libcurl easy handle per session: keep-alive reuse, bounded bodies, the Date header. No Lua here. */
#ifndef HTTP_H
#define HTTP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MESSAGE_SIZE 320
#define HTTP_MAX_HEADERS 24             /* request header lines, at most */

typedef struct http_session http_session;

typedef struct http_options {
    long timeout_ms;                   /* whole transfer; always set */
    long connect_timeout_ms;
    const char *ca_file, *ca_path;     /* NULL: libcurl's defaults (the system store) */
    const char *proxy;                 /* NULL: libcurl reads https_proxy / NO_PROXY itself */
    const char *user_agent;
    size_t max_response_bytes;
} http_options;

typedef enum http_status {
    HTTP_OK = 0,                       /* a response arrived, whatever its status code */
    HTTP_NETWORK,                      /* DNS, connect, TLS, reset, body cut short */
    HTTP_TIMEOUT,
    HTTP_TOO_LARGE,                    /* body past max_response_bytes */
    HTTP_NO_MEMORY,
    HTTP_ABORTED,                      /* the caller's stream callback asked to stop */
    HTTP_INTERRUPTED                   /* *stop became nonzero (a signal arrived) */
} http_status;

typedef struct http_request {
    const char *method;                /* "POST" or "GET" */
    const char *url;
    const char *const *headers;        /* "Name: value" lines */
    size_t header_count;
    const char *body;
    size_t body_len;
    long timeout_ms, connect_timeout_ms;  /* 0: the session's */
    /* A new connection for this request. libcurl resends a request by itself when a reused
     * connection turns out dead before any answer: harmless for reads, a duplicate for writes. */
    int fresh_connection;
    /* libcurl keeps its own copy of the body: for a request that outlives the caller's buffer (multi). */
    int copy_body;
    /* Streaming (GET downloads): when set, body bytes go here, with the response's status code, instead
     * of the session buffer; progress reports totals as they grow. Nonzero from either aborts. */
    int (*on_data)(void *ctx, long status, const char *data, size_t len);
    int (*on_progress)(void *ctx, int64_t received, int64_t total);
    void *ctx;
    int64_t max_bytes;                 /* streaming only: a bigger body fails with HTTP_TOO_LARGE; 0: no cap */
    int direct;                        /* never through a proxy, whatever the session or environment says */
    /* Polled at least once a second during the transfer: nonzero ends it with HTTP_INTERRUPTED. */
    const volatile sig_atomic_t *stop;
} http_request;

typedef struct http_result {
    http_status status;
    long code;                         /* HTTP status code, 0 without a response */
    const char *body;                  /* owned by the session, valid until its next request */
    size_t body_len;
    int64_t server_date;               /* the Date header as Unix seconds, -1 when absent */
    int sent;                          /* 0 only if no request byte left this machine */
    int curl_code;
    char message[HTTP_MESSAGE_SIZE];   /* for people; never holds request headers */
} http_result;

int http_global_init(void);            /* once per process, thread-safe; 0 on success */

http_session *http_session_new(const http_options *o, char *message, size_t message_size);
void http_session_free(http_session *s);  /* NULL is fine */

/* Performs one request. Returns r->status; on HTTP_OK the response fields are set. */
http_status http_perform(http_session *s, const http_request *req, http_result *r);

/* The same request in steps, for a multi handle: http_begin sets s's easy handle up for req (its header list
 * lives in s until http_end; req itself may go once it returns, unless it streams); the caller adds
 * http_easy(s) (a CURL *) to its multi handle and, once libcurl reports the transfer done with code
 * curl_code, calls http_end, which fills r as http_perform would. After a failed http_begin (r->status set),
 * no http_end. A transfer removed unfinished ends the same way, with any failing code. */
http_status http_begin(http_session *s, const http_request *req, http_result *r);
void *http_easy(http_session *s);
http_status http_end(http_session *s, int curl_code, http_result *r);

/* A new session with the options of src (CA, proxy, timeouts, limits) and nothing of its state. */
http_session *http_session_clone(const http_session *src, char *message, size_t message_size);

/* A response header line as libcurl hands it over ("Date: Tue, 15 Nov 1994 08:12:31 GMT\r\n", not
 * NUL-terminated): the date as Unix seconds, or -1 when it is not a Date line, does not parse or is before 1970. */
int64_t http_header_date(const char *line, size_t n);

#endif
