/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store: the durable database behind Tumiki (organizations, users,
 * memberships, API keys, revoked token ids, tool-definition pins, per-endpoint
 * tool selections, upstream servers and endpoints made through the admin
 * API with their sealed secrets), reached through one
 * backend-neutral handle. A backend is a table of function pointers
 * (tk_store_ops_t) wrapped by tk_store_create(); SQLite is the default today
 * (tk_store_open_sqlite), PostgreSQL can be added beside it. The schema is
 * versioned: each backend applies its numbered migrations at open inside one
 * transaction and refuses a database written by a newer binary. Timestamps
 * are integer unix milliseconds everywhere; in structs 0 means "none" (never
 * expires, not revoked, never used) and is stored as NULL.
 *
 * Errors: functions return 0 or a negative TK_E*: TK_EINVAL for a bad
 * argument or a violated constraint (duplicate id, missing foreign key,
 * unknown role), TK_ENOENT for a missing row, TK_ELIMIT for an over-long
 * field, TK_EBUSY when the database stayed locked past the busy timeout,
 * TK_ESTATE for a schema newer than this binary, TK_EIO for anything else the
 * database reports. tk_store_last_error() then says what went wrong in words
 * fit for a log: it names the operation and the database's complaint, never a
 * bound value (no hashes, no ids, no names).
 *
 * Threads: a tk_store_t is used by one thread at a time (its cached
 * statements and error text are not locked). A worker thread opens its own
 * handle on the same file: SQLite in WAL mode lets readers run beside one
 * writer, and a 5 s busy timeout absorbs write contention between handles and
 * processes.
 *
 * Ownership: inputs are read during the call only. Outputs (tk_apikey_t
 * strings, lists, id arrays) are heap copies owned by the caller and freed
 * with the matching _clear or _free function.
 */
#ifndef TK_STORE_H
#define TK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define TK_STORE_SCHEMA_VERSION 7 /* the newest schema this binary knows */
#define TK_APIKEY_ID_MAX 32       /* longest API key public id, NUL excluded */
#define TK_STORE_ID_MAX 64        /* longest user / organization id */
#define TK_STORE_TEXT_MAX 4096    /* longest other text field, in bytes */
#define TK_PIN_HASH_LEN 64        /* a pinned definition hash: SHA-256 in lowercase hex */
#define TK_PIN_TOOL_MAX 256       /* longest pinnable tool name, in bytes */
#define TK_STORE_SPEC_MAX 65536   /* longest server / endpoint spec (JSON text), bytes */
#define TK_STORE_NAME_MAX 64      /* longest server name or endpoint slug, bytes */
#define TK_STORE_SECRETS_MAX 128  /* sealed secrets of one server */
#define TK_STORE_SEALED_MAX 65552 /* longest ciphertext (value + tag), bytes */
#define TK_STORE_NONCE_LEN 12     /* nonce of a sealed secret */
#define TK_STORE_KEY_ID_MAX 32    /* longest key id of a sealed secret */

/* One API key row. `id` is the public id (the part of the presented key
 * before the secret); `hash` the bcrypt hash of the whole key; `endpoint` an
 * endpoint slug or "*"; `scopes` space separated. name, scopes and owner may
 * be NULL; owner is a user id, NULL for keys made by the CLI. */
typedef struct tk_apikey {
    char id[TK_APIKEY_ID_MAX + 1];
    char *name;
    char *hash;
    char *endpoint;
    char *scopes;
    char *owner;
    int64_t created_at;
    int64_t expires_at;   /* 0 = never */
    int64_t revoked_at;   /* 0 = not revoked */
    int64_t last_used_at; /* 0 = never used */
} tk_apikey_t;

/* Free the strings of *k and zero it (safe on a zeroed struct or NULL). */
void tk_apikey_clear(tk_apikey_t *k);
/* Clear and free an array from tk_store_apikey_list (NULL is fine). */
void tk_apikey_list_free(tk_apikey_t *list, size_t n);
/* Free an id array from tk_store_apikey_revoked_since (NULL is fine). */
void tk_store_ids_free(char **ids, size_t n);

/* One user row. email is never NULL in a row read back. */
typedef struct tk_user {
    char id[TK_STORE_ID_MAX + 1];
    char *email;
    int disabled; /* 1: may not authenticate to the admin API */
    int64_t created_at;
} tk_user_t;

