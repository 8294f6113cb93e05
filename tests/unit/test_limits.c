/* tests/unit/test_limits.c - abuse limits: token buckets (burst, refill on an
 * injected clock, Retry-After), isolation between clients, a bounded client
 * table under a flood of keys, in-flight caps per kind, per-user watch caps,
 * and the 429 Status body. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <skiff/errors.h>

#include "http/limits.h"

static uint64_t fake_ms;
static uint64_t fake_clock(void *data) { return *(uint64_t *)data; }

static limits_t *make(limits_opts_t o)
{
    limits_t *l = NULL;
    assert_int_equal(limits_new(&o, &l), 0);
    fake_ms = 1000000;
    limits_set_clock(l, fake_clock, &fake_ms);
    return l;
}

/* One short request: admitted and released at once. Returns 0 or the
 * refusal's Retry-After (reason in *reason when given). */
static unsigned one(limits_t *l, const char *key, limits_reason_t *reason)
{
    limits_ticket_t t;
    limits_refusal_t why;
    int rc = limits_admit(l, key, LIMITS_READONLY, &t, &why);
    assert_true(rc == 0 || rc == 1);
    if (reason) *reason = rc ? why.reason : LIMITS_OK;
    if (rc == 0) {
        limits_release(l, &t);
        return 0;
    }
    assert_true(why.retry_after >= 1);
    return why.retry_after;
}

static void test_burst_then_refill(void **state)
{
    limits_t *l = make((limits_opts_t){.rate = 2, .burst = 5});
    for (int i = 0; i < 5; i++) assert_int_equal(one(l, "user:a", NULL), 0);
    limits_reason_t r;
    assert_int_equal(one(l, "user:a", &r), 1); /* half a second to the next token */
    assert_int_equal(r, LIMITS_RATE);
    fake_ms += 499;
    assert_int_equal(one(l, "user:a", NULL), 1);
    fake_ms += 1;
    assert_int_equal(one(l, "user:a", NULL), 0);
    assert_int_equal(one(l, "user:a", NULL), 1);
    /* A long pause refills to the burst, not beyond. */
    fake_ms += 3600 * 1000;
    for (int i = 0; i < 5; i++) assert_int_equal(one(l, "user:a", NULL), 0);
    assert_int_equal(one(l, "user:a", NULL), 1);
    limits_stats_t s;
    limits_get_stats(l, &s);
    assert_int_equal(s.refused_rate, 4);
    assert_int_equal(s.inflight_readonly, 0);
    limits_free(l);
}

static void test_retry_after_slow_rate(void **state)
{
    /* One request every 5 s, two at once. */
    limits_t *l = make((limits_opts_t){.rate = 0.2, .burst = 2});
    assert_int_equal(one(l, "ip:10.0.0.1", NULL), 0);
    assert_int_equal(one(l, "ip:10.0.0.1", NULL), 0);
    assert_int_equal(one(l, "ip:10.0.0.1", NULL), 5);
    fake_ms += 2000;
    assert_int_equal(one(l, "ip:10.0.0.1", NULL), 3);
    fake_ms += 2999;
    assert_int_equal(one(l, "ip:10.0.0.1", NULL), 1); /* never 0 while refused */
    fake_ms += 1;
    assert_int_equal(one(l, "ip:10.0.0.1", NULL), 0);
    /* Burst below 1 means max(1, rate). */
    limits_t *l2 = make((limits_opts_t){.rate = 0.5});
    assert_int_equal(one(l2, "k", NULL), 0);
    assert_int_equal(one(l2, "k", NULL), 2);
    limits_free(l2);
    limits_free(l);
}

static void test_clients_isolated(void **state)
{
    limits_t *l = make((limits_opts_t){.rate = 10, .burst = 20});
    unsigned refused = 0;
    for (int i = 0; i < 1000; i++) refused += one(l, "user:flood", NULL) ? 1 : 0;
    assert_int_equal(refused, 980);
    /* Another client is untouched: its whole burst, then the same limit. */
    for (int i = 0; i < 20; i++) assert_int_equal(one(l, "user:quiet", NULL), 0);
    assert_int_not_equal(one(l, "user:quiet", NULL), 0);
    /* Keys are compared in full, even past the stored length. */
    char k1[5000], k2[5000];
    memset(k1, 'x', sizeof k1 - 1);
    k1[sizeof k1 - 1] = '\0';
    memcpy(k2, k1, sizeof k1);
    k2[sizeof k2 - 2] = 'y';
    for (int i = 0; i < 20; i++) assert_int_equal(one(l, k1, NULL), 0);
    assert_int_not_equal(one(l, k1, NULL), 0);
    assert_int_equal(one(l, k2, NULL), 0);
    limits_free(l);
}

