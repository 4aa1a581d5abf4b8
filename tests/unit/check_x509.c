/*
 * check_x509.c - unit tests of auth/x509name.c: certificate subjects in
 * RabbitMQ's distinguished-name form (order, multi-valued RDNs, short
 * names and OIDs, every escape, UTF-8 from other string types), common
 * names, and the bounds (names that do not fit, to the byte); validity
 * periods as RabbitMQ's management API writes them.
 */
#include <check.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <string.h>
#include <time.h>

#include "auth/x509name.h"
#include "core/err.h"

/* A name from (field, value, new_rdn) triples, the first RDN first. */
struct ent {
    const char *field;
    const char *value;
    int len;   /* -1: strlen */
    int type;  /* MBSTRING_UTF8 unless set */
    bool same; /* part of the previous RDN */
};

static X509_NAME *make_name(const struct ent *e, size_t n)
{
    X509_NAME *name = X509_NAME_new();
    ck_assert_ptr_nonnull(name);
    for (size_t i = 0; i < n; i++) {
        int ok = X509_NAME_add_entry_by_txt(name, e[i].field, e[i].type ? e[i].type : MBSTRING_UTF8,
                                            (const unsigned char *)e[i].value, e[i].len, -1,
                                            e[i].same ? -1 : 0);
        ck_assert_msg(ok == 1, "cannot add %s", e[i].field);
    }
    return name;
}

static void expect(const struct ent *e, size_t n, const char *want)
{
    X509_NAME *name = make_name(e, n);
    char out[512];
    ck_assert_int_eq(wr_x509_name_format(name, out, sizeof out), 0);
    ck_assert_str_eq(out, want);
    X509_NAME_free(name);
}

#define EXPECT(want, ...)                                                                          \
    do {                                                                                           \
        const struct ent e_[] = {__VA_ARGS__};                                                     \
        expect(e_, sizeof e_ / sizeof e_[0], want);                                                \
    } while (0)

START_TEST(test_order_and_names)
{
    /* The last RDN first, as RabbitMQ (and RFC 4514) write it. */
    EXPECT("CN=tls-client,OU=TLS\\, tests,O=Warren Test,C=GB", {"C", "GB", -1, 0, false},
           {"O", "Warren Test", -1, 0, false}, {"OU", "TLS, tests", -1, 0, false},
           {"CN", "tls-client", -1, 0, false});
    /* RabbitMQ's short names, and an OID for the rest. */
    EXPECT("UID=u,STREET=s,EMAILADDRESS=a@b.c,DC=example,PSEUDONYM=p,SERIALNUMBER=42,TITLE=t,"
           "GENERATIONQUALIFIER=III,INITIALS=JS,GIVENNAME=John,SN=Smith,ST=Kent,L=Leeds",
           {"L", "Leeds", -1, 0, false}, {"ST", "Kent", -1, 0, false},
           {"SN", "Smith", -1, 0, false}, {"GN", "John", -1, 0, false},
           {"initials", "JS", -1, 0, false}, {"generationQualifier", "III", -1, 0, false},
           {"title", "t", -1, 0, false}, {"serialNumber", "42", -1, 0, false},
           {"pseudonym", "p", -1, 0, false}, {"DC", "example", -1, 0, false},
           {"emailAddress", "a@b.c", -1, 0, false}, {"street", "s", -1, 0, false},
           {"UID", "u", -1, 0, false});
    EXPECT("1.2.3.4=v,CN=x", {"CN", "x", -1, 0, false}, {"1.2.3.4", "v", -1, 0, false});
    {
        /* Not a string: its bytes in hex, RFC 4514's "#" form. */
        const struct ent e[] = {{"2.5.4.45", "\x03\x01", 2, V_ASN1_BIT_STRING, false}};
        X509_NAME *name = make_name(e, 1);
        char out[64];
        ck_assert_int_eq(wr_x509_name_format(name, out, sizeof out), 0);
        ck_assert_msg(strncmp(out, "2.5.4.45=#", 10) == 0 && strlen(out) > 10, "%s", out);
        X509_NAME_free(name);
    }
    /* A multi-valued RDN keeps its values in order, joined by "+". */
    EXPECT("O=x,CN=a+UID=b,C=GB", {"C", "GB", -1, 0, false}, {"CN", "a", -1, 0, false},
           {"UID", "b", -1, 0, true}, {"O", "x", -1, 0, false});
    EXPECT("", );
}
END_TEST

START_TEST(test_escapes)
{
    EXPECT("CN=\\ lead", {"CN", " lead", -1, 0, false});
    EXPECT("CN=\\#hash", {"CN", "#hash", -1, 0, false});
    EXPECT("CN=mid#ok", {"CN", "mid#ok", -1, 0, false});
    EXPECT("CN=trail\\ ", {"CN", "trail ", -1, 0, false});
    EXPECT("CN=\\ ", {"CN", " ", -1, 0, false});
    EXPECT("CN=\\ \\ ", {"CN", "  ", -1, 0, false});
    EXPECT("CN=a\\\"b\\+c\\,d\\;e\\<f\\>g\\\\h=i", {"CN", "a\"b+c,d;e<f>g\\h=i", -1, 0, false});
    EXPECT("CN=ctl\\01\\1F\\7E\\7F", {"CN", "ctl\x01\x1f~\x7f", -1, 0, false});
    EXPECT("CN=nul\\00x", {"CN", "nul\0x", 5, 0, false});
    /* UTF-8 bytes are written as escapes, as RabbitMQ does. */
    EXPECT("CN=caf\\C3\\A9", {"CN", "caf\xc3\xa9", -1, 0, false});
    /* A BMPString is turned into UTF-8 first. */
    EXPECT("CN=ab\\C3\\A9", {"CN", "\0a\0b\0\xe9", 6, MBSTRING_BMP, false});
}
END_TEST

