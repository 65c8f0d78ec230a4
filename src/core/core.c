/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Core helpers: checked allocation, bounded formatting, integer parsing,
 * constant-time compare, randomness, the monotonic clock and the JSON logger.
 */
#include "core/core.h"
#include "core/mask.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

int tk_log_level = TK_LOG_INFO;

const char *tk_strerror(int err)
{
    switch (err) {
    case TK_OK: return "ok";
    case TK_ENOMEM: return "out of memory";
    case TK_EINVAL: return "invalid input";
    case TK_EIO: return "i/o error";
    case TK_ENOENT: return "not found";
    case TK_ELIMIT: return "limit exceeded";
    case TK_ESTATE: return "wrong state";
    case TK_ETIMEOUT: return "timed out";
    case TK_EBUSY: return "busy";
    default: return "unknown error";
    }
}

static void oom(void)
{
    static const char msg[] = "{\"level\":\"error\",\"msg\":\"out of memory\"}\n";
    if (fwrite(msg, 1, sizeof(msg) - 1, stderr) == 0)
        abort();
    abort();
}

void *tk_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *tk_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void *tk_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom();
    return q;
}

char *tk_strdup(const char *s)
{
    return tk_strndup(s, strlen(s));
}

char *tk_strndup(const char *s, size_t n)
{
    n = strnlen(s, n);
    char *p = tk_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int tk_snprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 && len > 0)
        buf[0] = '\0';
    return n;
}

char *tk_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = tk_malloc((size_t)n + 1);
    va_start(ap, fmt);
    if (vsnprintf(p, (size_t)n + 1, fmt, ap) < 0)
        p[0] = '\0';
    va_end(ap);
    return p;
}

int tk_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return TK_EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return TK_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return TK_EINVAL;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return TK_EINVAL;
    *out = v;
    return TK_OK;
}

int tk_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return 0;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int tk_random_bytes(void *buf, size_t n)
{
    if (n > INT32_MAX || RAND_bytes(buf, (int)n) != 1)
        return TK_EIO;
    return TK_OK;
}

void tk_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

uint64_t tk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t tk_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tk_log_set_level(tk_log_level_t level)
{
    tk_log_level = (int)level;
}

int tk_log_parse_level(const char *s, tk_log_level_t *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (tk_log_level_t)i;
            return TK_OK;
        }
    }
    return TK_EINVAL;
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    size_t n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, surrogate or out of range */
    return n;
}

/* Append s to the line as JSON string content, escaping control characters
 * and replacing invalid UTF-8 with U+FFFD. Stops early so that at least
 * `reserve` bytes stay free for the caller's closing characters. */
static size_t json_escape_into(char *dst, size_t cap, size_t pos, const char *s, size_t reserve)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq(p);
        size_t need = n == 0 ? 6 : (*p < 0x20 ? 6 : (*p == '"' || *p == '\\' ? 2 : n));
        if (pos + need + reserve >= cap)
            break;
        if (n == 0) {
            memcpy(dst + pos, "\\ufffd", 6);
            pos += 6;
            p++;
        } else if (*p < 0x20) {
            pos += (size_t)snprintf(dst + pos, cap - pos, "\\u%04x", *p);
            p++;
        } else if (*p == '"' || *p == '\\') {
            dst[pos++] = '\\';
            dst[pos++] = (char)*p++;
        } else {
            memcpy(dst + pos, p, n);
            pos += n;
            p += n;
        }
    }
    return pos;
}

void tk_log_vwrite(tk_log_level_t level, const char *module, const char *fmt, va_list ap)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[2048];
    char line[4608];
    struct timespec ts;
    struct tm tm;

    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    tk_mask_buf(msg, sizeof(msg));
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t pos = (size_t)snprintf(line, sizeof(line),
                                  "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                                  "\"module\":\"",
                                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                  tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, names[level & 3]);
    pos = json_escape_into(line, sizeof(line), pos, module, 16);
    memcpy(line + pos, "\",\"msg\":\"", 9);
    pos += 9;
    pos = json_escape_into(line, sizeof(line), pos, msg, 4);
    memcpy(line + pos, "\"}\n", 4); /* 4 bytes were kept free */
    pos += 3;
    if (fwrite(line, 1, pos, stderr) != pos)
        return;
    fflush(stderr);
}

void tk_log_write(tk_log_level_t level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tk_log_vwrite(level, module, fmt, ap);
    va_end(ap);
}
