/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP server: the listener (libevent evhttp), request size and time limits,
 * security headers on every response, Host and Origin validation (DNS
 * rebinding defence), bootstrap bearer-token authentication, and routing:
 *   GET  /healthz           liveness, no auth
 *   GET  /readyz            readiness (listener, store, first start of every upstream)
 *   GET  /metrics           Prometheus text format; bearer auth unless
 *                           metrics.require_auth is false (loopback listeners only)
 *   *    /mcp/<slug>        MCP Streamable HTTP, handed to the gateway
 *   *    /api/v1/...        admin REST API (admin/api.h), same authentication
 * The server borrows the config, event base and gateway.
 *
 * Threads: with cfg->threads = 1 everything runs on the caller's loop. With
 * N > 1, N threads each run an event loop of their own that accepts on the
 * shared listening socket and does all per-connection work (TLS, parsing,
 * limits, Host/Origin, authentication, rate limits); requests for the
 * gateway go to the caller's loop (the gateway core) through a mailbox, and
 * its output comes back through tk_hreq_t to the owning thread. Every
 * function here is called on the caller's loop thread.
 */
#ifndef TK_HTTP_SERVER_H
#define TK_HTTP_SERVER_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "config/config.h"
#include "core/core.h"
#include "mcp/gateway.h"
#include "metrics/alerts.h"
#include "metrics/metrics.h"

typedef struct tk_http_server tk_http_server_t;

/* Bind and listen on cfg->listen_host:listen_port. Refuses (TK_EINVAL, with
 * err filled) a non-loopback address when no bearer token is configured. */
int tk_http_server_create(struct event_base *base, const tk_config_t *cfg, tk_gateway_t *gw,
                          tk_http_server_t **out, char *err, size_t errlen) TK_WUR;
void tk_http_server_destroy(tk_http_server_t *srv);

/* The bound port (useful when the config asked for port 0). */
int tk_http_server_port(const tk_http_server_t *srv);
/* Record into metrics and raise alerts (both borrowed, may be NULL; they
 * must outlive the server). Call before the loop runs. */
void tk_http_server_set_monitoring(tk_http_server_t *srv, tk_metrics_t *metrics,
                                   tk_alerts_t *alerts);
/* Open client connections. */
/* Open client connections (over all HTTP threads). */
size_t tk_http_server_connections(const tk_http_server_t *srv);
/* HTTP event loops: 1 (the caller's loop) or cfg->threads threads. */
size_t tk_http_server_threads(const tk_http_server_t *srv);
/* Load the certificate and key again (SIGHUP) and use them for new
 * connections; open ones keep theirs. On failure the old ones stay. */
int tk_http_server_reload_tls(tk_http_server_t *srv, char *err, size_t errlen) TK_WUR;

/* Whether a Host header value names this server: a loopback name, or one of
 * cfg->allowed_hosts (with or without port). */
int tk_http_host_allowed(const tk_config_t *cfg, const char *host);
/* Whether an Origin header value is acceptable: a loopback origin or one of
 * cfg->allowed_origins. */
int tk_http_origin_allowed(const tk_config_t *cfg, const char *origin);
/* Whether host (no port) is a loopback address or name. */
int tk_http_is_loopback(const char *host);

/* Send body (stolen: decref'd here) as an application/json response. */
void tk_http_reply_json(struct evhttp_request *req, int status, const char *reason, json_t *body);

#endif
