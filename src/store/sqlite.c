/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQLite backend for the store: one sqlite3 connection per tk_store_t, in WAL
 * mode with foreign keys on, a 5 s busy timeout and synchronous=NORMAL (a
 * crash loses at most the last commits, never consistency). Schema changes
 * are numbered migrations applied at open inside one BEGIN IMMEDIATE
 * transaction, recorded in schema_migrations; a database whose version is
 * newer than this binary knows is refused untouched. The schema sticks to
 * types and syntax PostgreSQL also accepts (TEXT, INTEGER, CHECK, REFERENCES,
 * explicit NOT NULL on keys; unix-millisecond integers for time) so a
 * PostgreSQL backend can share it.
 *
 * Every value travels as a bound parameter; statements are prepared once per
 * connection, cached, and reset with bindings cleared after each use. Error
 * text comes from sqlite3_errmsg(), which describes constraints and I/O but
 * never echoes bound values.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define BUSY_TIMEOUT_MS 5000

/* ---- schema ---- */

typedef struct migration {
    int64_t version;
    const char *sql;
} migration_t;

static const migration_t migrations[] = {
    {1, "CREATE TABLE organizations ("
        "  id TEXT NOT NULL PRIMARY KEY,"
        "  name TEXT NOT NULL,"
        "  created_at INTEGER NOT NULL"
        ");"
        "CREATE TABLE users ("
        "  id TEXT NOT NULL PRIMARY KEY,"
        "  email TEXT NOT NULL UNIQUE,"
        "  password_hash TEXT,"
        "  oidc_subject TEXT UNIQUE,"
        "  failed_logins INTEGER NOT NULL DEFAULT 0,"
        "  locked_until INTEGER,"
        "  created_at INTEGER NOT NULL"
        ");"
        "CREATE TABLE memberships ("
        "  org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
        "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
        "  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),"
        "  PRIMARY KEY (org_id, user_id)"
        ");"
        "CREATE INDEX memberships_user ON memberships (user_id);"
        "CREATE TABLE api_keys ("
        "  id TEXT NOT NULL PRIMARY KEY,"
        "  name TEXT,"
        "  hash TEXT NOT NULL,"
        "  endpoint TEXT NOT NULL,"
        "  scopes TEXT,"
        "  owner TEXT REFERENCES users (id) ON DELETE CASCADE,"
        "  created_at INTEGER NOT NULL,"
        "  expires_at INTEGER,"
        "  revoked_at INTEGER,"
        "  last_used_at INTEGER"
        ");"
        "CREATE INDEX api_keys_owner ON api_keys (owner);"
        "CREATE INDEX api_keys_revoked_at ON api_keys (revoked_at);"
        "CREATE TABLE revoked_tokens ("
        "  jti TEXT NOT NULL PRIMARY KEY,"
        "  expires_at INTEGER NOT NULL"
        ");"
        "CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);"},
    {2, "ALTER TABLE revoked_tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);"},
    /* tool-definition pins: approved_hash NULL = pending (never approved or
     * revoked); changed_at moves whenever the approval does, for pollers */
    {3, "CREATE TABLE tool_pins ("
        "  server TEXT NOT NULL,"
        "  tool TEXT NOT NULL,"
        "  seen_hash TEXT NOT NULL,"
        "  approved_hash TEXT,"
        "  approved_at INTEGER,"
        "  approved_by TEXT,"
        "  first_seen INTEGER NOT NULL,"
        "  last_seen INTEGER NOT NULL,"
        "  changed_at INTEGER NOT NULL,"
        "  PRIMARY KEY (server, tool)"
        ");"
        "CREATE INDEX tool_pins_changed_at ON tool_pins (changed_at);"},
    /* user status and per-endpoint tool selections made through the admin
     * API / CLI */
    {4, "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE endpoint_tool_filters ("
        "  endpoint TEXT NOT NULL PRIMARY KEY,"
        "  allow_list TEXT NOT NULL,"
        "  deny_list TEXT NOT NULL,"
        "  updated_at INTEGER NOT NULL"
        ");"},
    /* 5: dashboard logins look users up by e-mail without regard to case,
     * so e-mails are unique without regard to case too (failed_logins and
     * locked_until exist since 1; locked_until is in ms) */
    {5, "CREATE UNIQUE INDEX IF NOT EXISTS users_email_nocase ON users (email COLLATE NOCASE);"},
    /* 6: upstream servers and endpoints made through the admin API / CLI;
     * a server's secret values only as vault ciphertext (AES-256-GCM, tag
     * appended) with nonce and key id; BLOB is BYTEA on PostgreSQL */
    {6, "CREATE TABLE servers ("
        "  id TEXT NOT NULL PRIMARY KEY,"
        "  org_id TEXT NOT NULL REFERENCES organizations (id),"
        "  name TEXT NOT NULL UNIQUE,"
        "  transport TEXT NOT NULL CHECK (transport IN ('stdio', 'http', 'sse')),"
        "  spec TEXT NOT NULL,"
        "  created_by TEXT,"
        "  created_at INTEGER NOT NULL,"
        "  updated_at INTEGER NOT NULL"
        ");"
        "CREATE TABLE server_secrets ("
        "  server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,"
        "  kind TEXT NOT NULL CHECK (kind IN ('env', 'header')),"
        "  name TEXT NOT NULL,"
        "  ciphertext BLOB NOT NULL,"
        "  nonce BLOB NOT NULL,"
        "  key_id TEXT NOT NULL,"
        "  PRIMARY KEY (server_id, kind, name)"
        ");"
        "CREATE TABLE endpoints ("
        "  slug TEXT NOT NULL PRIMARY KEY,"
        "  org_id TEXT NOT NULL REFERENCES organizations (id),"
        "  spec TEXT NOT NULL,"
        "  created_by TEXT,"
        "  created_at INTEGER NOT NULL,"
        "  updated_at INTEGER NOT NULL"
        ");"},
    /* 7: the JWTs this gateway issued (no token, only its id, subject and
     * expiry), so that disabling or deleting a user revokes theirs */
    {7, "CREATE TABLE issued_tokens ("
        "  jti TEXT NOT NULL PRIMARY KEY,"
        "  sub TEXT NOT NULL,"
        "  expires_at INTEGER NOT NULL,"
        "  issued_at INTEGER NOT NULL"
        ");"
        "CREATE INDEX issued_tokens_sub ON issued_tokens (sub);"},
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

/* ---- statements ---- */

typedef enum stmt_id {
    S_VERSION,
    S_ORG_INSERT,
    S_USER_INSERT,
    S_MEMBER_INSERT,
    S_KEY_INSERT,
    S_KEY_GET,
    S_KEY_LIST,
    S_KEY_EXISTS,
    S_KEY_REVOKE,
    S_KEY_TOUCH,
    S_KEY_REVOKED_SINCE,
    S_JTI_REVOKE,
    S_JTI_REVOKED_SINCE,
    S_JTI_ISSUE,
    S_JTI_ISSUED_PURGE,
    S_JTI_REVOKE_SUB,
    S_PIN_OBSERVE,
    S_PIN_GET,
    S_PIN_LIST,
    S_PIN_APPROVE,
    S_PIN_REVOKE,
    S_PIN_EXISTS,
    S_ORG_ENSURE,
    S_USER_GET,
    S_USER_LIST,
    S_USER_UPDATE,
    S_USER_DELETE,
    S_MEMBER_LIST,
    S_MEMBER_DELETE,
    S_FILTER_SET,
    S_FILTER_LIST,
    S_LOGIN_GET,
    S_LOGIN_FAILED,
    S_LOGIN_RESET,
    S_SET_PASSWORD,
    S_OIDC_GET,
    S_OIDC_LINK,
    S_SRV_INSERT,
    S_SRV_UPDATE,
    S_SRV_LIST,
    S_SRV_DELETE,
    S_SEC_CLEAR,
    S_SEC_INSERT,
    S_SEC_LIST,
    S_EP_INSERT,
    S_EP_UPDATE,
    S_EP_LIST,
    S_EP_DELETE,
    S_FILTER_DELETE,
    S_COUNT
} stmt_id_t;

#define KEY_COLUMNS                                                                                \
    "id, name, hash, endpoint, scopes, owner, created_at, expires_at, revoked_at, last_used_at"

#define PIN_COLUMNS                                                                                \
    "server, tool, seen_hash, approved_hash, approved_at, approved_by, first_seen, last_seen,"     \
    " changed_at"

static const char *const stmt_sql[S_COUNT] = {
    [S_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [S_ORG_INSERT] = "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)",
    [S_USER_INSERT] = "INSERT INTO users (id, email, password_hash, failed_logins, created_at)"
                      " VALUES (?1, ?2, ?3, 0, ?4)",
    [S_MEMBER_INSERT] = "INSERT INTO memberships (org_id, user_id, role) VALUES (?1, ?2, ?3)",
    [S_KEY_INSERT] = "INSERT INTO api_keys (" KEY_COLUMNS ")"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_KEY_GET] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE id = ?1",
    [S_KEY_LIST] = "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created_at, id",
    [S_KEY_EXISTS] = "SELECT 1 FROM api_keys WHERE id = ?1",
    [S_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
    [S_KEY_TOUCH] = "UPDATE api_keys SET last_used_at = ?1"
                    " WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
    [S_KEY_REVOKED_SINCE] =
        "SELECT id FROM api_keys WHERE revoked_at >= ?1 ORDER BY revoked_at, id",
    [S_JTI_REVOKE] = "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (jti) DO NOTHING",
    [S_JTI_REVOKED_SINCE] = "SELECT jti FROM revoked_tokens WHERE revoked_at >= ?1"
                            " AND expires_at > ?2 ORDER BY revoked_at, jti",
    [S_JTI_ISSUE] = "INSERT INTO issued_tokens (jti, sub, expires_at, issued_at)"
                    " VALUES (?1, ?2, ?3, ?4)",
    [S_JTI_ISSUED_PURGE] = "DELETE FROM issued_tokens WHERE expires_at <= ?1",
    [S_JTI_REVOKE_SUB] = "INSERT INTO revoked_tokens (jti, expires_at, revoked_at)"
                         " SELECT jti, expires_at, ?2 FROM issued_tokens"
                         " WHERE sub = ?1 AND expires_at > ?2 ON CONFLICT (jti) DO NOTHING",
    [S_PIN_OBSERVE] = "INSERT INTO tool_pins (" PIN_COLUMNS ") VALUES (?1, ?2, ?3,"
                      " CASE WHEN ?5 = 1 THEN ?3 END, CASE WHEN ?5 = 1 THEN ?4 END,"
                      " CASE WHEN ?5 = 1 THEN 'trust-on-first-use' END, ?4, ?4, ?4)"
                      " ON CONFLICT (server, tool) DO UPDATE SET seen_hash = excluded.seen_hash,"
                      " last_seen = excluded.last_seen",
    [S_PIN_GET] = "SELECT " PIN_COLUMNS " FROM tool_pins WHERE server = ?1 AND tool = ?2",
    [S_PIN_LIST] = "SELECT " PIN_COLUMNS " FROM tool_pins WHERE changed_at >= ?1"
                   " AND (?2 IS NULL OR server = ?2) ORDER BY server, tool",
    [S_PIN_APPROVE] = "UPDATE tool_pins SET approved_hash = seen_hash, approved_at = ?1,"
                      " approved_by = ?2, changed_at = ?1 WHERE server = ?3"
                      " AND (?4 IS NULL OR tool = ?4)"
                      " AND (approved_hash IS NULL OR approved_hash <> seen_hash)"
                      " AND (?5 IS NULL OR substr(seen_hash, 1, length(?5)) = ?5)",
    [S_PIN_REVOKE] = "UPDATE tool_pins SET approved_hash = NULL, approved_at = NULL,"
                     " approved_by = NULL, changed_at = ?1 WHERE server = ?2"
                     " AND (?3 IS NULL OR tool = ?3) AND approved_hash IS NOT NULL",
    [S_PIN_EXISTS] = "SELECT 1 FROM tool_pins WHERE server = ?1 AND (?2 IS NULL OR tool = ?2)"
                     " LIMIT 1",
    [S_ORG_ENSURE] = "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (id) DO NOTHING",
    [S_USER_GET] = "SELECT id, email, disabled, created_at FROM users WHERE id = ?1",
    [S_USER_LIST] = "SELECT id, email, disabled, created_at FROM users ORDER BY created_at, id",
    [S_USER_UPDATE] = "UPDATE users SET email = COALESCE(?2, email),"
                      " disabled = CASE WHEN ?3 < 0 THEN disabled ELSE ?3 END WHERE id = ?1",
    [S_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    [S_MEMBER_LIST] = "SELECT org_id, user_id, role FROM memberships"
                      " WHERE (?1 IS NULL OR org_id = ?1) AND (?2 IS NULL OR user_id = ?2)"
                      " ORDER BY org_id, user_id",
    [S_MEMBER_DELETE] = "DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2",
    [S_FILTER_SET] = "INSERT INTO endpoint_tool_filters (endpoint, allow_list, deny_list, updated_at)"
                     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (endpoint) DO UPDATE SET"
                     " allow_list = excluded.allow_list, deny_list = excluded.deny_list,"
                     " updated_at = excluded.updated_at",
    [S_FILTER_LIST] = "SELECT endpoint, allow_list, deny_list, updated_at"
                      " FROM endpoint_tool_filters ORDER BY endpoint",
    [S_LOGIN_GET] = "SELECT id, email, password_hash, disabled, failed_logins,"
                    " COALESCE(locked_until, 0) FROM users WHERE email = ?1 COLLATE NOCASE"
                    " ORDER BY id LIMIT 1",
    [S_LOGIN_FAILED] = "UPDATE users SET"
                       " locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3"
                       " ELSE locked_until END,"
                       " failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0"
                       " ELSE failed_logins + 1 END"
                       " WHERE id = ?1 RETURNING COALESCE(locked_until, 0)",
    [S_LOGIN_RESET] = "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
    [S_SET_PASSWORD] = "UPDATE users SET password_hash = ?2 WHERE id = ?1",
    [S_OIDC_GET] = "SELECT id, email, password_hash, disabled, failed_logins,"
                   " COALESCE(locked_until, 0) FROM users WHERE oidc_subject = ?1",
    [S_OIDC_LINK] = "UPDATE users SET oidc_subject = ?2 WHERE id = ?1 AND oidc_subject IS NULL",
    [S_SRV_INSERT] = "INSERT INTO servers (id, org_id, name, transport, spec, created_by,"
                     " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_SRV_UPDATE] = "UPDATE servers SET transport = ?3, spec = ?4, updated_at = ?5"
                     " WHERE id = ?1 AND name = ?2",
    [S_SRV_LIST] = "SELECT id, org_id, name, transport, spec, created_by, created_at, updated_at"
                   " FROM servers ORDER BY name",
    [S_SRV_DELETE] = "DELETE FROM servers WHERE name = ?1",
    [S_SEC_CLEAR] = "DELETE FROM server_secrets WHERE server_id = ?1",
    [S_SEC_INSERT] = "INSERT INTO server_secrets (server_id, kind, name, ciphertext, nonce, key_id)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_SEC_LIST] = "SELECT server_id, kind, name, ciphertext, nonce, key_id FROM server_secrets"
                   " ORDER BY server_id, kind, name",
    [S_EP_INSERT] = "INSERT INTO endpoints (slug, org_id, spec, created_by, created_at, updated_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_EP_UPDATE] = "UPDATE endpoints SET spec = ?3, updated_at = ?6 WHERE slug = ?1",
    [S_EP_LIST] = "SELECT slug, org_id, spec, created_by, created_at, updated_at FROM endpoints"
                  " ORDER BY slug",
    [S_EP_DELETE] = "DELETE FROM endpoints WHERE slug = ?1",
    [S_FILTER_DELETE] = "DELETE FROM endpoint_tool_filters WHERE endpoint = ?1",
};

typedef struct sqlite_be {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    char err[200];
} sqlite_be_t;

/* ---- errors ---- */

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return TK_EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return TK_EBUSY;
    case SQLITE_NOMEM:
        return TK_ENOMEM;
    case SQLITE_TOOBIG:
        return TK_ELIMIT;
    default:
        return TK_EIO;
    }
}

/* Record the connection's description of a failed call; return the TK_E*.
 * sqlite3_errmsg() names constraints, columns and I/O failures, not values. */
static int db_fail(sqlite_be_t *be, int rc)
{
    tk_snprintf(be->err, sizeof(be->err), "%s", sqlite3_errmsg(be->db));
    return map_rc(rc);
}

static int be_fail(sqlite_be_t *be, int rc, const char *what)
{
    tk_snprintf(be->err, sizeof(be->err), "%s", what);
    return rc;
}

/* ---- statement helpers ---- */

/* The cached statement `id`, prepared on first use; NULL on failure (with
 * be->err set and *rc the TK_E*). */
static sqlite3_stmt *stmt(sqlite_be_t *be, stmt_id_t id, int *rc)
{
    if (be->stmt[id] == NULL) {
        int src = sqlite3_prepare_v3(be->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                     &be->stmt[id], NULL);
        if (src != SQLITE_OK) {
            *rc = db_fail(be, src);
            return NULL;
        }
    }
    *rc = 0;
    return be->stmt[id];
}

/* Return a statement to the cache: reset it and drop its bindings (they
 * point into the caller's memory). */
static void stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Bind text, or SQL NULL for a NULL pointer. The text must outlive the step
 * (it does: statements are reset before the operation returns). */
static int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v == NULL ? sqlite3_bind_null(s, i) : sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

/* Bind a time where 0 means "none" (SQL NULL). */
static int bind_time(sqlite3_stmt *s, int i, int64_t v)
{
    return v == 0 ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, v);
}

