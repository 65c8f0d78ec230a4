/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dashboard sessions, held in memory and shared by every HTTP thread (each
 * operation takes the table's lock; sessions are handed out as copies). A session id is 256
 * random bits (64 hex digits), handed to the browser once in a cookie and
 * kept here only as its SHA-256, so a memory dump or a debug listing shows
 * no usable id. Each session has a CSRF token (256 random bits, synchronizer
 * pattern), an idle timeout and an absolute lifetime; an expired session is
 * dropped when next seen and by tk_sessions_sweep. Sessions do not survive a
 * restart (everyone logs in again). Times are monotonic milliseconds
 * (tk_now_ms) passed in by the caller. Any thread may call these.
 */
#ifndef TK_ADMIN_SESSION_H
#define TK_ADMIN_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define TK_SESSION_ID_LEN 64   /* hex digits of a session id */
#define TK_SESSION_CSRF_LEN 64 /* hex digits of a CSRF token */
#define TK_SESSION_COOKIE "__Host-tumiki_session"

typedef struct tk_sessions tk_sessions_t;

/* One session. The CSRF token is a secret: never log it. */
typedef struct tk_session {
    char user_id[65];
    char email[256];
    char csrf[TK_SESSION_CSRF_LEN + 1];
    uint64_t created_ms;
    uint64_t last_ms;
} tk_session_t;

tk_sessions_t *tk_sessions_create(uint64_t idle_ms, uint64_t lifetime_ms, size_t max);
void tk_sessions_destroy(tk_sessions_t *ss);

/* A new session for user_id (email is informational). id_out receives the
 * id to put in the cookie (TK_SESSION_ID_LEN + 1 bytes), *out a copy of the
 * session. TK_ELIMIT when max sessions are live, TK_EIO when the random
 * source fails. */
int tk_sessions_open(tk_sessions_t *ss, const char *user_id, const char *email, uint64_t now_ms,
                     char *id_out, tk_session_t *out) TK_WUR;

/* The live session whose id is id (len bytes, need not be NUL-terminated),
 * its last-use time moved to now_ms, copied into *out: TK_OK, or TK_ENOENT
 * for a malformed, unknown, idle or too old id (an expired one is removed). */
int tk_sessions_find(tk_sessions_t *ss, const char *id, size_t len, uint64_t now_ms,
                     tk_session_t *out) TK_WUR;

/* End the session with this id: 1 if there was one, else 0. */
int tk_sessions_close(tk_sessions_t *ss, const char *id, size_t len);
/* End every session of user_id (password change, disabled or deleted
 * account); returns how many. */
size_t tk_sessions_close_user(tk_sessions_t *ss, const char *user_id);
/* Drop expired sessions; returns how many. */
size_t tk_sessions_sweep(tk_sessions_t *ss, uint64_t now_ms);
size_t tk_sessions_count(tk_sessions_t *ss);

/* A fresh random id (TK_SESSION_ID_LEN hex digits and a NUL into out), and
 * the hex SHA-256 of an id (65 bytes into out): for other records bound to a
 * cookie the same way (the single sign-on pre-login). */
int tk_session_new_id(char *out) TK_WUR;
void tk_session_id_hash(const char *id, size_t len, char *out);

/* Whether token (len bytes; NULL never matches) is s's CSRF token
 * (constant-time compare). */
int tk_session_csrf_ok(const tk_session_t *s, const char *token, size_t len);

/* The value of cookie `name` in a Cookie request header ("a=1; b=2"):
 * *val and *len point into header. 0 if found, TK_ENOENT if not. */
int tk_cookie_find(const char *header, const char *name, const char **val, size_t *len) TK_WUR;

#endif
