/* tests/unit/test_pod_view.c - the reduced pod the controllers and the
 * scheduler cache (skiff_pod_view, core/controller/pod_view.c): what each
 * of them reads of a bound pod is kept, the rest is dropped, a pod not
 * bound yet is kept whole, the received pod is left as it was (not even
 * referenced), and values pods share are one tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <skiff/controller.h>

#include "json_at.h"

/* A pod as the API server stores it once defaulted, scheduled and running. */
static json_t *full_pod(const char *name, const char *node)
{
    json_error_t err;
    json_t *p = json_loads(
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\","
        " \"metadata\":{\"name\":\"x\",\"generateName\":\"web-7d4b9-\",\"namespace\":\"default\","
        "  \"uid\":\"u-1\",\"resourceVersion\":\"42\","
        "  \"creationTimestamp\":\"2026-01-01T00:00:00Z\","
        "  \"deletionTimestamp\":\"2026-01-01T00:05:00Z\",\"deletionGracePeriodSeconds\":30,"
        "  \"labels\":{\"app\":\"web\",\"pod-template-hash\":\"7d4b9\"},"
        "  \"annotations\":{\"controller.kubernetes.io/pod-deletion-cost\":\"5\","
        "   \"batch.kubernetes.io/job-completion-index\":\"3\","
        "   \"kubectl.kubernetes.io/last-applied-configuration\":\"{...}\"},"
        "  \"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
        "   \"name\":\"web-7d4b9\",\"uid\":\"rs-1\",\"controller\":true,"
        "   \"blockOwnerDeletion\":true}],"
        "  \"finalizers\":[\"batch.kubernetes.io/job-tracking\"],"
        "  \"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Update\"}]},"
        " \"spec\":{\"nodeName\":\"n1\",\"hostname\":\"web-0\",\"subdomain\":\"web\","
        "  \"restartPolicy\":\"Always\",\"schedulerName\":\"default-scheduler\","
        "  \"priority\":100,\"preemptionPolicy\":\"Never\","
        "  \"serviceAccountName\":\"default\",\"dnsPolicy\":\"ClusterFirst\","
        "  \"securityContext\":{},\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\"}],"
        "  \"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
        "   {\"nodeSelectorTerms\":[{\"matchFields\":[{\"key\":\"metadata.name\","
        "   \"operator\":\"In\",\"values\":[\"n1\"]}]}]}}},"
        "  \"containers\":[{\"name\":\"c\",\"image\":\"nginx\",\"command\":[\"nginx\"],"
        "   \"env\":[{\"name\":\"A\",\"value\":\"b\"}],"
        "   \"ports\":[{\"name\":\"http\",\"containerPort\":80,\"protocol\":\"TCP\"}],"
        "   \"resources\":{\"requests\":{\"cpu\":\"100m\"}},"
        "   \"volumeMounts\":[{\"name\":\"token\",\"mountPath\":\"/var/run\"}],"
        "   \"readinessProbe\":{\"httpGet\":{\"port\":80}},"
        "   \"terminationMessagePath\":\"/dev/termination-log\"}],"
        "  \"initContainers\":[{\"name\":\"side\",\"image\":\"envoy\","
        "   \"restartPolicy\":\"Always\"}],"
        "  \"volumes\":[{\"name\":\"token\",\"projected\":{\"sources\":[]}},"
        "   {\"name\":\"data\",\"persistentVolumeClaim\":{\"claimName\":\"data-web-0\"}}]},"
        " \"status\":{\"phase\":\"Running\",\"qosClass\":\"Burstable\",\"podIP\":\"10.0.0.5\","
        "  \"nominatedNodeName\":\"n2\","
        "  \"podIPs\":[{\"ip\":\"10.0.0.5\"}],\"hostIP\":\"192.168.0.1\","
        "  \"startTime\":\"2026-01-01T00:00:01Z\","
        "  \"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"True\"},"
        "   {\"type\":\"Ready\",\"status\":\"True\",\"lastProbeTime\":null,"
        "   \"lastTransitionTime\":\"2026-01-01T00:00:02Z\"}],"
        "  \"containerStatuses\":[{\"name\":\"c\",\"ready\":true,\"started\":true,"
        "   \"restartCount\":2,\"image\":\"nginx\",\"imageID\":\"sha256:abc\","
        "   \"containerID\":\"containerd://1\",\"state\":{\"running\":{}},"
        "   \"lastState\":{\"terminated\":{\"exitCode\":137}}}]}}",
        0, &err);
    assert_non_null(p);
    json_t *m = json_object_get(p, "metadata");
    json_object_set_new(m, "name", json_string(name));
    json_object_set_new(json_object_get(p, "spec"), "nodeName", json_string(node));
    return p;
}

