/*
 * check_iopool.c - unit tests for the I/O threads' message blocks going
 * back to them (net/io.h, wr_iopool_take_releases): blocks an I/O thread
 * made and the core let go of in one long turn, with no request to any
 * thread meanwhile (a purge, or a turn delivering tens of thousands), go
 * back to the threads in batches pushed mid-turn and are freed there, not
 * on the core; the rest go at the next tick, which says when all are
 * freed (the broker gives memory back only then). Run under ASan (make check-asan), a block lost on
 * the way is a leak; under TSan, a block touched by two threads at once a race.
 */
#include "config.h"

#include <check.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "broker/msg.h"
#include "net/io.h"

static const uint8_t props[] = {0x10, 0x00, 0x02}; /* delivery_mode 2 */

/* More than three pushes' worth (16384 each), and under the bound. */
#define N 50000

static struct wr_msg **blocks;

/* An I/O thread's blocks: made on a thread marked remote. */
static void *make_remote(void *arg)
{
    (void)arg;
    wr_msg_thread_remote();
    for (size_t i = 0; i < N; i++)
        if (!(blocks[i] = wr_msg_new_loose(props, sizeof(props), 16, 0)))
            return NULL;
    return blocks;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(blocks_go_back_in_a_long_turn)
{
    struct event_base *base = event_base_new();
    struct wr_iopool *p;
    struct wr_msgs pool;
    struct wr_iopool_rel_stats st;
    pthread_t t;
    void *got;
    double deadline;

    ck_assert_ptr_nonnull(base);
    ck_assert_ptr_nonnull(p = wr_iopool_new(base, 2, WR_IO_THREADS));
    wr_msgs_init(&pool);
    wr_iopool_take_releases(p, &pool);
    ck_assert_ptr_nonnull(blocks = calloc(N, sizeof(*blocks)));
    ck_assert_int_eq(pthread_create(&t, NULL, make_remote, NULL), 0);
    ck_assert_int_eq(pthread_join(t, &got), 0);
    ck_assert_ptr_nonnull(got);
    for (size_t i = 0; i < N; i++)
        ck_assert_int_eq(wr_msg_adopt(&pool, blocks[i], WR_STR("ex"), WR_STR("key")), 0);
    ck_assert_uint_eq(pool.count, N);

    /* One turn of the core: every block let go, no request made. */
    for (size_t i = 0; i < N; i++)
        wr_msg_unref(blocks[i]);
    ck_assert_uint_eq(pool.count, 0);
    ck_assert_uint_eq(pool.bytes, 0);
    wr_iopool_rel_stats(p, &st);
    ck_assert_uint_eq(st.freed_core, 0);
    ck_assert_uint_ge(st.batches, 1);
    ck_assert_uint_lt(st.gathered, N);

    /* The threads free what they were handed (woken for it). */
    deadline = now_s() + 30;
    do {
        wr_iopool_rel_stats(p, &st);
        if (st.freed_threads + st.gathered == N)
            break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    } while (now_s() < deadline);
    ck_assert_uint_eq(st.freed_threads + st.gathered, N);
    ck_assert_uint_eq(st.freed_core, 0);
    ck_assert_uint_gt(st.gathered, 0); /* (N is no multiple of a push) */

    /* The tick: the rest goes too, and once all is freed nothing is
     * pending (the broker then gives the memory back). */
    deadline = now_s() + 30;
    while (wr_iopool_releases_pending(p) && now_s() < deadline)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    ck_assert(!wr_iopool_releases_pending(p));
    wr_iopool_rel_stats(p, &st);
    ck_assert_uint_eq(st.gathered, 0);
    ck_assert_uint_eq(st.freed_threads, N);
    ck_assert_uint_eq(st.freed_core, 0);

    wr_iopool_free(p);
    wr_msgs_fini(&pool);
    event_base_free(base);
    free(blocks);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("iopool");
    TCase *t = tcase_create("iopool");
    SRunner *r;
    int failed;
    tcase_set_timeout(t, 60);
    tcase_add_test(t, blocks_go_back_in_a_long_turn);
    suite_add_tcase(s, t);
    r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
