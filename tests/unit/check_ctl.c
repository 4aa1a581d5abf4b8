/*
 * check_ctl.c - unit tests for the pure parts of warrenctl (src/ctl/):
 * URL parsing and percent-encoding (url.c), typed k=v values and
 * human-readable numbers (value.c), the configuration file parser
 * (conn.c), the HTTP response parser (http.c) and shell completion
 * from the command table (cli.c), each fed truncated,
 * oversized and garbage input as well as the good kind.
 */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/conn.h"
#include "ctl/ctl.h"
#include "ctl/http.h"
#include "ctl/out.h"
#include "ctl/url.h"
#include "ctl/value.h"

#define S(lit) (lit), sizeof(lit) - 1

static bool url_ok(const char *s, struct wr_ctl_url *u)
{
    const char *why = NULL;
    int rc = wr_ctl_url_parse(s, u, &why);
    ck_assert(rc == 0 || (why && *why));
    return rc == 0;
}

START_TEST(url_parsing)
{
    struct wr_ctl_url u;
    ck_assert(url_ok("http://127.0.0.1:15672", &u));
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_uint_eq(u.port, 15672);
    ck_assert(!u.tls);
    ck_assert_str_eq(u.prefix, "");
    ck_assert(url_ok("HTTPS://Rabbit.example.com", &u));
    ck_assert(u.tls);
    ck_assert_uint_eq(u.port, 443);
    ck_assert(url_ok("http://h/", &u));
    ck_assert_uint_eq(u.port, 15672);
    ck_assert_str_eq(u.prefix, "");
    ck_assert(url_ok("http://h:8080/rabbit/api-proxy///", &u));
    ck_assert_str_eq(u.prefix, "/rabbit/api-proxy");
    ck_assert(url_ok("http://[::1]:15672", &u));
    ck_assert_str_eq(u.host, "::1");
    ck_assert(url_ok("http://[fe80::1%25eth0]", &u));

    ck_assert(!url_ok("", &u));
    ck_assert(!url_ok("http://", &u));
    ck_assert(!url_ok("http:/h", &u));
    ck_assert(!url_ok("ftp://h", &u));
    ck_assert(!url_ok("127.0.0.1:15672", &u));
    ck_assert(!url_ok("http://h:", &u));
    ck_assert(!url_ok("http://h:0", &u));
    ck_assert(!url_ok("http://h:65536", &u));
    ck_assert(!url_ok("http://h:99999999999999999999", &u));
    ck_assert(!url_ok("http://h:12a", &u));
    ck_assert(!url_ok("http://h:-1", &u));
    ck_assert(!url_ok("http://user:pw@h", &u));
    ck_assert(!url_ok("http://h?x=1", &u));
    ck_assert(!url_ok("http://h/p#f", &u));
    ck_assert(!url_ok("http://[::1", &u));
    ck_assert(!url_ok("http://[::1]x", &u));
    ck_assert(!url_ok("http://[]:1", &u));
    ck_assert(!url_ok("http://h h", &u));
    ck_assert(!url_ok("http://h/a b", &u));
    ck_assert(!url_ok("http://h/\x1b", &u));

    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big, "http://", 7);
    big[sizeof(big) - 1] = '\0';
    ck_assert(!url_ok(big, &u)); /* host too long */
    memcpy(big, "http://h/", 9);
    ck_assert(!url_ok(big, &u)); /* prefix too long */

    ck_assert_int_eq(wr_ctl_port_parse("1"), 1);
    ck_assert_int_eq(wr_ctl_port_parse("65535"), 65535);
    ck_assert_int_eq(wr_ctl_port_parse("065535"), -1);
    ck_assert_int_eq(wr_ctl_port_parse(""), -1);
    ck_assert_int_eq(wr_ctl_port_parse(NULL), -1);
    ck_assert_int_eq(wr_ctl_port_parse("+80"), -1);
}
END_TEST

