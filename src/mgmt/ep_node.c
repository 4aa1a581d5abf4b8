/*
 * ep_node.c - management API: the node: overview, nodes, cluster-name,
 * extensions, health checks and aliveness-test, in RabbitMQ 3.10's shapes.
 *
 * Warren is one node. Its name is wr_node_name() ("rabbit@" and the
 * short host name); /api/nodes/NAME also answers for "rabbit@" and any
 * other name of the local host (localhost, the full or short host name, a
 * loopback address), since monitoring scripts build the node's name from
 * the host they were pointed at (check_rabbitmq_server -H localhost asks
 * for rabbit@localhost). Nothing here resolves names: no DNS on the loop.
 *
 * Cost: the overview and the node walk the vhosts' queues and the
 * connections once, allocating nothing per object, so that they answer in
 * a few milliseconds with 10,000 queues and 1,000 connections. The rates
 * of the totals (queue_totals, the node's gauges, churn) come from
 * wr_mgmt_node_sample, which the 5 s sampler calls with the rest.
 *
 * The cluster name is kept in memory only: it starts as the node's name
 * (RabbitMQ's default) and a PUT changes it until the broker stops.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "broker/exchange.h"
#include "broker/msg.h"
#include "broker/publish.h"
#include "broker/queue.h"
#include "broker/stats.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/version.h"
#include "mgmt/api.h"
#include "mgmt/http.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/server.h"
#include "plugin/plugin.h"

/* What RabbitMQ's tools read as the management plugin's version: the API
 * level Warren follows. Warren's own is "product_version". */
#define MGMT_COMPAT_VERSION "3.10.8"
#define PROC_TOTAL 1048576 /* RabbitMQ's default process limit */
#define CLUSTER_NAME_MAX 255

/* ---- node-wide rates, sampled ---- */

/* A gauge (may go down) and its rate between the last two samples. */
struct gauge {
    int64_t prev;
    double rate;
    bool have;
};

static void gauge_sample(struct gauge *g, int64_t now, double dt_s)
{
    g->rate = g->have && dt_s > 0 ? (double)(now - g->prev) / dt_s : 0.0;
    g->prev = now;
    g->have = true;
}

enum {
    G_MESSAGES,
    G_READY,
    G_UNACKED,
    G_MEM,
    G_FD,
    G_SOCKETS,
    G_PROC,
    G_DISK,
    G_CONN_CREATED,
    G_CONN_CLOSED,
    G_CHAN_CREATED,
    G_CHAN_CLOSED,
    G_Q_CREATED,
    G_Q_DECLARED,
    G_Q_DELETED,
    G_N
};
static struct gauge gauges[G_N];

static char cluster_name[CLUSTER_NAME_MAX + 1];
static bool cluster_name_set;

/* ---- what the node holds ---- */

/* Objects and messages, counted in one walk. A management user (not
 * monitoring) counts what it sees: vhosts it has a permission on, its own
 * connections and channels, as RabbitMQ does. */
struct totals {
    uint64_t connections, channels, exchanges, queues, consumers;
    uint64_t ready, unacked;
    struct wr_stats st; /* the vhosts' counters, summed (rates too) */
};

static bool conn_listed(const struct wr_conn *c)
{
    return c->state != WR_CS_DEAD;
}

static bool conn_seen(struct wr_mgmt_req *rq, const struct wr_conn *c)
{
    struct wr_str me;
    if (!rq || wr_mgmt_sees_all(rq))
        return true;
    if (!rq->user)
        return false;
    me = wr_user_name(rq->user);
    return me.len == c->user_len && c->user_len && memcmp(me.ptr, c->user, me.len) == 0;
}

static void count_totals(struct wr_mgmt_req *rq, struct wr_broker *b, struct wr_server *srv,
                         struct totals *t)
{
    struct wr_hnode *vn, *qn;
    size_t vit, qit;
    struct wr_list *it;

