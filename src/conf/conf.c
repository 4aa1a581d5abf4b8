/*
 * conf.c - the settings table and the warren.conf parser (see conf.h).
 *
 * To add a setting: add a field to struct wr_conf, a row below, a commented
 * line to etc/warren.conf.in and an entry to man/warren.conf.5. The unit
 * tests fail until all four agree.
 *
 * The parser is written for hostile input (it is fuzzed): it walks the
 * buffer with explicit lengths, copies a line into a bounded buffer before
 * looking at it, and turns anything unexpected into a file:line message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/unknown.h"
#include "core/err.h"

#ifndef WR_LOCALSTATEDIR
#define WR_LOCALSTATEDIR "/var"
#endif
#ifndef WR_PLUGINDIR
#define WR_PLUGINDIR "/usr/local/lib/warren/plugins"
#endif

#define F(field)                                                                                   \
    .offset = offsetof(struct wr_conf, field), .size = sizeof(((struct wr_conf *)0)->field)

static const char *check_ip(const char *v);
static const char *check_ip_or_empty(const char *v);
static const char *check_nonempty(const char *v);
static const char *check_listener(const char *v);
static const char *check_tls_version(const char *v);
static const char *check_cipher(const char *v);
static const char *check_verify(const char *v);
static const char *check_mechanism(const char *v);
static const char *check_cert_login(const char *v);
static const char *check_user(const char *v);
static const char *check_user_list(const char *v);
static const char *check_log_file(const char *v);
static const char *check_io_placement(const char *v);

/* The order of rows is the order wr_conf_print lists them in. */
static const struct wr_conf_setting settings[] = {
    {.name = "listeners.tcp.default",
     .type = WR_CONF_INT,
     F(amqp_port),
     .def = "5672",
     .imin = 1,
     .imax = 65535,
     .help = "TCP port of the AMQP listener, or IP:PORT (which sets listeners.tcp.ip too)"},
    {.name = "listeners.tcp.ip",
     .type = WR_CONF_STRING,
     F(bind_ip),
     .def = "",
     .flags = WR_CONF_EMPTY_OK,
     .check = check_ip_or_empty,
     .help = "IPv4 or IPv6 address listeners given as a port bind; empty: 127.0.0.1 and ::1"},
    {.name = "management.tcp.port",
     .type = WR_CONF_INT,
     F(mgmt_port),
     .def = "15672",
     .imin = 0,
     .imax = 65535,
     .help = "TCP port of the HTTP management API and /metrics; 0 disables it"},
    {.name = "management.tcp.ip",
     .type = WR_CONF_STRING,
     F(mgmt_ip),
     .def = "127.0.0.1",
     .check = check_ip,
     .help = "IPv4 or IPv6 address the management listener binds"},
    {.name = "prometheus.tcp.port",
     .type = WR_CONF_INT,
     F(prom_port),
     .def = "0",
     .imin = 0,
     .imax = 65535,
     .help = "TCP port of a second listener serving only /metrics; 0 means none"},
    {.name = "listeners.tcp",
     .type = WR_CONF_LIST,
     F(tcp_listeners),
     .def = "",
     .check = check_listener,
     .help = "more AMQP listeners: listeners.tcp.NAME = PORT or IP:PORT; none: only .default"},
    {.name = "listeners.ssl",
     .type = WR_CONF_LIST,
     F(ssl_listeners),
     .def = "",
     .check = check_listener,
     .help = "AMQPS (TLS) listeners: listeners.ssl.NAME = PORT or IP:PORT"},
    {.name = "ssl_options.certfile",
     .type = WR_CONF_STRING,
     F(ssl.certfile),
     .def = "",
     .flags = WR_CONF_EMPTY_OK,
     .help = "PEM file with the server's certificate, then its intermediate CAs"},
    {.name = "ssl_options.keyfile",
     .type = WR_CONF_STRING,
     F(ssl.keyfile),
     .def = "",
     .flags = WR_CONF_EMPTY_OK,
     .help = "PEM file with the private key of ssl_options.certfile"},
    {.name = "ssl_options.cacertfile",
     .type = WR_CONF_STRING,
     F(ssl.cacertfile),
     .def = "",
     .flags = WR_CONF_EMPTY_OK,
     .help = "PEM file of the CAs client certificates must chain to"},
    {.name = "ssl_options.password",
     .type = WR_CONF_STRING,
     F(ssl.password),
     .def = "",
     .flags = WR_CONF_EMPTY_OK | WR_CONF_SECRET,
     .help = "password of an encrypted ssl_options.keyfile"},
    {.name = "ssl_options.verify",
     .type = WR_CONF_STRING,
     F(ssl.verify),
     .def = "verify_none",
     .check = check_verify,
     .help = "verify_peer: ask for a client certificate and check it; verify_none: do not"},
    {.name = "ssl_options.fail_if_no_peer_cert",
     .type = WR_CONF_BOOL,
     F(ssl.fail_if_no_peer_cert),
     .def = "false",
     .help = "with verify_peer, refuse a client that sends no certificate"},
    {.name = "ssl_options.depth",
     .type = WR_CONF_INT,
     F(ssl.depth),
     .def = "10",
     .imin = 0,
     .imax = 255,
     .help = "most intermediate CAs between a client certificate and a trusted CA"},
    {.name = "ssl_options.honor_cipher_order",
     .type = WR_CONF_BOOL,
     F(ssl.honor_cipher_order),
     .def = "false",
     .help = "choose the cipher by the server's order of preference, not the client's"},
    {.name = "ssl_options.versions",
     .type = WR_CONF_LIST,
     F(ssl.versions),
     .def = "tlsv1.2 tlsv1.3",
     .check = check_tls_version,
     .help = "TLS versions accepted: ssl_options.versions.N = tlsv1.2 or tlsv1.3"},
    {.name = "ssl_options.ciphers",
     .type = WR_CONF_LIST,
     F(ssl.ciphers),
     .def = "",
     .check = check_cipher,
     .help = "cipher suites in OpenSSL's names, in order; none given: OpenSSL's defaults"},
    {.name = "ssl_handshake_timeout",
     .type = WR_CONF_INT,
     F(ssl_handshake_timeout_ms),
     .def = "5000",
     .imin = 100,
     .imax = 3600000,
     .flags = WR_CONF_RELOAD,
     .help = "milliseconds a client has to complete the TLS handshake"},
    {.name = "auth_mechanisms",
     .type = WR_CONF_LIST,
     F(auth_mechanisms),
     .def = "PLAIN AMQPLAIN",
     .check = check_mechanism,
     .flags = WR_CONF_RELOAD,
     .help = "SASL mechanisms offered: auth_mechanisms.N = PLAIN, AMQPLAIN or EXTERNAL"},
    {.name = "ssl_cert_login_from",
     .type = WR_CONF_STRING,
     F(ssl_cert_login_from),
     .def = "distinguished_name",
     .check = check_cert_login,
     .flags = WR_CONF_RELOAD,
     .help = "EXTERNAL logins: the user is the certificate's distinguished_name or common_name"},
    {.name = "connection_max",
     .type = WR_CONF_INT,
     F(connection_max),
     .def = "infinity",
     .imin = 0,
     .imax = 10000000,
     .flags = WR_CONF_INFINITY | WR_CONF_RELOAD,
     .help = "most client connections at once; one more is accepted and closed at once"},
    {.name = "management.ssl.port",
     .type = WR_CONF_INT,
     F(mgmt_ssl_port),
     .def = "0",
     .imin = 0,
     .imax = 65535,
     .help = "TCP port of the management API over HTTPS; 0 means none"},
    {.name = "management.ssl.ip",
     .type = WR_CONF_STRING,
     F(mgmt_ssl_ip),
     .def = "127.0.0.1",
     .check = check_ip,
     .help = "IPv4 or IPv6 address the HTTPS management listener binds"},
    {.name = "management.ssl.certfile",
     .type = WR_CONF_STRING,
     F(mgmt_ssl.certfile),
     .def = "",
     .flags = WR_CONF_EMPTY_OK,
     .help = "PEM file with the HTTPS listener's certificate, then its intermediate CAs"},
    {.name = "management.ssl.keyfile",
     .type = WR_CONF_STRING,
     F(mgmt_ssl.keyfile),
     .def = "",
     .flags = WR_CONF_EMPTY_OK,
     .help = "PEM file with the private key of management.ssl.certfile"},
    {.name = "management.ssl.cacertfile",
     .type = WR_CONF_STRING,
     F(mgmt_ssl.cacertfile),
     .def = "",
     .flags = WR_CONF_EMPTY_OK,
     .help = "PEM file of the CAs client certificates must chain to"},
    {.name = "management.ssl.password",
     .type = WR_CONF_STRING,
     F(mgmt_ssl.password),
     .def = "",
     .flags = WR_CONF_EMPTY_OK | WR_CONF_SECRET,
     .help = "password of an encrypted management.ssl.keyfile"},
    {.name = "management.ssl.verify",
     .type = WR_CONF_STRING,
     F(mgmt_ssl.verify),
     .def = "verify_none",
     .check = check_verify,
     .help = "verify_peer: ask for a client certificate and check it; verify_none: do not"},
    {.name = "management.ssl.fail_if_no_peer_cert",
     .type = WR_CONF_BOOL,
     F(mgmt_ssl.fail_if_no_peer_cert),
     .def = "false",
     .help = "with verify_peer, refuse a client that sends no certificate"},
    {.name = "management.ssl.depth",
     .type = WR_CONF_INT,
     F(mgmt_ssl.depth),
     .def = "10",
     .imin = 0,
     .imax = 255,
     .help = "most intermediate CAs between a client certificate and a trusted CA"},
    {.name = "management.ssl.honor_cipher_order",
     .type = WR_CONF_BOOL,
     F(mgmt_ssl.honor_cipher_order),
     .def = "false",
     .help = "choose the cipher by the server's order of preference, not the client's"},
    {.name = "management.ssl.versions",
     .type = WR_CONF_LIST,
     F(mgmt_ssl.versions),
     .def = "tlsv1.2 tlsv1.3",
     .check = check_tls_version,
     .help = "TLS versions accepted: management.ssl.versions.N = tlsv1.2 or tlsv1.3"},
    {.name = "management.ssl.ciphers",
     .type = WR_CONF_LIST,
     F(mgmt_ssl.ciphers),
     .def = "",
     .check = check_cipher,
     .help = "cipher suites in OpenSSL's names, in order; none given: OpenSSL's defaults"},
    {.name = "data_dir",
     .type = WR_CONF_STRING,
     F(data_dir),
     .def = WR_LOCALSTATEDIR "/lib/warren",
     .check = check_nonempty,
     .help = "directory for the message journal and definitions; created if missing"},
    {.name = "log.level",
     .type = WR_CONF_LOGLEVEL,
     F(log_level),
     .def = "info",
     .flags = WR_CONF_RELOAD,
     .help = "least severe level logged: error, warning, info or debug"},
    {.name = "channel_max",
     .type = WR_CONF_INT,
     F(channel_max),
     .def = "2047",
     .imin = 0,
     .imax = 65535,
     .flags = WR_CONF_RELOAD,
     .help = "most channels per connection offered in connection.tune; 0 means 65535"},
    {.name = "frame_max",
     .type = WR_CONF_INT,
     F(frame_max),
     .def = "131072",
     .imin = 4096,
     .imax = 134217728,
     .flags = WR_CONF_RELOAD,
     .help = "largest frame in bytes offered in connection.tune"},
    {.name = "heartbeat",
     .type = WR_CONF_INT,
     F(heartbeat),
     .def = "60",
     .imin = 0,
     .imax = 65535,
     .flags = WR_CONF_RELOAD,
     .help = "heartbeat interval in seconds offered in connection.tune; 0 disables them"},
    {.name = "handshake_timeout",
     .type = WR_CONF_INT,
     F(handshake_timeout_ms),
     .def = "10000",
     .imin = 100,
     .imax = 3600000,
     .flags = WR_CONF_RELOAD,
     .help = "milliseconds a client has to complete the AMQP handshake"},
    {.name = "vm_memory_high_watermark.relative",
     .type = WR_CONF_DOUBLE,
     F(mem_high_watermark),
     .def = "0.4",
     .dmin = 0.0,
     .dmax = 1.0,
     .help = "fraction of RAM above which publishers are blocked"},
    {.name = "vm_memory_high_watermark.absolute",
     .type = WR_CONF_SIZE,
     F(mem_high_watermark_absolute),
     .def = "0",
     .imin = 0,
     .imax = INT64_C(1) << 60,
     .help = "bytes of messages above which publishers are blocked; 0 = use .relative"},
    {.name = "disk_free_limit.absolute",
     .type = WR_CONF_SIZE,
     F(disk_free_limit),
     .def = "50MB",
     .imin = 0,
     .imax = INT64_C(1) << 60,
     .flags = WR_CONF_RELOAD,
     .help = "free disk space below which publishers are blocked (kB MB GB, KiB MiB GiB)"},
    {.name = "journal.fsync_interval",
     .type = WR_CONF_INT,
     F(fsync_interval_ms),
     .def = "200",
     .imin = 0,
     .imax = 60000,
     .help = "milliseconds between journal fsyncs; 0 syncs every write batch"},
    {.name = "journal.segment_size",
     .type = WR_CONF_SIZE,
     F(segment_size),
     .def = "64MiB",
     .imin = 64 * 1024,
     .imax = INT64_C(1) << 30,
     .help = "size at which the journal starts a new segment file"},
    {.name = "default_user",
     .type = WR_CONF_STRING,
     F(default_user),
     .def = "guest",
     .check = check_user,
     .help = "user created when the data directory is empty"},
    {.name = "default_pass",
     .type = WR_CONF_STRING,
     F(default_pass),
     .def = "guest",
     .flags = WR_CONF_SECRET,
     .help = "password of default_user"},
    {.name = "default_vhost",
     .type = WR_CONF_STRING,
     F(default_vhost),
     .def = "/",
     .check = check_nonempty,
     .help = "vhost created, and granted to default_user, when the data directory is empty"},
    {.name = "default_user_tags.administrator",
     .type = WR_CONF_BOOL,
     F(tag_administrator),
     .def = "true",
     .help = "whether default_user has the administrator tag"},
    {.name = "default_user_tags.management",
     .type = WR_CONF_BOOL,
     F(tag_management),
     .def = "false",
     .help = "whether default_user has the management tag"},
    {.name = "default_user_tags.monitoring",
     .type = WR_CONF_BOOL,
     F(tag_monitoring),
     .def = "false",
     .help = "whether default_user has the monitoring tag"},
    {.name = "default_user_tags.policymaker",
     .type = WR_CONF_BOOL,
     F(tag_policymaker),
     .def = "false",
     .help = "whether default_user has the policymaker tag"},
    {.name = "default_user_tags.impersonator",
     .type = WR_CONF_BOOL,
     F(tag_impersonator),
     .def = "false",
     .help = "whether default_user has the impersonator tag"},
    {.name = "default_permissions.configure",
     .type = WR_CONF_STRING,
     F(default_perm_configure),
     .def = ".*",
     .flags = WR_CONF_EMPTY_OK,
     .help = "configure pattern of default_user on default_vhost"},
    {.name = "default_permissions.write",
     .type = WR_CONF_STRING,
     F(default_perm_write),
     .def = ".*",
     .flags = WR_CONF_EMPTY_OK,
     .help = "write pattern of default_user on default_vhost"},
    {.name = "default_permissions.read",
     .type = WR_CONF_STRING,
     F(default_perm_read),
     .def = ".*",
     .flags = WR_CONF_EMPTY_OK,
     .help = "read pattern of default_user on default_vhost"},
    {.name = "loopback_users",
     .type = WR_CONF_STRING,
     F(loopback_users),
     .def = "guest",
     .flags = WR_CONF_RELOAD,
     .check = check_user_list,
     .help = "comma-separated users that may connect only from loopback, or none"},
    {.name = "load_definitions",
     .type = WR_CONF_STRING,
     F(load_definitions),
     .def = "",
     .flags = WR_CONF_EMPTY_OK,
     .help = "definitions file (RabbitMQ's JSON) imported at every start; empty: none"},
    /* ---- service: logging, shutdown, limits ---- */
    {.name = "log.dir",
     .type = WR_CONF_STRING,
     F(log_dir),
     .def = WR_LOCALSTATEDIR "/log/warren",
     .flags = WR_CONF_RELOAD,
     .check = check_nonempty,
     .help = "directory of a log.file given as a relative name"},
    {.name = "log.file",
     .type = WR_CONF_STRING,
     F(log_file),
     .def = "false",
     .flags = WR_CONF_RELOAD,
     .check = check_log_file,
     .help = "log file (relative: under log.dir), reopened on SIGHUP; false for none"},
    {.name = "log.file.level",
     .type = WR_CONF_LOGLEVEL,
     F(log_file_level),
     .def = "",
     .flags = WR_CONF_EMPTY_OK | WR_CONF_RELOAD,
     .help = "least severe level written to log.file; empty: log.level"},
    {.name = "log.console",
     .type = WR_CONF_BOOL,
     F(log_console),
     .def = "true",
     .flags = WR_CONF_RELOAD,
     .help = "whether log lines go to standard error (the journal under systemd)"},
    {.name = "log.console.level",
     .type = WR_CONF_LOGLEVEL,
     F(log_console_level),
     .def = "",
     .flags = WR_CONF_EMPTY_OK | WR_CONF_RELOAD,
     .help = "least severe level written to standard error; empty: log.level"},
    {.name = "log.syslog",
     .type = WR_CONF_BOOL,
     F(log_syslog),
     .def = "false",
     .flags = WR_CONF_RELOAD,
     .help = "whether log lines also go to syslog(3), facility daemon"},
    {.name = "log.syslog.level",
     .type = WR_CONF_LOGLEVEL,
     F(log_syslog_level),
     .def = "",
     .flags = WR_CONF_EMPTY_OK | WR_CONF_RELOAD,
     .help = "least severe level sent to syslog; empty: log.level"},
    {.name = "shutdown_timeout",
     .type = WR_CONF_INT,
     F(shutdown_timeout_ms),
     .def = "10000",
     .imin = 0,
     .imax = 3600000,
     .flags = WR_CONF_RELOAD,
     .help = "milliseconds clients get to answer connection.close at shutdown"},
    {.name = "max_message_size",
     .type = WR_CONF_SIZE,
     F(max_message_size),
     .def = "128MiB",
     .imin = 1,
     .imax = 512 * 1024 * 1024,
     .flags = WR_CONF_RELOAD,
     .help = "largest message body accepted; a larger one is refused with 406"},
    {.name = "consumer_max_per_channel",
     .type = WR_CONF_INT,
     F(consumer_max_per_channel),
     .def = "0",
     .imin = 0,
     .imax = INT32_MAX,
     .flags = WR_CONF_RELOAD,
     .help = "most consumers on one channel, refused beyond with 530; 0 means no limit"},
    {.name = "consumer_timeout",
     .type = WR_CONF_INT,
     F(consumer_timeout_ms),
     .def = "1800000",
     .imin = 0,
     .imax = 1000000000000000, /* 10^15 ms: 31,000 years */
     .flags = WR_CONF_FALSE | WR_CONF_RELOAD,
     .help = "milliseconds a delivery may stay unacknowledged before its channel is closed "
             "with 406; 0 or false: no limit"},
    {.name = "stream.replay_share",
     .type = WR_CONF_INT,
     F(stream_replay_share),
     .def = "15",
     .imin = 1,
     .imax = 100,
     .flags = WR_CONF_RELOAD,
     .help = "percent of the broker thread's time that consumers replaying streams from "
             "disk may take while anything is being published (publishers first); 100: "
             "no limit"},
    {.name = "io_threads",
     .type = WR_CONF_INT,
     F(io_threads),
     .def = "auto",
     .imin = 0,
     .imax = 64,
     .flags = WR_CONF_AUTO,
     .help = "threads that read and write the AMQP sockets beside the broker's own; 0: the "
             "broker's thread does it; auto: cores - 1, at most 16, 0 on 1 or 2 cores"},
    {.name = "io_threads.placement",
     .type = WR_CONF_STRING,
     F(io_placement),
     .def = "adaptive",
     .check = check_io_placement,
     .help = "with I/O threads, where sockets run: adaptive (on the broker's thread while "
             "it is mostly idle, on the I/O threads while it is busy), threads (always on "
             "the I/O threads) or shuffle (moved back and forth every 20 ms: for tests)"},
    /* plugins (src/plugin); plugins.enabled.N and plugin.NAME.KEY are
     * lists, parsed by apply_plugin_key */
    {.name = "plugins.directory",
     .type = WR_CONF_STRING,
     F(plugins_dir),
     .def = WR_PLUGINDIR,
     .check = check_nonempty,
     .help = "directory the enabled plugins are loaded from (NAME.so)"},
};

