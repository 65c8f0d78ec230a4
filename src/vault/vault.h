/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Vault: encryption at rest of the small secrets the gateway keeps in its
 * store (an upstream server's env values and header values such as API
 * keys). Each value is sealed with AES-256-GCM under a random 96-bit nonce
 * of its own; the additional authenticated data (AAD) names the value's
 * owner ("server:<id>:env:<NAME>"), so a ciphertext copied to another row
 * or another name no longer opens. Every sealed value carries the id of the
 * key that sealed it (key rotation can then re-seal row by row).
 *
 * The master key comes from the config (vault.key_env / vault.key_file,
 * 32..256 bytes) or else from <data_dir>/vault.key, 32 random bytes made
 * with mode 0600 on first use. The AES key and the key id are derived from
 * it with SHA-256 under distinct labels; the master key is registered with
 * the masking module and never logged.
 *
 * Threads: a tk_vault_t is immutable after creation; seal and open may run
 * on any thread at once. Errors: TK_EINVAL for a value that does not open
 * (wrong key, altered ciphertext, nonce, tag or AAD), TK_ENOENT for a value
 * sealed under another key id, TK_ELIMIT for an over-long value, TK_EIO for
 * an OpenSSL failure (its error queue is drained into the log).
 */
#ifndef TK_VAULT_H
#define TK_VAULT_H

#include <stddef.h>

#include "config/config.h"
#include "core/core.h"
#include "store/store.h"

#define TK_VAULT_KEY_MIN 32     /* master key bytes, at least */
#define TK_VAULT_KEY_MAX 256    /* ... and at most */
#define TK_VAULT_NONCE_LEN 12   /* AES-GCM nonce (IV) */
#define TK_VAULT_TAG_LEN 16     /* AES-GCM tag, appended to the ciphertext */
#define TK_VAULT_KEY_ID_LEN 16  /* key id: hex characters */
#define TK_VAULT_VALUE_MAX 65536 /* longest secret value, bytes */

typedef struct tk_vault tk_vault_t;

/* One sealed value: ciphertext with the tag appended, its nonce and the id
 * of the key that sealed it. ct is a heap buffer (tk_sealed_clear frees). */
typedef struct tk_sealed {
    unsigned char *ct;
    size_t ctlen;
    unsigned char nonce[TK_VAULT_NONCE_LEN];
    char key_id[TK_VAULT_KEY_ID_LEN + 1];
} tk_sealed_t;

void tk_sealed_clear(tk_sealed_t *s);

/* A vault keyed by key (keylen in TK_VAULT_KEY_MIN..TK_VAULT_KEY_MAX, copied
 * and derived from; the caller may wipe its copy). TK_EINVAL for a short or
 * long key. */
int tk_vault_create(const unsigned char *key, size_t keylen, tk_vault_t **out) TK_WUR;

/* The vault of a config: its vault key, else <data_dir>/vault.key (made,
 * with the data directory, if missing and create is set; TK_ENOENT if it is
 * missing and create is not). Registers the key with the masking module.
 * err says why on failure (naming files, never key bytes). */
int tk_vault_open_config(const tk_config_t *cfg, int create, tk_vault_t **out, char *err,
                         size_t errlen) TK_WUR;

void tk_vault_destroy(tk_vault_t *v);

/* This vault's key id (TK_VAULT_KEY_ID_LEN hex characters). */
const char *tk_vault_key_id(const tk_vault_t *v);

/* Seal len bytes at plain, bound to aad (a NUL-terminated owner name), into
 * *out (clear it with tk_sealed_clear). */
int tk_vault_seal(const tk_vault_t *v, const char *aad, const void *plain, size_t len,
                  tk_sealed_t *out) TK_WUR;

/* Open in (sealed with aad) into *plain, a NUL-terminated heap copy of *len
 * bytes; free it with tk_vault_free_plain. */
int tk_vault_open(const tk_vault_t *v, const char *aad, const tk_sealed_t *in, char **plain,
                  size_t *len) TK_WUR;

/* Wipe and free a value returned by tk_vault_open (NULL is fine). */
void tk_vault_free_plain(char *plain);

/* The AAD of secret `name` of kind ("env" or "header") of server id:
 * "server:<id>:<kind>:<name>" (heap; free). */
char *tk_vault_server_aad(const char *server_id, const char *kind, const char *name);

/* A server's secret as a store row: seal value (len bytes) as secret
 * `name` of kind ("env" or "header") of server id into *out (its strings
 * and ciphertext are the caller's: tk_server_row_clear frees them with the
 * row); open a stored one into *plain (tk_vault_free_plain). The AAD is
 * tk_vault_server_aad's. */
int tk_vault_seal_secret(const tk_vault_t *v, const char *server_id, const char *kind,
                         const char *name, const char *value, size_t len,
                         tk_secret_row_t *out) TK_WUR;
int tk_vault_open_secret(const tk_vault_t *v, const char *server_id, const tk_secret_row_t *s,
                         char **plain, size_t *len) TK_WUR;

#endif
