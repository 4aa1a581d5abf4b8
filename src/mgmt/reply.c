/*
 * reply.c - reading a management request (query, JSON body, fields as
 * RabbitMQ's API takes them, vhost access) and answering it in RabbitMQ's
 * shapes; see api.h.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "broker/stats.h"
#include "broker/vhost.h"
#include "core/log.h"
#include "core/utf8.h"
#include "mgmt/api.h"
#include "mgmt/http.h"
#include "store/jsonfield.h"

/* ---- answers ---- */

static void answer_with(struct wr_mgmt_req *rq, int status, const char *ctype,
                        struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(rq->r);
    if (rq->answered) {
        wr_log(WR_LOG_ERROR, "management: a request answered twice (status %d)", status);
        if (body)
            evbuffer_free(body);
        return;
    }
    rq->answered = true;
    if (ctype)
        evhttp_add_header(h, "content-type", ctype);
    evhttp_add_header(h, "cache-control", "no-cache");
    evhttp_add_header(h, "vary", "accept, accept-encoding, origin");
    evhttp_send_reply(rq->r, status, NULL, body);
    if (body)
        evbuffer_free(body);
}

static void free_text(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

static void send_json(struct wr_mgmt_req *rq, int status, json_t *doc)
{
    struct evbuffer *b = evbuffer_new();
    char *text = NULL;
    if (doc)
        text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_decref(doc);
    if (!b || !text) {
        free(text);
        if (b)
            evbuffer_free(b);
        answer_with(rq, 500, NULL, NULL);
        return;
    }
    evbuffer_add_reference(b, text, strlen(text), free_text, NULL);
    answer_with(rq, status, "application/json", b);
}

void wr_mgmt_reply_empty(struct wr_mgmt_req *rq, int status)
{
    answer_with(rq, status, NULL, NULL);
}

void wr_mgmt_error(struct wr_mgmt_req *rq, int status, const char *error, const char *reason)
{
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "error", json_string(error));
        json_object_set_new(o, "reason", wr_json_str(wr_str_c(reason)));
    }
    send_json(rq, status, o);
}

void wr_mgmt_errorf(struct wr_mgmt_req *rq, int status, const char *error, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    wr_mgmt_error(rq, status, error, reason);
}

void wr_mgmt_not_found(struct wr_mgmt_req *rq)
{
    wr_mgmt_error(rq, 404, "Object Not Found", "Not Found");
}

void wr_mgmt_refused(struct wr_mgmt_req *rq, const struct wr_errbuf *err)
{
    switch (err->code) {
    case WR_ENOT_FOUND:
        wr_mgmt_error(rq, 404, "Object Not Found", err->text);
        break;
    case WR_EACCESS_REFUSED:
        wr_mgmt_error(rq, 401, "not_authorised", err->text);
        break;
    case WR_ENOMEM:
    case WR_EINTERNAL:
        wr_mgmt_error(rq, 500, "internal_error", err->text);
        break;
    default:
        wr_mgmt_error(rq, 400, "bad_request", err->text);
        break;
    }
}

void wr_mgmt_reply_text(struct wr_mgmt_req *rq, const char *content_type, const char *text,
                        size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (!b || evbuffer_add(b, text, len) < 0) {
        if (b)
            evbuffer_free(b);
        answer_with(rq, 500, NULL, NULL);
        return;
    }
    answer_with(rq, 200, content_type, b);
}

