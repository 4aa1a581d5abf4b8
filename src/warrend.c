/*
 * warrend.c - main() of the broker daemon.
 *
 * Order of work: built-in defaults, then the configuration file (-c), then
 * command-line overrides in the order given; then the checks that must pass
 * before the broker may start (settings consistent, log file writable, pid
 * file free, data directory usable, ports free). Every problem of the
 * configuration is reported, one line each; any other failure ends the
 * process with one line on stderr. The exit status is non-zero either way,
 * so systemd and scripts see why at a glance. Startup does not fall back
 * to a default when something is wrong: a broker quietly running on the
 * wrong port or without its data is worse than one that refuses to start.
 *
 * warrend runs in the foreground; supervision is systemd's job
 * (etc/warrend.service, Type=notify). Once running, the broker's loop also
 * handles the service's signals: SIGTERM and SIGINT stop it gracefully
 * (net/server.c closes the connections), SIGHUP reopens the log file and
 * reloads the configuration, SIGUSR1 logs a status (svc/status.c); and it
 * tells systemd how it is doing through svc/sdnotify.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pcre2.h>

#include "auth/auth.h"
#include "auth/perm.h"
#include "broker/broker.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/pidfile.h"
#include "core/version.h"
#include "gitdescribe.h"
#include "mgmt/mgmt.h"
#include "net/listen.h"
#include "net/server.h"
#include "plugin/plugin.h"
#include "store/defs.h"
#include "store/store.h"
#include "svc/sdnotify.h"
#include "svc/status.h"

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
    "  -s, --set KEY=VALUE    any setting, as a line of the configuration file\n"
    "                         would set it (repeatable; plugins.enabled.1=...)\n"
    "      --pidfile FILE     write the process id to FILE, locked while running;\n"
    "                         refuse to start if a running warrend holds it\n"
    "      --check-config     check the configuration, report every problem as\n"
    "                         FILE:LINE: key: reason, and exit (0: usable)\n"
    "      --print-config     print the effective configuration (secrets masked)\n"
    "                         and exit\n"
    "  -V, --version          print the version, the git commit and the versions\n"
    "                         of the libraries in use, and exit\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "Command-line options override the configuration file.\n"
    "Signals: TERM or INT shut down gracefully (shutdown_timeout), HUP reopens\n"
    "the log file and reloads the configuration, USR1 logs a status.\n"
    "Exit status: 0 after a clean shutdown or a good check, 1 when the broker\n"
    "cannot start (bad configuration, unusable data directory, port in use,\n"
    "pid file held), 2 for bad usage.\n"
    "See warrend(8) and warren.conf(5).\n";

/* A command-line option that sets a configuration key. */
struct override {
    const char *option;
    const char *key;
    const char *value;
};

enum {
    OPT_BIND = 256,
    OPT_DATA_DIR,
    OPT_MGMT_PORT,
    OPT_LOG_LEVEL,
    OPT_PIDFILE,
    OPT_CHECK_CONFIG,
    OPT_PRINT_CONFIG
};

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"port", required_argument, NULL, 'p'},
    {"bind", required_argument, NULL, OPT_BIND},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"mgmt-port", required_argument, NULL, OPT_MGMT_PORT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"set", required_argument, NULL, 's'},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* What the daemon keeps for its signals: where the configuration comes
 * from (to read it again on SIGHUP), the live configuration that the
 * broker, the server and the management API point to, and the events on
 * the loop. */
struct daemon {
    const char *config_path;
    struct override overrides[64];
    size_t noverrides;
    struct wr_conf *conf;
    struct wr_server *server;
    struct wr_mgmt *mgmt;
    struct event *sighup_ev, *sigusr1_ev, *watchdog_ev;
    uint64_t watchdog_usec;
    uint64_t started_ms;
};

/* Held from the checks until exit; fail() lets go of it. */
static struct wr_pidfile *pidfile;

static void fail(const char *fmt, ...) WR_PRINTF(1, 2);

static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("warrend: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    wr_pidfile_remove(pidfile);
    exit(EXIT_START_FAILED);
}

/* ---- the configuration ---- */

/* One more problem for a report, outside the file's own (an option, a
 * check across settings). */
static void problem(struct wr_conf_report *r, const char *fmt, ...) WR_PRINTF(2, 3);

