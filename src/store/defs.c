/*
 * defs.c - definitions in RabbitMQ's JSON format; see defs.h.
 *
 * Import runs in two passes over the document. The check builds a plan:
 * every entry decoded into the bytes it names (struct p_*), every field's
 * type checked, every pattern compiled, every exchange type and queue
 * argument validated, and each object marked as applied or skipped (it
 * exists already, it is transient, its name is reserved). Only when the
 * whole plan is good is it applied, through the same calls a client's
 * declare goes through (broker/vhost.h) and the user table's (auth/auth.h);
 * those can then fail only for want of memory.
 *
 * Names are byte strings that RabbitMQ's loose UTF-8 rule accepted (see
 * core/utf8.h), NUL bytes included. A name that is Unicode proper is
 * written as a JSON string (NUL as \u0000) and read back by its length;
 * one that is not (a UTF-16 surrogate, a value above U+10FFFF: JSON cannot
 * hold them) gets a readable escaped "name" and the exact bytes in hex as
 * "name_raw". Same for "source", "destination", "routing_key", "user",
 * "vhost" and the patterns. Arguments are written twice: as a JSON object
 * (what RabbitMQ reads) and as "arguments_raw", the hex of the exact table
 * bytes, so a redeclaration with the same arguments stays equivalent byte
 * for byte. Reading our own file (WR_DEFS_RECOVER), the raw forms win.
 * Importing, a raw form is used only where it says the same as the
 * readable one (so a person who edits "arguments" in an export is obeyed),
 * else the readable one is: JSON integers become signed 64-bit ('l'),
 * other numbers doubles ('d'), null void ('V'), as RabbitMQ converts them.
 *
 * What RabbitMQ 3.10.8 does (checked on a local node) and where we differ:
 *  - export lists transient exchanges and queues ("durable": false); import
 *    skips them. We skip them too, and never write them.
 *  - export leaves out internal exchanges (while keeping the bindings to
 *    them, which its import then drops silently) and exchanges named
 *    "amq.*" or "". We write internal ones, with "internal": true; an
 *    "amq.*" or "" exchange in a file is skipped with a warning.
 *  - a binding whose source or destination does not exist is dropped
 *    silently; we drop it with a warning line.
 *  - a user without "hashing_algorithm" is SHA-256; without "password_hash"
 *    it has no usable password; "password" (clear text) is hashed on
 *    import; "tags" may be an array or a comma-separated string.
 *  - import is not atomic there (users before a bad entry stay), and it
 *    accepts an unknown hashing algorithm (the user can never log in) and
 *    a name that is a number. We refuse all three, and change nothing.
 *  - permissions naming a missing user ({no_such_user, ...}) or a missing
 *    vhost, and queues or exchanges in a missing vhost, fail the import
 *    there as here; a binding in a missing vhost is ignored there, an
 *    error here.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/passwd.h"
#include "auth/perm.h"
#include "broker/broker.h"
#include "broker/qargs.h"
#include "broker/vhost.h"
#include "core/log.h"
#include "core/utf8.h"
#include "core/version.h"
#include "store/defs.h"
#include "store/defslog.h"
#include "store/jsonfield.h"
#include "wire/field.h"

/* The RabbitMQ release whose export format we write. */
#define RABBIT_FORMAT_VERSION "3.10.8"
#define NAME_MAX_LEN 255 /* AMQP short strings */

struct wr_defs {
    json_t *root;
};

static json_t *hex(struct wr_str s)
{
    static const char d[] = "0123456789abcdef";
    char *b = malloc((size_t)s.len * 2 + 1);
    json_t *j;
    if (!b)
        return NULL;
    for (uint32_t i = 0; i < s.len; i++) {
        b[2 * i] = d[(uint8_t)s.ptr[i] >> 4];
        b[2 * i + 1] = d[(uint8_t)s.ptr[i] & 15];
    }
    b[s.len * 2] = '\0';
    j = json_string(b);
    free(b);
    return j;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex text to bytes (malloc'd, in *out). WR_ESYNTAX when it is not hex. */
static int unhex(const char *h, size_t n, uint8_t **out, uint32_t *len)
{
    uint8_t *b;
    if (n % 2 || n / 2 > UINT32_MAX)
        return WR_ESYNTAX;
    if (!(b = malloc(n / 2 + 1)))
        return WR_ENOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return WR_ESYNTAX;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *len = (uint32_t)(n / 2);
    return 0;
}

/* ---- writing names ---- */

static int set_new(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

/* A name under `key`, every byte of it (see the top of the file). */
static int add_name(json_t *o, const char *key, struct wr_str name)
{
    char raw_key[32], esc[WR_LOG_ESC_MAX * 4];
    if (wr_utf8_strict(name.ptr, name.len))
        return set_new(o, key, json_stringn(name.ptr ? name.ptr : "", name.len));
    snprintf(raw_key, sizeof(raw_key), "%s_raw", key);
    if (set_new(o, key, json_string(wr_log_esc(esc, sizeof(esc), name.ptr, name.len))) < 0)
        return -1;
    return set_new(o, raw_key, hex(name));
}

static int add_args(json_t *o, struct wr_str args)
{
    if (set_new(o, "arguments", wr_json_from_table(args)) < 0)
        return -1;
    return set_new(o, "arguments_raw", hex(args));
}

/* ---- reading ---- */

struct wr_defs *wr_defs_parse(const char *text, size_t len, const char *origin,
                              struct wr_defs_err *err)
{
    json_error_t je;
    struct wr_defs *d = calloc(1, sizeof(*d));

    if (!d) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", origin);
        return NULL;
    }
    /* Names may hold \u0000; a key given twice keeps its last value, as
     * RabbitMQ's parser does. */
    d->root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!d->root) {
        snprintf(err->msg, sizeof(err->msg), "%s: line %d, column %d: %s", origin, je.line,
                 je.column, je.text);
        free(d);
        return NULL;
    }
    return d;
}

static struct wr_defs *read_doc(const char *path, uint64_t max, struct wr_defs_err *err)
{
    struct stat st;
    struct wr_defs *d = NULL;
    char *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err->msg, sizeof(err->msg), "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max || (uint64_t)st.st_size >= SIZE_MAX) {
        snprintf(err->msg, sizeof(err->msg), "%s: file too large (%lld bytes; at most %llu)", path,
                 (long long)st.st_size, (unsigned long long)max);
        goto out;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err->msg, sizeof(err->msg), "%s: read error: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > (size_t)st.st_size) {
            snprintf(err->msg, sizeof(err->msg), "%s: file changed while being read", path);
            goto out;
        }
    }
    d = wr_defs_parse(buf, got, path, err);
out:
    free(buf);
    close(fd);
    return d;
}

struct wr_defs *wr_defs_read(const char *path, struct wr_defs_err *err)
{
    return read_doc(path, WR_DEFS_FILE_MAX, err);
}

void wr_defs_free(struct wr_defs *d)
{
    if (!d)
        return;
    json_decref(d->root);
    free(d);
}

/* ---- the plan ---- */

struct p_vhost {
    struct wr_hnode node; /* plan.vhosts, key = name */
    struct wr_str name;
    json_t *kept; /* the entry's keys Warren does not apply (borrowed) */
    bool exists;  /* in the broker already */
    bool has_last;
    uint64_t last_id;
};

struct p_user {
    struct wr_hnode node;             /* plan.users, key = name */
    struct wr_str name, secret, tags; /* secret: the hash, or the password */
    enum wr_passwd_algo algo;
    bool clear; /* secret is a clear password ("password") */
    json_t *kept;
};

struct p_perm {
    struct wr_str user, vhost, pat[3];
};

struct p_topic {
    struct wr_str user, vhost, exchange, write, read;
};

struct p_exchange {
    struct wr_hnode node; /* plan.exchanges, key = vhost NUL name */
    struct wr_str vhost, name, type, args;
    const struct wr_xtype *xt;
    bool auto_delete, internal, apply;
};

struct p_queue {
    struct wr_hnode node; /* plan.queues, key = vhost NUL name */
    struct wr_str vhost, name, args;
    uint64_t id;
    bool auto_delete, apply;
};

struct p_binding {
    struct wr_str vhost, src, dest, key, args;
    bool to_exchange, apply;
};

struct seen { /* a pattern that compiled, or a name in a set */
    struct wr_hnode node;
};

struct plan {
    enum wr_defs_mode mode;
    struct wr_broker *b;
    struct wr_defs_err *err;
    /* where the check is, for the error */
    const char *section;
    size_t index;
    char ident[400];

    struct p_vhost *vh;
    struct p_user *us;
    struct p_perm *pm;
    struct p_topic *tp;
    struct p_exchange *xs;
    struct p_queue *qs;
    struct p_binding *bs;
    size_t nvh, nus, npm, ntp, nxs, nqs, nbs;
    struct wr_hmap vhosts, users, exchanges, queues, patterns;
    struct wr_vhost *scratch; /* what a new vhost holds: the predeclared exchanges */

