/* tests/unit/test_rbac.c - the RBAC authorizer, the node authorizer, the
 * denial messages and the default roles.
 *
 * Rules are matched the way Kubernetes matches them (wildcards,
 * resourceNames, subresources, non-resource URLs, aggregation, binding
 * scope, ServiceAccount subjects); the default roles give view, edit,
 * admin and cluster-admin what Kubernetes users expect; the node
 * authorizer keeps a node to its own objects; 10,000 decisions over 500
 * roles stay well under a second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include <skiff/errors.h>

#include "object/registry.h"
#include "security/rbac.h"

/* ---- helpers ------------------------------------------------------------------ */

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

static void put(rbac_index_t *idx, const char *text)
{
    json_t *o = load(text);
    assert_int_equal(rbac_index_put(idx, o), 0);
    json_decref(o);
}

#define CLUSTER_ROLE(name, rules)                                                              \
    "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"" name "\"},\"rules\":" rules "}"
#define ROLE(ns, name, rules)                                                                  \
    "{\"kind\":\"Role\",\"metadata\":{\"namespace\":\"" ns "\",\"name\":\"" name "\"},"        \
    "\"rules\":" rules "}"
#define CRB(name, role, subjects)                                                              \
    "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"" name "\"},\"roleRef\":{"      \
    "\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"" role     \
    "\"},\"subjects\":" subjects "}"
#define RB(ns, name, kind, role, subjects)                                                     \
    "{\"kind\":\"RoleBinding\",\"metadata\":{\"namespace\":\"" ns "\",\"name\":\"" name "\"},"  \
    "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"" kind "\",\"name\":\"" \
    role "\"},\"subjects\":" subjects "}"
#define USER(n) "[{\"kind\":\"User\",\"apiGroup\":\"rbac.authorization.k8s.io\",\"name\":\"" n "\"}]"
#define GROUP(n) "[{\"kind\":\"Group\",\"apiGroup\":\"rbac.authorization.k8s.io\",\"name\":\"" n "\"}]"

static const char *const authenticated[] = { "system:authenticated" };

static rbac_user_t user(const char *name)
{
    rbac_user_t u = { name, authenticated, 1, NULL };
    return u;
}

/* Resource request: verb group resource[/sub] namespace name. */
static rbac_attrs_t req(const char *verb, const char *group, const char *resource,
                        const char *sub, const char *ns, const char *name)
{
    rbac_attrs_t a = { verb, group, resource, sub, ns, name, NULL };
    return a;
}

static rbac_attrs_t path_req(const char *verb, const char *path)
{
    rbac_attrs_t a = { verb, NULL, NULL, NULL, NULL, NULL, path };
    return a;
}

static int allowed(rbac_index_t *idx, const rbac_user_t *u, rbac_attrs_t a)
{
    rbac_decision_t d;
    assert_int_equal(rbac_authorize(idx, u, &a, &d), 0);
    assert_true(d.verdict == RBAC_ALLOW || d.verdict == RBAC_NO_OPINION);
    if (d.verdict == RBAC_ALLOW)
        assert_true(strncmp(d.reason, "RBAC: allowed by ", 17) == 0);
    else
        assert_string_equal(d.reason, "");
    return d.verdict == RBAC_ALLOW;
}

static int can(rbac_index_t *idx, const char *name, const char *verb, const char *group,
               const char *resource, const char *ns)
{
    rbac_user_t u = user(name);
    return allowed(idx, &u, req(verb, group, resource, NULL, ns, NULL));
}

/* ---- rule matching ---------------------------------------------------------------- */

static void test_wildcards_and_names(void **state)
{
    (void)state;
    rbac_index_t *idx = rbac_index_new();
    assert_non_null(idx);
    put(idx, CLUSTER_ROLE("reader", "[{\"apiGroups\":[\"*\"],\"resources\":[\"*\"],"
                                    "\"verbs\":[\"get\",\"list\"]}]"));
    put(idx, CLUSTER_ROLE("one-cm", "[{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
                                    "\"resourceNames\":[\"app-config\"],\"verbs\":[\"*\"]}]"));
    put(idx, CRB("r", "reader", USER("alice")));
    put(idx, CRB("c", "one-cm", USER("bob")));

    assert_true(can(idx, "alice", "get", "apps", "deployments", "x"));
    assert_true(can(idx, "alice", "list", "", "secrets", NULL));
    assert_false(can(idx, "alice", "delete", "", "pods", "x"));
    assert_false(can(idx, "carol", "get", "", "pods", "x"));

    rbac_user_t bob = user("bob");
    assert_true(allowed(idx, &bob, req("update", "", "configmaps", NULL, "ns", "app-config")));
    assert_true(allowed(idx, &bob, req("delete", "", "configmaps", NULL, "ns", "app-config")));
    assert_false(allowed(idx, &bob, req("get", "", "configmaps", NULL, "ns", "other")));
    /* resourceNames never match a request without a name (list, create). */
    assert_false(allowed(idx, &bob, req("list", "", "configmaps", NULL, "ns", NULL)));
    assert_false(allowed(idx, &bob, req("get", "apps", "configmaps", NULL, "ns", "app-config")));

    /* The same rules through rbac_rule_allows. */
    json_t *rule = load("{\"apiGroups\":[\"apps\"],\"resources\":[\"deployments\"],"
                        "\"verbs\":[\"patch\"]}");
    rbac_attrs_t a = req("patch", "apps", "deployments", NULL, "ns", "web");
    assert_true(rbac_rule_allows(rule, &a));
    a.api_group = "";
    assert_false(rbac_rule_allows(rule, &a));
    json_decref(rule);

    rbac_decision_t d;
    rbac_attrs_t bad = { NULL };
    assert_int_equal(rbac_authorize(idx, &bob, &bad, &d), SKIFF_EINVAL);
    rbac_index_free(idx);
}

