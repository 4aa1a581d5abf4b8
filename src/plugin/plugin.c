/*
 * plugin.c - loading the enabled plugins (see plugin.h).
 *
 * Every refusal is one log line naming the plugin and why, and the broker
 * goes on without it: a file that cannot be loaded, no `warren_plugin`
 * symbol, another major version of the interface or a later minor one, a
 * descriptor whose name is not the file's, an init that fails. A plugin
 * that failed its init is unloaded only after its registrations are
 * undone.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/publish.h"
#include "core/log.h"
#include "plugin/api.h"
#include "plugin/plugin.h"

static void host_free(warren_host *h)
{
    wr_plugin_timers_free(h);
    wr_plugin_xtypes_free(h);
    wr_plugin_auths_free(h);
    if (h->pub) {
        wr_publish_result_free(h->pub);
        free(h->pub);
    }
    free(h->config_value);
    if (h->dl)
        dlclose(h->dl);
    free(h->path);
    free(h);
}

/* Why the descriptor is refused, or NULL. */
static const char *refuse_desc(const struct warren_plugin *d, const char *name, char *buf,
                               size_t cap)
{
    if (d->abi_major != WARREN_PLUGIN_ABI_MAJOR) {
        snprintf(buf, cap, "built for plugin interface %u.%u, this broker has %u.%u", d->abi_major,
                 d->abi_minor, WARREN_PLUGIN_ABI_MAJOR, WARREN_PLUGIN_ABI_MINOR);
        return buf;
    }
    if (d->abi_minor > WARREN_PLUGIN_ABI_MINOR) {
        snprintf(buf, cap, "built for plugin interface %u.%u, newer than this broker's %u.%u",
                 d->abi_major, d->abi_minor, WARREN_PLUGIN_ABI_MAJOR, WARREN_PLUGIN_ABI_MINOR);
        return buf;
    }
    if (!d->name || strcmp(d->name, name) != 0) {
        snprintf(buf, cap, "its descriptor names it '%s'", d->name ? d->name : "(none)");
        return buf;
    }
    if (!d->init)
        return "its descriptor has no init function";
    return NULL;
}

static warren_host *load_one(struct wr_plugins *s, const char *dir, const char *name)
{
    warren_host *h = calloc(1, sizeof(*h));
    size_t n = strlen(dir) + strlen(name) + 5;
    const struct warren_plugin *d;
    const char *why;
    char buf[256];

    if (!h || !(h->path = malloc(n))) {
        free(h);
        wr_log(WR_LOG_ERROR, "plugin '%s' not loaded: out of memory", name);
        return NULL;
    }
    h->set = s;
    snprintf(h->path, n, "%s/%s.so", dir, name);
    h->dl = dlopen(h->path, RTLD_NOW | RTLD_LOCAL);
    if (!h->dl) {
        wr_log(WR_LOG_ERROR, "plugin '%s' not loaded: %s", name, dlerror());
        goto fail;
    }
    d = dlsym(h->dl, "warren_plugin");
    if (!d) {
        wr_log(WR_LOG_ERROR, "plugin '%s' not loaded: %s exports no 'warren_plugin' descriptor",
               name, h->path);
        goto fail;
    }
    if ((why = refuse_desc(d, name, buf, sizeof buf)) != NULL) {
        wr_log(WR_LOG_ERROR, "plugin '%s' not loaded: %s", name, why);
        goto fail;
    }
    h->desc = d;
    if (d->init(h, wr_plugin_api()) != 0) {
        wr_log(WR_LOG_ERROR, "plugin '%s' not loaded: its init failed (see above)", name);
        goto fail;
    }
    wr_log(WR_LOG_INFO, "plugin '%s' %s loaded from %s", name, d->version ? d->version : "",
           h->path);
    return h;
fail:
    host_free(h);
    return NULL;
}

struct wr_plugins *wr_plugins_load(struct wr_broker *b, const char *dir, const char *names,
                                   const char *settings)
{
    struct wr_plugins *s = calloc(1, sizeof(*s));
    const char *p = names;

    if (!s)
        return NULL;
    s->b = b;
    s->settings = settings ? settings : "";
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[128];
        warren_host *h, **v;
        if (len == 0 || len >= sizeof name) {
            p = e ? e + 1 : NULL;
            continue;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        p = e ? e + 1 : NULL;
        for (size_t i = 0; i < s->n; i++)
            if (strcmp(s->v[i]->desc->name, name) == 0)
                goto next; /* enabled twice: loaded once */
        if (!(h = load_one(s, dir, name)))
            continue;
        if (!(v = realloc(s->v, (s->n + 1) * sizeof(*v)))) {
            if (h->desc->fini)
                h->desc->fini(h);
            host_free(h);
            continue;
        }
        s->v = v;
        s->v[s->n++] = h;
    next:;
    }
    return s;
}

void wr_plugins_free(struct wr_plugins *s)
{
    if (!s)
        return;
    for (size_t i = s->n; i-- > 0;) {
        if (s->v[i]->desc->fini)
            s->v[i]->desc->fini(s->v[i]);
        host_free(s->v[i]);
    }
    free(s->v);
    free(s);
}
