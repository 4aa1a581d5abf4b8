/* bad_init.c - a test plugin whose init registers an exchange type, arms a
 * timer, then fails: the broker must undo both and start without it. */
#include <stdlib.h>

#include "warren/plugin.h"

static void route(warren_exchange *x, warren_route *r)
{
    (void)x;
    (void)r;
}

static void tick(void *arg)
{
    (void)arg;
    abort(); /* the timer must be gone with the plugin */
}

static const struct warren_exchange_type type = {
    .size = sizeof(struct warren_exchange_type),
    .name = "x-bad-init",
    .route = route,
};

static int init(warren_host *h, const struct warren_api *api)
{
    warren_timer *t;
    if (api->register_exchange_type(h, &type) != 0)
        return -1;
    if ((t = api->timer_new(h, tick, NULL)) != NULL)
        api->timer_arm(t, 10);
    api->log(h, WARREN_LOG_ERROR, "failing on purpose");
    return -1;
}

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .name = "bad_init",
    .version = "0",
    .init = init,
};
