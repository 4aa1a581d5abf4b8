/*
 * check_deliver.c - unit tests for the deliveries an I/O thread encodes
 * (net/deliver.h): queues of delivery descriptors, appended one after
 * another as turns hand them over, then encoded among the raw output they
 * were queued between. The bytes must be exactly what encoding each
 * delivery in place would have written (the frames built here with
 * wire/frame.h), whatever the raw bytes around them and however the
 * queues were joined; every message is handed back once.
 */
#include "config.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"
#include "net/deliver.h"
#include "wire/frame.h"
#include "wire/methods.gen.h"

static const uint8_t props[] = {0x10, 0x00, 0x02}; /* delivery_mode 2 */
static struct wr_msgs pool;

static struct wr_msg *msg(const char *body)
{
    size_t n = strlen(body);
    struct wr_msg *m = wr_msg_new(&pool, WR_STR("ex"), WR_STR("a.key"), props, sizeof(props), n, 0);
    ck_assert_ptr_nonnull(m);
    memcpy(wr_msg_body(m), body, n);
    return m;
}

/* The delivery written in place (what deliver.c does on the core). */
static void reference(struct evbuffer *out, uint16_t ch, struct wr_msg *m, uint64_t tag,
                      const char *ctag, bool redelivered)
{
    struct wr_method d;
    wr_method_init(&d, WR_BASIC_DELIVER);
    d.u.basic_deliver.consumer_tag = wr_str_c(ctag);
    d.u.basic_deliver.delivery_tag = tag;
    d.u.basic_deliver.redelivered = redelivered;
    d.u.basic_deliver.exchange = wr_msg_exchange(m);
    d.u.basic_deliver.routing_key = wr_msg_routing_key(m);
    ck_assert_int_eq(wr_frame_put_method(out, ch, &d), 0);
    ck_assert_int_eq(wr_frame_put_header_raw(out, ch, m->body_len, wr_msg_props(m), m->props_len),
                     0);
    if (m->body_len)
        ck_assert_int_eq(wr_frame_put_body(out, ch, wr_msg_body(m), m->body_len, 131072), 0);
}

/* Queue a delivery after the raw bytes `raw` of stream `rs` (as deliver.c's
 * defer does), and write its reference encoding to `want`. */
static void queue(struct wr_dlvq *q, struct evbuffer *rs, struct evbuffer *want, const char *raw,
                  uint16_t ch, struct wr_msg *m, uint64_t tag, const char *ctag, bool redelivered)
{
    struct evbuffer *one = evbuffer_new();
    struct wr_dlv *d;
    size_t len;

    evbuffer_add(rs, raw, strlen(raw));
    evbuffer_add(want, raw, strlen(raw));
    reference(one, ch, m, tag, ctag, redelivered);
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 2;
        q->v = realloc(q->v, q->cap * sizeof(*q->v));
    }
    if (q->tags_len + strlen(ctag) > q->tags_cap) {
        q->tags_cap = q->tags_len + (uint32_t)strlen(ctag) + 16;
        q->tags = realloc(q->tags, q->tags_cap);
    }
    d = &q->v[q->n++];
    memset(d, 0, sizeof(*d));
    d->msg = wr_msg_ref(m);
    m->pins++;
    d->props = wr_msg_props(m);
    d->props_len = m->props_len;
    d->body = wr_msg_body(m);
    d->body_len = m->body_len;
    d->exchange = wr_msg_exchange(m).ptr;
    d->xlen = (uint8_t)wr_msg_exchange(m).len;
    d->rkey = wr_msg_routing_key(m).ptr;
    d->rklen = (uint8_t)wr_msg_routing_key(m).len;
    d->tag = tag;
    d->redelivered = redelivered;
    d->channel = ch;
    len = evbuffer_get_length(rs);
    d->raw = len - q->mark;
    q->mark = len;
    d->size = (uint32_t)evbuffer_get_length(one);
    q->bytes += d->size;
    d->ctag_off = q->tags_len;
    d->ctag_len = (uint8_t)strlen(ctag);
    memcpy(q->tags + q->tags_len, ctag, strlen(ctag));
    q->tags_len += (uint32_t)strlen(ctag);
    evbuffer_add_buffer(want, one);
    evbuffer_free(one);
}

static unsigned given_back;

static void give_back(void *arg, struct wr_msg *m)
{
    (void)arg;
    given_back++;
    wr_deliver_release(m);
}

static void assert_same(struct evbuffer *a, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(a);
    ck_assert_uint_eq(n, evbuffer_get_length(b));
    ck_assert_int_eq(memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n), 0);
}

