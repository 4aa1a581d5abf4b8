/*
 * persist.h - what the broker tells the persistence layer, as a table of
 * functions the store fills in (the broker does not depend on the store).
 *
 * A vhost without one (tests, or a broker started without a data directory)
 * keeps everything in memory.
 */
#ifndef WR_BROKER_PERSIST_H
#define WR_BROKER_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "core/histo.h"

struct wr_binding;
struct wr_dedup;
struct wr_exchange;
struct wr_msg;
struct wr_queue;
struct wr_chunk;
struct wr_sreader;
struct wr_stream_name;

/* A stream message as its journal record ('S') holds it; pointers into
 * the reader's buffer (or the recovery's), valid until the next read. */
struct wr_srec {
    uint64_t off;     /* offset in the stream */
    int64_t wall_ms;  /* publish time, wall clock */
    uint64_t pos;     /* where the record starts in the journal */
    const char *exchange, *routing_key;
    uint8_t exchange_len, routing_key_len;
    const uint8_t *props, *body;
    uint32_t props_len, body_len;
    struct wr_chunk *chunk; /* a reader's: the block `body` lies in (a message may hold it) */
};

/* A deduplication key of a durable owner to journal with the next
 * publish (dedup.h): its 'K' record goes just before the message's 'P'
 * record and names it, so recovery restores the key only with the message.
 * The store fills in `seg`, the record's segment (0: not written). */
struct wr_dedup_stage {
    uint64_t owner; /* the queue's store_id, or the exchange's holder id */
    const char *key;
    uint16_t len;
    uint64_t expires; /* monotonic ms; 0: never */
    uint32_t seg;     /* out */
};

/* What /metrics reports of the persistence layer. */
struct wr_persist_stats {
    uint64_t journal_bytes; /* the journal's segment files on disk */
    struct wr_histo fsync;  /* how long each fdatasync of the journal took */
};

struct wr_persist {
    void *ctx;
    /* Vhosts, users, permissions or the kept parts of the definitions
     * changed: the store rewrites the whole definitions file. */
    void (*defs_changed)(void *ctx);
    /* One durable exchange, queue or binding appeared, or is about to go
     * (`gone`: it is still whole): the store logs that one change. */
    void (*defs_exchange)(void *ctx, struct wr_exchange *x, bool gone);
    void (*defs_queue)(void *ctx, struct wr_queue *q, bool gone);
    void (*defs_binding)(void *ctx, struct wr_binding *bd, bool gone);
    /* A persistent message is about to enter these durable queues. Returns
     * the journal position that must be durable before it is confirmed, or
     * 0 when it cannot be made durable (the publish is then nacked). */
    uint64_t (*publish)(void *ctx, struct wr_msg *m, struct wr_queue *const *qs, uint32_t n);
    /* A journaled message left a durable queue for good (ack, drop, expiry,
     * dead-lettering, purge, delete). */
    void (*remove)(void *ctx, struct wr_queue *q, struct wr_msg *m);
    /* A persistent message an exchange type keeps to route later (a
     * delayed exchange), journaled as held by `holder` (the durable
     * exchange's identity, wr_exchange_holder_id): recovered to the
     * exchange's type. Returns the position to confirm after, 0 when it
     * cannot be made durable. */
    uint64_t (*hold)(void *ctx, struct wr_msg *m, uint64_t holder);
    /* The record `id` held by `holder` is done with (routed or dropped). */
    void (*release)(void *ctx, uint64_t id, uint64_t holder);
    /* A journaled message went back to a durable queue after `deliveries`
     * deliveries. */
    void (*requeue)(void *ctx, struct wr_queue *q, struct wr_msg *m, uint16_t deliveries);
    /* A journaled message sits deep in a long durable queue: its body may
     * leave memory once its record is written. */
    void (*page_out)(void *ctx, struct wr_msg *m);

    /* Streams (stream.h). Journal a stamped message at offset `off` of
     * stream q: returns the position to confirm after (0: not journaled)
     * and sets *rec to where its record starts. */
    uint64_t (*stream_append)(void *ctx, struct wr_queue *q, struct wr_msg *m, uint64_t off,
                              uint64_t *rec);
    /* Retention cut the log: it starts at `first` now (a 'T' record). */
    void (*stream_truncate)(void *ctx, struct wr_queue *q, uint64_t first);
    /* A stream holds (pin) or lets go of journal segment `seg`. */
    void (*stream_pin)(void *ctx, uint32_t seg, bool pin);
    /* A cursor for reading a stream's records back: the next record of
     * stream `qid` at or after journal position *pos (a record's start),
     * *pos then past it. 1: *out filled; 0: no more in that segment (or
     * not written yet); <0: an I/O error or a corrupt record (logged). */
    struct wr_sreader *(*sreader_new)(void *ctx);
    void (*sreader_free)(struct wr_sreader *rd);
    int (*sreader_next)(void *ctx, struct wr_sreader *rd, uint64_t qid, uint64_t *pos,
                        struct wr_srec *out);

    /* Keys to journal with the next publish (NULL, 0: none; the array
     * stays the caller's and must live until `publish` returns). */
    void (*dedup_stage)(void *ctx, struct wr_dedup_stage *ks, uint32_t n);
    /* A journaled key (its record in segment `seg`) is forgotten: evicted,
     * expired, replaced, or its owner is gone. */
    void (*dedup_forget)(void *ctx, uint32_t seg);
    /* A cache starts or stops journaling keys: the store walks the caches
     * that do when it compacts a segment holding their records. */
    void (*dedup_attach)(void *ctx, struct wr_dedup *d, bool attach);

    /* A named stream consumer's position moved (stream.h): save it with
     * the turn (once per turn: n->dirty is set until the store wrote it). */
    void (*stream_offset)(void *ctx, struct wr_stream_name *n);

    /* The loop turn ends: write the definitions if they changed, then the
     * turn's records (before any reply to the turn leaves). */
    void (*flush)(void *ctx);
    /* A confirm waits: sync at the end of this turn. */
    void (*want_sync)(void *ctx);
    /* The journal or the definitions could not be written (disk alarm). */
    bool (*failed)(void *ctx);
    /* Free space is low: work that only writes more (compaction) waits. */
    void (*low_disk)(void *ctx, bool low);
    /* Its figures for /metrics (no I/O). */
    void (*stats)(void *ctx, struct wr_persist_stats *out);
};

/* Durable queues longer than this keep only the bodies of their first
 * messages in memory; the rest are read back from the journal on delivery. */
#define WR_PAGE_AFTER 10000u

#endif
