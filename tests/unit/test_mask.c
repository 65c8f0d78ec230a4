/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Masking: built-in rules (authorization schemes, tk_ keys, JWTs, PEM keys,
 * secret-named values), registered exact values, configured PCRE2 patterns,
 * JSON masking by member name, idempotence, and the config hook that
 * registers a loaded config's secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/mask.h"

static int reset(void **state)
{
    (void)state;
    tk_mask_reset();
    return 0;
}

/* mask `in` and compare with `want`; masking the result again changes nothing */
static void check(const char *in, const char *want)
{
    char *m = tk_mask_str(in);
    assert_string_equal(m, want);
    char *m2 = tk_mask_str(m);
    assert_string_equal(m2, m);
    free(m2);
    free(m);
}

static void test_builtin_rules(void **state)
{
    (void)state;
    check("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer ****");
    check("basic dXNlcjpwYXNzd29yZA== sent", "basic **** sent");
    check("key tk_AbC123_0123456789abcdef rejected", "key tk_**** rejected");
    check("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl end",
          "token **** end");
    check("-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY----- after", "**** after");
    check("-----BEGIN RSA PRIVATE KEY-----\nMIIEv truncated", "****");
    check("password=hunter2&user=bob", "password=****&user=bob");
    check("{\"client_secret\": \"s3cr3t-value\", \"n\": 1}", "{\"client_secret\": \"****\", \"n\": 1}");
    check("API-KEY: xyz987", "API-KEY: ****");
    check("x_api_key=abcdef", "x_api_key=****");
    /* PCRE2 ignores case the Unicode way: long s is an s, the Kelvin sign a k */
    check("pa\xc5\xbf\xc5\xbfword=hunter2", "pa\xc5\xbf\xc5\xbfword=****");
    check("to\xe2\x84\xaa" "en=abcdef", "to\xe2\x84\xaa" "en=****");
    check("\"password\":\"with \\\" quote\"", "\"password\":\"****\"");
    /* ordinary text stays as it is */
    check("tools/call echo took 12 ms", "tools/call echo took 12 ms");
    check("Bearer realm=\"tumiki\"", "Bearer realm=\"tumiki\"");
    check("", "");
}

/* tk_mask_may_change answers 1 for every text that masking changes (the
 * audit writer skips the copy only on 0), and 0 for everyday text. */
static void test_may_change(void **state)
{
    (void)state;
    assert_int_equal(tk_mask_add_secret("Zq9-registered-77"), TK_OK);
    char err[128];
    assert_int_equal(tk_mask_add_pattern("[0-9]{4}-[0-9]{4}-[0-9]{4}", err, sizeof(err)), TK_OK);
    const char *changed[] = {"Authorization: Bearer abcdefgh12345678", "BASIC dXNlcjpwYXNz",
                             "key tk_AbC123_0123456789abcdef", "x eyJhbGciOi.eyJzdWIiOi.c2ln",
                             "-----BEGIN PRIVATE KEY-----\nMIIEv", "PassWord=hunter2",
                             "x_api_key=abcdef", "privateKey: abc", "{\"cookie\":\"c=1\"}",
                             "SECRET=x", "credentials: abc", "refresh_token=abc",
                             "authorization=abc", "pre Zq9-registered-77 post",
                             "card 1234-5678-9012 end", "pa\xc5\xbf\xc5\xbfword=x",
                             "api_\342\204\252ey=abc" /* Kelvin sign */};
    for (size_t i = 0; i < sizeof(changed) / sizeof(changed[0]); i++) {
        char *m = tk_mask_str(changed[i]);
        assert_string_not_equal(m, changed[i]);
        assert_int_equal(tk_mask_may_change(changed[i], strlen(changed[i])), 1);
        free(m);
    }
    const char *plain[] = {"key:abcdef0123456789", "tool.call", "s-0011223344556677", "127.0.0.1",
                           "echo__echo", "a1b2c3d4-17", "ok", ""};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        assert_int_equal(tk_mask_may_change(plain[i], strlen(plain[i])), 0);
    assert_int_equal(tk_mask_may_change("a\0Zq9-registered-77", 20), 1);
    const char *each[] = {plain[0], changed[13], NULL, changed[0], plain[3]};
    assert_int_equal(tk_mask_may_change_each(each, 5), (1u << 1) | (1u << 3));
    json_t *clean = json_pack("{s:i, s:s, s:[s]}", "rpc_id", 1, "session", "s-00", "l", "x");
    json_t *named = json_pack("{s:{s:s}}", "o", "api_key", "v");
    json_t *nested = json_pack("{s:[s]}", "o", "Bearer abcdefgh12345678");
    assert_int_equal(tk_mask_json_may_change(clean), 0);
    assert_int_equal(tk_mask_json_may_change(named), 1);
    assert_int_equal(tk_mask_json_may_change(nested), 1);
    json_decref(clean);
    json_decref(named);
    json_decref(nested);
}

