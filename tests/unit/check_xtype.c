/*
 * check_xtype.c - unit tests for the exchange type modules (x_direct.c,
 * x_fanout.c, x_topic.c, x_headers.c, xtype.c).
 *
 * Each test builds a bare struct wr_exchange and struct wr_binding objects
 * by hand (destinations are fake pointers, 1, 2, 3...), drives the type
 * through init/add/route/remove/destroy and compares the set of bindings
 * that route() emits with the expected one, also checking that no binding
 * is emitted twice. Keys and headers handed to route() are copied into
 * heap blocks of exactly their size so AddressSanitizer catches any read
 * past them.
 *
 * The topic exchange is also cross-checked against a plain recursive
 * matcher (ref_match) on random patterns and keys over a tiny alphabet
 * that includes empty words, "*" and "#". Whether removing bindings gives
 * back every trie node is checked by the allocator's own byte count
 * (AddressSanitizer builds only).
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The allocator's count of bytes in use, to see that unbinding gives trie
 * nodes back. Only AddressSanitizer's count is exact (glibc's mallinfo
 * counts chunks parked in its caches as in use), so the check needs an
 * ASan build. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
/* From <sanitizer/allocator_interface.h>, which gcc does not install. */
size_t __sanitizer_get_current_allocated_bytes(void);
#define HAVE_ALLOC_BYTES 1
static size_t alloc_bytes(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#endif

#include "broker/exchange.h"
#include "core/err.h"
#include "wire/buf.h"

/* ---- fixtures ---- */

static void x_open(struct wr_exchange *x, const struct wr_xtype *t)
{
    memset(x, 0, sizeof(*x));
    wr_list_init(&x->bindings);
    wr_list_init(&x->bound_to_me);
    x->type = t;
    ck_assert_int_eq(t->init(x), 0);
}

/* A binding as exchange.c would make it: key and args copied into the
 * same allocation, already on x->bindings when add() runs. */
static struct wr_binding *bind_raw(struct wr_exchange *x, uintptr_t dest, struct wr_str key,
                                   struct wr_str args)
{
    struct wr_binding *b = calloc(1, sizeof(*b) + key.len + args.len + 1);
    char *p = (char *)(b + 1);
    int rc;

    ck_assert_ptr_nonnull(b);
    if (key.len)
        memcpy(p, key.ptr, key.len);
    if (args.len)
        memcpy(p + key.len, args.ptr, args.len);
    b->src = x;
    b->kind = WR_DEST_QUEUE;
    b->dest = (void *)dest;
    b->key = (struct wr_str){p, key.len};
    b->args = (struct wr_str){p + key.len, args.len};
    wr_list_init(&b->type_node);
    wr_list_init(&b->dst_node);
    wr_list_add_tail(&x->bindings, &b->src_node);
    rc = x->type->add(x, b);
    ck_assert_int_eq(rc, 0);
    return b;
}

static struct wr_binding *bind_key(struct wr_exchange *x, uintptr_t dest, const char *key)
{
    return bind_raw(x, dest, wr_str_c(key), WR_STR_NULL);
}

static void unbind(struct wr_exchange *x, struct wr_binding *b)
{
    x->type->remove(x, b);
    wr_list_del(&b->src_node);
    free(b);
}

static void x_close(struct wr_exchange *x)
{
    struct wr_list *it, *tmp;
    wr_list_each_safe(it, tmp, &x->bindings)
    {
        unbind(x, wr_container_of(it, struct wr_binding, src_node));
    }
    x->type->destroy(x);
}

/* What one route() call emitted. */
struct hits {
    struct wr_binding *b[4096];
    size_t n;
};

static void hits_emit(struct wr_binding *b, void *ctx)
{
    struct hits *h = ctx;
    ck_assert_uint_lt(h->n, sizeof(h->b) / sizeof(h->b[0]));
    h->b[h->n++] = b;
}

static void route_into(struct wr_exchange *x, struct wr_str key, struct wr_str headers,
                       struct hits *h)
{
    char *k = malloc(key.len ? key.len : 1);
    char *hd = malloc(headers.len ? headers.len : 1);
    struct wr_route_msg m = {0};

    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(hd);
    if (key.len)
        memcpy(k, key.ptr, key.len);
    if (headers.len)
        memcpy(hd, headers.ptr, headers.len);
    m.routing_key = (struct wr_str){k, key.len};
    m.headers = (struct wr_str){hd, headers.len};
    h->n = 0;
    x->type->route(x, &m, hits_emit, h);
    free(k);
    free(hd);
    for (size_t i = 0; i < h->n; i++)
        for (size_t j = i + 1; j < h->n; j++)
            ck_assert_msg(h->b[i] != h->b[j], "binding emitted twice");
}

/* Bitmask of the destinations (1..63) emitted for `key`. */
static uint64_t route_mask(struct wr_exchange *x, struct wr_str key, struct wr_str headers)
{
    static struct hits h;
    uint64_t mask = 0;
    route_into(x, key, headers, &h);
    for (size_t i = 0; i < h.n; i++) {
        uintptr_t d = (uintptr_t)h.b[i]->dest;
        ck_assert_uint_lt(d, 64);
        mask |= (uint64_t)1 << d;
    }
    return mask;
}

static uint64_t rk(struct wr_exchange *x, const char *key)
{
    return route_mask(x, wr_str_c(key), WR_STR_NULL);
}

#define M(d) ((uint64_t)1 << (d))

/* ---- table builder for headers and binding arguments ---- */

struct tb {
    uint8_t b[2048];
    size_t n;
};

static void tb_bytes(struct tb *t, const void *p, size_t n)
{
    ck_assert_uint_le(t->n + n, sizeof(t->b));
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void tb_u8(struct tb *t, uint8_t v)
{
    tb_bytes(t, &v, 1);
}

static void tb_u32(struct tb *t, uint32_t v)
{
    uint8_t b[4];
    wr_store32(b, v);
    tb_bytes(t, b, 4);
}

static void tb_u64(struct tb *t, uint64_t v)
{
    uint8_t b[8];
    wr_store64(b, v);
    tb_bytes(t, b, 8);
}

/* Entry header: the name (tables) or nothing (arrays, key == NULL). */
static void tb_head(struct tb *t, const char *key, char type)
{
    if (key) {
        tb_u8(t, (uint8_t)strlen(key));
        tb_bytes(t, key, strlen(key));
    }
    tb_u8(t, (uint8_t)type);
}

static void tb_S(struct tb *t, const char *key, const char *v)
{
    tb_head(t, key, 'S');
    tb_u32(t, (uint32_t)strlen(v));
    tb_bytes(t, v, strlen(v));
}

static void tb_x(struct tb *t, const char *key, const char *v)
{
    tb_head(t, key, 'x');
    tb_u32(t, (uint32_t)strlen(v));
    tb_bytes(t, v, strlen(v));
}

static void tb_I(struct tb *t, const char *key, int32_t v)
{
    tb_head(t, key, 'I');
    tb_u32(t, (uint32_t)v);
}

static void tb_i(struct tb *t, const char *key, uint32_t v)
{
    tb_head(t, key, 'i');
    tb_u32(t, v);
}

static void tb_l(struct tb *t, const char *key, int64_t v)
{
    tb_head(t, key, 'l');
    tb_u64(t, (uint64_t)v);
}

static void tb_L(struct tb *t, const char *key, int64_t v)
{
    tb_head(t, key, 'L');
    tb_u64(t, (uint64_t)v);
}

static void tb_T(struct tb *t, const char *key, uint64_t v)
{
    tb_head(t, key, 'T');
    tb_u64(t, v);
}

static void tb_b(struct tb *t, const char *key, int8_t v)
{
    tb_head(t, key, 'b');
    tb_u8(t, (uint8_t)v);
}

static void tb_s(struct tb *t, const char *key, int16_t v)
{
    uint8_t b[2];
    tb_head(t, key, 's');
    wr_store16(b, (uint16_t)v);
    tb_bytes(t, b, 2);
}

static void tb_t(struct tb *t, const char *key, int v)
{
    tb_head(t, key, 't');
    tb_u8(t, v ? 1 : 0);
}

static void tb_f(struct tb *t, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    tb_head(t, key, 'f');
    tb_u32(t, u);
}

static void tb_d(struct tb *t, const char *key, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    tb_head(t, key, 'd');
    tb_u64(t, u);
}

static void tb_D(struct tb *t, const char *key, uint8_t scale, uint32_t value)
{
    tb_head(t, key, 'D');
    tb_u8(t, scale);
    tb_u32(t, value);
}

static void tb_V(struct tb *t, const char *key)
{
    tb_head(t, key, 'V');
}

/* A nested table ('F') or array ('A') whose body is `sub`. */
static void tb_nest(struct tb *t, const char *key, char type, const struct tb *sub)
{
    tb_head(t, key, type);
    tb_u32(t, (uint32_t)sub->n);
    tb_bytes(t, sub->b, sub->n);
}

static struct wr_str tb_str(const struct tb *t)
{
    return (struct wr_str){(const char *)t->b, (uint32_t)t->n};
}

/* ---- xtype.c ---- */

START_TEST(test_find)
{
    ck_assert_ptr_eq(wr_xtype_find(WR_STR("direct")), &wr_xtype_direct);
    ck_assert_ptr_eq(wr_xtype_find(WR_STR("fanout")), &wr_xtype_fanout);
    ck_assert_ptr_eq(wr_xtype_find(WR_STR("topic")), &wr_xtype_topic);
    ck_assert_ptr_eq(wr_xtype_find(WR_STR("headers")), &wr_xtype_headers);
    ck_assert_ptr_null(wr_xtype_find(WR_STR("Direct")));
    ck_assert_ptr_null(wr_xtype_find(WR_STR("direct ")));
    ck_assert_ptr_null(wr_xtype_find(WR_STR("")));
    ck_assert_ptr_null(wr_xtype_find(WR_STR("x-consistent-hash")));
    ck_assert_ptr_null(wr_xtype_find((struct wr_str){"directx", 7}));
    ck_assert_ptr_eq(wr_xtype_find((struct wr_str){"directx", 6}), &wr_xtype_direct);
}
END_TEST

/* ---- direct ---- */

START_TEST(test_direct)
{
    struct wr_exchange x;
    struct wr_binding *b1, *b2, *b3, *b4;

    x_open(&x, &wr_xtype_direct);
    ck_assert_uint_eq(rk(&x, "a"), 0);
    b1 = bind_key(&x, 1, "a");
    b2 = bind_key(&x, 2, "a");
    b3 = bind_key(&x, 3, "b");
    b4 = bind_key(&x, 4, "");
    bind_key(&x, 5, "a.b");
    bind_raw(&x, 6, (struct wr_str){"a\0b", 3}, WR_STR_NULL);

    ck_assert_uint_eq(rk(&x, "a"), M(1) | M(2));
    ck_assert_uint_eq(rk(&x, "b"), M(3));
    ck_assert_uint_eq(rk(&x, ""), M(4));
    ck_assert_uint_eq(rk(&x, "A"), 0);
    ck_assert_uint_eq(rk(&x, "a "), 0);
    ck_assert_uint_eq(rk(&x, "a.b"), M(5));
    ck_assert_uint_eq(rk(&x, "#"), 0);
    ck_assert_uint_eq(route_mask(&x, (struct wr_str){"a\0b", 3}, WR_STR_NULL), M(6));
    ck_assert_uint_eq(route_mask(&x, (struct wr_str){"a\0c", 3}, WR_STR_NULL), 0);

    unbind(&x, b1);
    ck_assert_uint_eq(rk(&x, "a"), M(2));
    unbind(&x, b2);
    ck_assert_uint_eq(rk(&x, "a"), 0);
    b1 = bind_key(&x, 1, "a"); /* the bucket comes back */
    ck_assert_uint_eq(rk(&x, "a"), M(1));
    unbind(&x, b3);
    unbind(&x, b4);
    ck_assert_uint_eq(rk(&x, "b"), 0);
    ck_assert_uint_eq(rk(&x, ""), 0);
    x_close(&x);
}
END_TEST

START_TEST(test_direct_many)
{
    struct wr_exchange x;
    static struct wr_binding *bs[3000];
    char key[32];
    struct hits *h = malloc(sizeof(*h));

    x_open(&x, &wr_xtype_direct);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k%d", i % 1000);
        bs[i] = bind_key(&x, (uintptr_t)(i / 1000 + 1), key);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ck_assert_uint_eq(rk(&x, key), M(1) | M(2) | M(3));
    }
    /* Remove the middle third: every key keeps the other two. */
    for (int i = 1000; i < 2000; i++)
        unbind(&x, bs[i]);
    snprintf(key, sizeof key, "k%d", 517);
    route_into(&x, wr_str_c(key), WR_STR_NULL, h);
    ck_assert_uint_eq(h->n, 2);
    ck_assert_uint_eq(rk(&x, "k999"), M(1) | M(3));
    ck_assert_uint_eq(rk(&x, "k1000"), 0);
    free(h);
    x_close(&x);
}
END_TEST

/* destroy() with bindings still indexed frees the index (ASan checks). */
START_TEST(test_destroy_with_bindings)
{
    const struct wr_xtype *types[] = {&wr_xtype_direct, &wr_xtype_fanout, &wr_xtype_topic,
                                      &wr_xtype_headers};
    for (size_t t = 0; t < 4; t++) {
        struct wr_exchange x;
        struct wr_list *it, *tmp;
        struct tb args = {.n = 0};
        tb_S(&args, "a", "1");
        x_open(&x, types[t]);
        bind_key(&x, 1, "a.b");
        bind_key(&x, 2, "a.#");
        bind_raw(&x, 3, WR_STR("c"), tb_str(&args));
        x.type->destroy(&x);
        wr_list_each_safe(it, tmp, &x.bindings)
        {
            struct wr_binding *b = wr_container_of(it, struct wr_binding, src_node);
            ck_assert_ptr_null(b->type_data);
            wr_list_del(&b->src_node);
            free(b);
        }
    }
}
END_TEST

/* ---- fanout ---- */

START_TEST(test_fanout)
{
    struct wr_exchange x;
    struct wr_binding *b1, *b2, *b3;
    struct tb h = {.n = 0};

    tb_S(&h, "k", "v");
    x_open(&x, &wr_xtype_fanout);
    ck_assert_uint_eq(rk(&x, "a"), 0);
    b1 = bind_key(&x, 1, "a");
    b2 = bind_key(&x, 2, "");
    b3 = bind_key(&x, 3, "#");
    bind_key(&x, 3, "other"); /* same destination, second binding */
    ck_assert_uint_eq(rk(&x, "a"), M(1) | M(2) | M(3));
    ck_assert_uint_eq(rk(&x, ""), M(1) | M(2) | M(3));
    ck_assert_uint_eq(route_mask(&x, WR_STR("zzz"), tb_str(&h)), M(1) | M(2) | M(3));
    {
        struct hits *hh = malloc(sizeof(*hh));
        route_into(&x, WR_STR("q"), WR_STR_NULL, hh);
        ck_assert_uint_eq(hh->n, 4); /* every binding, once */
        free(hh);
    }
    unbind(&x, b1);
    unbind(&x, b3);
    ck_assert_uint_eq(rk(&x, "a"), M(2) | M(3));
    unbind(&x, b2);
    ck_assert_uint_eq(rk(&x, "a"), M(3));
    x_close(&x);
    ck_assert_uint_eq(wr_list_empty(&x.bindings), 1);
}
END_TEST

/* ---- topic ---- */

/* The reference: split like RabbitMQ ("" has no words), then match by
 * plain backtracking. */

static size_t split_words(const char *s, const char **w, size_t *len)
{
    size_t n = 0;
    const char *p = s;
    if (*s == '\0')
        return 0;
    for (;;) {
        const char *e = strchr(p, '.');
        w[n] = p;
        len[n] = e ? (size_t)(e - p) : strlen(p);
        n++;
        if (!e)
            return n;
        p = e + 1;
    }
}

static int word_is(const char *w, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(w, lit, len) == 0;
}

static int ref_rec(const char **pw, const size_t *pl, size_t np, size_t i, const char **kw,
                   const size_t *kl, size_t nk, size_t j)
{
    if (i == np)
        return j == nk;
    if (word_is(pw[i], pl[i], "#")) {
        for (size_t t = j; t <= nk; t++)
            if (ref_rec(pw, pl, np, i + 1, kw, kl, nk, t))
                return 1;
        return 0;
    }
    if (j == nk)
        return 0;
    if (word_is(pw[i], pl[i], "*") || (pl[i] == kl[j] && memcmp(pw[i], kw[j], pl[i]) == 0))
        return ref_rec(pw, pl, np, i + 1, kw, kl, nk, j + 1);
    return 0;
}

static int ref_match(const char *pattern, const char *key)
{
    const char *pw[64], *kw[64];
    size_t pl[64], kl[64];
    size_t np = split_words(pattern, pw, pl), nk = split_words(key, kw, kl);
    return ref_rec(pw, pl, np, 0, kw, kl, nk, 0);
}

struct tcase {
    const char *pattern, *key;
    int match;
};

static const struct tcase topic_cases[] = {
    /* "#" alone */
    {"#", "", 1},
    {"#", "a", 1},
    {"#", "a.b.c", 1},
    {"#", ".", 1},
    {"#", "..", 1},
    /* "*" alone: exactly one word; "" has none, "." has two */
    {"*", "", 0},
    {"*", "a", 1},
    {"*", "a.b", 0},
    {"*", ".", 0},
    {"*", "*", 1},
    {"*", "#", 1},
    /* the empty binding key */
    {"", "", 1},
    {"", "a", 0},
    {"", ".", 0},
    {"a", "", 0},
    /* a.# */
    {"a.#", "a", 1},
    {"a.#", "a.b", 1},
    {"a.#", "a.b.c", 1},
    {"a.#", "a.", 1},
    {"a.#", "b", 0},
    {"a.#", "", 0},
    {"a.#", "ab", 0},
    {"a.#", "b.a", 0},
    /* #.a */
    {"#.a", "a", 1},
    {"#.a", "b.a", 1},
    {"#.a", "x.y.z.a", 1},
    {"#.a", "a.a", 1},
    {"#.a", "a.b", 0},
    {"#.a", "", 0},
    {"#.a", ".a", 1},
    /* a.*.c */
    {"a.*.c", "a.b.c", 1},
    {"a.*.c", "a..c", 1},
    {"a.*.c", "a.c", 0},
    {"a.*.c", "a.b.b.c", 0},
    {"a.*.c", "a.b.c.d", 0},
    /* empty words */
    {"a..b", "a..b", 1},
    {"a..b", "a.b", 0},
    {"a..b", "a...b", 0},
    {"a.*.b", "a..b", 1},
    {"a.", "a.", 1},
    {"a.", "a", 0},
    {".a", ".a", 1},
    {".a", "a", 0},
    {".", ".", 1},
    {".", "", 0},
    {"*.*", ".", 1},
    {"*.*", "", 0},
    {"*.*", "a", 0},
    {"..", "..", 1},
    {"#..#", ".", 1},
    {"#..#", "a..b", 1},
    {"#..#", "a.b", 0},
    /* several "#" */
    {"#.#", "", 1},
    {"#.#", "a", 1},
    {"#.#", "a.b", 1},
    {"#.#.#", "a.b.c.d", 1},
    {"a.#.b", "a.b", 1},
    {"a.#.b", "a.x.y.b", 1},
    {"a.#.b", "a.b.c", 0},
    {"a.#.b", "a.b.b", 1},
    {"#.a.#", "a", 1},
    {"#.a.#", "b.a.c", 1},
    {"#.a.#", "b.c", 0},
    {"*.#", "", 0},
    {"*.#", "a", 1},
    {"*.#", "a.b", 1},
    {"#.*", "", 0},
    {"#.*", "a.b", 1},
    {"#.*.#", "x", 1},
    {"*.*.#", "x", 0},
    {"#.*.*", "x.y", 1},
    {"a.#.#.b", "a.b", 1},
    /* wildcards are whole words only */
    {"a*", "ab", 0},
    {"a*", "a*", 1},
    {"#b", "b", 0},
    {"#b", "#b", 1},
    {"a.*", "a.*", 1},
    {"a.b", "a.*", 0},
    {"a.#", "a.#", 1},
    {"x", "#", 0},
    {"x", "*", 0},
    /* case and bytes */
    {"A", "a", 0},
    {"a b", "a b", 1},
    {"caf\xc3\xa9", "caf\xc3\xa9", 1},
};

START_TEST(test_topic_cases)
{
    for (size_t i = 0; i < sizeof(topic_cases) / sizeof(topic_cases[0]); i++) {
        const struct tcase *c = &topic_cases[i];
        struct wr_exchange x;
        x_open(&x, &wr_xtype_topic);
        bind_key(&x, 1, c->pattern);
        ck_assert_msg(ref_match(c->pattern, c->key) == c->match, "reference disagrees on %s / %s",
                      c->pattern, c->key);
        ck_assert_msg(rk(&x, c->key) == (c->match ? M(1) : 0), "pattern \"%s\" key \"%s\": want %d",
                      c->pattern, c->key, c->match);
        x_close(&x);
    }
}
END_TEST

/* All the cases' patterns in one exchange at once: each case's key must
 * reach exactly the patterns the reference says match it. */
START_TEST(test_topic_cases_together)
{
    enum { N = sizeof(topic_cases) / sizeof(topic_cases[0]) };
    struct wr_exchange x;
    struct hits *h = malloc(sizeof(*h));

    x_open(&x, &wr_xtype_topic);
    for (size_t i = 0; i < N; i++)
        bind_key(&x, i + 1, topic_cases[i].pattern);
    for (size_t k = 0; k < N; k++) {
        const char *key = topic_cases[k].key;
        bool got[N] = {false};
        size_t want = 0;
        route_into(&x, wr_str_c(key), WR_STR_NULL, h);
        for (size_t j = 0; j < h->n; j++)
            got[(uintptr_t)h->b[j]->dest - 1] = true;
        for (size_t i = 0; i < N; i++) {
            int m = ref_match(topic_cases[i].pattern, key);
            ck_assert_msg(got[i] == (m != 0), "pattern \"%s\" key \"%s\"", topic_cases[i].pattern,
                          key);
            want += m != 0;
        }
        ck_assert_uint_eq(h->n, want);
    }
    free(h);
    x_close(&x);
}
END_TEST

START_TEST(test_topic_same_pattern)
{
    struct wr_exchange x;
    static struct wr_binding *bs[40];
    struct hits *h = malloc(sizeof(*h));

    x_open(&x, &wr_xtype_topic);
    for (int i = 0; i < 40; i++)
        bs[i] = bind_key(&x, (uintptr_t)(i % 20 + 1), i < 20 ? "a.*.#" : "#.#");
    route_into(&x, WR_STR("a.b.c.d"), WR_STR_NULL, h);
    ck_assert_uint_eq(h->n, 40); /* many paths reach "#.#"; each binding once */
    route_into(&x, WR_STR("b"), WR_STR_NULL, h);
    ck_assert_uint_eq(h->n, 20);
    for (int i = 0; i < 40; i += 2)
        unbind(&x, bs[i]);
    route_into(&x, WR_STR("a.b.c.d"), WR_STR_NULL, h);
    ck_assert_uint_eq(h->n, 20);
    free(h);
    x_close(&x);
}
END_TEST

START_TEST(test_topic_remove)
{
    struct wr_exchange x;
    struct wr_binding *b1, *b2, *b3, *b4, *b5;

    x_open(&x, &wr_xtype_topic);
    b1 = bind_key(&x, 1, "a.#");
    b2 = bind_key(&x, 2, "a.b");
    b3 = bind_key(&x, 3, "#");
    b4 = bind_key(&x, 4, "*.b");
    b5 = bind_key(&x, 5, "a.b.c");
    ck_assert_uint_eq(rk(&x, "a.b"), M(1) | M(2) | M(3) | M(4));
    ck_assert_uint_eq(rk(&x, "a.b.c"), M(1) | M(3) | M(5));
    unbind(&x, b2);
    ck_assert_uint_eq(rk(&x, "a.b"), M(1) | M(3) | M(4));
    ck_assert_uint_eq(rk(&x, "a.b.c"), M(1) | M(3) | M(5)); /* a.b node kept for a.b.c */
    unbind(&x, b3);
    ck_assert_uint_eq(rk(&x, "a.b"), M(1) | M(4));
    ck_assert_uint_eq(rk(&x, ""), 0);
    unbind(&x, b5);
    ck_assert_uint_eq(rk(&x, "a.b.c"), M(1));
    b2 = bind_key(&x, 2, "a.b");
    ck_assert_uint_eq(rk(&x, "a.b"), M(1) | M(2) | M(4));
    unbind(&x, b1);
    unbind(&x, b4);
    ck_assert_uint_eq(rk(&x, "a.b"), M(2));
    ck_assert_uint_eq(rk(&x, "a"), 0);
    unbind(&x, b2);
    ck_assert_uint_eq(rk(&x, "a.b"), 0);
    ck_assert_uint_eq(rk(&x, ""), 0);
    x_close(&x);
}
END_TEST

/* "#.#.#..." against a long key that does not match must not take
 * exponential time (this would not finish by backtracking). */
START_TEST(test_topic_hash_chain)
{
    struct wr_exchange x;
    char pat[400], key[400];
    size_t n = 0;

    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(pat + n, sizeof(pat) - n, "#.");
    snprintf(pat + n, sizeof(pat) - n, "z");
    n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(key + n, sizeof(key) - n, i ? ".b" : "b");

    x_open(&x, &wr_xtype_topic);
    bind_key(&x, 1, pat);
    bind_key(&x, 2, "#.b.#.b.#.b.#.b.#.b.#");
    ck_assert_uint_eq(rk(&x, key), M(2));
    key[n - 1] = 'z'; /* last word now "z" */
    ck_assert_uint_eq(rk(&x, key), M(1) | M(2));
    x_close(&x);
}
END_TEST

/* Long words, longer than any binding's, and keys longer than 255 bytes
 * (CC headers are longstrs). */
START_TEST(test_topic_long_words)
{
    struct wr_exchange x;
    char big[1200];

    memset(big, 'w', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    x_open(&x, &wr_xtype_topic);
    bind_key(&x, 1, "*");
    bind_key(&x, 2, "w");
    bind_key(&x, 3, "#.ww");
    ck_assert_uint_eq(rk(&x, big), M(1));
    big[600] = '.';
    ck_assert_uint_eq(rk(&x, big), 0);
    big[1196] = '.'; /* ends with the word "ww" */
    ck_assert_uint_eq(rk(&x, big), M(3));
    x_close(&x);
}
END_TEST

#ifdef HAVE_ALLOC_BYTES
/* Binding then unbinding a set of keys must give every trie node back:
 * after one round has grown the hash table and the routing arrays, a
 * second round over different words of the same shapes ends at exactly
 * the same number of allocated bytes. */
static void topic_round(struct wr_exchange *x, char tag)
{
    static struct wr_binding *bs[500];
    char key[64];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "%c%d.%s.%c%d.#.x", tag, i % 37, (i & 1) ? "*" : "", tag, i);
        bs[i] = bind_key(x, (uintptr_t)(i % 60 + 1), key);
    }
    for (int i = 0; i < 500; i += 3)
        unbind(x, bs[i]);
    for (int i = 0; i < 500; i++)
        if (i % 3)
            unbind(x, bs[i]);
}

