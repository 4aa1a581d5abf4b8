/*
 * x_direct.c - the direct exchange type: a binding matches when its key is
 * byte for byte the message's routing key.
 *
 * The index is a hash map (core/hmap.h) from binding key to a bucket
 * holding the list of bindings with that key (linked through
 * b->type_node; b->type_data points back at the bucket). Routing is one
 * lookup and a walk of that one list, so its cost does not depend on how
 * many bindings use other keys. A bucket is created with the first binding
 * for its key and freed with the last one. Keys are compared exactly (no
 * case folding, no Unicode normalisation), the empty key included, as in
 * RabbitMQ's rabbit_exchange_type_direct.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "core/hmap.h"

struct direct_bucket {
    struct wr_hnode node; /* key points at `key` below */
    struct wr_list bindings;
    char key[];
};

struct direct_state {
    struct wr_hmap keys;
};

static int direct_init(struct wr_exchange *x)
{
    struct direct_state *st = malloc(sizeof(*st));
    if (!st)
        return WR_ENOMEM;
    wr_hmap_init(&st->keys);
    x->type_state = st;
    return 0;
}

/* Frees every bucket; bindings still indexed are detached, not freed (they
 * belong to exchange.c). */
static void direct_destroy(struct wr_exchange *x)
{
    struct direct_state *st = x->type_state;
    struct wr_hnode *n, *next;
    size_t it;

    if (!st)
        return;
    for (n = wr_hmap_first(&st->keys, &it); n; n = next) {
        struct direct_bucket *bk = wr_container_of(n, struct direct_bucket, node);
        struct wr_list *l, *tmp;
        next = wr_hmap_next(&st->keys, &it, n);
        wr_list_each_safe(l, tmp, &bk->bindings)
        {
            struct wr_binding *b = wr_container_of(l, struct wr_binding, type_node);
            wr_list_del(&b->type_node);
            b->type_data = NULL;
        }
        free(bk);
    }
    wr_hmap_free(&st->keys);
    free(st);
    x->type_state = NULL;
}

static int direct_add(struct wr_exchange *x, struct wr_binding *b)
{
    struct direct_state *st = x->type_state;
    struct wr_hnode *n = wr_hmap_get(&st->keys, b->key);
    struct direct_bucket *bk;

    if (n) {
        bk = wr_container_of(n, struct direct_bucket, node);
    } else {
        bk = malloc(sizeof(*bk) + b->key.len);
        if (!bk)
            return WR_ENOMEM;
        if (b->key.len)
            memcpy(bk->key, b->key.ptr, b->key.len);
        bk->node.key = (struct wr_str){bk->key, b->key.len};
        wr_list_init(&bk->bindings);
        if (wr_hmap_put(&st->keys, &bk->node) < 0) {
            free(bk);
            return WR_ENOMEM;
        }
    }
    wr_list_add_tail(&bk->bindings, &b->type_node);
    b->type_data = bk;
    return 0;
}

static void direct_remove(struct wr_exchange *x, struct wr_binding *b)
{
    struct direct_state *st = x->type_state;
    struct direct_bucket *bk = b->type_data;

    if (!bk)
        return;
    wr_list_del(&b->type_node);
    b->type_data = NULL;
    if (wr_list_empty(&bk->bindings)) {
        wr_hmap_del(&st->keys, &bk->node);
        free(bk);
    }
}

/* `emit` must not add or remove bindings of this exchange. */
static void direct_route(struct wr_exchange *x, const struct wr_route_msg *m, wr_route_emit_fn emit,
                         void *ctx)
{
    struct direct_state *st = x->type_state;
    struct wr_hnode *n = wr_hmap_get(&st->keys, m->routing_key);
    struct direct_bucket *bk;
    struct wr_list *it;

    if (!n)
        return;
    bk = wr_container_of(n, struct direct_bucket, node);
    wr_list_each(it, &bk->bindings)
    {
        emit(wr_container_of(it, struct wr_binding, type_node), ctx);
    }
}

const struct wr_xtype wr_xtype_direct = {
    .name = "direct",
    .init = direct_init,
    .destroy = direct_destroy,
    .validate = NULL,
    .add = direct_add,
    .remove = direct_remove,
    .route = direct_route,
};
