/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MCP aggregating proxy: sessions of the Streamable HTTP transport,
 * method routing, the namespaced per-endpoint catalogue (tools, prompts,
 * resources, templates), id and progress-token rewriting, fan-out of
 * upstream notifications, and routing of server-to-client requests
 * (sampling, elicitation, roots) to the client session whose call is in
 * flight on that server.
 *
 * Invariants:
 * - every client request (call_t) is answered exactly once, then freed;
 * - async work refers to calls by serial number (gw->calls), never by a
 *   pointer that could dangle, except upstream requests, which are always
 *   cancelled before their call is freed;
 * - a request handle (tk_hreq_t) is ended exactly once: by a reply, the end
 *   of its stream, or a release once its client went away.
 */
#include "mcp/gateway.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/sha.h>

#include "audit/audit.h"
#include "core/map.h"
#include "mcp/jsonrpc.h"
#include "mcp/names.h"
#include "metrics/metrics.h"
#include "pin/pin.h"
#include "upstream/upstream.h"

#define MOD "mcp"
#define SWEEP_INTERVAL_S 15
#define MAX_PAGES 100
#define MAX_ITEMS 10000

typedef enum { CAT_TOOLS = 0, CAT_PROMPTS, CAT_RESOURCES, CAT_TEMPLATES, CAT_N } cat_kind_t;

static const struct {
    const char *method; /* list method */
    const char *field;  /* array field in the result */
    const char *cap;    /* server capability required */
} cat_info[CAT_N] = {
    {"tools/list", "tools", "tools"},
    {"prompts/list", "prompts", "prompts"},
    {"resources/list", "resources", "resources"},
    {"resources/templates/list", "resourceTemplates", "resources"},
};

typedef struct srv srv_t;
typedef struct session session_t;
typedef struct endpoint endpoint_t;
typedef struct call call_t;

TAILQ_HEAD(call_list, call);

typedef struct cat_req {
    srv_t *sv;
    int k;
} cat_req_t;

typedef struct waiter {
    uint64_t call_serial;
    struct waiter *next;
} waiter_t;

typedef struct catalog {
    int fetching;
    int valid;
    unsigned gen; /* bumped whenever items change */
    json_t *items; /* array, or NULL */
    json_t *accum; /* pages so far while fetching */
    unsigned pages;
    uint64_t handle;
} catalog_t;

struct srv {
    tk_gateway_t *gw;
    tk_server_conf_t *own_conf; /* made through the admin API: owned; NULL: the config's */
    tk_upstream_t *up;
    catalog_t cat[CAT_N];
    cat_req_t catreq[CAT_N];  /* callback args for catalogue fetches */
    struct call_list calls;   /* client calls in flight here, oldest first */
    atomic_int settled;       /* its first start attempt has finished (for /readyz) */
    const tk_pin_policy_t *pin; /* tool-definition pinning policy (the config's) */
};

typedef struct route {
    srv_t *srv;
    char *name; /* the upstream's own name (or uri) */
} route_t;

struct endpoint {
    tk_gateway_t *gw;
    const tk_endpoint_conf_t *conf;
    tk_endpoint_conf_t *own_conf; /* made through the admin API: owned (= conf); NULL: config's */
    srv_t **srvs;
    size_t nsrvs;
    /* merged catalogue per kind, rebuilt when a server's catalogue changes */
    json_t *merged[CAT_N];
    /* {"<field>": merged} serialised once per rebuild (NULL: not yet), so a
     * list call costs a copy, not a jansson dump of the whole catalogue */
    char *merged_text[CAT_N];
    size_t merged_len[CAT_N];
    tk_map_t *routes[CAT_N]; /* namespaced name (or uri) -> route_t */
    unsigned *built_gen[CAT_N]; /* per server gen the merge was built from */
    waiter_t *waiters[CAT_N];
    unsigned fetching[CAT_N];
    json_t *tool_filter; /* {"allow":[..],"deny":[..]} set by the admin API; NULL: config's */
    tk_map_t *pin_blocked; /* tools hidden by pinning: name -> why (static text) */
    unsigned pin_gen;      /* gw->pin_gen the tool merge was built from */
};

struct session {
    char id[65];
    tk_gateway_t *gw;
    endpoint_t *ep;
    char proto[16];
    json_t *client_caps;
    tk_hreq_t *stream; /* GET SSE stream, or NULL */
    uint64_t last_seen_ms;
    int log_level; /* index into log_levels; notifications below are dropped */
    json_t *subs;  /* uri -> true */
    struct call_list calls;
    char actor[TK_AUDIT_ACTOR_MAX]; /* who initialised it (audit) */
    char audit_id[24];              /* "s-" + 16 hex of SHA-256(id): names it in the audit trail */
};

struct call {
    uint64_t serial;
    tk_gateway_t *gw;
    session_t *sess;
    tk_hreq_t *req; /* NULL once the client went away */
    json_t *msg;                /* the request (owns id/params) */
    json_t *id;
    const char *method;
    json_t *params;
    int sse;
    srv_t *srv; /* while forwarded */
    uint64_t handle;
    char ptoken[32];      /* our progress token, "" if none */
    json_t *client_ptoken; /* theirs */
    unsigned waited;       /* catalogue kinds this call already waited for */
    double started;        /* tk_metrics_now() when it arrived */
    char actor[TK_AUDIT_ACTOR_MAX]; /* who sent it (audit) */
    char *tool;            /* audited calls: the tool or prompt name, or resource URI the
                              client asked for; NULL: not audited one by one */
    const char *audit_action; /* "tool.call", "prompt.get" or "resource.read" */
    const char *srv_name;  /* the server it went to (audit) */
    uint64_t t0_us;        /* when it arrived */
    int audited;
    TAILQ_ENTRY(call) slink; /* in session */
    TAILQ_ENTRY(call) ulink; /* in srv, while forwarded */
};

typedef struct s2c {
    char key[32];
    srv_t *srv;
    uint64_t gen;
    json_t *up_id;
    session_t *sess;
} s2c_t;

struct tk_gateway {
    struct event_base *base;
    const tk_config_t *cfg;
    srv_t **srvs;        /* config servers first (nconf_srvs, fixed), then API-made ones */
    size_t nsrvs;
    size_t nconf_srvs;
    endpoint_t **eps;    /* config endpoints first, then API-made ones */
    size_t neps;
    tk_epreg_t *epreg;   /* eps' slugs and rate limits, for the HTTP threads */
    tk_map_t *sessions; /* id -> session_t */
    tk_map_t *calls;    /* serial -> call_t */
    tk_map_t *progress; /* our token -> call_t */
    tk_map_t *s2c;      /* our request id -> s2c_t */
    uint64_t next_serial;
    uint64_t next_token;
    char rid_prefix[12]; /* random per process: request ids are "<prefix>-<serial>" */
    struct event *sigchld;
    struct event *sweep;
    tk_metrics_t *metrics; /* borrowed, may be NULL */
    tk_alerts_t *alerts;   /* borrowed, may be NULL */
    tk_pins_t *pins;  /* NULL if no server is pinned, or the pin store failed */
    unsigned pin_gen; /* bumped when a tool's approval changes */
    tk_audit_t *audit_loop; /* the trail whose completions this loop receives, or NULL */
    int started;            /* tk_gateway_start ran: servers added later start at once */
};

static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
static const char *const log_levels[] = {"debug",    "info",  "notice", "warning",
                                         "error",    "critical", "alert", "emergency"};

int tk_mcp_version_supported(const char *v)
{
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
        if (strcmp(v, versions[i]) == 0)
            return 1;
    return 0;
}

size_t tk_gateway_session_count(const tk_gateway_t *gw)
{
    return tk_map_count(gw->sessions);
}

static int log_level_index(const char *s)
{
    for (int i = 0; i < 8; i++)
        if (s && strcmp(s, log_levels[i]) == 0)
            return i;
    return -1;
}

/* ---- HTTP replies ---- */

static void send_json(tk_hreq_t *req, int status, const char *reason, json_t *body)
{
    size_t len;
    char *s = tk_json_dump(body, &len);
    tk_hreq_reply(req, status, reason, "application/json", s, len);
    free(s);
}

static void send_rpc_error(tk_hreq_t *req, int status, const char *reason,
                           json_t *id, int code, const char *msg)
{
    json_t *e = tk_rpc_error(id, code, msg);
    send_json(req, status, reason, e);
    json_decref(e);
}

static void sse_start(tk_hreq_t *req)
{
    tk_hreq_add_header(req, "X-Accel-Buffering", "no");
    tk_hreq_stream_start(req, 200, "OK", "text/event-stream");
}

static void sse_event(tk_hreq_t *req, json_t *msg)
{
    size_t len;
    char *s = tk_json_dump(msg, &len);
    char *ev = tk_asprintf("event: message\ndata: %s\n\n", s);
    tk_hreq_stream_chunk(req, ev, strlen(ev));
    free(ev);
    free(s);
}

/* End a call's request without its result: close its SSE stream, or answer
 * with code (200 for a cancellation, else 500). */
static void send_end(tk_hreq_t *req, int sse, json_t *id, int code, const char *msg)
{
    if (sse)
        tk_hreq_stream_end(req);
    else
        send_rpc_error(req, code == TK_RPC_REQUEST_CANCELLED ? 200 : 500,
                       code == TK_RPC_REQUEST_CANCELLED ? "OK" : "Internal Server Error", id,
                       code, msg);
}

/* ---- audit (src/audit): who did what, recorded before the answer goes out ---- */

static uint64_t audit_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Session ids are bearer secrets for the session: record a hash prefix. */
static void audit_session_id(const char *id, char *out, size_t len)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    char hex[17];
    SHA256((const unsigned char *)id, strlen(id), h);
    tk_hex_encode(h, 8, hex);
    tk_snprintf(out, len, "s-%s", hex);
}

static void audit_peer(const tk_hreq_t *req, char *out, size_t len)
{
    tk_snprintf(out, len, "%s", req ? tk_hreq_peer(req) : "");
}

static void audit_session(session_t *s, tk_hreq_t *req, const char *action,
                          const char *proto, const char *why)
{
    char ip[64];
    audit_peer(req, ip, sizeof(ip));
    json_t *d = json_pack("{s:s?, s:s?}", "protocol", proto, proto ? "client" : "reason", why);
    tk_audit_event_t ev = {.actor = s->actor, .action = action, .target = s->audit_id,
                           .endpoint = s->ep->conf->slug, .result = "ok", .ip = ip[0] ? ip : NULL,
                           .detail = d};
    if (tk_audit_emit(&ev) != TK_OK)
        tk_debug(MOD, "session event not audited");
    json_decref(d);
}

static int endpoint_tool_allowed(const endpoint_t *ep, const char *ns);

/* ok, error, denied (not allowed on this endpoint), timeout, unavailable. */
static const char *audit_result(call_t *c, json_t *msg, int status)
{
    json_t *err = json_object_get(msg, "error");
    const char *text = json_string_value(json_object_get(err, "message"));
    if (err == NULL)
        return json_is_true(json_object_get(json_object_get(msg, "result"), "isError")) ? "error"
                                                                                        : "ok";
    if (status == 503)
        return "unavailable";
    if (text && strstr(text, "did not answer") != NULL)
        return "timeout";
    if (strcmp(c->audit_action, "tool.call") == 0 && !endpoint_tool_allowed(c->sess->ep, c->tool))
        return "denied";
    return "error";
}

