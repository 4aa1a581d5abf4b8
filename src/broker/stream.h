/*
 * stream.h - streams (x-queue-type stream): an append-only log of messages
 * that every consumer reads from an offset of its choosing, as RabbitMQ's
 * streams behave seen from AMQP 0-9-1.
 *
 * A stream is a queue (struct wr_queue, so routing, bindings, declare,
 * delete, permissions and the management API treat it as one) whose
 * messages live here instead of in the priority rings: a ring indexed by
 * offset, [first, next). Each message is stored once, already carrying its
 * `x-stream-offset` header (the publish path stamps a copy, so a delivery
 * writes it as it is) and journaled with the queue like a quorum queue's
 * (every message, whatever its delivery mode); recovery puts them back by
 * that header. Bodies deep in a long stream are paged out to the journal
 * and read back on delivery.
 *
 * Consumers each hold a cursor (struct wr_consumer.stream_next); an
 * acknowledgement only gives back prefetch credit. Delivery is per
 * consumer, in offset order, as long as its channel takes more.
 *
 * Retention works on segments as RabbitMQ's does: the log is cut into
 * segments of x-stream-max-segment-size-bytes (counted, not files: the
 * bytes are the journal's), and when a new segment starts, whole segments
 * are removed from the head while the stream is over x-max-length-bytes or
 * a segment's newest message is older than x-max-age. The active segment
 * always stays, so the last offset is never lost and never reused.
 *
 * Key compaction (Warren's, x-stream-compaction key): closed segments keep
 * only the newest message of each key (the routing key, or the header
 * x-stream-compaction-key-header names); a message with an empty body and
 * `x-tombstone: true` removes its key once it is older than
 * x-stream-tombstone-retention and its segment is closed. Removed
 * messages leave holes: the kept ones keep their offsets, consumers skip
 * the holes. A message superseded while its segment is closed goes at
 * once; the rest are found by a walk of each segment when it closes, a
 * bounded number of messages per loop turn, so publishers never wait.
 *
 * "last" is the first offset of the last chunk, a chunk being what was
 * appended to the stream in one loop turn (RabbitMQ's chunks are its write
 * batches).
 */
#ifndef WR_BROKER_STREAM_H
#define WR_BROKER_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errbuf.h"
#include "core/hmap.h"
#include "core/list.h"
#include "wire/buf.h"

struct event;
struct wr_consumer;
struct wr_fv;
struct wr_msg;
struct wr_queue;

struct wr_stream_seg {
    uint64_t first;   /* offset of its first message */
    uint64_t bytes;   /* properties and bodies of its messages */
    uint64_t last_ms; /* monotonic publish time of its newest message */
};

/* A named consumer's position (x-stream-consumer-name): where a consumer
 * of that name resumes when it gives no x-stream-offset. Saved by the
 * store (store/offsets.h) at most once per loop turn. */
struct wr_stream_name {
    struct wr_list dnode; /* the store's names to save this turn */
    uint64_t qid;         /* the stream's store id */
    uint64_t next;        /* the offset after the last one acknowledged */
    bool dirty;           /* on the store's list */
    uint8_t len;
    char name[255];
};

struct wr_stream {
    struct wr_msg **ring; /* ring[offset & (cap - 1)] for first <= offset < next */
    uint64_t cap;
    uint64_t first, next;
    uint64_t bytes; /* held: properties and bodies */
    struct wr_stream_seg *segs;
    uint32_t nsegs, segs_cap;
    uint64_t segment_max;
    uint64_t chunk_first; /* "last" */
    uint64_t chunk_us;    /* the loop turn that chunk was appended in */
    struct wr_stream_name **names;
    uint32_t nnames, names_cap;
    /* Key compaction (x-stream-compaction key): the newest offset of each
     * key, the closed segments' offsets still to look at (a walk of a
     * bounded number of messages per loop turn), tombstones in offset
     * order, and what compaction removed. */
    struct wr_hmap keys;
    uint64_t walk_next, walk_end;
    bool walk_all; /* after recovery: every closed segment */
    uint64_t *tombs;
    uint32_t tomb_head, ntombs, tombs_cap; /* a ring, power-of-two capacity */
    struct event *compact_ev;
    uint64_t compacted;
    /* Consumers see offsets below `committed` only: a message is visible
     * once the journal holds it durably (as RabbitMQ delivers only
     * committed chunks), so no consumer ever sees an offset a crash could
     * take back. Appended messages wait in `pend` (offset, journal
     * position) while the stream is on the broker's stream_wait list. */
    uint64_t committed;
    struct wr_stream_pend {
        uint64_t off, pos;
    } * pend;
    uint32_t pend_head, npend, pend_cap; /* a ring, power-of-two capacity */
    struct wr_list wnode;
    struct wr_queue *q;
};

/* For a new stream queue. NULL on allocation failure. */
struct wr_stream *wr_stream_new(struct wr_queue *q, int64_t segment_max);
/* Drops the stream's references (nothing journaled: see wr_stream_clear). */
void wr_stream_free(struct wr_stream *st);

/* Messages held. */
static inline uint64_t wr_stream_count(const struct wr_stream *st)
{
    return st->next - st->first;
}

/* The copy of m that goes into q: m's properties with x-stream-offset set
 * to the offset it will get, journaled identity, same body. NULL on
 * allocation failure. Append it with wr_stream_append before the next
 * stamp. */
struct wr_msg *wr_stream_stamp(struct wr_queue *q, const struct wr_msg *m);
/* Append a stamped message (takes a new reference), apply retention when
 * a segment starts, and once the journal holds it durably (journal_pos;
 * 0: at once) hand it to the consumers that have room. 0 or WR_ENOMEM. */
int wr_stream_append(struct wr_queue *q, struct wr_msg *m, uint64_t journal_pos);
/* The journal is durable up to `pos`: streams on `wait` (the broker's
 * stream_wait) make what it covers visible and deliver it. */
void wr_stream_synced(struct wr_list *wait, uint64_t pos);
/* A message recovered from the journal (startup, in journal order). */
int wr_stream_append_recovered(struct wr_queue *q, struct wr_msg *m);

/* Deliver to every consumer that has room, or to one. */
void wr_stream_dispatch(struct wr_queue *q);
void wr_stream_dispatch_one(struct wr_queue *q, struct wr_consumer *c);

/* The consumer argument x-stream-offset (NULL: absent, "next") as the
 * offset the consumer starts at. 406 with RabbitMQ's reason when it is
 * not one of its forms. */
int wr_stream_start(struct wr_queue *q, const struct wr_fv *spec, uint64_t *out,
                    struct wr_errbuf *err);

/* The consumer argument x-stream-consumer-name: the name's record
 * (created; next unset = UINT64_MAX). NULL with err filled (406) when the
 * value is not a string of 1 to 255 bytes, or out of memory. */
struct wr_stream_name *wr_stream_name_get(struct wr_queue *q, const struct wr_fv *v,
                                          struct wr_errbuf *err);
/* Recovery: a saved position. */
void wr_stream_name_restore(struct wr_queue *q, const char *name, uint8_t len, uint64_t next);
/* A named consumer acknowledged the delivery whose entry had `seq` (the
 * offset's low 32 bits, as wr_stream_dispatch_one sets it). */
void wr_stream_acked(struct wr_queue *q, struct wr_stream_name *n, uint32_t seq);
/* Bytes from offset `from` to the tail (a named consumer's lag). O(lag). */
uint64_t wr_stream_bytes_after(const struct wr_stream *st, uint64_t from);

/* The queue is deleted: every message leaves (journaled removals). */
void wr_stream_clear(struct wr_queue *q);

#endif
