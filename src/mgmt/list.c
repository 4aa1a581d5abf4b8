/*
 * list.c - listings as RabbitMQ's management API answers them: sorted by
 * the server (rabbitmqadmin never sorts), filtered by name and cut into
 * pages when asked, with the requested columns; see api.h.
 *
 * Cost: a listing sorted by vhost and name (the default) or by name sorts
 * the rows, which hold only the names, and builds the JSON of the items it
 * answers with; a page of 500 out of 10,000 queues builds 500. Sorting by
 * any other field builds every item first.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/perm.h"
#include "mgmt/api.h"
#include "mgmt/http.h"

#define PAGE_SIZE_DEFAULT 100
#define PAGE_SIZE_MAX 500

struct params {
    const char *sort;
    bool reverse;
    bool paged;
    long page, page_size;
    const char *name;
    bool use_regex;
};

static int str_cmp(struct wr_str a, struct wr_str b)
{
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int row_cmp_vhost_name(const void *x, const void *y)
{
    const struct wr_mgmt_row *a = x, *b = y;
    int c = str_cmp(a->vhost, b->vhost);
    return c ? c : str_cmp(a->name, b->name);
}

static int row_cmp_name(const void *x, const void *y)
{
    const struct wr_mgmt_row *a = x, *b = y;
    int c = str_cmp(a->name, b->name);
    return c ? c : str_cmp(a->vhost, b->vhost);
}

static bool parse_long(const char *s, long *out)
{
    char *end;
    if (!s || !*s)
        return false;
    long v = strtol(s, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

/* False when answered (bad parameters). */
static bool get_params(struct wr_mgmt_req *rq, struct params *p)
{
    const char *page = wr_mgmt_query(rq, "page"), *size = wr_mgmt_query(rq, "page_size");
    const char *rev = wr_mgmt_query(rq, "sort_reverse"), *re = wr_mgmt_query(rq, "use_regex");

    memset(p, 0, sizeof(*p));
    p->sort = wr_mgmt_query(rq, "sort");
    if (p->sort && !*p->sort)
        p->sort = NULL;
    p->reverse = rev && !strcmp(rev, "true");
    if (!page)
        return true;
    p->paged = true;
    p->page_size = PAGE_SIZE_DEFAULT;
    if (!parse_long(page, &p->page) || (size && !parse_long(size, &p->page_size))) {
        wr_mgmt_error(rq, 400, "bad_request", "Pagination parameters are invalid");
        return false;
    }
    if (p->page < 1 || p->page_size < 1 || p->page_size > PAGE_SIZE_MAX) {
        wr_mgmt_errorf(rq, 400, "invalid_pagination_parameters",
                       "Invalid pagination parameters: page number %ld, page size %ld", p->page,
                       p->page_size);
        return false;
    }
    p->name = wr_mgmt_query(rq, "name");
    if (p->name && !*p->name)
        p->name = NULL;
    p->use_regex = re && !strcmp(re, "true");
    return true;
}

/* The name filter: a case-insensitive substring, or with use_regex a
 * regular expression as RabbitMQ runs it (perm.h: PCRE, unanchored). */
struct name_filter {
    const char *text;
    size_t len;
    struct wr_perm_re *re;
};

static bool filter_match(const struct name_filter *f, struct wr_str name)
{
    if (f->re)
        return wr_perm_re_match(f->re, name.ptr ? name.ptr : "", name.len);
    if (f->len > name.len)
        return false;
    for (size_t i = 0; i + f->len <= name.len; i++)
        if (strncasecmp(name.ptr + i, f->text, f->len) == 0)
            return true;
    return false;
}

/* The value at a dotted path, or NULL. */
static json_t *at_path(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *s = buf, *dot;
    while (o && (dot = strchr(s, '.')) != NULL) {
        *dot = '\0';
        o = json_object_get(o, s);
        s = dot + 1;
    }
    return json_is_object(o) ? json_object_get(o, s) : NULL;
}

/* Order of JSON values: missing and null first, then numbers, booleans,
 * strings (bytewise). */
static int value_cmp(json_t *a, json_t *b)
{
    int ra = !a || json_is_null(a) ? 0 : json_is_number(a) ? 1 : json_is_boolean(a) ? 2 : 3;
    int rb = !b || json_is_null(b) ? 0 : json_is_number(b) ? 1 : json_is_boolean(b) ? 2 : 3;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 1) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (ra == 2)
        return json_is_true(a) - json_is_true(b);
    if (ra == 3) {
        struct wr_str x = {json_string_value(a), (uint32_t)json_string_length(a)};
        struct wr_str y = {json_string_value(b), (uint32_t)json_string_length(b)};
        if (!x.ptr || !y.ptr)
            return 0;
        return str_cmp(x, y);
    }
    return 0;
}

struct built {
    json_t *item;
    json_t *key;
    size_t idx; /* for a stable sort */
};

