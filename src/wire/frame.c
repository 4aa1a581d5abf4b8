/*
 * frame.c - frame boundaries and content headers; see frame.h.
 *
 * Neighbours: methods.gen.c decodes what is inside a method frame; net/conn.c
 * drives wr_frame_peek from its read callback and decides what a frame means
 * for the connection's state (505 UNEXPECTED_FRAME is its call, not ours).
 */
#include "config.h"

#include <event2/buffer.h>
#include <string.h>

#include "wire/field.h"
#include "wire/frame.h"

const uint8_t wr_protocol_header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

int wr_protocol_header_check(const uint8_t *p, size_t len)
{
    size_t n = len < 8 ? len : 8;
    if (memcmp(p, wr_protocol_header, n) != 0)
        return WR_EFRAME;
    return len < 8 ? WR_EAGAIN : 0;
}

int wr_frame_header_parse(const uint8_t *h, uint32_t frame_max, struct wr_frame *f)
{
    f->type = h[0];
    f->channel = wr_load16(h + 1);
    f->size = wr_load32(h + 3);
    f->payload = NULL;
    switch (f->type) {
    case WR_AMQP_FRAME_METHOD:
    case WR_AMQP_FRAME_HEADER:
    case WR_AMQP_FRAME_BODY:
        break;
    case WR_AMQP_FRAME_HEARTBEAT:
        /* A heartbeat on a channel other than 0 is well formed but out of
         * place: the connection answers 505, as RabbitMQ does. */
        if (f->size != 0)
            return WR_EFRAME;
        break;
    default:
        return WR_EFRAME;
    }
    /* Compare in 64 bits: size is a peer's u32 and may be near UINT32_MAX. */
    if (frame_max && (uint64_t)f->size + WR_FRAME_OVERHEAD > frame_max)
        return WR_EFRAME;
    return 0;
}

long wr_frame_parse(const uint8_t *p, size_t len, uint32_t frame_max, struct wr_frame *f)
{
    int rc;
    if (len < WR_FRAME_HEADER_SIZE)
        return WR_EAGAIN;
    if ((rc = wr_frame_header_parse(p, frame_max, f)) < 0)
        return rc;
    if ((uint64_t)f->size + WR_FRAME_OVERHEAD > len)
        return WR_EAGAIN;
    if (p[WR_FRAME_HEADER_SIZE + f->size] != WR_AMQP_FRAME_END)
        return WR_EFRAME;
    f->payload = p + WR_FRAME_HEADER_SIZE;
    return (long)(f->size + WR_FRAME_OVERHEAD);
}

int wr_frame_peek(struct evbuffer *in, uint32_t frame_max, struct wr_frame *f)
{
    uint8_t h[WR_FRAME_HEADER_SIZE];
    struct evbuffer_iovec v;
    size_t have, total;
    int rc;

    /* The common case: the whole frame lies in the buffer's first chunk,
     * and is checked in place (one call into the buffer, not four). */
    if (evbuffer_peek(in, -1, NULL, &v, 1) >= 1 && v.iov_len >= WR_FRAME_HEADER_SIZE) {
        const uint8_t *p = v.iov_base;
        if ((rc = wr_frame_header_parse(p, frame_max, f)) < 0)
            return rc;
        total = (size_t)f->size + WR_FRAME_OVERHEAD;
        if (v.iov_len >= total) {
            if (p[total - 1] != WR_AMQP_FRAME_END)
                return WR_EFRAME;
            f->payload = p + WR_FRAME_HEADER_SIZE;
            return 1;
        }
    }
    have = evbuffer_get_length(in);
    if (have < WR_FRAME_HEADER_SIZE)
        return 0;
    if (evbuffer_copyout(in, h, sizeof(h)) != (ev_ssize_t)sizeof(h))
        return WR_EFRAME;
    if ((rc = wr_frame_header_parse(h, frame_max, f)) < 0)
        return rc;
    total = (size_t)f->size + WR_FRAME_OVERHEAD;
    if (have < total)
        return 0;

    if (f->type == WR_AMQP_FRAME_BODY) {
        struct evbuffer_ptr pos;
        uint8_t end;
        f->payload = NULL; /* across chunks: wr_frame_take_body copies it out */
        if (evbuffer_ptr_set(in, &pos, total - 1, EVBUFFER_PTR_SET) < 0 ||
            evbuffer_copyout_from(in, &pos, &end, 1) != 1 || end != WR_AMQP_FRAME_END)
            return WR_EFRAME;
        return 1;
    }
    {
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)total);
        if (!p || p[total - 1] != WR_AMQP_FRAME_END)
            return WR_EFRAME;
        f->payload = p + WR_FRAME_HEADER_SIZE;
    }
    return 1;
}

