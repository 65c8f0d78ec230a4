/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit trail: an append-only, tamper-evident record of API accesses,
 * authentication events, permission and secret changes and MCP tool calls.
 *
 * Records are canonical JSON lines in one segment file per UTC day
 * (<dir>/audit-YYYYMMDD.jsonl). Each carries "prev" (the MAC of the record
 * before it) and "mac" = HMAC-SHA256(key, prev MAC bytes || the record's
 * canonical bytes without "mac"), so editing, deleting, inserting or
 * reordering any record breaks the chain at that record. docs/audit.md gives
 * the exact canonical form.
 *
 * Guarantee: tk_audit_append returns only after the whole line went to the
 * file with one write(2) on an O_APPEND descriptor, so a record whose request
 * was answered survives a crash of the process (kill -9). fsync for power
 * loss is batched on a worker thread (fsync_interval_ms; 0 = every record).
 * Every string is masked (core/mask.h) before it is encoded; the HMAC key is
 * never written anywhere but its own file.
 *
 * Threads: tk_audit_append may be called from any thread. Processes: every
 * append holds flock(<dir>/audit.lock), and re-reads the chain state from the
 * files when another process appended since, so CLI commands may append
 * while the gateway runs.
 *
 * Ownership: the handle owns its copy of the key and its descriptors; an
 * event's strings and detail are borrowed for the duration of the call.
 */
#ifndef TK_AUDIT_H
#define TK_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>
#include <jansson.h>

#include "config/config.h"
#include "core/core.h"

#define TK_AUDIT_KEY_MIN 32             /* bytes */
#define TK_AUDIT_MAC_LEN 32             /* HMAC-SHA256 */
#define TK_AUDIT_LINE_MAX (64 * 1024)   /* a longer line is not a record */
#define TK_AUDIT_FIELD_MAX 1024         /* longer strings are cut (after masking) */
#define TK_AUDIT_DETAIL_MAX (32 * 1024) /* larger details are replaced by a note */
#define TK_AUDIT_ACTOR_MAX 160          /* room callers keep for an actor string */

typedef struct tk_audit tk_audit_t;

/* One event. Any string may be NULL (encoded as null); action must be set.
 * status 0 and latency_us 0 mean "not applicable" (null). detail, if not
 * NULL, must be a JSON object; it is copied and masked. */
typedef struct tk_audit_event {
    const char *actor;  /* "key:<id>", "key:bootstrap", "jwt:<sub>", "cli:<user>", ... */
    const char *action; /* "tool.call", "auth.failure", "session.create", ... */
    const char *target; /* what was acted on: "key:<id>", "session:<hash>" */
    const char *endpoint;
    const char *server;
    const char *tool;
    const char *result; /* "ok", "error", "denied", "timeout", "unavailable", ... */
    int status;         /* HTTP status */
    int64_t latency_us;
    const char *ip;
    const char *request_id;
    json_t *detail;
} tk_audit_event_t;

typedef struct tk_audit_opts {
    const char *dir;          /* created 0700 if missing */
    const unsigned char *key; /* >= TK_AUDIT_KEY_MIN bytes */
    size_t keylen;
    uint32_t retention_days;    /* >= 1; segments older are purged */
    uint32_t fsync_interval_ms; /* 0: fsync after every record */
    int worker;                 /* run the fsync / retention / rate-limit worker */
} tk_audit_opts_t;

/* Open (and create) the trail in o->dir. Checks that it can write (a probe
 * of the lock file and the current segment). Returns 0 or a TK_E*; err says
 * why (never quoting the key). */
int tk_audit_open(const tk_audit_opts_t *o, tk_audit_t **out, char *err, size_t errlen) TK_WUR;

/* Open the trail a config describes: dir default <data_dir>/audit, the key
 * from audit.hmac_key_env / hmac_key_file, or <data_dir>/audit.key (32
 * random bytes made 0600 on first use). *out is NULL, with TK_OK, when the
 * config disables the trail. The key is registered with the masking module. */
int tk_audit_open_config(const tk_config_t *cfg, int worker, tk_audit_t **out, char *err,
                         size_t errlen) TK_WUR;

