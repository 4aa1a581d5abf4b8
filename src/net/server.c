/*
 * server.c - the broker process; see server.h.
 *
 * Owns the event_base and everything that is not one connection's: the
 * listener, the vhosts and users, the quarter-second tick that drives
 * heartbeats and timeouts, the reaper that frees dead connections at the end
 * of a loop turn, signal handling, and the memory alarm.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "auth/auth.h"
#include "broker/msg.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/server.h"
#include "store/store.h"

struct wr_vhost *wr_server_vhost(struct wr_server *s, const char *name, uint32_t len)
{
    struct wr_hnode *n = wr_hmap_get(&s->vhosts, (struct wr_str){name, len});
    return n ? wr_container_of(n, struct wr_vhost, node) : NULL;
}

/* Memory in use, as the alarm sees it: what the process held when it
 * started (code, libraries, the loop) plus the bytes of every message
 * alive and of every connection's unsent output (replies to a client that
 * does not read). Those are what grows without bound; reading RSS per publish
 * would be a syscall on the hot path, and RSS does not fall when malloc
 * keeps freed memory, which would hold the alarm on after the queues
 * drained. */
static uint64_t mem_used(const struct wr_server *s)
{
    return s->mem_base + wr_msg_bytes + s->out_bytes;
}

static uint64_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void alarm_update(struct wr_server *s)
{
    struct wr_list *it, *tmp;
    bool on = s->mem_alarm || s->disk_alarm;
    if (s->alarm == on)
        return;
    s->alarm = on;
    /* Raising it changes nothing yet: a connection is blocked when it next
     * publishes (as in RabbitMQ). Clearing it releases every blocked one. */
    if (on)
        return;
    wr_list_each_safe(it, tmp, &s->conns)
    {
        wr_conn_set_blocked(wr_container_of(it, struct wr_conn, node), false);
    }
}

static void mem_alarm_set(struct wr_server *s, bool on)
{
    s->mem_alarm = on;
    wr_log(on ? WR_LOG_WARNING : WR_LOG_INFO,
           on ? "memory alarm: %llu bytes in use, over the limit of %llu; blocking publishers"
              : "memory alarm cleared (%llu bytes in use, limit %llu)",
           (unsigned long long)mem_used(s), (unsigned long long)s->mem_limit);
    alarm_update(s);
}

bool wr_server_mem_check(struct wr_server *s)
{
    if (!s->mem_alarm && mem_used(s) > s->mem_limit)
        mem_alarm_set(s, true);
    return s->alarm;
}

/* Free space on the data directory's file system, checked every tick. */
static void disk_check(struct wr_server *s)
{
    struct statvfs sv;
    uint64_t free_bytes;
    bool low;
    if (!s->store || statvfs(s->conf->data_dir, &sv) < 0)
        return;
    free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    wr_store_low_disk(s->store, free_bytes < s->conf->disk_free_limit * 2);
    low = free_bytes < s->conf->disk_free_limit || wr_store_failed(s->store);
    if (low != s->disk_alarm) {
        s->disk_alarm = low;
        wr_log(low ? WR_LOG_WARNING : WR_LOG_INFO,
               low ? "disk alarm: %llu bytes free on the data directory (limit %llu)%s; "
                     "blocking publishers"
                   : "disk alarm cleared (%llu bytes free, limit %llu)%s",
               (unsigned long long)free_bytes, (unsigned long long)s->conf->disk_free_limit,
               wr_store_failed(s->store) ? ", journal failed" : "");
        alarm_update(s);
    }
}

void wr_server_wait_store(struct wr_server *s, struct wr_list *node)
{
    if (!wr_list_linked(node))
        wr_list_add_tail(&s->store_waiters, node);
    if (s->store)
        wr_store_want_sync(s->store);
}

