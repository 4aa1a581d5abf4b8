/*
 * deliver.h - writing a message to a client: a method that carries content
 * (basic.deliver, basic.get-ok, basic.return), the content header with the
 * property bytes exactly as the publisher sent them, and the body cut into
 * frames of the connection's frame_max.
 */
#ifndef WR_NET_DELIVER_H
#define WR_NET_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

struct evbuffer;
struct wr_conn;
struct wr_method;
struct wr_msg;

void wr_deliver_content(struct wr_conn *c, uint16_t channel, const struct wr_method *m,
                        struct wr_msg *msg);

/* ---- deliveries encoded by an I/O thread ----
 *
 * With I/O threads, a basic.deliver of a body that fits one frame (and
 * 64 KiB) is not encoded on the core: the core appends a descriptor to the
 * connection's queue of deliveries, with the count of output bytes written
 * before it, and the queue goes to the I/O thread with the output at the
 * end of the turn. The thread encodes each delivery where it belongs in
 * the byte stream. The descriptor holds a reference and a pin on the
 * message (so its body is neither freed nor paged out) and pointers to
 * what the thread reads, all fixed while the reference is held; the
 * consumer tag is copied (the consumer may be cancelled meanwhile). The
 * thread hands each message back to the core (wr_deliver_release). */
struct wr_dlv {
    struct wr_msg *msg;
    const uint8_t *props, *body;
    const char *exchange, *rkey;
    uint64_t tag;
    uint32_t props_len, body_len;
    uint64_t raw;      /* output bytes before it, after the previous one */
    uint32_t size;     /* its encoded size */
    uint32_t ctag_off; /* in the queue's tags */
    uint16_t channel;
    uint8_t xlen, rklen, ctag_len;
    bool redelivered;
};

struct wr_dlvq {
    struct wr_dlv *v;
    uint32_t n, cap;
    char *tags;
    uint32_t tags_len, tags_cap;
    uint64_t bytes; /* encoded size of the n deliveries */
    uint64_t mark;  /* length of the byte stream after the last one */
};

/* Append `src` (whose raw bytes follow `dst_raw` bytes of raw output) to
 * `dst`, emptying `src`; false when out of memory (nothing moved). */
bool wr_dlvq_append(struct wr_dlvq *dst, uint64_t dst_raw, struct wr_dlvq *src);
/* Encode the deliveries into `out`, interleaved with the raw output
 * `raw` (drained into `out`); the queue is left empty, its messages
 * listed for wr_deliver_release through fn(arg, msg). */
void wr_dlvq_encode(struct wr_dlvq *q, struct evbuffer *raw, struct evbuffer *out,
                    void (*fn)(void *arg, struct wr_msg *m), void *arg);
/* Drop the deliveries unwritten, listing their messages the same way. */
void wr_dlvq_drop(struct wr_dlvq *q, void (*fn)(void *arg, struct wr_msg *m), void *arg);
void wr_dlvq_free(struct wr_dlvq *q);
/* On the core: the thread is done with a delivered message. */
void wr_deliver_release(void *msg);

#endif
