/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for local accounts and the store's login operations against a
 * real SQLite file: tk_account_set_password applies the policy and stores a
 * bcrypt hash that verifies; e-mails are unique without regard to case; the e-mail lookup ignores
 * case; failures count up and lock the account at the threshold (count restarting), reset clears
 * both; set_password replaces the hash; unknown users give TK_ENOENT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin/account.h"
#include "auth/password.h"

static char dir[64], path[128];

static int setup(void **state)
{
    (void)state;
    tk_snprintf(dir, sizeof(dir), "/tmp/tk_account_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    tk_snprintf(path, sizeof(path), "%s/tumiki.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[160];
        tk_snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

static void test_accounts(void **state)
{
    (void)state;
    tk_store_t *st;
    char err[256];
    const char *why;
    assert_int_equal(tk_store_open_sqlite(path, &st, err, sizeof(err)), TK_OK);
    assert_int_equal(tk_store_user_insert(st, "u1", "Carol@Example.com", NULL, 1), TK_OK);
    assert_int_equal(tk_store_user_insert(st, "u2", "carol@example.com", NULL, 1), TK_EINVAL);
    /* e-mails are unique without regard to case (migration 5) */
    assert_int_equal(
        tk_account_set_password(st, "u1", "Carol@Example.com", "password1234", 12, 4, &why),
        TK_EINVAL);
    assert_non_null(why);
    assert_int_equal(
        tk_account_set_password(st, "u1", "Carol@Example.com", "quiet-lantern-77", 16, 4, &why),
        TK_OK);

    tk_user_login_t u;
    assert_int_equal(tk_store_user_login_get(st, "CAROL@example.COM", &u), TK_OK);
    assert_string_equal(u.email, "Carol@Example.com");
    assert_true(tk_password_verify("quiet-lantern-77", 16, u.password_hash));
    assert_int_equal(u.failed_logins, 0);
    assert_int_equal(u.locked_until, 0);

    int64_t until = -1;
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(tk_store_user_login_failed(st, u.id, 1000, 3, 500, &until), TK_OK);
        assert_int_equal(until, 0);
    }
    assert_int_equal(tk_store_user_login_failed(st, u.id, 1000, 3, 500, &until), TK_OK);
    assert_int_equal(until, 1500);
    tk_user_login_t v;
    assert_int_equal(tk_store_user_login_get(st, "carol@example.com", &v), TK_OK);
    assert_int_equal(v.failed_logins, 0); /* counting starts again after a lock */
    assert_int_equal(v.locked_until, 1500);
    tk_user_login_clear(&v);
    assert_int_equal(tk_store_user_login_failed(st, u.id, 2000, 3, 500, &until), TK_OK);
    assert_int_equal(until, 1500); /* unchanged until the threshold again */
    assert_int_equal(tk_store_user_login_reset(st, u.id), TK_OK);
    assert_int_equal(tk_store_user_login_get(st, "carol@example.com", &v), TK_OK);
    assert_int_equal(v.failed_logins, 0);
    assert_int_equal(v.locked_until, 0);
    tk_user_login_clear(&v);

    assert_int_equal(tk_account_set_password(st, u.id, u.email, "carol-in-the-rain", 17, 4, &why),
                     TK_EINVAL); /* contains the e-mail name */
    assert_int_equal(tk_account_set_password(st, u.id, u.email, "amber-violin-301", 16, 4, &why),
                     TK_OK);
    assert_int_equal(tk_store_user_login_get(st, "carol@example.com", &v), TK_OK);
    assert_true(tk_password_verify("amber-violin-301", 16, v.password_hash));
    assert_false(tk_password_verify("quiet-lantern-77", 16, v.password_hash));
    tk_user_login_clear(&v);
    tk_user_login_clear(&u);

    assert_int_equal(tk_store_user_login_get(st, "nobody@example.com", &u), TK_ENOENT);
    assert_int_equal(tk_store_user_login_failed(st, "u_none", 1, 3, 5, &until), TK_ENOENT);
    assert_int_equal(tk_store_user_login_reset(st, "u_none"), TK_ENOENT);
    assert_int_equal(tk_store_user_set_password(st, "u_none", "x"), TK_ENOENT);
    tk_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