static int built_cmp(const void *x, const void *y)
{
    const struct built *a = x, *b = y;
    int c = value_cmp(a->key, b->key);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static json_t *with_columns(struct wr_mgmt_req *rq, json_t *item)
{
    const char *cols = wr_mgmt_query(rq, "columns");
    if (!cols || !*cols || !item)
        return item;
    json_t *out = wr_mgmt_columns(item, cols);
    json_decref(item);
    return out;
}

/* The answer: `items` are those to send (references taken); `filtered`
 * items matched, out of `total`. */
static void answer(struct wr_mgmt_req *rq, const struct params *p, json_t **items, size_t n,
                   size_t filtered, size_t total)
{
    json_t *a = json_array();
    if (!a) {
        for (size_t i = 0; i < n; i++)
            json_decref(items[i]);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, with_columns(rq, items[i]));
    if (!p->paged) {
        struct wr_mgmt_req tmp = *rq;
        tmp.query = NULL; /* columns were applied to the items */
        wr_mgmt_reply_json(&tmp, a);
        rq->answered = tmp.answered;
        return;
    }
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "filtered_count",
                          (json_int_t)filtered, "item_count", (json_int_t)json_array_size(a),
                          "page", (json_int_t)p->page, "page_count",
                          (json_int_t)((filtered + (size_t)p->page_size - 1) /
                                       (size_t)p->page_size),
                          "page_size", (json_int_t)p->page_size, "total_count",
                          (json_int_t)total, "items", a);
    if (!o) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    struct wr_mgmt_req tmp = *rq;
    tmp.query = NULL; /* no columns on the envelope */
    wr_mgmt_reply_json(&tmp, o);
    rq->answered = tmp.answered;
}

static bool page_window(struct wr_mgmt_req *rq, const struct params *p, size_t n,
                        size_t *first, size_t *count)
{
    *first = 0;
    *count = n;
    if (!p->paged)
        return true;
    size_t pages = (n + (size_t)p->page_size - 1) / (size_t)p->page_size;
    if ((size_t)p->page > pages && !(p->page == 1 && n == 0)) {
        wr_mgmt_errorf(rq, 400, "page_out_of_range",
                       "Page out of range, page: %ld page size: %ld, len: %zu", p->page,
                       p->page_size, n);
        return false;
    }
    *first = (size_t)(p->page - 1) * (size_t)p->page_size;
    *count = (size_t)p->page_size;
    return true;
}

void wr_mgmt_list(struct wr_mgmt_req *rq, struct wr_mgmt_row *rows, size_t n,
                  wr_mgmt_build_fn build, void *ctx)
{
    struct params p;
    struct name_filter f = {0};
    size_t total = n, kept = 0, first, count;
    json_t **items;

    if (!get_params(rq, &p))
        return;
    if (p.name) {
        f.text = p.name;
        f.len = strlen(p.name);
        if (p.use_regex && !(f.re = wr_perm_re_compile(p.name, f.len, NULL))) {
            wr_mgmt_error(rq, 400, "bad_request", "name: not a valid regular expression");
            return;
        }
        for (size_t i = 0; i < n; i++)
            if (filter_match(&f, rows[i].name))
                rows[kept++] = rows[i];
        n = kept;
        wr_perm_re_free(f.re);
    }
    bool by_rows = !p.sort || !strcmp(p.sort, "name") || !strcmp(p.sort, "vhost");
    if (n)
        qsort(rows, n, sizeof(*rows),
              p.sort && !strcmp(p.sort, "name") ? row_cmp_name : row_cmp_vhost_name);
    if (by_rows) {
        if (p.reverse)
            for (size_t i = 0; i < n / 2; i++) {
                struct wr_mgmt_row t = rows[i];
                rows[i] = rows[n - 1 - i];
                rows[n - 1 - i] = t;
            }
        if (!page_window(rq, &p, n, &first, &count))
            return;
        size_t end = first + count < n ? first + count : n;
        items = calloc(end > first ? end - first : 1, sizeof(*items));
        if (!items) {
            wr_mgmt_error(rq, 500, "internal_error", "out of memory");
            return;
        }
        for (size_t i = first; i < end; i++)
            items[i - first] = build(rq, rows[i].obj, ctx);
        for (size_t i = first; i < end; i++)
            if (!items[i - first]) {
                for (size_t k = first; k < end; k++)
                    json_decref(items[k - first]);
                free(items);
                wr_mgmt_error(rq, 500, "internal_error", "out of memory");
                return;
            }
        answer(rq, &p, items, end > first ? end - first : 0, n, total);
        free(items);
        return;
    }
    struct built *bl = calloc(n ? n : 1, sizeof(*bl));
    if (!bl) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bl[i].item = build(rq, rows[i].obj, ctx);
        bl[i].key = bl[i].item ? at_path(bl[i].item, p.sort) : NULL;
        bl[i].idx = i;
    }
    qsort(bl, n, sizeof(*bl), built_cmp);
    items = calloc(n ? n : 1, sizeof(*items));
    if (!items) {
        for (size_t i = 0; i < n; i++)
            json_decref(bl[i].item);
        free(bl);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = bl[p.reverse ? n - 1 - i : i].item;
    free(bl);
    if (!page_window(rq, &p, n, &first, &count)) {
        for (size_t i = 0; i < n; i++)
            json_decref(items[i]);
        free(items);
        return;
    }
    size_t end = first + count < n ? first + count : n, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i >= first && i < end)
            items[k++] = items[i];
        else
            json_decref(items[i]);
    }
    answer(rq, &p, items, k, n, total);
    free(items);
}

static json_t *identity(struct wr_mgmt_req *rq, void *obj, void *ctx)
{
    (void)rq;
    (void)ctx;
    return json_incref(obj);
}

void wr_mgmt_list_json(struct wr_mgmt_req *rq, json_t *items)
{
    size_t n = json_array_size(items);
    struct wr_mgmt_row *rows = calloc(n ? n : 1, sizeof(*rows));
    if (!rows) {
        json_decref(items);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, i), *v;
        rows[i].obj = it;
        if ((v = json_object_get(it, "vhost")) && json_is_string(v))
            rows[i].vhost = (struct wr_str){json_string_value(v), (uint32_t)json_string_length(v)};
        if ((v = json_object_get(it, "name")) && json_is_string(v))
            rows[i].name = (struct wr_str){json_string_value(v), (uint32_t)json_string_length(v)};
    }
    wr_mgmt_list(rq, rows, n, identity, NULL);
    free(rows);
    json_decref(items);
}
