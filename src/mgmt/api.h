/*
 * api.h - what an endpoint of the management API works with: the request
 * (its method, its path's parameters, the authenticated user), the route
 * table that names the endpoints, and the helpers that answer in
 * RabbitMQ's shapes.
 *
 * A route is a path pattern, the methods it takes, the tag a user needs
 * and a handler. Patterns are split on '/'; a segment ":" takes any one
 * path segment, percent-decoded, into rq->arg[] in order ("/api/queues/:/:"
 * gives the vhost in arg[0] and the queue in arg[1]). Every endpoint file
 * (ep_*.c, metrics.c) exports one table, listed in http.c.
 *
 * Order of the checks, as RabbitMQ's: a path no route has is 404 before
 * anything else; a method the path does not take is 405 with `allow`; then
 * the login (401, with the Basic challenge when no credentials came), then
 * the route's tag (401 "Not administrator user" and the like); then the
 * handler, which checks vhost access (wr_mgmt_vhost) and objects (404).
 *
 * A handler answers exactly once, with one of the wr_mgmt_reply*,
 * wr_mgmt_error* or wr_mgmt_list functions; the request is finished then.
 * Helpers that can refuse (body parsing, argument checks, vhost lookup)
 * answer the refusal themselves and return false/NULL: the handler then
 * just returns.
 */
#ifndef WR_MGMT_API_H
#define WR_MGMT_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/errbuf.h"
#include "wire/buf.h"

struct evhttp_request;
struct wr_broker;
struct wr_server;
struct wr_mgmt;
struct wr_user;
struct wr_vhost;
struct wr_vperm;

/* Methods (bit set). HEAD is served by the GET handler. */
#define WR_M_GET 0x1u
#define WR_M_PUT 0x2u
#define WR_M_POST 0x4u
#define WR_M_DELETE 0x8u

/* The tag a route needs. */
enum wr_mgmt_level {
    WR_LV_PUBLIC,      /* no login (/metrics, as RabbitMQ's prometheus plugin) */
    WR_LV_MANAGEMENT,  /* management, policymaker, monitoring or administrator */
    WR_LV_MONITORING,  /* monitoring or administrator */
    WR_LV_POLICYMAKER, /* policymaker or administrator */
    WR_LV_ADMIN,       /* administrator */
};

#define WR_MGMT_MAX_ARGS 6

struct wr_mgmt_req {
    struct wr_mgmt *m;
    struct evhttp_request *r;
    struct wr_broker *b;
    struct wr_server *srv;
    unsigned method; /* one WR_M_* */
    /* The path's ":" segments, decoded; each NUL-terminated (a name may
     * hold NUL bytes itself: use the wr_str length). */
    struct wr_str arg[WR_MGMT_MAX_ARGS];
    unsigned nargs;
    /* The logged-in user (NULL on a public route) and its tags. */
    struct wr_user *user;
    bool administrator, monitoring, policymaker, management;
    bool answered;
    /* internal */
    struct evkeyvalq *query;
    char *path_buf;
};

struct wr_mgmt_route {
    const char *pattern;
    unsigned methods;
    enum wr_mgmt_level level;
    void (*fn)(struct wr_mgmt_req *rq);
};

/* The tables (each ends with a NULL pattern). */
extern const struct wr_mgmt_route wr_mgmt_routes_access[];  /* ep_access.c */
extern const struct wr_mgmt_route wr_mgmt_routes_objects[]; /* ep_objects.c */
extern const struct wr_mgmt_route wr_mgmt_routes_node[];    /* ep_node.c */
extern const struct wr_mgmt_route wr_mgmt_routes_conn[];    /* ep_conn.c */
extern const struct wr_mgmt_route wr_mgmt_routes_metrics[]; /* metrics.c */

/* ---- the request ---- */

/* A query-string parameter, decoded; NULL when absent. */
const char *wr_mgmt_query(struct wr_mgmt_req *rq, const char *key);

/* The request body as a JSON object: an empty body is {}. NULL when it is
 * not a JSON object (answered: 400 bad_request "not_json") or too large
 * (413). The caller owns the reference. */
json_t *wr_mgmt_body(struct wr_mgmt_req *rq);

/* Body fields as RabbitMQ's API takes them: booleans as true/false or the
 * strings "true"/"false", numbers as numbers or decimal strings. Absent or
 * null: *out = def. False when the value is of another kind (answered:
 * 400 with the key in the reason). */
bool wr_mgmt_field_bool(struct wr_mgmt_req *rq, json_t *o, const char *key, bool def, bool *out);
bool wr_mgmt_field_int(struct wr_mgmt_req *rq, json_t *o, const char *key, int64_t min, int64_t max,
                       int64_t def, int64_t *out);
/* A string field; absent or null: *out = def (may be NULL). */
bool wr_mgmt_field_str(struct wr_mgmt_req *rq, json_t *o, const char *key, const char *def,
                       struct wr_str *out);
/* "arguments": an object (or absent/null: empty) as field-table bytes,
 * malloc'd into *out (free it). */
bool wr_mgmt_field_table(struct wr_mgmt_req *rq, json_t *o, const char *key, struct wr_str *out);

/* The vhost named by a path segment, for reading (write = false) or
 * changing (true). Missing: 404. A management user without a permission
 * entry there, and a monitoring user changing it: 401 "User not
 * authorised to access virtual host". Administrators and (reading)
 * monitoring users see every vhost. Returns NULL when answered. */
