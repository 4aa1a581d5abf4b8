/*
 * metrics.c - management API: Prometheus: /metrics and /metrics/per-object.
 *
 * The text exposition format 0.0.4, with RabbitMQ's metric names (its
 * rabbitmq_prometheus plugin) wherever Warren has the figure, so that the
 * dashboards and alerts written for RabbitMQ work; what RabbitMQ lacks is
 * prefixed warren_. Every family has # HELP and # TYPE, counters end in
 * _total, a family appears once, label values are escaped.
 *
 * /metrics is RabbitMQ's aggregated mode: queue and channel figures summed
 * without labels (the head message's age: the oldest). /metrics/per-object
 * gives them per queue ({vhost, queue}) and per channel ({channel}, as
 * RabbitMQ names its channel and connection label); node figures are the
 * same in both. Both routes are public (no login), as RabbitMQ's plugin.
 *
 * Cost: a scrape walks the vhosts, the queues and the channels a few
 * times (each family's samples must be contiguous), reads a few /proc
 * files and a statvfs. Nothing is counted per message here: the counters
 * are broker/stats.h's.
 */
#include "config.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "broker/broker.h"
#include "broker/dedup.h"
#include "broker/exchange.h"
#include "broker/persist.h"
#include "broker/queue.h"
#include "broker/stats.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/histo.h"
#include "core/utf8.h"
#include "core/version.h"
#include "mgmt/api.h"
#include "mgmt/http.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/server.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PROTO "protocol=\"amqp091\""
#define CLASSIC "queue_type=\"rabbit_classic_queue\""

/* ---- the text ---- */

struct out {
    char *p;
    size_t len, cap;
    bool oom;
};

static bool reserve(struct out *o, size_t n)
{
    if (o->oom)
        return false;
    if (o->len + n + 1 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 16384;
    while (cap < o->len + n + 1)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) {
        o->oom = true;
        return false;
    }
    o->p = p;
    o->cap = cap;
    return true;
}

static void put(struct out *o, const char *s, size_t n)
{
    if (!reserve(o, n))
        return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && reserve(o, (size_t)n)) {
        vsnprintf(o->p + o->len, (size_t)n + 1, fmt, ap2);
        o->len += (size_t)n;
    }
    va_end(ap2);
}

/* A label value: \, " and newline escaped; a name that is not UTF-8 is
 * read as Latin-1 (every byte a character), as the JSON side does. */
static void label_value(struct out *o, struct wr_str v)
{
    bool utf8 = !v.len || wr_utf8_strict(v.ptr, v.len);
    if (!reserve(o, (size_t)v.len * 2))
        return;
    for (uint32_t i = 0; i < v.len; i++) {
        uint8_t c = (uint8_t)v.ptr[i];
        char *d = o->p + o->len;
        if (c == '\\' || c == '"') {
            d[0] = '\\';
            d[1] = (char)c;
            o->len += 2;
        } else if (c == '\n') {
            d[0] = '\\';
            d[1] = 'n';
            o->len += 2;
        } else if (c < 0x80 || utf8) {
            d[0] = (char)c;
            o->len += 1;
        } else {
            d[0] = (char)(0xC0 | (c >> 6));
            d[1] = (char)(0x80 | (c & 0x3F));
            o->len += 2;
        }
    }
    o->p[o->len] = '\0';
}

