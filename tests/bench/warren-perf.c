/*
 * warren-perf.c - an AMQP 0-9-1 load generator in the manner of RabbitMQ's
 * PerfTest (same flag names where PerfTest has them), built on the
 * project's codec and one libevent loop.
 *
 * A run has phases. An admin connection declares the topology (exchange,
 * queues, bindings, optional extra bindings); then the producer and
 * consumer connections open and set up their channel (confirm.select,
 * basic.qos, basic.consume); then the run starts: producers publish as fast
 * as the socket takes it (or at -r msg/s each), consumers count deliveries
 * and ack; after -z seconds (or when -C messages each were published and
 * all came back) the clients close and the admin deletes what it declared.
 *
 * Every body starts with the 8-byte CLOCK_MONOTONIC send time, so the
 * consumer measures end-to-end latency into a log-linear histogram (hist.h);
 * confirms are timed the same way. The tool times itself with getrusage so
 * the report shows it was not the bottleneck (CPU ns per message).
 *
 * Other modes: --idle-connections N opens N connections with a channel each
 * and holds them; --queues N spreads producers over N queues with a
 * consumer each; --fanout-queues N binds N queues to a fanout exchange.
 * --broker-pid PID samples that process's RSS and CPU time at the start and
 * end of the run, for the comparison script (compare.sh).
 *
 * Single-threaded: the broker under test gets the other core of a small
 * machine, and one loop turn batches all the writes of every connection.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include "wire/field.h"
#include "wire/frame.h"

#include "perf.h"

#define STEP_WINDOW 256           /* pipelined setup methods per connection */
#define FILL_HIGH (256 * 1024)    /* unlimited producer: top the output up to this */
#define WRITE_LOWMARK (64 * 1024) /* ...whenever it drains below this */
#define CHUNK_BYTES (64 * 1024)   /* one evbuffer reservation */
#define CONNECT_WINDOW 64         /* idle mode: handshakes in flight */
#define SETTLE_POLL_MS 100
#define SETTLE_TIMEOUT_S 120

static void stop_run(struct perf *p);
static void producer_fill(struct role *r);
static void check_complete(struct perf *p);
static void role_start_steps(struct role *r);

static void set_error(struct perf *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct perf *p, const char *fmt, ...)
{
    va_list ap;
    if (p->exit_code)
        return; /* keep the first error: it is usually the cause */
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    p->exit_code = 1;
    fprintf(stderr, "warren-perf: %s\n", p->error);
}

/* ---- pipelined steps ---- */

static bool is_step_reply(uint32_t id)
{
    switch (id) {
    case WR_EXCHANGE_DECLARE_OK:
    case WR_EXCHANGE_DELETE_OK:
    case WR_QUEUE_DECLARE_OK:
    case WR_QUEUE_BIND_OK:
    case WR_QUEUE_DELETE_OK:
    case WR_QUEUE_PURGE_OK:
    case WR_BASIC_QOS_OK:
    case WR_BASIC_CONSUME_OK:
    case WR_CONFIRM_SELECT_OK:
        return true;
    default:
        return false;
    }
}

static void push_steps(struct role *r)
{
    char buf[512];
    struct wr_method m;

    while (r->step_sent < r->step_total && r->step_sent - r->step_done < STEP_WINDOW) {
        r->step(r, r->step_sent, &m, buf, sizeof(buf));
        if (pc_send(r->c, &m) < 0) {
            set_error(r->perf, "cannot encode %s", wr_method_name(m.id));
            r->step_total = r->step_sent;
            break;
        }
        r->step_sent++;
    }
}

/* Run the role's current script: nsteps() methods, each answered by one
 * -ok, then steps_done(). */
static void role_start_steps(struct role *r)
{
    r->step_sent = r->step_done = 0;
    r->step_total = r->nsteps(r);
    if (r->step_total == 0) {
        r->steps_done(r);
        return;
    }
    push_steps(r);
}

static void on_step_reply(struct role *r)
{
    if (r->step_done >= r->step_total)
        return;
    if (++r->step_done == r->step_total)
        r->steps_done(r);
    else
        push_steps(r);
}

/* ---- topology ---- */

/* "k=v,k=v": integers as signed 64-bit, true/false as booleans, the rest
 * as strings. Returns the encoded table body in *out (caller frees). */
