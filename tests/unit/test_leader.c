/* tests/unit/test_leader.c - Lease-based leader election: one leader among
 * candidates, hand-over when the leader stops, take-over when a holder stops
 * renewing, against a real API server through the in-process client. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <skiff/client.h>
#include <skiff/leader.h>
#include <skiff/store.h>
#include <uv.h>

#include "api/apiserver.h"
#include "api/client_inproc.h"
#include "http/server.h"
#include "object/registry.h"
#include "plugin/loader.h"

#include "api_fixture.h"

static uv_loop_t loop;
static api_fixture_t fx;
static api_server_t *api;

static int setup(void **state)
{
    api_server_opts_t ao = {0};
    if (api_fixture_start(&fx, &loop, ao, 0) != 0) return -1;
    api = fx.api;

    return 0;
}

static int teardown(void **state) { return api_fixture_stop(&fx); }

typedef struct cand {
    int leading, started, stopped;
} cand_t;

static void on_start(void *d) { ((cand_t *)d)->leading = 1, ((cand_t *)d)->started++; }
static void on_stop(void *d) { ((cand_t *)d)->leading = 0, ((cand_t *)d)->stopped++; }

static void run_ms(int ms)
{
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&loop);
    }
}

static skiff_leader_t *campaign(skiff_client_t *c, const char *name, const char *id, cand_t *st)
{
    skiff_leader_opts_t o = {.namespace_ = "kube-system", .name = name, .identity = id,
                             .lease_duration_ms = 1000, .renew_deadline_ms = 800,
                             .retry_period_ms = 100, .started_leading = on_start,
                             .stopped_leading = on_stop, .data = st};
    skiff_leader_t *l = NULL;
    assert_int_equal(skiff_leader_start(&loop, c, &o, &l), 0);
    return l;
}

static int stopped;
static void on_stopped(void *d) { stopped++; }

static void test_one_leader_then_handover(void **state)
{
    skiff_client_t *c = client_inproc_new(&loop, api);
    cand_t a = {0}, b = {0};
    skiff_leader_t *la = campaign(c, "ctl", "a", &a);
    run_ms(300);
    skiff_leader_t *lb = campaign(c, "ctl", "b", &b);
    run_ms(600);
    assert_true(a.leading);
    assert_false(b.leading);
    assert_true(skiff_leader_is_leader(la));
    /* the leader stops: it releases the Lease and b takes over quickly */
    stopped = 0;
    skiff_leader_stop(la, on_stopped, NULL);
    run_ms(400);
    assert_int_equal(stopped, 1);
    assert_int_equal(a.stopped, 1);
    assert_true(b.leading);
    skiff_leader_stop(lb, on_stopped, NULL);
    run_ms(200);
    assert_int_equal(stopped, 2);
    c->vt->free(c);
    run_ms(50);
}

/* A holder that stops renewing (crashed) loses the Lease once it expires. */
static int got;
static json_t *answer;
static void on_answer(void *d, int status, json_t *obj)
{
    got = status;
    json_decref(answer);
    answer = json_incref(obj);
}

static void test_takeover_after_expiry(void **state)
{
    skiff_client_t *c = client_inproc_new(&loop, api);
    static const skiff_resource_t leases = {"coordination.k8s.io", "v1", "leases", NULL};
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char base[40], now[64];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(now, sizeof now, "%s.%06ldZ", base, (long)tv.tv_usec);
    json_t *ghost = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:i, s:s, s:i}}", "apiVersion",
                              "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
                              "sched", "spec", "holderIdentity", "ghost", "leaseDurationSeconds",
                              2, "renewTime", now, "leaseTransitions", 3);
    got = 0;
    assert_int_equal(skiff_client_create(c, &leases, "kube-system", ghost, NULL, on_answer, NULL), 0);
    json_decref(ghost);
    run_ms(100);
    assert_int_equal(got, 201);
    cand_t b = {0};
    skiff_leader_t *lb = campaign(c, "sched", "b", &b);
    run_ms(300);
    assert_false(b.leading); /* the ghost's Lease is still fresh */
    run_ms(2500);
    assert_true(b.leading);
    got = 0;
    assert_int_equal(skiff_client_get(c, &leases, "kube-system", "sched", on_answer, NULL), 0);
    run_ms(100);
    assert_int_equal(got, 200);
    json_t *spec = json_object_get(answer, "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "holderIdentity")), "b");
    assert_int_equal(json_integer_value(json_object_get(spec, "leaseTransitions")), 4);
    json_decref(answer);
    answer = NULL;
    stopped = 0;
    skiff_leader_stop(lb, on_stopped, NULL);
    run_ms(200);
    assert_int_equal(stopped, 1);
    c->vt->free(c);
    run_ms(50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_leader_then_handover),
        cmocka_unit_test(test_takeover_after_expiry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
