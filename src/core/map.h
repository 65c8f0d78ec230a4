/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Map: open-addressing hash tables keyed by uint64_t or by string, holding
 * borrowed void pointers. The map never owns values; string keys are copied.
 * Used for pending upstream requests (by id), sessions (by id) and the
 * per-endpoint name catalogues.
 */
#ifndef TK_MAP_H
#define TK_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tk_map tk_map_t;

tk_map_t *tk_map_create(void);
void tk_map_destroy(tk_map_t *m);
size_t tk_map_count(const tk_map_t *m);

/* uint64_t keys */
void tk_map_put(tk_map_t *m, uint64_t key, void *val); /* replaces an existing value */
void *tk_map_get(const tk_map_t *m, uint64_t key);
void *tk_map_del(tk_map_t *m, uint64_t key); /* returns the removed value or NULL */

/* string keys (a separate key space: do not mix in one map) */
void tk_map_sput(tk_map_t *m, const char *key, void *val);
void *tk_map_sget(const tk_map_t *m, const char *key);
void *tk_map_sdel(tk_map_t *m, const char *key);

/* Iteration: *it starts at 0; returns 0 at the end. Do not modify during it. */
int tk_map_next(const tk_map_t *m, size_t *it, uint64_t *key, const char **skey, void **val);

#endif
