/*
 * xtype.c - a plugin's exchange type as a struct wr_xtype.
 *
 * The broker calls every exchange type through struct wr_xtype; for a
 * plugin's type, those functions are the ones below, which call the
 * plugin's hooks with opaque handles (a warren_exchange is a struct
 * wr_exchange, a warren_binding a struct wr_binding: the plugin cannot see
 * inside). Each exchange's type_state is a struct px holding the plugin's
 * state and, when the plugin asked for one (exchange_use_inner), an inner
 * type that indexes the bindings and routes for it: a delayed exchange
 * routes as its x-delayed-type. The inner type's functions expect their
 * own state in x->type_state, so the adapter swaps it in around each call
 * (all on the loop thread).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "core/err.h"
#include "plugin/api.h"
#include "plugin/plugin.h"

struct wr_xtype_adapter {
    struct wr_xtype base; /* what the broker sees; first, for container_of */
    const struct warren_exchange_type *t;
    warren_host *host;
    char *name;
    struct wr_xtype_adapter *next; /* the host's list */
};

static const struct wr_xtype_adapter *adapter(const struct wr_exchange *x)
{
    return (const struct wr_xtype_adapter *)(const void *)x->type;
}

static struct px *px_of(const struct wr_exchange *x)
{
    return x->type_state;
}

/* Run an inner type's function with its own state in place. */
#define INNER(x, call)                                                                             \
    do {                                                                                           \
        struct px *p_ = px_of(x);                                                                  \
        (x)->type_state = p_->inner_state;                                                         \
        call;                                                                                      \
        p_->inner_state = (x)->type_state;                                                         \
        (x)->type_state = p_;                                                                      \
    } while (0)

static int a_init(struct wr_exchange *x)
{
    struct px *p = calloc(1, sizeof(*p));
    if (!p)
        return WR_ENOMEM;
    x->type_state = p;
    return 0;
}

static void a_destroy(struct wr_exchange *x)
{
    struct px *p = px_of(x);
    if (!p)
        return;
    if (p->declared && adapter(x)->t->destroy)
        adapter(x)->t->destroy((warren_exchange *)x);
    if (p->inner)
        INNER(x, p->inner->destroy(x));
    free(p);
    x->type_state = NULL;
}

static int refusal(const struct warren_error *e, struct wr_errbuf *err)
{
    int code = e->code >= 200 && e->code < 1000 ? e->code : 541;
    return wr_fail(err, -code, "%s", e->text[0] ? e->text : "refused by the exchange type");
}

static int a_declare(struct wr_exchange *x, struct wr_errbuf *err)
{
    const struct wr_xtype_adapter *a = adapter(x);
    struct warren_error e = {0, ""};
    if (a->t->declare && a->t->declare((warren_exchange *)x, &e) != WARREN_OK)
        return refusal(&e, err);
    px_of(x)->declared = true;
    return 0;
}

static int a_validate_binding(struct wr_exchange *x, struct wr_str key, struct wr_str args,
                              struct wr_errbuf *err)
{
    const struct wr_xtype_adapter *a = adapter(x);
    struct px *p = px_of(x);
    struct warren_error e = {0, ""};
    if (a->t->validate_binding &&
        a->t->validate_binding((warren_exchange *)x, (struct warren_bytes){key.ptr, key.len},
                               (struct warren_bytes){args.ptr, args.len}, &e) != WARREN_OK)
        return refusal(&e, err);
    if (p->inner && p->inner->validate) {
        int rc = p->inner->validate(key, args);
        if (rc < 0)
            return wr_fail(err, rc, "invalid binding arguments for exchange '%s'", x->name);
    }
    return 0;
}

static int a_add(struct wr_exchange *x, struct wr_binding *b)
{
    struct px *p = px_of(x);
    int rc = 0;
    if (p->inner)
        INNER(x, rc = p->inner->add(x, b));
    if (rc == 0 && adapter(x)->t->bind &&
        adapter(x)->t->bind((warren_exchange *)x, (warren_binding *)b) != 0) {
        if (p->inner)
            INNER(x, p->inner->remove(x, b));
        rc = WR_ENOMEM;
    }
    return rc;
}

