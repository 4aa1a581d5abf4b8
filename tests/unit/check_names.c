/*
 * check_names.c - unit tests for what Warren does to names a peer chose:
 * the two UTF-8 rules (core/utf8.c), escaping for log lines (wr_log_esc in
 * core/log.c) and RabbitMQ's CR/LF stripping (wire/names.c).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/utf8.h"
#include "wire/names.h"

#define S(lit) (lit), sizeof(lit) - 1

/* RabbitMQ 3.10's rule, as measured on the wire (issue 9): shortest-form
 * sequences of 1 to 4 bytes, surrogates and values up to U+1FFFFF allowed. */
START_TEST(loose_rule_is_rabbitmqs)
{
    ck_assert(wr_utf8_valid(NULL, 0));
    ck_assert(wr_utf8_valid(S("plain ascii, \x01 controls and \x7f")));
    ck_assert(wr_utf8_valid(S("nul\0inside")));
    ck_assert(wr_utf8_valid(S("\xc2\x80")));
    ck_assert(wr_utf8_valid(S("\xe0\xa0\x80")));
    ck_assert(wr_utf8_valid(S("\xed\xa0\x80"))); /* surrogate */
    ck_assert(wr_utf8_valid(S("\xef\xbf\xbf"))); /* non-character */
    ck_assert(wr_utf8_valid(S("\xf0\x90\x80\x80")));
    ck_assert(wr_utf8_valid(S("\xf4\x8f\xbf\xbf")));
    ck_assert(wr_utf8_valid(S("\xf4\x90\x80\x80"))); /* above U+10FFFF */
    ck_assert(wr_utf8_valid(S("\xf7\xbf\xbf\xbf"))); /* U+1FFFFF */

    ck_assert(!wr_utf8_valid(S("hostile.\xff\xfe\xc0")));
    ck_assert(!wr_utf8_valid(S("\x80")));
    ck_assert(!wr_utf8_valid(S("\xc0\x80")));
    ck_assert(!wr_utf8_valid(S("\xc1\xbf")));
    ck_assert(!wr_utf8_valid(S("\xe0\x80\x80")));
    ck_assert(!wr_utf8_valid(S("\xf0\x8f\xbf\xbf")));
    ck_assert(!wr_utf8_valid(S("\xf8\x88\x80\x80\x80")));
    ck_assert(!wr_utf8_valid(S("\xfc\x84\x80\x80\x80\x80")));
    ck_assert(!wr_utf8_valid(S("\xfe")));
    ck_assert(!wr_utf8_valid(S("\xe2\x82"))); /* cut short at the end */
    ck_assert(!wr_utf8_valid(S("\xe2\x82"
                               "a"))); /* cut short mid-string */
}
END_TEST

START_TEST(strict_rule_is_unicodes)
{
    ck_assert(wr_utf8_strict(S("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x90\x87 \xf4\x8f\xbf\xbf")));
    ck_assert(!wr_utf8_strict(S("\xed\xa0\x80")));
    ck_assert(!wr_utf8_strict(S("\xed\xbf\xbf")));
    ck_assert(!wr_utf8_strict(S("\xf4\x90\x80\x80")));
    ck_assert(!wr_utf8_strict(S("\xff")));
    /* Every 1- and 2-byte string: the strict rule never accepts what the
     * loose one refuses. */
    for (unsigned i = 0; i < 65536; i++) {
        uint8_t b[2] = {(uint8_t)(i >> 8), (uint8_t)i};
        if (wr_utf8_strict(b, 2))
            ck_assert(wr_utf8_valid(b, 2));
    }
}
END_TEST

static const char *esc(const char *p, size_t len)
{
    static char buf[WR_LOG_ESC_MAX];
    return wr_log_esc(buf, sizeof(buf), p, len);
}

START_TEST(log_escape)
{
    ck_assert_str_eq(esc(S("plain.name-1")), "plain.name-1");
    ck_assert_str_eq(esc(S("line\nforged 2026-01-01T00:00:00Z error")),
                     "line\\x0aforged 2026-01-01T00:00:00Z error");
    ck_assert_str_eq(esc(S("cr\r\ttab\x1b[31m\x7f")), "cr\\x0d\\x09tab\\x1b[31m\\x7f");
    ck_assert_str_eq(esc(S("nul\0tail")), "nul\\x00tail");
    ck_assert_str_eq(esc(S("back\\slash\\x41")), "back\\\\slash\\\\x41");
    ck_assert_str_eq(esc(S("hostile.\xff\xfe\xc0")), "hostile.\\xff\\xfe\\xc0");
    ck_assert_str_eq(esc(S("caf\xc3\xa9 \xf0\x9f\x90\x87")), "caf\xc3\xa9 \xf0\x9f\x90\x87");
    /* C1 controls (U+0080..U+009F; U+009B is a terminal's CSI) */
    ck_assert_str_eq(esc(S("\xc2\x9b"
                           "2J\xc2\xa0")),
                     "\\xc2\\x9b2J\xc2\xa0");
    /* surrogates and values above U+10FFFF are not Unicode: bytes */
    ck_assert_str_eq(esc(S("\xed\xa0\x80|\xf4\x90\x80\x80")),
                     "\\xed\\xa0\\x80|\\xf4\\x90\\x80\\x80");
    ck_assert_str_eq(esc(S("\xe2\x82"
                           "a")),
                     "\\xe2\\x82a");
    ck_assert_str_eq(esc(NULL, 0), "");
}
END_TEST

