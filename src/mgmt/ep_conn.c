/*
 * ep_conn.c - management API: connections, channels and consumers, in
 * RabbitMQ 3.10's shapes, and closing a connection (DELETE).
 *
 * Names are RabbitMQ's: a connection is "PEER:PORT -> LOCAL:PORT" (struct
 * wr_conn.name), a channel "CONNECTION (NUMBER)". Who sees what, as
 * RabbitMQ: monitoring users and administrators every connection, others
 * their own (by user name); asking for someone else's by name is 401 "User
 * not authorised to access object".
 *
 * Consumers carry Warren's consumer-lag fields beside RabbitMQ's:
 * "unacked" (deliveries to it waiting for an ack), "delivered" and "acked"
 * (totals) and "deliver_rate" and "ack_rate" (per second, from the 5 s
 * sampler), so that a slow consumer shows as one whose acks trail its
 * deliveries.
 *
 * Everything is read in the request's loop turn: listings walk the
 * server's connections; nothing is cached.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/x509.h>

#include "auth/auth.h"
#include "auth/x509name.h"
#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "mgmt/api.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/io.h"
#include "net/server.h"
#include "store/jsonfield.h"
#include "wire/field.h"

#define CLOSE_REASON_DEFAULT "Closed via management plugin"
#define CLOSE_REASON_MAX 200

/* ---- who sees what ---- */

static bool conn_listed(const struct wr_conn *c)
{
    return c->state != WR_CS_DEAD;
}

static bool conn_seen(struct wr_mgmt_req *rq, const struct wr_conn *c)
{
    struct wr_str me;
    if (wr_mgmt_sees_all(rq))
        return true;
    if (!rq->user)
        return false;
    me = wr_user_name(rq->user);
    return c->user_len && me.len == c->user_len && memcmp(me.ptr, c->user, me.len) == 0;
}

static struct wr_str conn_vhost(const struct wr_conn *c)
{
    return c->vh ? wr_str_c(c->vh->name) : (struct wr_str){"", 0};
}

static struct wr_conn *conn_by_name(struct wr_mgmt_req *rq, struct wr_str name)
{
    struct wr_list *it;
    wr_list_each(it, &rq->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (conn_listed(c) && strlen(c->name) == name.len && !memcmp(c->name, name.ptr, name.len))
            return c;
    }
    return NULL;
}

/* The connection named by a path segment, seen by the user; NULL when
 * answered (404, 401). */
static struct wr_conn *conn_arg(struct wr_mgmt_req *rq, struct wr_str name)
{
    struct wr_conn *c = conn_by_name(rq, name);
    if (!c) {
        wr_mgmt_not_found(rq);
        return NULL;
    }
    if (!conn_seen(rq, c)) {
        wr_mgmt_error(rq, 401, "not_authorised", "User not authorised to access object");
        return NULL;
    }
    return c;
}

/* ---- the addresses, from the name ---- */

struct ends {
    char peer_host[64], host[64];
    int peer_port, port;
};

/* "HOST:PORT": the port after the last ':' (IPv6 hosts hold colons). */
static void split_end(const char *s, size_t n, char *host, size_t cap, int *port)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':')
            colon = s + i;
    if (!colon) {
        snprintf(host, cap, "%.*s", (int)n, s);
        *port = 0;
        return;
    }
    snprintf(host, cap, "%.*s", (int)(colon - s), s);
    *port = atoi(colon + 1);
}

static void conn_ends(const struct wr_conn *c, struct ends *e)
{
    const char *arrow = strstr(c->name, " -> ");
    memset(e, 0, sizeof(*e));
    if (!arrow)
        return;
    split_end(c->name, (size_t)(arrow - c->name), e->peer_host, sizeof(e->peer_host),
              &e->peer_port);
    split_end(arrow + 4, strlen(arrow + 4), e->host, sizeof(e->host), &e->port);
}

/* ---- connections ---- */

