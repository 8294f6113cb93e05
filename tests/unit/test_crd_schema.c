/* tests/unit/test_crd_schema.c - a custom resource's openAPIV3Schema
 * without a server: validation messages as Kubernetes words them (types,
 * required, enum, pattern, bounds, lengths, items, nullable,
 * int-or-string), unknown fields reported for pruning unless preserved,
 * defaulting, the CRD object's own validation, and the scale paths. The
 * API side is tested end to end in tests/e2e/test_crd.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/table.h"
#include "object/crd_schema.h"
#include "object/registry.h"
#include "skiff/errors.h"

static const char k_schema[] =
    "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"required\":[\"cronSpec\"],"
    "\"properties\":{"
    "\"cronSpec\":{\"type\":\"string\",\"pattern\":\"^(\\\\d+|\\\\*)(/\\\\d+)?(\\\\s+(\\\\d+|\\\\*)(/\\\\d+)?){4}$\"},"
    "\"image\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":10},"
    "\"replicas\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10,\"default\":1},"
    "\"mode\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]},"
    "\"port\":{\"x-kubernetes-int-or-string\":true},"
    "\"note\":{\"type\":\"string\",\"nullable\":true},"
    "\"tags\":{\"type\":\"array\",\"maxItems\":2,\"items\":{\"type\":\"string\"}},"
    "\"extra\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true},"
    "\"labels\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "\"nested\":{\"type\":\"object\",\"default\":{},\"properties\":{\"size\":{\"type\":\"string\",\"default\":\"small\"}}}"
    "}},\"status\":{\"type\":\"object\",\"properties\":{\"replicas\":{\"type\":\"integer\"}}}}}";

static json_t *load(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j) fail_msg("bad JSON in test: %s (%s)", e.text, s);
    return j;
}

/* Validate obj; return the messages as "field: message" joined by " | ". */
static char *check(const char *obj_json, int mode)
{
    json_t *schema = load(k_schema), *obj = load(obj_json);
    validation_result_t res;
    memset(&res, 0, sizeof res);
    crd_schema_validate(schema, obj, mode, &res);
    static char out[4096];
    out[0] = '\0';
    for (size_t i = 0; i < res.count; i++) {
        strncat(out, i ? " | " : "", sizeof out - strlen(out) - 1);
        strncat(out, res.errors[i].field, sizeof out - strlen(out) - 1);
        strncat(out, ": ", sizeof out - strlen(out) - 1);
        strncat(out, res.errors[i].message, sizeof out - strlen(out) - 1);
    }
    validation_result_free(&res);
    json_decref(schema);
    json_decref(obj);
    return out;
}

static void test_valid_object(void **state)
{
    (void)state;
    assert_string_equal(check("{\"apiVersion\":\"x/v1\",\"kind\":\"K\",\"metadata\":{\"name\":\"a\"},"
                              "\"spec\":{\"cronSpec\":\"* * * * */5\",\"replicas\":3,\"port\":\"http\","
                              "\"note\":null,\"extra\":{\"anything\":[1]},\"labels\":{\"a\":\"b\"}}}",
                              VALIDATE_STRICT),
                        "");
}

