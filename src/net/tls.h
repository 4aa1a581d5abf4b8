/*
 * tls.h - the TLS transport (see transport.h): an OpenSSL session on an
 * accepted socket, the server side of the handshake included. Only the
 * listeners (net/listen.c) create one; conn.c uses it through the
 * transport's functions like any other.
 */
#ifndef WR_NET_TLS_H
#define WR_NET_TLS_H

#include "net/transport.h"

struct ssl_ctx_st;

/* A TLS transport on `fd` with the listener's current context (the session
 * keeps its own reference to it). Returns 0, or -1 with x->why set (the
 * caller closes fd). */
int wr_tls_xport_init(struct wr_xport *x, int fd, struct ssl_ctx_st *ctx);

extern const struct wr_xport_ops wr_xport_tls;

#endif
