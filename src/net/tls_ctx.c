/*
 * tls_ctx.c - server contexts from TLS options, and their reload; see
 * tls_ctx.h. Each failure names the setting and the file, since it is
 * what an operator sees when warrend refuses to start or keeps its old
 * certificate after SIGHUP.
 */
#include "config.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "core/log.h"
#include "net/tls_ctx.h"

const char *wr_tls_error(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_error(); /* the first: the cause, not "PEM lib" */
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    if (r)
        snprintf(buf, cap, "%s", r);
    else if (e && ERR_SYSTEM_ERROR(e))
        snprintf(buf, cap, "%s", strerror(ERR_GET_REASON(e)));
    else if (e)
        snprintf(buf, cap, "OpenSSL error %lx", e);
    else
        snprintf(buf, cap, "unknown error");
    ERR_clear_error();
    return buf;
}

/* A file we are about to give OpenSSL must be readable: its own message
 * for a missing file is "system lib". */
static bool readable(const char *path, const char *prefix, const char *key, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        return true;
    }
    snprintf(why, cap, "%s.%s %s: %s", prefix, key, path, strerror(errno));
    return false;
}

static int password_cb(char *buf, int size, int rwflag, void *userdata)
{
    const char *pw = userdata;
    size_t n = strlen(pw);
    (void)rwflag;
    if (size <= 0 || n >= (size_t)size)
        return 0;
    memcpy(buf, pw, n);
    return (int)n;
}

static bool load_keypair(SSL_CTX *ctx, const struct wr_conf_tls *t, const char *prefix, char *why,
                         size_t cap)
{
    char e[160];
    bool ok = false;

    if (!readable(t->certfile, prefix, "certfile", why, cap) ||
        !readable(t->keyfile, prefix, "keyfile", why, cap))
        return false;
    if (SSL_CTX_use_certificate_chain_file(ctx, t->certfile) != 1) {
        snprintf(why, cap, "%s.certfile %s: cannot load the certificate: %s", prefix, t->certfile,
                 wr_tls_error(e, sizeof(e)));
        return false;
    }
    /* The password is needed only while the key is read. */
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)t->password);
    if (SSL_CTX_use_PrivateKey_file(ctx, t->keyfile, SSL_FILETYPE_PEM) != 1) {
        wr_tls_error(e, sizeof(e));
        if (strstr(e, "mismatch"))
            snprintf(why, cap, "%s.keyfile %s is not the key of %s.certfile %s", prefix, t->keyfile,
                     prefix, t->certfile);
        else if (strstr(e, "bad decrypt") || strstr(e, "bad password") || strstr(e, "decrypt"))
            snprintf(why, cap, "%s.keyfile %s: cannot decrypt the key: %s", prefix, t->keyfile,
                     t->password[0] ? "wrong password" : "encrypted, and no password set");
        else
            snprintf(why, cap, "%s.keyfile %s: cannot load the private key: %s", prefix, t->keyfile,
                     e);
    } else if (SSL_CTX_check_private_key(ctx) != 1)
        snprintf(why, cap, "%s.keyfile %s does not match %s.certfile %s: %s", prefix, t->keyfile,
                 prefix, t->certfile, wr_tls_error(e, sizeof(e)));
    else
        ok = true;
    SSL_CTX_set_default_passwd_cb(ctx, NULL);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    return ok;
}

static bool load_cas(SSL_CTX *ctx, const struct wr_conf_tls *t, const char *prefix, char *why,
                     size_t cap)
{
    STACK_OF(X509_NAME) * names;
    char e[160];

    if (!t->cacertfile[0])
        return true;
    if (!readable(t->cacertfile, prefix, "cacertfile", why, cap))
        return false;
    if (SSL_CTX_load_verify_locations(ctx, t->cacertfile, NULL) != 1) {
        snprintf(why, cap, "%s.cacertfile %s: cannot load the CA certificates: %s", prefix,
                 t->cacertfile, wr_tls_error(e, sizeof(e)));
        return false;
    }
    /* The CAs a client certificate may come from, sent in the request. */
    if ((names = SSL_load_client_CA_file(t->cacertfile)) != NULL)
        SSL_CTX_set_client_CA_list(ctx, names);
    ERR_clear_error();
    return true;
}

/* ssl_options.ciphers.N: TLS 1.3 suites are named TLS_*, the others are
 * TLS 1.2 cipher names; each is checked on its own so that a misspelt one
 * is named (OpenSSL skips unknown names in a list). A version without a
 * name given keeps OpenSSL's defaults. */
