/*
 * options.c - warren-perf's command line: RabbitMQ PerfTest's flag names
 * where PerfTest has the flag, long options for the rest, and the AMQP URI.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

/* ---- options ---- */

static void usage(FILE *f)
{
    fputs(
        "Usage: warren-perf [OPTION]...\n"
        "Load an AMQP 0-9-1 broker and report throughput and latency (flags as RabbitMQ's "
        "PerfTest).\n\n"
        "  -h, --uri URI             amqp://user:pass@host:port/vhost (default amqp://localhost)\n"
        "      --host HOST, --port N  instead of -h\n"
        "  -x, --producers N         producer connections (1)\n"
        "  -y, --consumers N         consumer connections (1)\n"
        "  -s, --size BYTES          body size, at least 8 (12)\n"
        "  -q, --qos N               consumer prefetch count (0: none)\n"
        "  -a, --autoack             consume with no-ack\n"
        "  -A, --multi-ack-every N   ack every N deliveries with multiple=true\n"
        "  -c, --confirm N           publisher confirms, at most N outstanding per producer\n"
        "  -f, --flag persistent     publish with delivery-mode 2\n"
        "  -u, --queue NAME          queue name (default warren-perf-PID)\n"
        "  -e, --exchange NAME       exchange (default: the default exchange)\n"
        "  -t, --type TYPE           exchange type (direct)\n"
        "  -k, --routing-key KEY     routing and binding key (default: the queue name)\n"
        "  -r, --rate N              messages per second per producer (0: unlimited)\n"
        "  -z, --time SECONDS        run time (0: until -C is done or SIGINT)\n"
        "  -C, --pmessages N         messages per producer, then stop\n"
        "      --queue-args k=v,...  queue arguments (integers when numeric)\n"
        "      --consumer-args k=v,...  basic.consume arguments (e.g. x-stream-offset=first)\n"
        "      --cmessages N         stop once the consumers received N messages in all\n"
        "      --no-settle           without consumers, stop once every confirm is back\n"
        "                            (do not poll the queues: a stream counts 0)\n"
        "      --leave               at the end delete and purge nothing\n"
        "      --queue-durable       declare durable queues (and exchange)\n"
        "      --fanout-queues N     N queues bound to a fanout exchange (-e, default\n"
        "                            warren-perf.fanout); consumers default to N\n"
        "      --queues N            N queues, consumers spread over them, producers\n"
        "                            publish round-robin across them\n"
        "      --bindings N          N extra distinct bindings on the exchange\n"
        "      --idle-connections N  open N connections with a channel each, hold -z s\n"
        "      --broker-pid PID      sample that process's RSS and CPU at start and end\n"
        "      --keep                at the end purge the queues instead of deleting the\n"
        "                            queues and the exchange (reuse them next run)\n"
        "      --frame-max BYTES     frame_max to ask for (131072)\n"
        "      --tls                 AMQP over TLS (amqps; the certificate is not checked)\n"
        "  -j, --json                one JSON result line on stdout (text goes to stderr)\n"
        "      --quiet               no per-second progress lines\n"
        "      --help                this help\n",
        f);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Copy [s, s+n) into dst with %XX decoded. */
static int pct_decode(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            ch = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        dst[o++] = (char)ch;
    }
    dst[o] = 0;
    return 0;
}

/* amqp://[user[:pass]@]host[:port][/vhost] */
static int parse_uri(struct opts *o, const char *uri)
{
    const char *s, *at, *slash, *colon, *hend;

    if (strncmp(uri, "amqp://", 7) != 0)
        return -1;
    s = uri + 7;
    slash = strchr(s, '/');
    hend = slash ? slash : s + strlen(s);
    at = memchr(s, '@', (size_t)(hend - s));
    if (at) {
        colon = memchr(s, ':', (size_t)(at - s));
        if (pct_decode(o->user, sizeof(o->user), s, (size_t)((colon ? colon : at) - s)) < 0)
            return -1;
        if (colon && pct_decode(o->pass, sizeof(o->pass), colon + 1, (size_t)(at - colon - 1)) < 0)
            return -1;
        s = at + 1;
    }
    if (*s == '[') { /* [v6]:port */
        const char *rb = memchr(s, ']', (size_t)(hend - s));
        if (!rb || (size_t)(rb - s - 1) >= sizeof(o->host))
            return -1;
        memcpy(o->host, s + 1, (size_t)(rb - s - 1));
        o->host[rb - s - 1] = 0;
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(s, ':', (size_t)(hend - s));
        if (pct_decode(o->host, sizeof(o->host), s, (size_t)((colon ? colon : hend) - s)) < 0)
            return -1;
    }
    if (colon && pct_decode(o->port, sizeof(o->port), colon + 1, (size_t)(hend - colon - 1)) < 0)
        return -1;
    if (!o->host[0])
        strcpy(o->host, "localhost");
    if (slash && slash[1] &&
        pct_decode(o->vhost, sizeof(o->vhost), slash + 1, strlen(slash + 1)) < 0)
        return -1;
    return 0;
}

