/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the store (src/store/) against real SQLite files in a fresh
 * mkdtemp directory per test: open creates the file with mode 0600 and WAL
 * journaling (read back through a separate raw connection); migrations are
 * applied once and a reopen finds version 1; a database stamped with a newer
 * version is refused with a clear error and left untouched; a file that is
 * not a database is refused; API keys round-trip through insert, get, list
 * (ordered), revoke (idempotent), touch (never backwards) and revoked_since;
 * a duplicate id changes nothing and its error text leaks no values; SQL
 * metacharacters are stored as data; foreign keys and the role CHECK are
 * enforced; two handles on one file see each other's writes; a write waits
 * out another connection's short-lived lock (busy timeout); and argument
 * checks.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/core.h"
#include "db_dir.h"
#include "store/store.h"

#define EVIL "x'); DROP TABLE api_keys;--"

typedef db_dir_t fixture_t;

static int setup(void **state)
{
    fixture_t *f = tk_calloc(1, sizeof(*f));
    if (db_dir_make(f, "tk_store_") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    db_dir_remove(*state);
    free(*state);
    return 0;
}

static tk_store_t *open_store(const fixture_t *f)
{
    tk_store_t *st = NULL;
    char err[256];
    int rc = tk_store_open_sqlite(f->path, &st, err, sizeof(err));
    if (rc != 0)
        fail_msg("open: %s", err);
    assert_non_null(st);
    return st;
}

/* A raw connection, as another program would open the file. */
static sqlite3 *raw_open(const fixture_t *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void raw_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(s, 0);
    tk_snprintf(out, outlen, "%s", t != NULL ? (const char *)t : "(null)");
    sqlite3_finalize(s);
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("raw exec: %s", msg != NULL ? msg : "?");
}

/* A key with every field set; strings point at static storage. */
static tk_apikey_t sample_key(const char *id, int64_t created_at)
{
    tk_apikey_t k;
    memset(&k, 0, sizeof(k));
    tk_snprintf(k.id, sizeof(k.id), "%s", id);
    k.name = (char *)"laptop";
    k.hash = (char *)"$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    k.endpoint = (char *)"team-a";
    k.scopes = (char *)"tools:list tools:call";
    k.created_at = created_at;
    return k;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_key_equal(const tk_apikey_t *a, const tk_apikey_t *b)
{
    assert_string_equal(a->id, b->id);
    assert_str_or_null(a->name, b->name);
    assert_string_equal(a->hash, b->hash);
    assert_string_equal(a->endpoint, b->endpoint);
    assert_str_or_null(a->scopes, b->scopes);
    assert_str_or_null(a->owner, b->owner);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->expires_at, b->expires_at);
    assert_int_equal(a->revoked_at, b->revoked_at);
    assert_int_equal(a->last_used_at, b->last_used_at);
}

/* ---- open and migrations ---- */

static void test_open_creates_0600_wal(void **state)
{
    fixture_t *f = *state;
    struct stat sb;
    assert_int_not_equal(stat(f->path, &sb), 0); /* not there yet */
    tk_store_t *st = open_store(f);
    assert_string_equal(tk_store_backend(st), "sqlite");
    assert_string_equal(tk_store_last_error(st), "");

    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* A write creates the -wal sibling; SQLite gives it the file's mode. */
    assert_int_equal(tk_store_org_insert(st, "org1", "Org", 1), TK_OK);
    char wal[160];
    tk_snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    sqlite3 *db = raw_open(f);
    char mode[16];
    raw_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    assert_int_equal(raw_int(db, "SELECT MAX(version) FROM schema_migrations"),
                     TK_STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 2"), 1);
    assert_int_equal(raw_int(db, "SELECT MAX(version) FROM schema_migrations"),
                     TK_STORE_SCHEMA_VERSION);
    assert_true(raw_int(db, "SELECT MIN(applied_at) FROM schema_migrations") > 1600000000000LL);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                                 "name IN ('organizations', 'users', 'memberships', 'api_keys', "
                                 "'revoked_tokens')"),
                     5);
    sqlite3_close(db);
    tk_store_close(st);
}

static void test_existing_file_keeps_mode(void **state)
{
    fixture_t *f = *state;
    tk_store_close(open_store(f));
    assert_int_equal(chmod(f->path, 0640), 0);
    tk_store_close(open_store(f)); /* warns, still opens */
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
}

