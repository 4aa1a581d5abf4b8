/*
 * conn.c - an AMQP connection; see conn.h.
 *
 * Neighbours: server.c accepts sockets and reaps dead connections; chan.c
 * gets every frame on a channel other than 0; wire/frame.c cuts frames.
 * Reply codes and texts follow RabbitMQ 3.10, which was asked directly for
 * the doubtful cases (tests/integ/test_adversarial.py).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/x509name.h"
#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/version.h"
#include "net/asm.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/io.h"
#include "net/server.h"
#include "wire/field.h"
#include "wire/frame.h"
#include "wire/names.h"

/* Frames before tune-ok may be at most this big (the spec's frame-min-size). */
#define PRE_TUNE_FRAME_MAX WR_AMQP_FRAME_MIN_SIZE
#define CLOSE_OK_TIMEOUT_MS 3000
/* CLOSED: how long to wait for the peer to close once it has gone quiet,
 * and at most. */
#define CLOSED_IDLE_MS 3000
#define CLOSED_MAX_MS 30000

static void process_input(struct wr_conn *c);
static void flow_release(struct wr_conn *c);

/* ---- server properties for connection.start, encoded once ---- */

static void build_server_props(struct wr_server *srv)
{
    static const char *const caps[] = {
        "publisher_confirms",           "exchange_exchange_bindings", "basic.nack",
        "consumer_cancel_notify",       "connection.blocked",         "consumer_priorities",
        "authentication_failure_close", "per_consumer_qos",           "direct_reply_to",
    };
    struct wr_table t = {0}, *c = calloc(1, sizeof(*c));
    struct wr_wb w;
    struct wr_fv v;

    if (!c)
        return;
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        v.type = 't';
        v.v.t = true;
        wr_table_add(c, wr_str_c(caps[i]), v);
    }
    v.type = 'F';
    v.v.table = c;
    wr_table_add(&t, WR_STR("capabilities"), v);
    v.type = 'S';
    v.v.str = WR_STR("Warren");
    wr_table_add(&t, WR_STR("product"), v);
    v.v.str = wr_str_c(WR_VERSION);
    wr_table_add(&t, WR_STR("version"), v);
    v.v.str = WR_STR("C11/libevent");
    wr_table_add(&t, WR_STR("platform"), v);
    v.v.str = wr_str_c(wr_node_name());
    wr_table_add(&t, WR_STR("cluster_name"), v);
    v.v.str = WR_STR("Warren: an AMQP 0-9-1 broker");
    wr_table_add(&t, WR_STR("information"), v);
    w = wr_wb_init(srv->server_props, sizeof(srv->server_props));
    wr_table_encode(&w, &t);
    if (!w.err)
        srv->server_props_len = (uint32_t)(w.p - srv->server_props);
    wr_table_free(&t);
}

/* ---- reading, held or not ---- */

/* Input of a running connection is held while the memory alarm blocks its
 * publish, while flow control waits for a queue, and while its own output
 * is over WR_CONN_OUT_HIGH: a client that sends requests and never reads
 * the replies (basic.get, say) must not make us buffer them without bound.
 * Once closing, reading goes on whatever the output: close-ok must be seen,
 * and what follows a close is read and discarded so that closing the
 * socket does not turn unread data into a reset (a lingering close). */
static bool conn_input_held(const struct wr_conn *c)
{
    if (c->state >= WR_CS_CLOSING)
        return false;
    return c->read_paused || c->flow_q || c->out_full || c->refuse_at_ms;
}

/* Tell the socket half whether to read. Once the connection is dead the
 * socket half reads (and discards) on its own until the peer's EOF. */
static void conn_update_read(struct wr_conn *c)
{
    bool want = !conn_input_held(c);
    if (c->state == WR_CS_DEAD || want == c->reading)
        return;
    c->reading = want;
    wr_sock_want_read(c->sock, want);
}

/* Input was held and is not any more: frames already read may be waiting
 * in the input buffer; they are handled in the next loop turn (not here:
 * this may run in the middle of the turn's end, after the store flush). */
static void conn_resume_read(struct wr_conn *c)
{
    conn_update_read(c);
    if (c->reading && evbuffer_get_length(c->in))
        event_active(c->kick, EV_READ, 1);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_conn *c = arg;
    (void)fd;
    (void)what;
    wr_clock_update();
    if (c->reading)
        process_input(c);
}

/* ---- sending ---- */

/* Output is counted in the memory alarm, less the bodies that are
 * references to stored messages (those are counted as messages). Settled
 * whenever the output grows or is written, and on free. */
static uint64_t out_len(const struct wr_conn *c)
{
    return evbuffer_get_length(c->out) + c->dq.bytes + c->out_pending;
}

static void out_account(struct wr_conn *c)
{
    uint64_t len = out_len(c);
    uint64_t mine = len > c->out_shared ? len - c->out_shared : 0;
    c->srv->broker->out_bytes = c->srv->broker->out_bytes - c->out_counted + mine;
    c->out_counted = mine;
}

void wr_conn_note_output(struct wr_conn *c)
{
    c->last_send_ms = wr_now_ms();
    out_account(c);
    if (!c->out_full && out_len(c) > WR_CONN_OUT_HIGH) {
        c->out_full = true;
        conn_update_read(c);
    }
    if (!wr_list_linked(&c->dirty_node))
        wr_server_conn_dirty(c->srv, &c->dirty_node);
}

/* The output drained below the low watermark: consumers get a turn, and
 * requests are read again. */
static void output_drained(struct wr_conn *c)
{
    out_account(c);
    if (c->out_full && out_len(c) <= WR_CONN_OUT_LOW) {
        c->out_full = false;
        for (uint32_t i = 0; i < c->nchans_cap && c->state == WR_CS_RUNNING; i++)
            if (c->chans[i])
                wr_chan_output_ready(c->chans[i]);
        conn_resume_read(c);
    }
}

/* Writes go out here, once per loop turn: with io_threads = 0 straight
 * from the output buffer (no epoll registration for a socket that can take
 * the data at once), else handed to the connection's I/O thread in one
 * batch. What was written comes back in wr_conn_sock_wrote. */
void wr_conn_flush(struct wr_conn *c)
{
    wr_list_del(&c->dirty_node);
    if (c->state == WR_CS_DEAD || (!evbuffer_get_length(c->out) && !c->dq.n))
        return;
    wr_sock_flush(c->sock, c->out, &c->dq, &c->out_pending);
}

void wr_conn_sock_wrote(struct wr_conn *c, uint64_t bytes, uint32_t writes)
{
    c->send_oct.n += bytes;
    c->send_cnt += writes;
    c->out_pending = c->out_pending > bytes ? c->out_pending - bytes : 0;
    if (c->state == WR_CS_DEAD)
        out_account(c);
    else
        output_drained(c);
}