    json_t *params, *globals, *policies; /* top-level arrays kept (borrowed) */
    bool has_ranges;
    uint32_t ranges;
    uint32_t transient_x, transient_q;

    void **owned; /* buffers the plan's strings point into */
    size_t nowned, capowned;
};

static void *own(struct plan *p, void *ptr)
{
    if (!ptr)
        return NULL;
    if (p->nowned == p->capowned) {
        size_t cap = p->capowned ? p->capowned * 2 : 64;
        void **a = realloc(p->owned, cap * sizeof(*a));
        if (!a) {
            free(ptr);
            return NULL;
        }
        p->owned = a;
        p->capowned = cap;
    }
    p->owned[p->nowned++] = ptr;
    return ptr;
}

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->nowned; i++)
        free(p->owned[i]);
    free(p->owned);
    free(p->vh);
    free(p->us);
    free(p->pm);
    free(p->tp);
    free(p->xs);
    free(p->qs);
    free(p->bs);
    wr_hmap_free(&p->vhosts);
    wr_hmap_free(&p->users);
    wr_hmap_free(&p->exchanges);
    wr_hmap_free(&p->queues);
    wr_hmap_free(&p->patterns); /* its nodes are owned */
    if (p->scratch)
        wr_vhost_free(p->scratch);
}

/* ---- errors ---- */

static int oom(struct plan *p)
{
    snprintf(p->err->msg, sizeof(p->err->msg), "out of memory");
    return WR_ENOMEM;
}

static int bad(struct plan *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "users[3] (name 'bob'): password_hash: not base64" */
static int bad(struct plan *p, const char *field, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(p->err->msg, sizeof(p->err->msg), "%s[%zu]%s%s%s: %s%s%s", p->section, p->index,
             p->ident[0] ? " (" : "", p->ident, p->ident[0] ? ")" : "", field ? field : "",
             field ? ": " : "", why);
    return WR_ESYNTAX;
}

/* Add "what 'name'" to the entry's identity, for errors. */
static void ident_add(struct plan *p, const char *what, struct wr_str name)
{
    char esc[WR_LOG_ESC_MAX];
    size_t n = strlen(p->ident);
    if (name.len > NAME_MAX_LEN)
        name.len = NAME_MAX_LEN;
    snprintf(p->ident + n, sizeof(p->ident) - n, "%s%s '%s'", n ? ", " : "", what,
             WR_LOG_ESC(esc, name));
}

/* The text of an errbuf without its reply-code prefix. */
static const char *errtext(const struct wr_errbuf *e)
{
    const char *s = strstr(e->text, " - ");
    return s ? s + 3 : e->text;
}

/* ---- typed fields ---- */

/* A string; *out is empty when absent and !required. */
static int get_str(struct plan *p, json_t *o, const char *key, bool required, struct wr_str *out)
{
    json_t *j = json_object_get(o, key);
    *out = (struct wr_str){"", 0};
    if (!j) {
        if (required)
            return bad(p, key, "missing");
        return 0;
    }
    if (!json_is_string(j))
        return bad(p, key, "not a string");
    if (json_string_length(j) > UINT32_MAX)
        return bad(p, key, "too long");
    *out = (struct wr_str){json_string_value(j), (uint32_t)json_string_length(j)};
    return 0;
}

/* A name written by add_name: its "<key>_raw" when there is one (see the
 * top of the file), else the string's bytes. max: longest allowed. */
static int get_name(struct plan *p, json_t *o, const char *key, size_t max, struct wr_str *out)
{
    char raw_key[32];
    json_t *raw;
    int rc;

    if ((rc = get_str(p, o, key, true, out)) < 0)
        return rc;
    snprintf(raw_key, sizeof(raw_key), "%s_raw", key);
    if ((raw = json_object_get(o, raw_key)) != NULL) {
        uint8_t *buf;
        uint32_t len;
        if (!json_is_string(raw))
            return bad(p, raw_key, "not a string");
        rc = unhex(json_string_value(raw), json_string_length(raw), &buf, &len);
        if (rc == WR_ENOMEM || (rc == 0 && !own(p, buf)))
            return oom(p);
        if (rc < 0)
            return bad(p, raw_key, "not hex");
        if (p->mode == WR_DEFS_RECOVER) {
            *out = (struct wr_str){(const char *)buf, len};
        } else {
            /* Only where it says what the readable name says. */
            char esc[WR_LOG_ESC_MAX * 4];
            const char *e = wr_log_esc(esc, sizeof(esc), buf, len);
            if (strlen(e) == out->len && memcmp(e, out->ptr, out->len) == 0)
                *out = (struct wr_str){(const char *)buf, len};
        }
    }
    if (out->len > max)
        return bad(p, key, "longer than %zu bytes", max);
    return 0;
}

static int get_bool(struct plan *p, json_t *o, const char *key, bool def, bool *out)
{
    json_t *j = json_object_get(o, key);
    *out = def;
    if (!j)
        return 0;
    if (!json_is_boolean(j))
        return bad(p, key, "not true or false");
    *out = json_is_true(j);
    return 0;
}

static int get_uint(struct plan *p, json_t *o, const char *key, uint64_t max, bool *has,
                    uint64_t *out)
{
    json_t *j = json_object_get(o, key);
    *has = false;
    *out = 0;
    if (!j)
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < 0 || (uint64_t)json_integer_value(j) > max)
        return bad(p, key, "not an integer from 0 to %llu", (unsigned long long)max);
    *has = true;
    *out = (uint64_t)json_integer_value(j);
    return 0;
}

/* "arguments" (a JSON object, converted) and "arguments_raw" (the table's
 * bytes in hex), as the top of the file says. */
static int get_args(struct plan *p, json_t *o, struct wr_str *out)
{
    json_t *j = json_object_get(o, "arguments"), *raw = json_object_get(o, "arguments_raw");
    struct wr_jbytes b = {0};
    const char *why;

    *out = (struct wr_str){"", 0};
    if (j && !json_is_object(j) && !json_is_null(j))
        return bad(p, "arguments", "not an object");
    if (raw) {
        uint8_t *buf;
        uint32_t len;
        int rc;
        if (!json_is_string(raw))
            return bad(p, "arguments_raw", "not a string");
        rc = unhex(json_string_value(raw), json_string_length(raw), &buf, &len);
        if (rc == WR_ENOMEM || (rc == 0 && !own(p, buf)))
            return oom(p);
        if (rc < 0)
            return bad(p, "arguments_raw", "not hex");
        if (wr_table_validate(buf, len) < 0)
            return bad(p, "arguments_raw", "not a field table");
        if (p->mode == WR_DEFS_RECOVER || !j) {
            *out = (struct wr_str){(const char *)buf, len};
            return 0;
        } else {
            json_t *again = wr_json_from_table((struct wr_str){(const char *)buf, len});
            bool same = again && json_equal(again, json_is_null(j) ? NULL : j);
            if (again && json_is_null(j))
                same = json_object_size(again) == 0;
            json_decref(again);
            if (same) {
                *out = (struct wr_str){(const char *)buf, len};
                return 0;
            }
        }
    }
    if (!j || json_is_null(j))
        return 0;
    why = wr_json_to_table(&b, j);
    if (b.oom) {
        free(b.p);
        return oom(p);
    }
    if (why) {
        free(b.p);
        return bad(p, "arguments", "%s", why);
    }
    if (b.len > UINT32_MAX) {
        free(b.p);
        return bad(p, "arguments", "too long");
    }
    if (b.len && !own(p, b.p))
        return oom(p);
    if (!b.len)
        free(b.p);
    *out = (struct wr_str){b.len ? (const char *)b.p : "", (uint32_t)b.len};
    return 0;
}

/* The keys of an entry Warren does not apply, as a new object (NULL when
 * there are none). */
static int get_kept(struct plan *p, json_t *o, const char *const *known, json_t **out)
{
    const char *k;
    json_t *v;
    *out = NULL;
    json_object_foreach(o, k, v)
    {
        bool skip = strncmp(k, "warren_", 7) == 0;
        for (size_t i = 0; known[i] && !skip; i++) {
            size_t n = strlen(known[i]);
            skip = strncmp(k, known[i], n) == 0 && (k[n] == '\0' || strcmp(k + n, "_raw") == 0);
        }
        if (skip)
            continue;
        if ((!*out && !(*out = json_object())) || json_object_set(*out, k, v) < 0) {
            json_decref(*out);
            *out = NULL;
            return oom(p);
        }
    }
    return 0;
}

/* ---- sets ---- */

