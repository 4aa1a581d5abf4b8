/*
 * http.c - the management listener: evhttp on the broker's loop, the
 * route tables of the endpoint files, RabbitMQ's order of refusals, HTTP
 * Basic login against the broker's users, and the statistics sampler.
 * See api.h for what a handler gets.
 *
 * Limits, so that a client cannot take memory or the loop away from AMQP:
 * request bodies up to WR_MGMT_BODY_MAX (a larger one is refused with 413
 * before it is read), the request line and headers up to
 * WR_MGMT_HEADERS_MAX (a 100 KB path is refused with 400/414), and a
 * connection that sends nothing for WR_MGMT_TIMEOUT_S seconds, a half
 * request included, is closed. Every request is answered within its loop
 * turn: nothing blocks.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "broker/exchange.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/log.h"
#include "mgmt/api.h"
#include "mgmt/http.h"
#include "mgmt/mgmt.h"
#include "mgmt/path.h"
#include "net/chan.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/server.h"
#include "net/tls_ctx.h"

#define WR_MGMT_TIMEOUT_S 30
#define WR_MGMT_HEADERS_MAX (64 * 1024)
#define SAMPLE_INTERVAL_MS 5000 /* RabbitMQ's collect_statistics_interval */

static const struct wr_mgmt_route *const tables[] = {
    wr_mgmt_routes_access, wr_mgmt_routes_objects, wr_mgmt_routes_node,
    wr_mgmt_routes_conn,   wr_mgmt_routes_metrics,
};

static const char *const method_names[] = {"GET", "PUT", "POST", "DELETE"};

static unsigned method_bit(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
    case EVHTTP_REQ_HEAD: return WR_M_GET;
    case EVHTTP_REQ_PUT: return WR_M_PUT;
    case EVHTTP_REQ_POST: return WR_M_POST;
    case EVHTTP_REQ_DELETE: return WR_M_DELETE;
    default: return 0;
    }
}

static void set_allow(struct evhttp_request *r, unsigned methods)
{
    char allow[64] = "";
    if (methods & WR_M_GET)
        strcat(allow, "HEAD, GET, ");
    for (unsigned i = 1; i < 4; i++)
        if (methods & (1u << i)) {
            strcat(allow, method_names[i]);
            strcat(allow, ", ");
        }
    strcat(allow, "OPTIONS");
    evhttp_add_header(evhttp_request_get_output_headers(r), "allow", allow);
}

/* ---- login ---- */

static bool peer_is_loopback(struct evhttp_request *r)
{
    struct evhttp_connection *ec = evhttp_request_get_connection(r);
    const struct sockaddr *sa = ec ? evhttp_connection_get_addr(ec) : NULL;
    return sa && wr_sockaddr_is_loopback(sa);
}

static void challenge(struct wr_mgmt_req *rq)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(rq->r);
    evhttp_add_header(h, "www-authenticate", "Basic realm=\"RabbitMQ Management\"");
    wr_mgmt_reply_empty(rq, 401);
}

static void unauthorised(struct wr_mgmt_req *rq, const char *error, const char *reason)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(rq->r);
    evhttp_add_header(h, "www-authenticate", "Basic realm=\"RabbitMQ Management\"");
    wr_mgmt_error(rq, 401, error, reason);
}

/* Check the Authorization header; fills rq->user and the tag flags.
 * False when answered. */
static bool login(struct wr_mgmt_req *rq)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(rq->r), "authorization");
    unsigned char dec[1024];
    struct wr_errbuf err;
    struct wr_user *u;

    if (!h || strncasecmp(h, "Basic ", 6) != 0) {
        challenge(rq);
        return false;
    }
    h += 6;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\r'))
        n--;
    if (n == 0 || n % 4 || n / 4 * 3 >= sizeof(dec)) {
        unauthorised(rq, "not_authorized", "Login failed");
        return false;
    }
    int dn = EVP_DecodeBlock(dec, (const unsigned char *)h, (int)n);
    if (dn < 0) {
        unauthorised(rq, "not_authorized", "Login failed");
        return false;
    }
    /* EVP_DecodeBlock counts the padding's bytes too. */
    if (n >= 1 && h[n - 1] == '=')
        dn--;
    if (n >= 2 && h[n - 2] == '=')
        dn--;
    unsigned char *colon = memchr(dec, ':', (size_t)dn);
    if (!colon) {
        unauthorised(rq, "not_authorized", "Login failed");
        return false;
    }
    struct wr_str user = {(const char *)dec, (uint32_t)(colon - dec)};
    struct wr_str pass = {(const char *)colon + 1, (uint32_t)(dn - (colon + 1 - dec))};
    if (wr_users_login(rq->b->users, user, pass, &u, &err) < 0) {
        unauthorised(rq, "not_authorized", "Login failed");
        return false;
    }
    if (!peer_is_loopback(rq->r)) {
        char name[256];
        memcpy(name, user.ptr, user.len < 255 ? user.len : 255);
        name[user.len < 255 ? user.len : 255] = '\0';
        if (memchr(user.ptr, '\0', user.len) == NULL &&
            wr_conf_is_loopback_user(rq->b->conf, name)) {
            unauthorised(rq, "not_authorized", "User can only log in via localhost");
            return false;
        }
    }
    rq->user = u;
    rq->administrator = wr_user_has_tag(u, "administrator");
    rq->monitoring = rq->administrator || wr_user_has_tag(u, "monitoring");
    rq->policymaker = rq->administrator || wr_user_has_tag(u, "policymaker");
    rq->management = rq->monitoring || rq->policymaker || wr_user_has_tag(u, "management");
    return true;
}

