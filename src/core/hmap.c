/*
 * hmap.c - intrusive chained hash map; see hmap.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/hmap.h"

static uint64_t hmap_seed;

/* Seeded, eight bytes per step (a multiply and a shift each), then a
 * final mix so that the low bits (the bucket) depend on every byte. A
 * publish hashes its routing key: byte-at-a-time FNV-1a was 5% of the
 * broker's CPU per message. */
uint64_t wr_hmap_hash(struct wr_str key)
{
    const unsigned char *p = (const unsigned char *)key.ptr;
    uint32_t n = key.len;
    uint64_t h, w;
    if (!hmap_seed)
        hmap_seed = 0xcbf29ce484222325ull ^ ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
    h = hmap_seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull);
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (n) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void wr_hmap_init(struct wr_hmap *m)
{
    m->b = NULL;
    m->nb = 0;
    m->n = 0;
}

void wr_hmap_free(struct wr_hmap *m)
{
    free(m->b);
    wr_hmap_init(m);
}

struct wr_hnode *wr_hmap_get(const struct wr_hmap *m, struct wr_str key)
{
    uint64_t h;
    struct wr_hnode *n;
    if (!m->nb)
        return NULL;
    h = wr_hmap_hash(key);
    for (n = m->b[h & (m->nb - 1)]; n; n = n->next)
        if (n->hash == h && wr_str_eq(n->key, key))
            return n;
    return NULL;
}

static int hmap_grow(struct wr_hmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    struct wr_hnode **b = calloc(nb, sizeof(*b));
    if (!b)
        return WR_ENOMEM;
    for (size_t i = 0; i < m->nb; i++) {
        struct wr_hnode *n = m->b[i], *next;
        for (; n; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int wr_hmap_put(struct wr_hmap *m, struct wr_hnode *n)
{
    if (m->n + 1 > m->nb * 3 / 4 && hmap_grow(m) < 0)
        return WR_ENOMEM;
    n->hash = wr_hmap_hash(n->key);
    n->next = m->b[n->hash & (m->nb - 1)];
    m->b[n->hash & (m->nb - 1)] = n;
    m->n++;
    return 0;
}

void wr_hmap_del(struct wr_hmap *m, struct wr_hnode *n)
{
    struct wr_hnode **pp;
    if (!m->nb)
        return;
    for (pp = &m->b[n->hash & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            m->n--;
            return;
        }
    }
}

struct wr_hnode *wr_hmap_first(const struct wr_hmap *m, size_t *it)
{
    for (*it = 0; *it < m->nb; (*it)++)
        if (m->b[*it])
            return m->b[*it];
    return NULL;
}

struct wr_hnode *wr_hmap_next(const struct wr_hmap *m, size_t *it, struct wr_hnode *cur)
{
    if (cur->next)
        return cur->next;
    for ((*it)++; *it < m->nb; (*it)++)
        if (m->b[*it])
            return m->b[*it];
    return NULL;
}
