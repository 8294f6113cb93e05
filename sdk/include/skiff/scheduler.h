/* skiff/scheduler.h - the scheduler's step API: what a filter or score
 * step sees and the hooks it implements.
 *
 * The scheduler (plugins/scheduler-default) keeps, from its informers, one
 * skiff_sched_node_t per Node, updated incrementally as pods and nodes
 * change, and one skiff_sched_pod_t per pod it knows. For each pod it
 * schedules it runs a cycle, as kube-scheduler's framework does:
 *
 *   pre_filter (once)  -> filter (per node, stops at the first step that
 *   rejects) -> pre_score (once) -> score (per feasible node) -> normalize
 *   (once, to 0..SKIFF_SCHED_MAX_SCORE) -> weighted sum -> best node.
 *
 * Every hook runs on the server's loop and must not block; a cycle is
 * synchronous. Everything a step is handed is borrowed for the duration
 * of the call (the per-cycle state excepted: the step owns it).
 *
 * Steps from other plugins: a plugin of kind SKIFF_PLUGIN_SCHEDULER whose
 * descriptor's vtable points to a skiff_sched_step_table_t (abi_version
 * SKIFF_SCHED_STEP_ABI) lends its steps; the default scheduler takes them
 * by name in its `filters` and `scores` settings ("plugin-name/StepName",
 * "all,plugin-name/Filter", "default,plugin-name/Score:weight"), loading
 * the plugin by name (skiff_plugin_find) when nothing loaded it yet. Lua
 * scheduler plugins' steps are wrapped into the same struct by the Lua
 * host. Example: plugins/examples/node-weight. */
#ifndef SKIFF_SCHEDULER_H
#define SKIFF_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SKIFF_SCHED_STEP_ABI 1u
/* Normalized scores run from 0 to this, as kube-scheduler's MaxNodeScore. */
#define SKIFF_SCHED_MAX_SCORE 100

/* Requests and capacities in milli-units (skiff_quantity_milli): cpu
 * "1" is 1000, memory "1Ki" is 1024000, one pod is 1000. */
typedef struct skiff_sched_scalar {
    char *name;    /* "nvidia.com/gpu", "hugepages-2Mi", ... */
    int64_t milli;
} skiff_sched_scalar_t;

typedef struct skiff_sched_resources {
    int64_t cpu;
    int64_t memory;
    int64_t ephemeral_storage;
    int64_t pods;
    skiff_sched_scalar_t *scalar; /* other resources, n_scalar of them */
    size_t n_scalar;
} skiff_sched_resources_t;

/* One hostPort a pod asks for (containers[].ports[].hostPort > 0). */
typedef struct skiff_sched_port {
    int port;
    char protocol[8]; /* "TCP", "UDP", "SCTP" */
    char host_ip[48]; /* "0.0.0.0" when unset */
} skiff_sched_port_t;

/* A pod as the scheduler knows it: parsed once when it arrives.
 *
 * obj is the whole Pod for the pod being scheduled (cycle->pod) and for
 * other pods not bound yet. For a pod bound to a node (among a node's
 * pods, bound or assumed after its binding was seen) it is the reduced
 * Pod of the pods view the controllers share (skiff_pod_view in
 * skiff/controller.h lists it all), with what scheduling reads of pods
 * already placed: metadata name, namespace, uid, resourceVersion,
 * creationTimestamp, deletionTimestamp, labels, ownerReferences; spec
 * nodeName, schedulerName, priority, preemptionPolicy (each of these three
 * only when it is not Kubernetes' default: read a missing one as
 * default-scheduler, 0 and PreemptLowerPriority), affinity, overhead,
 * and containers and initContainers with name, image, resources, ports
 * (and restartPolicy); status phase and nominatedNodeName. The rest (env,
 * tolerations, nodeSelector, volumes other than claims, conditions other
 * than Ready and DisruptionTarget, ...) is absent: a step that needs it for pods on nodes
 * must keep its own view (e.g. from an informer of its own). Members
 * alike across pods may be one shared tree: obj is read-only. */
typedef struct skiff_sched_pod {
    const json_t *obj;         /* the Pod (reduced when bound, see above) */
    const char *ns, *name, *uid;
    const char *node_name;     /* spec.nodeName, or the node it is assumed on; "" if none */
    const json_t *labels;      /* metadata.labels (object) or NULL */
    int32_t priority;          /* spec.priority (0 when unset) */
    skiff_sched_resources_t requests; /* skiff_pod_request_milli per resource; pods = 1000 */
    /* requests with kube-scheduler's defaults for scoring (100m cpu,
     * 200Mi memory for a container that asks for none) */
    int64_t nonzero_cpu, nonzero_memory;
    const skiff_sched_port_t *ports;
    size_t n_ports;
    int has_affinity;          /* spec.affinity.podAffinity set */
    int has_anti_affinity;     /* spec.affinity.podAntiAffinity set */
    int assumed;               /* placed by this scheduler, binding not yet seen */
    int terminating;           /* metadata.deletionTimestamp set */
} skiff_sched_pod_t;

