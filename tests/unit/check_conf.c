/*
 * check_conf.c - unit tests of the settings table and the warren.conf parser.
 *
 * Most tests walk the settings table rather than name settings, so a new row
 * is covered without a new test: its default must parse, print back the
 * same, respect its bounds, and appear in etc/warren.conf and in
 * warren.conf(5). The parser tests feed it well-formed files, every kind of
 * error (each must name file and line), and hostile input: truncations of
 * a valid file at every byte, oversized lines and files, NUL bytes, and
 * pseudo-random garbage.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/unknown.h"
#include "core/err.h"

#ifndef WR_TEST_SRCDIR
#define WR_TEST_SRCDIR "."
#endif
#ifndef WR_TEST_BUILDDIR
#define WR_TEST_BUILDDIR "."
#endif

static struct wr_conf conf;
static struct wr_conf_error err;

static void setup(void)
{
    wr_conf_init(&conf);
    memset(&err, 0, sizeof err);
}

static int parse(const char *text)
{
    return wr_conf_parse(&conf, text, strlen(text), "test.conf", &err);
}

static void fmt(const struct wr_conf *c, const char *name, char *out, size_t cap)
{
    const struct wr_conf_setting *s = wr_conf_find(name);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wr_conf_format(c, s, out, cap), 0);
}

/* Read a whole file into a NUL-terminated malloc'd buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* ---- defaults and the table ---- */

START_TEST(test_defaults)
{
    ck_assert_int_eq(conf.amqp_port, 5672);
    ck_assert_str_eq(conf.bind_ip, "");
    ck_assert_int_eq(conf.mgmt_port, 15672);
    ck_assert_int_eq(conf.connection_max, -1);
    ck_assert_uint_eq(conf.auth_mechanisms.n, 2);
    ck_assert_uint_eq(conf.ssl_listeners.n, 0);
    ck_assert_uint_eq(conf.ssl.versions.n, 2);
    ck_assert_str_eq(conf.ssl.verify, "verify_none");
    ck_assert_int_eq(conf.log_level, WR_LOG_INFO);
    ck_assert_int_eq(conf.channel_max, 2047);
    ck_assert_int_eq(conf.frame_max, 131072);
    ck_assert_int_eq(conf.heartbeat, 60);
    ck_assert_int_eq(conf.handshake_timeout_ms, 10000);
    ck_assert(conf.mem_high_watermark > 0.399 && conf.mem_high_watermark < 0.401);
    ck_assert_uint_eq(conf.disk_free_limit, 50000000u);
    ck_assert_int_eq(conf.fsync_interval_ms, 200);
    ck_assert_str_eq(conf.default_user, "guest");
    ck_assert_str_eq(conf.default_pass, "guest");
    ck_assert_str_eq(conf.loopback_users, "guest");
    ck_assert_int_eq(wr_conf_check(&conf, &err), 0);
}
END_TEST

START_TEST(test_table_rows)
{
    size_t n;
    const struct wr_conf_setting *s = wr_conf_settings(&n);
    ck_assert_uint_gt(n, 10);
    for (size_t i = 0; i < n; i++) {
        char v[2048], v2[2048];
        ck_assert_msg(s[i].help && *s[i].help, "%s has no help", s[i].name);
        ck_assert_ptr_eq(wr_conf_find(s[i].name), &s[i]);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(s[i].name, s[j].name);

        /* The default text parses, and prints back to a value that parses
         * to the same thing. */
        ck_assert_msg(wr_conf_set(&conf, s[i].name, s[i].def, &err) == 0, "%s default: %s",
                      s[i].name, err.msg);
        ck_assert_int_eq(wr_conf_format(&conf, &s[i], v, sizeof v), 0);
        ck_assert_int_eq(wr_conf_set(&conf, s[i].name, v, &err), 0);
        ck_assert_int_eq(wr_conf_format(&conf, &s[i], v2, sizeof v2), 0);
        ck_assert_str_eq(v, v2);

        /* Rejections leave the value alone and say which setting. */
        const char *bad =
            s[i].type == WR_CONF_STRING || s[i].type == WR_CONF_LIST ? "bad\x01value" : "garbage";
        ck_assert_int_eq(wr_conf_set(&conf, s[i].name, bad, &err), WR_ESYNTAX);
        ck_assert_msg(strstr(err.msg, s[i].name) != NULL, "%s", err.msg);
        ck_assert_int_eq(wr_conf_format(&conf, &s[i], v2, sizeof v2), 0);
        ck_assert_str_eq(v, v2);

        if (s[i].type == WR_CONF_INT) {
            char num[32];
            snprintf(num, sizeof num, "%lld", (long long)s[i].imin);
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, num, &err), 0);
            snprintf(num, sizeof num, "%lld", (long long)s[i].imax);
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, num, &err), 0);
            snprintf(num, sizeof num, "%lld", (long long)s[i].imin - 1);
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, num, &err), WR_ESYNTAX);
            ck_assert_msg(strstr(err.msg, "out of range") != NULL, "%s", err.msg);
            snprintf(num, sizeof num, "%lld", (long long)s[i].imax + 1);
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, num, &err), WR_ESYNTAX);
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, "99999999999999999999999", &err),
                             WR_ESYNTAX);
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, " 1", &err), WR_ESYNTAX);
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, "+1", &err), WR_ESYNTAX);
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, "1x", &err), WR_ESYNTAX);
        }
        if (s[i].type == WR_CONF_LIST) {
            /* An item line: the name after the prefix must be a word. */
            char key[128], big[200];
            snprintf(key, sizeof key, "%s.", s[i].name);
            ck_assert_int_eq(wr_conf_set(&conf, key, "x", &err), WR_ESYNTAX);
            snprintf(key, sizeof key, "%s.a b", s[i].name);
            ck_assert_int_eq(wr_conf_set(&conf, key, "x", &err), WR_ESYNTAX);
            snprintf(key, sizeof key, "%s.%s", s[i].name, "name-that-is-far-too-long-for-it");
            ck_assert_int_eq(wr_conf_set(&conf, key, "x", &err), WR_ESYNTAX);
            memset(big, 'a', sizeof big - 1);
            big[sizeof big - 1] = '\0';
            snprintf(key, sizeof key, "%s.1", s[i].name);
            ck_assert_int_eq(wr_conf_set(&conf, key, big, &err), WR_ESYNTAX);
            ck_assert_msg(strstr(err.msg, "too long") != NULL, "%s", err.msg);
        }
        if (s[i].type == WR_CONF_STRING) {
            char big[4096];
            ck_assert_uint_lt(s[i].size, sizeof big);
            memset(big, 'a', s[i].size);
            big[s[i].size] = '\0';
            ck_assert_int_eq(wr_conf_set(&conf, s[i].name, big, &err), WR_ESYNTAX);
            ck_assert_msg(strstr(err.msg, "too long") != NULL, "%s", err.msg);
        }
    }
}
END_TEST

START_TEST(test_unknown_setting)
{
    ck_assert_ptr_null(wr_conf_find("no.such.setting"));
    ck_assert_int_eq(wr_conf_set(&conf, "no.such.setting", "1", &err), WR_ESYNTAX);
    ck_assert_str_eq(err.msg, "no.such.setting: unknown setting");
}
END_TEST

/* ---- typed values ---- */