    memset(t, 0, sizeof(*t));
    /* Deleted vhosts' counters, for whoever sees every vhost (their
     * rates are gone with them). */
    if (!rq || wr_mgmt_sees_all(rq))
        for (int k = 0; k < WR_ST_N; k++)
            t->st.n[k] = b->gone_st[k];
    for (vn = wr_hmap_first(&b->vhosts, &vit); vn; vn = wr_hmap_next(&b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        if (rq && !wr_mgmt_vhost_visible(rq, vh))
            continue;
        t->exchanges += vh->exchanges.n;
        t->queues += vh->queues.n;
        for (qn = wr_hmap_first(&vh->queues, &qit); qn; qn = wr_hmap_next(&vh->queues, &qit, qn)) {
            const struct wr_queue *q = wr_container_of(qn, struct wr_queue, node);
            t->ready += q->ready;
            t->unacked += q->unacked;
            t->consumers += q->nconsumers;
        }
        for (int k = 0; k < WR_ST_N; k++) {
            t->st.n[k] += vh->st.n[k];
            t->st.rate[k] += vh->st.rate[k];
        }
    }
    wr_list_each(it, &srv->conns)
    {
        const struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (!conn_listed(c) || !conn_seen(rq, c))
            continue;
        t->connections++;
        t->channels += c->nchans_open;
    }
}

static int64_t fd_used(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int64_t n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* less the directory being read */
}

static int64_t fd_total(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT64_MAX)
        return INT64_MAX;
    return (int64_t)rl.rlim_cur;
}

static int64_t disk_free(const struct wr_conf *conf)
{
    struct statvfs sv;
    if (statvfs(conf->data_dir, &sv) < 0)
        return 0;
    return (int64_t)((uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize);
}

static int64_t sockets_used(struct wr_server *srv, const struct wr_conf *conf)
{
    return (int64_t)srv->nconns + wr_listeners_info(srv, NULL, 0) + (conf->mgmt_port ? 1 : 0) +
           (conf->mgmt_ssl_port ? 1 : 0) + (conf->prom_port ? 1 : 0);
}

/* RabbitMQ counts Erlang processes; Warren has one: its figure is the
 * objects that would each be a process there, so that it is never 0
 * (check_rabbitmq_server takes 0 for "unable to get values"). */
static int64_t proc_used(struct wr_broker *b, struct wr_server *srv)
{
    struct wr_hnode *vn;
    size_t vit;
    struct wr_list *it;
    int64_t n = 1;
    for (vn = wr_hmap_first(&b->vhosts, &vit); vn; vn = wr_hmap_next(&b->vhosts, &vit, vn))
        n += (int64_t)wr_container_of(vn, struct wr_vhost, node)->queues.n;
    wr_list_each(it, &srv->conns)
    {
        const struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        n += 1 + c->nchans_open;
    }
    return n;
}

void wr_mgmt_node_sample(struct wr_mgmt *m, double dt_s)
{
    struct totals t;
    count_totals(NULL, m->b, m->srv, &t);
    gauge_sample(&gauges[G_MESSAGES], (int64_t)(t.ready + t.unacked), dt_s);
    gauge_sample(&gauges[G_READY], (int64_t)t.ready, dt_s);
    gauge_sample(&gauges[G_UNACKED], (int64_t)t.unacked, dt_s);
    gauge_sample(&gauges[G_MEM], (int64_t)wr_broker_mem_used(m->b), dt_s);
    gauge_sample(&gauges[G_FD], fd_used(), dt_s);
    gauge_sample(&gauges[G_SOCKETS], sockets_used(m->srv, m->conf), dt_s);
    gauge_sample(&gauges[G_PROC], proc_used(m->b, m->srv), dt_s);
    gauge_sample(&gauges[G_DISK], disk_free(m->conf), dt_s);
    gauge_sample(&gauges[G_CONN_CREATED], (int64_t)m->b->churn.conns_opened, dt_s);
    gauge_sample(&gauges[G_CONN_CLOSED], (int64_t)m->b->churn.conns_closed, dt_s);
    gauge_sample(&gauges[G_CHAN_CREATED], (int64_t)m->b->churn.chans_opened, dt_s);
    gauge_sample(&gauges[G_CHAN_CLOSED], (int64_t)m->b->churn.chans_closed, dt_s);
    gauge_sample(&gauges[G_Q_CREATED], (int64_t)m->b->churn.queues_created, dt_s);
    gauge_sample(&gauges[G_Q_DECLARED], (int64_t)m->b->churn.queues_declared, dt_s);
    gauge_sample(&gauges[G_Q_DELETED], (int64_t)m->b->churn.queues_deleted, dt_s);
}

/* ---- JSON pieces ---- */

/* o[key] = v and o[key_details] = {"rate": r} */
static void set_with_rate(json_t *o, const char *key, int64_t v, double r)
{
    char k[64];
    snprintf(k, sizeof(k), "%s_details", key);
    wr_json_set(o, key, json_integer((json_int_t)v));
    wr_json_set(o, k, wr_json_rate(r));
}

static json_t *exchange_types(void)
{
    /* Every type the broker knows, sorted by name as RabbitMQ lists them. */
    const struct wr_xtype *t;
    json_t *a = json_array();
    char desc[96];
    for (size_t i = 0; a && (t = wr_xtype_at(i)) != NULL; i++) {
        snprintf(desc, sizeof(desc), "AMQP %s exchange, as per the AMQP specification", t->name);
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:b}", "name", t->name, "description", desc, "enabled", 1));
    }
    return a;
}

