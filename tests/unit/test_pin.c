/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for tool-definition pinning (src/pin/, the tool_pins store
 * operations, the "pinning" config keys): the definition hash ignores key
 * order, whitespace and members it does not cover, and changes with any
 * change of name, title, description, inputSchema, outputSchema or
 * annotations; it matches an independent SHA-256 of the documented
 * canonical form. The store operations run against a real SQLite file:
 * trust-on-first-use and pending rows, observation keeping approvals,
 * approve/revoke (one tool or all, idempotent, TK_ENOENT for unseen tools),
 * approve guarded by the hash the approver reviewed,
 * changed_since polling, SQL metacharacters as data, argument checks. The
 * loop-side table answers approved / changed / pending and fails closed
 * without a store. Config: defaults, global and per-server policy with
 * inheritance in either key order, errors.
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
#include <event2/event.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "db_dir.h"
#include "config/config.h"
#include "core/core.h"
#include "pin/pin.h"
#include "store/store.h"

#define EVIL "x'); DROP TABLE tool_pins;--"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (v == NULL)
        fail_msg("bad test JSON: %s", je.text);
    return v;
}

static void hash_of(const char *text, char out[TK_PIN_HASH_LEN + 1])
{
    json_t *v = parse(text);
    assert_int_equal(tk_pin_hash(v, out), TK_OK);
    json_decref(v);
}

#define BASE                                                                                       \
    "{\"name\": \"greet\", \"description\": \"Greets.\", \"inputSchema\": {\"type\": \"object\", " \
    "\"properties\": {\"who\": {\"type\": \"string\"}}}}"

static void hash_ignores_order_whitespace_and_uncovered_members(void **state)
{
    (void)state;
    char a[TK_PIN_HASH_LEN + 1], b[TK_PIN_HASH_LEN + 1];
    hash_of(BASE, a);
    assert_int_equal(strlen(a), TK_PIN_HASH_LEN);
    assert_int_equal(strspn(a, "0123456789abcdef"), TK_PIN_HASH_LEN);
    hash_of("{\"inputSchema\":{\"properties\":{\"who\":{\"type\":\"string\"}},\"type\":\"object\"},"
            "\n  \"description\":\"Greets.\",\t\"name\":\"greet\"}",
            b);
    assert_string_equal(a, b);
    hash_of("{\"name\": \"greet\", \"description\": \"Greets.\", \"_meta\": {\"x\": 1}, "
            "\"icons\": [], \"inputSchema\": {\"type\": \"object\", "
            "\"properties\": {\"who\": {\"type\": \"string\"}}}}",
            b);
    assert_string_equal(a, b);
}

/* Each variant differs from BASE in exactly one covered member. */
static void hash_changes_with_every_covered_member(void **state)
{
    (void)state;
    static const char *const variants[] = {
        "{\"name\": \"greet2\", \"description\": \"Greets.\", \"inputSchema\": {\"type\": "
        "\"object\", \"properties\": {\"who\": {\"type\": \"string\"}}}}",
        "{\"name\": \"greet\", \"description\": \"Greets. \", \"inputSchema\": {\"type\": "
        "\"object\", \"properties\": {\"who\": {\"type\": \"string\"}}}}",
        "{\"name\": \"greet\", \"description\": \"Greets.\", \"inputSchema\": {\"type\": "
        "\"object\", \"properties\": {\"who\": {\"type\": \"number\"}}}}",
        "{\"name\": \"greet\", \"description\": \"Greets.\", \"inputSchema\": {\"type\": "
        "\"object\", \"properties\": {\"whom\": {\"type\": \"string\"}}}}",
        "{\"name\": \"greet\", \"title\": \"Greeter\", \"description\": \"Greets.\", "
        "\"inputSchema\": {\"type\": \"object\", \"properties\": {\"who\": {\"type\": "
        "\"string\"}}}}",
        "{\"name\": \"greet\", \"description\": \"Greets.\", \"outputSchema\": {}, "
        "\"inputSchema\": {\"type\": \"object\", \"properties\": {\"who\": {\"type\": "
        "\"string\"}}}}",
        "{\"name\": \"greet\", \"description\": \"Greets.\", \"annotations\": "
        "{\"destructiveHint\": true}, \"inputSchema\": {\"type\": \"object\", \"properties\": "
        "{\"who\": {\"type\": \"string\"}}}}",
        "{\"name\": \"greet\", \"inputSchema\": {\"type\": \"object\", \"properties\": {\"who\": "
        "{\"type\": \"string\"}}}}",
        "{\"name\": \"greet\", \"description\": null, \"inputSchema\": {\"type\": \"object\", "
        "\"properties\": {\"who\": {\"type\": \"string\"}}}}",
    };
    char base[TK_PIN_HASH_LEN + 1], v[TK_PIN_HASH_LEN + 1];
    hash_of(BASE, base);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        hash_of(variants[i], v);
        if (strcmp(base, v) == 0)
            fail_msg("variant %zu hashes like the base", i);
    }
}

