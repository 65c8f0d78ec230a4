/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit record codec: the one canonical byte form of a record (fixed key
 * order, every key present, null for absent values, strings escaped only
 * where JSON requires it, detail as compact key-sorted JSON), its decoder
 * (which accepts exactly those bytes and nothing equivalent), and the HMAC
 * chain: mac = HMAC-SHA256(key, prev || canonical bytes without "mac").
 * Also the pieces the writer (audit.c) builds a line from in one buffer:
 * canonical strings, cleaned fields, and the detail written byte for byte
 * as jansson writes it, without jansson's allocations.
 */
#include "audit/audit_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- the encoding buffer (audit_int.h) ---- */

void tk_audit_buf_grow(tk_audit_buf_t *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + n + 1)
        cap *= 2;
    if (b->p == NULL || b->heap) {
        b->p = tk_realloc(b->p, cap);
    } else {
        char *p = tk_malloc(cap);
        memcpy(p, b->p, b->len);
        b->p = p;
    }
    b->heap = 1;
    b->cap = cap;
}

void tk_audit_buf_free(tk_audit_buf_t *b)
{
    if (b->heap)
        free(b->p);
    memset(b, 0, sizeof(*b));
}

static void buf_str(tk_audit_buf_t *b, const char *s)
{
    tk_audit_buf_add(b, s, strlen(s));
}

void tk_audit_buf_u64(tk_audit_buf_t *b, uint64_t v)
{
    char num[24];
    size_t i = sizeof(num);
    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    tk_audit_buf_add(b, num + i, sizeof(num) - i);
}

/* 1 for the bytes a canonical string escapes: controls, DEL, '"', '\\'. */
static const unsigned char needs_escape[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1, [0x7f] = 1};

/* A JSON string: '"' and '\\' escaped, control characters and DEL as \b \f
 * \n \r \t or \u00XX; everything else (UTF-8 included) as it is. */
void tk_audit_buf_string(tk_audit_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    tk_audit_buf_add(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && !needs_escape[*p])
            p++;
        if (p > run)
            tk_audit_buf_add(b, (const char *)run, (size_t)(p - run));
        if (p == end)
            break;
        static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
        const char *short_form = memchr(from, *p, sizeof(from) - 1);
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        if (short_form != NULL) {
            esc[1] = to[short_form - from];
        } else {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        tk_audit_buf_add(b, esc, n);
        p++;
    }
    tk_audit_buf_add(b, "\"", 1);
}

size_t tk_audit_utf8_len(const unsigned char *p)
{
    size_t n = p[0] < 0x80                    ? 1
               : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
               : p[0] >= 0xe0 && p[0] <= 0xef ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
        return 0; /* overlong, surrogate */
    if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

/* ---- detail: jansson's compact, key-sorted form, without jansson ---- */

#define DUMP_DEPTH 32 /* deeper: left to jansson */
#define DUMP_KEYS 32  /* members of one object; more: left to jansson */

/* A string as json_dumps writes it: '"' and '\\' escaped, controls as \b
 * \f \n \r \t or \u00XX (upper-case hex), everything else (DEL, UTF-8)
 * as it is. Invalid UTF-8, which jansson refuses, fails. */
static int dump_string(tk_audit_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    tk_audit_buf_add(b, "\"", 1);
    size_t i = 0, run = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t n = tk_audit_utf8_len((const unsigned char *)s + i);
            if (n == 0 || n > len - i)
                return -1;
            i += n;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        tk_audit_buf_add(b, s + run, i - run);
        static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
        const char *short_form = c != 0 ? memchr(from, c, sizeof(from) - 1) : NULL;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (short_form != NULL)
            esc[1] = to[short_form - from];
        tk_audit_buf_add(b, esc, short_form != NULL ? 2 : 6);
        run = ++i;
    }
    tk_audit_buf_add(b, s + run, len - run);
    tk_audit_buf_add(b, "\"", 1);
    return 0;
}

