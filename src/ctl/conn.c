/*
 * conn.c - the connection settings of conn.h: the configuration file's
 * parser (a pure function over its text, fuzzable and unit-tested), the
 * environment, and the resolution of the layers into one wr_ctl_conn.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/conn.h"

static const char *const conf_keys[] = {"url", "host", "port", "username", "password", "vhost"};

static char **layer_field(struct wr_ctl_layer *l, size_t i)
{
    char **f[] = {&l->url, &l->host, &l->port, &l->user, &l->password, &l->vhost};
    return f[i];
}

void wr_ctl_layer_free(struct wr_ctl_layer *l)
{
    for (size_t i = 0; i < sizeof(conf_keys) / sizeof(*conf_keys); i++) {
        free(*layer_field(l, i));
        *layer_field(l, i) = NULL;
    }
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool section_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
}

/* One line, without its '\n'; [s, e). */
static int conf_line(const char *s, const char *e, const char *section, bool *in_sel,
                     bool *in_any, struct wr_ctl_layer *out, bool *found, char *err,
                     size_t errlen, unsigned lineno)
{
    while (s < e && blank(*s))
        s++;
    while (e > s && blank(e[-1]))
        e--;
    if (s == e || *s == '#' || *s == ';')
        return 0;
    if (*s == '[') {
        const char *n = s + 1;
        size_t len = (size_t)(e - n) - 1;
        if (e[-1] != ']' || e - n < 1) {
            snprintf(err, errlen, "line %u: '[' without its ']'", lineno);
            return -1;
        }
        if (len == 0 || len > WR_CTL_SECTION_MAX) {
            snprintf(err, errlen, "line %u: a section name has 1 to %d characters", lineno,
                     WR_CTL_SECTION_MAX);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            if (!section_char(n[i])) {
                snprintf(err, errlen,
                         "line %u: a section name has letters, digits, '-', '_' and '.' only",
                         lineno);
                return -1;
            }
        }
        *in_any = true;
        *in_sel = section && strlen(section) == len && !memcmp(section, n, len);
        if (*in_sel)
            *found = true;
        return 0;
    }
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq) {
        snprintf(err, errlen, "line %u: KEY = VALUE or [SECTION] expected", lineno);
        return -1;
    }
    const char *ke = eq, *v = eq + 1;
    while (ke > s && blank(ke[-1]))
        ke--;
    while (v < e && blank(*v))
        v++;
    size_t klen = (size_t)(ke - s), i;
    for (i = 0; i < sizeof(conf_keys) / sizeof(*conf_keys); i++)
        if (strlen(conf_keys[i]) == klen && !memcmp(conf_keys[i], s, klen))
            break;
    if (i == sizeof(conf_keys) / sizeof(*conf_keys)) {
        snprintf(err, errlen,
                 "line %u: unknown key '%.*s' (url, host, port, username, password, vhost)",
                 lineno, klen > 40 ? 40 : (int)klen, s);
        return -1;
    }
    if (!*in_any) {
        snprintf(err, errlen, "line %u: '%s' before any [SECTION]", lineno, conf_keys[i]);
        return -1;
    }
    if (!*in_sel)
        return 0;
    char **f = layer_field(out, i);
    free(*f);
    *f = strndup(v, (size_t)(e - v));
    if (!*f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int wr_ctl_conf_parse(const char *text, size_t len, const char *section,
                      struct wr_ctl_layer *out, bool *found, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    bool in_sel = false, in_any = false;
    unsigned lineno = 0;

    memset(out, 0, sizeof(*out));
    *found = false;
    if (len > WR_CTL_CONF_MAX) {
        snprintf(err, errlen, "larger than %d bytes", WR_CTL_CONF_MAX);
        return -1;
    }
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "a NUL byte: not a text file");
        return -1;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        lineno++;
        if (e - p > WR_CTL_CONF_LINE_MAX) {
            snprintf(err, errlen, "line %u: longer than %d bytes", lineno, WR_CTL_CONF_LINE_MAX);
            goto fail;
        }
        if (conf_line(p, e, section, &in_sel, &in_any, out, found, err, errlen, lineno) < 0)
            goto fail;
        p = nl ? nl + 1 : end;
    }
    return 0;
fail:
    wr_ctl_layer_free(out);
    *found = false;
    return -1;
}

