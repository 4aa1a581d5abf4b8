/*
 * dedup.c - message deduplication caches; see dedup.h.
 *
 * Neighbours: publish.c asks and fills the caches on the one publish path;
 * qargs.c (queues) and vhost.c (exchanges) check the arguments; the store
 * (store.c) journals the keys of durable owners and rebuilds the caches at
 * recovery through wr_dedup_add.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dedup.h"
#include "broker/exchange.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/queue.h"
#include "core/clock.h"
#include "core/hmap.h"
#include "wire/field.h"

/* ---- arguments ---- */

enum dkind { DK_BOOL, DK_POS, DK_STR, DK_KEY };

static const struct {
    const char *name;
    enum dkind kind;
} dargs[] = {
    {"x-message-deduplication", DK_BOOL}, {"x-cache-size", DK_POS},        {"x-cache-ttl", DK_POS},
    {"x-deduplication-header", DK_STR},   {"x-deduplication-key", DK_KEY},
};

int wr_dedup_args_check(struct wr_str args, const char *kind, struct wr_str name, const char *vhost,
                        struct wr_errbuf *err)
{
    /* The texts of queue arguments (qargs.c), which are RabbitMQ's. */
    for (size_t k = 0; args.len && k < sizeof(dargs) / sizeof(dargs[0]); k++) {
        struct wr_fv v;
        int64_t i = 0;
        char why[96];
        why[0] = '\0';
        if (wr_table_get(args, dargs[k].name, &v) != 1)
            continue;
        switch (dargs[k].kind) {
        case DK_BOOL:
        case DK_STR:
            if (v.type != (dargs[k].kind == DK_BOOL ? 't' : 'S'))
                snprintf(why, sizeof(why), "{unacceptable_type,%s}", wr_field_type_name(v.type));
            break;
        case DK_POS:
            if (!wr_fv_int(&v, &i) || v.type == 'T')
                snprintf(why, sizeof(why), "\"expected integer, got %s\"",
                         wr_field_type_name(v.type));
            else if (i < 0)
                snprintf(why, sizeof(why), "{value_negative,%lld}", (long long)i);
            else if (i == 0)
                snprintf(why, sizeof(why), "{value_zero,0}");
            break;
        case DK_KEY:
            if (v.type != 'S')
                snprintf(why, sizeof(why), "{unacceptable_type,%s}", wr_field_type_name(v.type));
            else if (!wr_str_eqc(v.v.str, "message-id") && !wr_str_eqc(v.v.str, "header"))
                snprintf(why, sizeof(why), "invalid_value");
            break;
        }
        if (why[0])
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "invalid arg '%s' for %s '%.*s' in vhost '%s': %s", dargs[k].name, kind,
                           (int)name.len, name.ptr, vhost, why);
    }
    return 0;
}

bool wr_dedup_args_on(struct wr_str args)
{
    struct wr_fv v;
    return args.len && wr_table_get(args, "x-message-deduplication", &v) == 1 && v.type == 't' &&
           v.v.t;
}

/* ---- the table ---- */

static uint32_t key_hash(struct wr_str key)
{
    uint64_t h = wr_hmap_hash(key);
    return (uint32_t)(h ^ (h >> 32));
}

/* The slot holding key, or the empty slot where it would go. */
static uint32_t probe(const struct wr_dedup *d, struct wr_str key, uint32_t h)
{
    uint32_t i = h & d->mask;
    for (;;) {
        struct wr_dedup_ent *e = d->slots[i];
        if (!e || (e->hash == h && e->len == key.len && memcmp(e->key, key.ptr, key.len) == 0))
            return i;
        i = (i + 1) & d->mask;
    }
}

static int grow(struct wr_dedup *d)
{
    uint32_t ncap = d->mask ? (d->mask + 1) * 2 : 16;
    struct wr_dedup_ent **old = d->slots;
    uint32_t ocap = d->mask ? d->mask + 1 : 0;
    struct wr_dedup_ent **a = calloc(ncap, sizeof(*a));
    if (!a)
        return WR_ENOMEM;
    d->slots = a;
    d->mask = ncap - 1;
    for (uint32_t i = 0; i < ocap; i++) {
        struct wr_dedup_ent *e = old[i];
        uint32_t j;
        if (!e)
            continue;
        for (j = e->hash & d->mask; a[j]; j = (j + 1) & d->mask)
            ;
        a[j] = e;
    }
    free(old);
    return 0;
}

