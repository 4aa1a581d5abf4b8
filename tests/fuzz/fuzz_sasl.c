/*
 * fuzz_sasl.c - libFuzzer target for SASL response parsing (PLAIN and
 * AMQPLAIN), the first thing an unauthenticated peer can make the broker
 * parse. The first byte picks the mechanism; slices returned must lie
 * inside the input, and a PLAIN user or password never holds a NUL (the
 * response is exactly NUL user NUL password, as RabbitMQ takes it).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wr_str resp, u, p;
    const char *lo, *hi;
    if (size < 1)
        return 0;
    resp = (struct wr_str){(const char *)data + 1, (uint32_t)(size - 1)};
    lo = resp.ptr;
    hi = resp.ptr + resp.len;
    if (wr_sasl_parse(data[0] & 1 ? WR_STR("AMQPLAIN") : WR_STR("PLAIN"), resp, &u, &p) == 0) {
        if (u.len && (u.ptr < lo || u.len > (size_t)(hi - u.ptr)))
            abort();
        if (p.len && (p.ptr < lo || p.len > (size_t)(hi - p.ptr)))
            abort();
        if (!(data[0] & 1) && ((u.len && memchr(u.ptr, 0, u.len)) ||
                               (p.len && memchr(p.ptr, 0, p.len))))
            abort();
    }
    return 0;
}
