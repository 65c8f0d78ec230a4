/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the store unit tests: a fresh mkdtemp directory holding a
 * database path, removed with everything in it afterwards.
 */
#ifndef TK_TEST_DB_DIR_H
#define TK_TEST_DB_DIR_H

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

typedef struct db_dir {
    char dir[64];
    char path[128]; /* dir/tumiki.db */
} db_dir_t;

/* Make /tmp/<prefix>XXXXXX; 0 or -1. */
static inline int db_dir_make(db_dir_t *d, const char *prefix)
{
    tk_snprintf(d->dir, sizeof(d->dir), "/tmp/%sXXXXXX", prefix);
    if (mkdtemp(d->dir) == NULL)
        return -1;
    tk_snprintf(d->path, sizeof(d->path), "%s/tumiki.db", d->dir);
    return 0;
}

/* Remove the directory's files (one level) and the directory. */
static inline void db_dir_remove(const db_dir_t *d)
{
    DIR *dir = opendir(d->dir);
    if (dir != NULL) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            tk_snprintf(p, sizeof(p), "%s/%s", d->dir, e->d_name);
            unlink(p);
        }
        closedir(dir);
    }
    rmdir(d->dir);
}

/* cmocka setup/teardown bodies: a fresh directory as *state, removed after. */
static inline int db_dir_setup(void **state, const char *prefix)
{
    db_dir_t *d = tk_calloc(1, sizeof(*d));
    if (db_dir_make(d, prefix) != 0) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static inline int db_dir_teardown(void **state)
{
    db_dir_remove(*state);
    free(*state);
    return 0;
}

#endif
