/* tests/unit/test_scheduler.c - the scheduler's steps on hand-built nodes
 * and pods: each filter's reasons, the score ordering of LeastAllocated
 * against MostAllocated, the FailedScheduling message, profile settings
 * and the choice of preemption victims. No server: the cache is filled
 * directly, as the informers would fill it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <skiff/controller.h>

#include "sched.h"

/* ---- fixtures ------------------------------------------------------------------ */

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) fail_msg("bad JSON in test: %s: %s", e.text, text);
    return j;
}

/* A node named name with cpu and memory allocatable; extra is merged into
 * the node object (labels, taints, ...). */
static node_info_t *add_node(sched_cache_t *c, const char *name, const char *cpu,
                             const char *mem, const char *extra)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"kubernetes.io/hostname\":\"%s\"}},"
             "\"status\":{\"allocatable\":{\"cpu\":\"%s\",\"memory\":\"%s\",\"pods\":\"110\"}}}",
             name, name, cpu, mem);
    json_t *n = load(buf);
    if (extra) {
        json_t *x = load(extra);
        const char *k;
        json_t *v;
        json_object_foreach(x, k, v) {
            if (strcmp(k, "labels") == 0)
                json_object_update(json_object_get(json_object_get(n, "metadata"), "labels"), v);
            else
                json_object_set(n, k, v);
        }
        json_decref(x);
    }
    node_info_t *ni = cache_node_set(c, n);
    json_decref(n);
    return ni;
}

/* A pod with one container requesting cpu and memory (NULL: none); spec
 * is merged into spec; labels into metadata.labels. */
static pod_info_t *mk_pod(const char *name, const char *cpu, const char *mem, const char *spec,
                          const char *labels)
{
    char req[256] = "";
    if (cpu || mem)
        snprintf(req, sizeof req, "\"resources\":{\"requests\":{%s%s%s%s%s%s%s}},",
                 cpu ? "\"cpu\":\"" : "", cpu ? cpu : "", cpu ? "\"" : "", cpu && mem ? "," : "",
                 mem ? "\"memory\":\"" : "", mem ? mem : "", mem ? "\"" : "");
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"uid\":\"u-%s\","
             "\"labels\":%s},\"spec\":{\"containers\":[{%s\"name\":\"c\",\"image\":\"busybox\"}]}}",
             name, name, labels ? labels : "{}", req);
    json_t *p = load(buf);
    if (spec) {
        json_t *x = load(spec);
        json_object_update(json_object_get(p, "spec"), x);
        json_decref(x);
    }
    pod_info_t *pi = pod_info_new(p);
    json_decref(p);
    return pi;
}

/* A pod placed on a node, as a bound pod is. */
static pod_info_t *place(sched_cache_t *c, node_info_t *ni, pod_info_t *pi)
{
    pod_info_set_node(pi, ni->name);
    smap_put(&c->pods, pi->key, pi);
    node_add_pod(ni, pi);
    return pi;
}

static sched_profile_t profile(const char *filters, const char *scores, const char *strategy)
{
    sched_profile_t p;
    char err[256];
    assert_int_equal(profile_parse(&p, filters, scores, strategy, err, sizeof err), 0);
    return p;
}

/* Runs one filter step on one node: its code, reasons in why. */
static int run_filter(const skiff_sched_step_t *s, sched_cache_t *c, pod_info_t *pi,
                      node_info_t *ni, skiff_sched_reasons_t *why)
{
    skiff_sched_cycle_t cy = {.pod = &pi->p,
                              .nodes = (skiff_sched_node_t *const *)(void *)c->list,
                              .n_nodes = c->n_nodes,
                              .n_pods_with_anti_affinity = c->n_anti,
                              .n_pods_with_affinity = c->n_aff};
    void *state = NULL;
    memset(why, 0, sizeof *why);
    if (s->pre_filter) {
        int code = s->pre_filter(s->data, &cy, &state, why);
        if (code == SKIFF_SCHED_SKIP) return SKIFF_SCHED_OK;
        if (code != SKIFF_SCHED_OK) return code;
    }
    int code = s->filter(s->data, &cy, state, &ni->n, why);
    if (state && s->free_state) s->free_state(state);
    return code;
}

static char *message_for(sched_cache_t *c, pod_info_t *pi, const sched_profile_t *prof)
{
    cycle_result_t res;
    cycle_opts_t o = {0};
    cycle_run(prof, c, pi, &o, &res);
    assert_null(res.chosen);
    char *m = fit_error_message(c->n_nodes, res.prefilter_msg, res.verdicts, c->n_nodes, NULL);
    cycle_result_free(&res);
    return m;
}

/* ---- filters ------------------------------------------------------------------------ */

