/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command line for upstream servers and endpoints kept in the store:
 * `tumiki server add|list|show|remove` and `tumiki endpoint create|delete`.
 * Each builds the same JSON body the admin API takes and runs it through
 * the API's own handlers (tk_admin_run_local): one set of rules, one vault,
 * one store layout. Secret values come from a file (NAME=@FILE), from this
 * process's environment (--env-from-env NAME=VAR) or from a JSON body on
 * standard input (--json -), so they need not appear in argv, which other
 * local users can read in /proc; a literal NAME=VALUE is taken for env
 * values with a warning. A running gateway picks the change up at its next
 * start (the API applies it at once).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "admin/api.h"
#include "admin/cli.h"
#include "audit/audit.h"
#include "vault/vault.h"

#define BODY_MAX TK_ADMIN_MAX_BODY

typedef struct sopts {
    const char *config, *arg, *json;
    json_t *body; /* built from the flags */
    int literal;  /* a value was given in argv */
} sopts_t;

/* A value read from FILE (at most TK_VAULT_VALUE_MAX bytes; one trailing
 * newline dropped), as a JSON string; NULL with the reason printed. */
static json_t *value_from_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        (void)fprintf(stderr, "tumiki: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = tk_malloc(TK_VAULT_VALUE_MAX + 2);
    size_t n = fread(buf, 1, TK_VAULT_VALUE_MAX + 1, f);
    (void)fclose(f);
    json_t *v = NULL;
    if (n > TK_VAULT_VALUE_MAX)
        (void)fprintf(stderr, "tumiki: %s is larger than 64 KiB\n", path);
    else {
        n -= n > 0 && buf[n - 1] == '\n';
        n -= n > 0 && buf[n - 1] == '\r';
        if ((v = json_stringn(buf, n)) == NULL)
            (void)fprintf(stderr, "tumiki: %s is not UTF-8 text\n", path);
    }
    OPENSSL_cleanse(buf, TK_VAULT_VALUE_MAX + 2);
    free(buf);
    return v;
}

/* NAME=VALUE, NAME=@FILE (from_env 0) or NAME=VAR (from_env 1) into
 * body[key][NAME]; 0, or 2 with the reason printed. */
static int add_value(sopts_t *o, const char *key, const char *spec, int from_env, int secret_only)
{
    const char *eq = strchr(spec, '=');
    if (eq == NULL || eq == spec) {
        (void)fprintf(stderr, "tumiki server add: expected NAME=%s, got \"%.*s...\"\n",
                      from_env ? "VAR" : "@FILE", (int)strcspn(spec, "="), spec);
        return 2;
    }
    json_t *v = NULL;
    if (from_env) {
        const char *e = getenv(eq + 1);
        if (e == NULL)
            (void)fprintf(stderr, "tumiki: environment variable \"%s\" is not set\n", eq + 1);
        else
            v = json_string(e);
    } else if (eq[1] == '@') {
        v = value_from_file(eq + 2);
    } else if (secret_only) {
        (void)fprintf(stderr, "tumiki server add: give header values as NAME=@FILE or with "
                              "--header-from-env (argv is visible to other users)\n");
    } else {
        o->literal = 1;
        v = json_string(eq + 1);
    }
    if (v == NULL)
        return 2;
    json_t *obj = json_object_get(o->body, key);
    if (obj == NULL) {
        obj = json_object();
        json_object_set_new(o->body, key, obj);
    }
    char *name = tk_strndup(spec, (size_t)(eq - spec));
    json_object_set_new(obj, name, v);
    free(name);
    return 0;
}

static void add_arg(sopts_t *o, const char *a)
{
    json_t *args = json_object_get(o->body, "args");
    if (args == NULL) {
        args = json_array();
        json_object_set_new(o->body, "args", args);
    }
    json_array_append_new(args, json_string(a));
}

