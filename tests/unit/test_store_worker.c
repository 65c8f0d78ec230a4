/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the store worker (src/store/worker.c) with a real event
 * loop and a real SQLite file: work runs on another thread with an open
 * store and done runs on the loop thread, in submission order; a write made
 * by a job is visible to the loop's own handle afterwards; the tick runs
 * periodically and its posts arrive on the loop; destroy runs done for jobs
 * whose work never ran; the queue is bounded.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/core.h"
#include "db_dir.h"
#include "store/store.h"
#include "store/worker.h"

typedef struct fixture {
    db_dir_t d;
    const char *path;
    struct event_base *base;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = tk_calloc(1, sizeof(*f));
    if (db_dir_make(&f->d, "tk_worker_") != 0) {
        free(f);
        return -1;
    }
    f->path = f->d.path;
    f->base = event_base_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    event_base_free(f->base);
    db_dir_remove(&f->d);
    free(f);
    return 0;
}

typedef struct job {
    int n;
    int had_store;
    int ran;
    pthread_t worker_thread;
    int *order; /* done appends n here */
    int *norder;
    struct event_base *base;
    int stop_after; /* done breaks the loop when *norder reaches it */
} job_t;

static void work(tk_store_t *st, void *arg)
{
    job_t *j = arg;
    j->ran = 1;
    j->had_store = st != NULL;
    j->worker_thread = pthread_self();
    char id[32];
    tk_snprintf(id, sizeof(id), "org%d", j->n);
    if (st != NULL && tk_store_org_ensure(st, id, "x", 1) != TK_OK)
        j->had_store = 0;
}

static void done(void *arg)
{
    job_t *j = arg;
    j->order[(*j->norder)++] = j->n;
    if (j->stop_after > 0 && *j->norder >= j->stop_after)
        event_base_loopbreak(j->base);
}

static void run_loop(struct event_base *base)
{
    struct timeval limit = {10, 0}; /* bounded */
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
}

static void test_jobs_in_order_on_threads(void **state)
{
    fixture_t *f = *state;
    char err[256];
    tk_store_worker_t *w =
        tk_store_worker_create(f->base, f->path, NULL, NULL, 0, err, sizeof(err));
    assert_non_null(w);
    int order[8], norder = 0;
    job_t jobs[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] =
            (job_t){.n = i, .order = order, .norder = &norder, .base = f->base, .stop_after = 8};
        assert_int_equal(tk_store_worker_submit(w, work, done, &jobs[i]), TK_OK);
    }
    run_loop(f->base);
    assert_int_equal(norder, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(order[i], i);
        assert_true(jobs[i].ran && jobs[i].had_store);
        assert_false(pthread_equal(jobs[i].worker_thread, pthread_self()));
    }
    tk_store_worker_destroy(w);
    /* the writes are in the file */
    tk_store_t *st = NULL;
    assert_int_equal(tk_store_open_sqlite(f->path, &st, err, sizeof(err)), TK_OK);
    assert_int_equal(tk_store_org_insert(st, "org7", "dup", 1), TK_EINVAL);
    tk_store_close(st);
}

typedef struct ticker {
    int ticks;
    int posted;
    struct event_base *base;
} ticker_t;

static void tick_done(void *arg)
{
    ticker_t *t = arg;
    if (++t->posted >= 3)
        event_base_loopbreak(t->base);
}

static void tick(tk_store_worker_t *w, tk_store_t *st, void *arg)
{
    ticker_t *t = arg;
    assert_non_null(st);
    t->ticks++;
    tk_store_worker_post(w, tick_done, t);
}

static void test_tick_and_post(void **state)
{
    fixture_t *f = *state;
    char err[256];
    ticker_t t = {.base = f->base};
    uint64_t t0 = tk_now_ms();
    tk_store_worker_t *w = tk_store_worker_create(f->base, f->path, tick, &t, 20, err, sizeof(err));
    assert_non_null(w);
    run_loop(f->base);
    uint64_t ms = tk_now_ms() - t0;
    tk_store_worker_destroy(w);
    assert_true(t.posted >= 3);
    assert_true(t.ticks >= t.posted);
    assert_true(ms >= 55); /* three ticks 20 ms apart */
    assert_true(ms < 5000);
}

static int blocker_running;

static void slow_work(tk_store_t *st, void *arg)
{
    (void)st;
    (void)arg;
    __atomic_store_n(&blocker_running, 1, __ATOMIC_SEQ_CST);
    usleep(200 * 1000);
}

static void count_done(void *arg)
{
    ++*(int *)arg;
}

static void test_destroy_runs_done_for_unrun_jobs(void **state)
{
    fixture_t *f = *state;
    char err[256];
    tk_store_worker_t *w =
        tk_store_worker_create(f->base, f->path, NULL, NULL, 0, err, sizeof(err));
    assert_non_null(w);
    int blocker_done = 0;
    __atomic_store_n(&blocker_running, 0, __ATOMIC_SEQ_CST);
    assert_int_equal(tk_store_worker_submit(w, slow_work, count_done, &blocker_done), TK_OK);
    for (int i = 0; i < 200 && !__atomic_load_n(&blocker_running, __ATOMIC_SEQ_CST); i++)
        usleep(5000);
    assert_true(__atomic_load_n(&blocker_running, __ATOMIC_SEQ_CST));
    /* the worker is busy: the queue fills up to its bound */
    int order[TK_STORE_WORKER_MAX_QUEUE + 8], norder = 0;
    static job_t jobs[TK_STORE_WORKER_MAX_QUEUE + 8];
    int accepted = 0, refused = 0;
    for (int i = 0; i < TK_STORE_WORKER_MAX_QUEUE + 8; i++) {
        jobs[i] = (job_t){.n = i, .order = order, .norder = &norder};
        if (tk_store_worker_submit(w, work, done, &jobs[i]) == TK_OK)
            accepted++;
        else
            refused++;
    }
    assert_int_equal(accepted, TK_STORE_WORKER_MAX_QUEUE);
    assert_int_equal(refused, 8);
    tk_store_worker_destroy(w); /* no loop turn: every done runs from here */
    assert_int_equal(blocker_done, 1);
    assert_int_equal(norder, accepted);
    for (int i = 0; i < accepted; i++) {
        assert_false(jobs[i].ran); /* stopped before their work */
        assert_int_equal(order[i], i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_in_order_on_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_and_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_runs_done_for_unrun_jobs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
