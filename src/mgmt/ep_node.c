/*
 * ep_node.c - management API: the node: overview, nodes, cluster-name, extensions, health checks, aliveness-test.
 */
#include "config.h"

#include "mgmt/api.h"

const struct wr_mgmt_route wr_mgmt_routes_node[] = {
    {NULL, 0, 0, NULL},
};
