/* bad_abi.c - a test plugin built for another major version of the plugin
 * interface: the broker must refuse it without calling it. */
#include <stdlib.h>

#include "warren/plugin.h"

static int never(warren_host *h, const struct warren_api *api)
{
    (void)h;
    (void)api;
    abort(); /* must not be called */
}

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .abi_major = WARREN_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .name = "bad_abi",
    .version = "0",
    .init = never,
};
