/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Remote MCP transports over libcurl multi on the libevent loop: Streamable
 * HTTP (POST per message, JSON or SSE replies, session header, GET stream)
 * and legacy HTTP+SSE (GET stream with an "endpoint" event, POSTs answered
 * on the stream). Every body and event is capped at max_message_bytes.
 */
#include "upstream/remote.h"
#include "upstream/sse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <jansson.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/util.h>

#define MOD "remote"
#define SESSION_ID_MAX 256
#define EASY_POOL_MAX 64 /* idle easy handles kept per upstream */

typedef struct xfer xfer_t;

struct xfer {
    tk_remote_t *r;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    uint64_t req_id;
    int is_stream; /* the GET stream */
    int added;     /* handed to the multi handle */
    int kind_known;
    int sse;
    int json; /* Content-Type: application/json */
    struct evbuffer *buf;  /* JSON body, or SSE bytes not yet parsed */
    tk_sse_t sse_p;        /* SSE bodies */
    char errbuf[CURL_ERROR_SIZE];
    LIST_ENTRY(xfer) link;
};

struct tk_remote {
    struct event_base *base;
    const tk_server_conf_t *conf;
    size_t max;
    tk_remote_cbs_t cbs;
    CURLM *multi;
    struct event *timer;
    LIST_HEAD(, xfer) xfers;
    char session[SESSION_ID_MAX];
    char protocol[32];
    char *post_url; /* legacy SSE: announced endpoint */
    xfer_t *stream;
    int connected;
    struct event *kick; /* adds new transfers outside curl's callbacks */
    const tk_ssrf_policy_t *policy;
    tk_ssrf_target_t target; /* conf->url's host, resolved and checked at connect */
    struct evdns_base *dns;  /* asynchronous lookups: the loop never blocks on DNS */
    struct evdns_getaddrinfo_request *dns_req;
    int resolving;
    CURL *pool[EASY_POOL_MAX]; /* idle easy handles of this upstream, reset */
    size_t npool;
};

static void check_done(tk_remote_t *r);

