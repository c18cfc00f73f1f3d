/* Authentication: credentials from headers, secret checks, and the throttle
 * that stops guessing from one client IP. The key lookup itself is a
 * pipeline stage (pipeline.c) because it may need Redis. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "lockgate/auth.h"
#include "lockgate/cache.h"
#include "lockgate/list.h"
#include "lockgate/secrets.h"
#include "lockgate/table.h"
#include "lockgate/util.h"

#define BASIC_MAX 256 /* base64 of "lk_...:ls_..." is about 112 chars */

static enum lg_auth_parse_result take(const char *k, size_t klen, const char *s, size_t slen,
                                      char *key, char *secret)
{
    if (!lg_cred_key_valid(k, klen) || !lg_cred_secret_valid(s, slen)) return LG_AUTH_INVALID;
    memcpy(key, k, klen);
    key[klen] = '\0';
    memcpy(secret, s, slen);
    secret[slen] = '\0';
    return LG_AUTH_OK;
}

enum lg_auth_parse_result lg_auth_parse(const char *authorization, const char *x_key,
                                        const char *x_secret, char *key, char *secret)
{
    if (authorization != NULL && (x_key != NULL || x_secret != NULL)) return LG_AUTH_BOTH;
    if (authorization != NULL) {
        if (strncasecmp(authorization, "Basic ", 6) != 0) return LG_AUTH_INVALID;
        const char *b64 = authorization + 6;
        while (*b64 == ' ') b64++;
        size_t len = strlen(b64);
        while (len > 0 && b64[len - 1] == ' ') len--;
        if (len == 0 || len > BASIC_MAX || len % 4 != 0) return LG_AUTH_INVALID;
        unsigned char dec[BASIC_MAX];
        int n = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)len);
        if (n < 0) return LG_AUTH_INVALID;
        /* EVP_DecodeBlock counts padding as zero bytes: drop them. */
        if (b64[len - 1] == '=') n--;
        if (b64[len - 2] == '=') n--;
        const unsigned char *colon = memchr(dec, ':', (size_t)n);
        enum lg_auth_parse_result r = LG_AUTH_INVALID;
        if (colon != NULL) {
            size_t klen = (size_t)(colon - dec);
            r = take((const char *)dec, klen, (const char *)colon + 1, (size_t)n - klen - 1, key,
                     secret);
        }
        OPENSSL_cleanse(dec, sizeof(dec)); /* it held the secret */
        return r;
    }
    if (x_key == NULL && x_secret == NULL) return LG_AUTH_MISSING;
    if (x_key == NULL || x_secret == NULL) return LG_AUTH_INVALID;
    return take(x_key, strlen(x_key), x_secret, strlen(x_secret), key, secret);
}

/* SHA-256 fetched once: the one-shot SHA256() looks the algorithm up on
 * every call, which costs more than the digest of a 49-byte secret. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) { sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

static void digest_secret(const char *secret, size_t len, unsigned char out[SHA256_DIGEST_LENGTH])
{
    pthread_once(&sha256_once, sha256_fetch);
    if (sha256 == NULL || EVP_Digest(secret, len, out, NULL, sha256, NULL) != 1)
        SHA256((const unsigned char *)secret, len, out);
}

bool lg_auth_verify(struct lg_key *k, const struct lg_secrets *secrets, const char *secret)
{
    size_t len = strlen(secret);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    digest_secret(secret, len, digest);
    bool ok;
    if (k->has_verified) {
        ok = lg_ct_equal(digest, sizeof(digest), k->verified, sizeof(digest));
    } else {
        ok = lg_cred_verify(secrets->pepper, secrets->pepper_len, k->key_id, secret, len,
                            k->verifier);
        /* Later requests compare a digest of the secret instead of an HMAC. */
        if (ok) memcpy(k->verified, digest, sizeof(digest));
        k->has_verified = ok;
    }
    /* Whoever reads the stack later learns nothing that stands for the secret. */
    OPENSSL_cleanse(digest, sizeof(digest));
    return ok;
}

/* The throttle: a fixed set of slots shared by every worker, one mutex, in
 * a hash table of a fixed size (table.h) by client. A client keeps its slot
 * across windows; a new client takes a slot never used yet, or else the one
 * claimed longest ago (of an earlier window, as long as there is one), so
 * the memory never grows. */
#define THROTTLE_SLOTS 8192

