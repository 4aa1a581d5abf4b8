/*
 * server.h - the broker's network side: the event loop, the listeners
 * (net/listen.c), the list of connections, the periodic tick (heartbeats, handshake timeouts)
 * and the end of each loop turn. The broker's own state (vhosts, users,
 * the store, the alarms) is broker/broker.h's.
 */
#ifndef WR_NET_SERVER_H
#define WR_NET_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/hmap.h"
#include "core/list.h"

struct event_base;
struct event;
struct wr_conf;
struct wr_listeners;
struct wr_broker;

struct wr_server {
    struct event_base *base;
    const struct wr_conf *conf;
    struct wr_broker *broker;
    struct wr_listeners *listeners; /* AMQP and AMQPS (net/listen.h) */
    struct wr_iopool *io;           /* the sockets' threads (net/io.h) */
    struct event *tick_ev, *sigterm_ev, *sigint_ev;
    struct wr_list conns;       /* struct wr_conn.node */
    struct wr_list dead;        /* connections to free at the end of the loop turn */
    struct wr_list dirty;       /* connections with output to write at the end of the turn */
    struct wr_list flow_paused; /* publishers waiting for a queue to drain */
    uint32_t nconns;
    struct wr_list store_waiters; /* channels with confirms waiting for the journal */
    struct wr_list unacked_chans; /* channels with deliveries to acknowledge (consumer_timeout) */
    int64_t consumer_timeout_ms;  /* conf->consumer_timeout_ms the tick last saw */
    struct wr_hmap auth_fails;    /* refused logins by peer address (throttle) */
    bool stopping;
    /* connection.start's server-properties, encoded once by the first
     * connection (conn.c), with the table's length prefix. */
    uint8_t server_props[1024];
    uint32_t server_props_len;
};

/* What runs beside the AMQP side on the same loop (the management API):
 * started once the listeners are up (a negative return stops the server
 * before it serves), stopped before the connections are closed. */
struct wr_server_hooks {
    int (*start)(struct wr_server *s, void *arg);
    void (*stop)(struct wr_server *s, void *arg);
    void *arg;
};

/* Serve the broker on its event loop until SIGTERM or SIGINT: listeners,
 * connections, the tick. Returns 0 after a clean stop (every connection
 * closed), or a negative error when it could not start (logged). hooks
 * may be NULL. */
int wr_server_run(struct event_base *base, const struct wr_conf *conf, struct wr_broker *broker,
                  const struct wr_server_hooks *hooks);

/* A channel has confirms waiting for the journal (list node is the
 * channel's; linking twice is harmless). */
void wr_server_wait_store(struct wr_server *s, struct wr_list *node);

/* A connection has output: write it at the end of this loop turn. */
void wr_server_conn_dirty(struct wr_server *s, struct wr_list *node);

/* A login from this address was refused: how long to wait before saying
 * so (0 at first; growing with repeated failures, up to 3 s). */
uint32_t wr_server_login_failed(struct wr_server *s, const uint8_t *addr, size_t len);

/* A connection's socket was closed: a descriptor is free again. */
void wr_server_fd_released(struct wr_server *s);

/* The configuration was reloaded (SIGHUP): what the I/O threads keep of
 * it follows (max_message_size). */
void wr_server_conf_reloaded(struct wr_server *s);

/* Shutdown: stop accepting, close every connection with 320
 * CONNECTION_FORCED (RabbitMQ's text), and turn the loop until all of
 * them are closed or conf->shutdown_timeout passed, then cut the rest.
 * wr_server_run calls it once its loop is asked to stop. */
void wr_server_close_all(struct wr_server *s);

#endif
