/*
 * qargs.c - queue argument checks; see qargs.h.
 *
 * One row per argument RabbitMQ knows. Unknown arguments are stored and
 * ignored, as RabbitMQ does.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dedup.h"
#include "broker/qargs.h"
#include "wire/field.h"

enum qarg_kind { QA_NONNEG, QA_POS, QA_STR, QA_BOOL, QA_PRIO, QA_ENUM, QA_AGE, QA_VERSION };

/* Which queue types take an argument (RabbitMQ 3.10 refuses the others'
 * with "... of queue type rabbit_X_queue"). */
#define T_CLASSIC (1u << WR_QTYPE_CLASSIC)
#define T_QUORUM (1u << WR_QTYPE_QUORUM)
#define T_STREAM (1u << WR_QTYPE_STREAM)
#define T_CQ (T_CLASSIC | T_QUORUM)

struct qarg {
    const char *name;
    enum qarg_kind kind;
    const char *values; /* QA_ENUM: '|' separated */
    /* QA_ENUM: RabbitMQ's reason for a value not in the list: the text as
     * it is, or, starting with '"', "TEXT 'VALUE'" with the value given */
    const char *bad_value;
    unsigned types;
};

/* x-delivery-limit is a quorum queue's in RabbitMQ; Warren's classic queues
 * have it too (docs/ARCHITECTURE.md, "Queues"). */
static const struct qarg qargs[] = {
    {"x-queue-type", QA_ENUM, "classic|quorum|stream", "\"unsupported queue type", T_CQ | T_STREAM},
    {"x-message-ttl", QA_NONNEG, NULL, NULL, T_CQ},
    {"x-expires", QA_POS, NULL, NULL, T_CQ},
    {"x-max-length", QA_NONNEG, NULL, NULL, T_CQ},
    {"x-max-length-bytes", QA_NONNEG, NULL, NULL, T_CQ | T_STREAM},
    {"x-max-priority", QA_PRIO, NULL, NULL, T_CLASSIC},
    {"x-dead-letter-exchange", QA_STR, NULL, NULL, T_CQ},
    {"x-dead-letter-routing-key", QA_STR, NULL, NULL, T_CQ},
    {"x-overflow", QA_ENUM, "drop-head|reject-publish|reject-publish-dlx", "invalid_overflow",
     T_CQ},
    {"x-queue-mode", QA_ENUM, "default|lazy", "\"unsupported queue mode", T_CLASSIC},
    {"x-single-active-consumer", QA_BOOL, NULL, NULL, T_CQ},
    {"x-delivery-limit", QA_NONNEG, NULL, NULL, T_CQ},
    {"x-queue-master-locator", QA_STR, NULL, NULL, T_CLASSIC},
    {"x-queue-version", QA_VERSION, NULL, NULL, T_CLASSIC},
    {"x-quorum-initial-group-size", QA_POS, NULL, NULL, T_QUORUM},
    {"x-dead-letter-strategy", QA_ENUM, "at-most-once|at-least-once", "invalid_dlx_strategy",
     T_QUORUM},
    {"x-queue-leader-locator", QA_ENUM, "client-local|balanced", "invalid_queue_locator_arg",
     T_QUORUM | T_STREAM},
    {"x-max-in-memory-length", QA_NONNEG, NULL, NULL, T_QUORUM},
    {"x-max-in-memory-bytes", QA_NONNEG, NULL, NULL, T_QUORUM},
    /* streams (stream.h) */
    {"x-max-age", QA_AGE, NULL, NULL, T_STREAM},
    {"x-stream-max-segment-size-bytes", QA_POS, NULL, NULL, T_STREAM},
    {"x-initial-cluster-size", QA_POS, NULL, NULL, T_STREAM},
    /* key compaction (Warren's; stream.h) */
    {"x-stream-compaction", QA_ENUM, "key|none", "invalid_stream_compaction", T_STREAM},
    {"x-stream-compaction-key-header", QA_STR, NULL, NULL, T_STREAM},
    {"x-stream-tombstone-retention", QA_NONNEG, NULL, NULL, T_STREAM},
    /* deduplication (dedup.h) */
    {"x-message-deduplication", QA_BOOL, NULL, NULL, T_CQ},
    {"x-cache-size", QA_POS, NULL, NULL, T_CQ},
    {"x-cache-ttl", QA_POS, NULL, NULL, T_CQ},
    {"x-deduplication-header", QA_STR, NULL, NULL, T_CQ},
    {"x-deduplication-key", QA_ENUM, "header|message-id", "invalid_value", T_CQ},
    /* x-consumer-timeout has no row: RabbitMQ 3.12 neither checks it at
     * declare nor compares it on redeclaration (wr_qsettings_parse). */
};

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

