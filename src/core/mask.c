/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Masking of secrets in text and JSON (see mask.h). Built-in rules and
 * configured patterns are PCRE2 programs applied one after the other with
 * pcre2_substitute(); exact registered values are replaced with a plain
 * search. Every rule maps an already masked text to itself, so masking twice
 * changes nothing.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "core/mask.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <pcre2.h>

#define MASK_JSON_DEPTH 32

typedef struct rule {
    pcre2_code *code;
    const char *repl; /* PCRE2 extended replacement */
} rule_t;

/* The built-in rules, in the order they run. */
static const struct {
    const char *re;
    const char *repl;
} builtin_src[] = {
    /* Authorization schemes: keep the scheme, hide the credential. */
    {"(?i)\\b(bearer|basic)(\\s+)(?!\\*\\*\\*\\*)[A-Za-z0-9._~+/=-]{8,}", "${1}${2}" TK_MASK},
    /* Tumiki API keys: tk_<id>_<secret>. */
    {"\\btk_(?!\\*\\*\\*\\*)[A-Za-z0-9_-]{8,}", "tk_" TK_MASK},
    /* JWS compact serialisation (JWTs). */
    {"\\beyJ[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]*", TK_MASK},
    /* PEM private keys, also cut off ones. */
    {"-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z ]*PRIVATE KEY-----|$)", TK_MASK},
    /* "name":"value" for secret-looking names: the whole quoted value. */
    {"(?i)((?:password|passwd|secret|token|api[_-]?key|authorization|cookie|private[_-]?key|"
     "credential)[A-Za-z0-9_-]*\"\\s*:\\s*\")(?!(?:(?:bearer|basic)\\s+)?\\*\\*\\*\\*\")"
     "(?:\\\\.|[^\"\\\\])+",
     "${1}" TK_MASK},
    /* name=value, name: value, "name":"value" for secret-looking names. */
    {"(?i)((?:password|passwd|secret|token|api[_-]?key|authorization|cookie|private[_-]?key|"
     "credential)[A-Za-z0-9_-]*\"?\\s*[:=]\\s*\"?)((?:bearer|basic)\\s+)?+"
     "(?!\\*\\*\\*\\*)(?:\\\\.|[^\\s\",;&}\\\\])+",
     "${1}${2}" TK_MASK},
};
#define N_BUILTIN (sizeof(builtin_src) / sizeof(builtin_src[0]))

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static rule_t builtin[N_BUILTIN];

static pthread_rwlock_t tables_lock = PTHREAD_RWLOCK_INITIALIZER;
static rule_t patterns[TK_MASK_MAX_PATTERNS];
static size_t n_patterns;
static char *secrets[TK_MASK_MAX_SECRETS];
static size_t secret_len[TK_MASK_MAX_SECRETS];
static size_t n_secrets;
static size_t shortest_secret; /* length of the shortest registered value */

static pcre2_code *compile(const char *re, int *errcode, PCRE2_SIZE *erroff)
{
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                     errcode, erroff, NULL);
    if (code != NULL)
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    return code;
}

static void builtin_init(void)
{
    for (size_t i = 0; i < N_BUILTIN; i++) {
        int ec;
        PCRE2_SIZE off;
        builtin[i].code = compile(builtin_src[i].re, &ec, &off);
        builtin[i].repl = builtin_src[i].repl;
        if (builtin[i].code == NULL)
            abort(); /* a constant pattern: caught by the unit tests */
    }
}

int tk_mask_add_secret(const char *value)
{
    if (value == NULL || strlen(value) < TK_MASK_SECRET_MIN)
        return TK_OK;
    int rc = TK_OK;
    pthread_rwlock_wrlock(&tables_lock);
    for (size_t i = 0; i < n_secrets; i++)
        if (strcmp(secrets[i], value) == 0)
            goto out;
    if (n_secrets == TK_MASK_MAX_SECRETS) {
        rc = TK_ELIMIT;
        goto out;
    }
    size_t len = strlen(value);
    if (n_secrets == 0 || len < shortest_secret)
        shortest_secret = len;
    secret_len[n_secrets] = len;
    secrets[n_secrets++] = tk_strdup(value);
out:
    pthread_rwlock_unlock(&tables_lock);
    return rc;
}