static void test_subresources(void **state)
{
    (void)state;
    rbac_index_t *idx = rbac_index_new();
    put(idx, CLUSTER_ROLE("pods-only", "[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],"
                                       "\"verbs\":[\"get\"]}]"));
    put(idx, CLUSTER_ROLE("logs", "[{\"apiGroups\":[\"\"],\"resources\":[\"pods/log\"],"
                                  "\"verbs\":[\"get\"]}]"));
    put(idx, CLUSTER_ROLE("any-status", "[{\"apiGroups\":[\"*\"],\"resources\":[\"*/status\"],"
                                        "\"verbs\":[\"update\"]}]"));
    put(idx, CLUSTER_ROLE("star", "[{\"apiGroups\":[\"\"],\"resources\":[\"*\"],"
                                  "\"verbs\":[\"get\"]}]"));
    put(idx, CRB("a", "pods-only", USER("a")));
    put(idx, CRB("b", "logs", USER("b")));
    put(idx, CRB("c", "any-status", USER("c")));
    put(idx, CRB("d", "star", USER("d")));
    rbac_user_t a = user("a"), b = user("b"), c = user("c"), d = user("d");

    assert_true(allowed(idx, &a, req("get", "", "pods", NULL, "ns", "p")));
    assert_false(allowed(idx, &a, req("get", "", "pods", "log", "ns", "p")));
    assert_true(allowed(idx, &b, req("get", "", "pods", "log", "ns", "p")));
    assert_false(allowed(idx, &b, req("get", "", "pods", NULL, "ns", "p")));
    assert_false(allowed(idx, &b, req("get", "", "pods", "exec", "ns", "p")));
    assert_true(allowed(idx, &c, req("update", "apps", "deployments", "status", "ns", "x")));
    assert_true(allowed(idx, &c, req("update", "", "pods", "status", "ns", "x")));
    assert_false(allowed(idx, &c, req("update", "apps", "deployments", NULL, "ns", "x")));
    assert_false(allowed(idx, &c, req("update", "apps", "deployments", "scale", "ns", "x")));
    /* "*" covers subresources too. */
    assert_true(allowed(idx, &d, req("get", "", "pods", "log", "ns", "p")));
    rbac_index_free(idx);
}

static void test_non_resource_urls(void **state)
{
    (void)state;
    rbac_index_t *idx = rbac_index_new();
    put(idx, CLUSTER_ROLE("urls", "[{\"nonResourceURLs\":[\"/healthz\",\"/apis/*\"],"
                                  "\"verbs\":[\"get\"]}]"));
    put(idx, CLUSTER_ROLE("all-urls", "[{\"nonResourceURLs\":[\"*\"],\"verbs\":[\"*\"]}]"));
    put(idx, CRB("u", "urls", USER("u")));
    put(idx, RB("ns", "w", "ClusterRole", "all-urls", USER("w")));
    rbac_user_t u = user("u"), w = user("w");

    assert_true(allowed(idx, &u, path_req("get", "/healthz")));
    assert_false(allowed(idx, &u, path_req("get", "/healthz/ping")));
    assert_true(allowed(idx, &u, path_req("get", "/apis/apps/v1")));
    assert_true(allowed(idx, &u, path_req("get", "/apis/")));
    assert_false(allowed(idx, &u, path_req("get", "/apis")));
    assert_false(allowed(idx, &u, path_req("post", "/healthz")));
    assert_false(allowed(idx, &u, path_req("get", "/metrics")));
    /* A URL rule never grants resources, nor a resource rule URLs. */
    assert_false(allowed(idx, &u, req("get", "", "healthz", NULL, NULL, NULL)));
    /* A RoleBinding never grants non-resource URLs. */
    assert_false(allowed(idx, &w, path_req("get", "/metrics")));
    put(idx, CRB("w", "all-urls", USER("w")));
    assert_true(allowed(idx, &w, path_req("get", "/metrics")));
    rbac_index_free(idx);
}

/* ---- aggregation ------------------------------------------------------------------- */

