/*
 * warrenctl.c - the administration command-line tool.
 *
 * warrenctl will talk to a running broker through its HTTP management API
 * (management.tcp.port); it links nothing of the broker but the shared
 * library's helpers. That API does not exist yet, so this is the skeleton:
 * the option handling and exit codes that the commands will keep.
 */
#include <getopt.h>
#include <stdio.h>

#include "core/version.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "Usage: warrenctl [OPTION]... COMMAND [ARG]...\n"
    "Administer a running Warren broker.\n"
    "\n"
    "  -V, --version  print the version and exit\n"
    "  -h, --help     print this help and exit\n"
    "\n"
    "No commands exist yet: they arrive with the management API.\n"
    "Exit status: 0 on success, 2 for bad usage or an unknown command.\n"
    "See warrenctl(1).\n";

static const struct option long_options[] = {
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    int opt;

    while ((opt = getopt_long(argc, argv, "+hV", long_options, NULL)) != -1) {
        switch (opt) {
        case 'V':
            printf("warrenctl (%s) %s\n", WR_NAME, WR_VERSION);
            return 0;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs("Try 'warrenctl --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    fprintf(stderr,
            "warrenctl: unknown command '%s' (no commands yet: they arrive with the "
            "management API)\n",
            argv[optind]);
    return EXIT_USAGE;
}
