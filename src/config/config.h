/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Config: loads a Tumiki config file (JSON) into an immutable tk_config_t.
 * The file accepts the ecosystem's "mcpServers" object (Claude Desktop /
 * Claude Code / Cursor format: command/args/env for stdio servers, url/headers
 * for remote ones) plus Tumiki's own settings. Loading either yields a fully
 * validated config or an error naming the file, the key path and the problem;
 * nothing is half-loaded. The config owns every string in it; secrets
 * (bearer_token, env values, header values) must never be logged.
 */
#ifndef TK_CONFIG_H
#define TK_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/core.h"
#include "net/ssrf.h"
#include "state/ratelimit.h"

/* Limits applied by the loader. */
#define TK_SERVER_NAME_MAX 32   /* [A-Za-z0-9_-], no "__", no leading/trailing '_' */
#define TK_SLUG_MAX 64          /* [a-z0-9-] */
#define TK_MAX_SERVERS 256
#define TK_MAX_ENDPOINTS 256
#define TK_MIN_TOKEN_LEN 32     /* bootstrap bearer token: at least 32 chars */

typedef enum { TK_TRANSPORT_STDIO = 0, TK_TRANSPORT_HTTP = 1, TK_TRANSPORT_SSE = 2 } tk_transport_t;

/* Tool-definition pinning ("pinning": {"mode": ..., "trust_on_first_use": ...},
 * globally and per server). block: a tool whose definition is not the
 * approved one is hidden and refused; flag: it stays usable but is marked and
 * alerted; off: no pinning. trust_on_first_use: a tool never seen before is
 * approved as first seen (else it waits for an administrator). */
typedef enum { TK_PIN_BLOCK = 0, TK_PIN_FLAG = 1, TK_PIN_OFF = 2 } tk_pin_mode_t;

typedef struct tk_pin_policy {
    int mode; /* a tk_pin_mode_t once loaded; default block */
    int tofu; /* 1 or 0; default 1 */
} tk_pin_policy_t;

typedef struct tk_kv {
    char *name;
    char *value;
} tk_kv_t;

typedef struct tk_server_conf {
    char *name;
    tk_transport_t transport;
    /* stdio */
    char *command;
    char **args;
    size_t nargs;
    tk_kv_t *env; /* the child's whole environment (nothing else is inherited) */
    size_t nenv;
    char *cwd;    /* NULL: the gateway's cwd */
    /* http / sse */
    char *url;
    tk_kv_t *headers;
    size_t nheaders;
    /* common */
    int disabled;
    uint32_t request_timeout_ms; /* default 60000 */
    uint32_t connect_timeout_ms; /* default 10000 (http) / start-up timeout (stdio) */
    uint32_t idle_timeout_s;     /* stdio: reap after this idle time; 0 = never; default 600 */
    uint32_t max_inflight;       /* requests sent and unanswered at once, default 1024 */
    uint32_t max_queue;          /* requests waiting beyond that, default 1024; then 503 */
    uint32_t circuit_failures;   /* consecutive transport failures that open the circuit
                                    breaker, default 5; 0 = never */
    uint32_t circuit_open_ms;    /* how long it stays open (calls fail fast), default 30000 */
    tk_pin_policy_t pinning;     /* the server's own "pinning", else the global one */
} tk_server_conf_t;

typedef struct tk_endpoint_conf {
    char *slug;
    size_t *servers; /* indexes into tk_config_t.servers */
    size_t nservers;
    char **tool_allow; /* glob patterns over namespaced names ("srv__tool", '*' wildcard); empty = all */
    size_t nallow;
    char **tool_deny; /* applied after allow */
    size_t ndeny;
    tk_rate_t rate; /* all requests to this endpoint together; count 0 = unlimited */
    int namespace_names; /* 1 (default): "server__name"; 0: upstream names as they are */
} tk_endpoint_conf_t;

/* An alert threshold: count events within window_s seconds; count 0 = off. */
typedef struct tk_alert_rule {
    uint32_t count;
    uint32_t window_s;
} tk_alert_rule_t;

