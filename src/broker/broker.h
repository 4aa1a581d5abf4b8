/*
 * broker.h - the broker: the state that is neither one connection's nor the
 * event loop's. Its vhosts by name, its users, the persistence layer (as
 * the table of functions in broker/persist.h, so the broker does not depend
 * on the store), and the resource alarms with the memory accounting they
 * read.
 *
 * net/server.c runs the loop and the listeners around a broker; warrend.c
 * creates the broker, opens the store on it and hands both to the server.
 * The broker tells the server what it must act on through two callbacks:
 * the alarms cleared (unblock publishers), the journal synced (send the
 * confirms that waited).
 */
#ifndef WR_BROKER_BROKER_H
#define WR_BROKER_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/msg.h"
#include "broker/stats.h"
#include "broker/stream.h"
#include "core/hmap.h"
#include "core/list.h"
#include "wire/buf.h"

struct event_base;
struct wr_conf;
struct wr_auth_backend;
struct wr_persist;
struct wr_plugins;
struct wr_users;
struct wr_vhost;

struct wr_broker {
    struct event_base *base;
    const struct wr_conf *conf;
    struct wr_hmap vhosts; /* struct wr_vhost.node, by name */
    struct wr_users *users;
    const struct wr_persist *persist; /* NULL: everything in memory */
    /* Journal identities of durable queues are unique in the broker: each
     * vhost draws from its own range of 2^40 (vh->last_queue_id starts at
     * range << 40), and ranges are never reused. The next one to give: */
    uint32_t queue_id_ranges;
    /* Definitions Warren keeps but does not apply (policies, parameters,
     * limits, vhost metadata), as JSON text that store/defs.c reads and
     * writes; NULL when there are none. */
    char *defs_kept;

    /* Memory as the alarm counts it: the process at start, every message
     * alive (msgs.bytes), and the connections' unsent output, which the
     * connection code keeps in out_bytes. */
    uint64_t mem_limit;
    uint64_t mem_base;
    uint64_t out_bytes;
    uint64_t msg_bytes_peak; /* since the last malloc_trim */
    uint64_t msg_bytes_last; /* at the last tick */
    uint64_t msg_freed_trim; /* msgs.freed at the last malloc_trim */
    uint64_t msg_freed_last; /* msgs.freed at the last tick */
    bool mem_alarm, disk_alarm;
    bool alarm; /* either: publishers are blocked */
    /* How long opening the data directory (recovery) took at start, in
     * seconds (warrend.c measures it; /metrics reports it). */
    double recovery_s;
    /* The message counters of deleted vhosts, so that the node's totals
     * (/api/overview, rabbitmq_global_*_total) never go backwards. */
    uint64_t gone_st[WR_ST_N];
    uint64_t gone_dl_dropped[4];
    struct wr_churn churn;
    /* Streams whose newest messages wait for the journal to sync before
     * consumers may see them (struct wr_stream.wnode; stream.h). */
    struct wr_list stream_wait;
    uint64_t turns;                    /* loop turns ended (wr_broker_turn_end) */
    uint64_t publish_turn;             /* the last turn a message was published in */
    struct wr_replay_pace replay_pace; /* (stream.h) */
    /* Every message of every vhost (their bytes, their interned keys). */
    struct wr_msgs msgs;

    /* The loaded plugins (plugin/plugin.h); NULL when none. */
    struct wr_plugins *plugins;
    /* auth_backends.N in order, a NULL entry for the internal table
     * (auth/auth.h); none: the table alone. */
    const struct wr_auth_backend **auth_order;
    size_t nauth;

    void (*alarm_cleared)(void *arg);
    void (*synced)(void *arg, uint64_t pos, bool failed);
    void *listener; /* the argument of both */
};

/* A broker with no vhost and no user yet; limits from conf (kept). NULL
 * when out of memory. */
struct wr_broker *wr_broker_new(struct event_base *base, const struct wr_conf *conf);
/* Frees the vhosts (forgotten, not deleted: persistence is detached
 * first) and the users. */
void wr_broker_free(struct wr_broker *b);

struct wr_vhost *wr_broker_vhost(struct wr_broker *b, struct wr_str name);
/* Create a vhost (with the next range of queue identities; the store is
 * told). Returns it, or NULL when out of memory, when one of that name
 * exists, or when the name holds a NUL byte. */
struct wr_vhost *wr_broker_vhost_add(struct wr_broker *b, struct wr_str name);

/* Delete a vhost and everything in it: its queues with their messages,
 * its exchanges and bindings (durable ones leave the definitions and the
 * journal, so they do not come back after a restart), and every user's
 * permissions and topic permissions on it. Nothing may point into it
 * afterwards: its AMQP connections must have been closed first (net/conn.h
 * wr_conn_close_vhost releases their channels, unacked deliveries and
 * consumers, and their pointers to it). vh is freed. */
void wr_broker_vhost_delete(struct wr_broker *b, struct wr_vhost *vh);

/* Attach (or, with NULL, detach) the persistence layer, for every vhost. */
void wr_broker_set_persist(struct wr_broker *b, const struct wr_persist *p);

/* The journal is durable up to pos: for the store's on-synced hook. */
void wr_broker_journal_synced(void *broker, uint64_t pos);
/* A confirm waits for the journal: sync at the end of this loop turn. */
void wr_broker_want_sync(struct wr_broker *b);

/* Called on every publish: notes the turn (publish_turn, for streams'
 * replay budget) and raises the memory alarm when memory passes the limit
 * (a comparison when below). Returns true while an alarm is on. */
bool wr_broker_mem_check(struct wr_broker *b);
uint64_t wr_broker_mem_used(const struct wr_broker *b);
/* Everything is up: what the process holds now is its base size. */
void wr_broker_mem_start(struct wr_broker *b);

/* Periodic (the server's tick): clear the memory alarm with hysteresis,
 * give freed memory back after a large drop (malloc_trim), check the
 * disk. `freeing`: message blocks are still being freed on other threads
 * (the I/O threads'), so memory is given back at a later tick, after
 * them. True when it gave memory back (the threads then trim their own
 * arenas: net/io.h, wr_iopool_trim). */
bool wr_broker_tick(struct wr_broker *b, bool freeing);
/* Check free disk space and the journal now. */
void wr_broker_disk_check(struct wr_broker *b);

/* End of a loop turn: definitions and journal records of the turn are
 * written (before any reply leaves). */
void wr_broker_turn_end(struct wr_broker *b);

/* The node's name, as RabbitMQ's tools build one and expect in "node"
 * fields, the cluster name and rabbitmq_identity_info: "rabbit@" and the
 * short host name (gethostname up to the first '.'), computed once. */
const char *wr_node_name(void);

#endif