void wr_conn_send(struct wr_conn *c, uint16_t channel, const struct wr_method *m)
{
    if (c->state == WR_CS_DEAD)
        return;
    if (wr_frame_put_method(c->out, channel, m) < 0)
        wr_log_ctx(WR_LOG_ERROR, c->name, "cannot encode %s", wr_method_name(m->id));
    wr_conn_note_output(c);
}

/* ---- closing ----
 *
 * RUNNING --client close / we answer close-ok--> CLOSED
 * RUNNING --our close (wr_conn_error)--> CLOSING --close-ok or close--> CLOSED
 * CLOSED: every further connection.close gets a close-ok (RabbitMQ does
 *   the same: clients that close from several threads send several), the
 *   rest is discarded (the spec: ignore frames after close), until the
 *   peer closes the socket or goes quiet.
 * DEAD: the socket half writes the output, shuts the write side, reads
 *   and discards until EOF (a lingering close, net/io.c), closes the
 *   socket and says so; the connection is then freed. */

static void free_channels(struct wr_conn *c)
{
    for (uint32_t i = 0; i < c->nchans_cap; i++) {
        if (c->chans[i]) {
            wr_chan_free(c->chans[i]);
            c->chans[i] = NULL;
            c->srv->broker->churn.chans_closed++;
        }
    }
    c->nchans_open = 0;
}

/* Hand the connection to the server's reaper, which frees it at the end of
 * this loop turn (never while a callback up the stack still uses it). */
static void to_dead_list(struct wr_conn *c)
{
    wr_list_del(&c->node);
    wr_list_add_tail(&c->srv->dead, &c->node);
}

/* Graceful end: what is queued is written, then a lingering close. */
static void conn_finish(struct wr_conn *c)
{
    if (c->state == WR_CS_DEAD)
        return;
    c->state = WR_CS_DEAD;
    c->closing_since_ms = wr_now_ms();
    free_channels(c);
    wr_list_del(&c->dirty_node);
    wr_sock_finish(c->sock, c->out, &c->dq, &c->out_pending);
    out_account(c);
}

/* close and close-ok have been exchanged. */
static void conn_closed(struct wr_conn *c)
{
    free_channels(c);
    c->state = WR_CS_CLOSED;
    c->closing_since_ms = wr_now_ms();
    conn_update_read(c);
}

/* Deliveries queued for the I/O thread and dropped unwritten. */
static void release_msg(void *arg, struct wr_msg *m)
{
    (void)arg;
    wr_deliver_release(m);
}

void wr_conn_abort(struct wr_conn *c, const char *why)
{
    if (c->state != WR_CS_DEAD) {
        wr_log_ctx(c->state == WR_CS_RUNNING ? WR_LOG_WARNING : WR_LOG_INFO, c->name,
                   "closing connection: %s", why);
        c->state = WR_CS_DEAD;
        c->closing_since_ms = wr_now_ms();
        free_channels(c);
    }
    /* Nothing more will be written or read: the socket half closes (at
     * once with io_threads = 0) and says so (wr_conn_sock_closed). */
    evbuffer_drain(c->out, evbuffer_get_length(c->out));
    wr_dlvq_drop(&c->dq, release_msg, NULL);
    c->reading = false;
    wr_list_del(&c->dirty_node);
    wr_sock_abort(c->sock);
    out_account(c);
}

void wr_conn_sock_ended(struct wr_conn *c, const char *why)
{
    if (c->state == WR_CS_DEAD)
        return; /* the socket half is finishing on its own */
    if (c->state >= WR_CS_CLOSED)
        conn_finish(c); /* writes what is left, then the socket closes */
    else
        wr_conn_abort(c, why ? why : "client closed the socket without connection.close");
}

void wr_conn_sock_closed(struct wr_conn *c)
{
    c->sock_closed = true;
    if (c->state != WR_CS_DEAD) {
        c->state = WR_CS_DEAD;
        free_channels(c);
    }
    wr_list_del(&c->dirty_node);
    to_dead_list(c);
    wr_server_fd_released(c->srv);
}

/* connection.close(code, text); `logged`: the caller has said why already. */
static void conn_close_with(struct wr_conn *c, int code, uint32_t method_id, bool logged,
                            const char *fmt, va_list ap)
{
    struct wr_method m;
    char text[256], esc[WR_LOG_ESC_MAX];
    int n;

    if (c->state >= WR_CS_CLOSING)
        return;
    n = snprintf(text, sizeof(text), "%s - ",
                 wr_reply_code_name((uint16_t)code) ? wr_reply_code_name((uint16_t)code)
                                                    : "INTERNAL_ERROR");
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    /* The text may quote names the client chose. */
    if (!logged)
        wr_log_ctx(WR_LOG_WARNING, c->name, "connection error %d: %s", code,
                   wr_log_esc(esc, sizeof(esc), text, strlen(text)));

    wr_method_init(&m, WR_CONNECTION_CLOSE);
    m.u.connection_close.reply_code = (uint16_t)code;
    m.u.connection_close.reply_text = wr_str_c(text);
    m.u.connection_close.class_id = (uint16_t)(method_id >> 16);
    m.u.connection_close.method_id = (uint16_t)method_id;
    wr_conn_send(c, 0, &m);
    free_channels(c);
    if (c->state < WR_CS_OPEN) {
        /* During the handshake there is no close-ok to wait for. */
        conn_finish(c);
        return;
    }
    c->state = WR_CS_CLOSING;
    c->closing_since_ms = wr_now_ms();
    conn_update_read(c);
}

void wr_conn_error(struct wr_conn *c, int code, uint32_t method_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_close_with(c, code, method_id, false, fmt, ap);
    va_end(ap);
}

