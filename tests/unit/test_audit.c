/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the audit trail (src/audit/) on real files in a fresh
 * mkdtemp directory per test: the codec round-trips every field and refuses
 * equivalent but non-canonical bytes; the canonical form and MAC of a fixed
 * record match values computed independently from docs/audit.md; flipping a
 * byte in any field of a middle record makes verify name exactly that
 * record; deleted, duplicated and swapped lines are named; an unfinished
 * last line (crash during a write) is reported apart and the next writer
 * continues the chain past it; the retention purge leaves an anchor that
 * keeps the rest verifiable, while a segment deleted in the middle fails;
 * two handles appending alternately to one directory (as two processes do)
 * keep one chain; a registered secret in every field never reaches the
 * file. Asynchronous appends: two threads submitting while a third appends
 * synchronously keep one chain in submission order, every completion runs
 * once on the loop's thread; close writes what is queued and completes it;
 * an over-long record fails alone; failed writes fail their whole batch and
 * the chain continues past the unfinished line they leave.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "core/core.h"
#include "core/mask.h"

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcdef";
/* HMAC-SHA256 of the record in test_canonical_form, computed with Python:
 * hmac.new(KEY, bytes(32) + body, sha256) where body is the canonical bytes
 * without "mac" (closing brace after "prev"). */
#define TK_AUDIT_GOLDEN_MAC "41edf1906087986b6b42e6dfae47cdb56a2a215966bf8828c840703c2d56e00e"

