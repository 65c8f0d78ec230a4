/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoint registry: the slugs of the endpoints the gateway serves now
 * (the config file's and those made through the admin API or the command
 * line) with the settings the HTTP layer applies before a request reaches
 * the gateway core: today the endpoint's rate limit. The core, which owns
 * the endpoints, writes it on add, replace and remove; the HTTP threads read
 * it for the protected-resource document, the metrics route label and the
 * per-endpoint rate limit.
 *
 * Threads: every function may be called from any thread; reads take a
 * shared lock and copy what they return, so nothing read can change or be
 * freed under the reader. destroy belongs to the owner once no other thread
 * uses it.
 */
#ifndef TK_EPREG_H
#define TK_EPREG_H

#include "state/ratelimit.h"

typedef struct tk_epreg tk_epreg_t;

tk_epreg_t *tk_epreg_create(void);
void tk_epreg_destroy(tk_epreg_t *r);
/* Add slug, or replace its settings; rate is copied (count 0 = unlimited). */
void tk_epreg_put(tk_epreg_t *r, const char *slug, const tk_rate_t *rate);
/* Remove slug (nothing if absent). */
void tk_epreg_del(tk_epreg_t *r, const char *slug);
/* 1 if slug is served now (its rate copied into *rate if not NULL), else 0. */
int tk_epreg_get(tk_epreg_t *r, const char *slug, tk_rate_t *rate);

#endif
