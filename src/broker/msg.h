/*
 * msg.h - a published message, stored once and shared by reference.
 *
 * One allocation holds a 32-byte header, an optional extension (per-message
 * TTL and journal identity, only for messages that have either), the raw
 * content-header property bytes (as the publisher sent them, so a delivery
 * writes them back without re-encoding) and the body. The exchange name
 * and routing key are interned (struct wr_rkey): a million messages
 * published with the same key share one copy. Every queue entry and every
 * unacknowledged delivery holds a reference; the last wr_msg_unref frees
 * the block. Memory per queued 16-byte message is about 80 bytes with the
 * queue entry, which is what scenario g of the benchmark measures.
 */
#ifndef WR_BROKER_MSG_H
#define WR_BROKER_MSG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/hmap.h"
#include "wire/buf.h"

struct wr_msg;
struct wr_exchange;
struct wr_queue;
struct wr_vhost;

/* The messages of one broker: what they take (for the memory alarm), the
 * table of interned (exchange, routing key) pairs, and how a paged-out
 * body is read back (set by the store). The broker owns one; a message
 * reaches it through its interned key, so no message carries a pointer
 * of its own. */
struct wr_msgs {
    uint64_t bytes; /* every live message block, bodies in memory included */
    uint64_t freed; /* what `bytes` lost so far: the churn (broker.c's trims) */
    uint64_t count;
    struct wr_hmap rkeys;
    struct wr_rkey *rkey_last; /* one-entry cache in front of rkeys */
    /* Moves whenever an exchange or a queue of any vhost comes or goes
     * (vhost.c): the keys' routing caches (struct wr_rkey) hold until then. */
    uint64_t names_gen;
    /* Reads a paged-out body back into m; 0 or an error. NULL: none. */
    int (*load)(void *ctx, struct wr_msg *m);
    void *load_ctx;
    /* Takes a WR_MSG_REMOTE block whose last reference went, to free it
     * (wr_msg_free_loose) on a thread of its own: net/io.c hands them
     * back to the I/O threads in batches, so that the core does not pay
     * the allocator's free into another thread's arena. NULL: freed here. */
    void (*release)(void *ctx, struct wr_msg *m);
    void *release_ctx;
};

void wr_msgs_init(struct wr_msgs *p);
/* After every message of p is freed. */
void wr_msgs_fini(struct wr_msgs *p);

/* An interned (exchange, routing key) pair. */
struct wr_rkey {
    struct wr_hnode node;
    struct wr_msgs *pool;
    uint32_t refs;
    uint8_t xlen, rklen;
    /* What the pair names in vhost route_vh (vhost.c, wr_vhost_exchange_of
     * and wr_vhost_queue_of): a publish with a key seen before looks
     * nothing up. Valid while route_gen is the pool's names_gen. */
    bool route_q_known;
    const struct wr_vhost *route_vh;
    uint64_t route_gen;
    struct wr_exchange *route_x;
    struct wr_queue *route_q;
    char data[]; /* exchange then routing key */
};

/* Present when WR_MSG_EXT is set. Such a message keeps its body in a
 * separate allocation, so that once its journal record is written the body
 * can be dropped from memory (paged out) and read back when a consumer
 * needs it: a long durable queue holds its index in memory and its bodies
 * on disk. */
struct wr_msg_ext {
    int64_t ttl_ms; /* expiration property; -1 when none */
    uint64_t store_id;
    uint32_t store_seg;
    uint32_t body_off;      /* offset of the body in the segment file (journaled) */
    uint8_t *body;          /* NULL: paged out */
    struct wr_chunk *chunk; /* WR_MSG_SHARED: the block the body lies in */
};

#define WR_MSG_PERSISTENT 1u /* delivery_mode 2 */
#define WR_MSG_EXT 2u        /* has a struct wr_msg_ext */
#define WR_MSG_HELD 4u       /* journaled as held by an exchange (store_id is that record) */
#define WR_MSG_SHARED 8u     /* its body is in a shared chunk (wr_msg_new_shared) */
#define WR_MSG_REMOTE 16u    /* allocated on an I/O thread (wr_msg_thread_remote) */

/* A block that the bodies of several messages point into (a stream's
 * records read back from the journal): freed with the last of them and
 * its owner. Loop thread only. */
