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

/* A compacted stream's key: its newest message. */
struct ckey {
    struct wr_hnode node; /* st->keys, key = k */
    uint64_t off;
    uint64_t bytes; /* that message's */
    bool dead;      /* a tombstone past its retention: nothing of the key is seen */
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

static void tombs_free(struct wr_stream *st)
{
    for (uint32_t i = 0; i < st->ntombs; i++)
        free(st->tombs[(st->tomb_head + i) & (st->tombs_cap - 1)].key);
    free(st->tombs);
    st->tombs = NULL;
    st->ntombs = st->tombs_cap = st->tomb_head = 0;
}

void wr_stream_free(struct wr_stream *st)
{
    if (!st)
        return;
    for (uint64_t o = st->hot; o < st->next; o++)
        wr_msg_unref(*slot(st, o));
    for (uint32_t i = 0; i < st->nnames; i++) {
        wr_list_del(&st->names[i]->dnode); /* off the store's list */
        free(st->names[i]);
    }
    free(st->names);
    keys_free(st);
    tombs_free(st);
    free(st->pend);
    wr_list_del(&st->wnode);
    if (st->compact_ev)
        event_free(st->compact_ev);
    if (st->resume_ev)
        event_free(st->resume_ev);
    if (st->resume_late)
        event_free(st->resume_late);
    free(st->ring);
    free(st->segs);
    free(st->idx);
    free(st->pins);
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
    uint64_t n = st->next - st->hot, cap;
    struct wr_msg **a;
    if (n < st->cap)
        return 0;
    cap = st->cap ? st->cap * 2 : 64;
    if (!(a = calloc(cap, sizeof(*a))))
        return WR_ENOMEM;
    for (uint64_t o = st->hot; o < st->next; o++)
        a[o & (cap - 1)] = *slot(st, o);
    free(st->ring);
    st->ring = a;
    st->cap = cap;
    return 0;
}

/* Room for one more element (of `elt` bytes) in an array of n: the array,
 * moved or not, its capacity *cap doubled from `first`; NULL when out of
 * memory (the array unchanged). */
static void *room(void *a, uint32_t n, uint32_t *cap, size_t elt, uint32_t first)
{
    uint32_t c;
    if (n < *cap)
        return a;
    c = *cap ? *cap * 2 : first;
    if (!(a = realloc(a, (size_t)c * elt)))
        return NULL;
    *cap = c;
    return a;
}

static struct wr_stream_seg *seg_open(struct wr_stream *st, uint64_t first)
{
    struct wr_stream_seg *a = room(st->segs, st->nsegs, &st->segs_cap, sizeof(*a), 4);
    if (!a)
        return NULL;
    st->segs = a;
    st->segs[st->nsegs] = (struct wr_stream_seg){first, 0, 0};
    return &st->segs[st->nsegs++];
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

/* Does a message of `b` bytes start a new segment (none yet, or the
 * active one is full)? */
static bool seg_starts(const struct wr_stream *st, uint64_t b)
{
    const struct wr_stream_seg *sg = st->nsegs ? &st->segs[st->nsegs - 1] : NULL;
    return !sg || (sg->bytes && sg->bytes + b > st->segment_max);
}

/* A message of `b` bytes at `off`, published at monotonic `ms`, in the
 * active segment, or in a new one when it is full (*opened). */
static int seg_account(struct wr_stream *st, uint64_t off, uint64_t b, uint64_t ms, bool *opened)
{
    struct wr_stream_seg *sg = st->nsegs ? &st->segs[st->nsegs - 1] : NULL;
    *opened = false;
    if (seg_starts(st, b)) {
        if (!(sg = seg_open(st, off)))
            return WR_ENOMEM;
        *opened = true;
    }
    sg->bytes += b;
    sg->last_ms = ms;
    st->bytes += b;
    return 0;
}

/* ---- the sparse index and the journal segments held ---- */

/* The message at `off` (b bytes, its record at journal position `pos`)
 * was appended: an index entry when a step of the log has passed, or a
 * journal or stream segment begins; its journal segment held. */
static int index_note(struct wr_queue *q, uint64_t off, uint64_t pos, int64_t wall_ms, uint64_t b,
                      bool seg_start)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    uint32_t jseg = (uint32_t)(pos >> 32);
    bool new_jseg = !st->npins || st->pins[st->npins - 1] != jseg;