START_TEST(test_sizes)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {
        {"0", 0},
        {"1000", 1000},
        {"50MB", 50000000},
        {"50mb", 50000000},
        {"1GB", 1000000000},
        {"1GiB", 1073741824},
        {"1G", 1073741824},
        {"10 kB", 10000},
        {"5k", 5120},
        {"3MiB", 3145728},
        {"2TB", UINT64_C(2000000000000)},
        {"7b", 7},
    };
    static const char *const bad[] = {
        "",
        "MB",
        "1.5GB",
        "50XB",
        "-1",
        "1 G B",
        "18446744073709551616",
        "2000000TB",
        "1152921504606846977",
        "0x10",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(wr_conf_set(&conf, "disk_free_limit.absolute", ok[i].text, &err) == 0,
                      "%s: %s", ok[i].text, err.msg);
        ck_assert_uint_eq(conf.disk_free_limit, ok[i].bytes);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(wr_conf_set(&conf, "disk_free_limit.absolute", bad[i], &err) < 0,
                      "accepted '%s'", bad[i]);

    char v[64];
    ck_assert_int_eq(wr_conf_set(&conf, "disk_free_limit.absolute", "1GiB", &err), 0);
    fmt(&conf, "disk_free_limit.absolute", v, sizeof v);
    ck_assert_str_eq(v, "1GiB");
    ck_assert_int_eq(wr_conf_set(&conf, "disk_free_limit.absolute", "123", &err), 0);
    fmt(&conf, "disk_free_limit.absolute", v, sizeof v);
    ck_assert_str_eq(v, "123");
    /* A buffer too small is reported, not overrun. */
    ck_assert_int_eq(wr_conf_format(&conf, wr_conf_find("disk_free_limit.absolute"), v, 2),
                     WR_ENOSPC);
}
END_TEST

START_TEST(test_doubles)
{
    const char *name = "vm_memory_high_watermark.relative";
    ck_assert_int_eq(wr_conf_set(&conf, name, "0.6", &err), 0);
    ck_assert(conf.mem_high_watermark > 0.599 && conf.mem_high_watermark < 0.601);
    ck_assert_int_eq(wr_conf_set(&conf, name, "1", &err), 0);
    ck_assert_int_eq(wr_conf_set(&conf, name, "0", &err), 0);
    ck_assert_int_eq(wr_conf_set(&conf, name, "4e-1", &err), 0);
    static const char *const bad[] = {"1.1",  "-0.1", "nan", "inf",  "0x1p-2",
                                      "0.4x", "",     ".",   "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(wr_conf_set(&conf, name, bad[i], &err) < 0, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_log_level)
{
    ck_assert_int_eq(wr_conf_set(&conf, "log.level", "debug", &err), 0);
    ck_assert_int_eq(conf.log_level, WR_LOG_DEBUG);
    ck_assert_int_eq(wr_conf_set(&conf, "log.level", "WARN", &err), 0);
    ck_assert_int_eq(conf.log_level, WR_LOG_WARNING);
    ck_assert_int_eq(wr_conf_set(&conf, "log.level", "verbose", &err), WR_ESYNTAX);
    ck_assert_int_eq(conf.log_level, WR_LOG_WARNING);
}
END_TEST

START_TEST(test_strings)
{
    ck_assert_int_eq(wr_conf_set(&conf, "listeners.tcp.ip", "::1", &err), 0);
    ck_assert_int_eq(wr_conf_set(&conf, "listeners.tcp.ip", "0.0.0.0", &err), 0);
    ck_assert_int_eq(wr_conf_set(&conf, "listeners.tcp.ip", "localhost", &err), WR_ESYNTAX);
    ck_assert_int_eq(wr_conf_set(&conf, "listeners.tcp.ip", "1.2.3.4.5", &err), WR_ESYNTAX);
    ck_assert_int_eq(wr_conf_set(&conf, "data_dir", "", &err), WR_ESYNTAX);
    ck_assert_int_eq(wr_conf_set(&conf, "default_user", "a,b", &err), WR_ESYNTAX);
    ck_assert_int_eq(wr_conf_set(&conf, "default_pass", "p#ss word", &err), 0);
    ck_assert_str_eq(conf.default_pass, "p#ss word");
    ck_assert_int_eq(wr_conf_set(&conf, "loopback_users", "a,,b", &err), WR_ESYNTAX);
    ck_assert_int_eq(wr_conf_set(&conf, "loopback_users", "a, ", &err), WR_ESYNTAX);
}
END_TEST

START_TEST(test_loopback_users)
{
    ck_assert(wr_conf_is_loopback_user(&conf, "guest"));
    ck_assert(!wr_conf_is_loopback_user(&conf, "gues"));
    ck_assert(!wr_conf_is_loopback_user(&conf, "admin"));
    ck_assert_int_eq(wr_conf_set(&conf, "loopback_users", "alice, bob ,carol", &err), 0);
    ck_assert(wr_conf_is_loopback_user(&conf, "alice"));
    ck_assert(wr_conf_is_loopback_user(&conf, "bob"));
    ck_assert(wr_conf_is_loopback_user(&conf, "carol"));
    ck_assert(!wr_conf_is_loopback_user(&conf, "guest"));
    ck_assert_int_eq(wr_conf_set(&conf, "loopback_users", "none", &err), 0);
    ck_assert(!wr_conf_is_loopback_user(&conf, "guest"));
    ck_assert(!wr_conf_is_loopback_user(&conf, "none"));
}
END_TEST

/* The default user's settings in rabbitmq.conf's form: one boolean line
 * per tag (any word is a tag), patterns that may be empty, and
 * load_definitions, which is empty unless set. */
START_TEST(test_default_user_settings)
{
    char tags[256], out[4096];
    FILE *f;

    ck_assert_str_eq(conf.default_vhost, "/");
    ck_assert_str_eq(conf.default_perm_configure, ".*");
    ck_assert_str_eq(conf.load_definitions, "");
    wr_conf_default_tags(&conf, tags, sizeof tags);
    ck_assert_str_eq(tags, "administrator");

    ck_assert_int_eq(parse("default_user_tags.administrator = false\n"
                           "default_user_tags.monitoring = true\n"
                           "default_user_tags.custom-1 = true\n"
                           "default_user_tags.x.y = true\n"
                           "default_user_tags.gone = true\n"
                           "default_user_tags.gone = false\n"
                           "default_user_tags.policymaker = true\n"),
                     0);
    wr_conf_default_tags(&conf, tags, sizeof tags);
    ck_assert_str_eq(tags, "monitoring,policymaker,custom-1,x.y");
    ck_assert_int_eq(parse("default_user_tags.x.y = false\ndefault_user_tags.custom-1 = false\n"),
                     0);
    wr_conf_default_tags(&conf, tags, sizeof tags);
    ck_assert_str_eq(tags, "monitoring,policymaker");
    ck_assert_int_eq(parse("default_user_tags.other = true\n"), 0);

    /* Printed as they are written, and the print parses back. */
    f = fmemopen(out, sizeof out, "w");
    ck_assert_ptr_nonnull(f);
    wr_conf_print(&conf, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(out, "\ndefault_user_tags.monitoring = true\n"));
    ck_assert_ptr_nonnull(strstr(out, "\ndefault_user_tags.administrator = false\n"));
    ck_assert_ptr_nonnull(strstr(out, "\ndefault_user_tags.other = true\n"));
    {
        struct wr_conf again;
        wr_conf_init(&again);
        ck_assert_msg(wr_conf_parse(&again, out, strlen(out), "printed", &err) == 0, "%s", err.msg);
        char t2[256];
        wr_conf_default_tags(&again, t2, sizeof t2);
        wr_conf_default_tags(&conf, tags, sizeof tags);
        ck_assert_str_eq(t2, tags);
        ck_assert_str_eq(t2, "monitoring,policymaker,other");
    }

    ck_assert_int_eq(parse("default_user_tags.monitoring = yes\n"), WR_ESYNTAX);
    ck_assert_str_eq(err.msg, "test.conf:1: default_user_tags.monitoring: invalid value 'yes': "
                              "not true or false");
    ck_assert_int_eq(parse("default_user_tags.custom = 1\n"), WR_ESYNTAX);
    ck_assert_str_eq(err.msg,
                     "test.conf:1: default_user_tags.custom: invalid value '1': not true or false");
    ck_assert_int_eq(parse("default_user_tags. = true\n"), WR_ESYNTAX);

    /* Empty values: allowed where "" means something, refused elsewhere. */
    ck_assert_int_eq(parse("load_definitions = /x.json\nload_definitions =\n"), 0);
    ck_assert_str_eq(conf.load_definitions, "");
    ck_assert_int_eq(parse("default_permissions.read =   \n"), 0);
    ck_assert_str_eq(conf.default_perm_read, "");
    ck_assert_int_eq(parse("default_vhost =\n"), WR_ESYNTAX);
    ck_assert_str_eq(err.msg, "test.conf:1: default_vhost: missing value");
    ck_assert_int_eq(parse("default_vhost = prod\nload_definitions = /etc/warren/defs.json\n"), 0);
    ck_assert_str_eq(conf.default_vhost, "prod");
    ck_assert_str_eq(conf.load_definitions, "/etc/warren/defs.json");
}
END_TEST

START_TEST(test_check_ports)
{
    ck_assert_int_eq(wr_conf_set(&conf, "management.tcp.port", "5672", &err), 0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), WR_ESYNTAX);
    ck_assert_msg(strstr(err.msg, "management.tcp.port") != NULL, "%s", err.msg);
    ck_assert_int_eq(wr_conf_set(&conf, "management.tcp.port", "0", &err), 0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), 0);
}
END_TEST

