/*
 * qargs.h - the x- arguments of queue.declare: which RabbitMQ accepts, with
 * which types and ranges, and when two declarations are equivalent.
 */
#ifndef WR_BROKER_QARGS_H
#define WR_BROKER_QARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errbuf.h"
#include "wire/buf.h"

/* 406 PRECONDITION_FAILED for a known argument with a bad type or value. */
int wr_qargs_validate(struct wr_str args, struct wr_str qname, const char *vhost,
                      struct wr_errbuf *err);

/* 406 when a redeclaration differs from the existing queue in an argument
 * RabbitMQ compares (the known x- arguments; others are ignored). */
int wr_qargs_equivalent(struct wr_str cur, struct wr_str req, const char *qname, const char *vhost,
                        struct wr_errbuf *err);

struct wr_dedup;

enum wr_overflow { WR_OVERFLOW_DROP_HEAD, WR_OVERFLOW_REJECT, WR_OVERFLOW_REJECT_DLX };

/* x-queue-type. A quorum queue is, on one node, a classic queue that is
 * always durable (never exclusive, auto-delete or server-named), journals
 * every message whatever its delivery mode, counts deliveries
 * (x-delivery-count) and takes quorum-only arguments. */
enum wr_qtype { WR_QTYPE_CLASSIC, WR_QTYPE_QUORUM, WR_QTYPE_STREAM };

/* Quorum queues and streams journal every message whatever its delivery
 * mode (they are always durable). */
static inline bool wr_qtype_journals_all(enum wr_qtype t)
{
    return t != WR_QTYPE_CLASSIC;
}

/* x-max-age as RabbitMQ reads it: a positive integer and one unit of
 * Y M D h m s (case-sensitive; a year is 365 days, a month 30). */
bool wr_qargs_parse_age(struct wr_str v, int64_t *ms);

/* The smallest x-stream-max-segment-size-bytes Warren takes, and the
 * default (RabbitMQ's 500 MB). */
#define WR_STREAM_MIN_SEGMENT 4096
#define WR_STREAM_DEFAULT_SEGMENT 500000000

/* The type the arguments ask for (none is classic). */
enum wr_qtype wr_qargs_type(struct wr_str args);
/* "classic", "quorum" or "stream", as /api/queues shows it. */
const char *wr_qtype_name(enum wr_qtype t);
/* "rabbit_classic_queue", ...: the name RabbitMQ's errors give the type. */
const char *wr_qtype_module(enum wr_qtype t);

/* The arguments a queue acts on, parsed once at declare. -1 means unset. */
struct wr_qsettings {
    int64_t message_ttl;
    int64_t expires;
    int64_t max_length;
    int64_t max_length_bytes;
    int64_t delivery_limit;
    int64_t max_age_ms;   /* stream: x-max-age; -1: none */
    int64_t segment_max;  /* stream: x-stream-max-segment-size-bytes; -1: default */
    bool compact;         /* stream: x-stream-compaction key */
    char *compact_header; /* owned: x-stream-compaction-key-header; NULL: the routing key */
    uint32_t compact_header_len;
    int64_t tombstone_ms;     /* x-stream-tombstone-retention (default a day) */
    int64_t consumer_timeout; /* x-consumer-timeout, ms; 0: none; -1: consumer_timeout applies */
    enum wr_overflow overflow;
    enum wr_qtype type;
    /* x-dead-letter-strategy at-least-once, in effect (it needs a quorum
     * queue with a dead-letter exchange and x-overflow reject-publish, as
     * in RabbitMQ; otherwise dead-lettering is at-most-once) */
    bool dl_at_least_once;
    uint8_t max_priority; /* 0: not a priority queue */
    bool single_active;
    char *dlx;  /* owned; NULL when no dead-letter exchange ("" is the default one) */
    char *dlrk; /* owned; NULL: keep the message's routing key */
    uint32_t dlx_len, dlrk_len;   /* the names may hold NUL bytes */
    bool dedup;                   /* x-message-deduplication: true */
    struct wr_dedup *dedup_cache; /* owned; made on first use (dedup.h) */
};

/* Fill from validated arguments. Returns 0 or WR_ENOMEM. */
int wr_qsettings_parse(struct wr_str args, struct wr_qsettings *s);
void wr_qsettings_free(struct wr_qsettings *s);

#endif
