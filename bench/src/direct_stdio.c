/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tk-bench-direct: the direct-to-upstream baseline of scenario (a). It starts
 * an MCP stdio server (normally tk-echo-server), initialises it, then keeps
 * DEPTH tools/call requests in flight over the pipes for DURATION seconds
 * (DEPTH 1: strictly sequential; more: pipelined, one write per batch of
 * replies) and prints the BENCH_RESULT line (see bench_common.h). A reply
 * counts as an error when it is a JSON-RPC error, is not JSON, or lacks the
 * echoed text. Latency is from writing a request to reading its reply line.
 *
 * usage: tk-bench-direct [--depth N] [--duration S] [--tool NAME] -- CMD [ARG...]
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_common.h"

#define MAX_DEPTH 4096
#define IN_CAP ((size_t)4 * 1024 * 1024) /* longest reply line we accept */
#define DRAIN_MS 5000                    /* bound on waiting for the last replies */

typedef struct driver {
    int to_child, from_child;
    pid_t pid;
    long depth;
    const char *tool;
    uint64_t *sent_ns; /* per slot: when its request went out, 0: idle */
    uint64_t next_round;
    char *in;
    size_t in_len;
    char out[MAX_DEPTH * 160];
    size_t out_len;
    uint64_t errors;
} driver_t;

static bench_hist_t hist;

static void spawn(driver_t *d, char **argv)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        bench_die("pipe: %s", strerror(errno));
    d->pid = fork();
    if (d->pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (d->pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]), close(out[1]);
    d->to_child = in[1];
    d->from_child = out[0];
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            bench_die("write to the server: %s", w < 0 ? strerror(errno) : "short write");
        p += w;
        n -= (size_t)w;
    }
}

static void queue_call(driver_t *d, long slot)
{
    uint64_t id = d->next_round * (uint64_t)d->depth + (uint64_t)slot + 100;
    int n = snprintf(d->out + d->out_len, sizeof(d->out) - d->out_len,
                     "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"tools/call\",\"params\":"
                     "{\"name\":\"%s\",\"arguments\":{\"text\":\"hello\"}}}\n",
                     (unsigned long long)id, d->tool);
    if (n < 0 || (size_t)n >= sizeof(d->out) - d->out_len)
        bench_die("request buffer overflow");
    d->out_len += (size_t)n;
    d->sent_ns[slot] = 1; /* stamped when flushed */
}

static void flush_calls(driver_t *d)
{
    uint64_t now = bench_now_ns();
    for (long i = 0; i < d->depth; i++)
        if (d->sent_ns[i] == 1)
            d->sent_ns[i] = now;
    write_all(d->to_child, d->out, d->out_len);
    d->out_len = 0;
}

/* Reads one reply line (blocking, bounded by timeout_ms); returns it parsed or NULL on timeout. */
static json_t *read_reply(driver_t *d, int timeout_ms)
{
    for (;;) {
        char *nl = memchr(d->in, '\n', d->in_len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - d->in) + 1;
            json_t *msg = json_loadb(d->in, n - 1, 0, NULL);
            memmove(d->in, d->in + n, d->in_len - n);
            d->in_len -= n;
            if (msg == NULL)
                msg = json_null(); /* counted as an error by the caller */
            return msg;
        }
        if (d->in_len == IN_CAP)
            bench_die("reply line longer than %zu bytes", IN_CAP);
        struct pollfd p = {.fd = d->from_child, .events = POLLIN};
        int r = poll(&p, 1, timeout_ms);
        if (r == 0)
            return NULL;
        if (r < 0 && errno == EINTR)
            continue;
        ssize_t got = read(d->from_child, d->in + d->in_len, IN_CAP - d->in_len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            bench_die("the server closed its stdout");
        d->in_len += (size_t)got;
    }
}

/* Whether a line is waiting already (so the next read_reply won't block). */
static bool reply_buffered(const driver_t *d)
{
    return memchr(d->in, '\n', d->in_len) != NULL;
}

