/*
 * check_journal.c - unit tests for the journal: records round trip, group
 * commit reports durability, and recovery survives torn tails, flipped
 * bytes and garbage (the journal is a parser of what is on disk); the
 * figures /metrics reads (size on disk, fsync histogram) add up.
 */
#include "config.h"

#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/histo.h"
#include "store/crc32c.h"
#include "store/journal.h"
#include "wire/buf.h"

struct seen {
    uint32_t n;
    uint8_t types[256];
    uint32_t lens[256];
    uint8_t first[256];
};

static void collect(void *arg, uint32_t seg, uint32_t off, uint8_t type, const uint8_t *p,
                    uint32_t len)
{
    struct seen *s = arg;
    (void)seg;
    (void)off;
    if (s->n < 256) {
        s->types[s->n] = type;
        s->lens[s->n] = len;
        s->first[s->n] = len ? p[0] : 0;
        for (uint32_t i = 0; i < len; i++)
            ck_assert_uint_eq(p[i], (uint8_t)(p[0] + i)); /* payload pattern intact */
    }
    s->n++;
}

static uint64_t synced_at;
static void on_synced(void *arg, uint64_t pos)
{
    (void)arg;
    synced_at = pos;
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/wr-journal-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

/* Write `n` records of growing size; returns the journal directory. */
static char *write_records(int n, uint64_t *last_pos)
{
    char *dir = tmpdir();
    struct event_base *base = event_base_new();
    struct wr_errbuf err;
    struct wr_journal *j = wr_journal_open(dir, 1, 0, base, 0, on_synced, NULL, &err);
    ck_assert_msg(j != NULL, "%s", err.text);
    for (int i = 0; i < n; i++) {
        uint8_t payload[300];
        struct wr_iov iov[2];
        uint32_t seg;
        for (int k = 0; k < (int)sizeof(payload); k++)
            payload[k] = (uint8_t)(i + k);
        iov[0] = (struct wr_iov){payload, (size_t)(i * 7 % 40)};
        iov[1] = (struct wr_iov){payload + i * 7 % 40, (size_t)(i * 13 % 200)};
        *last_pos = wr_journal_append(j, (uint8_t)('a' + i % 26), iov, 2, &seg);
        ck_assert_uint_gt(*last_pos, 0);
        ck_assert_uint_eq(seg, 1);
    }
    wr_journal_want_sync(j);
    wr_journal_flush(j);
    /* The writer thread syncs and tells the loop through a pipe. */
    synced_at = 0;
    for (int spin = 0; spin < 2000 && synced_at < *last_pos; spin++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    ck_assert_uint_ge(synced_at, *last_pos);
    ck_assert_uint_ge(wr_journal_synced(j), *last_pos);
    wr_journal_close(j);
    event_base_free(base);
    return dir;
}

static off_t seg_size(const char *dir)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/00000001.wjl", dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    return sb.st_size;
}

static void cleanup(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(dir);
}

START_TEST(stats_size_and_fsyncs)
{
    uint64_t pos, bytes, sum = 0;
    struct wr_histo h;
    struct wr_errbuf err;
    char *dir = write_records(20, &pos);
    off_t first = seg_size(dir);
    struct event_base *base = event_base_new();
    /* Reopened on the next segment: what is there already counts. */
    struct wr_journal *j = wr_journal_open(dir, 2, 0, base, 0, on_synced, NULL, &err);
    ck_assert_msg(j != NULL, "%s", err.text);
    wr_journal_stats(j, &bytes, &h);
    ck_assert_uint_eq(bytes, (uint64_t)first);
    ck_assert_uint_eq(h.count, 0);
    uint8_t payload[100] = {0};
    struct wr_iov iov = {payload, sizeof(payload)};
    ck_assert_uint_gt(wr_journal_append(j, 'x', &iov, 1, NULL), 0);
    ck_assert_int_eq(wr_journal_sync_now(j), 0);
    wr_journal_stats(j, &bytes, &h);
    ck_assert_uint_eq(bytes, (uint64_t)first + WR_JOURNAL_HEADER + sizeof(payload));
    ck_assert_uint_eq(h.count, 1);
    for (int i = 0; i <= WR_HISTO_N; i++)
        sum += h.bucket[i];
    ck_assert_uint_eq(sum, h.count);
    /* A dropped segment leaves the figure. */
    wr_journal_drop_segment(j, 1);
    wr_journal_stats(j, &bytes, &h);
    ck_assert_uint_eq(bytes, WR_JOURNAL_HEADER + sizeof(payload));
    wr_journal_close(j);
    event_base_free(base);
    cleanup(dir);
}
END_TEST

/* A write that fails (here EFBIG past RLIMIT_FSIZE, as ENOSPC on a full
 * disk) takes back everything no sync covered: the failed batch, and an
 * earlier batch written but not yet synced (its publishes are nacked, so it
 * must not come back at recovery). What a sync covered stays. */
static void failed_write_case(bool sync_first)
{
    char *dir = tmpdir();
    struct event_base *base = event_base_new();
    struct wr_errbuf err;
    struct wr_journal *j = wr_journal_open(dir, 1, 0, base, 0, on_synced, NULL, &err);
    struct rlimit old, lim;
    uint8_t payload[4096];
    struct wr_iov iov = {payload, 100};
    struct seen s = {0};
    struct wr_replay_stats st;
    uint64_t bytes;
    struct wr_histo h;
    off_t first;
    ck_assert_msg(j != NULL, "%s", err.text);
    for (size_t k = 0; k < sizeof(payload); k++)
        payload[k] = (uint8_t)k;
    ck_assert_uint_gt(wr_journal_append(j, 'a', &iov, 1, NULL), 0);
    if (sync_first)
        ck_assert_int_eq(wr_journal_sync_now(j), 0);
    else
        wr_journal_flush(j); /* written, no sync asked for */
    first = seg_size(dir);
    ck_assert_int_eq(first, WR_JOURNAL_HEADER + 100);
    /* The next batch reaches the file in part, then fails. */
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)first + 50;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    iov.len = sizeof(payload);
    ck_assert_uint_gt(wr_journal_append(j, 'b', &iov, 1, NULL), 0);
    wr_journal_flush(j);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert(wr_journal_failed(j));
    ck_assert_uint_eq(wr_journal_append(j, 'c', &iov, 1, NULL), 0); /* nothing more taken */
    wr_journal_stats(j, &bytes, &h);
    ck_assert_uint_eq(bytes, sync_first ? (uint64_t)first : 0);
    wr_journal_close(j);
    event_base_free(base);
    ck_assert_int_eq(seg_size(dir), sync_first ? first : 0);
    ck_assert_int_eq(wr_journal_replay(dir, collect, &s, &st, &err), 0);
    ck_assert_uint_eq(s.n, sync_first ? 1 : 0);
    ck_assert_uint_eq(st.bad_records, 0);
    ck_assert_uint_eq(st.truncated, 0);
    cleanup(dir);
}

