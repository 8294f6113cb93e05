/* tests/unit/test_discovery.c - discovery documents as kubectl reads them:
 * every registered kind with its scope, verbs, short names and
 * subresources, the aggregated (apidiscovery.k8s.io) content types, /version
 * and the cache noticing a new kind. Uses the real kind registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/discovery.h"
#include "object/registry.h"

static json_t *get_doc(const char *method, const char *path, const char *accept, int *status,
                       const char **ctype)
{
    api_request_t req = {.method = method, .path = path, .accept = accept};
    api_doc_reply_t r;
    int rc = discovery_handle(&req, &r);
    assert_int_equal(rc, 1);
    *status = r.status;
    if (ctype)
        *ctype = r.content_type;
    json_error_t err;
    json_t *doc = json_loadb(r.body, r.len, 0, &err);
    assert_non_null(doc);
    return doc;
}

static json_t *get_ok(const char *path, const char *accept)
{
    int status;
    json_t *doc = get_doc("GET", path, accept, &status, NULL);
    assert_int_equal(status, 200);
    return doc;
}

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *v = json_string_value(json_object_get(e, key));
        if (v && strcmp(v, value) == 0)
            return e;
    }
    return NULL;
}

static int has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
            return 1;
    }
    return 0;
}

static void gv_path(const kind_def_t *k, char *buf, size_t size)
{
    if (k->group[0])
        snprintf(buf, size, "/apis/%s/%s", k->group, k->version);
    else
        snprintf(buf, size, "/api/%s", k->version);
}

static const char *const k_verbs[] = {"create", "delete", "deletecollection", "get",
                                      "list",   "patch",  "update",           "watch"};

/* The standard eight verbs, or only "create" for review kinds. */
static void assert_verbs(const kind_def_t *k, json_t *verbs)
{
    if (k->verbs) {
        size_t n = 0;
        for (; k->verbs[n]; n++)
            assert_true(has_string(verbs, k->verbs[n]));
        assert_int_equal(json_array_size(verbs), n);
        return;
    }
    assert_int_equal(json_array_size(verbs), 8);
    for (size_t i = 0; i < 8; i++)
        assert_true(has_string(verbs, k_verbs[i]));
}

static void test_api_versions(void **state)
{
    (void)state;
    json_t *d = get_ok("/api", NULL);
    assert_string_equal(json_string_value(json_object_get(d, "kind")), "APIVersions");
    assert_true(has_string(json_object_get(d, "versions"), "v1"));
    assert_true(json_is_array(json_object_get(d, "serverAddressByClientCIDRs")));
    json_decref(d);
}

static void test_group_list(void **state)
{
    (void)state;
    json_t *d = get_ok("/apis/", "application/json");
    assert_string_equal(json_string_value(json_object_get(d, "kind")), "APIGroupList");
    json_t *groups = json_object_get(d, "groups");
    json_t *apps = find_by(groups, "name", "apps");
    assert_non_null(apps);
    json_t *pref = json_object_get(apps, "preferredVersion");
    assert_string_equal(json_string_value(json_object_get(pref, "groupVersion")), "apps/v1");
    assert_string_equal(json_string_value(json_object_get(pref, "version")), "v1");
    assert_null(find_by(groups, "name", "")); /* the core group is only under /api */
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        if (k->group[0])
            assert_non_null(find_by(groups, "name", k->group));
    }
    json_decref(d);

    d = get_ok("/apis/batch", NULL);
    assert_string_equal(json_string_value(json_object_get(d, "kind")), "APIGroup");
    assert_string_equal(json_string_value(json_object_get(d, "name")), "batch");
    json_decref(d);
}

