/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admin API: upstream servers and endpoints made through the API (beside
 * the config file's, which stay read-only here). A body is validated by the
 * config file's own rules (config.h tk_config_parse_server / _endpoint: the
 * same names, transports, commands, URLs with their outbound check, env and
 * header names). A server's env and header values are sealed with the vault
 * (AES-256-GCM, AAD "server:<id>:<kind>:<name>") before they reach the
 * store and are never returned: views list their names only. Store work
 * runs on the store worker; the change is applied to the gateway on the core
 * loop once the store has it (tk_admin_live_apply), and again at every start
 * (tk_admin_load_managed).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "admin/api_int.h"
#include "core/mask.h"

#define MOD "admin"
#define ERR_LEN 600

typedef enum live_kind {
    LIVE_SRV_ADD = 1,
    LIVE_SRV_REPLACE,
    LIVE_SRV_REMOVE,
    LIVE_EP_ADD,
    LIVE_EP_REPLACE,
    LIVE_EP_REMOVE
} live_kind_t;

struct tk_admin_live {
    live_kind_t kind;
    char name[TK_STORE_NAME_MAX + 1];
    tk_server_conf_t *srv;
    tk_endpoint_conf_t *ep;
    char **names; /* the endpoint's servers */
    size_t nnames;
    struct tk_admin_live *next; /* applied after this one */
};

/* A server or endpoint as the running gateway holds it. */
typedef struct seen {
    int64_t updated_at;
    int off; /* a disabled server */
} seen_t;

static const char *const transports[] = {"stdio", "http", "sse"};
static const char *const kinds[] = {"env", "header"};

void tk_admin_live_free(tk_admin_live_t *l)
{
    while (l != NULL) {
        tk_admin_live_t *next = l->next;
        tk_config_server_free(l->srv);
        tk_config_endpoint_free(l->ep);
        tk_store_ids_free(l->names, l->nnames);
        free(l);
        l = next;
    }
}

static tk_admin_live_t *live_make(live_kind_t kind, const char *name)
{
    tk_admin_live_t *l = tk_calloc(1, sizeof(*l));
    l->kind = kind;
    tk_snprintf(l->name, sizeof(l->name), "%s", name);
    return l;
}

/* The job's change (replacing any before). */
static tk_admin_live_t *live_new(job_t *j, live_kind_t kind, const char *name)
{
    tk_admin_live_free(j->live);
    j->live = live_make(kind, name);
    return j->live;
}

/* One more change, applied after the job's others. */
static tk_admin_live_t *live_append(job_t *j, live_kind_t kind, const char *name)
{
    tk_admin_live_t **at = &j->live;
    while (*at != NULL)
        at = &(*at)->next;
    *at = live_make(kind, name);
    return *at;
}

/* ---- what the gateway holds (for the store poll) ---- */

static void seen_set(tk_map_t *m, const char *name, int64_t updated_at, int off)
{
    if (m == NULL)
        return;
    seen_t *s = tk_map_sget(m, name);
    if (s == NULL) {
        s = tk_calloc(1, sizeof(*s));
        tk_map_sput(m, name, s);
    }
    s->updated_at = updated_at;
    s->off = off;
}

static void seen_del(tk_map_t *m, const char *name)
{
    if (m != NULL)
        free(tk_map_sdel(m, name));
}

/* ---- secrets ---- */

/* Register every env and header value of s with the masking module. */
static void mask_values(const tk_server_conf_t *s)
{
    for (size_t i = 0; i < s->nenv; i++)
        if (tk_mask_add_secret(s->env[i].value) != TK_OK)
            tk_warn(MOD, "the mask table is full");
    for (size_t i = 0; i < s->nheaders; i++)
        if (tk_mask_add_secret(s->headers[i].value) != TK_OK)
            tk_warn(MOD, "the mask table is full");
}

static int seal_one(const tk_vault_t *v, tk_server_row_t *row, int kind, const tk_kv_t *kv)
{
    int rc = tk_vault_seal_secret(v, row->id, kinds[kind], kv->name, kv->value,
                                  strlen(kv->value), &row->secrets[row->nsecrets]);
    if (rc == TK_OK)
        row->nsecrets++;
    return rc;
}

/* Seal conf's env and header values into row->secrets (row->id set). */
static int seal_all(const tk_vault_t *v, const tk_server_conf_t *conf, tk_server_row_t *row)
{
    int rc = TK_OK;
    row->secrets = tk_calloc(conf->nenv + conf->nheaders + 1, sizeof(*row->secrets));
    for (size_t i = 0; i < conf->nenv && rc == TK_OK; i++)
        rc = seal_one(v, row, 0, &conf->env[i]);
    for (size_t i = 0; i < conf->nheaders && rc == TK_OK; i++)
        rc = seal_one(v, row, 1, &conf->headers[i]);
    return rc;
}

/* Overwrite the secret values held in spec's "env" and "headers" objects. */
static void wipe_values(json_t *spec)
{
    static const char *const keys[] = {"env", "headers"};
    for (size_t k = 0; k < 2; k++) {
        const char *name;
        json_t *val;
        json_object_foreach(json_object_get(spec, keys[k]), name, val)
        {
            if (json_is_string(val))
                OPENSSL_cleanse((char *)json_string_value(val), json_string_length(val));
        }
    }
}

/* Open row's secrets of the kinds not in skip (a JSON object whose "env" /
 * "headers" members replace them) into spec's "env" / "headers". */
