/*
 * conf.h - the broker's settings: one table, one struct, one parser.
 *
 * Every setting is a row of a table (conf.c) giving its name as written in
 * warren.conf, its type, its default, its bounds and a line of help. That
 * table drives everything: wr_conf_init fills the defaults by parsing each
 * row's default text, the file parser and the command line set values
 * through the same per-type setters, wr_conf_print lists the effective
 * configuration, and the unit tests walk the rows so a new setting is tested
 * (and checked against etc/warren.conf and the man page) without new code.
 *
 * A row may be reloadable (WR_CONF_RELOAD): SIGHUP applies a new value of
 * it to the running broker; a change to any other is logged as needing a
 * restart (warrend.c).
 *
 * The file format is that of rabbitmq.conf: one `key = value` per line,
 * blank lines and lines starting with `#` ignored. A `#` later in a line is
 * part of the value (passwords may contain one). Parsing works on a memory
 * buffer so the parser can be fuzzed; it never reads past `len` and does not
 * need a terminating NUL. A later line for the same key wins.
 *
 * Readers of the configuration use the struct fields directly.
 */
#ifndef WR_CONF_CONF_H
#define WR_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"

#define WR_CONF_LINE_MAX 4096          /* longest accepted line, in bytes */
#define WR_CONF_FILE_MAX (1024 * 1024) /* largest accepted file */

/* A list in rabbitmq.conf's form: `PREFIX.NAME = VALUE` lines
 * (auth_mechanisms.1, listeners.ssl.default, ssl_options.ciphers.3), kept
 * in the order first given; a later line with the same NAME replaces that
 * entry. As in RabbitMQ the configuration replaces the built-in list rather
 * than adding to it: the first line drops the default entries, and
 * `PREFIX = none` empties the list. The row itself also takes the whole
 * list as VALUEs separated by spaces (the default text, --print-config). */
#define WR_CONF_LIST_MAX 64
struct wr_conf_list {
    uint32_t n;
    bool set; /* given by the configuration, not the built-in default */
    struct {
        char name[24];
        char value[72];
    } item[WR_CONF_LIST_MAX];
};

/* The TLS options of a listener: ssl_options.* for AMQPS,
 * management.ssl.* for HTTPS (net/tls_ctx.c turns them into a context). */
struct wr_conf_tls {
    char certfile[1024];   /* .certfile: PEM, the certificate then its chain */
    char keyfile[1024];    /* .keyfile: PEM private key */
    char cacertfile[1024]; /* .cacertfile: CAs that client certificates must chain to */
    char password[256];    /* .password: of an encrypted keyfile */
    char verify[16];       /* .verify: verify_none or verify_peer */
    bool fail_if_no_peer_cert;
    bool honor_cipher_order;
    int64_t depth;                /* .depth: intermediate CAs allowed */
    struct wr_conf_list versions; /* .versions.N: tlsv1.2, tlsv1.3 */
    struct wr_conf_list ciphers;  /* .ciphers.N: OpenSSL names; empty: OpenSSL's default */
};

