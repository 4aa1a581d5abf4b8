/*
 * defs.h - definitions in RabbitMQ's JSON format: import, export, and the
 * data directory's definitions.json.
 *
 * One format for three uses. `rabbitmqctl export_definitions` writes it,
 * `load_definitions` in warren.conf names such a file to import at every
 * start, and Warren keeps its own durable state in it (definitions.json in
 * the data directory, written atomically: temporary file, fsync, rename,
 * fsync of the directory), so that file is an export that RabbitMQ 3.10
 * can import and Warren can load into a fresh broker.
 *
 * The document, as RabbitMQ 3.10.8 writes it (keys sorted):
 *
 *   rabbit_version, rabbitmq_version   "3.10.8" (Warren writes the version
 *                                      of RabbitMQ whose format it writes)
 *   users       [{name, password_hash, hashing_algorithm, tags: [..], limits}]
 *   vhosts      [{name, limits, metadata: {description, tags}}]
 *   permissions [{user, vhost, configure, write, read}]
 *   topic_permissions [{user, vhost, exchange, write, read}]
 *   parameters, global_parameters, policies   [...]
 *   queues      [{name, vhost, durable, auto_delete, arguments, type}]
 *   exchanges   [{name, vhost, type, durable, auto_delete, internal, arguments}]
 *   bindings    [{source, vhost, destination, destination_type, routing_key,
 *                 arguments}]
 *
 * What Warren adds, in keys RabbitMQ's import ignores: "warren_version";
 * "warren_queue_id_ranges" and, per vhost, "warren_last_queue_id" and, per
 * queue, "warren_id" (journal identities: see broker.h); "arguments_raw",
 * the hex of the exact table bytes; and "<key>_raw" next to a name that is
 * not Unicode proper (see defs.c).
 *
 * Import is all or nothing: the whole document is checked against the
 * broker first (every field's type, hashing algorithms, password hashes,
 * patterns, the vhosts and users entries name, exchange types, queue
 * arguments) and applied only when all of it is good. The error names the
 * entry: "users[3] (name 'bob'): password_hash: not base64".
 */
#ifndef WR_STORE_DEFS_H
#define WR_STORE_DEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errbuf.h"
#include "wire/buf.h"

struct json_t;
struct wr_binding;
struct wr_broker;
struct wr_defs;
struct wr_exchange;
struct wr_queue;

/* A definitions file to import may hold at most this much. */
#define WR_DEFS_FILE_MAX (256u << 20)

/* Why a document could not be read or imported, one line. */
struct wr_defs_err {
    char msg[1024];
};

/* Parse JSON text (names may hold NUL bytes, written \u0000). NULL when it
 * is not JSON, with "ORIGIN: line L, column C: REASON", or when out of
 * memory. */
struct wr_defs *wr_defs_parse(const char *text, size_t len, const char *origin,
                              struct wr_defs_err *err);
/* Read and parse a file: a regular file of at most WR_DEFS_FILE_MAX bytes. */
struct wr_defs *wr_defs_read(const char *path, struct wr_defs_err *err);
void wr_defs_free(struct wr_defs *d);

enum wr_defs_mode {
    /* A file from outside (load_definitions): queues get new journal
     * identities; objects that exist are kept as they are. */
    WR_DEFS_IMPORT,
    /* The data directory's own file, into an empty broker: journal
     * identities and raw bytes are taken as written. */
    WR_DEFS_RECOVER,
};

/* Check the whole document against the broker; nothing changes. Returns 0
 * or WR_ESYNTAX (err says which entry and why). */
int wr_defs_check(struct wr_broker *b, const struct wr_defs *d, enum wr_defs_mode mode,
                  struct wr_defs_err *err);
/* Check, then apply: vhosts, users, permissions, topic permissions,
 * exchanges, queues, bindings, and the parts Warren keeps without
 * applying them (logged once). Returns 0; WR_ESYNTAX when the check fails
 * (nothing changed); WR_ENOMEM when memory ran out while applying. */
int wr_defs_import(struct wr_broker *b, const struct wr_defs *d, enum wr_defs_mode mode,
                   struct wr_defs_err *err);

/* The broker's definitions as a JSON document (NUL-terminated, malloc'd),
 * or NULL when out of memory. */
char *wr_defs_export(struct wr_broker *b);

/* Write the export to `path` atomically (the data directory's snapshot),
 * noting that it holds the definitions log up to line `seq`
 * ("warren_defs_seq"; see defslog.h). *bytes (may be NULL) gets its size. */
int wr_defs_save(const char *path, struct wr_broker *b, uint64_t seq, uint64_t *bytes,
                 struct wr_errbuf *err);

/* What wr_defs_load found in the definitions log. */
struct wr_defs_recovered {
    uint64_t seq;      /* last sequence number in use */
    uint64_t log_good; /* bytes of the log that are intact */
    size_t lines;      /* lines applied on top of the snapshot */
    bool torn;         /* the log ended in lines never synced (cut off) */
};

/* Load the data directory's snapshot, fold the definitions log into it,
 * and import the result into an empty broker (nothing at all is an empty
 * broker). Returns 0, or an error for a file that cannot be read or
 * checked: the broker then refuses to start rather than run without its
 * definitions. */
int wr_defs_load(const char *path, const char *log_path, struct wr_broker *b,
                 struct wr_defs_recovered *out, struct wr_errbuf *err);

/* One object's entry as definitions.json holds it, for the definitions
 * log: *out is a new reference, or NULL when the object is not kept
 * (transient, exclusive, amq.*, a binding with a transient end). Returns 0,
 * or -1 when out of memory. */
int wr_defs_exchange_entry(struct wr_exchange *x, struct json_t **out);
int wr_defs_queue_entry(struct wr_queue *q, struct json_t **out);
int wr_defs_binding_entry(struct wr_binding *bd, struct json_t **out);

/* ---- what Warren keeps without applying, for the management API ----
 *
 * b->defs_kept as a JSON object: {"users": {name: {"limits": ..}},
 * "vhosts": {name: {"metadata": {"description", "tags"}, "limits": ..}},
 * "parameters": [..], "global_parameters": [..], "policies": [..]}; the
 * export merges a user's or vhost's entry into its own. */
/* A new reference ({} when nothing is kept); NULL when out of memory. */
struct json_t *wr_defs_kept_get(struct wr_broker *b);
/* Replace it (the reference stays the caller's); the store is told. 0, or
 * WR_ENOMEM (nothing changed). */
int wr_defs_kept_set(struct wr_broker *b, struct json_t *kept);
/* Forget what was kept for a deleted vhost (its entry, and the policies
 * and parameters in it) or a deleted user (its entry). */
void wr_defs_kept_forget_vhost(struct wr_broker *b, struct wr_str name);
void wr_defs_kept_forget_user(struct wr_broker *b, struct wr_str name);

#endif
