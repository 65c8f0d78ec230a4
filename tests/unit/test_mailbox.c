/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the cross-thread mailbox (src/core/mailbox.c), with real
 * threads and a real event loop: several producer threads post numbered
 * messages while the loop delivers them; every message arrives exactly once
 * and each producer's messages arrive in the order posted; a callback may
 * post to its own mailbox; destroy delivers what is still queued; and a
 * burst of posts from another thread wakes an idle loop.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/mailbox.h"

#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct msg {
    tk_mail_t mail;
    int producer;
    int seq;
} msg_t;

typedef struct sink {
    struct event_base *base;
    tk_mailbox_t *mb;
    int next[PRODUCERS]; /* the sequence number expected next */
    size_t received;
    size_t expected;
    int out_of_order;
    int repost; /* messages to post again from the callback */
} sink_t;

static void deliver(void *arg, tk_mail_t *m)
{
    sink_t *s = arg;
    msg_t *msg = (msg_t *)m;
    if (msg->seq != s->next[msg->producer])
        s->out_of_order++;
    s->next[msg->producer] = msg->seq + 1;
    s->received++;
    if (s->repost > 0 && msg->producer == 0) {
        s->repost--;
        msg_t *again = tk_calloc(1, sizeof(*again));
        again->producer = 0;
        again->seq = msg->seq + 1;
        tk_mailbox_post(s->mb, &again->mail);
    }
    free(msg);
    if (s->received == s->expected)
        event_base_loopbreak(s->base);
}

typedef struct producer {
    tk_mailbox_t *mb;
    int id;
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        msg_t *m = tk_calloc(1, sizeof(*m));
        m->producer = p->id;
        m->seq = i;
        tk_mailbox_post(p->mb, &m->mail);
    }
    return NULL;
}

static void run_bounded(struct event_base *base)
{
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
}

static void test_many_producers_in_order(void **state)
{
    (void)state;
    sink_t s = {0};
    s.base = event_base_new();
    s.mb = tk_mailbox_create(s.base, deliver, &s);
    assert_non_null(s.mb);
    s.expected = (size_t)PRODUCERS * PER_PRODUCER;
    pthread_t th[PRODUCERS];
    producer_t p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (producer_t){s.mb, i};
        assert_int_equal(pthread_create(&th[i], NULL, produce, &p[i]), 0);
    }
    run_bounded(s.base);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(s.received, s.expected);
    assert_int_equal(s.out_of_order, 0);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(s.next[i], PER_PRODUCER);
    assert_int_equal(tk_mailbox_drain(s.mb), 0);
    tk_mailbox_destroy(s.mb);
    event_base_free(s.base);
}

static void test_post_from_callback(void **state)
{
    (void)state;
    sink_t s = {0};
    s.base = event_base_new();
    s.mb = tk_mailbox_create(s.base, deliver, &s);
    s.repost = 99;
    s.expected = 100;
    msg_t *m = tk_calloc(1, sizeof(*m));
    tk_mailbox_post(s.mb, &m->mail);
    run_bounded(s.base);
    assert_int_equal(s.received, 100);
    assert_int_equal(s.next[0], 100);
    assert_int_equal(s.out_of_order, 0);
    tk_mailbox_destroy(s.mb);
    event_base_free(s.base);
}

static void test_destroy_delivers_pending(void **state)
{
    (void)state;
    sink_t s = {0};
    s.base = event_base_new();
    s.mb = tk_mailbox_create(s.base, deliver, &s);
    s.expected = 1000000; /* never reached: no loop runs */
    for (int i = 0; i < 10; i++) {
        msg_t *m = tk_calloc(1, sizeof(*m));
        m->seq = i;
        tk_mailbox_post(s.mb, &m->mail);
    }
    assert_int_equal(s.received, 0);
    tk_mailbox_destroy(s.mb); /* frees the messages through deliver */
    assert_int_equal(s.received, 10);
    assert_int_equal(s.out_of_order, 0);
    event_base_free(s.base);
}

/* An idle loop blocked in epoll is woken by a post from another thread. */
static void *post_later(void *arg)
{
    producer_t *p = arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    msg_t *m = tk_calloc(1, sizeof(*m));
    m->producer = p->id;
    tk_mailbox_post(p->mb, &m->mail);
    return NULL;
}

static void test_wakes_idle_loop(void **state)
{
    (void)state;
    sink_t s = {0};
    s.base = event_base_new();
    s.mb = tk_mailbox_create(s.base, deliver, &s);
    s.expected = 1;
    producer_t p = {s.mb, 1};
    pthread_t th;
    uint64_t t0 = tk_now_ms();
    assert_int_equal(pthread_create(&th, NULL, post_later, &p), 0);
    run_bounded(s.base);
    pthread_join(th, NULL);
    assert_int_equal(s.received, 1);
    assert_true(tk_now_ms() - t0 < 5000); /* woken, not the 10 s limit */
    tk_mailbox_destroy(s.mb);
    event_base_free(s.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_producers_in_order),
        cmocka_unit_test(test_post_from_callback),
        cmocka_unit_test(test_destroy_delivers_pending),
        cmocka_unit_test(test_wakes_idle_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
