/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP listener: limits, security headers, CORS for allowed origins,
 * Host/Origin validation, bootstrap bearer authentication and routing.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "admin/api.h"
#include "admin/login.h"
#include "admin/rbac.h"
#include "audit/audit.h"
#include "auth/jwt.h"
#include "auth/keyauth.h"
#include "core/map.h"
#include "http/http_int.h"
#include "http/tls.h"
#include "mcp/jsonrpc.h"
#include "metrics/alerts.h"
#include "metrics/metrics.h"
#include "state/ratelimit.h"

#define MOD "http"
#define MAX_HEADERS_BYTES (16 * 1024)
#define IO_TIMEOUT_S 60

/* One client connection. evhttp owns it; we keep a reference on its
 * bufferevent so that its socket stays valid for our deadline until we see
 * that evhttp has let go of it (bufferevent_free clears the callbacks), which
 * gives an exact count of open connections and a safe handle to cut one off. */
typedef struct worker worker_t;

typedef struct conn {
    tk_http_server_t *srv;
    worker_t *w; /* the thread that owns it */
    struct bufferevent *bev;
    struct event *deadline; /* the next complete request must arrive by then */
    int in_request;         /* on_request has this connection's current request */
    double started;         /* tk_metrics_now() when on_request got it */
    struct evhttp_request *req; /* that request, until it completes */
    int head_pending;           /* its response's status line is not written yet */
    int patching;               /* re-entry guard for out_cb */
    char head_extra[128];       /* header lines for that response (RateLimit-*) */
    size_t head_extra_len;      /* written by out_cb after the security block */
} conn_t;

/* One HTTP event loop: with server.threads = 1 the main loop itself (no
 * thread, no mailbox), else a thread of its own. Everything here is touched
 * only by that loop's thread. */
struct worker {
    tk_http_server_t *srv;
    struct event_base *base;
    struct evhttp *http;
    tk_map_t *conns;     /* bufferevent -> conn_t */
    struct event *sweep; /* releases connections evhttp has freed */
    unsigned long refused; /* connections cut at max_connections */
    tk_keyauth_t *ka;      /* API keys (NULL: only the bootstrap token) */
    tk_map_t *verifying;   /* API-key checks in flight: handle -> pending_auth_t */
    tk_mailbox_t *mb;      /* output from the core (threads > 1) */
    pthread_t thread;
    int started;
    int own_base; /* base was made for this loop's thread */
    tk_login_t *login;     /* dashboard login, sessions and files (this loop's) */
};

/* Shared by the loops: set at creation and then read-only, except tls
 * (under tls_mu), nconns (atomic) and rl (locked inside). */
struct tk_http_server {
    struct event_base *base; /* the gateway core's loop */
    const tk_config_t *cfg;
    tk_gateway_t *gw;
    worker_t *workers;
    size_t nworkers;
    int threaded;         /* the workers run on threads of their own */
    tk_mailbox_t *core_mb; /* requests and close notices for the core (threaded) */
    struct evhttp_bound_socket *sock;
    pthread_mutex_t tls_mu;
    SSL_CTX *tls;       /* NULL: plain HTTP */
    int tls_on;
    int port;
    atomic_size_t nconns;
    tk_ratelimit_t *rl;    /* per key, per endpoint, per address */
    tk_epreg_t *eps;       /* the endpoints served now (the gateway's; locked inside) */
    tk_metrics_t *metrics; /* borrowed, may be NULL */
    tk_alerts_t *alerts;   /* borrowed, may be NULL */
    tk_admin_t *admin;     /* /api/v1, on the core loop */
    tk_login_shared_t *login_shared; /* dashboard sessions, shared by the loops */
    char sec_block[512]; /* the security header lines of every response */
    size_t sec_len;
};

/* The pseudo-slug under which /metrics goes through bearer authentication:
 * no endpoint has it, so only credentials for every endpoint ("*") pass. */
#define METRICS_SLUG ""

/* A request handed to the core loop. */
typedef struct handoff {
    tk_hmsg_t hdr;
    tk_hreq_t *r;
    char slug[TK_SLUG_MAX + 1];
    char actor[TK_AUDIT_ACTOR_MAX]; /* who, for the audit trail ("" = the session's) */
    int admin;          /* an /api/v1 request: for srv->admin, as caller, at path */
    tk_caller_t caller;
    char path[TK_ADMIN_PATH_MAX];
} handoff_t;

/* An API key to drop from one HTTP loop's key cache. */
typedef struct forget_msg {
    tk_hmsg_t hdr;
    char key_id[TK_APIKEY_ID_LEN + 1];
} forget_msg_t;

/* A request waiting for its API key to be verified off the loop. */
typedef struct pending_auth {
    worker_t *w;
    struct evhttp_request *req;
    uint64_t handle;
    char slug[TK_SLUG_MAX + 1];
    int admin; /* an /api/v1 request (slug unused) */
    char ipkey[80];
} pending_auth_t;

/* The connection of a request on loop w, or NULL. */
static conn_t *conn_of(worker_t *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? tk_map_get(w->conns, (uint64_t)(uintptr_t)bev) : NULL;
}

/* out = prefix followed by the first n bytes of str, cut to fit cap (as
 * tk_snprintf would) and NUL-terminated: for keys and labels on the hot
 * path, without printf. */
static void join2(char *out, size_t cap, const char *prefix, const char *str, size_t n)
{
    size_t p = strlen(prefix);
    if (cap == 0)
        return;
    if (p > cap - 1)
        p = cap - 1;
    memcpy(out, prefix, p);
    if (n > cap - 1 - p)
        n = cap - 1 - p;
    memcpy(out + p, str, n);
    out[p + n] = '\0';
}

int tk_http_server_port(const tk_http_server_t *srv)
{
    return srv->port;
}

