/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for ID token verification (src/auth/oidc.c) with tokens signed
 * by cjose: a good RS256 and ES256 token passes and yields sub, email and
 * email_verified; refused are alg "none", HS256 (signed with the public
 * key's modulus as an HMAC secret would be: the classic confusion), an alg
 * the provider does not advertise, an unknown kid, a key of the wrong type,
 * a tampered payload, the wrong issuer, audience (and azp with several
 * audiences), an expired token, one issued in the future, a wrong or
 * missing nonce, and malformed serialisations or JWKS keys that would make
 * Debian's libcjose abort (a base64url length of 1 mod 4 hits an assert). Also PKCE: the S256
 * challenge of RFC 7636's example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <cmocka.h>
#include <jansson.h>

#include "auth/oidc.h"

#define ISS "https://id.example.com"
#define AUD "tumiki"
#define NONCE "n-0S6_WzA2Mj"
#define NOW 1700000000

typedef struct keys {
    cjose_jwk_t *rsa, *ec;
    json_t *jwks;
} keys_t;

static json_t *public_jwk(cjose_jwk_t *k, const char *kid)
{
    cjose_err ce;
    char *s = cjose_jwk_to_json(k, false, &ce);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    json_object_set_new(j, "kid", json_string(kid));
    return j;
}

static int setup(void **state)
{
    cjose_err ce;
    keys_t *k = calloc(1, sizeof(*k));
    static const uint8_t e[] = {1, 0, 1};
    k->rsa = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &ce);
    k->ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &ce);
    k->jwks = json_pack("{s:[o,o]}", "keys", public_jwk(k->rsa, "r1"), public_jwk(k->ec, "e1"));
    *state = k;
    return k->rsa && k->ec ? 0 : -1;
}

static int teardown(void **state)
{
    keys_t *k = *state;
    cjose_jwk_release(k->rsa);
    cjose_jwk_release(k->ec);
    json_decref(k->jwks);
    free(k);
    return 0;
}

static json_t *claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:b}", "iss", ISS, "aud", AUD, "sub",
                     "user-42", "exp", (json_int_t)NOW + 300, "iat", (json_int_t)NOW, "nonce",
                     NONCE, "email", "carol@example.com", "email_verified", 1);
}

/* Compact JWS of c (stolen) signed with jwk under alg and kid. */
static char *sign(cjose_jwk_t *jwk, const char *alg, const char *kid, json_t *c)
{
    cjose_err ce;
    cjose_header_t *h = cjose_header_new(&ce);
    cjose_header_set(h, CJOSE_HDR_ALG, alg, &ce);
    if (kid)
        cjose_header_set(h, CJOSE_HDR_KID, kid, &ce);
    char *body = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    cjose_jws_t *jws = cjose_jws_sign(jwk, h, (const uint8_t *)body, strlen(body), &ce);
    const char *ser = NULL;
    char *out = NULL;
    if (jws && cjose_jws_export(jws, &ser, &ce))
        out = strdup(ser);
    cjose_jws_release(jws);
    cjose_header_release(h);
    free(body);
    return out;
}

static int verify(const keys_t *k, const char *tok, const char *algs, const char **why)
{
    tk_oidc_identity_t id;
    json_t *a = json_loads(algs, 0, NULL);
    int rc = tk_oidc_verify_id_token(tok, strlen(tok), k->jwks, a, ISS, AUD, NONCE, NOW, &id, why);
    json_decref(a);
    return rc;
}

static void expect_refused(const keys_t *k, char *tok, const char *reason)
{
    const char *why = NULL;
    assert_non_null(tok);
    assert_int_equal(verify(k, tok, "[\"RS256\",\"ES256\"]", &why), TK_EINVAL);
    assert_string_equal(why, reason);
    free(tok);
}

static void test_good_tokens(void **state)
{
    keys_t *k = *state;
    tk_oidc_identity_t id;
    const char *why = "unset";
    char *t = sign(k->rsa, "RS256", "r1", claims());
    json_t *algs = json_pack("[s,s]", "RS256", "ES256");
    assert_int_equal(
        tk_oidc_verify_id_token(t, strlen(t), k->jwks, algs, ISS, AUD, NONCE, NOW, &id, &why),
        TK_OK);
    assert_string_equal(id.sub, "user-42");
    assert_string_equal(id.email, "carol@example.com");
    assert_true(id.email_verified);
    free(t);
    t = sign(k->ec, "ES256", "e1", claims());
    assert_int_equal(
        tk_oidc_verify_id_token(t, strlen(t), k->jwks, algs, ISS, AUD, NONCE, NOW, &id, &why),
        TK_OK);
    free(t);
    json_t *c = claims(); /* several audiences: azp must name us */
    json_object_set_new(c, "aud", json_pack("[s,s]", "other", AUD));
    json_object_set_new(c, "azp", json_string(AUD));
    t = sign(k->rsa, "RS256", "r1", c);
    assert_int_equal(
        tk_oidc_verify_id_token(t, strlen(t), k->jwks, algs, ISS, AUD, NONCE, NOW, &id, &why),
        TK_OK);
    free(t);
    json_decref(algs);
}

