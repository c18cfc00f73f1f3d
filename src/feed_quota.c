/* Open feed streams per feed key, counted for the whole instance ([feed]
 * max_streams_per_key): a hash table (table.h) of key id -> open streams under
 * one mutex, taken once when a stream opens and once when it ends, never
 * per event. A key leaves the table with its last stream. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_internal.h"
#include "lockgate/list.h"
#include "lockgate/table.h"
#include "lockgate/util.h"

#define BUCKETS 256 /* feed keys are few */

struct quota {
    struct lg_table_node node;
    int open;
    char key_id[FEED_KEY_ID_MAX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct lg_table_node *buckets[BUCKETS];
static struct lg_table table = {buckets, BUCKETS - 1, 0, false};

static uint64_t key_hash(const char *key_id) { return lg_hash(key_id, strlen(key_id)); }

/* KEY_ID's entry, or NULL. */
static struct quota *quota_find(const char *key_id)
{
    for (struct lg_table_node *n = lg_table_first(&table, key_hash(key_id)); n != NULL;
         n = lg_table_next(n)) {
        struct quota *q = LG_CONTAINER_OF(n, struct quota, node);
        if (strcmp(q->key_id, key_id) == 0) return q;
    }
    return NULL;
}

/* A new entry for KEY_ID (none yet), or NULL when memory is short. */
static struct quota *quota_add(const char *key_id)
{
    struct quota *q = calloc(1, sizeof(*q));
    if (q == NULL) return NULL;
    snprintf(q->key_id, sizeof(q->key_id), "%s", key_id);
    lg_table_insert(&table, &q->node, key_hash(q->key_id));
    return q;
}

static void quota_drop(struct quota *q)
{
    lg_table_remove(&table, &q->node);
    free(q);
}

bool lg_feed_quota_take(const char *key_id, int max)
{
    if (strlen(key_id) >= FEED_KEY_ID_MAX) return false;
    bool ok = false;
    pthread_mutex_lock(&lock);
    struct quota *q = quota_find(key_id);
    if (q == NULL) q = quota_add(key_id);
    if (q != NULL && q->open < max) {
        q->open++;
        ok = true;
    } else if (q != NULL && q->open == 0) {
        quota_drop(q); /* MAX is 0 or less */
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

void lg_feed_quota_give(const char *key_id)
{
    pthread_mutex_lock(&lock);
    struct quota *q = quota_find(key_id);
    if (q != NULL && --q->open <= 0) quota_drop(q);
    pthread_mutex_unlock(&lock);
}
