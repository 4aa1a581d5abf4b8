/*
 * warrend.c - main() of the broker daemon.
 *
 * Order of work: built-in defaults, then the configuration file (-c), then
 * command-line overrides in the order given; then the checks that must pass
 * before the broker may start (settings consistent, data directory usable,
 * ports free). Each failure ends the process with one line on stderr and a
 * non-zero status, so systemd and scripts see why at a glance. Startup does
 * not fall back to a default when something is wrong: a broker quietly
 * running on the wrong port or without its data is worse than one that
 * refuses to start.
 *
 * warrend runs in the foreground; supervision and daemonizing are systemd's
 * job (etc/warrend.service).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "auth/perm.h"
#include "broker/broker.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/version.h"
#include "mgmt/mgmt.h"
#include "net/listen.h"
#include "net/server.h"
#include "store/defs.h"
#include "store/store.h"

#define EXIT_START_FAILED 1
#define EXIT_USAGE 2

static const char usage_text[] =
    "Usage: warrend [OPTION]...\n"
    "Run the Warren AMQP 0-9-1 message broker in the foreground.\n"
    "\n"
    "  -c, --config FILE      read settings from FILE (rabbitmq.conf style:\n"
    "                         key = value); without it built-in defaults apply\n"
    "  -p, --port N           AMQP port (listeners.tcp.default, default 5672)\n"
    "      --bind ADDR        address to listen on (listeners.tcp.ip, default 127.0.0.1\n"
    "                         and ::1)\n"
    "      --data-dir DIR     data directory, created if missing (data_dir)\n"
    "      --mgmt-port N      management HTTP API and /metrics port, 0 disables\n"
    "                         it (management.tcp.port, default 15672)\n"
    "      --log-level LEVEL  error, warning, info or debug (log.level, default info)\n"
    "  -V, --version          print the version and exit\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "Command-line options override the configuration file.\n"
    "Exit status: 0 after a clean shutdown, 1 when the broker cannot start\n"
    "(bad configuration, unusable data directory, port in use), 2 for bad usage.\n"
    "See warrend(8) and warren.conf(5).\n";

/* A command-line option that sets a configuration key. */
struct override {
    const char *option;
    const char *key;
    const char *value;
};

enum { OPT_BIND = 256, OPT_DATA_DIR, OPT_MGMT_PORT, OPT_LOG_LEVEL };

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"port", required_argument, NULL, 'p'},
    {"bind", required_argument, NULL, OPT_BIND},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"mgmt-port", required_argument, NULL, OPT_MGMT_PORT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void fail(const char *fmt, ...) WR_PRINTF(1, 2);

static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("warrend: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_START_FAILED);
}

/* mkdir -p: create each missing component of `path`. */
static int make_dirs(const char *path)
{
    char buf[sizeof((struct wr_conf *)0)->data_dir];
    size_t n = strlen(path);

    if (n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
            return -1;
        buf[i] = saved;
    }
    return 0;
}

/* The data directory must exist (we create it) and take a new file: the
 * journal will fail far from startup otherwise. Checked by creating and
 * removing a file, because access(2) says yes to root on read-only mounts. */
static void check_data_dir(const char *dir)
{
    struct stat st;
    char probe[sizeof((struct wr_conf *)0)->data_dir + 32];

    if (make_dirs(dir) < 0)
        fail("data directory %s cannot be created: %s", dir, strerror(errno));
    if (stat(dir, &st) < 0)
        fail("data directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        fail("data directory %s is not a directory", dir);
    snprintf(probe, sizeof probe, "%s/.warrend-probe-XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0 && errno == ENOSPC) {
        /* Writable but full: start anyway, so what was confirmed can be
         * recovered and consumed; the disk alarm blocks publishers. */
        wr_log(WR_LOG_WARNING, "data directory %s is full", dir);
        return;
    }
    if (fd < 0)
        fail("data directory %s is not writable: %s", dir, strerror(errno));
    ssize_t w = write(fd, "w", 1);
    int werr = errno;
    close(fd);
    unlink(probe);
    if (w != 1 && werr == ENOSPC)
        wr_log(WR_LOG_WARNING, "data directory %s is full", dir);
    else if (w != 1)
        fail("data directory %s is not writable: %s", dir, strerror(werr));
}

/* Bind (and listen on) the port the way the real listener will, then let
 * go. This catches "port in use" and "address not on this host" before any
 * state is touched; the listener itself still reports a bind failure if
 * another process wins the port in between. */
static void check_port(const char *ip, int64_t port, const char *what)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        len = sizeof *sin;
    } else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        len = sizeof *sin6;
    } else {
        fail("%s address %s is not an IP address", what, ip); /* conf checks this */
    }

    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("cannot create a socket: %s", strerror(errno));
    /* As the listener will: TIME_WAIT leftovers of a previous run must not
     * count as "in use". */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1) < 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE)
            fail("%s port %lld on %s: port in use", what, (long long)port, ip);
        if (e == EADDRNOTAVAIL)
            fail("%s address %s is not an address of this host", what, ip);
        fail("%s port %lld on %s: cannot bind: %s", what, (long long)port, ip, strerror(e));
    }
    close(fd);
}