const char *wr_qtype_module(enum wr_qtype t)
{
    return t == WR_QTYPE_QUORUM   ? "rabbit_quorum_queue"
           : t == WR_QTYPE_STREAM ? "rabbit_stream_queue"
                                  : "rabbit_classic_queue";
}

enum wr_qtype wr_qargs_type(struct wr_str args)
{
    struct wr_fv v;
    if (wr_table_get(args, "x-queue-type", &v) == 1 && v.type == 'S') {
        if (wr_str_eqc(v.v.str, "quorum"))
            return WR_QTYPE_QUORUM;
        if (wr_str_eqc(v.v.str, "stream"))
            return WR_QTYPE_STREAM;
    }
    return WR_QTYPE_CLASSIC;
}

const char *wr_qtype_name(enum wr_qtype t)
{
    return t == WR_QTYPE_QUORUM ? "quorum" : t == WR_QTYPE_STREAM ? "stream" : "classic";
}

bool wr_qargs_parse_age(struct wr_str v, int64_t *ms)
{
    static const struct {
        char unit;
        int64_t ms;
    } units[] = {{'Y', 365ll * 86400000}, {'M', 30ll * 86400000}, {'D', 86400000},
                 {'h', 3600000},          {'m', 60000},           {'s', 1000}};
    int64_t n = 0;
    size_t i = 0;
    while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9') {
        if (n > INT64_MAX / 10 / 86400000 / 365)
            return false;
        n = n * 10 + (v.ptr[i++] - '0');
    }
    if (i == 0 || i + 1 != v.len || n <= 0)
        return false;
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++)
        if (units[k].unit == v.ptr[i]) {
            *ms = n * units[k].ms;
            return true;
        }
    return false;
}

static void bad_value(char *why, size_t cap, const struct qarg *a, struct wr_str v)
{
    if (a->bad_value[0] == '"')
        snprintf(why, cap, "%s '%.*s'\"", a->bad_value, (int)(v.len > 200 ? 200 : v.len), v.ptr);
    else
        snprintf(why, cap, "%s", a->bad_value);
}

/* 406 for one argument: RabbitMQ's text, with its reason. */
static int bad_arg(struct wr_errbuf *err, const char *name, struct wr_str qname, const char *vhost,
                   const char *why)
{
    return wr_fail(err, WR_EPRECONDITION_FAILED,
                   "invalid arg '%s' for queue '%.*s' in vhost '%s': %s", name, (int)qname.len,
                   qname.ptr, vhost, why);
}

/* 406 for an argument the queue's type does not take. */
static int type_check(struct wr_str args, enum wr_qtype type, struct wr_str qname,
                      const char *vhost, struct wr_errbuf *err)
{
    struct wr_fv v;
    for (size_t k = 0; k < sizeof(qargs) / sizeof(qargs[0]); k++) {
        if (!(qargs[k].types & (1u << type)) && wr_table_get(args, qargs[k].name, &v) == 1)
            return wr_fail(err, WR_EPRECONDITION_FAILED,
                           "invalid arg '%s' for queue '%.*s' in vhost '%s' of queue type %s",
                           qargs[k].name, (int)qname.len, qname.ptr, vhost, wr_qtype_module(type));
    }
    return 0;
}

int wr_qargs_validate(struct wr_str args, struct wr_str qname, const char *vhost,
                      struct wr_errbuf *err)
{
    int rc;
    struct wr_fv v;
    int64_t i;
    bool has_dlx = false, has_dlrk = false;
    enum wr_qtype type;
    char why[320];

