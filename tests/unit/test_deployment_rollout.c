/* tests/unit/test_deployment_rollout.c - the Deployment controller's
 * rollout arithmetic (plugins/controllers/deployment/rollout.c) against
 * the numbers Kubernetes' deployment controller gives: maxSurge rounds up
 * and maxUnavailable down, both zero allows one unavailable, the new
 * ReplicaSet grows within the surge, old ones shrink within availability,
 * and a resize mid-rollout is spread in proportion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "rollout.h"

static int iop(json_t *v, int total, int up)
{
    int out = -99;
    int rc = dep_int_or_percent(v, total, up, &out);
    json_decref(v);
    return rc < 0 ? -1 : out;
}

static void test_int_or_percent(void **state)
{
    (void)state;
    assert_int_equal(iop(json_integer(2), 10, 1), 2);
    assert_int_equal(iop(json_string("25%"), 10, 1), 3); /* 2.5 up */
    assert_int_equal(iop(json_string("25%"), 10, 0), 2); /* 2.5 down */
    assert_int_equal(iop(json_string("100%"), 7, 0), 7);
    assert_int_equal(iop(json_string("0%"), 7, 1), 0);
    assert_int_equal(iop(json_null(), 7, 1), 0);
    assert_int_equal(iop(json_string("25"), 10, 1), -1);
    assert_int_equal(iop(json_string("x%"), 10, 1), -1);
}

static void test_fenceposts(void **state)
{
    (void)state;
    json_t *p25 = json_string("25%"), *zero = json_integer(0), *p0 = json_string("0%");
    int s, u;
    dep_fenceposts(p25, p25, 10, &s, &u);
    assert_int_equal(s, 3);
    assert_int_equal(u, 2);
    dep_fenceposts(p25, p25, 1, &s, &u); /* 0.25: surge 1, unavailable 0 */
    assert_int_equal(s, 1);
    assert_int_equal(u, 0);
    dep_fenceposts(zero, p0, 5, &s, &u); /* both zero: one may go */
    assert_int_equal(s, 0);
    assert_int_equal(u, 1);
    json_t *five = json_integer(5);
    assert_int_equal(dep_max_unavailable(1, zero, five, 3), 3); /* capped at replicas */
    assert_int_equal(dep_max_unavailable(0, zero, five, 3), 0); /* Recreate */
    assert_int_equal(dep_max_unavailable(1, p25, p25, 0), 0);
    assert_int_equal(dep_max_surge(1, p25, p25, 10), 3);
    assert_int_equal(dep_max_surge(0, p25, p25, 10), 0);
    json_decref(p25);
    json_decref(zero);
    json_decref(p0);
    json_decref(five);
}

static void test_new_rs_replicas(void **state)
{
    (void)state;
    /* 10 replicas, surge 3: a new ReplicaSet next to a full old one gets 3 */
    assert_int_equal(dep_new_rs_replicas(1, 10, 3, 10, 0), 3);
    /* total already at replicas + surge: no growth */
    assert_int_equal(dep_new_rs_replicas(1, 10, 3, 13, 3), 3);
    /* old ones shrank by 4: grows by 4 */
    assert_int_equal(dep_new_rs_replicas(1, 10, 3, 9, 3), 7);
    /* never beyond replicas */
    assert_int_equal(dep_new_rs_replicas(1, 10, 3, 8, 9), 10);
    /* Recreate: all at once */
    assert_int_equal(dep_new_rs_replicas(0, 10, 0, 10, 0), 10);
}

static void test_scale_down_old(void **state)
{
    (void)state;
    /* old A: 5 with 3 available; old B: 5 with 5 available; new: 3 of which
     * 0 available; replicas 10, maxUnavailable 2 -> min available 8 */
    dep_rs_t old[2] = {{"a", 1, 5, 3, -1}, {"b", 2, 5, 5, -1}};
    int all = 13, min_available = 8, new_unavailable = 3;
    int max_down = all - min_available - new_unavailable; /* 2 */
    assert_int_equal(max_down, 2);
    /* unhealthy first: a loses its 2 unavailable pods */
    assert_int_equal(dep_cleanup_unhealthy(old, 2, max_down), 2);
    assert_int_equal(old[0].spec, 3);
    assert_int_equal(old[1].spec, 5);
    /* 8 available, 8 needed: nothing more */
    assert_int_equal(dep_scale_down_old(old, 2, 8, min_available), 0);
    /* 10 available: two more go, from the oldest */
    assert_int_equal(dep_scale_down_old(old, 2, 10, min_available), 2);
    assert_int_equal(old[0].spec, 1);
    assert_int_equal(old[1].spec, 5);
    /* a large budget empties the oldest then takes from the next */
    assert_int_equal(dep_scale_down_old(old, 2, 12, min_available), 4);
    assert_int_equal(old[0].spec, 0);
    assert_int_equal(old[1].spec, 2);
}

static void test_proportional(void **state)
{
    (void)state;
    /* the example of Kubernetes' Deployment documentation: 10 replicas,
     * maxSurge 3, mid-rollout old 8 and new 5 (13 = 10 + 3), scaled to 15
     * (18 allowed): of the 5 new replicas 3 go to the old ReplicaSet and 2
     * to the new one */
    dep_rs_t rs[2] = {{"old", 1000, 8, 8, 13}, {"new", 2000, 5, 0, 13}};
    dep_proportional_scale(rs, 2, 15, 3, 13);
    int o = 0, n = 0;
    for (int i = 0; i < 2; i++) {
        if (rs[i].name[0] == 'o') o = rs[i].spec;
        else n = rs[i].spec;
    }
    assert_int_equal(o, 11);
    assert_int_equal(n, 7);

    /* shrinking from 18 to 7 + 2 surge = 9: 11:7 gives 5.5 and 3.5, which
     * round to 6 and 4; the one left over comes off the largest */
    dep_rs_t s[2] = {{"old", 1000, 11, 11, 18}, {"new", 2000, 7, 0, 18}};
    dep_proportional_scale(s, 2, 7, 2, 18);
    o = n = 0;
    for (int i = 0; i < 2; i++) {
        if (s[i].name[0] == 'o') o = s[i].spec;
        else n = s[i].spec;
    }
    assert_int_equal(o + n, 9);
    assert_int_equal(o, 5);
    assert_int_equal(n, 4);

    /* to zero: everything goes */
    dep_rs_t z[2] = {{"old", 1000, 3, 3, 5}, {"new", 2000, 2, 0, 5}};
    dep_proportional_scale(z, 2, 0, 0, 5);
    assert_int_equal(z[0].spec + z[1].spec, 0);

    /* without the annotation the Deployment's status.replicas is the base */
    dep_rs_t w[2] = {{"old", 1000, 4, 4, -1}, {"new", 2000, 4, 0, -1}};
    dep_proportional_scale(w, 2, 16, 0, 8);
    assert_int_equal(w[0].spec, 8);
    assert_int_equal(w[1].spec, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_or_percent),
        cmocka_unit_test(test_fenceposts),
        cmocka_unit_test(test_new_rs_replicas),
        cmocka_unit_test(test_scale_down_old),
        cmocka_unit_test(test_proportional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
