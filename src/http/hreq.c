/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request handles shared between an HTTP thread and the gateway core.
 *
 * Invariants:
 * - the evhttp request and its connection are touched only on the owning
 *   thread (hreq->req is an owner-side field);
 * - two references: the owner's (dropped when evhttp finished the request,
 *   or handed to the close notice) and the core's (handed to the final
 *   operation: reply, stream end or release); the last one frees;
 * - operations of one request reach the owner in the order they were made
 *   (one FIFO mailbox per thread); output after a disconnect is dropped;
 * - no lock is held while any callback runs.
 */
#include "http/http_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

enum { OP_REPLY = 1, OP_START, OP_CHUNK, OP_END, OP_RELEASE };

typedef struct outhdr {
    struct outhdr *next;
    char *name, *value;
} outhdr_t;

typedef struct op {
    tk_hmsg_t hdr;
    tk_hreq_t *r;
    int what;
    int status;
    const char *reason; /* a string literal */
    const char *ctype;  /* a string literal, or NULL */
    outhdr_t *out;      /* headers to add first (owned) */
    char *data;         /* owned */
    size_t len;
} op_t;

typedef struct snapshot {
    size_t n;
    const char **kv; /* name, value, name, value ... */
    char *body;
    size_t bodylen;
    /* a POST body parsed on the HTTP thread (parsed = 1) */
    int parsed;
    int rc, code;
    json_t *msg;
    tk_rpc_t rpc;
    const char *why;
} snapshot_t;

struct tk_hreq {
    atomic_int refs;
    tk_mailbox_t *owner; /* NULL: inline */
    tk_mailbox_t *core;
    enum evhttp_cmd_type cmd;
    char peer[64]; /* the client's address, taken at creation */
    snapshot_t *snap; /* NULL: read req in place (inline) */
    /* owner side */
    struct evhttp_request *req; /* NULL once evhttp no longer has it for us */
    int started;
    /* core side */
    int ended;
    int closed;
    tk_hreq_close_fn fn;
    void *arg;
    outhdr_t *out, **out_tail;
};

static void outhdrs_free(outhdr_t *h)
{
    while (h) {
        outhdr_t *n = h->next;
        free(h->name);
        free(h->value);
        free(h);
        h = n;
    }
}

static void unref(tk_hreq_t *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    outhdrs_free(r->out);
    if (r->snap) {
        json_decref(r->snap->msg);
        free(r->snap->kv);
        free(r->snap->body);
        free(r->snap);
    }
    free(r);
}

/* ---- owner side ---- */

static void conn_closed(struct evhttp_connection *evcon, void *arg);

static void detach(tk_hreq_t *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
}

static void notify_closed(tk_hreq_t *r)
{
    tk_hmsg_t *m = tk_calloc(1, sizeof(*m) + sizeof(tk_hreq_t *));
    m->kind = TK_HMSG_CLOSED;
    memcpy(m + 1, &r, sizeof(r));
    if (r->owner == NULL)
        tk_hreq_run_closed(m);
    else
        tk_mailbox_post(r->core, &m->mail);
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    tk_hreq_t *r = arg;
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    /* a request evhttp detached from its connection is ours to free; one
     * still attached goes with the connection */
    if (r->req && evhttp_request_get_connection(r->req) == NULL)
        evhttp_request_free(r->req);
    r->req = NULL;
    notify_closed(r); /* hands the owner's reference over */
}

static snapshot_t *snapshot(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *h;
    size_t n = 0, bytes = 0;
    for (h = in->tqh_first; h != NULL; h = h->next.tqe_next) {
        n++;
        bytes += strlen(h->key) + strlen(h->value) + 2;
    }
    snapshot_t *s = tk_calloc(1, sizeof(*s));
    s->n = n;
    s->kv = tk_calloc(1, 2 * n * sizeof(char *) + bytes + 1);
    char *p = (char *)(s->kv + 2 * n);
    size_t i = 0;
    for (h = in->tqh_first; h != NULL; h = h->next.tqe_next) {
        size_t kl = strlen(h->key) + 1, vl = strlen(h->value) + 1;
        memcpy(p, h->key, kl);
        s->kv[i++] = p;
        p += kl;
        memcpy(p, h->value, vl);
        s->kv[i++] = p;
        p += vl;
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    s->bodylen = evbuffer_get_length(body);
    s->body = tk_calloc(1, s->bodylen + 1);
    if (s->bodylen)
        evbuffer_copyout(body, s->body, s->bodylen);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        s->parsed = 1;
        s->rc = tk_rpc_parse(s->body, s->bodylen, &s->msg, &s->rpc, &s->code, &s->why);
    }
    return s;
}