static void problem(struct wr_conf_report *r, const char *fmt, ...)
{
    struct wr_conf_error e = {0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    if (r->errors++ == 0)
        r->first = e;
    if (r->fn)
        r->fn(r->arg, &e);
}

/* The default user's patterns must compile (PCRE2, as permissions). */
static void check_patterns(const struct wr_conf *c, const char *where, struct wr_conf_report *r)
{
    const char *const names[3] = {"default_permissions.configure", "default_permissions.write",
                                  "default_permissions.read"};
    const char *const pats[3] = {c->default_perm_configure, c->default_perm_write,
                                 c->default_perm_read};
    for (int i = 0; i < 3; i++) {
        struct wr_errbuf e;
        struct wr_perm_re *re = wr_perm_re_compile(pats[i], strlen(pats[i]), &e);
        if (!re) {
            const char *why = strstr(e.text, " - ");
            problem(r, "%s%s: %s", where, names[i], why ? why + 3 : e.text);
        }
        wr_perm_re_free(re);
    }
}

/* Defaults, the file, the command line, then the checks across settings;
 * every problem goes to r->fn. Returns the number of errors. */
static unsigned load_config(struct wr_conf *c, const struct daemon *d, struct wr_conf_report *r)
{
    struct wr_conf_error e;
    char where[1100] = "";

    wr_conf_init(c);
    if (d->config_path) {
        (void)wr_conf_load_file_report(c, d->config_path, r);
        snprintf(where, sizeof where, "%s: ", d->config_path);
    } else {
        r->errors = r->warnings = 0;
    }
    for (size_t i = 0; i < d->noverrides; i++) {
        if (wr_conf_set(c, d->overrides[i].key, d->overrides[i].value, &e) < 0)
            problem(r, "%s: %s", d->overrides[i].option, e.msg);
    }
    if (wr_conf_check(c, &e) < 0)
        problem(r, "%s%s", where, e.msg);
    check_patterns(c, where, r);
    return r->errors;
}

/* At start: errors to stderr as they come; warnings kept for the log,
 * which is not set up yet. */
struct start_problems {
    unsigned nwarn;
    char warn[32][512];
};

static void start_problem(void *arg, const struct wr_conf_error *e)
{
    struct start_problems *p = arg;
    if (!e->warning) {
        fprintf(stderr, "warrend: %s\n", e->msg);
        return;
    }
    if (p->nwarn < sizeof p->warn / sizeof p->warn[0])
        memcpy(p->warn[p->nwarn], e->msg, sizeof p->warn[0]);
    p->nwarn++;
}

static void print_problem(void *arg, const struct wr_conf_error *e)
{
    (void)arg;
    fprintf(stderr, "%s\n", e->msg);
}

/* SIGHUP: problems go to the log. */
static void log_problem(void *arg, const struct wr_conf_error *e)
{
    (void)arg;
    wr_log(e->warning ? WR_LOG_WARNING : WR_LOG_ERROR, "configuration: %s", e->msg);
}

/* --check-config: exit 0 when the broker would accept the configuration. */
static int check_config(const struct daemon *d)
{
    struct wr_conf conf;
    struct wr_conf_report r = {.fn = print_problem};
    const char *what = d->config_path ? d->config_path : "built-in defaults";
    unsigned errors = load_config(&conf, d, &r);
    char why[512];

    /* TLS helper: the certificates and keys load and match (no port is
     * bound: the broker may be running). */
    if (!errors && wr_listeners_check_tls(&conf, why, sizeof why) < 0) {
        fprintf(stderr, "%s: %s\n", what, why);
        errors++;
    }
    if (errors)
        printf("%s: %u error(s), %u warning(s): warrend would not start\n", what, errors,
               r.warnings);
    else
        printf("%s: configuration OK (%u warning(s))\n", what, r.warnings);
    return errors ? EXIT_START_FAILED : 0;
}

/* The log outputs that a configuration names. */
static int apply_log(const struct wr_conf *c, char *why, size_t cap)
{
    char path[sizeof c->log_dir + sizeof c->log_file + 2];
    struct wr_log_outputs o = {
        .level = c->log_level,
        .file = path,
        .file_level = c->log_file_level,
        .console = c->log_console,
        .console_level = c->log_console_level,
        .syslog = c->log_syslog,
        .syslog_level = c->log_syslog_level,
    };
    wr_conf_log_path(c, path, sizeof path);
    return wr_log_configure(&o, why, cap);
}

/* ---- --version ---- */

static void print_version(void)
{
    char pcre[64] = "unknown";
    printf("warrend (%s) %s\n", WR_NAME, WR_VERSION);
    printf("git: %s\n", WR_GIT_DESCRIBE);
    printf("libevent: %s\n", event_get_version());
    printf("OpenSSL: %s\n", OpenSSL_version(OPENSSL_VERSION));
#if JANSSON_VERSION_HEX >= 0x020d00
    printf("jansson: %s\n", jansson_version_str());
#else
    printf("jansson: %s (built with)\n", JANSSON_VERSION);
#endif
    if (pcre2_config(PCRE2_CONFIG_VERSION, pcre) < 0)
        snprintf(pcre, sizeof pcre, "unknown");
    printf("PCRE2: %s\n", pcre);
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

/* ---- the service, on the broker's loop ---- */

/* SIGHUP: the log file opened again by its name (logrotate renamed it),
 * then the configuration read again: the reloadable settings take their
 * new values, a change to any other is logged as needing a restart, and a
 * file with errors changes nothing. */
static void sighup_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    struct wr_conf fresh;
    struct wr_conf_report r = {.fn = log_problem};
    char why[512];
    unsigned applied, restart;
    (void)fd;
    (void)what;

    wr_sd_notify("RELOADING=1\nSTATUS=reloading the configuration");
    wr_log(WR_LOG_INFO, "received SIGHUP: reopening the log file, reloading %s",
           d->config_path ? d->config_path : "the command line's settings");
    if (wr_log_reopen(why, sizeof why) < 0)
        wr_log(WR_LOG_ERROR, "%s; still writing to the old file", why);
    if (load_config(&fresh, d, &r) > 0) {
        wr_log(WR_LOG_ERROR, "configuration: %u error(s): nothing reloaded", r.errors);
        goto out;
    }
    if (apply_log(&fresh, why, sizeof why) < 0) {
        wr_log(WR_LOG_ERROR, "configuration: %s: the log settings stay as they were", why);
        memcpy(fresh.log_dir, d->conf->log_dir, sizeof fresh.log_dir);
        memcpy(fresh.log_file, d->conf->log_file, sizeof fresh.log_file);
    }
    applied = wr_conf_reload(d->conf, &fresh, &restart);
    wr_log(WR_LOG_INFO, "configuration reloaded: %u setting(s) changed, %u need a restart", applied,
           restart);
out:
    /* Certificates and keys are read again whatever the file said (new
     * connections get the new ones; a bad file keeps the old, logged), and
     * plugins reload what is theirs (auth_file's users). */
    if (d->server) {
        wr_server_conf_reloaded(d->server);
        wr_listeners_reload_tls(d->server);
    }
    if (d->server && d->server->broker->plugins)
        wr_plugins_reload(d->server->broker->plugins);
    wr_sd_notify("READY=1\nSTATUS=serving");
}

static void sigusr1_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    wr_svc_status_log(d->server, d->started_ms);
}