static int open_secrets(const tk_vault_t *v, const tk_server_row_t *row, json_t *spec,
                        const json_t *skip)
{
    static const char *const keys[] = {"env", "headers"};
    for (size_t i = 0; i < row->nsecrets; i++) {
        const tk_secret_row_t *s = &row->secrets[i];
        int kind = strcmp(s->kind, "header") == 0;
        if (skip != NULL && json_object_get(skip, keys[kind]) != NULL)
            continue;
        char *plain = NULL;
        size_t len;
        int rc = tk_vault_open_secret(v, row->id, s, &plain, &len);
        if (rc != TK_OK)
            return rc;
        json_t *obj = json_object_get(spec, keys[kind]);
        if (!json_is_object(obj)) {
            obj = json_object();
            json_object_set_new(spec, keys[kind], obj);
        }
        json_object_set_new(obj, s->name, json_stringn(plain, len));
        tk_vault_free_plain(plain);
    }
    return TK_OK;
}

/* The spec to store: body settings without the name and without values. */
static char *stored_spec(const json_t *spec)
{
    json_t *copy = json_deep_copy(spec);
    json_object_del(copy, "env");
    json_object_del(copy, "headers");
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    return text;
}

/* ---- views ---- */

static json_t *secret_names(const tk_server_row_t *row, const char *kind)
{
    json_t *a = json_array();
    for (size_t i = 0; i < row->nsecrets; i++)
        if (strcmp(row->secrets[i].kind, kind) == 0)
            json_array_append_new(a, json_string(row->secrets[i].name));
    return a;
}

/* Whether a stored server spec says "disabled": true. */
static int spec_disabled(const char *stored)
{
    json_t *spec = json_loads(stored != NULL ? stored : "", 0, NULL);
    int off = json_is_true(json_object_get(spec, "disabled"));
    json_decref(spec);
    return off;
}

static json_t *server_json(const tk_server_row_t *row)
{
    return json_pack("{s:s, s:s, s:b, s:o, s:o, s:s, s:s?, s:I, s:I}", "name", row->name,
                     "transport", row->transport, "disabled", spec_disabled(row->spec),
                     "env_names",
                     secret_names(row, "env"), "header_names", secret_names(row, "header"),
                     "source", "api", "created_by", row->created_by, "created_at",
                     (json_int_t)row->created_at, "updated_at", (json_int_t)row->updated_at);
}

static json_t *endpoint_json(const tk_endpoint_row_t *row, const tk_tool_filter_t *f, size_t nf)
{
    json_t *spec = json_loads(row->spec, 0, NULL);
    json_t *tools = tk_admin_stored_tools(row->slug, f, nf);
    if (tools == NULL) {
        json_t *t = json_object_get(spec, "tools"), *allow = json_object_get(t, "allow"),
               *deny = json_object_get(t, "deny");
        tools = json_pack("{s:o, s:o, s:s}", "allow", allow ? json_incref(allow) : json_array(),
                          "deny", deny ? json_incref(deny) : json_array(), "source", "api");
    }
    json_t *servers = json_object_get(spec, "servers"), *ns = json_object_get(spec, "namespace");
    json_t *out = json_pack("{s:s, s:o, s:o, s:b, s:s, s:s?, s:I}", "slug", row->slug, "servers",
                            servers ? json_incref(servers) : json_array(), "tools", tools,
                            "namespace",
                            ns == NULL || json_is_true(ns), "source", "api", "created_by",
                            row->created_by, "created_at", (json_int_t)row->created_at);
    json_t *rate = json_object_get(spec, "rate_limit");
    if (json_is_string(rate))
        json_object_set(out, "rate_limit", rate);
    json_decref(spec);
    return out;
}

/* ---- shared checks ---- */

static int owns(const job_t *j, const char *created_by)
{
    return created_by != NULL && created_by[0] != '\0' &&
           strcmp(created_by, tk_admin_actor_id(j)) == 0;
}

static int in_config(job_t *j, const char *what)
{
    char msg[128];
    tk_snprintf(msg, sizeof(msg), "this %s is defined in the config file; change it there", what);
    return tk_admin_fail(j, 409, "defined_in_config", msg);
}

/* A body member name must be the path's (or absent): no renames. */
static int check_same_name(job_t *j, const char *field, const char *name)
{
    json_t *v = json_object_get(j->body, field);
    if (v != NULL && (!json_is_string(v) || strcmp(json_string_value(v), name) != 0))
        return tk_admin_fail(j, 400, "invalid_field", "a server or endpoint cannot be renamed");
    return 0;
}

/* spec with the body's members merged in (null removes one). */
static json_t *merged_spec(const char *stored, const json_t *body, const char *skip)
{
    json_t *spec = json_loads(stored, 0, NULL);
    if (!json_is_object(spec)) {
        json_decref(spec);
        spec = json_object();
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val)
    {
        if (strcmp(key, skip) == 0)
            continue;
        if (json_is_null(val))
            json_object_del(spec, key);
        else
            json_object_set(spec, key, val);
    }
    return spec;
}

/* ---- servers ---- */

/* The default organization, which owns what is made here (the command
 * line may run before any gateway made it). */
static int ensure_org(job_t *j)
{
    return tk_store_org_ensure(j->st, TK_ADMIN_ORG, "Default organization", tk_wall_ms());
}

/* Validate spec as server name (400 on failure); *out owned by the caller. */
static int parse_server(job_t *j, const char *name, json_t *spec, tk_server_conf_t **out)
{
    char err[ERR_LEN];
    *out = NULL;
    if (tk_config_parse_server(j->admin->cfg, "body", name, spec, out, err, sizeof(err)) != TK_OK)
        return tk_admin_fail(j, 400, "invalid_field", err);
    return 0;
}

