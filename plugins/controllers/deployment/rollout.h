/* plugins/controllers/deployment/rollout.h - the numbers of a Deployment
 * rollout, as Kubernetes' deployment controller computes them: maxSurge and
 * maxUnavailable from ints or percentages, the new ReplicaSet's next size,
 * how far old ReplicaSets may be scaled down, and proportional scaling of
 * a Deployment resized mid-rollout. Pure functions, no I/O (unit-tested in
 * tests/unit/test_deployment_rollout.c). */
#ifndef SKIFF_DEP_ROLLOUT_H
#define SKIFF_DEP_ROLLOUT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* One ReplicaSet as the arithmetic sees it. */
typedef struct dep_rs {
    const char *name;
    int64_t created_ms;   /* metadata.creationTimestamp */
    int spec;             /* spec.replicas: what the functions change */
    int available;        /* status.availableReplicas */
    int max_replicas;     /* deployment.kubernetes.io/max-replicas, -1 when absent */
} dep_rs_t;

/* An IntOrString (5 or "25%") scaled against total: a percentage is
 * rounded up or down as asked. NULL is 0. 0, or -1 for a malformed value. */
int dep_int_or_percent(const json_t *v, int total, int round_up, int *out);

/* maxSurge (rounded up) and maxUnavailable (rounded down) for desired
 * replicas; when both come out 0, maxUnavailable is 1. Malformed values
 * count as 0. */
void dep_fenceposts(const json_t *max_surge, const json_t *max_unavailable, int desired,
                    int *surge, int *unavailable);

/* The Deployment's maxSurge and maxUnavailable (0 unless rolling; the
 * latter at most replicas). */
int dep_max_surge(int rolling, const json_t *max_surge, const json_t *max_unavailable,
                  int replicas);
int dep_max_unavailable(int rolling, const json_t *max_surge, const json_t *max_unavailable,
                        int replicas);

/* The size to give the new ReplicaSet now: all of replicas for Recreate;
 * for a rolling update, as much as the surge allows given total (the sum
 * of every ReplicaSet's spec.replicas). */
int dep_new_rs_replicas(int rolling, int replicas, int max_surge, int total, int new_spec);

/* Scales old ReplicaSets (oldest first) down by their unavailable pods, at
 * most max_cleanup in all; returns how many were taken away. */
int dep_cleanup_unhealthy(dep_rs_t *old, size_t n, int max_cleanup);

/* Scales old ReplicaSets (oldest first) down while more than min_available
 * pods would stay available (available_all counts every ReplicaSet's);
 * returns how many were taken away. */
int dep_scale_down_old(dep_rs_t *old, size_t n, int available_all, int min_available);

/* Spreads a change of the Deployment's size over its active ReplicaSets in
 * proportion to their sizes (rs[] may be reordered): the new spec of each
 * is in rs[i].spec. status_replicas is the Deployment's status.replicas,
 * used for a ReplicaSet without the max-replicas annotation. */
void dep_proportional_scale(dep_rs_t *rs, size_t n, int replicas, int max_surge,
                            int status_replicas);

#endif
