/*
 * check_auth.c - unit tests for SASL response parsing, logins, vhost
 * permissions and the loopback rule for guest.
 *
 * The SASL parser reads what an unauthenticated peer sends, so it gets the
 * malformed-input treatment: truncated at every length, garbage, and
 * oversized values must be refused, never read past.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "conf/conf.h"
#include "net/conn.h"

START_TEST(plain_ok)
{
    static const char r[] = "\0guest\0secret";
    struct wr_str u, p;
    ck_assert_int_eq(wr_sasl_parse(WR_STR("PLAIN"), (struct wr_str){r, sizeof(r) - 1}, &u, &p), 0);
    ck_assert(wr_str_eqc(u, "guest"));
    ck_assert(wr_str_eqc(p, "secret"));
    /* empty user and password parse (and fail at login) */
    ck_assert_int_eq(wr_sasl_parse(WR_STR("PLAIN"), WR_STR("\0\0"), &u, &p), 0);
    ck_assert_uint_eq(u.len, 0);
    ck_assert_uint_eq(p.len, 0);
}
END_TEST

/* Issue 9 item 6: "admin\0guest\0guest" logged in as guest. RabbitMQ 3.10
 * refuses every PLAIN response but NUL user NUL password: an authorization
 * identity, even the user's own, and a third NUL. */
START_TEST(plain_authzid_refused)
{
    static const char *const bad[] = {"admin\0guest\0guest", "guest\0guest\0guest",
                                      "x\0guest\0guest", "\0guest\0guest\0",
                                      "\0guest\0gu\0est", "\0\0\0"};
    static const size_t len[] = {17, 17, 13, 13, 13, 3};
    struct wr_str u, p;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *b = malloc(len[i]); /* exact size: ASan sees a read past it */
        memcpy(b, bad[i], len[i]);
        ck_assert_int_eq(wr_sasl_parse(WR_STR("PLAIN"), (struct wr_str){b, (uint32_t)len[i]}, &u,
                                       &p),
                         WR_EACCESS_REFUSED);
        free(b);
    }
}
END_TEST

START_TEST(plain_truncated_and_garbage)
{
    static const char r[] = "\0guest\0secret";
    struct wr_str u, p;
    /* Every prefix shorter than the second NUL is refused; none reads past. */
    for (size_t n = 0; n <= 6; n++) {
        char *b = malloc(n ? n : 1);
        memcpy(b, r, n);
        ck_assert_int_eq(wr_sasl_parse(WR_STR("PLAIN"), (struct wr_str){b, (uint32_t)n}, &u, &p),
                         WR_EACCESS_REFUSED);
        free(b);
    }
    ck_assert_int_eq(wr_sasl_parse(WR_STR("PLAIN"), WR_STR("no nul bytes at all"), &u, &p),
                     WR_EACCESS_REFUSED);
    ck_assert_int_eq(wr_sasl_parse(WR_STR("CRAM-MD5"), WR_STR("x"), &u, &p), WR_ENOT_IMPLEMENTED);
    ck_assert_int_eq(wr_sasl_parse(WR_STR(""), WR_STR(""), &u, &p), WR_ENOT_IMPLEMENTED);
}
END_TEST

START_TEST(amqplain)
{
    /* LOGIN S "guest", PASSWORD S "guest" as a table body */
    static const uint8_t t[] = {5, 'L', 'O', 'G', 'I', 'N', 'S', 0, 0, 0, 5, 'g', 'u', 'e',
                                's', 't', 8, 'P', 'A', 'S', 'S', 'W', 'O', 'R', 'D', 'S', 0, 0,
                                0,   3, 'p', 'w', 'd'};
    struct wr_str u, p;
    ck_assert_int_eq(wr_sasl_parse(WR_STR("AMQPLAIN"), (struct wr_str){(const char *)t, sizeof(t)},
                                   &u, &p),
                     0);
    ck_assert(wr_str_eqc(u, "guest"));
    ck_assert(wr_str_eqc(p, "pwd"));
    for (size_t n = 0; n < sizeof(t); n++)
        ck_assert_int_eq(wr_sasl_parse(WR_STR("AMQPLAIN"),
                                       (struct wr_str){(const char *)t, (uint32_t)n}, &u, &p),
                         WR_EACCESS_REFUSED);
    /* LOGIN with the wrong type */
    uint8_t bad[sizeof(t)];
    memcpy(bad, t, sizeof(t));
    bad[6] = 'I';
    ck_assert_int_eq(wr_sasl_parse(WR_STR("AMQPLAIN"),
                                   (struct wr_str){(const char *)bad, sizeof(bad)}, &u, &p),
                     WR_EACCESS_REFUSED);
    /* an oversized inner length */
    memcpy(bad, t, sizeof(t));
    bad[7] = 0x7f;
    ck_assert_int_eq(wr_sasl_parse(WR_STR("AMQPLAIN"),
                                   (struct wr_str){(const char *)bad, sizeof(bad)}, &u, &p),
                     WR_EACCESS_REFUSED);
}
END_TEST

