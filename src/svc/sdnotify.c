/*
 * sdnotify.c - systemd's notify protocol on $NOTIFY_SOCKET (see
 * sdnotify.h).
 *
 * One unbound datagram socket, opened at start and kept, so a notification
 * costs one sendto(2); the kernel adds our credentials for a receiver that
 * asked for them (systemd does, with SO_PASSCRED). Only the loop's thread
 * sends.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "svc/sdnotify.h"

static int sd_fd = -1;
static struct sockaddr_un sd_addr;
static socklen_t sd_len;

int wr_sd_address(const char *value, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = value ? strlen(value) : 0;

    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (n < 2 || (value[0] != '/' && value[0] != '@') || n > sizeof sa->sun_path)
        return WR_ESYNTAX;
    if (value[0] == '/' && n == sizeof sa->sun_path)
        return WR_ESYNTAX; /* a path needs its NUL */
    memcpy(sa->sun_path, value, n);
    if (value[0] == '@')
        sa->sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL, unterminated */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (value[0] == '/'));
    return 0;
}

int wr_sd_open(const char *value, char *why, size_t cap)
{
    wr_sd_close();
    if (!value || !*value)
        return 0;
    if (wr_sd_address(value, &sd_addr, &sd_len) < 0) {
        snprintf(why, cap, "NOTIFY_SOCKET=%.200s is not an absolute path or @name", value);
        return WR_ESYNTAX;
    }
    sd_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sd_fd < 0) {
        snprintf(why, cap, "cannot create the notify socket: %s", strerror(errno));
        return WR_EIO;
    }
    return 0;
}

void wr_sd_close(void)
{
    if (sd_fd >= 0)
        close(sd_fd);
    sd_fd = -1;
}

bool wr_sd_active(void)
{
    return sd_fd >= 0;
}

int wr_sd_notify(const char *msg)
{
    ssize_t w;
    if (sd_fd < 0)
        return 0;
    do
        w = sendto(sd_fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *)&sd_addr, sd_len);
    while (w < 0 && errno == EINTR);
    return w < 0 ? WR_EIO : 0;
}

int wr_sd_notifyf(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (sd_fd < 0)
        return 0;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return wr_sd_notify(msg);
}

/* A plain decimal number (digits only, no sign, no blanks), at most
 * `max`; false otherwise. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (n > (max - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

uint64_t wr_sd_watchdog_usec(const char *usec, const char *pid, pid_t self)
{
    uint64_t us, p;
    if (!parse_u64(usec, UINT64_MAX, &us) || us == 0)
        return 0;
    if (pid && (!parse_u64(pid, INT32_MAX, &p) || (pid_t)p != self))
        return 0;
    return us;
}