/* RabbitMQ's names and descriptions; enabled: in auth_mechanisms. */
static json_t *auth_mechanisms(const struct wr_conf *conf)
{
    const struct wr_conf_list *l = &conf->auth_mechanisms;
    return json_pack("[{s:s, s:s, s:b}, {s:s, s:s, s:b}, {s:s, s:s, s:b}]", "name", "PLAIN",
                     "description", "SASL PLAIN authentication mechanism", "enabled",
                     wr_conf_list_has(l, "PLAIN"), "name", "AMQPLAIN", "description",
                     "QPid AMQPLAIN mechanism", "enabled", wr_conf_list_has(l, "AMQPLAIN"), "name",
                     "EXTERNAL", "description",
                     "TLS peer verification-based authentication plugin. Used in combination "
                     "with the EXTERNAL SASL mechanism.",
                     "enabled", wr_conf_list_has(l, "EXTERNAL"));
}

/* Warren's listeners: protocol, ip, port. */
#define LISTENERS_MAX 136
struct listener {
    const char *protocol;
    char ip[64];
    int64_t port;
};

/* The AMQP and AMQPS sockets as bound, then the HTTP ones. */
static unsigned listeners(struct wr_mgmt_req *rq, struct listener out[LISTENERS_MAX])
{
    const struct wr_conf *conf = rq->m->conf;
    struct wr_listen_info info[LISTENERS_MAX - 3];
    unsigned n = wr_listeners_info(rq->srv, info, LISTENERS_MAX - 3);
    if (n > LISTENERS_MAX - 3)
        n = LISTENERS_MAX - 3;
    for (unsigned i = 0; i < n; i++) {
        out[i].protocol = info[i].protocol;
        snprintf(out[i].ip, sizeof(out[i].ip), "%s", info[i].ip);
        out[i].port = info[i].port;
    }
    if (conf->mgmt_port) {
        out[n].protocol = "http";
        snprintf(out[n].ip, sizeof(out[n].ip), "%s", conf->mgmt_ip);
        out[n].port = conf->mgmt_port;
        n++;
    }
    if (conf->mgmt_ssl_port) {
        out[n].protocol = "https";
        snprintf(out[n].ip, sizeof(out[n].ip), "%s", conf->mgmt_ssl_ip);
        out[n].port = conf->mgmt_ssl_port;
        n++;
    }
    if (conf->prom_port) {
        out[n].protocol = "http/prometheus";
        snprintf(out[n].ip, sizeof(out[n].ip), "%s", conf->mgmt_ip);
        out[n].port = conf->prom_port;
        n++;
    }
    return n;
}

static json_t *listeners_json(struct wr_mgmt_req *rq)
{
    struct listener l[LISTENERS_MAX];
    unsigned n = listeners(rq, l);
    json_t *a = json_array();
    for (unsigned i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:{}}", "node", wr_node_name(),
                                           "protocol", l[i].protocol, "ip_address", l[i].ip, "port",
                                           (json_int_t)l[i].port, "socket_opts"));
    return a;
}

/* The HTTP listeners as RabbitMQ's "contexts" (ports as strings, as
 * RabbitMQ gives them); with the node's name in the overview's. */
static json_t *contexts_json(struct wr_mgmt_req *rq, bool with_node)
{
    const struct wr_conf *conf = rq->m->conf;
    json_t *a = json_array();
    char port[24];
    if (!a)
        return NULL;
    if (conf->mgmt_port) {
        snprintf(port, sizeof(port), "%lld", (long long)conf->mgmt_port);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "description", "RabbitMQ Management", "path",
                              "/", "ip", conf->mgmt_ip, "port", port);
        if (o && with_node)
            wr_json_set(o, "node", json_string(wr_node_name()));
        json_array_append_new(a, o);
    }
    if (conf->mgmt_ssl_port) {
        snprintf(port, sizeof(port), "%lld", (long long)conf->mgmt_ssl_port);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "description", "RabbitMQ Management",
                              "path", "/", "ip", conf->mgmt_ssl_ip, "port", port, "ssl", "true");
        if (o && with_node)
            wr_json_set(o, "node", json_string(wr_node_name()));
        json_array_append_new(a, o);
    }
    if (conf->prom_port) {
        snprintf(port, sizeof(port), "%lld", (long long)conf->prom_port);
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "description", "RabbitMQ Prometheus", "path",
                      "/", "ip", conf->mgmt_ip, "port", port, "protocol", "'http/prometheus'");
        if (o && with_node)
            wr_json_set(o, "node", json_string(wr_node_name()));
        json_array_append_new(a, o);
    }
    return a;
}

