/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for name handling (src/mcp/names.c): tk_ns_make joining
 * "server__tool" unchanged when it fits in TK_NS_MAX (60) characters and
 * otherwise cutting it to exactly 60 with "_" and the first 8 hex digits of
 * SHA-256(name) -- checked against an independently computed hash --
 * deterministically and without collisions between long names that differ
 * only at the end, plus its TK_EINVAL cases (server name too long, empty
 * parts, small buffer); and tk_glob_match with literals, '*' anywhere,
 * empty patterns and strings, and backtracking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "mcp/names.h"

/* A string of n copies of c; buf must hold n + 1 bytes. */
static char *fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* The expected long-name form, computed independently. */
static void expected_long(const char *server, const char *name, char *out, size_t outlen)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)name, strlen(name), md);
    int keep = (int)(TK_NS_MAX - strlen(server) - strlen("__") - 1 - 8);
    snprintf(out, outlen, "%s__%.*s_%02x%02x%02x%02x", server, keep, name, md[0], md[1], md[2],
             md[3]);
}

static void test_short(void **state)
{
    (void)state;
    char out[TK_NS_MAX + 1];
    assert_int_equal(tk_ns_make("github", "create_issue", out, sizeof(out)), TK_OK);
    assert_string_equal(out, "github__create_issue");
    assert_int_equal(tk_ns_make("a", "b", out, sizeof(out)), TK_OK);
    assert_string_equal(out, "a__b");
    /* names containing the separator themselves are kept verbatim */
    assert_int_equal(tk_ns_make("fs", "read__file", out, sizeof(out)), TK_OK);
    assert_string_equal(out, "fs__read__file");
}

static void test_exact_fit(void **state)
{
    (void)state;
    char out[128], name[128];
    /* "srv__" is 5 chars: a 55-char name makes exactly 60 */
    fill(name, 'n', 55);
    assert_int_equal(tk_ns_make("srv", name, out, sizeof(out)), TK_OK);
    assert_int_equal(strlen(out), TK_NS_MAX);
    assert_memory_equal(out, "srv__", 5);
    assert_string_equal(out + 5, name);

    /* the minimum buffer (TK_NS_MAX + 1) suffices for an exact fit */
    char small[TK_NS_MAX + 1];
    assert_int_equal(tk_ns_make("srv", name, small, sizeof(small)), TK_OK);
    assert_string_equal(small, out);
}