/* ---- curl <-> libevent glue ---- */

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_remote_t *r = arg;
    int running;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(r->multi, fd, action, &running);
    check_done(r);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    tk_remote_t *r = userp;
    struct event *ev = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (ev) {
            event_free(ev);
            curl_multi_assign(r->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) |
                         EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, r->base, s, kind, sock_event_cb, r);
    } else {
        ev = event_new(r->base, s, kind, sock_event_cb, r);
        curl_multi_assign(r->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_remote_t *r = arg;
    int running;
    (void)fd;
    (void)what;
    curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(r);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    tk_remote_t *r = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(r->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(r->timer, &tv);
    return 0;
}

/* ---- easy handles ---- */

/* A handle for a new transfer: an idle one of this upstream (reset to the
 * defaults when it was put back; every option is set again per transfer,
 * the SSRF pin included), or a new one. Connections live in the multi
 * handle's cache either way, so keep-alive to the upstream does not depend
 * on this; it saves curl_easy_init and curl_easy_cleanup per request. */
static CURL *easy_get(tk_remote_t *r)
{
    return r->npool > 0 ? r->pool[--r->npool] : curl_easy_init();
}

/* Put a handle that is in no multi handle back, or free it if the pool is
 * full. Handles never move between upstreams: each tk_remote_t has its own
 * pool, emptied whenever it reconnects (easy_pool_clear). */
static void easy_put(tk_remote_t *r, CURL *e)
{
    if (e == NULL)
        return;
    if (r->npool == EASY_POOL_MAX) {
        curl_easy_cleanup(e);
        return;
    }
    curl_easy_reset(e); /* drops every option: URL, pin, headers, body, callbacks */
    r->pool[r->npool++] = e;
}

static void easy_pool_clear(tk_remote_t *r)
{
    while (r->npool > 0)
        curl_easy_cleanup(r->pool[--r->npool]);
}

/* ---- transfers ---- */

static void xfer_free(xfer_t *x)
{
    LIST_REMOVE(x, link);
    if (x->r->stream == x)
        x->r->stream = NULL;
    if (x->added)
        curl_multi_remove_handle(x->r->multi, x->easy);
    easy_put(x->r, x->easy);
    curl_slist_free_all(x->hdrs);
    free(x->body);
    evbuffer_free(x->buf);
    tk_sse_clear(&x->sse_p);
    free(x);
}

/* Scheme, host and port of two absolute URLs are equal. */
static int same_origin(const char *a, const char *b)
{
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    CURLU *ua = curl_url(), *ub = curl_url();
    int same = curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
               curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK;
    for (size_t i = 0; same && i < sizeof(parts) / sizeof(parts[0]); i++) {
        char *pa = NULL, *pb = NULL;
        curl_url_get(ua, parts[i], &pa, CURLU_DEFAULT_PORT);
        curl_url_get(ub, parts[i], &pb, CURLU_DEFAULT_PORT);
        same = pa && pb && strcasecmp(pa, pb) == 0;
        curl_free(pa);
        curl_free(pb);
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* One event of an SSE body: a JSON-RPC message, or (legacy transport) the
 * announced endpoint for POSTs. */
static int on_sse_event(void *arg, const char *event, const char *d, size_t n)
{
    xfer_t *x = arg;
    tk_remote_t *r = x->r;
    if (!strcmp(event, "endpoint")) {
        if (r->post_url == NULL && n > 0 && n < 2048) {
            char *rel = tk_strndup(d, n);
            CURLU *u = curl_url();
            char *abs = NULL;
            if (curl_url_set(u, CURLUPART_URL, r->conf->url, 0) == CURLUE_OK &&
                curl_url_set(u, CURLUPART_URL, rel, 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK) {
                if (same_origin(r->conf->url, abs))
                    r->post_url = tk_strdup(abs);
                else
                    tk_warn(MOD, "server %s: refused an endpoint on another origin",
                            r->conf->name);
                curl_free(abs);
            }
            curl_url_cleanup(u);
            free(rel);
            if (r->post_url && !r->connected) {
                r->connected = 1;
                r->cbs.connected(r->cbs.arg);
            }
        }
    } else if (event[0] == '\0' || !strcmp(event, "message")) {
        r->cbs.message(r->cbs.arg, d, n);
    }
    return x->is_stream && r->stream == NULL; /* the stream went away meanwhile */
}

/* Parse complete SSE lines from x->buf. Returns -1 past the size cap. */
static int sse_feed(xfer_t *x)
{
    return tk_sse_feed(&x->sse_p, x->buf, on_sse_event, x) == TK_ELIMIT ? -1 : 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * nmemb;
    if (!x->kind_known) {
        char *ct = NULL;
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
        x->sse = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
        x->json = ct && strncasecmp(ct, "application/json", 16) == 0;
        x->kind_known = 1;
    }
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    evbuffer_add(x->buf, ptr, n);
    if (status >= 300)
        return evbuffer_get_length(x->buf) > 4096 ? 0 : n; /* error bodies are not read */
    if (x->sse)
        return sse_feed(x) == 0 ? n : 0;
    return evbuffer_get_length(x->buf) > x->r->max ? 0 : n;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * nitems;
    static const char name[] = "mcp-session-id:";
    if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        const char *v = buf + sizeof(name) - 1;
        size_t vl = n - (sizeof(name) - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl > 0 && vl < SESSION_ID_MAX) {
            memcpy(x->r->session, v, vl);
            x->r->session[vl] = '\0';
        }
    }
    return n;
}

/* The configured headers (secrets: never logged) plus the session id. */
static struct curl_slist *base_headers(const tk_remote_t *r, struct curl_slist *list)
{
    for (size_t i = 0; i < r->conf->nheaders; i++) {
        char *h = tk_asprintf("%s: %s", r->conf->headers[i].name, r->conf->headers[i].value);
        list = curl_slist_append(list, h);
        free(h);
    }
    if (r->session[0]) {
        char *h = tk_asprintf("Mcp-Session-Id: %s", r->session);
        list = curl_slist_append(list, h);
        free(h);
    }
    return list;
}

static xfer_t *xfer_new(tk_remote_t *r, const char *url, int is_stream)
{
    xfer_t *x = tk_calloc(1, sizeof(*x));
    x->r = r;
    x->is_stream = is_stream;
    x->buf = evbuffer_new();
    tk_sse_init(&x->sse_p, r->max);
    x->easy = easy_get(r);
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (tk_ssrf_pin_curl(e, &r->target) != TK_OK) /* also: no redirects, no proxy */
        curl_easy_setopt(e, CURLOPT_URL, ""); /* cannot happen with a resolved target */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->conf->connect_timeout_ms);
    if (!is_stream)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->conf->request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "tumiki/" TK_VERSION);
    x->hdrs = base_headers(r, x->hdrs);
    if (r->protocol[0]) {
        char *h = tk_asprintf("MCP-Protocol-Version: %s", r->protocol);
        x->hdrs = curl_slist_append(x->hdrs, h);
        free(h);
    }
    LIST_INSERT_HEAD(&r->xfers, x, link);
    return x;
}

/* Transfers are added to the multi handle from a fresh loop iteration:
 * curl refuses additions from inside its own callbacks, and sends are often
 * triggered by a message being delivered. */
static int xfer_start(xfer_t *x)
{
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    event_active(x->r->kick, EV_TIMEOUT, 0);
    return TK_OK;
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_remote_t *r = arg;
    xfer_t *x, *next;
    (void)fd;
    (void)what;
    for (x = LIST_FIRST(&r->xfers); x != NULL; x = next) {
        next = LIST_NEXT(x, link);
        if (x->added)
            continue;
        if (curl_multi_add_handle(r->multi, x->easy) != CURLM_OK) {
            uint64_t id = x->req_id;
            tk_warn(MOD, "server %s: cannot start a transfer", r->conf->name);
            xfer_free(x);
            if (id)
                r->cbs.request_failed(r->cbs.arg, id, "cannot start the HTTP request");
            return; /* the callback may have changed the list */
        }
        x->added = 1;
    }
}

static void deliver_json(tk_remote_t *r, xfer_t *x)
{
    size_t n = evbuffer_get_length(x->buf);
    if (n == 0)
        return;
    const char *d = (const char *)evbuffer_pullup(x->buf, -1);
    json_error_t jerr;
    json_t *v = json_loadb(d, n, 0, &jerr);
    if (json_is_array(v)) { /* a batch: deliver each */
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) {
            char *s = json_dumps(m, JSON_COMPACT);
            if (s) {
                r->cbs.message(r->cbs.arg, s, strlen(s));
                free(s);
            }
        }
    } else {
        r->cbs.message(r->cbs.arg, d, n);
    }
    json_decref(v);
}

static void xfer_done(xfer_t *x, CURLcode res)
{
    tk_remote_t *r = x->r;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    char why[192];
    why[0] = '\0';
    if (res != CURLE_OK)
        tk_snprintf(why, sizeof(why), "%s", curl_easy_strerror(res));
    else if (status == 404 && r->session[0] && !x->is_stream)
        tk_snprintf(why, sizeof(why), "session expired (HTTP 404)");
    else if (status >= 300 && status < 400)
        tk_snprintf(why, sizeof(why), "HTTP %ld: redirects are not followed", status);
    else if (status >= 300)
        tk_snprintf(why, sizeof(why), "HTTP %ld", status);
    if (why[0] == '\0') {
        if (x->sse && evbuffer_get_length(x->buf) > 0) {
            evbuffer_add(x->buf, "\n\n", 2);
            if (sse_feed(x) != 0)
                tk_warn(MOD, "server %s: oversized event dropped", r->conf->name);
        } else if (x->json) {
            deliver_json(r, x);
        }
    }
    int legacy = r->conf->transport == TK_TRANSPORT_SSE;
    uint64_t req_id = x->req_id;
    int was_stream = x->is_stream;
    xfer_free(x);
    if (was_stream) {
        if (legacy && r->connected)
            r->cbs.lost(r->cbs.arg, why[0] ? why : "event stream closed");
        else if (legacy)
            r->cbs.lost(r->cbs.arg, why[0] ? why : "no endpoint announced");
        else if (why[0] && status != 405)
            tk_info(MOD, "server %s: GET stream ended: %s", r->conf->name, why);
        return;
    }
    if (why[0] == '\0')
        return;
    tk_warn(MOD, "server %s: POST failed: %s", r->conf->name, why);
    /* The server is gone (or restarted and forgot us): start over. */
    int conn_lost = res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST ||
                    res == CURLE_GOT_NOTHING || res == CURLE_RECV_ERROR ||
                    res == CURLE_SEND_ERROR;
    if (conn_lost) {
        if (req_id)
            r->cbs.request_failed(r->cbs.arg, req_id, why);
        r->cbs.lost(r->cbs.arg, why);
        return;
    }
    if (status == 404 && r->session[0]) {
        r->cbs.lost(r->cbs.arg, why);
        return;
    }
    if (req_id)
        r->cbs.request_failed(r->cbs.arg, req_id, why);
}

static void check_done(tk_remote_t *r)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(r->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode res = msg->data.result;
        if (x)
            xfer_done(x, res);
    }
}

