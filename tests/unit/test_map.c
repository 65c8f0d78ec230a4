/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the open-addressing hash map (src/core/map.c): u64 put, get,
 * replace and delete; growth to tens of thousands of entries; backward-shift
 * deletion keeping every probe chain intact (deleting every other key of
 * 10000, in several orders, then reinserting); string keys being copied (the
 * caller's buffer is mutated after put) and kept apart from each other; and
 * iteration visiting each entry exactly once with the right count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/map.h"

/* Distinct non-NULL values derived from a key (never dereferenced). */
static void *val_for(uint64_t k)
{
    return (void *)(uintptr_t)(k * 2 + 1);
}

static void *val2_for(uint64_t k)
{
    return (void *)(uintptr_t)(k * 2 + 2);
}

static void test_basic(void **state)
{
    (void)state;
    tk_map_t *m = tk_map_create();
    assert_non_null(m);
    assert_int_equal(tk_map_count(m), 0);
    assert_null(tk_map_get(m, 1));
    assert_null(tk_map_del(m, 1));

    int a = 1, b = 2, c = 3;
    tk_map_put(m, 1, &a);
    tk_map_put(m, 2, &b);
    tk_map_put(m, 0, &c); /* key 0 is an ordinary key */
    assert_int_equal(tk_map_count(m), 3);
    assert_ptr_equal(tk_map_get(m, 1), &a);
    assert_ptr_equal(tk_map_get(m, 2), &b);
    assert_ptr_equal(tk_map_get(m, 0), &c);
    assert_null(tk_map_get(m, 3));

    /* replace keeps the count */
    tk_map_put(m, 1, &c);
    assert_int_equal(tk_map_count(m), 3);
    assert_ptr_equal(tk_map_get(m, 1), &c);

    /* delete returns the value; deleting again returns NULL */
    assert_ptr_equal(tk_map_del(m, 1), &c);
    assert_int_equal(tk_map_count(m), 2);
    assert_null(tk_map_get(m, 1));
    assert_null(tk_map_del(m, 1));
    assert_int_equal(tk_map_count(m), 2);
    assert_ptr_equal(tk_map_get(m, 2), &b);

    /* extreme keys */
    tk_map_put(m, UINT64_MAX, &a);
    tk_map_put(m, UINT64_MAX - 1, &b);
    assert_ptr_equal(tk_map_get(m, UINT64_MAX), &a);
    assert_ptr_equal(tk_map_get(m, UINT64_MAX - 1), &b);
    assert_int_equal(tk_map_count(m), 4);

    tk_map_destroy(m);
    tk_map_destroy(NULL); /* a no-op */
}

static void test_growth(void **state)
{
    (void)state;
    enum { N = 50000 };
    tk_map_t *m = tk_map_create();
    for (uint64_t k = 0; k < N; k++) {
        tk_map_put(m, k * 7919u, val_for(k));
        assert_int_equal(tk_map_count(m), k + 1);
    }
    for (uint64_t k = 0; k < N; k++)
        assert_ptr_equal(tk_map_get(m, k * 7919u), val_for(k));
    /* keys in between are absent */
    for (uint64_t k = 0; k < 1000; k++)
        assert_null(tk_map_get(m, k * 7919u + 1));
    /* replacing all of them after growth */
    for (uint64_t k = 0; k < N; k++)
        tk_map_put(m, k * 7919u, val2_for(k));
    assert_int_equal(tk_map_count(m), N);
    for (uint64_t k = 0; k < N; k++)
        assert_ptr_equal(tk_map_get(m, k * 7919u), val2_for(k));
    tk_map_destroy(m);
}

/* Insert 0..n-1, delete those with (k % 2 == parity), verify, reinsert. */
static void delete_every_other(uint64_t n, uint64_t (*keyf)(uint64_t), int parity, int reverse)
{
    tk_map_t *m = tk_map_create();
    for (uint64_t i = 0; i < n; i++)
        tk_map_put(m, keyf(i), val_for(i));
    assert_int_equal(tk_map_count(m), n);

    for (uint64_t j = 0; j < n; j++) {
        uint64_t i = reverse ? n - 1 - j : j;
        if (i % 2 == (uint64_t)parity)
            assert_ptr_equal(tk_map_del(m, keyf(i)), val_for(i));
    }
    uint64_t deleted = parity == 0 ? (n + 1) / 2 : n / 2;
    assert_int_equal(tk_map_count(m), n - deleted);
    for (uint64_t i = 0; i < n; i++) {
        if (i % 2 == (uint64_t)parity)
            assert_null(tk_map_get(m, keyf(i)));
        else
            assert_ptr_equal(tk_map_get(m, keyf(i)), val_for(i));
    }

    /* reinsert the deleted ones with new values */
    for (uint64_t i = 0; i < n; i++)
        if (i % 2 == (uint64_t)parity)
            tk_map_put(m, keyf(i), val2_for(i));
    assert_int_equal(tk_map_count(m), n);
    for (uint64_t i = 0; i < n; i++) {
        void *want = i % 2 == (uint64_t)parity ? val2_for(i) : val_for(i);
        assert_ptr_equal(tk_map_get(m, keyf(i)), want);
    }

    /* and delete everything */
    for (uint64_t i = 0; i < n; i++)
        assert_non_null(tk_map_del(m, keyf(i)));
    assert_int_equal(tk_map_count(m), 0);
    for (uint64_t i = 0; i < n; i++)
        assert_null(tk_map_get(m, keyf(i)));
    size_t it = 0;
    assert_int_equal(tk_map_next(m, &it, NULL, NULL, NULL), 0);
    tk_map_destroy(m);
}

static uint64_t key_seq(uint64_t i)
{
    return i;
}

static uint64_t key_spread(uint64_t i)
{
    return i * 0x9e3779b97f4a7c15ULL;
}

static uint64_t key_high(uint64_t i)
{
    return i << 40;
}

static void test_delete_backward_shift(void **state)
{
    (void)state;
    delete_every_other(10000, key_seq, 1, 0);
    delete_every_other(10000, key_seq, 0, 1);
    delete_every_other(10000, key_spread, 0, 0);
    delete_every_other(10000, key_high, 1, 1);
    /* small maps where chains wrap round the end of the table */
    for (uint64_t n = 2; n < 40; n++)
        delete_every_other(n, key_seq, (int)(n % 2), (int)(n % 3 == 0));
}

static void test_delete_random_churn(void **state)
{
    (void)state;
    /* a random workload checked against a shadow array */
    enum { KEYS = 4096, OPS = 200000 };
    void **shadow = tk_calloc(KEYS, sizeof(void *));
    tk_map_t *m = tk_map_create();
    uint64_t x = 88172645463325252ULL; /* xorshift64 */
    size_t live = 0;
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t k = x % KEYS;
        if ((x >> 32) % 3 == 0) {
            void *got = tk_map_del(m, k);
            assert_ptr_equal(got, shadow[k]);
            if (shadow[k] != NULL)
                live--;
            shadow[k] = NULL;
        } else {
            void *v = (void *)(uintptr_t)((uint64_t)op * 2 + 1);
            if (shadow[k] == NULL)
                live++;
            tk_map_put(m, k, v);
            shadow[k] = v;
        }
        assert_int_equal(tk_map_count(m), live);
    }
    for (uint64_t k = 0; k < KEYS; k++)
        assert_ptr_equal(tk_map_get(m, k), shadow[k]);
    tk_map_destroy(m);
    free(shadow);
}

