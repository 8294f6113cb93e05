/* tests/unit/test_daemonset_placement.c - which nodes a DaemonSet pod
 * belongs on (plugins/controllers/daemonset/placement.c): nodeSelector,
 * required node affinity (matchExpressions and matchFields, every
 * operator), spec.nodeName, taints against tolerations including the ones
 * every daemon pod gets, and how a pod names its node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../plugins/controllers/daemonset/placement.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v) fail_msg("bad test JSON (%s): %s", e.text, text);
    return v;
}

static json_t *node(const char *name, const char *labels, const char *taints)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"metadata\":{\"name\":\"%s\",\"labels\":%s},\"spec\":{\"taints\":%s}}",
             name, labels ? labels : "{}", taints ? taints : "[]");
    return J(buf);
}

static void check_run(const char *spec_text, json_t *n, int want_run, int want_continue)
{
    json_t *spec = J(spec_text);
    ds_add_daemon_tolerations(spec);
    int run, cont;
    ds_node_should_run(spec, n, &run, &cont);
    if (run != want_run || cont != want_continue)
        fail_msg("spec %s on node %s: run %d continue %d, want %d %d", spec_text,
                 json_dumps(n, JSON_COMPACT), run, cont, want_run, want_continue);
    json_decref(spec);
    json_decref(n);
}

static void test_node_selector(void **state)
{
    check_run("{}", node("a", NULL, NULL), 1, 1);
    check_run("{\"nodeSelector\":{\"disk\":\"ssd\"}}", node("a", "{\"disk\":\"ssd\"}", NULL), 1, 1);
    check_run("{\"nodeSelector\":{\"disk\":\"ssd\"}}", node("a", "{\"disk\":\"hdd\"}", NULL), 0, 0);
    check_run("{\"nodeSelector\":{\"disk\":\"ssd\"}}", node("a", NULL, NULL), 0, 0);
    check_run("{\"nodeName\":\"b\"}", node("a", NULL, NULL), 0, 0);
    check_run("{\"nodeName\":\"a\"}", node("a", NULL, NULL), 1, 1);
}

#define AFF(terms)                                                                              \
    "{\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"  \
    "{\"nodeSelectorTerms\":" terms "}}}}"

static void test_node_affinity(void **state)
{
    const char *in = AFF("[{\"matchExpressions\":[{\"key\":\"zone\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]}]}]");
    check_run(in, node("n", "{\"zone\":\"b\"}", NULL), 1, 1);
    check_run(in, node("n", "{\"zone\":\"c\"}", NULL), 0, 0);
    const char *notin = AFF("[{\"matchExpressions\":[{\"key\":\"zone\",\"operator\":\"NotIn\",\"values\":[\"a\"]}]}]");
    check_run(notin, node("n", NULL, NULL), 1, 1);
    check_run(notin, node("n", "{\"zone\":\"a\"}", NULL), 0, 0);
    const char *exists = AFF("[{\"matchExpressions\":[{\"key\":\"gpu\",\"operator\":\"Exists\"}]}]");
    check_run(exists, node("n", "{\"gpu\":\"\"}", NULL), 1, 1);
    check_run(exists, node("n", NULL, NULL), 0, 0);
    const char *dne = AFF("[{\"matchExpressions\":[{\"key\":\"gpu\",\"operator\":\"DoesNotExist\"}]}]");
    check_run(dne, node("n", NULL, NULL), 1, 1);
    const char *gt = AFF("[{\"matchExpressions\":[{\"key\":\"cores\",\"operator\":\"Gt\",\"values\":[\"4\"]}]}]");
    check_run(gt, node("n", "{\"cores\":\"8\"}", NULL), 1, 1);
    check_run(gt, node("n", "{\"cores\":\"4\"}", NULL), 0, 0);
    check_run(gt, node("n", "{\"cores\":\"x\"}", NULL), 0, 0);
    const char *lt = AFF("[{\"matchExpressions\":[{\"key\":\"cores\",\"operator\":\"Lt\",\"values\":[\"4\"]}]}]");
    check_run(lt, node("n", "{\"cores\":\"2\"}", NULL), 1, 1);
    /* terms are ORed, requirements in a term ANDed, an empty term matches nothing */
    const char *or = AFF("[{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},"
                         "{\"key\":\"b\",\"operator\":\"Exists\"}]},"
                         "{\"matchFields\":[{\"key\":\"metadata.name\",\"operator\":\"In\",\"values\":[\"special\"]}]}]");
    check_run(or, node("n", "{\"a\":\"1\"}", NULL), 0, 0);
    check_run(or, node("n", "{\"a\":\"1\",\"b\":\"2\"}", NULL), 1, 1);
    check_run(or, node("special", NULL, NULL), 1, 1);
    check_run(AFF("[{}]"), node("n", NULL, NULL), 0, 0);
}

