/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `tumiki audit verify | export | report | purge`: check the chain and name
 * the first bad record, export records as JSONL or formula-safe CSV, and
 * summarise a period (counts by actor / action / result, authentication
 * failures by address, top tools, latency percentiles, anomalies).
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/cliopt.h"
#include "core/mask.h"

#define BURST_WINDOW_S 60 /* auth failures from one address within ... */
#define BURST_MIN 10      /* ... at least this many: a burst */
#define SPIKE_MIN_CALLS 5 /* tool calls in one hour with ... */
#define SPIKE_RATIO 0.5   /* ... at least this share of errors: a spike */
#define UNUSUAL_MIN 20    /* actors with this many records have "usual hours" */
#define TOP_N 10

typedef struct cli_opts {
    const char *config, *format, *from, *to, *out;
    int json;
    char from_ts[32], to_ts[32];
} cli_opts_t;

typedef struct cli_ctx {
    tk_config_t *cfg;
    char *dir;
    unsigned char key[256];
    size_t keylen;
} cli_ctx_t;

static int usage(void)
{
    (void)fputs("usage: tumiki audit verify --config FILE\n"
          "       tumiki audit export --config FILE [--format jsonl|csv] [--from T] [--to T]"
          " [-o OUT]\n"
          "       tumiki audit report --config FILE --from T --to T [--json]\n"
          "       tumiki audit purge --config FILE\n"
          "T: YYYY-MM-DD (a --to date includes that whole day) or YYYY-MM-DDTHH:MM:SS[.mmm]Z\n",
          stderr);
    return 2;
}

/* Normalise a time argument to the canonical ts form; end: a bare date
 * means the end of that day. */
static int parse_when(const char *s, int end, char *out, size_t len)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, n = 0;
    size_t l = strlen(s);
    if (l == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10) {
        if (end) {
            h = 23, mi = 59, sec = 59, ms = 999;
        }
    } else if ((l == 20 &&
                sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
                n == 20) ||
               (l == 24 &&
                sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &sec, &ms, &n) ==
                    7 &&
                n == 24)) {
        if (end && l == 20)
            ms = 999;
    } else {
        return TK_EINVAL;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        ms < 0 || h < 0 || mi < 0 || sec < 0)
        return TK_EINVAL;
    tk_snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, sec, ms);
    return TK_OK;
}

static int parse_args(int argc, char **argv, cli_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->format = "jsonl";
    const tk_cli_flag_t flags[] = {{"--config", &o->config, NULL}, {"--format", &o->format, NULL},
                                   {"--from", &o->from, NULL},     {"--to", &o->to, NULL},
                                   {"-o", &o->out, NULL},          {"--json", NULL, &o->json}};
    if (tk_cli_flags("audit", argc, argv, flags, TK_CLI_NFLAGS(flags), NULL) != 0 ||
        tk_cli_need_config("audit", o->config) != 0)
        return TK_EINVAL;
    if ((o->from && parse_when(o->from, 0, o->from_ts, sizeof(o->from_ts)) != TK_OK) ||
        (o->to && parse_when(o->to, 1, o->to_ts, sizeof(o->to_ts)) != TK_OK)) {
        (void)fputs("tumiki audit: --from/--to take YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.mmm]Z\n", stderr);
        return TK_EINVAL;
    }
    if (strcmp(o->format, "jsonl") != 0 && strcmp(o->format, "csv") != 0) {
        (void)fputs("tumiki audit: --format is jsonl or csv\n", stderr);
        return TK_EINVAL;
    }
    return TK_OK;
}

