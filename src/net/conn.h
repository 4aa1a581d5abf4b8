/*
 * conn.h - one AMQP connection's core half: the handshake (protocol
 * header, start/start-ok, tune/tune-ok, open), heartbeats,
 * connection.close both ways, blocked/unblocked, and the table of
 * channels. Its socket half (net/io.h: the transport, plain TCP or TLS,
 * reads, writes, the lingering close) runs on an I/O thread, or on this
 * loop with io_threads = 0; this file does not know which.
 *
 * Reading: the socket half appends input to c->in and says so
 * (wr_conn_sock_input); whole frames are taken off it (wire/frame.c),
 * connection-class methods handled here and everything on a channel
 * passed to net/chan.c. Writing: everything is appended to c->out, which
 * goes to the socket half once per loop turn (wr_conn_flush). A connection
 * is never freed inside its own callback: once its socket half is closed
 * it is reaped at the end of the loop turn.
 */
#ifndef WR_NET_CONN_H
#define WR_NET_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/stats.h"
#include "core/list.h"
#include "net/deliver.h"
#include "net/io.h"
#include "wire/buf.h"

struct event;
struct sockaddr;
struct evbuffer;
struct wr_server;
struct wr_vhost;
struct wr_chan;
struct wr_method;

enum wr_conn_state {
    WR_CS_HEADER,   /* waiting for "AMQP 0 0 9 1" */
    WR_CS_START_OK, /* sent connection.start */
    WR_CS_TUNE_OK,  /* sent connection.tune */
    WR_CS_OPEN,     /* waiting for connection.open */
    WR_CS_RUNNING,
    WR_CS_CLOSING, /* sent connection.close, waiting for close-ok */
    WR_CS_CLOSED,  /* close and close-ok exchanged: answering stray closes,
                    * discarding the rest, until the peer closes the socket */
    WR_CS_DEAD,    /* output being flushed, then a lingering close, then freed */
};

/* Output above this many bytes makes consumers on the connection skip
 * their turn and stops the connection being read (replies pile up there
 * too); below half of it both resume. */
#define WR_CONN_OUT_HIGH (1u << 20)
#define WR_CONN_OUT_LOW (WR_CONN_OUT_HIGH / 2)

struct wr_conn {
    struct wr_server *srv;
    struct wr_sock *sock; /* the socket half (net/io.h), on its I/O thread */
    struct event *kick;   /* input held and released: handle c->in next turn */
    bool tls;             /* an AMQPS connection */
    bool tls_seen;        /* the TLS handshake's end was noticed (timer reset, logged) */
    bool sock_closed;     /* the socket half closed: free at the end of the turn */
    struct evbuffer *in, *out;
    struct wr_list node; /* srv->conns or srv->dead */
    char name[112];      /* "127.0.0.1:5555 -> 127.0.0.1:5672", for log lines */
    enum wr_conn_state state;
    bool loopback;
    uint8_t peer_addr[16]; /* the peer's address (IPv4 in the first 4 bytes) */
    uint8_t peer_addr_len;
    bool cap_auth_close;      /* client understands connection.close on a refused login */
    uint64_t refuse_at_ms;    /* a refused login is answered at this time (throttle) */
    char refused_mech[33];    /* its SASL mechanism, for the refusal's text */
    bool cap_blocked;         /* client understands connection.blocked */
    bool cap_cancel;          /* client understands server basic.cancel */
    bool blocked_sent;        /* we sent connection.blocked */
    bool read_paused;         /* memory alarm: not reading this socket */
    uint32_t marker_done;     /* publishes of the marker at the input's head taken (asm.h) */
    struct wr_queue *flow_q;  /* flow control: waiting for this queue to drain */
    uint64_t flow_delivered;  /* flow_q's deliveries when last seen moving */
    uint64_t flow_moved_ms;   /* ... and when */
    uint64_t flow_since_ms;   /* paused at */
    uint64_t flow_free_ms;    /* not paused again before this (WR_FLOW_MAX_MS) */
    struct wr_list flow_node; /* srv->flow_paused */
    bool out_full;            /* output above WR_CONN_OUT_HIGH: consumers parked, not read */
    uint64_t out_shared;      /* bytes of `out` that are references to message bodies */
    uint64_t out_counted;     /* what this connection adds to srv->out_bytes */
    uint64_t out_pending;     /* handed to the I/O thread, not reported written yet */
    struct wr_dlvq dq;        /* deliveries for the I/O thread to encode (deliver.h) */
    uint16_t channel_max;
    uint32_t frame_max;
    uint16_t heartbeat;
    uint64_t opened_ms, last_recv_ms, last_send_ms, closing_since_ms;
    char user[256];
    uint8_t user_len;
    /* The logged-in user and its permissions on c->vh, looked up again
     * when the user table changed (wr_conn_access). */
    struct wr_user *principal;
    const struct wr_vperm *vperm;
    uint64_t access_gen;
    struct wr_vhost *vh;
    struct wr_chan **chans; /* indexed by channel id, grown on demand */
    uint32_t nchans_cap;
    uint32_t nchans_open;
    struct wr_list exclusive_queues;  /* struct wr_queue.owner_node */
    struct wr_list consumers_waiting; /* chan consumers idled by out_full */
    struct wr_list dirty_node;        /* srv->dirty: output to write at the end of the turn */
    bool reading;                     /* input wanted (see conn_update_read) */
    /* For the management API: bytes read and written (counted per read
     * and per write, with rates from wr_conn_sample), the reads and
     * writes, the SASL mechanism, and the client's properties as sent in
     * start-ok (field-table bytes without the length prefix; NULL when
     * none came yet). */
    struct wr_counter recv_oct, send_oct;
    uint64_t recv_cnt, send_cnt;
    char mech[16];
    char *client_props;
    uint32_t client_props_len;
};

