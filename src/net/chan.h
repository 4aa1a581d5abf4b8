/*
 * chan.h - an AMQP channel: everything after the handshake happens here.
 * Content assembly (publish -> header -> bodies), routing a finished
 * message, consumers and their prefetch, the unacked ring, acks, nacks,
 * rejects and recover, publisher confirms, transactions, channel.flow and
 * channel-level errors.
 */
#ifndef WR_NET_CHAN_H
#define WR_NET_CHAN_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/stats.h"
#include "wire/buf.h"

/* Direct reply-to's pseudo-queue: a publish naming it in reply_to gets the
 * channel's own reply queue (chan.c; the I/O thread leaves such a publish
 * to the core: asm.c). */
#define WR_REPLY_TO "amq.rabbitmq.reply-to"

struct wr_conn;
struct wr_chan;
struct wr_method;
struct wr_frame;
struct evbuffer;
struct wr_queue;
struct wr_list;

struct wr_chan *wr_chan_new(struct wr_conn *c, uint16_t id);
/* Release everything: cancel consumers, requeue unacked, drop a half
 * assembled message. */
void wr_chan_free(struct wr_chan *ch);

/* A method frame for this channel (already decoded). */
void wr_chan_method(struct wr_chan *ch, const struct wr_method *m);
/* Content frames. The header's payload is contiguous; a body frame is
 * still in `in` and the channel takes it (copying it straight into the
 * message) or drops it. */
void wr_chan_header(struct wr_chan *ch, const struct wr_frame *f);
void wr_chan_body(struct wr_chan *ch, struct evbuffer *in, const struct wr_frame *f);
/* A whole message the I/O thread assembled (net/asm.h), right after its
 * basic.publish was handled; consumes m (loose: msg.h). */
struct wr_msg;
void wr_chan_assembled(struct wr_chan *ch, struct wr_msg *m);

/* True while the channel waits for channel.close-ok (frames are dropped). */
bool wr_chan_closing(const struct wr_chan *ch);
/* Whether a content frame is expected now (for 505 on stray content). */
bool wr_chan_expects_content(const struct wr_chan *ch);

/* The connection's output drained: give consumers another turn. */
void wr_chan_output_ready(struct wr_chan *ch);
/* End of a read batch: flush coalesced confirms. */
void wr_chan_flush(struct wr_chan *ch);

/* consumer_timeout, from the server's tick, for each channel on its
 * unacked_chans list (a channel links itself there when it hands out a
 * delivery to acknowledge, and leaves when it has none): when a delivery
 * has waited longer than its timeout (x-consumer-timeout of its queue, else
 * consumer_timeout) at `now`, the channel is closed with 406. `recheck`:
 * consumer_timeout changed (SIGHUP), forget what was known of the
 * deadlines. Costs a comparison unless a deadline may have passed. */
void wr_chan_ack_tick(struct wr_chan *ch, uint64_t now, bool recheck);
struct wr_chan *wr_chan_of_unacked_node(struct wr_list *n);

/* The journal is durable up to `pos`: send the confirms that waited. */
void wr_chan_store_synced(struct wr_chan *ch, uint64_t pos, bool failed);
struct wr_list;
struct wr_chan *wr_chan_of_wait_node(struct wr_list *n);

/* ---- for the management API (read-only views, no allocation) ---- */

struct wr_chan_info {
    uint16_t number;
    bool closing, flow_active, confirm, transactional;
    uint32_t consumers;
    uint32_t prefetch_count;        /* basic.qos global=false: for new consumers */
    uint32_t global_prefetch_count; /* basic.qos global=true */
    uint32_t unacked;               /* deliveries waiting for an ack */
    uint32_t unconfirmed;           /* publishes not yet confirmed */
    uint32_t uncommitted_messages, uncommitted_acks;
    const struct wr_stats *stats;
};
void wr_chan_info(const struct wr_chan *ch, struct wr_chan_info *out);

struct wr_consumer_info {
    struct wr_str tag;
    struct wr_queue *q;
    bool ack_required, exclusive, active;
    int priority;
    uint32_t prefetch_count, unacked;
    const struct wr_counter *delivered, *acked; /* with their rates */
};
typedef void (*wr_chan_consumer_fn)(void *ctx, const struct wr_consumer_info *ci);
/* Visit the channel's consumers (the channel must not change meanwhile). */
void wr_chan_consumers(struct wr_chan *ch, wr_chan_consumer_fn fn, void *ctx);

/* Rate sample of the channel's counters and its consumers' (stats.h). */
void wr_chan_sample(struct wr_chan *ch, double dt_s);

#endif
