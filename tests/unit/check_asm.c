/*
 * check_asm.c - unit tests for the publishes an I/O thread assembles
 * (net/asm.h). Streams of frames, built here with wire/frame.h, go
 * through the walker in slices of every size; what comes out must be the
 * same frames in the same order, each publish the walker may take
 * replaced by a marker whose message holds the publish's properties and
 * body, and every publish it must leave alone (reply-to, a bad
 * expiration, a frame too large, frames of another channel in between,
 * a body over the limit, a peer's own type-0 frame and what follows it)
 * passed through byte for byte.
 */
#include "config.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"
#include "net/asm.h"
#include "wire/frame.h"
#include "wire/methods.gen.h"

#define FRAME_MAX 4096u
#define MAX_BODY 10000u

/* ---- building streams ---- */

static void put_publish_method(struct evbuffer *b, uint16_t ch, const char *x, const char *rk,
                               bool mandatory)
{
    struct wr_method m;
    wr_method_init(&m, WR_BASIC_PUBLISH);
    m.u.basic_publish.exchange = wr_str_c(x);
    m.u.basic_publish.routing_key = wr_str_c(rk);
    m.u.basic_publish.mandatory = mandatory;
    ck_assert_int_eq(wr_frame_put_method(b, ch, &m), 0);
}

/* A whole publish: method, header with `props`, the body in frames of at
 * most `chunk` bytes. */
static void put_publish(struct evbuffer *b, uint16_t ch, const char *x, const char *rk,
                        const struct wr_basic_props *props, const void *body, size_t len,
                        size_t chunk)
{
    const uint8_t *p = body;
    put_publish_method(b, ch, x, rk, false);
    ck_assert_int_eq(wr_frame_put_header(b, ch, len, props), 0);
    while (len) {
        size_t n = len < chunk ? len : chunk;
        ck_assert_int_eq(wr_frame_put_body(b, ch, p, n, FRAME_MAX), 0);
        p += n;
        len -= n;
    }
}

static void put_ack(struct evbuffer *b, uint16_t ch, uint64_t tag)
{
    struct wr_method m;
    wr_method_init(&m, WR_BASIC_ACK);
    m.u.basic_ack.delivery_tag = tag;
    ck_assert_int_eq(wr_frame_put_method(b, ch, &m), 0);
}

/* Append a copy of src's bytes to dst (src unchanged). */
static void append_copy(struct evbuffer *dst, struct evbuffer *src)
{
    ck_assert_int_eq(evbuffer_add(dst, evbuffer_pullup(src, -1), evbuffer_get_length(src)), 0);
}

static struct wr_basic_props no_props(void)
{
    struct wr_basic_props p;
    memset(&p, 0, sizeof(p));
    return p;
}

/* ---- running the walker ---- */

struct run {
    struct wr_asm a;
    struct evbuffer *out;
    struct wr_msgq q;
};

static void run_init(struct run *r, bool enabled)
{
    wr_asm_init(&r->a);
    if (enabled)
        wr_asm_enable(&r->a, FRAME_MAX, MAX_BODY);
    r->out = evbuffer_new();
    memset(&r->q, 0, sizeof(r->q));
}

static void run_free(struct run *r)
{
    evbuffer_free(r->out);
    wr_msgq_free(&r->q);
}

/* Feed `src` (which starts after the protocol header: the walker is told
 * it was already passed) in slices of `slice` bytes; the end with all. */
static void feed(struct run *r, struct evbuffer *src, size_t slice)
{
    struct evbuffer *in = evbuffer_new();
    size_t len = evbuffer_get_length(src);
    uint8_t *flat = malloc(len ? len : 1);
    evbuffer_copyout(src, flat, len);
    r->a.skip = 0; /* as if the protocol header had gone by */
    for (size_t off = 0; off < len; off += slice) {
        evbuffer_add(in, flat + off, len - off < slice ? len - off : slice);
        wr_asm_run(&r->a, in, r->out, &r->q, false);
    }
    wr_asm_run(&r->a, in, r->out, &r->q, true);
    ck_assert_uint_eq(evbuffer_get_length(in), 0);
    evbuffer_free(in);
    free(flat);
}