int tk_http_is_loopback(const char *host)
{
    if (!strcasecmp(host, "localhost") || !strcmp(host, "::1") ||
        !strcasecmp(host, "localhost.localdomain"))
        return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* Split "host[:port]" or "[v6][:port]" into host (no brackets); returns
 * 0 on a well-formed value. */
static int split_host(const char *in, char *host, size_t hostlen)
{
    const char *end;
    if (*in == '[') {
        end = strchr(in, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return -1;
        in++;
    } else {
        end = strchr(in, ':');
        if (end == NULL)
            end = in + strlen(in);
    }
    size_t n = (size_t)(end - in);
    if (n == 0 || n >= hostlen)
        return -1;
    memcpy(host, in, n);
    host[n] = '\0';
    const char *port = *end == ']' ? end + 1 : end;
    if (*port == ':') {
        uint64_t p;
        if (tk_parse_uint(port + 1, 1, 65535, &p) != TK_OK)
            return -1;
    }
    return 0;
}

int tk_http_host_allowed(const tk_config_t *cfg, const char *value)
{
    char host[256];
    if (value == NULL || split_host(value, host, sizeof(host)) != 0)
        return 0;
    if (tk_http_is_loopback(host))
        return 1;
    if (cfg->listen_host && strcasecmp(host, cfg->listen_host) == 0 &&
        strcmp(cfg->listen_host, "0.0.0.0") != 0 && strcmp(cfg->listen_host, "::") != 0)
        return 1;
    for (size_t i = 0; i < cfg->nhosts; i++) {
        const char *a = cfg->allowed_hosts[i];
        if (strcasecmp(a, value) == 0 || strcasecmp(a, host) == 0)
            return 1;
    }
    return 0;
}

int tk_http_origin_allowed(const tk_config_t *cfg, const char *origin)
{
    for (size_t i = 0; i < cfg->norigins; i++)
        if (strcasecmp(cfg->allowed_origins[i], origin) == 0)
            return 1;
    const char *rest;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    else
        return 0;
    if (strchr(rest, '/') != NULL)
        return 0;
    char host[256];
    return split_host(rest, host, sizeof(host)) == 0 && tk_http_is_loopback(host);
}

/* The security headers of every response. They are not added to each
 * request's header list (two allocations and a printf apiece): out_cb writes
 * them as one block right after the status line, for our responses and for
 * the ones libevent makes itself. A handler that sets one of them (the
 * dashboard's CSP) replaces the default. */
static const struct {
    const char *name;
    const char *line;
} SEC_HEADERS[] = {
    {"X-Content-Type-Options", "X-Content-Type-Options: nosniff\r\n"},
    {"X-Frame-Options", "X-Frame-Options: DENY\r\n"},
    {"Referrer-Policy", "Referrer-Policy: no-referrer\r\n"},
    {"Content-Security-Policy",
     "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"},
    {"Cache-Control", "Cache-Control: no-store\r\n"},
    {"Strict-Transport-Security", NULL}, /* TLS only: srv->sec_block */
};
#define SEC_NHEADERS (sizeof(SEC_HEADERS) / sizeof(SEC_HEADERS[0]))

/* Append the line of header i (HSTS: from the server's block) to out. */
static size_t sec_line(const tk_http_server_t *srv, size_t i, char *out, size_t cap)
{
    const char *line = SEC_HEADERS[i].line;
    size_t n;
    if (line == NULL) { /* the server's block ends with the HSTS line, if any */
        line = memmem(srv->sec_block, srv->sec_len, "Strict-Transport-Security:", 26);
        if (line == NULL)
            return 0;
        n = srv->sec_len - (size_t)(line - srv->sec_block);
    } else {
        n = strlen(line);
    }
    if (n > cap)
        return 0;
    memcpy(out, line, n);
    return n;
}

static void build_security_block(tk_http_server_t *srv)
{
    size_t len = 0;
    for (size_t i = 0; i + 1 < SEC_NHEADERS; i++)
        len += sec_line(srv, i, srv->sec_block + len, sizeof(srv->sec_block) - len);
    if (srv->tls_on && srv->cfg->hsts_max_age_s > 0)
        len += (size_t)tk_snprintf(srv->sec_block + len, sizeof(srv->sec_block) - len,
                                   "Strict-Transport-Security: max-age=%u; includeSubDomains\r\n",
                                   srv->cfg->hsts_max_age_s);
    srv->sec_len = len;
}

/* Bit i set: the handler of req set header i of SEC_HEADERS itself. */
static unsigned sec_overridden(struct evhttp_request *req)
{
    unsigned mask = 0;
    struct evkeyvalq *h = req ? evhttp_request_get_output_headers(req) : NULL;
    if (h == NULL)
        return 0;
    for (struct evkeyval *kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        char c = kv->key[0] | 0x20;
        if (c != 'x' && c != 'r' && c != 'c' && c != 's')
            continue; /* none of ours: most headers end here */
        for (size_t i = 0; i < SEC_NHEADERS; i++)
            if (strcasecmp(kv->key, SEC_HEADERS[i].name) == 0)
                mask |= 1u << i;
    }
    return mask;
}

/* The lines to write after a status line: the server's security block,
 * less what the handler set (mask), then the connection's extra lines
 * (consumed). Returns a pointer to them (the block itself, or tmp). */
static const char *head_lines(conn_t *c, unsigned mask, char *tmp, size_t cap, size_t *len)
{
    const tk_http_server_t *srv = c->srv;
    size_t extra = c->head_extra_len;
    c->head_extra_len = 0;
    if (mask == 0 && extra == 0) {
        *len = srv->sec_len;
        return srv->sec_block;
    }
    size_t n = 0;
    for (size_t i = 0; i < SEC_NHEADERS; i++)
        if (!(mask & (1u << i)))
            n += sec_line(srv, i, tmp + n, cap - n);
    if (extra <= cap - n) {
        memcpy(tmp + n, c->head_extra, extra);
        n += extra;
    }
    *len = n;
    return tmp;
}

void tk_http_reply_json(struct evhttp_request *req, int status, const char *reason, json_t *body)
{
    size_t len;
    char *s = tk_json_dump(body, &len);
    json_decref(body);
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, s, len);
    free(s);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Type");
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_send_reply(req, status, reason, buf);
    evbuffer_free(buf);
}

static void reply_error(struct evhttp_request *req, int status, const char *reason,
                        const char *msg)
{
    tk_http_reply_json(req, status, reason, tk_rpc_error(NULL, -32000, msg));
}

/* A 429: counted by the prefix of the bucket key ("ip", "key", "sub", "ep"). */
static void note_rate_limited(tk_http_server_t *srv, const char *key)
{
    char scope[16];
    tk_snprintf(scope, sizeof(scope), "%.*s", (int)strcspn(key, ":"), key);
    tk_metrics_rate_limited(srv->metrics, scope);
    tk_alerts_note(srv->alerts, TK_ALERT_RATE_LIMITED, NULL);
}

/* One limit of a request: the bucket key and its rate (count 0: off). */
typedef struct rate_check {
    const char *key;
    const tk_rate_t *rate;
} rate_check_t;

/* v in decimal at out (no printf on the hot path); returns its length. */
static size_t put_uint(char *out, uint64_t v)
{
    char buf[20];
    size_t n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = buf[n - 1 - i];
    return n;
}

/* The RateLimit-* lines of r for c's response head, or (no connection
 * known: cannot happen on a live request) entries in req's header list. */
static void rate_headers(worker_t *w, struct evhttp_request *req, const tk_rate_result_t *r)
{
    static const char *const names[] = {"RateLimit-Limit", "RateLimit-Remaining",
                                        "RateLimit-Reset"};
    uint64_t v[] = {r->limit, r->remaining, (r->reset_ms + 999) / 1000};
    conn_t *c = conn_of(w, req);
    if (c == NULL || !c->head_pending) {
        for (size_t i = 0; i < 3; i++) {
            char d[24];
            d[put_uint(d, v[i])] = '\0';
            evhttp_add_header(evhttp_request_get_output_headers(req), names[i], d);
        }
        return;
    }
    char *o = c->head_extra; /* 3 x (19 + 2 + 20 + 2) < sizeof(head_extra) */
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(names[i]);
        memcpy(o, names[i], k);
        o += k;
        *o++ = ':';
        *o++ = ' ';
        o += put_uint(o, v[i]);
        *o++ = '\r';
        *o++ = '\n';
    }
    c->head_extra_len = (size_t)(o - c->head_extra);
}

/* Take a token from each bucket in order, stopping at the first that has
 * none. One set of RateLimit-* headers is written, for the most restrictive
 * limit taken (the fewest tokens remaining, a refusing one first, ties to
 * the later reset), as the IETF RateLimit header fields draft asks when
 * several policies apply. If a bucket refused, answer 429 (with Retry-After
 * and a JSON-RPC error body) and return 0. Called once per request. */
