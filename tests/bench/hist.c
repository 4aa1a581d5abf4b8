/*
 * hist.c - the log-linear histogram; see hist.h for the bucket layout.
 */
#include <stdlib.h>
#include <string.h>

#include "hist.h"

int hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->b = calloc(HIST_BUCKETS, sizeof(*h->b));
    if (!h->b)
        return -1;
    h->min = UINT64_MAX;
    return 0;
}

void hist_free(struct hist *h)
{
    free(h->b);
    h->b = NULL;
}

void hist_reset(struct hist *h)
{
    memset(h->b, 0, HIST_BUCKETS * sizeof(*h->b));
    h->count = 0;
    h->sum = 0;
    h->max = 0;
    h->min = UINT64_MAX;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
    if (src->min < dst->min)
        dst->min = src->min;
}

/* Highest value that lands in bucket i. */
static uint64_t bucket_top(unsigned i)
{
    unsigned shift;
    uint64_t top;
    if (i < (1u << HIST_SUB_BITS))
        return i;
    shift = i / HIST_HALF - 1;
    top = i % HIST_HALF + HIST_HALF;
    return ((top + 1) << shift) - 1;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    if (q <= 0)
        return h->min;
    if (q >= 1)
        return h->max;
    /* The smallest bucket whose cumulative count reaches ceil(q * count). */
    rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count)
        rank++;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = bucket_top(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