/* systemd's watchdog, fed from the loop: a loop that stops turning stops
 * feeding it, and systemd restarts the service (WatchdogSec=). */
static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    wr_sd_notify("WATCHDOG=1");
}

static struct event *add_event(struct event *ev, const struct timeval *tv)
{
    if (ev && event_add(ev, tv) < 0) {
        event_free(ev);
        return NULL;
    }
    return ev;
}

/* The server's listeners are up: start the management API, take the
 * signals, feed the watchdog, and tell systemd we serve. */
static int service_start(struct wr_server *s, void *arg)
{
    struct daemon *d = arg;
    const struct wr_conf *conf = d->conf;
    struct event_base *base = s->base;

    d->server = s;
    if (conf->mgmt_port || conf->prom_port || conf->mgmt_ssl_port) { /* TLS helper: HTTPS */
        if (!(d->mgmt = wr_mgmt_start(s, conf)))
            return WR_EIO;
    }
    d->sighup_ev = add_event(evsignal_new(base, SIGHUP, sighup_cb, d), NULL);
    d->sigusr1_ev = add_event(evsignal_new(base, SIGUSR1, sigusr1_cb, d), NULL);
    if (!d->sighup_ev || !d->sigusr1_ev)
        return WR_ENOMEM;
    if (d->watchdog_usec) {
        /* Twice per interval, as systemd recommends. */
        uint64_t half = d->watchdog_usec / 2;
        struct timeval tv = {(time_t)(half / 1000000), (suseconds_t)(half % 1000000)};
        d->watchdog_ev = add_event(event_new(base, -1, EV_PERSIST, watchdog_cb, d), &tv);
        if (!d->watchdog_ev)
            return WR_ENOMEM;
        wr_sd_notify("WATCHDOG=1");
    }
    wr_clock_update();
    d->started_ms = wr_now_ms();
    wr_sd_notifyf("READY=1\nSTATUS=serving AMQP on %s port %lld", conf->bind_ip,
                  (long long)conf->amqp_port);
    return 0;
}

/* SIGTERM or SIGINT: before the connections are closed. The watchdog
 * stays fed until the end (shutdown_timeout may take a while). */
