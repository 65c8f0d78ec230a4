/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dashboard login: the /auth routes, the password worker (store lookups,
 * bcrypt, failure counting and locks), cookies, CSRF and Origin checks, and
 * the static dashboard files.
 */
#include "admin/login.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "admin/api.h"
#include "audit/audit.h"
#include "auth/oidc.h"
#include "auth/password.h"
#include "core/map.h"
#include "http/server.h"
#include "state/ratelimit.h"
#include "store/store.h"
#include "store/worker.h"

#define MOD "login"
#define LOGIN_BODY_MAX 8192
#define EMAIL_MAX 254
#define MAX_QUEUED_LOGINS 64
#define WEB_FILE_MAX (1024 * 1024)
#define SWEEP_S 30
#define SSO_CODE_MAX 1024
#define SSO_MAX_PENDING 1000
#define SSO_TTL_MS (10 * 60 * 1000)
#define SSO_COOKIE "__Host-tumiki_sso"
#define GENERIC_FAILURE "invalid e-mail or password"
#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct tk_login {
    const tk_config_t *cfg;
    tk_store_worker_t *worker;
    size_t inflight; /* logins submitted and not yet done */
    int stopping;
    char dummy[TK_PASSWORD_HASH_MAX]; /* worker thread only: bcrypt of a random password */
    tk_login_shared_t *sh; /* sessions, sign-ins under way, login rate */
    int own_sh;            /* sh was made for this one */
    int web_fd; /* dashboard.web_dir, or -1 */
    struct event *sweep;
    tk_oidc_t *oidc; /* worker thread only; NULL: no single sign-on configured */
};

struct tk_login_shared {
    tk_sessions_t *sessions; /* locked inside */
    tk_ratelimit_t *rl;      /* login attempts per address */
    pthread_mutex_t mu;      /* guards sso */
    tk_map_t *sso;           /* sign-ins under way: sha256(pre-login cookie) -> sso_t */
};

/* A single sign-on under way, bound to the browser's pre-login cookie. */
typedef struct sso {
    char state[TK_OIDC_RANDOM_LEN + 1];
    char nonce[TK_OIDC_RANDOM_LEN + 1];
    char verifier[TK_OIDC_RANDOM_LEN + 1];
    uint64_t created_ms;
} sso_t;

enum { JOB_PASSWORD = 0, JOB_SSO_START, JOB_SSO_FINISH };

typedef struct login_job {
    tk_login_t *lg;
    int ran;                    /* the worker ran it (else it was dropped at shutdown) */
    struct evhttp_request *req; /* NULL once the client has gone */
    char email[EMAIL_MAX + 1];
    char password[TK_PASSWORD_MAX + 1];
    size_t pwlen;
    int status; /* TK_OK, TK_EINVAL (refused: the generic answer), TK_EIO */
    char user_id[TK_STORE_ID_MAX + 1];
    int kind;  /* JOB_* */
    sso_t sso; /* single sign-on: the pre-login's secrets */
    char code[SSO_CODE_MAX + 1];
    char cookie[TK_SESSION_ID_LEN + 1]; /* the pre-login cookie to set */
    char *url;                          /* the authorization URL to send the browser to */
    char ip[64];                        /* the client's address (audit) */
} login_job_t;

/* An authentication event in the audit trail (any thread): who (a user id,
 * never an e-mail address typed by an unknown caller), what, the outcome. */
static void audit_login(const char *user_id, const char *action, const char *result,
                        const char *ip, const char *reason)
{
    char actor[TK_STORE_ID_MAX + 8];
    tk_snprintf(actor, sizeof(actor), "user:%s", user_id != NULL ? user_id : "");
    json_t *d = reason != NULL ? json_pack("{s:s}", "reason", reason) : NULL;
    tk_audit_event_t ev = {.actor = user_id != NULL ? actor : "anonymous",
                           .action = action,
                           .target = user_id != NULL ? actor : NULL,
                           .result = result,
                           .ip = ip,
                           .detail = d};
    if (tk_audit_emit(&ev) != TK_OK)
        tk_warn(MOD, "%s not audited", action);
    json_decref(d);
}

static void req_ip(struct evhttp_request *req, char *out, size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon != NULL)
        evhttp_connection_get_peer(evcon, &addr, &port);
    tk_snprintf(out, len, "%s", addr != NULL ? addr : "");
}

