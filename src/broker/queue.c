/*
 * queue.c - priority levels, dispatch, expiry, limits; see queue.h.
 *
 * Neighbours: exchange.c pushes routed messages in; net/chan.c implements
 * the consumers and gives deliveries back (ack drops the reference, nack
 * and channel close requeue); dlx.c takes what leaves a queue as dead
 * letters; vhost.c owns the name table and deletes queues.
 */
#include "config.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dlx.h"
#include "broker/exchange.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "core/log.h"

static void expiry_arm(struct wr_queue *q);
static void expires_arm(struct wr_queue *q);

/* ---- rings ---- */

static int dq_grow(struct wr_deque *d)
{
    uint32_t cap = d->cap ? d->cap * 2 : 8;
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

static void dq_pop_front(struct wr_deque *d)
{
    d->head = (d->head + 1) & (d->cap - 1);
    d->n--;
}

/* Rebuild a ring without tombstones, at a size that fits. */
static void dq_compact(struct wr_deque *d)
{
    uint32_t live = 0, cap = 8;
    struct wr_qent *a;
    for (uint32_t i = 0; i < d->n; i++)
        live += dq_at(d, i)->m != NULL;
    while (cap < live * 2)
        cap *= 2;
    a = malloc((size_t)cap * sizeof(*a));
    if (!a)
        return;
    live = 0;
    for (uint32_t i = 0; i < d->n; i++)
        if (dq_at(d, i)->m)
            a[live++] = *dq_at(d, i);
    free(d->a);
    d->a = a;
    d->cap = cap;
    d->head = 0;
    d->n = live;
}

static void dq_maybe_shrink(struct wr_deque *d)
{
    if (d->cap > 1024 && d->n < d->cap / 8)
        dq_compact(d);
}

/* Serial-number order of 32-bit sequence numbers. */
static inline int32_t seq_cmp(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

/* Index of the entry with sequence `seq` in a ring sorted by sequence, or
 * -1. */
static int64_t dq_find(struct wr_deque *d, uint32_t seq)
{
    uint32_t lo = 0, hi = d->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int32_t c = seq_cmp(dq_at(d, mid)->seq, seq);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ---- levels ---- */

static inline void level_mark(struct wr_queue *q, uint8_t l, bool on)
{
    if (on)
        q->nonempty[l >> 6] |= 1ull << (l & 63);
    else
        q->nonempty[l >> 6] &= ~(1ull << (l & 63));
}

/* Highest level holding entries, or -1. */
static inline int level_top(const struct wr_queue *q)
{
    for (int w = 3; w >= 0; w--)
        if (q->nonempty[w])
            return w * 64 + 63 - __builtin_clzll(q->nonempty[w]);
    return -1;
}

static inline uint8_t msg_level(const struct wr_queue *q, const struct wr_msg *m)
{
    return m->priority > q->s.max_priority ? q->s.max_priority : m->priority;
}

/* ---- expiry arithmetic ---- */

/* Deadline of a message in this queue (monotonic ms), or 0 for none. The
 * lower of the queue's x-message-ttl and the message's expiration wins;
 * the clock starts at publish, so a requeued message keeps its deadline. */
static uint64_t deadline(const struct wr_queue *q, const struct wr_msg *m)
{
    int64_t ttl = q->s.message_ttl;
    int64_t mttl = wr_msg_ttl(m);
    if (mttl >= 0 && (ttl < 0 || mttl < ttl))
        ttl = mttl;
    return ttl < 0 ? 0 : m->published_ms + (uint64_t)ttl;
}

static inline bool expired(const struct wr_queue *q, const struct wr_msg *m, uint64_t now)
{
    uint64_t d = deadline(q, m);
    return d && now > d;
}

/* ---- lifecycle ---- */

struct wr_queue *wr_queue_new(struct wr_vhost *vh, struct wr_str name, struct wr_str args)
{
    struct wr_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->name = malloc((size_t)name.len + 1);
    q->args.ptr = args.len ? malloc(args.len) : NULL;
    if (!q->name || (args.len && !q->args.ptr) || wr_qsettings_parse(args, &q->s) < 0)
        goto fail;
    q->levels = calloc((size_t)q->s.max_priority + 1, sizeof(*q->levels));
    if (!q->levels)
        goto fail;
    if (q->s.type == WR_QTYPE_STREAM && !(q->stream = wr_stream_new(q, q->s.segment_max)))
        goto fail;
    memcpy(q->name, name.ptr, name.len);
    q->name[name.len] = '\0';
    if (args.len)
        memcpy((void *)q->args.ptr, args.ptr, args.len);
    q->args.len = args.len;
    q->node.key = (struct wr_str){q->name, name.len};
    q->vhost = vh;
    q->refs = 1; /* the vhost's */
    q->last_used_ms = wr_now_ms();
    wr_heap_init(&q->expiry);
    wr_list_init(&q->groups);
    wr_list_init(&q->idle);
    wr_list_init(&q->line);
    wr_list_init(&q->bound_to_me);
    wr_list_init(&q->owner_node);
    expires_arm(q);
    return q;
fail:
    free(q->levels);
    wr_qsettings_free(&q->s);
    free(q->name);
    free((void *)q->args.ptr);
    free(q);
    return NULL;
}

void wr_queue_unref(struct wr_queue *q)
{
    if (--q->refs)
        return;
    for (uint32_t l = 0; l <= q->s.max_priority; l++)
        free(q->levels[l].a);
    free(q->levels);
    wr_stream_free(q->stream);
    wr_heap_free(&q->expiry);
    if (q->ttl_ev)
        event_free(q->ttl_ev);
    if (q->expires_ev)
        event_free(q->expires_ev);
    if (q->dlx_ev)
        event_free(q->dlx_ev);
    wr_qsettings_free(&q->s);
    free(q->name);
    free((void *)q->args.ptr);
    free(q);
}

/* ---- leaving the queue without a consumer ---- */

bool wr_queue_journaled(const struct wr_queue *q, const struct wr_msg *m)
{
    return q->durable && q->vhost->persist && wr_msg_store_id(m) &&
           (wr_msg_persistent(m) || wr_qtype_journals_all(q->s.type));
}

static inline void persist_remove(struct wr_queue *q, struct wr_msg *m)
{
    const struct wr_persist *p = q->vhost->persist;
    if (wr_queue_journaled(q, m))
        p->remove(p->ctx, q, m);
}

void wr_queue_settled(struct wr_queue *q, struct wr_msg *m)
{
    /* A stream keeps what its consumers acknowledge. */
    if (!q->stream)
        persist_remove(q, m);
    wr_msg_unref(m);
}

_Static_assert(WR_ST_DL_EXPIRED - WR_ST_DL_REJECTED == WR_DL_EXPIRED &&
                   WR_ST_DL_MAXLEN - WR_ST_DL_REJECTED == WR_DL_MAXLEN &&
                   WR_ST_DL_DELIVERY_LIMIT - WR_ST_DL_REJECTED == WR_DL_DELIVERY_LIMIT,
               "dead-letter counters follow enum wr_dl_reason");

/* Take a live entry out of the accounting and dead-letter (or drop) it. */
static void dlx_retry_arm(struct wr_queue *q);

/* At-least-once: the dead letter is published (its record written) before
 * the original's removal record, so the journal never holds neither; one
 * that no queue took stays here, journaled, and is tried again. */
static void dead_letter_at_least_once(struct wr_queue *q, struct wr_msg *m, enum wr_dl_reason why)
{
    if (wr_dlx_publish(q, wr_msg_ref(m), why)) {
        wr_stat_inc(&q->vhost->st, (enum wr_stat)(WR_ST_DL_REJECTED + (int)why));
        persist_remove(q, m);
        wr_msg_unref(m);
        return;
    }
    if (q->ndlpend == q->dlpend_cap) {
        uint32_t cap = q->dlpend_cap ? q->dlpend_cap * 2 : 8;
        struct wr_dlpend *a = realloc(q->dlpend, cap * sizeof(*a));
        if (!a) {
            wr_log(WR_LOG_ERROR, "out of memory keeping a dead letter: dropped");
            persist_remove(q, m);
            wr_msg_unref(m);
            return;
        }
        q->dlpend = a;
        q->dlpend_cap = cap;
    }
    q->dlpend[q->ndlpend++] = (struct wr_dlpend){m, why};
    dlx_retry_arm(q);
}

static void dlx_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_queue *q = arg;
    uint32_t n = q->ndlpend, k = 0;
    struct wr_dlpend *a = q->dlpend;
    (void)fd;
    (void)what;
    /* Take the list: what fails again is appended to a fresh one. */
    q->dlpend = NULL;
    q->ndlpend = q->dlpend_cap = 0;
    for (; k < n && !q->deleted; k++)
        dead_letter_at_least_once(q, a[k].m, a[k].why);
    for (; k < n; k++) {
        persist_remove(q, a[k].m);
        wr_msg_unref(a[k].m);
    }
    free(a);
}

static void dlx_retry_arm(struct wr_queue *q)
{
    struct timeval tv = {1, 0};
    if (!q->vhost->base || q->deleted)
        return;
    if (!q->dlx_ev && !(q->dlx_ev = evtimer_new(q->vhost->base, dlx_retry_cb, q)))
        return;
    if (!evtimer_pending(q->dlx_ev, NULL))
        evtimer_add(q->dlx_ev, &tv);
}

/* Drop the dead letters still waiting (the queue is purged or deleted). */
static void dlpend_drop(struct wr_queue *q)
{
    for (uint32_t i = 0; i < q->ndlpend; i++) {
        persist_remove(q, q->dlpend[i].m);
        wr_msg_unref(q->dlpend[i].m);
    }
    free(q->dlpend);
    q->dlpend = NULL;
    q->ndlpend = q->dlpend_cap = 0;
    if (q->dlx_ev)
        evtimer_del(q->dlx_ev);
}

static void dead_letter(struct wr_queue *q, struct wr_msg *m, enum wr_dl_reason why)
{
    if (q->s.dl_at_least_once) {
        dead_letter_at_least_once(q, m, why);
        return;
    }
    persist_remove(q, m);
    if (q->s.dlx) {
        wr_stat_inc(&q->vhost->st, (enum wr_stat)(WR_ST_DL_REJECTED + (int)why));
        wr_dlx_publish(q, m, why);
    } else {
        q->vhost->dl_dropped[why]++;
        wr_msg_unref(m);
    }
}

/* Turn the entry at index i of level l into a tombstone. */
static void entry_remove(struct wr_queue *q, uint8_t l, uint32_t i, enum wr_dl_reason why)
{
    struct wr_qent *e = dq_at(&q->levels[l], i);
    struct wr_msg *m = e->m;
    e->m = NULL;
    q->ready--;
    q->ready_bytes -= m->body_len;
    q->tombstones++;
    dead_letter(q, m, why);
}

/* Drop tombstones at the heads of rings; compact when they dominate. */
static void tidy(struct wr_queue *q)
{
    if (!q->tombstones)
        return;
    for (int w = 0; w < 4; w++) {
        uint64_t bits = q->nonempty[w];
        while (bits) {
            uint8_t l = (uint8_t)(w * 64 + __builtin_ctzll(bits));
            struct wr_deque *d = &q->levels[l];
            bits &= bits - 1;
            while (d->n && !dq_at(d, 0)->m) {
                dq_pop_front(d);
                q->tombstones--;
            }
            if (!d->n)
                level_mark(q, l, false);
            dq_maybe_shrink(d);
        }
    }
    if (q->tombstones > 1024 && q->tombstones > q->ready) {
        q->tombstones = 0;
        for (uint32_t k = 0; k <= q->s.max_priority; k++) {
            dq_compact(&q->levels[k]);
            level_mark(q, (uint8_t)k, q->levels[k].n > 0);
        }
    }
}

/* Pop the next live, unexpired entry. Expired ones met on the way are
 * dead-lettered. */
static bool pop_head(struct wr_queue *q, struct wr_qent *out)
{
    uint64_t now = wr_now_ms();
    for (;;) {
        int l = level_top(q);
        struct wr_deque *d;
        struct wr_qent *e;
        if (l < 0)
            return false;
        d = &q->levels[l];
        e = dq_at(d, 0);
        if (!e->m) {
            dq_pop_front(d);
            q->tombstones--;
        } else if (expired(q, e->m, now)) {
            entry_remove(q, (uint8_t)l, 0, WR_DL_EXPIRED);
            dq_pop_front(d);
            q->tombstones--;
        } else {
            *out = *e;
            dq_pop_front(d);
            q->ready--;
            q->ready_bytes -= out->m->body_len;
            if (!d->n)
                level_mark(q, (uint8_t)l, false);
            return true;
        }
        if (!d->n)
            level_mark(q, (uint8_t)l, false);
    }
}

/* Enforce x-max-length / x-max-length-bytes by dropping from the head. */
static void drop_head_to_fit(struct wr_queue *q)
{
    while (q->ready &&
           ((q->s.max_length >= 0 && q->ready > (uint64_t)q->s.max_length) ||
            (q->s.max_length_bytes >= 0 && q->ready_bytes > (uint64_t)q->s.max_length_bytes))) {
        struct wr_qent e;
        if (!pop_head(q, &e))
            break;
        dead_letter(q, e.m, WR_DL_MAXLEN);
    }
}

/* Drop tombstones from the tail of a level (a TTL-0 message just removed). */
static void tidy_tail(struct wr_queue *q, uint8_t l)
{
    struct wr_deque *d = &q->levels[l];
    while (d->n && !dq_at(d, d->n - 1)->m) {
        d->n--;
        q->tombstones--;
    }
    if (!d->n)
        level_mark(q, l, false);
}

static bool full_for(const struct wr_queue *q, const struct wr_msg *m)
{
    /* Dead letters waiting for a target count (RabbitMQ's at-least-once:
     * the source fills up and refuses publishes meanwhile). */
    uint64_t n = (uint64_t)q->ready + q->ndlpend;
    if (q->s.type == WR_QTYPE_QUORUM)
        /* RabbitMQ 3.10's quorum queue refuses once it is over its limit,
         * so it takes one message past it (measured: x-max-length 2 takes
         * a third publish and refuses the fourth). */
        return (q->s.max_length >= 0 && n > (uint64_t)q->s.max_length) ||
               (q->s.max_length_bytes >= 0 && q->ready_bytes > (uint64_t)q->s.max_length_bytes);
    return (q->s.max_length >= 0 && n >= (uint64_t)q->s.max_length) ||
           (q->s.max_length_bytes >= 0 &&
            q->ready_bytes + m->body_len > (uint64_t)q->s.max_length_bytes);
}

/* ---- messages in ---- */

static int enqueue(struct wr_queue *q, const struct wr_qent *e, bool front)
{
    struct wr_deque *d = &q->levels[e->level];
    uint64_t dl;
    if ((front ? dq_push_front(d, e) : dq_push_back(d, e)) < 0)
        return WR_ENOMEM;
    level_mark(q, e->level, true);
    q->ready++;
    q->ready_bytes += e->m->body_len;
    dl = deadline(q, e->m);
    if (dl && wr_heap_push(&q->expiry, dl, (uint64_t)e->level << 32 | e->seq) == 0)
        expiry_arm(q);
    return 0;
}

int wr_queue_push(struct wr_queue *q, struct wr_msg *m)
{
    struct wr_qent e = {m, q->next_seq++, 0, msg_level(q, m), 0};
    uint64_t dl;
    int rc;

    if (q->stream)
        return wr_stream_append(q, m, 0, 0);

    if (q->s.overflow != WR_OVERFLOW_DROP_HEAD && full_for(q, m)) {
        persist_remove(q, m); /* journaled for this queue just before */
        if (q->s.overflow == WR_OVERFLOW_REJECT_DLX)
            dead_letter(q, wr_msg_ref(m), WR_DL_MAXLEN);
        return WR_QUEUE_REJECTED;
    }
    if ((rc = enqueue(q, &e, false)) < 0)
        return rc;
    wr_msg_ref(m);
    wr_stat_inc(&q->st, WR_ST_PUBLISH);
    if (q->ready > WR_PAGE_AFTER && wr_queue_journaled(q, m))
        q->vhost->persist->page_out(q->vhost->persist->ctx, m);
    if (!wr_list_empty(&q->groups))
        wr_queue_dispatch(q);
    /* TTL 0 (or a deadline already past): deliver now or never. If no
     * consumer took it just now, it is still the last entry of its level. */
    dl = deadline(q, m);
    if (dl && dl <= wr_now_ms()) {
        struct wr_deque *d = &q->levels[e.level];
        if (d->n && dq_at(d, d->n - 1)->m == m && dq_at(d, d->n - 1)->seq == e.seq) {
            entry_remove(q, e.level, d->n - 1, WR_DL_EXPIRED);
            tidy_tail(q, e.level);
        }
    }
    /* (A quorum queue with reject-publish may hold one past its limit.) */
    if (q->s.overflow == WR_OVERFLOW_DROP_HEAD &&
        (q->s.max_length >= 0 || q->s.max_length_bytes >= 0))
        drop_head_to_fit(q);
    return 0;
}

int wr_queue_push_recovered(struct wr_queue *q, struct wr_msg *m, uint16_t deliveries)
{
    struct wr_qent e = {m, q->next_seq++, deliveries, msg_level(q, m), 0};
    int rc;
    if (q->stream)
        return WR_EPRECONDITION_FAILED; /* (a stream recovers its own records) */
    rc = enqueue(q, &e, false);
    if (rc == 0)
        wr_msg_ref(m);
    return rc;
}

/* ---- dispatch ---- */

static struct wr_cgroup *group_for(struct wr_queue *q, int prio)
{
    struct wr_list *it;
    struct wr_cgroup *g;
    wr_list_each(it, &q->groups)
    {
        g = wr_container_of(it, struct wr_cgroup, node);
        if (g->priority == prio)
            return g;
        if (g->priority < prio)
            break;
    }
    g = malloc(sizeof(*g));
    if (!g)
        return NULL;
    g->priority = prio;
    wr_list_init(&g->members);
    /* Insert before `it` (the first lower group, or the head: the end). */
    g->node.prev = it->prev;
    g->node.next = it;
    it->prev->next = &g->node;
    it->prev = &g->node;
    return g;
}

static void group_leave(struct wr_consumer *c)
{
    struct wr_cgroup *g = c->group;
    wr_list_del(&c->qnode);
    c->group = NULL;
    c->active = false;
    if (g && wr_list_empty(&g->members)) {
        wr_list_del(&g->node);
        free(g);
    }
}

/* Put a consumer in rotation (at the tail of its priority group). */
static void rotation_join(struct wr_queue *q, struct wr_consumer *c)
{
    struct wr_cgroup *g = group_for(q, c->priority);
    if (!g) {
        wr_list_add_tail(&q->idle, &c->qnode); /* retried on the next ready */
        return;
    }
    c->group = g;
    c->active = true;
    wr_list_add_tail(&g->members, &c->qnode);
}

void wr_queue_dispatch(struct wr_queue *q)
{
    if (q->dispatching || q->deleted)
        return;
    q->dispatching = true; /* a delivery must not re-enter dispatch */
    while (q->ready && !wr_list_empty(&q->groups)) {
        struct wr_cgroup *g = wr_container_of(q->groups.next, struct wr_cgroup, node);
        struct wr_consumer *c = wr_container_of(g->members.next, struct wr_consumer, qnode);
        struct wr_qent e;

        if (!c->ops->can_take(c)) {
            group_leave(c);
            wr_list_add_tail(&q->idle, &c->qnode);
            continue;
        }
        if (!pop_head(q, &e))
            break;
        /* Rotate before delivering: the delivery may change the lists. */
        wr_list_del(&c->qnode);
        wr_list_add_tail(&g->members, &c->qnode);
        q->stat_delivered++;
        c->ops->deliver(c, q, &e);
    }
    q->dispatching = false;
    tidy(q);
    for (uint32_t l = 0; l <= q->s.max_priority; l++)
        dq_maybe_shrink(&q->levels[l]);
}

bool wr_queue_get(struct wr_queue *q, struct wr_qent *e)
{
    bool ok = pop_head(q, e);
    tidy(q);
    wr_queue_touch(q);
    if (ok)
        q->stat_delivered++;
    return ok;
}

/* ---- messages back ---- */

/* Put one entry back near the head of its level, in sequence order among
 * the other requeued entries (everything never delivered has a higher
 * sequence number, so it stops at the first of those). */
static void requeue_entry(struct wr_queue *q, const struct wr_qent *e, bool back)
{
    struct wr_deque *d;
    if (q->stream) { /* still in the stream: the delivery only goes */
        wr_msg_unref(e->m);
        return;
    }
    if (q->deleted) {
        persist_remove(q, e->m);
        wr_msg_unref(e->m);
        return;
    }
    if (q->s.delivery_limit >= 0 && e->deliveries > q->s.delivery_limit) {
        dead_letter(q, e->m, WR_DL_DELIVERY_LIMIT);
        return;
    }
    if (back) {
        /* At the tail, as a new message: it takes a new sequence number,
         * so a later requeue near the head still sorts it after those. */
        struct wr_qent t = *e;
        t.seq = q->next_seq++;
        if (enqueue(q, &t, false) < 0) {
            persist_remove(q, e->m);
            wr_msg_unref(e->m);
            return;
        }
        if (wr_queue_journaled(q, e->m))
            q->vhost->persist->requeue(q->vhost->persist->ctx, q, e->m, e->deliveries);
        return;
    }
    if (enqueue(q, e, true) < 0) {
        persist_remove(q, e->m);
        wr_msg_unref(e->m);
        return;
    }
    if (wr_queue_journaled(q, e->m))
        q->vhost->persist->requeue(q->vhost->persist->ctx, q, e->m, e->deliveries);
    d = &q->levels[e->level];
    for (uint32_t i = 0; i + 1 < d->n; i++) {
        struct wr_qent *a = dq_at(d, i), *b = dq_at(d, i + 1), t;
        if (seq_cmp(a->seq, b->seq) < 0)
            break;
        t = *a;
        *a = *b;
        *b = t;
    }
}

/* A requeue can push a drop-head queue past its limit: RabbitMQ then drops
 * from the head, which is where the requeued messages went. (With
 * reject-publish the queue may stay over its limit.) */
static void after_requeue(struct wr_queue *q)
{
    if (q->deleted)
        return;
    wr_queue_dispatch(q);
    if (q->s.overflow == WR_OVERFLOW_DROP_HEAD &&
        (q->s.max_length >= 0 || q->s.max_length_bytes >= 0))
        drop_head_to_fit(q);
}

static int qent_seq_desc(const void *x, const void *y)
{
    const struct wr_qent *a = x, *b = y;
    int32_t c = seq_cmp(a->seq, b->seq);
    return c < 0 ? 1 : c > 0 ? -1 : 0;
}

void wr_queue_requeue(struct wr_queue *q, struct wr_qent *e, uint32_t n)
{
    /* Highest sequence first, so each push to the front lands in place. */
    qsort(e, n, sizeof(*e), qent_seq_desc);
    for (uint32_t i = 0; i < n; i++)
        requeue_entry(q, &e[i], false);
    after_requeue(q);
}

void wr_queue_requeue_one(struct wr_queue *q, const struct wr_qent *e)
{
    requeue_entry(q, e, false);
    after_requeue(q);
}

void wr_queue_return(struct wr_queue *q, struct wr_qent *e, uint32_t n)
{
    if (q->s.type != WR_QTYPE_QUORUM) {
        wr_queue_requeue(q, e, n);
        return;
    }
    /* In delivery order (lowest sequence first) to the tail. */
    qsort(e, n, sizeof(*e), qent_seq_desc);
    for (uint32_t i = n; i-- > 0;)
        requeue_entry(q, &e[i], true);
    after_requeue(q);
}

void wr_queue_reject(struct wr_queue *q, const struct wr_qent *e)
{
    if (q->deleted || q->stream)
        wr_queue_settled(q, e->m);
    else
        dead_letter(q, e->m, WR_DL_REJECTED);
}

uint32_t wr_queue_purge(struct wr_queue *q)
{
    uint32_t n = q->ready;
    if (q->stream) {
        n = (uint32_t)wr_stream_count(q->stream);
        wr_stream_clear(q);
        return n;
    }
    for (uint32_t l = 0; l <= q->s.max_priority; l++) {
        struct wr_deque *d = &q->levels[l];
        for (uint32_t i = 0; i < d->n; i++) {
            struct wr_msg *m = dq_at(d, i)->m;
            if (m) {
                persist_remove(q, m);
                wr_msg_unref(m);
            }
        }
        free(d->a);
        memset(d, 0, sizeof(*d));
        level_mark(q, (uint8_t)l, false);
    }
    q->ready = q->tombstones = 0;
    q->ready_bytes = 0;
    wr_heap_free(&q->expiry);
    return n;
}

/* ---- timers: message TTL ---- */

static void ttl_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_queue *q = arg;
    const struct wr_heap_item *top;
    uint64_t now;
    (void)fd;
    (void)what;
    wr_clock_update();
    now = wr_now_ms();
    q->ttl_armed_at = 0;
    wr_queue_ref(q); /* dead-lettering may delete the queue under us */
    while ((top = wr_heap_top(&q->expiry)) && top->key < now && !q->deleted) {
        uint8_t l = (uint8_t)(top->val >> 32);
        uint32_t seq = (uint32_t)top->val;
        int64_t i;
        wr_heap_pop(&q->expiry);
        if (l > q->s.max_priority)
            continue;
        i = dq_find(&q->levels[l], seq);
        /* Gone already (delivered, dropped) or requeued with a new entry. */
        if (i < 0 || !dq_at(&q->levels[l], (uint32_t)i)->m ||
            !expired(q, dq_at(&q->levels[l], (uint32_t)i)->m, now))
            continue;
        entry_remove(q, l, (uint32_t)i, WR_DL_EXPIRED);
    }
    if (!q->deleted) {
        tidy(q);
        expiry_arm(q);
    }
    wr_queue_unref(q);
}

static void expiry_arm(struct wr_queue *q)
{
    const struct wr_heap_item *top = wr_heap_top(&q->expiry);
    uint64_t now = wr_now_ms(), at;
    struct timeval tv;

    if (!top || !q->vhost->base || q->deleted)
        return;
    at = top->key + 1; /* expired means now > deadline */
    if (q->ttl_armed_at && q->ttl_armed_at <= at)
        return;
    if (!q->ttl_ev && !(q->ttl_ev = evtimer_new(q->vhost->base, ttl_cb, q)))
        return;
    tv.tv_sec = at > now ? (time_t)((at - now) / 1000) : 0;
    tv.tv_usec = at > now ? (suseconds_t)((at - now) % 1000) * 1000 : 0;
    evtimer_add(q->ttl_ev, &tv);
    q->ttl_armed_at = at;
}

/* ---- timers: x-expires ---- */

static void expires_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_queue *q = arg;
    (void)fd;
    (void)what;
    wr_clock_update();
    if (q->deleted || q->nconsumers)
        return;
    if (wr_now_ms() - q->last_used_ms >= (uint64_t)q->s.expires) {
        char qn[WR_LOG_ESC_MAX];
        wr_log(WR_LOG_INFO, "queue '%s' in vhost '%s' expired (x-expires %lld ms unused)",
               WR_LOG_ESC(qn, wr_queue_name(q)), q->vhost->name, (long long)q->s.expires);
        wr_vhost_queue_delete(q->vhost, q);
        return;
    }
    expires_arm(q);
}