static void test_reopen_migrates_once(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    tk_apikey_t k = sample_key("k1", 10);
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    tk_store_close(st);

    st = open_store(f);
    int64_t v = 0;
    assert_int_equal(tk_store_schema_version(st, &v), TK_OK);
    assert_int_equal(v, TK_STORE_SCHEMA_VERSION);
    tk_apikey_t got;
    assert_int_equal(tk_store_apikey_get(st, "k1", &got), TK_OK); /* data kept */
    tk_apikey_clear(&got);
    tk_store_close(st);

    sqlite3 *db = raw_open(f);
    assert_int_equal(raw_int(db, "SELECT MAX(version) FROM schema_migrations"),
                     TK_STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 2"), 1);
    sqlite3_close(db);
}

/* A version-1 database (as the first release wrote it) is upgraded in place. */
static void test_upgrade_from_v1(void **state)
{
    fixture_t *f = *state;
    tk_store_close(open_store(f));
    sqlite3 *db = raw_open(f);
    raw_exec(db, "DROP TABLE tool_pins;" /* migration 3 */
                 "DROP INDEX revoked_tokens_revoked_at;"
                 "ALTER TABLE revoked_tokens DROP COLUMN revoked_at;"
                 "ALTER TABLE users DROP COLUMN disabled;"
                 "DROP TABLE endpoint_tool_filters;"
                 "DROP TABLE server_secrets;" /* migration 6 */
                 "DROP TABLE servers;"
                 "DROP TABLE endpoints;"
                 "DROP TABLE issued_tokens;" /* migration 7 */
                 "DELETE FROM schema_migrations WHERE version > 1;"
                 "INSERT INTO revoked_tokens (jti, expires_at) VALUES ('old', 9000000000000)");
    sqlite3_close(db);
    tk_store_t *st = open_store(f);
    int64_t v = 0;
    assert_int_equal(tk_store_schema_version(st, &v), TK_OK);
    assert_int_equal(v, TK_STORE_SCHEMA_VERSION);
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_jti_revoked_since(st, 0, 1000, &ids, &n), TK_OK);
    assert_int_equal(n, 1); /* the old row kept, revoked_at 0 */
    assert_string_equal(ids[0], "old");
    tk_store_ids_free(ids, n);
    tk_store_close(st);
}

/* The JWT revocation list: revoke, idempotence, expiry filter, since. */
static void test_jti_revocation(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    assert_int_equal(tk_store_jti_revoke(st, "j1", 5000, 1000), TK_OK);
    assert_int_equal(tk_store_jti_revoke(st, "j1", 5000, 3000), TK_OK); /* kept first time */
    assert_int_equal(tk_store_jti_revoke(st, "j2'); DROP TABLE revoked_tokens;--", 9000, 2000),
                     TK_OK);
    assert_int_equal(tk_store_jti_revoke(st, "", 9000, 2000), TK_EINVAL);
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_jti_revoked_since(st, 1500, 1000, &ids, &n), TK_OK);
    assert_int_equal(n, 1); /* j1 was revoked at 1000, before 1500 */
    assert_string_equal(ids[0], "j2'); DROP TABLE revoked_tokens;--");
    tk_store_ids_free(ids, n);
    assert_int_equal(tk_store_jti_revoked_since(st, 0, 6000, &ids, &n), TK_OK);
    assert_int_equal(n, 1); /* j1's token expired at 5000 */
    tk_store_ids_free(ids, n);
    assert_int_equal(tk_store_jti_revoked_since(st, 0, 0, &ids, &n), TK_OK);
    assert_int_equal(n, 2);
    tk_store_ids_free(ids, n);
    tk_store_close(st);
}

/* Issued JWTs revoked by subject: only the subject's unexpired tokens,
 * once; expired records are dropped at the next issue. */