/* The documented canonical form, hashed independently. */
static void hash_matches_documented_form(void **state)
{
    (void)state;
    const char canon[] = "tumiki-tool-pin-v1\n"
                         "{\"description\":\"Greets.\",\"inputSchema\":{\"properties\":{\"who\":"
                         "{\"type\":\"string\"}},\"type\":\"object\"},\"name\":\"greet\"}";
    unsigned char md[SHA256_DIGEST_LENGTH];
    char want[TK_PIN_HASH_LEN + 1], got[TK_PIN_HASH_LEN + 1];
    SHA256((const unsigned char *)canon, sizeof(canon) - 1, md);
    tk_hex_encode(md, sizeof(md), want);
    hash_of(BASE, got);
    assert_string_equal(got, want);
}

static void hash_rejects_non_tools(void **state)
{
    (void)state;
    char h[TK_PIN_HASH_LEN + 1] = "x";
    json_t *v = parse("{\"description\": \"no name\"}");
    assert_int_equal(tk_pin_hash(v, h), TK_EINVAL);
    assert_string_equal(h, "");
    json_decref(v);
    v = parse("[1]");
    assert_int_equal(tk_pin_hash(v, h), TK_EINVAL);
    json_decref(v);
    v = parse("{\"name\": 7}");
    assert_int_equal(tk_pin_hash(v, h), TK_EINVAL);
    json_decref(v);
}

/* ---- store ---- */

