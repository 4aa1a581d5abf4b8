/*
 * utf8.h - UTF-8 checks for names that come from peers.
 *
 * Two rules, because RabbitMQ's is not Unicode's. RabbitMQ 3.10 refuses a
 * short string in most methods unless it is "UTF-8" in the loose sense of
 * its decoder: sequences of 1 to 4 bytes in their shortest form, any value
 * up to U+1FFFFF, UTF-16 surrogates included (a connection error 501
 * "Malformed UTF-8 in shortstr"). Names passing that rule are accepted,
 * stored and given back byte for byte. Anything that must be Unicode proper
 * (JSON text, a log line) uses the strict rule: no surrogates, nothing above
 * U+10FFFF.
 */
#ifndef WR_CORE_UTF8_H
#define WR_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed sequence at p (1..4), or 0 when the bytes at p
 * do not start one. `left` is how many bytes may be read (> 0). */
size_t wr_utf8_seq(const uint8_t *p, size_t left, bool strict);

/* RabbitMQ's rule (see above): what the AMQP decoder accepts. */
bool wr_utf8_valid(const void *p, size_t len);

/* Unicode's rule: what JSON and log lines may carry unescaped. */
bool wr_utf8_strict(const void *p, size_t len);

#endif
