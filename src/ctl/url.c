/*
 * url.c - parsing of the API's URL and percent-encoding (url.h). The
 * parser accepts only what warrenctl can use: a scheme it speaks, a host,
 * a port and a path prefix; credentials in the URL are refused with a
 * hint (they would end up in shell history and process lists).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl/url.h"

int wr_ctl_port_parse(const char *s)
{
    long v = 0;
    if (!s || !*s || strlen(s) > 5)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= 65535 ? (int)v : -1;
}

bool wr_ctl_host_ok(const char *host)
{
    if (!*host)
        return false;
    for (const char *p = host; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == ':' || c == '%'))
            return false;
    }
    return true;
}

int wr_ctl_url_parse(const char *s, struct wr_ctl_url *u, const char **why)
{
    const char *p, *host, *host_end, *port = NULL, *path;
    size_t n;

    memset(u, 0, sizeof(*u));
    if (!strncasecmp(s, "http://", 7)) {
        p = s + 7;
    } else if (!strncasecmp(s, "https://", 8)) {
        u->tls = true;
        p = s + 8;
    } else {
        *why = "expected http://HOST[:PORT] or https://HOST[:PORT]";
        return -1;
    }
    path = p + strcspn(p, "/?#");
    if (strpbrk(path, "?#")) {
        *why = "a query or fragment has no place in the API's URL";
        return -1;
    }
    if (memchr(p, '@', (size_t)(path - p))) {
        *why = "credentials in the URL are not taken: use --username and --password";
        return -1;
    }
    host = p;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(path - host));
        if (!host_end) {
            *why = "unterminated [IPv6] host";
            return -1;
        }
        p = host_end + 1;
        if (p < path && *p != ':') {
            *why = "junk after the [IPv6] host";
            return -1;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(path - p));
        if (!host_end)
            host_end = path;
        p = host_end;
    }
    if (p < path && *p == ':')
        port = p + 1;
    n = (size_t)(host_end - host);
    if (n == 0 || n > WR_CTL_HOST_MAX) {
        *why = n ? "host name too long" : "no host";
        return -1;
    }
    memcpy(u->host, host, n);
    u->host[n] = '\0';
    if (!wr_ctl_host_ok(u->host)) {
        *why = "bad character in the host name";
        return -1;
    }
    if (port) {
        char tmp[8];
        n = (size_t)(path - port);
        if (n == 0 || n >= sizeof(tmp)) {
            *why = "bad port";
            return -1;
        }
        memcpy(tmp, port, n);
        tmp[n] = '\0';
        int v = wr_ctl_port_parse(tmp);
        if (v < 0) {
            *why = "bad port (1 to 65535 expected)";
            return -1;
        }
        u->port = (unsigned)v;
    } else {
        u->port = u->tls ? 443 : 15672;
    }
    n = strlen(path);
    while (n && path[n - 1] == '/')
        n--;
    if (n > WR_CTL_PREFIX_MAX) {
        *why = "path prefix too long";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= ' ' || c >= 0x7f) {
            *why = "bad character in the path prefix";
            return -1;
        }
    }
    memcpy(u->prefix, path, n);
    u->prefix[n] = '\0';
    return 0;
}

void wr_ctl_url_format(const struct wr_ctl_url *u, struct wr_ctl_buf *out)
{
    bool v6 = strchr(u->host, ':') != NULL;
    wr_ctl_buf_printf(out, "%s://%s%s%s:%u%s", u->tls ? "https" : "http", v6 ? "[" : "",
                      u->host, v6 ? "]" : "", u->port, u->prefix);
}

void wr_ctl_pct_add(struct wr_ctl_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            wr_ctl_buf_addc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            wr_ctl_buf_add(out, e, 3);
        }
    }
}