static int ctx_open(const cli_opts_t *o, cli_ctx_t *c)
{
    char err[1024];
    memset(c, 0, sizeof(*c));
    if (tk_config_load_file(o->config, &c->cfg, err, sizeof(err)) != TK_OK ||
        tk_config_register_masks(c->cfg, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s\n", err);
        return 1;
    }
    if (tk_audit_config_key(c->cfg, 0, c->key, &c->keylen, &c->dir, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s: %s\n", o->config, err);
        return 1;
    }
    return 0;
}

static void ctx_close(cli_ctx_t *c)
{
    OPENSSL_cleanse(c->key, sizeof(c->key));
    free(c->dir);
    tk_config_destroy(c->cfg);
}

/* ---- verify ---- */

static int cmd_verify(cli_ctx_t *c)
{
    tk_audit_verify_t v;
    if (tk_audit_verify_dir(c->dir, c->key, c->keylen, &v) != TK_OK) {
        fprintf(stderr, "tumiki: cannot read the audit trail in %s: %s\n", c->dir, strerror(errno));
        return 2;
    }
    if (!v.ok) {
        printf("FAILED: %s line %zu (seq %llu): %s\n", v.bad_file, v.bad_line,
               (unsigned long long)v.bad_seq, v.reason);
        return 1;
    }
    printf("ok: %llu records", (unsigned long long)v.records);
    if (v.records > 0)
        printf(", seq %llu..%llu", (unsigned long long)v.first_seq, (unsigned long long)v.last_seq);
    if (v.anchored)
        printf(", anchored at seq %llu (older segments purged)", (unsigned long long)v.anchor_seq);
    else
        printf(", from the first record");
    printf("\n");
    if (v.torn > 0)
        printf("note: %zu unfinished line(s) from a crash during a write; the chain continues "
               "past them\n",
               v.torn);
    if (v.truncated_tail)
        printf("note: the last line is unfinished (a crash during a write); it was never "
               "acknowledged\n");
    return 0;
}

/* ---- export ---- */

typedef struct export_ctx {
    FILE *out;
    int csv;
    uint64_t n;
} export_ctx_t;

/* One CSV cell: always quoted, quotes doubled, and a leading = + - @ TAB or
 * CR prefixed with ' so spreadsheets do not run it as a formula. */
static void csv_cell(FILE *f, const char *s, int last)
{
    (void)fputc('"', f);
    if (s != NULL && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL)
        (void)fputc('\'', f);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '"')
            (void)fputc('"', f);
        (void)fputc(*p, f);
    }
    (void)fputc('"', f);
    (void)fputc(last ? '\n' : ',', f);
}

static void csv_int(FILE *f, int64_t v)
{
    if (v != 0)
        fprintf(f, "%lld", (long long)v);
    (void)fputc(',', f);
}

