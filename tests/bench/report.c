/*
 * report.c - what warren-perf measures about the broker (/proc samples of
 * its RSS and CPU time) and how a run is reported: a few lines of text, and
 * with -j one JSON line that compare.sh collects.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "perf.h"

/* utime + stime of /proc/.../stat, in seconds; -1 when unreadable. */
static double stat_cpu(const char *path)
{
    char buf[4096], *p;
    unsigned long ut = 0, st = 0;
    size_t n;
    FILE *f = fopen(path, "r");

    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces and parentheses: fields count from
     * the last ')'. utime and stime are fields 14 and 15. */
    if (!(p = strrchr(buf, ')')))
        return -1;
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

void perf_sample_broker(long pid, struct broker_sample *s)
{
    char path[64], buf[4096];
    FILE *f;

    memset(s, 0, sizeof(*s));
    if (pid <= 0)
        return;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(buf, sizeof(buf), f))
        if (sscanf(buf, "VmRSS: %ld", &s->rss_kib) == 1)
            break;
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((s->cpu_s = stat_cpu(path)) < 0)
        return;
    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/stat", pid, pid);
    s->core_cpu_s = stat_cpu(path);
    s->ok = s->core_cpu_s >= 0;
}

static double tv_secs(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* ---- report ---- */

static void print_lat_json(FILE *f, const char *name, const struct hist *h)
{
    fprintf(f,
            ",\"%s\":{\"count\":%" PRIu64
            ",\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
            name, h->count, (double)hist_quantile(h, 0.5) / 1e3,
            (double)hist_quantile(h, 0.99) / 1e3, (double)hist_quantile(h, 0.999) / 1e3,
            (double)h->max / 1e3, h->count ? h->sum / (double)h->count / 1e3 : 0.0);
}

static void print_lat_text(FILE *f, const char *name, const struct hist *h)
{
    if (!h->count)
        return;
    fprintf(f, "%s (us): p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%" PRIu64 " samples)\n", name,
            (double)hist_quantile(h, 0.5) / 1e3, (double)hist_quantile(h, 0.99) / 1e3,
            (double)hist_quantile(h, 0.999) / 1e3, (double)h->max / 1e3, h->count);
}

void perf_report(const struct perf *p)
{
    double dur = p->t_end > p->t_start ? perf_secs(p->t_end - p->t_start) : 0;
    double pdur = p->t_pub_end > p->t_start ? perf_secs(p->t_pub_end - p->t_start) : dur;
    double cpu = 0, send_rate, recv_rate, conf_rate, bps;
    uint64_t msgs = p->snap_sent + p->snap_received;
    bool have_b = p->b_start.ok && p->b_end.ok;
    double bcpu = have_b ? p->b_end.cpu_s - p->b_start.cpu_s : 0;
    double ccpu = have_b ? p->b_end.core_cpu_s - p->b_start.core_cpu_s : 0;
    /* Broker CPU per message delivered (per message published when none
     * is consumed), in all and on its main thread (the core). */
    uint64_t per = p->snap_received ? p->snap_received : p->snap_sent;
    double ns_all = per ? bcpu * 1e9 / (double)per : 0,
           ns_core = per ? ccpu * 1e9 / (double)per : 0;
    FILE *txt = p->o.json ? stderr : stdout;

    if (p->t_end)
        cpu = tv_secs(p->ru_end.ru_utime) + tv_secs(p->ru_end.ru_stime) -
              tv_secs(p->ru_start.ru_utime) - tv_secs(p->ru_start.ru_stime);
    send_rate = pdur > 0 ? (double)p->snap_sent / pdur : 0;
    recv_rate = dur > 0 ? (double)p->snap_received / dur : 0;
    conf_rate = pdur > 0 ? (double)p->snap_confirmed / pdur : 0;
    bps = dur > 0 ? (double)p->snap_bytes / dur : 0;

    if (p->o.idle) {
        long delta = have_b ? p->b_end.rss_kib - p->b_start.rss_kib : 0;
        fprintf(txt, "idle connections: %u of %ld open, held %.1f s (opening took %.2f s)\n",
                p->ready, p->o.idle, dur, p->t_start ? perf_secs(p->t_start - p->t0) : 0.0);
        if (have_b)
            fprintf(txt,
                    "broker RSS: %ld KiB before, %ld KiB with the connections: %.1f KiB per "
                    "connection; broker CPU %.1f%%\n",
                    p->b_start.rss_kib, p->b_end.rss_kib, p->ready ? (double)delta / p->ready : 0.0,
                    dur > 0 ? 100 * bcpu / dur : 0.0);
    } else {
        fprintf(txt, "%d producer(s), %d consumer(s), %u queue(s), %ld B bodies, %.2f s\n",
                p->o.producers, p->o.consumers, p->nq, p->o.size, dur);
        fprintf(txt, "sent %" PRIu64 " (%.0f msg/s), received %" PRIu64 " (%.0f msg/s, %.1f MiB/s)",
                p->snap_sent, send_rate, p->snap_received, recv_rate, bps / (1 << 20));
        if (p->o.confirm > 0)
            fprintf(txt, ", confirmed %" PRIu64 " (%.0f msg/s), nacked %" PRIu64, p->snap_confirmed,
                    conf_rate, p->nacked);
        fprintf(txt, "\n");
        print_lat_text(txt, "end-to-end latency", &p->lat);
        print_lat_text(txt, "confirm latency", &p->clat);
        fprintf(txt, "tool CPU: %.2f s (%.0f%% of one core), %.0f ns per message handled\n", cpu,
                dur > 0 ? 100 * cpu / dur : 0.0, msgs ? cpu * 1e9 / (double)msgs : 0.0);
        if (have_b)
            fprintf(txt,
                    "broker: RSS %ld KiB at start, %ld KiB at end; CPU %.2f s (%.0f%%), main "
                    "thread %.2f s; per message %.0f ns, main thread %.0f ns\n",
                    p->b_start.rss_kib, p->b_end.rss_kib, bcpu, dur > 0 ? 100 * bcpu / dur : 0.0,
                    ccpu, ns_all, ns_core);
    }
    if (p->exit_code)
        fprintf(txt, "error: %s\n", p->error);

    if (!p->o.json)
        return;
    printf("{\"mode\":\"%s\",\"producers\":%d,\"consumers\":%d,\"queues\":%u,\"size\":%ld",
           p->o.idle ? "idle" : "run", p->o.producers, p->o.consumers, p->nq, p->o.size);
    printf(",\"duration_s\":%.3f,\"setup_s\":%.3f", dur,
           p->t_start ? perf_secs(p->t_start - p->t0) : 0.0);
    if (p->o.idle) {
        printf(",\"connections\":%u", p->ready);
        if (have_b && p->ready)
            printf(",\"rss_per_conn_bytes\":%.0f",
                   (double)(p->b_end.rss_kib - p->b_start.rss_kib) * 1024 / p->ready);
    } else {
        printf(",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"confirmed\":%" PRIu64
               ",\"nacked\":%" PRIu64 ",\"returned\":%" PRIu64,
               p->snap_sent, p->snap_received, p->snap_confirmed, p->nacked, p->returned);
        printf(
            ",\"send_rate\":%.1f,\"recv_rate\":%.1f,\"confirm_rate\":%.1f,\"recv_bytes_per_s\":%.0f",
            send_rate, recv_rate, conf_rate, bps);
        print_lat_json(stdout, "latency_us", &p->lat);
        print_lat_json(stdout, "confirm_latency_us", &p->clat);
    }
    printf(",\"tool_cpu_s\":%.3f,\"tool_cpu_ns_per_msg\":%.1f", cpu,
           msgs ? cpu * 1e9 / (double)msgs : 0.0);
    if (have_b)
        printf(
            ",\"broker_stats\":{\"pid\":%ld,\"rss_start_kib\":%ld,\"rss_end_kib\":%ld,\"cpu_s\":%.3f"
            ",\"cpu_pct\":%.1f,\"main_cpu_s\":%.3f,\"cpu_ns_per_msg\":%.1f"
            ",\"main_cpu_ns_per_msg\":%.1f}",
            p->o.broker_pid, p->b_start.rss_kib, p->b_end.rss_kib, bcpu,
            dur > 0 ? 100 * bcpu / dur : 0.0, ccpu, ns_all, ns_core);
    if (p->exit_code) {
        printf(",\"error\":\"");
        for (const char *s = p->error; *s; s++)
            if (*s == '"' || *s == '\\')
                printf("\\%c", *s);
            else if ((unsigned char)*s >= 0x20)
                putchar(*s);
        printf("\"");
    }
    printf("}\n");
}