typedef struct fixture {
    char dir[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = tk_calloc(1, sizeof(*f));
    tk_snprintf(f->dir, sizeof(f->dir), "/tmp/tk-audit-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char **names;
    size_t n;
    if (tk_audit_segments(f->dir, &names, &n) == TK_OK) {
        for (size_t i = 0; i < n; i++) {
            char *p = tk_asprintf("%s/%s", f->dir, names[i]);
            unlink(p);
            free(p);
        }
        tk_audit_segments_free(names, n);
    }
    const char *extra[] = {"audit.lock", "anchor.json", "anchor.json.tmp"};
    for (size_t i = 0; i < 3; i++) {
        char *p = tk_asprintf("%s/%s", f->dir, extra[i]);
        unlink(p);
        free(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static tk_audit_t *open_trail(const fixture_t *f)
{
    tk_audit_opts_t o = {.dir = f->dir,
                         .key = KEY,
                         .keylen = sizeof(KEY),
                         .retention_days = 30,
                         .fsync_interval_ms = 1000};
    tk_audit_t *a = NULL;
    char err[256];
    assert_int_equal(tk_audit_open(&o, &a, err, sizeof(err)), TK_OK);
    return a;
}

static void append_n(tk_audit_t *a, int n, const char *actor)
{
    for (int i = 0; i < n; i++) {
        char rid[32];
        tk_snprintf(rid, sizeof(rid), "r-%d", i);
        json_t *d = json_pack("{s:i, s:s}", "i", i, "note", "caf\xc3\xa9 \"q\"\n");
        tk_audit_event_t ev = {.actor = actor,
                               .action = "tool.call",
                               .target = "s-1",
                               .endpoint = "default",
                               .server = "echo",
                               .tool = "echo__echo",
                               .result = "ok",
                               .status = 200,
                               .latency_us = 1234 + i,
                               .ip = "127.0.0.1",
                               .request_id = rid,
                               .detail = d};
        assert_int_equal(tk_audit_append(a, &ev), TK_OK);
        json_decref(d);
    }
}

/* The one segment of today (the tests write within one day). */
static char *segment_path(const fixture_t *f)
{
    char name[32];
    tk_audit_segment_name(time(NULL), name, sizeof(name));
    return tk_asprintf("%s/%s", f->dir, name);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = tk_malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

/* Write n records through a fresh handle and read today's segment back. */
static char *write_and_read(const fixture_t *f, int n, const char *actor, char **path, size_t *len)
{
    tk_audit_t *a = open_trail(f);
    append_n(a, n, actor);
    tk_audit_close(a);
    *path = segment_path(f);
    return slurp(*path, len);
}

static tk_audit_verify_t verify(const fixture_t *f)
{
    tk_audit_verify_t v;
    assert_int_equal(tk_audit_verify_dir(f->dir, KEY, sizeof(KEY), &v), TK_OK);
    return v;
}

/* Offset of the start of line n (1-based) in buf. */
static size_t line_start(const char *buf, int n)
{
    size_t off = 0;
    for (int i = 1; i < n; i++)
        off = (size_t)(strchr(buf + off, '\n') - buf) + 1;
    return off;
}

static size_t line_len(const char *buf, int n)
{
    size_t s = line_start(buf, n);
    return (size_t)(strchr(buf + s, '\n') - (buf + s)) + 1;
}

/* ---- codec ---- */

static void fill(tk_audit_record_t *r)
{
    memset(r, 0, sizeof(*r));
    r->seq = 7;
    tk_snprintf(r->ts, sizeof(r->ts), "2026-01-02T03:04:05.678Z");
    r->actor = tk_strdup("key:abc");
    r->action = tk_strdup("tool.call");
    r->target = tk_strdup("s-0011223344556677");
    r->endpoint = tk_strdup("default");
    r->server = tk_strdup("echo");
    r->tool = tk_strdup("echo__echo \"quoted\" \\ \x01 \x7f caf\xc3\xa9 /");
    r->result = tk_strdup("ok");
    r->status = 200;
    r->latency_us = 1500;
    r->ip = tk_strdup("127.0.0.1");
    r->request_id = tk_strdup("ab12cd34-9");
    r->detail = json_pack("{s:i, s:s, s:[i,s]}", "rpc_id", 3, "b", "x\ty", "a", 1, "z");
    memset(r->prev, 0xab, sizeof(r->prev));
}

static void test_round_trip(void **state)
{
    (void)state;
    tk_audit_record_t r, back;
    fill(&r);
    tk_audit_record_seal(&r, KEY, sizeof(KEY));
    size_t n;
    char *line = tk_audit_record_encode(&r, &n);
    const char *why = NULL;
    assert_int_equal(tk_audit_record_decode(line, n, &back, &why), TK_OK);
    assert_int_equal(back.seq, 7);
    assert_string_equal(back.ts, r.ts);
    assert_string_equal(back.tool, r.tool);
    assert_string_equal(back.request_id, r.request_id);
    assert_int_equal(back.status, 200);
    assert_int_equal(back.latency_us, 1500);
    assert_true(json_equal(back.detail, r.detail));
    assert_memory_equal(back.prev, r.prev, sizeof(r.prev));
    assert_true(tk_audit_record_mac_ok(&back, KEY, sizeof(KEY)));
    size_t n2;
    char *again = tk_audit_record_encode(&back, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(line, again, n);
    /* absent values are null, and decode as absent */
    tk_audit_record_clear(&back);
    free(again);
    free(r.tool);
    r.tool = NULL;
    r.status = 0;
    json_decref(r.detail);
    r.detail = NULL;
    free(line);
    line = tk_audit_record_encode(&r, &n);
    assert_non_null(strstr(line, "\"tool\":null"));
    assert_non_null(strstr(line, "\"status\":null"));
    assert_non_null(strstr(line, "\"detail\":null"));
    assert_int_equal(tk_audit_record_decode(line, n, &back, &why), TK_OK);
    assert_null(back.tool);
    assert_null(back.detail);
    tk_audit_record_clear(&back);
    tk_audit_record_clear(&r);
    free(line);
}

/* The canonical bytes and the MAC of a fixed record, as docs/audit.md
 * defines them; the expected MAC was computed with Python's hmac module
 * from that definition, not with this code. */
static void test_canonical_form(void **state)
{
    (void)state;
    tk_audit_record_t r;
    memset(&r, 0, sizeof(r));
    r.seq = 1;
    tk_snprintf(r.ts, sizeof(r.ts), "2026-01-02T03:04:05.678Z");
    r.actor = tk_strdup("key:bootstrap");
    r.action = tk_strdup("tool.call");
    r.result = tk_strdup("ok");
    r.status = 200;
    r.latency_us = 42;
    r.detail = json_pack("{s:s, s:i}", "z", "\xc3\xa9\n", "a", 1);
    tk_audit_record_seal(&r, KEY, sizeof(KEY));
    size_t n;
    char *line = tk_audit_record_encode(&r, &n);
    const char *want =
        "{\"seq\":1,\"ts\":\"2026-01-02T03:04:05.678Z\",\"actor\":\"key:bootstrap\","
        "\"action\":\"tool.call\",\"target\":null,\"endpoint\":null,\"server\":null,"
        "\"tool\":null,\"result\":\"ok\",\"status\":200,\"latency_us\":42,\"ip\":null,"
        "\"request_id\":null,\"detail\":{\"a\":1,\"z\":\"\xc3\xa9\\n\"},"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"mac\":\"";
    assert_int_equal(strncmp(line, want, strlen(want)), 0);
    char mac[65];
    tk_hex_encode(r.mac, sizeof(r.mac), mac);
    assert_string_equal(mac, TK_AUDIT_GOLDEN_MAC);
    free(line);
    tk_audit_record_clear(&r);
}

static void test_non_canonical_refused(void **state)
{
    (void)state;
    tk_audit_record_t r, back;
    fill(&r);
    tk_audit_record_seal(&r, KEY, sizeof(KEY));
    size_t n;
    char *line = tk_audit_record_encode(&r, &n);
    const char *why;
    /* a space after the first colon: same JSON, other bytes */
    char *spaced = tk_asprintf("{\"seq\": %s", line + strlen("{\"seq\":"));
    assert_int_equal(tk_audit_record_decode(spaced, strlen(spaced), &back, &why), TK_EINVAL);
    /* é escaped as \u00e9 */
    char *p = strstr(line, "caf\xc3\xa9");
    assert_non_null(p);
    char *esc = tk_asprintf("%.*scaf\\u00e9%s", (int)(p - line), line, p + 5);
    assert_int_equal(tk_audit_record_decode(esc, strlen(esc), &back, &why), TK_EINVAL);
    /* an extra key */
    char *extra = tk_asprintf("%.*s,\"x\":1}", (int)n - 1, line);
    assert_int_equal(tk_audit_record_decode(extra, strlen(extra), &back, &why), TK_EINVAL);
    assert_string_equal(why, "not in canonical form");
    /* not JSON */
    assert_int_equal(tk_audit_record_decode(line, n - 1, &back, &why), TK_EINVAL);
    free(spaced);
    free(esc);
    free(extra);
    free(line);
    tk_audit_record_clear(&r);
}

/* ---- the chain ---- */

static void test_verify_clean(void **state)
{
    fixture_t *f = *state;
    tk_audit_t *a = open_trail(f);
    append_n(a, 5, "key:k1");
    tk_audit_close(a);
    tk_audit_verify_t v = verify(f);
    assert_true(v.ok);
    assert_int_equal(v.records, 5);
    assert_int_equal(v.first_seq, 1);
    assert_int_equal(v.last_seq, 5);
    assert_false(v.anchored);
    assert_int_equal(v.torn, 0);
    assert_false(v.truncated_tail);
    /* another key: the first record already fails */
    unsigned char other[32];
    memset(other, 7, sizeof(other));
    assert_int_equal(tk_audit_verify_dir(f->dir, other, sizeof(other), &v), TK_OK);
    assert_false(v.ok);
    assert_int_equal(v.bad_line, 1);
}

static void test_flip_each_field(void **state)
{
    fixture_t *f = *state;
    char *path;
    size_t len;
    char *orig = write_and_read(f, 5, "key:k1", &path, &len);
    static const char *const keys[] = {
        "seq",    "ts",     "actor",      "action", "target",     "endpoint", "server", "tool",
        "result", "status", "latency_us", "ip",     "request_id", "detail",   "prev",   "mac"};
    size_t s3 = line_start(orig, 3), l3 = line_len(orig, 3);
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        char *copy = tk_strndup(orig, len);
        char pat[32];
        tk_snprintf(pat, sizeof(pat), "\"%s\":", keys[k]);
        char *at = strstr(copy + s3, pat);
        assert_non_null(at);
        assert_true((size_t)(at - copy) < s3 + l3);
        char *val = at + strlen(pat);
        if (*val == '"' || *val == '{')
            val++;
        *val = *val == '1' ? '2' : *val == 'a' ? 'b' : (char)(*val ^ 1);
        spit(path, copy, len);
        tk_audit_verify_t v = verify(f);
        /* (an edited seq is reported as found) */
        if (v.ok || v.bad_line != 3 || (k > 0 && v.bad_seq != 3))
            fail_msg("field %s: ok=%d line=%zu seq=%llu (%s)", keys[k], v.ok, v.bad_line,
                     (unsigned long long)v.bad_seq, v.reason);
        free(copy);
    }
    spit(path, orig, len);
    assert_true(verify(f).ok);
    free(orig);
    free(path);
}

static void test_delete_duplicate_swap(void **state)
{
    fixture_t *f = *state;
    char *path;
    size_t len;
    char *orig = write_and_read(f, 5, "key:k1", &path, &len);
    size_t s3 = line_start(orig, 3), l3 = line_len(orig, 3), l4 = line_len(orig, 4);
    char *buf = tk_malloc(len + l3 + 1);

    /* delete line 3: line 3 now holds seq 4 */
    memcpy(buf, orig, s3);
    memcpy(buf + s3, orig + s3 + l3, len - s3 - l3);
    spit(path, buf, len - l3);
    tk_audit_verify_t v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.bad_line, 3);
    assert_int_equal(v.bad_seq, 4);

    /* duplicate line 3: the copy on line 4 is bad */
    memcpy(buf, orig, s3 + l3);
    memcpy(buf + s3 + l3, orig + s3, len - s3);
    spit(path, buf, len + l3);
    v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.bad_line, 4);
    assert_int_equal(v.bad_seq, 3);

    /* swap lines 3 and 4 */
    memcpy(buf, orig, s3);
    memcpy(buf + s3, orig + s3 + l3, l4);
    memcpy(buf + s3 + l4, orig + s3, l3);
    memcpy(buf + s3 + l3 + l4, orig + s3 + l3 + l4, len - s3 - l3 - l4);
    spit(path, buf, len);
    v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.bad_line, 3);
    assert_int_equal(v.bad_seq, 4);

    /* an edit that leaves line 5 undecodable (a '}' removed) is not a torn write */
    memcpy(buf, orig, len);
    buf[len - 2] = ' ';
    spit(path, buf, len);
    v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.bad_line, 5);
    free(buf);
    free(orig);
    free(path);
}

static void test_truncated_tail(void **state)
{
    fixture_t *f = *state;
    char *path;
    size_t len;
    char *orig = write_and_read(f, 4, "key:k1", &path, &len);
    size_t s4 = line_start(orig, 4);
    /* a crash half-way through writing record 4 */
    assert_int_equal(truncate(path, (off_t)(s4 + 40)), 0);
    tk_audit_verify_t v = verify(f);
    assert_true(v.ok);
    assert_true(v.truncated_tail);
    assert_int_equal(v.last_seq, 3);
    /* the next writer starts a new line and continues from record 3 */
    tk_audit_t *a = open_trail(f);
    append_n(a, 2, "key:k2");
    tk_audit_close(a);
    v = verify(f);
    assert_true(v.ok);
    assert_false(v.truncated_tail);
    assert_int_equal(v.torn, 1);
    assert_int_equal(v.records, 5);
    assert_int_equal(v.last_seq, 5);
    free(orig);
    free(path);
}

static void test_two_handles_alternate(void **state)
{
    fixture_t *f = *state;
    tk_audit_t *a = open_trail(f), *b = open_trail(f);
    for (int i = 0; i < 10; i++) {
        append_n(a, 1, "key:a");
        append_n(b, 2, "cli:b");
    }
    tk_audit_close(a);
    tk_audit_close(b);
    tk_audit_verify_t v = verify(f);
    assert_true(v.ok);
    assert_int_equal(v.records, 30);
    assert_int_equal(v.last_seq, 30);
}

/* Make day-old segments by renaming what a handle wrote today. */
static void age_segment(const fixture_t *f, const char *day)
{
    char *from = segment_path(f);
    char *to = tk_asprintf("%s/audit-%s.jsonl", f->dir, day);
    assert_int_equal(rename(from, to), 0);
    free(from);
    free(to);
}

static void test_retention_anchor(void **state)
{
    fixture_t *f = *state;
    const char *days[] = {"20200101", "20200102"};
    for (size_t i = 0; i < 2; i++) {
        tk_audit_t *a = open_trail(f);
        append_n(a, 3, "key:old");
        tk_audit_close(a);
        age_segment(f, days[i]);
    }
    tk_audit_t *a = open_trail(f);
    append_n(a, 2, "key:new");
    tk_audit_verify_t v = verify(f);
    assert_true(v.ok);
    assert_int_equal(v.records, 8);

    /* a segment deleted in the middle breaks the chain at the next one */
    char *mid = tk_asprintf("%s/audit-20200102.jsonl", f->dir);
    size_t len;
    char *saved = slurp(mid, &len);
    unlink(mid);
    v = verify(f);
    assert_false(v.ok);
    assert_int_equal(v.bad_line, 1);
    assert_int_equal(v.bad_seq, 7);
    spit(mid, saved, len);

    size_t purged;
    assert_int_equal(tk_audit_purge(a, time(NULL), &purged), TK_OK);
    assert_int_equal(purged, 2);
    tk_audit_close(a);
    v = verify(f);
    assert_true(v.ok);
    assert_true(v.anchored);
    assert_int_equal(v.anchor_seq, 6);
    assert_int_equal(v.first_seq, 7);
    assert_int_equal(v.records, 3); /* 2 + the audit.purge record */

    /* an altered anchor is named */
    char *anchor = tk_asprintf("%s/anchor.json", f->dir);
    char *text = slurp(anchor, &len);
    text[8] = text[8] == '6' ? '5' : '6';
    spit(anchor, text, len);
    v = verify(f);
    assert_false(v.ok);
    assert_string_equal(v.bad_file, "anchor.json");
    free(text);
    free(anchor);
    free(saved);
    free(mid);
}

static void test_purge_refuses_broken_chain(void **state)
{
    fixture_t *f = *state;
    char *path;
    size_t len;
    char *buf = write_and_read(f, 3, "key:old", &path, &len);
    char *at = strstr(buf, "key:old");
    at[4] = 'X';
    spit(path, buf, len);
    age_segment(f, "20200101");
    tk_audit_t *a = open_trail(f);
    size_t purged;
    assert_int_not_equal(tk_audit_purge(a, time(NULL), &purged), TK_OK);
    assert_int_equal(purged, 0);
    tk_audit_close(a);
    char *old = tk_asprintf("%s/audit-20200101.jsonl", f->dir);
    struct stat st;
    assert_int_equal(stat(old, &st), 0);
    free(old);
    free(buf);
    free(path);
}

static void test_secret_masked_everywhere(void **state)
{
    fixture_t *f = *state;
    const char *secret = "Zq9-very-distinct-secret-77";
    assert_int_equal(tk_mask_add_secret(secret), TK_OK);
    tk_audit_t *a = open_trail(f);
    char *s = tk_asprintf("x %s y", secret);
    json_t *d = json_pack("{s:s, s:{s:[s]}, s:s}", "arguments", s, "nested", secret, s, secret,
                          "token", "not-registered-but-named-token");
    tk_audit_event_t ev = {.actor = s,
                           .action = s,
                           .target = s,
                           .endpoint = s,
                           .server = s,
                           .tool = s,
                           .result = s,
                           .ip = s,
                           .request_id = s,
                           .detail = d};
    assert_int_equal(tk_audit_append(a, &ev), TK_OK);
    tk_audit_close(a);
    char *path = segment_path(f);
    size_t len;
    char *buf = slurp(path, &len);
    assert_null(strstr(buf, secret));
    assert_null(strstr(buf, "not-registered-but-named-token"));
    assert_non_null(strstr(buf, TK_MASK));
    assert_true(verify(f).ok);
    tk_mask_reset();
    json_decref(d);
    free(buf);
    free(path);
    free(s);
}

/* The writer builds its line without the codec (fields straight from the
 * event, the detail dumped once): each line must decode, re-encode to the
 * same bytes with the codec, carry the MAC the codec computes, and hold the
 * cleaned values (cut at 1024 bytes, invalid UTF-8 as '?', a large detail
 * as a note of its size, a secret-named member masked). */
static void test_writer_matches_codec(void **state)
{
    fixture_t *f = *state;
    tk_audit_t *a = open_trail(f);
    char *longs = tk_malloc(3000);
    memset(longs, 'x', 2999);
    longs[2999] = '\0';
    longs[1023] = '\xc3'; /* a 2-byte character across the cut: dropped whole */
    longs[1024] = '\xa9';
    char *big = tk_malloc(40000);
    memset(big, 'y', 39999);
    big[39999] = '\0';
    json_t *large = json_pack("{s:s}", "blob", big);
    char *large_text = json_dumps(large, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *named = json_pack("{s:s, s:[i, s, n, b], s:{}}", "api_token", "plain-value", "list", 7,
                              "tab\there", 1, "empty");
    json_t *jansson_only = json_pack("{s:f}", "real", 0.25); /* and 40 members: left to jansson */
    for (int i = 0; i < 40; i++) {
        char k[8];
        tk_snprintf(k, sizeof(k), "k%d", i);
        json_object_set_new(jansson_only, k, json_integer(i));
    }
    tk_audit_event_t evs[] = {
        {.action = "a", .actor = "quote \" back \\ ctl \x01 del \x7f", .tool = "bad \xff\xfe utf8"},
        {.action = "b", .target = longs, .status = 1000, .latency_us = -5, .detail = named},
        {.action = "c", .request_id = "caf\xc3\xa9", .detail = large},
        {.action = NULL, .ip = "::1", .status = 204, .latency_us = 1, .detail = jansson_only},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        assert_int_equal(tk_audit_append(a, &evs[i]), TK_OK);
    tk_audit_close(a);
    char *path = segment_path(f);
    size_t len;
    char *buf = slurp(path, &len);
    tk_audit_record_t r[4];
    char *line = buf;
    for (size_t i = 0; i < 4; i++) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        const char *why = NULL;
        assert_int_equal(tk_audit_record_decode(line, (size_t)(end - line), &r[i], &why), TK_OK);
        size_t n;
        char *again = tk_audit_record_encode(&r[i], &n);
        assert_int_equal(n, (size_t)(end - line));
        assert_memory_equal(again, line, n);
        free(again);
        assert_true(tk_audit_record_mac_ok(&r[i], KEY, sizeof(KEY)));
        assert_int_equal(r[i].seq, i + 1);
        line = end + 1;
    }
    assert_int_equal((size_t)(line - buf), len);
    assert_string_equal(r[0].actor, "quote \" back \\ ctl \x01 del \x7f");
    assert_string_equal(r[0].tool, "bad ?? utf8");
    assert_int_equal(strlen(r[1].target), 1023);
    assert_null(r[1].server);
    assert_int_equal(r[1].status, 0);
    assert_int_equal(r[1].latency_us, 0);
    assert_string_equal(json_string_value(json_object_get(r[1].detail, "api_token")), TK_MASK);
    assert_int_equal(json_array_size(json_object_get(r[1].detail, "list")), 4);
    assert_true(json_is_true(json_object_get(r[2].detail, "truncated")));
    assert_int_equal(json_integer_value(json_object_get(r[2].detail, "bytes")),
                     (json_int_t)strlen(large_text));
    assert_string_equal(r[3].action, "unknown");
    assert_int_equal(json_object_size(r[3].detail), 41);
    assert_int_equal(r[3].status, 204);
    assert_true(verify(f).ok);
    for (size_t i = 0; i < 4; i++)
        tk_audit_record_clear(&r[i]);
    json_decref(large);
    json_decref(named);
    json_decref(jansson_only);
    free(large_text);
    free(big);
    free(longs);
    free(buf);
    free(path);
}

/* tk_audit_buf_detail writes what json_dumps(COMPACT | SORT_KEYS) writes
 * (the canonical form's detail is defined as jansson's output), or refuses
 * and leaves the object to jansson. */
static void check_detail(json_t *d)
{
    char *want = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    tk_audit_buf_t b = {0};
    tk_audit_buf_add(&b, "x", 1);
    int rc = tk_audit_buf_detail(&b, d);
    if (rc == TK_OK) {
        assert_non_null(want);
        assert_string_equal(b.p + 1, want);
    } else {
        assert_int_equal(b.len, 1);
    }
    tk_audit_buf_free(&b);
    free(want);
}

static json_t *random_value(uint32_t *seed, int depth)
{
    *seed = *seed * 1103515245u + 12345u;
    uint32_t r = *seed >> 8;
    static const char *const strs[] = {"", "a", "B", "_", "aa", "a\x7f", "caf\xc3\xa9",
                                       "\xf0\x9f\x98\x80", "q\"b\\s/", "\x01\x1f\b\f\n\r\t",
                                       "\xe2\x80\xa8", "z"};
    const size_t ns = sizeof(strs) / sizeof(strs[0]);
    switch (depth > 4 ? r % 5 : r % 7) {
    case 0:
        return json_string(strs[r / 7 % ns]);
    case 1:
        return json_integer((json_int_t)(r % 2 ? r : 0 - (json_int_t)r));
    case 2:
        return r % 2 ? json_true() : json_false();
    case 3:
        return json_null();
    case 4:
        return json_stringn("n\0ul", 4);
    case 5: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < r % 4; i++)
            json_array_append_new(a, random_value(seed, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (uint32_t i = 0; i < r % 6; i++)
            json_object_set_new(o, strs[(r + i * 5) % ns], random_value(seed, depth + 1));
        return o;
    }
    }
}

static void test_detail_like_jansson(void **state)
{
    (void)state;
    char one[2] = {0, 0};
    json_t *bytes = json_object();
    for (int c = 1; c < 0x80; c++) {
        one[0] = (char)c;
        json_object_set_new(bytes, one, json_string(one));
    }
    check_detail(bytes);
    json_decref(bytes);
    json_t *ints = json_pack("{s:I, s:I, s:I, s:I, s:{}, s:[], s:n}", "min", (json_int_t)INT64_MIN,
                             "max", (json_int_t)INT64_MAX, "zero", (json_int_t)0, "neg",
                             (json_int_t)-42, "o", "a", "nil");
    check_detail(ints);
    json_decref(ints);
    json_t *real = json_pack("{s:f}", "r", 0.1);
    tk_audit_buf_t b = {0};
    json_t *many = json_object();
    for (int i = 0; i < 40; i++) {
        char k[8];
        tk_snprintf(k, sizeof(k), "k%d", i);
        json_object_set_new(many, k, json_integer(i));
    }
    assert_int_equal(tk_audit_buf_detail(&b, many), TK_EINVAL); /* refused before any byte */
    assert_int_equal(b.len, 0);
    json_decref(many);
    assert_int_equal(tk_audit_buf_detail(&b, real), TK_EINVAL);
    json_decref(real);
    json_t *bad = json_object();
    json_object_set_new(bad, "s", json_stringn_nocheck("\xff", 1));
    assert_int_equal(tk_audit_buf_detail(&b, bad), TK_EINVAL);
    json_decref(bad);
    tk_audit_buf_free(&b);
    uint32_t seed = 7;
    for (int i = 0; i < 2000; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "v", random_value(&seed, 0));
        json_object_set_new(o, "w", random_value(&seed, 0));
        check_detail(o);
        json_decref(o);
    }
}

static void test_segment_file_modes(void **state)
{
    fixture_t *f = *state;
    tk_audit_t *a = open_trail(f);
    append_n(a, 1, "key:k1");
    tk_audit_close(a);
    char *path = segment_path(f);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(path);
}

/* Rejections are counted in memory and written as one record per bucket
 * (here by close, which flushes what the worker has not written yet). */
static void test_ratelimit_aggregated(void **state)
{
    fixture_t *f = *state;
    tk_audit_opts_t o = {.dir = f->dir,
                         .key = KEY,
                         .keylen = sizeof(KEY),
                         .retention_days = 30,
                         .fsync_interval_ms = 50,
                         .worker = 1};
    tk_audit_t *a = NULL;
    char err[256];
    assert_int_equal(tk_audit_open(&o, &a, err, sizeof(err)), TK_OK);
    for (int i = 0; i < 5; i++)
        tk_audit_note_ratelimit(a, "ip:192.0.2.7");
    tk_audit_note_ratelimit(a, "key:abc");
    tk_audit_close(a);
    char *path = segment_path(f);
    size_t len;
    char *buf = slurp(path, &len);
    assert_non_null(strstr(buf, "\"actor\":\"ip:192.0.2.7\",\"action\":\"ratelimit.reject\""));
    assert_non_null(strstr(buf, "{\"count\":5,\"window_s\":10}"));
    assert_non_null(strstr(buf, "{\"count\":1,\"window_s\":10}"));
    tk_audit_verify_t v = verify(f);
    assert_true(v.ok);
    assert_int_equal(v.records, 2);
    free(buf);
    free(path);
}

/* ---- asynchronous appends (tk_audit_submit) ---- */

#define SUB_THREADS 2
#define SUB_EACH 300
#define SUB_SYNC 50

typedef struct done_slot {
    int calls;
    int rc;
    int on_loop; /* the callback ran on the thread that runs the loop */
} done_slot_t;

static pthread_t loop_thread;

static void on_done(void *arg, int rc)
{
    done_slot_t *s = arg;
    s->calls++;
    s->rc = rc;
    s->on_loop = pthread_equal(pthread_self(), loop_thread);
}

static int submit_one(tk_audit_t *a, const char *actor, int i, json_t *extra, done_slot_t *slot)
{
    char rid[32];
    tk_snprintf(rid, sizeof(rid), "r-%d", i);
    json_t *d = extra ? json_incref(extra) : json_pack("{s:i}", "i", i);
    tk_audit_event_t ev = {.actor = actor,
                           .action = "tool.call",
                           .endpoint = "default",
                           .tool = "echo__echo",
                           .result = "ok",
                           .status = 200,
                           .latency_us = 10 + i,
                           .request_id = rid,
                           .detail = d};
    int rc = tk_audit_submit(a, &ev, on_done, slot);
    json_decref(d);
    return rc;
}

typedef struct submitter {
    tk_audit_t *a;
    char actor[16];
    done_slot_t slots[SUB_EACH];
    int failed; /* submissions refused */
} submitter_t;

static void *submit_thread(void *arg)
{
    submitter_t *s = arg;
    for (int i = 0; i < SUB_EACH; i++) {
        if (submit_one(s->a, s->actor, i, NULL, &s->slots[i]) != TK_OK)
            s->failed++;
        if (i % 16 == 0)
            sched_yield();
    }
    return NULL;
}

static int count_slots(const done_slot_t *s, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += s[i].calls;
    return c;
}

/* Run the loop until every slot had its completion or 10 s passed. */
static void run_until(struct event_base *base, const done_slot_t *slots, int n)
{
    uint64_t deadline = tk_now_ms() + 10000;
    while (count_slots(slots, n) < n && tk_now_ms() < deadline) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(500);
    }
}

/* Each slot's callback ran exactly once, with rc, on the loop's thread. */
static void assert_slots(const done_slot_t *slots, int n, int rc)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(slots[i].calls, 1);
        assert_int_equal(slots[i].rc, rc);
        assert_true(slots[i].on_loop);
    }
}

