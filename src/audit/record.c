/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit record codec: the one canonical byte form of a record (fixed key
 * order, every key present, null for absent values, strings escaped only
 * where JSON requires it, detail as compact key-sorted JSON), its decoder
 * (which accepts exactly those bytes and nothing equivalent), and the HMAC
 * chain: mac = HMAC-SHA256(key, prev || canonical bytes without "mac").
 */
#include "audit/audit_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- the encoding buffer (audit_int.h) ---- */

void tk_audit_buf_add(tk_audit_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
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
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
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

static int needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '"' || c == '\\';
}

/* A JSON string: '"' and '\\' escaped, control characters and DEL as \b \f
 * \n \r \t or \u00XX; everything else (UTF-8 included) as it is. */
void tk_audit_buf_string(tk_audit_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    tk_audit_buf_add(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && !needs_escape(*p))
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
