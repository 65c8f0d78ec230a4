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
#include "http/hreq.h"
#include "metrics/alerts.h"
#include "metrics/metrics.h"
#include "state/epreg.h"

typedef struct tk_gateway tk_gateway_t;

/* Servers and endpoints at once: the config's plus those made through the
 * admin API. */
#define TK_GATEWAY_MAX_SERVERS (2 * TK_MAX_SERVERS)
#define TK_GATEWAY_MAX_ENDPOINTS (2 * TK_MAX_ENDPOINTS)

#define TK_MCP_LATEST "2025-11-25"

tk_gateway_t *tk_gateway_create(struct event_base *base, const tk_config_t *cfg);
/* Ends every session and kills every upstream process tree. */
void tk_gateway_destroy(tk_gateway_t *gw);

/* Start the upstream processes (eagerly, so the first call is fast). */
void tk_gateway_start(tk_gateway_t *gw);

/* Serve one MCP request (POST, GET or DELETE) for endpoint slug, on the
 * gateway's loop thread; the gateway ends req exactly once (see hreq.h). */
void tk_gateway_handle(tk_gateway_t *gw, tk_hreq_t *req, const char *slug);
/* The same, for an authenticated principal: actor ("key:<id>", "key:bootstrap",
 * "sub:<jwt sub>") names who did it in the audit trail (NULL: the session's). */
void tk_gateway_handle_as(tk_gateway_t *gw, tk_hreq_t *req, const char *slug,
                          const char *actor);

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
/* Servers and endpoints made through the admin API, changed live on the
 * gateway's loop. The conf given is owned by the gateway from the call on,
 * also when it fails. Config-file servers and endpoints cannot be replaced
 * or removed (TK_ESTATE).
 *
 * add_server: a new upstream (started at once if the gateway was started,
 * else by tk_gateway_start); TK_EINVAL if the name is taken, TK_ELIMIT when
 * TK_GATEWAY_MAX_SERVERS run. replace_server: the server of that name gets
 * a new upstream for conf, in every endpoint that lists it; its calls in
 * flight fail and its processes are killed. remove_server: the same, and
 * it leaves every endpoint (whose sessions get list_changed); TK_ENOENT for
 * an unknown name. add_endpoint: /mcp/<slug> serves at once with the named
 * servers (TK_ENOENT if one is unknown, TK_EINVAL if the slug is taken).
 * replace_endpoint: new servers, tools, namespace (sessions stay and get
 * list_changed). remove_endpoint: its sessions end and it answers 404. */
int tk_gateway_add_server(tk_gateway_t *gw, tk_server_conf_t *conf) TK_WUR;
int tk_gateway_replace_server(tk_gateway_t *gw, tk_server_conf_t *conf) TK_WUR;
int tk_gateway_remove_server(tk_gateway_t *gw, const char *name) TK_WUR;
int tk_gateway_add_endpoint(tk_gateway_t *gw, tk_endpoint_conf_t *conf, char *const *servers,
                            size_t nservers) TK_WUR;
int tk_gateway_replace_endpoint(tk_gateway_t *gw, tk_endpoint_conf_t *conf, char *const *servers,
                                size_t nservers) TK_WUR;
int tk_gateway_remove_endpoint(tk_gateway_t *gw, const char *slug) TK_WUR;
/* Whether /mcp/<slug> exists (config or API). */
int tk_gateway_has_endpoint(const tk_gateway_t *gw, const char *slug);
/* The registry of the endpoints served now (state/epreg.h), kept by the
 * add/replace/remove functions above; safe to read from any thread. */
tk_epreg_t *tk_gateway_endpoints(const tk_gateway_t *gw);

/* A configured server's state: "idle", "starting", "ready", "backoff",
 * "stopping", or "disabled" when it is not running under the gateway. */
const char *tk_gateway_server_status(const tk_gateway_t *gw, const char *name);
/* Record into metrics and raise alerts (borrowed, may be NULL; they must
 * outlive the gateway). Call before tk_gateway_start. */
void tk_gateway_set_monitoring(tk_gateway_t *gw, tk_metrics_t *metrics, tk_alerts_t *alerts);
/* The alerts given above (NULL if none): for raising "tool_definition_changed". */
tk_alerts_t *tk_gateway_alerts(const tk_gateway_t *gw);
/* Append "upstream:<name>" to the JSON array names for each server whose
 * first start attempt (handshake done, or failed and scheduled to restart)
 * has not finished; returns how many. Safe from any thread. */
size_t tk_gateway_pending_servers(const tk_gateway_t *gw, json_t *names);

#endif
