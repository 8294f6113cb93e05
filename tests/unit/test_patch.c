/* tests/unit/test_patch.c - JSON patch, JSON merge patch and strategic merge patch.
 *
 * JSON patch and merge patch cases cover every operation and error of RFC
 * 6902 and the merge rules of RFC 7386; strategic merge cases use small
 * hand-built schemas shaped like the Kubernetes types, plus the real
 * Deployment schema for the sequences `kubectl apply` and `kubectl patch` send. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "object/patch.h"
#include "object/schema.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    return v;
}

static void assert_json_eq(json_t *got, const char *want_text)
{
    json_t *want = J(want_text);
    if (!got || !json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", g ? g : "(null)", w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* Applies a JSON patch and checks the result; the input must stay unchanged. */
static void check_json_patch(const char *doc_text, const char *patch_text, const char *want)
{
    json_t *doc = J(doc_text), *patch = J(patch_text), *orig = json_deep_copy(doc);
    char err[256] = "";
    json_t *out = patch_json_apply(doc, patch, err, sizeof(err));
    if (!out)
        print_error("error: %s\n", err);
    assert_json_eq(out, want);
    assert_true(json_equal(doc, orig));
    json_decref(out);
    json_decref(doc);
    json_decref(patch);
    json_decref(orig);
}

/* Applies a JSON patch that must fail; checks the message and the 400/422 split. */
static void check_json_patch_fails(const char *doc_text, const char *patch_text,
                                   const char *msg_part, int invalid_patch)
{
    json_t *doc = J(doc_text), *patch = J(patch_text);
    char err[256] = "";
    json_t *out = patch_json_apply(doc, patch, err, sizeof(err));
    assert_null(out);
    if (!strstr(err, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", err, msg_part);
    assert_int_equal(patch_last_error_is_invalid_patch(), invalid_patch);
    json_decref(doc);
    json_decref(patch);
}

/* ---- JSON patch -------------------------------------------------------- */

static void test_json_add(void **state)
{
    check_json_patch("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\",\"value\":{\"c\":[1]}}]",
                     "{\"a\":1,\"b\":{\"c\":[1]}}");
    /* add on an existing member replaces it */
    check_json_patch("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":2}]", "{\"a\":2}");
    /* insert before an index, at the end by size, and with "-" */
    check_json_patch("{\"l\":[\"x\",\"z\"]}",
                     "[{\"op\":\"add\",\"path\":\"/l/1\",\"value\":\"y\"},"
                     "{\"op\":\"add\",\"path\":\"/l/3\",\"value\":\"end\"},"
                     "{\"op\":\"add\",\"path\":\"/l/-\",\"value\":\"last\"}]",
                     "{\"l\":[\"x\",\"y\",\"z\",\"end\",\"last\"]}");
    /* the empty pointer is the whole document */
    check_json_patch("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":[1,2]}]", "[1,2]");
    /* ~1 is '/', ~0 is '~', and "~01" is "~1" literally */
    check_json_patch("{}",
                     "[{\"op\":\"add\",\"path\":\"/a~1b\",\"value\":1},"
                     "{\"op\":\"add\",\"path\":\"/m~0n\",\"value\":2},"
                     "{\"op\":\"add\",\"path\":\"/~01\",\"value\":3}]",
                     "{\"a/b\":1,\"m~n\":2,\"~1\":3}");
}

static void test_json_add_errors(void **state)
{
    check_json_patch_fails("{\"a\":{}}",
                           "[{\"op\":\"test\",\"path\":\"/a\",\"value\":{}},"
                           "{\"op\":\"add\",\"path\":\"/x/y\",\"value\":1}]",
                           "json patch operation 1 (add): path \"/x/y\" does not exist", 0);
    check_json_patch_fails("{\"l\":[1]}", "[{\"op\":\"add\",\"path\":\"/l/3\",\"value\":1}]",
                           "out of range", 0);
    /* a leading zero is not an array index */
    check_json_patch_fails("{\"l\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/l/01\",\"value\":1}]",
                           "operation 0 (add)", 0);
    check_json_patch_fails("{\"s\":\"str\"}", "[{\"op\":\"add\",\"path\":\"/s/x\",\"value\":1}]",
                           "path \"/s/x\" does not exist", 0);
}

