/*
 * log.c - formatting and writing of log lines (see log.h).
 *
 * The line is built in a stack buffer and handed to write(2) in one call
 * per output: stdio buffering would hold lines back or split them when
 * stderr is a pipe to systemd's journal. The file is opened O_APPEND, so a
 * line lands whole at the end even while logrotate copies it. Timestamps
 * are read fresh (not from clock.c's cache) because a log line should say
 * when it was written, and are UTC with milliseconds so lines from several
 * hosts sort together; syslog gets the line without it (syslog stamps its
 * own).
 *
 * Another thread may log while the loop's thread reconfigures: the levels
 * and the file descriptor are atomics, and a new file takes the old one's
 * descriptor number with dup2, which is atomic for a concurrent write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/utf8.h"

/* The default level, and each output's effective level (-1: off). */
static atomic_int def_level = WR_LOG_INFO;
static atomic_int console_level = WR_LOG_INFO;
static atomic_int file_level = -1;
static atomic_int syslog_level = -1;
static atomic_int max_level = WR_LOG_INFO;
static atomic_int file_fd = -1;
/* What the outputs were configured with, for set_level and reopen (the
 * loop's thread only). */
static struct {
    enum wr_log_level file, console, syslog;
    bool console_on, syslog_on, syslog_open;
    char path[4096];
} outs = {
    .console_on = true, .file = WR_LOG_UNSET, .console = WR_LOG_UNSET, .syslog = WR_LOG_UNSET};

static const char *const level_names[] = {
    [WR_LOG_ERROR] = "error",
    [WR_LOG_WARNING] = "warning",
    [WR_LOG_INFO] = "info",
    [WR_LOG_DEBUG] = "debug",
};

static bool valid_level(enum wr_log_level l)
{
    return l >= WR_LOG_ERROR && l <= WR_LOG_DEBUG;
}

/* An output's effective level: off, its own, or the default. */
static int effective(bool on, enum wr_log_level own, int def)
{
    return !on ? -1 : valid_level(own) ? (int)own : def;
}

static void apply_levels(void)
{
    int def = atomic_load(&def_level);
    int c = effective(outs.console_on, outs.console, def);
    int f = effective(outs.path[0] != '\0', outs.file, def);
    int y = effective(outs.syslog_on, outs.syslog, def);
    atomic_store(&console_level, c);
    atomic_store(&file_level, f);
    atomic_store(&syslog_level, y);
    atomic_store(&max_level, c > f ? (c > y ? c : y) : (f > y ? f : y));
}

void wr_log_set_level(enum wr_log_level level)
{
    if (!valid_level(level))
        return;
    atomic_store(&def_level, (int)level);
    apply_levels();
}

enum wr_log_level wr_log_get_level(void)
{
    return (enum wr_log_level)atomic_load(&def_level);
}

bool wr_log_enabled(enum wr_log_level level)
{
    return (int)level <= atomic_load_explicit(&max_level, memory_order_relaxed);
}

static int open_file(const char *path, char *why, size_t cap)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        snprintf(why, cap, "cannot open the log file %s: %s", path, strerror(errno));
    return fd;
}

/* The new file takes the old one's descriptor (a write in another thread
 * goes to one or the other, whole), or becomes the file. */
static int install_file(int fd, char *why, size_t cap)
{
    int old = atomic_load(&file_fd);
    if (old < 0) {
        atomic_store(&file_fd, fd);
        return 0;
    }
    if (dup2(fd, old) < 0) {
        snprintf(why, cap, "cannot switch the log file: %s", strerror(errno));
        close(fd);
        return WR_EIO;
    }
    close(fd);
    return 0;
}

int wr_log_configure(const struct wr_log_outputs *o, char *why, size_t cap)
{
    const char *path = o->file ? o->file : "";
    size_t n = strlen(path);

    if (n >= sizeof outs.path) {
        snprintf(why, cap, "log file name too long");
        return WR_EIO;
    }
    if (n && (strcmp(path, outs.path) != 0 || atomic_load(&file_fd) < 0)) {
        int fd = open_file(path, why, cap);
        if (fd < 0 || install_file(fd, why, cap) < 0)
            return WR_EIO;
    }
    /* Without a file the descriptor stays open but unused: closing it
     * under a writer in another thread could hand its number to a socket. */
    memcpy(outs.path, path, n + 1);
    if (o->syslog && !outs.syslog_open) {
        openlog("warrend", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        outs.syslog_open = true;
    }
    outs.file = o->file_level;
    outs.console = o->console_level;
    outs.syslog = o->syslog_level;
    outs.console_on = o->console;
    outs.syslog_on = o->syslog;
    if (valid_level(o->level))
        atomic_store(&def_level, (int)o->level);
    apply_levels();
    return 0;
}

int wr_log_reopen(char *why, size_t cap)
{
    int fd;
    if (!outs.path[0])
        return 0;
    if ((fd = open_file(outs.path, why, cap)) < 0)
        return WR_EIO;
    return install_file(fd, why, cap);
}

const char *wr_log_file(void)
{
    return outs.path;
}

int wr_log_level_parse(const char *name, enum wr_log_level *out)
{
    if (!name)
        return WR_ESYNTAX;
    for (int i = WR_LOG_ERROR; i <= WR_LOG_DEBUG; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum wr_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warn") == 0) {
        *out = WR_LOG_WARNING;
        return 0;
    }
    return WR_ESYNTAX;
}

const char *wr_log_level_name(enum wr_log_level level)
{
    if (level >= WR_LOG_ERROR && level <= WR_LOG_DEBUG)
        return level_names[level];
    return "unknown";
}

/* Append to buf[*len..cap), keeping *len <= cap - 1; returns false once full. */
static bool append_v(char *buf, size_t cap, size_t *len, const char *fmt, va_list ap)
    WR_PRINTF(4, 0);

static bool append_v(char *buf, size_t cap, size_t *len, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    if (n < 0)
        return false;
    if ((size_t)n >= cap - *len) {
        *len = cap - 1;
        return false;
    }
    *len += (size_t)n;
    return true;
}

static bool append(char *buf, size_t cap, size_t *len, const char *fmt, ...) WR_PRINTF(4, 5);

static bool append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = append_v(buf, cap, len, fmt, ap);
    va_end(ap);
    return ok;
}

