/* tests/unit/test_node_view.c - the reduced Node the scheduler, the
 * DaemonSet and the EndpointSlice controllers cache (skiff_node_view,
 * core/controller/node_view.c): what they read of a node is kept, its
 * conditions, addresses and the like are dropped, the received node is
 * left as it was (not even referenced), and values nodes share are one
 * tree. */
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

/* A node as a kubelet registers and heartbeats it. */
static json_t *full_node(const char *name)
{
    json_error_t err;
    json_t *n = json_loads(
        "{\"apiVersion\":\"v1\",\"kind\":\"Node\","
        " \"metadata\":{\"name\":\"x\",\"uid\":\"u-1\",\"resourceVersion\":\"42\","
        "  \"generation\":1,\"creationTimestamp\":\"2026-01-01T00:00:00Z\","
        "  \"deletionTimestamp\":\"2026-01-01T01:00:00Z\",\"finalizers\":[\"example.com/x\"],"
        "  \"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Machine\",\"name\":\"m\","
        "   \"uid\":\"m-1\"}],"
        "  \"labels\":{\"kubernetes.io/hostname\":\"x\","
        "   \"topology.kubernetes.io/zone\":\"z1\",\"kubernetes.io/os\":\"linux\"},"
        "  \"annotations\":{\"node.alpha.kubernetes.io/ttl\":\"0\","
        "   \"kubectl.kubernetes.io/last-applied-configuration\":\"{...}\"},"
        "  \"managedFields\":[{\"manager\":\"kubelet\",\"operation\":\"Update\"}]},"
        " \"spec\":{\"podCIDR\":\"10.64.0.0/24\",\"podCIDRs\":[\"10.64.0.0/24\"],"
        "  \"unschedulable\":true,\"providerID\":\"skiff://x\","
        "  \"taints\":[{\"key\":\"dedicated\",\"value\":\"gpu\",\"effect\":\"NoSchedule\"}]},"
        " \"status\":{"
        "  \"capacity\":{\"cpu\":\"32\",\"memory\":\"256Gi\",\"pods\":\"110\"},"
        "  \"allocatable\":{\"cpu\":\"31\",\"memory\":\"250Gi\",\"pods\":\"110\"},"
        "  \"images\":[{\"names\":[\"nginx:1.27\"],\"sizeBytes\":70000000}],"
        "  \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\","
        "   \"message\":\"kubelet is posting ready status\","
        "   \"lastHeartbeatTime\":\"2026-01-01T00:00:10Z\","
        "   \"lastTransitionTime\":\"2026-01-01T00:00:01Z\"}],"
        "  \"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.16.0.1\"}],"
        "  \"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":10250}},"
        "  \"nodeInfo\":{\"kubeletVersion\":\"v1.32.0\",\"architecture\":\"amd64\"}}}",
        0, &err);
    assert_non_null(n);
    json_t *m = json_object_get(n, "metadata");
    json_object_set_new(m, "name", json_string(name));
    json_object_set_new(json_object_get(m, "labels"), "kubernetes.io/hostname", json_string(name));
    return n;
}

static void test_keeps_what_is_read(void **state)
{
    (void)state;
    json_t *node = full_node("n1");
    json_t *v = skiff_node_view(NULL, node);
    assert_non_null(v);
    static const char *const kept[] = {
        "apiVersion", "kind", "metadata.name", "metadata.uid", "metadata.resourceVersion",
        "metadata.generation", "metadata.creationTimestamp", "metadata.labels",
        "metadata.deletionTimestamp", "metadata.finalizers", "metadata.ownerReferences",
        "spec", "status.capacity", "status.allocatable", "status.images", NULL};
    for (const char *const *k = kept; *k; k++) {
        if (!json_at(v, *k)) fail_msg("%s was dropped", *k);
        if (!json_equal(json_at(v, *k), json_at(node, *k))) fail_msg("%s differs", *k);
    }
    assert_string_equal(
        json_string_value(json_object_get(json_at(v, "metadata.annotations"), "node.alpha.kubernetes.io/ttl")),
        "0");
    json_decref(v);
    json_decref(node);
}