/* A node and what is placed on it. obj is the Node of the nodes view the
 * scheduler shares with controllers (skiff_node_view in
 * skiff/controller.h): metadata (without managedFields), spec, and of the
 * status capacity, allocatable and images; no conditions, addresses or
 * nodeInfo. Read-only; members alike across nodes may be one tree. */
typedef struct skiff_sched_node {
    const json_t *obj;         /* the Node (reduced, see above) */
    const char *name;
    const json_t *labels;      /* metadata.labels (object) or NULL */
    skiff_sched_resources_t allocatable;  /* status.allocatable (else capacity) */
    skiff_sched_resources_t requested;    /* sum over pods (bound or assumed) */
    int64_t nonzero_cpu, nonzero_memory;  /* sum of the pods' nonzero requests */
    skiff_sched_pod_t *const *pods;       /* pods bound or assumed here */
    size_t n_pods;
    size_t n_pods_with_anti_affinity;     /* among pods: a cheap "none" check */
    size_t n_pods_with_affinity;          /* pods with podAffinity terms */
    uint64_t generation;                  /* bumped on every change */
    /* parsed once per node update, so steps need not look them up */
    int unschedulable;                    /* spec.unschedulable */
    const json_t *taints;                 /* spec.taints (array) or NULL when none */
    int n_prefer_no_schedule;             /* taints with effect PreferNoSchedule */
    const json_t *images;                 /* status.images (array) or NULL when none */
} skiff_sched_node_t;

/* One scheduling cycle for one pod. */
typedef struct skiff_sched_cycle {
    const skiff_sched_pod_t *pod;
    skiff_sched_node_t *const *nodes;  /* every node the scheduler knows */
    size_t n_nodes;
    /* pods with (anti-)affinity terms on any node: steps skip the scan of
     * every node's pods when both are 0 */
    size_t n_pods_with_anti_affinity, n_pods_with_affinity;
    /* Namespaces' labels for namespaceSelector: returns metadata.labels of
     * namespace ns (borrowed) or NULL. */
    const json_t *(*namespace_labels)(void *data, const char *ns);
    void *namespace_data;
} skiff_sched_cycle_t;

/* What a filter or pre_filter answers. */
typedef enum skiff_sched_code {
    SKIFF_SCHED_OK = 0,
    /* pre_filter: nothing for this step to check; its filter is skipped */
    SKIFF_SCHED_SKIP = 1,
    /* does not fit; evicting lower-priority pods might make it fit */
    SKIFF_SCHED_UNSCHEDULABLE = 2,
    /* does not fit, and preemption cannot help (taints, selectors) */
    SKIFF_SCHED_UNRESOLVABLE = 3,
} skiff_sched_code_t;

/* Why a node was rejected: each reason counted separately in the
 * FailedScheduling message ("2 Insufficient cpu"), as kube-scheduler does. */
#define SKIFF_SCHED_MAX_REASONS 4
typedef struct skiff_sched_reasons {
    char text[SKIFF_SCHED_MAX_REASONS][160];
    int n;
} skiff_sched_reasons_t;

/* One step. Any hook may be NULL. `state` is the step's per-cycle state:
 * pre_filter or pre_score may set *state; filter, score and normalize get
 * it back, and free_state releases it at the end of the cycle. */
typedef struct skiff_sched_step {
    const char *name;          /* "NodeResourcesFit" */
    int (*pre_filter)(void *data, const skiff_sched_cycle_t *cy, void **state,
                      skiff_sched_reasons_t *why);
    int (*filter)(void *data, const skiff_sched_cycle_t *cy, void *state,
                  const skiff_sched_node_t *node, skiff_sched_reasons_t *why);
    int (*pre_score)(void *data, const skiff_sched_cycle_t *cy, void **state);
    /* Raw score of one feasible node. */
    int64_t (*score)(void *data, const skiff_sched_cycle_t *cy, void *state,
                     const skiff_sched_node_t *node);
    /* Brings scores[0..n) of nodes[0..n) to 0..SKIFF_SCHED_MAX_SCORE.
     * Without it, scores must already be in that range. */
    void (*normalize)(void *data, const skiff_sched_cycle_t *cy, void *state,
                      const skiff_sched_node_t *const *nodes, int64_t *scores, size_t n);
    void (*free_state)(void *state);
    void *data;
} skiff_sched_step_t;

/* What a step plugin's descriptor vtable points to. */
typedef struct skiff_sched_step_table {
    uint32_t abi_version;      /* SKIFF_SCHED_STEP_ABI */
    const skiff_sched_step_t *steps;
    size_t n_steps;
} skiff_sched_step_table_t;

/* Adds a reason to why; reasons past SKIFF_SCHED_MAX_REASONS are dropped. */
static inline void skiff_sched_reason(skiff_sched_reasons_t *why, const char *text)
{
    if (!why || why->n >= SKIFF_SCHED_MAX_REASONS) return;
    size_t i = 0;
    for (; text[i] && i < sizeof why->text[0] - 1; i++) why->text[why->n][i] = text[i];
    why->text[why->n][i] = '\0';
    why->n++;
}

#ifdef __cplusplus
}
#endif
#endif
