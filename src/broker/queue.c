/*
 * queue.c - message FIFO, consumer rotation and dispatch; see queue.h.
 *
 * Neighbours: exchange.c pushes routed messages in; net/chan.c implements
 * the consumers and gives deliveries back (ack drops the reference, reject
 * and channel close requeue). vhost.c owns the name table.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "broker/queue.h"
#include "broker/vhost.h"

/* ---- the ring buffer ---- */

static int dq_grow(struct wr_deque *d)
{
    uint32_t cap = d->cap ? d->cap * 2 : 16;
    struct wr_qent *a;
    if (cap < d->cap)
        return WR_ENOMEM;
    a = malloc((size_t)cap * sizeof(*a));
    if (!a)
        return WR_ENOMEM;
    for (uint32_t i = 0; i < d->n; i++)
        a[i] = d->a[(d->head + i) & (d->cap - 1)];
    free(d->a);
    d->a = a;
    d->cap = cap;
    d->head = 0;
    return 0;
}

static inline struct wr_qent *dq_at(struct wr_deque *d, uint32_t i)
{
    return &d->a[(d->head + i) & (d->cap - 1)];
}

static int dq_push_back(struct wr_deque *d, const struct wr_qent *e)
{
    if (d->n == d->cap && dq_grow(d) < 0)
        return WR_ENOMEM;
    *dq_at(d, d->n) = *e;
    d->n++;
    return 0;
}

static int dq_push_front(struct wr_deque *d, const struct wr_qent *e)
{
    if (d->n == d->cap && dq_grow(d) < 0)
        return WR_ENOMEM;
    d->head = (d->head - 1) & (d->cap - 1);
    d->a[d->head] = *e;
    d->n++;
    return 0;
}

static void dq_pop_front(struct wr_deque *d, struct wr_qent *e)
{
    *e = d->a[d->head];
    d->head = (d->head + 1) & (d->cap - 1);
    d->n--;
}

/* Shrink a mostly empty ring so a queue that once held a million messages
 * gives the memory back. */
static void dq_maybe_shrink(struct wr_deque *d)
{
    if (d->cap > 1024 && d->n < d->cap / 8) {
        uint32_t cap = d->cap / 2;
        struct wr_qent *a = malloc((size_t)cap * sizeof(*a));
        if (!a)
            return;
        for (uint32_t i = 0; i < d->n; i++)
            a[i] = d->a[(d->head + i) & (d->cap - 1)];
        free(d->a);
        d->a = a;
        d->cap = cap;
        d->head = 0;
    }
}

/* ---- lifecycle ---- */

struct wr_queue *wr_queue_new(struct wr_vhost *vh, struct wr_str name, struct wr_str args)
{
    struct wr_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->name = malloc((size_t)name.len + 1);
    q->args.ptr = args.len ? malloc(args.len) : NULL;
    if (!q->name || (args.len && !q->args.ptr)) {
        free(q->name);
        free((void *)q->args.ptr);
        free(q);
        return NULL;
    }
    memcpy(q->name, name.ptr, name.len);
    q->name[name.len] = '\0';
    if (args.len)
        memcpy((void *)q->args.ptr, args.ptr, args.len);
    q->args.len = args.len;
    q->node.key = (struct wr_str){q->name, name.len};
    q->vhost = vh;
    q->refs = 1; /* the vhost's */
    wr_list_init(&q->active);
    wr_list_init(&q->idle);
    wr_list_init(&q->bound_to_me);
    wr_list_init(&q->owner_node);
    return q;
}

void wr_queue_unref(struct wr_queue *q)
{
    if (--q->refs)
        return;
    free(q->msgs.a);
    free(q->name);
    free((void *)q->args.ptr);
    free(q);
}

/* ---- messages ---- */

int wr_queue_push(struct wr_queue *q, struct wr_msg *m)
{
    struct wr_qent e = {m, q->next_seq++, 0};
    if (dq_push_back(&q->msgs, &e) < 0)
        return WR_ENOMEM;
    wr_msg_ref(m);
    q->ready_bytes += m->body_len;
    q->stat_published++;
    if (!wr_list_empty(&q->active))
        wr_queue_dispatch(q);
    return 0;
}

static void take_head(struct wr_queue *q, struct wr_qent *e)
{
    dq_pop_front(&q->msgs, e);
    q->ready_bytes -= e->m->body_len;
}