START_TEST(test_bounds)
{
    const struct ent e[] = {{"C", "GB", -1, 0, false}, {"CN", "abc", -1, 0, false}};
    X509_NAME *name = make_name(e, 2);
    char out[32];
    size_t want = strlen("CN=abc,C=GB");
    ck_assert_int_eq(wr_x509_name_format(name, out, want + 1), 0);
    ck_assert_str_eq(out, "CN=abc,C=GB");
    for (size_t cap = 0; cap <= want; cap++) {
        memset(out, 'x', sizeof out);
        ck_assert_int_eq(wr_x509_name_format(name, out, cap), WR_ENOSPC);
        if (cap)
            ck_assert_int_eq(out[0], '\0');
        ck_assert_int_eq(out[cap], 'x'); /* nothing past cap */
    }
    X509_NAME_free(name);
}
END_TEST

static X509 *cert_with(const struct ent *e, size_t n)
{
    X509 *x = X509_new();
    X509_NAME *name = make_name(e, n);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(X509_set_subject_name(x, name), 1);
    X509_NAME_free(name);
    return x;
}

START_TEST(test_login_name)
{
    const struct ent two[] = {{"C", "GB", -1, 0, false},
                              {"CN", "first", -1, 0, false},
                              {"OU", "u, v", -1, 0, false},
                              {"CN", "sec ond", -1, 0, false}};
    const struct ent none[] = {{"O", "org", -1, 0, false}};
    const struct ent nul[] = {{"CN", "\0a\0\0", 4, MBSTRING_BMP, false}};
    char out[64];
    X509 *x = cert_with(two, 4);
    ck_assert_int_eq(wr_x509_login_name(x, true, out, sizeof out), 0);
    ck_assert_str_eq(out, "first,sec ond"); /* in order, not escaped */
    ck_assert_int_eq(wr_x509_login_name(x, false, out, sizeof out), 0);
    ck_assert_str_eq(out, "CN=sec ond,OU=u\\, v,CN=first,C=GB");
    ck_assert_int_eq(wr_x509_login_name(x, true, out, strlen("first,sec ond")), WR_ENOSPC);
    ck_assert_int_eq(wr_x509_login_name(x, true, out, strlen("first,sec ond") + 1), 0);
    X509_free(x);
    x = cert_with(none, 1);
    ck_assert_int_eq(wr_x509_login_name(x, true, out, sizeof out), WR_ENOT_FOUND);
    ck_assert_int_eq(wr_x509_login_name(x, false, out, sizeof out), 0);
    ck_assert_str_eq(out, "O=org");
    X509_free(x);
    x = cert_with(nul, 1);
    ck_assert_int_eq(wr_x509_login_name(x, true, out, sizeof out), WR_ESYNTAX);
    X509_free(x);
    /* A certificate without a subject at all. */
    x = X509_new();
    ck_assert_int_eq(wr_x509_login_name(x, true, out, sizeof out), WR_ENOT_FOUND);
    ck_assert_int_eq(wr_x509_login_name(x, false, out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    X509_free(x);
}
END_TEST

/* A certificate whose validity runs from `from` to `to` (seconds since the
 * epoch). */
static X509 *cert_valid(time_t from, time_t to)
{
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notBefore(x), from));
    ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x), to));
    return x;
}

START_TEST(test_validity)
{
    /* RabbitMQ's peer_cert_validity: ISO 8601, UTC, " - " between. */
    X509 *x = cert_valid(1796618342, 1796791142);
    char out[64];
    const char *want = "2026-12-07T04:39:02Z - 2026-12-09T04:39:02Z";
    ck_assert_int_eq(wr_x509_validity_format(x, out, sizeof out), 0);
    ck_assert_str_eq(out, want);
    /* To the byte: room for the NUL or not. */
    ck_assert_int_eq(wr_x509_validity_format(x, out, strlen(want) + 1), 0);
    ck_assert_int_eq(wr_x509_validity_format(x, out, strlen(want)), WR_ENOSPC);
    ck_assert_str_eq(out, "");
    X509_free(x);
    /* GeneralizedTime past 2049, and before 1970's end of UTCTime. */
    x = cert_valid(0, 4102444800); /* 2100-01-01 */
    ck_assert_int_eq(wr_x509_validity_format(x, out, sizeof out), 0);
    ck_assert_str_eq(out, "1970-01-01T00:00:00Z - 2100-01-01T00:00:00Z");
    /* A time OpenSSL cannot read. */
    ck_assert_int_eq(ASN1_STRING_set(X509_getm_notAfter(x), "garbage", 7), 1);
    ck_assert_int_eq(wr_x509_validity_format(x, out, sizeof out), WR_ESYNTAX);
    X509_free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("x509");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, test_order_and_names);
    tcase_add_test(tc, test_escapes);
    tcase_add_test(tc, test_bounds);
    tcase_add_test(tc, test_login_name);
    tcase_add_test(tc, test_validity);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