static bool same(struct evbuffer *a, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(a);
    if (n != evbuffer_get_length(b))
        return false;
    return n == 0 || memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) == 0;
}

static void want_run(struct evbuffer *want, uint16_t ch, const char *x, const char *rk,
                     bool mandatory, uint32_t count)
{
    struct wr_asm_pub p = {wr_str_c(x), wr_str_c(rk), mandatory, count};
    ck_assert_int_eq(wr_asm_put_marker(want, ch, &p), 0);
}

static void want_marker(struct evbuffer *want, uint16_t ch, const char *x, const char *rk,
                        bool mandatory)
{
    want_run(want, ch, x, rk, mandatory, 1);
}

/* The same stream with every marker of count n written as n markers of
 * count 1: how runs form depends on how the input was cut, this does not. */
static struct evbuffer *unrun(struct evbuffer *b)
{
    struct evbuffer *u = evbuffer_new();
    size_t len = evbuffer_get_length(b), at = 0;
    const uint8_t *p = evbuffer_pullup(b, -1);
    while (at < len) {
        uint32_t size;
        ck_assert_uint_ge(len - at, WR_FRAME_OVERHEAD);
        size = wr_load32(p + at + 3);
        ck_assert_uint_ge(len - at, size + WR_FRAME_OVERHEAD);
        if (p[at] == WR_ASM_FRAME_MARKER) {
            struct wr_asm_pub m;
            ck_assert_int_eq(wr_asm_marker_parse(p + at + 7, size, &m), 0);
            for (uint32_t i = 0, n = m.count; i < n; i++) {
                m.count = 1;
                ck_assert_int_eq(wr_asm_put_marker(u, wr_load16(p + at + 1), &m), 0);
            }
        } else {
            evbuffer_add(u, p + at, size + WR_FRAME_OVERHEAD);
        }
        at += size + WR_FRAME_OVERHEAD;
    }
    return u;
}

/* How many markers b holds, and how many publishes they stand for. */
static void count_markers(struct evbuffer *b, size_t *markers, size_t *pubs)
{
    size_t len = evbuffer_get_length(b), at = 0;
    const uint8_t *p = evbuffer_pullup(b, -1);
    *markers = *pubs = 0;
    while (at + WR_FRAME_OVERHEAD <= len) {
        uint32_t size = wr_load32(p + at + 3);
        if (p[at] == WR_ASM_FRAME_MARKER) {
            struct wr_asm_pub m;
            ck_assert_int_eq(wr_asm_marker_parse(p + at + 7, size, &m), 0);
            (*markers)++;
            *pubs += m.count;
        }
        at += size + WR_FRAME_OVERHEAD;
    }
}

static void check_msg(struct wr_msg *m, const void *body, size_t len)
{
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->body_len, len);
    ck_assert_ptr_null(m->rkey); /* loose */
    ck_assert(len == 0 || memcmp(wr_msg_body(m), body, len) == 0);
}

/* ---- tests ---- */

