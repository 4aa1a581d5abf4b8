/*
 * msg.h - a published message, stored once and shared by reference.
 *
 * One allocation holds the header, the exchange name, the routing key, the
 * raw content-header property bytes (as the publisher sent them, so a
 * delivery writes them back without re-encoding) and the body. Every queue
 * entry and every unacknowledged delivery holds a reference; the last
 * wr_msg_unref frees the block. The fields the broker acts on (priority,
 * persistence, per-message TTL, the headers table) are parsed once, at
 * publish, and kept here.
 */
#ifndef WR_BROKER_MSG_H
#define WR_BROKER_MSG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "wire/buf.h"

struct wr_msg {
    uint32_t refs;
    uint32_t props_len;
    uint64_t body_len;
    uint64_t body_have;   /* bytes received so far while assembling */
    int64_t ttl_ms;       /* per-message expiration property, -1 when none */
    uint64_t published_ms; /* monotonic ms at publish */
    uint8_t exchange_len;
    uint8_t rk_len;
    uint8_t priority;
    bool persistent;
    uint32_t headers_off, headers_len; /* headers table body within props, or 0,0 */
    uint32_t store_seg;   /* journal segment of its publish record */
    uint64_t store_id;    /* journal message id; 0: not journaled */
    char data[];          /* exchange, routing key, props, body */
};

/* Allocate a message for a body of body_len bytes, copying exchange,
 * routing key and raw props. Returns NULL on allocation failure (or when
 * body_len cannot be held). refs starts at 1. */
struct wr_msg *wr_msg_new(struct wr_str exchange, struct wr_str routing_key, const void *props,
                          uint32_t props_len, uint64_t body_len);

static inline struct wr_str wr_msg_exchange(const struct wr_msg *m)
{
    return (struct wr_str){m->data, m->exchange_len};
}

static inline struct wr_str wr_msg_routing_key(const struct wr_msg *m)
{
    return (struct wr_str){m->data + m->exchange_len, m->rk_len};
}

static inline const uint8_t *wr_msg_props(const struct wr_msg *m)
{
    return (const uint8_t *)m->data + m->exchange_len + m->rk_len;
}

static inline uint8_t *wr_msg_body(struct wr_msg *m)
{
    return (uint8_t *)m->data + m->exchange_len + m->rk_len + m->props_len;
}

static inline struct wr_str wr_msg_headers(const struct wr_msg *m)
{
    return (struct wr_str){(const char *)wr_msg_props(m) + m->headers_off, m->headers_len};
}

static inline struct wr_msg *wr_msg_ref(struct wr_msg *m)
{
    m->refs++;
    return m;
}

/* Bytes this message costs in memory (for accounting and x-max-length-bytes
 * uses the body only; this is the whole block). */
static inline uint64_t wr_msg_mem(const struct wr_msg *m)
{
    return sizeof(*m) + m->exchange_len + m->rk_len + m->props_len + m->body_len;
}

void wr_msg_free_(struct wr_msg *m);

static inline void wr_msg_unref(struct wr_msg *m)
{
    if (m && --m->refs == 0)
        wr_msg_free_(m);
}

/* Bytes of messages alive (all blocks), for the memory alarm. */
extern uint64_t wr_msg_bytes;
extern uint64_t wr_msg_count;


struct wr_basic_props;

/* A new message like m with other properties (p may point into m), same
 * exchange, routing key and body: for the rare rewrites (direct reply-to,
 * x-delivery-count). NULL on allocation failure. */
struct wr_msg *wr_msg_rewrite(const struct wr_msg *m, const struct wr_basic_props *p);

/* Recompute headers_off/len from the property bytes. */
void wr_msg_index_props(struct wr_msg *m);

/* A copy of m whose headers table has `key` set to the long `val` (an
 * existing entry of that name is replaced). NULL on failure. */
struct wr_msg *wr_msg_with_int_header(const struct wr_msg *m, const char *key, int64_t val);

#endif
