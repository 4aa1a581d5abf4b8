/*
 * api.c - the requests of warrenctl's commands (ctl.h): paths with their
 * names percent-encoded, one request with every failure turned into one
 * line on stderr and an exit status, and listings fetched page by page.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

int wr_ctl_fail(int status, const char *fmt, ...)
{
    va_list ap;
    fputs("warrenctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

void wr_ctl_done(struct wr_ctl *c, const char *fmt, ...)
{
    va_list ap;
    if (c->out.fmt != WR_CTL_TABLE)
        return;
    va_start(ap, fmt);
    vfprintf(c->out.f, fmt, ap);
    va_end(ap);
    fputc('\n', c->out.f);
}

static void quoted(struct wr_ctl_buf *out, const char *s)
{
    wr_ctl_buf_addc(out, '\'');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            wr_ctl_buf_printf(out, "\\x%02x", *p);
        else
            wr_ctl_buf_addc(out, (char)*p);
    }
    wr_ctl_buf_addc(out, '\'');
}

static void vformat(struct wr_ctl_buf *out, bool pct, const char *fmt, va_list ap)
{
    for (const char *p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            const char *s = va_arg(ap, const char *);
            if (pct)
                wr_ctl_pct_add(out, s);
            else
                quoted(out, s);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            wr_ctl_buf_addc(out, '%');
            p++;
        } else {
            wr_ctl_buf_addc(out, *p);
        }
    }
}

void wr_ctl_path(struct wr_ctl_buf *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(out, true, fmt, ap);
    va_end(ap);
}

void wr_ctl_what(struct wr_ctl_buf *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(out, false, fmt, ap);
    va_end(ap);
}

/* The server's reason: "reason" (or "error") of a JSON body, else the
 * body's first line, control bytes escaped and cut at 300 bytes. */
static void reason_of(const struct wr_ctl_reply *r, struct wr_ctl_buf *out)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL), *v = NULL;
    if (json_is_object(j)) {
        v = json_object_get(j, "reason");
        if (!json_is_string(v))
            v = json_object_get(j, "error");
    }
    if (json_is_string(v)) {
        wr_ctl_cell(v, WR_CTL_RAW, false, out);
    } else {
        size_t n = strcspn(r->body, "\r\n");
        struct wr_ctl_buf tmp = {0};
        wr_ctl_buf_add(&tmp, r->body, n > 300 ? 300 : n);
        json_t *s = json_stringn(wr_ctl_buf_str(&tmp), tmp.len);
        if (s)
            wr_ctl_cell(s, WR_CTL_RAW, false, out);
        json_decref(s);
        wr_ctl_buf_free(&tmp);
    }
    json_decref(j);
}

static int refused(struct wr_ctl *c, const struct wr_ctl_reply *r, const char *what,
                   const char *missing)
{
    struct wr_ctl_buf why = {0};
    reason_of(r, &why);
    const char *reason = why.len ? wr_ctl_buf_str(&why) : "no reason given";
    switch (r->status) {
    case 401:
        if (!strcmp(reason, "Login failed"))
            wr_ctl_fail(WR_CTL_EXIT_BROKER,
                        "%s: login refused for user '%s' at %s (401: bad username or password)",
                        what, c->conn.user, c->base_url);
        else
            wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: not authorised (401: %s)", what, reason);
        break;
    case 403:
        wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: access refused (403: %s)", what, reason);
        break;
    case 404:
        if (missing && !*missing && why.len)
            wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: %s", what, reason);
        else if (missing && *missing)
            wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s", missing);
        else
            wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: not found", what);
        break;
    default:
        wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: %s (%d)", what, reason, r->status);
    }
    wr_ctl_buf_free(&why);
    return WR_CTL_EXIT_BROKER;
}

static int call(struct wr_ctl *c, struct wr_ctl_req *rq, const char *what, const char *missing,
                json_t **out)
{
    struct wr_ctl_reply r;
    struct wr_ctl_buf err = {0};
    int rc;

    if (out)
        *out = NULL;
    rq->auth = c->auth;
    if (wr_ctl_http_do(c->http, rq, &r, &err) < 0) {
        wr_ctl_fail(WR_CTL_EXIT_CONNECT, "%s: cannot reach the broker at %s: %s", what, c->base_url,
                    wr_ctl_buf_str(&err));
        wr_ctl_buf_free(&err);
        return WR_CTL_EXIT_CONNECT;
    }
    if (r.status < 200 || r.status > 299) {
        rc = refused(c, &r, what, missing);
        wr_ctl_reply_free(&r);
        return rc;
    }
    rc = WR_CTL_EXIT_OK;
    if (out && r.len) {
        json_error_t jerr;
        if (!(*out = json_loadb(r.body, r.len, JSON_DECODE_ANY, &jerr)))
            rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: the broker's answer is not JSON: %s", what,
                             jerr.text);
    }
    wr_ctl_reply_free(&r);
    return rc;
}

int wr_ctl_call(struct wr_ctl *c, const char *method, const char *path, json_t *body,
                const char *headers, const char *what, const char *missing, json_t **out)
{
    struct wr_ctl_req rq = {.method = method, .target = path, .headers = headers};
    char *text = NULL;
    int rc;

    if (body) {
        if (!(text = json_dumps(body, JSON_COMPACT)))
            wr_ctl_oom();
        rq.body = text;
        rq.body_len = strlen(text);
    }
    rc = call(c, &rq, what, missing, out);
    free(text);
    return rc;
}

int wr_ctl_call_raw(struct wr_ctl *c, const char *method, const char *path, const char *body,
                    size_t len, const char *what, const char *missing, json_t **out)
{
    struct wr_ctl_req rq = {
        .method = method, .target = path, .body = body, .body_len = len, .progress = c->progress};
    return call(c, &rq, what, missing, out);
}

int wr_ctl_list(struct wr_ctl *c, const char *path, const char *query, const char *what,
                json_t **items)
{
    json_t *all = json_array();
    if (!all)
        wr_ctl_oom();
    *items = NULL;
    for (long page = 1;; page++) {
        struct wr_ctl_buf p = {0};
        json_t *doc;
        wr_ctl_buf_printf(&p, "%s?page=%ld&page_size=%d%s%s", path, page, WR_CTL_PAGE_SIZE,
                          *query ? "&" : "", query);
        int rc = wr_ctl_call(c, "GET", wr_ctl_buf_str(&p), NULL, NULL, what, NULL, &doc);
        wr_ctl_buf_free(&p);
        if (rc) {
            json_decref(all);
            return rc;
        }
        if (json_is_array(doc)) { /* an endpoint that does not page */
            json_array_extend(all, doc);
            json_decref(doc);
            break;
        }
        json_t *list = json_object_get(doc, "items");
        json_t *count = json_object_get(doc, "page_count");
        if (!json_is_array(list) || !json_is_integer(count)) {
            json_decref(doc);
            json_decref(all);
            return wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: unexpected answer (no items)", what);
        }
        json_array_extend(all, list);
        bool last = page >= json_integer_value(count) || json_array_size(list) == 0;
        json_decref(doc);
        if (last)
            break;
    }
    *items = all;
    return WR_CTL_EXIT_OK;
}
