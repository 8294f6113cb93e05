/* tests/unit/test_hollow.c - the parts of hollow nodes that need no
 * server: durations, node and pod address ranges, the objects a hollow
 * kubelet writes (Node, Lease, pod status for running, never-ready and
 * finished pods), the hollow.skiff.io annotations, the write queue's
 * bound and de-duplication, and the pod watch's pages, resumption and
 * relist after 410 (against a scripted client). The whole agent is tested end to end in
 * tests/e2e/test_hollow.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <skiff/objects.h>

#include "agent/hollow_objects.h"
#include "agent/ipam.h"
#include "agent/pod_watch.h"
#include "agent/write_queue.h"
#include "util/duration.h"

static void test_duration(void **state)
{
    int64_t ms;
    assert_int_equal(duration_parse_ms("200ms", &ms), 0);
    assert_int_equal(ms, 200);
    assert_int_equal(duration_parse_ms("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(duration_parse_ms("1.5s", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(duration_parse_ms("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(duration_parse_ms("2h", &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(duration_parse_ms("10", &ms), -1);
    assert_int_equal(duration_parse_ms("-1s", &ms), -1);
    assert_int_equal(duration_parse_ms("1x", &ms), -1);
    assert_int_equal(duration_parse_ms("", &ms), -1);
}

static void test_ipam(void **state)
{
    ipam_t m;
    memset(&m, 0, sizeof m);
    assert_int_equal(ipam_prefix_for(110), 24);
    assert_int_equal(ipam_prefix_for(253), 24);
    assert_int_equal(ipam_prefix_for(254), 23);
    /* ranges other nodes hold are skipped */
    assert_int_equal(ipam_mark(&m, "10.64.0.0/24"), 0);
    assert_int_equal(ipam_mark(&m, "10.64.2.0/23"), 0);
    assert_int_equal(ipam_mark(&m, "192.168.0.0/24"), 0);
    assert_int_equal(ipam_mark(&m, "nonsense"), -1);
    uint32_t a, b, c;
    char buf[20];
    assert_int_equal(ipam_take(&m, 24, &a), 0);
    ipam_format(a, buf, sizeof buf);
    assert_string_equal(buf, "10.64.1.0");
    assert_int_equal(ipam_take(&m, 24, &b), 0);
    ipam_format(b, buf, sizeof buf);
    assert_string_equal(buf, "10.64.4.0");
    assert_int_equal(ipam_take(&m, 23, &c), 0); /* aligned on two units */
    ipam_format(c, buf, sizeof buf);
    assert_string_equal(buf, "10.64.6.0");
    ipam_format(ipam_node_ip(a), buf, sizeof buf);
    assert_string_equal(buf, "10.16.0.2");
    assert_int_not_equal(ipam_node_ip(a), ipam_node_ip(b));

    pod_range_t r;
    assert_int_equal(pod_range_init(&r, a, 24), 0);
    uint32_t ip, first;
    assert_int_equal(pod_range_take(&r, &first), 0);
    ipam_format(first, buf, sizeof buf);
    assert_string_equal(buf, "10.64.1.2");
    int n = 1;
    while (pod_range_take(&r, &ip) == 0) n++;
    assert_int_equal(n, 253); /* .2 to .254 */
    pod_range_release(&r, first);
    assert_int_equal(pod_range_take(&r, &ip), 0);
    assert_int_equal(ip, first);
    assert_int_equal(pod_range_claim(&r, a + 300), -1);
    pod_range_free(&r);
}

static void test_parse_labels_taints(void **state)
{
    char err[200] = "";
    json_t *l = hollow_parse_labels("zone=a, tier=web", err, sizeof err);
    assert_non_null(l);
    assert_string_equal(json_string_value(json_object_get(l, "zone")), "a");
    assert_string_equal(json_string_value(json_object_get(l, "tier")), "web");
    json_decref(l);
    assert_null(hollow_parse_labels("novalue", err, sizeof err));
    assert_non_null(strstr(err, "key=value"));
    json_t *t = hollow_parse_taints("dedicated=gpu:NoSchedule,spot:PreferNoSchedule", err,
                                    sizeof err);
    assert_non_null(t);
    assert_int_equal(json_array_size(t), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 0), "value")), "gpu");
    assert_null(json_object_get(json_array_get(t, 1), "value"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 1), "effect")),
                        "PreferNoSchedule");
    json_decref(t);
    assert_null(hollow_parse_taints("a=b:Sometimes", err, sizeof err));
    assert_non_null(strstr(err, "NoSchedule"));
}

