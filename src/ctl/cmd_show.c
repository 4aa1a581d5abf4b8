/*
 * cmd_show.c - the read-only commands: "show" (one object) and "list" (a
 * collection, with its default columns, the server's sort and columns
 * parameters, every page fetched, and a client-side --filter).
 */
#include "config.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

int wr_ctl_cmd_show(struct wr_ctl *c)
{
    const char *noun = c->cmd->noun, *vh = c->conn.vhost, *name = wr_ctl_arg(c, "name");
    struct wr_ctl_buf path = {0}, what = {0};
    json_t *doc = NULL;
    int rc;

    if (!strcmp(noun, "overview")) {
        wr_ctl_buf_adds(&path, "/api/overview");
        wr_ctl_buf_adds(&what, "overview");
    } else if (!strcmp(noun, "whoami")) {
        wr_ctl_buf_adds(&path, "/api/whoami");
        wr_ctl_buf_adds(&what, "whoami");
    } else if (!strcmp(noun, "node")) {
        if (name) {
            wr_ctl_path(&path, "/api/nodes/%s", name);
            wr_ctl_what(&what, "node %s", name);
        } else {
            wr_ctl_buf_adds(&path, "/api/nodes");
            wr_ctl_buf_adds(&what, "nodes");
        }
    } else {
        wr_ctl_path(&path, "/api/queues/%s/%s", vh, name);
        wr_ctl_what(&what, "queue %s in vhost %s", name, vh);
    }
    rc = wr_ctl_call(c, "GET", wr_ctl_buf_str(&path), NULL, NULL, wr_ctl_buf_str(&what), NULL,
                     &doc);
    if (!rc && json_is_array(doc)) { /* /api/nodes: one node */
        json_t *first = json_incref(json_array_get(doc, 0));
        json_decref(doc);
        doc = first;
        if (!doc)
            rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "nodes: the broker listed none");
    }
    if (!rc)
        wr_ctl_out_object(&c->out, doc);
    json_decref(doc);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    return rc;
}

struct listing {
    const char *noun;
    const char *path; /* %s: the vhost, for the vhost's objects */
    const char *columns;
};

static const struct listing listings[] = {
    {"queues", "/api/queues/%s",
     "name,type,durable,messages,messages_ready,messages_unacknowledged,consumers"},
    {"exchanges", "/api/exchanges/%s", "name,type,durable,auto_delete,internal"},
    {"bindings", "/api/bindings/%s", "source,destination,destination_type,routing_key,arguments"},
    {"consumers", "/api/consumers/%s",
     "queue.name,consumer_tag,channel_details.name,ack_required,prefetch_count"},
    {"connections", "/api/connections", "name,user,vhost,state,channels"},
    {"channels", "/api/channels",
     "name,user,vhost,consumer_count,messages_unacknowledged,prefetch_count"},
    {"users", "/api/users", "name,tags"},
    {"vhosts", "/api/vhosts", "name,messages,messages_ready,messages_unacknowledged"},
    {"permissions", "/api/permissions", "user,vhost,configure,write,read"},
    {"topic-permissions", "/api/topic-permissions", "user,vhost,exchange,write,read"},
    {"plugins", "/api/plugins", "name,version,abi,exchange_types,description"},
    {NULL, NULL, NULL},
};

/* Splits "a,b,c" into a NULL-terminated array of copies. */
static char **split_columns(const char *s, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    char **v = wr_ctl_xmalloc((cap + 1) * sizeof(*v));
    *n = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len) {
            v[*n] = strndup(s, len);
            if (!v[*n])
                wr_ctl_oom();
            (*n)++;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    v[*n] = NULL;
    return v;
}

static bool has_column(char **v, const char *name)
{
    for (size_t i = 0; v[i]; i++)
        if (!strcmp(v[i], name))
            return true;
    return false;
}

static void free_columns(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Keeps the rows whose name (or, for objects without one, some shown
 * column) matches re. */
static void filter_rows(json_t *rows, const regex_t *re, char **cols, size_t ncols)
{
    for (size_t i = json_array_size(rows); i-- > 0;) {
        json_t *row = json_array_get(rows, i);
        json_t *name = json_object_get(row, "name");
        bool keep = false;
        if (json_is_string(name)) {
            keep = regexec(re, json_string_value(name), 0, NULL, 0) == 0;
        } else {
            for (size_t k = 0; k < ncols && !keep; k++) {
                struct wr_ctl_buf b = {0};
                wr_ctl_cell(wr_ctl_path_get(row, cols[k]), WR_CTL_RAW, false, &b);
                keep = regexec(re, wr_ctl_buf_str(&b), 0, NULL, 0) == 0;
                wr_ctl_buf_free(&b);
            }
        }
        if (!keep)
            json_array_remove(rows, i);
    }
}

int wr_ctl_cmd_list(struct wr_ctl *c)
{
    const struct listing *l = listings;
    const char *user_cols = wr_ctl_arg(c, "columns"), *sort = wr_ctl_arg(c, "sort");
    const char *filter = wr_ctl_arg(c, "filter");
    struct wr_ctl_buf path = {0}, query = {0}, what = {0};
    char **cols;
    size_t ncols;
    json_t *rows = NULL;
    regex_t re;
    int rc;

    while (strcmp(l->noun, c->cmd->noun))
        l++;
    if (filter) {
        int e = regcomp(&re, filter, REG_EXTENDED | REG_NOSUB);
        if (e) {
            char msg[128];
            regerror(e, &re, msg, sizeof(msg));
            return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--filter: %s", msg);
        }
    }
    cols = split_columns(user_cols ? user_cols : l->columns, &ncols);
    if (ncols == 0) {
        free_columns(cols);
        if (filter)
            regfree(&re);
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--columns: no column named");
    }
    if (strstr(l->path, "%s")) {
        wr_ctl_path(&path, l->path, c->conn.vhost);
        wr_ctl_buf_printf(&what, "list %s", l->noun);
        wr_ctl_what(&what, " in vhost %s", c->conn.vhost);
    } else {
        wr_ctl_buf_adds(&path, l->path);
        wr_ctl_buf_printf(&what, "list %s", l->noun);
    }
    if (sort) {
        wr_ctl_buf_adds(&query, "sort=");
        wr_ctl_pct_add(&query, sort);
    }
    if (user_cols) {
        /* the server cuts the items; "name" stays for --filter */
        wr_ctl_buf_printf(&query, "%scolumns=", query.len ? "&" : "");
        wr_ctl_pct_add(&query, user_cols);
        if (filter)
            wr_ctl_buf_adds(&query, "%2Cname");
    }
    rc = wr_ctl_list(c, wr_ctl_buf_str(&path), wr_ctl_buf_str(&query), wr_ctl_buf_str(&what),
                     &rows);
    if (!rc) {
        if (filter)
            filter_rows(rows, &re, cols, ncols);
        if (filter && user_cols && c->out.fmt == WR_CTL_JSON && !has_column(cols, "name")) {
            size_t i;
            json_t *row;
            json_array_foreach(rows, i, row) json_object_del(row, "name");
        }
        wr_ctl_out_rows(&c->out, rows, (const char *const *)cols, ncols);
    }
    json_decref(rows);
    free_columns(cols);
    if (filter)
        regfree(&re);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&query);
    wr_ctl_buf_free(&what);
    return rc;
}
