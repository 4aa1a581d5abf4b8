/*
 * tls_ctx.h - OpenSSL server contexts built from a listener's TLS options
 * (struct wr_conf_tls: ssl_options.* for AMQPS, management.ssl.* for
 * HTTPS), and the slot that holds a listener's current context so that
 * SIGHUP can replace it: new connections get the new certificate, those
 * already open keep the context they started with (OpenSSL counts its
 * references), and a file that does not load leaves the old one in place.
 *
 * Defaults are the safe ones: TLS 1.2 and 1.3 only, OpenSSL's default
 * cipher suites, no renegotiation, no compression, session tickets on.
 */
#ifndef WR_NET_TLS_CTX_H
#define WR_NET_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include "core/list.h"

struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
struct wr_conf_tls;

/* A new server context, or NULL with `why` (one line naming the setting
 * and the file, for example "ssl_options.keyfile /etc/k.pem: key values
 * mismatch"). `prefix` is the options' key prefix. */
struct ssl_ctx_st *wr_tls_ctx_new(const struct wr_conf_tls *t, const char *prefix, char *why,
                                  size_t cap);

/* A listener's current context. */
struct wr_tls_slot {
    struct ssl_ctx_st *ctx;
    const struct wr_conf_tls *opts;
    const char *prefix;  /* "ssl_options", "management.ssl" */
    const char *what;    /* "AMQPS", "HTTPS management": for log lines */
    struct wr_list node; /* the server's slots, reloaded together */
};

/* Load the slot's context for the first time; logs the certificate's
 * subject and expiry. Returns 0, or -1 with `why`. */
int wr_tls_slot_open(struct wr_tls_slot *slot, const struct wr_conf_tls *opts, const char *prefix,
                     const char *what, char *why, size_t cap);

/* Read the certificate, key and CA files again. On success the new
 * context replaces the old for new connections (logged); on failure the
 * old one stays and the reason is logged. Returns 0 or -1. */
int wr_tls_slot_reload(struct wr_tls_slot *slot);

void wr_tls_slot_close(struct wr_tls_slot *slot);

/* The reason of the first error in OpenSSL's queue, its cause ("unknown
 * error" when none), and the queue emptied. */
const char *wr_tls_error(char *buf, size_t cap);

#endif