/* ---- the parser ---- */

START_TEST(test_parse_file)
{
    const char *text = "\xEF\xBB\xBF# a comment\n"
                       "\n"
                       "   # an indented comment\n"
                       "listeners.tcp.default = 5673\r\n"
                       "heartbeat=30\n"
                       "\tframe_max\t=\t8192   \n"
                       "default_pass = a # b\n"
                       "channel_max = 10\n"
                       "channel_max = 20"; /* no final newline; later line wins */
    ck_assert_msg(parse(text) == 0, "%s", err.msg);
    ck_assert_int_eq(conf.amqp_port, 5673);
    ck_assert_int_eq(conf.heartbeat, 30);
    ck_assert_int_eq(conf.frame_max, 8192);
    ck_assert_str_eq(conf.default_pass, "a # b");
    ck_assert_int_eq(conf.channel_max, 20);
    ck_assert_int_eq(conf.mgmt_port, 15672); /* untouched */
}
END_TEST

/* rabbitmq.conf's IP:PORT form of a listener. */
START_TEST(test_listener_ip_port)
{
    ck_assert_msg(parse("listeners.tcp.default = 127.0.0.2:5680\n") == 0, "%s", err.msg);
    ck_assert_int_eq(conf.amqp_port, 5680);
    ck_assert_str_eq(conf.bind_ip, "127.0.0.2");
    ck_assert_msg(parse("listeners.tcp.default = [::1]:5681\n") == 0, "%s", err.msg);
    ck_assert_int_eq(conf.amqp_port, 5681);
    ck_assert_str_eq(conf.bind_ip, "::1");
    ck_assert_msg(parse("listeners.tcp.default = ::1:5682\n") == 0, "%s", err.msg);
    ck_assert_str_eq(conf.bind_ip, "::1");
    ck_assert_int_eq(conf.amqp_port, 5682);
    ck_assert_int_ne(parse("listeners.tcp.default = :5672\n"), 0);
    ck_assert_int_ne(parse("listeners.tcp.default = host.example:5672\n"), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "listeners.tcp.default"));
    ck_assert_int_ne(parse("listeners.tcp.default = 127.0.0.1:0\n"), 0);
    ck_assert_int_ne(parse("listeners.tcp.default = 127.0.0.1:\n"), 0);
    ck_assert_int_ne(parse("listeners.tcp.default = []:1\n"), 0);
}
END_TEST

/* rabbitmq.conf's lists: PREFIX.NAME lines replace the built-in list, a
 * repeated NAME replaces its entry, PREFIX = none empties it. */
