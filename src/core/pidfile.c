/*
 * pidfile.c - a locked pid file (see pidfile.h).
 *
 * The lock is taken before the file is truncated, so a refused second
 * start never clobbers the holder's number. The descriptor stays open (and
 * close-on-exec) to keep the lock; removing the file at exit comes before
 * closing it, so another process never locks a file that is about to go.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pidfile.h"

struct wr_pidfile {
    int fd;
    char path[];
};

/* The pid written in a locked file, for the refusal's text (0: none). */
static long holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

struct wr_pidfile *wr_pidfile_open(const char *path, char *why, size_t cap)
{
    size_t n = strlen(path);
    struct wr_pidfile *p = malloc(sizeof *p + n + 1);
    char line[32];
    int len;

    if (!p) {
        snprintf(why, cap, "%s: out of memory", path);
        return NULL;
    }
    memcpy(p->path, path, n + 1);
    /* A holder that exits removes the file, then unlocks it: the lock we
     * got may be on a file that is gone, so check it is still the one at
     * `path` and try again if not. */
    for (int tries = 0;; tries++) {
        struct stat held, named;
        p->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
        if (p->fd < 0) {
            snprintf(why, cap, "cannot open the pid file %s: %s", path, strerror(errno));
            free(p);
            return NULL;
        }
        if (flock(p->fd, LOCK_EX | LOCK_NB) < 0) {
            if (errno == EWOULDBLOCK)
                snprintf(why, cap, "the pid file %s is held by a running warrend (pid %ld)", path,
                         holder(p->fd));
            else
                snprintf(why, cap, "cannot lock the pid file %s: %s", path, strerror(errno));
            goto fail;
        }
        if (fstat(p->fd, &held) == 0 && stat(path, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino)
            break;
        close(p->fd);
        if (tries == 3) {
            snprintf(why, cap, "the pid file %s keeps being replaced", path);
            free(p);
            return NULL;
        }
    }
    len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(p->fd, 0) < 0 || pwrite(p->fd, line, (size_t)len, 0) != len) {
        snprintf(why, cap, "cannot write the pid file %s: %s", path, strerror(errno));
        goto fail;
    }
    return p;
fail:
    close(p->fd);
    free(p);
    return NULL;
}

void wr_pidfile_remove(struct wr_pidfile *p)
{
    if (!p)
        return;
    unlink(p->path);
    close(p->fd);
    free(p);
}
