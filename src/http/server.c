/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP listener: limits, security headers, CORS for allowed origins,
 * Host/Origin validation, bootstrap bearer authentication and routing.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
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
#include "auth/jwt.h"
#include "auth/keyauth.h"
#include "core/map.h"
#include "http/tls.h"
#include "mcp/jsonrpc.h"
#include "state/ratelimit.h"

#define MOD "http"
#define MAX_HEADERS_BYTES (16 * 1024)
#define IO_TIMEOUT_S 60

/* One client connection. evhttp owns it; we keep a reference on its
 * bufferevent so that its socket stays valid for our deadline until we see
 * that evhttp has let go of it (bufferevent_free clears the callbacks), which
 * gives an exact count of open connections and a safe handle to cut one off. */
typedef struct conn {
    tk_http_server_t *srv;
    struct bufferevent *bev;
    struct event *deadline; /* the next complete request must arrive by then */
    int in_request;         /* on_request has this connection's current request */
    int patching;           /* re-entry guard for out_cb */
} conn_t;

struct tk_http_server {
    struct event_base *base;
    const tk_config_t *cfg;
    tk_gateway_t *gw;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    SSL_CTX *tls;       /* NULL: plain HTTP */
    tk_map_t *conns;    /* bufferevent -> conn_t */
    struct event *sweep; /* releases connections evhttp has freed */
    int port;
    unsigned long refused; /* connections cut at max_connections */
    tk_ratelimit_t *rl;    /* per key, per endpoint, per address */
    tk_keyauth_t *ka;      /* API keys (NULL: only the bootstrap token) */
    tk_map_t *verifying;   /* API-key checks in flight: handle -> pending_auth_t */
    tk_login_t *login;     /* dashboard login, sessions and files */
    tk_admin_t *admin;     /* /api/v1 */
};

/* A request waiting for its API key to be verified off the loop. */
typedef struct pending_auth {
    tk_http_server_t *srv;
    struct evhttp_request *req;
    uint64_t handle;
    char slug[TK_SLUG_MAX + 1];
    int admin; /* an /api/v1 request (slug unused) */
    char ipkey[80];
} pending_auth_t;

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

