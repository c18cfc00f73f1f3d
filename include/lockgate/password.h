/* Console users' passwords: scrypt hashes (OpenSSL EVP_KDF "SCRYPT") with a
 * per-user random salt, stored as one text field, and their constant-time
 * check; strong generated passwords. Pure functions, no I/O. */
#ifndef LG_PASSWORD_H
#define LG_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* "scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>" + NUL fits in this. */
#define LG_PASSWORD_HASH_MAX 160
/* Passwords are 8 to 1024 bytes. */
#define LG_PASSWORD_MIN 8
#define LG_PASSWORD_MAX 1024
/* A generated password: 24 base62 characters (about 143 bits) + NUL. */
#define LG_PASSWORD_GEN_LEN 25

/* Hashes PW (LEN bytes) with a fresh salt into OUT (LG_PASSWORD_HASH_MAX
 * bytes). 0, or -1 when randomness or the KDF fails. */
int lg_password_hash(const char *pw, size_t len, char *out);
/* True when PW hashes to STORED (a lg_password_hash text); the comparison is
 * constant-time. A malformed STORED, or parameters outside what this build
 * makes (N 2^15..2^20, r 8, p 1), is false. A NULL STORED still does the
 * work of one check on a fixed dummy hash (so that an unknown user takes as
 * long as a known one) and is false. */
bool lg_password_verify(const char *pw, size_t len, const char *stored);
/* A fresh random password into OUT (LG_PASSWORD_GEN_LEN bytes). 0 or -1. */
int lg_password_generate(char *out);

#endif
