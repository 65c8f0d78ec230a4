/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tool-definition pinning: the definition hash, the loop-side table of
 * approved hashes, alerting, and the worker thread that writes observations
 * to the store and polls it for approvals made by other processes.
 *
 * Invariant: the loop never changes the approval of a tool already in the
 * store; it only adds rows (approved when trusted on first use) and moves
 * seen_hash. Approvals change in the store alone (CLI), and every row the
 * worker reads back overwrites the loop's copy, so the loop converges on the
 * store whatever the order in which writes and polls interleave.
 */
#include "pin/pin.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/map.h"
#include "core/workq.h"
#include "metrics/alerts.h"

#define MOD "pin"
#define POLL_MS 1000
#define REWRITE_MS 60000 /* refresh last_seen of an unchanged tool at most this often */
#define MAX_QUEUED 20000 /* observations waiting for the worker; more are dropped */
#define EXCERPT_MAX 120  /* bytes of an untrusted description quoted in a log line */
#define HASH_PREFIX "tumiki-tool-pin-v1\n"

/* ---- the hash ---- */

int tk_pin_hash(const json_t *tool, char out[TK_PIN_HASH_LEN + 1])
{
    static const char *const covered[] = {"name",        "title",        "description",
                                          "inputSchema", "outputSchema", "annotations"};
    out[0] = '\0';
    if (!json_is_object(tool) || !json_is_string(json_object_get(tool, "name")))
        return TK_EINVAL;
    json_t *def = json_object();
    for (size_t i = 0; i < sizeof(covered) / sizeof(covered[0]); i++) {
        json_t *v = json_object_get(tool, covered[i]);
        if (v != NULL)
            json_object_set(def, covered[i], v);
    }
    char *text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(def);
    if (text == NULL)
        return TK_ENOMEM;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, HASH_PREFIX, sizeof(HASH_PREFIX) - 1) == 1 &&
             EVP_DigestUpdate(ctx, text, strlen(text)) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen * 2 == TK_PIN_HASH_LEN;
    EVP_MD_CTX_free(ctx);
    free(text);
    if (!ok)
        return TK_EIO;
    tk_hex_encode(md, mdlen, out);
    return TK_OK;
}

const char *tk_pin_verdict_name(tk_pin_verdict_t v)
{
    return v == TK_PIN_APPROVED ? "approved" : v == TK_PIN_CHANGED ? "changed" : "pending";
}

/* ---- state ---- */

enum { JOB_OBSERVE = 1, JOB_ROWS };

typedef struct job {
    tk_workq_item_t link; /* first: the queue's view of the job */
    int kind;
    char *server, *tool; /* JOB_OBSERVE */
    char hash[TK_PIN_HASH_LEN + 1];
    int tofu;
    tk_pin_t *rows; /* JOB_ROWS: what the store holds now */
    size_t nrows;
} job_t;

/* What the loop knows of one (server, tool). */
typedef struct entry {
    char approved[TK_PIN_HASH_LEN + 1]; /* "" = not approved */
    char seen[TK_PIN_HASH_LEN + 1];     /* last hash written to the store */
    char alerted[TK_PIN_HASH_LEN + 1];  /* last hash an alert was raised for */
    uint64_t written_ms;
} entry_t;