tk_hreq_t *tk_hreq_new(struct evhttp_request *req, tk_mailbox_t *owner, tk_mailbox_t *core)
{
    tk_hreq_t *r = tk_calloc(1, sizeof(*r));
    atomic_init(&r->refs, 2);
    r->owner = owner;
    r->core = core;
    r->req = req;
    r->cmd = evhttp_request_get_command(req);
    r->out_tail = &r->out;
    if (owner != NULL)
        r->snap = snapshot(req);
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &addr, &port);
        tk_snprintf(r->peer, sizeof(r->peer), "%s", addr ? addr : "");
        evhttp_connection_set_closecb(evcon, conn_closed, r);
    }
    return r;
}

const char *tk_hreq_peer(const tk_hreq_t *r)
{
    return r->peer;
}

static void apply(struct evhttp_request *req, op_t *op)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    for (outhdr_t *o = op->out; o != NULL; o = o->next)
        evhttp_add_header(h, o->name, o->value);
    if (op->ctype) {
        evhttp_remove_header(h, "Content-Type");
        evhttp_add_header(h, "Content-Type", op->ctype);
    }
}

static void free_data(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* The op's data as an evbuffer; the evbuffer takes the data over (no copy:
 * a 0.5 MB catalogue reply is copied once on its way, not three times). */
static struct evbuffer *op_buffer(op_t *op)
{
    if (op->data == NULL)
        return NULL;
    struct evbuffer *b = evbuffer_new();
    if (op->len > 0 && evbuffer_add_reference(b, op->data, op->len, free_data, NULL) == 0)
        op->data = NULL; /* freed by the evbuffer once sent */
    return b;
}

/* Carry out op on the live request r->req; returns 1 if evhttp has taken
 * the request back (the reply is complete from our side). */
static int perform(tk_hreq_t *r, op_t *op)
{
    struct evhttp_request *req = r->req;
    struct evbuffer *b = op_buffer(op);
    int done = 0;
    switch (op->what) {
    case OP_START:
        apply(req, op);
        evhttp_send_reply_start(req, op->status, op->reason);
        r->started = 1;
        break;
    case OP_CHUNK:
        if (r->started && b)
            evhttp_send_reply_chunk(req, b);
        break;
    case OP_REPLY:
        apply(req, op);
        detach(r);
        evhttp_send_reply(req, op->status, op->reason, b);
        done = 1;
        break;
    default: /* OP_END, OP_RELEASE */
        detach(r);
        if (r->started)
            evhttp_send_reply_end(req);
        else /* released without an answer on a live connection */
            evhttp_send_reply(req, 500, "Internal Server Error", NULL);
        done = 1;
        break;
    }
    if (b)
        evbuffer_free(b);
    return done;
}

void tk_hreq_run_op(tk_hmsg_t *m)
{
    op_t *op = (op_t *)m;
    tk_hreq_t *r = op->r;
    int final = op->what == OP_REPLY || op->what == OP_END || op->what == OP_RELEASE;
    if (r->req != NULL && perform(r, op)) {
        r->req = NULL;
        unref(r); /* the owner's: no close notice can come any more */
    }
    outhdrs_free(op->out);
    free(op->data);
    free(op);
    if (final)
        unref(r); /* the core's */
}

/* ---- core side ---- */