/* Step a bound write statement to completion, return it to the cache, and
 * report how many rows it changed (changes may be NULL). */
static int run_write(sqlite_be_t *be, sqlite3_stmt *s, int *changes)
{
    int src = sqlite3_step(s);
    int rc = src == SQLITE_DONE ? 0 : db_fail(be, src);
    if (rc == 0 && changes != NULL)
        *changes = sqlite3_changes(be->db);
    stmt_done(s);
    return rc;
}

/* run_write for a statement whose binding ended with src: a failed bind is
 * reported and the statement returned to the cache unrun. */
static int run_bound(sqlite_be_t *be, sqlite3_stmt *s, int src, int *changes)
{
    if (src != SQLITE_OK) {
        int rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    return run_write(be, s, changes);
}

/* A column as a fresh heap string, or NULL for SQL NULL. */
static int col_text(sqlite3_stmt *s, int i, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(s, i);
    if (t == NULL)
        return TK_ENOMEM;
    *out = tk_strndup((const char *)t, (size_t)sqlite3_column_bytes(s, i));
    return 0;
}

/* Fill *k from the current row of a KEY_COLUMNS query. */
static int row_to_key(sqlite_be_t *be, sqlite3_stmt *s, tk_apikey_t *k)
{
    memset(k, 0, sizeof(*k));
    const unsigned char *id = sqlite3_column_text(s, 0);
    int idlen = sqlite3_column_bytes(s, 0);
    if (id == NULL || idlen <= 0 || idlen > TK_APIKEY_ID_MAX)
        return be_fail(be, TK_EIO, "malformed api_keys row (id)");
    memcpy(k->id, id, (size_t)idlen);
    int rc = col_text(s, 1, &k->name);
    if (rc == 0)
        rc = col_text(s, 2, &k->hash);
    if (rc == 0)
        rc = col_text(s, 3, &k->endpoint);
    if (rc == 0)
        rc = col_text(s, 4, &k->scopes);
    if (rc == 0)
        rc = col_text(s, 5, &k->owner);
    if (rc == 0 && (k->hash == NULL || k->endpoint == NULL))
        rc = be_fail(be, TK_EIO, "malformed api_keys row (NULL hash or endpoint)");
    if (rc != 0) {
        tk_apikey_clear(k);
        return rc == TK_ENOMEM ? be_fail(be, rc, "out of memory reading a row") : rc;
    }
    k->created_at = sqlite3_column_int64(s, 6);
    k->expires_at = sqlite3_column_int64(s, 7);
    k->revoked_at = sqlite3_column_int64(s, 8);
    k->last_used_at = sqlite3_column_int64(s, 9);
    return 0;
}

/* ---- operations ---- */

static int op_schema_version(void *arg, int64_t *out)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_VERSION, &rc);
    if (s == NULL)
        return rc;
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else
        rc = db_fail(be, src);
    stmt_done(s);
    return rc;
}

