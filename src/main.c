/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tumiki command line: serve, check-config, import-claude-config and
 * version. `serve` loads and validates the whole config before it binds
 * anything, so a bad config never leaves a half-started gateway.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "admin/account.h"
#include "admin/cli.h"
#include "admin/rbac.h"
#include "audit/audit.h"
#include "auth/apikey.h"
#include "auth/jwt.h"
#include "config/config.h"
#include "core/cliopt.h"
#include "core/core.h"
#include "http/server.h"
#include "mcp/gateway.h"
#include "metrics/alerts.h"
#include "metrics/metrics.h"
#include "store/store.h"

#define MOD "main"

static void usage(FILE *f)
{
    fputs("usage: tumiki <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve --config FILE [--ready-file PATH]\n"
          "        run the gateway; PATH receives the base URL once it listens\n"
          "  check-config FILE\n"
          "        validate a config file and exit\n"
          "  import-claude-config FILE [-o OUT]\n"
          "        convert a Claude Desktop / Claude Code / VS Code MCP config\n"
          "  key create --config FILE --endpoint SLUG|* [--name NAME] [--expires-days N]\n"
          "             [--owner USER] [--scopes \"mcp admin\"]\n"
          "        make an API key for an endpoint; the key is printed once\n"
          "  key list --config FILE\n"
          "  key revoke --config FILE ID\n"
          "  user add --config FILE --email EMAIL [--id ID] [--role owner|admin|member|viewer]\n"
          "           [--password-stdin]   (a dashboard password, one line on standard input)\n"
          "  user list --config FILE\n"
          "  endpoint list|show SLUG --config FILE\n"
          "  endpoint tools SLUG --config FILE [--allow a,b] [--deny c]\n"
          "        store an endpoint's tool selection (glob patterns)\n"
          "  endpoint create SLUG --config FILE --servers a,b [--allow p] [--deny q]\n"
          "           [--no-namespace]\n"
          "  endpoint delete SLUG --config FILE\n"
          "        endpoints kept in the store (as POST/DELETE /api/v1/endpoints)\n"
          "  server add NAME --config FILE (--command CMD [--arg A]... [--cwd DIR] |\n"
          "           --url URL [--transport http|sse]) [--env NAME=@FILE]...\n"
          "           [--env-from-env NAME=VAR]... [--header NAME=@FILE]...\n"
          "           [--header-from-env NAME=VAR]... [--timeout-ms N]\n"
          "  server add --config FILE --json -   (the server object on standard input)\n"
          "  server list|show NAME|remove NAME --config FILE\n"
          "        upstream servers kept in the store, secret values encrypted (vault)\n"
          "  jwt issue --config FILE --sub NAME --endpoint SLUG|* [--ttl-hours N<=12]\n"
          "        sign an HS256 token with the config's jwt key\n"
          "  jwt revoke --config FILE TOKEN\n"
          "        put a token's jti on the revocation list\n"
          "  tools list --config FILE [--server NAME]\n"
          "        pinned tool definitions: status, hash, first seen, approval\n"
          "  tools approve --config FILE --server NAME (--tool TOOL [--expect HASH] | --all)\n"
          "        approve the definition last seen (a running gateway follows within 1 s);\n"
          "        --expect: only if it still has the hash (prefix) that was reviewed\n"
          "  tools revoke --config FILE --server NAME (--tool TOOL | --all)\n"
          "        withdraw an approval: the tool is withheld until approved again\n"
          "  audit verify --config FILE\n"
          "        check the audit trail's HMAC chain; names the first bad record\n"
          "  audit export --config FILE [--format jsonl|csv] [--from T] [--to T] [-o OUT]\n"
          "  audit report --config FILE --from T --to T [--json]\n"
          "        summary: counts, failed logins, top tools, latency, anomalies\n"
          "  audit purge --config FILE\n"
          "        delete segments older than audit.retention_days now\n"
          "  account password --config FILE EMAIL --password-stdin\n"
          "        set a user's dashboard password (one line on standard input)\n"
          "  account unlock --config FILE EMAIL\n"
          "        lift a lock left by failed dashboard logins\n"
          "  version\n"
          "\n"
          "environment:\n"
          "  TUMIKI_TOKEN   bootstrap bearer token when the config sets no auth\n",
          f);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    tk_http_server_t *http = arg;
    char err[512];
    (void)sig;
    (void)what;
    if (tk_http_server_reload_tls(http, err, sizeof(err)) == TK_OK)
        tk_info(MOD, "SIGHUP: TLS certificate and key reloaded");
    else
        tk_warn(MOD, "SIGHUP: TLS not reloaded, still serving the previous one: %s", err);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct event_base *base = arg;
    (void)what;
    tk_info(MOD, "signal %d: shutting down", (int)sig);
    event_base_loopexit(base, NULL);
}

