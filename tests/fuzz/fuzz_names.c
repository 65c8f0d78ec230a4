/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes tool-name namespacing and allow/deny globbing (src/mcp/names.c),
 * which see upstream servers' tool names and operator patterns. The input is
 * split at its first two newlines into a server name, an upstream tool name
 * and a glob pattern (each ends early at a NUL byte, as a C string would). Checks tk_ns_make's
 * contract (the result fits TK_NS_MAX, starts with "server__", is "server__name" when that fits and
 * is exactly TK_NS_MAX long when it does not, the same every time) writing into a heap buffer of
 * exactly TK_NS_MAX+1 bytes so ASan sees any overrun, and tk_glob_match's basic laws ('*' matches
 * anything, a star-free pattern matches itself, "*x*" matches anything containing x).
 */
#include <string.h>

#include "fuzz.h"
#include "mcp/names.h"

#define MAX_PART 4096

static void check_ns(const char *server, const char *name)
{
    char *out = malloc(TK_NS_MAX + 1);
    char *again = malloc(TK_NS_MAX + 1);
    FUZZ_CHECK(out != NULL && again != NULL);
    int rc = tk_ns_make(server, name, out, TK_NS_MAX + 1);
    if (rc == TK_OK) {
        size_t sl = strlen(server), nl = strlen(name), ol = strlen(out);
        FUZZ_CHECK(ol <= TK_NS_MAX);
        FUZZ_CHECK(strncmp(out, server, sl) == 0 && strncmp(out + sl, TK_NS_SEP, 2) == 0);
        if (sl + 2 + nl <= TK_NS_MAX)
            FUZZ_CHECK(ol == sl + 2 + nl && strcmp(out + sl + 2, name) == 0);
        else
            FUZZ_CHECK(ol == TK_NS_MAX);
        FUZZ_CHECK(tk_ns_make(server, name, again, TK_NS_MAX + 1) == TK_OK);
        FUZZ_CHECK(strcmp(out, again) == 0);
        FUZZ_CHECK(tk_glob_match(out, out) || strchr(out, '*') != NULL);
    } else {
        FUZZ_CHECK(rc == TK_EINVAL);
    }
    /* too small a buffer is refused, not overrun */
    FUZZ_CHECK(tk_ns_make(server, name, again, TK_NS_MAX) == TK_EINVAL);
    free(again);
    free(out);
}

static void check_glob(const char *pattern, const char *s)
{
    (void)tk_glob_match(pattern, s);
    FUZZ_CHECK(tk_glob_match("*", s) == 1);
    if (strchr(s, '*') == NULL)
        FUZZ_CHECK(tk_glob_match(s, s) == 1);
    if (strchr(pattern, '*') == NULL && strlen(pattern) < MAX_PART) {
        char wrapped[MAX_PART + 3];
        tk_snprintf(wrapped, sizeof(wrapped), "*%s*", pattern);
        FUZZ_CHECK(tk_glob_match(wrapped, s) == (strstr(s, pattern) != NULL));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 3 * MAX_PART)
        return 0;
    /* one NUL-terminated copy, cut into three C strings at the first two '\n' */
    const char *parts[3];
    char *buf = fuzz_split(data, size, parts, 3);
    const char *server = parts[0], *name = parts[1], *pattern = parts[2];

    check_ns(server, name);
    check_glob(pattern, name);
    check_glob(server, name);
    free(buf);
    return 0;
}
