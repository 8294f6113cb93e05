/* tests/unit/test_objects.c - the controller helpers of skiff/objects.h:
 * selectors, owner references, conditions, time, quantities, pod requests,
 * template hashes, and the Event recorder and pod binding against a real
 * API server. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <skiff/client.h>
#include <skiff/objects.h>
#include <uv.h>

#include "api/client_inproc.h"
#include "api/client_rest.h"

#include "api_fixture.h"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v) fail_msg("bad JSON in test: %s", e.text);
    return v;
}

static void test_selectors(void **state)
{
    (void)state;
    json_t *sel = load("{\"matchLabels\":{\"app\":\"web\"},"
                       "\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\","
                       "\"values\":[\"a\",\"b\"]}]}");
    json_t *yes = load("{\"app\":\"web\",\"tier\":\"b\"}");
    json_t *no = load("{\"app\":\"web\",\"tier\":\"c\"}");
    assert_int_equal(skiff_label_selector_matches(sel, yes), 1);
    assert_int_equal(skiff_label_selector_matches(sel, no), 0);
    assert_int_equal(skiff_label_selector_matches(sel, NULL), 0);
    json_t *empty = json_object();
    assert_int_equal(skiff_label_selector_matches(empty, no), 1);
    assert_int_equal(skiff_label_selector_matches(NULL, yes), 0);
    json_t *bad = load("{\"matchExpressions\":[{\"key\":\"x\",\"operator\":\"Near\"}]}");
    assert_true(skiff_label_selector_matches(bad, yes) < 0);
    char *s = skiff_label_selector_string(sel);
    assert_non_null(s);
    assert_non_null(strstr(s, "app=web"));
    assert_non_null(strstr(s, "tier in (a,b)"));
    free(s);
    s = skiff_label_selector_string(empty);
    assert_string_equal(s, "");
    free(s);
    json_decref(sel), json_decref(yes), json_decref(no), json_decref(empty), json_decref(bad);
}

static void test_owner_refs(void **state)
{
    (void)state;
    json_t *rs = load("{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
                      "\"metadata\":{\"name\":\"web-1\",\"uid\":\"u-1\"}}");
    json_t *ref = skiff_owner_ref_new(rs, 1);
    assert_non_null(ref);
    assert_string_equal(json_string_value(json_object_get(ref, "kind")), "ReplicaSet");
    assert_true(json_is_true(json_object_get(ref, "controller")));
    assert_true(json_is_true(json_object_get(ref, "blockOwnerDeletion")));
    json_t *pod = load("{\"metadata\":{\"name\":\"p\",\"ownerReferences\":[]}}");
    json_array_append_new(json_object_get(json_object_get(pod, "metadata"), "ownerReferences"),
                          ref);
    assert_ptr_equal(skiff_controller_ref(pod), ref);
    assert_true(skiff_is_controlled_by(pod, "u-1"));
    assert_false(skiff_is_controlled_by(pod, "u-2"));
    json_t *plain = skiff_owner_ref_new(rs, 0);
    assert_null(json_object_get(plain, "controller"));
    json_t *nouid = load("{\"apiVersion\":\"v1\",\"kind\":\"X\",\"metadata\":{\"name\":\"n\"}}");
    assert_null(skiff_owner_ref_new(nouid, 1));
    json_decref(plain), json_decref(nouid), json_decref(rs), json_decref(pod);
}

static void test_conditions(void **state)
{
    (void)state;
    json_t *d = load("{\"metadata\":{\"name\":\"d\"}}");
    assert_null(skiff_condition_status(d, "Available"));
    assert_int_equal(skiff_condition_set(d, "Available", "False", "MinimumReplicasUnavailable",
                                         "not yet", 1), 1);
    assert_string_equal(skiff_condition_status(d, "Available"), "False");
    json_t *c = skiff_condition_get(d, "Available");
    assert_non_null(json_object_get(c, "lastUpdateTime"));
    json_object_set_new(c, "lastTransitionTime", json_string("2000-01-01T00:00:00Z"));
    /* same values: nothing changes, the transition time stays */
    assert_int_equal(skiff_condition_set(d, "Available", "False", "MinimumReplicasUnavailable",
                                         "not yet", 1), 0);
    assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
                        "2000-01-01T00:00:00Z");
    /* a new message is a change but not a transition */
    assert_int_equal(skiff_condition_set(d, "Available", "False", "MinimumReplicasUnavailable",
                                         "still not", 1), 1);
    assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
                        "2000-01-01T00:00:00Z");
    assert_int_equal(skiff_condition_set(d, "Available", "True", "MinimumReplicasAvailable",
                                         NULL, 1), 1);
    assert_string_not_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
                            "2000-01-01T00:00:00Z");
    assert_null(json_object_get(c, "message"));
    assert_int_equal(skiff_condition_remove(d, "Available"), 1);
    assert_int_equal(skiff_condition_remove(d, "Available"), 0);
    json_decref(d);
}