/* As wr_conn_error, when the reason has been logged already. */
static void conn_close_logged(struct wr_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_close_logged(struct wr_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_close_with(c, code, 0, true, fmt, ap);
    va_end(ap);
}

/* A user a backend let in belongs to its connection. */
static void drop_principal(struct wr_conn *c)
{
    if (wr_user_is_external(c->principal))
        wr_user_external_free(c->principal);
    c->principal = NULL;
}

void wr_conn_force_close(struct wr_conn *c, int code, const char *text)
{
    if (c->state < WR_CS_CLOSING)
        wr_conn_error(c, code, 0, "%s", text); /* releases the channels */
    else
        free_channels(c);
    flow_release(c);
    c->vh = NULL;
    drop_principal(c);
    c->vperm = NULL;
}

/* Force-close the connections `match` picks, on both lists: one on the
 * dead list is freed at the end of the turn, but until then it must not
 * point at what is deleted now. Returns how many were open. */
static unsigned close_matching(struct wr_server *s,
                               bool (*match)(const struct wr_conn *c, const void *arg),
                               const void *arg, const char *text)
{
    struct wr_list *lists[2] = {&s->conns, &s->dead}, *it, *tmp;
    unsigned n = 0;
    for (int i = 0; i < 2; i++) {
        wr_list_each_safe(it, tmp, lists[i])
        {
            struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
            if (!match(c, arg))
                continue;
            n += c->state < WR_CS_CLOSING;
            wr_conn_force_close(c, 320, text);
        }
    }
    return n;
}

static bool on_vhost(const struct wr_conn *c, const void *vh)
{
    return c->vh == vh;
}

/* c->user is set once the login passed (c->principal with it). */
static bool logged_in_as(const struct wr_conn *c, const void *arg)
{
    const struct wr_str *user = arg;
    return c->state >= WR_CS_TUNE_OK && c->user_len == user->len &&
           memcmp(c->user, user->ptr, user->len) == 0;
}

unsigned wr_conn_close_vhost(struct wr_server *s, const struct wr_vhost *vh)
{
    char text[300], esc[WR_LOG_ESC_MAX];
    snprintf(text, sizeof(text), "vhost '%s' is down",
             wr_log_esc(esc, sizeof(esc), vh->name, strlen(vh->name)));
    return close_matching(s, on_vhost, vh, text);
}

unsigned wr_conn_close_user(struct wr_server *s, struct wr_str user)
{
    char text[300], esc[WR_LOG_ESC_MAX];
    snprintf(text, sizeof(text), "user '%s' is deleted", WR_LOG_ESC(esc, user));
    return close_matching(s, logged_in_as, &user, text);
}

/* ---- lifecycle ---- */

bool wr_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
               (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
    }
    return false;
}

struct wr_conn *wr_conn_new(struct wr_server *srv, const struct wr_xport *xp,
                            const struct sockaddr *peer, int peerlen)
{
    struct wr_conn *c = calloc(1, sizeof(*c));
    char host[INET6_ADDRSTRLEN] = "?", lhost[INET6_ADDRSTRLEN] = "?";
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    int port = 0, lport = 0, one = 1;

    (void)peerlen;
    if (!c)
        return NULL;
    if (!srv->server_props_len)
        build_server_props(srv);
    int fd = xp->fd;
    c->tls = xp->ops != &wr_xport_plain;
    c->tls_seen = xp->handshake_done; /* a plain socket has none to wait for */
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->kick = event_new(srv->base, -1, 0, kick_cb, c);
    if (!c->in || !c->out || !c->kick)
        goto fail;
    evutil_make_socket_nonblocking(fd);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->loopback = wr_sockaddr_is_loopback(peer);
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)peer;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        memcpy(c->peer_addr, &a->sin_addr, 4);
        c->peer_addr_len = 4;
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)peer;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        memcpy(c->peer_addr, &a->sin6_addr, 16);
        c->peer_addr_len = 16;
    }
    if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0) {
        if (local.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)&local;
            inet_ntop(AF_INET, &a->sin_addr, lhost, sizeof(lhost));
            lport = ntohs(a->sin_port);
        } else if (local.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)&local;
            inet_ntop(AF_INET6, &a->sin6_addr, lhost, sizeof(lhost));
            lport = ntohs(a->sin6_port);
        }
    }
    snprintf(c->name, sizeof(c->name), "%s:%d -> %s:%d", host, port, lhost, lport);
    /* From here the socket is the socket half's (the caller's on failure). */
    if (!(c->sock = wr_sock_new(srv->io, c, xp, c->in, c->out)))
        goto fail;
    c->srv = srv;
    c->state = WR_CS_HEADER;
    c->frame_max = PRE_TUNE_FRAME_MAX;
    c->opened_ms = c->last_recv_ms = c->last_send_ms = wr_now_ms();
    wr_list_init(&c->exclusive_queues);
    wr_list_init(&c->consumers_waiting);
    wr_list_add_tail(&srv->conns, &c->node);
    srv->nconns++;
    c->srv->broker->churn.conns_opened++;
    /* Writing happens in wr_conn_flush at the end of the turn; the write
     * event is added only while the kernel cannot take everything. */
    wr_list_init(&c->dirty_node);
    wr_list_init(&c->flow_node);
    conn_update_read(c);
    wr_log_ctx(WR_LOG_DEBUG, c->name, "accepted connection");
    return c;
fail:
    if (c->in)
        evbuffer_free(c->in);
    if (c->out)
        evbuffer_free(c->out);
    if (c->kick)
        event_free(c->kick);
    free(c);
    return NULL;
}

void wr_conn_free(struct wr_conn *c)
{
    struct wr_list *it, *tmp;
    free_channels(c);
    drop_principal(c);
    /* Exclusive queues go with their connection. */
    wr_list_each_safe(it, tmp, &c->exclusive_queues)
    {
        struct wr_queue *q = wr_container_of(it, struct wr_queue, owner_node);
        wr_vhost_queue_delete(q->vhost, q);
    }
    wr_list_del(&c->node);
    wr_list_del(&c->dirty_node);
    flow_release(c);
    c->srv->nconns--;
    c->srv->broker->churn.conns_closed++;
    event_free(c->kick);
    wr_dlvq_drop(&c->dq, release_msg, NULL);
    wr_dlvq_free(&c->dq);
    if (wr_sock_threaded(c->sock))
        wr_log_ctx(WR_LOG_DEBUG, c->name, "%llu publishes assembled whole before reaching the core",
                   (unsigned long long)wr_sock_assembled_count(c->sock));
    wr_sock_free(c->sock); /* may release shared bodies (deliver.c), which uses c */
    evbuffer_free(c->in);
    evbuffer_free(c->out); /* the same */
    c->srv->broker->out_bytes -= c->out_counted;
    free(c->chans);
    free(c->client_props);
    wr_log_ctx(WR_LOG_DEBUG, c->name, "connection closed");
    free(c);
}

/* ---- flow control ---- */

void wr_conn_flow_pause(struct wr_conn *c, struct wr_queue *q)
{
    uint64_t now = wr_now_ms();
    if (c->flow_q || c->state != WR_CS_RUNNING || now < c->flow_free_ms)
        return;
    c->flow_q = q;
    c->flow_delivered = q->stat_delivered;
    c->flow_moved_ms = c->flow_since_ms = now;
    wr_queue_ref(q);
    conn_update_read(c);
    wr_list_add_tail(&c->srv->flow_paused, &c->flow_node);
}

static void flow_release(struct wr_conn *c)
{
    if (!c->flow_q)
        return;
    wr_queue_unref(c->flow_q);
    c->flow_q = NULL;
    wr_list_del(&c->flow_node);
}

