/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line administration over the same store functions as the admin
 * API: `tumiki user add|list` and `tumiki endpoint list|show|tools`. The
 * command line is the operator's: it runs with the store file's owner's
 * rights, so it checks input but not roles.
 */
#include "admin/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include <openssl/crypto.h>

#include "admin/account.h"
#include "admin/api.h"
#include "audit/audit.h"
#include "admin/rbac.h"
#include "auth/password.h"

int tk_cli_open_store(const char *config, tk_config_t **cfg, tk_store_t **st)
{
    char err[1024];
    if (tk_config_load_file(config, cfg, err, sizeof(err)) != TK_OK ||
        tk_config_register_masks(*cfg, err, sizeof(err)) != TK_OK) {
        (void)fprintf(stderr, "tumiki: %s\n", err);
        return 1;
    }
    if (mkdir((*cfg)->data_dir, 0700) != 0 && errno != EEXIST) {
        (void)fprintf(stderr, "tumiki: cannot create data dir %s: %s\n", (*cfg)->data_dir,
                      strerror(errno));
        return 1;
    }
    char *db = tk_asprintf("%s/tumiki.db", (*cfg)->data_dir);
    int rc = tk_store_open_sqlite(db, st, err, sizeof(err));
    free(db);
    if (rc != TK_OK) {
        (void)fprintf(stderr, "tumiki: %s\n", err);
        return 1;
    }
    return 0;
}

/* Options shared by the user and endpoint commands. */
typedef struct opts {
    const char *config, *email, *id, *role, *allow, *deny, *arg;
    int password_stdin; /* user add --password-stdin */
} opts_t;

static int parse_opts(const char *cmd, int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof(*o));
    const tk_cli_flag_t flags[] = {
        {"--config", &o->config, NULL}, {"--email", &o->email, NULL},
        {"--id", &o->id, NULL},         {"--role", &o->role, NULL},
        {"--allow", &o->allow, NULL},   {"--deny", &o->deny, NULL},
        {"--password-stdin", NULL, &o->password_stdin}};
    int rc = tk_cli_flags(cmd, argc - 1, argv + 1, flags, TK_CLI_NFLAGS(flags),
                          &o->arg);
    return rc != 0 ? rc : tk_cli_need_config(cmd, o->config);
}

/* --password-stdin: one line from stdin into pw (TK_PASSWORD_MAX + 3
 * bytes), checked against the policy before anything is written. */
static long read_new_password(const opts_t *o, char *pw, size_t cap)
{
    long n = tk_account_read_password(stdin, pw, cap);
    const char *why = n < 0 ? "give it as one line on standard input"
                            : tk_password_check(pw, (size_t)n, o->email);
    if (why == NULL)
        return n;
    (void)fprintf(stderr, "tumiki user add: password refused: %s\n", why);
    OPENSSL_cleanse(pw, cap);
    return -1;
}

static int user_add(const tk_config_t *cfg, tk_store_t *st, const opts_t *o)
{
    const char *role = o->role != NULL ? o->role : "member";
    if (o->email == NULL || !tk_admin_valid_email(o->email)) {
        (void)fputs("tumiki user add: --email takes an address of 3..254 characters\n", stderr);
        return 2;
    }
    if (o->id != NULL && !tk_admin_valid_id(o->id)) {
        (void)fputs("tumiki user add: --id takes 1..64 of a-z, 0-9, '_' and '-'\n", stderr);
        return 2;
    }
    if (tk_role_parse(role) == TK_ROLE_NONE) {
        (void)fputs("tumiki user add: --role takes owner, admin, member or viewer\n", stderr);
        return 2;
    }
    char pw[TK_PASSWORD_MAX + 3];
    long pwlen = 0;
    if (o->password_stdin && (pwlen = read_new_password(o, pw, sizeof(pw))) < 0)
        return 1;
    tk_user_t u;
    const char *why = NULL;
    int rc = tk_admin_user_add(st, o->id, o->email, role, &u);
    if (rc == TK_OK && o->password_stdin)
        rc = tk_account_set_password(st, u.id, u.email, pw, (size_t)pwlen, cfg->dash_bcrypt_cost,
                                     &why);
    if (o->password_stdin)
        OPENSSL_cleanse(pw, sizeof(pw));
    if (rc == TK_OK) {
        char target[TK_STORE_ID_MAX + 8];
        tk_snprintf(target, sizeof(target), "user:%s", u.id);
        json_t *d = json_pack("{s:s, s:s, s:b}", "org", TK_ADMIN_ORG, "role", role, "dashboard_login",
                              o->password_stdin != 0);
        int arc = tk_audit_cli_record(cfg, "user.add", target, NULL, "ok", d);
        json_decref(d);
        (void)printf("user %s (%s) added to organization %s as %s%s\n", u.id, u.email,
                     TK_ADMIN_ORG, role, o->password_stdin ? ", with a dashboard password" : "");
        if (arc != 0) {
            tk_user_clear(&u);
            return 1;
        }
    }
    else if (rc == TK_ESTATE)
        (void)fputs("tumiki: a user with this id or e-mail exists\n", stderr);
    else
        (void)fprintf(stderr, "tumiki: cannot add the user: %s\n", tk_store_last_error(st));
    tk_user_clear(&u);
    return rc == TK_OK ? 0 : 1;
}

