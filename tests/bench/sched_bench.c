/* tests/bench/sched_bench.c - scheduling throughput end to end against a
 * running `skiff server --plain-http`: registers nodes (unless told they
 * exist), watches pods, creates bare pods through the API with many
 * requests in flight, and times each pod from the moment its create was
 * sent to the watch event that shows it bound. Prints figures; asserts
 * nothing. tests/bench/sched_bench (the script) starts the server and
 * adds its RSS and CPU time.
 *
 *   sched_bench --port P [--nodes N] [--pods M] [--in-flight K]
 *               [--node-cpu 32] [--pod-cpu 100m] [--clients 64] [--skip-nodes]
 *               [--rate PODS_PER_S] [--create-only | --bound-only] [--timeout S]
 *               [--deployments D]
 *
 * Creates are spread over --clients HTTP clients (four keep-alive
 * connections each), since a connection carries one request at a time.
 * Without --rate pods are created as fast as --in-flight allows (the
 * scheduler then runs behind and latency measures the backlog); with it,
 * at a steady rate. --create-only creates and stops (for a server without a
 * scheduler); --bound-only creates nothing and times how fast the pods
 * already stored get bound (a backlog, after a restart with a scheduler).
 * --deployments D creates D Deployments of M/D replicas instead of bare
 * pods (the server must run the deployment and replicaset controllers) and
 * times each pod from its Deployment's create to its binding. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <skiff/client.h>

#include "api/client_http.h"
#include "util/strmap.h"

typedef struct bench {
    uv_loop_t *loop;
    skiff_client_t *c;         /* watches and lists */
    skiff_client_t **cs;       /* creates, round-robin: each client keeps 4 connections */
    int n_clients, rr;
    skiff_client_watch_t *w;
    int nodes, pods, in_flight;
    const char *node_cpu, *pod_cpu;
    int nodes_done, nodes_sent, nodes_failed;
    int pods_sent, pods_done, pods_failed, bound;
    uint64_t *sent_ns;    /* per pod: create sent */
    uint64_t *bound_ns;   /* per pod: bound seen (0: not yet) */
    uint64_t first_ns, last_bound_ns, last_created_ns;
    uv_timer_t timeout;
    int timeout_s;
    int rate;                  /* pods per second; 0: as fast as in_flight allows */
    int create_only;           /* create nodes and pods, then stop */
    int bound_only;            /* create nothing: time the binding of existing pods */
    uint64_t first_bound_ns;
    int done;
    uv_timer_t pacer;
    uint64_t paced_start_ns;
    char rv[64];
    /* --deployments: per Deployment its create time; per pod seen bound
     * its latency (pods have generated names) */
    int deployments, deploys_sent, deploys_done, deploys_failed;
    uint64_t *deploy_sent_ns;
    uint64_t *lat_ns;
    strmap_t *seen;
} bench_t;

static const skiff_resource_t nodes_res = {"", "v1", "nodes", NULL};
static const skiff_resource_t pods_res = {"", "v1", "pods", NULL};
static const skiff_resource_t deploys_res = {"apps", "v1", "deployments", NULL};
#define DEPLOY_PREFIX "bench-deploy-"


static void send_node(bench_t *b);
static void send_pod(bench_t *b);
static void start_pods(bench_t *b);

static void finish(bench_t *b)
{
    b->done = 1;
    if (b->w) {
        b->c->vt->watch_cancel(b->w);
        b->w = NULL;
    }
    uv_timer_stop(&b->timeout);
    uv_close((uv_handle_t *)&b->timeout, NULL);
    uv_timer_stop(&b->pacer);
    uv_close((uv_handle_t *)&b->pacer, NULL);
    b->c->vt->free(b->c);
    for (int i = 0; i < b->n_clients; i++) b->cs[i]->vt->free(b->cs[i]);
}

static void on_node(void *data, int status, json_t *obj)
{
    bench_t *b = data;
    b->nodes_done++;
    if (status != 201) b->nodes_failed++;
    if (b->nodes_sent < b->nodes) send_node(b);
    else if (b->nodes_done == b->nodes) {
        fprintf(stderr, "sched_bench: %d nodes registered (%d failed)\n", b->nodes, b->nodes_failed);
        start_pods(b);
    }
}

