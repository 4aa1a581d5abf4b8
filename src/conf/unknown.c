/*
 * unknown.c - RabbitMQ's keys that Warren does not implement, and the
 * nearest known key to a typo (see unknown.h).
 *
 * The list follows RabbitMQ 3.10's configuration guide and its
 * rabbitmq.conf.example: core keys with no counterpart here and whole
 * plugin namespaces (`mqtt.*`). A key that has a row in conf.c (or is an
 * entry of one of its lists, such as listeners.ssl.NAME) is never looked up
 * here: the table is asked first.
 */
#include <string.h>

#include "conf/conf.h"
#include "conf/unknown.h"

static const char *const rabbit_keys[] = {
    /* networking */
    "num_acceptors.*",
    "socket_writer.gc_threshold",
    "reverse_dns_lookups",
    "tcp_listen_options.*",
    "proxy_protocol",
    "initial_frame_max",
    "channel_max_per_node",
    "channel_operation_timeout",
    /* authentication */
    "password_hashing_module",
    "credential_validator.*",
    "anonymous_login_user",
    "anonymous_login_pass",
    "config_entry_decoder.*",
    "default_limits.*",
    "default_policies.*",
    "default_users.*",
    /* resources */
    "vm_memory_high_watermark_paging_ratio",
    "vm_memory_calculation_strategy",
    "total_memory_available_override_value",
    "memory_monitor_interval",
    "disk_free_limit.relative",
    "vhost_max",
    "cluster_queue_limit",
    "cluster_exchange_limit",
    /* queues and message store */
    "default_queue_type",
    "queue_master_locator",
    "queue_leader_locator",
    "quorum_queue.*",
    "classic_queue.*",
    "queue_index_embed_msgs_below",
    "queue_index_max_journal_entries",
    "queue_explicit_gc_run_operation_threshold",
    "lazy_queue_explicit_gc_run_operation_threshold",
    "msg_store_index_module",
    "msg_store_file_size_limit",
    "mirroring_sync_batch_size",
    "mirroring_sync_max_throughput",
    "mirroring_flow_control",
    /* clustering and the Erlang runtime */
    "cluster_name",
    "cluster_tags.*",
    "node_tags.*",
    "cluster_formation.*",
    "cluster_keepalive_interval",
    "cluster_partition_handling.*",
    "autoheal_state_transition_timeout",
    "mnesia_table_loading_retry_timeout",
    "mnesia_table_loading_retry_limit",
    "net_ticktime",
    "distribution.*",
    "raft.*",
    "metadata_store.*",
    "deprecated_features.*",
    "background_gc_enabled",
    "background_gc_target_interval",
    "hipe_compile",
    "delegate_count",
    "vhost_restart_strategy",
    "product.*",
    "motd_file",
    "channel_interceptor.*",
    /* statistics, management and Prometheus beyond their listeners */
    "collect_statistics_interval",
    "management_db_cache_multiplier",
    "management.*",
    "management_agent.*",
    "prometheus.*",
    "http_dispatch.*",
    /* logging beyond the file, the console and syslog */
    "log.file.rotation.*",
    "log.file.formatter.*",
    "log.console.formatter.*",
    "log.console.stdio",
    "log.exchange.*",
    "log.syslog.*",
    "log.journald.*",
    "log.connection.*",
    "log.channel.*",
    "log.queue.*",
    "log.mirroring.*",
    "log.federation.*",
    "log.upgrade.*",
    "log.ra.*",
    "log.shovel.*",
    "log.user.*",
    "log.ldap.*",
    "log.prelaunch.*",
    "log.feature_flags.*",
    "log.default.*",
    /* other protocols and plugins */
    "stream.*",
    "mqtt.*",
    "stomp.*",
    "web_stomp.*",
    "web_mqtt.*",
    "amqp1_0.*",
    "shovel.*",
    "federation.*",
    "event_exchange.*",
    "auth_oauth2.*",
    "auth_ldap.*",
    "auth_http.*",
    "auth_cache.*",
};

#define NKEYS (sizeof rabbit_keys / sizeof rabbit_keys[0])

const char *const *wr_conf_rabbit_keys(size_t *count)
{
    *count = NKEYS;
    return rabbit_keys;
}

static bool matches(const char *pattern, const char *key)
{
    size_t pl = strlen(pattern);
    if (pl >= 2 && strcmp(pattern + pl - 2, ".*") == 0) {
        size_t base = pl - 2;
        return strncmp(key, pattern, base) == 0 && (key[base] == '\0' || key[base] == '.');
    }
    return strcmp(pattern, key) == 0;
}

bool wr_conf_rabbit_only(const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (matches(rabbit_keys[i], key))
            return true;
    return false;
}

#define DIST_MAX_LEN 128

size_t wr_conf_edit_distance(const char *a, const char *b, size_t max)
{
    size_t n = strlen(a), m = strlen(b);
    size_t rows[3][DIST_MAX_LEN + 1];
    size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];

    if (n > DIST_MAX_LEN || m > DIST_MAX_LEN)
        return max + 1;
    if ((n > m ? n - m : m - n) > max)
        return max + 1;
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t best = cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = prev[j - 1] + cost;
            if (prev[j] + 1 < d)
                d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < d)
                d = pp[j - 2] + 1; /* neighbours swapped */
            cur[j] = d;
            if (d < best)
                best = d;
        }
        if (best > max)
            return max + 1; /* every later row is at least this far */
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[m] <= max ? prev[m] : max + 1;
}

const char *wr_conf_closest(const char *key)
{
    size_t n, len = strlen(key);
    const struct wr_conf_setting *s = wr_conf_settings(&n);
    size_t max = len / 4 < 3 ? len / 4 : 3;
    const char *best = NULL;
    size_t best_d;

    if (max == 0)
        max = 1;
    best_d = max + 1;
    /* Only a strictly closer row replaces the one found: ties go to the
     * first in the table. */
    for (size_t i = 0; i < n && best_d > 0; i++) {
        size_t d = wr_conf_edit_distance(key, s[i].name, best_d - 1);
        if (d < best_d) {
            best_d = d;
            best = s[i].name;
        }
    }
    return best;
}
