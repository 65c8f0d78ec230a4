/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cost of one audit record: appends N tool.call records (the fields the
 * gateway fills, a small detail object) to a fresh trail in a temp dir and
 * prints ns per record, first with batched fsync (the default) and then with
 * fsync after every record. Then submits N records from an event loop as
 * the gateway does (tk_audit_submit, 16 per loop iteration) and prints the
 * CPU time per record of the loop's thread and of the rest of the process
 * (the writer thread). Built and run by bench/audit.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/audit.h"

static const unsigned char KEY[32] = "bench-key-bench-key-bench-key-12";

/* A fresh trail in dir (exits when it cannot be opened). */
static tk_audit_t *open_trail(const char *dir, uint32_t fsync_ms)
{
    tk_audit_opts_t o = {.dir = dir,
                         .key = KEY,
                         .keylen = sizeof(KEY),
                         .retention_days = 90,
                         .fsync_interval_ms = fsync_ms,
                         .worker = 1};
    tk_audit_t *a = NULL;
    char err[256];
    if (tk_audit_open(&o, &a, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return a;
}

/* The fields the gateway fills for a tool call, with detail d. */
static tk_audit_event_t call_event(json_t *d)
{
    return (tk_audit_event_t){.actor = "key:abcdef0123456789",
                              .action = "tool.call",
                              .target = "s-0011223344556677",
                              .endpoint = "default",
                              .server = "echo",
                              .tool = "echo__echo",
                              .result = "ok",
                              .status = 200,
                              .latency_us = 250,
                              .ip = "127.0.0.1",
                              .request_id = "a1b2c3d4-1",
                              .detail = d};
}

static double run(const char *dir, uint32_t fsync_ms, int n)
{
    tk_audit_t *a = open_trail(dir, fsync_ms);
    json_t *d = json_pack("{s:i, s:s}", "rpc_id", 1, "session", "s-0011223344556677");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        tk_audit_event_t ev = call_event(d);
        if (tk_audit_append(a, &ev) != TK_OK)
            exit(1);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    json_decref(d);
    tk_audit_close(a);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
}

static int completed;

static void on_done(void *arg, int rc)
{
    (void)arg;
    if (rc != TK_OK)
        exit(1);
    completed++;
}

static double cpu_ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* One record submitted the way audit_call does. */
static void submit_one(tk_audit_t *a, json_t *id)
{
    json_t *d = json_pack("{s:O?, s:s}", "rpc_id", id, "session", "s-0011223344556677");
    tk_audit_event_t ev = call_event(d);
    if (tk_audit_submit(a, &ev, on_done, NULL) != TK_OK)
        exit(1);
    json_decref(d);
}

/* n records from a loop, 16 per iteration; CPU ns per record of the loop's
 * thread (*loop) and of the other threads (*rest). */
static void run_submit(const char *dir, int n, double *loop, double *rest)
{
    tk_audit_t *a = open_trail(dir, 1000);
    struct event_base *base = event_base_new();
    if (base == NULL || tk_audit_attach_loop(a, base) != TK_OK) {
        fprintf(stderr, "cannot attach a loop to the trail\n");
        exit(1);
    }
    json_t *id = json_integer(7);
    completed = 0;
    double t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID), p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i += 16) {
        for (int j = i; j < n && j < i + 16; j++)
            submit_one(a, id);
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    while (completed < n) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - deadline.tv_sec > 60)
            exit(1); /* the writer stopped */
        event_base_loop(base, EVLOOP_ONCE);
    }
    double t1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID), p1 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    *loop = (t1 - t0) / n;
    *rest = ((p1 - p0) - (t1 - t0)) / n;
    json_decref(id);
    tk_audit_close(a);
    event_base_free(base);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    char dir1[] = "/tmp/tk-audit-bench-XXXXXX", dir2[] = "/tmp/tk-audit-bench-XXXXXX",
         dir3[] = "/tmp/tk-audit-bench-XXXXXX";
    if (n <= 0 || mkdtemp(dir1) == NULL || mkdtemp(dir2) == NULL || mkdtemp(dir3) == NULL)
        return 1;
    printf("batched fsync (1000 ms): %.0f ns/record over %d records\n", run(dir1, 1000, n), n);
    int m = n / 20 > 0 ? n / 20 : 1;
    printf("fsync every record:      %.0f ns/record over %d records\n", run(dir2, 0, m), m);
    double loop, rest;
    run_submit(dir3, n, &loop, &rest);
    printf("submitted from a loop:   %.0f ns CPU/record on the loop, %.0f on the other threads "
           "over %d records\n",
           loop, rest, n);
    printf("(files left in %s and %s and %s)\n", dir1, dir2, dir3);
    return 0;
}
