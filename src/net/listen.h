/*
 * listen.h - the AMQP (TCP) and AMQPS (TLS) listeners: which addresses
 * the configuration asks for, binding them, accepting connections (with
 * connection_max and a back-off when out of descriptors), and the TLS
 * contexts those listeners and the HTTPS management listener use,
 * reloaded together on SIGHUP. The management API's HTTP listeners are
 * mgmt/http.c's; it registers its TLS slot here.
 */
#ifndef WR_NET_LISTEN_H
#define WR_NET_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

struct wr_conf;
struct wr_server;
struct wr_tls_slot;

/* One listening socket, for the management API's listings. */
struct wr_listen_info {
    const char *protocol; /* "amqp" or "amqp/ssl", as RabbitMQ names them */
    char ip[64];
    int port;
};

/* Before anything else starts: every AMQP and AMQPS address and the
 * management ports (HTTP, HTTPS, Prometheus) can be bound, and the TLS
 * files load. Returns 0, or -1 with one line in `why` ("AMQP port 5672 on
 * 127.0.0.1: port in use", "ssl_options.keyfile /etc/k.pem: ...").
 * Bound, never listened on: nothing is accepted, and nothing stays open. */
int wr_listeners_check(const struct wr_conf *conf, char *why, size_t cap);

/* Only the TLS part of that: the files of every TLS listener (AMQPS, HTTPS
 * management) load and the keys match their certificates. */
int wr_listeners_check_tls(const struct wr_conf *conf, char *why, size_t cap);

/* Open the listeners on the server's loop (logged). Returns 0, or a
 * negative error (logged) when one could not be bound. */
int wr_listeners_open(struct wr_server *s);

/* Close them, and free the TLS contexts. */
void wr_listeners_close(struct wr_server *s);

/* Stop accepting (shutdown) / a descriptor was freed: accept again now
 * if accepting was paused for want of one. */
void wr_listeners_stop(struct wr_server *s);
void wr_listeners_fd_released(struct wr_server *s);

/* Whether accepting is paused for want of file descriptors. */
bool wr_listeners_fd_paused(const struct wr_server *s);

/* Up to `cap` listening sockets; returns how many there are. */
unsigned wr_listeners_info(const struct wr_server *s, struct wr_listen_info *out, unsigned cap);

/* A TLS context to reload with the others (the HTTPS management
 * listener's); unregistered by wr_tls_slot_close. */
void wr_listeners_add_tls(struct wr_server *s, struct wr_tls_slot *slot);

/* SIGHUP: read every TLS listener's certificate, key and CA files again.
 * New connections use the new ones, open connections keep theirs; a slot
 * whose files do not load keeps its old context, and says why in the log.
 * Returns 0 when all reloaded, -1 when one kept its old context. */
int wr_listeners_reload_tls(struct wr_server *s);

#endif