#undef F

#define NSETTINGS (sizeof settings / sizeof settings[0])

const struct wr_conf_setting *wr_conf_settings(size_t *count)
{
    *count = NSETTINGS;
    return settings;
}

const struct wr_conf_setting *wr_conf_find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    }
    return NULL;
}

static void set_error(struct wr_conf_error *err, unsigned line, const char *fmt, ...)
    WR_PRINTF(3, 4);

static void set_error(struct wr_conf_error *err, unsigned line, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    err->line = line;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

/* ---- string checks ---- */

static const char *check_ip(const char *v)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1)
        return NULL;
    return "not an IPv4 or IPv6 address";
}

static const char *check_ip_or_empty(const char *v)
{
    return *v ? check_ip(v) : NULL;
}

static const char *check_nonempty(const char *v)
{
    return *v ? NULL : "must not be empty";
}

const char *wr_conf_parse_listener(const char *v, char ip[64], int *port)
{
    const char *colon = strrchr(v, ':');
    const char *p = colon ? colon + 1 : v;
    size_t n = colon ? (size_t)(colon - v) : 0;
    long val = 0;

    ip[0] = '\0';
    if (*p < '0' || *p > '9')
        return "not PORT or IP:PORT";
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || val > 65535)
            return "not PORT or IP:PORT";
        val = val * 10 + (*p - '0');
    }
    if (val < 1 || val > 65535)
        return "port out of range (1..65535)";
    *port = (int)val;
    if (!colon)
        return NULL;
    if (n >= 2 && v[0] == '[' && v[n - 1] == ']') {
        v++;
        n -= 2;
    }
    if (n == 0 || n >= 64)
        return "not PORT or IP:PORT";
    memcpy(ip, v, n);
    ip[n] = '\0';
    return check_ip(ip);
}

