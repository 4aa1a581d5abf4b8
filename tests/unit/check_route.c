/*
 * check_route.c - unit tests for routing over the exchange graph and the
 * auto-delete cascade (exchange.c, vhost.c), on a real struct wr_vhost
 * without sockets or an event loop.
 *
 * - Deep graphs: a chain of 200,000 exchanges bound one to the next, and a
 *   chain of 200,000 alternate exchanges, route a message end to end; the
 *   bound chain, all auto-delete, is then deleted from its far end by one
 *   queue deletion. Both used to recurse once per hop and overflowed the
 *   stack. Two uses after free around auto-delete: unbinding the last
 *   binding of an auto-delete exchange, and freeing a vhost whose walk of
 *   its exchanges auto-deleted the next ones.
 * - Random graphs against a model: exchanges (fanout or direct, some
 *   auto-delete, some naming an alternate exchange that may be missing,
 *   themselves, or the default exchange), queues and bindings of both
 *   kinds are declared, bound, unbound and deleted at random, and after
 *   every step the set of queues each publish reaches and the set of
 *   exchanges still there are compared with the model's. The model states
 *   RabbitMQ's rules as plainly as possible: the exchanges a message
 *   reaches are the least set holding the one published to and closed
 *   under "a reached exchange's matching binding leads to an exchange" and
 *   "a reached exchange that matches no binding leads to its alternate
 *   exchange"; an auto-delete exchange goes when it loses its last binding
 *   as a source, and when an exchange goes so do the bindings into it.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "broker/msg.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "core/err.h"

/* ---- helpers ---- */

/* The body of a table { "alternate-exchange": S name } into buf. */
static struct wr_str ae_args(char *buf, const char *name)
{
    size_t n = strlen(name), len = 0;
    buf[len++] = 18;
    memcpy(buf + len, "alternate-exchange", 18);
    len += 18;
    buf[len++] = 'S';
    buf[len++] = 0;
    buf[len++] = 0;
    buf[len++] = 0;
    buf[len++] = (char)n;
    memcpy(buf + len, name, n);
    len += n;
    return (struct wr_str){buf, (uint32_t)len};
}

static struct wr_exchange *declare_x(struct wr_vhost *vh, const char *name, const char *type,
                                     bool auto_delete, const char *ae)
{
    struct wr_exchange_decl d = {0};
    struct wr_exchange *x = NULL;
    struct wr_errbuf err;
    char abuf[300];

    d.name = wr_str_c(name);
    d.type = wr_str_c(type);
    d.auto_delete = auto_delete;
    if (ae)
        d.args = ae_args(abuf, ae);
    ck_assert_msg(wr_vhost_exchange_declare(vh, &d, &x, &err) == 0, "%s", err.text);
    return x;
}

static struct wr_queue *declare_q(struct wr_vhost *vh, const char *name)
{
    struct wr_queue_decl d = {0};
    struct wr_queue *q = NULL;
    struct wr_errbuf err;
    bool created;

    d.name = wr_str_c(name);
    ck_assert_msg(wr_vhost_queue_declare(vh, &d, &q, &created, &err) == 0, "%s", err.text);
    return q;
}

static void do_bind(struct wr_vhost *vh, const char *src, const char *dest, bool to_exchange,
                    const char *key)
{
    struct wr_errbuf err;
    ck_assert_msg(wr_vhost_bind(vh, wr_str_c(src), wr_str_c(dest), to_exchange, wr_str_c(key),
                                WR_STR_NULL, NULL, &err) == 0,
                  "%s", err.text);
}

static void do_unbind(struct wr_vhost *vh, const char *src, const char *dest, bool to_exchange,
                      const char *key)
{
    struct wr_errbuf err;
    ck_assert_msg(wr_vhost_unbind(vh, wr_str_c(src), wr_str_c(dest), to_exchange, wr_str_c(key),
                                  WR_STR_NULL, NULL, &err) == 0,
                  "%s", err.text);
}

