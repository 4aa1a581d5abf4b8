/*
 * field.h - AMQP field tables and arrays (the `table` domain).
 *
 * Two views of the same bytes:
 *
 *  - Raw: a table travels as the bytes of its entries (without the 4-byte
 *    length prefix) in a struct wr_str. Method decoders validate a table once
 *    (wr_rd_table) and then keep only the slice; encoders write it back
 *    verbatim. Lookups on the hot path (wr_table_get) walk the raw bytes and
 *    allocate nothing.
 *
 *  - Tree: wr_table_decode builds a struct wr_table that can be inspected,
 *    edited and re-encoded (wr_table_encode). Decoding then encoding gives the
 *    same bytes back: every value keeps its type letter.
 *
 * Value types are the ones RabbitMQ reads and writes (its errata to the
 * 0-9-1 spec), not the spec's own list; see the table in field.c.
 * Nesting deeper than WR_FIELD_MAX_DEPTH is refused as a syntax error so a
 * hostile peer cannot exhaust the stack.
 */
#ifndef WR_WIRE_FIELD_H
#define WR_WIRE_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/buf.h"

#define WR_FIELD_MAX_DEPTH 64

struct wr_table;
struct wr_array;

/* A decimal: value * 10^-scale. */
struct wr_decimal {
    uint8_t scale;
    uint32_t value;
};

/* One field value. `type` is the wire letter: t b B s u I i l f d D S A T F V x. */
struct wr_fv {
    uint8_t type;
    union {
        bool t;
        int8_t b;
        uint8_t B;
        int16_t s;
        uint16_t u;
        int32_t I;
        uint32_t i;
        int64_t l;
        float f;
        double d;
        struct wr_decimal D;
        uint64_t T;
        struct wr_str str;      /* S and x; for raw lookups also F and A contents */
        struct wr_table *table; /* F, tree form */
        struct wr_array *array; /* A, tree form */
    } v;
};

struct wr_table_entry {
    struct wr_str key;
    struct wr_fv val;
};

/* Tree form. Strings point into the decoded input (or into memory the
 * caller keeps alive); only the entry/value arrays are owned. */
struct wr_table {
    uint32_t n, cap;
    struct wr_table_entry *e;
};

struct wr_array {
    uint32_t n, cap;
    struct wr_fv *v;
};

/* ---- raw view ---- */

/* Check that `len` bytes at `p` are a well-formed table body (entries only).
 * Returns 0 or WR_ESYNTAX (truncated, bad type letter, too deep, ...). */
int wr_table_validate(const uint8_t *p, size_t len);
int wr_array_validate(const uint8_t *p, size_t len);

/* Read a length-prefixed table from a reader, validate it, return its body. */
int wr_rd_table(struct wr_rd *r, struct wr_str *body);

/* Write a length-prefixed table from its raw body. */
void wr_wb_table_raw(struct wr_wb *w, struct wr_str body);

/* Look up `key` in a validated raw table body. Returns 1 and fills *out when
 * found (F and A come back as raw bodies in out->v.str), 0 when absent.
 * The first occurrence wins. */
int wr_table_get(struct wr_str body, const char *key, struct wr_fv *out);

/* Walk a table body entry by entry without allocating, for code that must
 * see every entry (duplicate keys, keys that are not C strings):
 *
 *     struct wr_rd r = wr_rd_init(body.ptr, body.len);
 *     while ((rc = wr_table_next(&r, &key, &val)) > 0) ...
 *
 * Returns 1 with the next entry, 0 at the end, WR_ESYNTAX on malformed bytes
 * (stop there). Values come back as from wr_table_get (F and A as raw
 * bodies in val.v.str, which can be walked the same way). wr_array_next
 * walks an array body. */
int wr_table_next(struct wr_rd *r, struct wr_str *key, struct wr_fv *val);
int wr_array_next(struct wr_rd *r, struct wr_fv *val);

/* Integer value of any integer type (b B s u I i l T), for arguments such as
 * x-message-ttl that clients send with whatever width their library picks.
 * Returns false when the value is not an integer. */
bool wr_fv_int(const struct wr_fv *v, int64_t *out);

/* ---- tree view ---- */

/* Decode a validated-or-not raw body; returns 0, WR_ESYNTAX or WR_ENOMEM.
 * On success the caller frees with wr_table_free (tree only, not strings). */
int wr_table_decode(struct wr_str body, struct wr_table *out);
void wr_table_free(struct wr_table *t);
void wr_array_free(struct wr_array *a);

/* Number of bytes wr_table_encode writes (including the 4-byte length). */
size_t wr_table_encoded_size(const struct wr_table *t);
/* Writes the 4-byte length and the entries. */
void wr_table_encode(struct wr_wb *w, const struct wr_table *t);

/* Building: append an entry; the key and any string value are not copied.
 * Nested tables/arrays passed by pointer become owned by the parent. */
int wr_table_add(struct wr_table *t, struct wr_str key, struct wr_fv val);
int wr_array_add(struct wr_array *a, struct wr_fv val);

/* Free what a tree value owns (nested table or array). */
void wr_fv_free(struct wr_fv *v);
/* Remove every entry named `key`, freeing its value; returns how many. */
uint32_t wr_table_remove(struct wr_table *t, const char *key);
/* RabbitMQ's name of a field type ("longstr", "signedint", ...), as its
 * error texts print them. */
const char *wr_field_type_name(uint8_t type);

/* Tree lookup (first match). */
const struct wr_fv *wr_table_find(const struct wr_table *t, const char *key);

#endif
