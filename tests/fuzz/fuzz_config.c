/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the config loader (src/config/config.c), whose input is an
 * operator-supplied file but whose "mcpServers" part is routinely pasted
 * from third-party client configs: tk_config_load_string on the input (a
 * NUL-terminated copy) and tk_config_import_claude on the same bytes written
 * to a temporary file (created once, rewritten per input). Checks that a
 * load either yields a config whose endpoint server indexes are in range and
 * whose strings are set, or fails with a non-empty "FILE: ..." message and no
 * config; the import writes to /dev/null. stdin is replaced by /dev/null and
 * TUMIKI_TOKEN unset, so "bearer_token_file": "/dev/stdin" cannot hang the
 * run and results do not depend on the caller's environment.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz.h"

static int tmp_fd = -1;
static char tmp_path[64];
static FILE *devnull;

static void remove_tmp(void)
{
    unlink(tmp_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsetenv("TUMIKI_TOKEN");
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0 && fd != STDIN_FILENO) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmp_path, sizeof(tmp_path), "%s/tk-fuzz-config-XXXXXX", dir);
    tmp_fd = mkstemp(tmp_path);
    FUZZ_CHECK(tmp_fd >= 0);
    atexit(remove_tmp);
    devnull = fopen("/dev/null", "w");
    FUZZ_CHECK(devnull != NULL);
    tk_log_set_level(TK_LOG_ERROR);
    return 0;
}

static void check_config(const tk_config_t *cfg)
{
    FUZZ_CHECK(cfg->path != NULL && cfg->listen_host != NULL && cfg->data_dir != NULL);
    FUZZ_CHECK(cfg->nservers <= TK_MAX_SERVERS);
    FUZZ_CHECK(cfg->nendpoints >= 1 && cfg->nendpoints <= TK_MAX_ENDPOINTS);
    FUZZ_CHECK((cfg->tls_cert_file == NULL) == (cfg->tls_key_file == NULL));
    if (cfg->bearer_token != NULL)
        FUZZ_CHECK(strlen(cfg->bearer_token) >= TK_MIN_TOKEN_LEN);
    for (size_t i = 0; i < cfg->nservers; i++) {
        const tk_server_conf_t *s = &cfg->servers[i];
        FUZZ_CHECK(s->name != NULL && strlen(s->name) <= TK_SERVER_NAME_MAX);
        FUZZ_CHECK(tk_config_find_server(cfg, s->name) == s);
        if (s->transport == TK_TRANSPORT_STDIO)
            FUZZ_CHECK(s->command != NULL);
        else
            FUZZ_CHECK(s->url != NULL);
    }
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const tk_endpoint_conf_t *e = &cfg->endpoints[i];
        FUZZ_CHECK(e->slug != NULL && strlen(e->slug) <= TK_SLUG_MAX);
        FUZZ_CHECK(tk_config_find_endpoint(cfg, e->slug) == e);
        for (size_t j = 0; j < e->nservers; j++)
            FUZZ_CHECK(e->servers[j] < cfg->nservers);
    }
}

static void load(const char *text)
{
    tk_config_t *cfg = (tk_config_t *)0x1; /* must be reset on every path */
    char err[512];
    err[0] = '\0';
    int rc = tk_config_load_string(text, "fuzz.json", &cfg, err, sizeof(err));
    if (rc == TK_OK) {
        FUZZ_CHECK(cfg != NULL);
        check_config(cfg);
        tk_config_destroy(cfg);
    } else {
        FUZZ_CHECK(rc < 0 && cfg == NULL);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        FUZZ_CHECK(strncmp(err, "fuzz.json: ", 11) == 0);
    }
}

static void import(const uint8_t *data, size_t size)
{
    char err[512];
    if (ftruncate(tmp_fd, 0) != 0 || pwrite(tmp_fd, data, size, 0) != (ssize_t)size)
        return;
    err[0] = '\0';
    int rc = tk_config_import_claude(tmp_path, devnull, devnull, err, sizeof(err));
    if (rc != TK_OK)
        FUZZ_CHECK(rc < 0 && err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    load(text);
    free(text);
    import(data, size);
    return 0;
}
