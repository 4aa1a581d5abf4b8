/*
 * check_tls.c - unit tests of what net/tls.c tells about a session: a
 * negotiated cipher suite's parts in the names RabbitMQ's management API
 * shows (ssl_key_exchange, ssl_cipher, ssl_hash), for TLS 1.3 and 1.2
 * suites of each kind a client meets.
 */
#include "config.h"

#include <check.h>
#include <openssl/ssl.h>
#include <string.h>

#include "net/tls.h"

static SSL_CTX *ctx;
static SSL *ssl;

static void setup(void)
{
    ck_assert_ptr_nonnull(ctx = SSL_CTX_new(TLS_method()));
    ck_assert_ptr_nonnull(ssl = SSL_new(ctx));
}

static void teardown(void)
{
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

/* The suite with the two-byte IANA id (hi, lo) names kx, cipher, hash. */
static void expect(unsigned hi, unsigned lo, const char *kx, const char *cipher, const char *hash)
{
    const unsigned char id[2] = {(unsigned char)hi, (unsigned char)lo};
    const SSL_CIPHER *c = SSL_CIPHER_find(ssl, id);
    struct wr_tls_suite s;
    ck_assert_msg(c != NULL, "no suite %02x%02x", hi, lo);
    s = wr_tls_suite_names(c);
    ck_assert_msg(s.key_exchange && s.cipher && s.hash, "%s", SSL_CIPHER_get_name(c));
    ck_assert_str_eq(s.key_exchange, kx);
    ck_assert_str_eq(s.cipher, cipher);
    ck_assert_str_eq(s.hash, hash);
}

START_TEST(test_suite_names)
{
    struct wr_tls_suite none;
    /* TLS 1.3: the suite names no key exchange (Erlang: any). */
    expect(0x13, 0x01, "any", "aes_128_gcm", "aead");
    expect(0x13, 0x02, "any", "aes_256_gcm", "aead");
    expect(0x13, 0x03, "any", "chacha20_poly1305", "aead");
    /* TLS 1.2, as RabbitMQ 3.10 showed them for the same suites. */
    expect(0xc0, 0x30, "ecdhe_rsa", "aes_256_gcm", "aead");   /* ECDHE-RSA-AES256-GCM-SHA384 */
    expect(0xc0, 0x27, "ecdhe_rsa", "aes_128_cbc", "sha256"); /* ECDHE-RSA-AES128-SHA256 */
    expect(0xc0, 0x14, "ecdhe_rsa", "aes_256_cbc", "sha");    /* ECDHE-RSA-AES256-SHA */
    expect(0xcc, 0xa8, "ecdhe_rsa", "chacha20_poly1305", "aead");
    /* Other key exchanges and MACs. */
    expect(0xc0, 0x2b, "ecdhe_ecdsa", "aes_128_gcm", "aead");
    expect(0xc0, 0x24, "ecdhe_ecdsa", "aes_256_cbc", "sha384");
    expect(0x00, 0x9f, "dhe_rsa", "aes_256_gcm", "aead");
    expect(0x00, 0x9c, "rsa", "aes_128_gcm", "aead");
    /* No session, no suite. */
    none = wr_tls_suite_names(NULL);
    ck_assert_ptr_null(none.key_exchange);
    ck_assert_ptr_null(none.cipher);
    ck_assert_ptr_null(none.hash);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("suite");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_suite_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
