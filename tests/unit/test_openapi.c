/* tests/unit/test_openapi.c - OpenAPI v2 and v3 documents as kubectl reads
 * them: definitions with x-kubernetes-group-version-kind and patch
 * extensions, the fieldValidation parameter on every PATCH, a v3 index
 * listing every group-version with hashes, v3 documents whose refs all
 * resolve inside them, and outdated hashes. Uses the real registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/openapi.h"
#include "object/registry.h"

static json_t *fetch(const char *path, const char *query, api_doc_reply_t *r)
{
    api_request_t req = {.method = "GET", .path = path, .query = query,
                         .accept = "application/json"};
    assert_int_equal(openapi_handle(&req, r), 1);
    if (r->len == 0)
        return NULL;
    json_error_t err;
    json_t *doc = json_loadb(r->body, r->len, 0, &err);
    assert_non_null(doc);
    return doc;
}

static json_t *fetch_ok(const char *path, const char *query)
{
    api_doc_reply_t r;
    json_t *doc = fetch(path, query, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    return doc;
}

/* Count $refs not starting with prefix or naming a missing schema. */
static size_t bad_refs(json_t *node, json_t *defs, const char *prefix)
{
    size_t bad = 0;
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        json_object_foreach(node, key, v) {
            if (strcmp(key, "$ref") == 0) {
                const char *ref = json_string_value(v);
                size_t pl = strlen(prefix);
                if (!ref || strncmp(ref, prefix, pl) != 0 || !json_object_get(defs, ref + pl)) {
                    fprintf(stderr, "# unresolved ref %s\n", ref ? ref : "(null)");
                    bad++;
                }
            } else {
                bad += bad_refs(v, defs, prefix);
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) bad += bad_refs(v, defs, prefix);
    }
    return bad;
}

static int gvk_list_has(json_t *list, const char *group, const char *version, const char *kind)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "group")), group) == 0 &&
            strcmp(json_string_value(json_object_get(e, "version")), version) == 0 &&
            strcmp(json_string_value(json_object_get(e, "kind")), kind) == 0)
            return 1;
    }
    return 0;
}

