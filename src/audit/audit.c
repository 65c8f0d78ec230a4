/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit writer: masks and encodes an event, chains it to the last
 * record and writes the whole line with one write(2) on an O_APPEND
 * descriptor before returning (so an answered request's record survives a
 * crash), under a mutex (threads) and flock on audit.lock (processes). A
 * worker thread batches fsync, writes the aggregated rate-limit rejections,
 * retries after a failed write and runs the retention purge. Asynchronous
 * appends (tk_audit_submit) are encoded by the caller, queued, and written
 * in batches by a writer thread, one write(2) per batch; their completions
 * go back to the submitting loop through a mailbox.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/keyfile.h"
#include "core/mailbox.h"
#include "core/mask.h"

#define MOD "audit"
#define RATE_SLOTS 256
#define PURGE_EVERY_S 3600
#define BATCH_MAX 256 /* records per write(2) of the writer thread (<= IOV_MAX) */

typedef struct sub sub_t;

typedef struct rate_slot {
    char key[96];
    uint64_t count;
} rate_slot_t;

struct tk_audit {
    char *dir;
    unsigned char key[256];
    size_t keylen;
    uint32_t retention_days;
    uint32_t fsync_ms;
    atomic_int log_args, log_results;
    pthread_mutex_t mu; /* everything below up to the worker */
    int lockfd;
    int fd; /* current segment, -1 if none */
    char seg[32];
    ino_t ino;
    off_t size; /* the segment's size after this process's last write */
    int have_state;
    uint64_t seq;
    unsigned char mac[TK_AUDIT_MAC_LEN];
    char mac_hex[2 * TK_AUDIT_MAC_LEN + 1]; /* mac in hex, the next record's "prev" */
    EVP_MAC_CTX *hmac;  /* keyed once: HMAC-SHA256 with the trail's key */
    time_t seg_sec;     /* a second that belongs to the segment seg */
    int64_t ts_sec;     /* the second ts_prefix is for */
    char ts_prefix[24]; /* "YYYY-MM-DDTHH:MM:SS." */
    int dirty; /* written since the last fsync */
    atomic_int ok;
    atomic_ulong failures;
    /* worker */
    int worker;
    pthread_t thread;
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    int stop;
    rate_slot_t rates[RATE_SLOTS];
    size_t nrates;
    uint64_t rates_other;
    /* asynchronous appends: submissions queue here for the writer thread,
     * whose completions are posted to mb (delivered on the attached loop) */
    pthread_mutex_t qmu;
    pthread_cond_t qcv; /* the writer: work queued, or stop */
    sub_t *qhead, *qtail; /* under qmu */
    int accepting;        /* under qmu: a loop is attached and not detaching */
    int wstop;            /* under qmu: the writer ends once the queue is empty */
    tk_mailbox_t *mb;     /* NULL: no loop attached */
    pthread_t writer;
    /* submissions made on the loop's own thread wake the writer once per
     * loop iteration, from this event, so that they form one batch */
    pthread_t loop_thread;
    struct event *kick;
    int kick_pending; /* the loop's thread only */
};

static _Atomic(tk_audit_t *) g_audit;

void tk_audit_set_global(tk_audit_t *a)
{
    atomic_store(&g_audit, a);
}

tk_audit_t *tk_audit_global(void)
{
    return atomic_load(&g_audit);
}

int tk_audit_ok(const tk_audit_t *a)
{
    return a == NULL || atomic_load(&((tk_audit_t *)a)->ok);
}

uint64_t tk_audit_failures(const tk_audit_t *a)
{
    return a ? atomic_load(&((tk_audit_t *)a)->failures) : 0;
}

int tk_audit_log_arguments(const tk_audit_t *a)
{
    return a && atomic_load(&((tk_audit_t *)a)->log_args);
}

int tk_audit_log_results(const tk_audit_t *a)
{
    return a && atomic_load(&((tk_audit_t *)a)->log_results);
}

void tk_audit_set_logging(tk_audit_t *a, int arguments, int results)
{
    atomic_store(&a->log_args, arguments != 0);
    atomic_store(&a->log_results, results != 0);
}

/* ---- preparing a record ---- */

/* key (",\"name\":") and the cleaned value of s, or null; masked first
 * when masking may change it (mask), else encoded from s itself, without a
 * copy. */
static void put_field(tk_audit_buf_t *b, const char *key, const char *s, int mask)
{
    tk_audit_buf_add(b, key, strlen(key));
    if (s == NULL) {
        tk_audit_buf_add(b, "null", 4);
        return;
    }
    if (!mask) {
        tk_audit_buf_field(b, s, strlen(s));
        return;
    }
    char *m = tk_mask_str(s);
    tk_audit_buf_field(b, m, strlen(m));
    free(m);
}

static void put_int(tk_audit_buf_t *b, const char *key, int64_t v)
{
    tk_audit_buf_add(b, key, strlen(key));
    if (v > 0)
        tk_audit_buf_u64(b, (uint64_t)v);
    else
        tk_audit_buf_add(b, "null", 4);
}

/* json_dump_callback into the buffer, up to TK_AUDIT_DETAIL_MAX bytes;
 * beyond that only counted. */
typedef struct detail_sink {
    tk_audit_buf_t *b;
    size_t total;
} detail_sink_t;

static int detail_cb(const char *p, size_t n, void *arg)
{
    detail_sink_t *d = arg;
    if (d->total + n <= TK_AUDIT_DETAIL_MAX)
        tk_audit_buf_add(d->b, p, n);
    d->total += n;
    return 0;
}