START_TEST(test_publish_becomes_marker_any_slicing)
{
    char body[3000];
    struct wr_basic_props p = no_props();
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)(i * 7);
    p.flags = WR_BASIC_CONTENT_TYPE_FLAG;
    p.content_type = WR_STR("text/plain");

    for (size_t slice = 1; slice < 700; slice += (slice < 40 ? 1 : 97)) {
        struct evbuffer *src = evbuffer_new(), *want = evbuffer_new();
        struct run r;
        put_ack(src, 1, 5);
        append_copy(want, src);
        put_publish(src, 3, "amq.topic", "a.b", &p, body, sizeof(body), 1000);
        want_marker(want, 3, "amq.topic", "a.b", false);
        put_publish(src, 3, "", "q", &p, "", 0, 1000);
        want_marker(want, 3, "", "q", false);
        {
            struct evbuffer *hb = evbuffer_new();
            ck_assert_int_eq(wr_frame_put_heartbeat(hb), 0);
            append_copy(want, hb);
            evbuffer_add_buffer(src, hb);
            evbuffer_free(hb);
        }
        run_init(&r, true);
        feed(&r, src, slice);
        ck_assert_msg(same(r.out, want), "slice %zu", slice);
        ck_assert_uint_eq(r.q.n, 2);
        {
            struct wr_msg *m = wr_msgq_pop(&r.q);
            check_msg(m, body, sizeof(body));
            ck_assert_uint_eq(m->props_len, 2 + 1 + 10);
            ck_assert_uint_eq(m->flags, 0);
            wr_msg_free_loose(m);
            m = wr_msgq_pop(&r.q);
            check_msg(m, "", 0);
            wr_msg_free_loose(m);
        }
        ck_assert_uint_eq(r.a.assembled, 2);
        run_free(&r);
        evbuffer_free(src);
        evbuffer_free(want);
    }
}
END_TEST

/* Publishes back to back on one channel with the same exchange, routing
 * key and mandatory flag share a marker (a run) when one read holds them;
 * anything between them, another channel, other names or another flag
 * ends the run. However the input is cut, the markers stand for the same
 * publishes in the same order. */
START_TEST(test_runs_share_a_marker)
{
    struct wr_basic_props p = no_props();
    struct evbuffer *src = evbuffer_new(), *want = evbuffer_new();
    struct run r;
    char body[40];

    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof(body), "m%d", i);
        put_publish(src, 1, "", "q", &p, body, strlen(body), 10);
    }
    want_run(want, 1, "", "q", false, 5);
    put_publish_method(src, 1, "", "q", true); /* mandatory: a run of its own */
    ck_assert_int_eq(wr_frame_put_header(src, 1, 2, &p), 0);
    ck_assert_int_eq(wr_frame_put_body(src, 1, "m5", 2, FRAME_MAX), 0);
    want_run(want, 1, "", "q", true, 1);
    put_publish(src, 2, "", "q", &p, "m6", 2, 10); /* another channel */
    put_publish(src, 2, "", "q", &p, "m7", 2, 10);
    want_run(want, 2, "", "q", false, 2);
    put_publish(src, 2, "", "r", &p, "m8", 2, 10); /* another key */
    want_run(want, 2, "", "r", false, 1);
    put_publish(src, 2, "x", "r", &p, "m9", 2, 10); /* another exchange */
    want_run(want, 2, "x", "r", false, 1);
    {
        struct evbuffer *ack = evbuffer_new();
        put_ack(ack, 1, 1); /* a frame between: the run ends */
        append_copy(want, ack);
        evbuffer_add_buffer(src, ack);
        evbuffer_free(ack);
    }
    for (int i = 10; i < 13; i++) {
        snprintf(body, sizeof(body), "m%d", i);
        put_publish(src, 2, "x", "r", &p, body, strlen(body), 10);
    }
    want_run(want, 2, "x", "r", false, 3);

    /* In one read: exactly these markers. */
    run_init(&r, true);
    feed(&r, src, evbuffer_get_length(src));
    ck_assert(same(r.out, want));
    ck_assert_uint_eq(r.q.n, 13);
    for (int i = 0; i < 13; i++) {
        struct wr_msg *m;
        snprintf(body, sizeof(body), "m%d", i);
        m = wr_msgq_pop(&r.q);
        check_msg(m, body, strlen(body));
        wr_msg_free_loose(m);
    }
    run_free(&r);

    /* Cut anywhere: runs never span two calls, and the publishes are the
     * same. */
    for (size_t slice = 1; slice < evbuffer_get_length(src); slice += 7) {
        struct evbuffer *a, *b;
        size_t markers, pubs;
        run_init(&r, true);
        feed(&r, src, slice);
        a = unrun(r.out);
        b = unrun(want);
        ck_assert_msg(same(a, b), "slice %zu", slice);
        count_markers(r.out, &markers, &pubs);
        ck_assert_uint_eq(pubs, 13);
        ck_assert_uint_eq(r.q.n, 13);
        ck_assert_uint_ge(markers, 6); /* six runs at least */
        evbuffer_free(a);
        evbuffer_free(b);
        run_free(&r);
    }
    evbuffer_free(src);
    evbuffer_free(want);
}
END_TEST

