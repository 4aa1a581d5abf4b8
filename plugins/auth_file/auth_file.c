/*
 * auth_file.c - an authentication and authorization backend reading its
 * users from a file (plugin.auth_file.path), re-read on SIGHUP. Named
 * "file" in auth_backends.N, so
 *
 *     auth_backends.1 = file
 *     auth_backends.2 = internal
 *
 * lets the file's users in first and the broker's own after them.
 *
 * The file: one entry per line, fields separated by blanks, # comments.
 *
 *     user  NAME  PASSWORD  [TAGS]
 *     vhost NAME  VHOST  CONFIGURE  WRITE  READ
 *     topic NAME  VHOST  EXCHANGE  WRITE  READ
 *
 * PASSWORD is sha256:BASE64 (RabbitMQ's stored form: a 4-byte salt and
 * SHA-256 of salt and password, as `rabbitmqctl hash_password` prints) or
 * plain:TEXT. TAGS is a comma list (management, administrator...).
 * CONFIGURE, WRITE and READ are RabbitMQ's permission patterns; `-` is the
 * empty pattern (matches nothing). A user may open the vhosts it has a
 * vhost line for; a topic line restricts routing keys on that exchange as
 * RabbitMQ's topic permissions do (no line: any key). Names cannot hold
 * blanks.
 *
 * A file that cannot be read or has a bad line is refused whole: at start
 * the plugin does not load (so auth_backends naming "file" stops the
 * broker), on SIGHUP the users read before stay and the reason is logged.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/plugin.h"

static const struct warren_api *api;
static warren_host *host;
static char *path;

struct perm {
    char *vhost, *exchange; /* exchange: topic lines only */
    warren_pattern *re[3];  /* configure, write, read (topic: write, read in [1], [2]) */
    struct perm *next;
};

struct user {
    char *name, *hash, *tags;
    bool plain;
    struct perm *vhosts, *topics;
};

struct table {
    struct user *u;
    size_t n, cap;
};

static struct table users;

static void perms_free(struct perm *p)
{
    while (p) {
        struct perm *next = p->next;
        for (int i = 0; i < 3; i++)
            if (p->re[i])
                api->pattern_free(p->re[i]);
        free(p->vhost);
        free(p->exchange);
        free(p);
        p = next;
    }
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->u[i].name);
        free(t->u[i].hash);
        free(t->u[i].tags);
        perms_free(t->u[i].vhosts);
        perms_free(t->u[i].topics);
    }
    free(t->u);
    memset(t, 0, sizeof(*t));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

static struct user *find(const struct table *t, struct warren_bytes name)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        size_t ml = strlen(t->u[mid].name);
        int c = memcmp(t->u[mid].name, name.ptr, ml < name.len ? ml : name.len);
        if (c == 0)
            c = ml < name.len ? -1 : ml > name.len ? 1 : 0;
        if (c == 0)
            return &t->u[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- reading the file ---- */

static bool fail(char *why, size_t cap, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(char *why, size_t cap, unsigned line, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(why, cap, "%s:%u: %s", path, line, msg);
    return false;
}

static warren_pattern *pattern(const char *s, char *err, size_t cap)
{
    return api->pattern_new(strcmp(s, "-") == 0 ? "" : s, err, cap);
}

static bool add_perm(struct table *t, char **f, int nf, bool topic, unsigned line, char *why,
                     size_t cap)
{
    struct warren_bytes name = {f[1], strlen(f[1])};
    struct user *u;
    struct perm *p;
    int first = topic ? 4 : 3, k;
    char err[160];

    if (nf != 6)
        return fail(why, cap, line, "%s needs 5 fields after it", f[0]);
    /* users come first in the table being built: look it up linearly
     * (not sorted yet) */
    u = NULL;
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->u[i].name) == name.len && !memcmp(t->u[i].name, name.ptr, name.len))
            u = &t->u[i];
    if (!u)
        return fail(why, cap, line, "no user line for '%s' above", f[1]);
    if (!(p = calloc(1, sizeof(*p))) || !(p->vhost = strdup(f[2])) ||
        (topic && !(p->exchange = strdup(f[3])))) {
        perms_free(p);
        return fail(why, cap, line, "%s", "out of memory");
    }
    for (k = first; k < nf; k++) {
        int slot = k - 3; /* vhost: configure, write, read; topic: write, read */
        if (!(p->re[slot] = pattern(f[k], err, sizeof err))) {
            perms_free(p);
            return fail(why, cap, line, "bad pattern: %s", err);
        }
    }
    if (topic) {
        p->next = u->topics;
        u->topics = p;
    } else {
        p->next = u->vhosts;
        u->vhosts = p;
    }
    return true;
}

