/*
 * x_headers.c - the headers exchange type: a binding matches on the
 * message's headers table instead of its routing key. The binding's
 * arguments are the pattern; "x-match" says how to combine its entries.
 *
 * Semantics are those of RabbitMQ 3.10.8 (rabbit_exchange_type_headers.erl,
 * the version our reference node runs), read from its code and checked
 * against a live 3.10.8 node on thousands of random pattern/header pairs:
 *
 *  - x-match: "all" (also when absent), "any", "all-with-x", "any-with-x".
 *    validate() refuses any other string, or a value that is not a longstr
 *    ('S'; even 'x' "all" is refused), with 406 PRECONDITION_FAILED (the
 *    binding_invalid error, which rabbit_channel turns into
 *    precondition_failed). The text RabbitMQ sends is "Invalid x-match
 *    field value ~p; expected all, any, all-with-x, or any-with-x" or
 *    "Invalid x-match field type ~p (value ~p); expected longstr".
 *    If an unvalidated binding has another value it is matched as "all".
 *  - Pattern entries: "x-match" itself never takes part. With all/any,
 *    every entry whose name starts with "x-" is ignored; with the -with-x
 *    variants they count like any other.
 *  - An entry of type void ('V') matches when the header is present, with
 *    any value. Otherwise the header must be present and its value equal.
 *  - all: true when every counted entry matches (so a binding with no
 *    counted entries matches every message, headers or not). any: true
 *    when at least one matches (never with no counted entries).
 *  - Equality is Erlang's == on the decoded values, which ignores the type
 *    letter: every integer type (b B s u I i l L T) is one integer, so
 *    I 1 = l 1 = T 1; f and d are floats, and an integer equals a float
 *    of the same exact value (1 = 1.0, as 1 == 1.0 in Erlang); S and x are
 *    both binaries (S "a" = x "a"); t is a boolean and equals only t;
 *    D equals a D with the same scale and digits (1.0 as {1,10} is not
 *    {0,1}); a table equals a table with the same entries in the same
 *    order, an array an array with the same elements, where inside them
 *    types do count ({signedint,1} is not {long,1}, but l and L both
 *    decode as long) and an empty table equals an empty array (both []).
 *    A void header never equals a non-void pattern value. NaN and the
 *    infinities never reach RabbitMQ's matcher (its decoder refuses
 *    them); here a NaN equals nothing and an infinity only itself.
 *  - Duplicate names. RabbitMQ sorts both the pattern and the headers by
 *    name (stably) and merges them, so the k-th pattern entry with a name
 *    is compared with the k-th header of that name, in table order; a
 *    pattern entry with no k-th header is missing; extra headers are
 *    ignored. With unique names this is the plain lookup.
 *
 * add() parses the pattern once into sorted groups of rules (one group per
 * name) that point into b->args, which the binding owns. Matching walks
 * the message's headers once, finding each header's group by binary
 * search; no allocation per message.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "wire/field.h"

enum hx_mode { HX_ALL, HX_ANY, HX_ALL_WITH_X, HX_ANY_WITH_X, HX_INVALID };

struct hx_rule {
    struct wr_str key;
    struct wr_fv val;
};

/* Rules [first, first + n) share the name `key`, in pattern order. */
struct hx_group {
    struct wr_str key;
    uint32_t first, n;
};

struct hx_binding {
    bool any;
    uint32_t nrules, ngroups;
    struct hx_rule *rules;
    struct hx_group *groups; /* sorted by name */
    uint32_t *seen;          /* per group: headers of that name seen so far */
};

/* ---- reading tables ---- */

static struct wr_rd hx_rd(struct wr_str s)
{
    static const char none;
    return wr_rd_init(s.len ? s.ptr : &none, s.len);
}

static enum hx_mode hx_parse_mode(struct wr_str args)
{
    struct wr_fv v;

    if (!wr_table_get(args, "x-match", &v))
        return HX_ALL;
    if (v.type != 'S')
        return HX_INVALID;
    if (wr_str_eqc(v.v.str, "all"))
        return HX_ALL;
    if (wr_str_eqc(v.v.str, "any"))
        return HX_ANY;
    if (wr_str_eqc(v.v.str, "all-with-x"))
        return HX_ALL_WITH_X;
    if (wr_str_eqc(v.v.str, "any-with-x"))
        return HX_ANY_WITH_X;
    return HX_INVALID;
}

