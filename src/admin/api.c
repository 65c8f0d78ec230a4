/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admin REST API: routing and body checks on the core loop, then one job per
 * request on the store worker (caller resolution, role check, store work,
 * reply built there), then the reply and any live effect (a tool selection
 * applied to the gateway, keys dropped from every key cache) back on the
 * core loop. Requests arrive as tk_hreq_t, so the HTTP loop that owns the
 * connection may run on another thread (server.threads > 1).
 */
#include "admin/api.h"
#include "admin/api_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "admin/rbac.h"
#include "audit/audit.h"
#include "auth/apikey.h"
#include "core/map.h"
#include "mcp/jsonrpc.h"
#include "store/store.h"
#include "store/worker.h"

#define MOD "admin"
#define NAME_MAX_LEN 200
#define EMAIL_MAX_LEN 254
#define PATTERN_MAX_LEN 128
#define PATTERNS_MAX 64

/* Methods each route answers, as an evhttp_cmd_type mask, and its Allow. */
static const struct {
    const char *name;
    int methods;
    const char *allow;
} routes[R_COUNT] = {
    [R_ME] = {"me", EVHTTP_REQ_GET, "GET"},
    [R_USERS] = {"users", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "GET, POST"},
    [R_USER] = {"user", EVHTTP_REQ_GET | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE,
                "GET, PATCH, DELETE"},
    [R_MEMBERS] = {"members", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "GET, POST"},
    [R_MEMBER] = {"member", EVHTTP_REQ_DELETE, "DELETE"},
    [R_KEYS] = {"keys", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "GET, POST"},
    [R_KEY] = {"key", EVHTTP_REQ_DELETE, "DELETE"},
    [R_ENDPOINTS] = {"endpoints", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "GET, POST"},
    [R_ENDPOINT] = {"endpoint", EVHTTP_REQ_GET | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE,
                    "GET, PATCH, DELETE"},
    [R_ENDPOINT_TOOLS] = {"endpoint-tools", EVHTTP_REQ_PUT, "PUT"},
    [R_SERVERS] = {"servers", EVHTTP_REQ_GET | EVHTTP_REQ_POST, "GET, POST"},
    [R_SERVER] = {"server", EVHTTP_REQ_GET | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE,
                  "GET, PATCH, DELETE"},
};

/* ---- replies ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* body (stolen) as JSON text with a final newline; NULL (and *len 0) for none. */
static char *json_text(json_t *body, size_t *len)
{
    *len = 0;
    if (body == NULL)
        return NULL;
    char *s = tk_json_dump(body, len);
    json_decref(body);
    char *out = tk_malloc(*len + 1);
    memcpy(out, s, *len);
    out[(*len)++] = '\n';
    free(s);
    return out;
}

static void send_json(struct evhttp_request *req, int status, json_t *body /* stolen */)
{
    struct evbuffer *buf = evbuffer_new();
    size_t len;
    char *text = json_text(body, &len);
    evbuffer_add(buf, text != NULL ? text : "", len);
    free(text);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Type");
    if (status != 204)
        evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_send_reply(req, status, reason(status), buf);
    evbuffer_free(buf);
}

/* The same through a request handle; ends it. */
static void hreq_json(tk_hreq_t *r, int status, json_t *body /* stolen */)
{
    size_t len;
    char *text = json_text(body, &len);
    tk_hreq_reply(r, status, reason(status), status != 204 ? "application/json" : NULL, text, len);
    free(text);
}

static void hreq_error(tk_hreq_t *r, int status, const char *code, const char *message);

