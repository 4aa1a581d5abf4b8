/*
 * client.c - warren-perf's AMQP client connection; see client.h.
 *
 * Neighbours: warren-perf.c implements the handlers (admin, producer,
 * consumer, idle roles); wire/ encodes and decodes every frame.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "net/tls.h"
#include "net/transport.h"
#include "wire/field.h"
#include "wire/frame.h"

#include "client.h"

#define CLOSE_TIMEOUT_S 5
/* One read syscall takes up to this much (see sock_read_cb). */
#define READ_RESERVE (128 * 1024)
/* ...and one callback at most this much, so connections take turns. */
#define READ_BUDGET (1024 * 1024)
/* Until tune, frames are bounded by the spec's minimum size. */
#define PRE_TUNE_FRAME_MAX WR_AMQP_FRAME_MIN_SIZE

enum pc_state {
    PC_CONNECTING,
    PC_START, /* protocol header sent, waiting for connection.start */
    PC_TUNE,
    PC_OPENING,
    PC_CHAN_OPENING,
    PC_READY,
    PC_CLOSING,
    PC_CLOSED,
};

struct pc_conn {
    struct event_base *base;
    evutil_socket_t fd;
    struct wr_xport xp;     /* plain or TLS, on fd */
    bool r_wants_w;         /* a TLS read waits for writability */
    bool w_wants_r;         /* a TLS write waits for readability */
    struct event *rev;      /* readable: sock_read_cb */
    struct event *wev;      /* writable: connect done, room for output, or the producer's turn */
    struct event *flush_ev; /* activated when output is added: write at the end of the turn */
    struct evbuffer *in, *out;
    bool wev_added, flush_pending, want_writable;
    struct event *close_timer;
    const struct pc_handler *h;
    void *arg;
    const struct pc_params *p;
    enum pc_state state;
    uint32_t frame_max;
    uint64_t batch_ns;
    int in_cb;       /* > 0 while one of our libevent callbacks runs */
    bool release;    /* close the socket when the callback returns */

    /* the delivery being assembled */
    bool in_content;
    bool content_is_delivery; /* false: basic.return or get-ok, counted elsewhere */
    uint64_t tag, ts, body_size, body_seen;

    /* a channel error seen before our own close: reported when it completes */
    int err_code;
    char err_why[300];
};

uint64_t pc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *pc_arg(const struct pc_conn *c)
{
    return c->arg;
}

struct evbuffer *pc_output(struct pc_conn *c)
{
    return c->out;
}

uint32_t pc_frame_max(const struct pc_conn *c)
{
    return c->frame_max;
}

uint64_t pc_batch_time(const struct pc_conn *c)
{
    return c->batch_ns;
}

bool pc_is_ready(const struct pc_conn *c)
{
    return c->state == PC_READY;
}

static int send_on(struct pc_conn *c, uint16_t channel, const struct wr_method *m)
{
    if (c->fd < 0 || c->state == PC_CLOSED)
        return WR_EIO;
    return wr_frame_put_method(c->out, channel, m);
}

int pc_send(struct pc_conn *c, const struct wr_method *m)
{
    if (c->state != PC_READY)
        return WR_EIO;
    return send_on(c, PC_CHANNEL, m);
}

/* ---- ending ---- */

static void free_event(struct event **ev)
{
    if (*ev) {
        event_free(*ev);
        *ev = NULL;
    }
}

static void release_now(struct pc_conn *c)
{
    free_event(&c->rev);
    free_event(&c->wev);
    free_event(&c->flush_ev);
    free_event(&c->close_timer);
    c->wev_added = false;
    if (c->fd >= 0) {
        /* A last close or close-ok may still be queued: one best-effort
         * write before the socket goes. */
        size_t sent;
        if (evbuffer_get_length(c->out))
            (void)c->xp.ops->write(&c->xp, c->out, &sent);
        c->xp.ops->close(&c->xp);
        c->fd = -1;
    }
}

/* The connection is over: tell the handler once, let go of the socket when
 * no callback of ours is on the stack. */
static void finish(struct pc_conn *c, int err, const char *why)
{
    if (c->state == PC_CLOSED)
        return;
    c->state = PC_CLOSED;
    if (c->rev)
        event_del(c->rev);
    if (c->wev)
        event_del(c->wev);
    if (c->flush_ev)
        event_del(c->flush_ev);
    c->wev_added = false;
    if (c->in_cb)
        c->release = true;
    else
        release_now(c);
    c->h->closed(c, err, why);
}

static void close_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pc_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->err_code)
        finish(c, c->err_code, c->err_why);
    else
        finish(c, -1, "timed out waiting for connection.close-ok");
}