static void test_node_and_lease(void **state)
{
    char err[100];
    json_t *labels = hollow_parse_labels("zone=a", err, sizeof err);
    json_t *taints = hollow_parse_taints("x:NoExecute", err, sizeof err);
    hollow_node_shape_t s = {.cpu = "8", .memory = "32Gi", .pods = "50",
                             .ephemeral_storage = "100Gi", .labels = labels, .taints = taints,
                             .arch = "amd64", .kernel = "6.1"};
    json_t *n = hollow_node_new(&s, "hollow-3", "10.16.0.4", "10.64.3.0/24", 1700000000000);
    assert_non_null(n);
    json_t *meta = json_object_get(n, "metadata");
    json_t *lab = json_object_get(meta, "labels");
    assert_string_equal(json_string_value(json_object_get(lab, "kubernetes.io/hostname")),
                        "hollow-3");
    assert_string_equal(json_string_value(json_object_get(lab, "kubernetes.io/os")), "linux");
    assert_string_equal(json_string_value(json_object_get(lab, "zone")), "a");
    json_t *t0 = json_array_get(json_object_get(json_object_get(n, "spec"), "taints"), 0);
    assert_non_null(json_object_get(t0, "timeAdded")); /* NoExecute taints carry it */
    json_t *st = json_object_get(n, "status");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(st, "capacity"), "cpu")), "8");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(st, "allocatable"), "pods")), "50");
    assert_string_equal(skiff_condition_status(n, "Ready"), "True");
    assert_string_equal(
        json_string_value(json_object_get(skiff_condition_get(n, "Ready"), "reason")),
        "KubeletReady");
    assert_string_equal(skiff_condition_status(n, "MemoryPressure"), "False");
    assert_string_equal(skiff_condition_status(n, "DiskPressure"), "False");
    assert_string_equal(skiff_condition_status(n, "PIDPressure"), "False");
    json_t *info = json_object_get(st, "nodeInfo");
    assert_string_equal(json_string_value(json_object_get(info, "kubeletVersion")),
                        HOLLOW_KUBELET_VERSION);
    assert_string_equal(json_string_value(json_object_get(info, "containerRuntimeVersion")),
                        "hollow://");
    json_t *addr = json_array_get(json_object_get(st, "addresses"), 0);
    assert_string_equal(json_string_value(json_object_get(addr, "address")), "10.16.0.4");
    json_decref(n);
    json_decref(labels);
    json_decref(taints);

    json_t *lease = hollow_lease_new("hollow-3", "u-1", 1700000000123);
    json_t *spec = json_object_get(lease, "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "renewTime")),
                        "2023-11-14T22:13:20.123000Z");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(json_object_get(lease, "metadata"),
                                                           "ownerReferences"),
                                           0),
                            "uid")),
                        "u-1");
    json_decref(lease);
}

static json_t *pod(const char *policy, const char *ready, const char *run_for, const char *code)
{
    json_t *p = json_pack("{s:{s:s, s:s, s:s, s:{}}, s:{s:s, s:[{s:s, s:s}]}, s:{s:s}}",
                          "metadata", "name", "p", "namespace", "default", "uid", "uid-1",
                          "annotations", "spec", "restartPolicy", policy, "containers", "name",
                          "main", "image", "busybox", "status", "qosClass", "BestEffort");
    json_t *ann = json_object_get(json_object_get(p, "metadata"), "annotations");
    if (ready) json_object_set_new(ann, HOLLOW_ANN_READY, json_string(ready));
    if (run_for) json_object_set_new(ann, HOLLOW_ANN_RUN_FOR, json_string(run_for));
    if (code) json_object_set_new(ann, HOLLOW_ANN_EXIT_CODE, json_string(code));
    return p;
}

