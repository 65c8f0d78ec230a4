/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics registry and Prometheus text rendering (see metrics.h). Each
 * family owns a power-of-two table of atomic series pointers sized to twice
 * its series cap; a slot goes from NULL to a series once and never back, so
 * lookups need no lock and a table never fills. Histograms keep one atomic
 * count per bucket (not cumulative) plus the sum in nanoseconds; rendering
 * accumulates them, so _count always equals the +Inf bucket.
 */
#include "metrics/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef char label_vals_t[TK_METRIC_LABELS_MAX][TK_METRIC_VALUE_MAX + 1];

typedef struct series {
    uint64_t hash;
    label_vals_t vals;
    _Atomic uint64_t value;   /* counter, gauge (two's complement) */
    _Atomic uint64_t sum_ns;  /* histogram */
    _Atomic uint64_t *counts; /* histogram: nbounds + 1 (the last is +Inf) */
} series_t;

struct tk_metric {
    tk_metric_type_t type;
    char *name;
    char *help;
    size_t nlabels;
    char *labels[TK_METRIC_LABELS_MAX];
    double bounds[TK_METRIC_BUCKETS_MAX];
    size_t nbounds;
    size_t max_series;
    size_t mask;
    _Atomic(series_t *) *slots;
    _Atomic size_t nseries;
    _Atomic uint64_t dropped;
    series_t *overflow;
};

struct tk_metrics {
    tk_metric_t *fam[TK_METRIC_FAMILIES_MAX];
    size_t nfam;
    double start_time;
    /* the standard families */
    tk_metric_t *http_requests, *http_duration, *mcp_requests, *tool_calls, *tool_duration;
    tk_metric_t *rate_limited, *auth_failures, *up_restarts, *up_up, *up_inflight;
    tk_metric_t *sessions, *connections;
};

/* ---- names and label values ---- */

static int valid_name(const char *s, int allow_colon)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++) {
        char ch = *s;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || (allow_colon && ch == ':');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Copy values into vals: cut, printable ASCII only; hash them (FNV-1a). */
static uint64_t normalise(const tk_metric_t *f, const char *const *values, label_vals_t vals)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        size_t n = 0;
        for (; v[n] && n < TK_METRIC_VALUE_MAX; n++) {
            unsigned char ch = (unsigned char)v[n];
            vals[i][n] = (ch < 0x20 || ch > 0x7e) ? '_' : (char)ch;
            h = (h ^ (unsigned char)vals[i][n]) * 1099511628211ull;
        }
        vals[i][n] = '\0';
        h = (h ^ 0xff) * 1099511628211ull; /* separator: ("a","b") != ("ab","") */
    }
    return h;
}

static series_t *series_new(const tk_metric_t *f, uint64_t hash, label_vals_t vals)
{
    series_t *s = tk_calloc(1, sizeof(*s));
    s->hash = hash;
    memcpy(s->vals, vals, sizeof(label_vals_t));
    if (f->type == TK_METRIC_HISTOGRAM) {
        s->counts = tk_calloc(f->nbounds + 1, sizeof(*s->counts));
        for (size_t i = 0; i <= f->nbounds; i++)
            atomic_init(&s->counts[i], 0);
    }
    atomic_init(&s->value, 0);
    atomic_init(&s->sum_ns, 0);
    return s;
}

static void series_free(series_t *s)
{
    if (s == NULL)
        return;
    free((void *)s->counts);
    free(s);
}

static int series_match(const tk_metric_t *f, const series_t *s, uint64_t hash, label_vals_t vals)
{
    if (s->hash != hash)
        return 0;
    for (size_t i = 0; i < f->nlabels; i++)
        if (strcmp(s->vals[i], vals[i]) != 0)
            return 0;
    return 1;
}

/* Claim room for one more series; past the cap count a drop instead. */
static int reserve(tk_metric_t *f)
{
    if (atomic_fetch_add(&f->nseries, 1) < f->max_series)
        return 1;
    atomic_fetch_sub(&f->nseries, 1);
    atomic_fetch_add(&f->dropped, 1);
    return 0;
}

/* The series for values, created on first use; the overflow series when
 * the family is full. With create 0, NULL if absent. */
