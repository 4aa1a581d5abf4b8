/*
 * server.c - the broker's network side; see server.h.
 *
 * Owns the event loop's turn and everything that is one connection's: the
 * listeners (opened and closed here, net/listen.c), the quarter-second
 * tick that drives heartbeats and timeouts, the end of a loop turn (the
 * broker's writes, then every socket once, then the dead connections
 * freed), signals. The broker (broker/broker.c) tells it when
 * the alarms clear and when the journal synced.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "broker/broker.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/io.h"
#include "net/listen.h"
#include "net/server.h"

/* ---- what the broker tells the server ---- */

/* Both alarms are clear: every blocked publisher is released. */
static void alarm_cleared_cb(void *arg)
{
    struct wr_server *s = arg;
    struct wr_list *it, *tmp;
    wr_list_each_safe(it, tmp, &s->conns)
    {
        wr_conn_set_blocked(wr_container_of(it, struct wr_conn, node), false);
    }
}

void wr_server_wait_store(struct wr_server *s, struct wr_list *node)
{
    if (!wr_list_linked(node))
        wr_list_add_tail(&s->store_waiters, node);
    wr_broker_want_sync(s->broker);
}

static void synced_cb(void *arg, uint64_t pos, bool failed)
{
    struct wr_server *s = arg;
    struct wr_list *it, *tmp;
    wr_clock_update();
    wr_list_each_safe(it, tmp, &s->store_waiters)
    {
        wr_chan_store_synced(wr_chan_of_wait_node(it), pos, failed);
    }
}

/* ---- refused logins ----
 *
 * A password-guessing loop costs a TCP handshake and a hash per try. Past
 * AUTH_FREE failures from one address within AUTH_WINDOW_MS, each refusal
 * is answered only after a delay (250 ms doubling to 3 s, RabbitMQ's own
 * delay), during which the connection is not read: the guesser waits on a
 * socket that costs the broker a timer check per tick, not CPU. The table
 * forgets an address after the window and is bounded. */
#define AUTH_FREE 5
#define AUTH_WINDOW_MS 60000
#define AUTH_TABLE_MAX 10000

struct auth_fail {
    struct wr_hnode node;
    uint64_t last_ms;
    uint32_t count;
    uint8_t addr[16];
};

static void auth_fails_expire(struct wr_server *s, uint64_t now, bool all)
{
    struct wr_hnode *n, *nx;
    size_t it;
    for (n = wr_hmap_first(&s->auth_fails, &it); n; n = nx) {
        struct auth_fail *f = wr_container_of(n, struct auth_fail, node);
        nx = wr_hmap_next(&s->auth_fails, &it, n);
        if (all || now - f->last_ms > AUTH_WINDOW_MS) {
            wr_hmap_del(&s->auth_fails, n);
            free(f);
        }
    }
}

uint32_t wr_server_login_failed(struct wr_server *s, const uint8_t *addr, size_t len)
{
    struct wr_str key = {(const char *)addr, (uint32_t)len};
    struct wr_hnode *n = wr_hmap_get(&s->auth_fails, key);
    uint64_t now = wr_now_ms();
    struct auth_fail *f;
    uint32_t delay;

    if (n) {
        f = wr_container_of(n, struct auth_fail, node);
        if (now - f->last_ms > AUTH_WINDOW_MS)
            f->count = 0;
    } else {
        if (s->auth_fails.n >= AUTH_TABLE_MAX)
            auth_fails_expire(s, now, s->auth_fails.n >= AUTH_TABLE_MAX);
        if (!(f = calloc(1, sizeof(*f))) || len > sizeof(f->addr))
            return free(f), 3000;
        memcpy(f->addr, addr, len);
        f->node.key = (struct wr_str){(const char *)f->addr, (uint32_t)len};
        if (wr_hmap_put(&s->auth_fails, &f->node) < 0)
            return free(f), 3000;
    }
    f->last_ms = now;
    if (++f->count <= AUTH_FREE)
        return 0;
    delay = 250u << (f->count - AUTH_FREE - 1 < 4 ? f->count - AUTH_FREE - 1 : 4);
    return delay < 3000 ? delay : 3000;
}

static void reap(struct wr_server *s)
{
    while (!wr_list_empty(&s->dead))
        wr_conn_free(wr_container_of(s->dead.next, struct wr_conn, node));
}

/* Publishers paused by flow control whose queue has drained go on;
 * returns how many did. */
static unsigned flow_check(struct wr_server *s)
{
    struct wr_list *it, *tmp;
    unsigned n = 0;
    wr_list_each_safe(it, tmp, &s->flow_paused)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, flow_node);
        wr_conn_flow_check(c);
        n += !wr_list_linked(&c->flow_node);
    }
    return n;
}

/* At most this many rounds of the turn's end when publishers go on. */
#define FLOW_ROUNDS 8