/* Detach the loop (tk_audit_detach_loop), fsync, stop the worker (flushing
 * aggregated rate-limit counts), close. */
void tk_audit_close(tk_audit_t *a);

/* Append one record. a == NULL (trail disabled) is a no-op returning 0.
 * TK_EIO when the record could not be written: then it is logged and
 * counted, and tk_audit_ok() reports the trail as failing until a later
 * write succeeds (the worker retries every second). */
int tk_audit_append(tk_audit_t *a, const tk_audit_event_t *ev) TK_WUR;

/* ---- asynchronous appends (the MCP core's hot path) ----
 *
 * tk_audit_submit masks and encodes the event on the caller's thread (its
 * strings are borrowed only for the call), queues it and returns at once.
 * A writer thread takes everything queued, and under the mutex and one
 * flock chains and seals the records in submission order and writes them
 * with one write(2) (one fdatasync when fsync_interval_ms is 0); then each
 * record's done(arg, rc) runs on the attached loop: rc TK_OK once the
 * record is in the file (the same crash guarantee as tk_audit_append), or
 * TK_EIO when it is not (a failed write fails every record of its batch; a
 * record over TK_AUDIT_LINE_MAX fails alone), with the same logging,
 * counting and tk_audit_ok() as tk_audit_append. Records of tk_audit_append
 * (any thread) interleave with batches on one chain. */
typedef void (*tk_audit_done_fn)(void *arg, int rc);

/* Deliver completions on base (from its thread) and start the writer
 * thread. One loop per handle: TK_ESTATE if one is attached (or a NULL);
 * TK_EIO if the thread or mailbox could not be made. */
int tk_audit_attach_loop(tk_audit_t *a, struct event_base *base) TK_WUR;
/* On the loop's thread, while base still exists: stop taking submissions,
 * write every queued record and run every pending done callback (here),
 * then stop the writer. No callback runs after this returns. A no-op when
 * none is attached; tk_audit_close calls it. */
void tk_audit_detach_loop(tk_audit_t *a);
/* Queue one record (any thread). TK_ESTATE, and done never runs, when a is
 * NULL, done is NULL or no loop is attached: use tk_audit_append then.
 * Made on the attached loop's own thread, submissions wake the writer once,
 * after the loop's current callbacks (so one iteration's records make one
 * batch); from other threads they wake it at once. done never runs inside
 * tk_audit_submit. */
int tk_audit_submit(tk_audit_t *a, const tk_audit_event_t *ev, tk_audit_done_fn done,
                    void *arg) TK_WUR;

/* 1 when the last write succeeded (or a == NULL). */
int tk_audit_ok(const tk_audit_t *a);
/* Records that could not be written since open. */
uint64_t tk_audit_failures(const tk_audit_t *a);
/* Whether the config asks for tool arguments / results to be recorded. */
int tk_audit_log_arguments(const tk_audit_t *a);
int tk_audit_log_results(const tk_audit_t *a);
void tk_audit_set_logging(tk_audit_t *a, int arguments, int results);

/* Count one rate-limit rejection for bucket key (e.g. "ip:1.2.3.4",
 * "key:<id>"); the worker writes one "ratelimit.reject" record per bucket
 * every TK_AUDIT_RATE_FLUSH_S seconds with the count. Never blocks on I/O. */
#define TK_AUDIT_RATE_FLUSH_S 10
void tk_audit_note_ratelimit(tk_audit_t *a, const char *key);

/* Delete whole segments older than retention_days (before now), writing the
 * anchor first. *purged receives the number of segments deleted. */
int tk_audit_purge(tk_audit_t *a, time_t now, size_t *purged) TK_WUR;

/* The process-wide trail of `tumiki serve` (NULL when disabled), set once at
 * start before other threads run and cleared at shutdown, the only mutable
 * global of this module: hooks in the HTTP and MCP layers reach it without
 * a handle threaded through every call. */
void tk_audit_set_global(tk_audit_t *a);
tk_audit_t *tk_audit_global(void);

/* Convenience for hooks: append to the global trail and log on failure. */
int tk_audit_emit(const tk_audit_event_t *ev);

/* ---- records (codec) ---- */

