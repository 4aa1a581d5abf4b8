/*
 * asm.c - publishes assembled on an I/O thread; see asm.h.
 *
 * Runs on an I/O thread (and in the unit tests and the fuzzer): it touches
 * no broker state, only the bytes it is given, loose message blocks and
 * the decoders of wire/, which keep no state of their own.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "broker/msg.h"
#include "core/err.h"
#include "net/asm.h"
#include "wire/frame.h"
#include "wire/methods.gen.h"

/* ---- the queue ---- */

static int msgq_grow(struct wr_msgq *q, uint32_t need)
{
    uint32_t cap = q->cap ? q->cap : 64;
    struct wr_msg **a;
    if (need <= q->cap)
        return 0;
    while (cap < need) {
        if (cap > UINT32_MAX / 2)
            return WR_ENOMEM;
        cap *= 2;
    }
    if (!(a = malloc((size_t)cap * sizeof(*a))))
        return WR_ENOMEM;
    for (uint32_t i = 0; i < q->n; i++)
        a[i] = q->a[(q->head + i) & (q->cap - 1)];
    free(q->a);
    q->a = a;
    q->head = 0;
    q->cap = cap;
    return 0;
}

int wr_msgq_push(struct wr_msgq *q, struct wr_msg *m)
{
    if (q->n == q->cap && msgq_grow(q, q->n + 1) < 0)
        return WR_ENOMEM;
    q->a[(q->head + q->n) & (q->cap - 1)] = m;
    q->n++;
    return 0;
}

