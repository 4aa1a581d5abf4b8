/* wrong_name.c - a test plugin whose descriptor names another plugin
 * (a file renamed, or two builds mixed up). */
#include "warren/plugin.h"

static int init(warren_host *h, const struct warren_api *api)
{
    (void)h;
    (void)api;
    return 0;
}

WARREN_PLUGIN_EXPORT const struct warren_plugin warren_plugin = {
    .abi_major = WARREN_PLUGIN_ABI_MAJOR,
    .abi_minor = WARREN_PLUGIN_ABI_MINOR,
    .name = "consistent_hash",
    .version = "0",
    .init = init,
};
