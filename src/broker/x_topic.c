/*
 * x_topic.c - the topic exchange type: binding keys are patterns of
 * dot-separated words where "*" stands for exactly one word and "#" for
 * zero or more words; the routing key is matched word by word.
 *
 * Semantics (RabbitMQ 3.10.8, rabbit_exchange_type_topic.erl, also checked
 * against a live 3.10.8 node on random patterns and keys; unchanged in
 * 3.13's rabbit_db_topic_exchange.erl and 4.x):
 *
 *  - Splitting (split_topic_key): the empty key has zero words; otherwise
 *    every '.' separates two words, so empty words are real words:
 *    "a..b" is ["a","","b"], "a." is ["a",""], "." is ["",""]. Binding
 *    keys and routing keys split the same way.
 *  - In a binding key a word that is exactly "*" or "#" is a wildcard;
 *    "a*", "#b" are plain words. Routing-key words are always literal (a
 *    routing word "*" matches binding word "*" as a wildcard would anyway).
 *  - Consequences: "#" matches every key, "" included; "*" matches the
 *    one-word keys only, so not "" (zero words) nor "." (two empty
 *    words); "a.#" matches "a"; "#.a" matches "a"; "a.*.c" matches "a..c";
 *    the binding key "" matches only the routing key "".
 *
 * Index: a trie of the binding keys' words. A node's literal children
 * live in one hash map per exchange (core/hmap.h) keyed by (parent node
 * pointer, word), like RabbitMQ's edge table; its "*" and "#" children are
 * direct pointers. Bindings hang off the node their key ends at (through
 * b->type_node; b->type_data is that node). A node is freed as soon as it
 * has neither bindings nor children, so removing every binding gives the
 * trie back to a lone root.
 *
 * Routing runs the trie as a nondeterministic automaton instead of
 * backtracking: it keeps the set of nodes reachable after the first i
 * words. For the next word each node in the set contributes its literal
 * child for that word, its "*" child, and itself if it is a "#" node (a
 * "#" absorbs the word); every node entering a set also brings its chain
 * of "#" children (a "#" may match zero words). A node enters a set at
 * most once per word (a stamp per node, unique per step, dedupes), so a
 * pass costs O(words x nodes in the sets) whatever the patterns, and
 * "#.#.#.#" cannot blow up. After the last word the bindings of the nodes
 * in the set are emitted; a binding lives in exactly one node and a node is
 * in the set once, so each matching binding is emitted exactly once.
 *
 * The two node sets are arrays owned by the exchange and kept at least as
 * large as the number of nodes (grown when nodes are added), so routing
 * never allocates. Routing the same exchange again from inside `emit`
 * cannot happen through exchange.c (its route mark stops it) but is still
 * safe: the nested pass uses arrays of its own.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "core/hmap.h"

enum topic_kind { TOPIC_ROOT, TOPIC_WORD, TOPIC_STAR, TOPIC_HASH };

struct topic_node {
    struct wr_hnode edge; /* in st->edges (TOPIC_WORD only); key = ekey */
    struct wr_list all;   /* in st->nodes */
    struct topic_node *parent;
    struct topic_node *star, *hash;
    struct wr_list bindings; /* struct wr_binding.type_node */
    uint64_t stamp;          /* last routing step that put it in a set */
    uint32_t nchild;         /* all children */
    uint32_t nlit;           /* literal children (in st->edges) */
    uint8_t kind;
    char ekey[]; /* parent pointer, then the word (TOPIC_WORD only) */
};

struct topic_state {
    struct wr_hmap edges;
    struct wr_list nodes;
    struct topic_node *root;
    size_t nnodes;
    struct topic_node **set_a, **set_b; /* each holds set_cap >= nnodes */
    size_t set_cap;
    char *kbuf; /* lookup key: parent pointer + word; kcap bytes */
    size_t kcap;
    uint32_t max_word; /* longest literal word indexed so far */
    uint64_t step;
    bool busy;
};

/* A word of a key: [ptr, ptr + len). */
struct topic_word {
    const char *ptr;
    uint32_t len;
};

/* ---- splitting ---- */

/* Iterates the words of `key`: start with *pos = 0; returns false when
 * done. The empty key has no words (see the top of the file). */
static bool topic_next_word(struct wr_str key, uint32_t *pos, bool *done, struct topic_word *w)
{
    uint32_t i;

    if (*done || key.len == 0)
        return false;
    for (i = *pos; i < key.len && key.ptr[i] != '.'; i++)
        ;
    w->ptr = key.ptr + *pos;
    w->len = i - *pos;
    if (i == key.len)
        *done = true;
    else
        *pos = i + 1;
    return true;
}

