/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/metrics: text-format rendering of counters, gauges and
 * label-less families; label value escaping and sanitising; histogram
 * buckets (le semantics, cumulative counts, _sum/_count); family validation;
 * the series cap folding new label sets into "_other" and counting drops;
 * exact totals from two threads incrementing at once; the standard
 * recording helpers (unknown MCP methods become "other"); and the alert
 * thresholds on a fake clock: sliding window, cooldown, per-server windows,
 * "off" rules, kind validation and the webhook signature.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/alerts.h"
#include "metrics/metrics.h"

#define L(...) ((const char *const[]){__VA_ARGS__})

static char *render(tk_metrics_t *m)
{
    size_t len;
    char *s = tk_metrics_render(m, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    return s;
}

/* Whether text holds line as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static void test_counter_and_gauge(void **state)
{
    (void)state;
    tk_metrics_t *m = tk_metrics_create();
    tk_metric_t *c = tk_metrics_family(m, TK_METRIC_COUNTER, "t_things_total", "Things.", 2,
                                       L("a", "b"), 10, NULL, 0);
    tk_metric_t *g =
        tk_metrics_family(m, TK_METRIC_GAUGE, "t_level", "Level.", 0, NULL, 1, NULL, 0);
    assert_non_null(c);
    assert_non_null(g);
    tk_metric_add(c, L("x", "y"), 2);
    tk_metric_add(c, L("x", "y"), 3);
    tk_metric_add(c, L("x", "z"), 1);
    tk_metric_add(c, L("x", "z"), -5); /* counters never go down */
    tk_metric_add(g, NULL, 4);
    tk_metric_add(g, NULL, -7);
    assert_int_equal(tk_metric_value(c, L("x", "y")), 5);
    assert_int_equal(tk_metric_value(c, L("x", "z")), 1);
    assert_int_equal(tk_metric_value(c, L("nope", "y")), 0);
    char *s = render(m);
    assert_true(has_line(s, "# HELP t_things_total Things."));
    assert_true(has_line(s, "# TYPE t_things_total counter"));
    assert_true(has_line(s, "t_things_total{a=\"x\",b=\"y\"} 5"));
    assert_true(has_line(s, "t_things_total{a=\"x\",b=\"z\"} 1"));
    assert_true(has_line(s, "# TYPE t_level gauge"));
    assert_true(has_line(s, "t_level -3"));
    tk_metric_set(g, NULL, 42);
    free(s);
    s = render(m);
    assert_true(has_line(s, "t_level 42"));
    assert_true(has_line(s, "# TYPE process_resident_memory_bytes gauge"));
    assert_true(has_line(s, "tumiki_build_info{version=\"" TK_VERSION "\"} 1"));
    free(s);
    tk_metrics_destroy(m);
}

