/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SSRF guard implementation: the default denied address ranges (as tables,
 * most specific first, each with a fixed reason text), the policy's allowed
 * CIDR ranges and schemes, URL parsing through libcurl's URL API, a single
 * getaddrinfo per URL whose every answer must pass, and the CURLOPT_RESOLVE
 * pin that makes libcurl connect to the address that was checked. Error
 * texts are built only from the host, the resolved address and the static
 * reasons, so userinfo, paths and query strings cannot leak into logs.
 */
#include "net/ssrf.h"

#include <ctype.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tk_ssrf_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned prefix;
    unsigned char net[16];
};

struct tk_ssrf_policy {
    struct tk_ssrf_cidr allow[TK_SSRF_MAX_CIDRS];
    size_t nallow;
    char schemes[TK_SSRF_MAX_SCHEMES][TK_SSRF_SCHEME_MAX + 1];
    size_t nschemes;
    char protocols[TK_SSRF_PROTOCOLS_MAX]; /* schemes joined with ',' */
};

static const struct tk_ssrf_policy default_policy = {
    .nallow = 0,
    .schemes = {"http", "https"},
    .nschemes = 2,
    .protocols = "http,https",
};

/* ---- default denied ranges ---- */

/* How an IPv4 address reached the check: directly or embedded in IPv6. */
enum { VIA_NONE, VIA_MAPPED, VIA_NAT64, VIA_6TO4, VIA_COUNT };

struct v4_range {
    unsigned char net[4];
    unsigned prefix;
    const char *reason[VIA_COUNT];
};

#define V4(a, b, c, d, len, what, cidr)                                                            \
    {                                                                                              \
        {a, b, c, d}, len,                                                                         \
        {                                                                                          \
            what " address (" cidr ")",                                                            \
                "an IPv4-mapped address (::ffff:0:0/96) embedding " what " address (" cidr ")",    \
                "a NAT64 address (64:ff9b::/96) embedding " what " address (" cidr ")",            \
                "a 6to4 address (2002::/16) embedding " what " address (" cidr ")"                 \
        }                                                                                          \
    }

static const struct v4_range v4_denied[] = {
    V4(0, 0, 0, 0, 8, "a 'this network'", "0.0.0.0/8"),
    V4(10, 0, 0, 0, 8, "a private", "10.0.0.0/8"),
    V4(100, 64, 0, 0, 10, "a carrier-grade NAT", "100.64.0.0/10"),
    V4(127, 0, 0, 0, 8, "a loopback", "127.0.0.0/8"),
    V4(169, 254, 0, 0, 16, "a link-local", "169.254.0.0/16"),
    V4(172, 16, 0, 0, 12, "a private", "172.16.0.0/12"),
    V4(192, 0, 0, 0, 24, "an IETF protocol assignment", "192.0.0.0/24"),
    V4(192, 0, 2, 0, 24, "a documentation (TEST-NET-1)", "192.0.2.0/24"),
    V4(192, 168, 0, 0, 16, "a private", "192.168.0.0/16"),
    V4(198, 18, 0, 0, 15, "a benchmarking", "198.18.0.0/15"),
    V4(198, 51, 100, 0, 24, "a documentation (TEST-NET-2)", "198.51.100.0/24"),
    V4(203, 0, 113, 0, 24, "a documentation (TEST-NET-3)", "203.0.113.0/24"),
    V4(224, 0, 0, 0, 4, "a multicast", "224.0.0.0/4"),
    V4(255, 255, 255, 255, 32, "a broadcast", "255.255.255.255/32"),
    V4(240, 0, 0, 0, 4, "a reserved", "240.0.0.0/4"),
};

struct v6_range {
    unsigned char net[16];
    unsigned prefix;
    int via;            /* VIA_NONE: denied; else judge the embedded IPv4 */
    unsigned v4_offset; /* where the embedded IPv4 address starts */
    const char *reason; /* for VIA_NONE */
};

