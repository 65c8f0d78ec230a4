/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the JSON-RPC 2.0 layer (src/mcp/jsonrpc.c): tk_rpc_parse
 * classifying requests, notifications and responses (result or error) and
 * rejecting everything malformed with the right JSON-RPC code -- invalid JSON,
 * duplicate keys, trailing data, scalars and batches, wrong or missing
 * "jsonrpc", bad ids, non-object params, unknown members, result+error
 * together, malformed error objects, empty methods and nesting beyond
 * TK_RPC_MAX_DEPTH -- plus tk_json_depth and the exact serialised shapes of
 * the tk_rpc_error/result/request/notification constructors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/jsonrpc.h"

/* Parse a NUL-terminated string. */
static int parse(const char *s, json_t **out, tk_rpc_t *rpc, int *code, const char **why)
{
    *code = 0;
    *why = NULL;
    return tk_rpc_parse(s, strlen(s), out, rpc, code, why);
}

/* Must parse; returns the message (caller decrefs). */
static json_t *parse_ok(const char *s, tk_rpc_t *rpc)
{
    json_t *out = NULL;
    int code = 0;
    const char *why = NULL;
    int rc = parse(s, &out, rpc, &code, &why);
    if (rc != TK_OK)
        print_error("unexpected rejection of %s: %s\n", s, why ? why : "(null)");
    assert_int_equal(rc, TK_OK);
    assert_non_null(out);
    assert_ptr_equal(rpc->msg, out);
    return out;
}

/* Must be rejected with rc and code; valid_json says whether *out is set. */
static void parse_bad(const char *s, int want_rc, int want_code, int valid_json)
{
    json_t *out = (json_t *)1;
    tk_rpc_t rpc;
    int code = 0;
    const char *why = NULL;
    int rc = parse(s, &out, &rpc, &code, &why);
    if (rc != want_rc || code != want_code)
        print_error("input %s: rc %d code %d why %s\n", s, rc, code, why ? why : "(null)");
    assert_int_equal(rc, want_rc);
    assert_int_equal(code, want_code);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    if (valid_json) {
        assert_non_null(out);
        json_decref(out);
    } else {
        assert_null(out);
    }
}

static void invalid_request(const char *s)
{
    parse_bad(s, TK_EINVAL, TK_RPC_INVALID_REQUEST, 1);
}

static void parse_error(const char *s)
{
    parse_bad(s, TK_EINVAL, TK_RPC_PARSE_ERROR, 0);
}

/* Build "[[[...]]]" with n levels; caller frees. */
static char *nested_arrays(size_t n)
{
    char *s = tk_malloc(2 * n + 1);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    return s;
}

static void test_request(void **state)
{
    (void)state;
    tk_rpc_t rpc;
    json_t *m = parse_ok(
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}", &rpc);
    assert_int_equal(rpc.kind, TK_RPC_REQUEST);
    assert_string_equal(rpc.method, "tools/call");
    assert_true(json_is_integer(rpc.id));
    assert_int_equal(json_integer_value(rpc.id), 7);
    assert_non_null(rpc.params);
    assert_string_equal(json_string_value(json_object_get(rpc.params, "name")), "x");
    assert_null(rpc.result);
    assert_null(rpc.error);
    json_decref(m);

    /* string id, no params */
    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"ping\"}", &rpc);
    assert_int_equal(rpc.kind, TK_RPC_REQUEST);
    assert_string_equal(json_string_value(rpc.id), "abc");
    assert_string_equal(rpc.method, "ping");
    assert_null(rpc.params);
    json_decref(m);

    /* negative and zero integer ids are fine; member order does not matter */
    m = parse_ok("{\"method\":\"ping\",\"id\":-5,\"jsonrpc\":\"2.0\"}", &rpc);
    assert_int_equal(rpc.kind, TK_RPC_REQUEST);
    assert_int_equal(json_integer_value(rpc.id), -5);
    json_decref(m);
    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"ping\",\"params\":{}}", &rpc);
    assert_int_equal(json_integer_value(rpc.id), 0);
    assert_int_equal(json_object_size(rpc.params), 0);
    json_decref(m);

    /* whitespace around the message is accepted */
    m = parse_ok(" \n{ \"jsonrpc\" : \"2.0\" , \"id\" : 1 , \"method\" : \"a\" }\r\n ", &rpc);
    assert_int_equal(rpc.kind, TK_RPC_REQUEST);
    json_decref(m);
}

