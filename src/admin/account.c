/* SPDX-License-Identifier: Apache-2.0 */
/* Local dashboard accounts: policy-checked passwords, creation, unlock. */
#include "admin/account.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth/password.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tk_account_set_password(tk_store_t *st, const char *id, const char *email,
                            const char *password, size_t len, unsigned cost, const char **why)
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

int tk_account_add(tk_store_t *st, const char *email, const char *password, size_t len,
                   unsigned cost, char *id_out, const char **why)
{
    char hash[TK_PASSWORD_HASH_MAX];
    unsigned char raw[8];
    char hex[17];
    *why = tk_password_check(password, len, email);
    if (*why != NULL)
        return TK_EINVAL;
    if (strchr(email, '@') == NULL) {
        *why = "the e-mail address must contain '@'";
        return TK_EINVAL;
    }
    if (tk_random_bytes(raw, sizeof(raw)) != TK_OK)
        return TK_EIO;
    tk_hex_encode(raw, sizeof(raw), hex);
    tk_snprintf(id_out, TK_STORE_ID_MAX + 1, "u_%s", hex);
    int rc = tk_password_hash(password, len, cost, hash, sizeof(hash));
    if (rc == TK_OK)
        rc = tk_store_user_insert(st, id_out, email, hash, wall_ms());
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}

/* One line from in into buf (cap bytes), without its newline; -1 if none. */
static long read_line(FILE *in, char *buf, size_t cap)
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

static int with_password(tk_store_t *st, unsigned cost, const char *sub, const tk_user_login_t *u,
                         const char *email, FILE *in, FILE *out, FILE *errf)
{
    char pw[TK_PASSWORD_MAX + 3];
    long n = read_line(in, pw, sizeof(pw));
    const char *why = NULL;
    char id[TK_STORE_ID_MAX + 1];
    int rc;
    if (n < 0) {
        fprintf(errf, "tumiki account: give the password as one line on standard input (at most "
                      "%d bytes)\n", TK_PASSWORD_MAX);
        return 2;
    }
    if (strcmp(sub, "add") == 0)
        rc = tk_account_add(st, email, pw, (size_t)n, cost, id, &why);
    else
        rc = tk_account_set_password(st, u->id, u->email, pw, (size_t)n, cost, &why);
    OPENSSL_cleanse(pw, sizeof(pw));
    if (rc == TK_OK) {
        fprintf(out, strcmp(sub, "add") == 0 ? "user %s created\n" : "password of user %s set\n",
                strcmp(sub, "add") == 0 ? id : u->id);
        return 0;
    }
    if (why != NULL)
        fprintf(errf, "tumiki account: password refused: %s\n", why);
    else
        fprintf(errf, "tumiki account: %s: %s\n", email,
                rc == TK_EINVAL ? "that e-mail address is already taken" : tk_strerror(rc));
    return 1;
}

int tk_account_cli(tk_store_t *st, unsigned cost, const char *sub, const char *email, FILE *in,
                   FILE *out, FILE *errf)
{
    tk_user_login_t u;
    int exists = tk_store_user_login_get(st, email, &u) == TK_OK;
    int rc = 1;
    if (strcmp(sub, "add") == 0 && exists)
        fprintf(errf, "tumiki account: %s: that e-mail address is already taken\n", email);
    else if (strcmp(sub, "add") != 0 && !exists)
        fprintf(errf, "tumiki account: %s: no such user\n", email);
    else if (strcmp(sub, "unlock") == 0) {
        rc = tk_store_user_login_reset(st, u.id) == TK_OK ? 0 : 1;
        fprintf(rc ? errf : out, rc ? "tumiki account: cannot unlock %s\n" : "user %s unlocked\n",
                u.id);
    } else
        rc = with_password(st, cost, sub, &u, email, in, out, errf);
    tk_user_login_clear(&u);
    return rc;
}