static void test_pod_status(void **state)
{
    json_t *p = pod("Always", NULL, NULL, NULL);
    hollow_pod_view_t v = {.stage = HOLLOW_POD_RUNNING, .ready = 1, .pod_ip = "10.64.1.2",
                           .host_ip = "10.16.0.2", .accepted_ms = 1700000000000,
                           .started_ms = 1700000001000};
    json_t *st = hollow_pod_status(p, &v);
    json_t *wrap = json_pack("{s:o}", "status", st);
    assert_string_equal(json_string_value(json_object_get(st, "phase")), "Running");
    assert_string_equal(json_string_value(json_object_get(st, "podIP")), "10.64.1.2");
    assert_string_equal(json_string_value(json_object_get(st, "qosClass")), "BestEffort");
    assert_string_equal(skiff_condition_status(wrap, "Ready"), "True");
    assert_string_equal(skiff_condition_status(wrap, "ContainersReady"), "True");
    assert_string_equal(skiff_condition_status(wrap, "Initialized"), "True");
    assert_string_equal(skiff_condition_status(wrap, "PodScheduled"), "True");
    assert_string_equal(skiff_condition_status(wrap, "PodReadyToStartContainers"), "True");
    json_t *cs = json_array_get(json_object_get(st, "containerStatuses"), 0);
    assert_true(json_is_true(json_object_get(cs, "ready")));
    assert_true(json_is_true(json_object_get(cs, "started")));
    assert_string_equal(json_string_value(json_object_get(cs, "containerID")),
                        "hollow://uid-1/main");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(cs, "state"), "running"),
                            "startedAt")),
                        "2023-11-14T22:13:21Z");
    json_decref(wrap);

    v.ready = 0; /* hollow.skiff.io/ready: "false" */
    wrap = json_pack("{s:o}", "status", hollow_pod_status(p, &v));
    assert_string_equal(skiff_condition_status(wrap, "Ready"), "False");
    assert_string_equal(
        json_string_value(json_object_get(skiff_condition_get(wrap, "Ready"), "message")),
        "containers with unready status: [main]");
    json_decref(wrap);

    v.stage = HOLLOW_POD_TERMINATED;
    v.exit_code = 3;
    v.finished_ms = 1700000002000;
    wrap = json_pack("{s:o}", "status", hollow_pod_status(p, &v));
    st = json_object_get(wrap, "status");
    assert_string_equal(json_string_value(json_object_get(st, "phase")), "Failed");
    cs = json_array_get(json_object_get(st, "containerStatuses"), 0);
    json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
    assert_int_equal(json_integer_value(json_object_get(term, "exitCode")), 3);
    assert_string_equal(json_string_value(json_object_get(term, "reason")), "Error");
    assert_string_equal(skiff_condition_status(wrap, "Ready"), "False");
    json_decref(wrap);
    v.exit_code = 0;
    wrap = json_pack("{s:o}", "status", hollow_pod_status(p, &v));
    assert_string_equal(json_string_value(json_object_get(json_object_get(wrap, "status"), "phase")),
                        "Succeeded");
    json_decref(wrap);
    json_decref(p);
}

static void test_behaviour(void **state)
{
    int never, code;
    int64_t run_for;
    json_t *p = pod("Always", "false", "5s", NULL);
    assert_int_equal(hollow_pod_behaviour(p, &never, &run_for, &code), 0);
    assert_true(never);
    assert_int_equal(run_for, -1); /* restartPolicy Always keeps running */
    json_decref(p);
    p = pod("Never", NULL, NULL, NULL);
    assert_int_equal(hollow_pod_behaviour(p, &never, &run_for, &code), 0);
    assert_false(never);
    assert_int_equal(run_for, 1000);
    assert_int_equal(code, 0);
    json_decref(p);
    p = pod("OnFailure", NULL, "250ms", "3");
    assert_int_equal(hollow_pod_behaviour(p, &never, &run_for, &code), 0);
    assert_int_equal(run_for, 250);
    assert_int_equal(code, 3);
    json_decref(p);
    p = pod("Never", NULL, "soon", "x");
    assert_int_equal(hollow_pod_behaviour(p, &never, &run_for, &code), -1);
    assert_int_equal(run_for, 1000);
    assert_int_equal(code, 0);
    json_decref(p);
}

/* ---- write queue with a fake client: answers come when the test says */

typedef struct fake {
    int started[16];
    int order[64], norder; /* kinds in the order they were started */
    write_op_t *pending[64];
    int npending;
    int done_calls;
    int fail_next;
} fake_t;

static int fake_start(void *owner, int kind, const char *key, write_op_t *op)
{
    fake_t *f = owner;
    f->started[kind]++;
    if (f->norder < 64) f->order[f->norder++] = kind;
    f->pending[f->npending++] = op;
    return 0;
}

static int64_t fake_done(void *owner, int kind, const char *key, int status, json_t *obj)
{
    fake_t *f = owner;
    f->done_calls++;
    return status == 500 ? 5 : 0;
}

static const write_queue_ops_t fake_ops = {fake_start, fake_done};

static void answer(fake_t *f, int status)
{
    write_op_t *op = f->pending[0];
    memmove(f->pending, f->pending + 1, (size_t)--f->npending * sizeof *f->pending);
    write_queue_client_cb(op, status, NULL);
}

