/*
 * defs.c - definitions file; see defs.h.
 *
 * Arguments are written twice: as a JSON object a person (or RabbitMQ's
 * import) can read, and as "arguments_raw", the hex of the exact table
 * bytes, which is what loading uses so a redeclaration with the same
 * arguments stays equivalent byte for byte. Queues carry "warren_id", their
 * identity in the message journal.
 *
 * Names are byte strings that RabbitMQ's loose UTF-8 rule accepted (see
 * core/utf8.h), NUL bytes included. A name that is Unicode proper is
 * written as a JSON string (NUL as \u0000) and read back by its length;
 * one that is not (a UTF-16 surrogate, a value above U+10FFFF: JSON cannot
 * hold them) gets a readable escaped "name" and the exact bytes in hex as
 * "name_raw", which loading prefers. Same for "source", "destination" and
 * "routing_key" of bindings.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/vhost.h"
#include "core/version.h"
#include "core/log.h"
#include "core/utf8.h"
#include "store/defs.h"
#include "wire/field.h"

/* ---- table <-> JSON ---- */

static json_t *fv_json(const struct wr_fv *v);

static json_t *table_json(struct wr_str body)
{
    json_t *o = json_object();
    struct wr_rd r = wr_rd_init(body.ptr, body.len);
    struct wr_str k;
    struct wr_fv v;
    while (wr_table_next(&r, &k, &v) > 0) {
        char key[256];
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        json_object_set_new(o, key, fv_json(&v));
    }
    return o;
}

static json_t *fv_json(const struct wr_fv *v)
{
    int64_t i;
    if (wr_fv_int(v, &i))
        return json_integer(i);
    switch (v->type) {
    case 't': return json_boolean(v->v.t);
    case 'f': return json_real(v->v.f);
    case 'd': return json_real(v->v.d);
    case 'S':
    case 'x': return json_stringn(v->v.str.ptr ? v->v.str.ptr : "", v->v.str.len);
    case 'F': return table_json(v->v.str);
    case 'A': {
        json_t *a = json_array();
        struct wr_rd r = wr_rd_init(v->v.str.ptr, v->v.str.len);
        struct wr_fv e;
        while (wr_array_next(&r, &e) > 0)
            json_array_append_new(a, fv_json(&e));
        return a;
    }
    default: return json_null();
    }
}

static json_t *hex(struct wr_str s)
{
    static const char d[] = "0123456789abcdef";
    char *b = malloc((size_t)s.len * 2 + 1);
    json_t *j;
    if (!b)
        return json_null();
    for (uint32_t i = 0; i < s.len; i++) {
        b[2 * i] = d[(uint8_t)s.ptr[i] >> 4];
        b[2 * i + 1] = d[(uint8_t)s.ptr[i] & 15];
    }
    b[s.len * 2] = '\0';
    j = json_string(b);
    free(b);
    return j;
}

static int unhex(const char *h, uint8_t **out, uint32_t *len)
{
    size_t n = h ? strlen(h) : 0;
    uint8_t *b;
    if (n % 2)
        return WR_ESYNTAX;
    b = malloc(n / 2 + 1);
    if (!b)
        return WR_ENOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) {
            free(b);
            return WR_ESYNTAX;
        }
        b[i] = (uint8_t)v;
    }
    *out = b;
    *len = (uint32_t)(n / 2);
    return 0;
}

static void add_args(json_t *o, struct wr_str args)
{
    json_object_set_new(o, "arguments", table_json(args));
    json_object_set_new(o, "arguments_raw", hex(args));
}

/* A name under `key`, every byte of it (see the top of the file). */
static void add_name(json_t *o, const char *key, struct wr_str name)
{
    char raw_key[32], esc[WR_LOG_ESC_MAX];
    if (wr_utf8_strict(name.ptr, name.len)) {
        json_object_set_new(o, key, json_stringn(name.ptr ? name.ptr : "", name.len));
        return;
    }
    json_object_set_new(o, key, json_string(WR_LOG_ESC(esc, name)));
    snprintf(raw_key, sizeof(raw_key), "%s_raw", key);
    json_object_set_new(o, raw_key, hex(name));
}

/* ---- save ---- */

static bool predeclared(const struct wr_exchange *x)
{
    struct wr_str n = wr_exchange_name(x);
    return n.len == 0 || (n.len >= 4 && memcmp(n.ptr, "amq.", 4) == 0);
}