static void test_registered_secrets(void **state)
{
    (void)state;
    assert_int_equal(tk_mask_add_secret("sk-live-0123456789"), TK_OK);
    assert_int_equal(tk_mask_add_secret("abc"), TK_OK); /* too short: ignored */
    assert_int_equal(tk_mask_add_secret("sk-live-0123456789"), TK_OK); /* duplicate */
    check("upstream said sk-live-0123456789 twice: sk-live-0123456789.",
          "upstream said **** twice: ****.");
    check("abc stays", "abc stays");
    tk_mask_reset();
    check("sk-live-0123456789", "sk-live-0123456789");
}

static void test_patterns(void **state)
{
    (void)state;
    char err[320];
    assert_int_equal(tk_mask_add_pattern("[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}", err,
                                         sizeof(err)),
                     TK_OK);
    assert_int_equal(tk_mask_add_pattern("\\b\\d(?:[ -]?\\d){12,15}\\b", err, sizeof(err)), TK_OK);
    check("mail alice@example.com card 4111 1111 1111 1111 ok", "mail **** card **** ok");

    assert_int_equal(tk_mask_add_pattern("(unclosed", err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "offset"));
    assert_int_equal(tk_mask_check_pattern("", err, sizeof(err)), TK_EINVAL);
    assert_int_equal(tk_mask_check_pattern("a+", err, sizeof(err)), TK_OK);
    char *big = malloc(TK_MASK_PATTERN_MAX + 2);
    memset(big, 'a', TK_MASK_PATTERN_MAX + 1);
    big[TK_MASK_PATTERN_MAX + 1] = '\0';
    assert_int_equal(tk_mask_check_pattern(big, err, sizeof(err)), TK_ELIMIT);
    free(big);
}

static void test_invalid_utf8_and_buf(void **state)
{
    (void)state;
    check("\xff\xfe Bearer abcdefgh12345678 \xc3", "\xff\xfe Bearer **** \xc3");
    char buf[16];
    tk_snprintf(buf, sizeof(buf), "password=x");
    assert_int_equal(tk_mask_buf(buf, sizeof(buf)), strlen("password=****"));
    assert_string_equal(buf, "password=****");
    char tiny[8];
    tk_snprintf(tiny, sizeof(tiny), "pwd");
    assert_int_equal(tk_mask_buf(tiny, 2), 1);
    assert_string_equal(tiny, "p");
}

static void test_json(void **state)
{
    (void)state;
    assert_int_equal(tk_mask_add_secret("zq-upstream-42x"), TK_OK);
    json_error_t je;
    json_t *v = json_loads("{\"path\":\"/tmp/a\",\"password\":\"pw1234\",\"apiKey\":123,"
                           "\"nested\":{\"accessToken\":\"zzz\",\"list\":[\"Bearer abcdefgh1234\","
                           "\"zq-upstream-42x\",7]},\"max_tokens\":5,"
                           "\"zq-upstream-42x\":\"as a name\"}",
                           0, &je);
    assert_non_null(v);
    tk_mask_json(v);
    char *s = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"****\":\"as a name\",\"apiKey\":\"****\",\"max_tokens\":5,"
                           "\"nested\":{\"accessToken\":\"****\",\"list\":[\"Bearer ****\",\"****\","
                           "7]},\"password\":\"****\",\"path\":\"/tmp/a\"}");
    free(s);
    json_decref(v);

    /* deep nesting is cut, not recursed without bound */
    json_t *deep = json_string("leaf");
    for (int i = 0; i < 100; i++) {
        json_t *a = json_array();
        json_array_append_new(a, deep);
        deep = a;
    }
    tk_mask_json(deep);
    json_decref(deep);
    tk_mask_json(NULL);
}

static void test_config_registration(void **state)
{
    (void)state;
    const char *json = "{\"auth\":{\"bearer_token\":\"bootstrap-token-0123456789abcdef\"},"
                       "\"mask_patterns\":[\"card-[0-9]+\"],"
                       "\"mcpServers\":{\"gh\":{\"command\":\"/bin/true\","
                       "\"env\":{\"GITHUB_TOKEN\":\"ghp_secretvalue123\",\"X\":\"1\"}},"
                       "\"web\":{\"url\":\"https://mcp.example.com/mcp\","
                       "\"headers\":{\"X-Custom\":\"hdr-secret-value\"}}}}";
    tk_config_t *cfg = NULL;
    char err[1024];
    assert_int_equal(tk_config_load_string(json, "t.json", &cfg, err, sizeof(err)), TK_OK);
    assert_int_equal(tk_config_register_masks(cfg, err, sizeof(err)), TK_OK);
    check("a bootstrap-token-0123456789abcdef b ghp_secretvalue123 c hdr-secret-value d card-42",
          "a **** b **** c **** d ****");
    tk_config_destroy(cfg);

    assert_int_not_equal(
        tk_config_load_string("{\"mask_patterns\":[\"(x\"]}", "bad.json", &cfg, err, sizeof(err)),
        TK_OK);
    assert_non_null(strstr(err, "mask_patterns[0]"));
    assert_non_null(strstr(err, "invalid regular expression"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_builtin_rules, reset),
        cmocka_unit_test_setup(test_registered_secrets, reset),
        cmocka_unit_test_setup(test_may_change, reset),
        cmocka_unit_test_setup(test_patterns, reset),
        cmocka_unit_test_setup(test_invalid_utf8_and_buf, reset),
        cmocka_unit_test_setup(test_json, reset),
        cmocka_unit_test_setup(test_config_registration, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