static bool level_ok(struct wr_mgmt_req *rq, enum wr_mgmt_level lv)
{
    if (!rq->management) {
        unauthorised(rq, "not_authorised", "Not management user");
        return false;
    }
    switch (lv) {
    case WR_LV_MONITORING:
        if (!rq->monitoring) {
            unauthorised(rq, "not_authorised", "Not monitor user");
            return false;
        }
        break;
    case WR_LV_POLICYMAKER:
        if (!rq->policymaker) {
            unauthorised(rq, "not_authorised", "Not policymaker user");
            return false;
        }
        break;
    case WR_LV_ADMIN:
        if (!rq->administrator) {
            unauthorised(rq, "not_authorised", "Not administrator user");
            return false;
        }
        break;
    default: break;
    }
    return true;
}

/* ---- dispatch ---- */

static void dispatch(struct evhttp_request *r, struct wr_mgmt *m, bool metrics_only)
{
    struct wr_mgmt_req rq;
    struct wr_mgmt_path p;
    struct evkeyvalq query;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    const struct wr_mgmt_route *found = NULL;
    unsigned allowed = 0;
    enum evhttp_cmd_type type = evhttp_request_get_command(r);

    wr_clock_update();
    memset(&rq, 0, sizeof(rq));
    rq.m = m;
    rq.r = r;
    rq.b = m->b;
    rq.srv = m->srv;
    rq.method = method_bit(type);
    TAILQ_INIT(&query);
    rq.query = &query;
    m->requests++;
    if (qs && evhttp_parse_query_str(qs, &query) < 0) {
        wr_mgmt_error(&rq, 400, "bad_request", "bad query string");
        return;
    }
    if (!uri || wr_mgmt_path_split(evhttp_uri_get_path(uri), &p) < 0) {
        evhttp_clear_headers(&query);
        wr_mgmt_error(&rq, 400, "bad_request", "bad path");
        return;
    }
    /* Of the patterns that match, only those with the most literal
     * segments count, as RabbitMQ's router takes /api/users/bulk-delete
     * before /api/users/:name (a PUT there is 405, not a user). */
    int best = -1;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (const struct wr_mgmt_route *rt = tables[t]; rt->pattern; rt++) {
            if (metrics_only && rt->level != WR_LV_PUBLIC)
                continue;
            if (!wr_mgmt_route_match(rt->pattern, &p, NULL))
                continue;
            int lit = wr_mgmt_route_literals(rt->pattern);
            if (lit > best) {
                best = lit;
                allowed = 0;
                found = NULL;
            } else if (lit < best) {
                continue;
            }
            allowed |= rt->methods;
            if (!found && (rt->methods & rq.method))
                found = rt;
        }
    }
    if (!allowed) {
        wr_mgmt_not_found(&rq);
    } else if (type == EVHTTP_REQ_OPTIONS) {
        set_allow(r, allowed);
        wr_mgmt_reply_empty(&rq, 200);
    } else if (!found) {
        set_allow(r, allowed);
        wr_mgmt_reply_empty(&rq, 405);
    } else if (found->level != WR_LV_PUBLIC && (!login(&rq) || !level_ok(&rq, found->level))) {
        /* answered */
    } else {
        wr_mgmt_route_match(found->pattern, &p, &rq);
        found->fn(&rq);
        if (!rq.answered) {
            wr_log(WR_LOG_ERROR, "management: %s was not answered", found->pattern);
            wr_mgmt_error(&rq, 500, "internal_error", "no answer");
        }
    }
    wr_mgmt_path_free(&p);
    evhttp_clear_headers(&query);
}

static void mgmt_cb(struct evhttp_request *r, void *arg)
{
    dispatch(r, arg, false);
}

static void prom_cb(struct evhttp_request *r, void *arg)
{
    dispatch(r, arg, true);
}

/* ---- the sampler ---- */

