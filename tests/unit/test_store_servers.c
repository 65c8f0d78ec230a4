/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the servers and endpoints the admin API keeps in the store
 * (migration 6), against a real SQLite file: insert, list with sealed
 * secrets, get, update (secrets replaced, id kept), delete (secrets go with
 * the server), duplicate names refused, missing rows TK_ENOENT, size limits,
 * SQL metacharacters as data, an endpoint's stored tool selection dropped
 * with it; a database that recorded a later migration but not this one
 * (numbered on another branch) still gets it; and no plaintext secret value anywhere in the database files
 * (main file and WAL) after values were sealed with the vault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/core.h"
#include "db_dir.h"
#include "store/store.h"
#include "vault/vault.h"

#define SECRET "ghp_TopSecretValue_1234567890abcdef"
#define EVIL "x'); DROP TABLE servers;--"

static const unsigned char master[32] = "vault-test-master-key-32-bytes!!";

static int setup(void **state)
{
    return db_dir_setup(state, "tk_srvstore_");
}

static int teardown(void **state)
{
    return db_dir_teardown(state);
}

static tk_store_t *open_store(const db_dir_t *d)
{
    tk_store_t *st = NULL;
    char err[256];
    if (tk_store_open_sqlite(d->path, &st, err, sizeof(err)) != TK_OK)
        fail_msg("open: %s", err);
    assert_int_equal(tk_store_org_ensure(st, "default", "Default", 1), TK_OK);
    return st;
}

/* A server row "name" with one sealed env secret. */
static void make_row(const tk_vault_t *v, tk_server_row_t *r, const char *id, const char *name,
                     const char *value)
{
    memset(r, 0, sizeof(*r));
    tk_snprintf(r->id, sizeof(r->id), "%s", id);
    tk_snprintf(r->org, sizeof(r->org), "default");
    r->name = tk_strdup(name);
    r->transport = tk_strdup("stdio");
    r->spec = tk_strdup("{\"command\":\"/bin/echo\",\"args\":[\"a\"]}");
    r->created_by = tk_strdup("u1");
    r->created_at = r->updated_at = 1000;
    r->secrets = tk_calloc(1, sizeof(*r->secrets));
    r->nsecrets = 1;
    assert_int_equal(tk_vault_seal_secret(v, id, "env", "API_TOKEN", value, strlen(value),
                                          &r->secrets[0]),
                     TK_OK);
}

static char *open_secret(const tk_vault_t *v, const tk_server_row_t *r, size_t i)
{
    char *plain = NULL;
    size_t len;
    return tk_vault_open_secret(v, r->id, &r->secrets[i], &plain, &len) == TK_OK ? plain : NULL;
}

/* Whether needle occurs in the file at path (absent file: no). */
static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t cap = 1 << 20, n = 0, got;
    char *buf = tk_malloc(cap);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = tk_realloc(buf, cap *= 2);
    }
    fclose(f);
    int hit = memmem(buf, n, needle, strlen(needle)) != NULL;
    free(buf);
    return hit;
}

