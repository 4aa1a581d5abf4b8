/*
 * unknown.h - what the parser says about a key the settings table has no
 * row for.
 *
 * Two cases. A key of rabbitmq.conf that Warren does not implement
 * (clustering, other protocols, TLS until it lands, log rotation...) is a
 * warning and its line is ignored, so an operator's rabbitmq.conf can be
 * reused as it is; the list is RabbitMQ 3.10's documented keys, and
 * families of them (`ssl_options.*`). Anything else is an error, with the
 * closest known key when it looks like a typo of one (edit distance).
 */
#ifndef WR_CONF_UNKNOWN_H
#define WR_CONF_UNKNOWN_H

#include <stdbool.h>
#include <stddef.h>

/* Whether `key` is a rabbitmq.conf key that Warren does not implement. */
bool wr_conf_rabbit_only(const char *key);

/* The patterns behind wr_conf_rabbit_only, for documentation and tests:
 * a name, or a name ending in ".*" for that key and every key below it. */
const char *const *wr_conf_rabbit_keys(size_t *count);

/* The name of the setting closest to `key` when it is near enough to be a
 * typo of it (about one edit in four characters, at most three), else
 * NULL. */
const char *wr_conf_closest(const char *key);

/* Optimal string alignment distance (insertions, deletions, substitutions
 * and swaps of neighbours) between a and b, or max + 1 when it is larger
 * than max or a string is longer than 128 bytes. */
size_t wr_conf_edit_distance(const char *a, const char *b, size_t max);

#endif
