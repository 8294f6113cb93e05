/* tests/unit/test_schema.c - the built-in schema set, the kind registry and defaults.
 *
 * Loads the embedded schemas, checks the facts other modules rely on
 * (field types, patch strategies and merge keys, enums), that every
 * built-in kind resolves by resource and by kind, and that defaults
 * match what the Kubernetes API server fills in. */
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

#include "object/registry.h"
#include "object/schema.h"

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

static const schema_field_t *field_of(const char *type, const char *field)
{
    const schema_type_t *t = schema_lookup(type);
    assert_non_null(t);
    const schema_field_t *f = schema_field(t, field);
    assert_non_null(f);
    return f;
}

static void test_types_and_fields(void **state)
{
    (void)state;
    assert_true(schema_count() > 200);
    const schema_type_t *pod = schema_lookup("io.k8s.api.core.v1.Pod");
    assert_non_null(pod);
    assert_int_equal(pod->kind, SCHEMA_OBJECT);
    assert_string_equal(pod->name, "io.k8s.api.core.v1.Pod");
    assert_null(schema_lookup("io.k8s.api.core.v1.NoSuchThing"));
    assert_null(schema_lookup(NULL));

    const schema_field_t *meta = field_of("io.k8s.api.core.v1.Pod", "metadata");
    assert_ptr_equal(meta->type, schema_lookup("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    assert_null(schema_field(pod, "nope"));
    /* TypeMeta is inlined. */
    assert_non_null(schema_field(pod, "apiVersion"));
    assert_non_null(schema_field(pod, "kind"));

    const schema_field_t *replicas = field_of("io.k8s.api.apps.v1.DeploymentSpec", "replicas");
    assert_int_equal(replicas->type->kind, SCHEMA_INTEGER);
    assert_string_equal(replicas->type->format, "int32");
    assert_false(replicas->required);

    const schema_field_t *labels = field_of("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "labels");
    assert_int_equal(labels->type->kind, SCHEMA_MAP);
    assert_int_equal(labels->type->elem->kind, SCHEMA_STRING);

    const schema_field_t *ts = field_of("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                                        "creationTimestamp");
    assert_int_equal(ts->type->kind, SCHEMA_TIME);
    assert_string_equal(ts->type->name, "io.k8s.apimachinery.pkg.apis.meta.v1.Time");

    const schema_field_t *limits = field_of("io.k8s.api.core.v1.ResourceRequirements", "limits");
    assert_int_equal(limits->type->kind, SCHEMA_MAP);
    assert_int_equal(limits->type->elem->kind, SCHEMA_QUANTITY);

    const schema_field_t *tp = field_of("io.k8s.api.core.v1.ServicePort", "targetPort");
    assert_int_equal(tp->type->kind, SCHEMA_INT_OR_STRING);
    assert_true(field_of("io.k8s.api.core.v1.ServicePort", "port")->required);

    const schema_field_t *data = field_of("io.k8s.api.core.v1.Secret", "data");
    assert_int_equal(data->type->elem->kind, SCHEMA_BYTES);

    const schema_field_t *crdata = field_of("io.k8s.api.apps.v1.ControllerRevision", "data");
    assert_int_equal(crdata->type->kind, SCHEMA_ANY);

    const schema_field_t *name = field_of("io.k8s.api.core.v1.Container", "name");
    assert_true(name->required);
    assert_false(field_of("io.k8s.api.core.v1.Container", "image")->required);
    assert_true(field_of("io.k8s.api.core.v1.PodSpec", "containers")->required);

    /* The meta types the API server writes itself. */
    const char *meta_types[] = { "Status", "StatusDetails", "StatusCause", "ListMeta",
                                 "DeleteOptions", "Preconditions", "WatchEvent", "APIResource",
                                 "APIResourceList", "LabelSelector" };
    for (size_t i = 0; i < sizeof(meta_types) / sizeof(meta_types[0]); i++) {
        char n[128];
        snprintf(n, sizeof(n), "io.k8s.apimachinery.pkg.apis.meta.v1.%s", meta_types[i]);
        assert_non_null(schema_lookup(n));
    }
    assert_non_null(schema_lookup("io.k8s.api.autoscaling.v1.Scale"));
    assert_non_null(schema_lookup("io.k8s.api.core.v1.PodList"));
    assert_non_null(schema_lookup("io.k8s.apimachinery.pkg.api.resource.Quantity"));
    assert_non_null(schema_lookup("io.k8s.apimachinery.pkg.util.intstr.IntOrString"));

    /* schema_at walks every named type in name order. */
    for (size_t i = 1; i < schema_count(); i++)
        assert_true(strcmp(schema_at(i - 1)->name, schema_at(i)->name) < 0);
    assert_null(schema_at(schema_count()));
}

static void test_patch_metadata(void **state)
{
    (void)state;
    const schema_field_t *c = field_of("io.k8s.api.core.v1.PodSpec", "containers");
    assert_string_equal(c->patch_strategy, "merge");
    assert_string_equal(c->patch_merge_key, "name");
    assert_string_equal(c->list_type, "map");
    assert_string_equal(c->list_map_keys[0], "name");
    assert_null(c->list_map_keys[1]);
    assert_int_equal(c->type->kind, SCHEMA_ARRAY);
    assert_ptr_equal(c->type->elem, schema_lookup("io.k8s.api.core.v1.Container"));

    const schema_field_t *ports = field_of("io.k8s.api.core.v1.Container", "ports");
    assert_string_equal(ports->patch_strategy, "merge");
    assert_string_equal(ports->patch_merge_key, "containerPort");
    assert_string_equal(ports->list_map_keys[0], "containerPort");
    assert_string_equal(ports->list_map_keys[1], "protocol");

    const schema_field_t *vols = field_of("io.k8s.api.core.v1.PodSpec", "volumes");
    assert_string_equal(vols->patch_strategy, "merge,retainKeys");
    assert_string_equal(vols->patch_merge_key, "name");

    const schema_field_t *fin = field_of("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers");
    assert_string_equal(fin->patch_strategy, "merge");
    assert_null(fin->patch_merge_key);
    assert_string_equal(fin->list_type, "set");

    const schema_field_t *args = field_of("io.k8s.api.core.v1.Container", "args");
    assert_null(args->patch_strategy);
    assert_string_equal(args->list_type, "atomic");

    const schema_field_t *strategy = field_of("io.k8s.api.apps.v1.DeploymentSpec", "strategy");
    assert_string_equal(strategy->patch_strategy, "retainKeys");
}

static void test_enums(void **state)
{
    (void)state;
    const schema_field_t *rp = field_of("io.k8s.api.core.v1.PodSpec", "restartPolicy");
    assert_int_equal(rp->type->kind, SCHEMA_STRING);
    assert_non_null(rp->type->enum_values);
    assert_string_equal(rp->type->enum_values[0], "Always");
    assert_string_equal(rp->type->enum_values[1], "Never");
    assert_string_equal(rp->type->enum_values[2], "OnFailure");
    assert_null(rp->type->enum_values[3]);
    assert_null(rp->type->name);

    const schema_field_t *am = field_of("io.k8s.api.core.v1.PersistentVolumeSpec", "accessModes");
    assert_int_equal(am->type->kind, SCHEMA_ARRAY);
    assert_non_null(am->type->elem->enum_values);

    const schema_field_t *st = field_of("io.k8s.api.core.v1.ServiceSpec", "type");
    assert_non_null(st->type->enum_values);
    const schema_field_t *name = field_of("io.k8s.api.core.v1.Container", "name");
    assert_null(name->type->enum_values);
}

static void test_every_kind_resolves(void **state)
{
    (void)state;
    assert_int_equal(registry_count(), 38); /* 37 built in + CustomResourceDefinition */
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        assert_non_null(k->schema);
        assert_string_equal(k->schema->name, k->schema_name);
        assert_ptr_equal(registry_find_resource(k->group, k->version, k->resource), k);
        assert_ptr_equal(registry_find_kind(k->group, k->version, k->kind), k);
        /* Without a version: the preferred one, the version the store holds. */
        assert_ptr_equal(registry_find_resource(k->group, NULL, k->resource),
                         registry_storage_kind(k));
        assert_ptr_equal(registry_find_kind(k->group, NULL, k->kind), registry_storage_kind(k));
        char list[128];
        snprintf(list, sizeof(list), "%sList", k->kind);
        assert_string_equal(k->list_kind, list);
        /* has_status iff the type has a status field, except for the
         * create-only reviews, whose status is the answer. */
        if (k->verbs)
            assert_false(k->has_status);
        else
            assert_int_equal(k->has_status, schema_field(k->schema, "status") != NULL);
        assert_non_null(k->columns);
    }
    assert_null(registry_find_resource("", "v2", "pods"));
    assert_null(registry_find_resource("apps", "v1", "pods"));
    assert_null(registry_find_resource("", "v1", "deployments"));
    assert_null(registry_find_kind("", "v1", "Deployment"));

    const kind_def_t *d = registry_find_resource("apps", "v1", "deployments");
    assert_non_null(d);
    assert_string_equal(d->kind, "Deployment");
    assert_string_equal(registry_api_version(d), "apps/v1");
    assert_true(d->has_scale);
    assert_string_equal(d->scale_selector_path, "spec.selector");
    assert_string_equal(d->short_names[0], "deploy");
    assert_string_equal(d->categories[0], "all");

    const kind_def_t *pod = registry_find_kind("", "v1", "Pod");
    assert_string_equal(registry_api_version(pod), "v1");
    assert_true(pod->namespaced);
    assert_false(pod->has_scale);
    const kind_def_t *ns = registry_find_resource("", "v1", "namespaces");
    assert_false(ns->namespaced);
    assert_null(ns->categories);
    assert_ptr_equal(registry_find_resource("", "v1", "nodes"), registry_find_kind("", "v1", "Node"));
    assert_false(registry_find_kind("", "v1", "Node")->namespaced);
    assert_ptr_equal(registry_find_kind("autoscaling", "v2", "HorizontalPodAutoscaler"),
                     registry_find_name("hpa"));
    assert_ptr_equal(registry_find_name("deploy"), d);
    assert_ptr_equal(registry_find_name("deployments.apps"), d);
    assert_ptr_equal(registry_find_name("pod"), pod);
    assert_null(registry_find_name("deployments.batch"));
    assert_false(registry_find_kind("", "v1", "ConfigMap")->has_status);
    assert_true(registry_find_kind("apps", "v1", "StatefulSet")->has_scale);
    assert_false(registry_find_kind("apps", "v1", "DaemonSet")->has_scale);
}

static void test_registry_add(void **state)
{
    (void)state;
    kind_def_t crd = {
        .group = "example.com", .version = "v1", .kind = "Widget", .list_kind = "WidgetList",
        .resource = "widgets", .singular = "widget", .namespaced = 1,
        .schema_name = "io.k8s.api.core.v1.ConfigMap",
    };
    const kind_def_t *pod = registry_find_kind("", "v1", "Pod");
    size_t n = registry_count();
    assert_int_equal(registry_add(&crd), 0);
    assert_int_equal(registry_count(), n + 1);
    const kind_def_t *w = registry_find_resource("example.com", "v1", "widgets");
    assert_non_null(w);
    assert_non_null(w->schema);
    assert_string_equal(registry_api_version(w), "example.com/v1");
    /* Earlier pointers stay valid. */
    assert_ptr_equal(registry_find_kind("", "v1", "Pod"), pod);
    assert_int_equal(registry_add(&crd), -3 /* SKIFF_EEXIST */);

    crd.version = "v2";
    assert_int_equal(registry_add(&crd), 0);
    /* version NULL prefers the first registered version */
    assert_ptr_equal(registry_find_resource("example.com", NULL, "widgets"), w);
    assert_string_equal(registry_find_resource("example.com", "v2", "widgets")->version, "v2");
    assert_string_equal(registry_find_kind("example.com", "v2", "Widget")->version, "v2");
}

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("bad test JSON: %s", err.text);
    return j;
}

static void assert_json_str(const json_t *root, const char *path, const char *want)
{
    const json_t *v = root;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        if (json_is_array(v))
            v = json_array_get(v, (size_t)atoi(tok));
        else
            v = json_object_get(v, tok);
        if (!v)
            fail_msg("%s: missing", path);
    }
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", path, json_string_value(v), want);
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        int same = strcmp(s, want) == 0;
        if (!same)
            fail_msg("%s: got %s, want %s", path, s, want);
        free(s);
    }
}

