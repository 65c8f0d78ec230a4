/* SPDX-License-Identifier: Apache-2.0 */
/* API key generation, parsing and bcrypt hashing (libxcrypt). */
#include "auth/apikey.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int tk_apikey_generate(char *key, char *id)
{
    unsigned char raw_id[TK_APIKEY_ID_LEN / 2], raw_secret[TK_APIKEY_SECRET_LEN / 2];
    char secret[TK_APIKEY_SECRET_LEN + 1];
    if (tk_random_bytes(raw_id, sizeof(raw_id)) != TK_OK ||
        tk_random_bytes(raw_secret, sizeof(raw_secret)) != TK_OK)
        return TK_EIO;
    tk_hex_encode(raw_id, sizeof(raw_id), id);
    tk_hex_encode(raw_secret, sizeof(raw_secret), secret);
    tk_snprintf(key, TK_APIKEY_LEN + 1, "tk_%s_%s", id, secret);
    OPENSSL_cleanse(raw_secret, sizeof(raw_secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    return TK_OK;
}

int tk_apikey_parse(const char *token, size_t len, char *id, char *secret)
{
    if (len != TK_APIKEY_LEN || strncmp(token, "tk_", 3) != 0 ||
        token[3 + TK_APIKEY_ID_LEN] != '_' || !is_lower_hex(token + 3, TK_APIKEY_ID_LEN) ||
        !is_lower_hex(token + 4 + TK_APIKEY_ID_LEN, TK_APIKEY_SECRET_LEN))
        return TK_EINVAL;
    memcpy(id, token + 3, TK_APIKEY_ID_LEN);
    id[TK_APIKEY_ID_LEN] = '\0';
    memcpy(secret, token + 4 + TK_APIKEY_ID_LEN, TK_APIKEY_SECRET_LEN);
    secret[TK_APIKEY_SECRET_LEN] = '\0';
    return TK_OK;
}

int tk_apikey_hash(const char *secret, char *out, size_t outlen)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = tk_calloc(1, sizeof(*cd));
    int rc = TK_EIO;
    if (crypt_gensalt_rn("$2b$", TK_APIKEY_BCRYPT_COST, NULL, 0, salt, sizeof(salt)) == NULL)
        goto out;
    const char *h = crypt_r(secret, salt, cd);
    if (h == NULL || h[0] == '*' || strlen(h) >= outlen)
        goto out;
    tk_snprintf(out, outlen, "%s", h);
    rc = TK_OK;
out:
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(cd);
    return rc;
}

int tk_apikey_verify(const char *secret, const char *hash)
{
    if (hash == NULL || strncmp(hash, "$2b$", 4) != 0)
        return 0;
    struct crypt_data *cd = tk_calloc(1, sizeof(*cd));
    const char *h = crypt_r(secret, hash, cd);
    int ok = h != NULL && h[0] != '*' && tk_ct_equal(h, strlen(h), hash, strlen(hash));
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(cd);
    return ok;
}