static int op_org_insert(void *arg, const char *id, const char *name, int64_t created_at)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_ORG_INSERT, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, id);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, name);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 3, created_at);
    if (src != SQLITE_OK) {
        rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    return run_write(be, s, NULL);
}

static int op_user_insert(void *arg, const char *id, const char *email, const char *password_hash,
                          int64_t created_at)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_USER_INSERT, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, id);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, email);
    if (src == SQLITE_OK)
        src = bind_text(s, 3, password_hash);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 4, created_at);
    if (src != SQLITE_OK) {
        rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    return run_write(be, s, NULL);
}

static int op_membership_insert(void *arg, const char *org_id, const char *user_id,
                                const char *role)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_MEMBER_INSERT, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, org_id);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, user_id);
    if (src == SQLITE_OK)
        src = bind_text(s, 3, role);
    if (src != SQLITE_OK) {
        rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    return run_write(be, s, NULL);
}

static int bind_key(sqlite3_stmt *s, const tk_apikey_t *k)
{
    int src = bind_text(s, 1, k->id);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, k->name);
    if (src == SQLITE_OK)
        src = bind_text(s, 3, k->hash);
    if (src == SQLITE_OK)
        src = bind_text(s, 4, k->endpoint);
    if (src == SQLITE_OK)
        src = bind_text(s, 5, k->scopes);
    if (src == SQLITE_OK)
        src = bind_text(s, 6, k->owner);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 7, k->created_at);
    if (src == SQLITE_OK)
        src = bind_time(s, 8, k->expires_at);
    if (src == SQLITE_OK)
        src = bind_time(s, 9, k->revoked_at);
    if (src == SQLITE_OK)
        src = bind_time(s, 10, k->last_used_at);
    return src;
}

static int op_apikey_insert(void *arg, const tk_apikey_t *key)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_KEY_INSERT, &rc);
    if (s == NULL)
        return rc;
    int src = bind_key(s, key);
    if (src != SQLITE_OK) {
        rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    return run_write(be, s, NULL);
}

static int op_apikey_get(void *arg, const char *id, tk_apikey_t *out)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_KEY_GET, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, id);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        rc = row_to_key(be, s, out);
    else if (src == SQLITE_DONE)
        rc = be_fail(be, TK_ENOENT, "no such key");
    else
        rc = db_fail(be, src);
    stmt_done(s);
    return rc;
}

/* Append one zeroed slot to a growing key array. */
static tk_apikey_t *key_slot(tk_apikey_t **list, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t ncap = *cap == 0 ? 16 : *cap * 2;
        if (ncap > SIZE_MAX / sizeof(**list))
            return NULL;
        *list = tk_realloc(*list, ncap * sizeof(**list));
        *cap = ncap;
    }
    return &(*list)[(*n)++];
}

static int op_apikey_list(void *arg, tk_apikey_t **out, size_t *n)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_KEY_LIST, &rc);
    if (s == NULL)
        return rc;
    tk_apikey_t *list = NULL;
    size_t count = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        tk_apikey_t *k = key_slot(&list, &count, &cap);
        if (k == NULL) {
            rc = be_fail(be, TK_ELIMIT, "too many keys");
            break;
        }
        rc = row_to_key(be, s, k);
        if (rc != 0) {
            count--; /* the slot was cleared by row_to_key */
            break;
        }
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = db_fail(be, src);
    stmt_done(s);
    if (rc != 0) {
        tk_apikey_list_free(list, count);
        return rc;
    }
    *out = count > 0 ? list : NULL;
    if (count == 0)
        free(list);
    *n = count;
    return 0;
}

