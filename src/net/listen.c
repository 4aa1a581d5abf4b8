/*
 * listen.c - the AMQP and AMQPS listeners; see listen.h.
 *
 * Addresses, as rabbitmq.conf gives them: listeners.tcp.default (a port,
 * or IP:PORT), listeners.tcp.NAME and listeners.ssl.NAME (PORT or
 * IP:PORT). Given a port alone, Warren listens on listeners.tcp.ip, or by
 * default on loopback in both families, 127.0.0.1 and ::1 (many clients
 * resolve "localhost" to ::1 first); where ::1 is not available it says so
 * and carries on with 127.0.0.1. [::] listens on IPv6 and IPv4 both (the
 * socket is made dual-stack whatever net.ipv6.bindv6only says); any other
 * IPv6 address on IPv6 only. Named listeners replace the default one
 * unless listeners.tcp.default (or --port) is given too;
 * `listeners.tcp = none` leaves none, as in RabbitMQ.
 *
 * Accepting: the socket goes to a plain or a TLS transport and then to
 * conn.c. Past connection_max a connection is accepted and closed at once
 * (RabbitMQ 3.10 instead stops accepting, leaving clients in the backlog
 * with no answer). Out of descriptors (EMFILE, ENFILE) or kernel memory,
 * accept fails at once and the listening socket stays readable: retrying
 * would spin the loop. So accepting stops for a while (100 ms, doubling up
 * to 1 s, or until one of our connections closes), says so once per
 * episode, and the open connections are served meanwhile; the waiting
 * peers stay in the backlog.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/server.h"
#include "net/tls.h"
#include "net/tls_ctx.h"

#define BACKLOG 1024
#define ACCEPT_BACKOFF_MIN_MS 100
#define ACCEPT_BACKOFF_MAX_MS 1000

/* An address to listen on. */
struct spec {
    bool tls;
    const char *what; /* NULL: "AMQP" or "AMQPS" */
    bool optional;    /* the implicit ::1: may be missing */
    char ip[64];
    int port;
};

struct listener {
    struct wr_listeners *ls;
    struct evconnlistener *evl;
    bool tls;
    struct wr_listen_info info;
};

struct wr_listeners {
    struct wr_server *srv;
    struct listener *l;
    unsigned n;
    struct wr_tls_slot amqps; /* the context of every AMQPS listener */
    bool amqps_open;
    struct wr_list slots; /* every TLS slot, reloaded together */
    /* accept back-off */
    struct event *retry_ev;
    bool paused;
    uint32_t backoff_ms;
    uint64_t failures, episode_ms;
    /* connection_max: refusals of the current episode */
    uint64_t refused;
};

/* ---- what to listen on ---- */

static bool add_spec(struct spec *out, unsigned *n, unsigned cap, bool tls, const char *ip,
                     int port, bool optional)
{
    for (unsigned i = 0; i < *n; i++)
        if (out[i].tls == tls && out[i].port == port && !strcmp(out[i].ip, ip))
            return true; /* the same address twice (the default and a named one) */
    if (*n == cap)
        return false;
    out[*n].tls = tls;
    out[*n].optional = optional;
    out[*n].port = port;
    snprintf(out[*n].ip, sizeof(out[*n].ip), "%s", ip);
    (*n)++;
    return true;
}

/* A port alone: listeners.tcp.ip, or loopback in both families. */
static bool add_port(const struct wr_conf *c, struct spec *out, unsigned *n, unsigned cap, bool tls,
                     const char *ip, int port)
{
    if (ip[0])
        return add_spec(out, n, cap, tls, ip, port, false);
    if (c->bind_ip[0])
        return add_spec(out, n, cap, tls, c->bind_ip, port, false);
    return add_spec(out, n, cap, tls, "127.0.0.1", port, false) &&
           add_spec(out, n, cap, tls, "::1", port, true);
}

static bool add_list(const struct wr_conf *c, const struct wr_conf_list *l, bool tls,
                     struct spec *out, unsigned *n, unsigned cap)
{
    for (uint32_t i = 0; i < l->n; i++) {
        char ip[64];
        int port;
        if (wr_conf_parse_listener(l->item[i].value, ip, &port) != NULL)
            continue; /* the parser checked every value */
        if (!add_port(c, out, n, cap, tls, ip, port))
            return false;
    }
    return true;
}

/* Every address to listen on; NULL when out of memory. */
static struct spec *plan(const struct wr_conf *c, unsigned *n)
{
    unsigned cap = 2u * (1u + c->tcp_listeners.n + c->ssl_listeners.n);
    struct spec *out = calloc(cap, sizeof(*out));
    char ip[64] = "";

