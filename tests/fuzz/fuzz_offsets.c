/*
 * fuzz_offsets.c - libFuzzer target for stream-offsets.log's records
 * (store/offsets.h), as recovery reads them.
 *
 * Besides "does not crash", it checks the scan's promises: the good prefix
 * is no longer than the input, scanning that prefix alone gives the same
 * records, every name is at most 255 bytes and inside the input, and a
 * record re-encoded from what the callback saw scans back the same.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store/crc32c.h"
#include "store/offsets.h"
#include "wire/buf.h"

struct seen {
    const uint8_t *lo, *hi;
    size_t n;
    uint64_t sum;
};

static void on_rec(void *arg, uint64_t qid, uint64_t next, const char *name, uint8_t len)
{
    struct seen *s = arg;
    const uint8_t *p = (const uint8_t *)name;
    if (p < s->lo || p + len > s->hi)
        abort();
    s->n++;
    s->sum += qid ^ next ^ len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen a = {data, data + size, 0, 0}, b = {data, data + size, 0, 0};
    size_t good = wr_offsets_scan(data, size, on_rec, &a), good2;
    if (good > size)
        abort();
    good2 = wr_offsets_scan(data, good, on_rec, &b);
    if (good2 != good || a.n != b.n || a.sum != b.sum)
        abort();
    /* One record built here scans back as itself. */
    if (size >= 17) {
        uint8_t rec[21 + 255];
        uint8_t len = (uint8_t)(data[0] % 32);
        struct seen c = {rec, rec + sizeof(rec), 0, 0};
        if ((size_t)len > size - 17)
            len = (uint8_t)(size - 17);
        rec[4] = len;
        memcpy(rec + 5, data + 1, 16);
        memcpy(rec + 21, data + 17, len);
        wr_store32(rec, wr_crc32c(0, rec + 4, 17 + (size_t)len));
        if (wr_offsets_scan(rec, 21 + (size_t)len, on_rec, &c) != 21 + (size_t)len || c.n != 1 ||
            c.sum != (wr_load64(rec + 5) ^ wr_load64(rec + 13) ^ len))
            abort();
    }
    return 0;
}