static void test_messages(void **state)
{
    (void)state;
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"replicas\":0}}", VALIDATE_STRICT),
                        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater "
                        "than or equal to 1");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"replicas\":11}}", VALIDATE_STRICT),
                        "spec.replicas: Invalid value: 11: spec.replicas in body should be less "
                        "than or equal to 10");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"replicas\":\"x\"}}", VALIDATE_STRICT),
                        "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of "
                        "type integer: \"string\"");
    assert_string_equal(check("{\"spec\":{}}", VALIDATE_STRICT), "spec.cronSpec: Required value");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"nope\"}}", VALIDATE_STRICT),
                        "spec.cronSpec: Invalid value: \"nope\": spec.cronSpec in body should match "
                        "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"mode\":\"c\"}}", VALIDATE_STRICT),
                        "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"image\":\"x\"}}", VALIDATE_STRICT),
                        "spec.image: Invalid value: \"x\": spec.image in body should be at least 2 "
                        "chars long");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"image\":\"abcdefghijk\"}}",
                              VALIDATE_STRICT),
                        "spec.image: Too long: may not be more than 10 bytes");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"tags\":[\"a\",\"b\",\"c\"]}}",
                              VALIDATE_STRICT),
                        "spec.tags: Too many: 3: must have at most 2 items");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"tags\":[1]}}", VALIDATE_STRICT),
                        "spec.tags[0]: Invalid value: \"integer\": spec.tags[0] in body must be of "
                        "type string: \"integer\"");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"port\":true}}", VALIDATE_STRICT),
                        "spec.port: Invalid value: \"boolean\": spec.port in body must be of type "
                        "integer,string: \"boolean\"");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"labels\":{\"a\":1}}}", VALIDATE_STRICT),
                        "spec.labels[a]: Invalid value: \"integer\": spec.labels[a] in body must be "
                        "of type string: \"integer\"");
}

static void test_unknown_fields(void **state)
{
    (void)state;
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"bogus\":1},\"top\":2}",
                              VALIDATE_WARN_UNKNOWN),
                        "spec.bogus: unknown field \"spec.bogus\" | top: unknown field \"top\"");
    assert_string_equal(check("{\"spec\":{\"cronSpec\":\"* * * * *\",\"bogus\":1}}",
                              VALIDATE_IGNORE_UNKNOWN),
                        "");
}

static void test_defaults(void **state)
{
    (void)state;
    json_t *schema = load(k_schema);
    json_t *obj = load("{\"spec\":{\"cronSpec\":\"x\",\"image\":null,\"note\":null}}");
    crd_schema_default(schema, obj);
    json_t *spec = json_object_get(obj, "spec");
    assert_int_equal(json_integer_value(json_object_get(spec, "replicas")), 1);
    /* non-nullable null without default: pruned; nullable null: kept */
    assert_null(json_object_get(spec, "image"));
    assert_true(json_is_null(json_object_get(spec, "note")));
    /* a defaulted object gets its own fields' defaults */
    assert_string_equal(json_string_value(json_object_get(json_object_get(spec, "nested"), "size")),
                        "small");
    json_decref(obj);
    json_decref(schema);
}

static char *check_crd(const char *crd_json)
{
    json_t *obj = load(crd_json);
    validation_result_t res;
    memset(&res, 0, sizeof res);
    crd_definition_validate(obj, &res);
    static char out[4096];
    out[0] = '\0';
    for (size_t i = 0; i < res.count; i++) {
        strncat(out, i ? " | " : "", sizeof out - strlen(out) - 1);
        strncat(out, res.errors[i].field, sizeof out - strlen(out) - 1);
        strncat(out, ": ", sizeof out - strlen(out) - 1);
        strncat(out, res.errors[i].message, sizeof out - strlen(out) - 1);
    }
    validation_result_free(&res);
    json_decref(obj);
    return out;
}

