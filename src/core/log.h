/*
 * log.h - leveled, timestamped log lines on stderr.
 *
 * One line per call, written with a single write so lines from different
 * sources never interleave mid-line. A line carries its context: the
 * wr_log_ctx variant takes a prefix such as a connection name
 * ("127.0.0.1:50432 -> 127.0.0.1:5672") so a reader can follow one client
 * through the log, in the spirit of nginx's "while reading client request".
 *
 * The level is global: set once from the configuration or the command line.
 * Messages above it cost one comparison. Logging preserves errno.
 */
#ifndef WR_CORE_LOG_H
#define WR_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum wr_log_level {
    WR_LOG_ERROR = 0,
    WR_LOG_WARNING = 1,
    WR_LOG_INFO = 2,
    WR_LOG_DEBUG = 3,
};

#if defined(__GNUC__) || defined(__clang__)
#define WR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define WR_PRINTF(fmt, args)
#endif

/* Longest line written, including the timestamp; longer messages are cut
 * and end in "...". */
#define WR_LOG_LINE_MAX 2048

void wr_log_set_level(enum wr_log_level level);
enum wr_log_level wr_log_get_level(void);
bool wr_log_enabled(enum wr_log_level level);

/* "error", "warning", "info", "debug"; parse also accepts "warn".
 * Returns 0, or WR_ESYNTAX for an unknown name. */
int wr_log_level_parse(const char *name, enum wr_log_level *out);
const char *wr_log_level_name(enum wr_log_level level);

void wr_log(enum wr_log_level level, const char *fmt, ...) WR_PRINTF(2, 3);

/* Like wr_log with a context prefix; ctx may be NULL. */
void wr_log_ctx(enum wr_log_level level, const char *ctx, const char *fmt, ...) WR_PRINTF(3, 4);

void wr_logv(enum wr_log_level level, const char *ctx, const char *fmt, va_list ap) WR_PRINTF(3, 0);

#endif
