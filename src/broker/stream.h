/*
 * stream.h - streams (x-queue-type stream): an append-only log of messages
 * that every consumer reads from an offset of its choosing, as RabbitMQ's
 * streams behave seen from AMQP 0-9-1.
 *
 * A stream is a queue (struct wr_queue, so routing, bindings, declare,
 * delete, permissions and the management API treat it as one) whose
 * messages live here instead of in the priority rings. Each message is
 * stored once, already carrying its `x-stream-offset` header (the publish
 * path stamps a copy, so a delivery writes it as it is), as one 'S' record
 * of the journal (every message, whatever its delivery mode).
 *
 * Memory does not grow with the log. Only the tail is held: a ring of the
 * newest messages, [hot, next), which tailing consumers are served from.
 * Older messages are only on disk, found through a sparse index: one
 * entry (offset, journal position, publish time, bytes before it) per
 * WR_STREAM_INDEX_EVERY bytes of the log, and one where a journal segment
 * or a stream segment begins. A consumer behind the tail reads the
 * journal from the index entry before its offset, sequentially, through a
 * cursor of its own (a buffer of large reads), and each message read is a
 * new block that lives as long as its delivery does. A stream holds
 * ("pins") the journal segments its records are in, so they stay until
 * retention lets go of them. Without a data directory everything stays
 * in the ring.
 *
 * Consumers each hold a cursor (struct wr_consumer.stream_next); an
 * acknowledgement only gives back prefetch credit. Delivery is per
 * consumer, in offset order, as long as its channel takes more.
 *
 * Retention works on segments as RabbitMQ's does: the log is cut into
 * segments of x-stream-max-segment-size-bytes (counted, not files: the
 * bytes are the journal's), and when a new segment starts, whole segments
 * are removed from the head while the stream is over x-max-length-bytes or
 * a segment's newest message is older than x-max-age; a 'T' record says
 * where the log now starts. The active segment always stays, so the last
 * offset is never lost and never reused.
 *
 * Key compaction (Warren's, x-stream-compaction key): in closed segments a
 * consumer sees only the newest message of each key (the routing key, or
 * the header x-stream-compaction-key-header names); a message with an
 * empty body and `x-tombstone: true` removes its key once it is older than
 * x-stream-tombstone-retention and its segment is closed. The map from
 * each key to its newest offset decides what is seen, so compaction costs
 * no work on the log and no record: the kept messages keep their offsets,
 * consumers skip the rest, and recovery rebuilds the map by reading the
 * log. (Disk space comes back with retention, not with compaction.)
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
    uint64_t bytes;   /* properties and bodies of its messages still seen */
    uint64_t last_ms; /* monotonic publish time of its newest message */
};

/* One entry of the sparse index: the message at `off` has its journal
 * record at `pos`. */
struct wr_stream_idx {
    uint64_t off;
    uint64_t pos;
    uint64_t bytes;  /* bytes appended to the stream before it */
    int64_t wall_ms; /* its publish time, wall clock */
};

/* Bytes of log between two index entries (at most; entries also start
 * journal and stream segments). */
#define WR_STREAM_INDEX_EVERY (64u << 10)
/* The tail held in memory, in messages and in bytes (whichever is less;
 * more while the journal has not synced it yet). */
#define WR_STREAM_HOT_MSGS 4096u
#define WR_STREAM_HOT_BYTES (4u << 20)
/* Bytes a stream's consumers read from the journal per loop turn, all
 * together: a replay goes on in the next turn, so publishers and the
 * other connections get theirs in between. Less while the stream, or
 * anything in the broker, is published to: replays then leave most of
 * each turn to the publishers, and go on at the loop's idle priority
 * (measured: tests/bench/stream_bench.py, "beside"). */
#define WR_STREAM_TURN_READ (2u << 20)
#define WR_STREAM_TURN_READ_BUSY (256u << 10)
/* A replay waits for an idle loop turn at most this long (µs). */
#define WR_STREAM_RESUME_LATE_US 1000

/* Replays while anything is published, broker-wide (one for all streams;
 * the broker's, vhost->replay_pace): after each WR_STREAM_PACE_QUANTUM_US
 * of reading (timed around each cursor read) they pause, so that they
 * take at most `share` percent of the core thread's time,
 * and leave the rest of the machine's cores to the publishers, the
 * journal and its preparer. No stream reads from the journal before
 * `gate_ns` (CLOCK_MONOTONIC) while anything is published. */
