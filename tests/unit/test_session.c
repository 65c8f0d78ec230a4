/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for dashboard sessions (src/admin/session.c): ids are 64 hex
 * digits and differ each time; a session is found by its id only (not by a
 * malformed, altered or foreign one); the idle timeout and the absolute
 * lifetime end it even while it is used; close and close_user end it;
 * sweep drops expired ones; the session limit; CSRF tokens compare exactly;
 * cookie header parsing; four threads opening, finding and closing at once
 * on one table (the HTTP threads share it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "admin/session.h"

static void test_open_find_close(void **state)
{
    (void)state;
    tk_sessions_t *ss = tk_sessions_create(1000, 5000, 10);
    char id1[TK_SESSION_ID_LEN + 1], id2[TK_SESSION_ID_LEN + 1];
    tk_session_t s;
    assert_int_equal(tk_sessions_open(ss, "u1", "a@x.io", 100, id1, &s), TK_OK);
    char csrf1[TK_SESSION_CSRF_LEN + 1];
    memcpy(csrf1, s.csrf, sizeof(csrf1));
    assert_int_equal(strlen(id1), TK_SESSION_ID_LEN);
    assert_int_equal(tk_sessions_open(ss, "u2", "b@x.io", 100, id2, &s), TK_OK);
    assert_string_not_equal(id1, id2);
    assert_string_not_equal(csrf1, s.csrf);
    assert_int_equal(tk_sessions_find(ss, id1, strlen(id1), 200, &s), TK_OK);
    assert_string_equal(s.user_id, "u1");
    assert_true(tk_session_csrf_ok(&s, csrf1, strlen(csrf1)));
    assert_false(tk_session_csrf_ok(&s, csrf1, strlen(csrf1) - 1));
    assert_false(tk_session_csrf_ok(&s, NULL, 0));
    char bad[TK_SESSION_ID_LEN + 1];
    memcpy(bad, id1, sizeof(bad));
    bad[5] = bad[5] == 'a' ? 'b' : 'a';
    assert_int_equal(tk_sessions_find(ss, bad, strlen(bad), 200, &s), TK_ENOENT);
    assert_int_equal(tk_sessions_find(ss, "zz", 2, 200, &s), TK_ENOENT);
    assert_int_equal(tk_sessions_find(ss, id1, strlen(id1) - 1, 200, &s), TK_ENOENT);
    assert_int_equal(tk_sessions_close(ss, id1, strlen(id1)), 1);
    assert_int_equal(tk_sessions_find(ss, id1, strlen(id1), 200, &s), TK_ENOENT);
    assert_int_equal(tk_sessions_close_user(ss, "u2"), 1);
    assert_int_equal(tk_sessions_count(ss), 0);
    tk_sessions_destroy(ss);
}

static void test_expiry_and_limit(void **state)
{
    (void)state;
    tk_sessions_t *ss = tk_sessions_create(1000, 3000, 2);
    char id[TK_SESSION_ID_LEN + 1], id2[TK_SESSION_ID_LEN + 1], id3[TK_SESSION_ID_LEN + 1];
    tk_session_t s;
    assert_int_equal(tk_sessions_open(ss, "u", "", 0, id, &s), TK_OK);
    /* kept alive by use, every 900 ms, until the absolute lifetime */
    for (uint64_t t = 900; t < 3000; t += 900)
        assert_int_equal(tk_sessions_find(ss, id, strlen(id), t, &s), TK_OK);
    assert_int_equal(tk_sessions_find(ss, id, strlen(id), 3000, &s), TK_ENOENT);
    /* idle */
    assert_int_equal(tk_sessions_open(ss, "u", "", 10000, id, &s), TK_OK);
    assert_int_equal(tk_sessions_find(ss, id, strlen(id), 11000, &s), TK_ENOENT);
    /* limit, and sweep making room */
    assert_int_equal(tk_sessions_open(ss, "u", "", 20000, id, &s), TK_OK);
    assert_int_equal(tk_sessions_open(ss, "u", "", 20000, id2, &s), TK_OK);
    assert_int_equal(tk_sessions_open(ss, "u", "", 20500, id3, &s), TK_ELIMIT);
    assert_int_equal(tk_sessions_sweep(ss, 20500), 0);
    assert_int_equal(tk_sessions_open(ss, "u", "", 21500, id3, &s), TK_OK);
    assert_int_equal(tk_sessions_count(ss), 1);
    tk_sessions_destroy(ss);
}

static void test_cookie_find(void **state)
{
    (void)state;
    const char *v;
    size_t n;
    assert_int_equal(
        tk_cookie_find("a=1; __Host-tumiki_session=abc ; b=2", TK_SESSION_COOKIE, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "abc", 3);
    assert_int_equal(tk_cookie_find("x__Host-tumiki_session=abc", TK_SESSION_COOKIE, &v, &n),
                     TK_ENOENT);
    assert_int_equal(tk_cookie_find("__Host-tumiki_sessionx=abc", TK_SESSION_COOKIE, &v, &n),
                     TK_ENOENT);
    assert_int_equal(tk_cookie_find("", TK_SESSION_COOKIE, &v, &n), TK_ENOENT);
    assert_int_equal(tk_cookie_find("a=1;b=2", "b", &v, &n), 0);
    assert_int_equal(n, 1);
}

static void *churn(void *arg)
{
    tk_sessions_t *ss = arg;
    for (int i = 0; i < 2000; i++) {
        char id[TK_SESSION_ID_LEN + 1];
        tk_session_t s, f;
        if (tk_sessions_open(ss, "u", "", (uint64_t)i, id, &s) != TK_OK ||
            tk_sessions_find(ss, id, strlen(id), (uint64_t)i, &f) != TK_OK ||
            strcmp(f.csrf, s.csrf) != 0 || tk_sessions_close(ss, id, strlen(id)) != 1)
            return (void *)1;
        (void)tk_sessions_sweep(ss, (uint64_t)i);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    tk_sessions_t *ss = tk_sessions_create(60000, 60000, 100);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, ss), 0);
    for (int i = 0; i < 4; i++) {
        void *rv = (void *)1;
        assert_int_equal(pthread_join(t[i], &rv), 0);
        assert_null(rv);
    }
    assert_int_equal(tk_sessions_count(ss), 0);
    tk_sessions_destroy(ss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_find_close),
        cmocka_unit_test(test_expiry_and_limit),
        cmocka_unit_test(test_cookie_find),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
