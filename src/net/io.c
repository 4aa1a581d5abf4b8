/*
 * io.c - the socket half of connections and the I/O threads; see io.h.
 *
 * A sock's life on its thread (phase):
 *   NEW    made by the core; with threads, waiting for the I/O thread to
 *          attach it (create its events on that thread's loop)
 *   OPEN   reading as the core wants, writing what the core handed over
 *   FLUSH  the core finished: writing what is left (at most 5 s), reading
 *          and discarding
 *   LINGER written, write side shut: reading and discarding until the
 *          peer's EOF or 2 s (nginx's lingering close: closing with unread
 *          input would send a reset, and the peer would lose the
 *          connection.close-ok still in its buffer)
 *   CLOSED socket closed, events freed; reported to the core, which frees
 *          the sock with its connection. The thread never touches a sock
 *          after reporting it closed.
 *
 * Hand-off with threads (fields h_*, under the thread's mutex `mu`):
 * the core links a sock on io->to_io (requests h_req, output h_out) and
 * the thread on io->to_core (reports h_rep, input h_in, byte counts, calls
 * to run on the core). Whoever makes a list non-empty writes the other
 * side's eventfd. The core marks a sock `gone` when it takes its CLOSED
 * report (and unlinks it from to_io in the same locked section), and
 * makes no request of it afterwards; the thread skips a sock it finds
 * CLOSED on to_io without touching more than that field.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "broker/msg.h"
#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "net/asm.h"
#include "net/conn.h"
#include "net/deliver.h"
#include "net/io.h"

/* One read callback takes at most this much before the next connection's
 * turn; reads are up to READ_CHUNK each (libevent's own evbuffer_read is
 * capped at 4 KiB, which would cost a syscall per 4 KiB of publishes).
 * 256 KiB, not 64: a turn's batch of 4 KiB publishes, and of the writes
 * they cause, is then big enough that one publisher and one consumer move
 * 460-580k msg/s instead of 285-350k here (scenario e, docs/PERFORMANCE.md);
 * 16 B publishes gain nothing and lose nothing. The price: a flooding
 * connection holds the loop for up to ~1 ms of 16 B publishes per turn
 * instead of ~0.25 ms. Reads stay 64 KiB: a connection holding a partial
 * frame keeps one such buffer. */
#define READ_BUDGET (256u * 1024)
#define READ_CHUNK (64u * 1024)
/* Threads: input the core has not taken yet, above which the socket is
 * not read until it has. */
#define IN_STALL (1u << 20)
/* Publishes with bodies up to this are assembled on the I/O thread
 * (asm.h); larger ones cross as frames, for the core to assemble. */
#define ASM_MAX_BODY (256u * 1024)
/* Room made for a read's markers before the walker runs. */
#define ASM_OUT_CHAIN (16u * 1024)
#define FLUSH_TIMEOUT_MS 5000
#define LINGER_MS 2000
#define TICK_MS 250

enum phase { SK_NEW, SK_OPEN, SK_FLUSH, SK_LINGER, SK_CLOSED };

/* Requests, core to sock. */
#define RQ_ATTACH 1u
#define RQ_READ 2u /* h_want_read changed, or input may be read again */
#define RQ_FINISH 4u
#define RQ_ABORT 8u
#define RQ_ASM 16u  /* assemble publishes from now on (h_frame_max) */
#define RQ_PARK 32u /* give the sock back to the core (placement, below) */

/* Reports, sock to core, handled in this order. */
#define RP_TLS 1u
#define RP_WROTE 2u
#define RP_INPUT 4u
#define RP_ENDED 8u
#define RP_CLOSED 16u
#define RP_STALLED 32u /* input stopped until the core took what was read */
#define RP_PARKED 64u  /* the thread let go of the sock: the core's now */

/* Placement (io_threads > 0): how often the core looks at its own load,
 * and the loads that move the sockets. At or above BUSY_HIGH of the
 * core's time in one look, every socket served on the core moves to an
 * I/O thread; below BUSY_LOW for IDLE_LOOKS looks in a row they come
 * back. With the sockets on threads the core spends a third or less of
 * the CPU per message it spends serving them itself (docs/PERFORMANCE.md),
 * so 0.1 there is well below 0.5 once they are back: no see-saw. */
#define PLACE_MS 100
#define SHUFFLE_MS 20
#define BUSY_HIGH 0.5
#define BUSY_LOW 0.1
#define IDLE_LOOKS 10

struct core_call {
    void (*fn)(void *);
    void *arg;
};

struct wr_io {
    struct wr_iopool *pool;
    struct event_base *base;
    bool threaded;
    unsigned idx;
    pthread_t thread;
    int efd; /* the core wakes this thread */
    struct event *wake_ev, *tick_ev;
    pthread_mutex_t mu;
    struct wr_list to_io;   /* under mu: socks with requests or output (io_node) */
    struct wr_list to_core; /* under mu: socks with reports (core_node) */
    bool stop;              /* under mu */
    bool trim;              /* under mu: give the arena's free top back (wr_iopool_trim) */
    struct wr_list timed;   /* this thread's: socks with a deadline (dl_node) */
    unsigned nsocks;        /* the core's count, for placing new ones */
    /* Under mu: message blocks to free (the core's batch: rel_hand, rel_push). The
     * array is the thread's while free_n > 0: it takes them when it wakes,
     * frees them outside the mutex, and then sets free_n to 0; only then
     * does the core hand the next batch. */
    struct wr_msg **free_v;
    size_t free_n, free_cap;
    uint64_t freed; /* under mu: blocks this thread freed so far (wr_iopool_rel_stats) */
};

struct wr_iopool {
    struct event_base *core;
    _Atomic uint32_t asm_max_body; /* the core sets, the threads read */
    unsigned n;
    struct wr_io *io; /* n of them, or one running on the core when n = 0 */
    int core_efd;     /* the threads wake the core */
    struct event *core_ev;
    /* n > 0: socks served on the core's loop (placement) */
    struct wr_io core_io;
    enum wr_io_placement placement;
    bool direct;        /* new plain socks start on the core; threaded ones come back */
    unsigned low_looks; /* looks in a row below BUSY_LOW */
    uint64_t last_cpu_ns, last_wall_ns;
    struct event *place_ev;
    struct wr_list socks; /* every sock (all_node), for the placement */
    /* The core's: blocks the threads allocated, gathered for the next
     * batch back (wr_iopool_take_releases). */
    struct wr_msgs *msgs;
    struct wr_msg **rel;
    size_t nrel, relcap;
    unsigned rel_next;              /* rel_push's next thread to try */
    unsigned rel_skip;              /* blocks to take before rel_push tries again */
    uint64_t rel_batches, rel_core; /* batches handed; blocks freed here */
};