static int dump_value(tk_audit_buf_t *b, const json_t *v, int depth);

typedef struct member {
    const char *key;
    size_t len;
    const json_t *value;
} member_t;

static int dump_object(tk_audit_buf_t *b, const json_t *o, int depth)
{
    member_t m[DUMP_KEYS];
    size_t n = 0, kl;
    const char *k;
    json_t *x;
    if (json_object_size(o) > DUMP_KEYS)
        return -1;
    json_object_keylen_foreach((json_t *)o, k, kl, x) {
        if (n == DUMP_KEYS || memchr(k, '\0', kl) != NULL)
            return -1;
        m[n++] = (member_t){k, kl, x};
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: byte order, as jansson's */
        for (size_t j = i; j > 0 && strcmp(m[j - 1].key, m[j].key) > 0; j--) {
            member_t t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    tk_audit_buf_add(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            tk_audit_buf_add(b, ",", 1);
        if (dump_string(b, m[i].key, m[i].len) != 0)
            return -1;
        tk_audit_buf_add(b, ":", 1);
        if (dump_value(b, m[i].value, depth + 1) != 0)
            return -1;
    }
    tk_audit_buf_add(b, "}", 1);
    return 0;
}

static int dump_value(tk_audit_buf_t *b, const json_t *v, int depth)
{
    if (depth > DUMP_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return dump_object(b, v, depth);
    case JSON_ARRAY:
        tk_audit_buf_add(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                tk_audit_buf_add(b, ",", 1);
            if (dump_value(b, json_array_get(v, i), depth + 1) != 0)
                return -1;
        }
        tk_audit_buf_add(b, "]", 1);
        return 0;
    case JSON_STRING:
        return dump_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            tk_audit_buf_add(b, "-", 1);
        tk_audit_buf_u64(b, i < 0 ? 0 - (uint64_t)i : (uint64_t)i);
        return 0;
    }
    case JSON_TRUE:
        tk_audit_buf_add(b, "true", 4);
        return 0;
    case JSON_FALSE:
        tk_audit_buf_add(b, "false", 5);
        return 0;
    case JSON_NULL:
        tk_audit_buf_add(b, "null", 4);
        return 0;
    default: /* reals: jansson's own formatting */
        return -1;
    }
}

int tk_audit_buf_detail(tk_audit_buf_t *b, const json_t *d)
{
    size_t at = b->len;
    if (json_is_object(d) && dump_object(b, d, 0) == 0)
        return TK_OK;
    b->len = at;
    if (b->p != NULL)
        b->p[at] = '\0';
    return TK_EINVAL;
}

void tk_audit_buf_field(tk_audit_buf_t *b, const char *s, size_t len)
{
    size_t cut = 0;
    int bad = 0, esc = 0;
    while (cut < len) {
        unsigned char c = (unsigned char)s[cut];
        if (c < 0x80 && cut < TK_AUDIT_FIELD_MAX) {
            esc |= needs_escape[c];
            cut++;
            continue;
        }
        size_t n = tk_audit_utf8_len((const unsigned char *)s + cut);
        if (cut + (n ? n : 1) > TK_AUDIT_FIELD_MAX)
            break;
        bad |= n == 0;
        cut += n ? n : 1;
    }
    if (!bad && !esc) { /* the common case: the bytes as they are, quoted */
        tk_audit_buf_add(b, "\"", 1);
        tk_audit_buf_add(b, s, cut);
        tk_audit_buf_add(b, "\"", 1);
        return;
    }
    if (!bad) {
        tk_audit_buf_string(b, s, cut);
        return;
    }
    char *t = tk_strndup(s, cut);
    for (size_t i = 0; i < cut;) {
        size_t n = tk_audit_utf8_len((const unsigned char *)t + i);
        if (n == 0)
            t[i] = '?';
        i += n ? n : 1;
    }
    tk_audit_buf_string(b, t, cut);
    free(t);
}

static void put_string(tk_audit_buf_t *b, const char *s)
{
    tk_audit_buf_string(b, s, strlen(s));
}

static void put_key(tk_audit_buf_t *b, const char *key, int first)
{
    if (!first)
        tk_audit_buf_add(b, ",", 1);
    put_string(b, key);
    tk_audit_buf_add(b, ":", 1);
}

static void put_opt_string(tk_audit_buf_t *b, const char *key, const char *v)
{
    put_key(b, key, 0);
    if (v == NULL)
        buf_str(b, "null");
    else
        put_string(b, v);
}

static void put_opt_int(tk_audit_buf_t *b, const char *key, int64_t v)
{
    char num[32];
    put_key(b, key, 0);
    if (v == 0)
        buf_str(b, "null");
    else {
        tk_snprintf(num, sizeof(num), "%" PRId64, v);
        buf_str(b, num);
    }
}

static void put_mac(tk_audit_buf_t *b, const char *key, const unsigned char *mac)
{
    char hex[2 * TK_AUDIT_MAC_LEN + 1];
    tk_hex_encode(mac, TK_AUDIT_MAC_LEN, hex);
    put_key(b, key, 0);
    put_string(b, hex);
}

/* Everything but "mac" and the closing brace. */
static void encode_body(tk_audit_buf_t *b, const tk_audit_record_t *r)
{
    char num[32];
    tk_audit_buf_add(b, "{", 1);
    put_key(b, "seq", 1);
    tk_snprintf(num, sizeof(num), "%" PRIu64, r->seq);
    buf_str(b, num);
    put_opt_string(b, "ts", r->ts);
    put_opt_string(b, "actor", r->actor);
    put_opt_string(b, "action", r->action);
    put_opt_string(b, "target", r->target);
    put_opt_string(b, "endpoint", r->endpoint);
    put_opt_string(b, "server", r->server);
    put_opt_string(b, "tool", r->tool);
    put_opt_string(b, "result", r->result);
    put_opt_int(b, "status", r->status);
    put_opt_int(b, "latency_us", r->latency_us);
    put_opt_string(b, "ip", r->ip);
    put_opt_string(b, "request_id", r->request_id);
    put_key(b, "detail", 0);
    char *d = r->detail ? json_dumps(r->detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    buf_str(b, d ? d : "null");
    free(d);
    put_mac(b, "prev", r->prev);
}

char *tk_audit_record_encode(const tk_audit_record_t *r, size_t *len)
{
    tk_audit_buf_t b = {0};
    encode_body(&b, r);
    put_mac(&b, "mac", r->mac);
    tk_audit_buf_add(&b, "}", 1);
    *len = b.len;
    return b.p;
}

/* prev || body, the bytes the MAC covers (body: the record without "mac"). */
static void mac_input(tk_audit_buf_t *b, const tk_audit_record_t *r)
{
    tk_audit_buf_add(b, (const char *)r->prev, TK_AUDIT_MAC_LEN);
    encode_body(b, r);
    tk_audit_buf_add(b, "}", 1);
}

static void hmac_buf(const tk_audit_buf_t *b, const unsigned char *key, size_t keylen, unsigned char *out)
{
    unsigned int n = TK_AUDIT_MAC_LEN;
    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)b->p, b->len, out, &n) == NULL)
        memset(out, 0, TK_AUDIT_MAC_LEN);
}