/* Whether a pattern entry named `key` takes part in matching. */
static bool hx_counts(struct wr_str key, enum hx_mode mode)
{
    if (wr_str_eqc(key, "x-match"))
        return false;
    if (mode == HX_ALL_WITH_X || mode == HX_ANY_WITH_X)
        return true;
    return !(key.len >= 2 && key.ptr[0] == 'x' && key.ptr[1] == '-');
}

/* Erlang orders binaries byte by byte, a prefix first. */
static int hx_keycmp(struct wr_str a, struct wr_str b)
{
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* ---- value equality (Erlang ==, see the top of the file) ---- */

enum hx_class { HC_INT, HC_FLOAT, HC_BIN, HC_BOOL, HC_DEC, HC_TABLE, HC_ARRAY, HC_VOID, HC_BAD };

static enum hx_class hx_class_of(uint8_t type)
{
    switch (type) {
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i':
    case 'l':
    case 'L':
    case 'T':
        return HC_INT;
    case 'f':
    case 'd':
        return HC_FLOAT;
    case 'S':
    case 'x':
        return HC_BIN;
    case 't':
        return HC_BOOL;
    case 'D':
        return HC_DEC;
    case 'F':
        return HC_TABLE;
    case 'A':
        return HC_ARRAY;
    case 'V':
        return HC_VOID;
    default:
        return HC_BAD;
    }
}

/* An integer value as sign and magnitude, so that T (up to 2^64 - 1) and
 * l (down to -2^63) compare exactly. */
struct hx_int {
    bool neg;
    uint64_t mag;
};

static struct hx_int hx_int_of(const struct wr_fv *v)
{
    int64_t s;

    switch (v->type) {
    case 'B':
        return (struct hx_int){false, v->v.B};
    case 'u':
        return (struct hx_int){false, v->v.u};
    case 'i':
        return (struct hx_int){false, v->v.i};
    case 'T':
        return (struct hx_int){false, v->v.T};
    case 'b':
        s = v->v.b;
        break;
    case 's':
        s = v->v.s;
        break;
    case 'I':
        s = v->v.I;
        break;
    default: /* l, L */
        s = v->v.l;
        break;
    }
    if (s < 0)
        return (struct hx_int){true, (uint64_t)0 - (uint64_t)s};
    return (struct hx_int){false, (uint64_t)s};
}

static double hx_float_of(const struct wr_fv *v)
{
    return v->type == 'f' ? (double)v->v.f : v->v.d;
}

/* Exact comparison of an integer with a double, as Erlang's == does. */
static bool hx_int_float_eq(struct hx_int i, double d)
{
    uint64_t u;

    if (d != d) /* NaN */
        return false;
    if (d == 0)
        return i.mag == 0;
    if ((d < 0) != i.neg)
        return false;
    if (d < 0)
        d = -d;
    if (d >= 18446744073709551616.0) /* 2^64, and the infinities */
        return false;
    u = (uint64_t)d;
    return (double)u == d && u == i.mag;
}

static bool hx_table_eq(struct wr_str a, struct wr_str b, unsigned depth);
static bool hx_array_eq(struct wr_str a, struct wr_str b, unsigned depth);

/* Values inside a table or array: RabbitMQ compares {Type, Value} terms,
 * so the type counts (with l and L both `long`). */
static bool hx_typed_eq(const struct wr_fv *a, const struct wr_fv *b, unsigned depth)
{
    uint8_t ta = a->type == 'L' ? 'l' : a->type;
    uint8_t tb = b->type == 'L' ? 'l' : b->type;

    if (ta != tb)
        return false;
    switch (hx_class_of(ta)) {
    case HC_INT: {
        struct hx_int x = hx_int_of(a), y = hx_int_of(b);
        return x.neg == y.neg && x.mag == y.mag;
    }
    case HC_FLOAT:
        return hx_float_of(a) == hx_float_of(b);
    case HC_BIN:
        return wr_str_eq(a->v.str, b->v.str);
    case HC_BOOL:
        return a->v.t == b->v.t;
    case HC_DEC:
        return a->v.D.scale == b->v.D.scale && a->v.D.value == b->v.D.value;
    case HC_TABLE:
        return hx_table_eq(a->v.str, b->v.str, depth + 1);
    case HC_ARRAY:
        return hx_array_eq(a->v.str, b->v.str, depth + 1);
    case HC_VOID:
        return true;
    default:
        return false;
    }
}

/* Both bodies were validated, which bounds the depth; the check is only a
 * guard against a caller that skipped validation. */
static bool hx_table_eq(struct wr_str a, struct wr_str b, unsigned depth)
{
    struct wr_rd ra = hx_rd(a), rb = hx_rd(b);
    struct wr_str ka, kb;
    struct wr_fv va, vb;

    if (depth > WR_FIELD_MAX_DEPTH)
        return false;
    for (;;) {
        int na = wr_table_next(&ra, &ka, &va);
        int nb = wr_table_next(&rb, &kb, &vb);
        if (na < 0 || nb < 0)
            return false;
        if (na == 0 || nb == 0)
            return na == nb;
        if (!wr_str_eq(ka, kb) || !hx_typed_eq(&va, &vb, depth))
            return false;
    }
}

static bool hx_array_eq(struct wr_str a, struct wr_str b, unsigned depth)
{
    struct wr_rd ra = hx_rd(a), rb = hx_rd(b);
    struct wr_fv va, vb;

    if (depth > WR_FIELD_MAX_DEPTH)
        return false;
    for (;;) {
        int na = wr_array_next(&ra, &va);
        int nb = wr_array_next(&rb, &vb);
        if (na < 0 || nb < 0)
            return false;
        if (na == 0 || nb == 0)
            return na == nb;
        if (!hx_typed_eq(&va, &vb, depth))
            return false;
    }
}

/* A pattern value against a header value, both at the top level, where
 * only the decoded values count. */
static bool hx_value_eq(const struct wr_fv *p, const struct wr_fv *d)
{
    enum hx_class cp = hx_class_of(p->type), cd = hx_class_of(d->type);

    if (cp == HC_INT && cd == HC_INT) {
        struct hx_int x = hx_int_of(p), y = hx_int_of(d);
        return x.neg == y.neg && x.mag == y.mag;
    }
    if (cp == HC_INT && cd == HC_FLOAT)
        return hx_int_float_eq(hx_int_of(p), hx_float_of(d));
    if (cp == HC_FLOAT && cd == HC_INT)
        return hx_int_float_eq(hx_int_of(d), hx_float_of(p));
    if (cp == HC_FLOAT && cd == HC_FLOAT)
        return hx_float_of(p) == hx_float_of(d);
    if ((cp == HC_TABLE && cd == HC_ARRAY) || (cp == HC_ARRAY && cd == HC_TABLE))
        return p->v.str.len == 0 && d->v.str.len == 0; /* [] == [] */
    if (cp != cd)
        return false;
    switch (cp) {
    case HC_BIN:
        return wr_str_eq(p->v.str, d->v.str);
    case HC_BOOL:
        return p->v.t == d->v.t;
    case HC_DEC:
        return p->v.D.scale == d->v.D.scale && p->v.D.value == d->v.D.value;
    case HC_TABLE:
        return hx_table_eq(p->v.str, d->v.str, 2);
    case HC_ARRAY:
        return hx_array_eq(p->v.str, d->v.str, 2);
    case HC_VOID:
        return true;
    default:
        return false;
    }
}

/* ---- parsing a binding's pattern ---- */

static int hx_rule_cmp(const void *a, const void *b)
{
    const struct hx_rule *x = a, *y = b;
    int c = hx_keycmp(x->key, y->key);
    if (c)
        return c;
    /* Same name: keep pattern order (keys point into one table, in order),
     * which makes qsort stable like Erlang's lists:keysort. */
    return (x->key.ptr > y->key.ptr) - (x->key.ptr < y->key.ptr);
}

static int hx_parse(struct wr_str args, struct hx_binding **out)
{
    enum hx_mode mode = hx_parse_mode(args);
    struct hx_binding *hb;
    struct wr_rd r;
    struct wr_str k;
    struct wr_fv v;
    uint32_t n = 0;
    int rc;

    if (mode == HX_INVALID)
        mode = HX_ALL; /* RabbitMQ's parse_x_match: "legacy; we didn't validate" */
    r = hx_rd(args);
    while ((rc = wr_table_next(&r, &k, &v)) > 0)
        if (hx_counts(k, mode))
            n++;
    if (rc < 0)
        return WR_ESYNTAX;

    /* One block: header, rules, groups, counters (n bounds the groups). */
    hb = calloc(1, sizeof(*hb) + (size_t)n * (sizeof(struct hx_rule) + sizeof(struct hx_group) +
                                              sizeof(uint32_t)));
    if (!hb)
        return WR_ENOMEM;
    hb->any = mode == HX_ANY || mode == HX_ANY_WITH_X;
    hb->rules = (struct hx_rule *)(hb + 1);
    hb->groups = (struct hx_group *)(hb->rules + n);
    hb->seen = (uint32_t *)(hb->groups + n);

    r = hx_rd(args);
    while (wr_table_next(&r, &k, &v) > 0) {
        if (hx_counts(k, mode)) {
            hb->rules[hb->nrules].key = k;
            hb->rules[hb->nrules].val = v;
            hb->nrules++;
        }
    }
    if (n > 1)
        qsort(hb->rules, n, sizeof(*hb->rules), hx_rule_cmp);
    for (uint32_t i = 0; i < n; i++) {
        struct hx_group *g = hb->ngroups ? &hb->groups[hb->ngroups - 1] : NULL;
        if (g && wr_str_eq(g->key, hb->rules[i].key)) {
            g->n++;
        } else {
            g = &hb->groups[hb->ngroups++];
            g->key = hb->rules[i].key;
            g->first = i;
            g->n = 1;
        }
    }
    *out = hb;
    return 0;
}

static const struct hx_group *hx_find_group(const struct hx_binding *hb, struct wr_str key)
{
    uint32_t lo = 0, hi = hb->ngroups;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = hx_keycmp(key, hb->groups[mid].key);
        if (c == 0)
            return &hb->groups[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- matching ---- */

static bool hx_match(struct hx_binding *hb, struct wr_str headers)
{
    struct wr_rd r;
    struct wr_str k;
    struct wr_fv v;
    uint32_t matched = 0;

    if (hb->nrules == 0)
        return !hb->any;
    if (headers.len == 0)
        return false;
    memset(hb->seen, 0, (size_t)hb->ngroups * sizeof(*hb->seen));
    r = hx_rd(headers);
    /* A malformed tail (headers are validated on arrival, so never) reads
     * as absent headers. */
    while (wr_table_next(&r, &k, &v) > 0) {
        const struct hx_group *g = hx_find_group(hb, k);
        const struct hx_rule *rule;
        uint32_t occ;
        if (!g)
            continue;
        occ = hb->seen[g - hb->groups]++;
        if (occ >= g->n)
            continue;
        rule = &hb->rules[g->first + occ];
        if (rule->val.type == 'V' || hx_value_eq(&rule->val, &v)) {
            if (hb->any)
                return true;
            matched++;
        } else if (!hb->any) {
            return false;
        }
    }
    return !hb->any && matched == hb->nrules;
}

/* ---- the type ---- */

static int headers_init(struct wr_exchange *x)
{
    x->type_state = NULL;
    return 0;
}

/* Frees the parsed patterns of bindings still on the exchange (they
 * belong to exchange.c and stay). */
static void headers_destroy(struct wr_exchange *x)
{
    struct wr_list *it;

    wr_list_each(it, &x->bindings)
    {
        struct wr_binding *b = wr_container_of(it, struct wr_binding, src_node);
        free(b->type_data);
        b->type_data = NULL;
    }
}

static int headers_validate(struct wr_str key, struct wr_str args)
{
    (void)key;
    return hx_parse_mode(args) == HX_INVALID ? WR_EPRECONDITION_FAILED : 0;
}

static int headers_add(struct wr_exchange *x, struct wr_binding *b)
{
    struct hx_binding *hb;
    int rc;

    (void)x;
    if ((rc = hx_parse(b->args, &hb)) < 0)
        return rc;
    b->type_data = hb;
    return 0;
}

static void headers_remove(struct wr_exchange *x, struct wr_binding *b)
{
    (void)x;
    free(b->type_data);
    b->type_data = NULL;
}

/* `emit` must not add or remove bindings of this exchange. */
static void headers_route(struct wr_exchange *x, const struct wr_route_msg *m,
                          wr_route_emit_fn emit, void *ctx)
{
    struct wr_list *it;

    wr_list_each(it, &x->bindings)
    {
        struct wr_binding *b = wr_container_of(it, struct wr_binding, src_node);
        if (b->type_data && hx_match(b->type_data, m->headers))
            emit(b, ctx);
    }
}

const struct wr_xtype wr_xtype_headers = {
    .name = "headers",
    .init = headers_init,
    .destroy = headers_destroy,
    .validate = headers_validate,
    .add = headers_add,
    .remove = headers_remove,
    .route = headers_route,
};