static void test_escaping(void **state)
{
    (void)state;
    tk_metrics_t *m = tk_metrics_create();
    tk_metric_t *c = tk_metrics_family(m, TK_METRIC_COUNTER, "t_esc_total", "Back\\slash\nnewline",
                                       1, L("v"), 10, NULL, 0);
    tk_metric_add(c, L("q\"uote\\back\nline"), 1);
    tk_metric_add(c, L("bytes\x01\xc3\xa9"), 1); /* control and non-ASCII become '_' */
    tk_metric_add(c, L(NULL), 1);
    char long_value[200];
    memset(long_value, 'a', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    tk_metric_add(c, L(long_value), 1);
    char *s = render(m);
    assert_true(has_line(s, "# HELP t_esc_total Back\\\\slash\\nnewline"));
    /* quote and backslash escaped; a newline is a control byte: '_' */
    assert_true(has_line(s, "t_esc_total{v=\"q\\\"uote\\\\back_line\"} 1"));
    assert_true(has_line(s, "t_esc_total{v=\"bytes___\"} 1"));
    assert_true(has_line(s, "t_esc_total{v=\"\"} 1"));
    char want[128];
    tk_snprintf(want, sizeof(want), "t_esc_total{v=\"%.*s\"} 1", TK_METRIC_VALUE_MAX, long_value);
    assert_true(has_line(s, want)); /* cut at TK_METRIC_VALUE_MAX */
    free(s);
    tk_metrics_destroy(m);
}

static void test_histogram(void **state)
{
    (void)state;
    tk_metrics_t *m = tk_metrics_create();
    const double b[] = {0.01, 0.1, 1};
    tk_metric_t *h = tk_metrics_family(m, TK_METRIC_HISTOGRAM, "t_lat_seconds", "Latency.", 1,
                                       L("srv"), 10, b, 3);
    assert_non_null(h);
    tk_metric_observe(h, L("a"), 0.005);
    tk_metric_observe(h, L("a"), 0.01); /* le: a value equal to a bound is in it */
    tk_metric_observe(h, L("a"), 0.5);
    tk_metric_observe(h, L("a"), 7);
    tk_metric_observe(h, L("a"), -1); /* ignored */
    assert_int_equal(tk_metric_value(h, L("a")), 4);
    char *s = render(m);
    assert_true(has_line(s, "# TYPE t_lat_seconds histogram"));
    assert_true(has_line(s, "t_lat_seconds_bucket{srv=\"a\",le=\"0.01\"} 2"));
    assert_true(has_line(s, "t_lat_seconds_bucket{srv=\"a\",le=\"0.1\"} 2"));
    assert_true(has_line(s, "t_lat_seconds_bucket{srv=\"a\",le=\"1\"} 3"));
    assert_true(has_line(s, "t_lat_seconds_bucket{srv=\"a\",le=\"+Inf\"} 4"));
    assert_true(has_line(s, "t_lat_seconds_count{srv=\"a\"} 4"));
    assert_true(has_line(s, "t_lat_seconds_sum{srv=\"a\"} 7.515000000"));
    free(s);
    tk_metrics_destroy(m);
}

static void test_family_validation(void **state)
{
    (void)state;
    tk_metrics_t *m = tk_metrics_create();
    const double bad[] = {1, 0.5};
    const double ok[] = {0.5, 1};
    assert_null(tk_metrics_family(m, TK_METRIC_COUNTER, "9bad", "", 0, NULL, 1, NULL, 0));
    assert_null(tk_metrics_family(m, TK_METRIC_COUNTER, "has-dash", "", 0, NULL, 1, NULL, 0));
    assert_null(tk_metrics_family(m, TK_METRIC_COUNTER, "t_x", "", 1, L("__reserved"), 1, NULL, 0));
    assert_null(tk_metrics_family(m, TK_METRIC_COUNTER, "t_x", "", 1, L("a b"), 1, NULL, 0));
    assert_null(tk_metrics_family(m, TK_METRIC_COUNTER, "t_x", "", 0, NULL, 0, NULL, 0));
    assert_null(tk_metrics_family(m, TK_METRIC_COUNTER, "t_x", "", 5, L("a", "b", "c", "d", "e"), 1,
                                  NULL, 0));
    assert_null(tk_metrics_family(m, TK_METRIC_HISTOGRAM, "t_h", "", 0, NULL, 1, bad, 2));
    assert_null(tk_metrics_family(m, TK_METRIC_HISTOGRAM, "t_h", "", 1, L("le"), 1, ok, 2));
    assert_null(tk_metrics_family(m, TK_METRIC_GAUGE, "t_g", "", 0, NULL, 1, ok, 2));
    assert_non_null(tk_metrics_family(m, TK_METRIC_HISTOGRAM, "t_h", "", 0, NULL, 1, ok, 2));
    /* NULL families are no-ops */
    tk_metric_add(NULL, NULL, 1);
    tk_metric_observe(NULL, NULL, 1);
    tk_metrics_auth_failure(NULL, "x");
    tk_metrics_destroy(m);
}

static void test_cardinality_cap(void **state)
{
    (void)state;
    tk_metrics_t *m = tk_metrics_create();
    tk_metric_t *c =
        tk_metrics_family(m, TK_METRIC_COUNTER, "t_cap_total", "", 2, L("k", "j"), 3, NULL, 0);
    char v[16];
    for (int i = 0; i < 10; i++) {
        tk_snprintf(v, sizeof(v), "v%d", i);
        tk_metric_add(c, L(v, "x"), 1);
    }
    tk_metric_add(c, L("v0", "x"), 1); /* existing series still count */
    assert_int_equal(tk_metric_value(c, L("v0", "x")), 2);
    assert_int_equal(tk_metric_value(c, L("v2", "x")), 1);
    assert_int_equal(tk_metric_value(c, L("v3", "x")), 0);
    char *s = render(m);
    assert_true(has_line(s, "t_cap_total{k=\"_other\",j=\"_other\"} 7"));
    assert_true(has_line(s, "tumiki_metrics_series_dropped_total{family=\"t_cap_total\"} 7"));
    assert_false(has_line(s, "t_cap_total{k=\"v3\",j=\"x\"} 1"));
    size_t lines = 0;
    for (const char *p = strstr(s, "\nt_cap_total{"); p; p = strstr(p + 1, "\nt_cap_total{"))
        lines++;
    assert_int_equal(lines, 4); /* three series and the overflow */
    free(s);
    tk_metrics_destroy(m);
}

typedef struct worker {
    tk_metric_t *c, *h;
    int id;
} worker_t;

#define ROUNDS 200000

static void *hammer(void *arg)
{
    worker_t *w = arg;
    char own[16];
    tk_snprintf(own, sizeof(own), "t%d", w->id);
    for (int i = 0; i < ROUNDS; i++) {
        tk_metric_add(w->c, L("shared"), 1);
        tk_metric_add(w->c, L(own), 1);
        char fresh[16]; /* new series created concurrently by both threads */
        tk_snprintf(fresh, sizeof(fresh), "n%d", i % 64);
        tk_metric_add(w->c, L(fresh), 1);
        tk_metric_observe(w->h, L("shared"), 0.001);
    }
    return NULL;
}

static void test_two_threads(void **state)
{
    (void)state;
    tk_metrics_t *m = tk_metrics_create();
    const double b[] = {0.01};
    worker_t w[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        w[i].c = i == 0 ? tk_metrics_family(m, TK_METRIC_COUNTER, "t_mt_total", "", 1, L("k"), 100,
                                            NULL, 0)
                        : w[0].c;
        w[i].h = i == 0 ? tk_metrics_family(m, TK_METRIC_HISTOGRAM, "t_mt_seconds", "", 1, L("k"),
                                            10, b, 1)
                        : w[0].h;
        w[i].id = i;
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(tk_metric_value(w[0].c, L("shared")), 2 * ROUNDS);
    assert_int_equal(tk_metric_value(w[0].c, L("t0")), ROUNDS);
    assert_int_equal(tk_metric_value(w[0].c, L("t1")), ROUNDS);
    int64_t fresh = 0;
    for (int i = 0; i < 64; i++) {
        char k[16];
        tk_snprintf(k, sizeof(k), "n%d", i);
        fresh += tk_metric_value(w[0].c, L(k));
    }
    assert_int_equal(fresh, 2 * ROUNDS); /* no lost series, no duplicate */
    assert_int_equal(tk_metric_value(w[0].h, L("shared")), 2 * ROUNDS);
    char *s = render(m);
    assert_true(has_line(s, "t_mt_seconds_bucket{k=\"shared\",le=\"0.01\"} 400000"));
    assert_true(has_line(s, "tumiki_metrics_series_dropped_total{family=\"t_mt_total\"} 0"));
    free(s);
    tk_metrics_destroy(m);
}

static void test_standard_helpers(void **state)
{
    (void)state;
    tk_metrics_t *m = tk_metrics_create();
    tk_metrics_mcp_request(m, "ep", "tools/call");
    tk_metrics_mcp_request(m, "ep", "x/made-up-by-a-client");
    tk_metrics_mcp_request(m, "ep", "y/another");
    tk_metrics_http_request(m, "ep", 200, 0.002);
    tk_metrics_tool_call(m, "ep", "srv", "echo", "ok", 0.001);
    tk_metrics_sessions(m, "ep", 1);
    tk_metrics_sessions(m, "ep", 1);
    tk_metrics_sessions(m, "ep", -1);
    tk_metrics_upstream_init(m, "srv");
    tk_metrics_upstream_up(m, "srv", 1);
    tk_metrics_connections(m, 2);
    tk_metric_t *mcp = tk_metrics_find(m, "tumiki_mcp_requests_total");
    assert_int_equal(tk_metric_value(mcp, L("ep", "other")), 2);
    assert_int_equal(tk_metric_value(mcp, L("ep", "tools/call")), 1);
    char *s = render(m);
    assert_true(has_line(s, "tumiki_http_requests_total{endpoint=\"ep\",code=\"200\"} 1"));
    assert_true(has_line(s, "tumiki_http_request_duration_seconds_bucket{endpoint=\"ep\","
                            "le=\"0.0025\"} 1"));
    assert_true(has_line(s, "tumiki_tool_calls_total{endpoint=\"ep\",server=\"srv\",tool=\"echo\","
                            "result=\"ok\"} 1"));
    assert_true(has_line(s, "tumiki_sessions{endpoint=\"ep\"} 1"));
    assert_true(has_line(s, "tumiki_upstream_restarts_total{server=\"srv\"} 0"));
    assert_true(has_line(s, "tumiki_upstream_up{server=\"srv\"} 1"));
    assert_true(has_line(s, "tumiki_connections 2"));
    free(s);
    tk_metrics_destroy(m);
}

/* ---- alerts ---- */

typedef struct fake_clock {
    uint64_t now;
} fake_clock_t;

static uint64_t fake_now(void *arg)
{
    return ((fake_clock_t *)arg)->now;
}

static tk_alerts_conf_t conf_default(void)
{
    tk_alerts_conf_t c = {0};
    c.auth_failures = (tk_alert_rule_t){.count = 3, .window_s = 10};
    c.rate_limited = (tk_alert_rule_t){.count = 0, .window_s = 10}; /* off */
    c.upstream_restarts = (tk_alert_rule_t){.count = 2, .window_s = 60};
    c.cooldown_s = 30;
    c.timeout_ms = 1000;
    c.max_queue = 4;
    return c;
}

static void test_alert_window(void **state)
{
    (void)state;
    tk_alerts_conf_t conf = conf_default();
    fake_clock_t clk = {1000000};
    tk_alerts_t *a = tk_alerts_create(&conf, NULL);
    tk_alerts_set_clock(a, fake_now, &clk);
    /* 3 events spread over more than 10 s: no alert */
    tk_alerts_note(a, TK_ALERT_AUTH_FAILURES, NULL);
    clk.now += 6000;
    tk_alerts_note(a, TK_ALERT_AUTH_FAILURES, NULL);
    clk.now += 6000;
    tk_alerts_note(a, TK_ALERT_AUTH_FAILURES, NULL);
    assert_int_equal(tk_alerts_raised(a), 0);
    /* the last 3 within 10 s (6 s apart from the first of them): fires */
    clk.now += 3000;
    tk_alerts_note(a, TK_ALERT_AUTH_FAILURES, NULL);
    assert_int_equal(tk_alerts_raised(a), 1);
    /* more inside the cooldown: quiet */
    for (int i = 0; i < 10; i++)
        tk_alerts_note(a, TK_ALERT_AUTH_FAILURES, NULL);
    assert_int_equal(tk_alerts_raised(a), 1);
    /* after the cooldown, a new burst of 3 within the window fires again */
    clk.now += 30000;
    tk_alerts_note(a, TK_ALERT_AUTH_FAILURES, NULL);
    tk_alerts_note(a, TK_ALERT_AUTH_FAILURES, NULL);
    assert_int_equal(tk_alerts_raised(a), 1); /* the ring still holds an old event */
    tk_alerts_note(a, TK_ALERT_AUTH_FAILURES, NULL);
    assert_int_equal(tk_alerts_raised(a), 2);
    /* rate_limited is off */
    for (int i = 0; i < 100; i++)
        tk_alerts_note(a, TK_ALERT_RATE_LIMITED, NULL);
    assert_int_equal(tk_alerts_raised(a), 2);
    tk_alerts_destroy(a);
}

static void test_alert_per_server(void **state)
{
    (void)state;
    tk_alerts_conf_t conf = conf_default();
    fake_clock_t clk = {5000};
    tk_alerts_t *a = tk_alerts_create(&conf, NULL);
    tk_alerts_set_clock(a, fake_now, &clk);
    tk_alerts_note(a, TK_ALERT_UPSTREAM_RESTARTS, "one");
    tk_alerts_note(a, TK_ALERT_UPSTREAM_RESTARTS, "two");
    assert_int_equal(tk_alerts_raised(a), 0); /* one each: below 2 */
    tk_alerts_note(a, TK_ALERT_UPSTREAM_RESTARTS, "one");
    assert_int_equal(tk_alerts_raised(a), 1);
    tk_alerts_note(a, TK_ALERT_UPSTREAM_RESTARTS, "two");
    assert_int_equal(tk_alerts_raised(a), 2); /* its own window and cooldown */
    tk_alerts_note(a, TK_ALERT_UPSTREAM_RESTARTS, "one");
    assert_int_equal(tk_alerts_raised(a), 2);
    tk_alerts_destroy(a);
}

static void test_alert_raise(void **state)
{
    (void)state;
    tk_alerts_conf_t conf = conf_default();
    tk_alerts_t *a = tk_alerts_create(&conf, NULL);
    json_t *d = json_pack("{s:s, s:s}", "server", "fs", "tool", "read_file");
    assert_int_equal(tk_alert_raise(a, "tool_definition_changed", d), TK_OK);
    assert_int_equal(tk_alert_raise(a, "tool_definition_changed", NULL), TK_OK);
    assert_int_equal(tk_alert_raise(a, "Bad-Kind", d), TK_EINVAL);
    assert_int_equal(tk_alert_raise(a, "", d), TK_EINVAL);
    json_t *arr = json_array();
    assert_int_equal(tk_alert_raise(a, "x", arr), TK_EINVAL);
    assert_int_equal(tk_alerts_raised(a), 2);
    assert_int_equal(tk_alert_raise(NULL, "x", d), TK_OK); /* no alerts configured */
    json_decref(arr);
    json_decref(d);
    tk_alerts_destroy(a);
}

static void test_alert_signature(void **state)
{
    (void)state;
    /* known answer from `printf '1700000000.{"a":1}' | openssl dgst -sha256
     * -hmac a-webhook-key-of-32-bytes-or-more`: the signed message is
     * timestamp "." body */
    const char *key = "a-webhook-key-of-32-bytes-or-more";
    char sig[TK_ALERT_SIG_LEN];
    tk_alerts_sign((const unsigned char *)key, strlen(key), "1700000000", "{\"a\":1}", 7, sig);
    assert_string_equal(sig,
                        "sha256=ea36e453885c370d1d62aaee380412a80b2dcbd3e546203a28656f3fb01b5ce3");
    char other[TK_ALERT_SIG_LEN];
    tk_alerts_sign((const unsigned char *)key, strlen(key), "1700000001", "{\"a\":1}", 7, other);
    assert_string_not_equal(sig, other); /* the timestamp is covered */
    tk_alerts_sign((const unsigned char *)key, strlen(key), "1700000000", "{\"a\":2}", 7, other);
    assert_string_not_equal(sig, other); /* the body is covered */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge), cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_histogram),         cmocka_unit_test(test_family_validation),
        cmocka_unit_test(test_cardinality_cap),   cmocka_unit_test(test_two_threads),
        cmocka_unit_test(test_standard_helpers),  cmocka_unit_test(test_alert_window),
        cmocka_unit_test(test_alert_per_server),  cmocka_unit_test(test_alert_raise),
        cmocka_unit_test(test_alert_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
