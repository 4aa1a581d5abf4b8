/*
 * vhost.c - exchanges and queues by name, and the checks RabbitMQ makes
 * before it declares, binds or deletes anything; see vhost.h.
 *
 * The reply codes and texts follow RabbitMQ 3.10 (403 for reserved "amq."
 * names and the default exchange, 404 for missing objects, 405 for another
 * connection's exclusive queue, 406 for inequivalent redeclaration or
 * in-use deletes, 503 for an unknown exchange type).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dedup.h"
#include "broker/qargs.h"
#include "broker/vhost.h"
#include "core/log.h"
#include "core/randname.h"
#include "wire/field.h"

#define VH "' in vhost '%s'"

static bool is_amq(struct wr_str name)
{
    return name.len >= 4 && memcmp(name.ptr, "amq.", 4) == 0;
}

struct wr_exchange *wr_vhost_exchange(struct wr_vhost *vh, struct wr_str name)
{
    struct wr_hnode *n = wr_hmap_get(&vh->exchanges, name);
    return n ? wr_container_of(n, struct wr_exchange, node) : NULL;
}

struct wr_queue *wr_vhost_queue(struct wr_vhost *vh, struct wr_str name)
{
    struct wr_hnode *n = wr_hmap_get(&vh->queues, name);
    return n ? wr_container_of(n, struct wr_queue, node) : NULL;
}

/* An exchange or a queue came or went: no interned key's routing cache
 * may point at what it did before (wr_msgs.names_gen; one counter for the
 * broker's every vhost, so a vhost freed and another made at the same
 * address cannot match an old cache either). */
static void objs_changed(struct wr_vhost *vh)
{
    if (vh->msgs)
        vh->msgs->names_gen++;
}

/* m's key with its cache valid for vh; NULL when vh keeps no cache (a
 * vhost made on its own, not the broker's). */
static struct wr_rkey *route_cache(struct wr_vhost *vh, const struct wr_msg *m)
{
    struct wr_rkey *k = m->rkey;
    if (!vh->msgs || k->pool != vh->msgs)
        return NULL;
    if (k->route_vh != vh || k->route_gen != vh->msgs->names_gen) {
        k->route_vh = vh;
        k->route_gen = vh->msgs->names_gen;
        k->route_x = wr_vhost_exchange(vh, wr_msg_exchange(m));
        k->route_q_known = false;
    }
    return k;
}

struct wr_exchange *wr_vhost_exchange_of(struct wr_vhost *vh, const struct wr_msg *m)
{
    struct wr_rkey *k = route_cache(vh, m);
    return k ? k->route_x : wr_vhost_exchange(vh, wr_msg_exchange(m));
}

struct wr_queue *wr_vhost_queue_of(struct wr_vhost *vh, const struct wr_msg *m)
{
    struct wr_rkey *k = route_cache(vh, m);
    if (!k)
        return wr_vhost_queue(vh, wr_msg_routing_key(m));
    if (!k->route_q_known) {
        k->route_q = wr_vhost_queue(vh, wr_msg_routing_key(m));
        k->route_q_known = true;
    }
    return k->route_q;
}

static int exchange_add(struct wr_vhost *vh, const char *name, const char *type, bool durable)
{
    struct wr_exchange *x =
        wr_exchange_new(vh, wr_str_c(name), wr_xtype_find(wr_str_c(type)), WR_STR_NULL);
    if (!x)
        return WR_ENOMEM;
    x->durable = durable;
    /* RabbitMQ's firehose exchange: internal, clients cannot publish to it. */
    x->internal = strcmp(name, "amq.rabbitmq.trace") == 0;
    if (wr_hmap_put(&vh->exchanges, &x->node) < 0) {
        wr_exchange_free(x);
        return WR_ENOMEM;
    }
    objs_changed(vh);
    if (!*name)
        vh->default_exchange = x;
    return 0;
}

