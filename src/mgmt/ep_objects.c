/*
 * ep_objects.c - management API: exchanges, queues, bindings, publish and get.
 *
 * Every change goes through the broker's own operations (broker/vhost.h
 * declare, delete, bind and unbind with RabbitMQ's checks; broker/publish.h
 * for a publish; broker/queue.h for get and purge) after the AMQP
 * permission check the same operation needs over AMQP, so the HTTP API
 * can do nothing a client on a channel could not. As RabbitMQ words it, a
 * refused permission is 401 "Access refused." (publish and get keep the
 * channel error's text, as RabbitMQ's do), a broker refusal 400 with the
 * text after the reply code's name, and a missing object 404.
 *
 * Listings hand wr_mgmt_list rows that hold only names, so a page of
 * queues costs the page: building one queue's JSON is O(1) plus one look
 * at the head of each priority level (head_message_age_s).
 *
 * Bindings are named in paths by RabbitMQ's "properties key": the routing
 * key percent-encoded (quote_plus, "~" as %7E), "~" for an empty key, and
 * "~" and a hash of the arguments when there are any (props_key below).
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "auth/auth.h"
#include "broker/access.h"
#include "broker/broker.h"
#include "broker/dedup.h"
#include "broker/exchange.h"
#include "broker/move.h"
#include "broker/msg.h"
#include "broker/publish.h"
#include "broker/queue.h"
#include "broker/stats.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/utf8.h"
#include "mgmt/api.h"
#include "mgmt/argshash.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/server.h"
#include "store/jsonfield.h"
#include "wire/field.h"
#include "wire/methods.gen.h"

#define NAME_MAX_BYTES 255 /* AMQP short strings: names, routing keys */

/* ---- small things ---- */

/* The path's name for the default exchange. */
static struct wr_str exchange_arg(struct wr_str s)
{
    return wr_str_eqc(s, "amq.default") ? WR_STR("") : s;
}

static bool query_true(struct wr_mgmt_req *rq, const char *key)
{
    const char *v = wr_mgmt_query(rq, key);
    return v && !strcmp(v, "true");
}

/* The text of a broker refusal after its "NAME - " prefix, as RabbitMQ's
 * API shows most of them. */
static const char *bare(const struct wr_errbuf *err)
{
    const char *s = strstr(err->text, " - ");
    return s ? s + 3 : err->text;
}

static void access_refused(struct wr_mgmt_req *rq)
{
    wr_mgmt_error(rq, 401, "not_authorised", "Access refused.");
}

/* A refusal of a declare, delete, bind or purge. */
static void refused(struct wr_mgmt_req *rq, const struct wr_errbuf *err)
{
    switch (err->code) {
    case WR_EACCESS_REFUSED:
        access_refused(rq);
        break;
    case WR_ENOT_FOUND:
        wr_mgmt_error(rq, 404, "not_found", bare(err));
        break;
    case WR_ENOMEM:
    case WR_EINTERNAL:
        wr_mgmt_error(rq, 500, "internal_error", bare(err));
        break;
    default:
        wr_mgmt_error(rq, 400, "bad_request", bare(err));
        break;
    }
}

/* A refusal of a publish, as RabbitMQ's API passes on the channel error:
 * "404 NOT_FOUND - no exchange 'x' in vhost '/'". */
static void refused_coded(struct wr_mgmt_req *rq, const struct wr_errbuf *err)
{
    wr_mgmt_errorf(rq, 400, "bad_request", "%d %s", wr_err_reply_code(err->code), err->text);
}

/* A PUT names a vhost that must exist (RabbitMQ's own 404 for it). */
static struct wr_vhost *vhost_for_put(struct wr_mgmt_req *rq)
{
    if (!wr_broker_vhost(rq->b, rq->arg[0])) {
        wr_mgmt_error(rq, 404, "not_found", "vhost_not_found");
        return NULL;
    }
    return wr_mgmt_vhost(rq, rq->arg[0], true);
}

/* A name from the path that must fit an AMQP short string. */
static bool name_ok(struct wr_mgmt_req *rq, struct wr_str name, const char *what)
{
    if (name.len <= NAME_MAX_BYTES)
        return true;
    wr_mgmt_errorf(rq, 400, "bad_request", "%s name too long (%u bytes, at most %d)", what,
                   name.len, NAME_MAX_BYTES);
    return false;
}

/* RabbitMQ's "[{key_missing,a},{key_missing,b}]" for required body keys
 * (listed in alphabetical order). False when answered. */
static bool keys_present(struct wr_mgmt_req *rq, json_t *body, const char *const *keys)
{
    char reason[256] = "";
    size_t n = 0;
    for (size_t i = 0; keys[i]; i++) {
        if (json_object_get(body, keys[i]))
            continue;
        n += (size_t)snprintf(reason + n, n < sizeof(reason) ? sizeof(reason) - n : 0,
                              "%s{key_missing,%s}", n ? "," : "[", keys[i]);
    }
    if (!n)
        return true;
    if (n < sizeof(reason) - 1)
        strcat(reason, "]");
    wr_mgmt_error(rq, 400, "bad_request", reason);
    return false;
}

/* ---- permissions ---- */

static struct wr_principal *principal(struct wr_mgmt_req *rq, struct wr_vhost *vh,
                                      struct wr_principal *who)
{
    memset(who, 0, sizeof(*who));
    wr_principal_set(who, rq->user, wr_mgmt_vperm(rq, vh), vh->name,
                     wr_users_generation(rq->b->users));
    return who;
}

/* The AMQP permission `op` on a queue or exchange; answers 401 when not. */
static bool may(struct wr_mgmt_req *rq, struct wr_principal *who, enum wr_perm_op op,
                const char *kind, struct wr_str name)
{
    struct wr_errbuf err;
    if (wr_access_check(who, op, kind, name, &err) == 0)
        return true;
    access_refused(rq);
    return false;
}

/* A creating declare that names another exchange in its arguments (an
 * alternate or dead-letter exchange): read on the new object, write on
 * that exchange, as over AMQP. */
static bool may_name_exchange(struct wr_mgmt_req *rq, struct wr_principal *who, const char *kind,
                              struct wr_str name, struct wr_str args, const char *arg)
{
    struct wr_fv v;
    if (!args.len || wr_table_get(args, arg, &v) != 1 || v.type != 'S')
        return true;
    return may(rq, who, WR_PERM_READ, kind, name) &&
           may(rq, who, WR_PERM_WRITE, "exchange", v.v.str);
}

/* ---- encodings ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; NULL when out of memory. */
static char *b64_encode(const uint8_t *p, size_t n, size_t *outlen)
{
    char *o = malloc((n + 2) / 3 * 4 + 1), *w = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *w++ = b64chars[(v >> 18) & 63];
        *w++ = b64chars[(v >> 12) & 63];
        *w++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        *w++ = i + 2 < n ? b64chars[v & 63] : '=';
    }
    *w = '\0';
    *outlen = (size_t)(w - o);
    return o;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

/* Decode base64 (padding optional, no whitespace). -1: not base64; -2:
 * out of memory. */
static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    uint8_t *o = malloc(n / 4 * 3 + 3);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (!o)
        return -2;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i]);
        if (v < 0) {
            free(o);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *outlen = k;
    return 0;
}

/* mochiweb's quote_plus as RabbitMQ uses it: letters, digits and "-_.~"
 * as they are (and "~" too unless tilde_safe is false: RabbitMQ's
 * binding keys escape it as %7E), space as '+', every other byte %XX. */
static char *quote_plus(struct wr_str s, bool tilde_safe)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = malloc((size_t)s.len * 3 + 1), *w = o;
    if (!o)
        return NULL;
    for (uint32_t i = 0; i < s.len; i++) {
        uint8_t c = (uint8_t)s.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || (c == '~' && tilde_safe)) {
            *w++ = (char)c;
        } else if (c == ' ') {
            *w++ = '+';
        } else {
            *w++ = '%';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
    }
    *w = '\0';
    return o;
}

/* ---- binding names ---- */