void pc_close(struct pc_conn *c)
{
    struct wr_method m;
    struct timeval tv = {CLOSE_TIMEOUT_S, 0};

    if (c->state == PC_CLOSING || c->state == PC_CLOSED)
        return;
    if (c->state < PC_TUNE || c->fd < 0) {
        /* Nothing negotiated yet: just hang up. */
        finish(c, 0, "closed before the handshake");
        return;
    }
    wr_method_init(&m, WR_CONNECTION_CLOSE);
    m.u.connection_close.reply_code = WR_AMQP_REPLY_SUCCESS;
    m.u.connection_close.reply_text = WR_STR("warren-perf done");
    send_on(c, 0, &m);
    c->state = PC_CLOSING;
    c->close_timer = evtimer_new(c->base, close_timeout_cb, c);
    if (c->close_timer)
        evtimer_add(c->close_timer, &tv);
}

void pc_conn_free(struct pc_conn *c)
{
    if (!c)
        return;
    release_now(c);
    if (c->in)
        evbuffer_free(c->in);
    if (c->out)
        evbuffer_free(c->out);
    free(c);
}

/* ---- handshake ---- */

static int send_start_ok(struct pc_conn *c)
{
    uint8_t props[512], resp[512];
    struct wr_table t = {0}, *caps = calloc(1, sizeof(*caps));
    struct wr_method m;
    struct wr_wb w;
    struct wr_fv v;
    size_t ul = strlen(c->p->user), pl = strlen(c->p->pass);
    static const char *const cap_names[] = {
        "publisher_confirms", "basic.nack", "consumer_cancel_notify",
        "connection.blocked", "exchange_exchange_bindings",
    };

    if (!caps || ul + pl + 2 > sizeof(resp)) {
        free(caps);
        return WR_ENOMEM;
    }
    v.type = 't';
    v.v.t = true;
    for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
        wr_table_add(caps, wr_str_c(cap_names[i]), v);
    v.type = 'F';
    v.v.table = caps;
    wr_table_add(&t, WR_STR("capabilities"), v);
    v.type = 'S';
    v.v.str = WR_STR("warren-perf");
    wr_table_add(&t, WR_STR("product"), v);
    v.v.str = WR_STR("C11/libevent");
    wr_table_add(&t, WR_STR("platform"), v);
    w = wr_wb_init(props, sizeof(props));
    wr_table_encode(&w, &t);
    wr_table_free(&t);
    if (w.err)
        return w.err;

    /* PLAIN: \0user\0password */
    resp[0] = 0;
    memcpy(resp + 1, c->p->user, ul);
    resp[1 + ul] = 0;
    memcpy(resp + 2 + ul, c->p->pass, pl);

    wr_method_init(&m, WR_CONNECTION_START_OK);
    /* wr_table_encode wrote the 4-byte length first; the struct holds the body. */
    m.u.connection_start_ok.client_properties =
        (struct wr_str){(const char *)props + 4, (uint32_t)(w.p - props - 4)};
    m.u.connection_start_ok.mechanism = WR_STR("PLAIN");
    m.u.connection_start_ok.response = (struct wr_str){(const char *)resp, (uint32_t)(ul + pl + 2)};
    m.u.connection_start_ok.locale = WR_STR("en_US");
    return send_on(c, 0, &m);
}

static int on_tune(struct pc_conn *c, const struct wr_connection_tune *t)
{
    struct wr_method m;
    uint32_t fmax = c->p->frame_max;
    int rc;

    if (t->frame_max && t->frame_max < fmax)
        fmax = t->frame_max;
    c->frame_max = fmax;
    wr_method_init(&m, WR_CONNECTION_TUNE_OK);
    m.u.connection_tune_ok.channel_max = t->channel_max;
    m.u.connection_tune_ok.frame_max = fmax;
    m.u.connection_tune_ok.heartbeat = 0; /* a benchmark needs none */
    if ((rc = send_on(c, 0, &m)) < 0)
        return rc;
    wr_method_init(&m, WR_CONNECTION_OPEN);
    m.u.connection_open.virtual_host = wr_str_c(c->p->vhost);
    return send_on(c, 0, &m);
}

/* End with "<what><detail><after>". */
static void fail(struct pc_conn *c, int code, const char *what, struct wr_str detail,
                 const char *after)
{
    char why[512];
    snprintf(why, sizeof(why), "%s%.*s%s", what, (int)detail.len, detail.ptr ? detail.ptr : "",
             after);
    finish(c, code, why);
}