const char *wr_mgmt_cluster_name(void)
{
    if (!cluster_name_set)
        snprintf(cluster_name, sizeof(cluster_name), "%s", wr_node_name());
    return cluster_name;
}

/* ---- /api/overview ---- */

static json_t *churn_json(const struct wr_churn *ch)
{
    static const struct {
        const char *key;
        int g;
    } rows[] = {
        {"channel_closed", G_CHAN_CLOSED},    {"channel_created", G_CHAN_CREATED},
        {"connection_closed", G_CONN_CLOSED}, {"connection_created", G_CONN_CREATED},
        {"queue_created", G_Q_CREATED},       {"queue_declared", G_Q_DECLARED},
        {"queue_deleted", G_Q_DELETED},
    };
    const uint64_t now[] = {ch->chans_closed,  ch->chans_opened,   ch->conns_closed,
                            ch->conns_opened,  ch->queues_created, ch->queues_declared,
                            ch->queues_deleted};
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        set_with_rate(o, rows[i].key, (int64_t)now[i], gauges[rows[i].g].rate);
    return o;
}

static void overview(struct wr_mgmt_req *rq)
{
    struct totals t;
    json_t *o = json_object(), *qt, *ot;

    if (!o) {
        wr_mgmt_reply_json(rq, NULL);
        return;
    }
    count_totals(rq, rq->b, rq->srv, &t);
    wr_json_set(o, "management_version", json_string(MGMT_COMPAT_VERSION));
    wr_json_set(o, "rates_mode", json_string("basic"));
    wr_json_set(o, "sample_retention_policies",
                json_pack("{s:[iiii], s:[ii], s:[i]}", "global", 600, 3600, 28800, 86400, "basic",
                          600, 3600, "detailed", 600));
    wr_json_set(o, "exchange_types", exchange_types());
    wr_json_set(o, "product_version", json_string(WR_VERSION));
    wr_json_set(o, "product_name", json_string("Warren"));
    wr_json_set(o, "rabbitmq_version", json_string(MGMT_COMPAT_VERSION));
    wr_json_set(o, "warren_version", json_string(WR_VERSION));
    wr_json_set(o, "cluster_name", json_string(wr_mgmt_cluster_name()));
    wr_json_set(o, "erlang_version", json_string("n/a"));
    wr_json_set(o, "erlang_full_version", json_string("Warren " WR_VERSION " (C11, libevent)"));
    wr_json_set(o, "disable_stats", json_false());
    wr_json_set(o, "enable_queue_totals", json_false());
    wr_json_set(o, "message_stats", wr_mgmt_message_stats(&t.st, WR_MGMT_STATS_CHANNEL));
    wr_json_set(o, "churn_rates", churn_json(&rq->b->churn));
    if ((qt = json_object()) != NULL) {
        set_with_rate(qt, "messages", (int64_t)(t.ready + t.unacked), gauges[G_MESSAGES].rate);
        set_with_rate(qt, "messages_ready", (int64_t)t.ready, gauges[G_READY].rate);
        set_with_rate(qt, "messages_unacknowledged", (int64_t)t.unacked, gauges[G_UNACKED].rate);
        wr_json_set(o, "queue_totals", qt);
    }
    if ((ot = json_object()) != NULL) {
        wr_json_set(ot, "channels", json_integer((json_int_t)t.channels));
        wr_json_set(ot, "connections", json_integer((json_int_t)t.connections));
        wr_json_set(ot, "consumers", json_integer((json_int_t)t.consumers));
        wr_json_set(ot, "exchanges", json_integer((json_int_t)t.exchanges));
        wr_json_set(ot, "queues", json_integer((json_int_t)t.queues));
        wr_json_set(o, "object_totals", ot);
    }
    wr_json_set(o, "statistics_db_event_queue", json_integer(0));
    /* The node's own details only for monitoring users, as RabbitMQ. */
    if (rq->monitoring) {
        wr_json_set(o, "node", json_string(wr_node_name()));
        wr_json_set(o, "listeners", listeners_json(rq));
        wr_json_set(o, "contexts", contexts_json(rq, true));
    }
    wr_mgmt_reply_json(rq, o);
}

