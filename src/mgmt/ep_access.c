/*
 * ep_access.c - management API: who is asking (whoami), vhosts, users,
 * permissions and topic permissions, and definitions export and import.
 *
 * What RabbitMQ 3.10.8 answers (asked directly), and what we answer:
 *  - Every route here but /api/whoami and the vhost listing is for
 *    administrators, monitoring users included in the refusal (401 "Not
 *    administrator user"). A management or monitoring user lists the vhosts
 *    (a management user only those it has permissions on).
 *  - PUT /api/vhosts/V creates (201, and the acting user gets ".*" on all
 *    three) or updates (204). Description and tags are replaced by what the
 *    body says (absent: "" and none). They live in the definitions Warren
 *    keeps (store/defs.h), and are exported as the vhost's "metadata".
 *    {"tracing": true} is refused: Warren has no tracing.
 *  - DELETE /api/vhosts/V closes its connections (320 "vhost 'V' is down"),
 *    then deletes everything in it and every permission on it.
 *  - PUT /api/users/U needs "tags" (400 "tags_not_present"); "password" or
 *    "password_hash" (with "hashing_algorithm"), not both. Without either
 *    the user has no usable password, a new one as an existing one
 *    (RabbitMQ clears it too). An unknown hashing algorithm is refused
 *    (RabbitMQ stores it and the user can never log in).
 *  - DELETE /api/users/U closes its connections (320 "user 'U' is
 *    deleted") at once. bulk-delete checks every name first and deletes
 *    none when one is unknown (RabbitMQ deletes up to the unknown one).
 *  - PUT /api/permissions/V/U: 400 "vhost_or_user_not_found" for either
 *    missing (not 404), missing keys as "[{key_missing,write}]", a bad
 *    pattern 400 with PCRE2's reason. Topic permissions: GET and DELETE
 *    are about all the user's exchanges in the vhost; PUT is 201 when the
 *    user had none there.
 *  - GET /api/definitions/V of a missing vhost is 400 "vhost_not_found",
 *    POST to it 404 (RabbitMQ's two answers). The per-vhost document has
 *    no users, vhosts or permissions and no "vhost" keys; importing one
 *    puts everything into V whatever its entries say.
 *  - Imports are all or nothing (store/defs.h); the reason is the
 *    importer's one line.
 *  - /api/users takes page/page_size as /api/vhosts does (RabbitMQ 3.10
 *    ignores them there).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "auth/auth.h"
#include "auth/passwd.h"
#include "broker/broker.h"
#include "broker/vhost.h"
#include "core/log.h"
#include "core/utf8.h"
#include "mgmt/api.h"
#include "net/conn.h"
#include "store/defs.h"

#define NAME_MAX_LEN 255

/* ---- small helpers ---- */

/* A comma list of tags as a JSON array, spaces around each trimmed. */
static json_t *tags_array(struct wr_str t)
{
    json_t *a = json_array();
    uint32_t i = 0;
    while (a && i < t.len) {
        uint32_t j = i, s, e;
        while (j < t.len && t.ptr[j] != ',')
            j++;
        s = i;
        e = j;
        while (s < e && t.ptr[s] == ' ')
            s++;
        while (e > s && t.ptr[e - 1] == ' ')
            e--;
        if (e > s)
            json_array_append_new(a, wr_json_str((struct wr_str){t.ptr + s, e - s}));
        i = j + 1;
    }
    return a;
}

/* Tags in a body: "a,b", ["a", "b"], absent or null (none). A new JSON
 * array of trimmed, non-empty strings; NULL when answered (400). */
static json_t *body_tags(struct wr_mgmt_req *rq, json_t *v)
{
    json_t *a, *e;
    size_t i;
    if (!v || json_is_null(v))
        return json_array();
    if (json_is_string(v)) {
        if (memchr(json_string_value(v), '\0', json_string_length(v))) {
            wr_mgmt_error(rq, 400, "bad_request", "tags: holds a NUL byte");
            return NULL;
        }
        return tags_array((struct wr_str){json_string_value(v), (uint32_t)json_string_length(v)});
    }
    if (!json_is_array(v)) {
        wr_mgmt_error(rq, 400, "bad_request", "tags: not a string or a list of strings");
        return NULL;
    }
    if (!(a = json_array())) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return NULL;
    }
    json_array_foreach(v, i, e)
    {
        json_t *one;
        size_t k;
        json_t *t;
        if (!json_is_string(e) || json_string_length(e) > UINT32_MAX ||
            memchr(json_string_value(e), '\0', json_string_length(e))) {
            json_decref(a);
            wr_mgmt_error(rq, 400, "bad_request", "tags: not a string or a list of strings");
            return NULL;
        }
        one = tags_array((struct wr_str){json_string_value(e), (uint32_t)json_string_length(e)});
        json_array_foreach(one, k, t) json_array_append(a, t);
        json_decref(one);
    }
    return a;
}

/* A tags array joined as the user table keeps them ("a,b"); malloc'd. */
static char *tags_join(json_t *a, uint32_t *len)
{
    size_t n = 0, i;
    json_t *t;
    char *s, *p;
    json_array_foreach(a, i, t) n += json_string_length(t) + 1;
    if (n > UINT32_MAX || !(s = malloc(n + 1)))
        return NULL;
    p = s;
    json_array_foreach(a, i, t)
    {
        if (p != s)
            *p++ = ',';
        memcpy(p, json_string_value(t), json_string_length(t));
        p += json_string_length(t);
    }
    *p = '\0';
    *len = (uint32_t)(p - s);
    return s;
}

