/*
 * auth.h - users, password checks and vhost permissions.
 *
 * Passwords are kept as RabbitMQ keeps them: a 4-byte random salt and
 * SHA-256(salt | password). The default user comes from the configuration
 * (default_user/default_pass, guest/guest) with full permissions on "/".
 * SASL response parsing for PLAIN and AMQPLAIN lives here too, so the
 * connection code only asks "who is this, may they in?".
 */
#ifndef WR_AUTH_AUTH_H
#define WR_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/errbuf.h"
#include "wire/buf.h"

struct wr_users;

struct wr_users *wr_users_new(void);
void wr_users_free(struct wr_users *u);
int wr_users_add(struct wr_users *u, const char *name, const char *password, const char *tags);
/* Grant configure/write/read on a vhost (regexes are not supported yet: any
 * grant is full access to that vhost). */
int wr_users_permit(struct wr_users *u, const char *name, const char *vhost);

/* Parse a SASL response. mech is "PLAIN" or "AMQPLAIN". Returns 0 with
 * user/pass slices into `resp`, or WR_EACCESS_REFUSED for a malformed
 * response (for PLAIN, as RabbitMQ: anything but NUL user NUL password,
 * so a non-empty authorization identity is refused), or
 * WR_ENOT_IMPLEMENTED for an unknown mechanism. */
int wr_sasl_parse(struct wr_str mech, struct wr_str resp, struct wr_str *user,
                  struct wr_str *pass);

/* Check a login. Returns 0 or WR_EACCESS_REFUSED with text. */
int wr_users_login(struct wr_users *u, struct wr_str user, struct wr_str pass,
                   struct wr_errbuf *err);

bool wr_users_may_access(struct wr_users *u, struct wr_str user, const char *vhost);

#endif
