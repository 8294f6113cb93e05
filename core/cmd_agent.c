/* core/cmd_agent.c - `skiff agent`: a node's agent. Only hollow mode
 * (--hollow N: simulated nodes, core/agent/hollow.c) exists so far; the
 * agent that runs containers is not built yet. This file parses the
 * options, connects through the kubeconfig, and stops cleanly on SIGINT
 * or SIGTERM. */
#include "cmd_agent.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/client.h>
#include <uv.h>

#include "agent/hollow.h"
#include "cli/options.h"
#include "client_config.h"
#include "util/duration.h"
#include "util/log.h"

typedef struct agent_settings {
    int hollow;
    const char *kubeconfig;
    const char *node_prefix;
    const char *cpu, *memory, *pods, *ephemeral_storage;
    const char *ready_delay;
    const char *labels, *taints;
    int delete_nodes_on_exit;
    const char *heartbeat_interval, *node_status_interval;
    int max_in_flight;
    const char *log_level;
} agent_settings_t;

static const option_t agent_options[] = {
    {"hollow", OPT_INT, "N", NULL,
     "run N simulated nodes (no containers): they register, heartbeat and report the pods "
     "bound to them as running (see the user guide for the hollow.skiff.io annotations)",
     offsetof(agent_settings_t, hollow)},
    {"kubeconfig", OPT_STRING, "FILE", NULL,
     "how to reach the API server (server URL, CA, client certificate or token)",
     offsetof(agent_settings_t, kubeconfig)},
    {"node-prefix", OPT_STRING, "PREFIX", "hollow-",
     "node names are PREFIX0 .. PREFIX{N-1}; an existing node of that name is adopted",
     offsetof(agent_settings_t, node_prefix)},
    {"cpu", OPT_STRING, "QUANTITY", "4", "CPU capacity (and allocatable) of each node",
     offsetof(agent_settings_t, cpu)},
    {"memory", OPT_STRING, "QUANTITY", "16Gi", "memory capacity of each node",
     offsetof(agent_settings_t, memory)},
    {"pods", OPT_STRING, "N", "110", "pods each node takes (capacity \"pods\")",
     offsetof(agent_settings_t, pods)},
    {"ephemeral-storage", OPT_STRING, "QUANTITY", "100Gi",
     "ephemeral-storage capacity of each node", offsetof(agent_settings_t, ephemeral_storage)},
    {"ready-delay", OPT_STRING, "DURATION", "200ms",
     "how long a pod bound to a node takes to turn Running (and Ready)",
     offsetof(agent_settings_t, ready_delay)},
    {"labels", OPT_STRING, "K=V,...", NULL, "extra labels on every node",
     offsetof(agent_settings_t, labels)},
    {"taints", OPT_STRING, "K=V:EFFECT,...", NULL,
     "taints of every node (EFFECT: NoSchedule, PreferNoSchedule or NoExecute)",
     offsetof(agent_settings_t, taints)},
    {"delete-nodes-on-exit", OPT_FLAG, NULL, NULL,
     "on SIGINT/SIGTERM, delete the nodes (and their Leases) before exiting",
     offsetof(agent_settings_t, delete_nodes_on_exit)},
    {"heartbeat-interval", OPT_STRING, "DURATION", "10s",
     "how often each node renews its Lease in kube-node-lease (spread over the interval)",
     offsetof(agent_settings_t, heartbeat_interval)},
    {"node-status-interval", OPT_STRING, "DURATION", "1m",
     "how often each node's status (Ready, lastHeartbeatTime) is written again",
     offsetof(agent_settings_t, node_status_interval)},
    {"max-in-flight", OPT_INT, "N", "64", "writes to the API server waiting for an answer at most (one keep-alive connection "
     "each, up to 256)",
     offsetof(agent_settings_t, max_in_flight)},
    {"log-level", OPT_STRING, "LEVEL", "info", "error, warn, info or debug",
     offsetof(agent_settings_t, log_level)},
};

/* Each HTTP client keeps 4 keep-alive connections; writes are spread over
 * enough of them that every write in flight has a connection. */
#define CONNECTIONS_PER_CLIENT 4
#define MAX_WRITERS 64

typedef struct agent_state {
    uv_loop_t *loop;
    skiff_client_t *client;
    skiff_client_t *writers[MAX_WRITERS];
    size_t nwriters;
    hollow_t *hollow;
    uv_signal_t sigint, sigterm;
    int signals_init;
} agent_state_t;

static void free_writers(agent_state_t *st)
{
    for (size_t i = 0; i < st->nwriters; i++) st->writers[i]->vt->free(st->writers[i]);
    st->nwriters = 0;
}

