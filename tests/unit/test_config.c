/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the config loader: defaults, every key, each validation error
 * with its key path, secrets kept out of messages, the TUMIKI_TOKEN fallback,
 * token files, and the Claude Desktop / VS Code importer round-tripping through
 * tk_config_load_string. Temp files come from mkstemp and are removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

#define TOKEN "0123456789abcdef0123456789abcdef" /* 32 chars */

static char err[512];

static tk_config_t *load_ok(const char *json)
{
    tk_config_t *cfg = NULL;
    err[0] = '\0';
    int rc = tk_config_load_string(json, "t.json", &cfg, err, sizeof(err));
    if (rc != TK_OK)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(rc, TK_OK);
    assert_non_null(cfg);
    return cfg;
}

/* Load must fail and the message must be "t.json: " + want (prefix match). */
static void expect_err(const char *json, const char *want)
{
    tk_config_t *cfg = (tk_config_t *)1;
    char full[600];
    err[0] = '\0';
    int rc = tk_config_load_string(json, "t.json", &cfg, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(cfg);
    snprintf(full, sizeof(full), "t.json: %s", want);
    if (strncmp(err, full, strlen(full)) != 0)
        print_error("got: %s\nwant prefix: %s\n", err, full);
    assert_true(strncmp(err, full, strlen(full)) == 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Create a temp file holding text; path must hold 64 bytes. */
static void temp_file(char *path, const char *text)
{
    snprintf(path, 64, "/tmp/tk_config_test_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, text);
}

static int setup(void **state)
{
    (void)state;
    unsetenv("TUMIKI_TOKEN");
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    tk_config_t *cfg = load_ok("{}");
    assert_string_equal(cfg->path, "t.json");
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_string_equal(cfg->data_dir, "./data");
    assert_null(cfg->bearer_token);
    assert_int_equal(cfg->log_level, TK_LOG_INFO);
    assert_int_equal(cfg->norigins, 0);
    assert_int_equal(cfg->nhosts, 0);
    assert_int_equal(cfg->max_body_bytes, 4u << 20);
    assert_int_equal(cfg->max_message_bytes, 16u << 20);
    assert_int_equal(cfg->session_idle_timeout_s, 3600);
    assert_int_equal(cfg->max_sessions, 10000);
    assert_int_equal(cfg->nservers, 0);
    assert_int_equal(cfg->nendpoints, 1);
    assert_string_equal(cfg->endpoints[0].slug, "default");
    assert_int_equal(cfg->endpoints[0].nservers, 0);
    tk_config_destroy(cfg);
}

static void test_full(void **state)
{
    (void)state;
    tk_config_t *cfg = load_ok(
        "{\"listen\": \"0.0.0.0:9000\", \"data_dir\": \"/var/lib/tumiki\",\n"
        " \"log_level\": \"debug\", \"auth\": {\"bearer_token\": \"" TOKEN "\"},\n"
        " \"allowed_origins\": [\"http://localhost:6274\", \"https://App.Example.com\"],\n"
        " \"allowed_hosts\": [\"tumiki.internal\", \"gw.example.com:8443\", \"[::1]:80\"],\n"
        " \"limits\": {\"max_body_bytes\": 2048, \"max_message_bytes\": 1048576,\n"
        "   \"session_idle_timeout_s\": 60, \"max_sessions\": 5},\n"
        " \"mcpServers\": {\n"
        "  \"fs\": {\"command\": \"npx\", \"args\": [\"-y\", \"server-fs\", \"/tmp\"],\n"
        "    \"env\": {\"HOME\": \"/home/u\", \"API_KEY\": \"s3cret\"}, \"cwd\": \"/srv\",\n"
        "    \"timeout_ms\": 5000, \"connect_timeout_ms\": 2000, \"idle_timeout_s\": 0,\n"
        "    \"max_inflight\": 8, \"disabled\": true},\n"
        "  \"remote\": {\"url\": \"https://mcp.example.com/mcp\",\n"
        "    \"headers\": {\"Authorization\": \"Bearer xyz\"}}},\n"
        " \"endpoints\": {\"main\": {\"servers\": [\"remote\", \"fs\"],\n"
        "    \"tools\": {\"allow\": [\"fs__*\", \"remote__get.x\"], \"deny\": [\"*delete*\"]}},\n"
        "   \"all\": {}}}");
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 9000);
    assert_string_equal(cfg->data_dir, "/var/lib/tumiki");
    assert_int_equal(cfg->log_level, TK_LOG_DEBUG);
    assert_string_equal(cfg->bearer_token, TOKEN);
    assert_int_equal(cfg->norigins, 2);
    assert_string_equal(cfg->allowed_origins[1], "https://app.example.com");
    assert_int_equal(cfg->nhosts, 3);
    assert_string_equal(cfg->allowed_hosts[1], "gw.example.com:8443");
    assert_int_equal(cfg->max_body_bytes, 2048);
    assert_int_equal(cfg->max_message_bytes, 1048576);
    assert_int_equal(cfg->session_idle_timeout_s, 60);
    assert_int_equal(cfg->max_sessions, 5);

    assert_int_equal(cfg->nservers, 2);
    const tk_server_conf_t *fs = &cfg->servers[0];
    assert_string_equal(fs->name, "fs");
    assert_int_equal(fs->transport, TK_TRANSPORT_STDIO);
    assert_string_equal(fs->command, "npx");
    assert_int_equal(fs->nargs, 3);
    assert_string_equal(fs->args[2], "/tmp");
    assert_int_equal(fs->nenv, 2);
    assert_string_equal(fs->env[1].name, "API_KEY");
    assert_string_equal(fs->env[1].value, "s3cret");
    assert_string_equal(fs->cwd, "/srv");
    assert_int_equal(fs->request_timeout_ms, 5000);
    assert_int_equal(fs->connect_timeout_ms, 2000);
    assert_int_equal(fs->idle_timeout_s, 0);
    assert_int_equal(fs->max_inflight, 8);
    assert_true(fs->disabled);
    const tk_server_conf_t *r = tk_config_find_server(cfg, "remote");
    assert_ptr_equal(r, &cfg->servers[1]);
    assert_int_equal(r->transport, TK_TRANSPORT_HTTP);
    assert_string_equal(r->url, "https://mcp.example.com/mcp");
    assert_int_equal(r->nheaders, 1);
    assert_string_equal(r->headers[0].value, "Bearer xyz");
    assert_false(r->disabled);
    assert_int_equal(r->request_timeout_ms, 60000);
    assert_int_equal(r->connect_timeout_ms, 10000);
    assert_int_equal(r->idle_timeout_s, 600);
    assert_int_equal(r->max_inflight, 1024);
    assert_null(tk_config_find_server(cfg, "nope"));

    assert_int_equal(cfg->nendpoints, 2);
    const tk_endpoint_conf_t *e = tk_config_find_endpoint(cfg, "main");
    assert_non_null(e);
    assert_int_equal(e->nservers, 2);
    assert_int_equal(e->servers[0], 1);
    assert_int_equal(e->servers[1], 0);
    assert_int_equal(e->nallow, 2);
    assert_string_equal(e->tool_allow[1], "remote__get.x");
    assert_int_equal(e->ndeny, 1);
    e = tk_config_find_endpoint(cfg, "all");
    assert_non_null(e);
    assert_int_equal(e->nservers, 2);
    assert_int_equal(e->nallow + e->ndeny, 0);
    assert_null(tk_config_find_endpoint(cfg, "default"));
    tk_config_destroy(cfg);
}

static void test_listen(void **state)
{
    (void)state;
    tk_config_t *cfg = load_ok("{\"listen\": \"[::1]:0\"}");
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 0);
    tk_config_destroy(cfg);
    cfg = load_ok("{\"listen\": \"localhost:65535\"}");
    assert_string_equal(cfg->listen_host, "localhost");
    assert_int_equal(cfg->listen_port, 65535);
    tk_config_destroy(cfg);

    expect_err("{\"listen\": \"localhost\"}", "listen: expected \"HOST:PORT\"");
    expect_err("{\"listen\": \":80\"}", "listen: empty host");
    expect_err("{\"listen\": \"h:65536\"}", "listen: port must be");
    expect_err("{\"listen\": \"h:-1\"}", "listen: port must be");
    expect_err("{\"listen\": \"h:\"}", "listen: port must be");
    expect_err("{\"listen\": \"::1:80\"}", "listen: IPv6 addresses must be in brackets");
    expect_err("{\"listen\": \"[::1]80\"}", "listen: unexpected characters");
    expect_err("{\"listen\": \"[]:80\"}", "listen: invalid IPv6");
    expect_err("{\"listen\": 8080}", "listen: expected a string");
}

static void test_log_level_and_types(void **state)
{
    (void)state;
    tk_config_t *cfg = load_ok("{\"log_level\": \"error\"}");
    assert_int_equal(cfg->log_level, TK_LOG_ERROR);
    tk_config_destroy(cfg);
    expect_err("{\"log_level\": \"verbose\"}", "log_level: expected \"debug\"");
    expect_err("{\"data_dir\": \"\"}", "data_dir: must not be empty");
    expect_err("{\"data_dir\": 5}", "data_dir: expected a string");
    expect_err("[]", "expected a JSON object at the top level");
}

static void test_invalid_json(void **state)
{
    (void)state;
    expect_err("{\n  \"listen\": ,\n}", "line 2 column");
    assert_non_null(strstr(err, "invalid JSON"));
    expect_err("{\"data_dir\": \"\xff\xfe\"}", "line 1 column");
    expect_err("", "line 1 column");
}

static void test_invalid_json_hides_input(void **state)
{
    (void)state;
    /* An unterminated token string must not be echoed back by jansson's "near". */
    expect_err("{\"auth\": {\"bearer_token\": \"" TOKEN, "line 1 column");
    assert_null(strstr(err, TOKEN));
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    expect_err("{\"listen\": \"a:1\",\n \"listen\": \"b:2\"}", "line 2 column");
    assert_non_null(strstr(err, "duplicate"));
    expect_err("{\"mcpServers\": {\"a\": {\"command\": \"x\"}, \"a\": {\"command\": \"y\"}}}",
               "line 1 column");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_err("{\"lsiten\": \"a:1\"}", "unknown key \"lsiten\"");
    expect_err("{\"limits\": {\"max_body\": 5000}}", "limits: unknown key \"max_body\"");
    expect_err("{\"auth\": {\"token\": \"x\"}}", "auth: unknown key \"token\"");
    expect_err("{\"mcpServers\": {\"fs\": {\"command\": \"x\", \"argz\": []}}}",
               "mcpServers.fs: unknown key \"argz\"");
    expect_err("{\"mcpServers\": {\"fs\": {\"command\": \"x\"}},"
               " \"endpoints\": {\"e\": {\"tools\": {\"allowed\": []}}}}",
               "endpoints.e.tools: unknown key \"allowed\"");
    expect_err("{\"endpoints\": {\"e\": {\"server\": []}}}", "endpoints.e: unknown key \"server\"");
}

static void test_foreign_server_keys(void **state)
{
    (void)state;
    tk_config_t *cfg =
        load_ok("{\"mcpServers\": {\"a\": {\"command\": \"x\", \"description\": \"d\","
                " \"autoApprove\": [\"t\"], \"alwaysAllow\": [], \"timeout\": 1234},"
                " \"b\": {\"command\": \"y\", \"timeout\": \"soon\"}}}");
    assert_int_equal(cfg->servers[0].request_timeout_ms, 1234);
    assert_int_equal(cfg->servers[1].request_timeout_ms, 60000);
    tk_config_destroy(cfg);
    expect_err("{\"mcpServers\": {\"a\": {\"command\": \"x\", \"timeout\": 0}}}",
               "mcpServers.a.timeout: must be between 1 and 3600000");
    expect_err("{\"mcpServers\": {\"a\": {\"command\": \"x\", \"timeout\": 5, \"timeout_ms\": 5}}}",
               "mcpServers.a: give \"timeout_ms\" or \"timeout\", not both");
}

static void test_server_names(void **state)
{
    (void)state;
    static const char *bad[] = {"a__b", "_a",  "a_",          "a b",
                                "",     "a.b", "caf\xc3\xa9", "abcdefghijabcdefghijabcdefghijabc"};
    char json[256], want[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{\"mcpServers\": {\"%s\": {\"command\": \"x\"}}}", bad[i]);
        snprintf(want, sizeof(want), "mcpServers.%s: invalid server name", bad[i]);
        expect_err(json, want);
    }
    tk_config_t *cfg = load_ok("{\"mcpServers\": {\"abcdefghijabcdefghijabcdefghijab\":"
                               " {\"command\": \"x\"}, \"A-b_c-9\": {\"command\": \"y\"}}}");
    assert_int_equal(cfg->nservers, 2);
    tk_config_destroy(cfg);
}

static void test_transport(void **state)
{
    (void)state;
    tk_config_t *cfg =
        load_ok("{\"mcpServers\": {\"s\": {\"command\": \"x\"}, \"h\": {\"url\": \"http://h/mcp\"},"
                " \"e\": {\"type\": \"sse\", \"url\": \"https://h/sse\"},"
                " \"t1\": {\"transport\": \"streamable-http\", \"url\": \"http://h\"},"
                " \"t2\": {\"type\": \"streamableHttp\", \"url\": \"http://h\"},"
                " \"t3\": {\"type\": \"http\", \"url\": \"HTTPS://h\"},"
                " \"t4\": {\"type\": \"stdio\", \"command\": \"x\"}}}");
    static const tk_transport_t want[] = {TK_TRANSPORT_STDIO, TK_TRANSPORT_HTTP, TK_TRANSPORT_SSE,
                                          TK_TRANSPORT_HTTP,  TK_TRANSPORT_HTTP, TK_TRANSPORT_HTTP,
                                          TK_TRANSPORT_STDIO};
    assert_int_equal(cfg->nservers, 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(cfg->servers[i].transport, want[i]);
    tk_config_destroy(cfg);
}

static void test_transport_errors(void **state)
{
    (void)state;
    expect_err("{\"mcpServers\": {\"s\": {\"type\": \"stdio\", \"url\": \"http://h\"}}}",
               "mcpServers.s: a stdio server needs \"command\"");
    expect_err("{\"mcpServers\": {\"s\": {\"type\": \"sse\", \"command\": \"x\"}}}",
               "mcpServers.s: an http or sse server needs \"url\"");
    expect_err("{\"mcpServers\": {\"s\": {\"command\": \"x\", \"url\": \"http://h\"}}}",
               "mcpServers.s: give either \"command\" or \"url\", not both");
    expect_err("{\"mcpServers\": {\"s\": {}}}", "mcpServers.s: needs \"command\"");
    expect_err("{\"mcpServers\": {\"s\": {\"type\": \"ws\", \"url\": \"http://h\"}}}",
               "mcpServers.s.type: unknown transport");
    expect_err("{\"mcpServers\": {\"s\": {\"type\": \"sse\", \"transport\": \"sse\","
               " \"url\": \"http://h\"}}}",
               "mcpServers.s: give \"type\" or \"transport\", not both");
    expect_err("{\"mcpServers\": {\"s\": {\"url\": \"http://h\", \"args\": [\"a\"]}}}",
               "mcpServers.s: \"args\", \"env\" and \"cwd\" apply only to stdio");
    expect_err("{\"mcpServers\": {\"s\": {\"command\": \"x\", \"headers\": {\"A\": \"b\"}}}}",
               "mcpServers.s: \"headers\" applies only");
    expect_err("{\"mcpServers\": {\"s\": \"npx\"}}", "mcpServers.s: expected an object");
    expect_err("{\"mcpServers\": []}", "mcpServers: expected an object");
}

static void test_server_value_errors(void **state)
{
    (void)state;
    expect_err("{\"mcpServers\": {\"fs\": {\"command\": \"x\", \"args\": [\"a\", \"b\", 3]}}}",
               "mcpServers.fs.args[2]: expected a string");
    expect_err("{\"mcpServers\": {\"fs\": {\"command\": \"x\", \"args\": \"a b\"}}}",
               "mcpServers.fs.args: expected an array of strings");
    expect_err("{\"mcpServers\": {\"fs\": {\"command\": \"\"}}}",
               "mcpServers.fs.command: must not be empty");
    expect_err("{\"mcpServers\": {\"fs\": {\"command\": \"x\", \"env\": {\"K\": 1}}}}",
               "mcpServers.fs.env.K: expected a string");
    expect_err("{\"mcpServers\": {\"fs\": {\"command\": \"x\", \"env\": {\"A=B\": \"v\"}}}}",
               "mcpServers.fs.env.A=B: variable names must not contain '='");
    expect_err("{\"mcpServers\": {\"fs\": {\"command\": \"x\", \"disabled\": 1}}}",
               "mcpServers.fs.disabled: expected true or false");
    expect_err("{\"mcpServers\": {\"r\": {\"url\": \"ftp://h/x?key=SECRETKEY\"}}}",
               "mcpServers.r.url: must start with http:// or https://");
    assert_null(strstr(err, "SECRETKEY"));
    expect_err("{\"mcpServers\": {\"r\": {\"url\": \"http://h/a b\"}}}",
               "mcpServers.r.url: must not contain whitespace");
    expect_err("{\"mcpServers\": {\"r\": {\"url\": \"https://\"}}}",
               "mcpServers.r.url: has no host");
}

static void test_headers_secret(void **state)
{
    (void)state;
    expect_err("{\"mcpServers\": {\"r\": {\"url\": \"http://h\","
               " \"headers\": {\"X-Key\": \"TOPSECRET\\r\\nEvil: 1\"}}}}",
               "mcpServers.r.headers.X-Key: header value must not contain CR, LF");
    assert_null(strstr(err, "TOPSECRET"));
    expect_err("{\"mcpServers\": {\"r\": {\"url\": \"http://h\","
               " \"headers\": {\"Bad Name\": \"v\"}}}}",
               "mcpServers.r.headers.Bad Name: header names must be HTTP tokens");
    expect_err("{\"mcpServers\": {\"r\": {\"url\": \"http://h\", \"headers\": {\"A\": [\"x\"]}}}}",
               "mcpServers.r.headers.A: expected a string");
}

static void test_ranges(void **state)
{
    (void)state;
    expect_err("{\"limits\": {\"max_body_bytes\": 100}}",
               "limits.max_body_bytes: must be between 1024 and 1073741824");
    expect_err("{\"limits\": {\"max_message_bytes\": 1073741825}}",
               "limits.max_message_bytes: must be between");
    expect_err("{\"limits\": {\"session_idle_timeout_s\": 0}}",
               "limits.session_idle_timeout_s: must be between 1 and 604800");
    expect_err("{\"limits\": {\"max_sessions\": -1}}", "limits.max_sessions: must be between");
    expect_err("{\"limits\": {\"max_sessions\": 1.5}}", "limits.max_sessions: expected an integer");
    expect_err("{\"limits\": []}", "limits: expected an object");
    expect_err("{\"mcpServers\": {\"s\": {\"command\": \"x\", \"max_inflight\": 0}}}",
               "mcpServers.s.max_inflight: must be between 1 and 100000");
    expect_err("{\"mcpServers\": {\"s\": {\"command\": \"x\", \"idle_timeout_s\": 604801}}}",
               "mcpServers.s.idle_timeout_s: must be between 0 and 604800");
    expect_err("{\"mcpServers\": {\"s\": {\"command\": \"x\", \"timeout_ms\": 99999999999}}}",
               "mcpServers.s.timeout_ms: must be between 1 and 3600000");
    tk_config_t *cfg = load_ok("{\"limits\": {\"max_body_bytes\": 1073741824}}");
    assert_int_equal(cfg->max_body_bytes, (size_t)1 << 30);
    tk_config_destroy(cfg);
}

static void test_threads(void **state)
{
    (void)state;
    tk_config_t *cfg = load_ok("{}");
    assert_int_equal(cfg->threads, 1);
    tk_config_destroy(cfg);
    cfg = load_ok("{\"server\": {\"threads\": 64}}");
    assert_int_equal(cfg->threads, 64);
    tk_config_destroy(cfg);
    cfg = load_ok("{\"server\": {\"threads\": \"auto\"}}");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cfg->threads, cpus < 1 ? 1 : (cpus > 64 ? 64 : cpus));
    tk_config_destroy(cfg);
    const char *want = "server.threads: expected an integer between 1 and 64 or \"auto\"";
    expect_err("{\"server\": {\"threads\": 0}}", want);
    expect_err("{\"server\": {\"threads\": 65}}", want);
    expect_err("{\"server\": {\"threads\": \"many\"}}", want);
    expect_err("{\"server\": {\"threads\": 2.5}}", want);
    expect_err("{\"server\": {\"thread\": 2}}", "server: unknown key \"thread\"");
    expect_err("{\"server\": 2}", "server: expected an object");
}

static void test_origins_and_hosts(void **state)
{
    (void)state;
    expect_err("{\"allowed_origins\": [\"http://localhost:6274/\"]}",
               "allowed_origins[0]: origins have no path");
    expect_err("{\"allowed_origins\": [\"http://a\", \"localhost:6274\"]}", "allowed_origins[1]: ");
    expect_err("{\"allowed_origins\": [\"ftp://a\"]}", "allowed_origins[0]: ");
    expect_err("{\"allowed_origins\": [\"http://a:0\"]}", "allowed_origins[0]: port must be");
    expect_err("{\"allowed_origins\": \"http://a\"}", "allowed_origins: expected an array");
    expect_err("{\"allowed_hosts\": [\"a b\"]}", "allowed_hosts[0]: ");
    expect_err("{\"allowed_hosts\": [\"\"]}", "allowed_hosts[0]: empty host");
    expect_err("{\"allowed_hosts\": [\"a:x\"]}", "allowed_hosts[0]: port must be");
    tk_config_t *cfg = load_ok("{\"allowed_hosts\": [\"My.Host\"]}");
    assert_string_equal(cfg->allowed_hosts[0], "my.host");
    tk_config_destroy(cfg);
}

static void test_default_endpoint_order(void **state)
{
    (void)state;
    tk_config_t *cfg =
        load_ok("{\"mcpServers\": {\"zeta\": {\"command\": \"z\"},"
                " \"alpha\": {\"command\": \"a\"}, \"mid\": {\"url\": \"http://m\"}}}");
    assert_int_equal(cfg->nservers, 3);
    assert_string_equal(cfg->servers[0].name, "zeta");
    assert_string_equal(cfg->servers[1].name, "alpha");
    assert_string_equal(cfg->servers[2].name, "mid");
    assert_int_equal(cfg->nendpoints, 1);
    const tk_endpoint_conf_t *e = tk_config_find_endpoint(cfg, "default");
    assert_non_null(e);
    assert_int_equal(e->nservers, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(e->servers[i], i);
    assert_int_equal(e->nallow + e->ndeny, 0);
    tk_config_destroy(cfg);
}

static void test_endpoint_namespace(void **state)
{
    (void)state;
    tk_config_t *cfg = load_ok("{\"mcpServers\": {\"a\": {\"command\": \"x\"}}}");
    assert_int_equal(cfg->endpoints[0].namespace_names, 1); /* implicit default endpoint */
    tk_config_destroy(cfg);
    cfg = load_ok("{\"mcpServers\": {\"a\": {\"command\": \"x\"}},"
                  " \"endpoints\": {\"plain\": {\"namespace\": false}, \"ns\": {}}}");
    assert_int_equal(cfg->endpoints[0].namespace_names, 0);
    assert_int_equal(cfg->endpoints[1].namespace_names, 1);
    tk_config_destroy(cfg);
    expect_err("{\"mcpServers\": {\"a\": {\"command\": \"x\"}},"
               " \"endpoints\": {\"e\": {\"namespace\": \"no\"}}}",
               "endpoints.e.namespace: expected true or false");
}

static void test_endpoint_errors(void **state)
{
    (void)state;
    const char *srv = "{\"mcpServers\": {\"a\": {\"command\": \"x\"}, \"b\": {\"command\": \"y\","
                      " \"disabled\": true}},";
    char json[512];
    snprintf(json, sizeof(json), "%s \"endpoints\": {\"main\": {\"servers\": [\"nope\"]}}}", srv);
    expect_err(json, "endpoints.main.servers[0]: unknown server \"nope\"");
    /* endpoints before mcpServers in the file still resolve */
    expect_err("{\"endpoints\": {\"main\": {\"servers\": [\"a\", \"zz\"]}},"
               " \"mcpServers\": {\"a\": {\"command\": \"x\"}}}",
               "endpoints.main.servers[1]: unknown server \"zz\"");
    snprintf(json, sizeof(json), "%s \"endpoints\": {\"main\": {\"servers\": [\"a\", \"a\"]}}}",
             srv);
    expect_err(json, "endpoints.main.servers[1]: server \"a\" is listed twice");
    snprintf(json, sizeof(json), "%s \"endpoints\": {\"Main\": {}}}", srv);
    expect_err(json, "endpoints.Main: invalid endpoint name");
    snprintf(json, sizeof(json), "%s \"endpoints\": {\"m\": {\"tools\": {\"allow\": [\"a b\"]}}}}",
             srv);
    expect_err(json, "endpoints.m.tools.allow[0]: patterns use only");
    snprintf(json, sizeof(json), "%s \"endpoints\": {\"m\": {\"tools\": {\"deny\": [\"\"]}}}}",
             srv);
    expect_err(json, "endpoints.m.tools.deny[0]: empty pattern");
    snprintf(json, sizeof(json), "%s \"endpoints\": {}}", srv);
    expect_err(json, "endpoints: no endpoints");
    snprintf(json, sizeof(json), "%s \"endpoints\": {\"m\": {\"servers\": \"a\"}}}", srv);
    expect_err(json, "endpoints.m.servers: expected an array");

    /* a disabled server may be listed; an empty list is allowed */
    snprintf(json, sizeof(json),
             "%s \"endpoints\": {\"m\": {\"servers\": [\"b\"]},"
             " \"none\": {\"servers\": []}}}",
             srv);
    tk_config_t *cfg = load_ok(json);
    assert_int_equal(cfg->endpoints[0].nservers, 1);
    assert_int_equal(cfg->endpoints[0].servers[0], 1);
    assert_int_equal(cfg->endpoints[1].nservers, 0);
    tk_config_destroy(cfg);
}

static void test_token_validation(void **state)
{
    (void)state;
    expect_err("{\"auth\": {\"bearer_token\": \"short-secret-value\"}}",
               "auth.bearer_token: token must be at least 32 characters");
    assert_null(strstr(err, "short-secret-value"));
    expect_err("{\"auth\": {\"bearer_token\": \"0123456789abcdef 0123456789abcdef\"}}",
               "auth.bearer_token: token must be printable ASCII");
    assert_null(strstr(err, "0123456789abcdef"));
    expect_err("{\"auth\": {\"bearer_token\": \"" TOKEN "\", \"bearer_token_env\": \"X\"}}",
               "auth: give only one of");
    assert_null(strstr(err, TOKEN));
    expect_err("{\"auth\": {\"bearer_token\": 5}}", "auth.bearer_token: expected a string");
    expect_err("{\"auth\": \"x\"}", "auth: expected an object");
}

static void test_token_env(void **state)
{
    (void)state;
    setenv("TUMIKI_TOKEN", TOKEN "XY", 1);
    tk_config_t *cfg = load_ok("{}");
    assert_string_equal(cfg->bearer_token, TOKEN "XY");
    tk_config_destroy(cfg);
    /* the file's own token wins */
    cfg = load_ok("{\"auth\": {\"bearer_token\": \"" TOKEN "\"}}");
    assert_string_equal(cfg->bearer_token, TOKEN);
    tk_config_destroy(cfg);

    setenv("TUMIKI_TOKEN", "tooshort-envtoken", 1);
    expect_err("{}", "TUMIKI_TOKEN (environment): token must be at least 32");
    assert_null(strstr(err, "tooshort-envtoken"));
    setenv("TUMIKI_TOKEN", "", 1);
    cfg = load_ok("{}");
    assert_null(cfg->bearer_token);
    tk_config_destroy(cfg);
    unsetenv("TUMIKI_TOKEN");

    setenv("TK_TEST_TOKEN_VAR", TOKEN, 1);
    cfg = load_ok("{\"auth\": {\"bearer_token_env\": \"TK_TEST_TOKEN_VAR\"}}");
    assert_string_equal(cfg->bearer_token, TOKEN);
    tk_config_destroy(cfg);
    unsetenv("TK_TEST_TOKEN_VAR");
    expect_err("{\"auth\": {\"bearer_token_env\": \"TK_TEST_TOKEN_VAR\"}}",
               "auth.bearer_token_env: environment variable \"TK_TEST_TOKEN_VAR\" is not set");
}

static void test_token_file(void **state)
{
    (void)state;
    char path[64], json[256];
    temp_file(path, TOKEN "\n \t\r\n");
    snprintf(json, sizeof(json), "{\"auth\": {\"bearer_token_file\": \"%s\"}}", path);
    tk_config_t *cfg = load_ok(json);
    assert_string_equal(cfg->bearer_token, TOKEN);
    tk_config_destroy(cfg);

    write_file(path, "abc\n");
    expect_err(json, "auth.bearer_token_file: token must be at least 32");
    unlink(path);
    expect_err(json, "auth.bearer_token_file: cannot read");
}

/* metrics and alerts: defaults, every key, and errors naming the key
 * without quoting the webhook URL or the key */
static void test_monitoring(void **state)
{
    (void)state;
    tk_config_t *cfg = load_ok("{}");
    assert_int_equal(cfg->metrics_require_auth, 1);
    assert_null(cfg->alerts.webhook_url);
    assert_int_equal(cfg->alerts.auth_failures.count, 20);
    assert_int_equal(cfg->alerts.auth_failures.window_s, 60);
    assert_int_equal(cfg->alerts.rate_limited.count, 100);
    assert_int_equal(cfg->alerts.upstream_restarts.count, 5);
    assert_int_equal(cfg->alerts.upstream_restarts.window_s, 300);
    assert_int_equal(cfg->alerts.cooldown_s, 300);
    assert_int_equal(cfg->alerts.timeout_ms, 5000);
    assert_int_equal(cfg->alerts.retries, 2);
    assert_int_equal(cfg->alerts.max_queue, 100);
    tk_config_destroy(cfg);

    setenv("TK_TEST_HOOK_KEY", TOKEN, 1);
    cfg = load_ok("{\"metrics\": {\"require_auth\": false}, \"outbound\": {\"allow_cidrs\": "
                  "[\"127.0.0.1/32\"]}, \"alerts\": {\"webhook_url\": "
                  "\"http://127.0.0.1:9/hook?k=s3cr3t-in-url\", \"secret_env\": "
                  "\"TK_TEST_HOOK_KEY\", \"auth_failures\": {\"count\": 0, \"window_s\": 5}, "
                  "\"rate_limited\": {\"count\": 7}, \"upstream_restarts\": {\"window_s\": 9}, "
                  "\"cooldown_s\": 11, \"timeout_ms\": 200, \"retries\": 0, \"max_queue\": 3}}");
    assert_int_equal(cfg->metrics_require_auth, 0);
    assert_string_equal(cfg->alerts.webhook_url, "http://127.0.0.1:9/hook?k=s3cr3t-in-url");
    assert_int_equal(cfg->alerts.secretlen, 32);
    assert_memory_equal(cfg->alerts.secret, TOKEN, 32);
    assert_int_equal(cfg->alerts.auth_failures.count, 0);
    assert_int_equal(cfg->alerts.auth_failures.window_s, 5);
    assert_int_equal(cfg->alerts.rate_limited.count, 7);
    assert_int_equal(cfg->alerts.rate_limited.window_s, 60);
    assert_int_equal(cfg->alerts.upstream_restarts.count, 5);
    assert_int_equal(cfg->alerts.upstream_restarts.window_s, 9);
    assert_int_equal(cfg->alerts.cooldown_s, 11);
    assert_int_equal(cfg->alerts.max_queue, 3);
    tk_config_destroy(cfg);

    expect_err("{\"listen\": \"0.0.0.0:8080\", \"auth\": {\"bearer_token\": \"" TOKEN "\"}, "
               "\"metrics\": {\"require_auth\": false}}",
               "metrics.require_auth: false is only allowed when listening on a loopback");
    expect_err("{\"metrics\": {\"require_auth\": 1}}", "metrics.require_auth: expected true or false");
    expect_err("{\"metrics\": {\"open\": true}}", "metrics: unknown key \"open\"");
    expect_err("{\"alerts\": {\"webhook_url\": \"http://127.0.0.1:9/x\"}}",
               "alerts: \"secret_env\" or \"secret_file\" is required with \"webhook_url\"");
    expect_err("{\"alerts\": {\"webhook_url\": \"ftp://h/x?k=s3cr3t-in-url\"}}",
               "alerts.webhook_url: expected an http:// or https:// URL");
    assert_null(strstr(err, "s3cr3t"));
    setenv("TK_TEST_HOOK_KEY", "short-key-s3cr3t", 1);
    expect_err("{\"alerts\": {\"secret_env\": \"TK_TEST_HOOK_KEY\"}}",
               "alerts.secret_env: the webhook signing key must be 32 to 4096 bytes (at least 256 "
               "bits); it has 16");
    assert_null(strstr(err, "s3cr3t"));
    setenv("TK_TEST_HOOK_KEY", TOKEN, 1);
    /* a loopback webhook needs an explicit outbound allow (SSRF guard) */
    expect_err("{\"alerts\": {\"webhook_url\": \"http://127.0.0.1:9/hook?k=s3cr3t-in-url\", "
               "\"secret_env\": \"TK_TEST_HOOK_KEY\"}}",
               "alerts.webhook_url: ");
    assert_null(strstr(err, "s3cr3t"));
    assert_non_null(strstr(err, "outbound.allow_cidrs"));
    expect_err("{\"alerts\": {\"auth_failures\": {\"count\": 10001}}}",
               "alerts.auth_failures.count: must be between 0 and 10000");
    expect_err("{\"alerts\": {\"rate_limited\": {\"window_s\": 0}}}",
               "alerts.rate_limited.window_s: must be between 1 and 86400");
    expect_err("{\"alerts\": {\"cooldown_s\": 0}}", "alerts.cooldown_s: must be between 1");
    expect_err("{\"alerts\": {\"page\": true}}", "alerts: unknown key \"page\"");
    unsetenv("TK_TEST_HOOK_KEY");
}

static void test_load_file(void **state)
{
    (void)state;
    char path[64], want[128];
    tk_config_t *cfg = NULL;
    temp_file(path, "{\"listen\": \"127.0.0.1:0\",\n \"mcpServers\": {\"e\": {\"command\": \"x\","
                    " \"args\": [1]}}}");
    assert_int_equal(tk_config_load_file(path, &cfg, err, sizeof(err)), TK_EINVAL);
    assert_null(cfg);
    snprintf(want, sizeof(want), "%s: mcpServers.e.args[0]: expected a string", path);
    assert_string_equal(err, want);

    write_file(path, "{\"listen\": \"127.0.0.1:0\"}");
    assert_int_equal(tk_config_load_file(path, &cfg, err, sizeof(err)), TK_OK);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->listen_port, 0);
    tk_config_destroy(cfg);

    /* over the 16 MiB cap */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputc('{', f), '{');
    assert_int_equal(fseek(f, (long)(16 << 20), SEEK_SET), 0);
    assert_int_equal(fputc('}', f), '}');
    assert_int_equal(fclose(f), 0);
    cfg = (tk_config_t *)1;
    assert_int_equal(tk_config_load_file(path, &cfg, err, sizeof(err)), TK_ELIMIT);
    assert_null(cfg);
    assert_non_null(strstr(err, "larger than 16 MiB"));
    unlink(path);

    assert_int_equal(tk_config_load_file(path, &cfg, err, sizeof(err)), TK_EIO);
    assert_null(cfg);
    assert_non_null(strstr(err, "cannot read"));
}

static void test_too_many_servers(void **state)
{
    (void)state;
    size_t cap = 64 * (TK_MAX_SERVERS + 2), len = 0;
    char *json = malloc(cap);
    assert_non_null(json);
    len += (size_t)snprintf(json + len, cap - len, "{\"mcpServers\": {");
    for (int i = 0; i <= TK_MAX_SERVERS; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s\"s%d\": {\"command\": \"x\"}",
                                i ? "," : "", i);
    snprintf(json + len, cap - len, "}}");
    tk_config_t *cfg = (tk_config_t *)1;
    assert_int_equal(tk_config_load_string(json, "t.json", &cfg, err, sizeof(err)), TK_ELIMIT);
    assert_null(cfg);
    assert_string_equal(err, "t.json: mcpServers: more than 256 servers");
    free(json);
}

static void test_small_err_buffer(void **state)
{
    (void)state;
    char small[8];
    memset(small, 'x', sizeof(small));
    tk_config_t *cfg = NULL;
    assert_int_equal(tk_config_load_string("{\"bad\": 1}", "t.json", &cfg, small, sizeof(small)),
                     TK_EINVAL);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(tk_config_load_string("{\"bad\": 1}", NULL, &cfg, NULL, 0), TK_EINVAL);
    assert_null(cfg);
}

/* Run the importer on text; returns the produced config text (caller frees)
 * and the warnings in *warnings (caller frees). */
static char *import_text(const char *text, char **warnings, int *rc)
{
    char path[64];
    char *out = NULL, *warn = NULL;
    size_t outlen = 0, warnlen = 0;
    temp_file(path, text);
    FILE *fo = open_memstream(&out, &outlen);
    FILE *fw = open_memstream(&warn, &warnlen);
    assert_non_null(fo);
    assert_non_null(fw);
    *rc = tk_config_import_claude(path, fo, fw, err, sizeof(err));
    fclose(fo);
    fclose(fw);
    unlink(path);
    *warnings = warn;
    return out;
}

static const char claude_sample[] =
    "{\n"
    "  \"globalShortcut\": \"Ctrl+Space\",\n"
    "  \"mcpServers\": {\n"
    "    \"filesystem\": {\n"
    "      \"command\": \"npx\",\n"
    "      \"args\": [\"-y\", \"@modelcontextprotocol/server-filesystem\", \"/Users/me/Desktop\"]\n"
    "    },\n"
    "    \"GitHub Server\": {\n"
    "      \"command\": \"docker\",\n"
    "      \"args\": [\"run\", \"-i\", \"--rm\", \"ghcr.io/github/github-mcp-server\"],\n"
    "      \"env\": {\"GITHUB_PERSONAL_ACCESS_TOKEN\": \"ghp_secretvalue\"},\n"
    "      \"autoApprove\": []\n"
    "    },\n"
    "    \"GitHub-Server\": {\"url\": \"https://api.example.com/mcp\", \"type\": \"http\"},\n"
    "    \"__weird__name__\": {\"type\": \"sse\", \"url\": \"https://h/sse\","
    " \"headers\": {\"Authorization\": \"Bearer abc\"}}\n"
    "  }\n"
    "}\n";

static void test_import_claude(void **state)
{
    (void)state;
    char *warnings;
    int rc;
    char *out = import_text(claude_sample, &warnings, &rc);
    if (rc != TK_OK)
        print_error("import: %s\n", err);
    assert_int_equal(rc, TK_OK);
    /* key order and pretty printing */
    const char *l = strstr(out, "\"listen\""), *d = strstr(out, "\"data_dir\"");
    const char *m = strstr(out, "\"mcpServers\""), *e = strstr(out, "\"endpoints\"");
    assert_true(l && d && m && e && l < d && d < m && m < e);
    assert_non_null(strstr(out, "\n  \"listen\": \"127.0.0.1:8080\""));
    assert_null(strstr(warnings, "ghp_secretvalue"));
    assert_non_null(strstr(warnings, "ignoring top-level key \"globalShortcut\""));
    assert_non_null(
        strstr(warnings, "mcpServers.GitHub Server: dropping unknown key \"autoApprove\""));
    assert_non_null(strstr(warnings, "renamed to \"GitHub-Server-2\""));
    assert_non_null(strstr(warnings, "renamed to \"weird_name\""));

    tk_config_t *cfg = load_ok(out);
    assert_int_equal(cfg->nservers, 4);
    assert_string_equal(cfg->servers[0].name, "filesystem");
    assert_int_equal(cfg->servers[0].nargs, 3);
    assert_string_equal(cfg->servers[1].name, "GitHub-Server-2");
    assert_string_equal(cfg->servers[1].env[0].value, "ghp_secretvalue");
    assert_string_equal(cfg->servers[2].name, "GitHub-Server");
    assert_int_equal(cfg->servers[2].transport, TK_TRANSPORT_HTTP);
    assert_string_equal(cfg->servers[3].name, "weird_name");
    assert_int_equal(cfg->servers[3].transport, TK_TRANSPORT_SSE);
    assert_int_equal(cfg->servers[3].nheaders, 1);
    const tk_endpoint_conf_t *ep = tk_config_find_endpoint(cfg, "default");
    assert_non_null(ep);
    assert_int_equal(ep->nservers, 4);
    tk_config_destroy(cfg);
    free(out);
    free(warnings);
}

static void test_import_vscode(void **state)
{
    (void)state;
    char *warnings;
    int rc;
    char *out = import_text(
        "{\"inputs\": [{\"type\": \"promptString\", \"id\": \"k\"}],\n"
        " \"servers\": {\n"
        "  \"fetch\": {\"type\": \"stdio\", \"command\": \"uvx\", \"args\": [\"mcp-server-fetch\"],"
        " \"envFile\": \"${workspaceFolder}/.env\"},\n"
        "  \"remote\": {\"type\": \"streamableHttp\", \"url\": \"https://h/mcp\"}}}",
        &warnings, &rc);
    if (rc != TK_OK)
        print_error("import: %s\n", err);
    assert_int_equal(rc, TK_OK);
    assert_non_null(strstr(warnings, "ignoring top-level key \"inputs\""));
    assert_non_null(strstr(warnings, "servers.fetch: dropping unknown key \"envFile\""));
    tk_config_t *cfg = load_ok(out);
    assert_int_equal(cfg->nservers, 2);
    assert_int_equal(cfg->servers[0].transport, TK_TRANSPORT_STDIO);
    assert_string_equal(cfg->servers[0].args[0], "mcp-server-fetch");
    assert_int_equal(cfg->servers[1].transport, TK_TRANSPORT_HTTP);
    assert_string_equal(cfg->servers[1].url, "https://h/mcp");
    tk_config_destroy(cfg);
    free(out);
    free(warnings);
}

static void test_import_errors(void **state)
{
    (void)state;
    char *warnings;
    int rc;
    char *out = import_text("{\"projects\": {}}", &warnings, &rc);
    assert_int_equal(rc, TK_EINVAL);
    assert_non_null(strstr(err, "no \"mcpServers\""));
    free(out);
    free(warnings);
    /* bad values surface through the round-trip check, with a key path */
    out = import_text("{\"mcpServers\": {\"a\": {\"command\": \"x\", \"args\": [1]}}}", &warnings,
                      &rc);
    assert_int_equal(rc, TK_EINVAL);
    assert_non_null(strstr(err, "mcpServers.a.args[0]: expected a string"));
    free(out);
    free(warnings);
    out = import_text("{\"mcpServers\": {\"a\": {\"type\": \"websocket\", \"url\": \"ws://h\"}}}",
                      &warnings, &rc);
    assert_int_equal(rc, TK_EINVAL);
    assert_non_null(strstr(err, "mcpServers.a.type: unknown transport"));
    free(out);
    free(warnings);
    out = import_text("{\"mcpServers\": {\"a\": 1, }", &warnings, &rc);
    assert_int_equal(rc, TK_EINVAL);
    assert_non_null(strstr(err, "line 1 column"));
    free(out);
    free(warnings);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    assert_int_equal(
        tk_config_import_claude("/nonexistent/x.json", devnull, NULL, err, sizeof(err)), TK_EIO);
    fclose(devnull);
}

static void test_import_long_names(void **state)
{
    (void)state;
    char *warnings;
    int rc;
    /* two 40-char invalid names that sanitise to the same 32-char prefix */
    char *out = import_text("{\"mcpServers\": {"
                            "\"a.bcdefghijabcdefghijabcdefghijabcdefghi1\": {\"command\": \"x\"},"
                            "\"a.bcdefghijabcdefghijabcdefghijabcdefghi2\": {\"command\": \"y\"},"
                            "\"\xe6\x97\xa5\xe6\x9c\xac\": {\"command\": \"z\"}}}",
                            &warnings, &rc);
    if (rc != TK_OK)
        print_error("import: %s\n", err);
    assert_int_equal(rc, TK_OK);
    tk_config_t *cfg = load_ok(out);
    assert_int_equal(cfg->nservers, 3);
    assert_string_equal(cfg->servers[0].name, "a-bcdefghijabcdefghijabcdefghija");
    assert_string_equal(cfg->servers[1].name, "a-bcdefghijabcdefghijabcdefghi-2");
    assert_string_equal(cfg->servers[2].name, "--");
    tk_config_destroy(cfg);
    free(out);
    free(warnings);
}

static void test_import_example_file(void **state)
{
    (void)state;
    /* examples/ relative to this source file (CMake passes absolute paths) */
    char path[1024];
    const char *slash = strrchr(__FILE__, '/');
    if (__FILE__[0] != '/' || slash == NULL)
        skip();
    snprintf(path, sizeof(path), "%.*s/../../examples/claude_desktop_config.json",
             (int)(slash - __FILE__), __FILE__);
    if (access(path, R_OK) != 0)
        skip();
    char *out = NULL;
    size_t outlen = 0;
    FILE *fo = open_memstream(&out, &outlen);
    assert_non_null(fo);
    int rc = tk_config_import_claude(path, fo, NULL, err, sizeof(err));
    fclose(fo);
    if (rc != TK_OK)
        print_error("import: %s\n", err);
    assert_int_equal(rc, TK_OK);
    tk_config_t *cfg = load_ok(out);
    assert_int_equal(cfg->nservers, 2);
    assert_int_equal(cfg->endpoints[0].nservers, 2);
    tk_config_destroy(cfg);
    free(out);
}

/* "audit": defaults, the table's ranges, and the HMAC key from the
 * environment (never quoted in errors). */
static void test_audit_section(void **state)
{
    (void)state;
    tk_config_t *cfg = load_ok("{}");
    assert_true(cfg->audit_enabled);
    assert_null(cfg->audit_dir);
    assert_int_equal(cfg->audit_retention_days, 90);
    assert_int_equal(cfg->audit_fsync_interval_ms, 1000);
    assert_false(cfg->audit_log_arguments);
    assert_null(cfg->audit_key);
    tk_config_destroy(cfg);
    setenv("TK_TEST_AUDIT_KEY", "k-0123456789abcdef0123456789abcdef", 1);
    cfg = load_ok("{\"audit\": {\"enabled\": false, \"dir\": \"/x\", \"retention_days\": 1,"
                  " \"fsync_interval_ms\": 0, \"log_arguments\": true, \"log_results\": true,"
                  " \"hmac_key_env\": \"TK_TEST_AUDIT_KEY\"}}");
    assert_false(cfg->audit_enabled);
    assert_string_equal(cfg->audit_dir, "/x");
    assert_int_equal(cfg->audit_retention_days, 1);
    assert_int_equal(cfg->audit_fsync_interval_ms, 0);
    assert_true(cfg->audit_log_arguments && cfg->audit_log_results);
    assert_int_equal(cfg->audit_keylen, 34);
    assert_memory_equal(cfg->audit_key, "k-0123456789abcdef0123456789abcdef", 34);
    tk_config_destroy(cfg);
    expect_err("{\"audit\": {\"retention_days\": 0}}",
               "audit.retention_days: must be between 1 and 36500");
    expect_err("{\"audit\": {\"fsync_interval_ms\": 60001}}",
               "audit.fsync_interval_ms: must be between 0 and 60000");
    expect_err("{\"audit\": {\"retention\": 5}}", "audit: unknown key \"retention\"");
    expect_err("{\"audit\": {\"log_arguments\": 1}}",
               "audit.log_arguments: expected true or false");
    setenv("TK_TEST_AUDIT_KEY", "short-secret-value", 1);
    expect_err("{\"audit\": {\"hmac_key_env\": \"TK_TEST_AUDIT_KEY\"}}",
               "audit.hmac_key_env: the audit HMAC key must be 32 to 256 bytes (at least 256 bits); "
               "it has 18");
    assert_null(strstr(err, "short-secret-value"));
    expect_err("{\"audit\": {\"hmac_key_env\": \"TK_TEST_AUDIT_UNSET\"}}",
               "audit.hmac_key_env: environment variable \"TK_TEST_AUDIT_UNSET\" is not set");
    setenv("TK_TEST_AUDIT_KEY", "k-0123456789abcdef0123456789abcdef", 1);
    expect_err("{\"audit\": {\"hmac_key_env\": \"TK_TEST_AUDIT_KEY\","
               " \"hmac_key_file\": \"/nonexistent\"}}",
               "audit.hmac_key_file: give only one of");
    expect_err("{\"audit\": {\"hmac_key_env\": 5}}", "audit.hmac_key_env: expected a non-empty string");
    expect_err("{\"alerts\": {\"secret_env\": \"TK_TEST_AUDIT_KEY\", \"secret_file\": \"/x\"}}",
               "alerts.secret_file: give only one of \"secret_env\" and \"secret_file\"");
    unsetenv("TK_TEST_AUDIT_KEY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_section),
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_full, setup),
        cmocka_unit_test_setup(test_listen, setup),
        cmocka_unit_test_setup(test_log_level_and_types, setup),
        cmocka_unit_test_setup(test_invalid_json, setup),
        cmocka_unit_test_setup(test_invalid_json_hides_input, setup),
        cmocka_unit_test_setup(test_duplicate_keys, setup),
        cmocka_unit_test_setup(test_unknown_keys, setup),
        cmocka_unit_test_setup(test_foreign_server_keys, setup),
        cmocka_unit_test_setup(test_server_names, setup),
        cmocka_unit_test_setup(test_transport, setup),
        cmocka_unit_test_setup(test_transport_errors, setup),
        cmocka_unit_test_setup(test_server_value_errors, setup),
        cmocka_unit_test_setup(test_headers_secret, setup),
        cmocka_unit_test_setup(test_ranges, setup),
        cmocka_unit_test_setup(test_threads, setup),
        cmocka_unit_test_setup(test_origins_and_hosts, setup),
        cmocka_unit_test_setup(test_default_endpoint_order, setup),
        cmocka_unit_test_setup(test_endpoint_namespace, setup),
        cmocka_unit_test_setup(test_endpoint_errors, setup),
        cmocka_unit_test_setup(test_token_validation, setup),
        cmocka_unit_test_setup(test_token_env, setup),
        cmocka_unit_test_setup(test_token_file, setup),
        cmocka_unit_test_setup(test_load_file, setup),
        cmocka_unit_test_setup(test_too_many_servers, setup),
        cmocka_unit_test_setup(test_small_err_buffer, setup),
        cmocka_unit_test_setup(test_import_claude, setup),
        cmocka_unit_test_setup(test_import_vscode, setup),
        cmocka_unit_test_setup(test_import_errors, setup),
        cmocka_unit_test_setup(test_import_long_names, setup),
        cmocka_unit_test_setup(test_import_example_file, setup),
        cmocka_unit_test_setup(test_monitoring, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
