/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key authentication: a verification worker thread with its own store
 * handle, a result pipe back to the event loop, the in-memory cache of
 * verified keys, and revocation polling.
 */
#include "auth/keyauth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/map.h"
#include "store/store.h"

#define MOD "auth"
#define POLL_MS 500
#define TOUCH_EVERY_MS 60000

enum { JOB_VERIFY = 1, JOB_TOUCH, JOB_REVOKED, JOB_JTIS };

typedef struct job {
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
    struct job *next;
} job_t;

typedef struct entry {
    tk_principal_t p;
    uint64_t verified_ms;
    uint64_t touched_ms;
} entry_t;

typedef struct queue {
    job_t *head, *tail;
} queue_t;

struct tk_keyauth {
    struct event_base *base;
    char *db_path;
    uint32_t ttl_ms;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    queue_t in;  /* loop -> worker */
    queue_t out; /* worker -> loop */
    int stop;
    int pipe_fd[2];
    struct event *notify_ev;
    tk_map_t *pending; /* handle -> job (loop side) */
    tk_map_t *cache;   /* sha256(token) hex -> entry_t */
    tk_map_t *jtis;    /* revoked JWT ids (values unused) */
    uint64_t next_handle;
    int64_t jti_loaded_at; /* when create() loaded the revocation list */
    EVP_MD *sha256;    /* fetched once: the one-shot SHA256() fetches per call */
    EVP_MD_CTX *mdctx; /* loop thread only */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void push(queue_t *q, job_t *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static job_t *take_all(queue_t *q)
{
    job_t *j = q->head;
    q->head = q->tail = NULL;
    return j;
}

static void job_free(job_t *j)
{
    tk_store_ids_free(j->revoked, j->nrevoked);
    OPENSSL_cleanse(j->secret, sizeof(j->secret));
    free(j);
}

/* ---- worker ---- */

static void post(tk_keyauth_t *ka, job_t *j)
{
    pthread_mutex_lock(&ka->mu);
    push(&ka->out, j);
    pthread_mutex_unlock(&ka->mu);
    char b = 1;
    if (write(ka->pipe_fd[1], &b, 1) < 0 && errno != EAGAIN)
        tk_warn(MOD, "cannot wake the event loop");
}

static void do_verify(tk_store_t *st, job_t *j)
{
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
    int64_t now = wall_ms();
    int ok = k.revoked_at == 0 && (k.expires_at == 0 || k.expires_at > now) &&
             tk_apikey_verify(j->secret, k.hash);
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

static void poll_jtis(tk_keyauth_t *ka, tk_store_t *st, int64_t *since)
{
    char **ids = NULL;
    size_t n = 0;
    int64_t now = wall_ms();
    if (tk_store_jti_revoked_since(st, *since, now, &ids, &n) != TK_OK)
        return;
    *since = now - 2 * POLL_MS;
    if (n == 0) {
        tk_store_ids_free(ids, n);
        return;
    }
    job_t *j = tk_calloc(1, sizeof(*j));
    j->kind = JOB_JTIS;
    j->revoked = ids;
    j->nrevoked = n;
    post(ka, j);
}

static void poll_revocations(tk_keyauth_t *ka, tk_store_t *st, int64_t *since)
{
    if (st == NULL)
        return;
    char **ids = NULL;
    size_t n = 0;
    int64_t now = wall_ms();
    if (tk_store_apikey_revoked_since(st, *since, &ids, &n) != TK_OK)
        return;
    *since = now - 2 * POLL_MS; /* overlap: a revocation is never missed */
    if (n == 0) {
        tk_store_ids_free(ids, n);
        return;
    }
    job_t *j = tk_calloc(1, sizeof(*j));
    j->kind = JOB_REVOKED;
    j->revoked = ids;
    j->nrevoked = n;
    post(ka, j);
}

static void *worker_main(void *arg)
{
    tk_keyauth_t *ka = arg;
    char err[256];
    tk_store_t *st = NULL;
    if (tk_store_open_sqlite(ka->db_path, &st, err, sizeof(err)) != TK_OK) {
        tk_error(MOD, "key store unavailable: %s", err);
        st = NULL;
    }
    int64_t since = wall_ms() - 2 * POLL_MS;
    int64_t jti_since = ka->jti_loaded_at - 2 * POLL_MS; /* create() loaded the rest */
    pthread_mutex_lock(&ka->mu);
    while (!ka->stop) {
        if (ka->in.head == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)POLL_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&ka->cv, &ka->mu, &ts);
        }
        job_t *jobs = take_all(&ka->in);
        pthread_mutex_unlock(&ka->mu);
        while (jobs) {
            job_t *j = jobs;
            jobs = j->next;
            if (j->kind == JOB_VERIFY) {
                do_verify(st, j);
                post(ka, j);
            } else { /* JOB_TOUCH */
                if (st && tk_store_apikey_touch(st, j->id, wall_ms()) != TK_OK)
                    tk_debug(MOD, "last-used time not updated");
                job_free(j);
            }
        }
        poll_revocations(ka, st, &since);
        if (st)
            poll_jtis(ka, st, &jti_since);
        pthread_mutex_lock(&ka->mu);
    }
    pthread_mutex_unlock(&ka->mu);
    if (st)
        tk_store_close(st);
    return NULL;
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

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_keyauth_t *ka = arg;
    char buf[256];
    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&ka->mu);
    job_t *jobs = take_all(&ka->out);
    pthread_mutex_unlock(&ka->mu);
    while (jobs) {
        job_t *j = jobs;
        jobs = j->next;
        if (j->kind == JOB_REVOKED) {
            for (size_t i = 0; i < j->nrevoked; i++)
                drop_key(ka, j->revoked[i]);
        } else if (j->kind == JOB_JTIS) {
            for (size_t i = 0; i < j->nrevoked; i++)
                tk_map_sput(ka->jtis, j->revoked[i], ka);
        } else if (!j->cancelled) {
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

static void enqueue(tk_keyauth_t *ka, job_t *j)
{
    pthread_mutex_lock(&ka->mu);
    push(&ka->in, j);
    pthread_cond_signal(&ka->cv);
    pthread_mutex_unlock(&ka->mu);
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
        (e->p.expires_at_ms == 0 || e->p.expires_at_ms > wall_ms())) {
        *out = e->p;
        if (now - e->touched_ms > TOUCH_EVERY_MS) {
            e->touched_ms = now;
            job_t *t = tk_calloc(1, sizeof(*t));
            t->kind = JOB_TOUCH;
            tk_snprintf(t->id, sizeof(t->id), "%s", id);
            enqueue(ka, t);
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
    j->kind = JOB_VERIFY;
    j->handle = ++ka->next_handle;
    memcpy(j->id, id, sizeof(id));
    memcpy(j->secret, secret, sizeof(secret));
    memcpy(j->token_hash, th, sizeof(th));
    j->cb = cb;
    j->arg = arg;
    OPENSSL_cleanse(secret, sizeof(secret));
    tk_map_put(ka->pending, j->handle, j);
    if (handle)
        *handle = j->handle;
    enqueue(ka, j);
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

tk_keyauth_t *tk_keyauth_create(struct event_base *base, const char *db_path,
                                uint32_t cache_ttl_ms, char *err, size_t errlen)
{
    /* open once here: creates the file and applies migrations, so a broken
     * store stops start-up with a clear error; and load the JWT revocation
     * list before the first request can arrive */
    tk_store_t *st = NULL;
    if (tk_store_open_sqlite(db_path, &st, err, errlen) != TK_OK)
        return NULL;
    tk_keyauth_t *ka = tk_calloc(1, sizeof(*ka));
    ka->jtis = tk_map_create();
    ka->jti_loaded_at = wall_ms();
    char **ids = NULL;
    size_t n = 0;
    if (tk_store_jti_revoked_since(st, 0, ka->jti_loaded_at, &ids, &n) != TK_OK) {
        tk_snprintf(err, errlen, "cannot read the token revocation list: %s",
                    tk_store_last_error(st));
        tk_store_close(st);
        tk_map_destroy(ka->jtis);
        free(ka);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        tk_map_sput(ka->jtis, ids[i], ka);
    tk_store_ids_free(ids, n);
    tk_store_close(st);
    ka->base = base;
    ka->db_path = tk_strdup(db_path);
    ka->ttl_ms = cache_ttl_ms;
    ka->pending = tk_map_create();
    ka->cache = tk_map_create();
    pthread_mutex_init(&ka->mu, NULL);
    pthread_cond_init(&ka->cv, NULL);
    ka->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ka->mdctx = EVP_MD_CTX_new();
    if (ka->sha256 == NULL || ka->mdctx == NULL) {
        tk_snprintf(err, errlen, "SHA-256 unavailable");
        tk_keyauth_destroy(ka);
        return NULL;
    }
    if (pipe2(ka->pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        tk_snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        tk_keyauth_destroy(ka);
        return NULL;
    }
    ka->notify_ev = event_new(base, ka->pipe_fd[0], EV_READ | EV_PERSIST, notify_cb, ka);
    event_add(ka->notify_ev, NULL);
    if (pthread_create(&ka->thread, NULL, worker_main, ka) != 0) {
        tk_snprintf(err, errlen, "cannot start the key verification thread");
        tk_keyauth_destroy(ka);
        return NULL;
    }
    ka->started = 1;
    return ka;
}

void tk_keyauth_destroy(tk_keyauth_t *ka)
{
    if (ka == NULL)
        return;
    if (ka->started) {
        pthread_mutex_lock(&ka->mu);
        ka->stop = 1;
        pthread_cond_signal(&ka->cv);
        pthread_mutex_unlock(&ka->mu);
        pthread_join(ka->thread, NULL);
    }
    job_t *j = take_all(&ka->in);
    job_t *o = take_all(&ka->out);
    while (j) {
        job_t *n = j->next;
        job_free(j);
        j = n;
    }
    while (o) {
        job_t *n = o->next;
        job_free(o);
        o = n;
    }
    if (ka->notify_ev)
        event_free(ka->notify_ev);
    for (int i = 0; i < 2; i++)
        if (ka->pipe_fd[i] > 0)
            close(ka->pipe_fd[i]);
    size_t it = 0;
    void *val;
    while (tk_map_next(ka->cache, &it, NULL, NULL, &val))
        free(val);
    tk_map_destroy(ka->cache);
    tk_map_destroy(ka->jtis);
    tk_map_destroy(ka->pending);
    EVP_MD_CTX_free(ka->mdctx);
    EVP_MD_free(ka->sha256);
    pthread_mutex_destroy(&ka->mu);
    pthread_cond_destroy(&ka->cv);
    free(ka->db_path);
    free(ka);
}