void wr_conn_flow_check(struct wr_conn *c)
{
    struct wr_queue *q = c->flow_q;
    uint64_t now = wr_now_ms();
    if (!q)
        return;
    if (q->stat_delivered != c->flow_delivered) {
        c->flow_delivered = q->stat_delivered;
        c->flow_moved_ms = now;
    } else if (now - c->flow_moved_ms >= WR_FLOW_STALL_MS) {
        q->flow_stalled = true;
        q->flow_stall_delivered = q->stat_delivered;
    }
    if (now - c->flow_since_ms >= WR_FLOW_MAX_MS)
        c->flow_free_ms = now + WR_FLOW_GRACE_MS;
    else if (!q->deleted && q->ready >= WR_FLOW_LOW && wr_queue_flow_worth_pausing(q))
        return;
    flow_release(c);
    conn_update_read(c);
    if (c->state != WR_CS_RUNNING || !c->reading)
        return;
    process_input(c); /* what was read before the pause */
}

/* ---- the handshake ---- */

/* Whether connection.start offers `mech` here: it is in auth_mechanisms,
 * and EXTERNAL only on a TLS connection (as RabbitMQ's
 * rabbit_auth_mechanism_ssl, which offers it even without a client
 * certificate, so that the refusal says why). */
static bool mech_offered(const struct wr_conn *c, const char *mech)
{
    if (!wr_conf_list_has(&c->srv->conf->auth_mechanisms, mech))
        return false;
    return strcmp(mech, "EXTERNAL") != 0 || c->tls;
}

static void send_start(struct wr_conn *c)
{
    const struct wr_conf_list *l = &c->srv->conf->auth_mechanisms;
    char mechs[128];
    size_t o = 0;
    struct wr_method m;

    mechs[0] = '\0';
    for (uint32_t i = 0; i < l->n; i++) {
        const char *mech = l->item[i].value;
        bool again = false;
        for (uint32_t j = 0; j < i; j++)
            again |= !strcmp(l->item[j].value, mech);
        if (again || !mech_offered(c, mech) || o + strlen(mech) + 2 > sizeof(mechs))
            continue;
        o += (size_t)snprintf(mechs + o, sizeof(mechs) - o, "%s%s", o ? " " : "", mech);
    }
    wr_method_init(&m, WR_CONNECTION_START);
    /* wr_table_encode wrote the length prefix too; the method wants the body. */
    m.u.connection_start.server_properties =
        (struct wr_str){(const char *)c->srv->server_props + 4, c->srv->server_props_len - 4};
    m.u.connection_start.mechanisms = (struct wr_str){mechs, (uint32_t)o};
    m.u.connection_start.locales = WR_STR("en_US");
    wr_conn_send(c, 0, &m);
    c->state = WR_CS_START_OK;
}

static bool client_cap(struct wr_str props, const char *cap)
{
    struct wr_fv caps, v;
    if (wr_table_get(props, "capabilities", &caps) != 1 || caps.type != 'F')
        return false;
    return wr_table_get(caps.v.str, cap, &v) == 1 && v.type == 't' && v.v.t;
}

/* Tell the client its login was refused: with the
 * authentication_failure_close capability a connection.close 403, else
 * (older clients expect it) just the end of the socket. */
static void refuse_login(struct wr_conn *c)
{
    c->refuse_at_ms = 0;
    if (c->cap_auth_close) {
        /* login_refused logged the reason: one line per refusal. */
        conn_close_logged(c, 403,
                          "Login was refused using authentication mechanism %s. For details "
                          "see the broker logfile.",
                          c->refused_mech);
        return;
    }
    conn_finish(c);
}

/* A refused login: one log line (the peer and the user, never the
 * password), then the refusal, at once or after the throttle's delay. */
static void login_refused(struct wr_conn *c, struct wr_str mech, struct wr_str user,
                          const char *why)
{
    char esc[WR_LOG_ESC_MAX];
    uint32_t delay = wr_server_login_failed(c->srv, c->peer_addr, c->peer_addr_len);

    wr_log_ctx(WR_LOG_WARNING, c->name, "%.*s login refused: user '%s' - %s%s",
               (int)(mech.len < 32 ? mech.len : 32), mech.ptr, WR_LOG_ESC(esc, user), why,
               delay ? " (answered after a delay: repeated failures from this address)" : "");
    snprintf(c->refused_mech, sizeof(c->refused_mech), "%.*s", (int)(mech.len < 32 ? mech.len : 32),
             mech.ptr);
    if (!delay) {
        refuse_login(c);
        return;
    }
    c->refuse_at_ms = wr_now_ms() + delay;
    conn_update_read(c);
}

/* The client's properties, kept for the management API; a copy the
 * allocator refuses is simply not kept. The mechanism name too. */
static void keep_client_props(struct wr_conn *c, const struct wr_connection_start_ok *a)
{
    free(c->client_props);
    c->client_props = NULL;
    c->client_props_len = 0;
    if (a->client_properties.len && (c->client_props = malloc(a->client_properties.len))) {
        memcpy(c->client_props, a->client_properties.ptr, a->client_properties.len);
        c->client_props_len = a->client_properties.len;
    }
    snprintf(c->mech, sizeof(c->mech), "%.*s",
             (int)(a->mechanism.len < sizeof(c->mech) - 1 ? a->mechanism.len : sizeof(c->mech) - 1),
             a->mechanism.ptr);
}

/* SASL EXTERNAL: the user is named by the client's certificate, which the
 * TLS handshake verified; it must exist, and its password is not asked
 * for. The refusals are RabbitMQ's reasons. The name is written to
 * `name` (of sizeof(c->user) bytes), which *user then points into.
 * Returns 0, or -1 when refused. */
static int external_login(struct wr_conn *c, char *name, struct wr_str *user)
{
    const struct wr_conf *conf = c->srv->conf;
    struct x509_st *cert = wr_sock_peer_cert(c->sock);
    const struct wr_str mech = WR_STR("EXTERNAL");
    const char *why = NULL;
    int rc;

    if (strcmp(conf->ssl.verify, "verify_peer") != 0)
        why = "TLS configuration is unsafe (ssl_options.verify is not verify_peer)";
    else if (!cert)
        why = "connection peer presented no TLS (x.509) certificate";
    else if ((rc = wr_x509_login_name(cert, !strcmp(conf->ssl_cert_login_from, "common_name"), name,
                                      sizeof(c->user))) < 0)
        why = rc == WR_ENOSPC       ? "the name in the certificate is too long (255 bytes at most)"
              : rc == WR_ENOT_FOUND ? "no name found"
                                    : "the certificate's CN is not a name";
    if (why) {
        login_refused(c, mech, WR_STR_NULL, why);
        return -1;
    }
    *user = wr_str_c(name);
    c->principal = wr_users_get(c->srv->broker->users, *user);
    if (!c->principal) {
        login_refused(c, mech, *user, "no such user (named by the client certificate)");
        return -1;
    }
    return 0;
}

