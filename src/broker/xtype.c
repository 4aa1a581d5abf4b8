/*
 * xtype.c - the table of exchange types, looked up by the name a client
 * gives in exchange.declare: the built-in ones, then those plugins
 * registered (plugin/xtype.c adapts a plugin's type to struct wr_xtype).
 *
 * The four AMQP 0-9-1 types live in x_direct.c, x_fanout.c, x_topic.c and
 * x_headers.c; exchange.c calls them through struct wr_xtype. Names are
 * compared byte for byte, as RabbitMQ does ("Direct" is unknown and makes
 * exchange.declare fail with 503 COMMAND_INVALID there).
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "core/err.h"

/* Sorted by name: the order the management API lists them in. */
static const struct wr_xtype *const xtype_builtin[] = {
    &wr_xtype_direct,
    &wr_xtype_fanout,
    &wr_xtype_headers,
    &wr_xtype_topic,
};
#define NBUILTIN (sizeof(xtype_builtin) / sizeof(xtype_builtin[0]))

/* Registered by plugins, in the order they came. */
static const struct wr_xtype **xtype_more;
static size_t nmore;

const struct wr_xtype *wr_xtype_at(size_t i)
{
    if (i < NBUILTIN)
        return xtype_builtin[i];
    return i - NBUILTIN < nmore ? xtype_more[i - NBUILTIN] : NULL;
}

const struct wr_xtype *wr_xtype_find(struct wr_str name)
{
    const struct wr_xtype *t;
    for (size_t i = 0; (t = wr_xtype_at(i)) != NULL; i++)
        if (wr_str_eqc(name, t->name))
            return t;
    return NULL;
}

int wr_xtype_register(const struct wr_xtype *t)
{
    const struct wr_xtype **a;
    if (wr_xtype_find(wr_str_c(t->name)))
        return WR_EEXISTS;
    if (!(a = realloc(xtype_more, (nmore + 1) * sizeof(*a))))
        return WR_ENOMEM;
    xtype_more = a;
    xtype_more[nmore++] = t;
    return 0;
}

void wr_xtype_unregister(const struct wr_xtype *t)
{
    for (size_t i = 0; i < nmore; i++) {
        if (xtype_more[i] != t)
            continue;
        memmove(&xtype_more[i], &xtype_more[i + 1], (nmore - i - 1) * sizeof(*xtype_more));
        if (--nmore == 0) {
            free(xtype_more);
            xtype_more = NULL;
        }
        return;
    }
}
