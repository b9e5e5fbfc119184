/* libcurl transport. Every callback here is plain C: no Lua error can unwind through libcurl. */
#define _POSIX_C_SOURCE 200809L
#include "http.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_session {
    CURL *curl;
    char *body;
    size_t body_len, body_cap, max_body;
    int too_large;
    int64_t server_date;
    char date_line[64];                /* the last Date header line seen, and its value */
    size_t date_len;
    int64_t date_value;
    long timeout_ms, connect_timeout_ms;
    const http_request *current;       /* &req while a request runs, for the callbacks; else NULL */
    http_request req;                  /* the running request's callbacks and limits (its strings may be gone) */
    /* The running request's header list: its nodes and a copy of its lines, kept from one request to the
     * next, so that a request allocates nothing for its headers (libcurl only reads the list). */
    struct curl_slist header_nodes[HTTP_MAX_HEADERS + 2];
    char *header_text;
    size_t header_cap;
    int aborted, interrupted;
    int64_t streamed;                  /* body bytes handed to on_data in this transfer */
    char *proxy;                       /* the session's proxy, to restore after a direct request */
    /* "User-Agent: ...", sent as one of the request's own lines: CURLOPT_USERAGENT would have libcurl
     * format the same line anew for every request (about 7,000 instructions, 15% of its work per call). */
    char *user_agent_line;
    char curl_message[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_status = CURLE_FAILED_INIT;

static void global_setup(void) { global_status = curl_global_init(CURL_GLOBAL_DEFAULT); }

int http_global_init(void) {
    pthread_once(&global_once, global_setup);
    return global_status == CURLE_OK ? 0 : -1;
}

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
    http_session *s = userdata;
    size_t n = size * count;
    const http_request *req = s->current;
    if (!req) return 0;                /* no transfer of ours is running: refuse the data */
    if (req->on_data) {
        long status = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        if (req->max_bytes > 0 && (int64_t)n > req->max_bytes - s->streamed) {
            s->too_large = 1;          /* no Content-Length, or a server that sends more than it said */
            return 0;
        }
        s->streamed += (int64_t)n;
        if (req->on_data(req->ctx, status, data, n)) {
            s->aborted = 1;
            return 0;
        }
        return n;
    }
    if (n > s->max_body - s->body_len) {
        s->too_large = 1;
        return 0;                      /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    if (s->body_len + n + 1 > s->body_cap) {
        size_t cap = s->body_cap ? s->body_cap : 4096;
        while (cap < s->body_len + n + 1) cap *= 2;
        char *p = realloc(s->body, cap);
        if (!p) return 0;
        s->body = p;
        s->body_cap = cap;
    }
    memcpy(s->body + s->body_len, data, n);
    s->body_len += n;
    s->body[s->body_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *userdata) {
    http_session *s = userdata;
    size_t n = size * count;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        s->server_date = -1;           /* a new response (after a 1xx, say): forget the last one's */
    } else if (n > 5 && strncasecmp(data, "date:", 5) == 0) {
        /* curl_getdate is sscanf-based (~2 us, ~5% of a call's CPU); the header changes once a second. */
        if (n > sizeof s->date_line || n != s->date_len || memcmp(s->date_line, data, n) != 0) {
            s->date_value = http_header_date(data, n);
            s->date_len = n <= sizeof s->date_line ? n : 0;
            if (s->date_len) memcpy(s->date_line, data, n);
        }
        s->server_date = s->date_value;
    }
    return n;
}

int64_t http_header_date(const char *line, size_t n) {
    if (n <= 5 || strncasecmp(line, "date:", 5) != 0) return -1;
    char value[128];
    size_t len = n - 5 < sizeof value - 1 ? n - 5 : sizeof value - 1;
    memcpy(value, line + 5, len);
    value[len] = '\0';
    time_t t = curl_getdate(value, NULL);
    return t < 0 ? -1 : (int64_t)t;    /* unparsable (-1), or before 1970: no usable server clock */
}

static int on_progress(void *userdata, curl_off_t total, curl_off_t now, curl_off_t up_total, curl_off_t up_now) {
    (void)up_total;
    (void)up_now;
    http_session *s = userdata;
    const http_request *req = s->current;
    if (req && req->stop && *req->stop) {
        s->interrupted = 1;
        return 1;
    }
    if (req && req->on_progress && req->on_progress(req->ctx, (int64_t)now, (int64_t)total)) {
        s->aborted = 1;
        return 1;
    }
    return 0;
}

http_session *http_session_new(const http_options *o, char *message, size_t message_size) {
    if (http_global_init()) {
        snprintf(message, message_size, "libcurl global initialisation failed");
        return NULL;
    }
    http_session *s = calloc(1, sizeof *s);
    if (!s || !(s->curl = curl_easy_init())) {
        free(s);
        snprintf(message, message_size, "out of memory creating a libcurl handle");
        return NULL;
    }
    s->max_body = o->max_response_bytes;
    s->timeout_ms = o->timeout_ms;
    s->connect_timeout_ms = o->connect_timeout_ms;
    CURL *c = s->curl;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val)
    SET(CURLOPT_NOSIGNAL, 1L);             /* no SIGALRM for DNS timeouts: threads and nginx */
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_FOLLOWLOCATION, 0L);       /* a redirect is an error for a signed API */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, s);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, s);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, s);
    SET(CURLOPT_ERRORBUFFER, s->curl_message);
    if (o->ca_file) SET(CURLOPT_CAINFO, o->ca_file);
    if (o->ca_path) SET(CURLOPT_CAPATH, o->ca_path);
    if (o->proxy) SET(CURLOPT_PROXY, o->proxy);
    if (rc == CURLE_OK && o->proxy && !(s->proxy = strdup(o->proxy))) rc = CURLE_OUT_OF_MEMORY;