static void a_remove(struct wr_exchange *x, struct wr_binding *b)
{
    struct px *p = px_of(x);
    if (adapter(x)->t->unbind)
        adapter(x)->t->unbind((warren_exchange *)x, (warren_binding *)b);
    if (p->inner)
        INNER(x, p->inner->remove(x, b));
}

static void a_route(struct wr_exchange *x, const struct wr_route_msg *m, wr_route_emit_fn emit,
                    void *ctx)
{
    struct warren_route r = {x, m, emit, ctx};
    adapter(x)->t->route((warren_exchange *)x, &r);
}

static void a_recover(struct wr_exchange *x, struct wr_msg *m)
{
    adapter(x)->t->recover((warren_exchange *)x, (warren_message *)(void *)m);
}

void wr_plugin_route_inner(struct warren_route *r)
{
    struct wr_exchange *x = r->x;
    struct px *p = px_of(x);
    if (p->inner && (!wr_list_empty(&x->bindings) || (p->inner->flags & WR_XTYPE_ROUTE_UNBOUND)))
        INNER(x, p->inner->route(x, r->m, r->emit, r->ctx));
}

int wr_plugin_use_inner(struct wr_exchange *x, struct wr_str type)
{
    struct px *p = px_of(x);
    const struct wr_xtype *t = wr_xtype_find(type);
    int rc = 0;
    if (!t || t == x->type || p->inner || !wr_list_empty(&x->bindings))
        return -1;
    p->inner = t;
    INNER(x, rc = t->init(x));
    if (rc < 0) {
        p->inner = NULL;
        return -1;
    }
    return 0;
}

int wr_plugin_xtype_register(warren_host *h, const struct warren_exchange_type *t)
{
    struct wr_xtype_adapter *a;
    if (!t || t->size < offsetof(struct warren_exchange_type, reserved) || !t->name || !t->route) {
        wr_plugin_log(h, WARREN_LOG_ERROR, "exchange type refused: incomplete description");
        return -1;
    }
    if (!(a = calloc(1, sizeof(*a))) || !(a->name = strdup(t->name))) {
        free(a);
        return -1;
    }
    a->t = t;
    a->host = h;
    a->base.name = a->name;
    a->base.flags = (t->flags & WARREN_XTYPE_ROUTE_UNBOUND) ? WR_XTYPE_ROUTE_UNBOUND : 0;
    a->base.init = a_init;
    a->base.destroy = a_destroy;
    a->base.add = a_add;
    a->base.remove = a_remove;
    a->base.route = a_route;
    a->base.declare = a_declare;
    a->base.validate_binding = a_validate_binding;
    if (t->size >= offsetof(struct warren_exchange_type, reserved) && t->recover)
        a->base.recover = a_recover;
    if (wr_xtype_register(&a->base) < 0) {
        wr_plugin_log(h, WARREN_LOG_ERROR, "exchange type '%s' refused: the name is taken",
                      t->name);
        free(a->name);
        free(a);
        return -1;
    }
    a->next = h->types;
    h->types = a;
    return 0;
}

const struct wr_xtype_adapter *wr_plugin_xtype_next(const struct wr_xtype_adapter *t)
{
    return t->next;
}

const char *wr_plugin_xtype_name(const struct wr_xtype_adapter *t)
{
    return t->name;
}

warren_host *wr_plugin_xtype_host(const struct wr_exchange *x)
{
    return adapter(x)->host;
}

void wr_plugin_xtypes_free(warren_host *h)
{
    while (h->types) {
        struct wr_xtype_adapter *a = h->types;
        h->types = a->next;
        wr_xtype_unregister(&a->base);
        free(a->name);
        free(a);
    }
}