static void test_json_remove(void **state)
{
    check_json_patch("{\"metadata\":{\"labels\":{\"x\":\"1\",\"y\":\"2\"}}}",
                     "[{\"op\":\"remove\",\"path\":\"/metadata/labels/x\"}]",
                     "{\"metadata\":{\"labels\":{\"y\":\"2\"}}}");
    check_json_patch("{\"l\":[1,2,3]}", "[{\"op\":\"remove\",\"path\":\"/l/1\"}]",
                     "{\"l\":[1,3]}");
    check_json_patch_fails("{\"metadata\":{\"labels\":{}}}",
                           "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},"
                           "{\"op\":\"add\",\"path\":\"/b\",\"value\":1},"
                           "{\"op\":\"remove\",\"path\":\"/metadata/labels/x\"}]",
                           "json patch operation 2 (remove): path \"/metadata/labels/x\" does not "
                           "exist",
                           0);
    check_json_patch_fails("{\"l\":[1]}", "[{\"op\":\"remove\",\"path\":\"/l/1\"}]",
                           "path \"/l/1\" does not exist", 0);
    check_json_patch_fails("{\"l\":[1]}", "[{\"op\":\"remove\",\"path\":\"/l/-\"}]",
                           "does not exist", 0);
    check_json_patch_fails("{}", "[{\"op\":\"remove\",\"path\":\"\"}]", "whole document", 0);
}

static void test_json_replace(void **state)
{
    check_json_patch("{\"spec\":{\"replicas\":1}}",
                     "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":3}]",
                     "{\"spec\":{\"replicas\":3}}");
    check_json_patch("{\"l\":[\"a\",\"b\"]}",
                     "[{\"op\":\"replace\",\"path\":\"/l/0\",\"value\":\"c\"}]",
                     "{\"l\":[\"c\",\"b\"]}");
    check_json_patch("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"b\":2}}]",
                     "{\"b\":2}");
    check_json_patch_fails("{\"spec\":{}}",
                           "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":3}]",
                           "operation 0 (replace): path \"/spec/replicas\" does not exist", 0);
    check_json_patch_fails("{\"l\":[]}", "[{\"op\":\"replace\",\"path\":\"/l/0\",\"value\":3}]",
                           "path \"/l/0\" does not exist", 0);
}

static void test_json_move(void **state)
{
    check_json_patch("{\"a\":{\"b\":1},\"c\":{}}",
                     "[{\"op\":\"move\",\"from\":\"/a/b\",\"path\":\"/c/d\"}]",
                     "{\"a\":{},\"c\":{\"d\":1}}");
    /* within an array: remove first, then insert at the new index */
    check_json_patch("{\"l\":[1,2,3,4]}", "[{\"op\":\"move\",\"from\":\"/l/0\",\"path\":\"/l/3\"}]",
                     "{\"l\":[2,3,4,1]}");
    check_json_patch("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]",
                     "{\"a\":1}");
    check_json_patch_fails("{\"a\":{\"b\":1}}",
                           "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]",
                           "its own child", 0);
    check_json_patch_fails("{}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/y\"}]",
                           "operation 0 (move): from \"/x\" does not exist", 0);
}

static void test_json_copy(void **state)
{
    check_json_patch("{\"a\":{\"b\":[1]}}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"}]",
                     "{\"a\":{\"b\":[1]},\"c\":{\"b\":[1]}}");
    /* the copy is deep: changing it leaves the source alone */
    check_json_patch("{\"a\":{\"b\":1}}",
                     "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"},"
                     "{\"op\":\"replace\",\"path\":\"/c/b\",\"value\":2}]",
                     "{\"a\":{\"b\":1},\"c\":{\"b\":2}}");
    check_json_patch_fails("{}", "[{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/y\"}]",
                           "from \"/x\" does not exist", 0);
}

static void test_json_test(void **state)
{
    check_json_patch("{\"a\":{\"b\":[1,\"x\",null]},\"n\":1}",
                     "[{\"op\":\"test\",\"path\":\"/a\",\"value\":{\"b\":[1,\"x\",null]}},"
                     "{\"op\":\"test\",\"path\":\"/n\",\"value\":1.0}]",
                     "{\"a\":{\"b\":[1,\"x\",null]},\"n\":1}");
    check_json_patch_fails("{\"metadata\":{\"resourceVersion\":\"5\"}}",
                           "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\","
                           "\"value\":\"4\"}]",
                           "operation 0 (test): value at path \"/metadata/resourceVersion\" is "
                           "\"5\", not \"4\"",
                           0);
    check_json_patch_fails("{}", "[{\"op\":\"test\",\"path\":\"/x\",\"value\":1}]",
                           "path \"/x\" does not exist", 0);
    /* a later failure discards the earlier operations: the whole patch is atomic */
    json_t *doc = J("{\"a\":1}");
    json_t *patch = J("[{\"op\":\"replace\",\"path\":\"/a\",\"value\":2},"
                      "{\"op\":\"test\",\"path\":\"/a\",\"value\":1}]");
    char err[200];
    assert_null(patch_json_apply(doc, patch, err, sizeof(err)));
    assert_int_equal(json_integer_value(json_object_get(doc, "a")), 1);
    json_decref(doc);
    json_decref(patch);
}