static void send_node(bench_t *b)
{
    int i = b->nodes_sent++;
    json_t *n = json_pack(
        "{s:s,s:s,s:{s:s#,s:{s:s#}},s:{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},s:[{s:s,s:s}]}}",
        "apiVersion", "v1", "kind", "Node", "metadata", "name", "", 0, "labels",
        "kubernetes.io/hostname", "", 0, "status", "capacity", "cpu", b->node_cpu, "memory",
        "256Gi", "pods", "110", "allocatable", "cpu", b->node_cpu, "memory", "256Gi", "pods",
        "110", "conditions", "type", "Ready", "status", "True");
    char name[64];
    snprintf(name, sizeof name, "bench-node-%05d", i);
    json_object_set_new(json_object_get(n, "metadata"), "name", json_string(name));
    json_object_set_new(json_object_get(json_object_get(n, "metadata"), "labels"),
                        "kubernetes.io/hostname", json_string(name));
    skiff_client_t *c = b->cs[b->rr++ % b->n_clients];
    if (skiff_client_create(c, &nodes_res, NULL, n, NULL, on_node, b) != 0) {
        b->nodes_done++;
        b->nodes_failed++;
    }
    json_decref(n);
}

static int index_of(const char *name)
{
    const char *p = name ? strrchr(name, '-') : NULL;
    return p ? atoi(p + 1) : -1;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

static void report(bench_t *b)
{
    if (b->bound_only) {
        printf("pods_bound            %d of %d\n", b->bound, b->pods);
        printf("bound_per_s           %.0f   (first pod bound to last)\n",
               b->last_bound_ns > b->first_bound_ns
                   ? b->bound / ((double)(b->last_bound_ns - b->first_bound_ns) / 1e9) : 0);
        printf("start_to_last_bound_s %.1f   (watch opened to last pod bound)\n",
               (double)(b->last_bound_ns - b->first_ns) / 1e9);
        return;
    }
    uint64_t *lat = malloc(sizeof *lat * (size_t)(b->pods ? b->pods : 1));
    int n = 0;
    if (b->deployments) {
        for (int i = 0; i < b->bound; i++) lat[n++] = b->lat_ns[i];
    } else {
        for (int i = 0; i < b->pods; i++)
            if (b->bound_ns[i] && b->sent_ns[i]) lat[n++] = b->bound_ns[i] - b->sent_ns[i];
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    double span = (double)(b->last_bound_ns - b->first_ns) / 1e9;
    double create_span = (double)(b->last_created_ns - b->first_ns) / 1e9;
    printf("nodes                 %d\n", b->nodes);
    if (b->deployments)
        printf("deployments_created   %d (failed %d), %d replicas each\n",
               b->deploys_done - b->deploys_failed, b->deploys_failed, b->pods / b->deployments);
    else
        printf("pods_created          %d (failed %d)\n", b->pods_done - b->pods_failed, b->pods_failed);
    printf("pods_bound            %d\n", b->bound);
    if (!b->deployments)
        printf("creates_per_s         %.0f\n",
               create_span > 0 ? (b->pods_done - b->pods_failed) / create_span : 0);
    printf("bound_per_s           %.0f   (first create sent to last pod bound)\n",
           span > 0 ? b->bound / span : 0);
    if (n) {
        printf("create_to_bound_p50_ms %.1f\n", lat[n / 2] / 1e6);
        printf("create_to_bound_p99_ms %.1f\n", lat[(size_t)((double)n * 0.99)] / 1e6);
        printf("create_to_bound_max_ms %.1f\n", lat[n - 1] / 1e6);
    }
    free(lat);
}

static void on_pod_event(void *data, const char *type, json_t *obj)
{
    bench_t *b = data;
    if (!type) {
        b->w = NULL;
        if (b->bound >= b->pods || b->done) return;
        /* the server may end a watch (timeout, a slow reader): resume
         * from the last revision seen, as an informer would */
        skiff_list_opts_t o = {.resource_version = b->rv[0] ? b->rv : NULL, .timeout_seconds = 3600};
        if (skiff_client_watch(b->c, &pods_res, NULL, &o, on_pod_event, b, &b->w) != 0)
            fprintf(stderr, "sched_bench: the watch ended and could not be opened again\n");
        return;
    }
    const char *erv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (erv) snprintf(b->rv, sizeof b->rv, "%s", erv);
    if (strcmp(type, "ADDED") != 0 && strcmp(type, "MODIFIED") != 0) return;
    const char *node = json_string_value(json_object_get(json_object_get(obj, "spec"), "nodeName"));
    if (!node || !*node) return;
    const char *pname = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (b->deployments) {
        /* "bench-deploy-0007-<hash>-<suffix>": timed from Deployment 7's create */
        if (!pname || strncmp(pname, DEPLOY_PREFIX, strlen(DEPLOY_PREFIX)) != 0) return;
        int d = atoi(pname + strlen(DEPLOY_PREFIX));
        if (d < 0 || d >= b->deployments || !b->deploy_sent_ns[d] || strmap_get(b->seen, pname) ||
            b->bound >= b->pods)
            return;
        strmap_put(b->seen, pname, b);
        uint64_t now = uv_hrtime();
        b->lat_ns[b->bound] = now - b->deploy_sent_ns[d];
        if (!b->first_bound_ns) b->first_bound_ns = now;
        b->last_bound_ns = now;
        if (++b->bound == b->pods) {
            report(b);
            finish(b);
        }
        return;
    }
    int i = index_of(pname);
    if (i < 0 || i >= b->pods || b->bound_ns[i]) return;
    b->bound_ns[i] = uv_hrtime();
    if (!b->first_bound_ns) b->first_bound_ns = b->bound_ns[i];
    b->last_bound_ns = b->bound_ns[i];
    if (++b->bound == b->pods) {
        report(b);
        finish(b);
    }
}

static void on_pod(void *data, int status, json_t *obj)
{
    bench_t *b = data;
    b->pods_done++;
    b->last_created_ns = uv_hrtime();
    if (status != 201) {
        if (b->pods_failed++ < 5)
            fprintf(stderr, "sched_bench: create failed (%d): %s\n", status,
                    json_string_value(json_object_get(obj, "message")));
    }
    if (!b->rate && b->pods_sent < b->pods) send_pod(b);
    if (b->create_only && b->pods_done == b->pods) {
        printf("pods_created          %d (failed %d) in %.1f s\n", b->pods_done - b->pods_failed,
               b->pods_failed, (double)(b->last_created_ns - b->first_ns) / 1e9);
        finish(b);
    }
}

/* --rate: every 5 ms, send what the schedule is owed (in_flight still caps) */
static void on_pace(uv_timer_t *t)
{
    bench_t *b = t->data;
    uint64_t due = (uv_hrtime() - b->paced_start_ns) * (uint64_t)b->rate / 1000000000u;
    while ((uint64_t)b->pods_sent < due && b->pods_sent < b->pods &&
           b->pods_sent - b->pods_done < b->in_flight)
        send_pod(b);
    if (b->pods_sent == b->pods) uv_timer_stop(t);
}

static void send_pod(bench_t *b)
{
    int i = b->pods_sent++;
    char name[64];
    snprintf(name, sizeof name, "bench-pod-%06d", i);
    json_t *p = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{s:[{s:s,s:s,s:{s:{s:s,s:s}}}]}}",
                          "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
                          "namespace", "default", "labels", "app", "bench", "spec", "containers",
                          "name", "c", "image", "registry.k8s.io/pause:3.9", "resources",
                          "requests", "cpu", b->pod_cpu, "memory", "64Mi");
    b->sent_ns[i] = uv_hrtime();
    if (!b->first_ns) b->first_ns = b->sent_ns[i];
    skiff_client_t *c = b->cs[b->rr++ % b->n_clients];
    if (skiff_client_create(c, &pods_res, "default", p, NULL, on_pod, b) != 0) {
        b->pods_done++;
        b->pods_failed++;
    }
    json_decref(p);
}

