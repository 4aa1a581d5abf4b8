/*
 * chan.c - an AMQP channel; see chan.h.
 *
 * Neighbours: conn.c hands over every frame for the channel and owns the
 * socket; broker/vhost.c answers declares, binds and deletes and routes;
 * broker/queue.c dispatches to the consumers defined here through
 * struct wr_consumer_ops; deliver.c writes content frames.
 *
 * The unacked ring: delivery tags on a channel are dense and increasing,
 * so the deliveries waiting for an ack sit in a ring indexed by
 * `tag - first_tag`. An ack finds its entry in O(1); settled entries stay as
 * holes until they reach the front. No-ack deliveries take a tag too and
 * leave a hole, so the index stays exact.
 *
 * consumer_timeout: each live entry records when it was delivered (the
 * loop's cached clock). A channel with live entries is on the server's
 * unacked_chans list, and the server's tick calls wr_chan_ack_tick for each
 * such channel only: one comparison against `ua_check`, a time before which
 * no delivery of the channel can expire. Entries from queues with the same
 * timeout setting expire in tag order, so while every live entry shares
 * one (`!ua_mixed`, the usual case) the head of the ring is the one to
 * look at; with several, the ring is scanned, only when `ua_check` has
 * passed, and `ua_check` is then exact again.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/access.h"
#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/publish.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/randname.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/deliver.h"
#include "net/server.h"
#include "wire/field.h"
#include "wire/frame.h"

struct chan_consumer {
    struct wr_consumer base;
    struct wr_hnode node; /* ch->consumers, key = tag */
    struct wr_chan *ch;
    bool no_ack;
    bool reply_to;            /* the channel's direct reply-to consumer */
    struct wr_list wake_node; /* in ch->wake after leaving its prefetch limit */
    uint32_t prefetch, unacked;
    struct wr_counter delivered, acked; /* for consumer lag (wr_chan_consumers) */
    char tag[256];
};

struct unacked {
    struct wr_qent e; /* e.m NULL: a hole (settled, or a no-ack delivery);
                       * e.deliveries counts this delivery */
    struct wr_queue *q;
    struct chan_consumer *cons; /* NULL for basic.get or a cancelled consumer */
    uint64_t at; /* delivered at (wr_now_ms), for consumer_timeout; 0: none applied */
};

struct requeue {
    struct wr_queue *q;
    struct wr_qent e;
};

enum { TX_ACK, TX_REJECT, TX_NACK };

struct pconfirm {
    uint64_t seq, pos; /* durable once the journal reaches pos (0: already) */
    bool ok;
};

struct tx_op {
    struct wr_msg *m; /* a publish when set */
    bool mandatory;
    int kind;
    uint64_t tag;
    bool multiple, requeue;
};

struct wr_chan {
    struct wr_conn *c;
    uint16_t id;
    bool closing;
    bool releasing; /* giving everything back: consumers take nothing */
    bool flow_active;

    /* content assembly */
    enum { CA_IDLE, CA_HEADER, CA_BODY } ca;
    bool pub_mandatory;
    uint8_t pub_xlen, pub_rklen;
    char pub_x[256], pub_rk[256];
    struct wr_msg *pm;
    uint32_t pm_have; /* body bytes received */
    uint64_t pub_confirm_seq;

    /* consumers and prefetch */
    struct wr_hmap consumers;
    uint32_t nconsumers;
    uint16_t prefetch_next;   /* basic.qos global=false: for new consumers */
    uint16_t prefetch_global; /* basic.qos global=true: the whole channel */
    uint32_t unacked_live;
    struct wr_list wake; /* consumers that left their prefetch limit */
    bool wake_all;

    /* the unacked ring */
    struct unacked *ua;
    uint32_t ua_cap, ua_head, ua_n;
    uint64_t ua_first_tag; /* tag of ua[ua_head] */
    uint64_t last_tag;
    /* consumer_timeout (see the top of the file and wr_chan_ack_tick) */
    struct wr_list ua_node; /* srv->unacked_chans while unacked_live > 0 */
    uint64_t ua_check;      /* no live entry expires at or before this (ms) */
    int64_t ua_qto;         /* the queues' x-consumer-timeout of every live entry */
    bool ua_mixed;          /* ... unless live entries come from queues that differ */

    /* publisher confirms; those that wait for the journal queue up in
     * order behind `pc` (a ring), so acks never overtake one another */
    struct pconfirm *pc;
    uint32_t pc_cap, pc_head, pc_n;
    struct wr_list wait_node; /* srv->store_waiters while pc_n > 0 */
    bool confirm;
    uint64_t pub_seq;      /* last publish sequence number given */
    uint64_t confirm_upto; /* settled up to here, not yet told */
    uint64_t confirm_sent;

    /* transactions */
    bool tx;
    struct tx_op *txo;
    uint32_t txn, txcap;

    struct wr_publish_result pub; /* reused by every publish */
    struct wr_principal who;      /* the user, for access checks (see may()) */

    /* direct reply-to: the pseudo-queue this channel's replies arrive on */
    char reply_to[64];

    struct wr_stats st; /* what this channel's client did (broker/stats.h) */

    /* The queue this channel declared last: an empty queue name in
     * basic.consume, basic.get, queue.bind/unbind/purge/delete means it
     * (AMQP 0-9-1; RabbitMQ does the same). */
    uint8_t last_queue_len;
    bool last_queue_set;
    char last_queue[255];
};

/* Count an event on the channel and its vhost (and a queue, when given). */
static inline void count(struct wr_chan *ch, struct wr_queue *q, enum wr_stat k)
{
    wr_stat_inc(&ch->st, k);
    wr_stat_inc(&ch->c->vh->st, k);
    if (q)
        wr_stat_inc(&q->st, k);
}

static const struct wr_consumer_ops chan_consumer_ops;

/* ---- errors ---- */

static void chan_release(struct wr_chan *ch);

/* Send channel.close (a soft error, already logged) and give everything
 * back; the channel waits for close-ok. */
static void chan_close(struct wr_chan *ch, int code, uint32_t method_id, const char *text)
{
    struct wr_method m;

    wr_method_init(&m, WR_CHANNEL_CLOSE);
    m.u.channel_close.reply_code = (uint16_t)code;
    m.u.channel_close.reply_text = wr_str_c(text);
    m.u.channel_close.class_id = (uint16_t)(method_id >> 16);
    m.u.channel_close.method_id = (uint16_t)method_id;
    wr_conn_send(ch->c, ch->id, &m);
    ch->closing = true;
    chan_release(ch);
}

static void chan_error(struct wr_chan *ch, int err, uint32_t method_id, const char *text)
{
    int code = wr_err_reply_code(err);

    if (wr_reply_code_is_hard((uint16_t)code)) {
        /* Drop the "NAME - " prefix the errbuf added: wr_conn_error adds its own. */
        const char *t = strstr(text, " - ");
        wr_conn_error(ch->c, code, method_id, "%s", t ? t + 3 : text);
        return;
    }
    char esc[WR_LOG_ESC_MAX]; /* the text quotes names the client chose */
    wr_log_ctx(WR_LOG_WARNING, ch->c->name, "channel %u error: %s", ch->id,
               wr_log_esc(esc, sizeof(esc), text, strlen(text)));
    chan_close(ch, code, method_id, text);
}