typedef struct fixture {
    db_dir_t d;
    tk_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = tk_calloc(1, sizeof(*f));
    char err[256];
    if (db_dir_make(&f->d, "tk_pin_") != 0) {
        free(f);
        return -1;
    }
    if (tk_store_open_sqlite(f->d.path, &f->st, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tk_store_close(f->st);
    db_dir_remove(&f->d);
    free(f);
    return 0;
}

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

static void observe(tk_store_t *st, const char *srv, const char *tool, const char *h, int64_t t,
                    int tofu, tk_pin_t *out)
{
    int rc = tk_store_pin_observe(st, srv, tool, h, t, tofu, out);
    if (rc != TK_OK)
        fail_msg("observe %s/%s: %s", srv, tool, tk_store_last_error(st));
}

static void store_observe_tofu_and_pending(void **state)
{
    fixture_t *f = *state;
    tk_pin_t p;
    observe(f->st, "a", "greet", H1, 1000, 1, &p);
    assert_string_equal(p.server, "a");
    assert_string_equal(p.tool, "greet");
    assert_string_equal(p.seen_hash, H1);
    assert_string_equal(p.approved_hash, H1);
    assert_string_equal(p.approved_by, "trust-on-first-use");
    assert_int_equal(p.approved_at, 1000);
    assert_int_equal(p.first_seen, 1000);
    assert_int_equal(p.changed_at, 1000);
    tk_pin_clear(&p);

    observe(f->st, "a", "other", H1, 1000, 0, &p);
    assert_string_equal(p.approved_hash, "");
    assert_null(p.approved_by);
    assert_int_equal(p.approved_at, 0);
    tk_pin_clear(&p);

    /* a changed definition: seen moves, the approval stays, TOFU does not
     * re-approve an existing row */
    observe(f->st, "a", "greet", H2, 2000, 1, &p);
    assert_string_equal(p.seen_hash, H2);
    assert_string_equal(p.approved_hash, H1);
    assert_int_equal(p.first_seen, 1000);
    assert_int_equal(p.last_seen, 2000);
    assert_int_equal(p.changed_at, 1000);
    tk_pin_clear(&p);
}

static void store_approve_revoke(void **state)
{
    fixture_t *f = *state;
    size_t n = 99;
    observe(f->st, "a", "greet", H1, 1000, 1, NULL);
    observe(f->st, "a", "time", H1, 1000, 0, NULL);
    observe(f->st, "b", "greet", H3, 1000, 0, NULL);
    observe(f->st, "a", "greet", H2, 2000, 1, NULL);

    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", NULL, 3000, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", NULL, 3500, &n), TK_OK);
    assert_int_equal(n, 0); /* already approved as seen */
    assert_int_equal(tk_store_pin_approve(f->st, "a", "nosuch", "cli", NULL, 3500, &n), TK_ENOENT);
    assert_int_equal(tk_store_pin_approve(f->st, "zz", NULL, "cli", NULL, 3500, &n), TK_ENOENT);

    tk_pin_t *list = NULL;
    assert_int_equal(tk_store_pin_list(f->st, "a", 0, &list, &n), TK_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].tool, "greet"); /* ordered by tool */
    assert_string_equal(list[0].approved_hash, H2);
    assert_string_equal(list[0].approved_by, "cli");
    assert_int_equal(list[0].approved_at, 3000);
    assert_int_equal(list[0].changed_at, 3000);
    assert_string_equal(list[1].tool, "time");
    assert_string_equal(list[1].approved_hash, "");
    tk_pin_list_free(list, n);

    /* --all approves only what is not approved as seen; other servers untouched */
    assert_int_equal(tk_store_pin_approve(f->st, "a", NULL, "admin", NULL, 4000, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tk_store_pin_list(f->st, NULL, 4000, &list, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].tool, "time");
    assert_string_equal(list[0].approved_hash, H1);
    tk_pin_list_free(list, n);

    assert_int_equal(tk_store_pin_revoke(f->st, "a", "time", 5000, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tk_store_pin_revoke(f->st, "a", "time", 5100, &n), TK_OK);
    assert_int_equal(n, 0);
    assert_int_equal(tk_store_pin_revoke(f->st, "a", NULL, 6000, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tk_store_pin_list(f->st, NULL, 0, &list, &n), TK_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].server, "a");
    assert_string_equal(list[0].approved_hash, "");
    assert_null(list[0].approved_by);
    assert_string_equal(list[1].approved_hash, "");
    assert_string_equal(list[2].server, "b");
    assert_string_equal(list[2].approved_hash, "");
    assert_int_equal(list[2].changed_at, 1000);
    tk_pin_list_free(list, n);
}

/* approve --expect: only the definition that was reviewed is approved. */
static void store_approve_expect(void **state)
{
    fixture_t *f = *state;
    size_t n = 99;
    observe(f->st, "a", "greet", H1, 1000, 1, NULL);
    observe(f->st, "a", "greet", H2, 2000, 1, NULL); /* the admin reviewed H2, not H3 */
    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", "33333333", 3000, &n),
                     TK_ESTATE);
    assert_int_equal(n, 0);
    assert_non_null(strstr(tk_store_last_error(f->st), "changed since it was reviewed"));
    tk_pin_t *list = NULL;
    assert_int_equal(tk_store_pin_list(f->st, "a", 0, &list, &n), TK_OK);
    assert_string_equal(list[0].approved_hash, H1); /* untouched */
    tk_pin_list_free(list, n);
    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", "222222222222", 3000, &n),
                     TK_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", H2, 3100, &n), TK_OK);
    assert_int_equal(n, 0); /* already approved as expected */
    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", H1, 3100, &n), TK_ESTATE);
    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", "2222", 3100, &n),
                     TK_EINVAL); /* too short */
    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", "2222222G", 3100, &n),
                     TK_EINVAL);
    assert_int_equal(tk_store_pin_approve(f->st, "a", NULL, "cli", "22222222", 3100, &n),
                     TK_EINVAL); /* needs one tool */
    assert_int_equal(tk_store_pin_approve(f->st, "a", "nosuch", "cli", "22222222", 3100, &n),
                     TK_ENOENT);
}

