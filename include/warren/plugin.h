/*
 * warren/plugin.h - the interface between Warren (warrend) and its plugins.
 *
 * This is the only header Warren installs. A plugin is a shared object
 * that includes it, and nothing else of Warren's, and exports one symbol:
 *
 *     WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
 *         .abi_major = WARREN_PLUGIN_ABI_MAJOR,
 *         .abi_minor = WARREN_PLUGIN_ABI_MINOR,
 *         .name = "my_plugin",
 *         .version = "1.0",
 *         .description = "what it adds",
 *         .init = my_init,
 *         .fini = my_fini,
 *     };
 *
 * warrend loads the plugins warren.conf enables (plugins.directory,
 * plugins.enabled.N = NAME, which loads DIRECTORY/NAME.so) before it
 * recovers its data, so an exchange of a plugin's type is recovered like
 * any other. It refuses, with one log line, and starts without it: a
 * plugin with no `warren_plugin` symbol, one built for another major
 * version of this interface, or for a later minor version than the
 * broker's, one whose name is not the file's, and one whose init fails.
 *
 * Versions. The major version changes when something here changes in a way
 * a built plugin would notice; the broker then refuses plugins of other
 * majors. The minor version grows when something is added: functions at
 * the end of struct warren_api (a plugin reads api->abi_minor before using
 * a function newer than 1.0), fields in the reserved space of the structs
 * a plugin fills in (which start with their own size). A plugin built for
 * 1.0 keeps working with every 1.x broker.
 *
 * Threads and lifetimes. Every call into a plugin, and every call a plugin
 * makes through struct warren_api, happens on the broker's loop thread: a
 * plugin needs no locks, and must not block (a slow backend is asked with
 * a timer or in a thread of its own that hands results back through a
 * timer). Handles (warren_exchange, warren_binding, warren_message,
 * warren_route) are valid for the duration of the call that gave them,
 * except a message the plugin took a reference on (message_ref), which
 * lives until it lets go (message_unref). Byte strings (struct
 * warren_bytes) are not NUL-terminated and may hold NUL bytes.
 *
 * Errors. A hook that can refuse fills a struct warren_error with an AMQP
 * reply code (406 PRECONDITION_FAILED is a channel error, 503
 * COMMAND_INVALID and 541 INTERNAL_ERROR close the connection, as in the
 * AMQP specification) and a one-line reason, which the client receives.
 */
#ifndef WARREN_PLUGIN_H
#define WARREN_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WARREN_PLUGIN_ABI_MAJOR 1
#define WARREN_PLUGIN_ABI_MINOR 0

/* Makes the descriptor visible when the plugin is built with
 * -fvisibility=hidden (recommended: nothing else needs exporting). */
#if defined(__GNUC__) || defined(__clang__)
#define WARREN_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define WARREN_PLUGIN_EXPORT
#endif

/* Opaque handles: the broker's objects, seen only through functions. */
typedef struct warren_host warren_host;         /* one loaded plugin */
typedef struct warren_exchange warren_exchange; /* an exchange of a plugin type */
typedef struct warren_binding warren_binding;   /* a binding from such an exchange */
typedef struct warren_message warren_message;   /* a message (refcounted) */
typedef struct warren_route warren_route;       /* one message being routed */
typedef struct warren_timer warren_timer;

/* Bytes owned by someone else; not NUL-terminated. */
struct warren_bytes {
    const char *ptr;
    size_t len;
};

/* A value from an AMQP field table (arguments, headers) or a property. */
enum warren_value_type {
    WARREN_VALUE_NONE = 0, /* absent */
    WARREN_VALUE_INT,      /* any integer type, and timestamps: .i */
    WARREN_VALUE_STRING,   /* long or short string: .s */
    WARREN_VALUE_BOOL,     /* .i is 0 or 1 */
    WARREN_VALUE_OTHER,    /* present, of another type (float, table, array...) */
};

struct warren_value {
    enum warren_value_type type;
    int64_t i;
    struct warren_bytes s;
};

/* AMQP reply codes a hook may answer with. */
enum {
    WARREN_OK = 0,
    WARREN_ACCESS_REFUSED = 403,
    WARREN_NOT_FOUND = 404,
    WARREN_PRECONDITION_FAILED = 406,
    WARREN_COMMAND_INVALID = 503,
    WARREN_NOT_IMPLEMENTED = 540,
    WARREN_INTERNAL_ERROR = 541,
};