/* ---- /api/nodes ---- */

static bool ci_eq(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

/* Is NAME this node: its own name, or "rabbit@" and a name of this host? */
static bool node_is_me(struct wr_str name)
{
    const char *me = wr_node_name();
    char host[256] = "", addr[64];
    unsigned char buf[16];
    const char *h;
    size_t hl;

    if (name.len == strlen(me) && memcmp(name.ptr, me, name.len) == 0)
        return true;
    if (name.len <= 7 || memcmp(name.ptr, "rabbit@", 7) != 0 || memchr(name.ptr, '\0', name.len))
        return false;
    h = name.ptr + 7;
    hl = name.len - 7;
    if (ci_eq(h, hl, "localhost") || ci_eq(h, hl, "localhost.localdomain"))
        return true;
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        if (host[0] && ci_eq(h, hl, host))
            return true;
        host[strcspn(host, ".")] = '\0';
        if (host[0] && ci_eq(h, hl, host))
            return true;
    }
    if (hl < sizeof(addr)) {
        memcpy(addr, h, hl);
        addr[hl] = '\0';
        if (inet_pton(AF_INET, addr, buf) == 1 && buf[0] == 127)
            return true;
        if (inet_pton(AF_INET6, addr, buf) == 1 &&
            memcmp(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0)
            return true;
    }
    return false;
}

static json_t *node_json(struct wr_mgmt_req *rq)
{
    const struct wr_conf *conf = rq->m->conf;
    struct wr_broker *b = rq->b;
    json_t *o = json_object();
    char pid[24];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t fdt = fd_total();

    if (!o)
        return NULL;
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    wr_json_set(o, "name", json_string(wr_node_name()));
    wr_json_set(o, "type", json_string("disc"));
    wr_json_set(o, "running", json_true());
    wr_json_set(o, "being_drained", json_false());
    wr_json_set(o, "os_pid", json_string(pid)); /* a string, as RabbitMQ's */
    set_with_rate(o, "mem_used", (int64_t)wr_broker_mem_used(b), gauges[G_MEM].rate);
    wr_json_set(o, "mem_limit", json_integer((json_int_t)b->mem_limit));
    wr_json_set(o, "mem_alarm", json_boolean(b->mem_alarm));
    wr_json_set(o, "mem_calculation_strategy", json_string("rss"));
    set_with_rate(o, "disk_free", disk_free(conf), gauges[G_DISK].rate);
    wr_json_set(o, "disk_free_limit", json_integer((json_int_t)conf->disk_free_limit));
    wr_json_set(o, "disk_free_alarm", json_boolean(b->disk_alarm));
    set_with_rate(o, "fd_used", fd_used(), gauges[G_FD].rate);
    wr_json_set(o, "fd_total", json_integer((json_int_t)fdt));
    set_with_rate(o, "sockets_used", sockets_used(rq->srv, conf), gauges[G_SOCKETS].rate);
    wr_json_set(o, "sockets_total", json_integer((json_int_t)fdt));
    set_with_rate(o, "proc_used", proc_used(b, rq->srv), gauges[G_PROC].rate);
    wr_json_set(o, "proc_total", json_integer(PROC_TOTAL));
    wr_json_set(o, "run_queue", json_integer(0));
    wr_json_set(o, "processors", json_integer(ncpu > 0 ? ncpu : 1));
    wr_json_set(o, "uptime", json_integer((json_int_t)(wr_now_ms() - rq->m->started_ms)));
    wr_json_set(o, "rates_mode", json_string("basic"));
    wr_json_set(o, "net_ticktime", json_integer(60));
    wr_json_set(o, "partitions", json_array());
    wr_json_set(o, "cluster_links", json_array());
    wr_json_set(o, "applications", json_array());
    wr_json_set(o, "exchange_types", exchange_types());
    wr_json_set(o, "auth_mechanisms", auth_mechanisms(conf));
    wr_json_set(o, "contexts", contexts_json(rq, false));
    wr_json_set(o, "config_files", json_array());
    wr_json_set(o, "log_files", json_array());
    wr_json_set(o, "db_dir", json_string(conf->data_dir));
    wr_json_set(o, "enabled_plugins",
                json_pack("[s, s]", "rabbitmq_management", "rabbitmq_prometheus"));
    set_with_rate(o, "connection_created", (int64_t)rq->b->churn.conns_opened,
                  gauges[G_CONN_CREATED].rate);
    set_with_rate(o, "connection_closed", (int64_t)rq->b->churn.conns_closed,
                  gauges[G_CONN_CLOSED].rate);
    set_with_rate(o, "channel_created", (int64_t)rq->b->churn.chans_opened,
                  gauges[G_CHAN_CREATED].rate);
    set_with_rate(o, "channel_closed", (int64_t)rq->b->churn.chans_closed,
                  gauges[G_CHAN_CLOSED].rate);
    wr_json_set(o, "warren_version", json_string(WR_VERSION));
    return o;
}

static void nodes(struct wr_mgmt_req *rq)
{
    json_t *a = json_array();
    if (a && json_array_append_new(a, node_json(rq)) < 0) {
        json_decref(a);
        a = NULL;
    }
    if (!a) {
        wr_mgmt_reply_json(rq, NULL);
        return;
    }
    wr_mgmt_list_json(rq, a);
}

static void node(struct wr_mgmt_req *rq)
{
    if (!node_is_me(rq->arg[0])) {
        wr_mgmt_not_found(rq);
        return;
    }
    wr_mgmt_reply_json(rq, node_json(rq));
}

/* ---- /api/cluster-name, /api/extensions ---- */

static void cluster_name_get(struct wr_mgmt_req *rq)
{
    wr_mgmt_reply_json(rq, json_pack("{s:s}", "name", wr_mgmt_cluster_name()));
}

static void cluster_name_put(struct wr_mgmt_req *rq)
{
    json_t *body = wr_mgmt_body(rq), *v;
    if (!body)
        return;
    v = json_object_get(body, "name");
    if (!v) {
        wr_mgmt_error(rq, 400, "bad_request", "[{key_missing,name}]");
    } else if (!json_is_string(v)) {
        wr_mgmt_error(rq, 400, "bad_request", "name: not a string");
    } else if (json_string_length(v) > CLUSTER_NAME_MAX ||
               strlen(json_string_value(v)) != json_string_length(v)) {
        wr_mgmt_errorf(rq, 400, "bad_request", "name: longer than %d bytes or holds NUL",
                       CLUSTER_NAME_MAX);
    } else {
        /* An empty name is kept, as RabbitMQ keeps it. */
        snprintf(cluster_name, sizeof(cluster_name), "%s", json_string_value(v));
        cluster_name_set = true;
        wr_mgmt_reply_empty(rq, 204);
    }
    json_decref(body);
}

static void extensions(struct wr_mgmt_req *rq)
{
    wr_mgmt_reply_json(rq, json_array());
}

/* ---- /api/plugins (Warren's): what is loaded ---- */

static void plugins(struct wr_mgmt_req *rq)
{
    json_t *a = json_array();
    const struct wr_plugins *s = rq->b->plugins;
    for (size_t i = 0; a && s && i < s->n; i++) {
        const warren_host *h = s->v[i];
        json_t *o = json_object(), *types = json_array();
        bool ok = o && types;
        for (const struct wr_xtype_adapter *t = h->types; ok && t; t = wr_plugin_xtype_next(t))
            ok = json_array_append_new(types, json_string(wr_plugin_xtype_name(t))) == 0;
        ok = ok && wr_json_set(o, "name", json_string(h->desc->name));
        ok = ok && wr_json_set(o, "version", json_string(h->desc->version ? h->desc->version : ""));
        ok = ok && wr_json_set(o, "description",
                               json_string(h->desc->description ? h->desc->description : ""));
        ok = ok && wr_json_set(o, "path", json_string(h->path));
        ok = ok && wr_json_set(o, "abi", json_sprintf("%u.%u", h->desc->abi_major,
                                                      h->desc->abi_minor));
        ok = ok && wr_json_set(o, "exchange_types", json_incref(types));
        json_decref(types);
        if (!ok || json_array_append_new(a, o) < 0) {
            json_decref(o);
            json_decref(a);
            a = NULL;
        }
    }
    wr_mgmt_reply_json(rq, a);
}

/* ---- health checks ---- */

static void health_ok(struct wr_mgmt_req *rq, json_t *extra)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    if (o) {
        wr_json_set(o, "status", json_string("ok"));
        json_object_foreach(extra, k, v) json_object_set(o, k, v);
    }
    json_decref(extra);
    wr_mgmt_reply_json(rq, o);
}