static void test_jti_revoke_subject(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    assert_int_equal(tk_store_jti_issue(st, "a1", "u-alice", 9000, 1000), TK_OK);
    assert_int_equal(tk_store_jti_issue(st, "a2", "u-alice", 2500, 1000), TK_OK);
    assert_int_equal(tk_store_jti_issue(st, "b1", "u-bob'; --", 9000, 1000), TK_OK);
    assert_int_equal(tk_store_jti_issue(st, "a1", "u-alice", 9000, 1000), TK_EINVAL); /* dup */
    assert_int_equal(tk_store_jti_issue(st, "", "u-alice", 9000, 1000), TK_EINVAL);
    assert_int_equal(tk_store_jti_issue(st, "a3", "", 9000, 1000), TK_EINVAL);
    size_t count = 99;
    assert_int_equal(tk_store_jti_revoke_subject(st, "u-alice", 3000, &count), TK_OK);
    assert_int_equal(count, 1); /* a2 expired at 2500 */
    assert_int_equal(tk_store_jti_revoke_subject(st, "u-alice", 3500, &count), TK_OK);
    assert_int_equal(count, 0); /* already on the list */
    assert_int_equal(tk_store_jti_revoke_subject(st, "nobody", 3500, &count), TK_OK);
    assert_int_equal(count, 0);
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_jti_revoked_since(st, 0, 3000, &ids, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "a1");
    tk_store_ids_free(ids, n);
    assert_int_equal(tk_store_jti_revoke_subject(st, "u-bob'; --", 4000, &count), TK_OK);
    assert_int_equal(count, 1);
    /* an issue after everything expired drops the old records */
    assert_int_equal(tk_store_jti_issue(st, "c1", "u-carol", 20000, 10000), TK_OK);
    tk_store_close(st);
    sqlite3 *db = raw_open(f);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM issued_tokens"), 1);
    sqlite3_close(db);
}

static void test_newer_version_refused(void **state)
{
    fixture_t *f = *state;
    tk_store_close(open_store(f));
    sqlite3 *db = raw_open(f);
    int64_t applied = raw_int(db, "SELECT COUNT(*) FROM schema_migrations");
    raw_exec(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)");
    sqlite3_close(db);

    tk_store_t *st = (tk_store_t *)&st; /* must be reset to NULL */
    char err[256];
    assert_int_equal(tk_store_open_sqlite(f->path, &st, err, sizeof(err)), TK_ESTATE);
    assert_null(st);
    assert_non_null(strstr(err, "newer"));
    assert_non_null(strstr(err, "999"));

    db = raw_open(f); /* untouched */
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM schema_migrations"), applied + 1);
    assert_int_equal(raw_int(db, "SELECT MAX(version) FROM schema_migrations"), 999);
    sqlite3_close(db);
}

static void test_not_a_database_refused(void **state)
{
    fixture_t *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 64; i++)
        fputs("this is not an sqlite database, just text\n", fp);
    fclose(fp);
    tk_store_t *st = NULL;
    char err[256];
    int rc = tk_store_open_sqlite(f->path, &st, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(st);
    assert_true(err[0] != '\0');
}

static void test_open_bad_paths(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = NULL;
    char err[256];
    assert_int_equal(tk_store_open_sqlite("", &st, err, sizeof(err)), TK_EINVAL);
    assert_int_equal(tk_store_open_sqlite(NULL, &st, err, sizeof(err)), TK_EINVAL);
    assert_int_equal(tk_store_open_sqlite(f->path, NULL, err, sizeof(err)), TK_EINVAL);
    char p[200];
    tk_snprintf(p, sizeof(p), "%s/missing/dir/x.db", f->dir);
    assert_int_equal(tk_store_open_sqlite(p, &st, err, sizeof(err)), TK_EIO);
    assert_null(st);
    assert_non_null(strstr(err, "cannot create"));
    /* a dangling symlink is refused rather than followed */
    tk_snprintf(p, sizeof(p), "%s/link.db", f->dir);
    assert_int_equal(symlink("/nonexistent/tumiki-target.db", p), 0);
    assert_int_equal(tk_store_open_sqlite(p, &st, NULL, 0), TK_EIO);
    assert_null(st);
    /* an in-memory database works for experiments */
    assert_int_equal(tk_store_open_sqlite(":memory:", &st, err, sizeof(err)), TK_OK);
    tk_apikey_t k = sample_key("m", 1);
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    tk_store_close(st);
}

/* ---- API keys ---- */