struct wr_chunk {
    uint32_t refs;
    size_t cap;
    uint8_t data[];
};

static inline struct wr_chunk *wr_chunk_new(size_t cap)
{
    struct wr_chunk *c = malloc(sizeof(*c) + cap);
    if (c) {
        c->refs = 1;
        c->cap = cap;
    }
    return c;
}

static inline void wr_chunk_unref(struct wr_chunk *c)
{
    if (c && !--c->refs)
        free(c);
}

struct wr_msg {
    uint32_t refs;
    uint32_t props_len;
    uint32_t body_len;
    uint8_t priority;
    uint8_t flags;
    uint16_t pins;         /* output buffers that reference the body (deliver.c) */
    uint64_t published_ms; /* monotonic ms at publish */
    struct wr_rkey *rkey;
    char data[]; /* [ext] props body */
};

/* A message whose body is `body_len` bytes at `body` inside chunk `c`
 * (which it holds a reference to until it is freed): no copy of the body.
 * The properties are copied. NULL on allocation failure. */
struct wr_msg *wr_msg_new_shared(struct wr_msgs *pool, struct wr_str exchange,
                                 struct wr_str routing_key, const void *props, uint32_t props_len,
                                 const uint8_t *body, uint32_t body_len, struct wr_chunk *c);

/* A message block that belongs to no pool yet, for a thread other than
 * the core's (an I/O thread assembling a publish, net/asm.h): the
 * properties copied, room for body_len bytes of body, no exchange or
 * routing key. Only the core may make it a pool's (wr_msg_adopt);
 * until then wr_msg_free_loose frees it, on any thread. NULL on
 * allocation failure. */
struct wr_msg *wr_msg_new_loose(const void *props, uint32_t props_len, uint64_t body_len,
                                unsigned flags);
void wr_msg_free_loose(struct wr_msg *m);
/* The calling thread's blocks are marked WR_MSG_REMOTE from now on (an
 * I/O thread, at its start). */
void wr_msg_thread_remote(void);
/* Core: a loose message becomes pool's, with its exchange and routing key
 * interned. 0, or WR_ENOMEM (m is still loose). */
int wr_msg_adopt(struct wr_msgs *pool, struct wr_msg *m, struct wr_str exchange,
                 struct wr_str routing_key);
/* Allocate a message for a body of body_len bytes (filled by the caller),
 * copying the properties and interning exchange and routing key. `flags`
 * are WR_MSG_*; pass WR_MSG_EXT when the message needs a TTL or will be
 * journaled. NULL on allocation failure or when the sizes cannot be held.
 * refs starts at 1. */
struct wr_msg *wr_msg_new(struct wr_msgs *pool, struct wr_str exchange, struct wr_str routing_key,
                          const void *props, uint32_t props_len, uint64_t body_len, unsigned flags);

static inline struct wr_str wr_msg_exchange(const struct wr_msg *m)
{
    return (struct wr_str){m->rkey->data, m->rkey->xlen};
}

static inline struct wr_str wr_msg_routing_key(const struct wr_msg *m)
{
    return (struct wr_str){m->rkey->data + m->rkey->xlen, m->rkey->rklen};
}

static inline struct wr_msg_ext *wr_msg_ext(const struct wr_msg *m)
{
    return (m->flags & WR_MSG_EXT) ? (struct wr_msg_ext *)(void *)(uintptr_t)m->data : NULL;
}

static inline const uint8_t *wr_msg_props(const struct wr_msg *m)
{
    return (const uint8_t *)m->data + ((m->flags & WR_MSG_EXT) ? sizeof(struct wr_msg_ext) : 0);
}

/* The body, read back from the journal if it was paged out; NULL only if
 * that read failed (an I/O error, logged). */
static inline uint8_t *wr_msg_body(struct wr_msg *m)
{
    struct wr_msg_ext *e = wr_msg_ext(m);
    if (!e)
        return (uint8_t *)wr_msg_props(m) + m->props_len;
    if (!e->body) {
        struct wr_msgs *p = m->rkey->pool;
        if (!p->load || p->load(p->load_ctx, m) < 0)
            return NULL;
    }
    return e->body;
}

static inline bool wr_msg_body_resident(const struct wr_msg *m)
{
    const struct wr_msg_ext *e = wr_msg_ext(m);
    return !e || e->body;
}

