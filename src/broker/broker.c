/*
 * broker.c - the broker object; see broker.h.
 *
 * Neighbours: vhost.c (what a vhost holds and its AMQP operations),
 * msg.c (struct wr_msgs: the bytes of every live message), the store behind
 * struct wr_persist, and net/server.c, which runs the loop, calls
 * wr_broker_tick and wr_broker_turn_end, and listens to the two callbacks.
 */
#include "config.h"

#include <event2/event.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/persist.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/log.h"

/* ---- memory accounting ---- */

/* Resident size now: read once at start (a syscall per publish would be on
 * the hot path, and RSS does not fall when malloc keeps freed memory,
 * which would hold the alarm on after the queues drained). */
static uint64_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t total_ram(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : (uint64_t)1 << 32;
}

uint64_t wr_broker_mem_used(const struct wr_broker *b)
{
    return b->mem_base + b->msgs.bytes + b->out_bytes;
}

/* ---- lifecycle ---- */

struct wr_broker *wr_broker_new(struct event_base *base, const struct wr_conf *conf)
{
    struct wr_broker *b;
    /* glibc gives the top of its heap back on free once 128 KiB of it are
     * free, and the next malloc takes it again: a queue of a few 64 KiB
     * messages going round paid fresh page faults for every body (8.5 per
     * message, most of the 240 us each took here). The heap keeps its top
     * (1 MiB in each arena: the I/O threads have theirs) and large bodies
     * come from it; memory goes back in wr_broker_tick, after a drop.
     * Setting these also stops glibc raising its mmap threshold on its
     * own. Set here, before the journal's and the I/O threads start: glibc
     * reads these settings without a lock. */
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->base = base;
    b->conf = conf;
    if (base)
        event_base_priority_init(base, WR_LOOP_PRIORITIES); /* before any event */
    wr_hmap_init(&b->vhosts);
    wr_msgs_init(&b->msgs);
    wr_list_init(&b->stream_wait);
    b->replay_pace.share = (uint32_t)conf->stream_replay_share;
    if (!(b->users = wr_users_new())) {
        free(b);
        return NULL;
    }
    b->mem_limit = (uint64_t)((double)total_ram() * conf->mem_high_watermark);
    if (conf->mem_high_watermark_absolute)
        b->mem_limit = conf->mem_high_watermark_absolute;
    return b;
}

void wr_broker_mem_start(struct wr_broker *b)
{
    b->mem_base = rss_bytes();
    wr_log(WR_LOG_INFO, "memory high watermark: %llu bytes (%llu in use at start)",
           (unsigned long long)b->mem_limit, (unsigned long long)b->mem_base);
    wr_broker_mem_check(b);
}

void wr_broker_free(struct wr_broker *b)
{
    struct wr_hnode *n, *nx;
    size_t it;

    if (!b)
        return;
    /* The queues are forgotten by this process, not deleted: nothing of
     * their going may reach the journal. */
    wr_broker_set_persist(b, NULL);
    for (n = wr_hmap_first(&b->vhosts, &it); n; n = nx) {
        nx = wr_hmap_next(&b->vhosts, &it, n);
        wr_vhost_free(wr_container_of(n, struct wr_vhost, node));
    }
    wr_hmap_free(&b->vhosts);
    wr_msgs_fini(&b->msgs);
    wr_users_free(b->users);
    free(b->defs_kept);
    free(b->auth_order);
    free(b);
}

/* ---- vhosts ---- */

struct wr_vhost *wr_broker_vhost(struct wr_broker *b, struct wr_str name)
{
    struct wr_hnode *n = wr_hmap_get(&b->vhosts, name);
    return n ? wr_container_of(n, struct wr_vhost, node) : NULL;
}

struct wr_vhost *wr_broker_vhost_add(struct wr_broker *b, struct wr_str name)
{
    struct wr_vhost *vh;
    char *cname;

