/*
 * log.h - leveled, timestamped log lines on standard error, a log file
 * and syslog.
 *
 * One line per call, written with a single write to each output so lines
 * from different sources never interleave mid-line. A line carries its context: the
 * wr_log_ctx variant takes a prefix such as a connection name
 * ("127.0.0.1:50432 -> 127.0.0.1:5672") so a reader can follow one client
 * through the log, in the spirit of nginx's "while reading client request".
 *
 * The outputs are rabbitmq.conf's (log.file, log.console, log.syslog), each
 * with its own level that defaults to log.level. Until wr_log_configure
 * runs, lines go to standard error at level info. Messages above every
 * output's level cost one comparison. Logging preserves errno, and may be
 * called from any thread (the journal's writer logs its failures); the
 * outputs are changed only from the loop's thread.
 *
 * Anything a client chose goes through wr_log_esc (names with control
 * characters, NUL bytes or invalid UTF-8 come out as \xNN); a control
 * character that reaches a line any other way is replaced as a last resort.
 */
#ifndef WR_CORE_LOG_H
#define WR_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum wr_log_level {
    WR_LOG_UNSET = -1, /* an output's level not set: the default level applies */
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

/* Set the default level (and so every output's that is not set). */
void wr_log_set_level(enum wr_log_level level);
enum wr_log_level wr_log_get_level(void);
/* Whether some output takes lines of this level. */
bool wr_log_enabled(enum wr_log_level level);

/* Where lines go, as the log.* settings say. */
struct wr_log_outputs {
    enum wr_log_level level;         /* log.level: the default of the three below */
    const char *file;                /* log.file's path; NULL or "" for none */
    enum wr_log_level file_level;    /* WR_LOG_UNSET: level */
    bool console;                    /* standard error */
    enum wr_log_level console_level; /* WR_LOG_UNSET: level */
    bool syslog;                     /* syslog(3): ident warrend, facility daemon */
    enum wr_log_level syslog_level;  /* WR_LOG_UNSET: level */
};

/* Switch to these outputs (at start, and on SIGHUP with the new settings).
 * A file is opened for appending (created 0640 if missing); when another
 * file was open, the new one takes its descriptor. Returns 0, or WR_EIO
 * when the file cannot be opened: then nothing changed and `why` (cap
 * bytes) says why. */
int wr_log_configure(const struct wr_log_outputs *o, char *why, size_t cap);

/* Open the log file again by its name (SIGHUP, after logrotate renamed
 * it), in place of the open one. Returns 0 (also when there is no file),
 * or WR_EIO with `why`: the old file stays in use. */
int wr_log_reopen(char *why, size_t cap);

/* The log file's path ("" when none). */
const char *wr_log_file(void);

/* "error", "warning", "info", "debug"; parse also accepts "warn".
 * Returns 0, or WR_ESYNTAX for an unknown name. */
int wr_log_level_parse(const char *name, enum wr_log_level *out);
const char *wr_log_level_name(enum wr_log_level level);

void wr_log(enum wr_log_level level, const char *fmt, ...) WR_PRINTF(2, 3);

/* Like wr_log with a context prefix; ctx may be NULL. */
void wr_log_ctx(enum wr_log_level level, const char *ctx, const char *fmt, ...) WR_PRINTF(3, 4);

void wr_logv(enum wr_log_level level, const char *ctx, const char *fmt, va_list ap) WR_PRINTF(3, 0);

/* Bytes a peer chose (a queue name, a consumer tag, a reply text) written
 * for a log line, so that they can neither forge a line nor play tricks on
 * a terminal: printable ASCII and well-formed UTF-8 stay as they are, a
 * backslash is doubled, and control characters (C0, DEL, C1) and bytes that
 * are not strict UTF-8 become \xNN. NUL bytes too: `len` says where the
 * name ends. The result is NUL-terminated and ends in "..." when `cap` is
 * too small. Returns buf, so that the call can be a printf argument. */
const char *wr_log_esc(char *buf, size_t cap, const void *p, size_t len);

/* Room for any shortstr (255 bytes, 4 characters each at worst), "..." and
 * the NUL. */
#define WR_LOG_ESC_MAX (4 * 255 + 4)

/* The usual call: a struct wr_str `s` into a char array `arr`:
 *     char qn[WR_LOG_ESC_MAX];
 *     wr_log(WR_LOG_INFO, "queue '%s' ...", WR_LOG_ESC(qn, q->node.key)); */
#define WR_LOG_ESC(arr, s) wr_log_esc((arr), sizeof(arr), (s).ptr, (s).len)

#endif
