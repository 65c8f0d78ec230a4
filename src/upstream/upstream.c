/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upstream MCP servers over stdio: spawning (own process group, minimal
 * environment, parent-death signal), newline-delimited JSON-RPC framing with
 * a size cap, id multiplexing, the initialize handshake, per-call timeouts,
 * supervision with exponential backoff, idle reaping and process-tree kill.
 */
#include "upstream/upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "core/map.h"
#include "mcp/jsonrpc.h"
#include "upstream/remote.h"

#define MOD "upstream"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 30000
#define KILL_GRACE_MS 2000
#define STDERR_LINE_MAX 1024
#define GATEWAY_PROTOCOL "2025-11-25"

typedef struct pending {
    uint64_t id;
    tk_upstream_t *up;
    char *method;
    json_t *params; /* kept until sent */
    tk_upstream_reply_cb cb;
    void *arg;
    struct event *timer;
    int sent;
    int internal; /* the initialize handshake */
    TAILQ_ENTRY(pending) qlink; /* in the not-yet-sent queue */
} pending_t;

TAILQ_HEAD(pending_q, pending);

struct tk_upstream {
    struct event_base *base;
    const tk_server_conf_t *conf;
    size_t max_message_bytes;
    tk_upstream_events_t ev;
    tk_upstream_state_t state;
    uint64_t next_id;
    uint64_t generation;
    tk_map_t *pending; /* id -> pending_t, sent or queued */
    struct pending_q queue;
    json_t *server_info;
    unsigned restarts;
    unsigned failures; /* consecutive, for backoff */
    size_t nsent;      /* requests sent and not yet answered */
    unsigned call_failures;  /* consecutive transport failures of calls */
    uint64_t open_until_ms;  /* circuit breaker: fail fast until then */
    uint64_t started_ms;
    struct event *backoff_timer;
    struct event *idle_timer;
    struct event *kill_timer;
    /* the child */
    pid_t pid;
    int in_fd;
    struct bufferevent *out_bev;
    struct bufferevent *err_bev;
    struct evbuffer *wbuf; /* bytes waiting for the child's stdin */
    struct event *write_ev;
    /* remote servers */
    tk_remote_t *remote;
    struct event *lost_ev; /* defers a remote failure out of curl's callbacks */
    struct event *connect_timer; /* remote: connected and initialised in time */
    char lost_why[160];
};

static void fail_pending(tk_upstream_t *up, const char *why, int queued_too);
static void schedule_restart(tk_upstream_t *up);
static int start_transport(tk_upstream_t *up);
static void abort_transport(tk_upstream_t *up, const char *why);
static void flush_queue(tk_upstream_t *up);

const char *tk_upstream_name(const tk_upstream_t *up)
{
    return up->conf->name;
}

const tk_server_conf_t *tk_upstream_conf(const tk_upstream_t *up)
{
    return up->conf;
}

tk_upstream_state_t tk_upstream_state(const tk_upstream_t *up)
{
    return up->state;
}

uint64_t tk_upstream_generation(const tk_upstream_t *up)
{
    return up->generation;
}

json_t *tk_upstream_server_info(const tk_upstream_t *up)
{
    return up->server_info;
}

size_t tk_upstream_inflight(const tk_upstream_t *up)
{
    return tk_map_count(up->pending);
}

unsigned tk_upstream_restarts(const tk_upstream_t *up)
{
    return up->restarts;
}

int tk_upstream_pid(const tk_upstream_t *up)
{
    return (int)up->pid;
}

static json_t *make_error(int code, const char *fmt, ...) TK_PRINTF(2, 3);

static json_t *make_error(int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    return json_pack("{s:i, s:s}", "code", code, "message", msg);
}

static void pending_free(pending_t *p)
{
    if (p->timer)
        event_free(p->timer);
    json_decref(p->params);
    free(p->method);
    free(p);
}

/* Remove p from every index; the caller then frees it. */
static void pending_unlink(tk_upstream_t *up, pending_t *p)
{
    tk_map_del(up->pending, p->id);
    if (!p->sent)
        TAILQ_REMOVE(&up->queue, p, qlink);
    else
        up->nsent--;
}