struct wr_vhost *wr_vhost_new(const char *name, struct event_base *base)
{
    static const char *const predeclared[][2] = {
        {"", "direct"},
        {"amq.direct", "direct"},
        {"amq.fanout", "fanout"},
        {"amq.topic", "topic"},
        {"amq.headers", "headers"},
        {"amq.match", "headers"},
        {"amq.rabbitmq.trace", "topic"},
    };
    struct wr_vhost *vh = calloc(1, sizeof(*vh));
    if (!vh || !(vh->name = strdup(name))) {
        free(vh);
        return NULL;
    }
    vh->node.key = wr_str_c(vh->name);
    vh->base = base;
    wr_hmap_init(&vh->exchanges);
    wr_hmap_init(&vh->queues);
    for (size_t i = 0; i < sizeof(predeclared) / sizeof(predeclared[0]); i++) {
        if (exchange_add(vh, predeclared[i][0], predeclared[i][1], true) < 0) {
            wr_vhost_free(vh);
            return NULL;
        }
    }
    return vh;
}

void wr_vhost_free(struct wr_vhost *vh)
{
    struct wr_hnode *n, *nx;
    size_t it;
    if (!vh)
        return;
    /* Everything goes: removing a binding must not auto-delete an exchange
     * behind our back (maybe the next one of the walk below). */
    for (n = wr_hmap_first(&vh->exchanges, &it); n; n = wr_hmap_next(&vh->exchanges, &it, n))
        wr_container_of(n, struct wr_exchange, node)->auto_delete = false;
    for (n = wr_hmap_first(&vh->queues, &it); n; n = nx) {
        nx = wr_hmap_next(&vh->queues, &it, n);
        wr_vhost_queue_delete(vh, wr_container_of(n, struct wr_queue, node));
    }
    for (n = wr_hmap_first(&vh->exchanges, &it); n; n = nx) {
        nx = wr_hmap_next(&vh->exchanges, &it, n);
        struct wr_exchange *x = wr_container_of(n, struct wr_exchange, node);
        wr_hmap_del(&vh->exchanges, n);
        objs_changed(vh);
        wr_exchange_free(x);
    }
    wr_hmap_free(&vh->queues);
    wr_hmap_free(&vh->exchanges);
    free(vh->route_work);
    free(vh->name);
    free(vh);
}

void wr_vhost_defs_changed(struct wr_vhost *vh)
{
    if (vh->persist)
        vh->persist->defs_changed(vh->persist->ctx);
}

/* One durable object came or is about to go: the store logs it. */
static void defs_exchange(struct wr_vhost *vh, struct wr_exchange *x, bool gone)
{
    if (vh->persist && x->durable)
        vh->persist->defs_exchange(vh->persist->ctx, x, gone);
}

static void defs_queue(struct wr_vhost *vh, struct wr_queue *q, bool gone)
{
    if (vh->persist && q->store_id)
        vh->persist->defs_queue(vh->persist->ctx, q, gone);
}

static void defs_binding(struct wr_vhost *vh, struct wr_binding *b, bool gone)
{
    if (vh->persist && b && b->src->durable)
        vh->persist->defs_binding(vh->persist->ctx, b, gone);
}

uint64_t wr_vhost_journal(struct wr_vhost *vh, struct wr_msg *m, struct wr_queue *const *qs,
                          uint32_t n)
{
    struct wr_queue *durable[64], **dq = durable;
    uint32_t nd = 0;
    uint64_t pos;

    bool persistent = wr_msg_persistent(m);

    /* Persistent messages for durable queues; every message for a quorum
     * queue or a stream (always durable), whatever its delivery mode. */
#define JOURNALS(q) ((q)->durable && (persistent || wr_qtype_journals_all((q)->s.type)))
    if (!vh->persist || !(m->flags & WR_MSG_EXT))
        return 0;
    for (uint32_t i = 0; i < n; i++)
        nd += JOURNALS(qs[i]);
    if (!nd)
        return 0;
    if (nd > 64 && !(dq = malloc(nd * sizeof(*dq))))
        return WR_JOURNAL_FAILED;
    nd = 0;
    for (uint32_t i = 0; i < n; i++)
        if (JOURNALS(qs[i]))
            dq[nd++] = qs[i];
#undef JOURNALS
    pos = vh->persist->publish(vh->persist->ctx, m, dq, nd);
    if (dq != durable)
        free(dq);
    return pos ? pos : WR_JOURNAL_FAILED;
}

