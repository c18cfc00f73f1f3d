/* An intrusive hash table: a struct lg_table_node inside each element
 * chains it in its bucket, with the element's hash kept beside the link, so
 * that a lookup compares keys only where the hashes are equal and an insert
 * allocates nothing. The table knows no keys: the caller hashes (lg_hash)
 * and compares, walking the nodes of one hash with lg_table_first/_next. A
 * table either grows (doubling, once it holds more elements than buckets) or
 * keeps the size it was made with, for memory that must stay bounded. */
#ifndef LG_TABLE_H
#define LG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_table_node {
    struct lg_table_node *next;
    uint64_t hash;
};

struct lg_table {
    struct lg_table_node **slots;
    size_t mask; /* buckets - 1; the number of buckets is a power of two */
    size_t count;
    bool grows;
};

/* Makes T empty with NSLOTS buckets (rounded up to a power of two, at least
 * 1); GROWS: doubles as it fills. 0, or -1 on OOM. */
int lg_table_init(struct lg_table *t, size_t nslots, bool grows);
/* Frees T's buckets; its elements are the caller's (lg_table_clear first). */
void lg_table_free(struct lg_table *t);

/* The first node of T with HASH, or NULL; then lg_table_next for the rest. */
static inline struct lg_table_node *lg_table_first(const struct lg_table *t, uint64_t hash)
{
    struct lg_table_node *n = t->slots[hash & t->mask];
    while (n != NULL && n->hash != hash) n = n->next;
    return n;
}

static inline struct lg_table_node *lg_table_next(const struct lg_table_node *n)
{
    uint64_t hash = n->hash;
    for (n = n->next; n != NULL && n->hash != hash; n = n->next) {
    }
    return (struct lg_table_node *)n;
}

/* Adds N (in no table) under HASH. Keys are the caller's: an element with
 * an equal key already there is not replaced (remove it first). */
void lg_table_insert(struct lg_table *t, struct lg_table_node *n, uint64_t hash);
/* Takes N (in T) out of T. */
void lg_table_remove(struct lg_table *t, struct lg_table_node *n);
static inline size_t lg_table_count(const struct lg_table *t) { return t->count; }

/* Calls FN on every node of T, in no particular order; FN may remove (and
 * free) the node it is given, and no other. */
void lg_table_each(struct lg_table *t, void (*fn)(struct lg_table_node *n, void *arg), void *arg);

#endif
