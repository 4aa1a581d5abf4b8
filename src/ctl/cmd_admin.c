/*
 * cmd_admin.c - the node administrator's commands: closing connections,
 * definitions export and import, health checks, and changing a user's
 * password or tags (both read the user first, so that what is not being
 * changed is kept: the tags, or the password hash).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl/ctl.h"

#define DEFS_MAX (256 * 1024 * 1024)
#define PASSWORD_MAX 4096

static int close_one(struct wr_ctl *c, const char *name, const char *reason)
{
    struct wr_ctl_buf path = {0}, what = {0}, hdr = {0};
    int rc;

    wr_ctl_path(&path, "/api/connections/%s", name);
    wr_ctl_what(&what, "connection %s", name);
    if (reason) {
        /* a header value: control bytes would end the header early */
        wr_ctl_buf_adds(&hdr, "X-Reason: ");
        for (const char *p = reason; *p; p++)
            wr_ctl_buf_addc(&hdr, (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
        wr_ctl_buf_adds(&hdr, "\r\n");
    }
    rc = wr_ctl_call(c, "DELETE", wr_ctl_buf_str(&path), NULL, reason ? hdr.p : NULL,
                     wr_ctl_buf_str(&what), NULL, NULL);
    if (!rc)
        wr_ctl_done(c, "closed %s", wr_ctl_buf_str(&what));
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    wr_ctl_buf_free(&hdr);
    return rc;
}

int wr_ctl_cmd_close(struct wr_ctl *c)
{
    const char *reason = wr_ctl_arg(c, "reason"), *user = wr_ctl_arg(c, "user");
    json_t *rows, *row;
    size_t i, closed = 0;
    int rc;

    if (!strcmp(c->cmd->noun, "connection"))
        return close_one(c, wr_ctl_arg(c, "name"), reason);
    rc = wr_ctl_list(c, "/api/connections", "columns=name,user", "list connections", &rows);
    if (rc)
        return rc;
    json_array_foreach(rows, i, row)
    {
        json_t *u = json_object_get(row, "user"), *n = json_object_get(row, "name");
        if (!json_is_string(u) || !json_is_string(n) || strcmp(json_string_value(u), user))
            continue;
        int r = close_one(c, json_string_value(n), reason);
        if (r == WR_CTL_EXIT_CONNECT) {
            rc = r;
            break;
        }
        if (r == 0)
            closed++;
        else if (!rc)
            rc = r;
    }
    json_decref(rows);
    if (rc != WR_CTL_EXIT_CONNECT) {
        struct wr_ctl_buf w = {0};
        wr_ctl_what(&w, "%s", user);
        wr_ctl_done(c, "closed %zu connection%s of user %s", closed, closed == 1 ? "" : "s",
                    wr_ctl_buf_str(&w));
        wr_ctl_buf_free(&w);
    }
    return rc;
}

/* ---- definitions ---- */

static int defs_export(struct wr_ctl *c)
{
    const char *file = wr_ctl_arg(c, "file"), *vh = wr_ctl_arg(c, "vhost");
    struct wr_ctl_buf path = {0}, what = {0};
    json_t *doc = NULL;
    int rc;

    if (vh) {
        wr_ctl_path(&path, "/api/definitions/%s", vh);
        wr_ctl_what(&what, "definitions of vhost %s", vh);
    } else {
        wr_ctl_buf_adds(&path, "/api/definitions");
        wr_ctl_buf_adds(&what, "definitions");
    }
    rc = wr_ctl_call(c, "GET", wr_ctl_buf_str(&path), NULL, NULL, wr_ctl_buf_str(&what), NULL,
                     &doc);
    if (!rc) {
        bool out = !file || !strcmp(file, "-");
        FILE *f = out ? stdout : fopen(file, "w");
        if (!f) {
            rc = wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: %s", file, strerror(errno));
        } else {
            int bad = json_dumpf(doc, f, JSON_INDENT(2)) < 0 || fputc('\n', f) == EOF;
            if (!out)
                bad |= fclose(f) != 0;
            if (bad)
                rc = wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: write error", out ? "output" : file);
            else if (!out)
                wr_ctl_done(c, "exported %s to %s", wr_ctl_buf_str(&what), file);
        }
    }
    json_decref(doc);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    return rc;
}