static const struct v6_range v6_denied[] = {
    {{0}, 128, VIA_NONE, 0, "an unspecified address (::/128)"},
    {{[15] = 1}, 128, VIA_NONE, 0, "a loopback address (::1/128)"},
    {{[10] = 0xff, [11] = 0xff}, 96, VIA_MAPPED, 12, NULL},
    {{0}, 96, VIA_NONE, 0, "a deprecated IPv4-compatible address (::/96)"},
    {{0x00, 0x64, 0xff, 0x9b}, 96, VIA_NAT64, 12, NULL},
    {{0, 0x64, 0xff, 0x9b, 0, 1}, 48, VIA_NONE, 0, "a local-use NAT64 address (64:ff9b:1::/48)"},
    {{0x01, 0x00}, 64, VIA_NONE, 0, "a discard-only address (100::/64)"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, VIA_NONE, 0, "a documentation address (2001:db8::/32)"},
    {{0x20, 0x02}, 16, VIA_6TO4, 2, NULL},
    {{0xfc}, 7, VIA_NONE, 0, "a unique local address (fc00::/7)"},
    {{0xfe, 0x80}, 10, VIA_NONE, 0, "a link-local address (fe80::/10)"},
    {{0xfe, 0xc0}, 10, VIA_NONE, 0, "a deprecated site-local address (fec0::/10)"},
    {{0xff}, 8, VIA_NONE, 0, "a multicast address (ff00::/8)"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- small helpers ---- */

static void seterr(char *err, size_t errlen, const char *fmt, ...) TK_PRINTF(3, 4);

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
}

/* Copy src for an error message: at most dstlen - 1 bytes, control and
 * non-ASCII bytes replaced by '?'. */
static void printable(char *dst, size_t dstlen, const char *src)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    dst[i] = '\0';
}

static int prefix_match(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
    unsigned full = prefix / 8, rem = prefix % 8;
    if (memcmp(a, net, full) != 0)
        return 0;
    if (rem == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xffu << (8 - rem));
    return (a[full] & mask) == (net[full] & mask);
}

static int allowed_by_policy(const tk_ssrf_policy_t *p, int family, const unsigned char *a)
{
    for (size_t i = 0; i < p->nallow; i++) {
        if (p->allow[i].family == family && prefix_match(a, p->allow[i].net, p->allow[i].prefix))
            return 1;
    }
    return 0;
}

/* ---- address checks ---- */

static int check_v4(const tk_ssrf_policy_t *p, const unsigned char *a, int via, const char **reason)
{
    if (allowed_by_policy(p, AF_INET, a))
        return TK_OK;
    for (size_t i = 0; i < COUNT(v4_denied); i++) {
        if (prefix_match(a, v4_denied[i].net, v4_denied[i].prefix)) {
            *reason = v4_denied[i].reason[via];
            return TK_EINVAL;
        }
    }
    return TK_OK;
}

static int check_v6(const tk_ssrf_policy_t *p, const unsigned char *a, const char **reason)
{
    if (allowed_by_policy(p, AF_INET6, a))
        return TK_OK;
    for (size_t i = 0; i < COUNT(v6_denied); i++) {
        const struct v6_range *r = &v6_denied[i];
        if (!prefix_match(a, r->net, r->prefix))
            continue;
        if (r->via != VIA_NONE)
            return check_v4(p, a + r->v4_offset, r->via, reason);
        *reason = r->reason;
        return TK_EINVAL;
    }
    return TK_OK;
}

int tk_ssrf_check_addr(const tk_ssrf_policy_t *p, const struct sockaddr *sa, const char **reason)
{
    const char *dummy = NULL;
    if (reason == NULL)
        reason = &dummy;
    *reason = NULL;
    if (p == NULL)
        p = &default_policy;
    if (sa == NULL) {
        *reason = "no address";
        return TK_EINVAL;
    }
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        return check_v4(p, (const unsigned char *)&sin.sin_addr, VIA_NONE, reason);
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        return check_v6(p, sin6.sin6_addr.s6_addr, reason);
    }
    *reason = "an address of an unsupported family";
    return TK_EINVAL;
}

/* ---- policy ---- */

tk_ssrf_policy_t *tk_ssrf_policy_create(void)
{
    tk_ssrf_policy_t *p = tk_malloc(sizeof(*p));
    *p = default_policy;
    return p;
}

void tk_ssrf_policy_destroy(tk_ssrf_policy_t *p)
{
    free(p);
}

