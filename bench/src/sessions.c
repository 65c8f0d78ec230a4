/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tk-bench-sessions: the load client of scenario (d). It opens N MCP
 * sessions on a gateway endpoint (POST initialize, then a GET SSE stream on
 * the same keep-alive connection, which stays open), at most PARALLEL set-ups
 * at a time, waits HOLD ms once all are open, and reads the gateway's memory
 * from /proc/<pid>. It prints one line:
 *
 *   BENCH_SESSIONS <opened> <failed> <setup s> <RSS before kB> <RSS after kB>
 *                  <bytes per session> <VmHWM kB> <gateway CPU s>
 *
 * The bearer token comes from $TUMIKI_TOKEN (never the command line). Every
 * wait is bounded by --timeout. libevent's HTTP client; loopback only.
 *
 * usage: tk-bench-sessions --port P --pid GATEWAY_PID [--path /mcp/default]
 *        [--sessions N] [--parallel N] [--hold-ms MS] [--timeout S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "bench_common.h"

#define MAX_SESSIONS 1000000
#define SID_MAX 256

typedef struct client client_t;

typedef struct session {
    client_t *cl;
    struct evhttp_connection *conn;
    char sid[SID_MAX];
    bool open;
} session_t;

struct client {
    struct event_base *base;
    const char *path;
    char auth[600];
    long port, nsessions, parallel, hold_ms, timeout_s;
    pid_t pid;
    session_t *sess;
    long started, opened, failed, closed_early;
    uint64_t t0, t_open;
    bench_proc_t before;
    struct event *hold_ev;
};

static void start_next(client_t *cl);

static void add_common_headers(client_t *cl, struct evhttp_request *req, const char *accept)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    evhttp_add_header(h, "Accept", accept);
    evhttp_add_header(h, "Authorization", cl->auth);
    evhttp_add_header(h, "MCP-Protocol-Version", "2025-11-25");
}

static void settle(session_t *s, bool ok)
{
    client_t *cl = s->cl;
    if (ok)
        cl->opened++, s->open = true;
    else
        cl->failed++;
    if (cl->opened + cl->failed == cl->nsessions) {
        cl->t_open = bench_now_ns();
        struct timeval tv = {cl->hold_ms / 1000, (cl->hold_ms % 1000) * 1000};
        evtimer_add(cl->hold_ev, &tv);
        return;
    }
    start_next(cl);
}

static int stream_headers(struct evhttp_request *req, void *arg)
{
    session_t *s = arg;
    settle(s, evhttp_request_get_response_code(req) == 200);
    return 0;
}

static void stream_chunk(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void stream_done(struct evhttp_request *req, void *arg)
{
    session_t *s = arg;
    if (!s->open && (req == NULL || evhttp_request_get_response_code(req) == 0))
        settle(s, false); /* failed before its headers came */
    else if (s->open)
        s->cl->closed_early++;
}

static void init_done(struct evhttp_request *req, void *arg)
{
    session_t *s = arg;
    client_t *cl = s->cl;
    const char *sid =
        req ? evhttp_find_header(evhttp_request_get_input_headers(req), "Mcp-Session-Id") : NULL;
    if (req == NULL || evhttp_request_get_response_code(req) != 200 || sid == NULL ||
        strlen(sid) >= SID_MAX) {
        settle(s, false);
        return;
    }
    snprintf(s->sid, sizeof(s->sid), "%s", sid);
    struct evhttp_request *get = evhttp_request_new(stream_done, s);
    evhttp_request_set_header_cb(get, stream_headers);
    evhttp_request_set_chunked_cb(get, stream_chunk);
    add_common_headers(cl, get, "text/event-stream");
    evhttp_add_header(evhttp_request_get_output_headers(get), "Mcp-Session-Id", s->sid);
    if (evhttp_make_request(s->conn, get, EVHTTP_REQ_GET, cl->path) != 0)
        settle(s, false);
}

static void start_next(client_t *cl)
{
    static const char body[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"tk-bench-sessions\","
        "\"version\":\"1\"}}}";
    if (cl->started == cl->nsessions)
        return;
    session_t *s = &cl->sess[cl->started++];
    s->cl = cl;
    s->conn = evhttp_connection_base_new(cl->base, NULL, "127.0.0.1", (unsigned short)cl->port);
    if (s->conn == NULL) {
        settle(s, false);
        return;
    }
    struct timeval tv = {cl->timeout_s + 60, 0};
    evhttp_connection_set_timeout_tv(s->conn, &tv);
    struct evhttp_request *req = evhttp_request_new(init_done, s);
    add_common_headers(cl, req, "application/json, text/event-stream");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, sizeof(body) - 1);
    if (evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, cl->path) != 0)
        settle(s, false);
}