static const char *conn_state(const struct wr_conn *c)
{
    switch (c->state) {
    case WR_CS_HEADER:
    case WR_CS_START_OK:
        return "starting";
    case WR_CS_TUNE_OK:
        return "tuning";
    case WR_CS_OPEN:
        return "opening";
    case WR_CS_RUNNING:
        if (c->srv->broker->alarm)
            return c->read_paused ? "blocked" : "blocking";
        return c->flow_q ? "flow" : "running";
    default:
        return "closing";
    }
}

/* Wall-clock ms since the epoch of a monotonic ms time. */
static uint64_t epoch_ms(uint64_t mono_ms)
{
    struct timespec ts;
    uint64_t now_wall, now = wr_now_ms();
    clock_gettime(CLOCK_REALTIME, &ts);
    now_wall = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return now_wall - (now > mono_ms ? now - mono_ms : 0);
}

static json_t *client_props_json(const struct wr_conn *c, json_t **provided_name)
{
    struct wr_str t = {c->client_props, c->client_props_len};
    struct wr_fv v;
    *provided_name = NULL;
    if (!c->client_props)
        return json_object();
    if (wr_table_get(t, "connection_name", &v) == 1 && v.type == 'S')
        *provided_name = wr_json_str(v.v.str);
    json_t *o = wr_json_from_table(t);
    return o ? o : json_object();
}

/* A string, or null (RabbitMQ's value for a TLS fact a connection lacks). */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* RabbitMQ's TLS facts: ssl, ssl_protocol ("tlsv1.3"), the suite's parts
 * in Erlang's names, and the client certificate's subject, issuer and
 * validity; null where a connection has none (a plain one, or a TLS
 * client that sent no certificate). */
static void conn_tls_json(json_t *o, const struct wr_conn *c)
{
    bool done = c->tls && c->tls_seen && c->sock;
    const char *proto = done ? wr_sock_protocol(c->sock) : NULL;
    const char *subject = NULL, *issuer = NULL, *validity = NULL;
    struct wr_tls_suite suite = {NULL, NULL, NULL};
    struct x509_st *cert = done ? wr_sock_peer_cert(c->sock) : NULL;
    char p[16], sb[1024], ib[1024], vb[64];

    if (done)
        suite = wr_sock_suite(c->sock);
    if (proto) {
        size_t i = 0;
        for (; proto[i] && i < sizeof(p) - 1; i++)
            p[i] = (char)tolower((unsigned char)proto[i]); /* TLSv1.3 -> tlsv1.3 */
        p[i] = 0;
        proto = p;
    }
    if (cert) {
        if (wr_x509_name_format(X509_get_subject_name(cert), sb, sizeof(sb)) == 0)
            subject = sb;
        if (wr_x509_name_format(X509_get_issuer_name(cert), ib, sizeof(ib)) == 0)
            issuer = ib;
        if (wr_x509_validity_format(cert, vb, sizeof(vb)) == 0)
            validity = vb;
    }
    wr_json_set(o, "ssl", json_boolean(c->tls));
    wr_json_set(o, "ssl_protocol", str_or_null(proto));
    wr_json_set(o, "ssl_key_exchange", str_or_null(suite.key_exchange));
    wr_json_set(o, "ssl_cipher", str_or_null(suite.cipher));
    wr_json_set(o, "ssl_hash", str_or_null(suite.hash));
    wr_json_set(o, "peer_cert_subject", str_or_null(subject));
    wr_json_set(o, "peer_cert_issuer", str_or_null(issuer));
    wr_json_set(o, "peer_cert_validity", str_or_null(validity));
}

/* Warren's own: where the socket is served now, "core" (the broker's
 * thread) or "warren-io-N" (net/io.h: placement). */
static json_t *conn_io_thread(const struct wr_conn *c)
{
    char name[24];
    int n = c->sock ? wr_sock_place(c->sock) : 0;
    if (!n)
        return json_string("core");
    snprintf(name, sizeof(name), "warren-io-%d", n);
    return json_string(name);
}

