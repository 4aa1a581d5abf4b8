/*
 * asm.h - publishes assembled on an I/O thread, so that the core does not
 * parse them.
 *
 * With I/O threads (io.h) the bytes a connection reads cross to the core,
 * which cuts them into frames and assembles each publish (basic.publish,
 * its content header, its body frames) into a message. An I/O thread
 * does that part itself: it walks the frames of what it read, and a
 * publish whose frames are all there, back to back on one channel and
 * well formed, becomes a message block (msg.h, loose: no pool's yet) and
 * a marker in the byte stream where its frames were. Every other frame
 * crosses as it came, for the core's usual checks; so does any publish the
 * walker is not sure of (a frame too large, a malformed property list, an
 * expiration that is not a number, direct reply-to, a body over
 * max_body): the core then answers it as it always did.
 *
 * The marker is a frame of type 0, which no peer may send: its channel is
 * the publish's, its payload the publish's flags and names and a count
 * (below), and the messages wait, in order, in a queue beside the bytes
 * (struct wr_msgq). Publishes that follow each other in one read, on one
 * channel, with the same exchange, routing key and mandatory flag, with
 * no other frame between them, share one marker whose count says how
 * many they are (a run: a publisher's stream is mostly that), so the core
 * reads one marker per run, not per message. The core takes `count`
 * messages for a marker. A peer's own frame of
 * type 0 ends the walking for good (everything after it crosses raw), so
 * a marker the core meets while the queue is empty is the peer's, and
 * answered as any unknown frame type. Neither side trusts the other's
 * bytes for memory: a marker carries no pointer.
 *
 * The walker starts with the protocol header and keeps to frame
 * boundaries from then on, whether it assembles yet or not; it assembles
 * once the core says so (after connection.open, with the negotiated
 * frame_max), never before.
 */
#ifndef WR_NET_ASM_H
#define WR_NET_ASM_H

#include <stdbool.h>
#include <stdint.h>

#include "wire/buf.h"

struct evbuffer;
struct wr_msg;

#define WR_ASM_FRAME_MARKER 0 /* the marker's frame type */

/* A FIFO of loose messages (wr_msg_new_loose). */
struct wr_msgq {
    struct wr_msg **a;
    uint32_t head, n, cap;
};

/* 0, or WR_ENOMEM (m is not queued). */
int wr_msgq_push(struct wr_msgq *q, struct wr_msg *m);
/* The oldest, or NULL. */
struct wr_msg *wr_msgq_pop(struct wr_msgq *q);
/* Move all of src to the end of dst (src left empty). 0, or WR_ENOMEM
 * (nothing moved). */
int wr_msgq_move(struct wr_msgq *dst, struct wr_msgq *src);
/* Free the queued messages and the queue's memory. */
void wr_msgq_free(struct wr_msgq *q);

struct wr_asm {
    uint32_t frame_max; /* 0: walk only; else the negotiated frame_max */
    uint32_t max_body;  /* bodies up to this many bytes are assembled */
    uint64_t skip;      /* bytes of the current frame still to pass through */
    bool lost;          /* a frame the walker cannot read: all passes raw */
    uint64_t assembled; /* publishes turned into markers so far */
};

/* A new connection's walker: the 8-byte protocol header comes first. */
void wr_asm_init(struct wr_asm *a);
/* From now on assemble publishes whose bodies fit max_body. */
void wr_asm_enable(struct wr_asm *a, uint32_t frame_max, uint32_t max_body);

/* Move what `in` holds to the end of `out`, in order: frames as they
 * came, complete publishes as markers (their messages pushed on q).
 * What cannot be judged yet (part of a frame header, or a publish whose
 * frames are not all there) stays in `in`, unless `all` (the peer is
 * gone), when everything is moved. */
void wr_asm_run(struct wr_asm *a, struct evbuffer *in, struct evbuffer *out, struct wr_msgq *q,
                bool all);

/* A marker frame's largest size: frame overhead, flags, two names, count. */
#define WR_ASM_MARKER_MAX (7 + 1 + 3 + 255 + 255 + 4)

/* The most publishes one marker stands for. */
#define WR_ASM_RUN_MAX 4096u

/* What a marker's payload says. */
struct wr_asm_pub {
    struct wr_str exchange, routing_key;
    bool mandatory;
    uint32_t count; /* publishes, 1 to WR_ASM_RUN_MAX */
};
/* Write a marker frame (exchange and routing key at most 255 bytes, count
 * 1 to WR_ASM_RUN_MAX). */
int wr_asm_put_marker(struct evbuffer *out, uint16_t channel, const struct wr_asm_pub *p);
/* Read a marker's payload (names point into it). 0 or WR_EFRAME. */
int wr_asm_marker_parse(const uint8_t *payload, uint32_t size, struct wr_asm_pub *p);

#endif
