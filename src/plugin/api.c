/*
 * api.c - struct warren_api: what a plugin may call, over the broker's
 * own functions (include/warren/plugin.h documents each).
 *
 * Handles are the broker's objects under opaque names; nothing here lets
 * a plugin change an exchange, a binding or a message in place (a changed
 * message is a copy). Timers belong to their plugin and are freed with it.
 */
#include "config.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/publish.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "core/log.h"
#include "plugin/api.h"
#include "plugin/plugin.h"
#include "wire/field.h"
#include "wire/methods.gen.h"

#define X(p) ((struct wr_exchange *)(void *)(p))
#define CX(p) ((const struct wr_exchange *)(const void *)(p))
#define B(p) ((struct wr_binding *)(void *)(p))
#define CB(p) ((const struct wr_binding *)(const void *)(p))
#define M(p) ((struct wr_msg *)(void *)(p))
#define CM(p) ((const struct wr_msg *)(const void *)(p))

static struct warren_bytes bytes(struct wr_str s)
{
    return (struct warren_bytes){s.ptr, s.len};
}

static struct wr_str str(struct warren_bytes b)
{
    return (struct wr_str){b.ptr, (uint32_t)b.len};
}

/* ---- the plugin itself ---- */

static enum wr_log_level level_of(enum warren_log_level l)
{
    return l <= WARREN_LOG_ERROR     ? WR_LOG_ERROR
           : l == WARREN_LOG_WARNING ? WR_LOG_WARNING
           : l == WARREN_LOG_INFO    ? WR_LOG_INFO
                                     : WR_LOG_DEBUG;
}

void wr_plugin_log(warren_host *h, enum warren_log_level level, const char *fmt, ...)
{
    char ctx[160];
    va_list ap;
    if (!wr_log_enabled(level_of(level)))
        return;
    snprintf(ctx, sizeof ctx, "plugin %s", h->desc ? h->desc->name : "?");
    va_start(ap, fmt);
    wr_logv(level_of(level), ctx, fmt, ap);
    va_end(ap);
}

/* settings are "NAME.KEY=VALUE\n" lines; the value is returned from a
 * per-host copy so it can be NUL-terminated. */
static const char *api_config_get(warren_host *h, const char *key)
{
    const char *p = h->set->settings, *name = h->desc->name;
    size_t nl = strlen(name), kl = strlen(key);
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > nl + kl + 1 && !strncmp(p, name, nl) && p[nl] == '.' &&
            !strncmp(p + nl + 1, key, kl) && p[nl + 1 + kl] == '=') {
            const char *v = p + nl + kl + 2;
            size_t vl = len - nl - kl - 2;
            char *c = malloc(vl + 1);
            if (!c)
                return NULL;
            memcpy(c, v, vl);
            c[vl] = '\0';
            free(h->config_value);
            h->config_value = c;
            return c;
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

static void api_set_data(warren_host *h, void *data)
{
    h->data = data;
}

static void *api_get_data(warren_host *h)
{
    return h->data;
}

/* ---- time ---- */

static uint64_t api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t api_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct warren_timer {
    struct event *ev;
    void (*cb)(void *arg);
    void *arg;
    warren_host *h;
    struct warren_timer *prev, *next; /* the host's timers */
};

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct warren_timer *t = arg;
    (void)fd;
    (void)what;
    wr_clock_update();
    t->cb(t->arg);
}

static warren_timer *api_timer_new(warren_host *h, void (*cb)(void *arg), void *arg)
{
    struct warren_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ev = evtimer_new(h->set->b->base, timer_cb, t);
    if (!t->ev) {
        free(t);
        return NULL;
    }
    t->cb = cb;
    t->arg = arg;
    t->h = h;
    t->next = h->timers;
    if (h->timers)
        h->timers->prev = t;
    h->timers = t;
    return t;
}

static void api_timer_arm(warren_timer *t, uint64_t after_ms)
{
    struct timeval tv = {(time_t)(after_ms / 1000), (suseconds_t)(after_ms % 1000) * 1000};
    evtimer_add(t->ev, &tv);
}

static void api_timer_cancel(warren_timer *t)
{
    evtimer_del(t->ev);
}

