/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the endpoint registry (src/state/epreg.c): put, replace,
 * get with and without a rate, delete (and deleting what is absent), and
 * four reader threads looking slugs up while the writer adds, changes and
 * removes them: a reader sees either no entry or a whole one (count, burst
 * and period written together), never a torn one.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/core.h"
#include "state/epreg.h"

static void test_put_get_del(void **state)
{
    (void)state;
    tk_epreg_t *r = tk_epreg_create();
    tk_rate_t rate = {.count = 5, .burst = 5, .period_ms = 60000}, out = {0};
    assert_int_equal(tk_epreg_get(r, "team", &out), 0);
    tk_epreg_put(r, "team", &rate);
    assert_int_equal(tk_epreg_get(r, "team", NULL), 1);
    assert_int_equal(tk_epreg_get(r, "team", &out), 1);
    assert_int_equal(out.count, 5);
    assert_int_equal(out.period_ms, 60000);
    assert_int_equal(tk_epreg_get(r, "other", &out), 0);
    rate.count = 7;
    tk_epreg_put(r, "team", &rate); /* replaces */
    assert_int_equal(tk_epreg_get(r, "team", &out), 1);
    assert_int_equal(out.count, 7);
    tk_epreg_del(r, "team");
    assert_int_equal(tk_epreg_get(r, "team", &out), 0);
    tk_epreg_del(r, "team"); /* absent: nothing */
    tk_epreg_destroy(r);
    tk_epreg_destroy(NULL);
}

typedef struct shared {
    tk_epreg_t *r;
    atomic_int stop;
    atomic_long torn;
    atomic_long seen;
} shared_t;

static void *reader(void *arg)
{
    shared_t *s = arg;
    char slug[16];
    for (unsigned i = 0; !atomic_load(&s->stop) && i < 2000000u; i++) {
        tk_snprintf(slug, sizeof(slug), "ep%u", i % 64);
        tk_rate_t out;
        if (tk_epreg_get(s->r, slug, &out)) {
            atomic_fetch_add(&s->seen, 1);
            if (out.burst != out.count || out.period_ms != out.count * 10)
                atomic_fetch_add(&s->torn, 1);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    shared_t s = {.r = tk_epreg_create()};
    atomic_init(&s.stop, 0);
    atomic_init(&s.torn, 0);
    atomic_init(&s.seen, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &s), 0);
    char slug[16];
    for (uint32_t i = 1; i <= 200000; i++) {
        tk_snprintf(slug, sizeof(slug), "ep%u", i % 64);
        if (i % 3 == 0) {
            tk_epreg_del(s.r, slug);
        } else {
            tk_rate_t rate = {.count = i, .burst = i, .period_ms = i * 10};
            tk_epreg_put(s.r, slug, &rate);
        }
    }
    atomic_store(&s.stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&s.torn), 0);
    assert_true(atomic_load(&s.seen) > 0);
    tk_epreg_destroy(s.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