/* Compile a configured pattern, or say why not. */
static pcre2_code *compile_checked(const char *regex, int *rc, char *err, size_t errlen)
{
    *rc = TK_OK;
    if (regex == NULL || regex[0] == '\0') {
        tk_snprintf(err, errlen, "empty pattern");
        *rc = TK_EINVAL;
        return NULL;
    }
    if (strlen(regex) > TK_MASK_PATTERN_MAX) {
        tk_snprintf(err, errlen, "pattern longer than %d bytes", TK_MASK_PATTERN_MAX);
        *rc = TK_ELIMIT;
        return NULL;
    }
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = compile(regex, &ec, &off);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            msg[0] = '\0';
        tk_snprintf(err, errlen, "invalid regular expression at offset %zu: %s", (size_t)off,
                    (const char *)msg);
        *rc = TK_EINVAL;
    }
    return code;
}

int tk_mask_check_pattern(const char *regex, char *err, size_t errlen)
{
    int rc;
    pcre2_code_free(compile_checked(regex, &rc, err, errlen));
    return rc;
}

int tk_mask_add_pattern(const char *regex, char *err, size_t errlen)
{
    int rc;
    pcre2_code *code = compile_checked(regex, &rc, err, errlen);
    if (code == NULL)
        return rc;
    pthread_rwlock_wrlock(&tables_lock);
    if (n_patterns == TK_MASK_MAX_PATTERNS) {
        rc = TK_ELIMIT;
        tk_snprintf(err, errlen, "more than %d patterns", TK_MASK_MAX_PATTERNS);
        pcre2_code_free(code);
    } else {
        patterns[n_patterns].code = code;
        patterns[n_patterns].repl = TK_MASK;
        n_patterns++;
    }
    pthread_rwlock_unlock(&tables_lock);
    return rc;
}

void tk_mask_reset(void)
{
    pthread_rwlock_wrlock(&tables_lock);
    for (size_t i = 0; i < n_patterns; i++)
        pcre2_code_free(patterns[i].code);
    n_patterns = 0;
    for (size_t i = 0; i < n_secrets; i++) {
        OPENSSL_cleanse(secrets[i], strlen(secrets[i]));
        free(secrets[i]);
    }
    n_secrets = 0;
    shortest_secret = 0;
    pthread_rwlock_unlock(&tables_lock);
}

/* Per-thread match data, big enough for every rule's groups; freed when
 * its thread exits. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *md)
{
    pcre2_match_data_free(md);
}

static void md_key_init(void)
{
    if (pthread_key_create(&md_key, md_free) != 0)
        abort();
}

static pcre2_match_data *thread_match_data(void)
{
    pthread_once(&md_once, md_key_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md == NULL) {
        md = pcre2_match_data_create(8, NULL);
        if (md != NULL && pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

/* Run one rule over *s (heap, length *len), replacing it on a change. Most
 * texts have no match: one match attempt, no allocation. */
static void apply(const rule_t *r, char **s, size_t *len)
{
    pcre2_match_data *md = thread_match_data();
    if (md == NULL || pcre2_match(r->code, (PCRE2_SPTR)*s, *len, 0, 0, md, NULL) < 0)
        return; /* no match, or a match-time limit: leave the text */
    size_t cap = *len + *len / 2 + 64;
    for (int attempt = 0; attempt < 3; attempt++) {
        char *out = tk_malloc(cap);
        PCRE2_SIZE outlen = cap;
        int rc = pcre2_substitute(r->code, (PCRE2_SPTR)*s, *len, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_EXTENDED |
                                      PCRE2_SUBSTITUTE_UNSET_EMPTY |
                                      PCRE2_SUBSTITUTE_OVERFLOW_LENGTH,
                                  md, NULL, (PCRE2_SPTR)r->repl, PCRE2_ZERO_TERMINATED,
                                  (PCRE2_UCHAR *)out, &outlen);
        if (rc > 0) {
            free(*s);
            *s = out;
            *len = outlen;
            return;
        }
        free(out);
        if (rc != PCRE2_ERROR_NOMEMORY)
            return;
        cap = outlen + 1;
    }
}

/* Can any built-in rule match? Every rule needs one of these words (in any
 * case): the scheme names, "tk_", "eyJ", the PEM header, and the start of
 * each secret-looking name of the two name=value rules ("pass" for password
 * and passwd, "api" for api_key, "private" for private_key), or a letter
 * that PCRE2 takes for s or k when it ignores case (long s, Kelvin). Text without
 * them skips the regular expressions. One pass: tables of the words' first
 * and second letters pick the few positions worth comparing. */