static void route(struct wr_vhost *vh, const char *x, const char *key, struct wr_route_result *res)
{
    struct wr_exchange *ex = wr_vhost_exchange(vh, wr_str_c(x));
    struct wr_route_msg m = {.routing_key = wr_str_c(key)};
    ck_assert_ptr_nonnull(ex);
    ck_assert_int_eq(wr_vhost_route(vh, ex, &m, res), 0);
}

static bool exists(struct wr_vhost *vh, const char *name)
{
    return wr_vhost_exchange(vh, wr_str_c(name)) != NULL;
}

/* ---- the routing cache on interned keys ---- */

/* wr_vhost_exchange_of / wr_vhost_queue_of answer what a lookup would,
 * however queues and exchanges come and go in between, and per vhost. */
START_TEST(test_key_cache_follows_changes)
{
    struct wr_vhost *vh = wr_vhost_new("/", NULL), *vh2 = wr_vhost_new("other", NULL);
    struct wr_msgs pool;
    struct wr_msg *m, *mx;
    struct wr_queue *q, *q2;
    struct wr_exchange *x;
    struct wr_errbuf err;

    wr_msgs_init(&pool);
    vh->msgs = vh2->msgs = &pool; /* as wr_broker_vhost_add does */
    m = wr_msg_new(&pool, WR_STR(""), WR_STR("cq"), NULL, 0, 0, 0);
    mx = wr_msg_new(&pool, WR_STR("cx"), WR_STR("cq"), NULL, 0, 0, 0);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(mx);
    ck_assert_ptr_eq(wr_vhost_exchange_of(vh, m), vh->default_exchange);
    ck_assert_ptr_null(wr_vhost_queue_of(vh, m));
    q = declare_q(vh, "cq");
    ck_assert_ptr_eq(wr_vhost_queue_of(vh, m), q);
    ck_assert_ptr_eq(wr_vhost_queue_of(vh, m), q);
    ck_assert_ptr_null(wr_vhost_queue_of(vh2, m)); /* another vhost */
    ck_assert_ptr_eq(wr_vhost_exchange_of(vh2, m), vh2->default_exchange);
    ck_assert_ptr_eq(wr_vhost_queue_of(vh, m), q); /* the first vhost's, still */
    wr_vhost_queue_delete(vh, q);
    ck_assert_ptr_null(wr_vhost_queue_of(vh, m));
    q2 = declare_q(vh, "cq");
    ck_assert_ptr_eq(wr_vhost_queue_of(vh, m), q2);

    ck_assert_ptr_null(wr_vhost_exchange_of(vh, mx));
    x = declare_x(vh, "cx", "direct", false, NULL);
    ck_assert_ptr_eq(wr_vhost_exchange_of(vh, mx), x);
    ck_assert_int_eq(wr_vhost_exchange_delete(vh, WR_STR("cx"), false, &err), 0);
    ck_assert_ptr_null(wr_vhost_exchange_of(vh, mx));
    ck_assert_ptr_eq(wr_vhost_queue_of(vh, m), q2);

    wr_msg_unref(m);
    wr_msg_unref(mx);
    wr_vhost_free(vh);
    wr_vhost_free(vh2);
    wr_msgs_fini(&pool);
}
END_TEST

/* ---- deep graphs ---- */

#define DEEP 200000