/* "<prefix>-<serial>" into out (len >= 36), without printf: once per call. */
static void audit_request_id(const tk_gateway_t *gw, uint64_t serial, char *out, size_t len)
{
    char num[24];
    size_t i = sizeof(num), n = strnlen(gw->rid_prefix, sizeof(gw->rid_prefix));
    do {
        num[--i] = (char)('0' + serial % 10);
        serial /= 10;
    } while (serial != 0);
    if (n + 1 + sizeof(num) - i >= len) {
        out[0] = '\0';
        return;
    }
    memcpy(out, gw->rid_prefix, n);
    out[n] = '-';
    memcpy(out + n + 1, num + i, sizeof(num) - i);
    out[n + 1 + sizeof(num) - i] = '\0';
}

/* Record an audited call. With done, the record is queued (the loop does
 * not wait for the write) and AUDIT_QUEUED returned: done(arg, rc) then
 * runs on this loop in a later iteration. Without done, or when the trail
 * takes no submissions, it is written now: TK_OK or TK_EIO. */
#define AUDIT_QUEUED 1
static int audit_call(call_t *c, json_t *msg, int status, const char *result,
                      tk_audit_done_fn done, void *arg)
{
    tk_audit_t *a = tk_audit_global();
    char ip[64], rid[48];
    c->audited = 1;
    if (a == NULL)
        return TK_OK;
    audit_peer(c->req, ip, sizeof(ip));
    audit_request_id(c->gw, c->serial, rid, sizeof(rid));
    json_t *d = json_pack("{s:O?, s:s}", "rpc_id", c->id, "session", c->sess->audit_id);
    json_t *err = json_object_get(msg, "error");
    if (err)
        json_object_set(d, "error", err);
    if (tk_audit_log_arguments(a) && json_object_get(c->params, "arguments"))
        json_object_set(d, "arguments", json_object_get(c->params, "arguments"));
    if (tk_audit_log_results(a) && json_object_get(msg, "result"))
        json_object_set(d, "result", json_object_get(msg, "result"));
    tk_audit_event_t ev = {.actor = c->actor, .action = c->audit_action, .target = c->sess->audit_id,
                           .endpoint = c->sess->ep->conf->slug, .server = c->srv_name,
                           .tool = c->tool, .result = result ? result : audit_result(c, msg, status),
                           .status = status, .latency_us = (int64_t)(audit_now_us() - c->t0_us),
                           .ip = ip[0] ? ip : NULL, .request_id = rid, .detail = d};
    int rc = TK_ESTATE;
    if (done != NULL && c->gw->audit_loop == a)
        rc = tk_audit_submit(a, &ev, done, arg) == TK_OK ? AUDIT_QUEUED : TK_ESTATE;
    if (rc == TK_ESTATE)
        rc = tk_audit_append(a, &ev);
    json_decref(d);
    return rc;
}

/* An audited call's final reply, held while its record is written: sent
 * when the record is in the file, or replaced by 503 "audit unavailable"
 * (fail closed). It outlives its call, which is freed when it is parked. */
typedef struct parked {
    tk_hreq_t *req; /* NULL once the client went away */
    json_t *msg;    /* the reply */
    json_t *id;
    int sse, status;
    const char *reason; /* static */
} parked_t;

static void send_final(tk_hreq_t *req, int sse, json_t *msg, int status, const char *reason)
{
    if (sse) {
        sse_event(req, msg);
        tk_hreq_stream_end(req);
    } else {
        send_json(req, status, reason, msg);
    }
}

static void parked_conn_closed(tk_hreq_t *req, void *arg)
{
    parked_t *p = arg;
    tk_hreq_release(req);
    p->req = NULL; /* the record still goes out, with the call's outcome */
}

/* The record of a parked reply was written (rc TK_OK) or not. */
static void parked_done(void *arg, int rc)
{
    parked_t *p = arg;
    if (p->req != NULL) {
        tk_hreq_on_close(p->req, NULL, NULL);
        if (rc == TK_OK) {
            send_final(p->req, p->sse, p->msg, p->status, p->reason);
        } else {
            json_t *e = tk_rpc_error(p->id, TK_RPC_INTERNAL_ERROR, "audit unavailable");
            send_final(p->req, p->sse, e, 503, "Service Unavailable");
            json_decref(e);
        }
    }
    json_decref(p->msg);
    json_decref(p->id);
    free(p);
}

/* A cancelled call's record has no reply waiting for it; a failure is
 * logged and counted by the trail. */
static void audit_no_reply(void *arg, int rc)
{
    (void)arg;
    (void)rc;
}

/* Audit c's final reply asynchronously: 1 when the reply was parked (the
 * call's connection moved to it), 0 when the record was not queued and
 * *rc says whether it was written now. */
static int park_reply(call_t *c, json_t *msg, int status, const char *reason, int *rc)
{
    parked_t *p = NULL;
    if (c->gw->audit_loop != NULL && c->gw->audit_loop == tk_audit_global()) {
        p = tk_calloc(1, sizeof(*p));
        p->msg = json_incref(msg);
        p->id = json_incref(c->id);
        p->sse = c->sse;
        p->status = status;
        p->reason = reason;
    }
    *rc = audit_call(c, msg, status, NULL, p ? parked_done : NULL, p);
    if (*rc != AUDIT_QUEUED || p == NULL) { /* queued only with p */
        if (p != NULL) {
            json_decref(p->msg);
            json_decref(p->id);
            free(p);
        }
        return 0;
    }
    /* parked_done runs in a later loop iteration, so moving the connection
     * now is in time */
    if (c->req != NULL) {
        p->req = c->req;
        tk_hreq_on_close(c->req, parked_conn_closed, p);
        c->req = NULL;
    }
    return 1;
}

/* ---- calls ---- */

static void call_detach_conn(call_t *c)
{
    if (c->req != NULL)
        tk_hreq_on_close(c->req, NULL, NULL);
}

/* A call leaves its server: in-flight gauge and the tools/call outcome. */
static void note_call_end(call_t *c, srv_t *sv, const char *result, int was_inflight)
{
    const char *server = tk_upstream_name(sv->up);
    if (was_inflight)
        tk_metrics_upstream_inflight(c->gw->metrics, server, -1);
    if (strcmp(c->method, "tools/call") == 0)
        tk_metrics_tool_call(c->gw->metrics, c->sess->ep->conf->slug, server,
                             json_string_value(json_object_get(c->params, "name")), result,
                             tk_metrics_now() - c->started);
}
static void call_free(call_t *c)
{
    tk_gateway_t *gw = c->gw;
    if (c->tool != NULL && !c->audited &&
        audit_call(c, NULL, 0, "cancelled", audit_no_reply, NULL) < TK_OK)
        tk_debug(MOD, "cancelled call not audited");
    if (c->srv) {
        note_call_end(c, c->srv, "cancelled", 1);
        tk_upstream_cancel(c->srv->up, c->handle, "client request ended");
        TAILQ_REMOVE(&c->srv->calls, c, ulink);
        c->srv = NULL;
    }
    if (c->ptoken[0])
        tk_map_sdel(gw->progress, c->ptoken);
    tk_map_del(gw->calls, c->serial);
    TAILQ_REMOVE(&c->sess->calls, c, slink);
    if (c->req) {
        call_detach_conn(c);
        send_end(c->req, c->sse, c->id, TK_RPC_INTERNAL_ERROR, "request abandoned");
    }
    json_decref(c->client_ptoken);
    json_decref(c->msg);
    free(c->tool);
    free(c);
}

/* Send the final message of a call with an HTTP status (used unless the
 * response already became an SSE stream) and free it. msg is borrowed. An
 * audited call's reply goes out only once its record is written: parked
 * until the audit writer says so, or (no writer) after a synchronous
 * append. */
static void call_finish_status(call_t *c, json_t *msg, int status, const char *reason)
{
    json_t *refused = NULL;
    int rc = TK_OK;
    if (c->tool != NULL && !c->audited && park_reply(c, msg, status, reason, &rc)) {
        call_free(c);
        return;
    }
    if (rc != TK_OK) {
        /* fail closed: no answer without its audit record */
        msg = refused = tk_rpc_error(c->id, TK_RPC_INTERNAL_ERROR, "audit unavailable");
        status = 503;
        reason = "Service Unavailable";
    }
    if (c->req) {
        call_detach_conn(c);
        send_final(c->req, c->sse, msg, status, reason);
        c->req = NULL;
    }
    json_decref(refused);
    call_free(c);
}

/* As call_finish with a result given as serialised JSON (result, len): the
 * message is assembled as text, so a cached catalogue is not dumped again.
 * Only list methods come here, which are not audited one by one. */
static void call_finish_text(call_t *c, const char *result, size_t len)
{
    static const char ev[] = "event: message\ndata: ", pre[] = "{\"jsonrpc\":\"2.0\",\"id\":",
                      mid[] = ",\"result\":";
    if (c->req) {
        size_t idlen;
        char *id = tk_json_dump(c->id, &idlen);
        char *msg = tk_malloc(sizeof(ev) + sizeof(pre) + idlen + sizeof(mid) + len + 3);
        char *p = msg;
        if (c->sse)
            p = mempcpy(p, ev, sizeof(ev) - 1);
        p = mempcpy(p, pre, sizeof(pre) - 1);
        p = mempcpy(p, id, idlen);
        p = mempcpy(p, mid, sizeof(mid) - 1);
        p = mempcpy(p, result, len);
        *p++ = '}';
        free(id);
        call_detach_conn(c);
        if (c->sse) {
            p = mempcpy(p, "\n\n", 2);
            tk_hreq_stream_chunk(c->req, msg, (size_t)(p - msg));
            tk_hreq_stream_end(c->req);
        } else {
            tk_hreq_reply(c->req, 200, "OK", "application/json", msg, (size_t)(p - msg));
        }
        free(msg);
        c->req = NULL;
    }
    call_free(c);
}

static void call_finish(call_t *c, json_t *msg)
{
    call_finish_status(c, msg, 200, "OK");
}

static void call_result(call_t *c, json_t *result /* stolen */)
{
    json_t *m = tk_rpc_result(c->id, result);
    call_finish(c, m);
    json_decref(m);
}

static void call_error(call_t *c, int code, const char *msg)
{
    json_t *m = tk_rpc_error(c->id, code, msg);
    call_finish(c, m);
    json_decref(m);
}

/* A message related to the call before its answer: switch to SSE. */
static void call_push(call_t *c, json_t *msg)
{
    if (c->req == NULL)
        return;
    if (!c->sse) {
        sse_start(c->req);
        c->sse = 1;
    }
    sse_event(c->req, msg);
}

static void call_conn_closed(tk_hreq_t *req, void *arg)
{
    call_t *c = arg;
    tk_hreq_release(req);
    c->req = NULL;
    tk_debug(MOD, "client went away; cancelling %s", c->method);
    call_free(c);
}

