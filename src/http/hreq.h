/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client request as the gateway core sees it. The HTTP layer owns the
 * connection and its evhttp request on the thread that accepted it; the
 * core, which may run on another thread, reads the request through this
 * handle and answers through it. Answers are carried out on the owning
 * thread (at once when the core runs there, as with server.threads = 1).
 *
 * Life cycle: the core receives a handle in tk_gateway_handle and must end
 * it exactly once, with tk_hreq_reply, tk_hreq_stream_end or
 * tk_hreq_release; after that the handle is gone for the caller. If the
 * client disconnects first, the close callback (if set) runs on the core's
 * thread; output sent after that is dropped, and the handle must still be
 * ended. The handle itself is reference counted between the two threads,
 * so neither side ever sees it freed under it.
 *
 * Reading: command, headers and body are valid until the handle is ended
 * (read them while handling; they are a snapshot when threads > 1).
 */
#ifndef TK_HTTP_HREQ_H
#define TK_HTTP_HREQ_H

#include <event2/http.h>
#include <stddef.h>

#include "core/core.h"
#include "mcp/jsonrpc.h"

typedef struct tk_hreq tk_hreq_t;

/* The client went away before the handle was ended. */
typedef void (*tk_hreq_close_fn)(tk_hreq_t *r, void *arg);

enum evhttp_cmd_type tk_hreq_command(const tk_hreq_t *r);
/* An input header (case-insensitive name), or NULL. */
const char *tk_hreq_header(const tk_hreq_t *r, const char *name);
/* The client's address as evhttp saw it ("" if unknown); any thread. */
const char *tk_hreq_peer(const tk_hreq_t *r);
/* The request body (not NUL terminated); *len its length. */
const char *tk_hreq_body(tk_hreq_t *r, size_t *len);
/* The body as one JSON-RPC message, with tk_rpc_parse's contract (*out is
 * the caller's). When threads > 1 a POST body was parsed on its HTTP thread
 * already, off the core's loop; that result is handed over once. */
int tk_hreq_rpc(tk_hreq_t *r, json_t **out, tk_rpc_t *rpc, int *code, const char **why) TK_WUR;

/* Add an output header; only before the reply or stream starts. */
void tk_hreq_add_header(tk_hreq_t *r, const char *name, const char *value);
/* Send the whole response (ctype NULL: no body) and end the handle. */
void tk_hreq_reply(tk_hreq_t *r, int status, const char *reason, const char *ctype,
                   const char *body, size_t len);
/* Start a chunked response, send chunks, end it (ending the handle). */
void tk_hreq_stream_start(tk_hreq_t *r, int status, const char *reason, const char *ctype);
void tk_hreq_stream_chunk(tk_hreq_t *r, const char *data, size_t len);
void tk_hreq_stream_end(tk_hreq_t *r);
/* End the handle without (more) output: after a disconnect, or when the
 * client no longer wants an answer on a dead connection. */
void tk_hreq_release(tk_hreq_t *r);
/* Set (or with NULL clear) the close callback. */
void tk_hreq_on_close(tk_hreq_t *r, tk_hreq_close_fn fn, void *arg);

#endif