    if (new_jseg) {
        uint32_t *a = room(st->pins, st->npins, &st->pins_cap, sizeof(*a), 4);
        if (!a)
            return WR_ENOMEM;
        st->pins = a;
        st->pins[st->npins++] = jseg;
        if (p)
            p->stream_pin(p->ctx, jseg, true);
    }
    if (!st->nidx || new_jseg || seg_start || st->idx_since >= WR_STREAM_INDEX_EVERY) {
        struct wr_stream_idx *a = room(st->idx, st->nidx, &st->idx_cap, sizeof(*a), 16);
        if (!a)
            return WR_ENOMEM; /* (the next append tries again) */
        st->idx = a;
        st->idx[st->nidx++] = (struct wr_stream_idx){off, pos, st->appended, wall_ms};
        st->idx_since = 0;
    }
    st->idx_since += b;
    return 0;
}

/* Retention moved `first`: index entries before it go, and the journal
 * segments only they needed. */
static void index_drop_before(struct wr_queue *q, uint64_t first)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    uint32_t k = 0, keep_from, n = 0;
    while (k < st->nidx && st->idx[k].off < first)
        k++;
    /* An entry starts every stream segment, so one is at `first`; keep
     * the one before otherwise (reading starts there). */
    if (k && (k == st->nidx || st->idx[k].off > first))
        k--;
    memmove(st->idx, st->idx + k, (size_t)(st->nidx - k) * sizeof(*st->idx));
    st->nidx -= k;
    keep_from = st->nidx ? (uint32_t)(st->idx[0].pos >> 32) : UINT32_MAX;
    if (!st->nidx && st->npins)
        keep_from = st->pins[st->npins - 1]; /* the newest stays held until more comes */
    while (n < st->npins && st->pins[n] < keep_from) {
        if (p)
            p->stream_pin(p->ctx, st->pins[n], false);
        n++;
    }
    memmove(st->pins, st->pins + n, (size_t)(st->npins - n) * sizeof(*st->pins));
    st->npins -= n;
}