static void test_drops_the_rest(void **state)
{
    (void)state;
    json_t *node = full_node("n1");
    json_t *v = skiff_node_view(NULL, node);
    static const char *const dropped[] = {"metadata.managedFields", "status.conditions",
                                          "status.addresses", "status.daemonEndpoints",
                                          "status.nodeInfo", NULL};
    for (const char *const *k = dropped; *k; k++)
        if (json_at(v, *k)) fail_msg("%s was kept", *k);
    json_t *ann = json_at(v, "metadata.annotations");
    assert_int_equal(json_object_size(ann), 1);
    assert_null(json_object_get(ann, "kubectl.kubernetes.io/last-applied-configuration"));
    json_decref(v);
    json_decref(node);
}

static int held_once(json_t *v)
{
    const char *k;
    size_t i;
    json_t *e;
    if (json_is_object(v)) {
        json_object_foreach(v, k, e) {
            if (!json_is_boolean(e) && e->refcount != 1) return 0;
            if (!held_once(e)) return 0;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            if (!json_is_boolean(e) && e->refcount != 1) return 0;
            if (!held_once(e)) return 0;
        }
    }
    return 1;
}

/* The received node is shared with the API server's threads: the view
 * neither changes it nor takes a reference to anything in it. */
static void test_input_untouched(void **state)
{
    (void)state;
    json_t *node = full_node("n1");
    json_t *before = json_deep_copy(node);
    json_t *v = skiff_node_view(NULL, node);
    assert_non_null(v);
    assert_true(json_equal(node, before));
    assert_int_equal(node->refcount, 1);
    assert_true(held_once(node));
    json_decref(v);
    json_decref(before);
    json_decref(node);
}

/* Two nodes of one machine type hold one capacity, one allocatable and
 * one images tree; their labels (a hostname each) are their own. */
static void test_alike_values_shared(void **state)
{
    (void)state;
    json_t *a = full_node("n1"), *b = full_node("n2");
    json_t *va = skiff_node_view(NULL, a), *vb = skiff_node_view(NULL, b);
    assert_non_null(va);
    assert_non_null(vb);
    assert_ptr_equal(json_at(va, "status.allocatable"), json_at(vb, "status.allocatable"));
    assert_ptr_equal(json_at(va, "status.capacity"), json_at(vb, "status.capacity"));
    assert_ptr_equal(json_at(va, "status.images"), json_at(vb, "status.images"));
    assert_ptr_not_equal(json_at(va, "metadata.labels"), json_at(vb, "metadata.labels"));
    assert_string_equal(
        json_string_value(json_object_get(json_at(vb, "metadata.labels"), "kubernetes.io/hostname")), "n2");
    json_decref(va);
    json_decref(vb);
    json_decref(a);
    json_decref(b);
}

/* Annotations that were only kubectl's last-applied copy leave none. */
static void test_only_last_applied(void **state)
{
    (void)state;
    json_t *n = full_node("n1");
    json_object_del(json_at(n, "metadata.annotations"), "node.alpha.kubernetes.io/ttl");
    json_t *v = skiff_node_view(NULL, n);
    assert_non_null(v);
    assert_null(json_at(v, "metadata.annotations"));
    assert_non_null(json_at(v, "metadata.name"));
    json_decref(v);
    json_decref(n);
}

/* A node without status (just registered by hand) has none in its view. */
static void test_bare_node(void **state)
{
    (void)state;
    json_t *n = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Node", "metadata",
                          "name", "bare");
    json_t *v = skiff_node_view(NULL, n);
    assert_non_null(v);
    assert_true(json_equal(v, n));
    assert_null(json_object_get(v, "status"));
    json_decref(v);
    json_decref(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_what_is_read),
        cmocka_unit_test(test_drops_the_rest),
        cmocka_unit_test(test_input_untouched),
        cmocka_unit_test(test_alike_values_shared),
        cmocka_unit_test(test_only_last_applied),
        cmocka_unit_test(test_bare_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
