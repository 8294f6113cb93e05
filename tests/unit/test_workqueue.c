/* tests/unit/test_workqueue.c - the controllers' work queue: keys are
 * de-duplicated while waiting, a key is never handed out twice at once,
 * delayed adds wait, failures back off exponentially up to the cap, the
 * token bucket spaces adds, and shut down refuses further work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <skiff/controller.h>
#include <uv.h>

static uv_loop_t loop;

typedef struct readiness {
    int calls;
} readiness_t;

static void on_ready(void *data) { ((readiness_t *)data)->calls++; }

static int setup(void **state) { return uv_loop_init(&loop); }

static int teardown(void **state)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static void run_until_len(skiff_workqueue_t *q, size_t n, uint64_t limit_ms)
{
    uint64_t start = uv_now(&loop);
    while (skiff_workqueue_len(q) < n && uv_now(&loop) - start < limit_ms) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
}

static void test_dedup_and_order(void **state)
{
    readiness_t r = {0};
    skiff_workqueue_t *q;
    assert_int_equal(skiff_workqueue_new(&loop, NULL, on_ready, &r, &q), 0);
    assert_int_equal(skiff_workqueue_add(q, "ns/a"), 0);
    assert_int_equal(skiff_workqueue_add(q, "ns/b"), 0);
    assert_int_equal(skiff_workqueue_add(q, "ns/a"), 0);
    assert_int_equal(skiff_workqueue_len(q), 2);
    /* readiness is told from the loop, never inside add */
    assert_int_equal(r.calls, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 1);
    const char *k1, *k2, *k3;
    assert_int_equal(skiff_workqueue_get(q, &k1), 0);
    assert_string_equal(k1, "ns/a");
    assert_int_equal(skiff_workqueue_get(q, &k2), 0);
    assert_string_equal(k2, "ns/b");
    assert_int_equal(skiff_workqueue_get(q, &k3), SKIFF_ENOENT);
    skiff_workqueue_done(q, k1);
    skiff_workqueue_done(q, k2);
    assert_int_equal(skiff_workqueue_len(q), 0);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
}

/* A key added while it is processed is processed again after done, and is
 * not handed out in between. */
