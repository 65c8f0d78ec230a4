/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dashboard passwords: the password policy and bcrypt hashing (libxcrypt).
 * Policy: 12 to 256 bytes, no NUL byte, not one character repeated, not on
 * the shipped list of common passwords (share/common-passwords.txt, built
 * into the binary; compared without regard to case, also after trailing
 * digits and punctuation are stripped), and not containing the local part
 * of the account's e-mail address. bcrypt reads only 72 bytes, so the
 * password is first reduced to base64(SHA-256(password)) (44 bytes) and that
 * is hashed: every byte of a long password counts. Hashing and verifying
 * take a quarter of a second or more at cost 12: never call them on the
 * event loop.
 * The same bcrypt primitive hashes API keys (tk_bcrypt_hash).
 */
#ifndef TK_AUTH_PASSWORD_H
#define TK_AUTH_PASSWORD_H

#include <stddef.h>

#include "core/core.h"

#define TK_PASSWORD_MIN 12
#define TK_PASSWORD_MAX 256
#define TK_PASSWORD_COST_MIN 4 /* tests only; configs default to 12 */
#define TK_PASSWORD_COST_DEFAULT 12
#define TK_PASSWORD_HASH_MAX 128

/* NULL if password (len bytes, need not be NUL-terminated) satisfies the
 * policy for an account with this e-mail address (may be NULL); otherwise a
 * static sentence saying which rule failed (it never quotes the password). */
const char *tk_password_check(const char *password, size_t len, const char *email);

/* bcrypt ($2b$, cost 4..31) of password into out (TK_PASSWORD_HASH_MAX
 * bytes). TK_EINVAL: bad cost or a password outside the length bounds. */
int tk_password_hash(const char *password, size_t len, unsigned cost, char *out,
                     size_t outlen) TK_WUR;

/* Whether password matches hash (from tk_password_hash); constant-time
 * compare. A NULL or malformed hash never matches and returns at once:
 * callers that must not reveal whether an account exists verify against a
 * dummy hash of the same cost instead. */
int tk_password_verify(const char *password, size_t len, const char *hash);

/* The raw bcrypt primitive over a NUL-terminated secret (at most 72 bytes
 * count): hash into out, or check against hash (constant-time compare). */
int tk_bcrypt_hash(const char *secret, unsigned cost, char *out, size_t outlen) TK_WUR;
int tk_bcrypt_verify(const char *secret, const char *hash);

#endif
