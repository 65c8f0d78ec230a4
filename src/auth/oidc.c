/* SPDX-License-Identifier: Apache-2.0 */
/* OpenID Connect relying party: discovery, PKCE, token exchange, ID token checks. */
#include "auth/oidc.h"

#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "net/ssrf.h"

#define MOD "oidc"
#define RESPONSE_MAX (1024 * 1024)
#define TIMEOUT_MS 10000L
#define CLOCK_SKEW_S 60

struct tk_oidc {
    const tk_config_t *cfg;
    json_t *disc; /* discovery document */
    json_t *jwks; /* {"keys": [...]} */
    json_t *algs; /* signing algorithms both sides accept */
};

tk_oidc_t *tk_oidc_create(const tk_config_t *cfg)
{
    tk_oidc_t *o = tk_calloc(1, sizeof(*o));
    o->cfg = cfg;
    return o;
}

void tk_oidc_destroy(tk_oidc_t *o)
{
    if (o == NULL)
        return;
    json_decref(o->disc);
    json_decref(o->jwks);
    json_decref(o->algs);
    free(o);
}

/* ---- encoding ---- */

static void b64url(const unsigned char *in, size_t n, char *out)
{
    unsigned char tmp[64];
    int len = EVP_EncodeBlock(tmp, in, (int)n);
    size_t j = 0;
    for (int i = 0; i < len && tmp[i] != '='; i++)
        out[j++] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : (char)tmp[i];
    out[j] = '\0';
}

int tk_oidc_random(char *out)
{
    unsigned char raw[32];
    if (tk_random_bytes(raw, sizeof(raw)) != TK_OK)
        return TK_EIO;
    b64url(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return TK_OK;
}

void tk_oidc_challenge(const char *verifier, char *out)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)verifier, strlen(verifier), md);
    b64url(md, sizeof(md), out);
}

/* ---- HTTP (blocking, worker thread) ---- */

typedef struct sink {
    char *buf;
    size_t len;
    int over;
} sink_t;

static size_t sink_write(char *p, size_t sz, size_t n, void *arg)
{
    sink_t *s = arg;
    size_t add = sz * n;
    if (s->len + add > RESPONSE_MAX) {
        s->over = 1;
        return 0;
    }
    s->buf = tk_realloc(s->buf, s->len + add + 1);
    memcpy(s->buf + s->len, p, add);
    s->len += add;
    s->buf[s->len] = '\0';
    return add;
}

/* Basic credentials: the form-urlencoded client id and secret (RFC 6749 2.3.1). */
static int set_client_auth(CURL *e, const tk_config_t *cfg)
{
    char *id = curl_easy_escape(e, cfg->oidc_client_id, 0);
    char *secret = curl_easy_escape(e, cfg->oidc_client_secret, 0);
    int ok = id && secret && curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_USERNAME, id) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_PASSWORD, secret) == CURLE_OK;
    if (secret)
        OPENSSL_cleanse(secret, strlen(secret));
    curl_free(id);
    curl_free(secret);
    return ok ? TK_OK : TK_EIO;
}

/* GET url (form NULL) or POST form to it with client credentials; the JSON
 * object it answers with 2xx into *out. */
static int fetch_json(tk_oidc_t *o, const char *url, const char *form, json_t **out, char *err,
                      size_t errlen)
{
    tk_ssrf_target_t t;
    char why[TK_SSRF_ERR_MAX];
    sink_t s = {0};
    long status = 0;
    int rc = TK_EIO;
    *out = NULL;
    memset(&t, 0, sizeof(t));
    if (tk_ssrf_resolve(o->cfg->ssrf, url, &t, why, sizeof(why)) != TK_OK) {
        tk_snprintf(err, errlen, "provider URL refused: %s", why);
        return TK_EINVAL;
    }
    CURL *e = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (e == NULL || tk_ssrf_pin_curl(e, &t) != TK_OK ||
        curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_write) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &s) != CURLE_OK ||
        (form != NULL && (curl_easy_setopt(e, CURLOPT_POSTFIELDS, form) != CURLE_OK ||
                          set_client_auth(e, o->cfg) != TK_OK))) {
        tk_snprintf(err, errlen, "cannot set up the request to %s", t.host);
        goto out;
    }
    CURLcode cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK || s.over || status < 200 || status > 299) {
        tk_snprintf(err, errlen, "%s from %s",
                    s.over           ? "response too large"
                    : cc != CURLE_OK ? curl_easy_strerror(cc)
                                     : "an HTTP error status",
                    t.host);
        if (status >= 300)
            tk_snprintf(err, errlen, "HTTP %ld from %s", status, t.host);
        goto out;
    }
    *out = json_loadb(s.buf ? s.buf : "", s.len, 0, NULL);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        tk_snprintf(err, errlen, "%s did not answer with a JSON object", t.host);
        rc = TK_EINVAL;
        goto out;
    }
    rc = TK_OK;
