/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWT bearer tokens (libjwt): HS256 only — the algorithm is pinned, so
 * "none", other HMACs and public-key algorithms are refused whatever the
 * token's header says. Signing keys must be at least 256 bits. Tokens expire
 * within TK_JWT_MAX_TTL_S of being issued, carry a jti (checked against the
 * revocation list by the caller), and are checked for issuer and audience.
 */
#ifndef TK_AUTH_JWT_H
#define TK_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define TK_JWT_MIN_KEY 32        /* bytes: 256 bits */
#define TK_JWT_MAX_TTL_S 43200   /* 12 h */
#define TK_JWT_SKEW_S 60         /* clock skew tolerated on iat/nbf */
#define TK_JWT_MAX_LEN 8192
#define TK_JWT_FIELD_MAX 128

typedef struct tk_jwt_keys {
    const unsigned char *key;
    size_t keylen;
    const char *issuer;
    const char *audience;
} tk_jwt_keys_t;

typedef struct tk_jwt_claims {
    char sub[TK_JWT_FIELD_MAX];
    char jti[TK_JWT_FIELD_MAX];
    char endpoint[TK_JWT_FIELD_MAX]; /* "tk_endpoint" claim: slug or "*" */
    int64_t exp;                     /* seconds since the epoch */
} tk_jwt_claims_t;

/* Issue a token for sub on endpoint, valid ttl_s (<= TK_JWT_MAX_TTL_S) from
 * now_s. *out is heap (free it); jti_out (TK_JWT_FIELD_MAX) gets its id. */
int tk_jwt_issue(const tk_jwt_keys_t *k, const char *sub, const char *endpoint, uint32_t ttl_s,
                 int64_t now_s, char **out) TK_WUR;

/* Verify signature (HS256 only), iss, aud, exp (required, in the future,
 * at most TK_JWT_MAX_TTL_S after iat), iat/nbf, jti and sub. On failure
 * returns TK_EINVAL and *why says which check failed (never token text). */
int tk_jwt_verify(const tk_jwt_keys_t *k, const char *token, size_t len, int64_t now_s,
                  tk_jwt_claims_t *out, const char **why) TK_WUR;

/* Cheap shape test: three base64url parts; no verification. */
int tk_jwt_looks_like(const char *token, size_t len);

#endif