#undef SET
    if (rc == CURLE_OK && o->user_agent) {
        size_t n = strlen(o->user_agent) + sizeof "User-Agent: ";
        if ((s->user_agent_line = malloc(n))) snprintf(s->user_agent_line, n, "User-Agent: %s", o->user_agent);
        else rc = CURLE_OUT_OF_MEMORY;
    }
    if (rc != CURLE_OK) {
        snprintf(message, message_size, "libcurl refused an option: %s", curl_easy_strerror(rc));
        http_session_free(s);
        return NULL;
    }
    return s;
}

http_session *http_session_clone(const http_session *src, char *message, size_t message_size) {
    http_session *s = calloc(1, sizeof *s);
    if (!s || !(s->curl = curl_easy_duphandle(src->curl))) {
        free(s);
        snprintf(message, message_size, "out of memory copying a libcurl handle");
        return NULL;
    }
    s->max_body = src->max_body;
    s->timeout_ms = src->timeout_ms;
    s->connect_timeout_ms = src->connect_timeout_ms;
    /* The copy still points its callbacks' data at the original: point them at itself. */
    CURL *c = s->curl;
    CURLcode rc = curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_message);
    if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    if (rc == CURLE_OK && src->proxy && !(s->proxy = strdup(src->proxy))) rc = CURLE_OUT_OF_MEMORY;
    if (rc == CURLE_OK && src->user_agent_line && !(s->user_agent_line = strdup(src->user_agent_line)))
        rc = CURLE_OUT_OF_MEMORY;
    if (rc != CURLE_OK) {
        snprintf(message, message_size, "libcurl refused an option: %s", curl_easy_strerror(rc));
        http_session_free(s);
        return NULL;
    }
    return s;
}

void http_session_free(http_session *s) {
    if (!s) return;
    if (s->curl) curl_easy_cleanup(s->curl);
    if (s->header_text) OPENSSL_cleanse(s->header_text, s->header_cap);   /* held a signature, maybe a token */
    free(s->header_text);
    free(s->body);
    free(s->proxy);
    free(s->user_agent_line);
    free(s);
}

static http_status classify(http_session *s, CURLcode rc) {
    if (s->interrupted) return HTTP_INTERRUPTED;
    if (s->too_large || rc == CURLE_FILESIZE_EXCEEDED) return HTTP_TOO_LARGE;
    if (s->aborted || rc == CURLE_ABORTED_BY_CALLBACK) return HTTP_ABORTED;
    if (rc == CURLE_OPERATION_TIMEDOUT) return HTTP_TIMEOUT;
    if (rc == CURLE_OUT_OF_MEMORY) return HTTP_NO_MEMORY;
    return HTTP_NETWORK;
}

/* The request's header lines, the session's User-Agent line, then "Expect:" (libcurl would add
 * "Expect: 100-continue" to larger bodies and wait a round trip for it), as a list in s: the lines are
 * copied, since the caller's may go before the transfer ends (multi). NULL when out of memory or past
 * HTTP_MAX_HEADERS. */