/* 0 if key `id` exists, TK_ENOENT if not. */
static int key_exists(sqlite_be_t *be, const char *id)
{
    int rc;
    sqlite3_stmt *s = stmt(be, S_KEY_EXISTS, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, id);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src == SQLITE_DONE)
        rc = be_fail(be, TK_ENOENT, "no such key");
    else if (src != SQLITE_ROW)
        rc = db_fail(be, src);
    stmt_done(s);
    return rc;
}

/* Run "UPDATE ... SET col = ?1 WHERE id = ?2 AND <not yet newer>": a row
 * left unchanged is fine if the key exists (idempotent revoke, touch with an
 * older time), TK_ENOENT if it does not. */
static int update_time(sqlite_be_t *be, stmt_id_t which, const char *id, int64_t now_ms)
{
    int rc;
    sqlite3_stmt *s = stmt(be, which, &rc);
    if (s == NULL)
        return rc;
    int src = sqlite3_bind_int64(s, 1, now_ms);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, id);
    if (src != SQLITE_OK) {
        rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    int changes = 0;
    rc = run_write(be, s, &changes);
    if (rc == 0 && changes == 0)
        rc = key_exists(be, id);
    return rc;
}

static int op_apikey_revoke(void *arg, const char *id, int64_t now_ms)
{
    return update_time(arg, S_KEY_REVOKE, id, now_ms);
}

static int op_apikey_touch(void *arg, const char *id, int64_t now_ms)
{
    return update_time(arg, S_KEY_TOUCH, id, now_ms);
}

/* Run a one-column SELECT of ids bound to (a[, b]) and collect them. */
static int select_ids(sqlite_be_t *be, stmt_id_t which, int64_t a, const int64_t *b, char ***ids,
                      size_t *n)
{
    int rc;
    sqlite3_stmt *s = stmt(be, which, &rc);
    if (s == NULL)
        return rc;
    char **list = NULL;
    size_t count = 0, cap = 0;
    int src = sqlite3_bind_int64(s, 1, a);
    if (src == SQLITE_OK && b != NULL)
        src = sqlite3_bind_int64(s, 2, *b);
    while (src == SQLITE_OK || src == SQLITE_ROW) {
        src = sqlite3_step(s);
        if (src != SQLITE_ROW)
            break;
        char *id = NULL;
        rc = col_text(s, 0, &id);
        if (rc != 0 || id == NULL) {
            rc = be_fail(be, rc != 0 ? rc : TK_EIO, "malformed row (id)");
            break;
        }
        if (count == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            list = tk_realloc(list, cap * sizeof(*list));
        }
        list[count++] = id;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = db_fail(be, src);
    stmt_done(s);
    if (rc != 0) {
        tk_store_ids_free(list, count);
        return rc;
    }
    *ids = list;
    *n = count;
    return 0;
}

static int op_apikey_revoked_since(void *arg, int64_t since_ms, char ***ids, size_t *n)
{
    return select_ids(arg, S_KEY_REVOKED_SINCE, since_ms, NULL, ids, n);
}

static int op_jti_revoke(void *arg, const char *jti, int64_t expires_at, int64_t now_ms)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_JTI_REVOKE, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, jti);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 2, expires_at);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 3, now_ms);
    if (src != SQLITE_OK) {
        rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    int changes = 0;
    return run_write(be, s, &changes);
}

static int op_jti_revoked_since(void *arg, int64_t since_ms, int64_t now_ms, char ***jtis,
                                size_t *n)
{
    return select_ids(arg, S_JTI_REVOKED_SINCE, since_ms, &now_ms, jtis, n);
}

/* Record an issued token's id, dropping the records of expired ones. */
static int op_jti_issue(void *arg, const char *jti, const char *sub, int64_t expires_at,
                        int64_t now_ms)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_JTI_ISSUED_PURGE, &rc);
    if (s == NULL || (rc = run_bound(be, s, sqlite3_bind_int64(s, 1, now_ms), NULL)) != 0)
        return rc;
    if ((s = stmt(be, S_JTI_ISSUE, &rc)) == NULL)
        return rc;
    int src = bind_text(s, 1, jti);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, sub);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 3, expires_at);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 4, now_ms);
    return run_bound(be, s, src, NULL);
}

static int op_jti_revoke_subject(void *arg, const char *sub, int64_t now_ms, size_t *count)
{
    sqlite_be_t *be = arg;
    int rc, changes = 0;
    sqlite3_stmt *s = stmt(be, S_JTI_REVOKE_SUB, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, sub);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 2, now_ms);
    rc = run_bound(be, s, src, &changes);
    *count = rc == 0 ? (size_t)changes : 0;
    return rc;
}

/* ---- tool-definition pins ---- */

/* Copy a hash column (NULL: "") into a fixed buffer; TK_EIO if malformed. */
static int col_hash(sqlite3_stmt *s, int i, char *out)
{
    out[0] = '\0';
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(s, i);
    if (t == NULL || sqlite3_column_bytes(s, i) != TK_PIN_HASH_LEN)
        return TK_EIO;
    memcpy(out, t, TK_PIN_HASH_LEN + 1);
    return 0;
}

/* Fill *p from the current row of a PIN_COLUMNS query. */
static int row_to_pin(sqlite_be_t *be, sqlite3_stmt *s, tk_pin_t *p)
{
    memset(p, 0, sizeof(*p));
    int rc = col_text(s, 0, &p->server);
    if (rc == 0)
        rc = col_text(s, 1, &p->tool);
    if (rc == 0)
        rc = col_text(s, 5, &p->approved_by);
    if (rc == 0 && (p->server == NULL || p->tool == NULL || col_hash(s, 2, p->seen_hash) != 0 ||
                    p->seen_hash[0] == '\0' || col_hash(s, 3, p->approved_hash) != 0))
        rc = be_fail(be, TK_EIO, "malformed tool_pins row");
    if (rc != 0) {
        tk_pin_clear(p);
        return rc == TK_ENOMEM ? be_fail(be, rc, "out of memory reading a row") : rc;
    }
    p->approved_at = sqlite3_column_int64(s, 4);
    p->first_seen = sqlite3_column_int64(s, 6);
    p->last_seen = sqlite3_column_int64(s, 7);
    p->changed_at = sqlite3_column_int64(s, 8);
    return 0;
}

/* Step a bound PIN_COLUMNS query and collect every row; resets s. */
static int collect_pins(sqlite_be_t *be, sqlite3_stmt *s, tk_pin_t **out, size_t *n)
{
    tk_pin_t *list = NULL;
    size_t count = 0, cap = 0;
    int rc = 0, src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            list = tk_realloc(list, cap * sizeof(*list));
        }
        rc = row_to_pin(be, s, &list[count]);
        if (rc != 0)
            break;
        count++;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = db_fail(be, src);
    stmt_done(s);
    if (rc != 0 || count == 0) {
        tk_pin_list_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return 0;
}

static int pin_get(sqlite_be_t *be, const char *server, const char *tool, tk_pin_t *out)
{
    int rc;
    sqlite3_stmt *s = stmt(be, S_PIN_GET, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, server);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, tool);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        rc = row_to_pin(be, s, out);
    else
        rc = src == SQLITE_DONE ? be_fail(be, TK_ENOENT, "no such tool") : db_fail(be, src);
    stmt_done(s);
    return rc;
}

static int op_pin_observe(void *arg, const char *server, const char *tool, const char *hash,
                          int64_t now_ms, int approve_new, tk_pin_t *out)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_PIN_OBSERVE, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, server);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, tool);
    if (src == SQLITE_OK)
        src = bind_text(s, 3, hash);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 4, now_ms);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int(s, 5, approve_new);
    rc = run_bound(be, s, src, NULL);
    return rc == 0 && out != NULL ? pin_get(be, server, tool, out) : rc;
}

