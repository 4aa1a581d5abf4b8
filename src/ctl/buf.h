/*
 * buf.h - a growing byte string for warrenctl: request paths, bodies, the
 * response, table cells. Out of memory ends the program (exit 1): a
 * command-line tool has nothing better to do, and every caller is spared
 * a failure path.
 */
#ifndef WR_CTL_BUF_H
#define WR_CTL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct wr_ctl_buf {
    char *p; /* NUL-terminated once anything was added; NULL before */
    size_t len, cap;
};

void wr_ctl_buf_add(struct wr_ctl_buf *b, const void *data, size_t n);
void wr_ctl_buf_adds(struct wr_ctl_buf *b, const char *s);
void wr_ctl_buf_addc(struct wr_ctl_buf *b, char c);
void wr_ctl_buf_printf(struct wr_ctl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The string, "" when empty; stays owned by the buffer. */
const char *wr_ctl_buf_str(struct wr_ctl_buf *b);
/* Hands the string (NUL-terminated, never NULL) to the caller, who frees it. */
char *wr_ctl_buf_take(struct wr_ctl_buf *b);
void wr_ctl_buf_free(struct wr_ctl_buf *b);

/* Allocation that exits on failure. */
void *wr_ctl_xmalloc(size_t n);
char *wr_ctl_xstrdup(const char *s);
void wr_ctl_oom(void) __attribute__((noreturn));

#endif
