/*
 * buf.h - bounds-checked cursors over wire bytes (network byte order).
 *
 * A reader (struct wr_rd) walks a byte range and never reads past its end:
 * every getter checks `n > end - p` before touching memory and returns
 * WR_ESYNTAX when the input is short (a truncated method is a syntax error;
 * truncated *frames* are caught earlier by the frame parser as 501).
 * Strings come back as (pointer, length) slices into the input: nothing is
 * copied, so a slice lives as long as the bytes it points into.
 *
 * A writer (struct wr_wb) fills a caller-provided byte range; running out of
 * room sets `err` and makes further puts no-ops, so an encoder can write a
 * whole method and check once at the end.
 *
 * Everything here is inline: these are the innermost loops of the codec.
 */
#ifndef WR_WIRE_BUF_H
#define WR_WIRE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"

/* A slice of bytes owned by someone else. `ptr` may be NULL when len == 0. */
struct wr_str {
    const char *ptr;
    uint32_t len;
};

#define WR_STR(lit) ((struct wr_str){(lit), (uint32_t)(sizeof(lit) - 1)})
#define WR_STR_NULL ((struct wr_str){NULL, 0})

static inline struct wr_str wr_str_c(const char *s)
{
    return (struct wr_str){s, s ? (uint32_t)strlen(s) : 0};
}

static inline bool wr_str_eq(struct wr_str a, struct wr_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool wr_str_eqc(struct wr_str a, const char *c)
{
    return wr_str_eq(a, wr_str_c(c));
}

/* ---- big-endian loads and stores on raw pointers ---- */

static inline uint16_t wr_load16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t wr_load32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t wr_load64(const uint8_t *p)
{
    return (uint64_t)wr_load32(p) << 32 | wr_load32(p + 4);
}

static inline void wr_store16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void wr_store32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void wr_store64(uint8_t *p, uint64_t v)
{
    wr_store32(p, (uint32_t)(v >> 32));
    wr_store32(p + 4, (uint32_t)v);
}

/* ---- reader ---- */

struct wr_rd {
    const uint8_t *p;
    const uint8_t *end;
};

static inline struct wr_rd wr_rd_init(const void *p, size_t len)
{
    const uint8_t *b = p;
    return (struct wr_rd){b, b + len};
}

static inline size_t wr_rd_left(const struct wr_rd *r)
{
    return (size_t)(r->end - r->p);
}

static inline int wr_rd_u8(struct wr_rd *r, uint8_t *v)
{
    if (r->end - r->p < 1)
        return WR_ESYNTAX;
    *v = *r->p++;
    return 0;
}

static inline int wr_rd_u16(struct wr_rd *r, uint16_t *v)
{
    if (r->end - r->p < 2)
        return WR_ESYNTAX;
    *v = wr_load16(r->p);
    r->p += 2;
    return 0;
}

static inline int wr_rd_u32(struct wr_rd *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return WR_ESYNTAX;
    *v = wr_load32(r->p);
    r->p += 4;
    return 0;
}

static inline int wr_rd_u64(struct wr_rd *r, uint64_t *v)
{
    if (r->end - r->p < 8)
        return WR_ESYNTAX;
    *v = wr_load64(r->p);
    r->p += 8;
    return 0;
}

static inline int wr_rd_bytes(struct wr_rd *r, size_t n, const uint8_t **out)
{
    if (n > (size_t)(r->end - r->p))
        return WR_ESYNTAX;
    *out = r->p;
    r->p += n;
    return 0;
}

static inline int wr_rd_shortstr(struct wr_rd *r, struct wr_str *s)
{
    uint8_t n;
    const uint8_t *b;
    if (wr_rd_u8(r, &n) < 0 || wr_rd_bytes(r, n, &b) < 0)
        return WR_ESYNTAX;
    s->ptr = (const char *)b;
    s->len = n;
    return 0;
}

static inline int wr_rd_longstr(struct wr_rd *r, struct wr_str *s)
{
    uint32_t n;
    const uint8_t *b;
    if (wr_rd_u32(r, &n) < 0 || wr_rd_bytes(r, n, &b) < 0)
        return WR_ESYNTAX;
    s->ptr = (const char *)b;
    s->len = n;
    return 0;
}

/* ---- writer ---- */

struct wr_wb {
    uint8_t *p;
    uint8_t *end;
    int err; /* WR_ENOSPC once a put did not fit */
};

static inline struct wr_wb wr_wb_init(void *p, size_t cap)
{
    uint8_t *b = p;
    return (struct wr_wb){b, b + cap, 0};
}

static inline bool wr_wb_room(struct wr_wb *w, size_t n)
{
    if (w->err)
        return false;
    if (n > (size_t)(w->end - w->p)) {
        w->err = WR_ENOSPC;
        return false;
    }
    return true;
}

static inline void wr_wb_u8(struct wr_wb *w, uint8_t v)
{
    if (wr_wb_room(w, 1))
        *w->p++ = v;
}

static inline void wr_wb_u16(struct wr_wb *w, uint16_t v)
{
    if (wr_wb_room(w, 2)) {
        wr_store16(w->p, v);
        w->p += 2;
    }
}

static inline void wr_wb_u32(struct wr_wb *w, uint32_t v)
{
    if (wr_wb_room(w, 4)) {
        wr_store32(w->p, v);
        w->p += 4;
    }
}

static inline void wr_wb_u64(struct wr_wb *w, uint64_t v)
{
    if (wr_wb_room(w, 8)) {
        wr_store64(w->p, v);
        w->p += 8;
    }
}

static inline void wr_wb_bytes(struct wr_wb *w, const void *b, size_t n)
{
    if (n && wr_wb_room(w, n)) {
        memcpy(w->p, b, n);
        w->p += n;
    }
}

/* A shortstr longer than 255 bytes cannot be encoded: that is a caller bug
 * or a peer's value that should have been refused earlier, so it fails the
 * write rather than truncating silently. */
static inline void wr_wb_shortstr(struct wr_wb *w, struct wr_str s)
{
    if (s.len > 255) {
        w->err = WR_ESYNTAX;
        return;
    }
    wr_wb_u8(w, (uint8_t)s.len);
    wr_wb_bytes(w, s.ptr, s.len);
}

static inline void wr_wb_longstr(struct wr_wb *w, struct wr_str s)
{
    wr_wb_u32(w, s.len);
    wr_wb_bytes(w, s.ptr, s.len);
}

#endif
