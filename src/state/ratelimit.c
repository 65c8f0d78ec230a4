/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token-bucket rate limiting: the rate-string parser, the backend-neutral
 * wrapper (clock injection, argument checks) and the in-process backend.
 *
 * Local backend invariants:
 * - A bucket's level is in units where one token is rate.period_ms units and
 *   each millisecond adds rate.count units; capacity is burst * period_ms
 *   (at most 1e9 * 86400000 < 2^57, so nothing overflows uint64_t).
 * - last_ms never decreases: time before it (a clock stepping back) adds
 *   nothing. full_at_ms is when the bucket will be full if left alone.
 * - Buckets are in a tk_map (by key) and a doubly linked LRU list (head = most
 *   recently used); count <= max_keys always. A new key at the bound evicts the
 *   LRU tail if it is full; otherwise, at most once per max_keys/4 such
 *   inserts, a sweep drops every full bucket; only if none was full is the LRU
 *   tail (a partly drained bucket) dropped. That keeps take() O(1) amortised.
 */
#include "state/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/map.h"

#define LOCAL_MAX_KEYS ((size_t)1 << 26)

struct tk_ratelimit {
    const tk_ratelimit_ops_t *ops;
    void *be;
    tk_ratelimit_clock_fn now;
    void *now_arg;
    pthread_mutex_t mu; /* serialises take/count: HTTP threads share one limiter */
};

/* ---- rate strings ---- */

typedef struct unit {
    const char *name;
    uint32_t ms;
} unit_t;

static const unit_t units[] = {
    {"ms", 1},       {"s", 1000},       {"sec", 1000},     {"second", 1000},
    {"m", 60000},    {"min", 60000},    {"minute", 60000}, {"h", 3600000},
    {"hr", 3600000}, {"hour", 3600000}, {"d", 86400000},   {"day", 86400000},
};

static void set_err(char *err, size_t errlen, const char *s, const char *why)
{
    if (err != NULL && errlen > 0)
        tk_snprintf(err, errlen, "invalid rate \"%.64s\": %s", s, why);
}

/* Parse n bytes of s as a decimal in [min,max]. */
static int parse_span(const char *s, size_t n, uint64_t min, uint64_t max, uint64_t *out)
{
    char buf[24];
    if (n == 0 || n >= sizeof(buf))
        return TK_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return tk_parse_uint(buf, min, max, out);
}

static int parse_unit(const char *s, size_t n, uint32_t *ms)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].name) == n && memcmp(units[i].name, s, n) == 0) {
            *ms = units[i].ms;
            return TK_OK;
        }
    }
    return TK_EINVAL;
}

/* PERIOD is [N]UNIT, n bytes long. */
static int parse_period(const char *s, size_t n, uint32_t *period_ms, const char **why)
{
    size_t digits = strspn(s, "0123456789");
    if (digits > n)
        digits = n;
    uint64_t mult = 1;
    if (digits > 0 && parse_span(s, digits, 0, TK_RATE_PERIOD_MAX_MS, &mult) != TK_OK) {
        *why = "period must be 1 ms .. 1 day";
        return TK_EINVAL;
    }
    uint32_t unit_ms;
    if (parse_unit(s + digits, n - digits, &unit_ms) != TK_OK) {
        *why = "period unit must be one of ms, s, sec, m, min, h, hour, d, day";
        return TK_EINVAL;
    }
    uint64_t ms = mult * unit_ms;
    if (ms < 1 || ms > TK_RATE_PERIOD_MAX_MS) {
        *why = "period must be 1 ms .. 1 day";
        return TK_EINVAL;
    }
    *period_ms = (uint32_t)ms;
    return TK_OK;
}

static int parse_options(const char *s, uint32_t *burst, const char **why)
{
    static const char opt[] = ",burst=";
    if (strncmp(s, opt, sizeof(opt) - 1) != 0) {
        *why = "the only option is \",burst=N\"";
        return TK_EINVAL;
    }
    s += sizeof(opt) - 1;
    uint64_t v;
    if (parse_span(s, strlen(s), 1, TK_RATE_COUNT_MAX, &v) != TK_OK) {
        *why = "burst must be 1 .. 1000000000";
        return TK_EINVAL;
    }
    *burst = (uint32_t)v;
    return TK_OK;
}