/* Drop a journaled body from memory (it can be read back); not while an
 * output buffer references it (pins). */
void wr_msg_page_out(struct wr_msg *m);

static inline bool wr_msg_persistent(const struct wr_msg *m)
{
    return m->flags & WR_MSG_PERSISTENT;
}

static inline int64_t wr_msg_ttl(const struct wr_msg *m)
{
    const struct wr_msg_ext *e = wr_msg_ext(m);
    return e ? e->ttl_ms : -1;
}

static inline uint64_t wr_msg_store_id(const struct wr_msg *m)
{
    const struct wr_msg_ext *e = wr_msg_ext(m);
    return e ? e->store_id : 0;
}

static inline uint32_t wr_msg_store_seg(const struct wr_msg *m)
{
    const struct wr_msg_ext *e = wr_msg_ext(m);
    return e ? e->store_seg : 0;
}

/* The headers table body (empty when the message has none). Walks the
 * property bytes: not for a per-delivery path. */
struct wr_str wr_msg_headers(const struct wr_msg *m);

static inline struct wr_msg *wr_msg_ref(struct wr_msg *m)
{
    m->refs++;
    return m;
}

/* Bytes this message holds in memory. */
static inline uint64_t wr_msg_mem(const struct wr_msg *m)
{
    return sizeof(*m) + ((m->flags & WR_MSG_EXT) ? sizeof(struct wr_msg_ext) : 0) + m->props_len +
           (wr_msg_body_resident(m) ? m->body_len : 0);
}

void wr_msg_free_(struct wr_msg *m);

static inline void wr_msg_unref(struct wr_msg *m)
{
    if (m && --m->refs == 0)
        wr_msg_free_(m);
}

struct wr_basic_props;

/* The expiration property as RabbitMQ reads it: a decimal integer of
 * milliseconds (an optional '+', leading zeros allowed; no '-', space,
 * fraction or exponent). False when it is not one; publish refuses such a
 * message and recovery keeps the message without a TTL. */
bool wr_msg_parse_expiration(struct wr_str s, int64_t *ms);

/* A new message like m with other properties (p may point into m), same
 * exchange, routing key and body: for the rare rewrites (direct reply-to,
 * x-delivery-count). NULL on allocation failure. */
struct wr_msg *wr_msg_rewrite(const struct wr_msg *m, const struct wr_basic_props *p);

/* A copy of m (no extension) with one, so that it can be journaled: a
 * transient message routed to a quorum queue. NULL on failure. */
struct wr_msg *wr_msg_with_ext(const struct wr_msg *m);

/* Encode `h` as the headers property of `p` (flag set). Returns the buffer
 * p->headers now points into (the caller frees it after using p), or NULL
 * on failure. */
struct wr_table;
uint8_t *wr_props_set_headers(struct wr_basic_props *p, const struct wr_table *h);

/* The basic properties that are strings, by the names RabbitMQ's HTTP API
 * and plugins use: their flag and where they sit in struct wr_basic_props
 * (a struct wr_str at that offset). */
struct wr_prop_string {
    const char *name;
    uint16_t flag;
    size_t off;
};
#define WR_PROP_STRINGS 10
extern const struct wr_prop_string wr_prop_strings[WR_PROP_STRINGS];

/* A copy of m with the headers entry `key` set to *val (an existing entry
 * of that name is replaced in place), or removed when val is NULL. NULL
 * on failure. */
struct wr_fv;
struct wr_msg *wr_msg_with_header(const struct wr_msg *m, const char *key, const struct wr_fv *val);

/* A copy of m whose headers table has `key` set to the long `val` (an
 * existing entry of that name is replaced). NULL on failure. */
struct wr_msg *wr_msg_with_int_header(const struct wr_msg *m, const char *key, int64_t val);
/* The user_id property, if the message has one (*out set, true). Costs a
 * look at the flags unless it is there. */
bool wr_msg_user_id(const struct wr_msg *m, struct wr_str *out);
/* The message_id property, when set (points into m's properties). */
bool wr_msg_message_id(const struct wr_msg *m, struct wr_str *out);

/* A copy of m without the header `key` (every entry of that name; the
 * headers property stays, possibly empty, as RabbitMQ leaves it). NULL on
 * failure. */
struct wr_msg *wr_msg_without_header(const struct wr_msg *m, const char *key);

#endif