static bool add_user(struct table *t, char **f, int nf, unsigned line, char *why, size_t cap)
{
    struct user *u;
    bool plain;
    if (nf < 3 || nf > 4)
        return fail(why, cap, line, "%s", "user needs NAME PASSWORD [TAGS]");
    if (!strncmp(f[2], "plain:", 6))
        plain = true;
    else if (!strncmp(f[2], "sha256:", 7))
        plain = false;
    else
        return fail(why, cap, line, "%s", "password must be plain:TEXT or sha256:BASE64");
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->u[i].name, f[1]))
            return fail(why, cap, line, "user '%s' given twice", f[1]);
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        struct user *nu = realloc(t->u, ncap * sizeof(*nu));
        if (!nu)
            return fail(why, cap, line, "%s", "out of memory");
        t->u = nu;
        t->cap = ncap;
    }
    u = &t->u[t->n];
    memset(u, 0, sizeof(*u));
    u->plain = plain;
    u->name = strdup(f[1]);
    u->hash = strdup(f[2] + (plain ? 6 : 7));
    u->tags = strdup(nf == 4 ? f[3] : "");
    t->n++;
    if (!u->name || !u->hash || !u->tags)
        return fail(why, cap, line, "%s", "out of memory");
    return true;
}

static bool load(struct table *out, char *why, size_t cap)
{
    FILE *fp = fopen(path, "r");
    struct table t = {0};
    char buf[4096];
    unsigned line = 0;
    bool ok = true;

    if (!fp) {
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        return false;
    }
    while (ok && fgets(buf, sizeof buf, fp)) {
        char *f[8], *save = NULL, *tok;
        int nf = 0;
        line++;
        if (!strchr(buf, '\n') && !feof(fp)) {
            ok = fail(why, cap, line, "%s", "line too long");
            break;
        }
        for (tok = strtok_r(buf, " \t\r\n", &save); tok && nf < 8;
             tok = strtok_r(NULL, " \t\r\n", &save))
            f[nf++] = tok;
        if (tok)
            ok = fail(why, cap, line, "%s", "too many fields");
        else if (nf == 0 || f[0][0] == '#')
            continue;
        else if (!strcmp(f[0], "user"))
            ok = add_user(&t, f, nf, line, why, cap);
        else if (!strcmp(f[0], "vhost"))
            ok = add_perm(&t, f, nf, false, line, why, cap);
        else if (!strcmp(f[0], "topic"))
            ok = add_perm(&t, f, nf, true, line, why, cap);
        else
            ok = fail(why, cap, line, "unknown entry '%s' (user, vhost or topic)", f[0]);
    }
    if (ok && ferror(fp)) {
        snprintf(why, cap, "%s: read error", path);
        ok = false;
    }
    fclose(fp);
    if (!ok) {
        table_free(&t);
        return false;
    }
    qsort(t.u, t.n, sizeof(*t.u), by_name);
    *out = t;
    return true;
}

/* ---- the backend ---- */