/* Circuit breaker bookkeeping: transport failures (made up by the gateway:
 * exits, timeouts, connection errors) count; any answer from the server
 * closes the circuit again. */
static void note_outcome(tk_upstream_t *up, int transport_failure)
{
    if (!transport_failure) {
        up->call_failures = 0;
        up->open_until_ms = 0;
        return;
    }
    up->call_failures++;
    if (up->conf->circuit_failures > 0 && up->call_failures >= up->conf->circuit_failures) {
        if (up->open_until_ms <= tk_now_ms())
            tk_warn(MOD, "server %s: %u failures in a row; circuit open for %u ms",
                    up->conf->name, up->call_failures, up->conf->circuit_open_ms);
        up->open_until_ms = tk_now_ms() + up->conf->circuit_open_ms;
    }
}

uint32_t tk_upstream_retry_after_s(const tk_upstream_t *up)
{
    uint64_t now = tk_now_ms();
    if (up->open_until_ms <= now)
        return 0;
    return (uint32_t)((up->open_until_ms - now + 999) / 1000);
}

static void idle_arm(tk_upstream_t *up)
{
    if (up->conf->idle_timeout_s == 0 || up->state != TK_UP_READY ||
        tk_map_count(up->pending) != 0)
        return;
    struct timeval tv = {(time_t)up->conf->idle_timeout_s, 0};
    evtimer_add(up->idle_timer, &tv);
}

static void complete_as(tk_upstream_t *up, pending_t *p, json_t *result, json_t *error,
                        int transport_failure)
{
    pending_unlink(up, p);
    tk_upstream_reply_cb cb = p->cb;
    void *arg = p->arg;
    pending_free(p);
    note_outcome(up, transport_failure);
    cb(arg, result, error);
    flush_queue(up);
    idle_arm(up);
}

/* A reply from the server itself. */
static void complete(tk_upstream_t *up, pending_t *p, json_t *result, json_t *error)
{
    complete_as(up, p, result, error, 0);
}

/* A failure the gateway observed (exit, timeout, transport error). */
static void complete_failed(tk_upstream_t *up, pending_t *p, json_t *error)
{
    complete_as(up, p, NULL, error, 1);
}

/* ---- writing to the child ---- */

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_upstream_t *up = arg;
    (void)what;
    while (evbuffer_get_length(up->wbuf) > 0) {
        int n = evbuffer_write(up->wbuf, fd);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            event_add(up->write_ev, NULL);
            return;
        }
        tk_warn(MOD, "server %s: write to stdin failed", up->conf->name);
        evbuffer_drain(up->wbuf, evbuffer_get_length(up->wbuf));
        return;
    }
}

static int send_json_id(tk_upstream_t *up, json_t *msg, uint64_t req_id)
{
    size_t len;
    if (up->remote) {
        char *body = tk_json_dump(msg, &len);
        int rc = tk_remote_send(up->remote, body, len, req_id);
        free(body);
        return rc;
    }
    if (up->in_fd < 0)
        return TK_ESTATE;
    char *s = tk_json_dump(msg, &len);
    evbuffer_add(up->wbuf, s, len);
    evbuffer_add(up->wbuf, "\n", 1);
    free(s);
    if (!event_pending(up->write_ev, EV_WRITE, NULL))
        write_cb(up->in_fd, EV_WRITE, up);
    return TK_OK;
}

static int send_json(tk_upstream_t *up, json_t *msg)
{
    return send_json_id(up, msg, 0);
}

static int send_request(tk_upstream_t *up, pending_t *p)
{
    json_t *msg = tk_rpc_request(json_integer((json_int_t)p->id), p->method,
                                 p->params ? json_incref(p->params) : NULL);
    int rc = send_json_id(up, msg, p->id);
    json_decref(msg);
    json_decref(p->params);
    p->params = NULL;
    p->sent = 1;
    up->nsent++;
    return rc;
}

/* ---- handshake ---- */

