/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the rate limiter (src/state/ratelimit.c): the "COUNT/PERIOD[,burst=N]"
 * parser on the input's first line, then, if it parsed, a sequence of takes
 * driven by the rest of the input (3 bytes per step: key index, signed clock
 * step, step scale) against the in-process backend with an injected clock.
 * The table is tiny (mode bit: 3 buckets, so the LRU/sweep eviction paths run
 * all the time, or 64, more than the 16 keys used, so nothing is evicted).
 * Checks: a parsed rate is valid; every answer is consistent (allowed means no
 * retry delay, denied means one of at least a second, remaining <= limit =
 * burst); the table never holds more than max_keys; and, when nothing can be
 * evicted, no key is ever granted more than burst + count * elapsed / period
 * tokens (the token-bucket bound; a clock stepping back mints nothing). This
 * also checks dynamically the use-after-free that scan-build reports in
 * lru_unlink (see docs/security-testing.md).
 */
#include <string.h>

#include "fuzz.h"
#include "state/ratelimit.h"

#define NKEYS 16
#define MAX_STEPS 4096

static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static void check_result(const tk_rate_result_t *r, const tk_rate_t *rate)
{
    FUZZ_CHECK(r->allowed == 0 || r->allowed == 1);
    FUZZ_CHECK(r->allowed ? r->retry_after_s == 0 : r->retry_after_s >= 1);
    FUZZ_CHECK(r->limit == rate->burst);
    FUZZ_CHECK(r->remaining <= r->limit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t slen = nl ? (size_t)(nl - data) : size;
    char text[128];
    if (slen >= sizeof(text))
        return 0;
    memcpy(text, data, slen);
    text[slen] = '\0';

    tk_rate_t rate;
    char err[96];
    if (tk_rate_parse_msg(text, &rate, err, sizeof(err)) != TK_OK) {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(tk_rate_valid(&rate));
    if (nl == NULL)
        return 0;

    const uint8_t *p = nl + 1, *end = data + size;
    int roomy = p < end && (*p++ & 1);
    size_t max_keys = roomy ? 64 : 3;
    tk_ratelimit_t *rl = tk_ratelimit_local_create(max_keys);
    FUZZ_CHECK(rl != NULL);
    tk_ratelimit_set_clock(rl, fake_clock, NULL);
    fake_now = 1000;
    /* per key: clock at creation (first take), highest clock seen, grants */
    uint64_t born[NKEYS] = {0}, high[NKEYS] = {0}, granted[NKEYS] = {0};
    int seen[NKEYS] = {0};

    for (int step = 0; step < MAX_STEPS && end - p >= 3; step++, p += 3) {
        unsigned k = p[0] % NKEYS;
        int8_t delta = (int8_t)p[1];
        uint64_t scale = (p[2] & 3) == 3 ? 100000 : (p[2] & 3) == 2 ? 1000 : 1;
        uint64_t d = (uint64_t)(delta < 0 ? -delta : delta) * scale;
        fake_now = delta < 0 ? (fake_now > d ? fake_now - d : 0) : fake_now + d;
        char key[8];
        tk_snprintf(key, sizeof(key), "k%u", k);
        tk_rate_result_t r;
        FUZZ_CHECK(tk_ratelimit_take(rl, key, &rate, &r) == TK_OK);
        check_result(&r, &rate);
        FUZZ_CHECK(tk_ratelimit_count(rl) <= max_keys);
        if (!seen[k]) {
            seen[k] = 1;
            born[k] = high[k] = fake_now;
        }
        if (fake_now > high[k])
            high[k] = fake_now;
        granted[k] += (uint64_t)r.allowed;
        if (roomy) { /* nothing evicted: the token-bucket bound holds exactly */
            unsigned __int128 minted = (unsigned __int128)rate.count * (high[k] - born[k]);
            FUZZ_CHECK(granted[k] <= rate.burst + (uint64_t)(minted / rate.period_ms));
        }
    }
    tk_ratelimit_destroy(rl);
    return 0;
}