/* The masked detail in jansson's compact, key-sorted form; a detail that
 * masking cannot change is dumped as it is, without the copy. Larger than
 * TK_AUDIT_DETAIL_MAX: {"bytes":N,"truncated":true}. */
static void put_detail(tk_audit_buf_t *b, json_t *d)
{
    tk_audit_buf_add(b, ",\"detail\":", 10);
    if (d == NULL || !json_is_object(d)) {
        tk_audit_buf_add(b, "null", 4);
        return;
    }
    json_t *copy = NULL;
    if (tk_mask_json_may_change(d)) {
        copy = json_deep_copy(d);
        tk_mask_json(copy);
        d = copy;
    }
    size_t at = b->len;
    if (d != NULL && tk_audit_buf_detail(b, d) == TK_OK && b->len - at <= TK_AUDIT_DETAIL_MAX) {
        json_decref(copy);
        return;
    }
    b->len = at;
    detail_sink_t sink = {.b = b};
    int rc = d ? json_dump_callback(d, detail_cb, &sink, JSON_COMPACT | JSON_SORT_KEYS) : -1;
    json_decref(copy);
    if (rc == 0 && sink.total <= TK_AUDIT_DETAIL_MAX)
        return;
    b->len = at;
    b->p[at] = '\0';
    if (rc != 0) {
        tk_audit_buf_add(b, "null", 4);
        return;
    }
    tk_audit_buf_add(b, "{\"bytes\":", 9);
    tk_audit_buf_u64(b, sink.total);
    tk_audit_buf_add(b, ",\"truncated\":true}", 18);
}

/* Room before a record's fields for what only the chain knows: "\n" (after
 * an unfinished line), {"seq":N,"ts":"..." */
#define HEAD_ROOM 64

/* A record being written: its line is built in b, in storage the caller
 * gives (the stack, or a submission's own room) up to its size. */
typedef struct enc {
    tk_audit_buf_t b;
    size_t start; /* where the line starts in b (HEAD_ROOM until sealed) */
} enc_t;

/* Everything from "actor" to "detail", masked, after HEAD_ROOM bytes, into
 * room (cap bytes) or the heap past that. Runs outside the locks. */
static void encode_fields(enc_t *e, char *room, size_t cap, const tk_audit_event_t *ev)
{
    e->b = (tk_audit_buf_t){.p = room, .cap = cap};
    e->b.len = HEAD_ROOM;
    e->start = HEAD_ROOM;
    tk_audit_buf_t *b = &e->b;
    const char *f[] = {ev->actor,  ev->action ? ev->action : "unknown",
                       ev->target, ev->endpoint,
                       ev->server, ev->tool,
                       ev->result, ev->ip,
                       ev->request_id};
    unsigned m = tk_mask_may_change_each(f, sizeof(f) / sizeof(f[0]));
    put_field(b, ",\"actor\":", f[0], m & 1u);
    put_field(b, ",\"action\":", f[1], m & 2u);
    put_field(b, ",\"target\":", f[2], m & 4u);
    put_field(b, ",\"endpoint\":", f[3], m & 8u);
    put_field(b, ",\"server\":", f[4], m & 16u);
    put_field(b, ",\"tool\":", f[5], m & 32u);
    put_field(b, ",\"result\":", f[6], m & 64u);
    put_int(b, ",\"status\":", ev->status > 0 && ev->status < 1000 ? ev->status : 0);
    put_int(b, ",\"latency_us\":", ev->latency_us);
    put_field(b, ",\"ip\":", f[7], m & 128u);
    put_field(b, ",\"request_id\":", f[8], m & 256u);
    put_detail(b, ev->detail);
}

/* ---- the chain state ---- */

/* The head of the chain from the files: the newest segment's last record,
 * else the anchor, else the start. Called with the flock held. */
static int load_state(tk_audit_t *a)
{
    char **names;
    size_t n;
    if (tk_audit_segments(a->dir, &names, &n) != TK_OK)
        return TK_EIO;
    int rc = TK_ENOENT;
    for (size_t i = n; i > 0 && rc == TK_ENOENT; i--) {
        char *path = tk_asprintf("%s/%s", a->dir, names[i - 1]);
        tk_audit_record_t r;
        rc = tk_audit_last_record(path, &r);
        free(path);
        if (rc == TK_OK) {
            a->seq = r.seq;
            memcpy(a->mac, r.mac, sizeof(a->mac));
            tk_audit_record_clear(&r);
        }
    }
    tk_audit_segments_free(names, n);
    if (rc == TK_ENOENT) {
        tk_audit_anchor_t an;
        const char *why;
        rc = tk_audit_anchor_read(a->dir, a->key, a->keylen, &an, &why);
        a->seq = rc == TK_OK ? an.seq : 0;
        memcpy(a->mac, an.mac, sizeof(a->mac));
        if (rc != TK_OK)
            memset(a->mac, 0, sizeof(a->mac));
        rc = rc == TK_EIO ? TK_EIO : TK_OK;
    }
    a->have_state = rc == TK_OK;
    tk_hex_encode(a->mac, sizeof(a->mac), a->mac_hex);
    return rc;
}