/* One write(2) for the line; a short write (a full disk) gets the rest. */
static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report a failing output */
        p += w;
        len -= (size_t)w;
    }
}

void wr_logv(enum wr_log_level level, const char *ctx, const char *fmt, va_list ap)
{
    char line[WR_LOG_LINE_MAX];
    size_t len = 0;
    struct timespec ts;
    struct tm tm;
    int saved_errno = errno;

    if (!valid_level(level) || !wr_log_enabled(level))
        return;
    int lvl = (int)level;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    append(line, sizeof line - 1, &len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-7s ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (long)(ts.tv_nsec / 1000000), wr_log_level_name(level));
    size_t stamp = len; /* syslog gets the line from here on */
    bool whole = true;
    if (ctx && *ctx)
        whole = append(line, sizeof line - 1, &len, "[%s] ", ctx);
    if (whole)
        whole = append_v(line, sizeof line - 1, &len, fmt, ap);
    if (!whole) {
        /* Mark the cut so nobody mistakes it for the whole message. */
        memcpy(line + len - 3, "...", 3);
    }
    /* Messages must stay on one line: a peer-supplied name with a newline
     * in it would otherwise forge a log line. Names are escaped by their
     * callers (wr_log_esc); this catches whatever was not. */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch == '\n' || ch == '\r')
            line[i] = ' ';
        else if (ch < 0x20 || ch == 0x7f)
            line[i] = '?';
    }
    if (lvl <= atomic_load_explicit(&syslog_level, memory_order_relaxed)) {
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        line[len] = '\0';
        syslog(prio[lvl], "%s", line + stamp);
    }
    line[len++] = '\n'; /* room reserved by the "- 1" above */

    if (lvl <= atomic_load_explicit(&console_level, memory_order_relaxed))
        write_all(STDERR_FILENO, line, len);
    int fd = atomic_load_explicit(&file_fd, memory_order_relaxed);
    if (fd >= 0 && lvl <= atomic_load_explicit(&file_level, memory_order_relaxed))
        write_all(fd, line, len);
    errno = saved_errno;
}

void wr_log(enum wr_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wr_logv(level, NULL, fmt, ap);
    va_end(ap);
}

void wr_log_ctx(enum wr_log_level level, const char *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wr_logv(level, ctx, fmt, ap);
    va_end(ap);
}

const char *wr_log_esc(char *buf, size_t cap, const void *p, size_t len)
{
    static const char hexd[] = "0123456789abcdef";
    const uint8_t *b = p;
    size_t i = 0, o = 0, keep = 0;

    if (cap == 0)
        return buf;
    if (cap < 4) {
        buf[0] = '\0';
        return buf;
    }
    while (i < len) {
        char piece[8];
        size_t n = 0, take = 1, seq;
        uint8_t c = b[i];

        if (c == '\\') {
            piece[n++] = '\\';
            piece[n++] = '\\';
        } else if (c >= 0x20 && c < 0x7f) {
            piece[n++] = (char)c;
        } else if (c >= 0x80 && (seq = wr_utf8_seq(b + i, len - i, true)) != 0 &&
                   !(seq == 2 && c == 0xc2 && b[i + 1] < 0xa0)) {
            memcpy(piece, b + i, seq); /* well-formed, and not a C1 control */
            n = take = seq;
        } else {
            /* A control character, or a byte that starts no strict UTF-8
             * sequence: one byte at a time, so the next may resync. */
            piece[n++] = '\\';
            piece[n++] = 'x';
            piece[n++] = hexd[c >> 4];
            piece[n++] = hexd[c & 15];
        }
        if (o + n > cap - 1) {
            /* Cut after the last whole piece that leaves room for "...". */
            memcpy(buf + keep, "...", 3);
            o = keep + 3;
            break;
        }
        memcpy(buf + o, piece, n);
        o += n;
        i += take;
        if (o <= cap - 4)
            keep = o;
    }
    buf[o] = '\0';
    return buf;
}
