/*
 * http.c - the blocking HTTP/1.1 client of http.h. The CLI is not on an
 * event loop, so this is plain sockets: connect (SO_SNDTIMEO bounds it),
 * write the request, read until the parser says the response is whole.
 * A kept-alive connection that the server closed while idle is noticed on
 * the next request (nothing at all comes back) and the request is sent
 * once more on a fresh connection.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/version.h"
#include "ctl/http.h"

#define IO_TIMEOUT_S 60
#define READ_CHUNK (64 * 1024)

/* ---- the response parser ---- */

static const char *find_crlf(const char *p, const char *end)
{
    for (; end - p >= 2; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

static const char *find_head_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(p + i, "\r\n\r\n", 4))
            return p + i + 4;
    return NULL;
}

/* A decimal length, at most WR_CTL_HTTP_BODY_MAX; -1 otherwise. */
static long long parse_len(const char *p, const char *e)
{
    long long v = 0;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (p == e)
        return -1;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > (long long)WR_CTL_HTTP_BODY_MAX)
            return -1;
    }
    return v;
}

static bool header_is(const char *name, size_t nlen, const char *want)
{
    return strlen(want) == nlen && !strncasecmp(name, want, nlen);
}

static bool value_has(const char *v, const char *e, const char *token)
{
    size_t t = strlen(token);
    for (; e - v >= (long)t; v++)
        if (!strncasecmp(v, token, t))
            return true;
    return false;
}

struct head {
    int status;
    long long clen; /* -1: none */
    bool chunked, close;
};

/* The status line and header fields of [p, e) (e: after the blank line). */
static int parse_head(const char *p, const char *e, struct head *h, const char **why)
{
    const char *eol = find_crlf(p, e);
    memset(h, 0, sizeof(*h));
    h->clen = -1;
    if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
        (eol - p > 12 && p[12] != ' ')) {
        *why = "not an HTTP/1.x status line";
        return -1;
    }
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    h->close = p[7] == '0';
    for (p = eol + 2; p < e - 2; p = eol + 2) {
        eol = find_crlf(p, e);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) {
            *why = "malformed header line";
            return -1;
        }
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1;
        if (header_is(p, nlen, "content-length")) {
            long long n = parse_len(v, eol);
            if (n < 0 || (h->clen >= 0 && h->clen != n)) {
                *why = "bad Content-Length";
                return -1;
            }
            h->clen = n;
        } else if (header_is(p, nlen, "transfer-encoding")) {
            h->chunked = value_has(v, eol, "chunked");
            if (!h->chunked) {
                *why = "a transfer coding other than chunked";
                return -1;
            }
        } else if (header_is(p, nlen, "connection")) {
            if (value_has(v, eol, "close"))
                h->close = true;
        }
    }
    return 0;
}

/* Decodes a chunked body from [p, end). Returns the bytes taken, 0 when
 * incomplete, -1 on malformed input. */
static long dechunk(const char *p, const char *end, struct wr_ctl_buf *out, const char **why)
{
    const char *start = p;
    for (;;) {
        const char *eol = find_crlf(p, end);
        unsigned long long n = 0;
        const char *q = p;
        if (!eol)
            return end - p > 1024 ? (*why = "chunk size line too long", -1) : 0;
        for (; q < eol && *q && strchr("0123456789abcdefABCDEF", *q); q++) {
            int d = *q <= '9' ? *q - '0' : (*q | 0x20) - 'a' + 10;
            n = n * 16 + (unsigned)d;
            if (n > WR_CTL_HTTP_BODY_MAX - out->len) {
                *why = "response body too large";
                return -1;
            }
        }
        if (q == p || (q < eol && *q != ';' && *q != ' ' && *q != '\t')) {
            *why = "bad chunk size";
            return -1;
        }
        p = eol + 2;
        if (n == 0) { /* trailer fields, then a blank line */
            for (;;) {
                eol = find_crlf(p, end);
                if (!eol)
                    return 0;
                if (eol == p)
                    return eol + 2 - start;
                p = eol + 2;
            }
        }
        if ((unsigned long long)(end - p) < n + 2)
            return 0;
        if (p[n] != '\r' || p[n + 1] != '\n') {
            *why = "chunk not followed by CRLF";
            return -1;
        }
        wr_ctl_buf_add(out, p, (size_t)n);
        p += n + 2;
    }
}

