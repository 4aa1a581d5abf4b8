/*
 * http.h - a small blocking HTTP/1.1 client, enough for the management API:
 * one connection kept alive across requests (a listing of 10,000 queues is
 * 20 pages on one socket), Basic authentication, bodies by Content-Length
 * or chunked, and TLS through OpenSSL for https URLs. The response parser
 * is a pure function over the bytes received so far, so that it can be
 * tested alone with truncated and malformed input.
 */
#ifndef WR_CTL_HTTP_H
#define WR_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/buf.h"
#include "ctl/url.h"

#define WR_CTL_HTTP_HEAD_MAX (64 * 1024)
#define WR_CTL_HTTP_BODY_MAX ((size_t)1 << 30)

struct wr_ctl_reply {
    int status;
    bool close; /* the server will close the connection after it */
    char *body; /* NUL-terminated, owned; never NULL after a parse */
    size_t len;
};

struct wr_ctl_req {
    const char *method, *target; /* target: "/api/...", already encoded */
    const char *auth;            /* "user:password", or NULL */
    const char *headers;         /* more header lines, each ending "\r\n", or NULL */
    const char *body;            /* NULL: none */
    size_t body_len;
    const char *content_type; /* for a body; NULL: application/json */
    /* Show on stderr, when it is a terminal, how much of a body of a MiB
     * or more is sent ("sent 12.0 of 80.0 MiB"), then that the broker is
     * working on it; the line is cleared when the answer comes. */
    bool progress;
};

/* Parses a response from buf[0, len). Returns the bytes it took when the
 * response is complete (*r filled), 0 when more bytes are needed, -1 with
 * *why (a static text) when they are not HTTP. With eof, bytes that end
 * before the response does are an error, except a body that runs to the
 * end of the connection (no length given). 1xx responses are skipped. */
long wr_ctl_http_parse(const char *buf, size_t len, bool eof, struct wr_ctl_reply *r,
                       const char **why);

void wr_ctl_reply_free(struct wr_ctl_reply *r);

struct wr_ctl_http;

/* A client for one base URL; connects on the first request. tls_ca: a CA
 * file for https, NULL for the system's. */
struct wr_ctl_http *wr_ctl_http_new(const struct wr_ctl_url *u, const char *tls_ca);
void wr_ctl_http_free(struct wr_ctl_http *h);

/* One request. Returns 0 with *r filled (whatever the status), or -1 when
 * the server could not be reached or its reply was not HTTP, with the
 * reason in *err. */
int wr_ctl_http_do(struct wr_ctl_http *h, const struct wr_ctl_req *rq, struct wr_ctl_reply *r,
                   struct wr_ctl_buf *err);

#endif