/* One flag with a value at argv[i + 1]; 0, 1 not ours, 2 bad. */
static int server_flag(sopts_t *o, const char *flag, const char *val)
{
    static const char *const plain[][2] = {{"--command", "command"},     {"--cwd", "cwd"},
                                           {"--url", "url"},             {"--transport", "transport"},
                                           {"--servers", "servers"},     {"--allow", "allow"},
                                           {"--deny", "deny"}};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (strcmp(flag, plain[i][0]) == 0) {
            json_object_set_new(o->body, plain[i][1], json_string(val));
            return 0;
        }
    if (strcmp(flag, "--config") == 0)
        o->config = val;
    else if (strcmp(flag, "--json") == 0)
        o->json = val;
    else if (strcmp(flag, "--arg") == 0)
        add_arg(o, val);
    else if (strcmp(flag, "--timeout-ms") == 0) {
        uint64_t ms;
        if (tk_parse_uint(val, 1, UINT32_MAX, &ms) != TK_OK) {
            (void)fprintf(stderr, "tumiki server: --timeout-ms takes a positive number\n");
            return 2;
        }
        json_object_set_new(o->body, "timeout_ms", json_integer((json_int_t)ms));
    }
    else if (strcmp(flag, "--env") == 0 || strcmp(flag, "--env-from-env") == 0)
        return add_value(o, "env", val, flag[5] != '\0', 0);
    else if (strcmp(flag, "--header") == 0 || strcmp(flag, "--header-from-env") == 0)
        return add_value(o, "headers", val, flag[8] != '\0', 1);
    else
        return 1;
    return 0;
}

static int parse(const char *cmd, int argc, char **argv, sopts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->body = json_object();
    for (int i = 1; i < argc; i++) {
        int rc = i + 1 < argc ? server_flag(o, argv[i], argv[i + 1]) : 1;
        if (rc == 0) {
            i++;
            continue;
        }
        if (rc == 2)
            return 2;
        if (strcmp(argv[i], "--no-namespace") == 0)
            json_object_set_new(o->body, "namespace", json_false());
        else if (tk_cli_positional(cmd, argv[i], &o->arg) != 0)
            return 2;
    }
    return tk_cli_need_config(cmd, o->config);
}

/* --json -: the whole body from standard input (at most 64 KiB). */
static int body_from_stdin(sopts_t *o)
{
    if (strcmp(o->json, "-") != 0) {
        (void)fputs("tumiki server add: --json takes \"-\" (the body on standard input)\n", stderr);
        return 2;
    }
    if (json_object_size(o->body) > 0) {
        (void)fputs("tumiki server add: --json - replaces the other settings; give one or the "
                    "other\n",
                    stderr);
        return 2;
    }
    json_error_t e;
    json_decref(o->body);
    o->body = json_loadf(stdin, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(o->body) || e.position > BODY_MAX) {
        (void)fprintf(stderr, "tumiki server add: standard input is not one JSON object of at most "
                              "64 KiB\n");
        return 2;
    }
    return 0;
}

/* "a,b" -> ["a","b"] for the list flags of endpoint create. */
static void split_member(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL)
        return;
    json_t *a = json_array();
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        if (n > 0)
            json_array_append_new(a, json_stringn(s, n));
        s += n + (s[n] == ',');
    }
    json_object_set_new(obj, key, a);
}

/* Run body through the API handler for (cmd, path); print the reply or the
 * error; audit a change. Returns the exit status. */
static int run(const tk_config_t *cfg, tk_store_t *st, enum evhttp_cmd_type cmd, const char *path,
               json_t *body, const char *action, const char *target)
{
    json_t *reply = NULL;
    char err[600];
    int status = tk_admin_run_local(cfg, st, cmd, path, body, &reply, err, sizeof(err));
    int ok = status / 100 == 2;
    if (!ok)
        (void)fprintf(stderr, "tumiki: %s\n", err[0] ? err : "failed");
    else if (reply != NULL && cmd == EVHTTP_REQ_GET)
        (void)json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (ok && reply != NULL && cmd == EVHTTP_REQ_GET)
        (void)putchar('\n');
    json_decref(reply);
    if (action != NULL && ok) {
        if (tk_audit_cli_record(cfg, action, target, NULL, "ok", NULL) != 0)
            return 1;
        (void)printf("%s: done (a running gateway on this store applies it within a second)\n",
                     target);
    }
    return ok ? 0 : status == 404 ? 1 : status / 100 == 4 ? 2 : 1;
}

static int with_store(const sopts_t *o, enum evhttp_cmd_type cmd, const char *path,
                      const char *action, const char *target)
{
    tk_config_t *cfg = NULL;
    tk_store_t *st = NULL;
    int rc = tk_cli_open_store(o->config, &cfg, &st);
    if (rc == 0)
        rc = run(cfg, st, cmd, path, o->body, action, target);
    tk_store_close(st);
    tk_config_destroy(cfg);
    return rc;
}

