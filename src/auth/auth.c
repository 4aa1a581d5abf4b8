/*
 * auth.c - users, tags, permissions and SASL; see auth.h.
 *
 * Neighbours: passwd.c (hashes), perm.c (compiled patterns). A user holds
 * two hash tables of its own: permission entries by vhost name, and topic
 * permissions by (vhost, exchange). Nothing here is per message except
 * wr_vperm_allows and wr_user_topic_allows, which callers cache.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/perm.h"
#include "core/hmap.h"
#include "core/list.h"
#include "wire/field.h"

struct wr_vperm {
    struct wr_hnode node; /* user->perms, key = vhost name */
    char *vhost;
    struct wr_perm_re *re[3]; /* configure, write, read */
    const struct wr_user *ext; /* a backend's user: ask its backend instead */
};

struct topic_perm {
    struct wr_hnode node; /* user->topics, key = composite(vhost, exchange) */
    char *key;
    struct wr_str vhost, exchange;
    struct wr_perm_re *write, *read;
};

struct wr_user {
    struct wr_hnode node; /* users->by_name */
    char *name;
    uint32_t name_len;
    enum wr_passwd_algo algo;
    char *hash;
    uint32_t hash_len;
    char *tags;
    uint32_t tags_len;
    struct wr_hmap perms;
    struct wr_hmap topics;
    /* NULL: a user of the table. Else a user a backend let in, owned by
     * its connection; perms then caches the vhosts the backend allowed. */
    const struct wr_auth_backend *backend;
};

struct wr_users {
    struct wr_hmap by_name;
    uint64_t gen;
};