static const char *check_listener(const char *v)
{
    char ip[64];
    int port;
    return wr_conf_parse_listener(v, ip, &port);
}

static const char *check_tls_version(const char *v)
{
    if (!strcmp(v, "tlsv1.2") || !strcmp(v, "tlsv1.3"))
        return NULL;
    if (!strcmp(v, "tlsv1") || !strcmp(v, "tlsv1.1") || !strcmp(v, "sslv3"))
        return "not supported: TLS 1.1 and older are insecure (use tlsv1.2, tlsv1.3)";
    return "not a TLS version (tlsv1.2, tlsv1.3)";
}

/* OpenSSL checks the names when the listener starts; here only that a
 * value is one word of the characters cipher names use. */
static const char *check_cipher(const char *v)
{
    if (!*v)
        return "must not be empty";
    for (; *v; v++)
        if (!((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') ||
              strchr("-_+!@=.:", *v)))
            return "not a cipher suite name";
    return NULL;
}

static const char *check_verify(const char *v)
{
    return !strcmp(v, "verify_peer") || !strcmp(v, "verify_none")
               ? NULL
               : "not verify_peer or verify_none";
}

static const char *check_io_placement(const char *v)
{
    return !strcmp(v, "adaptive") || !strcmp(v, "threads") || !strcmp(v, "shuffle")
               ? NULL
               : "not adaptive, threads or shuffle";
}

static const char *check_mechanism(const char *v)
{
    return !strcmp(v, "PLAIN") || !strcmp(v, "AMQPLAIN") || !strcmp(v, "EXTERNAL")
               ? NULL
               : "not a mechanism Warren has (PLAIN, AMQPLAIN, EXTERNAL)";
}

static const char *check_cert_login(const char *v)
{
    return !strcmp(v, "distinguished_name") || !strcmp(v, "common_name")
               ? NULL
               : "not distinguished_name or common_name";
}

bool wr_conf_list_has(const struct wr_conf_list *l, const char *value)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (!strcmp(l->item[i].value, value))
            return true;
    return false;
}