static void test_parse_uses_len(void **state)
{
    (void)state;
    /* Only len bytes are parsed: the trailing garbage is outside the buffer. */
    static const char buf[] = "{\"jsonrpc\":\"2.0\",\"method\":\"n\"}GARBAGE";
    json_t *out = NULL;
    tk_rpc_t rpc;
    int code = 0;
    const char *why = NULL;
    assert_int_equal(tk_rpc_parse(buf, strlen(buf) - 7, &out, &rpc, &code, &why), TK_OK);
    assert_int_equal(rpc.kind, TK_RPC_NOTIFICATION);
    json_decref(out);
    /* ...and with it included the input is not valid JSON. */
    out = (json_t *)1;
    assert_int_equal(tk_rpc_parse(buf, strlen(buf), &out, &rpc, &code, &why), TK_EINVAL);
    assert_int_equal(code, TK_RPC_PARSE_ERROR);
    assert_null(out);
}

static void test_notification(void **state)
{
    (void)state;
    tk_rpc_t rpc;
    json_t *m = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &rpc);
    assert_int_equal(rpc.kind, TK_RPC_NOTIFICATION);
    assert_null(rpc.id);
    assert_string_equal(rpc.method, "notifications/initialized");
    assert_null(rpc.params);
    json_decref(m);

    m = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                 "\"params\":{\"progressToken\":1,\"progress\":0.5}}",
                 &rpc);
    assert_int_equal(rpc.kind, TK_RPC_NOTIFICATION);
    assert_null(rpc.id);
    assert_true(json_is_real(json_object_get(rpc.params, "progress")));
    json_decref(m);
}

static void test_response_result(void **state)
{
    (void)state;
    tk_rpc_t rpc;
    json_t *m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[]}}", &rpc);
    assert_int_equal(rpc.kind, TK_RPC_RESPONSE);
    assert_int_equal(json_integer_value(rpc.id), 3);
    assert_non_null(rpc.result);
    assert_true(json_is_array(json_object_get(rpc.result, "tools")));
    assert_null(rpc.error);
    assert_null(rpc.method);
    json_decref(m);

    /* any JSON value is a valid result, including null and scalars */
    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"result\":null}", &rpc);
    assert_int_equal(rpc.kind, TK_RPC_RESPONSE);
    assert_true(json_is_null(rpc.result));
    json_decref(m);
    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":42}", &rpc);
    assert_int_equal(json_integer_value(rpc.result), 42);
    json_decref(m);
}

static void test_response_error(void **state)
{
    (void)state;
    tk_rpc_t rpc;
    json_t *m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":9,"
                         "\"error\":{\"code\":-32601,\"message\":\"nope\",\"data\":[1]}}",
                         &rpc);
    assert_int_equal(rpc.kind, TK_RPC_RESPONSE);
    assert_int_equal(json_integer_value(rpc.id), 9);
    assert_null(rpc.result);
    assert_non_null(rpc.error);
    assert_int_equal(json_integer_value(json_object_get(rpc.error, "code")), -32601);
    assert_string_equal(json_string_value(json_object_get(rpc.error, "message")), "nope");
    json_decref(m);

    /* an error response may carry id null (the request's id was unreadable) */
    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":null,"
                 "\"error\":{\"code\":-32700,\"message\":\"Parse error\"}}",
                 &rpc);
    assert_int_equal(rpc.kind, TK_RPC_RESPONSE);
    assert_true(json_is_null(rpc.id));
    json_decref(m);
}

static void test_invalid_json(void **state)
{
    (void)state;
    parse_error("");
    parse_error("   ");
    parse_error("{");
    parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"x\"");
    parse_error("{\"jsonrpc\":'2.0'}");
    parse_error("{jsonrpc:\"2.0\"}");
    parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"x\",}");
    parse_error("not json");
    /* two messages back to back: trailing data after the first value */
    parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"a\"}{\"jsonrpc\":\"2.0\",\"method\":\"b\"}");
    /* invalid UTF-8 inside a string */
    parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"\xff\xfe\"}");
    /* an escaped NUL is refused by the parser (no JSON_ALLOW_NUL) */
    parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"a\\u0000b\"}");
    /* a raw NUL byte inside the buffer */
    {
        static const char buf[] = "{\"jsonrpc\":\"2.0\",\"method\":\"a\0b\"}";
        json_t *out = (json_t *)1;
        tk_rpc_t rpc;
        int code = 0;
        const char *why = NULL;
        assert_int_equal(tk_rpc_parse(buf, sizeof(buf) - 1, &out, &rpc, &code, &why), TK_EINVAL);
        assert_int_equal(code, TK_RPC_PARSE_ERROR);
        assert_null(out);
    }
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    /* JSON_REJECT_DUPLICATES makes the load itself fail: a parse error, and no
     * JSON is handed back. */
    parse_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"m\"}");
    parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"method\":\"b\"}");
    /* duplicates nested inside params are rejected too */
    parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":{\"k\":1,\"k\":1}}");
    /* the same key at different levels is not a duplicate */
    tk_rpc_t rpc;
    json_t *m = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":{\"method\":\"b\"}}", &rpc);
    assert_string_equal(rpc.method, "a");
    json_decref(m);
}

