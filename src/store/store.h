/*
 * store.h - persistence: opens the data directory, recovers definitions
 * and messages into the broker, and from then on journals what the broker
 * reports through struct wr_persist and keeps definitions.json current
 * (written at the end of a loop turn in which a durable definition, a
 * vhost, a user or a permission changed).
 *
 * The guarantee: a persistent message published to a durable queue and
 * confirmed by the broker survives a crash of the process or the machine,
 * and is delivered until it is acked. Confirms for such messages wait for
 * the fdatasync that covers their journal record.
 */
#ifndef WR_STORE_STORE_H
#define WR_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errbuf.h"
#include "core/hmap.h"

struct event_base;
struct wr_broker;
struct wr_store;
struct wr_persist;

/* How far a recovery is, for a status line during a long start (systemd's
 * STATUS=): called as each phase starts (done = 0) and then at most about
 * once a second. Reading the journal counts bytes of its segment files;
 * restoring counts messages put back in their queues. */
enum wr_store_phase { WR_RECOVER_JOURNAL, WR_RECOVER_MESSAGES };
struct wr_store_progress {
    void (*fn)(void *arg, enum wr_store_phase phase, uint64_t done, uint64_t total);
    void *arg;
};

/* Open the data directory and recover into `b`, which must be empty: the
 * definitions (vhosts, users, permissions, durable exchanges, queues and
 * bindings of every vhost) from definitions.json, then the messages.
 * `progress` may be NULL. */
struct wr_store *wr_store_open(const char *data_dir, struct event_base *base,
                               uint32_t fsync_interval_ms, uint32_t segment_size,
                               struct wr_broker *b, const struct wr_store_progress *progress,
                               struct wr_errbuf *err);
void wr_store_close(struct wr_store *s);

const struct wr_persist *wr_store_persist(struct wr_store *s);

/* Who to tell when more of the journal is durable. */
void wr_store_on_synced(struct wr_store *s, void (*cb)(void *arg, uint64_t pos), void *arg);
/* End of a loop turn: write the definitions if they changed, then the
 * journal records of the turn (one write), and ask for a sync if someone
 * waits. */
void wr_store_flush(struct wr_store *s);

/* A confirm waits: sync at the end of this loop turn. */
void wr_store_want_sync(struct wr_store *s);
uint64_t wr_store_synced(const struct wr_store *s);
bool wr_store_failed(const struct wr_store *s);
/* The disk alarm: compaction (which writes) waits while it is on. */
void wr_store_low_disk(struct wr_store *s, bool low);

#endif
