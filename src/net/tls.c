/*
 * tls.c - the TLS transport; see tls.h and transport.h.
 *
 * The handshake runs inside the first reads (the client speaks first); a
 * failure ends the connection with one reason, the log line of the
 * caller: "TLS handshake failed: certificate verify failed (unable to get
 * local issuer certificate)". Reads go straight into reserved space of the
 * input buffer; writes take the output buffer a record (16 KiB) at a time,
 * pulled up so that small chunks make full records, and a write that
 * OpenSSL could not finish is retried with the same length, as it
 * requires. Read-ahead is on (fewer syscalls), so OpenSSL may hold bytes
 * the socket will not announce again: has_pending reports them.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/tls.h"
#include "net/tls_ctx.h"

/* Plaintext bytes per SSL_write: one full TLS record. */
#define RECORD_MAX 16384

/* Why an SSL call stopped. A fatal error is described in wr_xport_err, and
 * marks the session so that no close_notify follows it. */
static enum wr_xp_status status_of(struct wr_xport *x, int r, const char *doing)
{
    SSL *ssl = x->tls;
    int err = SSL_get_error(ssl, r);
    char e[128];

    switch (err) {
    case SSL_ERROR_WANT_READ:
        return WR_XP_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return WR_XP_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        if (!x->handshake_done) {
            x->failed = true;
            snprintf(wr_xport_err, sizeof(wr_xport_err),
                     "peer closed the connection during the TLS handshake");
            return WR_XP_ERROR;
        }
        return WR_XP_EOF;
    case SSL_ERROR_SYSCALL:
        x->failed = true;
        if (errno == 0 && !x->handshake_done)
            snprintf(wr_xport_err, sizeof(wr_xport_err),
                     "peer closed the connection during the TLS handshake");
        else if (errno == 0)
            return WR_XP_EOF;
        else
            snprintf(wr_xport_err, sizeof(wr_xport_err), "socket error during TLS %s: %s", doing,
                     strerror(errno));
        ERR_clear_error();
        return WR_XP_ERROR;
    default: {
        long vr = SSL_get_verify_result(ssl);
        x->failed = true;
        wr_tls_error(e, sizeof(e));
        if (!x->handshake_done && vr != X509_V_OK)
            snprintf(wr_xport_err, sizeof(wr_xport_err), "TLS handshake failed: %s (%s)", e,
                     X509_verify_cert_error_string(vr));
        else if (!x->handshake_done)
            snprintf(wr_xport_err, sizeof(wr_xport_err), "TLS handshake failed: %s%s", e,
                     strstr(e, "wrong version") || strstr(e, "http request") ||
                             strstr(e, "packet length")
                         ? " (a client not speaking TLS?)"
                         : "");
        else
            snprintf(wr_xport_err, sizeof(wr_xport_err), "TLS %s failed: %s", doing, e);
        return WR_XP_ERROR;
    }
    }
}

static enum wr_xp_status handshake(struct wr_xport *x)
{
    int r;
    ERR_clear_error();
    r = SSL_do_handshake(x->tls);
    if (r == 1) {
        x->handshake_done = true;
        return WR_XP_OK;
    }
    return status_of(x, r, "handshake");
}

static enum wr_xp_status tls_read(struct wr_xport *x, struct evbuffer *in, size_t max, size_t *got)
{
    struct evbuffer_iovec v[2];
    enum wr_xp_status st = WR_XP_OK;
    size_t want = max, total = 0;
    int nv, i = 0;

