/* SPDX-License-Identifier: Apache-2.0 */
/* Password policy and bcrypt hashing (libxcrypt crypt_r). */
#include "auth/password.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

/* Generated at configure time from share/common-passwords.txt. */
extern const char *const tk_common_passwords[];
extern const size_t tk_common_passwords_count;

int tk_bcrypt_hash(const char *secret, unsigned cost, char *out, size_t outlen)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (cost < TK_PASSWORD_COST_MIN || cost > 31)
        return TK_EINVAL;
    struct crypt_data *cd = tk_calloc(1, sizeof(*cd));
    int rc = TK_EIO;
    if (crypt_gensalt_rn("$2b$", cost, NULL, 0, salt, sizeof(salt)) == NULL)
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

int tk_bcrypt_verify(const char *secret, const char *hash)
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

/* base64(SHA-256(password)): 44 bytes, no NUL, all of the password counts. */
static void prehash(const char *password, size_t len, char out[48])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)password, len, md);
    EVP_EncodeBlock((unsigned char *)out, md, sizeof(md));
    OPENSSL_cleanse(md, sizeof(md));
}

int tk_password_hash(const char *password, size_t len, unsigned cost, char *out, size_t outlen)
{
    if (password == NULL || len < 1 || len > TK_PASSWORD_MAX)
        return TK_EINVAL;
    char pre[48];
    prehash(password, len, pre);
    int rc = tk_bcrypt_hash(pre, cost, out, outlen);
    OPENSSL_cleanse(pre, sizeof(pre));
    return rc;
}

int tk_password_verify(const char *password, size_t len, const char *hash)
{
    if (password == NULL || len > TK_PASSWORD_MAX || hash == NULL)
        return 0;
    char pre[48];
    prehash(password, len, pre);
    int ok = tk_bcrypt_verify(pre, hash);
    OPENSSL_cleanse(pre, sizeof(pre));
    return ok;
}

static int is_common(const char *s, size_t len)
{
    for (size_t i = 0; i < tk_common_passwords_count; i++) {
        const char *c = tk_common_passwords[i];
        if (strlen(c) == len && strncasecmp(c, s, len) == 0)
            return 1;
    }
    return 0;
}

/* Case-insensitive search for needle (nlen bytes) in hay (hlen bytes). */
static int contains_ci(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    for (size_t i = 0; nlen > 0 && i + nlen <= hlen; i++)
        if (strncasecmp(hay + i, needle, nlen) == 0)
            return 1;
    return 0;
}

static int is_digit_or_punct(char c)
{
    return (c >= '0' && c <= '9') || strchr("!@#$%^&*()_+-=.,?~ ", c) != NULL;
}

const char *tk_password_check(const char *pw, size_t len, const char *email)
{
    if (len < TK_PASSWORD_MIN)
        return "the password must be at least 12 characters long";
    if (len > TK_PASSWORD_MAX)
        return "the password must be at most 256 bytes long";
    if (memchr(pw, '\0', len) != NULL)
        return "the password must not contain a NUL character";
    size_t same = 1;
    while (same < len && pw[same] == pw[0])
        same++;
    if (same == len)
        return "the password must not be one character repeated";
    size_t base = len;
    while (base > 0 && is_digit_or_punct(pw[base - 1]))
        base--;
    if (is_common(pw, len) || (base >= 4 && is_common(pw, base)))
        return "the password is on the list of common or breached passwords";
    const char *at = email ? strchr(email, '@') : NULL;
    size_t local = at ? (size_t)(at - email) : 0;
    if (local >= 3 && contains_ci(pw, len, email, local))
        return "the password must not contain the name part of the e-mail address";
    return NULL;
}