static int defs_import(struct wr_ctl *c)
{
    const char *file = wr_ctl_arg(c, "file"), *vh = wr_ctl_arg(c, "vhost");
    struct wr_ctl_buf path = {0}, what = {0}, text = {0};
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    char chunk[65536];
    size_t n;
    json_error_t jerr;
    json_t *doc;
    int rc;

    if (!f)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: %s", file, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text.len <= DEFS_MAX)
        wr_ctl_buf_add(&text, chunk, n);
    if (f != stdin)
        fclose(f);
    if (text.len > DEFS_MAX) {
        wr_ctl_buf_free(&text);
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: too large", file);
    }
    /* checked here, so that a typo is reported with its line */
    if (!(doc = json_loadb(wr_ctl_buf_str(&text), text.len, 0, &jerr)) || !json_is_object(doc)) {
        if (doc)
            rc = wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: a JSON object expected", file);
        else
            rc = wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: line %d: %s", file, jerr.line, jerr.text);
        json_decref(doc);
        wr_ctl_buf_free(&text);
        return rc;
    }
    json_decref(doc);
    if (vh) {
        wr_ctl_path(&path, "/api/definitions/%s", vh);
        wr_ctl_what(&what, "import of definitions into vhost %s", vh);
    } else {
        wr_ctl_buf_adds(&path, "/api/definitions");
        wr_ctl_buf_adds(&what, "import of definitions");
    }
    c->progress = true; /* a big file takes a while to send and to import */
    rc = wr_ctl_call_raw(c, "POST", wr_ctl_buf_str(&path), wr_ctl_buf_str(&text), text.len,
                         wr_ctl_buf_str(&what), NULL, NULL);
    c->progress = false;
    if (!rc)
        wr_ctl_done(c, "imported %s", file);
    wr_ctl_buf_free(&text);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    return rc;
}

int wr_ctl_cmd_definitions(struct wr_ctl *c)
{
    return !strcmp(c->cmd->noun, "export") ? defs_export(c) : defs_import(c);
}

/* ---- health checks ---- */

int wr_ctl_cmd_health(struct wr_ctl *c)
{
    const char *noun = c->cmd->noun;
    struct wr_ctl_buf path = {0}, what = {0};
    json_t *doc = NULL;
    int rc;

    if (!strcmp(noun, "port-listener") && wr_ctl_port_parse(c->operand) < 0)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "port-listener: a port, not '%s'", c->operand);
    wr_ctl_buf_adds(&what, "health check ");
    wr_ctl_buf_adds(&what, noun);
    if (!strcmp(noun, "aliveness")) {
        wr_ctl_path(&path, "/api/aliveness-test/%s", c->conn.vhost);
        wr_ctl_what(&what, " of vhost %s", c->conn.vhost);
    } else if (!strcmp(noun, "port-listener")) {
        wr_ctl_path(&path, "/api/health/checks/port-listener/%s", c->operand);
        wr_ctl_buf_printf(&what, " %s", c->operand);
    } else {
        wr_ctl_buf_printf(&path, "/api/health/checks/%s", noun);
    }
    rc = wr_ctl_call(c, "GET", wr_ctl_buf_str(&path), NULL, NULL, wr_ctl_buf_str(&what), NULL,
                     &doc);
    if (!rc) {
        if (c->out.fmt == WR_CTL_JSON)
            wr_ctl_out_object(&c->out, doc);
        else
            fprintf(c->out.f, "ok\n");
    }
    json_decref(doc);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    return rc;
}

/* ---- users ---- */

