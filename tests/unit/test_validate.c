/* tests/unit/test_validate.c - registry_validate: schema checks and the semantic rules.
 *
 * Each rule is checked for the exact field path, reason and message a
 * client would see; real manifests (before and after defaulting) must
 * pass in strict mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("bad test JSON (%s): %s", err.text, text);
    return j;
}

static const kind_def_t *kind(const char *group, const char *k)
{
    /* The preferred version: autoscaling serves v2 before v1. */
    const kind_def_t *d = registry_find_kind(group, NULL, k);
    assert_non_null(d);
    return d;
}

static void dump(const validation_result_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        print_message("#   %s [%s] %s\n", r->errors[i].field, r->errors[i].reason,
                      r->errors[i].message);
}

/* Validate text; return the number of errors and keep them in *r. */
static size_t check(const char *group, const char *k, const char *text, int mode,
                    validation_result_t *r)
{
    json_t *o = load(text);
    size_t n = registry_validate(kind(group, k), o, mode, r);
    json_decref(o);
    assert_int_equal(n, r->count);
    return n;
}

static void expect_clean(const char *group, const char *k, const char *text)
{
    validation_result_t r;
    json_t *o = load(text);
    size_t n = registry_validate(kind(group, k), o, VALIDATE_STRICT, &r);
    if (n) {
        dump(&r);
        fail_msg("%s: %zu unexpected errors", k, n);
    }
    validation_result_free(&r);
    /* Defaulted objects are still valid. */
    registry_set_defaults(kind(group, k), o);
    n = registry_validate(kind(group, k), o, VALIDATE_STRICT, &r);
    if (n) {
        dump(&r);
        fail_msg("%s after defaults: %zu unexpected errors", k, n);
    }
    validation_result_free(&r);
    json_decref(o);
}

/* Exactly one error, at field with reason, whose message contains msg. */
static void expect_one(const char *group, const char *k, const char *text, int mode,
                       const char *field, const char *reason, const char *msg)
{
    validation_result_t r;
    size_t n = check(group, k, text, mode, &r);
    if (n != 1 || strcmp(r.errors[0].field, field) != 0 || strcmp(r.errors[0].reason, reason) != 0 ||
        (msg && !strstr(r.errors[0].message, msg))) {
        dump(&r);
        validation_result_free(&r);
        fail_msg("want one error %s [%s] \"%s\", got %zu", field, reason, msg ? msg : "", n);
    }
    validation_result_free(&r);
}

#define POD_SPEC(containers) "{\"containers\":" containers "}"
#define DEPLOYMENT(labels, spec_extra, containers)                                               \
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},"       \
    "\"spec\":{" spec_extra "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{"  \
    "\"metadata\":{\"labels\":" labels "},\"spec\":" POD_SPEC(containers) "}}}"
#define NGINX "[{\"name\":\"nginx\",\"image\":\"nginx:1.25\",\"ports\":[{\"containerPort\":80}]}]"

