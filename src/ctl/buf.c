/*
 * buf.c - the growing byte string of buf.h: doubling capacity, always kept
 * NUL-terminated so that a buffer's text can be handed to libc and jansson.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/buf.h"

void wr_ctl_oom(void)
{
    fputs("warrenctl: out of memory\n", stderr);
    exit(1);
}

void *wr_ctl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        wr_ctl_oom();
    return p;
}

char *wr_ctl_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(wr_ctl_xmalloc(n), s, n);
}

static void reserve(struct wr_ctl_buf *b, size_t more)
{
    if (more >= SIZE_MAX / 2 - b->len)
        wr_ctl_oom();
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        wr_ctl_oom();
    b->p = p;
    b->cap = cap;
}

void wr_ctl_buf_add(struct wr_ctl_buf *b, const void *data, size_t n)
{
    reserve(b, n);
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void wr_ctl_buf_adds(struct wr_ctl_buf *b, const char *s)
{
    wr_ctl_buf_add(b, s, strlen(s));
}

void wr_ctl_buf_addc(struct wr_ctl_buf *b, char c)
{
    wr_ctl_buf_add(b, &c, 1);
}

void wr_ctl_buf_printf(struct wr_ctl_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        wr_ctl_buf_add(b, tmp, (size_t)n);
        return;
    }
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *wr_ctl_buf_str(struct wr_ctl_buf *b)
{
    return b->p ? b->p : "";
}

char *wr_ctl_buf_take(struct wr_ctl_buf *b)
{
    char *p = b->p ? b->p : wr_ctl_xstrdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void wr_ctl_buf_free(struct wr_ctl_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
