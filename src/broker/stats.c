/*
 * stats.c - names of the message counters, and the churn counters; see
 * stats.h.
 */
#include "config.h"

#include "broker/stats.h"

const char *wr_stat_name(enum wr_stat k)
{
    static const char *const names[WR_ST_N] = {
        [WR_ST_PUBLISH] = "publish",
        [WR_ST_CONFIRM] = "confirm",
        [WR_ST_RETURN_UNROUTABLE] = "return_unroutable",
        [WR_ST_DROP_UNROUTABLE] = "drop_unroutable",
        [WR_ST_DELIVER] = "deliver",
        [WR_ST_DELIVER_NO_ACK] = "deliver_no_ack",
        [WR_ST_GET] = "get",
        [WR_ST_GET_NO_ACK] = "get_no_ack",
        [WR_ST_GET_EMPTY] = "get_empty",
        [WR_ST_REDELIVER] = "redeliver",
        [WR_ST_ACK] = "ack",
        [WR_ST_DL_REJECTED] = "dead_lettered_rejected",
        [WR_ST_DL_EXPIRED] = "dead_lettered_expired",
        [WR_ST_DL_MAXLEN] = "dead_lettered_maxlen",
        [WR_ST_DL_DELIVERY_LIMIT] = "dead_lettered_delivery_limit",
        [WR_ST_PUBLISH_CONFIRM] = "publish_confirm",
    };
    return (unsigned)k < WR_ST_N ? names[k] : "?";
}