static call_t *call_new(session_t *s, tk_hreq_t *req, json_t *msg, tk_rpc_t *rpc,
                        const char *actor)
{
    call_t *c = tk_calloc(1, sizeof(*c));
    c->t0_us = audit_now_us();
    tk_snprintf(c->actor, sizeof(c->actor), "%s", actor ? actor : s->actor);
    /* tools, prompts and resources reach data: each call is audited */
    static const char *const audited[][3] = {{"tools/call", "name", "tool.call"},
                                             {"prompts/get", "name", "prompt.get"},
                                             {"resources/read", "uri", "resource.read"}};
    for (size_t i = 0; i < sizeof(audited) / sizeof(audited[0]); i++) {
        if (strcmp(rpc->method, audited[i][0]) == 0) {
            const char *name = json_string_value(json_object_get(rpc->params, audited[i][1]));
            c->tool = tk_strndup(name ? name : "", TK_AUDIT_FIELD_MAX);
            c->audit_action = audited[i][2];
        }
    }
    c->gw = s->gw;
    c->serial = ++s->gw->next_serial;
    c->sess = s;
    c->req = req;
    c->msg = json_incref(msg);
    c->id = rpc->id;
    c->method = rpc->method;
    c->params = rpc->params;
    c->started = tk_metrics_now();
    TAILQ_INSERT_TAIL(&s->calls, c, slink);
    tk_map_put(s->gw->calls, c->serial, c);
    tk_hreq_on_close(req, call_conn_closed, c);
    return c;
}

/* ---- sessions ---- */

static void session_push(session_t *s, json_t *msg)
{
    if (s->stream)
        sse_event(s->stream, msg);
}

static void stream_closed(tk_hreq_t *req, void *arg)
{
    session_t *s = arg;
    tk_hreq_release(req);
    s->stream = NULL;
}

static void session_close_stream(session_t *s)
{
    if (s->stream == NULL)
        return;
    tk_hreq_on_close(s->stream, NULL, NULL);
    tk_hreq_stream_end(s->stream);
    s->stream = NULL;
}

static void session_destroy(session_t *s)
{
    call_t *c;
    while ((c = TAILQ_FIRST(&s->calls)) != NULL)
        call_error(c, TK_RPC_INTERNAL_ERROR, "session terminated");
    session_close_stream(s);
    /* drop server-to-client requests routed to this session */
    size_t it = 0;
    void *val;
    s2c_t **dead = tk_calloc(tk_map_count(s->gw->s2c) + 1, sizeof(*dead));
    size_t n = 0;
    while (tk_map_next(s->gw->s2c, &it, NULL, NULL, &val))
        if (((s2c_t *)val)->sess == s)
            dead[n++] = val;
    for (size_t i = 0; i < n; i++) {
        s2c_t *r = tk_map_sdel(s->gw->s2c, dead[i]->key);
        json_t *err = json_pack("{s:i, s:s}", "code", TK_RPC_INTERNAL_ERROR, "message",
                                "client session ended");
        if (tk_upstream_respond(r->srv->up, r->gen, r->up_id, NULL, err) != TK_OK)
            tk_debug(MOD, "late answer dropped");
        json_decref(err);
        json_decref(r->up_id);
        free(r);
    }
    free(dead);
    tk_map_sdel(s->gw->sessions, s->id);
    tk_metrics_sessions(s->gw->metrics, s->ep->conf->slug, -1);
    json_decref(s->client_caps);
    json_decref(s->subs);
    free(s);
}

/* ---- catalogue ---- */

static void endpoint_catalog_done(endpoint_t *ep, cat_kind_t k);
static void dispatch_call(call_t *c);

static int srv_has_cap(srv_t *sv, cat_kind_t k)
{
    json_t *info = tk_upstream_server_info(sv->up);
    if (info == NULL)
        return 1; /* not initialised yet: ask, the request starts it */
    return json_object_get(json_object_get(info, "capabilities"), cat_info[k].cap) != NULL;
}

static void catalog_fetch_page(srv_t *sv, cat_kind_t k, json_t *cursor);

static void catalog_settle(srv_t *sv, cat_kind_t k)
{
    catalog_t *cat = &sv->cat[k];
    cat->fetching = 0;
    tk_gateway_t *gw = sv->gw;
    for (size_t i = 0; i < gw->neps; i++) {
        endpoint_t *ep = gw->eps[i];
        for (size_t j = 0; j < ep->nsrvs; j++) {
            if (ep->srvs[j] == sv && ep->fetching[k] > 0) {
                ep->fetching[k]--;
                if (ep->fetching[k] == 0)
                    endpoint_catalog_done(ep, k);
            }
        }
    }
}

static void catalog_reply(void *arg, json_t *result, json_t *error)
{
    cat_req_t *cr = arg;
    srv_t *sv = cr->sv;
    cat_kind_t k = (cat_kind_t)cr->k;
    catalog_t *cat = &sv->cat[k];
    if (error != NULL) {
        const char *m = json_string_value(json_object_get(error, "message"));
        tk_warn(MOD, "server %s: %s failed: %s", tk_upstream_name(sv->up), cat_info[k].method,
                m ? m : "?");
        json_decref(cat->accum);
        cat->accum = NULL;
        catalog_settle(sv, k);
        return;
    }
    json_t *items = json_object_get(result, cat_info[k].field);
    if (json_is_array(items) && json_array_size(cat->accum) + json_array_size(items) <= MAX_ITEMS)
        json_array_extend(cat->accum, items);
    json_t *next = json_object_get(result, "nextCursor");
    if (json_is_string(next) && ++cat->pages < MAX_PAGES) {
        catalog_fetch_page(sv, k, next);
        return;
    }
    json_decref(cat->items);
    cat->items = cat->accum;
    cat->accum = NULL;
    cat->valid = 1;
    cat->gen++;
    if (k == CAT_TOOLS)
        tk_pins_observe(sv->gw->pins, tk_upstream_name(sv->up), sv->pin, cat->items);
    catalog_settle(sv, k);
}

static void catalog_fetch_page(srv_t *sv, cat_kind_t k, json_t *cursor)
{
    json_t *params = cursor ? json_pack("{s:O}", "cursor", cursor) : NULL;
    cat_req_t *cr = &sv->catreq[k];
    cr->sv = sv;
    cr->k = (int)k;
    int rc = tk_upstream_request(sv->up, cat_info[k].method, params, catalog_reply, cr,
                                 &sv->cat[k].handle);
    json_decref(params);
    if (rc != TK_OK) {
        json_decref(sv->cat[k].accum);
        sv->cat[k].accum = NULL;
        catalog_settle(sv, k);
    }
}

/* Start fetching k from sv unless it is valid or already being fetched.
 * Returns 1 if the caller must wait for catalog_settle. */
static int catalog_ensure(srv_t *sv, cat_kind_t k)
{
    catalog_t *cat = &sv->cat[k];
    if (cat->fetching)
        return 1;
    if (cat->valid || tk_upstream_state(sv->up) == TK_UP_BACKOFF)
        return 0; /* a restarting server answers with what it last listed */
    if (!srv_has_cap(sv, k)) {
        json_decref(cat->items);
        cat->items = json_array();
        cat->valid = 1;
        cat->gen++;
        return 0;
    }
    cat->fetching = 1;
    cat->pages = 0;
    cat->accum = json_array();
    catalog_fetch_page(sv, k, NULL);
    return cat->fetching; /* may have failed synchronously */
}

/* The admin API's selection: allowed unless an allow list exists and no
 * pattern matches, or a deny pattern matches. */
static int filter_allows(const json_t *filter, const char *ns)
{
    const json_t *allow = json_object_get(filter, "allow"), *deny = json_object_get(filter, "deny");
    size_t i;
    const json_t *pat;
    int ok = json_array_size(allow) == 0;
    json_array_foreach(allow, i, pat) {
        if (!ok && json_is_string(pat))
            ok = tk_glob_match(json_string_value(pat), ns);
    }
    json_array_foreach(deny, i, pat) {
        if (ok && json_is_string(pat))
            ok = !tk_glob_match(json_string_value(pat), ns);
    }
    return ok;
}

static int endpoint_tool_allowed(const endpoint_t *ep, const char *ns)
{
    if (ep->tool_filter != NULL)
        return filter_allows(ep->tool_filter, ns);
    const tk_endpoint_conf_t *c = ep->conf;
    int ok = c->nallow == 0;
    for (size_t i = 0; i < c->nallow && !ok; i++)
        ok = tk_glob_match(c->tool_allow[i], ns);
    for (size_t i = 0; i < c->ndeny && ok; i++)
        ok = !tk_glob_match(c->tool_deny[i], ns);
    return ok;
}

static void routes_clear(tk_map_t *m)
{
    size_t it = 0;
    void *val;
    while (tk_map_next(m, &it, NULL, NULL, &val)) {
        route_t *r = val;
        free(r->name);
        free(r);
    }
}

/* Tool-definition pinning at merge time: 1 if the tool (copy, routed as
 * routekey) may be listed; a tool whose definition is not the approved one
 * is hidden under "block" (remembered for a clear tools/call refusal) and
 * marked in _meta under "flag". */
static int pin_admit(endpoint_t *ep, srv_t *sv, json_t *copy, const json_t *item,
                     const char *routekey)
{
    if (sv->pin->mode == TK_PIN_OFF)
        return 1;
    char hash[TK_PIN_HASH_LEN + 1];
    tk_pin_verdict_t v = tk_pins_check(ep->gw->pins, tk_upstream_name(sv->up), item, hash);
    if (v == TK_PIN_APPROVED)
        return 1;
    if (sv->pin->mode == TK_PIN_BLOCK) {
        tk_map_sput(ep->pin_blocked, routekey,
                    (void *)(v == TK_PIN_CHANGED ? "its definition changed since it was approved"
                                                 : "its definition is awaiting approval"));
        return 0;
    }
    json_t *meta = json_object_get(copy, "_meta");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(copy, "_meta", meta);
    }
    json_object_set_new(meta, TK_PIN_META_KEY,
                        json_pack("{s:s, s:s}", "status", tk_pin_verdict_name(v), "hash", hash));
    return 1;
}

/* Rebuild the merged, namespaced list of kind k if any server changed. */
static void endpoint_merge(endpoint_t *ep, cat_kind_t k)
{
    int stale = ep->merged[k] == NULL;
    if (k == CAT_TOOLS && ep->pin_gen != ep->gw->pin_gen) {
        stale = 1;
        ep->pin_gen = ep->gw->pin_gen;
    }
    for (size_t j = 0; j < ep->nsrvs && !stale; j++)
        stale = ep->built_gen[k][j] != ep->srvs[j]->cat[k].gen;
    if (!stale)
        return;
    json_t *out = json_array();
    tk_map_t *routes = tk_map_create();
    if (k == CAT_TOOLS) {
        tk_map_destroy(ep->pin_blocked);
        ep->pin_blocked = tk_map_create();
    }
    for (size_t j = 0; j < ep->nsrvs; j++) {
        srv_t *sv = ep->srvs[j];
        ep->built_gen[k][j] = sv->cat[k].gen;
        size_t i;
        json_t *item;
        json_array_foreach(sv->cat[k].items, i, item) {
            const char *key = k == CAT_RESOURCES   ? "uri"
                              : k == CAT_TEMPLATES ? "uriTemplate"
                                                   : "name";
            const char *orig = json_string_value(json_object_get(item, key));
            if (orig == NULL)
                continue;
            char ns[TK_NS_MAX + 1];
            const char *routekey = orig;
            json_t *copy = json_deep_copy(item);
            if (k == CAT_TOOLS || k == CAT_PROMPTS) {
                if (ep->conf->namespace_names) {
                    if (tk_ns_make(tk_upstream_name(sv->up), orig, ns, sizeof(ns)) != TK_OK) {
                        json_decref(copy);
                        continue;
                    }
                    json_object_set_new(copy, "name", json_string(ns));
                    routekey = ns;
                }
                if (k == CAT_TOOLS && (!endpoint_tool_allowed(ep, routekey) ||
                                       !pin_admit(ep, sv, copy, item, routekey))) {
                    json_decref(copy);
                    continue;
                }
            }
            if (tk_map_sget(routes, routekey) != NULL) {
                tk_warn(MOD, "endpoint %s: duplicate %s \"%s\" from %s ignored", ep->conf->slug,
                        cat_info[k].field, routekey, tk_upstream_name(sv->up));
                json_decref(copy);
                continue;
            }
            route_t *r = tk_malloc(sizeof(*r));
            r->srv = sv;
            r->name = tk_strdup(orig);
            tk_map_sput(routes, routekey, r);
            json_array_append_new(out, copy);
        }
    }
    json_decref(ep->merged[k]);
    ep->merged[k] = out;
    free(ep->merged_text[k]);
    ep->merged_text[k] = NULL;
    if (ep->routes[k]) {
        routes_clear(ep->routes[k]);
        tk_map_destroy(ep->routes[k]);
    }
    ep->routes[k] = routes;
}