/* ---- worker side ---- */

/* The dummy hash an unknown e-mail is checked against, made on first use at
 * the configured cost so that the answer takes as long as for a real user. */
static const char *dummy_hash(tk_login_t *lg)
{
    if (lg->dummy[0] == '\0') {
        unsigned char raw[16];
        char rnd[33];
        if (tk_random_bytes(raw, sizeof(raw)) != TK_OK)
            return "";
        tk_hex_encode(raw, sizeof(raw), rnd);
        if (tk_password_hash(rnd, strlen(rnd), lg->cfg->dash_bcrypt_cost, lg->dummy,
                             sizeof(lg->dummy)) != TK_OK)
            lg->dummy[0] = '\0';
        OPENSSL_cleanse(rnd, sizeof(rnd));
    }
    return lg->dummy;
}

/* A failed password for a known, unlocked account: count it, maybe lock. */
static void count_failure(tk_login_t *lg, tk_store_t *st, const tk_user_login_t *u, int64_t now,
                          const char *ip)
{
    const tk_config_t *cfg = lg->cfg;
    int64_t until = 0;
    if (tk_store_user_login_failed(st, u->id, now, cfg->dash_lockout_threshold,
                                   (int64_t)cfg->dash_lockout_s * 1000, &until) != TK_OK) {
        tk_warn(MOD, "failed login for user %s not recorded: %s", u->id, tk_store_last_error(st));
        return;
    }
    audit_login(u->id, "auth.login", "error", ip, "wrong password");
    if (until > now) {
        tk_warn(MOD, "user %s locked for %u s after %u failed logins", u->id, cfg->dash_lockout_s,
                cfg->dash_lockout_threshold);
        audit_login(u->id, "auth.lockout", "denied", ip, "too many failed logins");
    } else {
        tk_info(MOD, "failed login for user %s", u->id);
    }
}

static void run_login(tk_store_t *st, void *arg)
{
    login_job_t *j = arg;
    tk_user_login_t u;
    const char *dummy = dummy_hash(j->lg);
    j->ran = 1;
    j->status = TK_EINVAL;
    if (st == NULL) {
        j->status = TK_EIO;
        return;
    }
    int rc = tk_store_user_login_get(st, j->email, &u);
    if (rc != TK_OK) {
        if (rc != TK_ENOENT)
            j->status = TK_EIO;
        (void)tk_password_verify(j->password, j->pwlen, dummy); /* same time as a user */
        tk_info(MOD, "failed login for an unknown e-mail address");
        audit_login(NULL, "auth.login", "error", j->ip, "unknown account");
        return;
    }
    int64_t now = tk_wall_ms();
    int locked = u.locked_until > now;
    int ok = tk_password_verify(j->password, j->pwlen, u.password_hash ? u.password_hash : dummy) &&
             u.password_hash != NULL;
    if (locked || u.disabled) {
        tk_info(MOD, "login refused for user %s: account %s", u.id, locked ? "locked" : "disabled");
        audit_login(u.id, "auth.login", "denied", j->ip, locked ? "account locked" : "account disabled");
    } else if (ok) {
        if (tk_store_user_login_reset(st, u.id) != TK_OK)
            tk_warn(MOD, "failure count of user %s not reset", u.id);
        tk_snprintf(j->user_id, sizeof(j->user_id), "%s", u.id);
        tk_snprintf(j->email, sizeof(j->email), "%s", u.email);
        j->status = TK_OK;
    } else {
        count_failure(j->lg, st, &u, now, j->ip);
    }
    tk_user_login_clear(&u);
}

/* ---- replies ---- */

/* Set-Cookie name=value; Path=/; Secure; HttpOnly; SameSite=<same>[; extra];
 * value NULL deletes the cookie (Max-Age=0). */
static void put_cookie(struct evhttp_request *req, const char *name, const char *value,
                       const char *same, const char *extra)
{
    char v[200];
    tk_snprintf(v, sizeof(v), "%s=%s; Path=/; Secure; HttpOnly; SameSite=%s%s%s", name,
                value ? value : "", same, value == NULL || extra ? "; " : "",
                value == NULL ? "Max-Age=0"
                : extra       ? extra
                              : "");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", v);
}

static void set_cookie(struct evhttp_request *req, const char *id)
{
    put_cookie(req, TK_SESSION_COOKIE, id, "Strict", NULL);
}

