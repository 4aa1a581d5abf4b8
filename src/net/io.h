/*
 * io.h - the socket half of a connection, and the I/O threads that run it.
 *
 * A connection is two halves. The core half (net/conn.c, struct wr_conn)
 * is the AMQP state: the handshake, the channels, everything that touches
 * the broker; it belongs to the loop thread, the core. The socket half
 * (struct wr_sock, this file) is the transport: reading bytes, writing the
 * output, TLS, the lingering close. It runs on an I/O thread, each with its
 * own event loop (`io_threads` > 0), or on the core's own loop
 * (`io_threads = 0`, the single-threaded mode).
 *
 * The halves talk through the calls below and nothing else. With
 * io_threads = 0 a call is a plain function call, and the socket half
 * reads into and writes from the connection's own buffers, as before the
 * split. With I/O threads, calls cross in batches: each side gathers what
 * it has to say in the sock's hand-off fields under its I/O thread's
 * mutex, links the sock on the other side's list and wakes that side
 * (an eventfd) when the list was empty. One lock per batch: the input of
 * one read callback, the output of one loop turn; never one per message.
 *
 * With I/O threads a sock may also run on the core's loop while the core
 * is mostly idle (placement, below): it keeps its own buffers and the
 * connection sees the same calls, but a hand-off is then a plain call and
 * nobody is woken. Socks move between the core and the threads only
 * between two loop turns, and only whole: one owner at a time.
 *
 * Who calls what:
 *   core -> sock: wr_sock_new, wr_sock_want_read, wr_sock_flush,
 *                 wr_sock_finish, wr_sock_abort, wr_sock_free;
 *   sock -> core: the wr_conn_sock_* functions of conn.h, always on the
 *                 core thread (run from the core's wake-up with threads).
 */
#ifndef WR_NET_IO_H
#define WR_NET_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/transport.h"

struct event_base;
struct evbuffer;
struct wr_conn;
struct wr_sock;
struct wr_iopool;
struct wr_dlvq;
struct wr_msg;

/* Where sockets run when there are I/O threads (io_threads.placement):
 * ADAPTIVE: on the core's loop while the core is busy less than half its
 *   time, on the threads while it is busier (back after a second below
 *   10%); a TLS socket's handshake is always on a thread.
 * THREADS: always on the threads.
 * SHUFFLE: back and forth every 20 ms, to test the moves. */
enum wr_io_placement { WR_IO_ADAPTIVE, WR_IO_THREADS, WR_IO_SHUFFLE };

/* The I/O threads: `n` of them (0: the socket halves run on `core`, the
 * core's loop). NULL when a thread or its loop cannot be made (logged). */
struct wr_iopool *wr_iopool_new(struct event_base *core, unsigned n,
                                enum wr_io_placement placement);
/* Stop and join the threads; every sock must be gone (wr_sock_free). */
void wr_iopool_free(struct wr_iopool *p);
unsigned wr_iopool_threads(const struct wr_iopool *p);
/* max_message_size, now and after each reload: the I/O threads assemble
 * publishes of at most that (and 256 KiB), so that a larger one reaches
 * the core as frames and is refused on its content header. */
void wr_iopool_set_max_message(struct wr_iopool *p, uint64_t max_message_size);
/* With I/O threads: message blocks they allocated (WR_MSG_REMOTE) go back
 * to them to be freed, in batches (msgs->release; undone by
 * wr_iopool_free). */
struct wr_msgs;
void wr_iopool_take_releases(struct wr_iopool *p, struct wr_msgs *msgs);
/* On the core: where those blocks went so far. A batch goes back with a
 * request the core makes anyway, or, once 16384 wait, pushed to a thread
 * whose last batch is freed (woken for it); past 65536 waiting, while
 * every thread still frees, the core frees them itself. */
struct wr_iopool_rel_stats {
    uint64_t batches;       /* handed to a thread */
    uint64_t freed_threads; /* freed there */
    uint64_t freed_core;    /* freed on the core (past the bound, or out of memory) */
    uint64_t gathered;      /* waiting for the next batch */
};
void wr_iopool_rel_stats(struct wr_iopool *p, struct wr_iopool_rel_stats *st);
/* On the core (the server's tick): true while such blocks wait or are
 * being freed on a thread; those waiting go to a thread now, whatever
 * their number (a quiet broker makes no request to carry them). */