static int write_file_atomic(const char *path, const char *data, mode_t mode)
{
    char *tmp = tk_asprintf("%s.tmp", path);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd >= 0) {
        size_t n = strlen(data);
        if (write(fd, data, n) == (ssize_t)n && fsync(fd) == 0)
            rc = 0;
        close(fd);
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -1;
    }
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* Loopback without a configured token: make one, store it 0600 in the data
 * dir (never in the log), so the endpoint is never open. */
static int bootstrap_token(tk_config_t *cfg)
{
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        tk_error(MOD, "cannot create data dir %s: %s", cfg->data_dir, strerror(errno));
        return -1;
    }
    char *path = tk_asprintf("%s/bootstrap-token", cfg->data_dir);
    char tok[65];
    FILE *f = fopen(path, "re");
    if (f != NULL) {
        size_t n = fread(tok, 1, sizeof(tok) - 1, f);
        fclose(f);
        tok[n] = '\0';
        tok[strcspn(tok, "\r\n")] = '\0';
    } else {
        tok[0] = '\0';
    }
    if (strlen(tok) < TK_MIN_TOKEN_LEN) {
        unsigned char raw[32];
        if (tk_random_bytes(raw, sizeof(raw)) != TK_OK) {
            free(path);
            return -1;
        }
        tk_hex_encode(raw, sizeof(raw), tok);
        char line[80];
        tk_snprintf(line, sizeof(line), "%s\n", tok);
        if (write_file_atomic(path, line, 0600) != 0) {
            tk_error(MOD, "cannot write %s", path);
            free(path);
            return -1;
        }
    }
    cfg->bearer_token = tk_strdup(tok);
    tk_info(MOD, "no auth configured: generated a bootstrap bearer token in %s (mode 0600)",
            path);
    free(path);
    return 0;
}

static int write_ready_file(const char *path, const tk_config_t *cfg, int port)
{
    const char *h = cfg->listen_host;
    int v6 = strchr(h, ':') != NULL;
    if (!strcmp(h, "0.0.0.0"))
        h = "127.0.0.1";
    else if (!strcmp(h, "::"))
        h = "::1";
    char url[320];
    tk_snprintf(url, sizeof(url), "%s://%s%s%s:%d\n", cfg->tls_cert_file ? "https" : "http",
                v6 ? "[" : "", h, v6 ? "]" : "", port);
    return write_file_atomic(path, url, 0644);
}