static void test_table_bounded(void **state)
{
    limits_t *l = make((limits_opts_t){.rate = 1, .burst = 3, .max_clients = 64});
    for (int i = 0; i < 3; i++) assert_int_equal(one(l, "user:flood", NULL), 0);
    assert_int_not_equal(one(l, "user:flood", NULL), 0);
    char key[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "ip:10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        assert_int_equal(one(l, key, NULL), 0); /* each new client gets its burst */
        /* The flooding client stays recently used, so it keeps its empty bucket. */
        if (i % 16 == 0) assert_int_not_equal(one(l, "user:flood", NULL), 0);
    }
    limits_stats_t s;
    limits_get_stats(l, &s);
    assert_int_equal(s.clients, 64);
    assert_int_equal(s.evictions, 100000 + 1 - 64);
    limits_free(l);
}

static void test_inflight_counts(void **state)
{
    limits_t *l = make((limits_opts_t){.max_mutating = 2, .max_readonly = 3});
    limits_ticket_t m[3], r[4], w[10];
    limits_refusal_t why;
    assert_int_equal(limits_admit(l, "user:a", LIMITS_MUTATING, &m[0], &why), 0);
    assert_int_equal(limits_admit(l, "user:b", LIMITS_MUTATING, &m[1], &why), 0);
    assert_int_equal(limits_admit(l, "user:c", LIMITS_MUTATING, &m[2], &why), 1);
    assert_int_equal(why.reason, LIMITS_INFLIGHT);
    assert_int_equal(why.retry_after, 1);
    assert_int_equal(m[2].active, 0);
    /* Read-only requests are counted apart: the full mutating pool does not matter. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(limits_admit(l, "user:a", LIMITS_READONLY, &r[i], &why), 0);
    assert_int_equal(limits_admit(l, "user:a", LIMITS_READONLY, &r[3], &why), 1);
    assert_int_equal(why.reason, LIMITS_INFLIGHT);
    /* Watches count in neither pool. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(limits_admit(l, "user:a", LIMITS_LONG_RUNNING, &w[i], &why), 0);
    limits_stats_t s;
    limits_get_stats(l, &s);
    assert_int_equal(s.inflight_mutating, 2);
    assert_int_equal(s.inflight_readonly, 3);
    assert_int_equal(s.long_running, 10);
    assert_int_equal(s.refused_inflight, 2);
    /* Releasing frees a place; a second release of the same ticket is a no-op. */
    limits_release(l, &m[0]);
    limits_release(l, &m[0]);
    limits_get_stats(l, &s);
    assert_int_equal(s.inflight_mutating, 1);
    assert_int_equal(limits_admit(l, "user:c", LIMITS_MUTATING, &m[2], &why), 0);
    assert_int_equal(limits_admit(l, "user:d", LIMITS_MUTATING, &m[0], &why), 1);
    limits_release(l, &m[1]);
    limits_release(l, &m[2]);
    for (int i = 0; i < 3; i++) limits_release(l, &r[i]);
    for (int i = 0; i < 10; i++) limits_release(l, &w[i]);
    limits_get_stats(l, &s);
    assert_int_equal(s.inflight_mutating + s.inflight_readonly + s.long_running, 0);
    limits_free(l);
}

static void test_watch_limit_per_user(void **state)
{
    limits_t *l = make((limits_opts_t){.rate = 100, .burst = 100, .max_watches_per_user = 2,
                                       .max_clients = 8});
    limits_ticket_t a[3], b;
    limits_refusal_t why;
    assert_int_equal(limits_admit(l, "user:a", LIMITS_LONG_RUNNING, &a[0], &why), 0);
    assert_int_equal(limits_admit(l, "user:a", LIMITS_LONG_RUNNING, &a[1], &why), 0);
    assert_int_equal(limits_admit(l, "user:a", LIMITS_LONG_RUNNING, &a[2], &why), 1);
    assert_int_equal(why.reason, LIMITS_WATCHES);
    assert_int_equal(limits_admit(l, "user:b", LIMITS_LONG_RUNNING, &b, &why), 0);
    /* A flood of other clients cannot evict a's count. */
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "ip:%d", i);
        assert_int_equal(one(l, key, NULL), 0);
    }
    assert_int_equal(limits_admit(l, "user:a", LIMITS_LONG_RUNNING, &a[2], &why), 1);
    assert_int_equal(why.reason, LIMITS_WATCHES);
    /* One watch ends: a may open another. */
    limits_release(l, &a[0]);
    assert_int_equal(limits_admit(l, "user:a", LIMITS_LONG_RUNNING, &a[2], &why), 0);
    limits_release(l, &a[1]);
    limits_release(l, &a[2]);
    limits_release(l, &b);
    /* Unpinned again: a is an ordinary entry that can be recycled. */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "ip:x%d", i);
        assert_int_equal(one(l, key, NULL), 0);
    }
    limits_stats_t s;
    limits_get_stats(l, &s);
    assert_int_equal(s.clients, 8);
    assert_int_equal(s.long_running, 0);
    limits_free(l);
}

