/*
 * dlx.h - dead-lettering: a message that leaves a queue rejected, expired,
 * dropped for length or past its delivery limit is republished to the
 * queue's x-dead-letter-exchange with the x-death header RabbitMQ writes.
 */
#ifndef WR_BROKER_DLX_H
#define WR_BROKER_DLX_H

#include "broker/queue.h"

/* Dead-letter m from q (q->s.dlx is set). Takes the caller's reference.
 * Returns true when a queue took the dead letter (its journal record, if
 * it has one, is written), false when it went nowhere (no exchange, no
 * route, a target refused it, the journal failed): at-least-once
 * dead-lettering then keeps the original and tries again. */
bool wr_dlx_publish(struct wr_queue *q, struct wr_msg *m, enum wr_dl_reason why);

const char *wr_dl_reason_name(enum wr_dl_reason why);

#endif
