/*
 * journal.c - segments, group commit, replay; see journal.h.
 *
 * Threads: the writer thread calls fdatasync on the fd it was handed under
 * the mutex; everything else (appends, write(), segment rotation) is the
 * loop's. The loop syncs on its own twice: when it rotates (the old segment
 * must be durable before it is closed) and for compaction (the copies must
 * be durable before anything points at them). For those it takes the
 * writer's `busy` flag, so the writer never syncs a closed fd, and it
 * reports the new durable position through the pipe like the writer does:
 * a confirm covered by such a sync must not wait for a writer sync that
 * nothing will ask for.
 *
 * Prepared segments: a third thread (the preparer) makes the next segment
 * ahead of need, once the current one has WR_JOURNAL_PREPARE_AT bytes:
 * the file at its full size, every block written with zeros and synced,
 * its name synced in the directory. Records are written at our own offset
 * (pwrite), so an fdatasync of a prepared segment commits data only, not
 * a growing file size or newly allocated blocks through the filesystem's
 * journal (a third to a half less time per sync here). The first
 * segment of a run is not prepared, nor one the preparer could not make (a
 * full disk): those are written as before. Recovery reads a zero
 * tail as the end of a prepared segment, and an all-zero segment as empty
 * (reused by the next start).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/histo.h"
#include "core/log.h"
#include "store/crc32c.h"
#include "store/journal.h"
#include "wire/buf.h"

#define MAGIC 0x574a524cu /* "WJRL" */

struct wr_journal {
    char *dir;
    int dirfd;
    int fd;
    uint32_t seg;      /* current segment */
    uint32_t seg_size; /* bytes written + buffered in it */
    uint32_t seg_max;

    uint8_t *buf; /* records not yet written */
    size_t len, cap;
    uint64_t written;    /* position written to the fd */
    uint64_t disk_bytes; /* of every segment file in the directory */
    bool want_sync;
    bool failed;

    struct event_base *base;
    struct event *notify_ev, *interval_ev;
    int notify_pipe[2];
    wr_journal_synced_fn synced_cb;
    void *arg;

    pthread_t thread;
    /* The preparer (under mu): the segment asked for, the one ready and its
     * descriptor; whether the current segment was prepared and its size on
     * disk. */
    pthread_t prep_thread;
    pthread_cond_t prep_cv;
    uint32_t prep_want, prep_ready, prep_busy;
    int prep_fd;
    bool prep_quit;
    uint32_t prep_asked;
    bool prepared;
    uint64_t seg_alloc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t req_pos; /* position to sync */
    int req_fd;
    uint64_t synced_pos; /* durable */
    int sync_errno;
    bool busy, quit;
    struct wr_histo fsync; /* how long each fdatasync of a segment took */
};

static inline uint64_t pos_of(uint32_t seg, uint32_t off)
{
    return (uint64_t)seg << 32 | off;
}

/* Monotonic microseconds, read here (the writer thread has no loop clock). */
static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wake the loop's notify_cb (the next turn): more of the journal is
 * durable, or it failed. Any thread. */
static void notify_loop(struct wr_journal *j)
{
    char c = 1;
    if (j->notify_pipe[1] >= 0 && write(j->notify_pipe[1], &c, 1) < 0) {
        /* full pipe: a notification is pending anyway */
    }
}

/* A write or sync failed (the loop thread): nothing more is accepted, the
 * writer stops, and whoever waits for durability hears that it will not
 * come. Once: notify_cb calls it again for a failed sync. */
static void fail(struct wr_journal *j, const char *what, int e)
{
    if (j->failed)
        return;
    wr_log(WR_LOG_ERROR,
           "journal: %s failed: %s; persistent publishes are refused until "
           "restart",
           what, strerror(e));
    j->failed = true;
    pthread_mutex_lock(&j->mu);
    if (!j->sync_errno)
        j->sync_errno = e ? e : EIO;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    notify_loop(j);
}

