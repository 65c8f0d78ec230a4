/* SPDX-License-Identifier: Apache-2.0 */
/* In-memory dashboard sessions keyed by SHA-256 of the session id. */
#include "admin/session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/map.h"

struct tk_sessions {
    pthread_mutex_t mu; /* guards everything below */
    tk_map_t *by_hash;  /* sha256(id) hex -> tk_session_t */
    uint64_t idle_ms;
    uint64_t lifetime_ms;
    size_t max;
};

tk_sessions_t *tk_sessions_create(uint64_t idle_ms, uint64_t lifetime_ms, size_t max)
{
    tk_sessions_t *ss = tk_calloc(1, sizeof(*ss));
    pthread_mutex_init(&ss->mu, NULL);
    ss->by_hash = tk_map_create();
    ss->idle_ms = idle_ms;
    ss->lifetime_ms = lifetime_ms;
    ss->max = max;
    return ss;
}

static void session_free(tk_session_t *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

void tk_sessions_destroy(tk_sessions_t *ss)
{
    if (ss == NULL)
        return;
    size_t it = 0;
    void *val;
    while (tk_map_next(ss->by_hash, &it, NULL, NULL, &val))
        session_free(val);
    tk_map_destroy(ss->by_hash);
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}

static int well_formed(const char *id, size_t len)
{
    if (id == NULL || len != TK_SESSION_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

void tk_session_id_hash(const char *id, size_t len, char *out)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)id, len, md);
    tk_hex_encode(md, sizeof(md), out);
}

/* now_ms may be a little older than a session's times: another thread can
 * read the clock before this one and take the lock after it. */
static int expired(const tk_sessions_t *ss, const tk_session_t *s, uint64_t now_ms)
{
    return (now_ms > s->last_ms && now_ms - s->last_ms >= ss->idle_ms) ||
           (now_ms > s->created_ms && now_ms - s->created_ms >= ss->lifetime_ms);
}

static int random_hex(char *out, size_t hexlen)
{
    unsigned char raw[64];
    if (hexlen / 2 > sizeof(raw) || tk_random_bytes(raw, hexlen / 2) != TK_OK)
        return TK_EIO;
    tk_hex_encode(raw, hexlen / 2, out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return TK_OK;
}

int tk_session_new_id(char *out)
{
    return random_hex(out, TK_SESSION_ID_LEN);
}

static size_t sweep_locked(tk_sessions_t *ss, uint64_t now_ms);

int tk_sessions_open(tk_sessions_t *ss, const char *user_id, const char *email, uint64_t now_ms,
                     char *id_out, tk_session_t *out)
{
    memset(out, 0, sizeof(*out));
    tk_session_t *s = tk_calloc(1, sizeof(*s));
    char h[2 * SHA256_DIGEST_LENGTH + 1];
    if (random_hex(id_out, TK_SESSION_ID_LEN) != TK_OK ||
        random_hex(s->csrf, TK_SESSION_CSRF_LEN) != TK_OK) {
        session_free(s);
        return TK_EIO;
    }
    tk_snprintf(s->user_id, sizeof(s->user_id), "%s", user_id);
    tk_snprintf(s->email, sizeof(s->email), "%s", email ? email : "");
    s->created_ms = s->last_ms = now_ms;
    tk_session_id_hash(id_out, TK_SESSION_ID_LEN, h);
    pthread_mutex_lock(&ss->mu);
    if (tk_map_count(ss->by_hash) >= ss->max)
        sweep_locked(ss, now_ms);
    int rc = tk_map_count(ss->by_hash) >= ss->max ? TK_ELIMIT : TK_OK;
    if (rc == TK_OK) {
        session_free(tk_map_sdel(ss->by_hash, h)); /* 2^-256: never, but never leak either */
        tk_map_sput(ss->by_hash, h, s);
        *out = *s;
    }
    pthread_mutex_unlock(&ss->mu);
    if (rc != TK_OK)
        session_free(s);
    return rc;
}

int tk_sessions_find(tk_sessions_t *ss, const char *id, size_t len, uint64_t now_ms,
                     tk_session_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!well_formed(id, len))
        return TK_ENOENT;
    char h[2 * SHA256_DIGEST_LENGTH + 1];
    tk_session_id_hash(id, len, h);
    int rc = TK_ENOENT;
    pthread_mutex_lock(&ss->mu);
    tk_session_t *s = tk_map_sget(ss->by_hash, h);
    if (s != NULL && expired(ss, s, now_ms)) {
        session_free(tk_map_sdel(ss->by_hash, h));
    } else if (s != NULL) {
        if (now_ms > s->last_ms)
            s->last_ms = now_ms;
        *out = *s;
        rc = TK_OK;
    }
    pthread_mutex_unlock(&ss->mu);
    return rc;
}

