/*
 * stream.c - streams; see stream.h.
 *
 * Neighbours: publish.c stamps and appends (wr_stream_stamp,
 * wr_stream_append); queue.c sends a stream queue's push, consumers and
 * deletion here; net/chan.c resolves x-stream-offset at basic.consume and
 * refuses what a stream does not do; the store recovers messages through
 * wr_queue_push_recovered.
 */
#include "config.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/qargs.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "core/log.h"
#include "wire/field.h"
#include "wire/methods.gen.h"

struct wr_stream *wr_stream_new(struct wr_queue *q, int64_t segment_max)
{
    struct wr_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->q = q;
    wr_list_init(&st->wnode);
    st->segment_max = segment_max > 0 ? (uint64_t)segment_max : WR_STREAM_DEFAULT_SEGMENT;
    wr_hmap_init(&st->keys);
    return st;
}

/* A compacted stream's key: the newest offset of a key. */
struct ckey {
    struct wr_hnode node; /* st->keys, key = k */
    uint64_t off;
    char k[];
};

static void keys_free(struct wr_stream *st)
{
    struct wr_hnode *n, *next;
    size_t it;
    for (n = wr_hmap_first(&st->keys, &it); n; n = next) {
        next = wr_hmap_next(&st->keys, &it, n);
        wr_hmap_del(&st->keys, n);
        free(wr_container_of(n, struct ckey, node));
    }
    wr_hmap_free(&st->keys);
}

static inline struct wr_msg **slot(const struct wr_stream *st, uint64_t off)
{
    return &st->ring[off & (st->cap - 1)];
}

void wr_stream_free(struct wr_stream *st)
{
    if (!st)
        return;
    for (uint64_t o = st->first; o < st->next; o++)
        wr_msg_unref(*slot(st, o));
    for (uint32_t i = 0; i < st->nnames; i++) {
        wr_list_del(&st->names[i]->dnode); /* off the store's list */
        free(st->names[i]);
    }
    free(st->names);
    keys_free(st);
    free(st->tombs);
    free(st->pend);
    wr_list_del(&st->wnode);
    if (st->compact_ev)
        event_free(st->compact_ev);
    free(st->ring);
    free(st->segs);
    free(st);
}

static uint64_t msg_bytes(const struct wr_msg *m)
{
    return (uint64_t)m->props_len + m->body_len;
}

/* Wall-clock ms minus the loop's monotonic ms: converts publish times
 * (monotonic) to and from the wall clock. One clock read per call. */
static int64_t wall_minus_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - (int64_t)wr_now_ms();
}

/* ---- the publish side ---- */

#define OFFSET_KEY "x-stream-offset"
#define OFFSET_ENTRY (1 + sizeof(OFFSET_KEY) - 1 + 1 + 8) /* key, 'l', value */

/* m's property bytes with the entry x-stream-offset = off appended to its
 * headers table (a headers property made when it has none), into a new
 * buffer: the other properties are copied as they are, nothing is decoded
 * but the two short strings before the headers. NULL when the bytes do
 * not parse (the slow path then decodes them) or on allocation failure. */
static uint8_t *stamp_props(const struct wr_msg *m, uint64_t off, uint32_t *len)
{
    const uint8_t *p = wr_msg_props(m);
    uint32_t n = m->props_len, pos = 2, hstart, hend, hlen = 0, total;
    uint16_t flags = n >= 2 ? wr_load16(p) : 0;
    uint8_t *out, *w;

    if (n == 0) {
        n = 2; /* no properties at all: flags 0 */
        p = (const uint8_t *)"\0\0";
    } else if (n < 2) {
        return NULL;
    }
    if (flags & WR_BASIC_CONTENT_TYPE_FLAG) {
        if (pos >= n || p[pos] > n - pos - 1)
            return NULL;
        pos += 1u + p[pos];
    }
    if (flags & WR_BASIC_CONTENT_ENCODING_FLAG) {
        if (pos >= n || p[pos] > n - pos - 1)
            return NULL;
        pos += 1u + p[pos];
    }
    hstart = hend = pos;
    if (flags & WR_BASIC_HEADERS_FLAG) {
        if (n - pos < 4)
            return NULL;
        hlen = wr_load32(p + pos);
        if (hlen > n - pos - 4)
            return NULL;
        hend = pos + 4 + hlen;
    }
    if (hlen > UINT32_MAX - OFFSET_ENTRY - n - 4)
        return NULL;
    total = n + (uint32_t)OFFSET_ENTRY + ((flags & WR_BASIC_HEADERS_FLAG) ? 0u : 4u);
    if (!(out = malloc(total)))
        return NULL;
    w = out;
    wr_store16(w, (uint16_t)(flags | WR_BASIC_HEADERS_FLAG));
    memcpy(w + 2, p + 2, hstart - 2);
    w += hstart;
    wr_store32(w, hlen + (uint32_t)OFFSET_ENTRY);
    memcpy(w + 4, p + hend - hlen, hlen);
    w += 4 + hlen;
    *w++ = (uint8_t)(sizeof(OFFSET_KEY) - 1);
    memcpy(w, OFFSET_KEY, sizeof(OFFSET_KEY) - 1);
    w += sizeof(OFFSET_KEY) - 1;
    *w++ = 'l';
    wr_store64(w, off);
    w += 8;
    memcpy(w, p + hend, n - hend);
    *len = total;
    return out;
}

