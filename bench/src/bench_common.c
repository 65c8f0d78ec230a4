/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of bench_common.h: clock, latency histogram, /proc reads,
 * number parsing and the BENCH_RESULT line shared by the bench drivers.
 */
#include "bench_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define NS_PER_FINE 100ULL
#define NS_PER_COARSE 1000000ULL
#define FINE_LIMIT_NS (NS_PER_FINE * BENCH_FINE_BUCKETS)

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void bench_hist_add(bench_hist_t *h, uint64_t ns)
{
    h->count++;
    if (ns < FINE_LIMIT_NS) {
        h->fine[ns / NS_PER_FINE]++;
        return;
    }
    uint64_t k = (ns - FINE_LIMIT_NS) / NS_PER_COARSE;
    if (k < BENCH_COARSE_BUCKETS)
        h->coarse[k]++;
    else
        h->over++;
}

double bench_hist_ms(const bench_hist_t *h, double p)
{
    if (h->count == 0)
        return 0.0;
    uint64_t want = (uint64_t)((double)h->count * p / 100.0 + 0.5);
    uint64_t seen = 0;
    if (want < 1)
        want = 1;
    for (size_t i = 0; i < BENCH_FINE_BUCKETS; i++) {
        seen += h->fine[i];
        if (seen >= want)
            return (double)((i + 1) * NS_PER_FINE) / 1e6;
    }
    for (size_t i = 0; i < BENCH_COARSE_BUCKETS; i++) {
        seen += h->coarse[i];
        if (seen >= want)
            return (double)(FINE_LIMIT_NS + (i + 1) * NS_PER_COARSE) / 1e6;
    }
    return 10000.0;
}

static long status_kb(const char *text, const char *field)
{
    const char *p = strstr(text, field);
    long v;
    if (p == NULL || sscanf(p + strlen(field), " %ld", &v) != 1)
        return -1;
    return v;
}

static ssize_t read_small_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

void bench_proc_read(pid_t pid, bench_proc_t *out)
{
    char path[64], text[4096];
    out->rss_kb = out->hwm_kb = -1;
    out->cpu_s = -1.0;
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if (read_small_file(path, text, sizeof(text)) > 0) {
        out->rss_kb = status_kb(text, "\nVmRSS:");
        out->hwm_kb = status_kb(text, "\nVmHWM:");
    }
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (read_small_file(path, text, sizeof(text)) <= 0)
        return;
    /* fields 14 and 15 (utime, stime) follow the ")" that ends the name */
    const char *p = strrchr(text, ')');
    unsigned long long ut, st;
    if (p != NULL &&
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
        out->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

bool bench_parse_long(const char *str, long min, long max, long *out)
{
    uint64_t v;
    if (str == NULL || min < 0 || tk_parse_uint(str, (uint64_t)min, (uint64_t)max, &v) != TK_OK)
        return false;
    *out = (long)v;
    return true;
}

void bench_print_result(const bench_hist_t *h, double secs, uint64_t errors)
{
    printf("BENCH_RESULT %.1f %.3f %.3f %.3f %llu\n", secs > 0 ? (double)h->count / secs : 0.0,
           bench_hist_ms(h, 50), bench_hist_ms(h, 99), bench_hist_ms(h, 99.9),
           (unsigned long long)errors);
    fflush(stdout);
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}