static void test_apikey_roundtrip(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    assert_int_equal(tk_store_user_insert(st, "u1", "a@example.com", "$2b$10$x", 5), TK_OK);

    tk_apikey_t k = sample_key("0123456789abcdef0123456789abcdef", 1700000000000LL);
    k.owner = (char *)"u1";
    k.expires_at = 1800000000000LL;
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);

    tk_apikey_t got;
    assert_int_equal(tk_store_apikey_get(st, k.id, &got), TK_OK);
    assert_key_equal(&got, &k);
    tk_apikey_clear(&got);
    assert_null(got.hash);

    /* NULLs and zeros round-trip as NULLs and zeros */
    tk_apikey_t m = sample_key("cli", 1);
    m.name = NULL;
    m.scopes = NULL;
    assert_int_equal(tk_store_apikey_insert(st, &m), TK_OK);
    assert_int_equal(tk_store_apikey_get(st, "cli", &got), TK_OK);
    assert_key_equal(&got, &m);
    tk_apikey_clear(&got);

    /* missing, including ids too long or empty to exist */
    assert_int_equal(tk_store_apikey_get(st, "nope", &got), TK_ENOENT);
    assert_null(got.hash);
    assert_string_equal(got.id, "");
    assert_int_equal(tk_store_apikey_get(st, "0123456789abcdef0123456789abcdef0", &got), TK_ENOENT);
    assert_int_equal(tk_store_apikey_get(st, "", &got), TK_ENOENT);
    assert_non_null(strstr(tk_store_last_error(st), "apikey_get"));
    tk_store_close(st);
}

static void test_apikey_list_order(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    tk_apikey_t *list = (tk_apikey_t *)&list;
    size_t n = 99;
    assert_int_equal(tk_store_apikey_list(st, &list, &n), TK_OK);
    assert_null(list);
    assert_int_equal(n, 0);

    static const struct {
        const char *id;
        int64_t at;
    } in[] = {{"c", 300}, {"b", 100}, {"z", 200}, {"a", 100}, {"y", 50}};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        tk_apikey_t k = sample_key(in[i].id, in[i].at);
        assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    }
    assert_int_equal(tk_store_apikey_list(st, &list, &n), TK_OK);
    assert_int_equal(n, 5);
    static const char *const want[] = {"y", "a", "b", "z", "c"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].id, want[i]);
        assert_string_equal(list[i].endpoint, "team-a");
    }
    tk_apikey_list_free(list, n);
    tk_store_close(st);
}

static void test_apikey_revoke_idempotent(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    tk_apikey_t k = sample_key("k1", 10);
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    assert_int_equal(tk_store_apikey_revoke(st, "k1", 1000), TK_OK);
    assert_int_equal(tk_store_apikey_revoke(st, "k1", 2000), TK_OK); /* keeps the first */
    tk_apikey_t got;
    assert_int_equal(tk_store_apikey_get(st, "k1", &got), TK_OK);
    assert_int_equal(got.revoked_at, 1000);
    tk_apikey_clear(&got);
    assert_int_equal(tk_store_apikey_revoke(st, "missing", 1000), TK_ENOENT);
    assert_int_equal(tk_store_apikey_revoke(st, "k1", 0), TK_EINVAL);
    tk_store_close(st);
}

static void test_apikey_touch(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    tk_apikey_t k = sample_key("k1", 10);
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    static const int64_t seq[][2] = {{100, 100}, {50, 100}, {100, 100}, {200, 200}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(tk_store_apikey_touch(st, "k1", seq[i][0]), TK_OK);
        tk_apikey_t got;
        assert_int_equal(tk_store_apikey_get(st, "k1", &got), TK_OK);
        assert_int_equal(got.last_used_at, seq[i][1]);
        assert_int_equal(got.revoked_at, 0);
        tk_apikey_clear(&got);
    }
    assert_int_equal(tk_store_apikey_touch(st, "missing", 300), TK_ENOENT);
    assert_int_equal(tk_store_apikey_touch(st, "k1", -1), TK_EINVAL);
    tk_store_close(st);
}

