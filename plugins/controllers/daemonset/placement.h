/* plugins/controllers/daemonset/placement.h - which nodes a DaemonSet's
 * pod belongs on: nodeSelector, required node affinity, spec.nodeName and
 * taints against tolerations (with the tolerations Kubernetes gives every
 * daemon pod), and how a daemon pod names its node (required node
 * affinity on metadata.name, which the scheduler then honours). Pure
 * functions on JSON objects; no I/O. */
#ifndef SKIFF_DAEMONSET_PLACEMENT_H
#define SKIFF_DAEMONSET_PLACEMENT_H

#include <jansson.h>

/* Adds the tolerations Kubernetes adds to every DaemonSet pod
 * (not-ready/unreachable NoExecute; disk/memory/pid-pressure and
 * unschedulable NoSchedule; network-unavailable with hostNetwork) to a
 * pod spec, unless a toleration for that key and effect is there. */
void ds_add_daemon_tolerations(json_t *spec);
/* Replaces required node affinity's terms with one term matching
 * metadata.name == node (matchFields), as the DaemonSet controller does. */
void ds_set_node_affinity(json_t *spec, const char *node);
/* The node a daemon pod is for: spec.nodeName, else the metadata.name
 * matchFields value of its required node affinity; NULL when neither. */
const char *ds_target_node(const json_t *pod);
/* 1 when the node satisfies spec.nodeName, nodeSelector and required
 * node affinity of a pod spec. */
int ds_node_fits(const json_t *spec, const json_t *node);
/* The first NoSchedule/NoExecute taint (only NoExecute with
 * noexecute_only) that no toleration tolerates (borrowed), or NULL. */
json_t *ds_untolerated_taint(const json_t *taints, const json_t *tolerations, int noexecute_only);
/* Whether a daemon pod with this spec (daemon tolerations included)
 * should run on node, and whether one already there may keep running
 * (NoExecute taints evict, NoSchedule ones only keep new pods away). */
void ds_node_should_run(const json_t *spec, const json_t *node, int *should_run,
                        int *should_continue);

#endif
