/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upstream: one connection to one MCP server (a supervised stdio child
 * process, later also a remote Streamable HTTP / SSE server). The upstream
 * owns the JSON-RPC id space towards the server, so many client calls can be
 * multiplexed over one process: each request gets a fresh integer id and the
 * reply is handed to the caller's callback.
 *
 * Life cycle: created idle; started on the first request (or by
 * tk_upstream_start); initialize handshake; ready. If the process exits or the
 * handshake fails, calls already sent fail with a JSON-RPC error naming the
 * server, calls not yet sent stay queued, and the process is restarted after
 * an exponential backoff (100 ms doubling to 30 s; reset after 30 s of
 * uptime). An upstream idle for idle_timeout_s is stopped and restarted on
 * demand. Destroying it kills the whole process group.
 *
 * Ownership: callbacks receive borrowed JSON; copy (json_incref) to keep.
 * If a function taking a callback fails, the callback never runs; otherwise it
 * runs exactly once, unless the call is cancelled with tk_upstream_cancel.
 */
#ifndef TK_UPSTREAM_H
#define TK_UPSTREAM_H

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

#include "config/config.h"
#include "core/core.h"

typedef struct tk_upstream tk_upstream_t;

/* Exactly one of result and error is non-NULL; error is a JSON-RPC error object. */
typedef void (*tk_upstream_reply_cb)(void *arg, json_t *result, json_t *error);

typedef struct tk_upstream_events {
    /* A notification from the server (progress, list_changed, message, ...). */
    void (*notification)(void *arg, tk_upstream_t *up, const char *method, json_t *params);
    /* A request from the server (sampling, elicitation, roots). Answer with
     * tk_upstream_respond(up, gen, id, ...), gen from tk_upstream_generation(). */
    void (*request)(void *arg, tk_upstream_t *up, json_t *id, const char *method, json_t *params);
    /* The server finished its initialize handshake (after every (re)start). */
    void (*ready)(void *arg, tk_upstream_t *up);
    /* The process went away (crash, exit, reap). */
    void (*down)(void *arg, tk_upstream_t *up);
    void *arg;
} tk_upstream_events_t;

typedef enum {
    TK_UP_IDLE = 0,
    TK_UP_STARTING,
    TK_UP_READY,
    TK_UP_BACKOFF,
    TK_UP_STOPPING
} tk_upstream_state_t;

/* policy: the outbound URL policy for remote servers (borrowed; NULL: defaults). */
tk_upstream_t *tk_upstream_create(struct event_base *base, const tk_server_conf_t *conf,
                                  size_t max_message_bytes, const tk_upstream_events_t *ev,
                                  const tk_ssrf_policy_t *policy);
/* Kills the process group (SIGTERM, then SIGKILL after a short grace) and
 * waits for it; pending callbacks are not run. */
void tk_upstream_destroy(tk_upstream_t *up);

int tk_upstream_start(tk_upstream_t *up) TK_WUR;

/* Send a request; params is borrowed (may be NULL). *handle identifies it for
 * tk_upstream_cancel. Beyond max_inflight requests wait in a queue; fails
 * with TK_ELIMIT when that is full too, and with TK_EBUSY while the circuit
 * breaker is open (see tk_upstream_retry_after_s). */
int tk_upstream_request(tk_upstream_t *up, const char *method, json_t *params,
                        tk_upstream_reply_cb cb, void *arg, uint64_t *handle) TK_WUR;
/* Forget a request: its callback will not run; if it was sent, the server
 * receives notifications/cancelled. */
void tk_upstream_cancel(tk_upstream_t *up, uint64_t handle, const char *reason);
/* Send a notification (dropped when not ready). params borrowed. */
int tk_upstream_notify(tk_upstream_t *up, const char *method, json_t *params) TK_WUR;
/* Answer a server->client request; dropped if the process restarted since. */
int tk_upstream_respond(tk_upstream_t *up, uint64_t gen, json_t *id, json_t *result,
                        json_t *error) TK_WUR;

/* The owner reaps children (waitpid(-1) on SIGCHLD) and reports each exit
 * here; returns 1 if pid was this upstream's process. */
int tk_upstream_child_exited(tk_upstream_t *up, int pid, int status);

const char *tk_upstream_name(const tk_upstream_t *up);
const tk_server_conf_t *tk_upstream_conf(const tk_upstream_t *up);
tk_upstream_state_t tk_upstream_state(const tk_upstream_t *up);
uint64_t tk_upstream_generation(const tk_upstream_t *up);
/* The server's initialize result (capabilities, serverInfo, ...) or NULL. Borrowed. */
json_t *tk_upstream_server_info(const tk_upstream_t *up);
size_t tk_upstream_inflight(const tk_upstream_t *up);
unsigned tk_upstream_restarts(const tk_upstream_t *up);
int tk_upstream_pid(const tk_upstream_t *up);
/* Seconds until the open circuit breaker lets calls through again; 0 if closed. */
uint32_t tk_upstream_retry_after_s(const tk_upstream_t *up);

#endif
