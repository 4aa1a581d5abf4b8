/*
 * defslog.c - the definitions log (see defslog.h): appending lines at the
 * end of a loop turn, and folding them into a snapshot at recovery.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "store/crc32c.h"
#include "store/defslog.h"

struct wr_defslog {
    int fd;
    char *path;
    uint64_t size; /* bytes in the file */
    uint64_t seq;  /* last sequence number given */
    char *buf;     /* lines queued this turn */
    size_t len, cap;
    bool broken; /* a line could not be queued: the turn needs a snapshot */
};

/* ---- writing ---- */

struct wr_defslog *wr_defslog_open(const char *path, uint64_t good_len, uint64_t seq,
                                   struct wr_errbuf *err)
{
    struct wr_defslog *l = calloc(1, sizeof(*l));
    struct stat st;

    if (!l || !(l->path = strdup(path))) {
        free(l);
        wr_fail(err, WR_EINTERNAL, "out of memory");
        return NULL;
    }
    l->seq = seq;
    l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (l->fd < 0) {
        wr_fail(err, WR_EIO, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(l->fd, &st) < 0) {
        wr_fail(err, WR_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    if ((uint64_t)st.st_size > good_len) {
        if (ftruncate(l->fd, (off_t)good_len) < 0 || fdatasync(l->fd) < 0) {
            wr_fail(err, WR_EIO, "cannot cut the torn tail of %s: %s", path, strerror(errno));
            goto fail;
        }
        st.st_size = (off_t)good_len;
    }
    l->size = (uint64_t)st.st_size;
    return l;
fail:
    wr_defslog_close(l);
    return NULL;
}

void wr_defslog_close(struct wr_defslog *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->buf);
    free(l->path);
    free(l);
}

static bool reserve(struct wr_defslog *l, size_t more)
{
    char *b;
    size_t cap;
    if (l->cap - l->len >= more)
        return true;
    cap = l->cap ? l->cap : 4096;
    while (cap - l->len < more)
        cap *= 2;
    if (!(b = realloc(l->buf, cap)))
        return false;
    l->buf = b;
    l->cap = cap;
    return true;
}

void wr_defslog_add(struct wr_defslog *l, const char *kind, bool gone, json_t *entry)
{
    json_t *line;
    char *text = NULL;
    size_t n;

    if (!entry) {
        l->broken = true;
        return;
    }
    line = json_pack("{s:I, s:s, s:s, s:o}", "seq", (json_int_t)(l->seq + 1), "op",
                     gone ? "del" : "put", "kind", kind, "entry", entry);
    if (line)
        text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!text || !reserve(l, (n = strlen(text)) + 10)) {
        free(text);
        l->broken = true;
        return;
    }
    snprintf(l->buf + l->len, 10, "%08x ", (unsigned)wr_crc32c(0, text, n));
    l->len += 9;
    memcpy(l->buf + l->len, text, n);
    l->len += n;
    l->buf[l->len++] = '\n';
    l->seq++;
    free(text);
}

bool wr_defslog_pending(const struct wr_defslog *l)
{
    return l->len > 0 || l->broken;
}

int wr_defslog_write(struct wr_defslog *l, struct wr_errbuf *err)
{
    size_t off = 0;
    if (l->broken)
        return wr_fail(err, WR_EIO, "out of memory queueing a definitions change");
    while (off < l->len) {
        ssize_t w = write(l->fd, l->buf + off, l->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            l->size += off;
            l->broken = true;
            return wr_fail(err, WR_EIO, "cannot write %s: %s", l->path, strerror(errno));
        }
        off += (size_t)w;
    }
    l->size += off;
    if (fdatasync(l->fd) < 0) {
        l->broken = true;
        return wr_fail(err, WR_EIO, "cannot sync %s: %s", l->path, strerror(errno));
    }
    l->len = 0;
    return 0;
}

uint64_t wr_defslog_size(const struct wr_defslog *l)
{
    return l->size + l->len;
}

uint64_t wr_defslog_seq(const struct wr_defslog *l)
{
    return l->seq;
}

int wr_defslog_reset(struct wr_defslog *l, struct wr_errbuf *err)
{
    l->len = 0;
    if (ftruncate(l->fd, 0) < 0 || fdatasync(l->fd) < 0)
        return wr_fail(err, WR_EIO, "cannot empty %s: %s", l->path, strerror(errno));
    l->size = 0;
    l->broken = false;
    return 0;
}

/* ---- folding ---- */

struct fold {
    json_t *q, *x, *b;   /* identity -> [entry, seq], in order of appearance */
    json_t *qdel, *xdel; /* identity -> seq of the last deletion */
    json_t *vhosts;      /* vhost name -> its entry in the document */
};

static const char *const q_id[] = {"vhost", "name", NULL};
static const char *const b_id[] = {
    "vhost", "source", "destination_type", "destination", "routing_key", "arguments_raw", NULL};
static const char *const src_id[] = {"vhost", "source", NULL};
static const char *const dst_id[] = {"vhost", "destination", NULL};

/* An object's identity as a string: the fields named, each as written
 * (a name that is not Unicode is under "<field>_raw", in hex). */
static char *ident(json_t *e, const char *const *fields)
{
    json_t *a = json_array();
    char *s = NULL;
    size_t i;
    if (!a)
        return NULL;
    for (i = 0; fields[i]; i++) {
        char raw[40];
        json_t *v;
        snprintf(raw, sizeof(raw), "%s_raw", fields[i]);
        if ((v = json_object_get(e, raw)) != NULL)
            json_array_append_new(a, json_pack("[O]", v));
        else
            json_array_append(a, (v = json_object_get(e, fields[i])) ? v : json_null());
    }
    if (json_array_size(a) == i) /* else an append ran out of memory */
        s = json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
    json_decref(a);
    return s;
}

static int fold_fail(struct wr_defs_err *err, size_t line, const char *why)
{
    snprintf(err->msg, sizeof(err->msg), "definitions.log: line %zu: %s", line, why);
    return WR_ESYNTAX;
}

/* The document's array `name` into an identity map, entries at seq 0. */
static int load_section(json_t *root, const char *name, const char *const *fields, json_t *map,
                        struct wr_defs_err *err)
{
    json_t *a = json_object_get(root, name), *e;
    size_t i;
    if (!a)
        return 0;
    if (!json_is_array(a)) {
        snprintf(err->msg, sizeof(err->msg), "definitions.json: %s is not an array", name);
        return WR_ESYNTAX;
    }
    json_array_foreach(a, i, e)
    {
        char *k = ident(e, fields);
        if (!k || json_object_set_new(map, k, json_pack("[Oi]", e, 0)) < 0) {
            free(k);
            snprintf(err->msg, sizeof(err->msg), "out of memory reading definitions");
            return WR_ESYNTAX;
        }
        free(k);
    }
    return 0;
}

/* A queue's journal identity must never be given again: the vhost's
 * counter covers every queue the log names, deleted ones too. */
static void bump_last_id(struct fold *f, json_t *entry)
{
    const char *vname = json_string_value(json_object_get(entry, "vhost"));
    json_t *v = vname ? json_object_get(f->vhosts, vname) : NULL;
    json_t *id = json_object_get(entry, "warren_id");
    json_t *last = json_object_get(v, "warren_last_queue_id");
    if (!v || !json_is_integer(id) || json_integer_value(id) < 0)
        return;
    if (!json_is_integer(last) || json_integer_value(last) < json_integer_value(id))
        json_object_set_new(v, "warren_last_queue_id", json_integer(json_integer_value(id)));
}

static int apply_line(struct fold *f, json_t *line, uint64_t seq, size_t lineno,
                      struct wr_defs_err *err)
{
    const char *op = json_string_value(json_object_get(line, "op"));
    const char *kind = json_string_value(json_object_get(line, "kind"));
    json_t *e = json_object_get(line, "entry"), *map, *del;
    const char *const *fields;
    bool gone;
    char *k;

