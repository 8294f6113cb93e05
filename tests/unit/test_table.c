/* tests/unit/test_table.c - Table rows as `kubectl get` prints them: column
 * order (NAME, columns, AGE, wide columns), cells of a pod and a
 * deployment, includeObject, list metadata, v1beta1, Accept parsing, human
 * ages, the NAME/AGE fallback, and a 20,000-row list. */
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

/* 2024-05-01T10:00:00Z */
#define T0 1714557600LL

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fprintf(stderr, "# %s at %d\n", err.text, err.position);
    assert_non_null(j);
    return j;
}

static const char *col_name(json_t *t, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(t, "columnDefinitions"), i),
                                             "name"));
}

static json_t *cell(json_t *t, size_t row, size_t col)
{
    json_t *r = json_array_get(json_object_get(t, "rows"), row);
    return json_array_get(json_object_get(r, "cells"), col);
}

static const char k_pod[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-1\",\"namespace\":"
    "\"default\",\"resourceVersion\":\"42\",\"labels\":{\"app\":\"web\"},"
    "\"creationTimestamp\":\"2024-05-01T10:00:00Z\"},"
    "\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"a\",\"image\":\"busybox\"},"
    "{\"name\":\"b\",\"image\":\"nginx\"}]},"
    "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.7\",\"containerStatuses\":["
    "{\"name\":\"a\",\"ready\":true,\"restartCount\":2},"
    "{\"name\":\"b\",\"ready\":false,\"restartCount\":1}]}}";

static void test_pod_row(void **state)
{
    (void)state;
    const kind_def_t *k = registry_find_resource("", "v1", "pods");
    assert_non_null(k);
    json_t *pod = load(k_pod);
    table_opts_t o = {.now = (time_t)(T0 + 3 * 60 + 2)};
    json_t *t = table_new(k, pod, &o);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "kind")), "Table");
    assert_string_equal(json_string_value(json_object_get(t, "apiVersion")), "meta.k8s.io/v1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "metadata"),
                                                          "resourceVersion")),
                        "42");
    /* kubectl get pods: NAME READY STATUS RESTARTS AGE IP NODE ... */
    const char *names[] = {"Name", "READY", "STATUS", "RESTARTS", "Age", "IP", "NODE"};
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(col_name(t, i), names[i]);
    json_t *defs = json_object_get(t, "columnDefinitions");
    assert_string_equal(json_string_value(json_object_get(json_array_get(defs, 0), "format")),
                        "name");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(defs, 4), "priority")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(defs, 5), "priority")), 1);

    assert_string_equal(json_string_value(cell(t, 0, 0)), "web-1");
    assert_string_equal(json_string_value(cell(t, 0, 1)), "1/2");
    assert_string_equal(json_string_value(cell(t, 0, 2)), "Running");
    assert_int_equal(json_integer_value(cell(t, 0, 3)), 3);
    assert_string_equal(json_string_value(cell(t, 0, 4)), "3m2s");
    assert_string_equal(json_string_value(cell(t, 0, 5)), "10.0.0.7");
    assert_string_equal(json_string_value(cell(t, 0, 6)), "node-a");

    /* Default row object: PartialObjectMetadata with the labels. */
    json_t *obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    assert_string_equal(json_string_value(json_object_get(obj, "kind")), "PartialObjectMetadata");
    assert_string_equal(json_string_value(json_object_get(obj, "apiVersion")), "meta.k8s.io/v1");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(obj, "metadata"), "labels"), "app")),
                        "web");
    assert_null(json_object_get(obj, "spec"));
    json_decref(t);
    json_decref(pod);
}

