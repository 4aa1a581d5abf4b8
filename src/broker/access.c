/*
 * access.c - access checks; see access.h.
 *
 * Neighbours: auth/auth.c holds the users and compiled patterns; this file
 * only asks them and words the refusals as RabbitMQ does.
 */
#include "config.h"

#include <string.h>

#include "broker/access.h"
#include "broker/exchange.h"
#include "broker/msg.h"

void wr_principal_set(struct wr_principal *who, struct wr_user *user,
                      const struct wr_vperm *vperm, const char *vhost, uint64_t gen)
{
    if (who->gen != gen || who->user != user) {
        who->write_ok = false;
        who->topic_ok = false;
    }
    who->user = user;
    who->vperm = vperm;
    who->vhost = vhost;
    who->gen = gen;
}

static int refused(const struct wr_principal *who, const char *kind, struct wr_str name,
                   struct wr_errbuf *err)
{
    struct wr_str u = wr_user_name(who->user);
    return wr_fail(err, WR_EACCESS_REFUSED, "access to %s '%.*s' in vhost '%s' refused for user '%.*s'",
                   kind, (int)name.len, name.ptr, who->vhost, (int)u.len, u.ptr);
}

int wr_access_check(struct wr_principal *who, enum wr_perm_op op, const char *kind,
                    struct wr_str name, struct wr_errbuf *err)
{
    struct wr_str subject = name;
    bool cacheable = op == WR_PERM_WRITE && kind[0] == 'e';

    if (!who || !who->user)
        return 0;
    if (cacheable && who->write_ok && who->write_len == name.len &&
        memcmp(who->write_x, name.ptr, name.len) == 0)
        return 0;
    if (kind[0] == 'e' && name.len == 0)
        subject = WR_STR("amq.default");
    if (!who->vperm || !wr_vperm_allows(who->vperm, op, kind, subject))
        return refused(who, kind, subject, err);
    if (cacheable && name.len <= sizeof(who->write_x)) {
        memcpy(who->write_x, name.ptr, name.len);
        who->write_len = (uint8_t)name.len;
        who->write_ok = true;
    }
    return 0;
}

int wr_access_topic(struct wr_principal *who, const struct wr_exchange *x,
                    enum wr_perm_op op, struct wr_str routing_key, struct wr_errbuf *err)
{
    struct wr_str xn, u;
    bool cacheable = op == WR_PERM_WRITE && routing_key.len <= sizeof(who->topic_key);
    if (!who || !who->user || x->type != &wr_xtype_topic)
        return 0;
    xn = wr_exchange_name(x);
    cacheable = cacheable && xn.len <= sizeof(who->topic_x);
    if (cacheable && who->topic_ok && who->topic_len == routing_key.len &&
        who->topic_xlen == xn.len && memcmp(who->topic_key, routing_key.ptr, routing_key.len) == 0 &&
        memcmp(who->topic_x, xn.ptr, xn.len) == 0)
        return 0;
    if (wr_user_topic_allows(who->user, wr_str_c(who->vhost), xn, op, routing_key)) {
        if (cacheable) {
            who->topic_ok = true;
            who->topic_xlen = (uint8_t)xn.len;
            memcpy(who->topic_x, xn.ptr, xn.len);
            who->topic_len = (uint8_t)routing_key.len;
            memcpy(who->topic_key, routing_key.ptr, routing_key.len);
        }
        return 0;
    }
    u = wr_user_name(who->user);
    return wr_fail(err, WR_EACCESS_REFUSED,
                   "access to topic '%.*s' in exchange '%.*s' in vhost '%s' refused for user "
                   "'%.*s'",
                   (int)routing_key.len, routing_key.ptr, (int)xn.len, xn.ptr, who->vhost,
                   (int)u.len, u.ptr);
}

int wr_access_user_id(const struct wr_principal *who, const struct wr_msg *m,
                      struct wr_errbuf *err)
{
    struct wr_str id, u;
    if (!who || !who->user || !wr_msg_user_id(m, &id))
        return 0;
    u = wr_user_name(who->user);
    if (wr_str_eq(id, u) || wr_user_has_tag(who->user, "impersonator"))
        return 0;
    return wr_fail(err, WR_EPRECONDITION_FAILED,
                   "user_id property set to '%.*s' but authenticated user was '%.*s'",
                   (int)id.len, id.ptr, (int)u.len, u.ptr);
}