static int encode_queue_args(const char *spec, uint8_t **out, uint32_t *len)
{
    struct wr_table t = {0};
    char *copy, *save = NULL, *tok;
    uint8_t *buf;
    struct wr_wb w;
    size_t need;

    *out = NULL;
    *len = 0;
    if (!spec || !*spec)
        return 0;
    if (!(copy = strdup(spec)))
        return -1;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *end;
        struct wr_fv v;
        long long n;
        if (!eq) {
            fprintf(stderr, "warren-perf: arguments: '%s' is not key=value\n", tok);
            free(copy);
            wr_table_free(&t);
            return -1;
        }
        *eq = 0;
        errno = 0;
        n = strtoll(eq + 1, &end, 10);
        if (eq[1] && !*end && !errno) {
            v.type = 'l';
            v.v.l = n;
        } else if (!strcmp(eq + 1, "true") || !strcmp(eq + 1, "false")) {
            v.type = 't';
            v.v.t = eq[1] == 't';
        } else {
            v.type = 'S';
            v.v.str = wr_str_c(eq + 1);
        }
        wr_table_add(&t, wr_str_c(tok), v);
    }
    need = wr_table_encoded_size(&t);
    buf = malloc(need);
    if (!buf) {
        free(copy);
        wr_table_free(&t);
        return -1;
    }
    w = wr_wb_init(buf, need);
    wr_table_encode(&w, &t);
    wr_table_free(&t);
    free(copy); /* the tree pointed into it; the bytes are copied now */
    if (w.err) {
        free(buf);
        return -1;
    }
    /* keep the body only: the method struct holds tables without length */
    memmove(buf, buf + 4, need - 4);
    *out = buf;
    *len = (uint32_t)(need - 4);
    return 0;
}

static uint8_t *qargs_body;
static uint32_t qargs_len;
static uint8_t *cargs_body; /* --consumer-args */
static uint32_t cargs_len;

static bool has_exchange(const struct perf *p)
{
    return p->o.exchange && *p->o.exchange;
}

/* Routing key a producer uses for target i. */
static const char *target_key(const struct perf *p, unsigned i)
{
    if (p->o.queues)
        return p->queues[i];
    if (p->o.fanout_queues)
        return p->o.rkey ? p->o.rkey : "";
    return p->o.rkey ? p->o.rkey : p->queues[0];
}

/* Binding key for queue i. */
static const char *bind_key(const struct perf *p, unsigned i)
{
    if (p->o.queues)
        return p->queues[i];
    return target_key(p, 0);
}

/* admin, setup: [exchange.declare] queue.declare*nq [queue.bind*nq] [extra binds] */
static unsigned admin_setup_n(struct role *r)
{
    struct perf *p = r->perf;
    return (p->declare_exchange ? 1u : 0u) + p->nq + (has_exchange(p) ? p->nq : 0u) +
           (has_exchange(p) ? (unsigned)p->o.bindings : 0u);
}

static void admin_setup_step(struct role *r, unsigned i, struct wr_method *m, char *buf, size_t cap)
{
    struct perf *p = r->perf;

    if (p->declare_exchange) {
        if (i == 0) {
            wr_method_init(m, WR_EXCHANGE_DECLARE);
            m->u.exchange_declare.exchange = wr_str_c(p->o.exchange);
            m->u.exchange_declare.type = wr_str_c(p->o.type);
            m->u.exchange_declare.durable = p->o.durable;
            return;
        }
        i--;
    }
    if (i < p->nq) {
        wr_method_init(m, WR_QUEUE_DECLARE);
        m->u.queue_declare.queue = wr_str_c(p->queues[i]);
        m->u.queue_declare.durable = p->o.durable;
        m->u.queue_declare.arguments = (struct wr_str){(const char *)qargs_body, qargs_len};
        return;
    }
    i -= p->nq;
    wr_method_init(m, WR_QUEUE_BIND);
    m->u.queue_bind.exchange = wr_str_c(p->o.exchange);
    if (i < p->nq) {
        m->u.queue_bind.queue = wr_str_c(p->queues[i]);
        m->u.queue_bind.routing_key = wr_str_c(bind_key(p, i));
        return;
    }
    i -= p->nq;
    /* Extra distinct bindings, all to the first queue: they cost routing
     * work (a topic trie, a hash) without changing who gets a message. */
    m->u.queue_bind.queue = wr_str_c(p->queues[0]);
    if (p->o.type && !strcmp(p->o.type, "topic"))
        snprintf(buf, cap, "perf.b%u.#", i);
    else
        snprintf(buf, cap, "perf.b%u", i);
    m->u.queue_bind.routing_key = wr_str_c(buf);
}

static unsigned admin_settle_n(struct role *r)
{
    return r->perf->nq;
}

static void admin_settle_step(struct role *r, unsigned i, struct wr_method *m, char *buf,
                              size_t cap)
{
    (void)buf;
    (void)cap;
    wr_method_init(m, WR_QUEUE_DECLARE);
    m->u.queue_declare.queue = wr_str_c(r->perf->queues[i]);
    m->u.queue_declare.passive = true;
}

/* Delete what we declared; with --keep only empty the queues, so the next
 * run finds the topology (and its extra bindings) in place. */
static unsigned admin_teardown_n(struct role *r)
{
    if (r->perf->o.leave)
        return 0;
    if (r->perf->o.keep)
        return r->perf->nq;
    return r->perf->nq + (r->perf->declare_exchange ? 1u : 0u);
}

