/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OpenID Connect relying party for dashboard sign-in: discovery
 * (<issuer>/.well-known/openid-configuration, whose "issuer" must equal the
 * configured one), the authorization code flow with PKCE (S256), and ID
 * token verification with cjose against the provider's JWKS: the "alg" must
 * be RS256 or ES256 and one the provider advertises ("none" and HMAC are
 * refused), the key is chosen by "kid" (and must match the alg's key type),
 * and iss, aud (and azp when several audiences), exp, iat and nonce are
 * checked. Every outbound request goes through the SSRF guard (net/ssrf.h:
 * the issuer must be in outbound.allow_cidrs when it is private), follows no
 * redirect, and is capped in size and time.
 *
 * The tk_oidc_t calls block (libcurl easy): run them on a worker thread,
 * never on the event loop; one thread at a time per object. The client
 * secret is sent only to the token endpoint (HTTP Basic) and never logged.
 */
#ifndef TK_AUTH_OIDC_H
#define TK_AUTH_OIDC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/core.h"

#define TK_OIDC_RANDOM_LEN 43 /* base64url of 32 random bytes */

typedef struct tk_oidc tk_oidc_t;

/* Who the provider says signed in. */
typedef struct tk_oidc_identity {
    char sub[256];
    char email[256]; /* "" if the token has none */
    int email_verified;
} tk_oidc_identity_t;

/* cfg->oidc_issuer must be set; cfg is borrowed. No I/O here. */
tk_oidc_t *tk_oidc_create(const tk_config_t *cfg);
void tk_oidc_destroy(tk_oidc_t *o);

/* base64url of 32 random bytes into out (TK_OIDC_RANDOM_LEN + 1 bytes):
 * state, nonce and PKCE verifiers. */
int tk_oidc_random(char *out) TK_WUR;
/* The S256 challenge of a PKCE verifier (TK_OIDC_RANDOM_LEN + 1 bytes). */
void tk_oidc_challenge(const char *verifier, char *out);

/* Load discovery and the JWKS if not yet loaded, then build the
 * authorization request URL (heap, free()). Blocks. */
int tk_oidc_auth_url(tk_oidc_t *o, const char *state, const char *nonce, const char *challenge,
                     char **url, char *err, size_t errlen) TK_WUR;

/* Exchange code (with the PKCE verifier) at the token endpoint and verify
 * the ID token it returns (nonce, now_s). Blocks. TK_EINVAL with err saying
 * why (no secrets in it) for any refusal. */
int tk_oidc_redeem(tk_oidc_t *o, const char *code, const char *verifier, const char *nonce,
                   int64_t now_s, tk_oidc_identity_t *out, char *err, size_t errlen) TK_WUR;

/* Verify an ID token (compact JWS, len bytes) against jwks ({"keys":[...]})
 * with the algorithms in algs (array of strings; only RS256 and ES256 count).
 * Pure: no I/O. TK_OK and *out, or TK_EINVAL and *why. */
int tk_oidc_verify_id_token(const char *token, size_t len, const json_t *jwks, const json_t *algs,
                            const char *issuer, const char *client_id, const char *nonce,
                            int64_t now_s, tk_oidc_identity_t *out, const char **why) TK_WUR;

#endif
