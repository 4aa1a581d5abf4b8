/*
 * value.c - typing of k=v values and human-readable numbers (value.h).
 * Typing is deliberately narrow: RabbitMQ's arguments are integers,
 * booleans or strings, and a value that merely looks like a float stays a
 * string, so "x-queue-version=2" and "x-overflow=reject-publish" both
 * arrive as the broker expects them.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/value.h"

static bool is_integer(const char *v, json_int_t *out)
{
    const char *p = v;
    char *end;
    if (*p == '-')
        p++;
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return false;
    if (p[0] == '0' && p[1]) /* "007" is a name, not a number */
        return false;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end)
        return false;
    *out = (json_int_t)n;
    return true;
}

json_t *wr_ctl_typed(const char *v)
{
    json_int_t n;
    if (is_integer(v, &n))
        return json_integer(n);
    if (!strcmp(v, "true"))
        return json_true();
    if (!strcmp(v, "false"))
        return json_false();
    return json_string(v);
}

long wr_ctl_kv_split(const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return -1;
    return (long)(eq - kv);
}

int wr_ctl_kv_add(json_t *obj, const char *kv, bool typed, const char **why)
{
    long klen = wr_ctl_kv_split(kv);
    if (klen < 0) {
        *why = "KEY=VALUE expected";
        return -1;
    }
    char *key = strndup(kv, (size_t)klen);
    if (!key) {
        *why = "out of memory";
        return -1;
    }
    const char *v = kv + klen + 1;
    json_t *j = typed ? wr_ctl_typed(v) : json_string(v);
    int rc = 0;
    if (!j) {
        *why = "not UTF-8";
        rc = -1;
    } else if (json_object_set_new(obj, key, j) < 0) {
        *why = "the key is not UTF-8";
        rc = -1;
    }
    free(key);
    return rc;
}

static void scaled(double v, double base, const char *const *units, size_t nunits,
                   const char *sep, char *out, size_t n)
{
    double a = fabs(v);
    size_t i = 0;
    if (!isfinite(v)) {
        snprintf(out, n, "%g", v);
        return;
    }
    /* base - 0.5: what would print as "1000k" prints as "1.0M" */
    while (a >= base - 0.5 && i + 1 < nunits) {
        a /= base;
        v /= base;
        i++;
    }
    if (i == 0) {
        if (v == floor(v) && a < 1e15)
            snprintf(out, n, "%.0f%s%s", v, *units[0] ? sep : "", units[0]);
        else
            snprintf(out, n, "%.1f%s%s", v, *units[0] ? sep : "", units[0]);
    } else if (a >= 99.95) {
        snprintf(out, n, "%.0f%s%s", v, sep, units[i]);
    } else {
        snprintf(out, n, "%.1f%s%s", v, sep, units[i]);
    }
}

void wr_ctl_human_count(double v, char *out, size_t n)
{
    static const char *const units[] = {"", "k", "M", "G", "T", "P", "E"};
    scaled(v, 1000, units, sizeof(units) / sizeof(*units), "", out, n);
}

void wr_ctl_human_bytes(double v, char *out, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    scaled(v, 1024, units, sizeof(units) / sizeof(*units), " ", out, n);
}

void wr_ctl_thousands(long long v, char *out, size_t n)
{
    char digits[32], tmp[48];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int len = snprintf(digits, sizeof(digits), "%llu", u);
    size_t j = 0;

    if (v < 0)
        tmp[j++] = '-';
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            tmp[j++] = ',';
        tmp[j++] = digits[i];
    }
    tmp[j] = '\0';
    if (n)
        snprintf(out, n, "%s", tmp);
}
