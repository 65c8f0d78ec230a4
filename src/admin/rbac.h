/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Role-based access control: the roles a user holds in an organization
 * (owner > admin > member > viewer), the actions the admin API performs, and
 * the one decision table that says which role may perform which action, on
 * its own objects or on anyone's. Also API-key scopes ("mcp", "admin"). Pure
 * functions, no state: every admin route asks tk_rbac_allowed on the server
 * side before it touches the store.
 */
#ifndef TK_ADMIN_RBAC_H
#define TK_ADMIN_RBAC_H

#include "core/core.h"

typedef enum tk_role {
    TK_ROLE_NONE = 0, /* not a member of the organization */
    TK_ROLE_VIEWER,
    TK_ROLE_MEMBER,
    TK_ROLE_ADMIN,
    TK_ROLE_OWNER,
    TK_ROLE_COUNT
} tk_role_t;

typedef enum tk_action {
    TK_ACT_READ = 0,       /* list/read users, members, endpoints, servers */
    TK_ACT_MANAGE_USERS,   /* create/update/delete users, add/remove members */
    TK_ACT_MANAGE_OWNERS,  /* grant the owner role, change or remove an owner */
    TK_ACT_KEY_READ,       /* list API keys */
    TK_ACT_KEY_CREATE,     /* create an API key (always owned by the caller) */
    TK_ACT_KEY_REVOKE,     /* revoke an API key */
    TK_ACT_ENDPOINT_WRITE, /* create, change, delete an endpoint (and its tool selection) */
    TK_ACT_SERVER_WRITE,   /* create, change, delete an upstream server */
    TK_ACT_COUNT
} tk_action_t;

/* Whether `role` may perform `act` on an object; is_owner says whether the
 * object belongs to the caller (its own key, its own endpoint). Unknown
 * roles or actions are refused. */
int tk_rbac_allowed(tk_role_t role, tk_action_t act, int is_owner);

/* "owner", "admin", "member", "viewer" -> role; TK_ROLE_NONE for anything
 * else (including NULL). */
tk_role_t tk_role_parse(const char *s);
/* The role's name ("none" for TK_ROLE_NONE). */
const char *tk_role_name(tk_role_t r);

/* API-key scopes: a space-separated list. A key stored without scopes (NULL
 * or "") has the single scope "mcp", so keys made before scopes existed keep
 * working on MCP endpoints and never reach the admin API. */
#define TK_SCOPE_MCP "mcp"     /* use MCP endpoints */
#define TK_SCOPE_ADMIN "admin" /* call /api/v1 as the key's owner */
int tk_scopes_has(const char *scopes, const char *scope);
/* Whether every word of scopes is a known scope (and there is at least one
 * word, at most 8, each separated by single spaces). */
int tk_scopes_valid(const char *scopes);

#endif
