/*
 * stats.h - message counters of queues, channels and vhosts, and their
 * rates.
 *
 * What the management API and /metrics report (RabbitMQ's message_stats
 * and its rabbitmq_global_* counters) costs one increment per message and
 * per object that counts it: a channel counts what its client did, a queue
 * what happened to its messages, a vhost the sum over its channels (kept
 * after they close). Nothing here looks anything up or allocates.
 *
 * Rates are computed away from the message path: a sampler (mgmt/) calls
 * wr_stats_sample on every object every few seconds, and each rate is the
 * change since the previous sample over the time between them, as
 * RabbitMQ's collect_statistics_interval (5 s) does.
 */
#ifndef WR_BROKER_STATS_H
#define WR_BROKER_STATS_H

#include <stdint.h>

enum wr_stat {
    WR_ST_PUBLISH,           /* messages published (channel, vhost); pushed (queue) */
    WR_ST_CONFIRM,           /* publishes confirmed (basic.ack to the publisher) */
    WR_ST_RETURN_UNROUTABLE, /* mandatory publishes returned */
    WR_ST_DROP_UNROUTABLE,   /* publishes routed nowhere and dropped */
    WR_ST_DELIVER,           /* basic.deliver, manual ack */
    WR_ST_DELIVER_NO_ACK,    /* basic.deliver, no-ack */
    WR_ST_GET,               /* basic.get-ok, manual ack */
    WR_ST_GET_NO_ACK,        /* basic.get-ok, no-ack */
    WR_ST_GET_EMPTY,         /* basic.get-empty */
    WR_ST_REDELIVER,         /* deliveries and gets with redelivered set */
    WR_ST_ACK,               /* deliveries acknowledged */
    WR_ST_DL_REJECTED,       /* dead-lettered: rejected or nacked without requeue */
    WR_ST_DL_EXPIRED,        /* dead-lettered: TTL */
    WR_ST_DL_MAXLEN,         /* dead-lettered: x-max-length(-bytes) */
    WR_ST_DL_DELIVERY_LIMIT, /* dead-lettered: x-delivery-limit */
    WR_ST_PUBLISH_CONFIRM,   /* published on a channel in confirm mode (channel, vhost) */
    WR_ST_N
};

struct wr_stats {
    uint64_t n[WR_ST_N];
    uint64_t prev[WR_ST_N]; /* at the previous sample */
    float rate[WR_ST_N];    /* per second between the last two samples */
};

static inline void wr_stat_inc(struct wr_stats *s, enum wr_stat k)
{
    s->n[k]++;
}

/* A rate sample, `dt_s` seconds after the previous one. */
static inline void wr_stats_sample(struct wr_stats *s, double dt_s)
{
    for (int k = 0; k < WR_ST_N; k++) {
        s->rate[k] = dt_s > 0 ? (float)((double)(s->n[k] - s->prev[k]) / dt_s) : 0.0f;
        s->prev[k] = s->n[k];
    }
}

/* One counter with its rate, for what is not a struct wr_stats (a
 * consumer's deliveries and acks). */
struct wr_counter {
    uint64_t n, prev;
    float rate;
};

static inline void wr_counter_sample(struct wr_counter *c, double dt_s)
{
    c->rate = dt_s > 0 ? (float)((double)(c->n - c->prev) / dt_s) : 0.0f;
    c->prev = c->n;
}

/* RabbitMQ's name of a counter in message_stats ("publish", "ack", ...). */
const char *wr_stat_name(enum wr_stat k);

/* Churn since the process started (RabbitMQ's rabbitmq_*_opened_total and
 * the like, and /api/overview's churn_rates): one increment per open,
 * close, declare or delete, never per message. The broker holds one,
 * outside any vhost, so that deleting one does not take its history
 * away. */
struct wr_churn {
    uint64_t conns_opened, conns_closed; /* accepted sockets, freed */
    uint64_t chans_opened, chans_closed;
    uint64_t queues_declared; /* queue.declare (not passive) that succeeded */
    /* recovered durable queues count as created */
    uint64_t queues_created, queues_deleted;
    uint64_t consumer_timeouts; /* channels closed by consumer_timeout (net/chan.c) */
};

#endif
