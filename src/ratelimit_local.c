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

#include "lockgate/list.h"
#include "lockgate/ratelimit_local.h"
#include "lockgate/table.h"
#include "lockgate/util.h"

#define KEY_ID_MAX        64
#define LOCAL_MAX_ENTRIES 100000
#define LOCAL_MIN_SLOTS   1024
#define EVICT_SCAN        64 /* entries looked at when the table is full */
#define SWEEP_STEP        4  /* entries looked at on every local decision */

/* One key's state. */
struct rl_entry {
    struct lg_table_node node; /* in the table, by key */
    struct lg_list ring;       /* in the sweep ring */
    double tat;                /* ms on the monotonic clock */
    uint8_t len;
    char key[KEY_ID_MAX];
};

/* The generic table (growing), and every entry once more in a ring that
 * the sweep walks from its front, putting what it keeps at the back, so
 * that each entry is looked at in turn. The table is capped at
 * LOCAL_MAX_ENTRIES: a flood of made-up key ids during an outage must not
 * grow the memory of the instance without bound, so past the cap a new key
 * takes the place of a stale entry, or of the one closest to a full
 * allowance among the next EVICT_SCAN of the ring. */
struct local_table {
    struct lg_table keys; /* allocated on the first fallback decision */
    struct lg_list ring;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct local_table table;

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t hash = lg_hash(key, len);
    return hash ^ (hash >> 29);
}

static struct rl_entry *local_find(struct local_table *t, const char *key, size_t len,
                                   uint64_t hash)
{
    for (struct lg_table_node *n = lg_table_first(&t->keys, hash); n != NULL;
         n = lg_table_next(n)) {
        struct rl_entry *e = LG_CONTAINER_OF(n, struct rl_entry, node);
        if (e->len == len && memcmp(e->key, key, len) == 0) return e;
    }
    return NULL;
}

static void local_remove(struct local_table *t, struct rl_entry *e)
{
    lg_table_remove(&t->keys, &e->node);
    lg_list_remove(&e->ring);
    free(e);
}

/* 0, or -1 when memory is short. */
static int local_put(struct local_table *t, const char *key, size_t len, uint64_t hash, double tat)
{
    struct rl_entry *e = malloc(sizeof(*e));
    if (e == NULL) return -1;
    e->tat = tat;
    e->len = (uint8_t)len;
    memcpy(e->key, key, len);
    lg_table_insert(&t->keys, &e->node, hash);
    lg_list_push_back(&t->ring, &e->ring);
    return 0;
}

/* Looks at up to MAX entries from the ring's front and drops those whose
 * allowance is full again (TAT <= NOW: the same as no entry at all). */
static size_t local_sweep(struct local_table *t, double now, size_t max)
{
    size_t dropped = 0;
    for (size_t n = 0; n < max; n++) {
        struct lg_list *l = lg_list_pop_front(&t->ring);
        if (l == NULL) break;
        struct rl_entry *e = LG_CONTAINER_OF(l, struct rl_entry, ring);
        if (e->tat <= now) {
            lg_table_remove(&t->keys, &e->node);
            free(e);
            dropped++;
        } else {
            lg_list_push_back(&t->ring, l);
        }
    }
    return dropped;
}

/* Makes room for one more entry under the cap: sweep, and when nothing is
 * stale evict the entry closest to a full allowance. */
static void local_make_room(struct local_table *t, double now)
{
    if (lg_table_count(&t->keys) < LOCAL_MAX_ENTRIES) return;
    struct lg_list *first = lg_list_first(&t->ring);
    struct rl_entry *victim = NULL;
    size_t n = 0;
    for (struct lg_list *l = first; l != &t->ring && n < EVICT_SCAN; l = l->next, n++) {
        struct rl_entry *e = LG_CONTAINER_OF(l, struct rl_entry, ring);
        if (victim == NULL || e->tat < victim->tat) victim = e;
    }
    if (local_sweep(t, now, EVICT_SCAN) > 0) return;
    if (victim != NULL) local_remove(t, victim);
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
    if (local_put(t, key, len, hash, new_tat) < 0) lg_gcra_refuse(burst, res);
}

/* The table, allocated on first use; NULL when memory is short. Under LOCK. */
static struct local_table *table_get(void)
{
    if (table.keys.slots == NULL) {
        if (lg_table_init(&table.keys, LOCAL_MIN_SLOTS, true) < 0) return NULL;
        lg_list_init(&table.ring);
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
