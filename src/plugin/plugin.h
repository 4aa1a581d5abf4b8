/*
 * plugin.h - loading plugins and what the broker offers them
 * (include/warren/plugin.h is the plugins' side of it).
 *
 * plugin.c loads each enabled plugin (dlopen of DIR/NAME.so), checks its
 * descriptor and calls its init with the API table; api.c implements that
 * table over the broker's own functions; xtype.c turns a plugin's exchange
 * type into a struct wr_xtype the broker routes through like a built-in
 * one. The broker core knows nothing of plugins: it sees exchange types.
 */
#ifndef WR_PLUGIN_PLUGIN_H
#define WR_PLUGIN_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "warren/plugin.h"

struct wr_auth_backend;
struct wr_broker;
struct wr_exchange;
struct wr_publish_result;

/* One loaded plugin. */
struct warren_host {
    struct wr_plugins *set;
    const struct warren_plugin *desc;
    void *dl;   /* dlopen handle */
    void *data; /* the plugin's own pointer */
    char *path;
    struct wr_xtype_adapter *types; /* exchange types it registered */
    struct warren_timer *timers;    /* its timers, freed with it */
    char *config_value;             /* the last config_get answer */
    struct wr_publish_result *pub;  /* exchange_publish's, reused */
    struct wr_auth_adapter *auths;  /* auth backends it registered */
    void (*reload_fn)(void *arg);  /* on_reload's hook (SIGHUP) */
    void *reload_arg;
};

/* The loaded plugins of one broker. */
struct wr_plugins {
    struct wr_broker *b;
    struct warren_host **v;
    size_t n;
    const char *settings; /* "NAME.KEY=VALUE\n"... (warren.conf's plugin.*) */
};

/* Load `names` (comma-separated) from `dir`. A plugin that cannot be
 * loaded is logged (one line, saying why) and skipped. NULL only when out
 * of memory. `settings` stays the caller's and must outlive the set. */
struct wr_plugins *wr_plugins_load(struct wr_broker *b, const char *dir, const char *names,
                                   const char *settings);
/* fini, unregister, unload; after the broker's exchanges are gone. */
void wr_plugins_free(struct wr_plugins *s);
/* The broker reloads (SIGHUP): every plugin's on_reload hook. */
void wr_plugins_reload(struct wr_plugins *s);

/* The backend a plugin registered under `name` (auth_backends.N), or
 * NULL. */
const struct wr_auth_backend *wr_plugins_auth_backend(const struct wr_plugins *s, const char *name);

/* The API table given to plugins (api.c). */
const struct warren_api *wr_plugin_api(void);

/* Register a plugin's exchange type (xtype.c). 0 or -1. */
int wr_plugin_xtype_register(warren_host *h, const struct warren_exchange_type *t);
void wr_plugin_xtypes_free(warren_host *h);
/* The exchange types a plugin registered, for listings. */
const struct wr_xtype_adapter *wr_plugin_xtype_next(const struct wr_xtype_adapter *t);
const char *wr_plugin_xtype_name(const struct wr_xtype_adapter *t);

/* The plugin whose type x has. */
warren_host *wr_plugin_xtype_host(const struct wr_exchange *x);
void wr_plugin_timers_free(warren_host *h);

#endif