/* Methods on channel 0. */
static void on_conn_method(struct pc_conn *c, const struct wr_method *m)
{
    struct wr_method r;

    switch (m->id) {
    case WR_CONNECTION_START:
        if (c->state != PC_START)
            break;
        c->state = PC_TUNE;
        if (send_start_ok(c) < 0)
            finish(c, -1, "cannot encode connection.start-ok");
        return;
    case WR_CONNECTION_TUNE:
        if (c->state != PC_TUNE)
            break;
        c->state = PC_OPENING;
        if (on_tune(c, &m->u.connection_tune) < 0)
            finish(c, -1, "cannot encode connection.tune-ok");
        return;
    case WR_CONNECTION_OPEN_OK:
        if (c->state != PC_OPENING)
            break;
        c->state = PC_CHAN_OPENING;
        wr_method_init(&r, WR_CHANNEL_OPEN);
        send_on(c, PC_CHANNEL, &r);
        return;
    case WR_CONNECTION_CLOSE: {
        const struct wr_connection_close *a = &m->u.connection_close;
        wr_method_init(&r, WR_CONNECTION_CLOSE_OK);
        send_on(c, 0, &r);
        fail(c, a->reply_code ? a->reply_code : -1, "broker closed the connection: ",
             a->reply_text, "");
        return;
    }
    case WR_CONNECTION_CLOSE_OK:
        if (c->err_code)
            finish(c, c->err_code, c->err_why);
        else
            finish(c, 0, "closed");
        return;
    case WR_CONNECTION_BLOCKED:
        if (c->h->blocked)
            c->h->blocked(c, 1);
        return;
    case WR_CONNECTION_UNBLOCKED:
        if (c->h->blocked)
            c->h->blocked(c, 0);
        return;
    default:
        break;
    }
    if (c->state != PC_CLOSING)
        fail(c, -1, "unexpected ", wr_str_c(wr_method_name(m->id)), " on channel 0");
}

/* Methods on channel 1. */
static void on_chan_method(struct pc_conn *c, const struct wr_method *m)
{
    struct wr_method r;

    switch (m->id) {
    case WR_CHANNEL_OPEN_OK:
        if (c->state != PC_CHAN_OPENING)
            break;
        c->state = PC_READY;
        c->h->ready(c);
        return;
    case WR_CHANNEL_CLOSE: {
        const struct wr_channel_close *a = &m->u.channel_close;
        /* The channel is gone, so is the role's reason to be: remember why,
         * answer, and take the connection down cleanly. */
        snprintf(c->err_why, sizeof(c->err_why), "broker closed the channel: %.*s (%s)",
                 (int)a->reply_text.len, a->reply_text.ptr ? a->reply_text.ptr : "",
                 wr_method_name((uint32_t)a->class_id << 16 | a->method_id));
        c->err_code = a->reply_code ? a->reply_code : -1;
        wr_method_init(&r, WR_CHANNEL_CLOSE_OK);
        send_on(c, PC_CHANNEL, &r);
        pc_close(c);
        return;
    }
    case WR_BASIC_DELIVER:
        c->in_content = true;
        c->content_is_delivery = true;
        c->tag = m->u.basic_deliver.delivery_tag;
        c->ts = 0;
        c->body_size = 0;
        c->body_seen = 0;
        return;
    case WR_BASIC_RETURN:
    case WR_BASIC_GET_OK:
        c->in_content = true;
        c->content_is_delivery = false;
        c->body_seen = 0;
        c->h->method(c, m);
        return;
    default:
        if (c->state == PC_READY || c->state == PC_CLOSING)
            c->h->method(c, m);
        return;
    }
    fail(c, -1, "unexpected ", wr_str_c(wr_method_name(m->id)), "");
}

static void content_done(struct pc_conn *c)
{
    c->in_content = false;
    if (c->content_is_delivery)
        c->h->delivery(c, c->tag, c->ts, c->body_size);
}

/* One whole frame with a contiguous payload. */
static void on_frame(struct pc_conn *c, const struct wr_frame *f)
{
    struct wr_method m;
    int rc;

    switch (f->type) {
    case WR_AMQP_FRAME_METHOD:
        if ((rc = wr_method_decode(f->payload, f->size, &m)) < 0) {
            finish(c, -1, "cannot decode a method frame from the broker");
            return;
        }
        if (f->channel == 0)
            on_conn_method(c, &m);
        else
            on_chan_method(c, &m);
        return;
    case WR_AMQP_FRAME_HEADER: {
        struct wr_content_header h;
        if (!c->in_content || wr_content_header_decode(f->payload, f->size, &h) < 0) {
            finish(c, -1, "unexpected or malformed content header");
            return;
        }
        c->body_size = h.body_size;
        if (h.body_size == 0)
            content_done(c);
        return;
    }
    case WR_AMQP_FRAME_BODY:
        if (!c->in_content) {
            finish(c, -1, "unexpected body frame");
            return;
        }
        if (c->body_seen == 0 && f->size >= 8)
            c->ts = wr_load64(f->payload);
        c->body_seen += f->size;
        if (c->body_seen >= c->body_size)
            content_done(c);
        return;
    default: /* heartbeats: we asked for none, ignore any */
        return;
    }
}