char *wr_ctl_conf_path(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char *p = NULL;
    int n;
    if (xdg && *xdg)
        n = asprintf(&p, "%s/warren/warrenctl.conf", xdg);
    else if (home && *home)
        n = asprintf(&p, "%s/.config/warren/warrenctl.conf", home);
    else
        return NULL;
    return n < 0 ? NULL : p;
}

/* Reads a whole file; NULL with errno set (EFBIG when over the limit). */
static char *read_small(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (!f)
        return NULL;
    buf = malloc(WR_CTL_CONF_MAX + 1);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    n = fread(buf, 1, WR_CTL_CONF_MAX + 1, f);
    if (ferror(f) || n > WR_CTL_CONF_MAX) {
        int e = ferror(f) ? errno : EFBIG;
        free(buf);
        fclose(f);
        errno = e;
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int load_file(const char *config, const char *node, struct wr_ctl_layer *out, char *err,
                     size_t errlen)
{
    char *path = config ? strdup(config) : wr_ctl_conf_path();
    char *text, perr[256];
    size_t len = 0;
    bool found;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!path) {
        if (!node)
            return 0;
        snprintf(err, errlen, "--node %s: no configuration file (HOME is not set)", node);
        return -1;
    }
    if (!(text = read_small(path, &len))) {
        if (errno == ENOENT && !config && !node) {
            free(path);
            return 0;
        }
        snprintf(err, errlen, "%s: %s", path, errno == EFBIG ? "too large" : strerror(errno));
        free(path);
        return -1;
    }
    if (wr_ctl_conf_parse(text, len, node ? node : "default", out, &found, perr, sizeof(perr)) <
        0)
        snprintf(err, errlen, "%s: %s", path, perr);
    else if (node && !found)
        snprintf(err, errlen, "%s: no section [%s] (--node)", path, node);
    else
        rc = 0;
    if (rc < 0)
        wr_ctl_layer_free(out);
    free(text);
    free(path);
    return rc;
}

static int apply(const struct wr_ctl_layer *l, const char *what, struct wr_ctl_conn *c, char *err,
                 size_t errlen)
{
    const char *why;
    if (l->url) {
        struct wr_ctl_url u;
        if (wr_ctl_url_parse(l->url, &u, &why) < 0) {
            snprintf(err, errlen, "%s URL '%.200s': %s", what, l->url, why);
            return -1;
        }
        c->url = u;
    }
    if (l->host) {
        if (strlen(l->host) > WR_CTL_HOST_MAX || !wr_ctl_host_ok(l->host)) {
            snprintf(err, errlen, "%s host '%.200s': not a host name or address", what, l->host);
            return -1;
        }
        strcpy(c->url.host, l->host);
    }
    if (l->port) {
        int p = wr_ctl_port_parse(l->port);
        if (p < 0) {
            snprintf(err, errlen, "%s port '%.20s': 1 to 65535 expected", what, l->port);
            return -1;
        }
        c->url.port = (unsigned)p;
    }
    char **dst[] = {&c->user, &c->password, &c->vhost};
    char *const src[] = {l->user, l->password, l->vhost};
    for (size_t i = 0; i < 3; i++) {
        if (src[i]) {
            free(*dst[i]);
            if (!(*dst[i] = strdup(src[i]))) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
        }
    }
    return 0;
}

int wr_ctl_conn_resolve(const struct wr_ctl_layer *flags, const char *config, const char *node,
                        struct wr_ctl_conn *out, char *err, size_t errlen)
{
    struct wr_ctl_layer def = {.url = "http://127.0.0.1:15672", .user = "guest",
                               .password = "guest", .vhost = "/"};
    struct wr_ctl_layer file, env = {
        .url = getenv("WARREN_URL"),
        .user = getenv("WARREN_USER"),
        .password = getenv("WARREN_PASSWORD"),
        .vhost = getenv("WARREN_VHOST"),
    };
    int rc;

    memset(out, 0, sizeof(*out));
    if (apply(&def, "default", out, err, errlen) < 0)
        goto fail;
    if (load_file(config, node, &file, err, errlen) < 0)
        goto fail;
    rc = apply(&file, "configuration file", out, err, errlen);
    wr_ctl_layer_free(&file);
    if (rc < 0 || apply(&env, "WARREN_URL", out, err, errlen) < 0 ||
        apply(flags, "--url/--host/--port", out, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    wr_ctl_conn_free(out);
    return -1;
}

void wr_ctl_conn_free(struct wr_ctl_conn *c)
{
    free(c->user);
    free(c->password);
    free(c->vhost);
    c->user = c->password = c->vhost = NULL;
}