static void test_aggregation(void **state)
{
    (void)state;
    rbac_index_t *idx = rbac_index_new();
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"monitoring\"},"
             "\"aggregationRule\":{\"clusterRoleSelectors\":[{\"matchLabels\":"
             "{\"example.com/aggregate-to-monitoring\":\"true\"}}]},"
             "\"rules\":[{\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],\"verbs\":[\"*\"]}]}");
    put(idx, CRB("m", "monitoring", USER("mon")));
    /* The aggregated role's own rules do not count (the controller
     * replaces them), and nothing matches yet. */
    assert_false(can(idx, "mon", "get", "", "secrets", "ns"));
    json_t *rules = rbac_cluster_role_rules(idx, "monitoring");
    assert_int_equal(json_array_size(rules), 0);
    json_decref(rules);

    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"pods-reader\",\"labels\":"
             "{\"example.com/aggregate-to-monitoring\":\"true\"}},\"rules\":[{\"apiGroups\":"
             "[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"get\",\"list\"]}]}");
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"metrics\",\"labels\":"
             "{\"example.com/aggregate-to-monitoring\":\"true\"}},\"rules\":[{"
             "\"nonResourceURLs\":[\"/metrics\"],\"verbs\":[\"get\"]}]}");
    put(idx, CLUSTER_ROLE("unlabelled", "[{\"apiGroups\":[\"\"],\"resources\":[\"nodes\"],"
                                        "\"verbs\":[\"get\"]}]"));
    assert_true(can(idx, "mon", "list", "", "pods", "ns"));
    assert_false(can(idx, "mon", "get", "", "nodes", NULL));
    rbac_user_t mon = user("mon");
    assert_true(allowed(idx, &mon, path_req("get", "/metrics")));
    rules = rbac_cluster_role_rules(idx, "monitoring");
    assert_int_equal(json_array_size(rules), 2);
    json_decref(rules);

    /* Nested: a role aggregated into monitoring that aggregates others. */
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"mid\",\"labels\":"
             "{\"example.com/aggregate-to-monitoring\":\"true\"}},\"aggregationRule\":{"
             "\"clusterRoleSelectors\":[{\"matchLabels\":{\"tier\":\"low\"}}]}}");
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"low\",\"labels\":"
             "{\"tier\":\"low\"}},\"rules\":[{\"apiGroups\":[\"apps\"],\"resources\":"
             "[\"deployments\"],\"verbs\":[\"watch\"]}]}");
    assert_true(can(idx, "mon", "watch", "apps", "deployments", "ns"));

    /* Relabelling removes the rules at once. */
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"pods-reader\"},\"rules\":[{"
             "\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"get\",\"list\"]}]}");
    assert_false(can(idx, "mon", "list", "", "pods", "ns"));
    assert_int_equal(rbac_index_remove(idx, "ClusterRole", NULL, "low"), 0);
    assert_false(can(idx, "mon", "watch", "apps", "deployments", "ns"));
    assert_true(allowed(idx, &mon, path_req("get", "/metrics")));

    /* A cycle neither loops nor loses the plain rules. */
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"c1\",\"labels\":{\"c\":\"2\"}},"
             "\"aggregationRule\":{\"clusterRoleSelectors\":[{\"matchLabels\":{\"c\":\"1\"}}]}}");
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"c2\",\"labels\":{\"c\":\"1\"}},"
             "\"aggregationRule\":{\"clusterRoleSelectors\":[{\"matchLabels\":{\"c\":\"2\"}}]}}");
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"c3\",\"labels\":{\"c\":\"1\"}},"
             "\"rules\":[{\"apiGroups\":[\"\"],\"resources\":[\"events\"],\"verbs\":[\"get\"]}]}");
    put(idx, CRB("cy", "c1", USER("cy")));
    for (int i = 0; i < 3; i++)
        assert_true(can(idx, "cy", "get", "", "events", "ns"));
    rbac_index_free(idx);
}

/* ---- binding scope and subjects ---------------------------------------------------- */

static void test_rolebinding_scope(void **state)
{
    (void)state;
    rbac_index_t *idx = rbac_index_new();
    put(idx, CLUSTER_ROLE("pod-reader", "[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],"
                                        "\"verbs\":[\"get\",\"list\"]}]"));
    put(idx, ROLE("dev", "cm-writer", "[{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
                                      "\"verbs\":[\"create\"]}]"));
    put(idx, RB("dev", "read-pods", "ClusterRole", "pod-reader", USER("alice")));
    put(idx, RB("dev", "write-cm", "Role", "cm-writer", GROUP("devs")));
    /* A binding in another namespace to a Role of that name finds none. */
    put(idx, RB("prod", "write-cm", "Role", "cm-writer", GROUP("devs")));

    assert_true(can(idx, "alice", "list", "", "pods", "dev"));
    assert_false(can(idx, "alice", "list", "", "pods", "prod"));
    /* All namespaces (cluster scope) is not granted by a RoleBinding. */
    assert_false(can(idx, "alice", "list", "", "pods", NULL));
    assert_false(can(idx, "alice", "list", "", "pods", ""));

    const char *const groups[] = { "system:authenticated", "devs" };
    rbac_user_t dev = { "dana", groups, 2, NULL };
    assert_true(allowed(idx, &dev, req("create", "", "configmaps", NULL, "dev", NULL)));
    assert_false(allowed(idx, &dev, req("create", "", "configmaps", NULL, "prod", NULL)));

    rbac_decision_t d;
    rbac_attrs_t a = req("get", "", "pods", NULL, "dev", "p");
    rbac_user_t alice = user("alice");
    assert_int_equal(rbac_authorize(idx, &alice, &a, &d), 0);
    assert_string_equal(d.reason, "RBAC: allowed by RoleBinding \"read-pods/dev\" of ClusterRole "
                                  "\"pod-reader\" to User \"alice\"");
    a = req("create", "", "configmaps", NULL, "dev", NULL);
    assert_int_equal(rbac_authorize(idx, &dev, &a, &d), 0);
    assert_string_equal(d.reason, "RBAC: allowed by RoleBinding \"write-cm/dev\" of Role "
                                  "\"cm-writer\" to Group \"devs\"");
    rbac_index_free(idx);
}

static void test_service_accounts(void **state)
{
    (void)state;
    rbac_index_t *idx = rbac_index_new();
    put(idx, CLUSTER_ROLE("pod-reader", "[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],"
                                        "\"verbs\":[\"list\"]}]"));
    /* No namespace on the subject: the binding's namespace. */
    put(idx, RB("ci", "sa-read", "ClusterRole", "pod-reader",
                "[{\"kind\":\"ServiceAccount\",\"name\":\"builder\"}]"));
    put(idx, CRB("mon-read", "pod-reader",
                 "[{\"kind\":\"ServiceAccount\",\"name\":\"prom\",\"namespace\":\"monitoring\"}]"));

    assert_true(can(idx, "system:serviceaccount:ci:builder", "list", "", "pods", "ci"));
    assert_false(can(idx, "system:serviceaccount:ci:builder", "list", "", "pods", "other"));
    assert_false(can(idx, "system:serviceaccount:other:builder", "list", "", "pods", "ci"));
    assert_false(can(idx, "builder", "list", "", "pods", "ci"));
    assert_true(can(idx, "system:serviceaccount:monitoring:prom", "list", "", "pods", NULL));
    assert_true(can(idx, "system:serviceaccount:monitoring:prom", "list", "", "pods", "x"));

    rbac_decision_t d;
    rbac_attrs_t a = req("list", "", "pods", NULL, NULL, NULL);
    rbac_user_t prom = user("system:serviceaccount:monitoring:prom");
    assert_int_equal(rbac_authorize(idx, &prom, &a, &d), 0);
    assert_string_equal(d.reason, "RBAC: allowed by ClusterRoleBinding \"mon-read\" of "
                                  "ClusterRole \"pod-reader\" to ServiceAccount \"monitoring/prom\"");
    rbac_index_free(idx);
}

