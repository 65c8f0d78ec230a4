/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the token-bucket rate limiter (src/state/ratelimit.c), all on
 * a fake clock with no sleeps: exactly `count` requests pass at t=0 and the
 * next is denied with the right retry_after; one period/count later exactly
 * one more passes; a full period refills the bucket; burst below count; keys
 * are independent; retry_after rounds up to whole seconds; remaining counts
 * down; no drift over many periods; a clock stepping back mints nothing; a
 * rate change keeps the fill level; the bucket table stays within max_keys,
 * dropping full idle buckets before drained recent ones and otherwise the
 * least recently used; the rate-string parser's accepted and rejected forms;
 * argument checks; a pluggable backend; a million takes over 1000 keys; and
 * four threads sharing one limiter (as the HTTP threads do) taking exactly
 * the bucket's tokens between them, no more, with the table bounded.
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

#include "core/core.h"
#include "state/ratelimit.h"

typedef struct fake_clock {
    uint64_t now;
} fake_clock_t;

static uint64_t fake_now(void *arg)
{
    return ((fake_clock_t *)arg)->now;
}

static tk_ratelimit_t *new_limiter(size_t max_keys, fake_clock_t *clk)
{
    tk_ratelimit_t *rl = tk_ratelimit_local_create(max_keys);
    assert_non_null(rl);
    tk_ratelimit_set_clock(rl, fake_now, clk);
    return rl;
}

static tk_rate_t rate(uint32_t count, uint32_t period_ms, uint32_t burst)
{
    tk_rate_t r = {.count = count, .burst = burst, .period_ms = period_ms};
    return r;
}

/* Take once; return the verdict, leaving details in *res (may be NULL). */
static int take(tk_ratelimit_t *rl, const char *key, const tk_rate_t *r, tk_rate_result_t *res)
{
    tk_rate_result_t tmp;
    if (res == NULL)
        res = &tmp;
    assert_int_equal(tk_ratelimit_take(rl, key, r, res), TK_OK);
    return res->allowed;
}

/* Take until denied (at most limit+1 times); return how many passed. */
static unsigned drain(tk_ratelimit_t *rl, const char *key, const tk_rate_t *r, unsigned limit)
{
    unsigned n = 0;
    while (n <= limit && take(rl, key, r, NULL))
        n++;
    return n;
}

static void test_count_then_denied(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(16, &clk);
    tk_rate_t r = rate(100, 60000, 100);
    tk_rate_result_t res;
    for (unsigned i = 0; i < 100; i++) {
        assert_true(take(rl, "key:a", &r, &res));
        assert_int_equal(res.remaining, 99 - i); /* counts down */
        assert_int_equal(res.limit, 100);
        assert_int_equal(res.retry_after_s, 0);
        assert_int_equal(res.reset_ms, (uint64_t)(i + 1) * 600);
    }
    assert_false(take(rl, "key:a", &r, &res));
    assert_int_equal(res.remaining, 0);
    assert_int_equal(res.retry_after_s, 1); /* 600 ms rounds up */
    assert_int_equal(res.limit, 100);
    assert_int_equal(res.reset_ms, 60000);
    assert_false(take(rl, "key:a", &r, NULL)); /* denials take nothing more */
    tk_ratelimit_destroy(rl);
}

static void test_refill_one(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(16, &clk);
    tk_rate_t r = rate(100, 60000, 100);
    assert_int_equal(drain(rl, "k", &r, 100), 100);
    clk.now = 599;
    assert_false(take(rl, "k", &r, NULL));
    clk.now = 600;
    assert_int_equal(drain(rl, "k", &r, 100), 1);
    clk.now = 1199;
    assert_false(take(rl, "k", &r, NULL));
    clk.now = 1200;
    assert_int_equal(drain(rl, "k", &r, 100), 1);
    /* two intervals at once give two */
    clk.now = 2400;
    assert_int_equal(drain(rl, "k", &r, 100), 2);
    tk_ratelimit_destroy(rl);
}