out:
    if (e)
        curl_easy_cleanup(e);
    curl_slist_free_all(hdrs);
    tk_ssrf_target_clear(&t);
    if (s.buf)
        OPENSSL_cleanse(s.buf, s.len);
    free(s.buf);
    return rc;
}

static const char *str_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int load_jwks(tk_oidc_t *o, char *err, size_t errlen)
{
    json_t *jwks;
    int rc = fetch_json(o, str_of(o->disc, "jwks_uri"), NULL, &jwks, err, errlen);
    if (rc != TK_OK)
        return rc;
    if (!json_is_array(json_object_get(jwks, "keys"))) {
        json_decref(jwks);
        tk_snprintf(err, errlen, "the provider's JWKS has no \"keys\" array");
        return TK_EINVAL;
    }
    json_decref(o->jwks);
    o->jwks = jwks;
    return TK_OK;
}

/* The algorithms we accept that the provider advertises (RS256 if it says
 * nothing, as OpenID Connect Discovery specifies). */
static json_t *usable_algs(const json_t *disc)
{
    const json_t *adv = json_object_get(disc, "id_token_signing_alg_values_supported");
    json_t *out = json_array();
    size_t i;
    const json_t *a;
    if (!json_is_array(adv))
        json_array_append_new(out, json_string("RS256"));
    json_array_foreach(adv, i, a)
    {
        const char *s = json_string_value(a);
        if (s && (!strcmp(s, "RS256") || !strcmp(s, "ES256")))
            json_array_append_new(out, json_string(s));
    }
    return out;
}

static int discover(tk_oidc_t *o, char *err, size_t errlen)
{
    if (o->disc != NULL && o->jwks != NULL)
        return TK_OK;
    /* OpenID Connect Discovery 1.0 section 4: a terminating '/' of the
     * issuer is removed before the well-known path is appended */
    const char *iss_cfg = o->cfg->oidc_issuer;
    size_t il = strlen(iss_cfg);
    int slash = il > 0 && iss_cfg[il - 1] == '/';
    char *url = tk_asprintf("%.*s/.well-known/openid-configuration", (int)(il - (size_t)slash),
                            iss_cfg);
    json_t *d;
    int rc = fetch_json(o, url, NULL, &d, err, errlen);
    free(url);
    if (rc != TK_OK)
        return rc;
    const char *iss = str_of(d, "issuer");
    if (iss == NULL || strcmp(iss, o->cfg->oidc_issuer) != 0 ||
        str_of(d, "authorization_endpoint") == NULL || str_of(d, "token_endpoint") == NULL ||
        str_of(d, "jwks_uri") == NULL) {
        json_decref(d);
        tk_snprintf(err, errlen,
                    "the discovery document's issuer does not match the configured "
                    "one, or an endpoint is missing");
        return TK_EINVAL;
    }
    json_t *algs = usable_algs(d);
    if (json_array_size(algs) == 0) {
        json_decref(d);
        json_decref(algs);
        tk_snprintf(err, errlen, "the provider signs ID tokens with neither RS256 nor ES256");
        return TK_EINVAL;
    }
    json_decref(o->disc);
    json_decref(o->algs);
    o->disc = d;
    o->algs = algs;
    return load_jwks(o, err, errlen);
}

/* Discovery loaded, and an easy handle to escape URL parts with (free it
 * with curl_easy_cleanup); NULL with *rc set on failure. */
static CURL *ready(tk_oidc_t *o, int *rc, char *err, size_t errlen)
{
    *rc = discover(o, err, errlen);
    if (*rc != TK_OK)
        return NULL;
    CURL *e = curl_easy_init();
    if (e == NULL)
        *rc = TK_ENOMEM;
    return e;
}

int tk_oidc_auth_url(tk_oidc_t *o, const char *state, const char *nonce, const char *challenge,
                     char **url, char *err, size_t errlen)
{
    int rc;
    *url = NULL;
    CURL *e = ready(o, &rc, err, errlen);
    if (e == NULL)
        return rc;
    const tk_config_t *cfg = o->cfg;
    char *id = curl_easy_escape(e, cfg->oidc_client_id, 0);
    char *redir = curl_easy_escape(e, cfg->oidc_redirect_uri, 0);
    char *scope = curl_easy_escape(e, cfg->oidc_scopes, 0);
    const char *ep = str_of(o->disc, "authorization_endpoint");
    *url = tk_asprintf("%s%cresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=%s"
                       "&nonce=%s&code_challenge=%s&code_challenge_method=S256",
                       ep, strchr(ep, '?') ? '&' : '?', id ? id : "", redir ? redir : "",
                       scope ? scope : "", state, nonce, challenge);
    curl_free(id);
    curl_free(redir);
    curl_free(scope);
    curl_easy_cleanup(e);
    return TK_OK;
}

