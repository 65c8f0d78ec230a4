/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit files: naming and listing the daily segments, reading lines with a
 * cap, finding a segment's last record, and the MACed anchor file that lets
 * the chain start after the retention purge deleted older segments.
 */
#include "audit/audit_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ANCHOR_MAX 1024
#define ANCHOR_DOMAIN "tumiki-audit-anchor\n"

static int is_segment(const char *name)
{
    size_t plen = strlen(TK_AUDIT_SEG_PREFIX);
    if (strlen(name) != TK_AUDIT_SEG_NAME_LEN || strncmp(name, TK_AUDIT_SEG_PREFIX, plen) != 0 ||
        strcmp(name + plen + 8, TK_AUDIT_SEG_SUFFIX) != 0)
        return 0;
    return strspn(name + plen, "0123456789") >= 8;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tk_audit_segments(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return TK_EIO;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_segment(e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *names = tk_realloc(*names, cap * sizeof(**names));
        }
        (*names)[(*n)++] = tk_strdup(e->d_name);
    }
    closedir(d);
    if (*n > 1)
        qsort(*names, *n, sizeof(**names), cmp_names);
    return TK_OK;
}

void tk_audit_segments_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

unsigned tk_audit_segment_day(const char *name)
{
    unsigned day = 0;
    const char *p = name + strlen(TK_AUDIT_SEG_PREFIX);
    for (int i = 0; i < 8 && p[i] >= '0' && p[i] <= '9'; i++)
        day = day * 10 + (unsigned)(p[i] - '0');
    return day;
}

void tk_audit_segment_name(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    tk_snprintf(out, len, TK_AUDIT_SEG_PREFIX "%04d%02d%02d" TK_AUDIT_SEG_SUFFIX, tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday);
}

void tk_audit_format_ts(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tk_snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

ssize_t tk_audit_read_line(FILE *f, char **line, size_t *cap, int *terminated)
{
    size_t len = 0;
    int c;
    *terminated = 0;
    while ((c = getc(f)) != EOF) {
        if (c == '\n') {
            *terminated = 1;
            break;
        }
        if (len >= TK_AUDIT_LINE_MAX + 1)
            continue; /* cut: the decoder refuses it by length */
        if (len + 2 > *cap) {
            *cap = *cap ? *cap * 2 : 4096;
            *line = tk_realloc(*line, *cap);
        }
        (*line)[len++] = (char)c;
    }
    if (c == EOF && len == 0 && !*terminated)
        return -1;
    if (*line == NULL) {
        *cap = 16;
        *line = tk_malloc(*cap);
    }
    (*line)[len] = '\0';
    return (ssize_t)len;
}

/* Read the last up to 2 * LINE_MAX bytes and decode lines from the end. */
int tk_audit_last_record(const char *path, tk_audit_record_t *r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? TK_ENOENT : TK_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return TK_EIO;
    }
    off_t want = 2 * (off_t)TK_AUDIT_LINE_MAX + 2;
    off_t from = st.st_size > want ? st.st_size - want : 0;
    size_t n = (size_t)(st.st_size - from);
    char *buf = tk_malloc(n + 1);
    ssize_t got = pread(fd, buf, n, from);
    close(fd);
    if (got < 0) {
        free(buf);
        return TK_EIO;
    }
    size_t end = (size_t)got;
    int rc = TK_ENOENT;
    while (end > 0 && rc != TK_OK) {
        /* [start, end) is the last complete line (ends before a '\n') */
        while (end > 0 && buf[end - 1] != '\n')
            end--; /* an unfinished tail is not a record */
        if (end == 0)
            break;
        size_t stop = end - 1, start = stop;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        const char *why;
        if (tk_audit_record_decode(buf + start, stop - start, r, &why) == TK_OK)
            rc = TK_OK;
        end = start;
    }
    free(buf);
    return rc;
}

/* ---- anchor ---- */

static char *anchor_body(const tk_audit_anchor_t *an)
{
    char mac[2 * TK_AUDIT_MAC_LEN + 1];
    tk_hex_encode(an->mac, TK_AUDIT_MAC_LEN, mac);
    return tk_asprintf("{\"seq\":%" PRIu64 ",\"mac\":\"%s\",\"through\":\"%s\",\"ts\":\"%s\"}",
                       an->seq, mac, an->through, an->ts);
}

