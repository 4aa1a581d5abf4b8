/*
 * perf.h - what the parts of warren-perf share: the options, the state of
 * a run (its phases, roles and counters), and the functions of options.c
 * (command line) and report.c (broker sampling, the text and JSON result).
 * warren-perf.c drives the run; client.c speaks AMQP; hist.c keeps the
 * latency histograms.
 */
#ifndef WR_BENCH_PERF_H
#define WR_BENCH_PERF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

#include "client.h"
#include "hist.h"

struct event;

struct opts {
    const char *uri;
    char host[256];
    char port[16];
    char user[128], pass[128], vhost[256];
    int producers, consumers;
    long size;
    int prefetch;
    bool autoack;
    int multi_ack;
    long confirm;
    bool persistent;
    const char *queue;
    const char *exchange;
    const char *type;
    const char *rkey;
    double rate;
    double seconds;
    uint64_t count;
    const char *queue_args;
    const char *consumer_args;
    uint64_t cmessages; /* --cmessages */
    bool no_settle, leave;
    bool durable;
    int fanout_queues;
    int queues;
    long bindings;
    long idle;
    long broker_pid;
    bool keep;
    bool tls;
    bool json;
    bool quiet;
    uint32_t frame_max;
};

struct broker_sample {
    bool ok;
    long rss_kib;
    double cpu_s;
    double core_cpu_s; /* the main thread's (warrend's core: the loop) */
};

enum phase {
    P_SETUP,   /* admin declares */
    P_CONNECT, /* producers and consumers open and set up */
    P_RUN,
    P_SETTLE,   /* no consumers: wait until the queues hold what was sent */
    P_STOP,     /* clients closing */
    P_TEARDOWN, /* admin deletes */
    P_DONE,
};

enum role_kind { R_ADMIN, R_PRODUCER, R_CONSUMER, R_IDLE };

struct perf;

struct role {
    struct perf *perf;
    struct pc_conn *c;
    enum role_kind kind;
    unsigned index;
    bool ready, closed;

    /* pipelined synchronous steps (declares, binds, consumes, ...) */
    unsigned (*nsteps)(struct role *r);
    void (*step)(struct role *r, unsigned i, struct wr_method *m, char *buf, size_t cap);
    void (*steps_done)(struct role *r);
    unsigned step_sent, step_done, step_total;

    /* producer */
    uint64_t sent;
    bool blocked, done;
    struct event *timer;
    uint8_t *content; /* header + body frames of one message */
    size_t content_len, ts_off;
    uint8_t *mtpl;    /* publish method frames, one per target */
    size_t *mtpl_off; /* ntargets + 1 offsets into mtpl */
    unsigned ntargets, next_target;
    uint64_t pub_seq, low_seq; /* confirms: last published, lowest unconfirmed */
    uint64_t *ring;            /* send time per outstanding sequence number */
    uint64_t ring_mask;

    /* consumer */
    uint64_t received, unacked, last_tag;
};

struct perf {
    struct opts o;
    struct event_base *base;
    struct pc_params params;
    enum phase phase;
    int exit_code;
    char error[512];

    /* topology */
    char **queues;
    unsigned nq;
    bool declare_exchange;
    uint64_t queued; /* settle: sum of message counts seen */

    struct role admin;
    struct role *prods, *cons, *idle;
    unsigned nprod, ncons, nidle;
    unsigned ready, open_roles, idle_started;

    /* timing */
    uint64_t t0, t_setup_done, t_start, t_pub_end, t_end;
    struct rusage ru_start, ru_end;
    struct broker_sample b_start, b_end;
    struct event *stop_timer, *tick_timer, *settle_timer, *sig_ev;
    uint64_t last_tick_ns, last_tick_sent, last_tick_recv;

    /* results */
    uint64_t sent, confirmed, nacked, returned, received, recv_bytes, cancelled;
    uint64_t snap_sent, snap_confirmed, snap_received, snap_bytes;
    struct hist lat, clat;
};

/* options.c: fill *o from the command line; exits with 2 on bad usage. */
void perf_parse_args(struct opts *o, int argc, char **argv);

/* report.c */
void perf_sample_broker(long pid, struct broker_sample *s);
void perf_report(const struct perf *p);

static inline double perf_secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

#endif
