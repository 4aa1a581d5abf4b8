/*
 * exchange.c - the type-independent half of exchanges: the binding list,
 * duplicate bindings, routing through exchange-to-exchange bindings and
 * alternate exchanges, each queue collected once. See exchange.h; the
 * per-type indexes are in x_direct.c, x_fanout.c, x_topic.c, x_headers.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "broker/queue.h"
#include "broker/vhost.h"

struct route_ctx {
    struct wr_vhost *vh;
    const struct wr_route_msg *m;
    struct wr_route_result *res;
    int depth;
    int err;
};

static void route_exchange(struct route_ctx *rc, struct wr_exchange *x);

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

static void route_emit(struct wr_binding *b, void *ctx)
{
    struct route_ctx *rc = ctx;
    if (b->kind == WR_DEST_QUEUE) {
        struct wr_queue *q = b->dest;
        if (q->route_mark != rc->vh->route_gen) {
            q->route_mark = rc->vh->route_gen;
            if (res_add(rc->res, q) < 0)
                rc->err = WR_ENOMEM;
        }
    } else {
        struct wr_exchange *x = b->dest;
        if (x->route_mark != rc->vh->route_gen)
            route_exchange(rc, x);
    }
}

static void route_exchange(struct route_ctx *rc, struct wr_exchange *x)
{
    uint32_t before = rc->res->n;

    x->route_mark = rc->vh->route_gen;
    x->publish_in++;
    if (x == rc->vh->default_exchange) {
        struct wr_queue *q = wr_vhost_queue(rc->vh, rc->m->routing_key);
        if (q && q->route_mark != rc->vh->route_gen) {
            q->route_mark = rc->vh->route_gen;
            if (res_add(rc->res, q) < 0)
                rc->err = WR_ENOMEM;
        }
    } else if (!wr_list_empty(&x->bindings)) {
        x->type->route(x, rc->m, route_emit, rc);
    }
    /* Nothing routed from here: try the alternate exchange (RabbitMQ follows
     * chains of them; the route mark stops a cycle). */
    if (rc->res->n == before && x->alternate_name) {
        struct wr_exchange *ae =
            wr_vhost_exchange(rc->vh, (struct wr_str){x->alternate_name, x->alternate_len});
        if (ae && ae->route_mark != rc->vh->route_gen)
            route_exchange(rc, ae);
    }
    if (rc->res->n > before)
        x->publish_out++;
}

int wr_vhost_route(struct wr_vhost *vh, struct wr_exchange *x, const struct wr_route_msg *m,
                   struct wr_route_result *res)
{
    struct route_ctx rc = {vh, m, res, 0, 0};
    res->n = 0;
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
    route_exchange(&rc, x);
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

void wr_binding_remove(struct wr_binding *b)
{
    struct wr_exchange *src = b->src;
    src->type->remove(src, b);
    wr_hmap_del(&src->bindex, &b->index_node);
    src->nbindings--;
    wr_list_del(&b->src_node);
    wr_list_del(&b->dst_node);
    free(b);
    /* An auto-delete exchange goes with its last binding. */
    if (src->auto_delete && wr_list_empty(&src->bindings))
        wr_vhost_exchange_delete(src->vhost, wr_exchange_name(src), false, NULL);
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
    x->auto_delete = false; /* removing bindings below must not recurse here */
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
    free(x->alternate_name);
    free(x->name);
    free((void *)x->args.ptr);
    free(x);
}