/* RabbitMQ's properties key of a binding (malloc'd; NULL: out of memory). */
static char *props_key(struct wr_str key, struct wr_str args)
{
    if (!key.len && !args.len)
        return strdup("~");
    char *q = quote_plus(key, false);
    if (!q || !args.len)
        return q;
    uint32_t h = wr_mgmt_args_hash(args);
    uint8_t be[4] = {(uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h};
    size_t n, ql = strlen(q);
    char *b = b64_encode(be, 4, &n);
    char *o = b ? malloc(ql + 1 + n + 1) : NULL;
    if (!o) {
        free(q);
        free(b);
        return NULL;
    }
    memcpy(o, q, ql);
    o[ql] = '~';
    size_t k = ql + 1;
    for (size_t i = 0; i < n; i++) {
        /* base64url without padding */
        if (b[i] == '=')
            break;
        o[k++] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
    }
    o[k] = '\0';
    free(q);
    free(b);
    return o;
}

/* One binding as listings show it: a real one, or the default
 * exchange's implicit binding to a queue (source "", key = its name). */
struct bview {
    struct wr_vhost *vh;
    struct wr_str src, dest, key, args;
    bool to_queue;
    char *sort; /* source \0 destination \0 key \0 properties key */
    uint32_t sort_len;
};

static struct bview bview_of(struct wr_vhost *vh, const struct wr_binding *b)
{
    struct bview v = {vh,      wr_exchange_name(b->src), WR_STR_NULL, b->key,
                      b->args, b->kind == WR_DEST_QUEUE, NULL,        0};
    v.dest = b->kind == WR_DEST_QUEUE ? wr_queue_name(b->dest) : wr_exchange_name(b->dest);
    return v;
}

static struct bview bview_implicit(struct wr_vhost *vh, const struct wr_queue *q)
{
    struct wr_str n = wr_queue_name(q);
    return (struct bview){vh, WR_STR(""), n, n, WR_STR_NULL, true, NULL, 0};
}

static json_t *binding_json(const struct bview *v)
{
    json_t *o = json_object();
    char *pk = props_key(v->key, v->args);
    bool ok = o && pk;
    ok = ok && wr_json_set(o, "source", wr_json_str(v->src));
    ok = ok && wr_json_set(o, "vhost", wr_json_str(wr_str_c(v->vh->name)));
    ok = ok && wr_json_set(o, "destination", wr_json_str(v->dest));
    ok = ok && wr_json_set(o, "destination_type", json_string(v->to_queue ? "queue" : "exchange"));
    ok = ok && wr_json_set(o, "routing_key", wr_json_str(v->key));
    ok = ok && wr_json_set(o, "arguments", wr_json_from_table(v->args));
    ok = ok && wr_json_set(o, "properties_key", json_string(pk));
    free(pk);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

struct blist {
    struct bview *v;
    size_t n, cap;
    bool oom;
};

static void bl_add(struct blist *l, struct bview v)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct bview *a = realloc(l->v, cap * sizeof(*a));
        if (!a) {
            l->oom = true;
            return;
        }
        l->v = a;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

/* Every binding from x (the implicit ones for the default exchange). */
static void bl_from(struct blist *l, struct wr_vhost *vh, struct wr_exchange *x)
{
    struct wr_list *it;
    if (x == vh->default_exchange) {
        struct wr_hnode *n;
        size_t i;
        for (n = wr_hmap_first(&vh->queues, &i); n; n = wr_hmap_next(&vh->queues, &i, n))
            bl_add(l, bview_implicit(vh, wr_container_of(n, struct wr_queue, node)));
    }
    wr_list_each(it, &x->bindings)
    {
        bl_add(l, bview_of(vh, wr_container_of(it, struct wr_binding, src_node)));
    }
}

/* Every binding into a queue's or an exchange's list of them. */
static void bl_into(struct blist *l, struct wr_vhost *vh, struct wr_list *bound_to_me)
{
    struct wr_list *it;
    wr_list_each(it, bound_to_me)
    {
        bl_add(l, bview_of(vh, wr_container_of(it, struct wr_binding, dst_node)));
    }
}

static void bl_vhost(struct blist *l, struct wr_vhost *vh)
{
    struct wr_hnode *n;
    size_t i;
    for (n = wr_hmap_first(&vh->exchanges, &i); n; n = wr_hmap_next(&vh->exchanges, &i, n))
        bl_from(l, vh, wr_container_of(n, struct wr_exchange, node));
}

static json_t *build_binding(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    (void)rq;
    (void)ctx;
    return binding_json(obj);
}

static bool sort_key(struct bview *v)
{
    char *pk = props_key(v->key, v->args);
    size_t pl = pk ? strlen(pk) : 0;
    size_t n = (size_t)v->src.len + 1 + v->dest.len + 1 + v->key.len + 1 + pl;
    char *s = pk && n <= UINT32_MAX ? malloc(n) : NULL;
    if (!s) {
        free(pk);
        return false;
    }
    char *w = s;
#define PUT(x, len)                                                                                \
    do {                                                                                           \
        if (len)                                                                                   \
            memcpy(w, (x), (len));                                                                 \
        w += (len);                                                                                \
    } while (0)
    PUT(v->src.ptr, v->src.len);
    *w++ = '\0';
    PUT(v->dest.ptr, v->dest.len);
    *w++ = '\0';
    PUT(v->key.ptr, v->key.len);
    *w++ = '\0';
    PUT(pk, pl);
#undef PUT
    free(pk);
    v->sort = s;
    v->sort_len = (uint32_t)n;
    return true;
}

/* Answer a listing of bindings in RabbitMQ's order (vhost, source,
 * destination, routing key, properties key); frees the list. */
static void bl_answer(struct wr_mgmt_req *rq, struct blist *l)
{
    struct wr_mgmt_row *rows = NULL;
    bool ok = !l->oom && (rows = calloc(l->n ? l->n : 1, sizeof(*rows)));
    for (size_t i = 0; ok && i < l->n; i++) {
        ok = sort_key(&l->v[i]);
        rows[i] = (struct wr_mgmt_row){
            wr_str_c(l->v[i].vh->name), {l->v[i].sort, l->v[i].sort_len}, &l->v[i]};
    }
    if (ok)
        wr_mgmt_list(rq, rows, l->n, build_binding, NULL);
    else
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].sort);
    free(rows);
    free(l->v);
}

/* ---- exchanges ---- */

static bool builtin_exchange(const struct wr_exchange *x)
{
    struct wr_str n = wr_exchange_name(x);
    return n.len == 0 || (n.len >= 4 && !memcmp(n.ptr, "amq.", 4));
}

/* A deduplicating queue's or exchange's figures (d NULL: nothing yet). */
static bool set_dedup(json_t *o, const struct wr_dedup *d)
{
    return wr_json_set(o, "messages_deduplicated",
                       json_integer(d ? (json_int_t)d->deduplicated : 0)) &&
           wr_json_set(o, "deduplication_cache_size", json_integer(d ? (json_int_t)d->n : 0)) &&
           wr_json_set(o, "deduplication_cache_bytes",
                       json_integer(d ? (json_int_t)wr_dedup_bytes(d) : 0));
}

static json_t *exchange_json(const struct wr_exchange *x)
{
    json_t *o = json_object();
    bool ok = o != NULL;
    ok = ok && wr_json_set(o, "name", wr_json_str(wr_exchange_name(x)));
    ok = ok && wr_json_set(o, "vhost", wr_json_str(wr_str_c(x->vhost->name)));
    ok = ok && wr_json_set(o, "type", json_string(x->type->name));
    ok = ok && wr_json_set(o, "durable", json_boolean(x->durable));
    ok = ok && wr_json_set(o, "auto_delete", json_boolean(x->auto_delete));
    ok = ok && wr_json_set(o, "internal", json_boolean(x->internal));
    ok = ok && wr_json_set(o, "arguments", wr_json_from_table(x->args));
    /* Warren does not record who declared an exchange. */
    ok = ok && wr_json_set(o, "user_who_performed_action",
                           json_string(builtin_exchange(x) ? "rmq-internal" : ""));
    if (ok && x->dedup_on) /* x-message-deduplication (dedup.h) */
        ok = set_dedup(o, x->dedup);
    if (ok && (x->publish_in.n || x->publish_out.n)) {
        /* Counts only: exchanges have no rate sampler. */
        json_t *ms = json_object();
        ok = ms && wr_json_set(o, "message_stats", ms);
        ok = ok && wr_json_set(ms, "publish_in", json_integer((json_int_t)x->publish_in.n));
        ok = ok && wr_json_set(ms, "publish_in_details", wr_json_rate(x->publish_in.rate));
        ok = ok && wr_json_set(ms, "publish_out", json_integer((json_int_t)x->publish_out.n));
        ok = ok && wr_json_set(ms, "publish_out_details", wr_json_rate(x->publish_out.rate));
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *build_exchange(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    (void)rq;
    (void)ctx;
    return exchange_json(obj);
}

struct rowlist {
    struct wr_mgmt_row *r;
    size_t n, cap;
    bool oom;
};

static void rl_add(struct rowlist *l, struct wr_str vhost, struct wr_str name, void *obj)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct wr_mgmt_row *a = realloc(l->r, cap * sizeof(*a));
        if (!a) {
            l->oom = true;
            return;
        }
        l->r = a;
        l->cap = cap;
    }
    l->r[l->n++] = (struct wr_mgmt_row){vhost, name, obj};
}

static void rl_answer(struct wr_mgmt_req *rq, struct rowlist *l, wr_mgmt_build_fn build)
{
    if (l->oom)
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
    else
        wr_mgmt_list(rq, l->r, l->n, build, NULL);
    free(l->r);
}

/* A listing over the vhost in the path (one), or over every vhost the
 * user sees: fn adds each vhost's rows. */
typedef void (*vhost_fn)(struct rowlist *l, struct wr_vhost *vh);

