/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics: a small registry of counters, gauges and histograms with fixed
 * label sets, rendered in the Prometheus text exposition format 0.0.4.
 *
 * Hot path: an increment hashes its label values, finds the series in a
 * fixed-size open-addressing table (lock-free: slots are filled once with a
 * compare-and-swap and never emptied) and updates C11 atomics, so any thread
 * may record at any time. Cardinality is bounded: each family holds at most
 * max_series series; a new label combination beyond that is recorded in one
 * overflow series whose label values are all "_other", and counted in
 * tumiki_metrics_series_dropped_total{family}. Label values are cut at
 * TK_METRIC_VALUE_MAX bytes and any byte outside printable ASCII becomes
 * '_', so the output is always valid; callers must never pass a secret
 * (token, key, argument) as a label value.
 *
 * tk_metrics_create() registers the gateway's standard families (see the
 * tk_metrics_* recording helpers below, and docs/monitoring.md); the
 * helpers accept a NULL registry and then do nothing, so components work
 * without one. The registry owns its families; families are created before
 * the registry is shared between threads and live until it is destroyed.
 */
#ifndef TK_METRICS_H
#define TK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define TK_METRIC_LABELS_MAX 4   /* labels per family */
#define TK_METRIC_VALUE_MAX 64   /* bytes kept of a label value */
#define TK_METRIC_BUCKETS_MAX 16 /* histogram bounds */
#define TK_METRIC_FAMILIES_MAX 64
#define TK_METRIC_SERIES_MAX 10000 /* largest max_series a family may ask for */

typedef struct tk_metrics tk_metrics_t;
typedef struct tk_metric tk_metric_t;

typedef enum { TK_METRIC_COUNTER, TK_METRIC_GAUGE, TK_METRIC_HISTOGRAM } tk_metric_type_t;

/* A registry holding the standard families. Never returns NULL. */
tk_metrics_t *tk_metrics_create(void);
void tk_metrics_destroy(tk_metrics_t *m);

/* Register a family. labels: nlabels label names ([a-zA-Z_][a-zA-Z0-9_]*);
 * bounds: histogram upper bounds in seconds, strictly increasing (nbounds
 * <= TK_METRIC_BUCKETS_MAX; NULL/0 for other types). Returns NULL on an
 * invalid name, label or bound, or past TK_METRIC_FAMILIES_MAX. */
tk_metric_t *tk_metrics_family(tk_metrics_t *m, tk_metric_type_t type, const char *name,
                               const char *help, size_t nlabels, const char *const *labels,
                               size_t max_series, const double *bounds, size_t nbounds);

/* Record into the series with these label values (one per label; NULL is
 * ""). add: counters (delta >= 0) and gauges; set: gauges; observe:
 * histograms, in seconds. All are no-ops on a NULL family. */
void tk_metric_add(tk_metric_t *f, const char *const *values, int64_t delta);
void tk_metric_set(tk_metric_t *f, const char *const *values, int64_t value);
void tk_metric_observe(tk_metric_t *f, const char *const *values, double seconds);

/* The value of one series (counter/gauge value, histogram count); 0 if the
 * series does not exist. For tests and the alerts module. */
int64_t tk_metric_value(const tk_metric_t *f, const char *const *values);

/* Render every family (and process_* metrics read from /proc/self) as the
 * text exposition format. Returns a heap string (caller frees), never NULL. */
char *tk_metrics_render(tk_metrics_t *m, size_t *len);

/* ---- the gateway's standard families ---- */

/* code: HTTP status; endpoint: slug, or a route name such as "/healthz". */
void tk_metrics_http_request(tk_metrics_t *m, const char *endpoint, int code, double seconds);
/* method: any string; only methods of the MCP specification are kept,
 * others are recorded as "other". */
void tk_metrics_mcp_request(tk_metrics_t *m, const char *endpoint, const char *method);
/* result: "ok", "error" (JSON-RPC error), "tool_error" (isError result) or
 * "unavailable" (refused before reaching the server). */
void tk_metrics_tool_call(tk_metrics_t *m, const char *endpoint, const char *server,
                          const char *tool, const char *result, double seconds);
/* scope: "ip", "key", "sub", "endpoint" ... */
void tk_metrics_rate_limited(tk_metrics_t *m, const char *scope);
/* reason: "missing", "invalid", "forbidden" ... */
void tk_metrics_auth_failure(tk_metrics_t *m, const char *reason);
/* Show a configured server's series at 0 before anything happens to it. */
void tk_metrics_upstream_init(tk_metrics_t *m, const char *server);
void tk_metrics_upstream_restart(tk_metrics_t *m, const char *server);
void tk_metrics_upstream_up(tk_metrics_t *m, const char *server, int up);
void tk_metrics_upstream_inflight(tk_metrics_t *m, const char *server, int delta);
void tk_metrics_sessions(tk_metrics_t *m, const char *endpoint, int delta);
void tk_metrics_connections(tk_metrics_t *m, int delta);

/* Monotonic clock in seconds, for durations. */
double tk_metrics_now(void);

/* The standard family of that name (for tests), or NULL. */
tk_metric_t *tk_metrics_find(tk_metrics_t *m, const char *name);

#endif