static json_t *session_json(const tk_login_t *lg, const tk_session_t *s)
{
    return json_pack("{s:{s:s, s:s}, s:s, s:I, s:I}", "user", "id", s->user_id, "email", s->email,
                     "csrf_token", s->csrf, "idle_timeout_s", (json_int_t)lg->cfg->dash_idle_s,
                     "lifetime_s", (json_int_t)lg->cfg->dash_lifetime_s);
}

static const char *hdr(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/* The session cookie's value, or NULL. */
static const char *session_cookie(struct evhttp_request *req, size_t *len)
{
    const char *c = hdr(req, "Cookie"), *v;
    if (c == NULL || tk_cookie_find(c, TK_SESSION_COOKIE, &v, len) != 0)
        return NULL;
    return v;
}

/* ---- login ---- */

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    login_job_t *j = arg;
    (void)evcon;
    j->req = NULL; /* evhttp frees the request; the job is freed when it comes back */
}

static void detach(login_job_t *j)
{
    struct evhttp_connection *evcon = j->req ? evhttp_request_get_connection(j->req) : NULL;
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
}

static void job_free(login_job_t *j)
{
    free(j->url);
    OPENSSL_cleanse(j, sizeof(*j));
    free(j);
}

/* A new session for user_id: the cookie is set on req; a session id the
 * browser brought is ended, never reused (no fixation). On failure req has
 * been answered (503). */
static int start_session(tk_login_t *lg, struct evhttp_request *req, const char *user_id,
                         const char *email, tk_session_t *s)
{
    size_t oldlen;
    const char *old = session_cookie(req, &oldlen);
    if (old != NULL)
        (void)tk_sessions_close(lg->sh->sessions, old, oldlen);
    char id[TK_SESSION_ID_LEN + 1];
    int rc = tk_sessions_open(lg->sh->sessions, user_id, email, tk_now_ms(), id, s);
    if (rc != TK_OK) {
        tk_admin_reply_error(req, 503, "unavailable", "too many sessions; try again later");
    } else {
        char ip[64];
        req_ip(req, ip, sizeof(ip));
        tk_info(MOD, "user %s signed in", user_id);
        audit_login(user_id, "auth.login", "ok", ip, NULL);
        set_cookie(req, id);
    }
    OPENSSL_cleanse(id, sizeof(id));
    return rc;
}

static void sso_started(tk_login_t *lg, struct evhttp_request *req, login_job_t *j);
static void sso_finished(tk_login_t *lg, struct evhttp_request *req, login_job_t *j);

static void login_done(void *arg)
{
    login_job_t *j = arg;
    tk_login_t *lg = j->lg;
    tk_session_t s;
    struct evhttp_request *req = j->req;
    lg->inflight--;
    if (req == NULL || !j->ran || lg->stopping) { /* client gone, or shutting down */
        detach(j);
        job_free(j);
        return;
    }
    detach(j);
    if (j->kind == JOB_SSO_START)
        sso_started(lg, req, j);
    else if (j->kind == JOB_SSO_FINISH)
        sso_finished(lg, req, j);
    else if (j->status == TK_EIO)
        tk_admin_reply_error(req, 503, "unavailable", "the account store is unavailable");
    else if (j->status != TK_OK)
        tk_admin_reply_error(req, 401, "invalid_credentials", GENERIC_FAILURE);
    else if (start_session(lg, req, j->user_id, j->email, &s) == TK_OK)
        tk_http_reply_json(req, 200, "OK", session_json(lg, &s));
    OPENSSL_cleanse(&s, sizeof(s));
    job_free(j);
}

/* Whether origin is this server's own, or one the config allows. */
static int origin_ok(const tk_login_t *lg, const char *origin, const char *self_origin)
{
    if (origin == NULL)
        return 0;
    if (strcasecmp(origin, self_origin) == 0)
        return 1;
    for (size_t i = 0; i < lg->cfg->norigins; i++)
        if (strcasecmp(origin, lg->cfg->allowed_origins[i]) == 0)
            return 1;
    return 0;
}