static uint32_t cur_frame_max(const struct pc_conn *c)
{
    return c->state >= PC_CHAN_OPENING ? c->frame_max : PRE_TUNE_FRAME_MAX + 4096u;
}

/* Cut as many frames as the input holds. Returns false when the connection
 * ended. */
static bool parse_input(struct pc_conn *c, struct evbuffer *in)
{
    struct wr_frame f;

    while (c->state != PC_CLOSED) {
        struct evbuffer_iovec v;
        size_t used = 0;
        long n;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return true;
        /* Whole frames inside the first contiguous chunk: no copy. */
        while ((n = wr_frame_parse((const uint8_t *)v.iov_base + used, v.iov_len - used,
                                   cur_frame_max(c), &f)) > 0) {
            on_frame(c, &f);
            used += (size_t)n;
            if (c->state == PC_CLOSED)
                return false;
        }
        if (n != WR_EAGAIN) {
            finish(c, -1, "framing error from the broker");
            return false;
        }
        if (used) {
            evbuffer_drain(in, used);
            continue;
        }
        /* The next frame straddles chunks (or is incomplete): let the codec
         * check the header, then make it contiguous. */
        {
            int rc = wr_frame_peek(in, cur_frame_max(c), &f);
            size_t total;
            const uint8_t *p;
            if (rc == 0)
                return true;
            if (rc < 0) {
                finish(c, -1, "framing error from the broker");
                return false;
            }
            total = (size_t)f.size + WR_FRAME_OVERHEAD;
            if (!(p = evbuffer_pullup(in, (ev_ssize_t)total)) ||
                wr_frame_parse(p, total, cur_frame_max(c), &f) != (long)total) {
                finish(c, -1, "framing error from the broker");
                return false;
            }
            on_frame(c, &f);
            evbuffer_drain(in, total);
        }
    }
    return false;
}

static void leave_cb(struct pc_conn *c)
{
    if (--c->in_cb == 0 && c->release)
        release_now(c);
}

static void flush_output(struct pc_conn *c);
static void update_wev(struct pc_conn *c);

/* Reading is our own, not evbuffer_read's: libevent 2.1's evbuffer_read
 * takes at most 4096 bytes per call (EVBUFFER_MAX_READ, which
 * bufferevent_set_max_single_read does not lift), which would cost a
 * readv, an FIONREAD ioctl and an epoll_wait per 4 KiB. Here one read of
 * the transport (one readv for plain TCP) fills up to READ_RESERVE bytes of
 * reserved buffer space. */
static void sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pc_conn *c = arg;
    size_t total = 0;
    (void)fd;
    (void)what;

    c->in_cb++;
    if (c->w_wants_r) { /* a TLS write waited for this */
        c->w_wants_r = false;
        flush_output(c);
    }
    while (total < READ_BUDGET && c->state != PC_CLOSED) {
        size_t got = 0;
        enum wr_xp_status st = c->xp.ops->read(&c->xp, c->in, READ_RESERVE, &got);
        if (got) {
            total += got;
            c->batch_ns = pc_now_ns();
            if (parse_input(c, c->in) && c->h->read_done)
                c->h->read_done(c);
        }
        if (st == WR_XP_OK)
            continue;
        if (st == WR_XP_WANT_READ) /* the socket is empty for now */
            break;
        if (st == WR_XP_WANT_WRITE) {
            c->r_wants_w = true;
            update_wev(c);
            break;
        }
        if (c->state != PC_CLOSED)
            finish(c, -1, st == WR_XP_EOF ? "the broker closed the socket" : wr_xport_why(&c->xp));
        break;
    }
    /* TLS may hold records the socket will not announce again. */
    if (total >= READ_BUDGET && c->state != PC_CLOSED && c->xp.ops->has_pending(&c->xp))
        event_active(c->rev, EV_READ, 1);
    leave_cb(c);
}

/* ---- writing ---- */

/* Keep the write event registered exactly while it is needed: output the
 * kernel did not take, or a producer that wants its turn. No epoll_ctl
 * pair per message, as a bufferevent would make. */
