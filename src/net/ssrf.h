/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SSRF guard: every outbound URL of the gateway (remote MCP servers, later
 * OAuth/OIDC endpoints and webhooks) goes through tk_ssrf_resolve before a
 * connection is made. The URL is parsed with libcurl's URL API (so the guard
 * sees the host exactly as libcurl will), the host is resolved once with
 * getaddrinfo, every resolved address is checked against the default denied
 * ranges (loopback, private, link-local/metadata, CGNAT, multicast, reserved,
 * documentation, ULA, IPv4 embedded in IPv6 ...) minus the ranges the operator
 * explicitly allowed, and the caller pins the libcurl handle to the checked
 * address with tk_ssrf_pin_curl (CURLOPT_RESOLVE), which defeats DNS
 * rebinding between check and connect. What is checked is always the resolved
 * address, never the spelling: "2130706433", "0177.0.0.1", "0x7f.1" and
 * "[::ffff:127.0.0.1]" are all 127.0.0.1.
 *
 * Ownership: a policy is built once from config (create, allow_cidr,
 * set_schemes), then only read; the check functions take it const and are
 * safe to call from several threads at once. A NULL policy means the
 * defaults. A tk_ssrf_target_t is a caller-owned value that holds one heap
 * object (the CURLOPT_RESOLVE list); release it with tk_ssrf_target_clear
 * after the last transfer that used it.
 *
 * Errors: TK_EINVAL means the URL or address is refused (or malformed);
 * TK_ENOENT the host does not resolve; TK_EIO a temporary resolver failure;
 * TK_ELIMIT a size or count limit; TK_ENOMEM allocation failure inside
 * libcurl or the resolver. Error texts name the URL's host and the reason
 * but never userinfo, paths, query strings or headers.
 *
 * tk_ssrf_resolve and tk_ssrf_check_redirect block in getaddrinfo.
 */
#ifndef TK_NET_SSRF_H
#define TK_NET_SSRF_H

#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "core/core.h"

/* The most redirects a caller may follow for one request; each hop must be
 * checked with tk_ssrf_check_redirect (libcurl's own following stays off). */
#define TK_SSRF_MAX_REDIRECTS 3

#define TK_SSRF_MAX_CIDRS 256 /* explicitly allowed ranges per policy */
#define TK_SSRF_MAX_SCHEMES 8 /* allowed schemes per policy */
#define TK_SSRF_SCHEME_MAX 15 /* longest scheme name */
#define TK_SSRF_HOST_MAX 253  /* longest host name (DNS limit) */
#define TK_SSRF_URL_MAX 8192  /* longest URL accepted */
#define TK_SSRF_ERR_MAX 512   /* an error buffer this size never truncates */
#define TK_SSRF_PROTOCOLS_MAX (TK_SSRF_MAX_SCHEMES * (TK_SSRF_SCHEME_MAX + 1))
/* "host:port:[addr]" */
#define TK_SSRF_RESOLVE_MAX (TK_SSRF_HOST_MAX + 1 + 5 + 1 + INET6_ADDRSTRLEN + 2)

typedef struct tk_ssrf_policy tk_ssrf_policy_t;

/* A URL that passed the guard, and what is needed to connect to exactly the
 * address that was checked. */
typedef struct {
    char scheme[TK_SSRF_SCHEME_MAX + 1]; /* lower case, e.g. "https" */
    char host[TK_SSRF_HOST_MAX + 1];     /* as libcurl uses it; IPv6 without brackets */
    uint16_t port;                       /* explicit, or the scheme's default (80/443) */
    char addr[INET6_ADDRSTRLEN];         /* first resolved address (all were allowed) */
    struct sockaddr_storage sa;          /* the same address, with port set */
    /* "host:port:addr" for CURLOPT_RESOLVE (IPv6 addr in brackets). Empty when
     * the host is an IPv6 literal: libcurl cannot parse such an entry and
     * does not resolve literals anyway, so there is nothing to pin. */
    char resolve_entry[TK_SSRF_RESOLVE_MAX];
    char protocols[TK_SSRF_PROTOCOLS_MAX]; /* allowed schemes, "http,https" */
    struct curl_slist *resolve;            /* owned: {resolve_entry} or NULL */
} tk_ssrf_target_t;

/* Defaults: no range allowed beyond public addresses; schemes http, https. */
tk_ssrf_policy_t *tk_ssrf_policy_create(void);
void tk_ssrf_policy_destroy(tk_ssrf_policy_t *p);