    *n = 0;
    if (!out)
        return NULL;
    /* listeners.tcp.default, unless named listeners (or none) replace it */
    if (c->amqp_default_set || !c->tcp_listeners.set)
        add_port(c, out, n, cap, false, ip, (int)c->amqp_port);
    add_list(c, &c->tcp_listeners, false, out, n, cap);
    add_list(c, &c->ssl_listeners, true, out, n, cap);
    return out;
}

static void spec_name(const struct spec *sp, char *buf, size_t cap)
{
    snprintf(buf, cap, strchr(sp->ip, ':') ? "[%s]:%d" : "%s:%d", sp->ip, sp->port);
}

/* A socket bound to `sp`, listening if `listening`, or -1 with why (and
 * errno kept). The start-up check binds without listening: bind alone
 * fails on a port another socket listens on, and a socket that listened
 * for a moment would take connections in its backlog and reset them
 * (a client, or a probe waiting for the port, would see the broker up
 * while it still recovers). */
static int bind_spec(const struct spec *sp, bool listening, char *why, size_t cap)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    const char *what = sp->what ? sp->what : sp->tls ? "AMQPS" : "AMQP";
    socklen_t len;
    int fd, one = 1, e;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, sp->ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)sp->port);
        len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, sp->ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)sp->port);
        len = sizeof(*sin6);
    } else {
        snprintf(why, cap, "%s address %s is not an IP address", what, sp->ip);
        errno = EINVAL;
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        e = errno;
        snprintf(why, cap, "%s on %s: cannot create a socket: %s", what, sp->ip, strerror(e));
        errno = e;
        return -1;
    }
    /* TIME_WAIT leftovers of a previous run must not count as "in use". */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) {
        int v6only = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ? 0 : 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (listening && listen(fd, BACKLOG) < 0)) {
        e = errno;
        close(fd);
        if (e == EADDRINUSE)
            snprintf(why, cap, "%s port %d on %s: port in use", what, sp->port, sp->ip);
        else if (e == EADDRNOTAVAIL)
            snprintf(why, cap, "%s address %s is not an address of this host", what, sp->ip);
        else
            snprintf(why, cap, "%s port %d on %s: cannot bind: %s", what, sp->port, sp->ip,
                     strerror(e));
        errno = e;
        return -1;
    }
    return fd;
}

/* The implicit ::1 where IPv6 is off: carry on without it. */
static bool v6_missing(const struct spec *sp, int err)
{
    return sp->optional && (err == EAFNOSUPPORT || err == EADDRNOTAVAIL || err == EPROTONOSUPPORT);
}

int wr_listeners_check_tls(const struct wr_conf *conf, char *why, size_t cap)
{
    const struct {
        const struct wr_conf_tls *t;
        const char *prefix;
        bool used;
    } tls[] = {
        {&conf->ssl, "ssl_options", conf->ssl_listeners.n > 0},
        {&conf->mgmt_ssl, "management.ssl", conf->mgmt_ssl_port != 0},
    };
    for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++) {
        SSL_CTX *ctx;
        if (!tls[i].used)
            continue;
        if (!(ctx = wr_tls_ctx_new(tls[i].t, tls[i].prefix, why, cap)))
            return -1;
        SSL_CTX_free(ctx);
    }
    return 0;
}

int wr_listeners_check(const struct wr_conf *conf, char *why, size_t cap)
{
    unsigned n;
    struct spec *sp = plan(conf, &n);
    int rc = 0;

    if (!sp) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < n && rc == 0; i++) {
        int fd = bind_spec(&sp[i], false, why, cap);
        if (fd >= 0)
            close(fd);
        else if (!v6_missing(&sp[i], errno))
            rc = -1;
    }
    /* The management API's listeners (mgmt/http.c), 0 for none. */
    const struct {
        const char *what, *ip;
        int64_t port;
    } other[] = {
        {"HTTPS management", conf->mgmt_ssl_ip, conf->mgmt_ssl_port},
        {"management", conf->mgmt_ip, conf->mgmt_port},
        {"Prometheus", conf->mgmt_ip, conf->prom_port},
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]) && rc == 0; i++) {
        struct spec m = {.what = other[i].what, .port = (int)other[i].port};
        int fd;
        if (!other[i].port)
            continue;
        snprintf(m.ip, sizeof(m.ip), "%s", other[i].ip);
        if ((fd = bind_spec(&m, false, why, cap)) < 0)
            rc = -1;
        else
            close(fd);
    }
    if (rc == 0)
        rc = wr_listeners_check_tls(conf, why, cap);
    free(sp);
    return rc;
}

/* ---- accepting ---- */