static void anchor_mac(const unsigned char *key, size_t keylen, const char *body,
                       char hex[2 * TK_AUDIT_MAC_LEN + 1])
{
    unsigned char mac[TK_AUDIT_MAC_LEN];
    unsigned int n = sizeof(mac);
    char *msg = tk_asprintf("%s%s", ANCHOR_DOMAIN, body);
    if (HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)msg, strlen(msg), mac, &n) == NULL)
        memset(mac, 0, sizeof(mac));
    free(msg);
    tk_hex_encode(mac, sizeof(mac), hex);
}

/* The anchor file's whole text. */
static char *anchor_text(const unsigned char *key, size_t keylen, const tk_audit_anchor_t *an)
{
    char hex[2 * TK_AUDIT_MAC_LEN + 1];
    char *body = anchor_body(an);
    anchor_mac(key, keylen, body, hex);
    body[strlen(body) - 1] = '\0';
    char *text = tk_asprintf("%s,\"anchor_mac\":\"%s\"}\n", body, hex);
    free(body);
    return text;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly 2 * TK_AUDIT_MAC_LEN lower-case hex digits (the canonical form). */
static int parse_hex_mac(const char *s, unsigned char *out)
{
    if (s == NULL || strlen(s) != 2 * TK_AUDIT_MAC_LEN)
        return TK_EINVAL;
    for (size_t i = 0; i < TK_AUDIT_MAC_LEN; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return TK_EINVAL;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return TK_OK;
}

static int anchor_parse(const char *text, size_t len, tk_audit_anchor_t *an)
{
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *seq = json_object_get(o, "seq");
    const char *through = json_string_value(json_object_get(o, "through"));
    const char *ts = json_string_value(json_object_get(o, "ts"));
    int rc = TK_EINVAL;
    if (json_is_integer(seq) && json_integer_value(seq) >= 0 && through != NULL && ts != NULL &&
        strlen(through) < sizeof(an->through) && strlen(ts) < sizeof(an->ts) &&
        parse_hex_mac(json_string_value(json_object_get(o, "mac")), an->mac) == TK_OK) {
        an->seq = (uint64_t)json_integer_value(seq);
        tk_snprintf(an->through, sizeof(an->through), "%s", through);
        tk_snprintf(an->ts, sizeof(an->ts), "%s", ts);
        rc = TK_OK;
    }
    json_decref(o);
    return rc;
}

int tk_audit_anchor_read(const char *dir, const unsigned char *key, size_t keylen,
                         tk_audit_anchor_t *an, const char **why)
{
    char *path = tk_asprintf("%s/" TK_AUDIT_ANCHOR, dir);
    char text[ANCHOR_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    *why = NULL;
    if (fd < 0) {
        *why = "cannot read anchor.json";
        return errno == ENOENT ? TK_ENOENT : TK_EIO;
    }
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0)
        return TK_EIO;
    text[n] = '\0';
    memset(an, 0, sizeof(*an));
    if (anchor_parse(text, (size_t)n, an) != TK_OK) {
        *why = "anchor.json is malformed";
        return TK_EINVAL;
    }
    char *want = anchor_text(key, keylen, an);
    int same = strlen(want) == (size_t)n && CRYPTO_memcmp(want, text, (size_t)n) == 0;
    free(want);
    if (!same) {
        *why = "anchor.json does not match its MAC (altered, or another key)";
        return TK_EINVAL;
    }
    return TK_OK;
}

int tk_audit_anchor_write(const char *dir, const unsigned char *key, size_t keylen,
                          const tk_audit_anchor_t *an)
{
    char *path = tk_asprintf("%s/" TK_AUDIT_ANCHOR, dir);
    char *tmp = tk_asprintf("%s/" TK_AUDIT_ANCHOR ".tmp", dir);
    char *text = anchor_text(key, keylen, an);
    int rc = TK_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        size_t n = strlen(text);
        if (write(fd, text, n) == (ssize_t)n && fsync(fd) == 0)
            rc = TK_OK;
        close(fd);
        if (rc == TK_OK && rename(tmp, path) != 0)
            rc = TK_EIO;
    }
    if (rc != TK_OK)
        unlink(tmp);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && rc == TK_OK)
            rc = TK_EIO;
        close(dfd);
    }
    free(text);
    free(tmp);
    free(path);
    return rc;
}