static void test_real_manifests_pass(void **state)
{
    (void)state;
    expect_clean("apps", "Deployment", DEPLOYMENT("{\"app\":\"web\",\"tier\":\"front\"}", "\"replicas\":3,", NGINX));
    expect_clean("", "Pod",
                 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"busy\","
                 "\"namespace\":\"default\",\"labels\":{\"app.kubernetes.io/name\":\"busy\"},"
                 "\"annotations\":{\"example.com/note\":\"anything goes here\"}},"
                 "\"spec\":{\"restartPolicy\":\"Never\",\"nodeSelector\":{\"disk\":\"ssd\"},"
                 "\"volumes\":[{\"name\":\"cfg\",\"configMap\":{\"name\":\"cfg\"}},{\"name\":\"tmp\","
                 "\"emptyDir\":{\"sizeLimit\":\"64Mi\"}}],\"initContainers\":[{\"name\":\"init\","
                 "\"image\":\"busybox\",\"command\":[\"true\"]}],\"containers\":[{\"name\":\"main\","
                 "\"image\":\"busybox:1.36\",\"command\":[\"sh\",\"-c\",\"sleep 3600\"],\"env\":"
                 "[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"NODE\",\"valueFrom\":{\"fieldRef\":"
                 "{\"fieldPath\":\"spec.nodeName\"}}}],\"resources\":{\"requests\":{\"cpu\":\"100m\","
                 "\"memory\":\"64Mi\"},\"limits\":{\"cpu\":1,\"memory\":\"1Gi\",\"ephemeral-storage\":"
                 "\"1e3\"}},\"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":8080},"
                 "\"initialDelaySeconds\":3},\"readinessProbe\":{\"tcpSocket\":{\"port\":\"http\"}},"
                 "\"volumeMounts\":[{\"name\":\"cfg\",\"mountPath\":\"/etc/cfg\"}],\"ports\":"
                 "[{\"name\":\"http\",\"containerPort\":8080,\"protocol\":\"TCP\"}]}],"
                 "\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]}}");
    expect_clean("", "Service",
                 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\"},"
                 "\"spec\":{\"type\":\"NodePort\",\"selector\":{\"app\":\"web\"},\"ports\":[{\"name\":"
                 "\"http\",\"port\":80,\"targetPort\":\"http\"},{\"name\":\"https\",\"port\":443,"
                 "\"targetPort\":8443,\"nodePort\":30443}]}}");
    expect_clean("", "ConfigMap",
                 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"app.config\"},"
                 "\"data\":{\"a.conf\":\"x=1\\n\"},\"binaryData\":{\"b\":\"AAEC\"}}");
    expect_clean("", "Secret",
                 "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"creds\"},"
                 "\"type\":\"Opaque\",\"data\":{\"password\":\"cGFzc3dvcmQ=\",\"wrapped\":\"cGFzc3dv\\ncmQ=\"},\"stringData\":"
                 "{\"user\":\"admin\"}}");
    expect_clean("", "Namespace", "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":"
                                  "{\"name\":\"team-a\",\"creationTimestamp\":\"2024-05-01T10:00:00Z\"}}");
    expect_clean("batch", "Job",
                 "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"pi\"},"
                 "\"spec\":{\"backoffLimit\":4,\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
                 "\"containers\":[{\"name\":\"pi\",\"image\":\"perl:5.34.0\",\"command\":[\"perl\","
                 "\"-Mbignum=bpi\",\"-wle\",\"print bpi(2000)\"]}]}}}}");
    expect_clean("batch", "CronJob",
                 "{\"apiVersion\":\"batch/v1\",\"kind\":\"CronJob\",\"metadata\":{\"name\":\"hello\"},"
                 "\"spec\":{\"schedule\":\"* * * * *\",\"jobTemplate\":{\"spec\":{\"template\":"
                 "{\"spec\":{\"restartPolicy\":\"OnFailure\",\"containers\":[{\"name\":\"hello\","
                 "\"image\":\"busybox:1.28\"}]}}}}}}");
    expect_clean("apps", "StatefulSet",
                 "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"db\"},"
                 "\"spec\":{\"serviceName\":\"db\",\"replicas\":2,\"selector\":{\"matchExpressions\":"
                 "[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"db\"]}]},\"template\":{\"metadata\":"
                 "{\"labels\":{\"app\":\"db\"}},\"spec\":{\"containers\":[{\"name\":\"db\",\"image\":"
                 "\"postgres:16\",\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"}]}]}},\"volumeClaimTemplates\":[{\"metadata\":{\"name\":\"data\"},"
                 "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{\"requests\":"
                 "{\"storage\":\"1Gi\"}}}}]}}");
    expect_clean("apps", "DaemonSet",
                 "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"agent\"},"
                 "\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"agent\"}},\"template\":{\"metadata\":"
                 "{\"labels\":{\"app\":\"agent\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":"
                 "\"agent:1\"}]}}}}");
    expect_clean("autoscaling", "HorizontalPodAutoscaler",
                 "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\",\"metadata\":"
                 "{\"name\":\"web\"},\"spec\":{\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":"
                 "\"Deployment\",\"name\":\"web\"},\"maxReplicas\":5,\"metrics\":[{\"type\":\"Resource\","
                 "\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":\"Utilization\","
                 "\"averageUtilization\":80}}}]}}");
    expect_clean("coordination.k8s.io", "Lease",
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":"
                 "\"node-1\"},\"spec\":{\"holderIdentity\":\"node-1\",\"leaseDurationSeconds\":40,"
                 "\"renewTime\":\"2024-05-01T10:00:00.123456Z\"}}");
    /* Status written by a controller may leave out fields the API marks
     * required; null stands for absent. */
    expect_clean("apps", "ReplicaSet",
                 "{\"metadata\":{\"name\":\"rs\",\"labels\":null},\"spec\":{\"selector\":{\"matchLabels\":"
                 "{\"a\":\"b\"}},\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":"
                 "{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}},\"status\":{\"readyReplicas\":1}}");
}

