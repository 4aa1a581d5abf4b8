/*
 * move.c - moving ready messages between queues of a vhost, for
 * operators; see move.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/move.h"
#include "broker/publish.h"
#include "broker/vhost.h"
#include "core/log.h"
#include "wire/field.h"

static void stop_text(struct wr_move_result *r, const char *text)
{
    r->stopped = true;
    snprintf(r->why, sizeof(r->why), "%s", text);
}

/* r->why = before + 'name' + after */
static void stop(struct wr_move_result *r, const char *before, struct wr_str name,
                 const char *after)
{
    char esc[WR_LOG_ESC_MAX];
    r->stopped = true;
    snprintf(r->why, sizeof(r->why), "%s'%s'%s", before, WR_LOG_ESC(esc, name), after);
}

/* Publish a copy of m to dst through the default exchange. True when dst
 * took it; else r says why. */
static bool move_one(struct wr_queue *dst, const struct wr_msg *m, struct wr_publish_result *res,
                     struct wr_move_result *r)
{
    struct wr_vhost *vh = dst->vhost;
    struct wr_publish_opts o = {0};
    struct wr_str dname = wr_queue_name(dst);
    unsigned flags = m->flags & (WR_MSG_PERSISTENT | WR_MSG_EXT);
    struct wr_msg *nm = wr_msg_new(m->rkey->pool, WR_STR(""), dname, wr_msg_props(m), m->props_len,
                                   m->body_len, flags);
    uint8_t *body = wr_msg_body((struct wr_msg *)m);
    bool ok = false;

    if (!nm || !body) {
        stop(r, "out of memory, or a paged-out body could not be read, moving to ", dname, "");
        goto out;
    }
    memcpy(wr_msg_body(nm), body, m->body_len);
    if (wr_msg_ext(nm))
        wr_msg_ext(nm)->ttl_ms = wr_msg_ext(m) ? wr_msg_ext(m)->ttl_ms : -1;
    nm->priority = m->priority;
    nm->published_ms = m->published_ms; /* a move does not make it younger */
    if (wr_vhost_publish(vh, vh->default_exchange, nm, &o, res) < 0)
        stop(r, "out of memory publishing to ", dname, "");
    else if (res->journal_failed)
        stop(r, "the journal failed: the message could not be made durable in ", dname, "");
    else if (res->rejected)
        stop(r, "queue ", dname, " refused the message (x-overflow reject-publish)");
    else if (!res->route.n)
        stop(r, "queue ", dname, " is gone");
    else
        ok = true;
out:
    wr_msg_unref(nm);
    return ok;
}

void wr_queue_move(struct wr_queue *src, struct wr_queue *dst, uint32_t max,
                   struct wr_move_result *r)
{
    struct wr_publish_result res = {0};
    struct wr_qent e;

    memset(r, 0, sizeof(*r));
    wr_queue_ref(src);
    wr_queue_ref(dst);
    while (r->moved < max && !src->deleted && !dst->deleted && wr_queue_get(src, &e)) {
        if (!move_one(dst, e.m, &res, r)) {
            wr_queue_requeue_one(src, &e);
            break;
        }
        wr_queue_settled(src, e.m);
        r->moved++;
    }
    if (!r->stopped && dst->deleted)
        stop(r, "queue ", wr_queue_name(dst), " is gone");
    wr_publish_result_free(&res);
    wr_queue_unref(dst);
    wr_queue_unref(src);
}

bool wr_msg_death_queue(const struct wr_msg *m, struct wr_str *queue)
{
    struct wr_str h = wr_msg_headers(m);
    struct wr_fv v, first, q;

    if (!h.len)
        return false;
    if (wr_table_get(h, "x-death", &v) == 1 && v.type == 'A') {
        struct wr_rd rd = wr_rd_init(v.v.str.ptr, v.v.str.len);
        if (wr_array_next(&rd, &first) == 1 && first.type == 'F' &&
            wr_table_get(first.v.str, "queue", &q) == 1 && (q.type == 'S' || q.type == 'x') &&
            q.v.str.len) {
            *queue = q.v.str;
            return true;
        }
    }
    if (wr_table_get(h, "x-first-death-queue", &q) == 1 && (q.type == 'S' || q.type == 'x') &&
        q.v.str.len) {
        *queue = q.v.str;
        return true;
    }
    return false;
}

/* Where m goes, or NULL with *why set. */
static struct wr_queue *replay_target(struct wr_queue *src, const struct wr_msg *m,
                                      struct wr_str *name, const char **why)
{
    struct wr_queue *t;
    *name = (struct wr_str){"", 0};
    if (!wr_msg_death_queue(m, name)) {
        *why = "no x-death or x-first-death-queue header";
        return NULL;
    }
    t = wr_vhost_queue(src->vhost, *name);
    if (!t) {
        *why = "the queue it died in does not exist";
        return NULL;
    }
    if (t == src) {
        *why = "it died in this queue";
        return NULL;
    }
    *why = NULL;
    return t;
}

void wr_queue_replay(struct wr_queue *src, uint32_t max, bool dry_run, wr_replay_report_fn report,
                     void *ctx, struct wr_move_result *r)
{
    struct wr_publish_result res = {0};
    struct wr_qent *held = NULL, e;
    uint32_t nheld = 0;
    struct wr_str name;
    const char *why;

    memset(r, 0, sizeof(*r));
    if (dry_run) {
        struct wr_qent *a = max ? malloc((size_t)max * sizeof(*a)) : NULL;
        uint32_t n = a ? wr_queue_peek(src, a, max) : 0;
        for (uint32_t i = 0; i < n; i++) {
            bool go = replay_target(src, a[i].m, &name, &why) != NULL;
            if (report)
                report(ctx, a[i].m, name, why);
            if (go)
                r->moved++;
            else
                r->skipped++;
        }
        if (max && !a)
            stop_text(r, "out of memory");
        free(a);
        return;
    }
    /* Skipped messages are held aside and given back at the end, so the
     * walk goes past them and they keep their order at the head. */
    if (max && !(held = malloc((size_t)max * sizeof(*held)))) {
        stop_text(r, "out of memory");
        return;
    }
    wr_queue_ref(src);
    while (r->moved + r->skipped < max && !src->deleted && wr_queue_get(src, &e)) {
        struct wr_queue *t = replay_target(src, e.m, &name, &why);
        if (report)
            report(ctx, e.m, name, why);
        if (!t) {
            held[nheld++] = e;
            r->skipped++;
            continue;
        }
        if (!move_one(t, e.m, &res, r)) {
            wr_queue_requeue_one(src, &e);
            break;
        }
        wr_queue_settled(src, e.m);
        r->moved++;
    }
    if (nheld)
        wr_queue_requeue(src, held, nheld);
    wr_publish_result_free(&res);
    wr_queue_unref(src);
    free(held);
}
