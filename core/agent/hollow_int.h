/* core/agent/hollow_int.h - what the hollow node files share: the fleet
 * (hollow.c: nodes, leases, the write queue) and the simulated kubelet for
 * pods (hollow_pods.c). Not for use outside core/agent. */
#ifndef SKIFF_AGENT_HOLLOW_INT_H
#define SKIFF_AGENT_HOLLOW_INT_H

#include <stdint.h>

#include <jansson.h>
#include <skiff/client.h>
#include <uv.h>

#include "agent/hollow.h"
#include "agent/hollow_objects.h"
#include "agent/ipam.h"
#include "agent/write_queue.h"
#include "util/strmap.h"

/* What the write queue carries. */
enum {
    OP_NODE_CREATE = 1,
    OP_NODE_ADOPT,  /* the Node exists: put our labels on it, then its status */
    OP_NODE_STATUS, /* status with a fresh heartbeat */
    OP_LEASE_CREATE,
    OP_LEASE_RENEW,
    OP_NODE_DELETE,
    OP_LEASE_DELETE,
    OP_POD_STATUS,
    OP_POD_DELETE,
};

typedef struct hnode {
    char *name;
    size_t index;
    char *uid;
    int adopt;        /* it existed when we started, or creating it said 409 */
    int exists;       /* created or adopted, with our status written */
    int lease_ok;     /* the Lease exists */
    int64_t since_ms; /* Ready since (wall clock) */
    int64_t next_lease, next_status; /* monotonic ms */
    char ip[20];
    char cidr[24];
    pod_range_t range;
} hnode_t;

typedef struct hollow_pods hollow_pods_t;

struct hollow {
    uv_loop_t *loop;
    skiff_client_t *client;    /* lists and the pod watch */
    skiff_client_t **writers;  /* writes, round robin (hollow_opts_t) */
    size_t nwriters, next_writer;
    hollow_opts_t o;
    char *prefix, *cpu, *memory, *pods, *storage;
    hollow_node_shape_t shape;
    json_t *labels, *taints;
    hnode_t *nodes;
    size_t n, ready;
    strmap_t *by_name;
    ipam_t ipam;
    write_queue_t *wq;
    hollow_pods_t *podsim;
    uv_timer_t tick, deadline;
    int timers_init;
    int listed, listing;
    int64_t list_due;
    int64_t start_mono;
    int all_ready_logged;
    int stopping, stop_done;
    void (*on_stopped)(void *data);
    void *on_stopped_data;
    char arch[72], kernel[128];
};

static inline int64_t hollow_mono_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

/* The client for the next write: spreading writes over several clients
 * (each a few keep-alive connections) keeps enough of them in flight for
 * the server to commit many at once. */
static inline skiff_client_t *hollow_writer(hollow_t *h)
{
    if (!h->nwriters) return h->client;
    return h->writers[h->next_writer++ % h->nwriters];
}

/* The client for a write on behalf of node nd: its own when each node
 * has credentials of its own (hollow_opts_t.node_writers). */
static inline skiff_client_t *hollow_node_writer(hollow_t *h, const hnode_t *nd)
{
    if (h->o.node_writers && nd) return h->o.node_writers[nd->index];
    return hollow_writer(h);
}

/* hollow_pods.c */
hollow_pods_t *hollow_pods_new(hollow_t *h);
int hollow_pods_start(hollow_pods_t *p);
/* Ends the watch and the timer (the handle closes with hollow_pods_close). */
void hollow_pods_stop(hollow_pods_t *p);
void hollow_pods_close(hollow_pods_t *p);
void hollow_pods_free(hollow_pods_t *p);
int hollow_pods_op_start(hollow_pods_t *p, int kind, const char *key, write_op_t *op);
int64_t hollow_pods_op_done(hollow_pods_t *p, int kind, const char *key, int status, json_t *obj);

#endif