static void store_synced_cb(void *arg, uint64_t pos)
{
    struct wr_server *s = arg;
    struct wr_list *it, *tmp;
    wr_clock_update();
    bool failed = wr_store_failed(s->store);
    if (failed)
        disk_check(s); /* raise the disk alarm now, not at the next tick */
    wr_list_each_safe(it, tmp, &s->store_waiters)
    {
        wr_chan_store_synced(wr_chan_of_wait_node(it), pos, failed);
    }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_server *s = arg;
    (void)fd;
    (void)what;
    while (!wr_list_empty(&s->dead))
        wr_conn_free(wr_container_of(s->dead.next, struct wr_conn, node));
}

/* The end of a loop turn (redis's beforeSleep): everything the turn's
 * callbacks produced goes out at once. The store first (definitions, then
 * journal records), so no reply leaves before what it confirms is written;
 * then one write per connection with output; then dead connections are
 * freed, outside any of their own callbacks. */
static void turn_end(struct wr_server *s)
{
    struct wr_list *it, *tmp;
    wr_list_each_safe(it, tmp, &s->flow_paused)
    {
        wr_conn_flow_check(wr_container_of(it, struct wr_conn, flow_node));
    }
    if (s->store)
        wr_store_flush(s->store);
    while (!wr_list_empty(&s->dirty))
        wr_conn_flush(wr_container_of(s->dirty.next, struct wr_conn, dirty_node));
    reap_cb(-1, 0, s);
}

void wr_server_conn_dirty(struct wr_server *s, struct wr_list *node)
{
    wr_list_add_tail(&s->dirty, node);
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
    /* Clear the alarm with some hysteresis so it does not flap. */
    if (s->mem_alarm && mem_used(s) < s->mem_limit - s->mem_limit / 10)
        mem_alarm_set(s, false);
    /* Give memory back to the system after a large drop (a queue drained,
     * a million messages expired): glibc keeps freed small blocks. */
    if (wr_msg_bytes > s->msg_bytes_peak)
        s->msg_bytes_peak = wr_msg_bytes;
    if (s->msg_bytes_peak - wr_msg_bytes > (8u << 20) && wr_msg_bytes < s->msg_bytes_peak / 2) {
        wr_log(WR_LOG_DEBUG,
               "returning freed memory to the system (messages: %llu bytes, was %llu)",
               (unsigned long long)wr_msg_bytes, (unsigned long long)s->msg_bytes_peak);
        malloc_trim(0);
        s->msg_bytes_peak = wr_msg_bytes;
    }
    disk_check(s);
}

/* ---- accept back-off ----
 *
 * Out of descriptors (EMFILE, ENFILE) or kernel memory, accept fails at
 * once and the listening socket stays readable: retrying would spin the
 * loop. So stop accepting for a while (100 ms, doubling up to 1 s, or
 * until one of our connections closes), say so once per episode, and go
 * on serving the open connections; the waiting peers stay in the backlog. */
#define ACCEPT_BACKOFF_MIN_MS 100
#define ACCEPT_BACKOFF_MAX_MS 1000

static void accept_resume(struct wr_server *s)
{
    if (!s->accept_paused)
        return;
    s->accept_paused = false;
    event_del(s->accept_ev);
    evconnlistener_enable(s->listener);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    accept_resume(arg);
}

void wr_server_fd_released(struct wr_server *s)
{
    if (!s->stopping)
        accept_resume(s);
}