static void test_full_refill(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(16, &clk);
    tk_rate_t r = rate(100, 60000, 100);
    assert_int_equal(drain(rl, "k", &r, 100), 100);
    clk.now = 60000;
    assert_int_equal(drain(rl, "k", &r, 200), 100);
    /* a long idle time still caps at burst */
    clk.now = 60000 + 365ULL * 86400000;
    tk_rate_result_t res;
    assert_true(take(rl, "k", &r, &res));
    assert_int_equal(res.remaining, 99);
    assert_int_equal(drain(rl, "k", &r, 200), 99);
    tk_ratelimit_destroy(rl);
}

static void test_burst_smaller_than_count(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(16, &clk);
    tk_rate_t r = rate(100, 60000, 20);
    tk_rate_result_t res;
    assert_true(take(rl, "k", &r, &res));
    assert_int_equal(res.remaining, 19);
    assert_int_equal(res.limit, 20);
    assert_int_equal(drain(rl, "k", &r, 100), 19);
    assert_false(take(rl, "k", &r, &res));
    assert_int_equal(res.retry_after_s, 1);
    assert_int_equal(res.reset_ms, 20 * 600);
    clk.now = 600;
    assert_int_equal(drain(rl, "k", &r, 100), 1);
    clk.now = 600 + 60000;
    assert_int_equal(drain(rl, "k", &r, 100), 20); /* refill stops at burst */
    tk_ratelimit_destroy(rl);
}

static void test_independent_keys(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(16, &clk);
    tk_rate_t r = rate(5, 1000, 5);
    tk_rate_t r2 = rate(2, 1000, 2);
    assert_int_equal(drain(rl, "key:a", &r, 10), 5);
    assert_int_equal(drain(rl, "key:b", &r, 10), 5);
    assert_int_equal(drain(rl, "ip:10.0.0.1", &r2, 10), 2);
    assert_int_equal(drain(rl, "ep:default", &r, 10), 5);
    assert_int_equal(tk_ratelimit_count(rl), 4);
    clk.now = 200;
    assert_int_equal(drain(rl, "key:a", &r, 10), 1);
    assert_int_equal(drain(rl, "key:b", &r, 10), 1);
    assert_int_equal(drain(rl, "ip:10.0.0.1", &r2, 10), 0);
    tk_ratelimit_destroy(rl);
}

static void check_retry(uint32_t count, uint32_t period_ms, uint32_t expect_s)
{
    fake_clock_t clk = {12345};
    tk_ratelimit_t *rl = new_limiter(4, &clk);
    tk_rate_t r = rate(count, period_ms, count);
    tk_rate_result_t res;
    assert_int_equal(drain(rl, "k", &r, count), count);
    assert_false(take(rl, "k", &r, &res));
    assert_int_equal(res.retry_after_s, expect_s);
    tk_ratelimit_destroy(rl);
}

static void test_retry_after_rounding(void **state)
{
    (void)state;
    check_retry(100, 60000, 1);      /* 600 ms */
    check_retry(1, 3600000, 3600);   /* 1/h */
    check_retry(3, 10000, 4);        /* 3333.3 ms */
    check_retry(1, 1500, 2);         /* 1.5 s */
    check_retry(1, 1000, 1);         /* exactly 1 s */
    check_retry(1, 1001, 2);         /* just over */
    check_retry(1000, 1, 1);         /* a token per us: still >= 1 s */
    check_retry(1, 86400000, 86400); /* 1/day */

    /* partly refilled: 1/h, 30 min later 1800 s remain */
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(4, &clk);
    tk_rate_t r = rate(1, 3600000, 1);
    tk_rate_result_t res;
    assert_true(take(rl, "k", &r, NULL));
    clk.now = 1800000;
    assert_false(take(rl, "k", &r, &res));
    assert_int_equal(res.retry_after_s, 1800);
    assert_int_equal(res.reset_ms, 1800000);
    clk.now = 3599001;
    assert_false(take(rl, "k", &r, &res));
    assert_int_equal(res.retry_after_s, 1);
    tk_ratelimit_destroy(rl);
}