static void test_type_mismatch(void **state)
{
    (void)state;
    expect_one("apps", "Deployment", DEPLOYMENT("{\"app\":\"web\"}", "\"replicas\":\"abc\",", NGINX),
               VALIDATE_STRICT, "spec.replicas", "FieldValueTypeInvalid",
               "Invalid value: \"abc\": spec.replicas in body must be of type integer: \"string\"");
    expect_one("apps", "Deployment",
               DEPLOYMENT("{\"app\":\"web\"}", "",
                          "[{\"name\":\"a\",\"image\":\"i\",\"command\":\"sleep 1\"}]"),
               VALIDATE_STRICT, "spec.template.spec.containers[0].command", "FieldValueTypeInvalid",
               "must be of type array: \"string\"");
    expect_one("", "ConfigMap", "{\"metadata\":{\"name\":\"c\",\"labels\":{\"app\":5}}}",
               VALIDATE_STRICT, "metadata.labels[app]", "FieldValueTypeInvalid",
               "Invalid value: 5: metadata.labels[app] in body must be of type string: \"integer\"");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"hostNetwork\":\"yes\","
                          "\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}",
               VALIDATE_STRICT, "spec.hostNetwork", "FieldValueTypeInvalid", "of type boolean");
    expect_one("", "Service", "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"ports\":[{\"port\":80,"
                              "\"targetPort\":true}]}}",
               VALIDATE_STRICT, "spec.ports[0].targetPort", "FieldValueTypeInvalid",
               "integer or string");
    expect_one("", "Namespace", "{\"metadata\":{\"name\":\"n\",\"creationTimestamp\":\"yesterday\"}}",
               VALIDATE_STRICT, "metadata.creationTimestamp", "FieldValueInvalid", "RFC 3339");
    expect_one("", "Secret", "{\"metadata\":{\"name\":\"s\"},\"data\":{\"k\":\"not base64!\"}}",
               VALIDATE_STRICT, "data[k]", "FieldValueInvalid", "illegal base64 data at input byte 3");
    expect_one("apps", "Deployment", DEPLOYMENT("{\"app\":\"web\"}", "\"replicas\":3000000000,", NGINX),
               VALIDATE_STRICT, "spec.replicas", "FieldValueInvalid", "32-bit");
    expect_one("apps", "Deployment", DEPLOYMENT("{\"app\":\"web\"}", "\"replicas\":1e300,", NGINX),
               VALIDATE_STRICT, "spec.replicas", "FieldValueTypeInvalid", "must be of type integer");
    expect_one("apps", "Deployment", DEPLOYMENT("{\"app\":\"web\"}", "\"replicas\":1.5,", NGINX),
               VALIDATE_STRICT, "spec.replicas", "FieldValueTypeInvalid", "must be of type integer: \"number\"");
    expect_one("apps", "Deployment", DEPLOYMENT("{\"app\":\"web\"}", "\"replicas\":2.0,", NGINX),
               VALIDATE_STRICT, "spec.replicas", "FieldValueTypeInvalid", "Invalid value: 2: ");
    /* A whole object of the wrong type is one error, not a cascade. */
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":[]}", VALIDATE_STRICT, "spec",
               "FieldValueTypeInvalid", "must be of type object: \"array\"");
    validation_result_t r;
    json_t *arr = json_array();
    assert_int_equal(registry_validate(kind("", "Pod"), arr, VALIDATE_STRICT, &r), 1);
    assert_string_equal(r.errors[0].reason, "FieldValueTypeInvalid");
    validation_result_free(&r);
    json_decref(arr);
}

static void test_required(void **state)
{
    (void)state;
    expect_one("apps", "Deployment",
               DEPLOYMENT("{\"app\":\"web\"}", "", "[{\"image\":\"nginx\"}]"), VALIDATE_STRICT,
               "spec.template.spec.containers[0].name", "FieldValueRequired", "Required value");
    expect_one("", "Service", "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"ports\":[{\"targetPort\":80}]}}",
               VALIDATE_STRICT, "spec.ports[0].port", "FieldValueRequired", "Required value");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{}}", VALIDATE_STRICT,
               "spec.containers", "FieldValueRequired", "Required value");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"env\":[{\"value\":\"x\"}]}]}}",
               VALIDATE_STRICT, "spec.containers[0].env[0].name", "FieldValueRequired", NULL);
    /* The name of the object is the API server's business (generateName). */
    expect_clean("", "ConfigMap", "{\"metadata\":{\"generateName\":\"cfg-\"}}");
}

