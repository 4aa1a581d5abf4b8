/*
 * utf8.c - the two UTF-8 rules of utf8.h: one sequence decoder with a
 * `strict` switch. ASCII, by far the common case in names, costs one
 * comparison per byte.
 */
#include "config.h"

#include "core/utf8.h"

size_t wr_utf8_seq(const uint8_t *p, size_t left, bool strict)
{
    uint32_t c;
    size_t n;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2, c = p[0] & 0x1fu;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3, c = p[0] & 0x0fu;
    else if (p[0] >= 0xf0 && p[0] <= 0xf7)
        n = 4, c = p[0] & 0x07u;
    else
        return 0; /* a continuation byte, C0/C1 (always overlong), F8..FF */
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3fu);
    }
    /* Shortest form only (C0/C1 leads were refused above). */
    if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000))
        return 0;
    if (strict && (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)))
        return 0;
    return n;
}

static bool check(const void *p, size_t len, bool strict)
{
    const uint8_t *b = p, *end;
    if (len == 0)
        return true; /* p may be NULL */
    end = b + len;
    while (b < end) {
        size_t n;
        if (*b < 0x80) {
            b++;
            continue;
        }
        if (!(n = wr_utf8_seq(b, (size_t)(end - b), strict)))
            return false;
        b += n;
    }
    return true;
}

bool wr_utf8_valid(const void *p, size_t len)
{
    return check(p, len, false);
}

bool wr_utf8_strict(const void *p, size_t len)
{
    return check(p, len, true);
}
