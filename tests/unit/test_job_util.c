/* tests/unit/test_job_util.c - the Job controller's pure helpers: the
 * compressed range form of status.completedIndexes (both ways, as
 * Kubernetes writes it), completion-index annotations, the pod re-creation
 * back-off (doubling, capped) and duration settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "job_util.h"

static char *fmt_of(const int *ix, size_t n, int64_t size)
{
    job_index_set_t s;
    assert_int_equal(job_index_set_init(&s, size), 0);
    for (size_t i = 0; i < n; i++) s.has[ix[i]] = 1;
    char *out = job_index_set_format(&s);
    job_index_set_free(&s);
    assert_non_null(out);
    return out;
}

static void test_format(void **state)
{
    char *s;
    s = fmt_of((int[]){0, 1, 2, 4}, 4, 10);
    assert_string_equal(s, "0-2,4");
    free(s);
    s = fmt_of((int[]){3, 4}, 2, 10); /* a run of two is a list */
    assert_string_equal(s, "3,4");
    free(s);
    s = fmt_of(NULL, 0, 10);
    assert_string_equal(s, "");
    free(s);
    s = fmt_of((int[]){0, 2, 4, 5, 6, 7, 9}, 7, 10);
    assert_string_equal(s, "0,2,4-7,9");
    free(s);
    s = fmt_of(NULL, 0, 0);
    assert_string_equal(s, "");
    free(s);
}

static void test_parse(void **state)
{
    job_index_set_t s;
    assert_int_equal(job_index_set_init(&s, 8), 0);
    assert_int_equal(job_index_set_parse(&s, "0-2,4,7-9"), 0);
    /* indexes at or above completions are ignored */
    assert_int_equal(job_index_set_count(&s), 5);
    assert_true(s.has[7] && s.has[4] && !s.has[3] && !s.has[5]);
    char *out = job_index_set_format(&s);
    assert_string_equal(out, "0-2,4,7");
    free(out);
    assert_int_equal(job_index_set_parse(&s, ""), 0);
    assert_int_equal(job_index_set_parse(&s, NULL), 0);
    static const char *const bad[] = {"1-", "a", "3-1", "1,,2", ",1", "1 ", "-1", "1-2-3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(job_index_set_parse(&s, bad[i]), -1);
    job_index_set_free(&s);
}

static void test_round_trip(void **state)
{
    /* every subset of 0..9 formats and parses back to itself */
    for (int mask = 0; mask < 1024; mask++) {
        job_index_set_t a, b;
        assert_int_equal(job_index_set_init(&a, 10), 0);
        assert_int_equal(job_index_set_init(&b, 10), 0);
        for (int i = 0; i < 10; i++) a.has[i] = (mask >> i) & 1;
        char *text = job_index_set_format(&a);
        assert_int_equal(job_index_set_parse(&b, text), 0);
        assert_memory_equal(a.has, b.has, 10);
        free(text);
        job_index_set_free(&a);
        job_index_set_free(&b);
    }
}

static void test_index_annotation(void **state)
{
    assert_int_equal(job_parse_index("0"), 0);
    assert_int_equal(job_parse_index("12"), 12);
    assert_int_equal(job_parse_index("007"), -1);
    assert_int_equal(job_parse_index("-1"), -1);
    assert_int_equal(job_parse_index("1a"), -1);
    assert_int_equal(job_parse_index(""), -1);
    assert_int_equal(job_parse_index(NULL), -1);
}

static void test_backoff(void **state)
{
    const int64_t base = 10000, max = 360000; /* Kubernetes: 10 s, capped at 6 min */
    assert_int_equal(job_backoff_delay_ms(0, base, max), 0);
    assert_int_equal(job_backoff_delay_ms(1, base, max), 10000);
    assert_int_equal(job_backoff_delay_ms(2, base, max), 20000);
    assert_int_equal(job_backoff_delay_ms(3, base, max), 40000);
    assert_int_equal(job_backoff_delay_ms(6, base, max), 320000);
    assert_int_equal(job_backoff_delay_ms(7, base, max), 360000);
    assert_int_equal(job_backoff_delay_ms(1000, base, max), 360000);
    assert_int_equal(job_backoff_delay_ms(3, 0, max), 0); /* back-off turned off */
}

static void test_duration(void **state)
{
    assert_int_equal(job_parse_duration_ms("10s"), 10000);
    assert_int_equal(job_parse_duration_ms("250ms"), 250);
    assert_int_equal(job_parse_duration_ms("6m"), 360000);
    assert_int_equal(job_parse_duration_ms("1h30m"), 5400000);
    assert_int_equal(job_parse_duration_ms("0"), 0);
    assert_int_equal(job_parse_duration_ms("10"), -1);
    assert_int_equal(job_parse_duration_ms("x"), -1);
    assert_int_equal(job_parse_duration_ms(""), -1);
    assert_int_equal(job_parse_duration_ms("5d"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),          cmocka_unit_test(test_parse),
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_index_annotation),
        cmocka_unit_test(test_backoff),         cmocka_unit_test(test_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