static json_t *error_body(const char *code, const char *message)
{
    return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

void tk_admin_reply_error(struct evhttp_request *req, int status, const char *code,
                          const char *message)
{
    send_json(req, status, error_body(code, message));
}

static void hreq_error(tk_hreq_t *r, int status, const char *code, const char *message)
{
    hreq_json(r, status, error_body(code, message));
}

/* Set the job's outcome to an error; returns -1 for `return fail(...)`. */
static int fail(job_t *j, int status, const char *code, const char *message)
{
    j->status = status;
    json_decref(j->reply);
    j->reply = error_body(code, message);
    return -1;
}

static int ok(job_t *j, int status, json_t *body)
{
    j->status = status;
    json_decref(j->reply);
    j->reply = body;
    return 0;
}

/* A store failure, in words that name nothing internal. */
static int store_fail(job_t *j, int rc)
{
    tk_warn(MOD, "store: %s", tk_store_last_error(j->st));
    if (rc == TK_EBUSY)
        return fail(j, 503, "unavailable", "the store is busy; retry");
    return fail(j, 500, "internal", "the store failed");
}

static int forbidden(job_t *j)
{
    return fail(j, 403, "forbidden", "your role does not allow this");
}

/* ---- validation ---- */

int tk_admin_valid_id(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");
    return n > 0 && n <= TK_STORE_ID_MAX && s[n] == '\0' && s[0] != '-';
}

/* Whether s (valid UTF-8 from jansson) has no control characters. */
static int no_controls(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

typedef struct field {
    const char *name;
    json_type type; /* JSON_TRUE stands for any boolean */
    int required;
} field_t;

/* Body fields: unknown fields, missing required ones and wrong types get a
 * 400 naming the field (names come from our table, never from the input). */
static int check_fields(job_t *j, const field_t *spec, size_t n)
{
    const char *key;
    json_t *v;
    if (j->body == NULL)
        return fail(j, 400, "invalid_body", "a JSON object body is required");
    json_object_foreach(j->body, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(spec[i].name, key) != 0)
            i++;
        if (i == n)
            return fail(j, 400, "unknown_field", "the body has a field this route does not take");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_object_get(j->body, spec[i].name);
        char msg[96];
        if (f == NULL) {
            if (!spec[i].required)
                continue;
            tk_snprintf(msg, sizeof(msg), "field \"%s\" is required", spec[i].name);
            return fail(j, 400, "missing_field", msg);
        }
        int good = spec[i].type == JSON_TRUE ? json_is_boolean(f) : json_typeof(f) == spec[i].type;
        if (!good) {
            tk_snprintf(msg, sizeof(msg), "field \"%s\" has the wrong type", spec[i].name);
            return fail(j, 400, "invalid_field", msg);
        }
    }
    return 0;
}

static const char *body_str(const job_t *j, const char *name)
{
    return json_string_value(json_object_get(j->body, name));
}

int tk_admin_valid_email(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    return n >= 3 && n <= EMAIL_MAX_LEN && at != NULL && at != s && at[1] != '\0' &&
           no_controls(s) && strchr(s, ' ') == NULL;
}

/* ---- callers and roles (worker) ---- */

/* Establish who the caller is; 0, or -1 with the job failed. */
static int resolve_caller(job_t *j)
{
    const tk_caller_t *c = &j->caller;
    if (c->kind == TK_CALLER_BOOTSTRAP) {
        j->super = 1;
        return 0;
    }
    if (c->kind == TK_CALLER_KEY && !tk_scopes_has(c->scopes, TK_SCOPE_ADMIN))
        return fail(j, 403, "insufficient_scope", "this API key lacks the \"admin\" scope");
    if (c->user[0] == '\0')
        return fail(j, 403, "forbidden", "this credential belongs to no user");
    tk_user_t u;
    int rc = tk_store_user_get(j->st, c->user, &u);
    if (rc == TK_ENOENT)
        return fail(j, 403, "forbidden", "this credential's user does not exist");
    if (rc != TK_OK)
        return store_fail(j, rc);
    int disabled = u.disabled;
    tk_user_clear(&u);
    if (disabled)
        return fail(j, 403, "user_disabled", "this user is disabled");
    return 0;
}

static tk_role_t role_in(job_t *j, const char *org)
{
    if (j->super)
        return TK_ROLE_OWNER;
    char role[8];
    if (tk_store_member_role(j->st, org, j->caller.user, role) != TK_OK)
        return TK_ROLE_NONE;
    return tk_role_parse(role);
}

/* 0 if the caller may do act in org (on its own object if own), else a 403. */
static int authorize(job_t *j, const char *org, tk_action_t act, int own)
{
    return tk_rbac_allowed(role_in(j, org), act, own) ? 0 : forbidden(j);
}

int tk_admin_fail(job_t *j, int status, const char *code, const char *message)
{
    return fail(j, status, code, message);
}

int tk_admin_ok(job_t *j, int status, json_t *body)
{
    return ok(j, status, body);
}

int tk_admin_store_fail(job_t *j, int rc)
{
    return store_fail(j, rc);
}

int tk_admin_authorize(job_t *j, tk_action_t act, int own)
{
    return authorize(j, TK_ADMIN_ORG, act, own);
}

const char *tk_admin_actor_id(const job_t *j)
{
    if (j->actor != NULL)
        return j->actor;
    return j->super ? "bootstrap" : j->caller.user;
}

/* ---- JSON views ---- */

static json_t *user_json(const tk_user_t *u)
{
    return json_pack("{s:s, s:s, s:b, s:I}", "id", u->id, "email", u->email, "disabled",
                     u->disabled, "created_at", (json_int_t)u->created_at);
}

static json_t *opt_time(int64_t v)
{
    return v == 0 ? json_null() : json_integer((json_int_t)v);
}

/* A key without its hash. */
static json_t *key_json(const tk_apikey_t *k)
{
    return json_pack(
        "{s:s, s:s?, s:s, s:s, s:s?, s:I, s:o, s:o, s:o}", "id", k->id, "name", k->name, "endpoint",
        k->endpoint, "scopes", k->scopes && k->scopes[0] ? k->scopes : TK_SCOPE_MCP, "owner",
        k->owner, "created_at", (json_int_t)k->created_at, "expires_at", opt_time(k->expires_at),
        "revoked_at", opt_time(k->revoked_at), "last_used_at", opt_time(k->last_used_at));
}

static json_t *members_json(const tk_member_t *m, size_t n, int by_org)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", by_org ? "org" : "user_id",
                                           by_org ? m[i].org_id : m[i].user_id, "role", m[i].role));
    return a;
}

static json_t *string_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* ---- handlers (worker) ---- */

static int h_me(job_t *j)
{
    static const char *const kinds[] = {"", "bootstrap", "api_key", "jwt", "session"};
    json_t *out =
        json_pack("{s:s, s:n, s:[]}", "kind", kinds[j->caller.kind], "user", "memberships");
    if (j->super)
        json_object_set_new(out, "role", json_string("owner"));
    if (j->caller.kind == TK_CALLER_KEY)
        json_object_set_new(out, "scopes",
                            json_string(j->caller.scopes[0] ? j->caller.scopes : TK_SCOPE_MCP));
    if (j->caller.user[0] != '\0') {
        tk_user_t u;
        tk_member_t *m = NULL;
        size_t n = 0;
        int rc = tk_store_user_get(j->st, j->caller.user, &u);
        if (rc == TK_OK)
            rc = tk_store_member_list(j->st, NULL, j->caller.user, &m, &n);
        if (rc != TK_OK) {
            tk_user_clear(&u);
            json_decref(out);
            return store_fail(j, rc);
        }
        json_object_set_new(out, "user", user_json(&u));
        json_object_set_new(out, "memberships", members_json(m, n, 1));
        tk_user_clear(&u);
        free(m);
    }
    return ok(j, 200, out);
}

static int h_users_get(job_t *j)
{
    if (authorize(j, TK_ADMIN_ORG, TK_ACT_READ, 0) != 0)
        return -1;
    tk_user_t *u = NULL;
    size_t n = 0;
    int rc = tk_store_user_list(j->st, &u, &n);
    if (rc != TK_OK)
        return store_fail(j, rc);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, user_json(&u[i]));
    tk_user_list_free(u, n);
    return ok(j, 200, json_pack("{s:o}", "users", a));
}

/* The role field of a body: "member" when absent; 400 when unknown. */
static int body_role(job_t *j, tk_role_t *out)
{
    const char *r = body_str(j, "role");
    *out = r == NULL ? TK_ROLE_MEMBER : tk_role_parse(r);
    if (*out == TK_ROLE_NONE)
        return fail(j, 400, "invalid_field", "role must be owner, admin, member or viewer");
    return 0;
}

/* Grant `role` in org: admins grant up to admin, owners also owner. */
static int authorize_grant(job_t *j, const char *org, tk_role_t role)
{
    return authorize(j, org, role == TK_ROLE_OWNER ? TK_ACT_MANAGE_OWNERS : TK_ACT_MANAGE_USERS, 0);
}

/* Change a user's membership in org: owners only if they are an owner. */
static int authorize_target(job_t *j, const char *org, const char *user)
{
    char role[8];
    int rc = tk_store_member_role(j->st, org, user, role);
    tk_role_t r = rc == TK_OK ? tk_role_parse(role) : TK_ROLE_NONE;
    return authorize_grant(j, org, r);
}

