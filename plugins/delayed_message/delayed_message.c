/*
 * delayed_message.c - the x-delayed-message exchange, as RabbitMQ's
 * community plugin rabbitmq-delayed-message-exchange: a message with an
 * `x-delay` header (milliseconds) is routed that much later, by the
 * exchange's `x-delayed-type` (direct, topic, fanout, headers, or another
 * plugin's type) over its bindings at that time. A missing, zero or
 * negative x-delay routes at once. A routed delayed message carries
 * x-delay negated (-5000 for 5000), as the plugin's do.
 *
 * Pending messages of an exchange are a binary heap by due time (then by
 * arrival, so equal delays keep their order): O(log n) to add and to take
 * the next, one timer per exchange armed for the earliest. A pending
 * message costs its heap entry (24 bytes) on top of the message, whose
 * body is stored once as everywhere in the broker.
 *
 * Declaring without x-delayed-type, or with x-delayed-type
 * x-delayed-message, is channel error 406 "Invalid argument,
 * 'x-delayed-type' must be an existing exchange type"; a type no one
 * provides is 503 COMMAND_INVALID, as for exchange.declare itself.
 *
 * What differs from RabbitMQ's plugin, and why:
 * - There is no cap on the delay (the plugin's is 2^32-1 ms, about 49
 *   days). plugin.delayed_message.max_delay (milliseconds) sets one: a
 *   message asking for more is not delayed and not routed (unroutable:
 *   returned to a mandatory publisher, else dropped) and a line is logged.
 *   Clipping it silently would deliver it early.
 * - A mandatory message is not returned at publish: where it goes is
 *   known only when it is due. One unroutable then is dropped (debug log).
 *
 * Durability: a persistent message on a durable exchange is journaled as
 * held by the exchange (route_hold: the publisher's confirm waits for its
 * fdatasync) and, after a restart or a kill -9, comes back through the
 * recover hook due at its original time (late ones at once). Transient
 * messages, and any message on a transient exchange, live in memory only,
 * as in RabbitMQ's plugin.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/plugin.h"

static const struct warren_api *api;
static warren_host *host;
static uint64_t max_delay; /* 0: none */

struct pending {
    uint64_t due;      /* monotonic ms */
    uint64_t seq;      /* arrival order, for equal due times */
    warren_message *m; /* ours: x-delay negated, held in the journal when durable */
};

struct dx {
    warren_exchange *x;
    struct pending *heap;
    size_t n, cap;
    uint64_t seq;
    warren_timer *timer;
    uint64_t armed_for; /* due time the timer is armed for; 0: not armed */
    bool firing;        /* routing a due message: by the inner type */
};

/* ---- the heap ---- */

