/* core/agent/local_nodes.h - hollow nodes inside `skiff server`
 * (--hollow-nodes N): the simulated kubelets of `skiff agent --hollow N`
 * (core/agent/hollow.h), driven through the in-process client, so one
 * process is a whole cluster for benchmarks and demonstrations. */
#ifndef SKIFF_AGENT_LOCAL_NODES_H
#define SKIFF_AGENT_LOCAL_NODES_H

#include <uv.h>

#include "api/apiserver.h"

typedef struct local_nodes local_nodes_t;

/* count nodes named hollow-0 .. hollow-{count-1} with the agent's default
 * capacity; nodes left by an earlier run are adopted. 0, or -1 with a
 * message logged. count 0: *out is NULL. */
int local_nodes_start(uv_loop_t *loop, api_server_t *api, int count, local_nodes_t **out);
/* Stops the nodes (they stay registered, as a stopped kubelet's do); done
 * runs when their writes are answered. n may be NULL. */
void local_nodes_stop(local_nodes_t *n, void (*done)(void *data), void *data);
/* After the loop has run to its end. */
void local_nodes_free(local_nodes_t *n);

#endif
