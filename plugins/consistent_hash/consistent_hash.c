/*
 * consistent_hash.c - the x-consistent-hash exchange, as RabbitMQ's
 * rabbitmq-consistent-hash-exchange plugin: messages are spread over the
 * bound queues by a hash of their routing key (or of a header, argument
 * `hash-header`, or of a property, `hash-property`: message_id,
 * correlation_id or timestamp), each binding taking a share in proportion
 * to its weight, the binding key. The same key reaches the same queue
 * while the bindings stay as they are; adding a queue moves only the share
 * it takes. "Partition by key, keep per-key order" for job queues.
 *
 * How. A table of 65,536 slots, each owned by one binding: the one with
 * the highest weighted rendezvous score for that slot (score =
 * -weight / ln(u), u a hash of the slot and the binding's identity in
 * (0,1)). A message goes to the owner of slot hash(key) mod 65,536: one
 * hash and one lookup per message. A binding added wins only the slots
 * where it scores highest (its weight's share, taken evenly from the
 * others); one removed gives only its own slots back. The table depends on
 * the set of bindings alone, not on the order they came in, so placement
 * is the same after a restart. Rebuilding it costs 65,536 scores per
 * binding, paid on bind and unbind, never per message.
 *
 * RabbitMQ's refusals, channel error 406 each, in its words: a binding
 * key that is not an integer or not above 0, hash-header together with
 * hash-property, a hash-property other than the three. A hash-header that
 * is not a string, which RabbitMQ 3.10 answers with 541 (a crash), is 406
 * here. A message without the header or property is hashed as an empty
 * value: they all reach one queue, as in RabbitMQ.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/plugin.h"

#define SLOTS 65536u
#define MAX_BINDINGS 65535u

static const struct warren_api *api;

enum source { BY_KEY, BY_HEADER, BY_PROPERTY };

struct chx {
    enum source by;
    char *field;        /* the header or property name */
    warren_binding **b; /* bindings, in no particular order */
    uint64_t *id;       /* their identities (hash of destination and key) */
    double *weight;
    uint32_t n, cap;
    uint16_t *slot; /* SLOTS entries: index into b; NULL when no binding */
};

/* ---- hashing ---- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return mix(h);
}

/* ---- the table ---- */

static void rebuild(struct chx *c)
{
    if (c->n == 0) {
        free(c->slot);
        c->slot = NULL;
        return;
    }
    if (!c->slot && !(c->slot = malloc(SLOTS * sizeof(*c->slot))))
        return; /* routes nowhere until memory allows a rebuild */
    for (uint32_t s = 0; s < SLOTS; s++) {
        double best = -1;
        uint16_t owner = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            /* u in (0,1); ln(u) < 0, so the score is positive */
            uint64_t h = mix(c->id[i] ^ mix(s));
            double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0;
            double score = -c->weight[i] / log(u);
            if (score > best) {
                best = score;
                owner = (uint16_t)i;
            }
        }
        c->slot[s] = owner;
    }
}

static bool parse_weight(struct warren_bytes key, double *w, struct warren_error *err)
{
    char buf[32];
    char *end;
    long long v;
    if (key.len == 0 || key.len >= sizeof buf)
        goto nan;
    memcpy(buf, key.ptr, key.len);
    buf[key.len] = '\0';
    v = strtoll(buf, &end, 10);
    if (*end || end == buf)
        goto nan;
    if (v <= 0) {
        if (err) {
            err->code = WARREN_PRECONDITION_FAILED;
            snprintf(err->text, sizeof err->text, "The binding key must be greater than 0");
        }
        return false;
    }
    *w = (double)v;
    return true;
nan:
    if (err) {
        /* in RabbitMQ's words, which print the key as an Erlang binary */
        err->code = WARREN_PRECONDITION_FAILED;
        if (key.len == 0)
            snprintf(err->text, sizeof err->text, "The binding key must be an integer: <<>>");
        else
            snprintf(err->text, sizeof err->text,
                     "The binding key must be an integer: <<\"%.*s\">>",
                     (int)(key.len > 64 ? 64 : key.len), key.ptr);
    }
    return false;
}

/* ---- the type's hooks ---- */

static bool arg_string(warren_exchange *x, const char *name, struct warren_value *v,
                       struct warren_error *err)
{
    *v = api->exchange_arg(x, name);
    if (v->type == WARREN_VALUE_NONE)
        return true;
    if (v->type != WARREN_VALUE_STRING) {
        err->code = WARREN_PRECONDITION_FAILED;
        snprintf(err->text, sizeof err->text, "Invalid argument '%s': must be a string", name);
        return false;
    }
    return true;
}

