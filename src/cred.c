/* Identifiers and credentials: random ids, API key and secret formats with
 * their CRC32 checksums, HMAC-SHA256 verifiers, AES-256-GCM sealing and the
 * secret files (pepper, master key, admin token). Pure OpenSSL, no Redis. */
#include "lockgate/cred.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <zlib.h>

#define ID_RANDOM_LEN     20
#define KEY_RANDOM_LEN    24
#define SECRET_RANDOM_LEN 40
#define CRC_CHARS         6 /* 62^6 > 2^32 */

#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN   16
/* Sealed values come from our own store, but stay bounded all the same. */
#define SEALED_MAX 8192
/* In text mode surrounding whitespace may come on top of CAP bytes. */
#define TEXT_SLACK 256

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* N chars drawn uniformly from ALPHABET (NALPHA <= 256): bytes at or above the
 * largest multiple of NALPHA are rejected, so the modulo has no bias. */
static int random_chars(const char *alphabet, unsigned nalpha, char *out, size_t n)
{
    unsigned limit = 256 - 256 % nalpha;
    unsigned char buf[64];
    size_t have = 0, pos = sizeof(buf);

    while (have < n) {
        if (pos == sizeof(buf)) {
            if (RAND_bytes(buf, sizeof(buf)) != 1) return -1;
            pos = 0;
        }
        unsigned b = buf[pos++];
        if (b >= limit) continue;
        out[have++] = alphabet[b % nalpha];
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

static bool in_alphabet(const char *alphabet, char c)
{
    return c != '\0' && strchr(alphabet, c) != NULL;
}

int lg_id_new(const char *prefix, char *out, size_t outlen)
{
    size_t plen = strlen(prefix);

    if (outlen < plen + ID_RANDOM_LEN + 1) return -1;
    memcpy(out, prefix, plen);
    if (random_chars(crockford, 32, out + plen, ID_RANDOM_LEN) < 0) return -1;
    out[plen + ID_RANDOM_LEN] = '\0';
    return 0;
}

bool lg_id_valid(const char *prefix, const char *s, size_t len)
{
    size_t plen = strlen(prefix);

    if (s == NULL || len != plen + ID_RANDOM_LEN || memcmp(s, prefix, plen) != 0) return false;
    for (size_t i = plen; i < len; i++)
        if (!in_alphabet(crockford, s[i])) return false;
    return true;
}

bool lg_ident_valid(const char *s, size_t len)
{
    if (s == NULL || len < 1 || len > 64) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isascii(c) && (isalnum(c) || c == '_' || c == '-'))) return false;
    }
    return true;
}

/* CRC32 of the random part as 6 big-endian base62 digits. */
static void crc_chars(const char *random, size_t n, char out[CRC_CHARS])
{
    uint32_t v = (uint32_t)crc32(0L, (const Bytef *)random, (uInt)n);

    for (int i = CRC_CHARS - 1; i >= 0; i--) {
        out[i] = base62[v % 62];
        v /= 62;
    }
}

static int cred_new(const char *prefix, size_t nrandom, char *out)
{
    size_t plen = strlen(prefix);

    memcpy(out, prefix, plen);
    if (random_chars(base62, 62, out + plen, nrandom) < 0) return -1;
    crc_chars(out + plen, nrandom, out + plen + nrandom);
    out[plen + nrandom + CRC_CHARS] = '\0';
    return 0;
}

