/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Open-addressing hash map with linear probing and backward-shift deletion.
 * String keys are hashed with FNV-1a and stored as copies.
 */
#include "core/map.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef struct slot {
    uint64_t key;  /* u64 key, or the hash of skey */
    char *skey;    /* NULL for u64 keys */
    void *val;
    int used;
} slot_t;

struct tk_map {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t count;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

tk_map_t *tk_map_create(void)
{
    tk_map_t *m = tk_calloc(1, sizeof(*m));
    m->cap = 16;
    m->slots = tk_calloc(m->cap, sizeof(slot_t));
    return m;
}

void tk_map_destroy(tk_map_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].skey);
    free(m->slots);
    free(m);
}

size_t tk_map_count(const tk_map_t *m)
{
    return m->count;
}

static size_t find(const tk_map_t *m, uint64_t key, const char *skey, int *found)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)mix64(key) & mask;
    for (;;) {
        const slot_t *s = &m->slots[i];
        if (!s->used) {
            *found = 0;
            return i;
        }
        if (s->key == key && (skey == NULL ? s->skey == NULL : (s->skey && !strcmp(s->skey, skey)))) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static void grow(tk_map_t *m)
{
    slot_t *old = m->slots;
    size_t oldcap = m->cap;
    m->cap *= 2;
    m->slots = tk_calloc(m->cap, sizeof(slot_t));
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].used)
            continue;
        int found;
        size_t j = find(m, old[i].key, old[i].skey, &found);
        m->slots[j] = old[i];
    }
    free(old);
}

static void put(tk_map_t *m, uint64_t key, const char *skey, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    int found;
    size_t i = find(m, key, skey, &found);
    slot_t *s = &m->slots[i];
    if (!found) {
        s->used = 1;
        s->key = key;
        s->skey = skey ? tk_strdup(skey) : NULL;
        m->count++;
    }
    s->val = val;
}

static void *del(tk_map_t *m, uint64_t key, const char *skey)
{
    int found;
    size_t i = find(m, key, skey, &found);
    if (!found)
        return NULL;
    void *val = m->slots[i].val;
    free(m->slots[i].skey);
    size_t mask = m->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].used)
            break;
        size_t home = (size_t)mix64(m->slots[j].key) & mask;
        /* move j back to i if its home is not in (i, j] cyclically */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    memset(&m->slots[i], 0, sizeof(slot_t));
    m->count--;
    return val;
}

void tk_map_put(tk_map_t *m, uint64_t key, void *val)
{
    put(m, key, NULL, val);
}

void *tk_map_get(const tk_map_t *m, uint64_t key)
{
    int found;
    size_t i = find(m, key, NULL, &found);
    return found ? m->slots[i].val : NULL;
}

void *tk_map_del(tk_map_t *m, uint64_t key)
{
    return del(m, key, NULL);
}

void tk_map_sput(tk_map_t *m, const char *key, void *val)
{
    put(m, str_hash(key), key, val);
}

void *tk_map_sget(const tk_map_t *m, const char *key)
{
    int found;
    size_t i = find(m, str_hash(key), key, &found);
    return found ? m->slots[i].val : NULL;
}

void *tk_map_sdel(tk_map_t *m, const char *key)
{
    return del(m, str_hash(key), key);
}

int tk_map_next(const tk_map_t *m, size_t *it, uint64_t *key, const char **skey, void **val)
{
    for (; *it < m->cap; (*it)++) {
        const slot_t *s = &m->slots[*it];
        if (!s->used)
            continue;
        if (key)
            *key = s->key;
        if (skey)
            *skey = s->skey;
        if (val)
            *val = s->val;
        (*it)++;
        return 1;
    }
    return 0;
}