/* Reads a password line from standard input, without echo on a terminal. */
static char *read_password(const char *user)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (tty) {
        fprintf(stderr, "New password for %s: ", user);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

/* GET /api/users/U; NULL (message printed, *rc set) on failure. */
static json_t *get_user(struct wr_ctl *c, const char *user, struct wr_ctl_buf *path,
                        struct wr_ctl_buf *what, int *rc)
{
    json_t *doc = NULL;
    wr_ctl_path(path, "/api/users/%s", user);
    wr_ctl_what(what, "user %s", user);
    *rc = wr_ctl_call(c, "GET", wr_ctl_buf_str(path), NULL, NULL, wr_ctl_buf_str(what), NULL,
                      &doc);
    if (!*rc && !json_is_object(doc)) {
        *rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: unexpected answer", wr_ctl_buf_str(what));
        json_decref(doc);
        return NULL;
    }
    return *rc ? NULL : doc;
}

static json_t *tags_of(json_t *user)
{
    json_t *t = json_object_get(user, "tags");
    return json_is_array(t) || json_is_string(t) ? json_incref(t) : json_string("");
}

int wr_ctl_cmd_change_password(struct wr_ctl *c)
{
    const char *user = wr_ctl_arg(c, "user"), *given = wr_ctl_arg(c, "password-new");
    struct wr_ctl_buf path = {0}, what = {0};
    char *pw = given ? wr_ctl_xstrdup(given) : read_password(user);
    json_t *doc, *body, *p;
    int rc;

    if (!pw)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "no new password on standard input");
    if (!*pw || strlen(pw) > PASSWORD_MAX || !(p = json_string(pw))) {
        free(pw);
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "the new password: 1 to %d bytes of UTF-8",
                           PASSWORD_MAX);
    }
    memset(pw, 0, strlen(pw));
    free(pw);
    if (!(doc = get_user(c, user, &path, &what, &rc))) {
        json_decref(p);
        wr_ctl_buf_free(&path);
        wr_ctl_buf_free(&what);
        return rc;
    }
    if (!(body = json_object()) || json_object_set_new(body, "password", p) < 0 ||
        json_object_set_new(body, "tags", tags_of(doc)) < 0)
        wr_ctl_oom();
    rc = wr_ctl_call(c, "PUT", wr_ctl_buf_str(&path), body, NULL, wr_ctl_buf_str(&what), NULL,
                     NULL);
    if (!rc)
        wr_ctl_done(c, "changed the password of %s", wr_ctl_buf_str(&what));
    json_decref(body);
    json_decref(doc);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    return rc;
}

int wr_ctl_cmd_set_tags(struct wr_ctl *c)
{
    const char *user = wr_ctl_arg(c, "user"), *tags = wr_ctl_arg(c, "tags");
    struct wr_ctl_buf path = {0}, what = {0};
    json_t *doc, *body, *t = json_string(tags);
    int rc;

    if (!t)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--tags: not UTF-8");
    if (!(doc = get_user(c, user, &path, &what, &rc))) {
        json_decref(t);
        wr_ctl_buf_free(&path);
        wr_ctl_buf_free(&what);
        return rc;
    }
    /* the hash as read keeps the password as it is */
    json_t *hash = json_object_get(doc, "password_hash");
    json_t *algo = json_object_get(doc, "hashing_algorithm");
    json_t *h = json_is_string(hash) ? json_incref(hash) : json_string("");
    if (!(body = json_object()) || json_object_set_new(body, "tags", t) < 0 ||
        json_object_set_new(body, "password_hash", h) < 0 ||
        (json_is_string(algo) && json_object_set(body, "hashing_algorithm", algo) < 0))
        wr_ctl_oom();
    rc = wr_ctl_call(c, "PUT", wr_ctl_buf_str(&path), body, NULL, wr_ctl_buf_str(&what), NULL,
                     NULL);
    if (!rc)
        wr_ctl_done(c, "set the tags of %s", wr_ctl_buf_str(&what));
    json_decref(body);
    json_decref(doc);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    return rc;
}