/* Close a and free base, then f's trail must hold exactly records. */
static tk_audit_verify_t close_and_verify(const fixture_t *f, tk_audit_t *a,
                                          struct event_base *base, uint64_t records)
{
    tk_audit_close(a);
    event_base_free(base);
    tk_audit_verify_t v = verify(f);
    assert_true(v.ok);
    assert_int_equal(v.records, records);
    assert_int_equal(v.last_seq, records);
    return v;
}

/* A trail in f with a loop attached (*base, made here). */
static tk_audit_t *open_attached(const fixture_t *f, struct event_base **base)
{
    *base = event_base_new();
    loop_thread = pthread_self();
    tk_audit_t *a = open_trail(f);
    assert_int_equal(tk_audit_attach_loop(a, *base), TK_OK);
    return a;
}

/* Per actor, the "i" of its records in file order; seq must run 1..N. */
typedef struct order {
    int next[SUB_THREADS + 1]; /* expected next i per actor (t0, t1, main) */
    int bad;
    uint64_t seq;
} order_t;

static int check_order(void *arg, const tk_audit_record_t *r, const char *line, size_t len)
{
    order_t *o = arg;
    (void)line;
    (void)len;
    if (r->seq != ++o->seq)
        o->bad++;
    int who = strcmp(r->actor, "t0") == 0 ? 0 : strcmp(r->actor, "t1") == 0 ? 1 : 2;
    json_int_t i = json_integer_value(json_object_get(r->detail, "i"));
    if (i != o->next[who]++)
        o->bad++;
    return 0;
}

