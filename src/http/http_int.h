/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to src/http: the messages that travel between the HTTP threads
 * and the gateway core's loop, and the owner-side half of tk_hreq_t.
 */
#ifndef TK_HTTP_INT_H
#define TK_HTTP_INT_H

#include "core/mailbox.h"
#include "http/hreq.h"

/* Every message starts with this header. */
typedef enum {
    TK_HMSG_OP = 1, /* core -> HTTP thread: output for one request */
    TK_HMSG_CLOSED, /* HTTP thread -> core: a client went away */
    TK_HMSG_HANDOFF, /* HTTP thread -> core: serve this request */
    TK_HMSG_STOP,   /* -> HTTP thread: leave the loop */
    TK_HMSG_FORGET, /* core -> HTTP thread: drop an API key from its key cache */
} tk_hmsg_kind_t;

typedef struct tk_hmsg {
    tk_mail_t mail;
    tk_hmsg_kind_t kind;
} tk_hmsg_t;

/* Wrap req for the core. owner: the owning thread's mailbox, or NULL when
 * the core runs on this same thread (everything then happens at once and
 * the request is read in place). core: the core's mailbox (NULL with owner
 * NULL). Registers a close callback on req's connection. */
tk_hreq_t *tk_hreq_new(struct evhttp_request *req, tk_mailbox_t *owner, tk_mailbox_t *core);
/* Deliver a TK_HMSG_OP (owning thread) or TK_HMSG_CLOSED (core thread). */
void tk_hreq_run_op(tk_hmsg_t *m);
void tk_hreq_run_closed(tk_hmsg_t *m);

#endif
