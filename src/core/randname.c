/* randname.c - random names for server-named things: a xorshift64 stream,
 * seeded once from the clock and an address, reseeded with the clock on
 * every draw so that two brokers started together still differ. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "core/clock.h"
#include "core/randname.h"

void wr_random_name(char *buf, size_t len, const char *prefix, size_t nrand)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    static uint64_t s;
    size_t i, plen = strlen(prefix), end;

    if (len == 0)
        return;
    if (!s)
        s = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&s;
    s ^= (uint64_t)wr_now_us();
    if (!s)
        s = 0x2545F4914F6CDD1Dull;
    i = plen < len - 1 ? plen : len - 1;
    memcpy(buf, prefix, i);
    end = plen + nrand < len - 1 ? plen + nrand : len - 1;
    for (; i < end; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        buf[i] = b64[s & 63];
    }
    buf[i] = '\0';
}