static void report(client_t *cl)
{
    bench_proc_t after;
    bench_proc_read(cl->pid, &after);
    double setup_s = (double)((cl->t_open ? cl->t_open : bench_now_ns()) - cl->t0) / 1e9;
    double per = cl->opened > 0 && after.rss_kb >= 0 && cl->before.rss_kb >= 0
                     ? (double)(after.rss_kb - cl->before.rss_kb) * 1024.0 / (double)cl->opened
                     : -1.0;
    printf("BENCH_SESSIONS %ld %ld %.3f %ld %ld %.0f %ld %.2f\n", cl->opened,
           cl->failed + cl->closed_early, setup_s, cl->before.rss_kb, after.rss_kb, per,
           after.hwm_kb, after.cpu_s - cl->before.cpu_s);
    fflush(stdout);
}

static void hold_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    client_t *cl = arg;
    report(cl);
    event_base_loopexit(cl->base, NULL);
}

static void deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    client_t *cl = arg;
    fprintf(stderr, "bench: sessions: time limit: %ld of %ld set-ups done\n",
            cl->opened + cl->failed, cl->nsessions);
    cl->failed += cl->nsessions - cl->opened - cl->failed;
    report(cl);
    event_base_loopexit(cl->base, NULL);
}

static void parse_args(client_t *cl, int argc, char **argv)
{
    long pid = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = v != NULL;
        if (!strcmp(a, "--port"))
            ok = bench_parse_long(v, 1, 65535, &cl->port);
        else if (!strcmp(a, "--pid"))
            ok = bench_parse_long(v, 1, 1L << 30, &pid);
        else if (!strcmp(a, "--sessions"))
            ok = bench_parse_long(v, 1, MAX_SESSIONS, &cl->nsessions);
        else if (!strcmp(a, "--parallel"))
            ok = bench_parse_long(v, 1, 10000, &cl->parallel);
        else if (!strcmp(a, "--hold-ms"))
            ok = bench_parse_long(v, 0, 600000, &cl->hold_ms);
        else if (!strcmp(a, "--timeout"))
            ok = bench_parse_long(v, 1, 3600, &cl->timeout_s);
        else if (!strcmp(a, "--path") && v != NULL && v[0] == '/' && strlen(v) < 256)
            cl->path = v;
        else
            ok = false;
        if (!ok)
            bench_die("usage: tk-bench-sessions --port P --pid PID [--path P] [--sessions N] "
                      "[--parallel N] [--hold-ms MS] [--timeout S]");
    }
    if (cl->port == 0 || pid == 0)
        bench_die("tk-bench-sessions: --port and --pid are required");
    cl->pid = (pid_t)pid;
}

int main(int argc, char **argv)
{
    static client_t cl = {.path = "/mcp/default",
                          .nsessions = 10000,
                          .parallel = 64,
                          .hold_ms = 2000,
                          .timeout_s = 120};
    parse_args(&cl, argc, argv);
    const char *token = getenv("TUMIKI_TOKEN");
    if (token == NULL || *token == '\0' || strlen(token) > 512)
        bench_die("tk-bench-sessions: set TUMIKI_TOKEN (at most 512 characters)");
    snprintf(cl.auth, sizeof(cl.auth), "Bearer %s", token);
    cl.sess = calloc((size_t)cl.nsessions, sizeof(*cl.sess));
    cl.base = event_base_new();
    if (cl.sess == NULL || cl.base == NULL)
        bench_die("out of memory");
    cl.hold_ev = evtimer_new(cl.base, hold_done, &cl);
    struct event *limit = evtimer_new(cl.base, deadline, &cl);
    struct timeval tv = {cl.timeout_s, 0};
    evtimer_add(limit, &tv);
    bench_proc_read(cl.pid, &cl.before);
    cl.t0 = bench_now_ns();
    for (long i = 0; i < cl.parallel; i++)
        start_next(&cl);
    event_base_dispatch(cl.base);
    for (long i = 0; i < cl.started; i++)
        if (cl.sess[i].conn != NULL)
            evhttp_connection_free(cl.sess[i].conn);
    event_free(limit);
    event_free(cl.hold_ev);
    event_base_free(cl.base);
    free(cl.sess);
    return cl.failed == 0 ? 0 : 2;
}