/* Every kind in its group-version's APIResourceList, as registered. */
static void test_resource_lists(void **state)
{
    (void)state;
    assert_true(registry_count() > 10);
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        char path[256];
        gv_path(k, path, sizeof path);
        json_t *d = get_ok(path, NULL);
        assert_string_equal(json_string_value(json_object_get(d, "kind")), "APIResourceList");
        json_t *r = find_by(json_object_get(d, "resources"), "name", k->resource);
        assert_non_null(r);
        assert_string_equal(json_string_value(json_object_get(r, "kind")), k->kind);
        assert_string_equal(json_string_value(json_object_get(r, "singularName")), k->singular);
        assert_int_equal(json_is_true(json_object_get(r, "namespaced")), k->namespaced != 0);
        assert_verbs(k, json_object_get(r, "verbs"));
        for (size_t j = 0; k->short_names && k->short_names[j]; j++)
            assert_true(has_string(json_object_get(r, "shortNames"), k->short_names[j]));
        if (!k->short_names)
            assert_null(json_object_get(r, "shortNames"));
        for (size_t j = 0; k->categories && k->categories[j]; j++)
            assert_true(has_string(json_object_get(r, "categories"), k->categories[j]));
        char sub[300];
        snprintf(sub, sizeof sub, "%s/status", k->resource);
        json_t *st = find_by(json_object_get(d, "resources"), "name", sub);
        assert_int_equal(st != NULL, k->has_status != 0);
        snprintf(sub, sizeof sub, "%s/scale", k->resource);
        json_t *sc = find_by(json_object_get(d, "resources"), "name", sub);
        assert_int_equal(sc != NULL, k->has_scale != 0);
        json_decref(d);
    }
}

static void test_core_details(void **state)
{
    (void)state;
    json_t *d = get_ok("/api/v1", NULL);
    assert_string_equal(json_string_value(json_object_get(d, "groupVersion")), "v1");
    json_t *res = json_object_get(d, "resources");
    json_t *pods = find_by(res, "name", "pods");
    assert_true(json_is_true(json_object_get(pods, "namespaced")));
    assert_true(has_string(json_object_get(pods, "shortNames"), "po"));
    assert_true(has_string(json_object_get(pods, "categories"), "all"));
    json_t *ps = find_by(res, "name", "pods/status");
    assert_non_null(ps);
    assert_string_equal(json_string_value(json_object_get(ps, "kind")), "Pod");
    assert_int_equal(json_array_size(json_object_get(ps, "verbs")), 3);
    json_t *ns = find_by(res, "name", "namespaces");
    assert_false(json_is_true(json_object_get(ns, "namespaced")));
    assert_true(has_string(json_object_get(ns, "shortNames"), "ns"));
    json_t *ev = find_by(res, "name", "events");
    assert_verbs(registry_find_resource("", "v1", "events"), json_object_get(ev, "verbs"));
    /* TokenRequest is the body of serviceaccounts/token (kubectl create token). */
    json_t *tok = find_by(res, "name", "serviceaccounts/token");
    assert_non_null(tok);
    assert_string_equal(json_string_value(json_object_get(tok, "group")), "authentication.k8s.io");
    assert_string_equal(json_string_value(json_object_get(tok, "kind")), "TokenRequest");
    assert_int_equal(json_array_size(json_object_get(tok, "verbs")), 1);
    assert_true(has_string(json_object_get(tok, "verbs"), "create"));
    json_decref(d);

    /* Reviews are create-only. */
    d = get_ok("/apis/authorization.k8s.io/v1", NULL);
    json_t *ssar = find_by(json_object_get(d, "resources"), "name", "selfsubjectaccessreviews");
    assert_non_null(ssar);
    assert_int_equal(json_array_size(json_object_get(ssar, "verbs")), 1);
    assert_true(has_string(json_object_get(ssar, "verbs"), "create"));
    assert_false(json_is_true(json_object_get(ssar, "namespaced")));
    json_decref(d);

    d = get_ok("/apis/apps/v1", NULL);
    assert_string_equal(json_string_value(json_object_get(d, "groupVersion")), "apps/v1");
    json_t *scale = find_by(json_object_get(d, "resources"), "name", "deployments/scale");
    assert_non_null(scale);
    assert_string_equal(json_string_value(json_object_get(scale, "group")), "autoscaling");
    assert_string_equal(json_string_value(json_object_get(scale, "version")), "v1");
    assert_string_equal(json_string_value(json_object_get(scale, "kind")), "Scale");
    json_decref(d);
}

