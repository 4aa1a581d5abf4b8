/*
 * field.c - AMQP field tables and arrays: validation, raw lookup, and the
 * tree form with its encoder.
 *
 * Method decoders (methods.gen.c) and content properties (props.c) are meant
 * to call wr_rd_table to check a table once and keep it as a raw slice;
 * everything that only needs a value or two (x-message-ttl, x-max-priority,
 * the headers exchange) looks it up with wr_table_get, which walks the bytes
 * and allocates nothing. Code that must edit a table (x-death, definitions)
 * decodes it into a tree, changes it and encodes it back; a tree that was
 * not edited encodes to exactly the bytes it came from (type letters,
 * duplicate keys and order included), so a trip through the tree changes
 * nothing a client sent.
 *
 * Value types. The 0-9-1 spec's own list (section 4.2.1) clashes with what
 * RabbitMQ and the clients written against it speak; we follow RabbitMQ,
 * as documented on its "AMQP 0-9-1 Errata" page (section 3, "Field types")
 * and implemented by parse_table/parse_array in rabbit_binary_parser.erl
 * (rabbitmq-server, deps/rabbit_common/src):
 *
 *   letter  payload on the wire               struct wr_fv member
 *   t       octet, 0 or 1 (see below)         v.t
 *   b       int8                              v.b
 *   B       uint8                             v.B
 *   s       int16 (the spec's short-string)   v.s
 *   u       uint16                            v.u
 *   I       int32                             v.I
 *   i       uint32                            v.i
 *   l       int64                             v.l
 *   L       int64 (read compatibility)        v.l
 *   f       IEEE 754 binary32                 v.f
 *   d       IEEE 754 binary64                 v.d
 *   D       scale octet, uint32 value         v.D
 *   S       uint32 length, bytes              v.str
 *   x       uint32 length, bytes              v.str   (RabbitMQ extension)
 *   A       uint32 byte length, values        v.array (tree), v.str (raw)
 *   T       uint64 (POSIX seconds)            v.T
 *   F       uint32 byte length, entries       v.table (tree), v.str (raw)
 *   V       nothing                           -
 *
 * Integers are big-endian; so are the float bit patterns.
 *
 * 'L': the spec calls it long-long-uint. RabbitMQ did not read it until
 * rabbitmq-common PR #166 (fixing rabbitmq-server issue #1093, a client
 * sending x-message-ttl as 'L'); since then it reads 'L' exactly like 'l',
 * as a signed 64-bit integer, and never writes it. We do the same: 'L' is
 * accepted, stored in v.l (signed), kept as 'L' so it re-encodes unchanged,
 * and counts as an integer for wr_fv_int.
 *
 * Refused as a syntax error: 'U' (the spec's int16, which RabbitMQ does not
 * read), any other letter, and a 't' octet other than 0 or 1. RabbitMQ reads
 * any nonzero octet as true, but the tree keeps a C bool and could not give
 * such bytes back unchanged. We trade that leniency for exact round trips;
 * if a client that sends other values turns up, accept them here and let
 * the tree normalise them to 1.
 *
 * Depth: the outermost table (or array) is depth 1 and every F or A inside
 * adds one; a container deeper than WR_FIELD_MAX_DEPTH is refused. The
 * validator keeps its own stack of container ends instead of recursing, and
 * consumes every byte once, so it is linear in the input. The tree decoder
 * only runs on input the validator accepted, so its recursion is bounded by
 * WR_FIELD_MAX_DEPTH; the encoder enforces the same limit on trees built by
 * hand.
 *
 * Memory: trees use malloc/realloc/free. Every nested struct wr_table and
 * struct wr_array in a tree is heap-allocated and owned by its parent; the
 * outermost one belongs to the caller and wr_table_free/wr_array_free free
 * only what it holds.
 */
#include "wire/field.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading one value ---- */

/* Reads the payload of a value whose type letter has been consumed. F and A
 * come back as their raw bodies in v.str. Every read goes through the
 * bounds-checked wr_rd getters. */
