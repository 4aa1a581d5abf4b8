/*
 * publish.c - the one publish path; see publish.h.
 *
 * Neighbours: exchange.c routes (wr_vhost_route), vhost.c journals
 * (wr_vhost_journal, through the store's struct wr_persist), queue.c takes
 * the references (wr_queue_push). Callers: net/chan.c (basic.publish,
 * tx.commit) and dlx.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/access.h"
#include "broker/dedup.h"
#include "broker/exchange.h"
#include "broker/msg.h"
#include "broker/publish.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "core/log.h"
#include "wire/field.h"

void wr_publish_result_free(struct wr_publish_result *r)
{
    free(r->route.q);
    free(r->keys);
    free(r->dd);
    free(r->dd_st);
    memset(r, 0, sizeof(*r));
}

/* ---- deduplication (dedup.h) ----
 *
 * Each cache on the way (the exchange's, before routing; each target
 * queue's, after) is asked once. A key not seen is noted in res->dd and
 * remembered only once the message is in (a publish that could not be made
 * durable is nacked and its retry must not count as a duplicate). Keys of
 * durable owners are staged with the store, which journals them just
 * before the message's publish record when it writes one. */

/* 1: a duplicate for d; 0: not (its key noted at *nd when it has one). */
static int dedup_check(struct wr_publish_result *res, uint32_t *nd, struct wr_dedup *d,
                       uint64_t owner, const struct wr_msg *m, struct wr_str headers)
{
    struct wr_str key;
    int64_t ttl;
    uint64_t now = wr_now_ms();

    if (!d || !wr_dedup_key(d, m, headers, &key))
        return 0;
    if (wr_dedup_seen(d, key, now)) {
        d->deduplicated++;
        res->deduplicated = true;
        return 1;
    }
    ttl = wr_dedup_ttl(d, headers);
    if (*nd == res->dd_cap) {
        uint32_t cap = res->dd_cap ? res->dd_cap * 2 : 4;
        struct wr_dedup **a = realloc(res->dd, (size_t)cap * sizeof(*a));
        struct wr_dedup_stage *b;
        if (!a)
            return 0; /* out of memory: the key is not remembered */
        res->dd = a;
        if (!(b = realloc(res->dd_st, (size_t)cap * sizeof(*b))))
            return 0;
        res->dd_st = b;
        res->dd_cap = cap;
    }
    res->dd[*nd] = d;
    res->dd_st[*nd] = (struct wr_dedup_stage){owner, key.ptr, (uint16_t)key.len,
                                              ttl > 0 ? now + (uint64_t)ttl : 0, 0};
    (*nd)++;
    return 0;
}

/* The owner id that journals d's keys (0: none), attaching d to the store
 * on first use. */
static uint64_t dedup_owner(struct wr_vhost *vh, struct wr_dedup *d, bool durable,
                            uint64_t (*id)(const void *), const void *obj)
{
    if (!d || !durable || !vh->persist)
        return 0;
    if (d->persist != vh->persist)
        wr_dedup_journal(d, id(obj), vh->persist);
    return d->owner;
}

static uint64_t xid(const void *x)
{
    return wr_exchange_holder_id(x);
}

static uint64_t qid(const void *q)
{
    return ((const struct wr_queue *)q)->store_id;
}

/* The message is in: remember its new keys (with their records' segments). */
static void dedup_commit(struct wr_publish_result *res, uint32_t nd)
{
    for (uint32_t i = 0; i < nd; i++) {
        const struct wr_dedup_stage *st = &res->dd_st[i];
        (void)wr_dedup_add(res->dd[i], (struct wr_str){st->key, st->len}, st->expires, st->seg);
    }
}

static void dedup_unnote(struct wr_queue *q, const struct wr_msg *m, struct wr_str headers)
{
    struct wr_dedup *d = wr_dedup_of_queue(q);
    struct wr_str key;
    if (d && wr_dedup_key(d, m, headers, &key))
        wr_dedup_remove_key(d, key);
}