/* Open the segment for now if it is not the current one. */
static int open_segment(tk_audit_t *a, time_t now)
{
    char name[32];
    if (a->fd >= 0 && now == a->seg_sec)
        return TK_OK;
    tk_audit_segment_name(now, name, sizeof(name));
    if (a->fd >= 0 && strcmp(name, a->seg) == 0) {
        a->seg_sec = now;
        return TK_OK;
    }
    char *path = tk_asprintf("%s/%s", a->dir, name);
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    free(path);
    if (fd < 0)
        return TK_EIO;
    if (a->fd >= 0)
        close(a->fd);
    a->fd = fd;
    tk_snprintf(a->seg, sizeof(a->seg), "%s", name);
    a->seg_sec = now;
    a->have_state = 0; /* the other segment's size says nothing about this one */
    return TK_OK;
}

/* With the locks held: make sure the in-memory head is the files' head.
 * *nl is set when the segment ends in an unfinished line (a crash during a
 * write): the next record then starts on a new line. */
static int sync_state(tk_audit_t *a, int *nl)
{
    struct stat st;
    *nl = 0;
    if (fstat(a->fd, &st) != 0)
        return TK_EIO;
    if (a->have_state && st.st_ino == a->ino && st.st_size == a->size)
        return TK_OK;
    if (st.st_size > 0) {
        char last = '\n';
        if (pread(a->fd, &last, 1, st.st_size - 1) != 1)
            return TK_EIO;
        *nl = last != '\n';
    }
    a->ino = st.st_ino;
    a->size = st.st_size;
    return load_state(a);
}

