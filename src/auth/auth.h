/*
 * auth.h - users, their passwords, tags and permissions, and SASL parsing.
 *
 * A user has a name, a password hash as RabbitMQ stores it (passwd.h:
 * algorithm + base64 of salt and digest, kept as given so an export writes
 * back what an import read), tags (administrator, monitoring, policymaker,
 * management, impersonator, or any other word; kept as a comma-separated
 * list), per vhost a permission entry (configure, write and read patterns,
 * perm.h) and per vhost and exchange a topic permission (write and read
 * patterns on routing keys).
 *
 * The checks are RabbitMQ's: a user may open a vhost when it has an entry
 * there (three empty patterns still grant access to the vhost, and match
 * nothing); an operation on a resource is allowed when the pattern of its
 * kind matches the resource's name; a topic permission applies only when
 * there is one for that vhost and exchange (none: allowed).
 *
 * Every change bumps a generation counter, so a channel can cache its
 * decisions and drop them when the counter moves. This module knows nothing
 * of vhosts as objects or of connections: names only.
 */
#ifndef WR_AUTH_AUTH_H
#define WR_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/passwd.h"
#include "core/errbuf.h"
#include "wire/buf.h"

struct wr_users;
struct wr_user;
struct wr_vperm;

enum wr_perm_op { WR_PERM_CONFIGURE, WR_PERM_WRITE, WR_PERM_READ };

struct wr_users *wr_users_new(void);
void wr_users_free(struct wr_users *u);
uint64_t wr_users_generation(const struct wr_users *u);

/* ---- users ---- */

/* Create or replace a user with a stored hash (a definitions import).
 * tags: comma-separated. A hash that is not base64 is refused with
 * WR_EPRECONDITION_FAILED (RabbitMQ refuses the import); "" and hashes of
 * the wrong length are kept and match no password. Replacing keeps the
 * user's permissions. */
int wr_users_put_hash(struct wr_users *u, struct wr_str name, enum wr_passwd_algo algo,
                      struct wr_str hash, struct wr_str tags, struct wr_errbuf *err);
/* The same from a clear password, hashed with SHA-256 and a random salt. */
int wr_users_put_password(struct wr_users *u, struct wr_str name, struct wr_str password,
                          struct wr_str tags, struct wr_errbuf *err);
/* Delete a user and its permissions. WR_ENOT_FOUND when there is none. */
int wr_users_delete(struct wr_users *u, struct wr_str name);

struct wr_user *wr_users_get(struct wr_users *u, struct wr_str name);
size_t wr_users_count(const struct wr_users *u);
/* Iteration, in no particular order: it starts at 0; NULL at the end. The
 * table must not change during a walk. */
struct wr_user *wr_users_next(struct wr_users *u, size_t *it, struct wr_user *prev);

struct wr_str wr_user_name(const struct wr_user *x);
struct wr_str wr_user_tags(const struct wr_user *x);
bool wr_user_has_tag(const struct wr_user *x, const char *tag);
enum wr_passwd_algo wr_user_hash_algo(const struct wr_user *x);
struct wr_str wr_user_hash(const struct wr_user *x);

/* ---- permissions ---- */

/* Set a user's permissions on a vhost (replacing any). A pattern that does
 * not compile is WR_EPRECONDITION_FAILED with the reason; nothing changes
 * then. WR_ENOT_FOUND when there is no such user. */
int wr_users_set_permissions(struct wr_users *u, struct wr_str user, struct wr_str vhost,
                             struct wr_str configure, struct wr_str write, struct wr_str read,
                             struct wr_errbuf *err);
int wr_users_clear_permissions(struct wr_users *u, struct wr_str user, struct wr_str vhost);
/* The user's entry on a vhost, NULL when it has none (no access). Valid
 * until the next change (see wr_users_generation). */
const struct wr_vperm *wr_user_vperm(const struct wr_user *x, struct wr_str vhost);
/* op on the resource of `kind` ("queue" or "exchange") named `name`. */
bool wr_vperm_allows(const struct wr_vperm *p, enum wr_perm_op op, const char *kind,
                     struct wr_str name);
/* The pattern as set, for export. */
struct wr_str wr_vperm_pattern(const struct wr_vperm *p, enum wr_perm_op op);