static void test_time(void **state)
{
    (void)state;
    char buf[32];
    skiff_time_format(1764158400123LL, buf, sizeof buf);
    assert_string_equal(buf, "2025-11-26T12:00:00Z");
    assert_int_equal(skiff_time_parse("2025-11-26T12:00:00Z"), 1764158400000LL);
    assert_int_equal(skiff_time_parse("2025-11-26T12:00:00.250Z"), 1764158400250LL);
    assert_int_equal(skiff_time_parse("2025-11-26T13:30:00+01:30"), 1764158400000LL);
    assert_int_equal(skiff_time_parse("yesterday"), -1);
    assert_int_equal(skiff_time_parse(NULL), -1);
    int64_t now = skiff_now_ms();
    assert_true(now > 1764158400000LL);
}

static void test_quantities(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t milli;
    } ok[] = {
        {"100m", 100},         {"1", 1000},        {"0.5", 500},          {"2", 2000},
        {"1Ki", 1024000},      {"128Mi", 134217728000LL}, {"1G", 1000000000000LL},
        {"1e3", 1000000},      {"1.5Gi", 1610612736000LL}, {"250u", 1},  {"0.1", 100},
        {"1n", 1},             {"+3", 3000},       {"-2", -2000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        int64_t m = -99;
        assert_int_equal(skiff_quantity_milli(ok[i].in, &m), 0);
        if (m != ok[i].milli) fail_msg("%s: %lld, want %lld", ok[i].in, (long long)m,
                                       (long long)ok[i].milli);
    }
    static const char *const bad[] = {"", "m", "1X", "1.2.3", "abc", "9999999Ei", NULL};
    for (const char *const *b = bad; *b; b++) {
        int64_t m;
        if (skiff_quantity_milli(*b, &m) == 0) fail_msg("%s accepted", *b);
    }
    int64_t m;
    json_t *n = json_integer(4);
    assert_int_equal(skiff_quantity_milli_json(n, &m), 0);
    assert_int_equal(m, 4000);
    assert_int_equal(skiff_quantity_milli_json(NULL, &m), 0);
    assert_int_equal(m, 0);
    json_decref(n);
}

static void test_pods(void **state)
{
    (void)state;
    json_t *pod = load(
        "{\"spec\":{\"containers\":["
        "{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}},"
        "{\"name\":\"b\",\"resources\":{\"limits\":{\"cpu\":\"200m\"}}}],"
        "\"initContainers\":[{\"name\":\"i\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]},"
        "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\",\"lastTransitionTime\":\"2025-11-26T12:00:00Z\"}]}}");
    /* init container's 1 CPU beats the 300m of the two containers */
    assert_int_equal(skiff_pod_request_milli(pod, "cpu"), 1000);
    assert_int_equal(skiff_pod_request_milli(pod, "memory"), 67108864000LL);
    assert_int_equal(skiff_pod_request_milli(pod, "nvidia.com/gpu"), 0);
    /* several at once: the same figures, in one pass (more than eight
     * resources take two) */
    const char *const names[] = {"cpu", "memory", "nvidia.com/gpu", "a", "b", "c", "d", "e",
                                 "f", "cpu"};
    int64_t many[10];
    skiff_pod_requests_milli(pod, names, 10, many);
    assert_int_equal(many[0], 1000);
    assert_int_equal(many[1], 67108864000LL);
    for (int i = 2; i < 9; i++) assert_int_equal(many[i], 0);
    assert_int_equal(many[9], 1000);
    /* a limit stands for a missing request; spec.overhead is added */
    json_t *oh = load("{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{"
                      "\"requests\":{\"cpu\":\"100m\"},\"limits\":{\"memory\":\"1Gi\"}}}],"
                      "\"overhead\":{\"cpu\":\"50m\",\"memory\":\"10Mi\"}}}");
    skiff_pod_requests_milli(oh, names, 2, many);
    assert_int_equal(many[0], 150);
    assert_int_equal(many[1], (1073741824LL + 10485760LL) * 1000);
    assert_int_equal(skiff_pod_request_milli(oh, "memory"), many[1]);
    json_decref(oh);
    assert_true(skiff_pod_is_ready(pod));
    assert_true(skiff_pod_is_active(pod));
    assert_true(skiff_pod_is_available(pod, 10, 1764158410000LL));
    assert_false(skiff_pod_is_available(pod, 10, 1764158409000LL));
    json_object_set_new(json_object_get(pod, "status"), "phase", json_string("Succeeded"));
    assert_false(skiff_pod_is_active(pod));
    json_decref(pod);
}

