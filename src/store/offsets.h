/*
 * offsets.h - where named stream consumers stopped: `stream-offsets.log`
 * in the data directory (broker/stream.h, x-stream-consumer-name).
 *
 * An append-only file of records, each
 *   crc32c u32 (of the rest), name length u8, queue id u64, next offset
 *   u64, name
 * (big-endian). The last record for a (queue id, name) wins. A loop turn
 * appends one record per name whose offset moved (the store coalesces);
 * the file is synced once a second when written, so a crash forgets at
 * most the last second's acknowledgements: those messages are delivered
 * again (at least once). When it has grown past a bound, it is rewritten
 * with one record per live name (a new file, synced, renamed over).
 * Reading stops at the first record that is torn or fails its CRC.
 */
#ifndef WR_STORE_OFFSETS_H
#define WR_STORE_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errbuf.h"

struct event_base;
struct wr_offsets;

typedef void (*wr_offsets_fn)(void *arg, uint64_t qid, uint64_t next, const char *name,
                              uint8_t len);

/* Parse a file's bytes, calling fn for each good record in order; returns
 * the length of the good prefix. (Recovery's parser; a fuzz target.) */
size_t wr_offsets_scan(const uint8_t *buf, size_t len, wr_offsets_fn fn, void *arg);

/* Read the file at `path` (absent: nothing), then open it for appending
 * from the end of its good prefix. NULL (err filled) on failure. */
struct wr_offsets *wr_offsets_open(const char *path, struct event_base *base, wr_offsets_fn fn,
                                   void *arg, struct wr_errbuf *err);
/* Append a record to the turn's buffer. */
void wr_offsets_put(struct wr_offsets *o, uint64_t qid, uint64_t next, const char *name,
                    uint8_t len);
/* Write the buffer (end of a loop turn); synced within a second. */
void wr_offsets_flush(struct wr_offsets *o);
/* Whether the file has grown enough to be rewritten (wr_offsets_rewrite). */
bool wr_offsets_want_rewrite(const struct wr_offsets *o);
/* Start a rewrite: records put from now on go to a new file until
 * wr_offsets_rewrite_done renames it over the old one (the caller puts
 * every live name in between). */
int wr_offsets_rewrite_begin(struct wr_offsets *o, struct wr_errbuf *err);
int wr_offsets_rewrite_done(struct wr_offsets *o, struct wr_errbuf *err);
/* Flush, sync and close. */
void wr_offsets_close(struct wr_offsets *o);

#endif