struct wr_sock {
    struct wr_io *io; /* who runs it now: a thread, or the core (!io->threaded) */
    struct wr_conn *c;
    struct evbuffer *c_in; /* the connection's input buffer (the core's) */
    bool tls;
    /* io_threads > 0: the sock has buffers of its own and the hand-off
     * fields, wherever it runs. On the core ("direct") a hand-off is a
     * call: the input read goes to c_in at once, the output is written
     * in wr_sock_flush. */
    bool split;
    /* ---- the sock's thread ---- */
    struct wr_xport xp;
    struct event *rev, *wev;
    struct evbuffer *in, *out; /* io_threads = 0: the connection's own */
    struct wr_asm as;          /* threads: publishes assembled here (asm.h) */
    struct evbuffer *ain;      /* what the walker passed on, for h_in */
    struct wr_msgq aq;         /* their messages, for h_aq */
    uint32_t r_frame_max;
    bool rev_on, wev_on;
    bool rd_wants_write; /* a TLS read waits for the socket to be writable */
    bool wr_wants_read;  /* a TLS write waits for the socket to be readable */
    bool want_read;      /* the core wants input */
    bool writing;        /* output waits for the socket */
    bool peer_eof;       /* the peer closed its side (or reading failed) */
    bool stalled;        /* threads: input not taken by the core yet */
    bool tls_seen;
    enum phase phase;
    uint64_t deadline_ms; /* FLUSH, LINGER: give up at */
    struct wr_list dl_node;
    struct wr_list run_node; /* the thread's list of socks taken off to_io */
    struct evbuffer *pend;   /* output taken with deliveries to encode among it */
    struct wr_dlvq r_dq;     /* those deliveries */
    struct core_call *ret;   /* messages to hand back to the core */
    uint32_t nret, ret_cap;
    unsigned r_req;
    bool r_want_read, r_unstall;
    uint64_t rbytes, wbytes; /* not reported yet */
    uint32_t reads, writes;
    char why[256];
    /* set before RP_TLS, read-only after */
    const char *proto, *cipher;
    struct wr_tls_suite suite;
    struct x509_st *cert;
    /* ---- hand-off, under io->mu ---- */
    struct wr_list io_node, core_node;
    struct evbuffer *h_in, *h_out;
    struct wr_msgq h_aq; /* the messages of the markers in h_in */
    uint32_t h_frame_max;
    struct wr_dlvq h_dq; /* deliveries to encode among h_out */
    unsigned h_req, h_rep;
    bool h_want_read;
    uint64_t h_rbytes, h_wbytes;
    uint32_t h_reads, h_writes;
    char h_why[256];
    struct core_call *h_calls;
    uint32_t h_ncalls, h_cap;
    bool parked; /* under io->mu: the thread let go of it (RP_PARKED) */
    /* ---- the core's: a batch taken, being handled ---- */
    bool gone;        /* its CLOSED report was taken: no more requests */
    bool c_want_read; /* what the core asked for last */
    bool parking;     /* RQ_PARK asked, RP_PARKED not taken yet */
    bool k_tls;       /* the handshake is done (RP_TLS taken): may run on the core */
    unsigned k_req;   /* requests the thread left when it parked the sock */
    struct wr_list all_node;
    struct wr_list proc_node;
    unsigned t_rep;
    uint64_t t_rbytes, t_wbytes;
    uint32_t t_reads, t_writes;
    char t_why[256];
    struct core_call *t_calls;
    uint32_t t_ncalls, t_cap;
    struct wr_msgq k_aq; /* the messages of the markers in c_in */
};

static _Thread_local struct wr_io *tl_io; /* set on I/O threads */