/* The oldest index entry at or before `off` (the stream is not empty). */
static uint32_t index_find(const struct wr_stream *st, uint64_t off)
{
    uint32_t lo = 0, hi = st->nidx;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (st->idx[mid].off <= off)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---- key compaction ---- */

#define TOMB_BUDGET 4096 /* tombstones looked at per loop turn */

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

static bool is_tombstone(const struct wr_msg *m, uint64_t body_len)
{
    struct wr_fv v;
    return body_len == 0 && wr_table_get(wr_msg_headers(m), "x-tombstone", &v) == 1 &&
           v.type == 't' && v.v.t;
}

static struct ckey *key_find(struct wr_stream *st, struct wr_str k)
{
    struct wr_hnode *n = wr_hmap_get(&st->keys, k);
    return n ? wr_container_of(n, struct ckey, node) : NULL;
}

/* Does a consumer see the message at `off`? Not one in a closed segment
 * whose key has a newer message, or whose key a tombstone removed. */
static bool seen(struct wr_queue *q, const struct wr_msg *m, uint64_t off)
{
    struct wr_stream *st = q->stream;
    struct wr_str k;
    struct ckey *e;
    if (!q->s.compact || off >= active_first(st) || !msg_key(q, m, &k))
        return true;
    e = key_find(st, k);
    return !e || (e->off == off && !e->dead);
}

/* The message at `off` (b bytes) left the view of consumers. */
static void unseen(struct wr_stream *st, uint64_t off, uint64_t b)
{
    struct wr_stream_seg *sg = seg_of(st, off);
    if (sg && off >= st->first) {
        sg->bytes -= b < sg->bytes ? b : sg->bytes;
        st->bytes -= b < st->bytes ? b : st->bytes;
    }
    st->compacted++;
}

/* The active segment closed: what was superseded in it is unseen now. */
static void close_active(struct wr_stream *st)
{
    struct wr_stream_seg *sg = &st->segs[st->nsegs - 2];
    sg->bytes -= st->sup_bytes < sg->bytes ? st->sup_bytes : sg->bytes;
    st->bytes -= st->sup_bytes < st->bytes ? st->sup_bytes : st->bytes;
    st->compacted += st->sup_n;
    st->sup_n = st->sup_bytes = 0;
}

static void compact_cb(evutil_socket_t fd, short what, void *arg);

static void compact_arm(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    struct timeval now = {0, 0}, later = {1, 0};
    if (!q->vhost->base || q->deleted || !st->ntombs)
        return;
    if (!st->compact_ev && !(st->compact_ev = evtimer_new(q->vhost->base, compact_cb, q)))
        return;
    if (!evtimer_pending(st->compact_ev, NULL))
        evtimer_add(st->compact_ev, st->ntombs > TOMB_BUDGET ? &now : &later);
}

static void tomb_push(struct wr_stream *st, uint64_t off, uint64_t ms, struct wr_str k)
{
    char *key = malloc(k.len ? k.len : 1);
    if (!key)
        return; /* this tombstone stays (and its key) */
    if (st->ntombs == st->tombs_cap) {
        uint32_t cap = st->tombs_cap ? st->tombs_cap * 2 : 16;
        struct wr_stream_tomb *a = malloc((size_t)cap * sizeof(*a));
        if (!a) {
            free(key);
            return;
        }
        for (uint32_t i = 0; i < st->ntombs; i++)
            a[i] = st->tombs[(st->tomb_head + i) & (st->tombs_cap - 1)];
        free(st->tombs);
        st->tombs = a;
        st->tombs_cap = cap;
        st->tomb_head = 0;
    }
    memcpy(key, k.ptr, k.len);
    st->tombs[(st->tomb_head + st->ntombs++) & (st->tombs_cap - 1)] =
        (struct wr_stream_tomb){off, ms, key, (uint32_t)k.len};
}

/* A message (b bytes) appended or recovered at `off`: its key's newest.
 * The one it supersedes is unseen at once when its segment is closed, or
 * when the active segment closes. */
static void key_note(struct wr_queue *q, const struct wr_msg *m, uint64_t body_len, uint64_t off,
                     uint64_t b)
{
    struct wr_stream *st = q->stream;
    struct wr_str k;
    struct ckey *e;
    if (!msg_key(q, m, &k))
        return;
    if ((e = key_find(st, k))) {
        if (!e->dead) {
            if (e->off < active_first(st)) {
                unseen(st, e->off, e->bytes);
            } else {
                st->sup_n++;
                st->sup_bytes += e->bytes;
            }
        }
        e->off = off;
        e->bytes = b;
        e->dead = false;
    } else if ((e = malloc(sizeof(*e) + (k.len ? k.len : 1)))) {
        memcpy(e->k, k.ptr, k.len);
        e->node.key = (struct wr_str){e->k, k.len};
        e->off = off;
        e->bytes = b;
        e->dead = false;
        if (wr_hmap_put(&st->keys, &e->node) < 0)
            free(e); /* not compacted: kept */
    }
    if (is_tombstone(m, body_len))
        tomb_push(st, off, m->published_ms, k);
}

/* Retention cut the log before `first`: keys whose newest went, go. */
static void keys_drop_before(struct wr_stream *st, uint64_t first)
{
    struct wr_hnode *n, *next;
    size_t it;
    for (n = wr_hmap_first(&st->keys, &it); n; n = next) {
        struct ckey *e = wr_container_of(n, struct ckey, node);
        next = wr_hmap_next(&st->keys, &it, n);
        if (e->off < first) {
            wr_hmap_del(&st->keys, n);
            free(e);
        }
    }
}

/* Tombstones older than the retention, in closed segments: their keys
 * are seen no more. At most `budget` looked at. */
static void tombs_sweep(struct wr_queue *q, uint32_t budget)
{
    struct wr_stream *st = q->stream;
    uint64_t now = wr_now_ms(), af = active_first(st);
    while (st->ntombs && budget--) {
        struct wr_stream_tomb *t = &st->tombs[st->tomb_head];
        struct ckey *e;
        if (t->off >= st->first && (t->off >= af || now - t->ms < (uint64_t)q->s.tombstone_ms))
            break;
        if (t->off >= st->first && (e = key_find(st, (struct wr_str){t->key, t->len})) &&
            e->off == t->off && !e->dead) {
            e->dead = true;
            unseen(st, t->off, e->bytes);
        }
        free(t->key);
        st->tomb_head = (st->tomb_head + 1) & (st->tombs_cap - 1);
        st->ntombs--;
    }
}

static void compact_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_queue *q = arg;
    (void)fd;
    (void)what;
    if (q->deleted)
        return;
    tombs_sweep(q, TOMB_BUDGET);
    compact_arm(q);
}