static bool set_ciphers(SSL_CTX *ctx, const struct wr_conf_tls *t, const char *prefix, char *why,
                        size_t cap)
{
    char v12[4096] = "", v13[4096] = "";
    size_t n12 = 0, n13 = 0;

    for (uint32_t i = 0; i < t->ciphers.n; i++) {
        const char *name = t->ciphers.item[i].value;
        bool is13 = strncmp(name, "TLS_", 4) == 0;
        int ok = is13 ? SSL_CTX_set_ciphersuites(ctx, name) : SSL_CTX_set_cipher_list(ctx, name);
        char *list = is13 ? v13 : v12;
        size_t *n = is13 ? &n13 : &n12;
        int w;
        ERR_clear_error();
        if (ok != 1) {
            snprintf(why, cap, "%s.ciphers.%s: OpenSSL does not know the cipher suite '%s'", prefix,
                     t->ciphers.item[i].name, name);
            return false;
        }
        w = snprintf(list + *n, sizeof(v12) - *n, "%s%s", *n ? ":" : "", name);
        if (w < 0 || (size_t)w >= sizeof(v12) - *n) {
            snprintf(why, cap, "%s.ciphers: too many cipher suites", prefix);
            return false;
        }
        *n += (size_t)w;
    }
    /* Put back the defaults the checks replaced, then set the lists. */
    if (SSL_CTX_set_cipher_list(ctx, n12 ? v12 : OSSL_default_cipher_list()) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, n13 ? v13 : OSSL_default_ciphersuites()) != 1) {
        char e[160];
        snprintf(why, cap, "%s.ciphers: %s", prefix, wr_tls_error(e, sizeof(e)));
        return false;
    }
    return true;
}

SSL_CTX *wr_tls_ctx_new(const struct wr_conf_tls *t, const char *prefix, char *why, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int lo = TLS1_3_VERSION, hi = TLS1_2_VERSION;
    char e[160];

    if (!ctx) {
        snprintf(why, cap, "%s: cannot create a TLS context: %s", prefix,
                 wr_tls_error(e, sizeof(e)));
        return NULL;
    }
    for (uint32_t i = 0; i < t->versions.n; i++) {
        int v = strcmp(t->versions.item[i].value, "tlsv1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (!t->versions.n) {
        lo = TLS1_2_VERSION;
        hi = TLS1_3_VERSION;
    }
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 (t->honor_cipher_order ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    /* Partial writes, and a retried write may come from a moved buffer
     * (the output evbuffer is pulled up again); buffers of idle
     * connections are given back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Sessions resume (tickets, and the cache) also when clients are verified. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"warren", 6);
    if (!load_keypair(ctx, t, prefix, why, cap) || !load_cas(ctx, t, prefix, why, cap) ||
        !set_ciphers(ctx, t, prefix, why, cap)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (strcmp(t->verify, "verify_peer") == 0) {
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE |
                               (t->fail_if_no_peer_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
        SSL_CTX_set_verify_depth(ctx, (int)t->depth);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

/* One line about the certificate now in use: whom it names and until when. */
static void log_cert(const struct wr_tls_slot *slot, const char *verb)
{
    X509 *x = SSL_CTX_get0_certificate(slot->ctx);
    char subject[256] = "?", until[64] = "?";
    const ASN1_TIME *na;
    struct tm tm;

    if (!x)
        return;
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    na = X509_get0_notAfter(x);
    if (na && ASN1_TIME_to_tm(na, &tm) == 1)
        strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (na && X509_cmp_current_time(na) < 0)
        wr_log(WR_LOG_WARNING, "%s certificate %s %s has EXPIRED (%s): clients will refuse it",
               slot->what, verb, subject, until);
    else
        wr_log(WR_LOG_INFO, "%s certificate %s: %s, valid until %s", slot->what, verb, subject,
               until);
}

int wr_tls_slot_open(struct wr_tls_slot *slot, const struct wr_conf_tls *opts, const char *prefix,
                     const char *what, char *why, size_t cap)
{
    memset(slot, 0, sizeof(*slot));
    slot->opts = opts;
    slot->prefix = prefix;
    slot->what = what;
    wr_list_init(&slot->node);
    if (!(slot->ctx = wr_tls_ctx_new(opts, prefix, why, cap)))
        return -1;
    log_cert(slot, "loaded");
    return 0;
}

int wr_tls_slot_reload(struct wr_tls_slot *slot)
{
    char why[512];
    SSL_CTX *ctx = wr_tls_ctx_new(slot->opts, slot->prefix, why, sizeof(why));

    if (!ctx) {
        wr_log(WR_LOG_ERROR, "%s: keeping the certificate in use: %s", slot->what, why);
        return -1;
    }
    /* Connections already open hold their own reference to the old one. */
    SSL_CTX_free(slot->ctx);
    slot->ctx = ctx;
    log_cert(slot, "reloaded");
    return 0;
}

void wr_tls_slot_close(struct wr_tls_slot *slot)
{
    wr_list_del(&slot->node);
    SSL_CTX_free(slot->ctx);
    slot->ctx = NULL;
}