static int rates_ok(worker_t *w, struct evhttp_request *req, const rate_check_t *checks, size_t n)
{
    tk_http_server_t *srv = w->srv;
    tk_rate_result_t best = {0}, r;
    const char *denied = NULL;
    int have = 0;
    for (size_t i = 0; i < n && denied == NULL; i++) {
        if (checks[i].rate->count == 0)
            continue;
        if (tk_ratelimit_take(srv->rl, checks[i].key, checks[i].rate, &r) != TK_OK)
            continue; /* a key we cannot track (too long): the other limits still apply */
        if (!r.allowed)
            denied = checks[i].key;
        if (!have || !r.allowed || r.remaining < best.remaining ||
            (r.remaining == best.remaining && r.reset_ms > best.reset_ms)) {
            best = r;
            have = 1;
        }
    }
    if (!have)
        return 1;
    rate_headers(w, req, &best);
    if (denied == NULL)
        return 1;
    note_rate_limited(srv, denied);
    tk_audit_note_ratelimit(tk_audit_global(), denied); /* aggregated: one record per key per 10 s */
    char msg[96];
    msg[put_uint(msg, best.retry_after_s)] = '\0';
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", msg);
    tk_snprintf(msg, sizeof(msg), "Rate limit exceeded: retry in %u s", best.retry_after_s);
    reply_error(req, 429, "Too Many Requests", msg);
    return 0;
}

/* One limit: rates_ok for a single bucket. */
static int rate_ok(worker_t *w, struct evhttp_request *req, const char *key, const tk_rate_t *rate)
{
    rate_check_t c = {key, rate};
    return rates_ok(w, req, &c, 1);
}

/* The client's address, for per-address limits (never a forwarded-for
 * header: nothing in front of the gateway is trusted to set one). */
static void peer_key(struct evhttp_request *req, char *out, size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon)
        evhttp_connection_get_peer(evcon, &addr, &port);
    const char *a = addr ? addr : "?";
    join2(out, len, "ip:", a, strlen(a));
}

/* The bearer credential of a request, or NULL. */
static const char *bearer(struct evhttp_request *req)
{
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
        return NULL;
    a += 7;
    while (*a == ' ')
        a++;
    return *a ? a : NULL;
}

static int is_bootstrap(const tk_http_server_t *srv, const char *tok)
{
    const char *boot = srv->cfg->bearer_token;
    return boot != NULL && tk_ct_equal(tok, strlen(tok), boot, strlen(boot));
}

/* This server's own origin as the client addressed it ("https://host:port");
 * the Host header was validated before any handler runs. */
static void self_origin(const tk_http_server_t *srv, struct evhttp_request *req, char *out,
                        size_t len)
{
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    tk_snprintf(out, len, "%s://%s", srv->tls_on ? "https" : "http", host ? host : "localhost");
}

/* RFC 9728 protected-resource metadata for /mcp/<slug>. */
static void send_resource_metadata(tk_http_server_t *srv, struct evhttp_request *req,
                                   const char *slug)
{
    char origin[300];
    self_origin(srv, req, origin, sizeof(origin));
    tk_http_reply_json(req, 200, "OK",
                       json_pack("{s:s+++, s:[s], s:s, s:[s,s]}", "resource", origin, "/mcp/",
                                 slug, "", "bearer_methods_supported", "header", "resource_name",
                                 "Tumiki MCP gateway", "token_types_supported", "api_key", "jwt"));
}

/* An authentication or authorisation failure in the audit trail: the
 * reason and the address, never the credential that was presented. */
static void audit_auth(struct evhttp_request *req, const char *slug, const char *actor,
                       const char *result, int status, const char *why)
{
    char ipkey[80];
    peer_key(req, ipkey, sizeof(ipkey));
    json_t *d = json_pack("{s:s}", "reason", why);
    tk_audit_event_t ev = {.actor = actor, .action = "auth.failure", .endpoint = slug,
                           .result = result, .status = status, .ip = ipkey + 3, .detail = d};
    if (tk_audit_emit(&ev) != TK_OK)
        tk_debug(MOD, "authentication failure not audited");
    json_decref(d);
}

static void unauthorized(worker_t *w, struct evhttp_request *req, const char *slug,
                         const char *ipkey)
{
    tk_http_server_t *srv = w->srv;
    tk_metrics_auth_failure(srv->metrics, bearer(req) ? "invalid" : "missing");
    tk_alerts_note(srv->alerts, TK_ALERT_AUTH_FAILURES, NULL);
    /* failed attempts are limited per address: no brute force of keys */
    if (!rate_ok(w, req, ipkey, &srv->cfg->rate_per_ip)) {
        tk_warn(MOD, "authentication failures from %s over the limit: 429", ipkey + 3);
        return;
    }
    tk_info(MOD, "authentication failed from %s", ipkey + 3);
    audit_auth(req, slug, NULL, "error", 401,
               bearer(req) ? "invalid, expired or revoked credential" : "no bearer token");
    if (slug == NULL) { /* admin API */
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"tumiki\"");
        tk_admin_reply_error(req, 401, "unauthorized", "a valid bearer token is required");
        return;
    }
    char origin[300], v[512];
    self_origin(srv, req, origin, sizeof(origin));
    if (slug[0] == '\0') /* METRICS_SLUG: not a protected MCP resource */
        tk_snprintf(v, sizeof(v), "Bearer realm=\"tumiki\"");
    else
        tk_snprintf(v, sizeof(v),
                    "Bearer realm=\"tumiki\", resource_metadata=\"%s/.well-known/"
                    "oauth-protected-resource/mcp/%s\"",
                    origin, slug);
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", v);
    reply_error(req, 401, "Unauthorized", "Unauthorized: a valid bearer token is required");
}

static void send_metrics(tk_http_server_t *srv, struct evhttp_request *req)
{
    size_t len;
    char *text = srv->metrics ? tk_metrics_render(srv->metrics, &len) : tk_strdup("");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, srv->metrics ? len : 0);
    free(text);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Type");
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* Give req to the gateway: at once on this loop, or through the core's
 * mailbox when the HTTP loops run on threads of their own. */
static void handoff(worker_t *w, struct evhttp_request *req, const char *slug, const char *actor)
{
    tk_http_server_t *srv = w->srv;
    if (!srv->threaded) {
        tk_gateway_handle_as(srv->gw, tk_hreq_new(req, NULL, NULL), slug, actor);
        return;
    }
    handoff_t *m = tk_calloc(1, sizeof(*m));
    m->hdr.kind = TK_HMSG_HANDOFF;
    m->r = tk_hreq_new(req, w->mb, srv->core_mb);
    tk_snprintf(m->slug, sizeof(m->slug), "%s", slug);
    tk_snprintf(m->actor, sizeof(m->actor), "%s", actor ? actor : "");
    tk_mailbox_post(srv->core_mb, &m->hdr.mail);
}

/* Authenticated as ratekey: per-key and per-endpoint limits, then MCP. */
static void serve_authorized(worker_t *w, struct evhttp_request *req, const char *slug,
                             const char *ratekey)
{
    tk_http_server_t *srv = w->srv;
    rate_check_t checks[2] = {{ratekey, &srv->cfg->rate_per_key}};
    size_t n = 1;
    char epkey[TK_SLUG_MAX + 4];
    tk_rate_t ep_rate; /* a copy: the endpoint may change or go meanwhile */
    if (slug[0] != '\0' && tk_epreg_get(srv->eps, slug, &ep_rate) && ep_rate.count > 0) {
        join2(epkey, sizeof(epkey), "ep:", slug, strlen(slug));
        checks[n++] = (rate_check_t){epkey, &ep_rate};
    }
    if (!rates_ok(w, req, checks, n))
        return;
    if (slug[0] == '\0') { /* METRICS_SLUG */
        send_metrics(w->srv, req);
        return;
    }
    handoff(w, req, slug, ratekey);
}