static void test_hash(void **state)
{
    (void)state;
    json_t *a = load("{\"x\":1,\"y\":[1,2]}");
    json_t *b = load("{\"y\":[1,2],\"x\":1}");
    json_t *c = load("{\"x\":2,\"y\":[1,2]}");
    char ha[16], hb[16], hc[16], hd[16];
    skiff_json_hash(a, 0, ha, sizeof ha);
    skiff_json_hash(b, 0, hb, sizeof hb);
    skiff_json_hash(c, 0, hc, sizeof hc);
    skiff_json_hash(a, 1, hd, sizeof hd);
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc);
    assert_string_not_equal(ha, hd);
    for (const char *p = ha; *p; p++) assert_non_null(strchr("bcdfghjklmnpqrstvwxz2456789", *p));
    json_decref(a), json_decref(b), json_decref(c);
}

/* ---- Events through a real API server ---------------------------------------- */

static uv_loop_t loop;
static api_fixture_t fx;

typedef struct got {
    int done, status;
    json_t *obj;
} got_t;

static void on_got(void *data, int status, json_t *obj)
{
    got_t *g = data;
    g->status = status;
    g->obj = json_incref(obj);
    g->done = 1;
}

static json_t *list_events(skiff_client_t *c)
{
    static const skiff_resource_t ev = {"", "v1", "events", NULL};
    got_t g = {0};
    assert_int_equal(skiff_client_list(c, &ev, "default", NULL, on_got, &g), 0);
    assert_true(api_fixture_wait(&fx, &g.done));
    assert_int_equal(g.status, 200);
    return g.obj;
}

/* The Event list once it holds n items (the last one read after 400 ms). */
static json_t *wait_events(skiff_client_t *c, size_t n)
{
    json_t *list = NULL;
    for (int i = 0; i < 200; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        json_decref(list);
        list = list_events(c);
        if (json_array_size(json_object_get(list, "items")) == n) break;
        usleep(2000);
    }
    return list;
}

/* A real API server on the loop and an in-process client of it. */
static skiff_client_t *server_start(void)
{
    api_server_opts_t ao = {0};
    assert_int_equal(api_fixture_start(&fx, &loop, ao, 0), 0);
    skiff_client_t *c = client_inproc_new(&loop, fx.api);
    assert_non_null(c);
    return c;
}

static void server_stop(skiff_client_t *c)
{
    c->vt->free(c);
    assert_int_equal(api_fixture_stop(&fx), 0);
}

static void test_answer_message(void **state)
{
    (void)state;
    json_t *st = json_pack("{s:s,s:s}", "kind", "Status", "message", "pods \"x\" already exists");
    assert_string_equal(skiff_answer_message(st), "pods \"x\" already exists");
    json_object_del(st, "message");
    assert_string_equal(skiff_answer_message(st), "no answer from the API server");
    assert_string_equal(skiff_answer_message(NULL), "no answer from the API server");
    json_decref(st);
}

/* A message cut at the recorder's 1,024 bytes inside a UTF-8 character
 * still makes an Event, without the partial character. */
