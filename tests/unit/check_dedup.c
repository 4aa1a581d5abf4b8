/*
 * check_dedup.c - unit tests for the deduplication cache (broker/dedup.c):
 * LRU eviction order, TTL expiry, replacing a key, the table under many
 * inserts and removals (backward-shift deletion) against a model, the
 * store being told of every journaled key that goes, memory per key, and
 * the argument checks' refusals.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dedup.h"
#include "broker/persist.h"
#include "core/clock.h"
#include "core/err.h"

/* ---- helpers ---- */

struct tbl {
    uint8_t b[512];
    size_t n;
};

static void t_key(struct tbl *t, const char *k)
{
    t->b[t->n++] = (uint8_t)strlen(k);
    memcpy(t->b + t->n, k, strlen(k));
    t->n += strlen(k);
}

static void t_bool(struct tbl *t, const char *k, bool v)
{
    t_key(t, k);
    t->b[t->n++] = 't';
    t->b[t->n++] = v;
}

static void t_long(struct tbl *t, const char *k, int64_t v)
{
    t_key(t, k);
    t->b[t->n++] = 'l';
    for (int i = 7; i >= 0; i--)
        t->b[t->n++] = (uint8_t)((uint64_t)v >> (8 * i));
}

static void t_str(struct tbl *t, const char *k, const char *v)
{
    uint32_t l = (uint32_t)strlen(v);
    t_key(t, k);
    t->b[t->n++] = 'S';
    for (int i = 3; i >= 0; i--)
        t->b[t->n++] = (uint8_t)(l >> (8 * i));
    memcpy(t->b + t->n, v, l);
    t->n += l;
}

static struct wr_str body(const struct tbl *t)
{
    return (struct wr_str){(const char *)t->b, (uint32_t)t->n};
}

static struct wr_str S(const char *s) {
    return (struct wr_str){s, (uint32_t)strlen(s)};
}

static struct wr_dedup *
cache(uint32_t size)
{
    struct tbl t = {.n = 0};
    t_bool(&t, "x-message-deduplication", true);
    if (size)
        t_long(&t, "x-cache-size", size);
    struct wr_dedup *d = wr_dedup_new(body(&t));
    ck_assert_ptr_nonnull(d);
    return d;
}

/* A store that counts the forgotten records per segment. */
static uint32_t forgotten[8];
static int attached;

static void f_forget(void *ctx, uint32_t seg)
{
    (void)ctx;
    forgotten[seg]++;
}

static void f_attach(void *ctx, struct wr_dedup *d, bool on)
{
    (void)ctx;
    (void)d;
    attached += on ? 1 : -1;
}

static const struct wr_persist fake = {.dedup_forget = f_forget, .dedup_attach = f_attach};

/* ---- tests ---- */

START_TEST(test_lru_order)
{
    struct wr_dedup *d = cache(3);
    ck_assert_uint_eq(d->max, 3);
    ck_assert_int_eq(wr_dedup_add(d, S("a"), 0, 0), 0);
    ck_assert_int_eq(wr_dedup_add(d, S("b"), 0, 0), 0);
    ck_assert_int_eq(wr_dedup_add(d, S("c"), 0, 0), 0);
    ck_assert(wr_dedup_seen(d, S("a"), 1));             /* a is now the most recent */
    ck_assert_int_eq(wr_dedup_add(d, S("d"), 0, 0), 0); /* evicts b */
    ck_assert_uint_eq(d->n, 3);
    ck_assert(!wr_dedup_seen(d, S("b"), 1));
    ck_assert(wr_dedup_seen(d, S("c"), 1));
    ck_assert(wr_dedup_seen(d, S("a"), 1));
    ck_assert(wr_dedup_seen(d, S("d"), 1));
    /* order now, most recent first: d a c; adding e evicts c */
    ck_assert_int_eq(wr_dedup_add(d, S("e"), 0, 0), 0);
    ck_assert(!wr_dedup_seen(d, S("c"), 1));
    ck_assert_str_eq(d->head->key[0] == 'e' ? "e" : "?", "e");
    ck_assert_int_eq(d->tail->key[0], 'a');
    wr_dedup_free(d);
}
END_TEST

START_TEST(test_ttl)
{
    struct wr_dedup *d = cache(0);
    ck_assert_uint_eq(d->max, WR_DEDUP_DEFAULT_SIZE);
    ck_assert_int_eq(d->ttl_ms, -1);
    uint64_t base = wr_now_ms(); /* adding trims expired keys by the real clock */
    ck_assert_int_eq(wr_dedup_add(d, S("k"), base + 5000, 0), 0);
    ck_assert_int_eq(wr_dedup_add(d, S("forever"), 0, 0), 0);
    ck_assert(wr_dedup_seen(d, S("k"), base + 4999));
    ck_assert(!wr_dedup_seen(d, S("k"), base + 5000)); /* expired: and removed */
    ck_assert_uint_eq(d->n, 1);
    ck_assert(wr_dedup_seen(d, S("forever"), UINT64_MAX / 2));
    wr_dedup_free(d);

    /* x-cache-ttl from the arguments, overridden by the message header
     * only in wr_dedup_key (covered by test_dedup.py). */
    struct tbl t = {.n = 0};
    t_bool(&t, "x-message-deduplication", true);
    t_long(&t, "x-cache-ttl", 250);
    t_str(&t, "x-deduplication-header", "job");
    d = wr_dedup_new(body(&t));
    ck_assert_int_eq(d->ttl_ms, 250);
    ck_assert_str_eq(d->header, "job");
    wr_dedup_free(d);
}
END_TEST

