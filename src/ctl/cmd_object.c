/*
 * cmd_object.c - the commands that change or move things in a vhost:
 * declare and delete (queues, exchanges, bindings, vhosts, users,
 * permissions), purge, publish and get. Each builds one JSON body from
 * its flags and makes one request (delete binding makes two: it looks up
 * the binding's properties key first, as the API wants it in the path).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/value.h"

#define PAYLOAD_MAX (64 * 1024 * 1024) /* over the API's 20 MB body limit */

/* A new object; NULL never (out of memory exits). */
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

/* The --arg flags (or another repeatable K=V flag) as an object; NULL
 * after a usage error was printed. */
static json_t *kv_flags(struct wr_ctl *c, const char *flag, bool typed)
{
    json_t *o = obj();
    const char *kv, *why;
    size_t i = 0;
    while ((kv = wr_ctl_arg_next(c, flag, &i))) {
        if (wr_ctl_kv_add(o, kv, typed, &why) < 0) {
            wr_ctl_fail(WR_CTL_EXIT_USAGE, "--%s '%s': %s", flag, kv, why);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static int finish(struct wr_ctl *c, const char *method, struct wr_ctl_buf *path, json_t *body,
                  struct wr_ctl_buf *what, const char *missing, const char *done)
{
    int rc = wr_ctl_call(c, method, wr_ctl_buf_str(path), body, NULL, wr_ctl_buf_str(what), missing,
                         NULL);
    if (!rc && done)
        wr_ctl_done(c, "%s %s", done, wr_ctl_buf_str(what));
    json_decref(body);
    wr_ctl_buf_free(path);
    wr_ctl_buf_free(what);
    return rc;
}

static int bad_str(const char *flag, const char *v)
{
    return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--%s '%s': not UTF-8", flag, v);
}

/* "classic", "quorum" and "stream"; or an exchange type. */
static int declare_queue(struct wr_ctl *c, struct wr_ctl_buf *path, struct wr_ctl_buf *what,
                         char *missing)
{
    const char *name = wr_ctl_arg(c, "name"), *type = wr_ctl_arg(c, "type");
    json_t *body, *args;

    if (type && strcmp(type, "classic") && strcmp(type, "quorum") && strcmp(type, "stream"))
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--type: classic, quorum or stream, not '%s'", type);
    if (!(args = kv_flags(c, "arg", true)))
        return WR_CTL_EXIT_USAGE;
    if (type)
        set(args, "x-queue-type", json_string(type));
    body = obj();
    /* Quorum queues and streams are always durable: --type says so. */
    set(body, "durable",
        json_boolean(wr_ctl_has(c, "durable") || (type && strcmp(type, "classic"))));
    set(body, "auto_delete", json_boolean(wr_ctl_has(c, "auto-delete")));
    set(body, "arguments", args);
    wr_ctl_path(path, "/api/queues/%s/%s", c->conn.vhost, name);
    wr_ctl_what(what, "queue %s in vhost %s", name, c->conn.vhost);
    snprintf(missing, 512, "vhost '%.400s' not found", c->conn.vhost);
    return finish(c, "PUT", path, body, what, missing, "declared");
}

static int declare_exchange(struct wr_ctl *c, struct wr_ctl_buf *path, struct wr_ctl_buf *what,
                            char *missing)
{
    const char *name = wr_ctl_arg(c, "name"), *type = wr_ctl_arg(c, "type");
    json_t *body, *args, *t;

    if (!(args = kv_flags(c, "arg", true)))
        return WR_CTL_EXIT_USAGE;
    if (!(t = json_string(type))) {
        json_decref(args);
        return bad_str("type", type);
    }
    body = obj();
    set(body, "type", t);
    set(body, "durable", json_boolean(wr_ctl_has(c, "durable")));
    set(body, "auto_delete", json_boolean(wr_ctl_has(c, "auto-delete")));
    set(body, "internal", json_boolean(wr_ctl_has(c, "internal")));
    set(body, "arguments", args);
    wr_ctl_path(path, "/api/exchanges/%s/%s", c->conn.vhost, name);
    wr_ctl_what(what, "exchange %s in vhost %s", name, c->conn.vhost);
    snprintf(missing, 512, "vhost '%.400s' not found", c->conn.vhost);
    return finish(c, "PUT", path, body, what, missing, "declared");
}

/* "q" or "e" for --destination-type; NULL after a usage error. */
static const char *dest_kind(struct wr_ctl *c)
{
    const char *t = wr_ctl_arg(c, "destination-type");
    if (!t || !strcmp(t, "queue"))
        return "q";
    if (!strcmp(t, "exchange"))
        return "e";
    wr_ctl_fail(WR_CTL_EXIT_USAGE, "--destination-type: queue or exchange, not '%s'", t);
    return NULL;
}

static void binding_names(struct wr_ctl *c, const char *kind, struct wr_ctl_buf *what,
                          char *missing)
{
    const char *src = wr_ctl_arg(c, "source"), *dst = wr_ctl_arg(c, "destination");
    const char *key = wr_ctl_arg(c, "routing-key");
    const char *dtype = *kind == 'q' ? "queue" : "exchange";
    wr_ctl_what(what, "binding from exchange %s to ", src);
    wr_ctl_buf_printf(what, "%s ", dtype);
    wr_ctl_what(what, "%s with routing key %s in vhost %s", dst, key ? key : "", c->conn.vhost);
    struct wr_ctl_buf m = {0};
    wr_ctl_what(&m, "exchange %s or ", src);
    wr_ctl_buf_printf(&m, "%s ", dtype);
    wr_ctl_what(&m, "%s not found in vhost %s", dst, c->conn.vhost);
    snprintf(missing, 512, "%s", wr_ctl_buf_str(&m));
    wr_ctl_buf_free(&m);
}

static int declare_binding(struct wr_ctl *c, struct wr_ctl_buf *path, struct wr_ctl_buf *what,
                           char *missing)
{
    const char *kind = dest_kind(c), *key = wr_ctl_arg(c, "routing-key");
    json_t *body, *args, *k;

    if (!kind)
        return WR_CTL_EXIT_USAGE;
    if (!(args = kv_flags(c, "arg", true)))
        return WR_CTL_EXIT_USAGE;
    if (!(k = json_string(key ? key : ""))) {
        json_decref(args);
        return bad_str("routing-key", key);
    }
    body = obj();
    set(body, "routing_key", k);
    set(body, "arguments", args);
    wr_ctl_path(path, "/api/bindings/%s/e/%s/", c->conn.vhost, wr_ctl_arg(c, "source"));
    wr_ctl_buf_printf(path, "%s/", kind);
    wr_ctl_path(path, "%s", wr_ctl_arg(c, "destination"));
    binding_names(c, kind, what, missing);
    return finish(c, "POST", path, body, what, missing, "declared");
}

static int declare_user(struct wr_ctl *c, struct wr_ctl_buf *path, struct wr_ctl_buf *what)
{
    const char *name = wr_ctl_arg(c, "name"), *pw = wr_ctl_arg(c, "password");
    const char *tags = wr_ctl_arg(c, "tags");
    json_t *body = obj(), *p = json_string(pw), *t = json_string(tags ? tags : "");
    if (!p || !t) {
        json_decref(body);
        json_decref(p);
        json_decref(t);
        return bad_str(p ? "tags" : "password", p ? tags : "(hidden)");
    }
    set(body, "password", p);
    set(body, "tags", t);
    wr_ctl_path(path, "/api/users/%s", name);
    wr_ctl_what(what, "user %s", name);
    return finish(c, "PUT", path, body, what, NULL, "declared");
}

/* Sets the string flags `flags` (NULL-terminated) as the body's keys. */
static json_t *string_body(struct wr_ctl *c, const char *const *flags)
{
    json_t *body = obj();
    for (size_t i = 0; flags[i]; i++) {
        const char *v = wr_ctl_arg(c, flags[i]);
        json_t *s = json_string(v);
        if (!s) {
            bad_str(flags[i], v);
            json_decref(body);
            return NULL;
        }
        set(body, flags[i], s);
    }
    return body;
}

static int declare_perms(struct wr_ctl *c, bool topic, struct wr_ctl_buf *path,
                         struct wr_ctl_buf *what, char *missing)
{
    static const char *const perm[] = {"configure", "write", "read", NULL};
    static const char *const tperm[] = {"exchange", "write", "read", NULL};
    const char *user = wr_ctl_arg(c, "user");
    json_t *body = string_body(c, topic ? tperm : perm);
    if (!body)
        return WR_CTL_EXIT_USAGE;
    wr_ctl_path(path, topic ? "/api/topic-permissions/%s/%s" : "/api/permissions/%s/%s",
                c->conn.vhost, user);
    wr_ctl_buf_adds(what, topic ? "topic permissions" : "permissions");
    wr_ctl_what(what, " of user %s in vhost %s", user, c->conn.vhost);
    snprintf(missing, 512, "vhost '%.200s' or user '%.200s' not found", c->conn.vhost, user);
    return finish(c, "PUT", path, body, what, missing, "set");
}

int wr_ctl_cmd_declare(struct wr_ctl *c)
{
    const char *noun = c->cmd->noun;
    struct wr_ctl_buf path = {0}, what = {0};
    char missing[512];

    if (!strcmp(noun, "queue"))
        return declare_queue(c, &path, &what, missing);
    if (!strcmp(noun, "exchange"))
        return declare_exchange(c, &path, &what, missing);
    if (!strcmp(noun, "binding"))
        return declare_binding(c, &path, &what, missing);
    if (!strcmp(noun, "user"))
        return declare_user(c, &path, &what);
    if (!strcmp(noun, "permissions") || !strcmp(noun, "topic-permissions"))
        return declare_perms(c, noun[0] == 't', &path, &what, missing);
    /* vhost */
    const char *name = wr_ctl_arg(c, "name");
    wr_ctl_path(&path, "/api/vhosts/%s", name);
    wr_ctl_what(&what, "vhost %s", name);
    return finish(c, "PUT", &path, obj(), &what, NULL, "declared");
}

/* The binding's properties_key, looked up among those between the two;
 * NULL (message printed, *rc set) if none matches. */
static char *binding_key(struct wr_ctl *c, const char *kind, const char *what, const char *missing,
                         int *rc)
{
    const char *key = wr_ctl_arg(c, "routing-key");
    struct wr_ctl_buf path = {0};
    json_t *list, *args = kv_flags(c, "arg", true), *b;
    char *found = NULL;
    size_t i;

    if (!args) {
        *rc = WR_CTL_EXIT_USAGE;
        return NULL;
    }
    wr_ctl_path(&path, "/api/bindings/%s/e/%s/", c->conn.vhost, wr_ctl_arg(c, "source"));
    wr_ctl_buf_printf(&path, "%s/", kind);
    wr_ctl_path(&path, "%s", wr_ctl_arg(c, "destination"));
    *rc = wr_ctl_call(c, "GET", wr_ctl_buf_str(&path), NULL, NULL, what, missing, &list);
    wr_ctl_buf_free(&path);
    if (*rc) {
        json_decref(args);
        return NULL;
    }
    json_array_foreach(list, i, b)
    {
        json_t *rk = json_object_get(b, "routing_key"), *pk = json_object_get(b, "properties_key");
        json_t *ba = json_object_get(b, "arguments");
        bool args_match =
            json_object_size(args) == 0 ? json_object_size(ba) == 0 || !ba : json_equal(args, ba);
        if (json_is_string(rk) && json_is_string(pk) &&
            !strcmp(json_string_value(rk), key ? key : "") && args_match) {
            found = wr_ctl_xstrdup(json_string_value(pk));
            break;
        }
    }
    json_decref(list);
    json_decref(args);
    if (!found)
        *rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "%s: not found", what);
    return found;
}

static int delete_binding(struct wr_ctl *c)
{
    const char *kind = dest_kind(c);
    struct wr_ctl_buf path = {0}, what = {0};
    char missing[512], *props;
    int rc;

    if (!kind)
        return WR_CTL_EXIT_USAGE;
    binding_names(c, kind, &what, missing);
    if (!(props = binding_key(c, kind, wr_ctl_buf_str(&what), missing, &rc))) {
        wr_ctl_buf_free(&what);
        return rc;
    }
    wr_ctl_path(&path, "/api/bindings/%s/e/%s/", c->conn.vhost, wr_ctl_arg(c, "source"));
    wr_ctl_buf_printf(&path, "%s/", kind);
    wr_ctl_path(&path, "%s/%s", wr_ctl_arg(c, "destination"), props);
    free(props);
    return finish(c, "DELETE", &path, NULL, &what, NULL, "deleted");
}

int wr_ctl_cmd_delete(struct wr_ctl *c)
{
    const char *noun = c->cmd->noun, *vh = c->conn.vhost, *name = wr_ctl_arg(c, "name");
    const char *user = wr_ctl_arg(c, "user");
    struct wr_ctl_buf path = {0}, what = {0};

    if (!strcmp(noun, "binding"))
        return delete_binding(c);
    if (!strcmp(noun, "queue") || !strcmp(noun, "exchange")) {
        bool q = noun[0] == 'q';
        wr_ctl_path(&path, q ? "/api/queues/%s/%s" : "/api/exchanges/%s/%s", vh, name);
        wr_ctl_buf_printf(&what, "%s ", noun);
        wr_ctl_what(&what, "%s in vhost %s", name, vh);
        const char *sep = "?";
        if (wr_ctl_has(c, "if-unused")) {
            wr_ctl_buf_adds(&path, "?if-unused=true");
            sep = "&";
        }
        if (q && wr_ctl_has(c, "if-empty"))
            wr_ctl_buf_printf(&path, "%sif-empty=true", sep);
    } else if (!strcmp(noun, "vhost")) {
        wr_ctl_path(&path, "/api/vhosts/%s", name);
        wr_ctl_what(&what, "vhost %s", name);
    } else if (!strcmp(noun, "user")) {
        wr_ctl_path(&path, "/api/users/%s", name);
        wr_ctl_what(&what, "user %s", name);
    } else {
        bool topic = noun[0] == 't';
        wr_ctl_path(&path, topic ? "/api/topic-permissions/%s/%s" : "/api/permissions/%s/%s", vh,
                    user);
        wr_ctl_buf_adds(&what, topic ? "topic permissions" : "permissions");
        wr_ctl_what(&what, " of user %s in vhost %s", user, vh);
    }
    return finish(c, "DELETE", &path, NULL, &what, NULL, "deleted");
}

int wr_ctl_cmd_purge(struct wr_ctl *c)
{
    const char *name = wr_ctl_arg(c, "name");
    struct wr_ctl_buf path = {0}, what = {0};
    wr_ctl_path(&path, "/api/queues/%s/%s/contents", c->conn.vhost, name);
    wr_ctl_what(&what, "queue %s in vhost %s", name, c->conn.vhost);
    return finish(c, "DELETE", &path, NULL, &what, NULL, "purged");
}

/* ---- publish, get ---- */

/* Reads a whole file ("-": standard input) into b. */
static int read_all(const char *file, struct wr_ctl_buf *b)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    char chunk[65536];
    size_t n;
    if (!f)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: %s", file, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b->len + n > PAYLOAD_MAX) {
            if (f != stdin)
                fclose(f);
            return wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: larger than %d bytes",
                               strcmp(file, "-") ? file : "standard input", PAYLOAD_MAX);
        }
        wr_ctl_buf_add(b, chunk, n);
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s: read error", file);
    return 0;
}

