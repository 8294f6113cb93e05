/* plugins/scheduler-default/sched.h - what the scheduler's own files share:
 * the node and pod cache, the step registry, the cycle runner and the
 * reasons message. The libuv and API parts live only in scheduler.c, so
 * the rest can be tested on hand-built JSON. */
#ifndef SKIFF_SCHED_INTERNAL_H
#define SKIFF_SCHED_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <skiff/scheduler.h>

/* ---- string map (open addressing) ---------------------------------------- */

typedef struct smap_entry {
    char *key; /* NULL: empty; (char *)1: deleted */
    void *value;
} smap_entry_t;

typedef struct smap {
    smap_entry_t *e;
    size_t cap, n, used;
    int borrowed; /* keys are the values' own (each put's key outlives its entry), not copies */
} smap_t;

void *smap_get(const smap_t *m, const char *key);
int smap_put(smap_t *m, const char *key, void *value); /* 0 or -1 */
void *smap_del(smap_t *m, const char *key);             /* the value removed, or NULL */
void smap_clear(smap_t *m, void (*free_value)(void *));
/* Iterate: for (size_t i = 0; smap_next(m, &i, &k, &v);) */
int smap_next(const smap_t *m, size_t *i, const char **key, void **value);

/* ---- pods and nodes --------------------------------------------------------- */

typedef struct node_info node_info_t;

typedef enum { Q_NONE = 0, Q_ACTIVE, Q_BACKOFF, Q_UNSCHEDULABLE, Q_INFLIGHT } qstate_t;

typedef struct pod_info {
    skiff_sched_pod_t p;       /* first: the SDK view */
    json_t *obj;               /* owned reference to the Pod */
    char *key;                 /* "ns/name" */
    char *node_buf;            /* node_name's storage (NULL: "") */
    skiff_sched_port_t *ports;
    node_info_t *node;         /* where it counts, or NULL */
    size_t node_index;         /* its index in node->pods */
    /* queue */
    qstate_t q;
    size_t heap_index;
    uint64_t seq;              /* FIFO among equal priorities */
    int attempts;
    int64_t backoff_until_ms;
    int64_t unschedulable_since_ms;
    int64_t created_ms;
    int preempt_never;         /* spec.preemptionPolicy Never */
    char *nominated;           /* status.nominatedNodeName, or NULL */
    struct pod_info *wprev, *wnext; /* the waiting list (unschedulable or backing off) */
    uint64_t bind_seq;         /* which binding placed it */
    char *last_message;        /* last PodScheduled=False message written */
    struct pod_info *nnext, *nprev; /* the list of nominated pods */
    int in_nominated;
} pod_info_t;

struct node_info {
    skiff_sched_node_t n;      /* first: the SDK view */
    json_t *obj;               /* owned reference to the Node */
    char *name;
    pod_info_t **pods;
    size_t cap;
    size_t index;              /* in the cache's node array */
    struct sched_cache *cache; /* NULL for a copy */
};

typedef struct sched_cache {
    smap_t nodes;              /* name -> node_info_t */
    node_info_t **list;        /* dense array, order of arrival */
    size_t n_nodes, cap_nodes;
    smap_t pods;               /* "ns/name" -> pod_info_t (bound, assumed or pending) */
    size_t n_orphans;          /* bound pods whose node is not known yet */
    size_t n_anti, n_aff;      /* placed pods with anti-affinity / affinity terms */
} sched_cache_t;

/* Parses requests, ports, priority and labels of pod (json_incref'd). NULL on ENOMEM. */
pod_info_t *pod_info_new(json_t *pod);
/* pod, a version of the bound pod pi is (the same node), when it changes
 * nothing pi was made from but the object: the same uid, labels and
 * deletion state (a bound pod's requests, ports, priority and affinity
 * cannot change: the API server refuses such updates). pi holds pod from
 * then on and 1 is returned; else 0 and pi is unchanged. */
int pod_info_refresh(pod_info_t *pi, json_t *pod);
void pod_info_free(pod_info_t *pi);
/* Sets p.node_name / nominated (copied; NULL or "" clears). */
void pod_info_set_node(pod_info_t *pi, const char *node);
void pod_info_set_nominated(pod_info_t *pi, const char *node);
/* Resources of a Node's status.allocatable (capacity when absent). */
void resources_from_list(skiff_sched_resources_t *r, const json_t *list);
void resources_free(skiff_sched_resources_t *r);
int64_t resources_scalar(const skiff_sched_resources_t *r, const char *name);

void cache_init(sched_cache_t *c);
void cache_free(sched_cache_t *c);
/* Adds or replaces a node (json_incref'd); returns it. */
node_info_t *cache_node_set(sched_cache_t *c, json_t *node);
void cache_node_del(sched_cache_t *c, const char *name);
node_info_t *cache_node_get(sched_cache_t *c, const char *name);
/* Accounts pi on node (pi->node must be NULL) / removes it from its node. */
void node_add_pod(node_info_t *ni, pod_info_t *pi);
void node_remove_pod(pod_info_t *pi);
/* A node_info_t copy of ni without the pods in skip (for preemption); free
 * with node_info_copy_free. */
node_info_t *node_info_copy_without(const node_info_t *ni, pod_info_t *const *skip, size_t n_skip);
void node_info_copy_free(node_info_t *ni);
/* A copy of ni with the pods in add placed on it as well. */
node_info_t *node_info_copy_with(const node_info_t *ni, pod_info_t *const *add, size_t n_add);