static void list_over_vhosts(struct wr_mgmt_req *rq, bool one, vhost_fn fn, wr_mgmt_build_fn build)
{
    struct rowlist l = {0};
    if (one) {
        struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], false);
        if (!vh)
            return;
        fn(&l, vh);
    } else {
        struct wr_hnode *n;
        size_t i;
        for (n = wr_hmap_first(&rq->b->vhosts, &i); n; n = wr_hmap_next(&rq->b->vhosts, &i, n)) {
            struct wr_vhost *vh = wr_container_of(n, struct wr_vhost, node);
            if (wr_mgmt_vhost_visible(rq, vh))
                fn(&l, vh);
        }
    }
    rl_answer(rq, &l, build);
}

static void rows_exchanges(struct rowlist *l, struct wr_vhost *vh)
{
    struct wr_hnode *n;
    size_t i;
    for (n = wr_hmap_first(&vh->exchanges, &i); n; n = wr_hmap_next(&vh->exchanges, &i, n)) {
        struct wr_exchange *x = wr_container_of(n, struct wr_exchange, node);
        rl_add(l, wr_str_c(vh->name), wr_exchange_name(x), x);
    }
}

static void exchanges_all(struct wr_mgmt_req *rq)
{
    list_over_vhosts(rq, false, rows_exchanges, build_exchange);
}

static void exchanges_vhost(struct wr_mgmt_req *rq)
{
    list_over_vhosts(rq, true, rows_exchanges, build_exchange);
}

/* The exchange named in the path (arg 1), its vhost checked for reading or
 * changing; 404 when missing. */
static struct wr_exchange *exchange_in_path(struct wr_mgmt_req *rq, bool write,
                                            struct wr_vhost **vhp)
{
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], write);
    struct wr_exchange *x;
    if (!vh)
        return NULL;
    x = wr_vhost_exchange(vh, exchange_arg(rq->arg[1]));
    if (!x) {
        wr_mgmt_not_found(rq);
        return NULL;
    }
    *vhp = vh;
    return x;
}

static void exchange_get(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    struct wr_exchange *x = exchange_in_path(rq, false, &vh);
    json_t *o;
    if (!x)
        return;
    o = exchange_json(x);
    /* Per-channel publish statistics ("detailed" rates mode) are not kept. */
    if (o &&
        (!wr_json_set(o, "incoming", json_array()) || !wr_json_set(o, "outgoing", json_array()))) {
        json_decref(o);
        o = NULL;
    }
    wr_mgmt_reply_json(rq, o);
}

static void exchange_put(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh = vhost_for_put(rq);
    struct wr_principal who;
    struct wr_exchange_decl d = {0};
    struct wr_exchange *x;
    struct wr_errbuf err;
    struct wr_str args = {"", 0};
    json_t *body;
    bool existed;

    if (!vh || !(body = wr_mgmt_body(rq)))
        return;
    d.name = exchange_arg(rq->arg[1]);
    if (!name_ok(rq, d.name, "exchange") ||
        !wr_mgmt_field_str(rq, body, "type", "direct", &d.type) ||
        !wr_mgmt_field_bool(rq, body, "durable", false, &d.durable) ||
        !wr_mgmt_field_bool(rq, body, "auto_delete", false, &d.auto_delete) ||
        !wr_mgmt_field_bool(rq, body, "internal", false, &d.internal) ||
        !wr_mgmt_field_table(rq, body, "arguments", &args))
        goto out;
    d.args = args;
    principal(rq, vh, &who);
    if (!may(rq, &who, WR_PERM_CONFIGURE, "exchange", d.name))
        goto out;
    existed = wr_vhost_exchange(vh, d.name) != NULL;
    if (!existed && d.name.len && wr_xtype_find(d.type) &&
        !may_name_exchange(rq, &who, "exchange", d.name, d.args, "alternate-exchange"))
        goto out;
    if (wr_vhost_exchange_declare(vh, &d, &x, &err) < 0)
        refused(rq, &err);
    else
        wr_mgmt_reply_empty(rq, existed ? 204 : 201);
out:
    if (args.len)
        free((void *)args.ptr);
    json_decref(body);
}

static void exchange_delete(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    struct wr_exchange *x = exchange_in_path(rq, true, &vh);
    struct wr_principal who;
    struct wr_errbuf err;
    if (!x)
        return;
    struct wr_str name = wr_exchange_name(x);
    principal(rq, vh, &who);
    if (!may(rq, &who, WR_PERM_CONFIGURE, "exchange", name))
        return;
    if (wr_vhost_exchange_delete(vh, name, query_true(rq, "if-unused"), &err) < 0)
        return refused(rq, &err);
    wr_mgmt_reply_empty(rq, 204);
}

static void exchange_one(struct wr_mgmt_req *rq)
{
    switch (rq->method) {
    case WR_M_PUT:
        return exchange_put(rq);
    case WR_M_DELETE:
        return exchange_delete(rq);
    default:
        return exchange_get(rq);
    }
}

static void exchange_bindings_source(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    struct wr_exchange *x = exchange_in_path(rq, false, &vh);
    struct blist l = {0};
    if (!x)
        return;
    bl_from(&l, vh, x);
    bl_answer(rq, &l);
}

static void exchange_bindings_destination(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    struct wr_exchange *x = exchange_in_path(rq, false, &vh);
    struct blist l = {0};
    if (!x)
        return;
    bl_into(&l, vh, &x->bound_to_me);
    bl_answer(rq, &l);
}

/* ---- publish ---- */

static bool prop_u8(struct wr_mgmt_req *rq, json_t *o, const char *key, uint16_t flag, uint8_t *out,
                    struct wr_basic_props *p)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255) {
        wr_mgmt_errorf(rq, 400, "bad_request", "%s: not_int", key);
        return false;
    }
    *out = (uint8_t)json_integer_value(v);
    p->flags |= flag;
    return true;
}

/* The "properties" object as basic properties; p->headers points into
 * *headers (free it). False when answered. */
static bool props_from_json(struct wr_mgmt_req *rq, json_t *o, struct wr_basic_props *p,
                            struct wr_str *headers)
{
    json_t *v;
    memset(p, 0, sizeof(*p));
    *headers = (struct wr_str){"", 0};
    if (!json_is_object(o)) {
        /* RabbitMQ takes [] for empty properties (an empty Erlang list). */
        if (json_is_array(o) && json_array_size(o) == 0)
            return true;
        wr_mgmt_error(rq, 400, "bad_request", "properties: not an object");
        return false;
    }
    for (size_t i = 0; i < WR_PROP_STRINGS; i++) {
        v = json_object_get(o, wr_prop_strings[i].name);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_string(v) || json_string_length(v) > NAME_MAX_BYTES) {
            wr_mgmt_errorf(rq, 400, "bad_request", "%s: not a string of at most 255 bytes",
                           wr_prop_strings[i].name);
            return false;
        }
        struct wr_str *s = (struct wr_str *)(void *)((char *)p + wr_prop_strings[i].off);
        *s = (struct wr_str){json_string_value(v), (uint32_t)json_string_length(v)};
        p->flags |= wr_prop_strings[i].flag;
    }
    if (!prop_u8(rq, o, "delivery_mode", WR_BASIC_DELIVERY_MODE_FLAG, &p->delivery_mode, p) ||
        !prop_u8(rq, o, "priority", WR_BASIC_PRIORITY_FLAG, &p->priority, p))
        return false;
    v = json_object_get(o, "timestamp");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            wr_mgmt_error(rq, 400, "bad_request", "timestamp: not_int");
            return false;
        }
        p->timestamp = (uint64_t)json_integer_value(v);
        p->flags |= WR_BASIC_TIMESTAMP_FLAG;
    }
    v = json_object_get(o, "headers");
    if (v && !json_is_null(v)) {
        if (!wr_mgmt_field_table(rq, o, "headers", headers))
            return false;
        p->headers = *headers;
        p->flags |= WR_BASIC_HEADERS_FLAG;
    }
    return true;
}

/* The body of a publish or the payload of a get, decoded. */
static bool payload_decode(struct wr_mgmt_req *rq, json_t *body, uint8_t **out, size_t *len)
{
    struct wr_str payload, enc;
    if (!wr_mgmt_field_str(rq, body, "payload", "", &payload) ||
        !wr_mgmt_field_str(rq, body, "payload_encoding", "string", &enc))
        return false;
    if (wr_str_eqc(enc, "string")) {
        *out = malloc(payload.len ? payload.len : 1);
        if (!*out) {
            wr_mgmt_error(rq, 500, "internal_error", "out of memory");
            return false;
        }
        if (payload.len)
            memcpy(*out, payload.ptr, payload.len);
        *len = payload.len;
        return true;
    }
    if (wr_str_eqc(enc, "base64")) {
        int rc = b64_decode(payload.ptr ? payload.ptr : "", payload.len, out, len);
        if (rc == -1)
            wr_mgmt_error(rq, 400, "bad_request", "payload: not_base64");
        else if (rc < 0)
            wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return rc == 0;
    }
    wr_mgmt_errorf(rq, 400, "bad_request", "payload_encoding: unsupported_encoding '%.*s'",
                   (int)(enc.len > 64 ? 64 : enc.len), enc.ptr);
    return false;
}

