/* The per-worker caches of keys and facilities: string-keyed hash tables (table.h),
 * the scope and allowlist decisions made on their entries, the epochs and
 * flags that say how far the cache may be trusted, and the building of keys
 * and facilities from their stored fields (store_read.c reads them). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "lockgate/cache.h"
#include "lockgate/config.h"
#include "lockgate/list.h"
#include "lockgate/schema.h"
#include "lockgate/util.h"

/* The facilities of one account, for GET /v1/facilities: a key only ever
 * sees its own account's, so the answer never scans the whole deployment. */
struct account_facilities {
    char account_id[72];
    struct lg_table_node node;        /* in the accounts table */
    const struct lg_facility **items; /* borrowed from the facilities map */
    size_t n, cap;
};

struct lg_cache {
    struct lg_table keys;       /* struct lg_key by key_id */
    struct lg_table facilities; /* struct lg_facility by id */
    struct lg_table accounts;   /* struct account_facilities by account_id */
    uint64_t key_epoch;
    uint64_t facilities_epoch;
    uint64_t facilities_version; /* moves with every change of the facility table */
    enum lg_cache_trust trust;
    bool facilities_loaded;
};

static uint64_t name_hash(const char *s) { return lg_hash(s, strlen(s)); }

/* The element of T named NAME, or NULL. Every element of the three tables
 * keeps its name as a string at NAME_OFF and its node at NODE_OFF. */
static void *find(const struct lg_table *t, const char *name, size_t node_off, size_t name_off)
{
    for (struct lg_table_node *n = lg_table_first(t, name_hash(name)); n != NULL;
         n = lg_table_next(n)) {
        char *e = (char *)n - node_off;
        if (strcmp(e + name_off, name) == 0) return e;
    }
    return NULL;
}
#define FIND(t, name, type, field) \
    ((type *)find(t, name, offsetof(type, node), offsetof(type, field)))

static void insert(struct lg_table *t, struct lg_table_node *n, const char *name)
{
    lg_table_insert(t, n, name_hash(name));
}

static void facility_free(struct lg_facility *f)
{
    free(f->name);
    free(f);
}

static void account_free(struct account_facilities *a)
{
    free(a->items);
    free(a);
}

/* lg_table_each callbacks that empty a table, ARG being it. */
static void key_clear(struct lg_table_node *n, void *arg)
{
    lg_table_remove(arg, n);
    lg_key_unref(LG_CONTAINER_OF(n, struct lg_key, node));
}

static void facility_clear(struct lg_table_node *n, void *arg)
{
    lg_table_remove(arg, n);
    facility_free(LG_CONTAINER_OF(n, struct lg_facility, node));
}

static void account_clear(struct lg_table_node *n, void *arg)
{
    lg_table_remove(arg, n);
    account_free(LG_CONTAINER_OF(n, struct account_facilities, node));
}

/* Adds F to its account's list. -1 on OOM (F then stays out of listings). */
static int account_add(struct lg_cache *c, const struct lg_facility *f)
{
    struct account_facilities *a =
        FIND(&c->accounts, f->account_id, struct account_facilities, account_id);
    if (a == NULL) {
        if ((a = calloc(1, sizeof(*a))) == NULL) return -1;
        snprintf(a->account_id, sizeof(a->account_id), "%s", f->account_id);
        insert(&c->accounts, &a->node, a->account_id);
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        const struct lg_facility **items = realloc(a->items, cap * sizeof(*items));
        if (items == NULL) return -1;
        a->items = items;
        a->cap = cap;
    }
    a->items[a->n++] = f;
    return 0;
}

static void account_remove(struct lg_cache *c, const struct lg_facility *f)
{
    struct account_facilities *a =
        FIND(&c->accounts, f->account_id, struct account_facilities, account_id);
    if (a == NULL) return;
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i] == f) {
            a->items[i] = a->items[--a->n];
            break;
        }
    if (a->n == 0) {
        lg_table_remove(&c->accounts, &a->node);
        account_free(a);
    }
}

struct lg_cache *lg_cache_new(void)
{
    struct lg_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    if (lg_table_init(&c->keys, 64, true) < 0 || lg_table_init(&c->facilities, 64, true) < 0 ||
        lg_table_init(&c->accounts, 64, true) < 0) {
        lg_cache_free(c);
        return NULL;
    }
    return c;
}

void lg_cache_free(struct lg_cache *c)
{
    if (c == NULL) return;
    if (c->keys.slots) lg_table_each(&c->keys, key_clear, &c->keys);
    if (c->facilities.slots) lg_table_each(&c->facilities, facility_clear, &c->facilities);
    if (c->accounts.slots) lg_table_each(&c->accounts, account_clear, &c->accounts);
    lg_table_free(&c->keys);
    lg_table_free(&c->facilities);
    lg_table_free(&c->accounts);
    free(c);
}

void lg_key_ref(struct lg_key *k) { k->refs++; }