#define KUBECTL_ACCEPT                                                                       \
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;" \
    "g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"

static json_t *agg_resource(json_t *doc, const char *group, const char *version,
                            const char *resource)
{
    size_t i, j;
    json_t *item, *ver;
    json_array_foreach(json_object_get(doc, "items"), i, item) {
        const char *name = json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
        if (strcmp(name ? name : "", group) != 0)
            continue;
        json_array_foreach(json_object_get(item, "versions"), j, ver) {
            const char *v = json_string_value(json_object_get(ver, "version"));
            if (version && strcmp(v ? v : "", version) != 0)
                continue; /* a resource may be served in several versions */
            json_t *r = find_by(json_object_get(ver, "resources"), "resource", resource);
            if (r)
                return r;
        }
    }
    return NULL;
}

static void test_aggregated(void **state)
{
    (void)state;
    int status;
    const char *ct;
    json_t *api = get_doc("GET", "/api", KUBECTL_ACCEPT, &status, &ct);
    assert_int_equal(status, 200);
    assert_string_equal(ct, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    assert_string_equal(json_string_value(json_object_get(api, "kind")), "APIGroupDiscoveryList");
    assert_string_equal(json_string_value(json_object_get(api, "apiVersion")),
                        "apidiscovery.k8s.io/v2");
    json_t *apis = get_doc("GET", "/apis", KUBECTL_ACCEPT, &status, &ct);
    assert_string_equal(ct, DISCOVERY_AGGREGATED_V2_TYPE);

    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        json_t *r = agg_resource(k->group[0] ? apis : api, k->group, k->version, k->resource);
        assert_non_null(r);
        json_t *rk = json_object_get(r, "responseKind");
        assert_string_equal(json_string_value(json_object_get(rk, "kind")), k->kind);
        assert_string_equal(json_string_value(json_object_get(rk, "group")), k->group);
        assert_string_equal(json_string_value(json_object_get(rk, "version")), k->version);
        assert_string_equal(json_string_value(json_object_get(r, "scope")),
                            k->namespaced ? "Namespaced" : "Cluster");
        assert_string_equal(json_string_value(json_object_get(r, "singularResource")),
                            k->singular);
        assert_verbs(k, json_object_get(r, "verbs"));
        json_t *subs = json_object_get(r, "subresources");
        assert_int_equal(find_by(subs, "subresource", "status") != NULL, k->has_status != 0);
        json_t *sc = find_by(subs, "subresource", "scale");
        assert_int_equal(sc != NULL, k->has_scale != 0);
        if (sc)
            assert_string_equal(json_string_value(json_object_get(
                                    json_object_get(sc, "responseKind"), "group")),
                                "autoscaling");
    }
    json_t *deploy = agg_resource(apis, "apps", NULL, "deployments");
    assert_true(has_string(json_object_get(deploy, "shortNames"), "deploy"));
    json_decref(api);
    json_decref(apis);

    /* Only v2beta1 asked: v2beta1 answered. */
    api = get_doc("GET", "/api",
                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                  &status, &ct);
    assert_string_equal(ct, DISCOVERY_AGGREGATED_V2BETA1_TYPE);
    assert_string_equal(json_string_value(json_object_get(api, "apiVersion")),
                        "apidiscovery.k8s.io/v2beta1");
    json_decref(api);

    /* Plain JSON when aggregated is not asked for. */
    api = get_doc("GET", "/api", "application/json, */*", &status, &ct);
    assert_string_equal(ct, "application/json");
    assert_string_equal(json_string_value(json_object_get(api, "kind")), "APIVersions");
    json_decref(api);
}

static void test_accept_parsing(void **state)
{
    (void)state;
    assert_int_equal(discovery_accept_aggregated(NULL), 0);
    assert_int_equal(discovery_accept_aggregated("application/json"), 0);
    assert_int_equal(discovery_accept_aggregated(KUBECTL_ACCEPT), 2);
    assert_int_equal(
        discovery_accept_aggregated("application/json; as=APIGroupDiscoveryList; "
                                    "v=v2beta1; g=apidiscovery.k8s.io, application/json"),
        1);
    assert_int_equal(discovery_accept_aggregated("application/json;g=other;v=v2;as=APIGroupDiscoveryList"), 0);
}