static void admin_teardown_step(struct role *r, unsigned i, struct wr_method *m, char *buf,
                                size_t cap)
{
    struct perf *p = r->perf;
    (void)buf;
    (void)cap;
    if (p->o.keep) {
        wr_method_init(m, WR_QUEUE_PURGE);
        m->u.queue_purge.queue = wr_str_c(p->queues[i]);
        return;
    }
    if (i < p->nq) {
        wr_method_init(m, WR_QUEUE_DELETE);
        m->u.queue_delete.queue = wr_str_c(p->queues[i]);
        return;
    }
    wr_method_init(m, WR_EXCHANGE_DELETE);
    m->u.exchange_delete.exchange = wr_str_c(p->o.exchange);
}

/* ---- consumer and producer setup ---- */

/* Consumer k consumes queue j % nq for every j < max(nq, ncons) with
 * j % ncons == k: every queue gets a consumer and every consumer a queue. */
static unsigned consumer_queue_count(const struct role *r)
{
    const struct perf *p = r->perf;
    unsigned span = p->nq > p->ncons ? p->nq : p->ncons;
    return (span - r->index + p->ncons - 1) / p->ncons;
}

static unsigned consumer_n(struct role *r)
{
    bool qos = !r->perf->o.autoack && r->perf->o.prefetch > 0;
    return (qos ? 1u : 0u) + consumer_queue_count(r);
}

static void consumer_step(struct role *r, unsigned i, struct wr_method *m, char *buf, size_t cap)
{
    struct perf *p = r->perf;
    bool qos = !p->o.autoack && p->o.prefetch > 0;
    unsigned j;

    (void)buf;
    (void)cap;
    if (qos) {
        if (i == 0) {
            wr_method_init(m, WR_BASIC_QOS);
            m->u.basic_qos.prefetch_count = (uint16_t)p->o.prefetch;
            return;
        }
        i--;
    }
    j = r->index + i * p->ncons;
    wr_method_init(m, WR_BASIC_CONSUME);
    m->u.basic_consume.queue = wr_str_c(p->queues[j % p->nq]);
    m->u.basic_consume.no_ack = p->o.autoack;
    m->u.basic_consume.arguments = (struct wr_str){(const char *)cargs_body, cargs_len};
}

static unsigned producer_n(struct role *r)
{
    return r->perf->o.confirm > 0 ? 1u : 0u;
}

static void producer_step(struct role *r, unsigned i, struct wr_method *m, char *buf, size_t cap)
{
    (void)r;
    (void)i;
    (void)buf;
    (void)cap;
    wr_method_init(m, WR_CONFIRM_SELECT);
}

/* Build the frames a producer copies per message: one publish method per
 * target, and the content (header + body frames) with the offset of the
 * timestamp in the first body frame. */
static int producer_templates(struct role *r)
{
    struct perf *p = r->perf;
    struct evbuffer *tmp = evbuffer_new();
    struct wr_basic_props props;
    uint8_t *body = NULL;
    size_t total = 0, hdr_len;
    int rc = -1;

    if (!tmp)
        return -1;
    r->ntargets = p->o.queues ? p->nq : 1;
    r->mtpl_off = calloc(r->ntargets + 1, sizeof(*r->mtpl_off));
    r->mtpl = malloc((size_t)r->ntargets * 600);
    if (!r->mtpl_off || !r->mtpl)
        goto out;
    for (unsigned i = 0; i < r->ntargets; i++) {
        struct wr_method m;
        long n;
        wr_method_init(&m, WR_BASIC_PUBLISH);
        m.u.basic_publish.exchange = wr_str_c(has_exchange(p) ? p->o.exchange : "");
        m.u.basic_publish.routing_key = wr_str_c(target_key(p, i));
        n = wr_frame_encode_method(r->mtpl + total, 600, PC_CHANNEL, &m);
        if (n < 0)
            goto out;
        r->mtpl_off[i] = total;
        total += (size_t)n;
    }
    r->mtpl_off[r->ntargets] = total;

    memset(&props, 0, sizeof(props));
    if (p->o.persistent) {
        props.flags = WR_BASIC_DELIVERY_MODE_FLAG;
        props.delivery_mode = 2;
    }
    if (wr_frame_put_header(tmp, PC_CHANNEL, (uint64_t)p->o.size, &props) < 0)
        goto out;
    hdr_len = evbuffer_get_length(tmp);
    if (!(body = calloc(1, (size_t)p->o.size)))
        goto out;
    for (long i = 8; i < p->o.size; i++)
        body[i] = (uint8_t)('a' + i % 26);
    if (wr_frame_put_body(tmp, PC_CHANNEL, body, (size_t)p->o.size, pc_frame_max(r->c)) < 0)
        goto out;
    r->content_len = evbuffer_get_length(tmp);
    if (!(r->content = malloc(r->content_len)))
        goto out;
    evbuffer_copyout(tmp, r->content, r->content_len);
    r->ts_off = hdr_len + WR_FRAME_HEADER_SIZE;
    rc = 0;
out:
    free(body);
    evbuffer_free(tmp);
    return rc;
}

/* ---- publishing ---- */

static uint64_t outstanding(const struct role *r)
{
    return r->pub_seq + 1 - r->low_seq;
}

