/*
 * vhost.h - a virtual host: its exchanges and queues by name, and the
 * AMQP-level operations on them with RabbitMQ's checks (passive declares,
 * equivalence, reserved "amq." names, if-unused/if-empty).
 *
 * Functions that can be refused return a negative reply code and fill a
 * struct wr_errbuf with the text the client will read.
 */
#ifndef WR_BROKER_VHOST_H
#define WR_BROKER_VHOST_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/exchange.h"
#include "broker/persist.h"
#include "broker/queue.h"
#include "broker/stats.h"
#include "core/errbuf.h"
#include "core/hmap.h"

struct event_base;

/* The loop's event priorities (wr_broker_new sets them up): every event
 * has libevent's default (n / 2: 1), but a stream's catch-up reading goes
 * on at IDLE, in a loop turn with nothing else to do. */
#define WR_LOOP_PRIORITIES 3
#define WR_LOOP_PRIO_IDLE 2

struct wr_replay_pace;

struct wr_vhost {
    struct wr_hnode node; /* in the broker's vhost table */
    char *name;
    struct wr_hmap exchanges;
    struct wr_hmap queues;
    struct wr_exchange *default_exchange;
    uint32_t route_gen;
    /* Routing's worklist of exchanges (exchange.c), reused message after
     * message; never longer than the number of exchanges. */
    struct wr_exchange **route_work;
    uint32_t route_n, route_cap;
    /* Auto-delete exchanges waiting to be deleted (exchange.c). */
    struct wr_exchange *doomed;
    bool reaping;
    struct event_base *base;          /* for queue timers (TTL, x-expires); may be NULL in tests */
    const struct wr_persist *persist; /* NULL: memory only */
    /* The broker's (set by wr_broker_vhost_add; NULL in a vhost made on
     * its own, which holds no messages): */
    struct wr_msgs *msgs;
    struct wr_churn *churn;
    struct wr_list *stream_wait;        /* the broker's (stream.h); NULL: streams commit at once */
    const uint64_t *turns;              /* the broker's loop turn count; NULL: no loop */
    const uint64_t *publish_turn;       /* the last turn anything was published in (with turns) */
    struct wr_replay_pace *replay_pace; /* the broker's (stream.h); NULL: replays never pause */
    uint64_t last_queue_id;             /* durable queue identities given so far */
    /* What its channels counted (stats.h), kept after they close. */
    struct wr_stats st;
    /* Messages a queue without a dead-letter exchange dropped where one
     * would have dead-lettered them, by enum wr_dl_reason (RabbitMQ
     * counts them as dead-lettered with strategy "disabled"). */
    uint64_t dl_dropped[4];
};

/* Tell the store a durable definition changed. */
void wr_vhost_defs_changed(struct wr_vhost *vh);

/* A persistent message is about to be pushed into `qs`: journal it once
 * for the durable ones among them. Returns the position to wait for before
 * confirming (0: nothing to wait for), or (uint64_t)-1 when it could not be
 * journaled. */
uint64_t wr_vhost_journal(struct wr_vhost *vh, struct wr_msg *m, struct wr_queue *const *qs,
                          uint32_t n);
#define WR_JOURNAL_FAILED UINT64_MAX

struct wr_vhost *wr_vhost_new(const char *name, struct event_base *base);
void wr_vhost_free(struct wr_vhost *vh);

struct wr_exchange *wr_vhost_exchange(struct wr_vhost *vh, struct wr_str name);
struct wr_queue *wr_vhost_queue(struct wr_vhost *vh, struct wr_str name);
/* The exchange named by m's exchange, and the queue named by m's routing
 * key, remembered on m's interned key until an exchange or a queue of any
 * vhost comes or goes: the lookups of a publish whose key was seen before. */
struct wr_exchange *wr_vhost_exchange_of(struct wr_vhost *vh, const struct wr_msg *m);
struct wr_queue *wr_vhost_queue_of(struct wr_vhost *vh, const struct wr_msg *m);

struct wr_exchange_decl {
    struct wr_str name, type, args;
    bool passive, durable, auto_delete, internal;
};

int wr_vhost_exchange_declare(struct wr_vhost *vh, const struct wr_exchange_decl *d,
                              struct wr_exchange **out, struct wr_errbuf *err);
int wr_vhost_exchange_delete(struct wr_vhost *vh, struct wr_str name, bool if_unused,
                             struct wr_errbuf *err);
/* Unconditional delete of an exchange in the vhost (auto-delete). */
void wr_vhost_exchange_remove(struct wr_vhost *vh, struct wr_exchange *x);

struct wr_queue_decl {
    struct wr_str name, args;
    bool passive, durable, exclusive, auto_delete;
    void *owner;       /* the declaring connection */
    bool internal;     /* the broker's own (direct reply-to): "amq." allowed */
    bool server_named; /* the client asked for a name (declared with "") */
};

/* On success *out is the queue (new or existing); *created says which. */
int wr_vhost_queue_declare(struct wr_vhost *vh, const struct wr_queue_decl *d,
                           struct wr_queue **out, bool *created, struct wr_errbuf *err);
/* Find a queue for an operation by `owner`: 404 when missing, 405 when it
 * is another connection's exclusive queue. */
int wr_vhost_queue_use(struct wr_vhost *vh, struct wr_str name, void *owner, struct wr_queue **out,
                       struct wr_errbuf *err);
int wr_vhost_queue_delete_checked(struct wr_vhost *vh, struct wr_str name, void *owner,
                                  bool if_unused, bool if_empty, uint32_t *count,
                                  struct wr_errbuf *err);
/* Unconditional delete (auto-delete, exclusive owner gone). */
void wr_vhost_queue_delete(struct wr_vhost *vh, struct wr_queue *q);

/* queue.bind/unbind and exchange.bind/unbind. `dest_is_exchange` selects
 * what `dest` names. */
int wr_vhost_bind(struct wr_vhost *vh, struct wr_str src, struct wr_str dest, bool dest_is_exchange,
                  struct wr_str key, struct wr_str args, void *owner, struct wr_errbuf *err);
int wr_vhost_unbind(struct wr_vhost *vh, struct wr_str src, struct wr_str dest,
                    bool dest_is_exchange, struct wr_str key, struct wr_str args, void *owner,
                    struct wr_errbuf *err);

/* Routing result: distinct queues. */
struct wr_route_result {
    struct wr_queue **q;
    uint32_t n, cap;
    /* An exchange type kept the message to route it later (a delayed
     * exchange): not unroutable, though no queue has it yet. */
    bool taken;
    /* What keeping it durably took: confirm after held_pos; held_failed
     * (it could not be made durable) makes the publish a nack. */
    uint64_t held_pos;
    bool held_failed;
};

/* Route a message from exchange x (alternate exchanges and
 * exchange-to-exchange bindings followed). Returns 0 or WR_ENOMEM. */
int wr_vhost_route(struct wr_vhost *vh, struct wr_exchange *x, const struct wr_route_msg *m,
                   struct wr_route_result *res);

/* Remove one binding everywhere (used when a queue or exchange goes). */
void wr_binding_remove(struct wr_binding *b);

#endif