void lg_key_unref(struct lg_key *k)
{
    if (k == NULL || --k->refs > 0) return;
    free(k->facilities);
    free(k->list_body);
    /* the verifier and the digest of the secret that matched it */
    OPENSSL_cleanse(k->verifier, sizeof(k->verifier));
    OPENSSL_cleanse(k->verified, sizeof(k->verified));
    free(k);
}

static int cmp_fac(const void *a, const void *b) { return strcmp(a, b); }

static int copy_text(const char *v, size_t len, char *out, size_t cap)
{
    if (len >= cap) return -1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

struct lg_key *lg_key_new(const char *key_id, const struct lg_config *cfg)
{
    struct lg_key *k = calloc(1, sizeof(*k));
    if (k == NULL) return NULL;
    k->refs = 1;
    k->rate_per_sec = cfg->rate_per_sec;
    k->burst = cfg->burst;
    snprintf(k->key_id, sizeof(k->key_id), "%s", key_id);
    return k;
}

int lg_key_field(struct lg_key *k, const char *name, const char *v, size_t len)
{
    char buf[2048];
    if (strcmp(name, "account_id") == 0) {
        if (copy_text(v, len, k->account_id, sizeof(k->account_id)) < 0) return -1;
    } else if (strcmp(name, "role") == 0) {
        k->feed = strcmp(v, LG_ROLE_FEED) == 0;
    } else if (strcmp(name, "status") == 0) {
        k->disabled = strcmp(v, "active") != 0;
    } else if (strcmp(name, "all_facilities") == 0) {
        k->all_facilities = strcmp(v, "1") == 0;
    } else if (strcmp(name, "verifier") == 0) {
        if (copy_text(v, len, k->verifier, sizeof(k->verifier)) < 0) return -1;
    } else if (strcmp(name, "rate_per_sec") == 0 && len > 0) {
        double r = strtod(v, NULL);
        if (r > 0) k->rate_per_sec = r;
    } else if (strcmp(name, "burst") == 0 && len > 0) {
        int b = atoi(v);
        if (b > 0) k->burst = b;
    } else if (strcmp(name, "expires_at") == 0 && len > 0) {
        /* An unreadable expiry must not mean "never": treat it as expired. */
        if (lg_time_parse(v, &k->expires_at_ms) < 0) k->expires_at_ms = 1;
    } else if (strcmp(name, "allowed_cidrs") == 0 && len > 0) {
        if (copy_text(v, len, buf, sizeof(buf)) < 0) return -1;
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (k->ncidrs == LG_MAX_CIDRS || lg_cidr_parse(t, &k->cidrs[k->ncidrs]) < 0)
                return -1; /* an allowlist we cannot read must not open the key */
            k->ncidrs++;
        }
    }
    return 0;
}

int lg_key_scope_reserve(struct lg_key *k, size_t n)
{
    if (n == 0) return 0;
    char(*f)[72] = realloc(k->facilities, ((size_t)k->nfacilities + n) * sizeof(*f));
    if (f == NULL) return -1;
    k->facilities = f;
    k->scope_cap = k->nfacilities + (int)n;
    return 0;
}

void lg_key_scope_add(struct lg_key *k, const char *id, size_t len)
{
    if (k->nfacilities < k->scope_cap &&
        copy_text(id, len, k->facilities[k->nfacilities], sizeof(*k->facilities)) == 0)
        k->nfacilities++;
}

int lg_key_done(struct lg_key *k)
{
    if (strlen(k->verifier) != LG_VERIFIER_LEN) return -1;
    snprintf(k->hdr_account, sizeof(k->hdr_account), "X-Lockgate-Account: %s", k->account_id);
    snprintf(k->hdr_key, sizeof(k->hdr_key), "X-Lockgate-Key: %s", k->key_id);
    if (k->nfacilities > 0)
        qsort(k->facilities, (size_t)k->nfacilities, sizeof(*k->facilities), cmp_fac);
    return 0;
}

struct lg_key *lg_cache_key_get(struct lg_cache *c, const char *key_id)
{
    return FIND(&c->keys, key_id, struct lg_key, key_id);
}

/* Takes K (in the table) out, dropping the table's reference. */
static void key_remove(struct lg_cache *c, struct lg_key *k)
{
    lg_table_remove(&c->keys, &k->node);
    lg_key_unref(k);
}

void lg_cache_key_put(struct lg_cache *c, struct lg_key *k)
{
    struct lg_key *old = lg_cache_key_get(c, k->key_id);
    if (old != NULL) key_remove(c, old);
    insert(&c->keys, &k->node, k->key_id);
}

void lg_cache_key_drop(struct lg_cache *c, const char *key_id)
{
    c->key_epoch++;
    struct lg_key *k = lg_cache_key_get(c, key_id);
    if (k != NULL) key_remove(c, k);
}

void lg_cache_keys_flush(struct lg_cache *c)
{
    c->key_epoch++;
    lg_table_each(&c->keys, key_clear, &c->keys);
}

uint64_t lg_cache_key_epoch(const struct lg_cache *c) { return c->key_epoch; }

void lg_cache_set_trust(struct lg_cache *c, enum lg_cache_trust trust)
{
    c->key_epoch++;
    c->facilities_epoch++;
    c->trust = trust;
}