START_TEST(test_lists)
{
    ck_assert(!conf.auth_mechanisms.set);
    ck_assert_msg(parse("auth_mechanisms.1 = EXTERNAL\n") == 0, "%s", err.msg);
    ck_assert_uint_eq(conf.auth_mechanisms.n, 1);
    ck_assert_str_eq(conf.auth_mechanisms.item[0].value, "EXTERNAL");
    ck_assert(wr_conf_list_has(&conf.auth_mechanisms, "EXTERNAL"));
    ck_assert(!wr_conf_list_has(&conf.auth_mechanisms, "PLAIN"));
    ck_assert_msg(parse("auth_mechanisms.2 = PLAIN\nauth_mechanisms.1 = AMQPLAIN\n") == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(conf.auth_mechanisms.n, 2);
    ck_assert_str_eq(conf.auth_mechanisms.item[0].value, "AMQPLAIN");
    ck_assert_str_eq(conf.auth_mechanisms.item[1].value, "PLAIN");
    ck_assert_int_ne(parse("auth_mechanisms.3 = CRAM-MD5\n"), 0);
    ck_assert_msg(strstr(err.msg, "test.conf:1: auth_mechanisms.3: invalid value 'CRAM-MD5'") ==
                      err.msg,
                  "%s", err.msg);
    ck_assert_uint_eq(conf.auth_mechanisms.n, 2);

    /* Listeners: names, none, and the default's fate. */
    ck_assert(!conf.amqp_default_set && !conf.tcp_listeners.set);
    ck_assert_msg(parse("listeners.tcp.local = 127.0.0.1:5673\nlisteners.tcp.v6 = [::1]:5673\n"
                        "listeners.ssl.default = 5671\n") == 0,
                  "%s", err.msg);
    ck_assert_uint_eq(conf.tcp_listeners.n, 2);
    ck_assert(conf.tcp_listeners.set && !conf.amqp_default_set);
    ck_assert_str_eq(conf.tcp_listeners.item[1].name, "v6");
    ck_assert_str_eq(conf.ssl_listeners.item[0].value, "5671");
    ck_assert_msg(parse("listeners.tcp.default = 5672\n") == 0, "%s", err.msg);
    ck_assert(conf.amqp_default_set);
    ck_assert_msg(parse("listeners.tcp = none\n") == 0, "%s", err.msg);
    ck_assert_uint_eq(conf.tcp_listeners.n, 0);
    ck_assert(conf.tcp_listeners.set);
    ck_assert_int_ne(parse("listeners.tcp.x = host:5672\n"), 0);
    ck_assert_int_ne(parse("listeners.ssl.x = 0\n"), 0);

    /* Too many entries. */
    for (int i = 0; i < WR_CONF_LIST_MAX; i++) {
        char line[64];
        snprintf(line, sizeof line, "ssl_options.ciphers.c%d = TLS_AES_128_GCM_SHA256\n", i);
        ck_assert_int_eq(parse(line), 0);
    }
    ck_assert_int_ne(parse("ssl_options.ciphers.extra = TLS_AES_128_GCM_SHA256\n"), 0);
    ck_assert_msg(strstr(err.msg, "too many entries") != NULL, "%s", err.msg);
    ck_assert_int_eq(parse("ssl_options.ciphers.c0 = ECDHE-RSA-AES128-GCM-SHA256\n"), 0);
    ck_assert_int_ne(parse("ssl_options.ciphers.1 = AES128;rm\n"), 0);

    /* TLS versions: only 1.2 and 1.3. */
    ck_assert_int_eq(parse("ssl_options.versions.1 = tlsv1.3\n"), 0);
    ck_assert_uint_eq(conf.ssl.versions.n, 1);
    ck_assert_int_ne(parse("ssl_options.versions.2 = tlsv1.1\n"), 0);
    ck_assert_msg(strstr(err.msg, "insecure") != NULL, "%s", err.msg);
    ck_assert_int_ne(parse("management.ssl.versions.1 = tlsv1\n"), 0);

    /* The row takes the whole list too, and prints it back. */
    char v[512];
    ck_assert_int_eq(wr_conf_set(&conf, "auth_mechanisms", "PLAIN  EXTERNAL", &err), 0);
    fmt(&conf, "auth_mechanisms", v, sizeof v);
    ck_assert_str_eq(v, "PLAIN EXTERNAL");
    ck_assert_int_ne(wr_conf_set(&conf, "auth_mechanisms", "PLAIN NOPE", &err), 0);
    fmt(&conf, "auth_mechanisms", v, sizeof v);
    ck_assert_str_eq(v, "PLAIN EXTERNAL");
}
END_TEST

START_TEST(test_parse_listener)
{
    static const struct {
        const char *text, *ip;
        int port;
    } ok[] = {
        {"5672", "", 5672},          {"127.0.0.1:1", "127.0.0.1", 1},
        {"[::1]:5671", "::1", 5671}, {"::1:5671", "::1", 5671},
        {"[::]:65535", "::", 65535}, {"0.0.0.0:5672", "0.0.0.0", 5672},
    };
    static const char *const bad[] = {
        "",
        ":",
        "0",
        "65536",
        "99999999999999999999",
        "-1",
        "+5672",
        "5672 ",
        " 5672",
        "1:2:3",
        "127.0.0.1:",
        ":5672",
        "[]:5672",
        "[::1]",
        "host.example:5672",
        "127.0.0.1:0x10",
        "[::1:5672",
        "127.0.0.1:5672\n",
    };
    char ip[64], big[300];
    int port;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *why = wr_conf_parse_listener(ok[i].text, ip, &port);
        ck_assert_msg(why == NULL, "%s: %s", ok[i].text, why);
        ck_assert_str_eq(ip, ok[i].ip);
        ck_assert_int_eq(port, ok[i].port);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(wr_conf_parse_listener(bad[i], ip, &port) != NULL, "%s", bad[i]);
    memset(big, '1', sizeof big - 6);
    memcpy(big + sizeof big - 6, ":5672", 6);
    ck_assert_ptr_nonnull(wr_conf_parse_listener(big, ip, &port));
    /* every truncation of a good one is refused or shorter-but-valid */
    const char *good = "[2001:db8::1]:5671";
    for (size_t n = 0; n < strlen(good); n++) {
        char t[64];
        memcpy(t, good, n);
        t[n] = '\0';
        (void)wr_conf_parse_listener(t, ip, &port); /* must not crash or overrun */
    }
}
END_TEST

/* Settings that only make sense together. */
START_TEST(test_check_tls)
{
    ck_assert_int_eq(parse("listeners.ssl.default = 5671\n"), 0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), WR_ESYNTAX);
    ck_assert_str_eq(err.msg, "listeners.ssl is set but ssl_options.certfile is not");
    ck_assert_int_eq(parse("ssl_options.certfile = /c.pem\nssl_options.keyfile = /k.pem\n"), 0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), 0);
    ck_assert_int_eq(parse("ssl_options.verify = verify_peer\n"), 0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), WR_ESYNTAX);
    ck_assert_str_eq(err.msg, "ssl_options.verify = verify_peer needs ssl_options.cacertfile");
    ck_assert_int_eq(parse("ssl_options.cacertfile = /ca.pem\n"), 0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), 0);
    ck_assert_int_eq(parse("ssl_options.verify = verify_none\n"
                           "ssl_options.fail_if_no_peer_cert = true\n"),
                     0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), WR_ESYNTAX);
    ck_assert_int_ne(parse("ssl_options.verify = verify_maybe\n"), 0);
    setup();
    ck_assert_int_eq(parse("management.ssl.port = 15671\n"), 0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), WR_ESYNTAX);
    ck_assert_str_eq(err.msg, "management.ssl.port is set but management.ssl.certfile is not");
    ck_assert_int_eq(parse("management.ssl.port = 15672\n"), 0);
    ck_assert_int_eq(wr_conf_check(&conf, &err), WR_ESYNTAX);
    ck_assert_ptr_nonnull(strstr(err.msg, "already another listener's port"));
    /* connection_max: a number or infinity */
    ck_assert_int_eq(parse("connection_max = 0\n"), 0);
    ck_assert_int_eq(conf.connection_max, 0);
    ck_assert_int_eq(parse("connection_max = infinity\n"), 0);
    ck_assert_int_eq(conf.connection_max, -1);
    ck_assert_int_ne(parse("connection_max = -1\n"), 0);
    ck_assert_int_ne(parse("connection_max = infinite\n"), 0);
    ck_assert_int_eq(parse("max_connections = 7\n"), 0); /* the other name */
    ck_assert_int_eq(conf.connection_max, 7);
    ck_assert_int_ne(parse("ssl_cert_login_from = subject_alternative_name\n"), 0);
    /* consumer_timeout: milliseconds, RabbitMQ's 30 min by default; 0 or
     * false is no limit */
    setup();
    ck_assert_int_eq(conf.consumer_timeout_ms, 1800000);
    ck_assert_int_eq(parse("consumer_timeout = 1000\n"), 0);
    ck_assert_int_eq(conf.consumer_timeout_ms, 1000);
    ck_assert_int_eq(parse("consumer_timeout = false\n"), 0);
    ck_assert_int_eq(conf.consumer_timeout_ms, 0);
    ck_assert_int_ne(parse("consumer_timeout = true\n"), 0);
    ck_assert_int_ne(parse("consumer_timeout = -1\n"), 0);
    ck_assert_int_ne(parse("connection_max = false\n"), 0); /* only where the row says */
    /* stream.replay_share: a percent, 1 to 100 */
    setup();
    ck_assert_int_eq(conf.stream_replay_share, 15);
    ck_assert_int_eq(parse("stream.replay_share = 100\n"), 0);
    ck_assert_int_eq(conf.stream_replay_share, 100);
    ck_assert_int_eq(parse("stream.replay_share = 1\n"), 0);
    ck_assert_int_eq(conf.stream_replay_share, 1);
    ck_assert_int_ne(parse("stream.replay_share = 0\n"), 0);
    ck_assert_int_ne(parse("stream.replay_share = 101\n"), 0);
    ck_assert_int_ne(parse("stream.replay_share = 15%\n"), 0);
}
END_TEST