/* Make sure every server's catalogue k is fetched; then run the call again. */
static int endpoint_ensure(endpoint_t *ep, cat_kind_t k, call_t *c)
{
    unsigned waiting = 0;
    if (c->waited & (1u << k)) { /* waited once already: use what there is */
        endpoint_merge(ep, k);
        return 0;
    }
    for (size_t j = 0; j < ep->nsrvs; j++)
        waiting += (unsigned)catalog_ensure(ep->srvs[j], k);
    if (waiting == 0) {
        endpoint_merge(ep, k);
        return 0;
    }
    ep->fetching[k] = waiting;
    c->waited |= 1u << k;
    waiter_t *w = tk_malloc(sizeof(*w));
    w->call_serial = c->serial;
    w->next = ep->waiters[k];
    ep->waiters[k] = w;
    return 1;
}

static void endpoint_catalog_done(endpoint_t *ep, cat_kind_t k)
{
    endpoint_merge(ep, k);
    waiter_t *w = ep->waiters[k];
    ep->waiters[k] = NULL;
    while (w) {
        waiter_t *next = w->next;
        call_t *c = tk_map_get(ep->gw->calls, w->call_serial);
        free(w);
        if (c)
            dispatch_call(c);
        w = next;
    }
}

/* ---- forwarding ---- */

static void forward_reply(void *arg, json_t *result, json_t *error)
{
    call_t *c = arg;
    const char *outcome = error ? "error" : "ok";
    if (result != NULL && json_is_true(json_object_get(result, "isError")))
        outcome = "tool_error";
    note_call_end(c, c->srv, outcome, 1);
    TAILQ_REMOVE(&c->srv->calls, c, ulink);
    c->srv = NULL;
    json_t *m;
    if (error)
        m = json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "id", c->id, "error", error);
    else
        m = tk_rpc_result(c->id, json_incref(result));
    call_finish(c, m);
    json_decref(m);
}

/* Forward the call to sv as method with params (borrowed). */
static void forward(call_t *c, srv_t *sv, json_t *params)
{
    json_t *meta = json_object_get(params, "_meta");
    json_t *tok = json_object_get(meta, "progressToken");
    if (tok && (json_is_string(tok) || json_is_integer(tok))) {
        tk_snprintf(c->ptoken, sizeof(c->ptoken), "tkp-%llu",
                    (unsigned long long)++c->gw->next_token);
        c->client_ptoken = json_incref(tok);
        json_object_set_new(meta, "progressToken", json_string(c->ptoken));
        tk_map_sput(c->gw->progress, c->ptoken, c);
    }
    c->srv_name = tk_upstream_name(sv->up);
    int rc = tk_upstream_request(sv->up, c->method, params, forward_reply, c, &c->handle);
    if (rc != TK_OK) {
        char msg[192];
        uint32_t retry = 0;
        if (rc == TK_EBUSY) {
            retry = tk_upstream_retry_after_s(sv->up);
            tk_snprintf(msg, sizeof(msg),
                        "upstream server '%s' is failing (circuit open); retry in %u s",
                        tk_upstream_name(sv->up), retry);
        } else if (rc == TK_ELIMIT) {
            retry = 1;
            tk_snprintf(msg, sizeof(msg), "upstream server '%s' is busy: its queue is full",
                        tk_upstream_name(sv->up));
        } else {
            tk_snprintf(msg, sizeof(msg), "upstream server '%s' is unavailable",
                        tk_upstream_name(sv->up));
        }
        if (c->req && !c->sse && retry > 0) {
            char v[16];
            tk_snprintf(v, sizeof(v), "%u", retry);
            tk_hreq_add_header(c->req, "Retry-After", v);
        }
        note_call_end(c, sv, "unavailable", 0);
        json_t *m = tk_rpc_error(c->id, TK_RPC_INTERNAL_ERROR, msg);
        call_finish_status(c, m, 503, "Service Unavailable");
        json_decref(m);
        return;
    }
    c->srv = sv;
    TAILQ_INSERT_TAIL(&sv->calls, c, ulink);
    tk_metrics_upstream_inflight(c->gw->metrics, tk_upstream_name(sv->up), 1);
}

static route_t *lookup_route(call_t *c, cat_kind_t k, const char *key, int *wait)
{
    endpoint_t *ep = c->sess->ep;
    *wait = 0;
    route_t *r = ep->routes[k] ? tk_map_sget(ep->routes[k], key) : NULL;
    /* a pinned server's tool is called only as last listed and checked: a
     * server that announced a change (or restarted) is listed again first */
    if (r != NULL && !(k == CAT_TOOLS && r->srv->pin->mode != TK_PIN_OFF && !r->srv->cat[k].valid &&
                       !(c->waited & (1u << k))))
        return r;
    /* unknown: make sure the catalogue is current before saying so */
    if (endpoint_ensure(ep, k, c)) {
        *wait = 1;
        return NULL;
    }
    return ep->routes[k] ? tk_map_sget(ep->routes[k], key) : NULL;
}

static void handle_named(call_t *c, cat_kind_t k, const char *what)
{
    const char *name = json_string_value(json_object_get(c->params, "name"));
    if (name == NULL) {
        call_error(c, TK_RPC_INVALID_PARAMS, "params.name must be a string");
        return;
    }
    int wait;
    route_t *r = lookup_route(c, k, name, &wait);
    if (wait)
        return;
    const char *blocked = r == NULL && k == CAT_TOOLS && c->sess->ep->pin_blocked
                              ? tk_map_sget(c->sess->ep->pin_blocked, name)
                              : NULL;
    if (blocked != NULL) {
        char msg[300];
        tk_snprintf(msg, sizeof(msg),
                    "Tool %.100s is blocked by tool-definition pinning: %s; an administrator "
                    "must review and approve it (tumiki tools approve)",
                    name, blocked);
        call_error(c, TK_RPC_INVALID_PARAMS, msg);
        return;
    }
    if (r == NULL) {
        char msg[160];
        tk_snprintf(msg, sizeof(msg), "Unknown %s: %.100s", what, name);
        call_error(c, TK_RPC_INVALID_PARAMS, msg);
        return;
    }
    /* the call owns its message: rename in place rather than copy */
    if (strcmp(name, r->name) != 0)
        json_object_set_new(c->params, "name", json_string(r->name));
    forward(c, r->srv, c->params);
}

/* Find the server owning a resource uri: listed resources first, then the
 * literal prefix of templates, then the only resource server. */
static srv_t *resource_server(call_t *c, const char *uri, int *wait)
{
    endpoint_t *ep = c->sess->ep;
    route_t *r = lookup_route(c, CAT_RESOURCES, uri, wait);
    if (*wait || r)
        return r ? r->srv : NULL;
    if (endpoint_ensure(ep, CAT_TEMPLATES, c)) {
        *wait = 1;
        return NULL;
    }
    srv_t *best = NULL;
    size_t best_len = 0;
    size_t i;
    json_t *t;
    json_array_foreach(ep->merged[CAT_TEMPLATES], i, t) {
        const char *tpl = json_string_value(json_object_get(t, "uriTemplate"));
        size_t pl = strcspn(tpl, "{");
        route_t *tr = tk_map_sget(ep->routes[CAT_TEMPLATES], tpl);
        if (tr && pl > best_len && strncmp(uri, tpl, pl) == 0) {
            best = tr->srv;
            best_len = pl;
        }
    }
    if (best)
        return best;
    srv_t *only = NULL;
    for (size_t j = 0; j < ep->nsrvs; j++) {
        if (srv_has_cap(ep->srvs[j], CAT_RESOURCES)) {
            if (only)
                return NULL;
            only = ep->srvs[j];
        }
    }
    return only;
}

static void handle_resource(call_t *c)
{
    const char *uri = json_string_value(json_object_get(c->params, "uri"));
    if (uri == NULL) {
        call_error(c, TK_RPC_INVALID_PARAMS, "params.uri must be a string");
        return;
    }
    int wait;
    srv_t *sv = resource_server(c, uri, &wait);
    if (wait)
        return;
    if (sv == NULL) {
        call_error(c, TK_RPC_RESOURCE_NOT_FOUND, "Resource not found");
        return;
    }
    if (!strcmp(c->method, "resources/subscribe"))
        json_object_set_new(c->sess->subs, uri, json_true());
    else if (!strcmp(c->method, "resources/unsubscribe"))
        json_object_del(c->sess->subs, uri);
    json_t *params = json_deep_copy(c->params);
    forward(c, sv, params);
    json_decref(params);
}

static void handle_complete(call_t *c)
{
    json_t *ref = json_object_get(c->params, "ref");
    const char *type = json_string_value(json_object_get(ref, "type"));
    if (type && !strcmp(type, "ref/prompt")) {
        const char *name = json_string_value(json_object_get(ref, "name"));
        int wait;
        route_t *r = name ? lookup_route(c, CAT_PROMPTS, name, &wait) : NULL;
        if (name && wait)
            return;
        if (r == NULL) {
            call_error(c, TK_RPC_INVALID_PARAMS, "Unknown prompt");
            return;
        }
        json_t *params = json_deep_copy(c->params);
        json_object_set_new(json_object_get(params, "ref"), "name", json_string(r->name));
        forward(c, r->srv, params);
        json_decref(params);
        return;
    }
    if (type && !strcmp(type, "ref/resource")) {
        const char *uri = json_string_value(json_object_get(ref, "uri"));
        int wait = 0;
        srv_t *sv = uri ? resource_server(c, uri, &wait) : NULL;
        if (wait)
            return;
        if (sv == NULL) {
            call_error(c, TK_RPC_INVALID_PARAMS, "Unknown resource");
            return;
        }
        forward(c, sv, c->params);
        return;
    }
    call_error(c, TK_RPC_INVALID_PARAMS, "params.ref must be a ref/prompt or ref/resource");
}