/* Authenticated admin API caller: the per-credential limit, then the API,
 * which runs on the gateway core's loop: at once with one loop, else handed
 * over like an MCP request (its reply comes back through this loop's
 * mailbox). */
static void serve_admin(worker_t *w, struct evhttp_request *req, tk_caller_kind_t kind,
                        const char *user, const tk_principal_t *p, const char *ratekey)
{
    tk_http_server_t *srv = w->srv;
    if (!rate_ok(w, req, ratekey, &srv->cfg->rate_per_key))
        return;
    if (srv->admin == NULL) {
        tk_admin_reply_error(req, 503, "unavailable", "the admin API is unavailable");
        return;
    }
    handoff_t *m = tk_calloc(1, sizeof(*m));
    m->hdr.kind = TK_HMSG_HANDOFF;
    m->admin = 1;
    m->caller.kind = kind;
    tk_snprintf(m->caller.user, sizeof(m->caller.user), "%s", user);
    if (p != NULL) {
        tk_snprintf(m->caller.key_id, sizeof(m->caller.key_id), "%s", p->key_id);
        tk_snprintf(m->caller.scopes, sizeof(m->caller.scopes), "%s", p->scopes);
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path != NULL && strlen(path) < sizeof(m->path)) /* else "": no such route */
        tk_snprintf(m->path, sizeof(m->path), "%s", path);
    if (!srv->threaded) {
        m->r = tk_hreq_new(req, NULL, NULL);
        tk_admin_handle(srv->admin, m->r, m->path, &m->caller);
        free(m);
        return;
    }
    m->r = tk_hreq_new(req, w->mb, srv->core_mb);
    tk_mailbox_post(srv->core_mb, &m->hdr.mail);
}

/* A verified API key may only be used on its own endpoint, with the "mcp"
 * scope (slug NULL: the admin API, which checks the "admin" scope). */
static void serve_principal(worker_t *w, struct evhttp_request *req, const char *slug,
                            const tk_principal_t *p)
{
    char ratekey[TK_APIKEY_ID_LEN + 8];
    join2(ratekey, sizeof(ratekey), "key:", p->key_id, strlen(p->key_id));
    if (slug == NULL) {
        serve_admin(w, req, TK_CALLER_KEY, p->owner, p, ratekey);
        return;
    }
    if (!tk_scopes_has(p->scopes, TK_SCOPE_MCP)) {
        tk_metrics_auth_failure(w->srv->metrics, "forbidden");
        audit_auth(req, slug, ratekey, "denied", 403, "key lacks the mcp scope");
        reply_error(req, 403, "Forbidden", "Forbidden: this key lacks the \"mcp\" scope");
        return;
    }
    if (strcmp(p->endpoint, "*") != 0 && strcmp(p->endpoint, slug) != 0) {
        tk_metrics_auth_failure(w->srv->metrics, "forbidden");
        char actor[TK_APIKEY_ID_LEN + 8];
        tk_snprintf(actor, sizeof(actor), "key:%s", p->key_id);
        audit_auth(req, slug, actor, "denied", 403, "key not valid for this endpoint");
        reply_error(req, 403, "Forbidden", "Forbidden: this key is not valid for this endpoint");
        return;
    }
    serve_authorized(w, req, slug, ratekey);
}

static void key_verified(void *arg, int status, const tk_principal_t *p)
{
    pending_auth_t *pa = arg;
    tk_map_del(pa->w->verifying, pa->handle);
    const char *slug = pa->admin ? NULL : pa->slug;
    if (status == TK_OK)
        serve_principal(pa->w, pa->req, slug, p);
    else if (status == TK_EIO)
        reply_error(pa->req, 503, "Service Unavailable", "key store unavailable");
    else
        unauthorized(pa->w, pa->req, slug, pa->ipkey);
    free(pa);
}

/* An HS256 JWT: verified on the loop (an HMAC), then the revocation list. */
static void authenticate_jwt(worker_t *w, struct evhttp_request *req, const char *slug,
                             const char *ipkey, const char *tok, size_t len)
{
    tk_http_server_t *srv = w->srv;
    const tk_config_t *cfg = srv->cfg;
    tk_jwt_keys_t keys = {cfg->jwt_key, cfg->jwt_keylen, cfg->jwt_issuer, cfg->jwt_audience};
    tk_jwt_claims_t c;
    const char *why;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (tk_jwt_verify(&keys, tok, len, (int64_t)ts.tv_sec, &c, &why) != TK_OK) {
        tk_info(MOD, "JWT refused: %s", why);
        unauthorized(w, req, slug, ipkey);
        return;
    }
    if (w->ka == NULL || tk_keyauth_jti_revoked(w->ka, c.jti)) {
        tk_info(MOD, "JWT refused: jti %s is revoked", c.jti);
        unauthorized(w, req, slug, ipkey);
        return;
    }
    char ratekey[TK_JWT_FIELD_MAX + 8];
    tk_snprintf(ratekey, sizeof(ratekey), "sub:%s", c.sub);
    if (slug == NULL) {
        serve_admin(w, req, TK_CALLER_JWT, c.sub, NULL, ratekey);
        return;
    }
    if (strcmp(c.endpoint, "*") != 0 && strcmp(c.endpoint, slug) != 0) {
        tk_metrics_auth_failure(srv->metrics, "forbidden");
        char actor[TK_JWT_FIELD_MAX + 8];
        tk_snprintf(actor, sizeof(actor), "sub:%s", c.sub);
        audit_auth(req, slug, actor, "denied", 403, "token not valid for this endpoint");
        reply_error(req, 403, "Forbidden", "Forbidden: this token is not valid for this endpoint");
        return;
    }
    serve_authorized(w, req, slug, ratekey);
}

/* A dashboard session (cookie, CSRF token and Origin for state changes) as
 * the admin API's caller. 0 if the request carries no session cookie. */
static int serve_session(worker_t *w, struct evhttp_request *req)
{
    char self[300], ratekey[TK_STORE_ID_MAX + 8];
    tk_session_t s;
    self_origin(w->srv, req, self, sizeof(self));
    int rc = tk_login_principal(w->login, req, self, &s);
    if (rc == TK_ENOENT)
        return 0;
    if (rc != TK_OK) {
        tk_login_refuse(req, rc);
        return 1;
    }
    tk_snprintf(ratekey, sizeof(ratekey), "user:%s", s.user_id);
    serve_admin(w, req, TK_CALLER_SESSION, s.user_id, NULL, ratekey);
    OPENSSL_cleanse(&s, sizeof(s));
    return 1;
}