static void test_keeps_what_is_read(void **state)
{
    (void)state;
    json_t *pod = full_pod("web-0", "n1");
    json_t *v = skiff_pod_view(NULL, pod);
    assert_non_null(v);
    static const char *const kept[] = {
        "apiVersion", "kind", "metadata.name", "metadata.namespace",
        "metadata.uid", "metadata.resourceVersion", "metadata.creationTimestamp",
        "metadata.deletionTimestamp", "metadata.deletionGracePeriodSeconds",
        "metadata.labels.pod-template-hash", "metadata.ownerReferences.0.controller",
        "metadata.finalizers.0",
        "spec.nodeName", "spec.hostname", "spec.subdomain",
        "spec.affinity.nodeAffinity", "spec.containers.0.name",
        "spec.containers.0.image", "spec.containers.0.resources.requests.cpu",
        "spec.initContainers.0.image", "spec.priority", "spec.preemptionPolicy",
        "status.nominatedNodeName",
        "spec.containers.0.ports.0.containerPort", "spec.initContainers.0.restartPolicy",
        "status.phase", "status.podIP",
        "status.containerStatuses.0.restartCount",
        "status.containerStatuses.0.ready", "status.containerStatuses.0.started",
        "status.containerStatuses.0.lastState.terminated.exitCode", NULL};
    for (const char *const *k = kept; *k; k++) {
        if (!json_at(v, *k)) fail_msg("%s was dropped", *k);
        assert_true(json_equal(json_at(v, *k), json_at(pod, *k)));
    }
    /* of the conditions, Ready only (and its time) */
    assert_int_equal(json_array_size(json_at(v, "status.conditions")), 1);
    assert_string_equal(json_string_value(json_at(v, "status.conditions.0.type")), "Ready");
    assert_true(json_equal(json_at(v, "status.conditions.0.lastTransitionTime"),
                           json_at(pod, "status.conditions.1.lastTransitionTime")));
    assert_null(json_at(v, "status.conditions.0.lastProbeTime"));
    /* of the volumes, the claim only */
    assert_int_equal(json_array_size(json_at(v, "spec.volumes")), 1);
    assert_string_equal(json_string_value(json_at(v, "spec.volumes.0.persistentVolumeClaim.claimName")),
                        "data-web-0");
    json_t *ann = json_at(v, "metadata.annotations");
    assert_string_equal(
        json_string_value(json_object_get(ann, "controller.kubernetes.io/pod-deletion-cost")), "5");
    assert_string_equal(
        json_string_value(json_object_get(ann, "batch.kubernetes.io/job-completion-index")), "3");
    json_decref(v);
    json_decref(pod);
}

static void test_drops_the_rest(void **state)
{
    (void)state;
    json_t *pod = full_pod("web-0", "n1");
    json_t *v = skiff_pod_view(NULL, pod);
    static const char *const dropped[] = {
        "metadata.managedFields", "metadata.generateName", "spec.serviceAccountName",
        /* Kubernetes' defaults, which readers take for a missing member */
        "spec.restartPolicy", "spec.schedulerName",
        "spec.dnsPolicy", "spec.securityContext", "spec.tolerations",
        "spec.containers.0.command", "spec.containers.0.env",
        "spec.containers.0.volumeMounts",
        "spec.containers.0.terminationMessagePath",
        "spec.volumes.1", "spec.volumes.0.projected", "spec.containers.0.readinessProbe",
        "status.qosClass", "status.hostIP", "status.startTime",
        "status.containerStatuses.0.state", /* running: its start time only */
        "status.podIPs", /* the same as podIP */
        "status.containerStatuses.0.image", "status.containerStatuses.0.imageID",
        "status.containerStatuses.0.containerID", NULL};
    for (const char *const *k = dropped; *k; k++)
        if (json_at(v, *k)) fail_msg("%s was kept", *k);
    assert_null(json_object_get(json_at(v, "metadata.annotations"),
                                "kubectl.kubernetes.io/last-applied-configuration"));
    json_decref(v);
    json_decref(pod);
}