static int op_pin_list(void *arg, const char *server, int64_t changed_since, tk_pin_t **out,
                       size_t *n)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_PIN_LIST, &rc);
    if (s == NULL)
        return rc;
    int src = sqlite3_bind_int64(s, 1, changed_since);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, server);
    if (src != SQLITE_OK) {
        rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    return collect_pins(be, s, out, n);
}

/* 0 if `server` has tool `tool` (NULL: any tool), TK_ENOENT if not. */
static int pin_exists(sqlite_be_t *be, const char *server, const char *tool)
{
    int rc;
    sqlite3_stmt *s = stmt(be, S_PIN_EXISTS, &rc);
    if (s == NULL)
        return rc;
    int src = bind_text(s, 1, server);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, tool);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src == SQLITE_DONE)
        rc = be_fail(be, TK_ENOENT, "no such tool seen on that server");
    else if (src != SQLITE_ROW)
        rc = db_fail(be, src);
    stmt_done(s);
    return rc;
}

/* Run a bound approve/revoke UPDATE; no row changed is fine if the tool exists. */
static int pin_update(sqlite_be_t *be, sqlite3_stmt *s, int src, const char *server,
                      const char *tool, size_t *changed)
{
    int n = 0;
    int rc = run_bound(be, s, src, &n);
    *changed = rc == 0 && n > 0 ? (size_t)n : 0;
    if (rc == 0 && n == 0)
        rc = pin_exists(be, server, tool);
    return rc;
}

/* After an approval with `expect` changed nothing: TK_ESTATE if the tool's
 * definition is no longer the one expected. */
static int pin_check_expect(sqlite_be_t *be, const char *server, const char *tool,
                            const char *expect)
{
    tk_pin_t p;
    memset(&p, 0, sizeof(p));
    int rc = pin_get(be, server, tool, &p);
    if (rc == 0 && strncmp(p.seen_hash, expect, strlen(expect)) != 0)
        rc = be_fail(be, TK_ESTATE, "the definition changed since it was reviewed");
    tk_pin_clear(&p);
    return rc;
}

static int op_pin_approve(void *arg, const char *server, const char *tool, const char *by,
                          const char *expect, int64_t now_ms, size_t *changed)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_PIN_APPROVE, &rc);
    if (s == NULL)
        return rc;
    int src = sqlite3_bind_int64(s, 1, now_ms);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, by);
    if (src == SQLITE_OK)
        src = bind_text(s, 3, server);
    if (src == SQLITE_OK)
        src = bind_text(s, 4, tool);
    if (src == SQLITE_OK)
        src = bind_text(s, 5, expect);
    rc = pin_update(be, s, src, server, tool, changed);
    if (rc == 0 && *changed == 0 && expect != NULL)
        rc = pin_check_expect(be, server, tool, expect);
    return rc;
}

static int op_pin_revoke(void *arg, const char *server, const char *tool, int64_t now_ms,
                         size_t *changed)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = stmt(be, S_PIN_REVOKE, &rc);
    if (s == NULL)
        return rc;
    int src = sqlite3_bind_int64(s, 1, now_ms);
    if (src == SQLITE_OK)
        src = bind_text(s, 2, server);
    if (src == SQLITE_OK)
        src = bind_text(s, 3, tool);
    return pin_update(be, s, src, server, tool, changed);
}

/* ---- users, memberships, tool selections ---- */

/* Statement `which` with texts v[0..n-1] bound to ?1..?n; NULL on failure
 * (be->err set, *rc the TK_E*). */
static sqlite3_stmt *bound(sqlite_be_t *be, stmt_id_t which, int n, const char *const *v, int *rc)
{
    sqlite3_stmt *s = stmt(be, which, rc);
    if (s == NULL)
        return NULL;
    int src = SQLITE_OK;
    for (int i = 0; i < n && src == SQLITE_OK; i++)
        src = bind_text(s, i + 1, v[i]);
    if (src != SQLITE_OK) {
        *rc = db_fail(be, src);
        stmt_done(s);
        return NULL;
    }
    return s;
}

/* Run a write bound to texts v[0..n-1] and, if num is not NULL, the integer
 * *num as ?n+1; TK_ENOENT (with `none`) if it changed no row and none is not
 * NULL. */
static int write_bound(sqlite_be_t *be, stmt_id_t which, int n, const char *const *v,
                       const int64_t *num, const char *none)
{
    int rc;
    sqlite3_stmt *s = bound(be, which, n, v, &rc);
    if (s == NULL)
        return rc;
    int src = num != NULL ? sqlite3_bind_int64(s, n + 1, *num) : SQLITE_OK;
    if (src != SQLITE_OK) {
        rc = db_fail(be, src);
        stmt_done(s);
        return rc;
    }
    int changes = 0;
    rc = run_write(be, s, &changes);
    if (rc == 0 && changes == 0 && none != NULL)
        rc = be_fail(be, TK_ENOENT, none);
    return rc;
}

/* Read every row of a bound query into a growing array of elsize-byte
 * elements filled by row(); clear() undoes a filled element. */
typedef int (*row_fn)(sqlite_be_t *be, sqlite3_stmt *s, void *el);
typedef void (*clear_fn)(void *el);

static int collect(sqlite_be_t *be, sqlite3_stmt *s, size_t elsize, row_fn row, clear_fn clear,
                   void **out, size_t *n)
{
    char *list = NULL;
    size_t count = 0, cap = 0;
    int rc = 0, src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            list = tk_realloc(list, cap * elsize);
        }
        memset(list + count * elsize, 0, elsize);
        rc = row(be, s, list + count * elsize);
        if (rc != 0)
            break;
        count++;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = db_fail(be, src);
    stmt_done(s);
    if (rc != 0) {
        for (size_t i = 0; i < count && clear != NULL; i++)
            clear(list + i * elsize);
        free(list);
        return rc;
    }
    if (count == 0) {
        free(list);
        list = NULL;
    }
    *out = list;
    *n = count;
    return 0;
}

/* Statement `which` bound to texts v[0..nv-1], every row collected. */
static int query_all(sqlite_be_t *be, stmt_id_t which, int nv, const char *const *v, size_t elsize,
                     row_fn row, clear_fn clear, void **out, size_t *n)
{
    int rc;
    sqlite3_stmt *s = bound(be, which, nv, v, &rc);
    if (s == NULL)
        return rc;
    return collect(be, s, elsize, row, clear, out, n);
}

/* Copy column i (1..max bytes) into a fixed buffer of max+1 bytes. */
static int col_id(sqlite_be_t *be, sqlite3_stmt *s, int i, char *dst, size_t max)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    int len = sqlite3_column_bytes(s, i);
    if (t == NULL || len <= 0 || (size_t)len > max)
        return be_fail(be, TK_EIO, "malformed row (id column)");
    memcpy(dst, t, (size_t)len);
    dst[len] = '\0';
    return 0;
}

static int row_to_user(sqlite_be_t *be, sqlite3_stmt *s, void *el)
{
    tk_user_t *u = el;
    int rc = col_id(be, s, 0, u->id, TK_STORE_ID_MAX);
    if (rc == 0)
        rc = col_text(s, 1, &u->email);
    if (rc == 0 && u->email == NULL)
        rc = be_fail(be, TK_EIO, "malformed users row (email)");
    u->disabled = sqlite3_column_int(s, 2) != 0;
    u->created_at = sqlite3_column_int64(s, 3);
    if (rc != 0)
        tk_user_clear(u);
    return rc;
}

static void clear_user(void *el)
{
    tk_user_clear(el);
}

static int op_org_ensure(void *arg, const char *id, const char *name, int64_t created_at)
{
    const char *v[] = {id, name};
    return write_bound(arg, S_ORG_ENSURE, 2, v, &created_at, NULL);
}