static const char k_deploy_list[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"DeploymentList\",\"metadata\":{\"resourceVersion\":"
    "\"77\",\"continue\":\"abc\",\"remainingItemCount\":5},\"items\":["
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\","
    "\"creationTimestamp\":\"2024-05-01T10:00:00Z\"},"
    "\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"nginx\",\"image\":\"nginx:1.25\"}]}}},"
    "\"status\":{\"replicas\":3,\"readyReplicas\":2,\"updatedReplicas\":3,"
    "\"availableReplicas\":2}},"
    "{\"metadata\":{\"name\":\"api\",\"creationTimestamp\":\"2024-04-19T10:00:00Z\"},"
    "\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"api\"}},"
    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"api\",\"image\":\"api:2\"}]}}}}]}";

static void test_deployment_rows(void **state)
{
    (void)state;
    const kind_def_t *k = registry_find_resource("apps", "v1", "deployments");
    assert_non_null(k);
    json_t *list = load(k_deploy_list);
    table_opts_t o = {.now = (time_t)(T0 + 5 * 3600)};
    json_t *t = table_new(k, list, &o);
    json_t *md = json_object_get(t, "metadata");
    assert_string_equal(json_string_value(json_object_get(md, "resourceVersion")), "77");
    assert_string_equal(json_string_value(json_object_get(md, "continue")), "abc");
    assert_int_equal(json_integer_value(json_object_get(md, "remainingItemCount")), 5);
    assert_int_equal(json_array_size(json_object_get(t, "rows")), 2);
    /* NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR */
    const char *names[] = {"Name", "READY", "UP-TO-DATE", "AVAILABLE", "Age", "CONTAINERS",
                           "IMAGES", "SELECTOR"};
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(col_name(t, i), names[i]);
    assert_string_equal(json_string_value(cell(t, 0, 0)), "web");
    assert_string_equal(json_string_value(cell(t, 0, 1)), "2/3");
    assert_int_equal(json_integer_value(cell(t, 0, 2)), 3);
    assert_int_equal(json_integer_value(cell(t, 0, 3)), 2);
    assert_string_equal(json_string_value(cell(t, 0, 4)), "5h");
    assert_string_equal(json_string_value(cell(t, 0, 5)), "nginx");
    assert_string_equal(json_string_value(cell(t, 0, 6)), "nginx:1.25");
    assert_string_equal(json_string_value(cell(t, 0, 7)), "app=web");
    assert_string_equal(json_string_value(cell(t, 1, 1)), "0/1");
    assert_string_equal(json_string_value(cell(t, 1, 4)), "12d");
    json_decref(t);

    /* includeObject=Object carries the whole object; None carries none. */
    o.include = TABLE_INCLUDE_OBJECT;
    t = table_new(k, list, &o);
    json_t *obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(obj, "spec"), "replicas")), 3);
    json_decref(t);
    o.include = TABLE_INCLUDE_NONE;
    o.no_headers = 1;
    t = table_new(k, list, &o);
    assert_null(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object"));
    assert_int_equal(json_array_size(json_object_get(t, "columnDefinitions")), 0);
    json_decref(t);
    json_decref(list);
}

static void test_fallback_and_v1beta1(void **state)
{
    (void)state;
    json_t *obj = load("{\"kind\":\"Widget\",\"metadata\":{\"name\":\"w1\","
                       "\"creationTimestamp\":\"2024-05-01T10:00:00Z\"}}");
    table_opts_t o = {.now = (time_t)(T0 + 90), .version = TABLE_V1BETA1};
    json_t *t = table_new(NULL, obj, &o);
    assert_string_equal(json_string_value(json_object_get(t, "apiVersion")),
                        "meta.k8s.io/v1beta1");
    assert_int_equal(json_array_size(json_object_get(t, "columnDefinitions")), 2);
    assert_string_equal(col_name(t, 0), "Name");
    assert_string_equal(col_name(t, 1), "Age");
    assert_string_equal(json_string_value(cell(t, 0, 0)), "w1");
    assert_string_equal(json_string_value(cell(t, 0, 1)), "90s");
    json_t *po = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    assert_string_equal(json_string_value(json_object_get(po, "apiVersion")), "meta.k8s.io/v1beta1");
    json_decref(t);
    json_decref(obj);

    assert_null(table_new(NULL, NULL, NULL));
}

static json_t *upper_reason(const json_t *o)
{
    const char *r = json_string_value(json_object_get(o, "reason"));
    return r ? json_string(r) : NULL;
}

/* Columns by json_path, "date" columns as ages, missing values as null, and
 * kinds that place NAME or AGE themselves. */