static void test_event_message_cut(void **state)
{
    (void)state;
    skiff_client_t *c = server_start();
    skiff_event_recorder_t *r = skiff_event_recorder_new(c, "test-controller");
    json_t *cm = load("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                      "{\"name\":\"long\",\"namespace\":\"default\",\"uid\":\"u-1\"}}");
    char text[1100];
    memset(text, 'a', 1022);
    strcpy(text + 1022, "\xc3\xa9 and more"); /* é straddles byte 1023 */
    skiff_event_record(r, cm, "Warning", "Long", "%s", text);
    json_t *list = wait_events(c, 1);
    json_t *e = json_array_get(json_object_get(list, "items"), 0);
    assert_non_null(e);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    assert_int_equal(strlen(msg), 1022);
    json_decref(list);
    json_decref(cm);
    skiff_event_recorder_free(r);
    server_stop(c);
}

/* Kubernetes' correlator: the tenth different message of an object's
 * reason starts one combined Event that counts the rest; a burst of
 * occurrences is written as one patch once the create ends. */
static void test_event_aggregation(void **state)
{
    (void)state;
    skiff_client_t *c = server_start();
    skiff_event_recorder_t *r = skiff_event_recorder_new(c, "test-controller");
    json_t *rs = load("{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
                      "{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"u-7\"}}");
    for (int i = 1; i <= 30; i++)
        skiff_event_record(r, rs, "Normal", "SuccessfulCreate", "Created pod: web-%d", i);
    json_t *list = NULL, *items = NULL;
    int singles = 0, combined = 0;
    json_int_t combined_count = 0;
    for (int i = 0; i < 200; i++) {
        json_decref(list);
        list = wait_events(c, 10);
        items = json_object_get(list, "items");
        singles = combined = 0;
        size_t k;
        json_t *e;
        json_array_foreach(items, k, e) {
            const char *msg = json_string_value(json_object_get(e, "message"));
            json_int_t count = json_integer_value(json_object_get(e, "count"));
            if (strcmp(msg, "(combined from similar events): Created pod: web-30") == 0) {
                combined++;
                combined_count = count;
            } else if (strncmp(msg, "Created pod: web-", 17) == 0 && atoi(msg + 17) <= 9 &&
                       count == 1) {
                singles++;
            }
        }
        if (combined_count == 21) break;
        usleep(2000);
    }
    assert_int_equal(json_array_size(items), 10);
    assert_int_equal(singles, 9);
    assert_int_equal(combined, 1);
    /* occurrences 10 to 30 */
    assert_int_equal(combined_count, 21);
    json_decref(list);

    /* 25 Events about one object in a burst, whatever their reasons */
    json_t *cm = load("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                      "{\"name\":\"noisy\",\"namespace\":\"default\",\"uid\":\"u-8\"}}");
    for (int i = 0; i < 40; i++) {
        char reason[32];
        snprintf(reason, sizeof reason, "Reason%d", i);
        skiff_event_record(r, cm, "Warning", reason, "different reasons");
    }
    list = wait_events(c, 10 + 25);
    size_t about_cm = 0, k;
    json_t *e;
    json_array_foreach(json_object_get(list, "items"), k, e) {
        const char *inv = json_string_value(
            json_object_get(json_object_get(e, "involvedObject"), "name"));
        if (strcmp(inv, "noisy") == 0) about_cm++;
    }
    assert_int_equal(about_cm, 25);
    json_decref(list);
    json_decref(cm);
    json_decref(rs);
    skiff_event_recorder_free(r);
    server_stop(c);
}

/* An Event deleted while occurrences still count into it is written anew
 * with its count; an uncorrelated recorder (the scheduler's) writes every
 * different message and has no per-object budget. */
static void test_event_recreated_and_uncorrelated(void **state)
{
    (void)state;
    static const skiff_resource_t ev_res = {"", "v1", "events", NULL};
    skiff_client_t *c = server_start();
    skiff_event_recorder_t *r = skiff_event_recorder_new(c, "test-controller");
    json_t *cm = load("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                      "{\"name\":\"gone\",\"namespace\":\"default\",\"uid\":\"u-5\"}}");
    skiff_event_record(r, cm, "Warning", "Lost", "it went away");
    json_t *list = wait_events(c, 1);
    const char *name = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(list, "items"), 0), "metadata"), "name"));
    assert_non_null(name);
    got_t g = {0};
    assert_int_equal(skiff_client_delete(c, &ev_res, "default", name, NULL, on_got, &g), 0);
    assert_true(api_fixture_wait(&fx, &g.done));
    assert_int_equal(g.status, 200);
    json_decref(g.obj);
    json_decref(list);
    skiff_event_record(r, cm, "Warning", "Lost", "it went away");
    json_int_t count = 0;
    for (int i = 0; i < 200 && count != 2; i++) {
        list = wait_events(c, 1);
        count = json_integer_value(
            json_object_get(json_array_get(json_object_get(list, "items"), 0), "count"));
        json_decref(list);
        if (count != 2) usleep(2000);
    }
    assert_int_equal(count, 2);
    skiff_event_recorder_free(r);

    skiff_event_recorder_t *u = skiff_event_recorder_new(c, "test-scheduler");
    skiff_event_recorder_uncorrelated(u);
    json_t *pod = load("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":"
                       "{\"name\":\"waits\",\"namespace\":\"default\",\"uid\":\"u-6\"}}");
    for (int i = 0; i < 30; i++)
        skiff_event_record(u, pod, "Warning", "FailedScheduling", "0/%d nodes are available", i);
    skiff_event_record(u, pod, "Normal", "Scheduled", "Successfully assigned default/waits");
    list = wait_events(c, 1 + 31);
    size_t k, scheduled = 0, failed = 0;
    json_t *e;
    json_array_foreach(json_object_get(list, "items"), k, e) {
        const char *reason = json_string_value(json_object_get(e, "reason"));
        if (strcmp(reason, "Scheduled") == 0) scheduled++;
        if (strcmp(reason, "FailedScheduling") == 0) failed++;
    }
    assert_int_equal(failed, 30);
    assert_int_equal(scheduled, 1);
    json_decref(list);
    json_decref(pod);
    json_decref(cm);
    skiff_event_recorder_free(u);
    server_stop(c);
}

