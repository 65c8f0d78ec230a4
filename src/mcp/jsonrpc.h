/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON-RPC 2.0 message parsing, validation and construction for MCP.
 * Parsing rejects duplicate keys, caps nesting depth and classifies the
 * message; construction helpers return new references the caller owns.
 */
#ifndef TK_JSONRPC_H
#define TK_JSONRPC_H

#include <jansson.h>
#include <stddef.h>

#include "core/core.h"

#define TK_RPC_PARSE_ERROR (-32700)
#define TK_RPC_INVALID_REQUEST (-32600)
#define TK_RPC_METHOD_NOT_FOUND (-32601)
#define TK_RPC_INVALID_PARAMS (-32602)
#define TK_RPC_INTERNAL_ERROR (-32603)
#define TK_RPC_RESOURCE_NOT_FOUND (-32002)
#define TK_RPC_REQUEST_CANCELLED (-32800)

#define TK_RPC_MAX_DEPTH 64

typedef enum {
    TK_RPC_REQUEST = 1,
    TK_RPC_NOTIFICATION = 2,
    TK_RPC_RESPONSE = 3
} tk_rpc_kind_t;

/* A classified message: all pointers borrow from msg. */
typedef struct tk_rpc {
    tk_rpc_kind_t kind;
    json_t *msg;
    json_t *id;         /* request/response id (string or integer); NULL for notifications */
    const char *method; /* request/notification */
    json_t *params;     /* object or NULL */
    json_t *result;     /* response */
    json_t *error;      /* response */
} tk_rpc_t;

/* Parse one message from buf. On success *out holds a new reference and rpc
 * is filled. On failure returns a negative TK_E*, sets *code to the JSON-RPC
 * error code (-32700 or -32600), *why to a static description, and *out to
 * the parsed JSON if it was valid JSON (so the caller can echo its id), else
 * NULL. */
int tk_rpc_parse(const char *buf, size_t len, json_t **out, tk_rpc_t *rpc, int *code,
                 const char **why) TK_WUR;

/* Validate and classify an already-parsed value. */
int tk_rpc_classify(json_t *msg, tk_rpc_t *rpc, const char **why) TK_WUR;

/* Nesting depth of a JSON value (scalars are 0). Stops counting at limit+1. */
size_t tk_json_depth(const json_t *v, size_t limit);

/* Constructors (new references). id may be NULL (encoded as null). */
json_t *tk_rpc_error(json_t *id, int code, const char *message);
json_t *tk_rpc_error_data(json_t *id, int code, const char *message, json_t *data /* stolen */);
json_t *tk_rpc_result(json_t *id, json_t *result /* stolen */);
json_t *tk_rpc_request(json_t *id /* stolen */, const char *method, json_t *params /* stolen, may be NULL */);
json_t *tk_rpc_notification(const char *method, json_t *params /* stolen, may be NULL */);

/* Serialise compactly; caller frees. Never returns NULL. */
char *tk_json_dump(const json_t *v, size_t *len);

#endif
