/*
 * hist.h - a log-linear latency histogram for warren-perf (in the spirit of
 * HdrHistogram, our own small implementation).
 *
 * Values are unsigned 64-bit (nanoseconds here). Values below 2^HIST_SUB_BITS
 * are counted exactly; above that each power of two is split into
 * 2^(HIST_SUB_BITS-1) equal buckets, so any reported value is within
 * 1/2^(HIST_SUB_BITS-1) (0.8%) of a value that was recorded. Recording is a
 * count-leading-zeros, a shift and an increment: cheap enough for every
 * message of a million-per-second run. The table is a fixed ~60 KiB array,
 * allocated once.
 */
#ifndef WR_BENCH_HIST_H
#define WR_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 8
#define HIST_HALF (1u << (HIST_SUB_BITS - 1))
/* Exact part, then one half-range of buckets per remaining power of two. */
#define HIST_BUCKETS ((1u << HIST_SUB_BITS) + (64 - HIST_SUB_BITS) * HIST_HALF)

struct hist {
    uint64_t count;
    uint64_t min, max;
    double sum;
    uint64_t *b; /* HIST_BUCKETS counters */
};

/* Returns 0 or -1 when out of memory. */
int hist_init(struct hist *h);
void hist_free(struct hist *h);
void hist_reset(struct hist *h);

static inline unsigned hist_index(uint64_t v)
{
    unsigned msb, shift;
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - (HIST_SUB_BITS - 1);
    /* v >> shift is in [HIST_HALF, 2 * HIST_HALF): its top SUB_BITS bits. */
    return shift * HIST_HALF + (unsigned)(v >> shift);
}

static inline void hist_record(struct hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
    if (v < h->min)
        h->min = v;
}

/* Add every count of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at quantile q (0..1): the highest value equivalent to the bucket
 * holding the q-th recorded value (as HdrHistogram reports), capped at the
 * recorded maximum. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
