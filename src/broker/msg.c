/*
 * msg.c - message blocks; see msg.h.
 */
#include "config.h"

#include <string.h>

#include "broker/msg.h"
#include "core/list.h"
#include "wire/field.h"
#include "wire/methods.gen.h"

/* ---- interned exchange + routing key ----
 *
 * The table is keyed by the exchange and routing key bytes run together;
 * the split is checked on a hit ("a"+"bc" and "ab"+"c" share bytes). A pair
 * that collides that way with one already interned is simply not put in
 * the table. A one-entry cache in front serves a publisher that repeats
 * its key without hashing. */

void wr_msgs_init(struct wr_msgs *p)
{
    memset(p, 0, sizeof(*p));
    wr_hmap_init(&p->rkeys);
    p->names_gen = 1; /* a new key's cache (route_gen 0) matches nothing */
}

void wr_msgs_fini(struct wr_msgs *p)
{
    wr_hmap_free(&p->rkeys);
    p->rkey_last = NULL;
}

static bool rkey_is(const struct wr_rkey *k, struct wr_str x, struct wr_str rk)
{
    return k->xlen == x.len && k->rklen == rk.len && (!x.len || !memcmp(k->data, x.ptr, x.len)) &&
           (!rk.len || !memcmp(k->data + x.len, rk.ptr, rk.len));
}

static struct wr_rkey *rkey_get(struct wr_msgs *p, struct wr_str x, struct wr_str rk)
{
    char buf[512];
    struct wr_str key = {buf, x.len + rk.len};
    struct wr_hnode *n;
    struct wr_rkey *k = p->rkey_last;

    if (k && rkey_is(k, x, rk)) {
        k->refs++;
        return k;
    }
    if (x.len)
        memcpy(buf, x.ptr, x.len);
    if (rk.len)
        memcpy(buf + x.len, rk.ptr, rk.len);
    n = wr_hmap_get(&p->rkeys, key);
    if (n && rkey_is(k = wr_container_of(n, struct wr_rkey, node), x, rk)) {
        k->refs++;
        p->rkey_last = k;
        return k;
    }
    k = malloc(sizeof(*k) + key.len);
    if (!k)
        return NULL;
    if (key.len)
        memcpy(k->data, buf, key.len);
    k->node.key = (struct wr_str){k->data, key.len};
    k->xlen = (uint8_t)x.len;
    k->rklen = (uint8_t)rk.len;
    k->pool = p;
    k->refs = 1;
    k->route_vh = NULL;
    k->route_gen = 0;
    k->node.hash = 0;
    if (n || wr_hmap_put(&p->rkeys, &k->node) < 0)
        k->node.next = &k->node; /* not in the table */
    p->rkey_last = k;
    return k;
}

static void rkey_put(struct wr_rkey *k)
{
    struct wr_msgs *p = k->pool;
    if (--k->refs)
        return;
    if (p->rkey_last == k)
        p->rkey_last = NULL;
    if (k->node.next != &k->node)
        wr_hmap_del(&p->rkeys, &k->node);
    free(k);
}

static _Thread_local bool tl_remote; /* wr_msg_thread_remote */

void wr_msg_thread_remote(void)
{
    tl_remote = true;
}

/* A block with its properties, not yet a pool's; the body inline (no
 * extension), in an allocation of its own (extension, shared == NULL) or in
 * chunk `shared` (whose count the caller takes). */