static void csv_record(FILE *f, const tk_audit_record_t *r)
{
    char hex[2 * TK_AUDIT_MAC_LEN + 1];
    fprintf(f, "%llu,", (unsigned long long)r->seq);
    csv_cell(f, r->ts, 0);
    csv_cell(f, r->actor, 0);
    csv_cell(f, r->action, 0);
    csv_cell(f, r->target, 0);
    csv_cell(f, r->endpoint, 0);
    csv_cell(f, r->server, 0);
    csv_cell(f, r->tool, 0);
    csv_cell(f, r->result, 0);
    csv_int(f, r->status);
    csv_int(f, r->latency_us);
    csv_cell(f, r->ip, 0);
    csv_cell(f, r->request_id, 0);
    char *d = r->detail ? json_dumps(r->detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    csv_cell(f, d, 0);
    free(d);
    tk_hex_encode(r->prev, TK_AUDIT_MAC_LEN, hex);
    csv_cell(f, hex, 0);
    tk_hex_encode(r->mac, TK_AUDIT_MAC_LEN, hex);
    csv_cell(f, hex, 1);
}

static int export_one(void *arg, const tk_audit_record_t *r, const char *line, size_t len)
{
    export_ctx_t *x = arg;
    if (x->csv)
        csv_record(x->out, r);
    else if (fwrite(line, 1, len, x->out) != len || fputc('\n', x->out) == EOF)
        return 1;
    x->n++;
    return ferror(x->out) ? 1 : 0;
}

static FILE *open_out(const char *path)
{
    if (path == NULL)
        return stdout;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        fprintf(stderr, "tumiki: cannot create %s: %s (it must not exist yet)\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    return f;
}

static int cmd_export(cli_ctx_t *c, const cli_opts_t *o)
{
    export_ctx_t x = {.csv = !strcmp(o->format, "csv")};
    if ((x.out = open_out(o->out)) == NULL)
        return 1;
    if (x.csv)
        (void)fputs("seq,ts,actor,action,target,endpoint,server,tool,result,status,latency_us,ip,"
              "request_id,detail,prev,mac\n",
              x.out);
    size_t skipped;
    int rc = tk_audit_each(c->dir, o->from ? o->from_ts : NULL, o->to ? o->to_ts : NULL, export_one,
                           &x, &skipped);
    int bad = fflush(x.out) != 0 || ferror(x.out);
    if (o->out != NULL && fclose(x.out) != 0)
        bad = 1;
    if (rc != TK_OK || bad) {
        fprintf(stderr, "tumiki: export failed: %s\n", strerror(errno));
        if (o->out)
            unlink(o->out);
        return 1;
    }
    fprintf(stderr, "%llu records exported", (unsigned long long)x.n);
    if (skipped > 0)
        fprintf(stderr, "; %zu undecodable lines skipped (run tumiki audit verify)", skipped);
    (void)fputc('\n', stderr);
    return 0;
}

/* ---- report ---- */

typedef struct report {
    json_t *by_actor, *by_action, *by_result, *auth_fail_ip, *tool_calls, *tool_errors;
    json_t *latency;     /* tool -> [latency_us...] */
    json_t *fail_times;  /* ip -> [epoch s...] */
    json_t *tool_hours;  /* "tool\thour" -> [calls, errors] */
    json_t *actor_hours; /* actor -> [24 counts] */
    uint64_t records, ratelimited;
} report_t;

static void count(json_t *obj, const char *key, json_int_t by)
{
    json_t *v = json_object_get(obj, key ? key : "-");
    json_object_set_new(obj, key ? key : "-", json_integer((v ? json_integer_value(v) : 0) + by));
}

static json_t *member_array(json_t *obj, const char *key)
{
    json_t *a = json_object_get(obj, key);
    if (a == NULL) {
        a = json_array();
        json_object_set_new(obj, key, a);
    }
    return a;
}

static int64_t ts_epoch(const char *ts)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static void report_tool(report_t *rp, const tk_audit_record_t *r)
{
    const char *tool = r->tool ? r->tool : "-";
    int err = r->result == NULL || strcmp(r->result, "ok") != 0;
    count(rp->tool_calls, tool, 1);
    if (err)
        count(rp->tool_errors, tool, 1);
    if (r->latency_us > 0)
        json_array_append_new(member_array(rp->latency, tool), json_integer(r->latency_us));
    char key[TK_AUDIT_FIELD_MAX + 24];
    tk_snprintf(key, sizeof(key), "%s\t%.13s", tool, r->ts);
    json_t *h = json_object_get(rp->tool_hours, key);
    if (h == NULL) {
        h = json_pack("[i,i]", 0, 0);
        json_object_set_new(rp->tool_hours, key, h);
    }
    json_array_set_new(h, 0, json_integer(json_integer_value(json_array_get(h, 0)) + 1));
    json_array_set_new(h, 1, json_integer(json_integer_value(json_array_get(h, 1)) + err));
}

static int report_one(void *arg, const tk_audit_record_t *r, const char *line, size_t len)
{
    report_t *rp = arg;
    (void)line;
    (void)len;
    rp->records++;
    count(rp->by_actor, r->actor, 1);
    count(rp->by_action, r->action, 1);
    count(rp->by_result, r->result, 1);
    const char *action = r->action ? r->action : "";
    if (!strcmp(action, "auth.failure")) {
        count(rp->auth_fail_ip, r->ip, 1);
        json_array_append_new(member_array(rp->fail_times, r->ip ? r->ip : "-"),
                              json_integer(ts_epoch(r->ts)));
    } else if (!strcmp(action, "tool.call")) {
        report_tool(rp, r);
    } else if (!strcmp(action, "ratelimit.reject")) {
        rp->ratelimited += (uint64_t)json_integer_value(json_object_get(r->detail, "count"));
    }
    if (r->actor && strcmp(r->actor, "gateway") != 0) {
        json_t *hours = json_object_get(rp->actor_hours, r->actor);
        if (hours == NULL) {
            hours = json_array();
            for (int i = 0; i < 24; i++)
                json_array_append_new(hours, json_integer(0));
            json_object_set_new(rp->actor_hours, r->actor, hours);
        }
        int hr = (r->ts[11] - '0') * 10 + (r->ts[12] - '0');
        if (hr >= 0 && hr < 24)
            json_array_set_new(hours, (size_t)hr,
                               json_integer(json_integer_value(json_array_get(hours, hr)) + 1));
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The top entries of a {name: count} object as [{name, count}]. */
static json_t *top(json_t *counts, const char *label, size_t n)
{
    json_t *out = json_array();
    json_t *taken = json_object();
    for (size_t k = 0; k < n; k++) {
        const char *key, *best = NULL;
        json_t *v;
        json_int_t bestn = 0;
        json_object_foreach(counts, key, v)
        {
            if (json_integer_value(v) > bestn && json_object_get(taken, key) == NULL) {
                best = key;
                bestn = json_integer_value(v);
            }
        }
        if (best == NULL)
            break;
        json_object_set_new(taken, best, json_true());
        json_array_append_new(out, json_pack("{s:s, s:I}", label, best, "count", bestn));
    }
    json_decref(taken);
    return out;
}

static json_t *percentiles(json_t *latency)
{
    json_t *out = json_object();
    const char *tool;
    json_t *arr;
    json_object_foreach(latency, tool, arr)
    {
        size_t n = json_array_size(arr);
        int64_t *v = tk_calloc(n, sizeof(*v));
        for (size_t i = 0; i < n; i++)
            v[i] = json_integer_value(json_array_get(arr, i));
        qsort(v, n, sizeof(*v), cmp_i64);
        json_object_set_new(out, tool,
                            json_pack("{s:I, s:I, s:I}", "n", (json_int_t)n, "p50_us",
                                      (json_int_t)v[(n - 1) / 2], "p99_us",
                                      (json_int_t)v[(n - 1) * 99 / 100]));
        free(v);
    }
    return out;
}

static void find_bursts(report_t *rp, json_t *out)
{
    const char *ip;
    json_t *times;
    json_object_foreach(rp->fail_times, ip, times)
    {
        size_t n = json_array_size(times), lo = 0, best = 0, best_lo = 0;
        for (size_t hi = 0; hi < n; hi++) {
            json_int_t t = json_integer_value(json_array_get(times, hi));
            while (t - json_integer_value(json_array_get(times, lo)) >= BURST_WINDOW_S)
                lo++;
            if (hi - lo + 1 > best) {
                best = hi - lo + 1;
                best_lo = lo;
            }
        }
        if (best >= BURST_MIN) {
            char when[32];
            tk_audit_format_ts(json_integer_value(json_array_get(times, best_lo)) * 1000, when,
                               sizeof(when));
            json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:s, s:i}", "kind",
                                                 "auth_failure_burst", "ip", ip, "count",
                                                 (json_int_t)best, "from", when, "window_s",
                                                 BURST_WINDOW_S));
        }
    }
}

static void find_spikes(report_t *rp, json_t *out)
{
    const char *key;
    json_t *h;
    json_object_foreach(rp->tool_hours, key, h)
    {
        json_int_t calls = json_integer_value(json_array_get(h, 0));
        json_int_t errs = json_integer_value(json_array_get(h, 1));
        if (calls < SPIKE_MIN_CALLS || (double)errs < SPIKE_RATIO * (double)calls)
            continue;
        const char *tab = strchr(key, '\t');
        char *tool = tk_strndup(key, (size_t)(tab - key));
        char *hour = tk_asprintf("%s:00Z", tab + 1);
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:I, s:I}", "kind",
                                             "tool_error_spike", "tool", tool, "hour", hour,
                                             "calls", calls, "errors", errs));
        free(tool);
        free(hour);
    }
}

