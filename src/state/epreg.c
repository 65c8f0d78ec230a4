/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoint registry (see epreg.h): a string map of entries under a
 * read-write lock. Readers copy an entry's settings while holding the
 * shared lock; writers replace or free entries under the exclusive lock.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/core.h"
#include "core/map.h"
#include "state/epreg.h"

typedef struct entry {
    tk_rate_t rate;
} entry_t;

struct tk_epreg {
    pthread_rwlock_t lock;
    tk_map_t *map; /* slug -> entry_t* (owned) */
};

tk_epreg_t *tk_epreg_create(void)
{
    tk_epreg_t *r = tk_calloc(1, sizeof(*r));
    pthread_rwlock_init(&r->lock, NULL);
    r->map = tk_map_create();
    return r;
}

void tk_epreg_destroy(tk_epreg_t *r)
{
    if (r == NULL)
        return;
    size_t it = 0;
    void *val;
    while (tk_map_next(r->map, &it, NULL, NULL, &val))
        free(val);
    tk_map_destroy(r->map);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

void tk_epreg_put(tk_epreg_t *r, const char *slug, const tk_rate_t *rate)
{
    pthread_rwlock_wrlock(&r->lock);
    entry_t *e = tk_map_sget(r->map, slug);
    if (e == NULL) {
        e = tk_calloc(1, sizeof(*e));
        tk_map_sput(r->map, slug, e);
    }
    e->rate = *rate;
    pthread_rwlock_unlock(&r->lock);
}

void tk_epreg_del(tk_epreg_t *r, const char *slug)
{
    pthread_rwlock_wrlock(&r->lock);
    free(tk_map_sdel(r->map, slug));
    pthread_rwlock_unlock(&r->lock);
}

int tk_epreg_get(tk_epreg_t *r, const char *slug, tk_rate_t *rate)
{
    pthread_rwlock_rdlock(&r->lock);
    const entry_t *e = tk_map_sget(r->map, slug);
    if (e != NULL && rate != NULL)
        *rate = e->rate;
    pthread_rwlock_unlock(&r->lock);
    return e != NULL;
}