struct tk_pins {
    char *db_path;
    tk_pins_changed_cb cb;
    void *arg;
    tk_map_t *entries; /* "server/tool" -> entry_t (server names never hold '/') */
    int64_t loaded_at;
    tk_workq_t *q;
    tk_alerts_t *alerts; /* borrowed, may be NULL */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_free(tk_workq_item_t *it)
{
    job_t *j = (job_t *)it;
    free(j->server);
    free(j->tool);
    tk_pin_list_free(j->rows, j->nrows);
    free(j);
}

static void jobs_free(tk_workq_item_t *it)
{
    while (it) {
        tk_workq_item_t *next = it->next;
        job_free(it);
        it = next;
    }
}

static char *entry_key(const char *server, const char *tool)
{
    return tk_asprintf("%s/%s", server, tool);
}

static entry_t *entry_get(const tk_pins_t *p, const char *server, const char *tool)
{
    char *key = entry_key(server, tool);
    entry_t *e = tk_map_sget(p->entries, key);
    free(key);
    return e;
}

static entry_t *entry_make(tk_pins_t *p, const char *server, const char *tool)
{
    char *key = entry_key(server, tool);
    entry_t *e = tk_map_sget(p->entries, key);
    if (e == NULL) {
        e = tk_calloc(1, sizeof(*e));
        tk_map_sput(p->entries, key, e);
    }
    free(key);
    return e;
}

/* Take the store's word for one row; 1 if the approval changed. */
static int apply_row(tk_pins_t *p, const tk_pin_t *row)
{
    entry_t *e = entry_make(p, row->server, row->tool);
    if (e->seen[0] == '\0')
        memcpy(e->seen, row->seen_hash, sizeof(e->seen));
    if (strcmp(e->approved, row->approved_hash) == 0)
        return 0;
    memcpy(e->approved, row->approved_hash, sizeof(e->approved));
    return 1;
}

/* ---- alerts ---- */

/* Length of at most max bytes of s, not cutting a UTF-8 sequence. */
static int excerpt_len(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return (int)n;
}

/* The one place a pinning alert is raised: a tool whose definition is not
 * the approved one (what: "changed" or "pending"). Logs a warning with
 * hash prefixes and the start of the description (untrusted, capped).
 * Alert hook: tk_alert_raise(alerts, "tool_definition_changed", details)
 * belongs here, with details {server, tool, status: what, approved_hash,
 * hash}. */
static void pin_alert(tk_pins_t *p, const char *what, const char *server, const json_t *tool,
                      const char *approved, const char *hash)
{
    const char *name = json_string_value(json_object_get(tool, "name"));
    const char *desc = json_string_value(json_object_get(tool, "description"));
    if (desc == NULL)
        desc = "";
    tk_warn(MOD,
            "tool definition %s: server %s, tool %.*s: approved %.12s, listed %.12s; "
            "description begins \"%.*s\"%s",
            what, server, excerpt_len(name ? name : "", 100), name ? name : "",
            approved[0] ? approved : "(none)", hash, excerpt_len(desc, EXCERPT_MAX), desc,
            strcmp(what, "changed") == 0 ? "; review it, then: tumiki tools approve" : "");
    if (p->alerts == NULL)
        return;
    json_t *d = json_pack("{s:s, s:s#, s:s, s:s, s:s}", "server", server, "tool",
                          name ? name : "", (int)excerpt_len(name ? name : "", 100), "status", what,
                          "approved_hash", approved, "hash", hash);
    if (d == NULL || tk_alert_raise(p->alerts, "tool_definition_changed", d) != TK_OK)
        tk_warn(MOD, "tool definition %s: alert not queued for delivery", what);
    json_decref(d);
}

void tk_pins_set_alerts(tk_pins_t *p, tk_alerts_t *alerts)
{
    if (p != NULL)
        p->alerts = alerts;
}

/* ---- loop side ---- */

static void enqueue_observe(tk_pins_t *p, const char *server, const char *tool, const char *hash,
                            int tofu)
{
    job_t *j = tk_calloc(1, sizeof(*j));
    j->kind = JOB_OBSERVE;
    j->server = tk_strdup(server);
    j->tool = tk_strdup(tool);
    memcpy(j->hash, hash, sizeof(j->hash));
    j->tofu = tofu;
    if (tk_workq_submit(p->q, &j->link, MAX_QUEUED) != TK_OK) {
        tk_warn(MOD, "pin store writes are behind; an observation of server %s was dropped",
                server);
        job_free(&j->link);
    }
}

/* Returns 1 if the tool was pinned on first use now. */
static int observe_one(tk_pins_t *p, const char *server, const tk_pin_policy_t *pol,
                       const json_t *tool, uint64_t now)
{
    int pinned = 0;
    char hash[TK_PIN_HASH_LEN + 1];
    const char *name = json_string_value(json_object_get(tool, "name"));
    if (tk_pin_hash(tool, hash) != TK_OK || name[0] == '\0' ||
        strnlen(name, TK_PIN_TOOL_MAX + 1) > TK_PIN_TOOL_MAX)
        return 0; /* tk_pins_check says pending: never listed */
    entry_t *e = entry_get(p, server, name);
    if (e == NULL) {
        e = entry_make(p, server, name);
        if (pol->tofu) {
            memcpy(e->approved, hash, sizeof(e->approved));
            pinned = 1;
        }
    }
    if (strcmp(e->approved, hash) != 0 && strcmp(e->alerted, hash) != 0) {
        pin_alert(p, e->approved[0] ? "changed" : "pending", server, tool, e->approved, hash);
        memcpy(e->alerted, hash, sizeof(e->alerted));
    }
    if (strcmp(e->seen, hash) != 0 || now - e->written_ms >= REWRITE_MS) {
        memcpy(e->seen, hash, sizeof(e->seen));
        e->written_ms = now;
        enqueue_observe(p, server, name, hash, pol->tofu);
    }
    return pinned;
}

void tk_pins_observe(tk_pins_t *p, const char *server, const tk_pin_policy_t *pol,
                     const json_t *tools)
{
    if (p == NULL || pol->mode == TK_PIN_OFF)
        return;
    uint64_t now = tk_now_ms();
    size_t i, pinned = 0;
    const json_t *tool;
    json_array_foreach(tools, i, tool)
    {
        if (json_is_string(json_object_get(tool, "name")))
            pinned += (size_t)observe_one(p, server, pol, tool, now);
    }
    if (pinned > 0)
        tk_info(MOD, "server %s: %zu new tool definition(s) pinned on first use", server, pinned);
}

tk_pin_verdict_t tk_pins_check(const tk_pins_t *p, const char *server, const json_t *tool,
                               char hash[TK_PIN_HASH_LEN + 1])
{
    char scratch[TK_PIN_HASH_LEN + 1];
    char *h = hash != NULL ? hash : scratch;
    if (tk_pin_hash(tool, h) != TK_OK || p == NULL)
        return TK_PIN_PENDING;
    const char *name = json_string_value(json_object_get(tool, "name"));
    const entry_t *e = entry_get(p, server, name);
    if (e == NULL || e->approved[0] == '\0')
        return TK_PIN_PENDING;
    return strcmp(e->approved, h) == 0 ? TK_PIN_APPROVED : TK_PIN_CHANGED;
}

static void apply_rows(tk_pins_t *p, const job_t *j)
{
    const char *last = NULL;
    for (size_t i = 0; i < j->nrows; i++) {
        const tk_pin_t *row = &j->rows[i];
        if (!apply_row(p, row))
            continue;
        tk_info(MOD, "server %s: tool %.*s is now %s", row->server, excerpt_len(row->tool, 100),
                row->tool, row->approved_hash[0] ? "approved" : "not approved");
        if (last == NULL || strcmp(last, row->server) != 0) {
            last = row->server;
            p->cb(p->arg, row->server);
        }
    }
}

static void deliver(void *arg, tk_workq_item_t *items)
{
    tk_pins_t *p = arg;
    for (tk_workq_item_t *it = items; it != NULL; it = it->next)
        apply_rows(p, (const job_t *)it);
    jobs_free(items);
}

/* ---- worker ---- */

static void post_rows(tk_workq_t *q, tk_pin_t *rows, size_t n)
{
    if (n == 0) {
        tk_pin_list_free(rows, n);
        return;
    }
    job_t *j = tk_calloc(1, sizeof(*j));
    j->kind = JOB_ROWS;
    j->rows = rows;
    j->nrows = n;
    tk_workq_post(q, &j->link);
}

/* Write a batch of observations; post the rows as they now stand. */
static void write_observations(tk_workq_t *q, tk_store_t *st, tk_workq_item_t *jobs)
{
    size_t n = 0, cap = 0;
    tk_pin_t *rows = NULL;
    int64_t now = wall_ms();
    for (tk_workq_item_t *it = jobs; it != NULL; it = it->next) {
        const job_t *j = (const job_t *)it;
        if (n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            rows = tk_realloc(rows, cap * sizeof(*rows));
        }
        if (tk_store_pin_observe(st, j->server, j->tool, j->hash, now, j->tofu, &rows[n]) == TK_OK)
            n++;
        else
            tk_warn(MOD, "server %s: observation not stored: %s", j->server,
                    tk_store_last_error(st));
    }
    post_rows(q, rows, n);
}

static void poll_store(tk_workq_t *q, tk_store_t *st, int64_t *since)
{
    tk_pin_t *rows = NULL;
    size_t n = 0;
    int64_t now = wall_ms();
    if (tk_store_pin_list(st, NULL, *since, &rows, &n) != TK_OK) {
        tk_debug(MOD, "poll failed: %s", tk_store_last_error(st));
        return;
    }
    *since = now - 2 * POLL_MS; /* overlap: an approval is never missed */
    post_rows(q, rows, n);
}

/* The worker: write observations as they come, poll every POLL_MS; on stop,
 * write what was queued and end. */
static void worker_run(void *arg, tk_workq_t *q)
{
    tk_pins_t *p = arg;
    char err[256];
    tk_store_t *st = NULL;
    if (tk_store_open_sqlite(p->db_path, &st, err, sizeof(err)) != TK_OK) {
        tk_error(MOD, "pin store unavailable, approvals are not followed: %s", err);
        st = NULL;
    }
    int64_t since = p->loaded_at - 2 * POLL_MS;
    int64_t next_poll = wall_ms() + POLL_MS;
    int stop = 0;
    while (!stop) {
        tk_workq_item_t *jobs = tk_workq_take(q, next_poll - wall_ms(), &stop);
        if (st != NULL && jobs != NULL)
            write_observations(q, st, jobs);
        jobs_free(jobs);
        if (st != NULL && !stop && wall_ms() >= next_poll) {
            poll_store(q, st, &since);
            next_poll = wall_ms() + POLL_MS;
        }
    }
    tk_store_close(st);
}

static const tk_workq_ops_t workq_ops = {worker_run, deliver, job_free};

/* ---- life cycle ---- */

/* Read every pin into the loop's table. */
static int load_all(tk_pins_t *p, char *err, size_t errlen)
{
    tk_store_t *st = NULL;
    if (tk_store_open_sqlite(p->db_path, &st, err, errlen) != TK_OK)
        return TK_EIO;
    tk_pin_t *rows = NULL;
    size_t n = 0;
    p->loaded_at = wall_ms();
    int rc = tk_store_pin_list(st, NULL, 0, &rows, &n);
    if (rc != TK_OK)
        tk_snprintf(err, errlen, "cannot read tool pins: %s", tk_store_last_error(st));
    for (size_t i = 0; i < n; i++)
        (void)apply_row(p, &rows[i]);
    tk_pin_list_free(rows, n);
    tk_store_close(st);
    return rc;
}

tk_pins_t *tk_pins_create(struct event_base *base, const char *db_path, tk_pins_changed_cb cb,
                          void *arg, char *err, size_t errlen)
{
    tk_pins_t *p = tk_calloc(1, sizeof(*p));
    p->db_path = tk_strdup(db_path);
    p->cb = cb;
    p->arg = arg;
    p->entries = tk_map_create();
    if (load_all(p, err, errlen) != TK_OK ||
        (p->q = tk_workq_create(base, &workq_ops, p, err, errlen)) == NULL) {
        tk_pins_destroy(p);
        return NULL;
    }
    tk_info(MOD, "%zu tool pins loaded", tk_map_count(p->entries));
    return p;
}

void tk_pins_destroy(tk_pins_t *p)
{
    if (p == NULL)
        return;
    tk_workq_destroy(p->q); /* writes what was queued */
    size_t it = 0;
    void *val;
    while (tk_map_next(p->entries, &it, NULL, NULL, &val))
        free(val);
    tk_map_destroy(p->entries);
    free(p->db_path);
    free(p);
}