/* One membership: user_id has role (owner, admin, member, viewer) in org_id. */
typedef struct tk_member {
    char org_id[TK_STORE_ID_MAX + 1];
    char user_id[TK_STORE_ID_MAX + 1];
    char role[8];
} tk_member_t;

/* A stored tool selection for an endpoint: allow and deny are JSON arrays of
 * glob patterns, as text (the store does not parse them). */
typedef struct tk_tool_filter {
    char *endpoint;
    char *allow;
    char *deny;
    int64_t updated_at;
} tk_tool_filter_t;

/* What a dashboard login needs about a user (looked up by e-mail). */
typedef struct tk_user_login {
    char id[TK_STORE_ID_MAX + 1];
    char *email;
    char *password_hash;   /* NULL: no local password (OIDC-only user) */
    int disabled;
    int64_t failed_logins; /* consecutive failures since the last success or lock */
    int64_t locked_until;  /* ms since the epoch; 0 = never locked */
} tk_user_login_t;

void tk_user_clear(tk_user_t *u);
void tk_user_login_clear(tk_user_login_t *u);
void tk_user_list_free(tk_user_t *list, size_t n);
void tk_tool_filter_list_free(tk_tool_filter_t *list, size_t n);

/* One tool-definition pin: what server `server` last listed as tool `tool`
 * (seen_hash) and the definition an administrator approved (approved_hash,
 * "" if none: never approved, or revoked). changed_at is the last time the
 * approval changed, for pollers. approved_by is NULL when not approved. */
typedef struct tk_pin {
    char *server;
    char *tool;
    char approved_hash[TK_PIN_HASH_LEN + 1];
    char seen_hash[TK_PIN_HASH_LEN + 1];
    char *approved_by;
    int64_t approved_at; /* 0 = not approved */
    int64_t first_seen;
    int64_t last_seen;
    int64_t changed_at;
} tk_pin_t;

/* Free the strings of *p and zero it (safe on a zeroed struct or NULL). */
void tk_pin_clear(tk_pin_t *p);
/* Clear and free an array of pins (NULL is fine). */
void tk_pin_list_free(tk_pin_t *list, size_t n);

/* One sealed secret of a server (an env or header value): the vault's
 * ciphertext (tag appended), nonce and key id; the store never sees the
 * value. kind is "env" or "header"; name the variable or header name. */
typedef struct tk_secret_row {
    char kind[8];
    char *name;
    unsigned char *ct;
    size_t ctlen;
    unsigned char nonce[TK_STORE_NONCE_LEN];
    char key_id[TK_STORE_KEY_ID_MAX + 1];
} tk_secret_row_t;

/* An upstream server made through the admin API. spec is its settings as a
 * JSON object text (the config file's server object without the secret
 * values: command, args, cwd, url, timeouts ...); transport "stdio", "http"
 * or "sse". created_by is a user id or "bootstrap"/"cli" (may be NULL). */
typedef struct tk_server_row {
    char id[TK_STORE_ID_MAX + 1];
    char org[TK_STORE_ID_MAX + 1];
    char *name;
    char *transport;
    char *spec;
    char *created_by;
    int64_t created_at;
    int64_t updated_at;
    tk_secret_row_t *secrets;
    size_t nsecrets;
} tk_server_row_t;

/* An endpoint made through the admin API: spec is its settings as a JSON
 * object text (servers, tools, namespace, rate_limit). */
typedef struct tk_endpoint_row {
    char org[TK_STORE_ID_MAX + 1];
    char *slug;
    char *spec;
    char *created_by;
    int64_t created_at;
    int64_t updated_at;
} tk_endpoint_row_t;

void tk_server_row_clear(tk_server_row_t *r);
void tk_server_row_list_free(tk_server_row_t *list, size_t n);
void tk_endpoint_row_clear(tk_endpoint_row_t *r);
void tk_endpoint_row_list_free(tk_endpoint_row_t *list, size_t n);

typedef struct tk_store tk_store_t;

/* Backend interface, for backend implementations. `be` is the state given to
 * tk_store_create(). Arguments arrive already checked by the wrapper (non-NULL
 * handles, ids within bounds, times not negative). Each operation returns 0
 * or a TK_E* as documented for its public counterpart and, on failure, leaves
 * a value-free description for last_error. close frees `be`. */