/* "alerts": thresholds and the optional webhook (see docs/monitoring.md). */
typedef struct tk_alerts_conf {
    char *webhook_url;     /* NULL: alerts go to the log only; may hold a secret: never logged */
    unsigned char *secret; /* HMAC-SHA256 key for X-Tumiki-Signature (>= 32 bytes), secret */
    size_t secretlen;
    tk_alert_rule_t auth_failures;     /* default 20 in 60 s */
    tk_alert_rule_t rate_limited;      /* default 100 in 60 s */
    tk_alert_rule_t upstream_restarts; /* per server; default 5 in 300 s */
    uint32_t cooldown_s; /* one alert per kind (and server) per cooldown, default 300 */
    uint32_t timeout_ms; /* per webhook attempt, default 5000 */
    uint32_t retries;    /* further attempts after a failure, default 2 */
    uint32_t max_queue;  /* alerts waiting for delivery, default 100; then dropped */
} tk_alerts_conf_t;
#define TK_THREADS_MAX 64

typedef struct tk_config {
    char *path; /* the file it came from (or the name given to load_string) */
    char *listen_host; /* default "127.0.0.1" */
    uint16_t listen_port; /* default 8080; 0 = ephemeral */
    char *data_dir;       /* default "./data" */
    char *bearer_token;   /* bootstrap auth; NULL if none configured */
    char **allowed_origins; /* exact origins ("http://localhost:6274"); empty = only localhost origins */
    size_t norigins;
    char **allowed_hosts; /* extra Host header values accepted besides loopback names */
    size_t nhosts;
    tk_log_level_t log_level; /* default info */
    char **mask_patterns;     /* extra PCRE2 patterns masked in logs and the audit trail */
    size_t nmask_patterns;
    size_t max_body_bytes;      /* default 4 MiB */
    size_t max_message_bytes;   /* upstream message cap, default 16 MiB */
    uint32_t session_idle_timeout_s; /* default 3600 */
    uint32_t max_sessions;      /* default 10000 */
    uint32_t max_connections;   /* open client connections, default 4096 */
    uint32_t header_timeout_ms; /* a new connection's first request must arrive within, default 10000 */
    uint32_t idle_timeout_ms;   /* ... and each next request on a kept-alive one, default 60000 */
    char *tls_cert_file;        /* both set: serve HTTPS only (TLS 1.2/1.3) */
    char *tls_key_file;
    uint32_t hsts_max_age_s;    /* Strict-Transport-Security max-age when serving TLS */
    tk_rate_t rate_per_key;     /* per credential; default 100/min; count 0 = off */
    tk_rate_t rate_per_ip;      /* per client address for unauthenticated requests (failed
                                   auth, health checks); default 60/min; count 0 = off */
    uint32_t rate_max_keys;     /* buckets kept in memory, default 100000 */
    uint32_t threads;           /* HTTP event-loop threads ("server": {"threads": N | "auto"});
                                   1 (default): everything on the main loop */
    unsigned char *jwt_key;     /* HS256 signing key (secret), NULL: JWTs not accepted */
    size_t jwt_keylen;          /* >= 32 bytes */
    char *jwt_issuer;           /* default "tumiki" */
    char *jwt_audience;         /* default "tumiki-mcp" */
    tk_ssrf_policy_t *ssrf;     /* outbound URL policy ("outbound": {"allow_cidrs": [...]});
                                   every remote server URL was checked against it at load */
    int metrics_require_auth;   /* GET /metrics needs a bearer credential for every endpoint;
                                   default 1; 0 only on a loopback listener */
    tk_alerts_conf_t alerts;
    tk_pin_policy_t pinning;    /* global tool-definition pinning policy */
    /* "audit": the tamper-evident audit trail (src/audit) */
    int audit_enabled;               /* default 1 */
    char *audit_dir;                 /* NULL: <data_dir>/audit */
    uint32_t audit_retention_days;   /* default 90, >= 1 */
    unsigned char *audit_key;        /* HMAC key (secret) from hmac_key_env / hmac_key_file;
                                        NULL: <data_dir>/audit.key, made on first use */
    size_t audit_keylen;             /* >= 32 bytes */
    uint32_t audit_fsync_interval_ms; /* default 1000; 0 = fsync every record */
    int audit_log_arguments;         /* record tool arguments (masked); default 0 */
    int audit_log_results;           /* record tool results (masked); default 0 */
    unsigned char *vault_key; /* secret vault master key (secret) from vault.key_env /
                                 vault.key_file; NULL: <data_dir>/vault.key, made on first use */
    size_t vault_keylen;      /* 32..256 bytes */
    /* dashboard login ("dashboard": {...}; see docs/dashboard.md) */
    char *dash_web_dir;            /* static dashboard files; NULL: no dashboard served */
    uint32_t dash_bcrypt_cost;     /* password hashes, default 12 (4..31) */
    uint32_t dash_lockout_threshold; /* consecutive failed logins that lock, default 5 */
    uint32_t dash_lockout_s;       /* how long a lock lasts, default 900 */
    uint32_t dash_idle_s;          /* session idle timeout, default 1800 */
    uint32_t dash_lifetime_s;      /* session absolute lifetime, default 43200 */
    uint32_t dash_max_sessions;    /* sessions held at once, default 10000 */
    tk_rate_t dash_login_rate;     /* login attempts per client address, default 10/min */
    /* OpenID Connect sign-in ("oidc": {...}); oidc_issuer NULL: not configured */
    char *oidc_issuer;             /* exactly as the provider spells it (ID tokens' "iss") */
    char *oidc_client_id;
    char *oidc_client_secret;      /* secret: from client_secret_env or client_secret_file */
    char *oidc_redirect_uri;       /* this gateway's /auth/oidc/callback as the browser sees it */
    char *oidc_scopes;             /* default "openid email" */
    tk_server_conf_t *servers;
    size_t nservers;
    tk_endpoint_conf_t *endpoints; /* if the file has none: one "default" endpoint with all servers */
    size_t nendpoints;
} tk_config_t;

