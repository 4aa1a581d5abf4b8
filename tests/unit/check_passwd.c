/*
 * check_passwd.c - unit tests for RabbitMQ-compatible password hashes.
 *
 * The SHA-256 vectors are real RabbitMQ hashes: made on a local RabbitMQ
 * 3.10.8 (Debian) node with `rabbitmqctl add_user NAME PASSWORD`, then read
 * from `rabbitmqctl export_definitions`. The SHA-512 and MD5 vectors were
 * computed with python3's hashlib from fixed salts
 * (base64(salt + H(salt + password.encode()))), then imported into that
 * node with `rabbitmqctl import_definitions` (hashing_algorithm
 * rabbit_password_hashing_sha512 / _md5): it let each user log in with
 * that password and refused a wrong one, so the shape is RabbitMQ's too.
 * The stored hashes come from files an operator edits, so malformed ones
 * get the bad-input treatment: every truncation, garbage, wrong lengths.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "core/err.h"

struct vector {
    enum wr_passwd_algo algo;
    const char *password;
    const char *hash;
};

static const struct vector vectors[] = {
    /* RabbitMQ 3.10.8: add_user alice 's3cret' */
    {WR_PASSWD_SHA256, "s3cret", "NEKVLoo4G7DyVuv5iB3vIsRhkQlmIfJQGReEs9hzRGAGNuUs"},
    /* RabbitMQ 3.10.8: add_user utf8user 'pässwörd✓' (UTF-8, 14 bytes) */
    {WR_PASSWD_SHA256, "p\xc3\xa4ssw\xc3\xb6rd\xe2\x9c\x93",
     "Da+QZyc5p1PNfPcTonV8bP64STpm8tdhn1pyotK6S/5lBUML"},
    /* RabbitMQ 3.10.8: add_user oneChar 'x' */
    {WR_PASSWD_SHA256, "x", "nWPYDTU7/M5YP+ZKxrc/0bSpV6Y5FCslcBzn0QFocIhvMHdY"},
    /* RabbitMQ 3.10.8: the default user guest/guest */
    {WR_PASSWD_SHA256, "guest", "fQyvXRKi92ZH2gcdosH7gUyoDcnleK0PWBzzNhj5J+Q4Z9R4"},
    /* hashlib, salt de ad be ef, sha512, "hunter2" */
    {WR_PASSWD_SHA512, "hunter2",
     "3q2+715AdIsQPHh8mCgeDbOYSwxJQA1rp4fur4CiaL755VbfDOkT83JEIARcyl/+mqL6XRe4vOTrDigYzDl47Rqg"
     "Dhg="},
    /* hashlib, salt a5 00 0a ff, sha512, "pässwörd✓" */
    {WR_PASSWD_SHA512, "p\xc3\xa4ssw\xc3\xb6rd\xe2\x9c\x93",
     "pQAK/5rOlPzPVcVTDuIIVrU8x5kk5qOzOnBtH52TGaWdEydZG/zIT8AuWF8VmG8MDSgAlnBBw5Av0YHZqW9TFegn"
     "3/k="},
    /* hashlib, salt 00 01 02 03, md5, "guest" */
    {WR_PASSWD_MD5, "guest", "AAECA6FGmqSYDuL4noWqqe0lZFA="},
    /* hashlib, salt ff ff ff ff, md5, "pässwörd✓" */
    {WR_PASSWD_MD5, "p\xc3\xa4ssw\xc3\xb6rd\xe2\x9c\x93", "//////xfgY3oMYnGRY5ZljiO7xs="},
};
#define NVECTORS (sizeof(vectors) / sizeof(vectors[0]))

static const enum wr_passwd_algo all_algos[] = {WR_PASSWD_SHA256, WR_PASSWD_SHA512,
                                                WR_PASSWD_MD5};

static bool check_c(enum wr_passwd_algo a, const char *hash, const char *pw)
{
    return wr_passwd_check(a, hash, strlen(hash), pw, strlen(pw));
}