/* Objects change one at a time, as a watch delivers them. */
static void test_index_updates(void **state)
{
    (void)state;
    rbac_index_t *idx = rbac_index_new();
    put(idx, CLUSTER_ROLE("r", "[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],"
                               "\"verbs\":[\"get\"]}]"));
    put(idx, CRB("b", "r", USER("alice")));
    assert_int_equal(rbac_index_size(idx), 2);
    assert_true(can(idx, "alice", "get", "", "pods", "x"));

    /* Replacing the binding drops its old subjects. */
    put(idx, CRB("b", "r", USER("bob")));
    assert_int_equal(rbac_index_size(idx), 2);
    assert_false(can(idx, "alice", "get", "", "pods", "x"));
    assert_true(can(idx, "bob", "get", "", "pods", "x"));

    /* Replacing the role changes what the binding grants. */
    put(idx, CLUSTER_ROLE("r", "[{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],"
                               "\"verbs\":[\"list\"]}]"));
    assert_false(can(idx, "bob", "get", "", "pods", "x"));
    assert_true(can(idx, "bob", "list", "", "pods", "x"));

    json_t *o = load(CRB("b", "r", USER("bob")));
    assert_int_equal(rbac_index_apply_event(idx, "DELETED", o), 0);
    assert_false(can(idx, "bob", "list", "", "pods", "x"));
    assert_int_equal(rbac_index_apply_event(idx, "ADDED", o), 0);
    assert_true(can(idx, "bob", "list", "", "pods", "x"));
    assert_int_equal(rbac_index_apply_event(idx, "BOOKMARK", o), 0);
    json_decref(o);

    assert_int_equal(rbac_index_remove(idx, "ClusterRole", NULL, "r"), 0);
    assert_false(can(idx, "bob", "list", "", "pods", "x"));
    assert_int_equal(rbac_index_remove(idx, "ClusterRole", NULL, "r"), SKIFF_ENOENT);
    assert_int_equal(rbac_index_remove(idx, "Pod", "x", "r"), SKIFF_EINVAL);

    o = load("{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"}}");
    assert_int_equal(rbac_index_put(idx, o), SKIFF_EINVAL);
    json_decref(o);
    o = load("{\"kind\":\"Role\",\"metadata\":{\"name\":\"no-namespace\"}}");
    assert_int_equal(rbac_index_put(idx, o), SKIFF_EINVAL);
    json_decref(o);
    rbac_index_free(idx);

    /* No index: no opinion. */
    rbac_user_t u = user("x");
    rbac_attrs_t a = req("get", "", "pods", NULL, "ns", "p");
    rbac_decision_t d;
    assert_int_equal(rbac_authorize(NULL, &u, &a, &d), 0);
    assert_int_equal(d.verdict, RBAC_NO_OPINION);
}

/* ---- default roles -------------------------------------------------------------------- */

static rbac_index_t *defaults_index(void)
{
    rbac_index_t *idx = rbac_index_new();
    json_t *objs = rbac_default_objects_new();
    assert_non_null(objs);
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o)
        assert_int_equal(rbac_index_put(idx, o), 0);
    json_decref(objs);
    return idx;
}

static void test_default_objects(void **state)
{
    (void)state;
    assert_int_equal(registry_init(), 0);
    json_t *objs = rbac_default_objects_new();
    assert_non_null(objs);
    static const char *const want[] = { "cluster-admin", "admin", "edit", "view",
                                        "system:basic-user", "system:discovery",
                                        "system:public-info-viewer" };
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        int found = 0;
        size_t i;
        json_t *o;
        json_array_foreach(objs, i, o) {
            const json_t *meta = json_object_get(o, "metadata");
            if (strcmp(json_string_value(json_object_get(meta, "name")), want[w]) == 0 &&
                strcmp(json_string_value(json_object_get(o, "kind")), "ClusterRole") == 0)
                found = 1;
        }
        if (!found)
            fail_msg("no default ClusterRole %s", want[w]);
    }
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o) {
        const json_t *meta = json_object_get(o, "metadata");
        const char *name = json_string_value(json_object_get(meta, "name"));
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(meta, "labels"), "kubernetes.io/bootstrapping")),
                            "rbac-defaults");
        /* Every default object passes the API's own validation. */
        const kind_def_t *k = registry_find_kind("rbac.authorization.k8s.io", "v1",
                                                 json_string_value(json_object_get(o, "kind")));
        assert_non_null(k);
        json_t *withv = json_deep_copy(o);
        validation_result_t r;
        size_t n = registry_validate(k, withv, VALIDATE_STRICT, &r);
        for (size_t e = 0; e < r.count; e++)
            print_error("%s: %s: %s\n", name, r.errors[e].field, r.errors[e].message);
        assert_int_equal(n, 0);
        validation_result_free(&r);
        json_decref(withv);
        /* The aggregated roles carry their aggregated rules. */
        if (strcmp(name, "view") == 0 || strcmp(name, "edit") == 0 ||
            strcmp(name, "admin") == 0) {
            assert_non_null(json_object_get(o, "aggregationRule"));
            assert_true(json_array_size(json_object_get(o, "rules")) > 5);
        }
    }
    json_decref(objs);
    registry_shutdown();
}

