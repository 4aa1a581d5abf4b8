/*
 * store.c - persistence glue and recovery; see store.h.
 *
 * Journal records (payloads, big-endian):
 *   'P' publish: id u64, wall ms u64, nq u16, queue ids u64[nq],
 *                exchange (u8 len, bytes), routing key (u8 len, bytes),
 *                properties (u32 len, bytes), body (u32 len, bytes)
 *   'A' removed: id u64, queue id u64      (acked, dropped, expired, ...)
 *   'R' requeued: id u64, queue id u64, deliveries u16
 *   'K' dedup key: flags u8 (1: a compaction copy), message id u64, owner
 *                u64 (a queue id, or an exchange's holder id), expiry wall
 *                ms u64 (0: never), key (the rest)
 *   'S' stream message: queue id u64, offset u64, wall ms u64, then as 'P'
 *                from the exchange on
 *   'T' stream truncated: queue id u64, first offset u64 (retention)
 * A message routed to several durable queues is written once. Queue ids
 * (struct wr_queue.store_id) are unique in the broker, across vhosts: each
 * vhost gives ids from a range of its own (broker.h), and definitions.json
 * keeps where each vhost is and how many ranges were given, so an id is
 * never reused for another queue.
 *
 * Segment liveness: every (message, durable queue) pair counts on the
 * segment holding the publish record. Segments are deleted oldest first,
 * only when they and every older one hold nothing live, so a removal
 * record can never outlive the publish it cancels.
 *
 * Deduplication keys (broker/dedup.h): a new key of a durable queue or
 * exchange whose message is journaled is a 'K' record written just before
 * the message's 'P' record, naming its id. Recovery takes an original 'K'
 * only when the 'P' with its id was read too (a torn or corrupt write loses
 * both, never just the message), a copy always. A live key counts on its
 * record's segment like a message does, so the segment stays until the key
 * is evicted, expires or is replaced; compaction copies the live keys of a
 * mostly dead segment forward (flag 1: already checked, its message may be
 * long gone).
 *
 * A stream's records are not entries of `sent`: the stream keeps a sparse
 * index of them (broker/stream.h) and holds ("pins") the segments they are
 * in, which are neither compacted nor deleted while held. Recovery hands
 * each 'S' and 'T' record to its stream as it reads it.
 *
 * Recovery marks every recovered message redelivered: deliveries are not
 * journaled (that would cost a write per delivery), so a message that was
 * delivered but not acked before the crash cannot be told apart from one
 * that was never delivered. Bodies of recovered messages are held in
 * memory like any other.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "broker/dedup.h"
#include "broker/exchange.h"
#include "broker/persist.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "core/log.h"
#include "store/crc32c.h"
#include "store/defs.h"
#include "store/defslog.h"
#include "store/journal.h"
#include "store/offsets.h"
#include "store/store.h"
#include "wire/methods.gen.h"

struct wr_store {
    char *data_dir;
    char *defs_path; /* definitions.json: the snapshot */
    char *log_path;
    struct wr_defslog *log;            /* definitions.log: changes since the snapshot */
    struct wr_defs_recovered defs_rec; /* what recovery found in it */
    uint64_t snap_bytes;               /* the snapshot's size, for when to write the next */
    struct wr_journal *j;
    bool flush_pending;
    bool defs_dirty;  /* more than logged objects changed: write a snapshot */
    bool defs_failed; /* the last save failed: retried, publishes nacked */
    uint64_t defs_tried_ms;
    struct wr_broker *b; /* its vhosts, users and kept definitions */
    uint64_t users_gen;  /* the user table's generation when last saved */
    struct wr_persist ops;
    uint64_t next_id;
    struct wr_hmap sent;   /* journaled messages still live somewhere, by id */
    bool low_disk;         /* the disk alarm is on: no compaction */
    struct wr_list segs;   /* struct segstat, oldest first */
    struct wr_msg **pageq; /* bodies to drop once their records are written */
    size_t npageq, cappageq;
    struct {
        uint32_t seg;
        int fd;
    } rfd[8]; /* open segments for reading paged-out bodies back */
    unsigned rfd_next;
    void (*synced_cb)(void *arg, uint64_t pos);
    void *synced_arg;
    struct wr_list dcaches;       /* struct wr_dedup.pnode: caches journaling keys */
    struct wr_dedup_stage *stage; /* keys to write with the next publish */
    uint32_t nstage;
    bool no_prune;           /* compaction holds a segment: do not free it */
    struct wr_offsets *offs; /* named stream consumers' positions */
    struct wr_list sdirty;   /* struct wr_stream_name.dnode: to save this turn */
};

static void compact_step(struct wr_store *s);
static void offsets_flush(struct wr_store *s);
static int seg_fd(struct wr_store *s, uint32_t seg);
static void rfd_forget_before(struct wr_store *s, uint32_t first_live);

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void schedule(struct wr_store *s)
{
    s->flush_pending = true;
}

/* A snapshot holding everything, which makes the log's lines redundant. */
static int save_snapshot(struct wr_store *s, struct wr_errbuf *err)
{
    uint64_t bytes = 0;
    int rc = wr_defs_save(s->defs_path, s->b, wr_defslog_seq(s->log), &bytes, err);
    if (rc < 0)
        return rc;
    s->snap_bytes = bytes;
    return wr_defslog_reset(s->log, err);
}

/* The turn's definitions: a line per durable object that came or went,
 * appended to the log; a whole snapshot instead when more than those
 * changed, when the log has grown as large as the snapshot (so a change is
 * written a bounded number of times, however many objects there are), or
 * when appending failed (the log may end in a partial line). */
static int save_defs(struct wr_store *s, struct wr_errbuf *err)
{
    uint64_t limit =
        s->snap_bytes > WR_DEFSLOG_MIN_SNAPSHOT ? s->snap_bytes : WR_DEFSLOG_MIN_SNAPSHOT;
    if (s->defs_dirty || wr_defslog_size(s->log) > limit)
        return save_snapshot(s, err);
    if (wr_defslog_write(s->log, err) < 0) {
        s->defs_dirty = true;
        return WR_EIO;
    }
    return 0;
}

/* ---- named stream consumers (store/offsets.h) ---- */

static void p_stream_offset(void *ctx, struct wr_stream_name *n)
{
    struct wr_store *s = ctx;
    wr_list_add_tail(&s->sdirty, &n->dnode);
    schedule(s);
}

static void offsets_put_name(struct wr_store *s, struct wr_stream_name *n)
{
    wr_offsets_put(s->offs, n->qid, n->next, n->name, n->len);
}

/* Every name of every durable stream, once (a rewrite of the file). */
static void offsets_rewrite(struct wr_store *s)
{
    struct wr_errbuf err;
    struct wr_hnode *vn, *n;
    size_t vit, it;
    if (wr_offsets_rewrite_begin(s->offs, &err) < 0) {
        wr_log(WR_LOG_WARNING, "stream offsets: %s", err.text);
        return;
    }
    for (vn = wr_hmap_first(&s->b->vhosts, &vit); vn; vn = wr_hmap_next(&s->b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n)) {
            struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
            if (!q->stream || !q->store_id || q->deleted)
                continue;
            for (uint32_t i = 0; i < q->stream->nnames; i++)
                if (q->stream->names[i]->next != UINT64_MAX)
                    offsets_put_name(s, q->stream->names[i]);
        }
    }
    if (wr_offsets_rewrite_done(s->offs, &err) < 0)
        wr_log(WR_LOG_WARNING, "stream offsets: %s", err.text);
}

/* The turn's moved positions: one record per name. */
static void offsets_flush(struct wr_store *s)
{
    if (!s->offs)
        return;
    while (!wr_list_empty(&s->sdirty)) {
        struct wr_stream_name *n = wr_container_of(s->sdirty.next, struct wr_stream_name, dnode);
        wr_list_del(&n->dnode);
        n->dirty = false;
        offsets_put_name(s, n);
    }
    wr_offsets_flush(s->offs);
    if (wr_offsets_want_rewrite(s->offs))
        offsets_rewrite(s);
}

struct offsets_rec {
    uint64_t qid, next;
    uint8_t len;
    char name[255];
};

struct offsets_read {
    struct offsets_rec *r;
    size_t n, cap;
    bool oom;
};

static void offsets_collect(void *arg, uint64_t qid, uint64_t next, const char *name, uint8_t len)
{
    struct offsets_read *rd = arg;
    if (rd->n == rd->cap) {
        size_t cap = rd->cap ? rd->cap * 2 : 64;
        struct offsets_rec *a = realloc(rd->r, cap * sizeof(*a));
        if (!a) {
            rd->oom = true;
            return;
        }
        rd->r = a;
        rd->cap = cap;
    }
    rd->r[rd->n].qid = qid;
    rd->r[rd->n].next = next;
    rd->r[rd->n].len = len;
    memcpy(rd->r[rd->n].name, name, len);
    rd->n++;
}

/* Open stream-offsets.log: read the saved positions into the recovered
 * streams (the last record of a name wins), then rewrite it compactly. */
