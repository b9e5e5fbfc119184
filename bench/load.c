/* The load of the nginx rows of `make bench`: CONCURRENCY kept-alive connections (libcurl multi) sending GET
 * URL back to back for SECONDS. usage: load URL CONCURRENCY SECONDS
 * prints LOAD <requests/s> <answered 200> <other answers or failures> */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double bench_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *data, size_t size, size_t n, void *ctx) {
    (void)data;
    (void)ctx;
    return size * n;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: load URL CONCURRENCY SECONDS\n");
        return 2;
    }
    const char *url = argv[1];
    int concurrency = atoi(argv[2]);
    double seconds = atof(argv[3]);
    if (concurrency < 1 || concurrency > 256 || !(seconds > 0)) return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    CURL *handles[256];
    for (int i = 0; i < concurrency; i++) {
        handles[i] = curl_easy_init();
        curl_easy_setopt(handles[i], CURLOPT_URL, url);
        curl_easy_setopt(handles[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(handles[i], CURLOPT_TIMEOUT, 30L);
        curl_multi_add_handle(multi, handles[i]);
    }
    long ok = 0, bad = 0;
    double start = bench_wall(), stop = start + seconds;
    int running = concurrency;
    while (running > 0) {
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            if (m->data.result == CURLE_OK && status == 200) ok++;
            else bad++;
            curl_multi_remove_handle(multi, e);
            if (bench_wall() < stop) {
                curl_multi_add_handle(multi, e);
                running++;
            }
        }
        if (running > 0) curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    double wall = bench_wall() - start;
    printf("LOAD %.1f %ld %ld\n", (double)(ok + bad) / wall, ok, bad);
    for (int i = 0; i < concurrency; i++) curl_easy_cleanup(handles[i]);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
