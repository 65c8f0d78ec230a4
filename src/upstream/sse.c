/* SPDX-License-Identifier: Apache-2.0 */
/* Incremental text/event-stream parser with size caps. */
#include "upstream/sse.h"

#include <stdlib.h>
#include <string.h>

void tk_sse_init(tk_sse_t *p, size_t max)
{
    p->data = evbuffer_new();
    p->event[0] = '\0';
    p->max = max;
}

void tk_sse_clear(tk_sse_t *p)
{
    if (p->data)
        evbuffer_free(p->data);
    p->data = NULL;
}

static int dispatch(tk_sse_t *p, tk_sse_cb cb, void *arg)
{
    size_t n = evbuffer_get_length(p->data);
    int stop = 0;
    if (n > 0) {
        const char *d = (const char *)evbuffer_pullup(p->data, -1);
        if (d[n - 1] == '\n')
            n--; /* the separator after the last data line */
        stop = cb(arg, p->event, d, n);
    }
    evbuffer_drain(p->data, evbuffer_get_length(p->data));
    p->event[0] = '\0';
    return stop;
}

/* The value of "name:value" (one leading space dropped), or NULL. */
static const char *field(const char *line, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len < nl + 1 || memcmp(line, name, nl) != 0 || line[nl] != ':')
        return NULL;
    const char *v = line + nl + 1;
    size_t l = len - nl - 1;
    if (l > 0 && *v == ' ')
        v++, l--;
    *vlen = l;
    return v;
}

int tk_sse_feed(tk_sse_t *p, struct evbuffer *in, tk_sse_cb cb, void *arg)
{
    for (;;) {
        size_t len, vlen;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (line == NULL)
            break;
        const char *v;
        int stop = 0;
        if (len == 0) {
            stop = dispatch(p, cb, arg);
        } else if ((v = field(line, len, "data", &vlen)) != NULL) {
            evbuffer_add(p->data, v, vlen);
            evbuffer_add(p->data, "\n", 1);
        } else if ((v = field(line, len, "event", &vlen)) != NULL) {
            tk_snprintf(p->event, sizeof(p->event), "%.*s", (int)vlen, v);
        }
        free(line);
        if (stop)
            return 1;
        if (evbuffer_get_length(p->data) > p->max)
            return TK_ELIMIT;
    }
    return evbuffer_get_length(in) > p->max ? TK_ELIMIT : TK_OK;
}