/* Whether user is the only owner of org (org NULL: of any of its
 * organizations); organizations are never left without an owner. */
static int sole_owner(job_t *j, const char *org, const char *user)
{
    tk_member_t *mine = NULL, *all = NULL;
    size_t nmine = 0, nall = 0;
    int sole = 0;
    if (tk_store_member_list(j->st, org, user, &mine, &nmine) != TK_OK)
        return 0;
    for (size_t i = 0; i < nmine && !sole; i++) {
        if (strcmp(mine[i].role, "owner") != 0 ||
            tk_store_member_list(j->st, mine[i].org_id, NULL, &all, &nall) != TK_OK)
            continue;
        size_t owners = 0;
        for (size_t k = 0; k < nall; k++)
            owners += strcmp(all[k].role, "owner") == 0;
        sole = owners == 1;
        free(all);
    }
    free(mine);
    return sole;
}

static int last_owner(job_t *j)
{
    return fail(j, 409, "last_owner", "an organization's last owner cannot be removed or disabled");
}

static int h_users_post(job_t *j)
{
    static const field_t spec[] = {
        {"id", JSON_STRING, 0}, {"email", JSON_STRING, 1}, {"role", JSON_STRING, 0}};
    tk_role_t role;
    if (check_fields(j, spec, 3) != 0 || body_role(j, &role) != 0)
        return -1;
    const char *email = body_str(j, "email"), *id = body_str(j, "id");
    if (!tk_admin_valid_email(email))
        return fail(j, 400, "invalid_field", "email must be an address of 3..254 characters");
    if (id != NULL && !tk_admin_valid_id(id))
        return fail(j, 400, "invalid_field", "id must be 1..64 of a-z, 0-9, '_' and '-'");
    if (authorize_grant(j, TK_ADMIN_ORG, role) != 0)
        return -1;
    tk_user_t u;
    int rc = tk_admin_user_add(j->st, id, email, tk_role_name(role), &u);
    if (rc == TK_ESTATE)
        return fail(j, 409, "conflict", "a user with this id or email exists");
    if (rc != TK_OK) {
        tk_user_clear(&u);
        return store_fail(j, rc);
    }
    json_t *out = user_json(&u);
    tk_user_clear(&u);
    json_object_set_new(out, "memberships",
                        json_pack("[{s:s, s:s}]", "org", TK_ADMIN_ORG, "role", tk_role_name(role)));
    tk_info(MOD, "user %s created with role %s", u.id, tk_role_name(role));
    return ok(j, 201, out);
}

/* The ids of user's API keys into j->gone: the loop drops them from the
 * key cache when the user is deleted or disabled. */
static int user_keys(job_t *j, const char *user)
{
    tk_apikey_t *k = NULL;
    size_t n = 0;
    int rc = tk_store_apikey_list(j->st, &k, &n);
    if (rc != TK_OK)
        return rc;
    j->gone = json_array();
    for (size_t i = 0; i < n; i++)
        if (k[i].owner != NULL && strcmp(k[i].owner, user) == 0)
            json_array_append_new(j->gone, json_string(k[i].id));
    tk_apikey_list_free(k, n);
    return TK_OK;
}

/* Fetch user id into *u: 404 if missing. */
static int target_user(job_t *j, const char *id, tk_user_t *u)
{
    int rc = tk_store_user_get(j->st, id, u);
    if (rc == TK_ENOENT)
        return fail(j, 404, "not_found", "no such user");
    return rc == TK_OK ? 0 : store_fail(j, rc);
}

static int h_user(job_t *j)
{
    int self = !j->super && strcmp(j->p1, j->caller.user) == 0;
    int rc;
    if (j->cmd == EVHTTP_REQ_GET)
        rc = self ? 0 : authorize(j, TK_ADMIN_ORG, TK_ACT_READ, 0);
    else
        rc = authorize(j, TK_ADMIN_ORG, TK_ACT_MANAGE_USERS, 0);
    tk_user_t u;
    if (rc != 0 || target_user(j, j->p1, &u) != 0)
        return -1;
    if (j->cmd == EVHTTP_REQ_GET) {
        tk_member_t *m = NULL;
        size_t n = 0;
        json_t *out = user_json(&u);
        tk_user_clear(&u);
        if ((rc = tk_store_member_list(j->st, NULL, j->p1, &m, &n)) != TK_OK) {
            json_decref(out);
            return store_fail(j, rc);
        }
        json_object_set_new(out, "memberships", members_json(m, n, 1));
        free(m);
        return ok(j, 200, out);
    }
    tk_user_clear(&u);
    if (authorize_target(j, TK_ADMIN_ORG, j->p1) != 0)
        return -1;
    int removing = j->cmd == EVHTTP_REQ_DELETE ||
                   json_is_true(json_object_get(j->body, "disabled")); /* or disabling */
    if (removing && sole_owner(j, NULL, j->p1))
        return last_owner(j);
    if (removing && (rc = user_keys(j, j->p1)) != TK_OK)
        return store_fail(j, rc); /* j->gone: dropped from the key cache once done */
    size_t revoked = 0; /* and the JWTs issued to the user: refused within a second */
    if (removing && (rc = tk_store_jti_revoke_subject(j->st, j->p1, tk_wall_ms(), &revoked)) != TK_OK)
        return store_fail(j, rc);
    if (revoked > 0)
        tk_info(MOD, "user %s: %zu issued JWTs revoked", j->p1, revoked);
    if (j->cmd == EVHTTP_REQ_DELETE) {
        if ((rc = tk_store_user_delete(j->st, j->p1)) != TK_OK)
            return rc == TK_ENOENT ? fail(j, 404, "not_found", "no such user") : store_fail(j, rc);
        tk_info(MOD, "user %s deleted", j->p1);
        return ok(j, 204, NULL);
    }
    static const field_t spec[] = {{"email", JSON_STRING, 0}, {"disabled", JSON_TRUE, 0}};
    if (check_fields(j, spec, 2) != 0)
        return -1;
    const char *email = body_str(j, "email");
    json_t *dis = json_object_get(j->body, "disabled");
    if (email != NULL && !tk_admin_valid_email(email))
        return fail(j, 400, "invalid_field", "email must be an address of 3..254 characters");
    rc = tk_store_user_update(j->st, j->p1, email, dis == NULL ? -1 : json_is_true(dis));
    if (rc == TK_EINVAL)
        return fail(j, 409, "conflict", "another user has this email");
    if (rc != TK_OK || (rc = tk_store_user_get(j->st, j->p1, &u)) != TK_OK)
        return rc == TK_ENOENT ? fail(j, 404, "not_found", "no such user") : store_fail(j, rc);
    json_t *out = user_json(&u);
    tk_user_clear(&u);
    tk_info(MOD, "user %s updated", j->p1);
    return ok(j, 200, out);
}