long wr_ctl_http_parse(const char *buf, size_t len, bool eof, struct wr_ctl_reply *r,
                       const char **why)
{
    size_t off = 0;
    struct head h;

    memset(r, 0, sizeof(*r));
    for (;;) {
        const char *p = buf + off, *end = buf + len;
        const char *he = find_head_end(p, len - off);
        if (!he) {
            if (len - off > WR_CTL_HTTP_HEAD_MAX) {
                *why = "response header too large";
                return -1;
            }
            if (eof) {
                *why = off == len ? "connection closed without a response"
                                  : "connection closed in the middle of the response's header";
                return -1;
            }
            return 0;
        }
        if (he - p > WR_CTL_HTTP_HEAD_MAX) {
            *why = "response header too large";
            return -1;
        }
        if (parse_head(p, he, &h, why) < 0)
            return -1;
        if (h.status < 200) { /* 100 Continue and the like */
            off = (size_t)(he - buf);
            continue;
        }
        struct wr_ctl_buf body = {0};
        long taken;
        if (h.status == 204 || h.status == 304) {
            taken = he - buf;
        } else if (h.chunked) {
            long n = dechunk(he, end, &body, why);
            if (n <= 0) {
                wr_ctl_buf_free(&body);
                if (n == 0 && eof) {
                    *why = "connection closed in the middle of the response's body";
                    return -1;
                }
                return n;
            }
            taken = (he - buf) + n;
        } else if (h.clen >= 0) {
            if ((unsigned long long)(end - he) < (unsigned long long)h.clen) {
                if (eof) {
                    *why = "connection closed in the middle of the response's body";
                    return -1;
                }
                return 0;
            }
            wr_ctl_buf_add(&body, he, (size_t)h.clen);
            taken = (he - buf) + (long)h.clen;
        } else {
            if (!eof)
                return (size_t)(end - he) > WR_CTL_HTTP_BODY_MAX
                           ? (*why = "response body too large", -1)
                           : 0;
            wr_ctl_buf_add(&body, he, (size_t)(end - he));
            h.close = true;
            taken = (long)len;
        }
        r->status = h.status;
        r->close = h.close;
        r->len = body.len;
        r->body = wr_ctl_buf_take(&body);
        return taken;
    }
}

void wr_ctl_reply_free(struct wr_ctl_reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ---- the connection ---- */

struct wr_ctl_http {
    struct wr_ctl_url url;
    char *ca;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    unsigned served; /* responses read on this connection */
};

struct wr_ctl_http *wr_ctl_http_new(const struct wr_ctl_url *u, const char *tls_ca)
{
    struct wr_ctl_http *h = wr_ctl_xmalloc(sizeof(*h));
    memset(h, 0, sizeof(*h));
    h->url = *u;
    h->ca = tls_ca ? wr_ctl_xstrdup(tls_ca) : NULL;
    h->fd = -1;
    return h;
}

static void disconnect(struct wr_ctl_http *h)
{
    if (h->ssl) {
        SSL_free(h->ssl);
        h->ssl = NULL;
    }
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->served = 0;
}

void wr_ctl_http_free(struct wr_ctl_http *h)
{
    if (!h)
        return;
    disconnect(h);
    if (h->ctx)
        SSL_CTX_free(h->ctx);
    free(h->ca);
    free(h);
}

static void tls_error(struct wr_ctl_buf *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char text[256];
    if (e) {
        ERR_error_string_n(e, text, sizeof(text));
        wr_ctl_buf_printf(err, "%s: %s", what, text);
    } else {
        wr_ctl_buf_printf(err, "%s: %s", what, errno ? strerror(errno) : "failed");
    }
    ERR_clear_error();
}

static int tls_start(struct wr_ctl_http *h, struct wr_ctl_buf *err)
{
    if (!h->ctx) {
        if (!(h->ctx = SSL_CTX_new(TLS_client_method()))) {
            tls_error(err, "TLS");
            return -1;
        }
        SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, NULL);
        if (h->ca ? SSL_CTX_load_verify_locations(h->ctx, h->ca, NULL) != 1
                  : SSL_CTX_set_default_verify_paths(h->ctx) != 1) {
            tls_error(err, h->ca ? h->ca : "the system's CA certificates");
            return -1;
        }
    }
    if (!(h->ssl = SSL_new(h->ctx)) || SSL_set_fd(h->ssl, h->fd) != 1) {
        tls_error(err, "TLS");
        return -1;
    }
    if (SSL_set1_host(h->ssl, h->url.host) != 1 ||
        (!strchr(h->url.host, ':') && SSL_set_tlsext_host_name(h->ssl, h->url.host) != 1)) {
        tls_error(err, "TLS");
        return -1;
    }
    errno = 0;
    if (SSL_connect(h->ssl) != 1) {
        long v = SSL_get_verify_result(h->ssl);
        if (v != X509_V_OK)
            wr_ctl_buf_printf(err, "TLS handshake: certificate verification failed: %s",
                              X509_verify_cert_error_string(v));
        else
            tls_error(err, "TLS handshake");
        return -1;
    }
    return 0;
}