static bool topic_word_is(const struct topic_word *w, char c)
{
    return w->len == 1 && w->ptr[0] == c;
}

/* ---- nodes ---- */

static struct topic_node *topic_node_new(struct topic_state *st, struct topic_node *parent,
                                         enum topic_kind kind, const struct topic_word *w)
{
    size_t klen = kind == TOPIC_WORD ? sizeof(parent) + w->len : 0;
    struct topic_node *n = calloc(1, sizeof(*n) + klen);

    if (!n)
        return NULL;
    n->parent = parent;
    n->kind = (uint8_t)kind;
    wr_list_init(&n->bindings);
    if (kind == TOPIC_WORD) {
        memcpy(n->ekey, &parent, sizeof(parent));
        if (w->len)
            memcpy(n->ekey + sizeof(parent), w->ptr, w->len);
        n->edge.key = (struct wr_str){n->ekey, (uint32_t)klen};
        if (wr_hmap_put(&st->edges, &n->edge) < 0) {
            free(n);
            return NULL;
        }
        parent->nlit++;
    } else if (kind == TOPIC_STAR) {
        parent->star = n;
    } else if (kind == TOPIC_HASH) {
        parent->hash = n;
    }
    if (parent)
        parent->nchild++;
    wr_list_add_tail(&st->nodes, &n->all);
    st->nnodes++;
    return n;
}

/* Literal child of `n` for word `w`, NULL when none. */
static struct topic_node *topic_child_lit(struct topic_state *st, struct topic_node *n,
                                          const char *w, uint32_t wlen)
{
    struct wr_hnode *h;

    if (n->nlit == 0 || wlen > st->max_word)
        return NULL;
    memcpy(st->kbuf, &n, sizeof(n));
    if (wlen)
        memcpy(st->kbuf + sizeof(n), w, wlen);
    h = wr_hmap_get(&st->edges, (struct wr_str){st->kbuf, (uint32_t)(sizeof(n) + wlen)});
    return h ? wr_container_of(h, struct topic_node, edge) : NULL;
}

/* Frees `n` and then its ancestors for as long as they are left with
 * neither bindings nor children. The root stays. */
static void topic_prune(struct topic_state *st, struct topic_node *n)
{
    while (n && n->kind != TOPIC_ROOT && n->nchild == 0 && wr_list_empty(&n->bindings)) {
        struct topic_node *p = n->parent;
        if (n->kind == TOPIC_WORD) {
            wr_hmap_del(&st->edges, &n->edge);
            p->nlit--;
        } else if (n->kind == TOPIC_STAR) {
            p->star = NULL;
        } else {
            p->hash = NULL;
        }
        p->nchild--;
        wr_list_del(&n->all);
        st->nnodes--;
        free(n);
        n = p;
    }
}

/* Makes room for `more` nodes in the routing sets and for a lookup key
 * with a word of `wlen` bytes. */
static int topic_reserve(struct topic_state *st, size_t more, uint32_t wlen)
{
    if (st->nnodes + more > st->set_cap) {
        size_t cap = st->set_cap ? st->set_cap : 16;
        struct topic_node **a, **b;
        while (cap < st->nnodes + more)
            cap *= 2;
        a = realloc(st->set_a, cap * sizeof(*a));
        if (!a)
            return WR_ENOMEM;
        st->set_a = a;
        b = realloc(st->set_b, cap * sizeof(*b));
        if (!b)
            return WR_ENOMEM;
        st->set_b = b;
        st->set_cap = cap;
    }
    if (sizeof(void *) + wlen > st->kcap) {
        char *k = realloc(st->kbuf, sizeof(void *) + wlen);
        if (!k)
            return WR_ENOMEM;
        st->kbuf = k;
        st->kcap = sizeof(void *) + wlen;
    }
    return 0;
}

/* ---- the type ---- */

static int topic_init(struct wr_exchange *x)
{
    struct topic_state *st = calloc(1, sizeof(*st));

    if (!st)
        return WR_ENOMEM;
    wr_hmap_init(&st->edges);
    wr_list_init(&st->nodes);
    st->root = topic_node_new(st, NULL, TOPIC_ROOT, NULL);
    if (!st->root || topic_reserve(st, 0, 0) < 0) {
        free(st->root);
        free(st->set_a);
        free(st->set_b);
        free(st->kbuf);
        wr_hmap_free(&st->edges);
        free(st);
        return WR_ENOMEM;
    }
    x->type_state = st;
    return 0;
}

/* Frees every node; bindings still indexed are detached, not freed (they
 * belong to exchange.c). */
