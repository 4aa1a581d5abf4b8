/*
 * bench_topic.c - a micro-benchmark of the topic exchange (x_topic.c):
 * bind N random patterns, route M random keys, unbind everything, and
 * print the time each phase took. Not a test: it checks nothing but its
 * own bookkeeping, and is not part of `make check`.
 *
 * Patterns and keys are 1 to 5 words drawn from a vocabulary of V words
 * (default 1000); a pattern word is "*" with probability P_STAR percent
 * (default 5) and "#" with P_HASH percent (default 2). Keys come from a
 * pool of 4096 so the run measures routing, not key generation. The cost
 * of a route grows with the number of bindings it matches (each is a
 * separate allocation to visit), so that number is printed too: with many
 * wildcards (V=64, 10% '*', 5% '#') one route in three matches a pattern
 * like "#" or "*.#" and the average match count runs into the thousands.
 * Build and run:
 *
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -I<dir with config.h> -Isrc tests/bench/bench_topic.c \
 *       src/broker/x_topic.c src/core/hmap.c -o /tmp/bench_topic
 *   /tmp/bench_topic [N [M [V [P_STAR [P_HASH [SEED]]]]]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/exchange.h"

static uint64_t rnd_state;

static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes 1..5 words of the vocabulary (or wildcards) into out. */
static size_t make_key(char *out, uint32_t vocab, uint32_t p_star, uint32_t p_hash)
{
    uint32_t nw = 1 + rnd(5);
    size_t n = 0;
    for (uint32_t i = 0; i < nw; i++) {
        uint32_t r = rnd(100);
        if (i)
            out[n++] = '.';
        if (r < p_star)
            out[n++] = '*';
        else if (r < p_star + p_hash)
            out[n++] = '#';
        else
            n += (size_t)sprintf(out + n, "w%u", rnd(vocab));
    }
    out[n] = '\0';
    return n;
}

static uint64_t emitted;

static void count_emit(struct wr_binding *b, void *ctx)
{
    (void)b;
    (void)ctx;
    emitted++;
}

int main(int argc, char **argv)
{
    uint32_t nb = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 100000;
    uint32_t nr = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1000000;
    uint32_t vocab = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 1000;
    uint32_t p_star = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 5;
    uint32_t p_hash = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 2;
    rnd_state = argc > 6 ? strtoull(argv[6], NULL, 10) : 0x2545f4914f6cdd1dull;
    struct wr_exchange x;
    struct wr_binding **bs = calloc(nb, sizeof(*bs));
    enum { NKEYS = 4096 };
    static char keys[NKEYS][64];
    static uint32_t klen[NKEYS];
    double t0, t1, t2, t3;
    char buf[64];

    if (!bs || vocab == 0 || p_star + p_hash > 100)
        return 2;
    memset(&x, 0, sizeof(x));
    wr_list_init(&x.bindings);
    wr_list_init(&x.bound_to_me);
    x.type = &wr_xtype_topic;
    if (x.type->init(&x) < 0)
        return 1;
    for (uint32_t i = 0; i < NKEYS; i++)
        klen[i] = (uint32_t)make_key(keys[i], vocab, 0, 0);

    t0 = now();
    for (uint32_t i = 0; i < nb; i++) {
        size_t n = make_key(buf, vocab, p_star, p_hash);
        struct wr_binding *b = calloc(1, sizeof(*b) + n);
        if (!b)
            return 1;
        memcpy(b + 1, buf, n);
        b->src = &x;
        b->dest = (void *)(uintptr_t)(i + 1);
        b->key = (struct wr_str){(const char *)(b + 1), (uint32_t)n};
        wr_list_init(&b->type_node);
        wr_list_add_tail(&x.bindings, &b->src_node);
        if (x.type->add(&x, b) < 0)
            return 1;
        bs[i] = b;
    }
    t1 = now();
    for (uint32_t i = 0; i < nr; i++) {
        struct wr_route_msg m = {.routing_key = {keys[i % NKEYS], klen[i % NKEYS]}};
        x.type->route(&x, &m, count_emit, NULL);
    }
    t2 = now();
    for (uint32_t i = 0; i < nb; i++) {
        x.type->remove(&x, bs[i]);
        wr_list_del(&bs[i]->src_node);
        free(bs[i]);
    }
    t3 = now();
    x.type->destroy(&x);
    free(bs);

    printf("topic: %u bindings (vocabulary %u, %u%% '*', %u%% '#'), %u routes over %d keys\n", nb,
           vocab, p_star, p_hash, nr, NKEYS);
    printf("  bind   %8.3f s  %8.0f ns/binding\n", t1 - t0, (t1 - t0) * 1e9 / nb);
    printf("  route  %8.3f s  %8.0f ns/route  %.1f bindings matched/route\n", t2 - t1,
           (t2 - t1) * 1e9 / nr, (double)emitted / nr);
    printf("  unbind %8.3f s  %8.0f ns/binding\n", t3 - t2, (t3 - t2) * 1e9 / nb);
    return 0;
}
