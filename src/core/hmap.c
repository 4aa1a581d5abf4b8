/*
 * hmap.c - intrusive chained hash map; see hmap.h.
 */
#include "config.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/hmap.h"

static uint64_t hmap_seed;

uint64_t wr_hmap_hash(struct wr_str key)
{
    uint64_t h;
    if (!hmap_seed)
        hmap_seed = 0xcbf29ce484222325ull ^ ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
    h = hmap_seed;
    for (uint32_t i = 0; i < key.len; i++) {
        h ^= (uint8_t)key.ptr[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
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