START_TEST(test_parse_empty)
{
    ck_assert_int_eq(wr_conf_parse(&conf, NULL, 0, "empty.conf", &err), 0);
    ck_assert_int_eq(parse("\n\n\n"), 0);
    ck_assert_int_eq(parse("#"), 0);
    ck_assert_int_eq(conf.amqp_port, 5672);
}
END_TEST

START_TEST(test_parse_errors)
{
    static const struct {
        const char *text;
        unsigned line;
        const char *msg;
    } cases[] = {
        {"heartbeat = 1\nfoo = 1\n", 2, "test.conf:2: foo: unknown setting"},
        {"hearbeat = 1\n", 1, "test.conf:1: hearbeat: unknown setting; did you mean 'heartbeat'?"},
        {"log.levle = info\n", 1,
         "test.conf:1: log.levle: unknown setting; did you mean 'log.level'?"},
        {"\n\nheartbeat 10\n", 3, "test.conf:3: expected 'key = value'"},
        {"= 10\n", 1, "test.conf:1: expected 'key = value'"},
        {"heartbeat =\n", 1, "test.conf:1: heartbeat: missing value"},
        {"heartbeat = ten\n", 1, "test.conf:1: heartbeat: invalid value 'ten': not an integer"},
        {"heartbeat = 70000\n", 1,
         "test.conf:1: heartbeat: invalid value '70000': out of range (0..65535)"},
        {"heartbeat = 60 # seconds\n", 1,
         "test.conf:1: heartbeat: invalid value '60 # seconds': not an integer"},
        {"vm_memory_high_watermark.relative = 2\n", 1,
         "test.conf:1: vm_memory_high_watermark.relative: invalid value '2': out of range "
         "(0..1)"},
        {"key with spaces = 1\n", 1, "test.conf:1: expected 'key = value'"},
        {"heartbeat: 10\n", 1, "test.conf:1: expected 'key = value'"},
        {"[section]\n", 1, "test.conf:1: expected 'key = value'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        ck_assert_int_eq(parse(cases[i].text), WR_ESYNTAX);
        ck_assert_uint_eq(err.line, cases[i].line);
        ck_assert_str_eq(err.msg, cases[i].msg);
    }
}
END_TEST

START_TEST(test_parse_nul_and_long_lines)
{
    static const char nul[] = "heartbeat = 1\nchannel_max = 1\0 0\n";
    ck_assert_int_eq(wr_conf_parse(&conf, nul, sizeof nul - 1, "n.conf", &err), WR_ESYNTAX);
    ck_assert_str_eq(err.msg, "n.conf:2: NUL byte in line");

    size_t n = WR_CONF_LINE_MAX + 100;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, '#', n);
    ck_assert_int_eq(wr_conf_parse(&conf, big, n, "l.conf", &err), WR_ESYNTAX);
    ck_assert_msg(strstr(err.msg, "l.conf:1: line too long") == err.msg, "%s", err.msg);
    /* Exactly the limit is fine. */
    ck_assert_int_eq(wr_conf_parse(&conf, big, WR_CONF_LINE_MAX, "l.conf", &err), 0);

    /* A value far longer than any buffer, on a line under the limit. */
    memcpy(big, "data_dir = ", 11);
    memset(big + 11, 'x', WR_CONF_LINE_MAX - 11);
    ck_assert_int_eq(wr_conf_parse(&conf, big, WR_CONF_LINE_MAX, "l.conf", &err), WR_ESYNTAX);
    ck_assert_msg(strstr(err.msg, "too long") != NULL, "%s", err.msg);
    ck_assert_uint_lt(strlen(err.msg), sizeof err.msg);
    free(big);
}
END_TEST

START_TEST(test_parse_oversized_file)
{
    size_t n = WR_CONF_FILE_MAX + 1;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, '\n', n);
    ck_assert_int_eq(wr_conf_parse(&conf, big, n, "big.conf", &err), WR_ESYNTAX);
    ck_assert_msg(strstr(err.msg, "file too large") != NULL, "%s", err.msg);
    ck_assert_int_eq(wr_conf_parse(&conf, big, n - 1, "big.conf", &err), 0);
    free(big);
}
END_TEST

/* Every prefix of a valid file either parses or fails with a message. The
 * buffer is exactly the prefix length so a sanitizer build sees overreads. */
START_TEST(test_parse_truncated)
{
    const char *text = "# sample\nlisteners.tcp.default = 5673\ndisk_free_limit.absolute = "
                       "1GB\nvm_memory_high_watermark.relative = 0.5\nlog.level = debug\n";
    size_t len = strlen(text);
    for (size_t cut = 0; cut <= len; cut++) {
        char *p = malloc(cut ? cut : 1);
        ck_assert_ptr_nonnull(p);
        memcpy(p, text, cut);
        wr_conf_init(&conf);
        err.msg[0] = '\0';
        if (wr_conf_parse(&conf, p, cut, "t.conf", &err) < 0)
            ck_assert_msg(strncmp(err.msg, "t.conf:", 7) == 0, "cut %zu: %s", cut, err.msg);
        free(p);
    }
}
END_TEST

START_TEST(test_parse_garbage)
{
    uint32_t x = 2463534242u; /* xorshift32: deterministic garbage */
    char buf[512];
    /* Garbage drawn from an alphabet that reaches deep into the parser. */
    static const char alphabet[] = "=#\n\r\t .-_0123456789kMGBiaelnrstu\x01\xff";
    for (int round = 0; round < 20000; round++) {
        size_t n = 0;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t len = x % sizeof buf;
        for (; n < len; n++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            buf[n] = (round & 1) ? (char)(x & 0xff) : alphabet[x % (sizeof alphabet - 1)];
        }
        wr_conf_init(&conf);
        err.msg[0] = '\0';
        if (wr_conf_parse(&conf, buf, len, "g.conf", &err) < 0)
            ck_assert(err.msg[0] != '\0');
    }
    /* Each single byte alone, too. */
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        wr_conf_init(&conf);
        (void)wr_conf_parse(&conf, &c, 1, "b.conf", &err);
    }
}
END_TEST

START_TEST(test_load_file_errors)
{
    ck_assert_int_eq(wr_conf_load_file(&conf, "/nonexistent/warren.conf", &err), WR_EIO);
    ck_assert_msg(strstr(err.msg, "/nonexistent/warren.conf: cannot open") == err.msg, "%s",
                  err.msg);
    ck_assert_int_eq(wr_conf_load_file(&conf, "/", &err), WR_EIO);
    ck_assert_msg(strstr(err.msg, "not a regular file") != NULL, "%s", err.msg);
}
END_TEST

/* ---- the configuration's documentation ---- */

/* etc/warren.conf lists every setting as "# name = default"; uncommented,
 * those lines parse to the defaults, and as shipped the file sets nothing. */