typedef struct tk_store_ops {
    const char *name;
    int (*schema_version)(void *be, int64_t *out);
    int (*org_insert)(void *be, const char *id, const char *name, int64_t created_at);
    int (*user_insert)(void *be, const char *id, const char *email, const char *password_hash,
                       int64_t created_at);
    int (*membership_insert)(void *be, const char *org_id, const char *user_id, const char *role);
    int (*org_ensure)(void *be, const char *id, const char *name, int64_t created_at);
    int (*user_get)(void *be, const char *id, tk_user_t *out);
    int (*user_list)(void *be, tk_user_t **out, size_t *n);
    int (*user_update)(void *be, const char *id, const char *email, int disabled);
    int (*user_delete)(void *be, const char *id);
    int (*user_login_get)(void *be, const char *email, tk_user_login_t *out);
    int (*user_login_failed)(void *be, const char *id, int64_t now_ms, int64_t threshold,
                             int64_t lock_ms, int64_t *locked_until);
    int (*user_login_reset)(void *be, const char *id);
    int (*user_set_password)(void *be, const char *id, const char *password_hash);
    int (*user_oidc_get)(void *be, const char *subject, tk_user_login_t *out);
    int (*user_oidc_link)(void *be, const char *id, const char *subject);
    int (*member_list)(void *be, const char *org_id, const char *user_id, tk_member_t **out,
                       size_t *n);
    int (*member_delete)(void *be, const char *org_id, const char *user_id);
    int (*tool_filter_set)(void *be, const tk_tool_filter_t *f);
    int (*tool_filter_list)(void *be, tk_tool_filter_t **out, size_t *n);
    int (*apikey_insert)(void *be, const tk_apikey_t *key);
    int (*apikey_get)(void *be, const char *id, tk_apikey_t *out);
    int (*apikey_list)(void *be, tk_apikey_t **out, size_t *n);
    int (*apikey_revoke)(void *be, const char *id, int64_t now_ms);
    int (*apikey_touch)(void *be, const char *id, int64_t now_ms);
    int (*apikey_revoked_since)(void *be, int64_t since_ms, char ***ids, size_t *n);
    int (*jti_revoke)(void *be, const char *jti, int64_t expires_at, int64_t now_ms);
    int (*jti_revoked_since)(void *be, int64_t since_ms, int64_t now_ms, char ***jtis, size_t *n);
    int (*jti_issue)(void *be, const char *jti, const char *sub, int64_t expires_at, int64_t now_ms);
    int (*jti_revoke_subject)(void *be, const char *sub, int64_t now_ms, size_t *count);
    int (*pin_observe)(void *be, const char *server, const char *tool, const char *hash,
                       int64_t now_ms, int approve_new, tk_pin_t *out);
    int (*pin_list)(void *be, const char *server, int64_t changed_since, tk_pin_t **out, size_t *n);
    int (*pin_approve)(void *be, const char *server, const char *tool, const char *by,
                       const char *expect, int64_t now_ms, size_t *changed);
    int (*pin_revoke)(void *be, const char *server, const char *tool, int64_t now_ms,
                      size_t *changed);
    int (*server_put)(void *be, const tk_server_row_t *row, int create);
    int (*server_list)(void *be, tk_server_row_t **out, size_t *n);
    int (*server_delete)(void *be, const char *name);
    int (*endpoint_put)(void *be, const tk_endpoint_row_t *row, int create);
    int (*endpoint_list)(void *be, tk_endpoint_row_t **out, size_t *n);
    int (*endpoint_delete)(void *be, const char *slug);
    const char *(*last_error)(void *be);
    void (*close)(void *be);
} tk_store_ops_t;

/* Wrap a backend; the store owns `be` and passes it to ops->close on
 * tk_store_close(). Never returns NULL. */
tk_store_t *tk_store_create(const tk_store_ops_t *ops, void *be);

