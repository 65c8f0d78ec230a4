/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Alerts (see alerts.h): sliding-window thresholds under one mutex, and a
 * delivery thread that POSTs signed JSON bodies to the webhook with a
 * blocking libcurl easy handle (it is the only thing that thread does, so
 * blocking there never delays a request).
 */
#include "metrics/alerts.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MOD "alerts"
#define MAX_WINDOWS 512 /* kind x subject pairs tracked; then "_other" */
#define SUBJECT_MAX 64
#define KIND_MAX 64
#define BACKOFF_MAX_MS 30000

typedef struct window {
    int which;
    char subject[SUBJECT_MAX + 1];
    uint64_t *times; /* ring of the last `cap` event times */
    uint32_t cap, n, pos;
    int fired;
    uint64_t last_fired;
} window_t;

struct tk_alerts {
    const tk_alerts_conf_t *conf;
    const tk_ssrf_policy_t *policy;
    tk_alerts_clock_fn clock;
    void *clock_arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    window_t win[MAX_WINDOWS];
    size_t nwin;
    char **queue; /* bodies waiting for delivery (ring of conf->max_queue) */
    size_t qhead, qlen;
    int stop;
    int thread_on;
    pthread_t thread;
    uint64_t raised;
};

static const char *const counter_kind[TK_ALERT_COUNTERS] = {"auth_failures", "rate_limited",
                                                            "upstream_crash_loop"};

static uint64_t now_ms(const tk_alerts_t *a)
{
    return a->clock ? a->clock(a->clock_arg) : tk_now_ms();
}

/* ---- signing ---- */

void tk_alerts_sign(const unsigned char *key, size_t keylen, const char *ts, const char *body,
                    size_t len, char out[TK_ALERT_SIG_LEN])
{
    size_t tslen = strlen(ts);
    unsigned char *msg = tk_malloc(tslen + 1 + len);
    memcpy(msg, ts, tslen);
    msg[tslen] = '.';
    memcpy(msg + tslen + 1, body, len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (HMAC(EVP_sha256(), key, (int)keylen, msg, tslen + 1 + len, md, &mdlen) == NULL)
        mdlen = 0; /* an empty signature never verifies */
    free(msg);
    memcpy(out, "sha256=", 7);
    tk_hex_encode(md, mdlen, out + 7);
}

/* ---- delivery ---- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* One POST; 0 on a 2xx answer. Logs the host, never the URL or key. */
static int post_once(tk_alerts_t *a, const char *body)
{
    char why[TK_SSRF_ERR_MAX];
    tk_ssrf_target_t t;
    if (tk_ssrf_resolve(a->policy, a->conf->webhook_url, &t, why, sizeof(why)) != TK_OK) {
        tk_warn(MOD, "alert webhook not contacted: %s", why);
        return -1;
    }
    char ts[24], sig[TK_ALERT_SIG_LEN], h_ts[64], h_sig[TK_ALERT_SIG_LEN + 32];
    tk_snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    tk_alerts_sign(a->conf->secret, a->conf->secretlen, ts, body, strlen(body), sig);
    tk_snprintf(h_ts, sizeof(h_ts), "X-Tumiki-Timestamp: %s", ts);
    tk_snprintf(h_sig, sizeof(h_sig), "X-Tumiki-Signature: %s", sig);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, h_ts);
    hdrs = curl_slist_append(hdrs, h_sig);
    hdrs = curl_slist_append(hdrs, "Expect:");
    CURL *e = curl_easy_init();
    int rc = -1;
    long code = 0;
    CURLcode res = CURLE_FAILED_INIT;
    if (e != NULL && hdrs != NULL && tk_ssrf_pin_curl(e, &t) == TK_OK) {
        curl_easy_setopt(e, CURLOPT_URL, a->conf->webhook_url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)a->conf->timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)a->conf->timeout_ms);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "tumiki-alerts/" TK_VERSION);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        res = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        rc = res == CURLE_OK && code >= 200 && code < 300 ? 0 : -1;
    }
    if (rc != 0)
        tk_warn(MOD, "alert webhook delivery to %s failed: %s (HTTP %ld)", t.host,
                curl_easy_strerror(res), code);
    curl_easy_cleanup(e);
    curl_slist_free_all(hdrs);
    tk_ssrf_target_clear(&t);
    return rc;
}