bool wr_io_on_core(void)
{
    return tl_io == NULL;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void efd_wake(int fd)
{
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

static void efd_drain(int fd)
{
    uint64_t v;
    ssize_t n;
    do
        n = read(fd, &v, sizeof(v));
    while (n < 0 && errno == EINTR);
}

/* ==== message blocks back to the threads ==== */

/* Blocks gathered before a batch goes back to a thread; past REL_PUSH
 * (a busy turn frees tens of thousands) the core pushes the array to a
 * thread itself, trying again every REL_BATCH; and at most (a purge frees
 * a million in one call: past this they are freed here, so that no array
 * grows with the largest burst). */
#define REL_BATCH 256
#define REL_PUSH 16384
#define REL_MAX 65536

static void rel_swap(struct wr_iopool *p, struct wr_io *io);

/* A long array, mid-turn: to the first thread whose array is free, woken
 * (a wake-up per REL_PUSH blocks at least). False when every thread still
 * frees its last batch (or holds its mutex). */
static bool rel_push(struct wr_iopool *p)
{
    for (unsigned k = 0; k < p->n; k++) {
        struct wr_io *io = &p->io[p->rel_next++ % p->n];
        bool handed = false;
        if (pthread_mutex_trylock(&io->mu) != 0)
            continue;
        if (!io->free_n) {
            rel_swap(p, io);
            handed = true;
        }
        pthread_mutex_unlock(&io->mu);
        if (handed) {
            efd_wake(io->efd);
            return true;
        }
    }
    return false;
}

/* msgs->release: a WR_MSG_REMOTE block whose last reference went, kept
 * for the next batch back (handed in request(), under a mutex the core
 * takes anyway, or by rel_push when the array is long). */
static void rel_take(void *ctx, struct wr_msg *m)
{
    struct wr_iopool *p = ctx;
    if (p->nrel >= REL_PUSH) {
        if (p->rel_skip)
            p->rel_skip--;
        else if (!rel_push(p))
            p->rel_skip = REL_BATCH; /* every thread busy: try again later */
    }
    if (p->nrel == REL_MAX) {
        p->rel_core++;
        wr_msg_free_loose(m);
        return;
    }
    if (p->nrel == p->relcap) {
        size_t cap = p->relcap ? p->relcap * 2 : REL_BATCH;
        struct wr_msg **v = realloc(p->rel, cap * sizeof(*v));
        if (!v) {
            p->rel_core++;
            wr_msg_free_loose(m);
            return;
        }
        p->rel = v;
        p->relcap = cap;
    }
    p->rel[p->nrel++] = m;
}

/* Under io->mu, on the core: the gathered blocks go to io when it has
 * none (the arrays swap; the thread frees them when it next wakes, which
 * the request being made ensures). */
static void rel_hand(struct wr_iopool *p, struct wr_io *io)
{
    if (p->nrel >= REL_BATCH && !io->free_n && io->threaded)
        rel_swap(p, io);
}

/* Under io->mu, io's array empty: the arrays swap. */
static void rel_swap(struct wr_iopool *p, struct wr_io *io)
{
    struct wr_msg **v = io->free_v;
    size_t cap = io->free_cap;
    io->free_v = p->rel;
    io->free_cap = p->relcap;
    io->free_n = p->nrel;
    p->rel_batches++;
    p->rel = v;
    p->relcap = cap;
    p->nrel = 0;
}

void wr_iopool_trim(struct wr_iopool *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        struct wr_io *io = &p->io[i];
        pthread_mutex_lock(&io->mu);
        io->trim = true;
        pthread_mutex_unlock(&io->mu);
        efd_wake(io->efd);
    }
}

bool wr_iopool_releases_pending(struct wr_iopool *p)
{
    bool pending = false;
    if (!p->n)
        return false;
    if (p->nrel && !rel_push(p))
        pending = true; /* every thread still frees: the next tick */
    for (unsigned i = 0; i < p->n && !pending; i++) {
        pthread_mutex_lock(&p->io[i].mu);
        pending = p->io[i].free_n > 0;
        pthread_mutex_unlock(&p->io[i].mu);
    }
    return pending;
}

void wr_iopool_rel_stats(struct wr_iopool *p, struct wr_iopool_rel_stats *st)
{
    st->batches = p->rel_batches;
    st->freed_core = p->rel_core;
    st->gathered = p->nrel;
    st->freed_threads = 0;
    for (unsigned i = 0; i < p->n; i++) {
        pthread_mutex_lock(&p->io[i].mu);
        st->freed_threads += p->io[i].freed;
        pthread_mutex_unlock(&p->io[i].mu);
    }
}

void wr_iopool_take_releases(struct wr_iopool *p, struct wr_msgs *msgs)
{
    if (!p->n)
        return;
    p->msgs = msgs;
    msgs->release = rel_take;
    msgs->release_ctx = p;
}

/* ==== the sock's thread ==== */

/* glibc gives a thread arena's free top back to the system only inside
 * free() (a chunk of 64 KiB or more, merged, trims the heap it lies in);
 * malloc_trim, the core's, merges the arena's small free chunks into that
 * top but leaves it mapped. So after the core's trim each thread frees a
 * block of that size from its own arena. (volatile: a malloc and free in
 * a row may otherwise be taken out by the compiler.) */
#define ARENA_TRIM_BLOCK (64u << 10)

static void arena_trim(void)
{
    void *volatile v = malloc(ARENA_TRIM_BLOCK);
    free(v);
}

static void sk_report(struct wr_sock *s, unsigned what);
static void sk_calls_flush(struct wr_sock *s);
static void sk_give_back(void *arg, struct wr_msg *m);
static void release_now(void *arg, struct wr_msg *m);

static void event_want(struct event *ev, bool *on, bool want)
{
    if (want == *on)
        return;
    *on = want;
    if (want)
        event_add(ev, NULL);
    else
        event_del(ev);
}

static bool sk_reading(const struct wr_sock *s)
{
    switch (s->phase) {
    case SK_OPEN:
        return s->want_read && !s->peer_eof && !s->stalled;
    case SK_FLUSH:
    case SK_LINGER:
        return !s->peer_eof;
    default:
        return false;
    }
}

/* Add or remove the socket's events to match what the sock waits for:
 * input, output the socket could not take, and what a TLS read or write
 * needs first (the other direction). */
static void sk_events(struct wr_sock *s)
{
    if (s->phase == SK_NEW || s->phase == SK_CLOSED || !s->rev)
        return; /* !rev: between two loops (placement) */
    event_want(s->rev, &s->rev_on, sk_reading(s) || (s->writing && s->wr_wants_read));
    event_want(s->wev, &s->wev_on, (s->writing && !s->wr_wants_read) || s->rd_wants_write);
}

static void sk_timed(struct wr_sock *s, uint64_t ms)
{
    s->deadline_ms = mono_ms() + ms;
    if (!wr_list_linked(&s->dl_node))
        wr_list_add_tail(&s->io->timed, &s->dl_node);
}

/* Close the socket and free the events; pending output is dropped (its
 * shared bodies go back to the core). The caller reports RP_CLOSED. */
static void sk_close(struct wr_sock *s)
{
    if (s->phase == SK_CLOSED)
        return;
    s->phase = SK_CLOSED;
    if (s->rev)
        event_free(s->rev);
    if (s->wev)
        event_free(s->wev);
    s->rev = s->wev = NULL;
    s->rev_on = s->wev_on = false;
    wr_list_del(&s->dl_node);
    if (s->split) {
        pthread_mutex_lock(&s->io->mu);
        evbuffer_add_buffer(s->out, s->h_out);
        if (!s->r_dq.n) {
            struct wr_dlvq t = s->r_dq;
            s->r_dq = s->h_dq;
            s->h_dq = t;
        }
        pthread_mutex_unlock(&s->io->mu);
        wr_dlvq_drop(&s->r_dq, sk_give_back, s);
        evbuffer_drain(s->pend, evbuffer_get_length(s->pend));
    }
    evbuffer_drain(s->out, evbuffer_get_length(s->out));
    s->writing = false;
    s->xp.ops->close(&s->xp);
    sk_calls_flush(s);
}

/* A call for the core to run with the sock's next batch (sk_calls_flush). */
static void sk_give(struct wr_sock *s, void (*fn)(void *), void *arg)
{
    if (s->nret == s->ret_cap) {
        uint32_t cap = s->ret_cap ? s->ret_cap * 2 : 64;
        struct core_call *n = realloc(s->ret, cap * sizeof(*n));
        if (!n) {
            /* A leak rather than the core's state touched from here. */
            wr_log(WR_LOG_ERROR, "out of memory handing a message back to the core");
            return;
        }
        s->ret = n;
        s->ret_cap = cap;
    }
    s->ret[s->nret++] = (struct core_call){fn, arg};
}

/* A delivered message (deliver.h) goes back to the core. */
static void sk_give_back(void *arg, struct wr_msg *m)
{
    sk_give(arg, wr_deliver_release, m);
}

/* The socket failed: close it and tell the core why. */
static void sk_fail(struct wr_sock *s, const char *why)
{
    snprintf(s->why, sizeof(s->why), "%s", why);
    s->peer_eof = true;
    sk_close(s);
    sk_report(s, RP_ENDED | RP_CLOSED);
}

/* Output written: shut our side and wait for the peer's EOF. False when
 * the sock closed (reported: on a thread, the core may free it at once,
 * so the caller touches it no more). */
static bool sk_linger(struct wr_sock *s)
{
    s->phase = SK_LINGER;
    if (s->peer_eof || !s->xp.ops->shutdown(&s->xp)) {
        sk_close(s);
        sk_report(s, RP_CLOSED);
        return false;
    }
    sk_timed(s, LINGER_MS);
    sk_events(s);
    return true;
}

/* Write what the transport takes now; when it cannot take everything,
 * wait for the event it names. False when the sock failed (closed). */
static bool sk_write(struct wr_sock *s)
{
    size_t sent;
    enum wr_xp_status st = s->xp.ops->write(&s->xp, s->out, &sent);
    if (sent) {
        s->wbytes += (uint64_t)sent;
        s->writes++;
    }
    if (st == WR_XP_ERROR) {
        sk_fail(s, wr_xport_why(&s->xp));
        return false;
    }
    s->writing = st != WR_XP_OK;
    s->wr_wants_read = st == WR_XP_WANT_READ;
    sk_events(s);
    return true;
}

/* After a write step. False when the sock closed (as sk_linger). */
static bool sk_wrote(struct wr_sock *s)
{
    if (s->phase == SK_FLUSH)
        return s->writing || sk_linger(s);
    if (s->wbytes)
        sk_report(s, RP_WROTE);
    return true;
}

/* FLUSH, LINGER: read and throw away until EOF. */
static void sk_discard(struct wr_sock *s)
{
    char sink[16384];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(s->xp.fd, sink, sizeof(sink));
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            s->peer_eof = true;
            if (s->phase == SK_LINGER) {
                sk_close(s);
                sk_report(s, RP_CLOSED);
                return;
            }
            sk_events(s);
        }
        return;
    }
}

/* Read what the transport has, up to READ_BUDGET, and hand it over.
 * False when the sock failed (closed and reported, as sk_linger). */
static bool sk_read(struct wr_sock *s)
{
    size_t got = 0;
    unsigned rep = RP_INPUT;

    while (got < READ_BUDGET) {
        size_t n;
        enum wr_xp_status st = s->xp.ops->read(&s->xp, s->in, READ_CHUNK, &n);
        if (n) {
            got += n;
            s->rbytes += (uint64_t)n;
            s->reads++;
        }
        if (st == WR_XP_OK)
            continue;
        if (st == WR_XP_WANT_READ)
            break; /* the socket is drained */
        if (st == WR_XP_WANT_WRITE) {
            s->rd_wants_write = true; /* TLS: a handshake message to send first */
            sk_events(s);
            break;
        }
        if (st == WR_XP_EOF) {
            /* Frames already read still count (a close-ok, say). */
            s->peer_eof = true;
            s->why[0] = 0;
            sk_events(s);
            sk_report(s, RP_INPUT | RP_ENDED);
            return true;
        }
        sk_fail(s, wr_xport_why(&s->xp));
        return false;
    }
    if (!s->tls_seen && s->xp.handshake_done) {
        s->tls_seen = true;
        s->proto = s->xp.ops->protocol(&s->xp);
        s->cipher = s->xp.ops->cipher(&s->xp);
        s->suite = s->xp.ops->suite(&s->xp);
        s->cert = s->xp.ops->peer_cert(&s->xp);
        if (s->cert)
            X509_up_ref(s->cert);
        rep |= RP_TLS;
    }
    if (got || (rep & RP_TLS) || !s->io->threaded)
        sk_report(s, rep);
    /* Out of budget: TLS may hold decrypted or read-ahead records that the
     * socket will not signal again. (Not when the socket was drained: a
     * partial record would wake us for nothing.) */
    if (got >= READ_BUDGET && s->phase == SK_OPEN && sk_reading(s) &&
        s->xp.ops->has_pending(&s->xp))
        event_active(s->rev, EV_READ, 1);
    return true;
}

