/*
 * qargs.h - the x- arguments of queue.declare: which RabbitMQ accepts, with
 * which types and ranges, and when two declarations are equivalent.
 */
#ifndef WR_BROKER_QARGS_H
#define WR_BROKER_QARGS_H

#include "core/errbuf.h"
#include "wire/buf.h"

/* 406 PRECONDITION_FAILED for a known argument with a bad type or value. */
int wr_qargs_validate(struct wr_str args, struct wr_str qname, const char *vhost,
                      struct wr_errbuf *err);

/* 406 when a redeclaration differs from the existing queue in an argument
 * RabbitMQ compares (the known x- arguments; others are ignored). */
int wr_qargs_equivalent(struct wr_str cur, struct wr_str req, const char *qname,
                        const char *vhost, struct wr_errbuf *err);

#endif