static struct wr_msg *block_alloc(const void *props, uint32_t props_len, uint64_t body_len,
                                  unsigned flags, struct wr_chunk *shared,
                                  const uint8_t *shared_body)
{
    size_t ext = (flags & WR_MSG_EXT) ? sizeof(struct wr_msg_ext) : 0;
    size_t fixed = sizeof(struct wr_msg) + ext + props_len;
    size_t inline_body = ext ? 0 : (size_t)body_len;
    uint8_t *body = NULL;
    struct wr_msg *m;

    if (body_len > UINT32_MAX || body_len > SIZE_MAX - fixed)
        return NULL;
    if (ext && !shared && !(body = malloc(body_len ? (size_t)body_len : 1)))
        return NULL;
    m = malloc(fixed + inline_body);
    if (!m) {
        free(body);
        return NULL;
    }
    m->rkey = NULL;
    m->refs = 1;
    m->props_len = props_len;
    m->body_len = (uint32_t)body_len;
    m->priority = 0;
    m->flags = (uint8_t)((flags & ~WR_MSG_REMOTE) | (tl_remote ? WR_MSG_REMOTE : 0));
    m->pins = 0;
    m->published_ms = 0;
    if (ext) {
        struct wr_msg_ext *e = wr_msg_ext(m);
        e->ttl_ms = -1;
        e->store_id = 0;
        e->store_seg = 0;
        e->body_off = 0;
        e->body = shared ? (uint8_t *)(uintptr_t)shared_body : body;
        e->chunk = shared;
        if (shared)
            m->flags |= WR_MSG_SHARED;
    }
    if (props_len)
        memcpy((uint8_t *)wr_msg_props(m), props, props_len);
    return m;
}

struct wr_msg *wr_msg_new_loose(const void *props, uint32_t props_len, uint64_t body_len,
                                unsigned flags)
{
    return block_alloc(props, props_len, body_len, flags & ~WR_MSG_SHARED, NULL, NULL);
}

void wr_msg_free_loose(struct wr_msg *m)
{
    if (!m)
        return;
    if (m->flags & WR_MSG_SHARED)
        wr_chunk_unref(wr_msg_ext(m)->chunk);
    else if (wr_msg_ext(m))
        free(wr_msg_ext(m)->body);
    free(m);
}

int wr_msg_adopt(struct wr_msgs *pool, struct wr_msg *m, struct wr_str exchange,
                 struct wr_str routing_key)
{
    if (exchange.len > 255 || routing_key.len > 255 ||
        !(m->rkey = rkey_get(pool, exchange, routing_key)))
        return WR_ENOMEM;
    pool->bytes += wr_msg_mem(m);
    pool->count++;
    return 0;
}

static struct wr_msg *msg_alloc(struct wr_msgs *pool, struct wr_str exchange,
                                struct wr_str routing_key, const void *props, uint32_t props_len,
                                uint64_t body_len, unsigned flags, struct wr_chunk *shared,
                                const uint8_t *shared_body)
{
    struct wr_msg *m;

    if (exchange.len > 255 || routing_key.len > 255)
        return NULL;
    m = block_alloc(props, props_len, body_len, flags, shared, shared_body);
    if (!m)
        return NULL;
    if (shared)
        shared->refs++;
    if (wr_msg_adopt(pool, m, exchange, routing_key) < 0) {
        wr_msg_free_loose(m);
        return NULL;
    }
    return m;
}

struct wr_msg *wr_msg_new(struct wr_msgs *pool, struct wr_str exchange, struct wr_str routing_key,
                          const void *props, uint32_t props_len, uint64_t body_len, unsigned flags)
{
    /* (only wr_msg_new_shared makes a shared one: a copy has its own body) */
    return msg_alloc(pool, exchange, routing_key, props, props_len, body_len,
                     flags & ~WR_MSG_SHARED, NULL, NULL);
}

struct wr_msg *wr_msg_new_shared(struct wr_msgs *pool, struct wr_str exchange,
                                 struct wr_str routing_key, const void *props, uint32_t props_len,
                                 const uint8_t *body, uint32_t body_len, struct wr_chunk *c)
{
    return msg_alloc(pool, exchange, routing_key, props, props_len, body_len, WR_MSG_EXT, c, body);
}

void wr_msg_free_(struct wr_msg *m)
{
    struct wr_msgs *pool = m->rkey->pool;
    uint64_t mem = wr_msg_mem(m);
    pool->bytes -= mem;
    pool->freed += mem;
    pool->count--;
    rkey_put(m->rkey);
    if ((m->flags & WR_MSG_REMOTE) && pool->release) {
        pool->release(pool->release_ctx, m);
        return;
    }
    wr_msg_free_loose(m); /* what is left is the block */
}

