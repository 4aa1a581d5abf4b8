/*
 * offsets.c - named stream consumers' offsets on disk; see offsets.h.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/crc32c.h"
#include "store/offsets.h"
#include "wire/buf.h"

#define HEAD 21                  /* crc, name length, queue id, next */
#define REWRITE_AFTER (1u << 20) /* bytes appended since the last rewrite */

struct wr_offsets {
    char *path, *tmp_path;
    int fd;
    int tmp_fd; /* a rewrite in progress: records go here */
    uint8_t *buf;
    size_t len, cap;
    uint64_t appended; /* bytes since the file was last rewritten */
    bool unsynced, failed;
    struct event *sync_ev;
};

size_t wr_offsets_scan(const uint8_t *buf, size_t len, wr_offsets_fn fn, void *arg)
{
    size_t off = 0;
    while (len - off >= HEAD) {
        const uint8_t *p = buf + off;
        uint8_t n = p[4];
        if (len - off < (size_t)HEAD + n)
            break;
        if (wr_load32(p) != wr_crc32c(0, p + 4, (size_t)HEAD - 4 + n))
            break;
        fn(arg, wr_load64(p + 5), wr_load64(p + 13), (const char *)p + HEAD, n);
        off += (size_t)HEAD + n;
    }
    return off;
}

static void sync_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_offsets *o = arg;
    (void)fd;
    (void)what;
    if (o->unsynced && o->fd >= 0 && fdatasync(o->fd) < 0 && !o->failed) {
        wr_log(WR_LOG_ERROR, "stream offsets: fdatasync of %s failed: %s", o->path,
               strerror(errno));
        o->failed = true;
    }
    o->unsynced = false;
}

struct wr_offsets *wr_offsets_open(const char *path, struct event_base *base, wr_offsets_fn fn,
                                   void *arg, struct wr_errbuf *err)
{
    struct wr_offsets *o = calloc(1, sizeof(*o));
    size_t plen = strlen(path);
    struct stat st;
    uint8_t *data = NULL;
    size_t good = 0;

    if (!o)
        goto oom;
    o->fd = o->tmp_fd = -1;
    o->path = strdup(path);
    o->tmp_path = malloc(plen + 5);
    if (!o->path || !o->tmp_path)
        goto oom;
    memcpy(o->tmp_path, path, plen);
    memcpy(o->tmp_path + plen, ".new", 5);
    o->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (o->fd < 0 || fstat(o->fd, &st) < 0) {
        wr_fail(err, WR_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (st.st_size > 0) {
        ssize_t got;
        if ((uint64_t)st.st_size > (1ull << 30)) {
            wr_fail(err, WR_EIO, "%s: file too large (%lld bytes)", path, (long long)st.st_size);
            goto fail;
        }
        if (!(data = malloc((size_t)st.st_size)))
            goto oom;
        got = pread(o->fd, data, (size_t)st.st_size, 0);
        if (got != st.st_size) {
            wr_fail(err, WR_EIO, "%s: short read", path);
            goto fail;
        }
        good = wr_offsets_scan(data, (size_t)st.st_size, fn, arg);
        free(data);
        data = NULL;
        if (good < (size_t)st.st_size) {
            wr_log(WR_LOG_WARNING,
                   "stream offsets: %s: %lld bytes after offset %zu are not a "
                   "whole record; cut off",
                   path, (long long)st.st_size - (long long)good, good);
            if (ftruncate(o->fd, (off_t)good) < 0) {
                wr_fail(err, WR_EIO, "%s: %s", path, strerror(errno));
                goto fail;
            }
        }
    }
    if (lseek(o->fd, (off_t)good, SEEK_SET) < 0) {
        wr_fail(err, WR_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    o->appended = good;
    o->sync_ev = event_new(base, -1, EV_PERSIST, sync_cb, o);
    if (!o->sync_ev)
        goto oom;
    {
        struct timeval tv = {1, 0};
        event_add(o->sync_ev, &tv);
    }
    return o;
oom:
    wr_fail(err, WR_EINTERNAL, "out of memory");
fail:
    free(data);
    if (o) {
        if (o->fd >= 0)
            close(o->fd);
        free(o->path);
        free(o->tmp_path);
        free(o);
    }
    return NULL;
}

void wr_offsets_put(struct wr_offsets *o, uint64_t qid, uint64_t next, const char *name,
                    uint8_t len)
{
    uint8_t *p;
    if (o->len + HEAD + len > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4096;
        uint8_t *b;
        while (cap < o->len + HEAD + len)
            cap *= 2;
        if (!(b = realloc(o->buf, cap)))
            return; /* dropped: the consumer may get a few messages again */
        o->buf = b;
        o->cap = cap;
    }
    p = o->buf + o->len;
    p[4] = len;
    wr_store64(p + 5, qid);
    wr_store64(p + 13, next);
    memcpy(p + HEAD, name, len);
    wr_store32(p, wr_crc32c(0, p + 4, (size_t)HEAD - 4 + len));
    o->len += (size_t)HEAD + len;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void wr_offsets_flush(struct wr_offsets *o)
{
    int fd = o->tmp_fd >= 0 ? o->tmp_fd : o->fd;
    if (!o->len)
        return;
    if (!o->failed && write_all(fd, o->buf, o->len) < 0) {
        wr_log(WR_LOG_ERROR,
               "stream offsets: writing %s failed: %s; named consumers' "
               "positions are not saved until restart",
               o->path, strerror(errno));
        o->failed = true;
    }
    o->appended += o->len;
    o->len = 0;
    o->unsynced = true;
}

bool wr_offsets_want_rewrite(const struct wr_offsets *o)
{
    return !o->failed && o->appended > REWRITE_AFTER;
}

int wr_offsets_rewrite_begin(struct wr_offsets *o, struct wr_errbuf *err)
{
    wr_offsets_flush(o);
    o->tmp_fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (o->tmp_fd < 0)
        return wr_fail(err, WR_EIO, "%s: %s", o->tmp_path, strerror(errno));
    return 0;
}

int wr_offsets_rewrite_done(struct wr_offsets *o, struct wr_errbuf *err)
{
    int fd = o->tmp_fd;
    wr_offsets_flush(o);
    o->tmp_fd = -1;
    if (o->failed || fdatasync(fd) < 0 || rename(o->tmp_path, o->path) < 0) {
        int e = errno;
        close(fd);
        unlink(o->tmp_path);
        return wr_fail(err, WR_EIO, "rewriting %s: %s", o->path, strerror(e));
    }
    close(o->fd);
    o->fd = fd;
    o->appended = 0;
    o->unsynced = true; /* the directory entry: synced with the next tick's data */
    {
        char *slash = strrchr(o->path, '/');
        if (slash) {
            *slash = '\0';
            int dfd = open(o->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            *slash = '/';
            if (dfd >= 0) {
                if (fsync(dfd) < 0)
                    wr_log(WR_LOG_WARNING, "stream offsets: fsync of the data directory: %s",
                           strerror(errno));
                close(dfd);
            }
        }
    }
    return 0;
}

void wr_offsets_close(struct wr_offsets *o)
{
    if (!o)
        return;
    if (o->tmp_fd >= 0) {
        close(o->tmp_fd);
        unlink(o->tmp_path);
    }
    wr_offsets_flush(o);
    if (!o->failed && o->unsynced)
        (void)fdatasync(o->fd);
    close(o->fd);
    if (o->sync_ev)
        event_free(o->sync_ev);
    free(o->buf);
    free(o->path);
    free(o->tmp_path);
    free(o);
}