START_TEST(test_deep_chain)
{
    struct wr_vhost *vh = wr_vhost_new("/", NULL);
    struct wr_route_result res = {0};
    struct wr_queue *q;
    char name[32], prev[32];

    ck_assert_ptr_nonnull(vh);
    for (int i = 0; i < DEEP; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        declare_x(vh, name, "fanout", true, NULL);
        if (i)
            do_bind(vh, prev, name, true, "");
        memcpy(prev, name, sizeof(prev));
    }
    q = declare_q(vh, "end");
    do_bind(vh, prev, "end", false, "");

    route(vh, "c0", "k", &res);
    ck_assert_uint_eq(res.n, 1);
    ck_assert_ptr_eq(res.q[0], q);
    ck_assert_uint_eq(wr_vhost_exchange(vh, WR_STR("c0"))->publish_in.n, 1);
    ck_assert_uint_eq(wr_vhost_exchange(vh, WR_STR("c0"))->publish_out.n, 1);
    /* Routing again reuses the worklist. */
    route(vh, "c1", "k", &res);
    ck_assert_uint_eq(res.n, 1);

    /* The queue goes: its binding was the last of c199999, which goes,
     * taking the binding from c199998, and so on up the chain. */
    wr_vhost_queue_delete(vh, q);
    ck_assert(!exists(vh, "c0"));
    ck_assert(!exists(vh, "c100000"));
    ck_assert(!exists(vh, "c199999"));
    ck_assert(exists(vh, "amq.direct"));
    free(res.q);
    wr_vhost_free(vh);
}
END_TEST

START_TEST(test_deep_alternate_chain)
{
    struct wr_vhost *vh = wr_vhost_new("/", NULL);
    struct wr_route_result res = {0};
    char name[32], next[32];

    ck_assert_ptr_nonnull(vh);
    for (int i = 0; i < DEEP - 1; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        snprintf(next, sizeof(next), "a%d", i + 1);
        declare_x(vh, name, "direct", false, next);
    }
    declare_x(vh, next, "fanout", false, NULL);
    declare_q(vh, "end");
    do_bind(vh, next, "end", false, "");
    route(vh, "a0", "k", &res);
    ck_assert_uint_eq(res.n, 1);
    route(vh, "a5", "k", &res);
    ck_assert_uint_eq(res.n, 1);
    free(res.q);
    wr_vhost_free(vh);
}
END_TEST

/* Freeing a vhost walks its exchanges; freeing one removes the bindings
 * into it, which must not auto-delete their sources, likely the next
 * exchanges of the walk (a use after free under ASan). Hubs with many
 * auto-delete sources each make it certain: whichever hub the walk meets
 * first takes most of the rest with it. */
START_TEST(test_free_with_auto_delete_sources)
{
    struct wr_vhost *vh = wr_vhost_new("/", NULL);
    char hub[32], src[32];

    ck_assert_ptr_nonnull(vh);
    for (int h = 0; h < 4; h++) {
        snprintf(hub, sizeof(hub), "hub%d", h);
        declare_x(vh, hub, "fanout", false, NULL);
        for (int i = 0; i < 500; i++) {
            snprintf(src, sizeof(src), "s%d.%d", h, i);
            declare_x(vh, src, "fanout", true, NULL);
            do_bind(vh, src, hub, true, "");
        }
    }
    declare_q(vh, "q");
    do_bind(vh, "hub0", "q", false, "");
    wr_vhost_free(vh);
}
END_TEST

/* Unbinding the last binding of an auto-delete exchange deletes it; the
 * unbind must not look at it afterwards (a use after free under ASan). */
START_TEST(test_unbind_last)
{
    struct wr_vhost *vh = wr_vhost_new("/", NULL);

    ck_assert_ptr_nonnull(vh);
    declare_x(vh, "ad", "direct", true, NULL);
    declare_q(vh, "q");
    do_bind(vh, "ad", "q", false, "k");
    do_bind(vh, "ad", "q", false, "j");
    do_unbind(vh, "ad", "q", false, "k");
    ck_assert(exists(vh, "ad"));
    do_unbind(vh, "ad", "q", false, "j");
    ck_assert(!exists(vh, "ad"));
    wr_vhost_free(vh);
}
END_TEST

/* ---- random graphs against a model ---- */

#define NX 7
#define NQ 4
#define NB 64
#define AE_NONE (-1)
#define AE_MISSING NX       /* names an exchange that is never declared */
#define AE_DEFAULT (NX + 1) /* names the default exchange "" */

struct mx {
    bool live, fanout, auto_delete;
    int ae;
};

struct mb {
    bool live, to_x;
    int src, dest, key; /* key: 0 "a", 1 "b" */
};