void wr_msg_page_out(struct wr_msg *m)
{
    struct wr_msg_ext *e = wr_msg_ext(m);
    if (!e || !e->body || !e->store_id || m->pins)
        return;
    m->rkey->pool->bytes -= m->body_len;
    m->rkey->pool->freed += m->body_len;
    free(e->body);
    e->body = NULL;
}

struct wr_str wr_msg_headers(const struct wr_msg *m)
{
    struct wr_rd r = wr_rd_init(wr_msg_props(m), m->props_len);
    struct wr_str s, t = WR_STR_NULL;
    uint16_t flags;
    if (wr_rd_u16(&r, &flags) < 0 || !(flags & WR_BASIC_HEADERS_FLAG))
        return t;
    if ((flags & WR_BASIC_CONTENT_TYPE_FLAG) && wr_rd_shortstr(&r, &s) < 0)
        return t;
    if ((flags & WR_BASIC_CONTENT_ENCODING_FLAG) && wr_rd_shortstr(&r, &s) < 0)
        return t;
    if (wr_rd_longstr(&r, &t) < 0)
        return WR_STR_NULL;
    return t;
}

bool wr_msg_user_id(const struct wr_msg *m, struct wr_str *out)
{
    struct wr_basic_props p;
    struct wr_rd r = wr_rd_init(wr_msg_props(m), m->props_len);
    if (m->props_len < 2 || !(wr_load16(wr_msg_props(m)) & WR_BASIC_USER_ID_FLAG))
        return false;
    if (wr_basic_props_decode(&r, &p) < 0 || !(p.flags & WR_BASIC_USER_ID_FLAG))
        return false;
    *out = p.user_id;
    return true;
}

bool wr_msg_message_id(const struct wr_msg *m, struct wr_str *out)
{
    struct wr_basic_props p;
    struct wr_rd r = wr_rd_init(wr_msg_props(m), m->props_len);
    if (m->props_len < 2 || !(wr_load16(wr_msg_props(m)) & WR_BASIC_MESSAGE_ID_FLAG))
        return false;
    if (wr_basic_props_decode(&r, &p) < 0 || !(p.flags & WR_BASIC_MESSAGE_ID_FLAG))
        return false;
    *out = p.message_id;
    return true;
}

struct wr_msg *wr_msg_rewrite(const struct wr_msg *m, const struct wr_basic_props *p)
{
    size_t plen = wr_basic_props_size(p);
    uint8_t *buf = malloc(plen);
    struct wr_msg *nm = NULL;
    struct wr_wb w;

    if (!buf)
        return NULL;
    w = wr_wb_init(buf, plen);
    if (wr_basic_props_encode(&w, p) == 0)
        nm = wr_msg_new(m->rkey->pool, wr_msg_exchange(m), wr_msg_routing_key(m), buf,
                        (uint32_t)plen, m->body_len, m->flags);
    free(buf);
    if (!nm)
        return NULL;
    {
        uint8_t *src = wr_msg_body((struct wr_msg *)m);
        if (!src) {
            wr_msg_unref(nm);
            return NULL;
        }
        memcpy(wr_msg_body(nm), src, (size_t)m->body_len);
    }
    nm->published_ms = m->published_ms;
    nm->priority = m->priority;
    if (wr_msg_ext(m) && wr_msg_ext(nm)) {
        /* Same TTL and journal identity; the new message keeps its own body. */
        uint8_t *b = wr_msg_ext(nm)->body;
        *wr_msg_ext(nm) = *wr_msg_ext(m);
        wr_msg_ext(nm)->body = b;
        wr_msg_ext(nm)->chunk = NULL;
    }
    return nm;
}

struct wr_msg *wr_msg_with_ext(const struct wr_msg *m)
{
    struct wr_msg *nm =
        wr_msg_new(m->rkey->pool, wr_msg_exchange(m), wr_msg_routing_key(m), wr_msg_props(m),
                   m->props_len, m->body_len, m->flags | WR_MSG_EXT);
    if (!nm)
        return NULL;
    /* Without an extension the body is inline, so always in memory. */
    memcpy(wr_msg_body(nm), wr_msg_props(m) + m->props_len, (size_t)m->body_len);
    nm->published_ms = m->published_ms;
    nm->priority = m->priority;
    return nm;
}