static void handle_list(call_t *c, cat_kind_t k)
{
    endpoint_t *ep = c->sess->ep;
    if (endpoint_ensure(ep, k, c))
        return;
    if (ep->merged_text[k] == NULL) {
        json_t *r = json_pack("{s:O}", cat_info[k].field, ep->merged[k]);
        ep->merged_text[k] = tk_json_dump(r, &ep->merged_len[k]);
        json_decref(r);
    }
    call_finish_text(c, ep->merged_text[k], ep->merged_len[k]);
}

static void dispatch_call(call_t *c)
{
    const char *m = c->method;
    if (!strcmp(m, "ping"))
        call_result(c, json_object());
    else if (!strcmp(m, "tools/list"))
        handle_list(c, CAT_TOOLS);
    else if (c->tool != NULL && !tk_audit_ok(tk_audit_global())) { /* an audited call */
        json_t *e = tk_rpc_error(c->id, TK_RPC_INTERNAL_ERROR, "audit unavailable");
        call_finish_status(c, e, 503, "Service Unavailable");
        json_decref(e);
    } else if (!strcmp(m, "tools/call"))
        handle_named(c, CAT_TOOLS, "tool");
    else if (!strcmp(m, "prompts/list"))
        handle_list(c, CAT_PROMPTS);
    else if (!strcmp(m, "prompts/get"))
        handle_named(c, CAT_PROMPTS, "prompt");
    else if (!strcmp(m, "resources/list"))
        handle_list(c, CAT_RESOURCES);
    else if (!strcmp(m, "resources/templates/list"))
        handle_list(c, CAT_TEMPLATES);
    else if (!strcmp(m, "resources/read") || !strcmp(m, "resources/subscribe") ||
             !strcmp(m, "resources/unsubscribe"))
        handle_resource(c);
    else if (!strcmp(m, "completion/complete"))
        handle_complete(c);
    else if (!strcmp(m, "logging/setLevel")) {
        int lvl = log_level_index(json_string_value(json_object_get(c->params, "level")));
        if (lvl < 0) {
            call_error(c, TK_RPC_INVALID_PARAMS, "params.level is not a log level");
            return;
        }
        c->sess->log_level = lvl;
        call_result(c, json_object());
    } else if (!strcmp(m, "initialize"))
        call_error(c, TK_RPC_INVALID_REQUEST, "session is already initialized");
    else {
        char msg[160];
        tk_snprintf(msg, sizeof(msg), "Method not found: %.100s", m);
        call_error(c, TK_RPC_METHOD_NOT_FOUND, msg);
    }
}

/* ---- upstream events ---- */

static int endpoint_has(const endpoint_t *ep, const srv_t *sv)
{
    for (size_t j = 0; j < ep->nsrvs; j++)
        if (ep->srvs[j] == sv)
            return 1;
    return 0;
}

/* The session's newest call in flight on sv that can still carry messages. */
static call_t *session_call_on(session_t *s, srv_t *sv)
{
    call_t *c;
    TAILQ_FOREACH_REVERSE(c, &s->calls, call_list, slink)
        if (c->srv == sv && c->req != NULL)
            return c;
    return NULL;
}

/* Send msg to every session whose endpoint includes sv (and, for log
 * messages, whose level admits it; for resource updates, that subscribed).
 * A log message goes to a session without a GET stream on its newest call
 * in flight on that server (stdio carries no request association, and a
 * message logged during a call most likely belongs to it). */
static void fan_out(srv_t *sv, json_t *msg, int level, const char *uri)
{
    tk_gateway_t *gw = sv->gw;
    size_t it = 0;
    void *val;
    while (tk_map_next(gw->sessions, &it, NULL, NULL, &val)) {
        session_t *s = val;
        if (!endpoint_has(s->ep, sv))
            continue;
        if (level >= 0 && level < s->log_level)
            continue;
        if (uri && json_object_get(s->subs, uri) == NULL)
            continue;
        call_t *c;
        if (s->stream == NULL && level >= 0 && (c = session_call_on(s, sv)) != NULL)
            call_push(c, msg);
        else
            session_push(s, msg);
    }
}

static void on_up_notification(void *arg, tk_upstream_t *up, const char *method, json_t *params)
{
    srv_t *sv = arg;
    tk_gateway_t *gw = sv->gw;
    (void)up;
    if (!strcmp(method, "notifications/progress")) {
        json_t *tok = json_object_get(params, "progressToken");
        call_t *c = json_is_string(tok) ? tk_map_sget(gw->progress, json_string_value(tok)) : NULL;
        if (c == NULL)
            return;
        json_t *p = json_deep_copy(params);
        json_object_set(p, "progressToken", c->client_ptoken);
        json_t *n = tk_rpc_notification(method, p);
        call_push(c, n);
        json_decref(n);
        return;
    }
    int k = -1;
    if (!strcmp(method, "notifications/tools/list_changed"))
        k = CAT_TOOLS;
    else if (!strcmp(method, "notifications/prompts/list_changed"))
        k = CAT_PROMPTS;
    else if (!strcmp(method, "notifications/resources/list_changed"))
        k = CAT_RESOURCES;
    if (k >= 0) {
        sv->cat[k].valid = 0;
        if (k == CAT_RESOURCES)
            sv->cat[CAT_TEMPLATES].valid = 0;
        json_t *n = tk_rpc_notification(method, NULL);
        fan_out(sv, n, -1, NULL);
        json_decref(n);
        return;
    }
    if (!strcmp(method, "notifications/resources/updated")) {
        const char *uri = json_string_value(json_object_get(params, "uri"));
        if (uri == NULL)
            return;
        json_t *n = tk_rpc_notification(method, json_incref(params));
        fan_out(sv, n, -1, uri);
        json_decref(n);
        return;
    }
    if (!strcmp(method, "notifications/message")) {
        int lvl = log_level_index(json_string_value(json_object_get(params, "level")));
        json_t *p = json_deep_copy(params);
        json_t *logger = json_object_get(p, "logger");
        json_object_set_new(p, "logger",
                            json_sprintf("%s%s%s", tk_upstream_name(sv->up), logger ? "/" : "",
                                         logger ? json_string_value(logger) : ""));
        json_t *n = tk_rpc_notification(method, p);
        fan_out(sv, n, lvl < 0 ? 0 : lvl, NULL);
        json_decref(n);
        return;
    }
    if (!strcmp(method, "notifications/cancelled")) {
        /* the server withdrew one of its requests to a client */
        size_t it = 0;
        void *val;
        json_t *rid = json_object_get(params, "requestId");
        while (rid && tk_map_next(gw->s2c, &it, NULL, NULL, &val)) {
            s2c_t *r = val;
            if (r->srv == sv && json_equal(r->up_id, rid)) {
                json_t *n = tk_rpc_notification(
                    method, json_pack("{s:s}", "requestId", r->key));
                session_push(r->sess, n);
                json_decref(n);
                break;
            }
        }
        return;
    }
    tk_debug(MOD, "server %s: notification %s dropped", tk_upstream_name(sv->up), method);
}

static const char *needed_cap(const char *method)
{
    if (!strcmp(method, "sampling/createMessage"))
        return "sampling";
    if (!strcmp(method, "elicitation/create"))
        return "elicitation";
    if (!strcmp(method, "roots/list"))
        return "roots";
    return NULL;
}

static void on_up_request(void *arg, tk_upstream_t *up, json_t *id, const char *method,
                          json_t *params)
{
    srv_t *sv = arg;
    tk_gateway_t *gw = sv->gw;
    uint64_t gen = tk_upstream_generation(up);
    if (!strcmp(method, "ping")) {
        json_t *empty = json_object();
        if (tk_upstream_respond(up, gen, id, empty, NULL) != TK_OK)
            tk_debug(MOD, "ping answer dropped");
        json_decref(empty);
        return;
    }
    const char *cap = needed_cap(method);
    call_t *target = NULL, *c;
    if (cap) {
        TAILQ_FOREACH_REVERSE(c, &sv->calls, call_list, ulink) { /* newest first */
            if (c->req && json_object_get(c->sess->client_caps, cap)) {
                target = c;
                break;
            }
        }
    }
    if (target == NULL && !strcmp(method, "roots/list")) {
        /* a shared server asking outside any call: the gateway has no roots */
        json_t *empty = json_pack("{s:[]}", "roots");
        if (tk_upstream_respond(up, gen, id, empty, NULL) != TK_OK)
            tk_debug(MOD, "roots answer dropped");
        json_decref(empty);
        return;
    }
    if (target == NULL) {
        json_t *err = json_pack("{s:i, s:s}", "code", TK_RPC_METHOD_NOT_FOUND, "message",
                                "no connected client session can answer this request");
        if (tk_upstream_respond(up, gen, id, NULL, err) != TK_OK)
            tk_debug(MOD, "answer dropped");
        json_decref(err);
        return;
    }
    s2c_t *r = tk_calloc(1, sizeof(*r));
    tk_snprintf(r->key, sizeof(r->key), "tks-%llu", (unsigned long long)++gw->next_token);
    r->srv = sv;
    r->gen = gen;
    r->up_id = json_incref(id);
    r->sess = target->sess;
    tk_map_sput(gw->s2c, r->key, r);
    json_t *msg = tk_rpc_request(json_string(r->key), method, params ? json_incref(params) : NULL);
    call_push(target, msg);
    json_decref(msg);
}

static void on_up_ready(void *arg, tk_upstream_t *up)
{
    srv_t *sv = arg;
    atomic_store(&sv->settled, 1);
    tk_metrics_upstream_up(sv->gw->metrics, tk_upstream_name(up), 1);
    for (int k = 0; k < CAT_N; k++)
        sv->cat[k].valid = 0; /* refetch lazily; keep the old items meanwhile */
}

static void on_up_down(void *arg, tk_upstream_t *up)
{
    srv_t *sv = arg;
    tk_upstream_state_t st = tk_upstream_state(up);
    atomic_store(&sv->settled, 1);
    tk_metrics_upstream_up(sv->gw->metrics, tk_upstream_name(up), 0);
    if (st == TK_UP_STARTING || st == TK_UP_READY) { /* not a planned stop */
        tk_metrics_upstream_restart(sv->gw->metrics, tk_upstream_name(up));
        tk_alerts_note(sv->gw->alerts, TK_ALERT_UPSTREAM_RESTARTS, tk_upstream_name(up));
    }
    for (int k = 0; k < CAT_N; k++) {
        if (sv->cat[k].fetching) {
            json_decref(sv->cat[k].accum);
            sv->cat[k].accum = NULL;
        }
    }
}

/* ---- HTTP entry ---- */

static const char *hdr(tk_hreq_t *req, const char *name)
{
    return tk_hreq_header(req, name);
}

static int accepts(const char *accept, const char *type)
{
    if (accept == NULL)
        return 0;
    return strstr(accept, type) != NULL || strstr(accept, "*/*") != NULL;
}

static session_t *session_new(tk_gateway_t *gw, endpoint_t *ep, const char *actor)
{
    unsigned char raw[32];
    if (tk_random_bytes(raw, sizeof(raw)) != TK_OK)
        return NULL;
    session_t *s = tk_calloc(1, sizeof(*s));
    tk_hex_encode(raw, sizeof(raw), s->id);
    audit_session_id(s->id, s->audit_id, sizeof(s->audit_id));
    tk_snprintf(s->actor, sizeof(s->actor), "%s", actor ? actor : "-");
    s->gw = gw;
    s->ep = ep;
    s->subs = json_object();
    s->log_level = 1; /* info */
    s->last_seen_ms = tk_now_ms();
    TAILQ_INIT(&s->calls);
    tk_map_sput(gw->sessions, s->id, s);
    tk_metrics_sessions(gw->metrics, ep->conf->slug, 1);
    return s;
}