/* ---- lists ---- */

static const char *list_value_ok(const struct wr_conf_setting *s, const char *v)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch == 0x7f)
            return "contains a control character";
    }
    if (n >= sizeof(((struct wr_conf_list *)0)->item[0].value))
        return "too long";
    return s->check ? s->check(v) : NULL;
}

/* The whole list as VALUEs separated by spaces ("none" or "": empty);
 * entries are named 1, 2, ... Nothing changes on an error. */
static const char *list_apply(struct wr_conf_list *l, const struct wr_conf_setting *s,
                              const char *v)
{
    struct wr_conf_list *tmp = calloc(1, sizeof(*tmp));
    const char *why = NULL;

    if (!tmp)
        return "out of memory";
    if (strcmp(v, "none") != 0) {
        while (*v && !why) {
            char word[sizeof(tmp->item[0].value) + 1];
            size_t n = strcspn(v, " \t");
            if (n == 0) {
                v++;
                continue;
            }
            if (n >= sizeof(word))
                why = "too long";
            else if (tmp->n == WR_CONF_LIST_MAX)
                why = "too many entries";
            if (why)
                break;
            memcpy(word, v, n);
            word[n] = '\0';
            if (!(why = list_value_ok(s, word))) {
                snprintf(tmp->item[tmp->n].name, sizeof(tmp->item[0].name), "%u", tmp->n + 1);
                memcpy(tmp->item[tmp->n].value, word, n + 1);
                tmp->n++;
            }
            v += n;
        }
    }
    if (!why) {
        tmp->set = l->set;
        *l = *tmp;
    }
    free(tmp);
    return why;
}

/* One `PREFIX.NAME = VALUE` line. */
static const char *list_apply_item(struct wr_conf_list *l, const struct wr_conf_setting *s,
                                   const char *name, const char *v)
{
    size_t nl = strlen(name);
    const char *why;
    uint32_t i;

    if (nl == 0 || nl >= sizeof(l->item[0].name))
        return "name after the prefix is empty or too long";
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return "name after the prefix is not a word";
    if ((why = list_value_ok(s, v)) != NULL)
        return why;
    if (!l->set) {
        l->n = 0; /* the configuration replaces the built-in list */
        l->set = true;
    }
    for (i = 0; i < l->n; i++)
        if (!strcmp(l->item[i].name, name))
            break;
    if (i == l->n) {
        if (l->n == WR_CONF_LIST_MAX)
            return "too many entries";
        l->n++;
        memcpy(l->item[i].name, name, nl + 1);
    }
    snprintf(l->item[i].value, sizeof(l->item[i].value), "%s", v);
    return NULL;
}

/* The list row `PREFIX` of a `PREFIX.NAME` key, with *name pointing at NAME. */
static const struct wr_conf_setting *find_list_row(const char *key, const char **name)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        size_t n = strlen(settings[i].name);
        if (settings[i].type == WR_CONF_LIST && !strncmp(key, settings[i].name, n) &&
            key[n] == '.') {
            *name = key + n + 1;
            return &settings[i];
        }
    }
    return NULL;
}

static const char *check_user(const char *v)
{
    if (!*v)
        return "must not be empty";
    if (strchr(v, ','))
        return "must not contain ','";
    return NULL;
}

static const char *check_user_list(const char *v)
{
    if (strcmp(v, "none") == 0)
        return NULL;
    /* Every comma-separated item must have a name in it. */
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        size_t i = 0;
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i == n)
            return "empty user name in list (write none for no users)";
        if (!comma)
            return NULL;
        p = comma + 1;
    }
}

/* RabbitMQ's log.file: a file name or false ("true" is a mistake, not a
 * file name). */
static const char *check_log_file(const char *v)
{
    if (!*v)
        return "must not be empty (false for no file)";
    if (strcmp(v, "true") == 0)
        return "not a file name or false";
    return NULL;
}

/* ---- value parsers, one per type ---- */

static const char *parse_int(const char *v, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    /* strtoll would skip blanks and take a '+': accept digits only. */
    if (!((*v >= '0' && *v <= '9') || (*v == '-' && v[1] >= '0' && v[1] <= '9')))
        return "not an integer";
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0' || end == v)
        return "not an integer";
    if (errno == ERANGE || n < min || n > max)
        return "out of range";
    *out = (int64_t)n;
    return NULL;
}

static const char *parse_double(const char *v, double min, double max, double *out)
{
    char *end;
    /* strtod also takes hex floats, "inf" and "nan": allow only plain
     * decimal notation so a value means the same to people and to us. */
    for (const char *p = v; *p; p++) {
        if (!strchr("0123456789.+-eE", *p))
            return "not a number";
    }
    errno = 0;
    double d = strtod(v, &end);
    if (*end != '\0' || end == v || errno == ERANGE || !isfinite(d))
        return "not a number";
    if (d < min || d > max)
        return "out of range";
    *out = d;
    return NULL;
}

static const struct {
    const char *suffix;
    uint64_t mult;
} size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", UINT64_C(1) << 10},
    {"kib", UINT64_C(1) << 10},
    {"kb", UINT64_C(1000)},
    {"m", UINT64_C(1) << 20},
    {"mib", UINT64_C(1) << 20},
    {"mb", UINT64_C(1000000)},
    {"g", UINT64_C(1) << 30},
    {"gib", UINT64_C(1) << 30},
    {"gb", UINT64_C(1000000000)},
    {"t", UINT64_C(1) << 40},
    {"tib", UINT64_C(1) << 40},
    {"tb", UINT64_C(1000000000000)},
};

/* Digits, optional blanks, optional unit (case-insensitive): "50MB" is
 * 50 * 10^6 bytes and "1GiB" 2^30, as in rabbitmq.conf. */