/* Fill row from conf and spec, sealing the values; 0 or the job failed. */
static int fill_row(job_t *j, const tk_server_conf_t *conf, const json_t *spec,
                    tk_server_row_t *row)
{
    free(row->transport);
    free(row->spec);
    row->transport = tk_strdup(transports[conf->transport]);
    row->spec = stored_spec(spec);
    row->updated_at = tk_wall_ms();
    for (size_t i = 0; i < row->nsecrets; i++) {
        free(row->secrets[i].name);
        free(row->secrets[i].ct);
    }
    free(row->secrets);
    row->secrets = NULL;
    row->nsecrets = 0;
    if (row->spec == NULL || strlen(row->spec) > TK_STORE_SPEC_MAX)
        return tk_admin_fail(j, 400, "invalid_field", "the server's settings are too large");
    if (seal_all(j->admin->vault, conf, row) != TK_OK)
        return tk_admin_fail(j, 500, "internal", "cannot seal the server's secrets");
    return 0;
}

/* 0 if fewer than max servers (endpoints) were made through the API,
 * else the job failed (each server is a process or connection). */
static int below_limit(job_t *j, int servers, size_t max)
{
    tk_server_row_t *srv = NULL;
    tk_endpoint_row_t *eps = NULL;
    size_t n = 0;
    int rc = servers ? tk_store_server_list(j->st, &srv, &n)
                     : tk_store_endpoint_list(j->st, &eps, &n);
    tk_server_row_list_free(srv, servers ? n : 0);
    tk_endpoint_row_list_free(eps, servers ? 0 : n);
    if (rc != TK_OK)
        return tk_admin_store_fail(j, rc);
    if (n >= max)
        return tk_admin_fail(j, 409, "limit",
                             servers ? "at most 256 servers can be made through the API"
                                     : "at most 256 endpoints can be made through the API");
    return 0;
}

static int server_create(job_t *j)
{
    const char *name = json_string_value(json_object_get(j->body, "name"));
    if (name == NULL)
        return tk_admin_fail(j, 400, "missing_field", "field \"name\" is required (a string)");
    if (tk_admin_authorize(j, TK_ACT_SERVER_WRITE, 1) != 0 ||
        below_limit(j, 1, TK_MAX_SERVERS) != 0)
        return -1;
    json_t *spec = json_deep_copy(j->body);
    json_object_del(spec, "name");
    tk_server_conf_t *conf;
    tk_server_row_t row;
    memset(&row, 0, sizeof(row));
    int rc = parse_server(j, name, spec, &conf);
    if (rc == 0 && tk_config_find_server(j->admin->cfg, name) != NULL)
        rc = in_config(j, "server");
    unsigned char rnd[8];
    if (rc == 0 && tk_random_bytes(rnd, sizeof(rnd)) != TK_OK)
        rc = tk_admin_fail(j, 500, "internal", "cannot make an id");
    if (rc == 0) {
        char hex[17];
        tk_hex_encode(rnd, sizeof(rnd), hex);
        tk_snprintf(row.id, sizeof(row.id), "s%s", hex);
        tk_snprintf(row.org, sizeof(row.org), "%s", TK_ADMIN_ORG);
        row.name = tk_strdup(name);
        row.created_by = tk_strdup(tk_admin_actor_id(j));
        row.created_at = tk_wall_ms();
        rc = fill_row(j, conf, spec, &row);
    }
    int src = rc == 0 ? ensure_org(j) : TK_OK;
    if (src == TK_OK && rc == 0)
        src = tk_store_server_put(j->st, &row, 1);
    if (src == TK_EINVAL)
        rc = tk_admin_fail(j, 409, "conflict", "a server of this name exists");
    else if (src != TK_OK)
        rc = tk_admin_store_fail(j, src);
    wipe_values(spec);
    json_decref(spec);
    if (rc == 0) {
        seen_set(j->admin->seen_srv, name, row.updated_at, conf->disabled);
        live_new(j, LIVE_SRV_ADD, name)->srv = conf;
        conf = NULL;
        tk_info(MOD, "server %s created", name);
        rc = tk_admin_ok(j, 201, server_json(&row));
    }
    tk_config_server_free(conf);
    tk_server_row_clear(&row);
    return rc;
}

/* The API-made server of the path into *row: 404 / 409 (config) / 403. */
static int target_server(job_t *j, tk_server_row_t *row)
{
    memset(row, 0, sizeof(*row));
    if (tk_config_find_server(j->admin->cfg, j->p1) != NULL)
        return in_config(j, "server");
    int rc = tk_store_server_get(j->st, j->p1, row);
    if (rc == TK_ENOENT)
        return tk_admin_fail(j, 404, "not_found", "no such server");
    if (rc != TK_OK)
        return tk_admin_store_fail(j, rc);
    if (tk_admin_authorize(j, TK_ACT_SERVER_WRITE, owns(j, row->created_by)) != 0) {
        tk_server_row_clear(row);
        return -1;
    }
    return 0;
}

