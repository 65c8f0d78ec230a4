/* SPDX-License-Identifier: Apache-2.0 */
/* Namespacing of upstream names and glob matching for tool filters. */
#include "mcp/names.h"

#include <string.h>

#include <openssl/sha.h>

int tk_ns_make(const char *server, const char *name, char *out, size_t outlen)
{
    size_t sl = strlen(server), nl = strlen(name);
    if (outlen < TK_NS_MAX + 1 || sl == 0 || nl == 0 || sl + 2 + 1 + 8 + 1 > TK_NS_MAX)
        return TK_EINVAL;
    if (sl + 2 + nl <= TK_NS_MAX) {
        tk_snprintf(out, outlen, "%s" TK_NS_SEP "%s", server, name);
        return TK_OK;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const unsigned char *)name, nl, md);
    tk_hex_encode(md, 4, hex);
    size_t keep = TK_NS_MAX - sl - 2 - 1 - 8;
    tk_snprintf(out, outlen, "%s" TK_NS_SEP "%.*s_%s", server, (int)keep, name, hex);
    return TK_OK;
}

int tk_glob_match(const char *p, const char *s)
{
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            mark = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++mark;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}
