/*
 * x_fanout.c - the fanout exchange type: every binding matches, whatever
 * the routing key and headers.
 *
 * There is no index: exchange.c already keeps every binding on
 * x->bindings, so routing walks that list. Binding keys and arguments are
 * ignored for matching (RabbitMQ's rabbit_exchange_type_fanout routes to
 * all destinations of the exchange); they still tell bindings apart, which
 * is exchange.c's business.
 */
#include "config.h"

#include "broker/exchange.h"

static int fanout_init(struct wr_exchange *x)
{
    x->type_state = NULL;
    return 0;
}

static void fanout_destroy(struct wr_exchange *x)
{
    (void)x;
}

static int fanout_add(struct wr_exchange *x, struct wr_binding *b)
{
    (void)x;
    b->type_data = NULL;
    return 0;
}

static void fanout_remove(struct wr_exchange *x, struct wr_binding *b)
{
    (void)x;
    (void)b;
}

/* `emit` must not add or remove bindings of this exchange. */
static void fanout_route(struct wr_exchange *x, const struct wr_route_msg *m, wr_route_emit_fn emit,
                         void *ctx)
{
    struct wr_list *it;

    (void)m;
    wr_list_each(it, &x->bindings)
    {
        emit(wr_container_of(it, struct wr_binding, src_node), ctx);
    }
}

const struct wr_xtype wr_xtype_fanout = {
    .name = "fanout",
    .init = fanout_init,
    .destroy = fanout_destroy,
    .validate = NULL,
    .add = fanout_add,
    .remove = fanout_remove,
    .route = fanout_route,
};