static void test_event_recorder(void **state)
{
    (void)state;
    skiff_client_t *c = server_start();
    assert_non_null(c);
    skiff_event_recorder_t *r = skiff_event_recorder_new(c, "test-controller");
    assert_non_null(r);
    json_t *cm = load("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                      "{\"name\":\"cfg\",\"namespace\":\"default\",\"uid\":\"u-9\"}}");
    skiff_event_record(r, cm, "Normal", "Synced", "copied %d keys", 3);
    /* let the first one land so the repeat folds into it */
    json_t *list = wait_events(c, 1);
    skiff_event_record(r, cm, "Normal", "Synced", "copied %d keys", 3);
    skiff_event_record(r, cm, "Warning", "Failed", "could not copy");
    json_t *items = NULL;
    int folded = 0;
    for (int i = 0; i < 200 && !folded; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        json_decref(list);
        list = list_events(c);
        items = json_object_get(list, "items");
        size_t k;
        json_t *e;
        int n_synced = 0, count2 = 0, n_failed = 0;
        json_array_foreach(items, k, e) {
            const char *reason = json_string_value(json_object_get(e, "reason"));
            if (strcmp(reason, "Synced") == 0) {
                n_synced++;
                count2 = json_integer_value(json_object_get(e, "count")) == 2;
            }
            if (strcmp(reason, "Failed") == 0) n_failed++;
        }
        folded = n_synced == 1 && count2 && n_failed == 1;
        if (!folded) usleep(2000);
    }
    assert_true(folded);
    json_t *e = json_array_get(items, 0);
    json_t *inv = json_object_get(e, "involvedObject");
    assert_string_equal(json_string_value(json_object_get(inv, "kind")), "ConfigMap");
    assert_string_equal(json_string_value(json_object_get(inv, "uid")), "u-9");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "source"),
                                                          "component")),
                        "test-controller");
    json_decref(list);
    json_decref(cm);
    skiff_event_recorder_free(r);
    server_stop(c);
}

/* ---- binding a pod through a real API server ----------------------------------- */

typedef struct seen_pods {
    json_t *by_name; /* name -> the newest watch object (shared) */
    int events;
} seen_pods_t;

static void on_pod_event(void *data, const char *type, json_t *obj)
{
    seen_pods_t *s = data;
    if (!type || strcmp(type, "BOOKMARK") == 0) return;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (name) json_object_set(s->by_name, name, obj);
    s->events++;
}

static json_t *get_pod(skiff_client_t *c, const char *name)
{
    static const skiff_resource_t pods = {"", "v1", "pods", NULL};
    got_t g = {0};
    assert_int_equal(skiff_client_get(c, &pods, "default", name, on_got, &g), 0);
    assert_true(api_fixture_wait(&fx, &g.done));
    assert_int_equal(g.status, 200);
    return g.obj;
}

static int bind_status(skiff_client_t *c, json_t *pod, const char *node)
{
    got_t g = {0};
    assert_int_equal(skiff_pod_bind(c, pod, node, on_got, &g), 0);
    assert_true(api_fixture_wait(&fx, &g.done));
    json_decref(g.obj);
    return g.status;
}