/* ---- ID token ---- */

/* Whether s[0..n) is unpadded base64url that decodes cleanly: Debian's
 * libcjose aborts (assert) on a length of 1 mod 4 instead of failing, so
 * nothing reaches it unchecked. */
static int b64url_ok(const char *s, size_t n)
{
    if (n % 4 == 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* A compact JWS: three non-empty base64url segments. */
static int compact_ok(const char *t, size_t len)
{
    const char *end = t + len, *p = t;
    for (int seg = 0; seg < 3; seg++) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *stop = seg < 2 ? dot : end;
        if (stop == NULL || stop == p || !b64url_ok(p, (size_t)(stop - p)) ||
            (seg == 2 && dot != NULL))
            return 0;
        p = stop + 1;
    }
    return 1;
}

/* Whether the key members cjose decodes are well-formed base64url. */
static int jwk_ok(const json_t *k)
{
    static const char *const members[] = {"n", "e", "x", "y"};
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        const json_t *m = json_object_get(k, members[i]);
        if (m != NULL &&
            (!json_is_string(m) || !b64url_ok(json_string_value(m), json_string_length(m))))
            return 0;
    }
    return 1;
}

/* The JWKS key for alg and kid (NULL kid: the only key of the right type). */
static const json_t *find_key(const json_t *jwks, const char *alg, const char *kid)
{
    const char *kty = strcmp(alg, "ES256") == 0 ? "EC" : "RSA";
    const json_t *k, *found = NULL;
    size_t i, n = 0;
    json_array_foreach(json_object_get(jwks, "keys"), i, k)
    {
        const char *use = str_of(k, "use"), *kalg = str_of(k, "alg"), *kkid = str_of(k, "kid");
        if (!json_is_object(k) || str_of(k, "kty") == NULL || strcmp(str_of(k, "kty"), kty) != 0 ||
            (use && strcmp(use, "sig") != 0) || (kalg && strcmp(kalg, alg) != 0) || !jwk_ok(k))
            continue;
        if (kid != NULL ? (kkid != NULL && strcmp(kid, kkid) == 0) : ++n == 1)
            found = k;
    }
    return kid == NULL && n > 1 ? NULL : found;
}

static int alg_allowed(const json_t *algs, const char *alg)
{
    size_t i;
    const json_t *a;
    if (alg == NULL || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0))
        return 0;
    json_array_foreach(algs, i, a)
    {
        if (json_is_string(a) && strcmp(json_string_value(a), alg) == 0)
            return 1;
    }
    return 0;
}

static int aud_ok(const json_t *claims, const char *client_id)
{
    const json_t *aud = json_object_get(claims, "aud"), *a;
    size_t i;
    int found = 0;
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), client_id) == 0;
    json_array_foreach(aud, i, a)
    {
        if (json_is_string(a) && strcmp(json_string_value(a), client_id) == 0)
            found = 1;
    }
    if (!found)
        return 0;
    const char *azp = str_of(claims, "azp");
    return json_array_size(aud) == 1 || (azp != NULL && strcmp(azp, client_id) == 0);
}

/* Check the claims; NULL or why not. */
static const char *check_claims(const json_t *c, const char *issuer, const char *client_id,
                                const char *nonce, int64_t now_s, tk_oidc_identity_t *out)
{
    const char *iss = str_of(c, "iss"), *sub = str_of(c, "sub"), *n = str_of(c, "nonce");
    const json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat");
    if (iss == NULL || strcmp(iss, issuer) != 0)
        return "wrong issuer";
    if (!aud_ok(c, client_id))
        return "wrong audience";
    if (!json_is_integer(exp) || json_integer_value(exp) + CLOCK_SKEW_S <= now_s)
        return "expired";
    if (!json_is_integer(iat) || json_integer_value(iat) > now_s + CLOCK_SKEW_S)
        return "issued in the future";
    if (n == NULL || !tk_ct_equal(n, strlen(n), nonce, strlen(nonce)))
        return "wrong nonce";
    if (sub == NULL || sub[0] == '\0' || strlen(sub) >= sizeof(out->sub))
        return "missing or oversized subject";
    const char *email = str_of(c, "email");
    const json_t *ev = json_object_get(c, "email_verified");
    tk_snprintf(out->sub, sizeof(out->sub), "%s", sub);
    tk_snprintf(out->email, sizeof(out->email), "%s",
                email && strlen(email) < sizeof(out->email) ? email : "");
    out->email_verified =
        json_is_true(ev) || (json_is_string(ev) && !strcmp(json_string_value(ev), "true"));
    return NULL;
}

