/* tests/unit/test_kinds_extra.c - LimitRange, ResourceQuota,
 * PodDisruptionBudget, StorageClass, the autoscaling/v1
 * HorizontalPodAutoscaler, the RBAC kinds and the create-only reviews.
 *
 * For each kind: how it resolves (names, scope, subresources), its
 * defaults, its validation rules and the columns `kubectl get` shows; for
 * the HPA, the conversion between the v1 form and the stored v2 form in
 * both directions. */
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

#include "api/table.h"
#include "object/registry.h"

static int setup(void **state)
{
    (void)state;
    return registry_init();
}

static int teardown(void **state)
{
    (void)state;
    registry_shutdown();
    return 0;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

static const kind_def_t *res(const char *group, const char *version, const char *resource)
{
    const kind_def_t *k = registry_find_resource(group, version, resource);
    assert_non_null(k);
    return k;
}

/* ---- resolving -------------------------------------------------------------- */

static void test_resolve(void **state)
{
    (void)state;
    static const struct {
        const char *short_name, *group, *version, *resource, *kind;
        int namespaced, has_status;
    } want[] = {
        { "limits", "", "v1", "limitranges", "LimitRange", 1, 0 },
        { "quota", "", "v1", "resourcequotas", "ResourceQuota", 1, 1 },
        { "pdb", "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", 1, 1 },
        { "sc", "storage.k8s.io", "v1", "storageclasses", "StorageClass", 0, 0 },
        { "hpa", "autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", 1, 1 },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const kind_def_t *k = registry_find_name(want[i].short_name);
        assert_non_null(k);
        assert_string_equal(k->group, want[i].group);
        assert_string_equal(k->version, want[i].version);
        assert_string_equal(k->resource, want[i].resource);
        assert_string_equal(k->kind, want[i].kind);
        assert_int_equal(k->namespaced, want[i].namespaced);
        assert_int_equal(k->has_status, want[i].has_status);
        assert_ptr_equal(registry_find_kind(want[i].group, want[i].version, want[i].kind), k);
        assert_ptr_equal(registry_storage_kind(k), k);
    }
    assert_ptr_equal(registry_find_name("pdb.policy"), registry_find_name("pdb"));
    assert_ptr_equal(registry_find_name("storageclasses.storage.k8s.io"),
                     registry_find_name("sc"));

    /* The HPA in two versions: v2 preferred and stored, v1 converted. */
    const kind_def_t *v2 = res("autoscaling", "v2", "horizontalpodautoscalers");
    const kind_def_t *v1 = res("autoscaling", "v1", "horizontalpodautoscalers");
    assert_ptr_not_equal(v1, v2);
    assert_ptr_equal(res("autoscaling", NULL, "horizontalpodautoscalers"), v2);
    assert_ptr_equal(registry_find_kind("autoscaling", NULL, "HorizontalPodAutoscaler"), v2);
    assert_ptr_equal(registry_find_kind("autoscaling", "v1", "HorizontalPodAutoscaler"), v1);
    assert_ptr_equal(registry_storage_kind(v1), v2);
    assert_ptr_equal(registry_storage_kind(v2), v2);
    assert_string_equal(registry_api_version(v1), "autoscaling/v1");
    assert_string_equal(v1->schema_name, "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler");
    assert_non_null(v1->schema);
    assert_true(v1->namespaced && v1->has_status);
    assert_non_null(v1->to_storage);
    assert_non_null(v1->from_storage);
    assert_null(v2->storage_version);
}

/* ---- defaults --------------------------------------------------------------- */

static void assert_json(const json_t *got, const char *want_text)
{
    json_t *want = load(want_text);
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        print_message("got  %s\nwant %s\n", g ? g : "(null)", w ? w : "(null)");
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static void test_defaults_limitrange(void **state)
{
    (void)state;
    const kind_def_t *k = res("", "v1", "limitranges");
    /* max -> default -> defaultRequest; min fills defaultRequest last;
     * values the user wrote stay; Pod limits get no defaults. */
    json_t *o = load("{\"spec\":{\"limits\":["
                     "{\"type\":\"Container\",\"max\":{\"cpu\":\"800m\",\"memory\":\"1Gi\"},"
                     "\"min\":{\"cpu\":\"200m\",\"ephemeral-storage\":\"1Gi\"},"
                     "\"default\":{\"memory\":\"512Mi\"}},"
                     "{\"type\":\"Pod\",\"max\":{\"cpu\":\"2\"}},"
                     "{\"type\":\"Container\"}]}}");
    registry_set_defaults(k, o);
    assert_json(json_object_get(o, "spec"),
                "{\"limits\":["
                "{\"type\":\"Container\",\"max\":{\"cpu\":\"800m\",\"memory\":\"1Gi\"},"
                "\"min\":{\"cpu\":\"200m\",\"ephemeral-storage\":\"1Gi\"},"
                "\"default\":{\"memory\":\"512Mi\",\"cpu\":\"800m\"},"
                "\"defaultRequest\":{\"memory\":\"512Mi\",\"cpu\":\"800m\","
                "\"ephemeral-storage\":\"1Gi\"}},"
                "{\"type\":\"Pod\",\"max\":{\"cpu\":\"2\"}},"
                "{\"type\":\"Container\"}]}");
    json_decref(o);
}

static void test_defaults_other(void **state)
{
    (void)state;
    json_t *sc = load("{\"provisioner\":\"k8s.io/minikube-hostpath\"}");
    registry_set_defaults(res("storage.k8s.io", "v1", "storageclasses"), sc);
    assert_json(sc, "{\"provisioner\":\"k8s.io/minikube-hostpath\",\"reclaimPolicy\":\"Delete\","
                    "\"volumeBindingMode\":\"Immediate\"}");
    json_decref(sc);
    sc = load("{\"provisioner\":\"p\",\"reclaimPolicy\":\"Retain\","
              "\"volumeBindingMode\":\"WaitForFirstConsumer\"}");
    registry_set_defaults(res("storage.k8s.io", "v1", "storageclasses"), sc);
    assert_json(sc, "{\"provisioner\":\"p\",\"reclaimPolicy\":\"Retain\","
                    "\"volumeBindingMode\":\"WaitForFirstConsumer\"}");
    json_decref(sc);

    json_t *hpa = load("{\"spec\":{\"maxReplicas\":3}}");
    registry_set_defaults(res("autoscaling", "v1", "horizontalpodautoscalers"), hpa);
    assert_json(hpa, "{\"spec\":{\"maxReplicas\":3,\"minReplicas\":1}}");
    json_decref(hpa);

    /* A PodDisruptionBudget and a quota are stored as written. */
    json_t *pdb = load("{\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}}}}");
    registry_set_defaults(res("policy", "v1", "poddisruptionbudgets"), pdb);
    assert_json(pdb, "{\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}}}}");
    json_decref(pdb);
}

/* ---- validation ------------------------------------------------------------- */

static void dump(const validation_result_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        print_message("#   %s [%s] %s\n", r->errors[i].field, r->errors[i].reason,
                      r->errors[i].message);
}

/* Validate after defaults, as the API server does. */
static size_t validate(const kind_def_t *k, const char *text, validation_result_t *r)
{
    json_t *o = load(text);
    registry_set_defaults(k, o);
    size_t n = registry_validate(k, o, VALIDATE_STRICT, r);
    json_decref(o);
    return n;
}

static void expect_clean(const kind_def_t *k, const char *text)
{
    validation_result_t r;
    size_t n = validate(k, text, &r);
    if (n) {
        dump(&r);
        validation_result_free(&r);
        fail_msg("%s: %zu unexpected errors", k->kind, n);
    }
    validation_result_free(&r);
}

static void expect_one(const kind_def_t *k, const char *text, const char *field,
                       const char *reason, const char *msg)
{
    validation_result_t r;
    size_t n = validate(k, text, &r);
    if (n != 1 || strcmp(r.errors[0].field, field) != 0 || strcmp(r.errors[0].reason, reason) != 0 ||
        !strstr(r.errors[0].message, msg)) {
        dump(&r);
        validation_result_free(&r);
        fail_msg("want one error %s [%s] \"%s\", got %zu", field, reason, msg, n);
    }
    validation_result_free(&r);
}

#define META "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"}"
#define LR(limits) "{\"apiVersion\":\"v1\",\"kind\":\"LimitRange\"," META ",\"spec\":{\"limits\":" limits "}}"
#define PDB(spec) "{\"apiVersion\":\"policy/v1\",\"kind\":\"PodDisruptionBudget\"," META ",\"spec\":" spec "}"
#define SC(fields) "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\",\"metadata\":{\"name\":\"fast\"}," fields "}"
#define HPA_V2(spec) "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\"," META ",\"spec\":" spec "}"
#define REF "\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"frontend\"}"

static void test_validate_manifests(void **state)
{
    (void)state;
    /* The shapes of the Kubernetes docs' manifests (admin/resource,
     * zookeeper, cassandra, hpa-rs). */
    const kind_def_t *lr = res("", "v1", "limitranges");
    expect_clean(lr, LR("[{\"max\":{\"cpu\":\"800m\"},\"min\":{\"cpu\":\"200m\"},\"type\":\"Container\"}]"));
    expect_clean(lr, LR("[{\"default\":{\"cpu\":1},\"defaultRequest\":{\"cpu\":0.5},\"type\":\"Container\"}]"));
    expect_clean(lr, LR("[{\"max\":{\"cpu\":\"800m\",\"memory\":\"1Gi\"},\"min\":{\"cpu\":\"100m\","
                        "\"memory\":\"99Mi\"},\"default\":{\"cpu\":\"700m\",\"memory\":\"900Mi\"},"
                        "\"defaultRequest\":{\"cpu\":\"110m\",\"memory\":\"111Mi\"},\"type\":\"Container\"}]"));
    expect_clean(res("", "v1", "resourcequotas"),
                 "{\"apiVersion\":\"v1\",\"kind\":\"ResourceQuota\"," META ",\"spec\":{\"hard\":"
                 "{\"requests.cpu\":\"1\",\"requests.memory\":\"1Gi\",\"limits.cpu\":\"2\","
                 "\"limits.memory\":\"2Gi\",\"pods\":\"2\"}}}");
    expect_clean(res("policy", "v1", "poddisruptionbudgets"),
                 PDB("{\"selector\":{\"matchLabels\":{\"app.kubernetes.io/name\":\"zk\"}},"
                     "\"maxUnavailable\":1}"));
    expect_clean(res("storage.k8s.io", "v1", "storageclasses"),
                 SC("\"provisioner\":\"k8s.io/minikube-hostpath\",\"parameters\":{\"type\":\"pd-ssd\"}"));
    expect_clean(res("autoscaling", "v2", "horizontalpodautoscalers"),
                 HPA_V2("{" REF ",\"minReplicas\":3,\"maxReplicas\":10,\"metrics\":[{\"type\":"
                        "\"Resource\",\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":"
                        "\"Utilization\",\"averageUtilization\":50}}}]}"));
    /* The v1 form validates against the v1 schema too. */
    expect_clean(res("autoscaling", "v1", "horizontalpodautoscalers"),
                 "{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\"," META
                 ",\"spec\":{" REF ",\"minReplicas\":3,\"maxReplicas\":10,"
                 "\"targetCPUUtilizationPercentage\":50}}");
}

static void test_validate_limitrange(void **state)
{
    (void)state;
    const kind_def_t *lr = res("", "v1", "limitranges");
    expect_one(lr, LR("[{\"max\":{\"cpu\":\"800m\"},\"min\":{\"cpu\":\"900m\"},\"type\":\"Pod\"}]"),
               "spec.limits[0].min[cpu]", "FieldValueInvalid",
               "Invalid value: \"900m\": min value 900m is greater than max value 800m");
    expect_one(lr, LR("[{\"default\":{\"memory\":\"1Gi\"},\"defaultRequest\":{\"memory\":\"2Gi\"},"
                      "\"type\":\"Container\"}]"),
               "spec.limits[0].defaultRequest[memory]", "FieldValueInvalid",
               "default request value 2Gi is greater than default limit value 1Gi");
    expect_one(lr, LR("[{\"default\":{\"cpu\":\"2\"},\"max\":{\"cpu\":\"1\"},\"defaultRequest\":"
                      "{\"cpu\":\"1\"},\"type\":\"Container\"}]"),
               "spec.limits[0].default[cpu]", "FieldValueInvalid",
               "Invalid value: \"1\": default value 2 is greater than max value 1");
    expect_one(lr, LR("[{\"type\":\"Pod\",\"default\":{\"cpu\":\"1\"}}]"),
               "spec.limits[0].default", "FieldValueInvalid",
               "may not be specified when `type` is 'Pod'");
    expect_one(lr, LR("[{\"type\":\"Container\",\"maxLimitRequestRatio\":{\"cpu\":\"500m\"}}]"),
               "spec.limits[0].maxLimitRequestRatio[cpu]", "FieldValueInvalid",
               "ratio 500m is less than 1");
    expect_one(lr, LR("[{\"max\":{\"cpu\":\"1\"}}]"), "spec.limits[0].type", "FieldValueRequired",
               "Required value");
    expect_one(lr, LR("[{\"type\":\"Pod\",\"max\":{\"cpu\":\"lots\"}}]"),
               "spec.limits[0].max[cpu]", "FieldValueInvalid", "quantities must match");
}

static void test_validate_quota_pdb_sc(void **state)
{
    (void)state;
    expect_one(res("", "v1", "resourcequotas"),
               "{\"apiVersion\":\"v1\",\"kind\":\"ResourceQuota\"," META
               ",\"spec\":{\"hard\":{\"pods\":\"-1\"}}}",
               "spec.hard[pods]", "FieldValueInvalid", "must be greater than or equal to 0");
    expect_one(res("", "v1", "resourcequotas"),
               "{\"apiVersion\":\"v1\",\"kind\":\"ResourceQuota\"," META
               ",\"spec\":{\"scopes\":[\"Sometimes\"]}}",
               "spec.scopes[0]", "FieldValueNotSupported", "Unsupported value: \"Sometimes\"");

    const kind_def_t *pdb = res("policy", "v1", "poddisruptionbudgets");
    expect_one(pdb, PDB("{\"minAvailable\":1,\"maxUnavailable\":1}"), "spec.minAvailable",
               "FieldValueInvalid", "minAvailable and maxUnavailable cannot be both set");
    expect_one(pdb, PDB("{\"maxUnavailable\":-1}"), "spec.maxUnavailable", "FieldValueInvalid",
               "must be greater than or equal to 0");
    expect_one(pdb, PDB("{\"minAvailable\":\"half\"}"), "spec.minAvailable", "FieldValueInvalid",
               "a valid percent string must be a numeric string followed by an ending '%'");
    expect_one(pdb, PDB("{\"minAvailable\":\"150%\"}"), "spec.minAvailable", "FieldValueInvalid",
               "must not be greater than 100%");
    expect_clean(pdb, PDB("{\"minAvailable\":\"50%\"}"));
    expect_one(pdb, PDB("{\"unhealthyPodEvictionPolicy\":\"Never\"}"),
               "spec.unhealthyPodEvictionPolicy", "FieldValueNotSupported",
               "supported values: \"AlwaysAllow\", \"IfHealthyBudget\"");

    const kind_def_t *sc = res("storage.k8s.io", "v1", "storageclasses");
    expect_one(sc, SC("\"parameters\":{}"), "provisioner", "FieldValueRequired", "Required value");
    expect_one(sc, SC("\"provisioner\":\"bad provisioner!\""), "provisioner", "FieldValueInvalid",
               "name part must consist of alphanumeric characters");
    expect_one(sc, SC("\"provisioner\":\"p\",\"reclaimPolicy\":\"Recycle\""), "reclaimPolicy",
               "FieldValueNotSupported", "supported values: \"Delete\", \"Retain\"");
    expect_one(sc, SC("\"provisioner\":\"p\",\"volumeBindingMode\":\"Later\""), "volumeBindingMode",
               "FieldValueNotSupported", "\"Immediate\", \"WaitForFirstConsumer\"");
    expect_clean(sc, SC("\"provisioner\":\"Example.COM/Disk\",\"allowVolumeExpansion\":true"));
}

static void test_validate_hpa(void **state)
{
    (void)state;
    const kind_def_t *v2 = res("autoscaling", "v2", "horizontalpodautoscalers");
    expect_one(v2, HPA_V2("{" REF ",\"minReplicas\":5,\"maxReplicas\":3}"), "spec.maxReplicas",
               "FieldValueInvalid", "must be greater than or equal to `minReplicas`");
    expect_one(v2, HPA_V2("{" REF ",\"minReplicas\":0,\"maxReplicas\":3}"), "spec.minReplicas",
               "FieldValueInvalid", "must be greater than or equal to 1");
    expect_one(v2, HPA_V2("{" REF "}"), "spec.maxReplicas", "FieldValueRequired", "Required value");
    expect_one(v2, HPA_V2("{\"scaleTargetRef\":{\"kind\":\"ReplicaSet\",\"name\":\"\"},\"maxReplicas\":3}"),
               "spec.scaleTargetRef.name", "FieldValueRequired", "Required value");

    /* A v1 body is converted before validation: its errors are the v2
     * form's. */
    const kind_def_t *v1 = res("autoscaling", "v1", "horizontalpodautoscalers");
    json_t *body = load("{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\","
                        META ",\"spec\":{" REF ",\"maxReplicas\":3,"
                        "\"targetCPUUtilizationPercentage\":0}}");
    json_t *stored = registry_convert_to_storage(v1, body);
    registry_set_defaults(v2, stored);
    validation_result_t r;
    size_t n = registry_validate(v2, stored, VALIDATE_STRICT, &r);
    if (n != 1 ||
        strcmp(r.errors[0].field, "spec.metrics[0].resource.target.averageUtilization") != 0 ||
        !strstr(r.errors[0].message, "must be greater than 0")) {
        dump(&r);
        fail();
    }
    validation_result_free(&r);
    json_decref(stored);
    json_decref(body);
}

/* ---- columns ---------------------------------------------------------------- */

static const kind_column_t *column(const kind_def_t *k, const char *name)
{
    for (const kind_column_t *c = k->columns; c && c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    fail_msg("%s has no column %s", k->kind, name);
    return NULL;
}

static void assert_cell(const kind_def_t *k, const char *col, const char *obj_text, const char *want)
{
    const kind_column_t *c = column(k, col);
    assert_non_null(c->compute);
    json_t *o = load(obj_text);
    json_t *cell = c->compute(o);
    char *got = json_dumps(cell, JSON_ENCODE_ANY);
    if (!json_is_string(cell) || strcmp(json_string_value(cell), want) != 0) {
        print_message("%s %s: got %s, want \"%s\"\n", k->kind, col, got ? got : "(null)", want);
        free(got);
        fail();
    }
    free(got);
    json_decref(cell);
    json_decref(o);
}

/* The header row names of the table a kind renders. */
static void assert_headers(const kind_def_t *k, const char *const *want)
{
    json_t *obj = load("{\"metadata\":{\"name\":\"n\",\"creationTimestamp\":\"2024-01-02T03:04:05Z\"}}");
    table_opts_t o = { 0 };
    json_t *t = table_new(k, obj, &o);
    assert_non_null(t);
    json_t *defs = json_object_get(t, "columnDefinitions");
    size_t i = 0;
    for (; want[i]; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(defs, i), "name"));
        if (!name || strcmp(name, want[i]) != 0)
            fail_msg("%s column %zu: got %s, want %s", k->kind, i, name ? name : "(none)", want[i]);
    }
    assert_int_equal(json_array_size(defs), i);
    json_decref(t);
    json_decref(obj);
}

static void test_columns(void **state)
{
    (void)state;
    const kind_def_t *lr = res("", "v1", "limitranges");
    assert_headers(lr, (const char *const[]){ "Name", "CREATED AT", NULL });
    assert_cell(lr, "CREATED AT", "{\"metadata\":{\"creationTimestamp\":\"2024-01-02T03:04:05Z\"}}",
                "2024-01-02T03:04:05Z");

    const kind_def_t *q = res("", "v1", "resourcequotas");
    assert_headers(q, (const char *const[]){ "Name", "Age", "REQUEST", "LIMIT", NULL });
    /* status.hard/used once the quota controller wrote them, sorted. */
    const char *quota = "{\"spec\":{\"hard\":{\"x\":\"9\"}},\"status\":{\"hard\":{\"requests.memory\":"
                        "\"1Gi\",\"limits.cpu\":\"2\",\"pods\":\"4\",\"limits.memory\":\"2Gi\"},"
                        "\"used\":{\"requests.memory\":\"600Mi\",\"limits.cpu\":\"800m\",\"pods\":\"1\"}}}";
    assert_cell(q, "REQUEST", quota, "pods: 1/4, requests.memory: 600Mi/1Gi");
    assert_cell(q, "LIMIT", quota, "limits.cpu: 800m/2, limits.memory: 0/2Gi");
    /* Before any status: the spec, nothing used. */
    assert_cell(q, "REQUEST", "{\"spec\":{\"hard\":{\"requests.cpu\":1,\"pods\":\"2\"}}}",
                "pods: 0/2, requests.cpu: 0/1");
    assert_cell(q, "LIMIT", "{\"spec\":{\"hard\":{\"pods\":\"2\"}}}", "");

    const kind_def_t *pdb = res("policy", "v1", "poddisruptionbudgets");
    assert_headers(pdb, (const char *const[]){ "Name", "MIN AVAILABLE", "MAX UNAVAILABLE",
                                               "ALLOWED DISRUPTIONS", "Age", NULL });
    assert_cell(pdb, "MIN AVAILABLE", "{\"spec\":{\"maxUnavailable\":1}}", "N/A");
    assert_cell(pdb, "MAX UNAVAILABLE", "{\"spec\":{\"maxUnavailable\":1}}", "1");
    assert_cell(pdb, "MIN AVAILABLE", "{\"spec\":{\"minAvailable\":\"50%\"}}", "50%");
    json_t *o = load("{\"status\":{\"disruptionsAllowed\":2}}");
    json_t *cell = column(pdb, "ALLOWED DISRUPTIONS")->compute(o);
    assert_int_equal(json_integer_value(cell), 2);
    json_decref(cell);
    json_decref(o);

    const kind_def_t *sc = res("storage.k8s.io", "v1", "storageclasses");
    assert_headers(sc, (const char *const[]){ "Name", "PROVISIONER", "RECLAIMPOLICY",
                                              "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "Age",
                                              NULL });
    assert_string_equal(column(sc, "PROVISIONER")->json_path, ".provisioner");
    assert_cell(sc, "RECLAIMPOLICY", "{}", "Delete");
    assert_cell(sc, "RECLAIMPOLICY", "{\"reclaimPolicy\":\"Retain\"}", "Retain");
    assert_cell(sc, "VOLUMEBINDINGMODE", "{}", "Immediate");
    o = load("{\"allowVolumeExpansion\":true}");
    cell = column(sc, "ALLOWVOLUMEEXPANSION")->compute(o);
    assert_true(json_is_true(cell));
    json_decref(cell);
    json_decref(o);

    /* The v1 HPA shows what the v2 one shows. */
    const kind_def_t *v1 = res("autoscaling", "v1", "horizontalpodautoscalers");
    assert_headers(v1, (const char *const[]){ "Name", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS",
                                              "REPLICAS", "Age", NULL });
    assert_cell(v1, "TARGETS", "{\"spec\":{\"targetCPUUtilizationPercentage\":50}}",
                "cpu: <unknown>/50%");
    assert_cell(v1, "TARGETS",
                "{\"spec\":{\"targetCPUUtilizationPercentage\":50},"
                "\"status\":{\"currentCPUUtilizationPercentage\":42}}",
                "cpu: 42%/50%");
    assert_cell(v1, "REFERENCE", "{\"spec\":{\"scaleTargetRef\":{\"kind\":\"ReplicaSet\","
                                 "\"name\":\"frontend\"}}}", "ReplicaSet/frontend");
}

/* ---- autoscaling/v1 <-> v2 -------------------------------------------------- */

#define V1_HPA                                                                                     \
    "{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\","                    \
    "\"metadata\":{\"name\":\"frontend-scaler\",\"namespace\":\"default\",\"labels\":{\"a\":\"b\"}},"  \
    "\"spec\":{" REF ",\"minReplicas\":3,\"maxReplicas\":10,\"targetCPUUtilizationPercentage\":50},"   \
    "\"status\":{\"currentReplicas\":4,\"desiredReplicas\":5,\"observedGeneration\":2,"             \
    "\"lastScaleTime\":\"2024-01-02T03:04:05Z\",\"currentCPUUtilizationPercentage\":61}}"

#define V2_HPA                                                                                     \
    "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","                    \
    "\"metadata\":{\"name\":\"frontend-scaler\",\"namespace\":\"default\",\"labels\":{\"a\":\"b\"}},"  \
    "\"spec\":{" REF ",\"minReplicas\":3,\"maxReplicas\":10,\"metrics\":[{\"type\":\"Resource\","   \
    "\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":\"Utilization\","                          \
    "\"averageUtilization\":50}}}]},"                                                                \
    "\"status\":{\"currentReplicas\":4,\"desiredReplicas\":5,\"observedGeneration\":2,"             \
    "\"lastScaleTime\":\"2024-01-02T03:04:05Z\",\"currentMetrics\":[{\"type\":\"Resource\","        \
    "\"resource\":{\"name\":\"cpu\",\"current\":{\"averageUtilization\":61}}}]}}"

/* ---- RBAC kinds and reviews ---------------------------------------------------- */

static void test_rbac_kinds(void **state)
{
    (void)state;
    const char *g = "rbac.authorization.k8s.io";
    assert_true(res(g, "v1", "roles")->namespaced);
    assert_false(res(g, "v1", "clusterroles")->namespaced);
    assert_true(res(g, "v1", "rolebindings")->namespaced);
    assert_false(res(g, "v1", "clusterrolebindings")->namespaced);
    assert_true(registry_verb_allowed(res(g, "v1", "roles"), "watch"));

    /* Reviews: cluster-scoped, create only, no status subresource. */
    static const char *const reviews[][2] = {
        { "authorization.k8s.io", "selfsubjectaccessreviews" },
        { "authorization.k8s.io", "selfsubjectrulesreviews" },
        { "authorization.k8s.io", "subjectaccessreviews" },
        { "authentication.k8s.io", "selfsubjectreviews" },
        { "authentication.k8s.io", "tokenreviews" },
    };
    for (size_t i = 0; i < sizeof reviews / sizeof reviews[0]; i++) {
        const kind_def_t *k = res(reviews[i][0], "v1", reviews[i][1]);
        assert_false(k->namespaced);
        assert_false(k->has_status);
        assert_true(registry_verb_allowed(k, "create"));
        assert_false(registry_verb_allowed(k, "get"));
        assert_false(registry_verb_allowed(k, "list"));
        assert_string_equal(registry_verbs(k)[0], "create");
        assert_null(registry_verbs(k)[1]);
    }

    /* kubectl create token: serviceaccounts/token takes a TokenRequest. */
    const kind_def_t *sa = res("", "v1", "serviceaccounts");
    const kind_subresource_t *tok = registry_find_subresource(sa, "token");
    assert_non_null(tok);
    assert_string_equal(tok->group, "authentication.k8s.io");
    assert_string_equal(tok->kind, "TokenRequest");
    assert_non_null(schema_lookup(tok->schema_name));
    assert_null(registry_find_subresource(sa, "status"));
    assert_null(registry_find_subresource(res("", "v1", "pods"), "token"));

    static const char *const role_headers[] = { "Name", "CREATED AT", NULL };
    assert_headers(res(g, "v1", "roles"), role_headers);
    assert_headers(res(g, "v1", "clusterroles"), role_headers);
    static const char *const binding_headers[] = { "Name", "ROLE", "Age", "USERS", "GROUPS",
                                                   "SERVICEACCOUNTS", NULL };
    assert_headers(res(g, "v1", "rolebindings"), binding_headers);
    assert_headers(res(g, "v1", "clusterrolebindings"), binding_headers);

    const char *rb = "{\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\","
                     "\"kind\":\"ClusterRole\",\"name\":\"view\"},\"subjects\":["
                     "{\"kind\":\"User\",\"name\":\"alice\"},"
                     "{\"kind\":\"Group\",\"name\":\"devs\"},"
                     "{\"kind\":\"User\",\"name\":\"bob\"},"
                     "{\"kind\":\"ServiceAccount\",\"name\":\"ci\",\"namespace\":\"build\"}]}";
    const kind_def_t *k = res(g, "v1", "rolebindings");
    assert_cell(k, "ROLE", rb, "ClusterRole/view");
    assert_cell(k, "USERS", rb, "alice, bob");
    assert_cell(k, "GROUPS", rb, "devs");
    assert_cell(k, "SERVICEACCOUNTS", rb, "build/ci");
    assert_cell(k, "SERVICEACCOUNTS", "{\"subjects\":[]}", "");
}

static void test_convert_v1_to_v2(void **state)
{
    (void)state;
    const kind_def_t *v1 = res("autoscaling", "v1", "horizontalpodautoscalers");
    const kind_def_t *v2 = res("autoscaling", "v2", "horizontalpodautoscalers");
    json_t *in = load(V1_HPA);
    json_t *copy = json_deep_copy(in);
    json_t *out = registry_convert_to_storage(v1, in);
    assert_json(out, V2_HPA);
    assert_true(json_equal(in, copy)); /* the argument is not modified */
    /* The stored form is a valid v2 object. */
    validation_result_t r;
    assert_int_equal(registry_validate(v2, out, VALIDATE_STRICT, &r), 0);
    validation_result_free(&r);
    json_decref(out);

    /* No target, no status: no metrics. */
    json_t *bare = load("{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\","
                        "\"spec\":{\"maxReplicas\":2}}");
    out = registry_convert_to_storage(v1, bare);
    assert_json(out, "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","
                     "\"spec\":{\"maxReplicas\":2}}");
    json_decref(out);
    json_decref(bare);

    /* Already v2, or a kind without versions: returned as is. */
    json_t *already = load(V2_HPA);
    out = registry_convert_to_storage(v1, already);
    assert_ptr_equal(out, already);
    json_decref(out);
    json_decref(already);
    out = registry_convert_to_storage(v2, in);
    assert_ptr_equal(out, in);
    json_decref(out);
    json_decref(in);
    json_decref(copy);
}

static void test_convert_v2_to_v1(void **state)
{
    (void)state;
    const kind_def_t *v1 = res("autoscaling", "v1", "horizontalpodautoscalers");
    json_t *in = load(V2_HPA);
    json_t *out = registry_convert_from_storage(v1, in);
    assert_json(out, V1_HPA);
    json_decref(out);
    json_decref(in);

    /* The v1 target is the first cpu Utilization metric; what v1 cannot
     * express (other metrics, behavior, conditions) is not shown. */
    in = load("{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","
              "\"spec\":{\"maxReplicas\":4,\"behavior\":{\"scaleDown\":{\"stabilizationWindowSeconds\":60}},"
              "\"metrics\":[{\"type\":\"Resource\",\"resource\":{\"name\":\"memory\",\"target\":"
              "{\"type\":\"Utilization\",\"averageUtilization\":10}}},"
              "{\"type\":\"Resource\",\"resource\":{\"name\":\"cpu\",\"target\":"
              "{\"type\":\"AverageValue\",\"averageValue\":\"500m\"}}},"
              "{\"type\":\"Resource\",\"resource\":{\"name\":\"cpu\",\"target\":"
              "{\"type\":\"Utilization\",\"averageUtilization\":70}}}]},"
              "\"status\":{\"desiredReplicas\":1,\"conditions\":[{\"type\":\"AbleToScale\","
              "\"status\":\"True\"}]}}");
    out = registry_convert_from_storage(v1, in);
    assert_json(out, "{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"HorizontalPodAutoscaler\","
                     "\"spec\":{\"maxReplicas\":4,\"targetCPUUtilizationPercentage\":70},"
                     "\"status\":{\"desiredReplicas\":1}}");
    json_decref(out);

    /* Lists convert every item and name the request's version. */
    json_t *list = json_pack("{s:s, s:s, s:{s:s}, s:[O, O]}", "kind", "HorizontalPodAutoscalerList",
                             "apiVersion", "autoscaling/v2", "metadata", "resourceVersion", "7",
                             "items", in, in);
    out = registry_convert_from_storage(v1, list);
    assert_string_equal(json_string_value(json_object_get(out, "apiVersion")), "autoscaling/v1");
    assert_int_equal(json_array_size(json_object_get(out, "items")), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *it = json_array_get(json_object_get(out, "items"), i);
        assert_string_equal(json_string_value(json_object_get(it, "apiVersion")), "autoscaling/v1");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(it, "spec"),
                                                            "targetCPUUtilizationPercentage")),
                         70);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(list, "items"), 0),
                                                          "apiVersion")),
                        "autoscaling/v2");
    json_decref(out);
    json_decref(list);
    json_decref(in);

    /* Other objects pass through: a Status, a Scale. */
    json_t *status = load("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"code\":404}");
    out = registry_convert_from_storage(v1, status);
    assert_ptr_equal(out, status);
    json_decref(out);
    json_decref(status);
}

static void test_convert_round_trip(void **state)
{
    (void)state;
    const kind_def_t *v1 = res("autoscaling", "v1", "horizontalpodautoscalers");
    json_t *a = load(V1_HPA);
    json_t *stored = registry_convert_to_storage(v1, a);
    json_t *back = registry_convert_from_storage(v1, stored);
    assert_true(json_equal(a, back));
    json_decref(back);
    json_decref(stored);
    json_decref(a);

    json_t *b = load(V2_HPA);
    json_t *shown = registry_convert_from_storage(v1, b);
    json_t *again = registry_convert_to_storage(v1, shown);
    assert_true(json_equal(b, again));
    json_decref(again);
    json_decref(shown);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_defaults_limitrange),
        cmocka_unit_test(test_defaults_other),
        cmocka_unit_test(test_validate_manifests),
        cmocka_unit_test(test_validate_limitrange),
        cmocka_unit_test(test_validate_quota_pdb_sc),
        cmocka_unit_test(test_validate_hpa),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_rbac_kinds),
        cmocka_unit_test(test_convert_v1_to_v2),
        cmocka_unit_test(test_convert_v2_to_v1),
        cmocka_unit_test(test_convert_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