static void test_defaults_deployment(void **state)
{
    (void)state;
    json_t *d = load("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                     "\"metadata\":{\"name\":\"web\"},\"spec\":{\"selector\":{\"matchLabels\":"
                     "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
                     "\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"nginx\","
                     "\"ports\":[{\"containerPort\":80}]},{\"name\":\"side\",\"image\":"
                     "\"busybox:1.36\",\"imagePullPolicy\":\"Never\"}]}}}}");
    registry_set_defaults(registry_find_kind("apps", "v1", "Deployment"), d);
    assert_json_str(d, "spec.replicas", "1");
    assert_json_str(d, "spec.strategy.type", "RollingUpdate");
    assert_json_str(d, "spec.strategy.rollingUpdate.maxUnavailable", "25%");
    assert_json_str(d, "spec.strategy.rollingUpdate.maxSurge", "25%");
    assert_json_str(d, "spec.revisionHistoryLimit", "10");
    assert_json_str(d, "spec.progressDeadlineSeconds", "600");
    assert_json_str(d, "spec.template.spec.restartPolicy", "Always");
    assert_json_str(d, "spec.template.spec.dnsPolicy", "ClusterFirst");
    assert_json_str(d, "spec.template.spec.schedulerName", "default-scheduler");
    assert_json_str(d, "spec.template.spec.terminationGracePeriodSeconds", "30");
    assert_json_str(d, "spec.template.spec.securityContext", "{}");
    assert_json_str(d, "spec.template.spec.enableServiceLinks", "true");
    assert_json_str(d, "spec.template.spec.containers.0.imagePullPolicy", "Always");
    assert_json_str(d, "spec.template.spec.containers.0.terminationMessagePath", "/dev/termination-log");
    assert_json_str(d, "spec.template.spec.containers.0.terminationMessagePolicy", "File");
    assert_json_str(d, "spec.template.spec.containers.0.resources", "{}");
    assert_json_str(d, "spec.template.spec.containers.0.ports.0.protocol", "TCP");
    /* A value the user set is kept. */
    assert_json_str(d, "spec.template.spec.containers.1.imagePullPolicy", "Never");

    /* Idempotent: defaulting twice changes nothing. */
    json_t *again = json_deep_copy(d);
    registry_set_defaults(registry_find_kind("apps", "v1", "Deployment"), again);
    assert_true(json_equal(d, again));
    json_decref(again);

    /* Recreate strategy gets no rollingUpdate; explicit replicas kept. */
    json_t *r = load("{\"spec\":{\"replicas\":0,\"strategy\":{\"type\":\"Recreate\"},"
                     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x:2\"}]}}}}");
    registry_set_defaults(registry_find_kind("apps", "v1", "Deployment"), r);
    assert_json_str(r, "spec.replicas", "0");
    assert_null(json_object_get(json_object_get(json_object_get(r, "spec"), "strategy"), "rollingUpdate"));
    assert_json_str(r, "spec.template.spec.containers.0.imagePullPolicy", "IfNotPresent");
    json_decref(r);
    json_decref(d);
}

