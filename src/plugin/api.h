/*
 * api.h - what plugin.c, api.c and xtype.c share inside src/plugin.
 */
#ifndef WR_PLUGIN_API_H
#define WR_PLUGIN_API_H

#include <stdbool.h>

#include "broker/exchange.h"
#include "warren/plugin.h"

/* The type_state of an exchange of a plugin's type. */
struct px {
    void *state;                  /* the plugin's (exchange_set_state) */
    bool declared;                /* its declare hook accepted it: destroy is owed */
    const struct wr_xtype *inner; /* exchange_use_inner's type, or NULL */
    void *inner_state;
};

/* One routing call into a plugin's type. */
struct warren_route {
    struct wr_exchange *x;
    const struct wr_route_msg *m;
    wr_route_emit_fn emit;
    void *ctx;
};

void wr_plugin_route_inner(struct warren_route *r);
int wr_plugin_use_inner(struct wr_exchange *x, struct wr_str type);
void wr_plugin_log(warren_host *h, enum warren_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
