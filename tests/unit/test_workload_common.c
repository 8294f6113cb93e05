/* tests/unit/test_workload_common.c - the helpers the DaemonSet and
 * StatefulSet controllers share (plugins/controllers/common/workload.c):
 * IntOrString scaling as Kubernetes rounds it, natural name order
 * ("web-10" after "web-9"), and ControllerRevision data, templates,
 * numbering and objects in the form kubectl rollout reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../plugins/controllers/common/workload.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v) fail_msg("bad test JSON (%s): %s", e.text, text);
    return v;
}

static int scaled(const char *v, int total, int up)
{
    json_t *j = J(v);
    int n = wl_int_or_percent(j, total, up, -7);
    json_decref(j);
    return n;
}

static void test_int_or_percent(void **state)
{
    assert_int_equal(scaled("2", 10, 1), 2);
    assert_int_equal(scaled("\"25%\"", 10, 1), 3); /* 2.5 rounded up */
    assert_int_equal(scaled("\"25%\"", 10, 0), 2); /* and down */
    assert_int_equal(scaled("\"100%\"", 3, 0), 3);
    assert_int_equal(scaled("\"0%\"", 3, 1), 0);
    assert_int_equal(scaled("\"3\"", 10, 1), 3);
    assert_int_equal(scaled("\"x%\"", 10, 1), -7);
    assert_int_equal(scaled("\"5%%\"", 10, 1), -7);
    assert_int_equal(wl_int_or_percent(NULL, 10, 1, 1), 1);
}

static void test_sort_by_name(void **state)
{
    json_t *arr = J("[{\"metadata\":{\"name\":\"web-10\"}},{\"metadata\":{\"name\":\"web-9\"}},"
                    "{\"metadata\":{\"name\":\"web-0\"}},{\"metadata\":{\"name\":\"web-1\"}}]");
    wl_sort_by_name(arr);
    const char *want[] = {"web-0", "web-1", "web-9", "web-10"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(wl_str(json_array_get(arr, i), "metadata", "name"), want[i]);
    json_decref(arr);
}

static void test_revision_data(void **state)
{
    json_t *tmpl = J("{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":"
                     "[{\"name\":\"main\",\"image\":\"web:1\"}]}}");
    json_t *data = wl_revision_data(tmpl);
    /* the strategic merge patch kubectl rollout undo applies */
    assert_string_equal(wl_str(wl_get(data, "spec", "template"), "$patch", NULL), "replace");
    json_t *owner = J("{\"metadata\":{\"name\":\"web\",\"namespace\":\"ns\",\"uid\":\"u-1\","
                      "\"annotations\":{\"kubernetes.io/change-cause\":\"v1\","
                      "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}}}");
    json_t *cr = wl_revision_new(owner, "apps/v1", "StatefulSet", tmpl, data, 4, "abc12");
    assert_string_equal(wl_str(cr, "metadata", "name"), "web-abc12");
    assert_string_equal(wl_str(cr, "metadata", "namespace"), "ns");
    assert_int_equal(wl_int(cr, "revision", NULL, 0), 4);
    json_t *labels = wl_get(cr, "metadata", "labels");
    assert_string_equal(wl_str(labels, "app", NULL), "web");
    assert_string_equal(wl_str(labels, "controller-revision-hash", NULL), "abc12");
    json_t *ann = wl_get(cr, "metadata", "annotations");
    assert_string_equal(wl_str(ann, "kubernetes.io/change-cause", NULL), "v1");
    assert_null(json_object_get(ann, "kubectl.kubernetes.io/last-applied-configuration"));
    json_t *ref = json_array_get(wl_get(cr, "metadata", "ownerReferences"), 0);
    assert_string_equal(wl_str(ref, "kind", NULL), "StatefulSet");
    assert_string_equal(wl_str(ref, "uid", NULL), "u-1");
    assert_true(json_is_true(json_object_get(ref, "controller")));
    /* the template comes back without the directive */
    json_t *back = wl_revision_template(cr);
    assert_true(json_equal(back, tmpl));
    json_decref(back);

    /* numbering and finding an equal revision among sorted ones */
    json_t *sorted = json_array();
    assert_int_equal(wl_revision_next(sorted), 1);
    json_t *other = J("{\"data\":{\"spec\":{\"template\":{\"$patch\":\"replace\"}}},\"revision\":2}");
    json_array_append_new(sorted, other);
    json_array_append(sorted, cr);
    assert_int_equal(wl_revision_next(sorted), 5);
    assert_ptr_equal(wl_revision_find_equal(sorted, data), cr);
    json_t *data2 = J("{\"spec\":{\"template\":{\"x\":1}}}");
    assert_null(wl_revision_find_equal(sorted, data2));
    json_decref(data2);
    json_decref(sorted);
    json_decref(cr);
    json_decref(owner);
    json_decref(data);
    json_decref(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_or_percent),
        cmocka_unit_test(test_sort_by_name),
        cmocka_unit_test(test_revision_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