/* Split "addr[/prefix]" and parse both halves strictly. */
static int parse_cidr(const char *s, struct tk_ssrf_cidr *out, char *err, size_t errlen)
{
    char shown[64], buf[INET6_ADDRSTRLEN + 8];
    printable(shown, sizeof(shown), s);
    size_t len = strnlen(s, sizeof(buf));
    if (len == 0 || len >= sizeof(buf)) {
        seterr(err, errlen, "CIDR \"%s\" is empty or too long", shown);
        return TK_EINVAL;
    }
    memcpy(buf, s, len + 1);
    char *slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    memset(out, 0, sizeof(*out));
    out->family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
    unsigned max = out->family == AF_INET6 ? 128 : 32;
    if (inet_pton(out->family, buf, out->net) != 1) {
        seterr(err, errlen, "CIDR \"%s\" does not start with a full IPv4 (a.b.c.d) or IPv6 address",
               shown);
        return TK_EINVAL;
    }
    uint64_t prefix = max;
    if (slash != NULL && tk_parse_uint(slash + 1, 0, max, &prefix) != TK_OK) {
        seterr(err, errlen, "CIDR \"%s\": prefix length must be a number from 0 to %u", shown, max);
        return TK_EINVAL;
    }
    out->prefix = (unsigned)prefix;
    return TK_OK;
}

/* Host bits beyond the prefix must be zero: "10.1.2.3/24" is a typo. */
static int check_host_bits(const struct tk_ssrf_cidr *c, const char *cidr, char *err, size_t errlen)
{
    struct tk_ssrf_cidr masked = *c;
    size_t n = c->family == AF_INET6 ? 16 : 4;
    for (size_t i = 0; i < n; i++) {
        unsigned bit0 = (unsigned)i * 8;
        if (bit0 >= c->prefix)
            masked.net[i] = 0;
        else if (c->prefix - bit0 < 8)
            masked.net[i] &= (unsigned char)(0xffu << (8 - (c->prefix - bit0)));
    }
    if (memcmp(masked.net, c->net, n) == 0)
        return TK_OK;
    char shown[64], net[INET6_ADDRSTRLEN];
    printable(shown, sizeof(shown), cidr);
    if (inet_ntop(c->family, masked.net, net, sizeof(net)) == NULL)
        net[0] = '\0';
    seterr(err, errlen, "CIDR \"%s\" has bits set past the /%u prefix (did you mean %s/%u?)", shown,
           c->prefix, net, c->prefix);
    return TK_EINVAL;
}

int tk_ssrf_policy_allow_cidr(tk_ssrf_policy_t *p, const char *cidr, char *err, size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (p == NULL || cidr == NULL) {
        seterr(err, errlen, "no CIDR given");
        return TK_EINVAL;
    }
    struct tk_ssrf_cidr c;
    int rc = parse_cidr(cidr, &c, err, errlen);
    if (rc == TK_OK)
        rc = check_host_bits(&c, cidr, err, errlen);
    if (rc != TK_OK)
        return rc;
    if (p->nallow >= TK_SSRF_MAX_CIDRS) {
        seterr(err, errlen, "too many allowed CIDR ranges (at most %d)", TK_SSRF_MAX_CIDRS);
        return TK_ELIMIT;
    }
    p->allow[p->nallow++] = c;
    return TK_OK;
}

static int curl_supports(const char *scheme)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    for (const char *const *q = v->protocols; q != NULL && *q != NULL; q++) {
        if (strcasecmp(*q, scheme) == 0)
            return 1;
    }
    return 0;
}

/* Validate one scheme token of n bytes and store it lower-cased into dst. */
static int take_scheme(const char *tok, size_t n, char *dst, char *err, size_t errlen)
{
    char shown[TK_SSRF_SCHEME_MAX + 2];
    int ok = n > 0 && n <= TK_SSRF_SCHEME_MAX && isalpha((unsigned char)tok[0]);
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)tok[i];
        ok = isalnum(c) || c == '+' || c == '-' || c == '.';
        dst[i] = (char)tolower(c);
    }
    if (!ok) {
        seterr(err, errlen, "invalid scheme in scheme list (letters, digits, '+-.', at most %d)",
               TK_SSRF_SCHEME_MAX);
        return TK_EINVAL;
    }
    dst[n] = '\0';
    if (!curl_supports(dst)) {
        printable(shown, sizeof(shown), dst);
        seterr(err, errlen, "scheme \"%s\" is not supported by this libcurl", shown);
        return TK_EINVAL;
    }
    return TK_OK;
}

