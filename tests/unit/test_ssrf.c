/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the SSRF guard (src/net/ssrf.c): every default denied range
 * at its boundaries through tk_ssrf_check_addr (IPv4 embedded in IPv4-mapped,
 * NAT64 and 6to4 addresses included); tk_ssrf_resolve refusing loopback,
 * metadata, private, CGNAT, ULA, link-local and multicast URLs by default,
 * whatever the spelling (decimal, octal, hex, IPv4-mapped) with the right
 * reason; explicitly allowed ranges, the CURLOPT_RESOLVE entry and default
 * ports; schemes, userinfo (never echoed), zone ids, port 0, malformed URLs;
 * the CIDR parser; redirects (relative, hop limit, https downgrade); and
 * tk_ssrf_pin_curl connecting to a listener on 127.0.0.1 through the pinned
 * address, ignoring *_proxy variables and refusing other protocols. Only
 * loopback is ever connected to and no name needs DNS beyond /etc/hosts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/ssrf.h"

/* ---- helpers ---- */

static const struct sockaddr *mkaddr(struct sockaddr_storage *ss, const char *text)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
        memcpy(ss, &sin6, sizeof(sin6));
    } else {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &sin.sin_addr), 1);
        memcpy(ss, &sin, sizeof(sin));
    }
    return (const struct sockaddr *)ss;
}

static void assert_cleared(const tk_ssrf_target_t *t)
{
    assert_null(t->resolve);
    assert_string_equal(t->host, "");
    assert_string_equal(t->resolve_entry, "");
    assert_int_equal(t->port, 0);
}

/* url must be refused with TK_EINVAL and an error containing want. */
static void expect_denied(const tk_ssrf_policy_t *p, const char *url, const char *want)
{
    tk_ssrf_target_t t;
    char err[TK_SSRF_ERR_MAX];
    int rc = tk_ssrf_resolve(p, url, &t, err, sizeof(err));
    if (rc != TK_EINVAL || strstr(err, want) == NULL)
        fail_msg("%s: rc %d, err \"%s\", wanted \"%s\"", url, rc, err, want);
    assert_cleared(&t);
}

static void expect_allowed(const tk_ssrf_policy_t *p, const char *url, tk_ssrf_target_t *t)
{
    char err[TK_SSRF_ERR_MAX];
    int rc = tk_ssrf_resolve(p, url, t, err, sizeof(err));
    if (rc != TK_OK)
        fail_msg("%s: rc %d, err \"%s\"", url, rc, err);
    assert_string_equal(err, "");
}

static tk_ssrf_policy_t *policy_with(const char *cidr1, const char *cidr2)
{
    tk_ssrf_policy_t *p = tk_ssrf_policy_create();
    char err[TK_SSRF_ERR_MAX];
    if (cidr1 != NULL)
        assert_int_equal(tk_ssrf_policy_allow_cidr(p, cidr1, err, sizeof(err)), TK_OK);
    if (cidr2 != NULL)
        assert_int_equal(tk_ssrf_policy_allow_cidr(p, cidr2, err, sizeof(err)), TK_OK);
    return p;
}

/* ---- tk_ssrf_check_addr ---- */

struct addr_case {
    const char *addr;
    const char *reason; /* NULL: allowed */
};