static void on_hollow_stopped(void *data)
{
    agent_state_t *st = data;
    /* requests still pending end with status 0; the hollow nodes ignore
     * them now */
    if (st->client) st->client->vt->free(st->client);
    st->client = NULL;
    free_writers(st);
    hollow_close(st->hollow);
    if (st->signals_init) {
        uv_close((uv_handle_t *)&st->sigint, NULL);
        uv_close((uv_handle_t *)&st->sigterm, NULL);
        st->signals_init = 0;
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    agent_state_t *st = h->data;
    log_info("agent", "received %s, stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_signal_stop(&st->sigint);
    uv_signal_stop(&st->sigterm);
    hollow_stop(st->hollow, on_hollow_stopped, st);
}

static int parse_log_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static int duration_opt(const char *name, const char *v, int64_t min_ms, int64_t *out)
{
    if (duration_parse_ms(v, out) != 0 || *out < min_ms) {
        fprintf(stderr, "skiff agent: --%s %s: expected a duration like 200ms, 10s or 1m%s\n",
                name, v, min_ms ? " (at least 1s)" : "");
        return -1;
    }
    return 0;
}

int cmd_agent(int argc, char **argv)
{
    agent_settings_t set = {.node_prefix = "hollow-",
                            .cpu = "4",
                            .memory = "16Gi",
                            .pods = "110",
                            .ephemeral_storage = "100Gi",
                            .ready_delay = "200ms",
                            .heartbeat_interval = "10s",
                            .node_status_interval = "1m",
                            .max_in_flight = 64,
                            .log_level = "info"};
    int rc = options_parse("skiff agent",
                           "Runs a node agent. Only hollow mode (--hollow N) exists yet: N "
                           "simulated nodes for tests and benchmarks.",
                           agent_options, sizeof agent_options / sizeof *agent_options, argc,
                           argv, &set);
    if (rc != 0) return rc > 0 ? 0 : 2;
    if (!set.hollow) {
        fprintf(stderr,
                "skiff agent: the node agent that runs containers is not built yet; only hollow "
                "mode is available: skiff agent --hollow N --kubeconfig FILE (see --help)\n");
        return 2;
    }
    if (!set.kubeconfig) {
        fprintf(stderr, "skiff agent: --kubeconfig FILE is required (the server writes one in "
                        "its data directory)\n");
        return 2;
    }
    int level = parse_log_level(set.log_level);
    if (level < 0) {
        fprintf(stderr, "skiff agent: --log-level must be error, warn, info or debug\n");
        return 2;
    }
    log_set_level(level);
    hollow_opts_t ho = {.count = set.hollow,
                        .prefix = set.node_prefix,
                        .cpu = set.cpu,
                        .memory = set.memory,
                        .pods = set.pods,
                        .ephemeral_storage = set.ephemeral_storage,
                        .labels = set.labels,
                        .taints = set.taints,
                        .delete_nodes_on_exit = set.delete_nodes_on_exit,
                        .max_in_flight = set.max_in_flight};
    if (duration_opt("ready-delay", set.ready_delay, 0, &ho.ready_delay_ms) != 0 ||
        duration_opt("heartbeat-interval", set.heartbeat_interval, 1000, &ho.lease_period_ms) != 0 ||
        duration_opt("node-status-interval", set.node_status_interval, 1000,
                     &ho.status_period_ms) != 0)
        return 2;
    if (set.max_in_flight < 1) {
        fprintf(stderr, "skiff agent: --max-in-flight must be at least 1\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    agent_state_t st = {.loop = uv_default_loop()};
    char err[512] = "", server[300] = "";
    st.client = client_from_kubeconfig(st.loop, set.kubeconfig, server, sizeof server, err,
                                       sizeof err);
    if (!st.client) {
        fprintf(stderr, "skiff agent: %s\n", err);
        uv_loop_close(st.loop);
        return 1;
    }
    size_t want = ((size_t)set.max_in_flight + CONNECTIONS_PER_CLIENT - 1) / CONNECTIONS_PER_CLIENT;
    if (want > MAX_WRITERS) want = MAX_WRITERS;
    while (st.nwriters < want) {
        skiff_client_t *w = client_from_kubeconfig(st.loop, set.kubeconfig, NULL, 0, err, sizeof err);
        if (!w) break;
        st.writers[st.nwriters++] = w;
    }
    ho.writers = st.writers;
    ho.nwriters = st.nwriters;
    if (st.nwriters < want || hollow_new(st.loop, st.client, &ho, &st.hollow, err, sizeof err) != 0) {
        fprintf(stderr, "skiff agent: %s\n", err);
        st.client->vt->free(st.client);
        free_writers(&st);
        uv_run(st.loop, UV_RUN_DEFAULT);
        uv_loop_close(st.loop);
        return 2;
    }
    uv_signal_init(st.loop, &st.sigint);
    uv_signal_init(st.loop, &st.sigterm);
    st.sigint.data = st.sigterm.data = &st;
    st.signals_init = 1;
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    log_info("agent", "hollow mode: %d nodes against %s", set.hollow, server);
    hollow_start(st.hollow);
    uv_run(st.loop, UV_RUN_DEFAULT);
    hollow_free(st.hollow);
    uv_loop_close(st.loop);
    return 0;
}