static int h_members(job_t *j)
{
    const char *org = j->p1;
    int rc;
    if (j->cmd == EVHTTP_REQ_GET) {
        if (authorize(j, org, TK_ACT_READ, 0) != 0)
            return -1;
        tk_member_t *m = NULL;
        size_t n = 0;
        if ((rc = tk_store_member_list(j->st, org, NULL, &m, &n)) != TK_OK)
            return store_fail(j, rc);
        json_t *out = json_pack("{s:s, s:o}", "org", org, "members", members_json(m, n, 0));
        free(m);
        return ok(j, 200, out);
    }
    static const field_t spec[] = {{"user_id", JSON_STRING, 1}, {"role", JSON_STRING, 0}};
    tk_role_t role;
    if (check_fields(j, spec, 2) != 0 || body_role(j, &role) != 0)
        return -1;
    const char *user = body_str(j, "user_id");
    if (!tk_admin_valid_id(user))
        return fail(j, 400, "invalid_field", "user_id must be 1..64 of a-z, 0-9, '_' and '-'");
    if (authorize_grant(j, org, role) != 0)
        return -1;
    tk_user_t u;
    if (target_user(j, user, &u) != 0)
        return -1;
    tk_user_clear(&u);
    rc = tk_store_membership_insert(j->st, org, user, tk_role_name(role));
    if (rc == TK_EINVAL)
        return fail(j, 409, "conflict", "already a member, or no such organization");
    if (rc != TK_OK)
        return store_fail(j, rc);
    tk_info(MOD, "user %s added to organization %s as %s", user, org, tk_role_name(role));
    return ok(
        j, 201,
        json_pack("{s:s, s:s, s:s}", "org", org, "user_id", user, "role", tk_role_name(role)));
}

static int h_member_delete(job_t *j)
{
    if (authorize(j, j->p1, TK_ACT_MANAGE_USERS, 0) != 0 || authorize_target(j, j->p1, j->p2) != 0)
        return -1;
    if (sole_owner(j, j->p1, j->p2))
        return last_owner(j);
    int rc = tk_store_member_delete(j->st, j->p1, j->p2);
    if (rc == TK_ENOENT)
        return fail(j, 404, "not_found", "no such membership");
    if (rc != TK_OK)
        return store_fail(j, rc);
    tk_info(MOD, "user %s removed from organization %s", j->p2, j->p1);
    return ok(j, 204, NULL);
}

static int h_keys_get(job_t *j)
{
    tk_role_t role = role_in(j, TK_ADMIN_ORG);
    int all = tk_rbac_allowed(role, TK_ACT_KEY_READ, 0);
    if (!all && !tk_rbac_allowed(role, TK_ACT_KEY_READ, 1))
        return forbidden(j);
    tk_apikey_t *k = NULL;
    size_t n = 0;
    int rc = tk_store_apikey_list(j->st, &k, &n);
    if (rc != TK_OK)
        return store_fail(j, rc);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        if (all || (k[i].owner != NULL && strcmp(k[i].owner, j->caller.user) == 0))
            json_array_append_new(a, key_json(&k[i]));
    tk_apikey_list_free(k, n);
    return ok(j, 200, json_pack("{s:o}", "keys", a));
}

/* Check POST /keys fields; fills *days. */
static int key_fields(job_t *j, uint64_t *days)
{
    static const field_t spec[] = {{"endpoint", JSON_STRING, 1},
                                   {"name", JSON_STRING, 0},
                                   {"scopes", JSON_STRING, 0},
                                   {"expires_days", JSON_INTEGER, 0}};
    if (check_fields(j, spec, 4) != 0)
        return -1;
    const char *ep = body_str(j, "endpoint"), *name = body_str(j, "name");
    const char *scopes = body_str(j, "scopes");
    int managed = 0;
    if (strcmp(ep, "*") != 0 && tk_config_find_endpoint(j->admin->cfg, ep) == NULL &&
        (managed = tk_admin_managed_endpoint(j, ep, NULL)) <= 0)
        return managed < 0 ? -1
                           : fail(j, 400, "invalid_field",
                                  "endpoint must be a configured endpoint or \"*\"");
    if (name != NULL && strlen(name) > NAME_MAX_LEN)
        return fail(j, 400, "invalid_field", "name must be at most 200 bytes");
    if (scopes != NULL && !tk_scopes_valid(scopes))
        return fail(j, 400, "invalid_field", "scopes must be \"mcp\", \"admin\" or \"mcp admin\"");
    json_int_t d = json_integer_value(json_object_get(j->body, "expires_days"));
    if (json_object_get(j->body, "expires_days") != NULL && (d < 1 || d > 36500))
        return fail(j, 400, "invalid_field", "expires_days must be 1..36500");
    *days = (uint64_t)d;
    return 0;
}

static int h_keys_post(job_t *j)
{
    uint64_t days = 0;
    if (key_fields(j, &days) != 0 || authorize(j, TK_ADMIN_ORG, TK_ACT_KEY_CREATE, 1) != 0)
        return -1;
    char key[TK_APIKEY_LEN + 1], hash[TK_APIKEY_HASH_MAX];
    tk_apikey_t k;
    memset(&k, 0, sizeof(k));
    if (tk_apikey_generate(key, k.id) != TK_OK ||
        tk_apikey_hash(key + 4 + TK_APIKEY_ID_LEN, hash, sizeof(hash)) != TK_OK)
        return fail(j, 500, "internal", "cannot generate a key");
    const char *scopes = body_str(j, "scopes");
    k.name = (char *)body_str(j, "name");
    k.hash = hash;
    k.endpoint = (char *)body_str(j, "endpoint");
    k.scopes = (char *)(scopes != NULL ? scopes : TK_SCOPE_MCP);
    k.owner = j->caller.user[0] != '\0' ? j->caller.user : NULL;
    k.created_at = tk_wall_ms();
    k.expires_at = days ? k.created_at + (int64_t)days * 86400000 : 0;
    int rc = tk_store_apikey_insert(j->st, &k);
    if (rc != TK_OK) {
        OPENSSL_cleanse(key, sizeof(key));
        return store_fail(j, rc);
    }
    json_t *out = key_json(&k);
    json_object_set_new(out, "key", json_string(key)); /* shown this once */
    OPENSSL_cleanse(key, sizeof(key));
    tk_info(MOD, "key %s created for endpoint %s", k.id, k.endpoint);
    return ok(j, 201, out);
}