static int login_rate_ok(tk_login_t *lg, struct evhttp_request *req, const char *ipkey)
{
    const tk_rate_t *rate = &lg->cfg->dash_login_rate;
    tk_rate_result_t r;
    if (rate->count == 0 || tk_ratelimit_take(lg->sh->rl, ipkey, rate, &r) != TK_OK || r.allowed)
        return 1;
    char v[32];
    tk_snprintf(v, sizeof(v), "%u", r.retry_after_s);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
    tk_warn(MOD, "login attempts from %s over the limit: 429", ipkey + 3);
    tk_admin_reply_error(req, 429, "rate_limited", "too many login attempts; try again later");
    return 0;
}

/* Parse {"email": S, "password": S} into j; 0 or a message for a 400. */
static const char *parse_login(struct evhttp_request *req, login_job_t *j)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > LOGIN_BODY_MAX)
        return "request body too large";
    json_error_t je;
    json_t *body =
        json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &je);
    const char *why = NULL;
    json_t *e = json_object_get(body, "email"), *p = json_object_get(body, "password");
    if (!json_is_object(body))
        why = "expected a JSON object {\"email\": ..., \"password\": ...}";
    else if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) > EMAIL_MAX)
        why = "\"email\" must be a string of 1 to 254 bytes";
    else if (!json_is_string(p) || json_string_length(p) == 0)
        why = "\"password\" must be a non-empty string";
    if (why == NULL) {
        tk_snprintf(j->email, sizeof(j->email), "%s", json_string_value(e));
        j->pwlen = json_string_length(p);
        if (j->pwlen <= TK_PASSWORD_MAX)
            memcpy(j->password, json_string_value(p), j->pwlen);
    }
    if (json_is_string(p)) /* jansson keeps its own copy: wipe it */
        OPENSSL_cleanse((char *)json_string_value(p), json_string_length(p));
    json_decref(body);
    return why;
}

static int is_json(struct evhttp_request *req)
{
    const char *ct = hdr(req, "Content-Type");
    return ct != NULL && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* Hand j to the worker (run there, then login_done here), or answer 503. */
static void submit(tk_login_t *lg, struct evhttp_request *req, login_job_t *j,
                   void (*run)(tk_store_t *, void *))
{
    j->lg = lg;
    j->req = req;
    req_ip(req, j->ip, sizeof(j->ip));
    if (lg->inflight >= MAX_QUEUED_LOGINS ||
        tk_store_worker_submit(lg->worker, run, login_done, j) != TK_OK) {
        tk_admin_reply_error(req, 503, "unavailable", "too many logins in progress");
        job_free(j);
        return;
    }
    lg->inflight++;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon)
        evhttp_connection_set_closecb(evcon, conn_closed, j);
}

static void handle_login(tk_login_t *lg, struct evhttp_request *req, const char *ipkey,
                         const char *self_origin)
{
    const char *origin = hdr(req, "Origin");
    if (origin != NULL && !origin_ok(lg, origin, self_origin)) {
        tk_admin_reply_error(req, 403, "forbidden", "Forbidden: Origin is not allowed");
        return;
    }
    if (!login_rate_ok(lg, req, ipkey))
        return;
    if (!is_json(req)) { /* also keeps HTML forms on other sites out */
        tk_admin_reply_error(req, 415, "unsupported_media_type",
                             "Content-Type must be application/json");
        return;
    }
    login_job_t *j = tk_calloc(1, sizeof(*j));
    const char *why = parse_login(req, j);
    if (why != NULL || j->pwlen > TK_PASSWORD_MAX) {
        if (why != NULL)
            tk_admin_reply_error(req, 400, "invalid_body", why);
        else /* longer than any password can be: refused like any wrong one */
            tk_admin_reply_error(req, 401, "invalid_credentials", GENERIC_FAILURE);
        job_free(j);
        return;
    }
    submit(lg, req, j, run_login);
}

/* ---- single sign-on (OpenID Connect) ---- */

static void run_sso_start(tk_store_t *st, void *arg)
{
    login_job_t *j = arg;
    char err[256], challenge[TK_OIDC_RANDOM_LEN + 1];
    (void)st;
    j->ran = 1;
    tk_oidc_challenge(j->sso.verifier, challenge);
    j->status = tk_oidc_auth_url(j->lg->oidc, j->sso.state, j->sso.nonce, challenge, &j->url, err,
                                 sizeof(err));
    if (j->status != TK_OK)
        tk_warn(MOD, "single sign-on unavailable: %s", err);
}

/* The user for a verified identity: linked by subject, or (first sign-in)
 * an existing user with that verified e-mail and no subject yet. */