/* 503 {"status":"failed","reason":...} plus the fields of extra. */
static void health_failed(struct wr_mgmt_req *rq, const char *reason, json_t *extra)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    if (!o) {
        json_decref(extra);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_json_set(o, "status", json_string("failed"));
    wr_json_set(o, "reason", wr_json_str(wr_str_c(reason)));
    if (extra) {
        json_object_foreach(extra, k, v) json_object_set(o, k, v);
        json_decref(extra);
    }
    wr_mgmt_reply_json_status(rq, 503, o);
}

static void alarms_check(struct wr_mgmt_req *rq, const char *reason)
{
    struct wr_broker *b = rq->b;
    json_t *a;
    if (!b->mem_alarm && !b->disk_alarm) {
        health_ok(rq, NULL);
        return;
    }
    a = json_array();
    if (a && b->mem_alarm)
        json_array_append_new(
            a, json_pack("{s:s, s:s}", "node", wr_node_name(), "resource", "memory"));
    if (a && b->disk_alarm)
        json_array_append_new(a,
                              json_pack("{s:s, s:s}", "node", wr_node_name(), "resource", "disk"));
    health_failed(rq, reason, json_pack("{s:o}", "alarms", a ? a : json_array()));
}

static void health_alarms(struct wr_mgmt_req *rq)
{
    alarms_check(rq, "There are alarms in effect in the cluster");
}