static void chan_errorf(struct wr_chan *ch, int err, uint32_t method_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void chan_errorf(struct wr_chan *ch, int err, uint32_t method_id, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    int n =
        snprintf(text, sizeof(text), "%s - ", wr_reply_code_name((uint16_t)wr_err_reply_code(err)));
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    chan_error(ch, err, method_id, text);
}

/* ---- queue name shortcuts ---- */

/* The empty queue name means the channel's last declared queue; with
 * none, RabbitMQ's 404. False (and the channel closed) on that error. */
static bool queue_name(struct wr_chan *ch, struct wr_str *name, uint32_t method_id)
{
    if (name->len)
        return true;
    if (!ch->last_queue_set) {
        chan_errorf(ch, WR_ENOT_FOUND, method_id, "no previously declared queue");
        return false;
    }
    *name = (struct wr_str){ch->last_queue, ch->last_queue_len};
    return true;
}

static void set_last_queue(struct wr_chan *ch, struct wr_str name)
{
    if (name.len > sizeof(ch->last_queue))
        return;
    memcpy(ch->last_queue, name.ptr, name.len);
    ch->last_queue_len = (uint8_t)name.len;
    ch->last_queue_set = true;
}

/* ---- access control ----
 *
 * RabbitMQ's table, operation by operation (the handlers below call these
 * in RabbitMQ's order; publish's checks are in broker/publish.c):
 *   exchange.declare   configure on it; when created with an alternate
 *                      exchange, also read on it and write on the AE
 *   exchange.delete    configure on it
 *   queue.declare      configure on it (server-named: on the name given);
 *                      when created with a dead-letter exchange, also read
 *                      on it and write on the DLX
 *   queue.delete       configure on it
 *   queue.bind/unbind  write on the queue, read on the exchange (and the
 *                      topic read permission on the key, topic exchanges)
 *   exchange.bind/unbind  write on the destination, read on the source
 *   basic.get/consume, queue.purge   read on the queue
 *   passive declares, direct reply-to: nothing
 * The permission check comes before the existence and exclusivity
 * checks, so a refused user cannot probe for names. */

/* The channel's principal, current; NULL when its user was deleted (the
 * connection is being closed with 320). */
static struct wr_principal *principal(struct wr_chan *ch)
{
    struct wr_user *u;
    const struct wr_vperm *p = wr_conn_access(ch->c, &u);
    if (!u)
        return NULL;
    wr_principal_set(&ch->who, u, p, ch->c->vh->name, ch->c->access_gen);
    return &ch->who;
}

/* One check; on refusal the channel is closed with RabbitMQ's 403. */
static bool may(struct wr_chan *ch, enum wr_perm_op op, const char *kind, struct wr_str name,
                uint32_t method_id)
{
    struct wr_principal *who = principal(ch);
    struct wr_errbuf err;
    if (!who)
        return false;
    if (wr_access_check(who, op, kind, name, &err) == 0)
        return true;
    chan_error(ch, err.code, method_id, err.text);
    return false;
}

/* The topic read permission on a binding's key, when the source is a
 * topic exchange (a missing one is the bind's own 404 later). */
static bool may_bind_key(struct wr_chan *ch, struct wr_str source, struct wr_str key,
                         uint32_t method_id)
{
    struct wr_exchange *x = wr_vhost_exchange(ch->c->vh, source);
    struct wr_principal *who = principal(ch);
    struct wr_errbuf err;
    if (!who)
        return false;
    if (!x || wr_access_topic(who, x, WR_PERM_READ, key, &err) == 0)
        return true;
    chan_error(ch, err.code, method_id, err.text);
    return false;
}

/* A binding: write on the destination, read on the source, and the
 * topic read permission on the key. The default exchange is left to the
 * bind's own 403. */
static bool may_bind(struct wr_chan *ch, const char *dest_kind, struct wr_str dest,
                     struct wr_str source, struct wr_str key, uint32_t method_id)
{
    if (dest.len && !may(ch, WR_PERM_WRITE, dest_kind, dest, method_id))
        return false;
    if (source.len && !may(ch, WR_PERM_READ, "exchange", source, method_id))
        return false;
    return may_bind_key(ch, source, key, method_id);
}

/* A creating declare names another exchange in its arguments (an
 * alternate or dead-letter exchange): read on the new object, write on
 * that exchange. */
static bool may_name_exchange_arg(struct wr_chan *ch, const char *kind, struct wr_str name,
                                  struct wr_str args, const char *arg, uint32_t method_id)
{
    struct wr_fv v;
    if (!args.len || wr_table_get(args, arg, &v) != 1 || v.type != 'S')
        return true;
    return may(ch, WR_PERM_READ, kind, name, method_id) &&
           may(ch, WR_PERM_WRITE, "exchange", v.v.str, method_id);
}

/* ---- the unacked ring ---- */

static struct unacked *ua_at(struct wr_chan *ch, uint32_t i)
{
    return &ch->ua[(ch->ua_head + i) & (ch->ua_cap - 1)];
}

static int ua_push(struct wr_chan *ch, uint64_t tag, const struct unacked *u)
{
    if (ch->ua_n == 0)
        ch->ua_first_tag = tag;
    if (ch->ua_n == ch->ua_cap) {
        uint32_t cap = ch->ua_cap ? ch->ua_cap * 2 : 16;
        struct unacked *a = malloc((size_t)cap * sizeof(*a));
        if (!a)
            return WR_ENOMEM;
        for (uint32_t i = 0; i < ch->ua_n; i++)
            a[i] = *ua_at(ch, i);
        free(ch->ua);
        ch->ua = a;
        ch->ua_cap = cap;
        ch->ua_head = 0;
    }
    *ua_at(ch, ch->ua_n) = *u;
    ch->ua_n++;
    return 0;
}

/* Drop settled entries from the front. */
static void ua_trim(struct wr_chan *ch)
{
    while (ch->ua_n && !ua_at(ch, 0)->e.m) {
        ch->ua_head = (ch->ua_head + 1) & (ch->ua_cap - 1);
        ch->ua_n--;
        ch->ua_first_tag++;
    }
}

static struct unacked *ua_find(struct wr_chan *ch, uint64_t tag)
{
    uint64_t i;
    if (tag < ch->ua_first_tag || ch->ua_n == 0)
        return NULL;
    i = tag - ch->ua_first_tag;
    if (i >= ch->ua_n)
        return NULL;
    return ua_at(ch, (uint32_t)i)->e.m ? ua_at(ch, (uint32_t)i) : NULL;
}

/* ---- consumer_timeout ---- */

/* The acknowledgement timeout of deliveries from q, in ms (0: none): the
 * queue's x-consumer-timeout, else consumer_timeout, read now (a SIGHUP
 * reload applies to deliveries already made). */
static inline uint64_t ack_timeout(const struct wr_chan *ch, const struct wr_queue *q)
{
    int64_t t =
        q->s.consumer_timeout >= 0 ? q->s.consumer_timeout : ch->c->srv->conf->consumer_timeout_ms;
    return t > 0 ? (uint64_t)t : 0;
}

/* When a delivery from q is made: 0 when no timeout applies to it, so a
 * broker without one reads no clock per delivery. */
static inline uint64_t ack_clock(const struct wr_chan *ch, const struct wr_queue *q)
{
    return ack_timeout(ch, q) ? wr_now_ms() : 0;
}

static uint64_t ua_deadline(const struct wr_chan *ch, const struct unacked *u)
{
    uint64_t t = ack_timeout(ch, u->q);
    return t && u->at && t <= UINT64_MAX - u->at ? u->at + t : UINT64_MAX;
}

/* A live entry from q was just pushed (before unacked_live counts it). */
static void ua_timed_slow(struct wr_chan *ch, struct wr_queue *q, uint64_t at)
{
    uint64_t t = ack_timeout(ch, q);
    if (ch->unacked_live == 0) {
        ch->ua_mixed = false;
        ch->ua_qto = q->s.consumer_timeout;
        ch->ua_check = UINT64_MAX;
        if (!wr_list_linked(&ch->ua_node))
            wr_list_add_tail(&ch->c->srv->unacked_chans, &ch->ua_node);
    } else if (q->s.consumer_timeout != ch->ua_qto) {
        ch->ua_mixed = true;
    }
    if (t && at + t < ch->ua_check)
        ch->ua_check = at + t;
}

static inline void ua_timed(struct wr_chan *ch, struct wr_queue *q, uint64_t at)
{
    /* The usual case, a few loads: every live entry has this one's
     * setting, so it expires after all of them and ua_check stands. */
    if (ch->unacked_live && !ch->ua_mixed && q->s.consumer_timeout == ch->ua_qto)
        return;
    ua_timed_slow(ch, q, at);
}

/* The index of the live entry that expires first (ua_n when none has a
 * timeout). Scans the ring only when its entries come from queues with
 * different settings, and then finds out whether they still do. */
static uint32_t ua_first_due(struct wr_chan *ch, uint64_t *due)
{
    uint32_t best = ch->ua_n;
    bool seen = false, mixed = false;
    int64_t qto = 0;

    *due = UINT64_MAX;
    if (!ch->ua_mixed && ch->ua_n && ua_at(ch, 0)->e.m) {
        *due = ua_deadline(ch, ua_at(ch, 0));
        return *due == UINT64_MAX ? ch->ua_n : 0;
    }
    for (uint32_t i = 0; i < ch->ua_n; i++) {
        const struct unacked *u = ua_at(ch, i);
        uint64_t d;
        if (!u->e.m)
            continue;
        if (!seen)
            qto = u->q->s.consumer_timeout;
        seen = true;
        mixed |= u->q->s.consumer_timeout != qto;
        if ((d = ua_deadline(ch, u)) < *due) {
            *due = d;
            best = i;
        }
    }
    ch->ua_mixed = mixed;
    ch->ua_qto = qto;
    return best;
}

/* Settle one entry: it leaves the prefetch accounting. A consumer that
 * was at its limit is noted for waking (each once); a channel that was at
 * its global limit wakes everyone. No walk over the channel's consumers
 * per ack: a channel may have thousands. */
static void ua_settle(struct wr_chan *ch, struct unacked *u)
{
    struct chan_consumer *cc = u->cons;
    if (cc) {
        if (cc->prefetch && cc->unacked == cc->prefetch && !wr_list_linked(&cc->wake_node))
            wr_list_add_tail(&ch->wake, &cc->wake_node);
        cc->unacked--;
    }
    if (ch->prefetch_global && ch->unacked_live == ch->prefetch_global)
        ch->wake_all = true;
    ch->unacked_live--;
    u->q->unacked--;
    u->q->unacked_bytes -= u->e.m->body_len;
    u->e.m = NULL;
}

static void wake_consumers(struct wr_chan *ch);

/* Give the consumers noted by ua_settle a turn. */
static void wake_settled(struct wr_chan *ch)
{
    if (ch->wake_all) {
        ch->wake_all = false;
        while (!wr_list_empty(&ch->wake))
            wr_list_del(ch->wake.next);
        wake_consumers(ch);
        return;
    }
    while (!wr_list_empty(&ch->wake)) {
        struct wr_list *n = ch->wake.next;
        wr_list_del(n);
        wr_queue_consumer_ready(&wr_container_of(n, struct chan_consumer, wake_node)->base);
    }
}

/* Give every consumer of the channel a turn (qos, flow, output drained). */
static void wake_consumers(struct wr_chan *ch)
{
    struct wr_hnode *n, *nx;
    size_t it;
    for (n = wr_hmap_first(&ch->consumers, &it); n; n = nx) {
        nx = wr_hmap_next(&ch->consumers, &it, n);
        wr_queue_consumer_ready(&wr_container_of(n, struct chan_consumer, node)->base);
    }
}

static int requeue_cmp(const void *x, const void *y)
{
    const struct requeue *a = x, *b = y;
    if (a->q != b->q)
        return a->q < b->q ? -1 : 1;
    return 0;
}

/* Requeue a batch, grouped by queue; drops each entry's queue reference.
 * `returned`: the client gave them back (nack/reject), not a close. */
static void requeue_batch(struct requeue *r, uint32_t n, bool returned)
{
    uint32_t i = 0;
    qsort(r, n, sizeof(*r), requeue_cmp);
    while (i < n) {
        uint32_t j = i;
        struct wr_qent *tmp;
        while (j < n && r[j].q == r[i].q)
            j++;
        tmp = malloc((size_t)(j - i) * sizeof(*tmp));
        if (tmp) {
            for (uint32_t k = i; k < j; k++)
                tmp[k - i] = r[k].e;
            if (returned)
                wr_queue_return(r[i].q, tmp, j - i);
            else
                wr_queue_requeue(r[i].q, tmp, j - i);
            free(tmp);
        } else {
            for (uint32_t k = i; k < j; k++)
                wr_queue_requeue_one(r[i].q, &r[k].e);
        }
        for (uint32_t k = i; k < j; k++)
            wr_queue_unref(r[k].q);
        i = j;
    }
}

/* Settle the live entries from index `first` to `last` (inclusive):
 * requeue them, reject them (dead-letter or drop), or ack them (drop). */
static void settle_range(struct wr_chan *ch, uint32_t first, uint32_t last, bool requeue,
                         bool reject)
{
    struct requeue *r = NULL;
    uint32_t nr = 0;

    if (requeue)
        r = malloc((size_t)(last - first + 1) * sizeof(*r));
    for (uint32_t i = first; i <= last; i++) {
        struct unacked *u = ua_at(ch, i);
        if (!u->e.m)
            continue;
        if (requeue && r) {
            r[nr].q = u->q;
            r[nr].e = u->e;
            nr++;
            ua_settle(ch, u);
        } else {
            struct wr_qent e = u->e;
            struct wr_queue *q = u->q;
            if (!requeue && !reject) {
                count(ch, q, WR_ST_ACK);
                if (u->cons)
                    u->cons->acked.n++;
                if (q->stream && u->cons && u->cons->base.stream_name)
                    wr_stream_acked(q, u->cons->base.stream_name, e.seq);
            }
            ua_settle(ch, u);
            if (requeue)
                wr_queue_requeue_one(q, &e);
            else if (reject)
                wr_queue_reject(q, &e);
            else
                wr_queue_settled(q, e.m);
            wr_queue_unref(q);
        }
    }
    ua_trim(ch);
    if (nr)
        requeue_batch(r, nr, reject);
    free(r);
}

/* ---- consumers (struct wr_consumer_ops) ---- */

static bool cons_can_take(struct wr_consumer *base)
{
    struct chan_consumer *cc = wr_container_of(base, struct chan_consumer, base);
    struct wr_chan *ch = cc->ch;

    if (ch->closing || ch->releasing || !ch->flow_active || wr_conn_out_full(ch->c))
        return false;
    if (cc->no_ack)
        return true;
    if (cc->prefetch && cc->unacked >= cc->prefetch)
        return false;
    if (ch->prefetch_global && ch->unacked_live >= ch->prefetch_global)
        return false;
    return true;
}

/* Write a delivery; a redelivery from a queue that counts deliveries
 * (quorum, or x-delivery-limit) carries x-delivery-count, the number of
 * earlier deliveries. */
static void deliver_counted(struct wr_chan *ch, struct wr_queue *q, const struct wr_qent *e,
                            const struct wr_method *m)
{
    struct wr_msg *tmp = NULL;
    /* RabbitMQ's basic.get shows the count on a first delivery too (0). */
    if (wr_queue_counts_deliveries(q) && (e->deliveries > 0 || m->id == WR_BASIC_GET_OK))
        tmp = wr_msg_with_int_header(e->m, "x-delivery-count", e->deliveries);
    wr_deliver_content(ch->c, ch->id, m, tmp ? tmp : e->m);
    wr_msg_unref(tmp);
}

static void cons_deliver(struct wr_consumer *base, struct wr_queue *q, const struct wr_qent *e)
{
    struct chan_consumer *cc = wr_container_of(base, struct chan_consumer, base);
    struct wr_chan *ch = cc->ch;
    struct wr_method m;
    uint64_t tag = ++ch->last_tag;
    struct unacked u;

    /* Only the delivery's arguments are set (wr_method_init would clear
     * the whole union, once per message). */
    m.id = WR_BASIC_DELIVER;
    m.u.basic_deliver = (struct wr_basic_deliver){.consumer_tag = cc->node.key,
                                                  .delivery_tag = tag,
                                                  .redelivered = e->deliveries > 0,
                                                  .exchange = wr_msg_exchange(e->m),
                                                  .routing_key = wr_msg_routing_key(e->m)};
    deliver_counted(ch, q, e, &m);
    count(ch, q, cc->no_ack ? WR_ST_DELIVER_NO_ACK : WR_ST_DELIVER);
    if (e->deliveries > 0)
        count(ch, q, WR_ST_REDELIVER);
    cc->delivered.n++;

    memset(&u, 0, sizeof(u));
    if (!cc->no_ack) {
        u.e = *e;
        if (u.e.deliveries < UINT16_MAX)
            u.e.deliveries++;
        u.q = q;
        u.cons = cc;
        u.at = ack_clock(ch, q);
        if (ua_push(ch, tag, &u) == 0) {
            ua_timed(ch, q, u.at);
            wr_queue_ref(q);
            q->unacked++;
            q->unacked_bytes += e->m->body_len;
            cc->unacked++;
            ch->unacked_live++;
            return;
        }
        /* Out of memory for the ring: the message goes back. */
        wr_queue_requeue_one(q, e);
        return;
    }
    /* A no-ack delivery still takes a tag: keep the ring's index exact. */
    if (ch->ua_n)
        ua_push(ch, tag, &u);
    wr_queue_settled(q, e->m);
}

static void cons_detach_unacked(struct wr_chan *ch, struct chan_consumer *cc)
{
    for (uint32_t i = 0; i < ch->ua_n; i++) {
        struct unacked *u = ua_at(ch, i);
        if (u->e.m && u->cons == cc)
            u->cons = NULL;
    }
}

static void cons_free(struct wr_chan *ch, struct chan_consumer *cc)
{
    wr_list_del(&cc->wake_node);
    if (cc->reply_to)
        ch->reply_to[0] = '\0'; /* its queue goes with it (auto-delete) */
    cons_detach_unacked(ch, cc);
    wr_hmap_del(&ch->consumers, &cc->node);
    ch->nconsumers--;
    free(cc);
}

static void cons_cancelled(struct wr_consumer *base)
{
    struct chan_consumer *cc = wr_container_of(base, struct chan_consumer, base);
    struct wr_chan *ch = cc->ch;
    struct wr_method m;

    if (ch->c->cap_cancel && !ch->closing) {
        wr_method_init(&m, WR_BASIC_CANCEL);
        m.u.basic_cancel.consumer_tag = cc->node.key;
        m.u.basic_cancel.nowait = true;
        wr_conn_send(ch->c, ch->id, &m);
    }
    cons_free(ch, cc);
}

static const struct wr_consumer_ops chan_consumer_ops = {
    cons_can_take,
    cons_deliver,
    cons_cancelled,
};

/* ---- lifecycle ---- */

struct wr_chan *wr_chan_new(struct wr_conn *c, uint16_t id)
{
    struct wr_chan *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->c = c;
    ch->id = id;
    ch->flow_active = true;
    wr_hmap_init(&ch->consumers);
    wr_list_init(&ch->wait_node);
    wr_list_init(&ch->wake);
    wr_list_init(&ch->ua_node);
    return ch;
}

/* Cancel consumers, requeue unacked, drop a half-assembled publish and an
 * open transaction. The channel struct stays (closing) until close-ok. */
static void chan_release(struct wr_chan *ch)
{
    struct wr_hnode *n, *nx;
    size_t it;

    /* Unacked messages go back first, while this channel's consumers still
     * hold their places (taking nothing): a single active consumer's
     * successor then sees them first, in their original order. */
    ch->releasing = true;
    if (ch->ua_n)
        settle_range(ch, 0, ch->ua_n - 1, true, false);
    for (n = wr_hmap_first(&ch->consumers, &it); n; n = nx) {
        struct chan_consumer *cc = wr_container_of(n, struct chan_consumer, node);
        struct wr_queue *q = cc->base.q;
        nx = wr_hmap_next(&ch->consumers, &it, n);
        if (q)
            wr_queue_consumer_remove(q, &cc->base);
        cons_free(ch, cc);
    }
    ch->releasing = false;
    wr_msg_unref(ch->pm);
    ch->pm = NULL;
    ch->ca = CA_IDLE;
    for (uint32_t i = 0; i < ch->txn; i++)
        wr_msg_unref(ch->txo[i].m);
    ch->txn = 0;
}

void wr_chan_free(struct wr_chan *ch)
{
    chan_release(ch);
    wr_list_del(&ch->wait_node);
    wr_list_del(&ch->ua_node);
    free(ch->pc);
    wr_hmap_free(&ch->consumers);
    free(ch->ua);
    free(ch->txo);
    wr_publish_result_free(&ch->pub);
    free(ch);
}

/* The text RabbitMQ closes the channel with (rabbit_channel.erl). */
#define ACK_TIMEOUT_TEXT                                                                           \
    "PRECONDITION_FAILED - delivery acknowledgement on channel %u timed out. Timeout value "       \
    "used: %llu ms. This timeout value can be configured, see consumers doc guide to learn more"

/* Entry i waited longer than its timeout: one warning line, then the
 * channel is closed with 406 and its unacked messages requeued as at any
 * channel close. */
static void ack_timed_out(struct wr_chan *ch, uint32_t i)
{
    const struct unacked *u = ua_at(ch, i);
    char tag[WR_LOG_ESC_MAX], qn[WR_LOG_ESC_MAX], text[256];
    struct wr_str name = wr_queue_name(u->q);
    unsigned long long t = (unsigned long long)ack_timeout(ch, u->q);

    if (u->cons)
        wr_log_esc(tag, sizeof(tag), u->cons->tag, strlen(u->cons->tag));
    wr_log_ctx(WR_LOG_WARNING, ch->c->name,
               "channel %u: delivery tag %llu from queue '%s' in vhost '%s' (%s%s%s) not "
               "acknowledged within %llu ms (consumer_timeout): closing the channel with 406, "
               "%u unacked messages requeued",
               ch->id, (unsigned long long)(ch->ua_first_tag + i),
               wr_log_esc(qn, sizeof(qn), name.ptr, name.len), u->q->vhost->name,
               u->cons ? "consumer '" : "basic.get", u->cons ? tag : "", u->cons ? "'" : "", t,
               ch->unacked_live);
    ch->c->srv->broker->churn.consumer_timeouts++;
    snprintf(text, sizeof(text), ACK_TIMEOUT_TEXT, ch->id, t);
    chan_close(ch, 406, 0, text);
}

/* consumer_timeout changed (SIGHUP): deliveries made while no timeout
 * applied to them count from now if one does now, and what was known of
 * the deadlines is forgotten. Once per reload that changed the value. */
static void ua_recheck(struct wr_chan *ch, uint64_t now)
{
    for (uint32_t i = 0; i < ch->ua_n; i++) {
        struct unacked *u = ua_at(ch, i);
        if (u->e.m && !u->at && ack_timeout(ch, u->q))
            u->at = now;
    }
    ch->ua_mixed = true; /* one scan finds out */
    ch->ua_check = 0;
}

void wr_chan_ack_tick(struct wr_chan *ch, uint64_t now, bool recheck)
{
    uint64_t due;
    uint32_t i;

    if (ch->closing || !ch->unacked_live || ch->c->state >= WR_CS_CLOSING) {
        wr_list_del(&ch->ua_node); /* linked again by its next delivery */
        return;
    }
    if (recheck)
        ua_recheck(ch, now);
    if (now <= ch->ua_check)
        return;
    i = ua_first_due(ch, &due);
    if (i == ch->ua_n || now <= due) {
        ch->ua_check = due; /* exact now, until the next delivery lowers it */
        return;
    }
    wr_list_del(&ch->ua_node);
    ack_timed_out(ch, i);
}

struct wr_chan *wr_chan_of_unacked_node(struct wr_list *n)
{
    return wr_container_of(n, struct wr_chan, ua_node);
}

bool wr_chan_closing(const struct wr_chan *ch)
{
    return ch->closing;
}

bool wr_chan_expects_content(const struct wr_chan *ch)
{
    return ch->ca != CA_IDLE;
}

void wr_chan_output_ready(struct wr_chan *ch)
{
    if (!ch->closing)
        wake_consumers(ch);
}

/* ---- confirms ---- */

static void confirm_flush(struct wr_chan *ch)
{
    struct wr_method m;
    if (ch->confirm_upto <= ch->confirm_sent || ch->closing)
        return;
    wr_method_init(&m, WR_BASIC_ACK);
    m.u.basic_ack.delivery_tag = ch->confirm_upto;
    m.u.basic_ack.multiple = ch->confirm_upto - ch->confirm_sent > 1;
    wr_conn_send(ch->c, ch->id, &m);
    ch->confirm_sent = ch->confirm_upto;
}

void wr_chan_flush(struct wr_chan *ch)
{
    confirm_flush(ch);
}

static void confirm_now(struct wr_chan *ch, uint64_t seq, bool ok)
{
    struct wr_method m;
    if (ok) {
        count(ch, NULL, WR_ST_CONFIRM);
        ch->confirm_upto = seq;
        return;
    }
    confirm_flush(ch);
    wr_method_init(&m, WR_BASIC_NACK);
    m.u.basic_nack.delivery_tag = seq;
    wr_conn_send(ch->c, ch->id, &m);
    ch->confirm_upto = ch->confirm_sent = seq;
}

/* Settle publish `seq`: ack (ok) or nack, once the journal has reached
 * `pos` (0: nothing to wait for). */
static void confirm_settle(struct wr_chan *ch, uint64_t seq, bool ok, uint64_t pos)
{
    struct pconfirm *p;
    if (!seq)
        return;
    if (!ch->pc_n && !pos) {
        confirm_now(ch, seq, ok);
        return;
    }
    if (ch->pc_n == ch->pc_cap) {
        uint32_t cap = ch->pc_cap ? ch->pc_cap * 2 : 64;
        struct pconfirm *a = malloc((size_t)cap * sizeof(*a));
        if (!a) {
            confirm_now(ch, seq, false);
            return;
        }
        for (uint32_t i = 0; i < ch->pc_n; i++)
            a[i] = ch->pc[(ch->pc_head + i) & (ch->pc_cap - 1)];
        free(ch->pc);
        ch->pc = a;
        ch->pc_cap = cap;
        ch->pc_head = 0;
    }
    p = &ch->pc[(ch->pc_head + ch->pc_n) & (ch->pc_cap - 1)];
    p->seq = seq;
    p->pos = pos;
    p->ok = ok;
    ch->pc_n++;
    if (pos)
        wr_server_wait_store(ch->c->srv, &ch->wait_node);
}

void wr_chan_store_synced(struct wr_chan *ch, uint64_t synced, bool failed)
{
    while (ch->pc_n) {
        struct pconfirm *p = &ch->pc[ch->pc_head];
        /* What is not durable yet never will be once the store failed. */
        if (p->pos > synced && !failed)
            break;
        confirm_now(ch, p->seq, p->ok && p->pos <= synced);
        ch->pc_head = (ch->pc_head + 1) & (ch->pc_cap - 1);
        ch->pc_n--;
    }
    confirm_flush(ch);
    if (!ch->pc_n)
        wr_list_del(&ch->wait_node);
}

struct wr_chan *wr_chan_of_wait_node(struct wr_list *n)
{
    return wr_container_of(n, struct wr_chan, wait_node);
}

/* ---- publishing ---- */

static void send_return(struct wr_chan *ch, struct wr_msg *m, int code, const char *text)
{
    struct wr_method r;
    wr_method_init(&r, WR_BASIC_RETURN);
    r.u.basic_return.reply_code = (uint16_t)code;
    r.u.basic_return.reply_text = wr_str_c(text);
    r.u.basic_return.exchange = wr_msg_exchange(m);
    r.u.basic_return.routing_key = wr_msg_routing_key(m);
    wr_deliver_content(ch->c, ch->id, &r, m);
}

/* Route a complete message (broker/publish.c), then settle the
 * publisher's side: the error, the mandatory return, flow control, the
 * confirm. Consumes the caller's reference. */
static void route_message(struct wr_chan *ch, struct wr_msg *m, bool mandatory, uint64_t seq)
{
    struct wr_publish_result *res = &ch->pub;
    struct wr_errbuf err;

    struct wr_principal *who = principal(ch);

    if (!who) {
        wr_msg_unref(m);
        return;
    }
    if (wr_vhost_publish_by_name(ch->c->vh, who, &m, res, &err) < 0) {
        chan_error(ch, err.code, WR_BASIC_PUBLISH, err.text);
        wr_msg_unref(m);
        return;
    }
    if (res->journal_failed) {
        confirm_settle(ch, seq, false, 0);
        wr_msg_unref(m);
        return;
    }
    for (uint32_t i = 0; i < res->route.n; i++) {
        struct wr_queue *q = res->route.q[i];
        if (q->ready > WR_FLOW_HIGH && wr_queue_flow_worth_pausing(q))
            wr_conn_flow_pause(ch->c, q);
    }
    count(ch, NULL, WR_ST_PUBLISH);
    if (seq)
        count(ch, NULL, WR_ST_PUBLISH_CONFIRM);
    if (res->route.n == 0 && !res->route.taken && mandatory) {
        count(ch, NULL, WR_ST_RETURN_UNROUTABLE);
        send_return(ch, m, 312, "NO_ROUTE");
    } else if (res->route.n == 0 && !res->route.taken) {
        count(ch, NULL, WR_ST_DROP_UNROUTABLE);
    }
    /* A queue that refused it (x-overflow reject-publish) makes it a nack. */
    confirm_settle(ch, seq, !res->rejected, res->journal_pos);
    wr_msg_unref(m);
    wr_broker_mem_check(ch->c->srv->broker);
}

static int tx_add(struct wr_chan *ch, const struct tx_op *op)
{
    if (ch->txn == ch->txcap) {
        uint32_t cap = ch->txcap ? ch->txcap * 2 : 16;
        struct tx_op *a = realloc(ch->txo, (size_t)cap * sizeof(*a));
        if (!a)
            return WR_ENOMEM;
        ch->txo = a;
        ch->txcap = cap;
    }
    ch->txo[ch->txn++] = *op;
    return 0;
}

static void publish_complete(struct wr_chan *ch)
{
    struct wr_msg *m = ch->pm;
    /* The TTL clock starts when the whole message is in (bodies may take
     * several reads), in the same loop turn as the routing. */
    m->published_ms = wr_now_ms();
    ch->pm = NULL;
    ch->ca = CA_IDLE;
    if (ch->tx) {
        struct tx_op op = {m, ch->pub_mandatory, 0, 0, false, false};
        if (tx_add(ch, &op) < 0) {
            wr_msg_unref(m);
            chan_errorf(ch, WR_EINTERNAL, WR_BASIC_PUBLISH, "out of memory");
        }
        return;
    }
    route_message(ch, m, ch->pub_mandatory, ch->pub_confirm_seq);
}

static void on_publish(struct wr_chan *ch, const struct wr_basic_publish *a)
{
    if (a->immediate) {
        wr_conn_error(ch->c, 540, WR_BASIC_PUBLISH, "immediate=true");
        return;
    }
    ch->pub_xlen = (uint8_t)a->exchange.len;
    memcpy(ch->pub_x, a->exchange.ptr ? a->exchange.ptr : "", a->exchange.len);
    ch->pub_rklen = (uint8_t)a->routing_key.len;
    memcpy(ch->pub_rk, a->routing_key.ptr ? a->routing_key.ptr : "", a->routing_key.len);
    ch->pub_mandatory = a->mandatory;
    ch->pub_confirm_seq = ch->confirm ? ++ch->pub_seq : 0;
    ch->ca = CA_HEADER;
}

/* A message whose reply_to names this channel's direct reply-to queue. */
static struct wr_msg *new_msg_reply_to(struct wr_chan *ch, struct wr_content_header *h,
                                       unsigned flags)
{
    size_t plen;
    uint8_t *buf;
    struct wr_wb w;
    struct wr_msg *m = NULL;

    h->props.reply_to = wr_str_c(ch->reply_to);
    plen = wr_basic_props_size(&h->props);
    if (!(buf = malloc(plen)))
        return NULL;
    w = wr_wb_init(buf, plen);
    if (wr_basic_props_encode(&w, &h->props) == 0)
        m = wr_msg_new(&ch->c->srv->broker->msgs, (struct wr_str){ch->pub_x, ch->pub_xlen},
                       (struct wr_str){ch->pub_rk, ch->pub_rklen}, buf, (uint32_t)plen,
                       h->body_size, flags);
    free(buf);
    return m;
}

/* max_message_size: refused on the header, before any body is read (a
 * channel error, as RabbitMQ). True when refused. */
static bool too_large(struct wr_chan *ch, uint64_t body_size)
{
    uint64_t max = ch->c->srv->conf->max_message_size;
    if (body_size <= max)
        return false;
    chan_errorf(ch, WR_EPRECONDITION_FAILED, WR_BASIC_PUBLISH,
                "message size %llu is larger than configured max size %llu",
                (unsigned long long)body_size, (unsigned long long)max);
    return true;
}

static void out_of_memory_for(struct wr_chan *ch, uint64_t body_size)
{
    chan_errorf(ch, WR_EINTERNAL, WR_BASIC_PUBLISH, "out of memory for a %llu byte message",
                (unsigned long long)body_size);
}

void wr_chan_header(struct wr_chan *ch, const struct wr_frame *f)
{
    struct wr_content_header h;
    struct wr_msg *m;
    unsigned flags = 0;
    int64_t ttl = -1;
    int rc;

    if (ch->ca != CA_HEADER) {
        wr_conn_error(ch->c, 505, 0, "expected content body, got content header");
        return;
    }
    rc = wr_content_header_decode(f->payload, f->size, &h);
    if (rc < 0) {
        if (rc == WR_EUNEXPECTED_FRAME)
            wr_conn_error(ch->c, 505, WR_BASIC_PUBLISH, "content header for class %u", h.class_id);
        else
            wr_conn_error(ch->c, rc == WR_EFRAME ? 501 : 502, WR_BASIC_PUBLISH,
                          "cannot decode content header");
        return;
    }
    if (too_large(ch, h.body_size))
        return;
    /* user_id is checked with the other publish checks (broker/publish.c,
     * after the permissions, as RabbitMQ orders them; impersonators pass). */
    if ((h.props.flags & WR_BASIC_EXPIRATION_FLAG) &&
        !wr_msg_parse_expiration(h.props.expiration, &ttl)) {
        chan_errorf(ch, WR_EPRECONDITION_FAILED, WR_BASIC_PUBLISH, "invalid expiration '%.*s'",
                    (int)h.props.expiration.len, h.props.expiration.ptr);
        return;
    }
    if ((h.props.flags & WR_BASIC_DELIVERY_MODE_FLAG) && h.props.delivery_mode == 2)
        flags |= WR_MSG_PERSISTENT | WR_MSG_EXT; /* EXT: room for its journal identity */
    if (ttl >= 0)
        flags |= WR_MSG_EXT;
    if ((h.props.flags & WR_BASIC_REPLY_TO_FLAG) && wr_str_eqc(h.props.reply_to, WR_REPLY_TO)) {
        if (!ch->reply_to[0]) {
            chan_errorf(ch, WR_EPRECONDITION_FAILED, WR_BASIC_PUBLISH,
                        "fast reply consumer does not exist");
            return;
        }
        m = new_msg_reply_to(ch, &h, flags);
    } else {
        m = wr_msg_new(&ch->c->srv->broker->msgs, (struct wr_str){ch->pub_x, ch->pub_xlen},
                       (struct wr_str){ch->pub_rk, ch->pub_rklen}, h.raw_props.ptr, h.raw_props.len,
                       h.body_size, flags);
    }
    if (!m) {
        out_of_memory_for(ch, h.body_size);
        return;
    }
    if (flags & WR_MSG_EXT)
        wr_msg_ext(m)->ttl_ms = ttl;
    m->priority = (h.props.flags & WR_BASIC_PRIORITY_FLAG) ? h.props.priority : 0;
    ch->pm = m;
    ch->pm_have = 0;
    ch->ca = CA_BODY;
    if (h.body_size == 0)
        publish_complete(ch);
}

void wr_chan_body(struct wr_chan *ch, struct evbuffer *in, const struct wr_frame *f)
{
    struct wr_msg *m = ch->pm;
    if (ch->ca != CA_BODY || !m) {
        evbuffer_drain(in, (size_t)f->size + WR_FRAME_OVERHEAD);
        wr_conn_error(ch->c, 505, 0, "expected content header, got content body");
        return;
    }
    if (f->size > m->body_len - ch->pm_have) {
        evbuffer_drain(in, (size_t)f->size + WR_FRAME_OVERHEAD);
        wr_conn_error(ch->c, 505, WR_BASIC_PUBLISH,
                      "content body exceeds the size in the content header");
        return;
    }
    wr_frame_take_body(in, f, wr_msg_body(m) + ch->pm_have);
    ch->pm_have += f->size;
    if (ch->pm_have == m->body_len)
        publish_complete(ch);
}

/* A publish the I/O thread assembled (net/asm.h): its basic.publish was
 * just handled (on_publish), and m is its loose message, with what the
 * content header said (properties, TTL, priority, persistence) and the
 * whole body. What wr_chan_header checks against this broker's state is
 * checked here, in the same order; m is consumed. */
void wr_chan_assembled(struct wr_chan *ch, struct wr_msg *m)
{
    if (ch->ca != CA_HEADER || too_large(ch, m->body_len)) { /* (the caller checked ca) */
        wr_msg_free_loose(m);
        return;
    }
    if (wr_msg_adopt(&ch->c->srv->broker->msgs, m, (struct wr_str){ch->pub_x, ch->pub_xlen},
                     (struct wr_str){ch->pub_rk, ch->pub_rklen}) < 0) {
        out_of_memory_for(ch, m->body_len);
        wr_msg_free_loose(m);
        return;
    }
    ch->pm = m;
    ch->pm_have = m->body_len;
    ch->ca = CA_BODY;
    publish_complete(ch);
}

/* ---- basic class ---- */

/* Direct reply-to: consuming from amq.rabbitmq.reply-to (no-ack only)
 * makes a private, auto-delete queue with a unique name for this channel;
 * publishes on the channel with reply_to=amq.rabbitmq.reply-to get that
 * name, and replies reach it through the default exchange like any queue. */
static int open_reply_queue(struct wr_chan *ch, const struct wr_basic_consume *a,
                            struct wr_queue **out)
{
    struct wr_queue_decl d;
    struct wr_errbuf err;
    bool created;
    char name[64];

    if (!a->no_ack) {
        chan_errorf(ch, WR_EPRECONDITION_FAILED, WR_BASIC_CONSUME,
                    "reply consumer cannot acknowledge");
        return WR_EPRECONDITION_FAILED;
    }
    if (ch->reply_to[0]) {
        chan_errorf(ch, WR_EPRECONDITION_FAILED, WR_BASIC_CONSUME, "reply consumer already set");
        return WR_EPRECONDITION_FAILED;
    }
    do
        wr_random_name(name, sizeof(name), WR_REPLY_TO ".", 22);
    while (wr_vhost_queue(ch->c->vh, wr_str_c(name)));
    memset(&d, 0, sizeof(d));
    d.name = wr_str_c(name);
    d.exclusive = d.auto_delete = d.internal = true;
    d.owner = ch->c;
    if (wr_vhost_queue_declare(ch->c->vh, &d, out, &created, &err) < 0) {
        chan_error(ch, err.code, WR_BASIC_CONSUME, err.text);
        return err.code;
    }
    wr_list_add_tail(&ch->c->exclusive_queues, &(*out)->owner_node);
    memcpy(ch->reply_to, name, strlen(name) + 1);
    return 0;
}

static void on_consume(struct wr_chan *ch, const struct wr_basic_consume *a)
{
    struct wr_errbuf err;
    struct wr_queue *q;
    struct chan_consumer *cc;
    struct wr_method m;
    struct wr_fv v;
    struct wr_str qname = a->queue;
    int64_t prio = 0;
    uint64_t stream_start = 0;
    struct wr_stream_name *stream_name = NULL;

    if (!queue_name(ch, &qname, WR_BASIC_CONSUME))
        return;
    /* consumer_max_per_channel, as RabbitMQ 3.12.14+ checks it: before the
     * queue, and a reused tag gets its own error below. */
    if (ch->c->srv->conf->consumer_max_per_channel &&
        ch->nconsumers >= (uint64_t)ch->c->srv->conf->consumer_max_per_channel &&
        !(a->consumer_tag.len && wr_hmap_get(&ch->consumers, a->consumer_tag))) {
        wr_conn_error(ch->c, 530, WR_BASIC_CONSUME,
                      "reached maximum (%lld) of consumers per channel",
                      (long long)ch->c->srv->conf->consumer_max_per_channel);
        return;
    }
    if (wr_str_eqc(qname, WR_REPLY_TO)) {
        if (open_reply_queue(ch, a, &q) < 0)
            return;
    } else if (!may(ch, WR_PERM_READ, "queue", qname, WR_BASIC_CONSUME)) {
        return;
    } else if (wr_vhost_queue_use(ch->c->vh, qname, ch->c, &q, &err) < 0) {
        return chan_error(ch, err.code, WR_BASIC_CONSUME, err.text);
    }
    if (a->consumer_tag.len && wr_hmap_get(&ch->consumers, a->consumer_tag)) {
        wr_conn_error(ch->c, 530, WR_BASIC_CONSUME, "attempt to reuse consumer tag '%.*s'",
                      (int)a->consumer_tag.len, a->consumer_tag.ptr);
        return;
    }
    /* RabbitMQ 3.10: a quorum queue has no channel-wide prefetch. */
    if (q->s.type == WR_QTYPE_QUORUM && ch->prefetch_global) {
        wr_conn_error(ch->c, 540, WR_BASIC_CONSUME,
                      "queue '%s' in vhost '%s' does not support global qos", q->name,
                      ch->c->vh->name);
        return;
    }
    if (q->stream) {
        /* RabbitMQ 3.10's answers: no automatic acknowledgement, a
         * per-consumer prefetch, then the offset. */
        struct wr_fv off;
        if (!ch->prefetch_next)
            return chan_errorf(ch, WR_EPRECONDITION_FAILED, WR_BASIC_CONSUME,
                               "consumer prefetch count is not set for 'queue '%s' in vhost "
                               "'%s''",
                               q->name, ch->c->vh->name);
        if (a->no_ack) {
            wr_conn_error(ch->c, 540, WR_BASIC_CONSUME,
                          "automatic acknowledgement not supported by stream queues queue '%s' in "
                          "vhost '%s'",
                          q->name, ch->c->vh->name);
            return;
        }
        bool has_off = wr_table_get(a->arguments, "x-stream-offset", &off) == 1;
        if (wr_stream_start(q, has_off ? &off : NULL, &stream_start, &err) < 0)
            return chan_error(ch, err.code, WR_BASIC_CONSUME, err.text);
        /* A named consumer without an offset resumes after the last one
         * it acknowledged under that name (Warren's; RabbitMQ keeps such
         * offsets only through its stream protocol). */
        if (wr_table_get(a->arguments, "x-stream-consumer-name", &off) == 1) {
            if (!(stream_name = wr_stream_name_get(q, &off, &err)))
                return chan_error(ch, err.code, WR_BASIC_CONSUME, err.text);
            if (!has_off && stream_name->next != UINT64_MAX)
                stream_start =
                    stream_name->next < q->stream->first ? q->stream->first : stream_name->next;
        }
    } else if (wr_table_get(a->arguments, "x-stream-offset", &v) == 1) {
        return chan_errorf(ch, WR_EPRECONDITION_FAILED, WR_BASIC_CONSUME,
                           "invalid arg 'x-stream-offset' for queue '%s' in vhost '%s' of queue "
                           "type %s",
                           q->name, ch->c->vh->name, wr_qtype_module(q->s.type));
    }
    if (q->exclusive_consumer || (a->exclusive && q->nconsumers))
        return chan_errorf(ch, WR_EACCESS_REFUSED, WR_BASIC_CONSUME,
                           "queue '%s' in vhost '%s' in exclusive use", q->name, ch->c->vh->name);
    if (wr_table_get(a->arguments, "x-priority", &v) == 1) {
        if (!wr_fv_int(&v, &prio))
            return chan_errorf(ch, WR_EPRECONDITION_FAILED, WR_BASIC_CONSUME,
                               "invalid arg 'x-priority'");
    }
    cc = calloc(1, sizeof(*cc));
    if (!cc)
        return chan_errorf(ch, WR_EINTERNAL, WR_BASIC_CONSUME, "out of memory");
    if (a->consumer_tag.len) {
        memcpy(cc->tag, a->consumer_tag.ptr, a->consumer_tag.len);
        cc->tag[a->consumer_tag.len] = '\0';
    } else {
        do
            wr_random_name(cc->tag, sizeof(cc->tag), "amq.ctag-", 22);
        while (wr_hmap_get(&ch->consumers, wr_str_c(cc->tag)));
    }
    cc->node.key = wr_str_c(cc->tag);
    if (a->consumer_tag.len) /* the tag may hold NUL bytes */
        cc->node.key.len = a->consumer_tag.len;
    cc->ch = ch;
    wr_list_init(&cc->wake_node);
    cc->no_ack = a->no_ack;
    cc->prefetch = ch->prefetch_next;
    cc->base.ops = &chan_consumer_ops;
    cc->reply_to = q->name == NULL ? false : strncmp(q->name, WR_REPLY_TO ".", 22) == 0;
    cc->base.exclusive = a->exclusive;
    cc->base.priority = (int)prio;
    cc->base.stream_next = stream_start;
    cc->base.stream_name = stream_name;
    if (wr_hmap_put(&ch->consumers, &cc->node) < 0) {
        free(cc);
        return chan_errorf(ch, WR_EINTERNAL, WR_BASIC_CONSUME, "out of memory");
    }
    ch->nconsumers++;
    if (!a->nowait) {
        wr_method_init(&m, WR_BASIC_CONSUME_OK);
        m.u.basic_consume_ok.consumer_tag = cc->node.key;
        wr_conn_send(ch->c, ch->id, &m);
    }
    /* consume-ok goes out before the first delivery. */
    wr_queue_consumer_add(q, &cc->base);
}

static void on_cancel(struct wr_chan *ch, const struct wr_basic_cancel *a)
{
    struct wr_hnode *n = wr_hmap_get(&ch->consumers, a->consumer_tag);
    struct wr_method m;
    if (n) {
        struct chan_consumer *cc = wr_container_of(n, struct chan_consumer, node);
        struct wr_queue *q = cc->base.q;
        if (q)
            wr_queue_consumer_remove(q, &cc->base);
        cons_free(ch, cc);
    }
    if (!a->nowait) {
        wr_method_init(&m, WR_BASIC_CANCEL_OK);
        m.u.basic_cancel_ok.consumer_tag = a->consumer_tag;
        wr_conn_send(ch->c, ch->id, &m);
    }
}

static void on_get(struct wr_chan *ch, const struct wr_basic_get *a)
{
    struct wr_errbuf err;
    struct wr_queue *q;
    struct wr_qent e;
    struct wr_method m;
    struct wr_str qname = a->queue;

    if (!queue_name(ch, &qname, WR_BASIC_GET) ||
        !may(ch, WR_PERM_READ, "queue", qname, WR_BASIC_GET))
        return;
    if (wr_vhost_queue_use(ch->c->vh, qname, ch->c, &q, &err) < 0)
        return chan_error(ch, err.code, WR_BASIC_GET, err.text);
    if (q->stream) {
        wr_conn_error(ch->c, 540, WR_BASIC_GET,
                      "basic.get not supported by stream queues queue '%s' in vhost '%s'", q->name,
                      ch->c->vh->name);
        return;
    }
    if (!wr_queue_get(q, &e)) {
        count(ch, q, WR_ST_GET_EMPTY);
        wr_method_init(&m, WR_BASIC_GET_EMPTY);
        wr_conn_send(ch->c, ch->id, &m);
        return;
    }
    wr_method_init(&m, WR_BASIC_GET_OK);
    m.u.basic_get_ok.delivery_tag = ++ch->last_tag;
    m.u.basic_get_ok.redelivered = e.deliveries > 0;
    m.u.basic_get_ok.exchange = wr_msg_exchange(e.m);
    m.u.basic_get_ok.routing_key = wr_msg_routing_key(e.m);
    m.u.basic_get_ok.message_count = wr_queue_ready(q);
    deliver_counted(ch, q, &e, &m);
    count(ch, q, a->no_ack ? WR_ST_GET_NO_ACK : WR_ST_GET);
    if (e.deliveries > 0)
        count(ch, q, WR_ST_REDELIVER);
    if (a->no_ack) {
        struct unacked hole;
        memset(&hole, 0, sizeof(hole));
        if (ch->ua_n)
            ua_push(ch, ch->last_tag, &hole);
        wr_queue_settled(q, e.m);
    } else {
        struct unacked u;
        memset(&u, 0, sizeof(u));
        u.e = e;
        if (u.e.deliveries < UINT16_MAX)
            u.e.deliveries++;
        u.q = q;
        u.at = ack_clock(ch, q);
        if (ua_push(ch, ch->last_tag, &u) < 0) {
            wr_queue_requeue_one(q, &e);
            return;
        }
        ua_timed(ch, q, u.at);
        wr_queue_ref(q);
        q->unacked++;
        q->unacked_bytes += e.m->body_len;
        ch->unacked_live++;
    }
}

/* The first delivery from a stream among the live entries first..last
 * (NULL: none): a stream takes no nack, reject or recover. */
static struct wr_queue *stream_among(struct wr_chan *ch, uint32_t first, uint32_t last)
{
    for (uint32_t i = first; i <= last && i < ch->ua_n; i++) {
        struct unacked *u = ua_at(ch, i);
        if (u->e.m && u->q->stream)
            return u->q;
    }
    return NULL;
}

static bool stream_refuses(struct wr_chan *ch, uint32_t first, uint32_t last, uint32_t method_id,
                           const char *what)
{
    struct wr_queue *q = stream_among(ch, first, last);
    if (!q)
        return false;
    wr_conn_error(ch->c, 540, method_id,
                  "%s not supported by stream queues queue '%s' in vhost '%s'", what, q->name,
                  ch->c->vh->name);
    return true;
}

/* ack / reject / nack, applied now (or at tx.commit). */
static void settle(struct wr_chan *ch, int kind, uint64_t tag, bool multiple, bool requeue,
                   uint32_t method_id)
{
    struct unacked *u;
    uint32_t idx;
    const char *what = "basic.nack and basic.reject";

    if (multiple && tag == 0) {
        if (kind != TX_ACK && ch->ua_n && stream_refuses(ch, 0, ch->ua_n - 1, method_id, what))
            return;
        if (ch->ua_n)
            settle_range(ch, 0, ch->ua_n - 1, kind != TX_ACK && requeue, kind != TX_ACK);
        wake_settled(ch);
        return;
    }
    u = ua_find(ch, tag);
    if (!u) {
        chan_errorf(ch, WR_EPRECONDITION_FAILED, method_id, "unknown delivery tag %llu",
                    (unsigned long long)tag);
        return;
    }
    idx = (uint32_t)(tag - ch->ua_first_tag);
    if (kind != TX_ACK && stream_refuses(ch, multiple ? 0 : idx, idx, method_id, what))
        return;
    settle_range(ch, multiple ? 0 : idx, idx, kind != TX_ACK && requeue, kind != TX_ACK);
    wake_settled(ch);
}

static void on_settle(struct wr_chan *ch, int kind, uint64_t tag, bool multiple, bool requeue,
                      uint32_t method_id)
{
    if (ch->tx) {
        struct tx_op op = {NULL, false, kind, tag, multiple, requeue};
        /* Check the tag now so a bad one fails at once, as RabbitMQ does. */
        if (!(multiple && tag == 0) && !ua_find(ch, tag)) {
            chan_errorf(ch, WR_EPRECONDITION_FAILED, method_id, "unknown delivery tag %llu",
                        (unsigned long long)tag);
            return;
        }
        if (tx_add(ch, &op) < 0)
            chan_errorf(ch, WR_EINTERNAL, method_id, "out of memory");
        return;
    }
    settle(ch, kind, tag, multiple, requeue, method_id);
}

static void on_qos(struct wr_chan *ch, const struct wr_basic_qos *a)
{
    struct wr_method m;
    if (a->prefetch_size != 0) {
        wr_conn_error(ch->c, 540, WR_BASIC_QOS, "prefetch_size!=0 (%u)", a->prefetch_size);
        return;
    }
    /* RabbitMQ 3.10: global=true limits the channel; global=false sets the
     * limit of consumers created from now on and lifts the channel limit. */
    if (a->global) {
        ch->prefetch_global = a->prefetch_count;
    } else {
        ch->prefetch_next = a->prefetch_count;
        ch->prefetch_global = 0;
    }
    wr_method_init(&m, WR_BASIC_QOS_OK);
    wr_conn_send(ch->c, ch->id, &m);
    wake_consumers(ch);
}

static void on_recover(struct wr_chan *ch, bool requeue, bool reply)
{
    struct wr_method m;
    if (!requeue) {
        wr_conn_error(ch->c, 540, reply ? WR_BASIC_RECOVER : WR_BASIC_RECOVER_ASYNC,
                      "requeue=false");
        return;
    }
    if (ch->ua_n &&
        stream_refuses(ch, 0, ch->ua_n - 1, reply ? WR_BASIC_RECOVER : WR_BASIC_RECOVER_ASYNC,
                       "basic.recover"))
        return;
    if (ch->ua_n)
        settle_range(ch, 0, ch->ua_n - 1, true, false);
    if (reply) {
        wr_method_init(&m, WR_BASIC_RECOVER_OK);
        wr_conn_send(ch->c, ch->id, &m);
    }
}

/* ---- tx ---- */

static void on_tx(struct wr_chan *ch, uint32_t id)
{
    struct wr_method m;
    if (id == WR_TX_SELECT) {
        if (ch->confirm)
            return chan_errorf(ch, WR_EPRECONDITION_FAILED, id,
                               "cannot switch from confirm to tx mode");
        ch->tx = true;
        wr_method_init(&m, WR_TX_SELECT_OK);
        wr_conn_send(ch->c, ch->id, &m);
        return;
    }
    if (!ch->tx)
        return chan_errorf(ch, WR_EPRECONDITION_FAILED, id, "channel is not transactional");
    if (id == WR_TX_COMMIT) {
        uint32_t n = ch->txn;
        struct tx_op *ops = ch->txo;
        ch->txo = NULL;
        ch->txn = ch->txcap = 0;
        ch->tx = false; /* apply directly */
        for (uint32_t i = 0; i < n && !ch->closing; i++) {
            if (ops[i].m) {
                route_message(ch, ops[i].m, ops[i].mandatory, 0);
                ops[i].m = NULL;
            } else {
                settle(ch, ops[i].kind, ops[i].tag, ops[i].multiple, ops[i].requeue,
                       ops[i].kind == TX_ACK ? WR_BASIC_ACK : WR_BASIC_NACK);
            }
        }
        for (uint32_t i = 0; i < n; i++)
            wr_msg_unref(ops[i].m);
        free(ops);
        if (ch->closing)
            return;
        ch->tx = true;
        wr_method_init(&m, WR_TX_COMMIT_OK);
    } else {
        for (uint32_t i = 0; i < ch->txn; i++)
            wr_msg_unref(ch->txo[i].m);
        ch->txn = 0;
        wr_method_init(&m, WR_TX_ROLLBACK_OK);
    }
    wr_conn_send(ch->c, ch->id, &m);
}

/* ---- exchange and queue class ---- */

static void reply(struct wr_chan *ch, bool nowait, uint32_t id)
{
    struct wr_method m;
    if (nowait)
        return;
    wr_method_init(&m, id);
    wr_conn_send(ch->c, ch->id, &m);
}

static void on_exchange_declare(struct wr_chan *ch, const struct wr_exchange_declare *a)
{
    struct wr_exchange_decl d = {a->exchange, a->type,        a->arguments, a->passive,
                                 a->durable,  a->auto_delete, a->internal};
    struct wr_errbuf err;
    struct wr_exchange *x;
    if (!a->passive && a->exchange.len) {
        /* An unknown type is a connection error before any check. */
        if (!wr_xtype_find(a->type))
            return chan_errorf(ch, WR_ECOMMAND_INVALID, WR_EXCHANGE_DECLARE,
                               "unknown exchange type '%.*s'", (int)a->type.len, a->type.ptr);
        if (!may(ch, WR_PERM_CONFIGURE, "exchange", a->exchange, WR_EXCHANGE_DECLARE))
            return;
        if (!wr_vhost_exchange(ch->c->vh, a->exchange) &&
            !may_name_exchange_arg(ch, "exchange", a->exchange, a->arguments, "alternate-exchange",
                                   WR_EXCHANGE_DECLARE))
            return;
    }
    if (wr_vhost_exchange_declare(ch->c->vh, &d, &x, &err) < 0)
        return chan_error(ch, err.code, WR_EXCHANGE_DECLARE, err.text);
    reply(ch, a->nowait, WR_EXCHANGE_DECLARE_OK);
}

static void on_queue_declare(struct wr_chan *ch, const struct wr_queue_declare *a)
{
    struct wr_queue_decl d = {a->queue,       a->arguments, a->passive, a->durable, a->exclusive,
                              a->auto_delete, ch->c,        false,      false};
    struct wr_errbuf err;
    struct wr_queue *q;
    struct wr_method m;
    bool created;
    char gen[32];

    if (wr_str_eqc(a->queue, WR_REPLY_TO)) {
        /* The pseudo-queue exists for everyone, as in RabbitMQ. */
        if (a->nowait)
            return;
        wr_method_init(&m, WR_QUEUE_DECLARE_OK);
        m.u.queue_declare_ok.queue = a->queue;
        m.u.queue_declare_ok.consumer_count = 1;
        wr_conn_send(ch->c, ch->id, &m);
        return;
    }
    if (!a->passive) {
        /* A server-named queue is checked under its name. */
        if (!d.name.len) {
            do
                wr_random_name(gen, sizeof(gen), "amq.gen-", 22);
            while (wr_vhost_queue(ch->c->vh, wr_str_c(gen)));
            d.name = wr_str_c(gen);
            d.internal = true; /* its "amq." prefix is ours */
            d.server_named = true;
        }
        if (!may(ch, WR_PERM_CONFIGURE, "queue", d.name, WR_QUEUE_DECLARE))
            return;
        if (!wr_vhost_queue(ch->c->vh, d.name) &&
            !may_name_exchange_arg(ch, "queue", d.name, a->arguments, "x-dead-letter-exchange",
                                   WR_QUEUE_DECLARE))
            return;
    }
    if (wr_vhost_queue_declare(ch->c->vh, &d, &q, &created, &err) < 0)
        return chan_error(ch, err.code, WR_QUEUE_DECLARE, err.text);
    if (!a->passive)
        ch->c->srv->broker->churn.queues_declared++;
    if (created && q->exclusive)
        wr_list_add_tail(&ch->c->exclusive_queues, &q->owner_node);
    set_last_queue(ch, wr_queue_name(q));
    if (a->nowait)
        return;
    wr_method_init(&m, WR_QUEUE_DECLARE_OK);
    m.u.queue_declare_ok.queue = wr_queue_name(q);
    m.u.queue_declare_ok.message_count = wr_queue_ready(q);
    /* (RabbitMQ 3.10 counts a stream's consumers as 0) */
    m.u.queue_declare_ok.consumer_count = q->stream ? 0 : q->nconsumers;
    wr_conn_send(ch->c, ch->id, &m);
}

/* queue.bind and queue.unbind: an empty queue name is the last declared
 * queue, and with an empty routing key the key is that name too. */
static void queue_binding(struct wr_chan *ch, uint32_t id, struct wr_str exchange,
                          struct wr_str queue, struct wr_str key, struct wr_str args, bool nowait)
{
    struct wr_vhost *vh = ch->c->vh;
    struct wr_str qname = queue;
    struct wr_errbuf err;
    int rc;

    if (!queue_name(ch, &qname, id))
        return;
    if (!queue.len && !key.len)
        key = qname;
    if (!may_bind(ch, "queue", qname, exchange, key, id))
        return;
    rc = id == WR_QUEUE_BIND ? wr_vhost_bind(vh, exchange, qname, false, key, args, ch->c, &err)
                             : wr_vhost_unbind(vh, exchange, qname, false, key, args, ch->c, &err);
    if (rc < 0)
        return chan_error(ch, err.code, id, err.text);
    reply(ch, nowait, id == WR_QUEUE_BIND ? WR_QUEUE_BIND_OK : WR_QUEUE_UNBIND_OK);
}

static void on_method_q(struct wr_chan *ch, const struct wr_method *mm)
{
    struct wr_errbuf err;
    struct wr_vhost *vh = ch->c->vh;
    struct wr_method m;
    struct wr_queue *q;
    struct wr_str qname;
    uint32_t count;

    switch (mm->id) {
    case WR_QUEUE_BIND: {
        const struct wr_queue_bind *a = &mm->u.queue_bind;
        return queue_binding(ch, mm->id, a->exchange, a->queue, a->routing_key, a->arguments,
                             a->nowait);
    }
    case WR_QUEUE_UNBIND: {
        const struct wr_queue_unbind *a = &mm->u.queue_unbind;
        return queue_binding(ch, mm->id, a->exchange, a->queue, a->routing_key, a->arguments,
                             false);
    }
    case WR_QUEUE_PURGE: {
        const struct wr_queue_purge *a = &mm->u.queue_purge;
        qname = a->queue;
        if (!queue_name(ch, &qname, mm->id) || !may(ch, WR_PERM_READ, "queue", qname, mm->id))
            return;
        if (wr_vhost_queue_use(vh, qname, ch->c, &q, &err) < 0)
            return chan_error(ch, err.code, mm->id, err.text);
        if (q->stream)
            return wr_conn_error(ch->c, 540, mm->id,
                                 "queue.purge not supported by stream queues queue '%s' in vhost "
                                 "'%s'",
                                 q->name, vh->name);
        count = wr_queue_purge(q);
        if (a->nowait)
            return;
        wr_method_init(&m, WR_QUEUE_PURGE_OK);
        m.u.queue_purge_ok.message_count = count;
        return wr_conn_send(ch->c, ch->id, &m);
    }
    case WR_QUEUE_DELETE: {
        const struct wr_queue_delete *a = &mm->u.queue_delete;
        qname = a->queue;
        if (!queue_name(ch, &qname, mm->id) || !may(ch, WR_PERM_CONFIGURE, "queue", qname, mm->id))
            return;
        if (wr_vhost_queue_delete_checked(vh, qname, ch->c, a->if_unused, a->if_empty, &count,
                                          &err) < 0)
            return chan_error(ch, err.code, mm->id, err.text);
        if (a->nowait)
            return;
        wr_method_init(&m, WR_QUEUE_DELETE_OK);
        m.u.queue_delete_ok.message_count = count;
        return wr_conn_send(ch->c, ch->id, &m);
    }
    case WR_EXCHANGE_DELETE: {
        const struct wr_exchange_delete *a = &mm->u.exchange_delete;
        if (a->exchange.len && !may(ch, WR_PERM_CONFIGURE, "exchange", a->exchange, mm->id))
            return;
        if (wr_vhost_exchange_delete(vh, a->exchange, a->if_unused, &err) < 0)
            return chan_error(ch, err.code, mm->id, err.text);
        return reply(ch, a->nowait, WR_EXCHANGE_DELETE_OK);
    }
    case WR_EXCHANGE_BIND: {
        const struct wr_exchange_bind *a = &mm->u.exchange_bind;
        if (!may_bind(ch, "exchange", a->destination, a->source, a->routing_key, mm->id))
            return;
        if (wr_vhost_bind(vh, a->source, a->destination, true, a->routing_key, a->arguments, ch->c,
                          &err) < 0)
            return chan_error(ch, err.code, mm->id, err.text);
        return reply(ch, a->nowait, WR_EXCHANGE_BIND_OK);
    }
    case WR_EXCHANGE_UNBIND: {
        const struct wr_exchange_unbind *a = &mm->u.exchange_unbind;
        if (!may_bind(ch, "exchange", a->destination, a->source, a->routing_key, mm->id))
            return;
        if (wr_vhost_unbind(vh, a->source, a->destination, true, a->routing_key, a->arguments,
                            ch->c, &err) < 0)
            return chan_error(ch, err.code, mm->id, err.text);
        return reply(ch, a->nowait, WR_EXCHANGE_UNBIND_OK);
    }
    }
}

/* ---- dispatch ---- */

void wr_chan_method(struct wr_chan *ch, const struct wr_method *m)
{
    struct wr_method r;

    if (ch->ca != CA_IDLE) {
        wr_conn_error(ch->c, 505, WR_BASIC_PUBLISH,
                      "expected content header for class 60, got non content header frame "
                      "instead (%s)",
                      wr_method_name(m->id));
        return;
    }
    switch (m->id) {
    case WR_BASIC_PUBLISH:
        return on_publish(ch, &m->u.basic_publish);
    case WR_BASIC_ACK:
        return on_settle(ch, TX_ACK, m->u.basic_ack.delivery_tag, m->u.basic_ack.multiple, false,
                         m->id);
    case WR_BASIC_NACK:
        return on_settle(ch, TX_NACK, m->u.basic_nack.delivery_tag, m->u.basic_nack.multiple,
                         m->u.basic_nack.requeue, m->id);
    case WR_BASIC_REJECT:
        return on_settle(ch, TX_REJECT, m->u.basic_reject.delivery_tag, false,
                         m->u.basic_reject.requeue, m->id);
    case WR_BASIC_CONSUME:
        return on_consume(ch, &m->u.basic_consume);
    case WR_BASIC_CANCEL:
        return on_cancel(ch, &m->u.basic_cancel);
    case WR_BASIC_GET:
        return on_get(ch, &m->u.basic_get);
    case WR_BASIC_QOS:
        return on_qos(ch, &m->u.basic_qos);
    case WR_BASIC_RECOVER:
        return on_recover(ch, m->u.basic_recover.requeue, true);
    case WR_BASIC_RECOVER_ASYNC:
        return on_recover(ch, m->u.basic_recover_async.requeue, false);
    case WR_EXCHANGE_DECLARE:
        return on_exchange_declare(ch, &m->u.exchange_declare);
    case WR_QUEUE_DECLARE:
        return on_queue_declare(ch, &m->u.queue_declare);
    case WR_QUEUE_BIND:
    case WR_QUEUE_UNBIND:
    case WR_QUEUE_PURGE:
    case WR_QUEUE_DELETE:
    case WR_EXCHANGE_DELETE:
    case WR_EXCHANGE_BIND:
    case WR_EXCHANGE_UNBIND:
        return on_method_q(ch, m);
    case WR_CONFIRM_SELECT:
        if (ch->tx)
            return chan_errorf(ch, WR_EPRECONDITION_FAILED, m->id,
                               "cannot switch from tx to confirm mode");
        ch->confirm = true;
        return reply(ch, m->u.confirm_select.nowait, WR_CONFIRM_SELECT_OK);
    case WR_TX_SELECT:
    case WR_TX_COMMIT:
    case WR_TX_ROLLBACK:
        return on_tx(ch, m->id);
    case WR_CHANNEL_FLOW:
        /* RabbitMQ 3.10 refuses client-initiated flow control. */
        if (!m->u.channel_flow.active) {
            wr_conn_error(ch->c, 540, m->id, "active=false");
            return;
        }
        ch->flow_active = m->u.channel_flow.active;
        wr_method_init(&r, WR_CHANNEL_FLOW_OK);
        r.u.channel_flow_ok.active = ch->flow_active;
        wr_conn_send(ch->c, ch->id, &r);
        if (ch->flow_active)
            wake_consumers(ch);
        return;
    case WR_CHANNEL_FLOW_OK:
        return;
    case WR_ACCESS_REQUEST:
        wr_method_init(&r, WR_ACCESS_REQUEST_OK);
        r.u.access_request_ok.ticket = 1;
        wr_conn_send(ch->c, ch->id, &r);
        return;
    default:
        wr_conn_error(ch->c, 540, m->id, "%s not expected from a client", wr_method_name(m->id));
        return;
    }
}

/* ---- what the management API reads ---- */

void wr_chan_info(const struct wr_chan *ch, struct wr_chan_info *out)
{
    out->number = ch->id;
    out->closing = ch->closing;
    out->flow_active = ch->flow_active;
    out->confirm = ch->confirm;
    out->transactional = ch->tx;
    out->consumers = ch->nconsumers;
    out->prefetch_count = ch->prefetch_next;
    out->global_prefetch_count = ch->prefetch_global;
    out->unacked = ch->unacked_live;
    out->unconfirmed = ch->confirm ? (uint32_t)(ch->pub_seq - ch->confirm_sent) : 0;
    out->uncommitted_messages = 0;
    out->uncommitted_acks = 0;
    for (uint32_t i = 0; i < ch->txn; i++) {
        if (ch->txo[i].m)
            out->uncommitted_messages++;
        else
            out->uncommitted_acks++;
    }
    out->stats = &ch->st;
}

void wr_chan_consumers(struct wr_chan *ch, wr_chan_consumer_fn fn, void *ctx)
{
    struct wr_hnode *n;
    size_t it;
    for (n = wr_hmap_first(&ch->consumers, &it); n; n = wr_hmap_next(&ch->consumers, &it, n)) {
        struct chan_consumer *cc = wr_container_of(n, struct chan_consumer, node);
        struct wr_consumer_info ci;
        if (!cc->base.q)
            continue;
        ci.tag = cc->node.key;
        ci.q = cc->base.q;
        ci.ack_required = !cc->no_ack;
        ci.exclusive = cc->base.exclusive;
        ci.active = !cc->base.parked;
        ci.priority = cc->base.priority;
        ci.prefetch_count = cc->prefetch;
        ci.unacked = cc->unacked;
        ci.delivered = &cc->delivered;
        ci.acked = &cc->acked;
        fn(ctx, &ci);
    }
}

void wr_chan_sample(struct wr_chan *ch, double dt_s)
{
    struct wr_hnode *n;
    size_t it;
    wr_stats_sample(&ch->st, dt_s);
    for (n = wr_hmap_first(&ch->consumers, &it); n; n = wr_hmap_next(&ch->consumers, &it, n)) {
        struct chan_consumer *cc = wr_container_of(n, struct chan_consumer, node);
        wr_counter_sample(&cc->delivered, dt_s);
        wr_counter_sample(&cc->acked, dt_s);
    }
}
