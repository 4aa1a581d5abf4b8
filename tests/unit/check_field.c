/*
 * check_field.c - unit tests for src/wire/field.c (field tables and arrays).
 *
 * Inputs are built byte by byte with a small builder (struct bb) that fills
 * in container lengths when a container closes, so each test reads like the
 * wire layout it exercises. Anything that feeds malformed bytes to the codec
 * first copies them into a heap block of exactly their size, so an
 * AddressSanitizer build catches any read past the end.
 *
 * Allocation failures are injected when the binary is linked with
 * -Wl,--wrap=malloc,--wrap=realloc (the ENOMEM tests notice the wrap at run
 * time and are skipped without it); run under LeakSanitizer with CK_FORK=no
 * to prove the failure paths free everything.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "wire/buf.h"
#include "wire/field.h"

/* ---- allocation failure injection (active only with --wrap) ---- */

void *__real_malloc(size_t n) __attribute__((weak));
void *__real_realloc(void *p, size_t n) __attribute__((weak));
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);

/* -1: never fail; otherwise the number of allocations still allowed. */
static long alloc_budget = -1;

static int alloc_take(void)
{
    if (alloc_budget < 0)
        return 1;
    if (alloc_budget == 0)
        return 0;
    alloc_budget--;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return alloc_take() ? __real_malloc(n) : NULL;
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_take() ? __real_realloc(p, n) : NULL;
}

static int alloc_wrapped(void)
{
    return __real_malloc != NULL && __real_realloc != NULL;
}

/* ---- byte builder ---- */

struct bb {
    uint8_t buf[65536];
    size_t n;
    size_t open[128]; /* offsets of length slots of open containers */
    int top;
};

static void bb_init(struct bb *b)
{
    b->n = 0;
    b->top = 0;
}

static void bb_u8(struct bb *b, uint8_t v)
{
    ck_assert_uint_lt(b->n, sizeof b->buf);
    b->buf[b->n++] = v;
}

static void bb_u16(struct bb *b, uint16_t v)
{
    bb_u8(b, (uint8_t)(v >> 8));
    bb_u8(b, (uint8_t)v);
}

static void bb_u32(struct bb *b, uint32_t v)
{
    bb_u16(b, (uint16_t)(v >> 16));
    bb_u16(b, (uint16_t)v);
}

static void bb_u64(struct bb *b, uint64_t v)
{
    bb_u32(b, (uint32_t)(v >> 32));
    bb_u32(b, (uint32_t)v);
}

static void bb_mem(struct bb *b, const void *p, size_t n)
{
    ck_assert_uint_le(n, sizeof b->buf - b->n);
    if (n)
        memcpy(b->buf + b->n, p, n);
    b->n += n;
}

static void bb_key(struct bb *b, const char *k)
{
    size_t n = strlen(k);
    bb_u8(b, (uint8_t)n);
    bb_mem(b, k, n);
}

static void bb_lstr(struct bb *b, const char *s)
{
    size_t n = strlen(s);
    bb_u32(b, (uint32_t)n);
    bb_mem(b, s, n);
}

/* Opens an F or A payload: a length slot filled in by bb_close. */
static void bb_open(struct bb *b)
{
    ck_assert_int_lt(b->top, 128);
    b->open[b->top++] = b->n;
    bb_u32(b, 0);
}

static void bb_close(struct bb *b)
{
    size_t at;
    ck_assert_int_gt(b->top, 0);
    at = b->open[--b->top];
    wr_store32(b->buf + at, (uint32_t)(b->n - at - 4));
}

static struct wr_str bb_str(const struct bb *b)
{
    return (struct wr_str){(const char *)b->buf, (uint32_t)b->n};
}

/* A heap copy of exactly n bytes (at least 1 byte allocated so the pointer
 * is never NULL). */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(c);
    if (n)
        memcpy(c, p, n);
    return c;
}

/* ---- shared checks ---- */

/* decode -> encode gives back the length prefix and the same bytes. */
static void assert_roundtrip(const uint8_t *p, size_t len)
{
    struct wr_table t;
    struct wr_wb w;
    uint8_t *out;
    size_t sz;

    ck_assert_int_eq(wr_table_decode((struct wr_str){(const char *)p, (uint32_t)len}, &t), 0);
    sz = wr_table_encoded_size(&t);
    ck_assert_uint_eq(sz, len + 4);
    out = malloc(sz);
    ck_assert_ptr_nonnull(out);
    w = wr_wb_init(out, sz);
    wr_table_encode(&w, &t);
    ck_assert_int_eq(w.err, 0);
    ck_assert_ptr_eq(w.p, out + sz);
    ck_assert_uint_eq(wr_load32(out), len);
    ck_assert(len == 0 || memcmp(out + 4, p, len) == 0);
    free(out);
    wr_table_free(&t);
}

/* The contract for arbitrary bytes: validate says 0 or WR_ESYNTAX, decode
 * agrees with it, and whatever validates round-trips. */
static int assert_contract(const uint8_t *src, size_t len)
{
    uint8_t *p = dup_exact(src, len);
    struct wr_str body = {(const char *)p, (uint32_t)len};
    struct wr_table t;
    struct wr_fv fv;
    int rc = wr_table_validate(p, len);
    int arc = wr_array_validate(p, len);

    ck_assert(rc == 0 || rc == WR_ESYNTAX);
    ck_assert(arc == 0 || arc == WR_ESYNTAX);
    ck_assert_int_eq(wr_table_decode(body, &t), rc);
    if (rc == 0) {
        /* the raw walk sees what the tree holds */
        struct wr_rd r = wr_rd_init(p, len);
        struct wr_str k;
        uint32_t n = 0;
        int wrc;
        while ((wrc = wr_table_next(&r, &k, &fv)) > 0) {
            ck_assert_uint_lt(n, t.n);
            ck_assert(wr_str_eq(k, t.e[n].key));
            ck_assert_int_eq(fv.type, t.e[n].val.type);
            n++;
        }
        ck_assert_int_eq(wrc, 0);
        ck_assert_uint_eq(n, t.n);
        wr_table_free(&t);
        assert_roundtrip(p, len);
    } else {
        ck_assert_uint_eq(t.n, 0);
        ck_assert_ptr_null(t.e);
    }
    /* Lookups on unvalidated bytes must stay in bounds too. */
    (void)wr_table_get(body, "k", &fv);
    (void)wr_table_get(body, "", NULL);
    free(p);
    return rc;
}

/* A table with every type, nesting, empty containers and a duplicate key.
 * Offsets of top-level entry boundaries go to bounds[] when non-NULL. */
