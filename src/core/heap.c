/*
 * heap.c - binary min-heap; see heap.h.
 */
#include "config.h"

#include "core/heap.h"

int wr_heap_push(struct wr_heap *h, uint64_t key, uint64_t val)
{
    uint32_t i;
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct wr_heap_item *a = realloc(h->a, (size_t)cap * sizeof(*a));
        if (!a)
            return WR_ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    i = h->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->a[p].key <= key)
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = (struct wr_heap_item){key, val};
    return 0;
}

void wr_heap_pop(struct wr_heap *h)
{
    struct wr_heap_item last;
    uint32_t i = 0;
    if (!h->n)
        return;
    last = h->a[--h->n];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1].key < h->a[c].key)
            c++;
        if (h->a[c].key >= last.key)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    /* Give memory back when a burst of deadlines has passed. */
    if (h->cap > 1024 && h->n < h->cap / 8) {
        struct wr_heap_item *a = realloc(h->a, (size_t)(h->cap / 2) * sizeof(*a));
        if (a) {
            h->a = a;
            h->cap /= 2;
        }
    }
}