static void send_deploy(bench_t *b);

static void on_deploy(void *data, int status, json_t *obj)
{
    bench_t *b = data;
    b->deploys_done++;
    b->last_created_ns = uv_hrtime();
    if (status != 201 && b->deploys_failed++ < 5)
        fprintf(stderr, "sched_bench: deployment create failed (%d): %s\n", status,
                json_string_value(json_object_get(obj, "message")));
    if (b->deploys_sent < b->deployments) send_deploy(b);
}

static void send_deploy(bench_t *b)
{
    int i = b->deploys_sent++;
    char name[64];
    snprintf(name, sizeof name, DEPLOY_PREFIX "%04d", i);
    json_t *d = json_pack(
        "{s:s,s:s,s:{s:s,s:s},s:{s:i,s:{s:{s:s}},s:{s:{s:{s:s}},"
        "s:{s:[{s:s,s:s,s:{s:{s:s,s:s}}}]}}}}",
        "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", name, "namespace",
        "default", "spec", "replicas", b->pods / b->deployments, "selector", "matchLabels",
        "app", name, "template", "metadata", "labels", "app", name, "spec", "containers", "name",
        "c", "image", "registry.k8s.io/pause:3.9", "resources", "requests", "cpu", b->pod_cpu,
        "memory", "64Mi");
    b->deploy_sent_ns[i] = uv_hrtime();
    if (!b->first_ns) b->first_ns = b->deploy_sent_ns[i];
    skiff_client_t *c = b->cs[b->rr++ % b->n_clients];
    if (!d || skiff_client_create(c, &deploys_res, "default", d, NULL, on_deploy, b) != 0) {
        b->deploys_done++;
        b->deploys_failed++;
    }
    json_decref(d);
}