START_TEST(logins)
{
    struct wr_users *us = wr_users_new();
    struct wr_user *x = NULL;
    struct wr_errbuf e;
    uint64_t g;

    ck_assert_int_eq(wr_users_put_password(us, WR_STR("guest"), WR_STR("guest"),
                                           WR_STR("administrator"), &e), 0);
    ck_assert_int_eq(wr_users_login(us, WR_STR("guest"), WR_STR("guest"), &x, &e), 0);
    ck_assert_ptr_eq(x, wr_users_get(us, WR_STR("guest")));
    ck_assert_int_eq(wr_users_login(us, WR_STR("guest"), WR_STR("guesT"), &x, &e),
                     WR_EACCESS_REFUSED);
    ck_assert_int_eq(wr_users_login(us, WR_STR("guest"), WR_STR(""), &x, &e), WR_EACCESS_REFUSED);
    ck_assert_int_eq(wr_users_login(us, WR_STR("nobody"), WR_STR("guest"), &x, &e),
                     WR_EACCESS_REFUSED);
    ck_assert(strstr(e.text, "ACCESS_REFUSED") == e.text);
    /* replacing a user changes the password and bumps the generation */
    g = wr_users_generation(us);
    ck_assert_int_eq(wr_users_put_password(us, WR_STR("guest"), WR_STR("new"), WR_STR(""), &e), 0);
    ck_assert_uint_gt(wr_users_generation(us), g);
    ck_assert_int_eq(wr_users_login(us, WR_STR("guest"), WR_STR("guest"), &x, &e),
                     WR_EACCESS_REFUSED);
    ck_assert_int_eq(wr_users_login(us, WR_STR("guest"), WR_STR("new"), &x, &e), 0);
    /* a hash exported by RabbitMQ 3.10 (tests/unit/check_passwd.c has its
     * provenance): alice / s3cret */
    ck_assert_int_eq(wr_users_put_hash(us, WR_STR("empty"), WR_PASSWD_SHA256, WR_STR(""),
                                       WR_STR(""), &e), 0);
    ck_assert_int_eq(wr_users_login(us, WR_STR("empty"), WR_STR(""), &x, &e), WR_EACCESS_REFUSED);
    ck_assert_int_eq(wr_users_put_hash(us, WR_STR("bad"), WR_PASSWD_SHA256, WR_STR("***"),
                                       WR_STR(""), &e), WR_EPRECONDITION_FAILED);
    ck_assert_ptr_null(wr_users_get(us, WR_STR("bad")));
    ck_assert_uint_eq(wr_users_count(us), 2);
    ck_assert_int_eq(wr_users_delete(us, WR_STR("empty")), 0);
    ck_assert_int_eq(wr_users_delete(us, WR_STR("empty")), WR_ENOT_FOUND);
    wr_users_free(us);
}
END_TEST

START_TEST(tags)
{
    struct wr_users *us = wr_users_new();
    struct wr_errbuf e;
    struct wr_user *x;
    ck_assert_int_eq(wr_users_put_password(us, WR_STR("u"), WR_STR("p"),
                                           WR_STR("management, impersonator,x-custom"), &e), 0);
    x = wr_users_get(us, WR_STR("u"));
    ck_assert(wr_user_has_tag(x, "management"));
    ck_assert(wr_user_has_tag(x, "impersonator"));
    ck_assert(wr_user_has_tag(x, "x-custom"));
    ck_assert(!wr_user_has_tag(x, "administrator"));
    ck_assert(!wr_user_has_tag(x, "manage"));
    ck_assert(wr_str_eqc(wr_user_tags(x), "management, impersonator,x-custom"));
    wr_users_free(us);
}
END_TEST