static struct wr_str key2(struct plan *p, struct wr_str vhost, struct wr_str name)
{
    char *k = own(p, malloc((size_t)vhost.len + 1 + name.len + 1));
    if (!k)
        return (struct wr_str){NULL, 0};
    memcpy(k, vhost.ptr, vhost.len);
    k[vhost.len] = '\0';
    if (name.len)
        memcpy(k + vhost.len + 1, name.ptr, name.len);
    return (struct wr_str){k, vhost.len + 1 + name.len};
}

static bool vhost_known(struct plan *p, struct wr_str name)
{
    return wr_hmap_get(&p->vhosts, name) || wr_broker_vhost(p->b, name);
}

/* A pattern that compiles; each distinct one is compiled once. */
static int check_pattern(struct plan *p, const char *field, struct wr_str pat)
{
    struct wr_errbuf e;
    struct wr_perm_re *re;
    struct seen *s;
    char *k;

    if (wr_hmap_get(&p->patterns, pat))
        return 0;
    if (!(re = wr_perm_re_compile(pat.ptr, pat.len, &e)))
        return e.code == WR_ENOMEM ? oom(p) : bad(p, field, "%s", errtext(&e));
    wr_perm_re_free(re);
    s = own(p, malloc(sizeof(*s) + pat.len + 1));
    if (!s)
        return oom(p);
    k = (char *)(s + 1);
    memcpy(k, pat.ptr, pat.len);
    s->node.key = (struct wr_str){k, pat.len};
    if (wr_hmap_put(&p->patterns, &s->node) < 0)
        return oom(p);
    return 0;
}

/* The exchange `name` in vhost `vhost` as it will be after the import:
 * its type, or NULL when there will be none. */
static const struct wr_xtype *exchange_after(struct plan *p, struct wr_str vhost,
                                             struct wr_str name)
{
    struct wr_vhost *vh = wr_broker_vhost(p->b, vhost);
    struct wr_exchange *x;
    struct wr_hnode *n;
    struct wr_str k;

    if (vh)
        x = wr_vhost_exchange(vh, name);
    else
        x = wr_vhost_exchange(p->scratch, name); /* a new vhost has these */
    if (x)
        return x->type;
    k = key2(p, vhost, name);
    if (!k.ptr || !(n = wr_hmap_get(&p->exchanges, k)))
        return NULL;
    return wr_container_of(n, struct p_exchange, node)->xt;
}

static bool queue_after(struct plan *p, struct wr_str vhost, struct wr_str name, bool *locked)
{
    struct wr_vhost *vh = wr_broker_vhost(p->b, vhost);
    struct wr_queue *q = vh ? wr_vhost_queue(vh, name) : NULL;
    struct wr_str k;
    *locked = false;
    if (q) {
        *locked = q->exclusive;
        return true;
    }
    k = key2(p, vhost, name);
    return k.ptr && wr_hmap_get(&p->queues, k) != NULL;
}

static void skip_log(struct plan *p, const char *why)
{
    wr_log(WR_LOG_WARNING, "definitions: %s[%zu] (%s) skipped: %s", p->section, p->index, p->ident,
           why);
}

/* ---- checking, section by section ---- */

static json_t *section(struct plan *p, json_t *root, const char *name, size_t *n, int *rc)
{
    json_t *a = json_object_get(root, name);
    *n = 0;
    *rc = 0;
    if (!a || json_is_null(a))
        return NULL;
    if (!json_is_array(a)) {
        snprintf(p->err->msg, sizeof(p->err->msg), "%s: not an array", name);
        *rc = WR_ESYNTAX;
        return NULL;
    }
    *n = json_array_size(a);
    return a;
}

/* Enter entry i of a section: it must be an object. */
static json_t *entry(struct plan *p, json_t *a, size_t i, int *rc)
{
    json_t *o = json_array_get(a, i);
    p->index = i;
    p->ident[0] = '\0';
    *rc = 0;
    if (!json_is_object(o)) {
        *rc = bad(p, NULL, "not an object");
        return NULL;
    }
    return o;
}

static int check_vhosts(struct plan *p, json_t *root)
{
    static const char *const known[] = {"name", NULL};
    size_t n;
    int rc;
    json_t *a = section(p, root, "vhosts", &n, &rc);

    p->section = "vhosts";
    if (rc < 0 || !n)
        return rc;
    if (!(p->vh = calloc(n, sizeof(*p->vh))))
        return oom(p);
    for (size_t i = 0; i < n; i++) {
        struct p_vhost *v = &p->vh[p->nvh];
        json_t *o = entry(p, a, i, &rc);
        if (!o || (rc = get_name(p, o, "name", NAME_MAX_LEN, &v->name)) < 0)
            return rc;
        ident_add(p, "name", v->name);
        if (!v->name.len)
            return bad(p, "name", "empty");
        if (memchr(v->name.ptr, '\0', v->name.len))
            return bad(p, "name", "holds a NUL byte");
        if ((rc = get_uint(p, o, "warren_last_queue_id", UINT64_MAX, &v->has_last, &v->last_id)) <
            0)
            return rc;
        if ((rc = get_kept(p, o, known, &v->kept)) < 0)
            return rc;
        if (wr_hmap_get(&p->vhosts, v->name)) {
            json_decref(v->kept); /* the first entry of a name counts */
            continue;
        }
        v->exists = wr_broker_vhost(p->b, v->name) != NULL;
        v->node.key = v->name;
        if (wr_hmap_put(&p->vhosts, &v->node) < 0) {
            json_decref(v->kept);
            return oom(p);
        }
        p->nvh++;
    }
    return 0;
}

/* Tags: a comma-separated string, or an array of strings (RabbitMQ 3.10
 * writes the array); kept as the comma list the user table takes. */
static int get_tags(struct plan *p, json_t *o, struct wr_str *out)
{
    json_t *j = json_object_get(o, "tags"), *e;
    struct wr_jbytes b = {0};
    size_t i;

    *out = (struct wr_str){"", 0};
    if (!j || json_is_null(j))
        return 0;
    if (json_is_string(j))
        return get_str(p, o, "tags", false, out);
    if (!json_is_array(j))
        return bad(p, "tags", "not a string or an array of strings");
    json_array_foreach(j, i, e)
    {
        if (!json_is_string(e)) {
            free(b.p);
            return bad(p, "tags", "element %zu is not a string", i);
        }
        if (!json_string_length(e))
            continue;
        if (b.len)
            wr_jb_u8(&b, ',');
        wr_jb_put(&b, json_string_value(e), json_string_length(e));
    }
    if (b.oom || (b.len && !own(p, b.p))) {
        if (b.oom)
            free(b.p);
        return oom(p);
    }
    if (b.len > UINT32_MAX)
        return bad(p, "tags", "too long");
    if (!b.len)
        free(b.p);
    *out = (struct wr_str){b.len ? (const char *)b.p : "", (uint32_t)b.len};
    return 0;
}

static int check_users(struct plan *p, json_t *root)
{
    static const char *const known[] = {
        "name", "password_hash", "password", "hashing_algorithm", "tags", NULL};
    size_t n;
    int rc;
    json_t *a = section(p, root, "users", &n, &rc);

    p->section = "users";
    if (rc < 0 || !n)
        return rc;
    if (!(p->us = calloc(n, sizeof(*p->us))))
        return oom(p);
    for (size_t i = 0; i < n; i++) {
        struct p_user *u = &p->us[p->nus];
        struct wr_str algo, pw;
        struct wr_hnode *old;
        json_t *o = entry(p, a, i, &rc);

        if (!o || (rc = get_name(p, o, "name", UINT32_MAX, &u->name)) < 0)
            return rc;
        ident_add(p, "name", u->name);
        if ((rc = get_str(p, o, "hashing_algorithm", false, &algo)) < 0)
            return rc;
        u->algo = WR_PASSWD_DEFAULT;
        if (json_object_get(o, "hashing_algorithm") &&
            wr_passwd_algo_parse(algo.ptr, algo.len, &u->algo) < 0) {
            char esc[WR_LOG_ESC_MAX];
            if (algo.len > NAME_MAX_LEN)
                algo.len = NAME_MAX_LEN;
            return bad(p, "hashing_algorithm", "unknown hashing algorithm '%s'",
                       WR_LOG_ESC(esc, algo));
        }
        if ((rc = get_str(p, o, "password_hash", false, &u->secret)) < 0 ||
            (rc = get_str(p, o, "password", false, &pw)) < 0)
            return rc;
        if (!json_object_get(o, "password_hash") && json_object_get(o, "password")) {
            u->secret = pw;
            u->clear = true;
        } else if (wr_passwd_inspect(u->algo, u->secret.ptr, u->secret.len) ==
                   WR_PASSWD_NOT_BASE64) {
            return bad(p, "password_hash", "not base64");
        }
        if ((rc = get_tags(p, o, &u->tags)) < 0 || (rc = get_kept(p, o, known, &u->kept)) < 0)
            return rc;
        /* A name given twice: the last entry wins, as it would in RabbitMQ. */
        if ((old = wr_hmap_get(&p->users, u->name)) != NULL) {
            struct p_user *ou = wr_container_of(old, struct p_user, node);
            json_decref(ou->kept);
            wr_hmap_del(&p->users, old);
            ou->name.ptr = NULL; /* not applied */
        }
        u->node.key = u->name;
        if (wr_hmap_put(&p->users, &u->node) < 0) {
            json_decref(u->kept);
            return oom(p);
        }
        p->nus++;
    }
    return 0;
}