/* A run is at most WR_ASM_RUN_MAX publishes: one more starts another. */
START_TEST(test_run_max)
{
    struct wr_basic_props p = no_props();
    struct evbuffer *src = evbuffer_new(), *want = evbuffer_new();
    struct run r;

    for (uint32_t i = 0; i < WR_ASM_RUN_MAX + 1; i++)
        put_publish(src, 7, "", "k", &p, "", 0, 10);
    want_run(want, 7, "", "k", false, WR_ASM_RUN_MAX);
    want_run(want, 7, "", "k", false, 1);
    run_init(&r, true);
    feed(&r, src, evbuffer_get_length(src));
    ck_assert(same(r.out, want));
    ck_assert_uint_eq(r.q.n, WR_ASM_RUN_MAX + 1);
    ck_assert_uint_eq(r.a.assembled, WR_ASM_RUN_MAX + 1);
    run_free(&r);
    evbuffer_free(src);
    evbuffer_free(want);
}
END_TEST

START_TEST(test_properties_carried)
{
    struct evbuffer *src = evbuffer_new();
    struct wr_basic_props p = no_props();
    struct wr_msg *m;
    struct run r;

    p.flags = WR_BASIC_DELIVERY_MODE_FLAG | WR_BASIC_EXPIRATION_FLAG | WR_BASIC_PRIORITY_FLAG;
    p.delivery_mode = 2;
    p.expiration = WR_STR("+0150");
    p.priority = 7;
    put_publish(src, 1, "", "q", &p, "hello", 5, 2);
    run_init(&r, true);
    feed(&r, src, 4096);
    ck_assert_uint_eq(r.q.n, 1);
    m = wr_msgq_pop(&r.q);
    check_msg(m, "hello", 5);
    ck_assert(m->flags & WR_MSG_PERSISTENT);
    ck_assert(m->flags & WR_MSG_EXT);
    ck_assert_int_eq(wr_msg_ext(m)->ttl_ms, 150);
    ck_assert_uint_eq(m->priority, 7);
    wr_msg_free_loose(m);
    run_free(&r);
    evbuffer_free(src);
}
END_TEST

/* Publishes the walker must pass through untouched. */
static void check_raw(struct evbuffer *src)
{
    size_t n = evbuffer_get_length(src);
    struct evbuffer *copy = evbuffer_new();
    append_copy(copy, src);
    for (size_t slice = 1; slice <= n; slice = slice < 16 ? slice + 1 : slice * 3) {
        struct run r;
        run_init(&r, true);
        feed(&r, src, slice);
        ck_assert_msg(same(r.out, copy), "slice %zu", slice);
        ck_assert_uint_eq(r.q.n, 0);
        run_free(&r);
    }
    evbuffer_free(copy);
}