static void topic_destroy(struct wr_exchange *x)
{
    struct topic_state *st = x->type_state;
    struct wr_list *it, *tmp, *bit, *btmp;

    if (!st)
        return;
    wr_list_each_safe(it, tmp, &st->nodes)
    {
        struct topic_node *n = wr_container_of(it, struct topic_node, all);
        wr_list_each_safe(bit, btmp, &n->bindings)
        {
            struct wr_binding *b = wr_container_of(bit, struct wr_binding, type_node);
            wr_list_del(&b->type_node);
            b->type_data = NULL;
        }
        free(n);
    }
    wr_hmap_free(&st->edges);
    free(st->set_a);
    free(st->set_b);
    free(st->kbuf);
    free(st);
    x->type_state = NULL;
}

static int topic_add(struct wr_exchange *x, struct wr_binding *b)
{
    struct topic_state *st = x->type_state;
    struct topic_node *n = st->root, *c;
    struct topic_word w;
    uint32_t pos = 0, nwords = 0, maxlen = 0;
    bool done = false;
    int rc;

    while (topic_next_word(b->key, &pos, &done, &w)) {
        nwords++;
        if (w.len > maxlen)
            maxlen = w.len;
    }
    if ((rc = topic_reserve(st, nwords, maxlen)) < 0)
        return rc;

    pos = 0;
    done = false;
    while (topic_next_word(b->key, &pos, &done, &w)) {
        if (topic_word_is(&w, '*')) {
            c = n->star ? n->star : topic_node_new(st, n, TOPIC_STAR, &w);
        } else if (topic_word_is(&w, '#')) {
            c = n->hash ? n->hash : topic_node_new(st, n, TOPIC_HASH, &w);
        } else {
            /* max_word only grows, and kbuf was sized for this word. */
            if (w.len > st->max_word)
                st->max_word = w.len;
            c = topic_child_lit(st, n, w.ptr, w.len);
            if (!c)
                c = topic_node_new(st, n, TOPIC_WORD, &w);
        }
        if (!c) {
            topic_prune(st, n);
            return WR_ENOMEM;
        }
        n = c;
    }
    wr_list_add_tail(&n->bindings, &b->type_node);
    b->type_data = n;
    return 0;
}

static void topic_remove(struct wr_exchange *x, struct wr_binding *b)
{
    struct topic_state *st = x->type_state;
    struct topic_node *n = b->type_data;

    if (!n)
        return;
    wr_list_del(&b->type_node);
    b->type_data = NULL;
    topic_prune(st, n);
}

/* Puts `n` and its chain of "#" children into `set` unless already there
 * for this step. */
static void topic_enter(struct topic_node **set, size_t *len, struct topic_node *n, uint64_t step)
{
    for (; n && n->stamp != step; n = n->hash) {
        n->stamp = step;
        set[(*len)++] = n;
    }
}

/* `emit` must not add or remove bindings of this exchange. */
static void topic_route(struct wr_exchange *x, const struct wr_route_msg *m, wr_route_emit_fn emit,
                        void *ctx)
{
    struct topic_state *st = x->type_state;
    struct topic_node **cur, **next, **own = NULL, **tmp;
    size_t ncur = 0, nnext;
    struct topic_word w;
    uint32_t pos = 0;
    bool done = false;

    if (st->busy) {
        /* Re-entered from emit: the shared arrays are in use. */
        own = malloc(2 * st->nnodes * sizeof(*own));
        if (!own)
            return;
        cur = own;
        next = own + st->nnodes;
    } else {
        cur = st->set_a;
        next = st->set_b;
    }

    topic_enter(cur, &ncur, st->root, ++st->step);
    while (ncur && topic_next_word(m->routing_key, &pos, &done, &w)) {
        uint64_t step = ++st->step;
        nnext = 0;
        for (size_t i = 0; i < ncur; i++) {
            struct topic_node *n = cur[i];
            if (n->kind == TOPIC_HASH)
                topic_enter(next, &nnext, n, step);
            if (n->star)
                topic_enter(next, &nnext, n->star, step);
            topic_enter(next, &nnext, topic_child_lit(st, n, w.ptr, w.len), step);
        }
        tmp = cur;
        cur = next;
        next = tmp;
        ncur = nnext;
    }
    if (!own)
        st->busy = true;
    for (size_t i = 0; i < ncur; i++) {
        struct wr_list *it;
        wr_list_each(it, &cur[i]->bindings)
        {
            emit(wr_container_of(it, struct wr_binding, type_node), ctx);
        }
    }
    if (!own)
        st->busy = false;
    free(own);
}

const struct wr_xtype wr_xtype_topic = {
    .name = "topic",
    .init = topic_init,
    .destroy = topic_destroy,
    .validate = NULL,
    .add = topic_add,
    .remove = topic_remove,
    .route = topic_route,
};