static int check_user_vhost(struct plan *p, json_t *o, struct wr_str *user, struct wr_str *vhost)
{
    int rc;
    if ((rc = get_name(p, o, "user", UINT32_MAX, user)) < 0)
        return rc;
    ident_add(p, "user", *user);
    if ((rc = get_name(p, o, "vhost", NAME_MAX_LEN, vhost)) < 0)
        return rc;
    ident_add(p, "vhost", *vhost);
    if (!wr_hmap_get(&p->users, *user) && !wr_users_get(p->b->users, *user))
        return bad(p, "user", "no such user");
    if (!vhost_known(p, *vhost))
        return bad(p, "vhost", "no such vhost");
    return 0;
}

static int check_permissions(struct plan *p, json_t *root)
{
    static const char *const ops[3] = {"configure", "write", "read"};
    size_t n;
    int rc;
    json_t *a = section(p, root, "permissions", &n, &rc);

    p->section = "permissions";
    if (rc < 0 || !n)
        return rc;
    if (!(p->pm = calloc(n, sizeof(*p->pm))))
        return oom(p);
    for (size_t i = 0; i < n; i++) {
        struct p_perm *m = &p->pm[p->npm];
        json_t *o = entry(p, a, i, &rc);
        if (!o || (rc = check_user_vhost(p, o, &m->user, &m->vhost)) < 0)
            return rc;
        for (int k = 0; k < 3; k++) {
            if ((rc = get_name(p, o, ops[k], UINT32_MAX, &m->pat[k])) < 0 ||
                (rc = check_pattern(p, ops[k], m->pat[k])) < 0)
                return rc;
        }
        p->npm++;
    }
    return 0;
}

static int check_topic_permissions(struct plan *p, json_t *root)
{
    size_t n;
    int rc;
    json_t *a = section(p, root, "topic_permissions", &n, &rc);

    p->section = "topic_permissions";
    if (rc < 0 || !n)
        return rc;
    if (!(p->tp = calloc(n, sizeof(*p->tp))))
        return oom(p);
    for (size_t i = 0; i < n; i++) {
        struct p_topic *t = &p->tp[p->ntp];
        json_t *o = entry(p, a, i, &rc);
        struct wr_str pats[2];
        static const char *const ops[2] = {"write", "read"};

        if (!o || (rc = check_user_vhost(p, o, &t->user, &t->vhost)) < 0)
            return rc;
        if ((rc = get_name(p, o, "exchange", NAME_MAX_LEN, &t->exchange)) < 0)
            return rc;
        ident_add(p, "exchange", t->exchange);
        for (int k = 0; k < 2; k++) {
            struct wr_errbuf e;
            struct wr_perm_re *re;
            if ((rc = get_name(p, o, ops[k], UINT32_MAX, &pats[k])) < 0 ||
                (rc = check_pattern(p, ops[k], pats[k])) < 0)
                return rc;
            /* The user table compiles it with {username} and {vhost}
             * expanded: that must compile too. */
            if (memchr(pats[k].ptr, '{', pats[k].len)) {
                re = wr_perm_re_compile_expanded(pats[k].ptr, pats[k].len, t->user.ptr, t->user.len,
                                                 t->vhost.ptr, t->vhost.len, &e);
                if (!re)
                    return e.code == WR_ENOMEM ? oom(p) : bad(p, ops[k], "%s", errtext(&e));
                wr_perm_re_free(re);
            }
        }
        t->write = pats[0];
        t->read = pats[1];
        p->ntp++;
    }
    return 0;
}

/* vhost, name and durable of an exchange or queue entry. Returns 1 when
 * the entry is transient (skipped). */
static int check_object(struct plan *p, json_t *o, struct wr_str *vhost, struct wr_str *name)
{
    bool durable;
    int rc;
    if ((rc = get_name(p, o, "name", NAME_MAX_LEN, name)) < 0)
        return rc;
    ident_add(p, "name", *name);
    if ((rc = get_name(p, o, "vhost", NAME_MAX_LEN, vhost)) < 0)
        return rc;
    ident_add(p, "vhost", *vhost);
    if (!vhost_known(p, *vhost))
        return bad(p, "vhost", "no such vhost");
    if ((rc = get_bool(p, o, "durable", true, &durable)) < 0)
        return rc;
    return durable ? 0 : 1;
}

static int check_exchanges(struct plan *p, json_t *root)
{
    size_t n;
    int rc;
    json_t *a = section(p, root, "exchanges", &n, &rc);

    p->section = "exchanges";
    if (rc < 0 || !n)
        return rc;
    if (!(p->xs = calloc(n, sizeof(*p->xs))))
        return oom(p);
    for (size_t i = 0; i < n; i++) {
        struct p_exchange *x = &p->xs[p->nxs];
        struct wr_vhost *vh;
        struct wr_fv ae;
        int transient;
        json_t *o = entry(p, a, i, &rc);

        if (!o || (transient = check_object(p, o, &x->vhost, &x->name)) < 0)
            return o ? transient : rc;
        if ((rc = get_str(p, o, "type", true, &x->type)) < 0 ||
            (rc = get_bool(p, o, "auto_delete", false, &x->auto_delete)) < 0 ||
            (rc = get_bool(p, o, "internal", false, &x->internal)) < 0 ||
            (rc = get_args(p, o, &x->args)) < 0)
            return rc;
        if (!(x->xt = wr_xtype_find(x->type))) {
            char esc[WR_LOG_ESC_MAX];
            struct wr_str t = x->type;
            if (t.len > NAME_MAX_LEN)
                t.len = NAME_MAX_LEN;
            return bad(p, "type", "unknown exchange type '%s'", WR_LOG_ESC(esc, t));
        }
        if (x->args.len && wr_table_get(x->args, "alternate-exchange", &ae) == 1 && ae.type != 'S')
            return bad(p, "arguments", "alternate-exchange is not a string");
        p->nxs++;
        if (transient) {
            p->transient_x++;
            continue;
        }
        if (x->name.len == 0 || (x->name.len >= 4 && memcmp(x->name.ptr, "amq.", 4) == 0)) {
            skip_log(p, x->name.len ? "the prefix amq. is reserved" : "the default exchange");
            continue;
        }
        vh = wr_broker_vhost(p->b, x->vhost);
        if (vh && wr_vhost_exchange(vh, x->name))
            continue; /* kept as it is */
        x->node.key = key2(p, x->vhost, x->name);
        if (!x->node.key.ptr)
            return oom(p);
        if (wr_hmap_get(&p->exchanges, x->node.key))
            continue; /* the first entry of a name counts */
        if (wr_hmap_put(&p->exchanges, &x->node) < 0)
            return oom(p);
        x->apply = true;
    }
    return 0;
}

static int check_queues(struct plan *p, json_t *root)
{
    size_t n;
    int rc;
    json_t *a = section(p, root, "queues", &n, &rc);

    p->section = "queues";
    if (rc < 0 || !n)
        return rc;
    if (!(p->qs = calloc(n, sizeof(*p->qs))))
        return oom(p);
    for (size_t i = 0; i < n; i++) {
        struct p_queue *q = &p->qs[p->nqs];
        struct wr_str type;
        struct wr_errbuf e;
        struct wr_vhost *vh;
        char vname[NAME_MAX_LEN + 1];
        bool has_id;
        int transient;
        json_t *o = entry(p, a, i, &rc);

        if (!o || (transient = check_object(p, o, &q->vhost, &q->name)) < 0)
            return o ? transient : rc;
        if ((rc = get_bool(p, o, "auto_delete", false, &q->auto_delete)) < 0 ||
            (rc = get_str(p, o, "type", false, &type)) < 0 || (rc = get_args(p, o, &q->args)) < 0 ||
            (rc = get_uint(p, o, "warren_id", UINT64_MAX, &has_id, &q->id)) < 0)
            return rc;
        /* An empty name would declare a server-named queue. */
        if (!q->name.len)
            return bad(p, "name", "empty");
        memcpy(vname, q->vhost.ptr, q->vhost.len);
        vname[q->vhost.len] = '\0';
        if (wr_qargs_validate(q->args, q->name, vname, &e) < 0)
            return e.code == WR_ENOMEM ? oom(p) : bad(p, "arguments", "%s", errtext(&e));
        if (p->mode == WR_DEFS_RECOVER && (!has_id || !q->id))
            return bad(p, "warren_id", "missing");
        if (p->mode != WR_DEFS_RECOVER)
            q->id = 0;
        p->nqs++;
        if (transient) {
            p->transient_q++;
            continue;
        }
        vh = wr_broker_vhost(p->b, q->vhost);
        if (vh && wr_vhost_queue(vh, q->name))
            continue; /* kept as it is */
        q->node.key = key2(p, q->vhost, q->name);
        if (!q->node.key.ptr)
            return oom(p);
        if (wr_hmap_get(&p->queues, q->node.key))
            continue;
        if (wr_hmap_put(&p->queues, &q->node) < 0)
            return oom(p);
        q->apply = true;
    }
    return 0;
}

