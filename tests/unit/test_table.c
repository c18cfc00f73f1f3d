/* Unit tests of the intrusive hash table: lookups by hash with the
 * caller's key compare, equal hashes, removal anywhere in a chain, growth,
 * a fixed size that never grows, and walking while removing. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/list.h"
#include "lockgate/table.h"
#include "lockgate/util.h"

#include "check_run.h"

struct item {
    char name[16];
    int v;
    struct lg_table_node node;
};

static uint64_t hash_of(const char *s) { return lg_hash(s, strlen(s)); }

static struct item *find_h(struct lg_table *t, const char *name, uint64_t h)
{
    for (struct lg_table_node *n = lg_table_first(t, h); n != NULL; n = lg_table_next(n)) {
        struct item *it = LG_CONTAINER_OF(n, struct item, node);
        if (strcmp(it->name, name) == 0) return it;
    }
    return NULL;
}

static struct item *find(struct lg_table *t, const char *name)
{
    return find_h(t, name, hash_of(name));
}

static struct item *item_new(const char *name, int v)
{
    struct item *it = calloc(1, sizeof(*it));
    snprintf(it->name, sizeof(it->name), "%s", name);
    it->v = v;
    return it;
}

static void free_node(struct lg_table_node *n, void *arg)
{
    struct lg_table *t = arg;
    lg_table_remove(t, n);
    free(LG_CONTAINER_OF(n, struct item, node));
}

START_TEST(insert_find_remove)
{
    struct lg_table t;
    ck_assert_int_eq(lg_table_init(&t, 4, true), 0);
    ck_assert_ptr_null(find(&t, "a"));
    const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) {
        struct item *it = item_new(names[i], i);
        lg_table_insert(&t, &it->node, hash_of(it->name));
    }
    ck_assert_uint_eq(lg_table_count(&t), 5);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(find(&t, names[i])->v, i);
    ck_assert_ptr_null(find(&t, "f"));
    struct item *c = find(&t, "c");
    lg_table_remove(&t, &c->node);
    free(c);
    ck_assert_ptr_null(find(&t, "c"));
    ck_assert_uint_eq(lg_table_count(&t), 4);
    ck_assert_int_eq(find(&t, "d")->v, 3);
    lg_table_each(&t, free_node, &t);
    ck_assert_uint_eq(lg_table_count(&t), 0);
    ck_assert_ptr_null(find(&t, "a"));
    lg_table_free(&t);
}
END_TEST

/* Different keys with one hash: both found, each removed alone, from the
 * front, the middle and the end of one chain. */
START_TEST(equal_hashes)
{
    struct lg_table t;
    ck_assert_int_eq(lg_table_init(&t, 1, false), 0); /* one bucket: every node in one chain */
    struct item *it[4];
    const char *names[] = {"w", "x", "y", "z"};
    for (int i = 0; i < 4; i++) {
        it[i] = item_new(names[i], i);
        lg_table_insert(&t, &it[i]->node, i < 3 ? 42 : 43);
    }
    for (int i = 0; i < 3; i++) ck_assert_ptr_eq(find_h(&t, names[i], 42), it[i]);
    ck_assert_ptr_null(find_h(&t, "z", 42)); /* same bucket, other hash */
    ck_assert_ptr_eq(find_h(&t, "z", 43), it[3]);
    int n42 = 0;
    for (struct lg_table_node *n = lg_table_first(&t, 42); n != NULL; n = lg_table_next(n)) n42++;
    ck_assert_int_eq(n42, 3);
    lg_table_remove(&t, &it[1]->node);
    ck_assert_ptr_null(find_h(&t, "x", 42));
    ck_assert_ptr_eq(find_h(&t, "w", 42), it[0]);
    ck_assert_ptr_eq(find_h(&t, "y", 42), it[2]);
    lg_table_remove(&t, &it[3]->node);
    lg_table_remove(&t, &it[0]->node);
    ck_assert_ptr_eq(find_h(&t, "y", 42), it[2]);
    ck_assert_uint_eq(lg_table_count(&t), 1);
    lg_table_remove(&t, &it[2]->node);
    ck_assert_uint_eq(lg_table_count(&t), 0);
    ck_assert_ptr_null(lg_table_first(&t, 42));
    for (int i = 0; i < 4; i++) free(it[i]);
    lg_table_free(&t);
}
END_TEST

/* A growing table doubles as it fills and finds everything after; a fixed
 * one keeps its buckets, whatever it holds. */
START_TEST(growth)
{
    struct lg_table g, f;
    ck_assert_int_eq(lg_table_init(&g, 3, true), 0);
    ck_assert_int_eq(lg_table_init(&f, 8, false), 0);
    ck_assert_uint_eq(g.mask + 1, 4); /* rounded up to a power of two */
    enum { N = 1000 };
    static struct item a[N], b[N];
    for (int i = 0; i < N; i++) {
        snprintf(a[i].name, sizeof(a[i].name), "k%d", i);
        a[i].v = i;
        b[i] = a[i];
        lg_table_insert(&g, &a[i].node, hash_of(a[i].name));
        lg_table_insert(&f, &b[i].node, hash_of(b[i].name));
    }
    ck_assert_uint_ge(g.mask + 1, N);
    ck_assert_uint_eq(f.mask + 1, 8);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        ck_assert_ptr_eq(find(&g, name), &a[i]);
        ck_assert_ptr_eq(find(&f, name), &b[i]);
    }
    for (int i = 0; i < N; i += 2) {
        lg_table_remove(&g, &a[i].node);
        lg_table_remove(&f, &b[i].node);
    }
    ck_assert_uint_eq(lg_table_count(&g), N / 2);
    ck_assert_uint_eq(lg_table_count(&f), N / 2);
    ck_assert_ptr_null(find(&g, "k0"));
    ck_assert_ptr_eq(find(&g, "k1"), &a[1]);
    ck_assert_ptr_eq(find(&f, "k999"), &b[999]);
    lg_table_free(&g);
    lg_table_free(&f);
}
END_TEST

static void count_node(struct lg_table_node *n, void *arg) { ++*(int *)arg; }

START_TEST(walk)
{
    struct lg_table t;
    ck_assert_int_eq(lg_table_init(&t, 2, false), 0);
    int seen = 0;
    lg_table_each(&t, count_node, &seen);
    ck_assert_int_eq(seen, 0);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        struct item *it = item_new(name, i);
        lg_table_insert(&t, &it->node, hash_of(name));
    }
    lg_table_each(&t, count_node, &seen);
    ck_assert_int_eq(seen, 50);
    lg_table_each(&t, free_node, &t); /* removing the node at hand while walking */
    ck_assert_uint_eq(lg_table_count(&t), 0);
    seen = 0;
    lg_table_each(&t, count_node, &seen);
    ck_assert_int_eq(seen, 0);
    lg_table_free(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("table");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, insert_find_remove);
    tcase_add_test(tc, equal_hashes);
    tcase_add_test(tc, growth);
    tcase_add_test(tc, walk);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