START_TEST(permissions)
{
    struct wr_users *us = wr_users_new();
    struct wr_errbuf e;
    const struct wr_vperm *p;
    struct wr_user *x;

    ck_assert_int_eq(wr_users_put_password(us, WR_STR("w"), WR_STR("p"), WR_STR(""), &e), 0);
    x = wr_users_get(us, WR_STR("w"));
    ck_assert_ptr_null(wr_user_vperm(x, WR_STR("/")));
    ck_assert_int_eq(wr_users_set_permissions(us, WR_STR("nobody"), WR_STR("/"), WR_STR(".*"),
                                              WR_STR(".*"), WR_STR(".*"), &e), WR_ENOT_FOUND);
    /* unanchored; "" matches nothing but still grants the vhost */
    ck_assert_int_eq(wr_users_set_permissions(us, WR_STR("w"), WR_STR("/"), WR_STR(""),
                                              WR_STR("^jobs\\."), WR_STR("mid"), &e), 0);
    p = wr_user_vperm(x, WR_STR("/"));
    ck_assert_ptr_nonnull(p);
    ck_assert(!wr_vperm_allows(p, WR_PERM_CONFIGURE, "queue", WR_STR("anything")));
    ck_assert(wr_vperm_allows(p, WR_PERM_WRITE, "queue", WR_STR("jobs.x")));
    ck_assert(!wr_vperm_allows(p, WR_PERM_WRITE, "queue", WR_STR("myjobs.x")));
    ck_assert(wr_vperm_allows(p, WR_PERM_READ, "queue", WR_STR("amid.x")));
    ck_assert(wr_str_eqc(wr_vperm_pattern(p, WR_PERM_WRITE), "^jobs\\."));
    /* a pattern that does not compile changes nothing */
    ck_assert_int_eq(wr_users_set_permissions(us, WR_STR("w"), WR_STR("/"), WR_STR("("),
                                              WR_STR(".*"), WR_STR(".*"), &e),
                     WR_EPRECONDITION_FAILED);
    p = wr_user_vperm(x, WR_STR("/"));
    ck_assert(!wr_vperm_allows(p, WR_PERM_WRITE, "queue", WR_STR("other")));
    ck_assert_int_eq(wr_users_clear_permissions(us, WR_STR("w"), WR_STR("/")), 0);
    ck_assert_ptr_null(wr_user_vperm(x, WR_STR("/")));
    ck_assert_int_eq(wr_users_clear_permissions(us, WR_STR("w"), WR_STR("/")), WR_ENOT_FOUND);
    wr_users_free(us);
}
END_TEST

START_TEST(topic_permissions)
{
    struct wr_users *us = wr_users_new();
    struct wr_errbuf e;
    struct wr_user *x;
    struct wr_str ex = WR_STR("amq.topic");

    ck_assert_int_eq(wr_users_put_password(us, WR_STR("a.b"), WR_STR("p"), WR_STR(""), &e), 0);
    x = wr_users_get(us, WR_STR("a.b"));
    /* no topic permission: allowed */
    ck_assert(wr_user_topic_allows(x, WR_STR("/"), ex, WR_PERM_WRITE, WR_STR("any")));
    ck_assert_int_eq(wr_users_set_topic_permissions(us, WR_STR("a.b"), WR_STR("/"), ex,
                                                    WR_STR("^{username}$"),
                                                    WR_STR("^{vhost}\\."), &e), 0);
    /* plain substitution, no escaping: "a.b" admits "axb" (RabbitMQ) */
    ck_assert(wr_user_topic_allows(x, WR_STR("/"), ex, WR_PERM_WRITE, WR_STR("a.b")));
    ck_assert(wr_user_topic_allows(x, WR_STR("/"), ex, WR_PERM_WRITE, WR_STR("axb")));
    ck_assert(!wr_user_topic_allows(x, WR_STR("/"), ex, WR_PERM_WRITE, WR_STR("a.bc")));
    ck_assert(wr_user_topic_allows(x, WR_STR("/"), ex, WR_PERM_READ, WR_STR("/.x")));
    ck_assert(!wr_user_topic_allows(x, WR_STR("/"), ex, WR_PERM_READ, WR_STR("x")));
    /* other exchanges and vhosts are not concerned */
    ck_assert(wr_user_topic_allows(x, WR_STR("/"), WR_STR("other"), WR_PERM_WRITE, WR_STR("x")));
    ck_assert(wr_user_topic_allows(x, WR_STR("v"), ex, WR_PERM_WRITE, WR_STR("x")));
    ck_assert_int_eq(wr_users_clear_topic_permissions(us, WR_STR("a.b"), WR_STR("/"), NULL), 0);
    ck_assert(wr_user_topic_allows(x, WR_STR("/"), ex, WR_PERM_WRITE, WR_STR("x")));
    wr_users_free(us);
}
END_TEST

START_TEST(loopback_rule)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct wr_conf c;

    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
    ck_assert(wr_sockaddr_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET, "127.45.6.7", &a4.sin_addr);
    ck_assert(wr_sockaddr_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET, "10.1.2.3", &a4.sin_addr);
    ck_assert(!wr_sockaddr_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET, "128.0.0.1", &a4.sin_addr);
    ck_assert(!wr_sockaddr_is_loopback((struct sockaddr *)&a4));
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    ck_assert(wr_sockaddr_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
    ck_assert(wr_sockaddr_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &a6.sin6_addr);
    ck_assert(!wr_sockaddr_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
    ck_assert(!wr_sockaddr_is_loopback((struct sockaddr *)&a6));

    /* guest is a loopback user by default; others are not */
    wr_conf_init(&c);
    ck_assert(wr_conf_is_loopback_user(&c, "guest"));
    ck_assert(!wr_conf_is_loopback_user(&c, "alice"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *t = tcase_create("auth");
    tcase_add_test(t, plain_ok);
    tcase_add_test(t, plain_authzid_refused);
    tcase_add_test(t, plain_truncated_and_garbage);
    tcase_add_test(t, amqplain);
    tcase_add_test(t, logins);
    tcase_add_test(t, tags);
    tcase_add_test(t, permissions);
    tcase_add_test(t, topic_permissions);
    tcase_add_test(t, loopback_rule);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
