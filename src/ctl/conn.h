/*
 * conn.h - which broker warrenctl talks to and as whom. Four layers, each
 * overriding the one before, field by field: the defaults (guest/guest on
 * http://127.0.0.1:15672, vhost "/"), a section of the configuration file
 * (~/.config/warren/warrenctl.conf; [default], or the one --node names),
 * the environment (WARREN_URL, WARREN_USER, WARREN_PASSWORD,
 * WARREN_VHOST), and the command-line flags. Within a layer a URL is
 * applied first, then a host and a port.
 *
 * The file is ini-like:
 *
 *     # comment
 *     [default]
 *     url = http://127.0.0.1:15672
 *     [prod]
 *     host = rabbit1.example.com
 *     port = 15672
 *     username = admin
 *     password = s3cret
 *     vhost = orders
 *
 * Keys: url, host, port, username, password, vhost. A value runs from
 * after the '=' to the end of the line, surrounding blanks removed (a
 * password may hold '#'). Lines start with '#' or ';' for comments.
 */
#ifndef WR_CTL_CONN_H
#define WR_CTL_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/url.h"

#define WR_CTL_CONF_MAX (1024 * 1024) /* a bigger file is refused */
#define WR_CTL_CONF_LINE_MAX 4096
#define WR_CTL_SECTION_MAX 64

/* One layer: what it sets, NULL for what it leaves alone. */
struct wr_ctl_layer {
    char *url, *host, *port, *user, *password, *vhost;
};

struct wr_ctl_conn {
    struct wr_ctl_url url;
    char *user, *password, *vhost; /* owned */
};

/* Parses a whole file's text (len bytes, NULs included) and fills *out
 * with the keys of the section named `section` (owned copies; free with
 * wr_ctl_layer_free). *found tells whether the section exists. Every line
 * is checked, selected section or not. Returns 0, or -1 with a message
 * naming the line in err. */
int wr_ctl_conf_parse(const char *text, size_t len, const char *section,
                      struct wr_ctl_layer *out, bool *found, char *err, size_t errlen);

void wr_ctl_layer_free(struct wr_ctl_layer *l);

/* The default path of the file: $XDG_CONFIG_HOME/warren/warrenctl.conf,
 * else $HOME/.config/warren/warrenctl.conf; NULL if neither is set. The
 * caller frees it. */
char *wr_ctl_conf_path(void);

/* Resolves the four layers. config: a path, or NULL for the default one
 * (whose absence is no error); node: a section name, or NULL for
 * [default] if present. Returns 0, or -1 with a message in err. */
int wr_ctl_conn_resolve(const struct wr_ctl_layer *flags, const char *config, const char *node,
                        struct wr_ctl_conn *out, char *err, size_t errlen);

void wr_ctl_conn_free(struct wr_ctl_conn *c);

#endif