static void test_resources_fit(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    node_info_t *n = add_node(&c, "n1", "2", "4Gi", NULL);
    place(&c, n, mk_pod("a", "1500m", "3Gi", NULL, NULL));
    pod_info_t *p = mk_pod("p", "1", "2Gi", NULL, NULL);
    skiff_sched_reasons_t why;
    assert_int_equal(run_filter(&step_node_resources_fit, &c, p, n, &why), SKIFF_SCHED_UNSCHEDULABLE);
    assert_int_equal(why.n, 2);
    assert_string_equal(why.text[0], "Insufficient cpu");
    assert_string_equal(why.text[1], "Insufficient memory");
    pod_info_t *small = mk_pod("s", "500m", "1Gi", NULL, NULL);
    assert_int_equal(run_filter(&step_node_resources_fit, &c, small, n, &why), SKIFF_SCHED_OK);
    /* extended resources and the pod count */
    pod_info_t *gpu = mk_pod("g", NULL, NULL,
                             "{\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"resources\":{"
                             "\"limits\":{\"example.com/gpu\":\"1\"}}}]}",
                             NULL);
    assert_int_equal(run_filter(&step_node_resources_fit, &c, gpu, n, &why), SKIFF_SCHED_UNSCHEDULABLE);
    assert_string_equal(why.text[0], "Insufficient example.com/gpu");
    json_t *full = load("{\"metadata\":{\"name\":\"n2\"},\"status\":{\"allocatable\":{\"cpu\":\"8\",\"pods\":\"1\"}}}");
    node_info_t *n2 = cache_node_set(&c, full);
    json_decref(full);
    place(&c, n2, mk_pod("b", NULL, NULL, NULL, NULL));
    assert_int_equal(run_filter(&step_node_resources_fit, &c, small, n2, &why), SKIFF_SCHED_UNSCHEDULABLE);
    assert_string_equal(why.text[0], "Too many pods");
    pod_info_free(p);
    pod_info_free(small);
    pod_info_free(gpu);
    cache_free(&c);
}

