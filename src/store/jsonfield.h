/*
 * jsonfield.h - AMQP field tables and values as JSON, and back, as
 * RabbitMQ converts them (rabbit_misc:amqp_table/to_amqp_table): integers
 * of every width become JSON integers, floats and decimals reals, strings
 * and byte arrays strings, tables objects, arrays arrays, void null. A key
 * or string that is not UTF-8 cannot be JSON and is left out.
 *
 * From JSON: integer -> 'l', real -> 'd', boolean -> 't', null -> 'V',
 * string -> 'S', object -> 'F', array -> 'A'.
 *
 * Used by definitions (store/defs.c) and the management API (mgmt/).
 */
#ifndef WR_STORE_JSONFIELD_H
#define WR_STORE_JSONFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wire/buf.h"

struct wr_fv;

/* A growing byte buffer; allocation failure sets oom and later appends do
 * nothing. Free p when done. */
struct wr_jbytes {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};
void wr_jb_put(struct wr_jbytes *b, const void *p, size_t n);
void wr_jb_u8(struct wr_jbytes *b, uint8_t v);

/* A field table's bytes (validated) as a JSON object; NULL when out of
 * memory. */
json_t *wr_json_from_table(struct wr_str body);
json_t *wr_json_from_fv(const struct wr_fv *v);

/* A JSON object as field-table bytes appended to b (without the length
 * prefix). Returns NULL, or why it cannot be a table. Check b->oom. */
const char *wr_json_to_table(struct wr_jbytes *b, json_t *o);

#endif
