/*
 * exchange.c - the type-independent half of exchanges: the binding list,
 * duplicate bindings, routing through exchange-to-exchange bindings and
 * alternate exchanges, each queue collected once. See exchange.h; the
 * per-type indexes are in x_direct.c, x_fanout.c, x_topic.c, x_headers.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/dedup.h"
#include "broker/exchange.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/queue.h"
#include "broker/vhost.h"

/* ---- routing ----
 *
 * The exchanges a message passes through form a graph as deep as a client
 * cares to make it (exchange-to-exchange bindings, chains of alternate
 * exchanges), so it is walked with an explicit worklist, never recursion:
 * vh->route_work, a stack of exchanges still to route from, grown as
 * needed and kept between messages (an exchange enters it at most once
 * per message, so it never holds more than the vhost has exchanges).
 * The visited set is the route mark: an exchange or queue whose mark is
 * vh->route_gen has been seen during this message, and is marked when it
 * is first met, so each exchange is routed from once and each queue
 * collected once, cycles included.
 *
 * The rule is RabbitMQ's (rabbit_exchange:route/2 in 3.10): an exchange
 * hands the message to its alternate exchange when its own type matched
 * no binding at all. A binding that matched counts even when it leads
 * nowhere new (an exchange that routes nowhere, one already seen, a queue
 * already collected), so the outcome does not depend on the order in
 * which the graph is walked. The default exchange routes by queue name
 * only as the exchange published to; reached as an alternate exchange it
 * has no bindings and routes nothing, as in RabbitMQ. */

struct route_ctx {
    struct wr_vhost *vh;
    const struct wr_route_msg *m;
    struct wr_route_result *res;
    uint32_t matched; /* bindings the exchange being routed matched */
    int err;
};

static int res_add(struct wr_route_result *r, struct wr_queue *q)
{
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 8;
        struct wr_queue **a = realloc(r->q, (size_t)cap * sizeof(*a));
        if (!a)
            return WR_ENOMEM;
        r->q = a;
        r->cap = cap;
    }
    r->q[r->n++] = q;
    return 0;
}

/* Marks x and puts it on the worklist, unless it was seen already. */
static void route_visit(struct route_ctx *rc, struct wr_exchange *x)
{
    struct wr_vhost *vh = rc->vh;

    if (x->route_mark == vh->route_gen)
        return;
    if (vh->route_n == vh->route_cap) {
        uint32_t cap = vh->route_cap ? vh->route_cap * 2 : 16;
        struct wr_exchange **a = realloc(vh->route_work, (size_t)cap * sizeof(*a));
        if (!a) {
            rc->err = WR_ENOMEM;
            return;
        }
        vh->route_work = a;
        vh->route_cap = cap;
    }
    x->route_mark = vh->route_gen;
    vh->route_work[vh->route_n++] = x;
}

static void route_emit(struct wr_binding *b, void *ctx)
{
    struct route_ctx *rc = ctx;

    rc->matched++;
    if (!b) {
        rc->res->taken = true; /* the type took the message itself */
        return;
    }
    if (b->kind == WR_DEST_QUEUE) {
        struct wr_queue *q = b->dest;
        if (q->route_mark != rc->vh->route_gen) {
            q->route_mark = rc->vh->route_gen;
            if (res_add(rc->res, q) < 0)
                rc->err = WR_ENOMEM;
        }
    } else {
        route_visit(rc, b->dest);
    }
}

/* Routes from one exchange taken off the worklist. publish_in counts the
 * messages that reached x, publish_out those that left it: through one of
 * its bindings or to its alternate exchange. */
static void route_exchange(struct route_ctx *rc, struct wr_exchange *x)
{
    uint32_t work = rc->vh->route_n;

    x->publish_in.n++;
    rc->matched = 0;
    if (!wr_list_empty(&x->bindings) || (x->type->flags & WR_XTYPE_ROUTE_UNBOUND)) {
        /* The CC/BCC keys are routed like the message's own. */
        for (uint32_t k = 0; k <= rc->m->ncc; k++) {
            struct wr_route_msg one = *rc->m;
            one.first = k == 0;
            one.res = rc->res;
            if (k)
                one.routing_key = rc->m->cc[k - 1];
            x->type->route(x, &one, route_emit, rc);
        }
    }
    if (rc->matched == 0 && x->alternate_name) {
        struct wr_exchange *ae =
            wr_vhost_exchange(rc->vh, (struct wr_str){x->alternate_name, x->alternate_len});
        if (ae)
            route_visit(rc, ae);
    }
    if (rc->matched || rc->vh->route_n > work)
        x->publish_out.n++;
}

int wr_vhost_route(struct wr_vhost *vh, struct wr_exchange *x, const struct wr_route_msg *m,
                   struct wr_route_result *res)
{
    struct route_ctx rc = {vh, m, res, 0, 0};