static void build_complex(struct bb *b, size_t *bounds, size_t *nbounds)
{
    size_t nb = 0;
#define MARK()                                                                                     \
    do {                                                                                           \
        if (bounds)                                                                                \
            bounds[nb] = b->n;                                                                     \
        nb++;                                                                                      \
    } while (0)

    bb_init(b);
    MARK();
    bb_key(b, "str");
    bb_u8(b, 'S');
    bb_lstr(b, "hello");
    MARK();
    bb_key(b, "int");
    bb_u8(b, 'I');
    bb_u32(b, (uint32_t)-5);
    MARK();
    bb_key(b, "nested");
    bb_u8(b, 'F');
    bb_open(b);
    {
        bb_key(b, "a");
        bb_u8(b, 't');
        bb_u8(b, 1);
        bb_key(b, "arr");
        bb_u8(b, 'A');
        bb_open(b);
        {
            bb_u8(b, 'b');
            bb_u8(b, 0xff);
            bb_u8(b, 'F');
            bb_open(b);
            {
                bb_key(b, "deep");
                bb_u8(b, 'A');
                bb_open(b);
                bb_u8(b, 'S');
                bb_lstr(b, "x");
                bb_u8(b, 'V');
                bb_u8(b, 'D');
                bb_u8(b, 2);
                bb_u32(b, 12345);
                bb_close(b);
            }
            bb_close(b);
            bb_u8(b, 's');
            bb_u16(b, 300);
        }
        bb_close(b);
        bb_key(b, "u");
        bb_u8(b, 'u');
        bb_u16(b, 65535);
    }
    bb_close(b);
    MARK();
    bb_key(b, "bytes");
    bb_u8(b, 'x');
    bb_u32(b, 3);
    bb_mem(b, "\x00\xff\x10", 3);
    MARK();
    bb_key(b, "ts");
    bb_u8(b, 'T');
    bb_u64(b, 1700000000);
    MARK();
    bb_key(b, "dbl");
    bb_u8(b, 'd');
    bb_u64(b, 0x400c000000000000ull); /* 3.5 */
    MARK();
    bb_key(b, "flt");
    bb_u8(b, 'f');
    bb_u32(b, 0xbfa00000u); /* -1.25 */
    MARK();
    bb_key(b, "void");
    bb_u8(b, 'V');
    MARK();
    bb_key(b, "B");
    bb_u8(b, 'B');
    bb_u8(b, 200);
    MARK();
    bb_key(b, "i");
    bb_u8(b, 'i');
    bb_u32(b, 4000000000u);
    MARK();
    bb_key(b, "l");
    bb_u8(b, 'l');
    bb_u64(b, (uint64_t)INT64_MIN);
    MARK();
    bb_key(b, "L");
    bb_u8(b, 'L');
    bb_u64(b, 42);
    MARK();
    bb_key(b, "empty");
    bb_u8(b, 'F');
    bb_open(b);
    bb_close(b);
    MARK();
    bb_key(b, "emptyarr");
    bb_u8(b, 'A');
    bb_open(b);
    bb_close(b);
    MARK();
    bb_key(b, "dup");
    bb_u8(b, 'S');
    bb_lstr(b, "first");
    MARK();
    bb_key(b, "dup");
    bb_u8(b, 'S');
    bb_lstr(b, "second");
    MARK();
    ck_assert_int_eq(b->top, 0);
    if (nbounds)
        *nbounds = nb;
#undef MARK
}

/* A table whose only entry starts a chain of `levels` containers below the
 * outermost table (so the deepest container is at depth levels + 1); an
 * entry in a table takes 7 bytes (key "k", letter, length), in an array 5.
 * kinds[i] is 'F' or 'A' for the container at depth i + 2; NULL means every
 * container is `fill`. Returns a heap buffer of *len bytes. */
static uint8_t *build_nested(size_t levels, const char *kinds, char fill, size_t *len)
{
    size_t total = 0, pos = 0;
    uint8_t *p;

    for (size_t i = 0; i < levels; i++) {
        char parent = i == 0 ? 'F' : (kinds ? kinds[i - 1] : fill);
        total += parent == 'F' ? 7u : 5u;
    }
    p = malloc(total ? total : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < levels; i++) {
        char parent = i == 0 ? 'F' : (kinds ? kinds[i - 1] : fill);
        char kind = kinds ? kinds[i] : fill;
        if (parent == 'F') {
            p[pos++] = 1;
            p[pos++] = 'k';
        }
        p[pos++] = (uint8_t)kind;
        pos += 4;
        wr_store32(p + pos - 4, (uint32_t)(total - pos));
    }
    ck_assert_uint_eq(pos, total);
    *len = total;
    return p;
}

/* ---- tests: types ---- */

struct type_case {
    char letter;
    const uint8_t *payload;
    size_t n;
};

START_TEST(test_each_type_roundtrip)
{
    static const uint8_t p_t[] = {1}, p_t0[] = {0}, p_b[] = {0x80}, p_B[] = {0xff},
                         p_s[] = {0x80, 0x00}, p_u[] = {0xff, 0xfe}, p_I[] = {0xff, 0xff, 0xff, 0xfb},
                         p_i[] = {0xee, 0x6b, 0x28, 0x00}, p_l[] = {0x80, 0, 0, 0, 0, 0, 0, 1},
                         p_L[] = {0, 0, 0, 0, 0, 0, 0x0b, 0xb8}, p_f[] = {0x3f, 0xc0, 0, 0},
                         p_d[] = {0xc0, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18},
                         p_D[] = {3, 0, 0, 0x30, 0x39}, p_S[] = {0, 0, 0, 3, 'a', 'b', 'c'},
                         p_x[] = {0, 0, 0, 2, 0x00, 0xff}, p_A[] = {0, 0, 0, 2, 'V', 'V'},
                         p_T[] = {0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00},
                         p_F[] = {0, 0, 0, 3, 1, 'z', 'V'}, p_S0[] = {0, 0, 0, 0};
    const struct type_case cases[] = {
        {'t', p_t, sizeof p_t},   {'t', p_t0, sizeof p_t0}, {'b', p_b, sizeof p_b},
        {'B', p_B, sizeof p_B},   {'s', p_s, sizeof p_s},   {'u', p_u, sizeof p_u},
        {'I', p_I, sizeof p_I},   {'i', p_i, sizeof p_i},   {'l', p_l, sizeof p_l},
        {'L', p_L, sizeof p_L},   {'f', p_f, sizeof p_f},   {'d', p_d, sizeof p_d},
        {'D', p_D, sizeof p_D},   {'S', p_S, sizeof p_S},   {'S', p_S0, sizeof p_S0},
        {'x', p_x, sizeof p_x},   {'A', p_A, sizeof p_A},   {'T', p_T, sizeof p_T},
        {'F', p_F, sizeof p_F},   {'V', NULL, 0},
    };

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct bb b;
        struct wr_table t;
        struct wr_fv raw;
        const struct wr_fv *v;
        uint8_t *p;

        bb_init(&b);
        bb_key(&b, "key");
        bb_u8(&b, (uint8_t)cases[c].letter);
        bb_mem(&b, cases[c].payload, cases[c].n);
        p = dup_exact(b.buf, b.n);

        ck_assert_int_eq(wr_table_validate(p, b.n), 0);
        assert_roundtrip(p, b.n);
        ck_assert_int_eq(wr_table_get((struct wr_str){(const char *)p, (uint32_t)b.n}, "key", &raw), 1);
        ck_assert_int_eq(raw.type, cases[c].letter);
        ck_assert_int_eq(wr_table_decode((struct wr_str){(const char *)p, (uint32_t)b.n}, &t), 0);
        ck_assert_uint_eq(t.n, 1);
        ck_assert(wr_str_eqc(t.e[0].key, "key"));
        v = &t.e[0].val;
        ck_assert_int_eq(v->type, cases[c].letter);
        switch (cases[c].letter) {
        case 't':
            ck_assert_int_eq(v->v.t, cases[c].payload[0] == 1);
            break;
        case 'b':
            ck_assert_int_eq(v->v.b, -128);
            break;
        case 'B':
            ck_assert_uint_eq(v->v.B, 255);
            break;
        case 's':
            ck_assert_int_eq(v->v.s, -32768);
            break;
        case 'u':
            ck_assert_uint_eq(v->v.u, 65534);
            break;
        case 'I':
            ck_assert_int_eq(v->v.I, -5);
            break;
        case 'i':
            ck_assert_uint_eq(v->v.i, 4000000000u);
            break;
        case 'l':
            ck_assert(v->v.l == INT64_MIN + 1);
            break;
        case 'L':
            ck_assert(v->v.l == 3000);
            break;
        case 'f':
            ck_assert(v->v.f == 1.5f);
            ck_assert(raw.v.f == 1.5f);
            break;
        case 'd':
            ck_assert(fabs(v->v.d - -3.141592653589793) < 1e-15);
            break;
        case 'D':
            ck_assert_uint_eq(v->v.D.scale, 3);
            ck_assert_uint_eq(v->v.D.value, 12345);
            break;
        case 'S':
            ck_assert_uint_eq(v->v.str.len, cases[c].n - 4);
            ck_assert(v->v.str.len == 0 || memcmp(v->v.str.ptr, "abc", 3) == 0);
            /* Strings point into the input, nothing is copied. */
            ck_assert(v->v.str.len == 0 || v->v.str.ptr == (const char *)p + 9);
            break;
        case 'x':
            ck_assert_uint_eq(v->v.str.len, 2);
            ck_assert(memcmp(v->v.str.ptr, "\x00\xff", 2) == 0);
            break;
        case 'A':
            ck_assert_uint_eq(v->v.array->n, 2);
            ck_assert_int_eq(v->v.array->v[1].type, 'V');
            ck_assert_uint_eq(raw.v.str.len, 2);
            break;
        case 'T':
            ck_assert(v->v.T == 1700000000u);
            break;
        case 'F':
            ck_assert_uint_eq(v->v.table->n, 1);
            ck_assert(wr_str_eqc(v->v.table->e[0].key, "z"));
            ck_assert_uint_eq(raw.v.str.len, 3);
            break;
        case 'V':
            break;
        default:
            ck_abort();
        }
        wr_table_free(&t);
        free(p);
    }
}
END_TEST