static void test_enum(void **state)
{
    (void)state;
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"restartPolicy\":\"Sometimes\","
                          "\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}",
               VALIDATE_STRICT, "spec.restartPolicy", "FieldValueNotSupported",
               "Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\"");
    expect_one("", "Service", "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"type\":\"Balanced\","
                              "\"ports\":[{\"port\":80}]}}",
               VALIDATE_STRICT, "spec.type", "FieldValueNotSupported",
               "Unsupported value: \"Balanced\": supported values: \"ClusterIP\", \"ExternalName\", "
               "\"LoadBalancer\", \"NodePort\"");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"ports\":[{\"containerPort\":53,\"protocol\":\"tcp\"}]}]}}",
               VALIDATE_STRICT, "spec.containers[0].ports[0].protocol", "FieldValueNotSupported",
               "\"SCTP\", \"TCP\", \"UDP\"");
}

static void test_unknown_fields(void **state)
{
    (void)state;
    const char *svc = "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"ipFamily\":\"IPv4\","
                      "\"ports\":[{\"port\":80}]}}";
    expect_one("", "Service", svc, VALIDATE_STRICT, "spec.ipFamily", "FieldValueUnknown",
               "unknown field \"spec.ipFamily\"");
    validation_result_t r;
    assert_int_equal(check("", "Service", svc, VALIDATE_WARN_UNKNOWN, &r), 1);
    assert_int_equal(r.unknown_fields, 1);
    validation_result_free(&r);
    assert_int_equal(check("", "Service", svc, VALIDATE_IGNORE_UNKNOWN, &r), 0);
    assert_int_equal(r.unknown_fields, 0);
    validation_result_free(&r);
    /* Unknown fields deep inside lists, and the known ones around them. */
    assert_int_equal(check("apps", "Deployment",
                           DEPLOYMENT("{\"app\":\"web\"}", "\"replica\":2,",
                                      "[{\"name\":\"a\",\"image\":\"i\",\"imagePolicy\":\"x\"}]"),
                           VALIDATE_STRICT, &r), 2);
    assert_int_equal(r.unknown_fields, 2);
    assert_string_equal(r.errors[0].field, "spec.replica");
    assert_string_equal(r.errors[1].field, "spec.template.spec.containers[0].imagePolicy");
    assert_string_equal(r.errors[1].message,
                        "unknown field \"spec.template.spec.containers[0].imagePolicy\"");
    validation_result_free(&r);
    /* Free-form fields take anything. */
    expect_clean("apps", "ControllerRevision", "{\"metadata\":{\"name\":\"r\"},\"revision\":1,"
                                               "\"data\":{\"spec\":{\"anything\":[1,2]}}}");
}

static void test_quantities(void **state)
{
    (void)state;
    const char *good[] = { "100m", "1Gi", "2", "1e3", "0.5", "+1", "1.5Mi", "64Ki", "1E-2", "3k",
                           "2Ei", "10n" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(registry_quantity_valid(good[i]));
    const char *bad[] = { "", "1 Gi", "abc", "1Gb", "Gi", "1e", "1..2", "1ki", "--1", "1e3.5" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (registry_quantity_valid(bad[i]))
            fail_msg("quantity \"%s\" accepted", bad[i]);
    }
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"resources\":{\"limits\":{\"memory\":\"1 Gi\","
                          "\"cpu\":0.5}}}]}}",
               VALIDATE_STRICT, "spec.containers[0].resources.limits[memory]", "FieldValueInvalid",
               "Invalid value: \"1 Gi\": quantities must match the regular expression");
}

