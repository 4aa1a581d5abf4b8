/*
 * errbuf.h - an error code with the text a peer will read.
 *
 * Broker operations that can be refused (declare, bind, delete...) return a
 * negative reply code and fill a struct wr_errbuf with RabbitMQ-style text
 * ("NOT_FOUND - no queue 'q' in vhost '/'"); the channel turns it into a
 * channel.close or connection.close without knowing why it failed.
 */
#ifndef WR_CORE_ERRBUF_H
#define WR_CORE_ERRBUF_H

#include "core/err.h"

struct wr_errbuf {
    int code; /* negative WR_E* */
    char text[256];
};

/* Fill e (text prefixed with the reply code's name) and return code. */
int wr_fail(struct wr_errbuf *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
