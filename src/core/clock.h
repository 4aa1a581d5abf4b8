/*
 * clock.h - cached time for the event loop.
 *
 * Reading the clock on every frame is wasted work and makes one loop turn
 * see several "nows". Instead the loop calls wr_clock_update() once per turn
 * (before it dispatches callbacks) and everything else reads the cached
 * values: heartbeat deadlines, TTL expiry, handshake timeouts.
 *
 * Monotonic time (ms, us) is for measuring intervals and deadlines; wall time
 * (seconds since the Unix epoch) is only for what people read: log lines,
 * the AMQP `timestamp` a broker may stamp, management output.
 *
 * Reading before the first update triggers one, so callers never see 0.
 */
#ifndef WR_CORE_CLOCK_H
#define WR_CORE_CLOCK_H

#include <stdint.h>

/* Refresh the cached monotonic and wall clocks. Call once per loop turn. */
void wr_clock_update(void);

/* Cached monotonic time since an arbitrary origin. */
uint64_t wr_now_ms(void);
uint64_t wr_now_us(void);

/* Monotonic time read now (not the cache), in ns: for measuring work
 * within a turn, a few times per turn at most. */
uint64_t wr_clock_ns(void);

/* Cached wall-clock time, seconds since the Unix epoch. */
int64_t wr_wall_s(void);

#endif
