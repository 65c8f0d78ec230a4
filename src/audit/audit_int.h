/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to src/audit: segment names, the anchor file and reading lines,
 * shared by the writer (audit.c), the verifier (verify.c) and the command
 * line (cli.c).
 */
#ifndef TK_AUDIT_INT_H
#define TK_AUDIT_INT_H

#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "audit/audit.h"

#define TK_AUDIT_SEG_PREFIX "audit-"
#define TK_AUDIT_SEG_SUFFIX ".jsonl"
#define TK_AUDIT_SEG_NAME_LEN 20 /* "audit-YYYYMMDD.jsonl" */
#define TK_AUDIT_ANCHOR "anchor.json"
#define TK_AUDIT_LOCK "audit.lock"

/* A growing byte buffer for encoding records. It may start on caller
 * storage (p, cap set, heap 0) and moves to the heap when that is full;
 * {0} starts empty on the heap. p stays NUL-terminated. */
typedef struct tk_audit_buf {
    char *p;
    size_t len, cap;
    int heap; /* p was allocated here */
} tk_audit_buf_t;

/* Room for n more bytes and the NUL. */
void tk_audit_buf_grow(tk_audit_buf_t *b, size_t n);

static inline void tk_audit_buf_add(tk_audit_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap)
        tk_audit_buf_grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* The decimal digits of v. */
void tk_audit_buf_u64(tk_audit_buf_t *b, uint64_t v);
/* n bytes of s as a JSON string in the canonical form (docs/audit.md). */
void tk_audit_buf_string(tk_audit_buf_t *b, const char *s, size_t n);
void tk_audit_buf_free(tk_audit_buf_t *b);
/* The object d exactly as json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS)
 * writes it, without its allocations. TK_EINVAL (b unchanged) for what it
 * leaves to jansson: reals, more than 32 members or levels, NUL in a member
 * name, invalid UTF-8. */
int tk_audit_buf_detail(tk_audit_buf_t *b, const json_t *d) TK_WUR;
/* A field's value as recorded: the canonical string of s cut to
 * TK_AUDIT_FIELD_MAX bytes on a character boundary, each byte of invalid
 * UTF-8 replaced by '?'. */
void tk_audit_buf_field(tk_audit_buf_t *b, const char *s, size_t len);
/* Length of the valid UTF-8 sequence at p (0 if invalid). */
size_t tk_audit_utf8_len(const unsigned char *p);

/* Segment file names in dir, oldest first (heap array of heap strings). */
int tk_audit_segments(const char *dir, char ***names, size_t *n) TK_WUR;
void tk_audit_segments_free(char **names, size_t n);
/* "YYYYMMDD" of a segment name into day (a number comparable by order). */
unsigned tk_audit_segment_day(const char *name);
/* The segment name for a UTC time. */
void tk_audit_segment_name(time_t t, char *out, size_t len);

/* The anchor: seq and mac of the last purged record. */
typedef struct tk_audit_anchor {
    uint64_t seq;
    unsigned char mac[TK_AUDIT_MAC_LEN];
    char through[16]; /* last purged day, "YYYYMMDD" */
    char ts[32];      /* when it was written */
} tk_audit_anchor_t;

/* TK_OK, TK_ENOENT (no anchor), TK_EINVAL (malformed or MAC mismatch: why). */
int tk_audit_anchor_read(const char *dir, const unsigned char *key, size_t keylen,
                         tk_audit_anchor_t *an, const char **why) TK_WUR;
/* Write atomically (tmp, fsync, rename, fsync dir). */
int tk_audit_anchor_write(const char *dir, const unsigned char *key, size_t keylen,
                          const tk_audit_anchor_t *an) TK_WUR;

/* The last decodable record of a segment (scanning back from its end). TK_ENOENT if none. */
int tk_audit_last_record(const char *path, tk_audit_record_t *r) TK_WUR;

/* Read one line of at most TK_AUDIT_LINE_MAX bytes (longer lines are
 * returned cut, with *terminated telling whether a newline ended it).
 * Returns the length, or -1 at end of file. */
ssize_t tk_audit_read_line(FILE *f, char **line, size_t *cap, int *terminated);

/* Verify the given segments of dir (oldest first), from its anchor. */
int tk_audit_verify_segments(const char *dir, const unsigned char *key, size_t keylen,
                             char *const *names, size_t n, tk_audit_verify_t *v) TK_WUR;

/* The key (up to 256 bytes into key) and directory (heap) of cfg's trail.
 * create: make <data_dir>/audit.key when missing (else TK_ENOENT). */
int tk_audit_config_key(const tk_config_t *cfg, int create, unsigned char *key, size_t *keylen,
                        char **dir, char *err, size_t errlen) TK_WUR;

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for a wall-clock time in ms. */
void tk_audit_format_ts(int64_t ms, char *out, size_t len);

#endif
