/*
 * cmd_queue.c - the job-queue commands, on the queue actions of the API
 * (POST /api/queues/V/Q/actions): queue peek (the head of a queue, nothing
 * removed), queue move (messages to another queue of the vhost) and dlq
 * replay (dead-lettered messages back to the queue each died in).
 *
 * The broker moves at most 10,000 messages a request, so move and replay
 * loop over requests of 1,000 until done, showing their progress on
 * standard error when it is a terminal. The broker removes each message
 * from the source in the journal write that adds it to the destination,
 * so a command cut short leaves every message in one queue or the other.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "ctl/value.h"

#define BATCH 1000       /* messages a move or replay request */
#define ACTION_MAX 10000 /* the most one request may ask for */

static json_t *obj(void)
{
    json_t *o = json_object();
    if (!o)
        wr_ctl_oom();
    return o;
}

static void set(json_t *o, const char *k, json_t *v)
{
    if (!v || json_object_set_new(o, k, v) < 0)
        wr_ctl_oom();
}

/* --count: 1..max; *n untouched when absent. Returns 0 or an exit status. */
static int count_arg(struct wr_ctl *c, long long max, long long *n)
{
    const char *s = wr_ctl_arg(c, "count");
    char *end;
    long long v;

    if (!s)
        return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < 1 || v > max)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--count: a number from 1 to %lld, not '%s'", max,
                           s);
    *n = v;
    return 0;
}

/* One action on queue q; *doc the answer (owned by the caller). */
static int action(struct wr_ctl *c, const char *q, json_t *body, const char *what,
                  const char *missing, json_t **doc)
{
    struct wr_ctl_buf path = {0};
    int rc;

    wr_ctl_path(&path, "/api/queues/%s/%s/actions", c->conn.vhost, q);
    rc = wr_ctl_call(c, "POST", wr_ctl_buf_str(&path), body, NULL, what, missing, doc);
    wr_ctl_buf_free(&path);
    return rc;
}

/* A non-negative integer field of an answer; -1 when missing or not one. */
static long long field(json_t *doc, const char *k)
{
    json_t *v = json_object_get(doc, k);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long long)json_integer_value(v)
                                                            : -1;
}

/* "stopped" of an answer: its text, or NULL when null or missing. */
static const char *stopped_of(json_t *doc)
{
    json_t *v = json_object_get(doc, "stopped");
    if (json_is_string(v))
        return json_string_value(v);
    return json_is_null(v) || !v ? NULL : "(the broker stopped without a reason)";
}

/* The progress line on a terminal, rewritten in place. */
struct progress {
    bool tty, shown;
    const char *verb;
};

static void progress(struct progress *p, long long done, long long total)
{
    char a[48], b[48];
    if (!p->tty)
        return;
    wr_ctl_thousands(done, a, sizeof(a));
    wr_ctl_thousands(total, b, sizeof(b));
    fprintf(stderr, "\r%s %s of %s\033[K", p->verb, a, b);
    fflush(stderr);
    p->shown = true;
}

static void progress_end(struct progress *p)
{
    if (p->shown)
        fputs("\r\033[K", stderr);
}

/* The totals: a sentence in a table, else an object. */
static void totals(struct wr_ctl *c, json_t *t, const char *sentence)
{
    if (c->out.fmt == WR_CTL_TABLE)
        fprintf(c->out.f, "%s\n", sentence);
    else
        wr_ctl_out_object(&c->out, t);
}

/* ---- peek ---- */

int wr_ctl_cmd_queue_peek(struct wr_ctl *c)
{
    /* the columns of get, so that the two read alike */
    static const char *const cols[] = {"exchange", "routing_key", "redelivered",
                                       "message_count", "payload_bytes", "payload_encoding",
                                       "payload"};
    const char *q = wr_ctl_arg(c, "name");
    struct wr_ctl_buf what = {0};
    long long n = 1;
    json_t *body, *doc = NULL;
    int rc;

    if ((rc = count_arg(c, ACTION_MAX, &n)))
        return rc;
    body = obj();
    set(body, "action", json_string("peek"));
    set(body, "count", json_integer(n));
    set(body, "encoding", json_string("auto"));
    wr_ctl_what(&what, "queue %s in vhost %s", q, c->conn.vhost);
    rc = action(c, q, body, wr_ctl_buf_str(&what), NULL, &doc);
    if (!rc && !json_is_array(doc))
        rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "peek at %s: unexpected answer (no array)",
                         wr_ctl_buf_str(&what));
    else if (!rc)
        wr_ctl_out_rows(&c->out, doc, cols, sizeof(cols) / sizeof(*cols));
    json_decref(doc);
    json_decref(body);
    wr_ctl_buf_free(&what);
    return rc;
}