START_TEST(algo_names)
{
    static const char *names[] = {"rabbit_password_hashing_sha256",
                                  "rabbit_password_hashing_sha512", "rabbit_password_hashing_md5"};
    enum wr_passwd_algo a;
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(wr_passwd_algo_parse(names[i], strlen(names[i]), &a), 0);
        ck_assert_int_eq(a, all_algos[i]);
        ck_assert_str_eq(wr_passwd_algo_name(a), names[i]);
    }
    ck_assert_int_eq(WR_PASSWD_DEFAULT, WR_PASSWD_SHA256);
    /* unknown names, prefixes, trailing bytes and a NUL inside are refused */
    static const char *bad[] = {"",
                                "rabbit_password_hashing_sha1",
                                "rabbit_password_hashing_sha",
                                "rabbit_password_hashing_sha2566",
                                "RABBIT_PASSWORD_HASHING_SHA256",
                                "sha256"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(wr_passwd_algo_parse(bad[i], strlen(bad[i]), &a), WR_ENOT_FOUND);
    static const char nul[] = "rabbit_password_hashing_sha256\0x";
    ck_assert_int_eq(wr_passwd_algo_parse(nul, sizeof(nul) - 1, &a), WR_ENOT_FOUND);
}
END_TEST

START_TEST(known_vectors)
{
    for (size_t i = 0; i < NVECTORS; i++) {
        const struct vector *v = &vectors[i];
        ck_assert_msg(check_c(v->algo, v->hash, v->password), "vector %zu", i);
        ck_assert_int_eq(wr_passwd_inspect(v->algo, v->hash, strlen(v->hash)), WR_PASSWD_OK);
        /* wrong passwords: another, a prefix, one more byte, empty */
        ck_assert(!check_c(v->algo, v->hash, "wrong"));
        ck_assert(!wr_passwd_check(v->algo, v->hash, strlen(v->hash), v->password,
                                   strlen(v->password) - 1));
        char *longer = malloc(strlen(v->password) + 2);
        strcpy(longer, v->password);
        strcat(longer, "x");
        ck_assert(!check_c(v->algo, v->hash, longer));
        free(longer);
        ck_assert(!check_c(v->algo, v->hash, ""));
        /* the same hash read as another algorithm is the wrong length */
        for (size_t k = 0; k < 3; k++)
            if (all_algos[k] != v->algo) {
                ck_assert(!check_c(all_algos[k], v->hash, v->password));
                ck_assert_int_eq(wr_passwd_inspect(all_algos[k], v->hash, strlen(v->hash)),
                                 WR_PASSWD_BAD_LENGTH);
            }
    }
}
END_TEST

/* Hashing with a vector's own salt reproduces the vector byte for byte. */
START_TEST(salted_reproduces_vectors)
{
    for (size_t i = 0; i < NVECTORS; i++) {
        const struct vector *v = &vectors[i];
        /* the salt is the first 4 bytes: the first 6 base64 chars hold 4.5 */
        static const char *b64 =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint32_t w[6];
        for (int k = 0; k < 6; k++)
            w[k] = (uint32_t)(strchr(b64, v->hash[k]) - b64);
        uint8_t salt[4] = {(uint8_t)(w[0] << 2 | w[1] >> 4), (uint8_t)(w[1] << 4 | w[2] >> 2),
                           (uint8_t)(w[2] << 6 | w[3]), (uint8_t)(w[4] << 2 | w[5] >> 4)};
        char out[WR_PASSWD_B64_MAX];
        ck_assert_int_eq(wr_passwd_hash_salted(v->algo, salt, v->password, strlen(v->password),
                                               out, sizeof(out)),
                         0);
        ck_assert_str_eq(out, v->hash);
    }
}
END_TEST

START_TEST(round_trip)
{
    /* a NUL inside the password is part of it */
    static const char pw_nul[] = "a\0b";
    for (size_t k = 0; k < 3; k++) {
        enum wr_passwd_algo a = all_algos[k];
        char h1[WR_PASSWD_B64_MAX], h2[WR_PASSWD_B64_MAX];
        ck_assert_int_eq(wr_passwd_hash(a, "s3cret", 6, h1, sizeof(h1)), 0);
        ck_assert_int_eq(wr_passwd_inspect(a, h1, strlen(h1)), WR_PASSWD_OK);
        ck_assert(check_c(a, h1, "s3cret"));
        ck_assert(!check_c(a, h1, "s3creT"));
        ck_assert(!check_c(a, h1, ""));
        /* a fresh salt each time */
        ck_assert_int_eq(wr_passwd_hash(a, "s3cret", 6, h2, sizeof(h2)), 0);
        ck_assert_str_ne(h1, h2);
        ck_assert(check_c(a, h2, "s3cret"));
        /* the empty password is a password like any other */
        ck_assert_int_eq(wr_passwd_hash(a, "", 0, h1, sizeof(h1)), 0);
        ck_assert(check_c(a, h1, ""));
        ck_assert(!check_c(a, h1, "x"));
        ck_assert_int_eq(wr_passwd_hash(a, pw_nul, 3, h1, sizeof(h1)), 0);
        ck_assert(wr_passwd_check(a, h1, strlen(h1), pw_nul, 3));
        ck_assert(!wr_passwd_check(a, h1, strlen(h1), pw_nul, 1));
        /* a long password */
        char big[10000];
        memset(big, 'p', sizeof(big));
        ck_assert_int_eq(wr_passwd_hash(a, big, sizeof(big), h1, sizeof(h1)), 0);
        ck_assert(wr_passwd_check(a, h1, strlen(h1), big, sizeof(big)));
        ck_assert(!wr_passwd_check(a, h1, strlen(h1), big, sizeof(big) - 1));
    }
}
END_TEST