int wr_defs_save(const char *path, struct wr_hmap *vhosts, struct wr_errbuf *err)
{
    json_t *root = json_object(), *jv = json_array(), *jx = json_array(), *jq = json_array(),
           *jb = json_array();
    struct wr_hnode *vn, *n;
    size_t vit, it;
    char tmp[4200], dir[4200];
    int fd, dfd, rc = 0;
    char *text;

    json_object_set_new(root, "warren_version", json_string(WR_VERSION));
    for (vn = wr_hmap_first(vhosts, &vit); vn; vn = wr_hmap_next(vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        json_t *v = json_object();
        json_object_set_new(v, "name", json_string(vh->name));
        json_object_set_new(v, "warren_last_queue_id", json_integer((json_int_t)vh->last_queue_id));
        json_array_append_new(jv, v);
        for (n = wr_hmap_first(&vh->exchanges, &it); n; n = wr_hmap_next(&vh->exchanges, &it, n)) {
            struct wr_exchange *x = wr_container_of(n, struct wr_exchange, node);
            struct wr_list *b;
            if (!x->durable)
                continue;
            if (!predeclared(x)) {
                json_t *o = json_object();
                add_name(o, "name", wr_exchange_name(x));
                json_object_set_new(o, "vhost", json_string(vh->name));
                json_object_set_new(o, "type", json_string(x->type->name));
                json_object_set_new(o, "durable", json_true());
                json_object_set_new(o, "auto_delete", json_boolean(x->auto_delete));
                json_object_set_new(o, "internal", json_boolean(x->internal));
                add_args(o, x->args);
                json_array_append_new(jx, o);
            }
            wr_list_each(b, &x->bindings)
            {
                struct wr_binding *bd = wr_container_of(b, struct wr_binding, src_node);
                struct wr_str dname;
                json_t *o;
                if (bd->kind == WR_DEST_QUEUE) {
                    struct wr_queue *q = bd->dest;
                    if (!q->store_id)
                        continue;
                    dname = wr_queue_name(q);
                } else {
                    struct wr_exchange *dx = bd->dest;
                    if (!dx->durable)
                        continue;
                    dname = wr_exchange_name(dx);
                }
                o = json_object();
                add_name(o, "source", wr_exchange_name(x));
                json_object_set_new(o, "vhost", json_string(vh->name));
                add_name(o, "destination", dname);
                json_object_set_new(o, "destination_type",
                                    json_string(bd->kind == WR_DEST_QUEUE ? "queue" : "exchange"));
                add_name(o, "routing_key", bd->key);
                add_args(o, bd->args);
                json_array_append_new(jb, o);
            }
        }
        for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n)) {
            struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
            json_t *o;
            if (!q->store_id)
                continue;
            o = json_object();
            add_name(o, "name", wr_queue_name(q));
            json_object_set_new(o, "vhost", json_string(vh->name));
            json_object_set_new(o, "durable", json_true());
            json_object_set_new(o, "auto_delete", json_boolean(q->auto_delete));
            add_args(o, q->args);
            json_object_set_new(o, "warren_id", json_integer((json_int_t)q->store_id));
            json_array_append_new(jq, o);
        }
    }
    json_object_set_new(root, "vhosts", jv);
    json_object_set_new(root, "exchanges", jx);
    json_object_set_new(root, "queues", jq);
    json_object_set_new(root, "bindings", jb);
    text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return wr_fail(err, WR_EINTERNAL, "out of memory writing definitions");

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    snprintf(dir, sizeof(dir), "%s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = wr_fail(err, WR_EIO, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    {
        size_t len = strlen(text), off = 0;
        while (off < len) {
            ssize_t w = write(fd, text + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = wr_fail(err, WR_EIO, "cannot write %s: %s", tmp, strerror(errno));
                break;
            }
            off += (size_t)w;
        }
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = wr_fail(err, WR_EIO, "cannot sync %s: %s", tmp, strerror(errno));
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = wr_fail(err, WR_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc == 0) {
        dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) < 0)
                rc = wr_fail(err, WR_EIO, "cannot sync the data directory: %s", strerror(errno));
            close(dfd);
        }
    }
    if (rc < 0)
        unlink(tmp);
out:
    free(text);
    return rc;
}

/* ---- load ---- */

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* A name written by add_name: "<key>_raw" (hex, in *buf, which the caller
 * frees) when there is one, else the string's bytes, NUL included.
 * Returns 0, or WR_ESYNTAX when there is neither. */
static int get_name(json_t *o, const char *key, uint8_t **buf, struct wr_str *out)
{
    char raw_key[32];
    json_t *j;
    uint32_t len;
    snprintf(raw_key, sizeof(raw_key), "%s_raw", key);
    *buf = NULL;
    if (json_is_string(j = json_object_get(o, raw_key))) {
        if (unhex(json_string_value(j), buf, &len) < 0 || len > 255) {
            free(*buf);
            *buf = NULL;
            return WR_ESYNTAX;
        }
        *out = (struct wr_str){(const char *)*buf, len};
        return 0;
    }
    if (!json_is_string(j = json_object_get(o, key)) || json_string_length(j) > 255)
        return WR_ESYNTAX;
    *out = (struct wr_str){json_string_value(j), (uint32_t)json_string_length(j)};
    return 0;
}

/* A skipped definition, named as a log line may name it. */
static void skipped(const char *what, struct wr_str name, const char *why)
{
    char esc[WR_LOG_ESC_MAX];
    wr_log(WR_LOG_WARNING, "definitions: %s '%s' skipped: %s", what, WR_LOG_ESC(esc, name), why);
}

