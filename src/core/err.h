/*
 * err.h - the broker's small vocabulary of return codes.
 *
 * Functions return 0 on success or a negative WR_E* value. Where an error
 * corresponds to an AMQP reply code the value is the negated reply code, so
 * a decoder's failure can be turned into a connection.close with `-rc`.
 * Everything else (out of memory, I/O) lives below -1000 and maps to 541
 * INTERNAL_ERROR when it has to reach a peer.
 */
#ifndef WR_CORE_ERR_H
#define WR_CORE_ERR_H

#define WR_OK 0

/* AMQP reply codes, negated (see spec/amqp-rabbitmq-0.9.1.json "constants"). */
#define WR_ECONTENT_TOO_LARGE (-311)
#define WR_ENO_ROUTE (-312)
#define WR_ENO_CONSUMERS (-313)
#define WR_ECONNECTION_FORCED (-320)
#define WR_EINVALID_PATH (-402)
#define WR_EACCESS_REFUSED (-403)
#define WR_ENOT_FOUND (-404)
#define WR_ERESOURCE_LOCKED (-405)
#define WR_EPRECONDITION_FAILED (-406)
#define WR_EFRAME (-501)
#define WR_ESYNTAX (-502)
#define WR_ECOMMAND_INVALID (-503)
#define WR_ECHANNEL (-504)
#define WR_EUNEXPECTED_FRAME (-505)
#define WR_ERESOURCE (-506)
#define WR_ENOT_ALLOWED (-530)
#define WR_ENOT_IMPLEMENTED (-540)
#define WR_EINTERNAL (-541)

/* Not reply codes. */
#define WR_EAGAIN (-1001) /* need more input; not an error yet */
#define WR_ENOMEM (-1002)
#define WR_EIO (-1003)
#define WR_ENOSPC (-1004) /* an output buffer is too small */
/* A method's short string is not UTF-8 (see core/utf8.h): a frame error
 * (501) with RabbitMQ's own text, kept apart from WR_EFRAME's "cannot
 * decode" so the connection can say which. */
#define WR_EUTF8 (-1005)
#define WR_EEXISTS (-1006) /* a name already taken (a registry) */

/* Reply code to send for an error value (541 for the non-AMQP ones). */
static inline int wr_err_reply_code(int err)
{
    if (err == WR_EUTF8)
        return 501;
    return (err <= -200 && err > -1000) ? -err : 541;
}

#endif