START_TEST(output_size)
{
    /* base64 of 4 + 32, 4 + 64, 4 + 16 bytes, and the NUL */
    static const size_t need[] = {48 + 1, 92 + 1, 28 + 1};
    static const uint8_t salt[4] = {1, 2, 3, 4};
    for (size_t k = 0; k < 3; k++) {
        char out[WR_PASSWD_B64_MAX + 8];
        memset(out, 'Z', sizeof(out));
        ck_assert_int_eq(wr_passwd_hash_salted(all_algos[k], salt, "pw", 2, out, need[k] - 1),
                         WR_ENOSPC);
        ck_assert_int_eq(out[0], '\0');
        ck_assert_int_eq(out[need[k] - 1], 'Z'); /* nothing written past outsz */
        ck_assert_int_eq(wr_passwd_hash(all_algos[k], "pw", 2, out, need[k] - 1), WR_ENOSPC);
        ck_assert_int_eq(wr_passwd_hash_salted(all_algos[k], salt, "pw", 2, out, need[k]), 0);
        ck_assert_uint_eq(strlen(out), need[k] - 1);
        ck_assert_uint_le(need[k], WR_PASSWD_B64_MAX);
    }
    char none[1] = {'Z'};
    ck_assert_int_eq(wr_passwd_hash(WR_PASSWD_SHA256, "pw", 2, none, 0), WR_ENOSPC);
    ck_assert_int_eq(none[0], 'Z');
}
END_TEST

START_TEST(empty_hash_never_matches)
{
    for (size_t k = 0; k < 3; k++) {
        ck_assert(!wr_passwd_check(all_algos[k], "", 0, "", 0));
        ck_assert(!wr_passwd_check(all_algos[k], "", 0, "guest", 5));
        ck_assert(!wr_passwd_check(all_algos[k], NULL, 0, "", 0));
        ck_assert_int_eq(wr_passwd_inspect(all_algos[k], "", 0), WR_PASSWD_EMPTY);
    }
}
END_TEST

/* Each malformed hash is given in a buffer of exactly its length, so ASan
 * sees any read past the end. */
static void expect_form(enum wr_passwd_algo a, const char *s, size_t n, enum wr_passwd_form f)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    ck_assert_msg(wr_passwd_inspect(a, b, n) == f, "'%.*s' (%zu bytes): form %d, want %d",
                  (int)n, s, n, (int)wr_passwd_inspect(a, b, n), (int)f);
    /* nothing malformed matches anything, the real password included */
    if (f != WR_PASSWD_OK) {
        ck_assert(!wr_passwd_check(a, b, n, "s3cret", 6));
        ck_assert(!wr_passwd_check(a, b, n, "", 0));
    }
    free(b);
}

