/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store worker: a work queue (core/workq.h: the thread, the job list and the
 * pipe back to the loop) whose worker thread owns a store handle, runs each
 * job's work in order, posts it back for its done, and runs the tick when it
 * is due.
 */
#include "store/worker.h"

#include <stdlib.h>

#include "core/workq.h"

#define MOD "store"
#define IDLE_WAIT_MS 60000 /* without a tick: how long one wait may last */

typedef struct wjob {
    tk_workq_item_t link;  /* first: the queue's view of the job */
    tk_store_work_fn work; /* NULL for a post */
    tk_store_done_fn done;
    void *arg;
} wjob_t;

struct tk_store_worker {
    char *db_path;
    tk_workq_t *q;
    tk_store_tick_fn tick;
    void *tick_arg;
    uint32_t tick_ms;
};

static void run(void *arg, tk_workq_t *q)
{
    tk_store_worker_t *w = arg;
    char err[256];
    tk_store_t *st = NULL;
    if (tk_store_open_sqlite(w->db_path, &st, err, sizeof(err)) != TK_OK) {
        tk_error(MOD, "worker: store unavailable: %s", err);
        st = NULL;
    }
    uint64_t next_tick = tk_now_ms() + w->tick_ms;
    int stop = 0;
    while (!stop) {
        uint64_t now = tk_now_ms();
        /* wait for jobs, or until the tick is due (at least 1 ms: 0 polls) */
        int64_t wait = w->tick == NULL   ? IDLE_WAIT_MS
                       : next_tick > now ? (int64_t)(next_tick - now)
                                         : 1;
        tk_workq_item_t *it = tk_workq_take(q, wait, &stop);
        while (it != NULL) {
            wjob_t *j = (wjob_t *)it;
            it = it->next;
            if (!stop) /* stopping: the rest go back unrun, for their done */
                j->work(st, j->arg);
            tk_workq_post(q, &j->link);
        }
        if (!stop && w->tick != NULL && tk_now_ms() >= next_tick) {
            w->tick(w, st, w->tick_arg);
            next_tick = tk_now_ms() + w->tick_ms;
        }
    }
    tk_store_close(st);
}

static void deliver(void *arg, tk_workq_item_t *items)
{
    (void)arg;
    while (items != NULL) {
        wjob_t *j = (wjob_t *)items;
        items = items->next;
        j->done(j->arg);
        free(j);
    }
}

/* Jobs never delivered (destroy): their done runs here. */
static void free_item(tk_workq_item_t *item)
{
    wjob_t *j = (wjob_t *)item;
    j->done(j->arg);
    free(j);
}

static const tk_workq_ops_t worker_ops = {run, deliver, free_item};

tk_store_worker_t *tk_store_worker_create(struct event_base *base, const char *db_path,
                                          tk_store_tick_fn tick, void *tick_arg, uint32_t tick_ms,
                                          char *err, size_t errlen)
{
    tk_store_worker_t *w = tk_calloc(1, sizeof(*w));
    w->db_path = tk_strdup(db_path);
    w->tick = tick;
    w->tick_arg = tick_arg;
    w->tick_ms = tick_ms;
    w->q = tk_workq_create(base, &worker_ops, w, err, errlen);
    if (w->q == NULL) {
        tk_store_worker_destroy(w);
        return NULL;
    }
    return w;
}

void tk_store_worker_destroy(tk_store_worker_t *w)
{
    if (w == NULL)
        return;
    tk_workq_destroy(w->q);
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
    int rc = tk_workq_submit(w->q, &j->link, TK_STORE_WORKER_MAX_QUEUE);
    if (rc != TK_OK)
        free(j);
    return rc;
}

void tk_store_worker_post(tk_store_worker_t *w, tk_store_done_fn done, void *arg)
{
    wjob_t *j = tk_calloc(1, sizeof(*j));
    j->done = done;
    j->arg = arg;
    tk_workq_post(w->q, &j->link);
}
