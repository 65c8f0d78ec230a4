/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/admin/rbac.c: every role x action x ownership cell of
 * the decision table against an expected table written out here by hand,
 * out-of-range roles and actions refused, role names round-tripping, and the
 * scope helpers (the empty-scopes default, word matching, validation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "admin/rbac.h"

/* expected[action][role][is_owner], roles in order none, viewer, member,
 * admin, owner */
static const int expected[TK_ACT_COUNT][TK_ROLE_COUNT][2] = {
    [TK_ACT_READ] = {{0, 0}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
    [TK_ACT_MANAGE_USERS] = {{0, 0}, {0, 0}, {0, 0}, {1, 1}, {1, 1}},
    [TK_ACT_MANAGE_OWNERS] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {1, 1}},
    [TK_ACT_KEY_READ] = {{0, 0}, {0, 1}, {0, 1}, {1, 1}, {1, 1}},
    [TK_ACT_KEY_CREATE] = {{0, 0}, {0, 0}, {0, 1}, {0, 1}, {0, 1}},
    [TK_ACT_KEY_REVOKE] = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 1}},
    [TK_ACT_ENDPOINT_WRITE] = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 1}},
    [TK_ACT_SERVER_WRITE] = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 1}},
};

static void test_table_exhaustive(void **state)
{
    (void)state;
    int cells = 0;
    for (int a = 0; a < TK_ACT_COUNT; a++)
        for (int r = 0; r < TK_ROLE_COUNT; r++)
            for (int own = 0; own < 2; own++) {
                int got = tk_rbac_allowed((tk_role_t)r, (tk_action_t)a, own);
                if (got != expected[a][r][own])
                    fail_msg("action %d role %s owner %d: got %d", a, tk_role_name((tk_role_t)r),
                             own, got);
                cells++;
            }
    assert_int_equal(cells, TK_ACT_COUNT * TK_ROLE_COUNT * 2);
}

static void test_out_of_range_refused(void **state)
{
    (void)state;
    assert_false(tk_rbac_allowed((tk_role_t)-1, TK_ACT_READ, 1));
    assert_false(tk_rbac_allowed(TK_ROLE_COUNT, TK_ACT_READ, 1));
    assert_false(tk_rbac_allowed((tk_role_t)99, TK_ACT_READ, 1));
    assert_false(tk_rbac_allowed(TK_ROLE_OWNER, TK_ACT_COUNT, 1));
    assert_false(tk_rbac_allowed(TK_ROLE_OWNER, (tk_action_t)-1, 1));
}

static void test_role_names(void **state)
{
    (void)state;
    for (int r = TK_ROLE_VIEWER; r < TK_ROLE_COUNT; r++)
        assert_int_equal(tk_role_parse(tk_role_name((tk_role_t)r)), r);
    assert_int_equal(tk_role_parse("Owner"), TK_ROLE_NONE);
    assert_int_equal(tk_role_parse("none"), TK_ROLE_NONE);
    assert_int_equal(tk_role_parse(""), TK_ROLE_NONE);
    assert_int_equal(tk_role_parse(NULL), TK_ROLE_NONE);
    assert_int_equal(tk_role_parse("admin "), TK_ROLE_NONE);
    assert_string_equal(tk_role_name((tk_role_t)42), "none");
}

static void test_scopes(void **state)
{
    (void)state;
    assert_true(tk_scopes_has(NULL, "mcp"));
    assert_true(tk_scopes_has("", "mcp"));
    assert_false(tk_scopes_has("", "admin"));
    assert_true(tk_scopes_has("admin", "admin"));
    assert_false(tk_scopes_has("admin", "mcp"));
    assert_true(tk_scopes_has("mcp admin", "admin"));
    assert_true(tk_scopes_has("mcp admin", "mcp"));
    assert_false(tk_scopes_has("administrator", "admin"));
    assert_false(tk_scopes_has("adm", "admin"));
    assert_true(tk_scopes_valid("mcp"));
    assert_true(tk_scopes_valid("mcp admin"));
    assert_false(tk_scopes_valid(""));
    assert_false(tk_scopes_valid(NULL));
    assert_false(tk_scopes_valid("mcp  admin"));
    assert_false(tk_scopes_valid(" mcp"));
    assert_false(tk_scopes_valid("mcp "));
    assert_false(tk_scopes_valid("root"));
    assert_false(tk_scopes_valid("mcp,admin"));
    assert_false(tk_scopes_valid("mcp mcp mcp mcp mcp mcp mcp mcp mcp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_exhaustive),
        cmocka_unit_test(test_out_of_range_refused),
        cmocka_unit_test(test_role_names),
        cmocka_unit_test(test_scopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