START_TEST(url_format_and_percent_encoding)
{
    struct wr_ctl_url u;
    struct wr_ctl_buf b = {0};
    ck_assert(url_ok("https://[::1]:99/x/", &u));
    wr_ctl_url_format(&u, &b);
    ck_assert_str_eq(wr_ctl_buf_str(&b), "https://[::1]:99/x");
    wr_ctl_buf_free(&b);

    wr_ctl_pct_add(&b, "/");
    ck_assert_str_eq(wr_ctl_buf_str(&b), "%2F");
    wr_ctl_buf_free(&b);
    wr_ctl_pct_add(&b, "a b/c?d#e%f&g=h+i");
    ck_assert_str_eq(wr_ctl_buf_str(&b), "a%20b%2Fc%3Fd%23e%25f%26g%3Dh%2Bi");
    wr_ctl_buf_free(&b);
    wr_ctl_pct_add(&b, "Az09-._~");
    ck_assert_str_eq(wr_ctl_buf_str(&b), "Az09-._~");
    wr_ctl_buf_free(&b);
    wr_ctl_pct_add(&b, "\xc3\xa9\x01\xff");
    ck_assert_str_eq(wr_ctl_buf_str(&b), "%C3%A9%01%FF");
    wr_ctl_buf_free(&b);
    wr_ctl_pct_add(&b, "");
    ck_assert_str_eq(wr_ctl_buf_str(&b), "");
    wr_ctl_buf_free(&b);
}
END_TEST

static void typed_is(const char *v, const char *json)
{
    json_t *j = wr_ctl_typed(v);
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    ck_assert_msg(s && !strcmp(s, json), "%s -> %s, not %s", v, s, json);
    free(s);
    json_decref(j);
}

START_TEST(typed_values)
{
    typed_is("10", "10");
    typed_is("-5", "-5");
    typed_is("0", "0");
    typed_is("9223372036854775807", "9223372036854775807");
    typed_is("9223372036854775808", "\"9223372036854775808\""); /* over int64 */
    typed_is("007", "\"007\"");
    typed_is("1.5", "\"1.5\"");
    typed_is("1e3", "\"1e3\"");
    typed_is("-", "\"-\"");
    typed_is("", "\"\"");
    typed_is(" 1", "\" 1\"");
    typed_is("true", "true");
    typed_is("false", "false");
    typed_is("True", "\"True\"");
    typed_is("reject-publish", "\"reject-publish\"");
    json_t *bad = wr_ctl_typed("\xff");
    ck_assert_ptr_null(bad);

    ck_assert_int_eq(wr_ctl_kv_split("k=v"), 1);
    ck_assert_int_eq(wr_ctl_kv_split("k=v=w"), 1);
    ck_assert_int_eq(wr_ctl_kv_split("k="), 1);
    ck_assert_int_eq(wr_ctl_kv_split("=v"), -1);
    ck_assert_int_eq(wr_ctl_kv_split("kv"), -1);
    ck_assert_int_eq(wr_ctl_kv_split(""), -1);

    json_t *o = json_object();
    const char *why = NULL;
    ck_assert_int_eq(wr_ctl_kv_add(o, "x-max-length=10", true, &why), 0);
    ck_assert_int_eq(wr_ctl_kv_add(o, "s=a=b", true, &why), 0);
    ck_assert_int_eq(wr_ctl_kv_add(o, "id=42", false, &why), 0);
    ck_assert_int_eq(wr_ctl_kv_add(o, "novalue", true, &why), -1);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(wr_ctl_kv_add(o, "k=\xc3", true, &why), -1);
    ck_assert_int_eq(wr_ctl_kv_add(o, "\xc3=v", true, &why), -1);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(s, "{\"id\":\"42\",\"s\":\"a=b\",\"x-max-length\":10}");
    free(s);
    json_decref(o);
}
END_TEST

static void count_is(double v, const char *want)
{
    char out[32];
    wr_ctl_human_count(v, out, sizeof(out));
    ck_assert_msg(!strcmp(out, want), "%g -> %s, not %s", v, out, want);
}

