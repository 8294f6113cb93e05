/* core/cmd_agent.c - `skiff agent`: a node's agent. Only hollow mode
 * (--hollow N: simulated nodes, core/agent/hollow.c) exists so far; the
 * agent that runs containers is not built yet. This file parses the
 * options, connects through the kubeconfig or joins with a bootstrap
 * token (core/agent/join.c), and stops cleanly on SIGINT or SIGTERM. */
#include "cmd_agent.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/client.h>
#include <uv.h>

#include "agent/hollow.h"
#include "agent/join.h"
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
    const char *server, *token, *ca_cert_hash, *data_dir;
} agent_settings_t;

static const option_t agent_options[] = {
    {"hollow", OPT_INT, "N", NULL,
     "run N simulated nodes (no containers): they register, heartbeat and report the pods "
     "bound to them as running (see the user guide for the hollow.skiff.io annotations)",
     offsetof(agent_settings_t, hollow)},
    {"kubeconfig", OPT_STRING, "FILE", NULL,
     "how to reach the API server (server URL, CA, client certificate or token)",
     offsetof(agent_settings_t, kubeconfig)},
    {"server", OPT_STRING, "URL", NULL,
     "join the cluster at https://IP:PORT with --token (instead of --kubeconfig): each node "
     "gets its own client certificate through a CertificateSigningRequest",
     offsetof(agent_settings_t, server)},
    {"token", OPT_STRING, "TOKEN", NULL,
     "bootstrap token from `skiff token create`; needed only while nodes have no saved "
     "credentials",
     offsetof(agent_settings_t, token)},
    {"ca-cert-hash", OPT_STRING, "sha256:HEX", NULL,
     "hash of the cluster CA's public key (printed by `skiff token create`): the server must "
     "prove it holds that CA before the token is sent",
     offsetof(agent_settings_t, ca_cert_hash)},
    {"data-dir", OPT_STRING, "DIR", "$HOME/.local/share/skiff-agent",
     "where joined nodes keep their credentials (DIR/nodes/NAME/kubeconfig, 0600)",
     offsetof(agent_settings_t, data_dir)},
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
    skiff_client_t **node_clients; /* joined: one per node, its own credentials */
    size_t nnode_clients;
    uv_signal_t sigint, sigterm;
    int signals_init;
} agent_state_t;

static void free_writers(agent_state_t *st)
{
    for (size_t i = 0; i < st->nwriters; i++) st->writers[i]->vt->free(st->writers[i]);
    st->nwriters = 0;
    for (size_t i = 0; i < st->nnode_clients; i++)
        if (st->node_clients[i]) st->node_clients[i]->vt->free(st->node_clients[i]);
    free(st->node_clients);
    st->node_clients = NULL;
    st->nnode_clients = 0;
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

/* --server/--token: credentials for every node (joining for those that
 * have none), a client per node, and the kubeconfig of the first node for
 * the shared list and watch (a node may read nodes and pods). */
static int join_and_connect(const agent_settings_t *set, agent_state_t *st, char *main_kc,
                            size_t kclen, char *err, size_t errlen)
{
    char dir[1100];
    const char *home = getenv("HOME");
    if (set->data_dir) snprintf(dir, sizeof dir, "%s", set->data_dir);
    else snprintf(dir, sizeof dir, "%s/.local/share/skiff-agent", home ? home : ".");
    size_t n = (size_t)set->hollow;
    char **names = calloc(n, sizeof *names);
    st->node_clients = calloc(n, sizeof *st->node_clients);
    int rc = -1;
    if (!names || !st->node_clients) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char name[300];
        snprintf(name, sizeof name, "%s%zu", set->node_prefix, i);
        if (!(names[i] = strdup(name))) goto out;
    }
    join_opts_t jo = {.server = set->server,
                      .token = set->token,
                      .ca_cert_hash = set->ca_cert_hash,
                      .data_dir = dir,
                      .nodes = (const char *const *)names,
                      .nnodes = n};
    if (agent_join(&jo, err, errlen) != 0) goto out;
    for (size_t i = 0; i < n; i++) {
        char kc[1300];
        agent_join_kubeconfig_path(dir, names[i], kc, sizeof kc);
        st->node_clients[i] = client_from_kubeconfig(st->loop, kc, NULL, 0, err, errlen);
        st->nnode_clients = i + 1;
        if (!st->node_clients[i]) goto out;
    }
    agent_join_kubeconfig_path(dir, names[0], main_kc, kclen);
    rc = 0;
out:
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
    return rc;
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
    if (!set.kubeconfig == !set.server) {
        fprintf(stderr, "skiff agent: give either --kubeconfig FILE (the server writes one in its "
                        "data directory) or --server URL --token TOKEN --ca-cert-hash HASH\n");
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
    char err[1024] = "", server[300] = "", main_kc[1300];
    if (set.server) {
        if (join_and_connect(&set, &st, main_kc, sizeof main_kc, err, sizeof err) != 0) {
            fprintf(stderr, "skiff agent: %s\n", err);
            free_writers(&st);
            uv_run(st.loop, UV_RUN_DEFAULT);
            uv_loop_close(st.loop);
            return 1;
        }
        set.kubeconfig = main_kc;
        ho.node_writers = st.node_clients;
    }
    st.client = client_from_kubeconfig(st.loop, set.kubeconfig, server, sizeof server, err,
                                       sizeof err);
    if (!st.client) {
        fprintf(stderr, "skiff agent: %s\n", err);
        free_writers(&st);
        uv_run(st.loop, UV_RUN_DEFAULT);
        uv_loop_close(st.loop);
        return 1;
    }
    /* joined nodes write through their own clients: no shared writers */
    size_t want = set.server ? 0
                             : ((size_t)set.max_in_flight + CONNECTIONS_PER_CLIENT - 1) /
                                   CONNECTIONS_PER_CLIENT;
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
