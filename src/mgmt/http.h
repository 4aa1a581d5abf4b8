/*
 * http.h - the management listener's own state (http.c), for the files of
 * mgmt/ that need more than a request: the node endpoints read its
 * counters and start time.
 */
#ifndef WR_MGMT_HTTP_H
#define WR_MGMT_HTTP_H

#include <stdint.h>

struct event;
struct evhttp;
struct wr_broker;
struct wr_conf;
struct wr_server;
struct wr_tls_slot;

/* Largest request body read (RabbitMQ's management.http.max_body_size
 * default is 20 MB too); a larger one is refused with 413 unread. */
#define WR_MGMT_BODY_MAX (20u * 1000 * 1000)

struct wr_mgmt {
    struct wr_server *srv;
    struct wr_broker *b;
    const struct wr_conf *conf;
    struct evhttp *http, *prom, *https;
    struct wr_tls_slot *tls; /* management.ssl.*: the HTTPS listener's context */
    struct event *sample_ev;
    uint64_t last_sample_ms;
    uint64_t started_ms;
    uint64_t requests;
};

/* A new object with only the named fields of obj (a comma list, dotted
 * for nested ones: "name,message_stats.publish"). */
#include <jansson.h>
json_t *wr_mgmt_columns(json_t *obj, const char *cols);

#endif
