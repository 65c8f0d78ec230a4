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
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "config/config.h"
#include "core/core.h"
#include "http/server.h"
#include "mcp/gateway.h"

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
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--ready-file") && i + 1 < argc)
            ready = argv[++i];
        else {
            fprintf(stderr, "tumiki serve: unknown or incomplete option \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (config == NULL) {
        fputs("tumiki serve: --config FILE is required\n", stderr);
        return 2;
    }
    char err[1024];
    tk_config_t *cfg = NULL;
    if (tk_config_load_file(config, &cfg, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s\n", err);
        return 1;
    }
    tk_log_set_level(cfg->log_level);
    if (cfg->bearer_token == NULL && tk_http_is_loopback(cfg->listen_host) &&
        bootstrap_token(cfg) != 0) {
        tk_config_destroy(cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
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
    tk_gateway_t *gw = tk_gateway_create(base, cfg);
    tk_http_server_t *http = NULL;
    int rc = 1;
    if (tk_http_server_create(base, cfg, gw, &http, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "tumiki: %s: %s\n", config, err);
        goto out;
    }
    tk_info(MOD, "tumiki %s listening on %s://%s:%d (%zu servers, %zu endpoints)", TK_VERSION,
            cfg->tls_cert_file ? "https" : "http", cfg->listen_host, tk_http_server_port(http),
            cfg->nservers, cfg->nendpoints);
    tk_gateway_start(gw);
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
    event_base_free(base);
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
    if (outp)
        fclose(out);
    if (rc != TK_OK) {
        fprintf(stderr, "tumiki: %s\n", err);
        if (outp)
            unlink(outp);
        return 1;
    }
    return 0;
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