static void test_truncated(void **state)
{
    (void)state;
    char out[128], want[128], name[256];

    /* 56-char name: one too many -> hashed form of exactly 60 */
    fill(name, 'n', 56);
    assert_int_equal(tk_ns_make("srv", name, out, sizeof(out)), TK_OK);
    assert_int_equal(strlen(out), TK_NS_MAX);
    expected_long("srv", name, want, sizeof(want));
    assert_string_equal(out, want);
    /* layout: "srv__" + 46-char prefix + "_" + 8 lowercase hex digits */
    assert_memory_equal(out, "srv__", 5);
    for (size_t i = 5; i < 51; i++)
        assert_int_equal(out[i], 'n');
    assert_int_equal(out[51], '_');
    for (size_t i = 52; i < 60; i++)
        assert_non_null(strchr("0123456789abcdef", out[i]));

    /* a very long name */
    fill(name, 'x', 200);
    assert_int_equal(tk_ns_make("my-server", name, out, sizeof(out)), TK_OK);
    assert_int_equal(strlen(out), TK_NS_MAX);
    expected_long("my-server", name, want, sizeof(want));
    assert_string_equal(out, want);

    /* a known vector (FIPS 180-2): SHA-256 of this 56-char string starts
     * 248d6a61 */
    static const char fips[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char server[64];
    fill(server, 's', 48); /* the longest server name allowed: keeps 1 char */
    assert_int_equal(tk_ns_make(server, fips, out, sizeof(out)), TK_OK);
    assert_int_equal(strlen(out), TK_NS_MAX);
    assert_memory_equal(out, server, 48);
    assert_string_equal(out + 48, "__a_248d6a61");
    assert_int_equal(tk_ns_make("srv", fips, out, sizeof(out)), TK_OK);
    assert_string_equal(out, "srv__abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlm_248d6a61");

    /* the minimum buffer suffices for the hashed form too */
    char small[TK_NS_MAX + 1];
    fill(name, 'q', 100);
    assert_int_equal(tk_ns_make("srv", name, small, sizeof(small)), TK_OK);
    assert_int_equal(strlen(small), TK_NS_MAX);
}

static void test_deterministic(void **state)
{
    (void)state;
    char a[128], b[128], name[128];
    fill(name, 'z', 90);
    assert_int_equal(tk_ns_make("srv", name, a, sizeof(a)), TK_OK);
    assert_int_equal(tk_ns_make("srv", name, b, sizeof(b)), TK_OK);
    assert_string_equal(a, b);
    /* also when the input buffer is a distinct copy */
    char copy[128];
    memcpy(copy, name, sizeof(copy));
    assert_int_equal(tk_ns_make("srv", copy, b, sizeof(b)), TK_OK);
    assert_string_equal(a, b);
}

static void test_long_names_differ(void **state)
{
    (void)state;
    char n1[128], n2[128], o1[128], o2[128];
    fill(n1, 'p', 100);
    fill(n2, 'p', 100);
    n2[99] = 'q'; /* differs only in the last char, far beyond the kept prefix */
    assert_int_equal(tk_ns_make("srv", n1, o1, sizeof(o1)), TK_OK);
    assert_int_equal(tk_ns_make("srv", n2, o2, sizeof(o2)), TK_OK);
    assert_int_equal(strlen(o1), TK_NS_MAX);
    assert_int_equal(strlen(o2), TK_NS_MAX);
    /* same prefix, different hash suffix */
    assert_memory_equal(o1, o2, TK_NS_MAX - 8);
    assert_string_not_equal(o1, o2);

    /* names of different lengths sharing a long prefix differ too */
    n2[99] = '\0';
    assert_int_equal(tk_ns_make("srv", n2, o2, sizeof(o2)), TK_OK);
    assert_string_not_equal(o1, o2);

    /* the same tool under two servers differs */
    assert_int_equal(tk_ns_make("srv1", n1, o1, sizeof(o1)), TK_OK);
    assert_int_equal(tk_ns_make("srv2", n1, o2, sizeof(o2)), TK_OK);
    assert_string_not_equal(o1, o2);
}

static void test_many_long_names_unique(void **state)
{
    (void)state;
    /* 1000 long names differing only in a numeric suffix: all distinct */
    enum { N = 1000 };
    char(*outs)[TK_NS_MAX + 1] = tk_calloc(N, TK_NS_MAX + 1);
    char name[128];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "a_very_long_tool_name_that_does_not_fit_in_sixty_chars_%04d",
                 i);
        assert_int_equal(tk_ns_make("server", name, outs[i], TK_NS_MAX + 1), TK_OK);
        assert_int_equal(strlen(outs[i]), TK_NS_MAX);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_string_not_equal(outs[i], outs[j]);
    free(outs);
}

static void test_errors(void **state)
{
    (void)state;
    char out[256], server[128], name[128];
    memset(out, 'X', sizeof(out));

    /* server of 49 chars leaves no room for "__" + 1 char + "_" + 8 hex */
    fill(server, 's', 49);
    assert_int_equal(tk_ns_make(server, "t", out, sizeof(out)), TK_EINVAL);
    fill(server, 's', 60);
    assert_int_equal(tk_ns_make(server, "t", out, sizeof(out)), TK_EINVAL);
    /* 48 is still fine, short names too */
    fill(server, 's', 48);
    assert_int_equal(tk_ns_make(server, "t", out, sizeof(out)), TK_OK);
    assert_int_equal(strlen(out), 51);

    /* empty server or name */
    assert_int_equal(tk_ns_make("", "t", out, sizeof(out)), TK_EINVAL);
    assert_int_equal(tk_ns_make("s", "", out, sizeof(out)), TK_EINVAL);

    /* buffer smaller than TK_NS_MAX + 1, even if the result would fit */
    assert_int_equal(tk_ns_make("s", "t", out, TK_NS_MAX), TK_EINVAL);
    assert_int_equal(tk_ns_make("s", "t", out, 5), TK_EINVAL);
    assert_int_equal(tk_ns_make("s", "t", out, 0), TK_EINVAL);
    fill(name, 'n', 80);
    assert_int_equal(tk_ns_make("s", name, out, TK_NS_MAX), TK_EINVAL);
}

