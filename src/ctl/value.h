/*
 * value.h - values as the user types them and as a table shows them:
 * "k=v" pairs (--arg, --header, --property) typed into JSON, and numbers
 * and byte sizes written for people ("12.3k", "1.2 GiB").
 */
#ifndef WR_CTL_VALUE_H
#define WR_CTL_VALUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The JSON value of a typed command-line value: an integer (optional '-',
 * digits, within int64) becomes a number, "true"/"false" a boolean,
 * anything else a string. NULL only for a string that is not UTF-8. */
json_t *wr_ctl_typed(const char *v);

/* Splits "key=value" at the first '='. Returns the length of the key (the
 * value starts after it and the '='), or -1 when there is no '=' or the
 * key is empty. */
long wr_ctl_kv_split(const char *kv);

/* Adds "key=value" to obj with its typed value (typed false: always a
 * string). Returns 0, or -1 with *why a static text. */
int wr_ctl_kv_add(json_t *obj, const char *kv, bool typed, const char **why);

/* "999", "12.3k", "123k", "4.5M"...; "1.5" for a fraction below 1000.
 * Writes at most n bytes, always terminated. */
void wr_ctl_human_count(double v, char *out, size_t n);
/* "512 B", "1.5 KiB", "12.3 MiB", "1.2 GiB"... */
void wr_ctl_human_bytes(double v, char *out, size_t n);
/* "12,000", "-1,234,567": every digit, grouped by three (progress lines).
 * Writes at most n bytes, always terminated. */
void wr_ctl_thousands(long long v, char *out, size_t n);

#endif
