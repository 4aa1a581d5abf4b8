/*
 * check_defslog.c - unit tests of the definitions log (store/defslog.c):
 * folding lines into a snapshot (order, deletions that take bindings with
 * them, lines the snapshot already holds, queue identities), torn tails,
 * damage in the middle, lines that are intact but wrong, garbage, and the
 * writer's round trip through a real file.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/err.h"
#include "core/errbuf.h"
#include "store/crc32c.h"
#include "store/defslog.h"

/* A snapshot: vhost "/" (last queue id 5), queue a (id 3), exchange x,
 * bindings x -> a and amq.direct -> a, held up to line 2. */
static const char snapshot[] =
    "{\"warren_defs_seq\": 2,"
    " \"vhosts\": [{\"name\": \"/\", \"warren_last_queue_id\": 5}],"
    " \"queues\": [{\"name\": \"a\", \"vhost\": \"/\", \"warren_id\": 3}],"
    " \"exchanges\": [{\"name\": \"x\", \"vhost\": \"/\", \"type\": \"direct\"}],"
    " \"bindings\": [{\"source\": \"x\", \"vhost\": \"/\", \"destination\": \"a\","
    "   \"destination_type\": \"queue\", \"routing_key\": \"k\", \"arguments_raw\": \"\"},"
    "  {\"source\": \"amq.direct\", \"vhost\": \"/\", \"destination\": \"a\","
    "   \"destination_type\": \"queue\", \"routing_key\": \"a\", \"arguments_raw\": \"\"}]}";

static char text[1 << 16];
static size_t text_len;

/* Append one line, its CRC computed; `entry` uses ' for ". */
static void add(unsigned seq, const char *op, const char *kind, const char *entry)
{
    char json[4096], q[2048];
    size_t n = strlen(entry), len;
    ck_assert_uint_lt(n, sizeof q);
    for (size_t i = 0; i <= n; i++)
        q[i] = entry[i] == '\'' ? '"' : entry[i];
    len = (size_t)snprintf(json, sizeof json,
                           "{\"seq\":%u,\"op\":\"%s\",\"kind\":\"%s\",\"entry\":%s}", seq, op, kind,
                           q);
    text_len += (size_t)snprintf(text + text_len, sizeof text - text_len, "%08x %s\n",
                                 (unsigned)wr_crc32c(0, json, len), json);
}

static json_t *doc(void)
{
    json_t *r = json_loads(snapshot, 0, NULL);
    ck_assert_ptr_nonnull(r);
    return r;
}

static bool has(json_t *root, const char *section, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(root, section), i, e)
    {
        const char *v = json_string_value(json_object_get(e, key));
        if (v && !strcmp(v, value))
            return true;
    }
    return false;
}

static void setup(void)
{
    text_len = 0;
    text[0] = '\0';
}

START_TEST(folds_in_order)
{
    json_t *r = doc();
    struct wr_defs_err err;
    uint64_t seq;
    size_t good, lines;

    add(1, "del", "queue", "{'name':'a','vhost':'/','warren_id':3}");   /* held already */
    add(2, "put", "queue", "{'name':'old','vhost':'/','warren_id':4}"); /* held already */
    add(3, "put", "queue", "{'name':'b','vhost':'/','warren_id':9}");
    add(4, "del", "queue", "{'name':'a','vhost':'/','warren_id':3}");
    add(5, "put", "exchange", "{'name':'y','vhost':'/','type':'fanout'}");
    add(6, "put", "binding",
        "{'source':'y','vhost':'/','destination':'b','destination_type':'queue',"
        "'routing_key':'','arguments_raw':''}");
    add(7, "put", "binding",
        "{'source':'y','vhost':'/','destination':'x','destination_type':'exchange',"
        "'routing_key':'r','arguments_raw':''}");
    add(8, "del", "exchange", "{'name':'x','vhost':'/','type':'direct'}");
    add(9, "put", "exchange", "{'name':'x','vhost':'/','type':'topic'}");
    add(10, "put", "queue", "{'name':'a','vhost':'/','warren_id':11}");
    add(11, "del", "queue", "{'name':'gone','vhost':'/','warren_id':12}");
    ck_assert_int_eq(wr_defslog_fold(r, text, text_len, &seq, &good, &lines, &err), 0);
    ck_assert_uint_eq(seq, 11);
    ck_assert_uint_eq(good, text_len);
    ck_assert_uint_eq(lines, 9);
    /* a was deleted, then declared again with a new id; old never was */
    ck_assert(has(r, "queues", "name", "a"));
    ck_assert(has(r, "queues", "name", "b"));
    ck_assert(!has(r, "queues", "name", "old"));
    ck_assert_uint_eq(json_array_size(json_object_get(r, "queues")), 2);
    /* x was deleted and declared again: topic now */
    ck_assert_uint_eq(json_array_size(json_object_get(r, "exchanges")), 2);
    ck_assert(has(r, "exchanges", "type", "topic"));
    /* bindings: x -> a went with a (and with x), amq.direct -> a with a;
     * y -> x went with x; y -> b stays */
    ck_assert_uint_eq(json_array_size(json_object_get(r, "bindings")), 1);
    ck_assert(has(r, "bindings", "destination", "b"));
    /* the vhost's counter covers the deleted queue's id too */
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(json_object_get(r, "vhosts"), 0), "warren_last_queue_id")),
                     12);
    json_decref(r);
}
END_TEST

