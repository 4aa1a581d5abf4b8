/*
 * check_codec.c - unit tests for the generated method codec, content
 * properties and frames.
 *
 * The method tests are driven by the spec file itself (read with jansson):
 * every method listed there must be known to the codec under the same id and
 * name, and must round-trip with a non-default value in every argument. A
 * method added to the spec but not to the generated code fails here.
 */
#include "config.h"

#include <check.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "wire/field.h"
#include "wire/frame.h"

/* ---- spec-driven encoding of arguments, independent of the generator ---- */

struct enc {
    uint8_t b[4096];
    size_t n;
    int bitpos; /* -1 when no bit octet is open */
    size_t bitidx;
};

static void e_u8(struct enc *e, uint8_t v)
{
    ck_assert_uint_lt(e->n, sizeof(e->b));
    e->b[e->n++] = v;
    e->bitpos = -1;
}

static void e_be(struct enc *e, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        e_u8(e, (uint8_t)(v >> (8 * i)));
}

static void e_bytes(struct enc *e, const void *p, size_t n)
{
    ck_assert_uint_le(e->n + n, sizeof(e->b));
    memcpy(e->b + e->n, p, n);
    e->n += n;
    e->bitpos = -1;
}

static void e_bit(struct enc *e, int v)
{
    if (e->bitpos < 0 || e->bitpos == 8) {
        e_u8(e, 0);
        e->bitidx = e->n - 1;
        e->bitpos = 0;
    }
    if (v)
        e->b[e->bitidx] |= (uint8_t)(1u << e->bitpos);
    e->bitpos++;
}

static const char *arg_type(json_t *spec, json_t *arg)
{
    json_t *t = json_object_get(arg, "type");
    if (t)
        return json_string_value(t);
    const char *dom = json_string_value(json_object_get(arg, "domain"));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(spec, "domains"), i, d)
    {
        if (strcmp(json_string_value(json_array_get(d, 0)), dom) == 0)
            return json_string_value(json_array_get(d, 1));
    }
    ck_abort_msg("unknown domain %s", dom);
    return NULL;
}

/* When >= 0, encode_args writes `bad_str` (bad_len bytes) as the short
 * string argument at this index instead of its usual value. */
static int bad_arg = -1;
static const char *bad_str;
static size_t bad_len;

/* Encode a method with distinctive non-default values; `seed` varies them. */
static void encode_args(json_t *spec, int cid, int mid, json_t *args, unsigned seed, struct enc *e)
{
    size_t i;
    json_t *a;
    e->n = 0;
    e->bitpos = -1;
    e_be(e, (uint64_t)cid, 2);
    e_be(e, (uint64_t)mid, 2);
    json_array_foreach(args, i, a)
    {
        const char *t = arg_type(spec, a);
        unsigned k = seed * 31u + (unsigned)i;
        if (strcmp(t, "bit") == 0) {
            e_bit(e, (int)((seed >> (i % 8)) & 1u));
        } else if (strcmp(t, "octet") == 0) {
            e_u8(e, (uint8_t)(0xA5u ^ k));
        } else if (strcmp(t, "short") == 0) {
            e_be(e, 0xBEEFu ^ k, 2);
        } else if (strcmp(t, "long") == 0) {
            e_be(e, 0xDEADBEEFu ^ k, 4);
        } else if (strcmp(t, "longlong") == 0 || strcmp(t, "timestamp") == 0) {
            e_be(e, 0x0123456789ABCDEFull ^ k, 8);
        } else if (strcmp(t, "shortstr") == 0 && (int)i == bad_arg) {
            e_u8(e, (uint8_t)bad_len);
            e_bytes(e, bad_str, bad_len);
        } else if (strcmp(t, "shortstr") == 0) {
            char s[64];
            int n =
                snprintf(s, sizeof(s), "v%u-%s", k, json_string_value(json_object_get(a, "name")));
            e_u8(e, (uint8_t)n);
            e_bytes(e, s, (size_t)n);
        } else if (strcmp(t, "longstr") == 0) {
            static const char s[] = "long\0string with a NUL";
            e_be(e, sizeof(s) - 1 + (k % 5), 4);
            e_bytes(e, s, sizeof(s) - 1);
            e_bytes(e, "12345", k % 5);
        } else if (strcmp(t, "table") == 0) {
            /* {"k": S"v", "n": I k, "t": t true} */
            static const uint8_t body[] = {1,   'k', 'S', 0, 0, 0, 1,   'v', 1, 'n',
                                           'I', 0,   0,   0, 7, 1, 't', 't', 1};
            e_be(e, sizeof(body), 4);
            e_bytes(e, body, sizeof(body));
        } else {
            ck_abort_msg("unhandled type %s", t);
        }
    }
}

