/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key files: a secret key kept in a file of its own under the data
 * directory (the audit HMAC key, the vault master key), read if it exists,
 * else made once from 32 random bytes with mode 0600 (O_EXCL, fsync'd).
 * Errors name the path and the system's complaint, never key bytes.
 */
#ifndef TK_CORE_KEYFILE_H
#define TK_CORE_KEYFILE_H

#include <stddef.h>

#include "core/core.h"

#define TK_KEYFILE_NEW_LEN 32 /* bytes written into a new key file */

/* Read the key at path into key (at most cap bytes; *keylen receives the
 * length), or create the file with TK_KEYFILE_NEW_LEN random bytes when it
 * does not exist. `what` prefixes error messages ("audit", "vault").
 * TK_EINVAL: the file holds fewer than min bytes; TK_EIO: it cannot be read
 * or made. A symbolic link is refused (O_NOFOLLOW). */
int tk_keyfile_load_or_make(const char *path, unsigned char *key, size_t cap, size_t min,
                            size_t *keylen, const char *what, char *err, size_t errlen) TK_WUR;

#endif