    if (!op || (strcmp(op, "put") && strcmp(op, "del")))
        return fold_fail(err, lineno, "op is not \"put\" or \"del\"");
    gone = op[0] == 'd';
    if (!json_is_object(e))
        return fold_fail(err, lineno, "entry is not an object");
    if (kind && !strcmp(kind, "queue")) {
        map = f->q, del = f->qdel, fields = q_id;
        bump_last_id(f, e);
    } else if (kind && !strcmp(kind, "exchange")) {
        map = f->x, del = f->xdel, fields = q_id;
    } else if (kind && !strcmp(kind, "binding")) {
        map = f->b, del = NULL, fields = b_id;
    } else {
        return fold_fail(err, lineno, "kind is not queue, exchange or binding");
    }
    if (!(k = ident(e, fields)))
        return fold_fail(err, lineno, "out of memory");
    if (gone) {
        json_object_del(map, k);
        if (del)
            json_object_set_new(del, k, json_integer((json_int_t)seq));
    } else {
        json_object_set_new(map, k, json_pack("[OI]", e, (json_int_t)seq));
    }
    free(k);
    return 0;
}

/* Whether the line [p, end) is intact: its CRC matches and it parses. */
static json_t *parse_line(const char *p, const char *end)
{
    char hex[9];
    char *stop;
    unsigned long crc;
    if (end - p < 11 || p[8] != ' ')
        return NULL;
    memcpy(hex, p, 8);
    hex[8] = '\0';
    crc = strtoul(hex, &stop, 16);
    if (stop != hex + 8 || crc != wr_crc32c(0, p + 9, (size_t)(end - p - 9)))
        return NULL;
    return json_loadb(p + 9, (size_t)(end - p - 9), JSON_ALLOW_NUL, NULL);
}

static bool any_good_after(const char *p, const char *end)
{
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_t *j;
        if (!nl)
            return false;
        if ((j = parse_line(p, nl)) != NULL) {
            json_decref(j);
            return true;
        }
        p = nl + 1;
    }
    return false;
}