static void exchange_publish(struct wr_mgmt_req *rq)
{
    static const char *const required[] = {"payload", "payload_encoding", "properties",
                                           "routing_key", NULL};
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], true);
    struct wr_str xname = exchange_arg(rq->arg[1]), rk, headers = {"", 0};
    struct wr_basic_props p;
    struct wr_principal who;
    struct wr_publish_result res = {0};
    struct wr_errbuf err;
    struct wr_msg *m = NULL;
    uint8_t *payload = NULL, *pbuf = NULL;
    size_t plen = 0, pl;
    int64_t ttl = -1;
    unsigned flags = 0;
    json_t *body;

    if (!vh || !(body = wr_mgmt_body(rq)))
        return;
    if (!keys_present(rq, body, required) || !wr_mgmt_field_str(rq, body, "routing_key", "", &rk) ||
        !props_from_json(rq, json_object_get(body, "properties"), &p, &headers) ||
        !payload_decode(rq, body, &payload, &plen))
        goto out;
    if (rk.len > NAME_MAX_BYTES || xname.len > NAME_MAX_BYTES) {
        wr_mgmt_error(rq, 400, "bad_request", "routing_key: longer than 255 bytes");
        goto out;
    }
    if ((p.flags & WR_BASIC_EXPIRATION_FLAG) && !wr_msg_parse_expiration(p.expiration, &ttl)) {
        wr_mgmt_errorf(rq, 400, "bad_request",
                       "406 PRECONDITION_FAILED - invalid expiration '%.*s'", (int)p.expiration.len,
                       p.expiration.ptr);
        goto out;
    }
    if ((p.flags & WR_BASIC_DELIVERY_MODE_FLAG) && p.delivery_mode == 2)
        flags |= WR_MSG_PERSISTENT | WR_MSG_EXT;
    if (ttl >= 0)
        flags |= WR_MSG_EXT;
    pl = wr_basic_props_size(&p);
    if (!(pbuf = malloc(pl))) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        goto out;
    }
    struct wr_wb w = wr_wb_init(pbuf, pl);
    if (wr_basic_props_encode(&w, &p) < 0 || w.err || pl > UINT32_MAX) {
        wr_mgmt_error(rq, 400, "bad_request", "properties: cannot be encoded");
        goto out;
    }
    m = wr_msg_new(&rq->b->msgs, xname, rk, pbuf, (uint32_t)pl, plen, flags);
    if (!m) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        goto out;
    }
    if (flags & WR_MSG_EXT)
        wr_msg_ext(m)->ttl_ms = ttl;
    m->priority = (p.flags & WR_BASIC_PRIORITY_FLAG) ? p.priority : 0;
    m->published_ms = wr_now_ms();
    if (plen)
        memcpy(wr_msg_body(m), payload, plen);
    principal(rq, vh, &who);
    if (wr_vhost_publish_by_name(vh, &who, &m, &res, &err) < 0) {
        refused_coded(rq, &err);
        goto out;
    }
    if (res.journal_failed) {
        wr_mgmt_error(rq, 500, "internal_error", "the message could not be made durable");
        goto out;
    }
    wr_stat_inc(&vh->st, WR_ST_PUBLISH);
    if (!res.route.n && !res.route.taken)
        wr_stat_inc(&vh->st, WR_ST_DROP_UNROUTABLE);
    json_t *o = json_object();
    if (o && !wr_json_set(o, "routed", json_boolean(res.route.n > 0 || res.route.taken))) {
        json_decref(o);
        o = NULL;
    }
    wr_mgmt_reply_json(rq, o);
    wr_broker_mem_check(rq->b);
out:
    wr_msg_unref(m);
    wr_publish_result_free(&res);
    free(pbuf);
    free(payload);
    if (headers.len)
        free((void *)headers.ptr);
    json_decref(body);
}

/* ---- queues ---- */

static uint64_t wall_ms_of(uint64_t mono_ms)
{
    uint64_t now = wr_now_ms(), wall = (uint64_t)wr_wall_s() * 1000u;
    uint64_t ago = now > mono_ms ? now - mono_ms : 0;
    return wall > ago ? wall - ago : 0;
}