#define W(x) {x, sizeof(x) - 1}
static const struct {
    const char *w;
    size_t len;
} trigger[] = {W("api"),   W("authorization"), W("bearer"),     W("basic"),  W("cookie"),
               W("credential"), W("eyj"),      W("pass"),       W("private"), W("secret"),
               W("tk_"),   W("token"),         W("-----begin"),
               /* caseless matching in UTF mode also takes U+017F LATIN SMALL
                * LETTER LONG S for s and U+212A KELVIN SIGN for k */
               W("\xc5\xbf"), W("\xe2\x84\xaa")};
#undef W
#define N_TRIGGER (sizeof(trigger) / sizeof(trigger[0]))
_Static_assert(N_TRIGGER <= 16, "one bit per trigger word in a uint16_t");

/* first[c] / second[c]: the trigger words (one bit each) whose first /
 * second letter is c in either case. */
static uint16_t trig_first[256], trig_second[256];
static pthread_once_t trig_once = PTHREAD_ONCE_INIT;

static void trig_init(void)
{
    for (size_t w = 0; w < N_TRIGGER; w++) {
        for (int k = 0; k < 2; k++) {
            uint16_t *t = k == 0 ? trig_first : trig_second;
            unsigned char c = (unsigned char)trigger[w].w[k];
            t[c] |= (uint16_t)(1u << w);
            t[toupper(c)] |= (uint16_t)(1u << w);
        }
    }
}

static int builtin_may_match(const char *s, size_t len)
{
    pthread_once(&trig_once, trig_init);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i + 2 <= len; i++) {
        unsigned m = trig_first[u[i]] & trig_second[u[i + 1]];
        for (size_t w = 0; m != 0; w++, m >>= 1)
            if ((m & 1) && trigger[w].len <= len - i &&
                strncasecmp(s + i, trigger[w].w, trigger[w].len) == 0)
                return 1;
    }
    return 0;
}

/* Replace every occurrence of the registered exact values. */
static void apply_secrets(char **s, size_t *len)
{
    for (size_t i = 0; i < n_secrets; i++) {
        size_t sl = secret_len[i];
        char *hit = memmem(*s, *len, secrets[i], sl);
        if (hit == NULL)
            continue;
        size_t cap = *len + 1;
        char *out = tk_malloc(cap);
        size_t o = 0;
        const char *p = *s;
        const char *end = *s + *len;
        while (hit != NULL) {
            memcpy(out + o, p, (size_t)(hit - p));
            o += (size_t)(hit - p);
            memcpy(out + o, TK_MASK, sizeof(TK_MASK) - 1); /* mask <= TK_MASK_SECRET_MIN */
            o += sizeof(TK_MASK) - 1;
            p = hit + sl;
            hit = memmem(p, (size_t)(end - p), secrets[i], sl);
        }
        memcpy(out + o, p, (size_t)(end - p));
        o += (size_t)(end - p);
        out[o] = '\0';
        free(*s);
        *s = out;
        *len = o;
    }
}

char *tk_mask_str(const char *in)
{
    pthread_once(&builtin_once, builtin_init);
    size_t len = strlen(in);
    char *s = tk_strndup(in, len);
    pthread_rwlock_rdlock(&tables_lock);
    apply_secrets(&s, &len);
    if (builtin_may_match(s, len))
        for (size_t i = 0; i < N_BUILTIN; i++)
            apply(&builtin[i], &s, &len);
    for (size_t i = 0; i < n_patterns; i++)
        apply(&patterns[i], &s, &len);
    pthread_rwlock_unlock(&tables_lock);
    return s;
}

/* Does a registered value or a configured pattern occur in s? Called with
 * the tables locked. */
static int tables_hit(const char *s, size_t len)
{
    for (size_t i = 0; i < n_secrets && len >= shortest_secret; i++)
        if (secret_len[i] <= len && memmem(s, len, secrets[i], secret_len[i]) != NULL)
            return 1;
    pcre2_match_data *md = n_patterns ? thread_match_data() : NULL;
    for (size_t i = 0; i < n_patterns; i++)
        if (md == NULL || pcre2_match(patterns[i].code, (PCRE2_SPTR)s, len, 0, 0, md, NULL) >= 0)
            return 1;
    return 0;
}