    if (wr_broker_vhost(b, name) || memchr(name.ptr, '\0', name.len))
        return NULL;
    if (!(cname = malloc((size_t)name.len + 1)))
        return NULL;
    memcpy(cname, name.ptr, name.len);
    cname[name.len] = '\0';
    vh = wr_vhost_new(cname, b->base);
    free(cname);
    if (!vh)
        return NULL;
    if (wr_hmap_put(&b->vhosts, &vh->node) < 0) {
        wr_vhost_free(vh);
        return NULL;
    }
    vh->persist = b->persist;
    vh->msgs = &b->msgs;
    vh->churn = &b->churn;
    vh->stream_wait = &b->stream_wait;
    vh->turns = &b->turns;
    vh->publish_turn = &b->publish_turn;
    vh->replay_pace = &b->replay_pace;
    vh->last_queue_id = (uint64_t)b->queue_id_ranges++ << 40;
    wr_vhost_defs_changed(vh);
    return vh;
}

void wr_broker_vhost_delete(struct wr_broker *b, struct wr_vhost *vh)
{
    struct wr_str name = wr_str_c(vh->name);
    struct wr_user *x = NULL;
    size_t it = 0;
    char esc[WR_LOG_ESC_MAX];

    /* Permissions are by name: a vhost of the same name created later
     * starts with none, as in RabbitMQ. (Clearing a user's entries leaves
     * the user table itself as it is, so the walk stays valid.) */
    while ((x = wr_users_next(b->users, &it, x)) != NULL) {
        struct wr_str u = wr_user_name(x);
        wr_users_clear_permissions(b->users, u, name);
        wr_users_clear_topic_permissions(b->users, u, name, NULL);
    }
    wr_log(WR_LOG_INFO, "vhost '%s' deleted", WR_LOG_ESC(esc, name));
    for (int k = 0; k < WR_ST_N; k++)
        b->gone_st[k] += vh->st.n[k];
    for (int k = 0; k < 4; k++)
        b->gone_dl_dropped[k] += vh->dl_dropped[k];
    wr_hmap_del(&b->vhosts, &vh->node);
    /* With the persistence layer still attached: every queue's deletion
     * journals its messages' removal and marks the definitions changed. */
    wr_vhost_free(vh);
    if (b->persist)
        b->persist->defs_changed(b->persist->ctx);
}

void wr_broker_set_persist(struct wr_broker *b, const struct wr_persist *p)
{
    struct wr_hnode *n;
    size_t it;
    b->persist = p;
    for (n = wr_hmap_first(&b->vhosts, &it); n; n = wr_hmap_next(&b->vhosts, &it, n))
        wr_container_of(n, struct wr_vhost, node)->persist = p;
}

/* ---- the journal ---- */

void wr_broker_journal_synced(void *broker, uint64_t pos)
{
    struct wr_broker *b = broker;
    bool failed = b->persist && b->persist->failed(b->persist->ctx);
    if (failed)
        wr_broker_disk_check(b); /* raise the disk alarm now, not at the next tick */
    wr_stream_synced(&b->stream_wait, pos);
    if (b->synced)
        b->synced(b->listener, pos, failed);
}

void wr_broker_want_sync(struct wr_broker *b)
{
    if (b->persist)
        b->persist->want_sync(b->persist->ctx);
}

void wr_broker_turn_end(struct wr_broker *b)
{
    b->turns++;
    b->replay_pace.share = (uint32_t)b->conf->stream_replay_share; /* (a reload sets it in place) */
    if (b->persist)
        b->persist->flush(b->persist->ctx);
}

/* ---- alarms ---- */

static void alarm_update(struct wr_broker *b)
{
    bool on = b->mem_alarm || b->disk_alarm;
    if (b->alarm == on)
        return;
    b->alarm = on;
    /* Raising it changes nothing yet: a connection is blocked when it next
     * publishes (as in RabbitMQ). Clearing it releases every blocked one. */
    if (!on && b->alarm_cleared)
        b->alarm_cleared(b->listener);
}

static void mem_alarm_set(struct wr_broker *b, bool on)
{
    b->mem_alarm = on;
    wr_log(on ? WR_LOG_WARNING : WR_LOG_INFO,
           on ? "memory alarm: %llu bytes in use, over the limit of %llu; blocking publishers"
              : "memory alarm cleared (%llu bytes in use, limit %llu)",
           (unsigned long long)wr_broker_mem_used(b), (unsigned long long)b->mem_limit);
    alarm_update(b);
}