static void service_stop(struct wr_server *s, void *arg)
{
    struct daemon *d = arg;
    (void)s;
    wr_sd_notify("STOPPING=1\nSTATUS=shutting down");
    if (d->sighup_ev)
        event_free(d->sighup_ev);
    if (d->sigusr1_ev)
        event_free(d->sigusr1_ev);
    d->sighup_ev = d->sigusr1_ev = NULL;
    wr_mgmt_stop(d->mgmt);
    d->mgmt = NULL;
}

/* A long recovery shows in `systemctl status` ("recovering: 412,000 of
 * 1,000,000 messages") and asks systemd for more start time than
 * TimeoutStartSec= while it makes progress. */
static void recovery_progress(void *arg, enum wr_store_phase phase, uint64_t done, uint64_t total)
{
    char a[32], b[32];
    (void)arg;
    if (phase == WR_RECOVER_JOURNAL)
        wr_sd_notifyf("STATUS=recovering: reading the journal, %s of %s MiB\n"
                      "EXTEND_TIMEOUT_USEC=30000000",
                      wr_svc_group(a, sizeof a, done >> 20),
                      wr_svc_group(b, sizeof b, total >> 20));
    else
        wr_sd_notifyf("STATUS=recovering: %s of %s messages\nEXTEND_TIMEOUT_USEC=30000000",
                      wr_svc_group(a, sizeof a, done), wr_svc_group(b, sizeof b, total));
    if (done)
        wr_log(WR_LOG_INFO, "recovering: %s of %s %s", wr_svc_group(a, sizeof a, done),
               wr_svc_group(b, sizeof b, total),
               phase == WR_RECOVER_JOURNAL ? "journal bytes read" : "messages restored");
}

/* auth_backends.N in order: "internal" is the user table (a NULL entry),
 * any other name a backend a loaded plugin registered. An unknown name
 * stops the start: running with another authentication than configured is
 * worse than not running. */