static const char *parse_size(const char *v, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;
    const char *p = v;

    if (*p < '0' || *p > '9')
        return "not a size (examples: 1000000, 50MB, 1GiB)";
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return "out of range";
        n = n * 10 + d;
        p++;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
        if (strcasecmp(p, size_units[i].suffix) == 0) {
            if (n > max / size_units[i].mult)
                return "out of range";
            *out = n * size_units[i].mult;
            return NULL;
        }
    }
    return "unknown unit (use kB MB GB TB or KiB MiB GiB TiB)";
}

/* ---- setting values ---- */

static const char *apply(struct wr_conf *c, const struct wr_conf_setting *s, const char *v)
{
    char *field = (char *)c + s->offset;
    const char *why = NULL;

    switch (s->type) {
    case WR_CONF_INT: {
        int64_t n = -1;
        if ((s->flags & WR_CONF_FALSE) && strcmp(v, "false") == 0)
            n = 0;
        else if (!((s->flags & WR_CONF_INFINITY) && strcmp(v, "infinity") == 0) &&
                 !((s->flags & WR_CONF_AUTO) && strcmp(v, "auto") == 0))
            why = parse_int(v, s->imin, s->imax, &n);
        if (!why)
            memcpy(field, &n, sizeof n);
        break;
    }
    case WR_CONF_LIST:
        why = list_apply((struct wr_conf_list *)(void *)field, s, v);
        break;
    case WR_CONF_DOUBLE: {
        double d;
        why = parse_double(v, s->dmin, s->dmax, &d);
        if (!why)
            memcpy(field, &d, sizeof d);
        break;
    }
    case WR_CONF_SIZE: {
        uint64_t n;
        why = parse_size(v, (uint64_t)s->imax, &n);
        if (!why && n < (uint64_t)s->imin)
            why = "out of range";
        if (!why)
            memcpy(field, &n, sizeof n);
        break;
    }
    case WR_CONF_LOGLEVEL: {
        enum wr_log_level l = WR_LOG_UNSET;
        if (*v == '\0' && (s->flags & WR_CONF_EMPTY_OK))
            memcpy(field, &l, sizeof l);
        else if (wr_log_level_parse(v, &l) < 0)
            why = "not a log level (error, warning, info, debug)";
        else
            memcpy(field, &l, sizeof l);
        break;
    }
    case WR_CONF_BOOL: {
        bool b = strcmp(v, "true") == 0;
        if (!b && strcmp(v, "false") != 0)
            why = "not true or false";
        else
            memcpy(field, &b, sizeof b);
        break;
    }
    case WR_CONF_STRING: {
        size_t n = strlen(v);
        for (size_t i = 0; i < n && !why; i++) {
            unsigned char ch = (unsigned char)v[i];
            if (ch < 0x20 || ch == 0x7f)
                why = "contains a control character";
        }
        if (!why && n >= s->size)
            why = "too long";
        if (!why && s->check)
            why = s->check(v);
        if (!why)
            memcpy(field, v, n + 1);
        break;
    }
    }
    return why;
}

void wr_conf_init(struct wr_conf *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NSETTINGS; i++) {
        /* Defaults are tested to parse (check_conf.c); a failure here is a
         * bug in the table, and the zeroed field is the fallback. */
        (void)apply(c, &settings[i], settings[i].def);
    }
}