int wr_vhost_publish(struct wr_vhost *vh, struct wr_exchange *x, struct wr_msg *m,
                     const struct wr_publish_opts *o, struct wr_publish_result *res)
{
    struct wr_route_msg rm = {0};
    struct wr_route_result *r = &res->route;
    struct wr_msg *ext = NULL;
    const struct wr_persist *p = vh->persist;
    uint32_t nd = 0, nq;
    uint64_t jpos, other_pos = 0;
    int rc;

    res->journal_pos = 0;
    res->journal_failed = res->rejected = res->deduplicated = false;
    rm.routing_key = wr_msg_routing_key(m);
    rm.msg = m;
    rm.headers = o && o->headers_known ? o->headers : wr_msg_headers(m);
    if (o) {
        rm.cc = o->keys;
        rm.ncc = o->nkeys;
    }
    if (x->dedup_on) {
        struct wr_dedup *d = wr_dedup_of_exchange(x);
        if (dedup_check(res, &nd, d, dedup_owner(vh, d, x->durable, xid, x), m, rm.headers)) {
            /* A duplicate for the exchange goes nowhere; not unroutable. */
            r->n = 0;
            r->taken = true;
            r->held_pos = 0;
            r->held_failed = false;
            return 0;
        }
    }
    if ((rc = wr_vhost_route(vh, x, &rm, r)) < 0) {
        r->n = 0;
        return rc;
    }
    {
        uint32_t k = 0;
        for (uint32_t i = 0; i < r->n; i++) {
            struct wr_queue *q = r->q[i];
            if (o && o->keep && !o->keep(o->keep_ctx, q))
                continue;
            if (q->s.dedup) {
                struct wr_dedup *d = wr_dedup_of_queue(q);
                uint64_t own = dedup_owner(vh, d, q->durable && q->store_id, qid, q);
                if (dedup_check(res, &nd, d, own, m, rm.headers))
                    continue; /* a duplicate for this queue only */
            }
            r->q[k++] = q;
        }
        r->n = k;
        if (!k && res->deduplicated)
            r->taken = true;
    }
    /* Streams last (r->q[nq..]): each takes its own stamped copy. */
    nq = r->n;
    for (uint32_t i = 0; i < nq;) {
        if (r->q[i]->stream) {
            struct wr_queue *t = r->q[i];
            r->q[i] = r->q[--nq];
            r->q[nq] = t;
        } else {
            i++;
        }
    }
    /* A quorum queue journals a transient message too: it needs the
     * extension that holds a journal identity (a copy; rare). */
    if (!(m->flags & WR_MSG_EXT) && vh->persist) {
        for (uint32_t i = 0; i < nq; i++) {
            if (r->q[i]->s.type == WR_QTYPE_QUORUM) {
                if (!(ext = wr_msg_with_ext(m))) {
                    res->journal_failed = true;
                    return 0;
                }
                m = ext;
                break;
            }
        }
    }
    /* Journal once, for every durable target, before any queue can
     * deliver, drop or ack it; the new keys of durable owners go with it. */
    if (nd && p)
        p->dedup_stage(p->ctx, res->dd_st, nd);
    jpos = wr_vhost_journal(vh, m, r->q, nq);
    if (nd && p)
        p->dedup_stage(p->ctx, NULL, 0);
    if (jpos == WR_JOURNAL_FAILED) {
        res->journal_pos = 0;
        res->journal_failed = true;
        wr_msg_unref(ext);
        return 0;
    }
    for (uint32_t i = nq; i < r->n; i++) {
        struct wr_queue *q = r->q[i];
        struct wr_msg *sm = wr_stream_stamp(q, m);
        uint64_t rec = 0, pos = 0;
        if (sm && p && q->durable && q->store_id)
            pos = p->stream_append(p->ctx, q, sm, q->stream->next, &rec);
        if (!sm || (p && q->durable && q->store_id && !pos)) {
            res->journal_failed = true;
        } else {
            if (pos > other_pos)
                other_pos = pos;
            if (wr_stream_append(q, sm, pos, rec) < 0)
                wr_log(WR_LOG_ERROR, "out of memory appending to a stream");
        }
        wr_msg_unref(sm);
    }
    dedup_commit(res, nd);
    /* An exchange type kept a copy durably (a delayed exchange): confirm
     * once that is on disk too; nack when it could not be. */
    if (r->held_pos > other_pos)
        other_pos = r->held_pos;
    if (r->held_failed)
        res->rejected = true;
    for (uint32_t i = 0; i < nq; i++) {
        int qrc = wr_queue_push(r->q[i], m);
        if (qrc == WR_QUEUE_REJECTED) {
            res->rejected = true;
            /* Refused (nacked): its retry is not a duplicate there. */
            if (r->q[i]->s.dedup)
                dedup_unnote(r->q[i], m, rm.headers);
        } else if (qrc < 0)
            wr_log(WR_LOG_ERROR, "out of memory queueing a message");
    }
    /* The confirm waits for the message's record to be durable, unless
     * the message already left its durable queue (an autoack consumer took
     * it) and the store took the record back before writing it: then it
     * names no record any more, and only the other records count. */
    res->journal_pos = jpos && wr_msg_store_id(m) && jpos > other_pos ? jpos : other_pos;
    wr_msg_unref(ext);
    return 0;
}

