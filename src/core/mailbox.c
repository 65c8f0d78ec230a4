/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mailbox: mutex-protected message list plus an eventfd that wakes the
 * consumer's event loop. The eventfd is written only when the list goes
 * from empty to non-empty, so a burst of posts costs one wake-up.
 */
#include "core/mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MOD "mailbox"

struct tk_mailbox {
    pthread_mutex_t mu;
    tk_mail_t *head, *tail; /* under mu */
    int fd;
    struct event *ev;
    tk_mailbox_fn fn;
    void *arg;
};

size_t tk_mailbox_drain(tk_mailbox_t *mb)
{
    pthread_mutex_lock(&mb->mu);
    tk_mail_t *m = mb->head;
    mb->head = mb->tail = NULL;
    pthread_mutex_unlock(&mb->mu);
    size_t n = 0;
    while (m != NULL) {
        tk_mail_t *next = m->next;
        m->next = NULL;
        mb->fn(mb->arg, m);
        m = next;
        n++;
    }
    return n;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    (void)what;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        tk_warn(MOD, "cannot read the wake-up counter");
    tk_mailbox_drain(arg);
}

void tk_mailbox_post(tk_mailbox_t *mb, tk_mail_t *m)
{
    m->next = NULL;
    pthread_mutex_lock(&mb->mu);
    int was_empty = mb->head == NULL;
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    pthread_mutex_unlock(&mb->mu);
    if (was_empty) {
        uint64_t one = 1;
        if (write(mb->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            tk_warn(MOD, "cannot wake a loop");
    }
}

tk_mailbox_t *tk_mailbox_create(struct event_base *base, tk_mailbox_fn fn, void *arg)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return NULL;
    tk_mailbox_t *mb = tk_calloc(1, sizeof(*mb));
    pthread_mutex_init(&mb->mu, NULL);
    mb->fd = fd;
    mb->fn = fn;
    mb->arg = arg;
    mb->ev = event_new(base, fd, EV_READ | EV_PERSIST, wake_cb, mb);
    event_add(mb->ev, NULL);
    return mb;
}

void tk_mailbox_destroy(tk_mailbox_t *mb)
{
    if (mb == NULL)
        return;
    tk_mailbox_drain(mb);
    event_free(mb->ev);
    close(mb->fd);
    pthread_mutex_destroy(&mb->mu);
    free(mb);
}