/* ---- retention ---- */

/* Drop the oldest segment. */
static void seg_drop_head(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    uint64_t end = st->nsegs > 1 ? st->segs[1].first : st->next;
    for (; st->hot < end; st->hot++) {
        struct wr_msg *m = *slot(st, st->hot);
        st->hot_bytes -= msg_bytes(m);
        wr_msg_unref(m);
    }
    st->bytes -= st->segs[0].bytes < st->bytes ? st->segs[0].bytes : st->bytes;
    st->first = end;
    memmove(st->segs, st->segs + 1, (size_t)(st->nsegs - 1) * sizeof(*st->segs));
    st->nsegs--;
    if (q->s.compact)
        keys_drop_before(st, end);
    index_drop_before(q, end);
}

/* Retention: whole segments from the head, never the active one. */
static void retention(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    uint64_t now = wr_now_ms(), was = st->first;
    while (st->nsegs > 1) {
        bool too_big = q->s.max_length_bytes > 0 && st->bytes > (uint64_t)q->s.max_length_bytes;
        bool too_old = q->s.max_age_ms > 0 && now - st->segs[0].last_ms > (uint64_t)q->s.max_age_ms;
        if (!too_big && !too_old)
            break;
        seg_drop_head(q);
    }
    if (st->first != was && p && q->store_id)
        p->stream_truncate(p->ctx, q, st->first);
}

/* ---- appending ---- */

/* The tail held in memory shrinks to its bounds; what leaves is on disk
 * (synced: consumers reach it through the index). A stream without a
 * journal keeps everything. */
static void hot_trim(struct wr_stream *st)
{
    if (st->keep_all)
        return;
    while (st->hot < st->committed &&
           (st->next - st->hot > WR_STREAM_HOT_MSGS || st->hot_bytes > WR_STREAM_HOT_BYTES)) {
        struct wr_msg *m = *slot(st, st->hot++);
        st->hot_bytes -= msg_bytes(m);
        wr_msg_unref(m);
    }
}

static int append(struct wr_queue *q, struct wr_msg *m, uint64_t off, uint64_t rec_pos)
{
    struct wr_stream *st = q->stream;
    uint64_t b = msg_bytes(m);
    bool opened;

    if (ring_room(st) < 0)
        return WR_ENOMEM;
    if (rec_pos && index_note(q, off, rec_pos, (int64_t)m->published_ms + wall_minus_mono(), b,
                              seg_starts(st, b)) < 0)
        return WR_ENOMEM;
    if (seg_account(st, off, b, m->published_ms, &opened) < 0)
        return WR_ENOMEM;
    if (!rec_pos)
        st->keep_all = true;
    if (q->vhost->turns)
        st->append_turn = *q->vhost->turns;
    *slot(st, off) = wr_msg_ref(m);
    st->next = off + 1;
    st->hot_bytes += b;
    st->appended += b;
    if (q->s.compact) {
        if (opened && st->nsegs > 1)
            close_active(st);
        key_note(q, m, m->body_len, off, b);
        compact_arm(q);
    }
    if (opened && st->nsegs > 1)
        retention(q);
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
        if (st->committed != was) {
            wr_stream_dispatch(st->q);
            hot_trim(st);
        }
    }
}

int wr_stream_append(struct wr_queue *q, struct wr_msg *m, uint64_t journal_pos, uint64_t rec_pos)
{
    struct wr_stream *st = q->stream;
    uint64_t off = st->next;
    int rc;
    if ((rc = append(q, m, off, rec_pos)) < 0)
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
    hot_trim(st);
    return 0;
}

/* ---- recovery ---- */