    res->n = 0;
    res->taken = false;
    res->held_pos = 0;
    res->held_failed = false;
    if (++vh->route_gen == 0) {
        /* Wrapped: clear every mark so a stale one cannot match. */
        size_t it;
        struct wr_hnode *n;
        for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n))
            wr_container_of(n, struct wr_queue, node)->route_mark = 0;
        for (n = wr_hmap_first(&vh->exchanges, &it); n; n = wr_hmap_next(&vh->exchanges, &it, n))
            wr_container_of(n, struct wr_exchange, node)->route_mark = 0;
        vh->route_gen = 1;
    }
    if (x == vh->default_exchange) {
        x->publish_in.n++;
        for (uint32_t k = 0; k <= m->ncc; k++) {
            /* (A message's own key: through its interned key's cache.) */
            struct wr_queue *q =
                !k && m->msg && m->routing_key.ptr == wr_msg_routing_key(m->msg).ptr
                    ? wr_vhost_queue_of(vh, m->msg)
                    : wr_vhost_queue(vh, k ? m->cc[k - 1] : m->routing_key);
            if (!q || q->route_mark == vh->route_gen)
                continue;
            q->route_mark = vh->route_gen;
            if (res_add(res, q) < 0)
                return WR_ENOMEM;
        }
        if (res->n)
            x->publish_out.n++;
        return 0;
    }
    /* Routing never re-enters itself (types call back into route_emit
     * only), so one worklist per vhost is enough. */
    vh->route_n = 0;
    route_visit(&rc, x);
    while (vh->route_n)
        route_exchange(&rc, vh->route_work[--vh->route_n]);
    return rc.err;
}

/* ---- bindings ----
 *
 * Every binding is also in its source's `bindex` hash under the composite
 * key (destination pointer, routing key, arguments), so binding twice is
 * found in O(1) however many bindings the exchange has. */

static size_t composite(char *buf, void *dest, struct wr_str key, struct wr_str args)
{
    memcpy(buf, &dest, sizeof(dest));
    buf[sizeof(dest)] = (char)key.len;
    if (key.len)
        memcpy(buf + sizeof(dest) + 1, key.ptr, key.len);
    if (args.len)
        memcpy(buf + sizeof(dest) + 1 + key.len, args.ptr, args.len);
    return sizeof(dest) + 1 + key.len + args.len;
}

struct wr_binding *wr_exchange_binding_find(struct wr_exchange *src, void *dest, struct wr_str key,
                                            struct wr_str args)
{
    char *buf;
    struct wr_hnode *n;
    size_t len;
    if (key.len > 255)
        return NULL;
    buf = malloc(sizeof(void *) + 1 + key.len + args.len);
    if (!buf)
        return NULL;
    len = composite(buf, dest, key, args);
    n = wr_hmap_get(&src->bindex, (struct wr_str){buf, (uint32_t)len});
    free(buf);
    return n ? wr_container_of(n, struct wr_binding, index_node) : NULL;
}

int wr_exchange_bind(struct wr_exchange *src, enum wr_dest_kind kind, void *dest,
                     struct wr_list *dest_list, struct wr_str key, struct wr_str args)
{
    struct wr_binding *b;
    char *p;
    size_t clen;
    int rc;

    if (key.len > 255)
        return WR_ESYNTAX;
    if (wr_exchange_binding_find(src, dest, key, args))
        return 0; /* binding again is a no-op */
    clen = sizeof(void *) + 1 + key.len + args.len;
    b = calloc(1, sizeof(*b) + clen);
    if (!b)
        return WR_ENOMEM;
    p = (char *)(b + 1);
    composite(p, dest, key, args);
    b->index_node.key = (struct wr_str){p, (uint32_t)clen};
    b->key = (struct wr_str){p + sizeof(void *) + 1, key.len};
    b->args = (struct wr_str){p + sizeof(void *) + 1 + key.len, args.len};
    b->src = src;
    b->kind = kind;
    b->dest = dest;
    wr_list_init(&b->type_node);
    if (wr_hmap_put(&src->bindex, &b->index_node) < 0) {
        free(b);
        return WR_ENOMEM;
    }
    wr_list_add_tail(&src->bindings, &b->src_node);
    wr_list_add_tail(dest_list, &b->dst_node);
    if ((rc = src->type->add(src, b)) < 0) {
        wr_hmap_del(&src->bindex, &b->index_node);
        wr_list_del(&b->src_node);
        wr_list_del(&b->dst_node);
        free(b);
        return rc;
    }
    src->nbindings++;
    return 0;
}

/* Deleting an auto-delete exchange removes the bindings into it, which may
 * leave another auto-delete exchange without bindings, and so on down a
 * chain as long as a client made it (RabbitMQ deletes the same way:
 * rabbit_exchange:maybe_auto_delete on the sources of the removed
 * bindings). The deletions are a worklist, not a recursion: an exchange
 * that has to go is pushed on vh->doomed (through x->doomed_next), and only
 * the outermost call deletes, until the list is empty. Each deletion only
 * removes bindings into the deleted exchange (it has none from it), so a
 * caller walking some other object's bindings is not disturbed. Which
 * exchanges go does not depend on the order: bindings are only removed. */