static void on_initialized(void *arg, json_t *result, json_t *error)
{
    tk_upstream_t *up = arg;
    if (error != NULL) {
        const char *m = json_string_value(json_object_get(error, "message"));
        tk_warn(MOD, "server %s: initialize failed: %s", up->conf->name, m ? m : "?");
        abort_transport(up, "initialize failed");
        return; /* the exit path restarts it */
    }
    json_decref(up->server_info);
    up->server_info = json_incref(result);
    json_t *note = tk_rpc_notification("notifications/initialized", NULL);
    if (send_json(up, note) != TK_OK)
        tk_warn(MOD, "server %s: could not send initialized", up->conf->name);
    json_decref(note);
    up->state = TK_UP_READY;
    evtimer_del(up->connect_timer);
    const char *ver = json_string_value(json_object_get(result, "protocolVersion"));
    if (up->remote)
        tk_remote_ready(up->remote, ver);
    if (up->remote)
        tk_info(MOD, "server %s ready (%s, protocol %s)", up->conf->name,
                up->conf->transport == TK_TRANSPORT_SSE ? "sse" : "http", ver ? ver : "?");
    else
        tk_info(MOD, "server %s ready (pid %d, protocol %s)", up->conf->name, (int)up->pid,
                ver ? ver : "?");
    flush_queue(up);
    if (up->ev.ready)
        up->ev.ready(up->ev.arg, up);
    idle_arm(up);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg);

static pending_t *pending_new(tk_upstream_t *up, const char *method, json_t *params,
                              tk_upstream_reply_cb cb, void *arg, uint32_t timeout_ms)
{
    pending_t *p = tk_calloc(1, sizeof(*p));
    p->id = ++up->next_id;
    p->up = up;
    p->method = tk_strdup(method);
    p->params = params ? json_incref(params) : NULL;
    p->cb = cb;
    p->arg = arg;
    p->timer = evtimer_new(up->base, timeout_cb, p);
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
    tk_map_put(up->pending, p->id, p);
    return p;
}

static int send_initialize(tk_upstream_t *up)
{
    json_t *params = json_pack(
        "{s:s, s:{s:{s:b}, s:{}, s:{}}, s:{s:s, s:s}}", "protocolVersion", GATEWAY_PROTOCOL,
        "capabilities", "roots", "listChanged", 1, "sampling", "elicitation", "clientInfo",
        "name", "tumiki", "version", TK_VERSION);
    pending_t *p = pending_new(up, "initialize", params, on_initialized, up,
                               up->conf->connect_timeout_ms);
    json_decref(params);
    p->internal = 1;
    return send_request(up, p);
}

/* ---- reading from the child ---- */

static void handle_message(tk_upstream_t *up, const char *line, size_t len)
{
    json_t *msg = NULL;
    tk_rpc_t rpc;
    int code;
    const char *why;
    if (tk_rpc_parse(line, len, &msg, &rpc, &code, &why) != TK_OK) {
        tk_warn(MOD, "server %s: dropped invalid message (%s)", up->conf->name, why);
        json_decref(msg);
        return;
    }
    if (rpc.kind == TK_RPC_RESPONSE) {
        pending_t *p = json_is_integer(rpc.id)
                           ? tk_map_get(up->pending, (uint64_t)json_integer_value(rpc.id))
                           : NULL;
        if (p == NULL || !p->sent)
            tk_debug(MOD, "server %s: reply to unknown id dropped", up->conf->name);
        else
            complete(up, p, rpc.result, rpc.error);
    } else if (rpc.kind == TK_RPC_REQUEST) {
        if (up->ev.request)
            up->ev.request(up->ev.arg, up, rpc.id, rpc.method, rpc.params);
    } else if (up->ev.notification) {
        up->ev.notification(up->ev.arg, up, rpc.method, rpc.params);
    }
    json_decref(msg);
}

static void out_read_cb(struct bufferevent *bev, void *arg)
{
    tk_upstream_t *up = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (avail > up->max_message_bytes) {
                tk_warn(MOD, "server %s: message exceeds %zu bytes; killing it",
                        up->conf->name, up->max_message_bytes);
                evbuffer_drain(in, avail);
                abort_transport(up, "message too large");
            }
            return;
        }
        size_t n = (size_t)eol.pos;
        if (n > up->max_message_bytes) {
            /* its caller would wait forever for the dropped reply: end the
             * process, which fails its calls with a clear error */
            evbuffer_drain(in, evbuffer_get_length(in));
            tk_warn(MOD, "server %s: message exceeds %zu bytes; killing it", up->conf->name,
                    up->max_message_bytes);
            abort_transport(up, "message too large");
            return;
        }
        const char *line = (const char *)evbuffer_pullup(in, (ev_ssize_t)n + 1);
        size_t len = n;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len > 0)
            handle_message(up, line, len);
        evbuffer_drain(in, n + 1);
        if (up->out_bev != bev)
            return; /* the child went away while handling */
    }
}

