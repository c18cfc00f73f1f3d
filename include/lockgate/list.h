/* An intrusive doubly linked list: a struct lg_list inside each element links
 * it, and a struct lg_list on its own is the list's head (a ring through the
 * head, as in the Linux kernel's list.h), so that linking and unlinking cost
 * a few stores, allocate nothing, and never need to know which list an
 * element is in. The same list serves as a queue (push back, pop front) and
 * as a free list (push and pop front). */
#ifndef LG_LIST_H
#define LG_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct lg_list {
    struct lg_list *prev, *next;
};

/* The element of type TYPE whose member MEMBER is at PTR. */
#define LG_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* An empty list, or an element in no list. */
static inline void lg_list_init(struct lg_list *l) { l->prev = l->next = l; }

static inline bool lg_list_empty(const struct lg_list *l) { return l->next == l; }

/* Whether element N (initialized with lg_list_init) is in a list. */
static inline bool lg_list_linked(const struct lg_list *n) { return n->next != n; }

/* Links N (in no list) right after AT, which is the head or an element. */
static inline void lg_list_insert_after(struct lg_list *at, struct lg_list *n)
{
    n->prev = at;
    n->next = at->next;
    at->next->prev = n;
    at->next = n;
}

static inline void lg_list_push_front(struct lg_list *l, struct lg_list *n)
{
    lg_list_insert_after(l, n);
}

static inline void lg_list_push_back(struct lg_list *l, struct lg_list *n)
{
    lg_list_insert_after(l->prev, n);
}

/* Unlinks N from its list; N is then in none (unlinking it again is harmless). */
static inline void lg_list_remove(struct lg_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    lg_list_init(n);
}

/* The first or last element, or NULL when the list is empty. */
static inline struct lg_list *lg_list_first(const struct lg_list *l)
{
    return l->next != l ? l->next : NULL;
}

static inline struct lg_list *lg_list_last(const struct lg_list *l)
{
    return l->prev != l ? l->prev : NULL;
}

/* Unlinks and returns the first element, or NULL when the list is empty. */
static inline struct lg_list *lg_list_pop_front(struct lg_list *l)
{
    struct lg_list *n = lg_list_first(l);
    if (n != NULL) lg_list_remove(n);
    return n;
}

/* Every element of list L, first to last, as POS; the body may unlink POS
 * (NEXT is taken before it runs). */
#define LG_LIST_EACH(pos, next, l)                              \
    for ((pos) = (l)->next, (next) = (pos)->next; (pos) != (l); \
         (pos) = (next), (next) = (pos)->next)

#endif
