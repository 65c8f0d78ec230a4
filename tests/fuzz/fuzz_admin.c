/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the admin API's pure input checks (src/admin/rbac.c and the
 * validators in src/admin/api.c), which see client-supplied scopes, roles,
 * ids, e-mails and tool patterns. The input is split at its first three
 * newlines into a scope list, a role/id/e-mail string, a scope word and a
 * JSON text for the pattern check. Checks: a valid scope list consists only
 * of "mcp" and "admin" separated by single spaces, and tk_scopes_has agrees
 * with a plain word search of it; a parsed role names itself; the decision
 * table is monotonic (a higher role, or owning the object, never loses a
 * permission); an accepted id uses only [a-z0-9_-]; an accepted e-mail has
 * no control characters or spaces; the pattern check never crashes on any
 * JSON; an endpoint body for POST /api/v1/endpoints (the JSON, with the
 * role/id string as slug) is accepted only with a valid slug and valid
 * server names, and everything it returns is freed.
 */
#include <string.h>

#include <jansson.h>

#include "admin/api.h"
#include "admin/rbac.h"
#include "config/config.h"
#include "fuzz.h"

#define MAX_PART 4096

static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)) != NULL; p++)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

static void check_scopes(const char *scopes, const char *word)
{
    int valid = tk_scopes_valid(scopes);
    if (valid) {
        for (const char *p = scopes; *p;) {
            size_t n = strcspn(p, " ");
            FUZZ_CHECK((n == 3 && !strncmp(p, "mcp", 3)) || (n == 5 && !strncmp(p, "admin", 5)));
            p += n;
            if (*p == ' ')
                FUZZ_CHECK(*++p != ' ' && *p != '\0');
        }
    }
    if (scopes[0] != '\0' && word[0] != '\0' && strchr(word, ' ') == NULL)
        FUZZ_CHECK(tk_scopes_has(scopes, word) == has_word(scopes, word));
    FUZZ_CHECK(tk_scopes_has("", "mcp") && !tk_scopes_has("", "admin"));
}

static void check_roles(const char *s)
{
    tk_role_t r = tk_role_parse(s);
    if (r != TK_ROLE_NONE)
        FUZZ_CHECK(strcmp(tk_role_name(r), s) == 0);
    for (int a = 0; a < TK_ACT_COUNT; a++)
        for (int role = 0; role < TK_ROLE_COUNT; role++) {
            int any = tk_rbac_allowed((tk_role_t)role, (tk_action_t)a, 0);
            int own = tk_rbac_allowed((tk_role_t)role, (tk_action_t)a, 1);
            FUZZ_CHECK(!any || own);
            if (role + 1 < TK_ROLE_COUNT) {
                FUZZ_CHECK(!any || tk_rbac_allowed((tk_role_t)(role + 1), (tk_action_t)a, 0));
                FUZZ_CHECK(!own || tk_rbac_allowed((tk_role_t)(role + 1), (tk_action_t)a, 1));
            }
        }
    if (tk_admin_valid_id(s))
        FUZZ_CHECK(strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(s) &&
                   strlen(s) >= 1 && strlen(s) <= 64);
    if (tk_admin_valid_email(s))
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
            FUZZ_CHECK(*p > 0x20 && *p != 0x7f);
}

static void check_endpoint(const char *slug, json_t *body)
{
    tk_endpoint_conf_t *ep = NULL;
    char **names = NULL, err[600], why[200];
    size_t n = 0;
    if (tk_config_parse_endpoint("body", slug, body, &ep, &names, &n, err, sizeof(err)) != TK_OK) {
        FUZZ_CHECK(ep == NULL && names == NULL && n == 0);
        return;
    }
    FUZZ_CHECK(tk_config_check_name(slug, 1, why, sizeof(why)) == TK_OK);
    FUZZ_CHECK(strcmp(ep->slug, slug) == 0 && ep->servers == NULL);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(tk_config_check_name(names[i], 0, why, sizeof(why)) == TK_OK);
        free(names[i]);
    }
    free(names);
    tk_config_endpoint_free(ep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4 * MAX_PART)
        return 0;
    const char *parts[4];
    char *buf = fuzz_split(data, size, parts, 4);
    check_scopes(parts[0], parts[2]);
    check_roles(parts[1]);
    json_t *j = json_loads(parts[3], JSON_DECODE_ANY, NULL);
    (void)tk_admin_patterns_valid(j);
    check_endpoint(parts[1], j);
    json_decref(j);
    free(buf);
    return 0;
}
