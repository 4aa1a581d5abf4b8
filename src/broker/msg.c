/*
 * msg.c - message blocks; see msg.h.
 */
#include "config.h"

#include <string.h>

#include "broker/msg.h"
#include "wire/field.h"
#include "wire/methods.gen.h"

uint64_t wr_msg_bytes;
uint64_t wr_msg_count;

struct wr_msg *wr_msg_new(struct wr_str exchange, struct wr_str routing_key, const void *props,
                          uint32_t props_len, uint64_t body_len)
{
    size_t fixed = sizeof(struct wr_msg) + exchange.len + routing_key.len + props_len;
    struct wr_msg *m;
    char *p;

    if (exchange.len > 255 || routing_key.len > 255 || body_len > SIZE_MAX - fixed)
        return NULL;
    m = malloc(fixed + (size_t)body_len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->props_len = props_len;
    m->body_len = body_len;
    m->body_have = 0;
    m->ttl_ms = -1;
    m->published_ms = 0;
    m->exchange_len = (uint8_t)exchange.len;
    m->rk_len = (uint8_t)routing_key.len;
    m->priority = 0;
    m->persistent = false;
    m->headers_off = m->headers_len = 0;
    m->store_seg = 0;
    m->store_id = 0;
    p = m->data;
    if (exchange.len)
        memcpy(p, exchange.ptr, exchange.len);
    p += exchange.len;
    if (routing_key.len)
        memcpy(p, routing_key.ptr, routing_key.len);
    p += routing_key.len;
    if (props_len)
        memcpy(p, props, props_len);
    wr_msg_bytes += wr_msg_mem(m);
    wr_msg_count++;
    return m;
}

void wr_msg_free_(struct wr_msg *m)
{
    wr_msg_bytes -= wr_msg_mem(m);
    wr_msg_count--;
    free(m);
}

void wr_msg_index_props(struct wr_msg *m)
{
    struct wr_basic_props p;
    struct wr_rd r = wr_rd_init(wr_msg_props(m), m->props_len);
    m->headers_off = m->headers_len = 0;
    if (m->props_len && wr_basic_props_decode(&r, &p) == 0 && (p.flags & WR_BASIC_HEADERS_FLAG)) {
        m->headers_off = (uint32_t)((const uint8_t *)p.headers.ptr - wr_msg_props(m));
        m->headers_len = p.headers.len;
    }
}

struct wr_msg *wr_msg_rewrite(const struct wr_msg *m, const struct wr_basic_props *p)
{
    size_t plen = wr_basic_props_size(p);
    uint8_t *buf = malloc(plen);
    struct wr_msg *nm = NULL;
    struct wr_wb w;

    if (!buf)
        return NULL;
    w = wr_wb_init(buf, plen);
    if (wr_basic_props_encode(&w, p) == 0)
        nm = wr_msg_new(wr_msg_exchange(m), wr_msg_routing_key(m), buf, (uint32_t)plen,
                        m->body_len);
    free(buf);
    if (!nm)
        return NULL;
    memcpy(wr_msg_body(nm), wr_msg_body((struct wr_msg *)m), (size_t)m->body_len);
    nm->body_have = m->body_len;
    nm->ttl_ms = m->ttl_ms;
    nm->published_ms = m->published_ms;
    nm->priority = m->priority;
    nm->persistent = m->persistent;
    wr_msg_index_props(nm);
    return nm;
}

struct wr_msg *wr_msg_with_int_header(const struct wr_msg *m, const char *key, int64_t val)
{
    struct wr_basic_props p;
    struct wr_table h = {0};
    struct wr_rd r = wr_rd_init(wr_msg_props(m), m->props_len);
    struct wr_msg *nm = NULL;
    struct wr_fv v;
    uint8_t *hbuf = NULL;
    size_t hlen;
    struct wr_wb w;
    bool set = false;

    memset(&p, 0, sizeof(p));
    if (m->props_len && wr_basic_props_decode(&r, &p) < 0)
        return NULL;
    if ((p.flags & WR_BASIC_HEADERS_FLAG) && wr_table_decode(p.headers, &h) < 0)
        return NULL;
    v.type = 'l';
    v.v.l = val;
    for (uint32_t i = 0; i < h.n; i++) {
        if (wr_str_eqc(h.e[i].key, key)) {
            if (h.e[i].val.type == 'F')
                wr_table_free(h.e[i].val.v.table), free(h.e[i].val.v.table);
            else if (h.e[i].val.type == 'A')
                wr_array_free(h.e[i].val.v.array), free(h.e[i].val.v.array);
            h.e[i].val = v;
            set = true;
        }
    }
    if (!set && wr_table_add(&h, wr_str_c(key), v) < 0)
        goto out;
    hlen = wr_table_encoded_size(&h);
    if (!hlen || !(hbuf = malloc(hlen)))
        goto out;
    w = wr_wb_init(hbuf, hlen);
    wr_table_encode(&w, &h);
    if (w.err)
        goto out;
    p.headers = (struct wr_str){(const char *)hbuf + 4, (uint32_t)(hlen - 4)};
    p.flags |= WR_BASIC_HEADERS_FLAG;
    nm = wr_msg_rewrite(m, &p);
out:
    free(hbuf);
    wr_table_free(&h);
    return nm;
}
