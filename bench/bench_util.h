/* Shared by the C baselines of `make bench`: clocks and the one-line result format run.lua parses. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double bench_clock(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench_wall(void) { return bench_clock(CLOCK_MONOTONIC); }
static double bench_cpu(void) { return bench_clock(CLOCK_PROCESS_CPUTIME_ID); }

/* "RESULT <operations per wall second> <CPU microseconds per operation> <operations>" */
static void bench_report(long ops, double wall, double cpu) {
    printf("RESULT %.1f %.3f %ld\n", (double)ops / wall, cpu * 1e6 / (double)ops, ops);
}

static double bench_seconds(int argc, char **argv, int index, double fallback) {
    return argc > index ? atof(argv[index]) : fallback;
}

#endif
