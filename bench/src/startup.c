/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tk-bench-startup: scenario (e). Runs a server command RUNS times; each
 * time it measures from fork to the moment the ready file holds a complete
 * line (polled every 100 us), reads the process's RSS SETTLE ms later, then
 * stops it with SIGTERM (SIGKILL after 10 s) and removes the ready file. It
 * prints one line (times in ms; the first run is reported on its own since
 * it may also create the data directory and run migrations):
 *
 *   BENCH_STARTUP <first> <median of the others> <min> <max> <idle RSS kB>
 *
 * usage: tk-bench-startup --ready-file PATH [--runs N] [--settle-ms MS] -- CMD [ARG...]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

#define MAX_RUNS 1000
#define READY_LIMIT_NS (20ULL * 1000000000ULL)
#define STOP_LIMIT_MS 10000

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool ready_complete(const char *path)
{
    char buf[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    return n > 0 && memchr(buf, '\n', (size_t)n) != NULL;
}

static void stop(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    for (int i = 0; i < STOP_LIMIT_MS; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return;
        sleep_us(1000);
    }
    fprintf(stderr, "bench: startup: SIGTERM ignored for 10 s; SIGKILL\n");
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

/* One run: returns the start-up time in ns and the idle RSS in *rss_kb. */
static uint64_t one_run(char **cmd, const char *ready, long settle_ms, long *rss_kb)
{
    unlink(ready);
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0)
            dup2(null, STDIN_FILENO), dup2(null, STDOUT_FILENO);
        execvp(cmd[0], cmd);
        _exit(127);
    }
    while (!ready_complete(ready)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            bench_die("startup: %s exited before it was ready (status %d)", cmd[0], status);
        if (bench_now_ns() - t0 > READY_LIMIT_NS) {
            stop(pid);
            bench_die("startup: no ready file after 20 s");
        }
        sleep_us(100);
    }
    uint64_t took = bench_now_ns() - t0;
    sleep_us(settle_ms * 1000);
    bench_proc_t p;
    bench_proc_read(pid, &p);
    *rss_kb = p.rss_kb;
    stop(pid);
    unlink(ready);
    return took;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long runs = 11, settle_ms = 200;
    const char *ready = NULL;
    int i;
    for (i = 1; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2) {
        const char *v = argv[i + 1];
        bool ok = true;
        if (!strcmp(argv[i], "--runs"))
            ok = bench_parse_long(v, 2, MAX_RUNS, &runs);
        else if (!strcmp(argv[i], "--settle-ms"))
            ok = bench_parse_long(v, 0, 60000, &settle_ms);
        else if (!strcmp(argv[i], "--ready-file"))
            ready = v;
        else
            ok = false;
        if (!ok)
            break;
    }
    if (ready == NULL || i + 1 >= argc || strcmp(argv[i], "--") != 0)
        bench_die("usage: tk-bench-startup --ready-file PATH [--runs N] [--settle-ms MS] -- CMD "
                  "[ARG...]");
    static uint64_t ns[MAX_RUNS];
    long rss = -1;
    for (long r = 0; r < runs; r++)
        ns[r] = one_run(argv + i + 1, ready, settle_ms, &rss);
    qsort(ns + 1, (size_t)runs - 1, sizeof(ns[0]), cmp_u64);
    printf("BENCH_STARTUP %.2f %.2f %.2f %.2f %ld\n", (double)ns[0] / 1e6,
           (double)ns[1 + (runs - 2) / 2] / 1e6, (double)ns[1] / 1e6, (double)ns[runs - 1] / 1e6,
           rss);
    return 0;
}