static void handle_initialize(tk_gateway_t *gw, endpoint_t *ep, tk_hreq_t *req, tk_rpc_t *rpc,
                              const char *actor)
{
    const char *want = json_string_value(json_object_get(rpc->params, "protocolVersion"));
    if (want == NULL) {
        send_rpc_error(req, 400, "Bad Request", rpc->id, TK_RPC_INVALID_PARAMS,
                       "params.protocolVersion must be a string");
        return;
    }
    if (tk_map_count(gw->sessions) >= gw->cfg->max_sessions) {
        send_rpc_error(req, 503, "Service Unavailable", rpc->id, TK_RPC_INTERNAL_ERROR,
                       "too many sessions");
        return;
    }
    session_t *s = session_new(gw, ep, actor);
    if (s == NULL) {
        send_rpc_error(req, 500, "Internal Server Error", rpc->id, TK_RPC_INTERNAL_ERROR,
                       "cannot create a session");
        return;
    }
    const char *ver = tk_mcp_version_supported(want) ? want : TK_MCP_LATEST;
    tk_snprintf(s->proto, sizeof(s->proto), "%s", ver);
    json_t *caps = json_object_get(rpc->params, "capabilities");
    s->client_caps = json_is_object(caps) ? json_incref(caps) : json_object();
    json_t *result = json_pack(
        "{s:s, s:{s:{s:b}, s:{s:b}, s:{s:b, s:b}, s:{}, s:{}}, s:{s:s, s:s, s:s}}",
        "protocolVersion", ver, "capabilities", "tools", "listChanged", 1, "prompts",
        "listChanged", 1, "resources", "subscribe", 1, "listChanged", 1, "logging",
        "completions", "serverInfo", "name", "tumiki", "title", "Tumiki MCP gateway", "version",
        TK_VERSION);
    json_t *m = tk_rpc_result(rpc->id, result);
    audit_session(s, req, "session.create", ver,
                  json_string_value(json_object_get(json_object_get(rpc->params, "clientInfo"),
                                                    "name")));
    tk_hreq_add_header(req, "Mcp-Session-Id", s->id);
    send_json(req, 200, "OK", m);
    json_decref(m);
    tk_info(MOD, "session started on endpoint %s (protocol %s, %zu sessions)", ep->conf->slug,
            ver, tk_map_count(gw->sessions));
}

static void handle_client_response(tk_gateway_t *gw, tk_rpc_t *rpc)
{
    const char *key = json_string_value(rpc->id);
    s2c_t *r = key ? tk_map_sdel(gw->s2c, key) : NULL;
    if (r == NULL)
        return;
    if (tk_upstream_respond(r->srv->up, r->gen, r->up_id, rpc->result, rpc->error) != TK_OK)
        tk_debug(MOD, "answer for %s dropped: server restarted", key);
    json_decref(r->up_id);
    free(r);
}

static void handle_client_notification(session_t *s, tk_rpc_t *rpc)
{
    if (!strcmp(rpc->method, "notifications/cancelled")) {
        json_t *rid = json_object_get(rpc->params, "requestId");
        call_t *c;
        TAILQ_FOREACH(c, &s->calls, slink) {
            if (rid && json_equal(c->id, rid)) {
                if (c->req) {
                    call_detach_conn(c);
                    /* the client no longer wants an answer; release the HTTP request */
                    send_end(c->req, c->sse, c->id, TK_RPC_REQUEST_CANCELLED,
                             "request cancelled");
                    c->req = NULL;
                }
                call_free(c);
                return;
            }
        }
        return;
    }
    if (!strcmp(rpc->method, "notifications/roots/list_changed")) {
        for (size_t j = 0; j < s->ep->nsrvs; j++)
            if (tk_upstream_notify(s->ep->srvs[j]->up, rpc->method, NULL) != TK_OK)
                tk_debug(MOD, "roots change not forwarded");
    }
    /* notifications/initialized and others need no action */
}

static void handle_get(session_t *s, tk_hreq_t *req)
{
    if (!accepts(hdr(req, "Accept"), "text/event-stream")) {
        send_rpc_error(req, 406, "Not Acceptable", NULL, -32000,
                       "Not Acceptable: client must accept text/event-stream");
        return;
    }
    if (s->stream != NULL) {
        send_rpc_error(req, 409, "Conflict", NULL, -32000,
                       "Conflict: only one SSE stream is allowed per session");
        return;
    }
    s->stream = req;
    tk_hreq_on_close(req, stream_closed, s);
    sse_start(req);
    tk_hreq_stream_chunk(req, ": stream open\n\n", 15);
}

static endpoint_t *find_endpoint(tk_gateway_t *gw, const char *slug)
{
    for (size_t i = 0; i < gw->neps; i++)
        if (!strcmp(gw->eps[i]->conf->slug, slug))
            return gw->eps[i];
    return NULL;
}

static session_t *find_session(tk_gateway_t *gw, endpoint_t *ep, tk_hreq_t *req,
                               int *status)
{
    const char *sid = hdr(req, "Mcp-Session-Id");
    if (sid == NULL) {
        *status = 400;
        return NULL;
    }
    session_t *s = tk_map_sget(gw->sessions, sid);
    if (s == NULL || s->ep != ep) {
        *status = 404;
        return NULL;
    }
    const char *pv = hdr(req, "MCP-Protocol-Version");
    if (pv != NULL && !tk_mcp_version_supported(pv)) {
        *status = 400;
        return NULL;
    }
    s->last_seen_ms = tk_now_ms();
    return s;
}

static void session_error(tk_hreq_t *req, int status)
{
    if (status == 404)
        send_rpc_error(req, 404, "Not Found", NULL, -32001, "Session not found");
    else if (hdr(req, "Mcp-Session-Id") == NULL)
        send_rpc_error(req, 400, "Bad Request", NULL, -32000,
                       "Bad Request: Mcp-Session-Id header is required");
    else
        send_rpc_error(req, 400, "Bad Request", NULL, -32000,
                       "Bad Request: unsupported MCP-Protocol-Version");
}

static void handle_post(tk_gateway_t *gw, endpoint_t *ep, tk_hreq_t *req, const char *actor)
{
    const char *ct = hdr(req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
        send_rpc_error(req, 415, "Unsupported Media Type", NULL, -32000,
                       "Unsupported Media Type: Content-Type must be application/json");
        return;
    }
    const char *acc = hdr(req, "Accept");
    if (!accepts(acc, "application/json") || !accepts(acc, "text/event-stream")) {
        send_rpc_error(req, 406, "Not Acceptable", NULL, -32000,
                       "Not Acceptable: client must accept both application/json and "
                       "text/event-stream");
        return;
    }
    json_t *msg = NULL;
    tk_rpc_t rpc;
    int code;
    const char *why;
    if (tk_hreq_rpc(req, &msg, &rpc, &code, &why) != TK_OK) {
        json_t *id = json_is_object(msg) ? json_object_get(msg, "id") : NULL;
        if (id && !json_is_string(id) && !json_is_integer(id))
            id = NULL;
        send_rpc_error(req, 400, "Bad Request", id, code,
                       code == TK_RPC_PARSE_ERROR ? "Parse error: invalid JSON" : why);
        json_decref(msg);
        return;
    }
    if (rpc.kind == TK_RPC_REQUEST)
        tk_metrics_mcp_request(gw->metrics, ep->conf->slug, rpc.method);
    if (rpc.kind == TK_RPC_REQUEST && !strcmp(rpc.method, "initialize")) {
        if (hdr(req, "Mcp-Session-Id") != NULL) {
            send_rpc_error(req, 400, "Bad Request", rpc.id, TK_RPC_INVALID_REQUEST,
                           "Invalid Request: initialize must not carry an Mcp-Session-Id");
            json_decref(msg);
            return;
        }
        handle_initialize(gw, ep, req, &rpc, actor);
        json_decref(msg);
        return;
    }
    int status;
    session_t *s = find_session(gw, ep, req, &status);
    if (s == NULL) {
        session_error(req, status);
        json_decref(msg);
        return;
    }
    if (rpc.kind == TK_RPC_REQUEST) {
        call_t *c = call_new(s, req, msg, &rpc, actor);
        json_decref(msg);
        dispatch_call(c);
        return;
    }
    if (rpc.kind == TK_RPC_RESPONSE)
        handle_client_response(gw, &rpc);
    else
        handle_client_notification(s, &rpc);
    tk_hreq_reply(req, 202, "Accepted", NULL, NULL, 0);
    json_decref(msg);
}

void tk_gateway_handle(tk_gateway_t *gw, tk_hreq_t *req, const char *slug)
{
    tk_gateway_handle_as(gw, req, slug, NULL);
}

void tk_gateway_handle_as(tk_gateway_t *gw, tk_hreq_t *req, const char *slug,
                          const char *actor)
{
    endpoint_t *ep = find_endpoint(gw, slug);
    if (ep == NULL) {
        send_rpc_error(req, 404, "Not Found", NULL, -32000, "Not Found: unknown endpoint");
        return;
    }
    enum evhttp_cmd_type cmd = tk_hreq_command(req);
    if (cmd == EVHTTP_REQ_POST) {
        handle_post(gw, ep, req, actor);
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_DELETE) {
        tk_hreq_add_header(req, "Allow", "GET, POST, DELETE");
        send_rpc_error(req, 405, "Method Not Allowed", NULL, -32000, "Method not allowed");
        return;
    }
    int status;
    session_t *s = find_session(gw, ep, req, &status);
    if (s == NULL) {
        session_error(req, status);
        return;
    }
    if (cmd == EVHTTP_REQ_GET) {
        handle_get(s, req);
        return;
    }
    tk_info(MOD, "session ended by client on endpoint %s", ep->conf->slug);
    audit_session(s, req, "session.delete", NULL, "client");
    session_destroy(s);
    tk_hreq_reply(req, 200, "OK", NULL, NULL, 0);
}

/* ---- life cycle ---- */

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    tk_gateway_t *gw = arg;
    (void)sig;
    (void)what;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < gw->nsrvs; i++)
            if (tk_upstream_child_exited(gw->srvs[i]->up, (int)pid, status))
                break;
    }
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_gateway_t *gw = arg;
    (void)fd;
    (void)what;
    uint64_t now = tk_now_ms();
    uint64_t idle_ms = (uint64_t)gw->cfg->session_idle_timeout_s * 1000u;
    size_t it = 0, n = 0;
    void *val;
    session_t **dead = tk_calloc(tk_map_count(gw->sessions) + 1, sizeof(*dead));
    while (tk_map_next(gw->sessions, &it, NULL, NULL, &val)) {
        session_t *s = val;
        if (s->stream) {
            tk_hreq_stream_chunk(s->stream, ": keepalive\n\n", 13);
            s->last_seen_ms = now;
        } else if (TAILQ_EMPTY(&s->calls) && now - s->last_seen_ms > idle_ms) {
            dead[n++] = s;
        }
    }
    for (size_t i = 0; i < n; i++) {
        tk_info(MOD, "session expired after %us idle", gw->cfg->session_idle_timeout_s);
        audit_session(dead[i], NULL, "session.delete", NULL, "idle");
        session_destroy(dead[i]);
    }
    free(dead);
}

