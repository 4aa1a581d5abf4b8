/*
 * ctl.h - what warrenctl's commands share: the exit statuses, the parsed
 * command line, the connection to the API, and the helpers every command
 * uses to build a path, make a request (turning every failure into one
 * line on stderr and an exit status) and list a collection page by page.
 * cli.c parses the command line and dispatches; the commands live in
 * cmd_show.c (show, list), cmd_object.c (declare, delete, purge, publish,
 * get), cmd_admin.c (close, definitions, health-check, users) and
 * cmd_queue.c (queue peek and move, dlq replay).
 */
#ifndef WR_CTL_CTL_H
#define WR_CTL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ctl/buf.h"
#include "ctl/conn.h"
#include "ctl/http.h"
#include "ctl/out.h"

#define WR_CTL_EXIT_OK 0
#define WR_CTL_EXIT_BROKER 1  /* the broker refused or failed */
#define WR_CTL_EXIT_USAGE 2   /* bad command line or configuration */
#define WR_CTL_EXIT_CONNECT 3 /* the broker could not be reached */

#define WR_CTL_PAGE_SIZE 500 /* the API's largest page */

struct wr_ctl;

struct wr_ctl_cmd {
    const char *verb, *noun; /* noun NULL: a one-word command */
    /* The command's flags, by name: "name!" required, "arg*" repeatable. */
    const char *flags;
    const char *operand; /* a positional argument's name, or NULL */
    const char *summary;
    int (*run)(struct wr_ctl *c);
};

struct wr_ctl_opt {
    const char *name, *value; /* value NULL for a switch */
};

struct wr_ctl {
    const struct wr_ctl_cmd *cmd;
    struct wr_ctl_opt *opts; /* the command's flags, in order */
    size_t nopts;
    const char *operand;
    struct wr_ctl_conn conn;
    char *auth;     /* "user:password" */
    char *base_url; /* for messages */
    const char *tls_ca;
    struct wr_ctl_http *http;
    struct wr_ctl_out out;
    bool progress; /* requests show a progress line (wr_ctl_req.progress) */
};

/* The last value of a command flag, NULL if not given. */
const char *wr_ctl_arg(const struct wr_ctl *c, const char *name);
/* Whether a switch (or a flag) was given. */
bool wr_ctl_has(const struct wr_ctl *c, const char *name);
/* The values of a repeatable flag one by one: start *i at 0. */
const char *wr_ctl_arg_next(const struct wr_ctl *c, const char *name, size_t *i);

/* Prints "warrenctl: ..." on stderr; returns status. */
int wr_ctl_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends fmt with each %s replaced by the next argument percent-encoded
 * (paths, query values); %% is a '%'. */
void wr_ctl_path(struct wr_ctl_buf *out, const char *fmt, ...);
/* Appends fmt with each %s replaced by the next argument quoted for a
 * message ('name', control bytes escaped). */
void wr_ctl_what(struct wr_ctl_buf *out, const char *fmt, ...);

/* One request: body (borrowed; NULL for none) sent as JSON, headers extra
 * header lines. On success returns 0 and, if out, the parsed response
 * (NULL when empty; the caller owns it). Otherwise prints one line naming
 * `what` and the reason, and returns WR_CTL_EXIT_BROKER or
 * WR_CTL_EXIT_CONNECT. missing: the message for a 404, NULL for
 * "WHAT: not found", "" for "WHAT: " and the server's reason (when a 404
 * may be about one of two objects). */
int wr_ctl_call(struct wr_ctl *c, const char *method, const char *path, json_t *body,
                const char *headers, const char *what, const char *missing, json_t **out);

/* The same, with a raw body (definitions import). */
int wr_ctl_call_raw(struct wr_ctl *c, const char *method, const char *path, const char *body,
                    size_t len, const char *what, const char *missing, json_t **out);

/* Every item of a listing: path (no query) is fetched page by page
 * (page_size 500) when the endpoint pages, else at once; query is extra
 * query text ("sort=name&columns=a,b", encoded) or "". */
int wr_ctl_list(struct wr_ctl *c, const char *path, const char *query, const char *what,
                json_t **items);

/* Prints a confirmation line (table format only: scripts get silence). */
void wr_ctl_done(struct wr_ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The commands. */
int wr_ctl_cmd_show(struct wr_ctl *c);
int wr_ctl_cmd_list(struct wr_ctl *c);
int wr_ctl_cmd_declare(struct wr_ctl *c);
int wr_ctl_cmd_delete(struct wr_ctl *c);
int wr_ctl_cmd_purge(struct wr_ctl *c);
int wr_ctl_cmd_publish(struct wr_ctl *c);
int wr_ctl_cmd_get(struct wr_ctl *c);
int wr_ctl_cmd_close(struct wr_ctl *c);
int wr_ctl_cmd_definitions(struct wr_ctl *c);
int wr_ctl_cmd_health(struct wr_ctl *c);
int wr_ctl_cmd_change_password(struct wr_ctl *c);
int wr_ctl_cmd_set_tags(struct wr_ctl *c);
int wr_ctl_cmd_queue_peek(struct wr_ctl *c);
int wr_ctl_cmd_queue_move(struct wr_ctl *c);
int wr_ctl_cmd_dlq_replay(struct wr_ctl *c);

/* Shell completion ("warrenctl __complete WORD..."): words are the
 * command line after "warrenctl", the last one the word being completed
 * (maybe empty). Appends the candidates that start with it, one a line;
 * or, where the word is a name the broker knows, the line ":list NOUN"
 * followed by the global options given (one word a line) for the
 * listing; or ":files". */
void wr_ctl_complete(int n, char **words, struct wr_ctl_buf *out);

/* The command line: returns the exit status. */
int wr_ctl_main(int argc, char **argv);

#endif
