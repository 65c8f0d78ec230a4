/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key authentication for the MCP hot path. A presented API key is looked up
 * and bcrypt-verified on a worker thread (which owns its own store handle),
 * never on the event loop; the outcome is cached in memory keyed by SHA-256
 * of the whole key for a short TTL, so steady-state authentication costs a
 * hash and a map lookup. The worker polls the store twice a second for
 * revocations and the loop drops those keys from the cache, so a revoked key
 * stops working within a second. Only the loop thread calls these functions.
 */
#ifndef TK_AUTH_KEYAUTH_H
#define TK_AUTH_KEYAUTH_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/apikey.h"
#include "core/core.h"

#define TK_KEYAUTH_SCOPES_MAX 256
#define TK_KEYAUTH_MAX_PENDING 256

typedef struct tk_keyauth tk_keyauth_t;

/* Who a verified key is. */
typedef struct tk_principal {
    char key_id[TK_APIKEY_ID_LEN + 1];
    char endpoint[72]; /* slug the key is for, or "*" */
    char scopes[TK_KEYAUTH_SCOPES_MAX];
    char owner[65]; /* the user the key belongs to, "" for keys made by the CLI */
    int64_t expires_at_ms; /* 0: never (wall clock, ms since the epoch) */
} tk_principal_t;

/* status: TK_OK (p valid), TK_EINVAL (unknown, wrong, revoked or expired
 * key: all the same to the client), TK_EIO (store unavailable). */
typedef void (*tk_keyauth_cb)(void *arg, int status, const tk_principal_t *p);

/* db_path: the SQLite store (opened by the worker). NULL on failure, err says why. */
tk_keyauth_t *tk_keyauth_create(struct event_base *base, const char *db_path,
                                uint32_t cache_ttl_ms, char *err, size_t errlen);
/* Stops the worker; pending callbacks never run. */
void tk_keyauth_destroy(tk_keyauth_t *ka);

/* Verify token. Returns 1 if the cache answered (*out filled, no callback),
 * 0 if the worker will answer through cb (then *handle can cancel it),
 * TK_EINVAL if the token is not an API key at all, TK_ELIMIT if too many
 * verifications are pending (no callback in both cases). */
int tk_keyauth_verify(tk_keyauth_t *ka, const char *token, size_t len, tk_principal_t *out,
                      tk_keyauth_cb cb, void *arg, uint64_t *handle);
void tk_keyauth_cancel(tk_keyauth_t *ka, uint64_t handle);

size_t tk_keyauth_cached(const tk_keyauth_t *ka);

/* Drop key_id from the cache at once (its row was deleted: the revocation
 * poll cannot see it). */
void tk_keyauth_forget(tk_keyauth_t *ka, const char *key_id);

/* Whether a JWT id is on the revocation list (kept in memory: loaded at
 * start and refreshed by the worker's twice-a-second poll). */
int tk_keyauth_jti_revoked(const tk_keyauth_t *ka, const char *jti);

#endif