static void health_local_alarms(struct wr_mgmt_req *rq)
{
    alarms_check(rq, "There are alarms in effect on the node");
}

static void health_port(struct wr_mgmt_req *rq)
{
    struct listener l[LISTENERS_MAX];
    unsigned n = listeners(rq, l);
    const char *s = rq->arg[0].ptr;
    char *end;
    long long port;
    json_t *ports;

    port = strtoll(s, &end, 10);
    if (!*s || *end || isspace((unsigned char)*s) || rq->arg[0].len != strlen(s)) {
        wr_mgmt_error(rq, 400, "bad_request", "Invalid port");
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        if (l[i].port == port) {
            health_ok(rq, json_pack("{s:I}", "port", (json_int_t)port));
            return;
        }
    }
    ports = json_array();
    for (unsigned i = 0; ports && i < n; i++)
        json_array_append_new(ports, json_integer((json_int_t)l[i].port));
    health_failed(rq, "No active listener",
                  json_pack("{s:I, s:o}", "missing", (json_int_t)port, "ports",
                            ports ? ports : json_array()));
}

/* RabbitMQ's names for a protocol: every spelling of AMQP 0-9-1 and 1.0 is
 * "amqp", the management listener "http". */
static void protocol_normalize(const char *in, size_t len, char *out, size_t cap)
{
    static const char *const amqp[] = {"amqp",   "amqp091", "amqp0-9-1", "amqp0.9.1", "amqp0_9_1",
                                       "amqp10", "amqp1.0", "amqp1-0",   "amqp1_0"};
    static const char *const amqps[] = {"amqps", "amqp/ssl", "amqp091/ssl", "amqp10/ssl"};
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    for (size_t i = 0; i < sizeof(amqp) / sizeof(amqp[0]); i++)
        if (!strcmp(out, amqp[i])) {
            snprintf(out, cap, "amqp");
            return;
        }
    for (size_t i = 0; i < sizeof(amqps) / sizeof(amqps[0]); i++)
        if (!strcmp(out, amqps[i])) {
            snprintf(out, cap, "amqp/ssl");
            return;
        }
    if (!strcmp(out, "management"))
        snprintf(out, cap, "http");
    else if (!strcmp(out, "management/ssl") || !strcmp(out, "https/management"))
        snprintf(out, cap, "https");
}

static void health_protocol(struct wr_mgmt_req *rq)
{
    struct listener l[LISTENERS_MAX];
    unsigned n = listeners(rq, l);
    char proto[64];
    json_t *protos;

    protocol_normalize(rq->arg[0].ptr, rq->arg[0].len, proto, sizeof(proto));
    for (unsigned i = 0; i < n; i++) {
        if (!strcmp(l[i].protocol, proto)) {
            health_ok(rq, json_pack("{s:s}", "protocol", proto));
            return;
        }
    }
    protos = json_array();
    for (unsigned i = 0; protos && i < n; i++)
        json_array_append_new(protos, json_string(l[i].protocol));
    health_failed(rq, "No active listener",
                  json_pack("{s:o, s:o}", "missing", wr_json_str(wr_str_c(proto)), "protocols",
                            protos ? protos : json_array()));
}