static void test_version_and_errors(void **state)
{
    (void)state;
    json_t *v = get_ok("/version", NULL);
    assert_string_equal(json_string_value(json_object_get(v, "major")), "1");
    assert_string_equal(json_string_value(json_object_get(v, "minor")), "32");
    assert_non_null(strstr(json_string_value(json_object_get(v, "gitVersion")), "v1.32."));
    assert_non_null(json_string_value(json_object_get(v, "platform")));
    json_decref(v);

    int status;
    json_t *d = get_doc("GET", "/apis/nosuch.example.com/v1", NULL, &status, NULL);
    assert_int_equal(status, 404);
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "NotFound");
    json_decref(d);
    d = get_doc("POST", "/api/v1", NULL, &status, NULL);
    assert_int_equal(status, 405);
    json_decref(d);

    /* Resource paths belong to the REST handlers. */
    const char *not_ours[] = {"/api/v1/pods", "/apis/apps/v1/deployments", "/healthz",
                              "/apis/apps/v1/namespaces/x/deployments", "/openapi/v2"};
    for (size_t i = 0; i < sizeof not_ours / sizeof not_ours[0]; i++) {
        api_request_t req = {.method = "GET", .path = not_ours[i]};
        api_doc_reply_t r;
        assert_int_equal(discovery_handle(&req, &r), 0);
    }
}

static void test_version_priority(void **state)
{
    (void)state;
    assert_true(discovery_version_newer("v1", "v1beta1"));
    assert_true(discovery_version_newer("v2", "v1"));
    assert_true(discovery_version_newer("v1beta2", "v1beta1"));
    assert_true(discovery_version_newer("v1beta1", "v1alpha3"));
    assert_true(discovery_version_newer("v1alpha1", "foo"));
    assert_false(discovery_version_newer("v1alpha1", "v1"));
}

static const char *const widget_names[] = {"wd", NULL};

/* A kind added at run time (as a CRD will be) shows up without a restart. */
static void test_new_kind_noticed(void **state)
{
    (void)state;
    json_t *before = get_ok("/apis", NULL);
    assert_null(find_by(json_object_get(before, "groups"), "name", "example.com"));
    json_decref(before);

    kind_def_t w = {.group = "example.com", .version = "v1alpha1", .kind = "Widget",
                    .list_kind = "WidgetList", .resource = "widgets", .singular = "widget",
                    .namespaced = 1, .short_names = widget_names,
                    .schema_name = "io.k8s.api.core.v1.ConfigMap"};
    assert_int_equal(registry_add(&w), 0);
    json_t *after = get_ok("/apis", NULL);
    json_t *g = find_by(json_object_get(after, "groups"), "name", "example.com");
    assert_non_null(g);
    assert_string_equal(json_string_value(json_object_get(json_object_get(g, "preferredVersion"),
                                                          "groupVersion")),
                        "example.com/v1alpha1");
    json_decref(after);
    json_t *rl = get_ok("/apis/example.com/v1alpha1", NULL);
    assert_non_null(find_by(json_object_get(rl, "resources"), "name", "widgets"));
    json_decref(rl);

    /* Explicit invalidation rebuilds too. */
    discovery_invalidate();
    rl = get_ok("/apis/example.com/v1alpha1", NULL);
    assert_non_null(find_by(json_object_get(rl, "resources"), "name", "widgets"));
    json_decref(rl);
}

static int setup(void **state)
{
    (void)state;
    return registry_init() == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    discovery_shutdown();
    registry_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_versions),       cmocka_unit_test(test_group_list),
        cmocka_unit_test(test_resource_lists),     cmocka_unit_test(test_core_details),
        cmocka_unit_test(test_aggregated),         cmocka_unit_test(test_accept_parsing),
        cmocka_unit_test(test_version_and_errors), cmocka_unit_test(test_version_priority),
        cmocka_unit_test(test_new_kind_noticed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