START_TEST(test_left_to_the_core)
{
    struct wr_basic_props p = no_props();
    struct evbuffer *b;
    char big[MAX_BODY + 1];
    memset(big, 'x', sizeof(big));

    /* direct reply-to: the channel's queue name is the core's */
    b = evbuffer_new();
    p.flags = WR_BASIC_REPLY_TO_FLAG;
    p.reply_to = WR_STR("amq.rabbitmq.reply-to");
    put_publish(b, 1, "", "q", &p, "a", 1, 10);
    check_raw(b);
    evbuffer_free(b);

    /* an expiration that is not a number */
    b = evbuffer_new();
    p.flags = WR_BASIC_EXPIRATION_FLAG;
    p.expiration = WR_STR("-1");
    put_publish(b, 1, "", "q", &p, "a", 1, 10);
    check_raw(b);
    evbuffer_free(b);

    /* a body over max_body */
    b = evbuffer_new();
    p = no_props();
    put_publish(b, 1, "", "q", &p, big, sizeof(big), 4000);
    check_raw(b);
    evbuffer_free(b);

    /* a frame of another channel between header and body */
    b = evbuffer_new();
    put_publish_method(b, 1, "", "q", false);
    ck_assert_int_eq(wr_frame_put_header(b, 1, 2, &p), 0);
    put_ack(b, 2, 1);
    ck_assert_int_eq(wr_frame_put_body(b, 1, "ab", 2, FRAME_MAX), 0);
    check_raw(b);
    evbuffer_free(b);

    /* more body than the header said */
    b = evbuffer_new();
    put_publish_method(b, 1, "", "q", false);
    ck_assert_int_eq(wr_frame_put_header(b, 1, 2, &p), 0);
    ck_assert_int_eq(wr_frame_put_body(b, 1, "abc", 3, FRAME_MAX), 0);
    check_raw(b);
    evbuffer_free(b);

    /* a header without its method, bodies without either */
    b = evbuffer_new();
    ck_assert_int_eq(wr_frame_put_header(b, 1, 2, &p), 0);
    ck_assert_int_eq(wr_frame_put_body(b, 1, "ab", 2, FRAME_MAX), 0);
    check_raw(b);
    evbuffer_free(b);

    /* immediate = true: the core answers 540 */
    b = evbuffer_new();
    {
        struct wr_method m;
        wr_method_init(&m, WR_BASIC_PUBLISH);
        m.u.basic_publish.immediate = true;
        ck_assert_int_eq(wr_frame_put_method(b, 1, &m), 0);
        ck_assert_int_eq(wr_frame_put_header(b, 1, 0, &p), 0);
    }
    check_raw(b);
    evbuffer_free(b);

    /* channel 0 */
    b = evbuffer_new();
    put_publish(b, 0, "", "q", &p, "a", 1, 10);
    check_raw(b);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_frame_errors_pass_through)
{
    struct wr_basic_props p = no_props();
    struct evbuffer *b = evbuffer_new();
    uint8_t *flat;
    size_t n;

    /* A bad frame-end on the body: the core answers it, not the walker. */
    put_publish(b, 1, "", "q", &p, "ab", 2, 10);
    n = evbuffer_get_length(b);
    flat = evbuffer_pullup(b, -1);
    flat[n - 1] = 0;
    check_raw(b);

    /* A body frame larger than frame_max. */
    evbuffer_drain(b, evbuffer_get_length(b));
    {
        static char big[FRAME_MAX];
        put_publish_method(b, 1, "", "q", false);
        ck_assert_int_eq(wr_frame_put_header(b, 1, sizeof(big), &p), 0);
        ck_assert_int_eq(wr_frame_put_body(b, 1, big, sizeof(big), 0), 0);
    }
    check_raw(b);
    evbuffer_free(b);
}
END_TEST

/* A peer's own type-0 frame (or any unknown type) ends the walking: it and
 * everything after it pass through, publishes included. */
START_TEST(test_peer_marker_ends_walking)
{
    struct wr_basic_props p = no_props();
    struct evbuffer *src = evbuffer_new(), *tail = evbuffer_new(), *want = evbuffer_new();
    struct run r;

    put_publish(src, 1, "", "q", &p, "a", 1, 10);
    want_marker(want, 1, "", "q", false);
    want_marker(tail, 1, "forged", "x", true);
    put_publish(tail, 1, "", "q", &p, "b", 1, 10);
    append_copy(want, tail);
    evbuffer_add_buffer(src, tail);
    run_init(&r, true);
    feed(&r, src, 5);
    ck_assert(same(r.out, want));
    ck_assert_uint_eq(r.q.n, 1);
    ck_assert(r.a.lost);
    run_free(&r);

    /* unknown type 9 */
    evbuffer_drain(want, evbuffer_get_length(want));
    evbuffer_drain(src, evbuffer_get_length(src));
    evbuffer_add(src, "\x09\x00\x01\x00\x00\x00\x00\xce", 8);
    put_publish(src, 1, "", "q", &p, "b", 1, 10);
    append_copy(want, src);
    run_init(&r, true);
    feed(&r, src, 64);
    ck_assert(same(r.out, want));
    ck_assert_uint_eq(r.q.n, 0);
    run_free(&r);
    evbuffer_free(src);
    evbuffer_free(tail);
    evbuffer_free(want);
}
END_TEST