/* The properties body: integer properties typed, the rest strings,
 * headers typed. NULL after a usage error. */
static json_t *publish_props(struct wr_ctl *c)
{
    static const char *const ints[] = {"delivery_mode", "priority", "timestamp", NULL};
    json_t *props = obj(), *headers = kv_flags(c, "header", true);
    const char *kv, *why;
    size_t i = 0;

    if (!headers) {
        json_decref(props);
        return NULL;
    }
    while ((kv = wr_ctl_arg_next(c, "property", &i))) {
        long klen = wr_ctl_kv_split(kv);
        bool typed = false;
        for (size_t k = 0; klen > 0 && ints[k]; k++)
            typed |= strlen(ints[k]) == (size_t)klen && !memcmp(ints[k], kv, (size_t)klen);
        if (wr_ctl_kv_add(props, kv, typed, &why) < 0) {
            wr_ctl_fail(WR_CTL_EXIT_USAGE, "--property '%s': %s", kv, why);
            json_decref(props);
            json_decref(headers);
            return NULL;
        }
    }
    if (json_object_size(headers))
        set(props, "headers", headers);
    else
        json_decref(headers);
    return props;
}

/* Sets payload and payload_encoding: text as is, anything else base64. */
static void set_payload(json_t *body, const struct wr_ctl_buf *b)
{
    const char *p = wr_ctl_buf_str((struct wr_ctl_buf *)b);
    json_t *s = memchr(p, '\0', b->len) ? NULL : json_stringn(p, b->len);
    if (s) {
        set(body, "payload", s);
        set(body, "payload_encoding", json_string("string"));
        return;
    }
    if (b->len > (size_t)INT_MAX / 2)
        wr_ctl_oom();
    unsigned char *enc = wr_ctl_xmalloc(4 * ((b->len + 2) / 3) + 1);
    EVP_EncodeBlock(enc, (const unsigned char *)p, (int)b->len);
    set(body, "payload", json_string((char *)enc));
    set(body, "payload_encoding", json_string("base64"));
    free(enc);
}