static void compute_mac(const tk_audit_record_t *r, const unsigned char *key, size_t keylen,
                        unsigned char *out)
{
    tk_audit_buf_t b = {0};
    mac_input(&b, r);
    hmac_buf(&b, key, keylen, out);
    free(b.p);
}

void tk_audit_record_seal(tk_audit_record_t *r, const unsigned char *key, size_t keylen)
{
    compute_mac(r, key, keylen, r->mac);
}

int tk_audit_record_mac_ok(const tk_audit_record_t *r, const unsigned char *key, size_t keylen)
{
    unsigned char want[TK_AUDIT_MAC_LEN];
    compute_mac(r, key, keylen, want);
    return CRYPTO_memcmp(want, r->mac, sizeof(want)) == 0;
}

void tk_audit_record_clear(tk_audit_record_t *r)
{
    free(r->actor);
    free(r->action);
    free(r->target);
    free(r->endpoint);
    free(r->server);
    free(r->tool);
    free(r->result);
    free(r->ip);
    free(r->request_id);
    json_decref(r->detail);
    memset(r, 0, sizeof(*r));
}

/* ---- decoding ---- */

static int get_opt_string(json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return TK_OK;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return TK_EINVAL;
    *out = tk_strdup(json_string_value(v));
    return TK_OK;
}