static void *writer_main(void *arg)
{
    struct wr_journal *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        uint64_t pos, t0, t1;
        int fd, rc, e;
        /* Wait while the loop syncs itself (writer_hold), and while there
         * is nothing new to sync. After a failure (sync_errno) there never
         * is: the journal takes nothing more until restart, and trying
         * again would only spin. */
        while (j->busy || (!j->quit && (j->req_pos <= j->synced_pos || j->sync_errno)))
            pthread_cond_wait(&j->cv, &j->mu);
        if (j->req_pos <= j->synced_pos || j->sync_errno) /* quitting */
            break;
        pos = j->req_pos;
        fd = j->req_fd;
        j->busy = true;
        pthread_mutex_unlock(&j->mu);
        t0 = mono_us();
        rc = fdatasync(fd);
        e = rc < 0 ? errno : 0;
        t1 = mono_us();
        pthread_mutex_lock(&j->mu);
        wr_histo_add(&j->fsync, t1 - t0);
        j->busy = false;
        if (rc == 0) {
            if (pos > j->synced_pos) /* never backwards (a loop sync may be ahead) */
                j->synced_pos = pos;
        } else
            j->sync_errno = e;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        notify_loop(j);
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_journal *j = arg;
    char buf[64];
    uint64_t pos;
    int e;
    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    pthread_mutex_lock(&j->mu);
    pos = j->synced_pos;
    e = j->sync_errno;
    pthread_mutex_unlock(&j->mu);
    if (e)
        fail(j, "fdatasync", e);
    j->synced_cb(j->arg, pos);
}