static void on_start_ok(struct wr_conn *c, const struct wr_connection_start_ok *a)
{
    const struct wr_conf *conf = c->srv->conf;
    char ext_name[sizeof(c->user)];
    struct wr_str user, pass;
    struct wr_errbuf err;
    struct wr_method m;
    int rc;

    c->cap_blocked = client_cap(a->client_properties, "connection.blocked");
    c->cap_cancel = client_cap(a->client_properties, "consumer_cancel_notify");
    c->cap_auth_close = client_cap(a->client_properties, "authentication_failure_close");
    keep_client_props(c, a);
    drop_principal(c);
    {
        /* RabbitMQ: a mechanism it does not know is "unknown", one it knows
         * but does not offer here "invalid" (both 503). */
        char mech[16];
        bool known = wr_str_eqc(a->mechanism, "PLAIN") || wr_str_eqc(a->mechanism, "AMQPLAIN") ||
                     wr_str_eqc(a->mechanism, "EXTERNAL");
        if (known)
            snprintf(mech, sizeof(mech), "%.*s", (int)a->mechanism.len, a->mechanism.ptr);
        if (!known || !mech_offered(c, mech)) {
            wr_conn_error(c, 503, WR_CONNECTION_START_OK, "%s authentication mechanism '%.*s'",
                          known ? "invalid" : "unknown", (int)a->mechanism.len, a->mechanism.ptr);
            return;
        }
    }
    if (wr_str_eqc(a->mechanism, "EXTERNAL")) {
        if (external_login(c, ext_name, &user) < 0)
            return;
    } else {
        rc = wr_sasl_parse(a->mechanism, a->response, &user, &pass);
        if (rc < 0 || user.len >= sizeof(c->user) ||
            wr_auth_login(c->srv->broker->users, c->srv->broker->auth_order, c->srv->broker->nauth,
                          user, pass, &c->principal, &err) < 0) {
            login_refused(c, a->mechanism, rc < 0 ? WR_STR_NULL : user,
                          rc < 0 ? "malformed response" : "invalid credentials");
            return;
        }
    }
    memcpy(c->user, user.ptr, user.len);
    c->user[user.len] = '\0';
    c->user_len = (uint8_t)user.len;
    if (!c->loopback && wr_conf_is_loopback_user(conf, c->user)) {
        /* As RabbitMQ: a login refusal like any other (the reason is in
         * the log, not in the reply). */
        login_refused(c, a->mechanism, user, "can only connect via localhost");
        return;
    }
    wr_method_init(&m, WR_CONNECTION_TUNE);
    m.u.connection_tune.channel_max = (uint16_t)conf->channel_max;
    m.u.connection_tune.frame_max = (uint32_t)conf->frame_max;
    m.u.connection_tune.heartbeat = (uint16_t)conf->heartbeat;
    wr_conn_send(c, 0, &m);
    c->state = WR_CS_TUNE_OK;
}

static void on_tune_ok(struct wr_conn *c, const struct wr_connection_tune_ok *a)
{
    const struct wr_conf *conf = c->srv->conf;
    /* 0 means "no limit", which is more than we offered: RabbitMQ refuses it
     * like any value above the server's. */
    uint32_t fmax = a->frame_max ? a->frame_max : UINT32_MAX;
    uint32_t cmax = a->channel_max ? a->channel_max : 65535;

    if (fmax < WR_AMQP_FRAME_MIN_SIZE) {
        wr_conn_error(c, 530, WR_CONNECTION_TUNE_OK, "frame_max=%u < %d min size", fmax,
                      WR_AMQP_FRAME_MIN_SIZE);
        return;
    }
    if (fmax > (uint32_t)conf->frame_max) {
        wr_conn_error(c, 530, WR_CONNECTION_TUNE_OK, "frame_max=%u > %lld max size", fmax,
                      (long long)conf->frame_max);
        return;
    }
    if (cmax > (uint32_t)conf->channel_max) {
        wr_conn_error(c, 530, WR_CONNECTION_TUNE_OK, "channel_max=%u > %lld max", cmax,
                      (long long)conf->channel_max);
        return;
    }
    c->frame_max = fmax;
    c->channel_max = (uint16_t)cmax;
    c->heartbeat = a->heartbeat;
    c->state = WR_CS_OPEN;
}

static void on_open(struct wr_conn *c, const struct wr_connection_open *a)
{
    struct wr_vhost *vh = wr_broker_vhost(c->srv->broker, a->virtual_host);
    struct wr_method m;

    if (!vh) {
        wr_conn_error(c, 530, WR_CONNECTION_OPEN, "vhost %.*s not found", (int)a->virtual_host.len,
                      a->virtual_host.ptr);
        return;
    }
    c->vperm = wr_user_vperm(c->principal, wr_str_c(vh->name));
    c->access_gen = wr_users_generation(c->srv->broker->users);
    if (!c->vperm) {
        wr_conn_error(c, 530, WR_CONNECTION_OPEN, "access to vhost '%s' refused for user '%s'",
                      vh->name, c->user);
        return;
    }
    c->vh = vh;
    wr_method_init(&m, WR_CONNECTION_OPEN_OK);
    wr_conn_send(c, 0, &m);
    c->state = WR_CS_RUNNING;
    wr_sock_assemble(c->sock, c->frame_max);
    wr_log_ctx(WR_LOG_INFO, c->name, "user '%s' authenticated and granted access to vhost '%s'",
               c->user, vh->name);
}

const struct wr_vperm *wr_conn_access(struct wr_conn *c, struct wr_user **user)
{
    struct wr_users *u = c->srv->broker->users;
    uint64_t gen = wr_users_generation(u);

    if (c->access_gen != gen) {
        c->access_gen = gen;
        if (wr_user_is_external(c->principal))
            wr_user_external_forget(c->principal); /* its backend is asked again */
        else
            c->principal = wr_users_get(u, (struct wr_str){c->user, c->user_len});
        c->vperm =
            c->principal && c->vh ? wr_user_vperm(c->principal, wr_str_c(c->vh->name)) : NULL;
        if (!c->principal && c->state == WR_CS_RUNNING)
            wr_conn_error(c, 320, 0, "user '%s' is deleted", c->user); /* RabbitMQ's text */
    }
    if (user)
        *user = c->principal;
    return c->vperm;
}

