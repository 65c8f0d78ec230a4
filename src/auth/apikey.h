/* SPDX-License-Identifier: Apache-2.0 */
/*
 * API keys: "tk_<id>_<secret>", where id is 16 hex digits (public, the
 * database key, safe to log) and secret is 64 hex digits (256 random bits,
 * shown once at creation, stored only as a bcrypt hash). Generation, parsing
 * and bcrypt hashing/verification (libxcrypt). Verification costs a bcrypt
 * (tens of milliseconds): callers run it off the event loop and cache the
 * outcome (see keyauth.h).
 */
#ifndef TK_AUTH_APIKEY_H
#define TK_AUTH_APIKEY_H

#include <stddef.h>

#include "core/core.h"

#define TK_APIKEY_ID_LEN 16
#define TK_APIKEY_SECRET_LEN 64
#define TK_APIKEY_LEN (3 + TK_APIKEY_ID_LEN + 1 + TK_APIKEY_SECRET_LEN) /* 84 */
#define TK_APIKEY_BCRYPT_COST 10
#define TK_APIKEY_HASH_MAX 128

/* Make a new key: key (TK_APIKEY_LEN+1 bytes) and its id (TK_APIKEY_ID_LEN+1). */
int tk_apikey_generate(char *key, char *id) TK_WUR;

/* Split a presented token. Returns TK_OK only for the exact format; id and
 * secret receive copies (sizes as above, NUL-terminated). */
int tk_apikey_parse(const char *token, size_t len, char *id, char *secret) TK_WUR;

/* bcrypt hash of a secret into out (TK_APIKEY_HASH_MAX bytes). */
int tk_apikey_hash(const char *secret, char *out, size_t outlen) TK_WUR;

/* Whether secret matches the stored bcrypt hash (constant-time compare). */
int tk_apikey_verify(const char *secret, const char *hash);

#endif