static void test_string_keys(void **state)
{
    (void)state;
    tk_map_t *m = tk_map_create();
    int a = 1, b = 2, c = 3;
    char key[32];

    strcpy(key, "session-1");
    tk_map_sput(m, key, &a);
    /* the map copied the key: clobbering the caller's buffer changes nothing */
    memset(key, 'Z', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_ptr_equal(tk_map_sget(m, "session-1"), &a);
    assert_null(tk_map_sget(m, key));
    strcpy(key, "session-2");
    tk_map_sput(m, key, &b);
    strcpy(key, "session-1");
    assert_ptr_equal(tk_map_sget(m, key), &a);
    assert_int_equal(tk_map_count(m), 2);

    /* similar keys are distinct */
    assert_null(tk_map_sget(m, "session-"));
    assert_null(tk_map_sget(m, "session-10"));
    assert_null(tk_map_sget(m, "Session-1"));
    assert_null(tk_map_sget(m, ""));
    tk_map_sput(m, "", &c);
    assert_ptr_equal(tk_map_sget(m, ""), &c);
    assert_int_equal(tk_map_count(m), 3);

    /* replace */
    tk_map_sput(m, "session-2", &c);
    assert_ptr_equal(tk_map_sget(m, "session-2"), &c);
    assert_int_equal(tk_map_count(m), 3);

    /* delete */
    assert_ptr_equal(tk_map_sdel(m, "session-1"), &a);
    assert_null(tk_map_sget(m, "session-1"));
    assert_null(tk_map_sdel(m, "session-1"));
    assert_int_equal(tk_map_count(m), 2);
    assert_ptr_equal(tk_map_sdel(m, ""), &c);
    assert_ptr_equal(tk_map_sget(m, "session-2"), &c);
    tk_map_destroy(m);
}

static void test_string_keys_many(void **state)
{
    (void)state;
    enum { N = 20000 };
    tk_map_t *m = tk_map_create();
    char key[64];
    for (uint64_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "srv__tool_%llu", (unsigned long long)i);
        tk_map_sput(m, key, val_for(i));
    }
    assert_int_equal(tk_map_count(m), N);
    for (uint64_t i = 0; i < N; i += 2) {
        snprintf(key, sizeof(key), "srv__tool_%llu", (unsigned long long)i);
        assert_ptr_equal(tk_map_sdel(m, key), val_for(i));
    }
    assert_int_equal(tk_map_count(m), N / 2);
    for (uint64_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "srv__tool_%llu", (unsigned long long)i);
        if (i % 2 == 0)
            assert_null(tk_map_sget(m, key));
        else
            assert_ptr_equal(tk_map_sget(m, key), val_for(i));
    }
    /* iteration hands back the stored copies */
    size_t it = 0, seen = 0;
    const char *sk = NULL;
    void *v = NULL;
    uint64_t hk;
    while (tk_map_next(m, &it, &hk, &sk, &v)) {
        assert_non_null(sk);
        unsigned long long i = 0;
        assert_int_equal(sscanf(sk, "srv__tool_%llu", &i), 1);
        assert_int_equal(i % 2, 1);
        assert_ptr_equal(v, val_for(i));
        seen++;
    }
    assert_int_equal(seen, N / 2);
    tk_map_destroy(m);
}