/* Required string fields: false when answered (400), with RabbitMQ's
 * "[{key_missing,a},{key_missing,b}]" for the missing ones. */
static bool need_strs(struct wr_mgmt_req *rq, json_t *body, const char *const *keys,
                      struct wr_str *out)
{
    char missing[256] = "";
    size_t n = 0;
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(body, keys[i]);
        if (!v) {
            n += (size_t)snprintf(missing + n, sizeof(missing) - n, "%s{key_missing,%s}",
                                  n ? "," : "", keys[i]);
            if (n >= sizeof(missing))
                n = sizeof(missing) - 1;
            continue;
        }
        if (!json_is_string(v) || json_string_length(v) > UINT32_MAX) {
            wr_mgmt_errorf(rq, 400, "bad_request", "%s: not a string", keys[i]);
            return false;
        }
        out[i] = (struct wr_str){json_string_value(v), (uint32_t)json_string_length(v)};
    }
    if (n) {
        wr_mgmt_errorf(rq, 400, "bad_request", "[%s]", missing);
        return false;
    }
    return true;
}

/* ---- whoami ---- */

static void whoami(struct wr_mgmt_req *rq)
{
    json_t *o = json_object();
    if (o) {
        wr_json_set(o, "name", wr_json_str(wr_user_name(rq->user)));
        wr_json_set(o, "tags", tags_array(wr_user_tags(rq->user)));
    }
    wr_mgmt_reply_json(rq, o);
}

/* ---- vhosts ---- */

/* The kept entry of a vhost or user (borrowed from `kept`), or NULL. */
static json_t *kept_entry(json_t *kept, const char *section, struct wr_str name)
{
    return json_object_getn(json_object_get(kept, section), name.ptr, name.len);
}