static void bytes_is(double v, const char *want)
{
    char out[32];
    wr_ctl_human_bytes(v, out, sizeof(out));
    ck_assert_msg(!strcmp(out, want), "%g -> %s, not %s", v, out, want);
}

START_TEST(human_numbers)
{
    count_is(0, "0");
    count_is(999, "999");
    count_is(1000, "1.0k");
    count_is(12345, "12.3k");
    count_is(123456, "123k");
    count_is(999999, "1.0M");
    count_is(1500000, "1.5M");
    count_is(2.5e9, "2.5G");
    count_is(1e30, "1000000000000E");
    count_is(-1500, "-1.5k");
    count_is(0.4, "0.4");
    count_is(12.25, "12.2");
    bytes_is(0, "0 B");
    bytes_is(512, "512 B");
    bytes_is(1024, "1.0 KiB");
    bytes_is(1536, "1.5 KiB");
    bytes_is(1288490189, "1.2 GiB");
    bytes_is(5e18, "4.3 EiB");

    char tiny[4];
    wr_ctl_human_bytes(1288490189, tiny, sizeof(tiny));
    ck_assert_str_eq(tiny, "1.2"); /* cut, terminated */
    wr_ctl_human_count(HUGE_VAL, tiny, sizeof(tiny));
    ck_assert_str_eq(tiny, "inf");

    ck_assert_int_eq(wr_ctl_unit_of("message_bytes"), WR_CTL_BYTES);
    ck_assert_int_eq(wr_ctl_unit_of("mem_used"), WR_CTL_BYTES);
    ck_assert_int_eq(wr_ctl_unit_of("messages_ready"), WR_CTL_COUNT);
    ck_assert_int_eq(wr_ctl_unit_of("message_stats.publish_details.rate"), WR_CTL_COUNT);
    ck_assert_int_eq(wr_ctl_unit_of("port"), WR_CTL_RAW);
    ck_assert_int_eq(wr_ctl_unit_of("pid"), WR_CTL_RAW);
}
END_TEST

static int conf(const char *text, size_t len, const char *section, struct wr_ctl_layer *l,
                bool *found)
{
    char err[256] = "";
    int rc = wr_ctl_conf_parse(text, len, section, l, found, err, sizeof(err));
    ck_assert(rc == 0 || err[0]);
    return rc;
}