json_t *wr_mgmt_columns(json_t *obj, const char *cols)
{
    json_t *out = json_object();
    char buf[1024];
    if (!out || !json_is_object(obj))
        return out;
    snprintf(buf, sizeof(buf), "%s", cols);
    for (char *save = NULL, *c = strtok_r(buf, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        json_t *src = obj, *dst = out;
        char *dot;
        while ((dot = strchr(c, '.')) != NULL) {
            *dot = '\0';
            src = json_object_get(src, c);
            if (!json_is_object(src))
                break;
            json_t *d = json_object_get(dst, c);
            if (!d) {
                d = json_object();
                json_object_set_new(dst, c, d);
            }
            dst = d;
            c = dot + 1;
        }
        if (dot || !src)
            continue;
        json_t *v = json_object_get(src, c);
        if (v)
            json_object_set(dst, c, v);
    }
    return out;
}

void wr_mgmt_reply_json(struct wr_mgmt_req *rq, json_t *doc)
{
    const char *cols = wr_mgmt_query(rq, "columns");
    if (doc && cols && *cols && json_is_object(doc)) {
        json_t *c = wr_mgmt_columns(doc, cols);
        json_decref(doc);
        doc = c;
    }
    send_json(rq, 200, doc);
}

/* ---- the request ---- */

const char *wr_mgmt_query(struct wr_mgmt_req *rq, const char *key)
{
    return rq->query ? evhttp_find_header(rq->query, key) : NULL;
}

json_t *wr_mgmt_body(struct wr_mgmt_req *rq)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(rq->r);
    size_t n = in ? evbuffer_get_length(in) : 0;
    json_error_t jerr;
    json_t *j;

    if (n > WR_MGMT_BODY_MAX) {
        wr_mgmt_error(rq, 413, "bad_request", "request body too large");
        return NULL;
    }
    if (n == 0)
        return json_object();
    const char *p = (const char *)evbuffer_pullup(in, -1);
    if (!p) {
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return NULL;
    }
    j = json_loadb(p, n, JSON_ALLOW_NUL, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        wr_mgmt_error(rq, 400, "bad_request", "not_json");
        return NULL;
    }
    return j;
}

bool wr_mgmt_field_bool(struct wr_mgmt_req *rq, json_t *o, const char *key, bool def, bool *out)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v))
        return true;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "true")) {
            *out = true;
            return true;
        }
        if (!strcmp(s, "false")) {
            *out = false;
            return true;
        }
    }
    wr_mgmt_errorf(rq, 400, "bad_request", "%s: not_boolean", key);
    return false;
}

bool wr_mgmt_field_int(struct wr_mgmt_req *rq, json_t *o, const char *key, int64_t min, int64_t max,
                       int64_t def, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    long long x;
    *out = def;
    if (!v || json_is_null(v))
        return true;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        x = strtoll(s, &end, 10);
        if (!*s || *end) {
            wr_mgmt_errorf(rq, 400, "bad_request", "%s: not_integer", key);
            return false;
        }
    } else {
        wr_mgmt_errorf(rq, 400, "bad_request", "%s: not_integer", key);
        return false;
    }
    if (x < min || x > max) {
        wr_mgmt_errorf(rq, 400, "bad_request", "%s: out of range (%lld to %lld)", key,
                       (long long)min, (long long)max);
        return false;
    }
    *out = x;
    return true;
}

bool wr_mgmt_field_str(struct wr_mgmt_req *rq, json_t *o, const char *key, const char *def,
                       struct wr_str *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = def ? wr_str_c(def) : WR_STR_NULL;
        return true;
    }
    if (!json_is_string(v) || json_string_length(v) > UINT32_MAX) {
        wr_mgmt_errorf(rq, 400, "bad_request", "%s: not a string", key);
        return false;
    }
    out->ptr = json_string_value(v);
    out->len = (uint32_t)json_string_length(v);
    return true;
}

bool wr_mgmt_field_table(struct wr_mgmt_req *rq, json_t *o, const char *key, struct wr_str *out)
{
    json_t *v = json_object_get(o, key);
    struct wr_jbytes b = {0};
    const char *why;

    *out = (struct wr_str){"", 0};
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return true;
    if (!json_is_object(v)) {
        wr_mgmt_errorf(rq, 400, "bad_request", "%s: not an object", key);
        return false;
    }
    why = wr_json_to_table(&b, v);
    if (b.oom) {
        free(b.p);
        wr_mgmt_error(rq, 500, "internal_error", "out of memory");
        return false;
    }
    if (why || b.len > UINT32_MAX) {
        free(b.p);
        wr_mgmt_errorf(rq, 400, "bad_request", "%s: %s", key, why ? why : "too long");
        return false;
    }
    if (!b.len) {
        free(b.p);
        return true;
    }
    *out = (struct wr_str){(const char *)b.p, (uint32_t)b.len};
    return true;
}