START_TEST(test_sample_file)
{
    size_t n, len;
    const struct wr_conf_setting *s = wr_conf_settings(&n);
    char *text = slurp(WR_TEST_BUILDDIR "/etc/warren.conf", &len);
    struct wr_conf shipped, uncommented, defaults;

    wr_conf_init(&defaults);
    wr_conf_init(&shipped);
    ck_assert_msg(wr_conf_parse(&shipped, text, len, "warren.conf", &err) == 0, "%s", err.msg);
    ck_assert_mem_eq(&shipped, &defaults, sizeof defaults);

    for (size_t i = 0; i < n; i++) {
        char want[2200], v[2048];
        if (s[i].type == WR_CONF_LIST) {
            /* rabbitmq.conf's form: "# PREFIX.N = VALUE" for each default
             * entry, or at least an example when the default is empty. */
            const struct wr_conf_list *l =
                (const struct wr_conf_list *)(const void *)((const char *)&defaults + s[i].offset);
            for (uint32_t j = 0; j < l->n; j++) {
                snprintf(want, sizeof want, "\n# %s.%s = %s\n", s[i].name, l->item[j].name,
                         l->item[j].value);
                ck_assert_msg(strstr(text, want) != NULL, "etc/warren.conf lacks the line '%.*s'",
                              (int)strlen(want) - 2, want + 1);
            }
            snprintf(want, sizeof want, "\n# %s.", s[i].name);
            ck_assert_msg(strstr(text, want) != NULL, "etc/warren.conf has no example of %s.N",
                          s[i].name);
            continue;
        }
        ck_assert_int_eq(wr_conf_format(&defaults, &s[i], v, sizeof v), 0);
        snprintf(want, sizeof want, "\n# %s = %s\n", s[i].name, v);
        ck_assert_msg(strstr(text, want) != NULL, "etc/warren.conf lacks the line '%.*s'",
                      (int)strlen(want) - 2, want + 1);
    }

    /* Uncomment "# key = value" lines (a '#', one space, then a known key). */
    char *out = malloc(len + 1);
    ck_assert_ptr_nonnull(out);
    size_t o = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
        const char *body = line;
        if (line[0] == '#' && line[1] == ' ') {
            char key[128];
            if (sscanf(line + 2, "%127[A-Za-z0-9._-] =", key) == 1 && wr_conf_find(key))
                body = line + 2;
        }
        memcpy(out + o, body, ll - (size_t)(body - line));
        o += ll - (size_t)(body - line);
        line += ll;
    }
    wr_conf_init(&uncommented);
    ck_assert_msg(wr_conf_parse(&uncommented, out, o, "uncommented", &err) == 0, "%s", err.msg);
    /* Given, listeners.tcp.default is kept beside named listeners: the same
     * values, but not the same as not given. */
    ck_assert(uncommented.amqp_default_set);
    uncommented.amqp_default_set = false;
    ck_assert_mem_eq(&uncommented, &defaults, sizeof defaults);
    free(out);
    free(text);
}
END_TEST

/* The text of a .It entry: after the run of .It lines that share it (the
 * one found at `at` included), up to the next .It, .El or .Sh. */
static char *entry_text(const char *at)
{
    const char *p = at, *end;
    while (strncmp(p, ".It ", 4) == 0) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            return strdup("");
        p = nl + 1;
    }
    end = p;
    while (*end && strncmp(end, ".It ", 4) != 0 && strncmp(end, ".El", 3) != 0 &&
           strncmp(end, ".Sh ", 4) != 0) {
        const char *nl = strchr(end, '\n');
        end = nl ? nl + 1 : end + strlen(end);
    }
    return strndup(p, (size_t)(end - p));
}

/* warren.conf(5) against the table: every setting has an entry that says
 * "Reloaded by SIGHUP" exactly when it is reloadable, every entry of
 * SETTINGS is a setting the parser takes, and every RabbitMQ key the
 * parser recognises as not implemented is listed in RABBITMQ SETTINGS. */
START_TEST(test_man_page)
{
    size_t n, nr;
    const struct wr_conf_setting *s = wr_conf_settings(&n);
    const char *const *rk = wr_conf_rabbit_keys(&nr);
    char *text = slurp(WR_TEST_SRCDIR "/man/warren.conf.5", NULL);
    char *settings = strstr(text, "\n.Sh SETTINGS\n");
    char *rabbit = strstr(text, "\n.Sh RABBITMQ SETTINGS\n");

    ck_assert_ptr_nonnull(settings);
    ck_assert_ptr_nonnull(rabbit);
    for (size_t i = 0; i < n; i++) {
        char want[256];
        snprintf(want, sizeof want,
                 s[i].type == WR_CONF_LIST ? "\n.It Cm %s. Ns Ar " : "\n.It Cm %s\n", s[i].name);
        char *at = strstr(settings, want);
        ck_assert_msg(at != NULL, "warren.conf.5 does not document %s", s[i].name);
        char *body = entry_text(at + 1);
        bool says = strstr(body, "Reloaded by SIGHUP") != NULL;
        ck_assert_msg(says == ((s[i].flags & WR_CONF_RELOAD) != 0),
                      "warren.conf.5: %s %s 'Reloaded by SIGHUP'", s[i].name,
                      says ? "says" : "does not say");
        free(body);
    }
    /* Nothing documented that the parser refuses. */
    char *end = strstr(settings + 1, "\n.Sh ");
    for (char *p = strstr(settings, "\n.It Cm "); p && (!end || p < end);
         p = strstr(p + 1, "\n.It Cm ")) {
        char name[256];
        ck_assert_int_eq(sscanf(p, "\n.It Cm %255[^\n]", name), 1);
        if (strcmp(name, "default_user_tags. Ns Ar tag") == 0)
            ck_assert_int_eq(wr_conf_set(&conf, "default_user_tags.x", "true", &err), 0);
        else if (strcmp(name, "loopback_users. Ns Ar user") == 0)
            ck_assert_int_eq(wr_conf_set(&conf, "loopback_users.x", "true", &err), 0);
        else if (strcmp(name, "plugins.enabled. Ns Ar N") == 0)
            ck_assert_int_eq(wr_conf_set(&conf, "plugins.enabled.1", "x", &err), 0);
        else if (strcmp(name, "plugin. Ns Ar NAME . Ns Ar KEY") == 0)
            ck_assert_int_eq(wr_conf_set(&conf, "plugin.x.key", "v", &err), 0);
        else if (strcmp(name, "auth_backends. Ns Ar N") == 0)
            ck_assert_int_eq(wr_conf_set(&conf, "auth_backends.1", "internal", &err), 0);
        else if (strstr(name, ". Ns Ar ")) {
            /* a list: PREFIX.NAME lines */
            const struct wr_conf_setting *ls;
            *strstr(name, ". Ns Ar ") = '\0';
            ls = wr_conf_find(name);
            ck_assert_msg(ls && ls->type == WR_CONF_LIST,
                          "warren.conf.5 documents '%s.N', which is not a list", name);
        } else
            ck_assert_msg(wr_conf_find(name) != NULL,
                          "warren.conf.5 documents '%s', which is not a setting", name);
    }
    for (size_t i = 0; i < nr; i++) {
        char *p = rabbit;
        size_t l = strlen(rk[i]);
        bool found = false;
        while ((p = strstr(p + 1, rk[i])) != NULL) {
            if ((p[-1] == ' ' || p[-1] == '\n') && (p[l] == ' ' || p[l] == ',' || p[l] == '\n')) {
                found = true;
                break;
            }
        }
        ck_assert_msg(found, "warren.conf.5 RABBITMQ SETTINGS does not list %s", rk[i]);
    }
    free(text);
}
END_TEST