START_TEST(config_file)
{
    static const char good[] = "# warrenctl\n"
                               "[default]\n"
                               "url = http://a:1\n"
                               "\n"
                               "  ; indented comment\n"
                               "[prod]\r\n"
                               "host=rabbit.example.com\r\n"
                               "port = 15673\n"
                               "username = admin\n"
                               "password =  s3cret # not a comment \n"
                               "vhost = /\n"
                               "[prod]\n"
                               "port = 2"; /* no final newline; repeated section */
    struct wr_ctl_layer l;
    bool found;

    ck_assert_int_eq(conf(S(good), "prod", &l, &found), 0);
    ck_assert(found);
    ck_assert_ptr_null(l.url);
    ck_assert_str_eq(l.host, "rabbit.example.com");
    ck_assert_str_eq(l.port, "2");
    ck_assert_str_eq(l.user, "admin");
    ck_assert_str_eq(l.password, "s3cret # not a comment");
    ck_assert_str_eq(l.vhost, "/");
    wr_ctl_layer_free(&l);
    ck_assert_int_eq(conf(S(good), "default", &l, &found), 0);
    ck_assert(found);
    ck_assert_str_eq(l.url, "http://a:1");
    ck_assert_ptr_null(l.host);
    wr_ctl_layer_free(&l);
    ck_assert_int_eq(conf(S(good), "staging", &l, &found), 0);
    ck_assert(!found);
    ck_assert_ptr_null(l.url);
    ck_assert_int_eq(conf("", 0, "default", &l, &found), 0);
    ck_assert(!found);

    static const char *const bad[] = {
        "[default]\nurl\n",          /* no '=' */
        "[default]\ncolour = red\n", /* unknown key */
        "url = http://a\n",          /* before a section */
        "[default\n",                /* unterminated */
        "[]\n",                      /* empty name */
        "[a b]\n",                   /* bad character */
        "[\n",
        "]\n",
        "[default]\n= v\n", /* empty key */
        "[x]\nurl = a\n[y]\nbogus\n", /* an error in another section counts */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        ck_assert_msg(conf(bad[i], strlen(bad[i]), "default", &l, &found) < 0, "%s", bad[i]);
        ck_assert_ptr_null(l.url);
    }
    ck_assert_int_eq(conf(S("[default]\nurl = a\0b\n"), "default", &l, &found), -1);

    /* a section name of 64 bytes is fine, 65 is not */
    char name[80] = "[";
    memset(name + 1, 'n', 64);
    strcpy(name + 65, "]\n");
    ck_assert_int_eq(conf(name, strlen(name), "x", &l, &found), 0);
    strcpy(name + 65, "n]\n");
    ck_assert_int_eq(conf(name, strlen(name), "x", &l, &found), -1);

    /* a line over the limit, and a file over the limit */
    size_t n = WR_CTL_CONF_LINE_MAX + 20;
    char *line = malloc(n + 1);
    memcpy(line, "[a]\nurl = ", 10);
    memset(line + 10, 'x', n - 10);
    line[n] = '\0';
    ck_assert_int_eq(conf(line, n, "a", &l, &found), -1);
    free(line);
    char *huge = calloc(1, WR_CTL_CONF_MAX + 2);
    memset(huge, '\n', WR_CTL_CONF_MAX + 1);
    ck_assert_int_eq(conf(huge, WR_CTL_CONF_MAX + 1, "a", &l, &found), -1);
    ck_assert_int_eq(conf(huge, WR_CTL_CONF_MAX, "a", &l, &found), 0);
    free(huge);

    /* every prefix of the good file parses or fails cleanly */
    for (size_t k = 0; k <= sizeof(good) - 1; k++) {
        if (conf(good, k, "prod", &l, &found) == 0)
            wr_ctl_layer_free(&l);
    }
}
END_TEST

static long parse(const char *buf, size_t len, bool eof, struct wr_ctl_reply *r)
{
    const char *why = NULL;
    long n = wr_ctl_http_parse(buf, len, eof, r, &why);
    ck_assert(n >= 0 || (why && *why));
    return n;
}