/* The end of a loop turn (redis's beforeSleep): everything the turn's
 * callbacks produced goes out at once. The broker's writes first
 * (definitions, then journal records), so no reply leaves before what it
 * confirms is written; then one write per connection with output; then
 * dead connections are freed, outside any of their own callbacks.
 *
 * Writing can itself drain a queue (output below its low mark lets the
 * consumers take more): a publisher paused for that queue goes on at once,
 * not when some socket next wakes the loop, which may be much later (a
 * consumer whose socket takes everything never does). */
static void turn_end(struct wr_server *s)
{
    flow_check(s);
    for (int round = 0;; round++) {
        wr_broker_turn_end(s->broker);
        while (!wr_list_empty(&s->dirty))
            wr_conn_flush(wr_container_of(s->dirty.next, struct wr_conn, dirty_node));
        if (round == FLOW_ROUNDS || wr_list_empty(&s->flow_paused) || !flow_check(s))
            break;
    }
    reap(s);
}

void wr_server_conn_dirty(struct wr_server *s, struct wr_list *node)
{
    wr_list_add_tail(&s->dirty, node);
}

/* consumer_timeout: only the channels with deliveries to acknowledge are
 * looked at, each with one comparison unless a deadline may have passed
 * (chan.c). A closed channel's requeue can hand its messages to a channel
 * that joins the list meanwhile: the walk is safe against that. */