struct wr_conf {
    /* listeners */
    int64_t amqp_port; /* listeners.tcp.default */
    char bind_ip[64];  /* listeners.tcp.ip: literal IPv4/IPv6 address */
    int64_t mgmt_port; /* management.tcp.port, 0 = no management listener */
    char mgmt_ip[64];  /* management.tcp.ip */
    int64_t prom_port; /* prometheus.tcp.port, 0 = /metrics on the management port only */
    /* more listeners, TLS and logins by certificate (net/listen.c, net/tls*.c) */
    struct wr_conf_list tcp_listeners;   /* listeners.tcp.NAME (but .default) */
    bool amqp_default_set;               /* listeners.tcp.default (--port) given; not a row */
    struct wr_conf_list ssl_listeners;   /* listeners.ssl.NAME */
    struct wr_conf_tls ssl;              /* ssl_options.* */
    int64_t ssl_handshake_timeout_ms;    /* ssl_handshake_timeout */
    struct wr_conf_list auth_mechanisms; /* auth_mechanisms.N */
    char ssl_cert_login_from[32];        /* ssl_cert_login_from */
    int64_t connection_max;              /* connection_max, -1 = infinity */
    int64_t mgmt_ssl_port;               /* management.ssl.port, 0 = none */
    char mgmt_ssl_ip[64];                /* management.ssl.ip */
    struct wr_conf_tls mgmt_ssl;         /* management.ssl.* */
    /* files and logging */
    char data_dir[1024];         /* data_dir */
    enum wr_log_level log_level; /* log.level */
    /* connection tuning (offered in connection.tune) */
    int64_t channel_max;          /* channel_max */
    int64_t frame_max;            /* frame_max, bytes */
    int64_t heartbeat;            /* heartbeat, seconds, 0 = off */
    int64_t handshake_timeout_ms; /* handshake_timeout */
    /* resource alarms */
    double mem_high_watermark;            /* vm_memory_high_watermark.relative */
    uint64_t mem_high_watermark_absolute; /* vm_memory_high_watermark.absolute, 0 = unset */
    uint64_t disk_free_limit;             /* disk_free_limit.absolute, bytes */
    /* persistence */
    int64_t fsync_interval_ms; /* journal.fsync_interval */
    uint64_t segment_size;     /* journal.segment_size, bytes */
    /* first-start user and its restriction */
    char default_user[256];  /* default_user */
    char default_pass[256];  /* default_pass */
    char default_vhost[256]; /* default_vhost */
    /* default_user_tags.<tag>: the five tags RabbitMQ knows have rows;
     * any other tag set to true is in default_user_tags_other */
    bool tag_administrator, tag_management, tag_monitoring, tag_policymaker, tag_impersonator;
    char default_user_tags_other[512]; /* comma list; not a row (see conf.c) */
    char default_perm_configure[1024]; /* default_permissions.configure */
    char default_perm_write[1024];     /* default_permissions.write */
    char default_perm_read[1024];      /* default_permissions.read */
    char loopback_users[1024];         /* loopback_users: comma list or "none" */
    /* definitions imported at every start; "" = none */
    char load_definitions[1024]; /* load_definitions */
    /* service: logging outputs, shutdown, limits */
    char log_dir[1024];                  /* log.dir: where a relative log.file goes */
    char log_file[1024];                 /* log.file: a path, or "false" for none */
    enum wr_log_level log_file_level;    /* log.file.level, WR_LOG_UNSET = log.level */
    bool log_console;                    /* log.console: standard error */
    enum wr_log_level log_console_level; /* log.console.level */
    bool log_syslog;                     /* log.syslog: syslog(3), facility daemon */
    enum wr_log_level log_syslog_level;  /* log.syslog.level */
    int64_t shutdown_timeout_ms;         /* shutdown_timeout */
    uint64_t max_message_size;           /* max_message_size, bytes */
    int64_t consumer_max_per_channel;    /* consumer_max_per_channel, 0 = no limit */
    int64_t consumer_timeout_ms;         /* consumer_timeout, 0 = no limit */
    int64_t stream_replay_share;         /* stream.replay_share, percent */
    int64_t io_threads;                  /* io_threads, -1 = auto (net/io.h) */
    char io_placement[16];               /* io_threads.placement: adaptive, threads, shuffle */
    /* plugins */
    char plugins_dir[1024];     /* plugins.directory */
    char plugins_enabled[1024]; /* plugins.enabled.N, as a comma list; not a row */
    char plugin_settings[8192]; /* plugin.NAME.KEY = V as "NAME.KEY=V\n" lines; not a row */
    char auth_backends[512];    /* auth_backends.N as a comma list; "" = internal; not a row */
};

enum wr_conf_type {
    WR_CONF_INT,      /* int64_t within [imin, imax] */
    WR_CONF_DOUBLE,   /* double within [dmin, dmax] */
    WR_CONF_SIZE,     /* uint64_t byte count, units such as 50MB or 1GiB */
    WR_CONF_STRING,   /* char[size], no control characters */
    WR_CONF_LOGLEVEL, /* enum wr_log_level; with WR_CONF_EMPTY_OK "" is WR_LOG_UNSET */
    WR_CONF_BOOL,     /* bool: true or false */
    WR_CONF_LIST,     /* struct wr_conf_list; `check` vets each value */
};

/* Flags of a setting. */
#define WR_CONF_SECRET 0x1u   /* masked by wr_conf_print */
#define WR_CONF_EMPTY_OK 0x2u /* a string that may be set to "" ("key =") */
/* Applied by SIGHUP (warrend re-reads its file); any other setting needs a
 * restart, and a change to it is logged as such. */
#define WR_CONF_RELOAD 0x4u
#define WR_CONF_INFINITY 0x8u /* an INT that also takes "infinity" (stored as -1) */
#define WR_CONF_FALSE 0x10u   /* an INT that also takes "false" (stored as 0) */
#define WR_CONF_AUTO 0x20u    /* an INT that also takes "auto" (stored as -1) */

struct wr_conf_setting {
    const char *name;
    enum wr_conf_type type;
    size_t offset; /* of the field in struct wr_conf */
    size_t size;   /* of the field (strings: buffer size incl. NUL) */
    const char *def;
    int64_t imin, imax; /* INT and SIZE bounds */
    double dmin, dmax;  /* DOUBLE bounds */
    unsigned flags;
    /* Extra check of a string value; returns NULL or a reason. */
    const char *(*check)(const char *value);
    const char *help;
};