/* The first start of a data directory (it holds no users) without
 * load_definitions: default_user with its tags and permissions on
 * default_vhost, as RabbitMQ seeds a fresh node. */
static int create_defaults(struct wr_broker *b, const struct wr_conf *conf)
{
    struct wr_str vhost = wr_str_c(conf->default_vhost), user = wr_str_c(conf->default_user);
    struct wr_errbuf err;
    char tags[1024];

    wr_conf_default_tags(conf, tags, sizeof tags);
    if ((!wr_broker_vhost(b, vhost) && !wr_broker_vhost_add(b, vhost)) ||
        wr_users_put_password(b->users, user, wr_str_c(conf->default_pass), wr_str_c(tags),
                              &err) < 0 ||
        wr_users_set_permissions(b->users, user, vhost, wr_str_c(conf->default_perm_configure),
                                 wr_str_c(conf->default_perm_write),
                                 wr_str_c(conf->default_perm_read), &err) < 0) {
        wr_log(WR_LOG_ERROR, "cannot create the default user and vhost: out of memory");
        return WR_ENOMEM;
    }
    wr_log(WR_LOG_INFO, "first start: created user '%s' (tags: %s) and vhost '%s'",
           conf->default_user, tags[0] ? tags : "none", conf->default_vhost);
    return 0;
}

/* The management API (and /metrics) beside the AMQP listener. */
static struct wr_mgmt *mgmt;

static int mgmt_start(struct wr_server *s, void *arg)
{
    const struct wr_conf *conf = arg;
    if (!conf->mgmt_port && !conf->prom_port && !conf->mgmt_ssl_port) /* TLS helper: HTTPS */
        return 0;
    mgmt = wr_mgmt_start(s, conf);
    return mgmt ? 0 : WR_EIO;
}

static void mgmt_stop(struct wr_server *s, void *arg)
{
    (void)s;
    (void)arg;
    wr_mgmt_stop(mgmt);
    mgmt = NULL;
}

/* The broker, the store opened on it (recovering what the data directory
 * holds: vhosts, users, permissions, durable objects, messages), then
 * load_definitions imported or, at a first start without it, the default
 * user and vhost created; then the server until SIGTERM/SIGINT. Returns 0
 * after a clean stop, negative when something could not start (logged). */
static int run(const struct wr_conf *conf)
{
    struct event_base *base = NULL;
    struct wr_broker *b = NULL;
    struct wr_store *store = NULL;
    struct wr_defs *defs = NULL;
    struct wr_defs_err derr;
    struct wr_errbuf err;
    uint64_t t0;
    int rc = 0;

    /* A definitions file that cannot be read or parsed stops the start
     * before the data directory is touched. */
    if (conf->load_definitions[0] && !(defs = wr_defs_read(conf->load_definitions, &derr))) {
        wr_log(WR_LOG_ERROR, "cannot load definitions: %s", derr.msg);
        rc = WR_ESYNTAX;
        goto out;
    }
    base = event_base_new();
    b = base ? wr_broker_new(base, conf) : NULL;
    if (!b) {
        wr_log(WR_LOG_ERROR, "out of memory starting the broker");
        rc = WR_ENOMEM;
        goto out;
    }
    wr_clock_update();
    t0 = wr_now_us();
    store = wr_store_open(conf->data_dir, base, (uint32_t)conf->fsync_interval_ms,
                          (uint32_t)conf->segment_size, b, &err);
    if (!store) {
        wr_log(WR_LOG_ERROR, "cannot open the data directory %s: %s", conf->data_dir, err.text);
        rc = WR_EIO;
        goto out;
    }
    wr_broker_set_persist(b, wr_store_persist(store));
    wr_store_on_synced(store, wr_broker_journal_synced, b);
    wr_clock_update();
    b->recovery_s = (double)(wr_now_us() - t0) / 1e6;
    wr_log(WR_LOG_INFO, "data directory %s opened in %.3f s", conf->data_dir, b->recovery_s);

    if (defs) {
        rc = wr_defs_import(b, defs, WR_DEFS_IMPORT, &derr);
        if (rc < 0) {
            wr_log(WR_LOG_ERROR, "cannot import definitions from %s: %s%s",
                   conf->load_definitions, derr.msg,
                   rc == WR_ESYNTAX ? " (nothing was imported)" : "");
            goto out;
        }
    } else if (wr_users_count(b->users) == 0 && (rc = create_defaults(b, conf)) < 0) {
        goto out;
    }
    /* Write what changed now, before any client can see it. */
    wr_broker_turn_end(b);

    struct wr_server_hooks mgmt_hooks = {mgmt_start, mgmt_stop, (void *)conf};
    rc = wr_server_run(base, conf, b, &mgmt_hooks);
out:
    wr_defs_free(defs);
    /* Stop journaling before the queues go: they are not deleted, only
     * forgotten by this process. */
    if (b)
        wr_broker_set_persist(b, NULL);
    wr_store_close(store);
    if (rc == 0)
        wr_log(WR_LOG_INFO, "stopped");
    wr_broker_free(b);
    if (base)
        event_base_free(base);
    return rc;
}

