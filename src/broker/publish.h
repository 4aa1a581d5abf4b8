/*
 * publish.h - the one way a message enters queues.
 *
 * A channel's basic.publish, dead-lettering, and what comes later (the
 * HTTP API's publish, plugins) all go through wr_vhost_publish: route from
 * the exchange by the routing key and the extra keys (CC, BCC), drop the
 * targets the caller does not want (dead-letter cycles), journal the
 * message once for its durable targets (before any queue can deliver, drop
 * or ack it), then push a reference into every target. What cannot be made
 * durable is queued nowhere. The caller settles the publisher's side
 * (confirms, returns, flow control) from the result.
 *
 * wr_vhost_publish_by_name is the entry for a client's publish: it also
 * finds the exchange with RabbitMQ's refusals (404 missing, 403 internal)
 * and takes the extra keys from the CC and BCC headers (removing BCC).
 */
#ifndef WR_BROKER_PUBLISH_H
#define WR_BROKER_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/persist.h"
#include "broker/vhost.h"
#include "core/errbuf.h"

struct wr_msg;

/* What a publish did; the caller keeps one and reuses it, so its arrays
 * are allocated once, not per message. Free with wr_publish_result_free. */
struct wr_publish_result {
    struct wr_route_result route; /* the queues that got the message */
    struct wr_str *keys;          /* CC/BCC keys of the last publish (scratch) */
    uint32_t keys_cap;
    uint64_t journal_pos; /* confirm after this journal position (0: at once) */
    bool journal_failed;  /* could not be made durable: queued nowhere, nack */
    bool rejected;        /* a queue refused it (x-overflow reject-publish): nack */
    /* A duplicate (dedup.h) for the exchange or for some target queue:
     * dropped there, still confirmed. When nothing else took it, route.n is
     * 0 and route.taken is set (it is not unroutable: no basic.return). */
    bool deduplicated;
    /* Keys of the last publish to remember once it is in (scratch). */
    struct wr_dedup **dd;
    struct wr_dedup_stage *dd_st;
    uint32_t dd_cap;
};

void wr_publish_result_free(struct wr_publish_result *r);

/* Whether a target gets the message (NULL: all do). */
typedef bool (*wr_publish_keep_fn)(void *ctx, struct wr_queue *q);

struct wr_publish_opts {
    const struct wr_str *keys; /* more routing keys */
    uint32_t nkeys;
    wr_publish_keep_fn keep;
    void *keep_ctx;
    /* The message's headers when the caller found them already (a
     * publish reads the properties once); else looked up. */
    bool headers_known;
    struct wr_str headers;
};

/* Publish m through x. Returns 0 (see res), or WR_ENOMEM when routing ran
 * out of memory (queued nowhere). Queues take their own references. */
int wr_vhost_publish(struct wr_vhost *vh, struct wr_exchange *x, struct wr_msg *m,
                     const struct wr_publish_opts *o, struct wr_publish_result *res);

/* A client's publish to the exchange named in m, with RabbitMQ's checks
 * in RabbitMQ's order: write permission on the exchange (403), the
 * exchange exists (404) and is not internal (403), the topic permission on
 * the routing key (403), the user_id property (406), the CC/BCC headers
 * (406 when not arrays). *mp may be replaced (a copy without BCC; the
 * caller's reference moves to it). Returns 0, or the negative reply code
 * with err filled (541: out of memory). */
struct wr_principal;
int wr_vhost_publish_by_name(struct wr_vhost *vh, struct wr_principal *who, struct wr_msg **mp,
                             struct wr_publish_result *res, struct wr_errbuf *err);

#endif