START_TEST(log_escape_bounds)
{
    char big[255], out[WR_LOG_ESC_MAX], small[12];
    /* The worst shortstr fits whole in WR_LOG_ESC_MAX. */
    memset(big, 0x01, sizeof(big));
    wr_log_esc(out, sizeof(out), big, sizeof(big));
    ck_assert_uint_eq(strlen(out), 4 * sizeof(big));
    /* Too small a buffer: cut at a whole escape, marked, terminated. */
    ck_assert_str_eq(wr_log_esc(small, sizeof(small), big, sizeof(big)), "\\x01\\x01...");
    ck_assert_str_eq(wr_log_esc(small, sizeof(small), S("exactly 11!")), "exactly 11!");
    ck_assert_str_eq(wr_log_esc(small, sizeof(small), S("twelve bytes")), "twelve b...");
    ck_assert_str_eq(wr_log_esc(small, 3, S("abc")), "");
}
END_TEST

static struct wr_str str(const char *p, size_t n)
{
    return (struct wr_str){p, (uint32_t)n};
}

/* RabbitMQ 3.10 strips CR and LF from queue and exchange names in the
 * declare, delete, bind and unbind methods, never from routing keys, and
 * not in queue.purge, basic.consume, basic.get, basic.publish. */
START_TEST(crlf_stripped_where_rabbitmq_strips)
{
    struct wr_names_buf nb;
    struct wr_method m;

    wr_method_init(&m, WR_QUEUE_BIND);
    m.u.queue_bind.queue = str(S("q\r\nname"));
    m.u.queue_bind.exchange = str(S("\rx\n"));
    m.u.queue_bind.routing_key = str(S("k\r\n"));
    wr_method_strip_crlf(&m, &nb);
    ck_assert(wr_str_eqc(m.u.queue_bind.queue, "qname"));
    ck_assert(wr_str_eqc(m.u.queue_bind.exchange, "x"));
    ck_assert(wr_str_eqc(m.u.queue_bind.routing_key, "k\r\n"));

    wr_method_init(&m, WR_EXCHANGE_UNBIND);
    m.u.exchange_unbind.source = str(S("s\n"));
    m.u.exchange_unbind.destination = str(S("d\r"));
    wr_method_strip_crlf(&m, &nb);
    ck_assert(wr_str_eqc(m.u.exchange_unbind.source, "s"));
    ck_assert(wr_str_eqc(m.u.exchange_unbind.destination, "d"));

    wr_method_init(&m, WR_QUEUE_DECLARE);
    m.u.queue_declare.queue = str(S("\r\n"));
    wr_method_strip_crlf(&m, &nb);
    ck_assert_uint_eq(m.u.queue_declare.queue.len, 0); /* a server-named queue */

    /* A name without CR/LF is not copied. */
    static const char plain[] = "plain";
    wr_method_init(&m, WR_EXCHANGE_DELETE);
    m.u.exchange_delete.exchange = str(S(plain));
    wr_method_strip_crlf(&m, &nb);
    ck_assert_ptr_eq(m.u.exchange_delete.exchange.ptr, plain);

    wr_method_init(&m, WR_QUEUE_PURGE);
    m.u.queue_purge.queue = str(S("q\r\n"));
    wr_method_strip_crlf(&m, &nb);
    ck_assert(wr_str_eqc(m.u.queue_purge.queue, "q\r\n"));

    wr_method_init(&m, WR_BASIC_CONSUME);
    m.u.basic_consume.queue = str(S("q\r\n"));
    wr_method_strip_crlf(&m, &nb);
    ck_assert(wr_str_eqc(m.u.basic_consume.queue, "q\r\n"));

    wr_method_init(&m, WR_BASIC_PUBLISH);
    m.u.basic_publish.exchange = str(S("x\r\n"));
    wr_method_strip_crlf(&m, &nb);
    ck_assert(wr_str_eqc(m.u.basic_publish.exchange, "x\r\n"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("names");
    TCase *t = tcase_create("utf8");
    tcase_add_test(t, loose_rule_is_rabbitmqs);
    tcase_add_test(t, strict_rule_is_unicodes);
    suite_add_tcase(s, t);
    t = tcase_create("log");
    tcase_add_test(t, log_escape);
    tcase_add_test(t, log_escape_bounds);
    suite_add_tcase(s, t);
    t = tcase_create("crlf");
    tcase_add_test(t, crlf_stripped_where_rabbitmq_strips);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