/* Two turns' queues joined (the thread had not taken the first), raw
 * bytes before, between, after and around each delivery, one delivery
 * with an empty body, deliveries back to back. */
START_TEST(joined_queues_encode_in_place)
{
    struct wr_dlvq a = {0}, b = {0};
    struct evbuffer *ra = evbuffer_new(), *rb = evbuffer_new(), *want = evbuffer_new(),
                    *out = evbuffer_new();
    struct wr_msg *m1 = msg("hello"), *m2 = msg(""), *m3 = msg("third body");

    given_back = 0;
    queue(&a, ra, want, "AAAA", 1, m1, 1, "ctag-1", false);
    evbuffer_add(ra, "BB", 2); /* after the last delivery of the first turn */
    evbuffer_add(want, "BB", 2);
    queue(&b, rb, want, "CCC", 2, m2, 7, "amq.ctag-xyz", true);
    queue(&b, rb, want, "", 1, m3, 2, "c", false);
    evbuffer_add(rb, "DD", 2);
    evbuffer_add(want, "DD", 2);
    uint64_t bytes = a.bytes + b.bytes;

    /* as request() does: b's stream follows all of a's raw bytes */
    ck_assert(wr_dlvq_append(&a, evbuffer_get_length(ra), &b));
    evbuffer_add_buffer(ra, rb);
    ck_assert_uint_eq(b.n, 0);
    ck_assert_uint_eq(b.bytes, 0);
    ck_assert_uint_eq(a.n, 3);
    ck_assert_uint_eq(a.bytes, bytes);
    ck_assert_uint_eq(a.mark, evbuffer_get_length(ra) - 2);

    wr_dlvq_encode(&a, ra, out, give_back, NULL);
    assert_same(out, want);
    ck_assert_uint_eq(evbuffer_get_length(ra), 0);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_uint_eq(given_back, 3);
    ck_assert_uint_eq(m1->pins + m2->pins + m3->pins, 0);

    wr_dlvq_free(&a);
    wr_dlvq_free(&b);
    wr_msg_unref(m1);
    wr_msg_unref(m2);
    wr_msg_unref(m3);
    ck_assert_uint_eq(pool.count, 0);
    evbuffer_free(ra);
    evbuffer_free(rb);
    evbuffer_free(want);
    evbuffer_free(out);
}
END_TEST

/* A queue handed to an empty one after raw bytes with no delivery (the
 * arrays are taken over, the raw offset added). */
START_TEST(append_to_empty_after_raw_bytes)
{
    struct wr_dlvq a = {0}, b = {0};
    struct evbuffer *ra = evbuffer_new(), *rb = evbuffer_new(), *want = evbuffer_new(),
                    *out = evbuffer_new();
    struct wr_msg *m1 = msg("x");

    given_back = 0;
    evbuffer_add(ra, "EEEEE", 5); /* a turn with replies only */
    evbuffer_add(want, "EEEEE", 5);
    queue(&b, rb, want, "F", 3, m1, 9, "t", false);
    ck_assert(wr_dlvq_append(&a, evbuffer_get_length(ra), &b));
    evbuffer_add_buffer(ra, rb);
    ck_assert_uint_eq(a.v[0].raw, 6);
    wr_dlvq_encode(&a, ra, out, give_back, NULL);
    assert_same(out, want);
    ck_assert_uint_eq(given_back, 1);

    /* dropped unwritten: handed back all the same */
    queue(&a, ra, want, "G", 3, m1, 10, "t", false);
    wr_dlvq_drop(&a, give_back, NULL);
    ck_assert_uint_eq(given_back, 2);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_uint_eq(a.mark, 0);
    ck_assert_uint_eq(m1->pins, 0);

    wr_dlvq_free(&a);
    wr_dlvq_free(&b);
    wr_msg_unref(m1);
    ck_assert_uint_eq(pool.count, 0);
    evbuffer_free(ra);
    evbuffer_free(rb);
    evbuffer_free(want);
    evbuffer_free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deliver");
    TCase *t = tcase_create("dlvq");
    SRunner *r;
    int failed;

    wr_msgs_init(&pool);
    tcase_add_test(t, joined_queues_encode_in_place);
    tcase_add_test(t, append_to_empty_after_raw_bytes);
    suite_add_tcase(s, t);
    r = srunner_create(s);
    srunner_set_fork_status(r, CK_NOFORK);
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    wr_msgs_fini(&pool);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