struct wr_msg *wr_msgq_pop(struct wr_msgq *q)
{
    struct wr_msg *m;
    if (!q->n)
        return NULL;
    m = q->a[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->n--;
    return m;
}

int wr_msgq_move(struct wr_msgq *dst, struct wr_msgq *src)
{
    if (!src->n)
        return 0;
    if (!dst->n) {
        struct wr_msgq t = *dst; /* empty: its array is reused by src */
        *dst = *src;
        *src = t;
        src->head = 0;
        return 0;
    }
    if (msgq_grow(dst, dst->n + src->n) < 0)
        return WR_ENOMEM;
    while (src->n)
        wr_msgq_push(dst, wr_msgq_pop(src)); /* cannot fail: room was made */
    return 0;
}

void wr_msgq_free(struct wr_msgq *q)
{
    struct wr_msg *m;
    while ((m = wr_msgq_pop(q)))
        wr_msg_free_loose(m);
    free(q->a);
    memset(q, 0, sizeof(*q));
}

/* ---- a view of the input without copying it ---- */

#define NV 16

struct view {
    struct evbuffer_iovec v[NV];
    int n;
    size_t len;
};

static bool view_get(struct view *w, struct evbuffer *in)
{
    w->len = evbuffer_get_length(in);
    if (evbuffer_peek(in, -1, NULL, NULL, 0) > NV && !evbuffer_pullup(in, -1))
        return false;
    w->n = evbuffer_peek(in, -1, NULL, w->v, NV);
    return w->n <= NV;
}

/* The iovec holding byte `off` (< w->len) and the offset within it. */
static int view_at(const struct view *w, size_t *off)
{
    int i = 0;
    while (*off >= w->v[i].iov_len) {
        *off -= w->v[i].iov_len;
        i++;
    }
    return i;
}

static void view_copy(const struct view *w, size_t off, void *dst, size_t len)
{
    uint8_t *d = dst;
    int i;
    if (!len)
        return;
    i = view_at(w, &off);
    while (len) {
        size_t k = w->v[i].iov_len - off;
        if (k > len)
            k = len;
        memcpy(d, (const uint8_t *)w->v[i].iov_base + off, k);
        d += k;
        len -= k;
        off = 0;
        i++;
    }
}

/* len contiguous bytes at off: in place, copied into tmp (cap bytes), or
 * after a pullup of the buffer (which changes the view). NULL when out
 * of memory. */
static const uint8_t *view_span(struct view *w, struct evbuffer *in, size_t off, size_t len,
                                uint8_t *tmp, size_t cap)
{
    size_t o = off;
    int i;
    if (!len)
        return tmp;
    i = view_at(w, &o);
    if (o + len <= w->v[i].iov_len)
        return (const uint8_t *)w->v[i].iov_base + o;
    if (len <= cap) {
        view_copy(w, off, tmp, len);
        return tmp;
    }
    if (!evbuffer_pullup(in, (ev_ssize_t)(off + len)) || !view_get(w, in))
        return NULL;
    return (const uint8_t *)w->v[0].iov_base + off;
}

/* ---- the walker ---- */

void wr_asm_init(struct wr_asm *a)
{
    memset(a, 0, sizeof(*a));
    a->skip = sizeof(wr_protocol_header);
}

void wr_asm_enable(struct wr_asm *a, uint32_t frame_max, uint32_t max_body)
{
    a->frame_max = frame_max ? frame_max : UINT32_MAX;
    a->max_body = max_body;
}

enum { AT_RAW = -1, AT_WAIT = 0, AT_OK = 1 };

/* The frame at off, if it is a whole, well-formed frame of `type` on
 * `channel` within frame_max (AT_OK); AT_WAIT while it is not all there;
 * AT_RAW for anything else. */
static int frame_at(const struct wr_asm *a, const struct view *w, size_t off, uint8_t type,
                    uint16_t channel, struct wr_frame *f)
{
    uint8_t h[WR_FRAME_HEADER_SIZE], end;
    if (w->len - off < WR_FRAME_HEADER_SIZE)
        return AT_WAIT;
    view_copy(w, off, h, sizeof(h));
    if (h[0] != type || wr_load16(h + 1) != channel ||
        wr_frame_header_parse(h, a->frame_max, f) < 0)
        return AT_RAW;
    if (w->len - off < (size_t)f->size + WR_FRAME_OVERHEAD)
        return AT_WAIT;
    view_copy(w, off + WR_FRAME_HEADER_SIZE + f->size, &end, 1);
    return end == WR_AMQP_FRAME_END ? AT_OK : AT_RAW;
}

static bool is_reply_to_pseudo_queue(struct wr_str s)
{
    static const char q[] = "amq.rabbitmq.reply-to";
    return s.len == sizeof(q) - 1 && memcmp(s.ptr, q, s.len) == 0;
}

int wr_asm_put_marker(struct evbuffer *out, uint16_t channel, const struct wr_asm_pub *p)
{
    uint8_t b[WR_FRAME_OVERHEAD + 3 + 255 + 255], *w = b;
    uint32_t size = 3 + p->exchange.len + p->routing_key.len;
    if (p->exchange.len > 255 || p->routing_key.len > 255)
        return WR_ESYNTAX;
    *w++ = WR_ASM_FRAME_MARKER;
    *w++ = (uint8_t)(channel >> 8);
    *w++ = (uint8_t)channel;
    *w++ = 0;
    *w++ = 0;
    *w++ = (uint8_t)(size >> 8);
    *w++ = (uint8_t)size;
    *w++ = p->mandatory ? 1 : 0;
    *w++ = (uint8_t)p->exchange.len;
    if (p->exchange.len)
        memcpy(w, p->exchange.ptr, p->exchange.len);
    w += p->exchange.len;
    *w++ = (uint8_t)p->routing_key.len;
    if (p->routing_key.len)
        memcpy(w, p->routing_key.ptr, p->routing_key.len);
    w += p->routing_key.len;
    *w++ = WR_AMQP_FRAME_END;
    return evbuffer_add(out, b, (size_t)(w - b)) < 0 ? WR_ENOMEM : 0;
}

int wr_asm_marker_parse(const uint8_t *payload, uint32_t size, struct wr_asm_pub *p)
{
    uint32_t xl, rl;
    if (size < 3 || payload[0] > 1)
        return WR_EFRAME;
    p->mandatory = payload[0];
    xl = payload[1];
    if (size < 3 + xl)
        return WR_EFRAME;
    rl = payload[2 + xl];
    if (size != 3 + xl + rl)
        return WR_EFRAME;
    p->exchange = (struct wr_str){(const char *)payload + 2, xl};
    p->routing_key = (struct wr_str){(const char *)payload + 3 + xl, rl};
    return 0;
}

/* The publish whose method frame starts at off: AT_OK (its bytes before
 * off passed to out, the marker written, the message queued, its frames
 * drained from in: the view is stale), AT_WAIT or AT_RAW (nothing
 * changed but perhaps the view, by a pullup). */
static int publish(struct wr_asm *a, struct view *w, struct evbuffer *in, size_t off,
                   struct evbuffer *out, struct wr_msgq *q)
{
    static const uint8_t publish_id[4] = {0, 60, 0, 40};
    uint8_t tmp[1024], id[4];
    char x[256], rk[256];
    struct wr_frame f;
    struct wr_method m;
    struct wr_content_header h;
    struct wr_asm_pub pub;
    const uint8_t *pl;
    struct wr_msg *msg;
    uint16_t ch;
    unsigned flags = 0;
    int64_t ttl = -1;
    size_t p, body_at;
    uint64_t have = 0;
    int rc;

