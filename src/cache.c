/* The per-worker caches of keys and facilities: two string-keyed hash tables,
 * the scope and allowlist decisions made on their entries, the epochs and
 * flags that say how far the cache may be trusted, and the two reads of
 * facilities from Redis with their parsers. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "lockgate/cache.h"
#include "lockgate/config.h"
#include "lockgate/schema.h"
#include "lockgate/util.h"

struct entry {
    struct entry *next;
    uint64_t hash;
    const char *name; /* points into the value */
    void *value;
};

struct map {
    struct entry **slots;
    size_t nslots; /* power of two */
    size_t count;
};

/* The facilities of one account, for GET /v1/facilities: a key only ever
 * sees its own account's, so the answer never scans the whole deployment. */
struct account_facilities {
    char account_id[72];
    const struct lg_facility **items; /* borrowed from the facilities map */
    size_t n, cap;
};

struct lg_cache {
    struct map keys;
    struct map facilities;
    struct map accounts; /* account id -> struct account_facilities */
    uint64_t key_epoch;
    uint64_t facilities_epoch;
    uint64_t facilities_version; /* moves with every change of the facility table */
    enum lg_cache_trust trust;
    bool facilities_loaded;
};

static uint64_t fnv1a(const char *s) { return lg_hash(s, strlen(s)); }

static int map_init(struct map *m)
{
    m->nslots = 64;
    m->count = 0;
    m->slots = calloc(m->nslots, sizeof(*m->slots));
    return m->slots ? 0 : -1;
}

static struct entry **map_find(struct map *m, const char *name, uint64_t h)
{
    struct entry **pp = &m->slots[h & (m->nslots - 1)];
    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->hash == h && strcmp((*pp)->name, name) == 0) return pp;
    return pp;
}