static void servers_round_trip(void **state)
{
    db_dir_t *d = *state;
    tk_store_t *st = open_store(d);
    tk_vault_t *v;
    assert_int_equal(tk_vault_create(master, sizeof(master), &v), TK_OK);
    tk_server_row_t r, got;
    make_row(v, &r, "s1", "github", SECRET);
    assert_int_equal(tk_store_server_put(st, &r, 1), TK_OK);
    assert_int_equal(tk_store_server_put(st, &r, 1), TK_EINVAL); /* same id and name */
    tk_snprintf(r.id, sizeof(r.id), "s2");
    assert_int_equal(tk_store_server_put(st, &r, 1), TK_EINVAL); /* same name */
    tk_snprintf(r.id, sizeof(r.id), "s1");
    assert_int_equal(tk_store_server_get(st, "github", &got), TK_OK);
    assert_string_equal(got.id, "s1");
    assert_string_equal(got.org, "default");
    assert_string_equal(got.transport, "stdio");
    assert_string_equal(got.spec, r.spec);
    assert_string_equal(got.created_by, "u1");
    assert_int_equal(got.nsecrets, 1);
    assert_string_equal(got.secrets[0].kind, "env");
    assert_string_equal(got.secrets[0].name, "API_TOKEN");
    char *plain = open_secret(v, &got, 0);
    assert_non_null(plain);
    assert_string_equal(plain, SECRET);
    tk_vault_free_plain(plain);
    tk_server_row_clear(&got);
    assert_int_equal(tk_store_server_get(st, "nope", &got), TK_ENOENT);

    /* update: new spec, the secret replaced, the id kept */
    tk_server_row_t u;
    make_row(v, &u, "s1", "github", "new-secret-value-42");
    free(u.spec);
    u.spec = tk_strdup("{\"command\":\"/bin/true\"}");
    u.updated_at = 2000;
    assert_int_equal(tk_store_server_put(st, &u, 0), TK_OK);
    assert_int_equal(tk_store_server_get(st, "github", &got), TK_OK);
    assert_string_equal(got.spec, "{\"command\":\"/bin/true\"}");
    assert_int_equal(got.created_at, 1000);
    assert_int_equal(got.updated_at, 2000);
    assert_int_equal(got.nsecrets, 1);
    plain = open_secret(v, &got, 0);
    assert_string_equal(plain, "new-secret-value-42");
    tk_vault_free_plain(plain);
    tk_server_row_clear(&got);
    tk_snprintf(u.id, sizeof(u.id), "s9");
    assert_int_equal(tk_store_server_put(st, &u, 0), TK_ENOENT);
    tk_server_row_clear(&u);

    /* a second server; list is by name */
    tk_server_row_t r2;
    make_row(v, &r2, "s2", EVIL, "another-secret-value");
    assert_int_equal(tk_store_server_put(st, &r2, 1), TK_OK);
    tk_server_row_t *all;
    size_t n;
    assert_int_equal(tk_store_server_list(st, &all, &n), TK_OK);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].name, "github");
    assert_string_equal(all[1].name, EVIL);
    assert_int_equal(all[1].nsecrets, 1);
    tk_server_row_list_free(all, n);

    /* delete: the secrets go too */
    assert_int_equal(tk_store_server_delete(st, "github"), TK_OK);
    assert_int_equal(tk_store_server_delete(st, "github"), TK_ENOENT);
    assert_int_equal(tk_store_server_list(st, &all, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_string_equal(all[0].id, "s2");
    tk_server_row_list_free(all, n);
    tk_store_close(st);

    /* no plaintext secret value anywhere in the files */
    char wal[160];
    tk_snprintf(wal, sizeof(wal), "%s-wal", d->path);
    assert_true(file_has(d->path, "API_TOKEN") || file_has(wal, "API_TOKEN")); /* scan works */
    assert_false(file_has(d->path, SECRET));
    assert_false(file_has(wal, SECRET));
    assert_false(file_has(d->path, "another-secret-value"));
    assert_false(file_has(wal, "another-secret-value"));
    tk_server_row_clear(&r);
    tk_server_row_clear(&r2);
    tk_vault_destroy(v);
}

static void server_limits(void **state)
{
    tk_store_t *st = open_store(*state);
    tk_vault_t *v;
    assert_int_equal(tk_vault_create(master, sizeof(master), &v), TK_OK);
    tk_server_row_t r;
    make_row(v, &r, "s1", "ok", "secret-value-1");
    char *name = r.name;
    r.name = (char *)"0123456789012345678901234567890123456789012345678901234567890123456789";
    assert_int_equal(tk_store_server_put(st, &r, 1), TK_ELIMIT);
    r.name = name;
    tk_snprintf(r.secrets[0].kind, sizeof(r.secrets[0].kind), "file");
    assert_int_equal(tk_store_server_put(st, &r, 1), TK_EINVAL);
    tk_snprintf(r.secrets[0].kind, sizeof(r.secrets[0].kind), "header");
    size_t n = r.nsecrets;
    r.nsecrets = TK_STORE_SECRETS_MAX + 1;
    assert_int_equal(tk_store_server_put(st, &r, 1), TK_ELIMIT);
    r.nsecrets = n;
    free(r.transport);
    r.transport = tk_strdup("ftp");
    assert_int_equal(tk_store_server_put(st, &r, 1), TK_EINVAL); /* CHECK constraint */
    tk_server_row_t *all;
    assert_int_equal(tk_store_server_list(st, &all, &n), TK_OK);
    assert_int_equal(n, 0); /* nothing half-written */
    tk_server_row_clear(&r);
    tk_vault_destroy(v);
    tk_store_close(st);
}

static void endpoints_round_trip(void **state)
{
    tk_store_t *st = open_store(*state);
    tk_endpoint_row_t e = {.org = "default",
                           .slug = (char *)"team-a",
                           .spec = (char *)"{\"servers\":[\"github\"]}",
                           .created_by = (char *)"u1",
                           .created_at = 10,
                           .updated_at = 10};
    assert_int_equal(tk_store_endpoint_put(st, &e, 1), TK_OK);
    assert_int_equal(tk_store_endpoint_put(st, &e, 1), TK_EINVAL);
    tk_tool_filter_t f = {(char *)"team-a", (char *)"[\"a*\"]", (char *)"[]", 11};
    assert_int_equal(tk_store_tool_filter_set(st, &f), TK_OK);
    e.spec = (char *)"{\"servers\":[]}";
    e.updated_at = 20;
    assert_int_equal(tk_store_endpoint_put(st, &e, 0), TK_OK);
    tk_endpoint_row_t got;
    assert_int_equal(tk_store_endpoint_get(st, "team-a", &got), TK_OK);
    assert_string_equal(got.spec, "{\"servers\":[]}");
    assert_int_equal(got.created_at, 10);
    assert_int_equal(got.updated_at, 20);
    tk_endpoint_row_clear(&got);
    e.slug = (char *)"nope";
    assert_int_equal(tk_store_endpoint_put(st, &e, 0), TK_ENOENT);
    assert_int_equal(tk_store_endpoint_get(st, "nope", &got), TK_ENOENT);
    assert_int_equal(tk_store_endpoint_delete(st, "team-a"), TK_OK);
    assert_int_equal(tk_store_endpoint_delete(st, "team-a"), TK_ENOENT);
    tk_tool_filter_t *fl;
    size_t n;
    assert_int_equal(tk_store_tool_filter_list(st, &fl, &n), TK_OK);
    assert_int_equal(n, 0); /* the selection went with it */
    tk_tool_filter_list_free(fl, n);
    tk_endpoint_row_t *all;
    assert_int_equal(tk_store_endpoint_list(st, &all, &n), TK_OK);
    assert_int_equal(n, 0);
    tk_endpoint_row_list_free(all, n);
    tk_store_close(st);
}

static void migration_landing_late(void **state)
{
    db_dir_t *d = *state;
    tk_store_close(open_store(d));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(d->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE server_secrets; DROP TABLE servers; DROP TABLE endpoints;"
                                  "DELETE FROM schema_migrations WHERE version = 6;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    tk_store_t *st = open_store(d);
    tk_server_row_t *all = NULL;
    size_t n = 9;
    assert_int_equal(tk_store_server_list(st, &all, &n), TK_OK); /* the table is back */
    assert_int_equal(n, 0);
    int64_t v = 0;
    assert_int_equal(tk_store_schema_version(st, &v), TK_OK);
    assert_int_equal(v, TK_STORE_SCHEMA_VERSION);
    tk_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(servers_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(server_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(endpoints_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_landing_late, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
