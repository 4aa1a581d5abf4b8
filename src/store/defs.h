/*
 * defs.h - the definitions file: durable exchanges, queues and bindings of
 * every vhost, as JSON close to RabbitMQ's definitions export, written
 * atomically (temporary file, fsync, rename, fsync of the directory).
 */
#ifndef WR_STORE_DEFS_H
#define WR_STORE_DEFS_H

#include "core/errbuf.h"
#include "core/hmap.h"

/* Write the durable definitions of every vhost in `vhosts` to `path`. */
int wr_defs_save(const char *path, struct wr_hmap *vhosts, struct wr_errbuf *err);

/* Load `path` (a missing file is an empty broker) into the vhosts, which
 * must exist already ("/"). Returns 0, or an error for a file that cannot
 * be read or parsed (the broker then refuses to start rather than run
 * without its definitions). */
int wr_defs_load(const char *path, struct wr_hmap *vhosts, struct wr_errbuf *err);

#endif
