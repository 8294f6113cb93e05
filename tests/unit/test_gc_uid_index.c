/* tests/unit/test_gc_uid_index.c - the garbage collector's uid index
 * (plugins/controllers/garbage-collector/uid_index.c): a node per uid with
 * its resource, key and deletion flags, replaced when any of them changes,
 * and every uid still found after most of a large index is removed in an
 * order unlike the insertion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/controllers/garbage-collector/uid_index.h"

static void test_put_get_replace(void **state)
{
    (void)state;
    uid_index_t *x = uid_index_new();
    assert_non_null(x);
    assert_null(uid_index_get(x, "u1"));
    assert_int_equal(uid_index_put(x, "u1", 3, "ns/a", 0), 0);
    const gc_node_t *n = uid_index_get(x, "u1");
    assert_non_null(n);
    assert_int_equal(n->res, 3);
    assert_string_equal(gc_node_key(n), "ns/a");
    assert_int_equal(n->flags, 0);
    /* the same again keeps the node */
    assert_int_equal(uid_index_put(x, "u1", 3, "ns/a", 0), 0);
    assert_ptr_equal(uid_index_get(x, "u1"), n);
    /* foreground deletion begins: the flags follow */
    assert_int_equal(
        uid_index_put(x, "u1", 3, "ns/a", GC_NODE_DELETING | GC_NODE_DELETING_DEPENDENTS), 0);
    n = uid_index_get(x, "u1");
    assert_int_equal(n->flags, GC_NODE_DELETING | GC_NODE_DELETING_DEPENDENTS);
    /* a cluster-scoped key */
    assert_int_equal(uid_index_put(x, "u2", 0, "node-1", 0), 0);
    assert_string_equal(gc_node_key(uid_index_get(x, "u2")), "node-1");
    assert_int_equal(uid_index_size(x), 2);
    uid_index_del(x, "u1");
    uid_index_del(x, "u1");
    uid_index_del(x, "none");
    assert_null(uid_index_get(x, "u1"));
    assert_non_null(uid_index_get(x, "u2"));
    assert_int_equal(uid_index_size(x), 1);
    uid_index_free(x);
}

static void test_many(void **state)
{
    (void)state;
    enum { N = 50000 };
    uid_index_t *x = uid_index_new();
    char uid[64], key[64];
    for (int i = 0; i < N; i++) {
        snprintf(uid, sizeof uid, "8c3fa5e2-1234-4abc-9def-%012d", i);
        snprintf(key, sizeof key, "ns/obj-%d", i);
        assert_int_equal(uid_index_put(x, uid, (uint32_t)(i % 40), key, 0), 0);
    }
    assert_int_equal(uid_index_size(x), N);
    for (int i = 0; i < N; i++) {
        int k = (int)(((long)i * 7919) % N);
        if (k % 10 == 3) continue;
        snprintf(uid, sizeof uid, "8c3fa5e2-1234-4abc-9def-%012d", k);
        uid_index_del(x, uid);
    }
    assert_int_equal(uid_index_size(x), N / 10);
    for (int i = 0; i < N; i++) {
        snprintf(uid, sizeof uid, "8c3fa5e2-1234-4abc-9def-%012d", i);
        const gc_node_t *n = uid_index_get(x, uid);
        if (i % 10 != 3) {
            assert_null(n);
            continue;
        }
        assert_non_null(n);
        snprintf(key, sizeof key, "ns/obj-%d", i);
        assert_string_equal(gc_node_key(n), key);
        assert_int_equal(n->res, (uint32_t)(i % 40));
    }
    uid_index_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