static int h_key_delete(job_t *j)
{
    tk_apikey_t k;
    int rc = tk_store_apikey_get(j->st, j->p1, &k);
    if (rc == TK_ENOENT)
        return fail(j, 404, "not_found", "no such key");
    if (rc != TK_OK)
        return store_fail(j, rc);
    int own = k.owner != NULL && strcmp(k.owner, j->caller.user) == 0;
    tk_apikey_clear(&k);
    if (authorize(j, TK_ADMIN_ORG, TK_ACT_KEY_REVOKE, own) != 0)
        return -1;
    rc = tk_store_apikey_revoke(j->st, j->p1, tk_wall_ms());
    if (rc != TK_OK)
        return store_fail(j, rc);
    tk_info(MOD, "key %s revoked", j->p1);
    j->gone = json_pack("[s]", j->p1); /* every key cache drops it now, not at its next poll */
    return ok(j, 204, NULL);
}

json_t *tk_admin_stored_tools(const char *slug, const tk_tool_filter_t *f, size_t nf)
{
    json_t *tools = NULL;
    for (size_t i = 0; i < nf && tools == NULL; i++) {
        if (strcmp(f[i].endpoint, slug) != 0)
            continue;
        json_t *allow = json_loads(f[i].allow, 0, NULL), *deny = json_loads(f[i].deny, 0, NULL);
        if (json_is_array(allow) && json_is_array(deny))
            tools = json_pack("{s:O, s:O, s:s}", "allow", allow, "deny", deny, "source", "api");
        json_decref(allow);
        json_decref(deny);
    }
    return tools;
}

/* One endpoint: its servers and its tool selection (stored, or config's). */
static json_t *endpoint_json(const tk_config_t *cfg, const tk_endpoint_conf_t *ep,
                             const tk_tool_filter_t *f, size_t nf)
{
    json_t *srvs = json_array();
    for (size_t i = 0; i < ep->nservers; i++)
        json_array_append_new(srvs, json_string(cfg->servers[ep->servers[i]].name));
    json_t *tools = tk_admin_stored_tools(ep->slug, f, nf);
    if (tools == NULL)
        tools = json_pack("{s:o, s:o, s:s}", "allow", string_array(ep->tool_allow, ep->nallow),
                          "deny", string_array(ep->tool_deny, ep->ndeny), "source", "config");
    return json_pack("{s:s, s:o, s:o, s:b, s:s}", "slug", ep->slug, "servers", srvs, "tools",
                     tools, "namespace", ep->namespace_names, "source", "config");
}

static int h_endpoints(job_t *j)
{
    const tk_config_t *cfg = j->admin->cfg;
    const tk_endpoint_conf_t *one = NULL;
    if (j->cmd == EVHTTP_REQ_POST || j->cmd == EVHTTP_REQ_PATCH || j->cmd == EVHTTP_REQ_DELETE)
        return tk_admin_h_endpoint_write(j);
    if (authorize(j, TK_ADMIN_ORG, TK_ACT_READ, 0) != 0)
        return -1;
    if (j->route == R_ENDPOINT)
        one = tk_config_find_endpoint(cfg, j->p1);
    tk_tool_filter_t *f = NULL;
    size_t nf = 0, found = 0;
    int rc = tk_store_tool_filter_list(j->st, &f, &nf);
    if (rc != TK_OK)
        return store_fail(j, rc);
    json_t *a = json_array();
    for (size_t i = 0; cfg->endpoints != NULL && i < cfg->nendpoints; i++)
        if (j->route == R_ENDPOINTS || one == &cfg->endpoints[i])
            json_array_append_new(a, endpoint_json(cfg, &cfg->endpoints[i], f, nf));
    if (one == NULL)
        rc = tk_admin_managed_endpoints(j, a, j->route == R_ENDPOINT ? j->p1 : NULL, f, nf, &found);
    tk_tool_filter_list_free(f, nf);
    if (rc != 0) {
        json_decref(a);
        return -1;
    }
    if (j->route == R_ENDPOINT && one == NULL && found == 0) {
        json_decref(a);
        return fail(j, 404, "not_found", "no such endpoint");
    }
    if (j->route == R_ENDPOINT) {
        json_t *out = json_incref(json_array_get(a, 0));
        json_decref(a);
        return ok(j, 200, out);
    }
    return ok(j, 200, json_pack("{s:o}", "endpoints", a));
}

int tk_admin_patterns_valid(const json_t *a)
{
    size_t i;
    const json_t *p;
    if (!json_is_array(a) || json_array_size(a) > PATTERNS_MAX)
        return 0;
    json_array_foreach(a, i, p)
    {
        const char *s = json_string_value(p);
        if (s == NULL || s[0] == '\0' || strlen(s) > PATTERN_MAX_LEN || !no_controls(s))
            return 0;
    }
    return 1;
}

int tk_admin_store_tools(tk_store_t *st, const char *slug, const json_t *allow, const json_t *deny)
{
    char *a = json_dumps(allow, JSON_COMPACT), *d = json_dumps(deny, JSON_COMPACT);
    tk_tool_filter_t f = {(char *)slug, a, d, tk_wall_ms()};
    int rc = a != NULL && d != NULL ? tk_store_tool_filter_set(st, &f) : TK_EINVAL;
    free(a);
    free(d);
    return rc;
}

int tk_admin_user_add(tk_store_t *st, const char *id, const char *email, const char *role,
                      tk_user_t *out)
{
    memset(out, 0, sizeof(*out));
    if (id != NULL) {
        tk_snprintf(out->id, sizeof(out->id), "%s", id);
    } else {
        unsigned char rnd[8];
        char hex[17];
        if (tk_random_bytes(rnd, sizeof(rnd)) != TK_OK)
            return TK_EIO;
        tk_hex_encode(rnd, sizeof(rnd), hex);
        tk_snprintf(out->id, sizeof(out->id), "u%s", hex);
    }
    out->created_at = tk_wall_ms();
    int rc = tk_store_org_ensure(st, TK_ADMIN_ORG, "Default organization", out->created_at);
    if (rc == TK_OK)
        rc = tk_store_user_insert(st, out->id, email, NULL, out->created_at);
    if (rc == TK_EINVAL)
        return TK_ESTATE;
    if (rc == TK_OK)
        rc = tk_store_membership_insert(st, TK_ADMIN_ORG, out->id, role);
    if (rc == TK_OK)
        out->email = tk_strdup(email);
    return rc;
}

