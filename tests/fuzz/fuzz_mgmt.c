/*
 * fuzz_mgmt.c - libFuzzer target for what the management API parses from
 * a request before any handler runs, and for its JSON bodies' conversion
 * to AMQP field tables (queue and binding arguments, message headers).
 *
 * Byte 0 picks the mode. Even: the rest is a path; it is split and
 * matched against every route of every endpoint table, and a match must
 * hand out arguments that lie inside the decoded segments. Odd: the rest
 * is a JSON document; an object is converted to a field table, which must
 * validate, and converted back to JSON without failing (but when memory
 * runs out).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "mgmt/api.h"
#include "mgmt/path.h"
#include "store/jsonfield.h"
#include "wire/field.h"

static void fuzz_path(const uint8_t *data, size_t size)
{
    static const struct wr_mgmt_route *const tables[] = {
        wr_mgmt_routes_access, wr_mgmt_routes_objects, wr_mgmt_routes_node,
        wr_mgmt_routes_conn,   wr_mgmt_routes_metrics,
    };
    struct wr_mgmt_path p;
    struct wr_mgmt_req rq;
    char *raw = malloc(size + 1);

    if (!raw)
        return;
    memcpy(raw, data, size);
    raw[size] = '\0'; /* evhttp hands the path over as a C string */
    if (wr_mgmt_path_split(raw, &p) == 0) {
        for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
            for (const struct wr_mgmt_route *rt = tables[t]; rt->pattern; rt++) {
                memset(&rq, 0, sizeof(rq));
                if (!wr_mgmt_route_match(rt->pattern, &p, &rq))
                    continue;
                if (rq.nargs > WR_MGMT_MAX_ARGS || wr_mgmt_route_literals(rt->pattern) < 0)
                    abort();
                for (unsigned i = 0; i < rq.nargs; i++) {
                    bool inside = false;
                    for (unsigned k = 0; k < p.n; k++)
                        inside |= rq.arg[i].ptr == p.seg[k] && rq.arg[i].len == p.len[k];
                    if (!inside)
                        abort();
                }
            }
        }
        wr_mgmt_path_free(&p);
    }
    free(raw);
}

static void fuzz_json(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    struct wr_jbytes b = {0};

    if (!doc)
        return;
    if (json_is_object(doc) && !wr_json_to_table(&b, doc) && !b.oom) {
        if (wr_table_validate(b.p, b.len) < 0)
            abort();
        json_t *back = wr_json_from_table((struct wr_str){(const char *)b.p, (uint32_t)b.len});
        if (!back)
            abort(); /* out of memory is not expected at these sizes */
        json_decref(back);
    }
    free(b.p);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    if (data[0] & 1)
        fuzz_json(data + 1, size - 1);
    else
        fuzz_path(data + 1, size - 1);
    return 0;
}
