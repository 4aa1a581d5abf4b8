/*
 * passwd.c - RabbitMQ-compatible password hashes; see passwd.h.
 *
 * Base64 is done here rather than with EVP_EncodeBlock/EVP_DecodeBlock:
 * DecodeBlock keeps the padding's zero bytes in its output length and skips
 * leading whitespace, so we would have to re-parse the input anyway to know
 * the true length and to refuse what RabbitMQ refuses.
 */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "auth/passwd.h"
#include "core/err.h"

#define DIGEST_MAX 64 /* SHA-512 */
#define RAW_MAX (WR_PASSWD_SALT_LEN + DIGEST_MAX)

static const struct {
    const char *name;
    enum wr_passwd_algo algo;
} algo_names[] = {
    {"rabbit_password_hashing_sha256", WR_PASSWD_SHA256},
    {"rabbit_password_hashing_sha512", WR_PASSWD_SHA512},
    {"rabbit_password_hashing_md5", WR_PASSWD_MD5},
};

int wr_passwd_algo_parse(const char *name, size_t len, enum wr_passwd_algo *algo)
{
    for (size_t i = 0; i < sizeof(algo_names) / sizeof(algo_names[0]); i++) {
        if (strlen(algo_names[i].name) == len && memcmp(algo_names[i].name, name, len) == 0) {
            *algo = algo_names[i].algo;
            return 0;
        }
    }
    return WR_ENOT_FOUND;
}

const char *wr_passwd_algo_name(enum wr_passwd_algo algo)
{
    for (size_t i = 0; i < sizeof(algo_names) / sizeof(algo_names[0]); i++)
        if (algo_names[i].algo == algo)
            return algo_names[i].name;
    return NULL;
}

static const EVP_MD *algo_md(enum wr_passwd_algo algo)
{
    switch (algo) {
    case WR_PASSWD_SHA256:
        return EVP_sha256();
    case WR_PASSWD_SHA512:
        return EVP_sha512();
    case WR_PASSWD_MD5:
        return EVP_md5();
    }
    return NULL;
}

static size_t algo_digest_len(enum wr_passwd_algo algo)
{
    const EVP_MD *md = algo_md(algo);
    return md ? (size_t)EVP_MD_get_size(md) : 0;
}

/* H(salt || pw) into out (DIGEST_MAX bytes). Returns the digest length or
 * 0 when OpenSSL fails. */
static size_t digest(enum wr_passwd_algo algo, const uint8_t *salt, const char *pw, size_t len,
                     uint8_t *out)
{
    const EVP_MD *md = algo_md(algo);
    EVP_MD_CTX *ctx;
    unsigned int n = 0;
    int ok;

    if (!md || (ctx = EVP_MD_CTX_new()) == NULL)
        return 0;
    ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
         EVP_DigestUpdate(ctx, salt, WR_PASSWD_SALT_LEN) == 1 &&
         (len == 0 || EVP_DigestUpdate(ctx, pw, len) == 1) &&
         EVP_DigestFinal_ex(ctx, out, &n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? n : 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encode n bytes; out must hold 4 * ceil(n / 3) + 1. */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode padded base64. Writes at most cap bytes to out but validates all
 * of the input; returns the decoded length (which may exceed cap: the
 * caller then knows the length is wrong) or -1 when it is not base64. */
static long b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0;

    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        const unsigned char *q = (const unsigned char *)in + i;
        bool last = i + 4 == len;
        int pad = last ? (q[3] == '=') + (q[2] == '=' && q[3] == '=') : 0;
        int v[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4 - pad; k++)
            if ((v[k] = b64_value(q[k])) < 0)
                return -1;
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        for (int k = 0; k < 3 - pad; k++, o++)
            if (o < cap)
                out[o] = b[k];
    }
    return (long)o;
}

int wr_passwd_hash_salted(enum wr_passwd_algo algo, const uint8_t salt[WR_PASSWD_SALT_LEN],
                          const char *pw, size_t len, char *out, size_t outsz)
{
    uint8_t raw[RAW_MAX];
    size_t dlen = algo_digest_len(algo);
    size_t need = 4 * ((WR_PASSWD_SALT_LEN + dlen + 2) / 3) + 1;

    if (outsz > 0)
        out[0] = '\0';
    if (dlen == 0 || dlen > DIGEST_MAX)
        return WR_EINTERNAL;
    if (outsz < need)
        return WR_ENOSPC;
    memcpy(raw, salt, WR_PASSWD_SALT_LEN);
    if (digest(algo, salt, pw, len, raw + WR_PASSWD_SALT_LEN) != dlen)
        return WR_EINTERNAL;
    b64_encode(raw, WR_PASSWD_SALT_LEN + dlen, out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int wr_passwd_hash(enum wr_passwd_algo algo, const char *pw, size_t len, char *out, size_t outsz)
{
    uint8_t salt[WR_PASSWD_SALT_LEN];

    if (outsz > 0)
        out[0] = '\0';
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return WR_EINTERNAL;
    return wr_passwd_hash_salted(algo, salt, pw, len, out, outsz);
}

enum wr_passwd_form wr_passwd_inspect(enum wr_passwd_algo algo, const char *hash_b64,
                                      size_t hash_len)
{
    uint8_t raw[RAW_MAX];
    long n;

    if (hash_len == 0)
        return WR_PASSWD_EMPTY;
    n = b64_decode(hash_b64, hash_len, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    if (n < 0)
        return WR_PASSWD_NOT_BASE64;
    size_t dlen = algo_digest_len(algo);
    return dlen && (size_t)n == WR_PASSWD_SALT_LEN + dlen ? WR_PASSWD_OK : WR_PASSWD_BAD_LENGTH;
}

bool wr_passwd_check(enum wr_passwd_algo algo, const char *hash_b64, size_t hash_len,
                     const char *pw, size_t len)
{
    uint8_t raw[RAW_MAX], d[DIGEST_MAX];
    size_t dlen = algo_digest_len(algo);
    bool ok = false;
    long n;

    if (hash_len == 0 || dlen == 0 || dlen > DIGEST_MAX)
        return false;
    n = b64_decode(hash_b64, hash_len, raw, sizeof(raw));
    if (n >= 0 && (size_t)n == WR_PASSWD_SALT_LEN + dlen &&
        digest(algo, raw, pw, len, d) == dlen)
        ok = CRYPTO_memcmp(d, raw + WR_PASSWD_SALT_LEN, dlen) == 0;
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(d, sizeof(d));
    return ok;
}