static void api_timer_free(warren_timer *t)
{
    if (!t)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        t->h->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    event_free(t->ev);
    free(t);
}

void wr_plugin_timers_free(warren_host *h)
{
    while (h->timers)
        api_timer_free(h->timers);
}

/* ---- exchanges and bindings ---- */

static struct warren_bytes api_exchange_name(const warren_exchange *x)
{
    return bytes(wr_exchange_name(CX(x)));
}

static struct warren_bytes api_exchange_vhost(const warren_exchange *x)
{
    const char *n = CX(x)->vhost->name;
    return (struct warren_bytes){n, strlen(n)};
}

static bool api_exchange_durable(const warren_exchange *x)
{
    return CX(x)->durable;
}

static struct warren_value value_of(const struct wr_fv *v)
{
    struct warren_value out = {WARREN_VALUE_OTHER, 0, {NULL, 0}};
    int64_t i;
    if (v->type == 'S' || v->type == 's' || v->type == 'x') {
        out.type = WARREN_VALUE_STRING;
        out.s = bytes(v->v.str);
    } else if (v->type == 't') {
        out.type = WARREN_VALUE_BOOL;
        out.i = v->v.t;
    } else if (v->type == 'T') {
        out.type = WARREN_VALUE_INT;
        out.i = (int64_t)v->v.T;
    } else if (wr_fv_int(v, &i)) {
        out.type = WARREN_VALUE_INT;
        out.i = i;
    }
    return out;
}

static struct warren_value table_value(struct wr_str table, const char *name)
{
    struct warren_value none = {WARREN_VALUE_NONE, 0, {NULL, 0}};
    struct wr_fv v;
    if (!table.len || wr_table_get(table, name, &v) != 1)
        return none;
    return value_of(&v);
}

static struct warren_value api_exchange_arg(const warren_exchange *x, const char *name)
{
    return table_value(CX(x)->args, name);
}

static void api_exchange_set_state(warren_exchange *x, void *state)
{
    ((struct px *)X(x)->type_state)->state = state;
}

static void *api_exchange_get_state(const warren_exchange *x)
{
    return ((struct px *)CX(x)->type_state)->state;
}

static int api_exchange_use_inner(warren_exchange *x, struct warren_bytes type)
{
    return wr_plugin_use_inner(X(x), str(type));
}

static bool api_exchange_type_exists(struct warren_bytes type)
{
    return wr_xtype_find(str(type)) != NULL;
}

static int api_exchange_publish(warren_exchange *x, warren_message *m)
{
    struct wr_exchange *ex = X(x);
    warren_host *h = wr_plugin_xtype_host(ex);
    uint64_t held;
    int n, rc;
    if (!h->pub && !(h->pub = calloc(1, sizeof(*h->pub))))
        return -1;
    /* A held message's body may be on disk only: read it back while its
     * record still says where. */
    if ((M(m)->flags & WR_MSG_HELD) && !wr_msg_body(M(m)))
        return -1;
    held = wr_exchange_unhold(M(m));
    rc = wr_vhost_publish(ex->vhost, ex, M(m), NULL, h->pub);
    wr_exchange_release_id(ex, held);
    if (rc < 0)
        return -1;
    n = h->pub->journal_failed ? 0 : (int)h->pub->route.n;
    wr_broker_mem_check(h->set->b);
    return n;
}

static void api_message_release(warren_exchange *x, warren_message *m)
{
    wr_exchange_release(X(x), M(m));
}

static int api_queue_info(warren_host *h, struct warren_bytes vhost, struct warren_bytes name,
                          struct warren_queue_info *out)
{
    struct wr_vhost *vh = wr_broker_vhost(h->set->b, str(vhost));
    struct wr_queue *q = vh ? wr_vhost_queue(vh, str(name)) : NULL;
    struct warren_queue_info i;
    size_t n;
    if (!q || !out)
        return -1;
    memset(&i, 0, sizeof i);
    i.size = sizeof i;
    i.ready = wr_queue_ready(q);
    i.unacked = q->unacked;
    i.consumers = q->nconsumers;
    i.durable = q->durable;
    i.exclusive = q->exclusive;
    i.auto_delete = q->auto_delete;
    n = out->size < sizeof i ? out->size : sizeof i;
    memcpy(out, &i, n);
    out->size = n;
    return 0;
}