static void join_schemes(tk_ssrf_policy_t *p)
{
    size_t off = 0;
    p->protocols[0] = '\0';
    for (size_t i = 0; i < p->nschemes; i++) {
        int n = tk_snprintf(p->protocols + off, sizeof(p->protocols) - off, "%s%s", i ? "," : "",
                            p->schemes[i]);
        off += (size_t)n;
    }
}

int tk_ssrf_policy_set_schemes(tk_ssrf_policy_t *p, const char *csv, char *err, size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (p == NULL || csv == NULL) {
        seterr(err, errlen, "no scheme list given");
        return TK_EINVAL;
    }
    char schemes[TK_SSRF_MAX_SCHEMES][TK_SSRF_SCHEME_MAX + 1];
    size_t count = 0;
    for (const char *s = csv;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strcspn(s, ", \t");
        const char *next = s + n;
        while (*next == ' ' || *next == '\t')
            next++;
        if (*next != ',' && *next != '\0') {
            seterr(err, errlen, "scheme list must be comma-separated");
            return TK_EINVAL;
        }
        if (count >= TK_SSRF_MAX_SCHEMES) {
            seterr(err, errlen, "too many schemes (at most %d)", TK_SSRF_MAX_SCHEMES);
            return TK_ELIMIT;
        }
        int rc = take_scheme(s, n, schemes[count], err, errlen);
        if (rc != TK_OK)
            return rc;
        count++;
        if (*next == '\0')
            break;
        s = next + 1;
    }
    memcpy(p->schemes, schemes, sizeof(p->schemes));
    p->nschemes = count;
    join_schemes(p);
    return TK_OK;
}

static int scheme_allowed(const tk_ssrf_policy_t *p, const char *scheme)
{
    for (size_t i = 0; i < p->nschemes; i++) {
        if (strcmp(p->schemes[i], scheme) == 0)
            return 1;
    }
    return 0;
}

/* ---- URL parsing ---- */

/* The host as it appears in messages: IPv6 literals in brackets. */
static void host_for_msg(const char *host, char *dst, size_t dstlen)
{
    char shown[TK_SSRF_HOST_MAX + 1];
    printable(shown, sizeof(shown), host);
    if (strchr(shown, ':') != NULL)
        tk_snprintf(dst, dstlen, "[%s]", shown);
    else
        tk_snprintf(dst, dstlen, "%s", shown);
}

static int url_error(CURLUcode uc, const char *what, char *err, size_t errlen)
{
    if (uc == CURLUE_OUT_OF_MEMORY) {
        seterr(err, errlen, "out of memory parsing %s", what);
        return TK_ENOMEM;
    }
    seterr(err, errlen, "invalid %s (%s)", what, curl_url_strerror(uc));
    return TK_EINVAL;
}

static int take_scheme_part(const tk_ssrf_policy_t *p, CURLU *u, tk_ssrf_target_t *out, char *err,
                            size_t errlen)
{
    char *scheme = NULL;
    CURLUcode uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc != CURLUE_OK)
        return url_error(uc, "URL", err, errlen);
    int rc = TK_OK;
    if (!scheme_allowed(p, scheme)) {
        char shown[TK_SSRF_SCHEME_MAX + 2];
        printable(shown, sizeof(shown), scheme);
        seterr(err, errlen, "URL scheme \"%s\" is not allowed (allowed: %s)", shown, p->protocols);
        rc = TK_EINVAL;
    } else {
        tk_snprintf(out->scheme, sizeof(out->scheme), "%s", scheme);
    }
    curl_free(scheme);
    return rc;
}