    *got = 0;
    if (!x->handshake_done && (st = handshake(x)) != WR_XP_OK)
        return st;
    if ((nv = evbuffer_reserve_space(in, (ev_ssize_t)max, v, 2)) < 1) {
        snprintf(wr_xport_err, sizeof(wr_xport_err), "out of memory reading");
        return WR_XP_ERROR;
    }
    for (int k = 0; k < nv; k++) { /* use exactly `max` of what was reserved */
        if (v[k].iov_len > want)
            v[k].iov_len = want;
        want -= v[k].iov_len;
    }
    size_t filled[2] = {0, 0};
    while (i < nv) {
        size_t n = 0;
        int r;
        if (filled[i] == v[i].iov_len) {
            i++;
            continue;
        }
        ERR_clear_error();
        r = SSL_read_ex(x->tls, (char *)v[i].iov_base + filled[i], v[i].iov_len - filled[i], &n);
        if (r != 1) {
            st = status_of(x, r, "read");
            break;
        }
        filled[i] += n;
        total += n;
    }
    for (int k = 0; k < nv; k++)
        v[k].iov_len = filled[k];
    evbuffer_commit_space(in, v, filled[1] ? 2 : 1);
    *got = total;
    return st;
}

static enum wr_xp_status tls_write(struct wr_xport *x, struct evbuffer *out, size_t *sent)
{
    enum wr_xp_status st;
    size_t len;

    *sent = 0;
    if (!x->handshake_done && (st = handshake(x)) != WR_XP_OK)
        return st;
    while ((len = evbuffer_get_length(out)) > 0) {
        size_t n = x->retry_len ? x->retry_len : (len < RECORD_MAX ? len : RECORD_MAX), w = 0;
        const unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)n);
        int r;
        if (!p) {
            snprintf(wr_xport_err, sizeof(wr_xport_err), "out of memory writing");
            return WR_XP_ERROR;
        }
        ERR_clear_error();
        r = SSL_write_ex(x->tls, p, n, &w);
        if (r == 1) {
            evbuffer_drain(out, w);
            *sent += w;
            x->retry_len = 0;
            continue;
        }
        st = status_of(x, r, "write");
        if (st == WR_XP_WANT_READ || st == WR_XP_WANT_WRITE) {
            x->retry_len = n; /* OpenSSL wants the same write again */
            return st;
        }
        if (st == WR_XP_EOF) {
            snprintf(wr_xport_err, sizeof(wr_xport_err), "peer closed the TLS session");
            st = WR_XP_ERROR;
        }
        return st;
    }
    return WR_XP_OK;
}

static bool tls_has_pending(const struct wr_xport *x)
{
    return SSL_has_pending(x->tls) == 1;
}

static bool tls_shutdown(struct wr_xport *x)
{
    if (x->handshake_done && !x->failed) {
        ERR_clear_error();
        (void)SSL_shutdown(x->tls); /* close_notify, if the socket takes it */
        ERR_clear_error();
    }
    return shutdown(x->fd, SHUT_WR) == 0;
}

static void tls_close(struct wr_xport *x)
{
    SSL_free(x->tls);
    x->tls = NULL;
    evutil_closesocket(x->fd);
    x->fd = -1;
}

static struct x509_st *tls_peer_cert(const struct wr_xport *x)
{
    return x->handshake_done ? SSL_get0_peer_certificate(x->tls) : NULL;
}

static const char *tls_protocol(const struct wr_xport *x)
{
    return x->handshake_done ? SSL_get_version(x->tls) : NULL;
}

static const char *tls_cipher(const struct wr_xport *x)
{
    return x->handshake_done ? SSL_get_cipher_name(x->tls) : NULL;
}

/* Erlang's ssl names (RabbitMQ shows them), by OpenSSL's NIDs. */
struct nid_name {
    int nid;
    const char *name;
};

static const struct nid_name cipher_names[] = {
    {NID_aes_128_gcm, "aes_128_gcm"},
    {NID_aes_256_gcm, "aes_256_gcm"},
    {NID_chacha20_poly1305, "chacha20_poly1305"},
    {NID_aes_128_cbc, "aes_128_cbc"},
    {NID_aes_256_cbc, "aes_256_cbc"},
    {NID_aes_128_ccm, "aes_128_ccm"},
    {NID_aes_256_ccm, "aes_256_ccm"},
    {NID_des_ede3_cbc, "3des_ede_cbc"},
};