#define WR_STREAM_PACE_QUANTUM_US 200 /* reading between two pauses, at least */
#define WR_STREAM_PAUSE_MAX_US 20000  /* the longest pause */
struct wr_replay_pace {
    uint64_t gate_ns, spent_ns; /* spent_ns: read since the last pause */
    uint32_t share;             /* percent, 1..100; 100: replays never pause */
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
    struct wr_msg **ring; /* ring[offset & (cap - 1)] for hot <= offset < next */
    uint64_t cap;
    uint64_t first, next;
    uint64_t hot;       /* the oldest offset held in memory */
    uint64_t hot_bytes; /* ... and the bytes held there */
    uint64_t bytes;     /* the log's, as consumers see it: properties and bodies */
    uint64_t appended;  /* bytes ever appended */
    bool keep_all;      /* a message is not journaled (no data directory): all stay in memory */
    struct wr_stream_seg *segs;
    uint32_t nsegs, segs_cap;
    uint64_t segment_max;
    /* The sparse index, oldest first (entries before `first` go with
     * retention), and how many bytes since its last entry. */
    struct wr_stream_idx *idx;
    uint32_t nidx, idx_cap;
    uint64_t idx_since;
    /* Journal segments holding its records, oldest first (the store keeps
     * them while pinned). */
    uint32_t *pins;
    uint32_t npins, pins_cap;
    uint64_t chunk_first; /* "last" */
    uint64_t chunk_us;    /* the loop turn that chunk was appended in */
    struct wr_stream_name **names;
    uint32_t nnames, names_cap;
    /* Key compaction (x-stream-compaction key): the newest offset of each
     * key, messages superseded in the active segment (unseen once it
     * closes), tombstones in offset order, and how many messages
     * compaction took from view. */
    struct wr_hmap keys;
    uint64_t sup_n, sup_bytes;
    struct wr_stream_tomb {
        uint64_t off;
        uint64_t ms; /* monotonic publish time */
        char *key;
        uint32_t len;
    } * tombs;
    uint32_t tomb_head, ntombs, tombs_cap; /* a ring, power-of-two capacity */
    struct event *compact_ev;
    uint64_t compacted;
    /* Consumers see offsets below `committed` only: a message is visible
     * once the journal holds it durably (as RabbitMQ delivers only
     * committed chunks), so no consumer ever sees an offset a crash could
     * take back. Appended messages wait in `pend` (offset, journal
     * position) while the stream is on the broker's stream_wait list. */
    uint64_t committed;
    /* Reading the journal this loop turn (WR_STREAM_TURN_READ), and the
     * event that goes on with it later (WR_LOOP_PRIO_IDLE). */
    uint64_t turn, turn_read;
    uint64_t append_turn;                  /* the last turn something was appended in */
    struct event *resume_ev, *resume_late; /* idle priority; normal, late */
    bool yielded; /* a consumer was served from the journal (dispatch_list) */
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
 * 0: at once) hand it to the consumers that have room. rec_pos is where
 * its 'S' record starts in the journal (0: not journaled, it stays in
 * memory). 0 or WR_ENOMEM. */
int wr_stream_append(struct wr_queue *q, struct wr_msg *m, uint64_t journal_pos, uint64_t rec_pos);
/* The journal is durable up to `pos`: streams on `wait` (the broker's
 * stream_wait) make what it covers visible and deliver it. */
void wr_stream_synced(struct wr_list *wait, uint64_t pos);
/* Recovery, in journal order: a message's record (its body is not kept:
 * consumers read it from the journal), a 'T' record (the log starts at
 * `first`), and the end of the journal. */
struct wr_srec;
int wr_stream_recover(struct wr_queue *q, const struct wr_srec *r);
void wr_stream_recover_truncate(struct wr_queue *q, uint64_t first);
void wr_stream_recovered(struct wr_queue *q);

/* A consumer leaves the stream: its journal cursor goes. */
void wr_stream_consumer_gone(struct wr_consumer *c);

/* Deliver to every consumer that has room, or to one. */
void wr_stream_dispatch(struct wr_queue *q);
void wr_stream_dispatch_one(struct wr_queue *q, struct wr_consumer *c);
/* A consumer has room again (an ack): it takes what memory holds at once;
 * one replaying from the journal waits for the stream's next round of
 * reading, where the consumers take turns. */
void wr_stream_consumer_ready(struct wr_queue *q, struct wr_consumer *c);

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
/* Bytes from offset `from` to the tail (a named consumer's lag): exact in
 * the tail held in memory, to within an index step before it. */
uint64_t wr_stream_bytes_after(const struct wr_stream *st, uint64_t from);

/* The queue is deleted: every message leaves, the journal segments go
 * free. */
void wr_stream_clear(struct wr_queue *q);

#endif
