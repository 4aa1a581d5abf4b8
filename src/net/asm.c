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
#include "net/chan.h"
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

/* The buffer's chains as iovecs, with a cursor: the walker's offsets only
 * grow between refreshes, so finding the chain of an offset is a step or
 * two, not a scan. */
struct view {
    struct evbuffer_iovec v[NV];
    int n;
    size_t len;
    int ci;       /* the cursor's chain */
    size_t cbase; /* the offset its first byte has */
};

static bool view_get(struct view *w, struct evbuffer *in)
{
    w->len = evbuffer_get_length(in);
    w->ci = 0;
    w->cbase = 0;
    w->n = evbuffer_peek(in, -1, NULL, w->v, NV);
    if (w->n > NV) {
        if (!evbuffer_pullup(in, -1))
            return false;
        w->n = evbuffer_peek(in, -1, NULL, w->v, NV);
    }
    return w->n <= NV;
}

/* Bytes at off (< w->len), contiguous for *avail of them. */
static const uint8_t *view_ptr(struct view *w, size_t off, size_t *avail)
{
    if (off < w->cbase) {
        w->ci = 0;
        w->cbase = 0;
    }
    while (off - w->cbase >= w->v[w->ci].iov_len) {
        w->cbase += w->v[w->ci].iov_len;
        w->ci++;
    }
    *avail = w->v[w->ci].iov_len - (off - w->cbase);
    return (const uint8_t *)w->v[w->ci].iov_base + (off - w->cbase);
}

