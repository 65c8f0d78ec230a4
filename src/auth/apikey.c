/* SPDX-License-Identifier: Apache-2.0 */
/* API key generation, parsing and bcrypt hashing (libxcrypt). */
#include "auth/apikey.h"

#include "auth/password.h"

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
    return tk_bcrypt_hash(secret, TK_APIKEY_BCRYPT_COST, out, outlen);
}

int tk_apikey_verify(const char *secret, const char *hash)
{
    return tk_bcrypt_verify(secret, hash);
}