static int cmd_serve(int argc, char **argv)
{
    const char *config = NULL, *ready = NULL;
    const tk_cli_flag_t flags[] = {{"--config", &config, NULL}, {"--ready-file", &ready, NULL}};
    if (tk_cli_flags("serve", argc, argv, flags, TK_CLI_NFLAGS(flags), NULL) != 0 ||
        tk_cli_need_config("serve", config) != 0)
        return 2;
    char err[1024];
    tk_config_t *cfg = NULL;
    if (tk_config_load_file(config, &cfg, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s\n", err);
        return 1;
    }
    tk_log_set_level(cfg->log_level);
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "tumiki: cannot create data dir %s: %s\n", cfg->data_dir, strerror(errno));
        tk_config_destroy(cfg);
        return 1;
    }
    if (cfg->bearer_token == NULL && tk_http_is_loopback(cfg->listen_host) &&
        bootstrap_token(cfg) != 0) {
        tk_config_destroy(cfg);
        return 1;
    }
    if (tk_config_register_masks(cfg, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s\n", err);
        tk_config_destroy(cfg);
        return 1;
    }
    tk_audit_t *audit = NULL;
    if (tk_audit_open_config(cfg, 1, &audit, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s: %s (the audit trail is enabled; fix it or set "
                        "audit.enabled to false)\n", config, err);
        tk_config_destroy(cfg);
        return 1;
    }
    tk_audit_set_global(audit);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tk_audit_set_global(NULL);
        tk_audit_close(audit);
        tk_config_destroy(cfg);
        return 1;
    }
    /* the changelist coalesces the enable/disable churn of HTTP connections
     * into fewer epoll_ctl calls per loop iteration */
    struct event_config *ecfg = event_config_new();
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (base == NULL) {
        tk_config_destroy(cfg);
        return 1;
    }
    tk_metrics_t *metrics = tk_metrics_create();
    tk_alerts_t *alerts = tk_alerts_create(&cfg->alerts, cfg->ssrf);
    tk_gateway_t *gw = tk_gateway_create(base, cfg);
    tk_gateway_set_monitoring(gw, metrics, alerts);
    tk_http_server_t *http = NULL;
    int rc = 1;
    if (tk_http_server_create(base, cfg, gw, &http, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s: %s\n", config, err);
        goto out;
    }
    tk_http_server_set_monitoring(http, metrics, alerts);
    tk_info(MOD, "tumiki %s listening on %s://%s:%d (%zu servers, %zu endpoints)", TK_VERSION,
            cfg->tls_cert_file ? "https" : "http", cfg->listen_host, tk_http_server_port(http),
            cfg->nservers, cfg->nendpoints);
    tk_gateway_start(gw);
    if (tk_audit_emit(&(tk_audit_event_t){.actor = "gateway", .action = "gateway.start",
                                          .result = "ok"}) != TK_OK) {
        fprintf(stderr, "tumiki: %s: the audit trail cannot be written\n", config);
        goto out;
    }
    if (ready && write_ready_file(ready, cfg, tk_http_server_port(http)) != 0) {
        fprintf(stderr, "tumiki: cannot write ready file %s\n", ready);
        goto out;
    }
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sighup = evsignal_new(base, SIGHUP, on_sighup, http);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sighup, NULL);
    event_base_dispatch(base);
    event_free(sigint);
    event_free(sigterm);
    event_free(sighup);
    rc = 0;
out:
    tk_http_server_destroy(http);
    tk_gateway_destroy(gw);
    tk_alerts_destroy(alerts);
    tk_metrics_destroy(metrics);
    event_base_free(base);
    if (rc == 0 && tk_audit_emit(&(tk_audit_event_t){.actor = "gateway", .action = "gateway.stop",
                                                     .result = "ok"}) != TK_OK)
        rc = 1;
    tk_audit_set_global(NULL);
    tk_audit_close(audit);
    tk_config_destroy(cfg);
    curl_global_cleanup();
    tk_info(MOD, "stopped");
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 1) {
        fputs("usage: tumiki check-config FILE\n", stderr);
        return 2;
    }
    char err[1024];
    tk_config_t *cfg = NULL;
    if (tk_config_load_file(argv[0], &cfg, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s\n", err);
        return 1;
    }
    printf("%s: ok (%zu servers, %zu endpoints)\n", argv[0], cfg->nservers, cfg->nendpoints);
    tk_config_destroy(cfg);
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    const char *in = NULL, *outp = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            outp = argv[++i];
        else if (in == NULL && argv[i][0] != '-')
            in = argv[i];
        else {
            fputs("usage: tumiki import-claude-config FILE [-o OUT]\n", stderr);
            return 2;
        }
    }
    if (in == NULL) {
        fputs("usage: tumiki import-claude-config FILE [-o OUT]\n", stderr);
        return 2;
    }
    FILE *out = stdout;
    if (outp) {
        int fd = open(outp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
            fprintf(stderr, "tumiki: cannot create %s: %s (it must not exist yet)\n", outp,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            return 1;
        }
    }
    char err[1024];
    int rc = tk_config_import_claude(in, out, stderr, err, sizeof(err));
    if (outp && fclose(out) != 0 && rc == TK_OK) {
        tk_snprintf(err, sizeof(err), "cannot write %s: %s", outp, strerror(errno));
        rc = TK_EIO;
    }
    if (rc != TK_OK) {
        fprintf(stderr, "tumiki: %s\n", err);
        if (outp)
            unlink(outp);
        return 1;
    }
    return 0;
}