static const struct addr_case addr_cases[] = {
    {"0.0.0.0", "a 'this network' address (0.0.0.0/8)"},
    {"0.255.255.255", "(0.0.0.0/8)"},
    {"1.0.0.0", NULL},
    {"9.255.255.255", NULL},
    {"10.0.0.0", "a private address (10.0.0.0/8)"},
    {"10.255.255.255", "a private address (10.0.0.0/8)"},
    {"11.0.0.0", NULL},
    {"100.63.255.255", NULL},
    {"100.64.0.0", "a carrier-grade NAT address (100.64.0.0/10)"},
    {"100.127.255.255", "(100.64.0.0/10)"},
    {"100.128.0.0", NULL},
    {"126.255.255.255", NULL},
    {"127.0.0.1", "a loopback address (127.0.0.0/8)"},
    {"127.255.255.254", "a loopback address (127.0.0.0/8)"},
    {"128.0.0.0", NULL},
    {"169.253.255.255", NULL},
    {"169.254.169.254", "a link-local address (169.254.0.0/16)"},
    {"169.255.0.0", NULL},
    {"172.15.255.255", NULL},
    {"172.16.0.0", "a private address (172.16.0.0/12)"},
    {"172.31.255.255", "a private address (172.16.0.0/12)"},
    {"172.32.0.0", NULL},
    {"192.0.0.8", "an IETF protocol assignment address (192.0.0.0/24)"},
    {"192.0.1.1", NULL},
    {"192.0.2.1", "(192.0.2.0/24)"},
    {"192.167.255.255", NULL},
    {"192.168.0.1", "a private address (192.168.0.0/16)"},
    {"192.169.0.0", NULL},
    {"198.17.255.255", NULL},
    {"198.18.0.0", "a benchmarking address (198.18.0.0/15)"},
    {"198.19.255.255", "(198.18.0.0/15)"},
    {"198.20.0.0", NULL},
    {"198.51.100.7", "(198.51.100.0/24)"},
    {"203.0.113.9", "(203.0.113.0/24)"},
    {"8.8.8.8", NULL},
    {"93.184.216.34", NULL},
    {"223.255.255.255", NULL},
    {"224.0.0.1", "a multicast address (224.0.0.0/4)"},
    {"239.255.255.255", "a multicast address (224.0.0.0/4)"},
    {"240.0.0.1", "a reserved address (240.0.0.0/4)"},
    {"255.255.255.254", "a reserved address (240.0.0.0/4)"},
    {"255.255.255.255", "a broadcast address (255.255.255.255/32)"},
    {"::", "an unspecified address (::/128)"},
    {"::1", "a loopback address (::1/128)"},
    {"::2", "a deprecated IPv4-compatible address (::/96)"},
    {"::127.0.0.1", "a deprecated IPv4-compatible address (::/96)"},
    {"::ffff:127.0.0.1",
     "an IPv4-mapped address (::ffff:0:0/96) embedding a loopback address (127.0.0.0/8)"},
    {"::ffff:10.0.0.1", "embedding a private address (10.0.0.0/8)"},
    {"::ffff:8.8.8.8", NULL},
    {"64:ff9b::127.0.0.1",
     "a NAT64 address (64:ff9b::/96) embedding a loopback address (127.0.0.0/8)"},
    {"64:ff9b::169.254.169.254", "embedding a link-local address (169.254.0.0/16)"},
    {"64:ff9b::93.184.216.34", NULL},
    {"64:ff9b:1::1", "a local-use NAT64 address (64:ff9b:1::/48)"},
    {"100::1", "a discard-only address (100::/64)"},
    {"100:0:0:1::1", NULL},
    {"2001:db8::1", "a documentation address (2001:db8::/32)"},
    {"2002:7f00:1::", "a 6to4 address (2002::/16) embedding a loopback address (127.0.0.0/8)"},
    {"2002:a9fe:a9fe::1", "embedding a link-local address (169.254.0.0/16)"},
    {"2002:808:808::1", NULL},
    {"fbff:ffff::1", NULL},
    {"fc00::1", "a unique local address (fc00::/7)"},
    {"fdff:ffff::1", "a unique local address (fc00::/7)"},
    {"fe80::1", "a link-local address (fe80::/10)"},
    {"febf::1", "a link-local address (fe80::/10)"},
    {"fec0::1", "a deprecated site-local address (fec0::/10)"},
    {"ff02::1", "a multicast address (ff00::/8)"},
    {"2606:2800:220:1:248:1893:25c8:1946", NULL},
};

static void test_check_addr_ranges(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
        struct sockaddr_storage ss;
        const char *reason = "unset";
        int rc = tk_ssrf_check_addr(NULL, mkaddr(&ss, addr_cases[i].addr), &reason);
        const char *want = addr_cases[i].reason;
        if (want == NULL && (rc != TK_OK || reason != NULL))
            fail_msg("%s: rc %d reason \"%s\", wanted allowed", addr_cases[i].addr, rc, reason);
        if (want != NULL && (rc != TK_EINVAL || reason == NULL || strstr(reason, want) == NULL))
            fail_msg("%s: rc %d reason \"%s\", wanted \"%s\"", addr_cases[i].addr, rc,
                     reason ? reason : "(null)", want);
    }
}