static void test_algorithms_and_keys(void **state)
{
    keys_t *k = *state;
    const char *why;
    /* alg none: header {"alg":"none"}, no signature */
    expect_refused(k, strdup("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkLmV4YW1wbGUuY29tIn0."),
                   "malformed ID token"); /* no signature at all */
    expect_refused(k,
                   strdup("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkLmV4YW1wbGUuY29tIn0.c2ln"),
                   "signing algorithm not accepted");
    cjose_err ce;
    cjose_jwk_t *hmac = cjose_jwk_create_oct_random(32, &ce);
    expect_refused(k, sign(hmac, "HS256", "r1", claims()), "signing algorithm not accepted");
    cjose_jwk_release(hmac);
    char *t = sign(k->ec, "ES256", "e1", claims());
    assert_int_equal(verify(k, t, "[\"RS256\"]", &why), TK_EINVAL); /* not advertised */
    assert_string_equal(why, "signing algorithm not accepted");
    free(t);
    /* segments cjose would abort on (base64url of length 1 mod 4), padding,
     * wrong segment counts: refused before cjose sees them */
    expect_refused(k, strdup("eyJhbGciOiJSUzI1NiJ9.a.bbbb"), "malformed ID token");
    expect_refused(k, strdup("eyJhbGciOiJSUzI1NiJ9.eyJzIjoxfQ==.bbbb"), "malformed ID token");
    expect_refused(k, strdup("eyJhbGciOiJSUzI1NiJ9.eyJzIjoxfQ"), "malformed ID token");
    expect_refused(k, strdup("eyJhbGciOiJSUzI1NiJ9.eyJzIjoxfQ.bbbb.cccc"), "malformed ID token");
    json_t *bad = json_deep_copy(k->jwks), *saved = k->jwks;
    json_object_set_new(json_array_get(json_object_get(bad, "keys"), 0), "n", json_string("abcde"));
    k->jwks = bad; /* a provider key cjose would abort on is skipped */
    expect_refused(k, sign(k->rsa, "RS256", "r1", claims()),
                   "no matching key in the provider's JWKS");
    k->jwks = saved;
    json_decref(bad);
    expect_refused(k, sign(k->rsa, "RS256", "nope", claims()),
                   "no matching key in the provider's JWKS");
    expect_refused(k, sign(k->rsa, "RS256", "e1", claims()), /* kid of the EC key */
                   "no matching key in the provider's JWKS");
    cjose_jwk_t *other = cjose_jwk_create_RSA_random(2048, NULL, 0, &ce);
    expect_refused(k, sign(other, "RS256", "r1", claims()), "bad signature");
    cjose_jwk_release(other);
    t = sign(k->rsa, "RS256", "r1", claims());
    char *dot = strchr(t, '.') + 1;
    dot[4] = dot[4] == 'A' ? 'B' : 'A'; /* tamper with the payload */
    expect_refused(k, t, "bad signature");
}

static void test_claims(void **state)
{
    keys_t *k = *state;
    static const struct {
        const char *key;
        const char *sval;
        json_int_t ival;
        const char *why;
    } cases[] = {
        {"iss", "https://evil.example.com", 0, "wrong issuer"},
        {"aud", "someone-else", 0, "wrong audience"},
        {"exp", NULL, NOW - 120, "expired"},
        {"iat", NULL, NOW + 3600, "issued in the future"},
        {"nonce", "replayed-nonce", 0, "wrong nonce"},
        {"sub", "", 0, "missing or oversized subject"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *c = claims();
        json_object_set_new(c, cases[i].key,
                            cases[i].sval ? json_string(cases[i].sval)
                                          : json_integer(cases[i].ival));
        expect_refused(k, sign(k->rsa, "RS256", "r1", c), cases[i].why);
    }
    json_t *c = claims();
    json_object_del(c, "nonce");
    expect_refused(k, sign(k->rsa, "RS256", "r1", c), "wrong nonce");
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "other", AUD)); /* no azp */
    expect_refused(k, sign(k->rsa, "RS256", "r1", c), "wrong audience");
}

static void test_pkce(void **state)
{
    (void)state;
    char ch[TK_OIDC_RANDOM_LEN + 1], r1[TK_OIDC_RANDOM_LEN + 1], r2[TK_OIDC_RANDOM_LEN + 1];
    tk_oidc_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", ch); /* RFC 7636 B */
    assert_string_equal(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_int_equal(tk_oidc_random(r1), TK_OK);
    assert_int_equal(tk_oidc_random(r2), TK_OK);
    assert_int_equal(strlen(r1), TK_OIDC_RANDOM_LEN);
    assert_string_not_equal(r1, r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_tokens),
        cmocka_unit_test(test_algorithms_and_keys),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_pkce),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
