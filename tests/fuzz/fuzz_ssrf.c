/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the outbound SSRF guard's policy and address checks
 * (src/net/ssrf.c): tk_ssrf_policy_allow_cidr on the input's first line,
 * tk_ssrf_policy_set_schemes on the second, and tk_ssrf_check_addr on
 * addresses built from the remaining bytes (4 for IPv4, 16 for IPv6). URL
 * parsing and resolution (tk_ssrf_resolve) are not fuzzed here: they call
 * getaddrinfo, which may wait on DNS.
 *
 * Checks: a failed policy call says why; an accepted CIDR allows its own
 * network address; denial comes with a reason and allowance without; under
 * any IPv4-only policy an IPv4 address is judged the same alone, IPv4-mapped
 * (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::) --
 * the spellings an attacker would use to reach a denied range; and the
 * default policy always denies a fixed set of internal addresses (loopback,
 * private, metadata 169.254.169.254, ULA, link-local).
 */
#include <string.h>

#include "fuzz.h"
#include "net/ssrf.h"

static int check4(const tk_ssrf_policy_t *p, const unsigned char a[4])
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    memcpy(&sin.sin_addr, a, 4);
    const char *why = NULL;
    int rc = tk_ssrf_check_addr(p, (const struct sockaddr *)&sin, &why);
    FUZZ_CHECK(rc == TK_OK || rc == TK_EINVAL);
    FUZZ_CHECK((rc == TK_OK) == (why == NULL));
    return rc;
}

static int check6(const tk_ssrf_policy_t *p, const unsigned char a[16])
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    memcpy(sin6.sin6_addr.s6_addr, a, 16);
    const char *why = NULL;
    int rc = tk_ssrf_check_addr(p, (const struct sockaddr *)&sin6, &why);
    FUZZ_CHECK(rc == TK_OK || rc == TK_EINVAL);
    FUZZ_CHECK((rc == TK_OK) == (why == NULL));
    return rc;
}

static int check_text(const tk_ssrf_policy_t *p, const char *addr)
{
    unsigned char a[16];
    if (strchr(addr, ':') != NULL) {
        FUZZ_CHECK(inet_pton(AF_INET6, addr, a) == 1);
        return check6(p, a);
    }
    FUZZ_CHECK(inet_pton(AF_INET, addr, a) == 1);
    return check4(p, a);
}

/* The same IPv4 address in every IPv6 spelling the guard unwraps. */
static void check_embeddings(const tk_ssrf_policy_t *p, const unsigned char v4[4])
{
    unsigned char m[16] = {[10] = 0xff, [11] = 0xff};
    unsigned char n[16] = {0x00, 0x64, 0xff, 0x9b};
    unsigned char t[16] = {0x20, 0x02};
    memcpy(m + 12, v4, 4);
    memcpy(n + 12, v4, 4);
    memcpy(t + 2, v4, 4);
    int r = check4(p, v4);
    FUZZ_CHECK(check6(p, m) == r);
    FUZZ_CHECK(check6(p, n) == r);
    FUZZ_CHECK(check6(p, t) == r);
}

static void check_defaults(void)
{
    static const char *const denied[] = {
        "127.0.0.1",   "10.1.2.3",       "169.254.169.254", "192.168.1.1",
        "172.16.0.1",  "100.64.0.1",     "0.0.0.0",         "::1",
        "::",          "fe80::1",        "fc00::1",         "::ffff:127.0.0.1",
        "::127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::"};
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
        FUZZ_CHECK(check_text(NULL, denied[i]) == TK_EINVAL);
    FUZZ_CHECK(check_text(NULL, "93.184.216.34") == TK_OK);
    FUZZ_CHECK(check_text(NULL, "2606:2800:220:1::1") == TK_OK);
}

/* Copy the next line (up to '\n' or the end) into buf; advance *p. */
static void next_line(const uint8_t **p, const uint8_t *end, char *buf, size_t cap)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((nl ? nl : end) - *p);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, *p, n);
    buf[n] = '\0';
    *p = nl ? nl + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int defaults_checked;
    if (!defaults_checked) {
        check_defaults();
        defaults_checked = 1;
    }
    const uint8_t *p = data, *end = data + size;
    char cidr[128], schemes[256], err[TK_SSRF_ERR_MAX];
    next_line(&p, end, cidr, sizeof(cidr));
    next_line(&p, end, schemes, sizeof(schemes));

    tk_ssrf_policy_t *pol = tk_ssrf_policy_create();
    FUZZ_CHECK(pol != NULL);
    int v6_allow = 0;
    if (cidr[0] != '\0') {
        int rc = tk_ssrf_policy_allow_cidr(pol, cidr, err, sizeof(err));
        FUZZ_CHECK(rc == TK_OK || rc == TK_EINVAL);
        if (rc == TK_OK) {
            char net[128];
            tk_snprintf(net, sizeof(net), "%.*s", (int)strcspn(cidr, "/"), cidr);
            FUZZ_CHECK(check_text(pol, net) == TK_OK);
            v6_allow = strchr(cidr, ':') != NULL;
        } else {
            FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
        }
    }
    if (schemes[0] != '\0') {
        int rc = tk_ssrf_policy_set_schemes(pol, schemes, err, sizeof(err));
        FUZZ_CHECK(rc == TK_OK || rc == TK_EINVAL || rc == TK_ELIMIT);
        if (rc != TK_OK)
            FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
    }
    for (; end - p >= 16; p += 16) {
        (void)check6(pol, p);
        (void)check6(NULL, p);
        check_embeddings(NULL, p);
        if (!v6_allow)
            check_embeddings(pol, p);
    }
    if (end - p >= 4) {
        check_embeddings(NULL, p);
        if (!v6_allow)
            check_embeddings(pol, p);
    }
    tk_ssrf_policy_destroy(pol);
    return 0;
}
