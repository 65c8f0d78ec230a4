/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the DNS-rebinding defences of the HTTP layer (src/http/server.c):
 * tk_http_is_loopback, tk_http_host_allowed and tk_http_origin_allowed on
 * attacker-controlled Host and Origin values. The whole input (NUL-terminated)
 * is checked against a zeroed tk_config_t (no listen host, no allowed hosts or
 * origins: only loopback passes), then, split at the first '\n', the first
 * part becomes the listen host, the one allowed host and the one allowed
 * origin of a second config and the second part is checked against it.
 * Invariants: nothing non-loopback passes the zeroed config; a loopback name
 * is allowed as a Host with and without a port, and as an http origin.
 */
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "http/server.h"

static int has_any(const char *s, const char *set)
{
    return strpbrk(s, set) != NULL;
}

static void check_zeroed(const char *s)
{
    tk_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    int lo = tk_http_is_loopback(s);
    int host = tk_http_host_allowed(&cfg, s);
    int origin = tk_http_origin_allowed(&cfg, s);
    FUZZ_CHECK(lo == 0 || lo == 1);
    FUZZ_CHECK(host == 0 || host == 1);
    FUZZ_CHECK(origin == 0 || origin == 1);
    /* with nothing configured, an accepted origin is an http(s) URL */
    if (origin)
        FUZZ_CHECK(strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0);
    /* a plain loopback name (no port, brackets or path) is accepted everywhere */
    if (lo && s[0] != '\0' && !has_any(s, ":[]/") && strlen(s) < 200) {
        char v[256];
        FUZZ_CHECK(host == 1);
        tk_snprintf(v, sizeof(v), "%s:8080", s);
        FUZZ_CHECK(tk_http_host_allowed(&cfg, v) == 1);
        tk_snprintf(v, sizeof(v), "http://%s:8080", s);
        FUZZ_CHECK(tk_http_origin_allowed(&cfg, v) == 1);
        tk_snprintf(v, sizeof(v), "http://%s/", s);
        FUZZ_CHECK(tk_http_origin_allowed(&cfg, v) == 0); /* origins have no path */
    }
    /* no Host header at all is refused */
    FUZZ_CHECK(tk_http_host_allowed(&cfg, NULL) == 0);
}

static void check_configured(char *first, const char *second)
{
    tk_config_t cfg;
    char *list[1] = {first};
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen_host = first;
    cfg.allowed_hosts = list;
    cfg.nhosts = 1;
    cfg.allowed_origins = list;
    cfg.norigins = 1;
    (void)tk_http_host_allowed(&cfg, second);
    (void)tk_http_host_allowed(&cfg, first);
    (void)tk_http_origin_allowed(&cfg, second);
    /* configured origins are matched exactly (case-insensitively) */
    FUZZ_CHECK(tk_http_origin_allowed(&cfg, first) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16 * 1024) /* the server caps all headers at 16 KiB */
        return 0;
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    check_zeroed(s);
    char *nl = strchr(s, '\n');
    if (nl != NULL) {
        *nl = '\0';
        check_configured(s, nl + 1);
    }
    free(s);
    return 0;
}