static void test_default_view_edit_admin(void **state)
{
    (void)state;
    rbac_index_t *idx = defaults_index();
    put(idx, RB("team", "v", "ClusterRole", "view", USER("viewer")));
    put(idx, RB("team", "e", "ClusterRole", "edit", USER("editor")));
    put(idx, RB("team", "a", "ClusterRole", "admin", USER("boss")));

    /* view: reads, but not secrets, and never writes. */
    assert_true(can(idx, "viewer", "list", "", "pods", "team"));
    assert_true(can(idx, "viewer", "watch", "apps", "deployments", "team"));
    assert_true(can(idx, "viewer", "get", "batch", "jobs", "team"));
    assert_false(can(idx, "viewer", "get", "", "secrets", "team"));
    assert_false(can(idx, "viewer", "list", "", "secrets", "team"));
    assert_false(can(idx, "viewer", "delete", "", "pods", "team"));
    assert_false(can(idx, "viewer", "create", "apps", "deployments", "team"));
    assert_false(can(idx, "viewer", "list", "", "pods", "elsewhere"));
    rbac_user_t viewer = user("viewer");
    assert_true(allowed(idx, &viewer, req("get", "", "pods", "log", "team", "p")));
    assert_false(allowed(idx, &viewer, req("create", "", "pods", "exec", "team", "p")));

    /* edit: writes workloads, configuration and secrets, not access. */
    assert_true(can(idx, "editor", "create", "apps", "deployments", "team"));
    assert_true(can(idx, "editor", "delete", "", "pods", "team"));
    assert_true(can(idx, "editor", "update", "", "configmaps", "team"));
    assert_true(can(idx, "editor", "get", "", "secrets", "team"));
    assert_true(can(idx, "editor", "create", "", "services", "team"));
    assert_true(can(idx, "editor", "list", "", "pods", "team")); /* via view */
    assert_false(can(idx, "editor", "create", "rbac.authorization.k8s.io", "rolebindings",
                     "team"));
    assert_false(can(idx, "editor", "create", "apps", "deployments", "elsewhere"));
    rbac_user_t editor = user("editor");
    assert_true(allowed(idx, &editor, req("patch", "apps", "deployments", "scale", "team", "w")));

    /* admin: edit, plus roles and bindings in the namespace. */
    assert_true(can(idx, "boss", "create", "rbac.authorization.k8s.io", "rolebindings", "team"));
    assert_true(can(idx, "boss", "create", "apps", "deployments", "team"));
    assert_false(can(idx, "boss", "create", "rbac.authorization.k8s.io", "clusterroles", NULL));
    assert_false(can(idx, "boss", "delete", "", "namespaces", NULL));

    /* A new labelled role extends view, edit and admin alike. */
    put(idx, "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"crd-view\",\"labels\":{"
             "\"rbac.authorization.k8s.io/aggregate-to-view\":\"true\"}},\"rules\":[{"
             "\"apiGroups\":[\"example.com\"],\"resources\":[\"widgets\"],\"verbs\":[\"get\"]}]}");
    assert_true(can(idx, "viewer", "get", "example.com", "widgets", "team"));
    assert_true(can(idx, "boss", "get", "example.com", "widgets", "team"));
    rbac_index_free(idx);
}

static void test_default_system_roles(void **state)
{
    (void)state;
    rbac_index_t *idx = defaults_index();
    /* cluster-admin through system:masters: everything. */
    const char *const masters[] = { "system:masters", "system:authenticated" };
    rbac_user_t admin = { "kubernetes-admin", masters, 2, NULL };
    assert_true(allowed(idx, &admin, req("delete", "", "nodes", NULL, NULL, "n1")));
    assert_true(allowed(idx, &admin, req("get", "", "secrets", NULL, "kube-system", "s")));
    assert_true(allowed(idx, &admin, req("impersonate", "", "users", NULL, NULL, "bob")));
    assert_true(allowed(idx, &admin, path_req("get", "/metrics")));
    rbac_decision_t d;
    rbac_attrs_t a = req("list", "", "pods", NULL, NULL, NULL);
    assert_int_equal(rbac_authorize(idx, &admin, &a, &d), 0);
    assert_string_equal(d.reason, "RBAC: allowed by ClusterRoleBinding \"cluster-admin\" of "
                                  "ClusterRole \"cluster-admin\" to Group \"system:masters\"");

    /* Any authenticated user: can-i, whoami, discovery; nothing else. */
    rbac_user_t bob = user("bob");
    assert_true(allowed(idx, &bob, req("create", "authorization.k8s.io",
                                       "selfsubjectaccessreviews", NULL, NULL, NULL)));
    assert_true(allowed(idx, &bob, req("create", "authorization.k8s.io",
                                       "selfsubjectrulesreviews", NULL, NULL, NULL)));
    assert_true(allowed(idx, &bob, req("create", "authentication.k8s.io", "selfsubjectreviews",
                                       NULL, NULL, NULL)));
    assert_true(allowed(idx, &bob, path_req("get", "/api")));
    assert_true(allowed(idx, &bob, path_req("get", "/apis/apps/v1")));
    assert_true(allowed(idx, &bob, path_req("get", "/openapi/v3")));
    assert_true(allowed(idx, &bob, path_req("get", "/version")));
    assert_false(allowed(idx, &bob, path_req("get", "/metrics")));
    assert_false(allowed(idx, &bob, req("list", "", "pods", NULL, "default", NULL)));
    assert_false(allowed(idx, &bob, req("create", "authorization.k8s.io",
                                        "subjectaccessreviews", NULL, NULL, NULL)));

    /* Anonymous: health and version only. */
    const char *const unauth[] = { "system:unauthenticated" };
    rbac_user_t anon = { "system:anonymous", unauth, 1, NULL };
    assert_true(allowed(idx, &anon, path_req("get", "/healthz")));
    assert_true(allowed(idx, &anon, path_req("get", "/readyz")));
    assert_false(allowed(idx, &anon, path_req("get", "/api")));

    /* Our components. */
    rbac_user_t sched = user("system:kube-scheduler");
    assert_true(allowed(idx, &sched, req("create", "", "pods", "binding", "ns", "p")));
    assert_true(allowed(idx, &sched, req("watch", "", "nodes", NULL, NULL, NULL)));
    assert_false(allowed(idx, &sched, req("get", "", "secrets", NULL, "ns", "s")));
    assert_false(allowed(idx, &sched, req("delete", "", "pods", NULL, "ns", "p")));
    rbac_user_t cm = user("system:kube-controller-manager");
    assert_true(allowed(idx, &cm, req("create", "apps", "replicasets", NULL, "ns", NULL)));
    assert_true(allowed(idx, &cm, req("delete", "example.com", "widgets", NULL, "ns", "w")));
    assert_true(allowed(idx, &cm, req("update", "apps", "deployments", "status", "ns", "d")));
    assert_false(allowed(idx, &cm, req("create", "", "secrets", NULL, "ns", NULL)));
    assert_false(allowed(idx, &cm, req("create", "rbac.authorization.k8s.io", "clusterroles",
                                       NULL, NULL, NULL)));
    rbac_index_free(idx);
}

