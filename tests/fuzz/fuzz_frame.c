/*
 * fuzz_frame.c - libFuzzer target for the frame parser, the method decoder
 * and the content-header decoder.
 *
 * The input is read as a stream of frames, the way a connection reads it
 * after the protocol header; the first byte picks a frame_max. Every method
 * that decodes is re-encoded and decoded again, and must give the same bytes:
 * the fuzzer checks the encoder as well as the decoder. The same frames are
 * also fed through an evbuffer one slice at a time, which must agree with
 * the flat parser.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>

#include "wire/field.h"
#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_method(const uint8_t *p, size_t n)
{
    struct wr_method m, m2;
    static uint8_t out[1 << 17];
    struct wr_wb w;

    if (wr_method_decode(p, n, &m) != 0)
        return;
    w = wr_wb_init(out, sizeof(out));
    if (wr_method_encode(&w, &m) != 0)
        abort();
    /* Same length always; same bytes unless the peer set bits that no
     * argument uses (ignored, as RabbitMQ ignores them), in which case a
     * second round trip must be stable. */
    if ((size_t)(w.p - out) != n || wr_method_size(&m) != n)
        abort();
    if (wr_method_decode(out, n, &m2) != 0 || m2.id != m.id)
        abort();
    if (memcmp(out, p, n) != 0) {
        static uint8_t again[1 << 17];
        struct wr_wb w2 = wr_wb_init(again, sizeof(again));
        if (wr_method_encode(&w2, &m2) != 0 || memcmp(again, out, n) != 0)
            abort();
    }
}

static void check_header(const uint8_t *p, size_t n)
{
    struct wr_content_header h;
    uint8_t out[1 << 17];
    struct wr_wb w;

    if (wr_content_header_decode(p, n, &h) != 0)
        return;
    w = wr_wb_init(out, sizeof(out));
    if (wr_basic_props_encode(&w, &h.props) != 0 || (size_t)(w.p - out) != h.raw_props.len ||
        memcmp(out, h.raw_props.ptr, h.raw_props.len) != 0)
        abort();
    if (h.props.flags & WR_BASIC_HEADERS_FLAG) {
        struct wr_fv v;
        (void)wr_table_get(h.props.headers, "x-match", &v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t maxes[4] = {4096, 131072, 0, 64};
    uint32_t frame_max;
    size_t off, flat_frames = 0, ev_frames = 0;
    struct wr_frame f;

    if (size < 1)
        return 0;
    frame_max = maxes[data[0] & 3];
    data++;
    size--;

    for (off = 0; off < size;) {
        long n = wr_frame_parse(data + off, size - off, frame_max, &f);
        if (n < 0)
            break;
        flat_frames++;
        if (f.type == WR_AMQP_FRAME_METHOD)
            check_method(f.payload, f.size);
        else if (f.type == WR_AMQP_FRAME_HEADER)
            check_header(f.payload, f.size);
        off += (size_t)n;
    }

    /* The evbuffer path must find the same frames, fed in 3-byte slices. */
    struct evbuffer *in = evbuffer_new();
    static uint8_t sink[1 << 20];
    int rc = 0;
    for (off = 0; off < size && rc >= 0; off += 3) {
        evbuffer_add(in, data + off, size - off < 3 ? size - off : 3);
        while ((rc = wr_frame_peek(in, frame_max, &f)) == 1) {
            ev_frames++;
            if (f.type == WR_AMQP_FRAME_BODY && f.size <= sizeof(sink))
                wr_frame_take_body(in, &f, sink);
            else if (f.type == WR_AMQP_FRAME_BODY)
                evbuffer_drain(in, (size_t)f.size + WR_FRAME_OVERHEAD);
            else
                wr_frame_consume(in, &f);
        }
    }
    evbuffer_free(in);
    if (ev_frames != flat_frames)
        abort();
    return 0;
}