static void expires_arm(struct wr_queue *q)
{
    uint64_t due, now = wr_now_ms();
    struct timeval tv;
    if (q->s.expires < 0 || q->nconsumers || !q->vhost->base || q->deleted)
        return;
    if (!q->expires_ev && !(q->expires_ev = evtimer_new(q->vhost->base, expires_cb, q)))
        return;
    due = q->last_used_ms + (uint64_t)q->s.expires;
    tv.tv_sec = due > now ? (time_t)((due - now) / 1000) : 0;
    tv.tv_usec = due > now ? (suseconds_t)((due - now) % 1000) * 1000 : 0;
    evtimer_add(q->expires_ev, &tv);
}

void wr_queue_touch(struct wr_queue *q)
{
    q->last_used_ms = wr_now_ms();
    expires_arm(q);
}

uint64_t wr_queue_head_published_ms(const struct wr_queue *q)
{
    uint64_t oldest = 0;
    if (!q->ready)
        return 0;
    for (uint32_t l = 0; l <= q->s.max_priority; l++) {
        struct wr_deque *d = &q->levels[l];
        /* Tombstones at a head are few (tidy drops them): look past a
         * handful, no further, so that this stays O(levels). */
        for (uint32_t i = 0; i < d->n && i < 64; i++) {
            const struct wr_msg *m = dq_at(d, i)->m;
            if (m) {
                if (!oldest || m->published_ms < oldest)
                    oldest = m->published_ms;
                break;
            }
        }
    }
    return oldest;
}

