/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mailbox: a lock-protected FIFO of messages posted from any thread and
 * delivered, in order, on one event loop (the consumer's), woken through an
 * eventfd. Messages are intrusive: a message struct starts with tk_mail_t.
 * Ownership: a posted message belongs to the mailbox until it is handed to
 * the delivery callback, which then owns it. No lock is held while the
 * callback runs, so it may post again (to this or another mailbox).
 * Threads: tk_mailbox_post is safe from any thread; create, drain and
 * destroy belong to the consumer (or to anyone once the consumer has
 * stopped).
 */
#ifndef TK_CORE_MAILBOX_H
#define TK_CORE_MAILBOX_H

#include <event2/event.h>
#include <stddef.h>

#include "core/core.h"

typedef struct tk_mail {
    struct tk_mail *next;
} tk_mail_t;

typedef struct tk_mailbox tk_mailbox_t;

/* Called on the consumer loop for each message, oldest first. */
typedef void (*tk_mailbox_fn)(void *arg, tk_mail_t *m);

/* A mailbox delivering on base. NULL if no eventfd could be created. */
tk_mailbox_t *tk_mailbox_create(struct event_base *base, tk_mailbox_fn fn, void *arg);
/* Messages still queued are handed to fn first (call it where fn may run). */
void tk_mailbox_destroy(tk_mailbox_t *mb);

/* Append m and wake the consumer. */
void tk_mailbox_post(tk_mailbox_t *mb, tk_mail_t *m);
/* Deliver what is queued now (also run by the loop on each wake-up);
 * returns how many messages were delivered. */
size_t tk_mailbox_drain(tk_mailbox_t *mb);

#endif
