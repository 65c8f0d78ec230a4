/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the JSON-RPC layer every MCP POST body goes through
 * (src/mcp/jsonrpc.c): tk_rpc_parse on arbitrary bytes, exactly as
 * handle_post calls it. Checks the documented contract: a failure sets a
 * JSON-RPC code of -32700 or -32600 and a reason; a success classifies the
 * message consistently (requests have a method and an id, responses exactly
 * one of result and error, params is an object). Whatever parsed is then
 * serialised with tk_json_dump, which must re-parse to the same kind, and an
 * error reply is built around its id the way the gateway echoes ids.
 */
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "mcp/jsonrpc.h"

static void check_classified(const tk_rpc_t *rpc, const json_t *msg)
{
    FUZZ_CHECK(rpc->msg == msg);
    switch (rpc->kind) {
    case TK_RPC_REQUEST:
    case TK_RPC_NOTIFICATION:
        FUZZ_CHECK((rpc->kind == TK_RPC_REQUEST) == (rpc->id != NULL));
        FUZZ_CHECK(rpc->method != NULL && rpc->method[0] != '\0');
        FUZZ_CHECK(rpc->params == NULL || json_is_object(rpc->params));
        FUZZ_CHECK(rpc->result == NULL && rpc->error == NULL);
        break;
    case TK_RPC_RESPONSE:
        FUZZ_CHECK(rpc->method == NULL);
        FUZZ_CHECK((rpc->result == NULL) != (rpc->error == NULL));
        break;
    default:
        FUZZ_CHECK(!"unknown message kind");
    }
    if (rpc->id != NULL)
        FUZZ_CHECK(json_is_string(rpc->id) || json_is_integer(rpc->id) ||
                   (rpc->kind == TK_RPC_RESPONSE && json_is_null(rpc->id)));
}

/* The dump of a valid message is itself a valid message of the same kind. */
static void check_roundtrip(const char *s, size_t len, tk_rpc_kind_t kind)
{
    json_t *again = NULL;
    tk_rpc_t rpc;
    int code = 0;
    const char *why = NULL;
    int rc = tk_rpc_parse(s, len, &again, &rpc, &code, &why);
    FUZZ_CHECK(rc == TK_OK);
    FUZZ_CHECK(rpc.kind == kind);
    json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *msg = NULL;
    tk_rpc_t rpc;
    int code = 0;
    const char *why = NULL;

    int rc = tk_rpc_parse((const char *)data, size, &msg, &rpc, &code, &why);
    if (rc == TK_OK) {
        FUZZ_CHECK(msg != NULL);
        check_classified(&rpc, msg);
    } else {
        FUZZ_CHECK(rc < 0);
        FUZZ_CHECK(code == TK_RPC_PARSE_ERROR || code == TK_RPC_INVALID_REQUEST);
        FUZZ_CHECK(why != NULL && why[0] != '\0');
        FUZZ_CHECK((code == TK_RPC_PARSE_ERROR) == (msg == NULL));
    }
    if (msg == NULL)
        return 0;

    size_t len = 0;
    char *s = tk_json_dump(msg, &len);
    FUZZ_CHECK(s != NULL && strlen(s) == len);
    if (rc == TK_OK)
        check_roundtrip(s, len, rpc.kind);
    free(s);

    /* echo the id back as handle_post does on an error */
    json_t *id = json_is_object(msg) ? json_object_get(msg, "id") : NULL;
    if (id && !json_is_string(id) && !json_is_integer(id))
        id = NULL;
    json_t *e = tk_rpc_error(id, TK_RPC_INVALID_REQUEST, why ? why : "fuzz");
    FUZZ_CHECK(e != NULL);
    s = tk_json_dump(e, &len);
    FUZZ_CHECK(len > 0);
    free(s);
    json_decref(e);
    json_decref(msg);
    return 0;
}
