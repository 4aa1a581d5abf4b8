/*
 * client.h - a minimal asynchronous AMQP 0-9-1 client connection for
 * warren-perf: one socket, one channel (number 1), the project's own codec
 * (wire/frame.h, wire/methods.gen.h) for every frame, a non-blocking socket
 * with a read and a write event on the caller's event_base.
 *
 * The socket is Warren's own transport (net/transport.h): plain TCP, or TLS
 * with --tls (the client side of net/tls.c).
 *
 * Not a bufferevent, on purpose (both costs were measured): libevent 2.1's
 * evbuffer_read reads at most 4 KiB per syscall, and a bufferevent adds and
 * removes its write event (two epoll_ctl) every time its output goes from
 * empty to written. Here a read takes up to 128 KiB, output added during a
 * loop turn is written once at the end of that turn, and the write event is
 * registered only while the kernel is full or a producer wants its turn.
 *
 * The client does the connection handshake (PLAIN login, tune, open),
 * opens channel 1, answers the connection- and channel-level methods, and
 * assembles deliveries. Everything a benchmark role decides (declares,
 * consumes, publishing, acks) happens in the handler callbacks.
 *
 * Incoming bytes are cut into frames straight from the input buffer's
 * contiguous chunks (wr_frame_parse), so a read of many small deliveries
 * costs no copy and no allocation; only a frame that straddles two chunks is
 * pulled up. The publisher writes straight into pc_output().
 *
 * A connection is never freed inside its own callbacks: after `closed` the
 * socket is released at the end of the current callback, and the struct
 * lives until pc_conn_free.
 */
#ifndef WR_BENCH_CLIENT_H
#define WR_BENCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wire/methods.gen.h"

struct event_base;
struct evbuffer;
struct pc_conn;

/* The channel every role uses. */
#define PC_CHANNEL 1

struct pc_handler {
    /* Channel 1 is open. */
    void (*ready)(struct pc_conn *c);
    /* A method on channel 1 other than basic.deliver and channel.close. */
    void (*method)(struct pc_conn *c, const struct wr_method *m);
    /* A whole delivery arrived. ts is the first 8 body bytes (big-endian),
     * 0 when the body is shorter. */
    void (*delivery)(struct pc_conn *c, uint64_t tag, uint64_t ts, uint64_t size);
    /* The end of one read callback's batch of frames (flush acks here). */
    void (*read_done)(struct pc_conn *c);
    /* The socket has room and the output is at or below the low
     * watermark (only while pc_want_writable is on). */
    void (*writable)(struct pc_conn *c);
    /* connection.blocked (1) and connection.unblocked (0). */
    void (*blocked)(struct pc_conn *c, int blocked);
    /* The connection is over: err 0 after our own pc_close completed,
     * otherwise the peer's reply code or -1, with a text saying why. Called
     * once. */
    void (*closed)(struct pc_conn *c, int err, const char *why);
};

struct ssl_ctx_st;

struct pc_params {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct ssl_ctx_st *tls; /* a client context: AMQP over TLS; NULL: plain */
    const char *user, *pass, *vhost;
    uint32_t frame_max;   /* what we ask for; the broker's may be lower */
    size_t write_lowmark; /* `writable` fires at or below this many bytes */
};

struct pc_conn *pc_conn_new(struct event_base *base, const struct pc_params *p,
                            const struct pc_handler *h, void *arg);
void pc_conn_free(struct pc_conn *c);

void *pc_arg(const struct pc_conn *c);
/* The output buffer: append frames (on PC_CHANNEL) directly. */
struct evbuffer *pc_output(struct pc_conn *c);
uint32_t pc_frame_max(const struct pc_conn *c);
/* CLOCK_MONOTONIC nanoseconds taken when the current read batch began. */
uint64_t pc_batch_time(const struct pc_conn *c);
bool pc_is_ready(const struct pc_conn *c);

/* A producer that wants `writable` calls whenever the socket has room and
 * the output is at or below the low watermark (once per loop turn at
 * most); off when it has nothing to send, or it would be woken for
 * nothing. */
void pc_want_writable(struct pc_conn *c, bool on);

/* Send a method on channel 1. Returns 0 or a negative WR_E*. */
int pc_send(struct pc_conn *c, const struct wr_method *m);

/* Start a clean close (connection.close, then wait for close-ok, at most
 * a few seconds). Harmless when already closing or closed. */
void pc_close(struct pc_conn *c);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t pc_now_ns(void);

#endif