static void test_crd_validation(void **state)
{
    (void)state;
    const char *good =
        "{\"metadata\":{\"name\":\"crontabs.stable.example.com\"},\"spec\":{\"group\":\"stable.example.com\","
        "\"scope\":\"Namespaced\",\"names\":{\"plural\":\"crontabs\",\"singular\":\"crontab\",\"kind\":\"CronTab\","
        "\"listKind\":\"CronTabList\",\"shortNames\":[\"ct\"]},\"versions\":[{\"name\":\"v1\",\"served\":true,"
        "\"storage\":true,\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\"}}}]}}";
    assert_string_equal(check_crd(good), "");
    assert_string_equal(
        check_crd("{\"metadata\":{\"name\":\"crontabs.example\"},\"spec\":{\"group\":\"example\","
                  "\"scope\":\"Everywhere\",\"names\":{\"plural\":\"crontabs\",\"kind\":\"CronTab\","
                  "\"listKind\":\"CronTabList\"},\"versions\":[{\"name\":\"v1\",\"served\":true,"
                  "\"storage\":false,\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\","
                  "\"properties\":{\"spec\":{}}}}}]}}"),
        "spec.group: Invalid value: \"example\": should be a domain with at least one dot | "
        "spec.scope: Unsupported value: \"Everywhere\": supported values: \"Cluster\", \"Namespaced\" | "
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be "
        "empty for specified object fields | "
        "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must "
        "have exactly one version marked as storage version");
    assert_string_equal(
        check_crd("{\"metadata\":{\"name\":\"foo.stable.example.com\"},\"spec\":{\"group\":\"stable.example.com\","
                  "\"scope\":\"Cluster\",\"names\":{\"plural\":\"CronTabs\",\"kind\":\"CronTab\","
                  "\"listKind\":\"CronTabList\"},\"versions\":[{\"name\":\"v1\",\"served\":true,"
                  "\"storage\":true,\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\"}}}]}}"),
        "spec.names.plural: Invalid value: \"CronTabs\": a lowercase RFC 1123 label must consist of "
        "lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
        "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?') | "
        "metadata.name: Invalid value: \"foo.stable.example.com\": must be "
        "spec.names.plural+\".\"+spec.group");
}

static void test_paths(void **state)
{
    (void)state;
    json_t *obj = load("{\"spec\":{\"n\":2},\"status\":{\"list\":[{\"x\":1}]}}");
    assert_int_equal(json_integer_value(crd_path_get(obj, ".spec.n")), 2);
    assert_int_equal(json_integer_value(crd_path_get(obj, ".status.list[0].x")), 1);
    assert_null(crd_path_get(obj, ".status.missing"));
    assert_int_equal(crd_path_set(obj, ".spec.deep.replicas", json_integer(5)), 0);
    assert_int_equal(json_integer_value(crd_path_get(obj, ".spec.deep.replicas")), 5);
    json_decref(obj);
}

/* Messages for a value against one property schema `prop` (JSON text). */
static char *check_prop(const char *prop, const char *value)
{
    char schema[2048], obj[1024];
    snprintf(schema, sizeof schema,
             "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\","
             "\"properties\":{\"x\":%s}}}}", prop);
    snprintf(obj, sizeof obj, "{\"spec\":{\"x\":%s}}", value);
    json_t *sj = load(schema), *oj = load(obj);
    validation_result_t res;
    memset(&res, 0, sizeof res);
    crd_schema_validate(sj, oj, VALIDATE_STRICT, &res);
    static char out[2048];
    out[0] = '\0';
    for (size_t i = 0; i < res.count; i++) {
        strncat(out, i ? " | " : "", sizeof out - strlen(out) - 1);
        strncat(out, res.errors[i].message, sizeof out - strlen(out) - 1);
    }
    validation_result_free(&res);
    json_decref(sj);
    json_decref(oj);
    return out;
}