static void test_check_addr_edges(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    const char *reason = NULL;
    /* reason may be NULL */
    assert_int_equal(tk_ssrf_check_addr(NULL, mkaddr(&ss, "10.0.0.1"), NULL), TK_EINVAL);
    assert_int_equal(tk_ssrf_check_addr(NULL, mkaddr(&ss, "8.8.8.8"), NULL), TK_OK);
    assert_int_equal(tk_ssrf_check_addr(NULL, NULL, &reason), TK_EINVAL);
    assert_non_null(reason);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    assert_int_equal(tk_ssrf_check_addr(NULL, (const struct sockaddr *)&sun, &reason), TK_EINVAL);
    assert_string_equal(reason, "an address of an unsupported family");

    /* an explicit allowance exempts only what it covers */
    tk_ssrf_policy_t *p = policy_with("10.1.2.0/24", "fd00::/8");
    assert_int_equal(tk_ssrf_check_addr(p, mkaddr(&ss, "10.1.2.200"), &reason), TK_OK);
    assert_null(reason);
    assert_int_equal(tk_ssrf_check_addr(p, mkaddr(&ss, "10.1.3.1"), &reason), TK_EINVAL);
    assert_string_equal(reason, "a private address (10.0.0.0/8)");
    assert_int_equal(tk_ssrf_check_addr(p, mkaddr(&ss, "::ffff:10.1.2.3"), &reason), TK_OK);
    assert_int_equal(tk_ssrf_check_addr(p, mkaddr(&ss, "fd12::1"), &reason), TK_OK);
    assert_int_equal(tk_ssrf_check_addr(p, mkaddr(&ss, "fc00::1"), &reason), TK_EINVAL);
    assert_int_equal(tk_ssrf_check_addr(p, mkaddr(&ss, "127.0.0.1"), &reason), TK_EINVAL);
    tk_ssrf_policy_destroy(p);

    /* an IPv6 allowance covering the mapped range allows it directly */
    p = policy_with("::ffff:0:0/96", NULL);
    assert_int_equal(tk_ssrf_check_addr(p, mkaddr(&ss, "::ffff:127.0.0.1"), &reason), TK_OK);
    assert_int_equal(tk_ssrf_check_addr(p, mkaddr(&ss, "127.0.0.1"), &reason), TK_EINVAL);
    tk_ssrf_policy_destroy(p);
}

/* ---- tk_ssrf_resolve: default denials ---- */

struct url_case {
    const char *url;
    const char *want;
};

static const struct url_case denied_urls[] = {
    {"http://127.0.0.1/", "host 127.0.0.1 resolves to a loopback address (127.0.0.0/8)"},
    {"http://localhost/", "loopback address"},
    {"http://169.254.169.254/latest/meta-data/", "a link-local address (169.254.0.0/16)"},
    {"http://[::1]/", "host [::1] resolves to a loopback address (::1/128)"},
    {"http://[::ffff:127.0.0.1]/", "IPv4-mapped address (::ffff:0:0/96) embedding a loopback "
                                   "address (127.0.0.0/8)"},
    {"http://[::ffff:169.254.169.254]/", "IPv4-mapped address (::ffff:0:0/96) embedding a "
                                         "link-local address (169.254.0.0/16)"},
    {"http://2130706433/", "a loopback address (127.0.0.0/8)"},
    {"http://0177.0.0.1/", "a loopback address (127.0.0.0/8)"},
    {"http://0x7f.0.0.1/", "a loopback address (127.0.0.0/8)"},
    {"http://0x7f.1/", "a loopback address (127.0.0.0/8)"},
    {"http://017700000001/", "a loopback address (127.0.0.0/8)"},
    {"http://127.1/", "a loopback address (127.0.0.0/8)"},
    {"http://%31%32%37.0.0.1/", "a loopback address (127.0.0.0/8)"}, /* curl decodes hosts */
    {"http://[::ffff:7f00:1]/", "embedding a loopback address (127.0.0.0/8)"},
    {"http://10.0.0.1/", "a private address (10.0.0.0/8)"},
    {"http://192.168.1.1/", "a private address (192.168.0.0/16)"},
    {"http://172.16.0.1/", "a private address (172.16.0.0/12)"},
    {"http://100.64.0.1/", "a carrier-grade NAT address (100.64.0.0/10)"},
    {"http://0.0.0.0/", "(0.0.0.0/8)"},
    {"http://0/", "(0.0.0.0/8)"},
    {"http://[fe80::1]/", "a link-local address (fe80::/10)"},
    {"http://[fc00::1]/", "a unique local address (fc00::/7)"},
    {"http://224.0.0.1/", "a multicast address (224.0.0.0/4)"},
    {"https://[64:ff9b::7f00:1]/", "a NAT64 address (64:ff9b::/96) embedding a loopback"},
    {"https://[2002:a9fe:a9fe::]/", "a 6to4 address (2002::/16) embedding a link-local"},
    {"https://[::]:8443/", "an unspecified address (::/128)"},
};

static void test_resolve_denied_by_default(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = tk_ssrf_policy_create();
    for (size_t i = 0; i < sizeof(denied_urls) / sizeof(denied_urls[0]); i++) {
        expect_denied(p, denied_urls[i].url, denied_urls[i].want);
        expect_denied(NULL, denied_urls[i].url, denied_urls[i].want); /* NULL = defaults */
        expect_denied(p, denied_urls[i].url, "which is not allowed");
    }
    tk_ssrf_policy_destroy(p);
}