START_TEST(test_float_bits_preserved)
{
    /* Signalling NaNs and negative zero must come back bit for bit. */
    static const uint8_t body[] = {1, 'f', 'f', 0x7f, 0x80, 0x00, 0x01, 1, 'd', 'd', 0x7f, 0xf0, 0,
                                   0,  0,   0,   0,    0x01, 1,    'z',  'd',  0x80, 0,    0,   0,
                                   0,  0,   0,   0};
    assert_roundtrip(body, sizeof body);
}
END_TEST

START_TEST(test_refused_letters)
{
    /* 'U' is the spec's int16 that RabbitMQ does not read; 'Z', 0 and 0xff
     * are nobody's; lower-case 'c' is a Qpid-only extension. */
    static const uint8_t bad[] = {'U', 'Z', 0x00, 0xff, 'c', 'k', 'C', 'a', 'n'};

    for (size_t i = 0; i < sizeof bad; i++) {
        uint8_t body[] = {1, 'k', bad[i], 0, 0, 0, 0, 0, 0, 0, 0};
        uint8_t arr[] = {bad[i], 0, 0, 0, 0, 0, 0, 0, 0};
        struct wr_table t;

        ck_assert_int_eq(wr_table_validate(body, sizeof body), WR_ESYNTAX);
        ck_assert_int_eq(wr_array_validate(arr, sizeof arr), WR_ESYNTAX);
        ck_assert_int_eq(wr_table_decode((struct wr_str){(const char *)body, sizeof body}, &t),
                         WR_ESYNTAX);
        ck_assert_uint_eq(t.n, 0);
    }
}
END_TEST

START_TEST(test_bool_octet)
{
    static const uint8_t two[] = {1, 'k', 't', 2};
    static const uint8_t ff[] = {'t', 0xff};
    ck_assert_int_eq(wr_table_validate(two, sizeof two), WR_ESYNTAX);
    ck_assert_int_eq(wr_array_validate(ff, sizeof ff), WR_ESYNTAX);
}
END_TEST