struct warren_error {
    int code;       /* one of the codes above */
    char text[256]; /* the reason, one line, as the client will read it */
};

enum warren_log_level {
    WARREN_LOG_ERROR = 0,
    WARREN_LOG_WARNING = 1,
    WARREN_LOG_INFO = 2,
    WARREN_LOG_DEBUG = 3,
};

/* ---- exchange types ---- */

/* Flags of an exchange type. */
#define WARREN_XTYPE_ROUTE_UNBOUND 0x1u /* route is called even with no bindings */

/* An exchange type. The plugin fills one in (static storage: the broker
 * keeps the pointer) and registers it from init. Optional hooks may be
 * NULL. */
struct warren_exchange_type {
    size_t size;      /* sizeof(struct warren_exchange_type), as built */
    const char *name; /* the type clients name in exchange.declare */
    unsigned flags;
    /* An exchange of this type is being declared (or recovered): check its
     * arguments (exchange_arg) and set up its state (exchange_set_state).
     * Returns WARREN_OK, or a reply code with err filled: the exchange is
     * then not created. */
    int (*declare)(warren_exchange *x, struct warren_error *err);
    /* It is going away: free its state. Its bindings are gone already. */
    void (*destroy)(warren_exchange *x);
    /* Check a new binding's key and arguments (a field table's bytes:
     * read it with table_get) before it exists. Optional. */
    int (*validate_binding)(warren_exchange *x, struct warren_bytes key, struct warren_bytes args,
                            struct warren_error *err);
    /* A binding was added / is being removed: keep an index, if any. */
    int (*bind)(warren_exchange *x, warren_binding *b);
    void (*unbind)(warren_exchange *x, warren_binding *b);
    /* Route a message: call route_emit for every binding it goes through,
     * or route_take when the type keeps the message itself (to route it
     * later, say). Called once per routing key (the message's own, then
     * the CC/BCC keys): route_key gives the one to use. */
    void (*route)(warren_exchange *x, warren_route *r);
    /* A message this exchange kept with route_hold, given back when the
     * broker starts again (take a reference to keep it). Optional: without
     * it, held messages are not journaled at all. */
    void (*recover)(warren_exchange *x, warren_message *m);
    void *reserved[8];
};

/* What a plugin may read of a queue (queue_info). */
struct warren_queue_info {
    size_t size;      /* set by the caller: sizeof(struct warren_queue_info) */
    uint64_t ready;   /* messages ready for delivery */
    uint64_t unacked; /* delivered, not yet acknowledged */
    uint32_t consumers;
    bool durable, exclusive, auto_delete;
    void *reserved[4];
};

/* ---- authentication and authorization backends ---- */

enum { WARREN_AUTH_UNKNOWN = -1, WARREN_AUTH_DENY = 0, WARREN_AUTH_ALLOW = 1 };

enum warren_perm { WARREN_PERM_CONFIGURE = 0, WARREN_PERM_WRITE = 1, WARREN_PERM_READ = 2 };

/* A backend, named in warren.conf's auth_backends.N (as RabbitMQ's): the
 * broker asks the backends in that order at login, the first that lets
 * the user in decides everything for that connection (vhost, resources,
 * topics); "internal" is the broker's own user table. */
struct warren_auth_backend {
    size_t size;      /* sizeof(struct warren_auth_backend), as built */
    const char *name; /* as in auth_backends.N */
    /* WARREN_AUTH_ALLOW (fill `tags`, a comma list such as "management",
     * or leave it ""), WARREN_AUTH_DENY, or WARREN_AUTH_UNKNOWN (not a user
     * of this backend). Both of the latter let the next backend try. */
    int (*login)(warren_host *h, struct warren_bytes user, struct warren_bytes password, char *tags,
                 size_t tags_cap);
    /* May the user open the vhost? (asked once per connection and vhost) */
    bool (*vhost_access)(warren_host *h, struct warren_bytes user, struct warren_bytes vhost);
    /* configure/write/read on a "queue" or an "exchange" (the default
     * exchange is named "amq.default"). The broker caches a channel's
     * last write decision until auth_changed. */
    bool (*resource_access)(warren_host *h, struct warren_bytes user, struct warren_bytes vhost,
                            const char *kind, struct warren_bytes name, enum warren_perm perm);
    /* A routing key on a topic exchange (write: publish, read: bind). */
    bool (*topic_access)(warren_host *h, struct warren_bytes user, struct warren_bytes vhost,
                         struct warren_bytes exchange, struct warren_bytes routing_key,
                         enum warren_perm perm);
    void *reserved[8];
};

