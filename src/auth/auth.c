/*
 * auth.c - users and SASL; see auth.h.
 */
#include "config.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/hmap.h"
#include "core/list.h"
#include "wire/field.h"

struct wr_user {
    struct wr_hnode node;
    char *name;
    unsigned char salt[4];
    unsigned char hash[32];
    char *tags;
    char **vhosts;
    size_t nvhosts;
};

struct wr_users {
    struct wr_hmap by_name;
};

static void hash_pw(const unsigned char salt[4], struct wr_str pw, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 32;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, salt, 4);
    EVP_DigestUpdate(ctx, pw.ptr ? pw.ptr : "", pw.len);
    EVP_DigestFinal_ex(ctx, out, &n);
    EVP_MD_CTX_free(ctx);
}

struct wr_users *wr_users_new(void)
{
    struct wr_users *u = calloc(1, sizeof(*u));
    if (u)
        wr_hmap_init(&u->by_name);
    return u;
}

static void user_free(struct wr_user *x)
{
    for (size_t i = 0; i < x->nvhosts; i++)
        free(x->vhosts[i]);
    free(x->vhosts);
    free(x->tags);
    free(x->name);
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

static struct wr_user *user_get(struct wr_users *u, struct wr_str name)
{
    struct wr_hnode *n = wr_hmap_get(&u->by_name, name);
    return n ? wr_container_of(n, struct wr_user, node) : NULL;
}

int wr_users_add(struct wr_users *u, const char *name, const char *password, const char *tags)
{
    struct wr_user *x = calloc(1, sizeof(*x));
    if (!x || !(x->name = strdup(name)) || !(x->tags = strdup(tags ? tags : ""))) {
        if (x)
            user_free(x);
        return WR_ENOMEM;
    }
    if (RAND_bytes(x->salt, sizeof(x->salt)) != 1)
        memset(x->salt, 0x5a, sizeof(x->salt));
    hash_pw(x->salt, wr_str_c(password), x->hash);
    x->node.key = wr_str_c(x->name);
    struct wr_user *old = user_get(u, x->node.key);
    if (old) {
        wr_hmap_del(&u->by_name, &old->node);
        user_free(old);
    }
    if (wr_hmap_put(&u->by_name, &x->node) < 0) {
        user_free(x);
        return WR_ENOMEM;
    }
    return 0;
}

int wr_users_permit(struct wr_users *u, const char *name, const char *vhost)
{
    struct wr_user *x = user_get(u, wr_str_c(name));
    char **v;
    if (!x)
        return WR_ENOT_FOUND;
    v = realloc(x->vhosts, (x->nvhosts + 1) * sizeof(*v));
    if (!v)
        return WR_ENOMEM;
    x->vhosts = v;
    if (!(v[x->nvhosts] = strdup(vhost)))
        return WR_ENOMEM;
    x->nvhosts++;
    return 0;
}

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
                   struct wr_errbuf *err)
{
    struct wr_user *x = user_get(u, user);
    unsigned char h[32];
    if (x) {
        hash_pw(x->salt, pass, h);
        if (CRYPTO_memcmp(h, x->hash, sizeof(h)) == 0)
            return 0;
    }
    return wr_fail(err, WR_EACCESS_REFUSED,
                   "Login was refused using authentication mechanism PLAIN. For details see the "
                   "broker logfile.");
}

bool wr_users_may_access(struct wr_users *u, struct wr_str user, const char *vhost)
{
    struct wr_user *x = user_get(u, user);
    if (!x)
        return false;
    for (size_t i = 0; i < x->nvhosts; i++)
        if (strcmp(x->vhosts[i], vhost) == 0)
            return true;
    return false;
}
