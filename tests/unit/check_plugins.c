/*
 * check_plugins.c - unit tests of the plugin layer without sockets: the
 * loader's refusals (the test plugins of tests/plugins), an exchange type
 * from a plugin routing through the broker (consistent_hash: weights,
 * stability, the share a new binding takes, its refusals), and backends'
 * users in the auth module (login order, the vhost asked once, resource
 * and topic decisions, forgetting after a change).
 */
#include "config.h"

#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "broker/exchange.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "plugin/plugin.h"

#define PLUGINS WR_TEST_BUILDDIR "/plugins/.libs"
#define TEST_PLUGINS WR_TEST_BUILDDIR "/tests/plugins/.libs"

static struct wr_conf conf;
static struct event_base *base;
static struct wr_broker *b;
static struct wr_vhost *vh;

static void setup(void)
{
    wr_conf_init(&conf);
    wr_log_set_level(WR_LOG_ERROR);
    base = event_base_new();
    b = wr_broker_new(base, &conf);
    ck_assert_ptr_nonnull(b);
    vh = wr_broker_vhost_add(b, WR_STR("/"));
    ck_assert_ptr_nonnull(vh);
}

static void teardown(void)
{
    struct wr_plugins *p = b->plugins;
    wr_broker_free(b);
    wr_plugins_free(p);
    event_base_free(base);
}

static int declare_x(const char *name, const char *type, struct wr_errbuf *err)
{
    struct wr_exchange_decl d = {0};
    struct wr_exchange *x = NULL;
    d.name = wr_str_c(name);
    d.type = wr_str_c(type);
    return wr_vhost_exchange_declare(vh, &d, &x, err);
}

static struct wr_queue *declare_q(const char *name)
{
    struct wr_queue_decl d = {0};
    struct wr_queue *q = NULL;
    struct wr_errbuf err;
    bool created;
    d.name = wr_str_c(name);
    ck_assert_msg(wr_vhost_queue_declare(vh, &d, &q, &created, &err) == 0, "%s", err.text);
    return q;
}

static int do_bind(const char *q, const char *x, const char *key, struct wr_errbuf *err)
{
    return wr_vhost_bind(vh, wr_str_c(x), wr_str_c(q), false, wr_str_c(key), WR_STR_NULL, NULL,
                         err);
}

/* Where a routing key goes through x (exactly one queue expected). */
static struct wr_queue *route_one(const char *x, const char *key)
{
    struct wr_route_msg m = {0};
    struct wr_route_result r = {0};
    struct wr_queue *q;
    m.routing_key = wr_str_c(key);
    m.first = true;
    ck_assert_int_eq(wr_vhost_route(vh, wr_vhost_exchange(vh, wr_str_c(x)), &m, &r), 0);
    ck_assert_uint_eq(r.n, 1);
    q = r.q[0];
    free(r.q);
    return q;
}