/* The pin store said a tool's approval changed: rebuild tool lists and tell
 * the sessions that can see the server. */
static void pins_changed(void *arg, const char *server)
{
    tk_gateway_t *gw = arg;
    gw->pin_gen++;
    for (size_t i = 0; i < gw->nsrvs; i++) {
        if (strcmp(tk_upstream_name(gw->srvs[i]->up), server) == 0) {
            json_t *n = tk_rpc_notification("notifications/tools/list_changed", NULL);
            fan_out(gw->srvs[i], n, -1, NULL);
            json_decref(n);
        }
    }
}

static void pins_start(tk_gateway_t *gw)
{
    size_t pinned = 0;
    for (size_t i = 0; i < gw->nsrvs; i++)
        pinned += gw->srvs[i]->pin->mode != TK_PIN_OFF;
    if (pinned == 0)
        return;
    char err[512];
    char *db = tk_asprintf("%s/tumiki.db", gw->cfg->data_dir);
    gw->pins = tk_pins_create(gw->base, db, pins_changed, gw, err, sizeof(err));
    free(db);
    if (gw->pins == NULL)
        tk_error(MOD,
                 "tool-definition pinning has no store (%s): tools of pinned servers are "
                 "withheld until it works",
                 err);
}

/* A server's runtime state for conf (borrowed; the caller sets own_conf
 * when the gateway owns it). */
static srv_t *srv_new(tk_gateway_t *gw, const tk_server_conf_t *conf)
{
    srv_t *sv = tk_calloc(1, sizeof(*sv));
    sv->gw = gw;
    TAILQ_INIT(&sv->calls);
    tk_upstream_events_t ev = {on_up_notification, on_up_request, on_up_ready, on_up_down, sv};
    sv->up = tk_upstream_create(gw->base, conf, gw->cfg->max_message_bytes, &ev, gw->cfg->ssrf);
    sv->pin = &conf->pinning;
    return sv;
}

static void srv_start(srv_t *sv)
{
    if (tk_upstream_start(sv->up) != TK_OK) {
        atomic_store(&sv->settled, 1);
        tk_warn(MOD, "server %s did not start; will retry", tk_upstream_name(sv->up));
    }
}

/* Kill the server's processes and free it (its calls must be gone). */
static void srv_free(srv_t *sv)
{
    tk_upstream_destroy(sv->up);
    for (int k = 0; k < CAT_N; k++) {
        json_decref(sv->cat[k].items);
        json_decref(sv->cat[k].accum);
    }
    tk_config_server_free(sv->own_conf);
    free(sv);
}

/* An endpoint for conf (borrowed) with room for cap servers. */
static endpoint_t *endpoint_new(tk_gateway_t *gw, const tk_endpoint_conf_t *conf, size_t cap)
{
    endpoint_t *ep = tk_calloc(1, sizeof(*ep));
    ep->gw = gw;
    ep->conf = conf;
    ep->srvs = tk_calloc(cap + 1, sizeof(srv_t *));
    for (int k = 0; k < CAT_N; k++)
        ep->built_gen[k] = tk_calloc(cap + 1, sizeof(unsigned));
    return ep;
}

static void endpoint_free(endpoint_t *ep)
{
    for (int k = 0; k < CAT_N; k++) {
        json_decref(ep->merged[k]);
        free(ep->merged_text[k]);
        if (ep->routes[k]) {
            routes_clear(ep->routes[k]);
            tk_map_destroy(ep->routes[k]);
        }
        free(ep->built_gen[k]);
        if (k == CAT_TOOLS)
            tk_map_destroy(ep->pin_blocked);
        waiter_t *w = ep->waiters[k];
        while (w) {
            waiter_t *next = w->next;
            free(w);
            w = next;
        }
    }
    json_decref(ep->tool_filter);
    free(ep->srvs);
    tk_config_endpoint_free(ep->own_conf);
    free(ep);
}

tk_gateway_t *tk_gateway_create(struct event_base *base, const tk_config_t *cfg)
{
    tk_gateway_t *gw = tk_calloc(1, sizeof(*gw));
    gw->base = base;
    gw->cfg = cfg;
    gw->sessions = tk_map_create();
    gw->calls = tk_map_create();
    gw->progress = tk_map_create();
    gw->s2c = tk_map_create();
    unsigned char rid[4];
    if (tk_random_bytes(rid, sizeof(rid)) != TK_OK)
        memset(rid, 0, sizeof(rid));
    tk_hex_encode(rid, sizeof(rid), gw->rid_prefix);
    gw->srvs = tk_calloc(TK_GATEWAY_MAX_SERVERS, sizeof(srv_t *));
    size_t *srv_of = tk_calloc(cfg->nservers, sizeof(size_t)); /* conf index -> srv index + 1 */
    for (size_t i = 0; i < cfg->nservers; i++) {
        if (cfg->servers[i].disabled)
            continue;
        gw->srvs[gw->nsrvs] = srv_new(gw, &cfg->servers[i]);
        srv_of[i] = ++gw->nsrvs;
    }
    gw->nconf_srvs = gw->nsrvs;
    gw->eps = tk_calloc(TK_GATEWAY_MAX_ENDPOINTS, sizeof(endpoint_t *));
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        endpoint_t *ep = endpoint_new(gw, &cfg->endpoints[i], cfg->endpoints[i].nservers);
        for (size_t j = 0; j < ep->conf->nservers; j++) {
            size_t si = srv_of[ep->conf->servers[j]];
            if (si)
                ep->srvs[ep->nsrvs++] = gw->srvs[si - 1];
        }
        gw->eps[gw->neps++] = ep;
    }
    free(srv_of);
    gw->epreg = tk_epreg_create();
    for (size_t i = 0; i < gw->neps; i++)
        tk_epreg_put(gw->epreg, gw->eps[i]->conf->slug, &gw->eps[i]->conf->rate);
    pins_start(gw);
    gw->sigchld = evsignal_new(base, SIGCHLD, sigchld_cb, gw);
    evsignal_add(gw->sigchld, NULL);
    gw->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, gw);
    /* often enough that a short session_idle_timeout_s is honoured closely */
    uint32_t every = cfg->session_idle_timeout_s / 2;
    struct timeval tv = {every < 1 ? 1 : (every > SWEEP_INTERVAL_S ? SWEEP_INTERVAL_S : every), 0};
    evtimer_add(gw->sweep, &tv);
    /* audited calls' records are written off this loop (tk_audit_submit) */
    tk_audit_t *a = tk_audit_global();
    if (a != NULL && tk_audit_attach_loop(a, base) == TK_OK)
        gw->audit_loop = a;
    else if (a != NULL)
        tk_warn(MOD, "audit records of calls will be written on the event loop");
    return gw;
}

void tk_gateway_start(tk_gateway_t *gw)
{
    for (size_t i = 0; i < gw->nsrvs; i++)
        srv_start(gw->srvs[i]);
    gw->started = 1;
}

void tk_gateway_set_monitoring(tk_gateway_t *gw, tk_metrics_t *metrics, tk_alerts_t *alerts)
{
    gw->metrics = metrics;
    gw->alerts = alerts;
    tk_pins_set_alerts(gw->pins, alerts);
    for (size_t i = 0; i < gw->nsrvs; i++)
        tk_metrics_upstream_init(metrics, tk_upstream_name(gw->srvs[i]->up));
    for (size_t i = 0; i < gw->neps; i++)
        tk_metrics_sessions(metrics, gw->eps[i]->conf->slug, 0);
}

size_t tk_gateway_pending_servers(const tk_gateway_t *gw, json_t *names)
{
    size_t n = 0;
    for (size_t i = 0; i < gw->nconf_srvs; i++) /* fixed since create: safe off the loop */
        if (!atomic_load(&gw->srvs[i]->settled)) {
            json_array_append_new(names,
                                  json_sprintf("upstream:%s", tk_upstream_name(gw->srvs[i]->up)));
            n++;
        }
    return n;
}

tk_alerts_t *tk_gateway_alerts(const tk_gateway_t *gw)
{
    return gw->alerts;
}

void tk_gateway_destroy(tk_gateway_t *gw)
{
    if (gw == NULL)
        return;
    size_t it = 0;
    void *val;
    session_t **all = tk_calloc(tk_map_count(gw->sessions) + 1, sizeof(*all));
    size_t n = 0;
    while (tk_map_next(gw->sessions, &it, NULL, NULL, &val))
        all[n++] = val;
    for (size_t i = 0; i < n; i++)
        session_destroy(all[i]);
    free(all);
    for (size_t i = 0; i < gw->neps; i++)
        endpoint_free(gw->eps[i]);
    free(gw->eps);
    tk_pins_destroy(gw->pins);
    for (size_t i = 0; i < gw->nsrvs; i++)
        srv_free(gw->srvs[i]);
    free(gw->srvs);
    it = 0;
    while (tk_map_next(gw->s2c, &it, NULL, NULL, &val)) {
        json_decref(((s2c_t *)val)->up_id);
        free(val);
    }
    tk_map_destroy(gw->s2c);
    tk_map_destroy(gw->progress);
    tk_map_destroy(gw->calls);
    tk_map_destroy(gw->sessions);
    event_free(gw->sigchld);
    event_free(gw->sweep);
    /* every queued record is written and its parked reply settled (their
     * connections were closed with the HTTP server) */
    tk_audit_detach_loop(gw->audit_loop);
    tk_epreg_destroy(gw->epreg);
    free(gw);
}

/* ---- admin API hooks ---- */

int tk_gateway_set_tool_filter(tk_gateway_t *gw, const char *slug, const json_t *allow,
                               const json_t *deny)
{
    endpoint_t *ep = find_endpoint(gw, slug);
    if (ep == NULL)
        return TK_ENOENT;
    if (!json_is_array(allow) || !json_is_array(deny))
        return TK_EINVAL;
    json_decref(ep->tool_filter);
    ep->tool_filter = json_pack("{s:O, s:O}", "allow", allow, "deny", deny);
    json_decref(ep->merged[CAT_TOOLS]); /* rebuilt, filtered anew, on the next use */
    ep->merged[CAT_TOOLS] = NULL;
    free(ep->merged_text[CAT_TOOLS]);
    ep->merged_text[CAT_TOOLS] = NULL;
    json_t *n = tk_rpc_notification("notifications/tools/list_changed", NULL);
    size_t it = 0;
    void *val;
    while (tk_map_next(gw->sessions, &it, NULL, NULL, &val))
        if (((session_t *)val)->ep == ep)
            session_push(val, n);
    json_decref(n);
    tk_info(MOD, "endpoint %s: tool selection changed", slug);
    return TK_OK;
}

const char *tk_gateway_server_status(const tk_gateway_t *gw, const char *name)
{
    static const char *const names[] = {"idle", "starting", "ready", "backoff", "stopping"};
    for (size_t i = 0; i < gw->nsrvs; i++) {
        if (strcmp(tk_upstream_name(gw->srvs[i]->up), name) != 0)
            continue;
        tk_upstream_state_t st = tk_upstream_state(gw->srvs[i]->up);
        return (size_t)st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
    }
    return "disabled";
}