static void find_unusual_hours(report_t *rp, json_t *out)
{
    const char *actor;
    json_t *hours;
    json_object_foreach(rp->actor_hours, actor, hours)
    {
        json_int_t total = 0;
        for (size_t i = 0; i < 24; i++)
            total += json_integer_value(json_array_get(hours, i));
        if (total < UNUSUAL_MIN)
            continue;
        for (size_t i = 0; i < 24; i++) {
            json_int_t n = json_integer_value(json_array_get(hours, i));
            if (n > 0 && n * 20 < total)
                json_array_append_new(out, json_pack("{s:s, s:s, s:i, s:I, s:I}", "kind",
                                                     "unusual_hour", "actor", actor, "hour_utc",
                                                     (int)i, "records", n, "actor_total", total));
        }
    }
}

static json_t *report_build(report_t *rp, const cli_opts_t *o)
{
    json_t *anomalies = json_array();
    find_bursts(rp, anomalies);
    find_spikes(rp, anomalies);
    find_unusual_hours(rp, anomalies);
    return json_pack("{s:s, s:s, s:I, s:O, s:O, s:O, s:o, s:I, s:o, s:o, s:o, s:o}", "from",
                     o->from_ts, "to", o->to_ts, "records", (json_int_t)rp->records, "by_actor",
                     rp->by_actor, "by_action", rp->by_action, "by_result", rp->by_result,
                     "auth_failures_by_ip", top(rp->auth_fail_ip, "ip", 1000),
                     "rate_limited_requests", (json_int_t)rp->ratelimited, "top_tools",
                     top(rp->tool_calls, "tool", TOP_N), "top_tool_errors",
                     top(rp->tool_errors, "tool", TOP_N), "latency_by_tool",
                     percentiles(rp->latency), "anomalies", anomalies);
}