/* The watch's newest version of name once it has seen n events. */
static json_t *watched(seen_pods_t *s, int n, const char *name)
{
    for (int i = 0; i < 2000 && s->events < n; i++) uv_run(&loop, UV_RUN_ONCE);
    assert_true(s->events >= n);
    json_t *o = json_object_get(s->by_name, name);
    assert_non_null(o);
    return o;
}

static void assert_bound(json_t *pod, const char *node)
{
    const json_t *spec = json_object_get(pod, "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "nodeName")), node);
    assert_string_equal(skiff_condition_status(pod, "PodScheduled"), "True");
    /* the rest of the pod is what it was */
    json_t *c0 = json_array_get(json_object_get(spec, "containers"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "image")), "registry.k8s.io/pause:3.9");
}

static void test_pod_bind(void **state)
{
    (void)state;
    static const skiff_resource_t pods = {"", "v1", "pods", NULL};
    skiff_client_t *c = server_start();
    assert_non_null(c);
    seen_pods_t seen = {json_object(), 0};
    skiff_client_watch_t *w = NULL;
    assert_int_equal(skiff_client_watch(c, &pods, "default", NULL, on_pod_event, &seen, &w), 0);
    const char *names[] = {"fresh", "stale", "copied"};
    for (size_t i = 0; i < 3; i++) {
        json_t *p = json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:[{s:s,s:s}]}}", "apiVersion", "v1",
                              "kind", "Pod", "metadata", "name", names[i], "labels", "app", "a",
                              "spec", "containers", "name", "c", "image",
                              "registry.k8s.io/pause:3.9");
        got_t g = {0};
        assert_int_equal(skiff_client_create(c, &pods, "default", p, NULL, on_got, &g), 0);
        assert_true(api_fixture_wait(&fx, &g.done));
        assert_int_equal(g.status, 201);
        json_decref(g.obj);
        json_decref(p);
    }

    /* 1. the object as the watch handed it: bound, and that object untouched */
    json_t *base = json_incref(watched(&seen, 3, "fresh"));
    assert_int_equal(bind_status(c, base, "node-1"), 201);
    assert_null(json_object_get(json_object_get(base, "spec"), "nodeName"));
    json_t *got = get_pod(c, "fresh");
    assert_bound(got, "node-1");
    json_decref(got);
    /* a second binding of the same version is refused */
    assert_int_equal(bind_status(c, base, "node-2"), 409);
    json_decref(base);

    /* 2. an older version the watch handed: the pod is bound as stored now */
    json_t *old = json_incref(watched(&seen, 4, "stale"));
    got_t g = {0};
    assert_int_equal(skiff_client_patch(c, &pods, "default", "stale", SKIFF_PATCH_MERGE,
                                        "{\"metadata\":{\"labels\":{\"tier\":\"b\"}}}", NULL,
                                        on_got, &g), 0);
    assert_true(api_fixture_wait(&fx, &g.done));
    assert_int_equal(g.status, 200);
    json_decref(g.obj);
    watched(&seen, 5, "stale");
    assert_int_equal(bind_status(c, old, "node-3"), 201);
    got = get_pod(c, "stale");
    assert_bound(got, "node-3");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(got, "metadata"), "labels"), "tier")),
                        "b");
    json_decref(got);
    json_decref(old);

    /* 3. a copy the caller made (not the server's object) works the same */
    json_t *copy = json_deep_copy(watched(&seen, 5, "copied"));
    assert_int_equal(bind_status(c, copy, "node-4"), 201);
    got = get_pod(c, "copied");
    assert_bound(got, "node-4");
    json_decref(got);
    json_decref(copy);

    /* 4. a Binding with empty annotations, on the pod the watch handed over:
     * the pod gets no empty annotations map (Kubernetes writes none) */
    static const char *const more[] = {"annotated"};
    json_t *p4 = json_pack("{s:s,s:s,s:{s:s},s:{s:[{s:s,s:s}]}}", "apiVersion", "v1", "kind", "Pod",
                           "metadata", "name", more[0], "spec", "containers", "name", "c",
                           "image", "registry.k8s.io/pause:3.9");
    got_t g4 = {0};
    assert_int_equal(skiff_client_create(c, &pods, "default", p4, NULL, on_got, &g4), 0);
    assert_true(api_fixture_wait(&fx, &g4.done));
    assert_int_equal(g4.status, 201);
    json_decref(g4.obj);
    json_decref(p4);
    static const skiff_resource_t binding = {"", "v1", "pods", "binding"};
    json_t *b4 = json_pack("{s:s,s:s,s:{s:s,s:{}},s:{s:s,s:s}}", "apiVersion", "v1", "kind",
                           "Binding", "metadata", "name", more[0], "annotations", "target",
                           "kind", "Node", "name", "node-5");
    got_t gb = {0};
    assert_int_equal(client_rest_create_ex(c, &binding, "default", b4, NULL, 1,
                                           watched(&seen, 7, more[0]), 1, on_got, &gb),
                     0);
    assert_true(api_fixture_wait(&fx, &gb.done));
    assert_int_equal(gb.status, 201);
    json_decref(gb.obj);
    got = get_pod(c, more[0]);
    assert_bound(got, "node-5");
    assert_null(json_object_get(json_object_get(got, "metadata"), "annotations"));
    json_decref(got);

    c->vt->watch_cancel(w);
    json_decref(seen.by_name);
    server_stop(c);
}