static long parse_num(const char *opt, const char *s, long min, long max)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < min || v > max) {
        fprintf(stderr, "warren-perf: %s: '%s' is not a number in [%ld, %ld]\n", opt, s, min, max);
        exit(2);
    }
    return v;
}

static double parse_double(const char *opt, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || v < 0) {
        fprintf(stderr, "warren-perf: %s: '%s' is not a non-negative number\n", opt, s);
        exit(2);
    }
    return v;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_QARGS,
    OPT_CARGS,
    OPT_CMSGS,
    OPT_NOSETTLE,
    OPT_LEAVE,
    OPT_DURABLE,
    OPT_FANOUT,
    OPT_QUEUES,
    OPT_BINDINGS,
    OPT_IDLE,
    OPT_BPID,
    OPT_KEEP,
    OPT_TLS,
    OPT_QUIET,
    OPT_FRAMEMAX,
    OPT_HELP,
};

void perf_parse_args(struct opts *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"uri", required_argument, NULL, 'h'},
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"producers", required_argument, NULL, 'x'},
        {"consumers", required_argument, NULL, 'y'},
        {"size", required_argument, NULL, 's'},
        {"qos", required_argument, NULL, 'q'},
        {"autoack", no_argument, NULL, 'a'},
        {"multi-ack-every", required_argument, NULL, 'A'},
        {"confirm", required_argument, NULL, 'c'},
        {"flag", required_argument, NULL, 'f'},
        {"queue", required_argument, NULL, 'u'},
        {"exchange", required_argument, NULL, 'e'},
        {"type", required_argument, NULL, 't'},
        {"routing-key", required_argument, NULL, 'k'},
        {"rate", required_argument, NULL, 'r'},
        {"time", required_argument, NULL, 'z'},
        {"pmessages", required_argument, NULL, 'C'},
        {"json", no_argument, NULL, 'j'},
        {"queue-args", required_argument, NULL, OPT_QARGS},
        {"consumer-args", required_argument, NULL, OPT_CARGS},
        {"cmessages", required_argument, NULL, OPT_CMSGS},
        {"no-settle", no_argument, NULL, OPT_NOSETTLE},
        {"leave", no_argument, NULL, OPT_LEAVE},
        {"queue-durable", no_argument, NULL, OPT_DURABLE},
        {"fanout-queues", required_argument, NULL, OPT_FANOUT},
        {"queues", required_argument, NULL, OPT_QUEUES},
        {"bindings", required_argument, NULL, OPT_BINDINGS},
        {"idle-connections", required_argument, NULL, OPT_IDLE},
        {"broker-pid", required_argument, NULL, OPT_BPID},
        {"keep", no_argument, NULL, OPT_KEEP},
        {"tls", no_argument, NULL, OPT_TLS},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"frame-max", required_argument, NULL, OPT_FRAMEMAX},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    bool consumers_set = false;
    int ch;

    memset(o, 0, sizeof(*o));
    strcpy(o->host, "localhost");
    strcpy(o->port, "5672");
    strcpy(o->user, "guest");
    strcpy(o->pass, "guest");
    strcpy(o->vhost, "/");
    o->producers = 1;
    o->consumers = 1;
    o->size = 12;
    o->type = "direct";
    o->frame_max = 131072;

    while ((ch = getopt_long(argc, argv, "h:x:y:s:q:aA:c:f:u:e:t:k:r:z:C:j", longs, NULL)) != -1) {
        switch (ch) {
        case 'h':
            if (parse_uri(o, optarg) < 0) {
                fprintf(stderr, "warren-perf: cannot parse URI '%s'\n", optarg);
                exit(2);
            }
            break;
        case OPT_HOST:
            snprintf(o->host, sizeof(o->host), "%s", optarg);
            break;
        case OPT_PORT:
            parse_num("--port", optarg, 1, 65535);
            snprintf(o->port, sizeof(o->port), "%s", optarg);
            break;
        case 'x':
            o->producers = (int)parse_num("-x", optarg, 0, 10000);
            break;
        case 'y':
            o->consumers = (int)parse_num("-y", optarg, 0, 10000);
            consumers_set = true;
            break;
        case 's':
            o->size = parse_num("-s", optarg, 0, 64L << 20);
            break;
        case 'q':
            o->prefetch = (int)parse_num("-q", optarg, 0, 65535);
            break;
        case 'a':
            o->autoack = true;
            break;
        case 'A':
            o->multi_ack = (int)parse_num("-A", optarg, 0, 1000000);
            break;
        case 'c':
            o->confirm = parse_num("-c", optarg, 0, 1L << 24);
            break;
        case 'f':
            if (strcmp(optarg, "persistent") != 0) {
                fprintf(stderr, "warren-perf: -f: only 'persistent' is supported\n");
                exit(2);
            }
            o->persistent = true;
            break;
        case 'u':
            o->queue = optarg;
            break;
        case 'e':
            o->exchange = optarg;
            break;
        case 't':
            o->type = optarg;
            break;
        case 'k':
            o->rkey = optarg;
            break;
        case 'r':
            o->rate = parse_double("-r", optarg);
            break;
        case 'z':
            o->seconds = parse_double("-z", optarg);
            break;
        case 'C':
            o->count = (uint64_t)parse_num("-C", optarg, 0, LONG_MAX);
            break;
        case 'j':
            o->json = true;
            break;
        case OPT_QARGS:
            o->queue_args = optarg;
            break;
        case OPT_CARGS:
            o->consumer_args = optarg;
            break;
        case OPT_CMSGS:
            o->cmessages = strtoull(optarg, NULL, 10);
            break;
        case OPT_NOSETTLE:
            o->no_settle = true;
            break;
        case OPT_LEAVE:
            o->leave = true;
            break;
        case OPT_DURABLE:
            o->durable = true;
            break;
        case OPT_FANOUT:
            o->fanout_queues = (int)parse_num("--fanout-queues", optarg, 1, 100000);
            break;
        case OPT_QUEUES:
            o->queues = (int)parse_num("--queues", optarg, 1, 1000000);
            break;
        case OPT_BINDINGS:
            o->bindings = parse_num("--bindings", optarg, 0, 10000000);
            break;
        case OPT_IDLE:
            o->idle = parse_num("--idle-connections", optarg, 1, 1000000);
            break;
        case OPT_BPID:
            o->broker_pid = parse_num("--broker-pid", optarg, 1, INT_MAX);
            break;
        case OPT_KEEP:
            o->keep = true;
            break;
        case OPT_TLS:
            o->tls = true;
            break;
        case OPT_QUIET:
            o->quiet = true;
            break;
        case OPT_FRAMEMAX:
            o->frame_max = (uint32_t)parse_num("--frame-max", optarg, 4096, 1L << 30);
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "warren-perf: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (o->size < 8) {
        fprintf(stderr, "warren-perf: -s %ld raised to 8: the body carries the send time\n",
                o->size);
        o->size = 8;
    }
    if (o->fanout_queues && o->queues) {
        fprintf(stderr, "warren-perf: --fanout-queues and --queues exclude each other\n");
        exit(2);
    }
    if (o->fanout_queues) {
        if (!o->exchange)
            o->exchange = "warren-perf.fanout";
        o->type = "fanout";
        if (!consumers_set)
            o->consumers = o->fanout_queues;
    }
    if (!o->idle && !o->seconds && !o->count)
        fprintf(stderr, "warren-perf: no -z or -C: running until interrupted\n");
    if (!o->autoack && o->multi_ack > 1 && o->prefetch && o->multi_ack > o->prefetch) {
        fprintf(stderr, "warren-perf: -A %d > -q %d would stall the consumers\n", o->multi_ack,
                o->prefetch);
        exit(2);
    }
}