static void test_apikey_revoked_since(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    static const char *const ids[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++) {
        tk_apikey_t k = sample_key(ids[i], 1);
        assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    }
    assert_int_equal(tk_store_apikey_revoke(st, "b", 2000), TK_OK);
    assert_int_equal(tk_store_apikey_revoke(st, "d", 1000), TK_OK);
    assert_int_equal(tk_store_apikey_revoke(st, "a", 2000), TK_OK);

    char **out = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_apikey_revoked_since(st, 0, &out, &n), TK_OK);
    assert_int_equal(n, 3);
    assert_string_equal(out[0], "d"); /* oldest revocation first, then by id */
    assert_string_equal(out[1], "a");
    assert_string_equal(out[2], "b");
    tk_store_ids_free(out, n);

    assert_int_equal(tk_store_apikey_revoked_since(st, 2000, &out, &n), TK_OK); /* at or after */
    assert_int_equal(n, 2);
    assert_string_equal(out[0], "a");
    assert_string_equal(out[1], "b");
    tk_store_ids_free(out, n);

    assert_int_equal(tk_store_apikey_revoked_since(st, 2001, &out, &n), TK_OK);
    assert_int_equal(n, 0);
    assert_null(out);
    tk_store_close(st);
}

static void test_apikey_duplicate_refused(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    tk_apikey_t k = sample_key("dup", 10);
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);

    tk_apikey_t other = sample_key("dup", 20);
    other.hash = (char *)"$2b$10$SECRETHASHSECRETHASHSECRETHASHSECRETHASHSECRETHASHSEC";
    other.endpoint = (char *)"other-endpoint";
    other.name = (char *)"intruder";
    assert_int_equal(tk_store_apikey_insert(st, &other), TK_EINVAL);
    const char *e = tk_store_last_error(st);
    assert_non_null(strstr(e, "apikey_insert"));
    assert_non_null(strstr(e, "UNIQUE"));
    assert_null(strstr(e, "SECRETHASH")); /* no bound values in the error text */
    assert_null(strstr(e, "intruder"));
    assert_null(strstr(e, "other-endpoint"));

    tk_apikey_t *list = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_apikey_list(st, &list, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_key_equal(&list[0], &k);
    tk_apikey_list_free(list, n);
    tk_store_close(st);
}

static void test_sql_metacharacters_are_data(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    tk_apikey_t k = sample_key("x';--\"", 10);
    k.name = (char *)EVIL;
    k.endpoint = (char *)EVIL;
    k.scopes = (char *)"a' OR '1'='1";
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    tk_apikey_t got;
    assert_int_equal(tk_store_apikey_get(st, "x';--\"", &got), TK_OK);
    assert_key_equal(&got, &k);
    tk_apikey_clear(&got);
    assert_int_equal(tk_store_apikey_get(st, "' OR '1'='1", &got), TK_ENOENT);
    assert_int_equal(tk_store_apikey_revoke(st, "' OR 1=1 --", 5), TK_ENOENT);
    assert_int_equal(tk_store_apikey_revoke(st, "x';--\"", 5), TK_OK);
    assert_int_equal(tk_store_org_insert(st, EVIL, EVIL, 1), TK_OK);
    tk_store_close(st);

    sqlite3 *db = raw_open(f);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM api_keys"), 1);
    char name[64];
    raw_text(db, "SELECT name FROM api_keys", name, sizeof(name));
    assert_string_equal(name, EVIL);
    raw_text(db, "SELECT id FROM organizations", name, sizeof(name));
    assert_string_equal(name, EVIL);
    sqlite3_close(db);
}

/* ---- organizations, users, memberships ---- */