/* 3 per 10 s (3333.3 ms a token) polled every 8 ms for 100 periods: exactly
 * 300 tokens, none lost or gained to rounding. */
static void test_no_drift(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(4, &clk);
    tk_rate_t r = rate(3, 10000, 3);
    assert_int_equal(drain(rl, "k", &r, 3), 3);
    unsigned allowed = 0;
    for (clk.now = 8; clk.now <= 1000000; clk.now += 8)
        allowed += (unsigned)take(rl, "k", &r, NULL);
    assert_int_equal(allowed, 300);
    tk_ratelimit_destroy(rl);
}

static void test_clock_backwards(void **state)
{
    (void)state;
    fake_clock_t clk = {10000};
    tk_ratelimit_t *rl = new_limiter(4, &clk);
    tk_rate_t r = rate(100, 60000, 100);
    tk_rate_result_t res;
    assert_int_equal(drain(rl, "k", &r, 100), 100);
    clk.now = 0; /* back 10 s */
    assert_false(take(rl, "k", &r, &res));
    assert_int_equal(res.retry_after_s, 1);
    clk.now = 10000 + 599; /* forward again: time is counted from 10000 */
    assert_false(take(rl, "k", &r, NULL));
    clk.now = 10000 + 600;
    assert_int_equal(drain(rl, "k", &r, 100), 1);

    /* back and forth repeatedly mints nothing either */
    clk.now = 20000;
    assert_int_equal(drain(rl, "k", &r, 100), 15); /* 9400 ms since 10600 -> 15.67 */
    for (int i = 0; i < 100; i++) {
        clk.now = (i % 2) ? 20000 : 19000;
        assert_false(take(rl, "k", &r, NULL));
    }
    tk_ratelimit_destroy(rl);
}

static void test_rate_change(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(4, &clk);
    tk_rate_t per_min = rate(100, 60000, 100);
    tk_rate_t per_hour = rate(100, 3600000, 100);
    tk_rate_t small = rate(100, 60000, 20);
    tk_rate_result_t res;
    /* a drained bucket stays drained under a new rate */
    assert_int_equal(drain(rl, "k", &per_min, 100), 100);
    assert_false(take(rl, "k", &per_hour, &res));
    assert_int_equal(res.retry_after_s, 36);
    /* half a token earned at 100/h is half a token at 100/min */
    clk.now = 18000;
    assert_false(take(rl, "k", &per_hour, &res));
    assert_int_equal(res.retry_after_s, 18);
    assert_false(take(rl, "k", &per_min, &res));
    assert_int_equal(res.retry_after_s, 1);
    assert_int_equal(res.reset_ms, 60000 - 300);
    clk.now = 18299;
    assert_false(take(rl, "k", &per_min, NULL));
    clk.now = 18300;
    assert_true(take(rl, "k", &per_min, &res));
    assert_int_equal(res.remaining, 0);
    /* a full bucket shrinks to the new burst */
    assert_true(take(rl, "full", &per_min, &res));
    assert_int_equal(res.remaining, 99);
    assert_true(take(rl, "full", &small, &res));
    assert_int_equal(res.remaining, 19);
    assert_int_equal(res.limit, 20);
    tk_ratelimit_destroy(rl);
}