static int check_bindings(struct plan *p, json_t *root)
{
    size_t n;
    int rc;
    json_t *a = section(p, root, "bindings", &n, &rc);

    p->section = "bindings";
    if (rc < 0 || !n)
        return rc;
    if (!(p->bs = calloc(n, sizeof(*p->bs))))
        return oom(p);
    for (size_t i = 0; i < n; i++) {
        struct p_binding *bd = &p->bs[p->nbs];
        struct wr_str dtype;
        const struct wr_xtype *st;
        bool locked = false, found;
        json_t *o = entry(p, a, i, &rc);

        if (!o || (rc = get_name(p, o, "source", NAME_MAX_LEN, &bd->src)) < 0)
            return rc;
        ident_add(p, "source", bd->src);
        if ((rc = get_name(p, o, "destination", NAME_MAX_LEN, &bd->dest)) < 0)
            return rc;
        ident_add(p, "destination", bd->dest);
        if ((rc = get_name(p, o, "vhost", NAME_MAX_LEN, &bd->vhost)) < 0)
            return rc;
        ident_add(p, "vhost", bd->vhost);
        if (!vhost_known(p, bd->vhost))
            return bad(p, "vhost", "no such vhost");
        if ((rc = get_str(p, o, "destination_type", true, &dtype)) < 0)
            return rc;
        if (wr_str_eqc(dtype, "exchange"))
            bd->to_exchange = true;
        else if (!wr_str_eqc(dtype, "queue"))
            return bad(p, "destination_type", "neither queue nor exchange");
        if ((rc = get_name(p, o, "routing_key", NAME_MAX_LEN, &bd->key)) < 0 ||
            (rc = get_args(p, o, &bd->args)) < 0)
            return rc;
        p->nbs++;
        if (!bd->src.len || (bd->to_exchange && !bd->dest.len)) {
            skip_log(p, "the default exchange takes no bindings");
            continue;
        }
        st = exchange_after(p, bd->vhost, bd->src);
        if (bd->to_exchange)
            found = exchange_after(p, bd->vhost, bd->dest) != NULL;
        else
            found = queue_after(p, bd->vhost, bd->dest, &locked);
        if (!st || !found) {
            skip_log(p, !st               ? "no such source exchange"
                        : bd->to_exchange ? "no such destination exchange"
                                          : "no such destination queue");
            continue;
        }
        if (locked) {
            skip_log(p, "the queue is exclusive");
            continue;
        }
        if (st->validate && st->validate(bd->key, bd->args) < 0)
            return bad(p, "arguments", "invalid binding arguments for a %s exchange", st->name);
        bd->apply = true;
    }
    return 0;
}

static int check_kept_section(struct plan *p, json_t *root, const char *name, json_t **out)
{
    size_t n;
    int rc;
    json_t *a = section(p, root, name, &n, &rc);
    *out = NULL;
    p->section = name;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (!entry(p, a, i, &rc))
            return rc;
    }
    *out = n ? a : NULL;
    return 0;
}

static int check(struct plan *p, json_t *root)
{
    uint64_t ranges;
    int rc;

    if (!json_is_object(root)) {
        snprintf(p->err->msg, sizeof(p->err->msg), "not a JSON object");
        return WR_ESYNTAX;
    }
    if (!(p->scratch = wr_vhost_new("", NULL)))
        return oom(p);
    p->section = "";
    {
        json_t *j = json_object_get(root, "warren_queue_id_ranges");
        if (j && (!json_is_integer(j) || json_integer_value(j) < 0 ||
                  json_integer_value(j) > UINT32_MAX)) {
            snprintf(p->err->msg, sizeof(p->err->msg),
                     "warren_queue_id_ranges: not an integer from 0 to %u", UINT32_MAX);
            return WR_ESYNTAX;
        }
        p->has_ranges = j != NULL;
        ranges = j ? (uint64_t)json_integer_value(j) : 0;
        p->ranges = (uint32_t)ranges;
    }
    if ((rc = check_vhosts(p, root)) < 0 || (rc = check_users(p, root)) < 0 ||
        (rc = check_permissions(p, root)) < 0 || (rc = check_topic_permissions(p, root)) < 0 ||
        (rc = check_exchanges(p, root)) < 0 || (rc = check_queues(p, root)) < 0 ||
        (rc = check_bindings(p, root)) < 0 ||
        (rc = check_kept_section(p, root, "parameters", &p->params)) < 0 ||
        (rc = check_kept_section(p, root, "global_parameters", &p->globals)) < 0 ||
        (rc = check_kept_section(p, root, "policies", &p->policies)) < 0)
        return rc;
    return 0;
}

static void plan_init(struct plan *p, struct wr_broker *b, enum wr_defs_mode mode,
                      struct wr_defs_err *err)
{
    memset(p, 0, sizeof(*p));
    p->b = b;
    p->mode = mode;
    p->err = err;
    wr_hmap_init(&p->vhosts);
    wr_hmap_init(&p->users);
    wr_hmap_init(&p->exchanges);
    wr_hmap_init(&p->queues);
    wr_hmap_init(&p->patterns);
}

/* The kept objects of users and vhosts are references the plan holds. */
static void plan_drop_kept(struct plan *p)
{
    for (size_t i = 0; i < p->nvh; i++)
        json_decref(p->vh[i].kept);
    for (size_t i = 0; i < p->nus; i++)
        if (p->us[i].name.ptr)
            json_decref(p->us[i].kept);
}

int wr_defs_check(struct wr_broker *b, const struct wr_defs *d, enum wr_defs_mode mode,
                  struct wr_defs_err *err)
{
    struct plan p;
    int rc;
    plan_init(&p, b, mode, err);
    rc = check(&p, d->root);
    plan_drop_kept(&p);
    plan_free(&p);
    return rc;
}

/* ---- what Warren keeps without applying ---- */

/* b->defs_kept as JSON: {"parameters": [..], "global_parameters": [..],
 * "policies": [..], "users": {name: {..}}, "vhosts": {name: {..}}}. */
static json_t *kept_load(struct wr_broker *b)
{
    json_t *k = b->defs_kept ? json_loads(b->defs_kept, JSON_ALLOW_NUL, NULL) : NULL;
    if (!json_is_object(k)) {
        json_decref(k);
        k = json_object();
    }
    return k;
}

static json_t *kept_get(json_t *k, const char *name, bool array)
{
    json_t *v = json_object_get(k, name);
    if (!v || (array ? !json_is_array(v) : !json_is_object(v))) {
        v = array ? json_array() : json_object();
        if (json_object_set_new(k, name, v) < 0)
            return NULL;
    }
    return v;
}

/* Does entry x say which object it is as y does (the fields `ids`)? */
static bool same_ids(json_t *x, json_t *y, const char *const *ids)
{
    for (size_t i = 0; ids[i]; i++) {
        json_t *a = json_object_get(x, ids[i]), *c = json_object_get(y, ids[i]);
        if (!json_equal(a, c) && (a || c))
            return false;
    }
    return true;
}

/* Merge entries into a kept array: one with the same identity is replaced,
 * as a second import of a policy replaces it in RabbitMQ. */
static int kept_merge(json_t *dst, json_t *src, const char *const *ids)
{
    size_t i, j;
    json_t *e, *f;
    json_array_foreach(src, i, e)
    {
        bool done = false;
        json_array_foreach(dst, j, f)
        {
            if (same_ids(e, f, ids)) {
                json_array_set(dst, j, e);
                done = true;
                break;
            }
        }
        if (!done && json_array_append(dst, e) < 0)
            return -1;
    }
    return 0;
}

static bool nonempty(json_t *v)
{
    return (json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v));
}