static void test_foreign_keys_enforced(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    assert_int_equal(tk_store_org_insert(st, "o1", "Org One", 1), TK_OK);
    assert_int_equal(tk_store_user_insert(st, "u1", "u1@example.com", NULL, 1), TK_OK);

    assert_int_equal(tk_store_membership_insert(st, "o1", "ghost", "member"), TK_EINVAL);
    assert_non_null(strstr(tk_store_last_error(st), "FOREIGN KEY"));
    assert_int_equal(tk_store_membership_insert(st, "nowhere", "u1", "member"), TK_EINVAL);
    assert_int_equal(tk_store_membership_insert(st, "o1", "u1", "superuser"), TK_EINVAL);
    assert_non_null(strstr(tk_store_last_error(st), "CHECK"));
    assert_int_equal(tk_store_membership_insert(st, "o1", "u1", "owner"), TK_OK);
    assert_int_equal(tk_store_membership_insert(st, "o1", "u1", "viewer"), TK_EINVAL); /* PK */

    /* duplicates */
    assert_int_equal(tk_store_org_insert(st, "o1", "again", 2), TK_EINVAL);
    assert_int_equal(tk_store_user_insert(st, "u2", "u1@example.com", NULL, 1), TK_EINVAL);

    /* an API key's owner must be a user */
    tk_apikey_t k = sample_key("k1", 1);
    k.owner = (char *)"ghost";
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_EINVAL);
    tk_apikey_t got;
    assert_int_equal(tk_store_apikey_get(st, "k1", &got), TK_ENOENT);
    k.owner = (char *)"u1";
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    tk_store_close(st);

    /* deleting the user deletes its keys and memberships (ON DELETE CASCADE) */
    sqlite3 *db = raw_open(f);
    raw_exec(db, "PRAGMA foreign_keys = ON; DELETE FROM users WHERE id = 'u1'");
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM api_keys"), 0);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM memberships"), 0);
    sqlite3_close(db);
}

/* ---- users, memberships, tool selections (migration 4) ---- */

static void test_users_crud(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    assert_int_equal(tk_store_user_insert(st, "u2", "b@example.com", NULL, 20), TK_OK);
    assert_int_equal(tk_store_user_insert(st, "u1", EVIL "\r\nX: y", NULL, 10), TK_OK);
    tk_user_t u;
    assert_int_equal(tk_store_user_get(st, "u1", &u), TK_OK);
    assert_string_equal(u.id, "u1");
    assert_string_equal(u.email, EVIL "\r\nX: y"); /* stored verbatim, as data */
    assert_int_equal(u.disabled, 0);
    assert_int_equal(u.created_at, 10);
    tk_user_clear(&u);
    assert_int_equal(tk_store_user_get(st, "nobody", &u), TK_ENOENT);
    assert_null(u.email);

    tk_user_t *list = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_user_list(st, &list, &n), TK_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "u1"); /* created first */
    assert_string_equal(list[1].id, "u2");
    tk_user_list_free(list, n);

    assert_int_equal(tk_store_user_update(st, "u1", NULL, 1), TK_OK); /* status only */
    assert_int_equal(tk_store_user_get(st, "u1", &u), TK_OK);
    assert_int_equal(u.disabled, 1);
    assert_string_equal(u.email, EVIL "\r\nX: y");
    tk_user_clear(&u);
    assert_int_equal(tk_store_user_update(st, "u1", "a@example.com", -1), TK_OK); /* email */
    assert_int_equal(tk_store_user_get(st, "u1", &u), TK_OK);
    assert_int_equal(u.disabled, 1);
    assert_string_equal(u.email, "a@example.com");
    tk_user_clear(&u);
    assert_int_equal(tk_store_user_update(st, "u2", "a@example.com", -1), TK_EINVAL); /* taken */
    assert_null(strstr(tk_store_last_error(st), "a@example.com"));
    assert_int_equal(tk_store_user_update(st, "ghost", NULL, 0), TK_ENOENT);
    assert_int_equal(tk_store_user_update(st, "u1", "", 0), TK_EINVAL);

    /* delete cascades to memberships and keys */
    assert_int_equal(tk_store_org_ensure(st, "default", "Default", 1), TK_OK);
    assert_int_equal(tk_store_membership_insert(st, "default", "u1", "admin"), TK_OK);
    tk_apikey_t k = sample_key("k1", 1);
    k.owner = (char *)"u1";
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    assert_int_equal(tk_store_user_delete(st, "u1"), TK_OK);
    assert_int_equal(tk_store_user_delete(st, "u1"), TK_ENOENT);
    tk_apikey_t got;
    assert_int_equal(tk_store_apikey_get(st, "k1", &got), TK_ENOENT);
    char role[8];
    assert_int_equal(tk_store_member_role(st, "default", "u1", role), TK_ENOENT);
    tk_store_close(st);
}