static void exchange_reap(struct wr_exchange *x)
{
    struct wr_vhost *vh = x->vhost;

    if (x->doomed)
        return;
    x->doomed = true;
    x->doomed_next = vh->doomed;
    vh->doomed = x;
    if (vh->reaping)
        return;
    vh->reaping = true;
    while ((x = vh->doomed) != NULL) {
        vh->doomed = x->doomed_next;
        wr_vhost_exchange_remove(vh, x);
    }
    vh->reaping = false;
}

void wr_binding_remove(struct wr_binding *b)
{
    struct wr_exchange *src = b->src;
    src->type->remove(src, b);
    wr_hmap_del(&src->bindex, &b->index_node);
    src->nbindings--;
    wr_list_del(&b->src_node);
    wr_list_del(&b->dst_node);
    free(b);
    /* An auto-delete exchange goes with its last binding as a source. */
    if (src->auto_delete && wr_list_empty(&src->bindings))
        exchange_reap(src);
}

/* ---- exchange objects ---- */

struct wr_exchange *wr_exchange_new(struct wr_vhost *vh, struct wr_str name,
                                    const struct wr_xtype *type, struct wr_str args)
{
    struct wr_exchange *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->name = malloc((size_t)name.len + 1);
    x->args.ptr = args.len ? malloc(args.len) : NULL;
    if (!x->name || (args.len && !x->args.ptr))
        goto fail;
    memcpy(x->name, name.ptr ? name.ptr : "", name.len);
    x->name[name.len] = '\0';
    if (args.len)
        memcpy((void *)x->args.ptr, args.ptr, args.len);
    x->args.len = args.len;
    x->node.key = (struct wr_str){x->name, name.len};
    x->vhost = vh;
    x->type = type;
    x->dedup_on = wr_dedup_args_on(args);
    wr_list_init(&x->bindings);
    wr_list_init(&x->bound_to_me);
    if (type->init(x) < 0)
        goto fail;
    return x;
fail:
    free(x->name);
    free((void *)x->args.ptr);
    free(x);
    return NULL;
}

void wr_exchange_free(struct wr_exchange *x)
{
    struct wr_list *it, *tmp;
    x->auto_delete = false; /* removing its bindings below must not reap x itself */
    wr_list_each_safe(it, tmp, &x->bindings)
    {
        wr_binding_remove(wr_container_of(it, struct wr_binding, src_node));
    }
    wr_list_each_safe(it, tmp, &x->bound_to_me)
    {
        wr_binding_remove(wr_container_of(it, struct wr_binding, dst_node));
    }
    x->type->destroy(x);
    wr_hmap_free(&x->bindex);
    wr_dedup_free(x->dedup);
    free(x->alternate_name);
    free(x->name);
    free((void *)x->args.ptr);
    free(x);
}

/* ---- what an exchange type keeps (a delayed exchange's messages) ---- */

uint64_t wr_exchange_holder_id(const struct wr_exchange *x)
{
    /* FNV-1a over vhost, a separator no name can make ambiguous (the
     * vhost's length), and name; then mixed, top bit set. */
    uint64_t h = 0xcbf29ce484222325ull;
    struct wr_str n = wr_exchange_name(x);
    size_t vl = strlen(x->vhost->name);
    for (size_t i = 0; i < vl; i++)
        h = (h ^ (uint8_t)x->vhost->name[i]) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ (uint8_t)(vl >> (8 * i))) * 0x100000001b3ull;
    for (uint32_t i = 0; i < n.len; i++)
        h = (h ^ (uint8_t)n.ptr[i]) * 0x100000001b3ull;
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ull;
    h ^= h >> 27;
    return h | (1ull << 63);
}

int wr_exchange_hold(struct wr_exchange *x, struct wr_msg *m, struct wr_route_result *res)
{
    const struct wr_persist *p = x->vhost->persist;
    uint64_t pos;
    if (!x->durable || !wr_msg_persistent(m) || !p || !wr_msg_ext(m))
        return 0; /* kept in memory only */
    pos = p->hold(p->ctx, m, wr_exchange_holder_id(x));
    if (!pos) {
        if (res)
            res->held_failed = true;
        return -1;
    }
    m->flags |= WR_MSG_HELD;
    if (res && pos > res->held_pos)
        res->held_pos = pos;
    return 0;
}

uint64_t wr_exchange_unhold(struct wr_msg *m)
{
    uint64_t id;
    if (!(m->flags & WR_MSG_HELD))
        return 0;
    m->flags &= (uint8_t)~WR_MSG_HELD;
    id = wr_msg_store_id(m);
    wr_msg_ext(m)->store_id = 0;
    return id;
}

void wr_exchange_release_id(struct wr_exchange *x, uint64_t id)
{
    const struct wr_persist *p = x->vhost->persist;
    if (id && p)
        p->release(p->ctx, id, wr_exchange_holder_id(x));
}

void wr_exchange_release(struct wr_exchange *x, struct wr_msg *m)
{
    wr_exchange_release_id(x, wr_exchange_unhold(m));
}