void tk_hreq_run_closed(tk_hmsg_t *m)
{
    tk_hreq_t *r;
    memcpy(&r, m + 1, sizeof(r));
    free(m);
    r->closed = 1;
    if (!r->ended && r->fn)
        r->fn(r, r->arg);
    unref(r); /* the owner's, carried by the notice */
}

static void submit(tk_hreq_t *r, int what, int status, const char *reason, const char *ctype,
                   const char *data, size_t len)
{
    op_t *op = tk_calloc(1, sizeof(*op));
    op->hdr.kind = TK_HMSG_OP;
    op->r = r;
    op->what = what;
    op->status = status;
    op->reason = reason;
    op->ctype = ctype;
    if (what == OP_REPLY || what == OP_START) {
        op->out = r->out;
        r->out = NULL;
        r->out_tail = &r->out;
    }
    if (data != NULL) {
        op->data = tk_malloc(len + 1);
        memcpy(op->data, data, len);
        op->data[len] = '\0';
        op->len = len;
    }
    if (what == OP_REPLY || what == OP_END || what == OP_RELEASE)
        r->ended = 1;
    if (r->owner == NULL)
        tk_hreq_run_op(&op->hdr);
    else
        tk_mailbox_post(r->owner, &op->hdr.mail);
}

enum evhttp_cmd_type tk_hreq_command(const tk_hreq_t *r)
{
    return r->cmd;
}

const char *tk_hreq_header(const tk_hreq_t *r, const char *name)
{
    if (r->snap == NULL)
        return r->req ? evhttp_find_header(evhttp_request_get_input_headers(r->req), name)
                      : NULL;
    for (size_t i = 0; i < r->snap->n; i++)
        if (strcasecmp(r->snap->kv[2 * i], name) == 0)
            return r->snap->kv[2 * i + 1];
    return NULL;
}

const char *tk_hreq_body(tk_hreq_t *r, size_t *len)
{
    if (r->snap != NULL) {
        *len = r->snap->bodylen;
        return r->snap->body;
    }
    if (r->req == NULL) {
        *len = 0;
        return "";
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    *len = evbuffer_get_length(in);
    const char *b = (const char *)evbuffer_pullup(in, -1);
    return b ? b : "";
}

int tk_hreq_rpc(tk_hreq_t *r, json_t **out, tk_rpc_t *rpc, int *code, const char **why)
{
    snapshot_t *s = r->snap;
    if (s == NULL || !s->parsed) {
        size_t len;
        const char *body = tk_hreq_body(r, &len);
        return tk_rpc_parse(body, len, out, rpc, code, why);
    }
    s->parsed = 0; /* handed over: a second call parses again */
    *out = s->msg;
    s->msg = NULL;
    *rpc = s->rpc;
    *code = s->code;
    *why = s->why;
    return s->rc;
}

void tk_hreq_add_header(tk_hreq_t *r, const char *name, const char *value)
{
    outhdr_t *h = tk_calloc(1, sizeof(*h));
    h->name = tk_strdup(name);
    h->value = tk_strdup(value);
    *r->out_tail = h;
    r->out_tail = &h->next;
}

void tk_hreq_reply(tk_hreq_t *r, int status, const char *reason, const char *ctype,
                   const char *body, size_t len)
{
    submit(r, OP_REPLY, status, reason, ctype, body, len);
}

void tk_hreq_stream_start(tk_hreq_t *r, int status, const char *reason, const char *ctype)
{
    submit(r, OP_START, status, reason, ctype, NULL, 0);
}

void tk_hreq_stream_chunk(tk_hreq_t *r, const char *data, size_t len)
{
    submit(r, OP_CHUNK, 0, NULL, NULL, data, len);
}

void tk_hreq_stream_end(tk_hreq_t *r)
{
    submit(r, OP_END, 0, NULL, NULL, NULL, 0);
}

void tk_hreq_release(tk_hreq_t *r)
{
    submit(r, OP_RELEASE, 0, NULL, NULL, NULL, 0);
}

void tk_hreq_on_close(tk_hreq_t *r, tk_hreq_close_fn fn, void *arg)
{
    r->fn = fn;
    r->arg = arg;
}