static int field_read_value(struct wr_rd *r, uint8_t type, struct wr_fv *out)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;

    out->type = type;
    switch (type) {
    case 't':
        if (wr_rd_u8(r, &u8) < 0 || u8 > 1)
            return WR_ESYNTAX;
        out->v.t = u8 != 0;
        return 0;
    case 'b':
        if (wr_rd_u8(r, &u8) < 0)
            return WR_ESYNTAX;
        out->v.b = (int8_t)u8;
        return 0;
    case 'B':
        return wr_rd_u8(r, &out->v.B);
    case 's':
        if (wr_rd_u16(r, &u16) < 0)
            return WR_ESYNTAX;
        out->v.s = (int16_t)u16;
        return 0;
    case 'u':
        return wr_rd_u16(r, &out->v.u);
    case 'I':
        if (wr_rd_u32(r, &u32) < 0)
            return WR_ESYNTAX;
        out->v.I = (int32_t)u32;
        return 0;
    case 'i':
        return wr_rd_u32(r, &out->v.i);
    case 'l':
    case 'L':
        if (wr_rd_u64(r, &u64) < 0)
            return WR_ESYNTAX;
        out->v.l = (int64_t)u64;
        return 0;
    case 'f':
        /* Copy the bits, never convert: a NaN payload must survive. */
        if (wr_rd_u32(r, &u32) < 0)
            return WR_ESYNTAX;
        memcpy(&out->v.f, &u32, sizeof u32);
        return 0;
    case 'd':
        if (wr_rd_u64(r, &u64) < 0)
            return WR_ESYNTAX;
        memcpy(&out->v.d, &u64, sizeof u64);
        return 0;
    case 'D':
        if (wr_rd_u8(r, &out->v.D.scale) < 0 || wr_rd_u32(r, &out->v.D.value) < 0)
            return WR_ESYNTAX;
        return 0;
    case 'T':
        return wr_rd_u64(r, &out->v.T);
    case 'S':
    case 'x':
    case 'F':
    case 'A':
        return wr_rd_longstr(r, &out->v.str);
    case 'V':
        return 0;
    default:
        return WR_ESYNTAX;
    }
}

/* Reads one item of a table body (key, letter, value) or of an array body
 * (letter, value; `key` is then left alone). */
static int field_read_item(struct wr_rd *r, bool table, struct wr_str *key, struct wr_fv *val)
{
    uint8_t type;

    if (table && wr_rd_shortstr(r, key) < 0)
        return WR_ESYNTAX;
    if (wr_rd_u8(r, &type) < 0)
        return WR_ESYNTAX;
    return field_read_value(r, type, val);
}

/* ---- validation ---- */

/* Walks a table or array body without recursion: `end[i]` is where the
 * container open at depth i+1 stops. Each byte is read once. */
static int field_validate(const uint8_t *p, size_t len, bool table)
{
    const uint8_t *end[WR_FIELD_MAX_DEPTH];
    bool is_table[WR_FIELD_MAX_DEPTH];
    unsigned top = 0;
    struct wr_rd r;
    struct wr_str key;
    struct wr_fv val;

    if (len == 0)
        return 0;
    r = wr_rd_init(p, len);
    end[0] = r.end;
    is_table[0] = table;

    for (;;) {
        if (r.p == end[top]) {
            if (top == 0)
                return 0;
            top--;
            r.end = end[top];
            continue;
        }
        if (field_read_item(&r, is_table[top], &key, &val) < 0)
            return WR_ESYNTAX;
        if (val.type == 'F' || val.type == 'A') {
            if (top + 1 >= WR_FIELD_MAX_DEPTH)
                return WR_ESYNTAX;
            /* Step back into the body: its length was checked against the
             * enclosing container's end by wr_rd_longstr. */
            r.p = (const uint8_t *)val.v.str.ptr;
            top++;
            end[top] = r.p + val.v.str.len;
            is_table[top] = val.type == 'F';
            r.end = end[top];
        }
    }
}

int wr_table_validate(const uint8_t *p, size_t len)
{
    return field_validate(p, len, true);
}

int wr_array_validate(const uint8_t *p, size_t len)
{
    return field_validate(p, len, false);
}

int wr_rd_table(struct wr_rd *r, struct wr_str *body)
{
    struct wr_rd save = *r;
    struct wr_str s;

    if (wr_rd_longstr(r, &s) < 0 || wr_table_validate((const uint8_t *)s.ptr, s.len) < 0) {
        *r = save;
        return WR_ESYNTAX;
    }
    *body = s;
    return 0;
}

void wr_wb_table_raw(struct wr_wb *w, struct wr_str body)
{
    wr_wb_longstr(w, body);
}

/* ---- raw walking and lookup ---- */

/* field.h declares these two; the declarations are repeated here so this
 * file also builds against the field.h of commit ff9b53e, which predates
 * them (-Wmissing-prototypes). Drop them once field.h with wr_table_next is
 * committed. */