START_TEST(http_response_parser)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 7\r\n\r\n{\"a\":1}";
    struct wr_ctl_reply r;

    ck_assert_int_eq(parse(S(ok), false, &r), sizeof(ok) - 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert(!r.close);
    ck_assert_str_eq(r.body, "{\"a\":1}");
    wr_ctl_reply_free(&r);
    /* every truncation needs more, or fails at the end of the connection */
    for (size_t k = 0; k < sizeof(ok) - 1; k++) {
        ck_assert_int_eq(parse(ok, k, false, &r), 0);
        ck_assert_int_eq(parse(ok, k, true, &r), -1);
    }
    /* two responses back to back: the first is taken alone */
    char two[2 * sizeof(ok)];
    memcpy(two, ok, sizeof(ok) - 1);
    memcpy(two + sizeof(ok) - 1, ok, sizeof(ok) - 1);
    ck_assert_int_eq(parse(two, 2 * (sizeof(ok) - 1), false, &r), sizeof(ok) - 1);
    wr_ctl_reply_free(&r);

    static const char chunked[] = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n"
                                  "Connection: close\r\n\r\n"
                                  "4\r\n{\"er\r\n5;ext=1\r\nror\":\r\n3\r\n\"x\"\r\n1\r\n}\r\n"
                                  "0\r\nTrailer: y\r\n\r\n";
    ck_assert_int_eq(parse(S(chunked), false, &r), sizeof(chunked) - 1);
    ck_assert_int_eq(r.status, 404);
    ck_assert(r.close);
    ck_assert_str_eq(r.body, "{\"error\":\"x\"}");
    wr_ctl_reply_free(&r);
    for (size_t k = 0; k < sizeof(chunked) - 1; k++)
        ck_assert_int_eq(parse(chunked, k, false, &r), 0);

    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\n\r\n";
    ck_assert_int_eq(parse(S(cont), false, &r), sizeof(cont) - 1);
    ck_assert_int_eq(r.status, 204);
    ck_assert(r.close); /* HTTP/1.0 */
    ck_assert_uint_eq(r.len, 0);
    wr_ctl_reply_free(&r);

    static const char to_eof[] = "HTTP/1.1 200 OK\r\n\r\nall of it";
    ck_assert_int_eq(parse(S(to_eof), false, &r), 0);
    ck_assert_int_eq(parse(S(to_eof), true, &r), sizeof(to_eof) - 1);
    ck_assert_str_eq(r.body, "all of it");
    wr_ctl_reply_free(&r);

    static const char *const garbage[] = {
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 600 Huh\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(*garbage); i++)
        ck_assert_msg(parse(garbage[i], strlen(garbage[i]), false, &r) == -1, "%s", garbage[i]);

    /* a header that never ends, past the limit */
    size_t n = WR_CTL_HTTP_HEAD_MAX + 100;
    char *big = malloc(n);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', n - 20);
    ck_assert_int_eq(parse(big, n, false, &r), -1);
    free(big);
    ck_assert_int_eq(parse("", 0, true, &r), -1);
    ck_assert_int_eq(parse("", 0, false, &r), 0);
}
END_TEST

START_TEST(cells)
{
    struct wr_ctl_buf b = {0};
    json_t *v = json_string("a\tb\nc\x1b");
    wr_ctl_cell(v, WR_CTL_RAW, true, &b);
    ck_assert_str_eq(wr_ctl_buf_str(&b), "a\\tb\\nc\\x1b");
    json_decref(v);
    wr_ctl_buf_free(&b);
    v = json_pack("[s,i,b]", "x", 2, 1);
    wr_ctl_cell(v, WR_CTL_RAW, true, &b);
    ck_assert_str_eq(wr_ctl_buf_str(&b), "x,2,true");
    json_decref(v);
    wr_ctl_buf_free(&b);
    v = json_integer(1500);
    wr_ctl_cell(v, WR_CTL_COUNT, true, &b);
    wr_ctl_cell(v, WR_CTL_COUNT, false, &b);
    ck_assert_str_eq(wr_ctl_buf_str(&b), "1.5k1500");
    json_decref(v);
    wr_ctl_buf_free(&b);
    wr_ctl_cell(NULL, WR_CTL_RAW, true, &b);
    ck_assert_str_eq(wr_ctl_buf_str(&b), "");
    v = json_pack("{s:{s:{s:f}}}", "message_stats", "publish_details", "rate", 2.5);
    ck_assert(json_real_value(wr_ctl_path_get(v, "message_stats.publish_details.rate")) == 2.5);
    ck_assert_ptr_null(wr_ctl_path_get(v, "message_stats.nope.rate"));
    ck_assert_ptr_null(wr_ctl_path_get(v, "message_stats.publish_details.rate.x"));
    json_decref(v);
    ck_assert_uint_eq(wr_ctl_width("\xc3\xa9t\xc3\xa9"), 3);
}
END_TEST

START_TEST(thousands)
{
    char b[48];
    static const struct {
        long long v;
        const char *s;
    } cases[] = {{0, "0"},           {999, "999"},           {1000, "1,000"},
                 {12000, "12,000"},  {-1234567, "-1,234,567"}, {100000, "100,000"},
                 {LLONG_MAX, "9,223,372,036,854,775,807"},
                 {LLONG_MIN, "-9,223,372,036,854,775,808"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        wr_ctl_thousands(cases[i].v, b, sizeof(b));
        ck_assert_str_eq(b, cases[i].s);
    }
    wr_ctl_thousands(1234567, b, 4); /* cut, terminated */
    ck_assert_str_eq(b, "1,2");
}
END_TEST

/* The candidates for words (the last one being completed), as one line. */
static char *complete(int n, ...)
{
    char *words[16];
    struct wr_ctl_buf out = {0};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 16; i++)
        words[i] = va_arg(ap, char *);
    va_end(ap);
    wr_ctl_complete(n, words, &out);
    for (size_t i = 0; i < out.len; i++)
        if (out.p[i] == '\n')
            out.p[i] = ' ';
    return wr_ctl_buf_take(&out);
}

#define COMPLETES(want, ...)                                                                      \
    do {                                                                                          \
        char *got_ = complete(__VA_ARGS__);                                                       \
        ck_assert_str_eq(got_, want);                                                             \
        free(got_);                                                                               \
    } while (0)

START_TEST(completion)
{
    COMPLETES("queue ", 1, "qu");
    COMPLETES("declare delete definitions dlq ", 1, "d");
    COMPLETES("health-check help ", 1, "he");
    COMPLETES("peek move ", 2, "queue", "");
    COMPLETES("--from --to --count ", 3, "queue", "move", "");
    COMPLETES("--count ", 6, "queue", "move", "--from=a", "--to", "b", "");
    COMPLETES("--arg ", 5, "declare", "queue", "--arg", "a=1", "--ar");
    COMPLETES("--url ", 1, "--ur");
    COMPLETES("--host --help ", 5, "queue", "move", "--from", "a", "--h");
    COMPLETES(":list queues ", 4, "queue", "move", "--from", "a"); /* its value */
    /* values */
    COMPLETES("table tsv json ", 2, "--format", "");
    COMPLETES("--format=tsv ", 1, "--format=ts");
    COMPLETES("classic quorum stream ", 4, "declare", "queue", "--type", "");
    COMPLETES("fanout ", 4, "declare", "exchange", "--type", "f");
    COMPLETES(":list queues ", 4, "queue", "move", "--to", "x");
    COMPLETES(":list queues ", 3, "queue", "peek", "--name=");
    COMPLETES(":list exchanges ", 6, "declare", "binding", "--destination-type", "exchange",
              "--destination", "");
    COMPLETES(":list queues ", 4, "declare", "binding", "--destination", "");
    COMPLETES(":files ", 3, "definitions", "import", "--file=");
    COMPLETES("", 4, "declare", "user", "--password", ""); /* nothing to offer */
    COMPLETES("", 3, "frobnicate", "--name", "");
    COMPLETES("show list declare delete purge publish get close definitions health-check "
              "change-password set queue dlq help ",
              0);
}
END_TEST

START_TEST(completion_forwards_connection_options)
{
    char *got = complete(9, "--url", "http://h:1", "--format", "json", "queue", "move",
                         "--vhost=v", "--from", "");
    ck_assert_str_eq(got, ":list queues --url http://h:1 --vhost=v ");
    free(got);
    /* a command's own --vhost is not the connection's */
    got = complete(5, "definitions", "export", "--vhost", "v", "--fi");
    ck_assert_str_eq(got, "--file ");
    free(got);
    got = complete(6, "--tls", "--help", "dlq", "replay", "--queue", "");
    ck_assert_str_eq(got, ":list queues --tls ");
    free(got);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ctl");
    TCase *t = tcase_create("url");
    tcase_add_test(t, url_parsing);
    tcase_add_test(t, url_format_and_percent_encoding);
    suite_add_tcase(s, t);
    t = tcase_create("values");
    tcase_add_test(t, typed_values);
    tcase_add_test(t, human_numbers);
    tcase_add_test(t, thousands);
    tcase_add_test(t, cells);
    suite_add_tcase(s, t);
    t = tcase_create("config");
    tcase_add_test(t, config_file);
    suite_add_tcase(s, t);
    t = tcase_create("completion");
    tcase_add_test(t, completion);
    tcase_add_test(t, completion_forwards_connection_options);
    suite_add_tcase(s, t);
    t = tcase_create("http");
    tcase_add_test(t, http_response_parser);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