static int has_rule(const json_t *rules, const char *resource, const char *verb)
{
    size_t i, j, k;
    json_t *r, *v, *x;
    json_array_foreach(rules, i, r) {
        json_array_foreach(json_object_get(r, "resources"), j, v) {
            if (strcmp(json_string_value(v), resource) != 0)
                continue;
            json_array_foreach(json_object_get(r, "verbs"), k, x)
                if (strcmp(json_string_value(x), verb) == 0)
                    return 1;
        }
    }
    return 0;
}

static void test_rules_for(void **state)
{
    (void)state;
    rbac_index_t *idx = defaults_index();
    put(idx, RB("team", "v", "ClusterRole", "view", USER("viewer")));
    rbac_user_t viewer = user("viewer");
    json_t *st = rbac_rules_for(idx, &viewer, "team");
    assert_non_null(st);
    json_t *res = json_object_get(st, "resourceRules");
    assert_true(has_rule(res, "pods", "list"));
    assert_true(has_rule(res, "selfsubjectaccessreviews", "create"));
    assert_false(has_rule(res, "secrets", "get"));
    assert_false(json_is_true(json_object_get(st, "incomplete")));
    json_t *nonres = json_object_get(st, "nonResourceRules");
    assert_true(json_array_size(nonres) >= 2);
    assert_non_null(json_object_get(json_array_get(nonres, 0), "nonResourceURLs"));
    json_decref(st);

    /* Each rule once, even when two bindings grant it. */
    put(idx, RB("team", "v-again", "ClusterRole", "view", USER("viewer")));
    st = rbac_rules_for(idx, &viewer, "team");
    size_t i, copies = 0;
    json_t *r;
    json_array_foreach(json_object_get(st, "resourceRules"), i, r) {
        json_t *one = json_pack("[O]", r);
        copies += (size_t)has_rule(one, "pods/log", "get");
        json_decref(one);
    }
    assert_int_equal(copies, 1);
    json_decref(st);

    st = rbac_rules_for(idx, &viewer, "elsewhere");
    assert_false(has_rule(json_object_get(st, "resourceRules"), "pods", "list"));
    json_decref(st);
    rbac_index_free(idx);
}

/* ---- denial messages ------------------------------------------------------------------ */

