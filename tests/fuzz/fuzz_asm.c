/*
 * fuzz_asm.c - libFuzzer target for the publish assembler an I/O thread
 * runs (net/asm.h).
 *
 * The input is the same as fuzz_frame's (one byte, then a stream of frames
 * as a client sends them after the protocol header, so the corpora are
 * shared); the first byte picks the frame_max, the slice size the stream
 * is fed in, and whether assembling is on from the start or from the
 * second slice. Whatever the stream, every byte must come out (with `all`
 * at the end), every assembled message must be queued once, and the
 * output, read as frames with markers allowed, must keep the input's
 * frame boundaries up to where the walker stopped reading.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>

#include "broker/msg.h"
#include "net/asm.h"
#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t maxes[4] = {4096, 131072, 0, 64};
    static const size_t slices[8] = {1, 2, 3, 7, 13, 64, 1000, 1 << 20};
    struct wr_asm a;
    struct wr_msgq q = {0};
    struct evbuffer *in, *out;
    uint32_t frame_max;
    size_t slice, off, n = 0;
    bool late;

    if (size < 1)
        return 0;
    frame_max = maxes[data[0] & 3];
    slice = slices[(data[0] >> 2) & 7];
    late = data[0] & 0x20;
    data++;
    size--;

    in = evbuffer_new();
    out = evbuffer_new();
    wr_asm_init(&a);
    a.skip = 0; /* the stream starts after the protocol header */
    if (!late)
        wr_asm_enable(&a, frame_max, 65536);
    for (off = 0; off < size; off += slice) {
        evbuffer_add(in, data + off, size - off < slice ? size - off : slice);
        wr_asm_run(&a, in, out, &q, false);
        if (late && off == 0)
            wr_asm_enable(&a, frame_max, 65536);
    }
    wr_asm_run(&a, in, out, &q, true);
    if (evbuffer_get_length(in) != 0 || q.n != a.assembled)
        abort();

    /* Markers and frames, back to back, while the frames are readable. */
    {
        const uint8_t *p = evbuffer_pullup(out, -1);
        size_t len = evbuffer_get_length(out), markers = 0;
        while (n + 7 <= len) {
            uint32_t fs = wr_load32(p + n + 3);
            if (n + fs + 8 > len)
                break;
            if (p[n] == WR_ASM_FRAME_MARKER) {
                struct wr_asm_pub pub;
                if (p[n + 7 + fs] != 0xce || wr_asm_marker_parse(p + n + 7, fs, &pub) < 0)
                    break; /* a peer's: the walker stopped before it */
                markers += pub.count;
            }
            n += fs + 8;
        }
        if (markers < q.n)
            abort();
    }
    wr_msgq_free(&q);
    evbuffer_free(in);
    evbuffer_free(out);
    return 0;
}