static void sample_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wr_mgmt *m = arg;
    struct wr_hnode *vn, *qn;
    size_t vit, qit;
    struct wr_list *it;
    (void)fd;
    (void)what;

    wr_clock_update();
    uint64_t now = wr_now_ms();
    double dt = m->last_sample_ms ? (double)(now - m->last_sample_ms) / 1000.0 : 0.0;
    m->last_sample_ms = now;
    for (vn = wr_hmap_first(&m->b->vhosts, &vit); vn; vn = wr_hmap_next(&m->b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        wr_stats_sample(&vh->st, dt);
        for (qn = wr_hmap_first(&vh->queues, &qit); qn; qn = wr_hmap_next(&vh->queues, &qit, qn))
            wr_stats_sample(&wr_container_of(qn, struct wr_queue, node)->st, dt);
        for (qn = wr_hmap_first(&vh->exchanges, &qit); qn;
             qn = wr_hmap_next(&vh->exchanges, &qit, qn)) {
            struct wr_exchange *x = wr_container_of(qn, struct wr_exchange, node);
            wr_counter_sample(&x->publish_in, dt);
            wr_counter_sample(&x->publish_out, dt);
        }
    }
    wr_list_each(it, &m->srv->conns)
    {
        struct wr_conn *c = wr_container_of(it, struct wr_conn, node);
        wr_conn_sample(c, dt);
        for (uint32_t i = 0; i < c->nchans_cap; i++)
            if (c->chans[i])
                wr_chan_sample(c->chans[i], dt);
    }
    wr_mgmt_node_sample(m, dt);
}

/* ---- start and stop ---- */

/* HTTPS: each accepted connection's bufferevent is an OpenSSL one, with
 * the slot's current context (a new one after SIGHUP). */
static struct bufferevent *https_bev_cb(struct event_base *base, void *arg)
{
    struct wr_mgmt *m = arg;
    SSL *ssl = SSL_new(m->tls->ctx);
    struct bufferevent *bev;
    if (!ssl)
        return NULL;
    /* No read-ahead here: libevent 2.1's OpenSSL bufferevent does not look
     * at records OpenSSL already holds when the handshake ends, so a
     * request that came with the client's Finished would wait forever. */
    SSL_set_read_ahead(ssl, 0);
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* A client that goes without close_notify (curl does) is not an error. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static struct evhttp *listen_http(struct wr_mgmt *m, const char *ip, int64_t port,
                                  void (*cb)(struct evhttp_request *, void *), const char *what,
                                  bool tls)
{
    struct evhttp *h = evhttp_new(m->srv->base);
    if (!h)
        return NULL;
    if (tls)
        evhttp_set_bevcb(h, https_bev_cb, m);
    evhttp_set_max_body_size(h, WR_MGMT_BODY_MAX);
    evhttp_set_max_headers_size(h, WR_MGMT_HEADERS_MAX);
    evhttp_set_timeout(h, WR_MGMT_TIMEOUT_S);
    evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                      EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(h, cb, m);
    if (evhttp_bind_socket(h, ip, (uint16_t)port) < 0) {
        wr_log(WR_LOG_ERROR, "cannot listen for %s on %s port %lld", what, ip, (long long)port);
        evhttp_free(h);
        return NULL;
    }
    wr_log(WR_LOG_INFO, "%s listener on %s port %lld", what, ip, (long long)port);
    return h;
}

struct wr_mgmt *wr_mgmt_start(struct wr_server *srv, const struct wr_conf *conf)
{
    struct wr_mgmt *m = calloc(1, sizeof(*m));
    struct timeval tv = {SAMPLE_INTERVAL_MS / 1000, (SAMPLE_INTERVAL_MS % 1000) * 1000};
    if (!m)
        return NULL;
    m->srv = srv;
    m->b = srv->broker;
    m->conf = conf;
    m->started_ms = wr_now_ms();
    if (conf->mgmt_port && !(m->http = listen_http(m, conf->mgmt_ip, conf->mgmt_port, mgmt_cb,
                                                   "management API", false)))
        goto fail;
    if (conf->mgmt_ssl_port) {
        char why[512];
        if (!(m->tls = calloc(1, sizeof(*m->tls))) ||
            wr_tls_slot_open(m->tls, &conf->mgmt_ssl, "management.ssl", "HTTPS management", why,
                             sizeof(why)) < 0) {
            wr_log(WR_LOG_ERROR, "cannot start the HTTPS management listener: %s",
                   m->tls ? why : "out of memory");
            goto fail;
        }
        wr_listeners_add_tls(srv, m->tls); /* reloaded with the others */
        if (!(m->https = listen_http(m, conf->mgmt_ssl_ip, conf->mgmt_ssl_port, mgmt_cb,
                                     "management API (HTTPS)", true)))
            goto fail;
    }
    if (conf->prom_port &&
        !(m->prom = listen_http(m, conf->mgmt_ip, conf->prom_port, prom_cb, "Prometheus", false)))
        goto fail;
    if (!(m->sample_ev = event_new(srv->base, -1, EV_PERSIST, sample_cb, m)))
        goto fail;
    event_add(m->sample_ev, &tv);
    sample_cb(-1, 0, m);
    return m;
fail:
    wr_mgmt_stop(m);
    return NULL;
}

void wr_mgmt_stop(struct wr_mgmt *m)
{
    if (!m)
        return;
    if (m->http)
        evhttp_free(m->http);
    if (m->prom)
        evhttp_free(m->prom);
    if (m->https)
        evhttp_free(m->https);
    if (m->tls) {
        /* Connections still open keep their own reference to the context. */
        wr_tls_slot_close(m->tls);
        free(m->tls);
    }
    if (m->sample_ev)
        event_free(m->sample_ev);
    free(m);
}
