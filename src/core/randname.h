/* randname.h - random names for server-named things (queues, consumer
 * tags, direct reply-to queues). */
#ifndef WR_CORE_RANDNAME_H
#define WR_CORE_RANDNAME_H

#include <stddef.h>

/* Write `prefix` followed by `nrand` random characters from [A-Za-z0-9-_]
 * into buf (always NUL-terminated, cut short to fit `len`). Not
 * cryptographic: callers that need uniqueness check for a clash and draw
 * again. */
void wr_random_name(char *buf, size_t len, const char *prefix, size_t nrand);

#endif