int wr_table_next(struct wr_rd *r, struct wr_str *key, struct wr_fv *val);
int wr_array_next(struct wr_rd *r, struct wr_fv *val);

/* On malformed bytes the reader is left at the start of the bad item. */
int wr_table_next(struct wr_rd *r, struct wr_str *key, struct wr_fv *val)
{
    const uint8_t *start = r->p;

    if (r->p == r->end)
        return 0;
    if (field_read_item(r, true, key, val) < 0) {
        r->p = start;
        return WR_ESYNTAX;
    }
    return 1;
}

int wr_array_next(struct wr_rd *r, struct wr_fv *val)
{
    const uint8_t *start = r->p;
    struct wr_str unused;

    if (r->p == r->end)
        return 0;
    if (field_read_item(r, false, &unused, val) < 0) {
        r->p = start;
        return WR_ESYNTAX;
    }
    return 1;
}

/* `out` may be NULL to test for presence only. Malformed bytes (the caller
 * skipped validation) end the walk as "absent" rather than reading on. */
int wr_table_get(struct wr_str body, const char *key, struct wr_fv *out)
{
    struct wr_str want = wr_str_c(key);
    struct wr_rd r;
    struct wr_str k;
    struct wr_fv v;

    if (body.len == 0)
        return 0;
    r = wr_rd_init(body.ptr, body.len);
    while (wr_table_next(&r, &k, &v) > 0) {
        if (wr_str_eq(k, want)) {
            if (out)
                *out = v;
            return 1;
        }
    }
    return 0;
}

bool wr_fv_int(const struct wr_fv *v, int64_t *out)
{
    switch (v->type) {
    case 'b':
        *out = v->v.b;
        return true;
    case 'B':
        *out = v->v.B;
        return true;
    case 's':
        *out = v->v.s;
        return true;
    case 'u':
        *out = v->v.u;
        return true;
    case 'I':
        *out = v->v.I;
        return true;
    case 'i':
        *out = v->v.i;
        return true;
    case 'l':
    case 'L':
        *out = v->v.l;
        return true;
    case 'T':
        if (v->v.T > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v->v.T;
        return true;
    default:
        return false;
    }
}

/* ---- tree: freeing ---- */

void wr_fv_free(struct wr_fv *v)
{
    if (v->type == 'F' && v->v.table) {
        wr_table_free(v->v.table);
        free(v->v.table);
        v->v.table = NULL;
    } else if (v->type == 'A' && v->v.array) {
        wr_array_free(v->v.array);
        free(v->v.array);
        v->v.array = NULL;
    }
}

uint32_t wr_table_remove(struct wr_table *t, const char *key)
{
    uint32_t k = 0, n = t->n;
    for (uint32_t i = 0; i < t->n; i++) {
        if (wr_str_eqc(t->e[i].key, key))
            wr_fv_free(&t->e[i].val);
        else
            t->e[k++] = t->e[i];
    }
    t->n = k;
    return n - k;
}

const char *wr_field_type_name(uint8_t t)
{
    switch (t) {
    case 't': return "bool";
    case 'b': return "byte";
    case 'B': return "unsignedbyte";
    case 's': return "short";
    case 'u': return "unsignedshort";
    case 'I': return "signedint";
    case 'i': return "unsignedint";
    case 'l': return "long";
    case 'f': return "float";
    case 'd': return "double";
    case 'D': return "decimal";
    case 'S': return "longstr";
    case 'x': return "binary";
    case 'T': return "timestamp";
    case 'F': return "table";
    case 'A': return "array";
    case 'V': return "void";
    default: return "unknown";
    }
}

void wr_table_free(struct wr_table *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->n; i++)
        wr_fv_free(&t->e[i].val);
    free(t->e);
    t->e = NULL;
    t->n = t->cap = 0;
}