static void authenticate(worker_t *w, struct evhttp_request *req, const char *slug,
                         const char *ipkey)
{
    tk_http_server_t *srv = w->srv;
    const char *tok = bearer(req);
    if (tok == NULL) {
        unauthorized(w, req, slug, ipkey);
        return;
    }
    if (is_bootstrap(srv, tok)) {
        if (slug == NULL)
            serve_admin(w, req, TK_CALLER_BOOTSTRAP, "", NULL, "key:bootstrap");
        else
            serve_authorized(w, req, slug, "key:bootstrap");
        return;
    }
    size_t toklen = strlen(tok);
    if (srv->cfg->jwt_key != NULL && tk_jwt_looks_like(tok, toklen)) {
        authenticate_jwt(w, req, slug, ipkey, tok, toklen);
        return;
    }
    if (w->ka == NULL) {
        unauthorized(w, req, slug, ipkey);
        return;
    }
    pending_auth_t *pa = tk_calloc(1, sizeof(*pa));
    tk_principal_t p;
    int rc = tk_keyauth_verify(w->ka, tok, strlen(tok), &p, key_verified, pa, &pa->handle);
    if (rc == 0) { /* answered later by key_verified */
        pa->w = w;
        pa->req = req;
        tk_snprintf(pa->slug, sizeof(pa->slug), "%s", slug != NULL ? slug : "");
        pa->admin = slug == NULL;
        tk_snprintf(pa->ipkey, sizeof(pa->ipkey), "%s", ipkey);
        tk_map_put(w->verifying, pa->handle, pa);
        return;
    }
    free(pa);
    if (rc == 1)
        serve_principal(w, req, slug, &p);
    else if (rc == TK_ELIMIT)
        reply_error(req, 503, "Service Unavailable", "too many key verifications in progress");
    else
        unauthorized(w, req, slug, ipkey);
}

static void add_cors(struct evhttp_request *req, const char *origin)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Access-Control-Allow-Origin", origin);
    evhttp_add_header(h, "Vary", "Origin");
    evhttp_add_header(h, "Access-Control-Expose-Headers",
                      "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Retry-After, "
                      "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset");
}

static void handle_preflight(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Access-Control-Allow-Methods", "GET, POST, DELETE");
    evhttp_add_header(h, "Access-Control-Allow-Headers",
                      "Authorization, Content-Type, Accept, Mcp-Session-Id, "
                      "MCP-Protocol-Version, Last-Event-ID");
    evhttp_add_header(h, "Access-Control-Max-Age", "600");
    evhttp_send_reply(req, 204, "No Content", NULL);
}

/* Framing that request smuggling relies on: more than one Host or
 * Content-Length, Content-Length together with Transfer-Encoding, or an
 * absolute-form target naming another host. Returns a reason, or NULL. */
static const char *ambiguous_framing(const tk_config_t *cfg, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *h;
    int hosts = 0, lengths = 0, te = 0;
    for (h = in->tqh_first; h != NULL; h = h->next.tqe_next) {
        if (!strcasecmp(h->key, "Host"))
            hosts++;
        else if (!strcasecmp(h->key, "Content-Length"))
            lengths++;
        else if (!strcasecmp(h->key, "Transfer-Encoding"))
            te++;
    }
    if (hosts > 1)
        return "more than one Host header";
    if (lengths > 1)
        return "more than one Content-Length header";
    if (lengths && te)
        return "both Content-Length and Transfer-Encoding";
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *uhost = uri ? evhttp_uri_get_host(uri) : NULL;
    if (uhost != NULL && !tk_http_host_allowed(cfg, uhost))
        return "absolute-form target names a foreign host";
    return NULL;
}

/* "/mcp/<slug>" -> slug; "/mcp" -> "default". */
static int mcp_slug(const char *path, char *slug, size_t len)
{
    if (strcmp(path, "/mcp") == 0 || strcmp(path, "/mcp/") == 0) {
        join2(slug, len, "", "default", 7);
        return 0;
    }
    if (strncmp(path, "/mcp/", 5) != 0)
        return -1;
    path += 5;
    size_t n = strspn(path, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (n == 0 || n > TK_SLUG_MAX || (path[n] != '\0' && strcmp(path + n, "/") != 0))
        return -1;
    join2(slug, len, "", path, n);
    return 0;
}

/* The endpoint label of a finished request: the slug of an endpoint served
 * now (the config's or one made through the API), the path of a fixed route, or "_other" (clients cannot grow it). */
static void route_label(const tk_http_server_t *srv, struct evhttp_request *req, char *out,
                        size_t len)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    static const char *const fixed[] = {"/healthz", "/readyz", "/metrics"};
    join2(out, len, "", "_other", 6);
    if (path == NULL)
        return;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcmp(path, fixed[i]) == 0) {
            join2(out, len, "", fixed[i], strlen(fixed[i]));
            return;
        }
    char slug[TK_SLUG_MAX + 1];
    if (mcp_slug(path, slug, sizeof(slug)) == 0 && tk_epreg_get(srv->eps, slug, NULL))
        join2(out, len, "", slug, strlen(slug));
}

/* ---- connections ---- */

static int conn_released(const conn_t *c)
{
    bufferevent_data_cb r, w;
    bufferevent_event_cb e;
    bufferevent_getcb(c->bev, &r, &w, &e, NULL);
    return r == NULL && e == NULL;
}

static void conn_release(conn_t *c)
{
    tk_metrics_connections(c->srv->metrics, -1);
    tk_map_del(c->w->conns, (uint64_t)(uintptr_t)c->bev);
    atomic_fetch_sub(&c->srv->nconns, 1);
    event_free(c->deadline);
    bufferevent_decref(c->bev); /* the last reference: closes the socket */
    free(c);
}

static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;
    (void)fd;
    (void)what;
    if (conn_released(c)) {
        conn_release(c);
        return;
    }
    evutil_socket_t s = bufferevent_getfd(c->bev);
    if (s < 0)
        return;
    /* our reference keeps the socket open, so this is still the client's
     * connection; evhttp sees EOF and frees it */
    tk_debug(MOD, "closing a connection without a complete request in time");
    shutdown(s, SHUT_RDWR);
}

static void conn_arm(conn_t *c, uint32_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->deadline, &tv);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    size_t it = 0, n = 0;
    void *val;
    conn_t **gone = tk_calloc(tk_map_count(w->conns) + 1, sizeof(*gone));
    while (tk_map_next(w->conns, &it, NULL, NULL, &val))
        if (conn_released(val))
            gone[n++] = val;
    for (size_t i = 0; i < n; i++)
        conn_release(gone[i]);
    free(gone);
}

/* Copy up to n bytes at offset start of buf into out; returns how many.
 * evbuffer_peek, not evbuffer_copyout: a socket bufferevent's output is
 * frozen at its start after its first write, and copyout refuses then. */
static size_t peek_at(struct evbuffer *buf, size_t start, char *out, size_t n)
{
    struct evbuffer_ptr p;
    struct evbuffer_iovec v[2];
    if (evbuffer_ptr_set(buf, &p, start, EVBUFFER_PTR_SET) != 0)
        return 0;
    int nv = evbuffer_peek(buf, (ev_ssize_t)n, &p, v, 2);
    size_t got = 0;
    for (int i = 0; i < nv && i < 2 && got < n; i++) {
        size_t k = v[i].iov_len < n - got ? v[i].iov_len : n - got;
        memcpy(out + got, v[i].iov_base, k);
        got += k;
    }
    return got;
}

/* Insert the security block after the status line of a response head
 * added in one piece at offset start of buf (100 Continue). Returns 1 if it
 * was inserted. */