struct wr_vhost *wr_mgmt_vhost(struct wr_mgmt_req *rq, struct wr_str name, bool write);
/* Whether the user sees the vhost in listings (same rule, reading). */
bool wr_mgmt_vhost_visible(struct wr_mgmt_req *rq, const struct wr_vhost *vh);
/* The user's permission entry on the vhost (NULL: none). */
const struct wr_vperm *wr_mgmt_vperm(struct wr_mgmt_req *rq, const struct wr_vhost *vh);
/* Whether the request may see every connection and channel (monitoring,
 * administrator); others see their own only. */
bool wr_mgmt_sees_all(const struct wr_mgmt_req *rq);

/* ---- answers ---- */

/* 200 with a JSON document (reference taken; NULL: out of memory, 500).
 * `columns` in the query is applied to an object. */
void wr_mgmt_reply_json(struct wr_mgmt_req *rq, json_t *doc);
/* An empty answer with this status (201, 204). */
void wr_mgmt_reply_empty(struct wr_mgmt_req *rq, int status);
/* {"error": error, "reason": reason} with this status. */
void wr_mgmt_error(struct wr_mgmt_req *rq, int status, const char *error, const char *reason);
void wr_mgmt_errorf(struct wr_mgmt_req *rq, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 404 {"error":"Object Not Found","reason":"Not Found"} */
void wr_mgmt_not_found(struct wr_mgmt_req *rq);
/* A refusal from the broker (struct wr_errbuf, an AMQP reply code): 404
 * for NOT_FOUND, 401 for ACCESS_REFUSED (RabbitMQ's "not_authorised"),
 * 400 for PRECONDITION_FAILED and the rest, the text as the reason. */
void wr_mgmt_refused(struct wr_mgmt_req *rq, const struct wr_errbuf *err);
/* Plain text with a content type (/metrics). */
void wr_mgmt_reply_text(struct wr_mgmt_req *rq, const char *content_type, const char *text,
                        size_t len);

/* ---- listings ---- */

/* One item of a listing: what sorting and filtering by name need without
 * building its JSON, and the object. */
struct wr_mgmt_row {
    struct wr_str vhost, name;
    void *obj;
};
typedef json_t *(*wr_mgmt_build_fn)(struct wr_mgmt_req *rq, void *obj, void *ctx);
/* Answer a listing with RabbitMQ's query parameters: sort (a field,
 * dotted for nested ones; default by vhost then name), sort_reverse,
 * columns, and page/page_size (at most 500)/name/use_regex, which make the
 * answer the paginated object. Without a sort by another field only the
 * items on the page are built. A bare JSON array otherwise. The rows stay
 * the caller's. */
void wr_mgmt_list(struct wr_mgmt_req *rq, struct wr_mgmt_row *rows, size_t n,
                  wr_mgmt_build_fn build, void *ctx);
/* The same for a listing whose items are already JSON (array reference
 * taken); sorted by "vhost" and "name" when present. */
void wr_mgmt_list_json(struct wr_mgmt_req *rq, json_t *items);

/* ---- JSON values ---- */

/* A name as a JSON string, every byte: UTF-8 as is, anything else read
 * as Latin-1 (a JSON string must be Unicode). */
json_t *wr_json_str(struct wr_str s);
/* Set o[key] = v, taking v's reference; false when v is NULL. */
bool wr_json_set(json_t *o, const char *key, json_t *v);
/* {"rate": r}, r rounded to one decimal */
json_t *wr_json_rate(double r);
/* A time in ms since the epoch as RabbitMQ 3.10 prints it, in UTC:
 * "2026-12-05T10:20:30.123+00:00". */
json_t *wr_json_time(uint64_t ms);

/* RabbitMQ's message_stats object from counters: each counter in `which`
 * (bits 1 << WR_ST_*) as "name" and "name_details": {"rate": r}, and, when
 * any delivery counter is in it, "deliver_get" (deliveries and gets, with
 * and without ack) with its details. */
struct wr_stats;
json_t *wr_mgmt_message_stats(const struct wr_stats *s, uint32_t which);
#define WR_MGMT_STATS_CHANNEL 0x7ffu /* publish .. ack */
#define WR_MGMT_STATS_QUEUE                                                                        \
    ((1u << WR_ST_PUBLISH) | (1u << WR_ST_DELIVER) | (1u << WR_ST_DELIVER_NO_ACK) |                \
     (1u << WR_ST_GET) | (1u << WR_ST_GET_NO_ACK) | (1u << WR_ST_GET_EMPTY) |                      \
     (1u << WR_ST_REDELIVER) | (1u << WR_ST_ACK))

/* Node-level rates (memory, descriptors, queue totals, churn): ep_node.c,
 * called by the sampler with the rest, dt_s seconds after the last. */
void wr_mgmt_node_sample(struct wr_mgmt *m, double dt_s);

/* The cluster name: the node's name until PUT /api/cluster-name sets
 * another (ep_node.c; kept in memory only). */
const char *wr_mgmt_cluster_name(void);

/* A JSON document (reference taken) with another status than 200: a
 * failed health check's 503. */
void wr_mgmt_reply_json_status(struct wr_mgmt_req *rq, int status, json_t *doc);

#endif