static void add_security_headers(const tk_http_server_t *srv, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (srv->tls && srv->cfg->hsts_max_age_s > 0) {
        char v[64];
        tk_snprintf(v, sizeof(v), "max-age=%u; includeSubDomains", srv->cfg->hsts_max_age_s);
        evhttp_add_header(h, "Strict-Transport-Security", v);
    }
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    evhttp_add_header(h, "Cache-Control", "no-store");
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

/* Take a token from bucket key; if there is none, answer 429 (with
 * Retry-After and a JSON-RPC error body) and return 0. */
static int rate_ok(tk_http_server_t *srv, struct evhttp_request *req, const char *key,
                   const tk_rate_t *rate)
{
    if (rate->count == 0)
        return 1;
    tk_rate_result_t r;
    if (tk_ratelimit_take(srv->rl, key, rate, &r) != TK_OK)
        return 1; /* a key we cannot track (too long): the other limits still apply */
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char v[32];
    /* one set of RateLimit-* headers: the last limit checked */
    evhttp_remove_header(h, "RateLimit-Limit");
    evhttp_remove_header(h, "RateLimit-Remaining");
    evhttp_remove_header(h, "RateLimit-Reset");
    tk_snprintf(v, sizeof(v), "%u", r.limit);
    evhttp_add_header(h, "RateLimit-Limit", v);
    tk_snprintf(v, sizeof(v), "%u", r.remaining);
    evhttp_add_header(h, "RateLimit-Remaining", v);
    tk_snprintf(v, sizeof(v), "%llu", (unsigned long long)((r.reset_ms + 999) / 1000));
    evhttp_add_header(h, "RateLimit-Reset", v);
    if (r.allowed)
        return 1;
    tk_snprintf(v, sizeof(v), "%u", r.retry_after_s);
    evhttp_add_header(h, "Retry-After", v);
    char msg[96];
    tk_snprintf(msg, sizeof(msg), "Rate limit exceeded: retry in %u s", r.retry_after_s);
    reply_error(req, 429, "Too Many Requests", msg);
    return 0;
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
    tk_snprintf(out, len, "ip:%s", addr ? addr : "?");
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
    tk_snprintf(out, len, "%s://%s", srv->tls ? "https" : "http", host ? host : "localhost");
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

static void unauthorized(tk_http_server_t *srv, struct evhttp_request *req, const char *slug,
                         const char *ipkey)
{
    /* failed attempts are limited per address: no brute force of keys */
    if (!rate_ok(srv, req, ipkey, &srv->cfg->rate_per_ip)) {
        tk_warn(MOD, "authentication failures from %s over the limit: 429", ipkey + 3);
        return;
    }
    tk_info(MOD, "authentication failed from %s", ipkey + 3);
    if (slug == NULL) { /* admin API */
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"tumiki\"");
        tk_admin_reply_error(req, 401, "unauthorized", "a valid bearer token is required");
        return;
    }
    char origin[300], v[512];
    self_origin(srv, req, origin, sizeof(origin));
    tk_snprintf(v, sizeof(v),
                "Bearer realm=\"tumiki\", resource_metadata=\"%s/.well-known/"
                "oauth-protected-resource/mcp/%s\"",
                origin, slug);
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", v);
    reply_error(req, 401, "Unauthorized", "Unauthorized: a valid bearer token is required");
}

/* Authenticated as ratekey: per-key and per-endpoint limits, then MCP. */
static void serve_authorized(tk_http_server_t *srv, struct evhttp_request *req, const char *slug,
                             const char *ratekey)
{
    if (!rate_ok(srv, req, ratekey, &srv->cfg->rate_per_key))
        return;
    const tk_endpoint_conf_t *ep = tk_config_find_endpoint(srv->cfg, slug);
    if (ep != NULL && ep->rate.count > 0) {
        char epkey[TK_SLUG_MAX + 8];
        tk_snprintf(epkey, sizeof(epkey), "ep:%s", slug);
        if (!rate_ok(srv, req, epkey, &ep->rate))
            return;
    }
    tk_gateway_handle(srv->gw, req, slug);
}

/* Authenticated admin API caller: the per-credential limit, then the API. */
static void serve_admin(tk_http_server_t *srv, struct evhttp_request *req, tk_caller_kind_t kind,
                        const char *user, const tk_principal_t *p, const char *ratekey)
{
    if (!rate_ok(srv, req, ratekey, &srv->cfg->rate_per_key))
        return;
    tk_caller_t who = {.kind = kind};
    tk_snprintf(who.user, sizeof(who.user), "%s", user);
    if (p != NULL) {
        tk_snprintf(who.key_id, sizeof(who.key_id), "%s", p->key_id);
        tk_snprintf(who.scopes, sizeof(who.scopes), "%s", p->scopes);
    }
    tk_admin_handle(srv->admin, req, &who);
}

/* A verified API key may only be used on its own endpoint, with the "mcp"
 * scope (slug NULL: the admin API, which checks the "admin" scope). */
static void serve_principal(tk_http_server_t *srv, struct evhttp_request *req, const char *slug,
                            const tk_principal_t *p)
{
    char ratekey[TK_APIKEY_ID_LEN + 8];
    tk_snprintf(ratekey, sizeof(ratekey), "key:%s", p->key_id);
    if (slug == NULL) {
        serve_admin(srv, req, TK_CALLER_KEY, p->owner, p, ratekey);
        return;
    }
    if (!tk_scopes_has(p->scopes, TK_SCOPE_MCP)) {
        reply_error(req, 403, "Forbidden", "Forbidden: this key lacks the \"mcp\" scope");
        return;
    }
    if (strcmp(p->endpoint, "*") != 0 && strcmp(p->endpoint, slug) != 0) {
        reply_error(req, 403, "Forbidden", "Forbidden: this key is not valid for this endpoint");
        return;
    }
    serve_authorized(srv, req, slug, ratekey);
}

static void key_verified(void *arg, int status, const tk_principal_t *p)
{
    pending_auth_t *pa = arg;
    tk_http_server_t *srv = pa->srv;
    tk_map_del(srv->verifying, pa->handle);
    const char *slug = pa->admin ? NULL : pa->slug;
    if (status == TK_OK)
        serve_principal(srv, pa->req, slug, p);
    else if (status == TK_EIO)
        reply_error(pa->req, 503, "Service Unavailable", "key store unavailable");
    else
        unauthorized(srv, pa->req, slug, pa->ipkey);
    free(pa);
}

/* An HS256 JWT: verified on the loop (an HMAC), then the revocation list. */
static void authenticate_jwt(tk_http_server_t *srv, struct evhttp_request *req, const char *slug,
                             const char *ipkey, const char *tok, size_t len)
{
    const tk_config_t *cfg = srv->cfg;
    tk_jwt_keys_t keys = {cfg->jwt_key, cfg->jwt_keylen, cfg->jwt_issuer, cfg->jwt_audience};
    tk_jwt_claims_t c;
    const char *why;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (tk_jwt_verify(&keys, tok, len, (int64_t)ts.tv_sec, &c, &why) != TK_OK) {
        tk_info(MOD, "JWT refused: %s", why);
        unauthorized(srv, req, slug, ipkey);
        return;
    }
    if (srv->ka == NULL || tk_keyauth_jti_revoked(srv->ka, c.jti)) {
        tk_info(MOD, "JWT refused: jti %s is revoked", c.jti);
        unauthorized(srv, req, slug, ipkey);
        return;
    }
    char ratekey[TK_JWT_FIELD_MAX + 8];
    tk_snprintf(ratekey, sizeof(ratekey), "sub:%s", c.sub);
    if (slug == NULL) {
        serve_admin(srv, req, TK_CALLER_JWT, c.sub, NULL, ratekey);
        return;
    }
    if (strcmp(c.endpoint, "*") != 0 && strcmp(c.endpoint, slug) != 0) {
        reply_error(req, 403, "Forbidden", "Forbidden: this token is not valid for this endpoint");
        return;
    }
    serve_authorized(srv, req, slug, ratekey);
}

/* A dashboard session (cookie, CSRF token and Origin for state changes) as
 * the admin API's caller. 0 if the request carries no session cookie. */
static int serve_session(tk_http_server_t *srv, struct evhttp_request *req)
{
    char self[300], ratekey[TK_STORE_ID_MAX + 8];
    tk_session_t s;
    self_origin(srv, req, self, sizeof(self));
    int rc = tk_login_principal(srv->login, req, self, &s);
    if (rc == TK_ENOENT)
        return 0;
    if (rc != TK_OK) {
        tk_login_refuse(req, rc);
        return 1;
    }
    tk_snprintf(ratekey, sizeof(ratekey), "user:%s", s.user_id);
    serve_admin(srv, req, TK_CALLER_SESSION, s.user_id, NULL, ratekey);
    OPENSSL_cleanse(&s, sizeof(s));
    return 1;
}

static void authenticate(tk_http_server_t *srv, struct evhttp_request *req, const char *slug,
                         const char *ipkey)
{
    const char *tok = bearer(req);
    if (tok == NULL) {
        unauthorized(srv, req, slug, ipkey);
        return;
    }
    if (is_bootstrap(srv, tok)) {
        if (slug == NULL)
            serve_admin(srv, req, TK_CALLER_BOOTSTRAP, "", NULL, "key:bootstrap");
        else
            serve_authorized(srv, req, slug, "key:bootstrap");
        return;
    }
    size_t toklen = strlen(tok);
    if (srv->cfg->jwt_key != NULL && tk_jwt_looks_like(tok, toklen)) {
        authenticate_jwt(srv, req, slug, ipkey, tok, toklen);
        return;
    }
    if (srv->ka == NULL) {
        unauthorized(srv, req, slug, ipkey);
        return;
    }
    pending_auth_t *pa = tk_calloc(1, sizeof(*pa));
    tk_principal_t p;
    int rc = tk_keyauth_verify(srv->ka, tok, strlen(tok), &p, key_verified, pa, &pa->handle);
    if (rc == 0) { /* answered later by key_verified */
        pa->srv = srv;
        pa->req = req;
        tk_snprintf(pa->slug, sizeof(pa->slug), "%s", slug != NULL ? slug : "");
        pa->admin = slug == NULL;
        tk_snprintf(pa->ipkey, sizeof(pa->ipkey), "%s", ipkey);
        tk_map_put(srv->verifying, pa->handle, pa);
        return;
    }
    free(pa);
    if (rc == 1)
        serve_principal(srv, req, slug, &p);
    else if (rc == TK_ELIMIT)
        reply_error(req, 503, "Service Unavailable", "too many key verifications in progress");
    else
        unauthorized(srv, req, slug, ipkey);
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
        tk_snprintf(slug, len, "default");
        return 0;
    }
    if (strncmp(path, "/mcp/", 5) != 0)
        return -1;
    path += 5;
    size_t n = strspn(path, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (n == 0 || n > TK_SLUG_MAX || (path[n] != '\0' && strcmp(path + n, "/") != 0))
        return -1;
    tk_snprintf(slug, len, "%.*s", (int)n, path);
    return 0;
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
    tk_map_del(c->srv->conns, (uint64_t)(uintptr_t)c->bev);
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
    tk_http_server_t *srv = arg;
    (void)fd;
    (void)what;
    size_t it = 0, n = 0;
    void *val;
    conn_t **gone = tk_calloc(tk_map_count(srv->conns) + 1, sizeof(*gone));
    while (tk_map_next(srv->conns, &it, NULL, NULL, &val))
        if (conn_released(val))
            gone[n++] = val;
    for (size_t i = 0; i < n; i++)
        conn_release(gone[i]);
    free(gone);
}

/* Responses libevent makes on its own, before any handler runs (413 body
 * too large, 400 unparsable request, oversized headers), carry none of our
 * headers and libevent 2.1 has no hook for them. Every response we make
 * passes on_request first, so output on a connection outside a request is
 * one of those: once its header block is complete, the security headers are
 * inserted after its status line. */
static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    conn_t *c = arg;
    if (c->in_request || c->patching || info->n_added == 0)
        return;
    struct evbuffer_ptr end = evbuffer_search(buf, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return;
    char head[5];
    if (evbuffer_copyout(buf, head, 5) != 5 || memcmp(head, "HTTP/", 5) != 0)
        return;
    struct evbuffer_ptr mark = evbuffer_search_range(buf, "X-Content-Type-Options", 22, NULL, &end);
    struct evbuffer_ptr eol = evbuffer_search(buf, "\r\n", 2, NULL);
    if (mark.pos >= 0 || eol.pos < 0)
        return;
    c->patching = 1;
    struct evbuffer *tmp = evbuffer_new();
    evbuffer_remove_buffer(buf, tmp, (size_t)eol.pos + 2);
    evbuffer_add_printf(tmp,
                        "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
                        "Referrer-Policy: no-referrer\r\nContent-Security-Policy: default-src "
                        "'none'; frame-ancestors 'none'\r\nCache-Control: no-store\r\n");
    if (c->srv->tls && c->srv->cfg->hsts_max_age_s > 0)
        evbuffer_add_printf(tmp, "Strict-Transport-Security: max-age=%u; includeSubDomains\r\n",
                            c->srv->cfg->hsts_max_age_s);
    evbuffer_add_buffer(tmp, buf);
    evbuffer_add_buffer(buf, tmp);
    evbuffer_free(tmp);
    c->patching = 0;
}

static void request_done_cb(struct evhttp_request *req, void *arg)
{
    conn_t *c = arg;
    (void)req;
    c->in_request = 0;
    conn_arm(c, c->srv->cfg->idle_timeout_ms); /* waiting for the next request */
}

static void conn_request_started(tk_http_server_t *srv, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    conn_t *c = bev ? tk_map_get(srv->conns, (uint64_t)(uintptr_t)bev) : NULL;
    if (c == NULL)
        return;
    evtimer_del(c->deadline);
    c->in_request = 1;
    evhttp_request_set_on_complete_cb(req, request_done_cb, c);
}

/* evhttp asks for the bufferevent of each connection it accepts (it sets
 * the socket on it right after). */
static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
    tk_http_server_t *srv = arg;
    struct bufferevent *bev;
    if (srv->tls) {
        SSL *ssl = SSL_new(srv->tls);
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
    c->bev = bev;
    bufferevent_incref(bev);
    evbuffer_add_cb(bufferevent_get_output(bev), out_cb, c);
    c->deadline = evtimer_new(base, conn_deadline_cb, c);
    tk_map_put(srv->conns, (uint64_t)(uintptr_t)bev, c);
    if (tk_map_count(srv->conns) > srv->cfg->max_connections) {
        if (srv->refused++ % 1000 == 0)
            tk_warn(MOD, "cutting connections: more than %u open (limits.max_connections)",
                    srv->cfg->max_connections);
        conn_arm(c, 0); /* cut it off once evhttp has given it its socket */
    } else {
        conn_arm(c, srv->cfg->header_timeout_ms);
    }
    return bev;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    tk_http_server_t *srv = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    conn_request_started(srv, req);
    add_security_headers(srv, req);

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
        if (!rate_ok(srv, req, ipkey, &srv->cfg->rate_per_ip))
            return;
        const char *rest = path + sizeof(prm) - 1;
        if (mcp_slug(*rest ? rest : "/mcp", prm_slug, sizeof(prm_slug)) != 0 ||
            tk_config_find_endpoint(srv->cfg, prm_slug) == NULL) {
            reply_error(req, 404, "Not Found", "Not Found");
            return;
        }
        send_resource_metadata(srv, req, prm_slug);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        if (!rate_ok(srv, req, ipkey, &srv->cfg->rate_per_ip))
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
    {
        char self[300];
        self_origin(srv, req, self, sizeof(self));
        if (tk_login_route(srv->login, req, path, ipkey, self))
            return;
    }
    if (tk_admin_path(path)) { /* /api/v1: authenticated like MCP, slug NULL */
        if (cmd == EVHTTP_REQ_OPTIONS)
            handle_preflight(req);
        else if (bearer(req) != NULL || !serve_session(srv, req))
            authenticate(srv, req, NULL, ipkey);
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
    authenticate(srv, req, slug, ipkey);
}

static int listen_on(tk_http_server_t *srv, char *err, size_t errlen)
{
    const tk_config_t *cfg = srv->cfg;
    srv->sock = evhttp_bind_socket_with_handle(srv->http, cfg->listen_host, cfg->listen_port);
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
    return TK_OK;
}

int tk_http_server_reload_tls(tk_http_server_t *srv, char *err, size_t errlen)
{
    if (srv->tls == NULL) {
        tk_snprintf(err, errlen, "not serving TLS");
        return TK_ESTATE;
    }
    SSL_CTX *ctx;
    int rc = tk_tls_ctx_load(srv->cfg->tls_cert_file, srv->cfg->tls_key_file, &ctx, err, errlen);
    if (rc != TK_OK)
        return rc; /* keep serving with the old context */
    SSL_CTX_free(srv->tls); /* open connections hold their own reference */
    srv->tls = ctx;
    return TK_OK;
}

size_t tk_http_server_connections(const tk_http_server_t *srv)
{
    return tk_map_count(srv->conns);
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
    srv->http = evhttp_new(base);
    srv->conns = tk_map_create();
    srv->rl = tk_ratelimit_local_create(cfg->rate_max_keys);
    srv->verifying = tk_map_create();
    {
        char *db = tk_asprintf("%s/tumiki.db", cfg->data_dir);
        srv->ka = tk_keyauth_create(base, db, 60000, err, errlen);
        int ok = srv->ka != NULL &&
                 tk_admin_create(base, cfg, gw, srv->ka, db, &srv->admin, err, errlen) == TK_OK &&
                 tk_login_create(base, cfg, db, NULL, &srv->login, err, errlen) == TK_OK;
        free(db);
        if (!ok) {
            tk_http_server_destroy(srv);
            return TK_EIO;
        }
    }
    srv->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, srv);
    struct timeval one = {1, 0};
    evtimer_add(srv->sweep, &one);
    evhttp_set_max_headers_size(srv->http, MAX_HEADERS_BYTES);
    evhttp_set_max_body_size(srv->http, (ev_ssize_t)cfg->max_body_bytes);
    evhttp_set_timeout(srv->http, IO_TIMEOUT_S);
    /* every method reaches on_request, so unsupported ones get a JSON 405
     * with the security headers rather than libevent's HTML 501 */
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
                                              EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
    evhttp_set_default_content_type(srv->http, "application/json");
    evhttp_set_gencb(srv->http, on_request, srv);
    evhttp_set_bevcb(srv->http, bev_cb, srv);
    if (cfg->tls_cert_file) {
        int rc = tk_tls_ctx_load(cfg->tls_cert_file, cfg->tls_key_file, &srv->tls, err, errlen);
        if (rc != TK_OK) {
            tk_http_server_destroy(srv);
            return rc;
        }
    }
    if (listen_on(srv, err, errlen) != TK_OK) {
        tk_http_server_destroy(srv);
        return TK_EIO;
    }
    if (cfg->bearer_token == NULL)
        tk_warn(MOD, "no bearer token configured: every MCP request will be refused (set "
                     "TUMIKI_TOKEN or auth in the config)");
    *out = srv;
    return TK_OK;
}

void tk_http_server_destroy(tk_http_server_t *srv)
{
    if (srv == NULL)
        return;
    tk_keyauth_destroy(srv->ka); /* no verification callback runs after this */
    tk_login_destroy(srv->login); /* nor a login's, while its connection still exists */
    tk_admin_destroy(srv->admin); /* nor an admin reply */
    if (srv->verifying) {
        size_t vit = 0;
        void *pv;
        while (tk_map_next(srv->verifying, &vit, NULL, NULL, &pv))
            free(pv); /* their requests go with their connections below */
        tk_map_destroy(srv->verifying);
    }
    if (srv->http)
        evhttp_free(srv->http); /* frees its connections; ours are then released */
    size_t it = 0;
    void *val;
    conn_t **all = tk_calloc(tk_map_count(srv->conns) + 1, sizeof(*all));
    size_t n = 0;
    while (tk_map_next(srv->conns, &it, NULL, NULL, &val))
        all[n++] = val;
    for (size_t i = 0; i < n; i++)
        conn_release(all[i]);
    free(all);
    tk_map_destroy(srv->conns);
    tk_ratelimit_destroy(srv->rl);
    if (srv->sweep)
        event_free(srv->sweep);
    SSL_CTX_free(srv->tls);
    free(srv);
}
