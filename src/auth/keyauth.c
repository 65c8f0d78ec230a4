/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key authentication: verification jobs and a twice-a-second revocation
 * poll on a store worker (src/store/worker.c: its own thread and store
 * handle, results posted back to the loop), and the in-memory cache of
 * verified keys.
 */
#include "auth/keyauth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/map.h"
#include "store/store.h"
#include "store/worker.h"

#define MOD "auth"
#define POLL_MS 500
#define TOUCH_EVERY_MS 60000

enum { JOB_VERIFY = 1, JOB_TOUCH, JOB_REVOKED, JOB_JTIS };

typedef struct job {
    tk_keyauth_t *ka;
    int kind;
    uint64_t handle;
    char id[TK_APIKEY_ID_LEN + 1];
    char secret[TK_APIKEY_SECRET_LEN + 1];
    char token_hash[2 * SHA256_DIGEST_LENGTH + 1];
    tk_keyauth_cb cb;
    void *arg;
    int cancelled;
    int status;
    tk_principal_t p;
    char **revoked;
    size_t nrevoked;
} job_t;

typedef struct entry {
    tk_principal_t p;
    uint64_t verified_ms;
    uint64_t touched_ms;
} entry_t;

struct tk_keyauth {
    struct event_base *base;
    uint32_t ttl_ms;
    tk_store_worker_t *worker; /* bcrypt checks, touches, revocation polls */
    int closing;               /* destroy: finished jobs are dropped */
    tk_map_t *pending;         /* handle -> job (loop side) */
    tk_map_t *cache;           /* sha256(token) hex -> entry_t */
    tk_map_t *jtis;            /* revoked JWT ids (values unused) */
    uint64_t next_handle;
    int64_t since; /* worker thread: revocation poll positions */
    int64_t jti_since;
    EVP_MD *sha256;    /* fetched once: the one-shot SHA256() fetches per call */
    EVP_MD_CTX *mdctx; /* loop thread only */
};

static void job_free(job_t *j)
{
    tk_store_ids_free(j->revoked, j->nrevoked);
    OPENSSL_cleanse(j->secret, sizeof(j->secret));
    free(j);
}

/* ---- worker thread ---- */

static void do_verify(tk_store_t *st, void *arg)
{
    job_t *j = arg;
    tk_apikey_t k;
    memset(&k, 0, sizeof(k));
    j->status = TK_EINVAL;
    if (st == NULL) {
        j->status = TK_EIO;
        return;
    }
    int rc = tk_store_apikey_get(st, j->id, &k);
    if (rc == TK_ENOENT)
        return;
    if (rc != TK_OK) {
        j->status = TK_EIO;
        return;
    }
    int64_t now = tk_wall_ms();
    int ok = k.revoked_at == 0 && (k.expires_at == 0 || k.expires_at > now) &&
             tk_apikey_verify(j->secret, k.hash);
    if (ok && k.owner != NULL) { /* a disabled (or vanished) owner's keys are refused */
        tk_user_t u;
        rc = tk_store_user_get(st, k.owner, &u);
        ok = rc == TK_OK && !u.disabled;
        if (rc != TK_OK && rc != TK_ENOENT)
            j->status = TK_EIO;
        tk_user_clear(&u);
    }
    if (ok) {
        j->status = TK_OK;
        tk_snprintf(j->p.key_id, sizeof(j->p.key_id), "%s", k.id);
        tk_snprintf(j->p.endpoint, sizeof(j->p.endpoint), "%s", k.endpoint ? k.endpoint : "");
        tk_snprintf(j->p.scopes, sizeof(j->p.scopes), "%s", k.scopes ? k.scopes : "");
        tk_snprintf(j->p.owner, sizeof(j->p.owner), "%s", k.owner ? k.owner : "");
        j->p.expires_at_ms = k.expires_at;
        if (tk_store_apikey_touch(st, k.id, now) != TK_OK)
            tk_debug(MOD, "last-used time of key %s not updated", k.id);
    }
    tk_apikey_clear(&k);
}

static void do_touch(tk_store_t *st, void *arg)
{
    job_t *j = arg;
    if (st && tk_store_apikey_touch(st, j->id, tk_wall_ms()) != TK_OK)
        tk_debug(MOD, "last-used time not updated");
}

static void revoked_done(void *arg);

/* Hand ids (revoked keys or JWT ids) to the loop as a job of kind. */
static void post_ids(tk_store_worker_t *w, tk_keyauth_t *ka, int kind, char **ids, size_t n)
{
    if (n == 0) {
        tk_store_ids_free(ids, n);
        return;
    }
    job_t *j = tk_calloc(1, sizeof(*j));
    j->ka = ka;
    j->kind = kind;
    j->revoked = ids;
    j->nrevoked = n;
    tk_store_worker_post(w, revoked_done, j);
}