struct wr_msg *wr_stream_stamp(struct wr_queue *q, const struct wr_msg *m)
{
    uint64_t off = q->stream->next;
    struct wr_msg *nm = NULL;
    struct wr_msg_ext *e;
    struct wr_fv v;
    uint8_t *props, *body;
    uint32_t plen;

    /* Fast: one new block with the entry appended to the raw headers.
     * Slow (a publisher's own x-stream-offset header to replace, or
     * properties that do not parse): decode, set, encode. */
    if (wr_table_get(wr_msg_headers(m), OFFSET_KEY, &v) != 1 &&
        (props = stamp_props(m, off, &plen))) {
        nm = wr_msg_new(m->rkey->pool, wr_msg_exchange(m), wr_msg_routing_key(m), props, plen,
                        m->body_len, m->flags | WR_MSG_EXT);
        free(props);
        if (!nm)
            return NULL;
        if (!(body = wr_msg_body((struct wr_msg *)m))) {
            wr_msg_unref(nm);
            return NULL;
        }
        memcpy(wr_msg_body(nm), body, m->body_len);
        nm->published_ms = m->published_ms;
        nm->priority = m->priority;
    } else {
        if (!(nm = wr_msg_with_int_header(m, OFFSET_KEY, (int64_t)off)))
            return NULL;
        if (!(nm->flags & WR_MSG_EXT)) {
            struct wr_msg *x = wr_msg_with_ext(nm);
            wr_msg_unref(nm);
            if (!(nm = x))
                return NULL;
        }
    }
    /* Its own journal identity (the original may have one already, for
     * the other queues it went to), and no TTL: a stream ignores the
     * expiration property. */
    e = wr_msg_ext(nm);
    e->store_id = 0;
    e->store_seg = 0;
    e->body_off = 0;
    e->ttl_ms = -1;
    return nm;
}

static int ring_room(struct wr_stream *st)
{
    uint64_t n = st->next - st->first, cap;
    struct wr_msg **a;
    if (n < st->cap)
        return 0;
    cap = st->cap ? st->cap * 2 : 64;
    if (!(a = calloc(cap, sizeof(*a))))
        return WR_ENOMEM;
    for (uint64_t o = st->first; o < st->next; o++)
        a[o & (cap - 1)] = *slot(st, o);
    free(st->ring);
    st->ring = a;
    st->cap = cap;
    return 0;
}

static struct wr_stream_seg *seg_open(struct wr_stream *st, uint64_t first)
{
    if (st->nsegs == st->segs_cap) {
        uint32_t cap = st->segs_cap ? st->segs_cap * 2 : 4;
        struct wr_stream_seg *a = realloc(st->segs, (size_t)cap * sizeof(*a));
        if (!a)
            return NULL;
        st->segs = a;
        st->segs_cap = cap;
    }
    st->segs[st->nsegs] = (struct wr_stream_seg){first, 0, 0};
    return &st->segs[st->nsegs++];
}

/* ---- key compaction ---- */

#define COMPACT_BUDGET 4096 /* messages a walk looks at per loop turn */

static bool msg_key(const struct wr_queue *q, const struct wr_msg *m, struct wr_str *key)
{
    struct wr_fv v;
    if (!q->s.compact_header) {
        *key = wr_msg_routing_key(m);
        return true;
    }
    if (wr_table_get(wr_msg_headers(m), q->s.compact_header, &v) != 1 || v.type != 'S')
        return false; /* no key: never compacted away */
    *key = v.v.str;
    return true;
}

