/*
 * check_service.c - unit tests of what makes warrend a service, beside
 * systemd's protocol (check_sdnotify.c): the log outputs (a file with its
 * own level, reopened after logrotate renames it; a file that cannot be
 * opened changes nothing), the locked pid file, applying a reloaded
 * configuration, and the status dump's number formats.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/pidfile.h"
#include "svc/status.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/check_service.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f) {
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- log outputs ---- */

/* Lines to `path` only (no console, no syslog), at the default level. */
static struct wr_log_outputs to_file(const char *path)
{
    return (struct wr_log_outputs){.level = WR_LOG_INFO,
                                   .file = path,
                                   .file_level = WR_LOG_UNSET,
                                   .console_level = WR_LOG_UNSET,
                                   .syslog_level = WR_LOG_UNSET};
}

START_TEST(test_log_file_levels)
{
    char path[128], why[256];
    snprintf(path, sizeof path, "%s/w.log", dir);
    struct wr_log_outputs o = to_file(path);
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    ck_assert_str_eq(wr_log_file(), path);
    wr_log(WR_LOG_INFO, "one %d", 1);
    wr_log(WR_LOG_DEBUG, "hidden");
    ck_assert(!wr_log_enabled(WR_LOG_DEBUG));
    /* The file's own level wins over the default. */
    o.file_level = WR_LOG_DEBUG;
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    ck_assert(wr_log_enabled(WR_LOG_DEBUG));
    wr_log(WR_LOG_DEBUG, "two");
    o.file_level = WR_LOG_ERROR;
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    wr_log(WR_LOG_WARNING, "hidden");
    wr_log_ctx(WR_LOG_ERROR, "ctx", "three\nforged");
    char *text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 3);
    ck_assert_ptr_nonnull(strstr(text, " info    one 1\n"));
    ck_assert_ptr_nonnull(strstr(text, " debug   two\n"));
    ck_assert_ptr_nonnull(strstr(text, " error   [ctx] three forged\n"));
    ck_assert_ptr_null(strstr(text, "hidden"));
    /* The default level moves the outputs that have none of their own. */
    o.file_level = WR_LOG_UNSET;
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    wr_log_set_level(WR_LOG_ERROR);
    ck_assert(!wr_log_enabled(WR_LOG_WARNING));
    wr_log_set_level(WR_LOG_UNSET); /* ignored */
    ck_assert_int_eq(wr_log_get_level(), WR_LOG_ERROR);
}
END_TEST

/* logrotate's way: rename the file, SIGHUP; lines go to a new file by the
 * old name, and the descriptor number stays the same. */
START_TEST(test_log_reopen)
{
    char path[128], moved[140], why[256];
    snprintf(path, sizeof path, "%s/w.log", dir);
    snprintf(moved, sizeof moved, "%s/w.log.1", dir);
    struct wr_log_outputs o = to_file(path);
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    wr_log(WR_LOG_INFO, "before");
    ck_assert_int_eq(rename(path, moved), 0);
    wr_log(WR_LOG_INFO, "still old");
    ck_assert_int_eq(wr_log_reopen(why, sizeof why), 0);
    wr_log(WR_LOG_INFO, "after");
    ck_assert_ptr_nonnull(strstr(slurp(moved), "still old"));
    ck_assert_ptr_null(strstr(slurp(moved), "after"));
    ck_assert_ptr_nonnull(strstr(slurp(path), "after"));
    /* A directory that went away: the reopen fails, the old file stays. */
    char sub[140], subpath[160];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(subpath, sizeof subpath, "%s/w.log", sub);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    o.file = subpath;
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    ck_assert_int_eq(unlink(subpath), 0);
    ck_assert_int_eq(rmdir(sub), 0);
    ck_assert_int_eq(wr_log_reopen(why, sizeof why), WR_EIO);
    ck_assert_ptr_nonnull(strstr(why, "cannot open the log file"));
    /* A file that cannot be opened changes nothing. */
    o.file = "/nonexistent/dir/w.log";
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), WR_EIO);
    ck_assert_str_eq(wr_log_file(), subpath);
    /* A name longer than any path. */
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    o.file = big;
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), WR_EIO);
    /* No file: nothing to reopen. */
    o.file = "";
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    ck_assert_int_eq(wr_log_reopen(why, sizeof why), 0);
}
END_TEST

/* Lines from two processes appending to one file never mix: each line is
 * one write to an O_APPEND descriptor. */
START_TEST(test_log_single_writes)
{
    char path[128], why[256];
    snprintf(path, sizeof path, "%s/w.log", dir);
    struct wr_log_outputs o = to_file(path);
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    char fill[1500];
    memset(fill, pid ? 'p' : 'c', sizeof fill - 1);
    fill[sizeof fill - 1] = '\0';
    for (int i = 0; i < 200; i++)
        wr_log(WR_LOG_INFO, "%s", fill);
    if (pid == 0)
        _exit(0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    char *text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 400);
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        char *msg = strstr(line, "info    ") + 8;
        ck_assert(msg[0] == 'p' || msg[0] == 'c');
        for (char *p = msg; p < nl; p++)
            ck_assert_int_eq(*p, msg[0]);
        line = nl + 1;
    }
}
END_TEST