static int write_all(int fd, const char *p, size_t n)
{
    ssize_t w = write(fd, p, n);
    if (w == (ssize_t)n)
        return TK_OK;
    if (w >= 0)
        errno = ENOSPC;
    return TK_EIO;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for ms, the part before the milliseconds
 * formatted once per second. */
static void format_ts(tk_audit_t *a, int64_t ms, char *out, size_t len)
{
    int64_t sec = ms / 1000;
    if (sec != a->ts_sec || a->ts_prefix[0] == '\0') {
        char full[32];
        tk_audit_format_ts(sec * 1000, full, sizeof(full));
        char *dot = strrchr(full, '.');
        tk_snprintf(a->ts_prefix, sizeof(a->ts_prefix), "%.*s", dot ? (int)(dot - full + 1) : 0,
                    full);
        a->ts_sec = sec;
    }
    size_t n = strlen(a->ts_prefix);
    int m = (int)(ms % 1000);
    if (n + 5 > len) {
        tk_audit_format_ts(ms, out, len);
        return;
    }
    memcpy(out, a->ts_prefix, n);
    out[n] = (char)('0' + m / 100);
    out[n + 1] = (char)('0' + m / 10 % 10);
    out[n + 2] = (char)('0' + m % 10);
    out[n + 3] = 'Z';
    out[n + 4] = '\0';
}

/* ,"<name>":"<64 hex>" */
static void put_mac(tk_audit_buf_t *b, const char *key, const char *hex)
{
    tk_audit_buf_add(b, key, strlen(key));
    tk_audit_buf_add(b, "\"", 1);
    tk_audit_buf_add(b, hex, 2 * TK_AUDIT_MAC_LEN); /* hex needs no escapes */
    tk_audit_buf_add(b, "\"", 1);
}

/* mac = HMAC(key, prev || line + "}") with the handle's keyed context. */
static int seal(tk_audit_t *a, const char *line, size_t len, unsigned char *mac)
{
    size_t n = 0;
    return EVP_MAC_init(a->hmac, NULL, 0, NULL) == 1 &&
                   EVP_MAC_update(a->hmac, a->mac, sizeof(a->mac)) == 1 &&
                   EVP_MAC_update(a->hmac, (const unsigned char *)line, len) == 1 &&
                   EVP_MAC_update(a->hmac, (const unsigned char *)"}", 1) == 1 &&
                   EVP_MAC_final(a->hmac, mac, &n, TK_AUDIT_MAC_LEN) == 1 &&
                   n == TK_AUDIT_MAC_LEN
               ? TK_OK
               : TK_EIO;
}

/* Put the head ({"seq":N,"ts":"...", after a newline when nl) in front of
 * the fields and the chain's tail (prev, mac) after them. */
static int seal_line(tk_audit_t *a, enc_t *e, uint64_t seq, const char *ts, int nl,
                     unsigned char *mac, char *mac_hex)
{
    char room[HEAD_ROOM] = {0}; /* 64 bytes; zeroed so no analyzer doubts the copy below */
    tk_audit_buf_t h = {.p = room, .cap = sizeof(room)};
    const char *open = &"\n{\"seq\":"[nl ? 0 : 1];
    tk_audit_buf_add(&h, open, strlen(open));
    tk_audit_buf_u64(&h, seq);
    tk_audit_buf_add(&h, ",\"ts\":", 6);
    tk_audit_buf_field(&h, ts, strlen(ts));
    if (h.heap || h.len > HEAD_ROOM) {
        tk_audit_buf_free(&h);
        return TK_EINVAL;
    }
    e->start = HEAD_ROOM - h.len;
    memcpy(e->b.p + e->start, room, h.len);
    put_mac(&e->b, ",\"prev\":", a->mac_hex);
    size_t body = e->start + (nl ? 1 : 0);
    if (seal(a, e->b.p + body, e->b.len - body, mac) != TK_OK)
        return TK_EIO;
    tk_hex_encode(mac, TK_AUDIT_MAC_LEN, mac_hex);
    put_mac(&e->b, ",\"mac\":", mac_hex);
    tk_audit_buf_add(&e->b, "}\n", 2);
    return TK_OK;
}

/* Chain, seal and write e. Called with a->mu held. */
static int append_locked(tk_audit_t *a, enc_t *e)
{
    if (flock(a->lockfd, LOCK_EX) != 0)
        return TK_EIO;
    int64_t ms = tk_wall_ms();
    int nl = 0;
    int rc = open_segment(a, (time_t)(ms / 1000));
    if (rc == TK_OK)
        rc = sync_state(a, &nl);
    char ts[32];
    unsigned char mac[TK_AUDIT_MAC_LEN];
    char mac_hex[2 * TK_AUDIT_MAC_LEN + 1];
    if (rc == TK_OK) {
        format_ts(a, ms, ts, sizeof(ts));
        rc = seal_line(a, e, a->seq + 1, ts, nl, mac, mac_hex);
    }
    if (rc == TK_OK) {
        size_t outlen = e->b.len - e->start;
        size_t reclen = outlen - (nl ? 1 : 0) - 1; /* without the newlines */
        rc = reclen >= TK_AUDIT_LINE_MAX ? TK_ELIMIT : write_all(a->fd, e->b.p + e->start, outlen);
        if (rc == TK_OK) {
            a->size += (off_t)outlen;
            a->seq++;
            memcpy(a->mac, mac, sizeof(a->mac));
            memcpy(a->mac_hex, mac_hex, sizeof(a->mac_hex));
            a->dirty = 1;
            if (a->fsync_ms == 0 && fdatasync(a->fd) != 0)
                rc = TK_EIO;
        } else {
            a->have_state = 0; /* a short write may have left a partial line */
        }
    }
    int saved = errno;
    (void)flock(a->lockfd, LOCK_UN);
    errno = saved;
    return rc;
}

int tk_audit_append(tk_audit_t *a, const tk_audit_event_t *ev)
{
    if (a == NULL)
        return TK_OK;
    enc_t e;
    char room[4096];
    encode_fields(&e, room, sizeof(room), ev);
    pthread_mutex_lock(&a->mu);
    int rc = append_locked(a, &e);
    int saved = errno;
    pthread_mutex_unlock(&a->mu);
    tk_audit_buf_free(&e.b);
    if (rc != TK_OK) {
        unsigned long n = atomic_fetch_add(&a->failures, 1) + 1;
        atomic_store(&a->ok, 0);
        tk_error(MOD, "AUDIT RECORD NOT WRITTEN (%s, action %s; %lu failures so far): %s", a->dir,
                 ev->action ? ev->action : "unknown", n,
                 rc == TK_ELIMIT ? "record too large" : strerror(saved));
        rc = TK_EIO;
    } else {
        atomic_store(&a->ok, 1);
    }
    return rc;
}

int tk_audit_emit(const tk_audit_event_t *ev)
{
    return tk_audit_append(tk_audit_global(), ev);
}

/* ---- asynchronous appends ---- */

/* One submission: its encoded line, then its outcome on the way back.
 * Sized so that a usual tool-call record (about 450 bytes sealed) fits in
 * its room and the whole stays in malloc's small per-thread caches. */
struct sub {
    tk_mail_t mail; /* first: posted to the loop's mailbox when written */
    sub_t *next;    /* in the queue */
    tk_audit_done_fn done;
    void *arg;
    int rc;
    char action[32]; /* for the log line if it fails */
    enc_t e;
    char room[1000 - 128];
};
_Static_assert(sizeof(struct sub) <= 1000, "a submission outgrew malloc's small sizes");

/* Runs on the attached loop: hand the outcome to its owner. */
static void deliver(void *arg, tk_mail_t *m)
{
    sub_t *s = (sub_t *)m;
    (void)arg;
    s->done(s->arg, s->rc);
    free(s);
}

/* With the locks held: seal v[0..n) in order onto the chain, each line
 * one iovec; a line over TK_AUDIT_LINE_MAX fails alone (TK_ELIMIT).
 * Returns how many lines went into iov. */
static size_t seal_batch(tk_audit_t *a, sub_t **v, size_t n, int64_t ms, int nl,
                         struct iovec *iov, size_t *total)
{
    char ts[32];
    size_t k = 0;
    format_ts(a, ms, ts, sizeof(ts));
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        enc_t *e = &v[i]->e;
        unsigned char mac[TK_AUDIT_MAC_LEN];
        char mac_hex[2 * TK_AUDIT_MAC_LEN + 1];
        v[i]->rc = seal_line(a, e, a->seq + 1, ts, nl, mac, mac_hex);
        size_t outlen = e->b.len - e->start;
        if (v[i]->rc == TK_OK && outlen - (nl ? 1 : 0) - 1 >= TK_AUDIT_LINE_MAX)
            v[i]->rc = TK_ELIMIT;
        if (v[i]->rc != TK_OK)
            continue;
        iov[k++] = (struct iovec){.iov_base = e->b.p + e->start, .iov_len = outlen};
        *total += outlen;
        a->seq++;
        memcpy(a->mac, mac, sizeof(a->mac));
        memcpy(a->mac_hex, mac_hex, sizeof(a->mac_hex));
        nl = 0;
    }
    return k;
}

/* Set the outcome rc of every record of v that went into the write. */
static void batch_fail(sub_t **v, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->rc == TK_OK)
            v[i]->rc = rc;
}