int wr_ctl_cmd_publish(struct wr_ctl *c)
{
    const char *x = wr_ctl_arg(c, "exchange"), *key = wr_ctl_arg(c, "routing-key");
    const char *text = wr_ctl_arg(c, "payload"), *file = wr_ctl_arg(c, "file");
    struct wr_ctl_buf payload = {0}, path = {0}, what = {0};
    json_t *body, *props, *k, *doc = NULL;
    int rc;

    if (text && file)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--payload and --file: one or the other");
    if (!x)
        x = "";
    if (!(k = json_string(key ? key : "")))
        return bad_str("routing-key", key);
    if (text) {
        wr_ctl_buf_adds(&payload, text);
    } else if ((rc = read_all(file ? file : "-", &payload))) {
        json_decref(k);
        wr_ctl_buf_free(&payload);
        return rc;
    }
    if (!(props = publish_props(c))) {
        json_decref(k);
        wr_ctl_buf_free(&payload);
        return WR_CTL_EXIT_USAGE;
    }
    body = obj();
    set(body, "properties", props);
    set(body, "routing_key", k);
    set_payload(body, &payload);
    wr_ctl_buf_free(&payload);
    wr_ctl_path(&path, "/api/exchanges/%s/%s/publish", c->conn.vhost, *x ? x : "amq.default");
    wr_ctl_what(&what, "publish to exchange %s in vhost %s", x, c->conn.vhost);
    rc = wr_ctl_call(c, "POST", wr_ctl_buf_str(&path), body, NULL, wr_ctl_buf_str(&what), NULL,
                     &doc);
    if (!rc) {
        bool routed = json_is_true(json_object_get(doc, "routed"));
        if (c->out.fmt == WR_CTL_JSON)
            wr_ctl_out_object(&c->out, doc);
        else if (c->out.fmt == WR_CTL_TSV)
            fprintf(c->out.f, "routed\t%s\n", routed ? "true" : "false");
        else
            fputs(routed ? "published, routed\n" : "published, but not routed: no queue matched\n",
                  c->out.f);
    }
    json_decref(doc);
    json_decref(body);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    return rc;
}

