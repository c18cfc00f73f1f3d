/* Unit tests for cred.c: id and credential formats and checksums, verifiers,
 * sealing, constant-time compare and secret files. */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lockgate/cred.h"

#include "check_run.h"

static const unsigned char pepper[32] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

/* CRC32 suffix computed independently (Python zlib.crc32, big-endian base62). */
static const char known_key[] = "lk_abcdefghijklmnopqrstuvwx0c3Btk";

static const char kat_key_id[] = "lk_abcdefghijklmnopqrstuvwx";
static const char kat_secret[] = "ls_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd";
/* printf 'KEY:SECRET' | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102...1f */
static const char kat_verifier[] =
    "e04dfbd5b3de6e2d8d3d33b4d355e3fb4f6aa21e461f4ddfb2e1604e0e1debeb";

static bool all_in(const char *s, size_t n, const char *alphabet)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || strchr(alphabet, s[i]) == NULL) return false;
    return true;
}

/* Replaces S[I] with another char of the same alphabet (keeps the form). */
static void flip(char *s, size_t i) { s[i] = s[i] == 'A' ? 'B' : 'A'; }

START_TEST(test_id_new_format)
{
    char a[LG_ACCOUNT_ID_LEN + 1], b[LG_ACCOUNT_ID_LEN + 1], f[LG_FACILITY_ID_LEN + 1];

    ck_assert_int_eq(lg_id_new("acct_", a, sizeof(a)), 0);
    ck_assert_int_eq(lg_id_new("acct_", b, sizeof(b)), 0);
    ck_assert_int_eq(lg_id_new("fac_", f, sizeof(f)), 0);
    ck_assert_uint_eq(strlen(a), LG_ACCOUNT_ID_LEN);
    ck_assert_uint_eq(strlen(f), LG_FACILITY_ID_LEN);
    ck_assert(strncmp(a, "acct_", 5) == 0);
    ck_assert(strncmp(f, "fac_", 4) == 0);
    ck_assert(all_in(a + 5, 20, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"));
    ck_assert(all_in(f + 4, 20, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"));
    ck_assert_str_ne(a, b);
    ck_assert(lg_id_valid("acct_", a, strlen(a)));
    ck_assert(lg_id_valid("fac_", f, strlen(f)));
    /* Too small a buffer is refused, one byte more is enough. */
    ck_assert_int_eq(lg_id_new("acct_", a, LG_ACCOUNT_ID_LEN), -1);
    ck_assert_int_eq(lg_id_new("acct_", a, LG_ACCOUNT_ID_LEN + 1), 0);
}
END_TEST

START_TEST(test_id_new_uses_whole_alphabet)
{
    /* 32 symbols, 2000 draws: a missing symbol would mean a broken mapping. */
    char id[LG_ACCOUNT_ID_LEN + 1];
    int count[256] = {0};

    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(lg_id_new("acct_", id, sizeof(id)), 0);
        for (int j = 5; j < LG_ACCOUNT_ID_LEN; j++) count[(unsigned char)id[j]]++;
    }
    for (const char *c = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; *c; c++)
        ck_assert_msg(count[(unsigned char)*c] > 0, "symbol %c never drawn", *c);
}
END_TEST

START_TEST(test_base62_unbiased)
{
    /* 10^6 base62 draws: each symbol is expected 16129 times (sd ~126). A
     * modulo-biased mapping would give '0'..'7' about 19500. The +-10% band is
     * more than 12 sd wide, so a correct generator never fails it. */
    const char *b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char s[LG_SECRET_LEN + 1];
    long count[256] = {0};
    const int n = 25000;
    double expected = n * 40.0 / 62.0;

    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(lg_cred_secret_new(s), 0);
        for (int j = 3; j < 43; j++) count[(unsigned char)s[j]]++;
    }
    for (const char *c = b62; *c; c++)
        ck_assert_msg(count[(unsigned char)*c] > expected * 0.9 &&
                          count[(unsigned char)*c] < expected * 1.1,
                      "symbol %c drawn %ld times, expected about %.0f", *c,
                      count[(unsigned char)*c], expected);
}
END_TEST

START_TEST(test_id_valid_rejects)
{
    char id[] = "acct_0123456789ABCDEFGHJK";

    ck_assert(lg_id_valid("acct_", id, strlen(id)));
    ck_assert(!lg_id_valid("acct_", id, strlen(id) - 1));               /* short */
    ck_assert(!lg_id_valid("acct_", "acct_0123456789ABCDEFGHJKM", 26)); /* long */
    ck_assert(!lg_id_valid("fac_", id, strlen(id)));                    /* prefix */
    ck_assert(!lg_id_valid("acct_", "acc__0123456789ABCDEFGHJK", 25));  /* prefix */
    ck_assert(!lg_id_valid("acct_", "acct_0123456789ABCDEFGHJI", 25));  /* I */
    ck_assert(!lg_id_valid("acct_", "acct_0123456789ABCDEFGHJL", 25));  /* L */
    ck_assert(!lg_id_valid("acct_", "acct_0123456789ABCDEFGHJU", 25));  /* U */
    ck_assert(!lg_id_valid("acct_", "acct_0123456789ABCDEFGHJk", 25));  /* lower */
    ck_assert(!lg_id_valid("acct_", "acct_0123456789ABCDEFGH\0K", 25)); /* NUL */
    ck_assert(!lg_id_valid("acct_", "", 0));
}
END_TEST

START_TEST(test_ident_valid)
{
    char big[66];

    ck_assert(lg_ident_valid("u-12_A", 6));
    ck_assert(lg_ident_valid("a", 1));
    memset(big, 'x', sizeof(big));
    ck_assert(lg_ident_valid(big, 64));
    ck_assert(!lg_ident_valid(big, 65));
    ck_assert(!lg_ident_valid("", 0));
    ck_assert(!lg_ident_valid("..", 2));
    ck_assert(!lg_ident_valid("a/b", 3));
    ck_assert(!lg_ident_valid("a%2F", 4));
    ck_assert(!lg_ident_valid("a b", 3));
    ck_assert(!lg_ident_valid("a\0b", 3));
    ck_assert(!lg_ident_valid("\xc3\xa9", 2));
}
END_TEST

START_TEST(test_key_new_format)
{
    char k1[LG_KEY_LEN + 1], k2[LG_KEY_LEN + 1];
    const char *b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    ck_assert_int_eq(lg_cred_key_new(k1), 0);
    ck_assert_int_eq(lg_cred_key_new(k2), 0);
    ck_assert_uint_eq(strlen(k1), LG_KEY_LEN);
    ck_assert(strncmp(k1, "lk_", 3) == 0);
    ck_assert(all_in(k1 + 3, 30, b62));
    ck_assert_str_ne(k1, k2);
    ck_assert(lg_cred_key_valid(k1, strlen(k1)));
    ck_assert(lg_cred_key_valid(known_key, strlen(known_key)));
}
END_TEST

START_TEST(test_secret_new_format)
{
    char s1[LG_SECRET_LEN + 1], s2[LG_SECRET_LEN + 1];
    const char *b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    ck_assert_int_eq(lg_cred_secret_new(s1), 0);
    ck_assert_int_eq(lg_cred_secret_new(s2), 0);
    ck_assert_uint_eq(strlen(s1), LG_SECRET_LEN);
    ck_assert(strncmp(s1, "ls_", 3) == 0);
    ck_assert(all_in(s1 + 3, 46, b62));
    ck_assert_str_ne(s1, s2);
    ck_assert(lg_cred_secret_valid(s1, strlen(s1)));
    /* A key is not a secret and the other way round. */
    ck_assert(!lg_cred_key_valid(s1, strlen(s1)));
}
END_TEST

/* Shared negative cases for a fresh credential of length LEN with PREFIX. */
static void check_cred_rejects(bool (*valid)(const char *, size_t), const char *good, size_t len,
                               size_t nrandom)
{
    char s[64];

    ck_assert(valid(good, len));
    memcpy(s, good, len + 1);
    ck_assert(!valid(s, len - 1));
    s[len] = 'A';
    s[len + 1] = '\0';
    ck_assert(!valid(s, len + 1));

    memcpy(s, good, len + 1);
    s[0] = s[0] == 'l' ? 'x' : 'l';
    ck_assert(!valid(s, len));

    memcpy(s, good, len + 1);
    s[2] = '-';
    ck_assert(!valid(s, len));

    memcpy(s, good, len + 1);
    s[5] = '_';
    ck_assert(!valid(s, len));

    memcpy(s, good, len + 1);
    s[len - 1] = '!';
    ck_assert(!valid(s, len));

    /* A changed checksum char, then a changed random char. */
    for (size_t i = 3 + nrandom; i < len; i++) {
        memcpy(s, good, len + 1);
        flip(s, i);
        ck_assert_msg(!valid(s, len), "checksum char %zu flipped but accepted", i);
    }
    for (size_t i = 3; i < 3 + nrandom; i++) {
        memcpy(s, good, len + 1);
        flip(s, i);
        ck_assert_msg(!valid(s, len), "random char %zu flipped but accepted", i);
    }
    ck_assert(!valid("", 0));
}

START_TEST(test_key_valid_rejects)
{
    char k[LG_KEY_LEN + 1];

    check_cred_rejects(lg_cred_key_valid, known_key, LG_KEY_LEN, 24);
    ck_assert_int_eq(lg_cred_key_new(k), 0);
    check_cred_rejects(lg_cred_key_valid, k, LG_KEY_LEN, 24);
    /* Right length and checksum chars but a secret's prefix. */
    memcpy(k, known_key, sizeof(known_key));
    k[1] = 's';
    ck_assert(!lg_cred_key_valid(k, LG_KEY_LEN));
}
END_TEST

START_TEST(test_secret_valid_rejects)
{
    char s[LG_SECRET_LEN + 1];

    ck_assert_int_eq(lg_cred_secret_new(s), 0);
    check_cred_rejects(lg_cred_secret_valid, s, LG_SECRET_LEN, 40);
}
END_TEST

START_TEST(test_verifier_known_answer)
{
    char v[LG_VERIFIER_LEN + 1];

    ck_assert_int_eq(
        lg_cred_verifier(pepper, sizeof(pepper), kat_key_id, kat_secret, strlen(kat_secret), v), 0);
    ck_assert_str_eq(v, kat_verifier);
    /* A second call on the same thread reuses the MAC context: same answer. */
    ck_assert_int_eq(
        lg_cred_verifier(pepper, sizeof(pepper), kat_key_id, kat_secret, strlen(kat_secret), v), 0);
    ck_assert_str_eq(v, kat_verifier);
    ck_assert(lg_cred_verify(pepper, sizeof(pepper), kat_key_id, kat_secret, strlen(kat_secret),
                             kat_verifier));
}
END_TEST

START_TEST(test_verifier_mismatch)
{
    char v[LG_VERIFIER_LEN + 1], bad[LG_VERIFIER_LEN + 2];
    unsigned char pepper2[32];
    size_t slen = strlen(kat_secret);

    memcpy(pepper2, pepper, sizeof(pepper));
    pepper2[31] ^= 1;
    ck_assert_int_eq(lg_cred_verifier(pepper2, sizeof(pepper2), kat_key_id, kat_secret, slen, v),
                     0);
    ck_assert_str_ne(v, kat_verifier);
    /* The pepper must really be re-keyed on every call. */
    ck_assert_int_eq(lg_cred_verifier(pepper, sizeof(pepper), kat_key_id, kat_secret, slen, v), 0);
    ck_assert_str_eq(v, kat_verifier);

    ck_assert(
        !lg_cred_verify(pepper2, sizeof(pepper2), kat_key_id, kat_secret, slen, kat_verifier));
    ck_assert(!lg_cred_verify(pepper, sizeof(pepper), "lk_other", kat_secret, slen, kat_verifier));
    ck_assert(
        !lg_cred_verify(pepper, sizeof(pepper), kat_key_id, kat_secret, slen - 1, kat_verifier));
    /* Every single changed hex digit is refused. */
    for (size_t i = 0; i < LG_VERIFIER_LEN; i++) {
        memcpy(bad, kat_verifier, sizeof(kat_verifier));
        bad[i] = bad[i] == '0' ? '1' : '0';
        ck_assert(!lg_cred_verify(pepper, sizeof(pepper), kat_key_id, kat_secret, slen, bad));
    }
    /* Uppercase, truncated, overlong, empty and missing verifiers. */
    memcpy(bad, kat_verifier, sizeof(kat_verifier));
    for (size_t i = 0; i < LG_VERIFIER_LEN; i++) bad[i] = (char)toupper((unsigned char)bad[i]);
    ck_assert(!lg_cred_verify(pepper, sizeof(pepper), kat_key_id, kat_secret, slen, bad));
    memcpy(bad, kat_verifier, sizeof(kat_verifier));
    bad[LG_VERIFIER_LEN - 1] = '\0';
    ck_assert(!lg_cred_verify(pepper, sizeof(pepper), kat_key_id, kat_secret, slen, bad));
    memcpy(bad, kat_verifier, sizeof(kat_verifier));
    bad[LG_VERIFIER_LEN] = 'a';
    bad[LG_VERIFIER_LEN + 1] = '\0';
    ck_assert(!lg_cred_verify(pepper, sizeof(pepper), kat_key_id, kat_secret, slen, bad));
    ck_assert(!lg_cred_verify(pepper, sizeof(pepper), kat_key_id, kat_secret, slen, ""));
    ck_assert(!lg_cred_verify(pepper, sizeof(pepper), kat_key_id, kat_secret, slen, NULL));
    /* No pepper, no verifier. */
    ck_assert_int_eq(lg_cred_verifier(pepper, 0, kat_key_id, kat_secret, slen, v), -1);
}
END_TEST

struct verify_job {
    const char *other; /* verifier under pepper2 */
    int failures;
};

static void *verify_thread(void *arg)
{
    struct verify_job *job = arg;
    unsigned char pepper2[32];
    char v[LG_VERIFIER_LEN + 1];
    size_t slen = strlen(kat_secret);

    memcpy(pepper2, pepper, sizeof(pepper));
    pepper2[31] ^= 1;
    for (int i = 0; i < 500; i++) {
        bool odd = i % 2;
        if (lg_cred_verifier(odd ? pepper2 : pepper, 32, kat_key_id, kat_secret, slen, v) != 0 ||
            strcmp(v, odd ? job->other : kat_verifier) != 0)
            job->failures++;
        if (!lg_cred_verify(pepper, 32, kat_key_id, kat_secret, slen, kat_verifier))
            job->failures++;
    }
    return NULL;
}

START_TEST(test_verifier_threads)
{
    /* Each thread has its own MAC context; interleaved keys must never mix. */
    unsigned char pepper2[32];
    char other[LG_VERIFIER_LEN + 1];
    struct verify_job jobs[4];
    pthread_t th[4];

    memcpy(pepper2, pepper, sizeof(pepper));
    pepper2[31] ^= 1;
    ck_assert_int_eq(
        lg_cred_verifier(pepper2, 32, kat_key_id, kat_secret, strlen(kat_secret), other), 0);
    for (int i = 0; i < 4; i++) {
        jobs[i].other = other;
        jobs[i].failures = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, verify_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(jobs[i].failures, 0);
    }
}
END_TEST

static const unsigned char master[32] = "0123456789abcdef0123456789abcdef";

START_TEST(test_seal_round_trip)
{
    char secret[LG_SECRET_LEN + 1];
    char *sealed, *sealed2, *plain;

    ck_assert_int_eq(lg_cred_secret_new(secret), 0);
    sealed = lg_cred_seal(master, "lk_one", secret);
    ck_assert_ptr_nonnull(sealed);
    /* 12 + 49 + 16 = 77 bytes -> 104 base64 chars. */
    ck_assert_uint_eq(strlen(sealed), 104);
    ck_assert_ptr_null(strstr(sealed, secret + 3));
    plain = lg_cred_unseal(master, "lk_one", sealed);
    ck_assert_ptr_nonnull(plain);
    ck_assert_str_eq(plain, secret);
    free(plain);

    /* A fresh nonce every time. */
    sealed2 = lg_cred_seal(master, "lk_one", secret);
    ck_assert_ptr_nonnull(sealed2);
    ck_assert_str_ne(sealed, sealed2);
    free(sealed2);
    free(sealed);

    /* Lengths that exercise every base64 padding case. */
    for (size_t n = 1; n <= 7; n++) {
        char s[8] = "abcdefg";
        s[n] = '\0';
        sealed = lg_cred_seal(master, "k", s);
        ck_assert_ptr_nonnull(sealed);
        plain = lg_cred_unseal(master, "k", sealed);
        ck_assert_ptr_nonnull(plain);
        ck_assert_str_eq(plain, s);
        free(plain);
        free(sealed);
    }
}
END_TEST

static int b64val(char c)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return (int)(strchr(a, c) - a);
}

/* Changes one bit of decoded byte I by editing base64 char 4*(I/3)+... simply:
 * flips the low bit of the 6-bit group that holds the byte's last bit. */
static void tamper_byte(char *b64, size_t i)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t bit = i * 8 + 7; /* last bit of byte I */
    size_t ch = bit / 6;    /* base64 char that holds it */
    int shift = 5 - (int)(bit % 6);
    int v = b64val(b64[ch]) ^ (1 << shift);

    b64[ch] = a[v];
}