static int get_opt_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return TK_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return TK_EINVAL;
    *out = json_integer_value(v);
    return TK_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int get_mac(json_t *o, const char *key, unsigned char *out)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (s == NULL || strlen(s) != 2 * TK_AUDIT_MAC_LEN)
        return TK_EINVAL;
    for (size_t i = 0; i < TK_AUDIT_MAC_LEN; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return TK_EINVAL;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return TK_OK;
}

static int decode_fields(json_t *o, tk_audit_record_t *r)
{
    json_t *seq = json_object_get(o, "seq");
    const char *ts = json_string_value(json_object_get(o, "ts"));
    if (!json_is_integer(seq) || json_integer_value(seq) < 1 || ts == NULL ||
        strlen(ts) >= sizeof(r->ts))
        return TK_EINVAL;
    r->seq = (uint64_t)json_integer_value(seq);
    tk_snprintf(r->ts, sizeof(r->ts), "%s", ts);
    int64_t status = 0;
    int rc = get_opt_string(o, "actor", &r->actor);
    rc = rc ? rc : get_opt_string(o, "action", &r->action);
    rc = rc ? rc : get_opt_string(o, "target", &r->target);
    rc = rc ? rc : get_opt_string(o, "endpoint", &r->endpoint);
    rc = rc ? rc : get_opt_string(o, "server", &r->server);
    rc = rc ? rc : get_opt_string(o, "tool", &r->tool);
    rc = rc ? rc : get_opt_string(o, "result", &r->result);
    rc = rc ? rc : get_opt_int(o, "status", 1, 999, &status);
    rc = rc ? rc : get_opt_int(o, "latency_us", 1, INT64_MAX, &r->latency_us);
    rc = rc ? rc : get_opt_string(o, "ip", &r->ip);
    rc = rc ? rc : get_opt_string(o, "request_id", &r->request_id);
    rc = rc ? rc : get_mac(o, "prev", r->prev);
    rc = rc ? rc : get_mac(o, "mac", r->mac);
    r->status = (int)status;
    json_t *d = json_object_get(o, "detail");
    if (rc == TK_OK && d != NULL && !json_is_null(d)) {
        if (!json_is_object(d))
            return TK_EINVAL;
        r->detail = json_incref(d);
    }
    return rc;
}

int tk_audit_record_decode(const char *line, size_t len, tk_audit_record_t *r, const char **why)
{
    memset(r, 0, sizeof(*r));
    if (len > TK_AUDIT_LINE_MAX) {
        *why = "line longer than the record limit";
        return TK_EINVAL;
    }
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        *why = "not a JSON object";
        return TK_EINVAL;
    }
    int rc = decode_fields(o, r);
    json_decref(o);
    if (rc != TK_OK) {
        tk_audit_record_clear(r);
        *why = "missing or malformed field";
        return TK_EINVAL;
    }
    size_t n;
    char *again = tk_audit_record_encode(r, &n);
    int same = n == len && memcmp(again, line, len) == 0;
    free(again);
    if (!same) {
        tk_audit_record_clear(r);
        *why = "not in canonical form";
        return TK_EINVAL;
    }
    return TK_OK;
}
