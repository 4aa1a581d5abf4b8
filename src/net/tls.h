/*
 * tls.h - the TLS transport (see transport.h): an OpenSSL session on an
 * accepted socket, the server side of the handshake included. Only the
 * listeners (net/listen.c) create one; conn.c uses it through the
 * transport's functions like any other. warren-perf uses the client side.
 */
#ifndef WR_NET_TLS_H
#define WR_NET_TLS_H

#include "net/transport.h"

struct ssl_ctx_st;

/* A TLS transport on `fd` with the listener's current context (the session
 * keeps its own reference to it). Returns 0, or -1 with x->why set (the
 * caller closes fd). */
int wr_tls_xport_init(struct wr_xport *x, int fd, struct ssl_ctx_st *ctx);

/* The client side, for tools that speak to a broker (tests/bench): the
 * handshake starts with the first write. `servername` is sent as SNI
 * (NULL or "": none). */
int wr_tls_xport_connect(struct wr_xport *x, int fd, struct ssl_ctx_st *ctx,
                         const char *servername);

extern const struct wr_xport_ops wr_xport_tls;

/* A cipher suite's parts in RabbitMQ's names (transport.h); all NULL for
 * NULL. A name RabbitMQ has none for is OpenSSL's long name. */
struct ssl_cipher_st;
struct wr_tls_suite wr_tls_suite_names(const struct ssl_cipher_st *c);

#endif