static void test_names(void **state)
{
    (void)state;
    expect_one("", "ConfigMap", "{\"metadata\":{\"name\":\"Foo_bar\"}}", VALIDATE_STRICT,
               "metadata.name", "FieldValueInvalid",
               "Invalid value: \"Foo_bar\": a lowercase RFC 1123 subdomain must consist of");
    expect_clean("", "ConfigMap", "{\"metadata\":{\"name\":\"my.config-1\"}}");
    expect_one("", "Namespace", "{\"metadata\":{\"name\":\"my.ns\"}}", VALIDATE_STRICT,
               "metadata.name", "FieldValueInvalid", "a lowercase RFC 1123 label must consist of");
    expect_one("", "Service", "{\"metadata\":{\"name\":\"1web\"},\"spec\":{\"ports\":[{\"port\":80}]}}",
               VALIDATE_STRICT, "metadata.name", "FieldValueInvalid", "a DNS-1035 label must consist");
    expect_clean("", "ConfigMap", "{\"metadata\":{\"name\":\"1web\"}}");
    /* a subdomain has no 63-character limit per part (a Deployment of 63
     * characters owns "<name>-<hash>" ReplicaSets) */
    char part[120];
    memset(part, 'b', 100);
    part[100] = '\0';
    char part_text[200];
    snprintf(part_text, sizeof(part_text), "{\"metadata\":{\"name\":\"%s\"}}", part);
    expect_clean("", "ConfigMap", part_text);
    char long_name[300];
    memset(long_name, 'a', 254);
    long_name[254] = '\0';
    char text[400];
    snprintf(text, sizeof(text), "{\"metadata\":{\"name\":\"%s\"}}", long_name);
    expect_one("", "ConfigMap", text, VALIDATE_STRICT, "metadata.name", "FieldValueInvalid",
               "must be no more than 253 characters");
    expect_one("", "ConfigMap", "{\"metadata\":{\"name\":\"c\",\"namespace\":\"Bad\"}}", VALIDATE_STRICT,
               "metadata.namespace", "FieldValueInvalid", "RFC 1123 label");
}

static void test_labels(void **state)
{
    (void)state;
    expect_one("", "ConfigMap", "{\"metadata\":{\"name\":\"c\",\"labels\":{\"bad key\":\"v\"}}}",
               VALIDATE_STRICT, "metadata.labels", "FieldValueInvalid",
               "Invalid value: \"bad key\": name part must consist of alphanumeric characters");
    expect_one("", "ConfigMap", "{\"metadata\":{\"name\":\"c\",\"labels\":{\"app\":\"-web\"}}}",
               VALIDATE_STRICT, "metadata.labels[app]", "FieldValueInvalid",
               "Invalid value: \"-web\": a valid label must be an empty string or consist of");
    expect_one("", "ConfigMap", "{\"metadata\":{\"name\":\"c\",\"labels\":{\"Example.com/app\":\"x\"}}}",
               VALIDATE_STRICT, "metadata.labels", "FieldValueInvalid", "prefix part");
    expect_one("", "ConfigMap", "{\"metadata\":{\"name\":\"c\",\"annotations\":{\"a/b/c\":\"x\"}}}",
               VALIDATE_STRICT, "metadata.annotations", "FieldValueInvalid", NULL);
    expect_clean("", "ConfigMap", "{\"metadata\":{\"name\":\"c\",\"labels\":{\"app.kubernetes.io/part-of\":"
                                  "\"Shop_1.2\",\"empty\":\"\"}}}");
    /* Template labels are checked with their own path. */
    expect_one("apps", "Deployment",
               "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"x\"}},"
               "\"template\":{\"metadata\":{\"labels\":{\"app\":\"x\",\"v\":\"a b\"}},\"spec\":"
               "{\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.template.metadata.labels[v]", "FieldValueInvalid", NULL);
}

static void test_containers(void **state)
{
    (void)state;
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[]}}", VALIDATE_STRICT,
               "spec.containers", "FieldValueRequired", "Required value");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\"},{\"name\":\"a\",\"image\":\"j\"}]}}",
               VALIDATE_STRICT, "spec.containers[1].name", "FieldValueDuplicate",
               "Duplicate value: \"a\"");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"initContainers\":[{\"name\":\"a\","
                          "\"image\":\"i\"}],\"containers\":[{\"name\":\"a\",\"image\":\"j\"}]}}",
               VALIDATE_STRICT, "spec.containers[0].name", "FieldValueDuplicate", NULL);
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
               VALIDATE_STRICT, "spec.containers[0].image", "FieldValueRequired", "Required value");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"\"}]}}",
               VALIDATE_STRICT, "spec.containers[0].image", "FieldValueRequired", NULL);
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"Web\","
                          "\"image\":\"i\"}]}}",
               VALIDATE_STRICT, "spec.containers[0].name", "FieldValueInvalid", "RFC 1123 label");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"ports\":[{\"containerPort\":80},{\"containerPort\":70000}]}]}}",
               VALIDATE_STRICT, "spec.containers[0].ports[1].containerPort", "FieldValueInvalid",
               "Invalid value: 70000: must be between 1 and 65535, inclusive");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"ports\":[{\"containerPort\":0}]}]}}",
               VALIDATE_STRICT, "spec.containers[0].ports[0].containerPort", "FieldValueInvalid",
               "Invalid value: 0: must be between 1 and 65535, inclusive");
    expect_one("", "Service", "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"ports\":[{\"port\":0}]}}",
               VALIDATE_STRICT, "spec.ports[0].port", "FieldValueInvalid", "between 1 and 65535");
    /* In templates the path starts at the template. */
    expect_one("batch", "CronJob",
               "{\"metadata\":{\"name\":\"c\"},\"spec\":{\"schedule\":\"@daily\",\"jobTemplate\":{\"spec\":"
               "{\"template\":{\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"a\"}]}}}}}}",
               VALIDATE_STRICT, "spec.jobTemplate.spec.template.spec.containers[0].image",
               "FieldValueRequired", NULL);
}