static void pause_all(struct wr_listeners *ls, bool pause)
{
    for (unsigned i = 0; i < ls->n; i++) {
        if (pause)
            evconnlistener_disable(ls->l[i].evl);
        else
            evconnlistener_enable(ls->l[i].evl);
    }
}

static void accept_resume(struct wr_listeners *ls)
{
    if (!ls->paused)
        return;
    ls->paused = false;
    event_del(ls->retry_ev);
    pause_all(ls, false);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_listeners *ls = arg;
    (void)fd;
    (void)what;
    if (!ls->srv->stopping)
        accept_resume(ls);
}

void wr_listeners_fd_released(struct wr_server *s)
{
    if (s->listeners && !s->stopping)
        accept_resume(s->listeners);
}

void wr_listeners_stop(struct wr_server *s)
{
    if (!s->listeners)
        return;
    pause_all(s->listeners, true);
    event_del(s->listeners->retry_ev);
    s->listeners->paused = false;
}

/* A connection was accepted: an episode of failures, if any, is over. */
static void accept_ok(struct wr_listeners *ls)
{
    if (ls->refused) {
        wr_log(WR_LOG_INFO,
               "accepting connections again: %llu were closed at connection_max (%lld)",
               (unsigned long long)ls->refused, (long long)ls->srv->conf->connection_max);
        ls->refused = 0;
    }
    if (!ls->failures)
        return;
    wr_log(WR_LOG_INFO, "accepting connections again after %llu failed accepts in %.1f s",
           (unsigned long long)ls->failures, (double)(wr_now_ms() - ls->episode_ms) / 1000.0);
    ls->failures = 0;
    ls->backoff_ms = 0;
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    struct wr_listeners *ls = l->ls;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv;
    (void)evl;

    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        wr_log(WR_LOG_WARNING, "accept failed: %s", evutil_socket_error_to_string(err));
        return;
    }
    wr_clock_update();
    if (!ls->failures) {
        ls->episode_ms = wr_now_ms();
        wr_log(WR_LOG_WARNING,
               "accept failed: %s (%u connections open); not accepting for a while, "
               "retrying with back-off",
               evutil_socket_error_to_string(err), ls->srv->nconns);
    }
    ls->failures++;
    ls->backoff_ms = ls->backoff_ms ? ls->backoff_ms * 2 : ACCEPT_BACKOFF_MIN_MS;
    if (ls->backoff_ms > ACCEPT_BACKOFF_MAX_MS)
        ls->backoff_ms = ACCEPT_BACKOFF_MAX_MS;
    pause_all(ls, true);
    ls->paused = true;
    tv.tv_sec = ls->backoff_ms / 1000;
    tv.tv_usec = (suseconds_t)(ls->backoff_ms % 1000) * 1000;
    event_add(ls->retry_ev, &tv);
}

/* Past connection_max: accepted and closed at once. The first of an
 * episode is logged with its peer, the others counted (a flood must not
 * become a flood of log lines); accept_ok reports how many. */
static void refuse_over_max(struct wr_listeners *ls, int fd, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (!ls->refused++) {
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, host,
                      sizeof(host));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, host,
                      sizeof(host));
        wr_log(WR_LOG_WARNING,
               "connection from %s refused: node connection limit (connection_max = %lld) is "
               "reached; closing new connections until one ends",
               host, (long long)ls->srv->conf->connection_max);
    }
    evutil_closesocket(fd);
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct listener *l = arg;
    struct wr_listeners *ls = l->ls;
    struct wr_server *s = ls->srv;
    int64_t max = s->conf->connection_max;
    struct wr_xport xp;
    (void)evl;

    wr_clock_update();
    if (s->stopping) {
        evutil_closesocket(fd);
        return;
    }
    if (max >= 0 && s->nconns >= (uint64_t)max) {
        refuse_over_max(ls, fd, sa);
        return;
    }
    if (l->tls) {
        if (wr_tls_xport_init(&xp, fd, ls->amqps.ctx) < 0) {
            wr_log(WR_LOG_ERROR, "cannot accept a connection: %s", wr_xport_why(&xp));
            evutil_closesocket(fd);
            return;
        }
    } else {
        wr_xport_plain_init(&xp, fd);
    }
    if (!wr_conn_new(s, &xp, sa, socklen)) {
        xp.ops->close(&xp);
        wr_log(WR_LOG_ERROR, "cannot accept a connection: out of memory");
        return;
    }
    accept_ok(ls);
}

/* ---- opening and closing ---- */