/* Copy of a value short enough to quote in a one-line error message. */
static const char *quote_value(const char *v, char *buf, size_t cap)
{
    size_t n = strlen(v);
    size_t max = cap - 4;
    size_t i;
    for (i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)v[i];
        buf[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (i < n) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* rabbitmq.conf also writes a listener as IP:PORT (IPv6 as [ADDR]:PORT or
 * ADDR:PORT, the port after the last colon): that sets listeners.tcp.ip
 * too. */
static const char *apply_listener(struct wr_conf *c, const char *value)
{
    char ip[64];
    const char *colon = strrchr(value, ':');
    size_t n = (size_t)(colon - value);
    const char *why;

    if (n >= 2 && value[0] == '[' && value[n - 1] == ']') {
        value++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof ip)
        return "not PORT or IP:PORT";
    memcpy(ip, value, n);
    ip[n] = '\0';
    if ((why = apply(c, wr_conf_find("listeners.tcp.ip"), ip)) != NULL)
        return why;
    return apply(c, wr_conf_find("listeners.tcp.default"), colon + 1);
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static bool is_key_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

/* ---- reporting ---- */

/* Where a value comes from: a file's line, a file, or (origin NULL) the
 * command line; and the report that collects the problems. */
struct where {
    const char *origin;
    unsigned line;
    struct wr_conf_report *r;
};

static void report(struct where *w, bool warning, const char *fmt, ...) WR_PRINTF(3, 4);

static void report(struct where *w, bool warning, const char *fmt, ...)
{
    struct wr_conf_error e = {.line = w->line, .warning = warning};
    int n = 0;
    va_list ap;

    if (w->origin && w->line)
        n = snprintf(e.msg, sizeof e.msg, "%s:%u: ", w->origin, w->line);
    else if (w->origin)
        n = snprintf(e.msg, sizeof e.msg, "%s: ", w->origin);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof e.msg)
        n = (int)sizeof e.msg - 1;
    va_start(ap, fmt);
    vsnprintf(e.msg + n, sizeof e.msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (warning)
        w->r->warnings++;
    else if (w->r->errors++ == 0)
        w->r->first = e;
    if (w->r->fn)
        w->r->fn(w->r->arg, &e);
}

/* ---- keys with a name in them ---- */

/* Add `item` to, or remove it from, a comma-separated list (blanks around
 * an item do not count when comparing); a new item goes last. Returns NULL
 * or why not. */
static const char *list_toggle(char *list, size_t cap, const char *item, bool on)
{
    size_t il = strlen(item), ll = strlen(list);
    char *p = list;

    for (;;) {
        char *comma = strchr(p, ',');
        char *end = comma ? comma : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if ((size_t)(b - a) == il && memcmp(a, item, il) == 0) {
            if (on)
                return NULL;
            if (comma)
                memmove(p, comma + 1, strlen(comma + 1) + 1);
            else if (p > list)
                p[-1] = '\0'; /* the last one: drop the comma before it */
            else
                *p = '\0';
            return NULL;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!on)
        return NULL;
    if (ll + (ll ? 1 : 0) + il >= cap)
        return "list too long";
    if (ll)
        list[ll++] = ',';
    memcpy(list + ll, item, il + 1);
    return NULL;
}

/* The name after the prefix of a NAME-in-the-key setting: a word without
 * blanks, control characters or commas. */
static const char *check_key_name(const char *v)
{
    if (!*v || strchr(v, ','))
        return "not a name";
    for (; *v; v++)
        if ((unsigned char)*v < 0x21 || *v == 0x7f)
            return "not a name";
    return NULL;
}

static const char *parse_bool(const char *v, bool *on)
{
    *on = strcmp(v, "true") == 0;
    return *on || strcmp(v, "false") == 0 ? NULL : "not true or false";
}

#define TAGS_PREFIX "default_user_tags."
#define LOOPBACK_PREFIX "loopback_users."

/* default_user_tags.<tag> for a tag without a row of its own (RabbitMQ
 * takes any word as a tag): kept in a comma list, in the order first set. */
static const char *apply_other_tag(struct wr_conf *c, const char *tag, const char *value)
{
    bool on;
    const char *why = parse_bool(value, &on);
    if (why || (why = check_key_name(tag)) != NULL)
        return why;
    return list_toggle(c->default_user_tags_other, sizeof c->default_user_tags_other, tag, on);
}

/* rabbitmq.conf's loopback_users.<user> = true|false: the user joins or
 * leaves the loopback_users list ("none" when it empties). */
static const char *apply_loopback_user(struct wr_conf *c, const char *user, const char *value)
{
    char *list = c->loopback_users;
    bool on;
    const char *why = parse_bool(value, &on);

    if (why || (why = check_key_name(user)) != NULL)
        return why;
    if (strcmp(list, "none") == 0)
        list[0] = '\0';
    why = list_toggle(list, sizeof c->loopback_users, user, on);
    if (!list[0])
        strcpy(list, "none");
    return why;
}

/* A key without a row: a typo of a known key (error, with the hint), a
 * RabbitMQ key Warren does not implement (warning, ignored), or nothing
 * known (error). A near key wins over a family of RabbitMQ keys only at
 * one edit: management.tcp.prot is a typo, prometheus.tcp.ip is not. */
static int unknown_key(const char *name, struct where *w)
{
    char qn[64];
    const char *near = wr_conf_closest(name);
    bool rabbit = wr_conf_rabbit_only(name);

    quote_value(name, qn, sizeof qn);
    if (near && (!rabbit || wr_conf_edit_distance(name, near, 1) <= 1)) {
        report(w, false, "%s: unknown setting; did you mean '%s'?", qn, near);
        return WR_ESYNTAX;
    }
    if (rabbit) {
        report(w, true, "%s: a RabbitMQ setting that Warren does not implement; ignored", qn);
        return 0;
    }
    report(w, false, "%s: unknown setting", qn);
    return WR_ESYNTAX;
}

#define ENABLED_PREFIX "plugins.enabled."
#define PLUGIN_PREFIX "plugin."
#define BACKENDS_PREFIX "auth_backends."

/* A plugin's name: what its file is called (NAME.so). */
static bool plugin_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

/* auth_backends.N = NAME, as rabbitmq.conf: "internal" (also RabbitMQ's
 * rabbit_auth_backend_internal) or a backend a plugin registers. Kept as
 * a comma list in the order given. */
static const char *apply_backend(struct wr_conf *c, const char *value)
{
    if (!strcmp(value, "rabbit_auth_backend_internal"))
        value = "internal";
    if (!plugin_name_ok(value, strlen(value)))
        return "not a backend name (a-z, 0-9, _ and -)";
    return list_toggle(c->auth_backends, sizeof c->auth_backends, value, true);
}

/* plugins.enabled.N = NAME (a comma list, each name once) and
 * plugin.NAME.KEY = VALUE (kept as "NAME.KEY=VALUE" lines for the plugin
 * to read; a later line for the same key replaces the value). */
static const char *apply_plugin_key(struct wr_conf *c, const char *name, const char *value)
{
    if (strncmp(name, BACKENDS_PREFIX, strlen(BACKENDS_PREFIX)) == 0)
        return apply_backend(c, value);
    if (strncmp(name, ENABLED_PREFIX, strlen(ENABLED_PREFIX)) == 0) {
        if (!plugin_name_ok(value, strlen(value)))
            return "not a plugin name (a-z, 0-9, _ and -)";
        return list_toggle(c->plugins_enabled, sizeof c->plugins_enabled, value, true);
    }
    {
        const char *key = name + strlen(PLUGIN_PREFIX), *dot = strchr(key, '.');
        char *kv = c->plugin_settings, *p;
        size_t kl, vl = strlen(value), total = strlen(kv);
        if (!dot || !plugin_name_ok(key, (size_t)(dot - key)) || !dot[1])
            return "not plugin.NAME.KEY";
        kl = strlen(key);
        if (strchr(value, '\n'))
            return "not one line";
        /* drop an earlier value of the same key */
        for (p = kv; *p;) {
            char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
            if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
                memmove(p, p + n, strlen(p + n) + 1);
                total -= n;
                continue;
            }
            p += n;
        }
        if (total + kl + vl + 2 >= sizeof c->plugin_settings)
            return "too many plugin settings";
        snprintf(kv + total, sizeof c->plugin_settings - total, "%s=%s\n", key, value);
        return NULL;
    }
}

static int set_at(struct wr_conf *c, const char *name, const char *value, struct where *w)
{
    const struct wr_conf_setting *s;
    /* the name the issue tracker and other brokers use for RabbitMQ's
     * connection_max */
    if (strcmp(name, "max_connections") == 0)
        name = "connection_max";
    s = wr_conf_find(name);
    char q[64], qn[64];
    const char *why;

    if (!s) {
        const struct wr_conf_setting *ls;
        const char *item;
        if (strncmp(name, TAGS_PREFIX, strlen(TAGS_PREFIX)) == 0)
            why = apply_other_tag(c, name + strlen(TAGS_PREFIX), value);
        else if ((ls = find_list_row(name, &item)) != NULL)
            why = list_apply_item((struct wr_conf_list *)(void *)((char *)c + ls->offset), ls, item,
                                  value);
        else if (strncmp(name, LOOPBACK_PREFIX, strlen(LOOPBACK_PREFIX)) == 0)
            why = apply_loopback_user(c, name + strlen(LOOPBACK_PREFIX), value);
        else if (strncmp(name, ENABLED_PREFIX, strlen(ENABLED_PREFIX)) == 0 ||
                 strncmp(name, BACKENDS_PREFIX, strlen(BACKENDS_PREFIX)) == 0 ||
                 strncmp(name, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) == 0)
            why = apply_plugin_key(c, name, value);
        else
            return unknown_key(name, w);
        if (!why)
            return 0;
        report(w, false, "%s: invalid value '%s': %s", quote_value(name, qn, sizeof qn),
               quote_value(value, q, sizeof q), why);
        return WR_ESYNTAX;
    }
    if (strcmp(s->name, "listeners.tcp.default") == 0 && strchr(value, ':'))
        why = apply_listener(c, value);
    else
        why = apply(c, s, value);
    if (!why) {
        /* Given, so the built-in listener or list is not the default any more
         * (listeners.tcp.default = IP:PORT sets listeners.tcp.ip too). */
        if (!strcmp(s->name, "listeners.tcp.default"))
            c->amqp_default_set = true;
        if (s->type == WR_CONF_LIST)
            ((struct wr_conf_list *)(void *)((char *)c + s->offset))->set = true;
        return 0;
    }

    char range[96] = "";
    if ((s->type == WR_CONF_INT || s->type == WR_CONF_SIZE) && strcmp(why, "out of range") == 0)
        snprintf(range, sizeof range, " (%lld..%lld)", (long long)s->imin, (long long)s->imax);
    else if (s->type == WR_CONF_DOUBLE && strcmp(why, "out of range") == 0)
        snprintf(range, sizeof range, " (%g..%g)", s->dmin, s->dmax);
    report(w, false, "%s: invalid value '%s': %s%s", s->name, quote_value(value, q, sizeof q), why,
           range);
    return WR_ESYNTAX;
}

int wr_conf_set(struct wr_conf *c, const char *name, const char *value, struct wr_conf_error *err)
{
    struct wr_conf_report r;
    struct where w = {NULL, 0, &r};
    int rc;

    memset(&r, 0, sizeof r);
    rc = set_at(c, name, value, &w);
    if (rc < 0 && err)
        *err = r.first;
    return rc;
}

/* One line, already copied and NUL-terminated, without its newline. */
static int parse_line(struct wr_conf *c, char *s, struct where *w)
{
    size_t n = strlen(s);

    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
    while (is_blank(*s))
        s++;
    if (*s == '\0' || *s == '#')
        return 0;

    char *key = s;
    while (is_key_char(*s))
        s++;
    char *key_end = s;
    while (is_blank(*s))
        s++;
    if (key_end == key || *s != '=') {
        report(w, false, "expected 'key = value'");
        return WR_ESYNTAX;
    }
    *key_end = '\0';
    s++;
    while (is_blank(*s))
        s++;
    if (*s == '\0') {
        const struct wr_conf_setting *row = wr_conf_find(key);
        if (row && (row->flags & WR_CONF_EMPTY_OK))
            return set_at(c, key, s, w);
        if (!row && wr_conf_rabbit_only(key))
            return unknown_key(key, w);
        report(w, false, "%s: missing value", key);
        return WR_ESYNTAX;
    }
    return set_at(c, key, s, w);
}

int wr_conf_parse_report(struct wr_conf *c, const char *buf, size_t len, const char *origin,
                         struct wr_conf_report *r)
{
    char line[WR_CONF_LINE_MAX + 1];
    struct where w = {origin ? origin : "<config>", 0, r};
    size_t pos = 0;

    r->errors = r->warnings = 0;
    memset(&r->first, 0, sizeof r->first);
    if (len > WR_CONF_FILE_MAX) {
        report(&w, false, "file too large (more than %d bytes)", WR_CONF_FILE_MAX);
        return WR_ESYNTAX;
    }
    /* A UTF-8 byte order mark, as some editors write, is not part of a key. */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;

    while (pos < len) {
        const char *start = buf + pos;
        size_t left = len - pos;
        const char *nl = memchr(start, '\n', left);
        size_t n = nl ? (size_t)(nl - start) : left;

        w.line++;
        pos += n + (nl ? 1 : 0);
        if (n > WR_CONF_LINE_MAX) {
            report(&w, false, "line too long (more than %d bytes)", WR_CONF_LINE_MAX);
            continue;
        }
        if (memchr(start, '\0', n)) {
            report(&w, false, "NUL byte in line");
            continue;
        }
        memcpy(line, start, n);
        line[n] = '\0';
        (void)parse_line(c, line, &w);
    }
    return r->errors ? WR_ESYNTAX : 0;
}

int wr_conf_parse(struct wr_conf *c, const char *buf, size_t len, const char *origin,
                  struct wr_conf_error *err)
{
    struct wr_conf_report r;
    int rc;

    memset(&r, 0, sizeof r);
    rc = wr_conf_parse_report(c, buf, len, origin, &r);
    if (rc < 0 && err)
        *err = r.first;
    return rc;
}

int wr_conf_load_file_report(struct wr_conf *c, const char *path, struct wr_conf_report *r)
{
    struct stat st;
    struct where w = {path, 0, r};
    char *buf = NULL;
    size_t got = 0;
    int rc = WR_EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    r->errors = r->warnings = 0;
    memset(&r->first, 0, sizeof r->first);
    if (fd < 0) {
        report(&w, false, "cannot open: %s", strerror(errno));
        return WR_EIO;
    }
    if (fstat(fd, &st) < 0) {
        report(&w, false, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        report(&w, false, "not a regular file");
        goto out;
    }
    if (st.st_size > WR_CONF_FILE_MAX) {
        report(&w, false, "file too large (more than %d bytes)", WR_CONF_FILE_MAX);
        rc = WR_ESYNTAX;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        report(&w, false, "out of memory");
        rc = WR_ENOMEM;
        goto out;
    }
    /* Read until EOF rather than trusting st_size: the file may change. */
    for (;;) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            report(&w, false, "read error: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got > (size_t)st.st_size) {
            report(&w, false, "file changed while being read");
            goto out;
        }
    }
    rc = wr_conf_parse_report(c, buf, got, path, r);
out:
    free(buf);
    close(fd);
    return rc;
}

int wr_conf_load_file(struct wr_conf *c, const char *path, struct wr_conf_error *err)
{
    struct wr_conf_report r;
    int rc;

    memset(&r, 0, sizeof r);
    rc = wr_conf_load_file_report(c, path, &r);
    if (rc < 0 && err)
        *err = r.first;
    return rc;
}

/* A TLS listener needs a certificate and its key; checking clients needs
 * the CAs to check them against. */
static int check_tls(const struct wr_conf_tls *t, const char *prefix, bool used,
                     const char *listener, struct wr_conf_error *err)
{
    if (!used)
        return 0;
    if (!t->certfile[0] || !t->keyfile[0]) {
        set_error(err, 0, "%s is set but %s.%s is not", listener, prefix,
                  t->certfile[0] ? "keyfile" : "certfile");
        return WR_ESYNTAX;
    }
    if (!strcmp(t->verify, "verify_peer") && !t->cacertfile[0]) {
        set_error(err, 0, "%s.verify = verify_peer needs %s.cacertfile", prefix, prefix);
        return WR_ESYNTAX;
    }
    if (t->fail_if_no_peer_cert && strcmp(t->verify, "verify_peer") != 0) {
        set_error(err, 0, "%s.fail_if_no_peer_cert = true needs %s.verify = verify_peer", prefix,
                  prefix);
        return WR_ESYNTAX;
    }
    return 0;
}

int wr_conf_check(const struct wr_conf *c, struct wr_conf_error *err)
{
    if (c->mgmt_port != 0 && c->mgmt_port == c->amqp_port) {
        set_error(err, 0, "management.tcp.port and listeners.tcp.default are both %lld",
                  (long long)c->amqp_port);
        return WR_ESYNTAX;
    }
    if (c->prom_port != 0 && (c->prom_port == c->amqp_port || c->prom_port == c->mgmt_port)) {
        set_error(err, 0, "prometheus.tcp.port %lld is already the %s port",
                  (long long)c->prom_port, c->prom_port == c->amqp_port ? "AMQP" : "management");
        return WR_ESYNTAX;
    }
    if (c->mgmt_ssl_port != 0 &&
        (c->mgmt_ssl_port == c->mgmt_port || c->mgmt_ssl_port == c->prom_port ||
         c->mgmt_ssl_port == c->amqp_port)) {
        set_error(err, 0, "management.ssl.port %lld is already another listener's port",
                  (long long)c->mgmt_ssl_port);
        return WR_ESYNTAX;
    }
    if (check_tls(&c->ssl, "ssl_options", c->ssl_listeners.n > 0, "listeners.ssl", err) < 0 ||
        check_tls(&c->mgmt_ssl, "management.ssl", c->mgmt_ssl_port != 0, "management.ssl.port",
                  err) < 0)
        return WR_ESYNTAX;
    return 0;
}

static int format_size(uint64_t n, char *out, size_t cap)
{
    /* Largest unit that divides exactly, decimal first: 50MB stays 50MB. */
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"TB", UINT64_C(1000000000000)}, {"TiB", UINT64_C(1) << 40}, {"GB", UINT64_C(1000000000)},
        {"GiB", UINT64_C(1) << 30},      {"MB", UINT64_C(1000000)},  {"MiB", UINT64_C(1) << 20},
        {"kB", UINT64_C(1000)},          {"KiB", UINT64_C(1) << 10},
    };
    const char *unit = "";
    for (size_t i = 0; n != 0 && i < sizeof units / sizeof units[0]; i++) {
        if (n % units[i].mult == 0) {
            n /= units[i].mult;
            unit = units[i].name;
            break;
        }
    }
    int w = snprintf(out, cap, "%llu%s", (unsigned long long)n, unit);
    return (w < 0 || (size_t)w >= cap) ? WR_ENOSPC : 0;
}

int wr_conf_format(const struct wr_conf *c, const struct wr_conf_setting *s, char *out, size_t cap)
{
    const char *field = (const char *)c + s->offset;
    int w = -1;

    switch (s->type) {
    case WR_CONF_INT: {
        int64_t n;
        memcpy(&n, field, sizeof n);
        if (n < 0 && (s->flags & WR_CONF_INFINITY))
            w = snprintf(out, cap, "infinity");
        else if (n < 0 && (s->flags & WR_CONF_AUTO))
            w = snprintf(out, cap, "auto");
        else
            w = snprintf(out, cap, "%lld", (long long)n);
        break;
    }
    case WR_CONF_DOUBLE: {
        double d;
        memcpy(&d, field, sizeof d);
        /* %.17g round-trips; try the short form first for readability. */
        w = snprintf(out, cap, "%g", d);
        if (w >= 0 && (size_t)w < cap && strtod(out, NULL) != d)
            w = snprintf(out, cap, "%.17g", d);
        break;
    }
    case WR_CONF_SIZE: {
        uint64_t n;
        memcpy(&n, field, sizeof n);
        return format_size(n, out, cap);
    }
    case WR_CONF_LOGLEVEL: {
        enum wr_log_level l;
        memcpy(&l, field, sizeof l);
        w = snprintf(out, cap, "%s", l == WR_LOG_UNSET ? "" : wr_log_level_name(l));
        break;
    }
    case WR_CONF_BOOL: {
        bool b;
        memcpy(&b, field, sizeof b);
        w = snprintf(out, cap, "%s", b ? "true" : "false");
        break;
    }
    case WR_CONF_STRING:
        w = snprintf(out, cap, "%s", field);
        break;
    case WR_CONF_LIST: {
        const struct wr_conf_list *l = (const struct wr_conf_list *)(const void *)field;
        size_t o = 0;
        if (cap)
            out[0] = '\0';
        for (uint32_t i = 0; i < l->n; i++) {
            w = snprintf(out + o, cap - o, "%s%s", i ? " " : "", l->item[i].value);
            if (w < 0 || (size_t)w >= cap - o)
                return WR_ENOSPC;
            o += (size_t)w;
        }
        w = (int)o;
        break;
    }
    }
    return (w < 0 || (size_t)w >= cap) ? WR_ENOSPC : 0;
}

void wr_conf_print(const struct wr_conf *c, FILE *f)
{
    char v[1100];
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct wr_conf_setting *s = &settings[i];
        if (s->type == WR_CONF_LIST) {
            /* rabbitmq.conf's form: one line per entry. */
            const struct wr_conf_list *l =
                (const struct wr_conf_list *)(const void *)((const char *)c + s->offset);
            for (uint32_t j = 0; j < l->n; j++)
                fprintf(f, "%s.%s = %s\n", s->name, l->item[j].name, l->item[j].value);
            if (!l->n && l->set)
                fprintf(f, "%s = none\n", s->name);
            continue;
        }
        if (s->flags & WR_CONF_SECRET)
            snprintf(v, sizeof v, "********");
        else if (wr_conf_format(c, s, v, sizeof v) < 0)
            snprintf(v, sizeof v, "(too long to print)");
        fprintf(f, "%s = %s\n", s->name, v);
    }
    for (const char *p = c->default_user_tags_other; *p;) {
        const char *comma = strchr(p, ',');
        int n = comma ? (int)(comma - p) : (int)strlen(p);
        fprintf(f, TAGS_PREFIX "%.*s = true\n", n, p);
        p += n + (comma ? 1 : 0);
    }
    {
        unsigned k = 0;
        for (const char *p = c->plugins_enabled; *p;) {
            const char *comma = strchr(p, ',');
            int n = comma ? (int)(comma - p) : (int)strlen(p);
            fprintf(f, ENABLED_PREFIX "%u = %.*s\n", ++k, n, p);
            p += n + (comma ? 1 : 0);
        }
    }
    {
        unsigned k = 0;
        for (const char *p = c->auth_backends; *p;) {
            const char *comma = strchr(p, ',');
            int n = comma ? (int)(comma - p) : (int)strlen(p);
            fprintf(f, BACKENDS_PREFIX "%u = %.*s\n", ++k, n, p);
            p += n + (comma ? 1 : 0);
        }
    }
    /* A plugin's settings may be secrets (a password of its backend):
     * the keys are shown, the values not. */
    for (const char *p = c->plugin_settings; *p;) {
        const char *eq = strchr(p, '='), *nl = strchr(p, '\n');
        if (!eq || !nl)
            break;
        fprintf(f, PLUGIN_PREFIX "%.*s = ********\n", (int)(eq - p), p);
        p = nl + 1;
    }
}

