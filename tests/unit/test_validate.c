/* tests/unit/test_validate.c - registry_validate: schema checks and the semantic rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "object/registry.h"

static void test_placeholder_accepts(void **state)
{
    (void)state;
    assert_int_equal(registry_init(), 0);
    validation_result_t res;
    json_t *o = json_object();
    assert_int_equal(registry_validate(registry_find_kind("", "v1", "ConfigMap"), o, 0, &res), 0);
    validation_result_free(&res);
    json_decref(o);
    registry_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placeholder_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