static void sk_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_sock *s = arg;
    (void)fd;
    (void)what;

    if (s->wr_wants_read && s->writing) {
        /* A TLS write waited for this. */
        if (!sk_write(s) || !sk_wrote(s) || !sk_reading(s))
            return;
    }
    if (s->phase == SK_FLUSH || s->phase == SK_LINGER)
        sk_discard(s);
    else if (s->phase == SK_OPEN)
        sk_read(s);
}

static void sk_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_sock *s = arg;
    (void)fd;
    (void)what;

    if (s->rd_wants_write) {
        /* A TLS read waited for this. */
        s->rd_wants_write = false;
        sk_events(s);
        if (s->phase == SK_OPEN && sk_reading(s) && !sk_read(s))
            return;
        if (s->phase == SK_CLOSED)
            return; /* on the core: closed by what the read reported */
    }
    if (!s->writing || s->wr_wants_read)
        return;
    if (sk_write(s))
        sk_wrote(s);
}

/* Make the socket's events on the loop of the sock's thread (or the
 * core's); on failure neither exists. */
static bool sk_attach(struct wr_sock *s)
{
    s->rev = event_new(s->io->base, s->xp.fd, EV_READ | EV_PERSIST, sk_read_cb, s);
    s->wev = event_new(s->io->base, s->xp.fd, EV_WRITE | EV_PERSIST, sk_write_cb, s);
    if (!s->rev || !s->wev) {
        if (s->rev)
            event_free(s->rev);
        if (s->wev)
            event_free(s->wev);
        s->rev = s->wev = NULL;
        return false;
    }
    s->phase = SK_OPEN;
    sk_events(s);
    return true;
}

/* Free the socket's events: the sock leaves this loop for another. */
static void sk_detach(struct wr_sock *s)
{
    event_free(s->rev);
    event_free(s->wev);
    s->rev = s->wev = NULL;
    s->rev_on = s->wev_on = false;
}

/* The thread lets go of an open sock the core asked back (RQ_PARK): its
 * events are freed here and the core makes them again on its loop. What
 * it holds (buffers, the walker, TLS) goes with it; nothing on this
 * thread refers to it afterwards. */
static void sk_park(struct wr_sock *s)
{
    sk_detach(s);
    sk_report(s, RP_PARKED);
}

/* The core finished: write what is left, then linger. */
static void sk_finish(struct wr_sock *s)
{
    if (s->phase != SK_OPEN)
        return;
    s->phase = SK_FLUSH;
    if (evbuffer_get_length(s->out) == 0) {
        sk_linger(s);
        return;
    }
    sk_timed(s, FLUSH_TIMEOUT_MS);
    if (!s->writing) {
        s->writing = true;
        s->wr_wants_read = false;
    }
    sk_events(s);
}

/* Input wanted again: what TLS holds will not be signalled by the socket. */
static void sk_read_changed(struct wr_sock *s)
{
    sk_events(s);
    if (s->phase == SK_OPEN && sk_reading(s) && s->xp.ops->has_pending(&s->xp))
        event_active(s->rev, EV_READ, 1);
}

static void io_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_io *io = arg;
    struct wr_list *it, *tmp;
    uint64_t now = mono_ms();
    (void)fd;
    (void)what;
    wr_list_each_safe(it, tmp, &io->timed)
    {
        struct wr_sock *s = wr_container_of(it, struct wr_sock, dl_node);
        if (now < s->deadline_ms)
            continue;
        /* FLUSH: output not drained in time; LINGER: no EOF in time. */
        sk_close(s);
        sk_report(s, RP_CLOSED);
    }
}

/* Threads: the core handed over requests or output. */
static void io_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_io *io = arg;
    struct wr_list run;
    struct wr_msg **fv;
    size_t fn;
    bool stop, trim;
    (void)what;

    efd_drain(fd);
    wr_list_init(&run);
    pthread_mutex_lock(&io->mu);
    stop = io->stop;
    trim = io->trim;
    io->trim = false;
    fv = io->free_v;
    fn = io->free_n;
    while (!wr_list_empty(&io->to_io)) {
        struct wr_sock *s = wr_container_of(io->to_io.next, struct wr_sock, io_node);
        wr_list_del(&s->io_node);
        if (s->phase == SK_CLOSED || s->parked)
            continue; /* reported, the core's now: it takes the requests */
        s->r_req = s->h_req;
        s->h_req = 0;
        s->r_want_read = s->h_want_read;
        s->r_frame_max = s->h_frame_max;
        s->r_unstall = s->stalled && evbuffer_get_length(s->h_in) < IN_STALL;
        if (s->h_dq.n) {
            struct wr_dlvq t = s->r_dq; /* empty: encoded in the last wake-up */
            s->r_dq = s->h_dq;
            s->h_dq = t;
            evbuffer_add_buffer(s->pend, s->h_out);
        } else if (evbuffer_get_length(s->h_out)) {
            evbuffer_add_buffer(s->out, s->h_out);
        }
        wr_list_add_tail(&run, &s->run_node);
    }
    pthread_mutex_unlock(&io->mu);

    while (!wr_list_empty(&run)) {
        struct wr_sock *s = wr_container_of(run.next, struct wr_sock, run_node);
        wr_list_del(&s->run_node);
        if (s->r_dq.n) {
            /* The deliveries, where they belong among the output. */
            wr_dlvq_encode(&s->r_dq, s->pend, s->out, sk_give_back, s);
            sk_calls_flush(s);
        }
        if (s->r_req & RQ_ASM)
            wr_asm_enable(&s->as, s->r_frame_max, 0); /* max_body: per run */
        if ((s->r_req & RQ_ATTACH) && !sk_attach(s)) {
            sk_fail(s, "out of memory");
            continue;
        }
        if (s->phase == SK_CLOSED)
            continue;
        if (s->r_req & RQ_ABORT) {
            sk_close(s);
            sk_report(s, RP_CLOSED);
            continue;
        }
        if ((s->r_req & RQ_READ) || s->r_unstall) {
            s->want_read = s->r_want_read;
            if (s->r_unstall)
                s->stalled = false;
            sk_read_changed(s);
            if (s->phase == SK_CLOSED)
                continue;
        }
        if (s->r_req & RQ_FINISH) {
            sk_finish(s);
            continue;
        }
        if (s->phase == SK_OPEN && !s->writing && evbuffer_get_length(s->out)) {
            if (!sk_write(s) || !sk_wrote(s))
                continue; /* closed and reported: the core's now */
        }
        if ((s->r_req & RQ_PARK) && s->phase == SK_OPEN)
            sk_park(s); /* not open: closing, and reported so in time */
    }
    /* The blocks, after the output (they wait on nothing). */
    if (fn) {
        for (size_t i = 0; i < fn; i++)
            wr_msg_free_loose(fv[i]);
        pthread_mutex_lock(&io->mu);
        io->free_n = 0; /* the array is the core's again: the next batch may come */
        io->freed += fn;
        pthread_mutex_unlock(&io->mu);
    }
    if (trim)
        arena_trim();
    if (stop)
        event_base_loopbreak(io->base);
}

