/*
 * perm.h - permission patterns, matched as RabbitMQ matches them.
 *
 * A RabbitMQ permission is three regular expressions per user and vhost
 * (configure, write, read) and, per exchange, two topic-permission ones
 * (write, read) tested against routing keys. RabbitMQ runs each with
 * Erlang's re:run(Name, Pattern, [{capture, none}]): PCRE, unanchored (the
 * pattern "mid" admits "amid.x"; anchor with ^...$), on the name's bytes.
 * This module compiles such a pattern once, with PCRE2 (JIT where the
 * platform has it), and answers "does this name match?" without allocating.
 * It knows nothing of users or vhosts: the user table owns one compiled
 * pattern per permission and recompiles only when the permission changes.
 *
 * What RabbitMQ 3.10 does, checked against a local node (Debian's
 * rabbitmq-server 3.10.8, rabbitmqctl set_permissions/set_topic_permissions
 * and pika clients):
 *
 *  - Bytes, not characters. re:run on a binary without the `unicode` option
 *    works on bytes (Latin-1), so "^.$" refuses a queue named "é" (two bytes
 *    in UTF-8) and "^..$" admits it; "^[é]$" refuses "é" while "^é$" admits
 *    it. We compile without PCRE2_UTF/PCRE2_UCP to match. A pattern may
 *    still switch itself to UTF with a leading (*UTF); a subject that is
 *    then not valid UTF-8 simply does not match (Erlang's re:run raises
 *    badarg there instead, which would crash RabbitMQ's check).
 *  - Bytes are classified as ISO-8859-1 (Erlang's character tables), not
 *    ASCII: 0xC3, the first byte of "é" in UTF-8, is "Ã", a word character
 *    and upper case, so "^\w\W$" and "^[[:upper:]]" admit a queue named
 *    "é", "^\w+$" does not (0xA9 is "©"), and (?i) pairs 0xC0-0xDE with
 *    0xE0-0xFE. Our tables match Erlang's for every byte and every class
 *    (tests/unit/check_perm.c holds the sets read from re:run).
 *  - The empty pattern is "^$" (rabbit_auth_backend_internal substitutes
 *    it), so it matches only the empty name. Resource names never reach the
 *    check empty (the default exchange is checked as "amq.default", a
 *    queue "" is the server-named or the channel's last queue), so there it
 *    refuses everything; but routing keys can be empty, and a topic
 *    permission "" admits a publish with routing key "" and nothing else.
 *  - Patterns are checked when the permission is set: rabbitmqctl refuses
 *    "(" with {invalid_regexp, "(", {"missing )", 1}}. PCRE2's wording and
 *    offsets differ from Erlang's PCRE 8; we report PCRE2's.
 *  - Topic permissions (only those) expand "{username}" and "{vhost}"
 *    before matching, by plain text substitution with no regex escaping:
 *    user "a.b" with write pattern "^{username}$" may publish with routing
 *    key "axb". Every "{username}" is replaced first, then every "{vhost}"
 *    in the result, so a user named "u{vhost}" on vhost "/" gets "^u/$"
 *    while a vhost's own "{username}" is left as is. Configure/write/read
 *    patterns do not expand: "^{username}$" there admits only the literal
 *    name "{username}". A topic pattern is validated before expansion;
 *    when the expanded one does not compile (user "(" and "^{username}$"),
 *    RabbitMQ's channel crashes and the client's connection is closed with
 *    541 INTERNAL_ERROR.
 *  - A match that exceeds PCRE's backtracking limit counts as no match
 *    (Erlang's re:run returns nomatch; its limit, like ours, is 10,000,000).
 *
 * Matching uses a match-data block owned by the pattern, so a compiled
 * pattern must not be matched from two threads at once (the broker matches
 * on its event loop only).
 */
#ifndef WR_AUTH_PERM_H
#define WR_AUTH_PERM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/errbuf.h"

struct wr_perm_re;

/* Compile a permission pattern of len bytes (it may contain NUL; "" means
 * "^$"). Returns NULL when it does not compile, with err (if not NULL) set
 * to WR_EPRECONDITION_FAILED and "regular expression 'PAT' is invalid:
 * <PCRE2's message> at offset N", or when out of memory (WR_ENOMEM). */
struct wr_perm_re *wr_perm_re_compile(const char *pattern, size_t len, struct wr_errbuf *err);

/* A topic-permission pattern: "{username}" and "{vhost}" replaced, as
 * RabbitMQ does (see above), then compiled. Errors as for compile; the text
 * names the expanded pattern. wr_perm_re_pattern() gives the unexpanded one. */
struct wr_perm_re *wr_perm_re_compile_expanded(const char *pattern, size_t len, const char *user,
                                               size_t user_len, const char *vhost,
                                               size_t vhost_len, struct wr_errbuf *err);

/* Does the pattern match anywhere in the len bytes at s? */
bool wr_perm_re_match(const struct wr_perm_re *re, const char *s, size_t len);

/* The pattern as given to compile (before "" -> "^$" and expansion), for
 * export and listing; *len gets its length. A NUL follows it, but the
 * pattern may hold NULs itself: use *len. */
const char *wr_perm_re_pattern(const struct wr_perm_re *re, size_t *len);

void wr_perm_re_free(struct wr_perm_re *re);

#endif