static void test_write_queue(void **state)
{
    fake_t f = {0};
    write_queue_t *q = write_queue_new(&fake_ops, &f, 2);
    write_queue_add(q, 1, "a");
    write_queue_add(q, 1, "a"); /* de-duplicated while queued */
    write_queue_add(q, 1, "b");
    write_queue_add(q, 2, "a"); /* another kind is another entry */
    assert_int_equal(write_queue_waiting(q), 3);
    write_queue_pump(q);
    assert_int_equal(write_queue_in_flight(q), 2); /* the bound */
    assert_int_equal(f.started[1], 2);
    answer(&f, 200);
    assert_int_equal(f.started[2], 1);
    answer(&f, 500); /* retried after 5 ms */
    assert_int_equal(write_queue_waiting(q), 1);
    answer(&f, 200);
    assert_int_equal(write_queue_in_flight(q), 0);
    write_queue_tick(q, INT64_MAX / 2);
    assert_int_equal(write_queue_in_flight(q), 1);
    assert_int_equal(f.started[1], 3);
    answer(&f, 200);
    uint64_t sent, retried;
    write_queue_stats(q, &sent, &retried);
    assert_int_equal(sent, 4);
    assert_int_equal(retried, 1);
    /* urgent entries overtake the others */
    write_queue_add(q, 4, "pod1");
    write_queue_add(q, 4, "pod2");
    write_queue_add(q, 4, "pod3");
    write_queue_pump(q); /* pod1 and pod2 take both slots */
    assert_int_equal(f.started[4], 2);
    write_queue_add_urgent(q, 5, "lease");
    answer(&f, 200);
    assert_int_equal(f.started[5], 1); /* the lease before pod3 */
    assert_int_equal(f.started[4], 2);
    answer(&f, 200);
    answer(&f, 200);
    assert_int_equal(f.started[4], 3);
    answer(&f, 200);
    /* but not to the point of starving them: one start in four is theirs */
    for (int i = 0; i < 12; i++) {
        char k[16];
        snprintf(k, sizeof k, "u%d", i);
        write_queue_add_urgent(q, 6, k);
    }
    write_queue_add(q, 7, "patient");
    int before = f.norder;
    write_queue_pump(q);
    while (f.npending) answer(&f, 200);
    assert_int_equal(f.started[6], 12);
    assert_int_equal(f.started[7], 1);
    int pos = -1;
    for (int i = before; i < f.norder; i++)
        if (f.order[i] == 7) pos = i - before;
    assert_true(pos >= 0 && pos <= 3); /* among the first four, not after the twelve */
    write_queue_add(q, 3, "left");
    write_queue_free(q); /* queued entries go with it */
}

/* ---- pod watch against a scripted client ------------------------------------ */

typedef struct script {
    skiff_client_t base;
    int lists, watches, cancels;
    char last_continue[64], last_rv[64];
    int64_t last_limit;
    skiff_client_cb list_cb;
    void *list_data;
    skiff_client_watch_cb watch_cb;
    void *watch_data;
    /* what the owner saw */
    int begins, ends, upserts, deletes;
} script_t;

static script_t *S;

static int s_list(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                  const skiff_list_opts_t *o, skiff_client_cb cb, void *data)
{
    S->lists++;
    snprintf(S->last_continue, sizeof S->last_continue, "%s",
             o->continue_token ? o->continue_token : "");
    S->last_limit = o->limit;
    assert_string_equal(o->field_selector, "spec.nodeName!=");
    S->list_cb = cb;
    S->list_data = data;
    return 0;
}

static int s_watch(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                   const skiff_list_opts_t *o, skiff_client_watch_cb cb, void *data,
                   skiff_client_watch_t **out)
{
    S->watches++;
    snprintf(S->last_rv, sizeof S->last_rv, "%s", o->resource_version ? o->resource_version : "");
    assert_true(o->allow_bookmarks);
    S->watch_cb = cb;
    S->watch_data = data;
    *out = (skiff_client_watch_t *)S;
    return 0;
}

static void s_cancel(skiff_client_watch_t *w)
{
    S->cancels++;
    S->watch_cb = NULL;
}

static const skiff_client_vtable_t script_vt = {.list = s_list, .watch = s_watch,
                                                .watch_cancel = s_cancel};

static void pw_begin(void *d) { S->begins++; }
static void pw_upsert(void *d, json_t *pod) { S->upserts++; }
static void pw_delete(void *d, json_t *pod) { S->deletes++; }
static void pw_end(void *d) { S->ends++; }