    /* The method frame: basic.publish, decoded as the core would. */
    view_copy(w, off + 1, id, 2);
    ch = wr_load16(id);
    if ((rc = frame_at(a, w, off, WR_AMQP_FRAME_METHOD, ch, &f)) != AT_OK)
        return rc;
    if (f.size < 4)
        return AT_RAW;
    view_copy(w, off + WR_FRAME_HEADER_SIZE, id, 4);
    if (memcmp(id, publish_id, 4) != 0)
        return AT_RAW;
    if (!(pl = view_span(w, in, off + WR_FRAME_HEADER_SIZE, f.size, tmp, sizeof(tmp))) ||
        wr_method_decode(pl, f.size, &m) < 0 || m.id != WR_BASIC_PUBLISH ||
        m.u.basic_publish.immediate || m.u.basic_publish.exchange.len > 255 ||
        m.u.basic_publish.routing_key.len > 255)
        return AT_RAW;
    pub.mandatory = m.u.basic_publish.mandatory;
    pub.exchange = (struct wr_str){x, m.u.basic_publish.exchange.len};
    pub.routing_key = (struct wr_str){rk, m.u.basic_publish.routing_key.len};
    if (pub.exchange.len)
        memcpy(x, m.u.basic_publish.exchange.ptr, pub.exchange.len);
    if (pub.routing_key.len)
        memcpy(rk, m.u.basic_publish.routing_key.ptr, pub.routing_key.len);
    p = off + f.size + WR_FRAME_OVERHEAD;

    /* The content header. */
    if ((rc = frame_at(a, w, p, WR_AMQP_FRAME_HEADER, ch, &f)) != AT_OK)
        return rc;
    if (!(pl = view_span(w, in, p + WR_FRAME_HEADER_SIZE, f.size, tmp, sizeof(tmp))) ||
        wr_content_header_decode(pl, f.size, &h) < 0 || h.body_size > a->max_body)
        return AT_RAW;
    if ((h.props.flags & WR_BASIC_EXPIRATION_FLAG) &&
        !wr_msg_parse_expiration(h.props.expiration, &ttl))
        return AT_RAW;
    if ((h.props.flags & WR_BASIC_REPLY_TO_FLAG) && is_reply_to_pseudo_queue(h.props.reply_to))
        return AT_RAW; /* the channel's own reply queue is the core's to name */
    p += f.size + WR_FRAME_OVERHEAD;
    body_at = p;

    /* The body frames: all there before anything is allocated. */
    while (have < h.body_size) {
        if ((rc = frame_at(a, w, p, WR_AMQP_FRAME_BODY, ch, &f)) != AT_OK)
            return rc;
        if (f.size > h.body_size - have)
            return AT_RAW;
        have += f.size;
        p += f.size + WR_FRAME_OVERHEAD;
    }