static int user_list(tk_store_t *st)
{
    tk_user_t *u = NULL;
    size_t n = 0;
    if (tk_store_user_list(st, &u, &n) != TK_OK) {
        (void)fputs("tumiki: cannot list users\n", stderr);
        return 1;
    }
    (void)printf("%-24s  %-8s  %-24s  %s\n", "ID", "STATUS", "ROLES", "EMAIL");
    for (size_t i = 0; i < n; i++) {
        tk_member_t *m = NULL;
        size_t nm = 0;
        char roles[256] = "";
        size_t len = 0;
        if (tk_store_member_list(st, NULL, u[i].id, &m, &nm) == TK_OK)
            for (size_t k = 0; k < nm && len < sizeof(roles); k++)
                len += (size_t)tk_snprintf(roles + len, sizeof(roles) - len, "%s%s:%s",
                                           k ? "," : "", m[k].org_id, m[k].role);
        free(m);
        (void)printf("%-24s  %-8s  %-24s  %s\n", u[i].id, u[i].disabled ? "disabled" : "active",
                     roles[0] ? roles : "-", u[i].email);
    }
    tk_user_list_free(u, n);
    return 0;
}

/* Parse options, check the subcommand is one of subs, open the store and
 * run fn. */
typedef int (*cli_fn)(tk_config_t *cfg, tk_store_t *st, const char *sub, const opts_t *o);

static int cli_run(const char *cmd, const char *usage, const char *const *subs, int argc,
                   char **argv, cli_fn fn)
{
    opts_t o;
    const char *sub = argc > 0 ? argv[0] : "";
    int rc = parse_opts(cmd, argc, argv, &o);
    if (rc != 0)
        return rc;
    size_t i = 0;
    while (subs[i] != NULL && strcmp(subs[i], sub) != 0)
        i++;
    if (subs[i] == NULL) {
        (void)fprintf(stderr, "usage: %s\n", usage);
        return 2;
    }
    tk_config_t *cfg = NULL;
    tk_store_t *st = NULL;
    rc = tk_cli_open_store(o.config, &cfg, &st);
    if (rc == 0)
        rc = fn(cfg, st, sub, &o);
    tk_store_close(st);
    tk_config_destroy(cfg);
    return rc;
}

static int user_cmd(tk_config_t *cfg, tk_store_t *st, const char *sub, const opts_t *o)
{
    return !strcmp(sub, "add") ? user_add(cfg, st, o) : user_list(st);
}

int tk_cli_user(int argc, char **argv)
{
    static const char *const subs[] = {"add", "list", NULL};
    return cli_run("user", "tumiki user add|list --config FILE ...", subs, argc, argv, user_cmd);
}

/* "a,b,c" -> ["a","b","c"] ("" -> []). */
static json_t *split_list(const char *s)
{
    json_t *a = json_array();
    while (s != NULL && *s != '\0') {
        size_t n = strcspn(s, ",");
        if (n > 0)
            json_array_append_new(a, json_stringn(s, n));
        s += n;
        s += *s == ',';
    }
    return a;
}

static void print_patterns(const char *label, json_t *a)
{
    char *s = json_dumps(a, JSON_COMPACT);
    (void)printf("  %s: %s\n", label, s != NULL ? s : "[]");
    free(s);
}

/* One endpoint as GET /api/v1/endpoints shows it: where it comes from,
 * its servers, its tool selection and where that comes from. */
