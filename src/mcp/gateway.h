/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gateway: the MCP aggregating proxy. Owns the upstream servers, the
 * endpoints (each a chosen set of servers plus a tool allow/deny list, with a
 * namespaced catalogue) and the client sessions of the Streamable HTTP
 * transport (MCP 2025-11-25, negotiating 2025-06-18 and 2025-03-26).
 *
 * The HTTP layer authenticates and validates Host/Origin, then hands every
 * request for /mcp/<slug> to tk_gateway_handle, which answers it (now or
 * later) exactly once. The gateway borrows the config and the event base;
 * both must outlive it.
 */
#ifndef TK_GATEWAY_H
#define TK_GATEWAY_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "config/config.h"
#include "core/core.h"

typedef struct tk_gateway tk_gateway_t;

#define TK_MCP_LATEST "2025-11-25"

tk_gateway_t *tk_gateway_create(struct event_base *base, const tk_config_t *cfg);
/* Ends every session and kills every upstream process tree. */
void tk_gateway_destroy(tk_gateway_t *gw);

/* Start the upstream processes (eagerly, so the first call is fast). */
void tk_gateway_start(tk_gateway_t *gw);

/* Serve one MCP request (POST, GET or DELETE) for endpoint slug. */
void tk_gateway_handle(tk_gateway_t *gw, struct evhttp_request *req, const char *slug);

/* Whether v is a protocol revision the gateway speaks. */
int tk_mcp_version_supported(const char *v);

size_t tk_gateway_session_count(const tk_gateway_t *gw);

/* Replace endpoint slug's tool selection (the config's allow/deny lists) by
 * allow and deny, arrays of glob patterns over the endpoint's tool names
 * (copied). Applies to the next tools/list and tools/call; open sessions on
 * the endpoint get notifications/tools/list_changed. TK_ENOENT: no such
 * endpoint; TK_EINVAL: not arrays. */
int tk_gateway_set_tool_filter(tk_gateway_t *gw, const char *slug, const json_t *allow,
                               const json_t *deny) TK_WUR;
/* A configured server's state: "idle", "starting", "ready", "backoff",
 * "stopping", or "disabled" when it is not running under the gateway. */
const char *tk_gateway_server_status(const tk_gateway_t *gw, const char *name);

#endif
