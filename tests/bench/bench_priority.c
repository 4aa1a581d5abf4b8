/*
 * bench_priority.c - cost per publish and per delivery of a priority queue
 * (x-max-priority 10) holding 1,000 and 1,000,000 messages, and of a plain
 * queue for comparison. Not a test; built by `make` (noinst), run by hand:
 *
 *   tests/bench/bench_priority [OPS]
 *
 * For each depth D the queue is first filled with D messages of random
 * priority 0..10; then OPS times a message of random priority is pushed and
 * the head popped (the queue stays at depth D). The per-operation time is
 * flat in D because each priority level is a FIFO ring and the highest
 * non-empty level comes from a bitmap: O(1), not O(log n).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/queue.h"
#include "broker/vhost.h"
#include "wire/field.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rs = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (unsigned)(rs % n);
}

static double run(struct wr_vhost *vh, const char *qname, struct wr_str args, long depth, long ops,
                  struct wr_msg **pool)
{
    struct wr_queue_decl d;
    struct wr_errbuf err;
    struct wr_queue *q;
    struct wr_qent e;
    bool created;
    double t0, t1;

    memset(&d, 0, sizeof(d));
    d.name = wr_str_c(qname);
    d.args = args;
    if (wr_vhost_queue_declare(vh, &d, &q, &created, &err) < 0) {
        fprintf(stderr, "%s\n", err.text);
        exit(1);
    }
    for (long i = 0; i < depth; i++)
        wr_queue_push(q, pool[rnd(64)]);
    t0 = now();
    for (long i = 0; i < ops; i++) {
        wr_queue_push(q, pool[rnd(64)]);
        if (!wr_queue_get(q, &e))
            abort();
        wr_msg_unref(e.m);
    }
    t1 = now();
    if (wr_queue_ready(q) != (uint32_t)depth)
        abort();
    wr_vhost_queue_delete(vh, q);
    return (t1 - t0) / (double)ops * 1e9;
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 2000000;
    long depths[] = {1000, 1000000};
    static const uint8_t prio_args[] = {14,  'x', '-', 'm', 'a', 'x', '-', 'p', 'r',
                                        'i', 'o', 'r', 'i', 't', 'y', 'b', 10};
    struct wr_vhost *vh = wr_vhost_new("/", NULL);
    struct wr_msg *pool[64];
    struct wr_msgs msgs;

    wr_msgs_init(&msgs);
    for (int i = 0; i < 64; i++) {
        pool[i] = wr_msg_new(&msgs, WR_STR(""), WR_STR("q"), NULL, 0, 16, 0);
        pool[i]->priority = (uint8_t)rnd(11);
    }
    printf("%-28s %12s %18s\n", "queue", "depth", "ns per push+pop");
    for (int k = 0; k < 2; k++) {
        printf("%-28s %12ld %18.1f\n", "x-max-priority 10", depths[k],
               run(vh, "p", (struct wr_str){(const char *)prio_args, sizeof(prio_args)}, depths[k],
                   ops, pool));
        printf("%-28s %12ld %18.1f\n", "plain", depths[k],
               run(vh, "f", WR_STR_NULL, depths[k], ops, pool));
    }
    for (int i = 0; i < 64; i++)
        wr_msg_unref(pool[i]);
    wr_vhost_free(vh);
    wr_msgs_fini(&msgs);
    return 0;
}