static int sso_user(tk_store_t *st, const tk_oidc_identity_t *id, tk_user_login_t *u)
{
    int rc = tk_store_user_oidc_get(st, id->sub, u);
    if (rc != TK_ENOENT)
        return rc;
    if (!id->email_verified || id->email[0] == '\0' ||
        tk_store_user_login_get(st, id->email, u) != TK_OK)
        return TK_ENOENT;
    rc = tk_store_user_oidc_link(st, u->id, id->sub);
    if (rc == TK_OK)
        tk_info(MOD, "user %s linked to its single sign-on identity", u->id);
    else
        tk_user_login_clear(u);
    return rc == TK_OK ? TK_OK : TK_ENOENT;
}

static void run_sso_finish(tk_store_t *st, void *arg)
{
    login_job_t *j = arg;
    char err[256];
    tk_oidc_identity_t id;
    tk_user_login_t u;
    j->ran = 1;
    j->status = TK_EINVAL;
    if (tk_oidc_redeem(j->lg->oidc, j->code, j->sso.verifier, j->sso.nonce, tk_wall_ms() / 1000, &id,
                       err, sizeof(err)) != TK_OK) {
        tk_warn(MOD, "single sign-on refused: %s", err);
        return;
    }
    if (st == NULL) {
        j->status = TK_EIO;
        return;
    }
    int rc = sso_user(st, &id, &u);
    if (rc != TK_OK) {
        tk_warn(MOD, "single sign-on refused: no user for this identity (automatic accounts are "
                     "off)");
        j->status = rc == TK_ENOENT ? TK_EINVAL : TK_EIO;
        return;
    }
    if (u.disabled) {
        tk_info(MOD, "single sign-on refused for user %s: account disabled", u.id);
    } else {
        tk_snprintf(j->user_id, sizeof(j->user_id), "%s", u.id);
        tk_snprintf(j->email, sizeof(j->email), "%s", u.email);
        j->status = TK_OK;
    }
    tk_user_login_clear(&u);
}

static void sso_cookie(struct evhttp_request *req, const char *id)
{
    /* Lax, not Strict: it must come back on the provider's cross-site
     * redirect to the callback */
    put_cookie(req, SSO_COOKIE, id, "Lax", "Max-Age=600");
}

static void redirect(struct evhttp_request *req, int status, const char *location)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", location);
    evhttp_send_reply(req, status, status == 302 ? "Found" : "See Other", NULL);
}

static void sso_started(tk_login_t *lg, struct evhttp_request *req, login_job_t *j)
{
    if (j->status != TK_OK) {
        char h[65];
        tk_session_id_hash(j->cookie, strlen(j->cookie), h);
        pthread_mutex_lock(&lg->sh->mu);
        free(tk_map_sdel(lg->sh->sso, h));
        pthread_mutex_unlock(&lg->sh->mu);
        tk_admin_reply_error(req, 503, "unavailable", "single sign-on is unavailable");
        return;
    }
    sso_cookie(req, j->cookie);
    redirect(req, 302, j->url);
}

static void sso_finished(tk_login_t *lg, struct evhttp_request *req, login_job_t *j)
{
    tk_session_t s;
    sso_cookie(req, NULL);
    if (j->status != TK_OK)
        redirect(req, 303, "/?sso=failed");
    else if (start_session(lg, req, j->user_id, j->email, &s) == TK_OK)
        redirect(req, 303, "/");
    OPENSSL_cleanse(&s, sizeof(s));
}

static void handle_sso_start(tk_login_t *lg, struct evhttp_request *req, const char *ipkey)
{
    if (!login_rate_ok(lg, req, ipkey))
        return;
    login_job_t *j = tk_calloc(1, sizeof(*j));
    j->kind = JOB_SSO_START;
    if (tk_oidc_random(j->sso.state) != TK_OK || tk_oidc_random(j->sso.nonce) != TK_OK ||
        tk_oidc_random(j->sso.verifier) != TK_OK || tk_session_new_id(j->cookie) != TK_OK) {
        job_free(j);
        tk_admin_reply_error(req, 500, "internal", "no randomness");
        return;
    }
    sso_t *p = tk_calloc(1, sizeof(*p));
    *p = j->sso;
    p->created_ms = tk_now_ms();
    char h[65];
    tk_session_id_hash(j->cookie, strlen(j->cookie), h);
    pthread_mutex_lock(&lg->sh->mu);
    int full = tk_map_count(lg->sh->sso) >= SSO_MAX_PENDING;
    if (!full)
        tk_map_sput(lg->sh->sso, h, p);
    pthread_mutex_unlock(&lg->sh->mu);
    if (full) {
        free(p);
        job_free(j);
        tk_admin_reply_error(req, 503, "unavailable", "too many sign-ins under way");
        return;
    }
    submit(lg, req, j, run_sso_start);
}