/* Before the core enables it the walker only keeps to frame boundaries:
 * the protocol header and then frames, whole or cut, pass untouched; once
 * enabled mid-stream (even mid-frame) it assembles the next whole
 * publish. */
START_TEST(test_walk_before_enable)
{
    struct wr_basic_props p = no_props();
    struct evbuffer *in = evbuffer_new(), *want = evbuffer_new(), *pub = evbuffer_new();
    struct run r;
    size_t half;

    run_init(&r, false);
    evbuffer_add(in, wr_protocol_header, 4);
    wr_asm_run(&r.a, in, r.out, &r.q, false);
    evbuffer_add(in, wr_protocol_header + 4, 4);
    evbuffer_add(want, wr_protocol_header, 8);
    /* a publish whose body frame contains what looks like a publish */
    put_publish(pub, 1, "", "q", &p, "a", 1, 10);
    {
        size_t n = evbuffer_get_length(pub);
        uint8_t *inner = evbuffer_pullup(pub, -1);
        struct evbuffer *b = evbuffer_new();
        put_publish_method(b, 1, "", "q", false);
        ck_assert_int_eq(wr_frame_put_header(b, 1, n, &p), 0);
        ck_assert_int_eq(wr_frame_put_body(b, 1, inner, n, FRAME_MAX), 0);
        half = evbuffer_get_length(b) - 10;
        append_copy(want, b);
        evbuffer_add(in, evbuffer_pullup(b, -1), half);
        wr_asm_run(&r.a, in, r.out, &r.q, false);
        ck_assert_uint_eq(evbuffer_get_length(in), 0); /* passed, cut or not */
        wr_asm_enable(&r.a, FRAME_MAX, MAX_BODY);      /* mid-frame */
        evbuffer_add(in, (uint8_t *)evbuffer_pullup(b, -1) + half, 10);
        evbuffer_free(b);
    }
    put_publish(in, 2, "x", "y", &p, "zz", 2, 10);
    want_marker(want, 2, "x", "y", false);
    wr_asm_run(&r.a, in, r.out, &r.q, false);
    ck_assert(same(r.out, want));
    ck_assert_uint_eq(r.q.n, 1);
    run_free(&r);
    evbuffer_free(in);
    evbuffer_free(want);
    evbuffer_free(pub);
}
END_TEST