/* Every vhost of Warren runs in the broker's process: they are all up. */
static void health_vhosts(struct wr_mgmt_req *rq)
{
    health_ok(rq, NULL);
}

static void health_single_node(struct wr_mgmt_req *rq)
{
    health_ok(rq, json_pack("{s:s}", "reason", "single node cluster"));
}

/* ---- /api/aliveness-test/V ---- */

#define ALIVENESS_QUEUE "aliveness-test"
#define ALIVENESS_BODY "test_message"

/* Declare the queue, publish a message to it through the default exchange
 * and get it back, with the broker's own functions (what RabbitMQ's test
 * does through a direct client). The queue stays, as RabbitMQ leaves it. */
static void aliveness(struct wr_mgmt_req *rq)
{
    static const uint8_t no_props[2] = {0, 0};
    struct wr_str qn = WR_STR(ALIVENESS_QUEUE);
    struct wr_vhost *vh = wr_mgmt_vhost(rq, rq->arg[0], false);
    struct wr_publish_result res;
    struct wr_errbuf err;
    struct wr_queue *q;
    struct wr_msg *m;
    struct wr_qent e;
    bool created, ok;
    int rc;

    if (!vh)
        return;
    q = wr_vhost_queue(vh, qn);
    if (!q) {
        struct wr_queue_decl d;
        memset(&d, 0, sizeof(d));
        d.name = qn;
        d.args = (struct wr_str){"", 0};
        if (wr_vhost_queue_declare(vh, &d, &q, &created, &err) < 0) {
            health_failed(rq, err.text, NULL);
            return;
        }
    }
    if (q->exclusive) {
        health_failed(rq, "queue 'aliveness-test' is exclusive to a connection", NULL);
        return;
    }
    m = wr_msg_new(&rq->b->msgs, WR_STR(""), qn, no_props, sizeof(no_props),
                   sizeof(ALIVENESS_BODY) - 1, 0);
    if (!m) {
        health_failed(rq, "out of memory", NULL);
        return;
    }
    memcpy(wr_msg_body(m), ALIVENESS_BODY, sizeof(ALIVENESS_BODY) - 1);
    m->published_ms = wr_now_ms();
    memset(&res, 0, sizeof(res));
    rc = wr_vhost_publish(vh, vh->default_exchange, m, NULL, &res);
    ok = rc == 0 && res.route.n > 0 && !res.journal_failed && !res.rejected;
    wr_publish_result_free(&res);
    wr_msg_unref(m);
    if (!ok) {
        health_failed(rq, "the test message was not queued", NULL);
        return;
    }
    if (!wr_queue_get(q, &e)) {
        health_failed(rq, "the test message could not be fetched back", NULL);
        return;
    }
    wr_queue_settled(q, e.m);
    health_ok(rq, NULL);
}

const struct wr_mgmt_route wr_mgmt_routes_node[] = {
    {"/api/overview", WR_M_GET, WR_LV_MANAGEMENT, overview},
    {"/api/nodes", WR_M_GET, WR_LV_MONITORING, nodes},
    {"/api/nodes/:", WR_M_GET, WR_LV_MONITORING, node},
    {"/api/cluster-name", WR_M_GET, WR_LV_MANAGEMENT, cluster_name_get},
    {"/api/cluster-name", WR_M_PUT, WR_LV_ADMIN, cluster_name_put},
    {"/api/extensions", WR_M_GET, WR_LV_MANAGEMENT, extensions},
    {"/api/plugins", WR_M_GET, WR_LV_MANAGEMENT, plugins},
    {"/api/health/checks/alarms", WR_M_GET, WR_LV_MANAGEMENT, health_alarms},
    {"/api/health/checks/local-alarms", WR_M_GET, WR_LV_MANAGEMENT, health_local_alarms},
    {"/api/health/checks/port-listener/:", WR_M_GET, WR_LV_MANAGEMENT, health_port},
    {"/api/health/checks/protocol-listener/:", WR_M_GET, WR_LV_MANAGEMENT, health_protocol},
    {"/api/health/checks/virtual-hosts", WR_M_GET, WR_LV_MANAGEMENT, health_vhosts},
    {"/api/health/checks/node-is-quorum-critical", WR_M_GET, WR_LV_MANAGEMENT, health_single_node},
    {"/api/health/checks/node-is-mirror-sync-critical", WR_M_GET, WR_LV_MANAGEMENT,
     health_single_node},
    {"/api/aliveness-test/:", WR_M_GET, WR_LV_MANAGEMENT, aliveness},
    {NULL, 0, 0, NULL},
};