static void test_no_concurrent_processing(void **state)
{
    readiness_t r = {0};
    skiff_workqueue_t *q;
    assert_int_equal(skiff_workqueue_new(&loop, NULL, on_ready, &r, &q), 0);
    skiff_workqueue_add(q, "x");
    const char *k;
    assert_int_equal(skiff_workqueue_get(q, &k), 0);
    assert_int_equal(skiff_workqueue_add(q, "x"), 0);
    assert_int_equal(skiff_workqueue_add(q, "x"), 0);
    assert_int_equal(skiff_workqueue_len(q), 0);
    const char *again;
    assert_int_equal(skiff_workqueue_get(q, &again), SKIFF_ENOENT);
    skiff_workqueue_done(q, k);
    assert_int_equal(skiff_workqueue_len(q), 1);
    assert_int_equal(skiff_workqueue_get(q, &again), 0);
    assert_string_equal(again, "x");
    skiff_workqueue_done(q, again);
    /* nothing added meanwhile: it does not come back */
    assert_int_equal(skiff_workqueue_len(q), 0);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_add_after(void **state)
{
    readiness_t r = {0};
    skiff_workqueue_t *q;
    assert_int_equal(skiff_workqueue_new(&loop, NULL, on_ready, &r, &q), 0);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    assert_int_equal(skiff_workqueue_add_after(q, "late", 400), 0);
    /* a later delay for the same key does not postpone it; an earlier one
     * wins (delays far apart, so a busy machine cannot blur their order) */
    assert_int_equal(skiff_workqueue_add_after(q, "late", 600), 0);
    assert_int_equal(skiff_workqueue_add_after(q, "soon", 900), 0);
    assert_int_equal(skiff_workqueue_add_after(q, "soon", 20), 0);
    assert_int_equal(skiff_workqueue_len(q), 0);
    run_until_len(q, 1, 1000);
    assert_int_equal(skiff_workqueue_len(q), 1);
    assert_true(uv_now(&loop) - t0 >= 20);
    const char *k;
    assert_int_equal(skiff_workqueue_get(q, &k), 0);
    assert_string_equal(k, "soon");
    skiff_workqueue_done(q, k);
    run_until_len(q, 1, 1000);
    assert_true(uv_now(&loop) - t0 >= 400);
    assert_int_equal(skiff_workqueue_get(q, &k), 0);
    assert_string_equal(k, "late");
    skiff_workqueue_done(q, k);
    /* the replaced delays (600 ms, 900 ms) do not bring the keys back */
    run_until_len(q, 1, 1100);
    assert_int_equal(skiff_workqueue_len(q), 0);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_backoff(void **state)
{
    skiff_workqueue_opts_t o = {.base_delay_ms = 5, .max_delay_ms = 40};
    skiff_workqueue_t *q;
    assert_int_equal(skiff_workqueue_new(&loop, &o, NULL, NULL, &q), 0);
    int64_t want[] = {5, 10, 20, 40, 40, 40};
    for (int i = 0; i < 6; i++) assert_int_equal(skiff_workqueue_add_rate_limited(q, "f"), want[i]);
    assert_int_equal(skiff_workqueue_num_requeues(q, "f"), 6);
    /* other keys have their own count */
    assert_int_equal(skiff_workqueue_add_rate_limited(q, "g"), 5);
    skiff_workqueue_forget(q, "f");
    assert_int_equal(skiff_workqueue_num_requeues(q, "f"), 0);
    assert_int_equal(skiff_workqueue_add_rate_limited(q, "f"), 5);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* the defaults: 5 ms doubling to 1000 s */
    assert_int_equal(skiff_workqueue_new(&loop, NULL, NULL, NULL, &q), 0);
    int64_t d = 0;
    for (int i = 0; i < 40; i++) d = skiff_workqueue_add_rate_limited(q, "h");
    assert_int_equal(d, 1000 * 1000);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* and the delay is really waited */
    skiff_workqueue_opts_t slow = {.base_delay_ms = 50};
    assert_int_equal(skiff_workqueue_new(&loop, &slow, NULL, NULL, &q), 0);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    assert_int_equal(skiff_workqueue_add_rate_limited(q, "k"), 50);
    assert_int_equal(skiff_workqueue_add_rate_limited(q, "k"), 100);
    run_until_len(q, 1, 1000);
    uint64_t waited = uv_now(&loop) - t0;
    /* the earlier of the two pending delays */
    assert_true(waited >= 50);
    assert_true(waited < 100);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_token_bucket(void **state)
{
    skiff_workqueue_opts_t o = {.base_delay_ms = 1, .qps = 100, .burst = 2};
    skiff_workqueue_t *q;
    assert_int_equal(skiff_workqueue_new(&loop, &o, NULL, NULL, &q), 0);
    uv_update_time(&loop);
    int64_t d1 = skiff_workqueue_add_rate_limited(q, "a");
    int64_t d2 = skiff_workqueue_add_rate_limited(q, "b");
    int64_t d3 = skiff_workqueue_add_rate_limited(q, "c");
    int64_t d4 = skiff_workqueue_add_rate_limited(q, "d");
    assert_int_equal(d1, 1);
    assert_int_equal(d2, 1);
    /* the burst is spent: one token each 10 ms */
    assert_true(d3 >= 9 && d3 <= 11);
    assert_true(d4 >= 19 && d4 <= 21);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_shut_down(void **state)
{
    readiness_t r = {0};
    skiff_workqueue_t *q;
    assert_int_equal(skiff_workqueue_new(&loop, NULL, on_ready, &r, &q), 0);
    skiff_workqueue_add(q, "a");
    skiff_workqueue_add(q, "b");
    skiff_workqueue_add_after(q, "c", 10);
    const char *k;
    assert_int_equal(skiff_workqueue_get(q, &k), 0);
    skiff_workqueue_shut_down(q);
    assert_int_equal(skiff_workqueue_add(q, "d"), SKIFF_ECLOSED);
    assert_int_equal(skiff_workqueue_add_after(q, "d", 5), SKIFF_ECLOSED);
    const char *k2;
    assert_int_equal(skiff_workqueue_get(q, &k2), SKIFF_ECLOSED);
    assert_int_equal(skiff_workqueue_len(q), 0);
    /* the key being processed may still be finished */
    skiff_workqueue_done(q, k);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 0);

    /* freed with a key still handed out: nothing leaks */
    assert_int_equal(skiff_workqueue_new(&loop, NULL, NULL, NULL, &q), 0);
    skiff_workqueue_add(q, "held");
    assert_int_equal(skiff_workqueue_get(q, &k), 0);
    skiff_workqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_and_order),
        cmocka_unit_test(test_no_concurrent_processing),
        cmocka_unit_test(test_add_after),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_shut_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
