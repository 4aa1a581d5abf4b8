/*
 * queue.h - queues: message references in priority levels, their
 * consumers, dispatch, expiry, length limits and dead-lettering hooks.
 *
 * The queue knows nothing of channels or sockets: a consumer is a struct
 * wr_consumer embedded in whatever implements it (net/chan.c), reached
 * through a small ops table.
 *
 * Messages: one FIFO ring per priority level (a plain queue has one level)
 * and a bitmap of the levels that hold entries, so push and pop are O(1)
 * whatever the priority; FIFO among equal priorities comes for free. Per-
 * priority FIFOs were chosen over a heap for that reason and because a heap
 * would cost O(log n) on every message of the common non-priority queue.
 * Entries carry a per-queue sequence number (serial arithmetic, 32 bits):
 * requeued messages go back near the head in their original order, and an
 * entry is found by binary search on it.
 *
 * Expiry: messages with a TTL (queue x-message-ttl or the expiration
 * property) also go into a min-heap of deadlines with one libevent timer
 * per queue, so an expired message is released when it expires, not when it
 * reaches the head. It is left in its ring as a tombstone (the message
 * itself is freed at once); rings are compacted when tombstones dominate.
 *
 * Consumers: grouped by priority (x-priority), groups ordered highest
 * first, round robin inside a group. A consumer found without room moves
 * to `idle` until its owner calls wr_queue_consumer_ready, so dispatch
 * costs O(1) per message however many consumers are blocked. With
 * x-single-active-consumer only the first consumer in line is in rotation.
 */
#ifndef WR_BROKER_QUEUE_H
#define WR_BROKER_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/msg.h"
#include "broker/qargs.h"
#include "broker/stats.h"
#include "core/heap.h"
#include "core/hmap.h"
#include "core/list.h"

struct wr_queue;
struct wr_stream;
struct wr_vhost;
struct event;

struct wr_qent {
    struct wr_msg *m; /* NULL: a tombstone (expired in place) */
    uint32_t seq;
    uint16_t deliveries; /* times handed to a consumer before (saturates) */
    uint8_t level;       /* priority level it lives in */
    uint8_t pad_;
};

struct wr_deque {
    struct wr_qent *a;
    uint32_t cap, head, n;
};

struct wr_consumer;

/* Consumers of one x-priority, in rotation. */
struct wr_cgroup {
    struct wr_list node;    /* q->groups */
    struct wr_list members; /* struct wr_consumer.qnode */
    int priority;
};

struct wr_consumer_ops {
    /* Room for one more message now (prefetch, socket not backed up)? */
    bool (*can_take)(struct wr_consumer *c);
    /* Take a message. The consumer now owns the entry's reference to e->m;
     * e->deliveries counts the deliveries before this one. */
    void (*deliver)(struct wr_consumer *c, struct wr_queue *q, const struct wr_qent *e);
    /* The queue is going away under the consumer (basic.cancel to client).
     * The consumer is already detached when this runs. */
    void (*cancelled)(struct wr_consumer *c);
};

struct wr_consumer {
    const struct wr_consumer_ops *ops;
    struct wr_queue *q;
    struct wr_list qnode;    /* in its group's members, or q->idle */
    struct wr_list linenode; /* single active consumer: q->line */
    struct wr_cgroup *group;
    bool active; /* in a group (not idle) */
    bool parked; /* single active consumer: waiting its turn */
    bool exclusive;
    int priority;
    uint64_t stream_next;               /* a stream's consumer: the next offset it gets */
    struct wr_stream_cursor *stream_cur; /* ... its reader of the journal, while behind */
    struct wr_stream_name *stream_name; /* x-stream-consumer-name, or NULL */
};

/* Reasons a message leaves a queue other than delivery. */
enum wr_dl_reason { WR_DL_REJECTED, WR_DL_EXPIRED, WR_DL_MAXLEN, WR_DL_DELIVERY_LIMIT };

struct wr_dlpend {
    struct wr_msg *m;
    enum wr_dl_reason why;
};

