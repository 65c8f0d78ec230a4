/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names: namespacing of upstream tool and prompt names as "server__name",
 * kept within TK_NS_MAX characters (Cursor's limit), and glob matching for
 * endpoint allow/deny lists.
 *
 * Rule (deterministic, see docs/namespacing.md): if "server__name" fits, it
 * is used as is. Otherwise the name is cut so that
 * "server__" + prefix + "_" + 8 hex digits of SHA-256(name) is exactly
 * TK_NS_MAX characters. Two different upstream names of one server can then
 * collide only if their hashes share 32 bits; the catalogue keeps the first in
 * upstream order and logs the rest.
 */
#ifndef TK_NAMES_H
#define TK_NAMES_H

#include <stddef.h>

#include "core/core.h"

#define TK_NS_MAX 60
#define TK_NS_SEP "__"

/* Write the namespaced name into out (at least TK_NS_MAX+1 bytes).
 * Returns TK_EINVAL if the server name alone leaves no room. */
int tk_ns_make(const char *server, const char *name, char *out, size_t outlen) TK_WUR;

/* Glob match with '*' (any run, including empty) over the whole string. */
int tk_glob_match(const char *pattern, const char *s);

#endif