static void test_json_malformed(void **state)
{
    check_json_patch_fails("{}", "{\"op\":\"add\"}", "must be a JSON array", 1);
    check_json_patch_fails("{}", "[1]", "operation 0: must be an object", 1);
    check_json_patch_fails("{}", "[{\"path\":\"/a\"}]", "missing \"op\"", 1);
    check_json_patch_fails("{}", "[{\"op\":\"frob\",\"path\":\"/a\"}]", "unknown op \"frob\"", 1);
    check_json_patch_fails("{}", "[{\"op\":\"add\",\"value\":1}]", "missing \"path\"", 1);
    check_json_patch_fails("{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", "missing \"value\"", 1);
    check_json_patch_fails("{}", "[{\"op\":\"copy\",\"path\":\"/a\"}]", "missing \"from\"", 1);
    check_json_patch_fails("{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]",
                           "invalid JSON pointer \"a\"", 1);
    check_json_patch_fails("{}", "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]",
                           "invalid JSON pointer", 1);
    /* a later success resets the flag */
    check_json_patch("{}", "[]", "{}");
    assert_int_equal(patch_last_error_is_invalid_patch(), 0);
}

/* ---- JSON merge patch -------------------------------------------------- */

static void check_merge(const char *doc_text, const char *patch_text, const char *want)
{
    json_t *doc = J(doc_text), *patch = J(patch_text), *orig = json_deep_copy(doc);
    char err[200] = "";
    json_t *out = patch_merge_apply(doc, patch, err, sizeof(err));
    assert_json_eq(out, want);
    assert_true(json_equal(doc, orig));
    json_decref(out);
    json_decref(doc);
    json_decref(patch);
    json_decref(orig);
}