static void test_resolve_messages(void **state)
{
    (void)state;
    tk_ssrf_target_t t;
    char err[TK_SSRF_ERR_MAX];
    assert_int_equal(
        tk_ssrf_resolve(NULL, "http://169.254.169.254/latest/meta-data/?x=1", &t, err, sizeof(err)),
        TK_EINVAL);
    assert_string_equal(err, "host 169.254.169.254 resolves to a link-local address "
                             "(169.254.0.0/16), which is not allowed");
    /* a name: the resolved address is named too */
    assert_int_equal(tk_ssrf_resolve(NULL, "http://localhost:8080/", &t, err, sizeof(err)),
                     TK_EINVAL);
    assert_non_null(strstr(err, "host localhost resolves to "));
    assert_true(strstr(err, "127.0.0.1, a loopback") != NULL ||
                strstr(err, "::1, a loopback") != NULL);
    /* the spelling is not echoed when curl normalised it: the address is */
    assert_int_equal(tk_ssrf_resolve(NULL, "http://0x7f.1/", &t, err, sizeof(err)), TK_EINVAL);
    assert_string_equal(err, "host 127.0.0.1 resolves to a loopback address (127.0.0.0/8), "
                             "which is not allowed");
    /* paths, queries and fragments never appear */
    assert_int_equal(tk_ssrf_resolve(NULL, "http://10.0.0.1/secret-path?token=hunter2#frag", &t,
                                     err, sizeof(err)),
                     TK_EINVAL);
    assert_null(strstr(err, "hunter2"));
    assert_null(strstr(err, "secret-path"));
    assert_null(strstr(err, "frag"));
    /* a small error buffer truncates safely; a NULL one is fine */
    char small[8];
    assert_int_equal(tk_ssrf_resolve(NULL, "http://10.0.0.1/", &t, small, sizeof(small)),
                     TK_EINVAL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(tk_ssrf_resolve(NULL, "http://10.0.0.1/", &t, NULL, 0), TK_EINVAL);
}

/* ---- tk_ssrf_resolve: allowed ---- */

static void test_allow_loopback_v4(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = policy_with("127.0.0.0/8", NULL);
    tk_ssrf_target_t t;
    expect_allowed(p, "http://127.0.0.1:8080/mcp", &t);
    assert_string_equal(t.scheme, "http");
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 8080);
    assert_string_equal(t.addr, "127.0.0.1");
    assert_string_equal(t.resolve_entry, "127.0.0.1:8080:127.0.0.1");
    assert_non_null(t.resolve);
    assert_string_equal(t.resolve->data, "127.0.0.1:8080:127.0.0.1");
    assert_null(t.resolve->next);
    assert_string_equal(t.protocols, "http,https");
    assert_int_equal(t.sa.ss_family, AF_INET);
    struct sockaddr_in sin;
    memcpy(&sin, &t.sa, sizeof(sin));
    assert_int_equal(ntohs(sin.sin_port), 8080);
    assert_int_equal(ntohl(sin.sin_addr.s_addr), 0x7f000001);
    tk_ssrf_target_clear(&t);
    assert_cleared(&t);

    /* other spellings of loopback are now fine too */
    expect_allowed(p, "http://2130706433:8080/", &t);
    assert_string_equal(t.resolve_entry, "127.0.0.1:8080:127.0.0.1");
    tk_ssrf_target_clear(&t);
    expect_allowed(p, "http://127.9.8.7/", &t);
    assert_string_equal(t.resolve_entry, "127.9.8.7:80:127.9.8.7");
    tk_ssrf_target_clear(&t);
    expect_allowed(p, "http://[::ffff:127.0.0.1]:81/", &t);
    assert_string_equal(t.host, "::ffff:127.0.0.1");
    assert_string_equal(t.resolve_entry, "");
    assert_null(t.resolve);
    tk_ssrf_target_clear(&t);

    /* ...but nothing else is */
    expect_denied(p, "http://10.0.0.1/", "(10.0.0.0/8)");
    expect_denied(p, "http://[::1]/", "(::1/128)");
    expect_denied(p, "http://169.254.169.254/", "(169.254.0.0/16)");
    tk_ssrf_policy_destroy(p);
}

static void test_allow_loopback_v6(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = policy_with("::1/128", NULL);
    tk_ssrf_target_t t;
    expect_allowed(p, "http://[::1]:9000/mcp", &t);
    assert_string_equal(t.host, "::1");
    assert_string_equal(t.addr, "::1");
    assert_int_equal(t.port, 9000);
    assert_int_equal(t.sa.ss_family, AF_INET6);
    /* curl cannot parse an IPv6-literal host in CURLOPT_RESOLVE; nothing to pin */
    assert_string_equal(t.resolve_entry, "");
    assert_null(t.resolve);
    tk_ssrf_target_clear(&t);
    expect_denied(p, "http://127.0.0.1/", "(127.0.0.0/8)");
    expect_denied(p, "http://[::ffff:127.0.0.1]/", "(127.0.0.0/8)");
    tk_ssrf_policy_destroy(p);
}