static void expect_message(const char *name, rbac_attrs_t a, const char *reason,
                           const char *want)
{
    rbac_user_t u = user(name);
    char buf[512];
    size_t n = rbac_forbidden_message(&u, &a, reason, buf, sizeof(buf));
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_messages(void **state)
{
    (void)state;
    expect_message("alice", req("list", "", "pods", NULL, "default", NULL), NULL,
                   "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API "
                   "group \"\" in the namespace \"default\"");
    expect_message("system:node:n2", req("patch", "", "nodes", NULL, NULL, "n1"), "",
                   "nodes \"n1\" is forbidden: User \"system:node:n2\" cannot patch resource "
                   "\"nodes\" in API group \"\" at the cluster scope");
    expect_message("bob", path_req("get", "/metrics"), NULL,
                   "forbidden: User \"bob\" cannot get path \"/metrics\"");
    expect_message("bob", req("create", "apps", "deployments", NULL, "prod", NULL), NULL,
                   "deployments.apps is forbidden: User \"bob\" cannot create resource "
                   "\"deployments\" in API group \"apps\" in the namespace \"prod\"");
    expect_message("bob", req("get", "", "pods", "log", "ns", "web-1"), NULL,
                   "pods \"web-1\" is forbidden: User \"bob\" cannot get resource \"pods/log\" "
                   "in API group \"\" in the namespace \"ns\"");
    expect_message("system:node:n1", req("get", "", "secrets", NULL, "ns", "db"),
                   "no relationship found between node 'n1' and this object",
                   "secrets \"db\" is forbidden: User \"system:node:n1\" cannot get resource "
                   "\"secrets\" in API group \"\" in the namespace \"ns\": no relationship found "
                   "between node 'n1' and this object");
    /* A short buffer is cut but the full length is reported. */
    rbac_user_t u = user("bob");
    rbac_attrs_t a = path_req("get", "/metrics");
    char small[10];
    assert_int_equal(rbac_forbidden_message(&u, &a, NULL, small, sizeof(small)),
                     strlen("forbidden: User \"bob\" cannot get path \"/metrics\""));
    assert_string_equal(small, "forbidden");
}

/* ---- node authorizer -------------------------------------------------------------------- */

static int uses(void *data, const char *node, const char *kind, const char *ns,
                const char *name)
{
    (void)data;
    /* n1 runs a pod in "app" that mounts Secret db-pass and ConfigMap settings. */
    return strcmp(node, "n1") == 0 && strcmp(ns, "app") == 0 &&
           ((strcmp(kind, "Secret") == 0 && strcmp(name, "db-pass") == 0) ||
            (strcmp(kind, "ConfigMap") == 0 && strcmp(name, "settings") == 0));
}

static rbac_verdict_t node_decides(const char *node_user, const char **groups, size_t ngroups,
                                   rbac_attrs_t a, const json_t *pod)
{
    rbac_user_t u = { node_user, groups, ngroups, NULL };
    rbac_node_inputs_t in = { pod, uses, NULL };
    rbac_decision_t d;
    assert_int_equal(rbac_node_authorize(&u, &a, &in, &d), 0);
    return d.verdict;
}

static void test_node_authorizer(void **state)
{
    (void)state;
    const char *nodes[] = { "system:nodes", "system:authenticated" };
    const char *n1 = "system:node:n1";
#define NODE(a, pod) node_decides(n1, nodes, 2, a, pod)

    /* Its own Node and Lease. */
    assert_int_equal(NODE(req("get", "", "nodes", NULL, NULL, "n1"), NULL), RBAC_ALLOW);
    assert_int_equal(NODE(req("patch", "", "nodes", "status", NULL, "n1"), NULL), RBAC_ALLOW);
    assert_int_equal(NODE(req("update", "", "nodes", NULL, NULL, "n1"), NULL), RBAC_ALLOW);
    assert_int_equal(NODE(req("patch", "", "nodes", NULL, NULL, "n2"), NULL), RBAC_DENY);
    assert_int_equal(NODE(req("update", "", "nodes", "status", NULL, "n2"), NULL), RBAC_DENY);
    assert_int_equal(NODE(req("delete", "", "nodes", NULL, NULL, "n2"), NULL), RBAC_DENY);
    assert_int_equal(NODE(req("list", "", "nodes", NULL, NULL, NULL), NULL), RBAC_ALLOW);
    assert_int_equal(NODE(req("update", "coordination.k8s.io", "leases", NULL,
                              "kube-node-lease", "n1"), NULL),
                     RBAC_ALLOW);
    assert_int_equal(NODE(req("get", "coordination.k8s.io", "leases", NULL,
                              "kube-node-lease", "n1"), NULL),
                     RBAC_ALLOW);
    assert_int_equal(NODE(req("update", "coordination.k8s.io", "leases", NULL,
                              "kube-node-lease", "n2"), NULL),
                     RBAC_DENY);
    assert_int_equal(NODE(req("update", "coordination.k8s.io", "leases", NULL, "default", "n1"),
                          NULL),
                     RBAC_DENY);

    /* Pods bound to it. */
    json_t *mine = load("{\"spec\":{\"nodeName\":\"n1\"}}");
    json_t *theirs = load("{\"spec\":{\"nodeName\":\"n2\"}}");
    json_t *unbound = load("{\"spec\":{}}");
    assert_int_equal(NODE(req("patch", "", "pods", "status", "app", "p"), mine), RBAC_ALLOW);
    assert_int_equal(NODE(req("update", "", "pods", "status", "app", "p"), mine), RBAC_ALLOW);
    assert_int_equal(NODE(req("patch", "", "pods", "status", "app", "p"), theirs), RBAC_DENY);
    assert_int_equal(NODE(req("patch", "", "pods", "status", "app", "p"), unbound), RBAC_DENY);
    assert_int_equal(NODE(req("patch", "", "pods", "status", "app", "p"), NULL), RBAC_DENY);
    assert_int_equal(NODE(req("update", "", "pods", NULL, "app", "p"), mine), RBAC_DENY);
    assert_int_equal(NODE(req("delete", "", "pods", NULL, "app", "p"), mine), RBAC_ALLOW);
    assert_int_equal(NODE(req("delete", "", "pods", NULL, "app", "p"), theirs), RBAC_DENY);
    assert_int_equal(NODE(req("create", "", "pods", "exec", "app", "p"), mine), RBAC_DENY);
    assert_int_equal(NODE(req("watch", "", "pods", NULL, NULL, NULL), NULL), RBAC_ALLOW);

    /* Secrets and ConfigMaps its pods use, and no others. */
    assert_int_equal(NODE(req("get", "", "secrets", NULL, "app", "db-pass"), NULL), RBAC_ALLOW);
    assert_int_equal(NODE(req("get", "", "configmaps", NULL, "app", "settings"), NULL),
                     RBAC_ALLOW);
    assert_int_equal(NODE(req("get", "", "secrets", NULL, "app", "other"), NULL), RBAC_DENY);
    assert_int_equal(NODE(req("get", "", "secrets", NULL, "kube-system", "db-pass"), NULL),
                     RBAC_DENY);
    assert_int_equal(NODE(req("get", "", "secrets", NULL, "app", "settings"), NULL), RBAC_DENY);
    assert_int_equal(NODE(req("list", "", "secrets", NULL, "app", NULL), NULL), RBAC_DENY);
    assert_int_equal(NODE(req("update", "", "secrets", NULL, "app", "db-pass"), NULL),
                     RBAC_DENY);
    assert_int_equal(node_decides("system:node:n2", nodes, 2,
                                  req("get", "", "secrets", NULL, "app", "db-pass"), NULL),
                     RBAC_DENY);

    /* Events; the rest is RBAC's business. */
    assert_int_equal(NODE(req("create", "", "events", NULL, "app", NULL), NULL), RBAC_ALLOW);
    assert_int_equal(NODE(req("list", "", "services", NULL, NULL, NULL), NULL), RBAC_NO_OPINION);
    assert_int_equal(NODE(path_req("get", "/healthz"), NULL), RBAC_NO_OPINION);

    /* Not a node: the name alone, or the group alone, is not enough. */
    const char *plain[] = { "system:authenticated" };
    assert_int_equal(node_decides(n1, plain, 1, req("patch", "", "nodes", NULL, NULL, "n2"),
                                  NULL),
                     RBAC_NO_OPINION);
    assert_int_equal(node_decides("alice", nodes, 2, req("patch", "", "nodes", NULL, NULL, "n2"),
                                  NULL),
                     RBAC_NO_OPINION);
    rbac_user_t nu = { n1, nodes, 2, NULL };
    assert_string_equal(rbac_node_name(&nu), "n1");
    rbac_user_t pu = { n1, plain, 1, NULL };
    assert_null(rbac_node_name(&pu));

    /* The whole chain: node decisions are final, the rest falls to RBAC
     * (system:node may read services), and silence is a denial. */
    rbac_index_t *idx = defaults_index();
    rbac_decision_t d;
    rbac_node_inputs_t in = { theirs, uses, NULL };
    rbac_attrs_t a = req("patch", "", "nodes", NULL, NULL, "n2");
    assert_int_equal(rbac_authorize_request(idx, &nu, &a, &in, &d), 0);
    assert_int_equal(d.verdict, RBAC_DENY);
    a = req("list", "", "services", NULL, NULL, NULL);
    assert_int_equal(rbac_authorize_request(idx, &nu, &a, &in, &d), 0);
    assert_int_equal(d.verdict, RBAC_ALLOW);
    a = req("list", "apps", "deployments", NULL, NULL, NULL);
    assert_int_equal(rbac_authorize_request(idx, &nu, &a, &in, &d), 0);
    assert_int_equal(d.verdict, RBAC_DENY);
    a = req("get", "", "secrets", NULL, "app", "db-pass");
    assert_int_equal(rbac_authorize_request(idx, &nu, &a, &in, &d), 0);
    assert_int_equal(d.verdict, RBAC_ALLOW);
    /* Without inputs a node reaches no Secret. */
    assert_int_equal(rbac_authorize_request(idx, &nu, &a, NULL, &d), 0);
    assert_int_equal(d.verdict, RBAC_DENY);
    assert_string_equal(d.reason, "no relationship found between node 'n1' and this object");
    rbac_index_free(idx);
    json_decref(mine);
    json_decref(theirs);
    json_decref(unbound);
#undef NODE
}

/* ---- speed -------------------------------------------------------------------------------- */

/* CPU time of this process: what the code costs, whatever else the
 * machine is doing */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_many_decisions(void **state)
{
    (void)state;
    rbac_index_t *idx = defaults_index();
    char buf[1024];
    /* 500 roles in 50 namespaces, each bound to one user and one group. */
    for (int i = 0; i < 500; i++) {
        snprintf(buf, sizeof(buf),
                 "{\"kind\":\"Role\",\"metadata\":{\"namespace\":\"ns%d\",\"name\":\"r%d\"},"
                 "\"rules\":[{\"apiGroups\":[\"\",\"apps\"],\"resources\":[\"pods\",\"pods/log\","
                 "\"deployments\",\"res%d\"],\"verbs\":[\"get\",\"list\"]},{\"apiGroups\":[\"\"],"
                 "\"resources\":[\"configmaps\"],\"resourceNames\":[\"c%d\"],\"verbs\":[\"*\"]}]}",
                 i % 50, i, i, i);
        put(idx, buf);
        snprintf(buf, sizeof(buf),
                 "{\"kind\":\"RoleBinding\",\"metadata\":{\"namespace\":\"ns%d\",\"name\":"
                 "\"b%d\"},\"roleRef\":{\"kind\":\"Role\",\"name\":\"r%d\"},\"subjects\":["
                 "{\"kind\":\"User\",\"name\":\"user%d\"},{\"kind\":\"Group\",\"name\":"
                 "\"team%d\"}]}",
                 i % 50, i, i, i % 100, i % 20);
        put(idx, buf);
    }
    assert_true(rbac_index_size(idx) > 1000);
    char uname[32], group[32], ns[16], res[16];
    const char *groups[2] = { "system:authenticated", group };
    long allowed_count = 0;
    double t0 = now_s();
    for (int i = 0; i < 10000; i++) {
        snprintf(uname, sizeof(uname), "user%d", i % 120);
        snprintf(group, sizeof(group), "team%d", i % 25);
        snprintf(ns, sizeof(ns), "ns%d", i % 50);
        snprintf(res, sizeof(res), "res%d", i % 500);
        rbac_user_t u = { uname, groups, 2, NULL };
        rbac_attrs_t a = req(i % 3 ? "list" : "delete", "", i % 2 ? "pods" : res, NULL, ns,
                             NULL);
        rbac_decision_t d;
        assert_int_equal(rbac_authorize(idx, &u, &a, &d), 0);
        allowed_count += d.verdict == RBAC_ALLOW;
    }
    double took = now_s() - t0;
    print_message("# 10000 decisions over %zu RBAC objects: %.1f ms (%ld allowed)\n",
                  rbac_index_size(idx), took * 1000, allowed_count);
    assert_true(allowed_count > 0 && allowed_count < 10000);
    assert_true(took < 0.5);
    rbac_index_free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcards_and_names),
        cmocka_unit_test(test_subresources),
        cmocka_unit_test(test_non_resource_urls),
        cmocka_unit_test(test_aggregation),
        cmocka_unit_test(test_rolebinding_scope),
        cmocka_unit_test(test_service_accounts),
        cmocka_unit_test(test_index_updates),
        cmocka_unit_test(test_default_objects),
        cmocka_unit_test(test_default_view_edit_admin),
        cmocka_unit_test(test_default_system_roles),
        cmocka_unit_test(test_rules_for),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_node_authorizer),
        cmocka_unit_test(test_many_decisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
