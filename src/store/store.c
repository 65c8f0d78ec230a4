/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store interface: the backend-neutral wrapper around a tk_store_ops_t. It
 * checks arguments once for every backend (non-NULL handles, id lengths,
 * field sizes, negative times) so backends only talk to their database, keeps
 * the handle's last-error text, and frees the value types the store hands
 * out. Error text written here names the operation and the rule broken, never
 * the value that broke it.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"

struct tk_store {
    const tk_store_ops_t *ops;
    void *be;
    char err[256];
};

tk_store_t *tk_store_create(const tk_store_ops_t *ops, void *be)
{
    tk_store_t *st = tk_calloc(1, sizeof(*st));
    st->ops = ops;
    st->be = be;
    return st;
}

void tk_store_close(tk_store_t *st)
{
    if (st == NULL)
        return;
    st->ops->close(st->be);
    free(st);
}

const char *tk_store_backend(const tk_store_t *st)
{
    return st != NULL ? st->ops->name : "";
}

const char *tk_store_last_error(const tk_store_t *st)
{
    return st != NULL ? st->err : "invalid store handle";
}

/* ---- value types ---- */

void tk_apikey_clear(tk_apikey_t *k)
{
    if (k == NULL)
        return;
    free(k->name);
    free(k->hash);
    free(k->endpoint);
    free(k->scopes);
    free(k->owner);
    memset(k, 0, sizeof(*k));
}