static void update_wev(struct pc_conn *c)
{
    bool need = c->fd >= 0 && c->state != PC_CLOSED &&
                (c->state == PC_CONNECTING || c->r_wants_w ||
                 (evbuffer_get_length(c->out) > 0 && !c->w_wants_r) || c->want_writable);
    if (need && !c->wev_added) {
        event_add(c->wev, NULL);
        c->wev_added = true;
    } else if (!need && c->wev_added) {
        event_del(c->wev);
        c->wev_added = false;
    }
}

/* Write what the kernel takes now. */
static void flush_output(struct pc_conn *c)
{
    while (c->state != PC_CLOSED && evbuffer_get_length(c->out) > 0 && !c->w_wants_r) {
        size_t sent = 0;
        enum wr_xp_status st = c->xp.ops->write(&c->xp, c->out, &sent);
        if (st == WR_XP_OK)
            break;
        if (st == WR_XP_WANT_READ) {
            c->w_wants_r = true;
            break;
        }
        if (st == WR_XP_WANT_WRITE) {
            if (sent)
                continue; /* evbuffer_write takes at most so many chunks */
            break;
        }
        finish(c, -1, wr_xport_why(&c->xp));
        return;
    }
    update_wev(c);
}

void pc_want_writable(struct pc_conn *c, bool on)
{
    if (c->want_writable == on)
        return;
    c->want_writable = on;
    update_wev(c);
}

/* Output was added: write it once, at the end of this loop turn, together
 * with whatever else the turn adds. */
static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct pc_conn *c = arg;
    (void)buf;
    if (info->n_added && !c->flush_pending && !c->wev_added && c->flush_ev &&
        c->state != PC_CONNECTING && c->state != PC_CLOSED) {
        c->flush_pending = true;
        event_active(c->flush_ev, EV_WRITE, 0);
    }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pc_conn *c = arg;
    (void)fd;
    (void)what;
    c->in_cb++;
    c->flush_pending = false;
    flush_output(c);
    leave_cb(c);
}

static void connected(struct pc_conn *c)
{
    int one = 1, err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        char why[256];
        snprintf(why, sizeof(why), "socket error: %s", evutil_socket_error_to_string(err));
        finish(c, -1, why);
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->p->tls && wr_tls_xport_connect(&c->xp, c->fd, c->p->tls, "localhost") < 0) {
        finish(c, -1, wr_xport_why(&c->xp));
        return;
    }
    if (event_add(c->rev, NULL) < 0) {
        finish(c, -1, "cannot watch the socket");
        return;
    }
    c->state = PC_START;
    evbuffer_add(c->out, wr_protocol_header, sizeof(wr_protocol_header));
}

static void sock_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pc_conn *c = arg;
    (void)fd;
    (void)what;

    c->in_cb++;
    if (c->state == PC_CONNECTING) {
        connected(c);
    } else {
        if (c->r_wants_w) { /* a TLS read waited for this */
            c->r_wants_w = false;
            update_wev(c);
            sock_read_cb(fd, EV_READ, c);
        }
        flush_output(c);
        if (c->want_writable && c->state == PC_READY &&
            evbuffer_get_length(c->out) <= c->p->write_lowmark && c->h->writable)
            c->h->writable(c);
    }
    leave_cb(c);
}

struct pc_conn *pc_conn_new(struct event_base *base, const struct pc_params *p,
                            const struct pc_handler *h, void *arg)
{
    struct pc_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->base = base;
    c->h = h;
    c->arg = arg;
    c->p = p;
    c->frame_max = PRE_TUNE_FRAME_MAX;
    c->state = PC_CONNECTING;
    c->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    wr_xport_plain_init(&c->xp, c->fd); /* TLS starts once connected */
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    if (c->fd < 0 || !c->in || !c->out)
        goto fail;
    c->rev = event_new(base, c->fd, EV_READ | EV_PERSIST, sock_read_cb, c);
    c->wev = event_new(base, c->fd, EV_WRITE | EV_PERSIST, sock_write_cb, c);
    c->flush_ev = event_new(base, -1, 0, flush_cb, c);
    if (!c->rev || !c->wev || !c->flush_ev || !evbuffer_add_cb(c->out, out_cb, c))
        goto fail;
    if (connect(c->fd, (const struct sockaddr *)&p->addr, p->addrlen) < 0 && errno != EINPROGRESS)
        goto fail;
    /* Writable means connected (or failed: SO_ERROR says). */
    update_wev(c);
    return c;
fail:
    pc_conn_free(c);
    return NULL;
}