void wr_conf_default_tags(const struct wr_conf *c, char *out, size_t cap)
{
    const struct {
        bool on;
        const char *name;
    } known[] = {
        {c->tag_administrator, "administrator"}, {c->tag_management, "management"},
        {c->tag_monitoring, "monitoring"},       {c->tag_policymaker, "policymaker"},
        {c->tag_impersonator, "impersonator"},
    };
    size_t o = 0;

    if (!cap)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!known[i].on)
            continue;
        int w = snprintf(out + o, cap - o, "%s%s", o ? "," : "", known[i].name);
        if (w < 0 || (size_t)w >= cap - o)
            return;
        o += (size_t)w;
    }
    if (c->default_user_tags_other[0])
        snprintf(out + o, cap - o, "%s%s", o ? "," : "", c->default_user_tags_other);
}

bool wr_conf_is_loopback_user(const struct wr_conf *c, const char *user)
{
    const char *p = c->loopback_users;
    size_t ulen = strlen(user);

    if (strcmp(p, "none") == 0)
        return false;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && is_blank(*p))
            p++;
        const char *e = end;
        while (e > p && is_blank(e[-1]))
            e--;
        if ((size_t)(e - p) == ulen && memcmp(p, user, ulen) == 0)
            return true;
        if (!comma)
            return false;
        p = comma + 1;
    }
}

