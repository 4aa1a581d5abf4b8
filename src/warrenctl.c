/*
 * warrenctl.c - the administration command-line tool's main(). warrenctl
 * is a client of the broker's HTTP management API, as rabbitmqadmin is of
 * RabbitMQ's; it links nothing of the broker. The commands, the HTTP
 * client and the output live in src/ctl/ (see ctl/ctl.h).
 */
#include "ctl/ctl.h"

int main(int argc, char **argv)
{
    return wr_ctl_main(argc, argv);
}