/* "# HELP" and "# TYPE" of a family. */
static void family(struct out *o, const char *name, const char *type, const char *help)
{
    putf(o, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

/* One sample: name{labels} value. `labels` is what goes between the
 * braces (already escaped), or NULL. */
static void sample_u(struct out *o, const char *name, const char *labels, uint64_t v)
{
    if (labels)
        putf(o, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
    else
        putf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void sample_d(struct out *o, const char *name, const char *labels, double v)
{
    if (labels)
        putf(o, "%s{%s} %.6f\n", name, labels, v);
    else
        putf(o, "%s %.6f\n", name, v);
}

/* A family of one unlabelled sample. */
static void one_u(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    family(o, name, type, help);
    sample_u(o, name, NULL, v);
}

static void one_d(struct out *o, const char *name, const char *type, const char *help, double v)
{
    family(o, name, type, help);
    sample_d(o, name, NULL, v);
}

/* ---- the node ---- */

/* A stable identity for the node's data: a digest of the node name and
 * the data directory, in RabbitMQ's shape (rabbitmq-cluster-id-...). */
static void permanent_id(const char *node, const char *data_dir, char *buf, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char b64[64];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, node, strlen(node) + 1) != 1 ||
        EVP_DigestUpdate(ctx, data_dir, strlen(data_dir)) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16) {
        EVP_MD_CTX_free(ctx);
        snprintf(buf, size, "rabbitmq-cluster-id-warren");
        return;
    }
    EVP_MD_CTX_free(ctx);
    int n = EVP_EncodeBlock(b64, md, 16); /* 24 characters, "==" at the end */
    while (n > 0 && b64[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    snprintf(buf, size, "rabbitmq-cluster-id-%.*s", n, (const char *)b64);
}

/* How long the process has run, in seconds, from /proc (its start in
 * clock ticks after boot, and the time since boot); -1 without /proc. */
static double process_uptime_s(void)
{
    char buf[1024];
    double since_boot = -1;
    unsigned long long start_ticks = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* After the command name (in parentheses, may hold anything): the
     * state is field 3, the start time field 22. */
    char *p = strrchr(buf, ')');
    if (!p || hz <= 0)
        return -1;
    p++;
    for (int field = 3; field <= 22 && p; field++) {
        while (*p == ' ')
            p++;
        if (field == 22)
            start_ticks = strtoull(p, NULL, 10);
        p = strchr(p, ' ');
    }
    if (!(f = fopen("/proc/uptime", "re")))
        return -1;
    if (fscanf(f, "%lf", &since_boot) != 1)
        since_boot = -1;
    fclose(f);
    if (since_boot < 0)
        return -1;
    double up = since_boot - (double)start_ticks / (double)hz;
    return up > 0 ? up : 0;
}

static uint64_t resident_bytes(void)
{
    unsigned long long size = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t open_fds(void)
{
    uint64_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n ? n - 1 : 0; /* not the directory's own descriptor */
}

static void node_metrics(struct wr_mgmt_req *rq, struct out *o)
{
    struct wr_broker *b = rq->b;
    const struct wr_conf *conf = rq->m->conf;
    const char *node = wr_node_name();
    char id[128];
    struct rlimit rl;
    struct statvfs sv;

    permanent_id(node, conf->data_dir, id, sizeof(id));
    family(o, "rabbitmq_identity_info", "untyped", "The node's name and its cluster's");
    puts_(o, "rabbitmq_identity_info{rabbitmq_node=\"");
    label_value(o, wr_str_c(node));
    puts_(o, "\",rabbitmq_cluster=\"");
    label_value(o, wr_str_c(wr_mgmt_cluster_name()));
    puts_(o, "\",rabbitmq_cluster_permanent_id=\"");
    label_value(o, wr_str_c(id));
    puts_(o, "\"} 1\n");

    family(o, "rabbitmq_build_info", "untyped", "The broker's version");
    putf(o,
         "rabbitmq_build_info{rabbitmq_version=\"%s\",prometheus_plugin_version=\"%s\","
         "warren_version=\"%s\"} 1\n",
         WR_VERSION, WR_VERSION, WR_VERSION);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double up = process_uptime_s();
    if (up < 0) /* no /proc: the management listener started soon after */
        up = (double)(wr_now_ms() - rq->m->started_ms) / 1000.0;
    one_d(o, "process_start_time_seconds", "gauge",
          "When the process started, in seconds since the Unix epoch",
          (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - up);
    one_d(o, "rabbitmq_erlang_uptime_seconds", "gauge",
          "Seconds since the process started (Warren runs no Erlang VM: the process's uptime)", up);

    one_u(o, "rabbitmq_process_resident_memory_bytes", "gauge", "Resident memory of the process",
          resident_bytes());
    one_u(o, "rabbitmq_resident_memory_limit_bytes", "gauge",
          "Memory high watermark: publishers are blocked above it", b->mem_limit);
    one_u(o, "rabbitmq_process_open_fds", "gauge", "Open file descriptors", open_fds());
    one_u(o, "rabbitmq_process_max_fds", "gauge", "Open file descriptors limit",
          getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (uint64_t)rl.rlim_cur
                                                                             : 0);
    one_u(o, "rabbitmq_disk_space_available_bytes", "gauge",
          "Free disk space on the data directory's file system",
          statvfs(conf->data_dir, &sv) == 0 ? (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize : 0);
    one_u(o, "rabbitmq_disk_space_available_limit_bytes", "gauge",
          "Free disk space low watermark: publishers are blocked below it", conf->disk_free_limit);
    one_u(o, "rabbitmq_alarms_memory_used_watermark", "gauge",
          "1 while the memory alarm is in effect", b->mem_alarm ? 1 : 0);
    one_u(o, "rabbitmq_alarms_free_disk_space_watermark", "gauge",
          "1 while the free disk space alarm is in effect (the journal failing included)",
          b->disk_alarm ? 1 : 0);
    one_u(o, "rabbitmq_alarms_file_descriptor_limit", "gauge",
          "1 while accepting connections is paused for want of file descriptors",
          wr_listeners_fd_paused(rq->srv) ? 1 : 0);
}

/* ---- counters ---- */

struct totals {
    uint64_t st[WR_ST_N];
    uint64_t dl_dropped[4];
    uint64_t queues, consumers;
    uint64_t ready, ready_bytes, unacked, unacked_bytes, published;
    uint64_t oldest_ms; /* the oldest head message's publication, 0: none */
    uint64_t conns, chans, publishers;
    uint64_t ch_consumers, ch_unacked, ch_unconfirmed, ch_uncommitted, ch_acks_uncommitted,
        ch_prefetch;
};

static void gather(struct wr_mgmt_req *rq, struct totals *t)
{
    struct wr_hnode *vn, *qn;
    size_t vit, qit;
    struct wr_list *it;

    memset(t, 0, sizeof(*t));
    for (int k = 0; k < WR_ST_N; k++)
        t->st[k] = rq->b->gone_st[k];
    for (int k = 0; k < 4; k++)
        t->dl_dropped[k] = rq->b->gone_dl_dropped[k];
    for (vn = wr_hmap_first(&rq->b->vhosts, &vit); vn;
         vn = wr_hmap_next(&rq->b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        for (int k = 0; k < WR_ST_N; k++)
            t->st[k] += vh->st.n[k];
        for (int k = 0; k < 4; k++)
            t->dl_dropped[k] += vh->dl_dropped[k];
        for (qn = wr_hmap_first(&vh->queues, &qit); qn; qn = wr_hmap_next(&vh->queues, &qit, qn)) {
            struct wr_queue *q = wr_container_of(qn, struct wr_queue, node);
            uint64_t head = wr_queue_head_published_ms(q);
            t->queues++;
            t->consumers += q->nconsumers;
            t->ready += q->ready;
            t->ready_bytes += q->ready_bytes;
            t->unacked += q->unacked;
            t->unacked_bytes += q->unacked_bytes;
            t->published += q->st.n[WR_ST_PUBLISH];
            if (head && (!t->oldest_ms || head < t->oldest_ms))
                t->oldest_ms = head;
        }
    }
    wr_list_each(it, &rq->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        t->conns++;
        for (uint32_t i = 0; i < c->nchans_cap; i++) {
            struct wr_chan_info ci;
            if (!c->chans[i])
                continue;
            wr_chan_info(c->chans[i], &ci);
            t->chans++;
            if (ci.stats->n[WR_ST_PUBLISH])
                t->publishers++;
            t->ch_consumers += ci.consumers;
            t->ch_unacked += ci.unacked;
            t->ch_unconfirmed += ci.unconfirmed;
            t->ch_uncommitted += ci.uncommitted_messages;
            t->ch_acks_uncommitted += ci.uncommitted_acks;
            t->ch_prefetch += ci.global_prefetch_count;
        }
    }
}

static double age_s(uint64_t published_ms)
{
    uint64_t now = wr_now_ms();
    return published_ms && now > published_ms ? (double)(now - published_ms) / 1000.0 : 0.0;
}

static void churn_metrics(struct out *o, const struct totals *t, const struct wr_churn *ch)
{
    one_u(o, "rabbitmq_connections", "gauge", "Connections open", t->conns);
    one_u(o, "rabbitmq_channels", "gauge", "Channels open", t->chans);
    one_u(o, "rabbitmq_consumers", "gauge", "Consumers", t->consumers);
    one_u(o, "rabbitmq_queues", "gauge", "Queues", t->queues);
    one_u(o, "rabbitmq_connections_opened_total", "counter", "Connections opened (accepted)",
          ch->conns_opened);
    one_u(o, "rabbitmq_connections_closed_total", "counter", "Connections closed or dropped",
          ch->conns_closed);
    one_u(o, "rabbitmq_channels_opened_total", "counter", "Channels opened", ch->chans_opened);
    one_u(o, "rabbitmq_channels_closed_total", "counter", "Channels closed", ch->chans_closed);
    one_u(o, "rabbitmq_queues_declared_total", "counter",
          "Queues declared by queue.declare (not passive)", ch->queues_declared);
    one_u(o, "rabbitmq_queues_created_total", "counter",
          "Queues created (durable queues recovered at start included)", ch->queues_created);
    one_u(o, "rabbitmq_queues_deleted_total", "counter", "Queues deleted", ch->queues_deleted);
    one_u(o, "warren_consumer_timeouts_total", "counter",
          "Channels closed because a delivery was not acknowledged within its timeout",
          ch->consumer_timeouts);
}

static void global_metrics(struct out *o, const struct totals *t)
{
    const uint64_t *n = t->st;
    uint64_t unroutable = n[WR_ST_RETURN_UNROUTABLE] + n[WR_ST_DROP_UNROUTABLE];
    static const struct {
        const char *name, *help;
        int k; /* a counter, or -1: routed; -2: every delivery */
        bool classic;
    } counters[] = {
        {"rabbitmq_global_messages_received_total", "Messages received from publishers",
         WR_ST_PUBLISH, false},
        {"rabbitmq_global_messages_received_confirm_total",
         "Messages received from publishers in confirm mode", WR_ST_PUBLISH_CONFIRM, false},
        {"rabbitmq_global_messages_routed_total", "Messages routed to at least one queue", -1,
         false},
        {"rabbitmq_global_messages_unroutable_dropped_total",
         "Messages published without mandatory that no queue took, dropped", WR_ST_DROP_UNROUTABLE,
         false},
        {"rabbitmq_global_messages_unroutable_returned_total",
         "Messages published with mandatory that no queue took, returned", WR_ST_RETURN_UNROUTABLE,
         false},
        {"rabbitmq_global_messages_confirmed_total", "Messages confirmed to publishers",
         WR_ST_CONFIRM, false},
        {"rabbitmq_global_messages_delivered_total",
         "Messages delivered to consumers or fetched with basic.get", -2, true},
        {"rabbitmq_global_messages_delivered_consume_manual_ack_total",
         "Messages delivered to consumers that acknowledge", WR_ST_DELIVER, true},
        {"rabbitmq_global_messages_delivered_consume_auto_ack_total",
         "Messages delivered to consumers without acknowledgement", WR_ST_DELIVER_NO_ACK, true},
        {"rabbitmq_global_messages_delivered_get_manual_ack_total",
         "Messages fetched with basic.get, to be acknowledged", WR_ST_GET, true},
        {"rabbitmq_global_messages_delivered_get_auto_ack_total",
         "Messages fetched with basic.get without acknowledgement", WR_ST_GET_NO_ACK, true},
        {"rabbitmq_global_messages_get_empty_total", "basic.get that found no message",
         WR_ST_GET_EMPTY, true},
        {"rabbitmq_global_messages_redelivered_total",
         "Messages delivered or fetched again (redelivered set)", WR_ST_REDELIVER, true},
        {"rabbitmq_global_messages_acknowledged_total", "Messages acknowledged by consumers",
         WR_ST_ACK, true},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        int k = counters[i].k;
        uint64_t v =
            k == -1
                ? n[WR_ST_PUBLISH] - (unroutable < n[WR_ST_PUBLISH] ? unroutable : n[WR_ST_PUBLISH])
            : k == -2
                ? n[WR_ST_DELIVER] + n[WR_ST_DELIVER_NO_ACK] + n[WR_ST_GET] + n[WR_ST_GET_NO_ACK]
                : n[k];
        family(o, counters[i].name, "counter", counters[i].help);
        sample_u(o, counters[i].name, counters[i].classic ? PROTO "," CLASSIC : PROTO, v);
    }

    static const struct {
        const char *name, *help;
    } dl[4] = {
        [WR_DL_REJECTED] = {"rabbitmq_global_messages_dead_lettered_rejected_total",
                            "Messages dead-lettered for basic.reject or basic.nack without "
                            "requeue (strategy disabled: no dead-letter exchange, dropped)"},
        [WR_DL_EXPIRED] = {"rabbitmq_global_messages_dead_lettered_expired_total",
                           "Messages dead-lettered for their TTL (strategy disabled: dropped)"},
        [WR_DL_MAXLEN] = {"rabbitmq_global_messages_dead_lettered_maxlen_total",
                          "Messages dead-lettered for x-max-length or x-max-length-bytes "
                          "(strategy disabled: dropped)"},
        [WR_DL_DELIVERY_LIMIT] = {"rabbitmq_global_messages_dead_lettered_delivery_limit_total",
                                  "Messages dead-lettered for x-delivery-limit (strategy "
                                  "disabled: dropped)"},
    };
    for (int r = 0; r < 4; r++) {
        family(o, dl[r].name, "counter", dl[r].help);
        sample_u(o, dl[r].name, CLASSIC ",dead_letter_strategy=\"at_most_once\"",
                 n[WR_ST_DL_REJECTED + r]);
        sample_u(o, dl[r].name, CLASSIC ",dead_letter_strategy=\"disabled\"", t->dl_dropped[r]);
    }

    family(o, "rabbitmq_global_consumers", "gauge", "Consumers");
    sample_u(o, "rabbitmq_global_consumers", PROTO, t->consumers);
    family(o, "rabbitmq_global_publishers", "gauge", "Channels that have published");
    sample_u(o, "rabbitmq_global_publishers", PROTO, t->publishers);
}

/* ---- queues and channels ---- */

enum qfig {
    QF_READY,
    QF_UNACKED,
    QF_MESSAGES,
    QF_CONSUMERS,
    QF_READY_BYTES,
    QF_UNACKED_BYTES,
    QF_BYTES,
    QF_PUBLISHED,
    QF_HEAD_AGE,
    QF_N
};

static const struct {
    const char *name, *type, *help;
} qfigs[QF_N] = {
    [QF_READY] = {"rabbitmq_queue_messages_ready", "gauge", "Messages ready for consumers"},
    [QF_UNACKED] = {"rabbitmq_queue_messages_unacked", "gauge",
                    "Messages delivered and not yet acknowledged"},
    [QF_MESSAGES] = {"rabbitmq_queue_messages", "gauge", "Messages ready and unacknowledged"},
    [QF_CONSUMERS] = {"rabbitmq_queue_consumers", "gauge", "Consumers of a queue"},
    [QF_READY_BYTES] = {"rabbitmq_queue_messages_ready_bytes", "gauge",
                        "Body bytes of the ready messages"},
    [QF_UNACKED_BYTES] = {"rabbitmq_queue_messages_unacked_bytes", "gauge",
                          "Body bytes of the unacknowledged messages"},
    [QF_BYTES] = {"rabbitmq_queue_messages_bytes", "gauge",
                  "Body bytes of the ready and unacknowledged messages"},
    [QF_PUBLISHED] = {"rabbitmq_queue_messages_published_total", "counter",
                      "Messages that entered a queue"},
    [QF_HEAD_AGE] = {"warren_queue_head_message_age_seconds", "gauge",
                     "Age of the oldest message at the head of a queue (0 when empty); "
                     "in /metrics the oldest over every queue"},
};

static void queue_figures_total(struct out *o, const struct totals *t)
{
    const uint64_t v[QF_N] = {
        [QF_READY] = t->ready,
        [QF_UNACKED] = t->unacked,
        [QF_MESSAGES] = t->ready + t->unacked,
        [QF_CONSUMERS] = t->consumers,
        [QF_READY_BYTES] = t->ready_bytes,
        [QF_UNACKED_BYTES] = t->unacked_bytes,
        [QF_BYTES] = t->ready_bytes + t->unacked_bytes,
        [QF_PUBLISHED] = t->published,
    };
    for (int f = 0; f < QF_N; f++) {
        family(o, qfigs[f].name, qfigs[f].type, qfigs[f].help);
        if (f == QF_HEAD_AGE)
            sample_d(o, qfigs[f].name, NULL, age_s(t->oldest_ms));
        else
            sample_u(o, qfigs[f].name, NULL, v[f]);
    }
}

static void queue_figures_each(struct wr_mgmt_req *rq, struct out *o)
{
    for (int f = 0; f < QF_N; f++) {
        struct wr_hnode *vn, *qn;
        size_t vit, qit;
        family(o, qfigs[f].name, qfigs[f].type, qfigs[f].help);
        for (vn = wr_hmap_first(&rq->b->vhosts, &vit); vn;
             vn = wr_hmap_next(&rq->b->vhosts, &vit, vn)) {
            struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
            for (qn = wr_hmap_first(&vh->queues, &qit); qn;
                 qn = wr_hmap_next(&vh->queues, &qit, qn)) {
                struct wr_queue *q = wr_container_of(qn, struct wr_queue, node);
                puts_(o, qfigs[f].name);
                puts_(o, "{vhost=\"");
                label_value(o, wr_str_c(vh->name));
                puts_(o, "\",queue=\"");
                label_value(o, wr_queue_name(q));
                puts_(o, "\"} ");
                switch (f) {
                case QF_READY:
                    putf(o, "%u\n", q->ready);
                    break;
                case QF_UNACKED:
                    putf(o, "%u\n", q->unacked);
                    break;
                case QF_MESSAGES:
                    putf(o, "%llu\n", (unsigned long long)q->ready + q->unacked);
                    break;
                case QF_CONSUMERS:
                    putf(o, "%u\n", q->nconsumers);
                    break;
                case QF_READY_BYTES:
                    putf(o, "%llu\n", (unsigned long long)q->ready_bytes);
                    break;
                case QF_UNACKED_BYTES:
                    putf(o, "%llu\n", (unsigned long long)q->unacked_bytes);
                    break;
                case QF_BYTES:
                    putf(o, "%llu\n", (unsigned long long)(q->ready_bytes + q->unacked_bytes));
                    break;
                case QF_PUBLISHED:
                    putf(o, "%llu\n", (unsigned long long)q->st.n[WR_ST_PUBLISH]);
                    break;
                default:
                    putf(o, "%.6f\n", age_s(wr_queue_head_published_ms(q)));
                    break;
                }
            }
        }
    }
}

enum cfig {
    CF_CONSUMERS,
    CF_UNACKED,
    CF_UNCONFIRMED,
    CF_UNCOMMITTED,
    CF_ACKS_UNCOMMITTED,
    CF_PREFETCH,
    CF_N
};

static const struct {
    const char *name, *help;
} cfigs[CF_N] = {
    [CF_CONSUMERS] = {"rabbitmq_channel_consumers", "Consumers on a channel"},
    [CF_UNACKED] = {"rabbitmq_channel_messages_unacked",
                    "Deliveries on a channel not yet acknowledged"},
    [CF_UNCONFIRMED] = {"rabbitmq_channel_messages_unconfirmed",
                        "Publishes on a channel not yet confirmed"},
    [CF_UNCOMMITTED] = {"rabbitmq_channel_messages_uncommitted",
                        "Messages published in a transaction not yet committed"},
    [CF_ACKS_UNCOMMITTED] = {"rabbitmq_channel_acks_uncommitted",
                             "Acknowledgements in a transaction not yet committed"},
    [CF_PREFETCH] = {"rabbitmq_channel_prefetch",
                     "Limit of unacknowledged deliveries for all the consumers of a channel "
                     "(basic.qos global)"},
};

static void channel_figures_total(struct out *o, const struct totals *t)
{
    const uint64_t v[CF_N] = {t->ch_consumers,   t->ch_unacked,          t->ch_unconfirmed,
                              t->ch_uncommitted, t->ch_acks_uncommitted, t->ch_prefetch};
    for (int f = 0; f < CF_N; f++)
        one_u(o, cfigs[f].name, "gauge", cfigs[f].help, v[f]);
    one_u(o, "rabbitmq_connection_channels", "gauge", "Channels on a connection", t->chans);
}

static void channel_figures_each(struct wr_mgmt_req *rq, struct out *o)
{
    struct wr_list *it;
    for (int f = 0; f < CF_N; f++) {
        family(o, cfigs[f].name, "gauge", cfigs[f].help);
        wr_list_each(it, &rq->srv->conns)
        {
            struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
            for (uint32_t i = 0; i < c->nchans_cap; i++) {
                struct wr_chan_info ci;
                uint64_t v;
                if (!c->chans[i])
                    continue;
                wr_chan_info(c->chans[i], &ci);
                switch (f) {
                case CF_CONSUMERS:
                    v = ci.consumers;
                    break;
                case CF_UNACKED:
                    v = ci.unacked;
                    break;
                case CF_UNCONFIRMED:
                    v = ci.unconfirmed;
                    break;
                case CF_UNCOMMITTED:
                    v = ci.uncommitted_messages;
                    break;
                case CF_ACKS_UNCOMMITTED:
                    v = ci.uncommitted_acks;
                    break;
                default:
                    v = ci.global_prefetch_count;
                    break;
                }
                /* The management API's channel name. */
                puts_(o, cfigs[f].name);
                puts_(o, "{channel=\"");
                label_value(o, wr_str_c(c->name));
                putf(o, " (%u)\"} %llu\n", i, (unsigned long long)v);
            }
        }
    }
    /* RabbitMQ labels its connection figures "channel" too. */
    family(o, "rabbitmq_connection_channels", "gauge", "Channels on a connection");
    wr_list_each(it, &rq->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        puts_(o, "rabbitmq_connection_channels{channel=\"");
        label_value(o, wr_str_c(c->name));
        putf(o, "\"} %u\n", c->nchans_open);
    }
}

/* ---- Warren's own ---- */

static void warren_metrics(struct wr_mgmt_req *rq, struct out *o)
{
    const struct wr_persist *p = rq->b->persist;

    one_d(o, "warren_recovery_seconds", "gauge",
          "How long opening the data directory (recovering definitions and messages) took at "
          "the last start",
          rq->b->recovery_s);
    one_u(o, "warren_mgmt_requests_total", "counter",
          "HTTP requests to the management and Prometheus listeners", rq->m->requests);
    if (!p || !p->stats)
        return;
    struct wr_persist_stats ps;
    memset(&ps, 0, sizeof(ps));
    p->stats(p->ctx, &ps);
    one_u(o, "warren_journal_bytes", "gauge", "Size of the message journal's segment files",
          ps.journal_bytes);
    family(o, "warren_journal_fsync_seconds", "histogram",
           "How long an fdatasync of the message journal took");
    uint64_t cum = 0;
    for (int i = 0; i < WR_HISTO_N; i++) {
        char le[64];
        cum += ps.fsync.bucket[i];
        snprintf(le, sizeof(le), "le=\"%g\"", (double)wr_histo_le_us[i] / 1e6);
        sample_u(o, "warren_journal_fsync_seconds_bucket", le, cum);
    }
    cum += ps.fsync.bucket[WR_HISTO_N];
    sample_u(o, "warren_journal_fsync_seconds_bucket", "le=\"+Inf\"", cum);
    sample_d(o, "warren_journal_fsync_seconds_sum", NULL, (double)ps.fsync.sum_us / 1e6);
    sample_u(o, "warren_journal_fsync_seconds_count", NULL, ps.fsync.count);
}

/* Deduplication (dedup.h): one sample per queue or exchange that
 * deduplicates (few), and what their caches hold. */
static void dedup_sample(struct out *o, const char *name, const char *kind,
                         const struct wr_vhost *vh, struct wr_str obj, uint64_t v)
{
    puts_(o, name);
    puts_(o, "{vhost=\"");
    label_value(o, wr_str_c(vh->name));
    putf(o, "\",%s=\"", kind);
    label_value(o, obj);
    putf(o, "\"} %llu\n", (unsigned long long)v);
}

static void dedup_metrics(struct wr_mgmt_req *rq, struct out *o)
{
    static const char *const qn = "warren_queue_messages_deduplicated_total",
                             *const xn = "warren_exchange_messages_deduplicated_total";
    uint64_t keys = 0, bytes = 0;
    struct wr_hnode *vn, *n;
    size_t vit, it;

    family(o, qn, "counter", "Duplicates a queue with x-message-deduplication dropped");
    for (vn = wr_hmap_first(&rq->b->vhosts, &vit); vn;
         vn = wr_hmap_next(&rq->b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n)) {
            struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
            const struct wr_dedup *d = q->s.dedup_cache;
            if (!q->s.dedup)
                continue;
            dedup_sample(o, qn, "queue", vh, wr_queue_name(q), d ? d->deduplicated : 0);
            keys += d ? d->n : 0;
            bytes += d ? wr_dedup_bytes(d) : 0;
        }
    }
    family(o, xn, "counter", "Duplicates an exchange with x-message-deduplication dropped");
    for (vn = wr_hmap_first(&rq->b->vhosts, &vit); vn;
         vn = wr_hmap_next(&rq->b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        for (n = wr_hmap_first(&vh->exchanges, &it); n; n = wr_hmap_next(&vh->exchanges, &it, n)) {
            struct wr_exchange *x = wr_container_of(n, struct wr_exchange, node);
            if (!x->dedup_on)
                continue;
            dedup_sample(o, xn, "exchange", vh, wr_exchange_name(x),
                         x->dedup ? x->dedup->deduplicated : 0);
            keys += x->dedup ? x->dedup->n : 0;
            bytes += x->dedup ? wr_dedup_bytes(x->dedup) : 0;
        }
    }
    one_u(o, "warren_dedup_cache_keys", "gauge", "Keys remembered by every deduplication cache",
          keys);
    one_u(o, "warren_dedup_cache_bytes", "gauge",
          "Memory of every deduplication cache (entries and tables)", bytes);
}

/* Streams (stream.h): per stream its log, per named consumer its position
 * and lag. One pass per family (a family's samples stay together). */
enum { SF_FIRST, SF_NEXT, SF_MESSAGES, SF_BYTES, SF_C_OFFSET, SF_C_LAG, SF_C_LAG_BYTES, SF_N };

static const struct {
    const char *name, *help;
} stream_families[SF_N] = {
    [SF_FIRST] = {"warren_stream_first_offset", "Offset of the oldest message a stream holds"},
    [SF_NEXT] = {"warren_stream_next_offset", "Offset the next message appended to a stream gets"},
    [SF_MESSAGES] = {"warren_stream_messages", "Messages a stream holds"},
    [SF_BYTES] = {"warren_stream_bytes", "Bytes (properties and bodies) a stream holds"},
    [SF_C_OFFSET] = {"warren_stream_consumer_offset",
                     "Offset after the last one a named consumer acknowledged"},
    [SF_C_LAG] = {"warren_stream_consumer_lag_messages",
                  "Messages between a named consumer's position and the stream's tail"},
    [SF_C_LAG_BYTES] = {"warren_stream_consumer_lag_bytes",
                        "Bytes between a named consumer's position and the stream's tail"},
};

static void stream_sample(struct out *o, int f, const struct wr_vhost *vh, const struct wr_queue *q,
                          const struct wr_stream_name *n, uint64_t v)
{
    puts_(o, stream_families[f].name);
    puts_(o, "{vhost=\"");
    label_value(o, wr_str_c(vh->name));
    puts_(o, "\",queue=\"");
    label_value(o, wr_queue_name(q));
    if (n) {
        puts_(o, "\",consumer=\"");
        label_value(o, (struct wr_str){n->name, n->len});
    }
    putf(o, "\"} %llu\n", (unsigned long long)v);
}

static void stream_metrics(struct wr_mgmt_req *rq, struct out *o)
{
    for (int f = 0; f < SF_N; f++) {
        struct wr_hnode *vn, *n;
        size_t vit, it;
        family(o, stream_families[f].name, "gauge", stream_families[f].help);
        for (vn = wr_hmap_first(&rq->b->vhosts, &vit); vn;
             vn = wr_hmap_next(&rq->b->vhosts, &vit, vn)) {
            struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
            for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n)) {
                const struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
                const struct wr_stream *st = q->stream;
                if (!st)
                    continue;
                if (f == SF_FIRST)
                    stream_sample(o, f, vh, q, NULL, st->first);
                else if (f == SF_NEXT)
                    stream_sample(o, f, vh, q, NULL, st->next);
                else if (f == SF_MESSAGES)
                    stream_sample(o, f, vh, q, NULL, wr_stream_count(st));
                else if (f == SF_BYTES)
                    stream_sample(o, f, vh, q, NULL, st->bytes);
                for (uint32_t i = 0; f >= SF_C_OFFSET && i < st->nnames; i++) {
                    const struct wr_stream_name *nm = st->names[i];
                    uint64_t pos = nm->next == UINT64_MAX ? st->next : nm->next;
                    if (pos < st->first)
                        pos = st->first;
                    if (f == SF_C_OFFSET)
                        stream_sample(o, f, vh, q, nm, pos);
                    else if (f == SF_C_LAG)
                        stream_sample(o, f, vh, q, nm, st->next > pos ? st->next - pos : 0);
                    else
                        stream_sample(o, f, vh, q, nm, wr_stream_bytes_after(st, pos));
                }
            }
        }
    }
}

/* ---- the endpoints ---- */

static void serve(struct wr_mgmt_req *rq, bool per_object)
{
    struct out o = {NULL, 0, 0, false};
    struct totals t;

    wr_clock_update();
    gather(rq, &t);
    node_metrics(rq, &o);
    churn_metrics(&o, &t, &rq->b->churn);
    global_metrics(&o, &t);
    if (per_object) {
        queue_figures_each(rq, &o);
        channel_figures_each(rq, &o);
    } else {
        queue_figures_total(&o, &t);
        channel_figures_total(&o, &t);
    }
    warren_metrics(rq, &o);
    dedup_metrics(rq, &o);
    stream_metrics(rq, &o);
    if (o.oom) {
        free(o.p);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_mgmt_reply_text(rq, CONTENT_TYPE, o.p ? o.p : "", o.len);
    free(o.p);
}

static void get_metrics(struct wr_mgmt_req *rq)
{
    serve(rq, false);
}

static void get_metrics_per_object(struct wr_mgmt_req *rq)
{
    serve(rq, true);
}

const struct wr_mgmt_route wr_mgmt_routes_metrics[] = {
    {"/metrics", WR_M_GET, WR_LV_PUBLIC, get_metrics},
    {"/metrics/per-object", WR_M_GET, WR_LV_PUBLIC, get_metrics_per_object},
    {NULL, 0, 0, NULL},
};