void wr_frame_consume(struct evbuffer *in, const struct wr_frame *f)
{
    evbuffer_drain(in, (size_t)f->size + WR_FRAME_OVERHEAD);
}

void wr_frame_take_body(struct evbuffer *in, const struct wr_frame *f, void *dst)
{
    if (f->payload) {
        if (f->size)
            memcpy(dst, f->payload, f->size);
        evbuffer_drain(in, (size_t)f->size + WR_FRAME_OVERHEAD);
        return;
    }
    evbuffer_drain(in, WR_FRAME_HEADER_SIZE);
    if (f->size)
        evbuffer_remove(in, dst, f->size);
    evbuffer_drain(in, 1);
}

int wr_content_header_decode(const uint8_t *p, size_t len, struct wr_content_header *h)
{
    struct wr_rd r = wr_rd_init(p, len);
    const uint8_t *props_start;

    if (len < 14)
        return WR_EFRAME;
    (void)wr_rd_u16(&r, &h->class_id);
    (void)wr_rd_u16(&r, &h->weight);
    (void)wr_rd_u64(&r, &h->body_size);
    if (h->class_id != WR_CLASS_BASIC)
        return WR_EUNEXPECTED_FRAME;
    props_start = r.p;
    if (wr_basic_props_decode(&r, &h->props) < 0 || wr_rd_left(&r) != 0)
        return WR_ESYNTAX;
    h->raw_props.ptr = (const char *)props_start;
    h->raw_props.len = (uint32_t)(r.p - props_start);
    return 0;
}

/* Reserve exactly `payload` bytes of frame in `out`, encode with `fill`,
 * add the header and frame-end, commit. */
static uint8_t *frame_begin(struct evbuffer *out, struct evbuffer_iovec *v, uint8_t type,
                            uint16_t channel, size_t payload)
{
    uint8_t *b;
    if (payload > UINT32_MAX - WR_FRAME_OVERHEAD)
        return NULL;
    if (evbuffer_reserve_space(out, (ev_ssize_t)(payload + WR_FRAME_OVERHEAD), v, 1) < 1)
        return NULL;
    b = v->iov_base;
    b[0] = type;
    wr_store16(b + 1, channel);
    wr_store32(b + 3, (uint32_t)payload);
    b[WR_FRAME_HEADER_SIZE + payload] = WR_AMQP_FRAME_END;
    return b;
}

static int frame_commit(struct evbuffer *out, struct evbuffer_iovec *v, size_t payload)
{
    v->iov_len = payload + WR_FRAME_OVERHEAD;
    return evbuffer_commit_space(out, v, 1) < 0 ? WR_ENOMEM : 0;
}