static void test_localhost_needs_every_address(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = policy_with("127.0.0.0/8", "::1/128");
    tk_ssrf_target_t t;
    expect_allowed(p, "http://localhost:8080/", &t);
    assert_string_equal(t.host, "localhost");
    assert_true(strcmp(t.addr, "127.0.0.1") == 0 || strcmp(t.addr, "::1") == 0);
    char want[TK_SSRF_RESOLVE_MAX];
    snprintf(want, sizeof(want), "localhost:8080:%s",
             strcmp(t.addr, "::1") == 0 ? "[::1]" : "127.0.0.1");
    assert_string_equal(t.resolve_entry, want);
    tk_ssrf_target_clear(&t);
    /* case is kept as curl sees it; the host is resolved case-insensitively */
    expect_allowed(p, "HTTP://LocalHost/", &t);
    assert_string_equal(t.scheme, "http");
    assert_int_equal(t.port, 80);
    tk_ssrf_target_clear(&t);
    tk_ssrf_policy_destroy(p);
}

static void test_public_literals(void **state)
{
    (void)state;
    tk_ssrf_target_t t;
    /* numeric hosts need no DNS and no connection is made */
    expect_allowed(NULL, "http://93.184.216.34/", &t);
    assert_int_equal(t.port, 80);
    assert_string_equal(t.resolve_entry, "93.184.216.34:80:93.184.216.34");
    tk_ssrf_target_clear(&t);
    expect_allowed(NULL, "https://93.184.216.34/mcp?x=1", &t);
    assert_string_equal(t.scheme, "https");
    assert_int_equal(t.port, 443);
    assert_string_equal(t.resolve_entry, "93.184.216.34:443:93.184.216.34");
    tk_ssrf_target_clear(&t);
    expect_allowed(NULL, "HTTPS://93.184.216.34:8443", &t);
    assert_int_equal(t.port, 8443);
    tk_ssrf_target_clear(&t);
    expect_allowed(NULL, "https://[2606:2800:220:1:248:1893:25c8:1946]/", &t);
    assert_string_equal(t.addr, "2606:2800:220:1:248:1893:25c8:1946");
    assert_int_equal(t.port, 443);
    tk_ssrf_target_clear(&t);
    expect_allowed(NULL, "http://[64:ff9b::5db8:d822]/", &t); /* NAT64 of a public address */
    tk_ssrf_target_clear(&t);
}

/* ---- URL shape ---- */

static void test_schemes(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = policy_with("127.0.0.0/8", NULL);
    expect_denied(p, "ftp://127.0.0.1/", "URL scheme \"ftp\" is not allowed (allowed: http,https)");
    expect_denied(p, "file:///etc/passwd", "URL scheme \"file\" is not allowed");
    expect_denied(p, "gopher://127.0.0.1:6379/_INFO", "URL scheme \"gopher\" is not allowed");
    expect_denied(p, "dict://127.0.0.1:11211/stat", "URL scheme \"dict\" is not allowed");
    expect_denied(p, "javascript://127.0.0.1/", "URL scheme \"javascript\" is not allowed");

    char err[TK_SSRF_ERR_MAX];
    assert_int_equal(tk_ssrf_policy_set_schemes(p, "https", err, sizeof(err)), TK_OK);
    expect_denied(p, "http://127.0.0.1/", "URL scheme \"http\" is not allowed (allowed: https)");
    tk_ssrf_target_t t;
    expect_allowed(p, "https://127.0.0.1/", &t);
    assert_string_equal(t.protocols, "https");
    tk_ssrf_target_clear(&t);

    assert_int_equal(tk_ssrf_policy_set_schemes(p, " HTTP , https ", err, sizeof(err)), TK_OK);
    expect_allowed(p, "http://127.0.0.1/", &t);
    assert_string_equal(t.protocols, "http,https");
    tk_ssrf_target_clear(&t);

    static const char *const bad[] = {
        "",      ",",          "http,",          "ht tp",
        "1http", "http;https", "nosuchprotocol", "averyveryverylongscheme"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (tk_ssrf_policy_set_schemes(p, bad[i], err, sizeof(err)) != TK_EINVAL || !err[0])
            fail_msg("scheme list \"%s\" accepted", bad[i]);
    }
    assert_int_equal(tk_ssrf_policy_set_schemes(p, "http,http,http,http,http,http,http,http,http",
                                                err, sizeof(err)),
                     TK_ELIMIT);
    assert_int_equal(tk_ssrf_policy_set_schemes(NULL, "http", err, sizeof(err)), TK_EINVAL);
    /* failures left the policy as it was */
    expect_allowed(p, "http://127.0.0.1/", &t);
    assert_string_equal(t.protocols, "http,https");
    tk_ssrf_target_clear(&t);
    tk_ssrf_policy_destroy(p);
}