/* Rate sample of the byte counters, dt_s seconds after the last one (the
 * management API's sampler). */
void wr_conn_sample(struct wr_conn *c, double dt_s);

/* Is a peer address loopback (127.0.0.0/8, ::1, ::ffff:127.x)? Users in
 * loopback_users (guest by default) may only connect from there. */
bool wr_sockaddr_is_loopback(const struct sockaddr *sa);

/* Take over an accepted socket and its transport (copied; on failure the
 * caller still owns it and closes it); its socket half goes to an I/O
 * thread (srv->io). */
struct wr_conn *wr_conn_new(struct wr_server *srv, const struct wr_xport *xp,
                            const struct sockaddr *peer, int peerlen);
/* Free a dead connection (the reaper calls this). */
void wr_conn_free(struct wr_conn *c);

/* Send a method on a channel (0 for the connection). */
void wr_conn_send(struct wr_conn *c, uint16_t channel, const struct wr_method *m);

/* Close the connection with a hard error: connection.close(code, text,
 * class, method), then wait for close-ok. Logged. */
void wr_conn_error(struct wr_conn *c, int code, uint32_t method_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Drop the connection now (socket error, timeout): no more frames. */
void wr_conn_abort(struct wr_conn *c, const char *why);

/* Close the connection from outside its callbacks because what it uses is
 * going away (its vhost or its user is being deleted): connection.close
 * (code, text) is sent as by wr_conn_error, its channels are released at
 * once (unacked deliveries requeued, consumers cancelled, half-published
 * messages dropped), and it lets go of its vhost (c->vh becomes NULL), its
 * user and the queue its flow control waits for; close-ok is then awaited
 * as usual. A connection already closing just lets go. Its exclusive
 * queues stay linked to it until they are deleted (with the vhost) or it
 * is freed. */
void wr_conn_force_close(struct wr_conn *c, int code, const char *text);

/* wr_conn_force_close(320) every connection on `vh` (before the vhost is
 * deleted), or logged in as `user` (before the user is deleted), with
 * RabbitMQ's texts: "vhost 'V' is down", "user 'U' is deleted". Returns
 * how many were open. */
struct wr_vhost;
unsigned wr_conn_close_vhost(struct wr_server *s, const struct wr_vhost *vh);
unsigned wr_conn_close_user(struct wr_server *s, struct wr_str user);

/* Flow control (RabbitMQ's internal "flow" state, not connection.blocked):
 * a publisher whose messages pile up in a queue that has consumers stops
 * being read until the queue drains, so a fast publisher cannot take the
 * loop away from the consumers that empty the queue. */
#define WR_FLOW_HIGH 20000u /* ready messages in a queue with consumers */
#define WR_FLOW_LOW 10000u
/* A paused publisher is let go when the queue delivered nothing for this
 * long: its consumers are not taking (all at their prefetch limit), and
 * holding the publisher back would only stall its confirms. */
#define WR_FLOW_STALL_MS 250u
/* A pause lasts at most WR_FLOW_MAX_MS: a queue whose consumers take
 * steadily but slowly would hold its publisher (its confirms, its
 * connection.close, its heartbeats) for minutes. The publisher is then
 * read for WR_FLOW_GRACE_MS before it can be paused again: slowed, as
 * RabbitMQ's credit flow slows a publisher, not stopped. */
#define WR_FLOW_MAX_MS 1000u
#define WR_FLOW_GRACE_MS 250u
struct wr_queue;
void wr_conn_flow_pause(struct wr_conn *c, struct wr_queue *q);
/* Turn end: resume the publishers whose queue drained. */
void wr_conn_flow_check(struct wr_conn *c);

/* End of a loop turn: write what this connection has to say (one writev
 * for everything queued during the turn; with I/O threads, handed to the
 * connection's thread in one batch). */
void wr_conn_flush(struct wr_conn *c);

/* ---- what the socket half says (net/io.c; on the core thread) ---- */

/* The TLS handshake is done (wr_sock_protocol and the rest are set). */
void wr_conn_sock_tls(struct wr_conn *c);
/* `bytes` more input at the end of c->in, from `reads` reads. */
void wr_conn_sock_input(struct wr_conn *c, uint64_t bytes, uint32_t reads);
/* `bytes` of output written, in `writes` writes. */
void wr_conn_sock_wrote(struct wr_conn *c, uint64_t bytes, uint32_t writes);
/* The peer closed its side (why NULL), or the socket failed (why says how;
 * the socket is then closed too). */
void wr_conn_sock_ended(struct wr_conn *c, const char *why);
/* The socket is closed: the connection is freed at the end of the turn. */
void wr_conn_sock_closed(struct wr_conn *c);

/* Periodic: heartbeats and timeouts. */
void wr_conn_tick(struct wr_conn *c, uint64_t now_ms);

/* The connection's user and its permission entry on the connection's
 * vhost, current. NULL when the user or its access to the vhost is gone:
 * the connection is then being closed (320), and the caller refuses. */
struct wr_user;
struct wr_vperm;
const struct wr_vperm *wr_conn_access(struct wr_conn *c, struct wr_user **user);

/* Memory alarm raised/cleared. */
void wr_conn_set_blocked(struct wr_conn *c, bool blocked);

/* True when consumers on this connection should wait for the socket. */
static inline bool wr_conn_out_full(const struct wr_conn *c)
{
    return c->out_full;
}
void wr_conn_note_output(struct wr_conn *c);

#endif