struct model {
    struct mx x[NX];
    bool q[NQ];
    struct mb b[NB];
};

static const char *const keys[] = {"a", "b"};

/* A small deterministic generator (the same graphs on every run). */
static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static void xname(char *buf, int i)
{
    snprintf(buf, 16, "x%d", i);
}

static void qname(char *buf, int i)
{
    snprintf(buf, 16, "q%d", i);
}

static bool m_matches(const struct model *m, const struct mb *b, int key)
{
    return b->live && (m->x[b->src].fanout || b->key == key);
}

/* The queues a message published to exchange `from` with `key` reaches:
 * the fixpoint of the rules at the top of the file. */
static unsigned m_route(const struct model *m, int from, int key)
{
    bool reached[NX] = {0};
    unsigned queues = 0;
    bool grew = true;

    reached[from] = true;
    while (grew) {
        grew = false;
        for (int i = 0; i < NX; i++) {
            bool any = false;
            if (!reached[i])
                continue;
            for (int j = 0; j < NB; j++) {
                const struct mb *b = &m->b[j];
                if (b->src != i || !m_matches(m, b, key))
                    continue;
                any = true;
                if (!b->to_x)
                    queues |= 1u << b->dest;
                else if (!reached[b->dest])
                    reached[b->dest] = grew = true;
            }
            if (!any && m->x[i].ae >= 0 && m->x[i].ae < NX && m->x[m->x[i].ae].live &&
                !reached[m->x[i].ae])
                reached[m->x[i].ae] = grew = true;
        }
    }
    return queues;
}

static void m_delete_x(struct model *m, int x);

/* Binding j goes; its source goes too if that was its last binding and
 * it is auto-delete. */
static void m_unbind(struct model *m, int j)
{
    int src = m->b[j].src;

    m->b[j].live = false;
    if (!m->x[src].live || !m->x[src].auto_delete)
        return;
    for (int k = 0; k < NB; k++)
        if (m->b[k].live && m->b[k].src == src)
            return;
    m_delete_x(m, src);
}

static void m_delete_x(struct model *m, int x)
{
    m->x[x].live = false;
    for (int j = 0; j < NB; j++)
        if (m->b[j].live && m->b[j].src == x)
            m->b[j].live = false; /* from x: x itself is gone already */
    for (int j = 0; j < NB; j++)
        if (m->b[j].live && m->b[j].to_x && m->b[j].dest == x)
            m_unbind(m, j);
}

static void m_delete_q(struct model *m, int q)
{
    m->q[q] = false;
    for (int j = 0; j < NB; j++)
        if (m->b[j].live && !m->b[j].to_x && m->b[j].dest == q)
            m_unbind(m, j);
}

/* The same binding (source, destination, key) already in the model. */
static int m_find(const struct model *m, const struct mb *b)
{
    for (int j = 0; j < NB; j++)
        if (m->b[j].live && m->b[j].src == b->src && m->b[j].to_x == b->to_x &&
            m->b[j].dest == b->dest && m->b[j].key == b->key)
            return j;
    return -1;
}

static void check_same(struct wr_vhost *vh, struct model *m, struct wr_queue **qs,
                       struct wr_route_result *res, int step)
{
    char n[16];

    for (int i = 0; i < NX; i++) {
        xname(n, i);
        ck_assert_msg(exists(vh, n) == m->x[i].live, "step %d: exchange %s", step, n);
    }
    for (int i = 0; i < NX; i++) {
        if (!m->x[i].live)
            continue;
        xname(n, i);
        for (int key = 0; key < 2; key++) {
            unsigned got = 0, want = m_route(m, i, key);
            route(vh, n, keys[key], res);
            for (uint32_t k = 0; k < res->n; k++) {
                int qi = -1;
                for (int j = 0; j < NQ; j++)
                    if (qs[j] == res->q[k])
                        qi = j;
                ck_assert_msg(qi >= 0, "step %d: routed to an unknown queue", step);
                ck_assert_msg(!(got & (1u << qi)), "step %d: q%d collected twice", step, qi);
                got |= 1u << qi;
            }
            ck_assert_msg(got == want, "step %d: from x%d key %s: got %#x, want %#x", step, i,
                          keys[key], got, want);
        }
    }
}