static json_t *load_spec(void)
{
    const char *srcdir = getenv("srcdir");
    char path[1024];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/spec/amqp-rabbitmq-0.9.1.json", srcdir ? srcdir : ".");
    json_t *spec = json_load_file(path, 0, &err);
    ck_assert_msg(spec != NULL, "cannot load %s: %s", path, err.text);
    return spec;
}

START_TEST(every_spec_method_round_trips)
{
    json_t *spec = load_spec();
    json_t *cl, *m;
    size_t ci, mi;
    int count = 0;

    json_array_foreach(json_object_get(spec, "classes"), ci, cl)
    {
        int cid = (int)json_integer_value(json_object_get(cl, "id"));
        json_array_foreach(json_object_get(cl, "methods"), mi, m)
        {
            int mid = (int)json_integer_value(json_object_get(m, "id"));
            uint32_t id = (uint32_t)cid << 16 | (uint32_t)mid;
            const struct wr_method_info *info = wr_method_info(id);
            char name[128];
            json_t *args = json_object_get(m, "arguments");

            snprintf(name, sizeof(name), "%s.%s", json_string_value(json_object_get(cl, "name")),
                     json_string_value(json_object_get(m, "name")));
            ck_assert_msg(info != NULL, "method %s (%u) missing from the codec", name, id);
            ck_assert_str_eq(info->name, name);
            ck_assert_int_eq(!!(info->flags & WR_MF_CONTENT),
                             json_is_true(json_object_get(m, "content")));
            ck_assert_int_eq(!!(info->flags & WR_MF_SYNC),
                             json_is_true(json_object_get(m, "synchronous")));
            count++;

            /* 256 seeds walk every combination of up to 8 bits. */
            for (unsigned seed = 0; seed < 256; seed++) {
                struct enc e;
                struct wr_method dm;
                uint8_t out[4096];
                struct wr_wb w = wr_wb_init(out, sizeof(out));

                encode_args(spec, cid, mid, args, seed, &e);
                ck_assert_msg(wr_method_decode(e.b, e.n, &dm) == 0, "%s does not decode", name);
                ck_assert_uint_eq(dm.id, id);
                ck_assert_uint_eq(wr_method_size(&dm), e.n);
                ck_assert_int_eq(wr_method_encode(&w, &dm), 0);
                ck_assert_uint_eq((size_t)(w.p - out), e.n);
                ck_assert_msg(memcmp(out, e.b, e.n) == 0, "%s re-encodes differently", name);

                if (seed != 0)
                    continue;
                /* Every truncation is a frame error (501, as RabbitMQ's "cannot
                 * decode"); so is a trailing byte. */
                for (size_t cut = 0; cut < e.n; cut++) {
                    int rc = wr_method_decode(e.b, cut, &dm);
                    ck_assert_msg(rc == WR_EFRAME, "%s truncated at %zu gave %d", name, cut, rc);
                }
                e.b[e.n] = 0;
                ck_assert_int_eq(wr_method_decode(e.b, e.n + 1, &dm), WR_EFRAME);
                /* Too small an output buffer fails cleanly. */
                w = wr_wb_init(out, e.n - 1);
                ck_assert_int_eq(wr_method_encode(&w, &dm), WR_ENOSPC);
            }
        }
    }
    ck_assert_int_eq(count, WR_METHOD_COUNT);
    json_decref(spec);
}
END_TEST

/* Issue 9 item 5: RabbitMQ 3.10 closes the connection (501 "Malformed
 * UTF-8 in shortstr") when any short string of a method without content is
 * not UTF-8 by its loose rule; basic.publish (and the other content
 * methods) are not checked. Every shortstr of every spec method, malformed
 * in turn; a truncated method stays a frame error whatever its strings. */