static void print_counts(const char *title, json_t *obj)
{
    const char *k;
    json_t *v;
    printf("%s:\n", title);
    json_object_foreach(obj, k, v)
    {
        printf("  %-40s %lld\n", k, (long long)json_integer_value(v));
    }
}

static void print_top(const char *title, json_t *arr, const char *label)
{
    size_t i;
    json_t *v;
    printf("%s:\n", title);
    json_array_foreach(arr, i, v)
    {
        printf("  %-40s %lld\n", json_string_value(json_object_get(v, label)),
               (long long)json_integer_value(json_object_get(v, "count")));
    }
}

static void report_print(json_t *rep)
{
    printf("audit report %s .. %s: %lld records\n", json_string_value(json_object_get(rep, "from")),
           json_string_value(json_object_get(rep, "to")),
           (long long)json_integer_value(json_object_get(rep, "records")));
    print_counts("by actor", json_object_get(rep, "by_actor"));
    print_counts("by action", json_object_get(rep, "by_action"));
    print_counts("by result", json_object_get(rep, "by_result"));
    print_top("authentication failures by address", json_object_get(rep, "auth_failures_by_ip"),
              "ip");
    printf("rate-limited requests: %lld\n",
           (long long)json_integer_value(json_object_get(rep, "rate_limited_requests")));
    print_top("top tools by calls", json_object_get(rep, "top_tools"), "tool");
    print_top("top tools by errors", json_object_get(rep, "top_tool_errors"), "tool");
    printf("latency by tool (us):\n");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(rep, "latency_by_tool"), k, v)
    {
        printf("  %-40s n=%lld p50=%lld p99=%lld\n", k,
               (long long)json_integer_value(json_object_get(v, "n")),
               (long long)json_integer_value(json_object_get(v, "p50_us")),
               (long long)json_integer_value(json_object_get(v, "p99_us")));
    }
    printf("anomalies:\n");
    size_t i;
    json_array_foreach(json_object_get(rep, "anomalies"), i, v)
    {
        char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        printf("  %s\n", s ? s : "");
        free(s);
    }
}