/* ---- servers and endpoints made through the admin API ---- */

/* The values of m for which match(value, arg) holds, in a fresh array of
 * *n (free it): collected first, so the caller may then delete them. */
static void **map_select(tk_map_t *m, int (*match)(const void *val, const void *arg),
                         const void *arg, size_t *n)
{
    size_t it = 0;
    void *val;
    void **out = tk_calloc(tk_map_count(m) + 1, sizeof(*out));
    *n = 0;
    while (tk_map_next(m, &it, NULL, NULL, &val))
        if (match(val, arg))
            out[(*n)++] = val;
    return out;
}

static int s2c_of_srv(const void *val, const void *sv)
{
    return ((const s2c_t *)val)->srv == sv;
}

static int session_of_ep(const void *val, const void *ep)
{
    return ((const session_t *)val)->ep == ep;
}

static srv_t *find_srv(tk_gateway_t *gw, const char *name)
{
    for (size_t i = 0; i < gw->nsrvs; i++)
        if (strcmp(tk_upstream_name(gw->srvs[i]->up), name) == 0)
            return gw->srvs[i];
    return NULL;
}

/* Tell ep's sessions that its lists changed. */
static void endpoint_lists_changed(endpoint_t *ep)
{
    static const char *const what[] = {"notifications/tools/list_changed",
                                       "notifications/prompts/list_changed",
                                       "notifications/resources/list_changed"};
    size_t n;
    session_t **ss = (session_t **)map_select(ep->gw->sessions, session_of_ep, ep, &n);
    for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
        json_t *msg = tk_rpc_notification(what[i], NULL);
        for (size_t k = 0; k < n; k++)
            session_push(ss[k], msg);
        json_decref(msg);
    }
    free(ss);
}

/* Rebuild ep's merged lists and routes now (no route may point at a server
 * that is going away). */
static void endpoint_rebuild(endpoint_t *ep)
{
    for (int k = 0; k < CAT_N; k++) {
        json_decref(ep->merged[k]);
        ep->merged[k] = NULL;
        endpoint_merge(ep, (cat_kind_t)k);
    }
}

/* In every endpoint, replace server old by new (NULL: drop it); catalogue
 * waits that counted on old are settled. */
static void endpoints_swap_srv(tk_gateway_t *gw, srv_t *old, srv_t *new)
{
    for (size_t i = 0; i < gw->neps; i++) {
        endpoint_t *ep = gw->eps[i];
        size_t j = 0;
        while (j < ep->nsrvs && ep->srvs[j] != old)
            j++;
        if (j == ep->nsrvs)
            continue;
        if (new != NULL) {
            ep->srvs[j] = new;
        } else {
            ep->nsrvs--;
            memmove(&ep->srvs[j], &ep->srvs[j + 1], (ep->nsrvs - j) * sizeof(srv_t *));
        }
        endpoint_rebuild(ep);
        for (int k = 0; k < CAT_N; k++)
            if (old->cat[k].fetching && ep->fetching[k] > 0 && --ep->fetching[k] == 0)
                endpoint_catalog_done(ep, (cat_kind_t)k);
        endpoint_lists_changed(ep);
    }
}

/* Take sv out of service: fail its calls in flight, drop what servers asked
 * of clients, kill its processes, free it. It is already out of every
 * endpoint and of gw->srvs. */
static void srv_retire(tk_gateway_t *gw, srv_t *sv)
{
    call_t *c;
    while ((c = TAILQ_FIRST(&sv->calls)) != NULL) {
        tk_upstream_cancel(sv->up, c->handle, "server removed");
        note_call_end(c, sv, "error", 1);
        TAILQ_REMOVE(&sv->calls, c, ulink);
        c->srv = NULL;
        json_t *m = tk_rpc_error(c->id, TK_RPC_INTERNAL_ERROR, "the upstream server was removed");
        call_finish(c, m);
        json_decref(m);
    }
    size_t n;
    s2c_t **dead = (s2c_t **)map_select(gw->s2c, s2c_of_srv, sv, &n);
    for (size_t i = 0; i < n; i++) {
        tk_map_sdel(gw->s2c, dead[i]->key);
        json_decref(dead[i]->up_id);
        free(dead[i]);
    }
    free(dead);
    tk_metrics_upstream_up(gw->metrics, tk_upstream_name(sv->up), 0);
    srv_free(sv);
}

int tk_gateway_add_server(tk_gateway_t *gw, tk_server_conf_t *conf)
{
    if (find_srv(gw, conf->name) != NULL || tk_config_find_server(gw->cfg, conf->name) != NULL) {
        tk_config_server_free(conf);
        return TK_EINVAL;
    }
    if (gw->nsrvs >= TK_GATEWAY_MAX_SERVERS) {
        tk_config_server_free(conf);
        return TK_ELIMIT;
    }
    srv_t *sv = srv_new(gw, conf);
    sv->own_conf = conf;
    gw->srvs[gw->nsrvs++] = sv;
    if (gw->pins == NULL && conf->pinning.mode != TK_PIN_OFF)
        pins_start(gw);
    tk_metrics_upstream_init(gw->metrics, conf->name);
    if (gw->started)
        srv_start(sv);
    tk_info(MOD, "server %s added", conf->name);
    return TK_OK;
}

int tk_gateway_replace_server(tk_gateway_t *gw, tk_server_conf_t *conf)
{
    srv_t *old = find_srv(gw, conf->name);
    size_t i = 0;
    while (i < gw->nsrvs && gw->srvs[i] != old)
        i++;
    if (old == NULL || old->own_conf == NULL || i < gw->nconf_srvs) {
        tk_config_server_free(conf);
        return old == NULL ? TK_ENOENT : TK_ESTATE;
    }
    srv_t *sv = srv_new(gw, conf);
    sv->own_conf = conf;
    gw->srvs[i] = sv;
    endpoints_swap_srv(gw, old, sv);
    srv_retire(gw, old);
    if (gw->started)
        srv_start(sv);
    tk_info(MOD, "server %s changed", conf->name);
    return TK_OK;
}

int tk_gateway_remove_server(tk_gateway_t *gw, const char *name)
{
    size_t i = gw->nconf_srvs;
    while (i < gw->nsrvs && strcmp(tk_upstream_name(gw->srvs[i]->up), name) != 0)
        i++;
    if (i == gw->nsrvs)
        return find_srv(gw, name) != NULL ? TK_ESTATE : TK_ENOENT;
    srv_t *sv = gw->srvs[i];
    gw->nsrvs--;
    memmove(&gw->srvs[i], &gw->srvs[i + 1], (gw->nsrvs - i) * sizeof(srv_t *));
    endpoints_swap_srv(gw, sv, NULL);
    tk_info(MOD, "server %s removed", name);
    srv_retire(gw, sv);
    return TK_OK;
}

/* The servers called servers[0..n) (a fresh array), or NULL if one is
 * unknown. */
static srv_t **resolve_srvs(tk_gateway_t *gw, char *const *servers, size_t n)
{
    srv_t **out = tk_calloc(n + 1, sizeof(*out));
    for (size_t j = 0; j < n; j++) {
        if ((out[j] = find_srv(gw, servers[j])) == NULL) {
            free(out);
            return NULL;
        }
    }
    return out;
}

int tk_gateway_add_endpoint(tk_gateway_t *gw, tk_endpoint_conf_t *conf, char *const *servers,
                            size_t nservers)
{
    int rc = find_endpoint(gw, conf->slug) != NULL     ? TK_EINVAL
             : gw->neps >= TK_GATEWAY_MAX_ENDPOINTS ? TK_ELIMIT
                                                      : TK_OK;
    srv_t **srvs = rc == TK_OK ? resolve_srvs(gw, servers, nservers) : NULL;
    if (srvs == NULL) {
        tk_config_endpoint_free(conf);
        return rc != TK_OK ? rc : TK_ENOENT;
    }
    endpoint_t *ep = endpoint_new(gw, conf, nservers);
    ep->own_conf = conf;
    memcpy(ep->srvs, srvs, nservers * sizeof(*srvs));
    ep->nsrvs = nservers;
    free(srvs);
    gw->eps[gw->neps++] = ep;
    tk_epreg_put(gw->epreg, conf->slug, &conf->rate);
    tk_metrics_sessions(gw->metrics, conf->slug, 0);
    tk_info(MOD, "endpoint %s added", conf->slug);
    return TK_OK;
}

int tk_gateway_remove_endpoint(tk_gateway_t *gw, const char *slug)
{
    size_t i = 0;
    while (i < gw->neps && strcmp(gw->eps[i]->conf->slug, slug) != 0)
        i++;
    if (i == gw->neps)
        return TK_ENOENT;
    endpoint_t *ep = gw->eps[i];
    if (ep->own_conf == NULL)
        return TK_ESTATE;
    size_t n;
    session_t **dead = (session_t **)map_select(gw->sessions, session_of_ep, ep, &n);
    for (size_t k = 0; k < n; k++) {
        audit_session(dead[k], NULL, "session.delete", NULL, "endpoint removed");
        session_destroy(dead[k]);
    }
    free(dead);
    gw->neps--;
    memmove(&gw->eps[i], &gw->eps[i + 1], (gw->neps - i) * sizeof(endpoint_t *));
    tk_epreg_del(gw->epreg, slug);
    tk_info(MOD, "endpoint %s removed (%zu sessions ended)", slug, n);
    endpoint_free(ep);
    return TK_OK;
}

int tk_gateway_replace_endpoint(tk_gateway_t *gw, tk_endpoint_conf_t *conf, char *const *servers,
                                size_t nservers)
{
    endpoint_t *ep = find_endpoint(gw, conf->slug);
    int rc = ep == NULL ? TK_ENOENT : ep->own_conf == NULL ? TK_ESTATE : TK_OK;
    srv_t **srvs = rc == TK_OK ? resolve_srvs(gw, servers, nservers) : NULL;
    if (srvs == NULL) {
        tk_config_endpoint_free(conf);
        return rc != TK_OK ? rc : TK_ENOENT;
    }
    for (int k = 0; k < CAT_N; k++) {
        free(ep->built_gen[k]);
        ep->built_gen[k] = tk_calloc(nservers + 1, sizeof(unsigned));
    }
    free(ep->srvs);
    ep->srvs = srvs;
    ep->nsrvs = nservers;
    tk_config_endpoint_free(ep->own_conf);
    ep->own_conf = conf;
    ep->conf = conf;
    tk_epreg_put(gw->epreg, conf->slug, &conf->rate);
    endpoint_rebuild(ep);
    for (int k = 0; k < CAT_N; k++) {
        if (ep->waiters[k] != NULL) { /* the wait's count no longer adds up: run them again */
            ep->fetching[k] = 0;
            endpoint_catalog_done(ep, (cat_kind_t)k);
        }
    }
    endpoint_lists_changed(ep);
    tk_info(MOD, "endpoint %s changed", conf->slug);
    return TK_OK;
}

tk_epreg_t *tk_gateway_endpoints(const tk_gateway_t *gw)
{
    return gw->epreg;
}

int tk_gateway_has_endpoint(const tk_gateway_t *gw, const char *slug)
{
    return find_endpoint((tk_gateway_t *)gw, slug) != NULL;
}