void tk_store_ids_free(char **ids, size_t n)
{
    if (ids == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

void tk_pin_clear(tk_pin_t *p)
{
    if (p == NULL)
        return;
    free(p->server);
    free(p->tool);
    free(p->approved_by);
    memset(p, 0, sizeof(*p));
}

void tk_user_clear(tk_user_t *u)
{
    if (u == NULL)
        return;
    free(u->email);
    memset(u, 0, sizeof(*u));
}

void tk_user_login_clear(tk_user_login_t *u)
{
    if (u == NULL)
        return;
    free(u->email);
    if (u->password_hash != NULL)
        OPENSSL_cleanse(u->password_hash, strlen(u->password_hash));
    free(u->password_hash);
    memset(u, 0, sizeof(*u));
}

static void tool_filter_clear(tk_tool_filter_t *f)
{
    free(f->endpoint);
    free(f->allow);
    free(f->deny);
}

/* The list frees: each element cleared, then the array. */
#define LIST_FREE(name, type, clear)                                                               \
    void name(type *list, size_t n)                                                                \
    {                                                                                              \
        if (list == NULL)                                                                          \
            return;                                                                                \
        for (size_t i = 0; i < n; i++)                                                             \
            clear(&list[i]);                                                                       \
        free(list);                                                                                \
    }

LIST_FREE(tk_apikey_list_free, tk_apikey_t, tk_apikey_clear)
LIST_FREE(tk_pin_list_free, tk_pin_t, tk_pin_clear)
LIST_FREE(tk_user_list_free, tk_user_t, tk_user_clear)
LIST_FREE(tk_tool_filter_list_free, tk_tool_filter_t, tool_filter_clear)

/* ---- argument checks ---- */

/* Record a wrapper-side failure and return rc. */
static int fail(tk_store_t *st, int rc, const char *op, const char *why)
{
    tk_snprintf(st->err, sizeof(st->err), "%s: %s", op, why);
    return rc;
}

/* Copy the backend's description of its failure, if any. */
static int backend_result(tk_store_t *st, int rc, const char *op)
{
    if (rc != 0) {
        const char *msg = st->ops->last_error(st->be);
        tk_snprintf(st->err, sizeof(st->err), "%s: %s", op,
                    msg != NULL && msg[0] != '\0' ? msg : tk_strerror(rc));
    }
    return rc;
}

/* 0 if s is a non-NULL string of 1..max bytes; TK_EINVAL if NULL or empty;
 * TK_ELIMIT if longer. */
static int check_text(const char *s, size_t max)
{
    if (s == NULL || s[0] == '\0')
        return TK_EINVAL;
    return strnlen(s, max + 1) > max ? TK_ELIMIT : 0;
}

/* The same for a field that may be NULL. */
static int check_opt_text(const char *s, size_t max)
{
    if (s == NULL)
        return 0;
    return strnlen(s, max + 1) > max ? TK_ELIMIT : 0;
}

/* A lookup id: 0 if it could name a row, TK_ENOENT if it cannot. */
static int lookup_id(const char *id, size_t max)
{
    size_t len = strnlen(id, max + 1);
    return len == 0 || len > max ? TK_ENOENT : 0;
}

/* ---- operations ---- */

int tk_store_schema_version(tk_store_t *st, int64_t *out)
{
    if (st == NULL || out == NULL)
        return TK_EINVAL;
    *out = 0;
    return backend_result(st, st->ops->schema_version(st->be, out), "schema_version");
}

int tk_store_org_insert(tk_store_t *st, const char *id, const char *name, int64_t created_at)
{
    static const char op[] = "org_insert";
    if (st == NULL)
        return TK_EINVAL;
    int rc = check_text(id, TK_STORE_ID_MAX);
    if (rc != 0)
        return fail(st, rc, op, "id must be 1..64 bytes");
    rc = check_text(name, TK_STORE_TEXT_MAX);
    if (rc != 0)
        return fail(st, rc, op, "name must be 1..4096 bytes");
    if (created_at < 0)
        return fail(st, TK_EINVAL, op, "negative time");
    return backend_result(st, st->ops->org_insert(st->be, id, name, created_at), op);
}

int tk_store_user_insert(tk_store_t *st, const char *id, const char *email,
                         const char *password_hash, int64_t created_at)
{
    static const char op[] = "user_insert";
    if (st == NULL)
        return TK_EINVAL;
    int rc = check_text(id, TK_STORE_ID_MAX);
    if (rc != 0)
        return fail(st, rc, op, "id must be 1..64 bytes");
    rc = check_text(email, TK_STORE_TEXT_MAX);
    if (rc != 0)
        return fail(st, rc, op, "email must be 1..4096 bytes");
    rc = check_opt_text(password_hash, TK_STORE_TEXT_MAX);
    if (rc != 0)
        return fail(st, rc, op, "password hash too long");
    if (created_at < 0)
        return fail(st, TK_EINVAL, op, "negative time");
    return backend_result(st, st->ops->user_insert(st->be, id, email, password_hash, created_at),
                          op);
}

int tk_store_membership_insert(tk_store_t *st, const char *org_id, const char *user_id,
                               const char *role)
{
    static const char op[] = "membership_insert";
    if (st == NULL)
        return TK_EINVAL;
    if (check_text(org_id, TK_STORE_ID_MAX) != 0 || check_text(user_id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_EINVAL, op, "ids must be 1..64 bytes");
    if (check_text(role, TK_STORE_TEXT_MAX) != 0)
        return fail(st, TK_EINVAL, op, "role missing");
    /* The role itself is checked by the schema (CHECK constraint), so every
     * backend enforces the same list. */
    return backend_result(st, st->ops->membership_insert(st->be, org_id, user_id, role), op);
}

static int check_apikey(tk_store_t *st, const tk_apikey_t *k)
{
    static const char op[] = "apikey_insert";
    int rc = check_text(k->id, TK_APIKEY_ID_MAX);
    if (rc != 0)
        return fail(st, rc, op, "id must be 1..32 bytes");
    rc = check_text(k->hash, TK_STORE_TEXT_MAX);
    if (rc != 0)
        return fail(st, rc, op, "hash must be 1..4096 bytes");
    rc = check_text(k->endpoint, TK_STORE_TEXT_MAX);
    if (rc != 0)
        return fail(st, rc, op, "endpoint must be 1..4096 bytes");
    if (check_opt_text(k->name, TK_STORE_TEXT_MAX) != 0 ||
        check_opt_text(k->scopes, TK_STORE_TEXT_MAX) != 0)
        return fail(st, TK_ELIMIT, op, "name or scopes too long");
    rc = check_opt_text(k->owner, TK_STORE_ID_MAX);
    if (rc != 0 || (k->owner != NULL && k->owner[0] == '\0'))
        return fail(st, rc != 0 ? rc : TK_EINVAL, op, "owner must be NULL or 1..64 bytes");
    if (k->created_at < 0 || k->expires_at < 0 || k->revoked_at < 0 || k->last_used_at < 0)
        return fail(st, TK_EINVAL, op, "negative time");
    return 0;
}

int tk_store_apikey_insert(tk_store_t *st, const tk_apikey_t *key)
{
    if (st == NULL || key == NULL)
        return TK_EINVAL;
    int rc = check_apikey(st, key);
    if (rc != 0)
        return rc;
    return backend_result(st, st->ops->apikey_insert(st->be, key), "apikey_insert");
}

int tk_store_apikey_get(tk_store_t *st, const char *id, tk_apikey_t *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (st == NULL || id == NULL || out == NULL)
        return TK_EINVAL;
    if (lookup_id(id, TK_APIKEY_ID_MAX) != 0)
        return fail(st, TK_ENOENT, "apikey_get", "no such key");
    int rc = backend_result(st, st->ops->apikey_get(st->be, id, out), "apikey_get");
    if (rc != 0)
        tk_apikey_clear(out);
    return rc;
}

int tk_store_apikey_list(tk_store_t *st, tk_apikey_t **out, size_t *n)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (st == NULL || out == NULL || n == NULL)
        return TK_EINVAL;
    return backend_result(st, st->ops->apikey_list(st->be, out, n), "apikey_list");
}

/* Shared checks for revoke and touch. */
static int check_id_time(tk_store_t *st, const char *op, const char *id, int64_t now_ms)
{
    if (now_ms <= 0)
        return fail(st, TK_EINVAL, op, "time must be positive");
    if (lookup_id(id, TK_APIKEY_ID_MAX) != 0)
        return fail(st, TK_ENOENT, op, "no such key");
    return 0;
}

int tk_store_apikey_revoke(tk_store_t *st, const char *id, int64_t now_ms)
{
    if (st == NULL || id == NULL)
        return TK_EINVAL;
    int rc = check_id_time(st, "apikey_revoke", id, now_ms);
    if (rc != 0)
        return rc;
    return backend_result(st, st->ops->apikey_revoke(st->be, id, now_ms), "apikey_revoke");
}

int tk_store_apikey_touch(tk_store_t *st, const char *id, int64_t now_ms)
{
    if (st == NULL || id == NULL)
        return TK_EINVAL;
    int rc = check_id_time(st, "apikey_touch", id, now_ms);
    if (rc != 0)
        return rc;
    return backend_result(st, st->ops->apikey_touch(st->be, id, now_ms), "apikey_touch");
}

int tk_store_jti_revoke(tk_store_t *st, const char *jti, int64_t expires_at, int64_t now_ms)
{
    if (st == NULL || jti == NULL || jti[0] == '\0' || strlen(jti) > TK_STORE_ID_MAX ||
        expires_at < 0 || now_ms <= 0)
        return TK_EINVAL;
    return backend_result(st, st->ops->jti_revoke(st->be, jti, expires_at, now_ms), "jti_revoke");
}

int tk_store_jti_revoked_since(tk_store_t *st, int64_t since_ms, int64_t now_ms, char ***jtis,
                               size_t *n)
{
    if (jtis != NULL)
        *jtis = NULL;
    if (n != NULL)
        *n = 0;
    if (st == NULL || jtis == NULL || n == NULL)
        return TK_EINVAL;
    return backend_result(st, st->ops->jti_revoked_since(st->be, since_ms, now_ms, jtis, n),
                          "jti_revoked_since");
}

int tk_store_jti_issue(tk_store_t *st, const char *jti, const char *sub, int64_t expires_at,
                       int64_t now_ms)
{
    if (st == NULL || jti == NULL || jti[0] == '\0' || strlen(jti) > TK_STORE_ID_MAX ||
        sub == NULL || sub[0] == '\0' || strlen(sub) > TK_STORE_TEXT_MAX)
        return st ? fail(st, TK_EINVAL, "jti_issue", "bad argument") : TK_EINVAL;
    return backend_result(st, st->ops->jti_issue(st->be, jti, sub, expires_at, now_ms),
                          "jti_issue");
}

int tk_store_jti_revoke_subject(tk_store_t *st, const char *sub, int64_t now_ms, size_t *count)
{
    if (count != NULL)
        *count = 0;
    if (st == NULL || sub == NULL || sub[0] == '\0' || count == NULL)
        return st ? fail(st, TK_EINVAL, "jti_revoke_subject", "bad argument") : TK_EINVAL;
    return backend_result(st, st->ops->jti_revoke_subject(st->be, sub, now_ms, count),
                          "jti_revoke_subject");
}

int tk_store_apikey_revoked_since(tk_store_t *st, int64_t since_ms, char ***ids, size_t *n)
{
    if (ids != NULL)
        *ids = NULL;
    if (n != NULL)
        *n = 0;
    if (st == NULL || ids == NULL || n == NULL)
        return TK_EINVAL;
    return backend_result(st, st->ops->apikey_revoked_since(st->be, since_ms, ids, n),
                          "apikey_revoked_since");
}

/* ---- tool-definition pins ---- */

static int is_pin_hash(const char *h)
{
    if (h == NULL || strnlen(h, TK_PIN_HASH_LEN + 1) != TK_PIN_HASH_LEN)
        return 0;
    return strspn(h, "0123456789abcdef") == TK_PIN_HASH_LEN;
}

/* server required; tool required unless tool_opt; time positive. */
static int check_pin_args(tk_store_t *st, const char *op, const char *server, const char *tool,
                          int tool_opt, int64_t now_ms)
{
    int rc = check_text(server, TK_STORE_ID_MAX);
    if (rc != 0)
        return fail(st, rc, op, "server must be 1..64 bytes");
    if (tool != NULL || !tool_opt) {
        rc = check_text(tool, TK_PIN_TOOL_MAX);
        if (rc != 0)
            return fail(st, rc, op, "tool must be 1..256 bytes");
    }
    if (now_ms <= 0)
        return fail(st, TK_EINVAL, op, "time must be positive");
    return 0;
}

int tk_store_pin_observe(tk_store_t *st, const char *server, const char *tool, const char *hash,
                         int64_t now_ms, int approve_new, tk_pin_t *out)
{
    static const char op[] = "pin_observe";
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (st == NULL)
        return TK_EINVAL;
    int rc = check_pin_args(st, op, server, tool, 0, now_ms);
    if (rc != 0)
        return rc;
    if (!is_pin_hash(hash))
        return fail(st, TK_EINVAL, op, "hash must be 64 lowercase hex digits");
    rc = backend_result(
        st, st->ops->pin_observe(st->be, server, tool, hash, now_ms, approve_new != 0, out), op);
    if (rc != 0 && out != NULL)
        tk_pin_clear(out);
    return rc;
}

int tk_store_pin_list(tk_store_t *st, const char *server, int64_t changed_since, tk_pin_t **out,
                      size_t *n)
{
    static const char op[] = "pin_list";
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (st == NULL || out == NULL || n == NULL)
        return TK_EINVAL;
    if (server != NULL && check_text(server, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_EINVAL, op, "server must be 1..64 bytes");
    if (changed_since < 0)
        return fail(st, TK_EINVAL, op, "negative time");
    return backend_result(st, st->ops->pin_list(st->be, server, changed_since, out, n), op);
}

int tk_store_pin_approve(tk_store_t *st, const char *server, const char *tool, const char *by,
                         const char *expect, int64_t now_ms, size_t *changed)
{
    static const char op[] = "pin_approve";
    size_t scratch = 0;
    if (st == NULL)
        return TK_EINVAL;
    int rc = check_pin_args(st, op, server, tool, 1, now_ms);
    if (rc != 0)
        return rc;
    rc = check_text(by, TK_STORE_TEXT_MAX);
    if (rc != 0)
        return fail(st, rc, op, "approver must be 1..4096 bytes");
    if (expect != NULL && (tool == NULL || strnlen(expect, TK_PIN_HASH_LEN + 1) < 8 ||
                           strnlen(expect, TK_PIN_HASH_LEN + 1) > TK_PIN_HASH_LEN ||
                           expect[strspn(expect, "0123456789abcdef")] != '\0'))
        return fail(st, TK_EINVAL, op,
                    "expected hash must be 8..64 lowercase hex digits, for one tool");
    return backend_result(st,
                          st->ops->pin_approve(st->be, server, tool, by, expect, now_ms,
                                               changed ? changed : &scratch),
                          op);
}

int tk_store_pin_revoke(tk_store_t *st, const char *server, const char *tool, int64_t now_ms,
                        size_t *changed)
{
    static const char op[] = "pin_revoke";
    size_t scratch = 0;
    if (st == NULL)
        return TK_EINVAL;
    int rc = check_pin_args(st, op, server, tool, 1, now_ms);
    if (rc != 0)
        return rc;
    return backend_result(
        st, st->ops->pin_revoke(st->be, server, tool, now_ms, changed ? changed : &scratch), op);
}

/* ---- organizations, users, memberships, tool selections ---- */

/* Reset a list call's outputs; TK_EINVAL if any handle is missing. */
static int list_reset(tk_store_t *st, void **out, size_t *n)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    return st == NULL || out == NULL || n == NULL ? TK_EINVAL : 0;
}

int tk_store_org_ensure(tk_store_t *st, const char *id, const char *name, int64_t created_at)
{
    static const char op[] = "org_ensure";
    if (st == NULL)
        return TK_EINVAL;
    if (check_text(id, TK_STORE_ID_MAX) != 0 || check_text(name, TK_STORE_TEXT_MAX) != 0 ||
        created_at < 0)
        return fail(st, TK_EINVAL, op, "id must be 1..64 bytes, name 1..4096, time >= 0");
    return backend_result(st, st->ops->org_ensure(st->be, id, name, created_at), op);
}

int tk_store_user_get(tk_store_t *st, const char *id, tk_user_t *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (st == NULL || id == NULL || out == NULL)
        return TK_EINVAL;
    if (lookup_id(id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_ENOENT, "user_get", "no such user");
    int rc = backend_result(st, st->ops->user_get(st->be, id, out), "user_get");
    if (rc != 0)
        tk_user_clear(out);
    return rc;
}

int tk_store_user_list(tk_store_t *st, tk_user_t **out, size_t *n)
{
    if (list_reset(st, (void **)out, n) != 0)
        return TK_EINVAL;
    return backend_result(st, st->ops->user_list(st->be, out, n), "user_list");
}

int tk_store_user_update(tk_store_t *st, const char *id, const char *email, int disabled)
{
    static const char op[] = "user_update";
    if (st == NULL || id == NULL)
        return TK_EINVAL;
    if (lookup_id(id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_ENOENT, op, "no such user");
    if (email != NULL) {
        int rc = check_text(email, TK_STORE_TEXT_MAX);
        if (rc != 0)
            return fail(st, rc, op, "email must be 1..4096 bytes");
    }
    return backend_result(st, st->ops->user_update(st->be, id, email, disabled < 0 ? -1 : !!disabled),
                          op);
}

int tk_store_user_delete(tk_store_t *st, const char *id)
{
    if (st == NULL || id == NULL)
        return TK_EINVAL;
    if (lookup_id(id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_ENOENT, "user_delete", "no such user");
    return backend_result(st, st->ops->user_delete(st->be, id), "user_delete");
}

int tk_store_user_login_get(tk_store_t *st, const char *email, tk_user_login_t *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (st == NULL || email == NULL || out == NULL)
        return TK_EINVAL;
    if (lookup_id(email, TK_STORE_TEXT_MAX) != 0)
        return fail(st, TK_ENOENT, "user_login_get", "no such user");
    int rc = backend_result(st, st->ops->user_login_get(st->be, email, out), "user_login_get");
    if (rc != 0)
        tk_user_login_clear(out);
    return rc;
}

int tk_store_user_login_failed(tk_store_t *st, const char *id, int64_t now_ms, int64_t threshold,
                               int64_t lock_ms, int64_t *locked_until)
{
    static const char op[] = "user_login_failed";
    if (st == NULL || id == NULL || locked_until == NULL || now_ms <= 0 || threshold < 1 ||
        lock_ms < 0)
        return TK_EINVAL;
    *locked_until = 0;
    if (lookup_id(id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_ENOENT, op, "no such user");
    return backend_result(
        st, st->ops->user_login_failed(st->be, id, now_ms, threshold, lock_ms, locked_until), op);
}

int tk_store_user_login_reset(tk_store_t *st, const char *id)
{
    if (st == NULL || id == NULL)
        return TK_EINVAL;
    if (lookup_id(id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_ENOENT, "user_login_reset", "no such user");
    return backend_result(st, st->ops->user_login_reset(st->be, id), "user_login_reset");
}

int tk_store_user_set_password(tk_store_t *st, const char *id, const char *password_hash)
{
    static const char op[] = "user_set_password";
    if (st == NULL || id == NULL)
        return TK_EINVAL;
    if (lookup_id(id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_ENOENT, op, "no such user");
    if (password_hash != NULL && check_text(password_hash, TK_STORE_TEXT_MAX) != 0)
        return fail(st, TK_EINVAL, op, "password hash must be 1..4096 bytes");
    return backend_result(st, st->ops->user_set_password(st->be, id, password_hash), op);
}

int tk_store_user_oidc_get(tk_store_t *st, const char *subject, tk_user_login_t *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (st == NULL || subject == NULL || out == NULL)
        return TK_EINVAL;
    if (lookup_id(subject, TK_STORE_TEXT_MAX) != 0)
        return fail(st, TK_ENOENT, "user_oidc_get", "no such user");
    int rc = backend_result(st, st->ops->user_oidc_get(st->be, subject, out), "user_oidc_get");
    if (rc != 0)
        tk_user_login_clear(out);
    return rc;
}

int tk_store_user_oidc_link(tk_store_t *st, const char *id, const char *subject)
{
    static const char op[] = "user_oidc_link";
    if (st == NULL || id == NULL || subject == NULL)
        return TK_EINVAL;
    if (lookup_id(id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_ENOENT, op, "no such user");
    if (check_text(subject, TK_STORE_TEXT_MAX) != 0)
        return fail(st, TK_EINVAL, op, "subject must be 1..4096 bytes");
    return backend_result(st, st->ops->user_oidc_link(st->be, id, subject), op);
}

int tk_store_member_list(tk_store_t *st, const char *org_id, const char *user_id,
                         tk_member_t **out, size_t *n)
{
    static const char op[] = "member_list";
    if (list_reset(st, (void **)out, n) != 0 || (org_id == NULL && user_id == NULL))
        return TK_EINVAL;
    if ((org_id != NULL && lookup_id(org_id, TK_STORE_ID_MAX) != 0) ||
        (user_id != NULL && lookup_id(user_id, TK_STORE_ID_MAX) != 0))
        return 0; /* cannot match anything */
    return backend_result(st, st->ops->member_list(st->be, org_id, user_id, out, n), op);
}

int tk_store_member_delete(tk_store_t *st, const char *org_id, const char *user_id)
{
    static const char op[] = "member_delete";
    if (st == NULL || org_id == NULL || user_id == NULL)
        return TK_EINVAL;
    if (lookup_id(org_id, TK_STORE_ID_MAX) != 0 || lookup_id(user_id, TK_STORE_ID_MAX) != 0)
        return fail(st, TK_ENOENT, op, "no such membership");
    return backend_result(st, st->ops->member_delete(st->be, org_id, user_id), op);
}

int tk_store_member_role(tk_store_t *st, const char *org_id, const char *user_id, char role[8])
{
    role[0] = '\0';
    tk_member_t *m = NULL;
    size_t n = 0;
    int rc = tk_store_member_list(st, org_id, user_id, &m, &n);
    if (rc != 0)
        return rc;
    if (n == 0 || org_id == NULL || user_id == NULL)
        rc = fail(st, TK_ENOENT, "member_role", "no such membership");
    else
        tk_snprintf(role, 8, "%s", m[0].role);
    free(m);
    return rc;
}

int tk_store_tool_filter_set(tk_store_t *st, const tk_tool_filter_t *f)
{
    static const char op[] = "tool_filter_set";
    if (st == NULL || f == NULL)
        return TK_EINVAL;
    int rc = check_text(f->endpoint, TK_STORE_ID_MAX);
    if (rc == 0)
        rc = check_text(f->allow, TK_STORE_TEXT_MAX);
    if (rc == 0)
        rc = check_text(f->deny, TK_STORE_TEXT_MAX);
    if (rc != 0 || f->updated_at < 0)
        return fail(st, rc != 0 ? rc : TK_EINVAL, op,
                    "endpoint must be 1..64 bytes, allow/deny 1..4096, time >= 0");
    return backend_result(st, st->ops->tool_filter_set(st->be, f), op);
}

int tk_store_tool_filter_list(tk_store_t *st, tk_tool_filter_t **out, size_t *n)
{
    if (list_reset(st, (void **)out, n) != 0)
        return TK_EINVAL;
    return backend_result(st, st->ops->tool_filter_list(st->be, out, n), "tool_filter_list");
}

/* ---- servers and endpoints made through the admin API ---- */

void tk_server_row_clear(tk_server_row_t *r)
{
    if (r == NULL)
        return;
    free(r->name);
    free(r->transport);
    free(r->spec);
    free(r->created_by);
    for (size_t i = 0; i < r->nsecrets; i++) {
        free(r->secrets[i].name);
        free(r->secrets[i].ct);
    }
    free(r->secrets);
    memset(r, 0, sizeof(*r));
}

void tk_server_row_list_free(tk_server_row_t *list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        tk_server_row_clear(&list[i]);
    free(list);
}

void tk_endpoint_row_clear(tk_endpoint_row_t *r)
{
    if (r == NULL)
        return;
    free(r->slug);
    free(r->spec);
    free(r->created_by);
    memset(r, 0, sizeof(*r));
}

void tk_endpoint_row_list_free(tk_endpoint_row_t *list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        tk_endpoint_row_clear(&list[i]);
    free(list);
}

/* The rule a row breaks, or NULL: names, spec and times (*rc: the TK_E*). */
static const char *check_row(const char *org, const char *name, const char *spec,
                             const char *created_by, int64_t created_at, int64_t updated_at,
                             int *rc)
{
    *rc = TK_EINVAL;
    if (check_text(org, TK_STORE_ID_MAX) != 0 || created_at < 0 || updated_at < 0)
        return "organization id must be 1..64 bytes and times >= 0";
    if ((*rc = check_text(name, TK_STORE_NAME_MAX)) != 0)
        return "name must be 1..64 bytes";
    if ((*rc = check_text(spec, TK_STORE_SPEC_MAX)) != 0)
        return "spec must be 1..65536 bytes";
    if ((*rc = check_opt_text(created_by, TK_STORE_TEXT_MAX)) != 0)
        return "created_by must be at most 4096 bytes";
    return NULL;
}

static const char *check_secrets(const tk_server_row_t *r, int *rc)
{
    *rc = TK_ELIMIT;
    if (r->nsecrets > TK_STORE_SECRETS_MAX)
        return "too many secrets";
    for (size_t i = 0; i < r->nsecrets; i++) {
        const tk_secret_row_t *s = &r->secrets[i];
        *rc = TK_EINVAL;
        if (strcmp(s->kind, "env") != 0 && strcmp(s->kind, "header") != 0)
            return "secret kind must be env or header";
        if ((*rc = check_text(s->name, TK_STORE_TEXT_MAX)) != 0)
            return "secret name must be 1..4096 bytes";
        *rc = s->ct == NULL || s->ctlen == 0 ? TK_EINVAL : TK_ELIMIT;
        if (s->ct == NULL || s->ctlen == 0 || s->ctlen > TK_STORE_SEALED_MAX)
            return "sealed value must be 1..65552 bytes";
        if ((*rc = check_text(s->key_id, TK_STORE_KEY_ID_MAX)) != 0)
            return "key id must be 1..32 bytes";
    }
    return NULL;
}

int tk_store_server_put(tk_store_t *st, const tk_server_row_t *row, int create)
{
    static const char op[] = "server_put";
    int rc;
    if (st == NULL || row == NULL)
        return TK_EINVAL;
    const char *why = check_row(row->org, row->name, row->spec, row->created_by, row->created_at,
                                row->updated_at, &rc);
    if (why == NULL && check_text(row->id, TK_STORE_ID_MAX) != 0)
        why = "id must be 1..64 bytes";
    if (why == NULL && check_text(row->transport, 8) != 0)
        why = "transport must be 1..8 bytes";
    if (why == NULL)
        why = check_secrets(row, &rc);
    if (why != NULL)
        return fail(st, rc, op, why);
    return backend_result(st, st->ops->server_put(st->be, row, create != 0), op);
}

int tk_store_server_list(tk_store_t *st, tk_server_row_t **out, size_t *n)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (st == NULL || out == NULL || n == NULL)
        return TK_EINVAL;
    return backend_result(st, st->ops->server_list(st->be, out, n), "server_list");
}

int tk_store_server_get(tk_store_t *st, const char *name, tk_server_row_t *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (name == NULL || out == NULL)
        return TK_EINVAL;
    tk_server_row_t *all;
    size_t n;
    int rc = tk_store_server_list(st, &all, &n);
    if (rc != TK_OK)
        return rc;
    rc = fail(st, TK_ENOENT, "server_get", "no such server");
    for (size_t i = 0; i < n && rc != TK_OK; i++) {
        if (strcmp(all[i].name, name) == 0) {
            *out = all[i];
            memset(&all[i], 0, sizeof(all[i]));
            rc = TK_OK;
        }
    }
    tk_server_row_list_free(all, n);
    return rc;
}

int tk_store_server_delete(tk_store_t *st, const char *name)
{
    if (st == NULL || name == NULL)
        return TK_EINVAL;
    if (lookup_id(name, TK_STORE_NAME_MAX) != 0)
        return fail(st, TK_ENOENT, "server_delete", "no such server");
    return backend_result(st, st->ops->server_delete(st->be, name), "server_delete");
}

int tk_store_endpoint_put(tk_store_t *st, const tk_endpoint_row_t *row, int create)
{
    static const char op[] = "endpoint_put";
    int rc;
    if (st == NULL || row == NULL)
        return TK_EINVAL;
    const char *why = check_row(row->org, row->slug, row->spec, row->created_by, row->created_at,
                                row->updated_at, &rc);
    if (why != NULL)
        return fail(st, rc, op, why);
    return backend_result(st, st->ops->endpoint_put(st->be, row, create != 0), op);
}

int tk_store_endpoint_list(tk_store_t *st, tk_endpoint_row_t **out, size_t *n)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (st == NULL || out == NULL || n == NULL)
        return TK_EINVAL;
    return backend_result(st, st->ops->endpoint_list(st->be, out, n), "endpoint_list");
}

int tk_store_endpoint_get(tk_store_t *st, const char *slug, tk_endpoint_row_t *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (slug == NULL || out == NULL)
        return TK_EINVAL;
    tk_endpoint_row_t *all;
    size_t n;
    int rc = tk_store_endpoint_list(st, &all, &n);
    if (rc != TK_OK)
        return rc;
    rc = fail(st, TK_ENOENT, "endpoint_get", "no such endpoint");
    for (size_t i = 0; i < n && rc != TK_OK; i++) {
        if (strcmp(all[i].slug, slug) == 0) {
            *out = all[i];
            memset(&all[i], 0, sizeof(all[i]));
            rc = TK_OK;
        }
    }
    tk_endpoint_row_list_free(all, n);
    return rc;
}

int tk_store_endpoint_delete(tk_store_t *st, const char *slug)
{
    if (st == NULL || slug == NULL)
        return TK_EINVAL;
    if (lookup_id(slug, TK_STORE_NAME_MAX) != 0)
        return fail(st, TK_ENOENT, "endpoint_delete", "no such endpoint");
    return backend_result(st, st->ops->endpoint_delete(st->be, slug), "endpoint_delete");
}