static json_t *conn_json(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    const struct wr_conn *c = obj;
    struct wr_str user = {c->user, c->user_len};
    json_t *o = json_object(), *provided;
    struct ends e;
    (void)rq;
    (void)ctx;

    if (!o)
        return NULL;
    conn_ends(c, &e);
    wr_json_set(o, "name", wr_json_str(wr_str_c(c->name)));
    wr_json_set(o, "node", json_string(wr_node_name()));
    wr_json_set(o, "vhost", wr_json_str(conn_vhost(c)));
    wr_json_set(o, "user", wr_json_str(user));
    wr_json_set(o, "user_who_performed_action", wr_json_str(user));
    wr_json_set(o, "state", json_string(conn_state(c)));
    wr_json_set(o, "channels", json_integer(c->nchans_open));
    wr_json_set(o, "channel_max", json_integer(c->channel_max));
    wr_json_set(o, "frame_max", json_integer(c->frame_max));
    wr_json_set(o, "timeout", json_integer(c->heartbeat));
    wr_json_set(o, "connected_at", json_integer((json_int_t)epoch_ms(c->opened_ms)));
    wr_json_set(o, "type", json_string("network"));
    wr_json_set(o, "protocol", json_string("AMQP 0-9-1"));
    wr_json_set(o, "auth_mechanism", wr_json_str(wr_str_c(c->mech)));
    wr_json_set(o, "host", json_string(e.host));
    wr_json_set(o, "port", json_integer(e.port));
    wr_json_set(o, "peer_host", json_string(e.peer_host));
    wr_json_set(o, "peer_port", json_integer(e.peer_port));
    conn_tls_json(o, c);
    wr_json_set(o, "io_thread", conn_io_thread(c));
    wr_json_set(o, "client_properties", client_props_json(c, &provided));
    if (provided)
        wr_json_set(o, "user_provided_name", provided);
    wr_json_set(o, "recv_oct", json_integer((json_int_t)c->recv_oct.n));
    wr_json_set(o, "recv_oct_details", wr_json_rate(c->recv_oct.rate));
    wr_json_set(o, "recv_cnt", json_integer((json_int_t)c->recv_cnt));
    wr_json_set(o, "send_oct", json_integer((json_int_t)c->send_oct.n));
    wr_json_set(o, "send_oct_details", wr_json_rate(c->send_oct.rate));
    wr_json_set(o, "send_cnt", json_integer((json_int_t)c->send_cnt));
    wr_json_set(o, "send_pend",
                json_integer((json_int_t)(evbuffer_get_length(c->out) + c->out_pending)));
    return o;
}

/* Every connection the user sees, in vh when given. */
static void list_conns(struct wr_mgmt_req *rq, const struct wr_vhost *vh)
{
    struct wr_list *it;
    struct wr_mgmt_row *rows;
    size_t n = 0;

    rows = malloc(((size_t)rq->srv->nconns + 1) * sizeof(*rows));
    if (!rows) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_list_each(it, &rq->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (n > rq->srv->nconns || !conn_listed(c) || !conn_seen(rq, c) || (vh && c->vh != vh))
            continue;
        rows[n].vhost = conn_vhost(c);
        rows[n].name = wr_str_c(c->name);
        rows[n].obj = c;
        n++;
    }
    wr_mgmt_list(rq, rows, n, conn_json, NULL);
    free(rows);
}

static void connections(struct wr_mgmt_req *rq)
{
    list_conns(rq, NULL);
}

static void vhost_connections(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], false);
    if (vh)
        list_conns(rq, vh);
}

static void connection_get(struct wr_mgmt_req *rq)
{
    struct wr_conn *c = conn_arg(rq, rq->arg[0]);
    if (c)
        wr_mgmt_reply_json(rq, conn_json(rq, c, NULL));
}

/* Close it as RabbitMQ does: connection.close 320 CONNECTION_FORCED with
 * the X-Reason header's text, or "Closed via management plugin". */
static void connection_delete(struct wr_mgmt_req *rq)
{
    struct wr_conn *c = conn_arg(rq, rq->arg[0]);
    const char *reason;
    if (!c)
        return;
    reason = evhttp_find_header(evhttp_request_get_input_headers(rq->r), "x-reason");
    if (!reason || !*reason)
        reason = CLOSE_REASON_DEFAULT;
    /* reply-text is a short string: with "CONNECTION_FORCED - " in front,
     * at most CLOSE_REASON_MAX bytes of the reason, cut before a UTF-8
     * character, not inside one. */
    size_t n = strlen(reason);
    if (n > CLOSE_REASON_MAX) {
        n = CLOSE_REASON_MAX;
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
            n--;
    }
    wr_conn_error(c, 320, 0, "%.*s", (int)n, reason);
    wr_mgmt_reply_empty(rq, 204);
}