/* ---- tumiki key ... ---- */

/* Output that must not be lost (a key shown once): fail if stdout failed. */
static int stdout_ok(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        (void)fputs("tumiki: writing to standard output failed\n", stderr);
        return 1;
    }
    return rc;
}

/* Record a permission or secret change made from the command line: ids
 * only, never a key or token. Returns 0, or 1 after saying why. */
static int cli_audit(tk_audit_t *au, const char *action, const char *target, const char *endpoint,
                     const char *result, json_t *detail /* stolen */)
{
    int rc = tk_audit_cli_append(au, action, target, endpoint, result, detail);
    json_decref(detail);
    return rc;
}

static void print_time(int64_t ms)
{
    if (ms == 0) {
        (void)fputs("-", stdout);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    if (strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
    (void)fputs(buf, stdout);
}

static int key_create(tk_config_t *cfg, tk_store_t *st, tk_audit_t *au, const char *endpoint,
                      const char *name, uint64_t days, const char *owner, const char *scopes)
{
    if (scopes != NULL && !tk_scopes_valid(scopes)) {
        fputs("tumiki key: --scopes takes \"mcp\", \"admin\" or \"mcp admin\"\n", stderr);
        return 2;
    }
    tk_endpoint_row_t made;
    memset(&made, 0, sizeof(made));
    if (strcmp(endpoint, "*") != 0 && tk_config_find_endpoint(cfg, endpoint) == NULL &&
        tk_store_endpoint_get(st, endpoint, &made) != TK_OK) { /* nor made through the API */
        fprintf(stderr, "tumiki: %s: no endpoint \"%s\"\n", cfg->path, endpoint);
        return 1;
    }
    tk_endpoint_row_clear(&made);
    char key[TK_APIKEY_LEN + 1], id[TK_APIKEY_ID_LEN + 1], hash[TK_APIKEY_HASH_MAX];
    if (tk_apikey_generate(key, id) != TK_OK ||
        tk_apikey_hash(key + 4 + TK_APIKEY_ID_LEN, hash, sizeof(hash)) != TK_OK) {
        fputs("tumiki: cannot generate a key\n", stderr);
        return 1;
    }
    tk_apikey_t k;
    memset(&k, 0, sizeof(k));
    tk_snprintf(k.id, sizeof(k.id), "%s", id);
    k.name = (char *)(name ? name : "");
    k.hash = hash;
    k.endpoint = (char *)endpoint;
    k.scopes = (char *)(scopes != NULL ? scopes : "");
    k.owner = (char *)owner;
    k.created_at = tk_wall_ms();
    k.expires_at = days ? k.created_at + (int64_t)days * 86400000 : 0;
    int rc = tk_store_apikey_insert(st, &k);
    if (rc != TK_OK) {
        fprintf(stderr, "tumiki: cannot store the key: %s\n",
                rc == TK_EINVAL && owner != NULL ? "no such user (--owner)" : tk_strerror(rc));
        return 1;
    }
    char target[TK_APIKEY_ID_LEN + 8];
    tk_snprintf(target, sizeof(target), "key:%s", id);
    int arc = cli_audit(au, "key.create", target, endpoint, "ok",
                        json_pack("{s:s, s:I, s:s?, s:s}", "name", name ? name : "",
                                  "expires_days", (json_int_t)days, "owner", owner, "scopes",
                                  scopes != NULL ? scopes : "mcp"));
    printf("%s\n", key);
    fprintf(stderr, "key %s created for endpoint %s; it is shown only this once\n", id, endpoint);
    OPENSSL_cleanse(key, sizeof(key));
    return arc;
}

static int key_list(tk_store_t *st)
{
    tk_apikey_t *keys = NULL;
    size_t n = 0;
    if (tk_store_apikey_list(st, &keys, &n) != TK_OK) {
        fputs("tumiki: cannot list keys\n", stderr);
        return 1;
    }
    printf("%-16s  %-16s  %-20s  %-20s  %-20s  %-20s  %-16s  %-9s  %s\n", "ID", "ENDPOINT",
           "CREATED", "EXPIRES", "REVOKED", "LAST USED", "OWNER", "SCOPES", "NAME");
    for (size_t i = 0; i < n; i++) {
        printf("%-16s  %-16s  ", keys[i].id, keys[i].endpoint ? keys[i].endpoint : "");
        print_time(keys[i].created_at);
        (void)fputs("  ", stdout);
        print_time(keys[i].expires_at);
        (void)fputs("  ", stdout);
        print_time(keys[i].revoked_at);
        (void)fputs("  ", stdout);
        print_time(keys[i].last_used_at);
        printf("  %-16s  %-9s  %s\n", keys[i].owner ? keys[i].owner : "-",
               keys[i].scopes && keys[i].scopes[0] ? keys[i].scopes : "mcp",
               keys[i].name ? keys[i].name : "");
    }
    tk_apikey_list_free(keys, n);
    return 0;
}

static int cmd_key(int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "", *config = NULL, *endpoint = NULL, *name = NULL;
    const char *id = NULL, *owner = NULL, *scopes = NULL, *expires = NULL;
    uint64_t days = 0;
    const tk_cli_flag_t flags[] = {{"--config", &config, NULL}, {"--endpoint", &endpoint, NULL},
                                   {"--name", &name, NULL},     {"--owner", &owner, NULL},
                                   {"--scopes", &scopes, NULL}, {"--expires-days", &expires, NULL}};
    if (tk_cli_flags("key", argc - 1, argv + 1, flags, TK_CLI_NFLAGS(flags), &id) != 0)
        return 2;
    if (expires != NULL && tk_parse_uint(expires, 1, 36500, &days) != TK_OK) {
        fputs("tumiki key: --expires-days takes 1 to 36500\n", stderr);
        return 2;
    }
    int create = !strcmp(sub, "create"), list = !strcmp(sub, "list");
    int revoke = !strcmp(sub, "revoke");
    if (config == NULL || (!create && !list && !revoke) || (create && endpoint == NULL) ||
        (revoke && id == NULL)) {
        usage(stderr);
        return 2;
    }
    tk_config_t *cfg = NULL;
    tk_store_t *st = NULL;
    tk_audit_t *au = NULL;
    int rc = tk_cli_open_store(config, &cfg, &st);
    if (rc == 0 && !list)
        rc = tk_audit_cli_open(cfg, &au);
    if (rc == 0) {
        if (create)
            rc = key_create(cfg, st, au, endpoint, name, days, owner, scopes);
        else if (list)
            rc = key_list(st);
        else {
            int r = tk_store_apikey_revoke(st, id, tk_wall_ms());
            if (r == TK_OK)
                printf("key %s revoked\n", id);
            else
                fprintf(stderr, "tumiki: %s: %s\n", id,
                        r == TK_ENOENT ? "no such key" : tk_strerror(r));
            char *target = tk_asprintf("key:%s", id);
            rc = cli_audit(au, "key.revoke", target, NULL, r == TK_OK ? "ok" : "error", NULL);
            free(target);
            rc = r == TK_OK ? rc : 1;
        }
    }
    tk_audit_close(au);
    if (st)
        tk_store_close(st);
    tk_config_destroy(cfg);
    return stdout_ok(rc);
}

/* Record an issued token's id, subject and expiry (never the token): a user
 * disabled or deleted later has theirs revoked. */
static int record_issued(const tk_jwt_keys_t *keys, tk_store_t *st, const char *tok, int64_t now)
{
    tk_jwt_claims_t c;
    const char *why;
    if (tk_jwt_verify(keys, tok, strlen(tok), now, &c, &why) != TK_OK)
        return TK_EINVAL;
    return tk_store_jti_issue(st, c.jti, c.sub, c.exp * 1000, now * 1000);
}

static int cmd_jwt(int argc, char **argv)
{
    const char *sub_cmd = argc > 0 ? argv[0] : "", *config = NULL, *sub = NULL;
    const char *endpoint = NULL, *token = NULL, *ttl = NULL;
    uint64_t hours = 12;
    const tk_cli_flag_t flags[] = {{"--config", &config, NULL},
                                   {"--sub", &sub, NULL},
                                   {"--endpoint", &endpoint, NULL},
                                   {"--ttl-hours", &ttl, NULL}};
    if (tk_cli_flags("jwt", argc - 1, argv + 1, flags, TK_CLI_NFLAGS(flags), &token) != 0)
        return 2;
    if (ttl != NULL && tk_parse_uint(ttl, 1, 12, &hours) != TK_OK) {
        fputs("tumiki jwt: --ttl-hours takes 1 to 12\n", stderr);
        return 2;
    }
    int issue = !strcmp(sub_cmd, "issue"), revoke = !strcmp(sub_cmd, "revoke");
    if (config == NULL || (!issue && !revoke) || (issue && (sub == NULL || endpoint == NULL)) ||
        (revoke && token == NULL)) {
        usage(stderr);
        return 2;
    }
    tk_config_t *cfg = NULL;
    tk_store_t *st = NULL;
    tk_audit_t *au = NULL;
    int rc = tk_cli_open_store(config, &cfg, &st);
    if (rc == 0)
        rc = tk_audit_cli_open(cfg, &au);
    if (rc == 0 && cfg->jwt_key == NULL) {
        fprintf(stderr, "tumiki: %s: no \"jwt\" section: JWTs are not enabled\n", config);
        rc = 1;
    }
    if (rc == 0) {
        tk_jwt_keys_t keys = {cfg->jwt_key, cfg->jwt_keylen, cfg->jwt_issuer, cfg->jwt_audience};
        int64_t now = tk_wall_ms() / 1000;
        if (issue) {
            char *tok = NULL;
            if (strcmp(endpoint, "*") != 0 && tk_config_find_endpoint(cfg, endpoint) == NULL) {
                fprintf(stderr, "tumiki: %s: no endpoint \"%s\"\n", config, endpoint);
                rc = 1;
            } else if (tk_jwt_issue(&keys, sub, endpoint, (uint32_t)hours * 3600, now, &tok) !=
                       TK_OK) {
                fputs("tumiki: cannot issue the token\n", stderr);
                rc = 1;
            } else if (record_issued(&keys, st, tok, now) != TK_OK) {
                fputs("tumiki: cannot record the token in the store\n", stderr);
                rc = 1;
            } else {
                char *target = tk_asprintf("jwt:%s", sub);
                rc = cli_audit(au, "jwt.issue", target, endpoint, "ok",
                               json_pack("{s:I}", "ttl_hours", (json_int_t)hours));
                free(target);
                printf("%s\n", tok);
                OPENSSL_cleanse(tok, strlen(tok));
                free(tok);
            }
        } else {
            tk_jwt_claims_t c;
            const char *why;
            if (tk_jwt_verify(&keys, token, strlen(token), now, &c, &why) != TK_OK) {
                fprintf(stderr, "tumiki: not a valid token of this gateway: %s\n", why);
                rc = 1;
            } else if (tk_store_jti_revoke(st, c.jti, c.exp * 1000, tk_wall_ms()) != TK_OK) {
                fprintf(stderr, "tumiki: cannot store the revocation\n");
                rc = 1;
            } else {
                char *target = tk_asprintf("jti:%s", c.jti);
                rc = cli_audit(au, "jwt.revoke", target, c.endpoint, "ok",
                               json_pack("{s:s}", "sub", c.sub));
                free(target);
                printf("token %s (sub %s) revoked\n", c.jti, c.sub);
            }
        }
    }
    tk_audit_close(au);
    if (st)
        tk_store_close(st);
    tk_config_destroy(cfg);
    return stdout_ok(rc);
}

/* ---- tumiki tools ... (tool-definition pins) ---- */

/* Print a name an upstream server chose, padded to width: bytes outside
 * printable ASCII become '?', so it cannot move the cursor or fake a row. */
static void print_untrusted(const char *s, int width)
{
    int n = 0;
    for (; *s; s++, n++)
        (void)putchar(*s >= 0x20 && *s < 0x7f ? *s : '?');
    for (; n < width; n++)
        (void)putchar(' ');
}

static int tools_list(tk_store_t *st, const char *server)
{
    tk_pin_t *pins = NULL;
    size_t n = 0;
    if (tk_store_pin_list(st, server, 0, &pins, &n) != TK_OK) {
        fprintf(stderr, "tumiki: cannot list tool pins: %s\n", tk_store_last_error(st));
        return 1;
    }
    printf("%-16s  %-32s  %-8s  %-12s  %-20s  %-20s  %s\n", "SERVER", "TOOL", "STATUS", "HASH",
           "FIRST SEEN", "APPROVED", "BY");
    for (size_t i = 0; i < n; i++) {
        const tk_pin_t *p = &pins[i];
        const char *status = p->approved_hash[0] == '\0'                   ? "pending"
                             : strcmp(p->approved_hash, p->seen_hash) == 0 ? "approved"
                                                                           : "changed";
        printf("%-16s  ", p->server);
        print_untrusted(p->tool, 32);
        printf("  %-8s  %.12s  ", status, p->seen_hash);
        print_time(p->first_seen);
        (void)fputs("  ", stdout);
        print_time(p->approved_at);
        printf("  %s\n", p->approved_by ? p->approved_by : "-");
    }
    tk_pin_list_free(pins, n);
    return 0;
}

static int tools_change(tk_store_t *st, int approve, const char *server, const char *tool,
                        const char *expect)
{
    size_t changed = 0;
    int rc = approve
                 ? tk_store_pin_approve(st, server, tool, "cli", expect, tk_wall_ms(), &changed)
                 : tk_store_pin_revoke(st, server, tool, tk_wall_ms(), &changed);
    if (rc == TK_ESTATE) {
        fprintf(stderr,
                "tumiki: server %s, tool %s: the definition changed since %s was reviewed; "
                "nothing approved (see tumiki tools list)\n",
                server, tool, expect);
        return 1;
    }
    if (rc == TK_ENOENT) {
        fprintf(stderr, "tumiki: server %s has no %s%s%s seen yet (see tumiki tools list)\n",
                server, tool ? "tool \"" : "tools", tool ? tool : "", tool ? "\"" : "");
        return 1;
    }
    if (rc != TK_OK) {
        fprintf(stderr, "tumiki: cannot update tool pins: %s\n", tk_store_last_error(st));
        return 1;
    }
    printf("server %s: %zu tool definition(s) %s%s\n", server, changed,
           approve ? "approved" : "no longer approved",
           changed == 0 ? (approve ? " (already approved as last seen)" : " (none was approved)")
                        : "");
    return 0;
}

static int cmd_tools(int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "", *config = NULL, *server = NULL, *tool = NULL;
    const char *expect = NULL;
    int all = 0;
    const tk_cli_flag_t flags[] = {{"--config", &config, NULL}, {"--server", &server, NULL},
                                   {"--tool", &tool, NULL},     {"--expect", &expect, NULL},
                                   {"--all", NULL, &all}};
    if (tk_cli_flags("tools", argc - 1, argv + 1, flags, TK_CLI_NFLAGS(flags), NULL) != 0)
        return 2;
    int list = !strcmp(sub, "list"), approve = !strcmp(sub, "approve");
    int change = approve || !strcmp(sub, "revoke");
    if (config == NULL || (!list && !change) ||
        (change && (server == NULL || (tool == NULL) == (all == 0))) || (list && (tool || all)) ||
        (expect && (!approve || tool == NULL))) {
        usage(stderr);
        return 2;
    }
    tk_config_t *cfg = NULL;
    tk_store_t *st = NULL;
    int rc = tk_cli_open_store(config, &cfg, &st);
    if (rc == 0 && server != NULL && tk_config_find_server(cfg, server) == NULL) {
        fprintf(stderr, "tumiki: %s: no server \"%s\" in mcpServers\n", config, server);
        rc = 1;
    }
    if (rc == 0)
        rc = list ? tools_list(st, server) : tools_change(st, approve, server, tool, expect);
    if (change && rc == 0) {
        json_t *d = json_pack("{s:s, s:s?}", "tool", tool ? tool : "*", "expect", expect);
        rc = tk_audit_cli_record(cfg, approve ? "tools.approve" : "tools.revoke", server, NULL, "ok",
                                 d);
        json_decref(d);
    }
    if (st)
        tk_store_close(st);
    tk_config_destroy(cfg);
    return stdout_ok(rc);
}

static int cmd_account(int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "", *config = NULL, *email = NULL;
    int pw_stdin = 0;
    const tk_cli_flag_t flags[] = {{"--config", &config, NULL},
                                   {"--password-stdin", NULL, &pw_stdin}};
    if (tk_cli_flags("account", argc - 1, argv + 1, flags, TK_CLI_NFLAGS(flags), &email) != 0)
        return 2;
    int unlock = !strcmp(sub, "unlock");
    if (config == NULL || email == NULL ||
        (!unlock && strcmp(sub, "password") != 0) ||
        (!unlock && !pw_stdin)) {
        usage(stderr);
        return 2;
    }
    tk_config_t *cfg = NULL;
    tk_store_t *st = NULL;
    int rc = tk_cli_open_store(config, &cfg, &st);
    if (rc == 0) {
        rc = tk_account_cli(st, cfg->dash_bcrypt_cost, sub, email, stdin, stdout, stderr);
        if (tk_audit_cli_record(cfg, unlock ? "account.unlock" : "account.password", email, NULL,
                                rc == 0 ? "ok" : "error", NULL) != 0 && rc == 0)
            rc = 1;
    }
    tk_store_close(st);
    tk_config_destroy(cfg);
    return stdout_ok(rc);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "check-config"))
        return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "import-claude-config"))
        return cmd_import(argc - 2, argv + 2);
    if (!strcmp(cmd, "key"))
        return cmd_key(argc - 2, argv + 2);
    if (!strcmp(cmd, "jwt"))
        return cmd_jwt(argc - 2, argv + 2);
    if (!strcmp(cmd, "account"))
        return cmd_account(argc - 2, argv + 2);
    if (!strcmp(cmd, "user"))
        return stdout_ok(tk_cli_user(argc - 2, argv + 2));
    if (!strcmp(cmd, "endpoint"))
        return stdout_ok(tk_cli_endpoint(argc - 2, argv + 2));
    if (!strcmp(cmd, "server"))
        return stdout_ok(tk_cli_server(argc - 2, argv + 2));
    if (!strcmp(cmd, "tools"))
        return cmd_tools(argc - 2, argv + 2);
    if (!strcmp(cmd, "audit"))
        return tk_audit_cli(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("tumiki %s\n", TK_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tumiki: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
