/*
 * deliver.c - content to a client; see deliver.h.
 *
 * Small messages are written with one reservation in the output buffer
 * (method, header and body frames back to back, no intermediate copies);
 * large bodies are added by reference to the stored message, which stays
 * alive until libevent has written it (on the connection's I/O thread,
 * which hands the release back to the core), so a body fanned out to many
 * consumers exists once in memory.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"
#include "net/conn.h"
#include "net/deliver.h"
#include "net/io.h"
#include "wire/frame.h"

/* Bodies above this are referenced, not copied. */
#define REF_THRESHOLD (64 * 1024)

/* A body added by reference: its chunks go out in order, so the last
 * chunk's cleanup releases the message. The connection counts the bytes
 * as shared (they are the message's, already counted in the memory alarm)
 * until then; the connection outlives its output buffer. */
struct shared_body {
    struct wr_msg *m;
    struct wr_conn *c;
    uint64_t len;
};

/* On the core: the body is written (or dropped with the output). */
static void shared_release(void *arg)
{
    struct shared_body *sb = arg;
    sb->c->out_shared -= sb->len;
    sb->m->pins--;
    wr_msg_unref(sb->m);
    free(sb);
}

/* libevent's cleanup, on whichever thread frees the chunk: with I/O
 * threads, the connection's, which hands the release to the core (the
 * message's count and pins are the core's alone). */
static void shared_done_cb(const void *data, size_t len, void *arg)
{
    struct shared_body *sb = arg;
    (void)data;
    (void)len;
    wr_sock_core_call(sb->c->sock, shared_release, sb);
}

/* Method, header and body frames of a body that fits one frame, in one
 * reservation of `total` bytes (small_total). */
static size_t small_total(size_t msize, uint32_t props_len, uint64_t body_len)
{
    size_t hsize = 12 + (props_len ? props_len : 2);
    return msize + hsize + (size_t)body_len + 3 * WR_FRAME_OVERHEAD -
           (body_len ? 0 : WR_FRAME_OVERHEAD);
}

static uint8_t *put_shortstr(uint8_t *p, struct wr_str s)
{
    *p++ = (uint8_t)s.len;
    memcpy(p, s.ptr, s.len);
    return p + s.len;
}

/* basic.deliver's encoded size: its class and method ids, three short
 * strings, the tag and the flags octet. */
static size_t deliver_size(size_t ctag_len, size_t x_len, size_t rk_len)
{
    return 16u + ctag_len + x_len + rk_len;
}

/* The method frame of a delivery. basic.deliver, the one that matters per
 * message, is written with plain stores (the generated encoder checks
 * every field against the end); its size is known. */
static uint8_t *put_method(uint8_t *p, uint16_t channel, const struct wr_method *m, size_t msize)
{
    const struct wr_basic_deliver *a = &m->u.basic_deliver;
    struct wr_wb w;

    *p++ = WR_AMQP_FRAME_METHOD;
    wr_store16(p, channel);
    wr_store32(p + 2, (uint32_t)msize);
    p += 6;
    if (m->id != WR_BASIC_DELIVER) {
        w = wr_wb_init(p, msize);
        if (wr_method_encode(&w, m) < 0 || w.err || w.p != p + msize)
            return NULL;
        p += msize;
    } else {
        if (a->consumer_tag.len > 255 || a->exchange.len > 255 || a->routing_key.len > 255 ||
            msize != deliver_size(a->consumer_tag.len, a->exchange.len, a->routing_key.len))
            return NULL;
        wr_store32(p, WR_BASIC_DELIVER);
        p = put_shortstr(p + 4, a->consumer_tag);
        wr_store64(p, a->delivery_tag);
        p[8] = a->redelivered ? 1 : 0;
        p = put_shortstr(p + 9, a->exchange);
        p = put_shortstr(p, a->routing_key);
    }
    *p++ = WR_AMQP_FRAME_END;
    return p;
}

static int put_small(struct evbuffer *out, uint16_t channel, const struct wr_method *m,
                     size_t msize, const uint8_t *props, uint32_t props_len, const uint8_t *body,
                     uint64_t body_len, size_t total)
{
    struct evbuffer_iovec v;
    uint8_t *p;

    if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1)
        return -1;
    if (!(p = put_method(v.iov_base, channel, m, msize)))
        return -1;
    p[0] = WR_AMQP_FRAME_HEADER;
    wr_store16(p + 1, channel);
    wr_store32(p + 3, 12 + (props_len ? props_len : 2));
    wr_store16(p + 7, WR_CLASS_BASIC);
    wr_store16(p + 9, 0);
    wr_store64(p + 11, body_len);
    p += 19;
    if (props_len) {
        memcpy(p, props, props_len);
        p += props_len;
    } else {
        p[0] = p[1] = 0;
        p += 2;
    }
    *p++ = WR_AMQP_FRAME_END;
    if (body_len) {
        p[0] = WR_AMQP_FRAME_BODY;
        wr_store16(p + 1, channel);
        wr_store32(p + 3, (uint32_t)body_len);
        memcpy(p + 7, body, (size_t)body_len);
        p += 7 + body_len;
        *p++ = WR_AMQP_FRAME_END;
    }
    if ((size_t)(p - (uint8_t *)v.iov_base) != total)
        return -1; /* cannot happen: small_total counts the same bytes */
    v.iov_len = total;
    evbuffer_commit_space(out, &v, 1);
    return 0;
}