static void test_table_full_of_watches(void **state)
{
    limits_t *l = make((limits_opts_t){.max_watches_per_user = 1, .max_clients = 4});
    limits_ticket_t w[5], r;
    limits_refusal_t why;
    char key[16];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "user:%d", i);
        assert_int_equal(limits_admit(l, key, LIMITS_LONG_RUNNING, &w[i], &why), 0);
    }
    /* Every entry holds a watch: a fifth watcher is refused, not stored. */
    assert_int_equal(limits_admit(l, "user:4", LIMITS_LONG_RUNNING, &w[4], &why), 1);
    assert_int_equal(why.reason, LIMITS_TABLE_FULL);
    /* Without a rate limit, short requests need no entry. */
    assert_int_equal(limits_admit(l, "user:4", LIMITS_READONLY, &r, &why), 0);
    limits_release(l, &r);
    limits_release(l, &w[2]);
    assert_int_equal(limits_admit(l, "user:4", LIMITS_LONG_RUNNING, &w[4], &why), 0);
    /* user:2's entry was recycled for user:4; user:0 still holds its watch. */
    assert_int_equal(limits_admit(l, "user:0", LIMITS_LONG_RUNNING, &w[2], &why), 1);
    assert_int_equal(why.reason, LIMITS_WATCHES);
    for (int i = 0; i < 5; i++) limits_release(l, &w[i]);
    limits_free(l);
}

static void test_status_body(void **state)
{
    limits_refusal_t why = {.reason = LIMITS_RATE, .retry_after = 7};
    char buf[512];
    size_t n = limits_status_json(&why, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    json_error_t e;
    json_t *s = json_loads(buf, 0, &e);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "kind")), "Status");
    assert_string_equal(json_string_value(json_object_get(s, "apiVersion")), "v1");
    assert_string_equal(json_string_value(json_object_get(s, "status")), "Failure");
    assert_string_equal(json_string_value(json_object_get(s, "reason")), "TooManyRequests");
    assert_string_equal(json_string_value(json_object_get(s, "message")),
                        "Too many requests, please try again later.");
    assert_int_equal(json_integer_value(json_object_get(s, "code")), 429);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(s, "details"), "retryAfterSeconds")), 7);
    json_decref(s);
    /* Too small: truncated, NUL-terminated, and the needed length returned. */
    char small[16];
    assert_int_equal(limits_status_json(&why, small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_client_key_and_args(void **state)
{
    char k[64];
    limits_client_key("alice", "10.0.0.1", k, sizeof k);
    assert_string_equal(k, "user:alice");
    limits_client_key(NULL, "10.0.0.1", k, sizeof k);
    assert_string_equal(k, "ip:10.0.0.1");
    limits_client_key("system:anonymous", "::1", k, sizeof k);
    assert_string_equal(k, "ip:::1");
    /* A user named like an address is not that address. */
    limits_client_key("10.0.0.1", "10.0.0.2", k, sizeof k);
    assert_string_equal(k, "user:10.0.0.1");

    limits_t *l = NULL;
    limits_opts_t bad = {.rate = -1};
    assert_int_equal(limits_new(&bad, &l), SKIFF_EINVAL);
    assert_null(l);
    l = make((limits_opts_t){.rate = 1});
    limits_ticket_t t;
    assert_int_equal(limits_admit(l, NULL, LIMITS_READONLY, &t, NULL), SKIFF_EINVAL);
    assert_int_equal(limits_admit(l, "k", (limits_kind_t)9, &t, NULL), SKIFF_EINVAL);
    /* why may be NULL */
    assert_int_equal(limits_admit(l, "k", LIMITS_READONLY, &t, NULL), 0);
    limits_release(l, &t);
    assert_int_equal(limits_admit(l, "k", LIMITS_READONLY, &t, NULL), 1);
    limits_free(l);
    /* No limits at all: everything passes. */
    l = make((limits_opts_t){0});
    for (int i = 0; i < 10000; i++) assert_int_equal(one(l, "k", NULL), 0);
    limits_stats_t s;
    limits_get_stats(l, &s);
    assert_int_equal(s.clients, 0);
    limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_retry_after_slow_rate),
        cmocka_unit_test(test_clients_isolated),
        cmocka_unit_test(test_table_bounded),
        cmocka_unit_test(test_inflight_counts),
        cmocka_unit_test(test_watch_limit_per_user),
        cmocka_unit_test(test_table_full_of_watches),
        cmocka_unit_test(test_status_body),
        cmocka_unit_test(test_client_key_and_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