/* ---- move ---- */

int wr_ctl_cmd_queue_move(struct wr_ctl *c)
{
    const char *from = wr_ctl_arg(c, "from"), *to = wr_ctl_arg(c, "to");
    struct progress pg = {isatty(STDERR_FILENO), false, "moved"};
    struct wr_ctl_buf what = {0}, line = {0};
    long long want = -1, moved = 0, remaining = -1;
    char *stopped = NULL;
    int rc;

    if ((rc = count_arg(c, LLONG_MAX, &want)))
        return rc;
    if (!strcmp(from, to))
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--from and --to name the same queue");
    wr_ctl_what(&what, "move from queue %s to queue %s in vhost %s", from, to, c->conn.vhost);
    while (want < 0 || moved < want) {
        long long n = want < 0 || want - moved > BATCH ? BATCH : want - moved, k = 0;
        json_t *body = obj(), *doc = NULL;
        set(body, "action", json_string("move"));
        set(body, "destination", json_string(to));
        set(body, "count", json_integer(n));
        /* a 404 may be about either queue: the broker's reason says which */
        rc = action(c, from, body, wr_ctl_buf_str(&what), "", &doc);
        json_decref(body);
        if (!rc && ((k = field(doc, "moved")) < 0 || field(doc, "remaining") < 0))
            rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: unexpected answer", wr_ctl_buf_str(&what));
        if (rc) {
            json_decref(doc);
            break;
        }
        moved += k;
        remaining = field(doc, "remaining");
        if (stopped_of(doc))
            stopped = wr_ctl_xstrdup(stopped_of(doc));
        else if (k == 0 && remaining > 0)
            stopped = wr_ctl_xstrdup("the broker moved none of the ready messages");
        json_decref(doc);
        if (stopped || remaining == 0)
            break;
        progress(&pg, moved, want >= 0 ? want : moved + remaining);
    }
    progress_end(&pg);
    if (rc && moved == 0) {
        wr_ctl_buf_free(&what);
        return rc;
    }
    json_t *t = obj();
    set(t, "moved", json_integer(moved));
    set(t, "remaining", json_integer(remaining));
    set(t, "stopped", stopped ? json_string(stopped) : json_null());
    wr_ctl_buf_printf(&line, "moved %lld message%s from ", moved, moved == 1 ? "" : "s");
    wr_ctl_what(&line, "%s to %s", from, to);
    wr_ctl_buf_printf(&line, " (%lld left in the source)", remaining);
    totals(c, t, wr_ctl_buf_str(&line));
    json_decref(t);
    if (stopped && !rc)
        rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s stopped after %lld message%s: %s",
                         wr_ctl_buf_str(&what), moved, moved == 1 ? "" : "s", stopped);
    free(stopped);
    wr_ctl_buf_free(&what);
    wr_ctl_buf_free(&line);
    return rc;
}

/* ---- dlq replay ---- */

static int replay_dry_run(struct wr_ctl *c, const char *q, long long want, const char *what)
{
    static const char *const cols[] = {"routing_key", "target", "reason"};
    json_t *body = obj(), *doc = NULL, *msgs;
    int rc;

    set(body, "action", json_string("replay"));
    set(body, "count", json_integer(want < 0 ? ACTION_MAX : want));
    set(body, "dry_run", json_true());
    rc = action(c, q, body, what, NULL, &doc);
    json_decref(body);
    if (rc)
        return rc;
    msgs = json_object_get(doc, "messages");
    if (!json_is_array(msgs)) {
        json_decref(doc);
        return wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: unexpected answer (no messages)", what);
    }
    if (c->out.fmt == WR_CTL_JSON)
        wr_ctl_out_object(&c->out, doc);
    else
        wr_ctl_out_rows(&c->out, msgs, cols, sizeof(cols) / sizeof(*cols));
    long long r = field(doc, "remaining");
    if (want < 0 && r > (long long)json_array_size(msgs))
        fprintf(stderr, "warrenctl: the first %zu of %lld messages shown\n", json_array_size(msgs),
                r);
    json_decref(doc);
    return 0;
}

