/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store worker: one thread with its own store handle that runs slow work
 * (SQLite writes, bcrypt) off the event loop. The loop submits a job (a work
 * function run on the worker thread with the worker's store, then a done
 * function run back on the loop thread); results travel through the job's
 * argument. Jobs run one at a time, in submission order.
 *
 * Threads: create, submit and destroy are called on the loop thread only;
 * post on the worker thread only.
 * work runs on the worker thread and must touch nothing the loop uses; done
 * runs on the loop thread. Each accepted job's done runs exactly once: after
 * its work, or from destroy (with work not run: the job's arg then says so,
 * as the caller set it before submitting).
 */
#ifndef TK_STORE_WORKER_H
#define TK_STORE_WORKER_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

#define TK_STORE_WORKER_MAX_QUEUE 256

typedef struct tk_store_worker tk_store_worker_t;

/* st is NULL if the worker could not open the store. */
typedef void (*tk_store_work_fn)(tk_store_t *st, void *arg);
typedef void (*tk_store_done_fn)(void *arg);
/* Periodic work on the worker thread (polling the store); it may hand
 * results to the loop with tk_store_worker_post. */
typedef void (*tk_store_tick_fn)(tk_store_worker_t *w, tk_store_t *st, void *arg);

/* Start a worker on the SQLite store at db_path. tick (may be NULL) runs on
 * the worker every tick_ms, between jobs. NULL on failure (err says why). */
tk_store_worker_t *tk_store_worker_create(struct event_base *base, const char *db_path,
                                          tk_store_tick_fn tick, void *tick_arg, uint32_t tick_ms,
                                          char *err, size_t errlen);
/* Stop the thread (after the job in progress), then run done for every job
 * whose done has not run. NULL is fine. */
void tk_store_worker_destroy(tk_store_worker_t *w);

/* Queue a job. TK_ELIMIT when TK_STORE_WORKER_MAX_QUEUE jobs are waiting
 * (then neither function ever runs). */
int tk_store_worker_submit(tk_store_worker_t *w, tk_store_work_fn work, tk_store_done_fn done,
                           void *arg) TK_WUR;

/* From the worker thread only (inside a tick or a work function): run done
 * with arg on the loop thread (or from destroy). Never fails. */
void tk_store_worker_post(tk_store_worker_t *w, tk_store_done_fn done, void *arg);

#endif
