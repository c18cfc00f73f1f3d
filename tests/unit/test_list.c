/* Unit tests of the intrusive list: order, unlinking from anywhere, use as
 * a queue and as a free list, and walking while unlinking. */
#include <check.h>
#include <stdlib.h>

#include "lockgate/list.h"

#include "check_run.h"

struct item {
    int v;
    struct lg_list link;
};

static int value(const struct lg_list *n) { return LG_CONTAINER_OF(n, struct item, link)->v; }

/* The values of L, first to last, as digits ("" when empty). */
static const char *values(const struct lg_list *l)
{
    static char out[32];
    size_t n = 0;
    for (const struct lg_list *p = l->next; p != l && n + 1 < sizeof(out); p = p->next)
        out[n++] = (char)('0' + value(p));
    out[n] = '\0';
    return out;
}

START_TEST(order)
{
    struct lg_list l;
    struct item it[5];
    lg_list_init(&l);
    ck_assert(lg_list_empty(&l));
    ck_assert_ptr_null(lg_list_first(&l));
    ck_assert_ptr_null(lg_list_last(&l));
    ck_assert_ptr_null(lg_list_pop_front(&l));
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        lg_list_init(&it[i].link);
        ck_assert(!lg_list_linked(&it[i].link));
    }
    lg_list_push_back(&l, &it[1].link);
    lg_list_push_back(&l, &it[2].link);
    lg_list_push_front(&l, &it[0].link);
    lg_list_insert_after(&it[2].link, &it[4].link);
    lg_list_insert_after(&it[2].link, &it[3].link);
    ck_assert_str_eq(values(&l), "01234");
    ck_assert(!lg_list_empty(&l));
    ck_assert(lg_list_linked(&it[3].link));
    ck_assert_int_eq(value(lg_list_first(&l)), 0);
    ck_assert_int_eq(value(lg_list_last(&l)), 4);
    /* backwards too */
    ck_assert_int_eq(value(l.prev->prev), 3);
}
END_TEST

START_TEST(unlink)
{
    struct lg_list l;
    struct item it[4];
    lg_list_init(&l);
    for (int i = 0; i < 4; i++) {
        it[i].v = i;
        lg_list_push_back(&l, &it[i].link);
    }
    lg_list_remove(&it[2].link); /* middle */
    ck_assert_str_eq(values(&l), "013");
    ck_assert(!lg_list_linked(&it[2].link));
    lg_list_remove(&it[2].link); /* again: harmless */
    ck_assert_str_eq(values(&l), "013");
    lg_list_remove(&it[0].link); /* first */
    lg_list_remove(&it[3].link); /* last */
    ck_assert_str_eq(values(&l), "1");
    ck_assert_int_eq(value(lg_list_first(&l)), 1);
    ck_assert_int_eq(value(lg_list_last(&l)), 1);
    lg_list_remove(&it[1].link);
    ck_assert(lg_list_empty(&l));
    ck_assert_str_eq(values(&l), "");
    lg_list_push_front(&l, &it[2].link); /* an unlinked element links again */
    ck_assert_str_eq(values(&l), "2");
}
END_TEST

START_TEST(queue_and_stack)
{
    struct lg_list q, s;
    struct item it[3];
    lg_list_init(&q);
    lg_list_init(&s);
    for (int i = 0; i < 3; i++) {
        it[i].v = i;
        lg_list_push_back(&q, &it[i].link);
    }
    for (int i = 0; i < 3; i++) { /* a queue: first in, first out */
        struct lg_list *n = lg_list_pop_front(&q);
        ck_assert_int_eq(value(n), i);
        lg_list_push_front(&s, n);
    }
    ck_assert(lg_list_empty(&q));
    for (int i = 2; i >= 0; i--) ck_assert_int_eq(value(lg_list_pop_front(&s)), i); /* a stack */
    ck_assert(lg_list_empty(&s));
}
END_TEST

START_TEST(walk_and_unlink)
{
    struct lg_list l, *pos, *next;
    struct item it[6];
    lg_list_init(&l);
    for (int i = 0; i < 6; i++) {
        it[i].v = i;
        lg_list_push_back(&l, &it[i].link);
    }
    int seen = 0;
    LG_LIST_EACH(pos, next, &l)
    {
        seen++;
        if (value(pos) % 2 == 0) lg_list_remove(pos);
    }
    ck_assert_int_eq(seen, 6);
    ck_assert_str_eq(values(&l), "135");
    LG_LIST_EACH(pos, next, &l) lg_list_remove(pos);
    ck_assert(lg_list_empty(&l));
    seen = 0;
    LG_LIST_EACH(pos, next, &l) seen++;
    ck_assert_int_eq(seen, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("list");
    TCase *tc = tcase_create("list");
    tcase_add_test(tc, order);
    tcase_add_test(tc, unlink);
    tcase_add_test(tc, queue_and_stack);
    tcase_add_test(tc, walk_and_unlink);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