static void test_taints(void **state)
{
    const char *ns = "[{\"key\":\"dedicated\",\"value\":\"db\",\"effect\":\"NoSchedule\"}]";
    const char *ne = "[{\"key\":\"dedicated\",\"value\":\"db\",\"effect\":\"NoExecute\"}]";
    const char *pref = "[{\"key\":\"dedicated\",\"value\":\"db\",\"effect\":\"PreferNoSchedule\"}]";
    /* NoSchedule keeps new pods away but lets a running one stay */
    check_run("{}", node("n", NULL, ns), 0, 1);
    check_run("{}", node("n", NULL, ne), 0, 0);
    check_run("{}", node("n", NULL, pref), 1, 1);
    check_run("{\"tolerations\":[{\"key\":\"dedicated\",\"operator\":\"Equal\",\"value\":\"db\"}]}",
              node("n", NULL, ne), 1, 1);
    check_run("{\"tolerations\":[{\"key\":\"dedicated\",\"value\":\"web\"}]}", node("n", NULL, ns), 0, 1);
    check_run("{\"tolerations\":[{\"key\":\"dedicated\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]}",
              node("n", NULL, ne), 0, 0);
    check_run("{\"tolerations\":[{\"operator\":\"Exists\"}]}", node("n", NULL, ne), 1, 1);
    /* the tolerations every daemon pod gets */
    check_run("{}", node("n", NULL, "[{\"key\":\"node.kubernetes.io/unschedulable\",\"effect\":\"NoSchedule\"}]"), 1, 1);
    check_run("{}", node("n", NULL, "[{\"key\":\"node.kubernetes.io/not-ready\",\"effect\":\"NoExecute\"}]"), 1, 1);
    check_run("{}", node("n", NULL, "[{\"key\":\"node.kubernetes.io/disk-pressure\",\"effect\":\"NoSchedule\"}]"), 1, 1);
    check_run("{}", node("n", NULL, "[{\"key\":\"node.kubernetes.io/network-unavailable\",\"effect\":\"NoSchedule\"}]"), 0, 1);
    check_run("{\"hostNetwork\":true}", node("n", NULL, "[{\"key\":\"node.kubernetes.io/network-unavailable\",\"effect\":\"NoSchedule\"}]"), 1, 1);
}

static void test_default_tolerations(void **state)
{
    json_t *spec = J("{\"tolerations\":[{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\","
                     "\"effect\":\"NoExecute\",\"tolerationSeconds\":300},{\"key\":\"mine\",\"operator\":\"Exists\"}]}");
    ds_add_daemon_tolerations(spec);
    json_t *tols = json_object_get(spec, "tolerations");
    /* the not-ready one replaced (no tolerationSeconds), ours kept, five more */
    assert_int_equal(json_array_size(tols), 7);
    assert_null(json_object_get(json_array_get(tols, 0), "tolerationSeconds"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(tols, 1), "key")), "mine");
    ds_add_daemon_tolerations(spec);
    assert_int_equal(json_array_size(json_object_get(spec, "tolerations")), 7);
    json_decref(spec);
}

static void test_target_node(void **state)
{
    json_t *spec = J(AFF("[{\"matchExpressions\":[{\"key\":\"zone\",\"operator\":\"In\",\"values\":[\"a\"]}]}]"));
    ds_set_node_affinity(spec, "node-7");
    json_t *pod = json_pack("{s:O}", "spec", spec);
    assert_string_equal(ds_target_node(pod), "node-7");
    json_t *terms = json_object_get(json_object_get(json_object_get(json_object_get(spec, "affinity"),
        "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution"), "nodeSelectorTerms");
    assert_int_equal(json_array_size(terms), 1);
    json_object_set_new(json_object_get(pod, "spec"), "nodeName", json_string("bound"));
    assert_string_equal(ds_target_node(pod), "bound");
    json_decref(pod);
    json_decref(spec);
    json_t *bare = J("{\"spec\":{}}");
    assert_null(ds_target_node(bare));
    json_decref(bare);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_selector),
        cmocka_unit_test(test_node_affinity),
        cmocka_unit_test(test_taints),
        cmocka_unit_test(test_default_tolerations),
        cmocka_unit_test(test_target_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