START_TEST(test_unseal_rejects)
{
    const char *secret = "ls_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij";
    unsigned char master2[32];
    char *sealed = lg_cred_seal(master, "lk_one", secret);
    char *copy, *plain;
    size_t len, raw_len = 12 + strlen(secret) + 16;

    ck_assert_ptr_nonnull(sealed);
    len = strlen(sealed);

    /* Sanity: the tamper helper leaves an untouched copy decodable. */
    plain = lg_cred_unseal(master, "lk_one", sealed);
    ck_assert_ptr_nonnull(plain);
    free(plain);

    /* Nonce (byte 0, 11), ciphertext (12, 40), tag (last 16 bytes). */
    size_t targets[] = {0, 11, 12, 40, raw_len - 16, raw_len - 1};
    for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
        copy = strdup(sealed);
        tamper_byte(copy, targets[t]);
        ck_assert_str_ne(copy, sealed);
        ck_assert_msg(lg_cred_unseal(master, "lk_one", copy) == NULL, "byte %zu tampered",
                      targets[t]);
        free(copy);
    }

    ck_assert_ptr_null(lg_cred_unseal(master, "lk_two", sealed));
    ck_assert_ptr_null(lg_cred_unseal(master, "", sealed));
    memcpy(master2, master, sizeof(master2));
    master2[0] ^= 0x80;
    ck_assert_ptr_null(lg_cred_unseal(master2, "lk_one", sealed));

    /* Malformed base64 and short inputs. */
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", ""));
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", "not base64 at all!"));
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", "AAAA"));
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", "===="));
    ck_assert_ptr_null(
        lg_cred_unseal(master, "lk_one", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));
    copy = strdup(sealed);
    copy[len - 1] = '\0'; /* no longer a multiple of 4 */
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", copy));
    copy[len - 1] = '*';
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", copy));
    free(copy);
    copy = malloc(len + 3);
    snprintf(copy, len + 3, " %s\n", sealed); /* EVP_DecodeBlock would skip these */
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", copy));
    free(copy);
    copy = strdup(sealed);
    copy[4] = '=';
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", copy));
    free(copy);
    /* Truncated to a shorter valid base64 string. */
    copy = strdup(sealed);
    copy[len - 4] = '\0';
    ck_assert_ptr_null(lg_cred_unseal(master, "lk_one", copy));
    free(copy);
    free(sealed);
}
END_TEST

