/*
 * errbuf.c - see errbuf.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/errbuf.h"
#include "wire/methods.gen.h"

int wr_fail(struct wr_errbuf *e, int code, const char *fmt, ...)
{
    va_list ap;
    const char *name = wr_reply_code_name((uint16_t)wr_err_reply_code(code));
    int n;

    if (!e)
        return code;
    e->code = code;
    n = snprintf(e->text, sizeof(e->text), "%s - ", name ? name : "INTERNAL_ERROR");
    if (n < 0 || (size_t)n >= sizeof(e->text))
        return code;
    va_start(ap, fmt);
    vsnprintf(e->text + n, sizeof(e->text) - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}
