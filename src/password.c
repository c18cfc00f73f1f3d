/* Console passwords: scrypt through OpenSSL's EVP_KDF, N = 2^15, r = 8,
 * p = 1 (32 MiB and some tens of milliseconds per check), a 16-byte random
 * salt per hash, and a constant-time comparison of the derived bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "lockgate/password.h"

#define LOG2_N    15
#define LOG2_NMAX 20
#define R         8
#define P         1
#define SALT_LEN  16
#define DK_LEN    32
#define B64_MAX   64

static int derive(const char *pw, size_t len, const unsigned char *salt, size_t salt_len,
                  unsigned log2n, unsigned char out[DK_LEN])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (ctx == NULL) return -1;
    uint64_t n = (uint64_t)1 << log2n;
    uint32_t r = R, p = P;
    uint64_t maxmem = (uint64_t)256 * R * ((uint64_t)1 << LOG2_NMAX); /* 128 r N, doubled */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    int rc = EVP_KDF_derive(ctx, out, DK_LEN, params) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(ctx);
    return rc;
}

/* Base64 of LEN bytes into OUT (B64_MAX), no newlines. */
static void b64(const unsigned char *in, size_t len, char out[B64_MAX])
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Decodes exactly WANT bytes from base64 TEXT (LEN chars). 0 or -1. */
static int unb64(const char *text, size_t len, unsigned char *out, size_t want)
{
    unsigned char buf[B64_MAX];
    if (len == 0 || len % 4 != 0 || len > sizeof(buf) / 3 * 4) return -1;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
    if (n < 0) return -1;
    size_t pad = (text[len - 1] == '=') + (text[len - 2] == '=');
    if ((size_t)n - pad != want) return -1;
    memcpy(out, buf, want);
    return 0;
}

int lg_password_hash(const char *pw, size_t len, char *out)
{
    unsigned char salt[SALT_LEN], dk[DK_LEN];
    char s64[B64_MAX], d64[B64_MAX];
    if (RAND_bytes(salt, sizeof(salt)) != 1) return -1;
    if (derive(pw, len, salt, sizeof(salt), LOG2_N, dk) < 0) return -1;
    b64(salt, sizeof(salt), s64);
    b64(dk, sizeof(dk), d64);
    OPENSSL_cleanse(dk, sizeof(dk));
    snprintf(out, LG_PASSWORD_HASH_MAX, "scrypt$%d$%d$%d$%s$%s", LOG2_N, R, P, s64, d64);
    return 0;
}

/* Parses STORED into its cost, salt and derived bytes. 0 or -1. */
static int parse(const char *stored, unsigned *log2n, unsigned char salt[SALT_LEN],
                 unsigned char dk[DK_LEN])
{
    unsigned n = 0, r = 0, p = 0;
    int used = 0;
    if (strlen(stored) >= LG_PASSWORD_HASH_MAX ||
        sscanf(stored, "scrypt$%2u$%2u$%2u$%n", &n, &r, &p, &used) != 3 || used == 0)
        return -1;
    if (n < LOG2_N || n > LOG2_NMAX || r != R || p != P) return -1;
    const char *s = stored + used;
    const char *dollar = strchr(s, '$');
    if (dollar == NULL) return -1;
    if (unb64(s, (size_t)(dollar - s), salt, SALT_LEN) < 0 ||
        unb64(dollar + 1, strlen(dollar + 1), dk, DK_LEN) < 0)
        return -1;
    *log2n = n;
    return 0;
}

bool lg_password_verify(const char *pw, size_t len, const char *stored)
{
    static const unsigned char dummy_salt[SALT_LEN] = "lockgate-dummy!";
    unsigned char salt[SALT_LEN], want[DK_LEN], got[DK_LEN];
    unsigned log2n = LOG2_N;
    bool real = stored != NULL && parse(stored, &log2n, salt, want) == 0;
    if (!real) {
        memcpy(salt, dummy_salt, SALT_LEN);
        memset(want, 0, sizeof(want));
    }
    bool ok = derive(pw, len, salt, SALT_LEN, log2n, got) == 0 &&
              CRYPTO_memcmp(got, want, DK_LEN) == 0 && real;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}

int lg_password_generate(char *out)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t n = LG_PASSWORD_GEN_LEN - 1, i = 0;
    while (i < n) {
        unsigned char b[32];
        if (RAND_bytes(b, sizeof(b)) != 1) return -1;
        for (size_t j = 0; j < sizeof(b) && i < n; j++)
            if (b[j] < 248) out[i++] = alphabet[b[j] % 62]; /* 248 = 4 * 62: no bias */
        OPENSSL_cleanse(b, sizeof(b));
    }
    out[n] = '\0';
    return 0;
}