START_TEST(shortstr_utf8_checked_as_rabbitmq)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"hostile.\xff\xfe\xc0", 11, false}, /* the name */
        {"a\xc0\x80", 3, false},             /* overlong NUL */
        {"a\xe2\x82", 3, false},             /* cut short */
        {"a\x80", 2, false},                 /* lone continuation */
        {"a\xf8\x88\x80\x80\x80", 6, false}, /* 5-byte form */
        {"a\xf0\x8f\xbf\xbf", 5, false},     /* overlong 4-byte */
        {"nul\0tail", 8, true},              /* NUL is fine */
        {"cr\r\nlf\x01\x7f", 8, true},       /* so are control characters */
        {"a\xed\xa0\x80", 4, true},          /* a surrogate: RabbitMQ takes it */
        {"a\xf4\x90\x80\x80", 5, true},      /* above U+10FFFF: ditto */
        {"\xe4\xb8\xad\xf0\x9f\x90\x87", 7, true},
    };
    json_t *spec = load_spec();
    json_t *cl, *m, *a;
    size_t ci, mi, ai;
    int checked = 0;

    json_array_foreach(json_object_get(spec, "classes"), ci, cl)
    {
        int cid = (int)json_integer_value(json_object_get(cl, "id"));
        json_array_foreach(json_object_get(cl, "methods"), mi, m)
        {
            int mid = (int)json_integer_value(json_object_get(m, "id"));
            bool content = json_is_true(json_object_get(m, "content"));
            json_t *args = json_object_get(m, "arguments");
            json_array_foreach(args, ai, a)
            {
                if (strcmp(arg_type(spec, a), "shortstr") != 0)
                    continue;
                for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                    struct enc e;
                    struct wr_method dm;
                    int want = cases[k].ok || content ? 0 : WR_EUTF8;
                    bad_arg = (int)ai;
                    bad_str = cases[k].s;
                    bad_len = cases[k].len;
                    encode_args(spec, cid, mid, args, 1, &e);
                    ck_assert_msg(wr_method_decode(e.b, e.n, &dm) == want,
                                  "%d.%d arg %zu case %zu: want %d", cid, mid, ai, k, want);
                    ck_assert_int_eq(wr_method_decode(e.b, e.n - 1, &dm), WR_EFRAME);
                    e.b[e.n] = 0;
                    ck_assert_int_eq(wr_method_decode(e.b, e.n + 1, &dm), WR_EFRAME);
                    checked++;
                }
            }
        }
    }
    bad_arg = -1;
    ck_assert_int_gt(checked, 40);
    json_decref(spec);
}
END_TEST

START_TEST(decoded_values_land_in_the_right_fields)
{
    /* basic.publish: ticket 7, exchange "ex", routing key "rk", mandatory, not immediate */
    static const uint8_t pub[] = {0, 60, 0, 40, 0, 7, 2, 'e', 'x', 2, 'r', 'k', 1};
    /* queue.declare: ticket 0, "q", passive=0 durable=1 exclusive=0 auto-delete=1 nowait=1,
     * args {"x-max-length": I 5} */
    static const uint8_t qd[] = {0,   50,  0,   10,  0,   0,   1,   'q', 0x1a, 0,   0,
                                 0,   18,  12,  'x', '-', 'm', 'a', 'x', '-',  'l', 'e',
                                 'n', 'g', 't', 'h', 'I', 0,   0,   0,   5};
    static const uint8_t tune[] = {0, 10, 0, 30, 0x07, 0xff, 0, 2, 0, 0, 0, 60};
    static const uint8_t dlv[] = {0, 60, 0, 60, 3, 'c', 't', 'g', 0, 0,
                                  0, 0,  0, 0,  1, 2,   1,   0,   1, 'k'};
    struct wr_method m;
    struct wr_fv v;
    int64_t iv;

    ck_assert_int_eq(wr_method_decode(pub, sizeof(pub), &m), 0);
    ck_assert_uint_eq(m.id, WR_BASIC_PUBLISH);
    ck_assert_uint_eq(m.u.basic_publish.ticket, 7);
    ck_assert(wr_str_eqc(m.u.basic_publish.exchange, "ex"));
    ck_assert(wr_str_eqc(m.u.basic_publish.routing_key, "rk"));
    ck_assert(m.u.basic_publish.mandatory);
    ck_assert(!m.u.basic_publish.immediate);

    ck_assert_int_eq(wr_method_decode(qd, sizeof(qd), &m), 0);
    ck_assert_uint_eq(m.id, WR_QUEUE_DECLARE);
    ck_assert(wr_str_eqc(m.u.queue_declare.queue, "q"));
    ck_assert(!m.u.queue_declare.passive);
    ck_assert(m.u.queue_declare.durable);
    ck_assert(!m.u.queue_declare.exclusive);
    ck_assert(m.u.queue_declare.auto_delete);
    ck_assert(m.u.queue_declare.nowait);
    ck_assert_int_eq(wr_table_get(m.u.queue_declare.arguments, "x-max-length", &v), 1);
    ck_assert(wr_fv_int(&v, &iv));
    ck_assert_int_eq(iv, 5);

    ck_assert_int_eq(wr_method_decode(tune, sizeof(tune), &m), 0);
    ck_assert_uint_eq(m.u.connection_tune.channel_max, 2047);
    ck_assert_uint_eq(m.u.connection_tune.frame_max, 131072);
    ck_assert_uint_eq(m.u.connection_tune.heartbeat, 60);

    ck_assert_int_eq(wr_method_decode(dlv, sizeof(dlv), &m), 0);
    ck_assert(wr_str_eqc(m.u.basic_deliver.consumer_tag, "ctg"));
    ck_assert_uint_eq(m.u.basic_deliver.delivery_tag, 0x102);
    ck_assert(m.u.basic_deliver.redelivered);
    ck_assert_uint_eq(m.u.basic_deliver.exchange.len, 0);
    ck_assert(wr_str_eqc(m.u.basic_deliver.routing_key, "k"));
}
END_TEST