static void test_taints_and_unschedulable(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    node_info_t *t = add_node(&c, "t", "4", "8Gi",
                              "{\"spec\":{\"taints\":[{\"key\":\"dedicated\",\"value\":\"db\","
                              "\"effect\":\"NoSchedule\"}]}}");
    node_info_t *u = add_node(&c, "u", "4", "8Gi", "{\"spec\":{\"unschedulable\":true}}");
    pod_info_t *p = mk_pod("p", NULL, NULL, NULL, NULL);
    skiff_sched_reasons_t why;
    assert_int_equal(run_filter(&step_taint_toleration, &c, p, t, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_string_equal(why.text[0], "node(s) had untolerated taint {dedicated: db}");
    assert_int_equal(run_filter(&step_node_unschedulable, &c, p, u, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_string_equal(why.text[0], "node(s) were unschedulable");
    pod_info_t *tol = mk_pod("tol", NULL, NULL,
                             "{\"tolerations\":[{\"key\":\"dedicated\",\"operator\":\"Equal\","
                             "\"value\":\"db\",\"effect\":\"NoSchedule\"},{\"key\":"
                             "\"node.kubernetes.io/unschedulable\",\"operator\":\"Exists\"}]}",
                             NULL);
    assert_int_equal(run_filter(&step_taint_toleration, &c, tol, t, &why), SKIFF_SCHED_OK);
    assert_int_equal(run_filter(&step_node_unschedulable, &c, tol, u, &why), SKIFF_SCHED_OK);
    pod_info_t *wrong = mk_pod("w", NULL, NULL,
                               "{\"tolerations\":[{\"key\":\"dedicated\",\"value\":\"web\"}]}", NULL);
    assert_int_equal(run_filter(&step_taint_toleration, &c, wrong, t, &why), SKIFF_SCHED_UNRESOLVABLE);
    pod_info_free(p);
    pod_info_free(tol);
    pod_info_free(wrong);
    cache_free(&c);
}

static void test_node_affinity(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    node_info_t *a = add_node(&c, "a", "4", "8Gi", "{\"labels\":{\"disk\":\"ssd\",\"gen\":\"5\"}}");
    node_info_t *b = add_node(&c, "b", "4", "8Gi", "{\"labels\":{\"disk\":\"hdd\",\"gen\":\"3\"}}");
    skiff_sched_reasons_t why;
    pod_info_t *sel = mk_pod("s", NULL, NULL, "{\"nodeSelector\":{\"disk\":\"ssd\"}}", NULL);
    assert_int_equal(run_filter(&step_node_affinity, &c, sel, a, &why), SKIFF_SCHED_OK);
    assert_int_equal(run_filter(&step_node_affinity, &c, sel, b, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_string_equal(why.text[0], "node(s) didn't match Pod's node affinity/selector");
    struct {
        const char *expr;
        int a, b;
    } cases[] = {
        {"{\"key\":\"gen\",\"operator\":\"Gt\",\"values\":[\"4\"]}", 1, 0},
        {"{\"key\":\"gen\",\"operator\":\"Lt\",\"values\":[\"4\"]}", 0, 1},
        {"{\"key\":\"disk\",\"operator\":\"In\",\"values\":[\"hdd\",\"nvme\"]}", 0, 1},
        {"{\"key\":\"disk\",\"operator\":\"NotIn\",\"values\":[\"hdd\"]}", 1, 0},
        {"{\"key\":\"zone\",\"operator\":\"DoesNotExist\"}", 1, 1},
        {"{\"key\":\"zone\",\"operator\":\"Exists\"}", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char spec[1024];
        snprintf(spec, sizeof spec,
                 "{\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
                 "{\"nodeSelectorTerms\":[{\"matchExpressions\":[%s]}]}}}}",
                 cases[i].expr);
        pod_info_t *p = mk_pod("x", NULL, NULL, spec, NULL);
        assert_int_equal(run_filter(&step_node_affinity, &c, p, a, &why) == SKIFF_SCHED_OK, cases[i].a);
        assert_int_equal(run_filter(&step_node_affinity, &c, p, b, &why) == SKIFF_SCHED_OK, cases[i].b);
        pod_info_free(p);
    }
    pod_info_t *f = mk_pod("f", NULL, NULL,
                           "{\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
                           "{\"nodeSelectorTerms\":[{\"matchFields\":[{\"key\":\"metadata.name\","
                           "\"operator\":\"In\",\"values\":[\"b\"]}]}]}}}}",
                           NULL);
    assert_int_equal(run_filter(&step_node_affinity, &c, f, a, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_int_equal(run_filter(&step_node_affinity, &c, f, b, &why), SKIFF_SCHED_OK);
    pod_info_free(sel);
    pod_info_free(f);
    cache_free(&c);
}

static void test_node_ports_and_name(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    node_info_t *n = add_node(&c, "n", "4", "8Gi", NULL);
    const char *ports = "{\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"ports\":[{"
                        "\"containerPort\":80,\"hostPort\":8080}]}]}";
    place(&c, n, mk_pod("a", NULL, NULL, ports, NULL));
    pod_info_t *p = mk_pod("p", NULL, NULL, ports, NULL);
    skiff_sched_reasons_t why;
    assert_int_equal(run_filter(&step_node_ports, &c, p, n, &why), SKIFF_SCHED_UNSCHEDULABLE);
    assert_string_equal(why.text[0], "node(s) didn't have free ports for the requested pod ports");
    pod_info_t *udp = mk_pod("u", NULL, NULL,
                             "{\"containers\":[{\"name\":\"c\",\"image\":\"x\",\"ports\":[{"
                             "\"containerPort\":80,\"hostPort\":8080,\"protocol\":\"UDP\"}]}]}",
                             NULL);
    assert_int_equal(run_filter(&step_node_ports, &c, udp, n, &why), SKIFF_SCHED_OK);
    pod_info_t *named = mk_pod("nm", NULL, NULL, "{\"nodeName\":\"other\"}", NULL);
    assert_int_equal(run_filter(&step_node_name, &c, named, n, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_string_equal(why.text[0], "node(s) didn't match the requested node name");
    pod_info_free(p);
    pod_info_free(udp);
    pod_info_free(named);
    cache_free(&c);
}

static void test_inter_pod_affinity(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    node_info_t *a = add_node(&c, "a", "4", "8Gi", "{\"labels\":{\"zone\":\"z1\"}}");
    node_info_t *b = add_node(&c, "b", "4", "8Gi", "{\"labels\":{\"zone\":\"z2\"}}");
    place(&c, a, mk_pod("web1", NULL, NULL, NULL, "{\"app\":\"web\"}"));
    skiff_sched_reasons_t why;
    const char *anti = "{\"affinity\":{\"podAntiAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
                       "[{\"labelSelector\":{\"matchLabels\":{\"app\":\"web\"}},\"topologyKey\":\"zone\"}]}}}";
    pod_info_t *p = mk_pod("web2", NULL, NULL, anti, "{\"app\":\"web\"}");
    assert_int_equal(run_filter(&step_inter_pod_affinity, &c, p, a, &why), SKIFF_SCHED_UNSCHEDULABLE);
    assert_string_equal(why.text[0], "node(s) didn't match pod anti-affinity rules");
    assert_int_equal(run_filter(&step_inter_pod_affinity, &c, p, b, &why), SKIFF_SCHED_OK);
    const char *aff = "{\"affinity\":{\"podAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
                      "[{\"labelSelector\":{\"matchLabels\":{\"app\":\"web\"}},\"topologyKey\":\"zone\"}]}}}";
    pod_info_t *q = mk_pod("cache", NULL, NULL, aff, "{\"app\":\"cache\"}");
    assert_int_equal(run_filter(&step_inter_pod_affinity, &c, q, a, &why), SKIFF_SCHED_OK);
    assert_int_equal(run_filter(&step_inter_pod_affinity, &c, q, b, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_string_equal(why.text[0], "node(s) didn't match pod affinity rules");
    /* an existing pod's anti-affinity keeps the incoming pod away */
    place(&c, b, mk_pod("loner", NULL, NULL,
                        "{\"affinity\":{\"podAntiAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
                        "[{\"labelSelector\":{\"matchLabels\":{\"app\":\"noisy\"}},\"topologyKey\":\"zone\"}]}}}",
                        NULL));
    pod_info_t *noisy = mk_pod("noisy", NULL, NULL, NULL, "{\"app\":\"noisy\"}");
    assert_int_equal(run_filter(&step_inter_pod_affinity, &c, noisy, b, &why), SKIFF_SCHED_UNSCHEDULABLE);
    assert_string_equal(why.text[0], "node(s) didn't satisfy existing pods anti-affinity rules");
    assert_int_equal(run_filter(&step_inter_pod_affinity, &c, noisy, a, &why), SKIFF_SCHED_OK);
    pod_info_free(p);
    pod_info_free(q);
    pod_info_free(noisy);
    cache_free(&c);
}

static void test_topology_spread(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    node_info_t *a = add_node(&c, "a", "4", "8Gi", "{\"labels\":{\"zone\":\"z1\"}}");
    node_info_t *b = add_node(&c, "b", "4", "8Gi", "{\"labels\":{\"zone\":\"z2\"}}");
    node_info_t *nolabel = add_node(&c, "x", "4", "8Gi", NULL);
    place(&c, a, mk_pod("w1", NULL, NULL, NULL, "{\"app\":\"web\"}"));
    place(&c, a, mk_pod("w2", NULL, NULL, NULL, "{\"app\":\"web\"}"));
    const char *spread = "{\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":\"zone\","
                         "\"whenUnsatisfiable\":\"DoNotSchedule\",\"labelSelector\":{\"matchLabels\":"
                         "{\"app\":\"web\"}}}]}";
    pod_info_t *p = mk_pod("w3", NULL, NULL, spread, "{\"app\":\"web\"}");
    skiff_sched_reasons_t why;
    assert_int_equal(run_filter(&step_pod_topology_spread, &c, p, a, &why), SKIFF_SCHED_UNSCHEDULABLE);
    assert_string_equal(why.text[0], "node(s) didn't match pod topology spread constraints");
    assert_int_equal(run_filter(&step_pod_topology_spread, &c, p, b, &why), SKIFF_SCHED_OK);
    assert_int_equal(run_filter(&step_pod_topology_spread, &c, p, nolabel, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_string_equal(why.text[0],
                        "node(s) didn't match pod topology spread constraints (missing required label)");
    /* minDomains above the domains there are: the global minimum is 0 */
    const char *md = "{\"topologySpreadConstraints\":[{\"maxSkew\":2,\"minDomains\":3,\"topologyKey\":\"zone\","
                     "\"whenUnsatisfiable\":\"DoNotSchedule\",\"labelSelector\":{\"matchLabels\":"
                     "{\"app\":\"web\"}}}]}";
    pod_info_t *q = mk_pod("w4", NULL, NULL, md, "{\"app\":\"web\"}");
    place(&c, b, mk_pod("w5", NULL, NULL, NULL, "{\"app\":\"web\"}"));
    assert_int_equal(run_filter(&step_pod_topology_spread, &c, q, a, &why), SKIFF_SCHED_UNSCHEDULABLE);
    assert_int_equal(run_filter(&step_pod_topology_spread, &c, q, b, &why), SKIFF_SCHED_OK);
    pod_info_free(p);
    pod_info_free(q);
    cache_free(&c);
}

/* ---- scores and cycles --------------------------------------------------------------- */

static const char *chosen(sched_cache_t *c, pod_info_t *p, const sched_profile_t *prof)
{
    cycle_result_t res;
    uint64_t rng = 42;
    size_t start = 0;
    cycle_opts_t o = {.rng = &rng, .next_start = &start};
    cycle_run(prof, c, p, &o, &res);
    const char *name = res.chosen ? res.chosen->name : NULL;
    cycle_result_free(&res);
    return name;
}

static void test_least_vs_most_allocated(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    node_info_t *busy = add_node(&c, "busy", "4", "8Gi", NULL);
    add_node(&c, "idle", "4", "8Gi", NULL);
    place(&c, busy, mk_pod("a", "2", "4Gi", NULL, NULL));
    pod_info_t *p = mk_pod("p", "1", "1Gi", NULL, NULL);
    sched_profile_t least = profile(NULL, "NodeResourcesFit:1", "LeastAllocated");
    sched_profile_t most = profile(NULL, "NodeResourcesFit:1", "MostAllocated");
    assert_string_equal(chosen(&c, p, &least), "idle");
    assert_string_equal(chosen(&c, p, &most), "busy");
    /* the raw scores, as kube-scheduler computes them: (4-3)/4 and 3/4 of
     * cpu, (8-5)/8 and 5/8 of memory, averaged */
    skiff_sched_cycle_t cy = {.pod = &p->p};
    assert_int_equal(step_least_allocated.score(NULL, &cy, NULL, &busy->n), (25 + 37) / 2);
    assert_int_equal(step_most_allocated.score(NULL, &cy, NULL, &busy->n), (75 + 62) / 2);
    pod_info_free(p);
    cache_free(&c);
}

static void test_preferred_scores(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    add_node(&c, "plain", "4", "8Gi", NULL);
    add_node(&c, "ssd", "4", "8Gi", "{\"labels\":{\"disk\":\"ssd\"}}");
    add_node(&c, "soft", "4", "8Gi",
             "{\"labels\":{\"disk\":\"ssd\"},\"spec\":{\"taints\":[{\"key\":\"k\",\"value\":\"v\","
             "\"effect\":\"PreferNoSchedule\"}]}}");
    sched_profile_t prof = profile(NULL, NULL, NULL);
    pod_info_t *p = mk_pod("p", "100m", "100Mi",
                           "{\"affinity\":{\"nodeAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":"
                           "[{\"weight\":50,\"preference\":{\"matchExpressions\":[{\"key\":\"disk\","
                           "\"operator\":\"In\",\"values\":[\"ssd\"]}]}}]}}}",
                           NULL);
    assert_string_equal(chosen(&c, p, &prof), "ssd");
    pod_info_free(p);
    cache_free(&c);
}

static void test_message_format(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    add_node(&c, "n1", "1", "8Gi", NULL);
    add_node(&c, "n2", "1", "8Gi", NULL);
    add_node(&c, "n3", "4", "8Gi",
             "{\"spec\":{\"taints\":[{\"key\":\"dedicated\",\"value\":\"db\",\"effect\":\"NoSchedule\"}]}}");
    sched_profile_t prof = profile(NULL, NULL, NULL);
    pod_info_t *p = mk_pod("p", "2", NULL, NULL, NULL);
    char *m = message_for(&c, p, &prof);
    /* reasons counted per node and sorted as strings, like kube-scheduler */
    assert_string_equal(m, "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
                           "2 Insufficient cpu.");
    free(m);
    /* the preemption part */
    cycle_result_t res;
    cycle_opts_t o = {0};
    cycle_run(&prof, &c, p, &o, &res);
    preempt_result_t pr;
    assert_int_equal(preempt_find(&prof, &c, p, &o, &res, &pr), -1);
    m = fit_error_message(3, res.prefilter_msg, res.verdicts, 3, pr.message);
    assert_string_equal(m, "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
                           "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is "
                           "not helpful for scheduling, 2 No preemption victims found for incoming pod..");
    free(m);
    preempt_result_free(&pr);
    cycle_result_free(&res);
    pod_info_free(p);
    cache_free(&c);
}

static void test_preemption_victims(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    node_info_t *a = add_node(&c, "a", "2", "8Gi", NULL);
    node_info_t *b = add_node(&c, "b", "2", "8Gi", NULL);
    place(&c, a, mk_pod("a-low", "1", NULL, "{\"priority\":10}", NULL));
    place(&c, a, mk_pod("a-mid", "1", NULL, "{\"priority\":50}", NULL));
    place(&c, b, mk_pod("b-low1", "1", NULL, "{\"priority\":10}", NULL));
    place(&c, b, mk_pod("b-low2", "1", NULL, "{\"priority\":20}", NULL));
    sched_profile_t prof = profile(NULL, NULL, NULL);
    pod_info_t *p = mk_pod("hi", "1", NULL, "{\"priority\":100}", NULL);
    cycle_result_t res;
    cycle_opts_t o = {0};
    cycle_run(&prof, &c, p, &o, &res);
    assert_null(res.chosen);
    preempt_result_t pr;
    assert_int_equal(preempt_find(&prof, &c, p, &o, &res, &pr), 0);
    /* one victim is enough; the lowest highest-priority victim wins */
    assert_int_equal(pr.n_victims, 1);
    assert_string_equal(pr.victims[0]->p.name, "a-low");
    assert_string_equal(pr.node->name, "a");
    preempt_result_free(&pr);
    cycle_result_free(&res);
    /* preemptionPolicy Never */
    pod_info_t *never = mk_pod("never", "1", NULL, "{\"priority\":100,\"preemptionPolicy\":\"Never\"}", NULL);
    cycle_run(&prof, &c, never, &o, &res);
    assert_int_equal(preempt_find(&prof, &c, never, &o, &res, &pr), -1);
    assert_string_equal(pr.message, "preemption: not eligible due to preemptionPolicy=Never.");
    preempt_result_free(&pr);
    cycle_result_free(&res);
    pod_info_free(p);
    pod_info_free(never);
    cache_free(&c);
}

/* Room made by preemption is kept for the nominated pod. */
static void test_nominated_reservation(void **st)
{
    sched_cache_t c;
    cache_init(&c);
    add_node(&c, "a", "2", "8Gi", NULL);
    sched_profile_t prof = profile(NULL, NULL, NULL);
    pod_info_t *nom = mk_pod("preemptor", "1500m", NULL, "{\"priority\":100}", NULL);
    pod_info_set_nominated(nom, "a");
    pod_info_t *low = mk_pod("low", "1", NULL, NULL, NULL);
    pod_info_t *higher = mk_pod("higher", "1", NULL, "{\"priority\":200}", NULL);
    cycle_opts_t o = {.nominated = nom};
    cycle_result_t res;
    cycle_run(&prof, &c, low, &o, &res);
    assert_null(res.chosen);
    assert_string_equal(res.verdicts[0].why.text[0], "Insufficient cpu");
    cycle_result_free(&res);
    cycle_run(&prof, &c, higher, &o, &res);
    assert_non_null(res.chosen);
    cycle_result_free(&res);
    cycle_run(&prof, &c, nom, &o, &res);
    assert_non_null(res.chosen);
    cycle_result_free(&res);
    pod_info_free(nom);
    pod_info_free(low);
    pod_info_free(higher);
    cache_free(&c);
}

/* ---- steps of other plugins ("plugin/Step") ---------------------------------------- */

static int64_t fake_score(void *d, const skiff_sched_cycle_t *cy, void *state,
                          const skiff_sched_node_t *n)
{
    return 1;
}

static int fake_filter(void *d, const skiff_sched_cycle_t *cy, void *state,
                       const skiff_sched_node_t *n, skiff_sched_reasons_t *why)
{
    return SKIFF_SCHED_OK;
}

static const skiff_sched_step_t fake_steps[] = {
    {.name = "Both", .filter = fake_filter, .score = fake_score},
    {.name = "OnlyScore", .score = fake_score},
};

static const skiff_sched_step_t *fake_resolve(void *data, const char *plugin, const char *step,
                                              char *err, size_t errlen)
{
    (*(int *)data)++;
    if (strcmp(plugin, "ext") != 0) {
        snprintf(err, errlen, "plugin %s not found", plugin);
        return NULL;
    }
    for (size_t i = 0; i < 2; i++)
        if (strcmp(fake_steps[i].name, step) == 0) return &fake_steps[i];
    snprintf(err, errlen, "plugin ext has no step %s", step);
    return NULL;
}

static void test_profile_plugin_steps(void **st)
{
    sched_profile_t p;
    char err[512] = "";
    int asked = 0;
    assert_int_equal(profile_parse_with(&p, "all,ext/Both", "default,ext/OnlyScore:7,ext/Both:2",
                                        NULL, fake_resolve, &asked, err, sizeof err), 0);
    assert_int_equal(asked, 3);
    assert_int_equal(p.n_filters, 9); /* the eight defaults, then ext/Both */
    assert_ptr_equal(p.filters[8], &fake_steps[0]);
    assert_int_equal(p.n_scores, 9);  /* seven defaults (NodeResourcesFit, ...) and two */
    assert_ptr_equal(p.scores[7].step, &fake_steps[1]);
    assert_int_equal(p.scores[7].weight, 7);
    assert_ptr_equal(p.scores[8].step, &fake_steps[0]);
    assert_int_equal(profile_parse_with(&p, "NodeName,ext/Both", "ext/Both", NULL, fake_resolve,
                                        &asked, err, sizeof err), 0);
    assert_int_equal(p.n_filters, 2);
    assert_int_equal(p.n_scores, 1);

    assert_int_equal(profile_parse_with(&p, "ext/OnlyScore", NULL, NULL, fake_resolve, &asked, err,
                                        sizeof err), -1);
    assert_string_equal(err, "filters: step ext/OnlyScore has no filter hook");
    assert_int_equal(profile_parse_with(&p, NULL, "ext/Nope:1", NULL, fake_resolve, &asked, err,
                                        sizeof err), -1);
    assert_string_equal(err, "scores: \"ext/Nope\": plugin ext has no step Nope");
    assert_int_equal(profile_parse_with(&p, "gone/X", NULL, NULL, fake_resolve, &asked, err,
                                        sizeof err), -1);
    assert_string_equal(err, "filters: \"gone/X\": plugin gone not found");
    /* without a resolver (profile_parse) a plugin's step is refused by name */
    assert_int_equal(profile_parse(&p, NULL, "ext/Both:1", NULL, err, sizeof err), -1);
    assert_string_equal(err, "scores: \"ext/Both\": steps of other plugins are not available here");
    /* more steps than a profile holds are refused, not dropped */
    char many[512] = "";
    for (int i = 0; i < 17; i++) strcat(many, i ? ",NodeName" : "NodeName");
    assert_int_equal(profile_parse(&p, many, NULL, NULL, err, sizeof err), -1);
    assert_string_equal(err, "filters: at most 16 steps, \"" "NodeName,NodeName,NodeName,NodeName,"
                             "NodeName,NodeName,NodeName,NodeName,NodeName,NodeName,NodeName,"
                             "NodeName,NodeName,NodeName,NodeName,NodeName,NodeName\" names more");
    char manys[512] = "";
    for (int i = 0; i < 17; i++) strcat(manys, i ? ",ImageLocality:1" : "ImageLocality:1");
    assert_int_equal(profile_parse(&p, NULL, manys, NULL, err, sizeof err), -1);
    assert_string_equal(err, "scores: at most 16 steps with a weight above 0");
}

/* A bound pod from the informer's transform (the pods view the controllers
 * share, skiff_pod_view): what scheduling reads of pods on nodes is kept,
 * the rest is gone, the received pod is untouched, members alike across
 * pods are one tree, and a pending pod stays whole. */
static const char *full_pod =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns1\","
    "\"uid\":\"u-%s\",\"resourceVersion\":\"7\",\"creationTimestamp\":\"2026-01-01T00:00:00Z\","
    "\"labels\":{\"app\":\"web\"},\"annotations\":{\"big\":\"x\"},"
    "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"uid\":\"rs-1\"}]},"
    "\"spec\":{%s\"priority\":5,\"schedulerName\":\"default-scheduler\","
    "\"tolerations\":[{\"operator\":\"Exists\"}],"
    "\"affinity\":{\"podAntiAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
    "[{\"labelSelector\":{\"matchLabels\":{\"app\":\"web\"}},\"topologyKey\":\"zone\"}]}},"
    "\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}],"
    "\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"env\":[{\"name\":\"A\",\"value\":\"1\"}],"
    "\"resources\":{\"requests\":{\"cpu\":\"250m\",\"memory\":\"64Mi\",\"example.com/gpu\":\"1\"}},"
    "\"ports\":[{\"containerPort\":80,\"hostPort\":8080}]}],"
    "\"initContainers\":[{\"name\":\"i\",\"image\":\"busybox\",\"command\":[\"true\"],"
    "\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]},"
    "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}";

static json_t *pod_json(const char *name, const char *node_field)
{
    char buf[4096];
    snprintf(buf, sizeof buf, full_pod, name, name, node_field);
    return load(buf);
}

static void test_bound_pods_view(void **st)
{
    json_t *pending = pod_json("p", "");
    json_t *same = skiff_pod_view(NULL, pending);
    assert_ptr_equal(same, pending);
    json_decref(same);

    json_t *a = pod_json("a", "\"nodeName\":\"n1\",");
    json_t *b = pod_json("b", "\"nodeName\":\"n1\",");
    char *before = json_dumps(a, JSON_SORT_KEYS);
    json_t *ta = skiff_pod_view(NULL, a), *tb = skiff_pod_view(NULL, b);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_ptr_not_equal(ta, a);
    /* the received pod is read-only, and none of its members is referenced */
    json_t *am = json_object_get(a, "metadata"), *as = json_object_get(a, "spec");
    assert_int_equal(json_object_get(am, "name")->refcount, 1);
    assert_int_equal(json_object_get(am, "labels")->refcount, 1);
    assert_int_equal(json_object_get(as, "affinity")->refcount, 1);
    assert_int_equal(json_array_get(json_object_get(as, "containers"), 0)->refcount, 1);
    char *after = json_dumps(a, JSON_SORT_KEYS);
    assert_string_equal(before, after);
    free(before);
    free(after);
    json_t *m = json_object_get(ta, "metadata"), *spec = json_object_get(ta, "spec");
    assert_string_equal(json_string_value(json_object_get(ta, "kind")), "Pod");
    assert_string_equal(json_string_value(json_object_get(m, "name")), "a");
    assert_string_equal(json_string_value(json_object_get(m, "namespace")), "ns1");
    assert_string_equal(json_string_value(json_object_get(m, "resourceVersion")), "7");
    assert_non_null(json_object_get(m, "ownerReferences"));
    assert_string_equal(json_string_value(json_object_get(spec, "nodeName")), "n1");
    assert_null(json_object_get(spec, "volumes"));
    assert_null(json_object_get(spec, "tolerations"));
    assert_non_null(json_object_get(spec, "affinity"));
    json_t *c = json_array_get(json_object_get(spec, "containers"), 0);
    assert_null(json_object_get(c, "env"));
    assert_null(json_object_get(json_array_get(json_object_get(spec, "initContainers"), 0),
                                "command"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(ta, "status"), "phase")),
                        "Running");
    assert_int_equal(json_array_size(json_object_get(json_object_get(ta, "status"), "conditions")), 1);
    /* alike across pods: shared */
    assert_ptr_equal(json_object_get(m, "labels"),
                     json_object_get(json_object_get(tb, "metadata"), "labels"));
    assert_ptr_equal(spec, json_object_get(tb, "spec")); /* both on n1 */
    /* the scheduler parses the reduced pod as it parses the whole one */
    pod_info_t *full = pod_info_new(a), *red = pod_info_new(ta);
    assert_int_equal(red->p.requests.cpu, full->p.requests.cpu);
    assert_int_equal(red->p.requests.memory, full->p.requests.memory);
    assert_int_equal(resources_scalar(&red->p.requests, "example.com/gpu"), 1000);
    assert_int_equal(red->p.nonzero_cpu, full->p.nonzero_cpu);
    assert_int_equal(red->p.nonzero_memory, full->p.nonzero_memory);
    assert_int_equal(red->p.priority, 5);
    assert_int_equal(red->p.n_ports, 1);
    assert_int_equal(red->p.ports[0].port, 8080);
    assert_true(red->p.has_anti_affinity);
    assert_int_equal(red->created_ms, full->created_ms);
    assert_string_equal(red->p.uid, "u-a");
    pod_info_free(full);
    pod_info_free(red);
    json_decref(a);
    json_decref(b);
    json_decref(ta);
    json_decref(tb);
    json_decref(pending);
}

static void test_profile_settings(void **st)
{
    sched_profile_t p;
    char err[256] = "";
    assert_int_equal(profile_parse(&p, "-NodePorts,-InterPodAffinity", "LeastAllocated:1", NULL, err, sizeof err), 0);
    assert_int_equal(p.n_filters, 6);
    assert_int_equal(p.n_scores, 1);
    assert_int_equal(profile_parse(&p, "NodeResourcesFit", "MostAllocated:3,TaintToleration:1", NULL, err, sizeof err), 0);
    assert_int_equal(p.n_filters, 1);
    assert_int_equal(p.scores[0].weight, 3);
    assert_int_equal(profile_parse(&p, "Nope", NULL, NULL, err, sizeof err), -1);
    assert_string_equal(err, "filters: no filter step named \"Nope\"");
    assert_int_equal(profile_parse(&p, NULL, NULL, "Packed", err, sizeof err), -1);
    assert_non_null(strstr(err, "scoring-strategy"));
    assert_int_equal(profile_parse(&p, NULL, "Foo:1", NULL, err, sizeof err), -1);
    /* sampling: at 1000 nodes only part is filtered once enough fit */
    sched_cache_t c;
    cache_init(&c);
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%d", i);
        add_node(&c, name, "4", "8Gi", NULL);
    }
    sched_profile_t prof = profile(NULL, NULL, NULL);
    pod_info_t *pod = mk_pod("p", "1", NULL, NULL, NULL);
    cycle_result_t res;
    size_t start = 0;
    cycle_opts_t o = {.next_start = &start};
    cycle_run(&prof, &c, pod, &o, &res);
    assert_non_null(res.chosen);
    assert_int_equal(res.n_feasible, 420); /* 1000 * (50 - 1000/125)% */
    assert_int_equal(start, 420);
    cycle_result_free(&res);
    pod_info_free(pod);
    cache_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resources_fit),
        cmocka_unit_test(test_taints_and_unschedulable),
        cmocka_unit_test(test_node_affinity),
        cmocka_unit_test(test_node_ports_and_name),
        cmocka_unit_test(test_inter_pod_affinity),
        cmocka_unit_test(test_topology_spread),
        cmocka_unit_test(test_least_vs_most_allocated),
        cmocka_unit_test(test_preferred_scores),
        cmocka_unit_test(test_message_format),
        cmocka_unit_test(test_preemption_victims),
        cmocka_unit_test(test_nominated_reservation),
        cmocka_unit_test(test_profile_settings),
        cmocka_unit_test(test_bound_pods_view),
        cmocka_unit_test(test_profile_plugin_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