static void test_submit_threads_and_sync(void **state)
{
    fixture_t *f = *state;
    struct event_base *base;
    tk_audit_t *a = open_attached(f, &base);
    assert_int_equal(tk_audit_attach_loop(a, base), TK_ESTATE);
    submitter_t *subs = tk_calloc(SUB_THREADS, sizeof(*subs));
    pthread_t th[SUB_THREADS];
    for (int t = 0; t < SUB_THREADS; t++) {
        subs[t].a = a;
        tk_snprintf(subs[t].actor, sizeof(subs[t].actor), "t%d", t);
        assert_int_equal(pthread_create(&th[t], NULL, submit_thread, &subs[t]), 0);
    }
    /* synchronous appends from this thread interleave with the batches */
    for (int i = 0; i < SUB_SYNC; i++) {
        json_t *d = json_pack("{s:i}", "i", i);
        tk_audit_event_t ev = {.actor = "main", .action = "session.create", .detail = d};
        assert_int_equal(tk_audit_append(a, &ev), TK_OK);
        json_decref(d);
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    for (int t = 0; t < SUB_THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < SUB_THREADS; t++) {
        run_until(base, subs[t].slots, SUB_EACH);
        assert_int_equal(subs[t].failed, 0);
        assert_slots(subs[t].slots, SUB_EACH, TK_OK);
    }
    assert_true(tk_audit_ok(a));
    tk_audit_detach_loop(a);
    /* detached: refused, and its callback never runs */
    done_slot_t late = {0};
    assert_int_equal(submit_one(a, "t0", 0, NULL, &late), TK_ESTATE);
    tk_audit_close(a);
    assert_int_equal(late.calls, 0);
    for (int t = 0; t < SUB_THREADS; t++)
        assert_int_equal(count_slots(subs[t].slots, SUB_EACH), SUB_EACH);
    (void)close_and_verify(f, NULL, base, SUB_THREADS * SUB_EACH + SUB_SYNC);
    order_t o = {0};
    size_t skipped = 0;
    assert_int_equal(tk_audit_each(f->dir, NULL, NULL, check_order, &o, &skipped), TK_OK);
    assert_int_equal(skipped, 0);
    assert_int_equal(o.bad, 0);
    assert_int_equal(o.next[0], SUB_EACH);
    assert_int_equal(o.next[1], SUB_EACH);
    assert_int_equal(o.next[2], SUB_SYNC);
    free(subs);
}

/* A submission borrows the event only for the call: the caller may reuse
 * its strings and change and free its detail at once, before the writer
 * runs; fields longer than a submission's room take the heap. Every field
 * and the detail are masked: no secret reaches the file. */
typedef struct borrow_check {
    int n;
    int tool_ok, detail_ok, borrowed_ok;
    const char *long_tool;
} borrow_check_t;

static int check_borrowed(void *arg, const tk_audit_record_t *r, const char *line, size_t len)
{
    borrow_check_t *t = arg;
    (void)line;
    (void)len;
    t->n++;
    const char *nested = json_string_value(json_array_get(
        json_object_get(json_object_get(r->detail, "nested"), "k"), 0));
    if (r->seq == 1 && strcmp(r->actor, "x " TK_MASK " y") == 0 && nested &&
        strcmp(nested, TK_MASK) == 0)
        t->detail_ok = 1;
    if (r->seq == 2 && strcmp(r->tool, t->long_tool) == 0)
        t->tool_ok = 1;
    if (r->seq == 3 &&
        strcmp(json_string_value(json_object_get(r->detail, "arguments")), "x " TK_MASK " y") ==
            0 &&
        strcmp(r->request_id, "r-3") == 0)
        t->borrowed_ok = 1;
    return 0;
}

static void test_submit_borrows_only_for_the_call(void **state)
{
    fixture_t *f = *state;
    const char *secret = "Zq9-very-distinct-secret-77";
    assert_int_equal(tk_mask_add_secret(secret), TK_OK);
    struct event_base *base;
    tk_audit_t *a = open_attached(f, &base);
    char s[64], rid[16];
    tk_snprintf(s, sizeof(s), "x %s y", secret);
    tk_snprintf(rid, sizeof(rid), "r-1");
    done_slot_t slots[3] = {0};
    /* 1: every field and the detail carry the secret */
    json_t *d = json_pack("{s:s, s:{s:[s]}}", "arguments", s, "nested", "k", secret);
    tk_audit_event_t ev = {.actor = s, .action = "tool.call", .target = s, .endpoint = s,
                           .server = s, .tool = s, .result = s, .ip = s, .request_id = rid,
                           .detail = d};
    assert_int_equal(tk_audit_submit(a, &ev, on_done, &slots[0]), TK_OK);
    json_decref(d);
    /* 2: a field longer than a submission's room */
    char *tool = tk_malloc(800);
    memset(tool, 'a', 700);
    tk_snprintf(tool + 700, 100, "%s", secret);
    char *want = tk_asprintf("%.700s%s", tool, TK_MASK);
    ev = (tk_audit_event_t){.actor = "key:k", .action = "tool.call", .tool = tool};
    assert_int_equal(tk_audit_submit(a, &ev, on_done, &slots[1]), TK_OK);
    /* 3: a detail changed and freed right after the call */
    tk_snprintf(rid, sizeof(rid), "r-3");
    d = json_pack("{s:s}", "arguments", s);
    ev = (tk_audit_event_t){.actor = "key:k", .action = "tool.call", .request_id = rid,
                            .detail = d};
    assert_int_equal(tk_audit_submit(a, &ev, on_done, &slots[2]), TK_OK);
    json_object_set_new(d, "arguments", json_string("changed"));
    json_decref(d);
    /* the caller's buffers are reused before the writer gets to them */
    memset(s, 'z', sizeof(s) - 1);
    memset(tool, 'b', 799);
    tool[799] = '\0';
    tk_snprintf(rid, sizeof(rid), "r-9");
    run_until(base, slots, 3);
    assert_slots(slots, 3, TK_OK);
    (void)close_and_verify(f, a, base, 3);
    char *path = segment_path(f);
    size_t len;
    char *buf = slurp(path, &len);
    assert_null(strstr(buf, secret));
    assert_null(strstr(buf, "changed"));
    assert_null(strstr(buf, "zzz"));
    borrow_check_t t = {.long_tool = want};
    size_t skipped = 0;
    assert_int_equal(tk_audit_each(f->dir, NULL, NULL, check_borrowed, &t, &skipped), TK_OK);
    assert_int_equal(t.n, 3);
    assert_int_equal(skipped, 0);
    assert_true(t.detail_ok);
    assert_true(t.tool_ok);
    assert_true(t.borrowed_ok);
    tk_mask_reset();
    free(want);
    free(tool);
    free(buf);
    free(path);
}

/* tk_audit_close with records still queued writes them and runs every
 * callback. */
static void test_submit_close_completes(void **state)
{
    fixture_t *f = *state;
    struct event_base *base;
    tk_audit_t *a = open_attached(f, &base);
    done_slot_t slots[100] = {0};
    for (int i = 0; i < 100; i++)
        assert_int_equal(submit_one(a, "t0", i, NULL, &slots[i]), TK_OK);
    tk_audit_close(a); /* the loop never ran */
    assert_slots(slots, 100, TK_OK);
    (void)close_and_verify(f, NULL, base, 100);
}

/* A record over TK_AUDIT_LINE_MAX fails alone: the others are written. */
static void test_submit_too_large_fails_alone(void **state)
{
    fixture_t *f = *state;
    struct event_base *base;
    tk_audit_t *a = open_attached(f, &base);
    /* control characters take 6 bytes each once escaped: 9 fields of
     * TK_AUDIT_FIELD_MAX of them and a 30 KB detail pass the line limit */
    char *ctl = tk_malloc(TK_AUDIT_FIELD_MAX + 1);
    memset(ctl, 1, TK_AUDIT_FIELD_MAX);
    ctl[TK_AUDIT_FIELD_MAX] = '\0';
    char *big = tk_malloc(5001);
    memset(big, 1, 5000);
    big[5000] = '\0';
    json_t *d = json_pack("{s:s}", "x", big);
    tk_audit_event_t huge = {.actor = ctl, .action = ctl, .target = ctl, .endpoint = ctl,
                             .server = ctl, .tool = ctl, .result = ctl, .ip = ctl,
                             .request_id = ctl, .detail = d};
    done_slot_t slots[3] = {0};
    assert_int_equal(submit_one(a, "t0", 0, NULL, &slots[0]), TK_OK);
    assert_int_equal(tk_audit_submit(a, &huge, on_done, &slots[1]), TK_OK);
    assert_int_equal(submit_one(a, "t0", 1, NULL, &slots[2]), TK_OK);
    run_until(base, slots, 3);
    assert_int_equal(slots[0].rc, TK_OK);
    assert_int_equal(slots[1].rc, TK_EIO);
    assert_int_equal(slots[2].rc, TK_OK);
    assert_int_equal(tk_audit_failures(a), 1);
    json_decref(d);
    free(big);
    free(ctl);
    (void)close_and_verify(f, a, base, 2);
}

/* Writes that fail (a file-size limit, SIGXFSZ ignored, as on a full disk)
 * fail every record of their batch; the next record continues the chain
 * past what the short write left, once writes work. */
static void test_submit_write_fails(void **state)
{
    fixture_t *f = *state;
    struct event_base *base;
    tk_audit_t *a = open_attached(f, &base);
    append_n(a, 1, "key:a");
    char *path = segment_path(f);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 200; /* room for part of one record */
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    done_slot_t slots[20] = {0};
    for (int i = 0; i < 20; i++)
        assert_int_equal(submit_one(a, "t0", i, NULL, &slots[i]), TK_OK);
    run_until(base, slots, 20);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    assert_slots(slots, 20, TK_EIO);
    assert_false(tk_audit_ok(a));
    assert_int_equal(tk_audit_failures(a), 20);
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, (off_t)lim.rlim_cur); /* the short write filled it */

    done_slot_t again = {0};
    assert_int_equal(submit_one(a, "t0", 20, NULL, &again), TK_OK);
    run_until(base, &again, 1);
    assert_slots(&again, 1, TK_OK);
    assert_true(tk_audit_ok(a));
    free(path);
    tk_audit_verify_t v = close_and_verify(f, a, base, 2);
    assert_int_equal(v.torn, 1);
    assert_int_equal(v.truncated_tail, 0);
}

static void test_verify_buf_garbage(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "", "\n", "{}\n", "not json", "{\"seq\":1}\n{", "\n\n\n\xff\xfe"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        tk_audit_verify_t v;
        tk_audit_verify_buf("buf", inputs[i], strlen(inputs[i]), KEY, sizeof(KEY), &v);
        assert_int_equal(v.records, 0);
        if (i == 0)
            assert_true(v.ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_canonical_form),
        cmocka_unit_test(test_non_canonical_refused),
        cmocka_unit_test_setup_teardown(test_verify_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flip_each_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_duplicate_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles_alternate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_refuses_broken_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_masked_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_matches_codec, setup, teardown),
        cmocka_unit_test(test_detail_like_jansson),
        cmocka_unit_test_setup_teardown(test_segment_file_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_aggregated, setup, teardown),
        cmocka_unit_test(test_verify_buf_garbage),
        cmocka_unit_test_setup_teardown(test_submit_threads_and_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_borrows_only_for_the_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_close_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_too_large_fails_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_write_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
