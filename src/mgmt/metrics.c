/*
 * metrics.c - management API: Prometheus: /metrics and /metrics/per-object.
 */
#include "config.h"

#include "mgmt/api.h"

const struct wr_mgmt_route wr_mgmt_routes_metrics[] = {
    {NULL, 0, 0, NULL},
};
