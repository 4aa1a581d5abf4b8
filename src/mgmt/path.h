/*
 * path.h - a management request's path: split into percent-decoded
 * segments, and matched against the route patterns of api.h ("/api/queues/:/:").
 * Separate from http.c so that the fuzz target can reach it.
 */
#ifndef WR_MGMT_PATH_H
#define WR_MGMT_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "mgmt/api.h"

#define WR_MGMT_PATH_MAX_SEGMENTS 16

struct wr_mgmt_path {
    char *seg[WR_MGMT_PATH_MAX_SEGMENTS]; /* decoded, NUL-terminated (may hold NULs) */
    size_t len[WR_MGMT_PATH_MAX_SEGMENTS];
    unsigned n;
    bool too_deep; /* more segments than any route has: matches nothing */
};

/* Split "/a/b%2Fc/d" into decoded segments; a trailing '/' adds nothing.
 * -1 for a path that does not start with '/', a bad escape, or no memory
 * (nothing to free then); else 0, and wr_mgmt_path_free must follow. */
int wr_mgmt_path_split(const char *raw, struct wr_mgmt_path *p);
void wr_mgmt_path_free(struct wr_mgmt_path *p);

/* Does the pattern match? When it does and rq is given, rq->arg[] and
 * rq->nargs point into p's segments. */
bool wr_mgmt_route_match(const char *pattern, const struct wr_mgmt_path *p, struct wr_mgmt_req *rq);

/* Segments of a pattern that are not ":" (the more, the more specific). */
int wr_mgmt_route_literals(const char *pattern);

#endif
