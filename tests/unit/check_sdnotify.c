/*
 * check_sdnotify.c - unit tests of systemd's notify protocol (svc/sdnotify.c).
 *
 * A datagram socket bound here plays systemd: at a path, and in the
 * abstract namespace. The parsers of what systemd passes in the
 * environment ($NOTIFY_SOCKET, $WATCHDOG_USEC, $WATCHDOG_PID) get
 * truncated, oversized and garbage values.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/err.h"
#include "svc/sdnotify.h"

/* A bound datagram socket standing for systemd; `name` is the value
 * NOTIFY_SOCKET would hold. */
static int listen_at(const char *name)
{
    struct sockaddr_un sa;
    socklen_t len;
    struct timeval tv = {2, 0};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(wr_sd_address(name, &sa, &len), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void expect(int fd, const char *want)
{
    char buf[2048];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, want);
}

START_TEST(test_path_socket)
{
    char dir[] = "/tmp/check_sdnotify.XXXXXX", path[128], why[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = listen_at(path);

    ck_assert(!wr_sd_active());
    ck_assert_int_eq(wr_sd_notify("READY=1"), 0); /* no socket: dropped */
    ck_assert_int_eq(wr_sd_open(path, why, sizeof why), 0);
    ck_assert(wr_sd_active());
    ck_assert_int_eq(wr_sd_notify("READY=1"), 0);
    expect(fd, "READY=1");
    ck_assert_int_eq(wr_sd_notifyf("STATUS=recovering: %s of %s messages\nEXTEND_TIMEOUT_USEC=%d",
                                   "412,000", "1,000,000", 30000000),
                     0);
    expect(fd, "STATUS=recovering: 412,000 of 1,000,000 messages\nEXTEND_TIMEOUT_USEC=30000000");
    wr_sd_close();
    ck_assert(!wr_sd_active());
    close(fd);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_abstract_socket)
{
    char name[64], why[256];
    snprintf(name, sizeof name, "@check_sdnotify/%ld", (long)getpid());
    int fd = listen_at(name);
    ck_assert_int_eq(wr_sd_open(name, why, sizeof why), 0);
    ck_assert_int_eq(wr_sd_notify("STOPPING=1"), 0);
    expect(fd, "STOPPING=1");
    /* Nobody listening any more: an error, never a block or a crash. */
    close(fd);
    ck_assert_int_eq(wr_sd_notify("WATCHDOG=1"), WR_EIO);
    wr_sd_close();
}
END_TEST

START_TEST(test_bad_addresses)
{
    struct sockaddr_un sa;
    socklen_t len;
    char why[256], big[sizeof sa.sun_path + 8];

    ck_assert_int_eq(wr_sd_address(NULL, &sa, &len), WR_ESYNTAX);
    ck_assert_int_eq(wr_sd_address("", &sa, &len), WR_ESYNTAX);
    ck_assert_int_eq(wr_sd_address("/", &sa, &len), WR_ESYNTAX);
    ck_assert_int_eq(wr_sd_address("@", &sa, &len), WR_ESYNTAX);
    ck_assert_int_eq(wr_sd_address("run/notify", &sa, &len), WR_ESYNTAX);
    ck_assert_int_eq(wr_sd_address("x", &sa, &len), WR_ESYNTAX);
    /* Too long for sun_path: a path needs room for its NUL, an abstract
     * name does not. */
    memset(big, 'a', sizeof big);
    big[0] = '/';
    big[sizeof sa.sun_path] = '\0';
    ck_assert_int_eq(wr_sd_address(big, &sa, &len), WR_ESYNTAX);
    big[sizeof sa.sun_path - 1] = '\0';
    ck_assert_int_eq(wr_sd_address(big, &sa, &len), 0);
    big[0] = '@';
    big[sizeof sa.sun_path - 1] = 'a';
    big[sizeof sa.sun_path] = '\0';
    ck_assert_int_eq(wr_sd_address(big, &sa, &len), 0);
    ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + sizeof sa.sun_path);
    big[sizeof sa.sun_path] = 'a';
    big[sizeof sa.sun_path + 1] = '\0';
    ck_assert_int_eq(wr_sd_address(big, &sa, &len), WR_ESYNTAX);

    /* wr_sd_open refuses them with a reason, and stays inactive. */
    ck_assert_int_eq(wr_sd_open("relative/path", why, sizeof why), WR_ESYNTAX);
    ck_assert_ptr_nonnull(strstr(why, "NOTIFY_SOCKET=relative/path"));
    ck_assert(!wr_sd_active());
    ck_assert_int_eq(wr_sd_open("", why, sizeof why), 0);
    ck_assert(!wr_sd_active());
    /* A path where nobody listens: opening works, sending fails. */
    ck_assert_int_eq(wr_sd_open("/nonexistent/notify", why, sizeof why), 0);
    ck_assert_int_eq(wr_sd_notify("READY=1"), WR_EIO);
    wr_sd_close();
}
END_TEST

START_TEST(test_watchdog_env)
{
    ck_assert_uint_eq(wr_sd_watchdog_usec("30000000", NULL, 42), 30000000u);
    ck_assert_uint_eq(wr_sd_watchdog_usec("30000000", "42", 42), 30000000u);
    ck_assert_uint_eq(wr_sd_watchdog_usec("30000000", "43", 42), 0); /* another's */
    ck_assert_uint_eq(wr_sd_watchdog_usec(NULL, NULL, 42), 0);
    ck_assert_uint_eq(wr_sd_watchdog_usec("18446744073709551615", NULL, 42), UINT64_MAX);
    static const char *const bad_usec[] = {
        "",
        "0",
        "-1",
        "+5",
        " 5",
        "5 ",
        "5s",
        "0x10",
        "1e6",
        "18446744073709551616",
        "99999999999999999999999",
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad_usec / sizeof bad_usec[0]; i++)
        ck_assert_msg(wr_sd_watchdog_usec(bad_usec[i], NULL, 42) == 0, "accepted '%s'",
                      bad_usec[i]);
    static const char *const bad_pid[] = {"", "-42", "42x", "4294967338", "0x2a", " 42"};
    for (size_t i = 0; i < sizeof bad_pid / sizeof bad_pid[0]; i++)
        ck_assert_msg(wr_sd_watchdog_usec("1000", bad_pid[i], 42) == 0, "accepted pid '%s'",
                      bad_pid[i]);
    /* Every prefix of a good value is a number or refused, never a crash. */
    const char *v = "123456789";
    for (size_t cut = 0; cut <= strlen(v); cut++) {
        char b[16];
        memcpy(b, v, cut);
        b[cut] = '\0';
        (void)wr_sd_watchdog_usec(b, b, 42);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sdnotify");
    TCase *tc = tcase_create("notify");
    tcase_add_test(tc, test_path_socket);
    tcase_add_test(tc, test_abstract_socket);
    tcase_add_test(tc, test_bad_addresses);
    tcase_add_test(tc, test_watchdog_env);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