static int spec_lists(const json_t *spec, const char *name)
{
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(spec, "servers"), k, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

/* A stored endpoint's settings into l->ep and l->names; 0, or -1 (logged). */
static int endpoint_conf_of(const tk_endpoint_row_t *row, tk_admin_live_t *l)
{
    json_t *spec = json_loads(row->spec, 0, NULL);
    char err[ERR_LEN];
    int rc = json_is_object(spec) ? tk_config_parse_endpoint("stored endpoint", row->slug, spec,
                                                             &l->ep, &l->names, &l->nnames, err,
                                                             sizeof(err))
                                  : TK_EINVAL;
    json_decref(spec);
    if (rc != TK_OK)
        tk_error(MOD, "endpoint %s: stored settings are invalid; skipped", row->slug);
    return rc == TK_OK ? 0 : -1;
}

/* Queue a replacement of every API-made endpoint that lists server name,
 * after the server's own change: a server enabled again rejoins them. */
static void relist_endpoints(job_t *j, const char *name)
{
    tk_endpoint_row_t *eps = NULL;
    size_t n = 0;
    if (tk_store_endpoint_list(j->st, &eps, &n) != TK_OK) {
        tk_warn(MOD, "server %s: its endpoints are not refreshed (store: %s)", name,
                tk_store_last_error(j->st));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *spec = json_loads(eps[i].spec, 0, NULL);
        if (json_is_object(spec) && spec_lists(spec, name))
            (void)endpoint_conf_of(&eps[i], live_append(j, LIVE_EP_REPLACE, eps[i].slug));
        json_decref(spec);
    }
    tk_endpoint_row_list_free(eps, n);
}

static int server_change(job_t *j)
{
    tk_server_row_t row;
    if (check_same_name(j, "name", j->p1) != 0 || target_server(j, &row) != 0)
        return -1;
    int was_off = spec_disabled(row.spec);
    json_t *spec = merged_spec(row.spec, j->body, "name");
    tk_server_conf_t *conf = NULL;
    int rc = open_secrets(j->admin->vault, &row, spec, j->body);
    if (rc != TK_OK) {
        tk_error(MOD, "server %s: a stored secret cannot be decrypted (wrong vault key?)", j->p1);
        rc = tk_admin_fail(j, 500, "internal", "the server's stored secrets cannot be read");
    } else {
        rc = parse_server(j, j->p1, spec, &conf);
    }
    if (rc == 0)
        rc = fill_row(j, conf, spec, &row);
    int src = rc == 0 ? tk_store_server_put(j->st, &row, 0) : TK_OK;
    if (src != TK_OK)
        rc = src == TK_ENOENT ? tk_admin_fail(j, 404, "not_found", "no such server")
                              : tk_admin_store_fail(j, src);
    wipe_values(spec);
    json_decref(spec);
    if (rc == 0) {
        int on_again = was_off && !conf->disabled;
        seen_set(j->admin->seen_srv, j->p1, row.updated_at, conf->disabled);
        live_new(j, LIVE_SRV_REPLACE, j->p1)->srv = conf;
        conf = NULL;
        if (on_again)
            relist_endpoints(j, j->p1);
        tk_info(MOD, "server %s changed", j->p1);
        rc = tk_admin_ok(j, 200, server_json(&row));
    }
    tk_config_server_free(conf);
    tk_server_row_clear(&row);
    return rc;
}

/* Remove server name from the API-made endpoints that list it. */
static int drop_from_endpoints(job_t *j, const char *name)
{
    tk_endpoint_row_t *eps = NULL;
    size_t n = 0;
    int rc = tk_store_endpoint_list(j->st, &eps, &n);
    for (size_t i = 0; i < n && rc == TK_OK; i++) {
        json_t *spec = json_loads(eps[i].spec, 0, NULL);
        json_t *servers = json_object_get(spec, "servers");
        size_t k;
        json_t *v;
        int hit = 0;
        json_array_foreach(servers, k, v)
        {
            if (!hit && json_is_string(v) && strcmp(json_string_value(v), name) == 0) {
                json_array_remove(servers, k);
                hit = 1;
                break;
            }
        }
        if (hit) {
            free(eps[i].spec);
            eps[i].spec = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
            eps[i].updated_at = tk_wall_ms();
            rc = tk_store_endpoint_put(j->st, &eps[i], 0);
            if (rc == TK_OK) /* the gateway drops the server from it itself */
                seen_set(j->admin->seen_ep, eps[i].slug, eps[i].updated_at, 0);
        }
        json_decref(spec);
    }
    tk_endpoint_row_list_free(eps, n);
    return rc;
}

static int server_delete(job_t *j)
{
    tk_server_row_t row;
    if (target_server(j, &row) != 0)
        return -1;
    tk_server_row_clear(&row);
    int rc = tk_store_server_delete(j->st, j->p1);
    if (rc == TK_OK)
        seen_del(j->admin->seen_srv, j->p1);
    if (rc == TK_OK)
        rc = drop_from_endpoints(j, j->p1);
    if (rc != TK_OK)
        return rc == TK_ENOENT ? tk_admin_fail(j, 404, "not_found", "no such server")
                               : tk_admin_store_fail(j, rc);
    live_new(j, LIVE_SRV_REMOVE, j->p1);
    tk_info(MOD, "server %s deleted", j->p1);
    return tk_admin_ok(j, 204, NULL);
}

static int server_get(job_t *j)
{
    if (tk_admin_authorize(j, TK_ACT_READ, 0) != 0)
        return -1;
    const tk_server_conf_t *s = tk_config_find_server(j->admin->cfg, j->p1);
    if (s != NULL) {
        json_t *env = json_array(), *hdr = json_array();
        for (size_t i = 0; i < s->nenv; i++)
            json_array_append_new(env, json_string(s->env[i].name));
        for (size_t i = 0; i < s->nheaders; i++)
            json_array_append_new(hdr, json_string(s->headers[i].name));
        return tk_admin_ok(j, 200,
                           json_pack("{s:s, s:s, s:b, s:o, s:o, s:s}", "name", s->name,
                                     "transport", transports[s->transport], "disabled",
                                     s->disabled, "env_names", env, "header_names", hdr,
                                     "source", "config"));
    }
    tk_server_row_t row;
    int rc = tk_store_server_get(j->st, j->p1, &row);
    if (rc != TK_OK)
        return rc == TK_ENOENT ? tk_admin_fail(j, 404, "not_found", "no such server")
                               : tk_admin_store_fail(j, rc);
    rc = tk_admin_ok(j, 200, server_json(&row));
    tk_server_row_clear(&row);
    return rc;
}

int tk_admin_h_servers(job_t *j)
{
    if (j->cmd == EVHTTP_REQ_POST)
        return server_create(j);
    /* GET: the config's are in the reply already; append the API's */
    tk_server_row_t *rows = NULL;
    size_t n = 0;
    int rc = tk_store_server_list(j->st, &rows, &n);
    if (rc != TK_OK)
        return tk_admin_store_fail(j, rc);
    json_t *a = json_object_get(j->reply, "servers");
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, server_json(&rows[i]));
    tk_server_row_list_free(rows, n);
    return 0;
}

