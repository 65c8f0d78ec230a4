/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Off-loop work: one thread that runs jobs handed to it by the event loop
 * (password hashing, store reads and writes) and hands each back to the loop
 * thread when done, through a pipe watched by the loop. The thread keeps a
 * state of its own, made by init on the thread (a store handle, say) and
 * released by fini there. Jobs are caller-allocated structs that start with
 * a tk_worker_job_t; the worker never frees them: `done` (on the loop) or,
 * for jobs still queued at destroy, `discard` does. Only the loop thread
 * calls these functions.
 */
#ifndef TK_CORE_WORKER_H
#define TK_CORE_WORKER_H

#include <event2/event.h>
#include <stddef.h>

#include "core/core.h"

typedef struct tk_worker tk_worker_t;
typedef struct tk_worker_job tk_worker_job_t;

struct tk_worker_job {
    void (*run)(void *state, tk_worker_job_t *job); /* on the worker thread */
    void (*done)(tk_worker_job_t *job);             /* on the loop, after run */
    void (*discard)(tk_worker_job_t *job);          /* instead of done, at destroy */
    tk_worker_job_t *next;                          /* the worker's */
};

/* Start the thread. init(ctx) runs on it first and returns its state (may be
 * NULL); fini(state) runs on it last. NULL on failure, err says why. */
tk_worker_t *tk_worker_create(struct event_base *base, void *(*init)(void *ctx),
                              void (*fini)(void *state), void *ctx, char *err, size_t errlen);

/* Queue job (run, done and discard set). TK_ELIMIT when max_queued jobs are
 * already waiting (then nothing is queued and no callback runs). */
int tk_worker_submit(tk_worker_t *w, tk_worker_job_t *job, size_t max_queued) TK_WUR;

/* Stop the thread (a running job finishes first) and discard what is left. */
void tk_worker_destroy(tk_worker_t *w);

#endif
