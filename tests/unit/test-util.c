/* Small shared helpers: overflow-checked array growth, sorting strings. */
#include "harness.h"

#include <errno.h>
#include <stdint.h>

#include "util.h"

struct pair {
    int a, b;
};

static void test_grow_appends(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct pair *v = NULL;
    size_t n = 0, cap = 0, grows = 0;
    for (int i = 0; i < 1000; i++) {
        size_t old = cap;
        CHECK_INT_EQ(chrun_grow(&v, &cap, n + 1, sizeof(*v), &err), 0);
        grows += cap != old;
        v[n++] = (struct pair){i, -i};
    }
    CHECK(cap >= 1000);
    CHECK(grows <= 10); /* doubling from 8: 8, 16, ..., 1024 */
    for (size_t i = 0; i < n; i++)
        CHECK(v[i].a == (int) i && v[i].b == -(int) i);
    CHECK_INT_EQ(err.code, CHRUN_E_OK);
    free(v);
}

static void test_grow_jump(void)
{
    char *s = NULL;
    size_t cap = 0;
    /* a need larger than twice the capacity is met in one step */
    CHECK_INT_EQ(chrun_grow(&s, &cap, 5000, 1, NULL), 0);
    CHECK_INT_EQ(cap, 5000);
    memset(s, 'x', cap);
    CHECK_INT_EQ(chrun_grow(&s, &cap, 5001, 1, NULL), 0);
    CHECK_INT_EQ(cap, 10000);
    CHECK(s[4999] == 'x');
    /* enough room: nothing changes */
    CHECK_INT_EQ(chrun_grow(&s, &cap, 10000, 1, NULL), 0);
    CHECK_INT_EQ(cap, 10000);
    free(s);
}

static void test_grow_zero(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    int *v = NULL;
    size_t cap = 0;
    CHECK_INT_EQ(chrun_grow(&v, &cap, 0, sizeof(*v), &err), 0);
    CHECK(v == NULL);
    CHECK_INT_EQ(cap, 0);
    /* a capacity without an array (a zeroed struct claiming room) still allocates */
    cap = 4;
    CHECK_INT_EQ(chrun_grow(&v, &cap, 1, sizeof(*v), &err), 0);
    CHECK(v != NULL);
    CHECK(cap >= 1);
    v[0] = 1;
    free(v);
}

static void test_grow_overflow(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct pair *v = NULL;
    size_t cap = 0;
    CHECK_INT_EQ(chrun_grow(&v, &cap, SIZE_MAX, sizeof(*v), &err), -1);
    CHECK_INT_EQ(err.errnum, ENOMEM);
    CHECK_INT_EQ(err.code, CHRUN_E_SYS);
    CHECK(strstr(err.msg, "elements") != NULL);
    CHECK(v == NULL);
    CHECK_INT_EQ(cap, 0);
    /* the first need whose byte count does not fit */
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_grow(&v, &cap, SIZE_MAX / sizeof(*v) + 1, sizeof(*v), &err), -1);
    CHECK_INT_EQ(err.errnum, ENOMEM);
    /* an existing array is kept as it was when growth fails */
    CHECK_INT_EQ(chrun_grow(&v, &cap, 3, sizeof(*v), &err), 0);
    v[2] = (struct pair){7, 8};
    {
        struct pair *before = v;
        size_t cap_before = cap;
        CHECK_INT_EQ(chrun_grow(&v, &cap, SIZE_MAX / 2, sizeof(*v), &err), -1);
        CHECK(v == before);
        CHECK_INT_EQ(cap, cap_before);
        CHECK_INT_EQ(v[2].b, 8);
    }
    free(v);
}

static void test_sort_strings(void)
{
    char a[] = "b", b[] = "a", c[] = "ab";
    char *v[] = {a, b, c};
    chrun_sort_strings(v, 3);
    CHECK_STR_EQ(v[0], "a");
    CHECK_STR_EQ(v[1], "ab");
    CHECK_STR_EQ(v[2], "b");
    chrun_sort_strings(NULL, 0);
    chrun_sort_strings(v, 1);
    CHECK_STR_EQ(v[0], "a");
}

int main(void)
{
    RUN_TEST(test_grow_appends);
    RUN_TEST(test_grow_jump);
    RUN_TEST(test_grow_zero);
    RUN_TEST(test_grow_overflow);
    RUN_TEST(test_sort_strings);
    return harness_done();
}