int wr_stream_recover(struct wr_queue *q, const struct wr_srec *r)
{
    struct wr_stream *st = q->stream;
    uint64_t b = (uint64_t)r->props_len + r->body_len, ms;
    int64_t delta = wall_minus_mono();
    bool opened;

    if (st->next > st->first && r->off < st->next) {
        wr_log(WR_LOG_WARNING, "stream '%s': recovered offset %llu is below the tail %llu: dropped",
               q->name, (unsigned long long)r->off, (unsigned long long)st->next);
        return WR_EPRECONDITION_FAILED;
    }
    if (st->next > st->first && r->off - st->next > (1u << 20)) {
        wr_log(WR_LOG_WARNING, "stream '%s': recovered offset %llu is far past %llu: dropped",
               q->name, (unsigned long long)r->off, (unsigned long long)st->next);
        return WR_EPRECONDITION_FAILED;
    }
    if (st->first == st->next)
        st->first = st->hot = st->next = r->off; /* empty: starts where it is */
    ms = r->wall_ms - delta > 0 ? (uint64_t)(r->wall_ms - delta) : 0;
    if (index_note(q, r->off, r->pos, r->wall_ms, b, seg_starts(st, b)) < 0 ||
        seg_account(st, r->off, b, ms, &opened) < 0)
        return WR_ENOMEM;
    st->next = st->hot = st->committed = r->off + 1;
    st->appended += b;
    st->chunk_first = r->off;
    if (q->s.compact) {
        /* The key (a routing key or a header) and the tombstone mark: a
         * block without the body. */
        struct wr_msg *m = wr_msg_new(q->vhost->msgs, (struct wr_str){r->exchange, r->exchange_len},
                                      (struct wr_str){r->routing_key, r->routing_key_len}, r->props,
                                      r->props_len, 0, 0);
        if (opened && st->nsegs > 1)
            close_active(st);
        if (m) {
            m->published_ms = ms;
            key_note(q, m, r->body_len, r->off, b);
            wr_msg_unref(m);
        }
    }
    if (opened && st->nsegs > 1)
        retention(q);
    return 0;
}

void wr_stream_recover_truncate(struct wr_queue *q, uint64_t first)
{
    struct wr_stream *st = q->stream;
    while (st->nsegs > 1 && st->segs[1].first <= first)
        seg_drop_head(q);
}

void wr_stream_recovered(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    st->hot = st->committed = st->next;
    tombs_sweep(q, UINT32_MAX);
    compact_arm(q);
}

/* ---- consumers ---- */

/* A consumer behind the tail in memory reads the journal: where it is. */
struct wr_stream_cursor {
    struct wr_sreader *rd;
    void (*rd_free)(struct wr_sreader *rd);
    uint64_t pos; /* journal position of the next record to read */
    uint64_t off; /* the consumer's stream_next that `pos` is right for */
};

void wr_stream_consumer_gone(struct wr_consumer *c)
{
    struct wr_stream_cursor *cur = c->stream_cur;
    if (!cur)
        return;
    c->stream_cur = NULL;
    cur->rd_free(cur->rd);
    free(cur);
}

/* The index entry that begins the journal segment after the one *pos is
 * in: false when there is none. */
static bool next_segment(const struct wr_stream *st, uint64_t *pos)
{
    uint32_t seg = (uint32_t)(*pos >> 32), lo = 0, hi = st->nidx;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((uint32_t)(st->idx[mid].pos >> 32) <= seg)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == st->nidx)
        return false;
    *pos = st->idx[lo].pos;
    return true;
}

/* A message read from the journal, for a delivery: its body stays in the
 * reader's chunk (shared, not copied). */
static struct wr_msg *msg_from_rec(struct wr_queue *q, const struct wr_srec *r, int64_t delta)
{
    struct wr_str x = {r->exchange, r->exchange_len}, rk = {r->routing_key, r->routing_key_len};
    struct wr_msg *m;
    if (r->chunk) {
        m = wr_msg_new_shared(q->vhost->msgs, x, rk, r->props, r->props_len, r->body, r->body_len,
                              r->chunk);
    } else if ((m = wr_msg_new(q->vhost->msgs, x, rk, r->props, r->props_len, r->body_len, 0))) {
        memcpy(wr_msg_body(m), r->body, r->body_len);
    }
    if (!m)
        return NULL;
    m->published_ms = r->wall_ms - delta > 0 ? (uint64_t)(r->wall_ms - delta) : 0;
    return m;
}