static void err_read_cb(struct bufferevent *bev, void *arg)
{
    tk_upstream_t *up = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
        if (line == NULL)
            break;
        if (n > STDERR_LINE_MAX)
            line[STDERR_LINE_MAX] = '\0';
        tk_info(MOD, "server %s stderr: %s", up->conf->name, line);
        free(line);
    }
    if (evbuffer_get_length(in) > STDERR_LINE_MAX)
        evbuffer_drain(in, evbuffer_get_length(in)); /* an endless line: drop it */
}

static void close_child_io(tk_upstream_t *up)
{
    if (up->remote)
        tk_remote_reset(up->remote, 0);
    if (up->out_bev) {
        bufferevent_free(up->out_bev);
        up->out_bev = NULL;
    }
    if (up->err_bev) {
        bufferevent_free(up->err_bev);
        up->err_bev = NULL;
    }
    if (up->in_fd >= 0) {
        event_del(up->write_ev);
        close(up->in_fd);
        up->in_fd = -1;
    }
    evbuffer_drain(up->wbuf, evbuffer_get_length(up->wbuf));
}

/* The child is gone (EOF on stdout or reaped). */
static void child_lost(tk_upstream_t *up, const char *why)
{
    int was_stopping = up->state == TK_UP_STOPPING;
    /* A server that dies before its handshake would hold queued calls
     * through every restart: fail them too. */
    int was_starting = up->state == TK_UP_STARTING;
    close_child_io(up);
    if (up->pid > 0)
        kill(-up->pid, SIGKILL); /* the leader closed stdout: end its group */
    if (up->state == TK_UP_IDLE || up->state == TK_UP_BACKOFF)
        return;
    uint64_t lived = tk_now_ms() - up->started_ms;
    up->generation++;
    fail_pending(up, why, was_starting);
    if (up->ev.down)
        up->ev.down(up->ev.arg, up);
    if (was_stopping) {
        up->state = TK_UP_IDLE;
        return;
    }
    tk_warn(MOD, "server %s: %s", up->conf->name, why);
    if (lived > STABLE_MS)
        up->failures = 0;
    schedule_restart(up);
}

static void out_event_cb(struct bufferevent *bev, short what, void *arg)
{
    tk_upstream_t *up = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        out_read_cb(up->out_bev, up); /* deliver what is buffered */
        if (up->out_bev != NULL)
            child_lost(up, "process exited");
    }
}

static void err_event_cb(struct bufferevent *bev, short what, void *arg)
{
    tk_upstream_t *up = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        err_read_cb(bev, up);
        bufferevent_free(up->err_bev);
        up->err_bev = NULL;
    }
}