static int patch_head(conn_t *c, struct evbuffer *buf, size_t start, unsigned mask)
{
    struct evbuffer_ptr from, end, eol;
    char head[5];
    if (peek_at(buf, start, head, 5) != 5 || memcmp(head, "HTTP/", 5) != 0 ||
        evbuffer_ptr_set(buf, &from, start, EVBUFFER_PTR_SET) != 0)
        return 0;
    end = evbuffer_search(buf, "\r\n\r\n", 4, &from);
    eol = evbuffer_search(buf, "\r\n", 2, &from);
    if (end.pos < 0 || eol.pos < 0 ||
        evbuffer_search_range(buf, "X-Content-Type-Options", 22, &from, &end).pos >= 0)
        return 0;
    char tmpb[sizeof(c->srv->sec_block) + sizeof(c->head_extra)];
    size_t blen;
    const char *block = head_lines(c, mask, tmpb, sizeof(tmpb), &blen);
    struct evbuffer *tmp = evbuffer_new();
    /* the bufferevent keeps its output frozen at the start except while it
     * writes (and re-freezes it then): the same here */
    evbuffer_unfreeze(buf, 1);
    evbuffer_remove_buffer(buf, tmp, (size_t)eol.pos + 2);
    evbuffer_add(tmp, block, blen);
    evbuffer_add_buffer(tmp, buf);
    evbuffer_add_buffer(buf, tmp);
    evbuffer_freeze(buf, 1);
    evbuffer_free(tmp);
    return 1;
}

/* Whether the n bytes just added at offset start are one status line
 * ("HTTP/1.1 200 OK\r\n"): how evhttp begins every response head it writes
 * (evhttp_make_header), ours and its own error pages alike. */
static int added_status_line(struct evbuffer *buf, size_t start, size_t n)
{
    char line[128];
    if (n < 14 || n > sizeof(line) || peek_at(buf, start, line, n) != n)
        return 0;
    return memcmp(line, "HTTP/", 5) == 0 && line[n - 2] == '\r' &&
           memchr(line, '\n', n) == line + n - 1;
}

/* Every response gets the security block right after its status line,
 * appended to it as evhttp writes it: for our responses (the first thing
 * written after on_request took the request; what its handler set itself is
 * left out of the block) and for those libevent makes on its own outside a
 * request (413 body too large, 400 unparsable request, oversized headers),
 * which no handler sees. 100 Continue comes in one piece and is patched. */
static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    conn_t *c = arg;
    if (c->patching || info->n_added == 0 || (c->in_request && !c->head_pending))
        return;
    c->patching = 1;
    unsigned mask = c->in_request ? sec_overridden(c->req) : 0;
    if (added_status_line(buf, info->orig_size, info->n_added)) {
        char tmpb[sizeof(c->srv->sec_block) + sizeof(c->head_extra)];
        size_t blen;
        const char *block = head_lines(c, mask, tmpb, sizeof(tmpb), &blen);
        evbuffer_add(buf, block, blen);
        c->head_pending = 0;
    } else if (patch_head(c, buf, info->orig_size, mask)) {
        c->head_pending = 0;
    }
    c->patching = 0;
}

static void request_done_cb(struct evhttp_request *req, void *arg)
{
    conn_t *c = arg;
    if (c->srv->metrics) {
        char label[TK_SLUG_MAX + 16];
        route_label(c->srv, req, label, sizeof(label));
        tk_metrics_http_request(c->srv->metrics, label, evhttp_request_get_response_code(req),
                                tk_metrics_now() - c->started);
    }
    c->in_request = 0;
    c->req = NULL;
    c->head_pending = 0;
    c->head_extra_len = 0;
    conn_arm(c, c->srv->cfg->idle_timeout_ms); /* waiting for the next request */
}

static void conn_request_started(worker_t *w, struct evhttp_request *req)
{
    conn_t *c = conn_of(w, req);
    if (c == NULL)
        return;
    evtimer_del(c->deadline);
    c->in_request = 1;
    c->req = req;
    c->head_pending = 1;
    c->head_extra_len = 0;
    c->started = tk_metrics_now();
    evhttp_request_set_on_complete_cb(req, request_done_cb, c);
}

/* evhttp asks for the bufferevent of each connection it accepts (it sets
 * the socket on it right after). */
static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
    worker_t *w = arg;
    tk_http_server_t *srv = w->srv;
    struct bufferevent *bev;
    if (srv->tls_on) {
        pthread_mutex_lock(&srv->tls_mu); /* SIGHUP may swap the context */
        SSL *ssl = SSL_new(srv->tls);
        pthread_mutex_unlock(&srv->tls_mu);
        bev = ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                   BEV_OPT_CLOSE_ON_FREE)
                  : NULL;
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == NULL)
        return NULL;
    conn_t *c = tk_calloc(1, sizeof(*c));
    c->srv = srv;
    c->w = w;
    c->bev = bev;
    bufferevent_incref(bev);
    evbuffer_add_cb(bufferevent_get_output(bev), out_cb, c);
    c->deadline = evtimer_new(base, conn_deadline_cb, c);
    tk_map_put(w->conns, (uint64_t)(uintptr_t)bev, c);
    tk_metrics_connections(srv->metrics, 1);
    if (atomic_fetch_add(&srv->nconns, 1) + 1 > srv->cfg->max_connections) {
        if (w->refused++ % 1000 == 0)
            tk_warn(MOD, "cutting connections: more than %u open (limits.max_connections)",
                    srv->cfg->max_connections);
        conn_arm(c, 0); /* cut it off once evhttp has given it its socket */
    } else {
        conn_arm(c, srv->cfg->header_timeout_ms);
    }
    return bev;
}

/* GET /readyz: 200 once the listener is up, the key store open and every
 * upstream has finished its first start attempt; else 503 naming what is
 * still pending. */
static void send_readiness(worker_t *w, struct evhttp_request *req)
{
    tk_http_server_t *srv = w->srv;
    json_t *waiting = json_array();
    if (srv->sock == NULL)
        json_array_append_new(waiting, json_string("listener"));
    if (w->ka == NULL)
        json_array_append_new(waiting, json_string("store"));
    tk_gateway_pending_servers(srv->gw, waiting);
    if (json_array_size(waiting) == 0) {
        json_decref(waiting);
        tk_http_reply_json(req, 200, "OK", json_pack("{s:s}", "status", "ready"));
        return;
    }
    tk_http_reply_json(req, 503, "Service Unavailable",
               json_pack("{s:s, s:o}", "status", "not ready", "waiting", waiting));
}

/* /metrics and /readyz: GET or HEAD. /metrics needs a credential valid for
 * every endpoint unless metrics.require_auth is false (loopback only). */