/* Chain, seal and write v[0..n) (n <= BATCH_MAX) with one write(2) under
 * one flock, as append_locked does for one record; each v[i]->rc is set.
 * On a failed write the chain head goes back to the files' (re-read next
 * time). Returns errno of a failure. */
static int write_batch(tk_audit_t *a, sub_t **v, size_t n)
{
    struct iovec iov[BATCH_MAX];
    pthread_mutex_lock(&a->mu);
    int rc = flock(a->lockfd, LOCK_EX) == 0 ? TK_OK : TK_EIO;
    int locked = rc == TK_OK, nl = 0;
    int64_t ms = tk_wall_ms();
    if (rc == TK_OK)
        rc = open_segment(a, (time_t)(ms / 1000));
    if (rc == TK_OK)
        rc = sync_state(a, &nl);
    int saved = rc == TK_OK ? 0 : errno;
    for (size_t i = 0; i < n && rc != TK_OK; i++)
        v[i]->rc = rc;
    if (rc == TK_OK) {
        uint64_t seq = a->seq;
        unsigned char mac[TK_AUDIT_MAC_LEN];
        memcpy(mac, a->mac, sizeof(mac));
        size_t total;
        size_t k = seal_batch(a, v, n, ms, nl, iov, &total);
        ssize_t w = k > 0 ? writev(a->fd, iov, (int)k) : 0;
        if (w == (ssize_t)total) {
            a->size += (off_t)total;
            a->dirty = a->dirty || k > 0;
            if (k > 0 && a->fsync_ms == 0 && fdatasync(a->fd) != 0) {
                saved = errno;
                batch_fail(v, n, TK_EIO);
            }
        } else {
            saved = w >= 0 ? ENOSPC : errno;
            batch_fail(v, n, TK_EIO);
            a->seq = seq;
            memcpy(a->mac, mac, sizeof(a->mac));
            tk_hex_encode(a->mac, sizeof(a->mac), a->mac_hex);
            /* a short write may have left part of the batch: the next
             * writer re-reads the head from the file and starts after the
             * unfinished line; whole records before it stay, although
             * their calls are refused (a record without an answer, never
             * an answer without a record) */
            a->have_state = 0;
        }
    }
    if (locked)
        (void)flock(a->lockfd, LOCK_UN);
    pthread_mutex_unlock(&a->mu);
    return saved;
}

/* The sync path's accounting for a written batch: failures counted and
 * logged (one line per batch), tk_audit_ok updated. */
static void batch_account(tk_audit_t *a, sub_t **v, size_t n, int err)
{
    size_t bad = 0, big = 0;
    const char *action = NULL;
    for (size_t i = 0; i < n; i++) {
        if (v[i]->rc == TK_OK)
            continue;
        bad++;
        big += v[i]->rc == TK_ELIMIT;
        if (action == NULL)
            action = v[i]->action;
        v[i]->rc = TK_EIO;
    }
    if (bad == 0) {
        atomic_store(&a->ok, 1);
        return;
    }
    unsigned long total = atomic_fetch_add(&a->failures, bad) + bad;
    atomic_store(&a->ok, 0);
    tk_error(MOD, "AUDIT RECORD NOT WRITTEN (%s, action %s; %lu failures so far; %zu of a batch "
                  "of %zu): %s",
             a->dir, action, total, bad, n, big == bad ? "record too large" : strerror(err));
}

/* Write a list taken from the queue, BATCH_MAX records per write, and post
 * every completion to the loop. */
static void write_list(tk_audit_t *a, sub_t *list)
{
    sub_t *v[BATCH_MAX];
    while (list != NULL) {
        size_t n = 0;
        while (list != NULL && n < BATCH_MAX) {
            v[n++] = list;
            list = list->next;
        }
        int err = write_batch(a, v, n);
        batch_account(a, v, n, err);
        for (size_t i = 0; i < n; i++) {
            tk_audit_buf_free(&v[i]->e.b);
            tk_mailbox_post(a->mb, &v[i]->mail);
        }
    }
}

/* On the loop, after the callbacks that submitted: wake the writer. */
static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_audit_t *a = arg;
    (void)fd;
    (void)what;
    a->kick_pending = 0;
    pthread_mutex_lock(&a->qmu);
    if (a->qhead != NULL)
        pthread_cond_signal(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
}

/* The writer thread: takes everything queued at once, so records that
 * arrive while a batch is being written form the next batch. Ends when
 * told to, once the queue is empty. */
static void *writer_main(void *arg)
{
    tk_audit_t *a = arg;
    (void)pthread_setname_np(pthread_self(), "tk-audit-write");
    pthread_mutex_lock(&a->qmu);
    for (;;) {
        while (a->qhead == NULL && !a->wstop)
            pthread_cond_wait(&a->qcv, &a->qmu);
        sub_t *list = a->qhead;
        if (list == NULL)
            break;
        a->qhead = a->qtail = NULL;
        pthread_mutex_unlock(&a->qmu);
        write_list(a, list);
        pthread_mutex_lock(&a->qmu);
    }
    pthread_mutex_unlock(&a->qmu);
    return NULL;
}