START_TEST(failed_write_takes_back_unsynced)
{
    failed_write_case(false);
}
END_TEST

START_TEST(failed_write_keeps_synced)
{
    failed_write_case(true);
}
END_TEST

START_TEST(crc32c_vector)
{
    ck_assert_uint_eq(wr_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(wr_crc32c(0, "", 0), 0);
    /* incremental equals one shot */
    ck_assert_uint_eq(wr_crc32c(wr_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    /* the CPU's instruction (where used) and the tables agree */
    ck_assert_uint_eq(wr_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    {
        uint8_t buf[2000]; /* past three blocks of the three-chain path */
        uint32_t x = 7;
        for (size_t i = 0; i < sizeof(buf); i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        for (size_t off = 0; off < 9; off++)
            for (size_t n = 0; n + off <= sizeof(buf); n += 13)
                ck_assert_uint_eq(wr_crc32c(5, buf + off, n), wr_crc32c_sw(5, buf + off, n));
    }
}
END_TEST

/* A record as journal.c frames it. */
static size_t frame_rec(uint8_t *out, uint8_t type, const void *payload, uint32_t len)
{
    uint32_t crc = wr_crc32c(wr_crc32c(0, &type, 1), payload, len);
    wr_store32(out, 0x574a524cu);
    wr_store32(out + 4, len + 1);
    wr_store32(out + 8, crc);
    out[12] = type;
    memcpy(out + 13, payload, len);
    return 13 + (size_t)len;
}

START_TEST(peek_whole_cut_and_garbage)
{
    uint8_t buf[256];
    size_t total, n = frame_rec(buf, 'S', "0123456789", 10);
    ck_assert_int_eq(wr_journal_peek(buf, n, &total), 1);
    ck_assert_uint_eq(total, n);
    ck_assert_int_eq(wr_journal_peek(buf, n + 5, &total), 1);
    /* cut: the header says how much is needed */
    ck_assert_int_eq(wr_journal_peek(buf, n - 1, &total), 0);
    ck_assert_uint_eq(total, n);
    /* not even a header */
    ck_assert_int_eq(wr_journal_peek(buf, 5, &total), 0);
    ck_assert_uint_eq(total, 13);
    ck_assert_int_eq(wr_journal_peek(buf, 0, &total), 0);
    /* garbage: a wrong magic, a zero or absurd length */
    buf[0] ^= 1;
    ck_assert_int_eq(wr_journal_peek(buf, n, &total), -1);
    buf[0] ^= 1;
    wr_store32(buf + 4, 0);
    ck_assert_int_eq(wr_journal_peek(buf, n, &total), -1);
    wr_store32(buf + 4, 0xFFFFFFF0u);
    ck_assert_int_eq(wr_journal_peek(buf, n, &total), -1);
    /* the next valid record after garbage, checksum included */
    memset(buf, 0xAB, 40);
    memcpy(buf + 7, "WJRL", 4); /* a magic that starts no record */
    n = frame_rec(buf + 40, 'T', "abc", 3);
    ck_assert_uint_eq(wr_journal_next_valid(buf, 40 + n, 0), 40);
    ck_assert_uint_eq(wr_journal_next_valid(buf, 40 + n, 41), 40 + n);
    buf[40 + n - 1] ^= 0x10; /* its payload flipped: not valid any more */
    ck_assert_uint_eq(wr_journal_next_valid(buf, 40 + n, 0), 40 + n);
}
END_TEST

START_TEST(round_trip_and_group_commit)
{
    uint64_t pos;
    char *dir = write_records(50, &pos);
    struct seen s = {0};
    struct wr_replay_stats st;
    struct wr_errbuf err;
    ck_assert_int_eq(wr_journal_replay(dir, collect, &s, &st, &err), 0);
    ck_assert_uint_eq(s.n, 50);
    for (int i = 0; i < 50; i++) {
        ck_assert_uint_eq(s.types[i], 'a' + i % 26);
        ck_assert_uint_eq(s.lens[i], (uint32_t)(i * 7 % 40 + i * 13 % 200));
    }
    ck_assert_uint_eq(st.bad_records, 0);
    ck_assert_uint_eq(st.truncated, 0);
    ck_assert_uint_eq(st.last_segment, 1);
    cleanup(dir);
}
END_TEST

/* A record taken back before the flush is never written: the one after it
 * takes its place; a record that is not the last, or was written, stays. */
START_TEST(take_back_last_unwritten)
{
    char *dir = tmpdir();
    struct event_base *base = event_base_new();
    struct wr_errbuf err;
    struct wr_journal *j = wr_journal_open(dir, 1, 0, base, 0, on_synced, NULL, &err);
    uint8_t payload[64];
    struct wr_iov iov = {payload, sizeof(payload)};
    uint64_t a, b, c, d;
    struct seen s = {0};
    struct wr_replay_stats st;

    ck_assert_msg(j != NULL, "%s", err.text);
    for (int k = 0; k < (int)sizeof(payload); k++)
        payload[k] = (uint8_t)k;
    a = wr_journal_append(j, 'a', &iov, 1, NULL);
    b = wr_journal_append(j, 'b', &iov, 1, NULL);
    ck_assert(!wr_journal_take_back(j, a, sizeof(payload)));     /* not the last */
    ck_assert(!wr_journal_take_back(j, b, sizeof(payload) - 1)); /* wrong length */
    ck_assert(wr_journal_take_back(j, b, sizeof(payload)));
    ck_assert(!wr_journal_take_back(j, b, sizeof(payload))); /* gone already */
    c = wr_journal_append(j, 'c', &iov, 1, NULL);
    ck_assert_uint_eq(c, b); /* 'c' is where 'b' was */
    wr_journal_flush(j);
    ck_assert(!wr_journal_take_back(j, c, sizeof(payload))); /* written */
    d = wr_journal_append(j, 'd', &iov, 1, NULL);
    ck_assert(wr_journal_take_back(j, d, sizeof(payload)));
    wr_journal_want_sync(j);
    wr_journal_flush(j);
    wr_journal_close(j);
    event_base_free(base);
    ck_assert_int_eq(wr_journal_replay(dir, collect, &s, &st, &err), 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_uint_eq(s.types[0], 'a');
    ck_assert_uint_eq(s.types[1], 'c');
    ck_assert_uint_eq(st.bad_records, 0);
    ck_assert_int_eq(seg_size(dir), (off_t)(2 * (13 + sizeof(payload))));
    cleanup(dir);
}
END_TEST

static off_t file_size(const char *dir, uint32_t seg)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%08u.wjl", dir, seg);
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* A journal of 1 MiB segments: past half of the first, the second is
 * prepared (full size, zeros); when the first is full, records go on in it
 * from offset 0 and it keeps its size; replay reads them all and the
 * zeros after them as the end (nothing torn); a prepared segment never
 * written is empty. */
START_TEST(prepared_segments)
{
    char *dir = tmpdir();
    struct event_base *base = event_base_new();
    struct wr_errbuf err;
    struct wr_journal *j = wr_journal_open(dir, 1, 1u << 20, base, 0, on_synced, NULL, &err);
    uint8_t payload[4000];
    struct wr_iov iov = {payload, sizeof(payload)};
    struct seen s = {0};
    struct wr_replay_stats st;
    uint32_t seg = 0, n = 0;
    uint64_t pos = 0;
    ck_assert_msg(j != NULL, "%s", err.text);
    for (size_t k = 0; k < sizeof(payload); k++)
        payload[k] = (uint8_t)(7 + k);
    /* 600 KB into segment 1: segment 2 gets prepared */
    for (; n < 150; n++)
        ck_assert_uint_gt(wr_journal_append(j, 'p', &iov, 1, &seg), 0);
    wr_journal_flush(j);
    for (int spin = 0; spin < 10000 && !wr_journal_next_ready(j); spin++)
        usleep(1000);
    ck_assert(wr_journal_next_ready(j));
    ck_assert_int_eq(file_size(dir, 2), 1 << 20);
    /* segment 1 fills up; the records go on in segment 2, from its start */
    for (; seg == 1; n++)
        pos = wr_journal_append(j, 'p', &iov, 1, &seg);
    ck_assert_uint_eq((uint32_t)pos, 13 + sizeof(payload));
    for (int k = 0; k < 9; k++, n++)
        pos = wr_journal_append(j, 'p', &iov, 1, &seg);
    ck_assert_uint_eq(seg, 2);
    ck_assert_uint_eq((uint32_t)pos, 10 * (13 + sizeof(payload)));
    wr_journal_want_sync(j);
    wr_journal_flush(j);
    synced_at = 0;
    for (int spin = 0; spin < 2000 && synced_at < pos; spin++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    ck_assert_uint_ge(synced_at, pos);
    ck_assert_int_eq(file_size(dir, 2), 1 << 20); /* written in place */
    {
        uint64_t disk;
        struct wr_histo h;
        wr_journal_stats(j, &disk, &h);
        ck_assert_uint_eq(disk, (uint64_t)file_size(dir, 1) + (1u << 20));
    }
    wr_journal_close(j);
    event_base_free(base);
    ck_assert_int_eq(wr_journal_replay(dir, collect, &s, &st, &err), 0);
    ck_assert_uint_eq(s.n, n);
    ck_assert_uint_eq(st.truncated, 0);
    ck_assert_uint_eq(st.skipped_bytes, 0);
    ck_assert_uint_eq(st.bad_records, 0);
    ck_assert(!st.last_empty);
    /* a prepared segment nothing was written to is an empty one */
    {
        char path[600];
        FILE *f;
        snprintf(path, sizeof(path), "%s/00000003.wjl", dir);
        ck_assert_ptr_nonnull(f = fopen(path, "wb"));
        for (int k = 0; k < 4096; k++)
            fputc(0, f);
        fclose(f);
    }
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(wr_journal_replay(dir, collect, &s, &st, &err), 0);
    ck_assert_uint_eq(s.n, n);
    ck_assert_uint_eq(st.truncated, 0);
    ck_assert(st.last_empty);
    ck_assert_uint_eq(st.last_segment, 3);
    cleanup(dir);
}
END_TEST

START_TEST(torn_tail_at_every_offset)
{
    uint64_t pos;
    char *dir = write_records(5, &pos);
    char path[512];
    off_t full = seg_size(dir);
    uint8_t *orig = malloc((size_t)full);
    int fd;
    snprintf(path, sizeof(path), "%s/00000001.wjl", dir);
    fd = open(path, O_RDONLY);
    ck_assert_int_eq(read(fd, orig, (size_t)full), full);
    close(fd);
    /* Record boundaries, from a clean replay. */
    for (off_t cut = 0; cut < full; cut++) {
        struct seen s = {0};
        struct wr_replay_stats st;
        struct wr_errbuf err;
        fd = open(path, O_WRONLY | O_TRUNC);
        ck_assert_int_eq(write(fd, orig, (size_t)cut), cut);
        close(fd);
        ck_assert_int_eq(wr_journal_replay(dir, collect, &s, &st, &err), 0);
        ck_assert_uint_lt(s.n, 5);
        /* What remains on disk is exactly the valid records. */
        ck_assert_int_le(seg_size(dir), cut);
        if (seg_size(dir) < cut)
            ck_assert_uint_eq(st.truncated, 1);
    }
    free(orig);
    cleanup(dir);
}
END_TEST

START_TEST(flipped_byte_drops_one_record)
{
    uint64_t pos;
    char *dir = write_records(9, &pos);
    char path[512];
    off_t full = seg_size(dir);
    uint8_t *b = malloc((size_t)full);
    struct seen s = {0};
    struct wr_replay_stats st;
    struct wr_errbuf err;
    int fd;
    size_t off = 0;

    snprintf(path, sizeof(path), "%s/00000001.wjl", dir);
    fd = open(path, O_RDWR);
    ck_assert_int_eq(read(fd, b, (size_t)full), full);
    /* Walk to the 5th record and flip a byte of its payload. */
    for (int i = 0; i < 4; i++)
        off += 12 + ((size_t)b[off + 4] << 24 | (size_t)b[off + 5] << 16 | (size_t)b[off + 6] << 8 |
                     b[off + 7]);
    b[off + 14] ^= 0x40;
    ck_assert_int_eq(pwrite(fd, b, (size_t)full, 0), full);
    close(fd);
    ck_assert_int_eq(wr_journal_replay(dir, collect, &s, &st, &err), 0);
    ck_assert_uint_eq(s.n, 8);
    ck_assert_uint_eq(st.bad_records, 1);
    ck_assert_uint_eq(s.types[3], 'a' + 3);
    ck_assert_uint_eq(s.types[4], 'a' + 5); /* the 5th is gone, the 6th follows */
    free(b);
    cleanup(dir);
}
END_TEST

START_TEST(garbage_never_crashes)
{
    uint32_t x = 12345;
    for (int round = 0; round < 2000; round++) {
        uint8_t buf[512];
        size_t n = (size_t)(x % sizeof(buf));
        struct seen s = {0};
        struct wr_replay_stats st = {0};
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        /* Sometimes plant a magic so the scanner has something to chew on. */
        if (n > 20 && round % 3 == 0)
            memcpy(buf + n / 2, "WJRL", 4);
        ck_assert_uint_le(wr_journal_scan(buf, n, 1, collect, &s, &st, "garbage"), n);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("journal");
    TCase *t = tcase_create("journal");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, crc32c_vector);
    tcase_add_test(t, peek_whole_cut_and_garbage);
    tcase_add_test(t, prepared_segments);
    tcase_add_test(t, stats_size_and_fsyncs);
    tcase_add_test(t, round_trip_and_group_commit);
    tcase_add_test(t, take_back_last_unwritten);
    tcase_add_test(t, torn_tail_at_every_offset);
    tcase_add_test(t, flipped_byte_drops_one_record);
    tcase_add_test(t, garbage_never_crashes);
    tcase_add_test(t, failed_write_takes_back_unsynced);
    tcase_add_test(t, failed_write_keeps_synced);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
