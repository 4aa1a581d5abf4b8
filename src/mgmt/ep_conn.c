/*
 * ep_conn.c - management API: connections, channels and consumers.
 */
#include "config.h"

#include "mgmt/api.h"

const struct wr_mgmt_route wr_mgmt_routes_conn[] = {
    {NULL, 0, 0, NULL},
};