static void answer_list(int status, const char *json)
{
    json_t *obj = json_loads(json, 0, NULL);
    skiff_client_cb cb = S->list_cb;
    S->list_cb = NULL;
    cb(S->list_data, status, obj);
    json_decref(obj);
}

static void event(const char *type, const char *json)
{
    json_t *obj = json ? json_loads(json, 0, NULL) : NULL;
    S->watch_cb(S->watch_data, type, obj);
    json_decref(obj);
}

static void test_pod_watch(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    script_t s = {.base = {.vt = &script_vt}};
    S = &s;
    pod_watch_handler_t h = {pw_begin, pw_upsert, pw_delete, pw_end, NULL};
    pod_watch_t *w = pod_watch_start(&loop, &s.base, "spec.nodeName!=", &h);
    assert_non_null(w);
    assert_int_equal(s.lists, 1);
    assert_true(s.last_limit > 0); /* paginated */
    answer_list(200, "{\"metadata\":{\"resourceVersion\":\"10\",\"continue\":\"c1\"},"
                     "\"items\":[{\"metadata\":{\"name\":\"a\"}},{\"metadata\":{\"name\":\"b\"}}]}");
    assert_int_equal(s.begins, 1);
    assert_int_equal(s.lists, 2); /* the next page */
    assert_string_equal(s.last_continue, "c1");
    assert_int_equal(s.ends, 0);
    answer_list(200, "{\"metadata\":{\"resourceVersion\":\"12\"},"
                     "\"items\":[{\"metadata\":{\"name\":\"c\"}}]}");
    assert_int_equal(s.upserts, 3);
    assert_int_equal(s.ends, 1);
    assert_int_equal(s.watches, 1);
    assert_string_equal(s.last_rv, "10"); /* the first page's version is the list's */

    event("ADDED", "{\"metadata\":{\"name\":\"d\",\"resourceVersion\":\"15\"}}");
    event("DELETED", "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"16\"}}");
    event("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"20\"}}");
    assert_int_equal(s.upserts, 4);
    assert_int_equal(s.deletes, 1);
    event(NULL, NULL); /* the server ended it: resumed from the last version */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(s.watches, 2);
    assert_string_equal(s.last_rv, "20");

    /* 410: too old; a new list, between begin and end */
    event("ERROR", "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}");
    assert_int_equal(s.cancels, 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(s.lists, 3);
    assert_string_equal(s.last_continue, "");
    answer_list(200, "{\"metadata\":{\"resourceVersion\":\"30\"},\"items\":[]}");
    assert_int_equal(s.begins, 2);
    assert_int_equal(s.ends, 2);
    assert_int_equal(s.watches, 3);
    assert_string_equal(s.last_rv, "30");

    /* that list's own watch expires at once too (history compacted as
     * fast as it is listed): the next list waits, not a loop of lists */
    event("ERROR", "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}");
    assert_int_equal(s.cancels, 2);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(s.lists, 3);
    uint64_t t0 = uv_hrtime();
    while (s.lists == 3 && uv_hrtime() - t0 < 2000000000ull) uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(s.lists, 4);
    assert_true(uv_hrtime() - t0 >= 50000000ull); /* after its back-off */
    answer_list(200, "{\"metadata\":{\"resourceVersion\":\"40\"},\"items\":[]}");
    assert_int_equal(s.watches, 4);
    assert_string_equal(s.last_rv, "40");

    int lists, watches;
    pod_watch_stats(w, &lists, &watches);
    assert_int_equal(lists, 3); /* pages do not count */
    assert_int_equal(watches, 4);
    pod_watch_stop(w);
    assert_int_equal(s.cancels, 3);
    uv_run(&loop, UV_RUN_DEFAULT); /* the timer closes, the memory goes */

    /* stopped while a list is in flight: gone once it is answered, and
     * no handler runs for it */
    w = pod_watch_start(&loop, &s.base, "spec.nodeName!=", &h);
    pod_watch_stop(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    answer_list(200, "{\"metadata\":{\"resourceVersion\":\"40\"},"
                     "\"items\":[{\"metadata\":{\"name\":\"z\"}}]}");
    assert_int_equal(s.upserts, 4);
    assert_int_equal(s.begins, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),       cmocka_unit_test(test_ipam),
        cmocka_unit_test(test_parse_labels_taints), cmocka_unit_test(test_node_and_lease),
        cmocka_unit_test(test_pod_status),     cmocka_unit_test(test_behaviour),
        cmocka_unit_test(test_write_queue),    cmocka_unit_test(test_pod_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