/* ---- exchanges ---- */

static const char *tf(bool b)
{
    return b ? "true" : "false";
}

static bool ae_equal(struct wr_str a, struct wr_str b)
{
    struct wr_fv x, y;
    int hx = wr_table_get(a, "alternate-exchange", &x) == 1;
    int hy = wr_table_get(b, "alternate-exchange", &y) == 1;
    if (hx != hy)
        return false;
    return !hx || (x.type == y.type && x.type == 'S' && wr_str_eq(x.v.str, y.v.str));
}

int wr_vhost_exchange_declare(struct wr_vhost *vh, const struct wr_exchange_decl *d,
                              struct wr_exchange **out, struct wr_errbuf *err)
{
    struct wr_exchange *x = wr_vhost_exchange(vh, d->name);
    const struct wr_xtype *type;
    struct wr_fv ae;

    if (d->name.len == 0)
        return wr_fail(err, WR_EACCESS_REFUSED, "operation not permitted on the default exchange");
    if (d->passive) {
        if (!x)
            return wr_fail(err, WR_ENOT_FOUND, "no exchange '%.*s" VH, (int)d->name.len,
                           d->name.ptr, vh->name);
        *out = x;
        return 0;
    }
    if (is_amq(d->name) && !x)
        return wr_fail(err, WR_EACCESS_REFUSED,
                       "exchange name '%.*s' contains reserved prefix 'amq.*'", (int)d->name.len,
                       d->name.ptr);
    type = wr_xtype_find(d->type);
    if (!type)
        return wr_fail(err, WR_ECOMMAND_INVALID, "unknown exchange type '%.*s'", (int)d->type.len,
                       d->type.ptr);
    if (x) {
        const char *what = NULL;
        if (x->type != type)
            what = "type";
        else if (x->durable != d->durable)
            what = "durable";
        else if (x->auto_delete != d->auto_delete)
            what = "auto_delete";
        else if (x->internal != d->internal)
            what = "internal";
        else if (!ae_equal(x->args, d->args))
            what = "alternate-exchange"; /* the only argument RabbitMQ compares */
        if (what && x->type != type)
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "inequivalent arg 'type' for exchange '%.*s" VH
                           ": received '%s' but current is '%s'",
                           (int)d->name.len, d->name.ptr, vh->name, type->name, x->type->name);
        if (what)
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "inequivalent arg '%s' for exchange '%.*s" VH, what, (int)d->name.len,
                           d->name.ptr, vh->name);
        *out = x;
        return 0;
    }
    if (d->args.len && wr_table_get(d->args, "alternate-exchange", &ae) == 1 && ae.type != 'S')
        return wr_fail(err, WR_EPRECONDITION_FAILED,
                       "invalid arg 'alternate-exchange' for exchange '%.*s" VH
                       ": {unacceptable_type,%c}",
                       (int)d->name.len, d->name.ptr, vh->name, ae.type);
    if (wr_dedup_args_check(d->args, "exchange", d->name, vh->name, err) < 0)
        return err->code;
    x = wr_exchange_new(vh, d->name, type, d->args);
    if (!x)
        return wr_fail(err, WR_EINTERNAL, "out of memory");
    x->durable = d->durable;
    x->auto_delete = d->auto_delete;
    x->internal = d->internal;
    if (d->args.len && wr_table_get(d->args, "alternate-exchange", &ae) == 1) {
        x->alternate_name = malloc((size_t)ae.v.str.len + 1);
        if (x->alternate_name) {
            memcpy(x->alternate_name, ae.v.str.ptr, ae.v.str.len);
            x->alternate_name[ae.v.str.len] = '\0';
            x->alternate_len = ae.v.str.len;
        }
    }
    if (type->declare) {
        int rc = type->declare(x, err); /* a plugin's type checks its arguments */
        if (rc < 0) {
            wr_exchange_free(x);
            return rc;
        }
    }
    if (wr_hmap_put(&vh->exchanges, &x->node) < 0) {
        wr_exchange_free(x);
        return wr_fail(err, WR_EINTERNAL, "out of memory");
    }
    objs_changed(vh);
    defs_exchange(vh, x, false);
    *out = x;
    return 0;
}

