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
#include <unistd.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "broker/exchange.h"
#include "broker/msg.h"
#include "broker/publish.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "plugin/plugin.h"
#include "wire/field.h"
#include "wire/methods.gen.h"

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
    /* a plugin reads a queue's figures through queue_info */
    {
        const struct warren_api *api = wr_plugin_api();
        struct warren_queue_info qi = {.size = sizeof qi};
        warren_host *h = b->plugins->v[0];
        ck_assert_int_eq(
            api->queue_info(h, (struct warren_bytes){"/", 1}, (struct warren_bytes){"a", 1}, &qi),
            0);
        ck_assert_uint_eq(qi.ready, 0);
        ck_assert_uint_eq(qi.consumers, 0);
        ck_assert(!qi.durable);
        ck_assert_uint_eq(qi.size, sizeof qi);
        ck_assert_int_eq(api->queue_info(h, (struct warren_bytes){"/", 1},
                                         (struct warren_bytes){"nope", 4}, &qi),
                         -1);
    }
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

/* ---- delayed_message ---- */

/* A message published to `x` with header x-delay = delay (a body naming it). */
static struct wr_msg *delayed_msg(const char *x, int32_t delay, const char *body)
{
    struct wr_basic_props p;
    struct wr_table h = {0};
    struct wr_fv v;
    uint8_t props[256], *hbuf;
    struct wr_wb w = wr_wb_init(props, sizeof props);
    struct wr_msg *m;

    memset(&p, 0, sizeof p);
    v.type = 'I';
    v.v.I = delay;
    ck_assert_int_eq(wr_table_add(&h, WR_STR("x-delay"), v), 0);
    hbuf = wr_props_set_headers(&p, &h);
    ck_assert_ptr_nonnull(hbuf);
    ck_assert_int_eq(wr_basic_props_encode(&w, &p), 0);
    m = wr_msg_new(&b->msgs, wr_str_c(x), WR_STR("k"), props, (uint32_t)(w.p - props), strlen(body),
                   0);
    ck_assert_ptr_nonnull(m);
    memcpy(wr_msg_body(m), body, strlen(body));
    wr_clock_update();
    m->published_ms = wr_now_ms(); /* as a channel stamps it */
    free(hbuf);
    wr_table_free(&h);
    return m;
}

static void run_loop_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

START_TEST(delayed_routes_later_in_due_order)
{
    struct wr_exchange_decl d = {0};
    struct wr_exchange *x = NULL;
    struct wr_publish_result res = {0};
    struct wr_errbuf err;
    struct wr_queue *q;
    struct wr_qent e[4];
    char args[64];
    size_t n = 0;
    const char *t = "x-delayed-type", *direct = "direct";

    b->plugins = wr_plugins_load(b, PLUGINS, "delayed_message", "");
    ck_assert_uint_eq(b->plugins->n, 1);
    /* arguments { x-delayed-type: S "direct" } */
    args[n++] = (char)strlen(t);
    memcpy(args + n, t, strlen(t));
    n += strlen(t);
    args[n++] = 'S';
    args[n++] = 0;
    args[n++] = 0;
    args[n++] = 0;
    args[n++] = (char)strlen(direct);
    memcpy(args + n, direct, strlen(direct));
    n += strlen(direct);
    d.name = WR_STR("dx");
    d.type = WR_STR("x-delayed-message");
    ck_assert_int_eq(wr_vhost_exchange_declare(vh, &d, &x, &err), WR_EPRECONDITION_FAILED);
    d.args = (struct wr_str){args, (uint32_t)n};
    ck_assert_msg(wr_vhost_exchange_declare(vh, &d, &x, &err) == 0, "%s", err.text);
    q = declare_q("dq");
    ck_assert_int_eq(do_bind("dq", "dx", "k", &err), 0);
    /* 60, 20, 40 ms; then one with no delay, routed at once */
    {
        const int delays[] = {60, 20, 40, 0};
        const char *bodies[] = {"60", "20", "40", "0"};
        for (int i = 0; i < 4; i++) {
            struct wr_msg *m = delayed_msg("dx", delays[i], bodies[i]);
            ck_assert_int_eq(wr_vhost_publish(vh, x, m, NULL, &res), 0);
            ck_assert(res.route.taken == (delays[i] > 0));
            wr_msg_unref(m);
        }
    }
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    /* never early (a loaded machine can only make them later) */
    run_loop_ms(10);
    ck_assert_uint_eq(wr_queue_ready(q), 1);
    /* then all, within a deadline */
    for (int waited = 0; wr_queue_ready(q) < 4 && waited < 5000; waited += 10)
        run_loop_ms(10);
    ck_assert_uint_eq(wr_queue_peek(q, e, 4), 4);
    {
        const char *want[] = {"0", "20", "40", "60"};
        for (int i = 0; i < 4; i++) {
            struct wr_fv v;
            ck_assert_mem_eq(wr_msg_body(e[i].m), want[i], strlen(want[i]));
            ck_assert_int_eq(wr_table_get(wr_msg_headers(e[i].m), "x-delay", &v), 1);
            ck_assert_int_eq(v.v.I, -atoi(want[i])); /* negated when delayed */
        }
    }
    /* pending ones go with the exchange (no leak under ASan) */
    {
        struct wr_msg *m = delayed_msg("dx", 100000, "never");
        ck_assert_int_eq(wr_vhost_publish(vh, x, m, NULL, &res), 0);
        wr_msg_unref(m);
    }
    ck_assert_int_eq(wr_vhost_exchange_delete(vh, WR_STR("dx"), false, &err), 0);
    wr_publish_result_free(&res);
}
END_TEST