static void test_volumes_ports_resources(void **state)
{
    (void)state;
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"volumes\":[{\"name\":\"cfg\","
                          "\"emptyDir\":{}}],\"containers\":[{\"name\":\"a\",\"image\":\"i\",\"volumeMounts\":"
                          "[{\"name\":\"cfg\",\"mountPath\":\"/a\"},{\"name\":\"data\",\"mountPath\":\"/b\"}]}]}}",
               VALIDATE_STRICT, "spec.containers[0].volumeMounts[1].name", "FieldValueNotFound",
               "Not found: \"data\"");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"volumes\":[{\"name\":\"v\","
                          "\"emptyDir\":{}},{\"name\":\"v\",\"emptyDir\":{}}],\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\"}]}}",
               VALIDATE_STRICT, "spec.volumes[1].name", "FieldValueDuplicate", "Duplicate value: \"v\"");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"ports\":[{\"name\":\"HTTP\",\"containerPort\":80}]}]}}",
               VALIDATE_STRICT, "spec.containers[0].ports[0].name", "FieldValueInvalid",
               "must contain only alpha-numeric characters");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"ports\":[{\"name\":\"a-very-long-port-name\",\"containerPort\":80}]}]}}",
               VALIDATE_STRICT, "spec.containers[0].ports[0].name", "FieldValueInvalid",
               "must be no more than 15 characters");
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"ports\":[{\"name\":\"web\",\"containerPort\":80},{\"name\":\"web\","
                          "\"containerPort\":81}]}]}}",
               VALIDATE_STRICT, "spec.containers[0].ports[1].name", "FieldValueDuplicate", NULL);
    expect_one("", "Pod", "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\","
                          "\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":\"2\",\"memory\":\"1Gi\"},"
                          "\"limits\":{\"cpu\":\"1500m\",\"memory\":\"1024Mi\"}}}]}}",
               VALIDATE_STRICT, "spec.containers[0].resources.requests[cpu]", "FieldValueInvalid",
               "Invalid value: \"2\": must be less than or equal to cpu limit of 1500m");
    double v;
    json_t *q = json_string("250m");
    assert_int_equal(registry_quantity_parse(q, &v), 0);
    assert_true(v > 0.2499 && v < 0.2501);
    json_decref(q);
    q = json_string("1Gi");
    assert_int_equal(registry_quantity_parse(q, &v), 0);
    assert_true(v == 1073741824.0);
    json_decref(q);
    q = json_string("1e3");
    assert_int_equal(registry_quantity_parse(q, &v), 0);
    assert_true(v == 1000.0);
    json_decref(q);
    q = json_integer(3);
    assert_int_equal(registry_quantity_parse(q, &v), 0);
    assert_true(v == 3.0);
    json_decref(q);
    q = json_string("3 cores");
    assert_true(registry_quantity_parse(q, &v) < 0);
    json_decref(q);
}

