/*
 * pidfile.h - the daemon's pid file (warrend --pidfile).
 *
 * The file holds the process id and a newline, and is locked (flock) for
 * as long as the process lives: a second warrend given the same file finds
 * it locked and refuses to start, naming the holder; a file left behind by
 * a process that died (SIGKILL, a crash) is not locked, and is taken over.
 * The lock, not the number in the file, decides: a pid can be reused.
 */
#ifndef WR_CORE_PIDFILE_H
#define WR_CORE_PIDFILE_H

#include <stddef.h>

struct wr_pidfile;

/* Create or open `path`, lock it, and write our pid into it. Returns NULL
 * with `why` (cap bytes) when another live process holds it or it cannot
 * be written. */
struct wr_pidfile *wr_pidfile_open(const char *path, char *why, size_t cap);

/* Remove the file and let go of it (at exit). NULL is ignored. */
void wr_pidfile_remove(struct wr_pidfile *p);

#endif
