/*
 * move.h - moving ready messages out of a queue into another of its vhost,
 * for operators (the management API's queue actions, warrenctl): "move"
 * to a named queue, "replay" of a dead-letter queue back to the queue each
 * message died in, and a look at the head ("peek") that changes nothing.
 *
 * A moved message is a new message with the same properties, headers,
 * body, persistence and publish time, published through the vhost's
 * default exchange (the one publish path: journaled once for a durable
 * destination); the source entry is settled after it, in the same loop
 * turn, so the journal gets both records in one write and a kill -9 leaves
 * the message in one queue or the other (in both only if the process dies
 * between those two records of a turn: never lost).
 */
#ifndef WR_BROKER_MOVE_H
#define WR_BROKER_MOVE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/queue.h"
#include "core/errbuf.h"

struct wr_vhost;

struct wr_move_result {
    uint32_t moved;   /* published to their destination, gone from the source */
    uint32_t skipped; /* replay: left in the source (no target, target missing) */
    bool stopped;     /* a destination refused one; it stays at the head */
    char why[160];    /* when stopped */
};

/* Move up to max ready messages from the head of src to dst (same vhost,
 * not src). */
void wr_queue_move(struct wr_queue *src, struct wr_queue *dst, uint32_t max,
                   struct wr_move_result *r);

/* Where replay sends m: the queue of its newest x-death entry, else its
 * x-first-death-queue header. False when it names none. */
bool wr_msg_death_queue(const struct wr_msg *m, struct wr_str *queue);

/* Replay up to max messages from the head of src (a dead-letter queue) to
 * the queues they died in. report, when given, is told of each message
 * looked at: its target (empty when none) and, when it is skipped, why.
 * With dry_run nothing moves. */
typedef void (*wr_replay_report_fn)(void *ctx, const struct wr_msg *m, struct wr_str target,
                                    const char *skipped_why);
void wr_queue_replay(struct wr_queue *src, uint32_t max, bool dry_run, wr_replay_report_fn report,
                     void *ctx, struct wr_move_result *r);

#endif
