/*
 * ep_access.c - management API: who is asking (whoami), vhosts, users,
 * permissions and topic permissions, and definitions export and import.
 */
#include "config.h"

#include <string.h>

#include "auth/auth.h"
#include "mgmt/api.h"

/* The tags of a user as a JSON array (stored as a comma list). */
static json_t *tags_json(const struct wr_user *u)
{
    struct wr_str t = wr_user_tags(u);
    json_t *a = json_array();
    uint32_t i = 0;
    while (a && i < t.len) {
        uint32_t j = i;
        while (j < t.len && t.ptr[j] != ',')
            j++;
        if (j > i)
            json_array_append_new(a, wr_json_str((struct wr_str){t.ptr + i, j - i}));
        i = j + 1;
    }
    return a;
}

static void whoami(struct wr_mgmt_req *rq)
{
    json_t *o = json_object();
    if (o) {
        wr_json_set(o, "name", wr_json_str(wr_user_name(rq->user)));
        wr_json_set(o, "tags", tags_json(rq->user));
    }
    wr_mgmt_reply_json(rq, o);
}

const struct wr_mgmt_route wr_mgmt_routes_access[] = {
    {"/api/whoami", WR_M_GET, WR_LV_MANAGEMENT, whoami},
    {NULL, 0, 0, NULL},
};
