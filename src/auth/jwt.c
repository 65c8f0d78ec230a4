/* SPDX-License-Identifier: Apache-2.0 */
/* HS256 JWT issue and verification on top of libjwt, algorithm pinned. */
#include "auth/jwt.h"

#include <jwt.h>
#include <stdlib.h>
#include <string.h>

int tk_jwt_looks_like(const char *t, size_t len)
{
    size_t dots = 0;
    if (len < 10 || len > TK_JWT_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == '.')
            dots++;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_'))
            return 0;
    }
    return dots == 2;
}

int tk_jwt_issue(const tk_jwt_keys_t *k, const char *sub, const char *endpoint, uint32_t ttl_s,
                 int64_t now_s, char **out)
{
    *out = NULL;
    if (k->keylen < TK_JWT_MIN_KEY || ttl_s == 0 || ttl_s > TK_JWT_MAX_TTL_S || sub == NULL ||
        endpoint == NULL || strlen(sub) >= TK_JWT_FIELD_MAX ||
        strlen(endpoint) >= TK_JWT_FIELD_MAX)
        return TK_EINVAL;
    unsigned char raw[16];
    char jti[33];
    if (tk_random_bytes(raw, sizeof(raw)) != TK_OK)
        return TK_EIO;
    tk_hex_encode(raw, sizeof(raw), jti);
    jwt_t *j = NULL;
    int rc = TK_EIO;
    if (jwt_new(&j) != 0)
        return TK_ENOMEM;
    if (jwt_add_grant(j, "iss", k->issuer) || jwt_add_grant(j, "aud", k->audience) ||
        jwt_add_grant(j, "sub", sub) || jwt_add_grant(j, "jti", jti) ||
        jwt_add_grant(j, "tk_endpoint", endpoint) || jwt_add_grant_int(j, "iat", (long)now_s) ||
        jwt_add_grant_int(j, "exp", (long)(now_s + ttl_s)) ||
        jwt_set_alg(j, JWT_ALG_HS256, k->key, (int)k->keylen))
        goto out;
    char *s = jwt_encode_str(j);
    if (s == NULL)
        goto out;
    *out = tk_strdup(s);
    free(s);
    rc = TK_OK;
out:
    jwt_free(j);
    return rc;
}

static int copy_claim(jwt_t *j, const char *name, char *dst, size_t len)
{
    const char *v = jwt_get_grant(j, name);
    if (v == NULL || v[0] == '\0' || strlen(v) >= len)
        return -1;
    tk_snprintf(dst, len, "%s", v);
    return 0;
}

int tk_jwt_verify(const tk_jwt_keys_t *k, const char *token, size_t len, int64_t now_s,
                  tk_jwt_claims_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = "malformed token";
    if (!tk_jwt_looks_like(token, len) || k->keylen < TK_JWT_MIN_KEY)
        return TK_EINVAL;
    char *copy = tk_strndup(token, len);
    jwt_t *j = NULL;
    int rc = TK_EINVAL;
    if (jwt_decode(&j, copy, k->key, (int)k->keylen) != 0 || j == NULL) {
        *why = "bad signature or encoding";
        goto out;
    }
    /* the algorithm is ours to choose, not the token's */
    if (jwt_get_alg(j) != JWT_ALG_HS256) {
        *why = "algorithm is not HS256";
        goto out;
    }
    const char *iss = jwt_get_grant(j, "iss"), *aud = jwt_get_grant(j, "aud");
    if (iss == NULL || strcmp(iss, k->issuer) != 0) {
        *why = "wrong issuer";
        goto out;
    }
    if (aud == NULL || strcmp(aud, k->audience) != 0) {
        *why = "wrong audience";
        goto out;
    }
    long exp = jwt_get_grant_int(j, "exp");
    if (exp <= 0) {
        *why = "no expiry";
        goto out;
    }
    long iat = jwt_get_grant_int(j, "iat");
    if (iat <= 0 || iat > now_s + TK_JWT_SKEW_S) {
        *why = "missing or future iat";
        goto out;
    }
    if (exp - iat > TK_JWT_MAX_TTL_S) {
        *why = "lifetime longer than 12 h";
        goto out;
    }
    if (exp <= now_s) {
        *why = "expired";
        goto out;
    }
    long nbf = jwt_get_grant_int(j, "nbf");
    if (nbf > now_s + TK_JWT_SKEW_S) {
        *why = "not yet valid";
        goto out;
    }
    if (copy_claim(j, "jti", out->jti, sizeof(out->jti)) ||
        copy_claim(j, "sub", out->sub, sizeof(out->sub)) ||
        copy_claim(j, "tk_endpoint", out->endpoint, sizeof(out->endpoint))) {
        *why = "missing jti, sub or tk_endpoint";
        goto out;
    }
    out->exp = exp;
    rc = TK_OK;
    *why = NULL;
out:
    jwt_free(j);
    free(copy);
    if (rc != TK_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
