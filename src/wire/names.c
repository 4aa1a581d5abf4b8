/*
 * names.c - CR/LF stripping of queue and exchange names; see names.h.
 */
#include "config.h"

#include <string.h>

#include "wire/names.h"

static void strip(struct wr_str *s, char *buf)
{
    uint32_t n = 0;
    if (s->len == 0 || (!memchr(s->ptr, '\r', s->len) && !memchr(s->ptr, '\n', s->len)))
        return;
    for (uint32_t i = 0; i < s->len; i++)
        if (s->ptr[i] != '\r' && s->ptr[i] != '\n')
            buf[n++] = s->ptr[i];
    s->ptr = buf;
    s->len = n;
}

void wr_method_strip_crlf(struct wr_method *m, struct wr_names_buf *buf)
{
    switch (m->id) {
    case WR_EXCHANGE_DECLARE:
        strip(&m->u.exchange_declare.exchange, buf->b[0]);
        break;
    case WR_EXCHANGE_DELETE:
        strip(&m->u.exchange_delete.exchange, buf->b[0]);
        break;
    case WR_EXCHANGE_BIND:
        strip(&m->u.exchange_bind.source, buf->b[0]);
        strip(&m->u.exchange_bind.destination, buf->b[1]);
        break;
    case WR_EXCHANGE_UNBIND:
        strip(&m->u.exchange_unbind.source, buf->b[0]);
        strip(&m->u.exchange_unbind.destination, buf->b[1]);
        break;
    case WR_QUEUE_DECLARE:
        strip(&m->u.queue_declare.queue, buf->b[0]);
        break;
    case WR_QUEUE_DELETE:
        strip(&m->u.queue_delete.queue, buf->b[0]);
        break;
    case WR_QUEUE_BIND:
        strip(&m->u.queue_bind.queue, buf->b[0]);
        strip(&m->u.queue_bind.exchange, buf->b[1]);
        break;
    case WR_QUEUE_UNBIND:
        strip(&m->u.queue_unbind.queue, buf->b[0]);
        strip(&m->u.queue_unbind.exchange, buf->b[1]);
        break;
    default:
        break;
    }
}