/* A connection was accepted: an episode of failures, if any, is over. */
static void accept_ok(struct wr_server *s)
{
    if (!s->accept_failures)
        return;
    wr_clock_update();
    wr_log(WR_LOG_INFO, "accepting connections again after %llu failed accepts in %.1f s",
           (unsigned long long)s->accept_failures,
           (double)(wr_now_ms() - s->accept_episode_ms) / 1000.0);
    s->accept_failures = 0;
    s->accept_backoff_ms = 0;
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct wr_server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv;

    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        wr_log(WR_LOG_WARNING, "accept failed: %s", evutil_socket_error_to_string(err));
        return;
    }
    wr_clock_update();
    if (!s->accept_failures) {
        s->accept_episode_ms = wr_now_ms();
        wr_log(WR_LOG_WARNING,
               "accept failed: %s (%u connections open); not accepting for a while, "
               "retrying with back-off",
               evutil_socket_error_to_string(err), s->nconns);
    }
    s->accept_failures++;
    s->accept_backoff_ms = s->accept_backoff_ms ? s->accept_backoff_ms * 2 : ACCEPT_BACKOFF_MIN_MS;
    if (s->accept_backoff_ms > ACCEPT_BACKOFF_MAX_MS)
        s->accept_backoff_ms = ACCEPT_BACKOFF_MAX_MS;
    evconnlistener_disable(l);
    s->accept_paused = true;
    tv.tv_sec = s->accept_backoff_ms / 1000;
    tv.tv_usec = (suseconds_t)(s->accept_backoff_ms % 1000) * 1000;
    event_add(s->accept_ev, &tv);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct wr_server *s = arg;
    (void)l;
    wr_clock_update();
    if (s->stopping || !wr_conn_new(s, fd, sa, socklen)) {
        evutil_closesocket(fd);
        if (!s->stopping)
            wr_log(WR_LOG_ERROR, "cannot accept a connection: out of memory");
        return;
    }
    accept_ok(s);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct wr_server *s = arg;
    (void)what;
    wr_log(WR_LOG_INFO, "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    s->stopping = true;
    event_base_loopexit(s->base, NULL);
}

static uint64_t total_ram(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : (uint64_t)1 << 32;
}

static int listen_on(struct wr_server *s)
{
    const struct wr_conf *conf = s->conf;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char addr[128];

    snprintf(addr, sizeof(addr), strchr(conf->bind_ip, ':') ? "[%s]:%lld" : "%s:%lld",
             conf->bind_ip, (long long)conf->amqp_port);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) < 0) {
        wr_log(WR_LOG_ERROR, "cannot parse listen address %s", addr);
        return WR_EIO;
    }
    s->listener = evconnlistener_new_bind(
        s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&ss, len);
    if (!s->listener) {
        wr_log(WR_LOG_ERROR, "cannot listen on %s: %s", addr,
               evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return WR_EIO;
    }
    evconnlistener_set_error_cb(s->listener, accept_error_cb);
    wr_log(WR_LOG_INFO, "AMQP 0-9-1 listener on %s", addr);
    return 0;
}

