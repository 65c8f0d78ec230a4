/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Vault: AES-256-GCM seal/open of small secrets (OpenSSL EVP), a random
 * nonce per value, the owner's name as AAD, and a key id per value. See
 * vault.h for the key's origin and the error contract.
 */
#include "vault/vault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/keyfile.h"
#include "core/mask.h"

#define MOD "vault"

struct tk_vault {
    unsigned char aes[32];
    char key_id[TK_VAULT_KEY_ID_LEN + 1];
};

/* Log and drop OpenSSL's queued errors; returns TK_EIO. */
static int ssl_fail(const char *what)
{
    unsigned long e;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        tk_warn(MOD, "%s: %s", what, buf);
    }
    return TK_EIO;
}

/* out = SHA-256(label || key) */
static int derive(const char *label, const unsigned char *key, size_t keylen,
                  unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, label, strlen(label)) == 1 &&
             EVP_DigestUpdate(md, key, keylen) == 1 && EVP_DigestFinal_ex(md, out, &n) == 1;
    EVP_MD_CTX_free(md);
    return ok && n == 32 ? TK_OK : ssl_fail("key derivation");
}

int tk_vault_create(const unsigned char *key, size_t keylen, tk_vault_t **out)
{
    *out = NULL;
    if (key == NULL || keylen < TK_VAULT_KEY_MIN || keylen > TK_VAULT_KEY_MAX)
        return TK_EINVAL;
    tk_vault_t *v = tk_calloc(1, sizeof(*v));
    unsigned char id[32];
    int rc = derive("tumiki vault aes-256-gcm v1", key, keylen, v->aes);
    if (rc == TK_OK)
        rc = derive("tumiki vault key id v1", key, keylen, id);
    if (rc != TK_OK) {
        tk_vault_destroy(v);
        return rc;
    }
    char hex[65];
    tk_hex_encode(id, sizeof(id), hex);
    memcpy(v->key_id, hex, TK_VAULT_KEY_ID_LEN);
    *out = v;
    return TK_OK;
}

static void mask_key(const unsigned char *key, size_t keylen)
{
    char hex[2 * TK_VAULT_KEY_MAX + 1];
    tk_hex_encode(key, keylen, hex);
    if (tk_mask_add_secret(hex) != TK_OK)
        tk_warn(MOD, "the mask table is full");
    OPENSSL_cleanse(hex, sizeof(hex));
}

int tk_vault_open_config(const tk_config_t *cfg, int create, tk_vault_t **out, char *err,
                         size_t errlen)
{
    unsigned char key[TK_VAULT_KEY_MAX];
    size_t keylen = 0;
    int rc = TK_OK;
    *out = NULL;
    if (cfg->vault_key != NULL) {
        keylen = cfg->vault_keylen < sizeof(key) ? cfg->vault_keylen : sizeof(key);
        memcpy(key, cfg->vault_key, keylen);
    } else {
        char *path = tk_asprintf("%s/vault.key", cfg->data_dir);
        struct stat st;
        if (!create && stat(path, &st) != 0) {
            tk_snprintf(err, errlen, "vault: no key: %s: %s", path, strerror(errno));
            rc = TK_ENOENT;
        } else if (create && mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
            tk_snprintf(err, errlen, "cannot create data dir %s: %s", cfg->data_dir,
                        strerror(errno));
            rc = TK_EIO;
        }
        if (rc == TK_OK)
            rc = tk_keyfile_load_or_make(path, key, sizeof(key), TK_VAULT_KEY_MIN, &keylen,
                                         "vault", err, errlen);
        free(path);
    }
    if (rc == TK_OK) {
        mask_key(key, keylen);
        rc = tk_vault_create(key, keylen, out);
        if (rc != TK_OK)
            tk_snprintf(err, errlen, "vault: cannot derive the key");
    }
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

void tk_vault_destroy(tk_vault_t *v)
{
    if (v == NULL)
        return;
    OPENSSL_cleanse(v, sizeof(*v));
    free(v);
}

const char *tk_vault_key_id(const tk_vault_t *v)
{
    return v->key_id;
}

void tk_sealed_clear(tk_sealed_t *s)
{
    if (s == NULL)
        return;
    free(s->ct);
    memset(s, 0, sizeof(*s));
}

/* One AES-256-GCM pass: encrypt (enc) or decrypt in[0..len) into out,
 * authenticating aad; the tag is written to / checked against tag. */
static int gcm(const tk_vault_t *v, int enc, const unsigned char *nonce, const char *aad,
               const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int ok = c != NULL && len <= TK_VAULT_VALUE_MAX &&
             EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, TK_VAULT_NONCE_LEN, NULL) == 1 &&
             EVP_CipherInit_ex(c, NULL, NULL, v->aes, nonce, enc) == 1 &&
             EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
             (len == 0 || EVP_CipherUpdate(c, out, &n, in, (int)len) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TK_VAULT_TAG_LEN, tag) == 1;
    int rc = ok ? TK_OK : ssl_fail("cipher");
    if (rc == TK_OK && EVP_CipherFinal_ex(c, out + (len ? n : 0), &fin) != 1) {
        ERR_clear_error(); /* an authentication failure: expected, not logged */
        rc = TK_EINVAL;
    }
    if (rc == TK_OK && enc &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TK_VAULT_TAG_LEN, tag) != 1)
        rc = ssl_fail("cipher tag");
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int tk_vault_seal(const tk_vault_t *v, const char *aad, const void *plain, size_t len,
                  tk_sealed_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len > TK_VAULT_VALUE_MAX)
        return TK_ELIMIT;
    if (tk_random_bytes(out->nonce, sizeof(out->nonce)) != TK_OK)
        return TK_EIO;
    out->ct = tk_malloc(len + TK_VAULT_TAG_LEN);
    int rc = gcm(v, 1, out->nonce, aad, plain, len, out->ct, out->ct + len);
    if (rc != TK_OK) {
        tk_sealed_clear(out);
        return rc;
    }
    out->ctlen = len + TK_VAULT_TAG_LEN;
    memcpy(out->key_id, v->key_id, sizeof(out->key_id));
    return TK_OK;
}