/* Twice a second: keys revoked and JWT ids put on the list since the last
 * poll (with an overlap, so a revocation is never missed). */
static void poll_tick(tk_store_worker_t *w, tk_store_t *st, void *arg)
{
    tk_keyauth_t *ka = arg;
    if (st == NULL)
        return;
    char **ids = NULL;
    size_t n = 0;
    int64_t now = tk_wall_ms();
    if (tk_store_apikey_revoked_since(st, ka->since, &ids, &n) == TK_OK) {
        ka->since = now - 2 * POLL_MS;
        post_ids(w, ka, JOB_REVOKED, ids, n);
    }
    if (tk_store_jti_revoked_since(st, ka->jti_since, now, &ids, &n) == TK_OK) {
        ka->jti_since = now - 2 * POLL_MS;
        post_ids(w, ka, JOB_JTIS, ids, n);
    }
}

/* ---- loop side ---- */

static void drop_key(tk_keyauth_t *ka, const char *key_id)
{
    size_t it = 0, n = 0;
    const char *k;
    void *val;
    char **gone = tk_calloc(tk_map_count(ka->cache) + 1, sizeof(*gone));
    while (tk_map_next(ka->cache, &it, NULL, &k, &val))
        if (strcmp(((entry_t *)val)->p.key_id, key_id) == 0)
            gone[n++] = tk_strdup(k);
    for (size_t i = 0; i < n; i++) {
        free(tk_map_sdel(ka->cache, gone[i]));
        free(gone[i]);
    }
    free(gone);
    if (n)
        tk_info(MOD, "key %s revoked: dropped from the cache", key_id);
}

/* On the loop: revoked key ids drop out of the cache; revoked JWT ids join
 * the list. */
static void revoked_done(void *arg)
{
    job_t *j = arg;
    tk_keyauth_t *ka = j->ka;
    for (size_t i = 0; i < j->nrevoked && !ka->closing; i++) {
        if (j->kind == JOB_REVOKED)
            drop_key(ka, j->revoked[i]);
        else
            tk_map_sput(ka->jtis, j->revoked[i], ka);
    }
    job_free(j);
}

/* On the loop: a verification's outcome is cached and given to its caller
 * (unless cancelled, or the authenticator is going away). */
static void verify_done(void *arg)
{
    job_t *j = arg;
    tk_keyauth_t *ka = j->ka;
    if (!j->cancelled && !ka->closing) {
        tk_map_del(ka->pending, j->handle);
        if (j->status == TK_OK) {
            entry_t *e = tk_map_sget(ka->cache, j->token_hash);
            if (e == NULL) {
                e = tk_calloc(1, sizeof(*e));
                tk_map_sput(ka->cache, j->token_hash, e);
            }
            e->p = j->p;
            e->verified_ms = e->touched_ms = tk_now_ms();
        }
        j->cb(j->arg, j->status, j->status == TK_OK ? &j->p : NULL);
    }
    job_free(j);
}

static void free_done(void *arg)
{
    job_free(arg);
}

static void token_hash(tk_keyauth_t *ka, const char *token, size_t len, char *out)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned int mdlen = 0;
    if (EVP_DigestInit_ex(ka->mdctx, ka->sha256, NULL) != 1 ||
        EVP_DigestUpdate(ka->mdctx, token, len) != 1 ||
        EVP_DigestFinal_ex(ka->mdctx, md, &mdlen) != 1 || mdlen != sizeof(md))
        SHA256((const unsigned char *)token, len, md);
    tk_hex_encode(md, sizeof(md), out);
}