void wr_array_free(struct wr_array *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->n; i++)
        wr_fv_free(&a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* ---- tree: decoding ---- */

/* Allocation size for n elements, or 0 when it would not fit a size_t. */
static size_t field_array_bytes(size_t n, size_t elem)
{
    return n > SIZE_MAX / elem ? 0 : n * elem;
}

/* Counts the items of a validated body so the decoder allocates once.
 * Nested containers are skipped by their length, so this is linear in the
 * number of items at this level. */
static uint32_t field_count(const uint8_t *p, size_t len, bool table)
{
    struct wr_rd r = wr_rd_init(p, len);
    struct wr_str key;
    struct wr_fv val;
    uint32_t n = 0;

    while (r.p != r.end && field_read_item(&r, table, &key, &val) == 0)
        n++;
    return n;
}

static int field_decode_table(const uint8_t *p, size_t len, struct wr_table *t);
static int field_decode_array(const uint8_t *p, size_t len, struct wr_array *a);

/* Turns a raw F or A value (body in v.str) into its tree form in place.
 * On failure the value is left raw and nothing is allocated. */
static int field_decode_nested(struct wr_fv *v)
{
    const uint8_t *p = (const uint8_t *)v->v.str.ptr;
    size_t len = v->v.str.len;
    int rc;

    if (v->type == 'F') {
        struct wr_table *sub = malloc(sizeof *sub);
        if (!sub)
            return WR_ENOMEM;
        rc = field_decode_table(p, len, sub);
        if (rc < 0) {
            free(sub);
            return rc;
        }
        v->v.table = sub;
    } else if (v->type == 'A') {
        struct wr_array *sub = malloc(sizeof *sub);
        if (!sub)
            return WR_ENOMEM;
        rc = field_decode_array(p, len, sub);
        if (rc < 0) {
            free(sub);
            return rc;
        }
        v->v.array = sub;
    }
    return 0;
}

/* Decodes a validated table body into *t. On failure *t is empty and
 * everything allocated on the way is freed. */
static int field_decode_table(const uint8_t *p, size_t len, struct wr_table *t)
{
    struct wr_rd r;
    uint32_t n;
    size_t bytes;
    int rc;

    *t = (struct wr_table){0, 0, NULL};
    if (len == 0)
        return 0;
    n = field_count(p, len, true);
    if (n == 0)
        return 0;
    bytes = field_array_bytes(n, sizeof *t->e);
    t->e = bytes ? malloc(bytes) : NULL;
    if (!t->e)
        return WR_ENOMEM;
    t->cap = n;

    r = wr_rd_init(p, len);
    while (t->n < n) {
        struct wr_table_entry *e = &t->e[t->n];
        rc = field_read_item(&r, true, &e->key, &e->val);
        if (rc == 0)
            rc = field_decode_nested(&e->val);
        if (rc < 0)
            goto fail;
        t->n++;
    }
    return 0;

fail:
    wr_table_free(t);
    return rc;
}

static int field_decode_array(const uint8_t *p, size_t len, struct wr_array *a)
{
    struct wr_str unused;
    struct wr_rd r;
    uint32_t n;
    size_t bytes;
    int rc;

    *a = (struct wr_array){0, 0, NULL};
    if (len == 0)
        return 0;
    n = field_count(p, len, false);
    if (n == 0)
        return 0;
    bytes = field_array_bytes(n, sizeof *a->v);
    a->v = bytes ? malloc(bytes) : NULL;
    if (!a->v)
        return WR_ENOMEM;
    a->cap = n;

    r = wr_rd_init(p, len);
    while (a->n < n) {
        struct wr_fv *v = &a->v[a->n];
        rc = field_read_item(&r, false, &unused, v);
        if (rc == 0)
            rc = field_decode_nested(v);
        if (rc < 0)
            goto fail;
        a->n++;
    }
    return 0;

fail:
    wr_array_free(a);
    return rc;
}

int wr_table_decode(struct wr_str body, struct wr_table *out)
{
    const uint8_t *p = (const uint8_t *)body.ptr;

    *out = (struct wr_table){0, 0, NULL};
    /* Validate first: the builder below then never meets bad input, and a
     * hostile table costs no allocation. */
    if (wr_table_validate(p, body.len) < 0)
        return WR_ESYNTAX;
    return field_decode_table(p, body.len, out);
}

/* ---- tree: encoding ---- */

/* Records the first error only (wr_wb_room would turn any later put into
 * WR_ENOSPC, so the encoder stops writing once this is set). */
static void field_fail(struct wr_wb *w, int err)
{
    if (!w->err)
        w->err = err;
}

#define FIELD_SIZE_ERR SIZE_MAX

static size_t field_size_table(const struct wr_table *t, unsigned depth);
static size_t field_size_array(const struct wr_array *a, unsigned depth);

/* Payload size of a value (after its type letter), FIELD_SIZE_ERR when it
 * cannot be encoded. `depth` is that of the container holding the value. */
static size_t field_size_value(const struct wr_fv *v, unsigned depth)
{
    switch (v->type) {
    case 'V':
        return 0;
    case 't':
    case 'b':
    case 'B':
        return 1;
    case 's':
    case 'u':
        return 2;
    case 'I':
    case 'i':
    case 'f':
        return 4;
    case 'D':
        return 5;
    case 'l':
    case 'L':
    case 'd':
    case 'T':
        return 8;
    case 'S':
    case 'x':
        return 4 + (size_t)v->v.str.len;
    case 'F':
        return v->v.table ? field_size_table(v->v.table, depth + 1) : FIELD_SIZE_ERR;
    case 'A':
        return v->v.array ? field_size_array(v->v.array, depth + 1) : FIELD_SIZE_ERR;
    default:
        return FIELD_SIZE_ERR;
    }
}

/* Both include the 4-byte length. A body over UINT32_MAX bytes is an error,
 * which also keeps the sums far from overflowing a size_t. */
static size_t field_size_table(const struct wr_table *t, unsigned depth)
{
    size_t body = 0;

    if (depth > WR_FIELD_MAX_DEPTH)
        return FIELD_SIZE_ERR;
    for (uint32_t i = 0; i < t->n; i++) {
        size_t vs = field_size_value(&t->e[i].val, depth);
        if (vs == FIELD_SIZE_ERR || t->e[i].key.len > 255)
            return FIELD_SIZE_ERR;
        body += 1 + (size_t)t->e[i].key.len + 1 + vs;
        if (body > UINT32_MAX)
            return FIELD_SIZE_ERR;
    }
    return 4 + body;
}

static size_t field_size_array(const struct wr_array *a, unsigned depth)
{
    size_t body = 0;

    if (depth > WR_FIELD_MAX_DEPTH)
        return FIELD_SIZE_ERR;
    for (uint32_t i = 0; i < a->n; i++) {
        size_t vs = field_size_value(&a->v[i], depth);
        if (vs == FIELD_SIZE_ERR)
            return FIELD_SIZE_ERR;
        body += 1 + vs;
        if (body > UINT32_MAX)
            return FIELD_SIZE_ERR;
    }
    return 4 + body;
}

/* Returns 0 when the tree cannot be encoded (deeper than
 * WR_FIELD_MAX_DEPTH, an unknown type letter, a key over 255 bytes, a body
 * over 4 GiB); every encodable table takes at least 4 bytes. */
size_t wr_table_encoded_size(const struct wr_table *t)
{
    size_t n = field_size_table(t, 1);
    return n == FIELD_SIZE_ERR ? 0 : n;
}

static void field_encode_table(struct wr_wb *w, const struct wr_table *t, unsigned depth);
static void field_encode_array(struct wr_wb *w, const struct wr_array *a, unsigned depth);

static void field_encode_value(struct wr_wb *w, const struct wr_fv *v, unsigned depth)
{
    uint32_t u32;
    uint64_t u64;

    wr_wb_u8(w, v->type);
    switch (v->type) {
    case 't':
        wr_wb_u8(w, v->v.t ? 1 : 0);
        break;
    case 'b':
        wr_wb_u8(w, (uint8_t)v->v.b);
        break;
    case 'B':
        wr_wb_u8(w, v->v.B);
        break;
    case 's':
        wr_wb_u16(w, (uint16_t)v->v.s);
        break;
    case 'u':
        wr_wb_u16(w, v->v.u);
        break;
    case 'I':
        wr_wb_u32(w, (uint32_t)v->v.I);
        break;
    case 'i':
        wr_wb_u32(w, v->v.i);
        break;
    case 'l':
    case 'L':
        wr_wb_u64(w, (uint64_t)v->v.l);
        break;
    case 'f':
        memcpy(&u32, &v->v.f, sizeof u32);
        wr_wb_u32(w, u32);
        break;
    case 'd':
        memcpy(&u64, &v->v.d, sizeof u64);
        wr_wb_u64(w, u64);
        break;
    case 'D':
        wr_wb_u8(w, v->v.D.scale);
        wr_wb_u32(w, v->v.D.value);
        break;
    case 'T':
        wr_wb_u64(w, v->v.T);
        break;
    case 'S':
    case 'x':
        wr_wb_longstr(w, v->v.str);
        break;
    case 'V':
        break;
    case 'F':
        if (!v->v.table)
            field_fail(w, WR_ESYNTAX);
        else
            field_encode_table(w, v->v.table, depth + 1);
        break;
    case 'A':
        if (!v->v.array)
            field_fail(w, WR_ESYNTAX);
        else
            field_encode_array(w, v->v.array, depth + 1);
        break;
    default:
        field_fail(w, WR_ESYNTAX);
        break;
    }
}

/* Reserves the 4-byte length, returning where it is (NULL when out of room
 * or already failed). */
static uint8_t *field_begin_body(struct wr_wb *w, unsigned depth)
{
    uint8_t *slot;

    if (w->err)
        return NULL;
    if (depth > WR_FIELD_MAX_DEPTH) {
        field_fail(w, WR_ESYNTAX);
        return NULL;
    }
    if (!wr_wb_room(w, 4))
        return NULL;
    slot = w->p;
    w->p += 4;
    return slot;
}

/* Fills in the length reserved by field_begin_body. */
static void field_end_body(struct wr_wb *w, uint8_t *slot)
{
    size_t n;

    if (w->err)
        return;
    n = (size_t)(w->p - slot) - 4;
    if (n > UINT32_MAX) {
        field_fail(w, WR_ESYNTAX);
        return;
    }
    wr_store32(slot, (uint32_t)n);
}

static void field_encode_table(struct wr_wb *w, const struct wr_table *t, unsigned depth)
{
    uint8_t *slot = field_begin_body(w, depth);

    if (!slot)
        return;
    for (uint32_t i = 0; i < t->n && !w->err; i++) {
        wr_wb_shortstr(w, t->e[i].key);
        if (!w->err)
            field_encode_value(w, &t->e[i].val, depth);
    }
    field_end_body(w, slot);
}

static void field_encode_array(struct wr_wb *w, const struct wr_array *a, unsigned depth)
{
    uint8_t *slot = field_begin_body(w, depth);

    if (!slot)
        return;
    for (uint32_t i = 0; i < a->n && !w->err; i++)
        field_encode_value(w, &a->v[i], depth);
    field_end_body(w, slot);
}

void wr_table_encode(struct wr_wb *w, const struct wr_table *t)
{
    field_encode_table(w, t, 1);
}

/* ---- tree: building ---- */

/* Whether a value can be encoded at all (depth is checked when encoding). */
static bool field_value_ok(const struct wr_fv *v)
{
    switch (v->type) {
    case 't':
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i':
    case 'l':
    case 'L':
    case 'f':
    case 'd':
    case 'D':
    case 'T':
    case 'V':
        return true;
    case 'S':
    case 'x':
        return v->v.str.ptr || v->v.str.len == 0;
    case 'F':
        return v->v.table != NULL;
    case 'A':
        return v->v.array != NULL;
    default:
        return false;
    }
}

/* Returns the grown array (and updates *cap), or NULL with nothing changed. */
static void *field_grow(void *arr, uint32_t *cap, size_t elem)
{
    uint32_t ncap;
    size_t bytes;
    void *p;

    if (*cap == UINT32_MAX)
        return NULL;
    ncap = *cap == 0 ? 4 : (*cap > UINT32_MAX / 2 ? UINT32_MAX : *cap * 2);
    bytes = field_array_bytes(ncap, elem);
    if (bytes == 0)
        return NULL;
    p = realloc(arr, bytes);
    if (p)
        *cap = ncap;
    return p;
}

/* On success the table owns any nested table/array in `val`; on failure
 * nothing changes and the caller still owns it. */
int wr_table_add(struct wr_table *t, struct wr_str key, struct wr_fv val)
{
    if (key.len > 255 || (key.len && !key.ptr) || !field_value_ok(&val))
        return WR_ESYNTAX;
    if (t->n == t->cap) {
        struct wr_table_entry *e = field_grow(t->e, &t->cap, sizeof *t->e);
        if (!e)
            return WR_ENOMEM;
        t->e = e;
    }
    t->e[t->n].key = key;
    t->e[t->n].val = val;
    t->n++;
    return 0;
}

int wr_array_add(struct wr_array *a, struct wr_fv val)
{
    if (!field_value_ok(&val))
        return WR_ESYNTAX;
    if (a->n == a->cap) {
        struct wr_fv *v = field_grow(a->v, &a->cap, sizeof *a->v);
        if (!v)
            return WR_ENOMEM;
        a->v = v;
    }
    a->v[a->n++] = val;
    return 0;
}

const struct wr_fv *wr_table_find(const struct wr_table *t, const char *key)
{
    struct wr_str want = wr_str_c(key);

    for (uint32_t i = 0; i < t->n; i++)
        if (wr_str_eq(t->e[i].key, want))
            return &t->e[i].val;
    return NULL;
}