/* restartPolicy, schedulerName, priority and preemptionPolicy are left
 * out when they hold Kubernetes' default, kept otherwise. */
static void test_defaults_left_out(void **state)
{
    (void)state;
    json_t *pod = full_pod("web-0", "n1");
    json_t *spec = json_object_get(pod, "spec");
    json_object_set_new(spec, "restartPolicy", json_string("OnFailure"));
    json_object_set_new(spec, "schedulerName", json_string("my-scheduler"));
    json_object_set_new(spec, "priority", json_integer(0));
    json_object_set_new(spec, "preemptionPolicy", json_string("PreemptLowerPriority"));
    json_t *v = skiff_pod_view(NULL, pod);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_at(v, "spec.restartPolicy")), "OnFailure");
    assert_string_equal(json_string_value(json_at(v, "spec.schedulerName")), "my-scheduler");
    assert_null(json_at(v, "spec.priority"));
    assert_null(json_at(v, "spec.preemptionPolicy"));
    json_decref(v);
    json_decref(pod);
}

static int counted_once(const json_t *e)
{
    return json_is_boolean(e) || json_is_null(e) || e->refcount == 1;
}

/* 1 when no value under v (v excepted) has another reference (true,
 * false and null are jansson's singletons, never counted). */
static int held_once(json_t *v)
{
    const char *k;
    size_t i;
    json_t *e;
    if (json_is_object(v)) {
        json_object_foreach(v, k, e) if (!counted_once(e) || !held_once(e)) return 0;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) if (!counted_once(e) || !held_once(e)) return 0;
    }
    return 1;
}

static void test_input_untouched(void **state)
{
    (void)state;
    json_t *pod = full_pod("web-0", "n1");
    json_t *before = json_deep_copy(pod);
    json_t *v = skiff_pod_view(NULL, pod);
    assert_true(json_equal(pod, before));
    /* the view holds copies: nothing of the received tree is referenced
     * (other threads read it; its reference counts are not written) */
    assert_true(held_once(pod));
    json_decref(v);
    /* the received pod outlives its view, and the other way round */
    assert_true(json_equal(pod, before));
    v = skiff_pod_view(NULL, pod);
    json_decref(pod);
    assert_string_equal(json_string_value(json_at(v, "metadata.name")), "web-0");
    json_decref(v);
    json_decref(before);
}

static void test_shared_values_interned(void **state)
{
    (void)state;
    json_t *a = full_pod("web-0", "n1"), *b = full_pod("web-1", "n2");
    json_t *va = skiff_pod_view(NULL, a), *vb = skiff_pod_view(NULL, b);
    /* the two pods' trees are distinct; their views share one copy */
    assert_ptr_not_equal(json_at(a, "metadata.labels"), json_at(b, "metadata.labels"));
    assert_ptr_equal(json_at(va, "metadata.labels"), json_at(vb, "metadata.labels"));
    assert_ptr_equal(json_at(va, "metadata.ownerReferences"), json_at(vb, "metadata.ownerReferences"));
    assert_ptr_equal(json_at(va, "metadata.annotations"), json_at(vb, "metadata.annotations"));
    assert_ptr_equal(json_at(va, "spec.containers"), json_at(vb, "spec.containers"));
    assert_ptr_equal(json_at(va, "status.containerStatuses"), json_at(vb, "status.containerStatuses"));
    /* ready in the same second: one conditions tree */
    assert_ptr_equal(json_at(va, "status.conditions"), json_at(vb, "status.conditions"));
    assert_string_equal(json_string_value(json_at(va, "spec.nodeName")), "n1");
    assert_string_equal(json_string_value(json_at(vb, "spec.nodeName")), "n2");
    /* a template's pods on one node: one spec */
    json_t *c = full_pod("web-2", "n1"), *vc = skiff_pod_view(NULL, c);
    assert_ptr_equal(json_at(va, "spec"), json_at(vc, "spec"));
    assert_ptr_not_equal(json_at(va, "spec"), json_at(vb, "spec"));
    json_decref(va);
    json_decref(vb);
    json_decref(vc);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_changed_containers_not_taken_for_others(void **state)
{
    (void)state;
    /* pods of two templates, one after the other: each view has its own
     * pod's containers, never the last one's */
    json_t *a = full_pod("web-0", "n1"), *b = full_pod("web-1", "n1");
    json_object_set_new(json_at(b, "spec.containers.0"), "image", json_string("nginx:2"));
    json_t *c = full_pod("web-2", "n1");
    json_object_set_new(json_at(c, "spec.containers.0.ports.0"), "containerPort", json_integer(81));
    json_t *va = skiff_pod_view(NULL, a), *vb = skiff_pod_view(NULL, b);
    json_t *vc = skiff_pod_view(NULL, c), *va2 = skiff_pod_view(NULL, a);
    assert_string_equal(json_string_value(json_at(va, "spec.containers.0.image")), "nginx");
    assert_string_equal(json_string_value(json_at(vb, "spec.containers.0.image")), "nginx:2");
    assert_int_equal(json_integer_value(json_at(vc, "spec.containers.0.ports.0.containerPort")), 81);
    assert_int_equal(json_integer_value(json_at(va2, "spec.containers.0.ports.0.containerPort")), 80);
    assert_ptr_not_equal(json_at(va, "spec.containers"), json_at(vb, "spec.containers"));
    assert_ptr_not_equal(json_at(va, "spec.containers"), json_at(vc, "spec.containers"));
    assert_ptr_equal(json_at(va, "spec.containers"), json_at(va2, "spec.containers"));
    /* a member the view drops (env) does not make containers differ */
    json_object_set_new(json_at(a, "spec.containers.0"), "env", json_array());
    json_t *va3 = skiff_pod_view(NULL, a);
    assert_ptr_equal(json_at(va, "spec.containers"), json_at(va3, "spec.containers"));
    json_t *vs[] = {va, vb, vc, va2, va3, a, b, c};
    for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) json_decref(vs[i]);
}