static int has_param(json_t *op, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(op, "parameters"), i, p) {
        const char *n = json_string_value(json_object_get(p, "name"));
        if (n && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

static void item_path(const kind_def_t *k, char *buf, size_t size)
{
    char prefix[200];
    if (k->group[0])
        snprintf(prefix, sizeof prefix, "/apis/%s/%s", k->group, k->version);
    else
        snprintf(prefix, sizeof prefix, "/api/%s", k->version);
    if (k->namespaced)
        snprintf(buf, size, "%s/namespaces/{namespace}/%s/{name}", prefix, k->resource);
    else
        snprintf(buf, size, "%s/%s/{name}", prefix, k->resource);
}

/* Every PATCH operation has fieldValidation (kubectl's check stops at the
 * first PATCH operation it finds for a kind) and the GVK extension. */
static void assert_patch_ops(json_t *paths, const char *const *ctypes_v3)
{
    const char *path;
    json_t *item;
    size_t n = 0;
    json_object_foreach(paths, path, item) {
        json_t *op = json_object_get(item, "patch");
        if (!op)
            continue;
        n++;
        assert_true(has_param(op, "fieldValidation"));
        assert_true(has_param(op, "dryRun"));
        assert_true(has_param(op, "fieldManager"));
        assert_true(json_is_object(json_object_get(op, "x-kubernetes-group-version-kind")));
        assert_string_equal(json_string_value(json_object_get(op, "x-kubernetes-action")), "patch");
        json_t *types = ctypes_v3 ? json_object_get(json_object_get(op, "requestBody"), "content")
                                  : NULL;
        /* CustomResourceDefinitions announce no strategic merge patch
         * (kubectl then computes a JSON merge patch) */
        int crd = strcmp(json_string_value(json_object_get(
                             json_object_get(op, "x-kubernetes-group-version-kind"), "kind")),
                         "CustomResourceDefinition") == 0;
        for (size_t i = 0; ctypes_v3 && ctypes_v3[i]; i++)
            if (!crd || strcmp(ctypes_v3[i], "application/strategic-merge-patch+json") != 0)
                assert_non_null(json_object_get(types, ctypes_v3[i]));
    }
    assert_true(n > 0);
}

static const char *const k_patch_types[] = {
    "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "application/apply-patch+yaml", NULL};

static void test_v2_definitions(void **state)
{
    (void)state;
    json_t *d = fetch_ok("/openapi/v2", NULL);
    assert_string_equal(json_string_value(json_object_get(d, "swagger")), "2.0");
    json_t *defs = json_object_get(d, "definitions");
    assert_int_equal(bad_refs(d, defs, "#/definitions/"), 0);

    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        json_t *def = json_object_get(defs, k->schema_name);
        assert_non_null(def);
        assert_true(gvk_list_has(json_object_get(def, "x-kubernetes-group-version-kind"),
                                 k->group, k->version, k->kind));
    }
    json_t *containers = json_object_get(
        json_object_get(json_object_get(defs, "io.k8s.api.core.v1.PodSpec"), "properties"),
        "containers");
    assert_string_equal(json_string_value(json_object_get(containers, "type")), "array");
    assert_string_equal(json_string_value(json_object_get(containers, "x-kubernetes-patch-merge-key")),
                        "name");
    assert_string_equal(json_string_value(json_object_get(containers, "x-kubernetes-patch-strategy")),
                        "merge");
    assert_string_equal(json_string_value(json_object_get(containers, "x-kubernetes-list-type")),
                        "map");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(containers, "x-kubernetes-list-map-keys"), 0)),
                        "name");
    assert_string_equal(json_string_value(json_object_get(json_object_get(containers, "items"), "$ref")),
                        "#/definitions/io.k8s.api.core.v1.Container");
    json_t *req = json_object_get(json_object_get(defs, "io.k8s.api.core.v1.PodSpec"), "required");
    int found = 0;
    for (size_t i = 0; i < json_array_size(req); i++)
        found |= strcmp(json_string_value(json_array_get(req, i)), "containers") == 0;
    assert_true(found);

    json_t *ios = json_object_get(defs, "io.k8s.apimachinery.pkg.util.intstr.IntOrString");
    assert_string_equal(json_string_value(json_object_get(ios, "type")), "string");
    assert_string_equal(json_string_value(json_object_get(ios, "format")), "int-or-string");
    json_t *tm = json_object_get(defs, "io.k8s.apimachinery.pkg.apis.meta.v1.Time");
    assert_string_equal(json_string_value(json_object_get(tm, "format")), "date-time");
    json_t *q = json_object_get(defs, "io.k8s.apimachinery.pkg.api.resource.Quantity");
    assert_string_equal(json_string_value(json_object_get(q, "type")), "string");
    json_t *dl = json_object_get(defs, "io.k8s.api.apps.v1.DeploymentList");
    assert_true(gvk_list_has(json_object_get(dl, "x-kubernetes-group-version-kind"), "apps", "v1",
                             "DeploymentList"));
    json_decref(d);
}