/* ---- a client's publish ---- */

static int key_push(struct wr_publish_result *res, uint32_t n, struct wr_str key)
{
    if (n == res->keys_cap) {
        uint32_t cap = res->keys_cap ? res->keys_cap * 2 : 8;
        struct wr_str *a = realloc(res->keys, (size_t)cap * sizeof(*a));
        if (!a)
            return WR_ENOMEM;
        res->keys = a;
        res->keys_cap = cap;
    }
    res->keys[n] = key;
    return 0;
}

/* Append the keys of header `name` from index *n. Returns 1 when the
 * header is there, 0 when not, negative (err filled) when it is bad. */
static int keys_from(struct wr_publish_result *res, struct wr_str headers, const char *name,
                     uint32_t *n, struct wr_errbuf *err)
{
    struct wr_fv v;
    struct wr_rd r;

    if (wr_table_get(headers, name, &v) != 1)
        return 0;
    if (v.type != 'A')
        return wr_fail(err, WR_EPRECONDITION_FAILED,
                       "invalid message: {unacceptable_type_in_header,\"%s\",%s}", name,
                       wr_field_type_name(v.type));
    r = wr_rd_init(v.v.str.ptr, v.v.str.len);
    while (wr_array_next(&r, &v) > 0) {
        /* Only long strings count; a key over 255 bytes matches no binding. */
        if (v.type != 'S' || v.v.str.len > 255)
            continue;
        if (key_push(res, (*n)++, v.v.str) < 0)
            return wr_fail(err, WR_EINTERNAL, "out of memory");
    }
    return 1;
}

int wr_vhost_publish_by_name(struct wr_vhost *vh, struct wr_principal *who, struct wr_msg **mp,
                             struct wr_publish_result *res, struct wr_errbuf *err)
{
    struct wr_msg *m = *mp, *orig = NULL;
    struct wr_str name = wr_msg_exchange(m), h = wr_msg_headers(m);
    struct wr_exchange *x = wr_vhost_exchange_of(vh, m);
    struct wr_publish_opts o = {0};
    uint32_t n = 0;
    int rc, bcc = 0;

    res->route.n = 0;
    if (wr_access_check(who, WR_PERM_WRITE, "exchange", name, err) < 0)
        return err->code;
    if (!x)
        return wr_fail(err, WR_ENOT_FOUND, "no exchange '%.*s' in vhost '%s'", (int)name.len,
                       name.ptr, vh->name);
    if (x->internal)
        return wr_fail(err, WR_EACCESS_REFUSED,
                       "cannot publish to internal exchange '%.*s' in vhost '%s'", (int)name.len,
                       name.ptr, vh->name);
    if (wr_access_topic(who, x, WR_PERM_WRITE, wr_msg_routing_key(m), err) < 0 ||
        wr_access_user_id(who, m, err) < 0)
        return err->code;
    /* Sender-selected distribution: CC and BCC are routing keys too, and
     * BCC leaves the message before anything stores it. */
    if (h.len) {
        if ((rc = keys_from(res, h, "CC", &n, err)) < 0 ||
            (bcc = keys_from(res, h, "BCC", &n, err)) < 0)
            return err->code;
        if (bcc) {
            struct wr_msg *nm = wr_msg_without_header(m, "BCC");
            if (!nm)
                return wr_fail(err, WR_EINTERNAL, "out of memory");
            orig = m; /* the keys point into it */
            *mp = m = nm;
        }
    }
    o.keys = res->keys;
    o.nkeys = n;
    o.headers_known = !bcc; /* a copy without BCC has headers of its own */
    o.headers = h;
    rc = wr_vhost_publish(vh, x, m, &o, res);
    wr_msg_unref(orig);
    if (rc < 0)
        return wr_fail(err, WR_EINTERNAL, "out of memory routing a message");
    return 0;
}
