/* The local fallback limiter: when Redis is down or late, a key's requests
 * are decided here, with the same GCRA arithmetic on the monotonic clock.
 *
 * One table for the whole instance, shared by every worker under one mutex,
 * so that one instance never admits more than one key's burst (+ rate x
 * elapsed) during an outage, however its connections spread over workers.
 * Sharing was chosen over dividing burst and rate by the number of workers:
 * SO_REUSEPORT spreads connections by a hash of their addresses, not evenly,
 * so a divided allowance refuses a client whose connections land on one
 * worker long before its burst (and admits nothing when burst < workers).
 * The mutex is taken only on this fallback path, once per decision, never
 * while Redis answers; a decision holds it for a table lookup. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/ratelimit_local.h"
#include "lockgate/util.h"

#define KEY_ID_MAX        64
#define LOCAL_MAX_ENTRIES 100000
#define LOCAL_MIN_SLOTS   1024
#define LOCAL_MAX_SLOTS   262144 /* power of two, >= 2 * LOCAL_MAX_ENTRIES */
#define EVICT_SCAN        64     /* slots looked at when the table is full */
#define SWEEP_STEP        4      /* slots looked at on every local decision */

/* One slot; len 0 marks an empty slot. */
struct rl_entry {
    double tat; /* ms on the monotonic clock */
    uint64_t hash;
    uint8_t len;
    char key[KEY_ID_MAX];
};

/* Open addressing, linear probing, backward-shift delete. */
struct local_table {
    struct rl_entry *slots; /* allocated on the first fallback decision */
    size_t nslots;          /* power of two */
    size_t count;
    size_t sweep; /* cursor of the incremental sweep */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct local_table table;

static uint64_t key_hash(const char *key, size_t len) { return lg_hash(key, len); }

static size_t slot_of(const struct local_table *t, uint64_t hash)
{
    return (size_t)(hash ^ (hash >> 29)) & (t->nslots - 1);
}

static struct rl_entry *local_find(struct local_table *t, const char *key, size_t len,
                                   uint64_t hash)
{
    size_t mask = t->nslots - 1;
    for (size_t i = slot_of(t, hash);; i = (i + 1) & mask) {
        struct rl_entry *e = &t->slots[i];
        if (e->len == 0) return NULL;
        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0) return e;
    }
}

/* Empties slot I and pulls later entries of its probe run back into the hole,
 * so lookups never need tombstones. */
static void local_remove(struct local_table *t, size_t i)
{
    size_t mask = t->nslots - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        struct rl_entry *e = &t->slots[j];
        if (e->len == 0) break;
        size_t home = slot_of(t, e->hash);
        /* E may fill the hole when its home is not cyclically in (hole, j]. */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            t->slots[hole] = *e;
            hole = j;
        }
    }
    t->slots[hole].len = 0;
    t->count--;
}

static void local_put(struct local_table *t, const char *key, size_t len, uint64_t hash, double tat)
{
    size_t mask = t->nslots - 1;
    size_t i = slot_of(t, hash);
    while (t->slots[i].len != 0) i = (i + 1) & mask;
    struct rl_entry *e = &t->slots[i];
    e->tat = tat;
    e->hash = hash;
    e->len = (uint8_t)len;
    memcpy(e->key, key, len);
    t->count++;
}

static int local_grow(struct local_table *t)
{
    size_t n = t->nslots * 2;
    struct rl_entry *slots = calloc(n, sizeof(*slots));
    if (slots == NULL) return -1;
    struct rl_entry *old = t->slots;
    size_t old_n = t->nslots;
    t->slots = slots;
    t->nslots = n;
    t->count = 0;
    t->sweep = 0;
    for (size_t i = 0; i < old_n; i++)
        if (old[i].len != 0) local_put(t, old[i].key, old[i].len, old[i].hash, old[i].tat);
    free(old);
    return 0;
}

/* Looks at up to MAX slots from the sweep cursor and drops entries whose
 * allowance is full again (TAT <= NOW: the same as no entry at all). */
static size_t local_sweep(struct local_table *t, double now, size_t max)
{
    size_t dropped = 0;
    size_t mask = t->nslots - 1;
    for (size_t n = 0; n < max && t->count > 0; n++) {
        size_t i = t->sweep & mask;
        struct rl_entry *e = &t->slots[i];
        if (e->len != 0 && e->tat <= now) {
            local_remove(t, i); /* a later entry may now sit in I: look again */
            dropped++;
            continue;
        }
        t->sweep = (i + 1) & mask;
    }
    return dropped;
}

