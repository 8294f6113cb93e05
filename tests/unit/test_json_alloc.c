/* tests/unit/test_json_alloc.c - the free lists behind jansson in the
 * server: a freed block comes back for a request of its size, every size
 * gets a block that holds it, blocks from plain malloc can be given back,
 * and jansson trees built on the lists are whole (checked under
 * AddressSanitizer, where the server itself leaves jansson on malloc). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#include <cmocka.h>
#include <jansson.h>

#include "util/json_alloc.h"

static void test_reuse(void **state)
{
    (void)state;
    void *a = json_alloc_malloc(40);
    assert_non_null(a);
    memset(a, 1, 40);
    json_alloc_free(a);
    void *b = json_alloc_malloc(40);
    assert_ptr_equal(a, b);
    json_alloc_free(b);
}

static void test_every_size(void **state)
{
    (void)state;
    void *blocks[700];
    /* twice: fresh blocks, then blocks from the lists */
    for (int round = 0; round < 2; round++) {
        for (size_t n = 0; n < 700; n++) {
            blocks[n] = json_alloc_malloc(n);
            assert_non_null(blocks[n]);
            assert_true(malloc_usable_size(blocks[n]) >= n);
            memset(blocks[n], 0xab, n);
        }
        for (size_t n = 0; n < 700; n++) json_alloc_free(blocks[n]);
    }
    json_alloc_free(NULL);
}

static void test_foreign_blocks(void **state)
{
    (void)state;
    /* blocks from malloc and strdup, of every small size */
    for (size_t n = 1; n < 600; n += 7) json_alloc_free(malloc(n));
    json_alloc_free(strdup("a string"));
    void *p = json_alloc_malloc(100);
    memset(p, 0, 100);
    /* and a block of ours may go to free() */
    free(p);
}

static void test_trees(void **state)
{
    (void)state;
    json_malloc_t old_malloc;
    json_free_t old_free;
    json_get_alloc_funcs(&old_malloc, &old_free);
    json_set_alloc_funcs(json_alloc_malloc, json_alloc_free);
    for (int i = 0; i < 200; i++) {
        json_t *o = json_pack("{s:s, s:[i, i, {s:s}], s:{s:b}}", "name", "pod", "list", i, i + 1,
                              "k", "a longer string value than sixteen bytes", "spec", "x", 1);
        char *s = json_dumps(o, JSON_COMPACT);
        assert_non_null(s);
        json_t *back = json_loads(s, 0, NULL);
        assert_true(json_equal(o, back));
        free(s); /* jansson's string: an ordinary block */
        json_decref(back);
        json_decref(o);
    }
    json_set_alloc_funcs(old_malloc, old_free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_foreign_blocks),
        cmocka_unit_test(test_trees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
