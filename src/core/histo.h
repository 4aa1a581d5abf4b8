/*
 * histo.h - a fixed-bucket latency histogram, Prometheus's shape: counts
 * per upper bound, a count and a sum. Adding a sample costs a scan of a
 * few constant bounds and three increments; nothing allocates. The owner
 * does any locking (the journal's writer thread fills one under its
 * mutex, the loop copies it under the same mutex).
 *
 * Bounds are in microseconds, from 100 us to 10 s (disk syncs: a fast SSD
 * takes well under a millisecond, a loaded disk tens of milliseconds,
 * anything near a second is trouble). bucket[i] counts samples at most
 * wr_histo_le_us[i] and above the bound before it; bucket[WR_HISTO_N]
 * counts the rest (+Inf). A reader makes them cumulative.
 */
#ifndef WR_CORE_HISTO_H
#define WR_CORE_HISTO_H

#include <stdint.h>

#define WR_HISTO_N 16

static const uint32_t wr_histo_le_us[WR_HISTO_N] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

struct wr_histo {
    uint64_t bucket[WR_HISTO_N + 1];
    uint64_t count;
    uint64_t sum_us;
};

static inline void wr_histo_add(struct wr_histo *h, uint64_t us)
{
    unsigned i = 0;
    while (i < WR_HISTO_N && us > wr_histo_le_us[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_us += us;
}

#endif
