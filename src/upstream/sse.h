/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SSE: an incremental parser for text/event-stream bodies (the client side
 * of MCP's Streamable HTTP and legacy SSE transports). Complete lines are
 * taken from an input evbuffer; "data:" lines accumulate, "event:" names the
 * event, a blank line dispatches it; comments and other fields are ignored.
 * Event data and pending partial lines are capped at max bytes.
 */
#ifndef TK_UPSTREAM_SSE_H
#define TK_UPSTREAM_SSE_H

#include <event2/buffer.h>
#include <stddef.h>

#include "core/core.h"

typedef struct tk_sse {
    struct evbuffer *data; /* the current event's data, lines joined by '\n' */
    char event[32];        /* the current event's name ("" = message) */
    size_t max;
} tk_sse_t;

/* One dispatched event: data is len bytes (no trailing newline; not
 * NUL-terminated). Return 0 to go on, anything else to stop feeding. */
typedef int (*tk_sse_cb)(void *arg, const char *event, const char *data, size_t len);

void tk_sse_init(tk_sse_t *p, size_t max);
void tk_sse_clear(tk_sse_t *p);

/* Consume the complete lines in `in`, dispatching events to cb. Returns
 * TK_OK, 1 if cb asked to stop, or TK_ELIMIT when an event's data or an
 * unfinished line exceeds max (the stream should be dropped). */
int tk_sse_feed(tk_sse_t *p, struct evbuffer *in, tk_sse_cb cb, void *arg);

#endif
