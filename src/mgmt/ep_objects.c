/*
 * ep_objects.c - management API: exchanges, queues, bindings, publish and get.
 */
#include "config.h"

#include "mgmt/api.h"

const struct wr_mgmt_route wr_mgmt_routes_objects[] = {
    {NULL, 0, 0, NULL},
};