int wr_vhost_exchange_delete(struct wr_vhost *vh, struct wr_str name, bool if_unused,
                             struct wr_errbuf *err)
{
    struct wr_exchange *x;
    if (name.len == 0)
        return wr_fail(err, WR_EACCESS_REFUSED, "operation not permitted on the default exchange");
    if (is_amq(name))
        return wr_fail(err, WR_EACCESS_REFUSED,
                       "deletion of system exchange '%.*s" VH " not allowed", (int)name.len,
                       name.ptr, vh->name);
    x = wr_vhost_exchange(vh, name);
    if (!x)
        return 0; /* RabbitMQ: deleting what is not there succeeds */
    if (if_unused && !wr_list_empty(&x->bindings))
        return wr_fail(err, WR_EPRECONDITION_FAILED, "exchange '%.*s" VH " in use", (int)name.len,
                       name.ptr, vh->name);
    wr_vhost_exchange_remove(vh, x);
    return 0;
}

void wr_vhost_exchange_remove(struct wr_vhost *vh, struct wr_exchange *x)
{
    wr_hmap_del(&vh->exchanges, &x->node);
    objs_changed(vh);
    defs_exchange(vh, x, true);
    wr_exchange_free(x);
}

/* ---- queues ---- */

static int queue_locked(struct wr_vhost *vh, struct wr_queue *q, struct wr_errbuf *err)
{
    return wr_fail(err, WR_ERESOURCE_LOCKED,
                   "cannot obtain exclusive access to locked queue '%s" VH
                   ". It could be originally declared on another connection or the exclusive "
                   "property value does not match that of the original declaration.",
                   q->name, vh->name);
}

int wr_vhost_queue_declare(struct wr_vhost *vh, const struct wr_queue_decl *d,
                           struct wr_queue **out, bool *created, struct wr_errbuf *err)
{
    char gen[32];
    struct wr_str name = d->name;
    struct wr_queue *q;
    int rc;