START_TEST(refusals_leave_nothing_behind)
{
    struct wr_errbuf err;
    b->plugins =
        wr_plugins_load(b, TEST_PLUGINS, "bad_abi,bad_init,no_desc,wrong_name,missing", "");
    ck_assert_ptr_nonnull(b->plugins);
    ck_assert_uint_eq(b->plugins->n, 0);
    /* bad_init registered x-bad-init before failing: undone */
    ck_assert_ptr_null(wr_xtype_find(WR_STR("x-bad-init")));
    ck_assert_int_eq(declare_x("x", "x-bad-init", &err), WR_ECOMMAND_INVALID);
    /* and its timer, armed for 10 ms, is gone with it (it would abort) */
    {
        struct timeval tv = {0, 30000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}
END_TEST

START_TEST(consistent_hash_routes_by_weight)
{
    const char *qs[] = {"a", "b", "c", "d"};
    struct wr_queue *q[4];
    unsigned count[4] = {0}, moved = 0;
    struct wr_queue *before[20000];
    struct wr_errbuf err;

    b->plugins = wr_plugins_load(b, PLUGINS, "consistent_hash", "");
    ck_assert_uint_eq(b->plugins->n, 1);
    ck_assert_int_eq(declare_x("chx", "x-consistent-hash", &err), 0);
    for (int i = 0; i < 4; i++)
        q[i] = declare_q(qs[i]);
    ck_assert_int_eq(do_bind("a", "chx", "1", &err), 0);
    ck_assert_int_eq(do_bind("b", "chx", "2", &err), 0);
    ck_assert_int_eq(do_bind("c", "chx", "3", &err), 0);
    ck_assert_int_eq(do_bind("c", "chx", "0", &err), WR_EPRECONDITION_FAILED);
    ck_assert_str_eq(err.text, "PRECONDITION_FAILED - The binding key must be greater than 0");
    ck_assert_int_eq(do_bind("c", "chx", "x", &err), WR_EPRECONDITION_FAILED);
    ck_assert_str_eq(err.text,
                     "PRECONDITION_FAILED - The binding key must be an integer: <<\"x\">>");
    for (int k = 0; k < 60000; k++) {
        char key[32];
        struct wr_queue *to;
        snprintf(key, sizeof key, "key-%d", k);
        to = route_one("chx", key);
        for (int i = 0; i < 3; i++)
            count[i] += to == q[i];
        if (k < 20000)
            before[k] = to;
    }
    for (int i = 0; i < 3; i++) {
        double share = count[i] / 60000.0, want = (i + 1) / 6.0;
        ck_assert_msg(share > want * 0.97 && share < want * 1.03, "binding %d: %f", i, share);
    }
    /* a fourth binding of weight 6 takes half, only from the others, to itself */
    ck_assert_int_eq(do_bind("d", "chx", "6", &err), 0);
    for (int k = 0; k < 20000; k++) {
        char key[32];
        struct wr_queue *to;
        snprintf(key, sizeof key, "key-%d", k);
        to = route_one("chx", key);
        if (to != before[k]) {
            ck_assert_ptr_eq(to, q[3]);
            moved++;
        }
    }
    ck_assert_msg(moved > 20000 * 0.47 && moved < 20000 * 0.53, "moved %u", moved);
    /* removing it puts every key back */
    ck_assert_int_eq(wr_vhost_unbind(vh, WR_STR("chx"), WR_STR("d"), false, WR_STR("6"),
                                     WR_STR_NULL, NULL, &err),
                     0);
    for (int k = 0; k < 20000; k++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", k);
        ck_assert_ptr_eq(route_one("chx", key), before[k]);
    }
}
END_TEST

START_TEST(plugin_settings_and_names)
{
    struct wr_conf c;
    struct wr_conf_error e;
    wr_conf_init(&c);
    ck_assert_int_eq(wr_conf_set(&c, "plugins.enabled.1", "delayed_message", &e), 0);
    ck_assert_int_eq(wr_conf_set(&c, "plugins.enabled.2", "consistent_hash", &e), 0);
    ck_assert_int_eq(wr_conf_set(&c, "plugins.enabled.3", "delayed_message", &e), 0);
    ck_assert_str_eq(c.plugins_enabled, "delayed_message,consistent_hash");
    ck_assert_int_eq(wr_conf_set(&c, "plugins.enabled.4", "../evil", &e), WR_ESYNTAX);
    ck_assert_int_eq(wr_conf_set(&c, "plugin.auth_file.path", "/a", &e), 0);
    ck_assert_int_eq(wr_conf_set(&c, "plugin.auth_file.path", "/b", &e), 0);
    ck_assert_int_eq(wr_conf_set(&c, "plugin.delayed_message.max_delay", "5", &e), 0);
    ck_assert_str_eq(c.plugin_settings, "auth_file.path=/b\ndelayed_message.max_delay=5\n");
    ck_assert_int_eq(wr_conf_set(&c, "plugin.noname", "1", &e), WR_ESYNTAX);
    ck_assert_int_eq(wr_conf_set(&c, "plugin.x.", "1", &e), WR_ESYNTAX);
    ck_assert_int_eq(wr_conf_set(&c, "auth_backends.1", "file", &e), 0);
    ck_assert_int_eq(wr_conf_set(&c, "auth_backends.2", "rabbit_auth_backend_internal", &e), 0);
    ck_assert_str_eq(c.auth_backends, "file,internal");
    /* a plugin reads its own settings only */
    b->plugins = wr_plugins_load(b, PLUGINS, "", c.plugin_settings);
    ck_assert_uint_eq(b->plugins->n, 0);
}
END_TEST

/* ---- a backend's users ---- */

static int asked_vhost;

static int t_login(void *ctx, struct wr_str user, struct wr_str pass, char *tags, size_t cap)
{
    (void)ctx;
    if (!wr_str_eq(user, WR_STR("ext")))
        return -1;
    snprintf(tags, cap, "management");
    return wr_str_eq(pass, WR_STR("pw")) ? 1 : 0;
}

static bool t_vhost(void *ctx, struct wr_str user, struct wr_str vhost)
{
    (void)ctx;
    (void)user;
    asked_vhost++;
    return wr_str_eq(vhost, WR_STR("/"));
}

static bool t_resource(void *ctx, struct wr_str user, struct wr_str vhost, const char *kind,
                       struct wr_str name, enum wr_perm_op op)
{
    (void)ctx;
    (void)user;
    (void)vhost;
    return !strcmp(kind, "queue") && op == WR_PERM_CONFIGURE && name.len && name.ptr[0] == 'e';
}

static bool t_topic(void *ctx, struct wr_str user, struct wr_str vhost, struct wr_str exchange,
                    struct wr_str key, enum wr_perm_op op)
{
    (void)ctx;
    (void)user;
    (void)vhost;
    (void)exchange;
    (void)op;
    return key.len && key.ptr[0] == 'k';
}

START_TEST(backend_users)
{
    static const struct wr_auth_backend be = {"test", NULL, t_login, t_vhost, t_resource, t_topic};
    const struct wr_auth_backend *order[] = {&be, NULL};
    struct wr_users *u = wr_users_new();
    struct wr_user *x = NULL;
    struct wr_errbuf err;
    const struct wr_vperm *p;
    uint64_t gen;

    ck_assert_int_eq(wr_users_put_password(u, WR_STR("guest"), WR_STR("guest"), WR_STR(""), &err),
                     0);
    /* the backend's user; its wrong password falls through and fails */
    ck_assert_int_eq(wr_auth_login(u, order, 2, WR_STR("ext"), WR_STR("pw"), &x, &err), 0);
    ck_assert(wr_user_is_external(x));
    ck_assert(wr_user_has_tag(x, "management"));
    ck_assert_int_eq(wr_auth_login(u, order, 2, WR_STR("ext"), WR_STR("no"), &x, &err) == 0, false);
    /* the table comes second */
    {
        struct wr_user *g = NULL;
        ck_assert_int_eq(wr_auth_login(u, order, 2, WR_STR("guest"), WR_STR("guest"), &g, &err), 0);
        ck_assert(!wr_user_is_external(g));
    }
    /* the vhost is asked once, then kept until forgotten */
    asked_vhost = 0;
    p = wr_user_vperm(x, WR_STR("/"));
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq(wr_user_vperm(x, WR_STR("/")), p);
    ck_assert_int_eq(asked_vhost, 1);
    ck_assert_ptr_null(wr_user_vperm(x, WR_STR("other")));
    ck_assert(wr_vperm_allows(p, WR_PERM_CONFIGURE, "queue", WR_STR("ext.q")));
    ck_assert(!wr_vperm_allows(p, WR_PERM_CONFIGURE, "exchange", WR_STR("ext.x")));
    ck_assert(!wr_vperm_allows(p, WR_PERM_WRITE, "queue", WR_STR("ext.q")));
    ck_assert(
        wr_user_topic_allows(x, WR_STR("/"), WR_STR("amq.topic"), WR_PERM_WRITE, WR_STR("key")));
    ck_assert(
        !wr_user_topic_allows(x, WR_STR("/"), WR_STR("amq.topic"), WR_PERM_WRITE, WR_STR("other")));
    wr_user_external_forget(x);
    ck_assert_ptr_nonnull(wr_user_vperm(x, WR_STR("/")));
    ck_assert_int_eq(asked_vhost, 3);
    gen = wr_users_generation(u);
    wr_users_touch(u);
    ck_assert_uint_ne(wr_users_generation(u), gen);
    wr_user_external_free(x);
    wr_users_free(u);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plugins");
    TCase *tc = tcase_create("plugins");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, refusals_leave_nothing_behind);
    tcase_add_test(tc, consistent_hash_routes_by_weight);
    tcase_add_test(tc, plugin_settings_and_names);
    tcase_add_test(tc, backend_users);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