/* The value of query parameter name, copied into out; 0 if present. */
static int query_param(struct evhttp_request *req, const char *name, char *out, size_t len)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq params = {0};
    if (q == NULL || evhttp_parse_query_str(q, &params) != 0)
        return -1;
    const char *v = evhttp_find_header(&params, name);
    int rc = v != NULL && strlen(v) < len ? 0 : -1;
    if (rc == 0)
        tk_snprintf(out, len, "%s", v);
    evhttp_clear_headers(&params);
    return rc;
}

static void handle_sso_callback(tk_login_t *lg, struct evhttp_request *req)
{
    const char *c = hdr(req, "Cookie"), *v;
    size_t len;
    char h[65], state[TK_OIDC_RANDOM_LEN + 1];
    sso_t *p = NULL;
    if (c != NULL && tk_cookie_find(c, SSO_COOKIE, &v, &len) == 0 && len == TK_SESSION_ID_LEN) {
        tk_session_id_hash(v, len, h);
        pthread_mutex_lock(&lg->sh->mu);
        p = tk_map_sdel(lg->sh->sso, h); /* one use only */
        pthread_mutex_unlock(&lg->sh->mu);
    }
    login_job_t *j = tk_calloc(1, sizeof(*j));
    j->kind = JOB_SSO_FINISH;
    if (p == NULL || tk_now_ms() - p->created_ms > SSO_TTL_MS ||
        query_param(req, "state", state, sizeof(state)) != 0 ||
        !tk_ct_equal(state, strlen(state), p->state, strlen(p->state)) ||
        query_param(req, "code", j->code, sizeof(j->code)) != 0) {
        tk_warn(MOD, "single sign-on refused: no pre-login cookie, wrong state, or no code");
        sso_cookie(req, NULL);
        redirect(req, 303, "/?sso=failed");
        free(p);
        job_free(j);
        return;
    }
    j->sso = *p;
    OPENSSL_cleanse(p, sizeof(*p));
    free(p);
    submit(lg, req, j, run_sso_finish);
}

/* ---- session routes ---- */

int tk_login_principal(tk_login_t *lg, struct evhttp_request *req, const char *self_origin,
                       tk_session_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t len;
    const char *id = session_cookie(req, &len);
    if (id == NULL)
        return TK_ENOENT;
    tk_session_t *s = out;
    if (tk_sessions_find(lg->sh->sessions, id, len, tk_now_ms(), s) != TK_OK)
        return TK_EINVAL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_POST || cmd == EVHTTP_REQ_PUT || cmd == EVHTTP_REQ_PATCH ||
        cmd == EVHTTP_REQ_DELETE) {
        const char *tok = hdr(req, "X-CSRF-Token");
        if (!origin_ok(lg, hdr(req, "Origin"), self_origin) ||
            !tk_session_csrf_ok(s, tok, tok ? strlen(tok) : 0)) {
            tk_warn(MOD,
                    "refused a state-changing request of user %s: CSRF token or Origin "
                    "missing or wrong",
                    s->user_id);
            OPENSSL_cleanse(out, sizeof(*out));
            return TK_ESTATE;
        }
    }
    return TK_OK;
}

void tk_login_refuse(struct evhttp_request *req, int rc)
{
    if (rc == TK_ESTATE)
        tk_admin_reply_error(req, 403, "forbidden",
                             "Forbidden: missing or wrong CSRF token or Origin");
    else
        tk_admin_reply_error(req, 401, "unauthorized", "not signed in, or the session has expired");
}