/* Empty slot i and shift back the entries of its run that probed past it. */
static void slot_clear(struct wr_dedup *d, uint32_t i)
{
    uint32_t j = i;
    d->slots[i] = NULL;
    for (;;) {
        struct wr_dedup_ent *e;
        uint32_t home;
        j = (j + 1) & d->mask;
        if (!(e = d->slots[j]))
            return;
        home = e->hash & d->mask;
        /* e may move to i when i lies cyclically in [home, j). */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            d->slots[i] = e;
            d->slots[j] = NULL;
            i = j;
        }
    }
}

static void lru_unlink(struct wr_dedup *d, struct wr_dedup_ent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        d->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        d->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(struct wr_dedup *d, struct wr_dedup_ent *e)
{
    e->prev = NULL;
    e->next = d->head;
    if (d->head)
        d->head->prev = e;
    d->head = e;
    if (!d->tail)
        d->tail = e;
}

static size_t ent_size(uint16_t len)
{
    return offsetof(struct wr_dedup_ent, key) + len;
}

/* Unlink and free e, whose slot is i; tell the store its record is dead. */
static void ent_drop(struct wr_dedup *d, struct wr_dedup_ent *e, uint32_t i)
{
    slot_clear(d, i);
    lru_unlink(d, e);
    d->n--;
    d->key_bytes -= ent_size(e->len);
    if (e->seg && d->persist)
        d->persist->dedup_forget(d->persist->ctx, e->seg);
    free(e);
}

void wr_dedup_remove(struct wr_dedup *d, struct wr_dedup_ent *e)
{
    ent_drop(d, e, probe(d, (struct wr_str){e->key, e->len}, e->hash));
}

void wr_dedup_remove_key(struct wr_dedup *d, struct wr_str key)
{
    uint32_t i;
    if (!d->n || key.len > WR_DEDUP_MAX_KEY)
        return;
    i = probe(d, key, key_hash(key));
    if (d->slots[i])
        ent_drop(d, d->slots[i], i);
}

bool wr_dedup_seen(struct wr_dedup *d, struct wr_str key, uint64_t now)
{
    uint32_t i;
    struct wr_dedup_ent *e;
    if (!d->n)
        return false;
    i = probe(d, key, key_hash(key));
    if (!(e = d->slots[i]))
        return false;
    if (e->expires && e->expires <= now) {
        ent_drop(d, e, i);
        return false;
    }
    if (d->head != e) {
        lru_unlink(d, e);
        lru_front(d, e);
    }
    return true;
}

int wr_dedup_add(struct wr_dedup *d, struct wr_str key, uint64_t expires, uint32_t seg)
{
    struct wr_dedup_ent *e;
    uint32_t h = key_hash(key), i;
    uint64_t now = 0;

    if (key.len > WR_DEDUP_MAX_KEY)
        return 0;
    if (d->n && (e = d->slots[i = probe(d, key, h)]))
        ent_drop(d, e, i); /* a fresh copy: new expiry, new record */
    /* Room: the least recently used go past the size; and a couple of
     * expired ones from the tail, so keys with a TTL do not wait for the
     * size to leave. */
    while (d->n >= d->max)
        wr_dedup_remove(d, d->tail);
    for (int k = 0; k < 2 && d->tail && d->tail->expires; k++) {
        if (!now)
            now = wr_now_ms();
        if (d->tail->expires > now)
            break;
        wr_dedup_remove(d, d->tail);
    }
    if (((uint64_t)d->n + 1) * 4 > ((uint64_t)d->mask + 1) * 3 && grow(d) < 0)
        return WR_ENOMEM;
    e = malloc(ent_size((uint16_t)key.len));
    if (!e)
        return WR_ENOMEM;
    e->expires = expires;
    e->hash = h;
    e->seg = seg;
    e->len = (uint16_t)key.len;
    if (key.len)
        memcpy(e->key, key.ptr, key.len);
    d->slots[probe(d, key, h)] = e;
    lru_front(d, e);
    d->n++;
    d->key_bytes += ent_size(e->len);
    return 0;
}

/* ---- the cache's life ---- */

struct wr_dedup *wr_dedup_new(struct wr_str args)
{
    struct wr_dedup *d = calloc(1, sizeof(*d));
    struct wr_fv v;
    int64_t i;
    struct wr_str h = {"x-deduplication-header", 22};

    if (!d)
        return NULL;
    wr_list_init(&d->pnode);
    d->max = WR_DEDUP_DEFAULT_SIZE;
    d->ttl_ms = -1;
    if (wr_table_get(args, "x-cache-size", &v) == 1 && wr_fv_int(&v, &i) && i > 0)
        d->max = i > INT32_MAX ? INT32_MAX : (uint32_t)i;
    if (wr_table_get(args, "x-cache-ttl", &v) == 1 && wr_fv_int(&v, &i) && i > 0)
        d->ttl_ms = i;
    if (wr_table_get(args, "x-deduplication-key", &v) == 1 && v.type == 'S')
        d->by_message_id = wr_str_eqc(v.v.str, "message-id");
    if (wr_table_get(args, "x-deduplication-header", &v) == 1 && v.type == 'S')
        h = v.v.str;
    d->header = malloc((size_t)h.len + 1);
    if (!d->header) {
        free(d);
        return NULL;
    }
    memcpy(d->header, h.ptr, h.len);
    d->header[h.len] = '\0';
    return d;
}

void wr_dedup_free(struct wr_dedup *d)
{
    struct wr_dedup_ent *e, *nx;
    if (!d)
        return;
    for (e = d->head; e; e = nx) {
        nx = e->next;
        if (e->seg && d->persist)
            d->persist->dedup_forget(d->persist->ctx, e->seg);
        free(e);
    }
    if (d->persist)
        d->persist->dedup_attach(d->persist->ctx, d, false);
    free(d->slots);
    free(d->header);
    free(d);
}

void wr_dedup_journal(struct wr_dedup *d, uint64_t owner, const struct wr_persist *p)
{
    if (d->persist == p)
        return;
    if (d->persist)
        d->persist->dedup_attach(d->persist->ctx, d, false);
    d->owner = owner;
    d->persist = p;
    if (p)
        p->dedup_attach(p->ctx, d, true);
}

struct wr_dedup *wr_dedup_of_queue(struct wr_queue *q)
{
    if (!q->s.dedup_cache && q->s.dedup)
        q->s.dedup_cache = wr_dedup_new(q->args);
    return q->s.dedup_cache;
}

struct wr_dedup *wr_dedup_of_exchange(struct wr_exchange *x)
{
    if (!x->dedup && x->dedup_on)
        x->dedup = wr_dedup_new(x->args);
    return x->dedup;
}

/* ---- a message's key ---- */

int64_t wr_dedup_ttl(const struct wr_dedup *d, struct wr_str headers)
{
    struct wr_fv v;
    int64_t i;
    if (headers.len && wr_table_get(headers, "x-cache-ttl", &v) == 1 && wr_fv_int(&v, &i) &&
        v.type != 'T' && i > 0)
        return i;
    return d->ttl_ms;
}

bool wr_dedup_key(const struct wr_dedup *d, const struct wr_msg *m, struct wr_str headers,
                  struct wr_str *key)
{
    struct wr_fv v;

    if (d->by_message_id)
        return wr_msg_message_id(m, key) && key->len <= WR_DEDUP_MAX_KEY;
    if (!headers.len || wr_table_get(headers, d->header, &v) != 1)
        return false;
    switch (v.type) {
    case 'S':
    case 'x':
        *key = v.v.str;
        return key->len <= WR_DEDUP_MAX_KEY;
    default:
        /* Only strings are keys (what clients send as ids); a number, a
         * table or a bool leaves the message undeduplicated. */
        return false;
    }
}