static int connect_to(struct wr_ctl_http *h, struct wr_ctl_buf *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    char port[8];
    int rc, e = 0, one = 1;

    snprintf(port, sizeof(port), "%u", h->url.port);
    if ((rc = getaddrinfo(h->url.host, port, &hints, &res)) != 0) {
        wr_ctl_buf_printf(err, "%s", gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        /* SO_SNDTIMEO bounds connect() too, on Linux. */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            h->fd = fd;
            break;
        }
        e = errno == EINPROGRESS ? ETIMEDOUT : errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (h->fd < 0) {
        wr_ctl_buf_printf(err, "%s", strerror(e ? e : ECONNREFUSED));
        return -1;
    }
    if (h->url.tls && tls_start(h, err) < 0) {
        disconnect(h);
        return -1;
    }
    return 0;
}

static int send_all(struct wr_ctl_http *h, const char *p, size_t n, struct wr_ctl_buf *err)
{
    while (n) {
        long w;
        if (h->ssl) {
            int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
            w = SSL_write(h->ssl, p, chunk);
            if (w <= 0) {
                tls_error(err, "sending the request");
                return -1;
            }
        } else {
            w = send(h->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                wr_ctl_buf_printf(err, "sending the request: %s",
                                  errno == EAGAIN ? "timed out" : strerror(errno));
                return -1;
            }
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what is there (blocking for the first bytes). Returns bytes read,
 * 0 at the end of the connection, -1 on error. */
static long recv_some(struct wr_ctl_http *h, char *p, size_t n, struct wr_ctl_buf *err)
{
    for (;;) {
        if (h->ssl) {
            int r = SSL_read(h->ssl, p, (int)n);
            if (r > 0)
                return r;
            int e = SSL_get_error(h->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
                return 0;
            tls_error(err, "reading the response");
            return -1;
        }
        long r = recv(h->fd, p, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        wr_ctl_buf_printf(err, "reading the response: %s",
                          errno == EAGAIN ? "timed out" : strerror(errno));
        return -1;
    }
}

static bool more_ready(struct wr_ctl_http *h)
{
    struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
    return (h->ssl && SSL_pending(h->ssl) > 0) || poll(&pfd, 1, 0) > 0;
}

static void format_request(struct wr_ctl_http *h, const struct wr_ctl_req *rq,
                           struct wr_ctl_buf *out)
{
    bool v6 = strchr(h->url.host, ':') != NULL;
    wr_ctl_buf_printf(out, "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%u\r\n", rq->method, h->url.prefix,
                      rq->target, v6 ? "[" : "", h->url.host, v6 ? "]" : "", h->url.port);
    wr_ctl_buf_printf(out, "User-Agent: warrenctl/%s\r\nAccept: application/json\r\n",
                      WR_VERSION);
    if (rq->auth) {
        size_t n = strlen(rq->auth);
        unsigned char *b64 = wr_ctl_xmalloc(4 * ((n + 2) / 3) + 1);
        EVP_EncodeBlock(b64, (const unsigned char *)rq->auth, (int)n);
        wr_ctl_buf_printf(out, "Authorization: Basic %s\r\n", (char *)b64);
        free(b64);
    }
    if (rq->headers)
        wr_ctl_buf_adds(out, rq->headers);
    if (rq->body)
        wr_ctl_buf_printf(out, "Content-Type: %s\r\n",
                          rq->content_type ? rq->content_type : "application/json");
    if (rq->body || !strcmp(rq->method, "PUT") || !strcmp(rq->method, "POST"))
        wr_ctl_buf_printf(out, "Content-Length: %zu\r\n", rq->body ? rq->body_len : 0);
    wr_ctl_buf_adds(out, "\r\n");
}

#define PROGRESS_STEP (1u << 20)

/* The body in pieces of a MiB, with a progress line (see wr_ctl_req). */
static int send_body_progress(struct wr_ctl_http *h, const char *p, size_t n,
                              struct wr_ctl_buf *err)
{
    const double mib = 1024.0 * 1024.0;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < PROGRESS_STEP ? n - done : PROGRESS_STEP;
        if (send_all(h, p + done, k, err) < 0) {
            fputs("\r\033[K", stderr);
            return -1;
        }
        done += k;
        fprintf(stderr, "\rsent %.1f of %.1f MiB", (double)done / mib, (double)n / mib);
        fflush(stderr);
    }
    fputs(", waiting for the broker", stderr);
    fflush(stderr);
    return 0;
}

/* 1: nothing came back on a reused connection (send again), 0, -1. */
static int exchange(struct wr_ctl_http *h, const struct wr_ctl_buf *req, const struct wr_ctl_req *rq,
                    struct wr_ctl_reply *r, struct wr_ctl_buf *err)
{
    struct wr_ctl_buf in = {0};
    bool reused = h->served > 0;
    size_t err_len = err->len; /* restored when the request is sent again */
    const char *why = NULL;
    int rc = -1;

    bool shown = rq->progress && rq->body_len >= PROGRESS_STEP && isatty(STDERR_FILENO);
    if (send_all(h, req->p, req->len, err) < 0 ||
        (rq->body && rq->body_len &&
         (shown ? send_body_progress(h, rq->body, rq->body_len, err)
                : send_all(h, rq->body, rq->body_len, err)) < 0)) {
        if (reused)
            rc = 1;
        goto out;
    }
    for (;;) {
        char chunk[READ_CHUNK];
        long n;
        bool eof = false;
        do {
            n = recv_some(h, chunk, sizeof(chunk), err);
            if (n < 0 && reused && in.len == 0) {
                rc = 1;
                goto out;
            }
            if (n < 0)
                goto out;
            if (n == 0) {
                eof = true;
                break;
            }
            wr_ctl_buf_add(&in, chunk, (size_t)n);
        } while (more_ready(h) && in.len < WR_CTL_HTTP_BODY_MAX);
        if (eof && in.len == 0 && reused) {
            rc = 1;
            goto out;
        }
        long taken = wr_ctl_http_parse(in.p ? in.p : "", in.len, eof, r, &why);
        if (taken < 0) {
            wr_ctl_buf_printf(err, "bad response: %s", why);
            goto out;
        }
        if (taken > 0) {
            h->served++;
            if (r->close || eof || (size_t)taken != in.len)
                disconnect(h);
            rc = 0;
            goto out;
        }
    }
out:
    if (shown) { /* the progress line goes */
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    wr_ctl_buf_free(&in);
    if (rc != 0)
        disconnect(h);
    if (rc == 1 && err->p) {
        err->len = err_len;
        err->p[err_len] = '\0';
    }
    return rc;
}

int wr_ctl_http_do(struct wr_ctl_http *h, const struct wr_ctl_req *rq, struct wr_ctl_reply *r,
                   struct wr_ctl_buf *err)
{
    struct wr_ctl_buf req = {0};
    int rc = -1;

    memset(r, 0, sizeof(*r));
    format_request(h, rq, &req);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (h->fd < 0 && connect_to(h, err) < 0)
            break;
        rc = exchange(h, &req, rq, r, err);
        if (rc != 1)
            break;
        rc = -1;
    }
    wr_ctl_buf_free(&req);
    return rc;
}
