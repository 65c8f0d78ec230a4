/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests the text/event-stream parser (src/upstream/sse.c): events split over
 * arbitrary chunks, multi-line data, named events, CRLF and LF line ends,
 * comments and unknown fields ignored, empty events not dispatched, the
 * callback's stop request, and the size cap on data and on unfinished lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/sse.h"

typedef struct seen {
    char events[8][32];
    char data[8][256];
    int n;
    int stop_after;
} seen_t;

static int on_event(void *arg, const char *event, const char *data, size_t len)
{
    seen_t *s = arg;
    assert_true(s->n < 8);
    snprintf(s->events[s->n], sizeof(s->events[0]), "%s", event);
    snprintf(s->data[s->n], sizeof(s->data[0]), "%.*s", (int)len, data);
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static int feed(tk_sse_t *p, seen_t *s, const char *text, size_t chunk)
{
    struct evbuffer *in = evbuffer_new();
    size_t len = strlen(text);
    int rc = TK_OK;
    for (size_t off = 0; off < len && rc == TK_OK; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        evbuffer_add(in, text + off, n);
        rc = tk_sse_feed(p, in, on_event, s);
    }
    evbuffer_free(in);
    return rc;
}

static const char STREAM[] = ": comment\r\n"
                             "event: message\r\n"
                             "data: {\"a\":1}\r\n"
                             "\r\n"
                             "id: 7\n"
                             "retry: 10\n"
                             "data:line1\n"
                             "data: line2\n"
                             "\n"
                             "event: endpoint\n"
                             "data: /messages?s=1\n"
                             "\n"
                             "event: ping\n"
                             "\n";

static void test_chunks(void **state)
{
    (void)state;
    for (size_t chunk = 1; chunk <= sizeof(STREAM); chunk++) {
        tk_sse_t p;
        seen_t s = {0};
        tk_sse_init(&p, 1024);
        assert_int_equal(feed(&p, &s, STREAM, chunk), TK_OK);
        assert_int_equal(s.n, 3); /* the empty "ping" event is not dispatched */
        assert_string_equal(s.events[0], "message");
        assert_string_equal(s.data[0], "{\"a\":1}");
        assert_string_equal(s.events[1], "");
        assert_string_equal(s.data[1], "line1\nline2");
        assert_string_equal(s.events[2], "endpoint");
        assert_string_equal(s.data[2], "/messages?s=1");
        tk_sse_clear(&p);
    }
}

static void test_stop(void **state)
{
    (void)state;
    tk_sse_t p;
    seen_t s = {.stop_after = 1};
    tk_sse_init(&p, 1024);
    assert_int_equal(feed(&p, &s, STREAM, sizeof(STREAM)), 1);
    assert_int_equal(s.n, 1);
    tk_sse_clear(&p);
}

static void test_caps(void **state)
{
    (void)state;
    tk_sse_t p;
    seen_t s = {0};
    char big[300];
    tk_sse_init(&p, 64);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *ev = NULL;
    size_t n = strlen(big) + 16;
    ev = malloc(n);
    snprintf(ev, n, "data: %s\n", big);
    assert_int_equal(feed(&p, &s, ev, n), TK_ELIMIT); /* data over the cap */
    tk_sse_clear(&p);
    tk_sse_init(&p, 64);
    assert_int_equal(feed(&p, &s, big, sizeof(big)), TK_ELIMIT); /* a line never ends */
    assert_int_equal(s.n, 0);
    tk_sse_clear(&p);
    free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