static int server_add(sopts_t *o)
{
    if (o->json != NULL && body_from_stdin(o) != 0)
        return 2;
    if (o->arg != NULL)
        json_object_set_new(o->body, "name", json_string(o->arg));
    const char *name = json_string_value(json_object_get(o->body, "name"));
    if (name == NULL) {
        (void)fputs("usage: tumiki server add NAME --config FILE ...\n", stderr);
        return 2;
    }
    if (o->literal)
        (void)fputs("tumiki: warning: a value given in argv can be read by other local users; "
                    "prefer NAME=@FILE, --env-from-env or --json -\n",
                    stderr);
    char target[80];
    tk_snprintf(target, sizeof(target), "server:%s", name);
    return with_store(o, EVHTTP_REQ_POST, "/servers", "server.add", target);
}

int tk_cli_server(int argc, char **argv)
{
    static const char usage[] =
        "usage: tumiki server add NAME --config FILE (--command CMD [--arg A]... [--cwd DIR] | "
        "--url URL [--transport http|sse]) [--env NAME=@FILE|NAME=VALUE]... "
        "[--env-from-env NAME=VAR]... [--header NAME=@FILE]... [--header-from-env NAME=VAR]... "
        "[--timeout-ms N] | --json -\n"
        "       tumiki server list|show NAME|remove NAME --config FILE\n";
    const char *sub = argc > 0 ? argv[0] : "";
    sopts_t o;
    int rc = parse("server", argc, argv, &o);
    char path[128], target[80];
    tk_snprintf(path, sizeof(path), "/servers%s%s", o.arg ? "/" : "", o.arg ? o.arg : "");
    tk_snprintf(target, sizeof(target), "server:%s", o.arg ? o.arg : "");
    if (rc == 0 && strcmp(sub, "add") == 0)
        rc = server_add(&o);
    else if (rc == 0 && strcmp(sub, "list") == 0 && o.arg == NULL)
        rc = with_store(&o, EVHTTP_REQ_GET, "/servers", NULL, NULL);
    else if (rc == 0 && strcmp(sub, "show") == 0 && o.arg != NULL)
        rc = with_store(&o, EVHTTP_REQ_GET, path, NULL, NULL);
    else if (rc == 0 && strcmp(sub, "remove") == 0 && o.arg != NULL)
        rc = with_store(&o, EVHTTP_REQ_DELETE, path, "server.remove", target);
    else if (rc == 0) {
        (void)fputs(usage, stderr);
        rc = 2;
    }
    json_decref(o.body);
    return rc;
}

int tk_cli_endpoint_change(int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "";
    sopts_t o;
    int rc = parse("endpoint", argc, argv, &o);
    if (rc == 0 && o.arg == NULL)
        rc = 2;
    if (rc != 0) {
        (void)fputs("usage: tumiki endpoint create SLUG --config FILE --servers a,b [--allow "
                    "p,q] [--deny r] [--no-namespace]\n"
                    "       tumiki endpoint delete SLUG --config FILE\n",
                    stderr);
        json_decref(o.body);
        return 2;
    }
    char path[128], target[80];
    tk_snprintf(path, sizeof(path), "/endpoints/%s", o.arg);
    tk_snprintf(target, sizeof(target), "endpoint:%s", o.arg);
    if (strcmp(sub, "create") == 0) {
        split_member(o.body, "servers");
        split_member(o.body, "allow");
        split_member(o.body, "deny");
        json_t *tools = json_object();
        for (size_t i = 0; i < 2; i++) {
            const char *k = i == 0 ? "allow" : "deny";
            json_t *v = json_object_get(o.body, k);
            if (v != NULL)
                json_object_set(tools, k, v);
            json_object_del(o.body, k);
        }
        if (json_object_size(tools) > 0)
            json_object_set(o.body, "tools", tools);
        json_decref(tools);
        json_object_set_new(o.body, "slug", json_string(o.arg));
        rc = with_store(&o, EVHTTP_REQ_POST, "/endpoints", "endpoint.create", target);
    } else {
        rc = with_store(&o, EVHTTP_REQ_DELETE, path, "endpoint.delete", target);
    }
    json_decref(o.body);
    return rc;
}
