/*
 * mgmt.h - the management HTTP API and the Prometheus endpoint, served by
 * libevent's evhttp on the broker's event loop (mgmt/http.c).
 *
 * warrend.c starts it once the server is up (it reads the server's
 * connections) and stops it before the server closes them. Nothing in
 * broker/ or net/ depends on it: it reads their state and calls their
 * functions, as an AMQP client's channel does.
 */
#ifndef WR_MGMT_MGMT_H
#define WR_MGMT_MGMT_H

struct wr_broker;
struct wr_conf;
struct wr_mgmt;
struct wr_server;

/* Listen on management.tcp.ip:management.tcp.port (unless 0) and on
 * prometheus.tcp.port (unless 0), and start the statistics sampler.
 * NULL when a listener cannot be bound (logged). */
struct wr_mgmt *wr_mgmt_start(struct wr_server *srv, const struct wr_conf *conf);
void wr_mgmt_stop(struct wr_mgmt *m);

#endif