/* How many more messages this producer may put on the wire now. */
static uint64_t producer_room(const struct role *r)
{
    const struct perf *p = r->perf;
    uint64_t room = UINT64_MAX;

    if (p->phase != P_RUN || r->blocked || r->done || r->closed)
        return 0;
    if (p->o.confirm > 0) {
        uint64_t out = outstanding(r);
        room = out >= (uint64_t)p->o.confirm ? 0 : (uint64_t)p->o.confirm - out;
    }
    if (p->o.count && p->o.count - r->sent < room)
        room = p->o.count - r->sent;
    return room;
}

static void producer_finished(struct role *r)
{
    struct perf *p = r->perf;
    r->done = true;
    for (unsigned i = 0; i < p->nprod; i++)
        if (!p->prods[i].done)
            return;
    p->t_pub_end = pc_now_ns();
    check_complete(p);
}

/* Append n messages to the output: template copies with the send time
 * patched in, in large reservations (no per-message evbuffer call). */
static void publish_n(struct role *r, uint64_t n)
{
    struct perf *p = r->perf;
    struct evbuffer *out = pc_output(r->c);
    uint64_t now = pc_now_ns();
    size_t max_m = r->mtpl_off[1] - r->mtpl_off[0];

    for (unsigned i = 1; i < r->ntargets; i++)
        if (r->mtpl_off[i + 1] - r->mtpl_off[i] > max_m)
            max_m = r->mtpl_off[i + 1] - r->mtpl_off[i];
    while (n > 0) {
        struct evbuffer_iovec v;
        size_t per = max_m + r->content_len;
        uint64_t k = CHUNK_BYTES / per;
        uint8_t *b;
        size_t used = 0;

        if (k == 0)
            k = 1;
        if (k > n)
            k = n;
        if (evbuffer_reserve_space(out, (ev_ssize_t)(k * per), &v, 1) < 1) {
            set_error(p, "out of memory in the publisher");
            stop_run(p);
            return;
        }
        b = v.iov_base;
        for (uint64_t i = 0; i < k; i++) {
            unsigned t = r->next_target;
            size_t ml = r->mtpl_off[t + 1] - r->mtpl_off[t];
            memcpy(b + used, r->mtpl + r->mtpl_off[t], ml);
            memcpy(b + used + ml, r->content, r->content_len);
            wr_store64(b + used + ml + r->ts_off, now);
            used += ml + r->content_len;
            if (++r->next_target == r->ntargets)
                r->next_target = 0;
            if (r->ring) {
                r->pub_seq++;
                r->ring[r->pub_seq & r->ring_mask] = now;
            }
        }
        v.iov_len = used;
        evbuffer_commit_space(out, &v, 1);
        r->sent += k;
        p->sent += k;
        n -= k;
    }
    if (p->o.count && r->sent >= p->o.count && !r->done)
        producer_finished(r);
}

/* Unlimited rate: top the output buffer up to FILL_HIGH. */
static void producer_fill(struct role *r)
{
    struct evbuffer *out;
    size_t have, per;
    uint64_t room = producer_room(r), n;

    if (r->perf->o.rate > 0)
        return;
    /* Ask for a turn only while there is something to send, or an idle
     * writable socket would wake the loop for nothing. */
    pc_want_writable(r->c, room > 0);
    if (room == 0)
        return;
    out = pc_output(r->c);
    have = evbuffer_get_length(out);
    if (have >= FILL_HIGH)
        return;
    per = r->mtpl_off[1] - r->mtpl_off[0] + r->content_len;
    n = (FILL_HIGH - have) / per + 1;
    publish_n(r, n < room ? n : room);
}

/* Fixed rate: each tick sends what is due since the start, at most a
 * couple of ticks' worth at once so a stall does not become a burst. */
static void producer_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct role *r = arg;
    struct perf *p = r->perf;
    uint64_t due, room = producer_room(r), target, cap;
    double interval;
    (void)fd;
    (void)what;

    if (room == 0)
        return;
    target = (uint64_t)(p->o.rate * perf_secs(pc_now_ns() - p->t_start));
    if (target <= r->sent)
        return;
    due = target - r->sent;
    interval = 1.0 / p->o.rate > 1e-4 ? 1.0 / p->o.rate : 1e-4;
    cap = (uint64_t)(p->o.rate * interval * 2) + 1;
    if (due > cap)
        due = cap;
    publish_n(r, due < room ? due : room);
}

static void producer_start(struct role *r)
{
    struct perf *p = r->perf;

    if (p->o.rate > 0) {
        /* One tick per message up to 10k msg/s, then 100 us ticks. */
        double iv = 1.0 / p->o.rate;
        struct timeval tv;
        if (iv < 1e-4)
            iv = 1e-4;
        if (iv > 1.0)
            iv = 1.0;
        tv.tv_sec = (time_t)iv;
        tv.tv_usec = (suseconds_t)((iv - (double)tv.tv_sec) * 1e6);
        r->timer = event_new(p->base, -1, EV_PERSIST, producer_tick_cb, r);
        if (r->timer)
            event_add(r->timer, &tv);
    } else {
        producer_fill(r);
    }
}