bool wr_iopool_releases_pending(struct wr_iopool *p);
/* On the core, after malloc_trim: each thread gives back its own arena's
 * free top (which malloc_trim leaves), when it next wakes (now). */
void wr_iopool_trim(struct wr_iopool *p);
/* io_threads = auto: cores - 1, at most 16, and 0 on a machine of one or
 * two cores (measured faster there: docs/PERFORMANCE.md). */
unsigned wr_io_threads_auto(void);

/* True on the core's thread (and always with io_threads = 0). */
bool wr_io_on_core(void);

/* ---- the core's side ---- */

/* Take over an accepted socket (its transport copied) for connection `c`,
 * on the I/O thread with the fewest connections. With io_threads = 0 the
 * sock reads into c_in and writes from c_out; otherwise it has buffers of
 * its own and the core's are handed over in wr_sock_flush. NULL when out
 * of memory (the caller still owns the transport). */
struct wr_sock *wr_sock_new(struct wr_iopool *p, struct wr_conn *c, const struct wr_xport *xp,
                            struct evbuffer *c_in, struct evbuffer *c_out);
/* Input wanted (true) or held (false: the socket is not read). */
void wr_sock_want_read(struct wr_sock *s, bool want);
/* The end of a loop turn: write `out` (the connection's output buffer)
 * and the deliveries queued for the thread to encode among it (`dq`,
 * deliver.h; emptied; always empty with io_threads = 0).
 * The bytes taken from `out` and `dq` are added to *handed before
 * anything is reported written: on a thread they are written later; on
 * the core what the socket takes now is reported (wr_conn_sock_wrote)
 * before this returns. With io_threads = 0, `out` is the sock's own
 * output and nothing is added. */
void wr_sock_flush(struct wr_sock *s, struct evbuffer *out, struct wr_dlvq *dq, uint64_t *handed);
/* Graceful end: write `out` and what is still pending, shut the write
 * side, read and discard until the peer's EOF or 2 s (a lingering close),
 * then close; output not written within 5 s is dropped. *handed as
 * wr_sock_flush. */
void wr_sock_finish(struct wr_sock *s, struct evbuffer *out, struct wr_dlvq *dq, uint64_t *handed);
/* Close now; pending output is dropped. */
void wr_sock_abort(struct wr_sock *s);
/* Free it, once wr_conn_sock_closed said the socket is closed. */
void wr_sock_free(struct wr_sock *s);

/* After connection.open: the I/O thread assembles publishes from now on
 * (asm.h), with the negotiated frame_max. Nothing with io_threads = 0. */
void wr_sock_assemble(struct wr_sock *s, uint32_t frame_max);
/* The oldest message assembled for a marker in the connection's input
 * that the core has not taken: taken (take) or only looked at. NULL when
 * none waits. */
struct wr_msg *wr_sock_assembled(struct wr_sock *s, bool take);
/* How many publishes the I/O thread assembled: read once the sock is
 * closed (for the connection's last debug line). */
uint64_t wr_sock_assembled_count(const struct wr_sock *s);

/* Facts of the transport, fixed once the TLS handshake is done (before
 * wr_conn_sock_tls): the protocol and cipher (static strings, NULL for a
 * plain socket), the cipher's parts in RabbitMQ's names (transport.h) and
 * the client's verified certificate (borrowed, NULL when none). */
const char *wr_sock_protocol(const struct wr_sock *s);
const char *wr_sock_cipher(const struct wr_sock *s);
struct wr_tls_suite wr_sock_suite(const struct wr_sock *s);
struct x509_st *wr_sock_peer_cert(const struct wr_sock *s);
bool wr_sock_is_tls(const struct wr_sock *s);
/* Whether there are I/O threads: the sock has buffers of its own,
 * publishes arrive assembled and deliveries may be queued (wherever the
 * sock runs now). */
bool wr_sock_threaded(const struct wr_sock *s);
/* Where the sock runs now: 0 on the core's loop, N on warren-io-N. */
int wr_sock_place(const struct wr_sock *s);

/* Run fn(arg) on the core: now when called there, else with the sock's
 * next batch to the core (a body referenced by the output is released by
 * the core once the I/O thread has written it: deliver.c). */
void wr_sock_core_call(struct wr_sock *s, void (*fn)(void *), void *arg);

#endif
