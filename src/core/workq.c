/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Work queue: two mutex-protected FIFO lists (loop -> worker, worker ->
 * loop), a condition variable the worker sleeps on, and a self-pipe that
 * wakes the loop when results are posted.
 */
#include "core/workq.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct list {
    tk_workq_item_t *head, *tail;
    size_t n;
} list_t;

struct tk_workq {
    const tk_workq_ops_t *ops;
    void *arg;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    list_t in, out;
    int stop;
    int pipe_fd[2];
    struct event *ev;
};

static void list_push(list_t *l, tk_workq_item_t *it)
{
    it->next = NULL;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->n++;
}

static tk_workq_item_t *list_take(list_t *l)
{
    tk_workq_item_t *it = l->head;
    memset(l, 0, sizeof(*l));
    return it;
}

static void free_items(const tk_workq_ops_t *ops, tk_workq_item_t *it)
{
    while (it) {
        tk_workq_item_t *next = it->next;
        ops->free_item(it);
        it = next;
    }
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    tk_workq_t *q = arg;
    char buf[64];
    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&q->mu);
    tk_workq_item_t *items = list_take(&q->out);
    pthread_mutex_unlock(&q->mu);
    if (items)
        q->ops->deliver(q->arg, items);
}

static void *thread_main(void *arg)
{
    tk_workq_t *q = arg;
    q->ops->run(q->arg, q);
    return NULL;
}

tk_workq_t *tk_workq_create(struct event_base *base, const tk_workq_ops_t *ops, void *arg,
                            char *err, size_t errlen)
{
    tk_workq_t *q = tk_calloc(1, sizeof(*q));
    q->ops = ops;
    q->arg = arg;
    q->pipe_fd[0] = q->pipe_fd[1] = -1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (pipe2(q->pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        tk_snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        tk_workq_destroy(q);
        return NULL;
    }
    q->ev = event_new(base, q->pipe_fd[0], EV_READ | EV_PERSIST, on_pipe, q);
    if (q->ev == NULL || event_add(q->ev, NULL) != 0) {
        tk_snprintf(err, errlen, "cannot watch the worker pipe");
        tk_workq_destroy(q);
        return NULL;
    }
    if (pthread_create(&q->thread, NULL, thread_main, q) != 0) {
        tk_snprintf(err, errlen, "cannot start a worker thread");
        tk_workq_destroy(q);
        return NULL;
    }
    q->started = 1;
    return q;
}

void tk_workq_destroy(tk_workq_t *q)
{
    if (q == NULL)
        return;
    if (q->started) {
        pthread_mutex_lock(&q->mu);
        q->stop = 1;
        pthread_cond_signal(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->thread, NULL);
    }
    free_items(q->ops, list_take(&q->in));
    free_items(q->ops, list_take(&q->out));
    if (q->ev)
        event_free(q->ev);
    for (int i = 0; i < 2; i++)
        if (q->pipe_fd[i] >= 0)
            close(q->pipe_fd[i]);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

int tk_workq_submit(tk_workq_t *q, tk_workq_item_t *item, size_t max)
{
    pthread_mutex_lock(&q->mu);
    int full = q->in.n >= max;
    if (!full) {
        list_push(&q->in, item);
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return full ? TK_ELIMIT : TK_OK;
}

tk_workq_item_t *tk_workq_take(tk_workq_t *q, int64_t wait_ms, int *stop)
{
    pthread_mutex_lock(&q->mu);
    if (q->in.head == NULL && !q->stop && wait_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    *stop = q->stop;
    tk_workq_item_t *items = list_take(&q->in);
    pthread_mutex_unlock(&q->mu);
    return items;
}

void tk_workq_post(tk_workq_t *q, tk_workq_item_t *item)
{
    pthread_mutex_lock(&q->mu);
    list_push(&q->out, item);
    pthread_mutex_unlock(&q->mu);
    char b = 1;
    if (write(q->pipe_fd[1], &b, 1) < 0 && errno != EAGAIN)
        tk_warn("core", "cannot wake the event loop");
}