/* Open (creating if needed) the SQLite database at `path`, a filesystem path
 * (":memory:" gives a private in-memory database for experiments). A new file
 * is created with mode 0600 before SQLite opens it; an existing file keeps
 * its mode (a warning is logged if group or others may read it). Sets WAL
 * journaling, foreign keys on, a 5000 ms busy timeout and synchronous=NORMAL,
 * then applies pending migrations in one transaction. On failure returns a
 * TK_E* (TK_ESTATE for a database from a newer binary), sets *out to NULL and
 * writes a one-line reason into err (may be NULL). */
int tk_store_open_sqlite(const char *path, tk_store_t **out, char *err, size_t errlen) TK_WUR;

/* Close the handle and free everything it holds (NULL is fine). */
void tk_store_close(tk_store_t *st);

/* The backend's name ("sqlite"). */
const char *tk_store_backend(const tk_store_t *st);

/* The last failure on this handle, in words safe to log ("" if none yet). */
const char *tk_store_last_error(const tk_store_t *st);

/* The schema version recorded in the database. */
int tk_store_schema_version(tk_store_t *st, int64_t *out) TK_WUR;

/* Organizations, users, memberships: minimal inserts (the dashboard will add
 * more). ids 1..TK_STORE_ID_MAX bytes; role is one of owner, admin, member,
 * viewer. TK_EINVAL for a duplicate id or e-mail, a missing organization or
 * user, or an unknown role; nothing is written then. password_hash may be
 * NULL (OIDC-only users). */
int tk_store_org_insert(tk_store_t *st, const char *id, const char *name,
                        int64_t created_at) TK_WUR;
int tk_store_user_insert(tk_store_t *st, const char *id, const char *email,
                         const char *password_hash, int64_t created_at) TK_WUR;
int tk_store_membership_insert(tk_store_t *st, const char *org_id, const char *user_id,
                               const char *role) TK_WUR;

/* Create organization id unless it exists (then nothing changes). */
int tk_store_org_ensure(tk_store_t *st, const char *id, const char *name,
                        int64_t created_at) TK_WUR;

/* Users. get: TK_ENOENT if there is no such user; *out zeroed on failure
 * (clear it with tk_user_clear). list: every user ordered by created_at then
 * id; free with tk_user_list_free. update: email NULL keeps the e-mail,
 * disabled < 0 keeps the status; TK_EINVAL for an e-mail another user has.
 * delete: also removes the user's memberships and API keys (cascade). */
int tk_store_user_get(tk_store_t *st, const char *id, tk_user_t *out) TK_WUR;
int tk_store_user_list(tk_store_t *st, tk_user_t **out, size_t *n) TK_WUR;
int tk_store_user_update(tk_store_t *st, const char *id, const char *email, int disabled) TK_WUR;
int tk_store_user_delete(tk_store_t *st, const char *id) TK_WUR;

/* Dashboard login state. login_get: the user whose e-mail equals email
 * (ASCII case-insensitively) into *out (clear with tk_user_login_clear);
 * TK_ENOENT if none. login_failed: count one failed login; when the count
 * reaches threshold the account is locked until now_ms + lock_ms and the
 * count starts again from 0; *locked_until receives the lock time (0 when
 * none was ever set). login_reset: a successful login or an administrator's
 * unlock: no failures, no lock. set_password: replace the bcrypt hash (NULL
 * removes the local password). TK_ENOENT for an unknown user id. */
int tk_store_user_login_get(tk_store_t *st, const char *email, tk_user_login_t *out) TK_WUR;
int tk_store_user_login_failed(tk_store_t *st, const char *id, int64_t now_ms, int64_t threshold,
                               int64_t lock_ms, int64_t *locked_until) TK_WUR;
int tk_store_user_login_reset(tk_store_t *st, const char *id) TK_WUR;
int tk_store_user_set_password(tk_store_t *st, const char *id, const char *password_hash) TK_WUR;

/* OpenID Connect: oidc_get finds the user linked to subject (the issuer's
 * "sub"; one issuer per gateway) into *out, TK_ENOENT if none. oidc_link
 * links user id to subject if it has no subject yet: TK_ESTATE if it has
 * one, TK_EINVAL if another user has this subject, TK_ENOENT for an unknown
 * id. */
int tk_store_user_oidc_get(tk_store_t *st, const char *subject, tk_user_login_t *out) TK_WUR;
int tk_store_user_oidc_link(tk_store_t *st, const char *id, const char *subject) TK_WUR;