static bool cred_valid(const char *prefix, size_t nrandom, const char *s, size_t len)
{
    size_t plen = strlen(prefix);
    char crc[CRC_CHARS];

    if (s == NULL || len != plen + nrandom + CRC_CHARS || memcmp(s, prefix, plen) != 0)
        return false;
    /* base62 is exactly the ASCII letters and digits. */
    for (size_t i = plen; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    crc_chars(s + plen, nrandom, crc);
    return memcmp(crc, s + plen + nrandom, CRC_CHARS) == 0;
}

int lg_cred_key_new(char *out) { return cred_new("lk_", KEY_RANDOM_LEN, out); }

int lg_cred_secret_new(char *out) { return cred_new("ls_", SECRET_RANDOM_LEN, out); }

bool lg_cred_key_valid(const char *s, size_t len)
{
    return cred_valid("lk_", KEY_RANDOM_LEN, s, len);
}

bool lg_cred_secret_valid(const char *s, size_t len)
{
    return cred_valid("ls_", SECRET_RANDOM_LEN, s, len);
}

/* Verifiers sit on the authentication hot path. Fetching the MAC and its
 * digest costs more than the HMAC itself, so the algorithm is fetched once and
 * each thread keeps one context with the digest already set; per call only
 * the key is (re)installed. Measured here: HMAC() one-shot ~1.5 us, a fresh
 * EVP_MAC_CTX per call ~1.4 us, the reused per-thread context ~0.6 us. */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *mac_hmac;
static pthread_key_t mac_key;
static bool mac_ready;

static void mac_ctx_free(void *p) { EVP_MAC_CTX_free(p); }

static void mac_init_once(void)
{
    mac_hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (mac_hmac == NULL) return;
    if (pthread_key_create(&mac_key, mac_ctx_free) != 0) {
        EVP_MAC_free(mac_hmac);
        mac_hmac = NULL;
        return;
    }
    mac_ready = true;
}

static EVP_MAC_CTX *mac_thread_ctx(void)
{
    EVP_MAC_CTX *ctx;

    if (pthread_once(&mac_once, mac_init_once) != 0 || !mac_ready) return NULL;
    ctx = pthread_getspecific(mac_key);
    if (ctx != NULL) return ctx;
    ctx = EVP_MAC_CTX_new(mac_hmac);
    if (ctx == NULL) return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(ctx, params) != 1 || pthread_setspecific(mac_key, ctx) != 0) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int verifier_raw(const unsigned char *pepper, size_t pepper_len, const char *key_id,
                        const char *secret, size_t secret_len, unsigned char out[32])
{
    EVP_MAC_CTX *ctx;
    size_t outlen = 0;

    if (pepper == NULL || pepper_len == 0 || key_id == NULL || secret == NULL) return -1;
    ctx = mac_thread_ctx();
    if (ctx == NULL) return -1;
    if (EVP_MAC_init(ctx, pepper, pepper_len, NULL) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)key_id, strlen(key_id)) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)":", 1) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)secret, secret_len) != 1 ||
        EVP_MAC_final(ctx, out, &outlen, 32) != 1 || outlen != 32)
        return -1;
    return 0;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int lg_cred_verifier(const unsigned char *pepper, size_t pepper_len, const char *key_id,
                     const char *secret, size_t secret_len, char *out)
{
    unsigned char mac[32];

    if (verifier_raw(pepper, pepper_len, key_id, secret, secret_len, mac) < 0) return -1;
    hex_encode(mac, sizeof(mac), out);
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

bool lg_cred_verify(const unsigned char *pepper, size_t pepper_len, const char *key_id,
                    const char *secret, size_t secret_len, const char *verifier)
{
    unsigned char mac[32];
    char hex[LG_VERIFIER_LEN + 1];
    bool ok;

    if (verifier == NULL || strnlen(verifier, LG_VERIFIER_LEN + 1) != LG_VERIFIER_LEN) return false;
    if (verifier_raw(pepper, pepper_len, key_id, secret, secret_len, mac) < 0) return false;
    hex_encode(mac, sizeof(mac), hex);
    ok = CRYPTO_memcmp(hex, verifier, LG_VERIFIER_LEN) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(hex, sizeof(hex));
    return ok;
}

/* AES-256-GCM over IN (LEN bytes) into OUT; NONCE is 12 bytes, AAD the key id.
 * Encrypting writes TAG, decrypting checks it. Returns 0 or -1. */
static int gcm_run(bool enc, const unsigned char *master, const unsigned char *nonce,
                   const char *key_id, const unsigned char *in, size_t len, unsigned char *out,
                   unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int aadlen = (int)strlen(key_id), n = 0, fin = 0;
    bool ok = ctx != NULL;

    ok = ok && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(ctx, NULL, NULL, master, nonce, enc) == 1;
    ok = ok && EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)key_id, aadlen) == 1;
    ok = ok && EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1;
    if (!enc) ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, tag) == 1;
    /* For decryption this is where a wrong tag, key, key id or nonce shows. */
    ok = ok && EVP_CipherFinal_ex(ctx, out + n, &fin) == 1;
    ok = ok && (size_t)n + (size_t)fin == len;
    if (enc) ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