static void test_glob_exact(void **state)
{
    (void)state;
    assert_true(tk_glob_match("github__create_issue", "github__create_issue"));
    assert_false(tk_glob_match("github__create_issue", "github__create_issu"));
    assert_false(tk_glob_match("github__create_issue", "github__create_issues"));
    assert_false(tk_glob_match("abc", "ABC"));
    assert_false(tk_glob_match("abc", ""));
    assert_false(tk_glob_match("", "abc"));
    assert_true(tk_glob_match("", ""));
    /* '?' and other metacharacters are literal */
    assert_true(tk_glob_match("a?c", "a?c"));
    assert_false(tk_glob_match("a?c", "abc"));
    assert_false(tk_glob_match("[ab]", "a"));
}

static void test_glob_star(void **state)
{
    (void)state;
    assert_true(tk_glob_match("*", ""));
    assert_true(tk_glob_match("*", "anything"));
    assert_true(tk_glob_match("**", ""));
    assert_true(tk_glob_match("***", "x"));

    /* prefix* */
    assert_true(tk_glob_match("github__*", "github__create_issue"));
    assert_true(tk_glob_match("github__*", "github__"));
    assert_false(tk_glob_match("github__*", "github_create"));
    assert_false(tk_glob_match("github__*", "gitlab__create"));

    /* *suffix */
    assert_true(tk_glob_match("*__delete", "fs__delete"));
    assert_true(tk_glob_match("*__delete", "__delete"));
    assert_false(tk_glob_match("*__delete", "fs__delete_all"));
    assert_false(tk_glob_match("*__delete", "fs__delet"));

    /* *middle* */
    assert_true(tk_glob_match("*write*", "fs__write_file"));
    assert_true(tk_glob_match("*write*", "write"));
    assert_false(tk_glob_match("*write*", "fs__wr_ite"));

    /* a*b*c */
    assert_true(tk_glob_match("a*b*c", "abc"));
    assert_true(tk_glob_match("a*b*c", "aXXbYYc"));
    assert_true(tk_glob_match("a*b*c", "abbbc"));
    assert_true(tk_glob_match("a*b*c", "abcbc"));
    assert_true(tk_glob_match("a*b*c", "acbc"));
    assert_false(tk_glob_match("a*b*c", "acb"));
    assert_false(tk_glob_match("a*b*c", "abcd"));
    assert_false(tk_glob_match("a*b*c", "xabc"));
    assert_false(tk_glob_match("a*b*c", "ab"));

    /* backtracking: the first candidate for the literal after '*' is wrong */
    assert_true(tk_glob_match("*ab", "aab"));
    assert_true(tk_glob_match("*aab", "aaab"));
    assert_true(tk_glob_match("a*aab", "aaaab"));
    assert_true(tk_glob_match("*a*a*a", "aaa"));
    assert_false(tk_glob_match("*a*a*a*a", "aaa"));
    assert_false(tk_glob_match("*x", ""));
    assert_false(tk_glob_match("a*", ""));
    assert_false(tk_glob_match("*a", "b"));
}

static void test_glob_pathological(void **state)
{
    (void)state;
    /* many stars against a long non-matching string finishes quickly */
    char s[4097];
    fill(s, 'a', 4096);
    assert_false(tk_glob_match("*a*a*a*a*a*a*a*a*a*a*b", s));
    assert_true(tk_glob_match("*a*a*a*a*a*a*a*a*a*a*", s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short),
        cmocka_unit_test(test_exact_fit),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_long_names_differ),
        cmocka_unit_test(test_many_long_names_unique),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_glob_exact),
        cmocka_unit_test(test_glob_star),
        cmocka_unit_test(test_glob_pathological),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