static void request_sync(struct wr_journal *j)
{
    pthread_mutex_lock(&j->mu);
    if (j->written > j->req_pos) {
        j->req_pos = j->written;
        j->req_fd = j->fd;
        pthread_cond_signal(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

static void interval_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_journal *j = arg;
    (void)fd;
    (void)what;
    if (!j->failed && j->written > wr_journal_synced(j))
        request_sync(j);
}

/* A new segment, or the all-zero one recovery found last (written from
 * its start: records go at our own offset). */
static int open_segment(struct wr_journal *j, uint32_t seg)
{
    char name[32];
    struct stat st;
    snprintf(name, sizeof(name), "%08u.wjl", seg);
    j->fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (j->fd < 0)
        return WR_EIO;
    /* The new name must be durable before anything in it counts. */
    if (fsync(j->dirfd) < 0)
        return WR_EIO;
    j->seg = seg;
    j->seg_size = 0;
    j->seg_alloc = fstat(j->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    j->prepared = j->seg_alloc >= j->seg_max;
    return 0;
}

/* ---- the preparer ---- */

#define PREPARE_CHUNK (1u << 20)

/* Make segment `seg` (the preparer's thread): -1 when it cannot (a full
 * disk: segments are then made as they are needed, as before). */
static int prepare(struct wr_journal *j, uint32_t seg)
{
    char name[32];
    uint8_t *zeros;
    int fd;
    snprintf(name, sizeof(name), "%08u.wjl", seg);
    fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1; /* (it exists: never touched) */
    if (!(zeros = calloc(1, PREPARE_CHUNK)) || fallocate(fd, 0, 0, (off_t)j->seg_max) < 0)
        goto fail;
    for (uint64_t off = 0; off < j->seg_max; off += PREPARE_CHUNK) {
        size_t n = j->seg_max - off < PREPARE_CHUNK ? (size_t)(j->seg_max - off) : PREPARE_CHUNK;
        bool quit;
        pthread_mutex_lock(&j->mu);
        quit = j->prep_quit;
        pthread_mutex_unlock(&j->mu);
        if (quit || pwrite(fd, zeros, n, (off_t)off) != (ssize_t)n)
            goto fail;
    }
    if (fdatasync(fd) < 0 || fsync(j->dirfd) < 0)
        goto fail;
    free(zeros);
    return fd;
fail:
    free(zeros);
    close(fd);
    unlinkat(j->dirfd, name, 0);
    return -1;
}

static void *prep_main(void *arg)
{
    struct wr_journal *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        uint32_t seg;
        int fd;
        while (!j->prep_quit && (!j->prep_want || j->prep_want == j->prep_ready))
            pthread_cond_wait(&j->prep_cv, &j->mu);
        if (j->prep_quit)
            break;
        seg = j->prep_busy = j->prep_want;
        pthread_mutex_unlock(&j->mu);
        fd = prepare(j, seg);
        pthread_mutex_lock(&j->mu);
        j->prep_busy = 0;
        pthread_cond_broadcast(&j->prep_cv); /* (a rotation may wait for it) */
        if (fd >= 0) {
            j->prep_ready = seg;
            j->prep_fd = fd;
        } else if (j->prep_want == seg) {
            j->prep_want = 0; /* not again for this one */
        }
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Is the current segment far enough along for the next to be made? */
static bool prepare_due(const struct wr_journal *j)
{
    return j->seg_size >= WR_JOURNAL_PREPARE_AT || j->seg_size >= j->seg_max / 2;
}

/* Ask for the next segment once the current one is well started. */
static void prepare_next(struct wr_journal *j)
{
    if (j->prep_asked == j->seg + 1 || !prepare_due(j))
        return;
    j->prep_asked = j->seg + 1; /* (the loop's: asked once per segment) */
    pthread_mutex_lock(&j->mu);
    if (j->prep_want != j->seg + 1 && j->prep_ready != j->seg + 1) {
        j->prep_want = j->seg + 1;
        pthread_cond_signal(&j->prep_cv);
    }
    pthread_mutex_unlock(&j->mu);
}

bool wr_journal_next_ready(struct wr_journal *j)
{
    bool ready;
    pthread_mutex_lock(&j->mu);
    ready = j->prep_ready == j->seg + 1;
    pthread_mutex_unlock(&j->mu);
    return ready;
}

/* The prepared segment `seg`, taken (its descriptor), or -1. One being
 * made is waited for (the file is the preparer's until then: a segment
 * filled faster than the next was zeroed). */
static int take_prepared(struct wr_journal *j, uint32_t seg)
{
    int fd = -1;
    pthread_mutex_lock(&j->mu);
    while (j->prep_busy == seg)
        pthread_cond_wait(&j->prep_cv, &j->mu);
    if (j->prep_ready == seg) {
        fd = j->prep_fd;
        j->prep_ready = 0;
        j->prep_fd = -1;
    }
    if (j->prep_want == seg)
        j->prep_want = 0; /* not started: it never will be (the loop makes it) */
    pthread_mutex_unlock(&j->mu);
    return fd;
}

/* What the segment files in the directory hold now (once, at open; from
 * then on writes add and dropped segments subtract). */
static uint64_t segments_bytes(int dirfd)
{
    uint64_t total = 0;
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    struct stat st;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".wjl") == 0 &&
            fstatat(dirfd, de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

struct wr_journal *wr_journal_open(const char *dir, uint32_t first_segment, uint32_t segment_max,
                                   struct event_base *base, uint32_t fsync_interval_ms,
                                   wr_journal_synced_fn synced, void *arg, struct wr_errbuf *err)
{
    struct wr_journal *j = calloc(1, sizeof(*j));
    struct timeval tv;

    if (!j) {
        wr_fail(err, WR_EINTERNAL, "out of memory");
        return NULL;
    }
    (void)wr_crc32c(0, "", 0); /* its tables built here, before any thread of ours runs */
    j->fd = j->dirfd = j->prep_fd = -1;
    j->seg_max = segment_max ? segment_max : WR_JOURNAL_SEGMENT_MAX;
    j->notify_pipe[0] = j->notify_pipe[1] = -1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    pthread_cond_init(&j->prep_cv, NULL);
    j->dir = strdup(dir);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        wr_fail(err, WR_EIO, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dirfd < 0 || open_segment(j, first_segment ? first_segment : 1) < 0) {
        wr_fail(err, WR_EIO, "cannot open the journal in %s: %s", dir, strerror(errno));
        goto fail;
    }
    j->written = j->synced_pos = j->req_pos = pos_of(j->seg, 0);
    j->disk_bytes = segments_bytes(j->dirfd);
    j->base = base;
    j->synced_cb = synced;
    j->arg = arg;
    if (pipe2(j->notify_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        wr_fail(err, WR_EIO, "pipe: %s", strerror(errno));
        goto fail;
    }
    j->notify_ev = event_new(base, j->notify_pipe[0], EV_READ | EV_PERSIST, notify_cb, j);
    j->interval_ev = event_new(base, -1, EV_PERSIST, interval_cb, j);
    if (!j->notify_ev || !j->interval_ev) {
        wr_fail(err, WR_EINTERNAL, "out of memory");
        goto fail;
    }
    event_add(j->notify_ev, NULL);
    tv.tv_sec = fsync_interval_ms / 1000;
    tv.tv_usec = (suseconds_t)(fsync_interval_ms % 1000) * 1000;
    if (fsync_interval_ms)
        event_add(j->interval_ev, &tv);
    if (pthread_create(&j->thread, NULL, writer_main, j) != 0) {
        wr_fail(err, WR_EINTERNAL, "cannot start the journal writer thread");
        goto fail;
    }
    if (pthread_create(&j->prep_thread, NULL, prep_main, j) != 0) {
        pthread_mutex_lock(&j->mu);
        j->quit = true;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
        wr_fail(err, WR_EINTERNAL, "cannot start the journal's segment preparer thread");
        goto fail;
    }
    /* For top -H and the benchmarks' CPU figures. */
    pthread_setname_np(j->thread, "warren-journal");
    pthread_setname_np(j->prep_thread, "warren-prepare");
    return j;
fail:
    if (j->notify_ev)
        event_free(j->notify_ev);
    if (j->interval_ev)
        event_free(j->interval_ev);
    if (j->notify_pipe[0] >= 0)
        close(j->notify_pipe[0]), close(j->notify_pipe[1]);
    if (j->fd >= 0)
        close(j->fd);
    if (j->dirfd >= 0)
        close(j->dirfd);
    free(j->dir);
    free(j);
    return NULL;
}

static void writer_hold(struct wr_journal *j);
static void writer_release(struct wr_journal *j);

/* A write failed (ENOSPC, EIO, EFBIG). Nothing that is not durable yet
 * will be confirmed now: not this batch, and not what earlier batches of
 * this segment wrote that no sync has covered (their publishes are
 * nacked). Take all of it back out of the file, so that none of it comes
 * back at recovery as a message its publisher was told was refused. The
 * writer is held first: a sync it is doing may still make more durable,
 * and what it covers stays (those confirms go out). */
static void take_back(struct wr_journal *j, int e)
{
    uint64_t synced;
    off_t keep;
    writer_hold(j);
    pthread_mutex_lock(&j->mu);
    synced = j->synced_pos;
    pthread_mutex_unlock(&j->mu);
    keep = (uint32_t)(synced >> 32) == j->seg ? (off_t)(uint32_t)synced : 0;
    if (ftruncate(j->fd, keep) < 0)
        wr_log(WR_LOG_ERROR, "journal: cannot truncate after a failed write: %s", strerror(errno));
    else if ((uint64_t)keep <= j->seg_alloc) {
        j->disk_bytes -= j->seg_alloc - (uint64_t)keep;
        j->seg_alloc = (uint64_t)keep;
    }
    fail(j, "write", e); /* before the release: the writer starts no other sync */
    writer_release(j);
    j->len = 0;
}

static void write_buffer(struct wr_journal *j)
{
    size_t off = 0;
    if (!j->len || j->failed)
        return;
    while (off < j->len) {
        ssize_t n =
            pwrite(j->fd, j->buf + off, j->len - off, (off_t)(uint32_t)j->written + (off_t)off);
        if (n < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            take_back(j, e);
            return;
        }
        off += (size_t)n;
    }
    {
        uint64_t end = (uint32_t)j->written + (uint64_t)j->len;
        if (end > j->seg_alloc) { /* (a prepared segment's bytes were counted) */
            j->disk_bytes += end - j->seg_alloc;
            j->seg_alloc = end;
        }
    }
    j->written += j->len;
    j->len = 0;
}

/* The loop is about to sync or close the segment itself: wait for the
 * writer to finish a sync it is doing, and keep it from starting one until
 * writer_release. */
static void writer_hold(struct wr_journal *j)
{
    pthread_mutex_lock(&j->mu);
    while (j->busy)
        pthread_cond_wait(&j->cv, &j->mu);
    j->busy = true;
    pthread_mutex_unlock(&j->mu);
}

static void writer_release(struct wr_journal *j)
{
    pthread_mutex_lock(&j->mu);
    j->busy = false;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* fdatasync on the loop thread, the writer held (rotation, compaction).
 * The owner hears of the new durable position as after a writer sync.
 * Returns 0 or WR_EIO (the journal has then failed). */
static int loop_sync(struct wr_journal *j)
{
    uint64_t t0 = mono_us();
    if (fdatasync(j->fd) < 0) {
        fail(j, "fdatasync", errno);
        return WR_EIO;
    }
    uint64_t t1 = mono_us();
    pthread_mutex_lock(&j->mu);
    wr_histo_add(&j->fsync, t1 - t0);
    if (j->written > j->synced_pos)
        j->synced_pos = j->written;
    pthread_mutex_unlock(&j->mu);
    notify_loop(j);
    return 0;
}

static int rotate(struct wr_journal *j)
{
    int rc, e;
    write_buffer(j);
    writer_hold(j); /* the writer never syncs the fd closed here */
    if (!j->failed)
        loop_sync(j);
    close(j->fd);
    if ((j->fd = take_prepared(j, j->seg + 1)) >= 0) {
        j->seg++;
        j->seg_size = 0;
        j->seg_alloc = j->seg_max;
        j->disk_bytes += j->seg_max; /* (the preparer's file counts from now) */
        j->prepared = true;
        rc = 0;
    } else {
        rc = open_segment(j, j->seg + 1);
    }
    e = errno;
    if (rc == 0) {
        pthread_mutex_lock(&j->mu);
        j->written = j->req_pos = pos_of(j->seg, 0);
        /* (after a failure, what the old segment did not sync stays
         * unsynced: its confirms become nacks) */
        if (!j->failed && j->synced_pos < j->written)
            j->synced_pos = j->written;
        pthread_mutex_unlock(&j->mu);
    }
    writer_release(j);
    if (rc < 0) {
        fail(j, "opening a new segment", e);
        return WR_EIO;
    }
    return 0;
}

uint64_t wr_journal_append(struct wr_journal *j, uint8_t type, const struct wr_iov *parts, int n,
                           uint32_t *seg)
{
    size_t plen = 1, need;
    uint32_t crc;
    uint8_t *p;

    if (j->failed)
        return 0;
    for (int i = 0; i < n; i++)
        plen += parts[i].len;
    need = 12 + plen;
    if (plen > UINT32_MAX / 2)
        return 0;
    /* A full segment, or one that was not prepared while the next one is
     * ready: on to the next. */
    if (j->seg_size > 0 && (uint64_t)j->seg_size + need > j->seg_max && rotate(j) < 0)
        return 0;
    if (j->len + need > j->cap) {
        size_t cap = j->cap ? j->cap : 65536;
        uint8_t *b;
        while (cap < j->len + need)
            cap *= 2;
        b = realloc(j->buf, cap);
        if (!b)
            return 0;
        j->buf = b;
        j->cap = cap;
    }
    p = j->buf + j->len;
    wr_store32(p, MAGIC);
    wr_store32(p + 4, (uint32_t)plen);
    p[12] = type;
    crc = wr_crc32c(0, &type, 1);
    {
        uint8_t *q = p + 13;
        for (int i = 0; i < n; i++) {
            if (parts[i].len)
                memcpy(q, parts[i].p, parts[i].len);
            crc = wr_crc32c(crc, q, parts[i].len);
            q += parts[i].len;
        }
    }
    wr_store32(p + 8, crc);
    j->len += need;
    j->seg_size += (uint32_t)need;
    prepare_next(j);
    if (seg)
        *seg = j->seg;
    return j->written + j->len;
}

bool wr_journal_take_back(struct wr_journal *j, uint64_t end, uint32_t len)
{
    size_t need = 13 + (size_t)len;
    const uint8_t *p;
    if (j->failed || end != j->written + j->len || j->len < need)
        return false;
    p = j->buf + j->len - need;
    if (wr_load32(p) != MAGIC || wr_load32(p + 4) != len + 1)
        return false;
    j->len -= need;
    j->seg_size -= (uint32_t)need;
    return true;
}

void wr_journal_want_sync(struct wr_journal *j)
{
    j->want_sync = true;
}

void wr_journal_flush(struct wr_journal *j)
{
    write_buffer(j);
    if (j->want_sync && !j->failed) {
        j->want_sync = false;
        request_sync(j);
    }
}

int wr_journal_sync_now(struct wr_journal *j)
{
    int rc;
    write_buffer(j);
    if (j->failed)
        return WR_EIO;
    writer_hold(j);
    rc = loop_sync(j);
    writer_release(j);
    return rc;
}

uint64_t wr_journal_synced(const struct wr_journal *j)
{
    uint64_t pos;
    pthread_mutex_lock((pthread_mutex_t *)&j->mu);
    pos = j->synced_pos;
    pthread_mutex_unlock((pthread_mutex_t *)&j->mu);
    return pos;
}

bool wr_journal_failed(const struct wr_journal *j)
{
    return j->failed;
}

void wr_journal_stats(const struct wr_journal *j, uint64_t *disk_bytes, struct wr_histo *fsync)
{
    *disk_bytes = j->disk_bytes;
    pthread_mutex_lock((pthread_mutex_t *)&j->mu);
    *fsync = j->fsync;
    pthread_mutex_unlock((pthread_mutex_t *)&j->mu);
}

uint32_t wr_journal_segment(const struct wr_journal *j)
{
    return j->seg;
}

void wr_journal_drop_segment(struct wr_journal *j, uint32_t seg)
{
    char name[32];
    struct stat st;
    if (seg >= j->seg)
        return;
    snprintf(name, sizeof(name), "%08u.wjl", seg);
    if (fstatat(j->dirfd, name, &st, 0) < 0)
        st.st_size = 0;
    if (unlinkat(j->dirfd, name, 0) < 0)
        return;
    j->disk_bytes -= (uint64_t)st.st_size < j->disk_bytes ? (uint64_t)st.st_size : j->disk_bytes;
    wr_log(WR_LOG_DEBUG, "journal: segment %s deleted (nothing live)", name);
}

void wr_journal_close(struct wr_journal *j)
{
    if (!j)
        return;
    write_buffer(j);
    pthread_mutex_lock(&j->mu);
    j->quit = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    pthread_mutex_lock(&j->mu);
    j->prep_quit = true;
    pthread_cond_signal(&j->prep_cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->prep_thread, NULL);
    if (j->prep_fd >= 0)
        close(j->prep_fd); /* (all zeros: the next start writes into it) */
    if (!j->failed)
        fdatasync(j->fd);
    close(j->fd);
    close(j->dirfd);
    event_free(j->notify_ev);
    event_free(j->interval_ev);
    close(j->notify_pipe[0]);
    close(j->notify_pipe[1]);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    pthread_cond_destroy(&j->prep_cv);
    free(j->buf);
    free(j->dir);
    free(j);
}

/* ---- replay ---- */

static int seg_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A valid record at `off`? Returns its total size, or 0. */
static size_t record_at(const uint8_t *buf, size_t size, size_t off)
{
    uint32_t len;
    if (size - off < WR_JOURNAL_HEADER || wr_load32(buf + off) != MAGIC)
        return 0;
    len = wr_load32(buf + off + 4);
    if (len == 0 || len > size - off - 12)
        return 0;
    if (wr_crc32c(0, buf + off + 12, len) != wr_load32(buf + off + 8))
        return 0;
    return 12 + (size_t)len;
}

int wr_journal_peek(const uint8_t *p, size_t avail, size_t *total)
{
    uint32_t len;
    *total = WR_JOURNAL_HEADER;
    if (avail < WR_JOURNAL_HEADER)
        return 0;
    len = wr_load32(p + 4);
    if (wr_load32(p) == 0)
        return 0; /* zeros: the unwritten part of a prepared segment */
    if (wr_load32(p) != MAGIC || len == 0 || len > (1u << 31))
        return -1;
    *total = 12 + (size_t)len;
    return avail >= *total;
}

size_t wr_journal_next_valid(const uint8_t *buf, size_t size, size_t from)
{
    while (from < size && !record_at(buf, size, from))
        from++;
    return from;
}

size_t wr_journal_scan(const uint8_t *buf, size_t size, uint32_t seg, wr_replay_fn fn, void *arg,
                       struct wr_replay_stats *st, const char *name)
{
    size_t off = 0;
    while (off < size) {
        size_t r = record_at(buf, size, off), next;
        if (r) {
            fn(arg, seg, (uint32_t)(off + 13), buf[off + 12], buf + off + 13, (uint32_t)(r - 13));
            st->records++;
            off += r;
            continue;
        }
        /* Zeros to the end: a prepared segment's unwritten part. */
        if (buf[off] == 0 &&
            (size - off == 1 || memcmp(buf + off, buf + off + 1, size - off - 1) == 0))
            return off;
        /* Not a valid record here: find the next one. */
        next = off + 1;
        while (next < size && !record_at(buf, size, next))
            next++;
        if (next >= size) {
            st->skipped_bytes += size - off;
            return off; /* a torn or corrupt tail */
        }
        wr_log(WR_LOG_WARNING, "journal: %s: corrupt record at offset %zu, %zu bytes skipped", name,
               off, next - off);
        st->bad_records++;
        st->skipped_bytes += next - off;
        off = next;
    }
    return off;
}

static int replay_segment(const char *dir, uint32_t seg, bool last, wr_replay_fn fn, void *arg,
                          struct wr_replay_stats *st, struct wr_errbuf *err)
{
    char path[4096];
    struct stat sb;
    uint8_t *buf = NULL;
    size_t size, off = 0, got = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/%08u.wjl", dir, seg);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) < 0) {
        if (fd >= 0)
            close(fd);
        return wr_fail(err, WR_EIO, "cannot read %s: %s", path, strerror(errno));
    }
    size = (size_t)sb.st_size;
    if (size && !(buf = malloc(size))) {
        close(fd);
        return wr_fail(err, WR_EINTERNAL, "out of memory reading %s", path);
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n <= 0) {
            free(buf);
            close(fd);
            return wr_fail(err, WR_EIO, "cannot read %s: %s", path, strerror(errno));
        }
        got += (size_t)n;
    }
    st->segments++;
    {
        uint64_t records = st->records;
        off = wr_journal_scan(buf, size, seg, fn, arg, st, path);
        st->last_empty = st->records == records && (off == size || buf[off] == 0);
    }
    if (off < size && buf[off] == 0 &&
        (size - off == 1 || memcmp(buf + off, buf + off + 1, size - off - 1) == 0)) {
        /* the zeros of a prepared segment after its last record */
    } else if (off < size) {
        /* Nothing valid after `off`: a torn or corrupt tail. */
        wr_log(WR_LOG_WARNING,
               "journal: %s: %zu bytes at offset %zu are not a complete "
               "record; truncating",
               path, size - off, off);
        st->truncated++;
        if (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0)
            wr_log(WR_LOG_ERROR, "journal: cannot truncate %s: %s", path, strerror(errno));
    }
    (void)last;
    st->bytes += size;
    free(buf);
    close(fd);
    return 0;
}

int wr_journal_replay(const char *dir, wr_replay_fn fn, void *arg, struct wr_replay_stats *st,
                      struct wr_errbuf *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint32_t *segs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    memset(st, 0, sizeof(*st));
    if (!d)
        return errno == ENOENT ? 0
                               : wr_fail(err, WR_EIO, "cannot open %s: %s", dir, strerror(errno));
    while ((de = readdir(d))) {
        unsigned long v;
        char tail[8];
        if (sscanf(de->d_name, "%8lu.%3s", &v, tail) != 2 || strcmp(tail, "wjl") != 0 ||
            strlen(de->d_name) != 12)
            continue;
        if (n == cap) {
            uint32_t *a = realloc(segs, (cap = cap ? cap * 2 : 16) * sizeof(*a));
            if (!a) {
                closedir(d);
                free(segs);
                return wr_fail(err, WR_EINTERNAL, "out of memory");
            }
            segs = a;
        }
        segs[n++] = (uint32_t)v;
    }
    closedir(d);
    if (n)
        qsort(segs, n, sizeof(*segs), seg_cmp);
    for (size_t i = 1; i < n; i++)
        if (segs[i] != segs[i - 1] + 1)
            wr_log(WR_LOG_ERROR,
                   "journal: segment files %08u.wjl to %08u.wjl are missing; "
                   "the messages they held are lost",
                   segs[i - 1] + 1, segs[i] - 1);
    for (size_t i = 0; i < n && rc != WR_EINTERNAL; i++) {
        /* An unreadable segment is reported and skipped: it never stops the
         * broker from starting. */
        rc = replay_segment(dir, segs[i], i + 1 == n, fn, arg, st, err);
        if (rc == WR_EIO)
            wr_log(WR_LOG_ERROR, "journal: %s; its messages are lost", err->text);
        st->last_segment = segs[i];
    }
    if (rc == WR_EIO)
        rc = 0;
    free(segs);
    return rc;
}