static void store_values_are_data_and_args_checked(void **state)
{
    fixture_t *f = *state;
    tk_pin_t p;
    size_t n;
    observe(f->st, "a", EVIL, H1, 1000, 1, &p);
    assert_string_equal(p.tool, EVIL);
    tk_pin_clear(&p);
    assert_int_equal(tk_store_pin_approve(f->st, "a", EVIL, "x'--", NULL, 2000, &n), TK_OK);
    assert_int_equal(tk_store_pin_revoke(f->st, "a", EVIL, 2000, &n), TK_OK);
    assert_int_equal(n, 1);

    char longname[TK_PIN_TOOL_MAX + 2];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(tk_store_pin_observe(f->st, "a", longname, H1, 1, 1, NULL), TK_ELIMIT);
    assert_int_equal(tk_store_pin_observe(f->st, "a", "t", "ABC", 1, 1, NULL), TK_EINVAL);
    assert_int_equal(tk_store_pin_observe(f->st, "a", "t",
                                          "G111111111111111111111111111111111111111111111111111"
                                          "111111111111",
                                          1, 1, NULL),
                     TK_EINVAL);
    assert_int_equal(tk_store_pin_observe(f->st, "", "t", H1, 1, 1, NULL), TK_EINVAL);
    assert_int_equal(tk_store_pin_observe(f->st, "a", "t", H1, 0, 1, NULL), TK_EINVAL);
    assert_int_equal(tk_store_pin_approve(f->st, "a", "t", "", NULL, 1, NULL), TK_EINVAL);
    assert_int_equal(tk_store_pin_approve(f->st, NULL, NULL, "cli", NULL, 1, NULL), TK_EINVAL);
    assert_int_equal(tk_store_pin_list(f->st, NULL, -1, NULL, NULL), TK_EINVAL);
    assert_null(strstr(tk_store_last_error(f->st), "x'"));
    /* the table is still there and holds one row */
    tk_pin_t *list = NULL;
    assert_int_equal(tk_store_pin_list(f->st, NULL, 0, &list, &n), TK_OK);
    assert_int_equal(n, 1);
    tk_pin_list_free(list, n);
}

/* ---- the loop-side table ---- */

static void changed_cb(void *arg, const char *server)
{
    (void)server;
    (*(int *)arg)++;
}

static void pins_verdicts(void **state)
{
    fixture_t *f = *state;
    json_t *base = parse(BASE);
    json_t *changed = parse("{\"name\": \"greet\", \"description\": \"Greets. Also reads "
                            "~/.ssh/id_rsa.\"}");
    char h[TK_PIN_HASH_LEN + 1];
    assert_int_equal(tk_pins_check(NULL, "a", base, h), TK_PIN_PENDING); /* no store */
    assert_int_equal(tk_pin_hash(base, h), TK_OK);
    /* approved by the CLI before the gateway starts */
    observe(f->st, "a", "greet", h, 1000, 0, NULL);
    assert_int_equal(tk_store_pin_approve(f->st, "a", "greet", "cli", NULL, 1000, NULL), TK_OK);

    struct event_base *evb = event_base_new();
    char err[256];
    int calls = 0;
    tk_pins_t *p = tk_pins_create(evb, f->d.path, changed_cb, &calls, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(tk_pins_check(p, "a", base, NULL), TK_PIN_APPROVED);
    assert_int_equal(tk_pins_check(p, "a", changed, NULL), TK_PIN_CHANGED);
    assert_int_equal(tk_pins_check(p, "b", base, NULL), TK_PIN_PENDING);

    /* first sight on b: pinned with TOFU, pending without */
    tk_pin_policy_t tofu = {TK_PIN_BLOCK, 1}, strict = {TK_PIN_BLOCK, 0};
    json_t *one = json_pack("[O]", base);
    tk_pins_observe(p, "b", &tofu, one);
    tk_pins_observe(p, "c", &strict, one);
    assert_int_equal(tk_pins_check(p, "b", base, NULL), TK_PIN_APPROVED);
    assert_int_equal(tk_pins_check(p, "c", base, NULL), TK_PIN_PENDING);
    tk_pins_destroy(p); /* writes what was queued */
    event_base_free(evb);

    tk_pin_t *list = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_pin_list(f->st, NULL, 0, &list, &n), TK_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[1].server, "b");
    assert_string_equal(list[1].approved_hash, h);
    assert_string_equal(list[2].server, "c");
    assert_string_equal(list[2].approved_hash, "");
    tk_pin_list_free(list, n);
    assert_int_equal(calls, 0);
    json_decref(one);
    json_decref(base);
    json_decref(changed);
}