int wr_frame_put_method(struct evbuffer *out, uint16_t channel, const struct wr_method *m)
{
    struct evbuffer_iovec v;
    size_t n = wr_method_size(m);
    uint8_t *b;
    struct wr_wb w;
    int rc;

    if (n == 0)
        return WR_ECOMMAND_INVALID;
    if (!(b = frame_begin(out, &v, WR_AMQP_FRAME_METHOD, channel, n)))
        return WR_ENOMEM;
    w = wr_wb_init(b + WR_FRAME_HEADER_SIZE, n);
    if ((rc = wr_method_encode(&w, m)) < 0)
        return rc; /* nothing committed: the reservation is simply dropped */
    return frame_commit(out, &v, n);
}

static int put_header(struct evbuffer *out, uint16_t channel, uint64_t body_size, const void *raw,
                      size_t raw_len, const struct wr_basic_props *props)
{
    struct evbuffer_iovec v;
    size_t n = 12 + (props ? wr_basic_props_size(props) : raw_len);
    uint8_t *b;
    struct wr_wb w;

    if (!(b = frame_begin(out, &v, WR_AMQP_FRAME_HEADER, channel, n)))
        return WR_ENOMEM;
    w = wr_wb_init(b + WR_FRAME_HEADER_SIZE, n);
    wr_wb_u16(&w, WR_CLASS_BASIC);
    wr_wb_u16(&w, 0);
    wr_wb_u64(&w, body_size);
    if (props)
        wr_basic_props_encode(&w, props);
    else
        wr_wb_bytes(&w, raw, raw_len);
    if (w.err)
        return w.err;
    return frame_commit(out, &v, n);
}

int wr_frame_put_header_raw(struct evbuffer *out, uint16_t channel, uint64_t body_size,
                            const void *raw_props, size_t raw_len)
{
    static const uint8_t no_props[2] = {0, 0};
    if (raw_len == 0) {
        raw_props = no_props;
        raw_len = 2;
    }
    return put_header(out, channel, body_size, raw_props, raw_len, NULL);
}

int wr_frame_put_header(struct evbuffer *out, uint16_t channel, uint64_t body_size,
                        const struct wr_basic_props *props)
{
    return put_header(out, channel, body_size, NULL, 0, props);
}

int wr_frame_put_body(struct evbuffer *out, uint16_t channel, const void *body, size_t len,
                      uint32_t frame_max)
{
    const uint8_t *p = body;
    size_t chunk = frame_max > WR_FRAME_OVERHEAD ? frame_max - WR_FRAME_OVERHEAD : len;

    while (len > 0) {
        struct evbuffer_iovec v;
        size_t n = len < chunk ? len : chunk;
        uint8_t *b = frame_begin(out, &v, WR_AMQP_FRAME_BODY, channel, n);
        if (!b)
            return WR_ENOMEM;
        memcpy(b + WR_FRAME_HEADER_SIZE, p, n);
        if (frame_commit(out, &v, n) < 0)
            return WR_ENOMEM;
        p += n;
        len -= n;
    }
    return 0;
}

int wr_frame_put_heartbeat(struct evbuffer *out)
{
    static const uint8_t hb[8] = {WR_AMQP_FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, WR_AMQP_FRAME_END};
    return evbuffer_add(out, hb, sizeof(hb)) < 0 ? WR_ENOMEM : 0;
}

long wr_frame_encode_method(uint8_t *buf, size_t cap, uint16_t channel, const struct wr_method *m)
{
    size_t n = wr_method_size(m);
    struct wr_wb w;
    int rc;

    if (n == 0)
        return WR_ECOMMAND_INVALID;
    if (cap < n + WR_FRAME_OVERHEAD)
        return WR_ENOSPC;
    buf[0] = WR_AMQP_FRAME_METHOD;
    wr_store16(buf + 1, channel);
    wr_store32(buf + 3, (uint32_t)n);
    w = wr_wb_init(buf + WR_FRAME_HEADER_SIZE, n);
    if ((rc = wr_method_encode(&w, m)) < 0)
        return rc;
    buf[WR_FRAME_HEADER_SIZE + n] = WR_AMQP_FRAME_END;
    return (long)(n + WR_FRAME_OVERHEAD);
}