int tk_rate_parse_msg(const char *s, tk_rate_t *out, char *err, size_t errlen)
{
    const char *why = "expected COUNT/PERIOD[,burst=N], e.g. 100/min";
    if (s == NULL) {
        set_err(err, errlen, "", why);
        return TK_EINVAL;
    }
    const char *slash = strchr(s, '/');
    if (slash == NULL) {
        set_err(err, errlen, s, why);
        return TK_EINVAL;
    }
    uint64_t count;
    if (parse_span(s, (size_t)(slash - s), 1, TK_RATE_COUNT_MAX, &count) != TK_OK) {
        set_err(err, errlen, s, "count must be 1 .. 1000000000");
        return TK_EINVAL;
    }
    const char *p = slash + 1;
    size_t plen = strcspn(p, ",");
    tk_rate_t r = {.count = (uint32_t)count, .burst = (uint32_t)count};
    if (parse_period(p, plen, &r.period_ms, &why) != TK_OK ||
        (p[plen] != '\0' && parse_options(p + plen, &r.burst, &why) != TK_OK)) {
        set_err(err, errlen, s, why);
        return TK_EINVAL;
    }
    *out = r;
    return TK_OK;
}

int tk_rate_parse(const char *s, tk_rate_t *out)
{
    return tk_rate_parse_msg(s, out, NULL, 0);
}

int tk_rate_valid(const tk_rate_t *r)
{
    return r != NULL && r->count >= 1 && r->count <= TK_RATE_COUNT_MAX && r->burst >= 1 &&
           r->burst <= TK_RATE_COUNT_MAX && r->period_ms >= 1 &&
           r->period_ms <= TK_RATE_PERIOD_MAX_MS;
}

/* ---- local backend ---- */

typedef struct bucket {
    struct bucket *prev; /* towards the head (more recent) */
    struct bucket *next; /* towards the tail (less recent) */
    uint64_t level;      /* units; one token = rate.period_ms units */
    uint64_t last_ms;    /* time of the last refill; never decreases */
    uint64_t full_at_ms; /* when the level reaches capacity if untouched */
    tk_rate_t rate;      /* the rate it was last used with */
    char key[];
} bucket_t;

typedef struct local {
    tk_map_t *map; /* key -> bucket_t* */
    bucket_t *head;
    bucket_t *tail;
    size_t count;
    size_t max_keys;
    size_t since_sweep; /* inserts at the bound since the last sweep */
} local_t;