static int rebuild(json_t *root, const char *name, json_t *map, struct fold *f)
{
    json_t *a = json_array(), *v;
    const char *k;
    if (!a)
        return -1;
    json_object_foreach(map, k, v)
    {
        json_t *e = json_array_get(v, 0);
        json_int_t s = json_integer_value(json_array_get(v, 1));
        if (map == f->b) {
            char *src = ident(e, src_id), *dst = ident(e, dst_id);
            const char *dt = json_string_value(json_object_get(e, "destination_type"));
            json_t *xs = src ? json_object_get(f->xdel, src) : NULL;
            json_t *xd =
                dst ? json_object_get(dt && !strcmp(dt, "exchange") ? f->xdel : f->qdel, dst)
                    : NULL;
            bool dropped = (xs && json_integer_value(xs) > s) || (xd && json_integer_value(xd) > s);
            free(src);
            free(dst);
            if (dropped)
                continue;
        }
        if (json_array_append(a, e) < 0) {
            json_decref(a);
            return -1;
        }
    }
    return json_object_set_new(root, name, a);
}

int wr_defslog_fold(json_t *root, const char *text, size_t len, uint64_t *last_seq,
                    size_t *good_len, size_t *lines, struct wr_defs_err *err)
{
    struct fold f = {json_object(), json_object(), json_object(),
                     json_object(), json_object(), json_object()};
    json_t *js = json_object_get(root, "warren_defs_seq"), *v;
    uint64_t snap = json_is_integer(js) && json_integer_value(js) > 0
                        ? (uint64_t)json_integer_value(js)
                        : 0,
             prev = 0;
    const char *p = text, *end = text + len;
    size_t lineno = 0, i;
    int rc = 0;

    *last_seq = snap;
    *good_len = 0;
    *lines = 0;
    err->msg[0] = '\0';
    if (!f.q || !f.x || !f.b || !f.qdel || !f.xdel || !f.vhosts) {
        rc = fold_fail(err, 0, "out of memory");
        goto out;
    }
    if (!json_is_object(root)) {
        snprintf(err->msg, sizeof(err->msg), "definitions.json: not a JSON object");
        rc = WR_ESYNTAX;
        goto out;
    }
    if ((rc = load_section(root, "queues", q_id, f.q, err)) < 0 ||
        (rc = load_section(root, "exchanges", q_id, f.x, err)) < 0 ||
        (rc = load_section(root, "bindings", b_id, f.b, err)) < 0)
        goto out;
    json_array_foreach(json_object_get(root, "vhosts"), i, v)
    {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n)
            json_object_set(f.vhosts, n, v);
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_t *line, *jseq;
        uint64_t seq;
        lineno++;
        if (!nl)
            break; /* torn: never synced */
        if (!(line = parse_line(p, nl))) {
            if (any_good_after(nl + 1, end)) {
                rc = fold_fail(err, lineno, "damaged, and later lines are not: refusing to guess");
                goto out;
            }
            break; /* a torn tail */
        }
        jseq = json_object_get(line, "seq");
        if (!json_is_integer(jseq) || json_integer_value(jseq) <= 0 ||
            (uint64_t)json_integer_value(jseq) <= prev) {
            json_decref(line);
            rc = fold_fail(err, lineno, "seq is not a number above the previous line's");
            goto out;
        }
        seq = prev = (uint64_t)json_integer_value(jseq);
        if (seq > snap) {
            rc = apply_line(&f, line, seq, lineno, err);
            if (rc < 0) {
                json_decref(line);
                goto out;
            }
            ++*lines;
            *last_seq = seq;
        }
        json_decref(line);
        p = nl + 1;
        *good_len = (size_t)(p - text);
    }
    if (*lines &&
        (rebuild(root, "queues", f.q, &f) < 0 || rebuild(root, "exchanges", f.x, &f) < 0 ||
         rebuild(root, "bindings", f.b, &f) < 0))
        rc = fold_fail(err, lineno, "out of memory");
out:
    json_decref(f.q);
    json_decref(f.x);
    json_decref(f.b);
    json_decref(f.qdel);
    json_decref(f.xdel);
    json_decref(f.vhosts);
    return rc;
}