static void test_formats_and_combinators(void **state)
{
    (void)state;
    const char *dt = "{\"type\":\"string\",\"format\":\"date-time\"}";
    assert_string_equal(check_prop(dt, "\"2024-05-01T10:00:00Z\""), "");
    assert_string_equal(check_prop(dt, "\"2024-05-01T10:00:00.5+02:00\""), "");
    assert_string_equal(check_prop(dt, "\"yesterday\""),
                        "Invalid value: \"yesterday\": spec.x in body must be of type date-time: "
                        "\"yesterday\"");
    assert_string_equal(check_prop("{\"type\":\"string\",\"format\":\"ipv4\"}", "\"10.0.0.1\""), "");
    assert_string_equal(check_prop("{\"type\":\"string\",\"format\":\"ipv4\"}", "\"10.0.0\""),
                        "Invalid value: \"10.0.0\": spec.x in body must be of type ipv4: \"10.0.0\"");
    assert_string_equal(check_prop("{\"type\":\"string\",\"format\":\"cidr\"}", "\"fd00::/64\""), "");
    assert_string_equal(check_prop("{\"type\":\"string\",\"format\":\"uuid\"}",
                                   "\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\""), "");
    assert_string_equal(check_prop("{\"type\":\"string\",\"format\":\"no-such-format\"}", "\"x\""), "");
    const char *any = "{\"x-kubernetes-int-or-string\":true,\"anyOf\":[{\"type\":\"integer\"},"
                      "{\"type\":\"string\",\"pattern\":\"^[0-9]+%$\"}]}";
    assert_string_equal(check_prop(any, "5"), "");
    assert_string_equal(check_prop(any, "\"50%\""), "");
    assert_string_equal(check_prop(any, "\"half\""),
                        "Invalid value: \"half\": spec.x in body must validate at least one schema (anyOf)");
    const char *one = "{\"type\":\"integer\",\"oneOf\":[{\"minimum\":5},{\"maximum\":10}]}";
    assert_string_equal(check_prop(one, "20"), "");
    assert_string_equal(check_prop(one, "7"),
                        "Invalid value: 7: spec.x in body must validate one and only one schema (oneOf)");
    assert_string_equal(check_prop("{\"type\":\"string\",\"not\":{\"enum\":[\"root\"]}}", "\"root\""),
                        "Invalid value: \"root\": spec.x in body must not validate the schema (not)");
    const char *lm = "{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
                     "\"x-kubernetes-list-map-keys\":[\"name\"],\"items\":{\"type\":\"object\","
                     "\"properties\":{\"name\":{\"type\":\"string\"},\"port\":{\"type\":\"integer\"}}}}";
    assert_string_equal(check_prop(lm, "[{\"name\":\"a\",\"port\":1},{\"name\":\"b\",\"port\":1}]"), "");
    assert_string_equal(check_prop(lm, "[{\"name\":\"a\",\"port\":1},{\"name\":\"a\",\"port\":2}]"),
                        "Duplicate value: map[string]interface {}{\"name\":\"a\"}");
    assert_string_equal(check_prop("{\"type\":\"integer\",\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "4"),
                        "Invalid value: 4: spec.x in body should be less than or equal to 3");
}

/* A CRD's printer columns: the whole table after NAME (no AGE added when
 * columns are given), JSONPath filters on lists of conditions. */
static void test_printer_columns(void **state)
{
    (void)state;
    static const kind_column_t cols[] = {
        {"Ready", "string", 0, ".status.conditions[?(@.type==\"Ready\")].status", NULL},
        {"Replicas", "integer", 1, ".spec.replicas", NULL},
        {NULL, NULL, 0, NULL, NULL},
    };
    crd_version_t ver = {.has_columns = 1};
    kind_def_t k = {.group = "x.io", .version = "v1", .kind = "W", .resource = "ws",
                    .namespaced = 1, .columns = cols, .crd = &ver};
    json_t *obj = load("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"replicas\":3},\"status\":"
                       "{\"conditions\":[{\"type\":\"Synced\",\"status\":\"False\"},"
                       "{\"type\":\"Ready\",\"status\":\"True\"}]}}");
    table_opts_t o = {.version = TABLE_V1};
    json_t *t = table_new(&k, obj, &o);
    json_t *defs = json_object_get(t, "columnDefinitions");
    assert_int_equal(json_array_size(defs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(defs, 1), "name")), "Ready");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(defs, 2), "priority")), 1);
    json_t *cells = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells");
    assert_string_equal(json_string_value(json_array_get(cells, 0)), "a");
    assert_string_equal(json_string_value(json_array_get(cells, 1)), "True");
    assert_int_equal(json_integer_value(json_array_get(cells, 2)), 3);
    json_decref(t);
    /* no columns: NAME and AGE */
    k.columns = NULL;
    t = table_new(&k, obj, &o);
    defs = json_object_get(t, "columnDefinitions");
    assert_int_equal(json_array_size(defs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(defs, 1), "name")), "Age");
    json_decref(t);
    json_decref(obj);
}

