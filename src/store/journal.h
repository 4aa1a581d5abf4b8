/*
 * journal.h - the message journal: append-only segment files of
 * checksummed records, written once per loop turn and made durable by
 * fdatasync on a writer thread (group commit).
 *
 * Record: magic u32 | length u32 | crc32c u32 | type u8 | payload
 * (length counts the type byte and the payload; the CRC covers them too).
 * Positions are (segment << 32 | offset): comparable across segments.
 *
 * The loop thread appends into a buffer; wr_journal_flush (called at the
 * end of each loop turn) writes the buffer with one write() and, when
 * something waits for durability, asks the writer thread for an fdatasync.
 * When it completes, the loop is told through a pipe and calls the owner's
 * synced callback with the position now durable. Without waiters, a timer
 * syncs at least every fsync_interval milliseconds.
 */
#ifndef WR_STORE_JOURNAL_H
#define WR_STORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errbuf.h"

struct event_base;
struct wr_histo;
struct wr_journal;

#define WR_JOURNAL_SEGMENT_MAX (64u << 20)
#define WR_JOURNAL_HEADER 13
/* A segment this full has the next one prepared (journal.c). */
#define WR_JOURNAL_PREPARE_AT (4u << 20)

typedef void (*wr_journal_synced_fn)(void *arg, uint64_t pos);

struct wr_journal *wr_journal_open(const char *dir, uint32_t first_segment, uint32_t segment_max,
                                   struct event_base *base, uint32_t fsync_interval_ms,
                                   wr_journal_synced_fn synced, void *arg, struct wr_errbuf *err);
/* Sync what was written, stop the writer thread, close. */
void wr_journal_close(struct wr_journal *j);

/* Append one record made of `n` parts. Returns its end position (what
 * wr_journal_synced must reach for it to be durable), or 0 when the
 * journal has failed. *seg is the segment the record lands in. */
struct wr_iov {
    const void *p;
    size_t len;
};
uint64_t wr_journal_append(struct wr_journal *j, uint8_t type, const struct wr_iov *parts, int n,
                           uint32_t *seg);

/* Take back the record that wr_journal_append returned `end` for, its
 * payload `len` bytes (the parts' total), when it is the last one appended
 * and still in the buffer: it will never be written. False, and nothing
 * changes, when it is not (written already, or something came after it). */
bool wr_journal_take_back(struct wr_journal *j, uint64_t end, uint32_t len);

/* Somebody waits for durability: sync at the end of this loop turn. */
void wr_journal_want_sync(struct wr_journal *j);
/* Write the buffered records (end of a loop turn). */
void wr_journal_flush(struct wr_journal *j);

uint64_t wr_journal_synced(const struct wr_journal *j);
/* Write the buffer and fdatasync it now, on the calling thread (for the
 * rare writes that must be durable before the caller goes on: compaction).
 * Returns 0 or WR_EIO (the journal has then failed). */
int wr_journal_sync_now(struct wr_journal *j);
/* True after a write or sync failed (disk full, I/O error): nothing more
 * is accepted until restart; the failure was logged. */
bool wr_journal_failed(const struct wr_journal *j);
/* For /metrics: the bytes written to the segment files in the directory,
 * and how long the fdatasyncs of segments took. */
void wr_journal_stats(const struct wr_journal *j, uint64_t *disk_bytes, struct wr_histo *fsync);
/* The segment after the current one is prepared (full size, zeros, synced)
 * and will be taken at the next rotation. */
bool wr_journal_next_ready(struct wr_journal *j);
/* Delete segment `seg` (nothing in it is live; never the current one). */
void wr_journal_drop_segment(struct wr_journal *j, uint32_t seg);
uint32_t wr_journal_segment(const struct wr_journal *j);

/* Reading back records this process wrote or recovery checked (no
 * checksum): the record at p, of which `avail` bytes are at hand. 1: it
 * is whole there, *total its size (header included); 0: more bytes are
 * needed (*total: how many, as far as known), or zeros begin there (the
 * unwritten end of a prepared segment); -1: not a record. */
int wr_journal_peek(const uint8_t *p, size_t avail, size_t *total);
/* The offset of the first valid record (checksum included) in buf at or
 * after `from`; `size` when there is none. */
size_t wr_journal_next_valid(const uint8_t *buf, size_t size, size_t from);

/* ---- recovery ---- */

struct wr_replay_stats {
    uint32_t segments;
    uint64_t records, bytes;
    uint64_t bad_records;   /* skipped: checksum mismatch */
    uint64_t skipped_bytes; /* garbage skipped or truncated */
    uint32_t truncated;     /* segments cut at a torn tail */
    uint32_t last_segment;  /* highest segment number seen (0: none) */
    bool last_empty;        /* ... and it is empty: new records may go there */
};

/* `off` is the payload's offset in the segment file. */
typedef void (*wr_replay_fn)(void *arg, uint32_t seg, uint32_t off, uint8_t type, const uint8_t *p,
                             uint32_t len);

/* Parse one segment's bytes: call `fn` for each valid record, skip corrupt
 * ones (counted in st). Returns where the valid part ends: `size`, or the
 * offset of a tail that holds no valid record (to be truncated). Never
 * reads outside buf. */
size_t wr_journal_scan(const uint8_t *buf, size_t size, uint32_t seg, wr_replay_fn fn, void *arg,
                       struct wr_replay_stats *st, const char *name);

/* Read every segment in order and call `fn` for each valid record. A torn
 * or corrupt tail is truncated; corrupt records in the middle are skipped
 * by scanning for the next valid one. Returns 0 or WR_EIO. */
int wr_journal_replay(const char *dir, wr_replay_fn fn, void *arg, struct wr_replay_stats *st,
                      struct wr_errbuf *err);

#endif