static void handle_logout(tk_login_t *lg, struct evhttp_request *req, const char *self_origin)
{
    tk_session_t s;
    int rc = tk_login_principal(lg, req, self_origin, &s);
    if (rc != TK_OK) {
        tk_login_refuse(req, rc == TK_ENOENT ? TK_EINVAL : rc);
        return;
    }
    char ip[64];
    req_ip(req, ip, sizeof(ip));
    tk_info(MOD, "user %s signed out", s.user_id);
    audit_login(s.user_id, "auth.logout", "ok", ip, NULL);
    OPENSSL_cleanse(&s, sizeof(s));
    size_t len;
    const char *id = session_cookie(req, &len);
    (void)tk_sessions_close(lg->sh->sessions, id, len);
    set_cookie(req, NULL);
    evhttp_send_reply(req, 204, "No Content", NULL);
}

static void handle_session(tk_login_t *lg, struct evhttp_request *req, const char *self_origin)
{
    tk_session_t s;
    int rc = tk_login_principal(lg, req, self_origin, &s);
    if (rc != TK_OK) {
        tk_login_refuse(req, rc == TK_ENOENT ? TK_EINVAL : rc);
        return;
    }
    tk_http_reply_json(req, 200, "OK", session_json(lg, &s));
    OPENSSL_cleanse(&s, sizeof(s));
}

static int method_is(struct evhttp_request *req, enum evhttp_cmd_type want, const char *allow)
{
    if (evhttp_request_get_command(req) == want)
        return 1;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    tk_admin_reply_error(req, 405, "method_not_allowed", "Method not allowed");
    return 0;
}

/* ---- static files ---- */

static const char *content_type(const char *name)
{
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i][0]) == 0)
            return types[i][1];
    return NULL;
}

/* "name.ext" of letters, digits, '-' and '_' with a known extension. */
static const char *web_name(const char *path)
{
    const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
    size_t dots = 0;
    for (const char *p = name; *p; p++) {
        if (*p == '.')
            dots++;
        else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return NULL;
    }
    return dots == 1 && name[0] != '.' && content_type(name) ? name : NULL;
}

static void serve_file(tk_login_t *lg, struct evhttp_request *req, const char *name)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        tk_admin_reply_error(req, 405, "method_not_allowed", "Method not allowed");
        return;
    }
    /* one directory level, no '/' in name, and O_NOFOLLOW: no traversal
     * and no symlink out of web_dir */
    int fd = openat(lg->web_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > WEB_FILE_MAX) {
        if (fd >= 0)
            close(fd);
        tk_admin_reply_error(req, 404, "not_found", "Not Found");
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (sb.st_size > 0 && evbuffer_add_file(buf, fd, 0, sb.st_size) != 0) {
        evbuffer_free(buf); /* evbuffer_add_file closed fd */
        tk_admin_reply_error(req, 500, "internal", "cannot read the file");
        return;
    }
    if (sb.st_size == 0)
        close(fd);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Security-Policy");
    evhttp_add_header(h, "Content-Security-Policy", WEB_CSP);
    evhttp_remove_header(h, "Content-Type");
    evhttp_add_header(h, "Content-Type", content_type(name));
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
}

int tk_login_route(tk_login_t *lg, struct evhttp_request *req, const char *path, const char *ipkey,
                   const char *self_origin)
{
    if (strcmp(path, "/auth/login") == 0) {
        if (method_is(req, EVHTTP_REQ_POST, "POST"))
            handle_login(lg, req, ipkey, self_origin);
        return 1;
    }
    if (strcmp(path, "/auth/logout") == 0) {
        if (method_is(req, EVHTTP_REQ_POST, "POST"))
            handle_logout(lg, req, self_origin);
        return 1;
    }
    if (strcmp(path, "/auth/session") == 0) {
        if (method_is(req, EVHTTP_REQ_GET, "GET"))
            handle_session(lg, req, self_origin);
        return 1;
    }
    if (lg->oidc != NULL && strcmp(path, "/auth/oidc/start") == 0) {
        if (method_is(req, EVHTTP_REQ_GET, "GET"))
            handle_sso_start(lg, req, ipkey);
        return 1;
    }
    if (lg->oidc != NULL && strcmp(path, "/auth/oidc/callback") == 0) {
        if (method_is(req, EVHTTP_REQ_GET, "GET"))
            handle_sso_callback(lg, req);
        return 1;
    }
    if (strcmp(path, "/auth/methods") == 0) {
        if (method_is(req, EVHTTP_REQ_GET, "GET"))
            tk_http_reply_json(req, 200, "OK",
                               json_pack("{s:b, s:b}", "password", 1, "oidc", lg->oidc != NULL));
        return 1;
    }
    if (strncmp(path, "/auth/", 6) == 0) {
        tk_admin_reply_error(req, 404, "not_found", "Not Found");
        return 1;
    }
    const char *name = lg->web_fd >= 0 ? web_name(path) : NULL;
    if (name == NULL)
        return 0;
    serve_file(lg, req, name);
    return 1;
}