/* tk_mask_may_change with the tables locked. */
static int may_change_locked(const char *s, size_t len)
{
    return memchr(s, '\0', len) != NULL || builtin_may_match(s, len) || tables_hit(s, len);
}

int tk_mask_may_change(const char *s, size_t len)
{
    pthread_rwlock_rdlock(&tables_lock);
    int hit = may_change_locked(s, len);
    pthread_rwlock_unlock(&tables_lock);
    return hit;
}

unsigned tk_mask_may_change_each(const char *const *s, size_t n)
{
    unsigned bits = 0;
    pthread_rwlock_rdlock(&tables_lock);
    for (size_t i = 0; i < n && i < 32; i++)
        if (s[i] != NULL && may_change_locked(s[i], strlen(s[i])))
            bits |= 1u << i;
    pthread_rwlock_unlock(&tables_lock);
    return bits;
}

size_t tk_mask_buf(char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    char *m = tk_mask_str(buf);
    size_t n = strlen(m);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, m, n);
    buf[n] = '\0';
    free(m);
    return n;
}

/* Does a JSON member name look like it holds a secret? */
static int secret_name(const char *name)
{
#define W(x) {x, sizeof(x) - 1}
    static const struct {
        const char *w;
        size_t len;
    } words[] = {W("password"), W("passwd"),     W("privatekey"), W("secret"),
                 W("apikey"),   W("authorization"), W("cookie"), W("credential")};
#undef W
    char low[64];
    size_t n = 0;
    for (const char *p = name; *p != '\0' && n < sizeof(low) - 1; p++)
        if (*p != '_' && *p != '-')
            low[n++] = (char)tolower((unsigned char)*p);
    low[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        char c = low[i];
        if (c != 'p' && c != 's' && c != 'a' && c != 'c') /* the words' first letters */
            continue;
        for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
            if (words[w].w[0] == c && words[w].len <= n - i &&
                memcmp(low + i, words[w].w, words[w].len) == 0)
                return 1;
    }
    return n >= 5 && memcmp(low + n - 5, "token", 5) == 0;
}

static void mask_json_depth(json_t *v, int depth)
{
    if (json_is_object(v)) {
        size_t n = json_object_size(v), i = 0;
        char **keys = tk_calloc(n ? n : 1, sizeof(*keys));
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            keys[i++] = tk_strdup(k);
        }
        for (i = 0; i < n; i++) {
            x = json_object_get(v, keys[i]);
            if (secret_name(keys[i]) || depth >= MASK_JSON_DEPTH)
                json_object_set_new(v, keys[i], json_string(TK_MASK));
            else
                mask_json_depth(x, depth + 1);
            char *mk = tk_mask_str(keys[i]);
            if (strcmp(mk, keys[i]) != 0) {
                x = json_incref(json_object_get(v, keys[i]));
                json_object_del(v, keys[i]);
                json_object_set_new(v, mk, x);
            }
            free(mk);
            free(keys[i]);
        }
        free(keys);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (depth >= MASK_JSON_DEPTH)
                json_array_set_new(v, i, json_string(TK_MASK));
            else
                mask_json_depth(json_array_get(v, i), depth + 1);
        }
    } else if (json_is_string(v)) {
        char *m = tk_mask_str(json_string_value(v));
        if (strcmp(m, json_string_value(v)) != 0)
            (void)json_string_set(v, m);
        free(m);
    }
}

static int json_may_change_depth(const json_t *v, int depth)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x) {
            if (depth >= MASK_JSON_DEPTH || secret_name(k) || may_change_locked(k, strlen(k)) ||
                json_may_change_depth(x, depth + 1))
                return 1;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            if (depth >= MASK_JSON_DEPTH || json_may_change_depth(x, depth + 1))
                return 1;
        }
    } else if (json_is_string(v)) {
        return may_change_locked(json_string_value(v), json_string_length(v));
    }
    return 0;
}

int tk_mask_json_may_change(const json_t *v)
{
    if (v == NULL)
        return 0;
    pthread_rwlock_rdlock(&tables_lock);
    int hit = json_may_change_depth(v, 0);
    pthread_rwlock_unlock(&tables_lock);
    return hit;
}

void tk_mask_json(json_t *v)
{
    if (v != NULL)
        mask_json_depth(v, 0);
}