static int cmd_report(cli_ctx_t *c, const cli_opts_t *o)
{
    if (o->from == NULL || o->to == NULL) {
        (void)fputs("tumiki audit report: --from and --to are required\n", stderr);
        return 2;
    }
    report_t rp = {json_object(),
                   json_object(),
                   json_object(),
                   json_object(),
                   json_object(),
                   json_object(),
                   json_object(),
                   json_object(),
                   json_object(),
                   json_object(),
                   0,
                   0};
    size_t skipped;
    int rc = tk_audit_each(c->dir, o->from_ts, o->to_ts, report_one, &rp, &skipped);
    json_t *rep = rc == TK_OK ? report_build(&rp, o) : NULL;
    if (rep != NULL) {
        json_object_set_new(rep, "undecodable_lines", json_integer((json_int_t)skipped));
        if (o->json) {
            char *s = json_dumps(rep, JSON_INDENT(2) | JSON_SORT_KEYS);
            printf("%s\n", s ? s : "{}");
            free(s);
        } else {
            report_print(rep);
        }
    } else {
        fprintf(stderr, "tumiki: cannot read the audit trail in %s\n", c->dir);
    }
    json_decref(rep);
    json_t *all[] = {rp.by_actor,    rp.by_action, rp.by_result,  rp.auth_fail_ip, rp.tool_calls,
                     rp.tool_errors, rp.latency,   rp.fail_times, rp.tool_hours,   rp.actor_hours};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        json_decref(all[i]);
    return rep != NULL ? 0 : 1;
}

/* ---- purge ---- */

static int cmd_purge(cli_ctx_t *c)
{
    char err[1024];
    tk_audit_t *a = NULL;
    if (tk_audit_open_config(c->cfg, 0, &a, err, sizeof(err)) != TK_OK || a == NULL) {
        fprintf(stderr, "tumiki: %s\n", a == NULL && err[0] ? err : "audit trail disabled");
        return 1;
    }
    size_t n;
    int rc = tk_audit_purge(a, time(NULL), &n);
    tk_audit_close(a);
    if (rc != TK_OK) {
        fprintf(stderr, "tumiki: purge failed: %s\n", tk_strerror(rc));
        return 1;
    }
    printf("%zu segment(s) older than %u days deleted\n", n, c->cfg->audit_retention_days);
    return 0;
}

int tk_audit_cli(int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "";
    int verify = !strcmp(sub, "verify"), exp = !strcmp(sub, "export");
    int report = !strcmp(sub, "report"), purge = !strcmp(sub, "purge");
    if (!verify && !exp && !report && !purge)
        return usage();
    cli_opts_t o;
    if (parse_args(argc - 1, argv + 1, &o) != TK_OK)
        return usage();
    cli_ctx_t c;
    int rc = ctx_open(&o, &c);
    if (rc == 0) {
        if (verify)
            rc = cmd_verify(&c);
        else if (exp)
            rc = cmd_export(&c, &o);
        else if (report)
            rc = cmd_report(&c, &o);
        else
            rc = cmd_purge(&c);
    }
    ctx_close(&c);
    return rc;
}

int tk_audit_cli_open(const tk_config_t *cfg, tk_audit_t **au)
{
    char err[1024];
    if (tk_audit_open_config(cfg, 0, au, err, sizeof(err)) != TK_OK) {
        (void)fprintf(stderr, "tumiki: %s: %s\n", cfg->path, err);
        return 1;
    }
    return 0;
}

int tk_audit_cli_append(tk_audit_t *au, const char *action, const char *target,
                        const char *endpoint, const char *result, json_t *detail)
{
    char actor[160];
    tk_audit_cli_actor(actor, sizeof(actor));
    tk_audit_event_t ev = {.actor = actor, .action = action, .target = target,
                           .endpoint = endpoint, .result = result, .detail = detail};
    if (tk_audit_append(au, &ev) != TK_OK) {
        (void)fputs("tumiki: the audit record of this change could not be written\n", stderr);
        return 1;
    }
    return 0;
}

int tk_audit_cli_record(const tk_config_t *cfg, const char *action, const char *target,
                        const char *endpoint, const char *result, json_t *detail)
{
    tk_audit_t *au = NULL;
    if (tk_audit_cli_open(cfg, &au) != 0)
        return 1;
    int rc = tk_audit_cli_append(au, action, target, endpoint, result, detail);
    tk_audit_close(au);
    return rc;
}
