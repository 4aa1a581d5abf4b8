/*
 * url.h - where the management API is: parsing of --url and WARREN_URL
 * (http or https, host or [IPv6], port, an optional path prefix for an API
 * behind a reverse proxy), and the percent-encoding of the names that go
 * into request paths and queries.
 */
#ifndef WR_CTL_URL_H
#define WR_CTL_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/buf.h"

#define WR_CTL_HOST_MAX 255
#define WR_CTL_PREFIX_MAX 255

struct wr_ctl_url {
    bool tls;
    char host[WR_CTL_HOST_MAX + 1]; /* without the brackets of an IPv6 literal */
    unsigned port;
    char prefix[WR_CTL_PREFIX_MAX + 1]; /* "" or "/a/b", never a trailing '/' */
};

/* Parses "http[s]://host[:port][/prefix]". The port defaults to 15672 for
 * http and 443 for https. Returns 0, or -1 with *why set to a static text. */
int wr_ctl_url_parse(const char *s, struct wr_ctl_url *u, const char **why);

/* Parses a decimal TCP port, 1 to 65535; -1 if it is not one. */
int wr_ctl_port_parse(const char *s);

/* Host names are letters, digits, '-', '.', '_' and ':' (IPv6); false for
 * anything else (spaces, '/', '@', an empty name). */
bool wr_ctl_host_ok(const char *host);

/* Writes "http://host:port/prefix" (brackets around an IPv6 host). */
void wr_ctl_url_format(const struct wr_ctl_url *u, struct wr_ctl_buf *out);

/* Appends s percent-encoded as one path segment or query value: every
 * byte but the unreserved ones (ALPHA DIGIT - . _ ~) becomes %XX, so "/"
 * is %2F. */
void wr_ctl_pct_add(struct wr_ctl_buf *out, const char *s);

#endif
