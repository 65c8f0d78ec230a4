/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Masking: the one place that knows what a secret looks like. The logger runs
 * every line through it and the audit trail every recorded value, so a secret
 * that reaches either is replaced by TK_MASK before anything is written.
 *
 * What is recognised:
 *   - built in: the value after "Bearer " / "Basic " (any case), tk_ API
 *     keys, JWT-shaped tokens (three base64url parts starting "eyJ"), PEM
 *     private-key blocks, and the value in `name=value`, `name: value` or
 *     `"name":"value"` where name looks secret (password, passwd, secret,
 *     token, api_key / apikey / api-key, access_token, refresh_token,
 *     client_secret, authorization, cookie, private_key, credential);
 *   - exact values registered with tk_mask_add_secret() (the gateway
 *     registers every env/header value of its upstreams, its bootstrap token
 *     and its signing keys at start);
 *   - PCRE2 patterns added with tk_mask_add_pattern() (config
 *     `logging.mask_patterns`, e.g. e-mail addresses or card numbers): the
 *     whole match is replaced.
 *
 * Threads: registration happens at start-up, before other threads run; a
 * read-write lock still guards the tables so that a late registration is
 * safe. Masking itself is reentrant.
 */
#ifndef TK_MASK_H
#define TK_MASK_H

#include <stddef.h>

#include <jansson.h>

#include "core/core.h"

#define TK_MASK "****"
#define TK_MASK_SECRET_MIN 6      /* shorter exact values are not registered */
#define TK_MASK_MAX_SECRETS 1024  /* registered exact values */
#define TK_MASK_MAX_PATTERNS 64   /* configured patterns */
#define TK_MASK_PATTERN_MAX 1024  /* longest pattern source, bytes */

/* Remember an exact secret value. Values shorter than TK_MASK_SECRET_MIN
 * bytes are ignored (returns TK_OK: masking "abc" everywhere would mangle
 * text without protecting anything); duplicates are ignored. TK_ELIMIT when
 * the table is full. */
int tk_mask_add_secret(const char *value);

/* Compile a PCRE2 pattern (UTF mode) whose matches are replaced by TK_MASK.
 * TK_EINVAL with the compiler's complaint and offset in err for a bad
 * pattern, TK_ELIMIT when too long or when the table is full. */
int tk_mask_add_pattern(const char *regex, char *err, size_t errlen) TK_WUR;

/* Check that a pattern compiles, without registering it. */
int tk_mask_check_pattern(const char *regex, char *err, size_t errlen) TK_WUR;

/* Forget every registered secret and pattern (tests, reload). */
void tk_mask_reset(void);

/* A heap copy of s with every recognised secret replaced. Never NULL. */
char *tk_mask_str(const char *s);

/* Whether tk_mask_str could change the len bytes at s: 0 means it would
 * return them as they are, so a caller may use s without the copy; 1 may be
 * a false alarm (a trigger word without a secret). Text with a NUL byte
 * always answers 1. */
int tk_mask_may_change(const char *s, size_t len);
/* tk_mask_may_change for up to 32 NUL-terminated texts at once (NULL ones
 * answer 0): bit i set for s[i]. */
unsigned tk_mask_may_change_each(const char *const *s, size_t n);

/* Mask the NUL-terminated text in buf (capacity cap) in place; the result
 * is truncated to fit. Returns the new length. */
size_t tk_mask_buf(char *buf, size_t cap);

/* Mask a JSON value in place: every string value whose member name looks
 * secret is replaced whole, every other string is masked as text, member
 * names are masked as text too. Recurses into objects and arrays up to a
 * fixed depth; deeper values are replaced whole. */
void tk_mask_json(json_t *v);

/* Whether tk_mask_json would change anything in v (0: a copy of v masked
 * with tk_mask_json equals v), with the same conservative sense. */
int tk_mask_json_may_change(const json_t *v);

#endif