/* Confirms: basic.ack / basic.nack from the broker. */
static void on_confirm(struct role *r, uint64_t tag, bool multiple, bool nack)
{
    struct perf *p = r->perf;
    uint64_t now = pc_batch_time(r->c);
    uint64_t from = multiple ? r->low_seq : tag;

    if (!r->ring || tag > r->pub_seq || tag < r->low_seq)
        return;
    for (uint64_t s = from; s <= tag; s++) {
        uint64_t *slot = &r->ring[s & r->ring_mask];
        if (!*slot)
            continue;
        if (nack)
            p->nacked++;
        else
            p->confirmed++;
        if (p->phase == P_RUN && now > *slot)
            hist_record(&p->clat, now - *slot);
        *slot = 0;
    }
    while (r->low_seq <= r->pub_seq && r->ring[r->low_seq & r->ring_mask] == 0)
        r->low_seq++;
}

/* ---- consuming ---- */

static void send_ack(struct role *r, uint64_t tag, bool multiple)
{
    struct wr_method m;
    wr_method_init(&m, WR_BASIC_ACK);
    m.u.basic_ack.delivery_tag = tag;
    m.u.basic_ack.multiple = multiple;
    pc_send(r->c, &m);
}

/* ---- role callbacks ---- */

static void all_roles_ready(struct perf *p)
{
    struct timeval tv;

    p->phase = P_RUN;
    p->t_start = pc_now_ns();
    p->last_tick_ns = p->t_start;
    getrusage(RUSAGE_SELF, &p->ru_start);
    if (!p->o.idle) /* idle mode sampled before the first connection */
        perf_sample_broker(p->o.broker_pid, &p->b_start);
    hist_reset(&p->lat);
    hist_reset(&p->clat);
    if (p->o.seconds > 0) {
        tv.tv_sec = (time_t)p->o.seconds;
        tv.tv_usec = (suseconds_t)((p->o.seconds - (double)tv.tv_sec) * 1e6);
        evtimer_add(p->stop_timer, &tv);
    }
    if (!p->o.quiet) {
        tv.tv_sec = 1;
        tv.tv_usec = 0;
        evtimer_add(p->tick_timer, &tv);
    }
    if (p->o.idle) {
        fprintf(stderr, "warren-perf: %u idle connections open after %.2f s, holding\n", p->nidle,
                perf_secs(p->t_start - p->t0));
        return;
    }
    for (unsigned i = 0; i < p->nprod; i++)
        producer_start(&p->prods[i]);
    check_complete(p);
}

static void role_setup_done(struct role *r)
{
    struct perf *p = r->perf;

    if (r->kind == R_PRODUCER) {
        if (producer_templates(r) < 0) {
            set_error(p, "cannot build the message templates");
            stop_run(p);
            return;
        }
        if (p->o.confirm > 0) {
            uint64_t cap = 1;
            while (cap < (uint64_t)p->o.confirm)
                cap <<= 1;
            r->ring = calloc(cap, sizeof(*r->ring));
            r->ring_mask = cap - 1;
            r->low_seq = 1;
            if (!r->ring) {
                set_error(p, "out of memory");
                stop_run(p);
                return;
            }
        }
    }
    r->ready = true;
    if (++p->ready == p->nprod + p->ncons + p->nidle && p->phase == P_CONNECT)
        all_roles_ready(p);
}

static const struct pc_handler role_handler, idle_handler;

static struct pc_conn *open_conn(struct perf *p, struct role *r)
{
    r->c = pc_conn_new(p->base, &p->params, r->kind == R_IDLE ? &idle_handler : &role_handler, r);
    if (!r->c) {
        set_error(p, "cannot open a connection to %s:%s", p->o.host, p->o.port);
        return NULL;
    }
    p->open_roles++;
    return r->c;
}

static void open_idle_batch(struct perf *p)
{
    while (p->idle_started < p->nidle && p->idle_started - p->ready < CONNECT_WINDOW) {
        struct role *r = &p->idle[p->idle_started++];
        if (!open_conn(p, r)) {
            stop_run(p);
            return;
        }
    }
}

static void admin_setup_done(struct role *r)
{
    struct perf *p = r->perf;

    p->t_setup_done = pc_now_ns();
    p->phase = P_CONNECT;
    if (p->nprod + p->ncons == 0) {
        all_roles_ready(p);
        return;
    }
    for (unsigned i = 0; i < p->ncons; i++)
        if (!open_conn(p, &p->cons[i]))
            return stop_run(p);
    for (unsigned i = 0; i < p->nprod; i++)
        if (!open_conn(p, &p->prods[i]))
            return stop_run(p);
}

static void admin_teardown_done(struct role *r)
{
    pc_close(r->c);
}

static void settle_poll_cb(evutil_socket_t fd, short what, void *arg);

static void admin_settle_done(struct role *r)
{
    struct perf *p = r->perf;
    struct timeval tv = {0, SETTLE_POLL_MS * 1000};

    if (p->phase != P_SETTLE)
        return;
    if (p->queued >= p->sent) {
        stop_run(p);
        return;
    }
    if (perf_secs(pc_now_ns() - p->t_pub_end) > SETTLE_TIMEOUT_S) {
        set_error(p, "queues hold %" PRIu64 " of %" PRIu64 " messages after %d s", p->queued,
                  p->sent, SETTLE_TIMEOUT_S);
        stop_run(p);
        return;
    }
    evtimer_add(p->settle_timer, &tv);
}