typedef struct warren_pattern warren_pattern;

/* ---- the plugin ---- */

struct warren_api;

/* The one symbol a plugin exports, named `warren_plugin`. */
struct warren_plugin {
    uint32_t abi_major; /* WARREN_PLUGIN_ABI_MAJOR it was built with */
    uint32_t abi_minor; /* WARREN_PLUGIN_ABI_MINOR it was built with */
    const char *name;   /* as in plugins.enabled.N; the file is NAME.so */
    const char *version;
    const char *description;
    /* Called once, after loading. Register what the plugin provides, read
     * its settings (config_get), keep `api` and `host`. Returns 0, or -1
     * after logging why: the broker then unloads it and goes on. */
    int (*init)(warren_host *host, const struct warren_api *api);
    /* Called once at shutdown, after every exchange of its types is
     * gone. Optional. */
    void (*fini)(warren_host *host);
    void *reserved[8];
};

/* What the broker offers a plugin: given to init, valid until fini. */
struct warren_api {
    uint32_t abi_major, abi_minor; /* the broker's version of this interface */
    size_t size;                   /* sizeof(struct warren_api) in the broker */

    /* -- the plugin itself -- */
    void (*log)(warren_host *h, enum warren_log_level level, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
    /* A setting of this plugin: "plugin.NAME.KEY = VALUE" in warren.conf.
     * NULL when not set. */
    const char *(*config_get)(warren_host *h, const char *key);
    /* The plugin's own pointer, for its callbacks. */
    void (*set_data)(warren_host *h, void *data);
    void *(*get_data)(warren_host *h);
    /* Register an exchange type (during init). Returns 0, or -1 when the
     * name is taken (a built-in type, or another plugin's). */
    int (*register_exchange_type)(warren_host *h, const struct warren_exchange_type *t);

    /* -- time -- */
    uint64_t (*now_ms)(void);  /* monotonic milliseconds */
    uint64_t (*wall_ms)(void); /* milliseconds since 1970 */
    /* A timer calling cb(arg) on the loop thread once armed time has
     * passed. NULL when out of memory. */
    warren_timer *(*timer_new)(warren_host *h, void (*cb)(void *arg), void *arg);
    void (*timer_arm)(warren_timer *t, uint64_t after_ms); /* re-arming replaces */
    void (*timer_cancel)(warren_timer *t);
    void (*timer_free)(warren_timer *t);

    /* -- exchanges and bindings -- */
    struct warren_bytes (*exchange_name)(const warren_exchange *x);
    struct warren_bytes (*exchange_vhost)(const warren_exchange *x);
    bool (*exchange_durable)(const warren_exchange *x);
    /* One of the declare arguments. */
    struct warren_value (*exchange_arg)(const warren_exchange *x, const char *name);
    void (*exchange_set_state)(warren_exchange *x, void *state);
    void *(*exchange_get_state)(const warren_exchange *x);
    /* Use a built-in (or another plugin's) type for the bindings: the
     * broker then indexes every binding with it, and route_inner routes
     * by it. Call from declare. Returns 0, or -1 when `type` is unknown
     * or is this exchange's own type. */
    int (*exchange_use_inner)(warren_exchange *x, struct warren_bytes type);
    /* Whether a type of that name exists. */
    bool (*exchange_type_exists)(struct warren_bytes type);
    /* Publish a message through exchange x, through the broker's one
     * publish path (routing, durable queues' journal, delivery); the
     * exchange's own type routes it again. A message x held (route_hold)
     * is released once routed (a crash in between delivers it twice,
     * never not at all). Returns the number of queues it reached (0:
     * unroutable, dropped), or -1 when out of memory. The caller keeps its
     * reference. */
    int (*exchange_publish)(warren_exchange *x, warren_message *m);
    /* A message x held is not wanted any more (the journal forgets it). */
    void (*message_release)(warren_exchange *x, warren_message *m);
    /* A queue's figures, by vhost and name: 0 with *out filled (up to
     * out->size), or -1 when there is no such queue. */
    int (*queue_info)(warren_host *h, struct warren_bytes vhost, struct warren_bytes name,
                      struct warren_queue_info *out);

    struct warren_bytes (*binding_key)(const warren_binding *b);
    struct warren_value (*binding_arg)(const warren_binding *b, const char *name);
    /* Where it leads: a queue's or an exchange's name. */
    struct warren_bytes (*binding_destination)(const warren_binding *b);
    bool (*binding_to_exchange)(const warren_binding *b);
    /* Per-binding state is the plugin's only when the exchange has no
     * inner type (the inner type keeps its own there): set is then
     * ignored and get gives NULL. */
    void (*binding_set_state)(warren_binding *b, void *state);
    void *(*binding_get_state)(const warren_binding *b);

    /* -- routing (inside the route hook) -- */
    warren_message *(*route_message)(warren_route *r);
    struct warren_bytes (*route_key)(warren_route *r);
    /* Whether this is the first call for the message (the own routing
     * key); CC/BCC keys come after. */
    bool (*route_first)(warren_route *r);
    void (*route_emit)(warren_route *r, warren_binding *b);
    void (*route_take)(warren_route *r); /* the type keeps it: not unroutable */
    /* route_take, for a message the plugin keeps (its own reference: the
     * one routed, or a copy): when the exchange is durable, the message
     * persistent and the type has a recover hook, m is journaled as held
     * by the exchange, the publisher's confirm waits for that, and recover
     * gives it back after a restart. Returns 0, or -1 when it could not be
     * made durable: then the plugin must not keep it (the publisher gets a
     * nack). A held message is let go by exchange_publish (routing it on)
     * or message_release. */
    int (*route_hold)(warren_route *r, warren_message *m);
    void (*route_inner)(warren_route *r); /* route by the inner type */

    /* -- messages -- */
    warren_message *(*message_ref)(warren_message *m);
    void (*message_unref)(warren_message *m);
    struct warren_bytes (*message_routing_key)(const warren_message *m);
    struct warren_bytes (*message_body)(warren_message *m);
    bool (*message_persistent)(const warren_message *m);
    /* When it was published, on the now_ms clock (for a recovered message:
     * its original publish time, mapped onto this run's clock). */
    uint64_t (*message_published_ms)(const warren_message *m);
    /* A header (headers table) or a property by its AMQP name:
     * "message_id", "correlation_id", "timestamp", "type", "app_id",
     * "user_id", "content_type", "priority", "expiration"... */
    struct warren_value (*message_header)(const warren_message *m, const char *name);
    struct warren_value (*message_property)(const warren_message *m, const char *name);
    /* A copy of m with one header set to an integer (added, or replaced
     * where it was), as a signed 32-bit field when it fits, else 64-bit.
     * NULL when out of memory. The caller owns the copy's reference. */
    warren_message *(*message_with_int_header)(warren_message *m, const char *name, int64_t v);

    /* -- field tables -- */
    struct warren_value (*table_get)(struct warren_bytes table, const char *name);

    /* -- authentication -- */
    /* Register a backend (during init). 0, or -1 when the name is taken. */
    int (*register_auth_backend)(warren_host *h, const struct warren_auth_backend *b);
    /* The backend's answers changed (its users were re-read): every
     * connection asks again before its next decision. */
    void (*auth_changed)(warren_host *h);
    /* Call cb(arg) when the broker reloads (SIGHUP), after its own
     * configuration and certificates. One hook per plugin: 0, or -1 when
     * it has one already. */
    int (*on_reload)(warren_host *h, void (*cb)(void *arg), void *arg);
    /* A permission pattern as RabbitMQ's (PCRE2, anchored as written).
     * NULL with `why` filled when it does not compile. */
    warren_pattern *(*pattern_new)(const char *re, char *why, size_t why_cap);
    bool (*pattern_match)(const warren_pattern *p, struct warren_bytes s);
    void (*pattern_free)(warren_pattern *p);
    /* Whether `password` matches a stored hash in RabbitMQ's format
     * (base64 of a 4-byte salt and SHA-256(salt + password), the
     * rabbit_password_hashing_sha256 of its definitions). */
    bool (*password_matches)(struct warren_bytes hash_base64, struct warren_bytes password);

    void *reserved[32];
};

#ifdef __cplusplus
}
#endif

#endif