static struct wr_vhost *vhost_of(struct wr_hmap *vhosts, json_t *o)
{
    struct wr_hnode *n = wr_hmap_get(vhosts, wr_str_c(jstr(o, "vhost")));
    return n ? wr_container_of(n, struct wr_vhost, node) : NULL;
}

static int raw_args(json_t *o, uint8_t **buf, struct wr_str *args)
{
    uint32_t len = 0;
    int rc = unhex(json_string_value(json_object_get(o, "arguments_raw")), buf, &len);
    if (rc < 0)
        return rc;
    if (wr_table_validate(*buf, len) < 0) {
        free(*buf);
        *buf = NULL;
        return WR_ESYNTAX;
    }
    *args = (struct wr_str){(const char *)*buf, len};
    return 0;
}

int wr_defs_load(const char *path, struct wr_hmap *vhosts, struct wr_errbuf *err)
{
    json_error_t je;
    json_t *root, *o;
    size_t i;
    uint32_t nx = 0, nq = 0, nb = 0;

    if (access(path, F_OK) != 0 && errno == ENOENT)
        return 0;
    root = json_load_file(path, JSON_ALLOW_NUL, &je); /* names may hold \u0000 */
    if (!root)
        return wr_fail(err, WR_EIO, "cannot load %s: line %d: %s", path, je.line, je.text);

    json_array_foreach(json_object_get(root, "vhosts"), i, o)
    {
        struct wr_hnode *n = wr_hmap_get(vhosts, wr_str_c(jstr(o, "name")));
        if (n)
            wr_container_of(n, struct wr_vhost, node)->last_queue_id =
                (uint64_t)json_integer_value(json_object_get(o, "warren_last_queue_id"));
    }
    json_array_foreach(json_object_get(root, "exchanges"), i, o)
    {
        struct wr_vhost *vh = vhost_of(vhosts, o);
        struct wr_exchange_decl d;
        struct wr_exchange *x;
        struct wr_errbuf e2;
        uint8_t *buf = NULL, *nbuf = NULL;
        memset(&d, 0, sizeof(d));
        if (!vh || raw_args(o, &buf, &d.args) < 0)
            continue;
        if (get_name(o, "name", &nbuf, &d.name) < 0) {
            wr_log(WR_LOG_WARNING, "definitions: an exchange without a name skipped");
            free(buf);
            continue;
        }
        d.type = wr_str_c(jstr(o, "type"));
        d.durable = true;
        d.auto_delete = json_is_true(json_object_get(o, "auto_delete"));
        d.internal = json_is_true(json_object_get(o, "internal"));
        if (wr_vhost_exchange_declare(vh, &d, &x, &e2) == 0)
            nx++;
        else
            skipped("exchange", d.name, e2.text);
        free(nbuf);
        free(buf);
    }
    json_array_foreach(json_object_get(root, "queues"), i, o)
    {
        struct wr_vhost *vh = vhost_of(vhosts, o);
        struct wr_queue_decl d;
        struct wr_queue *q;
        struct wr_errbuf e2;
        uint8_t *buf = NULL, *nbuf = NULL;
        bool created;
        memset(&d, 0, sizeof(d));
        if (!vh || raw_args(o, &buf, &d.args) < 0)
            continue;
        /* An empty name would declare a server-named queue: never a
         * recovered one. */
        if (get_name(o, "name", &nbuf, &d.name) < 0 || d.name.len == 0) {
            wr_log(WR_LOG_WARNING, "definitions: a queue without a name skipped");
            free(nbuf);
            free(buf);
            continue;
        }
        d.durable = true;
        d.internal = true; /* server-named amq.gen- queues come back too */
        d.auto_delete = json_is_true(json_object_get(o, "auto_delete"));
        if (wr_vhost_queue_declare(vh, &d, &q, &created, &e2) == 0) {
            uint64_t id = (uint64_t)json_integer_value(json_object_get(o, "warren_id"));
            q->store_id = id;
            if (id > vh->last_queue_id)
                vh->last_queue_id = id;
            nq++;
        } else {
            skipped("queue", d.name, e2.text);
        }
        free(nbuf);
        free(buf);
    }
    json_array_foreach(json_object_get(root, "bindings"), i, o)
    {
        struct wr_vhost *vh = vhost_of(vhosts, o);
        struct wr_errbuf e2;
        uint8_t *buf = NULL, *sbuf = NULL, *dbuf = NULL, *kbuf = NULL;
        struct wr_str args, src, dest, key;
        if (!vh || raw_args(o, &buf, &args) < 0)
            continue;
        if (get_name(o, "source", &sbuf, &src) == 0 &&
            get_name(o, "destination", &dbuf, &dest) == 0 &&
            get_name(o, "routing_key", &kbuf, &key) == 0 &&
            wr_vhost_bind(vh, src, dest, strcmp(jstr(o, "destination_type"), "exchange") == 0, key,
                          args, NULL, &e2) == 0)
            nb++;
        free(kbuf);
        free(dbuf);
        free(sbuf);
        free(buf);
    }
    json_decref(root);
    wr_log(WR_LOG_INFO, "definitions: %u exchanges, %u queues, %u bindings recovered", nx, nq, nb);
    return 0;
}