int tk_admin_h_server(job_t *j)
{
    if (j->cmd == EVHTTP_REQ_GET)
        return server_get(j);
    return j->cmd == EVHTTP_REQ_DELETE ? server_delete(j) : server_change(j);
}

/* ---- endpoints ---- */

/* Whether name is a server an endpoint may list: an enabled config server
 * or one made through the API. 0 yes, else the job failed. */
static int check_server(job_t *j, const char *name)
{
    const tk_server_conf_t *s = tk_config_find_server(j->admin->cfg, name);
    char msg[96];
    if (s != NULL && !s->disabled)
        return 0;
    tk_server_row_t row;
    int rc = s != NULL ? TK_ENOENT : tk_store_server_get(j->st, name, &row);
    if (rc == TK_OK) {
        tk_server_row_clear(&row);
        return 0;
    }
    if (rc != TK_ENOENT)
        return tk_admin_store_fail(j, rc);
    tk_snprintf(msg, sizeof(msg), "unknown or disabled server \"%s\"", name);
    return tk_admin_fail(j, 400, "invalid_field", msg);
}

/* Validate spec as endpoint slug into *l (400 on failure). */
static int parse_endpoint(job_t *j, const char *slug, json_t *spec, tk_admin_live_t *l)
{
    char err[ERR_LEN];
    if (!json_is_array(json_object_get(spec, "servers")))
        return tk_admin_fail(j, 400, "missing_field",
                             "field \"servers\" is required (an array of server names)");
    if (tk_config_parse_endpoint("body", slug, spec, &l->ep, &l->names, &l->nnames, err,
                                 sizeof(err)) != TK_OK)
        return tk_admin_fail(j, 400, "invalid_field", err);
    for (size_t i = 0; i < l->nnames; i++)
        if (check_server(j, l->names[i]) != 0)
            return -1;
    return 0;
}

static int endpoint_create(job_t *j)
{
    const char *slug = json_string_value(json_object_get(j->body, "slug"));
    if (slug == NULL)
        return tk_admin_fail(j, 400, "missing_field", "field \"slug\" is required (a string)");
    if (tk_admin_authorize(j, TK_ACT_ENDPOINT_WRITE, 1) != 0 ||
        below_limit(j, 0, TK_MAX_ENDPOINTS) != 0)
        return -1;
    json_t *spec = json_deep_copy(j->body);
    json_object_del(spec, "slug");
    tk_admin_live_t *l = live_new(j, LIVE_EP_ADD, slug);
    int rc = parse_endpoint(j, slug, spec, l);
    if (rc == 0 && tk_config_find_endpoint(j->admin->cfg, slug) != NULL)
        rc = in_config(j, "endpoint");
    tk_endpoint_row_t row = {.slug = (char *)slug,
                             .created_by = (char *)tk_admin_actor_id(j),
                             .created_at = tk_wall_ms()};
    tk_snprintf(row.org, sizeof(row.org), "%s", TK_ADMIN_ORG);
    row.updated_at = row.created_at;
    row.spec = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(spec);
    int src = rc == 0 ? ensure_org(j) : TK_OK;
    if (src == TK_OK && rc == 0)
        src = tk_store_endpoint_put(j->st, &row, 1);
    if (src == TK_EINVAL)
        rc = tk_admin_fail(j, 409, "conflict", "an endpoint of this name exists");
    else if (src != TK_OK)
        rc = tk_admin_store_fail(j, src);
    if (rc == 0) {
        seen_set(j->admin->seen_ep, slug, row.updated_at, 0);
        tk_info(MOD, "endpoint %s created", slug);
        rc = tk_admin_ok(j, 201, endpoint_json(&row, NULL, 0));
    }
    free(row.spec);
    return rc;
}

/* The API-made endpoint of the path into *row: 404 / 409 (config) / 403. */
static int target_endpoint(job_t *j, tk_endpoint_row_t *row)
{
    memset(row, 0, sizeof(*row));
    if (tk_config_find_endpoint(j->admin->cfg, j->p1) != NULL)
        return in_config(j, "endpoint");
    int rc = tk_store_endpoint_get(j->st, j->p1, row);
    if (rc == TK_ENOENT)
        return tk_admin_fail(j, 404, "not_found", "no such endpoint");
    if (rc != TK_OK)
        return tk_admin_store_fail(j, rc);
    if (tk_admin_authorize(j, TK_ACT_ENDPOINT_WRITE, owns(j, row->created_by)) != 0) {
        tk_endpoint_row_clear(row);
        return -1;
    }
    return 0;
}