static int kept_apply(struct plan *p, unsigned *limits_users, unsigned *limits_vhosts)
{
    static const char *const param_ids[] = {"vhost", "component", "name", NULL};
    static const char *const global_ids[] = {"name", NULL};
    static const char *const policy_ids[] = {"vhost", "name", NULL};
    json_t *k = kept_load(p->b), *users, *vhosts;
    char *text;
    int rc = 0;

    *limits_users = *limits_vhosts = 0;
    if (!k)
        return oom(p);
    users = kept_get(k, "users", false);
    vhosts = kept_get(k, "vhosts", false);
    if (!users || !vhosts)
        rc = -1;
    if (!rc && p->params)
        rc = kept_merge(kept_get(k, "parameters", true), p->params, param_ids);
    if (!rc && p->globals)
        rc = kept_merge(kept_get(k, "global_parameters", true), p->globals, global_ids);
    if (!rc && p->policies)
        rc = kept_merge(kept_get(k, "policies", true), p->policies, policy_ids);
    for (size_t i = 0; !rc && i < p->nus; i++) {
        struct p_user *u = &p->us[i];
        if (!u->name.ptr)
            continue;
        if (u->kept)
            rc = json_object_setn(users, u->name.ptr, u->name.len, u->kept);
        else
            json_object_deln(users, u->name.ptr, u->name.len);
        *limits_users += nonempty(json_object_get(u->kept, "limits"));
    }
    for (size_t i = 0; !rc && i < p->nvh; i++) {
        struct p_vhost *v = &p->vh[i];
        if (v->kept)
            rc = json_object_setn(vhosts, v->name.ptr, v->name.len, v->kept);
        else if (!v->exists)
            json_object_deln(vhosts, v->name.ptr, v->name.len);
        *limits_vhosts += nonempty(json_object_get(v->kept, "limits"));
    }
    text = rc ? NULL : json_dumps(k, JSON_COMPACT);
    json_decref(k);
    if (!text)
        return oom(p);
    free(p->b->defs_kept);
    p->b->defs_kept = text;
    return 0;
}

/* ---- applying ---- */

static int apply_fail(struct plan *p, const char *what, struct wr_str name, const char *why)
{
    char esc[WR_LOG_ESC_MAX];
    if (name.len > NAME_MAX_LEN)
        name.len = NAME_MAX_LEN;
    snprintf(p->err->msg, sizeof(p->err->msg),
             "%s '%s' could not be applied (%s); the definitions before it were", what,
             WR_LOG_ESC(esc, name), why);
    return WR_ENOMEM;
}

static int apply(struct plan *p)
{
    struct wr_broker *b = p->b;
    struct wr_errbuf e;
    unsigned lu, lv, nx = 0, nq = 0, nb = 0;

    if (p->mode == WR_DEFS_RECOVER) {
        /* Ranges of journal identities are never given twice: start after
         * every range the file names, before any vhost draws one. */
        uint32_t r = p->has_ranges ? p->ranges : 0;
        for (size_t i = 0; i < p->nvh; i++)
            if (p->vh[i].has_last && (p->vh[i].last_id >> 40) + 1 > r)
                r = (uint32_t)((p->vh[i].last_id >> 40) + 1);
        if (r > b->queue_id_ranges)
            b->queue_id_ranges = r;
    }
    for (size_t i = 0; i < p->nvh; i++) {
        struct p_vhost *v = &p->vh[i];
        struct wr_vhost *vh = wr_broker_vhost(b, v->name);
        bool added = !vh;
        if (!vh && !(vh = wr_broker_vhost_add(b, v->name)))
            return apply_fail(p, "vhost", v->name, "out of memory");
        if (p->mode == WR_DEFS_RECOVER && v->has_last && added) {
            /* It has its range already: give back the one just drawn, so
             * a restart does not use up ranges. */
            vh->last_queue_id = v->last_id;
            b->queue_id_ranges--;
        }
    }
    for (size_t i = 0; i < p->nus; i++) {
        struct p_user *u = &p->us[i];
        int rc;
        if (!u->name.ptr)
            continue;
        rc = u->clear ? wr_users_put_password(b->users, u->name, u->secret, u->tags, &e)
                      : wr_users_put_hash(b->users, u->name, u->algo, u->secret, u->tags, &e);
        if (rc < 0)
            return apply_fail(p, "user", u->name, errtext(&e));
    }
    for (size_t i = 0; i < p->npm; i++) {
        struct p_perm *m = &p->pm[i];
        if (wr_users_set_permissions(b->users, m->user, m->vhost, m->pat[0], m->pat[1], m->pat[2],
                                     &e) < 0)
            return apply_fail(p, "permission of user", m->user, errtext(&e));
    }
    for (size_t i = 0; i < p->ntp; i++) {
        struct p_topic *t = &p->tp[i];
        if (wr_users_set_topic_permissions(b->users, t->user, t->vhost, t->exchange, t->write,
                                           t->read, &e) < 0)
            return apply_fail(p, "topic permission of user", t->user, errtext(&e));
    }
    for (size_t i = 0; i < p->nxs; i++) {
        struct p_exchange *x = &p->xs[i];
        struct wr_exchange_decl d = {.name = x->name,
                                     .type = x->type,
                                     .args = x->args,
                                     .durable = true,
                                     .auto_delete = x->auto_delete,
                                     .internal = x->internal};
        struct wr_exchange *out;
        if (!x->apply)
            continue;
        if (wr_vhost_exchange_declare(wr_broker_vhost(b, x->vhost), &d, &out, &e) < 0)
            return apply_fail(p, "exchange", x->name, errtext(&e));
        nx++;
    }
    for (size_t i = 0; i < p->nqs; i++) {
        struct p_queue *q = &p->qs[i];
        struct wr_vhost *vh = wr_broker_vhost(b, q->vhost);
        /* internal: server-named amq.gen- queues come back too */
        struct wr_queue_decl d = {.name = q->name,
                                  .args = q->args,
                                  .durable = true,
                                  .auto_delete = q->auto_delete,
                                  .internal = true};
        struct wr_queue *out;
        uint64_t last = vh->last_queue_id;
        bool created;
        if (!q->apply)
            continue;
        if (wr_vhost_queue_declare(vh, &d, &out, &created, &e) < 0)
            return apply_fail(p, "queue", q->name, errtext(&e));
        if (q->id) {
            /* Recovered: its identity as written; the one the declare
             * drew is given back. */
            out->store_id = q->id;
            vh->last_queue_id = q->id > last ? q->id : last;
        }
        nq++;
    }
    for (size_t i = 0; i < p->nbs; i++) {
        struct p_binding *bd = &p->bs[i];
        if (!bd->apply)
            continue;
        if (wr_vhost_bind(wr_broker_vhost(b, bd->vhost), bd->src, bd->dest, bd->to_exchange,
                          bd->key, bd->args, NULL, &e) < 0)
            return apply_fail(p, "binding from", bd->src, errtext(&e));
        nb++;
    }
    if (kept_apply(p, &lu, &lv) < 0)
        return WR_ENOMEM;
    if (b->persist)
        b->persist->defs_changed(b->persist->ctx); /* users, kept parts */

    if (p->mode == WR_DEFS_IMPORT) {
        size_t np = p->params ? json_array_size(p->params) : 0,
               ng = p->globals ? json_array_size(p->globals) : 0,
               npo = p->policies ? json_array_size(p->policies) : 0;
        wr_log(WR_LOG_INFO,
               "definitions: %u exchanges, %u queues, %u bindings imported (%zu vhosts, %zu users, "
               "%zu permissions, %zu topic permissions)",
               nx, nq, nb, p->nvh, p->users.n, p->npm, p->ntp);
        if (p->transient_x || p->transient_q)
            wr_log(WR_LOG_INFO,
                   "definitions: %u transient exchanges and %u transient queues skipped, as "
                   "RabbitMQ skips them",
                   p->transient_x, p->transient_q);
        if (np || ng || npo || lu || lv)
            wr_log(WR_LOG_WARNING,
                   "definitions: not applied (Warren does not implement them), kept for "
                   "export: %zu policies, %zu parameters, %zu global parameters, limits of %u "
                   "users, limits of %u vhosts",
                   npo, np, ng, lu, lv);
    } else {
        wr_log(
            WR_LOG_INFO,
            "definitions: %u exchanges, %u queues, %u bindings recovered (%zu vhosts, %zu users, "
            "%zu permissions, %zu topic permissions)",
            nx, nq, nb, p->nvh, p->users.n, p->npm, p->ntp);
    }
    return 0;
}

int wr_defs_import(struct wr_broker *b, const struct wr_defs *d, enum wr_defs_mode mode,
                   struct wr_defs_err *err)
{
    struct plan p;
    int rc;
    plan_init(&p, b, mode, err);
    rc = check(&p, d->root);
    if (rc == 0)
        rc = apply(&p);
    plan_drop_kept(&p);
    plan_free(&p);
    return rc;
}

/* ---- export ---- */

static bool predeclared(const struct wr_exchange *x)
{
    struct wr_str n = wr_exchange_name(x);
    return n.len == 0 || (n.len >= 4 && memcmp(n.ptr, "amq.", 4) == 0);
}

/* Entries in a stable order (by the fields named), so the file changes
 * only where the definitions do. */
static const char *const *sort_keys;