/* Reads the next record of q at or after *pos, going on to the next
 * journal segment at a segment's end. 1, or 0 at the end of what the
 * index knows. */
static int read_rec(struct wr_queue *q, struct wr_sreader *rd, uint64_t *pos, struct wr_srec *r)
{
    const struct wr_persist *p = q->vhost->persist;
    for (;;) {
        int rc = p->sreader_next(p->ctx, rd, q->store_id, pos, r);
        if (rc > 0)
            return 1;
        /* The segment ends (or cannot be read: the store logged it, and
         * what is left of it is skipped). */
        if (!next_segment(q->stream, pos))
            return 0;
    }
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_queue *q = arg;
    (void)fd;
    (void)what;
    if (q->stream->resume_ev)
        event_del(q->stream->resume_ev);
    if (q->stream->resume_late)
        event_del(q->stream->resume_late);
    wr_stream_dispatch(q);
}

/* Is this stream, or anything in the broker, being published to? */
static bool replay_busy(const struct wr_queue *q)
{
    const struct wr_stream *st = q->stream;
    uint64_t turn = *q->vhost->turns;
    return turn - st->append_turn <= 2 || turn - *q->vhost->publish_turn <= 2;
}

/* Go on reading in a later turn: at the idle priority now and at the
 * normal priority after `late_us`, or (paced) at the normal priority
 * after `late_us` only. False when out of memory. */
static bool resume_later(struct wr_queue *q, uint64_t late_us, bool idle)
{
    struct wr_stream *st = q->stream;
    struct timeval now = {0, 0},
                   late = {(time_t)(late_us / 1000000), (suseconds_t)(late_us % 1000000)};
    if (idle && !st->resume_ev) {
        if (!(st->resume_ev = evtimer_new(q->vhost->base, resume_cb, q)))
            return false;
        /* After the turn's other events: a publisher's input first. */
        event_priority_set(st->resume_ev, WR_LOOP_PRIO_IDLE);
    }
    /* A loop that is never idle runs the idle event never: then this one,
     * at the normal priority, a little later. */
    if (!st->resume_late && !(st->resume_late = evtimer_new(q->vhost->base, resume_cb, q)))
        return false;
    if (idle && !evtimer_pending(st->resume_ev, NULL))
        evtimer_add(st->resume_ev, &now);
    if (!evtimer_pending(st->resume_late, NULL))
        evtimer_add(st->resume_late, &late);
    return true;
}

/* Has this loop turn's reading of the journal been done? Then the
 * consumers go on in a later turn. */
static bool turn_spent(struct wr_queue *q)
{
    struct wr_stream *st = q->stream;
    if (!q->vhost->base || !q->vhost->turns)
        return false;
    if (st->turn != *q->vhost->turns) {
        st->turn = *q->vhost->turns;
        st->turn_read = 0;
    }
    /* Less while this stream, or anything, is published to. */
    if (st->turn_read < (replay_busy(q) ? WR_STREAM_TURN_READ_BUSY : WR_STREAM_TURN_READ))
        return false;
    resume_later(q, WR_STREAM_RESUME_LATE_US, true);
    return true;
}

/* Deliver to c from the journal while it takes and is behind the tail in
 * memory. False when it could not go on (out of memory, or the turn's
 * reading is done). */