int tk_audit_attach_loop(tk_audit_t *a, struct event_base *base)
{
    if (a == NULL || a->mb != NULL)
        return TK_ESTATE;
    a->mb = tk_mailbox_create(base, deliver, a);
    a->kick = a->mb ? event_new(base, -1, 0, kick_cb, a) : NULL;
    a->loop_thread = pthread_self();
    a->kick_pending = 0;
    a->wstop = 0;
    if (a->kick == NULL || pthread_create(&a->writer, NULL, writer_main, a) != 0) {
        if (a->kick)
            event_free(a->kick);
        a->kick = NULL;
        tk_mailbox_destroy(a->mb);
        a->mb = NULL;
        return TK_EIO;
    }
    pthread_mutex_lock(&a->qmu);
    a->accepting = 1;
    pthread_mutex_unlock(&a->qmu);
    return TK_OK;
}

void tk_audit_detach_loop(tk_audit_t *a)
{
    if (a == NULL || a->mb == NULL)
        return;
    pthread_mutex_lock(&a->qmu);
    a->accepting = 0;
    a->wstop = 1;
    pthread_cond_signal(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    pthread_join(a->writer, NULL); /* it writes what is queued first */
    event_free(a->kick);
    a->kick = NULL;
    tk_mailbox_destroy(a->mb); /* and this delivers the completions */
    a->mb = NULL;
}

int tk_audit_submit(tk_audit_t *a, const tk_audit_event_t *ev, tk_audit_done_fn done, void *arg)
{
    if (a == NULL || done == NULL)
        return TK_ESTATE;
    sub_t *s = tk_malloc(sizeof(*s));
    s->next = NULL;
    s->done = done;
    s->arg = arg;
    s->rc = TK_OK;
    const char *act = ev->action ? ev->action : "unknown";
    size_t alen = strnlen(act, sizeof(s->action) - 1);
    memcpy(s->action, act, alen);
    s->action[alen] = '\0';
    encode_fields(&s->e, s->room, sizeof(s->room), ev);
    pthread_mutex_lock(&a->qmu);
    if (!a->accepting) {
        pthread_mutex_unlock(&a->qmu);
        tk_audit_buf_free(&s->e.b);
        free(s);
        return TK_ESTATE;
    }
    int was_empty = a->qhead == NULL;
    if (a->qtail)
        a->qtail->next = s;
    else
        a->qhead = s;
    a->qtail = s;
    int defer = pthread_equal(pthread_self(), a->loop_thread);
    if (was_empty && !defer)
        pthread_cond_signal(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    if (defer && !a->kick_pending) {
        a->kick_pending = 1;
        event_active(a->kick, EV_TIMEOUT, 1);
    }
    return TK_OK;
}

/* ---- rate-limit aggregation ---- */

void tk_audit_note_ratelimit(tk_audit_t *a, const char *key)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->wmu);
    size_t i = 0;
    while (i < a->nrates && strcmp(a->rates[i].key, key) != 0)
        i++;
    if (i == a->nrates && a->nrates < RATE_SLOTS)
        tk_snprintf(a->rates[a->nrates++].key, sizeof(a->rates[0].key), "%s", key);
    if (i < a->nrates)
        a->rates[i].count++;
    else
        a->rates_other++;
    pthread_mutex_unlock(&a->wmu);
}

static void flush_rates(tk_audit_t *a)
{
    rate_slot_t slots[RATE_SLOTS];
    pthread_mutex_lock(&a->wmu);
    size_t n = a->nrates;
    memcpy(slots, a->rates, n * sizeof(slots[0]));
    uint64_t other = a->rates_other;
    a->nrates = 0;
    a->rates_other = 0;
    pthread_mutex_unlock(&a->wmu);
    if (other > 0 && n < RATE_SLOTS) {
        tk_snprintf(slots[n].key, sizeof(slots[n].key), "other");
        slots[n++].count = other;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_pack("{s:I, s:i}", "count", (json_int_t)slots[i].count, "window_s",
                              TK_AUDIT_RATE_FLUSH_S);
        tk_audit_event_t ev = {.actor = slots[i].key,
                               .action = "ratelimit.reject",
                               .result = "denied",
                               .status = 429,
                               .detail = d};
        if (tk_audit_append(a, &ev) != TK_OK)
            tk_debug(MOD, "rate-limit summary not written");
        json_decref(d);
    }
}

/* ---- worker ---- */

static void sync_now(tk_audit_t *a)
{
    pthread_mutex_lock(&a->mu);
    int fd = a->dirty && a->fd >= 0 ? dup(a->fd) : -1;
    a->dirty = 0;
    pthread_mutex_unlock(&a->mu);
    if (fd < 0)
        return;
    if (fdatasync(fd) != 0)
        tk_error(MOD, "fsync of the audit trail failed: %s", strerror(errno));
    close(fd);
}

static void retry_failed(tk_audit_t *a)
{
    if (atomic_load(&a->ok))
        return;
    json_t *d = json_pack("{s:I}", "failures", (json_int_t)tk_audit_failures(a));
    tk_audit_event_t ev = {
        .actor = "gateway", .action = "audit.write_failed", .result = "error", .detail = d};
    if (tk_audit_append(a, &ev) == TK_OK)
        tk_warn(MOD, "audit trail writable again");
    json_decref(d);
}

