/*
 * argshash.c - erlang:phash2 of binding arguments, for the properties key
 * RabbitMQ's management API names bindings by; see argshash.h.
 *
 * RabbitMQ holds a field table as an Erlang list of {Key, Type, Value}
 * tuples (the binding's top level sorted by key): Key a binary, Type an
 * atom (long, longstr, bool...: wr_field_type_name), Value an integer,
 * float, binary, atom (true, false, undefined), {Scale, Digits} for a
 * decimal, a list of such tuples for a table and a list of {Type, Value}
 * for an array. phash2 walks that term depth first, folding each part into
 * a 32-bit state with Bob Jenkins' mix; what each kind of term contributes
 * is what Erlang/OTP's make_hash2 does for it (the state only moves
 * forward, so a recursion in the same order gives the same value). The
 * reference values in tests/integ/test_mgmt_objects.py come from RabbitMQ.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt/argshash.h"
#include "wire/field.h"

#define GOLDEN 0x9e3779b9u
#define K(n) ((uint32_t)(GOLDEN * (uint32_t)(n))) /* the golden ratio times n, mod 2^32 */

static void mix(uint32_t *a, uint32_t *b, uint32_t *c)
{
    *a -= *b; *a -= *c; *a ^= *c >> 13;
    *b -= *c; *b -= *a; *b ^= *a << 8;
    *c -= *a; *c -= *b; *c ^= *b >> 13;
    *a -= *b; *a -= *c; *a ^= *c >> 12;
    *b -= *c; *b -= *a; *b ^= *a << 16;
    *c -= *a; *c -= *b; *c ^= *b >> 5;
    *a -= *b; *a -= *c; *a ^= *c >> 3;
    *b -= *c; *b -= *a; *b ^= *a << 10;
    *c -= *a; *c -= *b; *c ^= *b >> 15;
}

/* Fold two 32-bit words, offset by a constant naming their kind. */
static void fold(uint32_t *h, uint32_t x, uint32_t y, uint32_t k)
{
    uint32_t a = k + x, b = k + y;
    mix(&a, &b, h);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A binary: Jenkins' lookup2 over its bytes, seeded with the state. */
static void h_binary(uint32_t *h, struct wr_str s)
{
    const uint8_t *p = (const uint8_t *)s.ptr;
    uint32_t a = GOLDEN, b = GOLDEN, c = K(13) + *h, n = s.len;
    if (!n) {
        *h = c;
        return;
    }
    for (; n >= 12; p += 12, n -= 12) {
        a += le32(p);
        b += le32(p + 4);
        c += le32(p + 8);
        mix(&a, &b, &c);
    }
    c += s.len;
    /* The tail: up to 11 bytes into a, b and the upper bytes of c. */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = p[i];
        if (i < 4)
            a += v << (8 * i);
        else if (i < 8)
            b += v << (8 * (i - 4));
        else
            c += v << (8 * (i - 7));
    }
    mix(&a, &b, &c);
    *h = c;
}

/* An integer, by sign and magnitude: small ones (28 bits signed) as one
 * word, larger ones as two. */
static void h_int(uint32_t *h, bool neg, uint64_t mag)
{
    if (mag < (1u << 27) || (neg && mag == (1u << 27))) {
        int32_t y = neg ? -(int32_t)mag : (int32_t)mag;
        if (y < 0)
            fold(h, (uint32_t)-y, 0, K(1));
        fold(h, (uint32_t)y, 0, K(1));
    } else {
        fold(h, (uint32_t)mag, (uint32_t)(mag >> 32), neg ? K(10) : K(11));
    }
}

