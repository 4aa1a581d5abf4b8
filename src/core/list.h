/*
 * list.h - intrusive doubly linked lists (a circular list with a head node).
 *
 * The node lives inside the object, so linking and unlinking never
 * allocate; wr_container_of gets the object back from its node.
 */
#ifndef WR_CORE_LIST_H
#define WR_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct wr_list {
    struct wr_list *prev, *next;
};

#define wr_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void wr_list_init(struct wr_list *h)
{
    h->prev = h->next = h;
}

static inline bool wr_list_empty(const struct wr_list *h)
{
    return h->next == h;
}

/* A node that is not on any list points to itself (after wr_list_init or
 * wr_list_del), so "is it linked?" is cheap. */
static inline bool wr_list_linked(const struct wr_list *n)
{
    return n->next != n && n->next != NULL;
}

static inline void wr_list_insert_(struct wr_list *n, struct wr_list *prev, struct wr_list *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void wr_list_add_tail(struct wr_list *h, struct wr_list *n)
{
    wr_list_insert_(n, h->prev, h);
}

static inline void wr_list_add_head(struct wr_list *h, struct wr_list *n)
{
    wr_list_insert_(n, h, h->next);
}

static inline void wr_list_del(struct wr_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define wr_list_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Safe against removal of `pos`. */
#define wr_list_each_safe(pos, tmp, head)                                                         \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

#endif