    *created = false;
    if (name.len == 0 && !d->passive) {
        do
            wr_random_name(gen, sizeof(gen), "amq.gen-", 22);
        while (wr_vhost_queue(vh, wr_str_c(gen)));
        name = wr_str_c(gen);
    }
    q = wr_vhost_queue(vh, name);
    if (d->passive) {
        if (!q)
            return wr_fail(err, WR_ENOT_FOUND, "no queue '%.*s" VH, (int)name.len, name.ptr,
                           vh->name);
        if (q->exclusive && q->owner != d->owner)
            return queue_locked(vh, q, err);
        wr_queue_touch(q); /* a passive declare counts as use for x-expires */
        *out = q;
        return 0;
    }
    if (is_amq(d->name) && !d->internal)
        return wr_fail(err, WR_EACCESS_REFUSED,
                       "queue name '%.*s' contains reserved prefix 'amq.*'", (int)name.len,
                       name.ptr);
    /* RabbitMQ 3.10 refuses a server-named stream before anything else,
     * and compares a stream's redeclaration without checking its
     * arguments (x-max-priority on a redeclare goes unnoticed there). */
    if (wr_qargs_type(d->args) == WR_QTYPE_STREAM && !q && (d->server_named || d->name.len == 0))
        return wr_fail(err, WR_EPRECONDITION_FAILED,
                       "Cannot declare a server-named queue for type rabbit_stream_queue");
    if (!(q && q->stream) && (rc = wr_qargs_validate(d->args, name, vh->name, err)) < 0)
        return rc;
    if (q) {
        if (q->exclusive && q->owner != d->owner)
            return queue_locked(vh, q, err);
        if (q->durable != d->durable)
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "inequivalent arg 'durable' for queue '%s" VH
                           ": received '%s' but current is '%s'",
                           q->name, vh->name, tf(d->durable), tf(q->durable));
        if (q->auto_delete != d->auto_delete)
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "inequivalent arg 'auto_delete' for queue '%s" VH
                           ": received '%s' but current is '%s'",
                           q->name, vh->name, tf(d->auto_delete), tf(q->auto_delete));
        if (q->exclusive != d->exclusive)
            return queue_locked(vh, q, err);
        if ((rc = wr_qargs_equivalent(q->args, d->args, q->name, vh->name, err)) < 0)
            return rc;
        wr_queue_touch(q); /* a redeclare counts as use for x-expires */
        *out = q;
        return 0;
    }
    if (wr_qargs_type(d->args) != WR_QTYPE_CLASSIC) {
        /* RabbitMQ 3.10's refusals for a new quorum queue or stream, in
         * its order. */
        const char *bad = d->exclusive     ? "exclusive-owner"
                          : !d->durable    ? "non-durable"
                          : d->auto_delete ? "auto-delete"
                                           : NULL;
        if (wr_qargs_type(d->args) == WR_QTYPE_STREAM) /* a stream's order */
            bad = d->auto_delete ? "auto-delete"
                  : d->exclusive ? "exclusive-owner"
                  : !d->durable  ? "non-durable"
                                 : NULL;
        if (d->server_named || d->name.len == 0)
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "Cannot declare a server-named queue for type %s",
                           wr_qtype_module(wr_qargs_type(d->args)));
        if (bad)
            return wr_fail(err, WR_EPRECONDITION_FAILED, "invalid property '%s' for queue '%.*s" VH,
                           bad, (int)name.len, name.ptr, vh->name);
    }
    q = wr_queue_new(vh, name, d->args);
    if (!q)
        return wr_fail(err, WR_EINTERNAL, "out of memory");
    q->durable = d->durable;
    q->exclusive = d->exclusive;
    q->auto_delete = d->auto_delete;
    q->owner = d->exclusive ? d->owner : NULL;
    if (wr_hmap_put(&vh->queues, &q->node) < 0) {
        wr_queue_unref(q);
        return wr_fail(err, WR_EINTERNAL, "out of memory");
    }
    objs_changed(vh);
    /* Every queue is bound to the default exchange implicitly: routing by
     * name is done in wr_vhost_route, no binding object needed. */
    if (q->durable && !q->exclusive) {
        q->store_id = ++vh->last_queue_id;
        defs_queue(vh, q, false);
    }
    *created = true;
    if (vh->churn)
        vh->churn->queues_created++;
    *out = q;
    return 0;
}

int wr_vhost_queue_use(struct wr_vhost *vh, struct wr_str name, void *owner, struct wr_queue **out,
                       struct wr_errbuf *err)
{
    struct wr_queue *q = wr_vhost_queue(vh, name);
    if (!q)
        return wr_fail(err, WR_ENOT_FOUND, "no queue '%.*s" VH, (int)name.len, name.ptr, vh->name);
    if (q->exclusive && q->owner != owner)
        return queue_locked(vh, q, err);
    *out = q;
    return 0;
}

void wr_vhost_queue_delete(struct wr_vhost *vh, struct wr_queue *q)
{
    if (q->deleted)
        return;
    wr_hmap_del(&vh->queues, &q->node);
    objs_changed(vh);
    if (vh->churn)
        vh->churn->queues_deleted++;
    defs_queue(vh, q, true);
    wr_queue_delete(q);
    wr_queue_unref(q); /* the vhost's reference */
}

int wr_vhost_queue_delete_checked(struct wr_vhost *vh, struct wr_str name, void *owner,
                                  bool if_unused, bool if_empty, uint32_t *count,
                                  struct wr_errbuf *err)
{
    struct wr_queue *q = wr_vhost_queue(vh, name);
    *count = 0;
    if (!q)
        return 0; /* RabbitMQ 3.10: delete-ok with a count of 0 */
    if (q->exclusive && q->owner != owner)
        return queue_locked(vh, q, err);
    if (if_unused && q->nconsumers)
        return wr_fail(err, WR_EPRECONDITION_FAILED, "queue '%s" VH " in use", q->name, vh->name);
    if (if_empty && q->ready)
        return wr_fail(err, WR_EPRECONDITION_FAILED, "queue '%s" VH " not empty", q->name,
                       vh->name);
    *count = q->ready;
    wr_vhost_queue_delete(vh, q);
    return 0;
}

