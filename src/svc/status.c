/*
 * status.c - the SIGUSR1 status dump (see status.h).
 *
 * About ten lines: the process, the connections (by state), the objects
 * and messages, memory against the alarm's limit, the disk and the
 * journal, the totals since start, and the five longest queues. Client
 * chosen names (queues, vhosts) go through wr_log_esc.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/persist.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/version.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/server.h"
#include "svc/status.h"

#define TOP_QUEUES 5

const char *wr_svc_group(char *buf, size_t cap, uint64_t n)
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    size_t o = 0;

    for (int i = 0; i < len && o + 1 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0) {
            buf[o++] = ',';
            if (o + 1 >= cap)
                break;
        }
        buf[o++] = digits[i];
    }
    if (cap)
        buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

const char *wr_svc_bytes(char *buf, size_t cap, uint64_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

static uint64_t rss_bytes(void)
{
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "re");
    int got = f ? fscanf(f, "%llu %llu", &size, &resident) : 0;
    if (f)
        fclose(f);
    return got == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

struct top {
    const struct wr_queue *q;
    const struct wr_vhost *vh;
    uint64_t n;
};

/* Keep the TOP_QUEUES queues holding most messages, longest first. */
static void top_add(struct top *t, const struct wr_vhost *vh, const struct wr_queue *q)
{
    uint64_t n = (uint64_t)q->ready + q->unacked;
    size_t i = TOP_QUEUES;
    if (n == 0 || (t[TOP_QUEUES - 1].q && t[TOP_QUEUES - 1].n >= n))
        return;
    while (i > 0 && (!t[i - 1].q || t[i - 1].n < n)) {
        if (i < TOP_QUEUES)
            t[i] = t[i - 1];
        i--;
    }
    t[i] = (struct top){q, vh, n};
}

static void log_connections(struct wr_server *s)
{
    uint64_t open = 0, handshake = 0, closing = 0, blocked = 0, chans = 0;
    uint64_t unsent = 0;
    struct wr_list *it;
    char a[32], b[32], u[32];

    wr_list_each(it, &s->conns)
    {
        const struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        if (c->state < WR_CS_RUNNING)
            handshake++;
        else if (c->state == WR_CS_RUNNING)
            open++;
        else
            closing++;
        blocked += c->blocked_sent || c->read_paused;
        chans += c->nchans_open;
        unsent += c->out_counted;
    }
    wr_log(WR_LOG_INFO,
           "status: connections: %s open, %llu in the handshake, %llu closing, %llu blocked; "
           "channels: %s; unsent output %s%s",
           wr_svc_group(a, sizeof a, open), (unsigned long long)handshake,
           (unsigned long long)closing, (unsigned long long)blocked,
           wr_svc_group(b, sizeof b, chans), wr_svc_bytes(u, sizeof u, unsent),
           wr_listeners_fd_paused(s) ? "; accepting paused (out of descriptors)" : "");
}