/* Memberships matching org_id and/or user_id (NULL matches any; at least one
 * must be given), ordered by org then user. *out is NULL when *n is 0 (free
 * it with free()). delete: TK_ENOENT if there is no such membership. */
int tk_store_member_list(tk_store_t *st, const char *org_id, const char *user_id,
                         tk_member_t **out, size_t *n) TK_WUR;
int tk_store_member_delete(tk_store_t *st, const char *org_id, const char *user_id) TK_WUR;
/* The role of user_id in org_id into role (8 bytes); TK_ENOENT if none. */
int tk_store_member_role(tk_store_t *st, const char *org_id, const char *user_id,
                         char role[8]) TK_WUR;

/* Tool selections: set replaces the endpoint's row (endpoint is a slug,
 * allow and deny JSON array text, each at most TK_STORE_TEXT_MAX bytes);
 * list returns every row ordered by endpoint (free with
 * tk_tool_filter_list_free). */
int tk_store_tool_filter_set(tk_store_t *st, const tk_tool_filter_t *f) TK_WUR;
int tk_store_tool_filter_list(tk_store_t *st, tk_tool_filter_t **out, size_t *n) TK_WUR;

/* Insert a key. id must be 1..TK_APIKEY_ID_MAX bytes, hash and endpoint
 * non-empty, every time >= 0, text fields at most TK_STORE_TEXT_MAX bytes
 * (TK_ELIMIT otherwise). TK_EINVAL for a duplicate id or an owner that is not
 * a user; nothing is written then. */
int tk_store_apikey_insert(tk_store_t *st, const tk_apikey_t *key) TK_WUR;

/* Fetch key `id` into *out (overwritten, not freed first: clear it before
 * reuse). TK_ENOENT if there is no such key (including an id too long to
 * exist); *out is zeroed on any failure. */
int tk_store_apikey_get(tk_store_t *st, const char *id, tk_apikey_t *out) TK_WUR;

/* Every key, ordered by created_at then id. *out is NULL when *n is 0; free
 * with tk_apikey_list_free(*out, *n). */
int tk_store_apikey_list(tk_store_t *st, tk_apikey_t **out, size_t *n) TK_WUR;

/* Mark key `id` revoked at now_ms (> 0). Idempotent: a key already revoked
 * keeps its first revocation time and the call returns 0. TK_ENOENT if
 * there is no such key. */
int tk_store_apikey_revoke(tk_store_t *st, const char *id, int64_t now_ms) TK_WUR;

/* Record a use of key `id` at now_ms (> 0); last_used_at never moves back.
 * TK_ENOENT if there is no such key. */
int tk_store_apikey_touch(tk_store_t *st, const char *id, int64_t now_ms) TK_WUR;

/* Ids of keys revoked at or after since_ms, oldest revocation first, for
 * dropping them from an in-memory cache. Revocation times come from the
 * revoking process's clock, so a poller should ask from a little before its
 * previous poll (an overlap of a few seconds) to tolerate clock skew between
 * hosts; repeats are harmless. *ids is NULL when *n is 0; free with
 * tk_store_ids_free(*ids, *n). */
int tk_store_apikey_revoked_since(tk_store_t *st, int64_t since_ms, char ***ids, size_t *n) TK_WUR;

/* JWT revocation list: jti revoked at now_ms, kept until the token's own
 * expiry (expires_at, ms). Revoking twice keeps the first time. */
int tk_store_jti_revoke(tk_store_t *st, const char *jti, int64_t expires_at, int64_t now_ms) TK_WUR;
/* jtis revoked at or after since_ms whose tokens have not expired by now_ms
 * (free with tk_store_ids_free). */
int tk_store_jti_revoked_since(tk_store_t *st, int64_t since_ms, int64_t now_ms, char ***jtis,
                               size_t *n) TK_WUR;
/* A JWT this gateway issued (its id, subject and expiry in ms; never the
 * token), so that tk_store_jti_revoke_subject can revoke it later. */
int tk_store_jti_issue(tk_store_t *st, const char *jti, const char *sub, int64_t expires_at,
                       int64_t now_ms) TK_WUR;
/* Revoke every unexpired issued JWT of sub (a user disabled or deleted);
 * *count receives how many were newly revoked. */
