/*
 * qargs.c - queue argument checks; see qargs.h.
 *
 * One row per argument RabbitMQ knows. Unknown arguments are stored and
 * ignored, as RabbitMQ does.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/qargs.h"
#include "wire/field.h"

enum qarg_kind { QA_NONNEG, QA_POS, QA_STR, QA_BOOL, QA_PRIO, QA_ENUM };

struct qarg {
    const char *name;
    enum qarg_kind kind;
    const char *values; /* QA_ENUM: '|' separated */
};

static const struct qarg qargs[] = {
    {"x-message-ttl", QA_NONNEG, NULL},
    {"x-expires", QA_POS, NULL},
    {"x-max-length", QA_NONNEG, NULL},
    {"x-max-length-bytes", QA_NONNEG, NULL},
    {"x-max-priority", QA_PRIO, NULL},
    {"x-dead-letter-exchange", QA_STR, NULL},
    {"x-dead-letter-routing-key", QA_STR, NULL},
    {"x-overflow", QA_ENUM, "drop-head|reject-publish|reject-publish-dlx"},
    {"x-queue-mode", QA_ENUM, "default|lazy"},
    {"x-queue-type", QA_ENUM, "classic|quorum"},
    {"x-single-active-consumer", QA_BOOL, NULL},
    {"x-delivery-limit", QA_NONNEG, NULL},
    {"x-queue-master-locator", QA_STR, NULL},
    /* x-consumer-timeout has no row: RabbitMQ 3.12 neither checks it at
     * declare nor compares it on redeclaration (wr_qsettings_parse). */
};

static const char *type_name(uint8_t t)
{
    switch (t) {
    case 'S': return "longstr";
    case 't': return "bool";
    case 'F': return "table";
    case 'A': return "array";
    case 'f': return "float";
    case 'd': return "double";
    case 'D': return "decimal";
    case 'V': return "void";
    case 'x': return "binary";
    case 'T': return "timestamp";
    default: return "signedint";
    }
}

static bool enum_has(const char *values, struct wr_str v)
{
    const char *p = values;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == v.len && memcmp(p, v.ptr, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

int wr_qargs_validate(struct wr_str args, struct wr_str qname, const char *vhost,
                      struct wr_errbuf *err)
{
    struct wr_fv v;
    int64_t i;
    bool has_dlx = false, has_dlrk = false;

    for (size_t k = 0; k < sizeof(qargs) / sizeof(qargs[0]); k++) {
        const struct qarg *a = &qargs[k];
        if (wr_table_get(args, a->name, &v) != 1)
            continue;
        bool ok = true;
        const char *why = "unacceptable_type";
        switch (a->kind) {
        case QA_NONNEG:
        case QA_POS:
        case QA_PRIO:
            if (!wr_fv_int(&v, &i) || v.type == 'T') {
                ok = false;
            } else if (i < 0 || (a->kind == QA_POS && i == 0)) {
                ok = false;
                why = i < 0 ? "value_negative" : "value_zero";
            } else if (a->kind == QA_PRIO && i > 255) {
                ok = false;
                why = "value_too_large";
            }
            break;
        case QA_STR:
            ok = v.type == 'S';
            if (strcmp(a->name, "x-dead-letter-exchange") == 0)
                has_dlx = true;
            if (strcmp(a->name, "x-dead-letter-routing-key") == 0)
                has_dlrk = true;
            break;
        case QA_BOOL:
            ok = v.type == 't';
            break;
        case QA_ENUM:
            if (v.type != 'S') {
                ok = false;
            } else if (!enum_has(a->values, v.v.str)) {
                ok = false;
                why = "invalid_value";
            }
            break;
        }
        if (!ok)
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "invalid arg '%s' for queue '%.*s' in vhost '%s': {%s,%s}", a->name,
                           (int)qname.len, qname.ptr, vhost, why, type_name(v.type));
    }
    if (has_dlrk && !has_dlx)
        return wr_fail(err, WR_EPRECONDITION_FAILED,
                       "invalid arg 'x-dead-letter-routing-key' for queue '%.*s' in vhost '%s': "
                       "Key x-dead-letter-routing-key should be specified together with "
                       "x-dead-letter-exchange",
                       (int)qname.len, qname.ptr, vhost);
    return 0;
}

static bool fv_equal(const struct wr_fv *a, const struct wr_fv *b)
{
    int64_t x, y;
    if (wr_fv_int(a, &x) && wr_fv_int(b, &y))
        return x == y;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case 'S':
    case 'x':
    case 'F':
    case 'A':
        return wr_str_eq(a->v.str, b->v.str);
    case 't':
        return a->v.t == b->v.t;
    default:
        return false;
    }
}

