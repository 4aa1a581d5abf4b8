/*
 * jsonfield.c - AMQP field tables and values as JSON, and back; see
 * jsonfield.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "store/jsonfield.h"
#include "wire/field.h"

#define KEY_MAX_LEN 255 /* AMQP short strings */



void wr_jb_put(struct wr_jbytes *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        uint8_t *np;
        while (cap < b->len + n)
            cap *= 2;
        if (!(np = realloc(b->p, cap))) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void wr_jb_u8(struct wr_jbytes *b, uint8_t v)
{
    wr_jb_put(b, &v, 1);
}

static void jb_u32(struct wr_jbytes *b, uint32_t v)
{
    uint8_t x[4];
    wr_store32(x, v);
    wr_jb_put(b, x, 4);
}

static void jb_u64(struct wr_jbytes *b, uint64_t v)
{
    uint8_t x[8];
    wr_store64(x, v);
    wr_jb_put(b, x, 8);
}


json_t *wr_json_from_table(struct wr_str body)
{
    json_t *o = json_object();
    struct wr_rd r;
    struct wr_str k;
    struct wr_fv v;
    if (!o || !body.len)
        return o;
    r = wr_rd_init(body.ptr, body.len);
    while (wr_table_next(&r, &k, &v) > 0) {
        json_t *jv = wr_json_from_fv(&v);
        /* A key or string that is not Unicode cannot be JSON: it is in
         * arguments_raw only. */
        if (jv && wr_utf8_strict(k.ptr, k.len))
            json_object_setn_nocheck(o, k.ptr ? k.ptr : "", k.len, jv);
        json_decref(jv);
    }
    return o;
}

json_t *wr_json_from_fv(const struct wr_fv *v)
{
    int64_t i;
    if (wr_fv_int(v, &i))
        return json_integer(i);
    switch (v->type) {
    case 't': return json_boolean(v->v.t);
    case 'f': return json_real(v->v.f);
    case 'd': return json_real(v->v.d);
    case 'S':
    case 'x': return json_stringn(v->v.str.ptr ? v->v.str.ptr : "", v->v.str.len);
    case 'F': return wr_json_from_table(v->v.str);
    case 'A': {
        json_t *a = json_array();
        struct wr_rd r = wr_rd_init(v->v.str.len ? v->v.str.ptr : "", v->v.str.len);
        struct wr_fv e;
        while (a && wr_array_next(&r, &e) > 0) {
            json_t *je = wr_json_from_fv(&e);
            json_array_append_new(a, je ? je : json_null());
        }
        return a;
    }
    default: return json_null();
    }
}

/* A JSON value as a field value, appended to b: RabbitMQ's conversion
 * (rabbit_misc:to_amqp_table). Returns NULL or why not. */
static const char *json_fv(struct wr_jbytes *b, json_t *v, int depth);

static const char *json_table(struct wr_jbytes *b, json_t *o, int depth)
{
    const char *k, *why;
    json_t *v;
    size_t klen;
    if (depth > WR_FIELD_MAX_DEPTH)
        return "nested too deep";
    json_object_keylen_foreach(o, k, klen, v)
    {
        if (klen > KEY_MAX_LEN)
            return "a key longer than 255 bytes";
        wr_jb_u8(b, (uint8_t)klen);
        wr_jb_put(b, k, klen);
        if ((why = json_fv(b, v, depth + 1)) != NULL)
            return why;
    }
    return NULL;
}

static const char *json_fv(struct wr_jbytes *b, json_t *v, int depth)
{
    size_t at;
    const char *why;
    if (depth > WR_FIELD_MAX_DEPTH)
        return "nested too deep";
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        wr_jb_u8(b, 'l');
        jb_u64(b, (uint64_t)json_integer_value(v));
        return NULL;
    case JSON_REAL: {
        double d = json_real_value(v);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        wr_jb_u8(b, 'd');
        jb_u64(b, bits);
        return NULL;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        wr_jb_u8(b, 't');
        wr_jb_u8(b, json_is_true(v));
        return NULL;
    case JSON_NULL:
        wr_jb_u8(b, 'V');
        return NULL;
    case JSON_STRING:
        if (json_string_length(v) > UINT32_MAX)
            return "a string too long";
        wr_jb_u8(b, 'S');
        jb_u32(b, (uint32_t)json_string_length(v));
        wr_jb_put(b, json_string_value(v), json_string_length(v));
        return NULL;
    case JSON_OBJECT:
    case JSON_ARRAY:
        wr_jb_u8(b, json_is_object(v) ? 'F' : 'A');
        at = b->len;
        jb_u32(b, 0);
        if (json_is_object(v)) {
            if ((why = json_table(b, v, depth)) != NULL)
                return why;
        } else {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if ((why = json_fv(b, e, depth + 1)) != NULL)
                    return why;
            }
        }
        if (!b->oom) {
            if (b->len - at - 4 > UINT32_MAX)
                return "a table too long";
            wr_store32(b->p + at, (uint32_t)(b->len - at - 4));
        }
        return NULL;
    }
    return "not a JSON value";
}


const char *wr_json_to_table(struct wr_jbytes *b, json_t *o)
{
    if (!json_is_object(o))
        return "not an object";
    return json_table(b, o, 0);
}