int tk_upstream_child_exited(tk_upstream_t *up, int pid, int status)
{
    if (up->pid <= 0 || pid != (int)up->pid)
        return 0;
    kill(-up->pid, SIGKILL); /* stragglers in its group */
    up->pid = -1;
    evtimer_del(up->kill_timer);
    if (up->out_bev != NULL) {
        char why[96];
        if (WIFEXITED(status))
            tk_snprintf(why, sizeof(why), "process %d exited with status %d", pid,
                        WEXITSTATUS(status));
        else
            tk_snprintf(why, sizeof(why), "process %d killed by signal %d", pid,
                        WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        out_read_cb(up->out_bev, up);
        if (up->out_bev != NULL)
            child_lost(up, why);
    }
    return 1;
}

/* ---- supervision ---- */

static void fail_pending(tk_upstream_t *up, const char *why, int queued_too)
{
    /* Collect first: callbacks may start new requests. */
    size_t it = 0, n = 0, cap = tk_map_count(up->pending);
    pending_t **list = tk_calloc(cap + 1, sizeof(*list));
    void *val;
    while (tk_map_next(up->pending, &it, NULL, NULL, &val)) {
        pending_t *p = val;
        if (p->sent || queued_too)
            list[n++] = p;
    }
    for (size_t i = 0; i < n; i++) {
        pending_t *p = list[i];
        if (p->internal) {
            pending_unlink(up, p);
            pending_free(p);
            continue;
        }
        json_t *err = make_error(TK_RPC_INTERNAL_ERROR, "upstream server '%s' failed: %s",
                                 up->conf->name, why);
        complete_failed(up, p, err);
        json_decref(err);
    }
    free(list);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_upstream_t *up = arg;
    (void)fd;
    (void)what;
    up->state = TK_UP_IDLE;
    if (start_transport(up) != TK_OK) {
        fail_pending(up, "cannot start the process", 1);
        schedule_restart(up);
    }
}

static void schedule_restart(tk_upstream_t *up)
{
    uint64_t ms = BACKOFF_MIN_MS;
    for (unsigned i = 0; i < up->failures && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    up->failures++;
    up->restarts++;
    up->state = TK_UP_BACKOFF;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(up->backoff_timer, &tv);
    tk_info(MOD, "server %s: restarting in %llu ms", up->conf->name, (unsigned long long)ms);
}

static void kill_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_upstream_t *up = arg;
    (void)fd;
    (void)what;
    if (up->pid > 0)
        kill(-up->pid, SIGKILL);
}

/* Graceful stop: close stdin, SIGTERM the group, SIGKILL after a grace. */
static void stop_child(tk_upstream_t *up)
{
    if (up->remote) {
        tk_remote_reset(up->remote, 1);
        up->generation++;
        up->state = TK_UP_IDLE;
        if (up->ev.down)
            up->ev.down(up->ev.arg, up);
        return;
    }
    if (up->pid <= 0)
        return;
    up->state = TK_UP_STOPPING;
    if (up->in_fd >= 0) {
        event_del(up->write_ev);
        close(up->in_fd);
        up->in_fd = -1;
    }
    kill(-up->pid, SIGTERM);
    struct timeval tv = {KILL_GRACE_MS / 1000, (KILL_GRACE_MS % 1000) * 1000};
    evtimer_add(up->kill_timer, &tv);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_upstream_t *up = arg;
    (void)fd;
    (void)what;
    if (up->state != TK_UP_READY || tk_map_count(up->pending) != 0)
        return;
    tk_info(MOD, "server %s: idle for %us; stopping it", up->conf->name,
            up->conf->idle_timeout_s);
    stop_child(up);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    pending_t *p = arg;
    tk_upstream_t *up = p->up;
    (void)fd;
    (void)what;
    if (p->internal) {
        tk_warn(MOD, "server %s: initialize timed out", up->conf->name);
        pending_unlink(up, p);
        pending_free(p);
        abort_transport(up, "initialize timed out");
        return;
    }
    if (p->sent) {
        json_t *params = json_pack("{s:I, s:s}", "requestId", (json_int_t)p->id, "reason",
                                   "timed out in gateway");
        json_t *note = tk_rpc_notification("notifications/cancelled", params);
        if (send_json(up, note) != TK_OK)
            tk_debug(MOD, "server %s: cancel not sent", up->conf->name);
        json_decref(note);
    }
    json_t *err = make_error(TK_RPC_INTERNAL_ERROR, "upstream server '%s' did not answer %s within %u ms",
                             up->conf->name, p->method, up->conf->request_timeout_ms);
    complete_failed(up, p, err);
    json_decref(err);
}

static void flush_queue(tk_upstream_t *up)
{
    pending_t *p;
    while (up->state == TK_UP_READY && up->nsent < up->conf->max_inflight &&
           (p = TAILQ_FIRST(&up->queue)) != NULL) {
        TAILQ_REMOVE(&up->queue, p, qlink);
        if (send_request(up, p) != TK_OK)
            break;
    }
}

/* ---- spawning ---- */

static char *resolve_command(const char *cmd)
{
    if (strchr(cmd, '/') != NULL)
        return access(cmd, X_OK) == 0 ? tk_strdup(cmd) : NULL;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        char *cand = tk_asprintf("%.*s/%s", (int)n, path, cmd);
        struct stat st;
        if (n > 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        path += n;
        if (*path == ':')
            path++;
    }
    return NULL;
}

/* The child's environment: a few harmless variables of the gateway's
 * (so interpreters can find themselves) plus the server's configured env,
 * which wins. Never the gateway's secrets. */
static char **build_env(const tk_server_conf_t *c)
{
    static const char *inherit[] = {"PATH", "HOME", "LANG", "LC_ALL", "TERM",
                                    "USER", "LOGNAME", "SHELL", "TMPDIR", "TZ"};
    size_t n = 0, cap = sizeof(inherit) / sizeof(inherit[0]) + c->nenv + 1;
    char **env = tk_calloc(cap, sizeof(char *));
    for (size_t i = 0; i < sizeof(inherit) / sizeof(inherit[0]); i++) {
        const char *v = getenv(inherit[i]);
        int overridden = 0;
        for (size_t j = 0; j < c->nenv; j++)
            overridden |= strcmp(c->env[j].name, inherit[i]) == 0;
        if (v != NULL && !overridden)
            env[n++] = tk_asprintf("%s=%s", inherit[i], v);
    }
    for (size_t j = 0; j < c->nenv; j++)
        env[n++] = tk_asprintf("%s=%s", c->env[j].name, c->env[j].value);
    env[n] = NULL;
    return env;
}

static void free_strv(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static void child_exec(const tk_upstream_t *up, const char *path, char **argv, char **envp,
                       int pin[2], int pout[2], int perr[2], pid_t parent)
{
    sigset_t all;
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0 || dup2(perr[1], 2) < 0)
        _exit(127);
    closefrom(3);
    if (up->conf->cwd && chdir(up->conf->cwd) != 0) {
        static const char msg[] = "tumiki: cannot change to the configured cwd\n";
        if (write(2, msg, sizeof(msg) - 1) < 0)
            _exit(127);
        _exit(127);
    }
    execve(path, argv, envp);
    static const char msg[] = "tumiki: exec failed\n";
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

static int spawn_child(tk_upstream_t *up)
{
    const tk_server_conf_t *c = up->conf;
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    int rc = TK_EIO;
    char *path = resolve_command(c->command);
    char **argv = NULL, **envp = NULL;
    if (path == NULL) {
        tk_warn(MOD, "server %s: command \"%s\" not found or not executable", c->name,
                c->command);
        goto out;
    }
    argv = tk_calloc(c->nargs + 2, sizeof(char *));
    argv[0] = tk_strdup(c->command);
    for (size_t i = 0; i < c->nargs; i++)
        argv[i + 1] = tk_strdup(c->args[i]);
    envp = build_env(c);
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC))
        goto out;
    pid_t parent = getpid();
    /* All signals blocked across fork: until child_exec has put the default
     * handlers back, a signal for the child (a stop right after start) must
     * not run the gateway's handlers, which would write into the event
     * loop's signal pipe that the child shares and stop the gateway. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid != 0)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        goto out;
    if (pid == 0)
        child_exec(up, path, argv, envp, pin, pout, perr, parent);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    pin[0] = pout[1] = perr[1] = -1;
    setpgid(pid, pid); /* also done by setsid in the child; closes the race */
    up->pid = pid;
    up->in_fd = pin[1];
    evutil_make_socket_nonblocking(up->in_fd);
    evutil_make_socket_nonblocking(pout[0]);
    evutil_make_socket_nonblocking(perr[0]);
    event_assign(up->write_ev, up->base, up->in_fd, EV_WRITE, write_cb, up);
    up->out_bev = bufferevent_socket_new(up->base, pout[0], BEV_OPT_CLOSE_ON_FREE);
    up->err_bev = bufferevent_socket_new(up->base, perr[0], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(up->out_bev, out_read_cb, NULL, out_event_cb, up);
    bufferevent_setcb(up->err_bev, err_read_cb, NULL, err_event_cb, up);
    bufferevent_enable(up->out_bev, EV_READ);
    bufferevent_enable(up->err_bev, EV_READ);
    pin[1] = pout[0] = perr[0] = -1;
    up->state = TK_UP_STARTING;
    up->started_ms = tk_now_ms();
    tk_info(MOD, "server %s: started pid %d", c->name, (int)pid);
    rc = send_initialize(up);
out:
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    free(path);
    free_strv(argv);
    free_strv(envp);
    return rc;
}

static void lost_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_upstream_t *up = arg;
    (void)fd;
    (void)what;
    if (up->state == TK_UP_STARTING || up->state == TK_UP_READY)
        child_lost(up, up->lost_why);
}