/* Message properties as RabbitMQ's get shows them. */
static json_t *props_json(const struct wr_msg *m)
{
    struct wr_basic_props p;
    struct wr_rd r = wr_rd_init(wr_msg_props(m), m->props_len);
    json_t *o = json_object();
    bool ok = o != NULL;
    if (!ok || !m->props_len || wr_basic_props_decode(&r, &p) < 0)
        return o;
    for (size_t i = 0; ok && i < WR_PROP_STRINGS; i++)
        if (p.flags & wr_prop_strings[i].flag)
            ok = wr_json_set(
                o, wr_prop_strings[i].name,
                wr_json_str(*(const struct wr_str *)(const void *)((const char *)&p +
                                                                   wr_prop_strings[i].off)));
    if (ok && (p.flags & WR_BASIC_DELIVERY_MODE_FLAG))
        ok = wr_json_set(o, "delivery_mode", json_integer(p.delivery_mode));
    if (ok && (p.flags & WR_BASIC_PRIORITY_FLAG))
        ok = wr_json_set(o, "priority", json_integer(p.priority));
    if (ok && (p.flags & WR_BASIC_TIMESTAMP_FLAG))
        ok = wr_json_set(o, "timestamp", json_integer((json_int_t)p.timestamp));
    if (ok && (p.flags & WR_BASIC_HEADERS_FLAG))
        ok = wr_json_set(o, "headers", wr_json_from_table(p.headers));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The timestamp property of a message, if it has one. */
static bool msg_timestamp(const struct wr_msg *m, uint64_t *ts)
{
    struct wr_basic_props p;
    struct wr_rd r = wr_rd_init(wr_msg_props(m), m->props_len);
    /* The flags word first: most messages have no timestamp. */
    if (m->props_len < 2 || !(wr_load16(wr_msg_props(m)) & WR_BASIC_TIMESTAMP_FLAG) ||
        wr_basic_props_decode(&r, &p) < 0)
        return false;
    *ts = p.timestamp;
    return true;
}

static double rate(const struct wr_stats *s, enum wr_stat k)
{
    return s->rate[k];
}

static bool set_int(json_t *o, const char *k, uint64_t v)
{
    return wr_json_set(o, k, json_integer((json_int_t)v));
}

/* A stream's named consumers (x-stream-consumer-name): position and lag.
 * The lag in bytes walks the messages behind the tail: O(lag). */
static bool stream_consumers_json(json_t *o, const struct wr_stream *st)
{
    json_t *a = json_array();
    if (!a)
        return false;
    for (uint32_t i = 0; i < st->nnames; i++) {
        const struct wr_stream_name *n = st->names[i];
        uint64_t pos = n->next == UINT64_MAX ? st->next : n->next;
        json_t *c = json_object();
        if (pos < st->first)
            pos = st->first;
        /* (wr_json_set and json_array_append_new take their reference
         * even when they fail) */
        if (!c || !wr_json_set(c, "name", wr_json_str((struct wr_str){n->name, n->len})) ||
            !set_int(c, "offset", pos) || !set_int(c, "lag_messages", st->next - pos) ||
            !set_int(c, "lag_bytes", wr_stream_bytes_after(st, pos))) {
            json_decref(c);
            json_decref(a);
            return false;
        }
        if (json_array_append_new(a, c) < 0) {
            json_decref(a);
            return false;
        }
    }
    return wr_json_set(o, "stream_consumers", a);
}

/* One queue. O(1) apart from the arguments and one look at the head of
 * each priority level. */
static json_t *queue_json(const struct wr_queue *q)
{
    const struct wr_stats *st = &q->st;
    json_t *o = json_object();
    uint64_t oldest = 0, ts;
    const struct wr_msg *head = wr_queue_head(q, &oldest);
    uint64_t now = wr_now_ms();
    bool ok = o != NULL;

    ok = ok && wr_json_set(o, "name", wr_json_str(wr_queue_name(q)));
    ok = ok && wr_json_set(o, "vhost", wr_json_str(wr_str_c(q->vhost->name)));
    ok = ok && wr_json_set(o, "durable", json_boolean(q->durable));
    ok = ok && wr_json_set(o, "auto_delete", json_boolean(q->auto_delete));
    ok = ok && wr_json_set(o, "exclusive", json_boolean(q->exclusive));
    ok = ok && wr_json_set(o, "arguments", wr_json_from_table(q->args));
    ok = ok && wr_json_set(o, "node", json_string(wr_node_name()));
    ok = ok && wr_json_set(o, "state", json_string("running"));
    ok = ok && wr_json_set(o, "type", json_string(wr_qtype_name(q->s.type)));
    if (q->s.type != WR_QTYPE_CLASSIC) {
        /* One node: it leads and is the only member (RabbitMQ's fields). */
        ok = ok && wr_json_set(o, "leader", json_string(wr_node_name()));
        ok = ok && wr_json_set(o, "members", json_pack("[s]", wr_node_name()));
        ok = ok && wr_json_set(o, "online", json_pack("[s]", wr_node_name()));
    }

    if (ok && q->s.dedup) /* x-message-deduplication (dedup.h) */
        ok = set_dedup(o, q->s.dedup_cache);
    if (q->stream) {
        /* A stream's log: what it holds, from which offset to which. */
        ok = ok && set_int(o, "messages", wr_stream_count(q->stream));
        ok = ok && set_int(o, "stream_first_offset", q->stream->first);
        ok = ok && set_int(o, "stream_next_offset", q->stream->next);
        ok = ok && set_int(o, "stream_bytes", q->stream->bytes);
        ok = ok && set_int(o, "stream_segments", q->stream->nsegs);
        ok = ok && set_int(o, "stream_active_segment_first",
                           q->stream->nsegs ? q->stream->segs[q->stream->nsegs - 1].first
                                            : q->stream->next);
        ok = ok && set_int(o, "stream_compacted", q->stream->compacted);
        ok = ok && stream_consumers_json(o, q->stream);
    } else {
        ok = ok && set_int(o, "messages", (uint64_t)q->ready + q->unacked);
    }
    ok = ok && set_int(o, "messages_ready", q->ready);
    ok = ok && set_int(o, "messages_unacknowledged", q->unacked);
    ok = ok && set_int(o, "messages_ram", (uint64_t)q->ready + q->unacked);
    ok = ok && set_int(o, "messages_ready_ram", q->ready);
    ok = ok && set_int(o, "messages_unacknowledged_ram", q->unacked);
    ok = ok && set_int(o, "message_bytes", q->ready_bytes + q->unacked_bytes);
    ok = ok && set_int(o, "message_bytes_ready", q->ready_bytes);
    ok = ok && set_int(o, "message_bytes_unacknowledged", q->unacked_bytes);
    ok = ok && set_int(o, "message_bytes_ram", q->ready_bytes + q->unacked_bytes);

    /* Length rates from the counters (the sampler does not sample
     * lengths): in minus out, requeues taken as redeliveries. */
    double dg = rate(st, WR_ST_DELIVER) + rate(st, WR_ST_DELIVER_NO_ACK) + rate(st, WR_ST_GET) +
                rate(st, WR_ST_GET_NO_ACK);
    double r_msgs = rate(st, WR_ST_PUBLISH) - rate(st, WR_ST_ACK) - rate(st, WR_ST_DELIVER_NO_ACK) -
                    rate(st, WR_ST_GET_NO_ACK);
    double r_ready = rate(st, WR_ST_PUBLISH) - dg + rate(st, WR_ST_REDELIVER);
    ok = ok && wr_json_set(o, "messages_details", wr_json_rate(r_msgs));
    ok = ok && wr_json_set(o, "messages_ready_details", wr_json_rate(r_ready));
    ok = ok && wr_json_set(o, "messages_unacknowledged_details", wr_json_rate(r_msgs - r_ready));

    ok = ok && set_int(o, "consumers", q->nconsumers);
    /* Ready messages with consumers attached means none of them has room. */
    double util = q->nconsumers ? (q->ready ? 0.0 : 1.0) : 0.0;
    ok = ok && wr_json_set(o, "consumer_utilisation", json_real(util));
    ok = ok && wr_json_set(o, "consumer_capacity", json_real(util));

    size_t mem = sizeof(*q) + q->args.len +
                 ((size_t)q->s.max_priority + 1) * sizeof(struct wr_deque) +
                 (size_t)q->ready * (sizeof(struct wr_qent) + sizeof(struct wr_msg)) +
                 (size_t)q->ready_bytes;
    ok = ok && set_int(o, "memory", mem);
    if (ok && !q->nconsumers)
        ok = wr_json_set(o, "idle_since", wr_json_time(wall_ms_of(q->last_used_ms)));
    if (ok && head && msg_timestamp(head, &ts))
        ok = set_int(o, "head_message_timestamp", ts);
    /* Warren's own: seconds since the oldest message at a head was
     * published (0 when empty). */
    ok = ok && wr_json_set(o, "head_message_age_s",
                           json_real(head && now > oldest ? (double)(now - oldest) / 1000.0 : 0.0));
    ok = ok && wr_json_set(o, "effective_policy_definition", json_object());

    if (ok) {
        json_t *b = json_object();
        ok = b && wr_json_set(o, "backing_queue_status", b);
        ok = ok && wr_json_set(b, "mode", json_string("default"));
        ok = ok && set_int(b, "len", q->ready);
        ok = ok && wr_json_set(b, "avg_ingress_rate", json_real(rate(st, WR_ST_PUBLISH)));
        ok = ok && wr_json_set(b, "avg_egress_rate", json_real(dg));
        ok = ok && wr_json_set(b, "avg_ack_ingress_rate",
                               json_real(rate(st, WR_ST_DELIVER) + rate(st, WR_ST_GET)));
        ok = ok && wr_json_set(b, "avg_ack_egress_rate", json_real(rate(st, WR_ST_ACK)));
    }
    /* As RabbitMQ: no message_stats before the queue saw any traffic. */
    bool traffic = false;
    for (int k = 0; k < WR_ST_N; k++)
        if ((WR_MGMT_STATS_QUEUE & (1u << k)) && st->n[k])
            traffic = true;
    if (ok && traffic)
        ok = wr_json_set(o, "message_stats", wr_mgmt_message_stats(st, WR_MGMT_STATS_QUEUE));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *build_queue(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    (void)rq;
    (void)ctx;
    return queue_json(obj);
}

static void rows_queues(struct rowlist *l, struct wr_vhost *vh)
{
    struct wr_hnode *n;
    size_t i;
    for (n = wr_hmap_first(&vh->queues, &i); n; n = wr_hmap_next(&vh->queues, &i, n)) {
        struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
        rl_add(l, wr_str_c(vh->name), wr_queue_name(q), q);
    }
}

static void queues_all(struct wr_mgmt_req *rq)
{
    list_over_vhosts(rq, false, rows_queues, build_queue);
}

static void queues_vhost(struct wr_mgmt_req *rq)
{
    list_over_vhosts(rq, true, rows_queues, build_queue);
}

static struct wr_queue *queue_in_path(struct wr_mgmt_req *rq, bool write, struct wr_vhost **vhp)
{
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], write);
    struct wr_queue *q;
    if (!vh)
        return NULL;
    q = wr_vhost_queue(vh, rq->arg[1]);
    if (!q) {
        wr_mgmt_not_found(rq);
        return NULL;
    }
    *vhp = vh;
    return q;
}

/* consumer_details of one queue: its consumers on every channel. */
struct consumers_ctx {
    const struct wr_queue *q;
    const struct wr_conn *c;
    uint16_t chan;
    json_t *a;
};

static json_t *channel_details(const struct wr_conn *c, uint16_t chan)
{
    char name[160], host[64] = "";
    long port = 0;
    const char *arrow = strstr(c->name, " -> ");
    size_t hl = arrow ? (size_t)(arrow - c->name) : 0;
    const char *colon = NULL;
    for (size_t i = 0; i < hl; i++)
        if (c->name[i] == ':')
            colon = c->name + i;
    if (colon) {
        size_t n = (size_t)(colon - c->name);
        if (n >= sizeof(host))
            n = sizeof(host) - 1;
        memcpy(host, c->name, n);
        host[n] = '\0';
        port = strtol(colon + 1, NULL, 10);
    }
    snprintf(name, sizeof(name), "%s (%u)", c->name, (unsigned)chan);
    return json_pack("{s:s,s:s,s:s,s:i,s:s,s:i,s:o}", "connection_name", c->name, "name", name,
                     "node", wr_node_name(), "number", (int)chan, "peer_host", host, "peer_port",
                     (int)port, "user", wr_json_str((struct wr_str){c->user, c->user_len}));
}

static void consumer_visit(void *arg, const struct wr_consumer_info *ci)
{
    struct consumers_ctx *x = arg;
    if (ci->q != x->q || !x->a)
        return;
    json_t *args = json_object();
    if (args && ci->priority)
        json_object_set_new(args, "x-priority", json_integer(ci->priority));
    json_t *o = json_pack(
        "{s:o,s:b,s:b,s:s,s:o,s:o,s:b,s:I,s:{s:o,s:o}}", "arguments", args, "ack_required",
        ci->ack_required, "active", ci->active, "activity_status", ci->active ? "up" : "waiting",
        "channel_details", channel_details(x->c, x->chan), "consumer_tag", wr_json_str(ci->tag),
        "exclusive", ci->exclusive, "prefetch_count", (json_int_t)ci->prefetch_count, "queue",
        "name", wr_json_str(wr_queue_name(x->q)), "vhost",
        wr_json_str(wr_str_c(x->q->vhost->name)));
    if (!o || json_array_append_new(x->a, o) < 0) {
        json_decref(x->a);
        x->a = NULL;
    }
}