static void map_grow(struct map *m)
{
    size_t n = m->nslots * 2;
    struct entry **slots = calloc(n, sizeof(*slots));
    if (slots == NULL) return; /* keep working with longer chains */
    for (size_t i = 0; i < m->nslots; i++) {
        struct entry *e = m->slots[i];
        while (e != NULL) {
            struct entry *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

/* Inserts VALUE under NAME; returns the value it replaced (or NULL). -1 cast on OOM. */
static int map_put(struct map *m, const char *name, void *value, void **old)
{
    uint64_t h = fnv1a(name);
    struct entry **pp = map_find(m, name, h);
    *old = NULL;
    if (*pp != NULL) {
        *old = (*pp)->value;
        (*pp)->value = value;
        (*pp)->name = name;
        return 0;
    }
    struct entry *e = malloc(sizeof(*e));
    if (e == NULL) return -1;
    e->next = NULL;
    e->hash = h;
    e->name = name;
    e->value = value;
    *pp = e;
    if (++m->count > m->nslots) map_grow(m);
    return 0;
}

static void *map_get(struct map *m, const char *name)
{
    struct entry **pp = map_find(m, name, fnv1a(name));
    return *pp ? (*pp)->value : NULL;
}

static void *map_del(struct map *m, const char *name)
{
    struct entry **pp = map_find(m, name, fnv1a(name));
    if (*pp == NULL) return NULL;
    struct entry *e = *pp;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

static void map_clear(struct map *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct entry *e = m->slots[i];
        while (e != NULL) {
            struct entry *next = e->next;
            free_value(e->value);
            free(e);
            e = next;
        }
        m->slots[i] = NULL;
    }
    m->count = 0;
}

static void key_release(void *v) { lg_key_unref(v); }

static void facility_free(void *v)
{
    struct lg_facility *f = v;
    free(f->name);
    free(f);
}

static void account_free(void *v)
{
    struct account_facilities *a = v;
    free(a->items);
    free(a);
}

/* Adds F to its account's list. -1 on OOM (F then stays out of listings). */
static int account_add(struct lg_cache *c, const struct lg_facility *f)
{
    struct account_facilities *a = map_get(&c->accounts, f->account_id);
    if (a == NULL) {
        void *old;
        if ((a = calloc(1, sizeof(*a))) == NULL) return -1;
        snprintf(a->account_id, sizeof(a->account_id), "%s", f->account_id);
        if (map_put(&c->accounts, a->account_id, a, &old) < 0) {
            free(a);
            return -1;
        }
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
    struct account_facilities *a = map_get(&c->accounts, f->account_id);
    if (a == NULL) return;
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i] == f) {
            a->items[i] = a->items[--a->n];
            break;
        }
    if (a->n == 0) account_free(map_del(&c->accounts, f->account_id));
}

struct lg_cache *lg_cache_new(void)
{
    struct lg_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    if (map_init(&c->keys) < 0 || map_init(&c->facilities) < 0 || map_init(&c->accounts) < 0) {
        lg_cache_free(c);
        return NULL;
    }
    return c;
}

void lg_cache_free(struct lg_cache *c)
{
    if (c == NULL) return;
    if (c->keys.slots) map_clear(&c->keys, key_release);
    if (c->facilities.slots) map_clear(&c->facilities, facility_free);
    if (c->accounts.slots) map_clear(&c->accounts, account_free);
    free(c->keys.slots);
    free(c->facilities.slots);
    free(c->accounts.slots);
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

static int copy_field(const redisReply *v, char *out, size_t cap)
{
    if (v->type != REDIS_REPLY_STRING || v->len >= cap) return -1;
    memcpy(out, v->str, v->len);
    out[v->len] = '\0';
    return 0;
}

struct lg_key *lg_key_from_reply(const char *key_id, const redisReply *hash,
                                 const redisReply *members, const struct lg_config *cfg)
{
    if (hash == NULL || hash->type != REDIS_REPLY_ARRAY || hash->elements == 0 ||
        hash->elements % 2 != 0)
        return NULL;
    struct lg_key *k = calloc(1, sizeof(*k));
    if (k == NULL) return NULL;
    k->refs = 1;
    k->rate_per_sec = cfg->rate_per_sec;
    k->burst = cfg->burst;
    bool have_verifier = false;
    snprintf(k->key_id, sizeof(k->key_id), "%s", key_id);
    char buf[2048];
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        const redisReply *f = hash->element[i], *v = hash->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) goto err;
        const char *name = f->str;
        if (strcmp(name, "account_id") == 0) {
            if (copy_field(v, k->account_id, sizeof(k->account_id)) < 0) goto err;
        } else if (strcmp(name, "role") == 0) {
            k->feed = strcmp(v->str, LG_ROLE_FEED) == 0;
        } else if (strcmp(name, "status") == 0) {
            k->disabled = strcmp(v->str, "active") != 0;
        } else if (strcmp(name, "all_facilities") == 0) {
            k->all_facilities = strcmp(v->str, "1") == 0;
        } else if (strcmp(name, "verifier") == 0) {
            if (copy_field(v, k->verifier, sizeof(k->verifier)) < 0) goto err;
            have_verifier = v->len == LG_VERIFIER_LEN;
        } else if (strcmp(name, "rate_per_sec") == 0 && v->len > 0) {
            double r = strtod(v->str, NULL);
            if (r > 0) k->rate_per_sec = r;
        } else if (strcmp(name, "burst") == 0 && v->len > 0) {
            int b = atoi(v->str);
            if (b > 0) k->burst = b;
        } else if (strcmp(name, "expires_at") == 0 && v->len > 0) {
            /* An unreadable expiry must not mean "never": treat it as expired. */
            if (lg_time_parse(v->str, &k->expires_at_ms) < 0) k->expires_at_ms = 1;
        } else if (strcmp(name, "allowed_cidrs") == 0 && v->len > 0) {
            if (copy_field(v, buf, sizeof(buf)) < 0) goto err;
            char *save = NULL;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (k->ncidrs == LG_MAX_CIDRS || lg_cidr_parse(t, &k->cidrs[k->ncidrs]) < 0)
                    goto err; /* an allowlist we cannot read must not open the key */
                k->ncidrs++;
            }
        }
    }
    if (!have_verifier) goto err;
    snprintf(k->hdr_account, sizeof(k->hdr_account), "X-Lockgate-Account: %s", k->account_id);
    snprintf(k->hdr_key, sizeof(k->hdr_key), "X-Lockgate-Key: %s", k->key_id);
    if (members != NULL && members->type == REDIS_REPLY_ARRAY && members->elements > 0) {
        k->facilities = calloc(members->elements, sizeof(*k->facilities));
        if (k->facilities == NULL) goto err;
        for (size_t i = 0; i < members->elements; i++) {
            if (copy_field(members->element[i], k->facilities[k->nfacilities],
                           sizeof(*k->facilities)) == 0)
                k->nfacilities++;
        }
        qsort(k->facilities, (size_t)k->nfacilities, sizeof(*k->facilities), cmp_fac);
    }
    return k;
err:
    lg_key_unref(k);
    return NULL;
}

struct lg_key *lg_cache_key_get(struct lg_cache *c, const char *key_id)
{
    return map_get(&c->keys, key_id);
}

void lg_cache_key_put(struct lg_cache *c, struct lg_key *k)
{
    void *old = NULL;
    if (map_put(&c->keys, k->key_id, k, &old) < 0) {
        lg_key_unref(k);
        return;
    }
    if (old != NULL) lg_key_unref(old);
}

void lg_cache_key_drop(struct lg_cache *c, const char *key_id)
{
    c->key_epoch++;
    struct lg_key *k = map_del(&c->keys, key_id);
    if (k != NULL) lg_key_unref(k);
}