static void log_queues(struct wr_server *s)
{
    struct wr_broker *b = s->broker;
    struct top top[TOP_QUEUES];
    uint64_t vhosts = 0, exchanges = 0, queues = 0, durable = 0, ready = 0, unacked = 0;
    uint64_t consumers = 0, st[WR_ST_N];
    struct wr_hnode *vn, *qn;
    size_t vit, qit;
    char n1[32], n2[32], n3[32], n4[32];

    memset(top, 0, sizeof top);
    memcpy(st, b->gone_st, sizeof st);
    for (vn = wr_hmap_first(&b->vhosts, &vit); vn; vn = wr_hmap_next(&b->vhosts, &vit, vn)) {
        const struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        vhosts++;
        exchanges += vh->exchanges.n;
        for (int k = 0; k < WR_ST_N; k++)
            st[k] += vh->st.n[k];
        for (qn = wr_hmap_first(&vh->queues, &qit); qn; qn = wr_hmap_next(&vh->queues, &qit, qn)) {
            const struct wr_queue *q = wr_container_of(qn, struct wr_queue, node);
            queues++;
            durable += q->durable;
            ready += q->ready;
            unacked += q->unacked;
            consumers += q->nconsumers;
            top_add(top, vh, q);
        }
    }
    wr_log(WR_LOG_INFO,
           "status: vhosts: %llu, exchanges: %s, queues: %s (%s durable), consumers: %s",
           (unsigned long long)vhosts, wr_svc_group(n1, sizeof n1, exchanges),
           wr_svc_group(n2, sizeof n2, queues), wr_svc_group(n3, sizeof n3, durable),
           wr_svc_group(n4, sizeof n4, consumers));
    wr_log(WR_LOG_INFO, "status: messages: %s ready, %s unacknowledged, %s of bodies held",
           wr_svc_group(n1, sizeof n1, ready), wr_svc_group(n2, sizeof n2, unacked),
           wr_svc_bytes(n3, sizeof n3, b->msgs.bytes));
    wr_log(WR_LOG_INFO,
           "status: since start: %s published, %s delivered, %s acknowledged, %s dead-lettered",
           wr_svc_group(n1, sizeof n1, st[WR_ST_PUBLISH]),
           wr_svc_group(n2, sizeof n2,
                        st[WR_ST_DELIVER] + st[WR_ST_DELIVER_NO_ACK] + st[WR_ST_GET] +
                            st[WR_ST_GET_NO_ACK]),
           wr_svc_group(n3, sizeof n3, st[WR_ST_ACK]),
           wr_svc_group(n4, sizeof n4,
                        st[WR_ST_DL_REJECTED] + st[WR_ST_DL_EXPIRED] + st[WR_ST_DL_MAXLEN] +
                            st[WR_ST_DL_DELIVERY_LIMIT]));
    for (size_t i = 0; i < TOP_QUEUES && top[i].q; i++) {
        char qn_[WR_LOG_ESC_MAX], vn_[WR_LOG_ESC_MAX];
        wr_log(WR_LOG_INFO,
               "status: queue '%s' in vhost '%s': %s ready, %s unacknowledged, %u "
               "consumers",
               wr_log_esc(qn_, sizeof qn_, top[i].q->name, strlen(top[i].q->name)),
               wr_log_esc(vn_, sizeof vn_, top[i].vh->name, strlen(top[i].vh->name)),
               wr_svc_group(n1, sizeof n1, top[i].q->ready),
               wr_svc_group(n2, sizeof n2, top[i].q->unacked), top[i].q->nconsumers);
    }
}

void wr_svc_status_log(struct wr_server *s, uint64_t started_ms)
{
    struct wr_broker *b = s->broker;
    struct wr_persist_stats ps;
    uint64_t up;
    char m1[32], m2[32], m3[32];

    wr_clock_update();
    up = (wr_now_ms() - started_ms) / 1000;
    wr_log(WR_LOG_INFO, "status: warrend %s, pid %ld, up %llud %02llu:%02llu:%02llu", WR_VERSION,
           (long)getpid(), (unsigned long long)(up / 86400), (unsigned long long)(up / 3600 % 24),
           (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60));
    log_connections(s);
    log_queues(s);
    wr_log(WR_LOG_INFO, "status: memory: %s counted of a %s limit (alarm %s), resident %s",
           wr_svc_bytes(m1, sizeof m1, wr_broker_mem_used(b)),
           wr_svc_bytes(m2, sizeof m2, b->mem_limit), b->mem_alarm ? "ON" : "off",
           wr_svc_bytes(m3, sizeof m3, rss_bytes()));
    memset(&ps, 0, sizeof ps);
    if (b->persist && b->persist->stats)
        b->persist->stats(b->persist->ctx, &ps);
    wr_log(WR_LOG_INFO, "status: journal: %s on disk, %llu fsyncs; disk alarm %s",
           wr_svc_bytes(m1, sizeof m1, ps.journal_bytes), (unsigned long long)ps.fsync.count,
           b->disk_alarm ? "ON" : "off");
}