/* A problem: `msg` is the whole one-line report, "origin:line: key:
 * reason" (without "origin:line: " when no file or line is involved). */
struct wr_conf_error {
    unsigned line; /* 1-based; 0 when not tied to a line */
    bool warning;  /* a RabbitMQ setting Warren does not implement: ignored */
    char msg[512];
};

/* Every problem of a file, for --check-config and the start: the parser
 * goes on after an error, so one run reports them all. */
struct wr_conf_report {
    /* Called for each problem in file order; may be NULL. */
    void (*fn)(void *arg, const struct wr_conf_error *e);
    void *arg;
    unsigned errors, warnings;  /* counted by the parser */
    struct wr_conf_error first; /* the first error */
};

/* The table, for printing, tests and documentation checks. */
const struct wr_conf_setting *wr_conf_settings(size_t *count);
const struct wr_conf_setting *wr_conf_find(const char *name);

/* Fill every field with its default. Cannot fail. */
void wr_conf_init(struct wr_conf *c);

/* Set one setting from its text form, as the file or command line gives it.
 * Returns 0, or WR_ESYNTAX with err->msg saying why (err may be NULL). */
int wr_conf_set(struct wr_conf *c, const char *name, const char *value, struct wr_conf_error *err);

/* Parse `len` bytes of configuration text. `origin` (a file name) prefixes
 * the messages. Every line is looked at: each problem goes to r->fn and is
 * counted (r is zeroed first, except fn and arg). A key with no row is an
 * error, with a "did you mean" when it is close to one; a RabbitMQ key that
 * Warren does not implement is a warning and is ignored (conf/unknown.h).
 * With errors the struct may hold some of the file's values: callers treat
 * that as fatal. Returns 0 (warnings at most) or WR_ESYNTAX. */
int wr_conf_parse_report(struct wr_conf *c, const char *buf, size_t len, const char *origin,
                         struct wr_conf_report *r);

/* Read and parse a file, as wr_conf_parse_report. Returns 0, WR_ESYNTAX,
 * WR_EIO or WR_ENOMEM (the file could not be read: one error reported). */
int wr_conf_load_file_report(struct wr_conf *c, const char *path, struct wr_conf_report *r);

/* The same without a report: `err` gets the first error (may be NULL). */
int wr_conf_parse(struct wr_conf *c, const char *buf, size_t len, const char *origin,
                  struct wr_conf_error *err);
int wr_conf_load_file(struct wr_conf *c, const char *path, struct wr_conf_error *err);

/* Checks that involve more than one setting; run after all sources were
 * applied. Returns 0 or WR_ESYNTAX. */
int wr_conf_check(const struct wr_conf *c, struct wr_conf_error *err);

/* Text form of one setting's current value, parseable by wr_conf_set.
 * Returns 0, or WR_ENOSPC when `cap` is too small. */
int wr_conf_format(const struct wr_conf *c, const struct wr_conf_setting *s, char *out, size_t cap);

/* Write "name = value" lines for every setting, secrets masked. */
void wr_conf_print(const struct wr_conf *c, FILE *f);

/* SIGHUP: for each setting whose value differs in `fresh` (the file read
 * again), a reloadable one is copied into `live` and logged as changed; any
 * other stays as it is and is logged as needing a restart (secrets masked
 * in both). Returns how many were applied; *restart gets how many were
 * not. */
unsigned wr_conf_reload(struct wr_conf *live, const struct wr_conf *fresh, unsigned *restart);

/* The log file's path: log.file, under log.dir when relative; "" when
 * log.file is false. */
void wr_conf_log_path(const struct wr_conf *c, char *out, size_t cap);

/* The default user's tags (default_user_tags.*) as a comma-separated list,
 * RabbitMQ's five in a fixed order, then the others as set. */
void wr_conf_default_tags(const struct wr_conf *c, char *out, size_t cap);

/* Whether `user` is restricted to loopback connections. */
bool wr_conf_is_loopback_user(const struct wr_conf *c, const char *user);

/* A listener as rabbitmq.conf writes it: PORT, IP:PORT, [IPv6]:PORT or
 * IPv6:PORT (the port after the last colon). `ip` is "" for PORT alone.
 * Returns NULL, or why it is not one. */
const char *wr_conf_parse_listener(const char *v, char ip[64], int *port);

/* Whether `value` is in the list. */
bool wr_conf_list_has(const struct wr_conf_list *l, const char *value);

#endif