/* ---- public ---- */

tk_remote_t *tk_remote_create(struct event_base *base, const tk_server_conf_t *conf,
                              size_t max_message_bytes, const tk_remote_cbs_t *cbs,
                              const tk_ssrf_policy_t *policy)
{
    tk_remote_t *r = tk_calloc(1, sizeof(*r));
    r->base = base;
    r->conf = conf;
    r->max = max_message_bytes;
    r->cbs = *cbs;
    r->policy = policy;
    LIST_INIT(&r->xfers);
    r->multi = curl_multi_init();
    r->timer = evtimer_new(base, timer_event_cb, r);
    r->kick = event_new(base, -1, 0, kick_cb, r);
    r->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (r->dns == NULL) { /* no usable resolv.conf: the hosts file still works */
        r->dns = evdns_base_new(base, 0);
        if (r->dns && evdns_base_load_hosts(r->dns, NULL) != 0)
            tk_warn(MOD, "server %s: no resolver configuration", conf->name);
    }
    curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
    curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
    return r;
}

static int open_stream(tk_remote_t *r)
{
    xfer_t *x = xfer_new(r, r->conf->url, 1);
    x->hdrs = curl_slist_append(x->hdrs, "Accept: text/event-stream");
    r->stream = x;
    return xfer_start(x);
}

