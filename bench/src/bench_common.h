/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the benchmark drivers in bench/src: a monotonic clock, a
 * fixed-size latency histogram (100 ns buckets below 10 ms, 1 ms buckets up
 * to 10 s; no allocation per sample), reading a process's memory and CPU
 * from /proc, strict number parsing, and the one-line machine-readable
 * result that bench/run.sh parses:
 *
 *   BENCH_RESULT <req/s> <p50 ms> <p99 ms> <p99.9 ms> <errors>
 *
 * Not part of the gateway; the drivers link tumiki_core only for its number
 * parser, plus jansson or libevent.
 */
#ifndef TK_BENCH_COMMON_H
#define TK_BENCH_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_FINE_BUCKETS 100000 /* 100 ns each: 0 .. 10 ms */
#define BENCH_COARSE_BUCKETS 9990 /* 1 ms each: 10 ms .. 10 s */

/* A latency histogram; zero-initialise it (static storage: ~880 KB). */
typedef struct bench_hist {
    uint64_t fine[BENCH_FINE_BUCKETS];
    uint64_t coarse[BENCH_COARSE_BUCKETS];
    uint64_t over; /* >= 10 s */
    uint64_t count;
} bench_hist_t;

/* Process figures from /proc/<pid>; -1 where unreadable. */
typedef struct bench_proc {
    long rss_kb;  /* VmRSS */
    long hwm_kb;  /* VmHWM: peak RSS */
    double cpu_s; /* utime + stime */
} bench_proc_t;

uint64_t bench_now_ns(void);
void bench_hist_add(bench_hist_t *h, uint64_t ns);
/* The latency at percentile p (0..100) in milliseconds (bucket upper bound). */
double bench_hist_ms(const bench_hist_t *h, double p);
void bench_proc_read(pid_t pid, bench_proc_t *out);
/* Parses all of str as a decimal in [min, max] (min >= 0); false if it is not one. */
bool bench_parse_long(const char *str, long min, long max, long *out);
/* Prints the BENCH_RESULT line for n requests in secs seconds. */
void bench_print_result(const bench_hist_t *h, double secs, uint64_t errors);
/* Prints "<prog>: <message>" to stderr and exits with status 1. */
__attribute__((format(printf, 1, 2), noreturn)) void bench_die(const char *fmt, ...);

#endif