static int entry_cmp(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    for (size_t i = 0; sort_keys[i]; i++) {
        char raw[32];
        json_t *jx, *jy;
        size_t lx, ly;
        int c;
        snprintf(raw, sizeof(raw), "%s_raw", sort_keys[i]);
        jx = json_object_get(x, raw) ? json_object_get(x, raw) : json_object_get(x, sort_keys[i]);
        jy = json_object_get(y, raw) ? json_object_get(y, raw) : json_object_get(y, sort_keys[i]);
        lx = json_string_length(jx);
        ly = json_string_length(jy);
        c = memcmp(json_string_value(jx) ? json_string_value(jx) : "",
                   json_string_value(jy) ? json_string_value(jy) : "", lx < ly ? lx : ly);
        if (c)
            return c;
        if (lx != ly)
            return lx < ly ? -1 : 1;
    }
    return 0;
}

static json_t *sorted(json_t *a, const char *const *keys)
{
    size_t n = json_array_size(a), i;
    json_t **v, *out, *e;
    if (!n)
        return a;
    if (!(v = malloc(n * sizeof(*v))))
        return a;
    json_array_foreach(a, i, e) v[i] = e;
    sort_keys = keys;
    qsort(v, n, sizeof(*v), entry_cmp);
    out = json_array();
    for (i = 0; out && i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    if (!out)
        return a;
    json_decref(a);
    return out;
}

struct perm_walk {
    json_t *perms, *topics;
    bool oom;
};

static void walk_perm(void *ctx, const struct wr_user *x, struct wr_str vhost,
                      const struct wr_vperm *vp)
{
    struct perm_walk *w = ctx;
    json_t *o = json_object();
    if (!o || add_name(o, "user", wr_user_name(x)) < 0 || add_name(o, "vhost", vhost) < 0 ||
        add_name(o, "configure", wr_vperm_pattern(vp, WR_PERM_CONFIGURE)) < 0 ||
        add_name(o, "write", wr_vperm_pattern(vp, WR_PERM_WRITE)) < 0 ||
        add_name(o, "read", wr_vperm_pattern(vp, WR_PERM_READ)) < 0 ||
        json_array_append_new(w->perms, o) < 0)
        w->oom = true;
}

static void walk_topic(void *ctx, const struct wr_user *x, struct wr_str vhost,
                       struct wr_str exchange, struct wr_str write, struct wr_str read)
{
    struct perm_walk *w = ctx;
    json_t *o = json_object();
    if (!o || add_name(o, "user", wr_user_name(x)) < 0 || add_name(o, "vhost", vhost) < 0 ||
        add_name(o, "exchange", exchange) < 0 || add_name(o, "write", write) < 0 ||
        add_name(o, "read", read) < 0 || json_array_append_new(w->topics, o) < 0)
        w->oom = true;
}

/* tags "a,b" -> ["a", "b"], as RabbitMQ 3.10 writes them */
static json_t *tags_json(struct wr_str tags)
{
    json_t *a = json_array();
    const char *p = tags.ptr, *end = tags.ptr + tags.len;
    while (a && p < end) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        const char *e = q ? q : end, *s = p;
        while (s < e && *s == ' ')
            s++;
        while (e > s && e[-1] == ' ')
            e--;
        if (e > s) {
            json_t *t = json_stringn(s, (size_t)(e - s));
            if (!t) { /* not Unicode: escaped */
                char esc[WR_LOG_ESC_MAX * 4];
                t = json_string(wr_log_esc(esc, sizeof(esc), s, (size_t)(e - s)));
            }
            json_array_append_new(a, t);
        }
        p = q ? q + 1 : end;
    }
    return a;
}

static int export_users(struct wr_broker *b, json_t *root, json_t *kept)
{
    static const char *const by[] = {"name", NULL};
    json_t *ju = json_array(), *ku = json_object_get(kept, "users");
    struct wr_user *x = NULL;
    size_t it = 0;

    if (!ju)
        return -1;
    while ((x = wr_users_next(b->users, &it, x)) != NULL) {
        struct wr_str name = wr_user_name(x), hash = wr_user_hash(x);
        json_t *o = json_object(), *k = json_object_getn(ku, name.ptr, name.len);
        const char *key;
        json_t *v;
        if (!o || json_array_append_new(ju, o) < 0)
            goto fail;
        json_object_foreach(k, key, v) json_object_set(o, key, v);
        if (!json_object_get(o, "limits"))
            set_new(o, "limits", json_object());
        if (add_name(o, "name", name) < 0 ||
            set_new(o, "password_hash", json_stringn(hash.ptr ? hash.ptr : "", hash.len)) < 0 ||
            set_new(o, "hashing_algorithm",
                    json_string(wr_passwd_algo_name(wr_user_hash_algo(x)))) < 0 ||
            set_new(o, "tags", tags_json(wr_user_tags(x))) < 0)
            goto fail;
    }
    return json_object_set_new(root, "users", sorted(ju, by));
fail:
    json_decref(ju);
    return -1;
}