static bool before(const struct pending *a, const struct pending *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void sift_up(struct pending *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        struct pending t;
        if (!before(&h[i], &h[p]))
            break;
        t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void sift_down(struct pending *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct pending t;
        if (l < n && before(&h[l], &h[m]))
            m = l;
        if (r < n && before(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void arm(struct dx *d)
{
    uint64_t now;
    if (!d->n) {
        if (d->armed_for)
            api->timer_cancel(d->timer);
        d->armed_for = 0;
        return;
    }
    if (d->armed_for == d->heap[0].due)
        return;
    now = api->now_ms();
    api->timer_arm(d->timer, d->heap[0].due > now ? d->heap[0].due - now : 0);
    d->armed_for = d->heap[0].due;
}

/* Route one due message through the exchange, by its inner type (the
 * message kept is the one to deliver: x-delay negated already). */
static void fire(struct dx *d, struct pending *p)
{
    int n;
    d->firing = true;
    n = api->exchange_publish(d->x, p->m);
    d->firing = false;
    if (n == 0) {
        struct warren_bytes xn = api->exchange_name(d->x);
        api->log(host, WARREN_LOG_DEBUG, "delayed message for exchange '%.*s' unroutable when due",
                 (int)xn.len, xn.ptr);
    } else if (n < 0) {
        api->log(host, WARREN_LOG_ERROR, "out of memory routing a delayed message: dropped");
        api->message_release(d->x, p->m);
    }
    api->message_unref(p->m);
}

static void timer_cb(void *arg)
{
    struct dx *d = arg;
    uint64_t now = api->now_ms();
    unsigned budget = 10000; /* a turn does not route more; the rest next turn */
    d->armed_for = 0;
    while (d->n && d->heap[0].due <= now && budget--) {
        struct pending p = d->heap[0];
        d->heap[0] = d->heap[--d->n];
        sift_down(d->heap, d->n, 0);
        fire(d, &p);
    }
    arm(d);
}

static bool reserve(struct dx *d)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        struct pending *h = realloc(d->heap, cap * sizeof(*h));
        if (!h)
            return false;
        d->heap = h;
        d->cap = cap;
    }
    return true;
}

/* Keep `m` (a reference of ours) until `due`. */
static void push(struct dx *d, warren_message *m, uint64_t due)
{
    struct pending *p = &d->heap[d->n];
    p->due = due;
    p->seq = d->seq++;
    p->m = m;
    sift_up(d->heap, d->n++);
    arm(d);
}

/* ---- the type's hooks ---- */

static int dx_declare(warren_exchange *x, struct warren_error *err)
{
    struct warren_value t = api->exchange_arg(x, "x-delayed-type");
    struct dx *d;
    if (t.type != WARREN_VALUE_STRING ||
        (t.s.len == 17 && memcmp(t.s.ptr, "x-delayed-message", 17) == 0)) {
        err->code = WARREN_PRECONDITION_FAILED;
        snprintf(err->text, sizeof err->text,
                 "Invalid argument, 'x-delayed-type' must be an existing exchange type");
        return err->code;
    }
    if (!api->exchange_type_exists(t.s)) {
        err->code = WARREN_COMMAND_INVALID;
        snprintf(err->text, sizeof err->text, "unknown exchange type '%.*s'",
                 (int)(t.s.len > 128 ? 128 : t.s.len), t.s.ptr);
        return err->code;
    }
    if (!(d = calloc(1, sizeof(*d))) || !(d->timer = api->timer_new(host, timer_cb, d)) ||
        api->exchange_use_inner(x, t.s) < 0) {
        if (d && d->timer)
            api->timer_free(d->timer);
        free(d);
        err->code = WARREN_INTERNAL_ERROR;
        snprintf(err->text, sizeof err->text, "cannot set up the exchange");
        return err->code;
    }
    d->x = x;
    api->exchange_set_state(x, d);
    return WARREN_OK;
}

static void dx_destroy(warren_exchange *x)
{
    struct dx *d = api->exchange_get_state(x);
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        api->message_release(x, d->heap[i].m); /* the journal forgets it */
        api->message_unref(d->heap[i].m);
    }
    api->timer_free(d->timer);
    free(d->heap);
    free(d);
}

static void dx_route(warren_exchange *x, warren_route *r)
{
    struct dx *d = api->exchange_get_state(x);
    warren_message *m = api->route_message(r);
    struct warren_value v;

    if (d->firing || !m) {
        api->route_inner(r);
        return;
    }
    v = api->message_header(m, "x-delay");
    if (v.type != WARREN_VALUE_INT || v.i <= 0) {
        api->route_inner(r); /* no delay: now */
        return;
    }
    if (!api->route_first(r))
        return; /* held once, for all of its routing keys */
    if (max_delay && (uint64_t)v.i > max_delay) {
        struct warren_bytes xn = api->exchange_name(x);
        api->log(host, WARREN_LOG_WARNING,
                 "x-delay %" PRId64 " ms for exchange '%.*s' is above max_delay (%" PRIu64
                 " ms): not routed",
                 v.i, (int)xn.len, xn.ptr, max_delay);
        return;
    }
    {
        /* What is kept is what will be delivered: x-delay negated, as the
         * plugin's. A durable exchange journals it (route_hold), so it
         * survives a restart. */
        warren_message *copy = api->message_with_int_header(m, "x-delay", -v.i);
        if (!copy || !reserve(d)) {
            api->message_unref(copy);
            api->log(host, WARREN_LOG_ERROR, "out of memory delaying a message: not routed");
            return;
        }
        if (api->route_hold(r, copy) != 0) {
            api->message_unref(copy);
            return; /* not durable: the publisher gets a nack */
        }
        /* due from now, read fresh: the loop's cached clock may be a turn old */
        push(d, copy, api->now_ms() + (uint64_t)v.i);
    }
}

/* A held message back after a restart: due at its publish time plus its
 * delay (the negated x-delay it carries); one already late goes at once. */
static void dx_recover(warren_exchange *x, warren_message *m)
{
    struct dx *d = api->exchange_get_state(x);
    struct warren_value v = api->message_header(m, "x-delay");
    uint64_t delay = v.type == WARREN_VALUE_INT && v.i < 0 ? (uint64_t)-v.i : 0;
    if (!reserve(d)) {
        api->log(host, WARREN_LOG_ERROR, "out of memory recovering a delayed message: dropped");
        api->message_release(x, m);
        return;
    }
    push(d, api->message_ref(m), api->message_published_ms(m) + delay);
}

static const struct warren_exchange_type dx_type = {
    .size = sizeof(struct warren_exchange_type),
    .name = "x-delayed-message",
    .flags = WARREN_XTYPE_ROUTE_UNBOUND,
    .declare = dx_declare,
    .destroy = dx_destroy,
    .route = dx_route,
    .recover = dx_recover,
};

static int dx_init(warren_host *h, const struct warren_api *a)
{
    const char *md;
    api = a;
    host = h;
    if ((md = a->config_get(h, "max_delay")) != NULL) {
        char *end;
        unsigned long long v = strtoull(md, &end, 10);
        if (*end || end == md || md[0] == '-') {
            a->log(h, WARREN_LOG_ERROR,
                   "plugin.delayed_message.max_delay: '%s' is not a number "
                   "of milliseconds",
                   md);
            return -1;
        }
        max_delay = v;
    }
    return a->register_exchange_type(h, &dx_type);
}

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .name = "delayed_message",
    .version = "1.0",
    .description = "x-delayed-message exchange: routes a message x-delay milliseconds later",
    .init = dx_init,
};