static void test_userinfo_refused(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = policy_with("127.0.0.0/8", NULL);
    static const char *const urls[] = {
        "http://alice:pw@127.0.0.1/", "http://alice@127.0.0.1/",
        "http://:pw@127.0.0.1/",      "http://@127.0.0.1/",
        "http://u;opt=pw@127.0.0.1/", "https://alice:pw@93.184.216.34/",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        tk_ssrf_target_t t;
        char err[TK_SSRF_ERR_MAX];
        assert_int_equal(tk_ssrf_resolve(p, urls[i], &t, err, sizeof(err)), TK_EINVAL);
        assert_non_null(strstr(err, "contains credentials (userinfo), which are not allowed"));
        assert_null(strstr(err, "pw"));
        assert_null(strstr(err, "alice"));
        assert_cleared(&t);
    }
    tk_ssrf_policy_destroy(p);
}

static void test_malformed_urls(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = policy_with("127.0.0.0/8", "fe80::/10");
    expect_denied(p, "", "invalid URL");
    expect_denied(p, "not a url", "invalid URL");
    expect_denied(p, "//127.0.0.1/x", "invalid URL");
    expect_denied(p, "127.0.0.1:8080", "invalid URL");
    expect_denied(p, "http://", "invalid URL (No host part in the URL)");
    expect_denied(p, "http://:80/", "invalid URL (No host part in the URL)");
    expect_denied(p, "http://[]/", "invalid URL");
    expect_denied(p, "http://127.0.0.1:0/", "port 0, which is not allowed");
    expect_denied(p, "http://127.0.0.1:65536/", "invalid URL");
    expect_denied(p, "http://127.0.0.1:-1/", "invalid URL");
    expect_denied(p, "http://[fe80::1%25eth0]/", "has an IPv6 zone id, which is not allowed");
    expect_denied(p, "http://127.0.0.1\n.example/", "invalid URL");

    tk_ssrf_target_t t;
    char err[TK_SSRF_ERR_MAX];
    assert_int_equal(tk_ssrf_resolve(p, NULL, &t, err, sizeof(err)), TK_EINVAL);
    assert_cleared(&t);
    assert_int_equal(tk_ssrf_resolve(p, "http://127.0.0.1/", NULL, err, sizeof(err)), TK_EINVAL);

    size_t n = TK_SSRF_URL_MAX + 100;
    char *longurl = malloc(n + 1);
    assert_non_null(longurl);
    memcpy(longurl, "http://127.0.0.1/", 17);
    memset(longurl + 17, 'a', n - 17);
    longurl[n] = '\0';
    assert_int_equal(tk_ssrf_resolve(p, longurl, &t, err, sizeof(err)), TK_ELIMIT);
    free(longurl);
    tk_ssrf_policy_destroy(p);
}

/* ---- CIDR parser ---- */

static void test_cidr_parser(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = tk_ssrf_policy_create();
    char err[TK_SSRF_ERR_MAX];
    static const char *const good[] = {
        "127.0.0.0/8", "10.1.2.0/24", "::1/128",     "fd00::/8",           "0.0.0.0/0",     "::/0",
        "192.168.1.1", "::1",         "10.0.0.0/08", "169.254.169.254/32", "2001:db8::/32",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (tk_ssrf_policy_allow_cidr(p, good[i], err, sizeof(err)) != TK_OK)
            fail_msg("%s rejected: %s", good[i], err);
        assert_string_equal(err, "");
    }
    static const char *const bad[] = {
        "10.0.0.0/33",
        "1.2.3/8",
        "::1/129",
        "abc",
        "",
        "10.0.0.0/",
        "10.0.0.0/8x",
        "10.0.0.0/-1",
        "10.0.0.0/ 8",
        "/8",
        "0177.0.0.1/8",
        "0x7f.0.0.1",
        "2130706433",
        "fe80::1%eth0/64",
        "10.0.0.0/8/8",
        "1.2.3.4.5/32",
        "::1/1281",
        "256.0.0.0/8",
        "10.1.2.3/24",
        "fd00::1/8",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (tk_ssrf_policy_allow_cidr(p, bad[i], err, sizeof(err)) != TK_EINVAL || !err[0])
            fail_msg("%s accepted", bad[i]);
    }
    assert_int_equal(tk_ssrf_policy_allow_cidr(p, "10.0.0.0/33", err, sizeof(err)), TK_EINVAL);
    assert_string_equal(err, "CIDR \"10.0.0.0/33\": prefix length must be a number from 0 to 32");
    assert_int_equal(tk_ssrf_policy_allow_cidr(p, "10.1.2.3/24", err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "did you mean 10.1.2.0/24?"));
    assert_int_equal(tk_ssrf_policy_allow_cidr(p, "abc", NULL, 0), TK_EINVAL);
    assert_int_equal(tk_ssrf_policy_allow_cidr(p, NULL, err, sizeof(err)), TK_EINVAL);
    assert_int_equal(tk_ssrf_policy_allow_cidr(NULL, "10.0.0.0/8", err, sizeof(err)), TK_EINVAL);
    /* the cap on allowed ranges */
    int rc = TK_OK;
    for (int i = 0; i < TK_SSRF_MAX_CIDRS + 1 && rc == TK_OK; i++)
        rc = tk_ssrf_policy_allow_cidr(p, "10.0.0.0/8", err, sizeof(err));
    assert_int_equal(rc, TK_ELIMIT);
    tk_ssrf_policy_destroy(p);
}