int tk_vault_open(const tk_vault_t *v, const char *aad, const tk_sealed_t *in, char **plain,
                  size_t *len)
{
    *plain = NULL;
    *len = 0;
    if (strcmp(in->key_id, v->key_id) != 0)
        return TK_ENOENT;
    if (in->ct == NULL || in->ctlen < TK_VAULT_TAG_LEN ||
        in->ctlen > TK_VAULT_VALUE_MAX + TK_VAULT_TAG_LEN)
        return TK_EINVAL;
    size_t n = in->ctlen - TK_VAULT_TAG_LEN;
    unsigned char tag[TK_VAULT_TAG_LEN];
    memcpy(tag, in->ct + n, sizeof(tag));
    char *out = tk_malloc(n + 1);
    int rc = gcm(v, 0, in->nonce, aad, in->ct, n, (unsigned char *)out, tag);
    if (rc != TK_OK) {
        OPENSSL_cleanse(out, n + 1);
        free(out);
        return rc;
    }
    out[n] = '\0';
    *plain = out;
    *len = n;
    return TK_OK;
}

void tk_vault_free_plain(char *plain)
{
    if (plain == NULL)
        return;
    OPENSSL_cleanse(plain, strlen(plain));
    free(plain);
}

char *tk_vault_server_aad(const char *server_id, const char *kind, const char *name)
{
    return tk_asprintf("server:%s:%s:%s", server_id, kind, name);
}

int tk_vault_seal_secret(const tk_vault_t *v, const char *server_id, const char *kind,
                         const char *name, const char *value, size_t len, tk_secret_row_t *out)
{
    char *aad = tk_vault_server_aad(server_id, kind, name);
    tk_sealed_t sealed;
    int rc = tk_vault_seal(v, aad, value, len, &sealed);
    free(aad);
    memset(out, 0, sizeof(*out));
    if (rc != TK_OK)
        return rc;
    tk_snprintf(out->kind, sizeof(out->kind), "%s", kind);
    out->name = tk_strdup(name);
    out->ct = sealed.ct;
    out->ctlen = sealed.ctlen;
    memcpy(out->nonce, sealed.nonce, sizeof(out->nonce));
    tk_snprintf(out->key_id, sizeof(out->key_id), "%s", sealed.key_id);
    return TK_OK;
}

int tk_vault_open_secret(const tk_vault_t *v, const char *server_id, const tk_secret_row_t *s,
                         char **plain, size_t *len)
{
    tk_sealed_t in = {.ct = s->ct, .ctlen = s->ctlen};
    memcpy(in.nonce, s->nonce, sizeof(in.nonce));
    tk_snprintf(in.key_id, sizeof(in.key_id), "%s", s->key_id);
    char *aad = tk_vault_server_aad(server_id, s->kind, s->name);
    int rc = tk_vault_open(v, aad, &in, plain, len);
    free(aad);
    return rc;
}