static json_t *vhost_json(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    struct wr_vhost *vh = obj;
    json_t *kept = ctx, *o = json_object(), *md, *desc, *tags, *cs;
    json_t *meta = json_object_get(kept_entry(kept, "vhosts", wr_str_c(vh->name)), "metadata");
    struct wr_hnode *n;
    size_t it;
    uint64_t ready = 0, unacked = 0;
    (void)rq;

    if (!o)
        return NULL;
    desc = json_object_get(meta, "description");
    desc = json_is_string(desc) ? json_incref(desc) : json_string("");
    tags = json_object_get(meta, "tags");
    if (json_is_array(tags))
        tags = json_deep_copy(tags);
    else if (json_is_string(tags))
        tags = tags_array(
            (struct wr_str){json_string_value(tags), (uint32_t)json_string_length(tags)});
    else
        tags = json_array();
    md = json_object();
    cs = json_object();
    if (md) {
        wr_json_set(md, "description", json_incref(desc));
        wr_json_set(md, "tags", json_incref(tags));
    }
    if (cs)
        wr_json_set(cs, wr_node_name(), json_string("running"));
    for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n)) {
        struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
        ready += q->ready;
        unacked += q->unacked;
    }
    bool ok = wr_json_set(o, "name", wr_json_str(wr_str_c(vh->name)));
    /* every value is set (or freed) whatever failed before it */
    ok &= wr_json_set(o, "description", desc);
    ok &= wr_json_set(o, "tags", tags);
    ok &= wr_json_set(o, "default_queue_type", json_string("undefined"));
    ok &= wr_json_set(o, "metadata", md);
    ok &= wr_json_set(o, "tracing", json_false());
    ok &= wr_json_set(o, "cluster_state", cs);
    ok &= wr_json_set(o, "messages", json_integer((json_int_t)(ready + unacked)));
    ok &= wr_json_set(o, "messages_ready", json_integer((json_int_t)ready));
    ok &= wr_json_set(o, "messages_unacknowledged", json_integer((json_int_t)unacked));
    ok &= wr_json_set(o, "message_stats", wr_mgmt_message_stats(&vh->st, WR_MGMT_STATS_CHANNEL));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void vhosts_list(struct wr_mgmt_req *rq)
{
    struct wr_hmap *m = &rq->b->vhosts;
    struct wr_mgmt_row *rows = calloc(m->n ? m->n : 1, sizeof(*rows));
    json_t *kept = wr_defs_kept_get(rq->b);
    struct wr_hnode *n;
    size_t it, k = 0;

    if (!rows || !kept) {
        free(rows);
        json_decref(kept);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    for (n = wr_hmap_first(m, &it); n; n = wr_hmap_next(m, &it, n)) {
        struct wr_vhost *vh = wr_container_of(n, struct wr_vhost, node);
        if (!wr_mgmt_vhost_visible(rq, vh))
            continue;
        rows[k].name = wr_str_c(vh->name);
        rows[k].obj = vh;
        k++;
    }
    wr_mgmt_list(rq, rows, k, vhost_json, kept);
    free(rows);
    json_decref(kept);
}

/* A name from the path that may become a vhost's: 1 to 255 bytes of
 * Unicode without NUL (it is written into JSON and AMQP short strings). */
static bool vhost_name_ok(struct wr_mgmt_req *rq, struct wr_str name)
{
    if (!name.len || name.len > NAME_MAX_LEN || memchr(name.ptr, '\0', name.len) ||
        !wr_utf8_strict(name.ptr, name.len)) {
        wr_mgmt_error(rq, 400, "bad_request",
                      "vhost name: 1 to 255 bytes of UTF-8 without NUL expected");
        return false;
    }
    return true;
}

/* Set the vhost's metadata in the kept definitions (its other kept keys,
 * limits, stay). False when answered (500). */
static bool vhost_meta_set(struct wr_mgmt_req *rq, struct wr_str name, json_t *desc, json_t *tags)
{
    json_t *kept = wr_defs_kept_get(rq->b), *vhosts, *e, *md;
    bool trivial = !json_string_length(desc) && !json_array_size(tags);
    int rc = -1;

    if (!kept)
        goto oom;
    e = kept_entry(kept, "vhosts", name);
    if (!e && trivial) { /* nothing to keep: the export writes the defaults */
        json_decref(kept);
        return true;
    }
    vhosts = json_object_get(kept, "vhosts");
    if (!json_is_object(vhosts)) {
        vhosts = json_object();
        if (!vhosts || json_object_set_new(kept, "vhosts", vhosts) < 0)
            goto oom;
    }
    if (!json_is_object(e)) {
        e = json_object();
        if (!e || json_object_setn_new(vhosts, name.ptr, name.len, e) < 0)
            goto oom;
    }
    md = json_pack("{s:O,s:O}", "description", desc, "tags", tags);
    if (!md || json_object_set_new(e, "metadata", md) < 0)
        goto oom;
    rc = wr_defs_kept_set(rq->b, kept);
oom:
    json_decref(kept);
    if (rc < 0)
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
    return rc == 0;
}

static void vhost_put(struct wr_mgmt_req *rq)
{
    struct wr_str name = rq->arg[0];
    struct wr_vhost *vh = wr_broker_vhost(rq->b, name);
    json_t *body, *tags, *desc;
    struct wr_str d;
    struct wr_errbuf err;
    bool tracing;

    if (!vh && !vhost_name_ok(rq, name))
        return;
    if (!(body = wr_mgmt_body(rq)))
        return;
    if (!wr_mgmt_field_str(rq, body, "description", "", &d) ||
        !wr_mgmt_field_bool(rq, body, "tracing", false, &tracing) ||
        !(tags = body_tags(rq, json_object_get(body, "tags")))) {
        json_decref(body);
        return;
    }
    desc = wr_json_str(d); /* d is the body's */
    json_decref(body);
    if (tracing) {
        json_decref(desc);
        json_decref(tags);
        wr_mgmt_error(rq, 400, "bad_request", "tracing: Warren does not trace messages");
        return;
    }
    if (!desc) {
        json_decref(tags);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if (vh) {
        if (vhost_meta_set(rq, name, desc, tags))
            wr_mgmt_reply_empty(rq, 204);
        json_decref(desc);
        json_decref(tags);
        return;
    }
    if (!(vh = wr_broker_vhost_add(rq->b, name))) {
        json_decref(desc);
        json_decref(tags);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    /* As RabbitMQ: whoever creates a vhost may use it. */
    if (wr_users_set_permissions(rq->b->users, wr_user_name(rq->user), name, WR_STR(".*"),
                                 WR_STR(".*"), WR_STR(".*"), &err) < 0) {
        json_decref(desc);
        json_decref(tags);
        wr_mgmt_refused(rq, &err);
        return;
    }
    if (vhost_meta_set(rq, name, desc, tags))
        wr_mgmt_reply_empty(rq, 201);
    json_decref(desc);
    json_decref(tags);
}

static void vhost_one(struct wr_mgmt_req *rq)
{
    struct wr_vhost *vh;
    json_t *kept;

    if (rq->method == WR_M_PUT) {
        vhost_put(rq);
        return;
    }
    if (!(vh = wr_broker_vhost(rq->b, rq->arg[0]))) {
        wr_mgmt_not_found(rq);
        return;
    }
    if (rq->method == WR_M_DELETE) {
        /* Connections first: their channels give back what they hold in
         * the vhost's queues, and nothing of theirs points at it after. */
        wr_conn_close_vhost(rq->srv, vh);
        wr_broker_vhost_delete(rq->b, vh);
        wr_defs_kept_forget_vhost(rq->b, rq->arg[0]);
        wr_mgmt_reply_empty(rq, 204);
        return;
    }
    if (!(kept = wr_defs_kept_get(rq->b))) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_mgmt_reply_json(rq, vhost_json(rq, vh, kept));
    json_decref(kept);
}

/* ---- permissions and topic permissions ---- */

struct perm_ent {
    const struct wr_user *user;
    struct wr_str vhost, exchange, write, read;
    const struct wr_vperm *p; /* NULL: a topic permission */
};

struct perm_walk {
    struct perm_ent *a;
    size_t n, cap;
    bool oom;
    const struct wr_str *vhost; /* only these, when not NULL */
    const struct wr_user *user;
};

static struct perm_ent *walk_add(struct perm_walk *w, const struct wr_user *x, struct wr_str vhost)
{
    if ((w->vhost && !wr_str_eq(*w->vhost, vhost)) || (w->user && w->user != x))
        return NULL;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct perm_ent *a = realloc(w->a, cap * sizeof(*a));
        if (!a) {
            w->oom = true;
            return NULL;
        }
        w->a = a;
        w->cap = cap;
    }
    memset(&w->a[w->n], 0, sizeof(w->a[0]));
    w->a[w->n].user = x;
    w->a[w->n].vhost = vhost;
    return &w->a[w->n++];
}

static void walk_perm(void *ctx, const struct wr_user *x, struct wr_str vhost,
                      const struct wr_vperm *p)
{
    struct perm_ent *e = walk_add(ctx, x, vhost);
    if (e)
        e->p = p;
}

static void walk_topic(void *ctx, const struct wr_user *x, struct wr_str vhost,
                       struct wr_str exchange, struct wr_str write, struct wr_str read)
{
    struct perm_ent *e = walk_add(ctx, x, vhost);
    if (e) {
        e->exchange = exchange;
        e->write = write;
        e->read = read;
    }
}

static json_t *perm_json(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    const struct perm_ent *e = obj;
    json_t *o = json_object();
    (void)rq;
    (void)ctx;
    if (!o || !wr_json_set(o, "user", wr_json_str(wr_user_name(e->user))) ||
        !wr_json_set(o, "vhost", wr_json_str(e->vhost))) {
        json_decref(o);
        return NULL;
    }
    if (e->p) {
        if (!wr_json_set(o, "configure", wr_json_str(wr_vperm_pattern(e->p, WR_PERM_CONFIGURE))) ||
            !wr_json_set(o, "write", wr_json_str(wr_vperm_pattern(e->p, WR_PERM_WRITE))) ||
            !wr_json_set(o, "read", wr_json_str(wr_vperm_pattern(e->p, WR_PERM_READ)))) {
            json_decref(o);
            return NULL;
        }
    } else if (!wr_json_set(o, "exchange", wr_json_str(e->exchange)) ||
               !wr_json_set(o, "write", wr_json_str(e->write)) ||
               !wr_json_set(o, "read", wr_json_str(e->read))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Collect permissions (topic: topic permissions) with the filters; false
 * when answered (out of memory). */
static bool perms_collect(struct wr_mgmt_req *rq, bool topic, const struct wr_str *vhost,
                          const struct wr_user *user, struct perm_walk *w)
{
    struct wr_perm_visitor v = {w, topic ? NULL : walk_perm, topic ? walk_topic : NULL};
    memset(w, 0, sizeof(*w));
    w->vhost = vhost;
    w->user = user;
    wr_users_visit(rq->b->users, &v);
    if (w->oom) {
        free(w->a);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return false;
    }
    return true;
}

static void perms_answer(struct wr_mgmt_req *rq, bool topic, const struct wr_str *vhost,
                         const struct wr_user *user)
{
    struct perm_walk w;
    struct wr_mgmt_row *rows;
    if (!perms_collect(rq, topic, vhost, user, &w))
        return;
    if (!(rows = calloc(w.n ? w.n : 1, sizeof(*rows)))) {
        free(w.a);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    for (size_t i = 0; i < w.n; i++) {
        rows[i].vhost = w.a[i].vhost;
        rows[i].name = wr_user_name(w.a[i].user);
        rows[i].obj = &w.a[i];
    }
    wr_mgmt_list(rq, rows, w.n, perm_json, NULL);
    free(rows);
    free(w.a);
}

static void perms_list(struct wr_mgmt_req *rq)
{
    perms_answer(rq, false, NULL, NULL);
}

static void topic_list(struct wr_mgmt_req *rq)
{
    perms_answer(rq, true, NULL, NULL);
}

static void vhost_perms(struct wr_mgmt_req *rq)
{
    if (!wr_broker_vhost(rq->b, rq->arg[0])) {
        wr_mgmt_not_found(rq);
        return;
    }
    perms_answer(rq, false, &rq->arg[0], NULL);
}

static void vhost_topic_perms(struct wr_mgmt_req *rq)
{
    if (!wr_broker_vhost(rq->b, rq->arg[0])) {
        wr_mgmt_not_found(rq);
        return;
    }
    perms_answer(rq, true, &rq->arg[0], NULL);
}

static void user_perms(struct wr_mgmt_req *rq)
{
    struct wr_user *u = wr_users_get(rq->b->users, rq->arg[0]);
    if (!u) {
        wr_mgmt_not_found(rq);
        return;
    }
    perms_answer(rq, false, NULL, u);
}

static void user_topic_perms(struct wr_mgmt_req *rq)
{
    struct wr_user *u = wr_users_get(rq->b->users, rq->arg[0]);
    if (!u) {
        wr_mgmt_not_found(rq);
        return;
    }
    perms_answer(rq, true, NULL, u);
}

/* /api/permissions/V/U */
static void perm_one(struct wr_mgmt_req *rq)
{
    static const char *const keys[] = {"configure", "write", "read", NULL};
    struct wr_str vname = rq->arg[0], uname = rq->arg[1], pat[3];
    struct wr_vhost *vh = wr_broker_vhost(rq->b, vname);
    struct wr_user *u = wr_users_get(rq->b->users, uname);
    struct wr_errbuf err;
    json_t *body;
    bool existed;

    if (rq->method == WR_M_PUT) {
        if (!(body = wr_mgmt_body(rq)))
            return;
        if (!need_strs(rq, body, keys, pat)) {
            json_decref(body);
            return;
        }
        if (!vh || !u) {
            json_decref(body);
            wr_mgmt_error(rq, 400, "bad_request", "vhost_or_user_not_found");
            return;
        }
        existed = wr_user_vperm(u, vname) != NULL;
        if (wr_users_set_permissions(rq->b->users, uname, vname, pat[0], pat[1], pat[2], &err) <
            0) {
            json_decref(body);
            wr_mgmt_refused(rq, &err);
            return;
        }
        json_decref(body);
        wr_mgmt_reply_empty(rq, existed ? 204 : 201);
        return;
    }
    if (!vh || !u || !wr_user_vperm(u, vname)) {
        wr_mgmt_not_found(rq);
        return;
    }
    if (rq->method == WR_M_DELETE) {
        wr_users_clear_permissions(rq->b->users, uname, vname);
        wr_mgmt_reply_empty(rq, 204);
        return;
    }
    struct perm_ent e = {.user = u, .vhost = wr_str_c(vh->name), .p = wr_user_vperm(u, vname)};
    wr_mgmt_reply_json(rq, perm_json(rq, &e, NULL));
}

/* /api/topic-permissions/V/U */
static void topic_one(struct wr_mgmt_req *rq)
{
    static const char *const keys[] = {"exchange", "write", "read", NULL};
    struct wr_str vname = rq->arg[0], uname = rq->arg[1], f[3];
    struct wr_vhost *vh = wr_broker_vhost(rq->b, vname);
    struct wr_user *u = wr_users_get(rq->b->users, uname);
    struct perm_walk w;
    struct wr_errbuf err;
    json_t *body, *a;
    size_t had;

    if (rq->method == WR_M_PUT) {
        if (!(body = wr_mgmt_body(rq)))
            return;
        if (!need_strs(rq, body, keys, f)) {
            json_decref(body);
            return;
        }
        if (!vh || !u) {
            json_decref(body);
            wr_mgmt_error(rq, 400, "bad_request", "vhost_or_user_not_found");
            return;
        }
        if (!perms_collect(rq, true, &vname, u, &w)) {
            json_decref(body);
            return;
        }
        had = w.n;
        free(w.a);
        if (wr_users_set_topic_permissions(rq->b->users, uname, vname, f[0], f[1], f[2], &err) <
            0) {
            json_decref(body);
            wr_mgmt_refused(rq, &err);
            return;
        }
        json_decref(body);
        wr_mgmt_reply_empty(rq, had ? 204 : 201);
        return;
    }
    if (!vh || !u) {
        wr_mgmt_not_found(rq);
        return;
    }
    if (rq->method == WR_M_DELETE) {
        if (wr_users_clear_topic_permissions(rq->b->users, uname, vname, NULL) < 0)
            wr_mgmt_not_found(rq);
        else
            wr_mgmt_reply_empty(rq, 204);
        return;
    }
    if (!perms_collect(rq, true, &vname, u, &w))
        return;
    if (!w.n) {
        free(w.a);
        wr_mgmt_not_found(rq);
        return;
    }
    a = json_array();
    for (size_t i = 0; a && i < w.n; i++)
        if (json_array_append_new(a, perm_json(rq, &w.a[i], NULL)) < 0) {
            json_decref(a);
            a = NULL;
        }
    free(w.a);
    wr_mgmt_reply_json(rq, a);
}

/* ---- users ---- */

static json_t *user_json(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    const struct wr_user *x = obj;
    struct wr_str hash = wr_user_hash(x);
    json_t *o = json_object(),
           *limits = json_object_get(kept_entry(ctx, "users", wr_user_name(x)), "limits");
    (void)rq;
    if (!o || !wr_json_set(o, "name", wr_json_str(wr_user_name(x))) ||
        !wr_json_set(o, "password_hash", wr_json_str(hash)) ||
        !wr_json_set(o, "hashing_algorithm",
                     json_string(wr_passwd_algo_name(wr_user_hash_algo(x)))) ||
        !wr_json_set(o, "tags", tags_array(wr_user_tags(x))) ||
        !wr_json_set(o, "limits", json_is_object(limits) ? json_incref(limits) : json_object())) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int ptr_cmp(const void *a, const void *b)
{
    const void *x = *(const void *const *)a, *y = *(const void *const *)b;
    return x < y ? -1 : x > y;
}

/* GET /api/users and /api/users/without-permissions */
static void users_answer(struct wr_mgmt_req *rq, bool without)
{
    struct wr_users *us = rq->b->users;
    size_t n = wr_users_count(us), k = 0, it = 0;
    struct wr_mgmt_row *rows = calloc(n ? n : 1, sizeof(*rows));
    const struct wr_user **with = NULL;
    json_t *kept = wr_defs_kept_get(rq->b);
    struct perm_walk w = {0};
    struct wr_user *x = NULL;

    if (!rows || !kept || (without && !perms_collect(rq, false, NULL, NULL, &w))) {
        free(rows);
        json_decref(kept);
        if (!rq->answered)
            wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if (without && w.n) {
        if (!(with = malloc(w.n * sizeof(*with)))) {
            free(rows);
            free(w.a);
            json_decref(kept);
            wr_mgmt_error(rq, 500, "internal_error", "out of memory");
            return;
        }
        for (size_t i = 0; i < w.n; i++)
            with[i] = w.a[i].user;
        qsort(with, w.n, sizeof(*with), ptr_cmp);
    }
    while ((x = wr_users_next(us, &it, x)) != NULL) {
        const struct wr_user *key = x;
        if (with && bsearch(&key, with, w.n, sizeof(*with), ptr_cmp))
            continue;
        rows[k].name = wr_user_name(x);
        rows[k].obj = x;
        k++;
    }
    wr_mgmt_list(rq, rows, k, user_json, kept);
    free(with);
    free(w.a);
    free(rows);
    json_decref(kept);
}

static void users_list(struct wr_mgmt_req *rq)
{
    users_answer(rq, false);
}

static void users_without(struct wr_mgmt_req *rq)
{
    users_answer(rq, true);
}

/* A user goes: its connections are closed at once (320), then it and its
 * permissions, and what was kept for it. */
static void user_delete(struct wr_mgmt_req *rq, struct wr_str name)
{
    wr_conn_close_user(rq->srv, name);
    wr_users_delete(rq->b->users, name);
    wr_defs_kept_forget_user(rq->b, name);
}

static void users_bulk_delete(struct wr_mgmt_req *rq)
{
    json_t *body = wr_mgmt_body(rq), *names, *v;
    size_t i;

    if (!body)
        return;
    names = json_object_get(body, "users");
    if (!names) {
        json_decref(body);
        wr_mgmt_error(rq, 400, "bad_request", "[{key_missing,users}]");
        return;
    }
    if (!json_is_array(names)) {
        json_decref(body);
        wr_mgmt_error(rq, 400, "bad_request", "users: not a list of names");
        return;
    }
    json_array_foreach(names, i, v)
    {
        struct wr_str n = {json_string_value(v), (uint32_t)json_string_length(v)};
        if (!json_is_string(v) || json_string_length(v) > UINT32_MAX) {
            json_decref(body);
            wr_mgmt_error(rq, 400, "bad_request", "users: not a list of names");
            return;
        }
        if (!wr_users_get(rq->b->users, n)) {
            char esc[4 * NAME_MAX_LEN + 4];
            if (n.len > NAME_MAX_LEN)
                n.len = NAME_MAX_LEN;
            wr_mgmt_errorf(rq, 400, "bad_request", "no_such_user: %s",
                           wr_log_esc(esc, sizeof(esc), n.ptr, n.len));
            json_decref(body);
            return;
        }
    }
    json_array_foreach(names, i, v)
        user_delete(rq, (struct wr_str){json_string_value(v), (uint32_t)json_string_length(v)});
    json_decref(body);
    wr_mgmt_reply_empty(rq, 204);
}

/* These names are other routes' (RabbitMQ matches them first). */
static bool reserved_user_route(struct wr_mgmt_req *rq, struct wr_str name)
{
    const char *allow;
    if (wr_str_eqc(name, "without-permissions"))
        allow = "HEAD, GET, OPTIONS";
    else if (wr_str_eqc(name, "bulk-delete"))
        allow = "POST, OPTIONS";
    else
        return false;
    evhttp_add_header(evhttp_request_get_output_headers(rq->r), "allow", allow);
    wr_mgmt_reply_empty(rq, 405);
    return true;
}

static void user_put(struct wr_mgmt_req *rq, struct wr_str name)
{
    json_t *body = wr_mgmt_body(rq), *tags, *pw, *hash, *algo;
    struct wr_errbuf err;
    enum wr_passwd_algo a = WR_PASSWD_DEFAULT;
    bool existed = wr_users_get(rq->b->users, name) != NULL;
    struct wr_str t;
    char *joined;
    int rc;

    if (!body)
        return;
    if (!existed && (!name.len || name.len > NAME_MAX_LEN)) {
        json_decref(body);
        wr_mgmt_error(rq, 400, "bad_request", "user name: 1 to 255 bytes expected");
        return;
    }
    if (!json_object_get(body, "tags")) {
        json_decref(body);
        wr_mgmt_error(rq, 400, "bad_request", "tags_not_present");
        return;
    }
    pw = json_object_get(body, "password");
    hash = json_object_get(body, "password_hash");
    algo = json_object_get(body, "hashing_algorithm");
    if (pw && hash) {
        json_decref(body);
        wr_mgmt_error(rq, 400, "bad_request", "both_password_and_password_hash_are_provided");
        return;
    }
    if ((pw && !json_is_string(pw)) || (hash && !json_is_string(hash)) ||
        (algo && !json_is_null(algo) && !json_is_string(algo))) {
        json_decref(body);
        wr_mgmt_error(rq, 400, "bad_request",
                      "password, password_hash and hashing_algorithm: strings expected");
        return;
    }
    if (json_is_string(algo) &&
        wr_passwd_algo_parse(json_string_value(algo), json_string_length(algo), &a) < 0) {
        wr_mgmt_errorf(rq, 400, "bad_request", "hashing_algorithm: unknown ('%.64s')",
                       json_string_value(algo));
        json_decref(body);
        return;
    }
    if (!(tags = body_tags(rq, json_object_get(body, "tags")))) {
        json_decref(body);
        return;
    }
    joined = tags_join(tags, &t.len);
    json_decref(tags);
    if (!joined) {
        json_decref(body);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    t.ptr = joined;
    if (pw)
        rc = wr_users_put_password(
            rq->b->users, name,
            (struct wr_str){json_string_value(pw), (uint32_t)json_string_length(pw)}, t, &err);
    else if (hash)
        rc = wr_users_put_hash(
            rq->b->users, name, a,
            (struct wr_str){json_string_value(hash), (uint32_t)json_string_length(hash)}, t, &err);
    else /* no usable password, as RabbitMQ leaves it */
        rc = wr_users_put_hash(rq->b->users, name, WR_PASSWD_DEFAULT, WR_STR(""), t, &err);
    free(joined);
    json_decref(body);
    if (rc < 0) {
        wr_mgmt_refused(rq, &err);
        return;
    }
    wr_mgmt_reply_empty(rq, existed ? 204 : 201);
}

static void user_one(struct wr_mgmt_req *rq)
{
    struct wr_str name = rq->arg[0];
    struct wr_user *u;
    json_t *kept;

    if (reserved_user_route(rq, name))
        return;
    if (rq->method == WR_M_PUT) {
        user_put(rq, name);
        return;
    }
    if (!(u = wr_users_get(rq->b->users, name))) {
        wr_mgmt_not_found(rq);
        return;
    }
    if (rq->method == WR_M_DELETE) {
        /* rq->user may be this one: not used after. */
        user_delete(rq, name);
        wr_mgmt_reply_empty(rq, 204);
        return;
    }
    if (!(kept = wr_defs_kept_get(rq->b))) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    wr_mgmt_reply_json(rq, user_json(rq, u, kept));
    json_decref(kept);
}

/* ---- definitions ---- */

static void defs_reply(struct wr_mgmt_req *rq, char *text)
{
    const char *dl = wr_mgmt_query(rq, "download");
    if (!text) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if (dl && *dl) {
        /* The browser's "download" link: a file name of safe characters. */
        char h[128] = "attachment; filename=";
        size_t n = strlen(h);
        for (const char *p = dl; *p && n + 1 < sizeof(h); p++)
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("._-", *p))
                h[n++] = *p;
        h[n] = '\0';
        evhttp_add_header(evhttp_request_get_output_headers(rq->r), "content-disposition", h);
    }
    wr_mgmt_reply_text(rq, "application/json", text, strlen(text));
    free(text);
}

/* Does an entry belong to the vhost? ("vhost", or the hex "vhost_raw" for
 * a name that is not Unicode proper: see store/defs.c.) */
static bool entry_in(json_t *e, struct wr_str vname)
{
    json_t *raw = json_object_get(e, "vhost_raw"), *v = json_object_get(e, "vhost");
    if (json_is_string(raw)) {
        static const char hexd[] = "0123456789abcdef";
        const char *h = json_string_value(raw);
        if (json_string_length(raw) != (size_t)vname.len * 2)
            return false;
        for (uint32_t i = 0; i < vname.len; i++) {
            uint8_t c = (uint8_t)vname.ptr[i];
            if ((h[2 * i] | 0x20) != hexd[c >> 4] || (h[2 * i + 1] | 0x20) != hexd[c & 15])
                return false;
        }
        return true;
    }
    return json_is_string(v) && json_string_length(v) == vname.len &&
           memcmp(json_string_value(v), vname.ptr, vname.len) == 0;
}

static const char *const vhost_sections[] = {"parameters", "policies", "queues",
                                             "exchanges",  "bindings", NULL};

/* GET /api/definitions/V: the vhost's part of the export, without "vhost". */
static char *export_vhost(struct wr_mgmt_req *rq, struct wr_str vname)
{
    char *text = wr_defs_export(rq->b), *out = NULL;
    json_t *all = text ? json_loads(text, JSON_ALLOW_NUL, NULL) : NULL, *doc = json_object();
    free(text);
    if (!all || !doc)
        goto done;
    if (json_object_set(doc, "rabbit_version", json_object_get(all, "rabbit_version")) < 0)
        goto done;
    for (size_t s = 0; vhost_sections[s]; s++) {
        json_t *src = json_object_get(all, vhost_sections[s]), *dst = json_array(), *e;
        size_t i;
        if (!dst || json_object_set_new(doc, vhost_sections[s], dst) < 0)
            goto done;
        json_array_foreach(src, i, e)
        {
            if (!entry_in(e, vname))
                continue;
            json_object_del(e, "vhost");
            json_object_del(e, "vhost_raw");
            if (json_array_append(dst, e) < 0)
                goto done;
        }
    }
    out = json_dumps(doc, JSON_COMPACT);
done:
    json_decref(all);
    json_decref(doc);
    return out;
}

/* A per-vhost document made global: only the vhost's sections, every
 * entry put into V. Returns JSON text (malloc'd), or NULL when answered. */
static char *import_vhost_doc(struct wr_mgmt_req *rq, const char *body, size_t len,
                              struct wr_str vname)
{
    json_error_t jerr;
    json_t *in = json_loadb(body, len, JSON_ALLOW_NUL, &jerr), *doc = NULL;
    char *out = NULL;

    if (!json_is_object(in)) {
        json_decref(in);
        wr_mgmt_errorf(rq, 400, "bad_request", "definitions: line %d, column %d: %s", jerr.line,
                       jerr.column, in ? "not a JSON object" : jerr.text);
        return NULL;
    }
    if (!(doc = json_object()))
        goto oom;
    for (size_t s = 0; vhost_sections[s]; s++) {
        json_t *a = json_object_get(in, vhost_sections[s]), *e;
        size_t i;
        if (!a)
            continue;
        if (json_is_array(a)) {
            json_array_foreach(a, i, e)
            {
                if (!json_is_object(e))
                    continue; /* the importer says which entry is wrong */
                json_object_del(e, "vhost_raw");
                if (json_object_set_new(e, "vhost", json_stringn(vname.ptr, vname.len)) < 0)
                    goto oom;
            }
        }
        if (json_object_set(doc, vhost_sections[s], a) < 0)
            goto oom;
    }
    if (!(out = json_dumps(doc, JSON_COMPACT)))
        goto oom;
    json_decref(in);
    json_decref(doc);
    return out;
oom:
    json_decref(in);
    json_decref(doc);
    wr_mgmt_error(rq, 500, "internal_error", "out of memory");
    return NULL;
}

/* POST: import a document (all or nothing). */
static void defs_import(struct wr_mgmt_req *rq, const struct wr_str *vname)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(rq->r);
    size_t n = in ? evbuffer_get_length(in) : 0;
    const char *body = n ? (const char *)evbuffer_pullup(in, -1) : "{}";
    char *made = NULL;
    struct wr_defs_err err;
    struct wr_defs *d;
    int rc;

    if (!n)
        n = 2;
    if (!body) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    if (vname) {
        if (!(made = import_vhost_doc(rq, body, n, *vname)))
            return;
        body = made;
        n = strlen(made);
    }
    d = wr_defs_parse(body, n, "definitions", &err);
    free(made);
    if (!d) {
        wr_mgmt_error(rq, 400, "bad_request", err.msg);
        return;
    }
    rc = wr_defs_import(rq->b, d, WR_DEFS_IMPORT, &err);
    wr_defs_free(d);
    if (rc == WR_ENOMEM)
        wr_mgmt_error(rq, 500, "internal_error", err.msg);
    else if (rc < 0)
        wr_mgmt_error(rq, 400, "bad_request", err.msg);
    else
        wr_mgmt_reply_empty(rq, 204);
}

static void defs_all(struct wr_mgmt_req *rq)
{
    if (rq->method == WR_M_POST)
        defs_import(rq, NULL);
    else
        defs_reply(rq, wr_defs_export(rq->b));
}

static void defs_vhost(struct wr_mgmt_req *rq)
{
    if (!wr_broker_vhost(rq->b, rq->arg[0])) {
        if (rq->method == WR_M_POST)
            wr_mgmt_error(rq, 404, "not_found", "vhost_not_found");
        else
            wr_mgmt_error(rq, 400, "bad_request", "vhost_not_found");
        return;
    }
    if (rq->method == WR_M_POST)
        defs_import(rq, &rq->arg[0]);
    else
        defs_reply(rq, export_vhost(rq, rq->arg[0]));
}

const struct wr_mgmt_route wr_mgmt_routes_access[] = {
    {"/api/whoami", WR_M_GET, WR_LV_MANAGEMENT, whoami},
    {"/api/vhosts", WR_M_GET, WR_LV_MANAGEMENT, vhosts_list},
    {"/api/vhosts/:", WR_M_GET | WR_M_PUT | WR_M_DELETE, WR_LV_ADMIN, vhost_one},
    {"/api/vhosts/:/permissions", WR_M_GET, WR_LV_ADMIN, vhost_perms},
    {"/api/vhosts/:/topic-permissions", WR_M_GET, WR_LV_ADMIN, vhost_topic_perms},
    {"/api/users", WR_M_GET, WR_LV_ADMIN, users_list},
    {"/api/users/without-permissions", WR_M_GET, WR_LV_ADMIN, users_without},
    {"/api/users/bulk-delete", WR_M_POST, WR_LV_ADMIN, users_bulk_delete},
    {"/api/users/:", WR_M_GET | WR_M_PUT | WR_M_DELETE, WR_LV_ADMIN, user_one},
    {"/api/users/:/permissions", WR_M_GET, WR_LV_ADMIN, user_perms},
    {"/api/users/:/topic-permissions", WR_M_GET, WR_LV_ADMIN, user_topic_perms},
    {"/api/permissions", WR_M_GET, WR_LV_ADMIN, perms_list},
    {"/api/permissions/:/:", WR_M_GET | WR_M_PUT | WR_M_DELETE, WR_LV_ADMIN, perm_one},
    {"/api/topic-permissions", WR_M_GET, WR_LV_ADMIN, topic_list},
    {"/api/topic-permissions/:/:", WR_M_GET | WR_M_PUT | WR_M_DELETE, WR_LV_ADMIN, topic_one},
    {"/api/definitions", WR_M_GET | WR_M_POST, WR_LV_ADMIN, defs_all},
    {"/api/definitions/:", WR_M_GET | WR_M_POST, WR_LV_ADMIN, defs_vhost},
    {NULL, 0, 0, NULL},
};