static json_t *consumer_details(struct wr_mgmt_req *rq, const struct wr_queue *q)
{
    struct consumers_ctx x = {q, NULL, 0, json_array()};
    struct wr_list *it;
    if (!q->nconsumers)
        return x.a;
    wr_list_each(it, &rq->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (c->vh != q->vhost)
            continue;
        x.c = c;
        for (uint32_t i = 0; i < c->nchans_cap && x.a; i++) {
            if (!c->chans[i])
                continue;
            x.chan = (uint16_t)i;
            wr_chan_consumers(c->chans[i], consumer_visit, &x);
        }
    }
    return x.a;
}

static void queue_get_one(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    struct wr_queue *q = queue_in_path(rq, false, &vh);
    json_t *o;
    if (!q)
        return;
    o = queue_json(q);
    if (o && (!wr_json_set(o, "consumer_details", consumer_details(rq, q)) ||
              !wr_json_set(o, "deliveries", json_array()) ||
              !wr_json_set(o, "incoming", json_array()))) {
        json_decref(o);
        o = NULL;
    }
    wr_mgmt_reply_json(rq, o);
}

static void queue_put(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh = vhost_for_put(rq);
    struct wr_principal who;
    struct wr_queue_decl d = {0};
    struct wr_queue *q;
    struct wr_errbuf err;
    struct wr_str args = {"", 0};
    bool created;
    json_t *body;

    if (!vh || !(body = wr_mgmt_body(rq)))
        return;
    d.name = rq->arg[1];
    /* "exclusive" is not taken: a queue owned by an HTTP request would
     * be gone with it (RabbitMQ ignores it too). */
    if (!name_ok(rq, d.name, "queue") ||
        !wr_mgmt_field_bool(rq, body, "durable", false, &d.durable) ||
        !wr_mgmt_field_bool(rq, body, "auto_delete", false, &d.auto_delete) ||
        !wr_mgmt_field_table(rq, body, "arguments", &args))
        goto out;
    d.args = args;
    principal(rq, vh, &who);
    if (!may(rq, &who, WR_PERM_CONFIGURE, "queue", d.name))
        goto out;
    if (!wr_vhost_queue(vh, d.name) &&
        !may_name_exchange(rq, &who, "queue", d.name, d.args, "x-dead-letter-exchange"))
        goto out;
    if (wr_vhost_queue_declare(vh, &d, &q, &created, &err) < 0)
        refused(rq, &err);
    else
        wr_mgmt_reply_empty(rq, created ? 201 : 204);
out:
    if (args.len)
        free((void *)args.ptr);
    json_decref(body);
}

static void queue_delete(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    struct wr_queue *q = queue_in_path(rq, true, &vh);
    struct wr_principal who;
    struct wr_errbuf err;
    uint32_t count;
    if (!q)
        return;
    principal(rq, vh, &who);
    if (!may(rq, &who, WR_PERM_CONFIGURE, "queue", rq->arg[1]))
        return;
    if (wr_vhost_queue_delete_checked(vh, rq->arg[1], NULL, query_true(rq, "if-unused"),
                                      query_true(rq, "if-empty"), &count, &err) < 0)
        return refused(rq, &err);
    wr_mgmt_reply_empty(rq, 204);
}

static void queue_one(struct wr_mgmt_req *rq)
{
    switch (rq->method) {
    case WR_M_PUT:
        return queue_put(rq);
    case WR_M_DELETE:
        return queue_delete(rq);
    default:
        return queue_get_one(rq);
    }
}

static void queue_bindings(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    struct wr_queue *q = queue_in_path(rq, false, &vh);
    struct blist l = {0};
    if (!q)
        return;
    bl_add(&l, bview_implicit(vh, q));
    bl_into(&l, vh, &q->bound_to_me);
    bl_answer(rq, &l);
}

static void queue_purge(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    struct wr_queue *q = queue_in_path(rq, true, &vh);
    struct wr_principal who;
    struct wr_errbuf err;
    if (!q)
        return;
    principal(rq, vh, &who);
    if (!may(rq, &who, WR_PERM_READ, "queue", rq->arg[1]))
        return;
    if (wr_vhost_queue_use(vh, rq->arg[1], NULL, &q, &err) < 0)
        return refused(rq, &err);
    if (q->stream) /* (as queue.purge over AMQP: a stream only loses its head to retention) */
        return wr_mgmt_errorf(rq, 400, "bad_request",
                              "queue.purge not supported by stream queues queue '%s' in vhost '%s'",
                              q->name, vh->name);
    wr_queue_purge(q);
    wr_mgmt_reply_empty(rq, 204);
}

/* ---- get ---- */

enum ackmode { ACK_REQUEUE, ACK_DROP, REJECT_REQUEUE, REJECT_DROP };

/* One message as RabbitMQ's get answers it. */
static json_t *got_json(struct wr_queue *q, const struct wr_qent *e, bool b64, int64_t truncate)
{
    struct wr_msg *shown = NULL, *m = e->m;
    uint8_t *body = wr_msg_body(m);
    json_t *o = json_object(), *props;
    bool ok = o != NULL && body != NULL;

    /* As a delivery shows it: the count of earlier deliveries. */
    if (ok && wr_queue_counts_deliveries(q))
        shown = wr_msg_with_int_header(m, "x-delivery-count", e->deliveries);
    props = ok ? props_json(shown ? shown : m) : NULL;
    wr_msg_unref(shown);
    size_t n = m->body_len;
    if (truncate >= 0 && (uint64_t)truncate < n)
        n = (size_t)truncate;
    ok = ok && set_int(o, "payload_bytes", m->body_len);
    ok = ok && wr_json_set(o, "redelivered", json_boolean(e->deliveries > 0));
    ok = ok && wr_json_set(o, "exchange", wr_json_str(wr_msg_exchange(m)));
    ok = ok && wr_json_set(o, "routing_key", wr_json_str(wr_msg_routing_key(m)));
    ok = ok && set_int(o, "message_count", wr_queue_ready(q));
    if (ok) {
        ok = wr_json_set(o, "properties", props);
        props = NULL;
    }
    if (ok && !b64 && wr_utf8_valid(body, n)) {
        ok = wr_json_set(o, "payload", json_stringn((const char *)body, n)) &&
             wr_json_set(o, "payload_encoding", json_string("string"));
    } else if (ok) {
        size_t el;
        char *enc = b64_encode(body, n, &el);
        ok = enc && wr_json_set(o, "payload", json_stringn(enc, el)) &&
             wr_json_set(o, "payload_encoding", json_string("base64"));
        free(enc);
    }
    json_decref(props);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void queue_get(struct wr_mgmt_req *rq)
{
    static const char *const required[] = {"ackmode", "count", "encoding", NULL};
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], true);
    struct wr_principal who;
    struct wr_errbuf err;
    struct wr_queue *q;
    struct wr_str mode, enc;
    struct wr_qent *ents = NULL;
    size_t n = 0, cap = 0;
    int64_t count, truncate;
    enum ackmode am;
    json_t *body, *out = NULL;
    bool b64;

    if (!vh || !(body = wr_mgmt_body(rq)))
        return;
    if (!keys_present(rq, body, required) ||
        !wr_mgmt_field_int(rq, body, "count", 0, INT32_MAX, 1, &count) ||
        !wr_mgmt_field_int(rq, body, "truncate", 0, INT64_MAX, -1, &truncate) ||
        !wr_mgmt_field_str(rq, body, "ackmode", "", &mode) ||
        !wr_mgmt_field_str(rq, body, "encoding", "", &enc))
        goto done;
    if (wr_str_eqc(mode, "ack_requeue_true")) {
        am = ACK_REQUEUE;
    } else if (wr_str_eqc(mode, "ack_requeue_false")) {
        am = ACK_DROP;
    } else if (wr_str_eqc(mode, "reject_requeue_true")) {
        am = REJECT_REQUEUE;
    } else if (wr_str_eqc(mode, "reject_requeue_false")) {
        am = REJECT_DROP;
    } else {
        wr_mgmt_error(rq, 400, "bad_request",
                      "ackmode: one of ack_requeue_true, ack_requeue_false, "
                      "reject_requeue_true, reject_requeue_false");
        goto done;
    }
    if (!wr_str_eqc(enc, "auto") && !wr_str_eqc(enc, "base64")) {
        wr_mgmt_error(rq, 400, "bad_request", "Unsupported encoding. Please use auto or base64.");
        goto done;
    }
    b64 = wr_str_eqc(enc, "base64");
    principal(rq, vh, &who);
    if (wr_access_check(&who, WR_PERM_READ, "queue", rq->arg[1], &err) < 0) {
        wr_mgmt_error(rq, 401, "not_authorised", err.text);
        goto done;
    }
    if (wr_vhost_queue_use(vh, rq->arg[1], NULL, &q, &err) < 0) {
        if (err.code == WR_ENOT_FOUND)
            wr_mgmt_error(rq, 404, "not_found", err.text);
        else
            refused_coded(rq, &err);
        goto done;
    }
    if (!(out = json_array())) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        goto done;
    }
    wr_queue_ref(q); /* settling below may dead-letter, which may delete queues */
    for (int64_t i = 0; i < count; i++) {
        struct wr_qent e;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct wr_qent *a = realloc(ents, nc * sizeof(*a));
            if (!a)
                break;
            ents = a;
            cap = nc;
        }
        if (!wr_queue_get(q, &e))
            break;
        wr_stat_inc(&q->st, WR_ST_GET);
        wr_stat_inc(&vh->st, WR_ST_GET);
        if (e.deliveries) {
            wr_stat_inc(&q->st, WR_ST_REDELIVER);
            wr_stat_inc(&vh->st, WR_ST_REDELIVER);
        }
        ents[n++] = e;
        json_t *j = got_json(q, &e, b64, truncate);
        if (!j || json_array_append_new(out, j) < 0) {
            json_decref(out);
            out = NULL;
            break;
        }
    }
    if (!n && count > 0) {
        wr_stat_inc(&q->st, WR_ST_GET_EMPTY);
        wr_stat_inc(&vh->st, WR_ST_GET_EMPTY);
    }
    /* Settle as the ack mode says, after every get: requeued messages are
     * not fetched twice by one request. */
    if (am == ACK_REQUEUE || am == REJECT_REQUEUE) {
        for (size_t i = 0; i < n; i++)
            if (ents[i].deliveries < UINT16_MAX)
                ents[i].deliveries++;
        if (n)
            wr_queue_requeue(q, ents, (uint32_t)n);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (am == ACK_DROP) {
                wr_stat_inc(&q->st, WR_ST_ACK);
                wr_stat_inc(&vh->st, WR_ST_ACK);
                wr_queue_settled(q, ents[i].m);
            } else {
                if (ents[i].deliveries < UINT16_MAX)
                    ents[i].deliveries++;
                wr_queue_reject(q, &ents[i]);
            }
        }
    }
    wr_queue_unref(q);
    if (out)
        wr_mgmt_reply_json(rq, out);
    else
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
done:
    free(ents);
    json_decref(body);
}

