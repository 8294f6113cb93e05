/* core/agent/hollow_objects.h - the objects a hollow node writes: its Node
 * (labels, taints, capacity, conditions, addresses, nodeInfo), its Lease
 * in kube-node-lease, and the status a kubelet would report for a pod.
 * Pure JSON building and parsing of the agent's inputs; no I/O, no state. */
#ifndef SKIFF_AGENT_HOLLOW_OBJECTS_H
#define SKIFF_AGENT_HOLLOW_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define HOLLOW_KUBELET_VERSION "v1.32.0-skiff"
#define HOLLOW_RUNTIME "hollow://"
#define HOLLOW_LEASE_NS "kube-node-lease"
#define HOLLOW_LEASE_SECONDS 40
#define HOLLOW_ANN_READY "hollow.skiff.io/ready"
#define HOLLOW_ANN_RUN_FOR "hollow.skiff.io/run-for"
#define HOLLOW_ANN_EXIT_CODE "hollow.skiff.io/exit-code"

/* What every node of one agent has in common. */
typedef struct hollow_node_shape {
    const char *cpu, *memory, *pods, *ephemeral_storage; /* quantities as given */
    json_t *labels; /* extra labels (object), borrowed */
    json_t *taints; /* array of {key, value, effect}, borrowed */
    const char *arch; /* "amd64" */
    const char *kernel;
} hollow_node_shape_t;

/* "k=v,k2=v2" into a new object; NULL with a message in err. */
json_t *hollow_parse_labels(const char *s, char *err, size_t errlen);
/* "k=v:NoSchedule,k:NoExecute" into a new array of taints; NULL with a
 * message in err. */
json_t *hollow_parse_taints(const char *s, char *err, size_t errlen);

/* The labels the agent keeps on its nodes (well-known ones and the extra
 * ones), as a new object. */
json_t *hollow_node_labels(const hollow_node_shape_t *s, const char *name);
/* A new Node to create. */
json_t *hollow_node_new(const hollow_node_shape_t *s, const char *name, const char *internal_ip,
                        const char *pod_cidr, int64_t now_ms);
/* A new Node status: conditions Ready (KubeletReady) and the pressures
 * False, with lastHeartbeatTime now and lastTransitionTime since_ms. */
json_t *hollow_node_status(const hollow_node_shape_t *s, const char *name,
                           const char *internal_ip, int64_t now_ms, int64_t since_ms);
/* A new Lease for node (uid may be NULL: no owner reference). */
json_t *hollow_lease_new(const char *node, const char *node_uid, int64_t now_ms);
/* RFC 3339 with microseconds (metav1.MicroTime) into buf (>= 28 bytes). */
void hollow_micro_time(int64_t ms, char *buf, size_t len);

/* What the simulated kubelet decided for one pod. */
typedef enum { HOLLOW_POD_RUNNING = 1, HOLLOW_POD_TERMINATED = 2 } hollow_pod_stage_t;

typedef struct hollow_pod_view {
    hollow_pod_stage_t stage;
    int ready;          /* running: containers report ready */
    int exit_code;      /* terminated */
    const char *pod_ip, *host_ip;
    int64_t accepted_ms; /* status.startTime */
    int64_t started_ms;  /* containers started */
    int64_t finished_ms; /* terminated */
} hollow_pod_view_t;

/* A new object with only the parts of pod that hollow_pod_status reads
 * (uid, container names and images, qosClass, the PodScheduled
 * condition): what the agent keeps of each of its pods. */
json_t *hollow_pod_skeleton(const json_t *pod);

/* A new status object for pod as the kubelet would write it. */
json_t *hollow_pod_status(const json_t *pod, const hollow_pod_view_t *v);

/* The pod's hollow.skiff.io annotations: never_ready, run_for_ms (for
 * restartPolicy Never/OnFailure; -1 for pods that keep running) and
 * exit_code. Malformed values fall back to the defaults and return -1. */
int hollow_pod_behaviour(const json_t *pod, int *never_ready, int64_t *run_for_ms,
                         int *exit_code);

#endif