static bool cold_read(struct wr_queue *q, struct wr_consumer *c)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    struct wr_stream_cursor *cur = c->stream_cur;
    int64_t delta = wall_minus_mono();
    uint64_t from;

    if (!p || !st->nidx) {
        c->stream_next = st->hot; /* (nothing on disk to read) */
        return true;
    }
    if (!cur) {
        if (!(cur = calloc(1, sizeof(*cur))))
            return false;
        if (!(cur->rd = p->sreader_new(p->ctx))) {
            free(cur);
            return false;
        }
        cur->rd_free = p->sreader_free;
        cur->off = UINT64_MAX;
        c->stream_cur = cur;
    }
    if (cur->off != c->stream_next)
        cur->pos = st->idx[index_find(st, c->stream_next)].pos;
    from = c->stream_next;
    while (c->q == q && c->stream_next < st->hot && c->ops->can_take(c)) {
        struct wr_srec r;
        struct wr_qent e = {0};
        struct wr_msg *m;
        if (turn_spent(q)) {
            st->yielded |= c->stream_next != from;
            return false;
        }
        if (!read_rec(q, cur->rd, &cur->pos, &r) || r.off >= st->hot) {
            c->stream_next = st->hot; /* the rest is in memory */
            cur->off = UINT64_MAX;
            return true;
        }
        if (r.off < c->stream_next)
            continue;
        if (!(m = msg_from_rec(q, &r, delta))) {
            cur->off = UINT64_MAX; /* read it again next time */
            return false;
        }
        c->stream_next = cur->off = r.off + 1;
        st->turn_read += (uint64_t)r.props_len + r.body_len;
        if (!seen(q, m, r.off)) {
            wr_msg_unref(m);
            continue;
        }
        e.m = m;
        e.seq = (uint32_t)r.off; /* the offset, for wr_stream_acked */
        q->stat_delivered++;
        c->ops->deliver(c, q, &e);
    }
    /* Served from the journal: the others first next time. */
    st->yielded |= c->stream_next != from;
    return true;
}

/* cold_read, paced: while anything is published, replays (all of the
 * broker's streams together) read for at most `share` percent of the
 * time, measured around each call (two clock readings per call, which
 * reads up to a consumer's credit, not per message). */
static bool cold_deliver(struct wr_queue *q, struct wr_consumer *c)
{
    struct wr_replay_pace *pace = q->vhost->replay_pace;
    uint64_t t0, t1;
    bool more;
    if (!pace || !pace->share || pace->share >= 100 || !q->vhost->base || !q->vhost->turns ||
        !replay_busy(q))
        return cold_read(q, c);
    t0 = wr_clock_ns();
    if (t0 < pace->gate_ns) {
        resume_later(q, (pace->gate_ns - t0 + 999) / 1000, false);
        return false;
    }
    more = cold_read(q, c);
    t1 = wr_clock_ns();
    pace->spent_ns += t1 - t0;
    if (pace->spent_ns >= WR_STREAM_PACE_QUANTUM_US * 1000u) {
        uint64_t pause = pace->spent_ns * (100 - pace->share) / pace->share;
        pace->gate_ns =
            t1 + (pause < WR_STREAM_PAUSE_MAX_US * 1000u ? pause : WR_STREAM_PAUSE_MAX_US * 1000u);
        pace->spent_ns = 0;
    }
    return more;
}

void wr_stream_dispatch_one(struct wr_queue *q, struct wr_consumer *c)
{
    struct wr_stream *st = q->stream;
    if (c->stream_next < st->first)
        c->stream_next = st->first; /* retention went past it */
    while (c->q == q && c->stream_next < st->committed && c->ops->can_take(c)) {
        uint64_t off = c->stream_next;
        struct wr_msg *m;
        struct wr_qent e = {0};
        if (off < st->hot) {
            if (!cold_deliver(q, c))
                break;
            continue;
        }
        c->stream_next++;
        m = *slot(st, off);
        if (!seen(q, m, off))
            continue;
        e.m = wr_msg_ref(m);
        e.seq = (uint32_t)off; /* the offset, for wr_stream_acked */
        q->stat_delivered++;
        c->ops->deliver(c, q, &e);
    }
    /* Caught up with the tail in memory: no more reading for now. */
    if (c->stream_cur && c->stream_next >= st->hot)
        wr_stream_consumer_gone(c);
}

void wr_stream_consumer_ready(struct wr_queue *q, struct wr_consumer *c)
{
    struct wr_stream *st = q->stream;
    if (c->stream_cur && c->stream_next >= st->first && c->stream_next < st->hot &&
        q->vhost->base && q->vhost->turns && resume_later(q, WR_STREAM_RESUME_LATE_US, true))
        return;
    wr_stream_dispatch_one(q, c);
}

/* Consumers in list order; one that read from the journal goes to the
 * list's end, so that consumers replaying the same stream take turns
 * rather than the first ones taking every turn's reading. */