/* ---- channels ---- */

#define CHAN_NAME_MAX (sizeof(((struct wr_conn *)0)->name) + 12)

static void chan_name(const struct wr_conn *c, uint16_t number, char *out, size_t cap)
{
    snprintf(out, cap, "%s (%u)", c->name, number);
}

/* RabbitMQ's connection_details of a channel. */
static json_t *conn_details(const struct wr_conn *c)
{
    struct ends e;
    conn_ends(c, &e);
    return json_pack("{s:o, s:s, s:i}", "name", wr_json_str(wr_str_c(c->name)), "peer_host",
                     e.peer_host, "peer_port", e.peer_port);
}

/* RabbitMQ's channel_details of a consumer. */
static json_t *chan_details(const struct wr_conn *c, uint16_t number)
{
    char name[CHAN_NAME_MAX];
    struct ends e;
    json_t *o = json_object();
    if (!o)
        return NULL;
    conn_ends(c, &e);
    chan_name(c, number, name, sizeof(name));
    wr_json_set(o, "name", wr_json_str(wr_str_c(name)));
    wr_json_set(o, "number", json_integer(number));
    wr_json_set(o, "connection_name", wr_json_str(wr_str_c(c->name)));
    wr_json_set(o, "peer_host", json_string(e.peer_host));
    wr_json_set(o, "peer_port", json_integer(e.peer_port));
    wr_json_set(o, "node", json_string(wr_node_name()));
    wr_json_set(o, "user", wr_json_str((struct wr_str){c->user, c->user_len}));
    return o;
}

/* ---- consumers ---- */

struct cons_ctx {
    const struct wr_conn *c;
    uint16_t number;
    json_t *out; /* array the consumers are appended to */
};

static void cons_add(void *arg, const struct wr_consumer_info *ci)
{
    struct cons_ctx *x = arg;
    json_t *o = json_object(), *args = json_object();
    if (!o || !args) {
        json_decref(o);
        json_decref(args);
        return;
    }
    if (ci->priority)
        wr_json_set(args, "x-priority", json_integer(ci->priority));
    wr_json_set(o, "arguments", args);
    wr_json_set(o, "ack_required", json_boolean(ci->ack_required));
    wr_json_set(o, "active", json_boolean(ci->active));
    wr_json_set(o, "activity_status", json_string(ci->active ? "up" : "waiting"));
    wr_json_set(o, "channel_details", chan_details(x->c, x->number));
    wr_json_set(o, "consumer_tag", wr_json_str(ci->tag));
    wr_json_set(o, "exclusive", json_boolean(ci->exclusive));
    wr_json_set(o, "prefetch_count", json_integer(ci->prefetch_count));
    wr_json_set(o, "queue",
                json_pack("{s:o, s:o}", "name", wr_json_str(wr_queue_name(ci->q)), "vhost",
                          wr_json_str(wr_str_c(ci->q->vhost->name))));
    /* Warren's consumer lag */
    wr_json_set(o, "unacked", json_integer(ci->unacked));
    wr_json_set(o, "delivered", json_integer((json_int_t)ci->delivered->n));
    wr_json_set(o, "acked", json_integer((json_int_t)ci->acked->n));
    wr_json_set(o, "deliver_rate", json_real(ci->delivered->rate));
    wr_json_set(o, "ack_rate", json_real(ci->acked->rate));
    json_array_append_new(x->out, o);
}

static json_t *chan_consumers(struct wr_conn *c, struct wr_chan *ch, uint16_t number)
{
    struct cons_ctx x = {c, number, json_array()};
    if (x.out)
        wr_chan_consumers(ch, cons_add, &x);
    return x.out;
}

/* ---- channels ---- */

static const char *chan_state(const struct wr_chan_info *ci)
{
    if (ci->closing)
        return "closing";
    return ci->flow_active ? "running" : "flow";
}