START_TEST(test_L_is_signed_like_l)
{
    static const uint8_t body[] = {1, 'k', 'L', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    struct wr_fv v;
    int64_t n;

    ck_assert_int_eq(wr_table_validate(body, sizeof body), 0);
    ck_assert_int_eq(wr_table_get((struct wr_str){(const char *)body, sizeof body}, "k", &v), 1);
    ck_assert_int_eq(v.type, 'L');
    ck_assert(wr_fv_int(&v, &n));
    ck_assert(n == -1);
    assert_roundtrip(body, sizeof body);
}
END_TEST

/* ---- tests: structure ---- */

START_TEST(test_empty_table)
{
    struct wr_table t;
    struct wr_fv v;
    uint8_t out[4];
    struct wr_wb w = wr_wb_init(out, sizeof out);
    static const uint8_t one = 0;

    ck_assert_int_eq(wr_table_validate(NULL, 0), 0);
    ck_assert_int_eq(wr_array_validate(NULL, 0), 0);
    ck_assert_int_eq(wr_table_validate(&one, 0), 0);
    ck_assert_int_eq(wr_table_get(WR_STR_NULL, "k", &v), 0);
    ck_assert_int_eq(wr_table_get(WR_STR_NULL, "", &v), 0);
    ck_assert_int_eq(wr_table_decode(WR_STR_NULL, &t), 0);
    ck_assert_uint_eq(t.n, 0);
    ck_assert_ptr_null(wr_table_find(&t, "k"));
    ck_assert_uint_eq(wr_table_encoded_size(&t), 4);
    wr_table_encode(&w, &t);
    ck_assert_int_eq(w.err, 0);
    ck_assert_uint_eq(wr_load32(out), 0);
    wr_table_free(&t);
    wr_table_free(NULL);
    wr_array_free(NULL);
}
END_TEST

START_TEST(test_complex_roundtrip)
{
    struct bb b;
    struct wr_table t;
    const struct wr_fv *nested, *arr, *deep;

    build_complex(&b, NULL, NULL);
    ck_assert_int_eq(wr_table_validate(b.buf, b.n), 0);
    assert_roundtrip(b.buf, b.n);

    ck_assert_int_eq(wr_table_decode(bb_str(&b), &t), 0);
    ck_assert_uint_eq(t.n, 16);
    nested = wr_table_find(&t, "nested");
    ck_assert_ptr_nonnull(nested);
    ck_assert_int_eq(nested->type, 'F');
    ck_assert_uint_eq(nested->v.table->n, 3);
    arr = wr_table_find(nested->v.table, "arr");
    ck_assert_ptr_nonnull(arr);
    ck_assert_int_eq(arr->type, 'A');
    ck_assert_uint_eq(arr->v.array->n, 3);
    ck_assert_int_eq(arr->v.array->v[0].v.b, -1);
    ck_assert_int_eq(arr->v.array->v[1].type, 'F');
    ck_assert_int_eq(arr->v.array->v[2].v.s, 300);
    /* array inside a table inside an array inside a table */
    deep = wr_table_find(arr->v.array->v[1].v.table, "deep");
    ck_assert_ptr_nonnull(deep);
    ck_assert_int_eq(deep->type, 'A');
    ck_assert_uint_eq(deep->v.array->n, 3);
    ck_assert(wr_str_eqc(deep->v.array->v[0].v.str, "x"));
    ck_assert_int_eq(deep->v.array->v[1].type, 'V');
    ck_assert_uint_eq(deep->v.array->v[2].v.D.value, 12345);
    ck_assert_uint_eq(wr_table_find(&t, "empty")->v.table->n, 0);
    ck_assert_uint_eq(wr_table_find(&t, "emptyarr")->v.array->n, 0);
    ck_assert(wr_table_find(&t, "flt")->v.f == -1.25f);
    ck_assert(wr_table_find(&t, "dbl")->v.d == 3.5);
    /* not found at the top level: only in a nested table */
    ck_assert_ptr_null(wr_table_find(&t, "deep"));
    ck_assert_ptr_null(wr_table_find(&t, "a"));
    wr_table_free(&t);
}
END_TEST

START_TEST(test_array_table_array)
{
    /* top: "k" -> A [ F { "t" -> A [ F { "x" -> A [ I 7 ] } ] }, A [ A [] ] ] */
    struct bb b;
    struct wr_table t;
    const struct wr_array *a;

    bb_init(&b);
    bb_key(&b, "k");
    bb_u8(&b, 'A');
    bb_open(&b);
    bb_u8(&b, 'F');
    bb_open(&b);
    bb_key(&b, "t");
    bb_u8(&b, 'A');
    bb_open(&b);
    bb_u8(&b, 'F');
    bb_open(&b);
    bb_key(&b, "x");
    bb_u8(&b, 'A');
    bb_open(&b);
    bb_u8(&b, 'I');
    bb_u32(&b, 7);
    bb_close(&b);
    bb_close(&b);
    bb_close(&b);
    bb_close(&b);
    bb_u8(&b, 'A');
    bb_open(&b);
    bb_u8(&b, 'A');
    bb_open(&b);
    bb_close(&b);
    bb_close(&b);
    bb_close(&b);

    ck_assert_int_eq(wr_table_validate(b.buf, b.n), 0);
    assert_roundtrip(b.buf, b.n);
    ck_assert_int_eq(wr_table_decode(bb_str(&b), &t), 0);
    a = t.e[0].val.v.array;
    ck_assert_uint_eq(a->n, 2);
    a = wr_table_find(a->v[0].v.table, "t")->v.array;
    a = wr_table_find(a->v[0].v.table, "x")->v.array;
    ck_assert_uint_eq(a->n, 1);
    ck_assert_int_eq(a->v[0].v.I, 7);
    wr_table_free(&t);
}
END_TEST

START_TEST(test_duplicate_keys)
{
    struct bb b;
    struct wr_table t;
    struct wr_fv v;

    build_complex(&b, NULL, NULL);
    ck_assert_int_eq(wr_table_decode(bb_str(&b), &t), 0);
    ck_assert(wr_str_eqc(t.e[14].key, "dup"));
    ck_assert(wr_str_eqc(t.e[15].key, "dup"));
    ck_assert(wr_str_eqc(t.e[14].val.v.str, "first"));
    ck_assert(wr_str_eqc(t.e[15].val.v.str, "second"));
    ck_assert(wr_str_eqc(wr_table_find(&t, "dup")->v.str, "first"));
    ck_assert_int_eq(wr_table_get(bb_str(&b), "dup", &v), 1);
    ck_assert(wr_str_eqc(v.v.str, "first"));
    wr_table_free(&t);
}
END_TEST

START_TEST(test_get_hits_and_misses)
{
    struct bb b;
    struct wr_fv v;
    struct wr_str body;

    build_complex(&b, NULL, NULL);
    body = bb_str(&b);

    ck_assert_int_eq(wr_table_get(body, "str", &v), 1);
    ck_assert_int_eq(v.type, 'S');
    ck_assert(wr_str_eqc(v.v.str, "hello"));
    ck_assert_int_eq(wr_table_get(body, "int", &v), 1);
    ck_assert_int_eq(v.v.I, -5);
    ck_assert_int_eq(wr_table_get(body, "B", &v), 1);
    ck_assert_uint_eq(v.v.B, 200);
    ck_assert_int_eq(wr_table_get(body, "void", &v), 1);
    ck_assert_int_eq(v.type, 'V');
    ck_assert_int_eq(wr_table_get(body, "ts", NULL), 1);
    /* F and A come back raw: the body without its length. */
    ck_assert_int_eq(wr_table_get(body, "nested", &v), 1);
    ck_assert_int_eq(v.type, 'F');
    ck_assert_int_eq(wr_table_validate((const uint8_t *)v.v.str.ptr, v.v.str.len), 0);
    {
        struct wr_fv a;
        ck_assert_int_eq(wr_table_get(v.v.str, "arr", &a), 1);
        ck_assert_int_eq(a.type, 'A');
        ck_assert_int_eq(wr_array_validate((const uint8_t *)a.v.str.ptr, a.v.str.len), 0);
        ck_assert_int_eq(wr_table_get(v.v.str, "u", &a), 1);
        ck_assert_uint_eq(a.v.u, 65535);
    }
    ck_assert_int_eq(wr_table_get(body, "empty", &v), 1);
    ck_assert_uint_eq(v.v.str.len, 0);

    /* misses: absent, prefix, extension, case, nested-only */
    ck_assert_int_eq(wr_table_get(body, "nope", &v), 0);
    ck_assert_int_eq(wr_table_get(body, "st", &v), 0);
    ck_assert_int_eq(wr_table_get(body, "strx", &v), 0);
    ck_assert_int_eq(wr_table_get(body, "STR", &v), 0);
    ck_assert_int_eq(wr_table_get(body, "deep", &v), 0);
    ck_assert_int_eq(wr_table_get(body, "a", &v), 0);
    ck_assert_int_eq(wr_table_get(body, "", &v), 0);

    /* the empty key is a key like any other */
    {
        static const uint8_t e[] = {0, 'b', 7};
        ck_assert_int_eq(wr_table_get((struct wr_str){(const char *)e, sizeof e}, "", &v), 1);
        ck_assert_int_eq(v.v.b, 7);
    }
}
END_TEST

START_TEST(test_get_unvalidated_stops)
{
    /* A good first entry, then garbage: lookups of the first still work,
     * anything after the garbage is "absent", nothing is read out of bounds. */
    static const uint8_t src[] = {1, 'a', 'B', 9, 1, 'b', 'Z', 1, 'c', 'B', 1};
    uint8_t *p = dup_exact(src, sizeof src);
    struct wr_str body = {(const char *)p, sizeof src};
    struct wr_fv v;

    ck_assert_int_eq(wr_table_validate(p, sizeof src), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_get(body, "a", &v), 1);
    ck_assert_int_eq(wr_table_get(body, "c", &v), 0);
    free(p);
}
END_TEST

START_TEST(test_next_walk)
{
    struct bb b;
    struct wr_rd r;
    struct wr_str k;
    struct wr_fv v;
    int rc, n = 0, dups = 0;

    build_complex(&b, NULL, NULL);
    r = wr_rd_init(b.buf, b.n);
    while ((rc = wr_table_next(&r, &k, &v)) > 0) {
        n++;
        dups += wr_str_eqc(k, "dup");
        if (wr_str_eqc(k, "nested")) {
            /* nested bodies come back raw and walk the same way */
            struct wr_rd in = wr_rd_init(v.v.str.ptr, v.v.str.len);
            struct wr_str ik;
            struct wr_fv iv;
            int m = 0;
            while (wr_table_next(&in, &ik, &iv) > 0) {
                if (wr_str_eqc(ik, "arr")) {
                    struct wr_rd ar = wr_rd_init(iv.v.str.ptr, iv.v.str.len);
                    struct wr_fv av;
                    const char *types = "bFs";
                    int j = 0;
                    while (wr_array_next(&ar, &av) > 0)
                        ck_assert_int_eq(av.type, types[j++]);
                    ck_assert_int_eq(j, 3);
                    ck_assert_int_eq(wr_array_next(&ar, &av), 0);
                }
                m++;
            }
            ck_assert_int_eq(m, 3);
        }
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 16);
    ck_assert_int_eq(dups, 2);
    ck_assert_int_eq(wr_table_next(&r, &k, &v), 0); /* stays at the end */

    /* keys that are not C strings are walked like any other */
    {
        static const uint8_t nul[] = {3, 'a', 0, 'b', 'B', 7};
        r = wr_rd_init(nul, sizeof nul);
        ck_assert_int_eq(wr_table_next(&r, &k, &v), 1);
        ck_assert_uint_eq(k.len, 3);
        ck_assert(memcmp(k.ptr, "a\0b", 3) == 0);
        ck_assert_int_eq(wr_table_next(&r, &k, &v), 0);
    }
    /* malformed: ESYNTAX, and the reader stays at the bad item */
    {
        static const uint8_t src[] = {1, 'a', 'V', 1, 'b', 'I', 0, 0};
        uint8_t *p = dup_exact(src, sizeof src);
        r = wr_rd_init(p, sizeof src);
        ck_assert_int_eq(wr_table_next(&r, &k, &v), 1);
        ck_assert_int_eq(wr_table_next(&r, &k, &v), WR_ESYNTAX);
        ck_assert_ptr_eq(r.p, p + 3);
        free(p);
    }
    {
        static const uint8_t src[] = {'V', 'Z'};
        uint8_t *p = dup_exact(src, sizeof src);
        r = wr_rd_init(p, sizeof src);
        ck_assert_int_eq(wr_array_next(&r, &v), 1);
        ck_assert_int_eq(wr_array_next(&r, &v), WR_ESYNTAX);
        ck_assert_ptr_eq(r.p, p + 1);
        free(p);
    }
    /* empty body */
    {
        static const uint8_t one[1];
        r = wr_rd_init(one, 0);
        ck_assert_int_eq(wr_table_next(&r, &k, &v), 0);
        ck_assert_int_eq(wr_array_next(&r, &v), 0);
    }
}
END_TEST

START_TEST(test_fv_int)
{
    static const struct {
        uint8_t body[12];
        size_t n;
        int ok;
        int64_t want;
    } cases[] = {
        {{1, 'k', 'b', 0x80}, 4, 1, -128},
        {{1, 'k', 'b', 0x7f}, 4, 1, 127},
        {{1, 'k', 'B', 0xff}, 4, 1, 255},
        {{1, 'k', 's', 0x80, 0x00}, 5, 1, -32768},
        {{1, 'k', 'u', 0xff, 0xff}, 5, 1, 65535},
        {{1, 'k', 'I', 0x80, 0, 0, 0}, 7, 1, INT32_MIN},
        {{1, 'k', 'i', 0xff, 0xff, 0xff, 0xff}, 7, 1, 4294967295LL},
        {{1, 'k', 'l', 0x80, 0, 0, 0, 0, 0, 0, 0}, 11, 1, INT64_MIN},
        {{1, 'k', 'l', 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 11, 1, INT64_MAX},
        {{1, 'k', 'L', 0, 0, 0, 0, 0, 0, 0x0b, 0xb8}, 11, 1, 3000},
        {{1, 'k', 'T', 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 11, 1, INT64_MAX},
        {{1, 'k', 'T', 0x80, 0, 0, 0, 0, 0, 0, 0}, 11, 0, 0},
        {{1, 'k', 'T', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 11, 0, 0},
        {{1, 'k', 't', 1}, 4, 0, 0},
        {{1, 'k', 'f', 0x3f, 0x80, 0, 0}, 7, 0, 0},
        {{1, 'k', 'd', 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, 11, 0, 0},
        {{1, 'k', 'D', 0, 0, 0, 0, 5}, 8, 0, 0},
        {{1, 'k', 'S', 0, 0, 0, 1, '5'}, 8, 0, 0},
        {{1, 'k', 'V'}, 3, 0, 0},
        {{1, 'k', 'F', 0, 0, 0, 0}, 7, 0, 0},
        {{1, 'k', 'A', 0, 0, 0, 0}, 7, 0, 0},
        {{1, 'k', 'x', 0, 0, 0, 0}, 7, 0, 0},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wr_str body = {(const char *)cases[i].body, (uint32_t)cases[i].n};
        struct wr_table t;
        struct wr_fv v;
        int64_t n = 12345;

        ck_assert_int_eq(wr_table_validate(cases[i].body, cases[i].n), 0);
        ck_assert_int_eq(wr_table_get(body, "k", &v), 1);
        ck_assert_int_eq(wr_fv_int(&v, &n), cases[i].ok);
        if (cases[i].ok)
            ck_assert(n == cases[i].want);
        /* the tree form answers the same */
        ck_assert_int_eq(wr_table_decode(body, &t), 0);
        ck_assert_int_eq(wr_fv_int(&t.e[0].val, &n), cases[i].ok);
        if (cases[i].ok)
            ck_assert(n == cases[i].want);
        wr_table_free(&t);
    }
}
END_TEST

/* ---- tests: building ---- */

START_TEST(test_build_and_encode)
{
    static const uint8_t want[] = {
        0,   0,    0,   58,                                      /* table length */
        5,   'x',  '-', 't', 't', 'l', 'I', 0, 0, 0x75, 0x30,    /* x-ttl I 30000 */
        4,   'n',  'a', 'm', 'e', 'S', 0, 0, 0, 2, 'h', 'i',     /* name S "hi" */
        3,   's',  'u', 'b', 'F', 0, 0, 0, 7,                    /* sub F */
        2,   'o',  'k', 't', 1,                                  /*   ok t 1 */
        0,   'V',                                                /*   "" V */
        4,   'l',  'i', 's', 't', 'A', 0, 0, 0, 9,               /* list A */
        'B', 1,    'A', 0, 0, 0, 2, 'b', 0xfe,                   /*   B 1, A [b -2] */
    };
    struct wr_table t = {0, 0, NULL};
    struct wr_table *sub = calloc(1, sizeof *sub);
    struct wr_array *list = calloc(1, sizeof *list);
    struct wr_array *inner = calloc(1, sizeof *inner);
    struct wr_fv v;
    uint8_t out[sizeof want];
    struct wr_wb w = wr_wb_init(out, sizeof out);
    struct wr_table back;

    ck_assert(sub && list && inner);
    v = (struct wr_fv){.type = 'I', .v.I = 30000};
    ck_assert_int_eq(wr_table_add(&t, WR_STR("x-ttl"), v), 0);
    v = (struct wr_fv){.type = 'S', .v.str = WR_STR("hi")};
    ck_assert_int_eq(wr_table_add(&t, WR_STR("name"), v), 0);

    ck_assert_int_eq(wr_table_add(sub, WR_STR("ok"), (struct wr_fv){.type = 't', .v.t = true}), 0);
    ck_assert_int_eq(wr_table_add(sub, WR_STR(""), (struct wr_fv){.type = 'V'}), 0);
    ck_assert_int_eq(wr_table_add(&t, WR_STR("sub"), (struct wr_fv){.type = 'F', .v.table = sub}), 0);

    ck_assert_int_eq(wr_array_add(inner, (struct wr_fv){.type = 'b', .v.b = -2}), 0);
    ck_assert_int_eq(wr_array_add(list, (struct wr_fv){.type = 'B', .v.B = 1}), 0);
    ck_assert_int_eq(wr_array_add(list, (struct wr_fv){.type = 'A', .v.array = inner}), 0);
    ck_assert_int_eq(wr_table_add(&t, WR_STR("list"), (struct wr_fv){.type = 'A', .v.array = list}),
                     0);

    ck_assert_uint_eq(wr_table_encoded_size(&t), sizeof want);
    wr_table_encode(&w, &t);
    ck_assert_int_eq(w.err, 0);
    ck_assert_ptr_eq(w.p, out + sizeof want);
    ck_assert(memcmp(out, want, sizeof want) == 0);

    /* and it reads back */
    ck_assert_int_eq(wr_table_decode((struct wr_str){(const char *)out + 4, sizeof want - 4}, &back), 0);
    ck_assert_uint_eq(back.n, 4);
    ck_assert_int_eq(wr_table_find(&back, "x-ttl")->v.I, 30000);
    wr_table_free(&back);

    /* too small a buffer: ENOSPC, never a write past the end */
    for (size_t cap = 0; cap < sizeof want; cap++) {
        uint8_t *small = malloc(cap ? cap : 1);
        struct wr_wb ws = wr_wb_init(small, cap);
        wr_table_encode(&ws, &t);
        ck_assert_int_eq(ws.err, WR_ENOSPC);
        free(small);
    }
    wr_table_free(&t); /* frees sub, list and inner too (ASan/LSan check) */
    ck_assert_uint_eq(t.n, 0);
}
END_TEST

START_TEST(test_add_rejects)
{
    struct wr_table t = {0, 0, NULL};
    struct wr_array a = {0, 0, NULL};
    char key[256];

    memset(key, 'k', sizeof key);
    ck_assert_int_eq(wr_table_add(&t, (struct wr_str){key, 256}, (struct wr_fv){.type = 'V'}),
                     WR_ESYNTAX);
    ck_assert_int_eq(wr_table_add(&t, (struct wr_str){key, 255}, (struct wr_fv){.type = 'V'}), 0);
    ck_assert_int_eq(wr_table_add(&t, WR_STR("k"), (struct wr_fv){.type = 'Z'}), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_add(&t, WR_STR("k"), (struct wr_fv){.type = 'U'}), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_add(&t, WR_STR("k"), (struct wr_fv){.type = 'F', .v.table = NULL}),
                     WR_ESYNTAX);
    ck_assert_int_eq(wr_array_add(&a, (struct wr_fv){.type = 'A', .v.array = NULL}), WR_ESYNTAX);
    ck_assert_int_eq(wr_table_add(&t, (struct wr_str){NULL, 3}, (struct wr_fv){.type = 'V'}),
                     WR_ESYNTAX);
    ck_assert_uint_eq(t.n, 1);
    ck_assert_uint_eq(a.n, 0);

    /* a 255-byte key encodes and round-trips */
    {
        size_t sz = wr_table_encoded_size(&t);
        uint8_t *out = malloc(sz);
        struct wr_wb w = wr_wb_init(out, sz);
        ck_assert_uint_eq(sz, 4 + 1 + 255 + 1);
        wr_table_encode(&w, &t);
        ck_assert_int_eq(w.err, 0);
        assert_roundtrip(out + 4, sz - 4);
        free(out);
    }
    /* many entries: growth keeps order */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(wr_table_add(&t, WR_STR("n"), (struct wr_fv){.type = 'I', .v.I = i}), 0);
    ck_assert_uint_eq(t.n, 1001);
    ck_assert_int_eq(t.e[1000].val.v.I, 999);
    ck_assert_int_eq(wr_table_find(&t, "n")->v.I, 0);
    wr_table_free(&t);
    wr_array_free(&a);
}
END_TEST

START_TEST(test_encode_rejects_bad_trees)
{
    struct wr_table t = {0, 0, NULL};
    struct wr_table *cur = &t;
    uint8_t out[2048];
    struct wr_wb w;

    /* A hand-built tree deeper than the limit cannot be encoded. */
    for (int i = 1; i <= WR_FIELD_MAX_DEPTH; i++) {
        struct wr_table *sub = calloc(1, sizeof *sub);
        ck_assert_ptr_nonnull(sub);
        ck_assert_int_eq(wr_table_add(cur, WR_STR("k"), (struct wr_fv){.type = 'F', .v.table = sub}),
                         0);
        cur = sub;
    }
    /* depth is now WR_FIELD_MAX_DEPTH + 1 */
    ck_assert_uint_eq(wr_table_encoded_size(&t), 0);
    w = wr_wb_init(out, sizeof out);
    wr_table_encode(&w, &t);
    ck_assert_int_eq(w.err, WR_ESYNTAX);

    /* remove the deepest level: exactly at the limit, it encodes */
    {
        struct wr_table *p = &t;
        for (int i = 1; i < WR_FIELD_MAX_DEPTH; i++)
            p = p->e[0].val.v.table;
        wr_table_free(p->e[0].val.v.table);
        free(p->e[0].val.v.table);
        p->e[0].val = (struct wr_fv){.type = 'V'};
    }
    ck_assert_uint_gt(wr_table_encoded_size(&t), 0);
    w = wr_wb_init(out, sizeof out);
    wr_table_encode(&w, &t);
    ck_assert_int_eq(w.err, 0);
    ck_assert_int_eq(wr_table_validate(out + 4, (size_t)(w.p - out) - 4), 0);
    wr_table_free(&t);

    /* a value with an unknown letter slipped in after wr_table_add */
    ck_assert_int_eq(wr_table_add(&t, WR_STR("k"), (struct wr_fv){.type = 'V'}), 0);
    t.e[0].val.type = 'Z';
    ck_assert_uint_eq(wr_table_encoded_size(&t), 0);
    w = wr_wb_init(out, sizeof out);
    wr_table_encode(&w, &t);
    ck_assert_int_eq(w.err, WR_ESYNTAX);
    t.e[0].val.type = 'V';
    wr_table_free(&t);
}
END_TEST

/* ---- tests: framing helpers ---- */

START_TEST(test_rd_table_and_raw_write)
{
    struct bb b;
    uint8_t *buf;
    size_t n;
    struct wr_rd r;
    struct wr_str body;
    struct wr_wb w;
    uint8_t *out;

    build_complex(&b, NULL, NULL);
    n = 4 + b.n + 1;
    buf = malloc(n);
    wr_store32(buf, (uint32_t)b.n);
    memcpy(buf + 4, b.buf, b.n);
    buf[n - 1] = 0xaa; /* the next field of the method */

    r = wr_rd_init(buf, n);
    ck_assert_int_eq(wr_rd_table(&r, &body), 0);
    ck_assert_uint_eq(body.len, b.n);
    ck_assert_ptr_eq(body.ptr, (const char *)buf + 4);
    ck_assert_uint_eq(wr_rd_left(&r), 1);

    out = malloc(n);
    w = wr_wb_init(out, n);
    wr_wb_table_raw(&w, body);
    ck_assert_int_eq(w.err, 0);
    ck_assert(memcmp(out, buf, n - 1) == 0);
    free(out);

    /* truncated anywhere, including inside the length: ESYNTAX, reader untouched */
    for (size_t cut = 0; cut < 4 + b.n; cut++) {
        uint8_t *p = dup_exact(buf, cut);
        struct wr_rd rr = wr_rd_init(p, cut);
        const uint8_t *start = rr.p;
        ck_assert_int_eq(wr_rd_table(&rr, &body), WR_ESYNTAX);
        ck_assert_ptr_eq(rr.p, start);
        free(p);
    }
    /* a valid length around an invalid body */
    {
        static const uint8_t bad[] = {0, 0, 0, 3, 1, 'k', 'Z'};
        struct wr_rd rr = wr_rd_init(bad, sizeof bad);
        ck_assert_int_eq(wr_rd_table(&rr, &body), WR_ESYNTAX);
    }
    free(buf);
}
END_TEST

/* ---- tests: malformed input ---- */

START_TEST(test_truncated_everywhere)
{
    struct bb b;
    size_t bounds[32], nb;

    build_complex(&b, bounds, &nb);
    for (size_t cut = 0; cut < b.n; cut++) {
        int at_boundary = 0;
        for (size_t i = 0; i < nb; i++)
            at_boundary |= bounds[i] == cut;
        /* Cutting between two top-level entries leaves a shorter valid
         * table; every other cut is a syntax error. */
        ck_assert_int_eq(assert_contract(b.buf, cut), at_boundary ? 0 : WR_ESYNTAX);
    }

    /* The same bytes as the only entry of a table: now every cut fails. */
    {
        struct bb w;
        bb_init(&w);
        bb_key(&w, "all");
        bb_u8(&w, 'F');
        bb_open(&w);
        bb_mem(&w, b.buf, b.n);
        bb_close(&w);
        for (size_t cut = 1; cut < w.n; cut++)
            ck_assert_int_eq(assert_contract(w.buf, cut), WR_ESYNTAX);
        ck_assert_int_eq(assert_contract(w.buf, w.n), 0);
        /* and as an array element */
        bb_init(&w);
        bb_u8(&w, 'F');
        bb_open(&w);
        bb_mem(&w, b.buf, b.n);
        bb_close(&w);
        for (size_t cut = 1; cut < w.n; cut++) {
            uint8_t *p = dup_exact(w.buf, cut);
            ck_assert_int_eq(wr_array_validate(p, cut), WR_ESYNTAX);
            free(p);
        }
    }
}
END_TEST

START_TEST(test_oversized_lengths)
{
    static const uint8_t cases[][16] = {
        /* S claims more than there is */
        {1, 'k', 'S', 0, 0, 0, 5, 'a', 'b'},
        /* S claims 4 GiB - 1 */
        {1, 'k', 'S', 0xff, 0xff, 0xff, 0xff, 'a'},
        {1, 'k', 'x', 0x80, 0, 0, 0, 'a'},
        /* F and A longer than the buffer */
        {1, 'k', 'F', 0, 0, 0, 9, 1, 'a', 'V'},
        {1, 'k', 'A', 0xff, 0xff, 0xff, 0xff, 'V'},
        /* key length past the end */
        {9, 'k', 'V'},
        {0xff},
    };
    static const size_t lens[] = {9, 8, 8, 10, 8, 3, 1};

    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        ck_assert_int_eq(assert_contract(cases[i], lens[i]), WR_ESYNTAX);

    /* Inner length larger than the outer one while the buffer continues:
     * F says 4 bytes, its S says 6, the bytes exist but belong outside. */
    {
        static const uint8_t b[] = {1,   'k', 'F', 0,   0,   0,   4,  0, 'S', 0, 0,
                                    0,   6,   'a', 'b', 'c', 'd', 'e', 'f'};
        ck_assert_int_eq(assert_contract(b, sizeof b), WR_ESYNTAX);
    }
    /* A nested F overrunning its parent F (with the buffer continuing). */
    {
        static const uint8_t b[] = {1,   'o', 'F', 0,   0,   0, 7, 1, 'i', 'F',
                                    0,   0,   0,   4,   1,   'z', 'V', 1, 'p', 'V'};
        ck_assert_int_eq(assert_contract(b, sizeof b), WR_ESYNTAX);
    }
    /* An array element overrunning its array. */
    {
        static const uint8_t b[] = {1, 'k', 'A', 0, 0, 0, 2, 'I', 0, 0, 0, 0};
        ck_assert_int_eq(assert_contract(b, sizeof b), WR_ESYNTAX);
    }
    /* Trailing single byte after a good entry. */
    {
        static const uint8_t b[] = {1, 'k', 'V', 1};
        ck_assert_int_eq(assert_contract(b, sizeof b), WR_ESYNTAX);
    }
}
END_TEST

START_TEST(test_nesting_10000)
{
    static const char *fills = "FA";

    for (int f = 0; f < 2; f++) {
        size_t len;
        uint8_t *p = build_nested(10000, NULL, fills[f], &len);
        struct wr_table t;
        struct wr_rd r;
        struct wr_str body;
        uint8_t *framed;

        ck_assert_int_eq(wr_table_validate(p, len), WR_ESYNTAX);
        ck_assert_int_eq(wr_table_decode((struct wr_str){(const char *)p, (uint32_t)len}, &t),
                         WR_ESYNTAX);
        ck_assert_uint_eq(t.n, 0);
        /* the top-level entry itself is still findable without descending */
        ck_assert_int_eq(wr_table_get((struct wr_str){(const char *)p, (uint32_t)len}, "k", NULL),
                         1);
        framed = malloc(len + 4);
        wr_store32(framed, (uint32_t)len);
        memcpy(framed + 4, p, len);
        r = wr_rd_init(framed, len + 4);
        ck_assert_int_eq(wr_rd_table(&r, &body), WR_ESYNTAX);
        free(framed);
        free(p);
    }
}
END_TEST

START_TEST(test_nesting_at_limit)
{
    /* WR_FIELD_MAX_DEPTH counts the outermost table: it may hold containers
     * MAX_DEPTH - 1 deep. Try all-tables, all-arrays and alternating. */
    char kinds[WR_FIELD_MAX_DEPTH + 1];

    for (int mode = 0; mode < 3; mode++) {
        for (size_t i = 0; i < sizeof kinds; i++)
            kinds[i] = mode == 0 ? 'F' : mode == 1 ? 'A' : (i % 2 ? 'A' : 'F');
        for (size_t levels = WR_FIELD_MAX_DEPTH - 2; levels <= WR_FIELD_MAX_DEPTH; levels++) {
            size_t len;
            uint8_t *p = build_nested(levels, kinds, 0, &len);
            int want = levels + 1 <= WR_FIELD_MAX_DEPTH ? 0 : WR_ESYNTAX;

            ck_assert_int_eq(assert_contract(p, len), want);
            if (want == 0) {
                /* the decoded tree really is that deep */
                struct wr_table t;
                const struct wr_fv *v;
                size_t depth = 1;
                ck_assert_int_eq(wr_table_decode((struct wr_str){(const char *)p, (uint32_t)len}, &t),
                                 0);
                v = &t.e[0].val;
                for (;;) {
                    depth++;
                    if (v->type == 'F' && v->v.table->n)
                        v = &v->v.table->e[0].val;
                    else if (v->type == 'A' && v->v.array->n)
                        v = &v->v.array->v[0];
                    else
                        break;
                }
                ck_assert_uint_eq(depth, levels + 1);
                wr_table_free(&t);
            }
            free(p);
        }
    }
    /* An array body on its own counts as depth 1 just like a table. */
    {
        uint8_t arr[5 * WR_FIELD_MAX_DEPTH];
        for (size_t levels = WR_FIELD_MAX_DEPTH - 1; levels <= WR_FIELD_MAX_DEPTH; levels++) {
            for (size_t i = 0; i < levels; i++) {
                arr[5 * i] = 'A';
                wr_store32(arr + 5 * i + 1, (uint32_t)(5 * (levels - i - 1)));
            }
            ck_assert_int_eq(wr_array_validate(arr, 5 * levels),
                             levels + 1 <= WR_FIELD_MAX_DEPTH ? 0 : WR_ESYNTAX);
        }
    }
}
END_TEST

/* ---- tests: random input ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)((rng_next(s) >> 32) % n);
}

START_TEST(test_random_bytes)
{
    /* Bytes drawn mostly from type letters and small numbers, so that short
     * valid tables turn up often and the invalid ones fail late. */
    static const uint8_t alphabet[] = "tbBsuIilLfdDSxATFVUZ\x00\x01\x02\x03\x04\x05\x07\xff";
    uint64_t seed = 0x5eed0001ull;
    uint8_t buf[96];
    long valid = 0;

    for (int it = 0; it < 200000; it++) {
        size_t len = rng_below(&seed, sizeof buf + 1);
        int mostly_alpha = it % 4 != 0;
        for (size_t i = 0; i < len; i++)
            buf[i] = mostly_alpha ? alphabet[rng_below(&seed, sizeof alphabet - 1)]
                                  : (uint8_t)rng_next(&seed);
        if (assert_contract(buf, len) == 0)
            valid++;
    }
    /* the generator does reach valid tables, not just the empty one */
    ck_assert_int_gt(valid, 1000);
}
END_TEST

/* Writes a random well-formed value (letter and payload). */
static void gen_value(struct bb *b, uint64_t *s, int depth);

static void gen_items(struct bb *b, uint64_t *s, int depth, int table)
{
    uint32_t n = rng_below(s, 5);
    for (uint32_t i = 0; i < n; i++) {
        if (table) {
            char key[8];
            uint32_t kl = rng_below(s, 4);
            for (uint32_t k = 0; k < kl; k++)
                key[k] = (char)('a' + rng_below(s, 3));
            key[kl] = 0;
            bb_key(b, key);
        }
        gen_value(b, s, depth);
    }
}

static void gen_value(struct bb *b, uint64_t *s, int depth)
{
    static const char letters[] = "tbBsuIilLfdDSxATFV";
    char c = letters[rng_below(s, sizeof letters - 1)];

    if ((c == 'F' || c == 'A') && depth >= 5)
        c = 'V';
    bb_u8(b, (uint8_t)c);
    switch (c) {
    case 't':
        bb_u8(b, (uint8_t)rng_below(s, 2));
        break;
    case 'b':
    case 'B':
        bb_u8(b, (uint8_t)rng_next(s));
        break;
    case 's':
    case 'u':
        bb_u16(b, (uint16_t)rng_next(s));
        break;
    case 'I':
    case 'i':
    case 'f':
        bb_u32(b, (uint32_t)rng_next(s));
        break;
    case 'l':
    case 'L':
    case 'd':
    case 'T':
        bb_u64(b, rng_next(s));
        break;
    case 'D':
        bb_u8(b, (uint8_t)rng_next(s));
        bb_u32(b, (uint32_t)rng_next(s));
        break;
    case 'S':
    case 'x': {
        uint32_t n = rng_below(s, 6);
        bb_u32(b, n);
        for (uint32_t i = 0; i < n; i++)
            bb_u8(b, (uint8_t)rng_next(s));
        break;
    }
    case 'F':
    case 'A':
        bb_open(b);
        gen_items(b, s, depth + 1, c == 'F');
        bb_close(b);
        break;
    default:
        break;
    }
}

START_TEST(test_random_structured_and_mutated)
{
    uint64_t seed = 0x5eed0002ull;
    static struct bb b;

    for (int it = 0; it < 20000; it++) {
        bb_init(&b);
        gen_items(&b, &seed, 1, 1);
        /* what the generator builds is valid and round-trips */
        ck_assert_int_eq(assert_contract(b.buf, b.n), 0);
        if (b.n == 0)
            continue;
        /* then mutate a copy a few ways */
        for (int m = 0; m < 4; m++) {
            uint32_t nmut = 1 + rng_below(&seed, 3);
            uint8_t *c = dup_exact(b.buf, b.n);
            size_t n = b.n;
            for (uint32_t k = 0; k < nmut && n > 0; k++) {
                size_t at = rng_below(&seed, (uint32_t)n);
                switch (rng_below(&seed, 4)) {
                case 0:
                    c[at] ^= (uint8_t)(1u << rng_below(&seed, 8));
                    break;
                case 1:
                    c[at] = (uint8_t)rng_next(&seed);
                    break;
                case 2:
                    n = at; /* truncate */
                    break;
                default:
                    c[at] = (uint8_t)"tbBsuIilLfdDSxATFVZ"[rng_below(&seed, 19)];
                    break;
                }
            }
            (void)assert_contract(c, n);
            free(c);
        }
    }
}
END_TEST

/* ---- tests: allocation failure ---- */

START_TEST(test_enomem_decode)
{
    struct bb b;
    struct wr_table t;
    int rc = WR_ENOMEM;
    long budget;

    if (!alloc_wrapped())
        return; /* not linked with --wrap: nothing to inject */
    build_complex(&b, NULL, NULL);
    /* Fail the first allocation, then the second, ... until it succeeds. */
    for (budget = 0; rc == WR_ENOMEM; budget++) {
        ck_assert_int_lt(budget, 1000);
        alloc_budget = budget;
        rc = wr_table_decode(bb_str(&b), &t);
        alloc_budget = -1;
        if (rc == WR_ENOMEM) {
            ck_assert_uint_eq(t.n, 0);
            ck_assert_ptr_null(t.e);
        }
    }
    /* It took 11 allocations: the top entries, then struct + items for the
     * four non-empty nested containers and a struct for each empty one. */
    ck_assert_int_eq(budget - 1, 11);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(t.n, 16);
    wr_table_free(&t);
}
END_TEST

START_TEST(test_enomem_add)
{
    struct wr_table t = {0, 0, NULL};
    struct wr_array a = {0, 0, NULL};
    struct wr_table *sub;
    int rc1, rc2;

    if (!alloc_wrapped())
        return;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(wr_table_add(&t, WR_STR("k"), (struct wr_fv){.type = 'V'}), 0);
    /* the fifth entry needs to grow the array */
    sub = calloc(1, sizeof *sub);
    ck_assert_ptr_nonnull(sub);
    /* no Check macros while armed: Check allocates too */
    alloc_budget = 0;
    rc1 = wr_table_add(&t, WR_STR("s"), (struct wr_fv){.type = 'F', .v.table = sub});
    rc2 = wr_array_add(&a, (struct wr_fv){.type = 'V'});
    alloc_budget = -1;
    ck_assert_int_eq(rc1, WR_ENOMEM);
    ck_assert_int_eq(rc2, WR_ENOMEM);
    /* nothing changed, and the caller still owns sub */
    ck_assert_uint_eq(t.n, 4);
    ck_assert_uint_eq(t.cap, 4);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_ptr_null(a.v);
    ck_assert_int_eq(wr_table_add(&t, WR_STR("s"), (struct wr_fv){.type = 'F', .v.table = sub}), 0);
    ck_assert_uint_eq(t.n, 5);
    wr_table_free(&t);
}
END_TEST

static Suite *field_suite(void)
{
    Suite *s = suite_create("field");
    TCase *tc;

    tc = tcase_create("types");
    tcase_add_test(tc, test_each_type_roundtrip);
    tcase_add_test(tc, test_float_bits_preserved);
    tcase_add_test(tc, test_refused_letters);
    tcase_add_test(tc, test_bool_octet);
    tcase_add_test(tc, test_L_is_signed_like_l);
    tcase_add_test(tc, test_fv_int);
    suite_add_tcase(s, tc);

    tc = tcase_create("structure");
    tcase_add_test(tc, test_empty_table);
    tcase_add_test(tc, test_complex_roundtrip);
    tcase_add_test(tc, test_array_table_array);
    tcase_add_test(tc, test_duplicate_keys);
    tcase_add_test(tc, test_get_hits_and_misses);
    tcase_add_test(tc, test_get_unvalidated_stops);
    tcase_add_test(tc, test_next_walk);
    tcase_add_test(tc, test_rd_table_and_raw_write);
    suite_add_tcase(s, tc);

    tc = tcase_create("building");
    tcase_add_test(tc, test_build_and_encode);
    tcase_add_test(tc, test_add_rejects);
    tcase_add_test(tc, test_encode_rejects_bad_trees);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_oversized_lengths);
    tcase_add_test(tc, test_nesting_10000);
    tcase_add_test(tc, test_nesting_at_limit);
    tcase_add_test(tc, test_random_bytes);
    tcase_add_test(tc, test_random_structured_and_mutated);
    suite_add_tcase(s, tc);

    tc = tcase_create("enomem");
    tcase_add_test(tc, test_enomem_decode);
    tcase_add_test(tc, test_enomem_add);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(field_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
