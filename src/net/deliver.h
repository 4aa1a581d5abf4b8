/*
 * deliver.h - writing a message to a client: a method that carries content
 * (basic.deliver, basic.get-ok, basic.return), the content header with the
 * property bytes exactly as the publisher sent them, and the body cut into
 * frames of the connection's frame_max.
 */
#ifndef WR_NET_DELIVER_H
#define WR_NET_DELIVER_H

#include <stdint.h>

struct wr_conn;
struct wr_method;
struct wr_msg;

void wr_deliver_content(struct wr_conn *c, uint16_t channel, const struct wr_method *m,
                        struct wr_msg *msg);

#endif