static void test_iteration(void **state)
{
    (void)state;
    enum { N = 5000 };
    tk_map_t *m = tk_map_create();

    size_t it = 0;
    assert_int_equal(tk_map_next(m, &it, NULL, NULL, NULL), 0);

    for (uint64_t k = 0; k < N; k++)
        tk_map_put(m, k + 1000, val_for(k + 1000));
    for (uint64_t k = 0; k < N; k += 3)
        assert_non_null(tk_map_del(m, k + 1000));
    size_t want = tk_map_count(m);
    assert_int_equal(want, N - (N + 2) / 3);

    unsigned char *seen = tk_calloc(N, 1);
    size_t visits = 0;
    uint64_t key;
    const char *skey = (const char *)1;
    void *val;
    it = 0;
    while (tk_map_next(m, &it, &key, &skey, &val)) {
        assert_true(key >= 1000 && key < 1000 + N);
        assert_null(skey); /* u64 entries have no string key */
        assert_ptr_equal(val, val_for(key));
        assert_int_equal(seen[key - 1000], 0);
        seen[key - 1000] = 1;
        visits++;
    }
    assert_int_equal(visits, want);
    for (uint64_t k = 0; k < N; k++)
        assert_int_equal(seen[k], k % 3 != 0);
    /* iteration past the end stays at the end */
    assert_int_equal(tk_map_next(m, &it, &key, NULL, NULL), 0);

    /* NULL out-pointers are allowed */
    it = 0;
    visits = 0;
    while (tk_map_next(m, &it, NULL, NULL, NULL))
        visits++;
    assert_int_equal(visits, want);

    free(seen);
    tk_map_destroy(m);
}

static void test_null_values(void **state)
{
    (void)state;
    /* a NULL value is stored (counted) even though get cannot tell it apart */
    tk_map_t *m = tk_map_create();
    tk_map_put(m, 5, NULL);
    assert_int_equal(tk_map_count(m), 1);
    assert_null(tk_map_get(m, 5));
    size_t it = 0;
    uint64_t key = 0;
    assert_int_equal(tk_map_next(m, &it, &key, NULL, NULL), 1);
    assert_int_equal(key, 5);
    assert_null(tk_map_del(m, 5));
    assert_int_equal(tk_map_count(m), 0);
    tk_map_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_delete_backward_shift),
        cmocka_unit_test(test_delete_random_churn),
        cmocka_unit_test(test_string_keys),
        cmocka_unit_test(test_string_keys_many),
        cmocka_unit_test(test_iteration),
        cmocka_unit_test(test_null_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
