/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the text/event-stream parser (src/upstream/sse.c), which reads
 * what remote MCP servers send. The first input byte picks a chunk size, the
 * rest is fed in chunks of that size with a 256-byte cap. Checks: every
 * dispatched event's data fits the cap and its name is NUL-terminated within
 * its buffer; once the parser reports the cap, it is not fed again.
 */
#include <string.h>

#include "fuzz.h"
#include "upstream/sse.h"

#define CAP 256

static int on_event(void *arg, const char *event, const char *data, size_t len)
{
    (void)arg;
    FUZZ_CHECK(len <= CAP);
    FUZZ_CHECK(strlen(event) < 32);
    if (len > 0) {
        volatile char last = data[len - 1]; /* ASan: all of it is readable */
        (void)last;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    tk_sse_t p;
    tk_sse_init(&p, CAP);
    struct evbuffer *in = evbuffer_new();
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        evbuffer_add(in, data + off, n);
        if (tk_sse_feed(&p, in, on_event, NULL) == TK_ELIMIT)
            break;
    }
    evbuffer_free(in);
    tk_sse_clear(&p);
    return 0;
}