START_TEST(test_topic_shrinks)
{
    struct wr_exchange x;
    size_t a, b;

    x_open(&x, &wr_xtype_topic);
    topic_round(&x, 'p');
    a = alloc_bytes();
    topic_round(&x, 'q');
    b = alloc_bytes();
    ck_assert_uint_eq(a, b);
    topic_round(&x, 'r');
    ck_assert_uint_eq(alloc_bytes(), a);
    ck_assert_uint_eq(rk(&x, "p1..p1.x"), 0);
    x_close(&x);
}
END_TEST
#endif

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

static void rnd_key(char *out, const char *const *alpha, uint32_t nalpha, uint32_t maxw)
{
    uint32_t nw = rnd(maxw + 1);
    out[0] = '\0';
    for (uint32_t i = 0; i < nw; i++) {
        if (i)
            strcat(out, ".");
        strcat(out, alpha[rnd(nalpha)]);
    }
}

START_TEST(test_topic_random)
{
    static const char *const palpha[] = {"a", "b", "", "*", "#", "#", "*", "ab"};
    static const char *const kalpha[] = {"a", "b", "", "ab", "a", "b", "*", "#"};
    enum { NB = 40, NK = 60, ROUNDS = 150 };
    static char pats[NB][64];
    static struct wr_binding *bs[NB];
    char key[64];
    unsigned long checked = 0, matched = 0;

    for (int round = 0; round < ROUNDS; round++) {
        struct wr_exchange x;
        x_open(&x, &wr_xtype_topic);
        for (int i = 0; i < NB; i++) {
            rnd_key(pats[i], palpha, 8, 5);
            bs[i] = bind_key(&x, (uintptr_t)(i + 1), pats[i]);
        }
        for (int phase = 0; phase < 2; phase++) {
            for (int k = 0; k < NK; k++) {
                uint64_t want = 0, got;
                rnd_key(key, kalpha, (k & 3) ? 6 : 8, 6);
                for (int i = 0; i < NB; i++)
                    if (bs[i] && ref_match(pats[i], key))
                        want |= M(i + 1);
                got = rk(&x, key);
                ck_assert_msg(got == want, "key \"%s\": got %llx want %llx", key,
                              (unsigned long long)got, (unsigned long long)want);
                checked += NB;
                matched += (unsigned long)__builtin_popcountll(want);
            }
            /* Drop a random half, rebind some, and check again. */
            for (int i = 0; i < NB; i++) {
                if (bs[i] && rnd(2)) {
                    unbind(&x, bs[i]);
                    bs[i] = NULL;
                }
                if (!bs[i] && rnd(4) == 0) {
                    rnd_key(pats[i], palpha, 8, 5);
                    bs[i] = bind_key(&x, (uintptr_t)(i + 1), pats[i]);
                }
            }
        }
        for (int i = 0; i < NB; i++) {
            if (bs[i])
                unbind(&x, bs[i]);
            bs[i] = NULL;
        }
        x_close(&x);
    }
    /* Make sure the alphabet gave both outcomes plenty of times. */
    ck_assert_uint_gt(matched, checked / 50);
    ck_assert_uint_lt(matched, checked / 2);
}
END_TEST