START_TEST(test_random_graphs)
{
    struct wr_route_result res = {0};
    unsigned seed = 12345;

    for (int round = 0; round < 300; round++) {
        struct wr_vhost *vh = wr_vhost_new("/", NULL);
        struct model m;
        struct wr_queue *qs[NQ] = {0};
        char n1[16], n2[16];

        ck_assert_ptr_nonnull(vh);
        memset(&m, 0, sizeof(m));
        for (int step = 0; step < 60; step++) {
            int op = next_rand(&seed) % 10;
            if (op == 0) { /* declare an exchange */
                int i = next_rand(&seed) % NX;
                int ae = next_rand(&seed) % (NX + 3) - 1; /* AE_NONE .. AE_DEFAULT */
                if (m.x[i].live)
                    continue;
                m.x[i] = (struct mx){true, next_rand(&seed) % 2, next_rand(&seed) % 2, ae};
                xname(n1, i);
                if (ae >= 0 && ae < NX)
                    xname(n2, ae);
                else
                    strcpy(n2, ae == AE_MISSING ? "missing" : "");
                declare_x(vh, n1, m.x[i].fanout ? "fanout" : "direct", m.x[i].auto_delete,
                          ae == AE_NONE ? NULL : n2);
            } else if (op == 1) { /* declare a queue */
                int i = next_rand(&seed) % NQ;
                if (m.q[i])
                    continue;
                m.q[i] = true;
                qname(n1, i);
                qs[i] = declare_q(vh, n1);
            } else if (op <= 5) { /* bind */
                struct mb b = {true, next_rand(&seed) % 2, next_rand(&seed) % NX, 0,
                               next_rand(&seed) % 2};
                b.dest = next_rand(&seed) % (b.to_x ? NX : NQ);
                if (!m.x[b.src].live || !(b.to_x ? m.x[b.dest].live : m.q[b.dest]) ||
                    m_find(&m, &b) >= 0)
                    continue;
                for (int j = 0; j < NB; j++)
                    if (!m.b[j].live) {
                        m.b[j] = b;
                        break;
                    }
                xname(n1, b.src);
                (b.to_x ? xname : qname)(n2, b.dest);
                do_bind(vh, n1, n2, b.to_x, keys[b.key]);
            } else if (op <= 7) { /* unbind */
                int j = next_rand(&seed) % NB;
                if (!m.b[j].live)
                    continue;
                xname(n1, m.b[j].src);
                (m.b[j].to_x ? xname : qname)(n2, m.b[j].dest);
                do_unbind(vh, n1, n2, m.b[j].to_x, keys[m.b[j].key]);
                m_unbind(&m, j);
            } else if (op == 8) { /* delete a queue */
                int i = next_rand(&seed) % NQ;
                if (!m.q[i])
                    continue;
                wr_vhost_queue_delete(vh, qs[i]);
                qs[i] = NULL;
                m_delete_q(&m, i);
            } else { /* delete an exchange */
                int i = next_rand(&seed) % NX;
                struct wr_errbuf err;
                if (!m.x[i].live)
                    continue;
                xname(n1, i);
                ck_assert_int_eq(wr_vhost_exchange_delete(vh, wr_str_c(n1), false, &err), 0);
                m_delete_x(&m, i);
            }
            check_same(vh, &m, qs, &res, step);
        }
        wr_vhost_free(vh);
    }
    free(res.q);
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("deep");

    /* 200,000 exchanges, twice, under ASan on a loaded machine. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_key_cache_follows_changes);
    tcase_add_test(tc, test_deep_chain);
    tcase_add_test(tc, test_deep_alternate_chain);
    tcase_add_test(tc, test_free_with_auto_delete_sources);
    tcase_add_test(tc, test_unbind_last);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_random_graphs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(route_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
