/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store worker: a job list guarded by a mutex, a condition variable to wake
 * the thread (timed when there is a tick), and a non-blocking pipe whose read
 * end, watched by the event loop, brings finished jobs and posts back.
 */
#include "store/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOD "store"

typedef struct wjob {
    tk_store_work_fn work;
    tk_store_done_fn done;
    void *arg;
    struct wjob *next;
} wjob_t;

typedef struct wlist {
    wjob_t *head, *tail;
    size_t n;
} wlist_t;

struct tk_store_worker {
    char *db_path;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wlist_t todo;     /* loop -> worker */
    wlist_t finished; /* worker -> loop */
    int stop;
    int pipe_fd[2];
    struct event *wake;
    tk_store_tick_fn tick;
    void *tick_arg;
    uint32_t tick_ms;
};

static void wlist_push(wlist_t *l, wjob_t *j)
{
    j->next = NULL;
    if (l->tail != NULL)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

static wjob_t *wlist_pop(wlist_t *l)
{
    wjob_t *j = l->head;
    if (j != NULL) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->n--;
    }
    return j;
}

/* Under w->mu: queue a finished job for the loop and wake it. */
static void finish(tk_store_worker_t *w, wjob_t *j)
{
    wlist_push(&w->finished, j);
    char b = 1;
    if (write(w->pipe_fd[1], &b, 1) < 0 && errno != EAGAIN)
        tk_warn(MOD, "worker: cannot wake the event loop");
}

void tk_store_worker_post(tk_store_worker_t *w, tk_store_done_fn done, void *arg)
{
    wjob_t *j = tk_calloc(1, sizeof(*j));
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&w->mu);
    finish(w, j);
    pthread_mutex_unlock(&w->mu);
}

/* Under w->mu: wait for a job, a stop or (with a tick) the deadline. */
static void wait_work(tk_store_worker_t *w, uint64_t next_tick)
{
    while (!w->stop && w->todo.head == NULL) {
        if (w->tick == NULL) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        uint64_t now = tk_now_ms();
        if (now >= next_tick)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (next_tick - now) * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
}

static void *worker_thread(void *arg)
{
    tk_store_worker_t *w = arg;
    char err[256];
    tk_store_t *st = NULL;
    if (tk_store_open_sqlite(w->db_path, &st, err, sizeof(err)) != TK_OK) {
        tk_error(MOD, "worker: store unavailable: %s", err);
        st = NULL;
    }
    uint64_t next_tick = tk_now_ms() + w->tick_ms;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wait_work(w, next_tick);
        if (w->stop)
            break;
        wjob_t *j = wlist_pop(&w->todo);
        pthread_mutex_unlock(&w->mu);
        if (j != NULL) {
            j->work(st, j->arg);
            pthread_mutex_lock(&w->mu);
            finish(w, j);
            pthread_mutex_unlock(&w->mu);
        }
        if (w->tick != NULL && tk_now_ms() >= next_tick) {
            w->tick(w, st, w->tick_arg);
            next_tick = tk_now_ms() + w->tick_ms;
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    tk_store_close(st);
    return NULL;
}

static void run_done(wlist_t *l)
{
    wjob_t *j;
    while ((j = wlist_pop(l)) != NULL) {
        j->done(j->arg);
        free(j);
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    tk_store_worker_t *w = arg;
    char buf[64];
    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&w->mu);
    wlist_t done = w->finished;
    memset(&w->finished, 0, sizeof(w->finished));
    pthread_mutex_unlock(&w->mu);
    run_done(&done);
}

tk_store_worker_t *tk_store_worker_create(struct event_base *base, const char *db_path,
                                          tk_store_tick_fn tick, void *tick_arg, uint32_t tick_ms,
                                          char *err, size_t errlen)
{
    tk_store_worker_t *w = tk_calloc(1, sizeof(*w));
    w->db_path = tk_strdup(db_path);
    w->tick = tick;
    w->tick_arg = tick_arg;
    w->tick_ms = tick_ms;
    w->pipe_fd[0] = w->pipe_fd[1] = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pipe2(w->pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        tk_snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        tk_store_worker_destroy(w);
        return NULL;
    }
    w->wake = event_new(base, w->pipe_fd[0], EV_READ | EV_PERSIST, wake_cb, w);
    if (w->wake == NULL || event_add(w->wake, NULL) != 0 ||
        pthread_create(&w->thread, NULL, worker_thread, w) != 0) {
        tk_snprintf(err, errlen, "cannot start the store worker");
        tk_store_worker_destroy(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

void tk_store_worker_destroy(tk_store_worker_t *w)
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
    run_done(&w->finished);
    run_done(&w->todo); /* never ran: their done sees that */
    if (w->wake != NULL)
        event_free(w->wake);
    for (int i = 0; i < 2; i++)
        if (w->pipe_fd[i] >= 0)
            close(w->pipe_fd[i]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->db_path);
    free(w);
}

int tk_store_worker_submit(tk_store_worker_t *w, tk_store_work_fn work, tk_store_done_fn done,
                           void *arg)
{
    wjob_t *j = tk_calloc(1, sizeof(*j));
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&w->mu);
    int full = w->todo.n >= TK_STORE_WORKER_MAX_QUEUE;
    if (!full) {
        wlist_push(&w->todo, j);
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    if (full)
        free(j);
    return full ? TK_ELIMIT : TK_OK;
}