static json_t *chan_json_full(struct wr_conn *c, struct wr_chan *ch, bool detail)
{
    struct wr_str user = {c->user, c->user_len};
    struct wr_chan_info ci;
    char name[CHAN_NAME_MAX];
    json_t *o = json_object();

    if (!o)
        return NULL;
    wr_chan_info(ch, &ci);
    chan_name(c, ci.number, name, sizeof(name));
    wr_json_set(o, "name", wr_json_str(wr_str_c(name)));
    wr_json_set(o, "number", json_integer(ci.number));
    wr_json_set(o, "node", json_string(wr_node_name()));
    wr_json_set(o, "vhost", wr_json_str(conn_vhost(c)));
    wr_json_set(o, "user", wr_json_str(user));
    wr_json_set(o, "user_who_performed_action", wr_json_str(user));
    wr_json_set(o, "state", json_string(chan_state(&ci)));
    wr_json_set(o, "connection_details", conn_details(c));
    wr_json_set(o, "consumer_count", json_integer(ci.consumers));
    wr_json_set(o, "prefetch_count", json_integer(ci.prefetch_count));
    wr_json_set(o, "global_prefetch_count", json_integer(ci.global_prefetch_count));
    wr_json_set(o, "messages_unacknowledged", json_integer(ci.unacked));
    wr_json_set(o, "messages_unconfirmed", json_integer(ci.unconfirmed));
    wr_json_set(o, "messages_uncommitted", json_integer(ci.uncommitted_messages));
    wr_json_set(o, "acks_uncommitted", json_integer(ci.uncommitted_acks));
    wr_json_set(o, "pending_raft_commands", json_integer(0));
    wr_json_set(o, "confirm", json_boolean(ci.confirm));
    wr_json_set(o, "transactional", json_boolean(ci.transactional));
    wr_json_set(o, "message_stats", wr_mgmt_message_stats(ci.stats, WR_MGMT_STATS_CHANNEL));
    if (detail) {
        wr_json_set(o, "consumer_details", chan_consumers(c, ch, ci.number));
        wr_json_set(o, "deliveries", json_array());
        wr_json_set(o, "publishes", json_array());
    }
    return o;
}

struct chan_row {
    struct wr_conn *c;
    struct wr_chan *ch;
    char name[CHAN_NAME_MAX];
};

static json_t *chan_json(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    struct chan_row *r = obj;
    (void)rq;
    (void)ctx;
    return chan_json_full(r->c, r->ch, false);
}

static bool chan_conn_wanted(struct wr_mgmt_req *rq, const struct wr_conn *c,
                             const struct wr_vhost *vh, const struct wr_conn *only)
{
    if (only)
        return c == only;
    return conn_listed(c) && conn_seen(rq, c) && (!vh || c->vh == vh);
}

/* The channels the user sees: of one connection, or in vh, or all. */
static void list_chans(struct wr_mgmt_req *rq, const struct wr_vhost *vh,
                       const struct wr_conn *only)
{
    struct wr_list *it;
    struct wr_mgmt_row *rows;
    struct chan_row *cr;
    size_t n = 0, cap = 0;

    wr_list_each(it, &rq->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (!chan_conn_wanted(rq, c, vh, only))
            continue;
        for (uint32_t i = 0; i < c->nchans_cap; i++)
            cap += c->chans[i] != NULL;
    }
    rows = malloc((cap + 1) * sizeof(*rows));
    cr = malloc((cap + 1) * sizeof(*cr));
    if (!rows || !cr) {
        free(rows);
        free(cr);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_list_each(it, &rq->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (!chan_conn_wanted(rq, c, vh, only))
            continue;
        for (uint32_t i = 0; i < c->nchans_cap && n < cap; i++) {
            if (!c->chans[i])
                continue;
            cr[n].c = c;
            cr[n].ch = c->chans[i];
            chan_name(c, (uint16_t)i, cr[n].name, sizeof(cr[n].name));
            rows[n].vhost = conn_vhost(c);
            rows[n].name = wr_str_c(cr[n].name);
            rows[n].obj = &cr[n];
            n++;
        }
    }
    wr_mgmt_list(rq, rows, n, chan_json, NULL);
    free(rows);
    free(cr);
}

static void channels(struct wr_mgmt_req *rq)
{
    list_chans(rq, NULL, NULL);
}

static void vhost_channels(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], false);
    if (vh)
        list_chans(rq, vh, NULL);
}

