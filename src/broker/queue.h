/*
 * queue.h - queues: a FIFO of message references, its consumers, and the
 * dispatch that hands messages to consumers.
 *
 * The queue knows nothing of channels or sockets: a consumer is a struct
 * wr_consumer embedded in whatever implements it (net/chan.c), reached
 * through a small ops table. Consumers with room sit on the `active` list
 * and are served round robin (take the head, deliver, move it to the tail);
 * a consumer found without room moves to `idle` until its owner calls
 * wr_queue_consumer_ready. Each consumer is looked at once per change of
 * state, so dispatch costs O(1) per message however many consumers are
 * blocked.
 *
 * Entries carry a per-queue sequence number: requeued messages go back
 * near the head in their original order, as RabbitMQ puts them back.
 */
#ifndef WR_BROKER_QUEUE_H
#define WR_BROKER_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/msg.h"
#include "core/hmap.h"
#include "core/list.h"

struct wr_queue;
struct wr_vhost;

struct wr_qent {
    struct wr_msg *m;
    uint64_t seq;
    uint32_t deliveries; /* times handed to a consumer before */
};

/* A ring buffer of entries, power-of-two capacity. */
struct wr_deque {
    struct wr_qent *a;
    uint32_t cap, head, n;
};

struct wr_consumer;

struct wr_consumer_ops {
    /* Room for one more message now (prefetch, socket not backed up)? */
    bool (*can_take)(struct wr_consumer *c);
    /* Take a message. The consumer now owns the entry's reference to e->m;
     * e->deliveries already counts this delivery's predecessors. */
    void (*deliver)(struct wr_consumer *c, struct wr_queue *q, const struct wr_qent *e);
    /* The queue is going away under the consumer (basic.cancel to client).
     * The consumer is already detached when this runs. */
    void (*cancelled)(struct wr_consumer *c);
};

struct wr_consumer {
    const struct wr_consumer_ops *ops;
    struct wr_queue *q;
    struct wr_list qnode; /* in q->active or q->idle */
    bool active;
    bool exclusive;
    int priority;
};

struct wr_queue {
    struct wr_hnode node; /* in vhost->queues, key = name */
    struct wr_vhost *vhost;
    char *name;
    bool durable, exclusive, auto_delete;
    bool deleted;
    bool had_consumer;  /* auto-delete only after a first consumer left */
    void *owner;        /* exclusive owner (a connection), opaque here */
    struct wr_list owner_node;
    struct wr_str args; /* raw declare arguments, owned */

    struct wr_deque msgs;
    uint64_t ready_bytes; /* body bytes of ready messages */
    uint64_t next_seq;
    uint32_t refs;        /* holders that may outlive deletion (unacked deliveries) */

    struct wr_list active, idle;
    uint32_t nconsumers;
    struct wr_consumer *exclusive_consumer;

    struct wr_list bound_to_me; /* struct wr_binding.dst_node */
    uint32_t route_mark;
    bool dispatching;

    uint64_t stat_published, stat_delivered, stat_acked;
};

struct wr_queue *wr_queue_new(struct wr_vhost *vh, struct wr_str name, struct wr_str args);
/* Drop a reference; frees a deleted queue when none remain. */
void wr_queue_unref(struct wr_queue *q);
static inline void wr_queue_ref(struct wr_queue *q)
{
    q->refs++;
}

/* Append a message (takes a new reference) and dispatch. */
int wr_queue_push(struct wr_queue *q, struct wr_msg *m);

/* Hand ready messages to consumers that have room. */
void wr_queue_dispatch(struct wr_queue *q);

/* basic.get: pop the head into *e (the caller owns e->m's reference).
 * Returns false when the queue is empty. */
bool wr_queue_get(struct wr_queue *q, struct wr_qent *e);

/* Put previously delivered entries back (the caller gives up its
 * references). Order of the array does not matter. Dispatches. */
void wr_queue_requeue(struct wr_queue *q, struct wr_qent *e, uint32_t n);
void wr_queue_requeue_one(struct wr_queue *q, const struct wr_qent *e);

/* Drop every ready message; returns how many. */
uint32_t wr_queue_purge(struct wr_queue *q);

static inline uint32_t wr_queue_ready(const struct wr_queue *q)
{
    return q->msgs.n;
}

/* Consumers. The consumer struct is the caller's; attach sets c->q. */
void wr_queue_consumer_add(struct wr_queue *q, struct wr_consumer *c);
/* Detach (basic.cancel, channel close). May delete an auto-delete queue:
 * returns true when it did. */
bool wr_queue_consumer_remove(struct wr_queue *q, struct wr_consumer *c);
/* The consumer may have room again: put it back in rotation and dispatch. */
void wr_queue_consumer_ready(struct wr_consumer *c);

/* Mark deleted, cancel consumers, drop messages, unlink from the vhost and
 * the bindings. Returns the number of ready messages it had. */
uint32_t wr_queue_delete(struct wr_queue *q);

#endif