static uint64_t cap_units(const tk_rate_t *r)
{
    return (uint64_t)r->burst * r->period_ms;
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

static void lru_unlink(local_t *l, bucket_t *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        l->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        l->tail = b->prev;
    b->prev = b->next = NULL;
}

static void lru_push_head(local_t *l, bucket_t *b)
{
    b->prev = NULL;
    b->next = l->head;
    if (l->head)
        l->head->prev = b;
    l->head = b;
    if (l->tail == NULL)
        l->tail = b;
}

static void evict(local_t *l, bucket_t *b)
{
    tk_map_sdel(l->map, b->key);
    lru_unlink(l, b);
    l->count--;
    free(b);
}

/* Drop every bucket that is full at now: they carry no state. */
static void sweep(local_t *l, uint64_t now)
{
    bucket_t *b = l->tail;
    while (b != NULL) {
        bucket_t *prev = b->prev;
        if (b->full_at_ms <= now)
            evict(l, b);
        b = prev;
    }
}

static void make_room(local_t *l, uint64_t now)
{
    if (l->tail->full_at_ms <= now) {
        evict(l, l->tail);
        return;
    }
    size_t interval = l->max_keys / 4 > 0 ? l->max_keys / 4 : 1;
    if (l->since_sweep >= interval) {
        l->since_sweep = 0;
        sweep(l, now);
        if (l->count < l->max_keys)
            return;
    } else {
        l->since_sweep++;
    }
    tk_debug("ratelimit", "bucket table full (%zu): dropping a partly drained bucket", l->max_keys);
    evict(l, l->tail);
}

static bucket_t *bucket_new(local_t *l, const char *key, size_t keylen, const tk_rate_t *rate,
                            uint64_t now)
{
    if (l->count >= l->max_keys)
        make_room(l, now);
    bucket_t *b = tk_malloc(sizeof(*b) + keylen + 1);
    memcpy(b->key, key, keylen + 1);
    b->rate = *rate;
    b->level = cap_units(rate);
    b->last_ms = now;
    b->full_at_ms = now;
    tk_map_sput(l->map, b->key, b);
    lru_push_head(l, b);
    l->count++;
    return b;
}

/* Add what has accrued since last_ms; never moves last_ms backwards. */
static void refill(bucket_t *b, uint64_t now)
{
    if (now <= b->last_ms)
        return;
    uint64_t elapsed = now - b->last_ms;
    uint64_t deficit = cap_units(&b->rate) - b->level;
    if (elapsed >= ceil_div(deficit, b->rate.count))
        b->level = cap_units(&b->rate);
    else
        b->level += elapsed * b->rate.count; /* < deficit, no overflow */
    b->last_ms = now;
}

/* Switch a bucket to a new rate, keeping its fill fraction of a token. */
static void rerate(bucket_t *b, const tk_rate_t *rate)
{
    uint64_t oldp = b->rate.period_ms, newp = rate->period_ms;
    if (oldp != newp) {
        uint64_t tokens = b->level / oldp, frac = b->level % oldp;
        b->level = tokens * newp + frac * newp / oldp;
    }
    b->rate = *rate;
    if (b->level > cap_units(rate))
        b->level = cap_units(rate);
}

static void take_token(bucket_t *b, tk_rate_result_t *out)
{
    const tk_rate_t *r = &b->rate;
    memset(out, 0, sizeof(*out));
    if (b->level >= r->period_ms) {
        b->level -= r->period_ms;
        out->allowed = 1;
    } else {
        uint64_t wait_ms = ceil_div(r->period_ms - b->level, r->count);
        out->retry_after_s = (uint32_t)ceil_div(wait_ms, 1000);
    }
    out->remaining = (uint32_t)(b->level / r->period_ms);
    out->limit = r->burst;
    out->reset_ms = ceil_div(cap_units(r) - b->level, r->count);
    b->full_at_ms = b->last_ms + out->reset_ms;
}

static int local_take(void *be, const char *key, const tk_rate_t *rate, uint64_t now,
                      tk_rate_result_t *out)
{
    local_t *l = be;
    bucket_t *b = tk_map_sget(l->map, key);
    if (b == NULL) {
        b = bucket_new(l, key, strlen(key), rate, now);
    } else {
        refill(b, now);
        if (memcmp(&b->rate, rate, sizeof(*rate)) != 0)
            rerate(b, rate);
        if (l->head != b) {
            lru_unlink(l, b);
            lru_push_head(l, b);
        }
    }
    take_token(b, out);
    return TK_OK;
}

static size_t local_count(const void *be)
{
    const local_t *l = be;
    return l->count;
}

static void local_destroy(void *be)
{
    local_t *l = be;
    bucket_t *b = l->head;
    while (b != NULL) {
        bucket_t *next = b->next;
        free(b);
        b = next;
    }
    tk_map_destroy(l->map);
    free(l);
}

static const tk_ratelimit_ops_t local_ops = {
    .name = "local",
    .take = local_take,
    .count = local_count,
    .destroy = local_destroy,
};

tk_ratelimit_t *tk_ratelimit_local_create(size_t max_keys)
{
    if (max_keys < 1 || max_keys > LOCAL_MAX_KEYS)
        return NULL;
    local_t *l = tk_calloc(1, sizeof(*l));
    l->map = tk_map_create();
    l->max_keys = max_keys;
    l->since_sweep = max_keys; /* the first insert at the bound may sweep */
    return tk_ratelimit_create(&local_ops, l);
}

/* ---- backend-neutral wrapper ---- */

static uint64_t default_clock(void *arg)
{
    (void)arg;
    return tk_now_ms();
}

tk_ratelimit_t *tk_ratelimit_create(const tk_ratelimit_ops_t *ops, void *be)
{
    tk_ratelimit_t *rl = tk_calloc(1, sizeof(*rl));
    rl->ops = ops;
    rl->be = be;
    rl->now = default_clock;
    pthread_mutex_init(&rl->mu, NULL);
    return rl;
}

void tk_ratelimit_destroy(tk_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    if (rl->ops->destroy)
        rl->ops->destroy(rl->be);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

void tk_ratelimit_set_clock(tk_ratelimit_t *rl, tk_ratelimit_clock_fn fn, void *arg)
{
    rl->now = fn ? fn : default_clock;
    rl->now_arg = fn ? arg : NULL;
}

int tk_ratelimit_take(tk_ratelimit_t *rl, const char *key, const tk_rate_t *rate,
                      tk_rate_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (key == NULL || key[0] == '\0' || !tk_rate_valid(rate))
        return TK_EINVAL;
    if (strnlen(key, TK_RATELIMIT_KEY_MAX + 1) > TK_RATELIMIT_KEY_MAX)
        return TK_ELIMIT;
    pthread_mutex_lock(&rl->mu);
    int rc = rl->ops->take(rl->be, key, rate, rl->now(rl->now_arg), out);
    pthread_mutex_unlock(&rl->mu);
    if (rc != TK_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

size_t tk_ratelimit_count(const tk_ratelimit_t *rl)
{
    tk_ratelimit_t *m = (tk_ratelimit_t *)rl; /* the lock is not part of the value */
    pthread_mutex_lock(&m->mu);
    size_t n = rl->ops->count ? rl->ops->count(rl->be) : 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}