void wr_conn_set_blocked(struct wr_conn *c, bool blocked)
{
    struct wr_method m;
    if (c->state != WR_CS_RUNNING)
        return;
    if (blocked && !c->blocked_sent && c->cap_blocked) {
        wr_method_init(&m, WR_CONNECTION_BLOCKED);
        /* RabbitMQ's reasons: "low on memory", "low on disk". */
        m.u.connection_blocked.reason = c->srv->broker->disk_alarm && !c->srv->broker->mem_alarm
                                            ? WR_STR("low on disk")
                                            : WR_STR("low on memory");
        wr_conn_send(c, 0, &m);
        c->blocked_sent = true;
    } else if (!blocked) {
        if (c->blocked_sent) {
            wr_method_init(&m, WR_CONNECTION_UNBLOCKED);
            wr_conn_send(c, 0, &m);
            c->blocked_sent = false;
        }
        if (c->read_paused) {
            c->read_paused = false;
            conn_update_read(c);
            /* Frames may be waiting in the input buffer already. */
            if (c->reading)
                process_input(c);
        }
    }
}

/* ---- frames ---- */

static struct wr_chan *chan_get(struct wr_conn *c, uint16_t id)
{
    return id < c->nchans_cap ? c->chans[id] : NULL;
}

static int chan_slot(struct wr_conn *c, uint16_t id)
{
    if (id >= c->nchans_cap) {
        uint32_t cap = c->nchans_cap ? c->nchans_cap : 8;
        struct wr_chan **a;
        while (cap <= id)
            cap *= 2;
        a = realloc(c->chans, cap * sizeof(*a));
        if (!a)
            return WR_ENOMEM;
        memset(a + c->nchans_cap, 0, (cap - c->nchans_cap) * sizeof(*a));
        c->chans = a;
        c->nchans_cap = cap;
    }
    return 0;
}

static void channel0_method(struct wr_conn *c, const struct wr_method *m)
{
    struct wr_method r;
    switch (c->state) {
    case WR_CS_START_OK:
        if (m->id == WR_CONNECTION_START_OK)
            return on_start_ok(c, &m->u.connection_start_ok);
        break;
    case WR_CS_TUNE_OK:
        if (m->id == WR_CONNECTION_TUNE_OK)
            return on_tune_ok(c, &m->u.connection_tune_ok);
        break;
    case WR_CS_OPEN:
        if (m->id == WR_CONNECTION_OPEN)
            return on_open(c, &m->u.connection_open);
        break;
    case WR_CS_RUNNING:
        if (m->id == WR_CONNECTION_CLOSE) {
            char esc[WR_LOG_ESC_MAX];
            wr_log_ctx(WR_LOG_INFO, c->name, "client closed the connection (%u %s)",
                       m->u.connection_close.reply_code,
                       WR_LOG_ESC(esc, m->u.connection_close.reply_text));
            wr_method_init(&r, WR_CONNECTION_CLOSE_OK);
            wr_conn_send(c, 0, &r);
            conn_closed(c);
            return;
        }
        if (m->id == WR_CONNECTION_UPDATE_SECRET) {
            wr_method_init(&r, WR_CONNECTION_UPDATE_SECRET_OK);
            wr_conn_send(c, 0, &r);
            return;
        }
        if (m->id == WR_CONNECTION_BLOCKED || m->id == WR_CONNECTION_UNBLOCKED)
            return; /* a client telling us; nothing to do */
        break;
    case WR_CS_CLOSING:
        /* Our close crossed the client's: answer it, as RabbitMQ does, and
         * wait for the close-ok in CLOSED. */
        if (m->id == WR_CONNECTION_CLOSE_OK) {
            conn_closed(c);
        } else if (m->id == WR_CONNECTION_CLOSE) {
            wr_method_init(&r, WR_CONNECTION_CLOSE_OK);
            wr_conn_send(c, 0, &r);
            conn_closed(c);
        }
        return; /* everything else is ignored while closing */
    case WR_CS_CLOSED:
        if (m->id == WR_CONNECTION_CLOSE_OK) {
            conn_finish(c);
        } else if (m->id == WR_CONNECTION_CLOSE && !c->out_full) {
            wr_method_init(&r, WR_CONNECTION_CLOSE_OK);
            wr_conn_send(c, 0, &r);
        }
        return;
    default:
        break;
    }
    if (c->state == WR_CS_RUNNING)
        wr_conn_error(c, 504, m->id, "unexpected method in connection state running");
    else
        wr_conn_error(c, 504, m->id, "unexpected method %s during the handshake",
                      wr_method_name(m->id));
}

static void channel_method(struct wr_conn *c, uint16_t id, const struct wr_method *m)
{
    struct wr_chan *ch = chan_get(c, id);
    struct wr_method r;

    if (c->state != WR_CS_RUNNING) {
        if (c->state < WR_CS_CLOSING)
            wr_conn_error(c, 504, m->id, "unexpected method on channel %u during the handshake",
                          id);
        return;
    }
    if (!ch) {
        if (m->id != WR_CHANNEL_OPEN) {
            wr_conn_error(c, 504, m->id, "expected 'channel.open'");
            return;
        }
        /* RabbitMQ bounds the number of open channels, not their ids. */
        if (c->nchans_open >= c->channel_max) {
            wr_conn_error(c, 530, 0,
                          "number of channels opened (%u) has reached the negotiated "
                          "channel_max (%u)",
                          c->nchans_open, c->channel_max);
            return;
        }
        if (chan_slot(c, id) < 0 || !(ch = wr_chan_new(c, id))) {
            wr_conn_error(c, 541, m->id, "out of memory opening channel %u", id);
            return;
        }
        c->chans[id] = ch;
        c->nchans_open++;
        c->srv->broker->churn.chans_opened++;
        wr_method_init(&r, WR_CHANNEL_OPEN_OK);
        wr_conn_send(c, id, &r);
        return;
    }
    if (wr_chan_closing(ch)) {
        /* After our channel.close only close-ok means anything (the spec,
         * and RabbitMQ): the peer's own close, crossing ours, gets its
         * close-ok, but the channel stays closing until our close is
         * answered, so that answer (and an ack or publish already on the
         * wire) is not taken for a frame on an unopened channel. */
        if (m->id == WR_CHANNEL_CLOSE) {
            wr_method_init(&r, WR_CHANNEL_CLOSE_OK);
            wr_conn_send(c, id, &r);
        } else if (m->id == WR_CHANNEL_CLOSE_OK) {
            wr_chan_free(ch);
            c->chans[id] = NULL;
            c->nchans_open--;
            c->srv->broker->churn.chans_closed++;
        }
        return;
    }
    if (m->id == WR_CHANNEL_OPEN) {
        wr_conn_error(c, 504, m->id, "second 'channel.open' seen");
        return;
    }
    if (m->id == WR_CHANNEL_CLOSE) {
        wr_method_init(&r, WR_CHANNEL_CLOSE_OK);
        wr_chan_free(ch);
        c->chans[id] = NULL;
        c->nchans_open--;
        c->srv->broker->churn.chans_closed++;
        wr_conn_send(c, id, &r);
        return;
    }
    if (m->id == WR_CHANNEL_CLOSE_OK)
        return; /* stray close-ok: ignore as RabbitMQ does */
    if ((m->id >> 16) == WR_CLASS_CONNECTION) {
        wr_conn_error(c, 504, m->id, "connection method on channel %u", id);
        return;
    }
    wr_chan_method(ch, m);
    /* The channel may have been closed by its own error: it stays in the
     * table (closing) until close-ok arrives. */
}

