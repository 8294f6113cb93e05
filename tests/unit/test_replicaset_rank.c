/* tests/unit/test_replicaset_rank.c - the order in which a ReplicaSet
 * deletes pods on scale-down (plugins/controllers/replicaset/rank.c), as
 * Kubernetes orders them: unscheduled before scheduled, Pending before
 * Running, not ready before ready, lower pod-deletion-cost first,
 * doubled-up before alone, ready for less time first, more restarts first,
 * newer before older. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "rank.h"

/* A pod: name, node ("" none), phase, ready since (NULL: not ready),
 * created, restarts, deletion cost (NULL: none). */
static json_t *pod(const char *name, const char *node, const char *phase, const char *ready_at,
                   const char *created, int restarts, const char *cost)
{
    json_t *p = json_pack("{s:{s:s, s:s}, s:{}, s:{s:s, s:[{s:i}]}}", "metadata", "name", name,
                          "creationTimestamp", created, "spec", "status", "phase", phase,
                          "containerStatuses", "restartCount", restarts);
    if (*node) json_object_set_new(json_object_get(p, "spec"), "nodeName", json_string(node));
    if (ready_at)
        json_object_set_new(json_object_get(p, "status"), "conditions",
                            json_pack("[{s:s, s:s, s:s}]", "type", "Ready", "status", "True",
                                      "lastTransitionTime", ready_at));
    if (cost)
        json_object_set_new(json_object_get(p, "metadata"), "annotations",
                            json_pack("{s:s}", "controller.kubernetes.io/pod-deletion-cost", cost));
    return p;
}

static const char *T0 = "2026-01-01T00:00:00Z", *T1 = "2026-01-01T00:01:00Z",
                  *T2 = "2026-01-01T00:02:00Z";

/* a is deleted before b, and b after a */
static void before(json_t *a, json_t *b)
{
    assert_true(rs_delete_order(a, 1, b, 1) < 0);
    assert_true(rs_delete_order(b, 1, a, 1) > 0);
    json_decref(a);
    json_decref(b);
}

static void test_pairs(void **state)
{
    (void)state;
    /* unscheduled first, even if older */
    before(pod("a", "", "Pending", NULL, T0, 0, NULL), pod("b", "n1", "Pending", NULL, T2, 0, NULL));
    /* Pending before Unknown before Running */
    before(pod("a", "n1", "Pending", NULL, T0, 0, NULL), pod("b", "n1", "Running", NULL, T2, 0, NULL));
    before(pod("a", "n1", "Unknown", NULL, T0, 0, NULL), pod("b", "n1", "Running", NULL, T2, 0, NULL));
    /* not ready before ready */
    before(pod("a", "n1", "Running", NULL, T0, 0, NULL), pod("b", "n1", "Running", T1, T2, 0, NULL));
    /* lower deletion cost first, whatever the age */
    before(pod("a", "n1", "Running", T1, T0, 0, "-5"), pod("b", "n1", "Running", T1, T2, 0, NULL));
    before(pod("a", "n1", "Running", T1, T2, 0, "1"), pod("b", "n1", "Running", T1, T0, 0, "7"));
    /* ready for less time first */
    before(pod("a", "n1", "Running", T2, T0, 0, NULL), pod("b", "n1", "Running", T1, T0, 0, NULL));
    /* more restarts first */
    before(pod("a", "n1", "Running", T1, T0, 3, NULL), pod("b", "n1", "Running", T1, T0, 0, NULL));
    /* newer first */
    before(pod("a", "n1", "Running", T1, T2, 0, NULL), pod("b", "n1", "Running", T1, T0, 0, NULL));
    /* equal pods are equal */
    json_t *a = pod("a", "n1", "Running", T1, T0, 0, NULL), *b = pod("b", "n1", "Running", T1, T0, 0, NULL);
    assert_int_equal(rs_delete_order(a, 1, b, 1), 0);
    /* doubled up on a node first */
    assert_true(rs_delete_order(a, 2, b, 1) < 0);
    json_decref(a);
    json_decref(b);
}

static void test_sort(void **state)
{
    (void)state;
    json_t *p[5] = {
        pod("ready-old", "n1", "Running", T0, T0, 0, NULL),
        pod("unscheduled", "", "Pending", NULL, T0, 0, NULL),
        pod("doubled", "n2", "Running", T0, T0, 0, NULL),
        pod("pending", "n3", "Pending", NULL, T0, 0, NULL),
        pod("doubled-too", "n2", "Running", T0, T0, 0, NULL),
    };
    json_t *v[5];
    memcpy(v, p, sizeof v);
    rs_rank_for_deletion(v, 5, NULL);
    const char *want[5] = {"unscheduled", "pending", "doubled", "doubled-too", "ready-old"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_object_get(json_object_get(v[i], "metadata"),
                                                              "name")), want[i]);
    /* pods of a sibling ReplicaSet on n1 make ready-old the doubled-up one */
    json_t *related = json_array();
    for (int i = 0; i < 5; i++) json_array_append(related, p[i]);
    json_array_append_new(related, pod("sib1", "n1", "Running", T0, T0, 0, NULL));
    json_array_append_new(related, pod("sib2", "n1", "Running", T0, T0, 0, NULL));
    memcpy(v, p, sizeof v);
    rs_rank_for_deletion(v, 5, related);
    const char *want2[5] = {"unscheduled", "pending", "ready-old", "doubled", "doubled-too"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_object_get(json_object_get(v[i], "metadata"),
                                                              "name")), want2[i]);
    json_decref(related);
    for (int i = 0; i < 5; i++) json_decref(p[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs),
        cmocka_unit_test(test_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
