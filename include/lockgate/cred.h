/* Identifiers and credentials (SPEC section 4): generation, format and checksum
 * checks, HMAC-SHA256 verifiers, AES-256-GCM sealing, constant-time compare,
 * and secret files. Pure functions over OpenSSL; nothing here touches Redis. */
#ifndef LG_CRED_H
#define LG_CRED_H

#include <stdbool.h>
#include <stddef.h>

#define LG_ACCOUNT_ID_LEN   25 /* "acct_" + 20 Crockford base32 */
#define LG_FACILITY_ID_LEN  24 /* "fac_" + 20 Crockford base32 */
#define LG_KEY_LEN          33 /* "lk_" + 24 base62 + 6 base62 CRC32 */
#define LG_SECRET_LEN       49 /* "ls_" + 40 base62 + 6 base62 CRC32 */
#define LG_VERIFIER_LEN     64 /* hex of HMAC-SHA256 */
#define LG_SECRET_KEY_BYTES 32

/* Writes PREFIX + 20 random Crockford base32 chars + NUL into OUT (OUTLEN bytes).
 * Returns 0, or -1 when OUT is too small or randomness fails. */
int lg_id_new(const char *prefix, char *out, size_t outlen);
/* True when S (LEN bytes) is PREFIX followed by exactly 20 Crockford base32 chars. */
bool lg_id_valid(const char *prefix, const char *s, size_t len);
/* True when S is a safe identifier: [A-Za-z0-9_-]{1,64} (routes, imported ids). */
bool lg_ident_valid(const char *s, size_t len);

/* New API key / secret into OUT (LG_KEY_LEN+1 / LG_SECRET_LEN+1 bytes). 0 or -1. */
int lg_cred_key_new(char *out);
int lg_cred_secret_new(char *out);
/* Form and CRC32 checksum checks; no I/O. */
bool lg_cred_key_valid(const char *s, size_t len);
bool lg_cred_secret_valid(const char *s, size_t len);

/* Verifier = lowercase hex HMAC-SHA256(pepper, key_id ":" secret) into
 * OUT (LG_VERIFIER_LEN+1 bytes). 0 or -1. */
int lg_cred_verifier(const unsigned char *pepper, size_t pepper_len, const char *key_id,
                     const char *secret, size_t secret_len, char *out);
/* Recomputes the verifier and compares it with VERIFIER in constant time. */
bool lg_cred_verify(const unsigned char *pepper, size_t pepper_len, const char *key_id,
                    const char *secret, size_t secret_len, const char *verifier);

/* Seals SECRET with AES-256-GCM under MASTER (32 bytes), KEY_ID as associated
 * data. Returns base64(nonce 12 | ciphertext | tag 16), malloc'd: the caller
 * frees it. NULL on failure. */
char *lg_cred_seal(const unsigned char *master, const char *key_id, const char *secret);
/* Opens what lg_cred_seal made. Returns the secret, malloc'd (caller frees),
 * or NULL when SEALED was tampered with, belongs to another key id, or is malformed. */
char *lg_cred_unseal(const unsigned char *master, const char *key_id, const char *sealed);

/* Constant-time equality; different lengths are unequal (length is not secret). */
bool lg_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Reads the whole secret file PATH into OUT (at most CAP bytes), *OUTLEN set.
 * A missing file is first created with CREATE_LEN fresh random bytes, mode 0600.
 * When TEXT is true the created content is printable (hex) and surrounding
 * whitespace is stripped on read (token files). Returns 0 or -1 with ERR. */
int lg_secret_file_load(const char *path, size_t create_len, bool text, unsigned char *out,
                        size_t cap, size_t *outlen, char *err, size_t errlen);

#endif