/* ---- consumers ---- */

void wr_queue_consumer_add(struct wr_queue *q, struct wr_consumer *c)
{
    c->q = q;
    c->group = NULL;
    q->nconsumers++;
    q->had_consumer = true;
    if (c->exclusive)
        q->exclusive_consumer = c;
    if (q->expires_ev)
        evtimer_del(q->expires_ev);
    if (q->s.single_active) {
        bool first = wr_list_empty(&q->line);
        wr_list_add_tail(&q->line, &c->linenode);
        c->parked = !first;
        if (c->parked) {
            wr_list_init(&c->qnode);
            return;
        }
    }
    rotation_join(q, c);
    if (q->stream)
        wr_stream_dispatch_one(q, c);
    else
        wr_queue_dispatch(q);
}

bool wr_queue_consumer_remove(struct wr_queue *q, struct wr_consumer *c)
{
    bool was_parked = c->parked;
    wr_stream_consumer_gone(c);
    if (c->active)
        group_leave(c);
    else
        wr_list_del(&c->qnode);
    if (q->s.single_active) {
        bool was_first = q->line.next == &c->linenode;
        wr_list_del(&c->linenode);
        /* The next in line takes over, in registration order. */
        if (was_first && !was_parked && !wr_list_empty(&q->line)) {
            struct wr_consumer *n = wr_container_of(q->line.next, struct wr_consumer, linenode);
            n->parked = false;
            rotation_join(q, n);
        }
    }
    c->q = NULL;
    c->active = c->parked = false;
    q->nconsumers--;
    if (q->exclusive_consumer == c)
        q->exclusive_consumer = NULL;
    if (q->auto_delete && q->nconsumers == 0 && !q->deleted) {
        wr_vhost_queue_delete(q->vhost, q);
        return true;
    }
    if (q->nconsumers == 0)
        wr_queue_touch(q);
    else if (!q->stream)
        wr_queue_dispatch(q);
    return false;
}

