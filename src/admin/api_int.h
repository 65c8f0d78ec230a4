/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admin API internals shared by api.c (routing, users, members, keys, tool
 * selections) and managed.c (servers and endpoints made through the API):
 * the admin handle, the job that carries one request from the core loop to
 * the store worker and back, and the helpers that set a job's outcome.
 */
#ifndef TK_ADMIN_API_INT_H
#define TK_ADMIN_API_INT_H

#include <jansson.h>

#include "admin/api.h"
#include "admin/rbac.h"
#include "core/map.h"
#include "store/worker.h"
#include "vault/vault.h"

typedef enum route {
    R_ME,
    R_USERS,
    R_USER,
    R_MEMBERS,
    R_MEMBER,
    R_KEYS,
    R_KEY,
    R_ENDPOINTS,
    R_ENDPOINT,
    R_ENDPOINT_TOOLS,
    R_SERVERS,
    R_SERVER,
    R_COUNT
} route_t;

struct tk_admin {
    const tk_config_t *cfg;
    tk_gateway_t *gw;
    tk_admin_forget_fn forget;
    void *forget_arg;
    tk_store_worker_t *worker;
    tk_vault_t *vault; /* seals the secrets of servers made through the API */
    /* What the running gateway holds of the API-made servers and endpoints:
     * name -> seen_t (managed.c), touched on the store worker only (and
     * before it starts); NULL for the command line. */
    tk_map_t *seen_srv;
    tk_map_t *seen_ep;
    int closing;
};

typedef struct tk_admin_live tk_admin_live_t; /* a change for the gateway (managed.c) */

typedef struct job {
    tk_admin_t *admin;
    tk_hreq_t *r; /* ended exactly once, in job_done (output after a disconnect is dropped) */
    route_t route;
    enum evhttp_cmd_type cmd;
    char p1[TK_STORE_ID_MAX + 1]; /* path parameters */
    char p2[TK_STORE_ID_MAX + 1];
    json_t *body; /* the request's JSON object, or NULL */
    tk_caller_t caller;
    /* filled on the worker */
    tk_store_t *st;
    int super; /* bootstrap token */
    int ran;
    int status;
    json_t *reply;  /* response body, or NULL for 204 */
    json_t *filter; /* tool selection to apply to the gateway, or NULL */
    json_t *gone;   /* ids of keys revoked, or of a user deleted or disabled, or NULL */
    tk_admin_live_t *live; /* server / endpoint change to apply on the loop, or NULL */
    const char *actor;     /* recorded as creator instead of the caller ("cli"), or NULL */
} job_t;

/* Set the job's outcome (returns -1 / 0 for `return ...`). */
int tk_admin_fail(job_t *j, int status, const char *code, const char *message);
int tk_admin_ok(job_t *j, int status, json_t *body /* stolen */);
/* A store failure, logged; the reply names nothing internal. */
int tk_admin_store_fail(job_t *j, int rc);
/* 0 if the caller may do act in the default organization (on its own
 * object if own), else the job failed with 403. */
int tk_admin_authorize(job_t *j, tk_action_t act, int own);
/* The caller's user id, or "bootstrap" for the bootstrap token ("" if none). */
const char *tk_admin_actor_id(const job_t *j);
/* The stored tool selection of endpoint slug among f[0..nf) as
 * {"allow","deny","source":"api"}, or NULL if it has none. */
json_t *tk_admin_stored_tools(const char *slug, const tk_tool_filter_t *f, size_t nf);

/* ---- managed.c ---- */

/* Routes (worker): GET/POST /servers, GET/PATCH/DELETE /servers/<name>,
 * POST /endpoints, PATCH/DELETE /endpoints/<slug>. */
int tk_admin_h_servers(job_t *j);
int tk_admin_h_server(job_t *j);
int tk_admin_h_endpoint_write(job_t *j);
/* API-made endpoints as JSON into a (all, or only slug); *found counts
 * them. filters: the stored tool selections. */
int tk_admin_managed_endpoints(job_t *j, json_t *a, const char *slug, const tk_tool_filter_t *f,
                               size_t nf, size_t *found);
/* Whether slug is an endpoint made through the API (1), not (0), or the
 * store failed (-1, job failed); *owner (may be NULL) its creator's user id
 * or "" (copied into 129 bytes). */
int tk_admin_managed_endpoint(job_t *j, const char *slug, char *owner);
/* On the loop: apply j->live to the gateway; free it. */
void tk_admin_live_apply(job_t *j);
void tk_admin_live_free(tk_admin_live_t *l);
/* At start: load the API-made servers and endpoints from st into the
 * gateway (a row that cannot be read or decrypted is logged and skipped). */
void tk_admin_load_managed(tk_admin_t *a, tk_store_t *st);
/* Store worker tick: apply what another process (the command line) added,
 * changed or removed in the store since the last look. */
void tk_admin_poll_managed(tk_store_worker_t *w, tk_store_t *st, void *admin);
/* Free the seen maps. */
void tk_admin_managed_free(tk_admin_t *a);

#endif
