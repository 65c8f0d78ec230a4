/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Work queue: one worker thread beside the event loop. The loop submits
 * items; the worker takes them in batches (or wakes on a timeout to do
 * periodic work) and posts results, which the loop receives through a
 * non-blocking pipe watched by an event, so the loop never waits on the
 * worker. Items are intrusive: any struct whose first member is a
 * tk_workq_item_t.
 *
 * Ownership: a submitted or posted item belongs to the queue until it is
 * handed on (to the worker by tk_workq_take, to `deliver` on the loop);
 * items still queued at tk_workq_destroy go to `free_item`. Threads:
 * create, submit and destroy on the loop thread; take and post on the worker.
 */
#ifndef TK_CORE_WORKQ_H
#define TK_CORE_WORKQ_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct tk_workq_item {
    struct tk_workq_item *next;
} tk_workq_item_t;

typedef struct tk_workq tk_workq_t;

typedef struct tk_workq_ops {
    /* The worker thread's body: loops on tk_workq_take until it reports stop. */
    void (*run)(void *arg, tk_workq_t *q);
    /* On the loop: a batch of posted items, oldest first; the callee frees them. */
    void (*deliver)(void *arg, tk_workq_item_t *items);
    /* Frees one item never handed on. */
    void (*free_item)(tk_workq_item_t *item);
} tk_workq_ops_t;

/* Start the worker (ops->run(arg, q)). NULL on failure, err says why. */
tk_workq_t *tk_workq_create(struct event_base *base, const tk_workq_ops_t *ops, void *arg,
                            char *err, size_t errlen);
/* Ask the worker to stop, wait for it, free what is left (NULL is fine).
 * No `deliver` runs after this. */
void tk_workq_destroy(tk_workq_t *q);

/* Loop: queue an item for the worker; TK_ELIMIT (item not taken) if `max`
 * items are already waiting. */
int tk_workq_submit(tk_workq_t *q, tk_workq_item_t *item, size_t max) TK_WUR;

/* Worker: wait until items are queued, stop is asked, or wait_ms passed;
 * return the queued items, oldest first (NULL if none). *stop is set once
 * tk_workq_destroy asked the worker to finish: it then returns what is left
 * and should end after handling it. */
tk_workq_item_t *tk_workq_take(tk_workq_t *q, int64_t wait_ms, int *stop);

/* Worker: hand an item to the loop's `deliver`. */
void tk_workq_post(tk_workq_t *q, tk_workq_item_t *item);

#endif