uint8_t *wr_props_set_headers(struct wr_basic_props *p, const struct wr_table *h)
{
    size_t hlen = wr_table_encoded_size(h);
    uint8_t *buf;
    struct wr_wb w;

    if (!hlen || !(buf = malloc(hlen)))
        return NULL;
    w = wr_wb_init(buf, hlen);
    wr_table_encode(&w, h);
    if (w.err) {
        free(buf);
        return NULL;
    }
    /* wr_table_encode wrote the length prefix; the property is the body. */
    p->headers = (struct wr_str){(const char *)buf + 4, (uint32_t)(hlen - 4)};
    p->flags |= WR_BASIC_HEADERS_FLAG;
    return buf;
}

struct wr_msg *wr_msg_with_header(const struct wr_msg *m, const char *key, const struct wr_fv *val)
{
    struct wr_basic_props p;
    struct wr_table h = {0};
    struct wr_rd r = wr_rd_init(wr_msg_props(m), m->props_len);
    struct wr_msg *nm = NULL;
    uint8_t *hbuf = NULL;
    bool set = false;

    memset(&p, 0, sizeof(p));
    if (m->props_len && wr_basic_props_decode(&r, &p) < 0)
        return NULL;
    if ((p.flags & WR_BASIC_HEADERS_FLAG) && wr_table_decode(p.headers, &h) < 0)
        return NULL;
    if (!val)
        wr_table_remove(&h, key);
    for (uint32_t i = 0; val && i < h.n; i++) {
        if (wr_str_eqc(h.e[i].key, key)) {
            wr_fv_free(&h.e[i].val);
            h.e[i].val = *val; /* replaced in place: the entry keeps its position */
            set = true;
        }
    }
    if (val && !set && wr_table_add(&h, wr_str_c(key), *val) < 0)
        goto out;
    if ((hbuf = wr_props_set_headers(&p, &h)))
        nm = wr_msg_rewrite(m, &p);
out:
    free(hbuf);
    wr_table_free(&h);
    return nm;
}

struct wr_msg *wr_msg_with_int_header(const struct wr_msg *m, const char *key, int64_t val)
{
    struct wr_fv v;
    v.type = 'l';
    v.v.l = val;
    return wr_msg_with_header(m, key, &v);
}

struct wr_msg *wr_msg_without_header(const struct wr_msg *m, const char *key)
{
    return wr_msg_with_header(m, key, NULL);
}

bool wr_msg_parse_expiration(struct wr_str s, int64_t *ms)
{
    int64_t v = 0;
    uint32_t i = 0;
    if (s.len && s.ptr[0] == '+')
        i = 1;
    if (i == s.len)
        return false;
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (s.ptr[i] - '0');
    }
    *ms = v;
    return true;
}

const struct wr_prop_string wr_prop_strings[WR_PROP_STRINGS] = {
    {"content_type", WR_BASIC_CONTENT_TYPE_FLAG, offsetof(struct wr_basic_props, content_type)},
    {"content_encoding", WR_BASIC_CONTENT_ENCODING_FLAG,
     offsetof(struct wr_basic_props, content_encoding)},
    {"correlation_id", WR_BASIC_CORRELATION_ID_FLAG,
     offsetof(struct wr_basic_props, correlation_id)},
    {"reply_to", WR_BASIC_REPLY_TO_FLAG, offsetof(struct wr_basic_props, reply_to)},
    {"expiration", WR_BASIC_EXPIRATION_FLAG, offsetof(struct wr_basic_props, expiration)},
    {"message_id", WR_BASIC_MESSAGE_ID_FLAG, offsetof(struct wr_basic_props, message_id)},
    {"type", WR_BASIC_TYPE_FLAG, offsetof(struct wr_basic_props, type)},
    {"user_id", WR_BASIC_USER_ID_FLAG, offsetof(struct wr_basic_props, user_id)},
    {"app_id", WR_BASIC_APP_ID_FLAG, offsetof(struct wr_basic_props, app_id)},
    {"cluster_id", WR_BASIC_CLUSTER_ID_FLAG, offsetof(struct wr_basic_props, cluster_id)},
};