static int offsets_open(struct wr_store *s, struct event_base *base, struct wr_errbuf *err)
{
    char path[4200];
    struct offsets_read rd = {0};
    struct wr_hnode *vn, *n;
    size_t vit, it, applied = 0;

    snprintf(path, sizeof(path), "%s/stream-offsets.log", s->data_dir);
    s->offs = wr_offsets_open(path, base, offsets_collect, &rd, err);
    if (!s->offs) {
        free(rd.r);
        return err->code;
    }
    if (rd.oom)
        wr_log(WR_LOG_WARNING,
               "stream offsets: out of memory reading %s: some named consumers "
               "start from their default offset",
               path);
    for (vn = wr_hmap_first(&s->b->vhosts, &vit); rd.n && vn;
         vn = wr_hmap_next(&s->b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n)) {
            struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
            if (!q->stream || !q->store_id)
                continue;
            /* Few streams have named consumers; records in file order. */
            for (size_t i = 0; i < rd.n; i++)
                if (rd.r[i].qid == q->store_id) {
                    wr_stream_name_restore(q, rd.r[i].name, rd.r[i].len, rd.r[i].next);
                    applied++;
                }
        }
    }
    if (rd.n)
        wr_log(WR_LOG_INFO, "stream offsets: %zu records read, %zu applied to streams", rd.n,
               applied);
    free(rd.r);
    offsets_rewrite(s);
    return 0;
}

/* The end of a loop turn (server.c calls it before the sockets are
 * written): definitions first, then the journal, so a queue's definition
 * is on disk before any record naming it. */
void wr_store_flush(struct wr_store *s)
{
    struct wr_errbuf err;
    if (s->defs_failed && wr_now_ms() - s->defs_tried_ms >= 1000)
        s->flush_pending = true; /* retry a failed save once a second */
    if (wr_users_generation(s->b->users) != s->users_gen) {
        /* Users and permissions change outside the vhosts. */
        s->users_gen = wr_users_generation(s->b->users);
        s->defs_dirty = true;
        s->flush_pending = true;
    }
    if (!s->flush_pending)
        return;
    s->flush_pending = false;
    if ((s->defs_dirty || wr_defslog_pending(s->log)) &&
        (!s->defs_failed || wr_now_ms() - s->defs_tried_ms >= 1000)) {
        s->defs_tried_ms = wr_now_ms();
        if (save_defs(s, &err) < 0) {
            /* Keep it dirty; until it is saved, persistent publishes are
             * refused (nacked) so nothing is confirmed into a queue whose
             * definition might not survive a restart. */
            if (!s->defs_failed)
                wr_log(WR_LOG_ERROR,
                       "definitions not saved: %s; retrying every second, "
                       "persistent publishes refused meanwhile",
                       err.text);
            s->defs_failed = true;
            s->defs_dirty = true;
        } else {
            if (s->defs_failed)
                wr_log(WR_LOG_INFO, "definitions saved again");
            s->defs_failed = false;
            s->defs_dirty = false;
        }
    }
    offsets_flush(s);
    compact_step(s);
    wr_journal_flush(s->j);
    /* The records are in the file now: bodies queued for paging out can go
     * (unless nobody but us holds the message any more). */
    for (size_t i = 0; i < s->npageq; i++) {
        struct wr_msg *m = s->pageq[i];
        if (m->refs > 1 && !wr_journal_failed(s->j))
            wr_msg_page_out(m);
        wr_msg_unref(m);
    }
    s->npageq = 0;
}

static void p_page_out(void *ctx, struct wr_msg *m)
{
    struct wr_store *s = ctx;
    if (s->npageq == s->cappageq) {
        size_t cap = s->cappageq ? s->cappageq * 2 : 256;
        struct wr_msg **a = realloc(s->pageq, cap * sizeof(*a));
        if (!a)
            return; /* it just stays in memory */
        s->pageq = a;
        s->cappageq = cap;
    }
    s->pageq[s->npageq++] = wr_msg_ref(m);
    schedule(s);
}

