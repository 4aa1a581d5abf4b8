/*
 * fuzz_table.c - libFuzzer target for src/wire/field.c.
 *
 * The input is a table body as a peer would send it (no length prefix).
 * Properties checked, abort() on any violation:
 *  - validate returns 0 or WR_ESYNTAX, and wr_array_validate likewise;
 *  - decode agrees with validate;
 *  - a valid table decodes, reports its encoded size as input + 4, and
 *    re-encodes to the same bytes;
 *  - walking the raw bytes with wr_table_next/wr_array_next meets the same
 *    entries and values as the decoded tree, at every level;
 *  - wr_table_get (on the raw bytes) and wr_table_find (on the tree) find
 *    the same first value for every key of the table, plus a few fixed keys.
 * The sanitizers catch any read outside the input.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc -Itests/fuzz
 *        tests/fuzz/fuzz_table.c src/wire/field.c   (or `make fuzz`)
 * Seeds: tests/fuzz/corpus/table/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "fuzz.h"
#include "wire/buf.h"
#include "wire/field.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_same(const struct wr_fv *raw, const struct wr_fv *tree);

static struct wr_rd rd_of(struct wr_str s)
{
    static const uint8_t none[1];
    return s.len ? wr_rd_init(s.ptr, s.len) : wr_rd_init(none, 0);
}

/* Walking the raw body with wr_table_next meets the tree's entries, in
 * order, duplicates and all. */
static void check_walk_table(struct wr_str body, const struct wr_table *t)
{
    struct wr_rd r = rd_of(body);
    struct wr_str k;
    struct wr_fv v;
    uint32_t i = 0;
    int rc;

    while ((rc = wr_table_next(&r, &k, &v)) > 0) {
        check(i < t->n);
        check(wr_str_eq(k, t->e[i].key));
        check_same(&v, &t->e[i].val);
        i++;
    }
    check(rc == 0 && i == t->n);
}

static void check_walk_array(struct wr_str body, const struct wr_array *a)
{
    struct wr_rd r = rd_of(body);
    struct wr_fv v;
    uint32_t i = 0;
    int rc;

    while ((rc = wr_array_next(&r, &v)) > 0) {
        check(i < a->n);
        check_same(&v, &a->v[i]);
        i++;
    }
    check(rc == 0 && i == a->n);
}

/* Same type and payload; F and A (raw body vs tree) are compared by walking
 * them, which recurses no deeper than the validated depth. */
static void check_same(const struct wr_fv *raw, const struct wr_fv *tree)
{
    int64_t a, b;
    uint32_t fa, fb;
    uint64_t da, db;

    check(raw->type == tree->type);
    check(wr_fv_int(raw, &a) == wr_fv_int(tree, &b));
    if (wr_fv_int(raw, &a))
        check(a == b);
    switch (raw->type) {
    case 'S':
    case 'x':
        check(raw->v.str.ptr == tree->v.str.ptr && raw->v.str.len == tree->v.str.len);
        break;
    case 't':
        check(raw->v.t == tree->v.t);
        break;
    case 'f':
        memcpy(&fa, &raw->v.f, 4);
        memcpy(&fb, &tree->v.f, 4);
        check(fa == fb);
        break;
    case 'd':
        memcpy(&da, &raw->v.d, 8);
        memcpy(&db, &tree->v.d, 8);
        check(da == db);
        break;
    case 'D':
        check(raw->v.D.scale == tree->v.D.scale && raw->v.D.value == tree->v.D.value);
        break;
    case 'F':
        check_walk_table(raw->v.str, tree->v.table);
        break;
    case 'A':
        check_walk_array(raw->v.str, tree->v.array);
        break;
    default:
        break;
    }
}

static void check_lookups(struct wr_str body, const struct wr_table *t)
{
    static const char *const fixed[] = {"", "k", "a", "x-message-ttl", "x-match"};
    struct wr_fv raw;
    const struct wr_fv *tree;
    char key[256];

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        int got = wr_table_get(body, fixed[i], &raw);
        tree = wr_table_find(t, fixed[i]);
        check(got == (tree != NULL));
        if (got)
            check_same(&raw, tree);
    }
    /* Every key of the table (first 16), unless it holds a NUL. */
    for (uint32_t i = 0; i < t->n && i < 16; i++) {
        struct wr_str k = t->e[i].key;
        if (k.len && memchr(k.ptr, 0, k.len))
            continue;
        if (k.len)
            memcpy(key, k.ptr, k.len);
        key[k.len] = 0;
        check(wr_table_get(body, key, &raw) == 1);
        tree = wr_table_find(t, key);
        check(tree != NULL);
        check_same(&raw, tree);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wr_str body;
    struct wr_table t;
    struct wr_wb w;
    uint8_t *out;
    size_t n;
    int rc, arc;

    if (size > UINT32_MAX)
        return 0;
    body = (struct wr_str){(const char *)data, (uint32_t)size};

    rc = wr_table_validate(data, size);
    check(rc == 0 || rc == WR_ESYNTAX);
    arc = wr_array_validate(data, size);
    check(arc == 0 || arc == WR_ESYNTAX);
    /* Lookups and walks on unchecked bytes must stay in bounds as well. */
    (void)wr_table_get(body, "k", NULL);
    {
        struct wr_rd r = rd_of(body);
        struct wr_str k;
        struct wr_fv v;
        while (wr_table_next(&r, &k, &v) > 0)
            ;
        r = rd_of(body);
        while (wr_array_next(&r, &v) > 0)
            ;
    }

    if (wr_table_decode(body, &t) != rc)
        abort();
    if (rc != 0) {
        check(t.n == 0 && t.e == NULL);
        return 0;
    }

    n = wr_table_encoded_size(&t);
    check(n == size + 4);
    out = malloc(n);
    check(out != NULL);
    w = wr_wb_init(out, n);
    wr_table_encode(&w, &t);
    check(w.err == 0 && w.p == out + n);
    check(wr_load32(out) == size);
    check(size == 0 || memcmp(out + 4, data, size) == 0);
    free(out);

    check_walk_table(body, &t);
    check_lookups(body, &t);
    wr_table_free(&t);
    return 0;
}