/* ---- headers ---- */

/* One binding with `args` (dest 1), routed with `headers`. */
static int hmatch(const struct tb *args, const struct tb *headers)
{
    struct wr_exchange x;
    uint64_t m;
    x_open(&x, &wr_xtype_headers);
    bind_raw(&x, 1, WR_STR_NULL, args ? tb_str(args) : WR_STR_NULL);
    m = route_mask(&x, WR_STR("ignored"), headers ? tb_str(headers) : WR_STR_NULL);
    x_close(&x);
    return m == M(1);
}

static struct tb tb_none(void)
{
    struct tb t;
    t.n = 0;
    return t;
}

START_TEST(test_headers_validate)
{
    struct tb a = tb_none();
    ck_assert_int_eq(wr_xtype_headers.validate(WR_STR(""), tb_str(&a)), 0);
    tb_S(&a, "foo", "bar");
    ck_assert_int_eq(wr_xtype_headers.validate(WR_STR(""), tb_str(&a)), 0);

    static const char *const ok[] = {"all", "any", "all-with-x", "any-with-x"};
    for (int i = 0; i < 4; i++) {
        a = tb_none();
        tb_S(&a, "x-match", ok[i]);
        ck_assert_int_eq(wr_xtype_headers.validate(WR_STR("k"), tb_str(&a)), 0);
    }
    static const char *const bad[] = {"ALL", "", "all ", "none", "any-with-X", "with-x"};
    for (int i = 0; i < 6; i++) {
        a = tb_none();
        tb_S(&a, "x-match", bad[i]);
        ck_assert_int_eq(wr_xtype_headers.validate(WR_STR(""), tb_str(&a)),
                         WR_EPRECONDITION_FAILED);
    }
    a = tb_none();
    tb_x(&a, "x-match", "all"); /* only a longstr will do */
    ck_assert_int_eq(wr_xtype_headers.validate(WR_STR(""), tb_str(&a)), WR_EPRECONDITION_FAILED);
    a = tb_none();
    tb_I(&a, "x-match", 1);
    ck_assert_int_eq(wr_xtype_headers.validate(WR_STR(""), tb_str(&a)), WR_EPRECONDITION_FAILED);
    a = tb_none();
    tb_V(&a, "x-match");
    ck_assert_int_eq(wr_xtype_headers.validate(WR_STR(""), tb_str(&a)), WR_EPRECONDITION_FAILED);
    /* The first x-match decides. */
    a = tb_none();
    tb_S(&a, "x-match", "any");
    tb_S(&a, "x-match", "bogus");
    ck_assert_int_eq(wr_xtype_headers.validate(WR_STR(""), tb_str(&a)), 0);
    a = tb_none();
    tb_S(&a, "x-match", "bogus");
    tb_S(&a, "x-match", "any");
    ck_assert_int_eq(wr_xtype_headers.validate(WR_STR(""), tb_str(&a)), WR_EPRECONDITION_FAILED);
}
END_TEST

