/*
 * version.h - the broker's name and version, for --version, the log banner
 * and (later) the server-properties sent in connection.start.
 *
 * The single source of truth is AC_INIT in configure.ac; config.h carries it
 * here so no file repeats the number.
 */
#ifndef WR_CORE_VERSION_H
#define WR_CORE_VERSION_H

#include "config.h"

#define WR_NAME PACKAGE_NAME
#define WR_VERSION PACKAGE_VERSION

#endif
