/*
 * out.c - tables, TSV and JSON (out.h). A table is laid out in two passes
 * over the cells' text: widths first, then the rows. Which numbers are
 * counts and which are byte sizes is decided by the column's name (the
 * API's names are regular: *_bytes, mem_*, messages*, *_rate); anything
 * not recognised (ports, PIDs, timestamps) stays raw.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/out.h"
#include "ctl/value.h"

int wr_ctl_format_parse(const char *s)
{
    if (!strcmp(s, "table"))
        return WR_CTL_TABLE;
    if (!strcmp(s, "tsv"))
        return WR_CTL_TSV;
    if (!strcmp(s, "json"))
        return WR_CTL_JSON;
    return -1;
}

json_t *wr_ctl_path_get(json_t *obj, const char *path)
{
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (!json_is_object(obj))
            return NULL;
        if (!dot)
            return json_object_get(obj, p);
        /* a key holding a dot ("x-queue-type" is fine, "a.b" as a key too) */
        json_t *whole = json_object_get(obj, p);
        if (whole)
            return whole;
        obj = json_object_getn(obj, p, (size_t)(dot - p));
        p = dot + 1;
    }
}

enum wr_ctl_unit wr_ctl_unit_of(const char *col)
{
    static const char *const bytes[] = {"bytes", "memory", "mem_used", "mem_limit", "disk_free",
                                        "_oct", NULL};
    static const char *const counts[] = {"messages", "consumers", "count", "rate", "publish",
                                         "deliver", "ack", "redeliver", "confirm", "return",
                                         "unacked", "_cnt", "fd_", "sockets_", "proc_",
                                         "queues", "exchanges", "connections", "channels",
                                         "get", "uptime", NULL};
    for (size_t i = 0; bytes[i]; i++)
        if (strstr(col, bytes[i]))
            return WR_CTL_BYTES;
    for (size_t i = 0; counts[i]; i++)
        if (strstr(col, counts[i]))
            return WR_CTL_COUNT;
    return WR_CTL_RAW;
}

static void add_escaped(struct wr_ctl_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t')
            wr_ctl_buf_adds(out, "\\t");
        else if (c == '\n')
            wr_ctl_buf_adds(out, "\\n");
        else if (c == '\r')
            wr_ctl_buf_adds(out, "\\r");
        else if (c < 0x20 || c == 0x7f)
            wr_ctl_buf_printf(out, "\\x%02x", c);
        else
            wr_ctl_buf_addc(out, (char)c);
    }
}

static void add_number(struct wr_ctl_buf *out, json_t *v, enum wr_ctl_unit unit, bool human)
{
    char tmp[64];
    double d = json_number_value(v);
    if (!human || unit == WR_CTL_RAW) {
        if (json_is_integer(v))
            wr_ctl_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (d == floor(d) && fabs(d) < 1e15)
            wr_ctl_buf_printf(out, "%.1f", d);
        else
            wr_ctl_buf_printf(out, "%.17g", d);
        return;
    }
    if (unit == WR_CTL_BYTES)
        wr_ctl_human_bytes(d, tmp, sizeof(tmp));
    else
        wr_ctl_human_count(d, tmp, sizeof(tmp));
    wr_ctl_buf_adds(out, tmp);
}

void wr_ctl_cell(json_t *v, enum wr_ctl_unit unit, bool human, struct wr_ctl_buf *out)
{
    if (!v || json_is_null(v))
        return;
    if (json_is_string(v)) {
        add_escaped(out, json_string_value(v), json_string_length(v));
    } else if (json_is_number(v)) {
        add_number(out, v, unit, human);
    } else if (json_is_true(v)) {
        wr_ctl_buf_adds(out, "true");
    } else if (json_is_false(v)) {
        wr_ctl_buf_adds(out, "false");
    } else {
        bool scalars = json_is_array(v);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (json_is_array(e) || json_is_object(e)) scalars = false;
        if (scalars) {
            json_array_foreach(v, i, e)
            {
                if (i)
                    wr_ctl_buf_addc(out, ',');
                wr_ctl_cell(e, unit, human, out);
            }
            return;
        }
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
            wr_ctl_oom();
        add_escaped(out, s, strlen(s));
        free(s);
    }
}

size_t wr_ctl_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

static void pad(FILE *f, size_t n)
{
    while (n--)
        fputc(' ', f);
}

static void dump_json(const struct wr_ctl_out *o, json_t *v)
{
    if (json_dumpf(v, o->f, JSON_INDENT(2) | JSON_ENCODE_ANY) < 0)
        wr_ctl_oom();
    fputc('\n', o->f);
}