/* ---- every problem of a file, hints, RabbitMQ's keys ---- */

struct collected {
    unsigned n;
    struct wr_conf_error e[16];
};

static void collect(void *arg, const struct wr_conf_error *e)
{
    struct collected *c = arg;
    ck_assert_msg(e->msg[0] != '\0', "empty message");
    ck_assert_ptr_null(strchr(e->msg, '\n'));
    if (c->n < 16)
        c->e[c->n] = *e;
    c->n++;
}

START_TEST(test_report_every_problem)
{
    struct collected got = {0};
    struct wr_conf_report r = {.fn = collect, .arg = &got};
    const char *text = "heartbeat = 30\n"
                       "hearbeat = 5\n"                                 /* 2: typo */
                       "num_acceptors.tcp = 10\n"                       /* 3: RabbitMQ's */
                       "channel_max = lots\n"                           /* 4: bad value */
                       "cluster_formation.peer_discovery_backend = x\n" /* 5 */
                       "frobnicate = 1\n"                               /* 6: unknown */
                       "frame_max =\n"                                  /* 7: missing */
                       "log.console.level = debug\n";
    ck_assert_int_eq(wr_conf_parse_report(&conf, text, strlen(text), "w.conf", &r), WR_ESYNTAX);
    ck_assert_uint_eq(r.errors, 4);
    ck_assert_uint_eq(r.warnings, 2);
    ck_assert_uint_eq(got.n, 6);
    ck_assert_str_eq(got.e[0].msg,
                     "w.conf:2: hearbeat: unknown setting; did you mean 'heartbeat'?");
    ck_assert(!got.e[0].warning);
    ck_assert_str_eq(got.e[1].msg, "w.conf:3: num_acceptors.tcp: a RabbitMQ setting that Warren "
                                   "does not implement; ignored");
    ck_assert(got.e[1].warning);
    ck_assert_uint_eq(got.e[1].line, 3);
    ck_assert_str_eq(got.e[2].msg, "w.conf:4: channel_max: invalid value 'lots': not an integer");
    ck_assert(got.e[3].warning);
    ck_assert_uint_eq(got.e[3].line, 5);
    ck_assert_str_eq(got.e[4].msg, "w.conf:6: frobnicate: unknown setting");
    ck_assert_str_eq(got.e[5].msg, "w.conf:7: frame_max: missing value");
    ck_assert_str_eq(r.first.msg, got.e[0].msg);
    /* Lines after the errors were applied. */
    ck_assert_int_eq(conf.heartbeat, 30);
    ck_assert_int_eq(conf.log_console_level, WR_LOG_DEBUG);

    /* Warnings alone: the parse succeeds. */
    got.n = 0;
    text =
        "prometheus.tcp.ip = 0.0.0.0\nmanagement.rates_mode = basic\nlog.file.rotation.count = 5\n"
        "loopback_users.guest = false\n";
    ck_assert_int_eq(wr_conf_parse_report(&conf, text, strlen(text), "w.conf", &r), 0);
    ck_assert_uint_eq(r.errors, 0);
    ck_assert_uint_eq(r.warnings, 3);
    ck_assert_str_eq(conf.loopback_users, "none");
    /* The plain parse ignores the warnings. */
    ck_assert_int_eq(parse(text), 0);
}
END_TEST

START_TEST(test_hints)
{
    static const struct {
        const char *key, *near; /* near NULL: no hint */
        bool warning;
    } cases[] = {
        {"listenrs.tcp.default", "listeners.tcp.default", false},
        {"management.tcp.prot", "management.tcp.port", false}, /* one edit beats management.* */
        {"log.syslog.levle", "log.syslog.level", false},
        {"Heartbeat", "heartbeat", false},
        {"data-dir", "data_dir", false},
        {"max_mesage_size", "max_message_size", false},
        {"prometheus.tcp.ip", NULL, true}, /* RabbitMQ's, three edits from .port */
        {"management.tcp.idle_timeout", NULL, true},
        {"disk_free_limit.relative", NULL, true},
        {"num_acceptors.ssl", NULL, true},
        {"password_hashing_module", NULL, true},
        {"mqtt", NULL, true},
        {"mqttx.vhost", NULL, false},
        {"x", NULL, false},
        {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzz", NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct collected got = {0};
        struct wr_conf_report r = {.fn = collect, .arg = &got};
        char line[256];
        snprintf(line, sizeof line, "%s = 1\n", cases[i].key);
        (void)wr_conf_parse_report(&conf, line, strlen(line), "h.conf", &r);
        ck_assert_msg(got.n == 1, "%s: %u problems", cases[i].key, got.n);
        ck_assert_msg(got.e[0].warning == cases[i].warning, "%s: %s", cases[i].key, got.e[0].msg);
        if (cases[i].near) {
            char want[128];
            snprintf(want, sizeof want, "did you mean '%s'?", cases[i].near);
            ck_assert_msg(strstr(got.e[0].msg, want) != NULL, "%s", got.e[0].msg);
        } else {
            ck_assert_msg(strstr(got.e[0].msg, "did you mean") == NULL, "%s", got.e[0].msg);
        }
    }
}
END_TEST

START_TEST(test_edit_distance)
{
    ck_assert_uint_eq(wr_conf_edit_distance("", "", 3), 0);
    ck_assert_uint_eq(wr_conf_edit_distance("abc", "abc", 3), 0);
    ck_assert_uint_eq(wr_conf_edit_distance("abc", "acb", 3), 1); /* swap */
    ck_assert_uint_eq(wr_conf_edit_distance("abc", "ab", 3), 1);
    ck_assert_uint_eq(wr_conf_edit_distance("", "abcd", 3), 4); /* over max: max + 1 */
    ck_assert_uint_eq(wr_conf_edit_distance("kitten", "sitting", 5), 3);
    ck_assert_uint_eq(wr_conf_edit_distance("sitting", "kitten", 5), 3);
    ck_assert_uint_eq(wr_conf_edit_distance("kitten", "sitting", 2), 3);
    /* Oversized strings are never compared. */
    char big[200];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_uint_eq(wr_conf_edit_distance(big, big, 3), 4);
    ck_assert_ptr_null(wr_conf_closest(big));
    big[128] = '\0';
    ck_assert_uint_eq(wr_conf_edit_distance(big, big, 3), 0);
    /* Garbage keys: never a crash; a hint is a real row near enough. */
    uint32_t x = 88172645u;
    for (int round = 0; round < 5000; round++) {
        char k[40];
        size_t len = 1 + round % (sizeof k - 1);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            k[i] = "abcdefghilmnoprstu._-0123"[x % 25];
        }
        k[len] = '\0';
        const char *near = wr_conf_closest(k);
        if (near) {
            ck_assert_ptr_nonnull(wr_conf_find(near));
            ck_assert_uint_le(wr_conf_edit_distance(k, near, 3), 3);
        }
        (void)wr_conf_rabbit_only(k);
    }
    /* A key as long as a line: reported, quoted short. */
    char *line = malloc(WR_CONF_LINE_MAX + 1);
    ck_assert_ptr_nonnull(line);
    memset(line, 'k', WR_CONF_LINE_MAX - 4);
    memcpy(line + WR_CONF_LINE_MAX - 4, " = 1", 4);
    ck_assert_int_eq(wr_conf_parse(&conf, line, WR_CONF_LINE_MAX, "k.conf", &err), WR_ESYNTAX);
    ck_assert_msg(strstr(err.msg, "...: unknown setting") != NULL, "%s", err.msg);
    free(line);
}
END_TEST

