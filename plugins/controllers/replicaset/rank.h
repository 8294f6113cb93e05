/* plugins/controllers/replicaset/rank.h - which pods a ReplicaSet deletes
 * first when it scales down, in the order Kubernetes' ReplicaSet
 * controller uses. Pure functions over pod JSON, no I/O (unit-tested in
 * tests/unit/test_replicaset_rank.c). */
#ifndef SKIFF_RS_RANK_H
#define SKIFF_RS_RANK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Sorts pods (borrowed json_t *) so that the first ones are the best to
 * delete: unscheduled before scheduled; Pending before Unknown before
 * Running; not ready before ready; lower
 * controller.kubernetes.io/pod-deletion-cost first; more related pods on
 * the node first (doubled-up pods); ready for less time first; more
 * container restarts first; newer before older. related (a JSON array, or
 * NULL for pods itself) holds the pods counted per node: Kubernetes counts
 * the active pods of every ReplicaSet with the same controller. */
void rs_rank_for_deletion(json_t **pods, size_t n, const json_t *related);

/* < 0 when a should be deleted before b, > 0 after, 0 when equal. same_node_a
 * and same_node_b count the pods of the same owner on each pod's node. */
int rs_delete_order(const json_t *a, int same_node_a, const json_t *b, int same_node_b);

#endif