static void test_selectors(void **state)
{
    (void)state;
    expect_one("apps", "Deployment", DEPLOYMENT("{\"app\":\"api\"}", "", NGINX), VALIDATE_STRICT,
               "spec.template.metadata.labels", "FieldValueInvalid",
               "Invalid value: {\"app\":\"api\"}: `selector` does not match template `labels`");
    expect_one("apps", "ReplicaSet",
               "{\"metadata\":{\"name\":\"r\"},\"spec\":{\"selector\":{\"matchExpressions\":[{\"key\":"
               "\"tier\",\"operator\":\"NotIn\",\"values\":[\"db\"]}]},\"template\":{\"metadata\":"
               "{\"labels\":{\"tier\":\"db\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.template.metadata.labels", "FieldValueInvalid",
               "`selector` does not match template `labels`");
    expect_one("apps", "DaemonSet",
               "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"x\"}},"
               "\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.template.metadata.labels", "FieldValueInvalid",
               "`selector` does not match template `labels`");
    expect_one("apps", "StatefulSet",
               "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"selector\":{},\"template\":{\"metadata\":"
               "{\"labels\":{\"app\":\"x\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.selector", "FieldValueInvalid", "empty selector");
    expect_one("batch", "Job",
               "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"selector\":{\"matchLabels\":{\"job\":\"a\"}},"
               "\"template\":{\"metadata\":{\"labels\":{\"job\":\"b\"}},\"spec\":{\"restartPolicy\":"
               "\"Never\",\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.template.metadata.labels", "FieldValueInvalid",
               "`selector` does not match template `labels`");
    expect_one("apps", "Deployment",
               "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"template\":{\"metadata\":{\"labels\":"
               "{\"app\":\"x\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.selector", "FieldValueRequired", "Required value");
}

