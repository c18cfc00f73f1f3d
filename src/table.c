/* The intrusive hash table of table.h: chained buckets, doubled in place of
 * a rehash per insert, never shrunk. */
#include <stdlib.h>

#include "lockgate/table.h"

int lg_table_init(struct lg_table *t, size_t nslots, bool grows)
{
    size_t n = 1;
    while (n < nslots) n *= 2;
    t->slots = calloc(n, sizeof(*t->slots));
    t->mask = n - 1;
    t->count = 0;
    t->grows = grows;
    return t->slots != NULL ? 0 : -1;
}

void lg_table_free(struct lg_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->mask = 0;
    t->count = 0;
}

/* Out of memory, the table keeps working with longer chains. */
static void grow(struct lg_table *t)
{
    size_t n = (t->mask + 1) * 2;
    struct lg_table_node **slots = calloc(n, sizeof(*slots));
    if (slots == NULL) return;
    for (size_t i = 0; i <= t->mask; i++) {
        struct lg_table_node *e = t->slots[i];
        while (e != NULL) {
            struct lg_table_node *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->mask = n - 1;
}

void lg_table_insert(struct lg_table *t, struct lg_table_node *n, uint64_t hash)
{
    struct lg_table_node **slot = &t->slots[hash & t->mask];
    n->hash = hash;
    n->next = *slot;
    *slot = n;
    if (++t->count > t->mask + 1 && t->grows) grow(t);
}

void lg_table_remove(struct lg_table *t, struct lg_table_node *n)
{
    for (struct lg_table_node **pp = &t->slots[n->hash & t->mask]; *pp != NULL; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            t->count--;
            return;
        }
}

void lg_table_each(struct lg_table *t, void (*fn)(struct lg_table_node *n, void *arg), void *arg)
{
    for (size_t i = 0; i <= t->mask; i++) {
        struct lg_table_node *e = t->slots[i];
        while (e != NULL) {
            struct lg_table_node *next = e->next; /* FN may free E */
            fn(e, arg);
            e = next;
        }
    }
}