/* len bytes at off (all within w->len) into dst. */
static void view_copy(struct view *w, size_t off, void *dst, size_t len)
{
    uint8_t *d = dst;
    while (len) {
        size_t k;
        const uint8_t *p = view_ptr(w, off, &k);
        if (k > len)
            k = len;
        memcpy(d, p, k);
        d += k;
        off += k;
        len -= k;
    }
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

#define MARKER_MAX WR_ASM_MARKER_MAX

/* The marker frame into b (MARKER_MAX bytes); its length. Names of at most
 * 255 bytes. The payload: mandatory (0 or 1), the exchange and the routing
 * key as short strings, the count (32 bits, network order). */
static size_t marker_encode(uint8_t *b, uint16_t channel, const struct wr_asm_pub *p)
{
    uint8_t *w = b;
    uint32_t size = 3 + p->exchange.len + p->routing_key.len + 4;
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
    wr_store32(w, p->count);
    w += 4;
    *w++ = WR_AMQP_FRAME_END;
    return (size_t)(w - b);
}

int wr_asm_put_marker(struct evbuffer *out, uint16_t channel, const struct wr_asm_pub *p)
{
    uint8_t b[MARKER_MAX];
    if (p->exchange.len > 255 || p->routing_key.len > 255 || p->count < 1 ||
        p->count > WR_ASM_RUN_MAX)
        return WR_ESYNTAX;
    return evbuffer_add(out, b, marker_encode(b, channel, p)) < 0 ? WR_ENOMEM : 0;
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
    if (size != 3 + xl + rl + 4)
        return WR_EFRAME;
    p->exchange = (struct wr_str){(const char *)payload + 2, xl};
    p->routing_key = (struct wr_str){(const char *)payload + 3 + xl, rl};
    p->count = wr_load32(payload + 3 + xl + rl);
    if (p->count < 1 || p->count > WR_ASM_RUN_MAX)
        return WR_EFRAME;
    return 0;
}

/* The run of publishes a marker not yet written stands for (asm.h): it
 * is written once something else is to follow it, and always before
 * wr_asm_run returns, so no run spans two calls. */
struct run {
    uint32_t n; /* publishes; 0: no run */
    uint16_t ch;
    bool mandatory;
    uint8_t xl, rl;
    char x[255], rk[255];
};

static bool run_joins(const struct run *r, uint16_t ch, const struct wr_asm_pub *p)
{
    return r->n && r->n < WR_ASM_RUN_MAX && r->ch == ch && r->mandatory == p->mandatory &&
           r->xl == p->exchange.len && r->rl == p->routing_key.len &&
           memcmp(r->x, p->exchange.ptr, r->xl) == 0 &&
           memcmp(r->rk, p->routing_key.ptr, r->rl) == 0;
}

/* A new run, its names copied (they point into bytes about to go). */
static void run_start(struct run *r, uint16_t ch, const struct wr_asm_pub *p)
{
    r->n = 0;
    r->ch = ch;
    r->mandatory = p->mandatory;
    r->xl = (uint8_t)p->exchange.len;
    r->rl = (uint8_t)p->routing_key.len;
    if (r->xl)
        memcpy(r->x, p->exchange.ptr, r->xl);
    if (r->rl)
        memcpy(r->rk, p->routing_key.ptr, r->rl);
}

/* Write the run's marker, if there is a run. 0, or WR_ENOMEM. */
static int run_flush(struct run *r, struct evbuffer *out)
{
    uint8_t mk[MARKER_MAX];
    struct wr_asm_pub p = {{r->x, r->xl}, {r->rk, r->rl}, r->mandatory, r->n};
    if (!r->n)
        return 0;
    if (evbuffer_add(out, mk, marker_encode(mk, r->ch, &p)) < 0)
        return WR_ENOMEM;
    r->n = 0;
    return 0;
}

/* Out of memory with a run unwritten: its messages (the newest in q) are
 * dropped, so that q holds only messages with markers. */
static void run_drop(struct run *r, struct wr_msgq *q)
{
    for (; r->n; r->n--)
        wr_msg_free_loose(q->a[(q->head + --q->n) & (q->cap - 1)]);
}

/* A publish, parsed from contiguous bytes. */
struct seq {
    uint16_t ch;
    struct wr_asm_pub pub; /* names point into the bytes */
    struct wr_content_header h;
    int64_t ttl;
    unsigned flags;
    size_t body_at, len; /* the first body frame; the whole sequence */
};

/* The frame at b[0..n) if it is a whole, well-formed frame of `type` on
 * `channel` within frame_max: its length (> 0); 0 while it is not all
 * there; -1 for anything else. */
static long frame_flat(const struct wr_asm *a, const uint8_t *b, size_t n, uint8_t type,
                       uint16_t channel, struct wr_frame *f)
{
    long k;
    if (n && b[0] != type)
        return -1;
    k = wr_frame_parse(b, n, a->frame_max, f);
    if (k == WR_EAGAIN)
        return 0;
    if (k < 0 || f->channel != channel)
        return -1;
    return k;
}

/* The publish whose method frame starts b[0..n): AT_OK with *s filled,
 * AT_WAIT while its frames are not all there, AT_RAW when it is not one
 * the walker takes (the core will judge it). */
static int seq_flat(const struct wr_asm *a, const uint8_t *b, size_t n, struct seq *s)
{
    static const uint8_t publish_id[4] = {0, 60, 0, 40};
    struct wr_frame f;
    struct wr_method m;
    uint64_t have = 0;
    size_t p;
    long k;

    if (n < WR_FRAME_HEADER_SIZE)
        return AT_WAIT;
    s->ch = wr_load16(b + 1);
    if ((k = frame_flat(a, b, n, WR_AMQP_FRAME_METHOD, s->ch, &f)) <= 0)
        return k < 0 ? AT_RAW : AT_WAIT;
    if (f.size < 4 || memcmp(f.payload, publish_id, 4) != 0 ||
        wr_method_decode(f.payload, f.size, &m) < 0 || m.u.basic_publish.immediate ||
        m.u.basic_publish.exchange.len > 255 || m.u.basic_publish.routing_key.len > 255)
        return AT_RAW;
    s->pub.exchange = m.u.basic_publish.exchange;
    s->pub.routing_key = m.u.basic_publish.routing_key;
    s->pub.mandatory = m.u.basic_publish.mandatory;
    p = (size_t)k;

    if ((k = frame_flat(a, b + p, n - p, WR_AMQP_FRAME_HEADER, s->ch, &f)) <= 0)
        return k < 0 ? AT_RAW : AT_WAIT;
    if (wr_content_header_decode(f.payload, f.size, &s->h) < 0 || s->h.body_size > a->max_body)
        return AT_RAW;
    s->ttl = -1;
    if ((s->h.props.flags & WR_BASIC_EXPIRATION_FLAG) &&
        !wr_msg_parse_expiration(s->h.props.expiration, &s->ttl))
        return AT_RAW;
    if ((s->h.props.flags & WR_BASIC_REPLY_TO_FLAG) && wr_str_eqc(s->h.props.reply_to, WR_REPLY_TO))
        return AT_RAW; /* the channel's own reply queue is the core's to name */
    s->flags = 0;
    if ((s->h.props.flags & WR_BASIC_DELIVERY_MODE_FLAG) && s->h.props.delivery_mode == 2)
        s->flags |= WR_MSG_PERSISTENT | WR_MSG_EXT;
    if (s->ttl >= 0)
        s->flags |= WR_MSG_EXT;
    p += (size_t)k;
    s->body_at = p;

    while (have < s->h.body_size) {
        if ((k = frame_flat(a, b + p, n - p, WR_AMQP_FRAME_BODY, s->ch, &f)) <= 0)
            return k < 0 ? AT_RAW : AT_WAIT;
        if (f.size > s->h.body_size - have)
            return AT_RAW;
        have += f.size;
        p += (size_t)k;
    }
    s->len = p;
    return AT_OK;
}

/* The publish whose method frame starts at off: AT_OK (the bytes before
 * off passed to out, the marker written, the message queued, its frames
 * drained from in: the view must be taken again), AT_WAIT or AT_RAW (in
 * unchanged, unless the bytes before off were passed to out: *off is then
 * 0; the view must be taken again whenever *off changed). */
static int publish(struct wr_asm *a, struct view *w, struct evbuffer *in, size_t *off,
                   struct evbuffer *out, struct wr_msgq *q, struct run *r, bool *changed)
{
    struct seq s;
    struct wr_msg *msg;
    size_t avail;
    const uint8_t *b = view_ptr(w, *off, &avail);
    int rc = seq_flat(a, b, avail, &s);

    if (rc == AT_WAIT && w->len - *off > avail) {
        /* The publish crosses into the next chain (once a read, at
         * most): pass what precedes it, then make it contiguous, growing
         * what is pulled up until it is all there or known not to be. */
        size_t need = avail + 4096;
        *changed = true;
        if (*off) {
            if (run_flush(r, out) < 0 || evbuffer_remove_buffer(in, out, *off) != (int)*off) {
                a->lost = true;
                return AT_RAW;
            }
            *off = 0;
        }
        for (;;) {
            size_t len = evbuffer_get_length(in);
            if (need > len)
                need = len;
            if (!(b = evbuffer_pullup(in, (ev_ssize_t)need))) {
                a->lost = true;
                return AT_RAW;
            }
            rc = seq_flat(a, b, need, &s);
            if (rc != AT_WAIT || need == len)
                break;
            need *= 2;
        }
    }
    if (rc != AT_OK)
        return rc;

    /* h.raw_props and the names point into b: valid until in changes. */
    if (!(msg = wr_msg_new_loose(s.h.raw_props.ptr, s.h.raw_props.len, s.h.body_size, s.flags)))
        return AT_RAW; /* the core will say it is out of memory */
    if (s.flags & WR_MSG_EXT)
        wr_msg_ext(msg)->ttl_ms = s.ttl;
    msg->priority = (s.h.props.flags & WR_BASIC_PRIORITY_FLAG) ? s.h.props.priority : 0;
    {
        uint8_t *body = wr_msg_body(msg); /* loose: never paged out */
        size_t at = s.body_at;
        uint64_t have = 0;
        while (have < s.h.body_size) {
            uint32_t n = wr_load32(b + at + 3);
            memcpy(body + have, b + at + WR_FRAME_HEADER_SIZE, n);
            have += n;
            at += (size_t)n + WR_FRAME_OVERHEAD;
        }
    }
    if (wr_msgq_push(q, msg) < 0) {
        wr_msg_free_loose(msg);
        return AT_RAW;
    }
    /* It joins the run before it, or the run's marker and the bytes
     * before off go first and it starts one (its names copied before
     * anything moves: they are in b). */
    *changed = true;
    if (*off || !run_joins(r, s.ch, &s.pub)) {
        if (run_flush(r, out) < 0)
            goto oom;
        if (*off) {
            bool ok = evbuffer_remove_buffer(in, out, *off) == (int)*off;
            *off = 0;
            if (!ok)
                goto oom;
        }
        run_start(r, s.ch, &s.pub);
    }
    r->n++;
    evbuffer_drain(in, s.len);
    a->assembled++;
    return AT_OK;
oom:
    /* Out of memory in the middle: nothing sensible can follow. */
    a->lost = true;
    q->n--; /* the message just pushed */
    wr_msg_free_loose(msg);
    run_drop(r, q);
    return AT_RAW;
}

void wr_asm_run(struct wr_asm *a, struct evbuffer *in, struct evbuffer *out, struct wr_msgq *q,
                bool all)
{
    struct view w;
    struct run r = {0};
    size_t off = 0; /* bytes at the head of `in` that pass as they are */

    if (a->lost || !view_get(&w, in)) {
        a->lost = true;
        evbuffer_add_buffer(out, in);
        return;
    }
    for (;;) {
        uint8_t h[WR_FRAME_HEADER_SIZE];
        struct wr_frame f;
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
        /* No size limit here: a frame over frame_max is the core's to
         * refuse; the walker only needs its length. */
        if (wr_frame_header_parse(h, 0, &f) < 0) {
            a->lost = true; /* a peer's marker, or garbage: the core answers it */
            break;
        }
        if (a->frame_max && f.type == WR_AMQP_FRAME_METHOD && f.channel != 0) {
            bool changed = false;
            int rc = publish(a, &w, in, &off, out, q, &r, &changed);
            if (a->lost)
                break;
            if (changed && !view_get(&w, in)) {
                a->lost = true;
                break;
            }
            if (rc == AT_OK)
                continue;
            if (rc == AT_WAIT && !all)
                break;
        }
        a->skip = (uint64_t)f.size + WR_FRAME_OVERHEAD;
    }
    if (run_flush(&r, out) < 0) {
        /* Out of memory: the run's frames are gone from in, so its
         * publishes are lost with their messages; all after passes raw. */
        run_drop(&r, q);
        a->lost = true;
    }
    if (a->lost || all)
        evbuffer_add_buffer(out, in);
    else if (off)
        evbuffer_remove_buffer(in, out, off);
}