static int resolve_backends(struct wr_broker *b, const struct wr_conf *conf)
{
    const char *p = conf->auth_backends;
    size_t n = 1;
    for (const char *q = p; *q; q++)
        n += *q == ',';
    if (!(b->auth_order = calloc(n, sizeof(*b->auth_order)))) {
        wr_log(WR_LOG_ERROR, "out of memory");
        return -1;
    }
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        if (strcmp(name, "internal") != 0 &&
            !(b->auth_order[b->nauth] = wr_plugins_auth_backend(b->plugins, name))) {
            wr_log(WR_LOG_ERROR,
                   "auth_backends: no backend '%s' (is the plugin providing it enabled and "
                   "loaded?)",
                   name);
            return -1;
        }
        b->nauth++;
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

/* The broker, the store opened on it (recovering what the data directory
 * holds: vhosts, users, permissions, durable objects, messages), then
 * load_definitions imported or, at a first start without it, the default
 * user and vhost created; then the server until SIGTERM/SIGINT. Returns 0
 * after a clean stop, negative when something could not start (logged). */
static int run(struct daemon *d)
{
    const struct wr_conf *conf = d->conf;
    const struct wr_store_progress progress = {recovery_progress, d};
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
    /* Plugins before the data directory: an exchange of a plugin's type is
     * recovered like any other. */
    if (conf->plugins_enabled[0] &&
        !(b->plugins = wr_plugins_load(b, conf->plugins_dir, conf->plugins_enabled,
                                       conf->plugin_settings))) {
        wr_log(WR_LOG_ERROR, "out of memory loading plugins");
        rc = WR_ENOMEM;
        goto out;
    }
    if (conf->auth_backends[0] && resolve_backends(b, conf) < 0) {
        rc = WR_ESYNTAX;
        goto out;
    }
    wr_clock_update();
    t0 = wr_now_us();
    wr_sd_notify("STATUS=recovering: opening the data directory");
    store = wr_store_open(conf->data_dir, base, (uint32_t)conf->fsync_interval_ms,
                          (uint32_t)conf->segment_size, b, &progress, &err);
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

    struct wr_server_hooks hooks = {service_start, service_stop, d};
    rc = wr_server_run(base, conf, b, &hooks);
out:
    if (d->watchdog_ev)
        event_free(d->watchdog_ev);
    d->watchdog_ev = NULL;
    d->server = NULL;
    wr_defs_free(defs);
    /* Stop journaling before the queues go: they are not deleted, only
     * forgotten by this process. Closing the journal writes what is
     * buffered and syncs it. */
    if (b)
        wr_broker_set_persist(b, NULL);
    wr_store_close(store);
    if (rc == 0)
        wr_log(WR_LOG_INFO, "journal synced; stopped");
    {
        /* Their exchanges go with the broker; then the code goes. */
        struct wr_plugins *plugins = b ? b->plugins : NULL;
        wr_broker_free(b);
        wr_plugins_free(plugins);
    }
    if (base)
        event_base_free(base);
    return rc;
}

int main(int argc, char **argv)
{
    static struct wr_conf conf; /* the live configuration: everything points here */
    static struct daemon d;
    struct start_problems warnings = {0};
    struct wr_conf_report report = {.fn = start_problem, .arg = &warnings};
    const char *pidfile_path = NULL;
    bool check = false, print = false;
    char why[512];
    int opt;

    while ((opt = getopt_long(argc, argv, "c:p:s:hV", long_options, NULL)) != -1) {
        const char *option = NULL, *key = NULL;
        switch (opt) {
        case 'c':
            d.config_path = optarg;
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
        case 's': {
            /* KEY=VALUE: any setting, as a line of the file would give it */
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "warrend: --set takes KEY=VALUE, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            *eq = '\0';
            option = "--set";
            key = optarg;
            optarg = eq + 1;
            break;
        }
        case OPT_PIDFILE:
            pidfile_path = optarg;
            continue;
        case OPT_CHECK_CONFIG:
            check = true;
            continue;
        case OPT_PRINT_CONFIG:
            print = true;
            continue;
        case 'V':
            print_version();
            return 0;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            /* getopt_long has printed what was wrong. */
            fputs("Try 'warrend --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
        if (d.noverrides == sizeof d.overrides / sizeof d.overrides[0]) {
            fprintf(stderr, "warrend: too many options\n");
            return EXIT_USAGE;
        }
        d.overrides[d.noverrides++] = (struct override){option, key, optarg};
    }
    if (optind < argc) {
        fprintf(stderr,
                "warrend: unexpected argument '%s'\n"
                "Try 'warrend --help' for more information.\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (check)
        return check_config(&d);

    if (load_config(&conf, &d, &report) > 0) {
        if (report.errors > 1)
            fprintf(stderr, "warrend: %u errors in the configuration\n", report.errors);
        return EXIT_START_FAILED;
    }
    if (print) {
        for (unsigned i = 0; i < warnings.nwarn && i < 32; i++)
            fprintf(stderr, "warrend: %s\n", warnings.warn[i]);
        printf("# effective configuration (%s)\n",
               d.config_path ? d.config_path : "built-in defaults");
        wr_conf_print(&conf, stdout);
        return 0;
    }
    d.conf = &conf;
    /* Until the loop takes them (and again while it shuts down), SIGHUP
     * and SIGUSR1 must not kill the process, as their default action
     * would: logrotate may signal during a long recovery. */
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    if (apply_log(&conf, why, sizeof why) < 0)
        fail("%s", why);
    if (pidfile_path && !(pidfile = wr_pidfile_open(pidfile_path, why, sizeof why)))
        fail("%s", why);
    if (wr_sd_open(getenv("NOTIFY_SOCKET"), why, sizeof why) < 0)
        wr_log(WR_LOG_WARNING, "systemd notification: %s; not notifying", why);
    d.watchdog_usec =
        wr_sd_watchdog_usec(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid());

    wr_log(WR_LOG_INFO, "warrend %s (%s) starting, pid %ld, configuration from %s", WR_VERSION,
           WR_GIT_DESCRIBE, (long)getpid(), d.config_path ? d.config_path : "built-in defaults");
    for (unsigned i = 0; i < warnings.nwarn && i < 32; i++)
        wr_log(WR_LOG_WARNING, "configuration: %s", warnings.warn[i]);
    if (warnings.nwarn > 32)
        wr_log(WR_LOG_WARNING, "configuration: %u more RabbitMQ settings ignored",
               warnings.nwarn - 32);
    check_data_dir(conf.data_dir);
    {
        /* Every AMQP, AMQPS and management address binds and the TLS
         * files load (net/listen.c), before anything else starts. */
        char lwhy[512];
        if (wr_listeners_check(&conf, lwhy, sizeof lwhy) < 0)
            fail("%s", lwhy);
    }

    printf("warrend %s\n", WR_VERSION);
    printf("# effective configuration (%s)\n", d.config_path ? d.config_path : "built-in defaults");
    wr_conf_print(&conf, stdout);
    fflush(stdout);

    int rc = run(&d);
    wr_sd_close();
    wr_pidfile_remove(pidfile);
    pidfile = NULL;
    if (rc < 0) {
        fprintf(stderr, "warrend: cannot start the broker (see the log above)\n");
        return EXIT_START_FAILED;
    }
    return 0;
}
