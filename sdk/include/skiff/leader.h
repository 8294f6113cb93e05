/* skiff/leader.h - leader election through a coordination.k8s.io/v1 Lease.
 *
 * Several servers may run the same controllers; each singleton (a
 * controller, the scheduler) campaigns for its Lease and acts only while
 * it holds it, the way Kubernetes components do. The holder renews the
 * Lease every retry period; when it stops renewing for longer than the
 * lease duration, another candidate takes it over (leaseTransitions + 1).
 * A candidate that stops releases the Lease so a successor does not wait. */
#ifndef SKIFF_LEADER_H
#define SKIFF_LEADER_H

#include <stdint.h>

#include <skiff/client.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skiff_leader skiff_leader_t;

typedef struct skiff_leader_opts {
    const char *namespace_;      /* of the Lease, e.g. "kube-system" */
    const char *name;            /* the Lease, e.g. "skiff-scheduler" */
    const char *identity;        /* this candidate, unique (host name + a random part) */
    int lease_duration_ms;       /* 0: 15000 */
    int renew_deadline_ms;       /* give up leading after failing to renew this long; 0: 10000 */
    int retry_period_ms;         /* 0: 2000 */
    void (*started_leading)(void *data);
    void (*stopped_leading)(void *data);
    void *data;
} skiff_leader_opts_t;

/* Starts campaigning at once. 0 or SKIFF_E*. */
int skiff_leader_start(uv_loop_t *loop, skiff_client_t *client, const skiff_leader_opts_t *o,
                       skiff_leader_t **out);
int skiff_leader_is_leader(const skiff_leader_t *l);
/* Stops campaigning; a leader releases the Lease (holderIdentity cleared)
 * and gets stopped_leading. done runs once everything is finished. */
void skiff_leader_stop(skiff_leader_t *l, void (*done)(void *data), void *data);

#ifdef __cplusplus
}
#endif
#endif