/* A PATCH that names "tools" also replaces the stored tool selection. */
static int patch_tools(job_t *j)
{
    json_t *t = json_object_get(j->body, "tools");
    if (t == NULL)
        return 0;
    json_t *allow = json_object_get(t, "allow"), *deny = json_object_get(t, "deny");
    allow = allow != NULL ? json_incref(allow) : json_array();
    deny = deny != NULL ? json_incref(deny) : json_array();
    json_decref(j->filter);
    j->filter = json_pack("{s:o, s:o}", "allow", allow, "deny", deny);
    int rc = tk_admin_store_tools(j->st, j->p1, allow, deny);
    return rc == TK_OK ? 0 : tk_admin_store_fail(j, rc);
}

static int endpoint_change(job_t *j)
{
    tk_endpoint_row_t row;
    if (check_same_name(j, "slug", j->p1) != 0 || target_endpoint(j, &row) != 0)
        return -1;
    json_t *spec = merged_spec(row.spec, j->body, "slug");
    int rc = parse_endpoint(j, j->p1, spec, live_new(j, LIVE_EP_REPLACE, j->p1));
    free(row.spec);
    row.spec = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    row.updated_at = tk_wall_ms();
    json_decref(spec);
    int src = rc == 0 ? tk_store_endpoint_put(j->st, &row, 0) : TK_OK;
    if (src != TK_OK)
        rc = src == TK_ENOENT ? tk_admin_fail(j, 404, "not_found", "no such endpoint")
                              : tk_admin_store_fail(j, src);
    if (rc == 0)
        seen_set(j->admin->seen_ep, j->p1, row.updated_at, 0);
    if (rc == 0)
        rc = patch_tools(j);
    if (rc == 0) {
        tk_info(MOD, "endpoint %s changed", j->p1);
        rc = tk_admin_ok(j, 200, endpoint_json(&row, NULL, 0));
    }
    tk_endpoint_row_clear(&row);
    return rc;
}

static int endpoint_delete(job_t *j)
{
    tk_endpoint_row_t row;
    if (target_endpoint(j, &row) != 0)
        return -1;
    tk_endpoint_row_clear(&row);
    int rc = tk_store_endpoint_delete(j->st, j->p1);
    if (rc != TK_OK)
        return rc == TK_ENOENT ? tk_admin_fail(j, 404, "not_found", "no such endpoint")
                               : tk_admin_store_fail(j, rc);
    seen_del(j->admin->seen_ep, j->p1);
    live_new(j, LIVE_EP_REMOVE, j->p1);
    tk_info(MOD, "endpoint %s deleted", j->p1);
    return tk_admin_ok(j, 204, NULL);
}

int tk_admin_h_endpoint_write(job_t *j)
{
    if (j->cmd == EVHTTP_REQ_POST)
        return endpoint_create(j);
    return j->cmd == EVHTTP_REQ_DELETE ? endpoint_delete(j) : endpoint_change(j);
}

int tk_admin_managed_endpoints(job_t *j, json_t *a, const char *slug, const tk_tool_filter_t *f,
                               size_t nf, size_t *found)
{
    tk_endpoint_row_t *rows = NULL;
    size_t n = 0;
    *found = 0;
    int rc = tk_store_endpoint_list(j->st, &rows, &n);
    if (rc != TK_OK)
        return tk_admin_store_fail(j, rc);
    for (size_t i = 0; i < n; i++) {
        if (slug != NULL && strcmp(rows[i].slug, slug) != 0)
            continue;
        json_array_append_new(a, endpoint_json(&rows[i], f, nf));
        (*found)++;
    }
    tk_endpoint_row_list_free(rows, n);
    return 0;
}

int tk_admin_managed_endpoint(job_t *j, const char *slug, char *owner)
{
    tk_endpoint_row_t row;
    int rc = tk_store_endpoint_get(j->st, slug, &row);
    if (rc == TK_ENOENT)
        return 0;
    if (rc != TK_OK) {
        tk_admin_store_fail(j, rc);
        return -1;
    }
    if (owner != NULL)
        tk_snprintf(owner, 129, "%s", row.created_by != NULL ? row.created_by : "");
    tk_endpoint_row_clear(&row);
    return 1;
}

/* ---- the gateway ---- */

static int running(tk_gateway_t *gw, const char *name)
{
    return strcmp(tk_gateway_server_status(gw, name), "disabled") != 0;
}

/* Keep of names[0..*n) the servers the gateway runs (a disabled one is
 * left out of its endpoints until it is enabled again). */
static void keep_running(tk_gateway_t *gw, const char *slug, char **names, size_t *n)
{
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (!running(gw, names[i])) {
            tk_info(MOD, "endpoint %s: server %s is not running here; left out", slug, names[i]);
            free(names[i]);
            continue;
        }
        names[kept++] = names[i];
    }
    *n = kept;
}

/* A server's new settings: replaced, started (enabled again) or stopped
 * (disabled). The gateway takes conf. */
static int apply_server(tk_gateway_t *gw, tk_server_conf_t *conf)
{
    int on = running(gw, conf->name);
    if (conf->disabled) {
        char name[TK_STORE_NAME_MAX + 1];
        tk_snprintf(name, sizeof(name), "%s", conf->name);
        tk_config_server_free(conf);
        return on ? tk_gateway_remove_server(gw, name) : TK_OK;
    }
    return on ? tk_gateway_replace_server(gw, conf) : tk_gateway_add_server(gw, conf);
}

