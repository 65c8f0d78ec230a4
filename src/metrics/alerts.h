/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Alerts: thresholds over security and health events (authentication
 * failures, 429s, upstream restarts per server) and alerts raised directly
 * by other modules (for example "tool_definition_changed"). An alert is a
 * warn log line and, when alerts.webhook_url is configured, a POST of
 *   {"alert": KIND, "severity": "warning"|"critical", "time": RFC 3339 UTC,
 *    "details": {...}}
 * with headers X-Tumiki-Timestamp (unix seconds) and
 * X-Tumiki-Signature: sha256=<hex HMAC-SHA256(secret, timestamp "." body)>.
 *
 * Thresholds are exact sliding windows: the times of the last `count`
 * events are kept in a ring, and the rule fires when the oldest of them is
 * within window_s of the newest. After firing, the same kind (and server)
 * stays quiet for cooldown_s.
 *
 * Delivery runs on the alerts' own thread (a bounded queue; the URL passes
 * the SSRF guard and is pinned to the checked address; no redirects; a
 * timeout per attempt; retries with backoff), so raising never blocks the
 * caller beyond a mutex. Every function may be called from any thread and
 * accepts a NULL tk_alerts_t (then does nothing). The alerts borrow the
 * config and the SSRF policy, which must outlive them. Details must never
 * hold a secret; the webhook URL and the key are never logged.
 */
#ifndef TK_METRICS_ALERTS_H
#define TK_METRICS_ALERTS_H

#include <jansson.h>
#include <stdint.h>

#include "config/config.h"
#include "core/core.h"
#include "net/ssrf.h"

typedef struct tk_alerts tk_alerts_t;

/* Events counted against the configured thresholds. */
typedef enum {
    TK_ALERT_AUTH_FAILURES = 0, /* alert "auth_failures" */
    TK_ALERT_RATE_LIMITED,      /* alert "rate_limited" */
    TK_ALERT_UPSTREAM_RESTARTS, /* alert "upstream_crash_loop", per server */
    TK_ALERT_COUNTERS
} tk_alert_counter_t;

/* Starts the delivery thread when conf->webhook_url is set. */
tk_alerts_t *tk_alerts_create(const tk_alerts_conf_t *conf, const tk_ssrf_policy_t *policy);
/* Stops the thread (an attempt in progress ends within its timeout); alerts
 * still queued are dropped and counted in the log. */
void tk_alerts_destroy(tk_alerts_t *a);

/* Count one event (subject: the server for upstream restarts, else NULL);
 * raises the alert when the threshold is crossed and not cooling down. */
void tk_alerts_note(tk_alerts_t *a, tk_alert_counter_t which, const char *subject);

/* Raise an alert now: kind is [a-z0-9_]{1,64} (e.g. "tool_definition_changed",
 * severity critical; unknown kinds are warnings); details (borrowed, may be
 * NULL) is a JSON object put under "details". TK_EINVAL for a bad kind,
 * TK_ELIMIT when the delivery queue is full (the log line is still written). */
int tk_alert_raise(tk_alerts_t *a, const char *kind, json_t *details) TK_WUR;

/* Alerts raised so far (for tests and the log). */
uint64_t tk_alerts_raised(const tk_alerts_t *a);

/* Tests: replace the clock (monotonic ms); fn NULL restores tk_now_ms(). */
typedef uint64_t (*tk_alerts_clock_fn)(void *arg);
void tk_alerts_set_clock(tk_alerts_t *a, tk_alerts_clock_fn fn, void *arg);

/* sha256=<hex> of HMAC-SHA256(key, ts "." body) into out (72 bytes). */
#define TK_ALERT_SIG_LEN 72
void tk_alerts_sign(const unsigned char *key, size_t keylen, const char *ts, const char *body,
                    size_t len, char out[TK_ALERT_SIG_LEN]);

#endif