START_TEST(unknown_method_and_bad_table)
{
    static const uint8_t unknown[] = {0, 60, 0, 99};
    static const uint8_t badclass[] = {0, 77, 0, 10};
    /* exchange.declare with a table whose value type is 'Z' */
    static const uint8_t badtbl[] = {0,   40,  0,   10, 0, 0, 1, 'e', 6, 'd', 'i', 'r',
                                     'e', 'c', 't', 0,  0, 0, 0, 4,   1, 'k', 'Z', 0};
    struct wr_method m;
    ck_assert_int_eq(wr_method_decode(unknown, sizeof(unknown), &m), WR_ENOT_IMPLEMENTED);
    ck_assert_int_eq(wr_method_decode(badclass, sizeof(badclass), &m), WR_ENOT_IMPLEMENTED);
    ck_assert_int_eq(wr_method_decode(badtbl, sizeof(badtbl), &m), WR_ESYNTAX);
    ck_assert_str_eq(wr_method_name(WR_BASIC_NACK), "basic.nack");
    ck_assert_str_eq(wr_method_name(0x12345678), "unknown");
}
END_TEST

START_TEST(method_init_uses_spec_defaults)
{
    struct wr_method m;
    wr_method_init(&m, WR_CONNECTION_START);
    ck_assert_uint_eq(m.u.connection_start.version_minor, 9);
    ck_assert(wr_str_eqc(m.u.connection_start.mechanisms, "PLAIN"));
    ck_assert(wr_str_eqc(m.u.connection_start.locales, "en_US"));
    wr_method_init(&m, WR_EXCHANGE_DECLARE);
    ck_assert(wr_str_eqc(m.u.exchange_declare.type, "direct"));
}
END_TEST

START_TEST(reply_codes)
{
    ck_assert(!wr_reply_code_is_hard(404));
    ck_assert(!wr_reply_code_is_hard(406));
    ck_assert(!wr_reply_code_is_hard(312));
    ck_assert(wr_reply_code_is_hard(501));
    ck_assert(wr_reply_code_is_hard(530));
    ck_assert(wr_reply_code_is_hard(320));
    ck_assert_str_eq(wr_reply_code_name(406), "PRECONDITION_FAILED");
    ck_assert_int_eq(wr_err_reply_code(WR_ENOT_FOUND), 404);
    ck_assert_int_eq(wr_err_reply_code(WR_ENOMEM), 541);
}
END_TEST

/* ---- properties ---- */