static series_t *lookup(tk_metric_t *f, const char *const *values, int create)
{
    label_vals_t vals;
    uint64_t h = normalise(f, values, vals);
    size_t i = (size_t)h & f->mask;
    for (size_t probes = 0; probes <= f->mask; probes++, i = (i + 1) & f->mask) {
        series_t *s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
        if (s == NULL) {
            if (!create)
                return NULL;
            if (!reserve(f))
                return f->overflow;
            series_t *fresh = series_new(f, h, vals);
            if (atomic_compare_exchange_strong_explicit(&f->slots[i], &s, fresh,
                                                        memory_order_acq_rel, memory_order_acquire))
                return fresh;
            series_free(fresh); /* another thread took the slot: s is its series */
            atomic_fetch_sub(&f->nseries, 1);
        }
        if (series_match(f, s, h, vals))
            return s;
    }
    return create ? f->overflow : NULL; /* unreachable: the table is never full */
}

/* ---- families ---- */

static size_t table_size(size_t max_series)
{
    size_t n = 8;
    while (n < 2 * max_series)
        n *= 2;
    return n;
}

static int valid_bounds(const double *bounds, size_t nbounds)
{
    if (nbounds > TK_METRIC_BUCKETS_MAX || (nbounds > 0 && bounds == NULL))
        return 0;
    for (size_t i = 0; i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return 0;
    return 1;
}

static int valid_family(const tk_metrics_t *m, tk_metric_type_t type, const char *name,
                        size_t nlabels, const char *const *labels, size_t max_series,
                        const double *bounds, size_t nbounds)
{
    if (m->nfam >= TK_METRIC_FAMILIES_MAX || !valid_name(name, 1) ||
        nlabels > TK_METRIC_LABELS_MAX || max_series == 0 || max_series > TK_METRIC_SERIES_MAX)
        return 0;
    if (type == TK_METRIC_HISTOGRAM ? !valid_bounds(bounds, nbounds) : nbounds != 0)
        return 0;
    for (size_t i = 0; i < nlabels; i++)
        if (!valid_name(labels[i], 0) || strncmp(labels[i], "__", 2) == 0 ||
            (type == TK_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0))
            return 0;
    return 1;
}

tk_metric_t *tk_metrics_family(tk_metrics_t *m, tk_metric_type_t type, const char *name,
                               const char *help, size_t nlabels, const char *const *labels,
                               size_t max_series, const double *bounds, size_t nbounds)
{
    if (!valid_family(m, type, name, nlabels, labels, max_series, bounds, nbounds))
        return NULL;
    tk_metric_t *f = tk_calloc(1, sizeof(*f));
    f->type = type;
    f->name = tk_strdup(name);
    f->help = tk_strdup(help ? help : "");
    f->nlabels = nlabels;
    for (size_t i = 0; i < nlabels; i++)
        f->labels[i] = tk_strdup(labels[i]);
    if (nbounds)
        memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
    f->nbounds = nbounds;
    f->max_series = max_series;
    size_t n = table_size(max_series);
    f->mask = n - 1;
    f->slots = tk_calloc(n, sizeof(*f->slots));
    for (size_t i = 0; i < n; i++)
        atomic_init(&f->slots[i], NULL);
    atomic_init(&f->nseries, 0);
    atomic_init(&f->dropped, 0);
    label_vals_t other;
    for (size_t i = 0; i < TK_METRIC_LABELS_MAX; i++)
        tk_snprintf(other[i], sizeof(other[i]), "%s", i < nlabels ? "_other" : "");
    f->overflow = series_new(f, 0, other);
    if (nlabels == 0)
        (void)lookup(f, NULL, 1); /* a label-less family always shows its one series */
    m->fam[m->nfam++] = f;
    return f;
}

static void family_free(tk_metric_t *f)
{
    for (size_t i = 0; i <= f->mask; i++)
        series_free(atomic_load(&f->slots[i]));
    free((void *)f->slots);
    series_free(f->overflow);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

/* ---- recording ---- */

void tk_metric_add(tk_metric_t *f, const char *const *values, int64_t delta)
{
    if (f == NULL || f->type == TK_METRIC_HISTOGRAM || (f->type == TK_METRIC_COUNTER && delta < 0))
        return;
    series_t *s = lookup(f, values, 1);
    atomic_fetch_add_explicit(&s->value, (uint64_t)delta, memory_order_relaxed);
}

void tk_metric_set(tk_metric_t *f, const char *const *values, int64_t value)
{
    if (f == NULL || f->type != TK_METRIC_GAUGE)
        return;
    atomic_store_explicit(&lookup(f, values, 1)->value, (uint64_t)value, memory_order_relaxed);
}

void tk_metric_observe(tk_metric_t *f, const char *const *values, double seconds)
{
    if (f == NULL || f->type != TK_METRIC_HISTOGRAM || !(seconds >= 0))
        return;
    series_t *s = lookup(f, values, 1);
    size_t b = 0;
    while (b < f->nbounds && seconds > f->bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->counts[b], 1, memory_order_relaxed);
    double ns = seconds * 1e9;
    atomic_fetch_add_explicit(&s->sum_ns, ns < 1.8e19 ? (uint64_t)ns : UINT64_MAX / 2,
                              memory_order_relaxed);
}

static int64_t series_value(const tk_metric_t *f, series_t *s)
{
    if (f->type != TK_METRIC_HISTOGRAM)
        return (int64_t)atomic_load_explicit(&s->value, memory_order_relaxed);
    uint64_t n = 0;
    for (size_t b = 0; b <= f->nbounds; b++)
        n += atomic_load_explicit(&s->counts[b], memory_order_relaxed);
    return (int64_t)n;
}

int64_t tk_metric_value(const tk_metric_t *f, const char *const *values)
{
    if (f == NULL)
        return 0;
    series_t *s = lookup((tk_metric_t *)f, values, 0);
    return s ? series_value(f, s) : 0;
}

/* ---- rendering ---- */

/* HELP text escapes '\' and newline; label values also '"'. */
static void put_escaped(FILE *o, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            (void)fputs("\\\\", o);
        else if (*s == '\n')
            (void)fputs("\\n", o);
        else if (quote && *s == '"')
            (void)fputs("\\\"", o);
        else
            (void)fputc(*s, o);
    }
}

/* {a="x",b="y"[,le="..."]} or nothing when there are no labels at all. */
static void put_labels(FILE *o, const tk_metric_t *f, const series_t *s, const char *le)
{
    if (f->nlabels == 0 && le == NULL)
        return;
    (void)fputc('{', o);
    for (size_t i = 0; i < f->nlabels; i++) {
        fprintf(o, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_escaped(o, s->vals[i], 1);
        (void)fputc('"', o);
    }
    if (le != NULL)
        fprintf(o, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    (void)fputc('}', o);
}

static void put_histogram(FILE *o, const tk_metric_t *f, series_t *s)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t b = 0; b <= f->nbounds; b++) {
        cum += atomic_load_explicit(&s->counts[b], memory_order_relaxed);
        if (b < f->nbounds)
            tk_snprintf(le, sizeof(le), "%g", f->bounds[b]);
        else
            tk_snprintf(le, sizeof(le), "+Inf");
        fprintf(o, "%s_bucket", f->name);
        put_labels(o, f, s, le);
        fprintf(o, " %llu\n", (unsigned long long)cum);
    }
    fprintf(o, "%s_sum", f->name);
    put_labels(o, f, s, NULL);
    fprintf(o, " %.9f\n", (double)atomic_load(&s->sum_ns) / 1e9);
    fprintf(o, "%s_count", f->name);
    put_labels(o, f, s, NULL);
    fprintf(o, " %llu\n", (unsigned long long)cum);
}

static void put_series(FILE *o, const tk_metric_t *f, series_t *s)
{
    if (f->type == TK_METRIC_HISTOGRAM) {
        put_histogram(o, f, s);
        return;
    }
    (void)fputs(f->name, o);
    put_labels(o, f, s, NULL);
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    if (f->type == TK_METRIC_GAUGE)
        fprintf(o, " %lld\n", (long long)(int64_t)v);
    else
        fprintf(o, " %llu\n", (unsigned long long)v);
}

static const char *type_name(tk_metric_type_t t)
{
    return t == TK_METRIC_COUNTER ? "counter" : t == TK_METRIC_GAUGE ? "gauge" : "histogram";
}

static void put_family(FILE *o, const tk_metric_t *f)
{
    fprintf(o, "# HELP %s ", f->name);
    put_escaped(o, f->help, 0);
    fprintf(o, "\n# TYPE %s %s\n", f->name, type_name(f->type));
    for (size_t i = 0; i <= f->mask; i++) {
        series_t *s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
        if (s != NULL)
            put_series(o, f, s);
    }
    if (series_value(f, f->overflow) != 0 || atomic_load(&f->overflow->sum_ns) != 0)
        put_series(o, f, f->overflow);
}

static void put_dropped(FILE *o, tk_metrics_t *m)
{
    (void)fputs("# HELP tumiki_metrics_series_dropped_total Recordings folded into the \"_other\" "
          "series because the family reached its series cap.\n"
          "# TYPE tumiki_metrics_series_dropped_total counter\n",
          o);
    for (size_t i = 0; i < m->nfam; i++)
        fprintf(o, "tumiki_metrics_series_dropped_total{family=\"%s\"} %llu\n", m->fam[i]->name,
                (unsigned long long)atomic_load(&m->fam[i]->dropped));
}

double tk_metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* process_* from /proc/self (Linux); silently absent elsewhere. */
static void put_process(FILE *o, const tk_metrics_t *m)
{
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long ut = 0, st = 0, pages = 0;
    FILE *f = fopen("/proc/self/stat", "re");
    if (f != NULL) {
        /* the command name (field 2) may hold spaces: skip to its ')' */
        int ch;
        while ((ch = fgetc(f)) != EOF && ch != ')')
            ;
        if (fscanf(f, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
            ut = st = 0;
        (void)fclose(f);
    }
    f = fopen("/proc/self/statm", "re");
    if (f != NULL) {
        if (fscanf(f, "%*u %llu", &pages) != 1)
            pages = 0;
        (void)fclose(f);
    }
    fprintf(o,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
            "# HELP process_start_time_seconds Start time of the process since unix epoch in "
            "seconds.\n# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds %.3f\n"
            "# HELP tumiki_build_info Tumiki version.\n# TYPE tumiki_build_info gauge\n"
            "tumiki_build_info{version=\"%s\"} 1\n",
            tick > 0 ? (double)(ut + st) / (double)tick : 0.0,
            pages * (unsigned long long)(page > 0 ? page : 4096), m->start_time, TK_VERSION);
}

char *tk_metrics_render(tk_metrics_t *m, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *o = open_memstream(&buf, &n);
    if (o == NULL)
        abort(); /* out of memory, as tk_malloc */
    for (size_t i = 0; i < m->nfam; i++)
        put_family(o, m->fam[i]);
    put_dropped(o, m);
    put_process(o, m);
    if (fclose(o) != 0 || buf == NULL)
        abort();
    if (len)
        *len = n;
    return buf;
}

/* ---- the standard families ---- */

static const double http_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};

#define L(...) ((const char *const[]){__VA_ARGS__})

typedef struct std_family {
    size_t off; /* of the tk_metric_t * in tk_metrics_t */
    tk_metric_type_t type;
    const char *name;
    const char *help;
    size_t nlabels;
    const char *labels[TK_METRIC_LABELS_MAX];
    size_t max_series;
} std_family_t;

#define STD(f) offsetof(tk_metrics_t, f)

/* clang-format off */
static const std_family_t std_families[] = {
    {STD(http_requests), TK_METRIC_COUNTER, "tumiki_http_requests_total",
     "HTTP requests answered, by endpoint and status code.", 2, {"endpoint", "code"}, 2000},
    {STD(http_duration), TK_METRIC_HISTOGRAM, "tumiki_http_request_duration_seconds",
     "Time from a request's headers to the end of its response (SSE streams: until closed).",
     1, {"endpoint"}, 300},
    {STD(mcp_requests), TK_METRIC_COUNTER, "tumiki_mcp_requests_total",
     "MCP JSON-RPC requests received, by endpoint and method.", 2, {"endpoint", "method"}, 2000},
    {STD(tool_calls), TK_METRIC_COUNTER, "tumiki_tool_calls_total",
     "tools/call requests routed to a server, by endpoint, server, tool and result.",
     4, {"endpoint", "server", "tool", "result"}, 5000},
    {STD(tool_duration), TK_METRIC_HISTOGRAM, "tumiki_tool_call_duration_seconds",
     "tools/call round trip through the gateway, by server.", 1, {"server"}, 300},
    {STD(rate_limited), TK_METRIC_COUNTER, "tumiki_rate_limited_total",
     "Requests refused with 429, by the limit that refused.", 1, {"scope"}, 16},
    {STD(auth_failures), TK_METRIC_COUNTER, "tumiki_auth_failures_total",
     "Requests refused for their credential, by reason.", 1, {"reason"}, 16},
    {STD(up_restarts), TK_METRIC_COUNTER, "tumiki_upstream_restarts_total",
     "Upstream server processes or connections lost while starting or ready.", 1, {"server"}, 300},
    {STD(up_up), TK_METRIC_GAUGE, "tumiki_upstream_up",
     "1 while the upstream server has completed its handshake.", 1, {"server"}, 300},
    {STD(up_inflight), TK_METRIC_GAUGE, "tumiki_upstream_inflight",
     "Client calls forwarded to the server and not yet answered.", 1, {"server"}, 300},
    {STD(sessions), TK_METRIC_GAUGE, "tumiki_sessions",
     "Open MCP sessions, by endpoint.", 1, {"endpoint"}, 300},
    {STD(connections), TK_METRIC_GAUGE, "tumiki_connections",
     "Open client connections.", 0, {NULL}, 1},
};
/* clang-format on */

static void register_standard(tk_metrics_t *m)
{
    size_t nb = sizeof(http_bounds) / sizeof(http_bounds[0]);
    for (size_t i = 0; i < sizeof(std_families) / sizeof(std_families[0]); i++) {
        const std_family_t *d = &std_families[i];
        int hist = d->type == TK_METRIC_HISTOGRAM;
        tk_metric_t *f = tk_metrics_family(m, d->type, d->name, d->help, d->nlabels, d->labels,
                                           d->max_series, hist ? http_bounds : NULL, hist ? nb : 0);
        memcpy((char *)m + d->off, &f, sizeof(f)); /* the field at d->off is a tk_metric_t * */
    }
}

tk_metrics_t *tk_metrics_create(void)
{
    tk_metrics_t *m = tk_calloc(1, sizeof(*m));
    m->start_time = wall_now();
    register_standard(m);
    return m;
}

void tk_metrics_destroy(tk_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfam; i++)
        family_free(m->fam[i]);
    free(m);
}

tk_metric_t *tk_metrics_find(tk_metrics_t *m, const char *name)
{
    for (size_t i = 0; m && i < m->nfam; i++)
        if (strcmp(m->fam[i]->name, name) == 0)
            return m->fam[i];
    return NULL;
}

/* The MCP methods a client may send; anything else is "other", so a client
 * cannot grow the method label without bound. */
static const char *const mcp_methods[] = {"initialize",
                                          "ping",
                                          "tools/list",
                                          "tools/call",
                                          "prompts/list",
                                          "prompts/get",
                                          "resources/list",
                                          "resources/templates/list",
                                          "resources/read",
                                          "resources/subscribe",
                                          "resources/unsubscribe",
                                          "completion/complete",
                                          "logging/setLevel"};

static const char *known_method(const char *method)
{
    for (size_t i = 0; method && i < sizeof(mcp_methods) / sizeof(mcp_methods[0]); i++)
        if (strcmp(method, mcp_methods[i]) == 0)
            return mcp_methods[i];
    return "other";
}

void tk_metrics_http_request(tk_metrics_t *m, const char *endpoint, int code, double seconds)
{
    if (m == NULL)
        return;
    char c[16];
    tk_snprintf(c, sizeof(c), "%d", code);
    tk_metric_add(m->http_requests, L(endpoint, c), 1);
    tk_metric_observe(m->http_duration, L(endpoint), seconds);
}

void tk_metrics_mcp_request(tk_metrics_t *m, const char *endpoint, const char *method)
{
    if (m != NULL)
        tk_metric_add(m->mcp_requests, L(endpoint, known_method(method)), 1);
}

void tk_metrics_tool_call(tk_metrics_t *m, const char *endpoint, const char *server,
                          const char *tool, const char *result, double seconds)
{
    if (m == NULL)
        return;
    tk_metric_add(m->tool_calls, L(endpoint, server, tool, result), 1);
    tk_metric_observe(m->tool_duration, L(server), seconds);
}

void tk_metrics_rate_limited(tk_metrics_t *m, const char *scope)
{
    if (m != NULL)
        tk_metric_add(m->rate_limited, L(scope), 1);
}

void tk_metrics_auth_failure(tk_metrics_t *m, const char *reason)
{
    if (m != NULL)
        tk_metric_add(m->auth_failures, L(reason), 1);
}

void tk_metrics_upstream_restart(tk_metrics_t *m, const char *server)
{
    if (m != NULL)
        tk_metric_add(m->up_restarts, L(server), 1);
}

void tk_metrics_upstream_init(tk_metrics_t *m, const char *server)
{
    if (m == NULL)
        return;
    tk_metric_add(m->up_restarts, L(server), 0);
    tk_metric_set(m->up_up, L(server), 0);
    tk_metric_set(m->up_inflight, L(server), 0);
}

void tk_metrics_upstream_up(tk_metrics_t *m, const char *server, int up)
{
    if (m != NULL)
        tk_metric_set(m->up_up, L(server), up ? 1 : 0);
}

void tk_metrics_upstream_inflight(tk_metrics_t *m, const char *server, int delta)
{
    if (m != NULL)
        tk_metric_add(m->up_inflight, L(server), delta);
}

void tk_metrics_sessions(tk_metrics_t *m, const char *endpoint, int delta)
{
    if (m != NULL)
        tk_metric_add(m->sessions, L(endpoint), delta);
}

void tk_metrics_connections(tk_metrics_t *m, int delta)
{
    if (m != NULL)
        tk_metric_add(m->connections, NULL, delta);
}