static bool is_tombstone(const struct wr_msg *m)
{
    struct wr_fv v;
    return m->body_len == 0 && wr_table_get(wr_msg_headers(m), "x-tombstone", &v) == 1 &&
           v.type == 't' && v.v.t;
}

static struct ckey *key_find(struct wr_stream *st, struct wr_str k)
{
    struct wr_hnode *n = wr_hmap_get(&st->keys, k);
    return n ? wr_container_of(n, struct ckey, node) : NULL;
}

static void key_del(struct wr_stream *st, struct ckey *e)
{
    wr_hmap_del(&st->keys, &e->node);
    free(e);
}

/* The message at `off` leaves the log: its key forgets it when it was
 * the newest. */
static void key_forget(struct wr_queue *q, const struct wr_msg *m, uint64_t off)
{
    struct wr_str k;
    struct ckey *e;
    if (msg_key(q, m, &k) && (e = key_find(q->stream, k)) && e->off == off)
        key_del(q->stream, e);
}

static uint64_t active_first(const struct wr_stream *st)
{
    return st->nsegs ? st->segs[st->nsegs - 1].first : st->next;
}

static struct wr_stream_seg *seg_of(struct wr_stream *st, uint64_t off)
{
    uint32_t lo = 0, hi = st->nsegs;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (st->segs[mid].first <= off)
            lo = mid;
        else
            hi = mid;
    }
    return st->nsegs ? &st->segs[lo] : NULL;
}

/* Compaction removes the message at `off` (a hole stays). */
static void drop_at(struct wr_queue *q, uint64_t off)
{
    struct wr_stream *st = q->stream;
    struct wr_msg **s = slot(st, off);
    struct wr_stream_seg *sg;
    const struct wr_persist *p = q->vhost->persist;
    if (off < st->first || off >= st->next || !*s)
        return;
    if ((sg = seg_of(st, off)))
        sg->bytes -= msg_bytes(*s);
    st->bytes -= msg_bytes(*s);
    if (wr_queue_journaled(q, *s))
        p->remove(p->ctx, q, *s);
    wr_msg_unref(*s);
    *s = NULL;
    st->compacted++;
}

static void compact_cb(evutil_socket_t fd, short what, void *arg);

static void compact_arm(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    struct timeval now = {0, 0}, later = {1, 0};
    if (!q->vhost->base || q->deleted)
        return;
    if (!st->compact_ev && !(st->compact_ev = evtimer_new(q->vhost->base, compact_cb, q)))
        return;
    if (st->walk_all || st->walk_next < st->walk_end)
        evtimer_add(st->compact_ev, &now);
    else if (st->ntombs && !evtimer_pending(st->compact_ev, NULL))
        evtimer_add(st->compact_ev, &later);
}

static void tomb_push(struct wr_stream *st, uint64_t off)
{
    if (st->ntombs == st->tombs_cap) {
        uint32_t cap = st->tombs_cap ? st->tombs_cap * 2 : 16;
        uint64_t *a = malloc((size_t)cap * sizeof(*a));
        if (!a)
            return; /* this tombstone stays (and its key) */
        for (uint32_t i = 0; i < st->ntombs; i++)
            a[i] = st->tombs[(st->tomb_head + i) & (st->tombs_cap - 1)];
        free(st->tombs);
        st->tombs = a;
        st->tombs_cap = cap;
        st->tomb_head = 0;
    }
    st->tombs[(st->tomb_head + st->ntombs++) & (st->tombs_cap - 1)] = off;
}

/* A message appended (or recovered) at `off`: it is its key's newest. The
 * one it supersedes goes now when its segment is closed (not while
 * recovering: the store is still reading; a walk follows). */
static void key_note(struct wr_queue *q, struct wr_msg *m, uint64_t off, bool recovering)
{
    struct wr_stream *st = q->stream;
    struct wr_str k;
    struct ckey *e;
    if (!msg_key(q, m, &k))
        return;
    if ((e = key_find(st, k))) {
        uint64_t old = e->off;
        e->off = off;
        if (!recovering && old < active_first(st))
            drop_at(q, old);
    } else if ((e = malloc(sizeof(*e) + (k.len ? k.len : 1)))) {
        memcpy(e->k, k.ptr, k.len);
        e->node.key = (struct wr_str){e->k, k.len};
        e->off = off;
        if (wr_hmap_put(&st->keys, &e->node) < 0)
            free(e); /* not compacted: kept */
    }
    if (is_tombstone(m))
        tomb_push(st, off);
}