/* Load and validate. On failure returns a negative TK_E*, *out is NULL and err
 * holds "FILE: key.path: problem". Environment overrides: TUMIKI_TOKEN sets
 * bearer_token when the file sets none. */
int tk_config_load_file(const char *path, tk_config_t **out, char *err, size_t errlen) TK_WUR;
int tk_config_load_string(const char *json, const char *name, tk_config_t **out, char *err,
                          size_t errlen) TK_WUR;
void tk_config_destroy(tk_config_t *cfg);

/* Register the config's secrets (bearer token, JWT key, every upstream env
 * and header value) and its mask_patterns with the masking module, so no log
 * line or audit record can carry them. Call once after loading. */
int tk_config_register_masks(const tk_config_t *cfg, char *err, size_t errlen) TK_WUR;

const tk_server_conf_t *tk_config_find_server(const tk_config_t *cfg, const char *name);
const tk_endpoint_conf_t *tk_config_find_endpoint(const tk_config_t *cfg, const char *slug);

/* One server object (as under "mcpServers") called name, validated by the
 * config file's rules (name, transport, command/args/url, env and header
 * names, timeouts) with pinning inherited from cfg and the URL checked
 * against cfg's outbound policy. label prefixes messages ("label: key:
 * problem"; never a secret value). *out is owned by the caller
 * (tk_config_server_free). Needs a JSON object for obj. */
int tk_config_parse_server(const tk_config_t *cfg, const char *label, const char *name,
                           json_t *obj, tk_server_conf_t **out, char *err, size_t errlen) TK_WUR;
void tk_config_server_free(tk_server_conf_t *s);

/* One endpoint object (as under "endpoints") for slug, by the config file's
 * rules; its "servers" names are returned unresolved in *names (*nnames of
 * them; a NULL-terminated heap array of heap strings) and e->servers is
 * NULL. Free with tk_config_endpoint_free and each name and the array. */
int tk_config_parse_endpoint(const char *label, const char *slug, json_t *obj,
                             tk_endpoint_conf_t **out, char ***names, size_t *nnames, char *err,
                             size_t errlen) TK_WUR;
void tk_config_endpoint_free(tk_endpoint_conf_t *e);

/* Whether name is a valid server name (slug 0) or endpoint slug (slug 1);
 * TK_EINVAL with the rule in err if not. */
int tk_config_check_name(const char *name, int slug, char *err, size_t errlen) TK_WUR;

/* Convert a Claude Desktop / Claude Code config (any JSON with "mcpServers")
 * into a Tumiki config written to out. Servers with invalid names are
 * renamed deterministically and reported on warn (may be NULL). */
int tk_config_import_claude(const char *in_path, FILE *out, FILE *warn, char *err,
                            size_t errlen) TK_WUR;

#endif