/* ---- deliveries for the I/O thread ---- */

static bool grow(void **p, uint32_t *cap, uint64_t need, size_t size, uint32_t min)
{
    uint64_t n = *cap ? *cap : min;
    void *np;
    while (n < need)
        n *= 2;
    if (n > UINT32_MAX || !(np = realloc(*p, (size_t)n * size)))
        return false;
    *p = np;
    *cap = (uint32_t)n;
    return true;
}

/* Queue a basic.deliver for the connection's I/O thread; false when it
 * must be encoded here (out of memory, or a method this cannot carry). */
static bool defer(struct wr_conn *c, uint16_t channel, const struct wr_basic_deliver *a,
                  struct wr_msg *msg, const uint8_t *body, size_t total)
{
    struct wr_dlvq *q = &c->dq;
    struct wr_str x = wr_msg_exchange(msg), rk = wr_msg_routing_key(msg);
    uint64_t len = evbuffer_get_length(c->out);
    struct wr_dlv *d;

    /* The thread reads the names from the message it holds. */
    if (x.ptr != a->exchange.ptr || rk.ptr != a->routing_key.ptr || msg->pins == UINT16_MAX)
        return false;
    if ((q->n == q->cap && !grow((void **)&q->v, &q->cap, q->n + 1, sizeof(*q->v), 64)) ||
        (q->tags_len + a->consumer_tag.len > q->tags_cap &&
         !grow((void **)&q->tags, &q->tags_cap, q->tags_len + a->consumer_tag.len, 1, 1024)))
        return false;
    d = &q->v[q->n++];
    d->msg = wr_msg_ref(msg);
    msg->pins++; /* not paged out until written */
    d->props = wr_msg_props(msg);
    d->props_len = msg->props_len;
    d->body = body;
    d->body_len = msg->body_len;
    d->exchange = x.ptr;
    d->xlen = (uint8_t)x.len;
    d->rkey = rk.ptr;
    d->rklen = (uint8_t)rk.len;
    d->tag = a->delivery_tag;
    d->redelivered = a->redelivered;
    d->channel = channel;
    d->raw = len - q->mark;
    q->mark = len;
    d->size = (uint32_t)total;
    q->bytes += total;
    d->ctag_off = q->tags_len;
    d->ctag_len = (uint8_t)a->consumer_tag.len;
    memcpy(q->tags + q->tags_len, a->consumer_tag.ptr, a->consumer_tag.len);
    q->tags_len += a->consumer_tag.len;
    return true;
}

bool wr_dlvq_append(struct wr_dlvq *dst, uint64_t dst_raw, struct wr_dlvq *src)
{
    if (!src->n)
        return true;
    if (!dst->n) {
        /* The usual case: take the arrays over. */
        struct wr_dlvq t = *dst;
        *dst = *src;
        dst->v[0].raw += dst_raw;
        dst->mark += dst_raw;
        *src = t;
        src->n = src->tags_len = 0;
        src->bytes = src->mark = 0;
        return true;
    }
    if ((dst->n + src->n > dst->cap &&
         !grow((void **)&dst->v, &dst->cap, (uint64_t)dst->n + src->n, sizeof(*dst->v), 64)) ||
        (dst->tags_len + src->tags_len > dst->tags_cap &&
         !grow((void **)&dst->tags, &dst->tags_cap, (uint64_t)dst->tags_len + src->tags_len, 1,
               1024)))
        return false;
    for (uint32_t i = 0; i < src->n; i++) {
        struct wr_dlv d = src->v[i];
        d.ctag_off += dst->tags_len;
        if (i == 0)
            d.raw += dst_raw - dst->mark;
        dst->v[dst->n++] = d;
    }
    memcpy(dst->tags + dst->tags_len, src->tags, src->tags_len);
    dst->tags_len += src->tags_len;
    dst->bytes += src->bytes;
    dst->mark = dst_raw + src->mark;
    src->n = src->tags_len = 0;
    src->bytes = src->mark = 0;
    return true;
}