static void serve_monitoring(worker_t *w, struct evhttp_request *req, const char *path,
                             const char *ipkey)
{
    tk_http_server_t *srv = w->srv;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_error(req, 405, "Method Not Allowed", "Method not allowed");
        return;
    }
    if (strcmp(path, "/metrics") == 0 && srv->cfg->metrics_require_auth) {
        authenticate(w, req, METRICS_SLUG, ipkey);
        return;
    }
    if (!rate_ok(w, req, ipkey, &srv->cfg->rate_per_ip))
        return;
    if (strcmp(path, "/metrics") == 0)
        send_metrics(srv, req);
    else
        send_readiness(w, req);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    worker_t *w = arg;
    tk_http_server_t *srv = w->srv;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    conn_request_started(w, req);

    const char *bad = ambiguous_framing(srv->cfg, req);
    if (bad != NULL) {
        tk_warn(MOD, "rejected an ambiguous request: %s", bad);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        char msg[96];
        tk_snprintf(msg, sizeof(msg), "Bad Request: %s", bad);
        reply_error(req, 400, "Bad Request", msg);
        return;
    }
    const char *host = evhttp_find_header(in, "Host");
    if (!tk_http_host_allowed(srv->cfg, host)) {
        tk_warn(MOD, "rejected request with a foreign Host header");
        reply_error(req, 403, "Forbidden", "Forbidden: Host header is not allowed");
        return;
    }
    const char *origin = evhttp_find_header(in, "Origin");
    if (origin != NULL) {
        if (!tk_http_origin_allowed(srv->cfg, origin)) {
            tk_warn(MOD, "rejected request with a foreign Origin header");
            reply_error(req, 403, "Forbidden", "Forbidden: Origin is not allowed");
            return;
        }
        add_cors(req, origin);
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL)
        path = "/";
    char ipkey[80];
    peer_key(req, ipkey, sizeof(ipkey));
    static const char prm[] = "/.well-known/oauth-protected-resource";
    if (strncmp(path, prm, sizeof(prm) - 1) == 0) {
        char prm_slug[TK_SLUG_MAX + 1];
        if (!rate_ok(w, req, ipkey, &srv->cfg->rate_per_ip))
            return;
        const char *rest = path + sizeof(prm) - 1;
        if (mcp_slug(*rest ? rest : "/mcp", prm_slug, sizeof(prm_slug)) != 0 ||
            !tk_epreg_get(srv->eps, prm_slug, NULL)) {
            reply_error(req, 404, "Not Found", "Not Found");
            return;
        }
        send_resource_metadata(srv, req, prm_slug);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        if (!rate_ok(w, req, ipkey, &srv->cfg->rate_per_ip))
            return;
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
            reply_error(req, 405, "Method Not Allowed", "Method not allowed");
            return;
        }
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, "ok\n", 3);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
        return;
    }
    if (strcmp(path, "/metrics") == 0 || strcmp(path, "/readyz") == 0) {
        serve_monitoring(w, req, path, ipkey);
        return;
    }
    {
        char self[300];
        self_origin(srv, req, self, sizeof(self));
        if (tk_login_route(w->login, req, path, ipkey, self))
            return;
    }
    if (tk_admin_path(path)) { /* /api/v1: authenticated like MCP, slug NULL */
        if (cmd == EVHTTP_REQ_OPTIONS)
            handle_preflight(req);
        else if (bearer(req) != NULL || !serve_session(w, req))
            authenticate(w, req, NULL, ipkey);
        return;
    }
    char slug[TK_SLUG_MAX + 1];
    if (mcp_slug(path, slug, sizeof(slug)) != 0) {
        reply_error(req, 404, "Not Found", "Not Found");
        return;
    }
    if (cmd == EVHTTP_REQ_OPTIONS) {
        handle_preflight(req);
        return;
    }
    authenticate(w, req, slug, ipkey);
}

/* Listen on the first loop; the others accept on duplicates of its socket
 * (each loop then takes the connections it accepts). */
static int listen_on(tk_http_server_t *srv, char *err, size_t errlen)
{
    const tk_config_t *cfg = srv->cfg;
    srv->sock = evhttp_bind_socket_with_handle(srv->workers[0].http, cfg->listen_host,
                                               cfg->listen_port);
    if (srv->sock == NULL) {
        tk_snprintf(err, errlen, "cannot listen on %s:%u", cfg->listen_host,
                    (unsigned)cfg->listen_port);
        return TK_EIO;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(srv->sock);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            srv->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    for (size_t i = 1; i < srv->nworkers; i++) {
        evutil_socket_t dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd < 0 || evhttp_accept_socket_with_handle(srv->workers[i].http, dup_fd) == NULL) {
            if (dup_fd >= 0)
                close(dup_fd);
            tk_snprintf(err, errlen, "cannot share the listening socket with thread %zu", i);
            return TK_EIO;
        }
    }
    return TK_OK;
}

int tk_http_server_reload_tls(tk_http_server_t *srv, char *err, size_t errlen)
{
    if (!srv->tls_on) {
        tk_snprintf(err, errlen, "not serving TLS");
        return TK_ESTATE;
    }
    SSL_CTX *ctx;
    int rc = tk_tls_ctx_load(srv->cfg->tls_cert_file, srv->cfg->tls_key_file, &ctx, err, errlen);
    if (rc != TK_OK)
        return rc; /* keep serving with the old context */
    pthread_mutex_lock(&srv->tls_mu); /* every loop takes it for its next connection */
    SSL_CTX *old = srv->tls;
    srv->tls = ctx;
    pthread_mutex_unlock(&srv->tls_mu);
    SSL_CTX_free(old); /* open connections hold their own reference */
    return TK_OK;
}

void tk_http_server_set_monitoring(tk_http_server_t *srv, tk_metrics_t *metrics,
                                   tk_alerts_t *alerts)
{
    srv->metrics = metrics;
    srv->alerts = alerts;
    tk_metrics_connections(metrics, (int)atomic_load(&srv->nconns));
}

size_t tk_http_server_connections(const tk_http_server_t *srv)
{
    return atomic_load(&srv->nconns);
}

size_t tk_http_server_threads(const tk_http_server_t *srv)
{
    return srv->nworkers;
}

/* ---- loops and threads ---- */

/* The core's mailbox: requests to serve and clients that went away. */
static void core_deliver(void *arg, tk_mail_t *m)
{
    tk_http_server_t *srv = arg;
    tk_hmsg_t *h = (tk_hmsg_t *)m;
    if (h->kind == TK_HMSG_HANDOFF) {
        handoff_t *ho = (handoff_t *)h;
        if (ho->admin && srv->admin == NULL) /* shutting down */
            tk_hreq_release(ho->r);
        else if (ho->admin)
            tk_admin_handle(srv->admin, ho->r, ho->path, &ho->caller);
        else
            tk_gateway_handle_as(srv->gw, ho->r, ho->slug, ho->actor[0] ? ho->actor : NULL);
        free(ho);
    } else {
        tk_hreq_run_closed(h);
    }
}

/* A user's key is gone (admin API, core loop): drop it from every loop's
 * key cache, each on its own thread. */
static void forget_key(void *arg, const char *key_id)
{
    tk_http_server_t *srv = arg;
    for (size_t i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        if (!srv->threaded) {
            if (w->ka != NULL)
                tk_keyauth_forget(w->ka, key_id);
            continue;
        }
        forget_msg_t *m = tk_calloc(1, sizeof(*m));
        m->hdr.kind = TK_HMSG_FORGET;
        tk_snprintf(m->key_id, sizeof(m->key_id), "%s", key_id);
        tk_mailbox_post(w->mb, &m->hdr.mail);
    }
}

/* A worker's mailbox: output for its requests, a key to forget, or the
 * order to stop. */
static void worker_deliver(void *arg, tk_mail_t *m)
{
    worker_t *w = arg;
    tk_hmsg_t *h = (tk_hmsg_t *)m;
    if (h->kind == TK_HMSG_OP) {
        tk_hreq_run_op(h);
    } else if (h->kind == TK_HMSG_FORGET) {
        if (w->ka != NULL)
            tk_keyauth_forget(w->ka, ((forget_msg_t *)h)->key_id);
        free(h);
    } else {
        free(h);
        event_base_loopbreak(w->base);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static int worker_init(tk_http_server_t *srv, worker_t *w, struct event_base *base, char *err,
                       size_t errlen)
{
    const tk_config_t *cfg = srv->cfg;
    w->srv = srv;
    if (base == NULL) {
        struct event_config *ecfg = event_config_new();
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        base = event_base_new_with_config(ecfg);
        event_config_free(ecfg);
        if (base == NULL) {
            tk_snprintf(err, errlen, "cannot create an event loop");
            return TK_EIO;
        }
        w->base = base;
        w->own_base = 1;
        w->mb = tk_mailbox_create(base, worker_deliver, w);
        if (w->mb == NULL) {
            tk_snprintf(err, errlen, "cannot create a thread mailbox");
            return TK_EIO;
        }
    } else {
        w->base = base;
    }
    w->http = evhttp_new(base);
    w->conns = tk_map_create();
    w->verifying = tk_map_create();
    char *db = tk_asprintf("%s/tumiki.db", cfg->data_dir);
    w->ka = tk_keyauth_create(base, db, 60000, err, errlen);
    int rc = w->ka == NULL ? TK_EIO
                           : tk_login_create(base, cfg, db, srv->login_shared, &w->login, err, errlen);
    free(db);
    if (rc != TK_OK)
        return rc;
    w->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, w);
    struct timeval one = {1, 0};
    evtimer_add(w->sweep, &one);
    evhttp_set_max_headers_size(w->http, MAX_HEADERS_BYTES);
    evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body_bytes);
    evhttp_set_timeout(w->http, IO_TIMEOUT_S);
    /* every method reaches on_request, so unsupported ones get a JSON 405
     * with the security headers rather than libevent's HTML 501 */
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
    evhttp_set_default_content_type(w->http, "application/json");
    evhttp_set_gencb(w->http, on_request, w);
    evhttp_set_bevcb(w->http, bev_cb, w);
    return TK_OK;
}