static void handle_frame(struct wr_conn *c, struct evbuffer *in, const struct wr_frame *f)
{
    struct wr_method m;
    struct wr_chan *ch;
    int rc;

    switch (f->type) {
    case WR_AMQP_FRAME_HEARTBEAT:
        wr_frame_consume(in, f);
        if (f->channel != 0)
            wr_conn_error(c, 505, 0, "type 8 heartbeat frame on channel %u", f->channel);
        return;
    case WR_AMQP_FRAME_METHOD:
        rc = wr_method_decode(f->payload, f->size, &m);
        if (rc < 0) {
            uint32_t id = f->size >= 4 ? wr_load32(f->payload) : 0;
            wr_frame_consume(in, f);
            if (c->state >= WR_CS_CLOSING)
                return;
            if (rc == WR_ENOT_IMPLEMENTED)
                wr_conn_error(c, 540, id, "unknown method %u.%u", id >> 16, id & 0xffff);
            else if (rc == WR_ESYNTAX)
                wr_conn_error(c, 502, id, "malformed field table in %s", wr_method_name(id));
            else if (rc == WR_EUTF8) /* RabbitMQ names no method for one on a channel */
                wr_conn_error(c, 501, f->channel ? 0 : id, "Malformed UTF-8 in shortstr");
            else
                wr_conn_error(c, 501, id, "cannot decode %s arguments", wr_method_name(id));
            return;
        }
        /* Memory alarm: a publish waits in the input buffer, and the socket
         * is not read, until the alarm clears. */
        if (m.id == WR_BASIC_PUBLISH && c->srv->broker->alarm && c->state == WR_CS_RUNNING) {
            wr_conn_set_blocked(c, true);
            c->read_paused = true;
            conn_update_read(c);
            return;
        }
        /* The payload stays valid until consumed: handle first. */
        if (f->channel == 0) {
            channel0_method(c, &m);
        } else {
            struct wr_names_buf nb; /* RabbitMQ strips CR/LF from some names */
            wr_method_strip_crlf(&m, &nb);
            channel_method(c, f->channel, &m);
        }
        wr_frame_consume(in, f);
        return;
    case WR_AMQP_FRAME_HEADER:
    case WR_AMQP_FRAME_BODY:
        if (c->state >= WR_CS_CLOSING)
            break;
        ch = f->channel ? chan_get(c, f->channel) : NULL;
        if (c->state != WR_CS_RUNNING) {
            wr_conn_error(c, 505, 0, "content frame during the handshake");
            break;
        }
        if (!ch) {
            wr_conn_error(c, 505, 0, "expected method frame, got non method frame instead");
            break;
        }
        if (wr_chan_closing(ch))
            break;
        if (!wr_chan_expects_content(ch)) {
            wr_conn_error(c, 505, 0, "expected method frame, got non method frame instead");
            break;
        }
        if (f->type == WR_AMQP_FRAME_HEADER) {
            wr_chan_header(ch, f);
            break;
        }
        wr_chan_body(ch, in, f);
        return; /* the channel took or dropped the frame */
    }
    /* Dropped or refused: take it off the buffer. */
    evbuffer_drain(in, (size_t)f->size + WR_FRAME_OVERHEAD);
}

/* A marker the core cannot take (not one the I/O thread wrote, or more
 * publishes than the sock holds; neither is reached): what is left of the
 * input goes, and the peer hears of an unknown frame type. */
static void marker_refused(struct wr_conn *c, struct evbuffer *in)
{
    evbuffer_drain(in, evbuffer_get_length(in));
    c->marker_done = 0;
    if (c->state < WR_CS_CLOSING)
        wr_conn_error(c, 501, 0, "type 0, unknown frame");
}

/* Publishes the I/O thread assembled (net/asm.h): the marker frame at
 * the head of `in`, for the oldest `count` messages the sock holds. Each
 * is handled as its basic.publish, content header and body frames would
 * be, with the same checks in the same order. Returns false when it must
 * wait (the memory alarm holds publishes, as handle_frame does; flow
 * control holds input): c->marker_done says how many of the run were
 * taken, and the marker stays at the head until the last is. */
static bool handle_marker(struct wr_conn *c, struct evbuffer *in, uint32_t size)
{
    struct wr_method m;
    struct wr_asm_pub p;
    struct wr_chan *ch;
    struct wr_msg *msg;
    struct wr_names_buf nb;
    /* Copied out, not pulled up: the buffer's chains are the I/O
     * thread's allocations, and a pullup would free one here. */
    uint8_t f[WR_ASM_MARKER_MAX];
    uint16_t id;

    if (size + WR_FRAME_OVERHEAD > sizeof(f) ||
        evbuffer_copyout(in, f, size + WR_FRAME_OVERHEAD) !=
            (ev_ssize_t)(size + WR_FRAME_OVERHEAD) ||
        f[size + WR_FRAME_HEADER_SIZE] != WR_AMQP_FRAME_END || !(id = wr_load16(f + 1)) ||
        wr_asm_marker_parse(f + WR_FRAME_HEADER_SIZE, size, &p) < 0) {
        marker_refused(c, in); /* the thread leaves channel 0 alone */
        return true;
    }
    /* Only the publish's arguments are read (wr_method_init would clear
     * the whole union). */
    m.id = WR_BASIC_PUBLISH;
    m.u.basic_publish = (struct wr_basic_publish){
        .exchange = p.exchange, .routing_key = p.routing_key, .mandatory = p.mandatory};
    wr_method_strip_crlf(&m, &nb);
    while (c->marker_done < p.count) {
        if (c->srv->broker->alarm && c->state == WR_CS_RUNNING) {
            wr_conn_set_blocked(c, true);
            c->read_paused = true;
            conn_update_read(c);
            return false;
        }
        if (conn_input_held(c))
            return false;
        if (!(msg = wr_sock_assembled(c->sock, true))) {
            marker_refused(c, in);
            return true;
        }
        c->marker_done++;
        channel_method(c, id, &m);
        ch = chan_get(c, id);
        if (c->state == WR_CS_RUNNING && ch && !wr_chan_closing(ch) && wr_chan_expects_content(ch))
            wr_chan_assembled(ch, msg);
        else
            wr_msg_free_loose(msg); /* refused with the publish, or dropped while closing */
    }
    c->marker_done = 0;
    evbuffer_drain(in, (size_t)size + WR_FRAME_OVERHEAD);
    return true;
}

