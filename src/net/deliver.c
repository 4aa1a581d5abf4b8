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

void wr_deliver_content(struct wr_conn *c, uint16_t channel, const struct wr_method *m,
                        struct wr_msg *msg)
{
    size_t msize = wr_method_size(m);
    size_t hsize = 12 + (msg->props_len ? msg->props_len : 2);
    uint32_t chunk = c->frame_max - WR_FRAME_OVERHEAD;
    uint8_t *body = wr_msg_body(msg);

    if (!body) {
        /* Its body was paged out and cannot be read back (logged): the
         * message stays unacknowledged here and is requeued with the
         * channel rather than delivered truncated. */
        return;
    }
    if (msg->body_len <= chunk && msg->body_len <= REF_THRESHOLD) {
        /* One reservation, three frames. */
        size_t total = msize + hsize + (size_t)msg->body_len + 3 * WR_FRAME_OVERHEAD -
                       (msg->body_len ? 0 : WR_FRAME_OVERHEAD);
        struct evbuffer_iovec v;
        uint8_t *p;
        struct wr_wb w;

        if (evbuffer_reserve_space(c->out, (ev_ssize_t)total, &v, 1) < 1)
            return;
        p = v.iov_base;
        w = wr_wb_init(p, total);
        wr_wb_u8(&w, WR_AMQP_FRAME_METHOD);
        wr_wb_u16(&w, channel);
        wr_wb_u32(&w, (uint32_t)msize);
        if (wr_method_encode(&w, m) < 0)
            return;
        wr_wb_u8(&w, WR_AMQP_FRAME_END);
        wr_wb_u8(&w, WR_AMQP_FRAME_HEADER);
        wr_wb_u16(&w, channel);
        wr_wb_u32(&w, (uint32_t)hsize);
        wr_wb_u16(&w, WR_CLASS_BASIC);
        wr_wb_u16(&w, 0);
        wr_wb_u64(&w, msg->body_len);
        if (msg->props_len)
            wr_wb_bytes(&w, wr_msg_props(msg), msg->props_len);
        else
            wr_wb_u16(&w, 0);
        wr_wb_u8(&w, WR_AMQP_FRAME_END);
        if (msg->body_len) {
            wr_wb_u8(&w, WR_AMQP_FRAME_BODY);
            wr_wb_u16(&w, channel);
            wr_wb_u32(&w, (uint32_t)msg->body_len);
            wr_wb_bytes(&w, body, (size_t)msg->body_len);
            wr_wb_u8(&w, WR_AMQP_FRAME_END);
        }
        if (w.err)
            return;
        v.iov_len = total;
        evbuffer_commit_space(c->out, &v, 1);
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
