/* tests/unit/test_openapi.c - being written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
static void test_none(void **s) { (void)s; assert_true(1); }
int main(void) { const struct CMUnitTest t[] = { cmocka_unit_test(test_none) }; return cmocka_run_group_tests(t, NULL, NULL); }