static void test_v2_paths(void **state)
{
    (void)state;
    json_t *d = fetch_ok("/openapi/v2", NULL);
    json_t *paths = json_object_get(d, "paths");
    assert_patch_ops(paths, NULL);
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        char path[512];
        item_path(k, path, sizeof path);
        json_t *item = json_object_get(paths, path);
        assert_non_null(item);
        const char *methods[] = {"get", "put", "patch", "delete"};
        for (size_t m = 0; m < 4; m++) {
            json_t *op = json_object_get(item, methods[m]);
            assert_non_null(op);
            json_t *gvk = json_object_get(op, "x-kubernetes-group-version-kind");
            assert_string_equal(json_string_value(json_object_get(gvk, "kind")), k->kind);
        }
        json_t *patch = json_object_get(item, "patch");
        json_t *consumes = json_object_get(patch, "consumes");
        assert_int_equal(json_array_size(consumes),
                         strcmp(k->kind, "CustomResourceDefinition") == 0 ? 3 : 4);
        json_t *put = json_object_get(item, "put");
        assert_true(has_param(put, "fieldValidation"));
        assert_true(has_param(put, "body"));
        /* Collection: list, create, deletecollection. */
        char *slash = strrchr(path, '/');
        *slash = '\0';
        json_t *coll = json_object_get(paths, path);
        assert_string_equal(json_string_value(json_object_get(json_object_get(coll, "get"),
                                                              "x-kubernetes-action")),
                            "list");
        assert_true(has_param(json_object_get(coll, "get"), "watch"));
        assert_true(has_param(json_object_get(coll, "post"), "fieldValidation"));
        assert_string_equal(json_string_value(json_object_get(json_object_get(coll, "delete"),
                                                              "x-kubernetes-action")),
                            "deletecollection");
    }
    json_t *pod_patch = json_object_get(
        json_object_get(paths, "/api/v1/namespaces/{namespace}/pods/{name}"), "patch");
    assert_string_equal(json_string_value(json_object_get(pod_patch, "operationId")),
                        "patchCoreV1NamespacedPod");
    json_t *scale = json_object_get(
        paths, "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale");
    json_t *sgvk = json_object_get(json_object_get(scale, "get"), "x-kubernetes-group-version-kind");
    assert_string_equal(json_string_value(json_object_get(sgvk, "group")), "autoscaling");
    assert_string_equal(json_string_value(json_object_get(sgvk, "kind")), "Scale");
    assert_non_null(json_object_get(paths, "/api/v1/namespaces/{namespace}/pods/{name}/status"));
    assert_non_null(json_object_get(paths, "/api/v1/namespaces/{name}"));
    json_decref(d);
}