static void fill_prop(struct wr_basic_props *p, int i)
{
    static const uint8_t hdr[] = {1, 'h', 'S', 0, 0, 0, 2, 'h', 'v'};
    switch (i) {
    case 0:
        p->content_type = WR_STR("text/plain");
        break;
    case 1:
        p->content_encoding = WR_STR("gzip");
        break;
    case 2:
        p->headers = (struct wr_str){(const char *)hdr, sizeof(hdr)};
        break;
    case 3:
        p->delivery_mode = 2;
        break;
    case 4:
        p->priority = 9;
        break;
    case 5:
        p->correlation_id = WR_STR("corr");
        break;
    case 6:
        p->reply_to = WR_STR("amq.rabbitmq.reply-to");
        break;
    case 7:
        p->expiration = WR_STR("60000");
        break;
    case 8:
        p->message_id = WR_STR("mid-1");
        break;
    case 9:
        p->timestamp = 1700000000;
        break;
    case 10:
        p->type = WR_STR("job");
        break;
    case 11:
        p->user_id = WR_STR("guest");
        break;
    case 12:
        p->app_id = WR_STR("app");
        break;
    case 13:
        p->cluster_id = WR_STR("c1");
        break;
    default:
        ck_abort();
    }
    p->flags |= (uint16_t)(1u << (15 - i));
}

static void props_equal(const struct wr_basic_props *a, const struct wr_basic_props *b)
{
    ck_assert_uint_eq(a->flags, b->flags);
    ck_assert(wr_str_eq(a->content_type, b->content_type));
    ck_assert(wr_str_eq(a->content_encoding, b->content_encoding));
    ck_assert(wr_str_eq(a->headers, b->headers));
    ck_assert_uint_eq(a->delivery_mode, b->delivery_mode);
    ck_assert_uint_eq(a->priority, b->priority);
    ck_assert(wr_str_eq(a->correlation_id, b->correlation_id));
    ck_assert(wr_str_eq(a->reply_to, b->reply_to));
    ck_assert(wr_str_eq(a->expiration, b->expiration));
    ck_assert(wr_str_eq(a->message_id, b->message_id));
    ck_assert_uint_eq(a->timestamp, b->timestamp);
    ck_assert(wr_str_eq(a->type, b->type));
    ck_assert(wr_str_eq(a->user_id, b->user_id));
    ck_assert(wr_str_eq(a->app_id, b->app_id));
    ck_assert(wr_str_eq(a->cluster_id, b->cluster_id));
}

static void props_round_trip(const struct wr_basic_props *p)
{
    uint8_t buf[512];
    struct wr_wb w = wr_wb_init(buf, sizeof(buf));
    struct wr_basic_props d;
    struct wr_rd r;
    size_t n;

    ck_assert_int_eq(wr_basic_props_encode(&w, p), 0);
    n = (size_t)(w.p - buf);
    ck_assert_uint_eq(n, wr_basic_props_size(p));
    r = wr_rd_init(buf, n);
    ck_assert_int_eq(wr_basic_props_decode(&r, &d), 0);
    ck_assert_uint_eq(wr_rd_left(&r), 0);
    props_equal(p, &d);
    for (size_t cut = 0; cut < n; cut++) {
        r = wr_rd_init(buf, cut);
        ck_assert_int_eq(wr_basic_props_decode(&r, &d), WR_ESYNTAX);
    }
}

START_TEST(each_property_alone)
{
    struct wr_basic_props p;
    memset(&p, 0, sizeof(p));
    fill_prop(&p, _i);
    ck_assert_uint_eq(p.flags, 1u << (15 - _i));
    props_round_trip(&p);
}
END_TEST

START_TEST(all_properties_together)
{
    struct wr_basic_props p;
    memset(&p, 0, sizeof(p));
    for (int i = 0; i < WR_BASIC_PROP_COUNT; i++)
        fill_prop(&p, i);
    ck_assert_uint_eq(p.flags, 0xFFFC);
    props_round_trip(&p);
    memset(&p, 0, sizeof(p));
    props_round_trip(&p);
}
END_TEST

START_TEST(property_flags_reserved_bits)
{
    /* continuation bit and the unused bit 1 are refused */
    static const uint8_t cont[] = {0x00, 0x01};
    static const uint8_t bit1[] = {0x00, 0x02};
    struct wr_basic_props d;
    struct wr_rd r = wr_rd_init(cont, sizeof(cont));
    ck_assert_int_eq(wr_basic_props_decode(&r, &d), WR_ESYNTAX);
    r = wr_rd_init(bit1, sizeof(bit1));
    ck_assert_int_eq(wr_basic_props_decode(&r, &d), WR_ESYNTAX);
}
END_TEST