/* Run-time kinds: added, found, converted between versions (strategy
 * None: only apiVersion changes), removed while their pointers stay valid. */
static void test_registry_add_remove(void **state)
{
    (void)state;
    assert_int_equal(registry_init(), 0);
    crd_version_t ver = {.schema = NULL};
    kind_def_t v1 = {.group = "x.io", .version = "v1", .kind = "W", .list_kind = "WList",
                     .resource = "ws", .namespaced = 1, .storage_version = "v1", .crd = &ver};
    kind_def_t v2 = v1;
    v2.version = "v2";
    assert_int_equal(registry_add(&v1), 0);
    assert_int_equal(registry_add(&v2), 0);
    assert_int_equal(registry_add(&v1), SKIFF_EEXIST);
    const kind_def_t *k1 = registry_find_resource("x.io", "v1", "ws");
    const kind_def_t *k2 = registry_find_resource("x.io", "v2", "ws");
    assert_non_null(k1);
    assert_non_null(k2);
    assert_ptr_equal(registry_storage_kind(k2), k1);
    assert_ptr_equal(registry_find_name("ws.x.io"), k1);
    json_t *obj = load("{\"apiVersion\":\"x.io/v1\",\"kind\":\"W\",\"spec\":{\"a\":1}}");
    json_t *read = registry_convert_from_storage(k2, obj);
    assert_string_equal(json_string_value(json_object_get(read, "apiVersion")), "x.io/v2");
    assert_true(json_equal(json_object_get(read, "spec"), json_object_get(obj, "spec")));
    json_t *back = registry_convert_to_storage(k2, read);
    assert_string_equal(json_string_value(json_object_get(back, "apiVersion")), "x.io/v1");
    json_decref(back);
    json_decref(read);
    json_decref(obj);
    assert_int_equal(registry_remove(k2), 0);
    assert_null(registry_find_resource("x.io", "v2", "ws"));
    assert_string_equal(registry_api_version(k2), "x.io/v2"); /* retired, still readable */
    assert_int_equal(registry_remove(k2), SKIFF_ENOENT);
    assert_int_equal(registry_remove(k1), 0);
    assert_null(registry_find_name("ws"));
    /* the same resource can be served again */
    assert_int_equal(registry_add(&v1), 0);
    assert_non_null(registry_find_resource("x.io", "v1", "ws"));
    registry_shutdown();
}

/* The CRD kind's metadata schema comes from the schemas the registry
 * loads: after a shutdown and a second init it must be the new one. */
static void test_crd_kind_after_reinit(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(registry_init(), 0);
        const kind_def_t *k =
            registry_find_kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
        assert_non_null(k);
        json_t *obj = load("{\"metadata\":{\"name\":\"a.b.c\",\"labels\":{\"x\":7}}}");
        validation_result_t res = {0};
        assert_true(registry_validate(k, obj, VALIDATE_STRICT, &res) > 0);
        int found = 0;
        for (size_t i = 0; i < res.count; i++)
            if (res.errors[i].field && strstr(res.errors[i].field, "metadata.labels")) found = 1;
        assert_true(found);
        validation_result_free(&res);
        json_decref(obj);
        registry_shutdown();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_object), cmocka_unit_test(test_messages),
        cmocka_unit_test(test_unknown_fields), cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_crd_validation), cmocka_unit_test(test_paths),
        cmocka_unit_test(test_printer_columns), cmocka_unit_test(test_registry_add_remove),
        cmocka_unit_test(test_formats_and_combinators),
        cmocka_unit_test(test_crd_kind_after_reinit),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    crd_schema_cache_clear();
    return rc;
}