int main(int argc, char **argv)
{
    struct wr_conf conf;
    struct wr_conf_error err;
    struct override overrides[16];
    size_t noverrides = 0;
    const char *config_path = NULL;
    int opt;

    wr_conf_init(&conf);

    while ((opt = getopt_long(argc, argv, "c:p:hV", long_options, NULL)) != -1) {
        const char *option = NULL, *key = NULL;
        switch (opt) {
        case 'c':
            config_path = optarg;
            continue;
        case 'p':
            option = "--port";
            key = "listeners.tcp.default";
            break;
        case OPT_BIND:
            option = "--bind";
            key = "listeners.tcp.ip";
            break;
        case OPT_DATA_DIR:
            option = "--data-dir";
            key = "data_dir";
            break;
        case OPT_MGMT_PORT:
            option = "--mgmt-port";
            key = "management.tcp.port";
            break;
        case OPT_LOG_LEVEL:
            option = "--log-level";
            key = "log.level";
            break;
        case 'V':
            printf("warrend (%s) %s\n", WR_NAME, WR_VERSION);
            return 0;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            /* getopt_long has printed what was wrong. */
            fputs("Try 'warrend --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
        if (noverrides == sizeof overrides / sizeof overrides[0]) {
            fprintf(stderr, "warrend: too many options\n");
            return EXIT_USAGE;
        }
        overrides[noverrides++] = (struct override){option, key, optarg};
    }
    if (optind < argc) {
        fprintf(stderr,
                "warrend: unexpected argument '%s'\n"
                "Try 'warrend --help' for more information.\n",
                argv[optind]);
        return EXIT_USAGE;
    }

    if (config_path && wr_conf_load_file(&conf, config_path, &err) < 0)
        fail("%s", err.msg);
    for (size_t i = 0; i < noverrides; i++) {
        if (wr_conf_set(&conf, overrides[i].key, overrides[i].value, &err) < 0)
            fail("%s: %s", overrides[i].option, err.msg);
    }
    if (wr_conf_check(&conf, &err) < 0)
        fail("%s", err.msg);
    {
        const char *const names[3] = {"default_permissions.configure",
                                      "default_permissions.write", "default_permissions.read"};
        const char *const pats[3] = {conf.default_perm_configure, conf.default_perm_write,
                                     conf.default_perm_read};
        for (int i = 0; i < 3; i++) {
            struct wr_errbuf e;
            struct wr_perm_re *re = wr_perm_re_compile(pats[i], strlen(pats[i]), &e);
            if (!re) {
                const char *why = strstr(e.text, " - ");
                fail("%s: %s", names[i], why ? why + 3 : e.text);
            }
            wr_perm_re_free(re);
        }
    }
    wr_log_set_level(conf.log_level);

    wr_log(WR_LOG_INFO, "warrend %s starting, configuration from %s", WR_VERSION,
           config_path ? config_path : "built-in defaults");
    check_data_dir(conf.data_dir);
    {
        /* TLS helper: every AMQP and AMQPS address binds and the TLS files
         * load (net/listen.c), before anything else starts. */
        char why[512];
        if (wr_listeners_check(&conf, why, sizeof why) < 0)
            fail("%s", why);
    }
    if (conf.mgmt_port != 0)
        check_port(conf.mgmt_ip, conf.mgmt_port, "management");
    if (conf.prom_port != 0)
        check_port(conf.mgmt_ip, conf.prom_port, "Prometheus");

    printf("warrend %s\n", WR_VERSION);
    printf("# effective configuration (%s)\n", config_path ? config_path : "built-in defaults");
    wr_conf_print(&conf, stdout);
    fflush(stdout);

    if (run(&conf) < 0) {
        fprintf(stderr, "warrend: cannot start the broker (see the log above)\n");
        return EXIT_START_FAILED;
    }
    return 0;
}