START_TEST(test_ct_equal)
{
    ck_assert(lg_ct_equal("abc", 3, "abc", 3));
    ck_assert(!lg_ct_equal("abc", 3, "abd", 3));
    ck_assert(!lg_ct_equal("abc", 3, "abcd", 4));
    ck_assert(!lg_ct_equal("abc", 3, "ab", 2));
    ck_assert(lg_ct_equal("", 0, "", 0));
    ck_assert(!lg_ct_equal("a\0b", 3, "a\0c", 3));
}
END_TEST

static char tmpdir[256];

static void tmp_setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/lg-test-cred-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];

    if (d == NULL) return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

static void write_file(const char *path, const char *content, size_t len)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(content, 1, len, f), len);
    fclose(f);
}

START_TEST(test_secret_file_binary)
{
    char path[512], err[512];
    unsigned char a[64], b[64];
    size_t alen = 0, blen = 0;
    struct stat st;

    snprintf(path, sizeof(path), "%s/pepper", tmpdir);
    ck_assert_int_eq(lg_secret_file_load(path, 32, false, a, sizeof(a), &alen, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(alen, 32);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_size, 32);

    /* Re-reading gives the same bytes; nothing is regenerated. */
    ck_assert_int_eq(lg_secret_file_load(path, 32, false, b, sizeof(b), &blen, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(blen, 32);
    ck_assert(memcmp(a, b, 32) == 0);

    /* A second file gets different bytes. */
    snprintf(path, sizeof(path), "%s/master.key", tmpdir);
    ck_assert_int_eq(lg_secret_file_load(path, 32, false, b, sizeof(b), &blen, err, sizeof(err)),
                     0);
    ck_assert(memcmp(a, b, 32) != 0);
}
END_TEST

START_TEST(test_secret_file_text)
{
    char path[512], err[512];
    unsigned char a[128], b[128];
    size_t alen = 0, blen = 0;
    struct stat st;

    snprintf(path, sizeof(path), "%s/admin.token", tmpdir);
    ck_assert_int_eq(lg_secret_file_load(path, 32, true, a, sizeof(a), &alen, err, sizeof(err)), 0);
    ck_assert_uint_eq(alen, 64);
    ck_assert(all_in((const char *)a, 64, "0123456789abcdef"));
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_size, 65); /* hex + newline */
    ck_assert_int_eq(lg_secret_file_load(path, 32, true, b, sizeof(b), &blen, err, sizeof(err)), 0);
    ck_assert_uint_eq(blen, 64);
    ck_assert(memcmp(a, b, 64) == 0);

    /* Surrounding whitespace is stripped, inner bytes kept. */
    snprintf(path, sizeof(path), "%s/token2", tmpdir);
    write_file(path, " \t\r\n my token \r\n\n", 17);
    ck_assert_int_eq(lg_secret_file_load(path, 32, true, b, sizeof(b), &blen, err, sizeof(err)), 0);
    ck_assert_uint_eq(blen, 8);
    ck_assert(memcmp(b, "my token", 8) == 0);
    /* The same file read as binary keeps every byte. */
    ck_assert_int_eq(lg_secret_file_load(path, 32, false, b, sizeof(b), &blen, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(blen, 17);
}
END_TEST

START_TEST(test_secret_file_errors)
{
    char path[512], err[512];
    unsigned char buf[16];
    size_t len = 0;

    /* Larger than the cap. */
    snprintf(path, sizeof(path), "%s/big", tmpdir);
    write_file(path, "0123456789abcdefX", 17);
    ck_assert_int_eq(lg_secret_file_load(path, 8, false, buf, sizeof(buf), &len, err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "too large"));
    /* Exactly the cap is fine. */
    write_file(path, "0123456789abcdef", 16);
    ck_assert_int_eq(lg_secret_file_load(path, 8, false, buf, sizeof(buf), &len, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(len, 16);

    /* Empty (or only whitespace in text mode). */
    snprintf(path, sizeof(path), "%s/empty", tmpdir);
    write_file(path, " \n", 2);
    ck_assert_int_eq(lg_secret_file_load(path, 8, true, buf, sizeof(buf), &len, err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "empty"));

    /* Missing folder: the error names the path and the reason. */
    snprintf(path, sizeof(path), "%s/nope/pepper", tmpdir);
    ck_assert_int_eq(lg_secret_file_load(path, 8, false, buf, sizeof(buf), &len, err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));

    /* A folder is not a secret file. */
    ck_assert_int_eq(
        lg_secret_file_load(tmpdir, 8, false, buf, sizeof(buf), &len, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, tmpdir));

    /* A size that could never be read back within the cap is refused up front. */
    snprintf(path, sizeof(path), "%s/toolong", tmpdir);
    ck_assert_int_eq(lg_secret_file_load(path, 9, true, buf, sizeof(buf), &len, err, sizeof(err)),
                     -1);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

static Suite *cred_suite(void)
{
    Suite *s = suite_create("cred");
    TCase *tc = tcase_create("core");
    TCase *tf = tcase_create("files");

    tcase_add_test(tc, test_id_new_format);
    tcase_add_test(tc, test_id_new_uses_whole_alphabet);
    tcase_add_test(tc, test_base62_unbiased);
    tcase_add_test(tc, test_id_valid_rejects);
    tcase_add_test(tc, test_ident_valid);
    tcase_add_test(tc, test_key_new_format);
    tcase_add_test(tc, test_secret_new_format);
    tcase_add_test(tc, test_key_valid_rejects);
    tcase_add_test(tc, test_secret_valid_rejects);
    tcase_add_test(tc, test_verifier_known_answer);
    tcase_add_test(tc, test_verifier_mismatch);
    tcase_add_test(tc, test_verifier_threads);
    tcase_add_test(tc, test_seal_round_trip);
    tcase_add_test(tc, test_unseal_rejects);
    tcase_add_test(tc, test_ct_equal);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(tf, tmp_setup, tmp_teardown);
    tcase_add_test(tf, test_secret_file_binary);
    tcase_add_test(tf, test_secret_file_text);
    tcase_add_test(tf, test_secret_file_errors);
    suite_add_tcase(s, tf);
    return s;
}

int main(void) { return check_run(cred_suite()) ? EXIT_FAILURE : EXIT_SUCCESS; }