static void *worker_main(void *arg)
{
    tk_audit_t *a = arg;
    (void)pthread_setname_np(pthread_self(), "tk-audit");
    uint32_t tick_ms = a->fsync_ms > 0 && a->fsync_ms < 1000 ? a->fsync_ms : 1000;
    uint64_t last_rates = tk_now_ms(), last_purge = 0;
    pthread_mutex_lock(&a->wmu);
    while (!a->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += tick_ms / 1000;
        ts.tv_nsec += (long)(tick_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->wcv, &a->wmu, &ts);
        if (a->stop)
            break;
        pthread_mutex_unlock(&a->wmu);
        uint64_t now = tk_now_ms();
        if (a->fsync_ms > 0)
            sync_now(a);
        retry_failed(a);
        if (now - last_rates >= TK_AUDIT_RATE_FLUSH_S * 1000u) {
            flush_rates(a);
            last_rates = now;
        }
        if (last_purge == 0 || now - last_purge >= PURGE_EVERY_S * 1000u) {
            size_t purged;
            if (tk_audit_purge(a, time(NULL), &purged) != TK_OK)
                tk_error(MOD, "audit retention purge failed; old segments kept");
            last_purge = now;
        }
        pthread_mutex_lock(&a->wmu);
    }
    pthread_mutex_unlock(&a->wmu);
    return NULL;
}

/* ---- retention ---- */

/* Segments whose day is before the cutoff; the anchor is their last record. */
static int purge_locked(tk_audit_t *a, time_t now, size_t *purged)
{
    char **names;
    size_t n, old = 0;
    *purged = 0;
    if (tk_audit_segments(a->dir, &names, &n) != TK_OK)
        return TK_EIO;
    char cut[32];
    tk_audit_segment_name(now - (time_t)a->retention_days * 86400, cut, sizeof(cut));
    while (old < n && strcmp(names[old], cut) < 0)
        old++;
    int rc = TK_OK;
    if (old > 0) {
        tk_audit_verify_t v;
        rc = tk_audit_verify_segments(a->dir, a->key, a->keylen, names, old, &v);
        if (rc == TK_OK && !v.ok) {
            tk_error(MOD, "not purging: the audit chain is broken at %s line %zu (%s)", v.bad_file,
                     v.bad_line, v.reason);
            rc = TK_ESTATE;
        }
        if (rc == TK_OK && v.records > 0 && (!v.anchored || v.last_seq > v.anchor_seq)) {
            tk_audit_record_t r;
            char *path = NULL;
            size_t i = old;
            int found = TK_ENOENT;
            while (i > 0 && found == TK_ENOENT) {
                free(path);
                path = tk_asprintf("%s/%s", a->dir, names[--i]);
                found = tk_audit_last_record(path, &r);
            }
            free(path);
            if (found == TK_OK) {
                tk_audit_anchor_t an = {.seq = r.seq};
                memcpy(an.mac, r.mac, sizeof(an.mac));
                tk_snprintf(an.through, sizeof(an.through), "%.8s",
                            names[old - 1] + strlen(TK_AUDIT_SEG_PREFIX));
                tk_audit_format_ts(tk_wall_ms(), an.ts, sizeof(an.ts));
                tk_audit_record_clear(&r);
                rc = tk_audit_anchor_write(a->dir, a->key, a->keylen, &an);
            }
        }
    }
    for (size_t i = 0; i < old && rc == TK_OK; i++) {
        char *path = tk_asprintf("%s/%s", a->dir, names[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = TK_EIO;
        else
            (*purged)++;
        free(path);
    }
    tk_audit_segments_free(names, n);
    return rc;
}

int tk_audit_purge(tk_audit_t *a, time_t now, size_t *purged)
{
    *purged = 0;
    pthread_mutex_lock(&a->mu);
    int rc = flock(a->lockfd, LOCK_EX) == 0 ? purge_locked(a, now, purged) : TK_EIO;
    (void)flock(a->lockfd, LOCK_UN);
    a->have_state = 0;
    pthread_mutex_unlock(&a->mu);
    if (rc == TK_OK && *purged > 0) {
        json_t *d = json_pack("{s:I, s:I}", "segments", (json_int_t)*purged, "retention_days",
                              (json_int_t)a->retention_days);
        tk_audit_event_t ev = {
            .actor = "gateway", .action = "audit.purge", .result = "ok", .detail = d};
        rc = tk_audit_append(a, &ev);
        json_decref(d);
        tk_info(MOD, "retention: %zu audit segments older than %u days deleted", *purged,
                a->retention_days);
    }
    return rc;
}

/* ---- life cycle ---- */

/* The keyed HMAC-SHA256 context that seals every record (re-initialised
 * per record without the key schedule). */
static int new_hmac(tk_audit_t *a)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    a->hmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (a->hmac != NULL && EVP_MAC_init(a->hmac, a->key, a->keylen, params) == 1)
        return TK_OK;
    tk_error(MOD, "cannot set up HMAC-SHA256 for the audit trail");
    errno = EINVAL;
    return TK_EIO;
}

int tk_audit_open(const tk_audit_opts_t *o, tk_audit_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (o->keylen < TK_AUDIT_KEY_MIN || o->keylen > sizeof(((tk_audit_t *)0)->key)) {
        tk_snprintf(err, errlen, "audit: the HMAC key must be 32 to 256 bytes");
        return TK_EINVAL;
    }
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
        tk_snprintf(err, errlen, "audit: cannot create %s: %s", o->dir, strerror(errno));
        return TK_EIO;
    }
    tk_audit_t *a = tk_calloc(1, sizeof(*a));
    a->dir = tk_strdup(o->dir);
    memcpy(a->key, o->key, o->keylen);
    a->keylen = o->keylen;
    a->retention_days = o->retention_days ? o->retention_days : 90;
    a->fsync_ms = o->fsync_interval_ms;
    a->fd = -1;
    atomic_init(&a->ok, 1);
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->wmu, NULL);
    pthread_cond_init(&a->wcv, NULL);
    pthread_mutex_init(&a->qmu, NULL);
    pthread_cond_init(&a->qcv, NULL);
    char *lock = tk_asprintf("%s/" TK_AUDIT_LOCK, o->dir);
    a->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    free(lock);
    int rc = a->lockfd < 0 ? TK_EIO : new_hmac(a);
    if (rc == TK_OK && flock(a->lockfd, LOCK_EX) == 0) {
        rc = open_segment(a, time(NULL));
        (void)flock(a->lockfd, LOCK_UN);
    } else if (rc == TK_OK) {
        rc = TK_EIO;
    }
    if (rc != TK_OK) {
        tk_snprintf(err, errlen, "audit: cannot open the audit trail in %s: %s", o->dir,
                    strerror(errno));
        tk_audit_close(a);
        return rc;
    }
    if (o->worker) {
        if (pthread_create(&a->thread, NULL, worker_main, a) != 0) {
            tk_snprintf(err, errlen, "audit: cannot start the worker thread");
            tk_audit_close(a);
            return TK_EIO;
        }
        a->worker = 1;
    }
    *out = a;
    return TK_OK;
}