static int apply_one(tk_gateway_t *gw, tk_admin_live_t *l)
{
    if (l->srv != NULL)
        mask_values(l->srv);
    if (l->names != NULL)
        keep_running(gw, l->name, l->names, &l->nnames);
    switch (l->kind) {
    case LIVE_SRV_ADD:
        if (l->srv == NULL)
            return TK_EINVAL;
        if (l->srv->disabled) {
            tk_config_server_free(l->srv);
            return TK_OK; /* stored, not started */
        }
        return tk_gateway_add_server(gw, l->srv);
    case LIVE_SRV_REPLACE:
        return l->srv != NULL ? apply_server(gw, l->srv) : TK_EINVAL;
    case LIVE_SRV_REMOVE: {
        int rc = tk_gateway_remove_server(gw, l->name);
        return rc == TK_ENOENT ? TK_OK : rc; /* a disabled one was not running */
    }
    case LIVE_EP_ADD:
        return tk_gateway_add_endpoint(gw, l->ep, l->names, l->nnames);
    case LIVE_EP_REPLACE:
        if (l->ep == NULL)
            return TK_EINVAL;
        return tk_gateway_has_endpoint(gw, l->name)
                   ? tk_gateway_replace_endpoint(gw, l->ep, l->names, l->nnames)
                   : tk_gateway_add_endpoint(gw, l->ep, l->names, l->nnames);
    case LIVE_EP_REMOVE:
        return tk_gateway_remove_endpoint(gw, l->name);
    }
    return TK_EINVAL;
}

void tk_admin_live_apply(job_t *j)
{
    if (j->status / 100 != 2)
        return;
    for (tk_admin_live_t *l = j->live; l != NULL; l = l->next) {
        int rc = apply_one(j->admin->gw, l);
        l->srv = NULL; /* the gateway owns them now */
        l->ep = NULL;
        if (rc != TK_OK)
            tk_warn(MOD, "%s: change stored but not applied to the running gateway (%s)",
                    l->name, tk_strerror(rc));
    }
}

/* A stored server's settings with its values opened into *conf; 0, or -1
 * (logged). */
static int server_conf_of(tk_admin_t *a, const tk_server_row_t *row, tk_server_conf_t **out)
{
    json_t *spec = json_loads(row->spec, 0, NULL);
    tk_server_conf_t *conf = NULL;
    char err[ERR_LEN];
    int rc = json_is_object(spec) ? TK_OK : TK_EINVAL;
    if (rc != TK_OK)
        tk_error(MOD, "server %s: stored settings are unreadable; skipped", row->name);
    else if ((rc = open_secrets(a->vault, row, spec, NULL)) != TK_OK)
        tk_error(MOD,
                 "server %s: a stored secret cannot be decrypted (%s: wrong vault key, or the "
                 "row was altered); skipped",
                 row->name, rc == TK_ENOENT ? "sealed under another key" : "authentication failed");
    else if ((rc = tk_config_parse_server(a->cfg, "stored server", row->name, spec, &conf, err,
                                          sizeof(err))) != TK_OK)
        tk_error(MOD, "server %s: %s; skipped", row->name, err);
    wipe_values(spec);
    json_decref(spec);
    *out = conf;
    return rc == TK_OK ? 0 : -1;
}

/* One stored server into the gateway; 0, or -1 (logged, skipped). */
static int load_server(tk_admin_t *a, const tk_server_row_t *row)
{
    tk_server_conf_t *conf = NULL;
    if (server_conf_of(a, row, &conf) != 0)
        return -1;
    mask_values(conf);
    if (conf->disabled) {
        tk_info(MOD, "server %s is disabled; not started", row->name);
        tk_config_server_free(conf);
        return 0;
    }
    int rc = tk_gateway_add_server(a->gw, conf);
    if (rc != TK_OK)
        tk_error(MOD, "server %s: cannot be added (%s; a config server of this name?); skipped",
                 row->name, tk_strerror(rc));
    return rc == TK_OK ? 0 : -1;
}

/* One stored endpoint into the gateway, with the servers that exist. */
static void load_endpoint(tk_admin_t *a, const tk_endpoint_row_t *row)
{
    tk_admin_live_t l = {0};
    if (endpoint_conf_of(row, &l) != 0)
        return;
    keep_running(a->gw, row->slug, l.names, &l.nnames);
    int rc = tk_gateway_add_endpoint(a->gw, l.ep, l.names, l.nnames);
    if (rc != TK_OK)
        tk_error(MOD, "endpoint %s: cannot be added (%s); skipped", row->slug, tk_strerror(rc));
    tk_store_ids_free(l.names, l.nnames);
}

void tk_admin_load_managed(tk_admin_t *a, tk_store_t *st)
{
    tk_server_row_t *srv = NULL;
    tk_endpoint_row_t *eps = NULL;
    size_t ns = 0, ne = 0, ok = 0;
    if (tk_store_server_list(st, &srv, &ns) != TK_OK ||
        tk_store_endpoint_list(st, &eps, &ne) != TK_OK) {
        tk_error(MOD, "servers and endpoints made through the API not loaded: %s",
                 tk_store_last_error(st));
        tk_server_row_list_free(srv, ns);
        return;
    }
    a->seen_srv = a->seen_srv != NULL ? a->seen_srv : tk_map_create();
    a->seen_ep = a->seen_ep != NULL ? a->seen_ep : tk_map_create();
    for (size_t i = 0; i < ns; i++) {
        ok += load_server(a, &srv[i]) == 0;
        seen_set(a->seen_srv, srv[i].name, srv[i].updated_at, spec_disabled(srv[i].spec));
    }
    for (size_t i = 0; i < ne; i++) {
        load_endpoint(a, &eps[i]);
        seen_set(a->seen_ep, eps[i].slug, eps[i].updated_at, 0);
    }
    if (ns + ne > 0)
        tk_info(MOD, "loaded %zu of %zu servers and %zu endpoints made through the API", ok, ns,
                ne);
    tk_server_row_list_free(srv, ns);
    tk_endpoint_row_list_free(eps, ne);
}