void wr_conf_log_path(const struct wr_conf *c, char *out, size_t cap)
{
    if (strcmp(c->log_file, "false") == 0)
        snprintf(out, cap, "%s", "");
    else if (c->log_file[0] == '/')
        snprintf(out, cap, "%s", c->log_file);
    else
        snprintf(out, cap, "%s/%s", c->log_dir, c->log_file);
}

/* One setting's value for a log line about a change. */
static const char *shown(const struct wr_conf *c, const struct wr_conf_setting *s, char *out,
                         size_t cap)
{
    if (s->flags & WR_CONF_SECRET)
        snprintf(out, cap, "********");
    else if (wr_conf_format(c, s, out, cap) < 0)
        snprintf(out, cap, "(too long to show)");
    return out;
}

unsigned wr_conf_reload(struct wr_conf *live, const struct wr_conf *fresh, unsigned *restart)
{
    char a[1100], b[1100];
    unsigned applied = 0;

    *restart = 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct wr_conf_setting *s = &settings[i];
        if (wr_conf_format(live, s, a, sizeof a) == 0 &&
            wr_conf_format(fresh, s, b, sizeof b) == 0 && strcmp(a, b) == 0)
            continue;
        if (s->flags & WR_CONF_RELOAD) {
            wr_log(WR_LOG_INFO, "configuration: %s changed from '%s' to '%s'", s->name,
                   shown(live, s, a, sizeof a), shown(fresh, s, b, sizeof b));
            memcpy((char *)live + s->offset, (const char *)fresh + s->offset, s->size);
            applied++;
        } else {
            wr_log(WR_LOG_WARNING,
                   "configuration: %s changed from '%s' to '%s', which needs a restart: "
                   "not applied",
                   s->name, shown(live, s, a, sizeof a), shown(fresh, s, b, sizeof b));
            (*restart)++;
        }
    }
    if (strcmp(live->default_user_tags_other, fresh->default_user_tags_other) != 0) {
        wr_log(WR_LOG_WARNING, "configuration: default_user_tags changed, which needs a restart "
                               "(and applies only to a first start)");
        (*restart)++;
    }
    return applied;
}