int wr_defs_exchange_entry(struct wr_exchange *x, json_t **out)
{
    json_t *o;
    *out = NULL;
    if (!x->durable || predeclared(x))
        return 0;
    o = json_object();
    if (!o || add_name(o, "name", wr_exchange_name(x)) < 0 ||
        add_name(o, "vhost", wr_str_c(x->vhost->name)) < 0 ||
        set_new(o, "type", json_string(x->type->name)) < 0 ||
        set_new(o, "durable", json_true()) < 0 ||
        set_new(o, "auto_delete", json_boolean(x->auto_delete)) < 0 ||
        set_new(o, "internal", json_boolean(x->internal)) < 0 || add_args(o, x->args) < 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

/* A binding is kept when both ends are: its source durable, its
 * destination a journaled queue or a durable exchange. */
static bool binding_kept(const struct wr_binding *bd)
{
    if (!bd->src->durable)
        return false;
    if (bd->kind == WR_DEST_QUEUE)
        return ((const struct wr_queue *)bd->dest)->store_id != 0;
    return ((const struct wr_exchange *)bd->dest)->durable;
}

int wr_defs_binding_entry(struct wr_binding *bd, json_t **out)
{
    struct wr_str dname = bd->kind == WR_DEST_QUEUE
                              ? wr_queue_name((struct wr_queue *)bd->dest)
                              : wr_exchange_name((struct wr_exchange *)bd->dest);
    json_t *o;
    *out = NULL;
    if (!binding_kept(bd))
        return 0;
    o = json_object();
    if (!o || add_name(o, "source", wr_exchange_name(bd->src)) < 0 ||
        add_name(o, "vhost", wr_str_c(bd->src->vhost->name)) < 0 ||
        add_name(o, "destination", dname) < 0 ||
        set_new(o, "destination_type",
                json_string(bd->kind == WR_DEST_QUEUE ? "queue" : "exchange")) < 0 ||
        add_name(o, "routing_key", bd->key) < 0 || add_args(o, bd->args) < 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

int wr_defs_queue_entry(struct wr_queue *q, json_t **out)
{
    json_t *o;
    *out = NULL;
    if (!q->store_id)
        return 0;
    o = json_object();
    if (!o || add_name(o, "name", wr_queue_name(q)) < 0 ||
        add_name(o, "vhost", wr_str_c(q->vhost->name)) < 0 ||
        set_new(o, "durable", json_true()) < 0 ||
        set_new(o, "auto_delete", json_boolean(q->auto_delete)) < 0 ||
        set_new(o, "type", json_string(wr_qtype_name(q->s.type))) < 0 || add_args(o, q->args) < 0 ||
        set_new(o, "warren_id", json_integer((json_int_t)q->store_id)) < 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

/* Append an object's entry, if it is kept. */
static int append_entry(json_t *a, int rc, json_t *o)
{
    if (rc < 0)
        return -1;
    return o ? json_array_append_new(a, o) : 0;
}

static int export_vhost_objects(struct wr_vhost *vh, json_t *jx, json_t *jq, json_t *jb)
{
    struct wr_hnode *n;
    size_t it;

    for (n = wr_hmap_first(&vh->exchanges, &it); n; n = wr_hmap_next(&vh->exchanges, &it, n)) {
        struct wr_exchange *x = wr_container_of(n, struct wr_exchange, node);
        struct wr_list *l;
        if (!x->durable)
            continue;
        json_t *o;
        int rc = wr_defs_exchange_entry(x, &o);
        if (append_entry(jx, rc, o) < 0)
            return -1;
        wr_list_each(l, &x->bindings)
        {
            struct wr_binding *bd = wr_container_of(l, struct wr_binding, src_node);
            rc = wr_defs_binding_entry(bd, &o);
            if (append_entry(jb, rc, o) < 0)
                return -1;
        }
    }
    for (n = wr_hmap_first(&vh->queues, &it); n; n = wr_hmap_next(&vh->queues, &it, n)) {
        struct wr_queue *q = wr_container_of(n, struct wr_queue, node);
        json_t *o;
        int rc = wr_defs_queue_entry(q, &o);
        if (append_entry(jq, rc, o) < 0)
            return -1;
    }
    return 0;
}

static json_t *export_doc(struct wr_broker *b)
{
    static const char *const by_name[] = {"name", NULL};
    static const char *const by_perm[] = {"user", "vhost", NULL};
    static const char *const by_topic[] = {"user", "vhost", "exchange", NULL};
    static const char *const by_obj[] = {"vhost", "name", NULL};
    static const char *const by_binding[] = {
        "vhost", "source", "destination_type", "destination", "routing_key", "arguments_raw", NULL};
    json_t *root = json_object(), *kept = kept_load(b), *jv = json_array(), *jx = json_array(),
           *jq = json_array(), *jb = json_array(), *kv = json_object_get(kept, "vhosts");
    struct perm_walk w = {json_array(), json_array(), false};
    struct wr_perm_visitor pv = {&w, walk_perm, walk_topic};
    struct wr_hnode *vn;
    size_t vit;
    const char *const kept_arrays[] = {"parameters", "global_parameters", "policies"};

    if (!root || !kept || !jv || !jx || !jq || !jb || !w.perms || !w.topics)
        goto fail;
    if (set_new(root, "rabbit_version", json_string(RABBIT_FORMAT_VERSION)) < 0 ||
        set_new(root, "rabbitmq_version", json_string(RABBIT_FORMAT_VERSION)) < 0 ||
        set_new(root, "warren_version", json_string(WR_VERSION)) < 0 ||
        set_new(root, "warren_queue_id_ranges", json_integer(b->queue_id_ranges)) < 0)
        goto fail;
    for (vn = wr_hmap_first(&b->vhosts, &vit); vn; vn = wr_hmap_next(&b->vhosts, &vit, vn)) {
        struct wr_vhost *vh = wr_container_of(vn, struct wr_vhost, node);
        json_t *v = json_object(), *k = json_object_get(kv, vh->name);
        const char *key;
        json_t *val;
        if (!v || json_array_append_new(jv, v) < 0)
            goto fail;
        json_object_foreach(k, key, val) json_object_set(v, key, val);
        if (!json_object_get(v, "limits"))
            set_new(v, "limits", json_array());
        if (!json_object_get(v, "metadata")) {
            json_t *md = json_object();
            set_new(md, "description", json_string(""));
            set_new(md, "tags", json_array());
            set_new(v, "metadata", md);
        }
        if (set_new(v, "name", json_string(vh->name)) < 0 ||
            set_new(v, "warren_last_queue_id", json_integer((json_int_t)vh->last_queue_id)) < 0 ||
            export_vhost_objects(vh, jx, jq, jb) < 0)
            goto fail;
    }
    if (export_users(b, root, kept) < 0)
        goto fail;
    wr_users_visit(b->users, &pv);
    if (w.oom)
        goto fail;
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_object_get(kept, kept_arrays[i]);
        if (set_new(root, kept_arrays[i], json_is_array(a) ? json_copy(a) : json_array()) < 0)
            goto fail;
    }
    if (json_object_set_new(root, "vhosts", sorted(jv, by_name)) < 0 ||
        json_object_set_new(root, "permissions", sorted(w.perms, by_perm)) < 0 ||
        json_object_set_new(root, "topic_permissions", sorted(w.topics, by_topic)) < 0 ||
        json_object_set_new(root, "exchanges", sorted(jx, by_obj)) < 0 ||
        json_object_set_new(root, "queues", sorted(jq, by_obj)) < 0 ||
        json_object_set_new(root, "bindings", sorted(jb, by_binding)) < 0) {
        json_decref(root);
        json_decref(kept);
        return NULL;
    }
    json_decref(kept);
    return root;
fail:
    json_decref(root);
    json_decref(kept);
    json_decref(jv);
    json_decref(jx);
    json_decref(jq);
    json_decref(jb);
    json_decref(w.perms);
    json_decref(w.topics);
    return NULL;
}

/* Keys sorted, as RabbitMQ writes them. The data directory's copy also
 * says up to which line of the definitions log it holds. */
static char *dump(struct wr_broker *b, bool with_seq, uint64_t seq)
{
    json_t *doc = export_doc(b);
    char *text;
    if (!doc)
        return NULL;
    if (with_seq && set_new(doc, "warren_defs_seq", json_integer((json_int_t)seq)) < 0) {
        json_decref(doc);
        return NULL;
    }
    text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(doc);
    return text;
}

char *wr_defs_export(struct wr_broker *b)
{
    return dump(b, false, 0);
}

/* ---- the data directory's file ---- */

int wr_defs_save(const char *path, struct wr_broker *b, uint64_t seq, uint64_t *bytes,
                 struct wr_errbuf *err)
{
    char tmp[4200], dir[4200];
    int fd, dfd, rc = 0;
    char *text = dump(b, true, seq);

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
        if (bytes)
            *bytes = len;
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

/* The log's whole text, or NULL with *len 0 when there is none. */
static int read_log(const char *path, char **text, size_t *len, struct wr_errbuf *err)
{
    struct stat st;
    size_t got = 0;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);

    *text = NULL;
    *len = 0;
    if (fd < 0)
        return errno == ENOENT ? 0
                               : wr_fail(err, WR_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0)
        rc = wr_fail(err, WR_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = wr_fail(err, WR_EIO, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size >= SIZE_MAX || !(*text = malloc((size_t)st.st_size + 1)))
        rc = wr_fail(err, WR_EIO, "%s: out of memory", path);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, *text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

int wr_defs_load(const char *path, const char *log_path, struct wr_broker *b,
                 struct wr_defs_recovered *out, struct wr_errbuf *err)
{
    struct wr_defs_err e;
    struct wr_defs *d;
    char *log = NULL;
    size_t log_len = 0, good = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = read_log(log_path, &log, &log_len, err)) < 0)
        return rc;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        /* No snapshot: a data directory never written to, or a log whose
         * snapshot is gone (its lines then name vhosts nobody knows, and
         * the import below says so). */
        d = wr_defs_parse("{}", 2, path, &e);
    } else {
        /* Our own file has no size limit: it is as large as the broker made it. */
        d = read_doc(path, UINT64_MAX, &e);
    }
    if (!d) {
        free(log);
        return wr_fail(err, WR_EIO, "%s", e.msg);
    }
    rc = wr_defslog_fold(d->root, log ? log : "", log_len, &out->seq, &good, &out->lines, &e);
    free(log);
    out->log_good = good;
    out->torn = good < log_len;
    if (rc < 0) {
        wr_defs_free(d);
        return wr_fail(err, WR_EIO, "%s", e.msg);
    }
    if (out->lines == 0 && json_object_size(d->root) == 0)
        rc = 0; /* nothing at all: a new data directory */
    else
        rc = wr_defs_import(b, d, WR_DEFS_RECOVER, &e);
    wr_defs_free(d);
    if (rc < 0)
        return wr_fail(err, WR_EIO, "%s: %s", path, e.msg);
    return 0;
}

/* ---- what is kept, for the management API ---- */

json_t *wr_defs_kept_get(struct wr_broker *b)
{
    return kept_load(b);
}

int wr_defs_kept_set(struct wr_broker *b, json_t *kept)
{
    char *text = json_dumps(kept, JSON_COMPACT);
    if (!text)
        return WR_ENOMEM;
    free(b->defs_kept);
    b->defs_kept = text;
    if (b->persist)
        b->persist->defs_changed(b->persist->ctx);
    return 0;
}

/* Drop the entries of a kept array whose "vhost" is `name`. */
static void kept_drop_vhost(json_t *a, struct wr_str name)
{
    size_t i = 0;
    while (i < json_array_size(a)) {
        json_t *v = json_object_get(json_array_get(a, i), "vhost");
        if (json_is_string(v) && json_string_length(v) == name.len &&
            memcmp(json_string_value(v), name.ptr, name.len) == 0)
            json_array_remove(a, i);
        else
            i++;
    }
}

static void kept_forget(struct wr_broker *b, const char *section, struct wr_str name)
{
    json_t *k;
    if (!b->defs_kept || !(k = kept_load(b)))
        return;
    json_object_deln(json_object_get(k, section), name.ptr, name.len);
    if (!strcmp(section, "vhosts")) {
        kept_drop_vhost(json_object_get(k, "parameters"), name);
        kept_drop_vhost(json_object_get(k, "policies"), name);
    }
    /* Out of memory: the stale entry stays, unused until a vhost or user
     * of that name comes back. */
    wr_defs_kept_set(b, k);
    json_decref(k);
}

void wr_defs_kept_forget_vhost(struct wr_broker *b, struct wr_str name)
{
    kept_forget(b, "vhosts", name);
}

void wr_defs_kept_forget_user(struct wr_broker *b, struct wr_str name)
{
    kept_forget(b, "users", name);
}