static void test_bounded(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(100, &clk);
    tk_rate_t r = rate(10, 60000, 10);
    char key[32];
    for (unsigned i = 0; i < 20000; i++) {
        tk_snprintf(key, sizeof(key), "ip:10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
        clk.now = i / 10; /* mix of full and drained buckets */
        take(rl, key, &r, NULL);
        if (i % 3 == 0)
            take(rl, key, &r, NULL);
        assert_true(tk_ratelimit_count(rl) <= 100);
    }
    assert_int_equal(tk_ratelimit_count(rl), 100);
    tk_ratelimit_destroy(rl);

    rl = new_limiter(1, &clk);
    assert_int_equal(drain(rl, "a", &r, 10), 10);
    assert_int_equal(drain(rl, "b", &r, 10), 10);
    assert_int_equal(tk_ratelimit_count(rl), 1);
    tk_ratelimit_destroy(rl);
}

/* Full idle buckets go before drained ones even when the drained ones are the
 * least recently used: dropping a drained bucket would reset its limit. */
static void test_evict_full_first(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(8, &clk);
    tk_rate_t r = rate(10, 60000, 10);
    tk_rate_result_t res;
    char key[16];
    for (int i = 0; i < 4; i++) { /* drained at t=0 */
        tk_snprintf(key, sizeof(key), "hot%d", i);
        assert_int_equal(drain(rl, key, &r, 10), 10);
    }
    clk.now = 1000;
    for (int i = 0; i < 4; i++) { /* one token each at t=1000: full at 7000 */
        tk_snprintf(key, sizeof(key), "idle%d", i);
        assert_true(take(rl, key, &r, NULL));
    }
    assert_int_equal(tk_ratelimit_count(rl), 8);
    clk.now = 10000;
    for (int i = 0; i < 4; i++) {
        tk_snprintf(key, sizeof(key), "new%d", i);
        assert_true(take(rl, key, &r, NULL));
        /* the first insert swept out all four full idle buckets at once */
        assert_int_equal(tk_ratelimit_count(rl), (size_t)(5 + i));
    }
    /* the hot buckets kept their state: 10000 ms = 1.67 tokens */
    for (int i = 0; i < 4; i++) {
        tk_snprintf(key, sizeof(key), "hot%d", i);
        assert_true(take(rl, key, &r, &res));
        assert_int_equal(res.remaining, 0);
        assert_false(take(rl, key, &r, NULL));
    }
    /* and the new ones too */
    for (int i = 0; i < 4; i++) {
        tk_snprintf(key, sizeof(key), "new%d", i);
        assert_true(take(rl, key, &r, &res));
        assert_int_equal(res.remaining, 8);
    }
    assert_int_equal(tk_ratelimit_count(rl), 8);
    tk_ratelimit_destroy(rl);
}

/* With nothing full, the least recently used bucket goes. */
static void test_evict_lru(void **state)
{
    (void)state;
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(4, &clk);
    tk_rate_t r = rate(1, 3600000, 1);
    const char *keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        assert_true(take(rl, keys[i], &r, NULL));
    clk.now = 1;
    assert_false(take(rl, "a", &r, NULL)); /* a is now the most recent */
    clk.now = 2;
    assert_true(take(rl, "e", &r, NULL)); /* evicts b */
    assert_int_equal(tk_ratelimit_count(rl), 4);
    assert_false(take(rl, "a", &r, NULL));
    assert_false(take(rl, "c", &r, NULL));
    assert_false(take(rl, "d", &r, NULL));
    assert_false(take(rl, "e", &r, NULL));
    assert_true(take(rl, "b", &r, NULL)); /* fresh: b was dropped; evicts a */
    assert_true(take(rl, "a", &r, NULL)); /* a was least recent; evicts c */
    assert_int_equal(tk_ratelimit_count(rl), 4);
    assert_false(take(rl, "d", &r, NULL));
    assert_false(take(rl, "e", &r, NULL));
    tk_ratelimit_destroy(rl);
}

typedef struct parse_case {
    const char *s;
    uint32_t count, period_ms, burst;
} parse_case_t;

static void test_parse_ok(void **state)
{
    (void)state;
    static const parse_case_t ok[] = {
        {"100/min", 100, 60000, 100},
        {"10/s", 10, 1000, 10},
        {"5000/h", 5000, 3600000, 5000},
        {"100/60s", 100, 60000, 100},
        {"100/min,burst=20", 100, 60000, 20},
        {"100/min,burst=500", 100, 60000, 500},
        {"1/d", 1, 86400000, 1},
        {"1/day", 1, 86400000, 1},
        {"1/1d", 1, 86400000, 1},
        {"1/24h", 1, 86400000, 1},
        {"1/86400000ms", 1, 86400000, 1},
        {"1/ms", 1, 1, 1},
        {"3/500ms", 3, 500, 3},
        {"7/sec", 7, 1000, 7},
        {"7/second", 7, 1000, 7},
        {"2/5m", 2, 300000, 2},
        {"2/minute", 2, 60000, 2},
        {"2/hour", 2, 3600000, 2},
        {"2/hr", 2, 3600000, 2},
        {"1000000000/s", 1000000000, 1000, 1000000000},
        {"1/s,burst=1000000000", 1, 1000, 1000000000},
        {"0100/min", 100, 60000, 100},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        tk_rate_t r;
        char err[128] = "";
        int rc = tk_rate_parse_msg(ok[i].s, &r, err, sizeof(err));
        if (rc != TK_OK)
            fail_msg("%s: %s", ok[i].s, err);
        assert_int_equal(r.count, ok[i].count);
        assert_int_equal(r.period_ms, ok[i].period_ms);
        assert_int_equal(r.burst, ok[i].burst);
        assert_true(tk_rate_valid(&r));
        assert_int_equal(tk_rate_parse(ok[i].s, &r), TK_OK);
    }
}

static void test_parse_bad(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "100",
        "100/",
        "/min",
        "0/min",
        "-1/min",
        "+1/min",
        " 100/min",
        "100/min ",
        "100 /min",
        "1000000001/s",
        "99999999999999999999999/s",
        "100/minutes",
        "100/x",
        "100/60",
        "100/0s",
        "100/0ms",
        "100/2d",
        "100/25h",
        "100/86400001ms",
        "100/1.5s",
        "100/-1s",
        "1.5/s",
        "100/min,",
        "100/min,burst",
        "100/min,burst=",
        "100/min,burst=0",
        "100/min,burst=-1",
        "100/min,burst=1000000001",
        "100/min,burst=20,burst=30",
        "100/min,foo=1",
        "100/min;burst=20",
        "100/min, burst=20",
        "100/MIN",
        "1/2/s",
        "abc",
        "100/s\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tk_rate_t r = rate(7, 7, 7);
        char err[128] = "";
        if (tk_rate_parse_msg(bad[i], &r, err, sizeof(err)) != TK_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(strncmp(err, "invalid rate", 12) == 0);
        assert_int_equal(r.count, 7); /* untouched */
        assert_int_equal(tk_rate_parse(bad[i], &r), TK_EINVAL);
    }
    tk_rate_t r;
    assert_int_equal(tk_rate_parse(NULL, &r), TK_EINVAL);
    char err[128];
    assert_int_equal(tk_rate_parse_msg("100/lightyear", &r, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "unit"));
    assert_int_equal(tk_rate_parse_msg("0/min", &r, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "count"));
    assert_int_equal(tk_rate_parse_msg("1/2d", &r, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "1 day"));
    assert_int_equal(tk_rate_parse_msg("1/s,burst=0", &r, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "burst"));
}

static void test_bad_args(void **state)
{
    (void)state;
    assert_null(tk_ratelimit_local_create(0));
    fake_clock_t clk = {0};
    tk_ratelimit_t *rl = new_limiter(4, &clk);
    tk_rate_t r = rate(1, 1000, 1);
    tk_rate_result_t res;
    assert_int_equal(tk_ratelimit_take(rl, "", &r, &res), TK_EINVAL);
    assert_int_equal(tk_ratelimit_take(rl, NULL, &r, &res), TK_EINVAL);
    assert_int_equal(res.allowed, 0);
    tk_rate_t zero = rate(0, 1000, 1);
    tk_rate_t noburst = rate(1, 1000, 0);
    tk_rate_t noperiod = rate(1, 0, 1);
    tk_rate_t longperiod = rate(1, TK_RATE_PERIOD_MAX_MS + 1, 1);
    assert_int_equal(tk_ratelimit_take(rl, "k", &zero, &res), TK_EINVAL);
    assert_int_equal(tk_ratelimit_take(rl, "k", &noburst, &res), TK_EINVAL);
    assert_int_equal(tk_ratelimit_take(rl, "k", &noperiod, &res), TK_EINVAL);
    assert_int_equal(tk_ratelimit_take(rl, "k", &longperiod, &res), TK_EINVAL);
    assert_int_equal(tk_ratelimit_take(rl, "k", NULL, &res), TK_EINVAL);

    char key[TK_RATELIMIT_KEY_MAX + 2];
    memset(key, 'x', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_int_equal(tk_ratelimit_take(rl, key, &r, &res), TK_ELIMIT);
    key[TK_RATELIMIT_KEY_MAX] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(tk_ratelimit_take(rl, key, &r, &res), TK_OK);
    assert_int_equal(res.allowed, 1);
    assert_int_equal(tk_ratelimit_count(rl), 1);

    /* extreme but valid rates do not overflow */
    tk_rate_t huge = rate(TK_RATE_COUNT_MAX, TK_RATE_PERIOD_MAX_MS, TK_RATE_COUNT_MAX);
    tk_rate_t slow = rate(1, TK_RATE_PERIOD_MAX_MS, TK_RATE_COUNT_MAX);
    assert_true(take(rl, "huge", &huge, &res));
    assert_int_equal(res.remaining, TK_RATE_COUNT_MAX - 1);
    assert_true(take(rl, "slow", &slow, &res));
    assert_int_equal(res.reset_ms, TK_RATE_PERIOD_MAX_MS);
    clk.now = UINT64_MAX / 2;
    assert_true(take(rl, "slow", &slow, &res));
    assert_int_equal(res.remaining, TK_RATE_COUNT_MAX - 1);
    tk_ratelimit_destroy(rl);
    tk_ratelimit_destroy(NULL);
}

static void test_default_clock(void **state)
{
    (void)state;
    tk_ratelimit_t *rl = tk_ratelimit_local_create(4);
    tk_rate_t r = rate(2, 3600000, 2);
    assert_int_equal(drain(rl, "k", &r, 2), 2);
    fake_clock_t clk = {0};
    tk_ratelimit_set_clock(rl, fake_now, &clk);
    tk_ratelimit_set_clock(rl, NULL, NULL); /* back to tk_now_ms */
    assert_false(take(rl, "k", &r, NULL));
    tk_ratelimit_destroy(rl);
}

/* A stand-in backend: the wrapper hands it the clock's time and its state. */
typedef struct fake_be {
    uint64_t last_now;
    unsigned calls;
    int destroyed;
} fake_be_t;

static int fake_take(void *be, const char *key, const tk_rate_t *r, uint64_t now_ms,
                     tk_rate_result_t *out)
{
    fake_be_t *f = be;
    f->calls++;
    f->last_now = now_ms;
    if (strcmp(key, "fail") == 0) {
        out->allowed = 1; /* the wrapper must zero this */
        return TK_EIO;
    }
    out->allowed = 1;
    out->limit = r->burst;
    return TK_OK;
}

static void fake_destroy(void *be)
{
    ((fake_be_t *)be)->destroyed = 1;
}

static void test_custom_backend(void **state)
{
    (void)state;
    static const tk_ratelimit_ops_t ops = {
        .name = "fake", .take = fake_take, .count = NULL, .destroy = fake_destroy};
    fake_be_t be = {0};
    fake_clock_t clk = {4242};
    tk_ratelimit_t *rl = tk_ratelimit_create(&ops, &be);
    tk_ratelimit_set_clock(rl, fake_now, &clk);
    tk_rate_t r = rate(5, 1000, 7);
    tk_rate_result_t res;
    assert_int_equal(tk_ratelimit_take(rl, "k", &r, &res), TK_OK);
    assert_int_equal(res.allowed, 1);
    assert_int_equal(res.limit, 7);
    assert_int_equal(be.last_now, 4242);
    assert_int_equal(tk_ratelimit_take(rl, "fail", &r, &res), TK_EIO);
    assert_int_equal(res.allowed, 0);
    assert_int_equal(tk_ratelimit_take(rl, "", &r, &res), TK_EINVAL);
    assert_int_equal(be.calls, 2); /* invalid arguments never reach the backend */
    assert_int_equal(tk_ratelimit_count(rl), 0);
    tk_ratelimit_destroy(rl);
    assert_int_equal(be.destroyed, 1);
}

/* A million takes over 1000 keys, with room for all and with room for half
 * (every take then misses and evicts). Bounded loops; no timing asserted. */
static void test_many_takes(void **state)
{
    (void)state;
    static const size_t caps[] = {1024, 500};
    char keys[1000][16];
    for (unsigned k = 0; k < 1000; k++)
        tk_snprintf(keys[k], sizeof(keys[k]), "key:%u", k);
    tk_rate_t r = rate(100, 60000, 100);
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        fake_clock_t clk = {0};
        tk_ratelimit_t *rl = new_limiter(caps[c], &clk);
        unsigned long allowed = 0;
        for (unsigned i = 0; i < 1000000; i++) {
            clk.now = i / 100; /* 10 s of traffic */
            allowed += (unsigned long)take(rl, keys[i % 1000], &r, NULL);
        }
        assert_true(tk_ratelimit_count(rl) <= caps[c]);
        if (c == 0) /* 100 each at start + 10000 ms * 100/60000 ms = 16 more */
            assert_int_equal(allowed, 1000 * 116);
        tk_ratelimit_destroy(rl);
    }
}

#define SHARERS 4
#define SHARER_TAKES 20000

typedef struct sharer {
    tk_ratelimit_t *rl;
    int id;
    unsigned allowed;
} sharer_t;

static void *share_takes(void *arg)
{
    sharer_t *s = arg;
    tk_rate_t rate = {.count = 10000, .burst = 10000, .period_ms = 60000};
    for (int i = 0; i < SHARER_TAKES; i++) {
        tk_rate_result_t r;
        char key[32];
        /* one bucket shared by all, and keys of their own that churn the table */
        if (i % 2 == 0)
            tk_snprintf(key, sizeof(key), "key:shared");
        else
            tk_snprintf(key, sizeof(key), "ip:%d-%d", s->id, i);
        if (tk_ratelimit_take(s->rl, key, &rate, &r) == TK_OK && r.allowed && i % 2 == 0)
            s->allowed++;
    }
    return NULL;
}

static void test_threads_share_a_limiter(void **state)
{
    (void)state;
    fake_clock_t clk = {.now = 1000};
    tk_ratelimit_t *rl = new_limiter(500, &clk);
    pthread_t th[SHARERS];
    sharer_t s[SHARERS];
    for (int i = 0; i < SHARERS; i++) {
        s[i] = (sharer_t){rl, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, share_takes, &s[i]), 0);
    }
    unsigned total = 0;
    for (int i = 0; i < SHARERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        total += s[i].allowed;
    }
    /* 40000 takes of the shared bucket on a frozen clock: exactly its 10000 tokens */
    assert_int_equal(total, 10000);
    assert_true(tk_ratelimit_count(rl) <= 500);
    tk_ratelimit_destroy(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_then_denied), cmocka_unit_test(test_refill_one),
        cmocka_unit_test(test_full_refill),       cmocka_unit_test(test_burst_smaller_than_count),
        cmocka_unit_test(test_independent_keys),  cmocka_unit_test(test_retry_after_rounding),
        cmocka_unit_test(test_no_drift),          cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_rate_change),       cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_evict_full_first),  cmocka_unit_test(test_evict_lru),
        cmocka_unit_test(test_parse_ok),          cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_bad_args),          cmocka_unit_test(test_default_clock),
        cmocka_unit_test(test_custom_backend),    cmocka_unit_test(test_many_takes),
        cmocka_unit_test(test_threads_share_a_limiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