/* Skipped messages stay at the head of the queue in their order, so each
 * request looks at them again before new ones: it asks for those known to
 * be skipped plus a batch, and the distinct messages looked at are the
 * replayed ones plus the skipped ones of the latest answer. */
int wr_ctl_cmd_dlq_replay(struct wr_ctl *c)
{
    const char *q = wr_ctl_arg(c, "queue");
    struct progress pg = {isatty(STDERR_FILENO), false, "replayed"};
    struct wr_ctl_buf what = {0}, line = {0};
    long long want = -1, replayed = 0, skipped = 0, remaining = -1;
    char *stopped = NULL;
    int rc;

    if ((rc = count_arg(c, wr_ctl_has(c, "dry-run") ? ACTION_MAX : LLONG_MAX, &want)))
        return rc;
    wr_ctl_what(&what, "queue %s in vhost %s", q, c->conn.vhost);
    if (wr_ctl_has(c, "dry-run")) {
        rc = replay_dry_run(c, q, want, wr_ctl_buf_str(&what));
        wr_ctl_buf_free(&what);
        return rc;
    }
    for (;;) {
        long long left = want < 0 || want - replayed - skipped > BATCH
                             ? BATCH
                             : want - replayed - skipped;
        long long n = skipped + left > ACTION_MAX ? ACTION_MAX : skipped + left, k = 0, s = 0;
        if (left <= 0)
            break;
        if (n <= skipped) {
            stopped = wr_ctl_xstrdup("too many messages that cannot be replayed at its head");
            break;
        }
        json_t *body = obj(), *doc = NULL;
        set(body, "action", json_string("replay"));
        set(body, "count", json_integer(n));
        set(body, "dry_run", json_false());
        rc = action(c, q, body, wr_ctl_buf_str(&what), NULL, &doc);
        json_decref(body);
        if (!rc && ((k = field(doc, "replayed")) < 0 || (s = field(doc, "skipped")) < 0 ||
                    field(doc, "remaining") < 0))
            rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "replay of %s: unexpected answer",
                             wr_ctl_buf_str(&what));
        if (rc) {
            json_decref(doc);
            break;
        }
        replayed += k;
        skipped = s;
        remaining = field(doc, "remaining");
        if (stopped_of(doc))
            stopped = wr_ctl_xstrdup(stopped_of(doc));
        json_decref(doc);
        if (stopped || k == 0 || remaining <= skipped)
            break;
        progress(&pg, replayed, want >= 0 ? want : replayed + remaining);
    }
    progress_end(&pg);
    if (rc && replayed == 0) {
        wr_ctl_buf_free(&what);
        return rc;
    }
    json_t *t = obj();
    set(t, "replayed", json_integer(replayed));
    set(t, "skipped", json_integer(skipped));
    set(t, "remaining", json_integer(remaining));
    set(t, "stopped", stopped ? json_string(stopped) : json_null());
    wr_ctl_buf_printf(&line, "replayed %lld message%s, skipped %lld (%lld left in ", replayed,
                      replayed == 1 ? "" : "s", skipped, remaining);
    wr_ctl_what(&line, "%s)", q);
    totals(c, t, wr_ctl_buf_str(&line));
    json_decref(t);
    if (stopped && !rc)
        rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "replay of %s stopped after %lld message%s: %s",
                         wr_ctl_buf_str(&what), replayed, replayed == 1 ? "" : "s", stopped);
    free(stopped);
    wr_ctl_buf_free(&what);
    wr_ctl_buf_free(&line);
    return rc;
}
