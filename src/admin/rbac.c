/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The role x action decision table and scope helpers (see rbac.h).
 */
#include "admin/rbac.h"

#include <string.h>

/* Per action: the lowest role allowed on anyone's object, and the lowest
 * allowed on the caller's own object (TK_ROLE_COUNT: nobody). */
static const struct {
    tk_role_t any;
    tk_role_t own;
} table[TK_ACT_COUNT] = {
    [TK_ACT_READ] = {TK_ROLE_VIEWER, TK_ROLE_VIEWER},
    [TK_ACT_MANAGE_USERS] = {TK_ROLE_ADMIN, TK_ROLE_ADMIN},
    [TK_ACT_MANAGE_OWNERS] = {TK_ROLE_OWNER, TK_ROLE_OWNER},
    [TK_ACT_KEY_READ] = {TK_ROLE_ADMIN, TK_ROLE_VIEWER},
    [TK_ACT_KEY_CREATE] = {TK_ROLE_COUNT, TK_ROLE_MEMBER},
    [TK_ACT_KEY_REVOKE] = {TK_ROLE_ADMIN, TK_ROLE_MEMBER},
    [TK_ACT_ENDPOINT_WRITE] = {TK_ROLE_ADMIN, TK_ROLE_MEMBER},
    [TK_ACT_SERVER_WRITE] = {TK_ROLE_ADMIN, TK_ROLE_MEMBER},
};

int tk_rbac_allowed(tk_role_t role, tk_action_t act, int is_owner)
{
    if ((int)role <= (int)TK_ROLE_NONE || (int)role >= (int)TK_ROLE_COUNT || (int)act < 0 ||
        (int)act >= (int)TK_ACT_COUNT)
        return 0;
    if (role >= table[act].any)
        return 1;
    return is_owner && role >= table[act].own;
}

static const char *const role_names[TK_ROLE_COUNT] = {"none", "viewer", "member", "admin", "owner"};

tk_role_t tk_role_parse(const char *s)
{
    for (int r = TK_ROLE_VIEWER; s != NULL && r < TK_ROLE_COUNT; r++)
        if (strcmp(s, role_names[r]) == 0)
            return (tk_role_t)r;
    return TK_ROLE_NONE;
}

const char *tk_role_name(tk_role_t r)
{
    return (int)r >= 0 && (int)r < (int)TK_ROLE_COUNT ? role_names[r] : "none";
}

int tk_scopes_has(const char *scopes, const char *scope)
{
    if (scopes == NULL || scopes[0] == '\0')
        return strcmp(scope, TK_SCOPE_MCP) == 0;
    size_t want = strlen(scope);
    const char *p = scopes;
    while (*p != '\0') {
        size_t n = strcspn(p, " ");
        if (n == want && strncmp(p, scope, n) == 0)
            return 1;
        p += n;
        p += strspn(p, " ");
    }
    return 0;
}

int tk_scopes_valid(const char *scopes)
{
    if (scopes == NULL || scopes[0] == '\0' || scopes[0] == ' ')
        return 0;
    const char *p = scopes;
    int words = 0;
    while (*p != '\0') {
        size_t n = strcspn(p, " ");
        int known = (n == 3 && strncmp(p, TK_SCOPE_MCP, 3) == 0) ||
                    (n == 5 && strncmp(p, TK_SCOPE_ADMIN, 5) == 0);
        if (!known || ++words > 8)
            return 0;
        p += n;
        if (*p == ' ') {
            p++;
            if (*p == '\0' || *p == ' ')
                return 0;
        }
    }
    return 1;
}