static void compact_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_queue *q = arg;
    struct wr_stream *st = q->stream;
    uint64_t now = wr_now_ms(), af = active_first(st);
    uint32_t n = 0;
    (void)fd;
    (void)what;
    if (q->deleted)
        return;
    if (st->walk_all) {
        st->walk_all = false;
        st->walk_next = st->first;
        st->walk_end = af;
    }
    for (; st->walk_next < st->walk_end && n < COMPACT_BUDGET; st->walk_next++, n++) {
        struct wr_msg *m;
        struct wr_str k;
        struct ckey *e;
        if (st->walk_next < st->first)
            st->walk_next = st->first;
        if (st->walk_next >= st->walk_end)
            break;
        m = *slot(st, st->walk_next);
        if (m && msg_key(q, m, &k) && (e = key_find(st, k)) && e->off != st->walk_next)
            drop_at(q, st->walk_next);
    }
    /* Tombstones older than the retention, in closed segments: the key
     * goes with them. */
    while (st->ntombs && n++ < COMPACT_BUDGET) {
        uint64_t off = st->tombs[st->tomb_head];
        struct wr_msg *m = off >= st->first && off < st->next ? *slot(st, off) : NULL;
        if (m && (off >= af || now - m->published_ms < (uint64_t)q->s.tombstone_ms))
            break;
        st->tomb_head = (st->tomb_head + 1) & (st->tombs_cap - 1);
        st->ntombs--;
        if (m) {
            struct wr_str k;
            struct ckey *e;
            if (msg_key(q, m, &k) && (e = key_find(st, k)) && e->off == off) {
                key_del(st, e);
                drop_at(q, off);
            }
        }
    }
    compact_arm(q);
}

/* Drop the oldest segment: its messages leave (journaled removals). */
static void seg_drop_head(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    uint64_t end = st->nsegs > 1 ? st->segs[1].first : st->next;
    const struct wr_persist *p = q->vhost->persist;
    for (uint64_t o = st->first; o < end; o++) {
        struct wr_msg **s = slot(st, o);
        if (!*s)
            continue;
        st->bytes -= msg_bytes(*s);
        if (q->s.compact)
            key_forget(q, *s, o);
        if (wr_queue_journaled(q, *s))
            p->remove(p->ctx, q, *s);
        wr_msg_unref(*s);
        *s = NULL;
    }
    st->first = end;
    memmove(st->segs, st->segs + 1, (size_t)(st->nsegs - 1) * sizeof(*st->segs));
    st->nsegs--;
}

/* Retention: whole segments from the head, never the active one. */
static void retention(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    uint64_t now = wr_now_ms();
    while (st->nsegs > 1) {
        bool too_big = q->s.max_length_bytes > 0 && st->bytes > (uint64_t)q->s.max_length_bytes;
        bool too_old = q->s.max_age_ms > 0 && now - st->segs[0].last_ms > (uint64_t)q->s.max_age_ms;
        if (!too_big && !too_old)
            break;
        seg_drop_head(q);
    }
}

static int append(struct wr_queue *q, struct wr_msg *m, uint64_t off, bool recovering)
{
    struct wr_stream *st = q->stream;
    struct wr_stream_seg *sg = st->nsegs ? &st->segs[st->nsegs - 1] : NULL;
    uint64_t b = msg_bytes(m);
    bool rolled = false;

    if (st->first == st->next)
        st->first = st->next = off; /* empty: starts where it is */
    while (st->next < off) {        /* a hole (recovery only): keep offsets */
        if (ring_room(st) < 0)
            return WR_ENOMEM;
        *slot(st, st->next++) = NULL;
    }
    if (ring_room(st) < 0)
        return WR_ENOMEM;
    if (!sg || (sg->bytes && sg->bytes + b > st->segment_max)) {
        if (!(sg = seg_open(st, off)))
            return WR_ENOMEM;
        rolled = st->nsegs > 1;
    }
    *slot(st, off) = wr_msg_ref(m);
    st->next = off + 1;
    st->bytes += b;
    sg->bytes += b;
    sg->last_ms = m->published_ms;
    if (rolled)
        retention(q);
    /* Bodies deep in the log leave memory once journaled. */
    if (off - st->first >= WR_PAGE_AFTER) {
        struct wr_msg *old = *slot(st, off - WR_PAGE_AFTER);
        if (old && wr_queue_journaled(q, old))
            q->vhost->persist->page_out(q->vhost->persist->ctx, old);
    }
    if (q->s.compact) {
        if (rolled) { /* the segment before this one closed: walk it */
            uint64_t from = st->segs[st->nsegs - 2].first;
            if (st->walk_next >= st->walk_end)
                st->walk_next = from;
            st->walk_end = off;
        }
        key_note(q, m, off, recovering);
        compact_arm(q);
    }
    return 0;
}

