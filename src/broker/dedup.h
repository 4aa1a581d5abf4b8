/*
 * dedup.h - message deduplication caches (x-message-deduplication).
 *
 * A queue or exchange declared with `x-message-deduplication: true` owns a
 * cache of the keys of the messages it took: a message whose key is in the
 * cache is a duplicate (publish.c drops it for that owner, still confirms
 * it). The key is the value of the header `x-deduplication-header` (or of
 * the header the argument `x-deduplication-header` names, or the message_id
 * property with `x-deduplication-key: message-id`). A key is remembered for
 * `x-cache-ttl` ms (the message header `x-cache-ttl` overrides it; none:
 * until evicted), at most `x-cache-size` keys (default
 * WR_DEDUP_DEFAULT_SIZE), least recently used evicted first.
 *
 * The cache is an open-addressing table of pointers (linear probing,
 * backward-shift deletion, at most 3/4 full) over one allocation per key
 * that also links the LRU list: about 40 bytes of header plus the key, plus
 * 8 to 16 bytes of table per key. Expired keys leave when looked up, from
 * the LRU tail when keys are added, and when the store compacts.
 *
 * Durability (store.c): a key of a durable owner that came with a journaled
 * message is journaled as a 'K' record just before the message's 'P'
 * record; the entry remembers the record's segment so the store can keep
 * that segment, or copy the record forward, while the key lives.
 */
#ifndef WR_BROKER_DEDUP_H
#define WR_BROKER_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errbuf.h"
#include "core/list.h"
#include "wire/buf.h"

struct wr_msg;
struct wr_persist;
struct wr_queue;
struct wr_exchange;

#define WR_DEDUP_DEFAULT_SIZE 100000u /* keys, when x-cache-size is not given */
#define WR_DEDUP_MAX_KEY 65535u       /* longer keys are not deduplicated */

/* One remembered key (one allocation). */
struct wr_dedup_ent {
    struct wr_dedup_ent *prev, *next; /* LRU: d->head most recent */
    uint64_t expires;                 /* monotonic ms (wr_now_ms); 0: never */
    uint32_t hash;
    uint32_t seg; /* journal segment of its 'K' record; 0: not journaled */
    uint16_t len;
    char key[];
};

struct wr_dedup {
    struct wr_dedup_ent **slots;
    uint32_t mask; /* slots - 1 (a power of two minus one), 0 when none */
    uint32_t n;
    uint32_t max;   /* x-cache-size */
    int64_t ttl_ms; /* x-cache-ttl; -1: none */
    bool by_message_id;
    char *header; /* the header holding the key (NUL-terminated) */
    struct wr_dedup_ent *head, *tail;
    uint64_t deduplicated; /* duplicates dropped (messages_deduplicated) */
    uint64_t key_bytes;    /* bytes of the entries' allocations */
    /* Journaling (durable owners): the owner's id in the journal (a queue's
     * store_id, an exchange's holder id) and the store that keeps the
     * segments of its keys; pnode is on the store's list. */
    uint64_t owner;
    const struct wr_persist *persist;
    struct wr_list pnode;
};

/* 406 PRECONDITION_FAILED for a dedup argument of a wrong type or value,
 * in RabbitMQ's words ("invalid arg 'x-cache-size' for exchange 'x' in
 * vhost '/': {value_negative,-1}"). `kind` is "queue" or "exchange". */
int wr_dedup_args_check(struct wr_str args, const char *kind, struct wr_str name, const char *vhost,
                        struct wr_errbuf *err);
/* Whether validated arguments turn deduplication on. */
bool wr_dedup_args_on(struct wr_str args);

/* A cache configured from validated arguments; NULL when out of memory. */
struct wr_dedup *wr_dedup_new(struct wr_str args);
/* Frees every key (telling the store their records are dead). */
void wr_dedup_free(struct wr_dedup *d);

/* The cache of a queue or exchange, made on first use; NULL when it has
 * none (or out of memory). */
struct wr_dedup *wr_dedup_of_queue(struct wr_queue *q);
struct wr_dedup *wr_dedup_of_exchange(struct wr_exchange *x);

/* The key of m for d, from its headers (already found) or message_id.
 * False when m carries no usable key. */
bool wr_dedup_key(const struct wr_dedup *d, const struct wr_msg *m, struct wr_str headers,
                  struct wr_str *key);
/* How long a new key is remembered: the message's x-cache-ttl header, else
 * the cache's x-cache-ttl (-1: until evicted). Asked only for new keys. */
int64_t wr_dedup_ttl(const struct wr_dedup *d, struct wr_str headers);

/* Whether key is remembered and unexpired at `now` (ms, monotonic); a hit
 * counts as use (LRU). An expired entry found is removed. */
bool wr_dedup_seen(struct wr_dedup *d, struct wr_str key, uint64_t now);

/* Remember key until `expires` (monotonic ms, 0: never), its record in
 * journal segment `seg` (0: none); replaces the entry of the same key and
 * evicts the least recently used past the size. 0, or WR_ENOMEM. */
int wr_dedup_add(struct wr_dedup *d, struct wr_str key, uint64_t expires, uint32_t seg);

/* Forget key (tests, a publish that could not be made durable). */
void wr_dedup_remove_key(struct wr_dedup *d, struct wr_str key);
/* Remove an entry (the store: an expired key met while compacting). */
void wr_dedup_remove(struct wr_dedup *d, struct wr_dedup_ent *e);

/* Journal d's keys as `owner` through p (attaches d to the store). */
void wr_dedup_journal(struct wr_dedup *d, uint64_t owner, const struct wr_persist *p);

/* Bytes the cache holds: entries plus table. */
static inline uint64_t wr_dedup_bytes(const struct wr_dedup *d)
{
    return d->key_bytes + (d->mask ? ((uint64_t)d->mask + 1) * sizeof(void *) : 0) + sizeof(*d);
}

#endif
