/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON-RPC 2.0 parsing and validation (duplicate keys rejected, depth capped)
 * and message construction.
 */
#include "mcp/jsonrpc.h"

#include <stdlib.h>
#include <string.h>

size_t tk_json_depth(const json_t *v, size_t limit)
{
    size_t max = 0, d;
    if (limit == 0)
        return json_is_object(v) || json_is_array(v) ? 1 : 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) {
            d = tk_json_depth(c, limit - 1);
            if (d > max)
                max = d;
            if (max >= limit)
                break;
        }
        return max + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            d = tk_json_depth(c, limit - 1);
            if (d > max)
                max = d;
            if (max >= limit)
                break;
        }
        return max + 1;
    }
    return 0;
}

static int valid_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

int tk_rpc_classify(json_t *msg, tk_rpc_t *rpc, const char **why)
{
    memset(rpc, 0, sizeof(*rpc));
    rpc->msg = msg;
    if (json_is_array(msg)) {
        *why = "batch requests are not supported";
        return TK_EINVAL;
    }
    if (!json_is_object(msg)) {
        *why = "message must be a JSON object";
        return TK_EINVAL;
    }
    json_t *ver = json_object_get(msg, "jsonrpc");
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
        *why = "\"jsonrpc\" must be \"2.0\"";
        return TK_EINVAL;
    }
    json_t *id = json_object_get(msg, "id");
    json_t *method = json_object_get(msg, "method");
    json_t *params = json_object_get(msg, "params");
    json_t *result = json_object_get(msg, "result");
    json_t *error = json_object_get(msg, "error");
    const char *k;
    json_t *v;
    json_object_foreach(msg, k, v) {
        if (strcmp(k, "jsonrpc") && strcmp(k, "id") && strcmp(k, "method") &&
            strcmp(k, "params") && strcmp(k, "result") && strcmp(k, "error")) {
            *why = "unknown member in JSON-RPC message";
            return TK_EINVAL;
        }
    }
    if (method != NULL) {
        if (!json_is_string(method) || json_string_length(method) == 0) {
            *why = "\"method\" must be a non-empty string";
            return TK_EINVAL;
        }
        if (result != NULL || error != NULL) {
            *why = "a request cannot carry \"result\" or \"error\"";
            return TK_EINVAL;
        }
        if (params != NULL && !json_is_object(params)) {
            *why = "\"params\" must be an object";
            return TK_EINVAL;
        }
        if (id != NULL && !valid_id(id)) {
            *why = "\"id\" must be a string or an integer";
            return TK_EINVAL;
        }
        rpc->kind = id ? TK_RPC_REQUEST : TK_RPC_NOTIFICATION;
        rpc->id = id;
        rpc->method = json_string_value(method);
        rpc->params = params;
        return TK_OK;
    }
    if ((result == NULL) == (error == NULL)) {
        *why = "a message needs \"method\", or exactly one of \"result\" and \"error\"";
        return TK_EINVAL;
    }
    if (params != NULL) {
        *why = "a response cannot carry \"params\"";
        return TK_EINVAL;
    }
    if (!valid_id(id) && !(error != NULL && json_is_null(id))) {
        *why = "a response needs a string or integer \"id\"";
        return TK_EINVAL;
    }
    if (error != NULL) {
        if (!json_is_object(error) || !json_is_integer(json_object_get(error, "code")) ||
            !json_is_string(json_object_get(error, "message"))) {
            *why = "\"error\" must be an object with integer \"code\" and string \"message\"";
            return TK_EINVAL;
        }
    }
    rpc->kind = TK_RPC_RESPONSE;
    rpc->id = id;
    rpc->result = result;
    rpc->error = error;
    return TK_OK;
}

int tk_rpc_parse(const char *buf, size_t len, json_t **out, tk_rpc_t *rpc, int *code,
                 const char **why)
{
    json_error_t jerr;
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (*out == NULL) {
        *code = TK_RPC_PARSE_ERROR;
        *why = "invalid JSON";
        return TK_EINVAL;
    }
    if (tk_json_depth(*out, TK_RPC_MAX_DEPTH) > TK_RPC_MAX_DEPTH) {
        *code = TK_RPC_INVALID_REQUEST;
        *why = "JSON nested too deeply";
        return TK_ELIMIT;
    }
    if (tk_rpc_classify(*out, rpc, why) != TK_OK) {
        *code = TK_RPC_INVALID_REQUEST;
        return TK_EINVAL;
    }
    return TK_OK;
}

json_t *tk_rpc_error_data(json_t *id, int code, const char *message, json_t *data)
{
    json_t *err = json_pack("{s:i, s:s}", "code", code, "message", message);
    if (data)
        json_object_set_new(err, "data", data);
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error",
                     err);
}

json_t *tk_rpc_error(json_t *id, int code, const char *message)
{
    return tk_rpc_error_data(id, code, message, NULL);
}

json_t *tk_rpc_result(json_t *id, json_t *result)
{
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result",
                     result ? result : json_object());
}

json_t *tk_rpc_request(json_t *id, const char *method, json_t *params)
{
    json_t *m = json_pack("{s:s, s:o, s:s}", "jsonrpc", "2.0", "id", id, "method", method);
    if (params)
        json_object_set_new(m, "params", params);
    return m;
}

json_t *tk_rpc_notification(const char *method, json_t *params)
{
    json_t *m = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (params)
        json_object_set_new(m, "params", params);
    return m;
}

char *tk_json_dump(const json_t *v, size_t *len)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        s = tk_strdup("null");
    if (len)
        *len = strlen(s);
    return s;
}