static int take_host_part(CURLU *u, tk_ssrf_target_t *out, char *err, size_t errlen)
{
    char *host = NULL;
    CURLUcode uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (uc == CURLUE_NO_HOST || (uc == CURLUE_OK && host[0] == '\0')) {
        curl_free(host);
        seterr(err, errlen, "URL has no host");
        return TK_EINVAL;
    }
    if (uc != CURLUE_OK)
        return url_error(uc, "URL", err, errlen);
    const char *h = host;
    size_t n = strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    int rc = TK_OK;
    if (n > TK_SSRF_HOST_MAX) {
        seterr(err, errlen, "URL host is longer than %d characters", TK_SSRF_HOST_MAX);
        rc = TK_EINVAL;
    } else {
        memcpy(out->host, h, n);
        out->host[n] = '\0';
    }
    curl_free(host);
    return rc;
}

/* Userinfo ("user:pass@", also ";options") and zone ids are refused. */
static int refuse_extras(CURLU *u, const char *host, char *err, size_t errlen)
{
    static const CURLUPart userinfo[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS};
    char hm[TK_SSRF_HOST_MAX + 3];
    host_for_msg(host, hm, sizeof(hm));
    for (size_t i = 0; i < COUNT(userinfo); i++) {
        char *v = NULL;
        CURLUcode uc = curl_url_get(u, userinfo[i], &v, 0);
        curl_free(v);
        if (uc == CURLUE_OK) {
            seterr(err, errlen,
                   "URL for host %s contains credentials (userinfo), which are not allowed", hm);
            return TK_EINVAL;
        }
    }
    char *zone = NULL;
    CURLUcode uc = curl_url_get(u, CURLUPART_ZONEID, &zone, 0);
    curl_free(zone);
    if (uc == CURLUE_OK) {
        seterr(err, errlen, "URL host %s has an IPv6 zone id, which is not allowed", hm);
        return TK_EINVAL;
    }
    return TK_OK;
}

static int take_port_part(CURLU *u, tk_ssrf_target_t *out, char *err, size_t errlen)
{
    char hm[TK_SSRF_HOST_MAX + 3];
    host_for_msg(out->host, hm, sizeof(hm));
    char *port = NULL;
    CURLUcode uc = curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    if (uc == CURLUE_NO_PORT) {
        seterr(err, errlen, "URL for host %s has no port and scheme %s has no default", hm,
               out->scheme);
        return TK_EINVAL;
    }
    if (uc != CURLUE_OK)
        return url_error(uc, "URL", err, errlen);
    uint64_t v = 0;
    int rc = tk_parse_uint(port, 1, 65535, &v);
    curl_free(port);
    if (rc != TK_OK) {
        seterr(err, errlen, "URL for host %s has port 0, which is not allowed", hm);
        return TK_EINVAL;
    }
    out->port = (uint16_t)v;
    return TK_OK;
}

static int parse_url(const tk_ssrf_policy_t *p, const char *url, tk_ssrf_target_t *out, char *err,
                     size_t errlen)
{
    CURLU *u = curl_url();
    if (u == NULL) {
        seterr(err, errlen, "out of memory parsing URL");
        return TK_ENOMEM;
    }
    int rc;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        rc = url_error(uc, "URL", err, errlen);
        goto out;
    }
    rc = take_scheme_part(p, u, out, err, errlen);
    if (rc == TK_OK)
        rc = take_host_part(u, out, err, errlen);
    if (rc == TK_OK)
        rc = refuse_extras(u, out->host, err, errlen);
    if (rc == TK_OK)
        rc = take_port_part(u, out, err, errlen);
out:
    curl_url_cleanup(u);
    return rc;
}

/* ---- resolution ---- */

static void addr_text(const struct sockaddr *sa, char *dst, size_t dstlen)
{
    const void *a = NULL;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    if (sa->sa_family == AF_INET) {
        memcpy(&sin, sa, sizeof(sin));
        a = &sin.sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(&sin6, sa, sizeof(sin6));
        a = &sin6.sin6_addr;
    }
    if (a == NULL || inet_ntop(sa->sa_family, a, dst, (socklen_t)dstlen) == NULL)
        tk_snprintf(dst, dstlen, "(address family %d)", (int)sa->sa_family);
}

static int resolve_failed(int gai, const char *hm, char *err, size_t errlen)
{
    seterr(err, errlen, "host %s could not be resolved (%s)", hm, gai_strerror(gai));
    if (gai == EAI_MEMORY)
        return TK_ENOMEM;
    if (gai == EAI_AGAIN || gai == EAI_SYSTEM)
        return TK_EIO;
    return TK_ENOENT;
}

