/*
 * crc32c.c - CRC-32C, slicing by 8 (tables built on first use); see
 * crc32c.h. About 1-2 GB/s in software, far above the journal's rate; with
 * the SSE 4.2 instruction where the CPU has it (checked once), about ten
 * times that, which reading a stream back with checksums needs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "store/crc32c.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
#define HAVE_HW 1

/* Three chains at once (the instruction's latency is three times its
 * issue rate): blocks of BLK bytes are summed separately and joined by
 * shifting the first two over the bytes after them. A shift by n zero
 * bytes is linear in the state: sh[k][v] is the shift of v << 8k. */
#define BLK 128
static uint32_t sh1[4][256], sh2[4][256]; /* by BLK and 2 * BLK bytes */

static uint32_t shift(uint32_t (*t)[256], uint32_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
    while (len >= 3 * BLK) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < BLK; i += 8) {
            uint64_t x, y, z;
            memcpy(&x, p + i, 8);
            memcpy(&y, p + BLK + i, 8);
            memcpy(&z, p + 2 * BLK + i, 8);
            a = _mm_crc32_u64(a, x);
            b = _mm_crc32_u64(b, y);
            d = _mm_crc32_u64(d, z);
        }
        c = shift(sh2, (uint32_t)a) ^ shift(sh1, (uint32_t)b) ^ (uint32_t)d;
        p += 3 * BLK;
        len -= 3 * BLK;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len--)
        crc = _mm_crc32_u8(crc, *p++);
    return crc;
}
#endif

static uint32_t tab[8][256];
static int ready;
static int use_hw;

static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            tab[t][i] = (tab[t - 1][i] >> 8) ^ tab[0][tab[t - 1][i] & 0xff];
    ready = 1;
#ifdef HAVE_HW
    {
        static const uint8_t zeros[2 * BLK];
        /* (the raw state update: the tables' function without its
         * inversions) */
        for (int k = 0; k < 4; k++)
            for (uint32_t v = 0; v < 256; v++) {
                sh1[k][v] = ~wr_crc32c_sw(~(v << (8 * k)), zeros, BLK);
                sh2[k][v] = ~wr_crc32c_sw(~(v << (8 * k)), zeros, 2 * BLK);
            }
    }
    __builtin_cpu_init();
    use_hw = __builtin_cpu_supports("sse4.2") && !getenv("WARREN_CRC32C_SOFTWARE");
#endif
}

uint32_t wr_crc32c(uint32_t crc, const void *data, size_t len)
{
    if (!ready)
        init();
#ifdef HAVE_HW
    if (use_hw)
        return ~hw(~crc, data, len);
#endif
    return wr_crc32c_sw(crc, data, len);
}

uint32_t wr_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!ready)
        init();
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = tab[7][lo & 0xff] ^ tab[6][(lo >> 8) & 0xff] ^ tab[5][(lo >> 16) & 0xff] ^
              tab[4][lo >> 24] ^ tab[3][hi & 0xff] ^ tab[2][(hi >> 8) & 0xff] ^
              tab[1][(hi >> 16) & 0xff] ^ tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ tab[0][(crc ^ *p++) & 0xff];
    return ~crc;
}