/* ---- steps ---------------------------------------------------------------------- */

/* Built-in steps (steps_*.c). */
extern const skiff_sched_step_t step_node_unschedulable, step_node_name, step_taint_toleration,
    step_node_affinity, step_node_ports, step_node_resources_fit, step_pod_topology_spread,
    step_inter_pod_affinity, step_least_allocated, step_most_allocated,
    step_balanced_allocation, step_image_locality;

typedef struct weighted_step {
    const skiff_sched_step_t *step;
    int64_t weight;
} weighted_step_t;

typedef struct sched_profile {
    const skiff_sched_step_t *filters[16];
    size_t n_filters;
    weighted_step_t scores[16];
    size_t n_scores;
} sched_profile_t;

/* Builds a profile from the settings' strings (NULL: defaults). 0, or -1
 * with err set (an unknown step name, a bad weight). */
int profile_parse(sched_profile_t *p, const char *filters, const char *scores,
                  const char *strategy, char *err, size_t errlen);
/* Finds step `step` of another plugin (settings name it "plugin/Step");
 * NULL with err set when there is none. */
typedef const skiff_sched_step_t *(*step_resolver_t)(void *data, const char *plugin,
                                                     const char *step, char *err, size_t errlen);
/* profile_parse, with names holding a '/' looked up through resolve. */
int profile_parse_with(sched_profile_t *p, const char *filters, const char *scores,
                       const char *strategy, step_resolver_t resolve, void *resolve_data,
                       char *err, size_t errlen);

/* ---- one cycle ------------------------------------------------------------------- */

typedef struct node_verdict {
    int code;                  /* SKIFF_SCHED_* */
    skiff_sched_reasons_t why;
} node_verdict_t;

typedef struct cycle_result {
    node_info_t *chosen;       /* NULL: fits nowhere */
    size_t n_feasible;
    size_t n_evaluated;
    /* when nothing fits: every node's verdict (n_nodes of them), and the
     * message of a pre_filter that rejected the pod (then verdicts are
     * all that same rejection) */
    node_verdict_t *verdicts;
    char prefilter_msg[256];
} cycle_result_t;

typedef struct cycle_opts {
    int percentage_of_nodes_to_score; /* 0: adaptive, as kube-scheduler */
    size_t *next_start;               /* round-robin start across cycles */
    uint64_t *rng;
    const json_t *(*namespace_labels)(void *data, const char *ns);
    void *namespace_data;
    /* Pods nominated (by preemption) to run on nodes, not bound yet: on
     * their node they count as if placed, for pods of no higher priority,
     * so the room preemption made is kept for them. NULL-terminated list
     * through pod_info_t.nnext, or NULL. */
    pod_info_t *nominated;
} cycle_opts_t;

/* Runs pre_filter, filter, score for pod over the cache. */
void cycle_run(const sched_profile_t *prof, sched_cache_t *cache, pod_info_t *pod,
               const cycle_opts_t *o, cycle_result_t *res);
void cycle_result_free(cycle_result_t *res);
/* pre_filter run once, then filters against any node (preemption tries
 * nodes with pods removed). */
typedef struct prepared_cycle {
    const sched_profile_t *prof;
    skiff_sched_cycle_t cy;
    void *state[16];
    int skip[16];
    int rejected;              /* a pre_filter rejected the pod */
    skiff_sched_reasons_t why;
} prepared_cycle_t;

void cycle_prepare(const sched_profile_t *prof, sched_cache_t *cache, pod_info_t *pod,
                   const cycle_opts_t *o, prepared_cycle_t *pc);
/* SKIFF_SCHED_OK or the first rejecting filter's code (why filled). */
int cycle_filter_node(prepared_cycle_t *pc, const skiff_sched_node_t *node,
                      skiff_sched_reasons_t *why);
void cycle_prepared_free(prepared_cycle_t *pc);

/* ---- preemption (preempt.c) ------------------------------------------------------- */

typedef struct preempt_result {
    node_info_t *node;         /* where the pod will fit once the victims are gone */
    pod_info_t **victims;
    size_t n_victims;
    char message[1024];        /* when none: the "preemption: ..." part of the message */
} preempt_result_t;

/* 0 with out->node and victims, or -1 with out->message (may be empty). */
int preempt_find(const sched_profile_t *prof, sched_cache_t *cache, pod_info_t *pod,
                 const cycle_opts_t *o, const cycle_result_t *res, preempt_result_t *out);
void preempt_result_free(preempt_result_t *r);

/* The kube-scheduler FitError message: "0/3 nodes are available: 1 node(s)
 * had untolerated taint {k: v}, 2 Insufficient cpu." followed by
 * postfilter (" preemption: ...") when given. New string. */
char *fit_error_message(size_t n_nodes, const char *prefilter_msg,
                        const node_verdict_t *verdicts, size_t n, const char *postfilter);

/* ---- helpers shared by steps ----------------------------------------------------- */

/* spec.tolerations of pod tolerate taint (key, value, effect)? */
int tolerates(const json_t *tolerations, const json_t *taint);
/* A NodeSelectorTerm (matchExpressions, matchFields) matches the node? */
int node_selector_term_matches(const json_t *term, const json_t *node_labels,
                               const char *node_name);
/* pod's nodeSelector and required node affinity match the node? */
int pod_matches_node_selector(const json_t *pod, const json_t *node_labels, const char *node_name);
const json_t *pod_spec(const skiff_sched_pod_t *p);

#endif