static void *io_main(void *arg)
{
    struct wr_io *io = arg;
    tl_io = io;
    wr_msg_thread_remote();
    event_base_dispatch(io->base);
    return NULL;
}

/* ==== crossing: sock to core ==== */

/* io_threads = 0: the core is called now. */
static void report_now(struct wr_sock *s, unsigned what)
{
    struct wr_conn *c = s->c;
    uint64_t rb = s->rbytes, wb = s->wbytes;
    uint32_t rn = s->reads, wn = s->writes;

    s->rbytes = s->wbytes = 0;
    s->reads = s->writes = 0;
    wr_clock_update();
    if (what & RP_TLS)
        wr_conn_sock_tls(c);
    if (wb || wn)
        wr_conn_sock_wrote(c, wb, wn);
    if (what & RP_INPUT)
        wr_conn_sock_input(c, rb, rn);
    if (what & RP_ENDED)
        wr_conn_sock_ended(c, s->why[0] ? s->why : NULL);
    if (what & RP_CLOSED)
        wr_conn_sock_closed(c);
}

/* Publishes read into s->in, assembled as far as they go (asm.h): the
 * markers and raw frames into s->ain, their messages into s->aq. */
static void sk_walk(struct wr_sock *s, unsigned what)
{
    if (evbuffer_get_length(s->in)) {
        /* One chain for this read's markers, not one per kilobyte: the
         * core frees the chains, each a lock of this thread's arena. */
        if (s->as.frame_max)
            evbuffer_expand(s->ain, ASM_OUT_CHAIN);
        s->as.max_body = atomic_load_explicit(&s->io->pool->asm_max_body, memory_order_relaxed);
        wr_asm_run(&s->as, s->in, s->ain, &s->aq, (what & (RP_ENDED | RP_CLOSED)) != 0);
    }
}

/* A split sock on the core: what the thread would hand over in a batch
 * goes to the connection at once. */
static void report_direct(struct wr_sock *s, unsigned what)
{
    sk_walk(s, what);
    if (evbuffer_get_length(s->ain))
        evbuffer_add_buffer(s->c_in, s->ain);
    if (s->aq.n && wr_msgq_move(&s->k_aq, &s->aq) < 0)
        s->as.lost = true; /* the core meets markers it has no message for: 501 */
    if (what & RP_CLOSED)
        s->gone = true;
    report_now(s, what);
}

/* Tell the core. With threads: the input read so far, the byte counts and
 * `what` join the sock's next batch; after RP_CLOSED (or RP_PARKED) the
 * sock is the core's. */
static void sk_report(struct wr_sock *s, unsigned what)
{
    struct wr_io *io = s->io;
    bool wake = false;

    if (!io->threaded) {
        if (s->split)
            report_direct(s, what);
        else
            report_now(s, what);
        return;
    }
    sk_walk(s, what);
    pthread_mutex_lock(&io->mu);
    if (evbuffer_get_length(s->ain))
        evbuffer_add_buffer(s->h_in, s->ain);
    if (s->aq.n && wr_msgq_move(&s->h_aq, &s->aq) < 0)
        s->as.lost = true; /* the core meets markers it has no message for: 501 */
    s->h_rbytes += s->rbytes;
    s->h_wbytes += s->wbytes;
    s->h_reads += s->reads;
    s->h_writes += s->writes;
    s->rbytes = s->wbytes = 0;
    s->reads = s->writes = 0;
    if (s->h_wbytes || s->h_writes)
        what |= RP_WROTE;
    if (what & RP_ENDED)
        memcpy(s->h_why, s->why, sizeof(s->h_why));
    if (what & RP_PARKED)
        s->parked = true;
    else if (!(what & RP_CLOSED) && !s->stalled && evbuffer_get_length(s->h_in) >= IN_STALL) {
        s->stalled = true;
        what |= RP_STALLED;
    }
    s->h_rep |= what;
    if (!wr_list_linked(&s->core_node)) {
        wake = wr_list_empty(&io->to_core);
        wr_list_add_tail(&io->to_core, &s->core_node);
    }
    if (what & RP_STALLED)
        sk_events(s); /* still ours: not closed */
    pthread_mutex_unlock(&io->mu);
    if (wake)
        efd_wake(io->pool->core_efd);
}

void wr_sock_core_call(struct wr_sock *s, void (*fn)(void *), void *arg)
{
    if (wr_io_on_core()) {
        fn(arg);
        return;
    }
    sk_give(s, fn, arg);
    sk_calls_flush(s);
}

/* Hand the calls gathered so far (sk_give) to the core, in one batch. */
static void sk_calls_flush(struct wr_sock *s)
{
    struct wr_io *io = s->io;
    bool wake = false;

    if (!s->nret)
        return;
    if (!io->threaded) {
        /* On the core (a split sock served there): now. */
        uint32_t n = s->nret;
        s->nret = 0;
        for (uint32_t i = 0; i < n; i++)
            s->ret[i].fn(s->ret[i].arg);
        return;
    }
    pthread_mutex_lock(&io->mu);
    if (s->h_ncalls + s->nret > s->h_cap) {
        uint32_t cap = s->h_cap ? s->h_cap : 64;
        struct core_call *n;
        while (cap < s->h_ncalls + s->nret)
            cap *= 2;
        if (!(n = realloc(s->h_calls, cap * sizeof(*n)))) {
            pthread_mutex_unlock(&io->mu);
            wr_log(WR_LOG_ERROR, "out of memory handing delivered messages back to the core");
            s->nret = 0;
            return;
        }
        s->h_calls = n;
        s->h_cap = cap;
    }
    memcpy(s->h_calls + s->h_ncalls, s->ret, s->nret * sizeof(*s->ret));
    s->h_ncalls += s->nret;
    s->nret = 0;
    if (!wr_list_linked(&s->core_node)) {
        wake = wr_list_empty(&io->to_core);
        wr_list_add_tail(&io->to_core, &s->core_node);
    }
    pthread_mutex_unlock(&io->mu);
    if (wake)
        efd_wake(io->pool->core_efd);
}

/* Under io->mu: the thread parked the sock; the core takes it, with the
 * requests and output the thread left (handed over after it parked). Its
 * events are made on the core's loop at the start of handle_batch. */
static void park_take(struct wr_sock *s)
{
    struct wr_io *core = &s->io->pool->core_io;

    wr_list_del(&s->io_node);
    s->k_req = s->h_req;
    s->h_req = 0;
    s->parked = false;
    s->parking = false;
    if (s->h_dq.n) {
        struct wr_dlvq t = s->r_dq; /* empty: the thread encoded it */
        s->r_dq = s->h_dq;
        s->h_dq = t;
        evbuffer_add_buffer(s->pend, s->h_out);
    } else if (evbuffer_get_length(s->h_out)) {
        evbuffer_add_buffer(s->out, s->h_out);
    }
    s->io->nsocks--;
    s->io = core;
    core->nsocks++;
    s->stalled = false; /* its input was taken with this batch */
    s->want_read = s->c_want_read;
}

