/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dashboard login over HTTP, and the dashboard's static files.
 *   POST /auth/login    {"email","password"} -> session cookie + CSRF token
 *   POST /auth/logout   ends the session (session cookie + CSRF token)
 *   GET  /auth/session  the signed-in user and the session's CSRF token
 *   GET  /auth/methods  {"password": true, "oidc": bool}: what the sign-in page offers
 *   GET  /auth/oidc/start, /auth/oidc/callback   OpenID Connect sign-in (auth/oidc.h),
 *                       when "oidc" is configured
 *   GET  /, /<name>.<html|js|css|svg|png|ico>   files of dashboard.web_dir
 * Password checks run on a worker thread with its own store handle (bcrypt
 * never runs on the loop); failures and locks are kept in the store, so a
 * lock survives a restart; sessions are in memory (session.h). Every
 * failure, whatever its cause (unknown e-mail, wrong password, locked or
 * disabled account), gets the same answer; an unknown e-mail costs a bcrypt
 * against a dummy hash, like a known one. The cookie is
 *   __Host-tumiki_session=<id>; Path=/; Secure; HttpOnly; SameSite=Strict
 * and any session cookie the browser brought to the login is discarded
 * (no session fixation). Cookie-authenticated state-changing requests need
 * X-CSRF-Token and an Origin naming this server (tk_login_principal).
 * A tk_login_t is used by the thread of its event loop only; the shared
 * state it points to is locked.
 */
#ifndef TK_ADMIN_LOGIN_H
#define TK_ADMIN_LOGIN_H

#include <event2/event.h>
#include <event2/http.h>

#include "admin/session.h"
#include "config/config.h"
#include "core/core.h"

typedef struct tk_login tk_login_t;
/* What every HTTP thread's tk_login_t shares: the sessions, the sign-ins
 * under way and the per-address login limit (each locked inside). */
typedef struct tk_login_shared tk_login_shared_t;

tk_login_shared_t *tk_login_shared_create(const tk_config_t *cfg);
/* After every tk_login_t using it is destroyed. NULL is fine. */
void tk_login_shared_destroy(tk_login_shared_t *sh);

/* One per HTTP event loop (base): the routes below, answered on that loop,
 * with a password worker of its own. db_path: the SQLite store (the worker
 * opens its own handle). shared: the state every loop shares (NULL: this
 * one makes and owns its own, for a single loop). Opens cfg->dash_web_dir
 * when set (TK_EIO if it cannot). */
int tk_login_create(struct event_base *base, const tk_config_t *cfg, const char *db_path,
                    tk_login_shared_t *shared, tk_login_t **out, char *err, size_t errlen) TK_WUR;
/* Pending logins are dropped (their requests are not answered): call it
 * before the HTTP server frees its connections. */
void tk_login_destroy(tk_login_t *lg);

/* Answer req if path is one of the routes above: returns 1 when it did (or
 * will, for a login), 0 when path is not its. ipkey identifies the client
 * address (for the per-address login limit); self_origin is this server's
 * origin as the client addressed it ("http://127.0.0.1:8080"). */
int tk_login_route(tk_login_t *lg, struct evhttp_request *req, const char *path, const char *ipkey,
                   const char *self_origin);

/* The dashboard session of req, for routes that accept it as a principal.
 * TK_OK: *out is the session (valid until the next call on lg). TK_ENOENT:
 * no session cookie (try other credentials). TK_EINVAL: a cookie naming no
 * live session (401). TK_ESTATE: a state-changing method (POST, PUT, PATCH,
 * DELETE) without the session's X-CSRF-Token or without an Origin that is
 * self_origin or one of allowed_origins (403). *out is a copy (it holds the
 * CSRF token: wipe it when done). */
int tk_login_principal(tk_login_t *lg, struct evhttp_request *req, const char *self_origin,
                       tk_session_t *out) TK_WUR;
/* Answer req for a tk_login_principal failure (TK_EINVAL or TK_ESTATE). */
void tk_login_refuse(struct evhttp_request *req, int rc);

/* End every session of user_id (password change, account disabled or
 * deleted); returns how many. */
size_t tk_login_close_user(tk_login_t *lg, const char *user_id);

#endif