static void test_org_ensure_and_members(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    assert_int_equal(tk_store_org_ensure(st, "default", "Default", 1), TK_OK);
    assert_int_equal(tk_store_org_ensure(st, "default", "Renamed", 2), TK_OK); /* no change */
    assert_int_equal(tk_store_org_ensure(st, "other", "Other", 3), TK_OK);
    assert_int_equal(tk_store_user_insert(st, "u1", "a@x", NULL, 1), TK_OK);
    assert_int_equal(tk_store_user_insert(st, "u2", "b@x", NULL, 2), TK_OK);
    assert_int_equal(tk_store_membership_insert(st, "default", "u2", "viewer"), TK_OK);
    assert_int_equal(tk_store_membership_insert(st, "default", "u1", "owner"), TK_OK);
    assert_int_equal(tk_store_membership_insert(st, "other", "u1", "member"), TK_OK);

    tk_member_t *m = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_member_list(st, "default", NULL, &m, &n), TK_OK);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].user_id, "u1");
    assert_string_equal(m[0].role, "owner");
    assert_string_equal(m[1].user_id, "u2");
    assert_string_equal(m[1].role, "viewer");
    free(m);
    assert_int_equal(tk_store_member_list(st, NULL, "u1", &m, &n), TK_OK);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].org_id, "default");
    assert_string_equal(m[1].org_id, "other");
    free(m);
    assert_int_equal(tk_store_member_list(st, NULL, NULL, &m, &n), TK_EINVAL);

    char role[8];
    assert_int_equal(tk_store_member_role(st, "other", "u1", role), TK_OK);
    assert_string_equal(role, "member");
    assert_int_equal(tk_store_member_role(st, "other", "u2", role), TK_ENOENT);
    assert_string_equal(role, "");
    assert_int_equal(tk_store_member_delete(st, "other", "u1"), TK_OK);
    assert_int_equal(tk_store_member_delete(st, "other", "u1"), TK_ENOENT);
    assert_int_equal(tk_store_member_role(st, "other", "u1", role), TK_ENOENT);
    assert_int_equal(tk_store_member_role(st, "default", EVIL, role), TK_ENOENT);
    tk_store_close(st);
}

static void test_tool_filters(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    tk_tool_filter_t a = {(char *)"team-b", (char *)"[\"x__*\"]", (char *)"[]", 5};
    tk_tool_filter_t b = {(char *)"team-a", (char *)"[]", (char *)"[\"" EVIL "\"]", 6};
    assert_int_equal(tk_store_tool_filter_set(st, &a), TK_OK);
    assert_int_equal(tk_store_tool_filter_set(st, &b), TK_OK);
    a.allow = (char *)"[\"y__*\"]";
    a.updated_at = 7;
    assert_int_equal(tk_store_tool_filter_set(st, &a), TK_OK); /* replaces */
    tk_tool_filter_t *list = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_tool_filter_list(st, &list, &n), TK_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].endpoint, "team-a");
    assert_string_equal(list[0].deny, "[\"" EVIL "\"]");
    assert_string_equal(list[1].endpoint, "team-b");
    assert_string_equal(list[1].allow, "[\"y__*\"]");
    assert_int_equal(list[1].updated_at, 7);
    tk_tool_filter_list_free(list, n);
    a.endpoint = (char *)"";
    assert_int_equal(tk_store_tool_filter_set(st, &a), TK_EINVAL);
    tk_store_close(st);

    /* survives a reopen */
    st = open_store(f);
    assert_int_equal(tk_store_tool_filter_list(st, &list, &n), TK_OK);
    assert_int_equal(n, 2);
    tk_tool_filter_list_free(list, n);
    tk_store_close(st);
}

/* ---- concurrency ---- */

static void test_two_handles(void **state)
{
    fixture_t *f = *state;
    tk_store_t *a = open_store(f);
    tk_store_t *b = open_store(f);
    tk_apikey_t k = sample_key("shared", 10);
    assert_int_equal(tk_store_apikey_insert(a, &k), TK_OK);

    tk_apikey_t got;
    assert_int_equal(tk_store_apikey_get(b, "shared", &got), TK_OK);
    assert_int_equal(got.revoked_at, 0);
    tk_apikey_clear(&got);

    assert_int_equal(tk_store_apikey_revoke(a, "shared", 5000), TK_OK);
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_apikey_revoked_since(b, 4000, &ids, &n), TK_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "shared");
    tk_store_ids_free(ids, n);
    assert_int_equal(tk_store_apikey_get(b, "shared", &got), TK_OK);
    assert_int_equal(got.revoked_at, 5000);
    tk_apikey_clear(&got);

    /* and the other way round */
    assert_int_equal(tk_store_apikey_touch(b, "shared", 6000), TK_OK);
    assert_int_equal(tk_store_apikey_get(a, "shared", &got), TK_OK);
    assert_int_equal(got.last_used_at, 6000);
    tk_apikey_clear(&got);
    tk_store_close(b);
    tk_store_close(a);
}