static int op_user_get(void *arg, const char *id, tk_user_t *out)
{
    sqlite_be_t *be = arg;
    tk_user_t *list = NULL;
    size_t n = 0;
    int rc = query_all(be, S_USER_GET, 1, &id, sizeof(*list), row_to_user, clear_user,
                       (void **)&list, &n);
    if (rc == 0 && n == 0)
        rc = be_fail(be, TK_ENOENT, "no such user");
    if (rc == 0)
        *out = list[0];
    free(list); /* at most one row: id is the primary key */
    return rc;
}

static int op_user_list(void *arg, tk_user_t **out, size_t *n)
{
    return query_all(arg, S_USER_LIST, 0, NULL, sizeof(**out), row_to_user, clear_user,
                     (void **)out, n);
}

static int op_user_update(void *arg, const char *id, const char *email, int disabled)
{
    const char *v[] = {id, email};
    int64_t d = disabled;
    return write_bound(arg, S_USER_UPDATE, 2, v, &d, "no such user");
}

static int op_user_delete(void *arg, const char *id)
{
    return write_bound(arg, S_USER_DELETE, 1, &id, NULL, "no such user");
}

static int row_to_member(sqlite_be_t *be, sqlite3_stmt *s, void *el)
{
    tk_member_t *m = el;
    int rc = col_id(be, s, 0, m->org_id, TK_STORE_ID_MAX);
    if (rc == 0)
        rc = col_id(be, s, 1, m->user_id, TK_STORE_ID_MAX);
    if (rc == 0)
        rc = col_id(be, s, 2, m->role, sizeof(m->role) - 1);
    return rc;
}

static int op_member_list(void *arg, const char *org_id, const char *user_id, tk_member_t **out,
                          size_t *n)
{
    const char *v[] = {org_id, user_id};
    return query_all(arg, S_MEMBER_LIST, 2, v, sizeof(**out), row_to_member, NULL, (void **)out,
                     n);
}

static int op_member_delete(void *arg, const char *org_id, const char *user_id)
{
    const char *v[] = {org_id, user_id};
    return write_bound(arg, S_MEMBER_DELETE, 2, v, NULL, "no such membership");
}

static int op_tool_filter_set(void *arg, const tk_tool_filter_t *f)
{
    const char *v[] = {f->endpoint, f->allow, f->deny};
    return write_bound(arg, S_FILTER_SET, 3, v, &f->updated_at, NULL);
}

static void clear_filter(void *el)
{
    tk_tool_filter_t *f = el;
    free(f->endpoint);
    free(f->allow);
    free(f->deny);
}

static int row_to_filter(sqlite_be_t *be, sqlite3_stmt *s, void *el)
{
    tk_tool_filter_t *f = el;
    int rc = col_text(s, 0, &f->endpoint);
    if (rc == 0)
        rc = col_text(s, 1, &f->allow);
    if (rc == 0)
        rc = col_text(s, 2, &f->deny);
    if (rc == 0 && (f->endpoint == NULL || f->allow == NULL || f->deny == NULL))
        rc = be_fail(be, TK_EIO, "malformed endpoint_tool_filters row");
    f->updated_at = sqlite3_column_int64(s, 3);
    if (rc != 0)
        clear_filter(f);
    return rc;
}

static int op_tool_filter_list(void *arg, tk_tool_filter_t **out, size_t *n)
{
    return query_all(arg, S_FILTER_LIST, 0, NULL, sizeof(**out), row_to_filter, clear_filter,
                     (void **)out, n);
}

/* ---- servers and endpoints made through the admin API ---- */

