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