int tk_oidc_verify_id_token(const char *token, size_t len, const json_t *jwks, const json_t *algs,
                            const char *issuer, const char *client_id, const char *nonce,
                            int64_t now_s, tk_oidc_identity_t *out, const char **why)
{
    cjose_err ce;
    cjose_jwk_t *jwk = NULL;
    uint8_t *plain = NULL;
    size_t plen = 0;
    json_t *claims = NULL;
    memset(out, 0, sizeof(*out));
    *why = "malformed ID token";
    cjose_jws_t *jws = compact_ok(token, len) ? cjose_jws_import(token, len, &ce) : NULL;
    if (jws == NULL)
        return TK_EINVAL;
    cjose_header_t *h = cjose_jws_get_protected(jws);
    const char *alg = h ? cjose_header_get(h, CJOSE_HDR_ALG, &ce) : NULL;
    const char *kid = h ? cjose_header_get(h, CJOSE_HDR_KID, &ce) : NULL;
    const json_t *key = NULL;
    if (!alg_allowed(algs, alg))
        *why = "signing algorithm not accepted";
    else if ((key = find_key(jwks, alg, kid)) == NULL)
        *why = "no matching key in the provider's JWKS";
    else if ((jwk = cjose_jwk_import_json((cjose_header_t *)key, &ce)) == NULL)
        *why = "unusable key in the provider's JWKS";
    else if (!cjose_jws_verify(jws, jwk, &ce))
        *why = "bad signature";
    else if (!cjose_jws_get_plaintext(jws, &plain, &plen, &ce) ||
             (claims = json_loadb((const char *)plain, plen, 0, NULL)) == NULL ||
             !json_is_object(claims))
        *why = "malformed claims";
    else
        *why = check_claims(claims, issuer, client_id, nonce, now_s, out);
    json_decref(claims);
    if (jwk)
        cjose_jwk_release(jwk);
    cjose_jws_release(jws);
    if (*why != NULL) {
        memset(out, 0, sizeof(*out));
        return TK_EINVAL;
    }
    return TK_OK;
}

/* The kid of a compact JWS's header, or NULL (for a JWKS refresh). */
static int kid_known(const tk_oidc_t *o, const char *token)
{
    cjose_err ce;
    size_t len = strlen(token);
    cjose_jws_t *jws = compact_ok(token, len) ? cjose_jws_import(token, len, &ce) : NULL;
    if (jws == NULL)
        return 1;
    cjose_header_t *h = cjose_jws_get_protected(jws);
    const char *alg = h ? cjose_header_get(h, CJOSE_HDR_ALG, &ce) : NULL;
    const char *kid = h ? cjose_header_get(h, CJOSE_HDR_KID, &ce) : NULL;
    int known = alg == NULL || !alg_allowed(o->algs, alg) || find_key(o->jwks, alg, kid) != NULL;
    cjose_jws_release(jws);
    return known;
}

int tk_oidc_redeem(tk_oidc_t *o, const char *code, const char *verifier, const char *nonce,
                   int64_t now_s, tk_oidc_identity_t *out, char *err, size_t errlen)
{
    int rc;
    memset(out, 0, sizeof(*out));
    CURL *e = ready(o, &rc, err, errlen);
    if (e == NULL)
        return rc;
    char *c = curl_easy_escape(e, code, 0), *v = curl_easy_escape(e, verifier, 0);
    char *r = curl_easy_escape(e, o->cfg->oidc_redirect_uri, 0);
    char *form = tk_asprintf("grant_type=authorization_code&code=%s&redirect_uri=%s"
                             "&code_verifier=%s",
                             c ? c : "", r ? r : "", v ? v : "");
    curl_free(c);
    curl_free(v);
    curl_free(r);
    curl_easy_cleanup(e);
    json_t *tok;
    rc = fetch_json(o, str_of(o->disc, "token_endpoint"), form, &tok, err, errlen);
    OPENSSL_cleanse(form, strlen(form));
    free(form);
    if (rc != TK_OK)
        return rc;
    const char *idt = str_of(tok, "id_token"), *why = "the token response has no id_token";
    rc = TK_EINVAL;
    if (idt != NULL) {
        if (!kid_known(o, idt) && load_jwks(o, err, errlen) != TK_OK)
            tk_warn(MOD, "cannot refresh the provider's JWKS: %s", err);
        rc = tk_oidc_verify_id_token(idt, strlen(idt), o->jwks, o->algs, o->cfg->oidc_issuer,
                                     o->cfg->oidc_client_id, nonce, now_s, out, &why);
    }
    if (rc != TK_OK)
        tk_snprintf(err, errlen, "ID token refused: %s", why);
    json_decref(tok);
    return rc;
}
