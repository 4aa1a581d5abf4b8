/*
 * xtype.c - the table of built-in exchange types, looked up by the name a
 * client gives in exchange.declare.
 *
 * The four AMQP 0-9-1 types live in x_direct.c, x_fanout.c, x_topic.c and
 * x_headers.c; exchange.c calls them through struct wr_xtype. Names are
 * compared byte for byte, as RabbitMQ does ("Direct" is unknown and makes
 * exchange.declare fail with 503 COMMAND_INVALID there).
 */
#include "config.h"

#include <stddef.h>

#include "broker/exchange.h"

/* Sorted by name: the order the management API lists them in. */
static const struct wr_xtype *const xtype_builtin[] = {
    &wr_xtype_direct,
    &wr_xtype_fanout,
    &wr_xtype_headers,
    &wr_xtype_topic,
};

const struct wr_xtype *wr_xtype_at(size_t i)
{
    return i < sizeof(xtype_builtin) / sizeof(xtype_builtin[0]) ? xtype_builtin[i] : NULL;
}

const struct wr_xtype *wr_xtype_find(struct wr_str name)
{
    for (size_t i = 0; i < sizeof(xtype_builtin) / sizeof(xtype_builtin[0]); i++)
        if (wr_str_eqc(name, xtype_builtin[i]->name))
            return xtype_builtin[i];
    return NULL;
}