/* ---- changes made by another process ---- */

/* The names in seen that rows[0..n) (servers or endpoints) no longer hold,
 * in a fresh NULL-terminated array. */
static char **seen_gone(tk_map_t *seen, const tk_server_row_t *srv, const tk_endpoint_row_t *eps,
                        size_t n)
{
    tk_map_t *now = tk_map_create();
    for (size_t i = 0; i < n; i++)
        tk_map_sput(now, srv != NULL ? srv[i].name : eps[i].slug, now);
    char **gone = tk_calloc(tk_map_count(seen) + 1, sizeof(*gone));
    size_t it = 0, k = 0;
    const char *name;
    while (tk_map_next(seen, &it, NULL, &name, NULL))
        if (tk_map_sget(now, name) == NULL)
            gone[k++] = tk_strdup(name);
    tk_map_destroy(now);
    return gone;
}

/* Servers added or changed: queued on j (before the endpoints). */
static void poll_servers(job_t *j, const tk_server_row_t *rows, size_t n)
{
    tk_admin_t *a = j->admin;
    for (size_t i = 0; i < n; i++) {
        const seen_t *s = tk_map_sget(a->seen_srv, rows[i].name);
        if (s != NULL && s->updated_at == rows[i].updated_at)
            continue;
        int was_off = s == NULL || s->off;
        tk_server_conf_t *conf = NULL;
        int off = spec_disabled(rows[i].spec);
        seen_set(a->seen_srv, rows[i].name, rows[i].updated_at, off);
        if (server_conf_of(a, &rows[i], &conf) != 0)
            continue;
        tk_info(MOD, "server %s %s in the store; applying", rows[i].name,
                s == NULL ? "added" : "changed");
        live_append(j, s == NULL ? LIVE_SRV_ADD : LIVE_SRV_REPLACE, rows[i].name)->srv = conf;
        if (s != NULL && was_off && !off)
            relist_endpoints(j, rows[i].name);
    }
}

static void poll_endpoints(job_t *j, const tk_endpoint_row_t *rows, size_t n)
{
    tk_admin_t *a = j->admin;
    for (size_t i = 0; i < n; i++) {
        const seen_t *s = tk_map_sget(a->seen_ep, rows[i].slug);
        if (s != NULL && s->updated_at == rows[i].updated_at)
            continue;
        tk_info(MOD, "endpoint %s %s in the store; applying", rows[i].slug,
                s == NULL ? "added" : "changed");
        live_kind_t kind = s == NULL ? LIVE_EP_ADD : LIVE_EP_REPLACE;
        seen_set(a->seen_ep, rows[i].slug, rows[i].updated_at, 0);
        tk_admin_live_t *l = live_append(j, kind, rows[i].slug);
        if (endpoint_conf_of(&rows[i], l) != 0)
            l->kind = LIVE_EP_REPLACE; /* ep NULL: nothing applied (logged) */
    }
}

/* Removals of what seen holds and rows no longer do, queued on j. */
static void poll_removed(job_t *j, tk_map_t *seen, char **gone, live_kind_t kind)
{
    for (size_t i = 0; gone[i] != NULL; i++) {
        tk_info(MOD, "%s %s removed from the store; applying",
                kind == LIVE_SRV_REMOVE ? "server" : "endpoint", gone[i]);
        seen_del(seen, gone[i]);
        live_append(j, kind, gone[i]);
        free(gone[i]);
    }
    free(gone);
}

static void poll_done(void *arg)
{
    job_t *j = arg;
    if (!j->admin->closing)
        tk_admin_live_apply(j);
    tk_admin_live_free(j->live);
    free(j);
}

void tk_admin_poll_managed(tk_store_worker_t *w, tk_store_t *st, void *admin)
{
    tk_admin_t *a = admin;
    tk_server_row_t *srv = NULL;
    tk_endpoint_row_t *eps = NULL;
    size_t ns = 0, ne = 0;
    if (st == NULL || a->seen_srv == NULL)
        return;
    if (tk_store_server_list(st, &srv, &ns) != TK_OK ||
        tk_store_endpoint_list(st, &eps, &ne) != TK_OK) {
        tk_server_row_list_free(srv, ns);
        return; /* tried again at the next tick */
    }
    job_t *j = tk_calloc(1, sizeof(*j));
    j->admin = a;
    j->status = 200;
    /* servers first, so that endpoints can name them; removals last */
    poll_servers(j, srv, ns);
    poll_endpoints(j, eps, ne);
    poll_removed(j, a->seen_ep, seen_gone(a->seen_ep, NULL, eps, ne), LIVE_EP_REMOVE);
    poll_removed(j, a->seen_srv, seen_gone(a->seen_srv, srv, NULL, ns), LIVE_SRV_REMOVE);
    tk_server_row_list_free(srv, ns);
    tk_endpoint_row_list_free(eps, ne);
    if (j->live == NULL) {
        free(j);
        return;
    }
    tk_store_worker_post(w, poll_done, j);
}

void tk_admin_managed_free(tk_admin_t *a)
{
    tk_map_t *maps[] = {a->seen_srv, a->seen_ep};
    for (size_t k = 0; k < 2; k++) {
        size_t it = 0;
        void *val;
        while (maps[k] != NULL && tk_map_next(maps[k], &it, NULL, NULL, &val))
            free(val);
        tk_map_destroy(maps[k]);
    }
    a->seen_srv = a->seen_ep = NULL;
}