static void test_merge_rfc7386(void **state)
{
    check_merge("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check_merge("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    check_merge("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
    check_merge("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check_merge("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
    check_merge("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
                "{\"a\":{\"b\":\"d\"}}");
    /* arrays replace, never merge */
    check_merge("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    check_merge("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
    check_merge("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
    check_merge("{\"a\":\"foo\"}", "null", "null");
    check_merge("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
    /* null inside a new object is not kept */
    check_merge("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
    check_merge("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    check_merge("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
    /* a whole document, as `kubectl patch --type merge` sends */
    check_merge("{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":"
                "\"Doe\"},\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
                "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\",\"author\":{"
                "\"familyName\":null},\"tags\":[\"example\"]}",
                "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
                "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}");
}

static void test_merge_errors(void **state)
{
    char err[200] = "";
    json_t *doc = J("{}");
    assert_null(patch_merge_apply(doc, NULL, err, sizeof(err)));
    assert_int_equal(patch_last_error_is_invalid_patch(), 1);
    assert_true(strlen(err) > 0);
    json_decref(doc);
}

/* ---- strategic merge patch, hand-built schemas ------------------------- */

static const schema_type_t t_string = {.kind = SCHEMA_STRING};
static const schema_type_t t_int = {.kind = SCHEMA_INTEGER};
static const schema_type_t t_any = {.kind = SCHEMA_ANY};
static const schema_type_t t_strings = {.kind = SCHEMA_ARRAY, .elem = &t_string};
static const schema_type_t t_strmap = {.kind = SCHEMA_MAP, .elem = &t_string};

static const schema_field_t f_env[] = {
    {.name = "name", .type = &t_string},
    {.name = "value", .type = &t_string},
};
static const schema_type_t t_env = {.kind = SCHEMA_OBJECT, .fields = f_env, .nfields = 2};
static const schema_type_t t_envs = {.kind = SCHEMA_ARRAY, .elem = &t_env};

static const schema_field_t f_port[] = {
    {.name = "containerPort", .type = &t_int},
    {.name = "name", .type = &t_string},
    {.name = "protocol", .type = &t_string},
};
static const schema_type_t t_port = {.kind = SCHEMA_OBJECT, .fields = f_port, .nfields = 3};
static const schema_type_t t_ports = {.kind = SCHEMA_ARRAY, .elem = &t_port};

static const schema_field_t f_container[] = {
    {.name = "args", .type = &t_strings},
    {.name = "env", .type = &t_envs, .patch_strategy = "merge", .patch_merge_key = "name"},
    {.name = "image", .type = &t_string},
    {.name = "name", .type = &t_string},
    {.name = "ports", .type = &t_ports, .patch_strategy = "merge",
     .patch_merge_key = "containerPort"},
};
static const schema_type_t t_container = {.kind = SCHEMA_OBJECT, .fields = f_container,
                                          .nfields = 5};
static const schema_type_t t_containers = {.kind = SCHEMA_ARRAY, .elem = &t_container};

static const schema_field_t f_volume[] = {
    {.name = "configMap", .type = &t_any},
    {.name = "emptyDir", .type = &t_any},
    {.name = "name", .type = &t_string},
};
static const schema_type_t t_volume = {.kind = SCHEMA_OBJECT, .fields = f_volume, .nfields = 3};
static const schema_type_t t_volumes = {.kind = SCHEMA_ARRAY, .elem = &t_volume};

static const schema_field_t f_podspec[] = {
    {.name = "containers", .type = &t_containers, .patch_strategy = "merge",
     .patch_merge_key = "name"},
    {.name = "nodeSelector", .type = &t_strmap},
    {.name = "volumes", .type = &t_volumes, .patch_strategy = "merge,retainKeys",
     .patch_merge_key = "name"},
};
static const schema_type_t t_podspec = {.kind = SCHEMA_OBJECT, .fields = f_podspec, .nfields = 3};

static const schema_field_t f_meta[] = {
    {.name = "annotations", .type = &t_strmap},
    {.name = "finalizers", .type = &t_strings, .patch_strategy = "merge"},
    {.name = "labels", .type = &t_strmap},
    {.name = "name", .type = &t_string},
};
static const schema_type_t t_meta = {.kind = SCHEMA_OBJECT, .fields = f_meta, .nfields = 4};

static const schema_field_t f_template[] = {
    {.name = "metadata", .type = &t_meta},
    {.name = "spec", .type = &t_podspec},
};
static const schema_type_t t_template = {.kind = SCHEMA_OBJECT, .fields = f_template,
                                         .nfields = 2};

static const schema_field_t f_strategy[] = {
    {.name = "rollingUpdate", .type = &t_any},
    {.name = "type", .type = &t_string},
};
static const schema_type_t t_strategy = {.kind = SCHEMA_OBJECT, .fields = f_strategy,
                                         .nfields = 2};

static const schema_field_t f_dspec[] = {
    {.name = "replicas", .type = &t_int},
    {.name = "strategy", .type = &t_strategy, .patch_strategy = "retainKeys"},
    {.name = "template", .type = &t_template},
};
static const schema_type_t t_dspec = {.kind = SCHEMA_OBJECT, .fields = f_dspec, .nfields = 3};

static const schema_field_t f_deploy[] = {
    {.name = "metadata", .type = &t_meta},
    {.name = "spec", .type = &t_dspec},
};
static const schema_type_t t_deploy = {.kind = SCHEMA_OBJECT, .fields = f_deploy, .nfields = 2};

static const schema_field_t f_pod[] = {
    {.name = "metadata", .type = &t_meta},
    {.name = "spec", .type = &t_podspec},
};
static const schema_type_t t_pod = {.kind = SCHEMA_OBJECT, .fields = f_pod, .nfields = 2};

/* 1 when any object key in v starts with a strategic merge directive prefix. */
static int has_directive(const json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) {
            if (k[0] == '$' || has_directive(c))
                return 1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            if (has_directive(c))
                return 1;
        }
    }
    return 0;
}

static void check_smp(const schema_type_t *t, const char *doc_text, const char *patch_text,
                      const char *want)
{
    json_t *doc = J(doc_text), *patch = J(patch_text), *orig = json_deep_copy(doc);
    char err[256] = "";
    json_t *out = patch_strategic_apply(doc, patch, t, err, sizeof(err));
    if (!out)
        print_error("error: %s\n", err);
    assert_json_eq(out, want);
    assert_false(has_directive(out));
    assert_true(json_equal(doc, orig));
    json_decref(out);
    json_decref(doc);
    json_decref(patch);
    json_decref(orig);
}

static void check_smp_fails(const schema_type_t *t, const char *doc_text, const char *patch_text,
                            const char *msg_part, int invalid_patch)
{
    json_t *doc = J(doc_text), *patch = J(patch_text);
    char err[256] = "";
    assert_null(patch_strategic_apply(doc, patch, t, err, sizeof(err)));
    if (!strstr(err, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", err, msg_part);
    assert_int_equal(patch_last_error_is_invalid_patch(), invalid_patch);
    json_decref(doc);
    json_decref(patch);
}

#define DEPLOY_V1                                                                            \
    "{\"metadata\":{\"name\":\"web\",\"labels\":{\"app\":\"web\"},\"annotations\":{"         \
    "\"kubectl.kubernetes.io/last-applied-configuration\":\"v1\"}},"                         \
    "\"spec\":{\"replicas\":2,\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"     \
    "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.24\",\"env\":["         \
    "{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"},{\"name\":\"C\","     \
    "\"value\":\"3\"}]},{\"name\":\"sidecar\",\"image\":\"busybox\"}]}}}}"

/* The patch `kubectl apply` computes when the image, one env var and the
 * replica count change in the applied file. */
static void test_smp_kubectl_reapply(void **state)
{
    check_smp(&t_deploy, DEPLOY_V1,
              "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
              "\"v2\"}},\"spec\":{\"replicas\":3,\"template\":{\"spec\":{"
              "\"$setElementOrder/containers\":[{\"name\":\"app\"},{\"name\":\"sidecar\"}],"
              "\"containers\":[{\"$setElementOrder/env\":[{\"name\":\"A\"},{\"name\":\"C\"}],"
              "\"env\":[{\"$patch\":\"delete\",\"name\":\"B\"}],\"image\":\"nginx:1.25\","
              "\"name\":\"app\"}]}}}}",
              "{\"metadata\":{\"name\":\"web\",\"labels\":{\"app\":\"web\"},\"annotations\":{"
              "\"kubectl.kubernetes.io/last-applied-configuration\":\"v2\"}},"
              "\"spec\":{\"replicas\":3,\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
              "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.25\",\"env\":["
              "{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"C\",\"value\":\"3\"}]},"
              "{\"name\":\"sidecar\",\"image\":\"busybox\"}]}}}}");
}

static void test_smp_add_port_and_container(void **state)
{
    check_smp(&t_pod,
              "{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"x\",\"ports\":["
              "{\"containerPort\":80}]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"app\",\"ports\":[{\"containerPort\":8080,"
              "\"name\":\"alt\"}]},{\"name\":\"new\",\"image\":\"y\",\"$setElementOrder/env\":"
              "[{\"name\":\"E\"}],\"env\":[{\"name\":\"E\",\"value\":\"1\"},"
              "{\"name\":\"GONE\",\"$patch\":\"delete\"}]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"x\",\"ports\":["
              "{\"containerPort\":80},{\"containerPort\":8080,\"name\":\"alt\"}]},"
              "{\"name\":\"new\",\"image\":\"y\",\"env\":[{\"name\":\"E\",\"value\":\"1\"}]}]}}");
    /* changing an existing port merges that item only */
    check_smp(&t_pod,
              "{\"spec\":{\"containers\":[{\"name\":\"app\",\"ports\":[{\"containerPort\":80,"
              "\"protocol\":\"TCP\"}]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"app\",\"ports\":[{\"containerPort\":80,"
              "\"name\":\"http\",\"protocol\":null}]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"app\",\"ports\":[{\"containerPort\":80,"
              "\"name\":\"http\"}]}]}}");
}

static void test_smp_remove_label_and_maps(void **state)
{
    check_smp(&t_pod, "{\"metadata\":{\"labels\":{\"app\":\"web\",\"tier\":\"fe\"}}}",
              "{\"metadata\":{\"labels\":{\"tier\":null}}}",
              "{\"metadata\":{\"labels\":{\"app\":\"web\"}}}");
    /* $patch: replace on a map replaces it */
    check_smp(&t_pod, "{\"metadata\":{\"labels\":{\"app\":\"web\",\"tier\":\"fe\"}}}",
              "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"x\":\"1\"}}}",
              "{\"metadata\":{\"labels\":{\"x\":\"1\"}}}");
    /* $patch: delete on a map removes it */
    check_smp(&t_deploy, "{\"spec\":{\"replicas\":1,\"strategy\":{\"type\":\"Recreate\"}}}",
              "{\"spec\":{\"strategy\":{\"$patch\":\"delete\"}}}", "{\"spec\":{\"replicas\":1}}");
    /* $patch: merge is the default */
    check_smp(&t_pod, "{\"metadata\":{\"labels\":{\"a\":\"1\"}}}",
              "{\"metadata\":{\"labels\":{\"$patch\":\"merge\",\"b\":\"2\"}}}",
              "{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}");
}

static void test_smp_set_element_order(void **state)
{
    const char *doc = "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"},"
                      "{\"name\":\"c\"},{\"name\":\"d\"}]}}";
    /* the named items come first in the given order; the others follow */
    check_smp(&t_pod, doc,
              "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"c\"},{\"name\":\"a\"}],"
              "\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"},{\"name\":\"a\"},"
              "{\"name\":\"b\"},{\"name\":\"d\"}]}}");
    /* an order alone reorders, and a new item lands where the order says */
    check_smp(&t_pod, doc,
              "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"d\"},{\"name\":\"n\"},"
              "{\"name\":\"b\"}],\"containers\":[{\"name\":\"n\"}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"d\"},{\"name\":\"n\"},{\"name\":\"b\"},"
              "{\"name\":\"a\"},{\"name\":\"c\"}]}}");
    /* entries match by the merge key alone when the schema declares one */
    check_smp(&t_pod,
              "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":80},"
              "{\"containerPort\":443}]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"a\",\"$setElementOrder/ports\":["
              "{\"containerPort\":443,\"protocol\":\"TCP\"},{\"containerPort\":80,"
              "\"protocol\":\"TCP\"}]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":443},"
              "{\"containerPort\":80}]}]}}");
    /* primitive lists take the order as values */
    check_smp(&t_pod, "{\"metadata\":{\"finalizers\":[\"x\",\"y\"]}}",
              "{\"metadata\":{\"$setElementOrder/finalizers\":[\"z\",\"y\",\"x\"],"
              "\"finalizers\":[\"z\"]}}",
              "{\"metadata\":{\"finalizers\":[\"z\",\"y\",\"x\"]}}");
}

static void test_smp_retain_keys(void **state)
{
    check_smp(&t_deploy,
              "{\"spec\":{\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{"
              "\"maxSurge\":1}}}}",
              "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\"}}}",
              "{\"spec\":{\"strategy\":{\"type\":\"Recreate\"}}}");
    /* inside a merged list item: a volume switching source */
    check_smp(&t_pod,
              "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}},{\"name\":\"w\","
              "\"emptyDir\":{}}]}}",
              "{\"spec\":{\"volumes\":[{\"$retainKeys\":[\"configMap\",\"name\"],\"name\":\"v\","
              "\"configMap\":{\"name\":\"cm\"}}]}}",
              "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"configMap\":{\"name\":\"cm\"}},"
              "{\"name\":\"w\",\"emptyDir\":{}}]}}");
    check_smp_fails(&t_deploy, "{\"spec\":{}}",
                    "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\","
                    "\"rollingUpdate\":{}}}}",
                    "spec.strategy: field \"rollingUpdate\" is set but not listed in $retainKeys",
                    0);
    check_smp_fails(&t_deploy, "{}", "{\"spec\":{\"strategy\":{\"$retainKeys\":\"type\"}}}",
                    "$retainKeys must be a list", 1);
}

static void test_smp_list_replace_and_delete(void **state)
{
    const char *doc = "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"1\"},"
                      "{\"name\":\"b\"}]}}";
    check_smp(&t_pod, doc,
              "{\"spec\":{\"containers\":[{\"$patch\":\"replace\"},{\"name\":\"z\",\"env\":["
              "{\"name\":\"E\",\"value\":null}]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"z\",\"env\":[{\"name\":\"E\"}]}]}}");
    check_smp(&t_pod, doc, "{\"spec\":{\"containers\":[{\"$patch\":\"delete\",\"name\":\"a\"}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"b\"}]}}");
    /* deleting an item that is not there is not an error */
    check_smp(&t_pod, doc, "{\"spec\":{\"containers\":[{\"$patch\":\"delete\",\"name\":\"q\"}]}}",
              doc);
    /* an empty list with merge strategy changes nothing; null deletes the field */
    check_smp(&t_pod, doc, "{\"spec\":{\"containers\":[]}}", doc);
    check_smp(&t_pod, doc, "{\"spec\":{\"containers\":null}}", "{\"spec\":{}}");
    /* lists without a merge strategy are replaced */
    check_smp(&t_pod, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"x\",\"y\"]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"z\"]}]}}",
              "{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"z\"]}]}}");
}

static void test_smp_primitive_lists(void **state)
{
    check_smp(&t_pod, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
              "{\"metadata\":{\"finalizers\":[\"b\",\"c\",\"c\"]}}",
              "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}");
    check_smp(&t_pod, "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}",
              "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\",\"c\"]}}",
              "{\"metadata\":{\"finalizers\":[\"b\"]}}");
    /* delete and add in one patch, as kubectl apply sends */
    check_smp(&t_pod, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
              "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\"],"
              "\"$setElementOrder/finalizers\":[\"n\",\"b\"],\"finalizers\":[\"n\"]}}",
              "{\"metadata\":{\"finalizers\":[\"n\",\"b\"]}}");
    check_smp(&t_pod, "{\"metadata\":{}}",
              "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\"]}}",
              "{\"metadata\":{}}");
}

static void test_smp_without_schema(void **state)
{
    /* like a merge patch: lists replace, maps merge, null deletes, directives go */
    check_smp(NULL, "{\"a\":{\"b\":1,\"c\":2},\"l\":[1,2]}",
              "{\"a\":{\"c\":null,\"d\":{\"$patch\":\"replace\",\"e\":1}},\"l\":[3,"
              "{\"$patch\":\"delete\",\"x\":1},{\"k\":{\"$retainKeys\":[\"v\"],\"v\":1}}]}",
              "{\"a\":{\"b\":1,\"d\":{\"e\":1}},\"l\":[3,{\"k\":{\"v\":1}}]}");
    /* SCHEMA_ANY fields inside a typed object behave the same */
    check_smp(&t_pod, "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{\"medium\":\"M\"}}]}}",
              "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{\"sizeLimit\":\"1Gi\","
              "\"x\":[{\"$patch\":\"replace\"}]}}]}}",
              "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{\"medium\":\"M\","
              "\"sizeLimit\":\"1Gi\",\"x\":[]}}]}}");
    check_smp(NULL, "{\"a\":1}", "{\"$patch\":\"delete\"}", "{}");
    check_smp(NULL, "{\"a\":1}", "{\"$patch\":\"replace\",\"b\":2}", "{\"b\":2}");
}

static void test_smp_errors(void **state)
{
    check_smp_fails(&t_pod, "{}", "[1]", "must be a JSON object", 1);
    check_smp_fails(&t_pod, "{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
                    "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
                    "spec.containers: item 0 does not contain the declared merge key \"name\"", 1);
    check_smp_fails(&t_pod, "{}", "{\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":["
                                  "{\"value\":\"1\"}]}]}}",
                    "spec.containers[name=a].env: item 0 does not contain", 1);
    check_smp_fails(&t_pod, "{}", "{\"metadata\":{\"$patch\":\"frob\"}}",
                    "metadata: unknown $patch directive", 1);
    check_smp_fails(&t_pod, "{}", "{\"metadata\":{\"$setElementOrder/finalizers\":{}}}",
                    "must be a list", 1);
}

/* ---- strategic merge patch with the built-in schemas ------------------- */

static void test_smp_real_deployment(void **state)
{
    if (schema_load_builtin() != 0)
        fail_msg("schema_load_builtin failed");
    const schema_type_t *deploy = schema_lookup("io.k8s.api.apps.v1.Deployment");
    assert_non_null(deploy);
    check_smp(deploy, DEPLOY_V1,
              "{\"spec\":{\"replicas\":3,\"template\":{\"spec\":{"
              "\"$setElementOrder/containers\":[{\"name\":\"app\"},{\"name\":\"sidecar\"}],"
              "\"containers\":[{\"$setElementOrder/env\":[{\"name\":\"A\"},{\"name\":\"C\"}],"
              "\"env\":[{\"$patch\":\"delete\",\"name\":\"B\"}],\"image\":\"nginx:1.25\","
              "\"name\":\"app\",\"ports\":[{\"containerPort\":80}]}]}}}}",
              "{\"metadata\":{\"name\":\"web\",\"labels\":{\"app\":\"web\"},\"annotations\":{"
              "\"kubectl.kubernetes.io/last-applied-configuration\":\"v1\"}},"
              "\"spec\":{\"replicas\":3,\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
              "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.25\",\"env\":["
              "{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"C\",\"value\":\"3\"}],\"ports\":["
              "{\"containerPort\":80}]},{\"name\":\"sidecar\",\"image\":\"busybox\"}]}}}}");
    /* the Deployment strategy is retainKeys in the real schema too */
    check_smp(deploy,
              "{\"spec\":{\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{"
              "\"maxSurge\":1}}}}",
              "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\"}}}",
              "{\"spec\":{\"strategy\":{\"type\":\"Recreate\"}}}");
    /* ports merge by containerPort, labels drop with null */
    const schema_type_t *pod = schema_lookup("io.k8s.api.core.v1.Pod");
    assert_non_null(pod);
    check_smp(pod,
              "{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}},\"spec\":{\"containers\":["
              "{\"name\":\"c\",\"ports\":[{\"containerPort\":80}]}]}}",
              "{\"metadata\":{\"labels\":{\"b\":null}},\"spec\":{\"containers\":[{\"name\":\"c\","
              "\"ports\":[{\"containerPort\":443}]}]}}",
              "{\"metadata\":{\"labels\":{\"a\":\"1\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
              "\"ports\":[{\"containerPort\":80},{\"containerPort\":443}]}]}}");
    schema_unload();
}

/* ---- random documents and patches --------------------------------------- */

static unsigned rnd(unsigned *seed, unsigned n)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) % n;
}

/* A random value over the field names of the pod schema, and over the
 * directives too when directives is set (patches, not documents). */
static json_t *rand_value(unsigned *seed, int depth, int directives)
{
    static const char *keys[] = {"metadata", "labels", "spec", "containers", "name", "image",
                                 "env", "value", "ports", "containerPort", "finalizers",
                                 "volumes", "emptyDir", "$patch", "$retainKeys",
                                 "$setElementOrder/containers", "$setElementOrder/finalizers",
                                 "$deleteFromPrimitiveList/finalizers", "a"};
    static const char *strs[] = {"a", "b", "delete", "replace", "merge", "name", "image"};
    unsigned kind = rnd(seed, depth > 3 ? 4 : 7);
    switch (kind) {
    case 0: return json_string(strs[rnd(seed, 7)]);
    case 1: return json_integer(rnd(seed, 2) ? 80 : 443);
    case 2: return json_null();
    case 3: return json_true();
    case 4:
    case 5: {
        json_t *o = json_object();
        unsigned n = rnd(seed, 4);
        unsigned nkeys = sizeof(keys) / sizeof(keys[0]);
        for (unsigned i = 0; i < n; i++) {
            const char *k = keys[rnd(seed, nkeys)];
            if (!directives && k[0] == '$')
                k = "a";
            json_object_set_new(o, k, rand_value(seed, depth + 1, directives));
        }
        return o;
    }
    default: {
        json_t *l = json_array();
        unsigned n = rnd(seed, 4);
        for (unsigned i = 0; i < n; i++)
            json_array_append_new(l, rand_value(seed, depth + 1, directives));
        return l;
    }
    }
}

static void test_random_patches(void **state)
{
    static const char *paths[] = {"", "/metadata", "/metadata/labels/a", "/spec/containers/0",
                                  "/spec/containers/-", "/spec/containers/1/name", "/a~1b",
                                  "/spec", "/x/y", "/spec/containers/00", "/metadata/labels"};
    static const char *ops[] = {"add", "remove", "replace", "move", "copy", "test", "bad"};
    unsigned seed = 7;
    int smp_ok = 0, json_ok = 0;
    for (int n = 0; n < 3000; n++) {
        json_t *doc = json_object();
        json_object_set_new(doc, "metadata", rand_value(&seed, 1, 0));
        json_object_set_new(doc, "spec", rand_value(&seed, 1, 0));
        json_t *orig = json_deep_copy(doc);
        char err[256];

        /* strategic: never a directive in the result, the input untouched */
        json_t *patch = json_object();
        json_object_set_new(patch, "spec", rand_value(&seed, 1, 1));
        json_object_set_new(patch, rnd(&seed, 2) ? "metadata" : "$patch", rand_value(&seed, 1, 1));
        err[0] = '\0';
        json_t *out = patch_strategic_apply(doc, patch, &t_pod, err, sizeof(err));
        if (out) {
            smp_ok++;
            if (has_directive(out)) {
                char *d = json_dumps(patch, JSON_COMPACT);
                char *o = json_dumps(out, JSON_COMPACT);
                print_error("patch %s\nresult %s\n", d, o);
                free(d);
                free(o);
                fail();
            }
        } else {
            assert_true(strlen(err) > 0);
        }
        json_decref(out);
        assert_true(json_equal(doc, orig));

        /* merge patch: applying twice is the same as once (RFC 7386 is idempotent) */
        out = patch_merge_apply(doc, patch, err, sizeof(err));
        assert_non_null(out);
        json_t *twice = patch_merge_apply(out, patch, err, sizeof(err));
        assert_true(json_equal(out, twice));
        json_decref(out);
        json_decref(twice);
        json_decref(patch);

        /* JSON patch: fails cleanly or succeeds; the input is untouched */
        patch = json_array();
        unsigned nops = 1 + rnd(&seed, 3);
        for (unsigned i = 0; i < nops; i++) {
            json_t *op = json_object();
            json_object_set_new(op, "op", json_string(ops[rnd(&seed, 7)]));
            json_object_set_new(op, "path", json_string(paths[rnd(&seed, 11)]));
            json_object_set_new(op, "from", json_string(paths[rnd(&seed, 11)]));
            json_object_set_new(op, "value", rand_value(&seed, 2, 0));
            json_array_append_new(patch, op);
        }
        err[0] = '\0';
        out = patch_json_apply(doc, patch, err, sizeof(err));
        if (!out)
            assert_true(strlen(err) > 0);
        else
            json_ok++;
        json_decref(out);
        assert_true(json_equal(doc, orig));
        json_decref(patch);
        json_decref(doc);
        json_decref(orig);
    }
    /* the inputs must reach the success paths, not only the errors */
    print_message("strategic ok %d/3000, json patch ok %d/3000\n", smp_ok, json_ok);
    assert_true(smp_ok > 300);
    assert_true(json_ok > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_add),
        cmocka_unit_test(test_json_add_errors),
        cmocka_unit_test(test_json_remove),
        cmocka_unit_test(test_json_replace),
        cmocka_unit_test(test_json_move),
        cmocka_unit_test(test_json_copy),
        cmocka_unit_test(test_json_test),
        cmocka_unit_test(test_json_malformed),
        cmocka_unit_test(test_merge_rfc7386),
        cmocka_unit_test(test_merge_errors),
        cmocka_unit_test(test_smp_kubectl_reapply),
        cmocka_unit_test(test_smp_add_port_and_container),
        cmocka_unit_test(test_smp_remove_label_and_maps),
        cmocka_unit_test(test_smp_set_element_order),
        cmocka_unit_test(test_smp_retain_keys),
        cmocka_unit_test(test_smp_list_replace_and_delete),
        cmocka_unit_test(test_smp_primitive_lists),
        cmocka_unit_test(test_smp_without_schema),
        cmocka_unit_test(test_smp_errors),
        cmocka_unit_test(test_smp_real_deployment),
        cmocka_unit_test(test_random_patches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