void wr_dlvq_encode(struct wr_dlvq *q, struct evbuffer *raw, struct evbuffer *out,
                    void (*fn)(void *arg, struct wr_msg *m), void *arg)
{
    struct wr_method m;
    wr_method_init(&m, WR_BASIC_DELIVER);
    for (uint32_t i = 0; i < q->n; i++) {
        const struct wr_dlv *d = &q->v[i];
        struct wr_basic_deliver *a = &m.u.basic_deliver;
        if (d->raw)
            evbuffer_remove_buffer(raw, out, d->raw);
        a->consumer_tag = (struct wr_str){q->tags + d->ctag_off, d->ctag_len};
        a->delivery_tag = d->tag;
        a->redelivered = d->redelivered;
        a->exchange = (struct wr_str){d->exchange, d->xlen};
        a->routing_key = (struct wr_str){d->rkey, d->rklen};
        (void)put_small(out, d->channel, &m, deliver_size(d->ctag_len, d->xlen, d->rklen), d->props,
                        d->props_len, d->body, d->body_len, d->size);
        fn(arg, d->msg);
    }
    evbuffer_add_buffer(out, raw);
    q->n = q->tags_len = 0;
    q->bytes = q->mark = 0;
}

void wr_dlvq_drop(struct wr_dlvq *q, void (*fn)(void *arg, struct wr_msg *m), void *arg)
{
    for (uint32_t i = 0; i < q->n; i++)
        fn(arg, q->v[i].msg);
    q->n = q->tags_len = 0;
    q->bytes = q->mark = 0;
}

void wr_dlvq_free(struct wr_dlvq *q)
{
    free(q->v);
    free(q->tags);
    memset(q, 0, sizeof(*q));
}

void wr_deliver_release(void *arg)
{
    struct wr_msg *msg = arg;
    msg->pins--;
    wr_msg_unref(msg);
}

void wr_deliver_content(struct wr_conn *c, uint16_t channel, const struct wr_method *m,
                        struct wr_msg *msg)
{
    const struct wr_basic_deliver *a = &m->u.basic_deliver;
    size_t msize = m->id == WR_BASIC_DELIVER
                       ? deliver_size(a->consumer_tag.len, a->exchange.len, a->routing_key.len)
                       : wr_method_size(m);
    uint32_t chunk = c->frame_max - WR_FRAME_OVERHEAD;
    uint8_t *body = wr_msg_body(msg);

    if (!body) {
        /* Its body was paged out and cannot be read back (logged): the
         * message stays unacknowledged here and is requeued with the
         * channel rather than delivered truncated. */
        return;
    }
    if (msg->body_len <= chunk && msg->body_len <= REF_THRESHOLD) {
        size_t total = small_total(msize, msg->props_len, msg->body_len);
        if ((m->id == WR_BASIC_DELIVER && wr_sock_threaded(c->sock) &&
             defer(c, channel, &m->u.basic_deliver, msg, body, total)) ||
            put_small(c->out, channel, m, msize, wr_msg_props(msg), msg->props_len, body,
                      msg->body_len, total) == 0)
            wr_conn_note_output(c);
        return;
    }

    wr_frame_put_method(c->out, channel, m);
    wr_frame_put_header_raw(c->out, channel, msg->body_len, wr_msg_props(msg), msg->props_len);
    if (msg->body_len <= REF_THRESHOLD || msg->pins == UINT16_MAX) {
        wr_frame_put_body(c->out, channel, body, (size_t)msg->body_len, c->frame_max);
    } else {
        uint64_t off = 0;
        struct shared_body *sb = malloc(sizeof(*sb));
        if (!sb)
            return;
        sb->m = wr_msg_ref(msg);
        msg->pins++; /* the body stays in memory until written */
        sb->c = c;
        sb->len = msg->body_len;
        c->out_shared += sb->len;
        while (off < msg->body_len) {
            uint8_t h[7];
            size_t n = msg->body_len - off < chunk ? (size_t)(msg->body_len - off) : chunk;
            bool last = off + n >= msg->body_len;
            h[0] = WR_AMQP_FRAME_BODY;
            wr_store16(h + 1, channel);
            wr_store32(h + 3, (uint32_t)n);
            evbuffer_add(c->out, h, sizeof(h));
            if (evbuffer_add_reference(c->out, body + off, n, last ? shared_done_cb : NULL,
                                       last ? sb : NULL) < 0 &&
                last)
                shared_done_cb(NULL, 0, sb);
            evbuffer_add(c->out, "\xce", 1);
            off += n;
        }
    }
    wr_conn_note_output(c);
}