/* ---- auth_file ---- */

START_TEST(auth_file_backend)
{
    char dir[] = "/tmp/check_plugins-XXXXXX", path[128], settings[200];
    const struct wr_auth_backend *be;
    char tags[64];
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/users", dir);
    f = fopen(path, "w");
    fputs("# test\n"
          "user ann plain:pw management,monitoring\n"
          "vhost ann / ^ann\\. .* -\n"
          "topic ann / amq.topic ^ann\\. -\n",
          f);
    fclose(f);
    snprintf(settings, sizeof settings, "auth_file.path=%s\n", path);
    b->plugins = wr_plugins_load(b, PLUGINS, "auth_file", settings);
    ck_assert_uint_eq(b->plugins->n, 1);
    be = wr_plugins_auth_backend(b->plugins, "file");
    ck_assert_ptr_nonnull(be);
    ck_assert_int_eq(be->login(be->ctx, WR_STR("ann"), WR_STR("pw"), tags, sizeof tags), 1);
    ck_assert_str_eq(tags, "management,monitoring");
    ck_assert_int_eq(be->login(be->ctx, WR_STR("ann"), WR_STR("no"), tags, sizeof tags), 0);
    ck_assert_int_eq(be->login(be->ctx, WR_STR("bob"), WR_STR("pw"), tags, sizeof tags), -1);
    ck_assert(be->vhost(be->ctx, WR_STR("ann"), WR_STR("/")));
    ck_assert(!be->vhost(be->ctx, WR_STR("ann"), WR_STR("other")));
    ck_assert(be->resource(be->ctx, WR_STR("ann"), WR_STR("/"), "queue", WR_STR("ann.q"),
                           WR_PERM_CONFIGURE));
    ck_assert(!be->resource(be->ctx, WR_STR("ann"), WR_STR("/"), "queue", WR_STR("x.q"),
                            WR_PERM_CONFIGURE));
    ck_assert(!be->resource(be->ctx, WR_STR("ann"), WR_STR("/"), "queue", WR_STR("ann.q"),
                            WR_PERM_READ)); /* "-": nothing */
    ck_assert(be->topic(be->ctx, WR_STR("ann"), WR_STR("/"), WR_STR("amq.topic"), WR_STR("ann.k"),
                        WR_PERM_WRITE));
    ck_assert(!be->topic(be->ctx, WR_STR("ann"), WR_STR("/"), WR_STR("amq.topic"), WR_STR("bob.k"),
                         WR_PERM_WRITE));
    ck_assert(be->topic(be->ctx, WR_STR("ann"), WR_STR("/"), WR_STR("other"), WR_STR("bob.k"),
                        WR_PERM_WRITE)); /* no topic line: any key */
    unlink(path);
    /* a bad file refuses the plugin at start (the first copy unloaded
     * first: a plugin is loaded once per process, its statics are one) */
    wr_plugins_free(b->plugins);
    b->plugins = NULL;
    f = fopen(path, "w");
    fputs("user ann nopassword\n", f);
    fclose(f);
    {
        struct wr_plugins *p = wr_plugins_load(b, PLUGINS, "auth_file", settings);
        ck_assert_uint_eq(p->n, 0);
        wr_plugins_free(p);
    }
    unlink(path);
    rmdir(dir);
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
    tcase_add_test(tc, delayed_routes_later_in_due_order);
    tcase_add_test(tc, auth_file_backend);
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
