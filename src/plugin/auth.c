/*
 * auth.c - a plugin's authentication backend as a struct wr_auth_backend
 * (auth/auth.h), the reload hook, and the permission patterns and password
 * check plugins may use.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/passwd.h"
#include "auth/perm.h"
#include "broker/broker.h"
#include "core/errbuf.h"
#include "plugin/api.h"
#include "plugin/plugin.h"

struct wr_auth_adapter {
    struct wr_auth_backend base;
    const struct warren_auth_backend *t;
    warren_host *h;
    char *name;
    struct wr_auth_adapter *next; /* the host's list */
};

static struct warren_bytes wb(struct wr_str s)
{
    return (struct warren_bytes){s.ptr, s.len};
}

static int a_login(void *ctx, struct wr_str user, struct wr_str pass, char *tags, size_t cap)
{
    struct wr_auth_adapter *a = ctx;
    int r = a->t->login ? a->t->login(a->h, wb(user), wb(pass), tags, cap) : WARREN_AUTH_UNKNOWN;
    return r == WARREN_AUTH_ALLOW ? 1 : r == WARREN_AUTH_DENY ? 0 : -1;
}

static bool a_vhost(void *ctx, struct wr_str user, struct wr_str vhost)
{
    struct wr_auth_adapter *a = ctx;
    return a->t->vhost_access && a->t->vhost_access(a->h, wb(user), wb(vhost));
}

static bool a_resource(void *ctx, struct wr_str user, struct wr_str vhost, const char *kind,
                       struct wr_str name, enum wr_perm_op op)
{
    struct wr_auth_adapter *a = ctx;
    return a->t->resource_access &&
           a->t->resource_access(a->h, wb(user), wb(vhost), kind, wb(name), (enum warren_perm)op);
}

static bool a_topic(void *ctx, struct wr_str user, struct wr_str vhost, struct wr_str exchange,
                    struct wr_str key, enum wr_perm_op op)
{
    struct wr_auth_adapter *a = ctx;
    /* no topic hook: topic permissions are not this backend's concern */
    return !a->t->topic_access || a->t->topic_access(a->h, wb(user), wb(vhost), wb(exchange),
                                                     wb(key), (enum warren_perm)op);
}

int wr_plugin_auth_register(warren_host *h, const struct warren_auth_backend *t)
{
    struct wr_auth_adapter *a;
    if (!t || t->size < offsetof(struct warren_auth_backend, reserved) || !t->name || !t->login) {
        wr_plugin_log(h, WARREN_LOG_ERROR, "auth backend refused: incomplete description");
        return -1;
    }
    if (!strcmp(t->name, "internal") || wr_plugins_auth_backend(h->set, t->name)) {
        wr_plugin_log(h, WARREN_LOG_ERROR, "auth backend '%s' refused: the name is taken", t->name);
        return -1;
    }
    if (!(a = calloc(1, sizeof(*a))) || !(a->name = strdup(t->name))) {
        free(a);
        return -1;
    }
    a->t = t;
    a->h = h;
    a->base.name = a->name;
    a->base.ctx = a;
    a->base.login = a_login;
    a->base.vhost = a_vhost;
    a->base.resource = a_resource;
    a->base.topic = a_topic;
    a->next = h->auths;
    h->auths = a;
    return 0;
}

const struct wr_auth_backend *wr_plugins_auth_backend(const struct wr_plugins *s, const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        for (const struct wr_auth_adapter *a = s->v[i]->auths; a; a = a->next)
            if (!strcmp(a->name, name))
                return &a->base;
    /* a plugin being loaded registers before it is in the set */
    return NULL;
}

void wr_plugin_auths_free(warren_host *h)
{
    while (h->auths) {
        struct wr_auth_adapter *a = h->auths;
        h->auths = a->next;
        free(a->name);
        free(a);
    }
    h->reload_fn = NULL;
}

void wr_plugin_auth_changed(warren_host *h)
{
    wr_users_touch(h->set->b->users);
}

/* Reload: warrend's SIGHUP handler calls wr_plugins_reload, which calls
 * each plugin's hook on the loop thread. */
int wr_plugin_on_reload(warren_host *h, void (*cb)(void *arg), void *arg)
{
    if (h->reload_fn || !cb)
        return -1;
    h->reload_fn = cb;
    h->reload_arg = arg;
    return 0;
}

void wr_plugins_reload(struct wr_plugins *s)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (s->v[i]->reload_fn)
            s->v[i]->reload_fn(s->v[i]->reload_arg);
}

warren_pattern *wr_plugin_pattern_new(const char *re, char *why, size_t cap)
{
    struct wr_errbuf err;
    struct wr_perm_re *p = wr_perm_re_compile(re, strlen(re), &err);
    if (!p && why && cap)
        snprintf(why, cap, "%s", err.text);
    return (warren_pattern *)(void *)p;
}

bool wr_plugin_pattern_match(const warren_pattern *p, struct warren_bytes s)
{
    return wr_perm_re_match((const struct wr_perm_re *)(const void *)p, s.ptr, s.len);
}

void wr_plugin_pattern_free(warren_pattern *p)
{
    wr_perm_re_free((struct wr_perm_re *)(void *)p);
}

bool wr_plugin_password_matches(struct warren_bytes hash, struct warren_bytes password)
{
    return wr_passwd_check(WR_PASSWD_SHA256, hash.ptr, hash.len, password.ptr, password.len);
}
