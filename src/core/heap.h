/*
 * heap.h - a binary min-heap of (key, value) pairs.
 *
 * Used for deadlines: the key is a time in milliseconds, the value says
 * what expires (a queue entry's sequence number, say). Push and pop are
 * O(log n) with no allocation except when the array doubles.
 */
#ifndef WR_CORE_HEAP_H
#define WR_CORE_HEAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"

struct wr_heap_item {
    uint64_t key;
    uint64_t val;
};

struct wr_heap {
    struct wr_heap_item *a;
    uint32_t n, cap;
};

static inline void wr_heap_init(struct wr_heap *h)
{
    h->a = NULL;
    h->n = h->cap = 0;
}

static inline void wr_heap_free(struct wr_heap *h)
{
    free(h->a);
    wr_heap_init(h);
}

static inline const struct wr_heap_item *wr_heap_top(const struct wr_heap *h)
{
    return h->n ? &h->a[0] : NULL;
}

int wr_heap_push(struct wr_heap *h, uint64_t key, uint64_t val);
void wr_heap_pop(struct wr_heap *h);

#endif
