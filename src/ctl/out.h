/*
 * out.h - what warrenctl prints: a listing as an aligned table (widths
 * from the content, numbers right-aligned and human-readable, a bold
 * header on a terminal unless NO_COLOR is set), as tab-separated values
 * with raw numbers, or as the JSON the API answered; one object as
 * key/value pairs in the same three forms.
 */
#ifndef WR_CTL_OUT_H
#define WR_CTL_OUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "ctl/buf.h"

enum wr_ctl_format { WR_CTL_TABLE, WR_CTL_TSV, WR_CTL_JSON };

struct wr_ctl_out {
    enum wr_ctl_format fmt;
    bool color; /* bold header: stdout a terminal and NO_COLOR unset */
    FILE *f;
};

/* "table", "tsv", "json"; -1 for anything else. */
int wr_ctl_format_parse(const char *s);

/* The value at a dotted path ("message_stats.publish_details.rate") of an
 * object; NULL when missing. */
json_t *wr_ctl_path_get(json_t *obj, const char *path);

/* How a number in column col is shown in a table. */
enum wr_ctl_unit { WR_CTL_RAW, WR_CTL_COUNT, WR_CTL_BYTES };
enum wr_ctl_unit wr_ctl_unit_of(const char *col);

/* Appends the text of one value: strings with control bytes escaped
 * (\t, \n, \xHH) so that a row stays one line, numbers raw or human,
 * arrays of scalars joined with ",", other arrays and objects as compact
 * JSON, null and missing as "". */
void wr_ctl_cell(json_t *v, enum wr_ctl_unit unit, bool human, struct wr_ctl_buf *out);

/* rows: an array of objects; cols: the columns shown (dotted paths). */
void wr_ctl_out_rows(const struct wr_ctl_out *o, json_t *rows, const char *const *cols,
                     size_t ncols);

/* One object, nested objects flattened to dotted keys. */
void wr_ctl_out_object(const struct wr_ctl_out *o, json_t *obj);

/* Display width of UTF-8 text: code points, not bytes. */
size_t wr_ctl_width(const char *s);

#endif