void tk_audit_close(tk_audit_t *a)
{
    if (a == NULL)
        return;
    tk_audit_detach_loop(a);
    if (a->worker) {
        pthread_mutex_lock(&a->wmu);
        a->stop = 1;
        pthread_cond_signal(&a->wcv);
        pthread_mutex_unlock(&a->wmu);
        pthread_join(a->thread, NULL);
        flush_rates(a);
    }
    if (a->fd >= 0) {
        if (a->dirty && fdatasync(a->fd) != 0)
            tk_error(MOD, "fsync of the audit trail failed: %s", strerror(errno));
        close(a->fd);
    }
    if (a->lockfd >= 0)
        close(a->lockfd);
    EVP_MAC_CTX_free(a->hmac);
    OPENSSL_cleanse(a->key, sizeof(a->key));
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->wmu);
    pthread_cond_destroy(&a->wcv);
    pthread_mutex_destroy(&a->qmu);
    pthread_cond_destroy(&a->qcv);
    free(a->dir);
    free(a);
}

/* ---- from a config ---- */

/* <data_dir>/audit.key: 32 random bytes, made once (0600). */
static int load_or_make_key(const char *data_dir, unsigned char *key, size_t *keylen, char *err,
                            size_t errlen)
{
    char *path = tk_asprintf("%s/audit.key", data_dir);
    int rc = tk_keyfile_load_or_make(path, key, 256, TK_AUDIT_KEY_MIN, keylen, "audit", err,
                                     errlen);
    free(path);
    return rc;
}

static void mask_key(const unsigned char *key, size_t keylen)
{
    char hex[2 * 256 + 1];
    tk_hex_encode(key, keylen, hex);
    if (tk_mask_add_secret(hex) != TK_OK)
        tk_warn(MOD, "the mask table is full");
    OPENSSL_cleanse(hex, sizeof(hex));
}

int tk_audit_config_key(const tk_config_t *cfg, int create, unsigned char *key, size_t *keylen,
                        char **dir, char *err, size_t errlen)
{
    int rc = TK_OK;
    *dir = NULL;
    if (cfg->audit_key != NULL) {
        *keylen = cfg->audit_keylen < 256 ? cfg->audit_keylen : 256;
        memcpy(key, cfg->audit_key, *keylen);
    } else if (!create) {
        char *path = tk_asprintf("%s/audit.key", cfg->data_dir);
        struct stat st;
        if (stat(path, &st) != 0) {
            tk_snprintf(err, errlen, "audit: no key: %s: %s", path, strerror(errno));
            rc = TK_ENOENT;
        }
        free(path);
        if (rc == TK_OK)
            rc = load_or_make_key(cfg->data_dir, key, keylen, err, errlen);
    } else {
        if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
            tk_snprintf(err, errlen, "cannot create data dir %s: %s", cfg->data_dir,
                        strerror(errno));
            return TK_EIO;
        }
        rc = load_or_make_key(cfg->data_dir, key, keylen, err, errlen);
    }
    if (rc == TK_OK) {
        mask_key(key, *keylen);
        *dir = cfg->audit_dir ? tk_strdup(cfg->audit_dir) : tk_asprintf("%s/audit", cfg->data_dir);
    }
    return rc;
}

int tk_audit_open_config(const tk_config_t *cfg, int worker, tk_audit_t **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    if (!cfg->audit_enabled)
        return TK_OK;
    unsigned char key[256];
    size_t keylen = 0;
    char *dir;
    int rc = tk_audit_config_key(cfg, 1, key, &keylen, &dir, err, errlen);
    if (rc == TK_OK) {
        tk_audit_opts_t o = {.dir = dir,
                             .key = key,
                             .keylen = keylen,
                             .retention_days = cfg->audit_retention_days,
                             .fsync_interval_ms = cfg->audit_fsync_interval_ms,
                             .worker = worker};
        rc = tk_audit_open(&o, out, err, errlen);
        if (rc == TK_OK)
            tk_audit_set_logging(*out, cfg->audit_log_arguments, cfg->audit_log_results);
        free(dir);
    }
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

void tk_audit_cli_actor(char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[1024];
    if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res != NULL)
        tk_snprintf(buf, len, "cli:%s", res->pw_name);
    else
        tk_snprintf(buf, len, "cli:uid=%u", (unsigned)getuid());
}