struct wr_queue {
    struct wr_hnode node; /* in vhost->queues, key = name */
    struct wr_vhost *vhost;
    char *name; /* NUL-terminated copy; the name may hold NUL: see wr_queue_name */
    bool durable, exclusive, auto_delete;
    bool deleted;
    bool had_consumer;
    void *owner; /* exclusive owner (a connection), opaque here */
    struct wr_list owner_node;
    struct wr_str args; /* raw declare arguments, owned */
    struct wr_qsettings s;
    struct wr_stream *stream; /* x-queue-type stream: its log (stream.h); NULL otherwise */
    uint64_t store_id;        /* durable queues: identity in the journal and definitions */

    struct wr_deque *levels; /* s.max_priority + 1 rings */
    uint64_t nonempty[4];    /* bit per level holding entries */
    uint32_t ready;          /* live messages */
    uint32_t tombstones;
    uint64_t ready_bytes; /* body bytes of live messages */
    uint32_t next_seq;
    uint32_t refs; /* holders that may outlive deletion (unacked deliveries) */

    struct wr_heap expiry; /* (deadline ms, level << 32 | seq) */
    struct event *ttl_ev;
    uint64_t ttl_armed_at; /* deadline the timer is set for, 0 = none */
    struct event *expires_ev;
    uint64_t last_used_ms;

    struct wr_list groups; /* struct wr_cgroup, highest priority first */
    struct wr_list idle;
    struct wr_list line; /* single active consumer: every consumer, in order */
    uint32_t nconsumers;
    struct wr_consumer *exclusive_consumer;

    /* At-least-once dead-lettering: dead letters no queue took yet. Each
     * holds a reference and stays journaled in this queue until a target
     * took it; retried once a second by dlx_ev. */
    struct wr_dlpend *dlpend;
    uint32_t ndlpend, dlpend_cap;
    struct event *dlx_ev;

    struct wr_list bound_to_me; /* struct wr_binding.dst_node */
    uint32_t route_mark;
    bool dispatching;

    /* Message counters (publish, deliver, get, redeliver, ack: stats.h),
     * the deliveries waiting for an ack, and every pop (deliveries and
     * gets, for flow control). */
    struct wr_stats st;
    uint32_t unacked;
    uint64_t unacked_bytes; /* body bytes of those deliveries */
    uint64_t stat_delivered;
    /* Flow control found this queue's consumers taking nothing while its
     * publishers were paused (all at their prefetch limit, say): pausing
     * publishers for it again waits for its next delivery. */
    bool flow_stalled;
    uint64_t flow_stall_delivered;
};

/* Whether pausing a publisher for this queue can help it drain. */
static inline bool wr_queue_flow_worth_pausing(const struct wr_queue *q)
{
    return q->nconsumers && !(q->flow_stalled && q->stat_delivered == q->flow_stall_delivered);
}

/* Deliveries carry x-delivery-count: quorum queues, and Warren's classic
 * queues with x-delivery-limit. */
static inline bool wr_queue_counts_deliveries(const struct wr_queue *q)
{
    return q->s.delivery_limit >= 0 || q->s.type == WR_QTYPE_QUORUM;
}

/* The name as declared, every byte of it (a name may hold NUL bytes, so
 * anything that compares, stores or sends it uses this, not strlen). */
static inline struct wr_str wr_queue_name(const struct wr_queue *q)
{
    return q->node.key;
}

/* Is m journaled for this queue? Persistent messages in durable queues,
 * and every message of a quorum queue or a stream (a transient message that
 * also went to a classic queue has a journal identity there, but no record
 * for it). */
bool wr_queue_journaled(const struct wr_queue *q, const struct wr_msg *m);

/* Parses the (validated) arguments. NULL on allocation failure. */
struct wr_queue *wr_queue_new(struct wr_vhost *vh, struct wr_str name, struct wr_str args);
/* Drop a reference; frees a deleted queue when none remain. */
void wr_queue_unref(struct wr_queue *q);
static inline void wr_queue_ref(struct wr_queue *q)
{
    q->refs++;
}

