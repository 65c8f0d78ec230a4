/* SPDX-License-Identifier: Apache-2.0 */
/* A worker thread with a job queue in, a result queue out and a wake-up pipe. */
#include "core/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct jobq {
    tk_worker_job_t *head, *tail;
    size_t n;
} jobq_t;

struct tk_worker {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    jobq_t in, out;
    int stop;
    int pipe_fd[2];
    struct event *notify_ev;
    void *(*init)(void *ctx);
    void (*fini)(void *state);
    void *ctx;
};

static void q_push(jobq_t *q, tk_worker_job_t *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

static tk_worker_job_t *q_take(jobq_t *q)
{
    tk_worker_job_t *j = q->head;
    q->head = q->tail = NULL;
    q->n = 0;
    return j;
}

static void *worker_main(void *arg)
{
    tk_worker_t *w = arg;
    void *state = w->init ? w->init(w->ctx) : NULL;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        if (w->in.head == NULL) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        tk_worker_job_t *jobs = q_take(&w->in);
        pthread_mutex_unlock(&w->mu);
        while (jobs) {
            tk_worker_job_t *j = jobs;
            jobs = j->next;
            j->run(state, j);
            pthread_mutex_lock(&w->mu);
            q_push(&w->out, j);
            pthread_mutex_unlock(&w->mu);
            char b = 1;
            if (write(w->pipe_fd[1], &b, 1) < 0 && errno != EAGAIN)
                tk_warn("worker", "cannot wake the event loop");
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    if (w->fini)
        w->fini(state);
    return NULL;
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_worker_t *w = arg;
    char buf[256];
    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&w->mu);
    tk_worker_job_t *jobs = q_take(&w->out);
    pthread_mutex_unlock(&w->mu);
    while (jobs) {
        tk_worker_job_t *j = jobs;
        jobs = j->next;
        j->done(j);
    }
}

tk_worker_t *tk_worker_create(struct event_base *base, void *(*init)(void *ctx),
                              void (*fini)(void *state), void *ctx, char *err, size_t errlen)
{
    tk_worker_t *w = tk_calloc(1, sizeof(*w));
    w->init = init;
    w->fini = fini;
    w->ctx = ctx;
    w->pipe_fd[0] = w->pipe_fd[1] = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pipe2(w->pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        tk_snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        tk_worker_destroy(w);
        return NULL;
    }
    w->notify_ev = event_new(base, w->pipe_fd[0], EV_READ | EV_PERSIST, notify_cb, w);
    if (w->notify_ev == NULL || event_add(w->notify_ev, NULL) != 0 ||
        pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        tk_snprintf(err, errlen, "cannot start a worker thread");
        tk_worker_destroy(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

int tk_worker_submit(tk_worker_t *w, tk_worker_job_t *job, size_t max_queued)
{
    pthread_mutex_lock(&w->mu);
    if (w->in.n >= max_queued) {
        pthread_mutex_unlock(&w->mu);
        return TK_ELIMIT;
    }
    q_push(&w->in, job);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return TK_OK;
}

static void discard_all(tk_worker_job_t *j)
{
    while (j) {
        tk_worker_job_t *n = j->next;
        j->discard(j);
        j = n;
    }
}

void tk_worker_destroy(tk_worker_t *w)
{
    if (w == NULL)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    discard_all(q_take(&w->in));
    discard_all(q_take(&w->out));
    if (w->notify_ev)
        event_free(w->notify_ev);
    for (int i = 0; i < 2; i++)
        if (w->pipe_fd[i] >= 0)
            close(w->pipe_fd[i]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