START_TEST(malformed_hashes)
{
    const char *good = vectors[0].hash; /* sha256 of "s3cret", 48 chars */
    size_t n = strlen(good);

    /* every truncation: a multiple of 4 decodes (wrong length), others
     * are not base64 at all */
    for (size_t i = 1; i < n; i++)
        expect_form(WR_PASSWD_SHA256, good, i,
                    i % 4 == 0 ? WR_PASSWD_BAD_LENGTH : WR_PASSWD_NOT_BASE64);
    expect_form(WR_PASSWD_SHA256, good, n, WR_PASSWD_OK);

    /* overlong: one more block, and a whole extra hash */
    char buf[512];
    snprintf(buf, sizeof(buf), "%sAAAA", good);
    expect_form(WR_PASSWD_SHA256, buf, strlen(buf), WR_PASSWD_BAD_LENGTH);
    snprintf(buf, sizeof(buf), "%s%s", good, good);
    expect_form(WR_PASSWD_SHA256, buf, strlen(buf), WR_PASSWD_BAD_LENGTH);
    memset(buf, 'A', 400);
    expect_form(WR_PASSWD_SHA512, buf, 400, WR_PASSWD_BAD_LENGTH);

    /* garbage and bad characters at every position */
    expect_form(WR_PASSWD_SHA256, "!!!notb64", 9, WR_PASSWD_NOT_BASE64);
    for (size_t i = 0; i < n; i++) {
        static const char badc[] = {'!', '-', '_', ' ', '\n', '\0', '.', '\x80', '\xff', '='};
        for (size_t c = 0; c < sizeof(badc); c++) {
            memcpy(buf, good, n);
            buf[i] = badc[c];
            /* '=' last is padding: 35 bytes, base64 but the wrong length */
            expect_form(WR_PASSWD_SHA256, buf, n,
                        badc[c] == '=' && i == n - 1 ? WR_PASSWD_BAD_LENGTH
                                                     : WR_PASSWD_NOT_BASE64);
        }
    }
    /* trailing NUL or newline after a good hash */
    memcpy(buf, good, n);
    buf[n] = '\0';
    expect_form(WR_PASSWD_SHA256, buf, n + 1, WR_PASSWD_NOT_BASE64);
    buf[n] = '\n';
    expect_form(WR_PASSWD_SHA256, buf, n + 1, WR_PASSWD_NOT_BASE64);

    /* padding rules: only at the end, at most two */
    const char *md5 = vectors[6].hash; /* 28 chars, ends in one '=' */
    size_t m = strlen(md5);
    expect_form(WR_PASSWD_MD5, md5, m, WR_PASSWD_OK);
    memcpy(buf, md5, m);
    buf[m - 1] = 'A'; /* the pad made a digit: 21 bytes */
    expect_form(WR_PASSWD_MD5, buf, m, WR_PASSWD_BAD_LENGTH);
    memcpy(buf, md5, m);
    buf[m - 2] = '='; /* two pads: 19 bytes */
    expect_form(WR_PASSWD_MD5, buf, m, WR_PASSWD_BAD_LENGTH);
    buf[m - 3] = '='; /* three pads */
    expect_form(WR_PASSWD_MD5, buf, m, WR_PASSWD_NOT_BASE64);
    memcpy(buf, md5, m);
    buf[m - 2] = '=';
    buf[m - 1] = 'A'; /* a pad before a digit */
    expect_form(WR_PASSWD_MD5, buf, m, WR_PASSWD_NOT_BASE64);
    expect_form(WR_PASSWD_MD5, "====", 4, WR_PASSWD_NOT_BASE64);
    expect_form(WR_PASSWD_MD5, "A===", 4, WR_PASSWD_NOT_BASE64);
    expect_form(WR_PASSWD_MD5, "AA==", 4, WR_PASSWD_BAD_LENGTH);
    expect_form(WR_PASSWD_MD5, "=", 1, WR_PASSWD_NOT_BASE64);
    /* a pad in the middle of an otherwise good hash */
    snprintf(buf, sizeof(buf), "AA==%s", md5);
    expect_form(WR_PASSWD_MD5, buf, strlen(buf), WR_PASSWD_NOT_BASE64);
    /* RabbitMQ imports 'AAAAAAAA' (6 bytes) and then refuses every login */
    expect_form(WR_PASSWD_SHA256, "AAAAAAAA", 8, WR_PASSWD_BAD_LENGTH);
}
END_TEST

/* Flipping any bit of the salt or the digest breaks the match. */
START_TEST(tampered_hash)
{
    static const uint8_t salt[4] = {9, 8, 7, 6};
    static const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t k = 0; k < 3; k++) {
        char h[WR_PASSWD_B64_MAX];
        ck_assert_int_eq(wr_passwd_hash_salted(all_algos[k], salt, "pw", 2, h, sizeof(h)), 0);
        size_t n = strlen(h);
        for (size_t i = 0; i < n && h[i] != '='; i++) {
            char t[WR_PASSWD_B64_MAX];
            memcpy(t, h, n + 1);
            /* the last digit before padding carries only some data bits:
             * change its top bit, which always carries data */
            t[i] = b64[(strchr(b64, h[i]) - b64) ^ 32];
            ck_assert_msg(!wr_passwd_check(all_algos[k], t, n, "pw", 2), "algo %zu pos %zu", k,
                          i);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("passwd");
    TCase *t = tcase_create("passwd");
    tcase_add_test(t, algo_names);
    tcase_add_test(t, known_vectors);
    tcase_add_test(t, salted_reproduces_vectors);
    tcase_add_test(t, round_trip);
    tcase_add_test(t, output_size);
    tcase_add_test(t, empty_hash_never_matches);
    tcase_add_test(t, malformed_hashes);
    tcase_add_test(t, tampered_hash);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