    /* The type first (its own value), then the arguments the type does not
     * take, then each argument's value: RabbitMQ's order. */
    if (wr_table_get(args, "x-queue-type", &v) == 1) {
        if (v.type != 'S') {
            snprintf(why, sizeof(why), "{unacceptable_type,%s}", wr_field_type_name(v.type));
            return bad_arg(err, "x-queue-type", qname, vhost, why);
        }
        if (!enum_has(qargs[0].values, v.v.str)) {
            bad_value(why, sizeof(why), &qargs[0], v.v.str);
            return bad_arg(err, "x-queue-type", qname, vhost, why);
        }
    }
    type = wr_qargs_type(args);
    /* RabbitMQ 3.10 checks a stream's argument values before the
     * arguments a stream does not take; a quorum queue's the other way. */
    if (type != WR_QTYPE_STREAM && (rc = type_check(args, type, qname, vhost, err)) < 0)
        return rc;
    for (size_t k = 1; k < sizeof(qargs) / sizeof(qargs[0]); k++) {
        const struct qarg *a = &qargs[k];
        if (wr_table_get(args, a->name, &v) != 1)
            continue;
        why[0] = '\0';
        switch (a->kind) {
        case QA_NONNEG:
        case QA_POS:
        case QA_PRIO:
            if (!wr_fv_int(&v, &i) || v.type == 'T')
                snprintf(why, sizeof(why), "\"expected integer, got %s\"",
                         wr_field_type_name(v.type));
            else if (i < 0)
                snprintf(why, sizeof(why), "{value_negative,%lld}", (long long)i);
            else if (a->kind == QA_POS && i == 0)
                snprintf(why, sizeof(why), "{value_zero,0}");
            else if (a->kind == QA_PRIO && i > 255)
                snprintf(why, sizeof(why), "{max_value_exceeded,%lld}", (long long)i);
            break;
        case QA_STR:
            if (v.type != 'S')
                snprintf(why, sizeof(why), "{unacceptable_type,%s}", wr_field_type_name(v.type));
            if (strcmp(a->name, "x-dead-letter-exchange") == 0)
                has_dlx = true;
            if (strcmp(a->name, "x-dead-letter-routing-key") == 0)
                has_dlrk = true;
            break;
        case QA_BOOL:
            if (v.type != 't')
                snprintf(why, sizeof(why), "{unacceptable_type,%s}", wr_field_type_name(v.type));
            break;
        case QA_VERSION: /* RabbitMQ 3.10's classic queue versions: 1 and 2 */
            if (!wr_fv_int(&v, &i) || v.type == 'T')
                snprintf(why, sizeof(why), "\"expected integer, got %s\"",
                         wr_field_type_name(v.type));
            else if (i != 1 && i != 2)
                snprintf(why, sizeof(why), "\"unsupported queue version '%lld'\"", (long long)i);
            break;
        case QA_AGE:
            if (v.type != 'S')
                snprintf(why, sizeof(why), "{unacceptable_type,%s}", wr_field_type_name(v.type));
            else if (!wr_qargs_parse_age(v.v.str, &i))
                snprintf(why, sizeof(why), "invalid_max_age");
            break;
        case QA_ENUM:
            if (v.type != 'S') {
                snprintf(why, sizeof(why), "{unacceptable_type,%s}", wr_field_type_name(v.type));
            } else if (!enum_has(a->values, v.v.str)) {
                bad_value(why, sizeof(why), a, v.v.str);
            }
            break;
        }
        if (why[0])
            return bad_arg(err, a->name, qname, vhost, why);
    }
    if (type == WR_QTYPE_STREAM && (rc = type_check(args, type, qname, vhost, err)) < 0)
        return rc;
    /* Where RabbitMQ falls over (a 1-byte segment spins a core; a zero
     * length limit with tiny segments crashed a node), Warren refuses. */
    if (type == WR_QTYPE_STREAM) {
        if (wr_table_get(args, "x-max-length-bytes", &v) == 1 && wr_fv_int(&v, &i) && i == 0)
            return bad_arg(err, "x-max-length-bytes", qname, vhost,
                           "a stream's retention limit must be positive (0 would remove every "
                           "segment)");
        if (wr_table_get(args, "x-stream-max-segment-size-bytes", &v) == 1 && wr_fv_int(&v, &i) &&
            i < WR_STREAM_MIN_SEGMENT) {
            snprintf(why, sizeof(why), "a stream segment must hold at least %d bytes",
                     WR_STREAM_MIN_SEGMENT);
            return bad_arg(err, "x-stream-max-segment-size-bytes", qname, vhost, why);
        }
    }
    if (has_dlrk && !has_dlx)
        return bad_arg(err, "x-dead-letter-routing-key", qname, vhost,
                       "Key x-dead-letter-routing-key should be specified together with "
                       "x-dead-letter-exchange");
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

/* A value as RabbitMQ writes it in an equivalence failure: the bare value
 * when both sides have one ('4'), else "the value '4' of type 'long'", or
 * "none" when absent. */
static void fv_describe(char *out, size_t cap, const struct wr_fv *v, bool typed)
{
    char val[224];
    int64_t i;
    if (!v) {
        snprintf(out, cap, "none");
        return;
    }
    if (v->type == 'S' || v->type == 'x')
        snprintf(val, sizeof(val), "%.*s", (int)(v->v.str.len > 200 ? 200 : v->v.str.len),
                 v->v.str.ptr);
    else if (v->type == 't')
        snprintf(val, sizeof(val), "%s", v->v.t ? "true" : "false");
    else if (wr_fv_int(v, &i))
        snprintf(val, sizeof(val), "%lld", (long long)i);
    else
        snprintf(val, sizeof(val), "...");
    if (typed)
        snprintf(out, cap, "the value '%s' of type '%s'", val, wr_field_type_name(v->type));
    else
        snprintf(out, cap, "'%s'", val);
}

int wr_qargs_equivalent(struct wr_str cur, struct wr_str req, const char *qname, const char *vhost,
                        struct wr_errbuf *err)
{
    /* RabbitMQ 3.10 compares these of a stream, and no other. */
    static const char *const stream_compared =
        "x-queue-type|x-max-length-bytes|x-max-age|x-stream-max-segment-size-bytes|"
        "x-initial-cluster-size|x-queue-leader-locator|x-stream-compaction|"
        "x-stream-compaction-key-header|x-stream-tombstone-retention";
    bool stream = wr_qargs_type(cur) == WR_QTYPE_STREAM;
    for (size_t k = 0; k < sizeof(qargs) / sizeof(qargs[0]); k++) {
        struct wr_fv a, b;
        int ha, hb;
        if (stream && !enum_has(stream_compared, wr_str_c(qargs[k].name)))
            continue;
        ha = wr_table_get(cur, qargs[k].name, &a) == 1;
        hb = wr_table_get(req, qargs[k].name, &b) == 1;
        char got[256], had[256];
        if (ha == hb && (!ha || fv_equal(&a, &b)))
            continue;
        /* No type is the classic type: the same queue as x-queue-type
         * classic (RabbitMQ 3.10 takes either for the other). */
        if (k == 0 && wr_qargs_type(cur) == wr_qargs_type(req))
            continue;
        fv_describe(got, sizeof(got), hb ? &b : NULL, !(ha && hb));
        fv_describe(had, sizeof(had), ha ? &a : NULL, !(ha && hb));
        return wr_fail(err, WR_EPRECONDITION_FAILED,
                       "inequivalent arg '%s' for queue '%s' in vhost '%s': received %s but "
                       "current is %s",
                       qargs[k].name, qname, vhost, got, had);
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
    s->single_active =
        wr_table_get(args, "x-single-active-consumer", &v) == 1 && v.type == 't' && v.v.t;
    s->type = wr_qargs_type(args);
    s->max_age_ms = -1;
    if (wr_table_get(args, "x-max-age", &v) == 1 && v.type == 'S' &&
        !wr_qargs_parse_age(v.v.str, &s->max_age_ms))
        s->max_age_ms = -1;
    s->segment_max = arg_int(args, "x-stream-max-segment-size-bytes");
    s->compact = s->type == WR_QTYPE_STREAM && wr_table_get(args, "x-stream-compaction", &v) == 1 &&
                 v.type == 'S' && wr_str_eqc(v.v.str, "key");
    s->compact_header =
        arg_str(args, "x-stream-compaction-key-header", &s->compact_header_len, &oom);
    s->tombstone_ms = arg_int(args, "x-stream-tombstone-retention");
    if (s->tombstone_ms < 0)
        s->tombstone_ms = 86400000; /* a day */
    s->dedup = wr_dedup_args_on(args);
    s->dedup_cache = NULL; /* made on first use (wr_dedup_of_queue) */
    s->dlx = arg_str(args, "x-dead-letter-exchange", &s->dlx_len, &oom);
    s->dl_at_least_once = s->type == WR_QTYPE_QUORUM && s->dlx &&
                          s->overflow == WR_OVERFLOW_REJECT &&
                          wr_table_get(args, "x-dead-letter-strategy", &v) == 1 && v.type == 'S' &&
                          wr_str_eqc(v.v.str, "at-least-once");
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
    free(s->compact_header);
    s->dlx = s->dlrk = s->compact_header = NULL;
    wr_dedup_free(s->dedup_cache);
    s->dedup_cache = NULL;
}