static void on_list(void *data, int status, json_t *obj)
{
    bench_t *b = data;
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    snprintf(b->rv, sizeof b->rv, "%s", rv ? rv : "");
    skiff_list_opts_t o = {.resource_version = b->rv, .timeout_seconds = 3600};
    if (b->create_only) {
        for (int i = 0; i < b->in_flight && b->pods_sent < b->pods; i++) send_pod(b);
        return;
    }
    if (b->bound_only) {
        /* the list held the pods bound already; the watch brings the rest */
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(obj, "items"), i, item) on_pod_event(b, "ADDED", item);
        snprintf(b->rv, sizeof b->rv, "%s", rv ? rv : "");
        if (b->bound == b->pods) return;
    }
    if (skiff_client_watch(b->c, &pods_res, NULL, &o, on_pod_event, b, &b->w) != 0) {
        fprintf(stderr, "sched_bench: cannot watch pods\n");
        finish(b);
        return;
    }
    if (b->bound_only) return;
    if (b->deployments) {
        for (int i = 0; i < b->in_flight && b->deploys_sent < b->deployments; i++) send_deploy(b);
        return;
    }
    if (b->rate) {
        b->paced_start_ns = uv_hrtime();
        uv_timer_start(&b->pacer, on_pace, 0, 5);
        return;
    }
    for (int i = 0; i < b->in_flight && b->pods_sent < b->pods; i++) send_pod(b);
}

static void start_pods(bench_t *b)
{
    skiff_list_opts_t o = {.limit = 1};
    if (b->bound_only) {
        b->first_ns = uv_hrtime();
        for (int i = 0; i < b->pods; i++) b->sent_ns[i] = b->first_ns;
        o.limit = 0;
        o.field_selector = "spec.nodeName!=";
    }
    skiff_client_list(b->c, &pods_res, NULL, &o, on_list, b);
}

static void on_timeout(uv_timer_t *t)
{
    bench_t *b = t->data;
    fprintf(stderr, "sched_bench: timed out after %d s with %d of %d pods bound\n", b->timeout_s,
            b->bound, b->pods);
    report(b);
    finish(b);
}