/* Offsets up to `off` wait for journal position `pos`. */
static void pend_push(struct wr_queue *q, uint64_t off, uint64_t pos)
{
    struct wr_stream *st = q->stream;
    if (st->npend == st->pend_cap) {
        uint32_t cap = st->pend_cap ? st->pend_cap * 2 : 64;
        struct wr_stream_pend *a = malloc((size_t)cap * sizeof(*a));
        if (!a) {
            /* Cannot remember: visible at the next sync of anything. */
            if (st->npend)
                st->pend[(st->pend_head + st->npend - 1) & (st->pend_cap - 1)].off = off;
            return;
        }
        for (uint32_t i = 0; i < st->npend; i++)
            a[i] = st->pend[(st->pend_head + i) & (st->pend_cap - 1)];
        free(st->pend);
        st->pend = a;
        st->pend_cap = cap;
        st->pend_head = 0;
    }
    st->pend[(st->pend_head + st->npend++) & (st->pend_cap - 1)] =
        (struct wr_stream_pend){off, pos};
    if (wr_list_empty(&st->wnode) && q->vhost->stream_wait)
        wr_list_add_tail(q->vhost->stream_wait, &st->wnode);
}

void wr_stream_synced(struct wr_list *wait, uint64_t pos)
{
    struct wr_list *it, *tmp;
    wr_list_each_safe(it, tmp, wait)
    {
        struct wr_stream *st = wr_container_of(it, struct wr_stream, wnode);
        uint64_t was = st->committed;
        while (st->npend && st->pend[st->pend_head].pos <= pos) {
            st->committed = st->pend[st->pend_head].off + 1;
            st->pend_head = (st->pend_head + 1) & (st->pend_cap - 1);
            st->npend--;
        }
        if (!st->npend)
            wr_list_del(&st->wnode);
        if (st->committed != was)
            wr_stream_dispatch(st->q);
    }
}

int wr_stream_append(struct wr_queue *q, struct wr_msg *m, uint64_t journal_pos)
{
    struct wr_stream *st = q->stream;
    uint64_t off = st->next;
    int rc;
    if ((rc = append(q, m, off, false)) < 0)
        return rc;
    if (journal_pos && q->vhost->stream_wait)
        pend_push(q, off, journal_pos);
    else if (st->npend)
        pend_push(q, off, 0); /* after those that wait, in order */
    else
        st->committed = off + 1;
    if (st->chunk_us != wr_now_us() || st->chunk_first < st->first) {
        st->chunk_us = wr_now_us();
        st->chunk_first = off;
    }
    wr_stat_inc(&q->st, WR_ST_PUBLISH);
    wr_stream_dispatch(q);
    return 0;
}

int wr_stream_append_recovered(struct wr_queue *q, struct wr_msg *m)
{
    struct wr_stream *st = q->stream;
    struct wr_fv v;
    int64_t off;
    int rc;
    if (wr_table_get(wr_msg_headers(m), OFFSET_KEY, &v) != 1 || !wr_fv_int(&v, &off) || off < 0 ||
        (st->next > st->first && (uint64_t)off < st->next)) {
        wr_log(WR_LOG_WARNING,
               "stream '%s': a recovered message without a usable x-stream-offset is dropped",
               q->name);
        return WR_EPRECONDITION_FAILED;
    }
    if ((uint64_t)off - st->next > (1u << 20) && st->next > st->first) {
        wr_log(WR_LOG_WARNING, "stream '%s': recovered offset %lld is far past %llu: dropped",
               q->name, (long long)off, (unsigned long long)st->next);
        return WR_EPRECONDITION_FAILED;
    }
    if ((rc = append(q, m, (uint64_t)off, true)) < 0)
        return rc;
    st->committed = st->next;            /* on disk already */
    if (q->s.compact && !st->walk_all) { /* once the store is open */
        st->walk_all = true;
        compact_arm(q);
    }
    st->chunk_first = (uint64_t)off;
    return 0;
}