/* Wait ms unless stopped; with a->mu held. Returns 1 when stopping. */
static int wait_or_stop(tk_alerts_t *a, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &ts) == 0)
        ;
    return a->stop;
}

static void deliver(tk_alerts_t *a, const char *body)
{
    uint64_t backoff = 1000;
    for (uint32_t attempt = 0; attempt <= a->conf->retries; attempt++) {
        if (post_once(a, body) == 0)
            return;
        if (attempt == a->conf->retries)
            break;
        pthread_mutex_lock(&a->mu);
        int stopping = wait_or_stop(a, backoff);
        pthread_mutex_unlock(&a->mu);
        if (stopping)
            return;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    tk_warn(MOD, "alert dropped after %u attempts", a->conf->retries + 1);
}

static void *deliver_main(void *arg)
{
    tk_alerts_t *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->stop && a->qlen == 0)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->stop)
            break;
        char *body = a->queue[a->qhead];
        a->qhead = (a->qhead + 1) % a->conf->max_queue;
        a->qlen--;
        pthread_mutex_unlock(&a->mu);
        deliver(a, body);
        free(body);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- raising ---- */

static int valid_kind(const char *kind)
{
    size_t n = kind ? strlen(kind) : 0;
    if (n == 0 || n > KIND_MAX)
        return 0;
    return strspn(kind, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static const char *severity_of(const char *kind)
{
    return !strcmp(kind, "tool_definition_changed") || !strcmp(kind, "upstream_crash_loop")
               ? "critical"
               : "warning";
}

static json_t *alert_body(const char *kind, json_t *details)
{
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s, s:s, s:s, s:o}", "alert", kind, "severity", severity_of(kind), "time",
                     when, "details", details ? json_incref(details) : json_object());
}