int wr_ctl_cmd_get(struct wr_ctl *c)
{
    static const char *const cols[] = {"exchange",      "routing_key",   "redelivered",
                                       "message_count", "payload_bytes", "payload_encoding",
                                       "payload"};
    const char *q = wr_ctl_arg(c, "queue"), *count = wr_ctl_arg(c, "count");
    struct wr_ctl_buf path = {0}, what = {0};
    json_t *body, *doc = NULL;
    long n = 1;
    int rc;

    if (count) {
        char *end;
        errno = 0;
        n = strtol(count, &end, 10);
        if (errno || *end || end == count || n < 1 || n > INT32_MAX)
            return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--count: a positive number, not '%s'", count);
    }
    if (wr_ctl_has(c, "ack") && wr_ctl_has(c, "requeue"))
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "--ack and --requeue: one or the other");
    body = obj();
    set(body, "count", json_integer(n));
    set(body, "ackmode",
        json_string(wr_ctl_has(c, "ack") ? "ack_requeue_false" : "ack_requeue_true"));
    set(body, "encoding", json_string("auto"));
    wr_ctl_path(&path, "/api/queues/%s/%s/get", c->conn.vhost, q);
    wr_ctl_what(&what, "queue %s in vhost %s", q, c->conn.vhost);
    rc = wr_ctl_call(c, "POST", wr_ctl_buf_str(&path), body, NULL, wr_ctl_buf_str(&what), NULL,
                     &doc);
    if (!rc)
        wr_ctl_out_rows(&c->out, doc, cols, sizeof(cols) / sizeof(*cols));
    json_decref(doc);
    json_decref(body);
    wr_ctl_buf_free(&path);
    wr_ctl_buf_free(&what);
    return rc;
}