/* Topic permissions: write and read patterns on routing keys, for one
 * exchange of one vhost; {username} and {vhost} are expanded. */
int wr_users_set_topic_permissions(struct wr_users *u, struct wr_str user, struct wr_str vhost,
                                   struct wr_str exchange, struct wr_str write,
                                   struct wr_str read, struct wr_errbuf *err);
/* Clear one exchange's, or every exchange's when `exchange` is NULL. */
int wr_users_clear_topic_permissions(struct wr_users *u, struct wr_str user, struct wr_str vhost,
                                     const struct wr_str *exchange);
/* Whether the routing key may be used (op WRITE: publish, READ: bind)
 * on a topic exchange: true when the user has no topic permission there. */
bool wr_user_topic_allows(const struct wr_user *x, struct wr_str vhost, struct wr_str exchange,
                          enum wr_perm_op op, struct wr_str routing_key);

/* Visit every permission entry, then every topic permission (export). */
struct wr_perm_visitor {
    void *ctx;
    void (*perm)(void *ctx, const struct wr_user *x, struct wr_str vhost,
                 const struct wr_vperm *p);
    void (*topic)(void *ctx, const struct wr_user *x, struct wr_str vhost,
                  struct wr_str exchange, struct wr_str write, struct wr_str read);
};
void wr_users_visit(struct wr_users *u, const struct wr_perm_visitor *v);

/* ---- logging in ---- */

/* Parse a SASL response. mech is "PLAIN" or "AMQPLAIN". Returns 0 with
 * user/pass slices into `resp`, or WR_EACCESS_REFUSED for a malformed
 * response, or WR_ENOT_IMPLEMENTED for an unknown mechanism. */
int wr_sasl_parse(struct wr_str mech, struct wr_str resp, struct wr_str *user,
                  struct wr_str *pass);

/* Check a login: the user exists and the password matches its hash (in
 * constant time). Returns 0 with *out, or WR_EACCESS_REFUSED with text. */
int wr_users_login(struct wr_users *u, struct wr_str user, struct wr_str pass,
                   struct wr_user **out, struct wr_errbuf *err);

/* ---- authentication backends (auth_backends.N; plugins provide them) ----
 *
 * A backend decides logins and access for users it knows. A user it let
 * in is a struct wr_user of its own (not in the table, owned by the
 * connection that logged in): wr_user_vperm asks the backend about a vhost
 * once and keeps the answer; wr_vperm_allows and wr_user_topic_allows ask
 * it for every decision the caller does not cache (channels cache the
 * last exchange and routing key, and drop that when the generation moves:
 * a backend whose answers changed calls wr_users_touch). */
struct wr_auth_backend {
    const char *name;
    void *ctx;
    /* 1: let in (*tags: comma list, may stay ""); 0: refused; -1: not a
     * user of this backend. The next backend is asked unless 1. */
    int (*login)(void *ctx, struct wr_str user, struct wr_str pass, char *tags, size_t cap);
    bool (*vhost)(void *ctx, struct wr_str user, struct wr_str vhost);
    bool (*resource)(void *ctx, struct wr_str user, struct wr_str vhost, const char *kind,
                     struct wr_str name, enum wr_perm_op op);
    bool (*topic)(void *ctx, struct wr_str user, struct wr_str vhost, struct wr_str exchange,
                  struct wr_str routing_key, enum wr_perm_op op);
};

/* Log in through the backends in order (a NULL entry is the internal
 * table; no order at all means the table alone). *out is a table user, or
 * a backend's (free it with wr_user_external_free). */
int wr_auth_login(struct wr_users *u, const struct wr_auth_backend *const *order, size_t n,
                  struct wr_str user, struct wr_str pass, struct wr_user **out,
                  struct wr_errbuf *err);
struct wr_user *wr_user_external_new(const struct wr_auth_backend *be, struct wr_str name,
                                     struct wr_str tags);
void wr_user_external_free(struct wr_user *x);
bool wr_user_is_external(const struct wr_user *x);
/* Forget the vhosts the backend allowed (its answers changed). */
void wr_user_external_forget(struct wr_user *x);
/* Move the generation: every cached decision is dropped. */
void wr_users_touch(struct wr_users *u);

#endif
