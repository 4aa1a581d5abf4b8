/*
 * dlx.c - dead-lettering; see dlx.h.
 *
 * The new message is the old one with rewritten properties: the x-death
 * header gets (or updates) the entry for (this queue, this reason): count,
 * reason, queue, time, exchange, routing-keys, and original-expiration when
 * a per-message TTL expired (the expiration property is then removed).
 * Entries are most recent first; x-first-death-reason/-queue/-exchange are
 * set once. The message is routed through the dead-letter exchange with
 * the x-dead-letter-routing-key if there is one, else its own key.
 *
 * Cycles: a target queue the message has already died in is skipped when
 * no death in its history was a rejection (RabbitMQ's rule), so messages
 * cannot circle forever through TTL or length limits. A depth guard stops
 * chains of queues dead-lettering into each other within one call.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dlx.h"
#include "broker/publish.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "core/log.h"
#include "wire/field.h"
#include "wire/methods.gen.h"

#define DLX_MAX_DEPTH 16

const char *wr_dl_reason_name(enum wr_dl_reason why)
{
    switch (why) {
    case WR_DL_REJECTED:
        return "rejected";
    case WR_DL_EXPIRED:
        return "expired";
    case WR_DL_MAXLEN:
        return "maxlen";
    case WR_DL_DELIVERY_LIMIT:
        return "delivery_limit";
    }
    return "unknown";
}

static struct wr_fv fv_str(struct wr_str s)
{
    struct wr_fv v;
    v.type = 'S';
    v.v.str = s;
    return v;
}

static const struct wr_fv *entry_get(const struct wr_fv *e, const char *key)
{
    return e->type == 'F' && e->v.table ? wr_table_find(e->v.table, key) : NULL;
}

static bool entry_is(const struct wr_fv *e, const char *key, struct wr_str val)
{
    const struct wr_fv *v = entry_get(e, key);
    return v && v->type == 'S' && wr_str_eq(v->v.str, val);
}

/* RabbitMQ 3.10 rebuilds the list with the new or updated entry first and
 * the others after it in reverse of their previous order (a fold that
 * reverses); clients see exactly that, so we do the same. */
static void reverse_rest(struct wr_array *arr)
{
    for (uint32_t i = 1, j = arr->n - 1; i < j; i++, j--) {
        struct wr_fv t = arr->v[i];
        arr->v[i] = arr->v[j];
        arr->v[j] = t;
    }
}

/* Make the x-death entry for (queue, reason) and put it first. */
/* The CC header's routing keys (long strings in an array), as the
 * message was published with them: they are among its routing keys. */
static const struct wr_array *cc_keys(const struct wr_table *h)
{
    const struct wr_fv *cc = wr_table_find(h, "CC");
    return cc && cc->type == 'A' ? cc->v.array : NULL;
}

static int update_x_death(struct wr_table *h, struct wr_queue *q, struct wr_msg *m,
                          enum wr_dl_reason why, struct wr_str orig_exp)
{
    struct wr_str reason = wr_str_c(wr_dl_reason_name(why));
    struct wr_str qname = wr_queue_name(q);
    struct wr_fv *xd = NULL, v;
    struct wr_array *arr;
    struct wr_table *t;
    struct wr_array *rks;