/* Give up on the current process or connection; the exit path restarts it. */
static void abort_transport(tk_upstream_t *up, const char *why)
{
    if (up->remote) {
        tk_snprintf(up->lost_why, sizeof(up->lost_why), "%s", why);
        event_active(up->lost_ev, EV_TIMEOUT, 0);
    } else if (up->pid > 0) {
        kill(-up->pid, SIGKILL);
    }
}

static void remote_connected(void *arg)
{
    tk_upstream_t *up = arg;
    if (send_initialize(up) != TK_OK)
        abort_transport(up, "cannot send initialize");
}

static void remote_message(void *arg, const char *buf, size_t len)
{
    handle_message(arg, buf, len);
}

static void remote_request_failed(void *arg, uint64_t req_id, const char *why)
{
    tk_upstream_t *up = arg;
    pending_t *p = tk_map_get(up->pending, req_id);
    if (p == NULL || !p->sent)
        return;
    if (p->internal) {
        pending_unlink(up, p);
        pending_free(p);
        abort_transport(up, why);
        return;
    }
    json_t *err = make_error(TK_RPC_INTERNAL_ERROR, "upstream server '%s' failed: %s",
                             up->conf->name, why);
    complete_failed(up, p, err);
    json_decref(err);
}

static void remote_lost(void *arg, const char *why)
{
    abort_transport(arg, why);
}

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_upstream_t *up = arg;
    (void)fd;
    (void)what;
    if (up->state == TK_UP_STARTING)
        abort_transport(up, "not connected and initialised within connect_timeout_ms");
}