static void keep_first(const struct addrinfo *ai, tk_ssrf_target_t *out)
{
    size_t n = ai->ai_addrlen < sizeof(out->sa) ? ai->ai_addrlen : sizeof(out->sa);
    memcpy(&out->sa, ai->ai_addr, n);
    if (out->sa.ss_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, &out->sa, sizeof(sin));
        sin.sin_port = htons(out->port);
        memcpy(&out->sa, &sin, sizeof(sin));
    } else {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, &out->sa, sizeof(sin6));
        sin6.sin6_port = htons(out->port);
        memcpy(&out->sa, &sin6, sizeof(sin6));
    }
    addr_text(ai->ai_addr, out->addr, sizeof(out->addr));
}

/* Resolve out->host once; every address must pass; keep the first. */
/* Every address in res must be allowed; the first is kept for the pin. */
static int check_addresses(const tk_ssrf_policy_t *p, tk_ssrf_target_t *out,
                           const struct addrinfo *res, char *err, size_t errlen)
{
    char hm[TK_SSRF_HOST_MAX + 3];
    host_for_msg(out->host, hm, sizeof(hm));
    int rc = res == NULL ? resolve_failed(EAI_NONAME, hm, err, errlen) : TK_OK;
    for (const struct addrinfo *ai = res; ai != NULL && rc == TK_OK; ai = ai->ai_next) {
        const char *reason = NULL;
        if (tk_ssrf_check_addr(p, ai->ai_addr, &reason) == TK_OK) {
            if (ai == res)
                keep_first(ai, out);
            continue;
        }
        char a[INET6_ADDRSTRLEN + 32];
        addr_text(ai->ai_addr, a, sizeof(a));
        if (strcasecmp(a, out->host) == 0)
            seterr(err, errlen, "host %s resolves to %s, which is not allowed", hm, reason);
        else
            seterr(err, errlen, "host %s resolves to %s, %s, which is not allowed", hm, a, reason);
        rc = TK_EINVAL;
    }
    return rc;
}

static int resolve_host(const tk_ssrf_policy_t *p, tk_ssrf_target_t *out, char *err, size_t errlen)
{
    char hm[TK_SSRF_HOST_MAX + 3];
    host_for_msg(out->host, hm, sizeof(hm));
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(out->host, NULL, &hints, &res);
    if (gai != 0)
        return resolve_failed(gai, hm, err, errlen);
    int rc = check_addresses(p, out, res, err, errlen);
    freeaddrinfo(res);
    return rc;
}

static int build_pin(const tk_ssrf_policy_t *p, tk_ssrf_target_t *out, char *err, size_t errlen)
{
    tk_snprintf(out->protocols, sizeof(out->protocols), "%s", p->protocols);
    if (strchr(out->host, ':') != NULL)
        return TK_OK; /* IPv6 literal: nothing to resolve, nothing to pin */
    int v6 = out->sa.ss_family == AF_INET6;
    tk_snprintf(out->resolve_entry, sizeof(out->resolve_entry), "%s:%u:%s%s%s", out->host,
                (unsigned)out->port, v6 ? "[" : "", out->addr, v6 ? "]" : "");
    out->resolve = curl_slist_append(NULL, out->resolve_entry);
    if (out->resolve == NULL) {
        seterr(err, errlen, "out of memory building the resolve list");
        return TK_ENOMEM;
    }
    return TK_OK;
}

int tk_ssrf_parse(const tk_ssrf_policy_t *p, const char *url, tk_ssrf_target_t *out, char *err,
                  size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (url == NULL || out == NULL) {
        seterr(err, errlen, "no URL given");
        return TK_EINVAL;
    }
    if (p == NULL)
        p = &default_policy;
    if (strnlen(url, TK_SSRF_URL_MAX + 1) > TK_SSRF_URL_MAX) {
        seterr(err, errlen, "URL is longer than %d bytes", TK_SSRF_URL_MAX);
        return TK_ELIMIT;
    }
    int rc = parse_url(p, url, out, err, errlen);
    if (rc != TK_OK)
        tk_ssrf_target_clear(out);
    return rc;
}