static struct warren_bytes api_binding_key(const warren_binding *b)
{
    return bytes(CB(b)->key);
}

static struct warren_value api_binding_arg(const warren_binding *b, const char *name)
{
    return table_value(CB(b)->args, name);
}

static struct warren_bytes api_binding_destination(const warren_binding *b)
{
    const struct wr_binding *bd = CB(b);
    return bytes(bd->kind == WR_DEST_QUEUE ? wr_queue_name((struct wr_queue *)bd->dest)
                                           : wr_exchange_name((struct wr_exchange *)bd->dest));
}

static bool api_binding_to_exchange(const warren_binding *b)
{
    return CB(b)->kind == WR_DEST_EXCHANGE;
}

/* A binding's type_data is the inner type's when there is one. */
static void api_binding_set_state(warren_binding *b, void *state)
{
    if (!((struct px *)B(b)->src->type_state)->inner)
        B(b)->type_data = state;
}

static void *api_binding_get_state(const warren_binding *b)
{
    return ((struct px *)CB(b)->src->type_state)->inner ? NULL : CB(b)->type_data;
}

/* ---- routing ---- */

static warren_message *api_route_message(warren_route *r)
{
    return (warren_message *)(void *)r->m->msg;
}

static struct warren_bytes api_route_key(warren_route *r)
{
    return bytes(r->m->routing_key);
}

static bool api_route_first(warren_route *r)
{
    return r->m->first;
}

static void api_route_emit(warren_route *r, warren_binding *b)
{
    if (b)
        r->emit(B(b), r->ctx);
}

static void api_route_take(warren_route *r)
{
    r->emit(NULL, r->ctx);
}

static int api_route_hold(warren_route *r, warren_message *m)
{
    if (r->x->type->recover && wr_exchange_hold(r->x, M(m), r->m->res) < 0)
        return -1;
    r->emit(NULL, r->ctx); /* taken (in memory only without a recover hook) */
    return 0;
}

static void api_route_inner(warren_route *r)
{
    wr_plugin_route_inner(r);
}

/* ---- messages ---- */

static warren_message *api_message_ref(warren_message *m)
{
    return (warren_message *)(void *)wr_msg_ref(M(m));
}

static void api_message_unref(warren_message *m)
{
    if (m)
        wr_msg_unref(M(m));
}

static struct warren_bytes api_message_routing_key(const warren_message *m)
{
    return bytes(wr_msg_routing_key(CM(m)));
}

static struct warren_bytes api_message_body(warren_message *m)
{
    uint8_t *b = wr_msg_body(M(m));
    return (struct warren_bytes){(const char *)b, b ? M(m)->body_len : 0};
}

static bool api_message_persistent(const warren_message *m)
{
    return wr_msg_persistent(CM(m));
}

static uint64_t api_message_published_ms(const warren_message *m)
{
    return CM(m)->published_ms;
}

static struct warren_value api_message_header(const warren_message *m, const char *name)
{
    return table_value(wr_msg_headers(CM(m)), name);
}

static struct warren_value api_message_property(const warren_message *m, const char *name)
{
    /* the three that are numbers; the strings are wr_prop_strings */
    static const struct {
        const char *name;
        unsigned flag;
    } nums[] = {
        {"timestamp", WR_BASIC_TIMESTAMP_FLAG},
        {"delivery_mode", WR_BASIC_DELIVERY_MODE_FLAG},
        {"priority", WR_BASIC_PRIORITY_FLAG},
    };
    struct warren_value out = {WARREN_VALUE_NONE, 0, {NULL, 0}};
    struct wr_basic_props p;
    struct wr_rd r = wr_rd_init(wr_msg_props(CM(m)), CM(m)->props_len);