static void h_signed(uint32_t *h, int64_t v)
{
    h_int(h, v < 0, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

static void h_float(uint32_t *h, double d)
{
    uint64_t bits;
    if (d == 0.0)
        d = 0.0; /* -0.0 hashes as 0.0 */
    memcpy(&bits, &d, sizeof(bits));
    fold(h, (uint32_t)(bits >> 32), (uint32_t)bits, K(12));
}

/* An atom: its name's hashpjw, as the atom table keeps it. */
static void h_atom(uint32_t *h, const char *name)
{
    uint32_t v = 0, g;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        v = (v << 4) + *p;
        if ((g = v & 0xf0000000u) != 0) {
            v ^= g >> 24;
            v ^= g;
        }
    }
    if (*h == 0)
        *h = v;
    else
        fold(h, v, 0, K(3));
}

/* The end of a list. */
static void h_nil(uint32_t *h)
{
    if (*h == 0)
        *h = 3468870702u;
    else
        fold(h, 2, 0, K(2));
}

static void h_tuple(uint32_t *h, uint32_t arity)
{
    fold(h, arity, 0, K(9));
}

static void h_table(uint32_t *h, struct wr_str body);

static void h_value(uint32_t *h, const struct wr_fv *v)
{
    switch (v->type) {
    case 't': h_atom(h, v->v.t ? "true" : "false"); break;
    case 'b': h_signed(h, v->v.b); break;
    case 'B': h_signed(h, v->v.B); break;
    case 's': h_signed(h, v->v.s); break;
    case 'u': h_signed(h, v->v.u); break;
    case 'I': h_signed(h, v->v.I); break;
    case 'i': h_signed(h, v->v.i); break;
    case 'l': h_signed(h, v->v.l); break;
    case 'T': h_int(h, false, v->v.T); break;
    case 'f': h_float(h, (double)v->v.f); break;
    case 'd': h_float(h, v->v.d); break;
    case 'D':
        h_tuple(h, 2);
        h_signed(h, v->v.D.scale);
        h_signed(h, v->v.D.value);
        break;
    case 'S':
    case 'x': h_binary(h, v->v.str); break;
    case 'F': h_table(h, v->v.str); break;
    case 'A': {
        struct wr_rd r = wr_rd_init(v->v.str.len ? v->v.str.ptr : "", v->v.str.len);
        struct wr_fv e;
        while (wr_array_next(&r, &e) > 0) {
            h_tuple(h, 2);
            h_atom(h, wr_field_type_name(e.type));
            h_value(h, &e);
        }
        h_nil(h);
        break;
    }
    default: h_atom(h, "undefined"); break; /* V: void */
    }
}

static void h_entry(uint32_t *h, struct wr_str key, const struct wr_fv *v)
{
    h_tuple(h, 3);
    h_binary(h, key);
    h_atom(h, wr_field_type_name(v->type));
    h_value(h, v);
}

/* A nested table, in the order it holds its entries. */
static void h_table(uint32_t *h, struct wr_str body)
{
    struct wr_rd r = wr_rd_init(body.len ? body.ptr : "", body.len);
    struct wr_str k;
    struct wr_fv v;
    while (wr_table_next(&r, &k, &v) > 0)
        h_entry(h, k, &v);
    h_nil(h);
}

struct entry {
    struct wr_str key;
    struct wr_fv val;
    uint32_t idx;
};

static int entry_cmp(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    uint32_t n = a->key.len < b->key.len ? a->key.len : b->key.len;
    int c = n ? memcmp(a->key.ptr, b->key.ptr, n) : 0;
    if (c)
        return c;
    if (a->key.len != b->key.len)
        return a->key.len < b->key.len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx; /* stable */
}

uint32_t wr_mgmt_args_hash(struct wr_str table)
{
    struct wr_rd r = wr_rd_init(table.len ? table.ptr : "", table.len);
    struct entry *e = NULL;
    uint32_t n = 0, cap = 0, h = 0;
    struct wr_str k;
    struct wr_fv v;

    /* The binding's own arguments are sorted by key, as RabbitMQ sorts
     * them when it binds. */
    while (wr_table_next(&r, &k, &v) > 0) {
        if (n == cap) {
            uint32_t nc = cap ? cap * 2 : 8;
            struct entry *a = realloc(e, (size_t)nc * sizeof(*a));
            if (!a)
                break; /* out of memory: the hash of what fitted */
            e = a;
            cap = nc;
        }
        e[n] = (struct entry){k, v, n};
        n++;
    }
    if (n)
        qsort(e, n, sizeof(*e), entry_cmp);
    for (uint32_t i = 0; i < n; i++)
        h_entry(&h, e[i].key, &e[i].val);
    h_nil(&h);
    free(e);
    return h;
}