static void ack_timeouts(struct wr_server *s, uint64_t now)
{
    struct wr_list *it, *tmp;
    bool recheck = s->consumer_timeout_ms != s->conf->consumer_timeout_ms;
    s->consumer_timeout_ms = s->conf->consumer_timeout_ms;
    wr_list_each_safe(it, tmp, &s->unacked_chans)
    {
        wr_chan_ack_tick(wr_chan_of_unacked_node(it), now, recheck);
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_server *s = arg;
    struct wr_list *it, *tmp;
    uint64_t now;
    (void)fd;
    (void)what;
    wr_clock_update();
    now = wr_now_ms();
    wr_list_each_safe(it, tmp, &s->conns)
    {
        wr_conn_tick(wr_container_of(it, struct wr_conn, node), now);
    }
    ack_timeouts(s, now);
    if (wr_broker_tick(s->broker, s->io && wr_iopool_releases_pending(s->io)) && s->io)
        wr_iopool_trim(s->io);
    if (s->auth_fails.n)
        auth_fails_expire(s, now, false);
}

void wr_server_fd_released(struct wr_server *s)
{
    wr_listeners_fd_released(s);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct wr_server *s = arg;
    (void)what;
    wr_log(WR_LOG_INFO, "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    s->stopping = true;
    wr_listeners_stop(s);
    event_base_loopexit(s->base, NULL);
}

int wr_server_run(struct event_base *base, const struct wr_conf *conf, struct wr_broker *broker,
                  const struct wr_server_hooks *hooks)
{
    bool hooked = false;
    struct wr_server s;
    struct timeval one = {0, 250000}; /* heartbeats of 1 s need a finer tick */
    int rc = 0;

    memset(&s, 0, sizeof(s));
    s.base = base;
    s.conf = conf;
    s.broker = broker;
    wr_list_init(&s.conns);
    wr_list_init(&s.dead);
    wr_list_init(&s.store_waiters);
    wr_list_init(&s.unacked_chans);
    s.consumer_timeout_ms = conf->consumer_timeout_ms;
    wr_list_init(&s.dirty);
    wr_list_init(&s.flow_paused);
    wr_hmap_init(&s.auth_fails);
    signal(SIGPIPE, SIG_IGN);
    broker->alarm_cleared = alarm_cleared_cb;
    broker->synced = synced_cb;
    broker->listener = &s;

    {
        unsigned n = conf->io_threads < 0 ? wr_io_threads_auto() : (unsigned)conf->io_threads;
        enum wr_io_placement pl = !strcmp(conf->io_placement, "threads")   ? WR_IO_THREADS
                                  : !strcmp(conf->io_placement, "shuffle") ? WR_IO_SHUFFLE
                                                                           : WR_IO_ADAPTIVE;
        if (!(s.io = wr_iopool_new(base, n, pl))) {
            rc = WR_ENOMEM;
            goto out;
        }
        wr_iopool_set_max_message(s.io, conf->max_message_size);
        wr_iopool_take_releases(s.io, &broker->msgs);
        wr_log(WR_LOG_INFO, "%u I/O threads%s%s", n,
               n ? ", placement " : ": the sockets are read and written by the broker's thread",
               n ? conf->io_placement : "");
    }
    /* SIGTERM is taken before any port opens: a client (or a test) that
     * sees a port listening may stop us at once, and the default action
     * would end the process without the orderly stop. It is handled when
     * the loop first runs. */
    s.tick_ev = event_new(s.base, -1, EV_PERSIST, tick_cb, &s);
    s.sigterm_ev = evsignal_new(s.base, SIGTERM, signal_cb, &s);
    s.sigint_ev = evsignal_new(s.base, SIGINT, signal_cb, &s);
    if (!s.tick_ev || !s.sigterm_ev || !s.sigint_ev) {
        rc = WR_ENOMEM;
        goto out;
    }
    event_add(s.sigterm_ev, NULL);
    event_add(s.sigint_ev, NULL);
    if ((rc = wr_listeners_open(&s)) < 0)
        goto out;
    if (hooks && hooks->start && (rc = hooks->start(&s, hooks->arg)) < 0)
        goto out;
    hooked = true;
    event_add(s.tick_ev, &one);
    wr_broker_mem_start(broker);
    wr_log(WR_LOG_INFO, "ready");
    /* One loop turn at a time (libevent has no before-sleep hook in 2.1):
     * run the callbacks that are ready, then write what they produced. */
    while (!s.stopping) {
        if (event_base_loop(s.base, EVLOOP_ONCE) < 0)
            break;
        turn_end(&s);
    }

    if (hooks && hooks->stop)
        hooks->stop(&s, hooks->arg);
    hooked = false;
    /* Orderly stop: close every connection. */
    wr_server_close_all(&s);
out:
    if (hooked && hooks && hooks->stop)
        hooks->stop(&s, hooks->arg);
    broker->alarm_cleared = NULL;
    broker->synced = NULL;
    broker->listener = NULL;
    wr_listeners_close(&s);
    wr_iopool_free(s.io);
    if (s.tick_ev)
        event_free(s.tick_ev);
    if (s.sigterm_ev)
        event_free(s.sigterm_ev);
    if (s.sigint_ev)
        event_free(s.sigint_ev);
    auth_fails_expire(&s, 0, true);
    wr_hmap_free(&s.auth_fails);
    return rc;
}

/* ---- shutdown ----
 *
 * SIGTERM or SIGINT: stop accepting, send every connection
 * connection.close 320 with RabbitMQ's text, and keep the loop turning
 * until each client has answered and closed its socket, or until
 * shutdown_timeout; what is left is cut then. The tick keeps waking the
 * loop, so the deadline is met within a quarter of a second. */
#define SHUTDOWN_TEXT "broker forced connection closure with reason 'shutdown'"

void wr_server_conf_reloaded(struct wr_server *s)
{
    wr_iopool_set_max_message(s->io, s->conf->max_message_size);
}

void wr_server_close_all(struct wr_server *s)
{
    struct wr_list *it, *tmp;
    uint64_t t0, deadline;
    unsigned asked = 0, cut = 0;

    s->stopping = true;
    wr_listeners_stop(s); /* no back-off timer may enable them again either */
    wr_clock_update();
    t0 = wr_now_ms();
    deadline = t0 + (uint64_t)s->conf->shutdown_timeout_ms;
    wr_list_each_safe(it, tmp, &s->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (c->state < WR_CS_CLOSING) {
            wr_conn_error(c, 320, 0, SHUTDOWN_TEXT);
            asked++;
        }
    }
    if (asked)
        wr_log(WR_LOG_INFO,
               "shutdown: connection.close sent to %u connections, waiting up to %lld ms", asked,
               (long long)s->conf->shutdown_timeout_ms);
    turn_end(s);
    while (!wr_list_empty(&s->conns) && wr_now_ms() < deadline) {
        if (event_base_loop(s->base, EVLOOP_ONCE) < 0)
            break;
        turn_end(s);
        wr_clock_update();
    }
    wr_list_each_safe(it, tmp, &s->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        wr_conn_flush(c); /* what is queued reaches the client if it can */
        wr_conn_abort(c, "shutdown_timeout passed");
        cut++;
    }
    turn_end(s);
    /* With I/O threads a socket closes on its thread, which says so at
     * once; the connection is freed then. */
    deadline = wr_now_ms() + 2000;
    while (!wr_list_empty(&s->conns) && wr_now_ms() < deadline) {
        if (event_base_loop(s->base, EVLOOP_ONCE) < 0)
            break;
        turn_end(s);
        wr_clock_update();
    }
    if (!wr_list_empty(&s->conns))
        wr_log(WR_LOG_ERROR, "shutdown: an I/O thread did not close its sockets in 2 s");
    wr_clock_update();
    if (cut)
        wr_log(WR_LOG_WARNING, "shutdown: %u connections cut after %lld ms (shutdown_timeout)", cut,
               (long long)(wr_now_ms() - t0));
    else if (asked)
        wr_log(WR_LOG_INFO, "shutdown: every connection closed in %llu ms",
               (unsigned long long)(wr_now_ms() - t0));
}