static void test_not_an_object(void **state)
{
    (void)state;
    /* batches are valid JSON but not supported */
    invalid_request("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}]");
    invalid_request("[]");
    /* valid JSON that is not an object is an invalid request, not a parse error */
    invalid_request("1");
    invalid_request("\"x\"");
    invalid_request("null");
    invalid_request("true");
}

static void test_jsonrpc_version(void **state)
{
    (void)state;
    invalid_request("{\"id\":1,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"\",\"id\":1,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":2.0,\"id\":1,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":2,\"id\":1,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":null,\"id\":1,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"2.0\"}");
    invalid_request("{}");
}

static void test_bad_id(void **state)
{
    (void)state;
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"a\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"a\"}");
    /* responses: id must be string/integer; null only with error */
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"result\":{}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":2.5,\"result\":{}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":2.5,\"error\":{\"code\":1,\"message\":\"m\"}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":\"m\"}}");
}

static void test_bad_method_and_params(void **state)
{
    (void)state;
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"method\":\"\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":[\"a\"]}");
    /* params must be an object (MCP never uses positional params) */
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":[1,2]}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":[]}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":\"x\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":null}");
    /* a request cannot also carry result or error */
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"result\":{}}");
    invalid_request(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"error\":{\"code\":1,\"message\":\"m\"}}");
}

static void test_unknown_member(void **state)
{
    (void)state;
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"extra\":1}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"Method\":\"b\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"meta\":{}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"x\":1}");
}

static void test_bad_response(void **state)
{
    (void)state;
    /* both result and error */
    invalid_request(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,\"message\":\"m\"}}");
    /* neither method, result nor error */
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1}");
    /* params on a response */
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"params\":{}}");
    /* malformed error objects */
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"m\"}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"1\",\"message\":\"m\"}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"m\"}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":7}}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"boom\"}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":null}");
    invalid_request("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{}}");
}

static void test_json_depth(void **state)
{
    (void)state;
    json_t *v = json_integer(1);
    assert_int_equal(tk_json_depth(v, 64), 0);
    json_decref(v);
    v = json_string("s");
    assert_int_equal(tk_json_depth(v, 64), 0);
    json_decref(v);
    v = json_object();
    assert_int_equal(tk_json_depth(v, 64), 1);
    json_decref(v);
    v = json_loads("{\"a\":[1,{\"b\":[]}],\"c\":{}}", 0, NULL);
    assert_non_null(v);
    assert_int_equal(tk_json_depth(v, 64), 4);
    json_decref(v);

    char *s = nested_arrays(10);
    v = json_loads(s, 0, NULL);
    assert_non_null(v);
    assert_int_equal(tk_json_depth(v, 64), 10);
    assert_int_equal(tk_json_depth(v, 10), 10);
    /* counting stops at limit + 1 */
    assert_int_equal(tk_json_depth(v, 9), 10);
    assert_int_equal(tk_json_depth(v, 5), 6);
    assert_int_equal(tk_json_depth(v, 0), 1);
    json_decref(v);
    free(s);

    s = nested_arrays(1000);
    v = json_loads(s, 0, NULL);
    assert_non_null(v);
    assert_int_equal(tk_json_depth(v, TK_RPC_MAX_DEPTH), TK_RPC_MAX_DEPTH + 1);
    assert_int_equal(tk_json_depth(v, 2000), 1000);
    json_decref(v);
    free(s);
}

/* A request whose whole message nests to exactly depth: the message object is
 * level 1, params level 2, then depth-2 arrays. */
static char *deep_request(size_t depth)
{
    char *arr = nested_arrays(depth - 2);
    char *s = tk_asprintf("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"a\":%s}}", arr);
    free(arr);
    return s;
}