size_t tk_login_close_user(tk_login_t *lg, const char *user_id)
{
    return tk_sessions_close_user(lg->sh->sessions, user_id);
}

/* ---- life cycle ---- */

static void sweep_sso(tk_login_shared_t *sh, uint64_t now)
{
    size_t it = 0, ng = 0;
    const char *k;
    void *val;
    pthread_mutex_lock(&sh->mu);
    char **gone = tk_calloc(tk_map_count(sh->sso) + 1, sizeof(*gone));
    while (tk_map_next(sh->sso, &it, NULL, &k, &val))
        if (now - ((sso_t *)val)->created_ms > SSO_TTL_MS)
            gone[ng++] = tk_strdup(k);
    for (size_t i = 0; i < ng; i++) {
        free(tk_map_sdel(sh->sso, gone[i]));
        free(gone[i]);
    }
    pthread_mutex_unlock(&sh->mu);
    free(gone);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_login_t *lg = arg;
    (void)fd;
    (void)what;
    uint64_t now = tk_now_ms();
    size_t n = tk_sessions_sweep(lg->sh->sessions, now);
    if (n)
        tk_debug(MOD, "%zu expired sessions dropped", n);
    sweep_sso(lg->sh, now);
}

tk_login_shared_t *tk_login_shared_create(const tk_config_t *cfg)
{
    tk_login_shared_t *sh = tk_calloc(1, sizeof(*sh));
    sh->sessions =
        tk_sessions_create((uint64_t)cfg->dash_idle_s * 1000, (uint64_t)cfg->dash_lifetime_s * 1000,
                           cfg->dash_max_sessions);
    sh->rl = tk_ratelimit_local_create(cfg->rate_max_keys);
    pthread_mutex_init(&sh->mu, NULL);
    sh->sso = tk_map_create();
    return sh;
}

void tk_login_shared_destroy(tk_login_shared_t *sh)
{
    if (sh == NULL)
        return;
    size_t it = 0;
    void *val;
    while (tk_map_next(sh->sso, &it, NULL, NULL, &val))
        free(val);
    tk_map_destroy(sh->sso);
    pthread_mutex_destroy(&sh->mu);
    tk_sessions_destroy(sh->sessions);
    tk_ratelimit_destroy(sh->rl);
    free(sh);
}

int tk_login_create(struct event_base *base, const tk_config_t *cfg, const char *db_path,
                    tk_login_shared_t *shared, tk_login_t **out, char *err, size_t errlen)
{
    *out = NULL;
    tk_login_t *lg = tk_calloc(1, sizeof(*lg));
    lg->cfg = cfg;
    lg->web_fd = -1;
    lg->own_sh = shared == NULL;
    lg->sh = shared != NULL ? shared : tk_login_shared_create(cfg);
    if (cfg->oidc_issuer != NULL)
        lg->oidc = tk_oidc_create(cfg);
    if (cfg->dash_web_dir != NULL) {
        lg->web_fd = open(cfg->dash_web_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lg->web_fd < 0) {
            tk_snprintf(err, errlen, "dashboard.web_dir %s: %s", cfg->dash_web_dir,
                        strerror(errno));
            tk_login_destroy(lg);
            return TK_EIO;
        }
    }
    lg->worker = tk_store_worker_create(base, db_path, NULL, NULL, 0, err, errlen);
    if (lg->worker == NULL) {
        tk_login_destroy(lg);
        return TK_EIO;
    }
    lg->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, lg);
    struct timeval tv = {SWEEP_S, 0};
    evtimer_add(lg->sweep, &tv);
    *out = lg;
    return TK_OK;
}

void tk_login_destroy(tk_login_t *lg)
{
    if (lg == NULL)
        return;
    lg->stopping = 1;
    tk_store_worker_destroy(lg->worker); /* runs login_done for what is left */
    tk_oidc_destroy(lg->oidc);
    if (lg->sweep)
        event_free(lg->sweep);
    if (lg->own_sh)
        tk_login_shared_destroy(lg->sh);
    if (lg->web_fd >= 0)
        close(lg->web_fd);
    free(lg);
}