static void test_job_restart_policy_and_replicas(void **state)
{
    (void)state;
    const char *job_always = "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"template\":{\"spec\":"
                             "{\"restartPolicy\":\"Always\",\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}";
    expect_one("batch", "Job", job_always, VALIDATE_STRICT, "spec.template.spec.restartPolicy",
               "FieldValueNotSupported",
               "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"");
    expect_one("batch", "Job",
               "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"template\":{\"spec\":{\"containers\":"
               "[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.template.spec.restartPolicy", "FieldValueRequired",
               "Required value");
    /* A Job that leaves restartPolicy out is defaulted to Always and then
     * refused, as Kubernetes does. */
    json_t *j = load("{\"metadata\":{\"name\":\"j\"},\"spec\":{\"template\":{\"spec\":{\"containers\":"
                     "[{\"name\":\"a\",\"image\":\"i\"}]}}}}");
    registry_set_defaults(kind("batch", "Job"), j);
    validation_result_t r;
    assert_int_equal(registry_validate(kind("batch", "Job"), j, VALIDATE_STRICT, &r), 1);
    assert_string_equal(r.errors[0].field, "spec.template.spec.restartPolicy");
    assert_string_equal(r.errors[0].message,
                        "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"");
    validation_result_free(&r);
    json_decref(j);

    expect_one("apps", "Deployment", DEPLOYMENT("{\"app\":\"web\"}", "\"replicas\":-1,", NGINX),
               VALIDATE_STRICT, "spec.replicas", "FieldValueInvalid",
               "Invalid value: -1: must be greater than or equal to 0");
    expect_one("apps", "StatefulSet",
               "{\"metadata\":{\"name\":\"s\"},\"spec\":{\"replicas\":-3,\"selector\":{\"matchLabels\":"
               "{\"a\":\"b\"}},\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":"
               "{\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.replicas", "FieldValueInvalid", "greater than or equal to 0");
    expect_one("batch", "Job",
               "{\"metadata\":{\"name\":\"j\"},\"spec\":{\"parallelism\":-1,\"template\":{\"spec\":"
               "{\"restartPolicy\":\"OnFailure\",\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.parallelism", "FieldValueInvalid", NULL);
    expect_clean("apps", "Deployment", DEPLOYMENT("{\"app\":\"web\"}", "\"replicas\":0,", NGINX));
    /* The apps controllers keep their pods running. */
    expect_one("apps", "DaemonSet",
               "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"
               "\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"restartPolicy\":\"Never\","
               "\"containers\":[{\"name\":\"a\",\"image\":\"i\"}]}}}}",
               VALIDATE_STRICT, "spec.template.spec.restartPolicy", "FieldValueNotSupported",
               "Unsupported value: \"Never\": supported values: \"Always\"");
}

#define RBAC "rbac.authorization.k8s.io"

static void test_rbac(void **state)
{
    (void)state;
    /* RBAC names only need to be one path segment: colons are fine. */
    expect_clean(RBAC, "ClusterRole",
                 "{\"metadata\":{\"name\":\"system:basic-user\"},\"rules\":["
                 "{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"get\"]},"
                 "{\"nonResourceURLs\":[\"/healthz\"],\"verbs\":[\"get\"]}]}");
    expect_clean(RBAC, "ClusterRole",
                 "{\"metadata\":{\"name\":\"admin\"},\"aggregationRule\":{"
                 "\"clusterRoleSelectors\":[{\"matchLabels\":{\"a\":\"b\"}}]}}");
    expect_clean(RBAC, "RoleBinding",
                 "{\"metadata\":{\"name\":\"x:y\",\"namespace\":\"default\"},"
                 "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":"
                 "\"ClusterRole\",\"name\":\"view\"},\"subjects\":[{\"kind\":"
                 "\"ServiceAccount\",\"name\":\"default\"},{\"kind\":\"User\","
                 "\"apiGroup\":\"rbac.authorization.k8s.io\",\"name\":\"alice\"}]}");
    expect_one(RBAC, "Role", "{\"metadata\":{\"name\":\"a/b\"}}", VALIDATE_STRICT,
               "metadata.name", "FieldValueInvalid", "may not contain '/'");
    expect_one(RBAC, "Role", "{\"metadata\":{\"name\":\"..\"}}", VALIDATE_STRICT,
               "metadata.name", "FieldValueInvalid", "may not be '..'");
    expect_one(RBAC, "Role",
               "{\"metadata\":{\"name\":\"r\"},\"rules\":[{\"nonResourceURLs\":"
               "[\"/x\"],\"verbs\":[\"get\"]}]}",
               VALIDATE_STRICT, "rules[0].nonResourceURLs", "FieldValueInvalid",
               "namespaced rules cannot apply to non-resource URLs");
    expect_one(RBAC, "ClusterRole",
               "{\"metadata\":{\"name\":\"r\"},\"rules\":[{\"apiGroups\":[\"\"],"
               "\"verbs\":[\"get\"]}]}",
               VALIDATE_STRICT, "rules[0].resources", "FieldValueRequired",
               "at least one resource");
    expect_one(RBAC, "ClusterRole",
               "{\"metadata\":{\"name\":\"r\"},\"rules\":[{\"apiGroups\":[\"\"],"
               "\"resources\":[\"pods\"],\"verbs\":[]}]}",
               VALIDATE_STRICT, "rules[0].verbs", "FieldValueRequired", "at least one value");
    expect_one(RBAC, "ClusterRoleBinding",
               "{\"metadata\":{\"name\":\"b\"},\"roleRef\":{\"apiGroup\":"
               "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"r\"}}",
               VALIDATE_STRICT, "roleRef.kind", "FieldValueNotSupported", "\"ClusterRole\"");
    expect_one(RBAC, "ClusterRoleBinding",
               "{\"metadata\":{\"name\":\"b\"},\"roleRef\":{\"apiGroup\":"
               "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"r\"},"
               "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"sa\"}]}",
               VALIDATE_STRICT, "subjects[0].namespace", "FieldValueRequired", NULL);
    expect_one(RBAC, "RoleBinding",
               "{\"metadata\":{\"name\":\"b\"},\"roleRef\":{\"apiGroup\":"
               "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"r\"},"
               "\"subjects\":[{\"kind\":\"Robot\",\"name\":\"r2\"}]}",
               VALIDATE_STRICT, "subjects[0].kind", "FieldValueNotSupported", "\"User\"");
}

static void test_many_errors_are_all_reported(void **state)
{
    (void)state;
    validation_result_t r;
    size_t n = check("", "Pod",
                     "{\"metadata\":{\"name\":\"Bad_Name\",\"labels\":{\"a\":\"-\"}},\"spec\":{\"bogus\":1,"
                     "\"restartPolicy\":\"Maybe\",\"containers\":[{\"name\":\"x\"},{\"name\":\"x\","
                     "\"image\":\"i\",\"ports\":[{\"containerPort\":\"80\"}]}]}}",
                     VALIDATE_STRICT, &r);
    /* name, label value, bogus, restartPolicy, containerPort type, image, duplicate */
    if (n != 7)
        dump(&r);
    assert_int_equal(n, 7);
    assert_int_equal(r.unknown_fields, 1);
    validation_result_free(&r);
    /* A NULL kind or result does not crash. */
    assert_int_equal(registry_validate(NULL, NULL, VALIDATE_STRICT, &r), 0);
    validation_result_free(&r);
    assert_int_equal(registry_validate(kind("", "Pod"), NULL, VALIDATE_STRICT, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_manifests_pass),
        cmocka_unit_test(test_rbac),
        cmocka_unit_test(test_type_mismatch),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_volumes_ports_resources),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_job_restart_policy_and_replicas),
        cmocka_unit_test(test_many_errors_are_all_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
