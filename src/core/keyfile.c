/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key files: load a secret key from its own file, or make it once (random
 * bytes, mode 0600, created exclusively and synced) - shared by the audit
 * trail's HMAC key and the vault's master key.
 */
#include "core/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

static int make_key(const char *path, unsigned char *key, size_t cap, size_t *keylen,
                    const char *what, char *err, size_t errlen)
{
    unsigned char fresh[TK_KEYFILE_NEW_LEN];
    int rc = cap >= sizeof(fresh) ? tk_random_bytes(fresh, sizeof(fresh)) : TK_EINVAL;
    int fd = rc == TK_OK ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    if (fd < 0 || write(fd, fresh, sizeof(fresh)) != (ssize_t)sizeof(fresh) || fsync(fd) != 0) {
        tk_snprintf(err, errlen, "%s: cannot create %s: %s", what, path, strerror(errno));
        rc = TK_EIO;
    } else {
        memcpy(key, fresh, sizeof(fresh));
        *keylen = sizeof(fresh);
    }
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(fresh, sizeof(fresh));
    return rc;
}

int tk_keyfile_load_or_make(const char *path, unsigned char *key, size_t cap, size_t min,
                            size_t *keylen, const char *what, char *err, size_t errlen)
{
    *keylen = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return make_key(path, key, cap, keylen, what, err, errlen);
    if (fd < 0) {
        tk_snprintf(err, errlen, "%s: cannot read %s: %s", what, path, strerror(errno));
        return TK_EIO;
    }
    ssize_t n = read(fd, key, cap);
    close(fd);
    if (n < 0) {
        tk_snprintf(err, errlen, "%s: cannot read %s: %s", what, path, strerror(errno));
        return TK_EIO;
    }
    *keylen = (size_t)n;
    if ((size_t)n < min) {
        tk_snprintf(err, errlen, "%s: %s is shorter than %zu bytes", what, path, min);
        return TK_EINVAL;
    }
    return TK_OK;
}
