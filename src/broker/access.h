/*
 * access.h - RabbitMQ's access control, one check per kind of question.
 *
 * Who asks is a struct wr_principal: a user and its permission entry on
 * the vhost (auth/auth.h). The channel keeps one per channel and refreshes
 * it from its connection (which follows the user table's generation); the
 * broker's own publishes (dead-lettering) have none and are not checked.
 *
 * Which check applies to which AMQP operation, and in which order, is
 * RabbitMQ's access-control table; net/chan.c calls these in that order
 * (see there), broker/publish.c for basic.publish. A refusal is 403
 * ACCESS_REFUSED with RabbitMQ's text, "access to queue 'q' in vhost '/'
 * refused for user 'u'".
 */
#ifndef WR_BROKER_ACCESS_H
#define WR_BROKER_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "core/errbuf.h"
#include "wire/buf.h"

struct wr_exchange;
struct wr_msg;

struct wr_principal {
    struct wr_user *user;         /* NULL: the broker itself, never refused */
    const struct wr_vperm *vperm; /* NULL with a user: no access to the vhost */
    const char *vhost;
    uint64_t gen; /* the user table's generation the cache is for */
    /* The last exchange this principal may write to: a publisher sends to
     * one exchange, and the check is a comparison instead of a match. */
    bool write_ok;
    uint8_t write_len;
    char write_x[255];
    /* The last exchange and routing key a topic permission allowed, for
     * the same reason (by name: topic permissions are by name). */
    bool topic_ok;
    uint8_t topic_xlen, topic_len;
    char topic_x[255], topic_key[255];
};

/* Update after the user table changed (drops the cache when gen moved). */
void wr_principal_set(struct wr_principal *who, struct wr_user *user,
                      const struct wr_vperm *vperm, const char *vhost, uint64_t gen);

/* op on the resource `kind` ("queue" or "exchange") named `name`. The
 * default exchange "" is checked as "amq.default". Returns 0 or
 * WR_EACCESS_REFUSED with err filled. */
int wr_access_check(struct wr_principal *who, enum wr_perm_op op, const char *kind,
                    struct wr_str name, struct wr_errbuf *err);

/* Topic permission on a topic exchange's routing key (op WRITE for a
 * publish, READ for a binding); other exchange types always pass. */
int wr_access_topic(struct wr_principal *who, const struct wr_exchange *x,
                    enum wr_perm_op op, struct wr_str routing_key, struct wr_errbuf *err);

/* A user_id property naming someone else is 406, unless the user has the
 * impersonator tag. */
int wr_access_user_id(const struct wr_principal *who, const struct wr_msg *m,
                      struct wr_errbuf *err);

#endif
