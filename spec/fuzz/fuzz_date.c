/* libFuzzer target: the Date response header -> Unix seconds (http_header_date in src/http.c, which
 * libcurl's header callback calls for every response header line). Input: 1 mode byte; mode even: the
 * rest is a raw header line as libcurl hands it over (no NUL terminator); mode odd: 8 bytes of timestamp
 * formatted as an RFC 7231 Date line with a fuzzed header-name case and trailer, which must parse back
 * to the same second. Any line not starting with "date:" (any case) must give -1. */
#define _POSIX_C_SOURCE 200809L
#include "http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
    fprintf(stderr, "fuzz_date invariant broken: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (!(mode & 1)) {
        char *line = malloc(size ? size : 1);    /* exactly size bytes: ASan sees any read past them */
        if (!line) abort();
        memcpy(line, data, size);
        int64_t t = http_header_date(line, size);
        if (t < -1) fail("a negative date other than -1");
        if ((size <= 5 || strncasecmp(line, "date:", 5) != 0) && t != -1) fail("a date from a line that is not Date:");
        if (http_header_date(line, size) != t) fail("the same line parsed twice differs");
        free(line);
        return 0;
    }
    if (size < 8) return 0;
    uint64_t raw = 0;
    for (int i = 0; i < 8; i++) raw |= (uint64_t)data[i] << (8 * i);
    time_t when = (time_t)(raw % 253402300800ULL);   /* 1970 .. 9999 */
    struct tm tm;
    if (!gmtime_r(&when, &tm)) return 0;
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                          "Nov", "Dec" };
    static const char *const names[] = { "Date:", "date:", "DATE:", "dAtE:" };
    static const char *const tails[] = { "\r\n", "\n", "", "  \r\n" };
    char line[96];
    int n = snprintf(line, sizeof line, "%s %s, %02d %s %04d %02d:%02d:%02d GMT%s", names[(mode >> 1) & 3],
                     days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, tails[(mode >> 3) & 3]);
    int64_t t = http_header_date(line, (size_t)n);
    if (t != (int64_t)when) {
        fprintf(stderr, "line %s-> %lld, want %lld\n", line, (long long)t, (long long)when);
        fail("a well-formed Date line did not parse back to its second");
    }
    return 0;
}
