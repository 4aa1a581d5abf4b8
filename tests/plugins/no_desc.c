/* no_desc.c - a test plugin that exports no warren_plugin descriptor. */
#include "warren/plugin.h"

WARREN_PLUGIN_EXPORT int not_a_plugin(void);

int not_a_plugin(void)
{
    return 0;
}
