/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rate limiting: token buckets keyed by a string ("key:<api key id>",
 * "ep:<slug>", "ip:<address>"), checked on the gateway's hot path. Each bucket
 * holds at most `burst` tokens and regains `count` tokens per `period_ms`;
 * every request takes one token or is denied. Arithmetic is exact integer
 * fixed point (one token = period_ms units, refill = count units per ms), so
 * there is no drift however often a bucket is touched.
 *
 * Backends sit behind tk_ratelimit_ops_t (a table of function pointers): the
 * in-process backend from tk_ratelimit_local_create() today, a shared one
 * (Redis) later. The local backend keeps at most max_keys buckets; when full
 * it first drops buckets that have refilled completely (dropping those loses
 * nothing: a new bucket starts full), and only then the least recently used
 * one, so rotating keys or addresses cannot exhaust memory.
 *
 * Threads: take and count are serialised by a mutex in the wrapper, so the
 * HTTP threads share one limiter (limits hold across threads); set_clock
 * and destroy belong to the owner while no other thread uses it.
 *
 * Ownership: the limiter copies keys; rates are read during the call only.
 */
#ifndef TK_RATELIMIT_H
#define TK_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define TK_RATE_COUNT_MAX 1000000000u   /* count and burst: 1 .. 1e9 */
#define TK_RATE_PERIOD_MAX_MS 86400000u /* period: 1 ms .. 1 day */
#define TK_RATELIMIT_KEY_MAX 256        /* longest key in bytes, NUL excluded */

/* A limit: `count` tokens per `period_ms`, bucket capacity `burst`. */
typedef struct tk_rate {
    uint32_t count;     /* 1 .. TK_RATE_COUNT_MAX */
    uint32_t burst;     /* 1 .. TK_RATE_COUNT_MAX; the parser defaults it to count */
    uint32_t period_ms; /* 1 .. TK_RATE_PERIOD_MAX_MS */
} tk_rate_t;

/* The answer to one take. */
typedef struct tk_rate_result {
    int allowed;            /* 1: a token was taken; 0: denied */
    uint32_t remaining;     /* whole tokens left after this call */
    uint32_t retry_after_s; /* denied: ceil(seconds until one token), >= 1; allowed: 0 */
    uint32_t limit;         /* the bucket capacity (burst) */
    uint64_t reset_ms;      /* milliseconds from now until the bucket is full again */
} tk_rate_result_t;

/* Parse "COUNT/PERIOD[,burst=N]" where PERIOD is a unit ("ms", "s", "sec",
 * "second", "m", "min", "minute", "h", "hr", "hour", "d", "day"; lower case)
 * optionally preceded by a number ("100/60s", "10/500ms"). No spaces.
 * Examples: "100/min", "10/s", "5000/h", "100/min,burst=20". Returns TK_EINVAL
 * on anything else or out of bounds (count and burst 1..1e9, period 1 ms ..
 * 1 day); *out is then untouched. */
int tk_rate_parse(const char *s, tk_rate_t *out) TK_WUR;
/* The same, writing a one-line reason into err (may be NULL) on failure. */
int tk_rate_parse_msg(const char *s, tk_rate_t *out, char *err, size_t errlen) TK_WUR;
/* 1 if every field of r is within bounds. */
int tk_rate_valid(const tk_rate_t *r);

typedef struct tk_ratelimit tk_ratelimit_t;

/* Clock: returns monotonic milliseconds. Default: tk_now_ms(). */
typedef uint64_t (*tk_ratelimit_clock_fn)(void *arg);

/* Backend interface. `be` is the state given to tk_ratelimit_create().
 * take: 0 with *out filled (allowed or denied), or a negative TK_E*.
 * count: buckets held (NULL if the backend cannot tell).
 * destroy: free `be` and everything it holds. */
typedef struct tk_ratelimit_ops {
    const char *name;
    int (*take)(void *be, const char *key, const tk_rate_t *rate, uint64_t now_ms,
                tk_rate_result_t *out);
    size_t (*count)(const void *be);
    void (*destroy)(void *be);
} tk_ratelimit_ops_t;

/* Wrap a backend (for backend implementations). The limiter owns `be` and
 * hands it to ops->destroy on tk_ratelimit_destroy(). Never returns NULL. */
tk_ratelimit_t *tk_ratelimit_create(const tk_ratelimit_ops_t *ops, void *be);

/* The in-process backend holding at most max_keys buckets (1 .. 2^26).
 * Returns NULL if max_keys is out of range. */
tk_ratelimit_t *tk_ratelimit_local_create(size_t max_keys);

void tk_ratelimit_destroy(tk_ratelimit_t *rl);

/* Replace the clock (tests pass a fake one); fn NULL restores tk_now_ms(). */
void tk_ratelimit_set_clock(tk_ratelimit_t *rl, tk_ratelimit_clock_fn fn, void *arg);

/* Take one token from the bucket for key under rate, at the clock's now.
 * Returns 0 with *out filled (out->allowed says the verdict), TK_EINVAL for an
 * empty key or invalid rate, TK_ELIMIT for a key longer than
 * TK_RATELIMIT_KEY_MAX; on error *out is zeroed and the caller decides whether
 * to fail open or closed. A key used with a new rate keeps its fill level,
 * rescaled and clamped to the new burst. A clock that goes backwards mints no
 * tokens. */
int tk_ratelimit_take(tk_ratelimit_t *rl, const char *key, const tk_rate_t *rate,
                      tk_rate_result_t *out) TK_WUR;

/* Buckets currently held (0 if the backend cannot tell). */
size_t tk_ratelimit_count(const tk_ratelimit_t *rl);

#endif
