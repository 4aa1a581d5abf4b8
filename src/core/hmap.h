/*
 * hmap.h - an intrusive hash map keyed by byte strings.
 *
 * Objects that live in a map embed a struct wr_hnode whose key points at
 * bytes the object owns (its name). Insert and remove never allocate; only
 * growing the bucket array does, and it doubles, so the cost per insert is
 * amortised O(1). Lookups hash with FNV-1a and compare lengths before
 * bytes. Not for keys chosen by an attacker to collide in bulk: the seed is
 * randomised per process to make that harder.
 */
#ifndef WR_CORE_HMAP_H
#define WR_CORE_HMAP_H

#include <stddef.h>
#include <stdint.h>

#include "wire/buf.h"

struct wr_hnode {
    struct wr_hnode *next;
    uint64_t hash;
    struct wr_str key;
};

struct wr_hmap {
    struct wr_hnode **b;
    size_t nb; /* buckets, a power of two */
    size_t n;  /* entries */
};

void wr_hmap_init(struct wr_hmap *m);
void wr_hmap_free(struct wr_hmap *m); /* the bucket array only */
uint64_t wr_hmap_hash(struct wr_str key);

struct wr_hnode *wr_hmap_get(const struct wr_hmap *m, struct wr_str key);
/* Insert a node whose key is set; the caller checked it is absent.
 * Returns 0 or WR_ENOMEM (only when the table must grow). */
int wr_hmap_put(struct wr_hmap *m, struct wr_hnode *n);
void wr_hmap_del(struct wr_hmap *m, struct wr_hnode *n);

/* Iterate: for (n = wr_hmap_first(m, &i); n; n = wr_hmap_next(m, &i, n)).
 * The current node may be deleted if `next` was fetched before. */
struct wr_hnode *wr_hmap_first(const struct wr_hmap *m, size_t *it);
struct wr_hnode *wr_hmap_next(const struct wr_hmap *m, size_t *it, struct wr_hnode *cur);

#endif