void wr_queue_consumer_ready(struct wr_consumer *c)
{
    struct wr_queue *q = c->q;
    if (!q || c->parked)
        return;
    if (!c->active) {
        wr_list_del(&c->qnode);
        rotation_join(q, c);
    }
    if (q->stream) {
        if (!q->dispatching)
            wr_stream_consumer_ready(q, c);
    } else if (q->ready)
        wr_queue_dispatch(q);
}

uint32_t wr_queue_delete(struct wr_queue *q)
{
    uint32_t n = q->stream ? (uint32_t)wr_stream_count(q->stream) : q->ready;
    struct wr_list *it, *tmp;

    if (q->deleted)
        return 0;
    q->deleted = true;
    if (q->ttl_ev)
        evtimer_del(q->ttl_ev);
    if (q->expires_ev)
        evtimer_del(q->expires_ev);
    /* Cancel consumers: each hears basic.cancel (if its client asked). */
    while (!wr_list_empty(&q->groups)) {
        struct wr_cgroup *g = wr_container_of(q->groups.next, struct wr_cgroup, node);
        struct wr_consumer *c = wr_container_of(g->members.next, struct wr_consumer, qnode);
        group_leave(c);
        if (q->s.single_active)
            wr_list_del(&c->linenode);
        c->q = NULL;
        q->nconsumers--;
        wr_stream_consumer_gone(c);
        c->ops->cancelled(c);
    }
    wr_list_each_safe(it, tmp, &q->idle)
    {
        struct wr_consumer *c = wr_container_of(it, struct wr_consumer, qnode);
        wr_list_del(it);
        if (q->s.single_active)
            wr_list_del(&c->linenode);
        c->q = NULL;
        c->active = false;
        q->nconsumers--;
        wr_stream_consumer_gone(c);
        c->ops->cancelled(c);
    }
    wr_list_each_safe(it, tmp, &q->line)
    {
        struct wr_consumer *c = wr_container_of(it, struct wr_consumer, linenode);
        wr_list_del(it);
        c->q = NULL;
        c->parked = false;
        q->nconsumers--;
        wr_stream_consumer_gone(c);
        c->ops->cancelled(c);
    }
    wr_queue_purge(q);
    dlpend_drop(q);
    wr_list_each_safe(it, tmp, &q->bound_to_me)
    {
        wr_binding_remove(wr_container_of(it, struct wr_binding, dst_node));
    }
    wr_list_del(&q->owner_node);
    return n;
}