/* ---- vhost access ---- */

const struct wr_vperm *wr_mgmt_vperm(struct wr_mgmt_req *rq, const struct wr_vhost *vh)
{
    if (!rq->user)
        return NULL;
    return wr_user_vperm(rq->user, wr_str_c(vh->name));
}

bool wr_mgmt_vhost_visible(struct wr_mgmt_req *rq, const struct wr_vhost *vh)
{
    return rq->monitoring || wr_mgmt_vperm(rq, vh) != NULL;
}

struct wr_vhost *wr_mgmt_vhost(struct wr_mgmt_req *rq, struct wr_str name, bool write)
{
    struct wr_vhost *vh = wr_broker_vhost(rq->b, name);
    if (!vh) {
        wr_mgmt_not_found(rq);
        return NULL;
    }
    if (rq->administrator || (!write && rq->monitoring) || wr_mgmt_vperm(rq, vh))
        return vh;
    wr_mgmt_error(rq, 401, "not_authorised", "User not authorised to access virtual host");
    return NULL;
}

bool wr_mgmt_sees_all(const struct wr_mgmt_req *rq)
{
    return rq->monitoring;
}

/* ---- JSON values ---- */

json_t *wr_json_str(struct wr_str s)
{
    if (!s.ptr)
        return json_string("");
    if (wr_utf8_valid(s.ptr, s.len))
        return json_stringn(s.ptr, s.len);
    /* Latin-1: every byte a code point, so nothing is lost. */
    char *u = malloc((size_t)s.len * 2 + 1);
    size_t n = 0;
    json_t *j;
    if (!u)
        return NULL;
    for (uint32_t i = 0; i < s.len; i++) {
        uint8_t c = (uint8_t)s.ptr[i];
        if (c < 0x80) {
            u[n++] = (char)c;
        } else {
            u[n++] = (char)(0xC0 | (c >> 6));
            u[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    j = json_stringn(u, n);
    free(u);
    return j;
}

bool wr_json_set(json_t *o, const char *key, json_t *v)
{
    if (!v)
        return false;
    return json_object_set_new(o, key, v) == 0;
}

json_t *wr_json_rate(double r)
{
    /* One decimal, as RabbitMQ gives them (and no 0.30000000000000004). */
    return json_pack("{s:f}", "rate", round(r * 10.0) / 10.0);
}

json_t *wr_json_time(uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32], out[48];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, sizeof(out), "%s.%03u+00:00", buf, (unsigned)(ms % 1000));
    return json_string(out);
}

json_t *wr_mgmt_message_stats(const struct wr_stats *s, uint32_t which)
{
    json_t *o = json_object();
    char key[64];
    uint64_t dg = 0;
    double dgr = 0;
    bool any_dg = false;
    if (!o)
        return NULL;
    for (int k = 0; k < WR_ST_N; k++) {
        if (!(which & (1u << k)))
            continue;
        const char *name = wr_stat_name((enum wr_stat)k);
        json_object_set_new(o, name, json_integer((json_int_t)s->n[k]));
        snprintf(key, sizeof(key), "%s_details", name);
        json_object_set_new(o, key, wr_json_rate(s->rate[k]));
        if (k == WR_ST_DELIVER || k == WR_ST_DELIVER_NO_ACK || k == WR_ST_GET ||
            k == WR_ST_GET_NO_ACK) {
            dg += s->n[k];
            dgr += s->rate[k];
            any_dg = true;
        }
    }
    if (any_dg) {
        json_object_set_new(o, "deliver_get", json_integer((json_int_t)dg));
        json_object_set_new(o, "deliver_get_details", wr_json_rate(dgr));
    }
    return o;
}

void wr_mgmt_reply_json_status(struct wr_mgmt_req *rq, int status, json_t *doc)
{
    send_json(rq, status, doc);
}