bool wr_broker_mem_check(struct wr_broker *b)
{
    b->publish_turn = b->turns;
    if (!b->mem_alarm && wr_broker_mem_used(b) > b->mem_limit)
        mem_alarm_set(b, true);
    return b->alarm;
}

/* Free space on the data directory's file system. */
void wr_broker_disk_check(struct wr_broker *b)
{
    const struct wr_persist *p = b->persist;
    struct statvfs sv;
    uint64_t free_bytes, limit = b->conf->disk_free_limit;
    bool low, failed;

    if (!p || statvfs(b->conf->data_dir, &sv) < 0)
        return;
    free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    p->low_disk(p->ctx, free_bytes < limit * 2);
    failed = p->failed(p->ctx);
    low = free_bytes < limit || failed;
    if (low == b->disk_alarm)
        return;
    b->disk_alarm = low;
    wr_log(low ? WR_LOG_WARNING : WR_LOG_INFO,
           low ? "disk alarm: %llu bytes free on the data directory (limit %llu)%s; "
                 "blocking publishers"
               : "disk alarm cleared (%llu bytes free, limit %llu)%s",
           (unsigned long long)free_bytes, (unsigned long long)limit,
           failed ? ", journal failed" : "");
    alarm_update(b);
}

bool wr_broker_tick(struct wr_broker *b, bool freeing)
{
    bool halved, settled, churned, trimmed = false;
    /* Clear the alarm with some hysteresis so it does not flap. */
    if (b->mem_alarm && wr_broker_mem_used(b) < b->mem_limit - b->mem_limit / 10)
        mem_alarm_set(b, false);
    /* Give memory back to the system after a large drop (a queue drained,
     * a million messages expired): glibc keeps freed small blocks. Each
     * halving of the messages' bytes (by 4 MiB at least: not every second
     * of a busy queue's ups and downs) trims once, so a queue that drains
     * over several seconds is trimmed again as it goes. */
    if (b->msgs.bytes > b->msg_bytes_peak)
        b->msg_bytes_peak = b->msgs.bytes;
    halved =
        b->msg_bytes_peak - b->msgs.bytes >= (4u << 20) && b->msgs.bytes <= b->msg_bytes_peak / 2;
    /* Or the messages fell by 256 KiB or more and then stayed still for a
     * tick (the queues went quiet): glibc now keeps up to 1 MiB of free
     * heap top (set in wr_broker_new), which a smaller drop would leave
     * held for good. */
    settled =
        b->msg_bytes_peak - b->msgs.bytes >= (256u << 10) && b->msgs.bytes == b->msg_bytes_last;
    /* Or 4 MiB or more went through since the last trim, and then nothing
     * came or went for a tick: a queue at its max-length drops as much as
     * it takes, so its bytes never fall, yet the burst leaves free holes
     * between the bodies it keeps. Never while messages flow (a trim
     * hands free pages back, and the next bodies would fault them in). */
    churned = b->msgs.freed - b->msg_freed_trim >= (4u << 20) &&
              b->msgs.bytes == b->msg_bytes_last && b->msgs.freed == b->msg_freed_last;
    b->msg_bytes_last = b->msgs.bytes;
    b->msg_freed_last = b->msgs.freed;
    if ((halved || settled || churned) && !freeing) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        malloc_trim(0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        wr_log(WR_LOG_DEBUG,
               "returned freed memory to the system in %.3f ms (messages: %llu bytes, was %llu)",
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
               (unsigned long long)b->msgs.bytes, (unsigned long long)b->msg_bytes_peak);
        b->msg_bytes_peak = b->msgs.bytes;
        b->msg_freed_trim = b->msgs.freed;
        trimmed = true;
    }
    wr_broker_disk_check(b);
    return trimmed;
}

const char *wr_node_name(void)
{
    static char name[300];
    if (!name[0]) {
        char host[256] = "";
        if (gethostname(host, sizeof(host)) < 0 || !host[0])
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        host[strcspn(host, ".")] = '\0';
        snprintf(name, sizeof(name), "rabbit@%s", host[0] ? host : "localhost");
    }
    return name;
}
