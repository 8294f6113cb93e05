/* tests/unit/test_admission_logic.c - the pure rules behind the built-in
 * admission modules: LimitRange defaults and checks (with Kubernetes'
 * messages), the Pod Security Standards at baseline and restricted,
 * ResourceQuota accounting and its "must specify" rule, and quantity
 * formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "admission/limit_range.h"
#include "admission/pod_security_checks.h"
#include "admission/quantity.h"
#include "admission/quota_usage.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) fail_msg("bad JSON in test: %s: %s", e.text, text);
    return j;
}

static const char *res_of(const json_t *pod, int i, const char *which, const char *r)
{
    const json_t *c = json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), i);
    return json_string_value(json_object_get(json_object_get(json_object_get(c, "resources"), which), r));
}

/* ---- LimitRange ------------------------------------------------------------- */

static void test_limitrange_defaults(void **state)
{
    json_t *ranges = J("[{\"spec\":{\"limits\":[{\"type\":\"Container\","
                       "\"default\":{\"cpu\":\"500m\",\"memory\":\"256Mi\"},"
                       "\"defaultRequest\":{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}]}}]");
    json_t *pod = J("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":["
                    "{\"name\":\"a\"},"
                    "{\"name\":\"b\",\"resources\":{\"limits\":{\"cpu\":\"2\"}}}],"
                    "\"initContainers\":[{\"name\":\"i\",\"resources\":{\"requests\":{\"memory\":\"1Gi\"}}}]}}");
    assert_int_equal(limitrange_default_pod(ranges, pod), 1);
    assert_string_equal(res_of(pod, 0, "limits", "cpu"), "500m");
    assert_string_equal(res_of(pod, 0, "requests", "memory"), "128Mi");
    /* a limit without a request requests the limit, not the default request */
    assert_string_equal(res_of(pod, 1, "limits", "cpu"), "2");
    assert_string_equal(res_of(pod, 1, "requests", "cpu"), "2");
    assert_string_equal(res_of(pod, 1, "requests", "memory"), "128Mi");
    const char *ann = json_string_value(json_object_get(
        json_object_get(json_object_get(pod, "metadata"), "annotations"), "kubernetes.io/limit-ranger"));
    assert_string_equal(ann, "LimitRanger plugin set: cpu, memory request for container a; "
                             "cpu, memory limit for container a; memory request for container b; "
                             "memory limit for container b; cpu request for init container i; "
                             "cpu, memory limit for init container i");
    /* a pod that needs nothing is left as it is */
    json_t *full = J("{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{"
                     "\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
                     "\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}");
    assert_int_equal(limitrange_default_pod(ranges, full), 0);
    assert_null(json_object_get(json_object_get(full, "metadata"), "annotations"));
    json_decref(full);
    json_decref(pod);
    json_decref(ranges);
}

static void test_limitrange_container_checks(void **state)
{
    json_t *ranges = J("[{\"spec\":{\"limits\":[{\"type\":\"Container\","
                       "\"min\":{\"cpu\":\"100m\"},\"max\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
                       "\"maxLimitRequestRatio\":{\"cpu\":\"2\"}}]}}]");
    json_t *ok = J("{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{"
                   "\"limits\":{\"cpu\":\"1\",\"memory\":\"512Mi\"},\"requests\":{\"cpu\":\"500m\"}}}]}}");
    assert_null(limitrange_violations(ranges, "Pod", ok));
    json_t *big = J("{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{"
                    "\"limits\":{\"cpu\":\"2\",\"memory\":\"2Gi\"},\"requests\":{\"cpu\":\"2\"}}}]}}");
    char *why = limitrange_violations(ranges, "Pod", big);
    assert_non_null(why);
    assert_string_equal(why, "[maximum cpu usage per Container is 1, but limit is 2, "
                             "maximum memory usage per Container is 1Gi, but limit is 2Gi]");
    free(why);
    json_t *ratio = J("{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{"
                      "\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"requests\":{\"cpu\":\"200m\"}}}]}}");
    why = limitrange_violations(ranges, "Pod", ratio);
    assert_string_equal(why, "cpu max limit to request ratio per Container is 2, but provided "
                             "ratio is 5.000000");
    free(why);
    json_t *none = J("{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}");
    why = limitrange_violations(ranges, "Pod", none);
    assert_string_equal(why, "[minimum cpu usage per Container is 100m.  No request is specified, "
                             "maximum cpu usage per Container is 1.  No limit is specified, "
                             "maximum memory usage per Container is 1Gi.  No limit is specified, "
                             "cpu max limit to request ratio per Container is 2, but no request is "
                             "specified or request is 0]");
    free(why);
    json_decref(none);
    json_decref(ratio);
    json_decref(big);
    json_decref(ok);
    json_decref(ranges);
}

static void test_limitrange_pod_and_pvc(void **state)
{
    json_t *ranges = J("[{\"spec\":{\"limits\":[{\"type\":\"Pod\",\"max\":{\"memory\":\"1Gi\"}},"
                       "{\"type\":\"PersistentVolumeClaim\",\"min\":{\"storage\":\"1Gi\"},"
                       "\"max\":{\"storage\":\"10Gi\"}}]}}]");
    json_t *pod = J("{\"spec\":{\"containers\":["
                    "{\"name\":\"a\",\"resources\":{\"limits\":{\"memory\":\"768Mi\"}}},"
                    "{\"name\":\"b\",\"resources\":{\"limits\":{\"memory\":\"512Mi\"}}}]}}");
    char *why = limitrange_violations(ranges, "Pod", pod);
    assert_string_equal(why, "maximum memory usage per Pod is 1Gi, but limit is 1280Mi");
    free(why);
    json_t *pvc = J("{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"20Gi\"}}}}");
    why = limitrange_violations(ranges, "PersistentVolumeClaim", pvc);
    assert_string_equal(why, "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi");
    free(why);
    json_t *small = J("{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"100Mi\"}}}}");
    why = limitrange_violations(ranges, "PersistentVolumeClaim", small);
    assert_string_equal(why, "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 100Mi");
    free(why);
    json_decref(small);
    json_decref(pvc);
    json_decref(pod);
    json_decref(ranges);
}

/* ---- PodSecurity ---------------------------------------------------------------- */

static char *psa(int level, const char *pod_json)
{
    json_t *pod = J(pod_json);
    char *v = psa_violations(level, json_object_get(pod, "metadata"), json_object_get(pod, "spec"));
    json_decref(pod);
    return v;
}

static void test_psa_levels(void **state)
{
    assert_int_equal(psa_parse_level("baseline"), PSA_BASELINE);
    assert_int_equal(psa_parse_level("Restricted"), -1);
    const char *plain = "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}";
    assert_null(psa(PSA_PRIVILEGED, plain));
    assert_null(psa(PSA_BASELINE, plain));
    char *v = psa(PSA_RESTRICTED, plain);
    assert_string_equal(
        v, "allowPrivilegeEscalation != false (container \"c\" must set "
           "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
           "\"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod "
           "or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or "
           "container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or "
           "\"Localhost\")");
    free(v);
    const char *good = "{\"spec\":{\"securityContext\":{\"runAsNonRoot\":true,"
                       "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},"
                       "\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}},{\"name\":\"t\",\"projected\":{}}],"
                       "\"containers\":[{\"name\":\"c\",\"securityContext\":{"
                       "\"allowPrivilegeEscalation\":false,"
                       "\"capabilities\":{\"drop\":[\"ALL\"],\"add\":[\"NET_BIND_SERVICE\"]}}}]}}";
    assert_null(psa(PSA_RESTRICTED, good));
}

static void test_psa_baseline(void **state)
{
    char *v = psa(PSA_BASELINE,
                  "{\"spec\":{\"hostNetwork\":true,\"hostPID\":true,"
                  "\"volumes\":[{\"name\":\"root\",\"hostPath\":{\"path\":\"/\"}}],"
                  "\"securityContext\":{\"sysctls\":[{\"name\":\"kernel.msgmax\",\"value\":\"1\"}]},"
                  "\"initContainers\":[{\"name\":\"i\",\"securityContext\":{\"privileged\":true}}],"
                  "\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":80,\"hostPort\":8080}],"
                  "\"securityContext\":{\"privileged\":true,\"capabilities\":{\"add\":[\"SYS_ADMIN\",\"CHOWN\",\"NET_ADMIN\"]}}}]}}");
    assert_string_equal(
        v, "non-default capabilities (container \"a\" must not include \"NET_ADMIN\", "
           "\"SYS_ADMIN\" in securityContext.capabilities.add), host namespaces (hostNetwork, "
           "hostPID), hostPath volumes (volume \"root\"), hostPort (container \"a\" uses hostPort "
           "8080), privileged (containers \"i\", \"a\" must not set securityContext.privileged=true), "
           "forbidden sysctls (kernel.msgmax)");
    free(v);
    v = psa(PSA_BASELINE, "{\"spec\":{\"securityContext\":{\"seccompProfile\":{\"type\":\"Unconfined\"}},"
                          "\"containers\":[{\"name\":\"a\",\"securityContext\":{\"procMount\":\"Unmasked\","
                          "\"seLinuxOptions\":{\"type\":\"spc_t\"}}}]}}");
    assert_string_equal(v, "procMount (container \"a\" must not set securityContext.procMount to "
                           "\"Unmasked\"), seLinuxOptions (container \"a\" set forbidden "
                           "securityContext.seLinuxOptions: type \"spc_t\"), seccompProfile (pod "
                           "must not set securityContext.seccompProfile.type to \"Unconfined\")");
    free(v);
}

static void test_psa_restricted_details(void **state)
{
    char *v = psa(PSA_RESTRICTED,
                  "{\"spec\":{\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":0,"
                  "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},"
                  "\"volumes\":[{\"name\":\"data\",\"hostPath\":{\"path\":\"/d\"}},{\"name\":\"n\",\"nfs\":{}}],"
                  "\"containers\":[{\"name\":\"a\",\"securityContext\":{\"allowPrivilegeEscalation\":false,"
                  "\"runAsNonRoot\":false,\"capabilities\":{\"drop\":[\"ALL\"],\"add\":[\"SYS_TIME\"]}}}]}}");
    assert_string_equal(
        v, "unrestricted capabilities (container \"a\" must not include \"SYS_TIME\" in "
           "securityContext.capabilities.add), restricted volume types (volumes \"data\", \"n\" use "
           "restricted volume types \"hostPath\", \"nfs\"), runAsNonRoot != true (container \"a\" "
           "must not set securityContext.runAsNonRoot=false), runAsUser=0 (pod must not set "
           "runAsUser=0)");
    free(v);
}

/* ---- ResourceQuota ------------------------------------------------------------ */

static void test_quota_usage(void **state)
{
    char g[64], r[64];
    assert_int_equal(quota_key_resource("count/deployments.apps", g, sizeof g, r, sizeof r), 0);
    assert_string_equal(g, "apps");
    assert_string_equal(r, "deployments");
    assert_int_equal(quota_key_resource("limits.memory", g, sizeof g, r, sizeof r), 0);
    assert_string_equal(r, "pods");
    assert_int_equal(quota_key_resource("requests.nvidia.com/gpu", g, sizeof g, r, sizeof r), -1);
    json_t *pod = J("{\"spec\":{\"containers\":["
                    "{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"250m\"},\"limits\":{\"memory\":\"128Mi\"}}},"
                    "{\"name\":\"b\",\"resources\":{\"requests\":{\"cpu\":\"250m\"},\"limits\":{\"memory\":\"128Mi\"}}}],"
                    "\"initContainers\":[{\"name\":\"i\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]}}");
    assert_int_equal(quota_object_usage("pods", "", "pods", pod), 1000);
    assert_int_equal(quota_object_usage("count/pods", "", "pods", pod), 1000);
    /* the largest init container wins over the sum of the others */
    assert_int_equal(quota_object_usage("requests.cpu", "", "pods", pod), 1000);
    /* requests default to limits */
    assert_int_equal(quota_object_usage("requests.memory", "", "pods", pod), 256LL * 1024 * 1024 * 1000);
    assert_int_equal(quota_object_usage("services", "", "pods", pod), 0);
    json_t *done = J("{\"status\":{\"phase\":\"Succeeded\"}}");
    assert_int_equal(quota_object_usage("pods", "", "pods", done), 0);
    json_t *svc = J("{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80},{\"port\":443}]}}");
    assert_int_equal(quota_object_usage("services.nodeports", "", "services", svc), 2000);
    assert_int_equal(quota_object_usage("services.loadbalancers", "", "services", svc), 0);
    json_t *quota = J("{\"spec\":{\"scopes\":[\"BestEffort\"]}}");
    assert_int_equal(quota_scopes_match(quota, "", "pods", pod), 0);
    assert_int_equal(quota_scopes_match(quota, "", "pods", done), 1);
    assert_int_equal(quota_scopes_match(quota, "", "services", svc), 0);
    json_decref(quota);
    json_decref(svc);
    json_decref(done);
    json_decref(pod);
}

static void test_quota_must_specify(void **state)
{
    json_t *hard = J("{\"pods\":\"10\",\"requests.cpu\":\"1\",\"limits.memory\":\"1Gi\"}");
    json_t *pod = J("{\"spec\":{\"containers\":[{\"name\":\"web\"},"
                    "{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]}}");
    char *why = quota_pod_constraints(hard, pod);
    assert_string_equal(why, "must specify limits.memory for: app,web; must specify requests.cpu for: web");
    free(why);
    json_t *counts = J("{\"pods\":\"10\"}");
    assert_null(quota_pod_constraints(counts, pod));
    json_decref(counts);
    json_decref(pod);
    json_decref(hard);
}

static void test_quantity_format(void **state)
{
    char b[32];
    quantity_format(500, 1, b, sizeof b);
    assert_string_equal(b, "500m");
    quantity_format(2000, 1, b, sizeof b);
    assert_string_equal(b, "2");
    quantity_format(128LL * 1024 * 1024 * 1000, 0, b, sizeof b);
    assert_string_equal(b, "128Mi");
    quantity_format(200000000LL * 1000, 0, b, sizeof b);
    assert_string_equal(b, "200M");
    quantity_format(0, 0, b, sizeof b);
    assert_string_equal(b, "0");
    quota_format("pods", 3000, b, sizeof b);
    assert_string_equal(b, "3");
    quota_format("requests.cpu", 1500, b, sizeof b);
    assert_string_equal(b, "1500m");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limitrange_defaults),   cmocka_unit_test(test_limitrange_container_checks),
        cmocka_unit_test(test_limitrange_pod_and_pvc), cmocka_unit_test(test_psa_levels),
        cmocka_unit_test(test_psa_baseline),          cmocka_unit_test(test_psa_restricted_details),
        cmocka_unit_test(test_quota_usage),           cmocka_unit_test(test_quota_must_specify),
        cmocka_unit_test(test_quantity_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