START_TEST(nothing_new_leaves_the_document)
{
    json_t *r = doc();
    char *before = json_dumps(r, JSON_SORT_KEYS), *after;
    struct wr_defs_err err;
    uint64_t seq;
    size_t good, lines;

    add(2, "del", "queue", "{'name':'a','vhost':'/'}");
    ck_assert_int_eq(wr_defslog_fold(r, text, text_len, &seq, &good, &lines, &err), 0);
    ck_assert_uint_eq(lines, 0);
    ck_assert_uint_eq(seq, 2);
    after = json_dumps(r, JSON_SORT_KEYS);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    json_decref(r);
}
END_TEST

/* Cut anywhere, the log folds to the lines wholly before the cut. */
START_TEST(torn_at_every_byte)
{
    size_t ends[4], n = 0;
    add(3, "put", "queue", "{'name':'b','vhost':'/','warren_id':9}");
    ends[n++] = text_len;
    add(4, "put", "queue", "{'name':'c','vhost':'/','warren_id':10}");
    ends[n++] = text_len;
    add(5, "del", "queue", "{'name':'b','vhost':'/','warren_id':9}");
    ends[n++] = text_len;
    for (size_t cut = 0; cut <= text_len; cut++) {
        json_t *r = doc();
        struct wr_defs_err err;
        uint64_t seq;
        size_t good, lines, want = 0, k = 0;
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, text, cut);
        while (k < n && ends[k] <= cut)
            want = ends[k++];
        ck_assert_int_eq(wr_defslog_fold(r, copy, cut, &seq, &good, &lines, &err), 0);
        ck_assert_uint_eq(good, want);
        ck_assert_uint_eq(lines, k);
        free(copy);
        json_decref(r);
    }
}
END_TEST

START_TEST(damage_before_good_lines_refused)
{
    json_t *r = doc();
    struct wr_defs_err err;
    uint64_t seq;
    size_t good, lines;
    add(3, "put", "queue", "{'name':'b','vhost':'/','warren_id':9}");
    add(4, "put", "queue", "{'name':'c','vhost':'/','warren_id':10}");
    text[30] ^= 0x20;
    ck_assert_int_eq(wr_defslog_fold(r, text, text_len, &seq, &good, &lines, &err), WR_ESYNTAX);
    ck_assert_ptr_nonnull(strstr(err.msg, "line 1"));
    json_decref(r);
    /* the same damage in the last line is a torn tail */
    setup();
    r = doc();
    add(3, "put", "queue", "{'name':'b','vhost':'/','warren_id':9}");
    add(4, "put", "queue", "{'name':'c','vhost':'/','warren_id':10}");
    text[text_len - 5] ^= 0x20;
    ck_assert_int_eq(wr_defslog_fold(r, text, text_len, &seq, &good, &lines, &err), 0);
    ck_assert_uint_eq(lines, 1);
    ck_assert_uint_lt(good, text_len);
    json_decref(r);
}
END_TEST

/* Intact lines (CRC right) that say something wrong: a bug or a forgery,
 * never a torn write. */