static int h_endpoint_tools(job_t *j)
{
    static const field_t spec[] = {{"allow", JSON_ARRAY, 0}, {"deny", JSON_ARRAY, 0}};
    if (check_fields(j, spec, 2) != 0)
        return -1;
    json_t *allow = json_object_get(j->body, "allow"), *deny = json_object_get(j->body, "deny");
    allow = allow != NULL ? json_incref(allow) : json_array();
    deny = deny != NULL ? json_incref(deny) : json_array();
    j->filter = json_pack("{s:o, s:o}", "allow", allow, "deny", deny);
    if (!tk_admin_patterns_valid(allow) || !tk_admin_patterns_valid(deny))
        return fail(j, 400, "invalid_field",
                    "allow and deny take at most 64 strings of 1..128 printable characters");
    char owner[129] = "";
    int managed = 0;
    if (tk_config_find_endpoint(j->admin->cfg, j->p1) == NULL &&
        (managed = tk_admin_managed_endpoint(j, j->p1, owner)) <= 0)
        return managed < 0 ? -1 : fail(j, 404, "not_found", "no such endpoint");
    int own = managed && owner[0] != '\0' && strcmp(owner, tk_admin_actor_id(j)) == 0;
    if (authorize(j, TK_ADMIN_ORG, TK_ACT_ENDPOINT_WRITE, own) != 0)
        return -1;
    int rc = tk_admin_store_tools(j->st, j->p1, allow, deny);
    if (rc != TK_OK)
        return store_fail(j, rc);
    return ok(j, 200, json_pack("{s:s, s:O, s:O}", "slug", j->p1, "allow", allow, "deny", deny));
}

static json_t *kv_names(const tk_kv_t *kv, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(kv[i].name));
    return a;
}

static int h_servers(job_t *j)
{
    static const char *const transports[] = {"stdio", "http", "sse"};
    if (j->cmd != EVHTTP_REQ_GET || j->route == R_SERVER)
        return j->route == R_SERVER ? tk_admin_h_server(j) : tk_admin_h_servers(j);
    if (authorize(j, TK_ADMIN_ORG, TK_ACT_READ, 0) != 0)
        return -1;
    const tk_config_t *cfg = j->admin->cfg;
    json_t *a = json_array();
    for (size_t i = 0; i < cfg->nservers; i++) {
        const tk_server_conf_t *s = &cfg->servers[i];
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:b, s:o, s:o, s:s}", "name", s->name, "transport",
                         transports[s->transport], "disabled", s->disabled, "env_names",
                         kv_names(s->env, s->nenv), "header_names",
                         kv_names(s->headers, s->nheaders), "source", "config"));
    }
    if (tk_admin_ok(j, 200, json_pack("{s:o}", "servers", a)) != 0 || tk_admin_h_servers(j) != 0)
        return -1;
    return 0;
}

static int h_users(job_t *j)
{
    return j->cmd == EVHTTP_REQ_GET ? h_users_get(j) : h_users_post(j);
}

static int h_keys(job_t *j)
{
    return j->cmd == EVHTTP_REQ_GET ? h_keys_get(j) : h_keys_post(j);
}

/* The handler of each route (run on the worker). */
static int (*const handlers[R_COUNT])(job_t *j) = {
    [R_ME] = h_me,
    [R_USERS] = h_users,
    [R_USER] = h_user,
    [R_MEMBERS] = h_members,
    [R_MEMBER] = h_member_delete,
    [R_KEYS] = h_keys,
    [R_KEY] = h_key_delete,
    [R_ENDPOINTS] = h_endpoints,
    [R_ENDPOINT] = h_endpoints,
    [R_ENDPOINT_TOOLS] = h_endpoint_tools,
    [R_SERVERS] = h_servers,
    [R_SERVER] = h_servers,
};

static void job_work(tk_store_t *st, void *arg)
{
    job_t *j = arg;
    j->ran = 1;
    j->st = st;
    if (st == NULL) {
        fail(j, 503, "unavailable", "the store is unavailable");
        return;
    }
    if (resolve_caller(j) == 0)
        (void)handlers[j->route](j);
    j->st = NULL;
}

/* ---- loop side ---- */

static void job_free(job_t *j)
{
    json_decref(j->body);
    json_decref(j->reply);
    json_decref(j->filter);
    json_decref(j->gone);
    tk_admin_live_free(j->live);
    free(j);
}

static void caller_desc(const tk_caller_t *c, char *out, size_t len)
{
    if (c->kind == TK_CALLER_BOOTSTRAP)
        tk_snprintf(out, len, "bootstrap token");
    else if (c->kind == TK_CALLER_KEY)
        tk_snprintf(out, len, "key %s (user %s)", c->key_id, c->user[0] ? c->user : "-");
    else
        tk_snprintf(out, len, "%s (user %s)", c->kind == TK_CALLER_SESSION ? "session" : "jwt",
                    c->user);
}

/* The audit record of every admin API access (reads too): who, which route
 * and method, on what, the outcome; never a body. */