static char *dup_bytes(struct wr_str s)
{
    char *p = malloc((size_t)s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

/* ---- the table ---- */

struct wr_users *wr_users_new(void)
{
    struct wr_users *u = calloc(1, sizeof(*u));
    if (u)
        wr_hmap_init(&u->by_name);
    return u;
}

static void vperm_free(struct wr_vperm *p)
{
    for (int i = 0; i < 3; i++)
        wr_perm_re_free(p->re[i]);
    free(p->vhost);
    free(p);
}

static void topic_free(struct topic_perm *t)
{
    wr_perm_re_free(t->write);
    wr_perm_re_free(t->read);
    free(t->key);
    free(t);
}

static void user_free(struct wr_user *x)
{
    struct wr_hnode *n, *nx;
    size_t it;
    for (n = wr_hmap_first(&x->perms, &it); n; n = nx) {
        nx = wr_hmap_next(&x->perms, &it, n);
        vperm_free(wr_container_of(n, struct wr_vperm, node));
    }
    wr_hmap_free(&x->perms);
    for (n = wr_hmap_first(&x->topics, &it); n; n = nx) {
        nx = wr_hmap_next(&x->topics, &it, n);
        topic_free(wr_container_of(n, struct topic_perm, node));
    }
    wr_hmap_free(&x->topics);
    free(x->name);
    free(x->hash);
    free(x->tags);
    free(x);
}

void wr_users_free(struct wr_users *u)
{
    struct wr_hnode *n, *nx;
    size_t it;
    if (!u)
        return;
    for (n = wr_hmap_first(&u->by_name, &it); n; n = nx) {
        nx = wr_hmap_next(&u->by_name, &it, n);
        user_free(wr_container_of(n, struct wr_user, node));
    }
    wr_hmap_free(&u->by_name);
    free(u);
}

uint64_t wr_users_generation(const struct wr_users *u)
{
    return u->gen;
}

struct wr_user *wr_users_get(struct wr_users *u, struct wr_str name)
{
    struct wr_hnode *n = wr_hmap_get(&u->by_name, name);
    return n ? wr_container_of(n, struct wr_user, node) : NULL;
}

size_t wr_users_count(const struct wr_users *u)
{
    return u->by_name.n;
}

struct wr_user *wr_users_next(struct wr_users *u, size_t *it, struct wr_user *prev)
{
    struct wr_hnode *n = prev ? wr_hmap_next(&u->by_name, it, &prev->node)
                              : wr_hmap_first(&u->by_name, it);
    return n ? wr_container_of(n, struct wr_user, node) : NULL;
}

/* ---- users ---- */

int wr_users_put_hash(struct wr_users *u, struct wr_str name, enum wr_passwd_algo algo,
                      struct wr_str hash, struct wr_str tags, struct wr_errbuf *err)
{
    struct wr_user *x = wr_users_get(u, name);
    char *h, *t;

    if (wr_passwd_inspect(algo, hash.ptr, hash.len) == WR_PASSWD_NOT_BASE64)
        return wr_fail(err, WR_EPRECONDITION_FAILED, "password_hash is not base64");
    h = dup_bytes(hash);
    t = dup_bytes(tags);
    if (!h || !t) {
        free(h);
        free(t);
        return wr_fail(err, WR_ENOMEM, "out of memory");
    }
    if (!x) {
        if (!(x = calloc(1, sizeof(*x))) || !(x->name = dup_bytes(name))) {
            free(x);
            free(h);
            free(t);
            return wr_fail(err, WR_ENOMEM, "out of memory");
        }
        x->name_len = name.len;
        x->node.key = (struct wr_str){x->name, x->name_len};
        wr_hmap_init(&x->perms);
        wr_hmap_init(&x->topics);
        if (wr_hmap_put(&u->by_name, &x->node) < 0) {
            user_free(x);
            free(h);
            free(t);
            return wr_fail(err, WR_ENOMEM, "out of memory");
        }
    }
    free(x->hash);
    free(x->tags);
    x->algo = algo;
    x->hash = h;
    x->hash_len = hash.len;
    x->tags = t;
    x->tags_len = tags.len;
    u->gen++;
    return 0;
}

int wr_users_put_password(struct wr_users *u, struct wr_str name, struct wr_str password,
                          struct wr_str tags, struct wr_errbuf *err)
{
    char b64[WR_PASSWD_B64_MAX];
    if (wr_passwd_hash(WR_PASSWD_DEFAULT, password.ptr, password.len, b64, sizeof(b64)) < 0)
        return wr_fail(err, WR_EINTERNAL, "cannot hash the password");
    return wr_users_put_hash(u, name, WR_PASSWD_DEFAULT, wr_str_c(b64), tags, err);
}

int wr_users_delete(struct wr_users *u, struct wr_str name)
{
    struct wr_user *x = wr_users_get(u, name);
    if (!x)
        return WR_ENOT_FOUND;
    wr_hmap_del(&u->by_name, &x->node);
    user_free(x);
    u->gen++;
    return 0;
}

struct wr_str wr_user_name(const struct wr_user *x)
{
    return (struct wr_str){x->name, x->name_len};
}

struct wr_str wr_user_tags(const struct wr_user *x)
{
    return (struct wr_str){x->tags, x->tags_len};
}

bool wr_user_has_tag(const struct wr_user *x, const char *tag)
{
    size_t n = strlen(tag);
    const char *p = x->tags, *end = x->tags + x->tags_len;
    while (p < end) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        const char *e = q ? q : end;
        const char *a = p;
        while (a < e && *a == ' ')
            a++;
        while (e > a && e[-1] == ' ')
            e--;
        if ((size_t)(e - a) == n && memcmp(a, tag, n) == 0)
            return true;
        p = q ? q + 1 : end;
    }
    return false;
}

enum wr_passwd_algo wr_user_hash_algo(const struct wr_user *x)
{
    return x->algo;
}

struct wr_str wr_user_hash(const struct wr_user *x)
{
    return (struct wr_str){x->hash, x->hash_len};
}

/* ---- permissions ---- */

int wr_users_set_permissions(struct wr_users *u, struct wr_str user, struct wr_str vhost,
                             struct wr_str configure, struct wr_str write, struct wr_str read,
                             struct wr_errbuf *err)
{
    struct wr_user *x = wr_users_get(u, user);
    const struct wr_str pats[3] = {configure, write, read};
    struct wr_vperm *p;
    struct wr_hnode *old;

    if (!x)
        return wr_fail(err, WR_ENOT_FOUND, "no user '%.*s'", (int)user.len, user.ptr);
    if (!(p = calloc(1, sizeof(*p))) || !(p->vhost = dup_bytes(vhost))) {
        free(p);
        return wr_fail(err, WR_ENOMEM, "out of memory");
    }
    for (int i = 0; i < 3; i++) {
        if (!(p->re[i] = wr_perm_re_compile(pats[i].ptr, pats[i].len, err))) {
            vperm_free(p);
            return err->code;
        }
    }
    p->node.key = (struct wr_str){p->vhost, vhost.len};
    if ((old = wr_hmap_get(&x->perms, p->node.key)) != NULL) {
        wr_hmap_del(&x->perms, old);
        vperm_free(wr_container_of(old, struct wr_vperm, node));
    }
    if (wr_hmap_put(&x->perms, &p->node) < 0) {
        vperm_free(p);
        return wr_fail(err, WR_ENOMEM, "out of memory");
    }
    u->gen++;
    return 0;
}

int wr_users_clear_permissions(struct wr_users *u, struct wr_str user, struct wr_str vhost)
{
    struct wr_user *x = wr_users_get(u, user);
    struct wr_hnode *n = x ? wr_hmap_get(&x->perms, vhost) : NULL;
    if (!n)
        return WR_ENOT_FOUND;
    wr_hmap_del(&x->perms, n);
    vperm_free(wr_container_of(n, struct wr_vperm, node));
    u->gen++;
    return 0;
}

/* A backend's user: the vhost is asked once, and the answer kept until
 * the backend says its answers changed (wr_user_external_forget). */
static const struct wr_vperm *external_vperm(const struct wr_user *x, struct wr_str vhost)
{
    struct wr_user *mx = (struct wr_user *)(uintptr_t)x; /* the cache only */
    struct wr_vperm *p;
    struct wr_str name = {x->name, x->name_len};
    if (!x->backend->vhost(x->backend->ctx, name, vhost))
        return NULL;
    if (!(p = calloc(1, sizeof(*p))) || !(p->vhost = malloc((size_t)vhost.len + 1))) {
        free(p);
        return NULL;
    }
    memcpy(p->vhost, vhost.ptr, vhost.len);
    p->vhost[vhost.len] = '\0';
    p->node.key = (struct wr_str){p->vhost, vhost.len};
    p->ext = x;
    if (wr_hmap_put(&mx->perms, &p->node) < 0) {
        vperm_free(p);
        return NULL;
    }
    return p;
}

const struct wr_vperm *wr_user_vperm(const struct wr_user *x, struct wr_str vhost)
{
    struct wr_hnode *n = wr_hmap_get((struct wr_hmap *)&x->perms, vhost);
    if (!n && x->backend)
        return external_vperm(x, vhost);
    return n ? wr_container_of(n, struct wr_vperm, node) : NULL;
}

bool wr_vperm_allows(const struct wr_vperm *p, enum wr_perm_op op, const char *kind,
                     struct wr_str name)
{
    if (p->ext) {
        const struct wr_user *x = p->ext;
        return x->backend->resource(x->backend->ctx, (struct wr_str){x->name, x->name_len},
                                    (struct wr_str){p->vhost, (uint32_t)strlen(p->vhost)}, kind,
                                    name, op);
    }
    return wr_perm_re_match(p->re[op], name.ptr, name.len);
}

struct wr_str wr_vperm_pattern(const struct wr_vperm *p, enum wr_perm_op op)
{
    size_t len = 0;
    const char *s = p->re[op] ? wr_perm_re_pattern(p->re[op], &len) : "";
    return (struct wr_str){s, (uint32_t)len};
}

/* Topic permissions are keyed by the vhost's length, the vhost and the
 * exchange, so ("a", "bc") and ("ab", "c") differ. */
#define TOPIC_KEY_MAX (4 + 255 + 255)

static size_t topic_key(char *buf, struct wr_str vhost, struct wr_str exchange)
{
    if (vhost.len > 255 || exchange.len > 255)
        return 0;
    wr_store32((uint8_t *)buf, vhost.len);
    memcpy(buf + 4, vhost.ptr, vhost.len);
    memcpy(buf + 4 + vhost.len, exchange.ptr, exchange.len);
    return 4 + (size_t)vhost.len + exchange.len;
}

int wr_users_set_topic_permissions(struct wr_users *u, struct wr_str user, struct wr_str vhost,
                                   struct wr_str exchange, struct wr_str write,
                                   struct wr_str read, struct wr_errbuf *err)
{
    struct wr_user *x = wr_users_get(u, user);
    char key[TOPIC_KEY_MAX];
    size_t klen = topic_key(key, vhost, exchange);
    struct topic_perm *t;
    struct wr_hnode *old;

    if (!x)
        return wr_fail(err, WR_ENOT_FOUND, "no user '%.*s'", (int)user.len, user.ptr);
    if (!klen)
        return wr_fail(err, WR_EPRECONDITION_FAILED, "vhost or exchange name too long");
    if (!(t = calloc(1, sizeof(*t))) || !(t->key = malloc(klen))) {
        free(t);
        return wr_fail(err, WR_ENOMEM, "out of memory");
    }
    memcpy(t->key, key, klen);
    t->node.key = (struct wr_str){t->key, (uint32_t)klen};
    t->vhost = (struct wr_str){t->key + 4, vhost.len};
    t->exchange = (struct wr_str){t->key + 4 + vhost.len, exchange.len};
    t->write = wr_perm_re_compile_expanded(write.ptr, write.len, x->name, x->name_len,
                                           vhost.ptr, vhost.len, err);
    t->read = t->write ? wr_perm_re_compile_expanded(read.ptr, read.len, x->name, x->name_len,
                                                     vhost.ptr, vhost.len, err)
                       : NULL;
    if (!t->write || !t->read) {
        topic_free(t);
        return err->code;
    }
    if ((old = wr_hmap_get(&x->topics, t->node.key)) != NULL) {
        wr_hmap_del(&x->topics, old);
        topic_free(wr_container_of(old, struct topic_perm, node));
    }
    if (wr_hmap_put(&x->topics, &t->node) < 0) {
        topic_free(t);
        return wr_fail(err, WR_ENOMEM, "out of memory");
    }
    u->gen++;
    return 0;
}

int wr_users_clear_topic_permissions(struct wr_users *u, struct wr_str user, struct wr_str vhost,
                                     const struct wr_str *exchange)
{
    struct wr_user *x = wr_users_get(u, user);
    struct wr_hnode *n, *nx;
    size_t it;
    int found = 0;

    if (!x)
        return WR_ENOT_FOUND;
    for (n = wr_hmap_first(&x->topics, &it); n; n = nx) {
        struct topic_perm *t = wr_container_of(n, struct topic_perm, node);
        nx = wr_hmap_next(&x->topics, &it, n);
        if (!wr_str_eq(t->vhost, vhost) || (exchange && !wr_str_eq(t->exchange, *exchange)))
            continue;
        wr_hmap_del(&x->topics, n);
        topic_free(t);
        found = 1;
    }
    if (!found)
        return WR_ENOT_FOUND;
    u->gen++;
    return 0;
}

bool wr_user_topic_allows(const struct wr_user *x, struct wr_str vhost, struct wr_str exchange,
                          enum wr_perm_op op, struct wr_str routing_key)
{
    char key[TOPIC_KEY_MAX];
    size_t klen;
    struct wr_hnode *n;
    const struct topic_perm *t;

    if (x->backend)
        return x->backend->topic(x->backend->ctx, (struct wr_str){x->name, x->name_len}, vhost,
                                 exchange, routing_key, op);
    if (!x->topics.n || !(klen = topic_key(key, vhost, exchange)))
        return true;
    n = wr_hmap_get((struct wr_hmap *)&x->topics, (struct wr_str){key, (uint32_t)klen});
    if (!n)
        return true;
    t = wr_container_of(n, struct topic_perm, node);
    return wr_perm_re_match(op == WR_PERM_READ ? t->read : t->write, routing_key.ptr,
                            routing_key.len);
}

void wr_users_visit(struct wr_users *u, const struct wr_perm_visitor *v)
{
    struct wr_user *x = NULL;
    size_t it = 0;
    while ((x = wr_users_next(u, &it, x)) != NULL) {
        struct wr_hnode *n;
        size_t j;
        for (n = wr_hmap_first(&x->perms, &j); n && v->perm; n = wr_hmap_next(&x->perms, &j, n)) {
            struct wr_vperm *p = wr_container_of(n, struct wr_vperm, node);
            v->perm(v->ctx, x, p->node.key, p);
        }
    }
    while ((x = wr_users_next(u, &it, x)) != NULL) {
        struct wr_hnode *n;
        size_t j;
        for (n = wr_hmap_first(&x->topics, &j); n && v->topic;
             n = wr_hmap_next(&x->topics, &j, n)) {
            struct topic_perm *t = wr_container_of(n, struct topic_perm, node);
            size_t wl, rl;
            const char *w = wr_perm_re_pattern(t->write, &wl);
            const char *r = wr_perm_re_pattern(t->read, &rl);
            v->topic(v->ctx, x, t->vhost, t->exchange, (struct wr_str){w, (uint32_t)wl},
                     (struct wr_str){r, (uint32_t)rl});
        }
    }
}

/* ---- logging in ---- */

int wr_sasl_parse(struct wr_str mech, struct wr_str resp, struct wr_str *user,
                  struct wr_str *pass)
{
    if (wr_str_eqc(mech, "PLAIN")) {
        /* RFC 4616: [authzid] NUL authcid NUL passwd. An authorization
         * identity would ask to act as another user, which nothing here
         * grants: RabbitMQ refuses any (even one naming the user itself),
         * and a NUL inside the password. Only NUL authcid NUL passwd. */
        const char *p = resp.ptr, *end = resp.ptr + resp.len;
        const char *n2;
        if (resp.len == 0 || p[0] != '\0')
            return WR_EACCESS_REFUSED;
        n2 = memchr(p + 1, 0, resp.len - 1);
        if (!n2 || memchr(n2 + 1, 0, (size_t)(end - n2 - 1)))
            return WR_EACCESS_REFUSED;
        *user = (struct wr_str){p + 1, (uint32_t)(n2 - p - 1)};
        *pass = (struct wr_str){n2 + 1, (uint32_t)(end - n2 - 1)};
        return 0;
    }
    if (wr_str_eqc(mech, "AMQPLAIN")) {
        /* A field table body with LOGIN and PASSWORD. */
        struct wr_fv l, pw;
        if (wr_table_validate((const uint8_t *)resp.ptr, resp.len) < 0 ||
            wr_table_get(resp, "LOGIN", &l) != 1 || wr_table_get(resp, "PASSWORD", &pw) != 1 ||
            l.type != 'S' || pw.type != 'S')
            return WR_EACCESS_REFUSED;
        *user = l.v.str;
        *pass = pw.v.str;
        return 0;
    }
    return WR_ENOT_IMPLEMENTED;
}

int wr_users_login(struct wr_users *u, struct wr_str user, struct wr_str pass,
                   struct wr_user **out, struct wr_errbuf *err)
{
    struct wr_user *x = wr_users_get(u, user);
    if (x && wr_passwd_check(x->algo, x->hash, x->hash_len, pass.ptr, pass.len)) {
        *out = x;
        return 0;
    }
    return wr_fail(err, WR_EACCESS_REFUSED,
                   "Login was refused using authentication mechanism PLAIN. For details see the "
                   "broker logfile.");
}

/* ---- users from an authentication backend ---- */

struct wr_user *wr_user_external_new(const struct wr_auth_backend *be, struct wr_str name,
                                     struct wr_str tags)
{
    struct wr_user *x = calloc(1, sizeof(*x));
    if (!x || !(x->name = malloc((size_t)name.len + 1)) ||
        !(x->tags = malloc((size_t)tags.len + 1)) || !(x->hash = strdup(""))) {
        if (x) {
            free(x->name);
            free(x->tags);
        }
        free(x);
        return NULL;
    }
    memcpy(x->name, name.ptr, name.len);
    x->name[name.len] = '\0';
    x->name_len = name.len;
    memcpy(x->tags, tags.ptr, tags.len);
    x->tags[tags.len] = '\0';
    x->tags_len = tags.len;
    x->backend = be;
    wr_hmap_init(&x->perms);
    wr_hmap_init(&x->topics);
    return x;
}

void wr_user_external_free(struct wr_user *x)
{
    if (x && x->backend)
        user_free(x);
}

bool wr_user_is_external(const struct wr_user *x)
{
    return x && x->backend;
}

void wr_user_external_forget(struct wr_user *x)
{
    struct wr_hnode *n, *nx;
    size_t it;
    if (!x || !x->backend)
        return;
    for (n = wr_hmap_first(&x->perms, &it); n; n = nx) {
        nx = wr_hmap_next(&x->perms, &it, n);
        wr_hmap_del(&x->perms, n);
        vperm_free(wr_container_of(n, struct wr_vperm, node));
    }
}

void wr_users_touch(struct wr_users *u)
{
    u->gen++;
}

int wr_auth_login(struct wr_users *u, const struct wr_auth_backend *const *order, size_t n,
                  struct wr_str user, struct wr_str pass, struct wr_user **out,
                  struct wr_errbuf *err)
{
    static const struct wr_auth_backend *const internal_only[] = {NULL};
    if (!order || n == 0) {
        order = internal_only;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        char tags[512];
        const struct wr_auth_backend *be = order[i];
        if (!be) {
            if (wr_users_login(u, user, pass, out, err) == 0)
                return 0;
            continue;
        }
        tags[0] = '\0';
        if (be->login(be->ctx, user, pass, tags, sizeof tags) == 1) {
            tags[sizeof tags - 1] = '\0';
            *out = wr_user_external_new(be, user, wr_str_c(tags));
            if (*out)
                return 0;
            return wr_fail(err, WR_EINTERNAL, "out of memory");
        }
    }
    return wr_fail(err, WR_EACCESS_REFUSED,
                   "Login was refused using authentication mechanism PLAIN. For details see the "
                   "broker logfile.");
}
