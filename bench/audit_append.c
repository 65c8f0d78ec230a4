/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cost of one audit record: appends N tool.call records (the fields the
 * gateway fills, a small detail object) to a fresh trail in a temp dir and
 * prints ns per record, first with batched fsync (the default) and then with
 * fsync after every record. Built and run by bench/audit.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"

static const unsigned char KEY[32] = "bench-key-bench-key-bench-key-12";

static double run(const char *dir, uint32_t fsync_ms, int n)
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
    json_t *d = json_pack("{s:i, s:s}", "rpc_id", 1, "session", "s-0011223344556677");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        tk_audit_event_t ev = {.actor = "key:abcdef0123456789",
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
        if (tk_audit_append(a, &ev) != TK_OK)
            exit(1);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    json_decref(d);
    tk_audit_close(a);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    char dir1[] = "/tmp/tk-audit-bench-XXXXXX", dir2[] = "/tmp/tk-audit-bench-XXXXXX";
    if (n <= 0 || mkdtemp(dir1) == NULL || mkdtemp(dir2) == NULL)
        return 1;
    printf("batched fsync (1000 ms): %.0f ns/record over %d records\n", run(dir1, 1000, n), n);
    int m = n / 20 > 0 ? n / 20 : 1;
    printf("fsync every record:      %.0f ns/record over %d records\n", run(dir2, 0, m), m);
    printf("(files left in %s and %s)\n", dir1, dir2);
    return 0;
}