static void test_defaults_other_kinds(void **state)
{
    (void)state;
    json_t *svc = load("{\"spec\":{\"ports\":[{\"port\":80},{\"port\":53,\"protocol\":\"UDP\","
                       "\"targetPort\":\"dns\"}]}}");
    registry_set_defaults(registry_find_kind("", "v1", "Service"), svc);
    assert_json_str(svc, "spec.type", "ClusterIP");
    assert_json_str(svc, "spec.sessionAffinity", "None");
    assert_json_str(svc, "spec.internalTrafficPolicy", "Cluster");
    assert_json_str(svc, "spec.ports.0.protocol", "TCP");
    assert_json_str(svc, "spec.ports.0.targetPort", "80");
    assert_json_str(svc, "spec.ports.1.protocol", "UDP");
    assert_json_str(svc, "spec.ports.1.targetPort", "dns");
    json_decref(svc);

    json_t *job = load("{\"spec\":{\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
                       "\"containers\":[{\"name\":\"a\",\"image\":\"perl:5.34\"}]}}}}");
    registry_set_defaults(registry_find_kind("batch", "v1", "Job"), job);
    assert_json_str(job, "spec.completions", "1");
    assert_json_str(job, "spec.parallelism", "1");
    assert_json_str(job, "spec.backoffLimit", "6");
    assert_json_str(job, "spec.completionMode", "NonIndexed");
    assert_json_str(job, "spec.suspend", "false");
    assert_json_str(job, "spec.template.spec.restartPolicy", "Never");
    assert_json_str(job, "spec.template.spec.containers.0.imagePullPolicy", "IfNotPresent");
    json_decref(job);

    json_t *wq = load("{\"spec\":{\"parallelism\":3,\"template\":{\"spec\":{\"containers\":[]}}}}");
    registry_set_defaults(registry_find_kind("batch", "v1", "Job"), wq);
    assert_null(json_object_get(json_object_get(wq, "spec"), "completions"));
    assert_json_str(wq, "spec.parallelism", "3");
    /* Job templates default to Always too (validation then refuses it). */
    assert_json_str(wq, "spec.template.spec.restartPolicy", "Always");
    json_decref(wq);

    json_t *cj = load("{\"spec\":{\"schedule\":\"* * * * *\",\"jobTemplate\":{\"spec\":"
                      "{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]}}}}}}");
    registry_set_defaults(registry_find_kind("batch", "v1", "CronJob"), cj);
    assert_json_str(cj, "spec.concurrencyPolicy", "Allow");
    assert_json_str(cj, "spec.suspend", "false");
    assert_json_str(cj, "spec.successfulJobsHistoryLimit", "3");
    assert_json_str(cj, "spec.failedJobsHistoryLimit", "1");
    assert_json_str(cj, "spec.jobTemplate.spec.template.spec.containers.0.imagePullPolicy", "Always");
    json_decref(cj);

    json_t *sts = load("{\"spec\":{\"template\":{\"spec\":{\"containers\":[]}}}}");
    registry_set_defaults(registry_find_kind("apps", "v1", "StatefulSet"), sts);
    assert_json_str(sts, "spec.replicas", "1");
    assert_json_str(sts, "spec.podManagementPolicy", "OrderedReady");
    assert_json_str(sts, "spec.updateStrategy.type", "RollingUpdate");
    assert_json_str(sts, "spec.updateStrategy.rollingUpdate.partition", "0");
    assert_json_str(sts, "spec.revisionHistoryLimit", "10");
    assert_json_str(sts, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", "Retain");
    assert_json_str(sts, "spec.persistentVolumeClaimRetentionPolicy.whenScaled", "Retain");
    json_decref(sts);

    json_t *ds = load("{\"spec\":{\"template\":{\"spec\":{\"containers\":[]}}}}");
    registry_set_defaults(registry_find_kind("apps", "v1", "DaemonSet"), ds);
    assert_json_str(ds, "spec.updateStrategy.type", "RollingUpdate");
    assert_json_str(ds, "spec.updateStrategy.rollingUpdate.maxUnavailable", "1");
    assert_json_str(ds, "spec.updateStrategy.rollingUpdate.maxSurge", "0");
    assert_json_str(ds, "spec.revisionHistoryLimit", "10");
    json_decref(ds);

    json_t *sec = load("{\"metadata\":{\"name\":\"s\"}}");
    registry_set_defaults(registry_find_kind("", "v1", "Secret"), sec);
    assert_json_str(sec, "type", "Opaque");
    json_decref(sec);

    json_t *ns = load("{\"metadata\":{\"name\":\"team\"}}");
    registry_set_defaults(registry_find_kind("", "v1", "Namespace"), ns);
    assert_json_str(ns, "spec.finalizers", "[\"kubernetes\"]");
    json_decref(ns);

    json_t *pv = load("{\"spec\":{}}");
    registry_set_defaults(registry_find_kind("", "v1", "PersistentVolume"), pv);
    assert_json_str(pv, "spec.persistentVolumeReclaimPolicy", "Retain");
    assert_json_str(pv, "spec.volumeMode", "Filesystem");
    json_decref(pv);

    json_t *pvc = load("{\"spec\":{}}");
    registry_set_defaults(registry_find_kind("", "v1", "PersistentVolumeClaim"), pvc);
    assert_json_str(pvc, "spec.volumeMode", "Filesystem");
    json_decref(pvc);

    json_t *hpa = load("{\"spec\":{\"maxReplicas\":5}}");
    registry_set_defaults(registry_find_kind("autoscaling", "v2", "HorizontalPodAutoscaler"), hpa);
    assert_json_str(hpa, "spec.minReplicas", "1");
    json_decref(hpa);

    json_t *rs = load("{\"spec\":{}}");
    registry_set_defaults(registry_find_kind("apps", "v1", "ReplicaSet"), rs);
    assert_json_str(rs, "spec.replicas", "1");
    json_decref(rs);

    /* Pod: image tags decide the pull policy. */
    json_t *pod = load("{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"reg:5000/app\"},"
                       "{\"name\":\"b\",\"image\":\"reg:5000/app:v1\"},{\"name\":\"c\",\"image\":"
                       "\"app@sha256:abcd\"},{\"name\":\"d\",\"image\":\"app:latest\"}]}}");
    registry_set_defaults(registry_find_kind("", "v1", "Pod"), pod);
    assert_json_str(pod, "spec.containers.0.imagePullPolicy", "Always");
    assert_json_str(pod, "spec.containers.1.imagePullPolicy", "IfNotPresent");
    assert_json_str(pod, "spec.containers.2.imagePullPolicy", "IfNotPresent");
    assert_json_str(pod, "spec.containers.3.imagePullPolicy", "Always");
    assert_json_str(pod, "spec.restartPolicy", "Always");
    json_decref(pod);

    /* Kinds without defaults and non-objects are left alone. */
    json_t *cm = load("{\"data\":{}}");
    registry_set_defaults(registry_find_kind("", "v1", "ConfigMap"), cm);
    assert_int_equal(json_object_size(cm), 1);
    json_decref(cm);
    json_t *arr = json_array();
    registry_set_defaults(registry_find_kind("", "v1", "Pod"), arr);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
}

static const kind_column_t *column(const kind_def_t *k, const char *name)
{
    for (const kind_column_t *c = k->columns; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    fail_msg("no column %s for %s", name, k->kind);
    return NULL;
}

static void assert_cell(const kind_def_t *k, const char *col, const json_t *obj, const char *want)
{
    const kind_column_t *c = column(k, col);
    assert_non_null(c->compute);
    json_t *v = c->compute(obj);
    assert_non_null(v);
    char *s = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
    if (strcmp(s, want) != 0)
        fail_msg("%s %s: got \"%s\", want \"%s\"", k->kind, col, s, want);
    free(s);
    json_decref(v);
}

static void test_printer_columns(void **state)
{
    (void)state;
    const kind_def_t *pod = registry_find_kind("", "v1", "Pod");
    const char *names[] = { "READY", "STATUS", "RESTARTS", "IP", "NODE", "NOMINATED NODE",
                            "READINESS GATES" };
    size_t i = 0;
    for (const kind_column_t *c = pod->columns; c->name; c++, i++) {
        assert_true(i < 7);
        assert_string_equal(c->name, names[i]);
        assert_int_equal(c->priority, i >= 3);
    }
    assert_int_equal(i, 7);

    json_t *p = load("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeName\":\"n1\",\"containers\":"
                     "[{\"name\":\"a\"},{\"name\":\"b\"}]},\"status\":{\"phase\":\"Running\","
                     "\"podIP\":\"10.0.0.5\",\"containerStatuses\":[{\"name\":\"a\",\"ready\":true,"
                     "\"restartCount\":2},{\"name\":\"b\",\"ready\":false,\"restartCount\":1,"
                     "\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}}]}}");
    assert_cell(pod, "READY", p, "1/2");
    assert_cell(pod, "STATUS", p, "CrashLoopBackOff");
    assert_cell(pod, "RESTARTS", p, "3");
    json_t *last = json_pack("{s:{s:s}}", "terminated", "finishedAt", "2020-01-01T00:00:00Z");
    json_object_set_new(json_array_get(json_object_get(json_object_get(p, "status"),
                                                       "containerStatuses"), 1),
                        "lastState", last);
    const kind_column_t *rc = column(pod, "RESTARTS");
    json_t *cell = rc->compute(p);
    /* more than two years ago: kubectl prints whole years and days */
    assert_non_null(last);
    assert_non_null(strstr(json_string_value(cell), "3 ("));
    assert_non_null(strstr(json_string_value(cell), "y"));
    assert_non_null(strstr(json_string_value(cell), " ago)"));
    json_decref(cell);
    assert_cell(pod, "IP", p, "10.0.0.5");
    assert_cell(pod, "NODE", p, "n1");
    assert_cell(pod, "NOMINATED NODE", p, "<none>");
    assert_cell(pod, "READINESS GATES", p, "<none>");
    json_decref(p);

    const kind_def_t *d = registry_find_kind("apps", "v1", "Deployment");
    json_t *dep = load("{\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"web\"},"
                       "\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":"
                       "[\"a\",\"b\"]}]},\"template\":{\"spec\":{\"containers\":[{\"name\":\"web\","
                       "\"image\":\"nginx:1\"},{\"name\":\"log\",\"image\":\"busybox\"}]}}},"
                       "\"status\":{\"readyReplicas\":2,\"updatedReplicas\":3,\"availableReplicas\":2}}");
    assert_cell(d, "READY", dep, "2/3");
    assert_cell(d, "UP-TO-DATE", dep, "3");
    assert_cell(d, "AVAILABLE", dep, "2");
    assert_cell(d, "CONTAINERS", dep, "web,log");
    assert_cell(d, "IMAGES", dep, "nginx:1,busybox");
    assert_cell(d, "SELECTOR", dep, "app=web,tier in (a,b)");
    json_decref(dep);

    const kind_def_t *svc = registry_find_kind("", "v1", "Service");
    json_t *s = load("{\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"10.96.0.10\",\"ports\":"
                     "[{\"port\":80,\"nodePort\":30080,\"protocol\":\"TCP\"},{\"port\":53,"
                     "\"protocol\":\"UDP\"}],\"selector\":{\"app\":\"web\"}}}");
    assert_cell(svc, "PORT(S)", s, "80:30080/TCP,53/UDP");
    assert_cell(svc, "CLUSTER-IP", s, "10.96.0.10");
    assert_cell(svc, "EXTERNAL-IP", s, "<none>");
    assert_cell(svc, "SELECTOR", s, "app=web");
    assert_string_equal(column(svc, "TYPE")->json_path, ".spec.type");
    json_decref(s);

    const kind_def_t *job = registry_find_kind("batch", "v1", "Job");
    json_t *j = load("{\"spec\":{\"completions\":2},\"status\":{\"succeeded\":2,"
                     "\"startTime\":\"2024-01-01T00:00:00Z\",\"completionTime\":"
                     "\"2024-01-01T00:01:05Z\",\"conditions\":[{\"type\":\"Complete\","
                     "\"status\":\"True\"}]}}");
    assert_cell(job, "STATUS", j, "Complete");
    assert_cell(job, "COMPLETIONS", j, "2/2");
    assert_cell(job, "DURATION", j, "65s");
    json_decref(j);

    const kind_def_t *node = registry_find_kind("", "v1", "Node");
    json_t *n = load("{\"metadata\":{\"labels\":{\"node-role.kubernetes.io/control-plane\":\"\"}},"
                     "\"spec\":{\"unschedulable\":true},\"status\":{\"conditions\":[{\"type\":"
                     "\"Ready\",\"status\":\"True\"}],\"addresses\":[{\"type\":\"InternalIP\","
                     "\"address\":\"192.168.1.2\"}]}}");
    assert_cell(node, "STATUS", n, "Ready,SchedulingDisabled");
    assert_cell(node, "ROLES", n, "control-plane");
    assert_cell(node, "INTERNAL-IP", n, "192.168.1.2");
    assert_cell(node, "EXTERNAL-IP", n, "<none>");
    json_decref(n);

    const kind_def_t *cm = registry_find_kind("", "v1", "ConfigMap");
    json_t *c = load("{\"data\":{\"a\":\"1\",\"b\":\"2\"},\"binaryData\":{\"c\":\"AA==\"}}");
    assert_cell(cm, "DATA", c, "3");
    json_decref(c);

    const kind_def_t *pv = registry_find_kind("", "v1", "PersistentVolume");
    json_t *v = load("{\"spec\":{\"accessModes\":[\"ReadWriteMany\",\"ReadWriteOnce\"],"
                     "\"claimRef\":{\"namespace\":\"default\",\"name\":\"data\"}}}");
    assert_cell(pv, "ACCESS MODES", v, "RWO,RWX");
    assert_cell(pv, "CLAIM", v, "default/data");
    json_decref(v);

    const kind_def_t *ev = registry_find_kind("", "v1", "Event");
    json_t *e = load("{\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"web-1\"},"
                     "\"source\":{\"component\":\"kubelet\",\"host\":\"n1\"}}");
    assert_cell(ev, "OBJECT", e, "pod/web-1");
    assert_cell(ev, "SOURCE", e, "kubelet, n1");
    json_decref(e);

    /* Every computed column copes with an empty object. */
    json_t *empty = json_object();
    for (size_t k = 0; k < registry_count(); k++)
        for (const kind_column_t *col = registry_at(k)->columns; col && col->name; col++) {
            assert_true(col->json_path || col->compute);
            if (col->compute) {
                json_t *cell = col->compute(empty);
                assert_non_null(cell);
                json_decref(cell);
            }
        }
    json_decref(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_and_fields),
        cmocka_unit_test(test_patch_metadata),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_every_kind_resolves),
        cmocka_unit_test(test_registry_add),
        cmocka_unit_test(test_defaults_deployment),
        cmocka_unit_test(test_defaults_other_kinds),
        cmocka_unit_test(test_printer_columns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
