/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit verification: walks the segments oldest first and checks, record by
 * record, the canonical form, the sequence number, the link to the record
 * before ("prev") and the MAC, starting from the anchor when the retention
 * purge left one. The first record that breaks the chain is named (file,
 * line, seq, reason). A line that does not decode is tolerated only as the
 * remains of a crash during a write: when it is the unfinished last line of
 * the trail, or when the next record continues the chain as if it were not
 * there; anywhere else it is the first bad record.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

typedef struct vstate {
    const unsigned char *key;
    size_t keylen;
    tk_audit_verify_t *v;
    uint64_t next_seq;
    unsigned char prev[TK_AUDIT_MAC_LEN];
    int started;
    unsigned char anchor_mac[TK_AUDIT_MAC_LEN];
    /* undecodable lines since the last good record */
    size_t npend;
    char pend_file[64];
    size_t pend_line;
    int pend_unterminated;
    const char *pend_why;
} vstate_t;

static void vs_fail(vstate_t *vs, const char *file, size_t line, uint64_t seq, const char *fmt, ...)
    TK_PRINTF(5, 6);

static void vs_fail(vstate_t *vs, const char *file, size_t line, uint64_t seq, const char *fmt, ...)
{
    tk_audit_verify_t *v = vs->v;
    if (!v->ok)
        return;
    v->ok = 0;
    tk_snprintf(v->bad_file, sizeof(v->bad_file), "%s", file);
    v->bad_line = line;
    v->bad_seq = seq;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(v->reason, sizeof(v->reason), fmt, ap) < 0)
        v->reason[0] = '\0';
    va_end(ap);
}

static void vs_init(vstate_t *vs, tk_audit_verify_t *v, const unsigned char *key, size_t keylen)
{
    memset(v, 0, sizeof(*v));
    memset(vs, 0, sizeof(*vs));
    v->ok = 1;
    vs->v = v;
    vs->key = key;
    vs->keylen = keylen;
    vs->next_seq = 1;
}

static void vs_fail_pending(vstate_t *vs)
{
    vs_fail(vs, vs->pend_file, vs->pend_line, vs->next_seq, "undecodable record (%s)",
            vs->pend_why);
}

/* A record that decoded: check it against the chain. */
static void vs_record(vstate_t *vs, const char *file, size_t line, const tk_audit_record_t *r)
{
    tk_audit_verify_t *v = vs->v;
    if (v->anchored && !vs->started && r->seq <= v->anchor_seq) {
        /* purged through the anchor but not yet deleted (interrupted purge) */
        if (r->seq == v->anchor_seq && CRYPTO_memcmp(r->mac, vs->anchor_mac, TK_AUDIT_MAC_LEN))
            vs_fail(vs, file, line, r->seq, "the anchored record's MAC differs from anchor.json");
        vs->npend = 0;
        return;
    }
    vs->started = 1;
    int linked = r->seq == vs->next_seq && !CRYPTO_memcmp(r->prev, vs->prev, TK_AUDIT_MAC_LEN);
    if (!linked && vs->npend > 0) {
        vs_fail_pending(vs);
        return;
    }
    if (r->seq != vs->next_seq) {
        vs_fail(vs, file, line, r->seq,
                "seq %llu where %llu was expected (records missing, duplicated or reordered)",
                (unsigned long long)r->seq, (unsigned long long)vs->next_seq);
        return;
    }
    if (!linked) {
        vs_fail(vs, file, line, r->seq,
                "prev does not match the MAC of the record before (chain broken)");
        return;
    }
    if (!tk_audit_record_mac_ok(r, vs->key, vs->keylen)) {
        vs_fail(vs, file, line, r->seq, "MAC mismatch (record altered, or another key)");
        return;
    }
    v->torn += vs->npend;
    vs->npend = 0;
    if (v->records++ == 0)
        v->first_seq = r->seq;
    v->last_seq = r->seq;
    vs->next_seq = r->seq + 1;
    memcpy(vs->prev, r->mac, TK_AUDIT_MAC_LEN);
}

static void vs_line(vstate_t *vs, const char *file, size_t line, const char *text, size_t len,
                    int terminated)
{
    if (!vs->v->ok)
        return;
    tk_audit_record_t r;
    const char *why;
    if (tk_audit_record_decode(text, len, &r, &why) != TK_OK) {
        if (vs->npend++ == 0) {
            tk_snprintf(vs->pend_file, sizeof(vs->pend_file), "%s", file);
            vs->pend_line = line;
            vs->pend_why = why;
        }
        vs->pend_unterminated = !terminated;
        return;
    }
    vs_record(vs, file, line, &r);
    tk_audit_record_clear(&r);
}

static void vs_end(vstate_t *vs)
{
    if (!vs->v->ok || vs->npend == 0)
        return;
    if (vs->npend == 1 && vs->pend_unterminated) {
        vs->v->truncated_tail = 1;
        return;
    }
    vs_fail_pending(vs);
}

