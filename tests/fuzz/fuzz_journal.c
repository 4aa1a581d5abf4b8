/*
 * fuzz_journal.c - libFuzzer target for journal recovery (wr_journal_scan):
 * the bytes of a segment file as a crash, a bad disk or a hostile hand left
 * them. Every record handed to the callback must lie inside the input, the
 * valid part never ends past the input, and a record-aligned prefix of a
 * valid scan must rescan to the same records.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fuzz.h"
#include "store/journal.h"

struct ctx {
    const uint8_t *lo, *hi;
    uint32_t n;
};

static void on_record(void *arg, uint32_t seg, uint32_t off, uint8_t type, const uint8_t *p,
                      uint32_t len)
{
    struct ctx *c = arg;
    (void)seg;
    if (p - c->lo != (ptrdiff_t)off)
        abort();
    (void)type;
    if (p < c->lo || len > (size_t)(c->hi - p))
        abort();
    c->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wr_replay_stats st;
    struct ctx c = {data, data + size, 0}, c2;
    size_t end;

    wr_log_set_level(WR_LOG_ERROR); /* corrupt input is expected: no warnings */
    memset(&st, 0, sizeof(st));
    end = wr_journal_scan(data, size, 1, on_record, &c, &st, "fuzz");
    if (end > size || st.records != c.n)
        abort();
    /* The valid prefix rescans without a torn tail. */
    c2 = (struct ctx){data, data + end, 0};
    memset(&st, 0, sizeof(st));
    if (wr_journal_scan(data, end, 1, on_record, &c2, &st, "fuzz") != end)
        abort();
    return 0;
}