typedef struct tk_audit_record {
    uint64_t seq;
    char ts[32]; /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
    char *actor, *action, *target, *endpoint, *server, *tool, *result;
    int status;
    int64_t latency_us;
    char *ip, *request_id;
    json_t *detail; /* object or NULL */
    unsigned char prev[TK_AUDIT_MAC_LEN];
    unsigned char mac[TK_AUDIT_MAC_LEN];
} tk_audit_record_t;

/* Decode one line (without its newline). Accepts only canonical bytes: the
 * line must be exactly what tk_audit_record_encode produces for the decoded
 * record. TK_EINVAL with why set otherwise. Does not check the MAC. */
int tk_audit_record_decode(const char *line, size_t len, tk_audit_record_t *r,
                           const char **why) TK_WUR;
/* The canonical line (no newline), with the mac field. Heap string. */
char *tk_audit_record_encode(const tk_audit_record_t *r, size_t *len);
/* Compute r->mac from r->prev and the other fields. */
void tk_audit_record_seal(tk_audit_record_t *r, const unsigned char *key, size_t keylen);
/* Whether r->mac is right (constant time). */
int tk_audit_record_mac_ok(const tk_audit_record_t *r, const unsigned char *key, size_t keylen);
void tk_audit_record_clear(tk_audit_record_t *r);

/* ---- verification ---- */

typedef struct tk_audit_verify {
    int ok;           /* 1: the whole chain holds */
    uint64_t records; /* records checked */
    uint64_t first_seq, last_seq;
    int anchored; /* the chain starts at anchor.json */
    uint64_t anchor_seq;
    size_t torn;        /* unfinished lines from a crash that the chain continues past */
    int truncated_tail; /* the very last line is unfinished (crash during a write) */
    /* the first bad record, when !ok */
    char bad_file[64];
    size_t bad_line;  /* 1-based */
    uint64_t bad_seq; /* the seq found or, for an undecodable line, expected */
    char reason[192];
} tk_audit_verify_t;

/* Verify every segment of dir (and its anchor) with key. Returns TK_OK when
 * the trail could be read (then v->ok says whether it holds), TK_EIO if not. */
int tk_audit_verify_dir(const char *dir, const unsigned char *key, size_t keylen,
                        tk_audit_verify_t *v) TK_WUR;

/* Verify one segment held in memory as if it were the whole trail without
 * an anchor (fuzzing, tests). */
void tk_audit_verify_buf(const char *name, const char *buf, size_t len, const unsigned char *key,
                         size_t keylen, tk_audit_verify_t *v);

/* Call fn for every decodable record of dir whose ts is within [from, to]
 * (either may be NULL; compared as canonical ts strings), oldest first.
 * *skipped counts lines that did not decode. fn returning non-zero stops. */
typedef int (*tk_audit_each_fn)(void *arg, const tk_audit_record_t *r, const char *line,
                                size_t len);
int tk_audit_each(const char *dir, const char *from, const char *to, tk_audit_each_fn fn, void *arg,
                  size_t *skipped) TK_WUR;

/* ---- command line (tumiki audit ...) ---- */

/* argv after "audit": verify | export | report | purge. Exit status. */
int tk_audit_cli(int argc, char **argv);

/* "cli:<user name>" (or "cli:uid=<n>") for records made by CLI commands. */
void tk_audit_cli_actor(char *buf, size_t len);

/* Record a change made by a CLI command (a permission, an account, a
 * password — never its value) in cfg's trail, opened and closed around the
 * append; a disabled trail records nothing. detail is borrowed (may be
 * NULL). 0, or 1 after saying why on stderr. */
int tk_audit_cli_record(const tk_config_t *cfg, const char *action, const char *target,
                        const char *endpoint, const char *result, json_t *detail);
/* The same in two steps, for a command that records several changes:
 * open cfg's trail (*au NULL when disabled; 0, or 1 after saying why on
 * stderr), then append to it (a no-op for NULL). */
int tk_audit_cli_open(const tk_config_t *cfg, tk_audit_t **au);
int tk_audit_cli_append(tk_audit_t *au, const char *action, const char *target,
                        const char *endpoint, const char *result, json_t *detail);

#endif