void lg_cache_keys_flush(struct lg_cache *c)
{
    c->key_epoch++;
    map_clear(&c->keys, key_release);
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
    return map_get(&c->facilities, id);
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
    void *old = NULL;
    c->facilities_version++;
    if (f->name == NULL || map_put(&c->facilities, f->id, f, &old) < 0) {
        facility_free(f);
        return -1;
    }
    if (old != NULL) {
        account_remove(c, old);
        facility_free(old);
    }
    account_add(c, f);
    return 0;
}

void lg_cache_facility_drop(struct lg_cache *c, const char *id)
{
    struct lg_facility *f = map_del(&c->facilities, id);
    c->facilities_version++;
    if (f == NULL) return;
    account_remove(c, f);
    facility_free(f);
}

uint64_t lg_cache_facilities_version(const struct lg_cache *c) { return c->facilities_version; }

void lg_cache_facilities_flush(struct lg_cache *c)
{
    c->facilities_version++;
    map_clear(&c->accounts, account_free);
    map_clear(&c->facilities, facility_free);
}
int lg_cache_facility_count(const struct lg_cache *c) { return (int)c->facilities.count; }

static void put_loaded(const struct lg_facility *f, void *arg)
{
    lg_cache_facility_put(arg, f->id, f->account_id, f->name, f->included);
}

int lg_cache_facilities_replace(struct lg_cache *c, const redisReply *reply)
{
    if (lg_facilities_each(reply, NULL, NULL) < 0) return -1;
    lg_cache_facilities_flush(c);
    lg_facilities_each(reply, put_loaded, c);
    return 0;
}

/* ---- reading facilities from Redis ---- */

static struct lg_script facilities_load = {
    .name = "facilities_load",
    .source =
        "local ids = redis.call('SMEMBERS', KEYS[1])\n"
        "local out = {}\n"
        "for _, id in ipairs(ids) do\n"
        "  local f = redis.call('HMGET', ARGV[1] .. 'fac:' .. id, 'account_id', 'name', "
        "'included')\n"
        "  if f[1] then\n"
        "    out[#out+1] = id; out[#out+1] = f[1]; out[#out+1] = f[2] or ''; out[#out+1] = f[3] or "
        "'1'\n"
        "  end\n"
        "end\n"
        "return out\n",
};

int lg_cache_read_facilities(struct lg_store *st, const char *set, lg_store_cb *cb, void *arg)
{
    const char *argv[] = {set, lg_store_prefix(st)};
    return lg_store_script(st, &facilities_load, cb, arg, 1, 2, argv, NULL);
}

int lg_cache_read_facility(struct lg_store *st, const char *id, lg_store_cb *cb, void *arg)
{
    char key[128];
    snprintf(key, sizeof(key), "%sfac:%s", lg_store_prefix(st), id);
    const char *argv[] = {"HMGET", key, "account_id", "name", "included"};
    return lg_store_argv(st, cb, arg, 5, argv, NULL);
}

static bool str_reply(const redisReply *r) { return r != NULL && r->type == REDIS_REPLY_STRING; }

/* F from its fields, NAME borrowed (a facility handed out by a read is never
 * written through); false when an id does not fit (such an entry is skipped). */
static bool facility_set(struct lg_facility *f, const char *id, const char *account_id,
                         const char *name, bool included)
{
    if (strlen(id) >= sizeof(f->id) || strlen(account_id) >= sizeof(f->account_id)) return false;
    memcpy(f->id, id, strlen(id) + 1);
    memcpy(f->account_id, account_id, strlen(account_id) + 1);
    f->name = (char *)name;
    f->included = included;
    return true;
}

int lg_facilities_each(const redisReply *reply, lg_facility_fn *fn, void *arg)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements % 4 != 0) return -1;
    for (size_t i = 0; fn != NULL && i + 3 < reply->elements; i += 4) {
        redisReply **e = reply->element + i;
        struct lg_facility f;
        if (str_reply(e[0]) && str_reply(e[1]) && str_reply(e[2]) && str_reply(e[3]) &&
            facility_set(&f, e[0]->str, e[1]->str, e[2]->str, strcmp(e[3]->str, "1") == 0))
            fn(&f, arg);
    }
    return 0;
}

int lg_facility_from_reply(const char *id, const redisReply *reply, struct lg_facility *out)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return -1;
    redisReply **e = reply->element;
    if (!str_reply(e[0])) return 0; /* no such facility (deleted) */
    bool included = !str_reply(e[2]) || strcmp(e[2]->str, "1") == 0;
    if (!facility_set(out, id, e[0]->str, str_reply(e[1]) ? e[1]->str : "", included)) return -1;
    return 1;
}

size_t lg_cache_account_facilities(struct lg_cache *c, const char *account_id,
                                   const struct lg_facility *const **out)
{
    struct account_facilities *a = map_get(&c->accounts, account_id);
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