#define WR_QUEUE_REJECTED 1 /* wr_queue_push: full, x-overflow reject-publish */

/* Append a message (takes a new reference) and dispatch. Returns 0,
 * WR_QUEUE_REJECTED, or WR_ENOMEM. */
int wr_queue_push(struct wr_queue *q, struct wr_msg *m);

/* Hand ready messages to consumers that have room. */
void wr_queue_dispatch(struct wr_queue *q);

/* basic.get: pop the head into *e (the caller owns e->m's reference).
 * Returns false when the queue is empty. */
bool wr_queue_get(struct wr_queue *q, struct wr_qent *e);

/* Give back deliveries (the caller gives up its references): nack/reject
 * with requeue, channel close. Entries past x-delivery-limit are
 * dead-lettered instead. Order of the array does not matter. */
void wr_queue_requeue(struct wr_queue *q, struct wr_qent *e, uint32_t n);
void wr_queue_requeue_one(struct wr_queue *q, const struct wr_qent *e);

/* A consumer gave deliveries back (basic.nack or basic.reject with
 * requeue): a quorum queue puts them at its tail, in delivery order (as
 * RabbitMQ 3.10's do; a channel closing or basic.recover requeues near
 * the head, wr_queue_requeue), a classic queue near the head. */
void wr_queue_return(struct wr_queue *q, struct wr_qent *e, uint32_t n);

/* A delivery rejected without requeue: dead-letter it (reason rejected)
 * or drop it. Takes the caller's reference. */
void wr_queue_reject(struct wr_queue *q, const struct wr_qent *e);

/* A delivery was acknowledged (or delivered with no-ack): it is gone.
 * Takes the caller's reference. */
void wr_queue_settled(struct wr_queue *q, struct wr_msg *m);

/* Put a recovered message at the tail (startup only). */
int wr_queue_push_recovered(struct wr_queue *q, struct wr_msg *m, uint16_t deliveries);

/* Drop every ready message; returns how many. */
uint32_t wr_queue_purge(struct wr_queue *q);

static inline uint32_t wr_queue_ready(const struct wr_queue *q)
{
    return q->ready;
}

/* When the oldest message at the head of a level was published
 * (wr_now_ms's clock; a recovered message keeps its time of publication),
 * or 0 when the queue holds none. Looks at each level's head only. */
uint64_t wr_queue_head_published_ms(const struct wr_queue *q);

/* The queue was used (basic.get, redeclare): restart its x-expires clock. */
void wr_queue_touch(struct wr_queue *q);

/* Consumers. The consumer struct is the caller's; attach sets c->q. */
void wr_queue_consumer_add(struct wr_queue *q, struct wr_consumer *c);
/* Detach (basic.cancel, channel close). May delete an auto-delete queue:
 * returns true when it did. */
bool wr_queue_consumer_remove(struct wr_queue *q, struct wr_consumer *c);
/* The consumer may have room again: put it back in rotation and dispatch. */
void wr_queue_consumer_ready(struct wr_consumer *c);

/* Mark deleted, cancel consumers, drop messages, unlink the bindings.
 * Returns the number of ready messages it had. */
uint32_t wr_queue_delete(struct wr_queue *q);

/* For the management API: the message the queue would hand out next
 * (NULL when none is found), and in *oldest_ms the earliest publish time
 * (monotonic ms) among the messages at the head of each priority level (0
 * when none). Looks at a few entries per level, O(levels): a long run of
 * expired entries at a head can hide the messages behind it. */
const struct wr_msg *wr_queue_head(const struct wr_queue *q, uint64_t *oldest_ms);

/* The first `max` ready messages in the order the queue would hand them
 * out, copied into out (no references taken: valid until the loop turn
 * ends); nothing changes. Returns how many. */
uint32_t wr_queue_peek(const struct wr_queue *q, struct wr_qent *out, uint32_t max);

#endif
