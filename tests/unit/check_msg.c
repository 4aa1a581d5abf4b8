/*
 * check_msg.c - unit tests for message blocks (broker/msg.h): a message
 * whose body lies in a shared chunk (a stream's records read back) holds
 * the chunk until it goes, is counted in the pool like any other, and a
 * copy of it has a body of its own. A block an I/O thread made (loose:
 * no pool's, no names) is the pool's once adopted, counted and freed as
 * any; made on a thread marked remote (an I/O thread), its last unref
 * hands it to the pool's release instead of freeing it. Run under ASan
 * (make check-asan), a chunk freed too early or never is a failure.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "broker/msg.h"

static const uint8_t props[] = {0x10, 0x00, 0x02}; /* delivery_mode 2 */

START_TEST(shared_body_holds_its_chunk)
{
    struct wr_msgs pool;
    struct wr_chunk *c;
    struct wr_msg *a, *b, *copy;
    wr_msgs_init(&pool);
    ck_assert_ptr_nonnull(c = wr_chunk_new(64));
    memcpy(c->data, "0123456789abcdefghij", 20);
    a = wr_msg_new_shared(&pool, WR_STR("x"), WR_STR("rk"), props, sizeof(props), c->data + 2, 5,
                          c);
    b = wr_msg_new_shared(&pool, WR_STR("x"), WR_STR("rk"), props, sizeof(props), c->data + 10, 3,
                          c);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(c->refs, 3);
    ck_assert(a->flags & WR_MSG_SHARED);
    ck_assert_uint_eq(a->body_len, 5);
    ck_assert_int_eq(memcmp(wr_msg_body(a), "23456", 5), 0);
    ck_assert_int_eq(memcmp(wr_msg_body(b), "abc", 3), 0);
    ck_assert_uint_eq(pool.count, 2);
    /* a copy (another header) has its own body and no chunk */
    ck_assert_ptr_nonnull(copy = wr_msg_with_int_header(a, "x-n", 1));
    ck_assert(!(copy->flags & WR_MSG_SHARED));
    ck_assert_uint_eq(c->refs, 3);
    ck_assert_int_eq(memcmp(wr_msg_body(copy), "23456", 5), 0);
    /* the owner lets go first: the messages keep the bytes */
    wr_chunk_unref(c);
    wr_msg_unref(a);
    ck_assert_int_eq(memcmp(wr_msg_body(b), "abc", 3), 0);
    wr_msg_unref(b); /* the chunk goes with the last */
    wr_msg_unref(copy);
    ck_assert_uint_eq(pool.count, 0);
    ck_assert_uint_eq(pool.bytes, 0);
    wr_msgs_fini(&pool);
}
END_TEST

START_TEST(loose_block_adopted)
{
    struct wr_msgs pool;
    struct wr_msg *m;
    wr_msgs_init(&pool);
    m = wr_msg_new_loose(props, sizeof(props), 5, WR_MSG_PERSISTENT | WR_MSG_EXT);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(m->rkey);
    ck_assert_uint_eq(pool.count, 0);
    memcpy(wr_msg_body(m), "hello", 5);
    ck_assert_int_eq(wr_msg_adopt(&pool, m, WR_STR("ex"), WR_STR("key")), 0);
    ck_assert_uint_eq(pool.count, 1);
    ck_assert_uint_eq(pool.bytes, wr_msg_mem(m));
    ck_assert(wr_str_eqc(wr_msg_exchange(m), "ex"));
    ck_assert(wr_str_eqc(wr_msg_routing_key(m), "key"));
    ck_assert_int_eq(memcmp(wr_msg_body(m), "hello", 5), 0);
    wr_msg_unref(m);
    ck_assert_uint_eq(pool.count, 0);
    ck_assert_uint_eq(pool.bytes, 0);
    /* one never adopted is freed as it is */
    wr_msg_free_loose(wr_msg_new_loose(props, sizeof(props), 3, 0));
    wr_msg_free_loose(NULL);
    wr_msgs_fini(&pool);
}
END_TEST

static void *make_remote(void *arg)
{
    (void)arg;
    wr_msg_thread_remote();
    return wr_msg_new_loose(props, sizeof(props), 4, 0);
}

static struct wr_msg *released;
static int nreleased;

static void release(void *ctx, struct wr_msg *m)
{
    ck_assert_ptr_eq(ctx, &released);
    released = m;
    nreleased++;
}

START_TEST(remote_block_released)
{
    struct wr_msgs pool;
    struct wr_msg *m, *local, *copy;
    pthread_t t;
    void *got;
    wr_msgs_init(&pool);
    pool.release = release;
    pool.release_ctx = &released;
    ck_assert_int_eq(pthread_create(&t, NULL, make_remote, NULL), 0);
    ck_assert_int_eq(pthread_join(t, &got), 0);
    ck_assert_ptr_nonnull(m = got);
    ck_assert(m->flags & WR_MSG_REMOTE);
    memcpy(wr_msg_body(m), "body", 4);
    ck_assert_int_eq(wr_msg_adopt(&pool, m, WR_STR("ex"), WR_STR("key")), 0);
    /* a copy made here is this thread's, whatever the flags it is made from */
    ck_assert_ptr_nonnull(copy = wr_msg_with_int_header(m, "x-n", 1));
    ck_assert(!(copy->flags & WR_MSG_REMOTE));
    wr_msg_ref(m);
    wr_msg_unref(m);
    ck_assert_int_eq(nreleased, 0);
    wr_msg_unref(m); /* the last: to the release, counted out of the pool */
    ck_assert_int_eq(nreleased, 1);
    ck_assert_ptr_eq(released, m);
    ck_assert_uint_eq(pool.count, 1);
    wr_msg_free_loose(released);
    wr_msg_unref(copy); /* freed here */
    ck_assert_int_eq(nreleased, 1);
    local = wr_msg_new(&pool, WR_STR("ex"), WR_STR("key"), props, sizeof(props), 1, 0);
    ck_assert_ptr_nonnull(local);
    ck_assert(!(local->flags & WR_MSG_REMOTE));
    wr_msg_unref(local);
    ck_assert_int_eq(nreleased, 1);
    ck_assert_uint_eq(pool.count, 0);
    ck_assert_uint_eq(pool.bytes, 0);
    wr_msgs_fini(&pool);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msg");
    TCase *t = tcase_create("msg");
    SRunner *r;
    int failed;
    tcase_add_test(t, shared_body_holds_its_chunk);
    tcase_add_test(t, loose_block_adopted);
    tcase_add_test(t, remote_block_released);
    suite_add_tcase(s, t);
    r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