static const struct nid_name hash_names[] = {
    {NID_sha1, "sha"}, {NID_sha256, "sha256"}, {NID_sha384, "sha384"}, {NID_md5, "md5"}};

static const char *nid_name(int nid, const struct nid_name *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].nid == nid)
            return t[i].name;
    return OBJ_nid2ln(nid); /* not one RabbitMQ's clients meet: OpenSSL's name */
}

static const char *kx_name(int kx, int auth)
{
    bool rsa = auth == NID_auth_rsa, ecdsa = auth == NID_auth_ecdsa, psk = auth == NID_auth_psk;
    switch (kx) {
    case NID_kx_any:
        return "any"; /* TLS 1.3: the suite names no key exchange */
    case NID_kx_rsa:
        return "rsa";
    case NID_kx_ecdhe:
        return rsa ? "ecdhe_rsa" : ecdsa ? "ecdhe_ecdsa" : psk ? "ecdhe_psk" : "ecdhe";
    case NID_kx_dhe:
        return rsa ? "dhe_rsa" : auth == NID_auth_dss ? "dhe_dss" : psk ? "dhe_psk" : "dhe";
    case NID_kx_psk:
        return "psk";
    case NID_kx_rsa_psk:
        return "rsa_psk";
    default:
        return OBJ_nid2ln(kx);
    }
}

struct wr_tls_suite wr_tls_suite_names(const struct ssl_cipher_st *c)
{
    struct wr_tls_suite s = {NULL, NULL, NULL};
    if (!c)
        return s;
    s.key_exchange = kx_name(SSL_CIPHER_get_kx_nid(c), SSL_CIPHER_get_auth_nid(c));
    s.cipher = nid_name(SSL_CIPHER_get_cipher_nid(c), cipher_names,
                        sizeof(cipher_names) / sizeof(cipher_names[0]));
    s.hash = SSL_CIPHER_is_aead(c) ? "aead"
                                   : nid_name(SSL_CIPHER_get_digest_nid(c), hash_names,
                                              sizeof(hash_names) / sizeof(hash_names[0]));
    return s;
}

static struct wr_tls_suite tls_suite(const struct wr_xport *x)
{
    return wr_tls_suite_names(x->handshake_done ? SSL_get_current_cipher(x->tls) : NULL);
}

const struct wr_xport_ops wr_xport_tls = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .has_pending = tls_has_pending,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .peer_cert = tls_peer_cert,
    .protocol = tls_protocol,
    .cipher = tls_cipher,
    .suite = tls_suite,
};

static int tls_init(struct wr_xport *x, int fd, struct ssl_ctx_st *ctx, const char *servername)
{
    SSL *ssl;
    char e[128];

    memset(x, 0, sizeof(*x));
    x->ops = &wr_xport_tls;
    x->fd = fd;
    ERR_clear_error();
    if (!(ssl = SSL_new(ctx)) || SSL_set_fd(ssl, fd) != 1) {
        snprintf(wr_xport_err, sizeof(wr_xport_err), "cannot start a TLS session: %s",
                 wr_tls_error(e, sizeof(e)));
        SSL_free(ssl);
        return -1;
    }
    if (servername) {
        if (servername[0])
            SSL_set_tlsext_host_name(ssl, servername);
        SSL_set_connect_state(ssl);
    } else {
        SSL_set_accept_state(ssl);
    }
    x->tls = ssl;
    return 0;
}

int wr_tls_xport_init(struct wr_xport *x, int fd, struct ssl_ctx_st *ctx)
{
    return tls_init(x, fd, ctx, NULL);
}

int wr_tls_xport_connect(struct wr_xport *x, int fd, struct ssl_ctx_st *ctx, const char *servername)
{
    return tls_init(x, fd, ctx, servername ? servername : "");
}
