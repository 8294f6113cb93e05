/* core/agent/hollow.h - hollow nodes: N simulated nodes in one process.
 *
 * Registers N Node objects (or adopts those that exist), renews a Lease per
 * node in kube-node-lease and refreshes each node's Ready condition, and
 * plays the kubelet for pods bound to those nodes (hollow_pods.c): they
 * turn Running and Ready, finish, or are removed when deleted, without any
 * container. Everything goes through one SDK client on one libuv loop: one
 * pod watch for all nodes, writes with a bounded number in flight. */
#ifndef SKIFF_AGENT_HOLLOW_H
#define SKIFF_AGENT_HOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include <skiff/client.h>
#include <uv.h>

typedef struct hollow hollow_t;

typedef struct hollow_opts {
    int count;                      /* nodes */
    const char *prefix;             /* names are PREFIX0 .. PREFIX{count-1} */
    const char *cpu, *memory, *pods, *ephemeral_storage; /* capacity (quantities) */
    int64_t ready_delay_ms;         /* from binding to Running */
    const char *labels;             /* "k=v,..." or NULL */
    const char *taints;             /* "k=v:Effect,..." or NULL */
    int delete_nodes_on_exit;
    int64_t lease_period_ms;        /* Lease renewal; 0: 10 s */
    int64_t status_period_ms;       /* node status refresh; 0: 1 min */
    int max_in_flight;              /* writes waiting for an answer; 0: 64 */
    /* Clients the writes are spread over (borrowed; they must outlive the
     * hollow nodes); none: all go through the main client. */
    skiff_client_t **writers;
    size_t nwriters;
    /* One client per node (index i: node PREFIX<i>, count entries,
     * borrowed), each with that node's own credentials: a node's writes
     * (its Node, Lease, and its pods' status) go through its client, so
     * the node authorizer sees who writes. NULL: the writers above. */
    skiff_client_t **node_writers;
} hollow_opts_t;

/* Checks and copies the options (strings included). 0, or -1 with a
 * message in err. The client must outlive the hollow nodes. */
int hollow_new(uv_loop_t *loop, skiff_client_t *client, const hollow_opts_t *o, hollow_t **out,
               char *err, size_t errlen);
/* Lists the nodes, registers ours, starts heartbeats and the pod watch. */
int hollow_start(hollow_t *h);
/* Stops: no new work, the pod watch ends, and with delete_nodes_on_exit
 * the Nodes and Leases are deleted. done runs once the writes in flight
 * have been answered (or after 20 s). */
void hollow_stop(hollow_t *h, void (*done)(void *data), void *data);
/* Closes the libuv handles; call after done ran and the client is gone,
 * then let the loop run, then hollow_free. */
void hollow_close(hollow_t *h);
void hollow_free(hollow_t *h);

/* Nodes registered and Ready now. */
size_t hollow_ready_nodes(const hollow_t *h);

#endif