static void audit_admin(const job_t *j)
{
    static const char *const methods[] = {"get", "post", "put", "patch", "delete"};
    const char *method = j->cmd == EVHTTP_REQ_POST     ? methods[1]
                         : j->cmd == EVHTTP_REQ_PUT    ? methods[2]
                         : j->cmd == EVHTTP_REQ_PATCH  ? methods[3]
                         : j->cmd == EVHTTP_REQ_DELETE ? methods[4]
                                                       : methods[0];
    char actor[TK_AUDIT_ACTOR_MAX], action[48], target[TK_STORE_ID_MAX + 16] = "";
    const tk_caller_t *c = &j->caller;
    if (c->kind == TK_CALLER_BOOTSTRAP)
        tk_snprintf(actor, sizeof(actor), "key:bootstrap");
    else if (c->kind == TK_CALLER_KEY)
        tk_snprintf(actor, sizeof(actor), "key:%s", c->key_id);
    else if (c->kind == TK_CALLER_SESSION)
        tk_snprintf(actor, sizeof(actor), "user:%s", c->user);
    else
        tk_snprintf(actor, sizeof(actor), "sub:%s", c->user);
    tk_snprintf(action, sizeof(action), "admin.%s.%s", routes[j->route].name, method);
    const char *made = j->status == 201 ? json_string_value(json_object_get(j->reply, "id")) : NULL;
    if (j->route == R_MEMBER)
        tk_snprintf(target, sizeof(target), "user:%s", j->p2);
    else if (j->route == R_MEMBERS)
        tk_snprintf(target, sizeof(target), "org:%s", j->p1);
    else if (j->route == R_USER || (j->route == R_USERS && made != NULL))
        tk_snprintf(target, sizeof(target), "user:%s", made != NULL ? made : j->p1);
    else if (j->route == R_KEY || (j->route == R_KEYS && made != NULL))
        tk_snprintf(target, sizeof(target), "key:%s", made != NULL ? made : j->p1);
    else if (j->route == R_ENDPOINT || j->route == R_ENDPOINT_TOOLS)
        tk_snprintf(target, sizeof(target), "endpoint:%s", j->p1);
    else if (j->route == R_SERVER)
        tk_snprintf(target, sizeof(target), "server:%s", j->p1);
    else if ((j->route == R_SERVERS || j->route == R_ENDPOINTS) && j->status == 201)
        tk_snprintf(target, sizeof(target), "%s:%s", j->route == R_SERVERS ? "server" : "endpoint",
                    json_string_value(json_object_get(j->reply, j->route == R_SERVERS ? "name"
                                                                                     : "slug")));
    const char *ip = tk_hreq_peer(j->r);
    tk_audit_event_t ev = {.actor = actor,
                           .action = action,
                           .target = target[0] ? target : NULL,
                           .endpoint = j->route == R_ENDPOINT_TOOLS ? j->p1 : NULL,
                           .result = j->status / 100 == 2 ? "ok"
                                     : j->status == 403   ? "denied"
                                                          : "error",
                           .status = j->status,
                           .ip = ip[0] ? ip : NULL};
    if (tk_audit_emit(&ev) != TK_OK)
        tk_debug(MOD, "admin action not audited");
}

static void job_done(void *arg)
{
    job_t *j = arg;
    if (j->admin->closing || !j->ran) { /* shutting down: no answer */
        tk_hreq_release(j->r);
        job_free(j);
        return;
    }
    if (j->status / 100 == 2 && j->filter != NULL &&
        tk_gateway_set_tool_filter(j->admin->gw, j->p1, json_object_get(j->filter, "allow"),
                                   json_object_get(j->filter, "deny")) != TK_OK)
        tk_warn(MOD, "endpoint %s: tool selection stored but not applied", j->p1);
    size_t i;
    json_t *v;
    json_array_foreach(j->status / 100 == 2 ? j->gone : NULL, i, v)
    {
        if (j->admin->forget != NULL)
            j->admin->forget(j->admin->forget_arg, json_string_value(v));
    }
    tk_admin_live_apply(j);
    if ((j->status == 200 || j->status == 201) && (j->route == R_SERVERS || j->route == R_SERVER)) {
        json_t *s, *one = j->route == R_SERVER || j->status == 201 ? json_pack("[O]", j->reply)
                                                                  : NULL;
        json_array_foreach(one != NULL ? one : json_object_get(j->reply, "servers"), i, s)
        {
            const char *name = json_string_value(json_object_get(s, "name"));
            json_object_set_new(s, "status",
                                json_string(tk_gateway_server_status(j->admin->gw, name)));
        }
        json_decref(one);
    }
    char who[200];
    caller_desc(&j->caller, who, sizeof(who));
    tk_info(MOD, "%s %s by %s: %d", j->cmd == EVHTTP_REQ_GET ? "read" : "change",
            routes[j->route].name, who, j->status);
    audit_admin(j);
    hreq_json(j->r, j->status, j->reply);
    j->reply = NULL;
    job_free(j);
}

int tk_admin_path(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0;
}

enum seg { SEG_ID, SEG_KEY, SEG_SERVER };

/* Copy one path segment (up to '/' or the end) into out if it is a valid
 * id, API key id or server name (kind); returns the rest, or NULL. */
static const char *segment(const char *p, char *out, size_t outlen, int kind)
{
    char why[8];
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= outlen)
        return NULL;
    tk_snprintf(out, outlen, "%.*s", (int)n, p);
    if (kind == SEG_KEY ? strspn(out, "0123456789abcdef") != n || n != TK_APIKEY_ID_LEN
        : kind == SEG_SERVER ? tk_config_check_name(out, 0, why, sizeof(why)) != TK_OK
                             : !tk_admin_valid_id(out))
        return NULL;
    return p + n;
}

/* Match path (after "/api/v1") to a route; fills j->p1/p2. */
static int match(job_t *j, const char *p)
{
    static const struct {
        const char *prefix;
        route_t whole, item;
        int key;
    } tab[] = {{"/users", R_USERS, R_USER, SEG_ID},
               {"/keys", R_KEYS, R_KEY, SEG_KEY},
               {"/endpoints", R_ENDPOINTS, R_ENDPOINT, SEG_ID},
               {"/servers", R_SERVERS, R_SERVER, SEG_SERVER}};
    if (strcmp(p, "/me") == 0) {
        j->route = R_ME;
        return 0;
    }
    if (strncmp(p, "/orgs/", 6) == 0) {
        const char *r = segment(p + 6, j->p1, sizeof(j->p1), SEG_ID);
        if (r == NULL || strncmp(r, "/members", 8) != 0)
            return -1;
        r += 8;
        j->route = *r == '\0' ? R_MEMBERS : R_MEMBER;
        if (*r == '\0')
            return 0;
        r = *r == '/' ? segment(r + 1, j->p2, sizeof(j->p2), SEG_ID) : NULL;
        return r != NULL && *r == '\0' ? 0 : -1;
    }
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        size_t n = strlen(tab[i].prefix);
        if (strncmp(p, tab[i].prefix, n) != 0)
            continue;
        const char *r = p + n;
        j->route = tab[i].whole;
        if (*r == '\0')
            return 0;
        if (*r != '/' || tab[i].item == R_COUNT)
            return -1;
        r = segment(r + 1, j->p1, sizeof(j->p1), tab[i].key);
        j->route = tab[i].item;
        if (r != NULL && *r == '\0')
            return 0;
        if (r != NULL && tab[i].item == R_ENDPOINT && strcmp(r, "/tools") == 0) {
            j->route = R_ENDPOINT_TOOLS;
            return 0;
        }
        return -1;
    }
    return -1;
}