/* ---- queue actions: RabbitMQ's sync/cancel_sync, Warren's peek, move
 * and replay (broker/move.h) ---- */

#define ACTION_MAX 10000 /* messages one request looks at */

static bool action_count(struct wr_mgmt_req *rq, json_t *body, int64_t def, uint32_t *out)
{
    int64_t n;
    if (!wr_mgmt_field_int(rq, body, "count", 1, ACTION_MAX, def, &n))
        return false;
    *out = (uint32_t)n;
    return true;
}

static bool action_may(struct wr_mgmt_req *rq, struct wr_vhost *vh, enum wr_perm_op op,
                       const char *kind, struct wr_str name)
{
    struct wr_principal who;
    struct wr_errbuf err;
    principal(rq, vh, &who);
    if (wr_access_check(&who, op, kind, name, &err) < 0) {
        wr_mgmt_error(rq, 401, "not_authorised", err.text);
        return false;
    }
    return true;
}

static void action_peek(struct wr_mgmt_req *rq, struct wr_vhost *vh, struct wr_queue *q,
                        json_t *body)
{
    struct wr_str enc;
    int64_t truncate;
    uint32_t max, n;
    struct wr_qent *a;
    json_t *out;

    if (!action_count(rq, body, 1, &max) ||
        !wr_mgmt_field_int(rq, body, "truncate", 0, INT64_MAX, -1, &truncate) ||
        !wr_mgmt_field_str(rq, body, "encoding", "auto", &enc))
        return;
    if (!wr_str_eqc(enc, "auto") && !wr_str_eqc(enc, "base64")) {
        wr_mgmt_error(rq, 400, "bad_request", "Unsupported encoding. Please use auto or base64.");
        return;
    }
    if (!action_may(rq, vh, WR_PERM_READ, "queue", wr_queue_name(q)))
        return;
    if (!(a = malloc((size_t)max * sizeof(*a))) || !(out = json_array())) {
        free(a);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    n = wr_queue_peek(q, a, max);
    for (uint32_t i = 0; i < n && out; i++) {
        json_t *j = got_json(q, &a[i], wr_str_eqc(enc, "base64"), truncate);
        if (!j || json_array_append_new(out, j) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    free(a);
    if (out)
        wr_mgmt_reply_json(rq, out);
    else
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
}

static void move_reply(struct wr_mgmt_req *rq, const char *done_key, const struct wr_queue *src,
                       const struct wr_move_result *r, json_t *messages)
{
    json_t *o = json_object();
    bool ok = o && set_int(o, done_key, r->moved) && set_int(o, "remaining", wr_queue_ready(src)) &&
              wr_json_set(o, "stopped", r->stopped ? json_string(r->why) : json_null());
    if (ok && messages) {
        ok = set_int(o, "skipped", r->skipped) && wr_json_set(o, "messages", messages);
        messages = NULL;
    }
    json_decref(messages);
    if (!ok) {
        json_decref(o);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_mgmt_reply_json(rq, o);
}

static void action_move(struct wr_mgmt_req *rq, struct wr_vhost *vh, struct wr_queue *q,
                        json_t *body)
{
    struct wr_move_result r;
    struct wr_str dname;
    struct wr_queue *dst;
    uint32_t max;

    if (!action_count(rq, body, 1000, &max) ||
        !wr_mgmt_field_str(rq, body, "destination", "", &dname))
        return;
    if (!dname.len) {
        wr_mgmt_error(rq, 400, "bad_request", "destination: the queue to move the messages to");
        return;
    }
    if (!action_may(rq, vh, WR_PERM_READ, "queue", wr_queue_name(q)) ||
        !action_may(rq, vh, WR_PERM_WRITE, "exchange", WR_STR("amq.default")))
        return;
    if (!(dst = wr_vhost_queue(vh, dname))) {
        char esc[WR_LOG_ESC_MAX];
        wr_mgmt_errorf(rq, 404, "not_found", "no queue '%s' in vhost '%s'", WR_LOG_ESC(esc, dname),
                       vh->name);
        return;
    }
    if (dst == q) {
        wr_mgmt_error(rq, 400, "bad_request", "destination: the queue itself");
        return;
    }
    wr_queue_move(q, dst, max, &r);
    move_reply(rq, "moved", q, &r, NULL);
    wr_broker_mem_check(rq->b);
}

static void replay_one(void *ctx, const struct wr_msg *m, struct wr_str target, const char *why)
{
    json_t *a = ctx, *o = json_object();
    if (!o)
        return;
    wr_json_set(o, "target", target.len ? wr_json_str(target) : json_null());
    wr_json_set(o, "routing_key", wr_json_str(wr_msg_routing_key(m)));
    wr_json_set(o, "reason", why ? json_string(why) : json_null());
    json_array_append_new(a, o);
}

static void action_replay(struct wr_mgmt_req *rq, struct wr_vhost *vh, struct wr_queue *q,
                          json_t *body)
{
    struct wr_move_result r;
    uint32_t max;
    bool dry;
    json_t *messages;

    if (!action_count(rq, body, 1000, &max) ||
        !wr_mgmt_field_bool(rq, body, "dry_run", false, &dry))
        return;
    if (!action_may(rq, vh, WR_PERM_READ, "queue", wr_queue_name(q)) ||
        (!dry && !action_may(rq, vh, WR_PERM_WRITE, "exchange", WR_STR("amq.default"))))
        return;
    if (!(messages = json_array())) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_queue_replay(q, max, dry, replay_one, messages, &r);
    move_reply(rq, "replayed", q, &r, messages);
    wr_broker_mem_check(rq->b);
}

static void queue_actions(struct wr_mgmt_req *rq)
{
    static const char *const required[] = {"action", NULL};
    struct wr_vhost *vh;
    struct wr_queue *q = queue_in_path(rq, true, &vh);
    struct wr_str action;
    json_t *body;
    if (!q || !(body = wr_mgmt_body(rq)))
        return;
    if (keys_present(rq, body, required) && wr_mgmt_field_str(rq, body, "action", "", &action)) {
        /* Mirroring actions: a single node has nothing to synchronise. */
        if (wr_str_eqc(action, "sync") || wr_str_eqc(action, "cancel_sync"))
            wr_mgmt_reply_empty(rq, 204);
        else if (wr_str_eqc(action, "peek"))
            action_peek(rq, vh, q, body);
        else if (wr_str_eqc(action, "move"))
            action_move(rq, vh, q, body);
        else if (wr_str_eqc(action, "replay"))
            action_replay(rq, vh, q, body);
        else
            wr_mgmt_errorf(rq, 400, "bad_request", "unknown action '%.*s'",
                           (int)(action.len > 64 ? 64 : action.len), action.ptr);
    }
    json_decref(body);
}

/* ---- bindings ---- */

static void bindings_all(struct wr_mgmt_req *rq)
{
    struct blist l = {0};
    struct wr_hnode *n;
    size_t i;
    for (n = wr_hmap_first(&rq->b->vhosts, &i); n; n = wr_hmap_next(&rq->b->vhosts, &i, n)) {
        struct wr_vhost *vh = wr_container_of(n, struct wr_vhost, node);
        if (wr_mgmt_vhost_visible(rq, vh))
            bl_vhost(&l, vh);
    }
    bl_answer(rq, &l);
}

static void bindings_vhost(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], false);
    struct blist l = {0};
    if (!vh)
        return;
    bl_vhost(&l, vh);
    bl_answer(rq, &l);
}

/* The bindings from source to destination (args 1 and 2 of the path). */
static void bl_pair(struct blist *l, struct wr_vhost *vh, struct wr_str src, struct wr_str dest,
                    bool to_queue)
{
    struct wr_exchange *x = wr_vhost_exchange(vh, src);
    struct wr_list *it;
    void *d = to_queue ? (void *)wr_vhost_queue(vh, dest) : (void *)wr_vhost_exchange(vh, dest);
    if (!x || !d)
        return;
    if (to_queue && x == vh->default_exchange)
        bl_add(l, bview_implicit(vh, d));
    wr_list_each(it, &x->bindings)
    {
        struct wr_binding *b = wr_container_of(it, struct wr_binding, src_node);
        if (b->dest == d && (b->kind == WR_DEST_QUEUE) == to_queue)
            bl_add(l, bview_of(vh, b));
    }
}

static void binding_pair_get(struct wr_mgmt_req *rq, bool to_queue)
{
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], false);
    struct blist l = {0};
    if (!vh)
        return;
    /* A missing source or destination is an empty list, as RabbitMQ's. */
    bl_pair(&l, vh, exchange_arg(rq->arg[1]), to_queue ? rq->arg[2] : exchange_arg(rq->arg[2]),
            to_queue);
    bl_answer(rq, &l);
}