static int start_transport(tk_upstream_t *up)
{
    if (up->remote == NULL)
        return spawn_child(up);
    up->state = TK_UP_STARTING;
    up->started_ms = tk_now_ms();
    struct timeval tv = {(time_t)(up->conf->connect_timeout_ms / 1000),
                         (suseconds_t)(up->conf->connect_timeout_ms % 1000) * 1000};
    evtimer_add(up->connect_timer, &tv);
    tk_info(MOD, "server %s: connecting", up->conf->name);
    return tk_remote_connect(up->remote);
}

/* ---- public API ---- */

tk_upstream_t *tk_upstream_create(struct event_base *base, const tk_server_conf_t *conf,
                                  size_t max_message_bytes, const tk_upstream_events_t *ev,
                                  const tk_ssrf_policy_t *policy)
{
    tk_upstream_t *up = tk_calloc(1, sizeof(*up));
    up->base = base;
    up->conf = conf;
    up->max_message_bytes = max_message_bytes;
    if (ev)
        up->ev = *ev;
    up->pending = tk_map_create();
    TAILQ_INIT(&up->queue);
    up->pid = -1;
    up->in_fd = -1;
    up->wbuf = evbuffer_new();
    up->write_ev = tk_calloc(1, event_get_struct_event_size());
    up->backoff_timer = evtimer_new(base, backoff_cb, up);
    up->idle_timer = evtimer_new(base, idle_cb, up);
    up->kill_timer = evtimer_new(base, kill_cb, up);
    up->lost_ev = event_new(base, -1, 0, lost_cb, up);
    up->connect_timer = evtimer_new(base, connect_timeout_cb, up);
    if (conf->transport != TK_TRANSPORT_STDIO) {
        tk_remote_cbs_t cbs = {remote_connected, remote_message, remote_request_failed,
                               remote_lost, up};
        up->remote = tk_remote_create(base, conf, max_message_bytes, &cbs, policy);
    }
    return up;
}