/* ---- redirects ---- */

static void test_redirects(void **state)
{
    (void)state;
    tk_ssrf_policy_t *p = policy_with("127.0.0.0/8", NULL);
    const char *base = "http://127.0.0.1:8080/mcp";
    tk_ssrf_target_t t;
    char err[TK_SSRF_ERR_MAX];
    assert_int_equal(tk_ssrf_check_redirect(p, base, "/next?x=1", 1, &t, err, sizeof(err)), TK_OK);
    assert_string_equal(t.resolve_entry, "127.0.0.1:8080:127.0.0.1");
    tk_ssrf_target_clear(&t);
    assert_int_equal(tk_ssrf_check_redirect(p, base, "http://127.0.0.2/", TK_SSRF_MAX_REDIRECTS, &t,
                                            err, sizeof(err)),
                     TK_OK);
    assert_string_equal(t.host, "127.0.0.2");
    tk_ssrf_target_clear(&t);
    assert_int_equal(
        tk_ssrf_check_redirect(p, base, "/next", TK_SSRF_MAX_REDIRECTS + 1, &t, err, sizeof(err)),
        TK_ELIMIT);
    assert_cleared(&t);
    assert_int_equal(tk_ssrf_check_redirect(p, base, "http://169.254.169.254/latest/meta-data", 1,
                                            &t, err, sizeof(err)),
                     TK_EINVAL);
    assert_non_null(strstr(err, "a link-local address (169.254.0.0/16)"));
    assert_int_equal(tk_ssrf_check_redirect(p, base, "//10.0.0.1/x", 1, &t, err, sizeof(err)),
                     TK_EINVAL);
    assert_non_null(strstr(err, "(10.0.0.0/8)"));
    assert_int_equal(
        tk_ssrf_check_redirect(p, base, "gopher://127.0.0.1/", 1, &t, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "scheme \"gopher\""));
    assert_int_equal(
        tk_ssrf_check_redirect(p, base, "http://u:pw@127.0.0.1/", 1, &t, err, sizeof(err)),
        TK_EINVAL);
    assert_null(strstr(err, "pw"));
    /* https must not be downgraded */
    assert_int_equal(tk_ssrf_check_redirect(p, "https://127.0.0.1/a", "http://127.0.0.1/b", 1, &t,
                                            err, sizeof(err)),
                     TK_EINVAL);
    assert_string_equal(err, "redirect from https to http is not allowed");
    assert_int_equal(
        tk_ssrf_check_redirect(p, "https://127.0.0.1/a", "/b", 1, &t, err, sizeof(err)), TK_OK);
    assert_int_equal(t.port, 443);
    tk_ssrf_target_clear(&t);
    /* without a base the location must be absolute */
    assert_int_equal(tk_ssrf_check_redirect(p, NULL, "http://127.0.0.1/", 1, &t, err, sizeof(err)),
                     TK_OK);
    tk_ssrf_target_clear(&t);
    assert_int_equal(tk_ssrf_check_redirect(p, NULL, "/next", 1, &t, err, sizeof(err)), TK_EINVAL);
    assert_int_equal(tk_ssrf_check_redirect(p, base, NULL, 1, &t, err, sizeof(err)), TK_EINVAL);
    assert_int_equal(tk_ssrf_check_redirect(p, "::bad", "/x", 1, &t, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "redirect base URL"));
    tk_ssrf_policy_destroy(p);
}

