/*
 * passwd.h - RabbitMQ-compatible password hashes.
 *
 * RabbitMQ stores a password as base64(salt || H(salt || password)), with a
 * 4-byte random salt and H one of three digests, named in definitions files
 * by "hashing_algorithm": rabbit_password_hashing_sha256 (the default since
 * 3.6), rabbit_password_hashing_sha512 and rabbit_password_hashing_md5 (the
 * 3.5 era; still accepted on import). The password is hashed as the bytes
 * the client sent (UTF-8 in practice), with no normalisation. A stored hash
 * of "" means the user has no password: nothing matches it, not even "".
 * This module knows nothing of users; the user table keeps the algorithm
 * and the base64 text, exactly as a definitions file has them, so export
 * writes back what import read.
 *
 * Every function takes explicit lengths: passwords come from SASL responses
 * and hashes from JSON, and either may hold a NUL byte. Checks compare the
 * digest in constant time (CRYPTO_memcmp); decoding rejects anything that is
 * not canonical-alphabet, padded base64 ("=" only at the end, length a
 * multiple of 4; no whitespace) without reading past `len`.
 *
 * What RabbitMQ 3.10 does with odd hashes on import (checked against a local
 * node): text that is not base64 fails the import (`{not_base64, ...}`);
 * base64 of the wrong length, or "", is imported and no password matches.
 * wr_passwd_inspect() tells the importer which case it has.
 */
#ifndef WR_AUTH_PASSWD_H
#define WR_AUTH_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wr_passwd_algo {
    WR_PASSWD_SHA256, /* rabbit_password_hashing_sha256, RabbitMQ's default */
    WR_PASSWD_SHA512, /* rabbit_password_hashing_sha512 */
    WR_PASSWD_MD5,    /* rabbit_password_hashing_md5 */
};
#define WR_PASSWD_DEFAULT WR_PASSWD_SHA256

#define WR_PASSWD_SALT_LEN 4
/* Buffer size that holds any hash this module writes, with its NUL:
 * base64 of 4 + 64 bytes is 92 characters. */
#define WR_PASSWD_B64_MAX 93

/* RabbitMQ's name ("rabbit_password_hashing_sha256"...) to an algorithm.
 * The whole `len` bytes must match a name. Returns 0, or WR_ENOT_FOUND for
 * any other name (RabbitMQ has no others built in). */
int wr_passwd_algo_parse(const char *name, size_t len, enum wr_passwd_algo *algo);
/* RabbitMQ's name of an algorithm, for export. */
const char *wr_passwd_algo_name(enum wr_passwd_algo algo);

/* Hash a password with a fresh random salt (OpenSSL RAND_bytes) and write
 * the base64 text, NUL-terminated, to out. Returns 0, WR_ENOSPC when outsz
 * is too small (WR_PASSWD_B64_MAX always suffices), or WR_EINTERNAL when
 * the random generator or the digest fails (out is then ""). */
int wr_passwd_hash(enum wr_passwd_algo algo, const char *pw, size_t len, char *out, size_t outsz);
/* The same with a given salt: for tests and for reproducing a known hash. */
int wr_passwd_hash_salted(enum wr_passwd_algo algo, const uint8_t salt[WR_PASSWD_SALT_LEN],
                          const char *pw, size_t len, char *out, size_t outsz);

/* Does the password match the stored hash? False for an empty hash, for
 * text that is not base64, and for base64 that does not decode to exactly
 * 4 + the digest's length bytes; never reads outside its arguments. */
bool wr_passwd_check(enum wr_passwd_algo algo, const char *hash_b64, size_t hash_len,
                     const char *pw, size_t len);

/* What a stored hash is, so the definitions importer can act as RabbitMQ
 * does: refuse WR_PASSWD_NOT_BASE64, keep the others (only WR_PASSWD_OK
 * can ever match a password). */
enum wr_passwd_form {
    WR_PASSWD_OK,         /* base64 of salt + digest, the right length */
    WR_PASSWD_EMPTY,      /* "": no password */
    WR_PASSWD_BAD_LENGTH, /* base64, but not 4 + digest length bytes */
    WR_PASSWD_NOT_BASE64,
};
enum wr_passwd_form wr_passwd_inspect(enum wr_passwd_algo algo, const char *hash_b64,
                                      size_t hash_len);

#endif