static void endpoint_show(const json_t *ep)
{
    const json_t *tools = json_object_get(ep, "tools"), *rate = json_object_get(ep, "rate_limit");
    (void)printf("%s (%s)\n  servers:", json_string_value(json_object_get(ep, "slug")),
                 json_string_value(json_object_get(ep, "source")));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(ep, "servers"), i, v)
    {
        (void)printf(" %s", json_string_value(v));
    }
    (void)printf("\n");
    const char *src = json_string_value(json_object_get(tools, "source"));
    char label[64];
    tk_snprintf(label, sizeof(label), "tools (%s) allow",
                src != NULL && strcmp(src, "api") == 0 ? "stored" : "config");
    print_patterns(label, json_object_get(tools, "allow"));
    tk_snprintf(label, sizeof(label), "tools (%s) deny",
                src != NULL && strcmp(src, "api") == 0 ? "stored" : "config");
    print_patterns(label, json_object_get(tools, "deny"));
    if (json_is_string(rate))
        (void)printf("  rate_limit: %s\n", json_string_value(rate));
}

static int endpoint_tools(const tk_config_t *cfg, tk_store_t *st, const char *slug,
                          const opts_t *o)
{
    json_t *allow = split_list(o->allow), *deny = split_list(o->deny);
    int rc = 0;
    if (!tk_admin_patterns_valid(allow) || !tk_admin_patterns_valid(deny)) {
        (void)fputs(
            "tumiki endpoint tools: --allow/--deny take at most 64 comma-separated patterns "
            "of 1..128 printable characters\n",
            stderr);
        rc = 2;
    } else if (tk_admin_store_tools(st, slug, allow, deny) != TK_OK) {
        (void)fprintf(stderr, "tumiki: cannot store the tool selection: %s\n",
                      tk_store_last_error(st));
        rc = 1;
    } else {
        json_t *d = json_pack("{s:O, s:O}", "allow", allow, "deny", deny);
        rc = tk_audit_cli_record(cfg, "endpoint.tools", slug, slug, "ok", d);
        json_decref(d);
        (void)printf("endpoint %s: tool selection stored (a running gateway applies it at its next "
                     "start; PUT /api/v1/endpoints/%s/tools applies it at once)\n",
                     slug, slug);
    }
    json_decref(allow);
    json_decref(deny);
    return rc;
}

/* Whether slug is an endpoint: the config's or one made through the API. */
static int endpoint_exists(const tk_config_t *cfg, tk_store_t *st, const char *slug)
{
    if (tk_config_find_endpoint(cfg, slug) != NULL)
        return 1;
    tk_endpoint_row_t row;
    if (tk_store_endpoint_get(st, slug, &row) != TK_OK)
        return 0;
    tk_endpoint_row_clear(&row);
    return 1;
}

static int endpoint_cmd(tk_config_t *cfg, tk_store_t *st, const char *sub, const opts_t *o)
{
    int list = !strcmp(sub, "list");
    if (!list && (o->arg == NULL || !endpoint_exists(cfg, st, o->arg))) {
        (void)fprintf(stderr, "tumiki: %s: no such endpoint\n", o->config);
        return 1;
    }
    if (!strcmp(sub, "tools"))
        return endpoint_tools(cfg, st, o->arg, o);
    /* the API's own view (config and API-made endpoints, with their source) */
    char path[TK_SLUG_MAX + 16], err[600];
    tk_snprintf(path, sizeof(path), "/endpoints%s%s", list ? "" : "/", list ? "" : o->arg);
    json_t *reply = NULL;
    int status = tk_admin_run_local(cfg, st, EVHTTP_REQ_GET, path, NULL, &reply, err, sizeof(err));
    if (status != 200) {
        (void)fprintf(stderr, "tumiki: %s\n", err[0] ? err : "cannot read the endpoints");
        json_decref(reply);
        return 1;
    }
    if (list) {
        size_t i;
        json_t *ep;
        json_array_foreach(json_object_get(reply, "endpoints"), i, ep)
        {
            endpoint_show(ep);
        }
    } else {
        endpoint_show(reply);
    }
    json_decref(reply);
    return 0;
}

int tk_cli_endpoint(int argc, char **argv)
{
    static const char *const subs[] = {"list", "show", "tools", NULL};
    if (argc > 0 && (strcmp(argv[0], "create") == 0 || strcmp(argv[0], "delete") == 0))
        return tk_cli_endpoint_change(argc, argv);
    return cli_run("endpoint", "tumiki endpoint list|show SLUG|tools SLUG --config FILE", subs,
                   argc, argv, endpoint_cmd);
}