START_TEST(test_journaled_keys_forgotten)
{
    struct wr_dedup *d = cache(2);
    memset(forgotten, 0, sizeof(forgotten));
    wr_dedup_journal(d, 42, &fake);
    ck_assert_int_eq(attached, 1);
    ck_assert_uint_eq(d->owner, 42);
    wr_dedup_add(d, S("a"), 0, 1);
    wr_dedup_add(d, S("a"), 0, 2); /* replaced: its record in 1 is dead */
    ck_assert_uint_eq(forgotten[1], 1);
    ck_assert_uint_eq(d->n, 1);
    wr_dedup_add(d, S("b"), 0, 3);
    wr_dedup_add(d, S("c"), 0, 0); /* evicts a (segment 2), not journaled itself */
    ck_assert_uint_eq(forgotten[2], 1);
    wr_dedup_add(d, S("x"), wr_now_ms() + 10000, 4);
    ck_assert(!wr_dedup_seen(d, S("x"), wr_now_ms() + 10000)); /* expired: segment 4 told */
    ck_assert_uint_eq(forgotten[4], 1);
    wr_dedup_free(d); /* b (3) goes with the cache; c had no record */
    ck_assert_uint_eq(forgotten[3], 1);
    ck_assert_uint_eq(forgotten[0], 0);
    ck_assert_int_eq(attached, 0);
}
END_TEST

/* Many inserts and removals against a model: every present key is found
 * whatever was deleted around it in its probe run. */
START_TEST(test_table_model)
{
    enum { N = 20000 };
    struct wr_dedup *d = cache(N);
    static bool in[N];
    char k[32];
    uint64_t bytes = 0;
    unsigned seed = 12345;

    memset(in, 0, sizeof(in));
    for (int step = 0; step < 200000; step++) {
        int i;
        seed = seed * 1103515245u + 12345u;
        i = (int)((seed >> 8) % N);
        snprintf(k, sizeof(k), "key-%d", i);
        if ((seed >> 4) & 1) {
            ck_assert_int_eq(wr_dedup_add(d, S(k), 0, 0), 0);
            in[i] = true;
        } else {
            wr_dedup_remove_key(d, S(k));
            in[i] = false;
        }
    }
    uint32_t n = 0;
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        ck_assert_int_eq(wr_dedup_seen(d, S(k), 1), in[i]);
        if (in[i]) {
            n++;
            bytes += offsetof(struct wr_dedup_ent, key) + strlen(k);
        }
    }
    ck_assert_uint_eq(d->n, n);
    ck_assert_uint_eq(d->key_bytes, bytes);
    /* at most 3/4 full */
    ck_assert(d->n * 4 <= (d->mask + 1) * 3);
    wr_dedup_free(d);
}
END_TEST

/* Memory per key: 100,000 UUID-sized keys. */
START_TEST(test_sizes)
{
    enum { N = 100000 };
    struct wr_dedup *d = cache(N);
    char k[40];
    ck_assert_uint_le(offsetof(struct wr_dedup_ent, key), 40);
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "%08x-0000-4000-8000-%012x", i, i);
        ck_assert_int_eq(wr_dedup_add(d, S(k), 0, 0), 0);
    }
    ck_assert_uint_eq(d->n, N);
    /* 34 bytes of header + 36 of key, and 8 bytes per slot at 1/2..3/4
     * load: under 100 bytes a key (malloc's own overhead comes on top). */
    ck_assert_uint_lt(wr_dedup_bytes(d) / N, 100);
    /* Past the size, the oldest go and the count stays. */
    ck_assert_int_eq(wr_dedup_add(d, S("one-more"), 0, 0), 0);
    ck_assert_uint_eq(d->n, N);
    snprintf(k, sizeof(k), "%08x-0000-4000-8000-%012x", 0, 0);
    ck_assert(!wr_dedup_seen(d, S(k), 1));
    wr_dedup_free(d);
}
END_TEST

START_TEST(test_args)
{
    struct wr_errbuf err;
    struct tbl t = {.n = 0};
    t_long(&t, "x-cache-size", -5);
    ck_assert_int_lt(wr_dedup_args_check(body(&t), "exchange", S("x"), "/", &err), 0);
    ck_assert_int_eq(err.code, WR_EPRECONDITION_FAILED);
    ck_assert_str_eq(
        err.text, "PRECONDITION_FAILED - invalid arg 'x-cache-size' for exchange 'x' in vhost '/': "
                  "{value_negative,-5}");
    t.n = 0;
    t_long(&t, "x-cache-ttl", 0);
    ck_assert_int_lt(wr_dedup_args_check(body(&t), "queue", S("q"), "/", &err), 0);
    ck_assert_str_eq(
        err.text,
        "PRECONDITION_FAILED - invalid arg 'x-cache-ttl' for queue 'q' in vhost '/': {value_zero,0}");
    t.n = 0;
    t_str(&t, "x-message-deduplication", "true");
    ck_assert_int_lt(wr_dedup_args_check(body(&t), "exchange", S("x"), "/", &err), 0);
    ck_assert(!wr_dedup_args_on(body(&t)));
    t.n = 0;
    t_str(&t, "x-deduplication-key", "routing-key");
    ck_assert_int_lt(wr_dedup_args_check(body(&t), "exchange", S("x"), "/", &err), 0);
    t.n = 0;
    t_bool(&t, "x-message-deduplication", true);
    t_long(&t, "x-cache-size", 10);
    t_str(&t, "x-deduplication-key", "message-id");
    ck_assert_int_eq(wr_dedup_args_check(body(&t), "exchange", S("x"), "/", &err), 0);
    ck_assert(wr_dedup_args_on(body(&t)));
}
END_TEST

static Suite *dedup_suite(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lru_order);
    tcase_add_test(tc, test_ttl);
    tcase_add_test(tc, test_journaled_keys_forgotten);
    tcase_add_test(tc, test_table_model);
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_args);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dedup_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