static int start_threads(tk_http_server_t *srv, char *err, size_t errlen)
{
    /* signals stay with the main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = TK_OK;
    for (size_t i = 0; i < srv->nworkers && rc == TK_OK; i++) {
        worker_t *w = &srv->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            tk_snprintf(err, errlen, "cannot start HTTP thread %zu", i);
            rc = TK_EIO;
        } else {
            w->started = 1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int tk_http_server_create(struct event_base *base, const tk_config_t *cfg, tk_gateway_t *gw,
                          tk_http_server_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!tk_http_is_loopback(cfg->listen_host) && cfg->bearer_token == NULL) {
        tk_snprintf(err, errlen,
                    "refusing to listen on %s without authentication: configure auth "
                    "(auth.bearer_token_env / TUMIKI_TOKEN) or listen on 127.0.0.1",
                    cfg->listen_host);
        return TK_EINVAL;
    }
    tk_http_server_t *srv = tk_calloc(1, sizeof(*srv));
    srv->base = base;
    srv->cfg = cfg;
    srv->gw = gw;
    srv->eps = tk_gateway_endpoints(gw);
    pthread_mutex_init(&srv->tls_mu, NULL);
    atomic_init(&srv->nconns, 0);
    srv->rl = tk_ratelimit_local_create(cfg->rate_max_keys);
    srv->threaded = cfg->threads > 1;
    srv->nworkers = srv->threaded ? cfg->threads : 1;
    srv->workers = tk_calloc(srv->nworkers, sizeof(worker_t));
    srv->login_shared = tk_login_shared_create(cfg);
    if (srv->threaded) {
        srv->core_mb = tk_mailbox_create(base, core_deliver, srv);
        if (srv->core_mb == NULL) {
            tk_snprintf(err, errlen, "cannot create the gateway mailbox");
            tk_http_server_destroy(srv);
            return TK_EIO;
        }
    }
    for (size_t i = 0; i < srv->nworkers; i++) {
        int rc = worker_init(srv, &srv->workers[i], srv->threaded ? NULL : base, err, errlen);
        if (rc != TK_OK) {
            tk_http_server_destroy(srv);
            return rc;
        }
    }
    {
        /* the admin API (and the stored tool selections it applies to the
         * gateway at start) lives on the core loop */
        char *db = tk_asprintf("%s/tumiki.db", cfg->data_dir);
        int rc = tk_admin_create(base, cfg, gw, forget_key, srv, db, &srv->admin, err, errlen);
        free(db);
        if (rc != TK_OK) {
            tk_http_server_destroy(srv);
            return rc;
        }
    }
    if (cfg->tls_cert_file) {
        int rc = tk_tls_ctx_load(cfg->tls_cert_file, cfg->tls_key_file, &srv->tls, err, errlen);
        if (rc != TK_OK) {
            tk_http_server_destroy(srv);
            return rc;
        }
        srv->tls_on = 1;
    }
    build_security_block(srv);
    if (listen_on(srv, err, errlen) != TK_OK ||
        (srv->threaded && start_threads(srv, err, errlen) != TK_OK)) {
        tk_http_server_destroy(srv);
        return TK_EIO;
    }
    if (srv->threaded)
        tk_info(MOD, "serving HTTP on %zu threads", srv->nworkers);
    if (cfg->bearer_token == NULL)
        tk_warn(MOD, "no bearer token configured: every MCP request will be refused (set "
                     "TUMIKI_TOKEN or auth in the config)");
    *out = srv;
    return TK_OK;
}

static void worker_stop(worker_t *w)
{
    if (!w->started)
        return;
    tk_hmsg_t *m = tk_calloc(1, sizeof(*m));
    m->kind = TK_HMSG_STOP;
    tk_mailbox_post(w->mb, &m->mail);
    pthread_join(w->thread, NULL);
    w->started = 0;
}

/* Free a loop's connections (their close notices reach the core's mailbox,
 * or the gateway at once); runs after the loop's thread has ended. */
static void worker_close(worker_t *w)
{
    tk_keyauth_destroy(w->ka); /* no verification callback runs after this */
    w->ka = NULL;
    tk_login_destroy(w->login); /* nor a login's, while its connection still exists */
    w->login = NULL;
    if (w->verifying) {
        size_t vit = 0;
        void *pv;
        while (tk_map_next(w->verifying, &vit, NULL, NULL, &pv))
            free(pv); /* their requests go with their connections below */
        tk_map_destroy(w->verifying);
        w->verifying = NULL;
    }
    if (w->http)
        evhttp_free(w->http); /* frees its connections; ours are then released */
    w->http = NULL;
    if (w->conns == NULL)
        return;
    size_t it = 0, n = 0;
    void *val;
    conn_t **all = tk_calloc(tk_map_count(w->conns) + 1, sizeof(*all));
    while (tk_map_next(w->conns, &it, NULL, NULL, &val))
        all[n++] = val;
    for (size_t i = 0; i < n; i++)
        conn_release(all[i]);
    free(all);
}

static void worker_free(worker_t *w)
{
    tk_map_destroy(w->conns);
    if (w->sweep)
        event_free(w->sweep);
    tk_mailbox_destroy(w->mb); /* delivers what is left: output for closed requests */
    if (w->own_base)
        event_base_free(w->base);
}

void tk_http_server_destroy(tk_http_server_t *srv)
{
    if (srv == NULL)
        return;
    for (size_t i = 0; i < srv->nworkers; i++)
        worker_stop(&srv->workers[i]);
    tk_admin_destroy(srv->admin); /* pending admin requests are released unanswered */
    srv->admin = NULL;           /* and those still in the core's mailbox too */
    /* the threads are gone: their loops' state is ours now */
    for (size_t i = 0; i < srv->nworkers; i++)
        worker_close(&srv->workers[i]);
    /* let the gateway see every pending request and disconnect; what it
     * ends lands in the workers' mailboxes, emptied by worker_free */
    if (srv->core_mb)
        tk_mailbox_destroy(srv->core_mb);
    for (size_t i = 0; i < srv->nworkers; i++)
        worker_free(&srv->workers[i]);
    free(srv->workers);
    tk_login_shared_destroy(srv->login_shared); /* after every loop's login */
    tk_ratelimit_destroy(srv->rl);
    SSL_CTX_free(srv->tls);
    pthread_mutex_destroy(&srv->tls_mu);
    free(srv);
}