static int seg_fd(struct wr_store *s, uint32_t seg)
{
    char path[4200];
    unsigned k;
    for (k = 0; k < 8; k++)
        if (s->rfd[k].fd >= 0 && s->rfd[k].seg == seg)
            return s->rfd[k].fd;
    k = s->rfd_next++ % 8;
    if (s->rfd[k].fd >= 0)
        close(s->rfd[k].fd);
    snprintf(path, sizeof(path), "%s/journal/%08u.wjl", s->data_dir, seg);
    s->rfd[k].fd = open(path, O_RDONLY | O_CLOEXEC);
    /* Streams read segments front to back: a larger read-ahead when the
     * pages are not cached any more. */
    if (s->rfd[k].fd >= 0)
        (void)posix_fadvise(s->rfd[k].fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    s->rfd[k].seg = seg;
    return s->rfd[k].fd;
}

/* The broker's wr_msgs.load: read a paged-out body back from its segment. */
static int load_body(void *ctx, struct wr_msg *m)
{
    struct wr_store *s = ctx;
    struct wr_msg_ext *e = wr_msg_ext(m);
    uint8_t *b;
    int fd;
    ssize_t n;

    if (!s || !e || !e->store_id)
        return WR_EIO;
    b = malloc(m->body_len ? m->body_len : 1);
    if (!b)
        return WR_ENOMEM;
    fd = seg_fd(s, e->store_seg);
    n = fd < 0 ? -1 : pread(fd, b, m->body_len, (off_t)e->body_off);
    if (n != (ssize_t)m->body_len) {
        wr_log(WR_LOG_ERROR,
               "journal: cannot read back the body of message %llu (segment "
               "%08u offset %u): %s",
               (unsigned long long)e->store_id, e->store_seg, e->body_off,
               n < 0 ? strerror(errno) : "short read");
        free(b);
        return WR_EIO;
    }
    e->body = b;
    m->rkey->pool->bytes += m->body_len;
    return 0;
}

/* Segments deleted: forget their read descriptors. */
static void rfd_forget_before(struct wr_store *s, uint32_t first_live)
{
    for (unsigned k = 0; k < 8; k++) {
        if (s->rfd[k].fd >= 0 && s->rfd[k].seg < first_live) {
            close(s->rfd[k].fd);
            s->rfd[k].fd = -1;
        }
    }
}

/* ---- segment liveness ---- */

/* ---- journaled messages and segment liveness ----
 *
 * Every journaled message has an entry: its id, where its publish record
 * is, and the durable queues it is still in. Entries hang on their
 * segment's list, and each segment counts its live (message, queue) pairs
 * and all the pairs ever written to it. Segments are deleted oldest first,
 * only when they and every older one hold nothing live, so a removal
 * record can never outlive the publish it cancels. A mostly dead oldest
 * segment (a quarter or less of its pairs live) is compacted: its live
 * messages' publish records are rewritten at the head of the journal, a
 * few hundred per loop turn, and then the segment goes. */

struct segstat {
    struct wr_list node; /* s->segs, oldest first */
    uint32_t seg;
    uint32_t live, total;   /* (message, queue) pairs and dedup keys */
    uint32_t klive, ktotal; /* of which dedup keys */
    uint32_t spins;         /* streams holding it */
    struct wr_list msgs;    /* struct sent.seg_node */
};

struct sent {
    struct wr_hnode node; /* s->sent, key = the 8 id bytes */
    uint8_t key[8];
    struct wr_list seg_node;
    struct segstat *ss;
    struct wr_msg *m;
    uint64_t id;
    uint32_t rec_off, rec_len; /* the publish payload in its segment */
    uint16_t nq, nlive;
    bool held;       /* a holding exchange's record: never taken back */
    uint16_t *deliv; /* recovery only */
    uint64_t qids[]; /* 0: removed */
};

#define KEY_HEAD 25              /* a 'K' record's flags, id, owner, expiry */
#define COMPACT_BUDGET 256       /* messages moved per loop turn... */
#define COMPACT_BYTES (1u << 20) /* ...or this many bytes: a turn stays short */

static struct segstat *segstat_get(struct wr_store *s, uint32_t seg)
{
    struct wr_list *it;
    struct segstat *ss;
    for (it = s->segs.prev; it != &s->segs; it = it->prev) {
        ss = wr_container_of(it, struct segstat, node);
        if (ss->seg == seg)
            return ss;
        if (ss->seg < seg)
            break;
    }
    ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    ss->seg = seg;
    wr_list_init(&ss->msgs);
    /* insert after `it` (the last older one) */
    ss->node.prev = it;
    ss->node.next = it->next;
    it->next->prev = &ss->node;
    it->next = &ss->node;
    return ss;
}

static struct sent *sent_get(struct wr_store *s, uint64_t id)
{
    uint8_t k[8];
    struct wr_hnode *n;
    wr_store64(k, id);
    n = wr_hmap_get(&s->sent, (struct wr_str){(const char *)k, 8});
    return n ? wr_container_of(n, struct sent, node) : NULL;
}

static struct sent *sent_new(struct wr_store *s, uint64_t id, uint16_t nq, bool with_deliv)
{
    size_t sz = sizeof(struct sent) + (size_t)nq * sizeof(uint64_t) +
                (with_deliv ? (size_t)nq * sizeof(uint16_t) : 0);
    struct sent *e = calloc(1, sz);
    if (!e)
        return NULL;
    e->id = id;
    e->nq = nq;
    wr_store64(e->key, id);
    e->node.key = (struct wr_str){(const char *)e->key, 8};
    if (with_deliv)
        e->deliv = (uint16_t *)(void *)(e->qids + nq);
    wr_list_init(&e->seg_node);
    if (wr_hmap_put(&s->sent, &e->node) < 0) {
        free(e);
        return NULL;
    }
    return e;
}

static void sent_free(struct wr_store *s, struct sent *e)
{
    wr_hmap_del(&s->sent, &e->node);
    wr_list_del(&e->seg_node);
    free(e);
}

static void sent_place(struct sent *e, struct segstat *ss)
{
    wr_list_del(&e->seg_node);
    e->ss = ss;
    wr_list_add_tail(&ss->msgs, &e->seg_node);
}

/* Delete the oldest segments while nothing in them is live. */
static void segs_prune(struct wr_store *s)
{
    uint32_t cur;
    if (!s->j || s->no_prune)
        return; /* recovery prunes once at its end; compaction after its step */
    cur = wr_journal_segment(s->j);
    while (!wr_list_empty(&s->segs)) {
        struct segstat *ss = wr_container_of(s->segs.next, struct segstat, node);
        if (ss->live || ss->spins || ss->seg >= cur)
            break;
        wr_journal_drop_segment(s->j, ss->seg);
        rfd_forget_before(s, ss->seg + 1);
        wr_list_del(&ss->node);
        free(ss);
    }
}

static uint64_t key_append(struct wr_store *s, uint8_t flags, uint64_t id, uint64_t owner,
                           uint64_t expires_mono, const char *key, uint16_t len, uint32_t *seg);
static void key_live(struct wr_store *s, uint32_t seg, bool counted_total);

struct key_move {
    struct wr_dedup_ent *e;
    uint32_t seg;
};

/* Append copies of the live dedup keys whose records are in `old` (up to
 * `budget` bytes), walking each cache from its least recently used end,
 * where old keys gather; expired ones are dropped instead. Returns how
 * many were copied (*out, to point at their copies once synced). */
static uint32_t keys_copy(struct wr_store *s, struct segstat *old, struct key_move **out,
                          uint64_t budget)
{
    uint32_t nk = 0, cap = 0;
    uint64_t now = wr_now_ms(), bytes = 0;
    struct wr_list *it;

    s->no_prune = true; /* dropping an expired key must not free `old` */
    for (it = s->dcaches.next; it != &s->dcaches && bytes < budget; it = it->next) {
        struct wr_dedup *d = wr_container_of(it, struct wr_dedup, pnode);
        struct wr_dedup_ent *e, *prev;
        for (e = d->tail; e && bytes < budget; e = prev) {
            prev = e->prev;
            if (e->seg != old->seg)
                continue;
            if (e->expires && e->expires <= now) {
                wr_dedup_remove(d, e);
                continue;
            }
            if (nk == cap) {
                uint32_t ncap = cap ? cap * 2 : 256;
                struct key_move *a = realloc(*out, ncap * sizeof(*a));
                if (!a)
                    goto done;
                *out = a;
                cap = ncap;
            }
            if (!key_append(s, 1, 0, d->owner, e->expires, e->key, e->len, &(*out)[nk].seg))
                goto done;
            (*out)[nk++].e = e;
            bytes += 33 + KEY_HEAD + e->len;
        }
    }
done:
    s->no_prune = false;
    return nk;
}

/* Move up to COMPACT_BUDGET live messages out of the oldest segment when
 * it is mostly dead. */
static void compact_step(struct wr_store *s)
{
    struct moved {
        struct sent *e;
        uint64_t pos;
        uint32_t len, seg;
    } mv[COMPACT_BUDGET];
    struct segstat *old;
    uint32_t cur = wr_journal_segment(s->j), n = 0, nk = 0;
    struct key_move *kmv = NULL;
    uint64_t bytes = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    struct wr_list *it;

    if (wr_list_empty(&s->segs) || wr_journal_failed(s->j) || s->low_disk)
        return;
    old = wr_container_of(s->segs.next, struct segstat, node);
    /* A key's record is small: it weighs an eighth of a message's, so live
     * keys alone do not keep a segment of acked messages from compaction. */
    if (old->seg >= cur || !old->live || old->spins ||
        ((uint64_t)(old->live - old->klive) * 8 + old->klive) * 4 >
            (uint64_t)(old->total - old->ktotal) * 8 + old->ktotal)
        return;
    /* 1. Append copies of the live publish records (nothing changes yet). */
    for (it = old->msgs.next; it != &old->msgs && n < COMPACT_BUDGET && bytes < COMPACT_BYTES;
         it = it->next) {
        struct sent *e = wr_container_of(it, struct sent, seg_node);
        uint8_t head[18];
        uint64_t qids[64], *q = qids, pos;
        uint16_t k = 0, nq_old;
        struct wr_iov iov[3];
        uint32_t seg;
        int fd = seg_fd(s, old->seg);

        if (e->rec_len > cap) {
            uint8_t *nb = realloc(buf, e->rec_len);
            if (!nb)
                break;
            buf = nb;
            cap = e->rec_len;
        }
        if (fd < 0 || e->rec_len < 18 ||
            pread(fd, buf, e->rec_len, (off_t)e->rec_off) != (ssize_t)e->rec_len) {
            wr_log(WR_LOG_ERROR,
                   "journal: compaction cannot read message %llu from segment "
                   "%08u; the segment stays",
                   (unsigned long long)e->id, old->seg);
            break;
        }
        nq_old = wr_load16(buf + 16);
        if (e->nlive > 64 && !(q = malloc(e->nlive * sizeof(*q))))
            break;
        for (uint16_t i = 0; i < e->nq; i++)
            if (e->qids[i])
                wr_store64((uint8_t *)&q[k++], e->qids[i]);
        memcpy(head, buf, 16);
        wr_store16(head + 16, k);
        iov[0] = (struct wr_iov){head, sizeof(head)};
        iov[1] = (struct wr_iov){q, (size_t)k * 8};
        iov[2] =
            (struct wr_iov){buf + 18 + (size_t)nq_old * 8, e->rec_len - 18 - (size_t)nq_old * 8};
        pos = wr_journal_append(s->j, 'P', iov, 3, &seg);
        if (q != qids)
            free(q);
        if (!pos)
            break;
        mv[n].e = e;
        mv[n].pos = pos;
        mv[n].len = (uint32_t)(iov[0].len + iov[1].len + iov[2].len);
        mv[n].seg = seg;
        n++;
        bytes += e->rec_len;
    }
    free(buf);
    if (n < COMPACT_BUDGET && bytes < COMPACT_BYTES && old->klive)
        nk = keys_copy(s, old, &kmv, COMPACT_BYTES - bytes);
    if (!n && !nk) {
        free(kmv);
        return;
    }
    /* 2. The copies must be on disk before anything points at them and the
     *    old segment can go (one fdatasync per batch, on the loop). If that
     *    fails, nothing moves: the originals stay authoritative. */
    if (wr_journal_sync_now(s->j) < 0) {
        free(kmv);
        return;
    }
    for (uint32_t i = 0; i < nk; i++) {
        kmv[i].e->seg = kmv[i].seg;
        old->live--;
        old->klive--;
        key_live(s, kmv[i].seg, false);
    }
    free(kmv);
    /* 3. Move the entries and their messages' body locations. */
    for (uint32_t i = 0; i < n; i++) {
        struct sent *e = mv[i].e;
        struct segstat *ns = segstat_get(s, mv[i].seg);
        if (!ns)
            break;
        old->live -= e->nlive;
        ns->live += e->nlive;
        ns->total += e->nlive;
        e->rec_off = (uint32_t)mv[i].pos - mv[i].len;
        e->rec_len = mv[i].len;
        sent_place(e, ns);
        if (e->m && wr_msg_ext(e->m)) {
            wr_msg_ext(e->m)->store_seg = mv[i].seg;
            wr_msg_ext(e->m)->body_off = (uint32_t)mv[i].pos - e->m->body_len;
        }
    }
    wr_log(WR_LOG_DEBUG,
           "journal: compaction moved %u messages and %u dedup keys out of segment %08u (%u "
           "pairs and keys still live there)",
           n, nk, old->seg, old->live);
    if (old->live)
        schedule(s); /* more next turn */
    segs_prune(s);   /* may free `old` */
}

/* ---- what the broker reports ---- */

static void p_defs_changed(void *ctx)
{
    struct wr_store *s = ctx;
    s->defs_dirty = true;
    schedule(s);
}

/* One durable object's change, as a line of the definitions log. A
 * change that could not be queued for want of memory breaks the log,
 * which then falls back to a snapshot. */
static void log_change(struct wr_store *s, const char *kind, bool gone, int rc, json_t *entry)
{
    if (rc < 0 || entry)
        wr_defslog_add(s->log, kind, gone, entry);
    schedule(s);
}

static void p_defs_exchange(void *ctx, struct wr_exchange *x, bool gone)
{
    json_t *e;
    int rc = wr_defs_exchange_entry(x, &e);
    log_change(ctx, "exchange", gone, rc, e);
}

static void p_defs_queue(void *ctx, struct wr_queue *q, bool gone)
{
    json_t *e;
    int rc = wr_defs_queue_entry(q, &e);
    log_change(ctx, "queue", gone, rc, e);
}

static void p_defs_binding(void *ctx, struct wr_binding *bd, bool gone)
{
    json_t *e;
    int rc = wr_defs_binding_entry(bd, &e);
    log_change(ctx, "binding", gone, rc, e);
}

/* ---- deduplication keys ---- */

/* Monotonic ms (the broker's clock) to wall ms and back. */
static uint64_t mono_to_wall(uint64_t mono)
{
    return wall_ms() + (mono - wr_now_ms()); /* (modulo 2^64: earlier works too) */
}

/* Append one 'K' record; returns its position (0: not written). */
static uint64_t key_append(struct wr_store *s, uint8_t flags, uint64_t id, uint64_t owner,
                           uint64_t expires_mono, const char *key, uint16_t len, uint32_t *seg)
{
    uint8_t head[25];
    struct wr_iov iov[2];
    head[0] = flags;
    wr_store64(head + 1, id);
    wr_store64(head + 9, owner);
    wr_store64(head + 17, expires_mono ? mono_to_wall(expires_mono) : 0);
    iov[0] = (struct wr_iov){head, sizeof(head)};
    iov[1] = (struct wr_iov){key, len};
    return wr_journal_append(s->j, 'K', iov, 2, seg);
}

/* A live key's record is in `seg`. */
static void key_live(struct wr_store *s, uint32_t seg, bool counted_total)
{
    struct segstat *ss = segstat_get(s, seg);
    if (!ss)
        return;
    ss->live++;
    ss->klive++;
    if (!counted_total) {
        ss->total++;
        ss->ktotal++;
    }
}

static void p_dedup_stage(void *ctx, struct wr_dedup_stage *ks, uint32_t n)
{
    struct wr_store *s = ctx;
    s->stage = ks;
    s->nstage = n;
}

static void p_dedup_forget(void *ctx, uint32_t seg)
{
    struct wr_store *s = ctx;
    struct wr_list *it;
    for (it = s->segs.prev; it != &s->segs; it = it->prev) {
        struct segstat *ss = wr_container_of(it, struct segstat, node);
        if (ss->seg == seg) {
            if (ss->live && ss->klive) {
                ss->live--;
                ss->klive--;
            }
            if (!ss->live)
                segs_prune(s);
            return;
        }
        if (ss->seg < seg)
            return;
    }
}

static void p_dedup_attach(void *ctx, struct wr_dedup *d, bool attach)
{
    struct wr_store *s = ctx;
    wr_list_del(&d->pnode);
    if (attach)
        wr_list_add_tail(&s->dcaches, &d->pnode);
}

/* The staged keys of the publish about to get id s->next_id: written before
 * its record. Returns false when one could not be. */
static bool keys_write(struct wr_store *s)
{
    for (uint32_t i = 0; i < s->nstage; i++) {
        struct wr_dedup_stage *k = &s->stage[i];
        k->seg = 0;
        if (k->owner &&
            !key_append(s, 0, s->next_id, k->owner, k->expires, k->key, k->len, &k->seg))
            return false;
    }
    return true;
}

/* The publish is written: its keys are live. */
static void keys_done(struct wr_store *s, bool ok)
{
    for (uint32_t i = 0; i < s->nstage; i++) {
        struct wr_dedup_stage *k = &s->stage[i];
        if (k->seg && ok)
            key_live(s, k->seg, false);
        else
            k->seg = 0;
    }
    s->stage = NULL;
    s->nstage = 0;
}

/* The message part of a 'P' or 'S' record, from the exchange on: 8 parts
 * into iov, the lengths' bytes in `lens` (10 bytes, kept by the caller
 * until the append). Returns their total size. */
static uint32_t msg_parts(const struct wr_msg *m, const uint8_t *body, uint8_t lens[10],
                          struct wr_iov *iov)
{
    uint8_t xl = m->rkey->xlen, rl = m->rkey->rklen;
    uint32_t len = 0;
    lens[0] = xl;
    lens[1] = rl;
    wr_store32(lens + 2, m->props_len);
    wr_store32(lens + 6, (uint32_t)m->body_len);
    iov[0] = (struct wr_iov){lens, 1};
    iov[1] = (struct wr_iov){m->rkey->data, xl};
    iov[2] = (struct wr_iov){lens + 1, 1};
    iov[3] = (struct wr_iov){m->rkey->data + xl, rl};
    iov[4] = (struct wr_iov){lens + 2, 4};
    iov[5] = (struct wr_iov){wr_msg_props(m), m->props_len};
    iov[6] = (struct wr_iov){lens + 6, 4};
    iov[7] = (struct wr_iov){body, (size_t)m->body_len};
    for (int i = 0; i < 8; i++)
        len += (uint32_t)iov[i].len;
    return len;
}

/* One 'P' record naming the queue ids (or a holding exchange's). */
static uint64_t journal_publish(struct wr_store *s, struct wr_msg *m, struct wr_queue *const *qs,
                                const uint64_t *held, uint32_t n)
{
    uint8_t head[18], lens[10];
    uint64_t ids[64], *qid = ids;
    struct wr_iov iov[10];
    struct segstat *ss;
    struct sent *e;
    uint32_t seg, len;
    uint64_t pos;

    if (wr_journal_failed(s->j) || s->defs_failed || n > UINT16_MAX || !wr_msg_ext(m))
        return 0;
    if (n > 64 && !(qid = malloc(n * sizeof(*qid))))
        return 0;
    wr_store64(head, s->next_id);
    wr_store64(head + 8, wall_ms() - (wr_now_ms() - m->published_ms));
    wr_store16(head + 16, (uint16_t)n);
    for (uint32_t i = 0; i < n; i++)
        wr_store64((uint8_t *)&qid[i], qs ? qs[i]->store_id : held[i]);
    iov[0] = (struct wr_iov){head, sizeof(head)};
    iov[1] = (struct wr_iov){qid, n * sizeof(uint64_t)};
    len = (uint32_t)(sizeof(head) + n * sizeof(uint64_t)) +
          msg_parts(m, wr_msg_body(m), lens, iov + 2);
    e = sent_new(s, s->next_id, (uint16_t)n, false);
    pos = e && (!qs || keys_write(s)) ? wr_journal_append(s->j, 'P', iov, 10, &seg) : 0;
    ss = pos ? segstat_get(s, seg) : NULL;
    if (qs)
        keys_done(s, pos && ss);
    if (!pos || !ss) {
        if (qid != ids)
            free(qid);
        if (e)
            sent_free(s, e);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        e->qids[i] = qs ? qs[i]->store_id : held[i];
    if (qid != ids)
        free(qid);
    e->nlive = (uint16_t)n;
    e->held = !qs;
    e->m = m;
    e->rec_off = (uint32_t)pos - len;
    e->rec_len = len;
    sent_place(e, ss);
    ss->live += n;
    ss->total += n;
    wr_msg_ext(m)->body_off = (uint32_t)pos - (uint32_t)m->body_len; /* the body ends it */
    wr_msg_ext(m)->store_id = s->next_id++;
    wr_msg_ext(m)->store_seg = seg;
    schedule(s);
    return pos;
}

static uint64_t p_publish(void *ctx, struct wr_msg *m, struct wr_queue *const *qs, uint32_t n)
{
    return journal_publish(ctx, m, qs, NULL, n);
}

static uint64_t p_hold(void *ctx, struct wr_msg *m, uint64_t holder)
{
    return journal_publish(ctx, m, NULL, &holder, 1);
}

/* A message that left its only queue in the turn it was published, its
 * 'P' record still the last in the journal's buffer (an autoack consumer
 * that keeps up): the record is taken back and never written, and no 'A'
 * record follows. The message no longer names a journal record, which
 * tells the publish that its confirm waits for no sync (RabbitMQ's store
 * likewise skips writing a message consumed before its write came due).
 * Deduplication keys written just before it stay: recovery restores a
 * queue's key only with its message, as after a written removal. A
 * holding exchange's record is never taken back (its confirm counts on
 * the record's position). */
static bool take_back(struct wr_store *s, struct sent *e)
{
    struct segstat *ss = e->ss;
    struct wr_msg_ext *x;
    if (e->nq != 1 || e->held || !e->m || e->deliv ||
        !wr_journal_take_back(s->j, (uint64_t)ss->seg << 32 | (e->rec_off + e->rec_len),
                              e->rec_len))
        return false;
    x = wr_msg_ext(e->m);
    x->store_id = 0;
    x->store_seg = 0;
    x->body_off = 0;
    ss->live--;
    ss->total--;
    sent_free(s, e);
    return true;
}

/* An 'A' record: message `id` left queue (or holder) `qid` for good. */
static void remove_id(struct wr_store *s, uint64_t id, uint64_t qid)
{
    uint8_t rec[16];
    struct wr_iov iov = {rec, sizeof(rec)};
    struct sent *e = sent_get(s, id);

    if (e && e->qids[0] == qid && take_back(s, e))
        return;
    wr_store64(rec, id);
    wr_store64(rec + 8, qid);
    wr_journal_append(s->j, 'A', &iov, 1, NULL);
    schedule(s);
    if (!e)
        return;
    for (uint16_t i = 0; i < e->nq; i++) {
        if (e->qids[i] == qid) {
            e->qids[i] = 0;
            e->nlive--;
            e->ss->live--;
            break;
        }
    }
    if (!e->nlive) {
        struct segstat *ss = e->ss;
        sent_free(s, e);
        if (ss->live == 0)
            segs_prune(s);
    }
}

static void p_remove(void *ctx, struct wr_queue *q, struct wr_msg *m)
{
    remove_id(ctx, wr_msg_store_id(m), q->store_id);
}

static void p_release(void *ctx, uint64_t id, uint64_t holder)
{
    remove_id(ctx, id, holder);
}

static void p_requeue(void *ctx, struct wr_queue *q, struct wr_msg *m, uint16_t deliveries)
{
    struct wr_store *s = ctx;
    uint8_t rec[18];
    struct wr_iov iov = {rec, sizeof(rec)};
    wr_store64(rec, wr_msg_store_id(m));
    wr_store64(rec + 8, q->store_id);
    wr_store16(rec + 16, deliveries);
    wr_journal_append(s->j, 'R', &iov, 1, NULL);
    schedule(s);
}

/* ---- streams ---- */

static uint64_t p_stream_append(void *ctx, struct wr_queue *q, struct wr_msg *m, uint64_t off,
                                uint64_t *rec)
{
    struct wr_store *s = ctx;
    uint8_t head[24], lens[10];
    struct wr_iov iov[9];
    uint32_t len;
    uint64_t pos;
    const uint8_t *body;

    if (wr_journal_failed(s->j) || s->defs_failed || !(body = wr_msg_body(m)))
        return 0;
    wr_store64(head, q->store_id);
    wr_store64(head + 8, off);
    wr_store64(head + 16, wall_ms() - (wr_now_ms() - m->published_ms));
    iov[0] = (struct wr_iov){head, sizeof(head)};
    len = (uint32_t)sizeof(head) + msg_parts(m, body, lens, iov + 1);
    if (!(pos = wr_journal_append(s->j, 'S', iov, 9, NULL)))
        return 0;
    *rec = pos - WR_JOURNAL_HEADER - len;
    schedule(s);
    return pos;
}

static void p_stream_truncate(void *ctx, struct wr_queue *q, uint64_t first)
{
    struct wr_store *s = ctx;
    uint8_t rec[16];
    struct wr_iov iov = {rec, sizeof(rec)};
    wr_store64(rec, q->store_id);
    wr_store64(rec + 8, first);
    wr_journal_append(s->j, 'T', &iov, 1, NULL);
    schedule(s);
}

static void p_stream_pin(void *ctx, uint32_t seg, bool pin)
{
    struct wr_store *s = ctx;
    struct segstat *ss = segstat_get(s, seg);
    if (!ss)
        return; /* (out of memory: the segment is not held) */
    if (pin) {
        ss->spins++;
    } else if (ss->spins && !--ss->spins && !ss->live) {
        segs_prune(s);
    }
}

/* An 'S' record's payload; false when it is not one. */
static bool srec_parse(const uint8_t *p, uint32_t len, uint64_t *qid, struct wr_srec *out)
{
    struct wr_rd rd = wr_rd_init(p, len);
    uint64_t wall;
    const uint8_t *xp, *rp;
    if (wr_rd_u64(&rd, qid) || wr_rd_u64(&rd, &out->off) || wr_rd_u64(&rd, &wall) ||
        wr_rd_u8(&rd, &out->exchange_len) || wr_rd_bytes(&rd, out->exchange_len, &xp) ||
        wr_rd_u8(&rd, &out->routing_key_len) || wr_rd_bytes(&rd, out->routing_key_len, &rp) ||
        wr_rd_u32(&rd, &out->props_len) || wr_rd_bytes(&rd, out->props_len, &out->props) ||
        wr_rd_u32(&rd, &out->body_len) || wr_rd_bytes(&rd, out->body_len, &out->body))
        return false;
    out->exchange = (const char *)xp;
    out->routing_key = (const char *)rp;
    out->chunk = NULL;
    out->wall_ms = (int64_t)(wall > INT64_MAX ? INT64_MAX : wall);
    return true;
}

/* Reading a stream back: large reads of a segment into a buffer, records
 * taken from it in order. */
#define SREAD_SIZE (256u << 10)

struct wr_sreader {
    struct wr_chunk *ch; /* shared with the messages made from it */
    size_t len;
    uint32_t seg;
    uint64_t start; /* the chunk holds [start, start + len) of segment seg */
};

static struct wr_sreader *p_sreader_new(void *ctx)
{
    struct wr_sreader *rd = calloc(1, sizeof(*rd));
    (void)ctx;
    if (rd && !(rd->ch = wr_chunk_new(SREAD_SIZE))) {
        free(rd);
        return NULL;
    }
    return rd;
}

static void p_sreader_free(struct wr_sreader *rd)
{
    if (rd)
        wr_chunk_unref(rd->ch);
    free(rd);
}

static int p_sreader_next(void *ctx, struct wr_sreader *rd, uint64_t qid, uint64_t *pos,
                          struct wr_srec *out)
{
    struct wr_store *s = ctx;
    for (;;) {
        uint32_t seg = (uint32_t)(*pos >> 32);
        uint64_t off = (uint32_t)*pos, rqid;
        size_t total;
        const uint8_t *p;
        int rc;

        if (rd->seg == seg && off >= rd->start && off < rd->start + rd->len) {
            p = rd->ch->data + (off - rd->start);
            rc = wr_journal_peek(p, rd->len - (off - rd->start), &total);
        } else {
            rc = 0;
            total = WR_JOURNAL_HEADER;
        }
        if (rc == 0) {
            /* Read from here: a buffer's worth, or the whole record. */
            int fd = seg_fd(s, seg);
            ssize_t n;
            /* A chunk messages still point into stays theirs: a new one. */
            if (total > rd->ch->cap || rd->ch->refs > 1) {
                struct wr_chunk *c = wr_chunk_new(total > SREAD_SIZE ? total : SREAD_SIZE);
                if (!c)
                    return WR_ENOMEM;
                wr_chunk_unref(rd->ch);
                rd->ch = c;
            }
            n = fd < 0 ? -1 : pread(fd, rd->ch->data, rd->ch->cap, (off_t)off);
            if (n < 0) {
                wr_log(WR_LOG_ERROR, "journal: cannot read segment %08u back for a stream: %s", seg,
                       strerror(errno));
                rd->len = 0;
                return WR_EIO;
            }
            rd->seg = seg;
            rd->start = off;
            rd->len = (size_t)n;
            p = rd->ch->data;
            rc = wr_journal_peek(p, rd->len, &total);
            if (rc == 0)
                return 0; /* the segment ends (or is not written further yet) */
        }
        if (rc < 0) {
            /* Garbage that recovery skipped: on to the next valid record,
             * as recovery found it (in this buffer, or the next read). */
            size_t at = (size_t)(off - rd->start),
                   next = wr_journal_next_valid(rd->ch->data, rd->len, at + 1);
            if (next < rd->len) {
                *pos += next - at;
                continue;
            }
            if (rd->len < rd->ch->cap)
                return 0; /* the segment ends in it */
            *pos +=
                rd->len - at - (WR_JOURNAL_HEADER - 1); /* a record may start in the last bytes */
            rd->len = 0;
            continue;
        }
        *pos += total;
        if (p[12] != 'S' ||
            !srec_parse(p + WR_JOURNAL_HEADER, (uint32_t)(total - WR_JOURNAL_HEADER), &rqid, out) ||
            rqid != qid)
            continue;
        /* Its checksum (recovery skipped a record that fails it, and the
         * disk may have changed since): not delivered when wrong. */
        if (wr_crc32c(0, p + 12, total - 12) != wr_load32(p + 8)) {
            wr_log(WR_LOG_ERROR,
                   "journal: segment %08u offset %llu: a stream record fails its checksum: "
                   "skipped",
                   seg, (unsigned long long)off);
            continue;
        }
        out->pos = *pos - total;
        out->chunk = rd->ch;
        return 1;
    }
}

static void synced(void *arg, uint64_t pos)
{
    struct wr_store *s = arg;
    if (s->synced_cb)
        s->synced_cb(s->synced_arg, pos);
}

/* ---- recovery ---- */

struct replay {
    struct wr_store *s;
    uint64_t max_id;
    uint64_t now_wall, now_mono;
    uint64_t acks, requeues, unknown, copies;
    /* durable queues by store id (streams take their records as read) */
    struct wr_queue **qs;
    size_t nqs;
    uint64_t srecs, sgone;
    /* 'K' records as read (seg u32, len u32, payload), applied once every
     * 'P' is known */
    uint8_t *keys;
    size_t nkeys, capkeys;
    uint64_t keys_read, keys_restored;
    /* progress: bytes of the segments before the current one (as far as
     * their last record), the current one's, and the total on disk */
    const struct wr_store_progress *pg;
    uint64_t pg_next_ms, pg_before, pg_total;
    uint32_t pg_seg, pg_end, pg_count;
};

/* Time for a progress report? Asked every so many items, so the clock is
 * read rarely; true at most about once a second. */
static bool progress_due(struct replay *r)
{
    uint64_t now;
    if (!r->pg || ++r->pg_count % 1024)
        return false;
    wr_clock_update();
    now = wr_now_ms();
    if (now < r->pg_next_ms)
        return false;
    r->pg_next_ms = now + 1000;
    return true;
}

/* A phase starts: said at once; the next periodic report stays due a
 * second after the previous one (or the start of the recovery). */
static void progress_start(struct replay *r, enum wr_store_phase phase, uint64_t total)
{
    if (!r->pg || !total)
        return;
    r->pg_count = 0;
    r->pg->fn(r->pg->arg, phase, 0, total);
}

/* Bytes of segment files in the journal directory, the total that reading
 * it is measured against. */
static uint64_t journal_size(const char *jdir)
{
    DIR *d = opendir(jdir);
    struct dirent *de;
    uint64_t total = 0;
    if (!d)
        return 0;
    while ((de = readdir(d))) {
        struct stat st;
        size_t n = strlen(de->d_name);
        if (n == 12 && strcmp(de->d_name + 8, ".wjl") == 0 &&
            fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static void replay_progress(struct replay *r, uint32_t seg, uint32_t end)
{
    if (!r->pg)
        return;
    if (seg != r->pg_seg) {
        r->pg_before += r->pg_end;
        r->pg_seg = seg;
    }
    r->pg_end = end;
    if (progress_due(r))
        r->pg->fn(r->pg->arg, WR_RECOVER_JOURNAL, r->pg_before + end, r->pg_total);
}

static void on_publish_rec(struct replay *r, uint32_t seg, uint32_t off, const uint8_t *p,
                           uint32_t len)
{
    struct wr_store *s = r->s;
    struct wr_rd rd = wr_rd_init(p, len);
    uint64_t id, wall;
    uint16_t nq;
    uint8_t xl, rl;
    const uint8_t *qb, *xp, *rp, *pp, *bp;
    uint32_t plen, blen;
    struct sent *e, *old;
    struct segstat *ss;
    struct wr_msg *m;
    struct wr_basic_props props;

    if (wr_rd_u64(&rd, &id) || wr_rd_u64(&rd, &wall) || wr_rd_u16(&rd, &nq) ||
        wr_rd_bytes(&rd, (size_t)nq * 8, &qb) || wr_rd_u8(&rd, &xl) || wr_rd_bytes(&rd, xl, &xp) ||
        wr_rd_u8(&rd, &rl) || wr_rd_bytes(&rd, rl, &rp) || wr_rd_u32(&rd, &plen) ||
        wr_rd_bytes(&rd, plen, &pp) || wr_rd_u32(&rd, &blen) || wr_rd_bytes(&rd, blen, &bp) ||
        !id) {
        /* (ids start at 1: a message with store id 0 is not journaled for
         * its queues, which would never report its removal) */
        r->unknown++;
        return;
    }
    ss = segstat_get(s, seg);
    if (!ss)
        return;
    ss->total += nq;
    /* A compaction copy of a message whose first record we also read: the
     * copy (later in the journal) says which queues it was still in. */
    old = sent_get(s, id);
    if (old) {
        m = old->m;
        old->m = NULL;
        sent_free(s, old);
        r->copies++;
    } else {
        m = wr_msg_new(&s->b->msgs, (struct wr_str){(const char *)xp, xl},
                       (struct wr_str){(const char *)rp, rl}, pp, plen, blen,
                       WR_MSG_PERSISTENT | WR_MSG_EXT);
        if (!m)
            return;
        /* Recovered bodies stay on disk until a consumer needs them: a
         * journal larger than memory can be recovered. */
        free(wr_msg_ext(m)->body);
        wr_msg_ext(m)->body = NULL;
        s->b->msgs.bytes -= blen;
        m->published_ms =
            wall > r->now_wall
                ? r->now_mono
                : (r->now_mono > r->now_wall - wall ? r->now_mono - (r->now_wall - wall) : 0);
        rd = wr_rd_init(pp, plen);
        /* A quorum queue journals transient messages too: they stay
         * transient (dead-lettered to a classic queue, say). */
        if (!plen)
            m->flags &= (uint8_t)~WR_MSG_PERSISTENT;
        if (plen && wr_basic_props_decode(&rd, &props) == 0) {
            if (!(props.flags & WR_BASIC_DELIVERY_MODE_FLAG) || props.delivery_mode != 2)
                m->flags &= (uint8_t)~WR_MSG_PERSISTENT;
            if (props.flags & WR_BASIC_PRIORITY_FLAG)
                m->priority = props.priority;
            if (props.flags & WR_BASIC_EXPIRATION_FLAG)
                (void)wr_msg_parse_expiration(props.expiration, &wr_msg_ext(m)->ttl_ms);
        }
    }
    wr_msg_ext(m)->body_off = off + (uint32_t)(bp - p);
    wr_msg_ext(m)->store_id = id;
    wr_msg_ext(m)->store_seg = seg;
    e = sent_new(s, id, nq, true);
    if (!e) {
        wr_msg_unref(m);
        return;
    }
    e->m = m;
    e->rec_off = off;
    e->rec_len = len;
    for (uint16_t i = 0; i < nq; i++) {
        e->qids[i] = wr_load64(qb + 8 * i);
        e->deliv[i] = 0;
    }
    e->nlive = nq;
    sent_place(e, ss);
    if (id > r->max_id)
        r->max_id = id;
}

static void on_key_rec(struct replay *r, uint32_t seg, const uint8_t *p, uint32_t len)
{
    struct segstat *ss = segstat_get(r->s, seg);
    size_t need = 8 + (size_t)len;
    if (len < KEY_HEAD || len - KEY_HEAD > WR_DEDUP_MAX_KEY || !ss) {
        r->unknown++;
        return;
    }
    ss->total++;
    ss->ktotal++;
    r->keys_read++;
    if (r->nkeys + need > r->capkeys) {
        size_t cap = r->capkeys ? r->capkeys * 2 : 4096;
        uint8_t *a;
        while (cap < r->nkeys + need)
            cap *= 2;
        if (!(a = realloc(r->keys, cap)))
            return; /* the key is lost, not the start */
        r->keys = a;
        r->capkeys = cap;
    }
    wr_store32(r->keys + r->nkeys, seg);
    wr_store32(r->keys + r->nkeys + 4, len);
    memcpy(r->keys + r->nkeys + 8, p, len);
    r->nkeys += need;
}

static struct wr_queue *qfind(struct wr_queue **qs, size_t n, uint64_t id);

/* A stream's record ('S' or 'T'), to its stream. */
static void on_stream_rec(struct replay *r, uint32_t seg, uint32_t off, uint8_t type,
                          const uint8_t *p, uint32_t len)
{
    struct wr_queue *q;
    struct wr_srec rec;
    uint64_t qid;
    if (type == 'T') {
        if (len < 16) {
            r->unknown++;
            return;
        }
        if ((q = qfind(r->qs, r->nqs, wr_load64(p))) && q->stream)
            wr_stream_recover_truncate(q, wr_load64(p + 8));
        return;
    }
    if (!srec_parse(p, len, &qid, &rec)) {
        r->unknown++;
        return;
    }
    if (!(q = qfind(r->qs, r->nqs, qid)) || !q->stream) {
        r->sgone++; /* the stream was deleted */
        return;
    }
    rec.pos = (uint64_t)seg << 32 | (off - WR_JOURNAL_HEADER);
    if (wr_stream_recover(q, &rec) == 0)
        r->srecs++;
}

static void replay_cb(void *arg, uint32_t seg, uint32_t off, uint8_t type, const uint8_t *p,
                      uint32_t len)
{
    struct replay *r = arg;
    struct sent *e;
    uint64_t id, qid;
    replay_progress(r, seg, off + len);
    if (type == 'P') {
        on_publish_rec(r, seg, off, p, len);
        return;
    }
    segstat_get(r->s, seg); /* every segment with records is known, so it can go */
    if (type == 'K') {
        on_key_rec(r, seg, p, len);
        return;
    }
    if (type == 'S' || type == 'T') {
        on_stream_rec(r, seg, off, type, p, len);
        return;
    }
    if ((type != 'A' && type != 'R') || len < 16) {
        r->unknown++;
        return;
    }
    id = wr_load64(p);
    qid = wr_load64(p + 8);
    if (!qid) {
        r->unknown++; /* no queue has id 0 (it marks a removed one) */
        return;
    }
    e = sent_get(r->s, id);
    if (!e)
        return; /* its publish was in a segment already deleted */
    for (uint16_t i = 0; i < e->nq; i++) {
        if (e->qids[i] != qid)
            continue;
        if (type == 'A') {
            e->qids[i] = 0;
            e->nlive--;
            r->acks++;
        } else if (len >= 18) {
            e->deliv[i] = wr_load16(p + 16);
            r->requeues++;
        }
        break;
    }
}

static int qcmp(const void *a, const void *b)
{
    const struct wr_queue *x = *(struct wr_queue *const *)a, *y = *(struct wr_queue *const *)b;
    return x->store_id < y->store_id ? -1 : x->store_id > y->store_id;
}

static struct wr_queue *qfind(struct wr_queue **qs, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (qs[mid]->store_id == id)
            return qs[mid];
        if (qs[mid]->store_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Durable exchanges whose type keeps messages, by holder id. */
struct holder {
    uint64_t id;
    struct wr_exchange *x;
};

static int hcmp(const void *a, const void *b)
{
    const struct holder *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static struct wr_exchange *hfind(const struct holder *h, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h[mid].id == id)
            return h[mid].x;
        if (h[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int ecmp(const void *a, const void *b)
{
    const struct sent *x = *(struct sent *const *)a, *y = *(struct sent *const *)b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The keys read, in journal order, into their owners' caches: an original
 * only when its message's 'P' was read too, a copy always; not when
 * expired. Before the messages are restored (which forgets the publishes
 * of acked messages). */
static void keys_apply(struct wr_store *s, struct replay *r, struct wr_queue **qs, size_t nqs,
                       const struct holder *hs, size_t nhs)
{
    for (size_t o = 0; o < r->nkeys;) {
        uint32_t seg = wr_load32(r->keys + o), len = wr_load32(r->keys + o + 4);
        const uint8_t *p = r->keys + o + 8;
        uint64_t id = wr_load64(p + 1), owner = wr_load64(p + 9), exp = wr_load64(p + 17);
        struct wr_dedup *d = NULL;
        struct wr_queue *q;
        struct wr_exchange *x;
        uint64_t mono = 0;

        o += 8 + (size_t)len;
        if (!(p[0] & 1) && !sent_get(s, id))
            continue; /* its message never made it: neither does the key */
        if (exp && exp <= r->now_wall)
            continue;
        if (exp && exp - r->now_wall < (UINT64_MAX >> 2))
            mono = r->now_mono + (exp - r->now_wall); /* (further: never) */
        if ((q = qfind(qs, nqs, owner)))
            d = wr_dedup_of_queue(q);
        else if ((owner >> 63) && (x = hfind(hs, nhs, owner)))
            d = wr_dedup_of_exchange(x);
        if (!d)
            continue; /* the owner is gone, or no longer deduplicates */
        if (d->persist != &s->ops)
            wr_dedup_journal(d, owner, &s->ops);
        if (wr_dedup_add(d, (struct wr_str){(const char *)p + KEY_HEAD, len - KEY_HEAD}, mono,
                         seg) == 0) {
            key_live(s, seg, true);
            r->keys_restored++;
        }
    }
    free(r->keys);
    r->keys = NULL;
    r->nkeys = r->capkeys = 0;
}

static int recover(struct wr_store *s, const struct wr_store_progress *pg, struct wr_errbuf *err,
                   uint32_t *next_seg)
{
    struct replay r;
    struct wr_replay_stats st;
    char jdir[4200];
    struct wr_queue **qs = NULL;
    struct sent **all = NULL;
    struct holder *hs = NULL;
    size_t nqs = 0, cap = 0, nall = 0, nhs = 0, caphs = 0;
    struct wr_hnode *vn, *n;
    size_t vit, it;
    uint64_t t0, restored = 0, orphaned = 0, held = 0, transient = 0, oldstream = 0;
    int rc;

    wr_clock_update();
    t0 = wr_now_us();
    if ((rc = wr_defs_load(s->defs_path, s->log_path, s->b, &s->defs_rec, err)) < 0)
        return rc;
    if (s->defs_rec.torn)
        wr_log(WR_LOG_WARNING,
               "definitions.log ends in a change that was never synced (the broker stopped "
               "while writing it, before confirming it to anyone): cut off");
    if (s->defs_rec.lines)
        wr_log(WR_LOG_INFO, "definitions: %zu changes from definitions.log applied",
               s->defs_rec.lines);
    s->users_gen = wr_users_generation(s->b->users);
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.now_wall = wall_ms();
    r.now_mono = wr_now_ms();
    snprintf(jdir, sizeof(jdir), "%s/journal", s->data_dir);
    r.pg = pg;
    if (pg) {
        r.pg_next_ms = wr_now_ms() + 1000;
        r.pg_total = journal_size(jdir);
        progress_start(&r, WR_RECOVER_JOURNAL, r.pg_total);
    }
    for (vn = wr_hmap_first(&s->b->vhosts, &vit); vn; vn = wr_hmap_next(&s->b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n)) {
            struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
            if (!q->store_id)
                continue;
            if (nqs == cap) {
                struct wr_queue **a = realloc(qs, (cap = cap ? cap * 2 : 64) * sizeof(*a));
                if (!a)
                    goto oom;
                qs = a;
            }
            qs[nqs++] = q;
        }
        for (n = wr_hmap_first(&vh->exchanges, &it); n; n = wr_hmap_next(&vh->exchanges, &it, n)) {
            struct wr_exchange *x = wr_container_of(n, struct wr_exchange, node);
            if (!x->durable || (!x->type->recover && !x->dedup_on))
                continue;
            if (nhs == caphs) {
                struct holder *a = realloc(hs, (caphs = caphs ? caphs * 2 : 8) * sizeof(*a));
                if (!a)
                    goto oom;
                hs = a;
            }
            hs[nhs].id = wr_exchange_holder_id(x);
            hs[nhs++].x = x;
        }
    }
    if (nqs)
        qsort(qs, nqs, sizeof(*qs), qcmp);
    if (nhs)
        qsort(hs, nhs, sizeof(*hs), hcmp);
    r.qs = qs;
    r.nqs = nqs;
    if ((rc = wr_journal_replay(jdir, replay_cb, &r, &st, err)) < 0)
        goto fail;

    /* Messages go back in publish order (id order: a compaction copy keeps
     * its id). */
    if (s->sent.n && !(all = malloc(s->sent.n * sizeof(*all))))
        goto oom;
    keys_apply(s, &r, qs, nqs, hs, nhs);
    for (n = wr_hmap_first(&s->sent, &it); n; n = wr_hmap_next(&s->sent, &it, n))
        all[nall++] = wr_container_of(n, struct sent, node);
    if (nall)
        qsort(all, nall, sizeof(*all), ecmp);
    progress_start(&r, WR_RECOVER_MESSAGES, nall);
    for (size_t i = 0; i < nall; i++) {
        struct sent *e = all[i];
        if (progress_due(&r))
            pg->fn(pg->arg, WR_RECOVER_MESSAGES, i, nall);
        e->nlive = 0;
        for (uint16_t k = 0; k < e->nq; k++) {
            struct wr_queue *q = e->qids[k] ? qfind(qs, nqs, e->qids[k]) : NULL;
            struct wr_exchange *hx = !q && (e->qids[k] >> 63) ? hfind(hs, nhs, e->qids[k]) : NULL;
            if (hx && hx->type->recover) {
                /* Held by an exchange's type (a delayed message): back to it. */
                e->m->flags |= WR_MSG_HELD;
                hx->type->recover(hx, e->m);
                e->nlive++;
                held++;
                continue;
            }
            if (!q) {
                orphaned += e->qids[k] != 0;
                e->qids[k] = 0;
                continue;
            }
            if (!wr_msg_persistent(e->m) && !wr_qtype_journals_all(q->s.type)) {
                /* Only quorum queues and streams journal transient
                 * messages; a classic queue would never report its
                 * removal. */
                e->qids[k] = 0;
                transient++;
                continue;
            }
            /* Deliveries are not journaled: every recovered message may
             * have been delivered before (redelivered=true). */
            if (q->stream) {
                /* ('P' records of a stream: written before streams had
                 * records of their own; not readable as a stream now) */
                e->qids[k] = 0;
                oldstream++;
                continue;
            }
            if (wr_queue_push_recovered(q, e->m, e->deliv[k] ? e->deliv[k] : 1) == 0) {
                e->nlive++;
                restored++;
            } else {
                e->qids[k] = 0;
            }
        }
        e->ss->live += e->nlive;
        e->deliv = NULL;
        wr_msg_unref(e->m); /* the queues hold it now */
        if (!e->nlive)
            sent_free(s, e);
    }
    free(all);
    /* Streams: the journal segments they hold, and what their records
     * decide once all are read (tombstones past their retention). */
    for (size_t i = 0; i < nqs; i++) {
        struct wr_stream *sm = qs[i]->stream;
        if (!sm)
            continue;
        for (uint32_t k = 0; k < sm->npins; k++) {
            struct segstat *ss = segstat_get(s, sm->pins[k]);
            if (ss)
                ss->spins++;
        }
        wr_stream_recovered(qs[i]);
    }
    free(qs);
    free(hs);
    if (r.srecs || r.sgone)
        wr_log(WR_LOG_INFO,
               "recovery: %llu stream messages indexed, %llu records of deleted streams skipped",
               (unsigned long long)r.srecs, (unsigned long long)r.sgone);
    if (oldstream)
        wr_log(WR_LOG_WARNING,
               "recovery: %llu messages of streams journaled by an older Warren (as queue "
               "messages): not restored",
               (unsigned long long)oldstream);
    if (r.keys_read)
        wr_log(WR_LOG_INFO, "recovery: %llu deduplication keys read, %llu live ones restored",
               (unsigned long long)r.keys_read, (unsigned long long)r.keys_restored);
    if (held)
        wr_log(WR_LOG_INFO,
               "recovery: %llu messages held by exchanges (delayed) given back to them",
               (unsigned long long)held);
    if (orphaned)
        wr_log(WR_LOG_WARNING,
               "recovery: %llu journaled messages name durable queues that are "
               "not in %s (deleted, or the definitions were lost): not restored",
               (unsigned long long)orphaned, s->defs_path);
    if (transient)
        wr_log(WR_LOG_WARNING,
               "recovery: %llu journaled transient messages name classic queues (only a "
               "quorum queue journals those): not restored there",
               (unsigned long long)transient);
    s->next_id = r.max_id + 1;
    /* A restart writes into a new segment, unless the last one is empty
     * (then it is reused, so restarts do not leave empty files behind). */
    *next_seg = st.last_empty ? st.last_segment : st.last_segment + 1;
    wr_clock_update();
    wr_log(WR_LOG_INFO,
           "recovery: %u journal segments, %llu records (%llu MB) read in %.3f s; %llu messages "
           "restored to queues; %llu removals, %llu requeues applied; %llu compaction copies; "
           "%llu corrupt records skipped, %llu records not understood (short, or of an unknown "
           "type) skipped, %llu bytes dropped, %u torn tails truncated",
           st.segments, (unsigned long long)st.records, (unsigned long long)(st.bytes >> 20),
           (double)(wr_now_us() - t0) / 1e6, (unsigned long long)restored,
           (unsigned long long)r.acks, (unsigned long long)r.requeues, (unsigned long long)r.copies,
           (unsigned long long)st.bad_records, (unsigned long long)r.unknown,
           (unsigned long long)st.skipped_bytes, st.truncated);
    return 0;
oom:
    rc = wr_fail(err, WR_EINTERNAL, "out of memory");
fail:
    /* Nothing was restored yet: the entries still own their messages. */
    for (n = wr_hmap_first(&s->sent, &it); n; n = wr_hmap_next(&s->sent, &it, n)) {
        struct sent *e = wr_container_of(n, struct sent, node);
        if (e->m)
            wr_msg_unref(e->m);
        e->m = NULL;
    }
    free(r.keys);
    free(all);
    free(qs);
    free(hs);
    return rc;
}

/* The store goes (before the broker): caches keep their keys in memory
 * only from now on. */
static void dedup_detach_all(struct wr_store *s)
{
    while (!wr_list_empty(&s->dcaches)) {
        struct wr_dedup *d = wr_container_of(s->dcaches.next, struct wr_dedup, pnode);
        wr_list_del(&d->pnode);
        wr_list_init(&d->pnode);
        d->persist = NULL;
        d->owner = 0;
        for (struct wr_dedup_ent *e = d->head; e; e = e->next)
            e->seg = 0;
    }
}

/* The journaled messages' entries (the queues hold the messages) and the
 * segments' counts. */
static void entries_free(struct wr_store *s)
{
    struct wr_hnode *n, *nx;
    size_t it;
    for (n = wr_hmap_first(&s->sent, &it); n; n = nx) {
        nx = wr_hmap_next(&s->sent, &it, n);
        free(wr_container_of(n, struct sent, node));
    }
    wr_hmap_free(&s->sent);
    while (!wr_list_empty(&s->segs)) {
        struct wr_list *l = s->segs.next;
        wr_list_del(l);
        free(wr_container_of(l, struct segstat, node));
    }
}

static void p_flush(void *ctx);
static void p_want_sync(void *ctx);
static bool p_failed(void *ctx);
static void p_low_disk(void *ctx, bool low);
static void p_stats(void *ctx, struct wr_persist_stats *out);

struct wr_store *wr_store_open(const char *data_dir, struct event_base *base,
                               uint32_t fsync_interval_ms, uint32_t segment_size,
                               struct wr_broker *b, const struct wr_store_progress *progress,
                               struct wr_errbuf *err)
{
    struct wr_store *s = calloc(1, sizeof(*s));
    char path[4200];
    uint32_t next_seg = 1;

    if (!s) {
        wr_fail(err, WR_EINTERNAL, "out of memory");
        return NULL;
    }
    for (unsigned k = 0; k < 8; k++)
        s->rfd[k].fd = -1;
    wr_hmap_init(&s->sent);
    wr_list_init(&s->segs);
    wr_list_init(&s->dcaches);
    wr_list_init(&s->sdirty);
    s->b = b;
    s->data_dir = strdup(data_dir);
    snprintf(path, sizeof(path), "%s/definitions.json", data_dir);
    s->defs_path = strdup(path);
    snprintf(path, sizeof(path), "%s/definitions.log", data_dir);
    s->log_path = strdup(path);
    if (!s->data_dir || !s->defs_path || !s->log_path) {
        wr_fail(err, WR_EINTERNAL, "out of memory");
        goto fail;
    }
    s->ops.ctx = s;
    s->ops.defs_changed = p_defs_changed;
    s->ops.defs_exchange = p_defs_exchange;
    s->ops.defs_queue = p_defs_queue;
    s->ops.defs_binding = p_defs_binding;
    s->ops.publish = p_publish;
    s->ops.hold = p_hold;
    s->ops.release = p_release;
    s->ops.remove = p_remove;
    s->ops.requeue = p_requeue;
    s->ops.page_out = p_page_out;
    s->ops.stream_append = p_stream_append;
    s->ops.stream_truncate = p_stream_truncate;
    s->ops.stream_pin = p_stream_pin;
    s->ops.sreader_new = p_sreader_new;
    s->ops.sreader_free = p_sreader_free;
    s->ops.sreader_next = p_sreader_next;
    s->ops.flush = p_flush;
    s->ops.want_sync = p_want_sync;
    s->ops.failed = p_failed;
    s->ops.low_disk = p_low_disk;
    s->ops.stats = p_stats;
    s->ops.dedup_stage = p_dedup_stage;
    s->ops.dedup_forget = p_dedup_forget;
    s->ops.dedup_attach = p_dedup_attach;
    s->ops.stream_offset = p_stream_offset;
    /* (recovery rebuilds dedup caches attached to these ops) */
    if (recover(s, progress, err, &next_seg) < 0)
        goto fail;
    s->log = wr_defslog_open(s->log_path, s->defs_rec.log_good, s->defs_rec.seq, err);
    if (!s->log)
        goto fail;
    {
        struct stat st;
        s->snap_bytes = stat(s->defs_path, &st) == 0 ? (uint64_t)st.st_size : 0;
    }
    if (s->defs_rec.lines) {
        /* Start from a snapshot that holds them. */
        s->defs_dirty = true;
        schedule(s);
    }
    snprintf(path, sizeof(path), "%s/journal", data_dir);
    s->j = wr_journal_open(path, next_seg, segment_size, base, fsync_interval_ms, synced, s, err);
    if (!s->j)
        goto fail;
    if (offsets_open(s, base, err) < 0)
        goto fail;
    s->b->msgs.load = load_body;
    s->b->msgs.load_ctx = s;
    /* Segments before the oldest live one are garbage now. */
    segs_prune(s);
    return s;
fail:
    dedup_detach_all(s);
    wr_offsets_close(s->offs);
    if (s->j)
        wr_journal_close(s->j);
    wr_defslog_close(s->log);
    entries_free(s);
    free(s->log_path);
    free(s->defs_path);
    free(s->data_dir);
    free(s);
    return NULL;
}

void wr_store_close(struct wr_store *s)
{
    struct wr_errbuf err;
    if (!s)
        return;
    if (wr_users_generation(s->b->users) != s->users_gen)
        s->defs_dirty = true;
    /* A clean stop leaves a whole definitions.json and an empty log. */
    if ((s->defs_dirty || wr_defslog_size(s->log) > 0) && save_snapshot(s, &err) < 0)
        wr_log(WR_LOG_ERROR, "definitions not saved: %s", err.text);
    wr_defslog_close(s->log);
    offsets_flush(s);
    wr_offsets_close(s->offs);
    wr_journal_close(s->j);
    dedup_detach_all(s);
    for (size_t i = 0; i < s->npageq; i++)
        wr_msg_unref(s->pageq[i]);
    free(s->pageq);
    for (unsigned k = 0; k < 8; k++)
        if (s->rfd[k].fd >= 0)
            close(s->rfd[k].fd);
    if (s->b->msgs.load_ctx == s) {
        s->b->msgs.load = NULL;
        s->b->msgs.load_ctx = NULL;
    }
    entries_free(s);
    free(s->log_path);
    free(s->defs_path);
    free(s->data_dir);
    free(s);
}

static void p_flush(void *ctx)
{
    wr_store_flush(ctx);
}

static void p_want_sync(void *ctx)
{
    wr_store_want_sync(ctx);
}

static bool p_failed(void *ctx)
{
    return wr_store_failed(ctx);
}

static void p_low_disk(void *ctx, bool low)
{
    wr_store_low_disk(ctx, low);
}

static void p_stats(void *ctx, struct wr_persist_stats *out)
{
    struct wr_store *s = ctx;
    wr_journal_stats(s->j, &out->journal_bytes, &out->fsync);
}

const struct wr_persist *wr_store_persist(struct wr_store *s)
{
    return &s->ops;
}

void wr_store_on_synced(struct wr_store *s, void (*cb)(void *arg, uint64_t pos), void *arg)
{
    s->synced_cb = cb;
    s->synced_arg = arg;
}

void wr_store_want_sync(struct wr_store *s)
{
    wr_journal_want_sync(s->j);
    schedule(s);
}

uint64_t wr_store_synced(const struct wr_store *s)
{
    return wr_journal_synced(s->j);
}

void wr_store_low_disk(struct wr_store *s, bool low)
{
    s->low_disk = low;
}

bool wr_store_failed(const struct wr_store *s)
{
    return wr_journal_failed(s->j) || s->defs_failed;
}