static int chx_declare(warren_exchange *x, struct warren_error *err)
{
    struct warren_value hh, hp;
    struct chx *c;
    if (!arg_string(x, "hash-header", &hh, err) || !arg_string(x, "hash-property", &hp, err))
        return err->code;
    if (hh.type != WARREN_VALUE_NONE && hp.type != WARREN_VALUE_NONE) {
        err->code = WARREN_PRECONDITION_FAILED;
        snprintf(err->text, sizeof err->text,
                 "hash-header and hash-property are mutually exclusive");
        return err->code;
    }
    if (hp.type != WARREN_VALUE_NONE &&
        !((hp.s.len == 10 && !memcmp(hp.s.ptr, "message_id", 10)) ||
          (hp.s.len == 14 && !memcmp(hp.s.ptr, "correlation_id", 14)) ||
          (hp.s.len == 9 && !memcmp(hp.s.ptr, "timestamp", 9)))) {
        err->code = WARREN_PRECONDITION_FAILED;
        snprintf(err->text, sizeof err->text, "Unsupported property: %.*s",
                 (int)(hp.s.len > 64 ? 64 : hp.s.len), hp.s.ptr);
        return err->code;
    }
    if (!(c = calloc(1, sizeof(*c))))
        goto oom;
    c->by = hh.type != WARREN_VALUE_NONE   ? BY_HEADER
            : hp.type != WARREN_VALUE_NONE ? BY_PROPERTY
                                           : BY_KEY;
    if (c->by != BY_KEY) {
        struct warren_bytes f = c->by == BY_HEADER ? hh.s : hp.s;
        if (!(c->field = malloc(f.len + 1))) {
            free(c);
            goto oom;
        }
        memcpy(c->field, f.ptr, f.len);
        c->field[f.len] = '\0';
    }
    api->exchange_set_state(x, c);
    return WARREN_OK;
oom:
    err->code = WARREN_INTERNAL_ERROR;
    snprintf(err->text, sizeof err->text, "out of memory");
    return err->code;
}

static void chx_destroy(warren_exchange *x)
{
    struct chx *c = api->exchange_get_state(x);
    if (!c)
        return;
    free(c->field);
    free(c->b);
    free(c->id);
    free(c->weight);
    free(c->slot);
    free(c);
}

static int chx_validate_binding(warren_exchange *x, struct warren_bytes key,
                                struct warren_bytes args, struct warren_error *err)
{
    struct chx *c = api->exchange_get_state(x);
    double w;
    (void)args;
    if (!parse_weight(key, &w, err))
        return err->code;
    if (c && c->n >= MAX_BINDINGS) {
        err->code = WARREN_PRECONDITION_FAILED;
        snprintf(err->text, sizeof err->text, "too many bindings (at most %u)", MAX_BINDINGS);
        return err->code;
    }
    return WARREN_OK;
}

static int chx_bind(warren_exchange *x, warren_binding *b)
{
    struct chx *c = api->exchange_get_state(x);
    struct warren_bytes key = api->binding_key(b);
    double w;
    if (!parse_weight(key, &w, NULL))
        w = 1; /* validated on the way in; a recovered oddity counts once */
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 8;
        warren_binding **nb = realloc(c->b, cap * sizeof(*nb));
        uint64_t *ni;
        double *nw;
        if (!nb)
            return -1;
        c->b = nb;
        if (!(ni = realloc(c->id, cap * sizeof(*ni))))
            return -1;
        c->id = ni;
        if (!(nw = realloc(c->weight, cap * sizeof(*nw))))
            return -1;
        c->weight = nw;
        c->cap = cap;
    }
    /* identity: the destination (its binding state is not ours to use when
     * there is an inner type; there is none here) and the key */
    {
        struct warren_bytes dest = api->binding_destination(b);
        c->id[c->n] = hash_bytes(key.ptr, key.len, hash_bytes(dest.ptr, dest.len, 0x5eed));
    }
    c->b[c->n] = b;
    c->weight[c->n] = w;
    c->n++;
    rebuild(c);
    return 0;
}

static void chx_unbind(warren_exchange *x, warren_binding *b)
{
    struct chx *c = api->exchange_get_state(x);
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->b[i] != b)
            continue;
        c->n--;
        c->b[i] = c->b[c->n];
        c->id[i] = c->id[c->n];
        c->weight[i] = c->weight[c->n];
        rebuild(c);
        return;
    }
}

static void chx_route(warren_exchange *x, warren_route *r)
{
    struct chx *c = api->exchange_get_state(x);
    warren_message *m = api->route_message(r);
    uint64_t h;

    if (!c->slot || !c->n)
        return;
    if (c->by == BY_KEY) {
        struct warren_bytes k = api->route_key(r);
        h = hash_bytes(k.ptr, k.len, 0);
    } else {
        struct warren_value v;
        if (!m)
            return;
        v = c->by == BY_HEADER ? api->message_header(m, c->field)
                               : api->message_property(m, c->field);
        if (v.type == WARREN_VALUE_STRING)
            h = hash_bytes(v.s.ptr, v.s.len, 0);
        else if (v.type == WARREN_VALUE_INT || v.type == WARREN_VALUE_BOOL)
            h = mix((uint64_t)v.i);
        else
            h = hash_bytes("", 0, 0); /* absent: all such messages go one way, as in RabbitMQ */
        if (!api->route_first(r))
            return; /* the CC/BCC keys do not change a header or property */
    }
    api->route_emit(r, c->b[c->slot[h & (SLOTS - 1)]]);
}

static const struct warren_exchange_type chx_type = {
    .size = sizeof(struct warren_exchange_type),
    .name = "x-consistent-hash",
    .declare = chx_declare,
    .destroy = chx_destroy,
    .validate_binding = chx_validate_binding,
    .bind = chx_bind,
    .unbind = chx_unbind,
    .route = chx_route,
};

static int chx_init(warren_host *h, const struct warren_api *a)
{
    api = a;
    return a->register_exchange_type(h, &chx_type);
}

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .name = "consistent_hash",
    .version = "1.0",
    .description = "x-consistent-hash exchange: spreads messages over queues by a hash of the "
                   "routing key, a header or a property, in proportion to binding weights",
    .init = chx_init,
};