/* Read and parse the request body (POST, PUT, PATCH); 0 or -1 (answered). */
static int read_body(job_t *j, tk_hreq_t *r)
{
    if (j->cmd != EVHTTP_REQ_POST && j->cmd != EVHTTP_REQ_PUT && j->cmd != EVHTTP_REQ_PATCH)
        return 0;
    const char *ct = tk_hreq_header(r, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';')) {
        hreq_error(r, 415, "unsupported_media_type", "send the body as application/json");
        return -1;
    }
    size_t len;
    const char *data = tk_hreq_body(r, &len);
    if (len > TK_ADMIN_MAX_BODY) {
        hreq_error(r, 413, "too_large", "the body is larger than 64 KiB");
        return -1;
    }
    json_error_t e;
    j->body = json_loadb(data, len, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(j->body)) {
        hreq_error(r, 400, "invalid_json", "the body must be one JSON object");
        return -1;
    }
    return 0;
}

void tk_admin_handle(tk_admin_t *a, tk_hreq_t *r, const char *path, const tk_caller_t *who)
{
    job_t *j = tk_calloc(1, sizeof(*j));
    j->admin = a;
    j->caller = *who;
    j->cmd = tk_hreq_command(r);
    if (path == NULL || strncmp(path, "/api/v1/", 8) != 0 || match(j, path + 7) != 0) {
        hreq_error(r, 404, "not_found", "no such route");
        job_free(j);
        return;
    }
    if ((routes[j->route].methods & (int)j->cmd) == 0) {
        tk_hreq_add_header(r, "Allow", routes[j->route].allow);
        hreq_error(r, 405, "method_not_allowed", "this route does not take that method");
        job_free(j);
        return;
    }
    if (read_body(j, r) != 0) {
        job_free(j);
        return;
    }
    j->r = r;
    if (tk_store_worker_submit(a->worker, job_work, job_done, j) != TK_OK) {
        hreq_error(r, 503, "unavailable", "too many admin requests in progress");
        job_free(j);
        return;
    }
}

/* Apply the stored tool selections to the gateway (at start). */
static int load_filters(tk_admin_t *a, tk_store_t *st, char *err, size_t errlen)
{
    tk_tool_filter_t *f = NULL;
    size_t n = 0;
    if (tk_store_tool_filter_list(st, &f, &n) != TK_OK) {
        tk_snprintf(err, errlen, "cannot read tool selections: %s", tk_store_last_error(st));
        return TK_EIO;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *allow = json_loads(f[i].allow, 0, NULL), *deny = json_loads(f[i].deny, 0, NULL);
        if (tk_gateway_set_tool_filter(a->gw, f[i].endpoint, allow, deny) != TK_OK)
            tk_warn(MOD,
                    "stored tool selection for endpoint %s not applied (no such endpoint "
                    "or unreadable)",
                    f[i].endpoint);
        json_decref(allow);
        json_decref(deny);
    }
    tk_tool_filter_list_free(f, n);
    return TK_OK;
}

/* How often the store is read for servers and endpoints that the command
 * line added, changed or removed (tk_admin_poll_managed). */
#define MANAGED_POLL_MS 500

int tk_admin_create(struct event_base *base, const tk_config_t *cfg, tk_gateway_t *gw,
                    tk_admin_forget_fn forget, void *forget_arg, const char *db_path,
                    tk_admin_t **out, char *err, size_t errlen)
{
    *out = NULL;
    tk_store_t *st = NULL;
    int rc = tk_store_open_sqlite(db_path, &st, err, errlen);
    if (rc != TK_OK)
        return rc;
    tk_admin_t *a = tk_calloc(1, sizeof(*a));
    a->cfg = cfg;
    a->gw = gw;
    a->forget = forget;
    a->forget_arg = forget_arg;
    rc = tk_store_org_ensure(st, TK_ADMIN_ORG, "Default organization", tk_wall_ms());
    if (rc != TK_OK)
        tk_snprintf(err, errlen, "cannot create the default organization: %s",
                    tk_store_last_error(st));
    if (rc == TK_OK && (rc = tk_vault_open_config(cfg, 1, &a->vault, err, errlen)) == TK_OK)
        tk_admin_load_managed(a, st); /* before the tool selections, which may name them */
    if (rc == TK_OK)
        rc = load_filters(a, st, err, errlen);
    tk_store_close(st);
    if (rc == TK_OK &&
        (a->worker = tk_store_worker_create(base, db_path, tk_admin_poll_managed, a,
                                            MANAGED_POLL_MS, err, errlen)) == NULL)
        rc = TK_EIO;
    if (rc != TK_OK) {
        tk_admin_destroy(a);
        return rc;
    }
    *out = a;
    return TK_OK;
}

void tk_admin_destroy(tk_admin_t *a)
{
    if (a == NULL)
        return;
    a->closing = 1;
    tk_store_worker_destroy(a->worker);
    tk_admin_managed_free(a);
    tk_vault_destroy(a->vault);
    free(a);
}

/* ---- the command line ---- */

int tk_admin_run_local(const tk_config_t *cfg, tk_store_t *st, enum evhttp_cmd_type cmd,
                       const char *path, json_t *body, json_t **reply, char *err, size_t errlen)
{
    tk_admin_t a = {.cfg = cfg};
    job_t j = {.admin = &a, .cmd = cmd, .st = st, .super = 1, .ran = 1, .actor = "cli"};
    j.caller.kind = TK_CALLER_BOOTSTRAP;
    *reply = NULL;
    if (strlen(path) >= TK_ADMIN_PATH_MAX || match(&j, path) != 0 ||
        (routes[j.route].methods & (int)cmd) == 0) {
        tk_snprintf(err, errlen, "no such object");
        return 404;
    }
    if (tk_vault_open_config(cfg, 1, &a.vault, err, errlen) != TK_OK)
        return 500;
    j.body = json_incref(body);
    (void)handlers[j.route](&j);
    *reply = j.reply;
    j.reply = NULL;
    json_decref(j.body);
    json_decref(j.filter);
    json_decref(j.gone);
    tk_admin_live_free(j.live);
    tk_vault_destroy(a.vault);
    const char *msg = json_string_value(json_object_get(json_object_get(*reply, "error"), "message"));
    tk_snprintf(err, errlen, "%s", msg != NULL ? msg : "");
    return j.status;
}