static void dispatch_list(struct wr_queue *q, struct wr_list *l)
{
    struct wr_list *it, *tmp;
    wr_list_each_safe(it, tmp, l)
    {
        struct wr_consumer *c = wr_container_of(it, struct wr_consumer, qnode);
        q->stream->yielded = false;
        wr_stream_dispatch_one(q, c);
        if (q->stream->yielded && c->q == q && tmp != l) {
            wr_list_del(&c->qnode);
            wr_list_add_tail(l, &c->qnode);
        }
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
 * `wall_ms` (next when none). Publish times only grow along the log (a
 * recovered message keeps its own). */
static uint64_t offset_at(struct wr_queue *q, int64_t wall_ms)
{
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    int64_t delta = wall_minus_mono(), mono = wall_ms - delta;
    uint64_t lo = st->hot, hi = st->next, stop;
    uint32_t i;
    struct wr_sreader *rd;
    struct wr_srec r;

    if (lo < hi && (int64_t)(*slot(st, lo))->published_ms < mono) {
        while (lo < hi) { /* in memory: a binary search */
            uint64_t mid = lo + (hi - lo) / 2;
            if ((int64_t)(*slot(st, mid))->published_ms < mono)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
    if (st->first >= st->hot || !st->nidx || !p)
        return st->hot;
    /* On disk: the last index entry published before it, then a read of
     * the records up to the next entry. */
    {
        uint32_t a = 0, b = st->nidx;
        while (a < b) {
            uint32_t mid = a + (b - a) / 2;
            if (st->idx[mid].wall_ms < wall_ms)
                a = mid + 1;
            else
                b = mid;
        }
        if (!a)
            return st->first;
        i = a - 1;
    }
    stop = i + 1 < st->nidx ? st->idx[i + 1].off : st->hot;
    if (stop > st->hot)
        stop = st->hot;
    if (!(rd = p->sreader_new(p->ctx)))
        return st->idx[i].off;
    {
        uint64_t pos = st->idx[i].pos, got = stop;
        while (read_rec(q, rd, &pos, &r) && r.off < stop) {
            if (r.off >= st->first && r.wall_ms >= wall_ms) {
                got = r.off;
                break;
            }
        }
        p->sreader_free(rd);
        return got;
    }
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
            *out = offset_at(q, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - age);
            return 0;
        }
    } else if (v->type == 'T') {
        *out =
            offset_at(q, (int64_t)(v->v.T > INT64_MAX / 1000 ? INT64_MAX / 1000 : v->v.T) * 1000);
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
    for (uint64_t o = st->hot; o < st->next; o++)
        wr_msg_unref(*slot(st, o));
    st->first = st->hot = st->next;
    st->bytes = st->hot_bytes = 0;
    st->nsegs = 0;
    st->nidx = 0;
    for (uint32_t i = 0; i < st->npins; i++)
        if (p)
            p->stream_pin(p->ctx, st->pins[i], false);
    st->npins = 0;
    keys_free(st);
    wr_hmap_init(&st->keys);
    tombs_free(st);
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
    struct wr_stream_name *n, **a = room(st->names, st->nnames, &st->names_cap, sizeof(*a), 4);
    if (!a)
        return NULL;
    st->names = a;
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

uint64_t wr_stream_bytes_after(const struct wr_stream *cst, uint64_t from)
{
    struct wr_queue *q = cst->q;
    struct wr_stream *st = q->stream;
    const struct wr_persist *p = q->vhost->persist;
    uint64_t before;
    uint32_t i;
    if (from < st->first)
        from = st->first;
    if (from >= st->hot || !st->nidx) {
        uint64_t b = 0;
        for (uint64_t o = from > st->hot ? from : st->hot; o < st->next; o++)
            b += msg_bytes(*slot(st, o));
        return b;
    }
    /* On disk: what was appended before the index entry, and the records
     * from there to `from` (one read of at most an index step). */
    i = index_find(st, from);
    before = st->idx[i].bytes;
    if (st->idx[i].off < from && p) {
        struct wr_sreader *rd = p->sreader_new(p->ctx);
        uint64_t pos = st->idx[i].pos;
        struct wr_srec r;
        while (rd && read_rec(q, rd, &pos, &r) && r.off < from)
            before += (uint64_t)r.props_len + r.body_len;
        if (rd)
            p->sreader_free(rd);
    }
    return st->appended > before ? st->appended - before : 0;
}