int tk_upstream_start(tk_upstream_t *up)
{
    if (up->state != TK_UP_IDLE)
        return TK_OK;
    if (start_transport(up) != TK_OK) {
        schedule_restart(up);
        return TK_EIO;
    }
    return TK_OK;
}

int tk_upstream_request(tk_upstream_t *up, const char *method, json_t *params,
                        tk_upstream_reply_cb cb, void *arg, uint64_t *handle)
{
    if (up->open_until_ms > tk_now_ms())
        return TK_EBUSY;
    if (tk_map_count(up->pending) >= (size_t)up->conf->max_inflight + up->conf->max_queue)
        return TK_ELIMIT;
    evtimer_del(up->idle_timer);
    pending_t *p = pending_new(up, method, params, cb, arg, up->conf->request_timeout_ms);
    if (handle)
        *handle = p->id;
    if (up->state == TK_UP_READY && up->nsent < up->conf->max_inflight) {
        /* A failed write means the child is gone; its exit fails the call. */
        if (send_request(up, p) != TK_OK)
            tk_debug(MOD, "server %s: write failed", up->conf->name);
        return TK_OK;
    }
    TAILQ_INSERT_TAIL(&up->queue, p, qlink);
    if (up->state == TK_UP_IDLE && start_transport(up) != TK_OK) {
        pending_unlink(up, p);
        pending_free(p);
        schedule_restart(up);
        return TK_EIO;
    }
    return TK_OK;
}

void tk_upstream_cancel(tk_upstream_t *up, uint64_t handle, const char *reason)
{
    pending_t *p = tk_map_get(up->pending, handle);
    if (p == NULL || p->internal)
        return;
    if (p->sent) {
        json_t *params = json_pack("{s:I, s:s}", "requestId", (json_int_t)p->id, "reason",
                                   reason ? reason : "cancelled by client");
        json_t *note = tk_rpc_notification("notifications/cancelled", params);
        if (send_json(up, note) != TK_OK)
            tk_debug(MOD, "server %s: cancel not sent", up->conf->name);
        json_decref(note);
    }
    pending_unlink(up, p);
    pending_free(p);
    idle_arm(up);
}

int tk_upstream_notify(tk_upstream_t *up, const char *method, json_t *params)
{
    if (up->state != TK_UP_READY)
        return TK_ESTATE;
    json_t *note = tk_rpc_notification(method, params ? json_incref(params) : NULL);
    int rc = send_json(up, note);
    json_decref(note);
    return rc;
}

int tk_upstream_respond(tk_upstream_t *up, uint64_t gen, json_t *id, json_t *result,
                        json_t *error)
{
    if (gen != up->generation || up->state != TK_UP_READY)
        return TK_ESTATE;
    json_t *msg = error ? json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "id", id, "error", error)
                        : tk_rpc_result(id, json_incref(result));
    int rc = send_json(up, msg);
    json_decref(msg);
    return rc;
}

void tk_upstream_destroy(tk_upstream_t *up)
{
    if (up == NULL)
        return;
    if (up->pid > 0) {
        pid_t pid = up->pid;
        close_child_io(up);
        kill(-pid, SIGTERM);
        uint64_t deadline = tk_now_ms() + KILL_GRACE_MS;
        int status;
        while (waitpid(pid, &status, WNOHANG) == 0 && tk_now_ms() < deadline)
            usleep(10000);
        kill(-pid, SIGKILL);
        waitpid(pid, &status, WNOHANG) == 0 ? (void)waitpid(pid, &status, 0) : (void)0;
        up->pid = -1;
    }
    tk_remote_destroy(up->remote); /* DELETEs a remote session first */
    up->remote = NULL;
    close_child_io(up);
    size_t it = 0;
    void *val;
    while (tk_map_next(up->pending, &it, NULL, NULL, &val))
        pending_free(val);
    tk_map_destroy(up->pending);
    json_decref(up->server_info);
    evbuffer_free(up->wbuf);
    free(up->write_ev);
    event_free(up->backoff_timer);
    event_free(up->idle_timer);
    event_free(up->kill_timer);
    event_free(up->lost_ev);
    event_free(up->connect_timer);
    free(up);
}
