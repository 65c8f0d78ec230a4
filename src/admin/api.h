/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admin REST API (/api/v1/...): users, organization members, API keys,
 * endpoints and their tool selection, servers. JSON in and out; every error
 * is {"error":{"code":"...","message":"..."}} with a message that never
 * carries SQL, paths, hashes or secrets. The HTTP layer authenticates the
 * caller and hands the request over with a tk_caller_t; this module checks
 * the caller's role server-side (admin/rbac.h) for every route, validates
 * input strictly, and does all store work (reads, writes, bcrypt) on a store
 * worker thread, never on the event loop. A created API key appears once, in
 * the POST response, and nowhere else (not in logs, not in later listings).
 *
 * The config's endpoints and servers belong to the organization "default"
 * (created at start if missing); user, key, endpoint and server routes are
 * authorised against the caller's role there, member routes against the
 * organization in the path. The admin module borrows the config, the event
 * base and the gateway; all must outlive it. It runs on the gateway core's
 * loop (its thread only); requests reach it as tk_hreq_t handles, so the
 * HTTP loop that owns a connection may run on a thread of its own.
 */
#ifndef TK_ADMIN_API_H
#define TK_ADMIN_API_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stddef.h>

#include "config/config.h"
#include "core/core.h"
#include "http/hreq.h"
#include "mcp/gateway.h"
#include "store/store.h"

#define TK_ADMIN_ORG "default"
#define TK_ADMIN_MAX_BODY 65536
/* Longer request paths match no route (the longest is well under this). */
#define TK_ADMIN_PATH_MAX 256

typedef enum tk_caller_kind {
    TK_CALLER_BOOTSTRAP = 1, /* the bootstrap token: owner of everything */
    TK_CALLER_KEY,           /* an API key: its owner, if it has the admin scope */
    TK_CALLER_JWT,           /* a JWT: the user named by its sub */
    TK_CALLER_SESSION        /* a dashboard session (admin/login.h): its user */
} tk_caller_kind_t;

/* Who is calling, as the HTTP layer authenticated it. */
typedef struct tk_caller {
    tk_caller_kind_t kind;
    char user[129];   /* user id; "" for the bootstrap token or a key without owner */
    char key_id[33];  /* API key public id, for logs */
    char scopes[256]; /* API key scopes ("" = "mcp") */
} tk_caller_t;

typedef struct tk_admin tk_admin_t;

/* Called on the admin's loop with the id of an API key revoked through the
 * API, or whose user was deleted or disabled: drop it from every key cache
 * at once (the revocation poll cannot see a deleted row, and is per loop). */
typedef void (*tk_admin_forget_fn)(void *arg, const char *key_id);

/* Start the admin API on the store at db_path: makes sure the default
 * organization exists, applies the tool selections stored there to gw, and
 * starts the worker. forget (may be NULL) is told about revoked keys and
 * the keys of deleted or disabled users. On failure returns a TK_E* and err
 * says why. */
int tk_admin_create(struct event_base *base, const tk_config_t *cfg, tk_gateway_t *gw,
                    tk_admin_forget_fn forget, void *forget_arg, const char *db_path,
                    tk_admin_t **out, char *err, size_t errlen) TK_WUR;
/* Requests still in progress are dropped unanswered (their connections are
 * being closed). NULL is fine. */
void tk_admin_destroy(tk_admin_t *a);

/* Whether path belongs to the admin API ("/api/..."). */
int tk_admin_path(const char *path);

/* Serve one authenticated request for path (the request's path, shorter
 * than TK_ADMIN_PATH_MAX); ends r (now or later) exactly once. */
void tk_admin_handle(tk_admin_t *a, tk_hreq_t *r, const char *path, const tk_caller_t *who);

/* Send {"error":{"code":code,"message":message}} with status (on the
 * request's own loop). */
void tk_admin_reply_error(struct evhttp_request *req, int status, const char *code,
                          const char *message);

/* ---- shared with the command line (admin/cli.c) ---- */

/* Whether s is a user or organization id: 1..64 of [a-z0-9_-], not
 * starting with '-'. */
int tk_admin_valid_id(const char *s);
/* Whether s looks like an e-mail address: 3..254 bytes, an '@' with text on
 * both sides, no spaces or control characters. */
int tk_admin_valid_email(const char *s);
/* Whether a is an array of at most 64 strings of 1..128 printable
 * characters (tool-name glob patterns). */
int tk_admin_patterns_valid(const json_t *a);

/* Create user id (NULL: a random "u<16 hex>") with email and a membership
 * of role in the default organization (created if missing); *out receives
 * the user (clear it with tk_user_clear). Inputs must have been validated.
 * TK_ESTATE: the id or e-mail is taken; other TK_E*: the store failed. */
int tk_admin_user_add(tk_store_t *st, const char *id, const char *email, const char *role,
                      tk_user_t *out) TK_WUR;
/* Run one admin API request as the operator (the command line), on store
 * st without a running gateway: path as after "/api/v1" ("/servers",
 * "/endpoints/SLUG"), body borrowed (may be NULL). Returns the HTTP status
 * the API would answer; *reply is its JSON body (NULL for none; decref it)
 * and err its error message (""). What is made is recorded as made by
 * "cli"; a running gateway sees it at its next start. */
int tk_admin_run_local(const tk_config_t *cfg, tk_store_t *st, enum evhttp_cmd_type cmd,
                       const char *path, json_t *body, json_t **reply, char *err,
                       size_t errlen) TK_WUR;

/* Store endpoint slug's tool selection (applied by a gateway at its next
 * start, or at once through the API). */
int tk_admin_store_tools(tk_store_t *st, const char *slug, const json_t *allow,
                         const json_t *deny) TK_WUR;

#endif
