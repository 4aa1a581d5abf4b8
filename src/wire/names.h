/*
 * names.h - what RabbitMQ does to queue and exchange names before it looks
 * at them.
 *
 * RabbitMQ 3.10 removes every CR and LF byte from the queue and exchange
 * names of queue.declare, queue.delete, queue.bind, queue.unbind,
 * exchange.declare, exchange.delete, exchange.bind and exchange.unbind:
 * "a\r\nb" declares "ab", and "\r\n" alone a server-named queue. It does
 * not in queue.purge, basic.consume, basic.get or basic.publish, and never
 * in routing keys. Warren does the same to a decoded method before the
 * channel sees it.
 */
#ifndef WR_WIRE_NAMES_H
#define WR_WIRE_NAMES_H

#include "wire/methods.gen.h"

/* Where stripped copies live: a method has at most two names. */
struct wr_names_buf {
    char b[2][255];
};

/* Strip CR and LF from the names of m, as RabbitMQ does (see above). A name
 * without them is left pointing where it did; one with them is copied into
 * `buf`, which must live as long as m is used. Costs a switch for every
 * other method. */
void wr_method_strip_crlf(struct wr_method *m, struct wr_names_buf *buf);

#endif