char *lg_cred_seal(const unsigned char *master, const char *key_id, const char *secret)
{
    unsigned char *raw;
    char *b64 = NULL;
    size_t slen, rawlen;

    if (master == NULL || key_id == NULL || secret == NULL) return NULL;
    slen = strlen(secret);
    if (slen > SEALED_MAX) return NULL;
    rawlen = GCM_NONCE_LEN + slen + GCM_TAG_LEN;
    raw = malloc(rawlen);
    if (raw == NULL) return NULL;
    if (RAND_bytes(raw, GCM_NONCE_LEN) != 1 ||
        gcm_run(true, master, raw, key_id, (const unsigned char *)secret, slen, raw + GCM_NONCE_LEN,
                raw + GCM_NONCE_LEN + slen) < 0)
        goto out;
    b64 = malloc(4 * ((rawlen + 2) / 3) + 1);
    if (b64 != NULL) EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
out:
    free(raw);
    return b64;
}

/* Strict base64 decode: only the standard alphabet, '=' only as the final
 * one or two chars, a length that is a multiple of 4. EVP_DecodeBlock skips
 * surrounding whitespace and counts padding as zero bytes, so both are
 * handled here. Returns the decoded length or -1. OUT holds 3*len/4 bytes. */
static int b64_decode(const char *in, size_t len, unsigned char *out)
{
    size_t pad = 0;
    int n;

    if (len == 0 || len % 4 != 0) return -1;
    if (in[len - 1] == '=') pad++;
    if (pad == 1 && in[len - 2] == '=') pad++;
    for (size_t i = 0; i < len - pad; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!(isascii(c) && (isalnum(c) || c == '+' || c == '/'))) return -1;
    }
    n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0 || (size_t)n != 3 * (len / 4)) return -1;
    return n - (int)pad;
}

char *lg_cred_unseal(const unsigned char *master, const char *key_id, const char *sealed)
{
    unsigned char *raw;
    char *plain = NULL;
    size_t len, ctlen = 0;
    int rawlen;

    if (master == NULL || key_id == NULL || sealed == NULL) return NULL;
    len = strnlen(sealed, SEALED_MAX + 1);
    if (len > SEALED_MAX) return NULL;
    raw = malloc(3 * (len / 4) + 1);
    if (raw == NULL) return NULL;
    rawlen = b64_decode(sealed, len, raw);
    if (rawlen < GCM_NONCE_LEN + GCM_TAG_LEN) goto out;
    ctlen = (size_t)rawlen - GCM_NONCE_LEN - GCM_TAG_LEN;
    plain = malloc(ctlen + 1);
    if (plain == NULL) goto out;
    /* The secret is a C string: an embedded NUL means it is not ours. */
    if (gcm_run(false, master, raw, key_id, raw + GCM_NONCE_LEN, ctlen, (unsigned char *)plain,
                raw + GCM_NONCE_LEN + ctlen) < 0 ||
        memchr(plain, '\0', ctlen) != NULL) {
        OPENSSL_cleanse(plain, ctlen + 1);
        free(plain);
        plain = NULL;
        goto out;
    }
    plain[ctlen] = '\0';
out:
    free(raw);
    return plain;
}

bool lg_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) return false;
    if (alen == 0) return true;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

static void set_err(char *err, size_t errlen, const char *path, const char *what, int errnum)
{
    if (err == NULL || errlen == 0) return;
    if (errnum != 0)
        snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errnum));
    else
        snprintf(err, errlen, "%s: %s", path, what);
}

/* Creates PATH exclusively with CREATE_LEN fresh random bytes (hex text plus a
 * newline when TEXT). Returns 0, 1 when another process created it first, or -1. */