int wr_qargs_equivalent(struct wr_str cur, struct wr_str req, const char *qname,
                        const char *vhost, struct wr_errbuf *err)
{
    for (size_t k = 0; k < sizeof(qargs) / sizeof(qargs[0]); k++) {
        struct wr_fv a, b;
        int ha = wr_table_get(cur, qargs[k].name, &a) == 1;
        int hb = wr_table_get(req, qargs[k].name, &b) == 1;
        if (ha != hb || (ha && !fv_equal(&a, &b)))
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "inequivalent arg '%s' for queue '%s' in vhost '%s'", qargs[k].name,
                           qname, vhost);
    }
    return 0;
}

static int64_t arg_int(struct wr_str args, const char *name)
{
    struct wr_fv v;
    int64_t i;
    if (wr_table_get(args, name, &v) == 1 && wr_fv_int(&v, &i))
        return i;
    return -1;
}

static char *arg_str(struct wr_str args, const char *name, uint32_t *len, bool *oom)
{
    struct wr_fv v;
    char *s;
    *len = 0;
    if (wr_table_get(args, name, &v) != 1 || v.type != 'S')
        return NULL;
    s = malloc((size_t)v.v.str.len + 1);
    if (!s) {
        *oom = true;
        return NULL;
    }
    memcpy(s, v.v.str.ptr, v.v.str.len);
    s[v.v.str.len] = '\0';
    *len = v.v.str.len;
    return s;
}

int wr_qsettings_parse(struct wr_str args, struct wr_qsettings *s)
{
    struct wr_fv v;
    bool oom = false;
    int64_t p;

    s->message_ttl = arg_int(args, "x-message-ttl");
    s->expires = arg_int(args, "x-expires");
    s->max_length = arg_int(args, "x-max-length");
    s->max_length_bytes = arg_int(args, "x-max-length-bytes");
    s->delivery_limit = arg_int(args, "x-delivery-limit");
    /* As RabbitMQ 3.12 reads it: an integer is the timeout (a negative one
     * expires at the first check, 1 ms here), anything else means none. 0
     * means none too (consumer_timeout's 0; RabbitMQ expires it at once). */
    s->consumer_timeout = -1;
    if (wr_table_get(args, "x-consumer-timeout", &v) == 1)
        s->consumer_timeout = !wr_fv_int(&v, &p) ? 0 : p < 0 ? 1 : p;
    p = arg_int(args, "x-max-priority");
    s->max_priority = p > 0 ? (uint8_t)(p > 255 ? 255 : p) : 0;
    s->overflow = WR_OVERFLOW_DROP_HEAD;
    if (wr_table_get(args, "x-overflow", &v) == 1 && v.type == 'S') {
        if (wr_str_eqc(v.v.str, "reject-publish"))
            s->overflow = WR_OVERFLOW_REJECT;
        else if (wr_str_eqc(v.v.str, "reject-publish-dlx"))
            s->overflow = WR_OVERFLOW_REJECT_DLX;
    }
    s->single_active = wr_table_get(args, "x-single-active-consumer", &v) == 1 &&
                       v.type == 't' && v.v.t;
    s->dlx = arg_str(args, "x-dead-letter-exchange", &s->dlx_len, &oom);
    s->dlrk = arg_str(args, "x-dead-letter-routing-key", &s->dlrk_len, &oom);
    if (oom) {
        wr_qsettings_free(s);
        return WR_ENOMEM;
    }
    return 0;
}

void wr_qsettings_free(struct wr_qsettings *s)
{
    free(s->dlx);
    free(s->dlrk);
    s->dlx = s->dlrk = NULL;
}
