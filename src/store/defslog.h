/*
 * defslog.h - the definitions log: durable exchanges, queues and bindings
 * as they come and go, appended between snapshots of definitions.json.
 *
 * Rewriting the whole definitions.json for every declare made declaring N
 * durable queues one after another cost O(N^2) bytes written (10,000
 * queues took 504 s). Now a change to one exchange, queue or binding is
 * one line appended to definitions.log and synced at the end of the loop
 * turn, before the declare-ok leaves; the snapshot is rewritten only when
 * the log has grown as large as the snapshot itself (so each change is
 * written a bounded number of times), or when something else changed
 * (vhosts, users, permissions, policies: rare, and written in full as
 * before).
 *
 * A line is "CRC {JSON}\n": the CRC-32C of the JSON text as 8 hex digits,
 * then {"seq": N, "op": "put"|"del", "kind": "queue"|"exchange"|"binding",
 * "entry": {...}} where the entry is the object exactly as definitions.json
 * holds it (defs.h). A deletion carries the whole entry too; its identity
 * is what counts. Sequence numbers grow by one per line across snapshots:
 * the snapshot says up to which one it holds ("warren_defs_seq"), so lines
 * left from before a snapshot (a crash between the rename and the
 * truncation) are skipped.
 *
 * Recovery folds the log into the snapshot's document, then imports the
 * result as before. Deleting a queue or an exchange also deletes the
 * bindings to and from it that were written before the deletion (the
 * broker removes those without a line of their own). A torn tail (lines
 * written but not synced when the machine stopped: never confirmed to a
 * client) is cut off with a warning; a damaged line followed by good ones
 * is corruption, and the broker refuses to start rather than guess.
 */
#ifndef WR_STORE_DEFSLOG_H
#define WR_STORE_DEFSLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errbuf.h"
#include "store/defs.h"

struct wr_defslog;

/* The log grows to at least this before a snapshot replaces it. */
#define WR_DEFSLOG_MIN_SNAPSHOT (1u << 20)

/* Open (create) the log for appending, first cutting it to `good_len`
 * bytes (what recovery found intact). `seq` is the last sequence number in
 * use (snapshot or log). NULL with err set on failure. */
struct wr_defslog *wr_defslog_open(const char *path, uint64_t good_len, uint64_t seq,
                                   struct wr_errbuf *err);
void wr_defslog_close(struct wr_defslog *l);

/* Queue one change for the end of the turn. `entry` is taken (NULL, from
 * an allocation that failed, makes the log unusable: wr_defslog_write
 * then fails and the store falls back to a snapshot). */
void wr_defslog_add(struct wr_defslog *l, const char *kind, bool gone, json_t *entry);
bool wr_defslog_pending(const struct wr_defslog *l);
/* Append the queued lines and fdatasync. Returns 0, or WR_EIO (err set):
 * the file may then end in a partial line, so the caller writes a
 * snapshot and calls wr_defslog_reset before appending again. */
int wr_defslog_write(struct wr_defslog *l, struct wr_errbuf *err);
/* Bytes in the file, plus those queued. */
uint64_t wr_defslog_size(const struct wr_defslog *l);
/* The sequence number of the last line queued or written: a snapshot
 * taken now holds everything up to it. */
uint64_t wr_defslog_seq(const struct wr_defslog *l);
/* A snapshot holding everything up to wr_defslog_seq is on disk: forget
 * the queued lines and empty the file. Returns 0 or WR_EIO. */
int wr_defslog_reset(struct wr_defslog *l, struct wr_errbuf *err);

/* Recovery: apply the log text to `root` (a definitions document, changed
 * in place), skipping lines with seq <= the document's warren_defs_seq.
 * Sets *last_seq to the highest sequence number seen (the snapshot's when
 * no line is newer), *good_len to the length of the intact prefix and
 * *lines to the number of lines applied. Returns 0, or WR_ESYNTAX with
 * err saying which line and why. Safe on any bytes (fuzzed). */
int wr_defslog_fold(json_t *root, const char *text, size_t len, uint64_t *last_seq,
                    size_t *good_len, size_t *lines, struct wr_defs_err *err);

#endif
