/* Open feed streams per feed key, counted for the whole instance ([feed]
 * max_streams_per_key): a small chained hash of key id -> open streams under
 * one mutex, taken once when a stream opens and once when it ends, never
 * per event. A key leaves the table with its last stream. The table is
 * reached only through quota_find, quota_add and quota_drop, so it can move
 * onto another table implementation without touching the rest. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_internal.h"
#include "lockgate/util.h"

#define BUCKETS 256 /* a power of two; feed keys are few */

struct quota {
    struct quota *next;
    int open;
    char key_id[FEED_KEY_ID_MAX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct quota *table[BUCKETS];

/* The link that holds KEY_ID's entry, or the NULL link at its chain's end. */
static struct quota **quota_find(const char *key_id)
{
    struct quota **q = &table[lg_hash(key_id, strlen(key_id)) & (BUCKETS - 1)];
    while (*q != NULL && strcmp((*q)->key_id, key_id) != 0) q = &(*q)->next;
    return q;
}

/* A new entry at the NULL link AT, or NULL when memory is short. */
static struct quota *quota_add(struct quota **at, const char *key_id)
{
    struct quota *n = calloc(1, sizeof(*n));
    if (n == NULL) return NULL;
    snprintf(n->key_id, sizeof(n->key_id), "%s", key_id);
    *at = n;
    return n;
}

static void quota_drop(struct quota **at)
{
    struct quota *dead = *at;
    *at = dead->next;
    free(dead);
}

bool lg_feed_quota_take(const char *key_id, int max)
{
    if (strlen(key_id) >= FEED_KEY_ID_MAX) return false;
    bool ok = false;
    pthread_mutex_lock(&lock);
    struct quota **at = quota_find(key_id);
    struct quota *q = *at != NULL ? *at : quota_add(at, key_id);
    if (q != NULL && q->open < max) {
        q->open++;
        ok = true;
    } else if (q != NULL && q->open == 0) {
        quota_drop(at); /* MAX is 0 or less */
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

void lg_feed_quota_give(const char *key_id)
{
    pthread_mutex_lock(&lock);
    struct quota **at = quota_find(key_id);
    if (*at != NULL && --(*at)->open <= 0) quota_drop(at);
    pthread_mutex_unlock(&lock);
}