/* Holds a raw connection's write lock for a moment, then commits. */
static void *release_later(void *arg)
{
    usleep(300 * 1000);
    raw_exec(arg, "COMMIT");
    return NULL;
}

static void test_busy_timeout_waits(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    sqlite3 *db = raw_open(f);
    raw_exec(db, "BEGIN IMMEDIATE; INSERT INTO organizations VALUES ('o', 'O', 1)");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_later, db), 0);
    uint64_t t0 = tk_now_ms();
    tk_apikey_t k = sample_key("k", 1);
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK); /* waited, then wrote */
    uint64_t waited = tk_now_ms() - t0;
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(waited >= 200);
    assert_true(waited < 5000);
    sqlite3_close(db);
    tk_store_close(st);
}

/* ---- argument checks ---- */

static void test_invalid_arguments(void **state)
{
    fixture_t *f = *state;
    tk_store_t *st = open_store(f);
    tk_apikey_t k = sample_key("k", 1);
    assert_int_equal(tk_store_apikey_insert(NULL, &k), TK_EINVAL);
    assert_int_equal(tk_store_apikey_insert(st, NULL), TK_EINVAL);

    k.id[0] = '\0';
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_EINVAL);
    memset(k.id, 'a', sizeof(k.id)); /* no NUL within 33 bytes */
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_ELIMIT);

    k = sample_key("k", 1);
    k.hash = NULL;
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_EINVAL);
    k = sample_key("k", 1);
    k.endpoint = (char *)"";
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_EINVAL);
    k = sample_key("k", 1);
    k.expires_at = -1;
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_EINVAL);
    k = sample_key("k", 1);
    k.owner = (char *)"";
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_EINVAL);

    char *big = tk_malloc(TK_STORE_TEXT_MAX + 2);
    memset(big, 'n', TK_STORE_TEXT_MAX + 1);
    big[TK_STORE_TEXT_MAX + 1] = '\0';
    k = sample_key("k", 1);
    k.name = big;
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_ELIMIT);
    big[TK_STORE_TEXT_MAX] = '\0'; /* exactly the limit is fine */
    assert_int_equal(tk_store_apikey_insert(st, &k), TK_OK);
    free(big);

    tk_apikey_t *list = NULL;
    size_t n = 0;
    assert_int_equal(tk_store_apikey_list(st, &list, &n), TK_OK);
    assert_int_equal(n, 1); /* only the valid one got in */
    tk_apikey_list_free(list, n);

    assert_int_equal(tk_store_apikey_get(st, NULL, &k), TK_EINVAL);
    assert_int_equal(tk_store_apikey_list(st, NULL, &n), TK_EINVAL);
    assert_int_equal(tk_store_apikey_revoked_since(st, 0, NULL, &n), TK_EINVAL);
    assert_int_equal(tk_store_org_insert(st, "", "x", 1), TK_EINVAL);
    assert_int_equal(tk_store_user_insert(st, "u", NULL, NULL, 1), TK_EINVAL);
    assert_int_equal(tk_store_membership_insert(st, "o", "u", NULL), TK_EINVAL);
    assert_int_equal(tk_store_schema_version(NULL, NULL), TK_EINVAL);

    tk_apikey_clear(NULL);
    tk_apikey_list_free(NULL, 3);
    tk_store_ids_free(NULL, 3);
    tk_store_close(NULL);
    tk_store_close(st);
}

int main(void)
{
    tk_log_set_level(TK_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_0600_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_file_keeps_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_migrates_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jti_revocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jti_revoke_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apikey_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apikey_list_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apikey_revoke_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apikey_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apikey_revoked_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apikey_duplicate_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sql_metacharacters_are_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_keys_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_timeout_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_org_ensure_and_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_filters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