static void settle_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct perf *p = arg;
    (void)fd;
    (void)what;
    if (p->phase != P_SETTLE || p->admin.closed)
        return;
    p->queued = 0;
    p->admin.nsteps = admin_settle_n;
    p->admin.step = admin_settle_step;
    p->admin.steps_done = admin_settle_done;
    role_start_steps(&p->admin);
}

static void on_ready(struct pc_conn *c)
{
    struct role *r = pc_arg(c);
    role_start_steps(r);
}

static void on_method(struct pc_conn *c, const struct wr_method *m)
{
    struct role *r = pc_arg(c);
    struct perf *p = r->perf;

    if (is_step_reply(m->id)) {
        if (m->id == WR_QUEUE_DECLARE_OK && p->phase == P_SETTLE)
            p->queued += m->u.queue_declare_ok.message_count;
        on_step_reply(r);
        return;
    }
    switch (m->id) {
    case WR_BASIC_ACK:
        on_confirm(r, m->u.basic_ack.delivery_tag, m->u.basic_ack.multiple, false);
        break;
    case WR_BASIC_NACK:
        on_confirm(r, m->u.basic_nack.delivery_tag, m->u.basic_nack.multiple, true);
        break;
    case WR_BASIC_RETURN:
        p->returned++;
        break;
    case WR_BASIC_CANCEL:
        p->cancelled++;
        if (p->phase == P_RUN)
            fprintf(stderr, "warren-perf: the broker cancelled a consumer\n");
        break;
    default:
        break;
    }
}

static void on_delivery(struct pc_conn *c, uint64_t tag, uint64_t ts, uint64_t size)
{
    struct role *r = pc_arg(c);
    struct perf *p = r->perf;
    uint64_t now = pc_batch_time(c);

    r->received++;
    p->received++;
    p->recv_bytes += size;
    if (p->phase == P_RUN && ts && now > ts)
        hist_record(&p->lat, now - ts);
    if (p->o.autoack)
        return;
    r->last_tag = tag;
    if (p->o.multi_ack > 1) {
        if (++r->unacked >= (uint64_t)p->o.multi_ack) {
            send_ack(r, tag, true);
            r->unacked = 0;
        }
    } else {
        send_ack(r, tag, false);
    }
}

static void on_read_done(struct pc_conn *c)
{
    struct role *r = pc_arg(c);
    struct perf *p = r->perf;

    /* Confirms came back: there may be room again (the ticker handles
     * fixed-rate producers). */
    if (r->kind == R_PRODUCER && p->phase == P_RUN && p->o.confirm > 0)
        producer_fill(r);
    if (p->o.count && p->phase == P_RUN)
        check_complete(p);
    if (p->o.cmessages && p->phase == P_RUN && p->received >= p->o.cmessages)
        stop_run(p);
}

static void on_writable(struct pc_conn *c)
{
    struct role *r = pc_arg(c);
    if (r->kind == R_PRODUCER)
        producer_fill(r);
}

static void on_blocked(struct pc_conn *c, int blocked)
{
    struct role *r = pc_arg(c);
    r->blocked = blocked != 0;
    fprintf(stderr, "warren-perf: connection %s by the broker\n",
            blocked ? "blocked" : "unblocked");
    if (!blocked && r->kind == R_PRODUCER)
        producer_fill(r);
}

static void roles_closed(struct perf *p);

static void on_closed(struct pc_conn *c, int err, const char *why)
{
    struct role *r = pc_arg(c);
    struct perf *p = r->perf;

    r->closed = true;
    if (r->timer)
        event_del(r->timer);
    if (err && p->phase < P_STOP)
        set_error(p, "%s connection %u: %s",
                  r->kind == R_ADMIN      ? "admin"
                  : r->kind == R_PRODUCER ? "producer"
                  : r->kind == R_CONSUMER ? "consumer"
                                          : "idle",
                  r->index, why);
    else if (err && p->phase >= P_STOP && r->kind == R_ADMIN)
        set_error(p, "admin connection: %s", why);
    if (r->kind == R_ADMIN) {
        /* Without the admin nothing more can be done. */
        p->phase = P_DONE;
        event_base_loopbreak(p->base);
        return;
    }
    p->open_roles--;
    if (p->phase < P_STOP) {
        stop_run(p);
        return;
    }
    if (p->open_roles == 0)
        roles_closed(p);
}

static const struct pc_handler role_handler = {
    .ready = on_ready,
    .method = on_method,
    .delivery = on_delivery,
    .read_done = on_read_done,
    .writable = on_writable,
    .blocked = on_blocked,
    .closed = on_closed,
};

static void on_idle_ready(struct pc_conn *c)
{
    struct role *r = pc_arg(c);
    struct perf *p = r->perf;
    r->ready = true;
    if (++p->ready == p->nidle)
        all_roles_ready(p);
    else
        open_idle_batch(p);
}