/* Under io->mu: the core takes a sock's batch. */
static void take_batch(struct wr_sock *s, bool *resume)
{
    struct core_call *calls = s->t_calls;
    uint32_t cap = s->t_cap;

    s->t_rep = s->h_rep;
    s->h_rep = 0;
    if (evbuffer_get_length(s->h_in))
        evbuffer_add_buffer(s->c_in, s->h_in);
    if (s->h_aq.n && wr_msgq_move(&s->k_aq, &s->h_aq) < 0)
        wr_msgq_free(&s->h_aq); /* out of memory: their markers are answered 501 */
    s->t_rbytes = s->h_rbytes;
    s->t_wbytes = s->h_wbytes;
    s->t_reads = s->h_reads;
    s->t_writes = s->h_writes;
    s->h_rbytes = s->h_wbytes = 0;
    s->h_reads = s->h_writes = 0;
    if (s->t_rep & RP_ENDED)
        memcpy(s->t_why, s->h_why, sizeof(s->t_why));
    s->t_calls = s->h_calls;
    s->t_ncalls = s->h_ncalls;
    s->t_cap = s->h_cap;
    s->h_calls = calls;
    s->h_cap = cap;
    s->h_ncalls = 0;
    if (s->t_rep & RP_CLOSED) {
        s->gone = true;
        wr_list_del(&s->io_node);
    } else if (s->t_rep & RP_PARKED) {
        park_take(s);
    } else if (s->t_rep & RP_STALLED) {
        /* The input was taken: the thread may read again. */
        s->h_req |= RQ_READ;
        if (!wr_list_linked(&s->io_node)) {
            *resume = *resume || wr_list_empty(&s->io->to_io);
            wr_list_add_tail(&s->io->to_io, &s->io_node);
        }
    }
}

/* A parked sock, now on the core: its events there, and the output the
 * thread had not written. Before the batch's reports, which may ask the
 * sock for things (it answers as a sock on the core). */
static void unpark_start(struct wr_sock *s)
{
    if (s->r_dq.n)
        wr_dlvq_encode(&s->r_dq, s->pend, s->out, release_now, NULL);
    if (s->k_req & RQ_ASM)
        wr_asm_enable(&s->as, s->h_frame_max, 0);
    sk_attach(s); /* out of memory: no events, failed in unpark_finish */
}

/* After the reports: what the thread left undone. */
static void unpark_finish(struct wr_sock *s)
{
    unsigned req = s->k_req;

    s->k_req = 0;
    if (s->phase != SK_OPEN)
        return; /* closed or finishing meanwhile */
    if (!s->rev) {
        sk_fail(s, "out of memory");
        return;
    }
    if (req & RQ_ABORT) {
        sk_close(s);
        sk_report(s, RP_CLOSED);
        return;
    }
    if (req & RQ_FINISH) {
        sk_finish(s);
        return;
    }
    sk_read_changed(s);
    if (s->phase == SK_OPEN && !s->writing && evbuffer_get_length(s->out) && sk_write(s))
        sk_wrote(s);
}

static void handle_batch(struct wr_sock *s)
{
    struct wr_conn *c = s->c;
    unsigned rep = s->t_rep;

    for (uint32_t i = 0; i < s->t_ncalls; i++)
        s->t_calls[i].fn(s->t_calls[i].arg);
    s->t_ncalls = 0;
    if (rep & RP_PARKED)
        unpark_start(s);
    if (rep & RP_TLS) {
        s->k_tls = true;
        wr_conn_sock_tls(c);
    }
    if (rep & RP_WROTE)
        wr_conn_sock_wrote(c, s->t_wbytes, s->t_writes);
    if (rep & RP_INPUT)
        wr_conn_sock_input(c, s->t_rbytes, s->t_reads);
    if (rep & RP_ENDED)
        wr_conn_sock_ended(c, s->t_why[0] ? s->t_why : NULL);
    if (rep & RP_CLOSED)
        wr_conn_sock_closed(c);
    else if (rep & RP_PARKED)
        unpark_finish(s);
}

/* The core's wake-up: every thread's reports, in one turn. */
static void core_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_iopool *p = arg;
    struct wr_list proc;
    (void)what;

    efd_drain(fd);
    wr_clock_update();
    wr_list_init(&proc);
    for (unsigned i = 0; i < p->n; i++) {
        struct wr_io *io = &p->io[i];
        bool resume = false;
        pthread_mutex_lock(&io->mu);
        while (!wr_list_empty(&io->to_core)) {
            struct wr_sock *s = wr_container_of(io->to_core.next, struct wr_sock, core_node);
            wr_list_del(&s->core_node);
            take_batch(s, &resume);
            wr_list_add_tail(&proc, &s->proc_node);
        }
        pthread_mutex_unlock(&io->mu);
        if (resume)
            efd_wake(io->efd);
    }
    while (!wr_list_empty(&proc)) {
        struct wr_sock *s = wr_container_of(proc.next, struct wr_sock, proc_node);
        wr_list_del(&s->proc_node);
        handle_batch(s);
    }
}

/* ==== crossing: core to sock ==== */

/* Under io->mu: queue the sock for its thread; true when it must be woken. */
static bool to_thread(struct wr_sock *s)
{
    if (wr_list_linked(&s->io_node))
        return false;
    bool wake = wr_list_empty(&s->io->to_io);
    wr_list_add_tail(&s->io->to_io, &s->io_node);
    return wake;
}

static void release_now(void *arg, struct wr_msg *m)
{
    (void)arg;
    wr_deliver_release(m);
}

/* Returns the bytes of output handed over (deliveries included). */
static uint64_t request(struct wr_sock *s, unsigned req, struct evbuffer *out, struct wr_dlvq *dq)
{
    struct wr_io *io = s->io;
    uint64_t n = (out ? evbuffer_get_length(out) : 0) + (dq ? dq->bytes : 0);
    bool wake;

    pthread_mutex_lock(&io->mu);
    s->h_req |= req;
    if (dq && dq->n && !wr_dlvq_append(&s->h_dq, evbuffer_get_length(s->h_out), dq)) {
        /* Out of memory for the thread's queue: encoded here instead. */
        struct evbuffer *enc = evbuffer_new();
        pthread_mutex_unlock(&io->mu);
        if (enc) {
            wr_dlvq_encode(dq, out, enc, release_now, NULL);
            evbuffer_add_buffer(out, enc);
            evbuffer_free(enc);
        } else {
            n -= dq->bytes;
            wr_dlvq_drop(dq, release_now, NULL); /* not delivered: see the log */
            wr_log(WR_LOG_ERROR, "out of memory: deliveries dropped");
        }
        pthread_mutex_lock(&io->mu);
    }
    if (out && evbuffer_get_length(out))
        evbuffer_add_buffer(s->h_out, out);
    wake = to_thread(s);
    rel_hand(io->pool, io);
    pthread_mutex_unlock(&io->mu);
    if (wake)
        efd_wake(io->efd);
    return n;
}

void wr_sock_want_read(struct wr_sock *s, bool want)
{
    if (!s->io->threaded) {
        if (s->phase == SK_CLOSED || s->want_read == want)
            return;
        s->want_read = s->c_want_read = want;
        sk_read_changed(s);
        return;
    }
    if (s->gone || s->c_want_read == want)
        return;
    s->c_want_read = want;
    pthread_mutex_lock(&s->io->mu);
    s->h_want_read = want;
    pthread_mutex_unlock(&s->io->mu);
    request(s, RQ_READ, NULL, NULL);
}

/* A split sock on the core takes the connection's output (and encodes
 * its deliveries) into its own buffer. */
static void take_output(struct wr_sock *s, struct evbuffer *out, struct wr_dlvq *dq,
                        uint64_t *handed)
{
    *handed += evbuffer_get_length(out) + dq->bytes;
    if (dq->n)
        wr_dlvq_encode(dq, out, s->out, release_now, NULL);
    else
        evbuffer_add_buffer(s->out, out);
}

