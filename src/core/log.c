/*
 * log.c - formatting and writing of log lines (see log.h).
 *
 * The line is built in a stack buffer and handed to write(2) in one call:
 * stdio buffering would hold lines back or split them when stderr is a pipe
 * to systemd's journal. Timestamps are read fresh (not from clock.c's cache)
 * because a log line should say when it was written, and are UTC with
 * milliseconds so lines from several hosts sort together.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/utf8.h"

static enum wr_log_level cur_level = WR_LOG_INFO;

static const char *const level_names[] = {
    [WR_LOG_ERROR] = "error",
    [WR_LOG_WARNING] = "warning",
    [WR_LOG_INFO] = "info",
    [WR_LOG_DEBUG] = "debug",
};

void wr_log_set_level(enum wr_log_level level)
{
    if (level >= WR_LOG_ERROR && level <= WR_LOG_DEBUG)
        cur_level = level;
}

enum wr_log_level wr_log_get_level(void)
{
    return cur_level;
}

bool wr_log_enabled(enum wr_log_level level)
{
    return level <= cur_level;
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

void wr_logv(enum wr_log_level level, const char *ctx, const char *fmt, va_list ap)
{
    char line[WR_LOG_LINE_MAX];
    size_t len = 0;
    struct timespec ts;
    struct tm tm;
    int saved_errno = errno;

    if (!wr_log_enabled(level))
        return;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    append(line, sizeof line - 1, &len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-7s ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (long)(ts.tv_nsec / 1000000), wr_log_level_name(level));
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
    line[len++] = '\n'; /* room reserved by the "- 1" above */

    const char *p = line;
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere left to report a failing stderr */
        p += w;
        len -= (size_t)w;
    }
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