START_TEST(content_header)
{
    /* class 60, weight 0, size 5, flags: delivery-mode, then mode 2 */
    static const uint8_t ok[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x10, 0x00, 2};
    static const uint8_t cls[] = {0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x00, 0x00};
    struct wr_content_header h;
    ck_assert_int_eq(wr_content_header_decode(ok, sizeof(ok), &h), 0);
    ck_assert_uint_eq(h.body_size, 5);
    ck_assert_uint_eq(h.props.delivery_mode, 2);
    ck_assert_uint_eq(h.raw_props.len, 3);
    for (size_t cut = 0; cut < 14; cut++)
        ck_assert_int_eq(wr_content_header_decode(ok, cut, &h), WR_EFRAME);
    ck_assert_int_eq(wr_content_header_decode(ok, 14, &h), WR_ESYNTAX);
    ck_assert_int_eq(wr_content_header_decode(cls, sizeof(cls), &h), WR_EUNEXPECTED_FRAME);
    /* trailing garbage after the properties */
    uint8_t longer[sizeof(ok) + 1];
    memcpy(longer, ok, sizeof(ok));
    longer[sizeof(ok)] = 0xAA;
    ck_assert_int_eq(wr_content_header_decode(longer, sizeof(longer), &h), WR_ESYNTAX);
}
END_TEST

/* ---- frames ---- */

START_TEST(protocol_header)
{
    static const uint8_t good[] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
    static const uint8_t v091_other[] = {'A', 'M', 'Q', 'P', 1, 1, 0, 9};
    ck_assert_int_eq(wr_protocol_header_check(good, 8), 0);
    ck_assert_int_eq(wr_protocol_header_check(good, 5), WR_EAGAIN);
    ck_assert_int_eq(wr_protocol_header_check(v091_other, 8), WR_EFRAME);
    ck_assert_int_eq(wr_protocol_header_check((const uint8_t *)"GET / HTTP/1.1", 8), WR_EFRAME);
}
END_TEST

START_TEST(frame_flat_parse)
{
    struct wr_method m;
    uint8_t buf[256];
    struct wr_frame f;
    long n;

    wr_method_init(&m, WR_CHANNEL_OPEN);
    n = wr_frame_encode_method(buf, sizeof(buf), 3, &m);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(wr_frame_parse(buf, (size_t)n, 4096, &f), n);
    ck_assert_uint_eq(f.type, WR_AMQP_FRAME_METHOD);
    ck_assert_uint_eq(f.channel, 3);
    ck_assert_int_eq(wr_method_decode(f.payload, f.size, &m), 0);
    ck_assert_uint_eq(m.id, WR_CHANNEL_OPEN);
    for (long cut = 0; cut < n; cut++)
        ck_assert_int_eq(wr_frame_parse(buf, (size_t)cut, 4096, &f), WR_EAGAIN);
    buf[n - 1] = 0; /* bad frame-end */
    ck_assert_int_eq(wr_frame_parse(buf, (size_t)n, 4096, &f), WR_EFRAME);
    /* frame_max counts the 8 bytes of overhead */
    buf[n - 1] = WR_AMQP_FRAME_END;
    ck_assert_int_eq(wr_frame_parse(buf, (size_t)n, (uint32_t)n, &f), n);
    ck_assert_int_eq(wr_frame_parse(buf, (size_t)n, (uint32_t)n - 1, &f), WR_EFRAME);
}
END_TEST

START_TEST(frame_header_errors)
{
    struct wr_frame f;
    uint8_t h[7] = {1, 0, 1, 0xff, 0xff, 0xff, 0xff};
    /* a 4 GiB frame is refused from its header alone */
    ck_assert_int_eq(wr_frame_header_parse(h, 131072, &f), WR_EFRAME);
    ck_assert_int_eq(wr_frame_header_parse(h, 0, &f), 0);
    h[0] = 9; /* unknown type */
    h[3] = h[4] = h[5] = h[6] = 0;
    ck_assert_int_eq(wr_frame_header_parse(h, 131072, &f), WR_EFRAME);
    h[0] = WR_AMQP_FRAME_HEARTBEAT; /* heartbeat on channel 1: well formed, conn says 505 */
    ck_assert_int_eq(wr_frame_header_parse(h, 131072, &f), 0);
    ck_assert_uint_eq(f.channel, 1);
    h[2] = 0;
    ck_assert_int_eq(wr_frame_header_parse(h, 131072, &f), 0);
    h[6] = 1; /* heartbeat with payload */
    ck_assert_int_eq(wr_frame_header_parse(h, 131072, &f), WR_EFRAME);
}
END_TEST

