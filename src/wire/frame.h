/*
 * frame.h - AMQP 0-9-1 frames: the protocol header, the 7-byte frame header,
 * frame-end, content headers, and writing frames into an output evbuffer.
 *
 * Reading is a push parser that does no I/O: bytes arrive in an evbuffer (or
 * a flat buffer, for tests and the fuzzer), wr_frame_peek says whether a whole
 * frame is there, checks its size against the negotiated frame_max *before*
 * anything is allocated or pulled up, checks the frame-end octet, and hands
 * back the payload. Method and content-header payloads are made contiguous
 * (they are small); body payloads are left in the buffer so the caller can
 * move them straight into a message with one copy (wr_frame_take_body). A
 * frame that lies whole in the buffer's first chunk is checked in place.
 *
 * Writing reserves the exact size in the output evbuffer and encodes in
 * place: no intermediate buffer, no per-frame malloc.
 */
#ifndef WR_WIRE_FRAME_H
#define WR_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "wire/buf.h"
#include "wire/methods.gen.h"

struct evbuffer;

#define WR_FRAME_HEADER_SIZE 7
#define WR_FRAME_OVERHEAD 8 /* header + frame-end */

/* "AMQP" 0 0 9 1 */
extern const uint8_t wr_protocol_header[8];

/* Check the 8-byte protocol header. 0 when it is ours, WR_EAGAIN when fewer
 * than 8 bytes are given and those match so far, WR_EFRAME otherwise. */
int wr_protocol_header_check(const uint8_t *p, size_t len);

struct wr_frame {
    uint8_t type; /* WR_AMQP_FRAME_METHOD, _HEADER, _BODY, _HEARTBEAT */
    uint16_t channel;
    uint32_t size;          /* payload bytes */
    const uint8_t *payload; /* contiguous payload; NULL for a body frame across chunks */
};

/* Parse and check a frame header (7 bytes). frame_max is the negotiated
 * maximum frame size including the 8 bytes of overhead; 0 means no limit.
 * Returns 0 or WR_EFRAME (unknown type, too large, heartbeat with a payload). */
int wr_frame_header_parse(const uint8_t *h, uint32_t frame_max, struct wr_frame *f);

/* One frame from a flat buffer. Returns the number of bytes the frame
 * occupies (> 0) with *f filled (payload points into p), WR_EAGAIN when the
 * buffer holds only part of a frame, or WR_EFRAME. */
long wr_frame_parse(const uint8_t *p, size_t len, uint32_t frame_max, struct wr_frame *f);

/* One frame from an evbuffer, left in place. Returns 1 when a whole frame is
 * there (f->payload points to contiguous bytes valid until the buffer is
 * changed; for a body frame, only when it lies in one chunk, else NULL),
 * 0 when more bytes are needed, or WR_EFRAME.
 * After handling the frame call wr_frame_consume (non-body) or
 * wr_frame_take_body (body). */
int wr_frame_peek(struct evbuffer *in, uint32_t frame_max, struct wr_frame *f);
void wr_frame_consume(struct evbuffer *in, const struct wr_frame *f);
/* Move a body frame's payload into dst (f->size bytes) and drop the frame. */
void wr_frame_take_body(struct evbuffer *in, const struct wr_frame *f, void *dst);

/* A content header frame's payload. */
struct wr_content_header {
    uint16_t class_id;
    uint16_t weight;
    uint64_t body_size;
    struct wr_basic_props props;
    struct wr_str raw_props; /* the property flags word and list, as received */
};

/* Decode a content header payload. Returns 0, WR_EFRAME when it is shorter
 * than the fixed 14 bytes, WR_EUNEXPECTED_FRAME when the class has no content
 * (only basic does), or WR_ESYNTAX for malformed properties. */
int wr_content_header_decode(const uint8_t *p, size_t len, struct wr_content_header *h);

/* ---- writing ---- */

/* Append a method frame. Returns 0, or WR_ESYNTAX/WR_ENOMEM. */
int wr_frame_put_method(struct evbuffer *out, uint16_t channel, const struct wr_method *m);

/* Append a basic content header from raw property bytes (flags onward). */
int wr_frame_put_header_raw(struct evbuffer *out, uint16_t channel, uint64_t body_size,
                            const void *raw_props, size_t raw_len);

/* Append a basic content header from decoded properties. */
int wr_frame_put_header(struct evbuffer *out, uint16_t channel, uint64_t body_size,
                        const struct wr_basic_props *props);

/* Append a body as as many body frames as frame_max requires. */
int wr_frame_put_body(struct evbuffer *out, uint16_t channel, const void *body, size_t len,
                      uint32_t frame_max);

int wr_frame_put_heartbeat(struct evbuffer *out);

/* Encode a whole frame into a flat buffer (tests, the benchmark client).
 * Returns bytes written or a negative error. */
long wr_frame_encode_method(uint8_t *buf, size_t cap, uint16_t channel, const struct wr_method *m);

#endif