struct throttle_slot {
    struct lg_table_node node; /* in throttle_table once claimed */
    struct lg_list link;       /* in throttle_claimed, oldest claim first */
    char ip[64];
    int64_t window; /* minute number */
    int failures;
};

static struct throttle_slot throttle[THROTTLE_SLOTS];
static int throttle_used; /* slots claimed at least once */
static struct lg_table_node *throttle_buckets[THROTTLE_SLOTS];
static struct lg_table throttle_table = {throttle_buckets, THROTTLE_SLOTS - 1, 0, false};
static struct lg_list throttle_claimed = {&throttle_claimed, &throttle_claimed};
static pthread_mutex_t throttle_lock = PTHREAD_MUTEX_INITIALIZER;
/* The minute in which some client last reached the limit: while none has
 * this minute (the usual case, even with refusals about), the check costs
 * one atomic load and no lock. */
static _Atomic int64_t last_over_window = -1;
static _Atomic int throttle_limit = 30; /* set again on SIGHUP */

void lg_auth_throttle_init(int failures_per_min)
{
    atomic_store_explicit(&throttle_limit, failures_per_min, memory_order_relaxed);
    /* a lower limit may put counts of this minute over it already */
    atomic_store_explicit(&last_over_window, lg_now_ms() / 60000, memory_order_release);
}

/* Returns the slot of IP for WINDOW: NULL when it has none and CREATE is
 * false, else one claimed for it (no failures yet). */
static struct throttle_slot *throttle_find(const char *ip, int64_t window, bool create)
{
    uint64_t h = lg_hash(ip, strlen(ip));
    struct throttle_slot *s = NULL;
    for (struct lg_table_node *n = lg_table_first(&throttle_table, h); n != NULL && s == NULL;
         n = lg_table_next(n))
        if (strcmp(LG_CONTAINER_OF(n, struct throttle_slot, node)->ip, ip) == 0)
            s = LG_CONTAINER_OF(n, struct throttle_slot, node);
    if (s != NULL && s->window == window) return s;
    if (!create) return NULL;
    if (s != NULL) { /* a new window: the client's count starts again */
        lg_list_remove(&s->link);
    } else {
        if (throttle_used < THROTTLE_SLOTS) {
            s = &throttle[throttle_used++];
        } else {
            s = LG_CONTAINER_OF(lg_list_pop_front(&throttle_claimed), struct throttle_slot, link);
            lg_table_remove(&throttle_table, &s->node);
        }
        snprintf(s->ip, sizeof(s->ip), "%s", ip);
        lg_table_insert(&throttle_table, &s->node, h);
    }
    s->window = window;
    s->failures = 0;
    lg_list_push_back(&throttle_claimed, &s->link);
    return s;
}

/* The throttle's unit: an IPv4 address, or an IPv6 /64 (one host usually
 * holds a whole /64 and could otherwise rotate through it). */
static void client_of(const char *ip, char *out, size_t cap)
{
    unsigned char a[16];
    if (strchr(ip, ':') != NULL && inet_pton(AF_INET6, ip, a) == 1) {
        memset(a + 8, 0, 8);
        char net[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, a, net, sizeof(net)) != NULL) {
            snprintf(out, cap, "%s/64", net);
            return;
        }
    }
    snprintf(out, cap, "%s", ip);
}

bool lg_auth_throttled(const char *ip_text, int *retry_after_s)
{
    int64_t now = lg_now_ms(), window = now / 60000;
    if (atomic_load_explicit(&last_over_window, memory_order_acquire) != window) return false;
    char ip[64];
    client_of(ip_text, ip, sizeof(ip));
    pthread_mutex_lock(&throttle_lock);
    struct throttle_slot *s = throttle_find(ip, window, false);
    bool over =
        s != NULL && s->failures >= atomic_load_explicit(&throttle_limit, memory_order_relaxed);
    pthread_mutex_unlock(&throttle_lock);
    if (over) *retry_after_s = (int)(((window + 1) * 60000 - now + 999) / 1000);
    return over;
}

void lg_auth_failed(const char *ip_text)
{
    char ip[64];
    client_of(ip_text, ip, sizeof(ip));
    int64_t window = lg_now_ms() / 60000;
    pthread_mutex_lock(&throttle_lock);
    struct throttle_slot *s = throttle_find(ip, window, true);
    if (s != NULL &&
        ++s->failures >= atomic_load_explicit(&throttle_limit, memory_order_relaxed))
        atomic_store_explicit(&last_over_window, window, memory_order_release);
    pthread_mutex_unlock(&throttle_lock);
}