START_TEST(frame_evbuffer_peek_and_bodies)
{
    struct evbuffer *out = evbuffer_new();
    struct wr_method m;
    struct wr_frame f;
    uint8_t body[10000], got[10000];
    size_t i, total = 0;
    struct wr_basic_props p;

    for (i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 7);
    wr_method_init(&m, WR_BASIC_PUBLISH);
    m.u.basic_publish.routing_key = WR_STR("key");
    ck_assert_int_eq(wr_frame_put_method(out, 1, &m), 0);
    memset(&p, 0, sizeof(p));
    fill_prop(&p, 3);
    ck_assert_int_eq(wr_frame_put_header(out, 1, sizeof(body), &p), 0);
    ck_assert_int_eq(wr_frame_put_body(out, 1, body, sizeof(body), 4096), 0);
    ck_assert_int_eq(wr_frame_put_heartbeat(out), 0);

    /* Feed the bytes one at a time into a second buffer: the parser must say
     * "not yet" until each frame is complete, then hand it over whole. */
    struct evbuffer *in = evbuffer_new();
    size_t len = evbuffer_get_length(out);
    uint8_t *all = malloc(len);
    evbuffer_remove(out, all, len);
    int frames = 0, bodies = 0;
    for (i = 0; i < len; i++) {
        evbuffer_add(in, all + i, 1);
        int rc;
        while ((rc = wr_frame_peek(in, 4096, &f)) == 1) {
            frames++;
            if (f.type == WR_AMQP_FRAME_METHOD) {
                ck_assert_int_eq(wr_method_decode(f.payload, f.size, &m), 0);
                ck_assert(wr_str_eqc(m.u.basic_publish.routing_key, "key"));
                wr_frame_consume(in, &f);
            } else if (f.type == WR_AMQP_FRAME_HEADER) {
                struct wr_content_header ch;
                ck_assert_int_eq(wr_content_header_decode(f.payload, f.size, &ch), 0);
                ck_assert_uint_eq(ch.body_size, sizeof(body));
                ck_assert_uint_eq(ch.props.delivery_mode, 2);
                wr_frame_consume(in, &f);
            } else if (f.type == WR_AMQP_FRAME_BODY) {
                ck_assert_uint_le(f.size, 4096 - 8);
                wr_frame_take_body(in, &f, got + total);
                total += f.size;
                bodies++;
            } else {
                ck_assert_uint_eq(f.type, WR_AMQP_FRAME_HEARTBEAT);
                wr_frame_consume(in, &f);
            }
        }
        ck_assert_int_eq(rc, 0);
    }
    ck_assert_int_eq(bodies, 3); /* 10000 bytes in 4088-byte frames */
    ck_assert_int_eq(frames, 6);
    ck_assert_uint_eq(total, sizeof(body));
    ck_assert(memcmp(got, body, sizeof(body)) == 0);
    ck_assert_uint_eq(evbuffer_get_length(in), 0);

    /* bad frame-end on a body frame */
    ck_assert_int_eq(wr_frame_put_body(out, 1, body, 10, 4096), 0);
    len = evbuffer_get_length(out);
    evbuffer_remove(out, all, len);
    all[len - 1] = 0x00;
    evbuffer_add(in, all, len);
    ck_assert_int_eq(wr_frame_peek(in, 4096, &f), WR_EFRAME);
    /* an oversized header is refused before its payload arrives */
    evbuffer_drain(in, evbuffer_get_length(in));
    static const uint8_t big[7] = {3, 0, 1, 0x00, 0x10, 0x00, 0x00};
    evbuffer_add(in, big, sizeof(big));
    ck_assert_int_eq(wr_frame_peek(in, 131072, &f), WR_EFRAME);

    free(all);
    evbuffer_free(in);
    evbuffer_free(out);
}
END_TEST

/* The same frames in a buffer of two chunks, cut at every offset: a frame
 * whole in the first chunk is checked in place (its payload pointer handed
 * over, a body's too), one across the cut the slow way (a body's payload
 * NULL, copied out); both give the same frames, and a bad frame-end is
 * refused either way. */