/* skiff_json_copy: equal to its source, sharing nothing with it */
static void test_json_copy(void **state)
{
    json_t *src = load("{\"a\":{\"b\":[1,2.5,\"x\",true,false,null,{\"c\":\"d\"}]},"
                       "\"e\":\"f\",\"g\":[]}");
    json_t *c = skiff_json_copy(src);
    assert_non_null(c);
    assert_true(json_equal(src, c));
    assert_ptr_not_equal(json_object_get(src, "a"), json_object_get(c, "a"));
    json_t *sa = json_object_get(json_object_get(src, "a"), "b");
    json_t *ca = json_object_get(json_object_get(c, "a"), "b");
    assert_ptr_not_equal(sa, ca);
    assert_ptr_not_equal(json_array_get(sa, 6), json_array_get(ca, 6));
    assert_ptr_not_equal(json_object_get(src, "e"), json_object_get(c, "e"));
    /* changing the copy leaves the source alone */
    json_object_set_new(json_array_get(ca, 6), "c", json_string("changed"));
    json_array_append_new(ca, json_integer(3));
    assert_string_equal(json_string_value(json_object_get(json_array_get(sa, 6), "c")), "d");
    assert_int_equal(json_array_size(sa), 7);
    assert_null(skiff_json_copy(NULL));
    json_decref(src);
    json_decref(c);
}

/* skiff_json_interner_t: equal values come back as one shared tree; a
 * received value is copied in, never referenced; values outlive the table */
static void test_json_interner(void **state)
{
    skiff_json_interner_t *t = skiff_json_interner_new();
    assert_non_null(t);
    json_t *r1 = load("{\"app\":\"web\",\"tier\":\"front\"}");
    json_t *r2 = load("{\"tier\":\"front\",\"app\":\"web\"}");
    json_t *a = skiff_json_intern_copy(t, r1);
    json_t *b = skiff_json_intern_copy(t, r2);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, r1);
    assert_int_equal(r1->refcount, 1);
    assert_true(json_equal(a, r1));
    json_t *own = load("[1,2,3]");
    json_t *c = skiff_json_intern(t, own);
    assert_ptr_equal(c, own);
    json_t *d = skiff_json_intern(t, load("[1,2,3]"));
    assert_ptr_equal(d, c);
    json_t *r3 = load("[1,2,4]");
    json_t *e = skiff_json_intern_copy(t, r3);
    assert_ptr_not_equal(e, c);
    json_decref(r3);
    assert_int_equal(skiff_json_interner_size(t), 3);
    skiff_json_interner_free(t);
    /* the values held outside stay whole */
    assert_string_equal(json_string_value(json_object_get(a, "app")), "web");
    assert_int_equal(json_array_size(d), 3);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
    json_decref(e);
    json_decref(r1);
    json_decref(r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selectors),  cmocka_unit_test(test_owner_refs),
        cmocka_unit_test(test_conditions), cmocka_unit_test(test_time),
        cmocka_unit_test(test_quantities), cmocka_unit_test(test_pods),
        cmocka_unit_test(test_hash),       cmocka_unit_test(test_event_recorder),
        cmocka_unit_test(test_event_aggregation),
        cmocka_unit_test(test_event_recreated_and_uncorrelated),
        cmocka_unit_test(test_answer_message), cmocka_unit_test(test_pod_bind),
        cmocka_unit_test(test_event_message_cut), cmocka_unit_test(test_json_copy),
        cmocka_unit_test(test_json_interner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