static void connection_channels(struct wr_mgmt_req *rq)
{
    struct wr_conn *c = conn_arg(rq, rq->arg[0]);
    if (c)
        list_chans(rq, NULL, c);
}

/* "CONNECTION (N)": the connection's name and the number. */
static bool parse_chan_name(struct wr_str s, struct wr_str *conn, uint32_t *number)
{
    uint32_t i, n = 0;
    if (s.len < 5 || s.ptr[s.len - 1] != ')')
        return false;
    i = s.len - 1;
    while (i > 0 && s.ptr[i - 1] >= '0' && s.ptr[i - 1] <= '9')
        i--;
    if (i == s.len - 1 || s.len - 1 - i > 5 || i < 3 || s.ptr[i - 1] != '(' || s.ptr[i - 2] != ' ')
        return false;
    for (uint32_t k = i; k < s.len - 1; k++)
        n = n * 10 + (uint32_t)(s.ptr[k] - '0');
    if (n > 65535)
        return false;
    *conn = (struct wr_str){s.ptr, i - 2};
    *number = n;
    return true;
}

static void channel_get(struct wr_mgmt_req *rq)
{
    struct wr_str cname;
    uint32_t number;
    struct wr_conn *c;

    if (!parse_chan_name(rq->arg[0], &cname, &number) || !(c = conn_by_name(rq, cname)) ||
        number >= c->nchans_cap || !c->chans[number]) {
        wr_mgmt_not_found(rq);
        return;
    }
    if (!conn_seen(rq, c)) {
        wr_mgmt_error(rq, 401, "not_authorised", "User not authorised to access object");
        return;
    }
    wr_mgmt_reply_json(rq, chan_json_full(c, c->chans[number], true));
}

/* ---- consumers ---- */

static void list_consumers(struct wr_mgmt_req *rq, const struct wr_vhost *vh)
{
    struct wr_list *it;
    json_t *a = json_array();
    if (!a) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_list_each(it, &rq->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (!conn_listed(c) || !conn_seen(rq, c) || (vh && c->vh != vh))
            continue;
        for (uint32_t i = 0; i < c->nchans_cap; i++) {
            struct cons_ctx x = {c, (uint16_t)i, a};
            if (c->chans[i])
                wr_chan_consumers(c->chans[i], cons_add, &x);
        }
    }
    wr_mgmt_list_json(rq, a);
}

static void consumers(struct wr_mgmt_req *rq)
{
    list_consumers(rq, NULL);
}

static void vhost_consumers(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], false);
    if (vh)
        list_consumers(rq, vh);
}

const struct wr_mgmt_route wr_mgmt_routes_conn[] = {
    {"/api/connections", WR_M_GET, WR_LV_MANAGEMENT, connections},
    {"/api/connections/:", WR_M_GET, WR_LV_MANAGEMENT, connection_get},
    {"/api/connections/:", WR_M_DELETE, WR_LV_MANAGEMENT, connection_delete},
    {"/api/connections/:/channels", WR_M_GET, WR_LV_MANAGEMENT, connection_channels},
    {"/api/vhosts/:/connections", WR_M_GET, WR_LV_MANAGEMENT, vhost_connections},
    {"/api/channels", WR_M_GET, WR_LV_MANAGEMENT, channels},
    {"/api/channels/:", WR_M_GET, WR_LV_MANAGEMENT, channel_get},
    {"/api/vhosts/:/channels", WR_M_GET, WR_LV_MANAGEMENT, vhost_channels},
    {"/api/consumers", WR_M_GET, WR_LV_MANAGEMENT, consumers},
    {"/api/consumers/:", WR_M_GET, WR_LV_MANAGEMENT, vhost_consumers},
    {NULL, 0, 0, NULL},
};