/* ---- pinning a curl handle ---- */

/* A listening TCP socket on 127.0.0.1 (connections wait in the backlog). */
static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Connect only (no request) and return curl's result; *ip gets the peer. */
static CURLcode connect_only(CURL *e, const char *url, char *ip, size_t iplen)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(e);
    char *primary = NULL;
    ip[0] = '\0';
    if (cc == CURLE_OK && curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &primary) == CURLE_OK &&
        primary != NULL)
        snprintf(ip, iplen, "%s", primary);
    return cc;
}

static void test_pin_curl(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_loopback(&port);
    tk_ssrf_policy_t *p = policy_with("127.0.0.0/8", NULL);
    char url[64], ip[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/mcp", (unsigned)port);
    tk_ssrf_target_t t;
    expect_allowed(p, url, &t);

    /* our resolve entry is one libcurl parses (a bad one fails the transfer),
     * and a *_proxy variable does not reroute the pinned transfer */
    setenv("http_proxy", "http://192.0.2.1:3128", 1);
    CURL *e = curl_easy_init();
    assert_non_null(e);
    assert_int_equal(tk_ssrf_pin_curl(e, &t), TK_OK);
    assert_int_equal(connect_only(e, url, ip, sizeof(ip)), CURLE_OK);
    assert_string_equal(ip, "127.0.0.1");
    curl_easy_cleanup(e);
    unsetenv("http_proxy");

    /* the pin replaces DNS: a name nothing resolves goes to the pinned address */
    tk_ssrf_target_t fake = t;
    fake.resolve = NULL;
    char entry[64];
    snprintf(entry, sizeof(entry), "pinned.invalid:%u:127.0.0.1", (unsigned)port);
    fake.resolve = curl_slist_append(NULL, entry);
    assert_non_null(fake.resolve);
    e = curl_easy_init();
    assert_int_equal(tk_ssrf_pin_curl(e, &fake), TK_OK);
    snprintf(url, sizeof(url), "http://pinned.invalid:%u/", (unsigned)port);
    assert_int_equal(connect_only(e, url, ip, sizeof(ip)), CURLE_OK);
    assert_string_equal(ip, "127.0.0.1");
    curl_easy_cleanup(e);
    tk_ssrf_target_clear(&fake);

    /* other protocols are refused by libcurl itself */
    e = curl_easy_init();
    assert_int_equal(tk_ssrf_pin_curl(e, &t), TK_OK);
    snprintf(url, sizeof(url), "ftp://127.0.0.1:%u/", (unsigned)port);
    assert_int_equal(connect_only(e, url, ip, sizeof(ip)), CURLE_UNSUPPORTED_PROTOCOL);
    curl_easy_cleanup(e);

    /* bad arguments */
    tk_ssrf_target_t empty;
    memset(&empty, 0, sizeof(empty));
    e = curl_easy_init();
    assert_int_equal(tk_ssrf_pin_curl(e, &empty), TK_EINVAL);
    assert_int_equal(tk_ssrf_pin_curl(e, NULL), TK_EINVAL);
    assert_int_equal(tk_ssrf_pin_curl(NULL, &t), TK_EINVAL);
    curl_easy_cleanup(e);

    tk_ssrf_target_clear(&t);
    tk_ssrf_policy_destroy(p);
    close(lfd);
}

static void test_lifecycle(void **state)
{
    (void)state;
    tk_ssrf_policy_destroy(NULL);
    tk_ssrf_target_clear(NULL);
    tk_ssrf_target_t t;
    memset(&t, 0, sizeof(t));
    tk_ssrf_target_clear(&t);
    tk_ssrf_target_clear(&t);
    /* a fresh policy behaves as the defaults */
    tk_ssrf_policy_t *p = tk_ssrf_policy_create();
    expect_denied(p, "http://127.0.0.1/", "(127.0.0.0/8)");
    expect_allowed(p, "https://93.184.216.34/", &t);
    assert_string_equal(t.protocols, "http,https");
    tk_ssrf_target_clear(&t);
    tk_ssrf_policy_destroy(p);
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_addr_ranges),
        cmocka_unit_test(test_check_addr_edges),
        cmocka_unit_test(test_resolve_denied_by_default),
        cmocka_unit_test(test_resolve_messages),
        cmocka_unit_test(test_allow_loopback_v4),
        cmocka_unit_test(test_allow_loopback_v6),
        cmocka_unit_test(test_localhost_needs_every_address),
        cmocka_unit_test(test_public_literals),
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_userinfo_refused),
        cmocka_unit_test(test_malformed_urls),
        cmocka_unit_test(test_cidr_parser),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_pin_curl),
        cmocka_unit_test(test_lifecycle),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