/* ---- the pid file ---- */

START_TEST(test_pidfile)
{
    char path[128], why[256], want[32];
    snprintf(path, sizeof path, "%s/w.pid", dir);
    struct wr_pidfile *p = wr_pidfile_open(path, why, sizeof why);
    ck_assert_msg(p != NULL, "%s", why);
    snprintf(want, sizeof want, "%ld\n", (long)getpid());
    ck_assert_str_eq(slurp(path), want);

    /* Another process cannot take it while we hold it, and leaves the
     * number alone. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct wr_pidfile *q = wr_pidfile_open(path, why, sizeof why);
        _exit(q == NULL && strstr(why, "held by a running warrend") != NULL ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_str_eq(slurp(path), want);
    wr_pidfile_remove(p);
    ck_assert_int_ne(access(path, F_OK), 0);

    /* A file left behind (its process died: no lock) is taken over. */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("999999999\n", f);
    fclose(f);
    p = wr_pidfile_open(path, why, sizeof why);
    ck_assert_msg(p != NULL, "%s", why);
    ck_assert_str_eq(slurp(path), want);
    wr_pidfile_remove(p);
    wr_pidfile_remove(NULL);

    /* Where it cannot be. */
    ck_assert_ptr_null(wr_pidfile_open("/nonexistent/dir/w.pid", why, sizeof why));
    ck_assert_ptr_nonnull(strstr(why, "cannot open the pid file"));
    ck_assert_ptr_null(wr_pidfile_open(dir, why, sizeof why)); /* a directory */
}
END_TEST

/* ---- SIGHUP's apply ---- */

START_TEST(test_conf_reload)
{
    struct wr_conf live, fresh;
    unsigned restart;
    char path[128], why[256];

    snprintf(path, sizeof path, "%s/w.log", dir);
    struct wr_log_outputs o = to_file(path);
    ck_assert_int_eq(wr_log_configure(&o, why, sizeof why), 0);
    wr_conf_init(&live);
    wr_conf_init(&fresh);
    ck_assert_uint_eq(wr_conf_reload(&live, &fresh, &restart), 0);
    ck_assert_uint_eq(restart, 0);
    const char *text = "heartbeat = 5\nlog.level = debug\ndata_dir = /elsewhere\n"
                       "default_pass = s3cret\nmax_message_size = 1MiB\n"
                       "default_user_tags.custom = true\n";
    ck_assert_int_eq(wr_conf_parse(&fresh, text, strlen(text), "r.conf", NULL), 0);
    ck_assert_uint_eq(wr_conf_reload(&live, &fresh, &restart), 3);
    ck_assert_uint_eq(restart, 3);
    ck_assert_int_eq(live.heartbeat, 5);
    ck_assert_int_eq(live.log_level, WR_LOG_DEBUG);
    ck_assert_uint_eq(live.max_message_size, 1024 * 1024);
    ck_assert_str_ne(live.data_dir, "/elsewhere"); /* needs a restart */
    ck_assert_str_eq(live.default_pass, "guest");
    char *log = slurp(path);
    ck_assert_ptr_nonnull(strstr(log, "configuration: heartbeat changed from '60' to '5'"));
    ck_assert_ptr_nonnull(strstr(log, "configuration: data_dir changed from"));
    ck_assert_ptr_nonnull(strstr(log, "which needs a restart"));
    ck_assert_ptr_nonnull(
        strstr(log, "default_pass changed from '********' to '********', which needs a restart"));
    ck_assert_ptr_null(strstr(log, "s3cret"));
    ck_assert_ptr_nonnull(strstr(log, "default_user_tags changed"));
}
END_TEST

START_TEST(test_status_formats)
{
    char b[32];
    ck_assert_str_eq(wr_svc_group(b, sizeof b, 0), "0");
    ck_assert_str_eq(wr_svc_group(b, sizeof b, 999), "999");
    ck_assert_str_eq(wr_svc_group(b, sizeof b, 1000), "1,000");
    ck_assert_str_eq(wr_svc_group(b, sizeof b, 412000), "412,000");
    ck_assert_str_eq(wr_svc_group(b, sizeof b, 1000000), "1,000,000");
    ck_assert_str_eq(wr_svc_group(b, sizeof b, UINT64_MAX), "18,446,744,073,709,551,615");
    ck_assert_str_eq(wr_svc_group(b, 6, 1000000), "1,000"); /* cut, terminated */
    ck_assert_str_eq(wr_svc_bytes(b, sizeof b, 512), "512 B");
    ck_assert_str_eq(wr_svc_bytes(b, sizeof b, 1536), "1.5 KiB");
    ck_assert_str_eq(wr_svc_bytes(b, sizeof b, 128u << 20), "128.0 MiB");
    ck_assert_str_eq(wr_svc_bytes(b, sizeof b, UINT64_MAX), "16777216.0 TiB");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_log_file_levels);
    tcase_add_test(tc, test_log_reopen);
    tcase_add_test(tc, test_log_single_writes);
    suite_add_tcase(s, tc);
    tc = tcase_create("process");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pidfile);
    tcase_add_test(tc, test_conf_reload);
    tcase_add_test(tc, test_status_formats);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