/* The TLS handshake just finished: the AMQP handshake's timer starts now
 * (RabbitMQ's handshake_timeout counts after the TLS handshake). */
void wr_conn_sock_tls(struct wr_conn *c)
{
    const char *proto = wr_sock_protocol(c->sock), *cipher = wr_sock_cipher(c->sock);
    if (!c->tls)
        return; /* a plain socket reports its (empty) handshake too: nothing to time */
    c->tls_seen = true;
    c->opened_ms = wr_now_ms();
    wr_log_ctx(WR_LOG_DEBUG, c->name, "TLS handshake done: %s, %s", proto ? proto : "?",
               cipher ? cipher : "?");
}

void wr_conn_sock_input(struct wr_conn *c, uint64_t bytes, uint32_t reads)
{
    c->recv_oct.n += bytes;
    c->recv_cnt += reads;
    c->last_recv_ms = wr_now_ms();
    process_input(c);
}

static void process_input(struct wr_conn *c)
{
    struct evbuffer *in = c->in;
    struct wr_frame f;
    int rc;

    if (c->state == WR_CS_DEAD)
        return;
    if (c->state == WR_CS_HEADER) {
        uint8_t h[8];
        size_t n = evbuffer_get_length(in);
        evbuffer_copyout(in, h, n < 8 ? n : 8);
        rc = wr_protocol_header_check(h, n < 8 ? n : 8);
        /* RabbitMQ also takes the 0-9 header ("AMQP" 1 1 0 9) as 0-9-1. */
        if (rc == WR_EFRAME && memcmp(h, "AMQP\x01\x01\x00\x09", n < 8 ? n : 8) == 0)
            rc = n < 8 ? WR_EAGAIN : 0;
        if (rc == WR_EAGAIN)
            return;
        if (rc < 0) {
            /* Tell the peer what we speak, then close. */
            wr_log_ctx(WR_LOG_INFO, c->name, "bad protocol header, replying with ours%s",
                       h[0] == 0x16 && !c->tls ? " (a TLS handshake on a plain AMQP port?)" : "");
            evbuffer_add(c->out, wr_protocol_header, sizeof(wr_protocol_header));
            evbuffer_drain(in, evbuffer_get_length(in));
            conn_finish(c);
            return;
        }
        evbuffer_drain(in, 8);
        send_start(c);
    }
    while (c->state != WR_CS_DEAD && !conn_input_held(c)) {
        if (wr_sock_assembled(c->sock, false)) {
            uint8_t h[WR_FRAME_HEADER_SIZE];
            if (evbuffer_copyout(in, h, sizeof(h)) == (ev_ssize_t)sizeof(h) &&
                h[0] == WR_ASM_FRAME_MARKER) {
                uint32_t size = wr_load32(h + 3);
                if ((uint64_t)size + WR_FRAME_OVERHEAD > evbuffer_get_length(in))
                    break; /* not reached: a marker crosses whole */
                if (!handle_marker(c, in, size))
                    break;
                continue;
            }
        }
        rc = wr_frame_peek(in, c->state >= WR_CS_OPEN ? c->frame_max : PRE_TUNE_FRAME_MAX, &f);
        if (rc == 0)
            break;
        if (rc < 0) {
            uint8_t h[7] = {0};
            evbuffer_copyout(in, h, sizeof(h));
            evbuffer_drain(in, evbuffer_get_length(in));
            if (c->state >= WR_CS_CLOSING)
                break;
            if (h[0] != 1 && h[0] != 2 && h[0] != 3 && h[0] != 8)
                wr_conn_error(c, 501, 0, "type %u, unknown frame", h[0]);
            else if ((uint64_t)wr_load32(h + 3) + WR_FRAME_OVERHEAD > c->frame_max)
                wr_conn_error(c, 501, 0, "frame_too_large: %u > %u", wr_load32(h + 3),
                              c->frame_max - WR_FRAME_OVERHEAD);
            else
                wr_conn_error(c, 501, 0, "type %u, invalid frame end marker or bad frame", h[0]);
            break;
        }
        handle_frame(c, in, &f);
    }
    for (uint32_t i = 0; c->state == WR_CS_RUNNING && i < c->nchans_cap; i++)
        if (c->chans[i])
            wr_chan_flush(c->chans[i]);
}

void wr_conn_tick(struct wr_conn *c, uint64_t now)
{
    const struct wr_conf *conf = c->srv->conf;
    switch (c->state) {
    case WR_CS_HEADER:
    case WR_CS_START_OK:
    case WR_CS_TUNE_OK:
    case WR_CS_OPEN:
        if (c->refuse_at_ms) {
            if (now >= c->refuse_at_ms)
                refuse_login(c);
            return;
        }
        if (!c->tls_seen) {
            if (now - c->opened_ms > (uint64_t)conf->ssl_handshake_timeout_ms)
                wr_conn_abort(c, "TLS handshake timed out (ssl_handshake_timeout)");
            return;
        }
        if (now - c->opened_ms > (uint64_t)conf->handshake_timeout_ms)
            wr_conn_abort(c, "handshake timeout");
        return;
    case WR_CS_RUNNING:
        if (!c->heartbeat)
            return;
        if (now - c->last_recv_ms > (uint64_t)c->heartbeat * 2000) {
            char why[96];
            snprintf(why, sizeof(why), "missed heartbeats from client, timeout: %us", c->heartbeat);
            wr_conn_abort(c, why);
            return;
        }
        if (now - c->last_send_ms >= (uint64_t)c->heartbeat * 500) {
            wr_frame_put_heartbeat(c->out);
            wr_conn_note_output(c);
        }
        return;
    case WR_CS_CLOSING:
        if (now - c->closing_since_ms > CLOSE_OK_TIMEOUT_MS)
            wr_conn_abort(c, "no connection.close-ok from client");
        return;
    case WR_CS_CLOSED:
        if (now - c->last_recv_ms > CLOSED_IDLE_MS || now - c->closing_since_ms > CLOSED_MAX_MS)
            conn_finish(c);
        return;
    case WR_CS_DEAD: /* the socket half's timers now */
        return;
    }
}

void wr_conn_sample(struct wr_conn *c, double dt_s)
{
    wr_counter_sample(&c->recv_oct, dt_s);
    wr_counter_sample(&c->send_oct, dt_s);
}
