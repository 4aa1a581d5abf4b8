/*
 * clock.c - the cached clocks behind clock.h.
 *
 * The cache is plain static storage: the event loop runs on one thread, and
 * a thread that wants fresh time (a future fsync worker, say) reads the
 * system clock itself rather than this cache.
 */
#include <time.h>

#include "core/clock.h"

static uint64_t mono_us;
static int64_t wall_s;
static int ready;

void wr_clock_update(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux; if it ever
     * did, keeping the previous value is safer than jumping to zero. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        mono_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
        wall_s = (int64_t)ts.tv_sec;
    ready = 1;
}

uint64_t wr_now_us(void)
{
    if (!ready)
        wr_clock_update();
    return mono_us;
}

uint64_t wr_now_ms(void)
{
    return wr_now_us() / 1000u;
}

int64_t wr_wall_s(void)
{
    if (!ready)
        wr_clock_update();
    return wall_s;
}

uint64_t wr_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