int tk_keyauth_verify(tk_keyauth_t *ka, const char *token, size_t len, tk_principal_t *out,
                      tk_keyauth_cb cb, void *arg, uint64_t *handle)
{
    char id[TK_APIKEY_ID_LEN + 1], secret[TK_APIKEY_SECRET_LEN + 1];
    if (tk_apikey_parse(token, len, id, secret) != TK_OK)
        return TK_EINVAL;
    char th[2 * SHA256_DIGEST_LENGTH + 1];
    token_hash(ka, token, len, th);
    entry_t *e = tk_map_sget(ka->cache, th);
    uint64_t now = tk_now_ms();
    if (e != NULL && now - e->verified_ms < ka->ttl_ms &&
        (e->p.expires_at_ms == 0 || e->p.expires_at_ms > tk_wall_ms())) {
        *out = e->p;
        if (now - e->touched_ms > TOUCH_EVERY_MS) {
            e->touched_ms = now;
            job_t *t = tk_calloc(1, sizeof(*t));
            t->ka = ka;
            t->kind = JOB_TOUCH;
            tk_snprintf(t->id, sizeof(t->id), "%s", id);
            if (tk_store_worker_submit(ka->worker, do_touch, free_done, t) != TK_OK)
                job_free(t); /* best effort: the next use touches it */
        }
        OPENSSL_cleanse(secret, sizeof(secret));
        return 1;
    }
    if (e != NULL)
        free(tk_map_sdel(ka->cache, th)); /* stale: verify again */
    if (tk_map_count(ka->pending) >= TK_KEYAUTH_MAX_PENDING) {
        OPENSSL_cleanse(secret, sizeof(secret));
        return TK_ELIMIT;
    }
    job_t *j = tk_calloc(1, sizeof(*j));
    j->ka = ka;
    j->kind = JOB_VERIFY;
    j->handle = ++ka->next_handle;
    memcpy(j->id, id, sizeof(id));
    memcpy(j->secret, secret, sizeof(secret));
    memcpy(j->token_hash, th, sizeof(th));
    j->cb = cb;
    j->arg = arg;
    OPENSSL_cleanse(secret, sizeof(secret));
    if (tk_store_worker_submit(ka->worker, do_verify, verify_done, j) != TK_OK) {
        job_free(j);
        return TK_ELIMIT;
    }
    tk_map_put(ka->pending, j->handle, j);
    if (handle)
        *handle = j->handle;
    return 0;
}

void tk_keyauth_cancel(tk_keyauth_t *ka, uint64_t handle)
{
    job_t *j = tk_map_del(ka->pending, handle);
    if (j)
        j->cancelled = 1; /* freed when the worker's answer arrives */
}

void tk_keyauth_forget(tk_keyauth_t *ka, const char *key_id)
{
    drop_key(ka, key_id);
}

size_t tk_keyauth_cached(const tk_keyauth_t *ka)
{
    return tk_map_count(ka->cache);
}

int tk_keyauth_jti_revoked(const tk_keyauth_t *ka, const char *jti)
{
    return tk_map_sget(ka->jtis, jti) != NULL;
}

tk_keyauth_t *tk_keyauth_create(struct event_base *base, const char *db_path, uint32_t cache_ttl_ms,
                                char *err, size_t errlen)
{
    /* open once here: creates the file and applies migrations, so a broken
     * store stops start-up with a clear error; and load the JWT revocation
     * list before the first request can arrive */
    tk_store_t *st = NULL;
    if (tk_store_open_sqlite(db_path, &st, err, errlen) != TK_OK)
        return NULL;
    tk_keyauth_t *ka = tk_calloc(1, sizeof(*ka));
    ka->jtis = tk_map_create();
    ka->pending = tk_map_create();
    ka->cache = tk_map_create();
    int64_t loaded_at = tk_wall_ms();
    ka->since = loaded_at - 2 * POLL_MS;
    ka->jti_since = loaded_at - 2 * POLL_MS; /* the rest is loaded here */
    char **ids = NULL;
    size_t n = 0;
    if (tk_store_jti_revoked_since(st, 0, loaded_at, &ids, &n) != TK_OK) {
        tk_snprintf(err, errlen, "cannot read the token revocation list: %s",
                    tk_store_last_error(st));
        tk_store_close(st);
        tk_keyauth_destroy(ka);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        tk_map_sput(ka->jtis, ids[i], ka);
    tk_store_ids_free(ids, n);
    tk_store_close(st);
    ka->base = base;
    ka->ttl_ms = cache_ttl_ms;
    ka->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ka->mdctx = EVP_MD_CTX_new();
    if (ka->sha256 == NULL || ka->mdctx == NULL) {
        tk_snprintf(err, errlen, "SHA-256 unavailable");
        tk_keyauth_destroy(ka);
        return NULL;
    }
    ka->worker = tk_store_worker_create(base, db_path, poll_tick, ka, POLL_MS, err, errlen);
    if (ka->worker == NULL) {
        tk_keyauth_destroy(ka);
        return NULL;
    }
    return ka;
}

void tk_keyauth_destroy(tk_keyauth_t *ka)
{
    if (ka == NULL)
        return;
    ka->closing = 1; /* the worker's remaining jobs are freed, no callback runs */
    tk_store_worker_destroy(ka->worker);
    size_t it = 0;
    void *val;
    while (tk_map_next(ka->cache, &it, NULL, NULL, &val))
        free(val);
    tk_map_destroy(ka->cache);
    tk_map_destroy(ka->jtis);
    tk_map_destroy(ka->pending);
    EVP_MD_CTX_free(ka->mdctx);
    EVP_MD_free(ka->sha256);
    free(ka);
}
