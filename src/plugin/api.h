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
/* auth.c */
int wr_plugin_auth_register(warren_host *h, const struct warren_auth_backend *t);
void wr_plugin_auths_free(warren_host *h);
void wr_plugin_auth_changed(warren_host *h);
int wr_plugin_on_reload(warren_host *h, void (*cb)(void *arg), void *arg);
warren_pattern *wr_plugin_pattern_new(const char *re, char *why, size_t cap);
bool wr_plugin_pattern_match(const warren_pattern *p, struct warren_bytes s);
void wr_plugin_pattern_free(warren_pattern *p);
bool wr_plugin_password_matches(struct warren_bytes hash, struct warren_bytes password);

void wr_plugin_log(warren_host *h, enum warren_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