static void test_depth_limit(void **state)
{
    (void)state;
    tk_rpc_t rpc;

    char *s = deep_request(TK_RPC_MAX_DEPTH);
    json_t *m = parse_ok(s, &rpc);
    assert_int_equal(tk_json_depth(m, 1000), TK_RPC_MAX_DEPTH);
    assert_int_equal(rpc.kind, TK_RPC_REQUEST);
    json_decref(m);
    free(s);

    s = deep_request(TK_RPC_MAX_DEPTH + 1);
    parse_bad(s, TK_ELIMIT, TK_RPC_INVALID_REQUEST, 1);
    free(s);

    s = deep_request(500);
    parse_bad(s, TK_ELIMIT, TK_RPC_INVALID_REQUEST, 1);
    free(s);

    /* bare nested arrays: 64 levels pass the depth check (and then fail as a
     * batch), 65 fail the depth check */
    s = nested_arrays(TK_RPC_MAX_DEPTH);
    {
        json_t *out = NULL;
        int code = 0;
        const char *why = NULL;
        assert_int_equal(parse(s, &out, &rpc, &code, &why), TK_EINVAL);
        assert_int_equal(code, TK_RPC_INVALID_REQUEST);
        assert_string_equal(why, "batch requests are not supported");
        json_decref(out);
    }
    free(s);
    s = nested_arrays(TK_RPC_MAX_DEPTH + 1);
    {
        json_t *out = NULL;
        int code = 0;
        const char *why = NULL;
        assert_int_equal(parse(s, &out, &rpc, &code, &why), TK_ELIMIT);
        assert_int_equal(code, TK_RPC_INVALID_REQUEST);
        assert_string_equal(why, "JSON nested too deeply");
        json_decref(out);
    }
    free(s);

    /* very deep input is refused by the parser itself (jansson's own depth
     * cap), without exhausting the stack */
    s = nested_arrays(200000);
    {
        json_t *out = (json_t *)1;
        int code = 0;
        const char *why = NULL;
        assert_true(parse(s, &out, &rpc, &code, &why) < 0);
        assert_true(code == TK_RPC_PARSE_ERROR || code == TK_RPC_INVALID_REQUEST);
        if (code == TK_RPC_PARSE_ERROR)
            assert_null(out);
        else
            json_decref(out);
    }
    free(s);
}

static void test_large_message(void **state)
{
    (void)state;
    /* 2 MiB text argument plus a 20000-element array */
    size_t big = 2u * 1024 * 1024;
    char *text = tk_malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        text[i] = (char)('a' + (char)(i % 26));
    text[big] = '\0';
    json_t *arr = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(arr, json_integer(i));
    json_t *req = tk_rpc_request(json_integer(123456789), "tools/call",
                                 json_pack("{s:s, s:{s:s, s:o}}", "name", "srv__echo", "arguments",
                                           "text", text, "list", arr));
    assert_non_null(req);
    size_t len = 0;
    char *wire = tk_json_dump(req, &len);
    assert_true(len > big);
    assert_int_equal(len, strlen(wire));

    tk_rpc_t rpc;
    json_t *out = NULL;
    int code = 0;
    const char *why = NULL;
    assert_int_equal(tk_rpc_parse(wire, len, &out, &rpc, &code, &why), TK_OK);
    assert_int_equal(rpc.kind, TK_RPC_REQUEST);
    assert_int_equal(json_integer_value(rpc.id), 123456789);
    assert_string_equal(rpc.method, "tools/call");
    json_t *args = json_object_get(rpc.params, "arguments");
    assert_int_equal(json_string_length(json_object_get(args, "text")), big);
    assert_memory_equal(json_string_value(json_object_get(args, "text")), text, big);
    assert_int_equal(json_array_size(json_object_get(args, "list")), 20000);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(args, "list"), 19999)),
                     19999);
    assert_true(json_equal(out, req));
    json_decref(out);
    json_decref(req);
    free(wire);
    free(text);
}

static void assert_dump(const json_t *v, const char *want)
{
    size_t len = 0;
    char *s = tk_json_dump(v, &len);
    assert_string_equal(s, want);
    assert_int_equal(len, strlen(want));
    free(s);
}

