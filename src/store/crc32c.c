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

__attribute__((target("sse4.2"))) static uint32_t hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
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
#ifdef HAVE_HW
    __builtin_cpu_init();
    use_hw = __builtin_cpu_supports("sse4.2") && !getenv("WARREN_CRC32C_SOFTWARE");
#endif
    ready = 1;
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
