/* SPDX-License-Identifier: Apache-2.0 */
/* Local dashboard accounts: policy-checked passwords, creation, unlock. */
#include "admin/account.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/password.h"

int tk_account_set_password(tk_store_t *st, const char *id, const char *email, const char *password,
                            size_t len, unsigned cost, const char **why)
{
    char hash[TK_PASSWORD_HASH_MAX];
    *why = tk_password_check(password, len, email);
    if (*why != NULL)
        return TK_EINVAL;
    int rc = tk_password_hash(password, len, cost, hash, sizeof(hash));
    if (rc == TK_OK)
        rc = tk_store_user_set_password(st, id, hash);
    if (rc == TK_OK)
        rc = tk_store_user_login_reset(st, id);
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}

long tk_account_read_password(FILE *in, char *buf, size_t cap)
{
    if (fgets(buf, (int)cap, in) == NULL)
        return -1;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (!feof(in))
        return -1; /* longer than cap: refused, not truncated */
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return (long)n;
}

static int with_password(tk_store_t *st, unsigned cost, const tk_user_login_t *u, FILE *in,
                         FILE *out, FILE *errf)
{
    char pw[TK_PASSWORD_MAX + 3];
    long n = tk_account_read_password(in, pw, sizeof(pw));
    const char *why = NULL;
    if (n < 0) {
        fprintf(errf,
                "tumiki account: give the password as one line on standard input (at most "
                "%d bytes)\n",
                TK_PASSWORD_MAX);
        return 2;
    }
    int rc = tk_account_set_password(st, u->id, u->email, pw, (size_t)n, cost, &why);
    OPENSSL_cleanse(pw, sizeof(pw));
    if (rc == TK_OK) {
        fprintf(out, "password of user %s set\n", u->id);
        return 0;
    }
    if (why != NULL)
        fprintf(errf, "tumiki account: password refused: %s\n", why);
    else
        fprintf(errf, "tumiki account: cannot set the password: %s\n", tk_strerror(rc));
    return 1;
}

int tk_account_cli(tk_store_t *st, unsigned cost, const char *sub, const char *email, FILE *in,
                   FILE *out, FILE *errf)
{
    tk_user_login_t u;
    int rc = 1;
    if (tk_store_user_login_get(st, email, &u) != TK_OK)
        fprintf(errf, "tumiki account: %s: no such user (create it with tumiki user add)\n", email);
    else if (strcmp(sub, "unlock") == 0) {
        rc = tk_store_user_login_reset(st, u.id) == TK_OK ? 0 : 1;
        fprintf(rc ? errf : out, rc ? "tumiki account: cannot unlock %s\n" : "user %s unlocked\n",
                u.id);
    } else
        rc = with_password(st, cost, &u, in, out, errf);
    tk_user_login_clear(&u);
    return rc;
}