static void handshake(driver_t *d)
{
    static const char init[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"tk-bench-direct\","
        "\"version\":\"1\"}}}\n"
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
    write_all(d->to_child, init, sizeof(init) - 1);
    json_t *r = read_reply(d, 10000);
    if (r == NULL || json_object_get(r, "result") == NULL)
        bench_die("initialize failed or timed out");
    json_decref(r);
}

/* Handles one reply: records latency, frees its slot; returns the slot or -1. */
static long take_reply(driver_t *d, json_t *msg, uint64_t now)
{
    json_t *idv = json_object_get(msg, "id");
    json_t *content = json_object_get(json_object_get(msg, "result"), "content");
    const char *text = json_string_value(json_object_get(json_array_get(content, 0), "text"));
    if (!json_is_integer(idv) || json_integer_value(idv) < 100) {
        d->errors++;
        return -1;
    }
    long slot = (long)((uint64_t)(json_integer_value(idv) - 100) % (uint64_t)d->depth);
    if (d->sent_ns[slot] == 0) {
        d->errors++;
        return -1;
    }
    if (text == NULL || strstr(text, "hello") == NULL)
        d->errors++;
    bench_hist_add(&hist, now - d->sent_ns[slot]);
    d->sent_ns[slot] = 0;
    return slot;
}

static double run(driver_t *d, long duration_s)
{
    uint64_t start = bench_now_ns(), end = start + (uint64_t)duration_s * 1000000000ULL;
    long inflight = d->depth;
    for (long i = 0; i < d->depth; i++)
        queue_call(d, i);
    flush_calls(d);
    d->next_round++;
    bool stopping = false;
    while (inflight > 0) {
        json_t *msg = read_reply(d, stopping ? DRAIN_MS : 10000);
        if (msg == NULL)
            bench_die("%ld replies outstanding after the time limit", inflight);
        uint64_t now = bench_now_ns();
        long slot = take_reply(d, msg, now);
        json_decref(msg);
        if (slot < 0)
            continue;
        if (!stopping && now >= end) {
            stopping = true;
            if (d->out_len > 0) /* queued but not yet sent: send, then drain */
                flush_calls(d);
        }
        if (stopping) {
            inflight--;
            continue;
        }
        queue_call(d, slot);
        if (!reply_buffered(d)) { /* batch: send once everything read is answered */
            flush_calls(d);
            d->next_round++;
        }
    }
    return (double)(bench_now_ns() - start) / 1e9;
}

static void usage_die(void)
{
    bench_die("usage: tk-bench-direct [--depth N] [--duration S] [--tool NAME] -- CMD [ARG...]");
}

static bool tool_name_ok(const char *v)
{
    return v != NULL && *v != '\0' && strlen(v) < 64 &&
           strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
               strlen(v);
}

/* Parses the options into d and *duration; returns the index of the command. */
static int parse_args(driver_t *d, long *duration, int argc, char **argv)
{
    int i;
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--depth")) {
            if (!bench_parse_long(v, 1, MAX_DEPTH, &d->depth))
                usage_die();
        } else if (!strcmp(a, "--duration")) {
            if (!bench_parse_long(v, 1, 3600, duration))
                usage_die();
        } else if (!strcmp(a, "--tool") && tool_name_ok(v)) {
            d->tool = v;
        } else {
            usage_die();
        }
    }
    if (i + 1 >= argc)
        usage_die();
    return i + 1;
}

int main(int argc, char **argv)
{
    static driver_t d;
    long duration = 5;
    d.depth = 1;
    d.tool = "echo";
    int cmd = parse_args(&d, &duration, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    d.sent_ns = calloc((size_t)d.depth, sizeof(*d.sent_ns));
    d.in = malloc(IN_CAP);
    if (d.sent_ns == NULL || d.in == NULL)
        bench_die("out of memory");
    spawn(&d, argv + cmd);
    handshake(&d);
    double secs = run(&d, duration);
    close(d.to_child); /* the server exits on stdin EOF */
    int status;
    waitpid(d.pid, &status, 0);
    bench_print_result(&hist, secs, d.errors);
    free(d.sent_ns);
    free(d.in);
    return 0;
}
