/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local dashboard accounts: set a password, lift a lock. Every password goes
 * through the policy (auth/password.h) before it is hashed. These block for
 * a bcrypt (a quarter of a second or more at cost 12): call them from the
 * CLI or a worker thread, never from the event loop.
 */
#ifndef TK_ADMIN_ACCOUNT_H
#define TK_ADMIN_ACCOUNT_H

#include <stdio.h>

#include "core/core.h"
#include "store/store.h"

/* Set the password of user id (whose e-mail is email) after the policy
 * check. TK_EINVAL with *why set (a static sentence) when the policy
 * refuses it; TK_ENOENT for an unknown user. */
int tk_account_set_password(tk_store_t *st, const char *id, const char *email, const char *password,
                            size_t len, unsigned cost, const char **why) TK_WUR;

/* One line from in into buf (cap bytes) without its line end: its length,
 * or -1 for no line or one longer than cap - 2 (refused, not truncated). */
long tk_account_read_password(FILE *in, char *buf, size_t cap);

/* `tumiki account password|unlock EMAIL` (users are created with `tumiki
 * user add`): the password is one line read from in (never from the command
 * line). Messages go to out and errf. Returns the process exit status. */
int tk_account_cli(tk_store_t *st, unsigned cost, const char *sub, const char *email, FILE *in,
                   FILE *out, FILE *errf);

#endif