/* ---- ending ---- */

/* Every client connection is closed: delete what the admin declared. */
static void roles_closed(struct perf *p)
{
    if (p->phase != P_STOP)
        return;
    if (p->o.idle || p->admin.closed || !p->admin.c) {
        p->phase = P_DONE;
        event_base_loopbreak(p->base);
        return;
    }
    p->phase = P_TEARDOWN;
    p->admin.nsteps = admin_teardown_n;
    p->admin.step = admin_teardown_step;
    p->admin.steps_done = admin_teardown_done;
    role_start_steps(&p->admin);
}

static void stop_run(struct perf *p)
{
    bool any = false;
    struct role *lists[3] = {p->prods, p->cons, p->idle};
    unsigned counts[3] = {p->nprod, p->ncons, p->nidle};

    if (p->phase >= P_STOP)
        return;
    if (p->phase == P_RUN || p->phase == P_SETTLE) {
        p->t_end = pc_now_ns();
        /* Without consumers the messages count as sent once the queues
         * hold them, not once they left our buffer. */
        if (!p->t_pub_end || p->phase == P_SETTLE)
            p->t_pub_end = p->t_end;
        getrusage(RUSAGE_SELF, &p->ru_end);
        perf_sample_broker(p->o.broker_pid, &p->b_end);
        p->snap_sent = p->sent;
        p->snap_confirmed = p->confirmed;
        p->snap_received = p->received;
        p->snap_bytes = p->recv_bytes;
    }
    p->phase = P_STOP;
    evtimer_del(p->stop_timer);
    evtimer_del(p->tick_timer);
    evtimer_del(p->settle_timer);
    for (int l = 0; l < 3; l++) {
        for (unsigned i = 0; i < counts[l]; i++) {
            struct role *r = &lists[l][i];
            if (r->timer)
                event_del(r->timer);
            if (r->c && !r->closed) {
                pc_close(r->c);
                any = true;
            }
        }
    }
    if (!any || p->open_roles == 0)
        roles_closed(p);
}

/* -C: the run is over when every producer sent its count, every confirm
 * came back and the consumers got every copy (or, without consumers, when
 * the queues hold everything: the settle phase polls them). */
static void check_complete(struct perf *p)
{
    uint64_t expect;

    if (p->phase != P_RUN || !p->o.count || !p->t_pub_end)
        return;
    if (p->o.confirm > 0 && p->confirmed + p->nacked < p->sent)
        return;
    if (p->ncons == 0) {
        if (p->o.no_settle) {
            stop_run(p);
            return;
        }
        p->phase = P_SETTLE;
        settle_poll_cb(-1, 0, p);
        return;
    }
    expect = p->sent * (p->o.fanout_queues ? p->nq : 1u);
    if (p->received >= expect)
        stop_run(p);
}

static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop_run(arg);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct perf *p = arg;
    uint64_t now = pc_now_ns();
    double dt = perf_secs(now - p->last_tick_ns);
    struct timeval tv = {1, 0};
    (void)fd;
    (void)what;

    if (p->phase != P_RUN && p->phase != P_SETTLE)
        return;
    if (p->o.idle)
        fprintf(stderr, "time %.1f s, %u connections open\n", perf_secs(now - p->t_start),
                p->ready);
    else
        fprintf(stderr, "time %.1f s, sent %.0f msg/s, received %.0f msg/s, p99 latency %.0f us\n",
                perf_secs(now - p->t_start), (double)(p->sent - p->last_tick_sent) / dt,
                (double)(p->received - p->last_tick_recv) / dt,
                (double)hist_quantile(&p->lat, 0.99) / 1e3);
    p->last_tick_ns = now;
    p->last_tick_sent = p->sent;
    p->last_tick_recv = p->received;
    evtimer_add(p->tick_timer, &tv);
}

static void sigint_cb(evutil_socket_t fd, short what, void *arg)
{
    struct perf *p = arg;
    (void)fd;
    (void)what;
    if (p->phase >= P_STOP) {
        fprintf(stderr, "warren-perf: interrupted again, leaving without cleanup\n");
        event_base_loopbreak(p->base);
        return;
    }
    stop_run(p);
}

/* ---- main ---- */

