/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the HTTP layer's DNS-rebinding defences (src/http/server.c),
 * using tk_config_t values built on the stack: tk_http_is_loopback over IPv4,
 * IPv6 (including v4-mapped) and names; tk_http_host_allowed for loopback
 * Host values with and without port or brackets, the listen address,
 * configured allowed_hosts (with and without port), and malformed values
 * (bad port, unclosed bracket, empty, NULL); and tk_http_origin_allowed for
 * loopback origins, look-alike hosts, paths, other schemes, "null", and
 * configured allowed_origins matched exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/server.h"

static char listen_lo[] = "127.0.0.1";

static void base_config(tk_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = listen_lo;
    cfg->listen_port = 8080;
}

static void test_is_loopback(void **state)
{
    (void)state;
    assert_int_equal(tk_http_is_loopback("127.0.0.1"), 1);
    assert_int_equal(tk_http_is_loopback("127.1.2.3"), 1);
    assert_int_equal(tk_http_is_loopback("127.255.255.255"), 1);
    assert_int_equal(tk_http_is_loopback("::1"), 1);
    assert_int_equal(tk_http_is_loopback("0:0:0:0:0:0:0:1"), 1);
    assert_int_equal(tk_http_is_loopback("localhost"), 1);
    assert_int_equal(tk_http_is_loopback("LOCALHOST"), 1);
    assert_int_equal(tk_http_is_loopback("LocalHost"), 1);
    assert_int_equal(tk_http_is_loopback("localhost.localdomain"), 1);
    /* IPv4-mapped loopback is treated as loopback */
    assert_int_equal(tk_http_is_loopback("::ffff:127.0.0.1"), 1);
    assert_int_equal(tk_http_is_loopback("::ffff:7f00:1"), 1);

    assert_int_equal(tk_http_is_loopback("10.0.0.1"), 0);
    assert_int_equal(tk_http_is_loopback("0.0.0.0"), 0);
    assert_int_equal(tk_http_is_loopback("::"), 0);
    assert_int_equal(tk_http_is_loopback("::2"), 0);
    assert_int_equal(tk_http_is_loopback("128.0.0.1"), 0);
    assert_int_equal(tk_http_is_loopback("126.255.255.255"), 0);
    assert_int_equal(tk_http_is_loopback("::ffff:10.0.0.1"), 0);
    assert_int_equal(tk_http_is_loopback("example.com"), 0);
    assert_int_equal(tk_http_is_loopback(""), 0);
    assert_int_equal(tk_http_is_loopback("localhost."), 0);
    assert_int_equal(tk_http_is_loopback("localhost.evil.com"), 0);
    assert_int_equal(tk_http_is_loopback("127.0.0.1.nip.io"), 0);
    assert_int_equal(tk_http_is_loopback("127.1"), 0); /* inet_aton-style short form */
    assert_int_equal(tk_http_is_loopback("[::1]"), 0); /* brackets are stripped earlier */
    assert_int_equal(tk_http_is_loopback("127.0.0.1:80"), 0);
}

static void test_host_loopback(void **state)
{
    (void)state;
    tk_config_t cfg;
    base_config(&cfg);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1:8080"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.9.9.9:65535"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "localhost:1"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "localhost"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "LOCALHOST:8080"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "[::1]:80"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "[::1]"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "[::ffff:127.0.0.1]:80"), 1);
}

static void test_host_rejected(void **state)
{
    (void)state;
    tk_config_t cfg;
    base_config(&cfg);
    assert_int_equal(tk_http_host_allowed(&cfg, "evil.com"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "evil.com:80"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "localhost.evil.com:8080"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1.evil.com"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "10.0.0.1:8080"), 0);
    /* bad ports */
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1:99999"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1:65536"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1:0"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1:"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1:80a"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1:-1"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "localhost:80:80"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "[::1]:"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "[::1]:99999"), 0);
    /* malformed */
    assert_int_equal(tk_http_host_allowed(&cfg, "[::1"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "[::1]x"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "[::1]]"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "[]:80"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "::1"), 0); /* IPv6 needs brackets */
    assert_int_equal(tk_http_host_allowed(&cfg, ":8080"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, ""), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, NULL), 0);
    /* overlong */
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(tk_http_host_allowed(&cfg, big), 0);
}