/* Queue body for the webhook (stolen); TK_ELIMIT when the queue is full. */
static int enqueue(tk_alerts_t *a, char *body)
{
    int rc = TK_OK;
    pthread_mutex_lock(&a->mu);
    a->raised++;
    if (!a->thread_on) {
        free(body);
    } else if (a->qlen >= a->conf->max_queue) {
        free(body);
        rc = TK_ELIMIT;
    } else {
        a->queue[(a->qhead + a->qlen) % a->conf->max_queue] = body;
        a->qlen++;
        pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int tk_alert_raise(tk_alerts_t *a, const char *kind, json_t *details)
{
    if (a == NULL)
        return TK_OK;
    if (!valid_kind(kind) || (details != NULL && !json_is_object(details)))
        return TK_EINVAL;
    json_t *body = alert_body(kind, details);
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    char *shown = json_dumps(json_object_get(body, "details"), JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    if (text == NULL || shown == NULL)
        abort(); /* out of memory, as tk_malloc */
    tk_warn(MOD, "alert %s (%s): %s", kind, severity_of(kind), shown);
    free(shown);
    int rc = enqueue(a, text);
    if (rc == TK_ELIMIT)
        tk_warn(MOD, "alert %s not sent: the webhook queue is full", kind);
    return rc;
}

/* ---- thresholds ---- */

static const tk_alert_rule_t *rule_of(const tk_alerts_t *a, tk_alert_counter_t which)
{
    switch (which) {
    case TK_ALERT_AUTH_FAILURES:
        return &a->conf->auth_failures;
    case TK_ALERT_RATE_LIMITED:
        return &a->conf->rate_limited;
    default:
        return &a->conf->upstream_restarts;
    }
}

/* The window of (which, subject); with a->mu held. */
static window_t *window_of(tk_alerts_t *a, tk_alert_counter_t which, const char *subject,
                           uint32_t cap)
{
    char subj[SUBJECT_MAX + 1];
    tk_snprintf(subj, sizeof(subj), "%s", subject ? subject : "");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < a->nwin; i++)
            if (a->win[i].which == (int)which && strcmp(a->win[i].subject, subj) == 0)
                return &a->win[i];
        if (a->nwin < MAX_WINDOWS) {
            window_t *w = &a->win[a->nwin++];
            w->which = (int)which;
            memcpy(w->subject, subj, sizeof(subj));
            w->cap = cap;
            w->times = tk_calloc(cap, sizeof(*w->times));
            return w;
        }
        tk_snprintf(subj, sizeof(subj), "_other"); /* table full: share one window */
    }
    return NULL;
}

/* Record an event at now; 1 if the rule fires. */
static int window_hit(window_t *w, const tk_alert_rule_t *r, uint32_t cooldown_s, uint64_t now)
{
    w->times[w->pos] = now;
    w->pos = (w->pos + 1) % w->cap;
    if (w->n < w->cap)
        w->n++;
    if (w->n < w->cap)
        return 0;
    uint64_t oldest = w->times[w->pos]; /* the slot written next holds the oldest */
    if (now - oldest > (uint64_t)r->window_s * 1000u)
        return 0;
    if (w->fired && now - w->last_fired < (uint64_t)cooldown_s * 1000u)
        return 0;
    w->fired = 1;
    w->last_fired = now;
    return 1;
}

void tk_alerts_note(tk_alerts_t *a, tk_alert_counter_t which, const char *subject)
{
    if (a == NULL || which >= TK_ALERT_COUNTERS)
        return;
    const tk_alert_rule_t *r = rule_of(a, which);
    if (r->count == 0)
        return;
    pthread_mutex_lock(&a->mu);
    window_t *w = window_of(a, which, subject, r->count);
    int fire = w != NULL && window_hit(w, r, a->conf->cooldown_s, now_ms(a));
    char subj[SUBJECT_MAX + 1] = "";
    if (fire)
        memcpy(subj, w->subject, sizeof(subj));
    pthread_mutex_unlock(&a->mu);
    if (!fire)
        return;
    json_t *d =
        json_pack("{s:i, s:i}", "count", (json_int_t)r->count, "window_s", (json_int_t)r->window_s);
    if (subj[0] != '\0')
        json_object_set_new(d, "server", json_string(subj));
    if (tk_alert_raise(a, counter_kind[which], d) != TK_OK)
        tk_debug(MOD, "alert %s not queued", counter_kind[which]);
    json_decref(d);
}

/* ---- life cycle ---- */

tk_alerts_t *tk_alerts_create(const tk_alerts_conf_t *conf, const tk_ssrf_policy_t *policy)
{
    tk_alerts_t *a = tk_calloc(1, sizeof(*a));
    a->conf = conf;
    a->policy = policy;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (conf->webhook_url != NULL && conf->secret != NULL) {
        a->queue = tk_calloc(conf->max_queue, sizeof(*a->queue));
        if (pthread_create(&a->thread, NULL, deliver_main, a) == 0)
            a->thread_on = 1;
        else
            tk_error(MOD, "cannot start the alert delivery thread: alerts go to the log only");
    }
    return a;
}

void tk_alerts_destroy(tk_alerts_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->thread_on)
        pthread_join(a->thread, NULL);
    if (a->qlen > 0)
        tk_warn(MOD, "%zu alerts not delivered at shutdown", a->qlen);
    for (size_t i = 0; i < a->qlen; i++)
        free(a->queue[(a->qhead + i) % a->conf->max_queue]);
    free(a->queue);
    for (size_t i = 0; i < a->nwin; i++)
        free(a->win[i].times);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

uint64_t tk_alerts_raised(const tk_alerts_t *a)
{
    if (a == NULL)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&a->mu);
    uint64_t n = a->raised;
    pthread_mutex_unlock((pthread_mutex_t *)&a->mu);
    return n;
}

void tk_alerts_set_clock(tk_alerts_t *a, tk_alerts_clock_fn fn, void *arg)
{
    pthread_mutex_lock(&a->mu);
    a->clock = fn;
    a->clock_arg = arg;
    pthread_mutex_unlock(&a->mu);
}
