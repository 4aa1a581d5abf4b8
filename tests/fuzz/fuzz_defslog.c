/*
 * fuzz_defslog.c - libFuzzer target for the definitions log
 * (definitions.log, folded into the snapshot at recovery).
 *
 * The input is the log's text, folded into a small fixed snapshot. Besides
 * "does not crash or leak", it checks the fold's promises: the intact
 * prefix it reports is no longer than the input and ends at a line's end,
 * folding that prefix alone gives the same document, and a refusal says
 * why.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "fuzz.h"
#include "store/defslog.h"

static const char snapshot[] =
    "{\"warren_defs_seq\": 2, \"vhosts\": [{\"name\": \"/\", \"warren_last_queue_id\": 5}],"
    " \"queues\": [{\"name\": \"a\", \"vhost\": \"/\", \"warren_id\": 3}],"
    " \"exchanges\": [{\"name\": \"x\", \"vhost\": \"/\", \"type\": \"direct\"}],"
    " \"bindings\": [{\"source\": \"x\", \"vhost\": \"/\", \"destination\": \"a\","
    " \"destination_type\": \"queue\", \"routing_key\": \"k\", \"arguments_raw\": \"\"}]}";

static char *fold(const char *text, size_t len, int *rc, size_t *good)
{
    json_t *r = json_loads(snapshot, 0, NULL);
    struct wr_defs_err err;
    uint64_t seq;
    size_t lines;
    char *out;
    if (!r)
        abort();
    *rc = wr_defslog_fold(r, text, len, &seq, good, &lines, &err);
    if (*rc < 0 && !err.msg[0])
        abort();
    out = json_dumps(r, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(r);
    if (!out)
        abort();
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t good, good2;
    int rc, rc2;
    char *a = fold((const char *)data, size, &rc, &good), *b;

    if (rc == 0) {
        if (good > size || (good > 0 && data[good - 1] != '\n'))
            abort();
        b = fold((const char *)data, good, &rc2, &good2);
        if (rc2 != 0 || good2 != good || strcmp(a, b) != 0)
            abort();
        free(b);
    }
    free(a);
    return 0;
}