/* Run fn(be, arg) inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on failure). */
static int in_transaction(sqlite_be_t *be, int (*fn)(sqlite_be_t *be, const void *arg),
                          const void *arg)
{
    int src = sqlite3_exec(be->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return db_fail(be, src);
    int rc = fn(be, arg);
    if (rc == 0 && (src = sqlite3_exec(be->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        rc = db_fail(be, src);
    if (rc != 0)
        sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int put_secret(sqlite_be_t *be, const char *server_id, const tk_secret_row_t *sec)
{
    const char *v[] = {server_id, sec->kind, sec->name};
    int rc;
    sqlite3_stmt *s = bound(be, S_SEC_INSERT, 3, v, &rc);
    if (s == NULL)
        return rc;
    int src = sqlite3_bind_blob(s, 4, sec->ct, (int)sec->ctlen, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_bind_blob(s, 5, sec->nonce, TK_STORE_NONCE_LEN, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = bind_text(s, 6, sec->key_id);
    return run_bound(be, s, src, NULL);
}

typedef struct srv_put {
    const tk_server_row_t *row;
    int create;
} srv_put_t;

static int server_put_tx(sqlite_be_t *be, const void *arg)
{
    const srv_put_t *p = arg;
    const tk_server_row_t *r = p->row;
    int rc, changes = 0;
    if (p->create) {
        const char *v[] = {r->id, r->org, r->name, r->transport, r->spec, r->created_by};
        sqlite3_stmt *s = bound(be, S_SRV_INSERT, 6, v, &rc);
        if (s == NULL)
            return rc;
        int src = sqlite3_bind_int64(s, 7, r->created_at);
        if (src == SQLITE_OK)
            src = sqlite3_bind_int64(s, 8, r->updated_at);
        rc = run_bound(be, s, src, NULL);
    } else {
        const char *v[] = {r->id, r->name, r->transport, r->spec};
        sqlite3_stmt *s = bound(be, S_SRV_UPDATE, 4, v, &rc);
        if (s == NULL)
            return rc;
        rc = run_bound(be, s, sqlite3_bind_int64(s, 5, r->updated_at), &changes);
        if (rc == 0 && changes == 0)
            rc = be_fail(be, TK_ENOENT, "no such server");
        if (rc == 0) {
            const char *id[] = {r->id};
            rc = write_bound(be, S_SEC_CLEAR, 1, id, NULL, NULL);
        }
    }
    for (size_t i = 0; i < r->nsecrets && rc == 0; i++)
        rc = put_secret(be, r->id, &r->secrets[i]);
    return rc;
}

static int op_server_put(void *arg, const tk_server_row_t *row, int create)
{
    srv_put_t p = {row, create};
    return in_transaction(arg, server_put_tx, &p);
}

static int row_to_server(sqlite_be_t *be, sqlite3_stmt *s, void *el)
{
    tk_server_row_t *r = el;
    int rc = col_id(be, s, 0, r->id, TK_STORE_ID_MAX);
    if (rc == 0)
        rc = col_id(be, s, 1, r->org, TK_STORE_ID_MAX);
    if (rc == 0)
        rc = col_text(s, 2, &r->name);
    if (rc == 0)
        rc = col_text(s, 3, &r->transport);
    if (rc == 0)
        rc = col_text(s, 4, &r->spec);
    if (rc == 0)
        rc = col_text(s, 5, &r->created_by);
    if (rc == 0 && (r->name == NULL || r->transport == NULL || r->spec == NULL))
        rc = be_fail(be, TK_EIO, "malformed servers row");
    r->created_at = sqlite3_column_int64(s, 6);
    r->updated_at = sqlite3_column_int64(s, 7);
    if (rc != 0)
        tk_server_row_clear(r);
    return rc;
}

static void clear_server(void *el)
{
    tk_server_row_clear(el);
}

/* Append the secret in the current S_SEC_LIST row to its server in list. */
static int attach_secret(sqlite_be_t *be, sqlite3_stmt *s, tk_server_row_t *list, size_t n)
{
    const char *sid = (const char *)sqlite3_column_text(s, 0);
    const char *kind = (const char *)sqlite3_column_text(s, 1);
    const void *ct = sqlite3_column_blob(s, 3);
    int ctlen = sqlite3_column_bytes(s, 3);
    const void *nonce = sqlite3_column_blob(s, 4);
    const char *key_id = (const char *)sqlite3_column_text(s, 5);
    if (sid == NULL || kind == NULL || strlen(kind) >= 8 || ct == NULL || ctlen <= 0 ||
        nonce == NULL || sqlite3_column_bytes(s, 4) != TK_STORE_NONCE_LEN || key_id == NULL ||
        strlen(key_id) > TK_STORE_KEY_ID_MAX)
        return be_fail(be, TK_EIO, "malformed server_secrets row");
    for (size_t i = 0; i < n; i++) {
        tk_server_row_t *r = &list[i];
        if (strcmp(r->id, sid) != 0)
            continue;
        r->secrets = tk_realloc(r->secrets, (r->nsecrets + 1) * sizeof(*r->secrets));
        tk_secret_row_t *sec = &r->secrets[r->nsecrets++];
        memset(sec, 0, sizeof(*sec));
        tk_snprintf(sec->kind, sizeof(sec->kind), "%s", kind);
        tk_snprintf(sec->key_id, sizeof(sec->key_id), "%s", key_id);
        memcpy(sec->nonce, nonce, TK_STORE_NONCE_LEN);
        sec->ct = tk_malloc((size_t)ctlen);
        memcpy(sec->ct, ct, (size_t)ctlen);
        sec->ctlen = (size_t)ctlen;
        return col_text(s, 2, &sec->name);
    }
    return 0; /* a server's secrets are deleted with it; none can be orphaned */
}

static int op_server_list(void *arg, tk_server_row_t **out, size_t *n)
{
    sqlite_be_t *be = arg;
    int rc = query_all(be, S_SRV_LIST, 0, NULL, sizeof(**out), row_to_server, clear_server,
                       (void **)out, n);
    sqlite3_stmt *s = rc == 0 ? stmt(be, S_SEC_LIST, &rc) : NULL;
    if (s == NULL) {
        tk_server_row_list_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    int src;
    while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW)
        rc = attach_secret(be, s, *out, *n);
    if (rc == 0 && src != SQLITE_DONE)
        rc = db_fail(be, src);
    stmt_done(s);
    if (rc != 0) {
        tk_server_row_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static int op_server_delete(void *arg, const char *name)
{
    const char *v[] = {name};
    return write_bound(arg, S_SRV_DELETE, 1, v, NULL, "no such server");
}

static int op_endpoint_put(void *arg, const tk_endpoint_row_t *row, int create)
{
    sqlite_be_t *be = arg;
    const char *v[] = {row->slug, row->org, row->spec, row->created_by};
    int rc, changes = 0;
    sqlite3_stmt *s = bound(be, create ? S_EP_INSERT : S_EP_UPDATE, 4, v, &rc);
    if (s == NULL)
        return rc;
    int src = sqlite3_bind_int64(s, 5, row->created_at);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 6, row->updated_at);
    rc = run_bound(be, s, src, &changes);
    if (rc == 0 && changes == 0)
        rc = be_fail(be, TK_ENOENT, "no such endpoint");
    return rc;
}

static int row_to_endpoint(sqlite_be_t *be, sqlite3_stmt *s, void *el)
{
    tk_endpoint_row_t *r = el;
    int rc = col_text(s, 0, &r->slug);
    if (rc == 0)
        rc = col_id(be, s, 1, r->org, TK_STORE_ID_MAX);
    if (rc == 0)
        rc = col_text(s, 2, &r->spec);
    if (rc == 0)
        rc = col_text(s, 3, &r->created_by);
    if (rc == 0 && (r->slug == NULL || r->spec == NULL))
        rc = be_fail(be, TK_EIO, "malformed endpoints row");
    r->created_at = sqlite3_column_int64(s, 4);
    r->updated_at = sqlite3_column_int64(s, 5);
    if (rc != 0)
        tk_endpoint_row_clear(r);
    return rc;
}

static void clear_endpoint(void *el)
{
    tk_endpoint_row_clear(el);
}

static int op_endpoint_list(void *arg, tk_endpoint_row_t **out, size_t *n)
{
    return query_all(arg, S_EP_LIST, 0, NULL, sizeof(**out), row_to_endpoint, clear_endpoint,
                     (void **)out, n);
}

static int endpoint_delete_tx(sqlite_be_t *be, const void *arg)
{
    const char *v[] = {arg};
    int rc = write_bound(be, S_EP_DELETE, 1, v, NULL, "no such endpoint");
    if (rc == 0)
        rc = write_bound(be, S_FILTER_DELETE, 1, v, NULL, NULL);
    return rc;
}

static int op_endpoint_delete(void *arg, const char *slug)
{
    return in_transaction(arg, endpoint_delete_tx, slug);
}

static const char *op_last_error(void *arg)
{
    return ((sqlite_be_t *)arg)->err;
}

static void op_close(void *arg)
{
    sqlite_be_t *be = arg;
    for (size_t i = 0; i < S_COUNT; i++)
        sqlite3_finalize(be->stmt[i]);
    sqlite3_close_v2(be->db);
    free(be);
}

static int row_to_login(sqlite_be_t *be, sqlite3_stmt *s, void *el)
{
    tk_user_login_t *u = el;
    int rc = col_id(be, s, 0, u->id, TK_STORE_ID_MAX);
    if (rc == 0)
        rc = col_text(s, 1, &u->email);
    if (rc == 0)
        rc = col_text(s, 2, &u->password_hash);
    if (rc == 0 && u->email == NULL)
        rc = be_fail(be, TK_EIO, "malformed users row (email)");
    u->disabled = sqlite3_column_int(s, 3) != 0;
    u->failed_logins = sqlite3_column_int64(s, 4);
    u->locked_until = sqlite3_column_int64(s, 5);
    if (rc != 0)
        tk_user_login_clear(u);
    return rc;
}

static void clear_login(void *el)
{
    tk_user_login_clear(el);
}

static int login_row(sqlite_be_t *be, stmt_id_t which, const char *key, tk_user_login_t *out)
{
    tk_user_login_t *list = NULL;
    size_t n = 0;
    int rc = query_all(be, which, 1, &key, sizeof(*list), row_to_login, clear_login,
                       (void **)&list, &n);
    if (rc == 0 && n == 0)
        rc = be_fail(be, TK_ENOENT, "no such user");
    if (rc == 0)
        *out = list[0];
    free(list); /* at most one row (LIMIT 1, or a UNIQUE column) */
    return rc;
}

static int op_user_login_get(void *arg, const char *email, tk_user_login_t *out)
{
    return login_row(arg, S_LOGIN_GET, email, out);
}

static int op_user_oidc_get(void *arg, const char *subject, tk_user_login_t *out)
{
    return login_row(arg, S_OIDC_GET, subject, out);
}

static int op_user_oidc_link(void *arg, const char *id, const char *subject)
{
    sqlite_be_t *be = arg;
    const char *v[] = {id, subject};
    int rc = write_bound(be, S_OIDC_LINK, 2, v, NULL, NULL);
    if (rc != 0)
        return rc;
    if (sqlite3_changes(be->db) == 1)
        return 0;
    tk_user_t u;
    memset(&u, 0, sizeof(u));
    rc = op_user_get(be, id, &u);
    tk_user_clear(&u);
    return rc == TK_ENOENT ? rc : be_fail(be, TK_ESTATE, "user already linked");
}

static int op_user_login_failed(void *arg, const char *id, int64_t now_ms, int64_t threshold,
                                int64_t lock_ms, int64_t *locked_until)
{
    sqlite_be_t *be = arg;
    int rc;
    sqlite3_stmt *s = bound(be, S_LOGIN_FAILED, 1, &id, &rc);
    if (s == NULL)
        return rc;
    int src = sqlite3_bind_int64(s, 2, threshold);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 3, now_ms + lock_ms);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        *locked_until = sqlite3_column_int64(s, 0);
        src = sqlite3_step(s);
    } else if (src == SQLITE_DONE) {
        rc = be_fail(be, TK_ENOENT, "no such user");
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = db_fail(be, src);
    stmt_done(s);
    return rc;
}

static int op_user_login_reset(void *arg, const char *id)
{
    return write_bound(arg, S_LOGIN_RESET, 1, &id, NULL, "no such user");
}

static int op_user_set_password(void *arg, const char *id, const char *password_hash)
{
    const char *v[] = {id, password_hash};
    return write_bound(arg, S_SET_PASSWORD, 2, v, NULL, "no such user");
}

static const tk_store_ops_t sqlite_ops = {
    .name = "sqlite",
    .schema_version = op_schema_version,
    .org_insert = op_org_insert,
    .user_insert = op_user_insert,
    .membership_insert = op_membership_insert,
    .apikey_insert = op_apikey_insert,
    .apikey_get = op_apikey_get,
    .apikey_list = op_apikey_list,
    .apikey_revoke = op_apikey_revoke,
    .apikey_touch = op_apikey_touch,
    .apikey_revoked_since = op_apikey_revoked_since,
    .jti_revoke = op_jti_revoke,
    .jti_revoked_since = op_jti_revoked_since,
    .jti_issue = op_jti_issue,
    .jti_revoke_subject = op_jti_revoke_subject,
    .pin_observe = op_pin_observe,
    .pin_list = op_pin_list,
    .pin_approve = op_pin_approve,
    .pin_revoke = op_pin_revoke,
    .org_ensure = op_org_ensure,
    .user_get = op_user_get,
    .user_list = op_user_list,
    .user_update = op_user_update,
    .user_delete = op_user_delete,
    .user_login_get = op_user_login_get,
    .user_login_failed = op_user_login_failed,
    .user_login_reset = op_user_login_reset,
    .user_set_password = op_user_set_password,
    .user_oidc_get = op_user_oidc_get,
    .user_oidc_link = op_user_oidc_link,
    .member_list = op_member_list,
    .member_delete = op_member_delete,
    .tool_filter_set = op_tool_filter_set,
    .tool_filter_list = op_tool_filter_list,
    .server_put = op_server_put,
    .server_list = op_server_list,
    .server_delete = op_server_delete,
    .endpoint_put = op_endpoint_put,
    .endpoint_list = op_endpoint_list,
    .endpoint_delete = op_endpoint_delete,
    .last_error = op_last_error,
    .close = op_close,
};

/* ---- open: file, settings, migrations ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Create `path` with mode 0600 if it does not exist, so SQLite never creates
 * it (or its -wal/-shm siblings, which copy the file's mode) with the umask's
 * default. An existing file keeps its mode. */
static int create_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != EEXIST) {
        tk_snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return TK_EIO;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) { /* e.g. a dangling symlink SQLite would create */
        tk_snprintf(err, errlen, "cannot use %s: %s", path, strerror(errno));
        return TK_EIO;
    }
    if (!S_ISREG(sb.st_mode)) {
        tk_snprintf(err, errlen, "%s is not a regular file", path);
        return TK_EINVAL;
    }
    if ((sb.st_mode & 077) != 0)
        tk_warn("store", "database file %s is readable by group or others (mode %03o)", path,
                (unsigned)(sb.st_mode & 0777));
    return 0;
}

/* Run a statement that takes no values (settings, DDL, transactions). */
static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        tk_snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return map_rc(src);
    }
    return 0;
}

/* Run a single-row, single-column query and return its integer or text. */
static int query_one(sqlite3 *db, const char *sql, int64_t *num, char *text, size_t textlen,
                     char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src != SQLITE_ROW) {
        tk_snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        sqlite3_finalize(s);
        return map_rc(src == SQLITE_DONE ? SQLITE_ERROR : src);
    }
    if (num != NULL)
        *num = sqlite3_column_int64(s, 0);
    if (text != NULL) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        tk_snprintf(text, textlen, "%s", t != NULL ? (const char *)t : "");
    }
    sqlite3_finalize(s);
    return 0;
}

static int configure(sqlite3 *db, int in_memory, char *err, size_t errlen)
{
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /* Hardening: no schema tricks from a tampered file. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    char mode[16];
    int rc = query_one(db, "PRAGMA journal_mode = WAL", NULL, mode, sizeof(mode), err, errlen);
    if (rc != 0)
        return rc;
    if (strcasecmp(mode, in_memory ? "memory" : "wal") != 0) {
        tk_snprintf(err, errlen, "cannot enable WAL journaling (journal_mode is %s)", mode);
        return TK_EIO;
    }
    rc = exec_sql(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", err, errlen);
    if (rc != 0)
        return rc;
    int64_t fk = 0;
    rc = query_one(db, "PRAGMA foreign_keys", &fk, NULL, 0, err, errlen);
    if (rc == 0 && fk != 1) {
        tk_snprintf(err, errlen, "this SQLite does not enforce foreign keys");
        rc = TK_EIO;
    }
    return rc;
}

static int record_migration(sqlite3 *db, int64_t version, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(
        db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)", -1, &s, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 1, version);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 2, wall_ms());
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src != SQLITE_DONE)
        tk_snprintf(err, errlen, "recording migration: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : map_rc(src);
}

/* Whether migration `version` is recorded as applied. */
static int migration_done(sqlite3 *db, int64_t version, int *done, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(db, "SELECT 1 FROM schema_migrations WHERE version = ?1", -1, &s,
                                 NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(s, 1, version);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    *done = src == SQLITE_ROW;
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        tk_snprintf(err, errlen, "reading migrations: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return src == SQLITE_ROW || src == SQLITE_DONE ? 0 : map_rc(src);
}

/* Inside the open transaction: bring the schema up to date. */
static int apply_migrations(sqlite3 *db, char *err, size_t errlen)
{
    int rc = exec_sql(db,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version INTEGER NOT NULL PRIMARY KEY,"
                      " applied_at INTEGER NOT NULL)",
                      err, errlen);
    int64_t cur = 0;
    if (rc == 0)
        rc = query_one(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &cur, NULL, 0,
                       err, errlen);
    if (rc != 0)
        return rc;
    if (cur > TK_STORE_SCHEMA_VERSION) {
        tk_snprintf(err, errlen,
                    "database schema version %lld is newer than this tumiki supports (%d); "
                    "upgrade tumiki or use a matching database",
                    (long long)cur, TK_STORE_SCHEMA_VERSION);
        return TK_ESTATE;
    }
    for (size_t i = 0; i < N_MIGRATIONS && rc == 0; i++) {
        /* by recorded version, not "above the newest": migrations numbered
         * on separate branches may land in either order */
        int done = 0;
        if ((rc = migration_done(db, migrations[i].version, &done, err, errlen)) != 0 || done)
            continue;
        rc = exec_sql(db, migrations[i].sql, err, errlen);
        if (rc == 0)
            rc = record_migration(db, migrations[i].version, err, errlen);
        if (rc == 0)
            tk_info("store", "applied schema migration %lld", (long long)migrations[i].version);
    }
    return rc;
}

static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    /* IMMEDIATE: take the write lock first, so two processes opening a new
     * file at once migrate one after the other instead of failing. */
    int rc = exec_sql(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc != 0)
        return rc;
    rc = apply_migrations(db, err, errlen);
    if (rc == 0)
        rc = exec_sql(db, "COMMIT", err, errlen);
    if (rc != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int tk_store_open_sqlite(const char *path, tk_store_t **out, char *err, size_t errlen)
{
    char scratch[256];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    if (out == NULL)
        return TK_EINVAL;
    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        tk_snprintf(err, errlen, "empty database path");
        return TK_EINVAL;
    }
    int in_memory = strcmp(path, ":memory:") == 0;
    int rc = in_memory ? 0 : create_file(path, err, errlen);
    if (rc != 0)
        return rc;
    sqlite3 *db = NULL;
    int src = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        tk_snprintf(err, errlen, "cannot open %s: %s", path,
                    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(src));
        rc = map_rc(src);
        goto out;
    }
    rc = configure(db, in_memory, err, errlen);
    if (rc == 0)
        rc = migrate(db, err, errlen);
    if (rc == 0) {
        sqlite_be_t *be = tk_calloc(1, sizeof(*be));
        be->db = db;
        *out = tk_store_create(&sqlite_ops, be);
        return 0;
    }
out:
    sqlite3_close_v2(db);
    return rc;
}