START_TEST(test_headers_all_any)
{
    struct tb all = tb_none(), any = tb_none(), h;

    tb_S(&all, "a", "1");
    tb_I(&all, "b", 2);
    tb_S(&any, "x-match", "any");
    tb_S(&any, "a", "1");
    tb_I(&any, "b", 2);

    h = tb_none(); /* both present */
    tb_S(&h, "a", "1");
    tb_I(&h, "b", 2);
    ck_assert(hmatch(&all, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none(); /* extra headers do not matter, order neither */
    tb_S(&h, "z", "q");
    tb_I(&h, "b", 2);
    tb_S(&h, "c", "x");
    tb_S(&h, "a", "1");
    ck_assert(hmatch(&all, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none(); /* one missing */
    tb_S(&h, "a", "1");
    ck_assert(!hmatch(&all, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none(); /* one wrong */
    tb_S(&h, "a", "2");
    tb_I(&h, "b", 2);
    ck_assert(!hmatch(&all, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none(); /* both wrong */
    tb_S(&h, "a", "2");
    tb_I(&h, "b", 3);
    ck_assert(!hmatch(&all, &h));
    ck_assert(!hmatch(&any, &h));
    h = tb_none(); /* unrelated only */
    tb_S(&h, "c", "1");
    ck_assert(!hmatch(&all, &h));
    ck_assert(!hmatch(&any, &h));
    /* no headers table at all */
    ck_assert(!hmatch(&all, NULL));
    ck_assert(!hmatch(&any, NULL));
    /* names are case-sensitive */
    h = tb_none();
    tb_S(&h, "A", "1");
    tb_I(&h, "B", 2);
    ck_assert(!hmatch(&any, &h));

    /* explicit "all" is the default */
    all = tb_none();
    tb_I(&all, "b", 2);
    tb_S(&all, "x-match", "all");
    tb_S(&all, "a", "1");
    h = tb_none();
    tb_S(&h, "a", "1");
    tb_I(&h, "b", 2);
    ck_assert(hmatch(&all, &h));
    h = tb_none();
    tb_S(&h, "a", "1");
    ck_assert(!hmatch(&all, &h));
}
END_TEST

START_TEST(test_headers_empty_pattern)
{
    struct tb a = tb_none(), h = tb_none();

    tb_S(&h, "a", "1");
    /* no arguments at all: "all" over nothing is true */
    ck_assert(hmatch(NULL, &h));
    ck_assert(hmatch(NULL, NULL));
    tb_S(&a, "x-match", "all");
    ck_assert(hmatch(&a, &h));
    ck_assert(hmatch(&a, NULL));
    a = tb_none();
    tb_S(&a, "x-match", "any");
    ck_assert(!hmatch(&a, &h));
    ck_assert(!hmatch(&a, NULL));
    a = tb_none();
    tb_S(&a, "x-match", "all-with-x");
    ck_assert(hmatch(&a, NULL));
    a = tb_none();
    tb_S(&a, "x-match", "any-with-x");
    ck_assert(!hmatch(&a, &h));
}
END_TEST

START_TEST(test_headers_x_args)
{
    static const char *const modes[] = {"all", "any", "all-with-x", "any-with-x"};
    struct tb a, h;

    for (int m = 0; m < 4; m++) {
        int with_x = m >= 2, any = m & 1;
        a = tb_none();
        tb_S(&a, "x-match", modes[m]);
        tb_S(&a, "x-foo", "bar");
        tb_S(&a, "a", "1");

        h = tb_none(); /* only the plain header */
        tb_S(&h, "a", "1");
        ck_assert_int_eq(hmatch(&a, &h), with_x ? any : 1);
        h = tb_none(); /* only the x- header */
        tb_S(&h, "x-foo", "bar");
        ck_assert_int_eq(hmatch(&a, &h), with_x ? any : 0);
        h = tb_none(); /* both */
        tb_S(&h, "x-foo", "bar");
        tb_S(&h, "a", "1");
        ck_assert_int_eq(hmatch(&a, &h), 1);
        h = tb_none(); /* x- header with another value */
        tb_S(&h, "x-foo", "baz");
        tb_S(&h, "a", "1");
        ck_assert_int_eq(hmatch(&a, &h), with_x ? any : 1);

        /* a pattern of x- arguments only */
        a = tb_none();
        tb_S(&a, "x-match", modes[m]);
        tb_S(&a, "x-foo", "bar");
        h = tb_none();
        tb_S(&h, "c", "1");
        ck_assert_int_eq(hmatch(&a, &h), with_x ? 0 : !any);
        h = tb_none();
        tb_S(&h, "x-foo", "bar");
        ck_assert_int_eq(hmatch(&a, &h), with_x ? 1 : !any);
    }
    /* "x-match" itself never counts, even with -with-x, even twice */
    a = tb_none();
    tb_S(&a, "x-match", "all-with-x");
    tb_S(&a, "x-match", "zzz");
    h = tb_none();
    ck_assert(hmatch(&a, &h));
    /* the prefix is exactly "x-" */
    a = tb_none();
    tb_S(&a, "X-foo", "1");
    tb_S(&a, "x_foo", "1");
    tb_S(&a, "x", "1");
    h = tb_none();
    ck_assert(!hmatch(&a, &h));
    tb_S(&h, "X-foo", "1");
    tb_S(&h, "x_foo", "1");
    tb_S(&h, "x", "1");
    ck_assert(hmatch(&a, &h));
}
END_TEST

START_TEST(test_headers_void)
{
    struct tb all = tb_none(), any = tb_none(), h;

    tb_V(&all, "a");
    tb_S(&all, "b", "1");
    tb_S(&any, "x-match", "any");
    tb_V(&any, "a");

    h = tb_none();
    tb_S(&h, "a", "anything");
    tb_S(&h, "b", "1");
    ck_assert(hmatch(&all, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none();
    tb_I(&h, "a", 7);
    tb_S(&h, "b", "1");
    ck_assert(hmatch(&all, &h));
    h = tb_none();
    tb_V(&h, "a");
    tb_S(&h, "b", "1");
    ck_assert(hmatch(&all, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none();
    tb_S(&h, "b", "1");
    ck_assert(!hmatch(&all, &h));
    ck_assert(!hmatch(&any, &h));
    ck_assert(!hmatch(&any, NULL));
    /* a void header does not equal a non-void pattern value */
    h = tb_none();
    tb_S(&h, "a", "x");
    tb_V(&h, "b");
    ck_assert(!hmatch(&all, &h));
}
END_TEST

/* Pattern value p against header value h, name "k", x-match all. */
static int veq(void (*fp)(struct tb *), void (*fh)(struct tb *))
{
    struct tb a = tb_none(), h = tb_none();
    fp(&a);
    fh(&h);
    return hmatch(&a, &h);
}

#define V_(name, stmt)                                                                             \
    static void name(struct tb *t)                                                                 \
    {                                                                                              \
        stmt;                                                                                      \
    }
V_(v_S1, tb_S(t, "k", "1"))
V_(v_Sa, tb_S(t, "k", "a"))
V_(v_xa, tb_x(t, "k", "a"))
V_(v_I1, tb_I(t, "k", 1))
V_(v_l1, tb_l(t, "k", 1))
V_(v_L1, tb_L(t, "k", 1))
V_(v_b1, tb_b(t, "k", 1))
V_(v_s1, tb_s(t, "k", 1))
V_(v_T1, tb_T(t, "k", 1))
V_(v_i1, tb_i(t, "k", 1))
V_(v_f1, tb_f(t, "k", 1.0f))
V_(v_d1, tb_d(t, "k", 1.0))
V_(v_d15, tb_d(t, "k", 1.5))
V_(v_t1, tb_t(t, "k", 1))
V_(v_t0, tb_t(t, "k", 0))
V_(v_I0, tb_I(t, "k", 0))
V_(v_bm1, tb_b(t, "k", -1))
V_(v_lm1, tb_l(t, "k", -1))
V_(v_imax, tb_i(t, "k", 0xffffffffu))
V_(v_Im1, tb_I(t, "k", -1))
V_(v_lumax, tb_l(t, "k", 4294967295ll))
V_(v_Tmax, tb_T(t, "k", UINT64_MAX))
V_(v_dmax, tb_d(t, "k", 18446744073709551615.0)) /* rounds to 2^64 */
V_(v_l2p53p1, tb_l(t, "k", 9007199254740993ll))
V_(v_d2p53, tb_d(t, "k", 9007199254740992.0))
V_(v_l2p53, tb_l(t, "k", 9007199254740992ll))
V_(v_f01, tb_f(t, "k", 0.1f))
V_(v_d01, tb_d(t, "k", 0.1))
V_(v_f05, tb_f(t, "k", 0.5f))
V_(v_d05, tb_d(t, "k", 0.5))
V_(v_d0, tb_d(t, "k", 0.0))
V_(v_dm0, tb_d(t, "k", -0.0))
V_(v_dnan, tb_d(t, "k", __builtin_nan("")))
V_(v_dinf, tb_d(t, "k", __builtin_inf()))
V_(v_D110, tb_D(t, "k", 1, 10))
V_(v_D2100, tb_D(t, "k", 2, 100))
V_(v_D110b, tb_D(t, "k", 1, 10))
V_(v_V, tb_V(t, "k"))
V_(v_Sempty, tb_S(t, "k", ""))

static void v_F_I1(struct tb *t)
{
    struct tb s = tb_none();
    tb_I(&s, "n", 1);
    tb_S(&s, "m", "z");
    tb_nest(t, "k", 'F', &s);
}

static void v_F_l1(struct tb *t)
{
    struct tb s = tb_none();
    tb_l(&s, "n", 1);
    tb_S(&s, "m", "z");
    tb_nest(t, "k", 'F', &s);
}

static void v_F_swapped(struct tb *t)
{
    struct tb s = tb_none();
    tb_S(&s, "m", "z");
    tb_I(&s, "n", 1);
    tb_nest(t, "k", 'F', &s);
}

static void v_F_empty(struct tb *t)
{
    struct tb s = tb_none();
    tb_nest(t, "k", 'F', &s);
}

static void v_A_empty(struct tb *t)
{
    struct tb s = tb_none();
    tb_nest(t, "k", 'A', &s);
}

static void v_A_l1(struct tb *t)
{
    struct tb s = tb_none();
    tb_l(&s, NULL, 1);
    tb_S(&s, NULL, "q");
    tb_nest(t, "k", 'A', &s);
}

static void v_A_L1(struct tb *t)
{
    struct tb s = tb_none();
    tb_L(&s, NULL, 1);
    tb_S(&s, NULL, "q");
    tb_nest(t, "k", 'A', &s);
}

static void v_A_I1(struct tb *t)
{
    struct tb s = tb_none();
    tb_I(&s, NULL, 1);
    tb_S(&s, NULL, "q");
    tb_nest(t, "k", 'A', &s);
}

static void v_A_l1_short(struct tb *t)
{
    struct tb s = tb_none();
    tb_l(&s, NULL, 1);
    tb_nest(t, "k", 'A', &s);
}

static void v_A_x(struct tb *t)
{
    struct tb s = tb_none();
    tb_l(&s, NULL, 1);
    tb_x(&s, NULL, "q"); /* binary, not longstr: different inside an array */
    tb_nest(t, "k", 'A', &s);
}

static void v_A_nested(struct tb *t)
{
    struct tb s = tb_none(), s2 = tb_none();
    tb_d(&s2, "z", -0.0);
    tb_nest(&s, NULL, 'F', &s2);
    tb_nest(t, "k", 'A', &s);
}

static void v_A_nested0(struct tb *t)
{
    struct tb s = tb_none(), s2 = tb_none();
    tb_d(&s2, "z", 0.0);
    tb_nest(&s, NULL, 'F', &s2);
    tb_nest(t, "k", 'A', &s);
}

START_TEST(test_headers_values)
{
    /* strings */
    ck_assert(veq(v_S1, v_S1));
    ck_assert(!veq(v_S1, v_Sa));
    ck_assert(veq(v_Sa, v_xa)); /* longstr and binary are both binaries */
    ck_assert(veq(v_xa, v_Sa));
    ck_assert(!veq(v_Sempty, v_V));
    ck_assert(!veq(v_Sempty, v_A_empty));
    /* strings never equal numbers */
    ck_assert(!veq(v_S1, v_I1));
    ck_assert(!veq(v_I1, v_S1));
    /* integers of any width are one integer */
    ck_assert(veq(v_I1, v_l1));
    ck_assert(veq(v_l1, v_I1));
    ck_assert(veq(v_I1, v_L1));
    ck_assert(veq(v_b1, v_s1));
    ck_assert(veq(v_T1, v_I1));
    ck_assert(veq(v_i1, v_b1));
    ck_assert(veq(v_bm1, v_lm1));
    ck_assert(veq(v_imax, v_lumax));
    ck_assert(!veq(v_imax, v_Im1)); /* unsigned 2^32-1 is not signed -1 */
    ck_assert(!veq(v_Tmax, v_lm1));
    ck_assert(!veq(v_I1, v_I0));
    /* integers equal floats of the same exact value */
    ck_assert(veq(v_I1, v_f1));
    ck_assert(veq(v_d1, v_l1));
    ck_assert(veq(v_T1, v_d1));
    ck_assert(!veq(v_d15, v_I1));
    ck_assert(!veq(v_Tmax, v_dmax));
    ck_assert(!veq(v_dmax, v_Tmax));
    ck_assert(!veq(v_l2p53p1, v_d2p53));
    ck_assert(veq(v_l2p53, v_d2p53));
    ck_assert(veq(v_I0, v_dm0));
    /* floats */
    ck_assert(veq(v_f1, v_d1));
    ck_assert(veq(v_f05, v_d05));
    ck_assert(!veq(v_f01, v_d01)); /* 0.1f widened is not 0.1 */
    ck_assert(veq(v_d0, v_dm0));
    ck_assert(!veq(v_dnan, v_dnan));
    ck_assert(veq(v_dinf, v_dinf));
    ck_assert(!veq(v_dinf, v_Tmax));
    /* booleans equal only booleans */
    ck_assert(veq(v_t1, v_t1));
    ck_assert(!veq(v_t1, v_t0));
    ck_assert(!veq(v_t1, v_I1));
    ck_assert(!veq(v_I1, v_t1));
    ck_assert(!veq(v_t0, v_I0));
    /* decimals: scale and digits both */
    ck_assert(veq(v_D110, v_D110b));
    ck_assert(!veq(v_D110, v_D2100));
    ck_assert(!veq(v_D110, v_d1));
    ck_assert(!veq(v_D110, v_I1));
    /* void header against a value */
    ck_assert(!veq(v_S1, v_V));
    ck_assert(!veq(v_I0, v_V));
    ck_assert(!veq(v_t0, v_V));
    ck_assert(veq(v_V, v_V));
    /* tables and arrays: typed, ordered */
    ck_assert(veq(v_F_I1, v_F_I1));
    ck_assert(!veq(v_F_I1, v_F_l1)); /* signedint vs long inside */
    ck_assert(!veq(v_F_I1, v_F_swapped));
    ck_assert(veq(v_F_empty, v_F_empty));
    ck_assert(veq(v_F_empty, v_A_empty)); /* both [] */
    ck_assert(veq(v_A_empty, v_F_empty));
    ck_assert(!veq(v_F_I1, v_A_I1));
    ck_assert(!veq(v_F_empty, v_A_I1));
    ck_assert(veq(v_A_l1, v_A_l1));
    ck_assert(veq(v_A_l1, v_A_L1)); /* l and L are both long */
    ck_assert(veq(v_A_L1, v_A_l1));
    ck_assert(!veq(v_A_l1, v_A_I1));
    ck_assert(!veq(v_A_l1, v_A_l1_short));
    ck_assert(!veq(v_A_l1_short, v_A_l1));
    ck_assert(!veq(v_A_l1, v_A_x));
    ck_assert(veq(v_A_nested, v_A_nested0)); /* -0.0 == 0.0 inside too */
    ck_assert(!veq(v_A_nested, v_A_l1));
    ck_assert(!veq(v_A_l1, v_S1));
    ck_assert(!veq(v_F_empty, v_Sempty));
}
END_TEST

START_TEST(test_headers_duplicates)
{
    struct tb a = tb_none(), any = tb_none(), h;

    /* pattern a=1, a=2: the k-th pattern entry meets the k-th header */
    tb_S(&a, "a", "1");
    tb_S(&a, "a", "2");
    tb_S(&any, "x-match", "any");
    tb_S(&any, "a", "1");
    tb_S(&any, "a", "2");
    h = tb_none();
    tb_S(&h, "a", "1");
    tb_S(&h, "a", "2");
    ck_assert(hmatch(&a, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none();
    tb_S(&h, "a", "2");
    tb_S(&h, "a", "1");
    ck_assert(!hmatch(&a, &h));
    ck_assert(!hmatch(&any, &h));
    h = tb_none();
    tb_S(&h, "a", "1"); /* the second pattern entry has no partner */
    ck_assert(!hmatch(&a, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none();
    tb_S(&h, "a", "3");
    tb_S(&h, "b", "0");
    tb_S(&h, "a", "2");
    ck_assert(!hmatch(&a, &h));
    ck_assert(hmatch(&any, &h));
    h = tb_none();
    tb_S(&h, "a", "1");
    tb_S(&h, "a", "2");
    tb_S(&h, "a", "3"); /* a third header is ignored */
    ck_assert(hmatch(&a, &h));

    /* one pattern entry, duplicate headers: the first header counts */
    a = tb_none();
    tb_S(&a, "a", "2");
    h = tb_none();
    tb_S(&h, "a", "1");
    tb_S(&h, "a", "2");
    ck_assert(!hmatch(&a, &h));
    h = tb_none();
    tb_S(&h, "a", "2");
    tb_S(&h, "a", "1");
    ck_assert(hmatch(&a, &h));
}
END_TEST

START_TEST(test_headers_many_rules)
{
    struct tb a = tb_none(), h = tb_none();
    char k[16];

    tb_S(&a, "x-match", "all");
    for (int i = 0; i < 60; i++) {
        snprintf(k, sizeof k, "h%02d", (i * 37) % 60);
        tb_I(&a, k, i);
    }
    for (int i = 59; i >= 0; i--) {
        snprintf(k, sizeof k, "h%02d", (i * 37) % 60);
        tb_l(&h, k, i);
    }
    ck_assert(hmatch(&a, &h));
    h.n -= 8; /* drop the last header */
    ck_assert(!hmatch(&a, &h));
}
END_TEST

/* Unvalidated bindings with a bad x-match behave as "all" (RabbitMQ's
 * parse_x_match fallback); several bindings in one exchange; removal. */
START_TEST(test_headers_exchange)
{
    struct wr_exchange x;
    struct tb a1 = tb_none(), a2 = tb_none(), a3 = tb_none(), a4 = tb_none(), h = tb_none();
    struct wr_binding *b1, *b2, *b3;

    tb_S(&a1, "x-match", "any");
    tb_S(&a1, "color", "red");
    tb_S(&a1, "size", "big");
    tb_S(&a2, "color", "red");
    tb_S(&a2, "size", "big");
    tb_S(&a3, "x-match", "bogus");
    tb_S(&a3, "color", "red");
    tb_S(&a3, "size", "big");
    tb_S(&a4, "x-match", "any");

    x_open(&x, &wr_xtype_headers);
    b1 = bind_raw(&x, 1, WR_STR(""), tb_str(&a1));
    b2 = bind_raw(&x, 2, WR_STR("rk ignored"), tb_str(&a2));
    b3 = bind_raw(&x, 3, WR_STR(""), tb_str(&a3));
    bind_raw(&x, 4, WR_STR(""), tb_str(&a4));
    bind_raw(&x, 5, WR_STR(""), WR_STR_NULL);

    tb_S(&h, "color", "red");
    ck_assert_uint_eq(route_mask(&x, WR_STR(""), tb_str(&h)), M(1) | M(5));
    tb_S(&h, "size", "big");
    ck_assert_uint_eq(route_mask(&x, WR_STR("rk ignored"), tb_str(&h)), M(1) | M(2) | M(3) | M(5));
    ck_assert_uint_eq(route_mask(&x, WR_STR(""), WR_STR_NULL), M(5));
    unbind(&x, b1);
    unbind(&x, b3);
    ck_assert_uint_eq(route_mask(&x, WR_STR(""), tb_str(&h)), M(2) | M(5));
    unbind(&x, b2);
    ck_assert_uint_eq(route_mask(&x, WR_STR(""), tb_str(&h)), M(5));
    x_close(&x);
}
END_TEST

static Suite *xtype_suite(void)
{
    Suite *s = suite_create("xtype");
    TCase *tc;

    tc = tcase_create("find");
    tcase_add_test(tc, test_find);
    suite_add_tcase(s, tc);

    tc = tcase_create("direct");
    tcase_add_test(tc, test_direct);
    tcase_add_test(tc, test_direct_many);
    tcase_add_test(tc, test_destroy_with_bindings);
    suite_add_tcase(s, tc);

    tc = tcase_create("fanout");
    tcase_add_test(tc, test_fanout);
    suite_add_tcase(s, tc);

    tc = tcase_create("topic");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_topic_cases);
    tcase_add_test(tc, test_topic_cases_together);
    tcase_add_test(tc, test_topic_same_pattern);
    tcase_add_test(tc, test_topic_remove);
    tcase_add_test(tc, test_topic_hash_chain);
    tcase_add_test(tc, test_topic_long_words);
#ifdef HAVE_ALLOC_BYTES
    tcase_add_test(tc, test_topic_shrinks);
#endif
    tcase_add_test(tc, test_topic_random);
    suite_add_tcase(s, tc);

    tc = tcase_create("headers");
    tcase_add_test(tc, test_headers_validate);
    tcase_add_test(tc, test_headers_all_any);
    tcase_add_test(tc, test_headers_empty_pattern);
    tcase_add_test(tc, test_headers_x_args);
    tcase_add_test(tc, test_headers_void);
    tcase_add_test(tc, test_headers_values);
    tcase_add_test(tc, test_headers_duplicates);
    tcase_add_test(tc, test_headers_many_rules);
    tcase_add_test(tc, test_headers_exchange);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(xtype_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
