/*
 * transport.h - the seam between a connection and its socket: plain TCP
 * (transport_plain.c) or TLS through OpenSSL (tls.c). conn.c reads and
 * writes through these functions only, so it does not know which it has;
 * redis's ConnectionType is the model.
 *
 * A transport moves bytes between the socket and the connection's
 * evbuffers, nothing more: conn.c keeps its own read and write events,
 * reads into its input buffer and writes its output buffer once per loop
 * turn. What a transport adds is the reason it stopped: besides "the socket
 * is drained" (WANT_READ) and "the socket is full" (WANT_WRITE), a TLS read
 * may need the socket writable first (a handshake message to send) and a
 * write may need it readable; the caller then waits for that event and
 * calls again. TLS may also hold decrypted or read-ahead data that the
 * socket will never signal again: has_pending says so, and the caller must
 * read it without waiting for the socket.
 *
 * The plain transport keeps the hot path as it was: one readv into
 * reserved space of the input buffer, one writev (evbuffer_write) of the
 * output buffer, no copy, one indirect call per read or write callback.
 */
#ifndef WR_NET_TRANSPORT_H
#define WR_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct x509_st; /* OpenSSL's X509 */

/* Why a read or write stopped. */
enum wr_xp_status {
    WR_XP_OK,         /* read: the `max` asked for was read, there may be more */
    WR_XP_WANT_READ,  /* wait until the socket is readable (read: drained) */
    WR_XP_WANT_WRITE, /* wait until the socket is writable (write: full) */
    WR_XP_EOF,        /* the peer closed its side (read only) */
    WR_XP_ERROR,      /* the connection is unusable; wr_xport_why() says what happened */
};

struct wr_xport;

/* RabbitMQ's names for the parts of a negotiated cipher suite, as its
 * management API shows a connection's (ssl_key_exchange, ssl_cipher,
 * ssl_hash): "any", "aes_256_gcm", "aead" for TLS 1.3's
 * TLS_AES_256_GCM_SHA384; "ecdhe_rsa", "aes_128_cbc", "sha256" for
 * ECDHE-RSA-AES128-SHA256. Static strings; all NULL for a plain socket. */
struct wr_tls_suite {
    const char *key_exchange, *cipher, *hash;
};

struct wr_xport_ops {
    const char *name; /* "tcp" or "tls" */
    /* Read up to `max` bytes onto the end of `in`; *got is what was added
     * (possibly some with any status). */
    enum wr_xp_status (*read)(struct wr_xport *x, struct evbuffer *in, size_t max, size_t *got);
    /* Write from the front of `out`, draining what was sent (*sent bytes);
     * WR_XP_OK once `out` is empty. */
    enum wr_xp_status (*write)(struct wr_xport *x, struct evbuffer *out, size_t *sent);
    /* Data already taken from the socket that read() would return. */
    bool (*has_pending)(const struct wr_xport *x);
    /* No more output: say goodbye (TLS close_notify) and shut the socket's
     * write side. Returns false when that could not be done (the caller
     * closes at once). */
    bool (*shutdown)(struct wr_xport *x);
    /* Release the transport's state and close the socket. */
    void (*close)(struct wr_xport *x);
    /* The client's certificate, verified by the handshake, or NULL (none
     * sent, or not TLS). Borrowed: valid while the transport is. */
    struct x509_st *(*peer_cert)(const struct wr_xport *x);
    /* The negotiated protocol and cipher ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
     * NULL for a plain socket. */
    const char *(*protocol)(const struct wr_xport *x);
    const char *(*cipher)(const struct wr_xport *x);
    /* The negotiated suite's parts in RabbitMQ's names (all NULL for a
     * plain socket). */
    struct wr_tls_suite (*suite)(const struct wr_xport *x);
};

/* A connection's transport, embedded in it (no allocation for plain
 * sockets). `tls` is the OpenSSL session (SSL *) of a TLS transport. */
struct wr_xport {
    const struct wr_xport_ops *ops;
    int fd;
    void *tls;
    /* TLS: the length of a write to retry after WANT_READ/WANT_WRITE
     * (OpenSSL wants the same bytes again), 0 when none is pending. */
    size_t retry_len;
    bool handshake_done; /* TLS handshake finished (always true for TCP) */
    bool failed;         /* a fatal error: no close_notify may be sent */
};

extern const struct wr_xport_ops wr_xport_plain;

/* A plain TCP transport on an accepted, non-blocking socket. */
void wr_xport_plain_init(struct wr_xport *x, int fd);

/* Why the last WR_XP_ERROR (or a failed init) happened, for the caller's
 * log line; valid until the next transport call on the same thread (one
 * buffer per thread, not 256 bytes in every connection). */
extern _Thread_local char wr_xport_err[256];
static inline const char *wr_xport_why(const struct wr_xport *x)
{
    (void)x;
    return wr_xport_err[0] ? wr_xport_err : "unknown error";
}

#endif