/* Prints a table of n rows of ncols cells (row-major; row 0 the header). */
static void print_table(const struct wr_ctl_out *o, char **cells, size_t nrows, size_t ncols,
                        const bool *right)
{
    size_t *w = calloc(ncols ? ncols : 1, sizeof(*w));
    if (!w)
        wr_ctl_oom();
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            size_t cw = wr_ctl_width(cells[r * ncols + c]);
            if (cw > w[c])
                w[c] = cw;
        }
    for (size_t r = 0; r < nrows; r++) {
        if (r == 0 && o->color)
            fputs("\033[1m", o->f);
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[r * ncols + c];
            size_t sw = wr_ctl_width(s);
            bool last = c + 1 == ncols;
            if (right[c] && r > 0)
                pad(o->f, w[c] - sw);
            fputs(s, o->f);
            if (!last && !(right[c] && r > 0))
                pad(o->f, w[c] - sw);
            if (!last)
                fputs("  ", o->f);
        }
        if (r == 0 && o->color)
            fputs("\033[0m", o->f);
        fputc('\n', o->f);
    }
    free(w);
}

void wr_ctl_out_rows(const struct wr_ctl_out *o, json_t *rows, const char *const *cols,
                     size_t ncols)
{
    size_t nrows = json_array_size(rows) + 1;
    bool human = o->fmt == WR_CTL_TABLE;
    char **cells;
    bool *right;

    if (o->fmt == WR_CTL_JSON) {
        dump_json(o, rows);
        return;
    }
    if (ncols == 0)
        return;
    cells = calloc(nrows * ncols, sizeof(*cells));
    right = calloc(ncols, sizeof(*right));
    if (!cells || !right)
        wr_ctl_oom();
    for (size_t c = 0; c < ncols; c++) {
        struct wr_ctl_buf b = {0};
        add_escaped(&b, cols[c], strlen(cols[c]));
        cells[c] = wr_ctl_buf_take(&b);
        right[c] = true;
    }
    for (size_t r = 1; r < nrows; r++) {
        json_t *row = json_array_get(rows, r - 1);
        for (size_t c = 0; c < ncols; c++) {
            struct wr_ctl_buf b = {0};
            json_t *v = wr_ctl_path_get(row, cols[c]);
            wr_ctl_cell(v, wr_ctl_unit_of(cols[c]), human, &b);
            if (v && !json_is_number(v) && !json_is_null(v))
                right[c] = false;
            cells[r * ncols + c] = wr_ctl_buf_take(&b);
        }
    }
    if (o->fmt == WR_CTL_TSV) {
        for (size_t r = 0; r < nrows; r++)
            for (size_t c = 0; c < ncols; c++)
                fprintf(o->f, "%s%c", cells[r * ncols + c], c + 1 == ncols ? '\n' : '\t');
    } else {
        print_table(o, cells, nrows, ncols, right);
    }
    for (size_t i = 0; i < nrows * ncols; i++)
        free(cells[i]);
    free(cells);
    free(right);
}

/* Flattens obj into pairs (key, cell text). */
static void flatten(json_t *obj, const char *prefix, bool human, char ***cells, size_t *n,
                    size_t *cap)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        struct wr_ctl_buf key = {0}, text = {0};
        if (*prefix)
            wr_ctl_buf_printf(&key, "%s.", prefix);
        wr_ctl_buf_adds(&key, k);
        if (json_is_object(v) && json_object_size(v)) {
            flatten(v, wr_ctl_buf_str(&key), human, cells, n, cap);
            wr_ctl_buf_free(&key);
            continue;
        }
        wr_ctl_cell(v, wr_ctl_unit_of(wr_ctl_buf_str(&key)), human, &text);
        if (*n + 2 > *cap) {
            *cap = *cap ? *cap * 2 : 64;
            char **c = realloc(*cells, *cap * sizeof(**cells));
            if (!c)
                wr_ctl_oom();
            *cells = c;
        }
        struct wr_ctl_buf esc = {0};
        add_escaped(&esc, key.p, key.len);
        (*cells)[(*n)++] = wr_ctl_buf_take(&esc);
        (*cells)[(*n)++] = wr_ctl_buf_take(&text);
        wr_ctl_buf_free(&key);
    }
}

void wr_ctl_out_object(const struct wr_ctl_out *o, json_t *obj)
{
    char **cells = NULL;
    size_t n = 0, cap = 0;

    if (o->fmt == WR_CTL_JSON || !json_is_object(obj)) {
        dump_json(o, obj);
        return;
    }
    flatten(obj, "", o->fmt == WR_CTL_TABLE, &cells, &n, &cap);
    if (o->fmt == WR_CTL_TSV) {
        for (size_t i = 0; i < n; i += 2)
            fprintf(o->f, "%s\t%s\n", cells[i], cells[i + 1]);
    } else {
        /* no header row: the keys are bold instead */
        size_t kw = 0;
        for (size_t i = 0; i < n; i += 2)
            if (wr_ctl_width(cells[i]) > kw)
                kw = wr_ctl_width(cells[i]);
        for (size_t i = 0; i < n; i += 2) {
            if (o->color)
                fprintf(o->f, "\033[1m%s\033[0m", cells[i]);
            else
                fputs(cells[i], o->f);
            pad(o->f, kw - wr_ctl_width(cells[i]) + 2);
            fprintf(o->f, "%s\n", cells[i + 1]);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(cells[i]);
    free(cells);
}
