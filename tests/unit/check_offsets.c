/*
 * check_offsets.c - unit tests for stream-offsets.log (store/offsets.h):
 * records round trip through put, flush, close and open; the last record
 * of a name is read last; a rewrite keeps only what is put during it;
 * truncated, flipped and garbage files are cut at the last good record.
 */
#include "config.h"

#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/offsets.h"

struct got {
    size_t n;
    uint64_t qid[64], next[64];
    char name[64][256];
};

static void on_rec(void *arg, uint64_t qid, uint64_t next, const char *name, uint8_t len)
{
    struct got *g = arg;
    if (g->n < 64) {
        g->qid[g->n] = qid;
        g->next[g->n] = next;
        memcpy(g->name[g->n], name, len);
        g->name[g->n][len] = '\0';
    }
    g->n++;
}

static char *tmpfile_path(void)
{
    char *d = strdup("/tmp/wr-offsets-XXXXXX"), *p;
    ck_assert_ptr_nonnull(mkdtemp(d));
    p = malloc(strlen(d) + 32);
    sprintf(p, "%s/stream-offsets.log", d);
    free(d);
    return p;
}

static void cleanup(char *path)
{
    char cmd[600];
    char *slash = strrchr(path, '/');
    *slash = '\0';
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
    free(path);
}

static struct wr_offsets *open_at(const char *path, struct event_base *base, struct got *g)
{
    struct wr_errbuf err;
    struct wr_offsets *o;
    memset(g, 0, sizeof(*g));
    o = wr_offsets_open(path, base, on_rec, g, &err);
    ck_assert_msg(o != NULL, "%s", err.text);
    return o;
}

static off_t size_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

START_TEST(round_trip)
{
    char *path = tmpfile_path();
    struct event_base *base = event_base_new();
    struct got g;
    struct wr_offsets *o = open_at(path, base, &g);
    ck_assert_uint_eq(g.n, 0);
    wr_offsets_put(o, 3, 10, "worker", 6);
    wr_offsets_put(o, 3, 12, "worker", 6);
    wr_offsets_flush(o);
    wr_offsets_put(o, 9, 0, "", 0);
    wr_offsets_close(o); /* flushes what was put */
    o = open_at(path, base, &g);
    ck_assert_uint_eq(g.n, 3);
    ck_assert_uint_eq(g.qid[1], 3);
    ck_assert_uint_eq(g.next[1], 12); /* the later one comes later */
    ck_assert_str_eq(g.name[1], "worker");
    ck_assert_uint_eq(g.qid[2], 9);
    ck_assert_str_eq(g.name[2], "");
    /* appends after what was there */
    wr_offsets_put(o, 4, 1, "a", 1);
    wr_offsets_close(o);
    o = open_at(path, base, &g);
    ck_assert_uint_eq(g.n, 4);
    wr_offsets_close(o);
    event_base_free(base);
    cleanup(path);
}
END_TEST

START_TEST(rewrite_keeps_what_is_put)
{
    char *path = tmpfile_path();
    struct event_base *base = event_base_new();
    struct wr_errbuf err;
    struct got g;
    struct wr_offsets *o = open_at(path, base, &g);
    char name[255];
    memset(name, 'n', sizeof(name));
    for (int i = 0; i < 5000; i++)
        wr_offsets_put(o, 1, (uint64_t)i, name, 255);
    wr_offsets_flush(o);
    ck_assert(wr_offsets_want_rewrite(o)); /* past 1 MiB */
    ck_assert_int_eq(wr_offsets_rewrite_begin(o, &err), 0);
    wr_offsets_put(o, 1, 4999, name, 255);
    ck_assert_int_eq(wr_offsets_rewrite_done(o, &err), 0);
    ck_assert(!wr_offsets_want_rewrite(o));
    ck_assert_int_eq(size_of(path), 21 + 255);
    wr_offsets_put(o, 2, 7, "b", 1); /* the new file takes appends */
    wr_offsets_close(o);
    o = open_at(path, base, &g);
    ck_assert_uint_eq(g.n, 2);
    ck_assert_uint_eq(g.next[0], 4999);
    ck_assert_uint_eq(g.qid[1], 2);
    wr_offsets_close(o);
    event_base_free(base);
    cleanup(path);
}
END_TEST

/* Every cut of a two-record file keeps exactly the whole records before
 * it, and the file is cut there (appends follow the good prefix). */
START_TEST(truncated_at_every_offset)
{
    char *path = tmpfile_path();
    struct event_base *base = event_base_new();
    struct got g;
    struct wr_offsets *o = open_at(path, base, &g);
    uint8_t buf[256];
    int fd;
    ssize_t n;
    wr_offsets_put(o, 3, 10, "worker", 6);
    wr_offsets_put(o, 4, 11, "other", 5);
    wr_offsets_close(o);
    fd = open(path, O_RDONLY);
    n = read(fd, buf, sizeof(buf));
    close(fd);
    ck_assert_int_eq(n, 27 + 26);
    for (ssize_t cut = 0; cut <= n; cut++) {
        size_t want = cut < 27 ? 0 : cut < 53 ? 1 : 2;
        fd = open(path, O_WRONLY | O_TRUNC);
        ck_assert_int_eq(write(fd, buf, (size_t)cut), cut);
        close(fd);
        o = open_at(path, base, &g);
        ck_assert_uint_eq(g.n, want);
        ck_assert_int_eq(size_of(path), want == 0 ? 0 : want == 1 ? 27 : 53);
        wr_offsets_close(o);
    }
    event_base_free(base);
    cleanup(path);
}
END_TEST

START_TEST(flipped_and_garbage)
{
    uint8_t buf[600];
    struct got g = {0};
    char *path = tmpfile_path();
    struct event_base *base = event_base_new();
    struct wr_offsets *o = open_at(path, base, &g);
    int fd;
    ssize_t n;
    wr_offsets_put(o, 3, 10, "worker", 6);
    wr_offsets_put(o, 4, 11, "other", 5);
    wr_offsets_close(o);
    fd = open(path, O_RDONLY);
    n = read(fd, buf, sizeof(buf));
    close(fd);
    /* a flipped bit anywhere in the second record drops it, and only it */
    for (ssize_t i = 27; i < n; i++) {
        buf[i] ^= 0x10;
        memset(&g, 0, sizeof(g));
        ck_assert_uint_eq(wr_offsets_scan(buf, (size_t)n, on_rec, &g), 27);
        ck_assert_uint_eq(g.n, 1);
        buf[i] ^= 0x10;
    }
    /* a length byte claiming more than is there (an oversized name) */
    buf[27 + 4] = 255;
    memset(&g, 0, sizeof(g));
    ck_assert_uint_eq(wr_offsets_scan(buf, (size_t)n, on_rec, &g), 27);
    /* garbage */
    srand(7);
    for (int round = 0; round < 200; round++) {
        size_t len = (size_t)(rand() % (int)sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rand();
        memset(&g, 0, sizeof(g));
        ck_assert_uint_le(wr_offsets_scan(buf, len, on_rec, &g), len);
    }
    event_base_free(base);
    cleanup(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("offsets");
    TCase *t = tcase_create("offsets");
    int failed;
    SRunner *r;
    tcase_add_test(t, round_trip);
    tcase_add_test(t, rewrite_keeps_what_is_put);
    tcase_add_test(t, truncated_at_every_offset);
    tcase_add_test(t, flipped_and_garbage);
    suite_add_tcase(s, t);
    r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