START_TEST(test_loopback_user_keys)
{
    ck_assert_int_eq(parse("loopback_users.alice = true\n"), 0);
    ck_assert_str_eq(conf.loopback_users, "guest,alice");
    ck_assert(wr_conf_is_loopback_user(&conf, "alice"));
    ck_assert_int_eq(parse("loopback_users.guest = false\nloopback_users.alice = false\n"), 0);
    ck_assert_str_eq(conf.loopback_users, "none");
    ck_assert(!wr_conf_is_loopback_user(&conf, "guest"));
    ck_assert_int_eq(parse("loopback_users.bob = true\nloopback_users.bob = true\n"), 0);
    ck_assert_str_eq(conf.loopback_users, "bob");
    ck_assert_int_eq(parse("loopback_users = a, bob ,c\nloopback_users.bob = false\n"), 0);
    ck_assert_str_eq(conf.loopback_users, "a,c");
    ck_assert_int_eq(parse("loopback_users.c = false\n"), 0);
    ck_assert_str_eq(conf.loopback_users, "a");
    ck_assert_int_eq(parse("loopback_users.a = yes\n"), WR_ESYNTAX);
    ck_assert_str_eq(err.msg, "test.conf:1: loopback_users.a: invalid value 'yes': not true or "
                              "false");
    ck_assert_int_eq(parse("loopback_users. = true\n"), WR_ESYNTAX);
    ck_assert_str_eq(conf.loopback_users, "a");
}
END_TEST

START_TEST(test_service_settings)
{
    char v[64], path[256];

    ck_assert_str_eq(conf.log_file, "false");
    ck_assert_int_eq(conf.log_file_level, WR_LOG_UNSET);
    ck_assert(conf.log_console);
    ck_assert(!conf.log_syslog);
    ck_assert_int_eq(conf.shutdown_timeout_ms, 10000);
    ck_assert_uint_eq(conf.max_message_size, 128u * 1024 * 1024);
    ck_assert_int_eq(conf.consumer_max_per_channel, 0);
    wr_conf_log_path(&conf, path, sizeof path);
    ck_assert_str_eq(path, "");

    ck_assert_int_eq(parse("log.dir = /var/log/w\nlog.file = w.log\nlog.file.level = debug\n"), 0);
    wr_conf_log_path(&conf, path, sizeof path);
    ck_assert_str_eq(path, "/var/log/w/w.log");
    ck_assert_int_eq(conf.log_file_level, WR_LOG_DEBUG);
    ck_assert_int_eq(parse("log.file = /tmp/x.log\nlog.file.level =\n"), 0);
    wr_conf_log_path(&conf, path, sizeof path);
    ck_assert_str_eq(path, "/tmp/x.log");
    ck_assert_int_eq(conf.log_file_level, WR_LOG_UNSET);
    fmt(&conf, "log.file.level", v, sizeof v);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(parse("log.file = true\n"), WR_ESYNTAX);
    ck_assert_int_eq(parse("log.file =\n"), WR_ESYNTAX);
    ck_assert_int_eq(parse("log.console = 1\n"), WR_ESYNTAX);
    ck_assert_int_eq(parse("log.level =\n"), WR_ESYNTAX); /* only the outputs' may be empty */

    ck_assert_int_eq(parse("max_message_size = 0\n"), WR_ESYNTAX);
    ck_assert_msg(strstr(err.msg, "out of range (1..536870912)") != NULL, "%s", err.msg);
    ck_assert_int_eq(parse("max_message_size = 513MiB\n"), WR_ESYNTAX);
    ck_assert_int_eq(parse("max_message_size = 1MB\n"), 0);
    ck_assert_uint_eq(conf.max_message_size, 1000000u);
    /* A size's minimum holds for every size row (journal.segment_size too). */
    ck_assert_int_eq(parse("journal.segment_size = 1KiB\n"), WR_ESYNTAX);
}
END_TEST

/* Which settings SIGHUP applies: a decision, written down here so that a
 * change to it is one on purpose (and warren.conf(5) says the same, see
 * test_man_page). */
START_TEST(test_reloadable)
{
    static const char *const want[] = {
        "log.level",
        "channel_max",
        "frame_max",
        "heartbeat",
        "handshake_timeout",
        "disk_free_limit.absolute",
        "loopback_users",
        "log.dir",
        "log.file",
        "log.file.level",
        "log.console",
        "log.console.level",
        "log.syslog",
        "log.syslog.level",
        "shutdown_timeout",
        "max_message_size",
        "consumer_max_per_channel",
        "consumer_timeout",
        "stream.replay_share",
        "ssl_handshake_timeout",
        "auth_mechanisms",
        "ssl_cert_login_from",
        "connection_max",
    };
    size_t n, count = 0;
    const struct wr_conf_setting *s = wr_conf_settings(&n);
    for (size_t i = 0; i < n; i++) {
        bool listed = false;
        for (size_t j = 0; j < sizeof want / sizeof want[0]; j++)
            listed |= strcmp(want[j], s[i].name) == 0;
        ck_assert_msg(listed == ((s[i].flags & WR_CONF_RELOAD) != 0), "%s", s[i].name);
        count += listed;
    }
    ck_assert_uint_eq(count, sizeof want / sizeof want[0]);
}
END_TEST

static Suite *conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_table_rows);
    tcase_add_test(tc, test_unknown_setting);
    tcase_add_test(tc, test_listener_ip_port);
    tcase_add_test(tc, test_lists);
    tcase_add_test(tc, test_parse_listener);
    tcase_add_test(tc, test_check_tls);
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_doubles);
    tcase_add_test(tc, test_log_level);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_loopback_users);
    tcase_add_test(tc, test_default_user_settings);
    tcase_add_test(tc, test_check_ports);
    tcase_add_test(tc, test_loopback_user_keys);
    tcase_add_test(tc, test_service_settings);
    tcase_add_test(tc, test_reloadable);
    suite_add_tcase(s, tc);

    tc = tcase_create("parser");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse_file);
    tcase_add_test(tc, test_parse_empty);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_parse_nul_and_long_lines);
    tcase_add_test(tc, test_parse_oversized_file);
    tcase_add_test(tc, test_parse_truncated);
    tcase_add_test(tc, test_parse_garbage);
    tcase_add_test(tc, test_load_file_errors);
    tcase_add_test(tc, test_report_every_problem);
    tcase_add_test(tc, test_hints);
    tcase_add_test(tc, test_edit_distance);
    suite_add_tcase(s, tc);

    tc = tcase_create("docs");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_sample_file);
    tcase_add_test(tc, test_man_page);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conf_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