    if ((h.props.flags & WR_BASIC_DELIVERY_MODE_FLAG) && h.props.delivery_mode == 2)
        flags |= WR_MSG_PERSISTENT | WR_MSG_EXT;
    if (ttl >= 0)
        flags |= WR_MSG_EXT;
    /* h.raw_props points into the header frame: valid, as no pullup came
     * after it. */
    if (!(msg = wr_msg_new_loose(h.raw_props.ptr, h.raw_props.len, h.body_size, flags)))
        return AT_RAW; /* the core will say it is out of memory */
    if (flags & WR_MSG_EXT)
        wr_msg_ext(msg)->ttl_ms = ttl;
    msg->priority = (h.props.flags & WR_BASIC_PRIORITY_FLAG) ? h.props.priority : 0;
    {
        uint8_t *body = wr_msg_body(msg); /* loose: never paged out */
        size_t b = body_at;
        uint64_t at = 0;
        while (at < h.body_size) {
            uint8_t fh[WR_FRAME_HEADER_SIZE];
            uint32_t n;
            view_copy(w, b, fh, sizeof(fh));
            n = wr_load32(fh + 3);
            view_copy(w, b + WR_FRAME_HEADER_SIZE, body + at, n);
            at += n;
            b += (size_t)n + WR_FRAME_OVERHEAD;
        }
    }
    if (wr_msgq_push(q, msg) < 0) {
        wr_msg_free_loose(msg);
        return AT_RAW;
    }
    if ((off && evbuffer_remove_buffer(in, out, off) != (int)off) ||
        wr_asm_put_marker(out, ch, &pub) < 0) {
        /* Out of memory in the middle: nothing sensible can follow. */
        a->lost = true;
        q->n--; /* the message just pushed */
        wr_msg_free_loose(msg);
        return AT_RAW;
    }
    evbuffer_drain(in, p - off);
    a->assembled++;
    return AT_OK;
}

static bool frame_type_known(uint8_t t)
{
    return t == WR_AMQP_FRAME_METHOD || t == WR_AMQP_FRAME_HEADER || t == WR_AMQP_FRAME_BODY ||
           t == WR_AMQP_FRAME_HEARTBEAT;
}

void wr_asm_run(struct wr_asm *a, struct evbuffer *in, struct evbuffer *out, struct wr_msgq *q,
                bool all)
{
    struct view w;
    size_t off = 0; /* bytes at the head of `in` that pass as they are */

    if (a->lost || !view_get(&w, in)) {
        a->lost = true;
        evbuffer_add_buffer(out, in);
        return;
    }
    for (;;) {
        uint8_t h[WR_FRAME_HEADER_SIZE];
        uint32_t size;
        if (a->skip) {
            uint64_t n = w.len - off;
            if (n > a->skip)
                n = a->skip;
            off += (size_t)n;
            a->skip -= n;
            if (a->skip)
                break;
        }
        if (w.len - off < WR_FRAME_HEADER_SIZE)
            break;
        view_copy(&w, off, h, sizeof(h));
        if (!frame_type_known(h[0])) {
            a->lost = true; /* a peer's marker, or garbage: the core answers it */
            break;
        }
        if (a->frame_max && h[0] == WR_AMQP_FRAME_METHOD && wr_load16(h + 1) != 0) {
            int rc = publish(a, &w, in, off, out, q);
            if (rc == AT_OK) {
                off = 0;
                if (!view_get(&w, in)) {
                    a->lost = true;
                    break;
                }
                continue;
            }
            if (rc == AT_WAIT && !all)
                break;
        }
        size = wr_load32(h + 3);
        a->skip = (uint64_t)size + WR_FRAME_OVERHEAD;
    }
    if (a->lost || all)
        evbuffer_add_buffer(out, in);
    else if (off)
        evbuffer_remove_buffer(in, out, off);
}
