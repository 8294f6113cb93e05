/* tests/unit/test_metadata_view.c - the metadata view of metadata
 * informers (skiff_metadata_view, core/controller/metadata_view.c): what a
 * reader of owners and deletion state needs is kept, data, spec, status and
 * the rest of the metadata are dropped, and the received object is left as
 * it was, not even referenced. */
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

static json_t *config_map(void)
{
    json_error_t err;
    json_t *o = json_loads(
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
        " \"metadata\":{\"name\":\"settings\",\"namespace\":\"web\",\"uid\":\"u-1\","
        "  \"resourceVersion\":\"42\",\"generation\":3,"
        "  \"creationTimestamp\":\"2026-01-01T00:00:00Z\","
        "  \"deletionTimestamp\":\"2026-01-01T00:05:00Z\",\"deletionGracePeriodSeconds\":0,"
        "  \"labels\":{\"app\":\"web\"},\"annotations\":{\"a\":\"b\"},"
        "  \"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
        "   \"name\":\"web\",\"uid\":\"d-1\",\"controller\":true,\"blockOwnerDeletion\":true}],"
        "  \"finalizers\":[\"foregroundDeletion\"],"
        "  \"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Update\"}]},"
        " \"data\":{\"big\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},"
        " \"spec\":{\"a\":1},\"status\":{\"b\":2}}",
        0, &err);
    assert_non_null(o);
    return o;
}

static void test_keeps_owners_and_deletion_state(void **state)
{
    (void)state;
    json_t *o = config_map();
    json_t *v = skiff_metadata_view(NULL, o);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "apiVersion")), "v1");
    assert_string_equal(json_string_value(json_object_get(v, "kind")), "ConfigMap");
    json_t *m = json_object_get(v, "metadata"), *om = json_object_get(o, "metadata");
    static const char *const kept[] = {"name", "namespace", "uid", "resourceVersion",
                                       "deletionTimestamp", "deletionGracePeriodSeconds",
                                       "ownerReferences", "finalizers"};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        if (!json_object_get(m, kept[i])) fail_msg("metadata.%s was dropped", kept[i]);
        assert_true(json_equal(json_object_get(m, kept[i]), json_object_get(om, kept[i])));
    }
    assert_int_equal(json_object_size(m), sizeof kept / sizeof *kept);
    /* nothing but apiVersion, kind and metadata */
    assert_int_equal(json_object_size(v), 3);
    json_decref(v);
    json_decref(o);
}

static void test_copies_and_leaves_input_alone(void **state)
{
    (void)state;
    json_t *o = config_map();
    json_t *before = json_deep_copy(o);
    json_t *refs = json_object_get(json_object_get(o, "metadata"), "ownerReferences");
    size_t refcount = refs->refcount;
    json_t *v = skiff_metadata_view(NULL, o);
    assert_non_null(v);
    assert_true(json_equal(o, before));
    /* a copy, not a reference: the received tree is shared with the API
     * server's threads */
    assert_int_equal(refs->refcount, refcount);
    assert_ptr_not_equal(json_object_get(json_object_get(v, "metadata"), "ownerReferences"), refs);
    json_decref(v);
    json_decref(before);
    json_decref(o);
}

static void test_minimal_and_odd_objects(void **state)
{
    (void)state;
    /* no metadata at all: apiVersion and kind, an empty metadata */
    json_t *o = json_pack("{s:s, s:s}", "apiVersion", "v1", "kind", "Secret");
    json_t *v = skiff_metadata_view(NULL, o);
    assert_non_null(v);
    assert_int_equal(json_object_size(json_object_get(v, "metadata")), 0);
    json_decref(v);
    json_decref(o);
    /* null members are absent members */
    o = json_pack("{s:{s:s, s:n}}", "metadata", "name", "x", "deletionTimestamp");
    v = skiff_metadata_view(NULL, o);
    assert_non_null(v);
    assert_null(json_object_get(json_object_get(v, "metadata"), "deletionTimestamp"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "metadata"), "name")),
                        "x");
    json_decref(v);
    json_decref(o);
    /* not an object: handed back as it is */
    o = json_string("odd");
    v = skiff_metadata_view(NULL, o);
    assert_ptr_equal(v, o);
    json_decref(v);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_owners_and_deletion_state),
        cmocka_unit_test(test_copies_and_leaves_input_alone),
        cmocka_unit_test(test_minimal_and_odd_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