/* The host's addresses arrived: check them all against the policy, pin the
 * first, and carry on connecting. */
static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    tk_remote_t *r = arg;
    r->dns_req = NULL;
    r->resolving = 0;
    if (result == EVUTIL_EAI_CANCEL) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    char why[TK_SSRF_ERR_MAX];
    if (result != 0) {
        tk_snprintf(why, sizeof(why), "cannot resolve the server's host: %s",
                    evutil_gai_strerror(result));
        tk_warn(MOD, "server %s: %s", r->conf->name, why);
        r->cbs.lost(r->cbs.arg, why);
        return;
    }
    int rc = tk_ssrf_finish(r->policy, &r->target, res, why, sizeof(why));
    evutil_freeaddrinfo(res);
    if (rc != TK_OK) {
        tk_warn(MOD, "server %s: outbound policy: %s", r->conf->name, why);
        r->cbs.lost(r->cbs.arg, why);
        return;
    }
    if (r->conf->transport == TK_TRANSPORT_SSE) {
        if (open_stream(r) != TK_OK)
            r->cbs.lost(r->cbs.arg, "cannot open the event stream");
        return;
    }
    r->connected = 1;
    r->cbs.connected(r->cbs.arg);
}

int tk_remote_connect(tk_remote_t *r)
{
    tk_remote_reset(r, 0);
    /* check the URL now; resolve its host once per connection, without
     * blocking the loop, and pin every transfer to the checked address */
    char why[TK_SSRF_ERR_MAX];
    tk_ssrf_target_clear(&r->target);
    if (tk_ssrf_parse(r->policy, r->conf->url, &r->target, why, sizeof(why)) != TK_OK) {
        tk_warn(MOD, "server %s: outbound policy: %s", r->conf->name, why);
        return TK_EINVAL;
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r->resolving = 1;
    struct evdns_getaddrinfo_request *q =
        evdns_getaddrinfo(r->dns, r->target.host, NULL, &hints, dns_cb, r);
    if (r->resolving) /* not answered synchronously */
        r->dns_req = q;
    return TK_OK;
}

void tk_remote_ready(tk_remote_t *r, const char *protocol_version)
{
    tk_snprintf(r->protocol, sizeof(r->protocol), "%s", protocol_version ? protocol_version : "");
    if (r->conf->transport == TK_TRANSPORT_HTTP && r->session[0] && r->stream == NULL &&
        open_stream(r) != TK_OK)
        tk_debug(MOD, "server %s: no GET stream", r->conf->name);
}

int tk_remote_send(tk_remote_t *r, const char *json, size_t len, uint64_t req_id)
{
    const char *url = r->conf->transport == TK_TRANSPORT_SSE ? r->post_url : r->conf->url;
    if (url == NULL || !r->connected)
        return TK_ESTATE;
    xfer_t *x = xfer_new(r, url, 0);
    x->req_id = req_id;
    x->body = tk_strndup(json, len);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    x->hdrs = curl_slist_append(x->hdrs, "Content-Type: application/json");
    x->hdrs = curl_slist_append(x->hdrs, "Accept: application/json, text/event-stream");
    return xfer_start(x);
}

void tk_remote_reset(tk_remote_t *r, int delete_session)
{
    xfer_t *x;
    if (r->dns_req) {
        struct evdns_getaddrinfo_request *q = r->dns_req;
        r->dns_req = NULL;
        evdns_getaddrinfo_cancel(q); /* its callback sees EVUTIL_EAI_CANCEL */
    }
    r->resolving = 0;
    while ((x = LIST_FIRST(&r->xfers)) != NULL)
        xfer_free(x);
    easy_pool_clear(r); /* nothing of this connection is reused after it */
    if (delete_session && r->session[0] && r->conf->transport == TK_TRANSPORT_HTTP) {
        /* best effort, bounded, synchronous: only at shutdown or idle stop */
        CURL *e = curl_easy_init();
        struct curl_slist *h = base_headers(r, NULL);
        curl_easy_setopt(e, CURLOPT_URL, r->conf->url);
        if (tk_ssrf_pin_curl(e, &r->target) != TK_OK)
            curl_easy_setopt(e, CURLOPT_URL, "");
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1000L);
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        if (curl_easy_perform(e) != CURLE_OK)
            tk_debug(MOD, "server %s: session DELETE failed", r->conf->name);
        curl_slist_free_all(h);
        curl_easy_cleanup(e);
    }
    r->session[0] = '\0';
    r->protocol[0] = '\0';
    free(r->post_url);
    r->post_url = NULL;
    r->connected = 0;
}

void tk_remote_destroy(tk_remote_t *r)
{
    if (r == NULL)
        return;
    tk_remote_reset(r, 1);
    tk_ssrf_target_clear(&r->target);
    if (r->dns)
        evdns_base_free(r->dns, 0);
    curl_multi_cleanup(r->multi);
    event_free(r->timer);
    event_free(r->kick);
    free(r);
}