void wr_sock_flush(struct wr_sock *s, struct evbuffer *out, struct wr_dlvq *dq, uint64_t *handed)
{
    if (!s->io->threaded) {
        if (s->phase != SK_OPEN)
            return;
        if (s->split)
            take_output(s, out, dq, handed); /* else `out` is s->out */
        if (!s->writing && evbuffer_get_length(s->out) && sk_write(s))
            sk_wrote(s);
        return;
    }
    if (s->gone || (!evbuffer_get_length(out) && !dq->n))
        return;
    *handed += request(s, 0, out, dq);
}

void wr_sock_finish(struct wr_sock *s, struct evbuffer *out, struct wr_dlvq *dq, uint64_t *handed)
{
    if (!s->io->threaded) {
        if (s->split && s->phase == SK_OPEN)
            take_output(s, out, dq, handed);
        sk_finish(s);
        return;
    }
    if (!s->gone)
        *handed += request(s, RQ_FINISH, out, dq);
}

void wr_sock_abort(struct wr_sock *s)
{
    if (!s->io->threaded) {
        if (s->phase == SK_CLOSED)
            return;
        sk_close(s);
        sk_report(s, RP_CLOSED);
        return;
    }
    if (!s->gone)
        request(s, RQ_ABORT, NULL, NULL);
}

void wr_sock_assemble(struct wr_sock *s, uint32_t frame_max)
{
    if (!s->split || s->gone)
        return;
    if (!s->io->threaded) {
        wr_asm_enable(&s->as, frame_max, 0); /* max_body: per run */
        return;
    }
    pthread_mutex_lock(&s->io->mu);
    s->h_frame_max = frame_max;
    pthread_mutex_unlock(&s->io->mu);
    request(s, RQ_ASM, NULL, NULL);
}

uint64_t wr_sock_assembled_count(const struct wr_sock *s)
{
    return s->as.assembled; /* the thread is done with s once it is closed */
}

struct wr_msg *wr_sock_assembled(struct wr_sock *s, bool take)
{
    if (!s->k_aq.n)
        return NULL;
    return take ? wr_msgq_pop(&s->k_aq) : s->k_aq.a[s->k_aq.head];
}

const char *wr_sock_protocol(const struct wr_sock *s)
{
    return s->proto;
}

struct wr_tls_suite wr_sock_suite(const struct wr_sock *s)
{
    return s->suite;
}

const char *wr_sock_cipher(const struct wr_sock *s)
{
    return s->cipher;
}

struct x509_st *wr_sock_peer_cert(const struct wr_sock *s)
{
    return s->cert;
}

bool wr_sock_is_tls(const struct wr_sock *s)
{
    return s->tls;
}

bool wr_sock_threaded(const struct wr_sock *s)
{
    return s->split;
}

int wr_sock_place(const struct wr_sock *s)
{
    return s->io->threaded ? (int)s->io->idx + 1 : 0;
}

/* The I/O thread with the fewest socks. */
static struct wr_io *least_loaded(struct wr_iopool *p)
{
    struct wr_io *io = &p->io[0];
    for (unsigned i = 1; i < p->n; i++)
        if (p->io[i].nsocks < io->nsocks)
            io = &p->io[i];
    return io;
}

static void buf_free(struct evbuffer *b)
{
    if (b)
        evbuffer_free(b);
}

static void sk_bufs_free(struct wr_sock *s)
{
    buf_free(s->h_out);
    buf_free(s->h_in);
    buf_free(s->out);
    buf_free(s->in);
    buf_free(s->pend);
    buf_free(s->ain);
}

struct wr_sock *wr_sock_new(struct wr_iopool *p, struct wr_conn *c, const struct wr_xport *xp,
                            struct evbuffer *c_in, struct evbuffer *c_out)
{
    struct wr_sock *s;

    if (!(s = calloc(1, sizeof(*s))))
        return NULL;
    s->c = c;
    s->c_in = c_in;
    s->xp = *xp;
    s->tls = xp->ops != &wr_xport_plain;
    s->split = p->n > 0;
    wr_list_init(&s->dl_node);
    wr_list_init(&s->run_node);
    wr_list_init(&s->io_node);
    wr_list_init(&s->core_node);
    wr_list_init(&s->proc_node);
    if (!s->split) {
        s->io = &p->io[0];
        s->in = c_in;
        s->out = c_out;
        if (!sk_attach(s)) {
            free(s);
            return NULL;
        }
        s->io->nsocks++;
        return s;
    }
    s->in = evbuffer_new();
    s->out = evbuffer_new();
    s->h_in = evbuffer_new();
    s->h_out = evbuffer_new();
    s->pend = evbuffer_new();
    s->ain = evbuffer_new();
    wr_asm_init(&s->as);
    if (!s->in || !s->out || !s->h_in || !s->h_out || !s->pend || !s->ain) {
        sk_bufs_free(s);
        free(s);
        return NULL;
    }
    /* A TLS handshake costs the core a millisecond or more: on a thread
     * (the sock may come to the core once it is done). */
    s->io = p->direct && !s->tls ? &p->core_io : least_loaded(p);
    if (!s->io->threaded) {
        if (!sk_attach(s)) {
            sk_bufs_free(s);
            free(s);
            return NULL;
        }
    } else {
        request(s, RQ_ATTACH, NULL, NULL);
    }
    s->io->nsocks++;
    wr_list_add_tail(&p->socks, &s->all_node);
    return s;
}

void wr_sock_free(struct wr_sock *s)
{
    if (!s)
        return;
    if (s->phase != SK_CLOSED && !s->io->threaded)
        sk_close(s); /* not reached: the connection is freed once closed */
    if (s->split) {
        /* Output handed over after the thread closed the socket, with
         * the bodies it references (released here, on the core). */
        wr_dlvq_drop(&s->h_dq, release_now, NULL);
        wr_dlvq_drop(&s->r_dq, release_now, NULL);
        wr_dlvq_free(&s->h_dq);
        wr_dlvq_free(&s->r_dq);
        sk_bufs_free(s);
        wr_msgq_free(&s->aq);
        wr_msgq_free(&s->h_aq);
        wr_msgq_free(&s->k_aq);
        wr_list_del(&s->all_node);
    }
    if (s->cert)
        X509_free(s->cert);
    for (uint32_t i = 0; i < s->nret; i++) /* never reached: handed over before closing */
        s->ret[i].fn(s->ret[i].arg);
    free(s->ret);
    free(s->h_calls);
    free(s->t_calls);
    s->io->nsocks--;
    free(s);
}

/* ==== placement (io_threads > 0) ====
 *
 * Redis 6 stops its I/O threads while few clients have output waiting:
 * the hand-off to a thread and back costs two wake-ups, which a lightly
 * loaded broker pays in latency for nothing. Here the core looks at its
 * own CPU time every PLACE_MS: while it is mostly idle, plain sockets run
 * on its loop ("direct", no hand-off), and once it is busy they move to
 * the I/O threads. A move happens only here, between two loop turns. */

/* Core to thread: the events are freed here and made on the thread's
 * loop (RQ_ATTACH); the mutex orders everything the core did before. */