    for (uint32_t i = 0; i < h->n; i++)
        if (wr_str_eqc(h->e[i].key, "x-death"))
            xd = &h->e[i].val;
    if (xd && xd->type != 'A') {
        /* Not ours to understand: replace it. */
        if (xd->type == 'F')
            wr_table_free(xd->v.table), free(xd->v.table);
        xd->type = 'A';
        xd->v.array = calloc(1, sizeof(struct wr_array));
        if (!xd->v.array)
            return WR_ENOMEM;
    }
    if (!xd) {
        v.type = 'A';
        v.v.array = calloc(1, sizeof(struct wr_array));
        if (!v.v.array || wr_table_add(h, WR_STR("x-death"), v) < 0) {
            free(v.v.array);
            return WR_ENOMEM;
        }
        xd = &h->e[h->n - 1].val;
    }
    arr = xd->v.array;
    for (uint32_t i = 0; i < arr->n; i++) {
        struct wr_fv *e = &arr->v[i];
        if (entry_is(e, "queue", qname) && entry_is(e, "reason", reason)) {
            struct wr_fv *count = (struct wr_fv *)entry_get(e, "count");
            struct wr_fv moved = *e;
            int64_t c = 0;
            if (count && wr_fv_int(count, &c)) {
                count->type = 'l';
                count->v.l = c + 1;
            }
            memmove(&arr->v[1], &arr->v[0], i * sizeof(arr->v[0]));
            arr->v[0] = moved;
            reverse_rest(arr);
            return 0;
        }
    }
    /* A new entry. */
    t = calloc(1, sizeof(*t));
    rks = calloc(1, sizeof(*rks));
    if (!t || !rks)
        goto oom;
    if (wr_array_add(rks, fv_str(wr_msg_routing_key(m))) < 0)
        goto oom;
    {
        const struct wr_array *cc = cc_keys(h);
        for (uint32_t i = 0; cc && i < cc->n; i++)
            if (cc->v[i].type == 'S' && wr_array_add(rks, cc->v[i]) < 0)
                goto oom;
    }
    v.type = 'l';
    v.v.l = 1;
    if (wr_table_add(t, WR_STR("count"), v) < 0 ||
        wr_table_add(t, WR_STR("reason"), fv_str(reason)) < 0 ||
        wr_table_add(t, WR_STR("queue"), fv_str(qname)) < 0)
        goto oom;
    v.type = 'T';
    v.v.T = (uint64_t)wr_wall_s();
    if (wr_table_add(t, WR_STR("time"), v) < 0 ||
        wr_table_add(t, WR_STR("exchange"), fv_str(wr_msg_exchange(m))) < 0)
        goto oom;
    v.type = 'A';
    v.v.array = rks;
    if (wr_table_add(t, WR_STR("routing-keys"), v) < 0)
        goto oom;
    rks = NULL;
    if (orig_exp.len && wr_table_add(t, WR_STR("original-expiration"), fv_str(orig_exp)) < 0)
        goto oom;
    v.type = 'F';
    v.v.table = t;
    if (wr_array_add(arr, v) < 0)
        goto oom;
    memmove(&arr->v[1], &arr->v[0], (arr->n - 1) * sizeof(arr->v[0]));
    arr->v[0] = v;
    reverse_rest(arr);
    return 0;
oom:
    if (rks) {
        wr_array_free(rks);
        free(rks);
    }
    if (t) {
        wr_table_free(t);
        free(t);
    }
    return WR_ENOMEM;
}

static int set_first(struct wr_table *h, const char *key, struct wr_str val)
{
    if (wr_table_find(h, key))
        return 0;
    return wr_table_add(h, wr_str_c(key), fv_str(val));
}

/* Did the message die in `qname` before, with no rejection anywhere in its
 * history? Then sending it there again is a cycle. */
static bool is_cycle(const struct wr_table *h, struct wr_str qname)
{
    const struct wr_fv *xd = wr_table_find(h, "x-death");
    bool seen = false;
    if (!xd || xd->type != 'A')
        return false;
    for (uint32_t i = 0; i < xd->v.array->n; i++) {
        const struct wr_fv *e = &xd->v.array->v[i];
        if (entry_is(e, "reason", WR_STR("rejected")))
            return false;
        if (entry_is(e, "queue", qname))
            seen = true;
    }
    return seen;
}

/* wr_vhost_publish's filter: a target the message has already died in
 * (without a rejection since) would make a cycle; RabbitMQ drops it. */
static bool not_a_cycle(void *ctx, struct wr_queue *q)
{
    const struct wr_table *h = ctx;
    if (!is_cycle(h, wr_queue_name(q)))
        return true;
    if (wr_log_enabled(WR_LOG_DEBUG)) {
        char qn[WR_LOG_ESC_MAX];
        wr_log(WR_LOG_DEBUG, "dead-letter cycle through queue '%s': message dropped",
               WR_LOG_ESC(qn, wr_queue_name(q)));
    }
    return false;
}