    memset(&p, 0, sizeof p);
    if (!CM(m)->props_len || wr_basic_props_decode(&r, &p) < 0)
        return out;
    for (size_t i = 0; i < WR_PROP_STRINGS; i++) {
        const struct wr_prop_string *ps = &wr_prop_strings[i];
        if (strcmp(ps->name, name) != 0)
            continue;
        if (p.flags & ps->flag) {
            out.type = WARREN_VALUE_STRING;
            out.s = bytes(*(const struct wr_str *)(const void *)((const char *)&p + ps->off));
        }
        return out;
    }
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (strcmp(nums[i].name, name) != 0)
            continue;
        if (p.flags & nums[i].flag) {
            out.type = WARREN_VALUE_INT;
            out.i = nums[i].flag == WR_BASIC_TIMESTAMP_FLAG       ? (int64_t)p.timestamp
                    : nums[i].flag == WR_BASIC_DELIVERY_MODE_FLAG ? p.delivery_mode
                                                                  : p.priority;
        }
        return out;
    }
    return out;
}

/* A signed 32-bit integer when it fits (what clients send for small
 * numbers, and RabbitMQ's plugins write), else a signed 64-bit one. */
static warren_message *api_message_with_int_header(warren_message *m, const char *name, int64_t v)
{
    struct wr_fv fv;
    if (v >= INT32_MIN && v <= INT32_MAX) {
        fv.type = 'I';
        fv.v.I = (int32_t)v;
    } else {
        fv.type = 'l';
        fv.v.l = v;
    }
    return (warren_message *)(void *)wr_msg_with_header(CM(m), name, &fv);
}

static struct warren_value api_table_get(struct warren_bytes table, const char *name)
{
    if (table.len > UINT32_MAX || wr_table_validate((const uint8_t *)table.ptr, table.len) < 0) {
        struct warren_value bad = {WARREN_VALUE_NONE, 0, {NULL, 0}};
        return bad;
    }
    return table_value(str(table), name);
}

static const struct warren_api api = {
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .size = sizeof(struct warren_api),
    .log = wr_plugin_log,
    .config_get = api_config_get,
    .set_data = api_set_data,
    .get_data = api_get_data,
    .register_exchange_type = wr_plugin_xtype_register,
    .now_ms = api_now_ms,
    .wall_ms = api_wall_ms,
    .timer_new = api_timer_new,
    .timer_arm = api_timer_arm,
    .timer_cancel = api_timer_cancel,
    .timer_free = api_timer_free,
    .exchange_name = api_exchange_name,
    .exchange_vhost = api_exchange_vhost,
    .exchange_durable = api_exchange_durable,
    .exchange_arg = api_exchange_arg,
    .exchange_set_state = api_exchange_set_state,
    .exchange_get_state = api_exchange_get_state,
    .exchange_use_inner = api_exchange_use_inner,
    .exchange_type_exists = api_exchange_type_exists,
    .exchange_publish = api_exchange_publish,
    .message_release = api_message_release,
    .queue_info = api_queue_info,
    .binding_key = api_binding_key,
    .binding_arg = api_binding_arg,
    .binding_destination = api_binding_destination,
    .binding_to_exchange = api_binding_to_exchange,
    .binding_set_state = api_binding_set_state,
    .binding_get_state = api_binding_get_state,
    .route_message = api_route_message,
    .route_key = api_route_key,
    .route_first = api_route_first,
    .route_emit = api_route_emit,
    .route_take = api_route_take,
    .route_hold = api_route_hold,
    .route_inner = api_route_inner,
    .message_ref = api_message_ref,
    .message_unref = api_message_unref,
    .message_routing_key = api_message_routing_key,
    .message_body = api_message_body,
    .message_persistent = api_message_persistent,
    .message_published_ms = api_message_published_ms,
    .message_header = api_message_header,
    .message_property = api_message_property,
    .message_with_int_header = api_message_with_int_header,
    .table_get = api_table_get,
    .register_auth_backend = wr_plugin_auth_register,
    .auth_changed = wr_plugin_auth_changed,
    .on_reload = wr_plugin_on_reload,
    .pattern_new = wr_plugin_pattern_new,
    .pattern_match = wr_plugin_pattern_match,
    .pattern_free = wr_plugin_pattern_free,
    .password_matches = wr_plugin_password_matches,
};

const struct warren_api *wr_plugin_api(void)
{
    return &api;
}