static void test_dual_stack_addresses_kept(void **state)
{
    (void)state;
    json_t *pod = full_pod("web-0", "n1");
    json_t *ips = json_pack("[{s:s}, {s:s}]", "ip", "10.0.0.5", "ip", "fd00::5");
    json_object_set_new(json_at(pod, "status"), "podIPs", ips);
    json_t *v = skiff_pod_view(NULL, pod);
    assert_true(json_equal(json_at(v, "status.podIPs"), ips));
    assert_string_equal(json_string_value(json_at(v, "status.podIP")), "10.0.0.5");
    json_decref(v);
    json_decref(pod);
}

static void test_minimal_and_odd_objects(void **state)
{
    (void)state;
    /* a pod just bound, with no status yet */
    json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:[{s:s}]}}", "apiVersion", "v1",
                          "kind", "Pod", "metadata", "name", "p", "namespace", "ns", "spec",
                          "nodeName", "n1", "containers", "name", "c");
    json_t *v = skiff_pod_view(NULL, p);
    assert_non_null(v);
    assert_ptr_not_equal(v, p);
    assert_null(json_object_get(v, "status"));
    assert_string_equal(json_string_value(json_at(v, "spec.containers.0.name")), "c");
    json_decref(v);
    json_decref(p);
    /* not bound yet (no nodeName, or an empty one): kept whole, the very
     * tree (the scheduler's steps read any member of the pod they place) */
    p = full_pod("web-0", "");
    v = skiff_pod_view(NULL, p);
    assert_ptr_equal(v, p);
    json_decref(v);
    json_object_del(json_at(p, "spec"), "nodeName");
    v = skiff_pod_view(NULL, p);
    assert_ptr_equal(v, p);
    assert_non_null(json_at(v, "spec.tolerations"));
    json_decref(v);
    json_decref(p);
    /* not an object: passed through */
    json_t *s = json_string("x");
    v = skiff_pod_view(NULL, s);
    assert_ptr_equal(v, s);
    json_decref(v);
    json_decref(s);
}

static void test_transform_descriptor(void **state)
{
    (void)state;
    skiff_controller_transform_t t = skiff_pod_view_transform(2);
    assert_int_equal(t.secondary, 2);
    assert_string_equal(t.transform_id, SKIFF_POD_VIEW_ID);
    assert_ptr_equal(t.fn, skiff_pod_view);
    assert_null(t.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_what_is_read),
        cmocka_unit_test(test_drops_the_rest),
        cmocka_unit_test(test_defaults_left_out),
        cmocka_unit_test(test_input_untouched),
        cmocka_unit_test(test_shared_values_interned),
        cmocka_unit_test(test_changed_containers_not_taken_for_others),
        cmocka_unit_test(test_dual_stack_addresses_kept),
        cmocka_unit_test(test_minimal_and_odd_objects),
        cmocka_unit_test(test_transform_descriptor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
