/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Remote: the client side of the MCP Streamable HTTP transport (POST each
 * message; JSON or SSE replies; Mcp-Session-Id; optional GET stream) and of
 * the legacy HTTP+SSE transport (GET stream announcing a POST endpoint),
 * built on libcurl's multi interface driven by the libevent loop.
 *
 * The upstream module owns a remote and speaks JSON-RPC over it; the remote
 * only moves messages. Callbacks run on the loop; if a function that takes a
 * callback fails, the callback never runs.
 */
#ifndef TK_UPSTREAM_REMOTE_H
#define TK_UPSTREAM_REMOTE_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/core.h"
#include "net/ssrf.h"

typedef struct tk_remote tk_remote_t;

typedef struct tk_remote_cbs {
    /* The transport can carry messages (SSE: the endpoint was announced). */
    void (*connected)(void *arg);
    /* One JSON-RPC message (not NUL-terminated). */
    void (*message)(void *arg, const char *buf, size_t len);
    /* The POST carrying request req_id failed; why is safe to show clients. */
    void (*request_failed)(void *arg, uint64_t req_id, const char *why);
    /* The connection or session is gone; the owner restarts it. */
    void (*lost)(void *arg, const char *why);
    void *arg;
} tk_remote_cbs_t;

/* policy (borrowed, may be NULL for the defaults) is applied at every
 * connect: the URL's host is resolved once, checked, and every transfer is
 * pinned to the checked address (no redirects, no proxies). */
tk_remote_t *tk_remote_create(struct event_base *base, const tk_server_conf_t *conf,
                              size_t max_message_bytes, const tk_remote_cbs_t *cbs,
                              const tk_ssrf_policy_t *policy);
void tk_remote_destroy(tk_remote_t *r);

/* Start: Streamable HTTP is connected at once; legacy SSE after the GET
 * stream announces its endpoint. */
int tk_remote_connect(tk_remote_t *r) TK_WUR;
/* After the initialize handshake: remember the protocol version for the
 * MCP-Protocol-Version header and open the server's GET stream. */
void tk_remote_ready(tk_remote_t *r, const char *protocol_version);
/* Send one message; req_id is its JSON-RPC id if it is a request, else 0. */
int tk_remote_send(tk_remote_t *r, const char *json, size_t len, uint64_t req_id) TK_WUR;
/* Abort every transfer and forget the session (DELETE it if asked). */
void tk_remote_reset(tk_remote_t *r, int delete_session);

#endif