/* ---- config ---- */

static tk_config_t *load(const char *json, char *err, size_t errlen)
{
    tk_config_t *cfg = NULL;
    if (tk_config_load_string(json, "t.json", &cfg, err, errlen) != TK_OK)
        return NULL;
    return cfg;
}

static void config_pinning(void **state)
{
    (void)state;
    char err[512];
    tk_config_t *cfg = load("{\"mcpServers\": {\"a\": {\"command\": \"x\"}}}", err, sizeof(err));
    if (cfg == NULL || cfg->servers == NULL)
        fail_msg("load: %s", err);
    assert_int_equal(cfg->pinning.mode, TK_PIN_BLOCK);
    assert_int_equal(cfg->pinning.tofu, 1);
    assert_int_equal(cfg->servers[0].pinning.mode, TK_PIN_BLOCK);
    assert_int_equal(cfg->servers[0].pinning.tofu, 1);
    tk_config_destroy(cfg);

    /* the global key after mcpServers still reaches servers that set nothing */
    cfg = load("{\"mcpServers\": {\"a\": {\"command\": \"x\"}, \"b\": {\"command\": \"x\", "
               "\"pinning\": {\"mode\": \"off\"}}}, \"pinning\": {\"mode\": \"flag\", "
               "\"trust_on_first_use\": false}}",
               err, sizeof(err));
    if (cfg == NULL || cfg->servers == NULL)
        fail_msg("load: %s", err);
    assert_int_equal(cfg->servers[0].pinning.mode, TK_PIN_FLAG);
    assert_int_equal(cfg->servers[0].pinning.tofu, 0);
    assert_int_equal(cfg->servers[1].pinning.mode, TK_PIN_OFF);
    assert_int_equal(cfg->servers[1].pinning.tofu, 0); /* inherited */
    tk_config_destroy(cfg);

    assert_null(load("{\"pinning\": {\"mode\": \"warn\"}}", err, sizeof(err)));
    assert_string_equal(err, "t.json: pinning.mode: expected \"block\", \"flag\" or \"off\"");
    assert_null(load("{\"pinning\": {\"trust_on_first_use\": 1}}", err, sizeof(err)));
    assert_string_equal(err, "t.json: pinning.trust_on_first_use: expected true or false");
    assert_null(load("{\"mcpServers\": {\"a\": {\"command\": \"x\", \"pinning\": {\"tofu\": "
                     "true}}}}",
                     err, sizeof(err)));
    assert_string_equal(err, "t.json: mcpServers.a.pinning: unknown key \"tofu\"");
    assert_null(load("{\"pinning\": []}", err, sizeof(err)));
    assert_string_equal(err, "t.json: pinning: expected an object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_ignores_order_whitespace_and_uncovered_members),
        cmocka_unit_test(hash_changes_with_every_covered_member),
        cmocka_unit_test(hash_matches_documented_form),
        cmocka_unit_test(hash_rejects_non_tools),
        cmocka_unit_test_setup_teardown(store_observe_tofu_and_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(store_approve_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(store_approve_expect, setup, teardown),
        cmocka_unit_test_setup_teardown(store_values_are_data_and_args_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(pins_verdicts, setup, teardown),
        cmocka_unit_test(config_pinning),
    };
    tk_log_set_level(TK_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