START_TEST(frame_peek_in_place_and_across_chunks)
{
    struct evbuffer *out = evbuffer_new();
    struct wr_method m;
    struct wr_frame f;
    uint8_t body[5000], got[5000], *all;
    size_t len, cut;
    int in_place = 0, across = 0;

    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 13);
    wr_method_init(&m, WR_BASIC_PUBLISH);
    m.u.basic_publish.routing_key = WR_STR("key");
    ck_assert_int_eq(wr_frame_put_method(out, 1, &m), 0);
    ck_assert_int_eq(wr_frame_put_header_raw(out, 1, sizeof(body), NULL, 0), 0);
    ck_assert_int_eq(wr_frame_put_body(out, 1, body, sizeof(body), 2048), 0);
    len = evbuffer_get_length(out);
    all = malloc(len);
    evbuffer_remove(out, all, len);
    for (cut = 0; cut <= len; cut++) {
        struct evbuffer *in = evbuffer_new();
        size_t total = 0;
        int frames = 0, rc;
        evbuffer_add_reference(in, all, cut, NULL, NULL);
        evbuffer_add_reference(in, all + cut, len - cut, NULL, NULL);
        while ((rc = wr_frame_peek(in, 2048, &f)) == 1) {
            frames++;
            if (f.type == WR_AMQP_FRAME_BODY) {
                if (f.payload)
                    in_place++;
                else
                    across++;
                wr_frame_take_body(in, &f, got + total);
                total += f.size;
            } else {
                ck_assert_ptr_nonnull(f.payload);
                if (f.type == WR_AMQP_FRAME_METHOD)
                    ck_assert_int_eq(wr_method_decode(f.payload, f.size, &m), 0);
                wr_frame_consume(in, &f);
            }
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(frames, 2 + 3); /* 5000 bytes in 2040-byte frames */
        ck_assert_uint_eq(total, sizeof(body));
        ck_assert(memcmp(got, body, sizeof(body)) == 0);
        ck_assert_uint_eq(evbuffer_get_length(in), 0);
        evbuffer_free(in);
    }
    ck_assert_int_gt(in_place, 0);
    ck_assert_int_gt(across, 0);

    /* a bad frame-end: in place, and with the frame cut in two */
    all[len - 1] = 0x00;
    for (cut = len - 8; cut <= len; cut += 8) {
        struct evbuffer *in = evbuffer_new();
        size_t last = len - (1 + 7 + (sizeof(body) - 2 * 2040)); /* the last body frame */
        evbuffer_add_reference(in, all + last, cut - last, NULL, NULL);
        evbuffer_add_reference(in, all + cut, len - cut, NULL, NULL);
        ck_assert_int_eq(wr_frame_peek(in, 2048, &f), WR_EFRAME);
        evbuffer_free(in);
    }
    free(all);
    evbuffer_free(out);
}
END_TEST

START_TEST(frame_put_refuses_bad_input)
{
    struct evbuffer *out = evbuffer_new();
    struct wr_method m;
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    wr_method_init(&m, WR_QUEUE_DECLARE);
    m.u.queue_declare.queue = (struct wr_str){longname, sizeof(longname)};
    ck_assert_int_eq(wr_frame_put_method(out, 1, &m), WR_ESYNTAX);
    ck_assert_uint_eq(evbuffer_get_length(out), 0);
    m.id = 0xFFFF0001;
    ck_assert_int_eq(wr_frame_put_method(out, 1, &m), WR_ECOMMAND_INVALID);
    ck_assert_uint_eq(evbuffer_get_length(out), 0);
    evbuffer_free(out);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *t = tcase_create("methods");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, every_spec_method_round_trips);
    tcase_add_test(t, shortstr_utf8_checked_as_rabbitmq);
    tcase_add_test(t, decoded_values_land_in_the_right_fields);
    tcase_add_test(t, unknown_method_and_bad_table);
    tcase_add_test(t, method_init_uses_spec_defaults);
    tcase_add_test(t, reply_codes);
    suite_add_tcase(s, t);
    t = tcase_create("properties");
    tcase_add_loop_test(t, each_property_alone, 0, WR_BASIC_PROP_COUNT);
    tcase_add_test(t, all_properties_together);
    tcase_add_test(t, property_flags_reserved_bits);
    tcase_add_test(t, content_header);
    suite_add_tcase(s, t);
    t = tcase_create("frames");
    tcase_add_test(t, protocol_header);
    tcase_add_test(t, frame_flat_parse);
    tcase_add_test(t, frame_header_errors);
    tcase_add_test(t, frame_evbuffer_peek_and_bodies);
    tcase_add_test(t, frame_peek_in_place_and_across_chunks);
    tcase_add_test(t, frame_put_refuses_bad_input);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