/* Makes room for one more entry: grow while allowed, else sweep, and when
 * nothing is stale evict the entry closest to a full allowance. */
static void local_make_room(struct local_table *t, double now)
{
    size_t limit = t->nslots >= LOCAL_MAX_SLOTS ? LOCAL_MAX_ENTRIES : t->nslots / 2;
    if (t->count < limit) return;
    if (t->nslots < LOCAL_MAX_SLOTS && local_grow(t) == 0) return;
    if (local_sweep(t, now, EVICT_SCAN) > 0) return;
    size_t mask = t->nslots - 1, victim = SIZE_MAX;
    for (size_t n = 0, i = t->sweep & mask; n < EVICT_SCAN; n++, i = (i + 1) & mask)
        if (t->slots[i].len != 0 && (victim == SIZE_MAX || t->slots[i].tat < t->slots[victim].tat))
            victim = i;
    if (victim == SIZE_MAX) /* the scanned window was empty: take any entry */
        for (size_t i = 0; i < t->nslots && victim == SIZE_MAX; i++)
            if (t->slots[i].len != 0) victim = i;
    if (victim != SIZE_MAX) local_remove(t, victim);
    t->sweep = (t->sweep + EVICT_SCAN) & mask;
}

/* The local table's view without consuming: what is left right now. */
static void table_peek(struct local_table *t, const char *key, size_t len, double rate, int burst,
                       struct lg_ratelimit_result *res)
{
    double now = (double)lg_mono_ms();
    struct rl_entry *e = local_find(t, key, len, key_hash(key, len));
    double new_tat = 0;
    lg_gcra(e != NULL ? e->tat : 0, now, rate, burst, &new_tat, res);
    /* lg_gcra answered for one more request: undo that one. */
    res->remaining = res->allowed ? res->remaining + 1 : 0;
    res->allowed = true;
    res->retry_after_s = 0;
    res->local = true;
}

static void table_decide(struct local_table *t, const char *key, size_t len, double rate, int burst,
                         struct lg_ratelimit_result *res)
{
    double now = (double)lg_mono_ms();
    local_sweep(t, now, SWEEP_STEP);
    uint64_t hash = key_hash(key, len);
    struct rl_entry *e = local_find(t, key, len, hash);
    double new_tat = 0;
    lg_gcra(e != NULL ? e->tat : 0, now, rate, burst, &new_tat, res);
    res->local = true;
    if (!res->allowed) return;
    if (e != NULL) {
        e->tat = new_tat;
        return;
    }
    local_make_room(t, now);
    local_put(t, key, len, hash, new_tat);
}

/* The table, allocated on first use; NULL when memory is short. Under LOCK. */
static struct local_table *table_get(void)
{
    if (table.slots == NULL) {
        table.slots = calloc(LOCAL_MIN_SLOTS, sizeof(*table.slots));
        if (table.slots == NULL) return NULL;
        table.nslots = LOCAL_MIN_SLOTS;
        table.count = table.sweep = 0;
    }
    return &table;
}

typedef void table_step(struct local_table *t, const char *key, size_t len, double rate, int burst,
                        struct lg_ratelimit_result *res);

/* Runs STEP on the table under the lock; an empty or overlong key, or a
 * table that could not be allocated, is refused. */
static void locked(table_step *step, const char *key, size_t len, double rate, int burst,
                   struct lg_ratelimit_result *res)
{
    if (len == 0 || len > KEY_ID_MAX) {
        lg_gcra_refuse(burst, res);
        return;
    }
    pthread_mutex_lock(&lock);
    struct local_table *t = table_get();
    if (t != NULL)
        step(t, key, len, rate, burst, res);
    else
        lg_gcra_refuse(burst, res);
    pthread_mutex_unlock(&lock);
}

void lg_ratelimit_local_decide(const char *key, size_t len, double rate, int burst,
                               struct lg_ratelimit_result *res)
{
    locked(table_decide, key, len, rate, burst, res);
}

void lg_ratelimit_local_peek(const char *key, size_t len, double rate, int burst,
                             struct lg_ratelimit_result *res)
{
    locked(table_peek, key, len, rate, burst, res);
}