static int secret_file_create(const char *path, size_t create_len, bool text, char *err,
                              size_t errlen)
{
    size_t len = text ? 2 * create_len + 1 : create_len;
    unsigned char *buf = malloc(len + create_len + 1);
    unsigned char *rnd;
    size_t off = 0;
    int fd, rc = -1;

    if (buf == NULL) {
        set_err(err, errlen, path, "cannot create", ENOMEM);
        return -1;
    }
    rnd = buf + len;
    if (RAND_bytes(rnd, (int)create_len) != 1) {
        set_err(err, errlen, path, "cannot create: no randomness", 0);
        goto out;
    }
    if (text) {
        hex_encode(rnd, create_len, (char *)buf);
        buf[len - 1] = '\n';
    } else {
        memcpy(buf, rnd, create_len);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            rc = 1;
            goto out;
        }
        set_err(err, errlen, path, "cannot create", errno);
        goto out;
    }
    /* The umask can only narrow 0600, but make the mode exact regardless. */
    if (fchmod(fd, 0600) < 0) {
        set_err(err, errlen, path, "cannot chmod", errno);
        goto fail;
    }
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            set_err(err, errlen, path, "cannot write", errno);
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0) {
        set_err(err, errlen, path, "cannot sync", errno);
        goto fail;
    }
    if (close(fd) < 0) {
        set_err(err, errlen, path, "cannot write", errno);
        unlink(path);
        goto out;
    }
    rc = 0;
    goto out;

fail:
    /* Never leave a truncated secret behind for the next start to trust. */
    close(fd);
    unlink(path);
out:
    OPENSSL_cleanse(buf, len + create_len + 1);
    free(buf);
    return rc;
}

int lg_secret_file_load(const char *path, size_t create_len, bool text, unsigned char *out,
                        size_t cap, size_t *outlen, char *err, size_t errlen)
{
    size_t limit = cap + (text ? TEXT_SLACK : 0);
    unsigned char *buf = NULL;
    size_t len = 0, start = 0, end;
    struct stat st;
    int fd, rc = -1;

    if (path == NULL || out == NULL || outlen == NULL || cap == 0) {
        set_err(err, errlen, path ? path : "(null)", "invalid arguments", 0);
        return -1;
    }
    if (create_len > (text ? cap / 2 : cap) || create_len > INT32_MAX / 2) {
        set_err(err, errlen, path, "requested size does not fit the buffer", 0);
        return -1;
    }
    /* O_NONBLOCK so that a FIFO in place of the file cannot hang the start. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && create_len > 0) {
        if (secret_file_create(path, create_len, text, err, errlen) < 0) return -1;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    }
    if (fd < 0) {
        set_err(err, errlen, path, "cannot open", errno);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        set_err(err, errlen, path, "cannot stat", errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, path, "not a regular file", 0);
        goto out;
    }
    buf = malloc(limit + 1);
    if (buf == NULL) {
        set_err(err, errlen, path, "cannot read", ENOMEM);
        goto out;
    }
    /* Read one byte past the limit to tell "exactly full" from "too large". */
    while (len <= limit) {
        ssize_t r = read(fd, buf + len, limit + 1 - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            set_err(err, errlen, path, "cannot read", errno);
            goto out;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    end = len;
    if (len > limit) {
        set_err(err, errlen, path, "file too large", 0);
        goto out;
    }
    if (text) {
        while (start < end && isspace(buf[start])) start++;
        while (end > start && isspace(buf[end - 1])) end--;
    }
    if (end == start) {
        set_err(err, errlen, path, "file is empty", 0);
        goto out;
    }
    if (end - start > cap) {
        set_err(err, errlen, path, "file too large", 0);
        goto out;
    }
    memcpy(out, buf + start, end - start);
    *outlen = end - start;
    /* Convenience for text callers; only when it fits inside CAP. */
    if (*outlen < cap) out[*outlen] = '\0';
    rc = 0;

out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, limit + 1);
        free(buf);
    }
    close(fd);
    return rc;
}
