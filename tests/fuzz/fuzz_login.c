/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes what a dashboard sign-in parses from the network before any secret
 * is compared: the Cookie header (tk_cookie_find, src/admin/session.c), the
 * password policy (tk_password_check, src/auth/password.c) and ID token
 * verification (tk_oidc_verify_id_token, src/auth/oidc.c: cjose's JWS
 * parsing, the pinned algorithms, the key choice and every claim check)
 * against a JWKS of a key made at start-up. Checks: a found cookie value
 * lies inside the header and holds no ';'; verification never accepts
 * random input (it cannot carry a signature of the fresh key); nothing reads
 * past the input (ASan).
 */
#include <string.h>

#include <cjose/cjose.h>
#include <jansson.h>

#include "admin/session.h"
#include "auth/oidc.h"
#include "auth/password.h"
#include "fuzz.h"

static json_t *jwks, *algs;

static void init_keys(void)
{
    cjose_err ce;
    static const uint8_t e[] = {1, 0, 1};
    cjose_jwk_t *k = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &ce);
    FUZZ_CHECK(k != NULL);
    char *pub = cjose_jwk_to_json(k, false, &ce);
    json_t *j = json_loads(pub, 0, NULL);
    json_object_set_new(j, "kid", json_string("k1"));
    jwks = json_pack("{s:[o]}", "keys", j);
    algs = json_pack("[s,s]", "RS256", "ES256");
    free(pub);
    cjose_jwk_release(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    if (jwks == NULL)
        init_keys();
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';

    const char *v;
    size_t len;
    if (tk_cookie_find(s, TK_SESSION_COOKIE, &v, &len) == 0) {
        FUZZ_CHECK(v >= s && v + len <= s + strlen(s));
        FUZZ_CHECK(memchr(v, ';', len) == NULL);
    }
    (void)tk_password_check(s, size, "fuzz@example.com");

    tk_oidc_identity_t id;
    const char *why = NULL;
    int rc = tk_oidc_verify_id_token(s, strlen(s), jwks, algs, "https://id.example.com", "tumiki",
                                     "nonce", 1700000000, &id, &why);
    FUZZ_CHECK(rc != TK_OK && why != NULL);
    free(s);
    return 0;
}
