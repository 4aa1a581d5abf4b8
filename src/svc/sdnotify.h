/*
 * sdnotify.h - systemd's notify protocol, spoken directly (no libsystemd).
 *
 * A service with Type=notify finds the service manager's socket in
 * $NOTIFY_SOCKET: an AF_UNIX datagram socket, a path, or a name in the
 * abstract namespace when it starts with '@'. Each datagram holds
 * newline-separated KEY=VALUE lines: READY=1 once the service serves,
 * STATUS=... a line for `systemctl status`, STOPPING=1 when it shuts down,
 * WATCHDOG=1 as a keep-alive when the unit sets WatchdogSec= (systemd then
 * passes $WATCHDOG_USEC, and $WATCHDOG_PID when the watchdog is meant for
 * one process). Credentials travel with each datagram (SCM_CREDENTIALS,
 * added by the kernel), which is how systemd knows who sent it.
 *
 * Without $NOTIFY_SOCKET every call is a no-op. Sending never blocks the
 * loop (MSG_DONTWAIT): a lost STATUS line is better than a stalled broker.
 */
#ifndef WR_SVC_SDNOTIFY_H
#define WR_SVC_SDNOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "core/log.h"

/* The address a $NOTIFY_SOCKET value names: an absolute path, or '@' and
 * a name in the abstract namespace. Returns 0, or WR_ESYNTAX (empty, a
 * relative path, or too long for sun_path). */
int wr_sd_address(const char *value, struct sockaddr_un *sa, socklen_t *len);

/* Start talking to the socket `value` names (NULL or "" for none: every
 * notification is then dropped). Returns 0, or WR_ESYNTAX / WR_EIO with
 * `why` (cap bytes) saying what is wrong; notifications are then dropped. */
int wr_sd_open(const char *value, char *why, size_t cap);
void wr_sd_close(void);
/* Whether a socket is open. */
bool wr_sd_active(void);

/* Send one datagram; "READY=1", "STATUS=recovering\nREADY=1"... Returns
 * 0 (also when no socket is open), or WR_EIO (errno kept). */
int wr_sd_notify(const char *msg);
int wr_sd_notifyf(const char *fmt, ...) WR_PRINTF(1, 2);

/* The watchdog interval in microseconds that systemd asks of process
 * `self`, from the values of $WATCHDOG_USEC and $WATCHDOG_PID (each may be
 * NULL): 0 when there is none, when the pid is another process's, or when
 * a value is not a plain decimal number (or is 0, or overflows). */
uint64_t wr_sd_watchdog_usec(const char *usec, const char *pid, pid_t self);

#endif