static void test_v3_index_and_documents(void **state)
{
    (void)state;
    json_t *idx = fetch_ok("/openapi/v3", NULL);
    json_t *paths = json_object_get(idx, "paths");
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        char key[256];
        if (k->group[0])
            snprintf(key, sizeof key, "apis/%s/%s", k->group, k->version);
        else
            snprintf(key, sizeof key, "api/%s", k->version);
        assert_non_null(json_object_get(paths, key));
    }
    const char *key;
    json_t *entry;
    json_object_foreach(paths, key, entry) {
        const char *url = json_string_value(json_object_get(entry, "serverRelativeURL"));
        assert_non_null(url);
        const char *q = strchr(url, '?');
        assert_non_null(q);
        assert_int_equal(strncmp(q + 1, "hash=", 5), 0);
        assert_int_equal(strlen(q + 6), 128);
        char path[300];
        snprintf(path, sizeof path, "%.*s", (int)(q - url), url);

        api_doc_reply_t r;
        json_t *doc = fetch(path, q + 1, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.cache_control, "public, immutable");
        assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.0");
        json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
        assert_int_equal(bad_refs(doc, schemas, "#/components/schemas/"), 0);
        assert_patch_ops(json_object_get(doc, "paths"), k_patch_types);
        /* Every kind of this group-version is findable by its GVK, the way
         * kubectl explain looks for it. */
        for (size_t i = 0; i < registry_count(); i++) {
            const kind_def_t *k = registry_at(i);
            char kkey[256];
            if (k->group[0])
                snprintf(kkey, sizeof kkey, "apis/%s/%s", k->group, k->version);
            else
                snprintf(kkey, sizeof kkey, "api/%s", k->version);
            if (strcmp(kkey, key) != 0)
                continue;
            json_t *def = json_object_get(schemas, k->schema_name);
            assert_non_null(def);
            assert_true(gvk_list_has(json_object_get(def, "x-kubernetes-group-version-kind"),
                                     k->group, k->version, k->kind));
        }
        assert_non_null(json_object_get(schemas, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert_non_null(json_object_get(schemas, "io.k8s.apimachinery.pkg.apis.meta.v1.Status"));
        json_decref(doc);
    }
    json_decref(idx);
}

static void test_v3_explain_paths(void **state)
{
    (void)state;
    json_t *doc = fetch_ok("/openapi/v3/apis/apps/v1", NULL);
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    json_t *spec = json_object_get(
        json_object_get(json_object_get(schemas, "io.k8s.api.apps.v1.Deployment"), "properties"),
        "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "$ref")),
                        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec");
    assert_non_null(json_object_get(schemas, "io.k8s.api.core.v1.PodSpec"));
    assert_non_null(json_object_get(schemas, "io.k8s.api.autoscaling.v1.Scale"));
    /* Core types are not in the apps document unless reachable: Namespace is not. */
    assert_null(json_object_get(schemas, "io.k8s.api.core.v1.Namespace"));
    json_t *list = json_object_get(json_object_get(doc, "paths"),
                                   "/apis/apps/v1/namespaces/{namespace}/deployments");
    json_t *gvk = json_object_get(json_object_get(list, "get"), "x-kubernetes-group-version-kind");
    assert_string_equal(json_string_value(json_object_get(gvk, "kind")), "Deployment");
    assert_string_equal(json_string_value(json_object_get(gvk, "group")), "apps");
    json_decref(doc);
}

static void test_hash_and_errors(void **state)
{
    (void)state;
    api_doc_reply_t r;
    /* An outdated hash: the current document, not cacheable, and its URL. */
    json_t *doc = fetch("/openapi/v3/api/v1", "hash=0123", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.0");
    assert_string_equal(r.cache_control, "no-cache, private");
    assert_non_null(r.location);
    assert_int_equal(strncmp(r.location, "/openapi/v3/api/v1?hash=", 24), 0);
    assert_int_equal(strlen(r.location), 24 + 128);
    json_decref(doc);
    /* Without a hash: fresh, not immutable. */
    doc = fetch("/openapi/v3/api/v1", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.cache_control, "no-cache, private");
    json_decref(doc);

    doc = fetch("/openapi/v3/apis/nosuch/v1", NULL, &r);
    assert_int_equal(r.status, 404);
    json_decref(doc);

    api_request_t pb = {.method = "GET", .path = "/openapi/v2",
                        .accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"};
    assert_int_equal(openapi_handle(&pb, &r), 1);
    assert_int_equal(r.status, 406);

    api_request_t other = {.method = "GET", .path = "/api/v1"};
    assert_int_equal(openapi_handle(&other, &r), 0);
}

/* Cached bytes are served again; a new kind changes the index hash set. */
static void test_cache_and_invalidate(void **state)
{
    (void)state;
    api_request_t req = {.method = "GET", .path = "/openapi/v2"};
    api_doc_reply_t a, b;
    assert_int_equal(openapi_handle(&req, &a), 1);
    assert_int_equal(openapi_handle(&req, &b), 1);
    assert_ptr_equal(a.body, b.body);

    kind_def_t w = {.group = "example.com", .version = "v1", .kind = "Gadget",
                    .list_kind = "GadgetList", .resource = "gadgets", .singular = "gadget",
                    .namespaced = 0, .schema_name = "io.k8s.api.core.v1.ConfigMap"};
    assert_int_equal(registry_add(&w), 0);
    json_t *idx = fetch_ok("/openapi/v3", NULL);
    assert_non_null(json_object_get(json_object_get(idx, "paths"), "apis/example.com/v1"));
    json_decref(idx);
    json_t *doc = fetch_ok("/openapi/v3/apis/example.com/v1", NULL);
    assert_non_null(json_object_get(json_object_get(doc, "paths"), "/apis/example.com/v1/gadgets/{name}"));
    json_decref(doc);
    openapi_invalidate();
    doc = fetch_ok("/openapi/v2", NULL);
    assert_non_null(json_object_get(json_object_get(doc, "paths"),
                                    "/apis/example.com/v1/gadgets/{name}"));
    json_decref(doc);
}

static int setup(void **state)
{
    (void)state;
    return registry_init() == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    openapi_shutdown();
    registry_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_definitions),   cmocka_unit_test(test_v2_paths),
        cmocka_unit_test(test_v3_index_and_documents), cmocka_unit_test(test_v3_explain_paths),
        cmocka_unit_test(test_hash_and_errors),  cmocka_unit_test(test_cache_and_invalidate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
