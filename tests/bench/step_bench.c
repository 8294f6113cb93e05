/* tests/bench/step_bench.c - what one scheduler score step costs per pod:
 * the scheduler's own cycle (plugins/scheduler-default/framework.c) over N
 * synthetic nodes, with no filter and one score step, the same score
 * written three ways:
 *   c        node-weight/NodeWeight, a C step plugin
 *   lua      a Lua step doing the same in Lua
 *   lua+ffi  a Lua step calling node-weight's C label_weight through skiff.ffi
 * and a baseline with no score step (the cycle's own cost), subtracted to
 * give the step's cost. Also the raw cost of one skiff.ffi.call, of a call
 * through a loaded module, and of a plain Lua function call.
 * Prints figures (medians of several runs); asserts nothing.
 *
 *   step_bench [--nodes 1000] [--pods 300] [--runs 7] [--calls 1000000]
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <skiff/plugin.h>
#include <skiff/scheduler.h>

#include "plugin/loaded.h"
#include "sched.h"
#include "step_bench_lua.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    return v[n / 2];
}

static void build_cluster(sched_cache_t *c, int nodes)
{
    cache_init(c);
    for (int i = 0; i < nodes; i++) {
        char name[32], weight[16];
        snprintf(name, sizeof name, "node-%d", i);
        snprintf(weight, sizeof weight, "%d", (i * 37) % 101);
        json_t *n = json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s}},s:{s:{s:s,s:s,s:s}}}", "apiVersion",
                              "v1", "kind", "Node", "metadata", "name", name, "labels",
                              "skiff.dev/weight", weight, "kubernetes.io/hostname", name,
                              "topology.kubernetes.io/zone", i % 2 ? "a" : "b", "status",
                              "allocatable", "cpu", "32", "memory", "64Gi", "pods", "110");
        cache_node_set(c, n);
        json_decref(n);
    }
}

/* Nanoseconds per cycle, median over runs of `pods` cycles. */
static uint64_t time_cycles(const sched_profile_t *prof, sched_cache_t *c, pod_info_t *pod,
                            int pods, int runs, int *chosen_ok)
{
    uint64_t *t = calloc((size_t)runs, sizeof *t);
    cycle_opts_t o = {.percentage_of_nodes_to_score = 100};
    size_t start = 0;
    uint64_t rng = 42;
    o.next_start = &start;
    o.rng = &rng;
    *chosen_ok = 1;
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = uv_hrtime();
        for (int i = 0; i < pods; i++) {
            cycle_result_t res;
            cycle_run(prof, c, pod, &o, &res);
            if (!res.chosen) *chosen_ok = 0;
            cycle_result_free(&res);
        }
        t[r] = (uv_hrtime() - t0) / (uint64_t)pods;
    }
    uint64_t m = median(t, (size_t)runs);
    free(t);
    return m;
}

int main(int argc, char **argv)
{
    int nodes = 1000, pods = 300, runs = 7;
    long calls = 1000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--nodes") == 0) nodes = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--pods") == 0) pods = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0) runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--calls") == 0) calls = atol(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--nodes N] [--pods M] [--runs R] [--calls K]\n", argv[0]);
            return 2;
        }
    }
    if (nodes < 2 || pods < 1 || runs < 1) return 2;
    uv_loop_t loop;
    uv_loop_init(&loop);
    skiff_plugin_ctx_t ctx = {.loop = &loop};
    char err[1024] = "";
    const skiff_plugin_t *nw = skiff_plugin_find(&ctx, "node-weight", err, sizeof err);
    if (!nw) {
        fprintf(stderr, "step_bench: %s\n", err);
        return 1;
    }
    const skiff_sched_step_table_t *tab = nw->vtable;
    const skiff_sched_step_t *c_step = &tab->steps[0];

    sched_cache_t cache;
    build_cluster(&cache, nodes);
    json_t *pj = json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:{s:[{s:s,s:s,s:{s:{s:s}}}]}}", "apiVersion",
                           "v1", "kind", "Pod", "metadata", "name", "p", "namespace", "default",
                           "uid", "u-1", "spec", "containers", "name", "c", "image", "busybox",
                           "resources", "requests", "cpu", "100m");
    pod_info_t *pod = pod_info_new(pj);
    json_decref(pj);

    step_bench_lua_t lua = {0};
    if (step_bench_lua_open(&lua, &loop, err, sizeof err) != 0)
        fprintf(stderr, "step_bench: no Lua steps: %s\n", err);

    struct {
        const char *name;
        const skiff_sched_step_t *step;
    } variants[] = {
        {"none", NULL},
        {"c", c_step},
        {"lua", lua.lua_step},
        {"lua+ffi", lua.ffi_step},
    };
    printf("# step_bench: %d nodes, one score step, %d pods a run, median of %d runs\n", nodes,
           pods, runs);
    uint64_t base = 0;
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        if (v && !variants[v].step) {
            printf("step=%-8s unavailable\n", variants[v].name);
            continue;
        }
        sched_profile_t prof = {0};
        if (variants[v].step) prof.scores[prof.n_scores++] = (weighted_step_t){variants[v].step, 1};
        int ok;
        uint64_t ns = time_cycles(&prof, &cache, pod, pods, runs, &ok);
        if (v == 0) {
            base = ns;
            printf("step=%-8s per_pod_us=%.1f (the cycle without a score step)\n", "none",
                   ns / 1000.0);
            continue;
        }
        uint64_t cost = ns > base ? ns - base : 0;
        printf("step=%-8s per_pod_us=%.1f step_per_pod_us=%.1f step_per_node_ns=%.0f%s\n",
               variants[v].name, ns / 1000.0, cost / 1000.0, (double)cost / nodes,
               ok ? "" : " (some cycles chose no node)");
    }
    if (lua.L) step_bench_lua_calls(&lua, calls, runs);

    step_bench_lua_close(&lua);
    pod_info_free(pod);
    cache_free(&cache);
    plugin_loaded_unload_owned();
    uv_loop_close(&loop);
    return 0;
}