static void test_host_listen_address(void **state)
{
    (void)state;
    tk_config_t cfg;
    base_config(&cfg);
    static char lan[] = "192.168.1.5", any4[] = "0.0.0.0", any6[] = "::";
    cfg.listen_host = lan;
    assert_int_equal(tk_http_host_allowed(&cfg, "192.168.1.5:8080"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "192.168.1.5"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "192.168.1.6:8080"), 0);
    /* a wildcard listen address is never a valid Host */
    cfg.listen_host = any4;
    assert_int_equal(tk_http_host_allowed(&cfg, "0.0.0.0:8080"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "localhost:8080"), 1);
    cfg.listen_host = any6;
    assert_int_equal(tk_http_host_allowed(&cfg, "[::]:8080"), 0);
    cfg.listen_host = NULL;
    assert_int_equal(tk_http_host_allowed(&cfg, "127.0.0.1:8080"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "evil.com"), 0);
}

static void test_host_allowed_hosts(void **state)
{
    (void)state;
    tk_config_t cfg;
    base_config(&cfg);
    static char h1[] = "gw.example.com", h2[] = "other.example.com:8443";
    char *hosts[] = {h1, h2};
    assert_int_equal(tk_http_host_allowed(&cfg, "gw.example.com"), 0);
    cfg.allowed_hosts = hosts;
    cfg.nhosts = 2;

    assert_int_equal(tk_http_host_allowed(&cfg, "gw.example.com"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "gw.example.com:8080"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "gw.example.com:443"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "GW.Example.COM"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "gw.example.com:99999"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "evil.gw.example.com"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "gw.example.com.evil.com"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "gw.example.co"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "evil.com"), 0);
    /* an entry with a port matches that exact value only */
    assert_int_equal(tk_http_host_allowed(&cfg, "other.example.com:8443"), 1);
    assert_int_equal(tk_http_host_allowed(&cfg, "other.example.com:9999"), 0);
    assert_int_equal(tk_http_host_allowed(&cfg, "other.example.com"), 0);
    /* loopback still allowed */
    assert_int_equal(tk_http_host_allowed(&cfg, "localhost:8080"), 1);
}

static void test_origin_loopback(void **state)
{
    (void)state;
    tk_config_t cfg;
    base_config(&cfg);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost:6274"), 1);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost"), 1);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://127.0.0.1"), 1);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://127.0.0.1:3000"), 1);
    assert_int_equal(tk_http_origin_allowed(&cfg, "https://localhost:8443"), 1);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://[::1]:6274"), 1);
    assert_int_equal(tk_http_origin_allowed(&cfg, "HTTP://LOCALHOST:6274"), 1);
}

static void test_origin_rejected(void **state)
{
    (void)state;
    tk_config_t cfg;
    base_config(&cfg);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://evil.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "https://evil.com:443"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "null"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, ""), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost.evil.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://127.0.0.1.evil.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost@evil.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://evil.com@localhost"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost:6274@evil.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://127.0.0.1/path"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost:6274/"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "file://x"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "file:///etc/passwd"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "ws://localhost"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "localhost"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "//localhost"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost:"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost:0"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost:99999"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://[::1"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://10.0.0.1"), 0);
}

static void test_origin_configured(void **state)
{
    (void)state;
    tk_config_t cfg;
    base_config(&cfg);
    static char o1[] = "https://app.example.com", o2[] = "http://dev.example.com:3000";
    char *origins[] = {o1, o2};
    assert_int_equal(tk_http_origin_allowed(&cfg, "https://app.example.com"), 0);
    cfg.allowed_origins = origins;
    cfg.norigins = 2;

    assert_int_equal(tk_http_origin_allowed(&cfg, "https://app.example.com"), 1);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://dev.example.com:3000"), 1);
    /* anything but the exact origin is refused */
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://app.example.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "https://app.example.com:443"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "https://app.example.com/"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "https://app.example.com.evil.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "https://evil.app.example.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://dev.example.com"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://dev.example.com:3001"), 0);
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://evil.com"), 0);
    /* loopback origins are still accepted */
    assert_int_equal(tk_http_origin_allowed(&cfg, "http://localhost:6274"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_loopback),
        cmocka_unit_test(test_host_loopback),
        cmocka_unit_test(test_host_rejected),
        cmocka_unit_test(test_host_listen_address),
        cmocka_unit_test(test_host_allowed_hosts),
        cmocka_unit_test(test_origin_loopback),
        cmocka_unit_test(test_origin_rejected),
        cmocka_unit_test(test_origin_configured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