bool wr_dlx_publish(struct wr_queue *q, struct wr_msg *m, enum wr_dl_reason why)
{
    static int depth;
    bool taken = false;
    struct wr_vhost *vh = q->vhost;
    struct wr_exchange *x = wr_vhost_exchange(vh, (struct wr_str){q->s.dlx, q->s.dlx_len});
    struct wr_basic_props p;
    struct wr_table h = {0};
    struct wr_rd r;
    struct wr_str orig_exp = WR_STR_NULL;
    struct wr_msg *nm = NULL;
    struct wr_publish_result res = {0};
    struct wr_publish_opts o = {0};
    uint8_t *hbuf = NULL, *pbuf = NULL;
    size_t plen;
    struct wr_wb w;
    const struct wr_array *cc;
    struct wr_str *ccv = NULL;

    if (!x || depth >= DLX_MAX_DEPTH) {
        if (!x && wr_log_enabled(WR_LOG_DEBUG)) {
            char xn[WR_LOG_ESC_MAX], qn[WR_LOG_ESC_MAX];
            wr_log(WR_LOG_DEBUG,
                   "dead-letter exchange '%s' of queue '%s' does not exist: "
                   "message dropped",
                   wr_log_esc(xn, sizeof(xn), q->s.dlx, q->s.dlx_len),
                   WR_LOG_ESC(qn, wr_queue_name(q)));
        }
        wr_msg_unref(m);
        return false;
    }
    depth++;
    if (m->props_len) {
        r = wr_rd_init(wr_msg_props(m), m->props_len);
        if (wr_basic_props_decode(&r, &p) < 0)
            goto out;
    } else {
        memset(&p, 0, sizeof(p));
    }
    if ((p.flags & WR_BASIC_HEADERS_FLAG) && wr_table_decode(p.headers, &h) < 0)
        goto out;
    /* The per-message TTL does not follow the message (whatever the
     * reason): it is kept as original-expiration in the x-death entry. */
    if (p.flags & WR_BASIC_EXPIRATION_FLAG) {
        orig_exp = p.expiration;
        p.flags &= (uint16_t)~WR_BASIC_EXPIRATION_FLAG;
    }
    if (update_x_death(&h, q, m, why, orig_exp) < 0 ||
        set_first(&h, "x-first-death-reason", wr_str_c(wr_dl_reason_name(why))) < 0 ||
        set_first(&h, "x-first-death-queue", wr_queue_name(q)) < 0 ||
        set_first(&h, "x-first-death-exchange", wr_msg_exchange(m)) < 0)
        goto out;

    /* Routing keys: with x-dead-letter-routing-key only that one, and CC
     * goes (RabbitMQ); without it the original key and CC's. (BCC keys
     * were stripped at publish and are not kept: RabbitMQ keeps them in
     * its message record and dead-letters by them too.) */
    if (q->s.dlrk) {
        wr_table_remove(&h, "CC");
    } else if ((cc = cc_keys(&h)) && cc->n) {
        if (!(o.keys = ccv = malloc(cc->n * sizeof(*ccv))))
            goto out;
        for (uint32_t i = 0; i < cc->n; i++)
            if (cc->v[i].type == 'S' && cc->v[i].v.str.len <= 255)
                ccv[o.nkeys++] = cc->v[i].v.str;
    }
    if (!(hbuf = wr_props_set_headers(&p, &h)))
        goto out;
    plen = wr_basic_props_size(&p);
    if (!(pbuf = malloc(plen)))
        goto out;
    w = wr_wb_init(pbuf, plen);
    if (wr_basic_props_encode(&w, &p) < 0)
        goto out;

    nm = wr_msg_new(m->rkey->pool, wr_exchange_name(x),
                    q->s.dlrk ? (struct wr_str){q->s.dlrk, q->s.dlrk_len} : wr_msg_routing_key(m),
                    pbuf, (uint32_t)plen, m->body_len,
                    wr_msg_persistent(m) ? WR_MSG_PERSISTENT | WR_MSG_EXT : 0);
    if (!nm)
        goto out;
    {
        uint8_t *src = wr_msg_body(m);
        if (!src)
            goto out; /* a paged-out body that cannot be read: logged by the store */
        memcpy(wr_msg_body(nm), src, (size_t)m->body_len);
    }
    nm->priority = m->priority;
    nm->published_ms = wr_now_ms();
    /* res is ours: nested dead-letters while pushing publish into their
     * own result. Cycle targets are dropped before the journal. */
    o.keep = not_a_cycle;
    o.keep_ctx = &h;
    if (wr_vhost_publish(vh, x, nm, &o, &res) == 0) {
        if (res.journal_failed) {
            char qn[WR_LOG_ESC_MAX];
            wr_log(WR_LOG_ERROR, "dead letter from queue '%s' could not be journaled%s",
                   WR_LOG_ESC(qn, wr_queue_name(q)),
                   q->s.dl_at_least_once ? ": kept to try again" : ": dropped");
        }
        taken = res.route.n > 0 && !res.journal_failed && !res.rejected;
    }
out:
    wr_publish_result_free(&res);
    free(ccv);
    wr_msg_unref(nm);
    free(pbuf);
    free(hbuf);
    wr_table_free(&h);
    wr_msg_unref(m);
    depth--;
    return taken;
}