/* ---- consumers ---- */

#define READ_AHEAD 256 /* paged-out bodies read back together (one pread per run) */

/* A replay reached a paged-out body: read back the bodies of the next
 * messages with it, a run at a time instead of one read each. */
static void read_ahead(struct wr_queue *q, uint64_t from)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    struct wr_msg *ms[READ_AHEAD];
    uint32_t n = 0;
    for (uint64_t o = from; o < st->committed && n < READ_AHEAD; o++) {
        struct wr_msg *m = *slot(st, o);
        if (m && !wr_msg_body_resident(m))
            ms[n++] = m;
    }
    if (n > 1)
        p->load_bodies(p->ctx, ms, n);
}

void wr_stream_dispatch_one(struct wr_queue *q, struct wr_consumer *c)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    if (c->stream_next < st->first)
        c->stream_next = st->first; /* retention went past it */
    while (c->q == q && c->stream_next < st->committed && c->ops->can_take(c)) {
        uint64_t off = c->stream_next++;
        struct wr_msg *m = *slot(st, off);
        struct wr_qent e = {0};
        bool deep;
        if (!m)
            continue;
        deep = st->next - off > WR_PAGE_AFTER && wr_queue_journaled(q, m);
        if (deep && !wr_msg_body_resident(m))
            read_ahead(q, off);
        e.m = wr_msg_ref(m);
        e.seq = (uint32_t)off; /* the offset, for wr_stream_acked */
        q->stat_delivered++;
        c->ops->deliver(c, q, &e);
        /* Read back for this delivery (now in the output buffer, or
         * pinned there): out of memory again, so a replay of a long
         * stream does not bring it all in. */
        if (deep && wr_msg_body_resident(m))
            p->page_out(p->ctx, m);
    }
}

static void dispatch_list(struct wr_queue *q, struct wr_list *l)
{
    struct wr_list *it, *tmp;
    wr_list_each_safe(it, tmp, l)
    {
        wr_stream_dispatch_one(q, wr_container_of(it, struct wr_consumer, qnode));
    }
}

void wr_stream_dispatch(struct wr_queue *q)
{
    struct wr_list *g;
    if (q->dispatching || q->deleted)
        return;
    q->dispatching = true;
    for (g = q->groups.next; g != &q->groups; g = g->next)
        dispatch_list(q, &wr_container_of(g, struct wr_cgroup, node)->members);
    dispatch_list(q, &q->idle);
    q->dispatching = false;
}

/* ---- x-stream-offset ---- */

/* The first offset whose message was published at or after wall-clock
 * `wall_ms` (next when none). */
static uint64_t offset_at(const struct wr_stream *st, int64_t wall_ms)
{
    int64_t mono = wall_ms - wall_minus_mono();
    uint64_t lo = st->first, hi = st->next;
    /* Publish times only grow along the log (a recovered message keeps
     * its own); binary search over the present entries. */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, o = mid;
        const struct wr_msg *m = NULL;
        while (o < hi && !(m = *slot(st, o)))
            o++;
        if (!m) {
            hi = mid;
            continue;
        }
        if ((int64_t)m->published_ms < mono)
            lo = o + 1;
        else
            hi = mid;
    }
    return lo;
}

int wr_stream_start(struct wr_queue *q, const struct wr_fv *v, uint64_t *out, struct wr_errbuf *err)
{
    struct wr_stream *st = q->stream;
    int64_t i, age;
    char why[160];

    if (!v) {
        *out = st->next;
        return 0;
    }
    if (v->type == 'S') {
        if (wr_str_eqc(v->v.str, "first")) {
            *out = st->first;
            return 0;
        }
        if (wr_str_eqc(v->v.str, "last")) {
            *out = st->next > st->first ? st->chunk_first : st->next;
            return 0;
        }
        if (wr_str_eqc(v->v.str, "next")) {
            *out = st->next;
            return 0;
        }
        /* An interval ("1h", as x-max-age): from that long ago. */
        if (wr_qargs_parse_age(v->v.str, &age)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            *out = offset_at(st, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - age);
            return 0;
        }
    } else if (v->type == 'T') {
        *out =
            offset_at(st, (int64_t)(v->v.T > INT64_MAX / 1000 ? INT64_MAX / 1000 : v->v.T) * 1000);
        return 0;
    } else if (wr_fv_int(v, &i)) {
        /* Before the head (negative included): from the head. */
        *out = i < 0 || (uint64_t)i < st->first ? st->first : (uint64_t)i;
        return 0;
    }
    /* RabbitMQ 3.10's reason for "3"; it crashes the channel (541) on the
     * other forms, which Warren refuses the same way. */
    if (v->type == 'S')
        snprintf(why, sizeof(why), "{invalid_stream_offset_arg,{longstr,<<\"%.*s\">>}}",
                 (int)(v->v.str.len > 100 ? 100 : v->v.str.len), v->v.str.ptr);
    else
        snprintf(why, sizeof(why), "{invalid_stream_offset_arg,{%s,...}}",
                 wr_field_type_name(v->type));
    return wr_fail(err, WR_EPRECONDITION_FAILED,
                   "invalid arg 'x-stream-offset' for queue '%s' in vhost '%s': %s", q->name,
                   q->vhost->name, why);
}