int tk_ssrf_resolve(const tk_ssrf_policy_t *p, const char *url, tk_ssrf_target_t *out, char *err,
                    size_t errlen)
{
    int rc = tk_ssrf_parse(p, url, out, err, errlen);
    if (rc != TK_OK)
        return rc;
    if (p == NULL)
        p = &default_policy;
    rc = resolve_host(p, out, err, errlen);
    if (rc == TK_OK)
        rc = build_pin(p, out, err, errlen);
    if (rc != TK_OK)
        tk_ssrf_target_clear(out);
    return rc;
}

int tk_ssrf_finish(const tk_ssrf_policy_t *p, tk_ssrf_target_t *t, const struct addrinfo *res,
                   char *err, size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (t == NULL || t->host[0] == '\0') {
        seterr(err, errlen, "no parsed URL");
        return TK_EINVAL;
    }
    if (p == NULL)
        p = &default_policy;
    int rc = check_addresses(p, t, res, err, errlen);
    if (rc == TK_OK)
        rc = build_pin(p, t, err, errlen);
    if (rc != TK_OK)
        tk_ssrf_target_clear(t);
    return rc;
}

/* ---- redirects ---- */

/* Resolve location against base; *abs (curl_free) gets the absolute URL. */
static int absolute_location(const char *base, const char *location, char **abs, char *err,
                             size_t errlen)
{
    CURLU *u = curl_url();
    if (u == NULL) {
        seterr(err, errlen, "out of memory parsing redirect");
        return TK_ENOMEM;
    }
    int rc = TK_OK;
    char *scheme = NULL, *to = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        rc = url_error(uc, "redirect base URL", err, errlen);
        goto out;
    }
    uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_set(u, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_SCHEME, &to, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_URL, abs, 0);
    if (uc != CURLUE_OK) {
        rc = url_error(uc, "redirect location", err, errlen);
        goto out;
    }
    if (strcmp(scheme, "https") == 0 && strcmp(to, "https") != 0) {
        char shown[TK_SSRF_SCHEME_MAX + 2];
        printable(shown, sizeof(shown), to);
        seterr(err, errlen, "redirect from https to %s is not allowed", shown);
        curl_free(*abs);
        *abs = NULL;
        rc = TK_EINVAL;
    }
out:
    curl_free(scheme);
    curl_free(to);
    curl_url_cleanup(u);
    return rc;
}

int tk_ssrf_check_redirect(const tk_ssrf_policy_t *p, const char *base_url, const char *location,
                           unsigned hop, tk_ssrf_target_t *out, char *err, size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (location == NULL || out == NULL) {
        seterr(err, errlen, "no redirect location given");
        return TK_EINVAL;
    }
    if (hop > TK_SSRF_MAX_REDIRECTS) {
        seterr(err, errlen, "too many redirects (at most %d)", TK_SSRF_MAX_REDIRECTS);
        return TK_ELIMIT;
    }
    if (base_url == NULL)
        return tk_ssrf_resolve(p, location, out, err, errlen);
    if (strnlen(base_url, TK_SSRF_URL_MAX + 1) > TK_SSRF_URL_MAX ||
        strnlen(location, TK_SSRF_URL_MAX + 1) > TK_SSRF_URL_MAX) {
        seterr(err, errlen, "redirect URL is longer than %d bytes", TK_SSRF_URL_MAX);
        return TK_ELIMIT;
    }
    char *abs = NULL;
    int rc = absolute_location(base_url, location, &abs, err, errlen);
    if (rc == TK_OK)
        rc = tk_ssrf_resolve(p, abs, out, err, errlen);
    curl_free(abs);
    return rc;
}

/* ---- libcurl ---- */

int tk_ssrf_pin_curl(CURL *easy, const tk_ssrf_target_t *t)
{
    if (easy == NULL || t == NULL || t->protocols[0] == '\0')
        return TK_EINVAL;
    if (curl_easy_setopt(easy, CURLOPT_RESOLVE, t->resolve) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, t->protocols) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, t->protocols) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PROXY, "") != CURLE_OK)
        return TK_EINVAL;
    return TK_OK;
}

void tk_ssrf_target_clear(tk_ssrf_target_t *t)
{
    if (t == NULL)
        return;
    curl_slist_free_all(t->resolve);
    memset(t, 0, sizeof(*t));
}