static void sk_to_thread(struct wr_sock *s, struct wr_io *io)
{
    sk_detach(s);
    s->io->nsocks--;
    s->io = io;
    io->nsocks++;
    s->c_want_read = s->want_read;
    pthread_mutex_lock(&io->mu);
    s->h_want_read = s->want_read;
    pthread_mutex_unlock(&io->mu);
    request(s, RQ_ATTACH | RQ_READ, NULL, NULL);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Move every sock to where the mode says. */
static void place_all(struct wr_iopool *p)
{
    struct wr_list *it;
    wr_list_each(it, &p->socks)
    {
        struct wr_sock *s = wr_container_of(it, struct wr_sock, all_node);
        if (p->direct) {
            if (s->io->threaded && !s->gone && !s->parking && (!s->tls || s->k_tls)) {
                s->parking = true;
                request(s, RQ_PARK, NULL, NULL);
            }
        } else if (!s->io->threaded && s->phase == SK_OPEN) {
            sk_to_thread(s, least_loaded(p));
        }
    }
}

static void place_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_iopool *p = arg;
    uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID), wall = clock_ns(CLOCK_MONOTONIC);
    double busy = wall > p->last_wall_ns
                      ? (double)(cpu - p->last_cpu_ns) / (double)(wall - p->last_wall_ns)
                      : 0;
    unsigned on_core = p->core_io.nsocks, on_threads = 0;
    (void)fd;
    (void)what;

    p->last_cpu_ns = cpu;
    p->last_wall_ns = wall;
    if (p->placement == WR_IO_SHUFFLE) {
        p->direct = !p->direct;
    } else if (p->direct) {
        if (busy >= BUSY_HIGH) {
            p->direct = false;
            p->low_looks = 0;
            wr_log(WR_LOG_DEBUG,
                   "the core was busy %.0f%% of the last %u ms: sockets to the "
                   "I/O threads",
                   busy * 100, PLACE_MS);
        }
    } else if (busy >= BUSY_LOW) {
        p->low_looks = 0;
    } else if (++p->low_looks >= IDLE_LOOKS) {
        p->direct = true;
        wr_log(WR_LOG_DEBUG, "the core was busy under %.0f%% for %u ms: sockets back to it",
               BUSY_LOW * 100, IDLE_LOOKS * PLACE_MS);
    }
    for (unsigned i = 0; i < p->n; i++)
        on_threads += p->io[i].nsocks;
    if (p->direct ? on_threads > 0 : on_core > 0)
        place_all(p);
}

/* ==== the pool ==== */

unsigned wr_io_threads_auto(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 2)
        return 0;
    return n - 1 > 16 ? 16 : (unsigned)(n - 1);
}

void wr_iopool_set_max_message(struct wr_iopool *p, uint64_t max_message_size)
{
    uint32_t n = max_message_size < ASM_MAX_BODY ? (uint32_t)max_message_size : ASM_MAX_BODY;
    atomic_store_explicit(&p->asm_max_body, n, memory_order_relaxed);
}

unsigned wr_iopool_threads(const struct wr_iopool *p)
{
    return p->n;
}

static bool io_init(struct wr_iopool *p, struct wr_io *io, unsigned idx, struct event_base *base)
{
    struct timeval tick = {0, TICK_MS * 1000};
    io->pool = p;
    io->idx = idx;
    io->efd = -1;
    wr_list_init(&io->to_io);
    wr_list_init(&io->to_core);
    wr_list_init(&io->timed);
    pthread_mutex_init(&io->mu, NULL);
    io->threaded = base == NULL;
    if (io->threaded) {
        if (!(io->base = event_base_new()))
            return false;
        if ((io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
            return false;
        if (!(io->wake_ev = event_new(io->base, io->efd, EV_READ | EV_PERSIST, io_wake_cb, io)))
            return false;
        event_add(io->wake_ev, NULL);
    } else {
        io->base = base;
    }
    if (!(io->tick_ev = event_new(io->base, -1, EV_PERSIST, io_tick_cb, io)))
        return false;
    event_add(io->tick_ev, &tick);
    return true;
}

/* Ask a thread to leave its loop, and wait for it. */
static void io_stop(struct wr_io *io)
{
    pthread_mutex_lock(&io->mu);
    io->stop = true;
    pthread_mutex_unlock(&io->mu);
    efd_wake(io->efd);
    pthread_join(io->thread, NULL);
}

static void io_fini(struct wr_io *io)
{
    if (io->wake_ev)
        event_free(io->wake_ev);
    if (io->tick_ev)
        event_free(io->tick_ev);
    if (io->efd >= 0)
        close(io->efd);
    if (io->threaded && io->base)
        event_base_free(io->base);
    pthread_mutex_destroy(&io->mu);
}

struct wr_iopool *wr_iopool_new(struct event_base *core, unsigned n, enum wr_io_placement placement)
{
    struct wr_iopool *p = calloc(1, sizeof(*p));
    unsigned started = 0;

    if (!p)
        return NULL;
    p->core = core;
    p->n = n;
    p->core_efd = -1;
    p->core_io.efd = -1;
    p->placement = placement;
    p->direct = placement != WR_IO_THREADS;
    wr_list_init(&p->socks);
    if (!(p->io = calloc(n ? n : 1, sizeof(*p->io))))
        goto fail;
    if (n == 0) {
        if (!io_init(p, &p->io[0], 0, core))
            goto fail;
        return p;
    }
    if ((p->core_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        !(p->core_ev = event_new(core, p->core_efd, EV_READ | EV_PERSIST, core_wake_cb, p)))
        goto fail;
    event_add(p->core_ev, NULL);
    if (!io_init(p, &p->core_io, 0, core))
        goto fail;
    if (placement != WR_IO_THREADS) {
        struct timeval tv = {0, (placement == WR_IO_SHUFFLE ? SHUFFLE_MS : PLACE_MS) * 1000};
        if (!(p->place_ev = event_new(core, -1, EV_PERSIST, place_cb, p)))
            goto fail;
        p->last_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        p->last_wall_ns = clock_ns(CLOCK_MONOTONIC);
        event_add(p->place_ev, &tv);
    }
    for (unsigned i = 0; i < n; i++)
        if (!io_init(p, &p->io[i], i, NULL))
            goto fail;
    for (; started < n; started++) {
        char name[16];
        if (pthread_create(&p->io[started].thread, NULL, io_main, &p->io[started]) != 0)
            goto fail;
        snprintf(name, sizeof(name), "warren-io-%u", (started + 1) % 1000);
        pthread_setname_np(p->io[started].thread, name);
    }
    return p;
fail:
    wr_log(WR_LOG_ERROR, "cannot start %u I/O threads: %s", n, strerror(errno));
    for (unsigned i = 0; i < started; i++)
        io_stop(&p->io[i]);
    p->n = started; /* unused below */
    if (p->io)
        for (unsigned i = 0; i < (n ? n : 1); i++)
            if (p->io[i].base || p->io[i].efd > 0)
                io_fini(&p->io[i]);
    if (p->core_io.base)
        io_fini(&p->core_io);
    if (p->place_ev)
        event_free(p->place_ev);
    if (p->core_ev)
        event_free(p->core_ev);
    if (p->core_efd >= 0)
        close(p->core_efd);
    free(p->io);
    free(p);
    return NULL;
}

void wr_iopool_free(struct wr_iopool *p)
{
    if (!p)
        return;
    if (p->msgs && p->msgs->release == rel_take)
        p->msgs->release = NULL; /* from now on freed where they go */
    for (unsigned i = 0; i < p->n; i++)
        io_stop(&p->io[i]);
    for (unsigned i = 0; i < (p->n ? p->n : 1); i++) {
        struct wr_io *io = &p->io[i];
        for (size_t j = 0; j < io->free_n; j++) /* (handed, not taken) */
            wr_msg_free_loose(io->free_v[j]);
        free(io->free_v);
        io_fini(io);
    }
    for (size_t j = 0; j < p->nrel; j++)
        wr_msg_free_loose(p->rel[j]);
    free(p->rel);
    if (p->core_io.base)
        io_fini(&p->core_io);
    if (p->place_ev)
        event_free(p->place_ev);
    if (p->core_ev)
        event_free(p->core_ev);
    if (p->core_efd >= 0)
        close(p->core_efd);
    free(p->io);
    free(p);
}