/* ---- a look at the heads (management API) ---- */

#define HEAD_SCAN 32 /* entries looked at per level before giving up */

const struct wr_msg *wr_queue_head(const struct wr_queue *q, uint64_t *oldest_ms)
{
    const struct wr_msg *next = NULL;
    uint64_t oldest = UINT64_MAX;
    for (int l = (int)q->s.max_priority; l >= 0; l--) {
        if (!(q->nonempty[l >> 6] & (1ull << (l & 63))))
            continue;
        const struct wr_deque *d = &q->levels[l];
        uint32_t n = d->n < HEAD_SCAN ? d->n : HEAD_SCAN;
        for (uint32_t i = 0; i < n; i++) {
            const struct wr_msg *m = d->a[(d->head + i) & (d->cap - 1)].m;
            if (!m)
                continue;
            if (!next)
                next = m;
            if (m->published_ms < oldest)
                oldest = m->published_ms;
            break;
        }
    }
    *oldest_ms = next ? oldest : 0;
    return next;
}

uint32_t wr_queue_peek(const struct wr_queue *q, struct wr_qent *out, uint32_t max)
{
    uint32_t n = 0;
    for (int l = (int)q->s.max_priority; l >= 0 && n < max; l--) {
        if (!(q->nonempty[l >> 6] & (1ull << (l & 63))))
            continue;
        const struct wr_deque *d = &q->levels[l];
        for (uint32_t i = 0; i < d->n && n < max; i++) {
            const struct wr_qent *e = &d->a[(d->head + i) & (d->cap - 1)];
            if (e->m)
                out[n++] = *e;
        }
    }
    return n;
}
