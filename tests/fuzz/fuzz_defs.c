/*
 * fuzz_defs.c - libFuzzer target for definitions files (load_definitions
 * and the data directory's definitions.json): parse, check, import into an
 * empty broker, export.
 *
 * Besides "does not crash or leak", it checks the importer's promises: a
 * refused import leaves the broker exactly as it was (its export does not
 * change) and says why; an accepted one exports a document that recovers
 * into another empty broker and exports again to the same bytes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "conf/conf.h"
#include "core/log.h"
#include "store/defs.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct wr_conf conf;
    static int init;
    struct wr_defs_err err;
    struct wr_defs *d, *d2;
    struct wr_broker *b, *b2;
    char *before, *after, *again;
    int rc;

    if (!init) {
        wr_conf_init(&conf);
        wr_log_set_level(WR_LOG_ERROR); /* skipped entries are logged as warnings */
        init = 1;
    }
    err.msg[0] = '\0';
    d = wr_defs_parse((const char *)data, size, "fuzz.json", &err);
    if (!d) {
        if (!err.msg[0])
            abort();
        return 0;
    }
    b = wr_broker_new(NULL, &conf);
    if (!b)
        abort();
    before = wr_defs_export(b);
    rc = wr_defs_import(b, d, WR_DEFS_IMPORT, &err);
    after = wr_defs_export(b);
    if (!before || !after)
        abort();
    if (rc < 0) {
        if (!err.msg[0] || (rc == WR_ESYNTAX && strcmp(before, after) != 0))
            abort();
    } else {
        d2 = wr_defs_parse(after, strlen(after), "export", &err);
        b2 = wr_broker_new(NULL, &conf);
        if (!d2 || !b2 || wr_defs_import(b2, d2, WR_DEFS_RECOVER, &err) < 0)
            abort();
        again = wr_defs_export(b2);
        if (!again || strcmp(after, again) != 0)
            abort();
        free(again);
        wr_defs_free(d2);
        wr_broker_free(b2);
    }
    free(before);
    free(after);
    wr_broker_free(b);
    wr_defs_free(d);
    return 0;
}