void tk_audit_verify_buf(const char *name, const char *buf, size_t len, const unsigned char *key,
                         size_t keylen, tk_audit_verify_t *v)
{
    vstate_t vs;
    vs_init(&vs, v, key, keylen);
    size_t pos = 0, line = 0;
    while (pos < len && v->ok) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        vs_line(&vs, name, ++line, buf + pos, end - pos, nl != NULL);
        pos = end + 1;
    }
    vs_end(&vs);
}

static int verify_segment(vstate_t *vs, const char *dir, const char *name)
{
    char *path = tk_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    free(path);
    if (f == NULL)
        return TK_EIO;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int term;
    ssize_t n;
    while (vs->v->ok && (n = tk_audit_read_line(f, &line, &cap, &term)) >= 0)
        vs_line(vs, name, ++lineno, line, (size_t)n, term);
    int rc = ferror(f) ? TK_EIO : TK_OK;
    (void)fclose(f);
    free(line);
    return rc;
}

int tk_audit_verify_segments(const char *dir, const unsigned char *key, size_t keylen,
                             char *const *names, size_t n, tk_audit_verify_t *v)
{
    vstate_t vs;
    vs_init(&vs, v, key, keylen);
    tk_audit_anchor_t an;
    const char *why;
    int rc = tk_audit_anchor_read(dir, key, keylen, &an, &why);
    if (rc == TK_OK) {
        v->anchored = 1;
        v->anchor_seq = an.seq;
        vs.next_seq = an.seq + 1;
        memcpy(vs.prev, an.mac, TK_AUDIT_MAC_LEN);
        memcpy(vs.anchor_mac, an.mac, TK_AUDIT_MAC_LEN);
    } else if (rc == TK_EINVAL) {
        vs_fail(&vs, TK_AUDIT_ANCHOR, 1, 0, "%s", why);
        return TK_OK;
    } else if (rc != TK_ENOENT) {
        return TK_EIO;
    }
    rc = TK_OK;
    for (size_t i = 0; i < n && rc == TK_OK && v->ok; i++)
        rc = verify_segment(&vs, dir, names[i]);
    if (rc == TK_OK)
        vs_end(&vs);
    return rc;
}

int tk_audit_verify_dir(const char *dir, const unsigned char *key, size_t keylen,
                        tk_audit_verify_t *v)
{
    char **names;
    size_t n;
    memset(v, 0, sizeof(*v));
    if (tk_audit_segments(dir, &names, &n) != TK_OK)
        return TK_EIO;
    int rc = tk_audit_verify_segments(dir, key, keylen, names, n, v);
    tk_audit_segments_free(names, n);
    return rc;
}

/* ---- iteration (export, report) ---- */

static int in_range(const char *ts, const char *from, const char *to)
{
    return (from == NULL || strcmp(ts, from) >= 0) && (to == NULL || strcmp(ts, to) <= 0);
}

static int each_segment(const char *path, const char *from, const char *to, tk_audit_each_fn fn,
                        void *arg, size_t *skipped)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return TK_EIO;
    char *line = NULL;
    size_t cap = 0;
    int term, stop = 0;
    ssize_t n;
    while (!stop && (n = tk_audit_read_line(f, &line, &cap, &term)) >= 0) {
        tk_audit_record_t r;
        const char *why;
        if (tk_audit_record_decode(line, (size_t)n, &r, &why) != TK_OK) {
            (*skipped)++;
            continue;
        }
        if (in_range(r.ts, from, to))
            stop = fn(arg, &r, line, (size_t)n);
        tk_audit_record_clear(&r);
    }
    int rc = ferror(f) ? TK_EIO : TK_OK;
    (void)fclose(f);
    free(line);
    return rc != TK_OK ? rc : (stop ? 1 : TK_OK);
}

/* "YYYY-MM-DD..." to the day number YYYYMMDD. */
static unsigned ts_day(const char *ts)
{
    unsigned d = 0;
    for (const char *p = ts; *p && p < ts + 10; p++)
        if (*p >= '0' && *p <= '9')
            d = d * 10 + (unsigned)(*p - '0');
    return d;
}

int tk_audit_each(const char *dir, const char *from, const char *to, tk_audit_each_fn fn, void *arg,
                  size_t *skipped)
{
    char **names;
    size_t n;
    *skipped = 0;
    if (tk_audit_segments(dir, &names, &n) != TK_OK)
        return TK_EIO;
    int rc = TK_OK;
    for (size_t i = 0; i < n && rc == TK_OK; i++) {
        unsigned day = tk_audit_segment_day(names[i]);
        /* a record lands in the segment of its own ts day */
        if ((from && day < ts_day(from)) || (to && day > ts_day(to)))
            continue;
        char *path = tk_asprintf("%s/%s", dir, names[i]);
        rc = each_segment(path, from, to, fn, arg, skipped);
        free(path);
    }
    tk_audit_segments_free(names, n);
    return rc < 0 ? rc : TK_OK;
}