void wr_queue_dispatch(struct wr_queue *q)
{
    if (q->dispatching || q->deleted)
        return;
    q->dispatching = true; /* a delivery must not re-enter dispatch */
    while (q->msgs.n && !wr_list_empty(&q->active)) {
        struct wr_list *n = q->active.next;
        struct wr_consumer *c = wr_container_of(n, struct wr_consumer, qnode);
        struct wr_qent e;

        if (!c->ops->can_take(c)) {
            wr_list_del(n);
            wr_list_add_tail(&q->idle, n);
            c->active = false;
            continue;
        }
        take_head(q, &e);
        /* Rotate before delivering: the delivery may change the lists. */
        wr_list_del(n);
        wr_list_add_tail(&q->active, n);
        q->stat_delivered++;
        c->ops->deliver(c, q, &e);
    }
    q->dispatching = false;
    dq_maybe_shrink(&q->msgs);
}

bool wr_queue_get(struct wr_queue *q, struct wr_qent *e)
{
    if (!q->msgs.n)
        return false;
    take_head(q, e);
    q->stat_delivered++;
    return true;
}

/* Put one entry back near the head, in sequence order among the other
 * requeued entries (everything never delivered has a higher sequence). */
static void requeue_entry(struct wr_queue *q, const struct wr_qent *e)
{
    struct wr_qent *a, *b, t;
    uint32_t i;

    if (q->deleted || dq_push_front(&q->msgs, e) < 0) {
        wr_msg_unref(e->m);
        return;
    }
    q->ready_bytes += e->m->body_len;
    for (i = 0; i + 1 < q->msgs.n; i++) {
        a = dq_at(&q->msgs, i);
        b = dq_at(&q->msgs, i + 1);
        if (a->seq < b->seq)
            break;
        t = *a;
        *a = *b;
        *b = t;
    }
}

static int qent_seq_desc(const void *x, const void *y)
{
    const struct wr_qent *a = x, *b = y;
    return a->seq < b->seq ? 1 : a->seq > b->seq ? -1 : 0;
}

void wr_queue_requeue(struct wr_queue *q, struct wr_qent *e, uint32_t n)
{
    /* Highest sequence first, so each push_front lands in place. */
    qsort(e, n, sizeof(*e), qent_seq_desc);
    for (uint32_t i = 0; i < n; i++)
        requeue_entry(q, &e[i]);
    wr_queue_dispatch(q);
}

void wr_queue_requeue_one(struct wr_queue *q, const struct wr_qent *e)
{
    requeue_entry(q, e);
    wr_queue_dispatch(q);
}

uint32_t wr_queue_purge(struct wr_queue *q)
{
    uint32_t n = q->msgs.n;
    struct wr_qent e;
    while (q->msgs.n) {
        take_head(q, &e);
        wr_msg_unref(e.m);
    }
    dq_maybe_shrink(&q->msgs);
    return n;
}

/* ---- consumers ---- */

void wr_queue_consumer_add(struct wr_queue *q, struct wr_consumer *c)
{
    c->q = q;
    c->active = true;
    wr_list_add_tail(&q->active, &c->qnode);
    q->nconsumers++;
    q->had_consumer = true;
    if (c->exclusive)
        q->exclusive_consumer = c;
    wr_queue_dispatch(q);
}

bool wr_queue_consumer_remove(struct wr_queue *q, struct wr_consumer *c)
{
    wr_list_del(&c->qnode);
    c->q = NULL;
    c->active = false;
    q->nconsumers--;
    if (q->exclusive_consumer == c)
        q->exclusive_consumer = NULL;
    if (q->auto_delete && q->nconsumers == 0 && !q->deleted) {
        wr_vhost_queue_delete(q->vhost, q);
        return true;
    }
    return false;
}

void wr_queue_consumer_ready(struct wr_consumer *c)
{
    struct wr_queue *q = c->q;
    if (!q)
        return;
    if (!c->active) {
        wr_list_del(&c->qnode);
        wr_list_add_tail(&q->active, &c->qnode);
        c->active = true;
    }
    if (q->msgs.n)
        wr_queue_dispatch(q);
}

uint32_t wr_queue_delete(struct wr_queue *q)
{
    uint32_t n = q->msgs.n;
    struct wr_list *it, *tmp;

    if (q->deleted)
        return 0;
    q->deleted = true;
    /* Cancel consumers: each hears basic.cancel (if its client asked). */
    for (int pass = 0; pass < 2; pass++) {
        struct wr_list *h = pass ? &q->idle : &q->active;
        wr_list_each_safe(it, tmp, h)
        {
            struct wr_consumer *c = wr_container_of(it, struct wr_consumer, qnode);
            wr_list_del(it);
            c->q = NULL;
            c->active = false;
            q->nconsumers--;
            c->ops->cancelled(c);
        }
    }
    wr_queue_purge(q);
    wr_list_each_safe(it, tmp, &q->bound_to_me)
    {
        wr_binding_remove(wr_container_of(it, struct wr_binding, dst_node));
    }
    wr_list_del(&q->owner_node);
    return n;
}