void wr_stream_clear(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    for (uint64_t o = st->first; o < st->next; o++) {
        struct wr_msg **s = slot(st, o);
        if (!*s)
            continue;
        if (wr_queue_journaled(q, *s))
            p->remove(p->ctx, q, *s);
        wr_msg_unref(*s);
        *s = NULL;
    }
    st->first = st->next;
    st->bytes = 0;
    st->nsegs = 0;
}

/* ---- named consumers ---- */

static struct wr_stream_name *name_find(struct wr_stream *st, const char *name, uint8_t len)
{
    for (uint32_t i = 0; i < st->nnames; i++)
        if (st->names[i]->len == len && memcmp(st->names[i]->name, name, len) == 0)
            return st->names[i];
    return NULL;
}

static struct wr_stream_name *name_add(struct wr_queue *q, const char *name, uint8_t len)
{
    struct wr_stream *st = q->stream;
    struct wr_stream_name *n;
    if (st->nnames == st->names_cap) {
        uint32_t cap = st->names_cap ? st->names_cap * 2 : 4;
        struct wr_stream_name **a = realloc(st->names, (size_t)cap * sizeof(*a));
        if (!a)
            return NULL;
        st->names = a;
        st->names_cap = cap;
    }
    if (!(n = calloc(1, sizeof(*n))))
        return NULL;
    wr_list_init(&n->dnode);
    n->qid = q->store_id;
    n->next = UINT64_MAX;
    n->len = len;
    memcpy(n->name, name, len);
    st->names[st->nnames++] = n;
    return n;
}

struct wr_stream_name *wr_stream_name_get(struct wr_queue *q, const struct wr_fv *v,
                                          struct wr_errbuf *err)
{
    struct wr_stream_name *n;
    if (v->type != 'S' || v->v.str.len == 0 || v->v.str.len > 255) {
        wr_fail(err, WR_EPRECONDITION_FAILED,
                "x-stream-consumer-name must be a string of 1 to 255 bytes");
        return NULL;
    }
    /* Looked up once per basic.consume; a stream has few names. */
    n = name_find(q->stream, v->v.str.ptr, (uint8_t)v->v.str.len);
    if (!n && !(n = name_add(q, v->v.str.ptr, (uint8_t)v->v.str.len)))
        wr_fail(err, WR_EINTERNAL, "out of memory");
    return n;
}

void wr_stream_name_restore(struct wr_queue *q, const char *name, uint8_t len, uint64_t next)
{
    struct wr_stream_name *n = name_find(q->stream, name, len);
    if (!n && !(n = name_add(q, name, len)))
        return;
    n->next = next;
}

void wr_stream_acked(struct wr_queue *q, struct wr_stream_name *n, uint32_t seq)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    /* The offset whose low 32 bits are seq, at or below the tail. */
    uint64_t off = st->next - 1 - (uint32_t)((uint32_t)(st->next - 1) - seq);
    if (n->next != UINT64_MAX && off + 1 <= n->next)
        return;
    n->next = off + 1;
    if (!n->dirty && p && q->durable && q->store_id) {
        n->dirty = true;
        p->stream_offset(p->ctx, n);
    }
}

uint64_t wr_stream_bytes_after(const struct wr_stream *st, uint64_t from)
{
    uint64_t b = 0;
    if (from < st->first)
        from = st->first;
    for (uint64_t o = from; o < st->next; o++)
        if (*slot(st, o))
            b += msg_bytes(*slot(st, o));
    return b;
}