static struct curl_slist *header_list(http_session *s, const http_request *req) {
    const char *tail[2];
    size_t n = req->header_count, n_tail = 0, need = 0;
    if (n > HTTP_MAX_HEADERS) return NULL;
    if (s->user_agent_line) tail[n_tail++] = s->user_agent_line;
    tail[n_tail++] = "Expect:";
    size_t total = n + n_tail;
#define LINE(i) ((i) < n ? req->headers[i] : tail[(i) - n])
    for (size_t i = 0; i < total; i++) need += strlen(LINE(i)) + 1;
    if (need > s->header_cap) {
        char *p = malloc(need);
        if (!p) return NULL;
        if (s->header_text) OPENSSL_cleanse(s->header_text, s->header_cap);
        free(s->header_text);
        s->header_text = p;
        s->header_cap = need;
    }
    char *p = s->header_text;
    for (size_t i = 0; i < total; i++) {
        size_t len = strlen(LINE(i)) + 1;
        memcpy(p, LINE(i), len);
        s->header_nodes[i].data = p;
        s->header_nodes[i].next = i + 1 < total ? &s->header_nodes[i + 1] : NULL;
        p += len;
    }
#undef LINE
    return s->header_nodes;
}

http_status http_begin(http_session *s, const http_request *req, http_result *r) {
    memset(r, 0, sizeof *r);
    r->server_date = -1;
    s->body_len = 0;
    if (s->body) s->body[0] = '\0';
    s->too_large = s->aborted = s->interrupted = 0;
    s->streamed = 0;
    s->server_date = -1;
    s->curl_message[0] = '\0';

    struct curl_slist *list = header_list(s, req);
    if (!list) {
        r->status = HTTP_NO_MEMORY;
        snprintf(r->message, sizeof r->message, "out of memory building request headers");
        return r->status;
    }

    CURL *c = s->curl;
    int post = strcmp(req->method, "POST") == 0;
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    if (post) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (req->copy_body &&
            curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "") != CURLE_OK) {
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
            r->status = HTTP_NO_MEMORY;
            snprintf(r->message, sizeof r->message, "out of memory copying the request body");
            return r->status;
        }
        if (!req->copy_body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : s->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                     req->on_data ? (curl_off_t)req->max_bytes : (curl_off_t)s->max_body);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, req->on_progress || req->stop ? 0L : 1L);
    if (req->direct) {
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    }
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, req->fresh_connection ? 1L : 0L);

    s->req = *req;
    s->req.url = NULL;                 /* only the callbacks and limits are read from here on */
    s->req.headers = NULL;
    s->req.body = NULL;
    s->current = &s->req;
    return HTTP_OK;
}

void *http_easy(http_session *s) { return s->curl; }

http_status http_end(http_session *s, int curl_code, http_result *r) {
    CURL *c = s->curl;
    const http_request *req = &s->req;
    CURLcode rc = (CURLcode)curl_code;
    if (req->stop && *req->stop) s->interrupted = 1;
    if (req->direct) {                 /* back to the session's own proxy settings */
        curl_easy_setopt(c, CURLOPT_PROXY, s->proxy);
        curl_easy_setopt(c, CURLOPT_NOPROXY, NULL);
    }

    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);   /* the list is reused: do not leave it dangling */
    s->current = NULL;

    long request_size = 0;
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &request_size);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
    r->sent = request_size > 0;
    r->curl_code = (int)rc;
    r->server_date = s->server_date;
    r->body = s->body ? s->body : "";
    r->body_len = s->body_len;
    if (rc == CURLE_OK) {
        r->status = HTTP_OK;
        return r->status;
    }
    r->status = classify(s, rc);
    if (r->status == HTTP_TOO_LARGE)
        snprintf(r->message, sizeof r->message, "response body larger than the %lld-byte limit",
                 req->on_data ? (long long)req->max_bytes : (long long)s->max_body);
    else if (r->status == HTTP_INTERRUPTED)
        snprintf(r->message, sizeof r->message, "interrupted by a signal");
    else
        snprintf(r->message, sizeof r->message, "%s (curl %d)%s%s", curl_easy_strerror(rc), (int)rc,
                 s->curl_message[0] ? ": " : "", s->curl_message);
    return r->status;
}

http_status http_perform(http_session *s, const http_request *req, http_result *r) {
    if (http_begin(s, req, r) != HTTP_OK) return r->status;
    int rc = req->stop && *req->stop ? CURLE_ABORTED_BY_CALLBACK : (int)curl_easy_perform(s->curl);
    return http_end(s, rc, r);
}
