/* Baseline (a) of the call benchmark, the floor: the same POST our client sends, through libcurl on one
 * easy handle (keep-alive), with body, signature and headers computed once before the loop. What is left
 * is libcurl and the kernel. The response body is collected into a buffer, as the core's transport does.
 * usage: floor_post URL SECONDS [COUNT]   prints RESULT <calls/s> <CPU us/call> <count>
 * With COUNT: exactly COUNT calls after one to open the connection, SECONDS ignored; the same work whatever
 * the machine's speed, for counting instructions (bench/profile.lua). */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "sign_common.h"

#include <curl/curl.h>
#include <string.h>

static char response[65536];
static size_t response_len;

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
    (void)userdata;
    size_t n = size * count;
    if (n > sizeof response - response_len) return 0;
    memcpy(response + response_len, data, n);
    response_len += n;
    return n;
}

static int perform(CURL *c) {
    response_len = 0;
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200 || response_len == 0) {
        fprintf(stderr, "floor_post: %s, HTTP %ld\n", curl_easy_strerror(rc), status);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: floor_post URL [SECONDS [COUNT]]\n");
        return 2;
    }
    double seconds = bench_seconds(argc, argv, 2, 0.3);
    long count = argc > 3 ? atol(argv[3]) : 0;
    const char *host = strstr(argv[1], "://") ? strstr(argv[1], "://") + 3 : argv[1];
    char url[256], host_line[256];
    snprintf(url, sizeof url, "%s/", argv[1]);
    snprintf(host_line, sizeof host_line, "Host: %.*s", (int)strcspn(host, "/"), host);
    /* Signed once (the server does not verify): the header values have the shape and size of real ones. */
    const char *lines[] = {
        "Authorization: TC3-HMAC-SHA256 Credential=" SIGN_SECRET_ID "/2019-02-25/iotexplorer/tc3_request, "
        "SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        "Content-Type: " SIGN_CONTENT_TYPE, host_line, "X-TC-Action: DescribeBatchProduction",
        "X-TC-Version: 2019-04-23", "X-TC-Timestamp: 1551113065", "X-TC-Region: ap-guangzhou",
        "X-TC-RequestClient: SDK_LUA_0.1.0", "Expect:",
    };
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    CURL *c = curl_easy_init();
    struct curl_slist *headers = NULL;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) headers = curl_slist_append(headers, lines[i]);
    if (!c || !headers) return 1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, SIGN_PAYLOAD);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(SIGN_PAYLOAD));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);

    double warm_until = count > 0 ? 0 : bench_wall() + (seconds / 4 < 0.05 ? seconds / 4 : 0.05);
    if (count > 0 && perform(c)) return 1;
    while (bench_wall() < warm_until)
        if (perform(c)) return 1;
    long ops = 0;
    double wall0 = bench_wall(), cpu0 = bench_cpu(), wall;
    if (count > 0) {
        for (; ops < count; ops++)
            if (perform(c)) return 1;
        wall = bench_wall() - wall0;
    } else {
        do {
            if (perform(c)) return 1;
            ops++;
            wall = bench_wall() - wall0;
        } while (wall < seconds);
    }
    bench_report(ops, wall, bench_cpu() - cpu0);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return 0;
}