int tk_store_jti_revoke_subject(tk_store_t *st, const char *sub, int64_t now_ms,
                                size_t *count) TK_WUR;

/* Tool-definition pins. server is a configured server name (1..64 bytes),
 * tool an upstream tool name (1..TK_PIN_TOOL_MAX bytes), hash 64 lowercase
 * hex digits; times > 0.
 *
 * pin_observe records that `server` listed `tool` with definition `hash` at
 * now_ms: a new row is created (approved as seen, by "trust-on-first-use",
 * when approve_new is set; else pending), an existing one gets seen_hash and
 * last_seen updated and keeps its approval. *out (may be NULL) receives the
 * row as it now is; clear it with tk_pin_clear. */
int tk_store_pin_observe(tk_store_t *st, const char *server, const char *tool, const char *hash,
                         int64_t now_ms, int approve_new, tk_pin_t *out) TK_WUR;

/* Pins of `server` (NULL: every server) whose approval changed at or after
 * changed_since (0: all), ordered by server then tool. *out is NULL when *n
 * is 0; free with tk_pin_list_free. */
int tk_store_pin_list(tk_store_t *st, const char *server, int64_t changed_since, tk_pin_t **out,
                      size_t *n) TK_WUR;

/* Approve the definition last seen of `tool` (NULL: every tool of `server`
 * not approved as it is now) by `by` (1..TK_STORE_TEXT_MAX bytes, e.g. "cli"
 * or a user id) at now_ms. With `expect` (a prefix of 8..64 lowercase hex
 * digits of the hash the approver reviewed; needs a tool), the row is
 * approved only if its seen_hash still starts with it, else TK_ESTATE and
 * nothing changes: a definition that changed after it was reviewed is never
 * approved by mistake. *changed (may be NULL) counts the rows whose approval
 * changed; approving a tool already approved as seen changes none and
 * returns 0. TK_ENOENT if `tool` was never seen on `server` (or, with tool
 * NULL, if no tool of `server` was). */
int tk_store_pin_approve(tk_store_t *st, const char *server, const char *tool, const char *by,
                         const char *expect, int64_t now_ms, size_t *changed) TK_WUR;

/* Withdraw the approval of `tool` (NULL: every tool of `server`): it is
 * pending again until approved. Same counting and TK_ENOENT as approve. */
int tk_store_pin_revoke(tk_store_t *st, const char *server, const char *tool, int64_t now_ms,
                        size_t *changed) TK_WUR;

/* Servers made through the admin API. put with create inserts row (id,
 * org, name, transport, spec, created_* set by the caller) and its secrets;
 * TK_EINVAL if the id or name exists. put without create replaces the
 * transport, spec, updated_at and every secret of the server with row's id
 * and name; TK_ENOENT if there is none. Each put is one transaction. list:
 * every server with its secrets, ordered by name (free with
 * tk_server_row_list_free). get: the server called name, TK_ENOENT if none
 * (clear with tk_server_row_clear). delete: the server and its secrets;
 * TK_ENOENT if none. Names 1..TK_STORE_NAME_MAX bytes, spec at most
 * TK_STORE_SPEC_MAX, at most TK_STORE_SECRETS_MAX secrets of at most
 * TK_STORE_SEALED_MAX bytes (TK_ELIMIT otherwise). */
int tk_store_server_put(tk_store_t *st, const tk_server_row_t *row, int create) TK_WUR;
int tk_store_server_list(tk_store_t *st, tk_server_row_t **out, size_t *n) TK_WUR;
int tk_store_server_get(tk_store_t *st, const char *name, tk_server_row_t *out) TK_WUR;
int tk_store_server_delete(tk_store_t *st, const char *name) TK_WUR;

/* Endpoints made through the admin API, as servers (keyed by slug). delete
 * also drops the endpoint's stored tool selection. */
int tk_store_endpoint_put(tk_store_t *st, const tk_endpoint_row_t *row, int create) TK_WUR;
int tk_store_endpoint_list(tk_store_t *st, tk_endpoint_row_t **out, size_t *n) TK_WUR;
int tk_store_endpoint_get(tk_store_t *st, const char *slug, tk_endpoint_row_t *out) TK_WUR;
int tk_store_endpoint_delete(tk_store_t *st, const char *slug) TK_WUR;

#endif