static void binding_pair_post(struct wr_mgmt_req *rq, bool to_queue)
{
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], true);
    struct wr_str src = exchange_arg(rq->arg[1]);
    struct wr_str dest = to_queue ? rq->arg[2] : exchange_arg(rq->arg[2]);
    struct wr_str key, args = {"", 0};
    struct wr_principal who;
    struct wr_errbuf err;
    struct wr_exchange *x;
    json_t *body;

    if (!vh || !(body = wr_mgmt_body(rq)))
        return;
    if (!wr_mgmt_field_str(rq, body, "routing_key", "", &key) ||
        !wr_mgmt_field_table(rq, body, "arguments", &args))
        goto out;
    if (key.len > NAME_MAX_BYTES) {
        wr_mgmt_error(rq, 400, "bad_request", "routing_key: longer than 255 bytes");
        goto out;
    }
    /* As queue.bind and exchange.bind: write on the destination, read on
     * the source, and the topic read permission on the key. The default
     * exchange is left to the bind's own refusal. */
    principal(rq, vh, &who);
    if ((dest.len && !may(rq, &who, WR_PERM_WRITE, to_queue ? "queue" : "exchange", dest)) ||
        (src.len && !may(rq, &who, WR_PERM_READ, "exchange", src)))
        goto out;
    if ((x = wr_vhost_exchange(vh, src)) && wr_access_topic(&who, x, WR_PERM_READ, key, &err) < 0) {
        access_refused(rq);
        goto out;
    }
    if (wr_vhost_bind(vh, src, dest, !to_queue, key, args, NULL, &err) < 0) {
        refused(rq, &err);
        goto out;
    }
    /* RabbitMQ's Location, relative to the request's path. */
    char *pk = props_key(key, args);
    char *qd = quote_plus(dest, true), *qp = pk ? quote_plus(wr_str_c(pk), true) : NULL;
    char *loc = qd && qp ? malloc(strlen(qd) + strlen(qp) + 2) : NULL;
    if (loc) {
        sprintf(loc, "%s/%s", qd, qp);
        evhttp_add_header(evhttp_request_get_output_headers(rq->r), "location", loc);
    }
    free(loc);
    free(qd);
    free(qp);
    free(pk);
    wr_mgmt_reply_empty(rq, 201);
out:
    if (args.len)
        free((void *)args.ptr);
    json_decref(body);
}

static void binding_eq(struct wr_mgmt_req *rq)
{
    if (rq->method == WR_M_POST)
        binding_pair_post(rq, true);
    else
        binding_pair_get(rq, true);
}

static void binding_ee(struct wr_mgmt_req *rq)
{
    if (rq->method == WR_M_POST)
        binding_pair_post(rq, false);
    else
        binding_pair_get(rq, false);
}

/* The binding named by its properties key (arg 3); false when none. */
static bool binding_find(struct wr_mgmt_req *rq, struct wr_vhost *vh, bool to_queue,
                         struct bview *out)
{
    struct blist l = {0};
    bool found = false;
    bl_pair(&l, vh, exchange_arg(rq->arg[1]), to_queue ? rq->arg[2] : exchange_arg(rq->arg[2]),
            to_queue);
    for (size_t i = 0; i < l.n && !found; i++) {
        char *pk = props_key(l.v[i].key, l.v[i].args);
        if (pk && strlen(pk) == rq->arg[3].len && !memcmp(pk, rq->arg[3].ptr, rq->arg[3].len)) {
            *out = l.v[i];
            found = true;
        }
        free(pk);
    }
    free(l.v);
    return found;
}

static void binding_props(struct wr_mgmt_req *rq, bool to_queue)
{
    bool del = rq->method == WR_M_DELETE;
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], del);
    struct wr_principal who;
    struct wr_errbuf err;
    struct bview v;
    if (!vh)
        return;
    if (!binding_find(rq, vh, to_queue, &v))
        return wr_mgmt_not_found(rq);
    if (!del)
        return wr_mgmt_reply_json(rq, binding_json(&v));
    principal(rq, vh, &who);
    if (!may(rq, &who, WR_PERM_WRITE, to_queue ? "queue" : "exchange", v.dest) ||
        (v.src.len && !may(rq, &who, WR_PERM_READ, "exchange", v.src)))
        return;
    if (wr_vhost_unbind(vh, v.src, v.dest, !to_queue, v.key, v.args, NULL, &err) < 0)
        return refused(rq, &err);
    wr_mgmt_reply_empty(rq, 204);
}

static void binding_eq_props(struct wr_mgmt_req *rq)
{
    binding_props(rq, true);
}

static void binding_ee_props(struct wr_mgmt_req *rq)
{
    binding_props(rq, false);
}

const struct wr_mgmt_route wr_mgmt_routes_objects[] = {
    {"/api/exchanges", WR_M_GET, WR_LV_MANAGEMENT, exchanges_all},
    {"/api/exchanges/:", WR_M_GET, WR_LV_MANAGEMENT, exchanges_vhost},
    {"/api/exchanges/:/:", WR_M_GET | WR_M_PUT | WR_M_DELETE, WR_LV_MANAGEMENT, exchange_one},
    {"/api/exchanges/:/:/bindings/source", WR_M_GET, WR_LV_MANAGEMENT, exchange_bindings_source},
    {"/api/exchanges/:/:/bindings/destination", WR_M_GET, WR_LV_MANAGEMENT,
     exchange_bindings_destination},
    {"/api/exchanges/:/:/publish", WR_M_POST, WR_LV_MANAGEMENT, exchange_publish},
    {"/api/queues", WR_M_GET, WR_LV_MANAGEMENT, queues_all},
    {"/api/queues/:", WR_M_GET, WR_LV_MANAGEMENT, queues_vhost},
    {"/api/queues/:/:", WR_M_GET | WR_M_PUT | WR_M_DELETE, WR_LV_MANAGEMENT, queue_one},
    {"/api/queues/:/:/bindings", WR_M_GET, WR_LV_MANAGEMENT, queue_bindings},
    {"/api/queues/:/:/contents", WR_M_DELETE, WR_LV_MANAGEMENT, queue_purge},
    {"/api/queues/:/:/get", WR_M_POST, WR_LV_MANAGEMENT, queue_get},
    {"/api/queues/:/:/actions", WR_M_POST, WR_LV_MANAGEMENT, queue_actions},
    {"/api/bindings", WR_M_GET, WR_LV_MANAGEMENT, bindings_all},
    {"/api/bindings/:", WR_M_GET, WR_LV_MANAGEMENT, bindings_vhost},
    {"/api/bindings/:/e/:/q/:", WR_M_GET | WR_M_POST, WR_LV_MANAGEMENT, binding_eq},
    {"/api/bindings/:/e/:/q/:/:", WR_M_GET | WR_M_DELETE, WR_LV_MANAGEMENT, binding_eq_props},
    {"/api/bindings/:/e/:/e/:", WR_M_GET | WR_M_POST, WR_LV_MANAGEMENT, binding_ee},
    {"/api/bindings/:/e/:/e/:/:", WR_M_GET | WR_M_DELETE, WR_LV_MANAGEMENT, binding_ee_props},
    {NULL, 0, 0, NULL},
};