/* Exempt a range from the default denial: "127.0.0.0/8", "fd00::/8", or a
 * single address ("10.0.0.5" = /32, "::1" = /128). Only strict dotted-quad
 * IPv4 and RFC 4291 IPv6 text; host bits beyond the prefix must be zero.
 * TK_EINVAL with a message in err (may be NULL) when malformed; TK_ELIMIT
 * past TK_SSRF_MAX_CIDRS. */
int tk_ssrf_policy_allow_cidr(tk_ssrf_policy_t *p, const char *cidr, char *err,
                              size_t errlen) TK_WUR;

/* Replace the allowed schemes with a comma-separated list ("https" or
 * "http, https"); case-insensitive; each must be a protocol this libcurl
 * supports. TK_EINVAL (message in err) or TK_ELIMIT; unchanged on error. */
int tk_ssrf_policy_set_schemes(tk_ssrf_policy_t *p, const char *csv, char *err,
                               size_t errlen) TK_WUR;

/* Check one address (AF_INET or AF_INET6; others are denied). Returns TK_OK
 * when allowed, else TK_EINVAL and a static reason such as "a link-local
 * address (169.254.0.0/16)" in *reason (reason may be NULL). IPv4-mapped
 * (::ffff:0:0/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are
 * judged by the IPv4 address they embed. */
int tk_ssrf_check_addr(const tk_ssrf_policy_t *p, const struct sockaddr *sa,
                       const char **reason) TK_WUR;

/* Parse url, refuse userinfo, empty hosts, IPv6 zone ids, port 0 and schemes
 * outside the policy, resolve the host once and refuse it if ANY address is
 * denied. On TK_OK *out is filled (release with tk_ssrf_target_clear); on
 * error *out is left zeroed (no allocation held) and err says why. A target
 * filled earlier is overwritten, not freed: clear it before reusing it. */
int tk_ssrf_resolve(const tk_ssrf_policy_t *p, const char *url, tk_ssrf_target_t *out, char *err,
                    size_t errlen) TK_WUR;

/* The same check for a redirect target. location may be relative when
 * base_url (the URL that answered with the redirect) is given; hop is the
 * 1-based number of this redirect: past TK_SSRF_MAX_REDIRECTS it is refused
 * with TK_ELIMIT. A redirect from https to any other scheme is refused. */
/* The same check in two steps, for callers with their own asynchronous
 * resolver: tk_ssrf_parse checks the URL (scheme, credentials, host, port)
 * and fills t->host/port without resolving; tk_ssrf_finish then checks the
 * addresses the resolver found for t->host (every one must be allowed) and
 * builds the pin. On failure t is cleared. */
int tk_ssrf_parse(const tk_ssrf_policy_t *p, const char *url, tk_ssrf_target_t *out, char *err,
                  size_t errlen) TK_WUR;
int tk_ssrf_finish(const tk_ssrf_policy_t *p, tk_ssrf_target_t *t, const struct addrinfo *res,
                   char *err, size_t errlen) TK_WUR;

int tk_ssrf_check_redirect(const tk_ssrf_policy_t *p, const char *base_url, const char *location,
                           unsigned hop, tk_ssrf_target_t *out, char *err, size_t errlen) TK_WUR;

/* Pin an easy handle to the checked address: CURLOPT_RESOLVE (the list t
 * owns, so t must outlive the transfer), CURLOPT_PROTOCOLS_STR and
 * CURLOPT_REDIR_PROTOCOLS_STR to the allowed schemes, and
 * CURLOPT_FOLLOWLOCATION off (follow redirects by hand through
 * tk_ssrf_check_redirect), and CURLOPT_PROXY to "" so that *_proxy
 * environment variables cannot route around the pin (a caller that sets a
 * proxy afterwards moves the check to that proxy). The caller sets
 * CURLOPT_URL to the URL it checked. TK_EINVAL if libcurl refuses an
 * option. Note that libcurl keeps resolve entries in the DNS cache of the
 * multi handle: a later pin of the same host:port replaces it. */
int tk_ssrf_pin_curl(CURL *easy, const tk_ssrf_target_t *t) TK_WUR;

/* Free what *t owns and zero it; safe on a zeroed or already cleared target. */
void tk_ssrf_target_clear(tk_ssrf_target_t *t);

#endif
