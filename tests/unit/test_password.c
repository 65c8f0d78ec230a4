/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the password policy and hashing (src/auth/password.c):
 * length bounds, NUL bytes, repeated characters, the shipped common list
 * (case-insensitive, with trailing digits/punctuation stripped), the e-mail
 * rule; bcrypt hashes at the requested cost that verify the right password
 * and refuse wrong ones, including passwords differing only after byte 72
 * (bcrypt's own limit, lifted by the SHA-256 pre-hash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/password.h"

static const char *check(const char *pw, const char *email)
{
    return tk_password_check(pw, strlen(pw), email);
}

static void test_policy(void **state)
{
    (void)state;
    assert_null(check("violet-anchor-42", "bob@example.com"));
    assert_non_null(check("short-pw1", NULL));        /* 9 < 12 */
    assert_non_null(check("aaaaaaaaaaaaaaaa", NULL)); /* repeated */
    assert_non_null(check("password1234", NULL));     /* on the list */
    assert_non_null(check("PassWord1234", NULL));     /* case */
    assert_non_null(check("qwertyuiop!!2024", NULL)); /* base on the list */
    assert_non_null(check("correcthorsebatterystaple", NULL));
    assert_non_null(check("margaret-secret-9", "Margaret@example.com")); /* e-mail name */
    assert_null(check("margaret-secret-9", "al@example.com"));           /* names under 3 ignored */
    char big[TK_PASSWORD_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[0] = 'y';
    assert_non_null(tk_password_check(big, TK_PASSWORD_MAX + 1, NULL));
    assert_null(tk_password_check(big, TK_PASSWORD_MAX, NULL));
    const char nul[] = "violet-anc\0hor-42";
    assert_non_null(tk_password_check(nul, sizeof(nul) - 1, NULL));
}

static void test_hash_verify(void **state)
{
    (void)state;
    char h[TK_PASSWORD_HASH_MAX];
    const char *pw = "violet-anchor-42";
    assert_int_equal(tk_password_hash(pw, strlen(pw), 5, h, sizeof(h)), TK_OK);
    assert_memory_equal(h, "$2b$05$", 7);
    assert_true(tk_password_verify(pw, strlen(pw), h));
    assert_false(tk_password_verify("violet-anchor-43", 16, h));
    assert_false(tk_password_verify(pw, strlen(pw), NULL));
    assert_false(tk_password_verify(pw, strlen(pw), "plain"));
    assert_int_equal(tk_password_hash(pw, strlen(pw), 3, h, sizeof(h)), TK_EINVAL);
    assert_int_equal(tk_password_hash(pw, 0, 5, h, sizeof(h)), TK_EINVAL);

    char a[100], b[100];
    memset(a, 'k', sizeof(a));
    memcpy(b, a, sizeof(b));
    b[90] = 'z'; /* differs after byte 72 */
    assert_int_equal(tk_password_hash(a, sizeof(a), 4, h, sizeof(h)), TK_OK);
    assert_true(tk_password_verify(a, sizeof(a), h));
    assert_false(tk_password_verify(b, sizeof(b), h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_hash_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