static int resolve(struct perf *p)
{
    struct addrinfo hints, *res;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    if ((rc = getaddrinfo(p->o.host, p->o.port, &hints, &res)) != 0) {
        fprintf(stderr, "warren-perf: %s:%s: %s\n", p->o.host, p->o.port, gai_strerror(rc));
        return -1;
    }
    memcpy(&p->params.addr, res->ai_addr, res->ai_addrlen);
    p->params.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int make_topology(struct perf *p)
{
    char name[300];
    const char *base = p->o.queue;

    if (!base) {
        snprintf(name, sizeof(name), "warren-perf-%ld", (long)getpid());
        base = name;
    }
    p->nq = p->o.queues          ? (unsigned)p->o.queues
            : p->o.fanout_queues ? (unsigned)p->o.fanout_queues
                                 : 1u;
    p->queues = calloc(p->nq, sizeof(*p->queues));
    if (!p->queues)
        return -1;
    for (unsigned i = 0; i < p->nq; i++) {
        char q[320];
        if (p->nq == 1)
            snprintf(q, sizeof(q), "%s", base);
        else
            snprintf(q, sizeof(q), "%s-%u", base, i);
        if (!(p->queues[i] = strdup(q)))
            return -1;
    }
    /* The default exchange and amq.* exist already (and may not be
     * declared with arbitrary arguments). */
    p->declare_exchange = has_exchange(p) && strncmp(p->o.exchange, "amq.", 4) != 0;
    if (encode_queue_args(p->o.consumer_args, &cargs_body, &cargs_len) < 0)
        return -1;
    return encode_queue_args(p->o.queue_args, &qargs_body, &qargs_len);
}

static struct role *new_roles(struct perf *p, unsigned n, enum role_kind kind)
{
    struct role *r = calloc(n ? n : 1, sizeof(*r));
    if (!r)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        r[i].perf = p;
        r[i].kind = kind;
        r[i].index = i;
        r[i].steps_done = role_setup_done;
        if (kind == R_PRODUCER) {
            r[i].nsteps = producer_n;
            r[i].step = producer_step;
        } else {
            r[i].nsteps = consumer_n;
            r[i].step = consumer_step;
        }
    }
    return r;
}

static void raise_fd_limit(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static const struct pc_handler idle_handler = {
    .ready = on_idle_ready,
    .method = on_method,
    .delivery = on_delivery,
    .closed = on_closed,
};

int main(int argc, char **argv)
{
    static struct perf perf;
    struct perf *p = &perf;
    struct event_config *cfg;

    perf_parse_args(&p->o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    /* Output and input buffers grow and shrink by large chains every loop
     * turn; without this glibc gives the top of the heap back and takes it
     * again each time (a brk pair per turn, page faults after it). */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    if (resolve(p) < 0)
        return 1;
    p->params.user = p->o.user;
    p->params.pass = p->o.pass;
    p->params.vhost = p->o.vhost;
    p->params.frame_max = p->o.frame_max;
    p->params.write_lowmark = WRITE_LOWMARK;
    if (p->o.tls) {
        /* A benchmark measures the broker's side: no verification here. */
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
            return 1;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_read_ahead(ctx, 1);
        p->params.tls = ctx;
    }
    if (hist_init(&p->lat) < 0 || hist_init(&p->clat) < 0)
        return 1;

    /* Rate-limited producers tick every 100 us, which needs precise timers
     * (a timerfd); they cost a syscall per loop turn, so only then. */
    cfg = event_config_new();
    if (p->o.rate > 0)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    p->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!p->base)
        return 1;
    p->stop_timer = evtimer_new(p->base, stop_timer_cb, p);
    p->tick_timer = evtimer_new(p->base, tick_cb, p);
    p->settle_timer = evtimer_new(p->base, settle_poll_cb, p);
    p->sig_ev = evsignal_new(p->base, SIGINT, sigint_cb, p);
    event_add(p->sig_ev, NULL);
    p->t0 = pc_now_ns();

    if (p->o.idle) {
        raise_fd_limit(p->o.idle + 64);
        p->nidle = (unsigned)p->o.idle;
        p->idle = new_roles(p, p->nidle, R_IDLE);
        p->prods = new_roles(p, 0, R_PRODUCER);
        p->cons = new_roles(p, 0, R_CONSUMER);
        if (!p->idle || !p->prods || !p->cons)
            return 1;
        p->phase = P_CONNECT;
        perf_sample_broker(p->o.broker_pid, &p->b_start);
        open_idle_batch(p);
        if (p->exit_code)
            return 1;
    } else {
        if (make_topology(p) < 0) {
            fprintf(stderr, "warren-perf: cannot set up the topology\n");
            return 2;
        }
        raise_fd_limit((long)p->o.producers + p->o.consumers + 64);
        p->nprod = (unsigned)p->o.producers;
        p->ncons = (unsigned)p->o.consumers;
        p->prods = new_roles(p, p->nprod, R_PRODUCER);
        p->cons = new_roles(p, p->ncons, R_CONSUMER);
        p->idle = new_roles(p, 0, R_IDLE);
        if (!p->prods || !p->cons || !p->idle)
            return 1;
        p->admin.perf = p;
        p->admin.kind = R_ADMIN;
        p->admin.nsteps = admin_setup_n;
        p->admin.step = admin_setup_step;
        p->admin.steps_done = admin_setup_done;
        p->phase = P_SETUP;
        p->admin.c = pc_conn_new(p->base, &p->params, &role_handler, &p->admin);
        if (!p->admin.c) {
            fprintf(stderr, "warren-perf: cannot connect to %s:%s\n", p->o.host, p->o.port);
            return 1;
        }
    }

    event_base_dispatch(p->base);
    perf_report(p);
    SSL_CTX_free(p->params.tls);
    return p->exit_code;
}