static int f_login(warren_host *h, struct warren_bytes name, struct warren_bytes password,
                   char *tags, size_t cap)
{
    struct user *u = find(&users, name);
    bool ok;
    (void)h;
    if (!u)
        return WARREN_AUTH_UNKNOWN;
    if (u->plain)
        ok = strlen(u->hash) == password.len && !memcmp(u->hash, password.ptr, password.len);
    else
        ok = api->password_matches((struct warren_bytes){u->hash, strlen(u->hash)}, password);
    if (!ok)
        return WARREN_AUTH_DENY;
    snprintf(tags, cap, "%s", u->tags);
    return WARREN_AUTH_ALLOW;
}

static bool same(const char *s, struct warren_bytes b)
{
    return strlen(s) == b.len && !memcmp(s, b.ptr, b.len);
}

static const struct perm *vhost_perm(struct warren_bytes user, struct warren_bytes vhost)
{
    const struct user *u = find(&users, user);
    for (const struct perm *p = u ? u->vhosts : NULL; p; p = p->next)
        if (same(p->vhost, vhost))
            return p;
    return NULL;
}

static bool f_vhost(warren_host *h, struct warren_bytes user, struct warren_bytes vhost)
{
    (void)h;
    return vhost_perm(user, vhost) != NULL;
}

static bool f_resource(warren_host *h, struct warren_bytes user, struct warren_bytes vhost,
                       const char *kind, struct warren_bytes name, enum warren_perm perm)
{
    const struct perm *p = vhost_perm(user, vhost);
    (void)h;
    (void)kind;
    return p && api->pattern_match(p->re[perm], name);
}

static bool f_topic(warren_host *h, struct warren_bytes user, struct warren_bytes vhost,
                    struct warren_bytes exchange, struct warren_bytes key, enum warren_perm perm)
{
    const struct user *u = find(&users, user);
    (void)h;
    for (const struct perm *p = u ? u->topics : NULL; p; p = p->next)
        if (same(p->vhost, vhost) && same(p->exchange, exchange))
            return perm != WARREN_PERM_CONFIGURE && api->pattern_match(p->re[perm], key);
    return true;
}

static const struct warren_auth_backend backend = {
    .size = sizeof(struct warren_auth_backend),
    .name = "file",
    .login = f_login,
    .vhost_access = f_vhost,
    .resource_access = f_resource,
    .topic_access = f_topic,
};

static void reload(void *arg)
{
    struct table t;
    char why[300];
    (void)arg;
    if (!load(&t, why, sizeof why)) {
        api->log(host, WARREN_LOG_ERROR, "users not re-read, the ones read before stay: %s", why);
        return;
    }
    table_free(&users);
    users = t;
    api->auth_changed(host);
    api->log(host, WARREN_LOG_INFO, "%zu users re-read from %s", users.n, path);
}

static int af_init(warren_host *h, const struct warren_api *a)
{
    const char *p;
    char why[300];
    api = a;
    host = h;
    if (!(p = a->config_get(h, "path"))) {
        a->log(h, WARREN_LOG_ERROR, "plugin.auth_file.path is not set");
        return -1;
    }
    if (!(path = strdup(p)))
        return -1;
    if (!load(&users, why, sizeof why)) {
        a->log(h, WARREN_LOG_ERROR, "%s", why);
        free(path);
        path = NULL;
        return -1;
    }
    if (a->register_auth_backend(h, &backend) != 0 || a->on_reload(h, reload, NULL) != 0) {
        table_free(&users);
        free(path);
        path = NULL;
        return -1;
    }
    a->log(h, WARREN_LOG_INFO, "%zu users read from %s", users.n, path);
    return 0;
}

static void af_fini(warren_host *h)
{
    (void)h;
    table_free(&users);
    free(path);
    path = NULL;
}

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .name = "auth_file",
    .version = "1.0",
    .description = "users, passwords, tags and permissions from a file re-read on SIGHUP "
                   "(auth_backends.N = file)",
    .init = af_init,
    .fini = af_fini,
};