START_TEST(test_marker_parse)
{
    struct evbuffer *b = evbuffer_new();
    struct wr_asm_pub p = {WR_STR("ex"), WR_STR("key"), true, 1234}, q;
    const uint8_t *f;
    uint32_t size;
    char name[256];

    ck_assert_int_eq(wr_asm_put_marker(b, 9, &p), 0);
    f = evbuffer_pullup(b, -1);
    ck_assert_uint_eq(f[0], WR_ASM_FRAME_MARKER);
    ck_assert_uint_eq(wr_load16(f + 1), 9);
    size = wr_load32(f + 3);
    ck_assert_uint_eq(evbuffer_get_length(b), size + WR_FRAME_OVERHEAD);
    ck_assert_int_eq(wr_asm_marker_parse(f + 7, size, &q), 0);
    ck_assert(q.mandatory);
    ck_assert(wr_str_eqc(q.exchange, "ex"));
    ck_assert(wr_str_eqc(q.routing_key, "key"));
    ck_assert_uint_eq(q.count, 1234);
    /* truncated, oversized, garbage */
    for (uint32_t n = 0; n < size; n++)
        ck_assert_int_eq(wr_asm_marker_parse(f + 7, n, &q), WR_EFRAME);
    {
        uint8_t g[64];
        memcpy(g, f + 7, size);
        g[size] = 0;
        ck_assert_int_eq(wr_asm_marker_parse(g, size + 1, &q), WR_EFRAME);
        g[0] = 2;
        ck_assert_int_eq(wr_asm_marker_parse(g, size, &q), WR_EFRAME);
        g[0] = 1;
        wr_store32(g + size - 4, 0); /* a count of none */
        ck_assert_int_eq(wr_asm_marker_parse(g, size, &q), WR_EFRAME);
        wr_store32(g + size - 4, WR_ASM_RUN_MAX + 1); /* more than a run holds */
        ck_assert_int_eq(wr_asm_marker_parse(g, size, &q), WR_EFRAME);
        wr_store32(g + size - 4, WR_ASM_RUN_MAX);
        ck_assert_int_eq(wr_asm_marker_parse(g, size, &q), 0);
        memset(g, 0xff, sizeof(g));
        ck_assert_int_eq(wr_asm_marker_parse(g, sizeof(g), &q), WR_EFRAME);
    }
    p.count = 0;
    ck_assert_int_lt(wr_asm_put_marker(b, 1, &p), 0);
    p.count = WR_ASM_RUN_MAX + 1;
    ck_assert_int_lt(wr_asm_put_marker(b, 1, &p), 0);
    p.count = 1;
    memset(name, 'n', 255);
    name[255] = 0;
    p.exchange = wr_str_c(name);
    p.routing_key = wr_str_c(name);
    evbuffer_drain(b, evbuffer_get_length(b));
    ck_assert_int_eq(wr_asm_put_marker(b, 1, &p), 0);
    f = evbuffer_pullup(b, -1);
    ck_assert_int_eq(wr_asm_marker_parse(f + 7, wr_load32(f + 3), &q), 0);
    ck_assert_uint_eq(q.routing_key.len, 255);
    p.exchange.len = 256;
    ck_assert_int_lt(wr_asm_put_marker(b, 1, &p), 0);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_msgq)
{
    struct wr_msgq a = {0}, b = {0};
    struct wr_msg *m[300];
    for (int i = 0; i < 300; i++)
        ck_assert_ptr_nonnull(m[i] = wr_msg_new_loose(NULL, 0, 1, 0));
    /* wrap around, then grow while wrapped */
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(wr_msgq_push(&a, m[i]), 0);
    for (int i = 0; i < 50; i++)
        ck_assert_ptr_eq(wr_msgq_pop(&a), m[i]);
    for (int i = 60; i < 200; i++)
        ck_assert_int_eq(wr_msgq_push(&a, m[i]), 0);
    /* move into an empty queue, then append to a non-empty one */
    ck_assert_int_eq(wr_msgq_move(&b, &a), 0);
    ck_assert_uint_eq(a.n, 0);
    for (int i = 200; i < 300; i++)
        ck_assert_int_eq(wr_msgq_push(&a, m[i]), 0);
    ck_assert_int_eq(wr_msgq_move(&b, &a), 0);
    for (int i = 50; i < 300; i++) {
        struct wr_msg *x = wr_msgq_pop(&b);
        ck_assert_ptr_eq(x, m[i]);
        if (i >= 250)
            ck_assert_int_eq(wr_msgq_push(&a, x), 0); /* freed by wr_msgq_free */
        else
            wr_msg_free_loose(x);
    }
    ck_assert_ptr_null(wr_msgq_pop(&b));
    for (int i = 0; i < 50; i++)
        wr_msg_free_loose(m[i]);
    wr_msgq_free(&a);
    wr_msgq_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("asm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_publish_becomes_marker_any_slicing);
    tcase_add_test(tc, test_runs_share_a_marker);
    tcase_add_test(tc, test_run_max);
    tcase_add_test(tc, test_properties_carried);
    tcase_add_test(tc, test_left_to_the_core);
    tcase_add_test(tc, test_frame_errors_pass_through);
    tcase_add_test(tc, test_peer_marker_ends_walking);
    tcase_add_test(tc, test_walk_before_enable);
    tcase_add_test(tc, test_marker_parse);
    tcase_add_test(tc, test_msgq);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
