/* plugins/scheduler-default/steps_resources.c - the resource steps: the
 * NodeResourcesFit filter (requests against allocatable minus what is
 * bound or assumed) and the LeastAllocated, MostAllocated and
 * BalancedAllocation scores, computed as kube-scheduler computes them. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sched.h"

static int fit_filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                      const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    const skiff_sched_resources_t *req = &cy->pod->requests, *al = &node->allocatable,
                                  *used = &node->requested;
    int bad = 0;
    if (used->pods + 1000 > al->pods) {
        skiff_sched_reason(why, "Too many pods");
        bad = 1;
    }
    if (req->cpu > 0 && req->cpu > al->cpu - used->cpu) {
        skiff_sched_reason(why, "Insufficient cpu");
        bad = 1;
    }
    if (req->memory > 0 && req->memory > al->memory - used->memory) {
        skiff_sched_reason(why, "Insufficient memory");
        bad = 1;
    }
    if (req->ephemeral_storage > 0 &&
        req->ephemeral_storage > al->ephemeral_storage - used->ephemeral_storage) {
        skiff_sched_reason(why, "Insufficient ephemeral-storage");
        bad = 1;
    }
    for (size_t i = 0; i < req->n_scalar; i++) {
        const skiff_sched_scalar_t *s = &req->scalar[i];
        if (s->milli <= 0) continue;
        if (s->milli > resources_scalar(al, s->name) - resources_scalar(used, s->name)) {
            char msg[160];
            snprintf(msg, sizeof msg, "Insufficient %s", s->name);
            skiff_sched_reason(why, msg);
            bad = 1;
        }
    }
    return bad ? SKIFF_SCHED_UNSCHEDULABLE : SKIFF_SCHED_OK;
}

const skiff_sched_step_t step_node_resources_fit = {
    .name = "NodeResourcesFit",
    .filter = fit_filter,
};

/* cpu and memory, weight 1 each (kube-scheduler's default resources) */
static int64_t least_one(int64_t requested, int64_t capacity)
{
    if (capacity == 0 || requested > capacity) return 0;
    return (capacity - requested) * SKIFF_SCHED_MAX_SCORE / capacity;
}

static int64_t most_one(int64_t requested, int64_t capacity)
{
    if (capacity == 0) return 0;
    if (requested > capacity) requested = capacity;
    return requested * SKIFF_SCHED_MAX_SCORE / capacity;
}

/* The scores work in the resources' own units: divide milli-units down
 * first so products stay far from overflow (memory in milli-bytes). */
static int64_t least_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                           const skiff_sched_node_t *n)
{
    const skiff_sched_pod_t *p = cy->pod;
    int64_t cpu = least_one(n->nonzero_cpu + p->nonzero_cpu, n->allocatable.cpu);
    int64_t mem = least_one((n->nonzero_memory + p->nonzero_memory) / 1000,
                            n->allocatable.memory / 1000);
    return (cpu + mem) / 2;
}

static int64_t most_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                          const skiff_sched_node_t *n)
{
    const skiff_sched_pod_t *p = cy->pod;
    int64_t cpu = most_one(n->nonzero_cpu + p->nonzero_cpu, n->allocatable.cpu);
    int64_t mem = most_one((n->nonzero_memory + p->nonzero_memory) / 1000,
                           n->allocatable.memory / 1000);
    return (cpu + mem) / 2;
}

const skiff_sched_step_t step_least_allocated = {.name = "LeastAllocated", .score = least_score};
const skiff_sched_step_t step_most_allocated = {.name = "MostAllocated", .score = most_score};

/* BalancedAllocation: 1 - the standard deviation of the cpu and memory
 * fractions the node would have, with the pod's actual requests. */
static int64_t balanced_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                              const skiff_sched_node_t *n)
{
    const skiff_sched_pod_t *p = cy->pod;
    if (p->requests.cpu == 0 && p->requests.memory == 0) return 0;
    double f[2];
    int64_t req[2] = {n->requested.cpu + p->requests.cpu,
                      (n->requested.memory + p->requests.memory) / 1000};
    int64_t cap[2] = {n->allocatable.cpu, n->allocatable.memory / 1000};
    for (int i = 0; i < 2; i++) {
        f[i] = cap[i] > 0 ? (double)req[i] / (double)cap[i] : 1.0;
        if (f[i] > 1) f[i] = 1;
    }
    double std = fabs(f[0] - f[1]) / 2;
    return (int64_t)((1 - std) * SKIFF_SCHED_MAX_SCORE);
}

const skiff_sched_step_t step_balanced_allocation = {.name = "BalancedAllocation",
                                                     .score = balanced_score};