START_TEST(intact_but_wrong)
{
    static const struct {
        unsigned seq;
        const char *op, *kind, *entry, *why;
    } cases[] = {
        {3, "upsert", "queue", "{'name':'b','vhost':'/'}", "op"},
        {3, "put", "policy", "{'name':'b','vhost':'/'}", "kind"},
        {3, "put", "queue", "['b']", "entry"},
        {3, "put", "queue", "7", "entry"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *r = doc();
        struct wr_defs_err err;
        uint64_t seq;
        size_t good, lines;
        setup();
        add(cases[i].seq, cases[i].op, cases[i].kind, cases[i].entry);
        ck_assert_int_eq(wr_defslog_fold(r, text, text_len, &seq, &good, &lines, &err), WR_ESYNTAX);
        ck_assert_msg(strstr(err.msg, cases[i].why), "%s", err.msg);
        json_decref(r);
    }
    {
        /* sequence numbers go down */
        json_t *r = doc();
        struct wr_defs_err err;
        uint64_t seq;
        size_t good, lines;
        setup();
        add(5, "put", "queue", "{'name':'b','vhost':'/'}");
        add(4, "put", "queue", "{'name':'c','vhost':'/'}");
        ck_assert_int_eq(wr_defslog_fold(r, text, text_len, &seq, &good, &lines, &err), WR_ESYNTAX);
        ck_assert_ptr_nonnull(strstr(err.msg, "line 2"));
        json_decref(r);
    }
}
END_TEST

START_TEST(garbage)
{
    unsigned s = 12345;
    for (int round = 0; round < 300; round++) {
        json_t *r = doc();
        struct wr_defs_err err;
        uint64_t seq;
        size_t good, lines, n = (size_t)(round * 7 % 600);
        char buf[600];
        int rc;
        for (size_t i = 0; i < n; i++) {
            s = s * 1103515245u + 12345u;
            buf[i] =
                (char)(round % 3 == 0 ? "0123456789abcdef {}\n\""[(s >> 16) % 21] : (int)(s >> 16));
        }
        rc = wr_defslog_fold(r, buf, n, &seq, &good, &lines, &err);
        ck_assert(rc == 0 || rc == WR_ESYNTAX);
        ck_assert(rc < 0 || good <= n);
        json_decref(r);
    }
    {
        /* a snapshot whose sections are not arrays */
        json_t *r = json_loads("{\"queues\": 3}", 0, NULL);
        struct wr_defs_err err;
        uint64_t seq;
        size_t good, lines;
        ck_assert_int_eq(wr_defslog_fold(r, "", 0, &seq, &good, &lines, &err), WR_ESYNTAX);
        json_decref(r);
    }
}
END_TEST

START_TEST(writer_round_trip)
{
    char dir[] = "/tmp/check_defslog-XXXXXX", path[256], buf[8192];
    struct wr_errbuf e;
    struct wr_defslog *l;
    struct wr_defs_err err;
    uint64_t seq;
    size_t good, lines;
    json_t *r;
    FILE *f;
    size_t n;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/definitions.log", dir);
    l = wr_defslog_open(path, 0, 2, &e);
    ck_assert_ptr_nonnull(l);
    wr_defslog_add(l, "queue", false,
                   json_pack("{s:s, s:s, s:i}", "name", "q\nnew", "vhost", "/", "warren_id", 20));
    wr_defslog_add(l, "queue", true, json_pack("{s:s, s:s}", "name", "a", "vhost", "/"));
    ck_assert(wr_defslog_pending(l));
    ck_assert_uint_eq(wr_defslog_seq(l), 4);
    ck_assert_int_eq(wr_defslog_write(l, &e), 0);
    ck_assert(!wr_defslog_pending(l));
    wr_defslog_close(l);

    f = fopen(path, "rb");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    r = doc();
    ck_assert_int_eq(wr_defslog_fold(r, buf, n, &seq, &good, &lines, &err), 0);
    ck_assert_uint_eq(lines, 2);
    ck_assert_uint_eq(seq, 4);
    ck_assert(has(r, "queues", "name", "q\nnew"));
    ck_assert(!has(r, "queues", "name", "a"));
    json_decref(r);

    /* reopened with a torn tail to cut; reset empties it */
    f = fopen(path, "ab");
    fputs("0000", f);
    fclose(f);
    l = wr_defslog_open(path, n, 4, &e);
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(wr_defslog_size(l), n);
    wr_defslog_add(l, "exchange", false, NULL); /* out of memory: broken */
    ck_assert(wr_defslog_pending(l));
    ck_assert_int_eq(wr_defslog_write(l, &e), WR_EIO);
    ck_assert_int_eq(wr_defslog_reset(l, &e), 0);
    ck_assert_uint_eq(wr_defslog_size(l), 0);
    ck_assert(!wr_defslog_pending(l));
    wr_defslog_close(l);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("defslog");
    TCase *tc = tcase_create("fold");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, folds_in_order);
    tcase_add_test(tc, nothing_new_leaves_the_document);
    tcase_add_test(tc, torn_at_every_byte);
    tcase_add_test(tc, damage_before_good_lines_refused);
    tcase_add_test(tc, intact_but_wrong);
    tcase_add_test(tc, garbage);
    tcase_add_test(tc, writer_round_trip);
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