int wr_server_run(const struct wr_conf *conf)
{
    struct wr_server s;
    struct wr_vhost *vh = NULL;
    struct timeval one = {0, 250000}; /* heartbeats of 1 s need a finer tick */
    int rc = 0;

    memset(&s, 0, sizeof(s));
    s.conf = conf;
    wr_list_init(&s.conns);
    wr_list_init(&s.dead);
    wr_hmap_init(&s.vhosts);
    s.mem_limit = (uint64_t)((double)total_ram() * conf->mem_high_watermark);
    if (conf->mem_high_watermark_absolute)
        s.mem_limit = conf->mem_high_watermark_absolute;
    signal(SIGPIPE, SIG_IGN);

    wr_list_init(&s.store_waiters);
    wr_list_init(&s.dirty);
    wr_list_init(&s.flow_paused);
    s.base = event_base_new();

    s.users = wr_users_new();
    vh = s.base ? wr_vhost_new("/", s.base) : NULL;
    if (!s.base || !s.users || !vh || wr_hmap_put(&s.vhosts, &vh->node) < 0) {
        wr_vhost_free(wr_hmap_get(&s.vhosts, WR_STR("/")) ? NULL : vh);
        wr_log(WR_LOG_ERROR, "out of memory starting the broker");
        rc = WR_ENOMEM;
        goto out;
    }
    if (wr_users_add(s.users, conf->default_user, conf->default_pass, "administrator") < 0 ||
        wr_users_permit(s.users, conf->default_user, "/") < 0) {
        rc = WR_ENOMEM;
        goto out;
    }
    {
        struct wr_errbuf err;
        uint64_t t0;
        wr_clock_update();
        t0 = wr_now_us();
        s.store = wr_store_open(conf->data_dir, s.base, (uint32_t)conf->fsync_interval_ms,
                                (uint32_t)conf->segment_size, &s.vhosts, &err);
        if (!s.store) {
            wr_log(WR_LOG_ERROR, "cannot open the data directory %s: %s", conf->data_dir,
                   err.text);
            rc = WR_EIO;
            goto out;
        }
        vh->persist = wr_store_persist(s.store);
        wr_store_on_synced(s.store, store_synced_cb, &s);
        wr_clock_update();
        wr_log(WR_LOG_INFO, "data directory %s opened in %.3f s", conf->data_dir,
               (double)(wr_now_us() - t0) / 1e6);
    }
    if ((rc = listen_on(&s)) < 0)
        goto out;
    s.tick_ev = event_new(s.base, -1, EV_PERSIST, tick_cb, &s);
    s.accept_ev = evtimer_new(s.base, accept_retry_cb, &s);

    s.sigterm_ev = evsignal_new(s.base, SIGTERM, signal_cb, &s);
    s.sigint_ev = evsignal_new(s.base, SIGINT, signal_cb, &s);
    if (!s.tick_ev || !s.accept_ev || !s.sigterm_ev || !s.sigint_ev) {
        rc = WR_ENOMEM;
        goto out;
    }
    event_add(s.tick_ev, &one);
    event_add(s.sigterm_ev, NULL);
    event_add(s.sigint_ev, NULL);
    s.mem_base = rss_bytes();
    wr_log(WR_LOG_INFO, "memory high watermark: %llu bytes (%llu in use at start)",
           (unsigned long long)s.mem_limit, (unsigned long long)s.mem_base);
    wr_server_mem_check(&s);
    wr_log(WR_LOG_INFO, "ready");
    /* One loop turn at a time (libevent has no before-sleep hook in 2.1):
     * run the callbacks that are ready, then write what they produced. */
    while (!s.stopping) {
        if (event_base_loop(s.base, EVLOOP_ONCE) < 0)
            break;
        turn_end(&s);
    }

    /* Orderly stop: close every connection, then free the world. */
    {
        struct wr_list *it, *tmp;
        wr_list_each_safe(it, tmp, &s.conns)
        {
            struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
            wr_conn_error(c, 320, 0, "broker shutdown");
            wr_conn_flush(c); /* the close reaches the client if it can */
            wr_conn_abort(c, "broker shutdown");
        }
        turn_end(&s);
    }
out:
    if (s.listener)
        evconnlistener_free(s.listener);
    /* Stop journaling before the queues go: they are not deleted, only
     * forgotten by this process. */
    if (vh)
        vh->persist = NULL;
    wr_store_close(s.store);
    if (rc == 0)
        wr_log(WR_LOG_INFO, "stopped");
    {
        struct wr_hnode *n, *nx;
        size_t it;
        for (n = wr_hmap_first(&s.vhosts, &it); n; n = nx) {
            nx = wr_hmap_next(&s.vhosts, &it, n);
            wr_vhost_free(wr_container_of(n, struct wr_vhost, node));
        }
        wr_hmap_free(&s.vhosts);
    }
    wr_users_free(s.users);
    if (s.tick_ev)
        event_free(s.tick_ev);
    if (s.accept_ev)
        event_free(s.accept_ev);

    if (s.sigterm_ev)
        event_free(s.sigterm_ev);
    if (s.sigint_ev)
        event_free(s.sigint_ev);
    if (s.base)
        event_base_free(s.base);
    return rc;
}