/* ---- bindings ---- */

/* Unbinding skips the exclusive-queue check (RabbitMQ allows it). */
#define BIND_ANY_OWNER ((void *)&bind_any_owner)
static const char bind_any_owner;

static int bind_lookup(struct wr_vhost *vh, struct wr_str src, struct wr_str dest,
                       bool dest_is_exchange, void *owner, struct wr_exchange **xs, void **dp,
                       struct wr_list **dl, struct wr_errbuf *err)
{
    /* Before any existence check, as RabbitMQ orders them. */
    if (src.len == 0 || (dest_is_exchange && dest.len == 0))
        return wr_fail(err, WR_EACCESS_REFUSED, "operation not permitted on the default exchange");
    if (dest_is_exchange) {
        struct wr_exchange *xd = wr_vhost_exchange(vh, dest);
        if (!xd)
            return wr_fail(err, WR_ENOT_FOUND, "no exchange '%.*s" VH, (int)dest.len, dest.ptr,
                           vh->name);
        *dp = xd;
        *dl = &xd->bound_to_me;
    } else {
        struct wr_queue *q = wr_vhost_queue(vh, dest);
        if (!q)
            return wr_fail(err, WR_ENOT_FOUND, "no queue '%.*s" VH, (int)dest.len, dest.ptr,
                           vh->name);
        if (owner != BIND_ANY_OWNER && q->exclusive && q->owner != owner)
            return queue_locked(vh, q, err);
        *dp = q;
        *dl = &q->bound_to_me;
    }
    *xs = wr_vhost_exchange(vh, src);
    if (!*xs)
        return wr_fail(err, WR_ENOT_FOUND, "no exchange '%.*s" VH, (int)src.len, src.ptr, vh->name);
    return 0;
}

int wr_vhost_bind(struct wr_vhost *vh, struct wr_str src, struct wr_str dest, bool dest_is_exchange,
                  struct wr_str key, struct wr_str args, void *owner, struct wr_errbuf *err)
{
    struct wr_exchange *xs;
    void *dp;
    struct wr_list *dl;
    int rc = bind_lookup(vh, src, dest, dest_is_exchange, owner, &xs, &dp, &dl, err);
    if (rc < 0)
        return rc;
    if (xs->type->validate_binding && (rc = xs->type->validate_binding(xs, key, args, err)) < 0)
        return rc;
    if (xs->type->validate && (rc = xs->type->validate(key, args)) < 0)
        return wr_fail(err, rc, "invalid binding arguments for exchange '%s" VH "%s", xs->name,
                       vh->name,
                       xs->type == &wr_xtype_headers ? ": Invalid x-match field value" : "");
    rc = wr_exchange_bind(xs, dest_is_exchange ? WR_DEST_EXCHANGE : WR_DEST_QUEUE, dp, dl, key,
                          args);
    if (rc < 0)
        return wr_fail(err, rc == WR_ENOMEM ? WR_EINTERNAL : rc, "cannot bind");
    if (xs->durable)
        defs_binding(vh, wr_exchange_binding_find(xs, dp, key, args), false);
    return 0;
}

int wr_vhost_unbind(struct wr_vhost *vh, struct wr_str src, struct wr_str dest,
                    bool dest_is_exchange, struct wr_str key, struct wr_str args, void *owner,
                    struct wr_errbuf *err)
{
    struct wr_exchange *xs;
    void *dp;
    struct wr_list *dl;
    struct wr_binding *b;
    /* RabbitMQ: unbinding from or to something missing succeeds, and an
     * exclusive queue may be unbound from any connection. */
    (void)owner;
    int rc = bind_lookup(vh, src, dest, dest_is_exchange, BIND_ANY_OWNER, &xs, &dp, &dl, err);
    if (rc == WR_ENOT_FOUND)
        return 0;
    if (rc < 0)
        return rc;
    b = wr_exchange_binding_find(xs, dp, key, args);
    if (b) {
        /* Logged first: removing its last binding may auto-delete xs. */
        defs_binding(vh, b, true);
        wr_binding_remove(b);
    }
    return 0; /* unbinding what is not bound succeeds, as in RabbitMQ */
}