enum lg_cache_trust lg_cache_trust(const struct lg_cache *c) { return c->trust; }

bool lg_cache_answers(const struct lg_cache *c, bool redis_up)
{
    return c->trust == LG_CACHE_EXACT || (c->trust == LG_CACHE_FALLBACK && !redis_up);
}

uint64_t lg_cache_facilities_epoch(const struct lg_cache *c) { return c->facilities_epoch; }

void lg_cache_set_facilities_loaded(struct lg_cache *c, bool loaded)
{
    c->facilities_loaded = loaded;
}

bool lg_cache_facilities_loaded(const struct lg_cache *c) { return c->facilities_loaded; }

const struct lg_facility *lg_cache_facility_get(struct lg_cache *c, const char *id)
{
    return FIND(&c->facilities, id, struct lg_facility, id);
}

/* Takes F (in the table) out of the table and its account's list, and frees it. */
static void facility_remove(struct lg_cache *c, struct lg_facility *f)
{
    lg_table_remove(&c->facilities, &f->node);
    account_remove(c, f);
    facility_free(f);
}

int lg_cache_facility_put(struct lg_cache *c, const char *id, const char *account_id,
                          const char *name, bool included)
{
    struct lg_facility *f = calloc(1, sizeof(*f));
    if (f == NULL) return -1;
    snprintf(f->id, sizeof(f->id), "%s", id);
    snprintf(f->account_id, sizeof(f->account_id), "%s", account_id);
    f->name = strdup(name);
    f->included = included;
    c->facilities_version++;
    if (f->name == NULL) {
        facility_free(f);
        return -1;
    }
    struct lg_facility *old = FIND(&c->facilities, f->id, struct lg_facility, id);
    if (old != NULL) facility_remove(c, old);
    insert(&c->facilities, &f->node, f->id);
    account_add(c, f);
    return 0;
}

void lg_cache_facility_drop(struct lg_cache *c, const char *id)
{
    struct lg_facility *f = FIND(&c->facilities, id, struct lg_facility, id);
    c->facilities_version++;
    if (f != NULL) facility_remove(c, f);
}

uint64_t lg_cache_facilities_version(const struct lg_cache *c) { return c->facilities_version; }

void lg_cache_facilities_flush(struct lg_cache *c)
{
    c->facilities_version++;
    lg_table_each(&c->accounts, account_clear, &c->accounts);
    lg_table_each(&c->facilities, facility_clear, &c->facilities);
}

int lg_cache_facility_count(const struct lg_cache *c)
{
    return (int)lg_table_count(&c->facilities);
}

bool lg_facility_included(const char *included)
{
    return strcmp(included != NULL ? included : LG_FACILITY_INCLUDED_ABSENT, "1") == 0;
}

int lg_facility_parse(struct lg_facility *out, const char *id, const char *account_id,
                      const char *name, const char *included)
{
    if (name == NULL) name = "";
    if (strlen(id) >= sizeof(out->id) ||
        (account_id != NULL && strlen(account_id) >= sizeof(out->account_id)))
        return -1;
    memcpy(out->id, id, strlen(id) + 1);
    snprintf(out->account_id, sizeof(out->account_id), "%s", account_id ? account_id : "");
    out->name = (char *)name;
    out->included = lg_facility_included(included);
    return account_id != NULL ? 1 : 0;
}

size_t lg_cache_account_facilities(struct lg_cache *c, const char *account_id,
                                   const struct lg_facility *const **out)
{
    struct account_facilities *a =
        FIND(&c->accounts, account_id, struct account_facilities, account_id);
    *out = a ? a->items : NULL;
    return a ? a->n : 0;
}

bool lg_key_sees(const struct lg_key *k, const struct lg_facility *f)
{
    if (f == NULL || k->feed || !f->included) return false;
    if (k->account_id[0] == '\0' || strcmp(k->account_id, f->account_id) != 0) return false;
    if (k->all_facilities) return true;
    return bsearch(f->id, k->facilities, (size_t)k->nfacilities, sizeof(*k->facilities), cmp_fac) !=
           NULL;
}

int lg_cidr_parse(const char *s, struct lg_cidr *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(buf)) return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->bits = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->bits = 128;
    } else {
        return -1;
    }
    if (slash != NULL) {
        const char *d = slash + 1;
        size_t nd = strspn(d, "0123456789");
        if (nd == 0 || nd > 3 || d[nd] != '\0' || atoi(d) > out->bits) return -1;
        out->bits = atoi(d);
    }
    return 0;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes) != 0) return false;
    if (rest == 0) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool lg_key_ip_allowed(const struct lg_key *k, const char *ip)
{
    if (k->ncidrs == 0) return true;
    unsigned char addr[16];
    int family;
    if (inet_pton(AF_INET, ip, addr) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, ip, addr) == 1)
        family = AF_INET6;
    else
        return false;
    for (int i = 0; i < k->ncidrs; i++)
        if (k->cidrs[i].family == family && prefix_match(addr, k->cidrs[i].addr, k->cidrs[i].bits))
            return true;
    return false;
}