int tk_sessions_close(tk_sessions_t *ss, const char *id, size_t len)
{
    if (!well_formed(id, len))
        return 0;
    char h[2 * SHA256_DIGEST_LENGTH + 1];
    tk_session_id_hash(id, len, h);
    pthread_mutex_lock(&ss->mu);
    tk_session_t *s = tk_map_sdel(ss->by_hash, h);
    pthread_mutex_unlock(&ss->mu);
    int found = s != NULL;
    session_free(s);
    return found;
}

/* Remove the sessions for which drop(s, arg) is true. */
static size_t remove_if(tk_sessions_t *ss,
                        int (*drop)(const tk_sessions_t *, const tk_session_t *, const void *),
                        const void *arg)
{
    size_t it = 0, n = 0;
    const char *k;
    void *val;
    char **gone = tk_calloc(tk_map_count(ss->by_hash) + 1, sizeof(*gone));
    while (tk_map_next(ss->by_hash, &it, NULL, &k, &val))
        if (drop(ss, val, arg))
            gone[n++] = tk_strdup(k);
    for (size_t i = 0; i < n; i++) {
        session_free(tk_map_sdel(ss->by_hash, gone[i]));
        free(gone[i]);
    }
    free(gone);
    return n;
}

static int of_user(const tk_sessions_t *ss, const tk_session_t *s, const void *arg)
{
    (void)ss;
    return strcmp(s->user_id, arg) == 0;
}

static int is_expired(const tk_sessions_t *ss, const tk_session_t *s, const void *arg)
{
    return expired(ss, s, *(const uint64_t *)arg);
}

size_t tk_sessions_close_user(tk_sessions_t *ss, const char *user_id)
{
    pthread_mutex_lock(&ss->mu);
    size_t n = remove_if(ss, of_user, user_id);
    pthread_mutex_unlock(&ss->mu);
    return n;
}

static size_t sweep_locked(tk_sessions_t *ss, uint64_t now_ms)
{
    return remove_if(ss, is_expired, &now_ms);
}

size_t tk_sessions_sweep(tk_sessions_t *ss, uint64_t now_ms)
{
    pthread_mutex_lock(&ss->mu);
    size_t n = sweep_locked(ss, now_ms);
    pthread_mutex_unlock(&ss->mu);
    return n;
}

size_t tk_sessions_count(tk_sessions_t *ss)
{
    pthread_mutex_lock(&ss->mu);
    size_t n = tk_map_count(ss->by_hash);
    pthread_mutex_unlock(&ss->mu);
    return n;
}

int tk_session_csrf_ok(const tk_session_t *s, const char *token, size_t len)
{
    return s != NULL && token != NULL && tk_ct_equal(token, len, s->csrf, strlen(s->csrf));
}

int tk_cookie_find(const char *header, const char *name, const char **val, size_t *len)
{
    size_t nlen = strlen(name);
    const char *p = header;
    while (p != NULL && *p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        if (plen > nlen && p[nlen] == '=' && strncmp(p, name, nlen) == 0) {
            *val = p + nlen + 1;
            *len = plen - nlen - 1;
            while (*len > 0 && ((*val)[*len - 1] == ' ' || (*val)[*len - 1] == '\t'))
                (*len)--;
            return 0;
        }
        p = end;
    }
    return TK_ENOENT;
}