int main(int argc, char **argv)
{
    bench_t b = {.nodes = 5000, .pods = 50000, .in_flight = 256, .node_cpu = "32",
                 .pod_cpu = "100m", .timeout_s = 600, .n_clients = 64};
    int port = 0, skip_nodes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0 && v) port = atoi(argv[++i]);
        else if (strcmp(a, "--nodes") == 0 && v) b.nodes = atoi(argv[++i]);
        else if (strcmp(a, "--pods") == 0 && v) b.pods = atoi(argv[++i]);
        else if (strcmp(a, "--in-flight") == 0 && v) b.in_flight = atoi(argv[++i]);
        else if (strcmp(a, "--node-cpu") == 0 && v) b.node_cpu = argv[++i];
        else if (strcmp(a, "--pod-cpu") == 0 && v) b.pod_cpu = argv[++i];
        else if (strcmp(a, "--timeout") == 0 && v) b.timeout_s = atoi(argv[++i]);
        else if (strcmp(a, "--clients") == 0 && v) b.n_clients = atoi(argv[++i]);
        else if (strcmp(a, "--rate") == 0 && v) b.rate = atoi(argv[++i]);
        else if (strcmp(a, "--create-only") == 0) b.create_only = 1;
        else if (strcmp(a, "--bound-only") == 0) b.bound_only = 1;
        else if (strcmp(a, "--skip-nodes") == 0) skip_nodes = 1;
        else if (strcmp(a, "--deployments") == 0 && v) b.deployments = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: sched_bench --port P [--nodes N] [--pods M] [--in-flight K] "
                            "[--node-cpu Q] [--pod-cpu Q] [--skip-nodes] [--timeout S] "
                            "[--rate R] [--clients C] [--deployments D]\n");
            return 2;
        }
    }
    if (!port || b.pods <= 0) {
        fprintf(stderr, "sched_bench: --port is required\n");
        return 2;
    }
    b.loop = uv_default_loop();
    b.c = client_http_new(b.loop, "127.0.0.1", port, NULL);
    if (b.n_clients < 1) b.n_clients = 1;
    b.cs = calloc((size_t)b.n_clients, sizeof *b.cs);
    for (int i = 0; b.cs && i < b.n_clients; i++)
        if (!(b.cs[i] = client_http_new(b.loop, "127.0.0.1", port, NULL))) return 1;
    b.sent_ns = calloc((size_t)b.pods, sizeof *b.sent_ns);
    b.bound_ns = calloc((size_t)b.pods, sizeof *b.bound_ns);
    if (!b.c || !b.sent_ns || !b.bound_ns) return 1;
    if (b.deployments > 0) {
        /* replicas per Deployment; the pods timed are that many times D */
        if (b.deployments > b.pods) b.deployments = b.pods;
        b.pods = b.pods / b.deployments * b.deployments;
        b.deploy_sent_ns = calloc((size_t)b.deployments, sizeof *b.deploy_sent_ns);
        b.lat_ns = calloc((size_t)b.pods, sizeof *b.lat_ns);
        b.seen = strmap_new();
        if (!b.deploy_sent_ns || !b.lat_ns || !b.seen) return 1;
    }
    uv_timer_init(b.loop, &b.timeout);
    uv_timer_init(b.loop, &b.pacer);
    b.pacer.data = &b;
    b.timeout.data = &b;
    uv_timer_start(&b.timeout, on_timeout, (uint64_t)b.timeout_s * 1000, 0);
    if (skip_nodes || b.nodes == 0 || b.bound_only) {
        start_pods(&b);
    } else {
        for (int i = 0; i < b.in_flight && b.nodes_sent < b.nodes; i++) send_node(&b);
    }
    uv_run(b.loop, UV_RUN_DEFAULT);
    free(b.sent_ns);
    free(b.bound_ns);
    free(b.deploy_sent_ns);
    free(b.lat_ns);
    if (b.seen) strmap_free(b.seen, NULL);
    free(b.cs);
    return b.create_only ? (b.pods_failed ? 1 : 0) : b.bound == b.pods ? 0 : 1;
}