static int open_one(struct wr_listeners *ls, const struct spec *sp)
{
    struct listener *l = &ls->l[ls->n];
    char why[256], name[96];
    int fd = bind_spec(sp, true, why, sizeof(why));

    spec_name(sp, name, sizeof(name));
    if (fd < 0) {
        if (v6_missing(sp, errno)) {
            wr_log(WR_LOG_WARNING,
                   "IPv6 loopback ::1 is not available (%s): %s listens on "
                   "127.0.0.1 only for port %d",
                   strerror(errno), sp->tls ? "AMQPS" : "AMQP", sp->port);
            return 0;
        }
        wr_log(WR_LOG_ERROR, "cannot listen: %s", why);
        return WR_EIO;
    }
    l->ls = ls;
    l->tls = sp->tls;
    l->info.protocol = sp->tls ? "amqp/ssl" : "amqp";
    snprintf(l->info.ip, sizeof(l->info.ip), "%s", sp->ip);
    l->info.port = sp->port;
    /* backlog 0: the socket is listening already */
    l->evl = evconnlistener_new(ls->srv->base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    if (!l->evl) {
        close(fd);
        wr_log(WR_LOG_ERROR, "cannot listen on %s: out of memory", name);
        return WR_ENOMEM;
    }
    evconnlistener_set_error_cb(l->evl, accept_error_cb);
    ls->n++;
    wr_log(WR_LOG_INFO, "%s listener on %s", sp->tls ? "AMQP 0-9-1 over TLS" : "AMQP 0-9-1", name);
    return 0;
}

int wr_listeners_open(struct wr_server *s)
{
    struct wr_listeners *ls = calloc(1, sizeof(*ls));
    struct spec *sp = NULL;
    unsigned n = 0;
    bool tls = false;
    int rc = 0;

    if (!ls || !(sp = plan(s->conf, &n)) || !(ls->l = calloc(n ? n : 1, sizeof(*ls->l))) ||
        !(ls->retry_ev = evtimer_new(s->base, accept_retry_cb, ls))) {
        rc = WR_ENOMEM;
        goto out;
    }
    ls->srv = s;
    wr_list_init(&ls->slots);
    s->listeners = ls;
    for (unsigned i = 0; i < n; i++)
        tls |= sp[i].tls;
    if (tls) {
        char why[512];
        if (wr_tls_slot_open(&ls->amqps, &s->conf->ssl, "ssl_options", "AMQPS", why, sizeof(why)) <
            0) {
            wr_log(WR_LOG_ERROR, "cannot start the TLS listener: %s", why);
            rc = WR_EIO;
            goto out;
        }
        ls->amqps_open = true;
        wr_list_add_tail(&ls->slots, &ls->amqps.node);
    }
    for (unsigned i = 0; i < n && rc == 0; i++)
        rc = open_one(ls, &sp[i]);
    if (rc == 0 && ls->n == 0 && n > 0)
        rc = WR_EIO; /* only an unavailable ::1: cannot happen without 127.0.0.1 */
    if (rc == 0 && n == 0)
        wr_log(WR_LOG_WARNING, "no AMQP listener (listeners.tcp = none and no listeners.ssl)");
out:
    free(sp);
    if (rc < 0 && !s->listeners && ls) {
        if (ls->retry_ev)
            event_free(ls->retry_ev);
        free(ls->l);
        free(ls);
    }
    return rc;
}

void wr_listeners_close(struct wr_server *s)
{
    struct wr_listeners *ls = s->listeners;
    if (!ls)
        return;
    for (unsigned i = 0; i < ls->n; i++)
        evconnlistener_free(ls->l[i].evl);
    if (ls->amqps_open)
        wr_tls_slot_close(&ls->amqps);
    /* Slots of others (management) are closed by their owners; forget them. */
    while (!wr_list_empty(&ls->slots))
        wr_list_del(ls->slots.next);
    event_free(ls->retry_ev);
    free(ls->l);
    free(ls);
    s->listeners = NULL;
}

bool wr_listeners_fd_paused(const struct wr_server *s)
{
    return s->listeners && s->listeners->paused;
}

unsigned wr_listeners_info(const struct wr_server *s, struct wr_listen_info *out, unsigned cap)
{
    const struct wr_listeners *ls = s->listeners;
    if (!ls)
        return 0;
    for (unsigned i = 0; i < ls->n && i < cap; i++)
        out[i] = ls->l[i].info;
    return ls->n;
}

void wr_listeners_add_tls(struct wr_server *s, struct wr_tls_slot *slot)
{
    if (s->listeners)
        wr_list_add_tail(&s->listeners->slots, &slot->node);
}

int wr_listeners_reload_tls(struct wr_server *s)
{
    struct wr_list *it;
    int rc = 0;
    if (!s->listeners)
        return 0;
    wr_list_each(it, &s->listeners->slots)
    {
        if (wr_tls_slot_reload(wr_container_of(it, struct wr_tls_slot, node)) < 0)
            rc = -1;
    }
    return rc;
}