static void test_constructors(void **state)
{
    (void)state;
    json_t *id = json_integer(5);
    json_t *v = tk_rpc_error(id, TK_RPC_METHOD_NOT_FOUND, "Method not found");
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32601,"
                   "\"message\":\"Method not found\"}}");
    json_decref(v);
    /* the id was borrowed, not stolen */
    assert_int_equal(id->refcount, 1);
    json_decref(id);

    v = tk_rpc_error(NULL, TK_RPC_PARSE_ERROR, "Parse error");
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                   "\"message\":\"Parse error\"}}");
    json_decref(v);

    id = json_string("req-1");
    v = tk_rpc_error_data(id, TK_RPC_INVALID_PARAMS, "bad \"x\"", json_pack("{s:i}", "line", 3));
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"id\":\"req-1\",\"error\":{\"code\":-32602,"
                   "\"message\":\"bad \\\"x\\\"\",\"data\":{\"line\":3}}}");
    json_decref(v);
    json_decref(id);

    id = json_integer(1);
    v = tk_rpc_result(id, json_pack("{s:[]}", "tools"));
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[]}}");
    json_decref(v);
    v = tk_rpc_result(id, NULL);
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
    json_decref(v);
    assert_int_equal(id->refcount, 1);
    json_decref(id);

    v = tk_rpc_request(json_integer(42), "tools/list", NULL);
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"tools/list\"}");
    json_decref(v);
    v = tk_rpc_request(json_string("a"), "tools/call", json_pack("{s:s}", "name", "t"));
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\","
                   "\"params\":{\"name\":\"t\"}}");
    json_decref(v);

    v = tk_rpc_notification("notifications/initialized", NULL);
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    json_decref(v);
    v = tk_rpc_notification("notifications/cancelled", json_pack("{s:i}", "requestId", 3));
    assert_dump(v, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                   "\"params\":{\"requestId\":3}}");
    json_decref(v);
}

static void test_constructors_roundtrip(void **state)
{
    (void)state;
    /* whatever the constructors build, the parser accepts and classifies */
    json_t *msgs[4];
    msgs[0] = tk_rpc_request(json_integer(1), "ping", json_object());
    msgs[1] = tk_rpc_notification("notifications/x", NULL);
    msgs[2] = tk_rpc_result(msgs[0] ? json_object_get(msgs[0], "id") : NULL, NULL);
    msgs[3] = tk_rpc_error(NULL, TK_RPC_INTERNAL_ERROR, "boom");
    const tk_rpc_kind_t want[4] = {TK_RPC_REQUEST, TK_RPC_NOTIFICATION, TK_RPC_RESPONSE,
                                   TK_RPC_RESPONSE};
    for (int i = 0; i < 4; i++) {
        assert_non_null(msgs[i]);
        size_t len;
        char *s = tk_json_dump(msgs[i], &len);
        tk_rpc_t rpc;
        json_t *out = NULL;
        int code = 0;
        const char *why = NULL;
        assert_int_equal(tk_rpc_parse(s, len, &out, &rpc, &code, &why), TK_OK);
        assert_int_equal(rpc.kind, want[i]);
        assert_true(json_equal(out, msgs[i]));
        json_decref(out);
        free(s);
    }
    for (int i = 0; i < 4; i++)
        json_decref(msgs[i]);

    /* tk_json_dump with a NULL len pointer */
    json_t *v = json_pack("[i,s,n,b]", -3, "\u00e9\n", 1);
    char *s = tk_json_dump(v, NULL);
    assert_string_equal(s, "[-3,\"\u00e9\\n\",null,true]");
    free(s);
    json_decref(v);
}

static void test_classify_direct(void **state)
{
    (void)state;
    tk_rpc_t rpc;
    const char *why = NULL;
    json_t *m = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 4, "method", "x");
    assert_int_equal(tk_rpc_classify(m, &rpc, &why), TK_OK);
    assert_int_equal(rpc.kind, TK_RPC_REQUEST);
    assert_ptr_equal(rpc.msg, m);
    json_decref(m);

    m = json_integer(3);
    why = NULL;
    assert_int_equal(tk_rpc_classify(m, &rpc, &why), TK_EINVAL);
    assert_string_equal(why, "message must be a JSON object");
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_parse_uses_len),
        cmocka_unit_test(test_notification),
        cmocka_unit_test(test_response_result),
        cmocka_unit_test(test_response_error),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_jsonrpc_version),
        cmocka_unit_test(test_bad_id),
        cmocka_unit_test(test_bad_method_and_params),
        cmocka_unit_test(test_unknown_member),
        cmocka_unit_test(test_bad_response),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_large_message),
        cmocka_unit_test(test_constructors),
        cmocka_unit_test(test_constructors_roundtrip),
        cmocka_unit_test(test_classify_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
