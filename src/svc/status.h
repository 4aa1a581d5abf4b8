/*
 * status.h - the one-screen status that SIGUSR1 writes to the log: what an
 * operator asks first when a broker misbehaves (connections, channels,
 * queues, messages, memory, the journal, uptime), without the management
 * API. It walks the connections and queues once; nothing is kept.
 */
#ifndef WR_SVC_STATUS_H
#define WR_SVC_STATUS_H

#include <stddef.h>
#include <stdint.h>

struct wr_server;

/* Log the status, as info lines starting "status: ". `started_ms` is when
 * the broker started (wr_now_ms clock). */
void wr_svc_status_log(struct wr_server *s, uint64_t started_ms);

/* n with its digits grouped by three ("1,000,000"), into buf. Returns buf. */
const char *wr_svc_group(char *buf, size_t cap, uint64_t n);

/* A byte count for people ("12.3 MiB"), into buf. Returns buf. */
const char *wr_svc_bytes(char *buf, size_t cap, uint64_t n);

#endif