static void test_custom_layouts(void **state)
{
    (void)state;
    json_t *obj = load("{\"metadata\":{\"name\":\"e1\",\"creationTimestamp\":"
                       "\"2024-05-01T10:00:00Z\"},\"type\":\"Normal\",\"reason\":\"Pulled\","
                       "\"count\":4,\"spec\":{\"ports\":[{\"port\":80},{\"port\":443}],"
                       "\"sel\":{\"a\":\"b\"}},\"lastTimestamp\":\"2024-05-01T10:00:30Z\"}");
    table_opts_t o = {.now = (time_t)(T0 + 60)};

    /* CRD-like: NAME, path columns, AGE, wide. */
    const kind_column_t crd_cols[] = {
        {"TYPE", "string", 0, ".type", NULL},
        {"PORT", "integer", 0, ".spec.ports[1].port", NULL},
        {"MISSING", "string", 0, ".spec.nothing.here", NULL},
        {"SEEN", "date", 0, ".lastTimestamp", NULL},
        {"SEL", "string", 1, ".spec.sel", NULL},
        {NULL},
    };
    kind_def_t crd = {.group = "example.com", .version = "v1", .kind = "Thing",
                      .resource = "things", .columns = crd_cols};
    json_t *t = table_new(&crd, obj, &o);
    const char *names[] = {"Name", "TYPE", "PORT", "MISSING", "SEEN", "Age", "SEL"};
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(col_name(t, i), names[i]);
    assert_string_equal(json_string_value(cell(t, 0, 1)), "Normal");
    assert_int_equal(json_integer_value(cell(t, 0, 2)), 443);
    assert_true(json_is_null(cell(t, 0, 3)));
    assert_string_equal(json_string_value(cell(t, 0, 4)), "30s");
    assert_string_equal(json_string_value(cell(t, 0, 5)), "60s");
    assert_string_equal(json_string_value(cell(t, 0, 6)), "{\"a\":\"b\"}");
    json_decref(t);

    /* Event-like: the kind declares NAME (wide, last) and no AGE. */
    const kind_column_t ev_cols[] = {
        {"TYPE", "string", 0, ".type", NULL},
        {"REASON", "string", 0, NULL, upper_reason},
        {"COUNT", "integer", 1, ".count", NULL},
        {"NAME", "string", 1, NULL, NULL},
        {NULL},
    };
    kind_def_t ev = {.group = "", .version = "v1", .kind = "Event", .resource = "events",
                     .columns = ev_cols};
    t = table_new(&ev, obj, &o);
    assert_int_equal(json_array_size(json_object_get(t, "columnDefinitions")), 4);
    assert_string_equal(col_name(t, 0), "TYPE");
    assert_string_equal(col_name(t, 3), "Name");
    json_t *namedef = json_array_get(json_object_get(t, "columnDefinitions"), 3);
    assert_string_equal(json_string_value(json_object_get(namedef, "format")), "name");
    assert_int_equal(json_integer_value(json_object_get(namedef, "priority")), 1);
    assert_string_equal(json_string_value(cell(t, 0, 1)), "Pulled");
    assert_int_equal(json_integer_value(cell(t, 0, 2)), 4);
    assert_string_equal(json_string_value(cell(t, 0, 3)), "e1");
    json_decref(t);

    /* Node-like: AGE placed before a priority-0 column. */
    const kind_column_t node_cols[] = {
        {"TYPE", "string", 0, ".type", NULL},
        {"AGE", "string", 0, NULL, NULL},
        {"REASON", "string", 0, ".reason", NULL},
        {NULL},
    };
    kind_def_t node = {.group = "", .version = "v1", .kind = "Node", .resource = "nodes",
                       .columns = node_cols};
    t = table_new(&node, obj, &o);
    const char *nnames[] = {"Name", "TYPE", "Age", "REASON"};
    assert_int_equal(json_array_size(json_object_get(t, "columnDefinitions")), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(col_name(t, i), nnames[i]);
    assert_string_equal(json_string_value(cell(t, 0, 2)), "60s");
    json_decref(t);
    json_decref(obj);
}

static void test_accept_and_query(void **state)
{
    (void)state;
    const char *ct = NULL;
    assert_int_equal(table_accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/"
                                  "json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                                  &ct),
                     TABLE_V1);
    assert_string_equal(ct, TABLE_V1_TYPE);
    assert_int_equal(table_accept("application/json;as=Table;v=v1beta1;g=meta.k8s.io", &ct),
                     TABLE_V1BETA1);
    assert_string_equal(ct, TABLE_V1BETA1_TYPE);
    assert_int_equal(table_accept("application/json", NULL), TABLE_NONE);
    assert_int_equal(table_accept(NULL, NULL), TABLE_NONE);
    assert_int_equal(table_accept("application/json;as=Table;v=v1;g=other.io", NULL), TABLE_NONE);
    assert_int_equal(table_accept("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
                                  NULL),
                     TABLE_NONE);

    assert_int_equal(table_include_from_query(NULL), TABLE_INCLUDE_METADATA);
    assert_int_equal(table_include_from_query("limit=500&includeObject=Object"),
                     TABLE_INCLUDE_OBJECT);
    assert_int_equal(table_include_from_query("includeObject=None"), TABLE_INCLUDE_NONE);
    assert_int_equal(table_include_from_query("includeObject=Metadata&x=1"),
                     TABLE_INCLUDE_METADATA);
    assert_int_equal(table_include_from_query("xincludeObject=None"), TABLE_INCLUDE_METADATA);
}

static void test_durations(void **state)
{
    (void)state;
    char b[32];
    struct { long long s; const char *want; } cases[] = {
        {-5, "<invalid>"}, {-1, "0s"}, {0, "0s"}, {59, "59s"}, {119, "119s"}, {120, "2m"},
        {182, "3m2s"}, {600, "10m"}, {179 * 60, "179m"}, {3 * 3600, "3h"},
        {3 * 3600 + 60 * 7, "3h7m"}, {8 * 3600 + 60 * 7, "8h"}, {47 * 3600, "47h"},
        {2 * 86400 + 3600, "2d1h"}, {3 * 86400, "3d"}, {12 * 86400, "12d"},
        {(365 * 2 + 3) * 86400LL, "2y3d"}, {365 * 9 * 86400LL, "9y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(table_human_duration(cases[i].s, b, sizeof b), cases[i].want);
    assert_string_equal(table_age("2024-05-01T10:00:00Z", (time_t)(T0 + 30), b, sizeof b), "30s");
    assert_string_equal(table_age("2024-05-01T12:00:00+02:00", (time_t)(T0 + 30), b, sizeof b),
                        "30s");
    assert_string_equal(table_age("2024-05-01T10:00:00.123456Z", (time_t)(T0 + 30), b, sizeof b),
                        "30s");
    assert_string_equal(table_age(NULL, 0, b, sizeof b), "<unknown>");
    assert_string_equal(table_age("yesterday", 0, b, sizeof b), "<unknown>");
}

/* kubectl get of 20,000 pods: one table, quickly. */
static void test_many_rows(void **state)
{
    (void)state;
    const kind_def_t *k = registry_find_resource("", "v1", "pods");
    json_t *pod = load(k_pod);
    json_t *items = json_array();
    for (int i = 0; i < 20000; i++) {
        json_t *p = json_deep_copy(pod);
        char name[32];
        snprintf(name, sizeof name, "pod-%d", i);
        json_object_set_new(json_object_get(p, "metadata"), "name", json_string(name));
        json_array_append_new(items, p);
    }
    json_t *list = json_pack("{s:s, s:{s:s}, s:o}", "kind", "PodList", "metadata",
                             "resourceVersion", "9", "items", items);
    struct timespec a, b;
    /* CPU time, so a busy machine does not fail the check */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    json_t *t = table_new(k, list, NULL);
    char *s = json_dumps(t, JSON_COMPACT);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    fprintf(stderr, "# 20000 rows built and serialized in %.0f ms\n", ms);
    assert_int_equal(json_array_size(json_object_get(t, "rows")), 20000);
    assert_string_equal(json_string_value(cell(t, 19999, 0)), "pod-19999");
    assert_true(ms < 5000); /* generous: sanitizers slow this down several times */
    free(s);
    json_decref(t);
    json_decref(list);
    json_decref(pod);
}

static int setup(void **state)
{
    (void)state;
    return registry_init() == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    registry_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_row),          cmocka_unit_test(test_deployment_rows),
        cmocka_unit_test(test_fallback_and_v1beta1), cmocka_unit_test(test_custom_layouts),
        cmocka_unit_test(test_accept_and_query),
        cmocka_unit_test(test_durations),        cmocka_unit_test(test_many_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
