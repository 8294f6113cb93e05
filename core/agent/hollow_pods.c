/* core/agent/hollow_pods.c - the simulated kubelet of the hollow nodes:
 * one watch on every bound pod (fieldSelector spec.nodeName!=, pod_watch.c)
 * of which only pods on our nodes are kept, and of those only a small
 * record, and a single timer over a heap of deadlines.
 *
 * A pod bound to one of our nodes turns Running (with an address from its
 * node's range) after the ready delay, Ready unless annotated
 * hollow.skiff.io/ready: "false"; with restartPolicy Never or OnFailure it
 * finishes after hollow.skiff.io/run-for with hollow.skiff.io/exit-code.
 * A pod being deleted is removed with grace period 0, as the kubelet does
 * once its containers have stopped. Nothing here writes except through
 * the fleet's write queue. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>
#include <skiff/errors.h>

#include "agent/pod_watch.h"
#include <skiff/objects.h>

#include "agent/hollow_int.h"
#include "util/log.h"

static const skiff_resource_t PODS = {"", "v1", "pods", NULL};
static const skiff_resource_t PODS_STATUS = {"", "v1", "pods", "status"};

enum { PS_WAITING = 1, PS_RUNNING, PS_TERMINATED, PS_DELETING };

typedef struct hpod {
    char *key;
    char *uid;
    hnode_t *node;
    int stage;
    int never_ready, exit_code;
    int64_t run_for_ms; /* -1: keeps running */
    uint32_t ip;
    int has_ip;
    int rewrite; /* found running with a foreign address: report ours */
    int64_t accepted_ms, started_ms, finished_ms; /* wall clock */
    int64_t due;                                  /* monotonic; in the heap when heap_idx != NONE */
    size_t heap_idx;
    char *skel;   /* hollow_pod_skeleton(), serialised: what a status write needs */
    unsigned gen; /* the list generation it was last seen in */
} hpod_t;

#define NONE SIZE_MAX

struct hollow_pods {
    hollow_t *h;
    pod_watch_t *watch;
    unsigned gen;   /* bumped at each (re)list */
    strmap_t *pods; /* "ns/name" -> hpod_t */
    hpod_t **heap;
    size_t heap_len, heap_cap;
    uv_timer_t timer;
    int timer_init, stopped;
    int64_t armed; /* due time the timer is set for, or 0 */
};

/* ---- the deadline heap ------------------------------------------------------------ */

static void heap_swap(hollow_pods_t *p, size_t a, size_t b)
{
    hpod_t *t = p->heap[a];
    p->heap[a] = p->heap[b];
    p->heap[b] = t;
    p->heap[a]->heap_idx = a;
    p->heap[b]->heap_idx = b;
}

static void heap_up(hollow_pods_t *p, size_t i)
{
    while (i > 0 && p->heap[(i - 1) / 2]->due > p->heap[i]->due) {
        heap_swap(p, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(hollow_pods_t *p, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->heap_len && p->heap[l]->due < p->heap[m]->due) m = l;
        if (r < p->heap_len && p->heap[r]->due < p->heap[m]->due) m = r;
        if (m == i) return;
        heap_swap(p, i, m);
        i = m;
    }
}

static void heap_remove(hollow_pods_t *p, hpod_t *pod)
{
    size_t i = pod->heap_idx;
    if (i == NONE) return;
    pod->heap_idx = NONE;
    p->heap_len--;
    if (i == p->heap_len) return;
    p->heap[i] = p->heap[p->heap_len];
    p->heap[i]->heap_idx = i;
    heap_up(p, i);
    heap_down(p, p->heap[i]->heap_idx);
}

static void on_timer(uv_timer_t *t);

static void arm(hollow_pods_t *p)
{
    if (p->stopped || !p->heap_len) return;
    int64_t due = p->heap[0]->due;
    if (p->armed && p->armed <= due) return;
    int64_t now = hollow_mono_ms();
    p->armed = due;
    uv_timer_start(&p->timer, on_timer, (uint64_t)(due > now ? due - now : 0), 0);
}

static int schedule(hollow_pods_t *p, hpod_t *pod, int64_t due)
{
    heap_remove(p, pod);
    if (p->heap_len == p->heap_cap) {
        size_t cap = p->heap_cap ? p->heap_cap * 2 : 256;
        hpod_t **nh = realloc(p->heap, cap * sizeof *nh);
        if (!nh) return SKIFF_ENOMEM;
        p->heap = nh;
        p->heap_cap = cap;
    }
    pod->due = due;
    pod->heap_idx = p->heap_len;
    p->heap[p->heap_len++] = pod;
    heap_up(p, pod->heap_idx);
    arm(p);
    return 0;
}

/* ---- pod states --------------------------------------------------------------------- */

static void pod_free(hollow_pods_t *p, hpod_t *pod)
{
    heap_remove(p, pod);
    if (pod->has_ip) pod_range_release(&pod->node->range, pod->ip);
    free(pod->key);
    free(pod->uid);
    free(pod->skel);
    free(pod);
}

static void free_value(void *v)
{
    hpod_t *pod = v;
    free(pod->key);
    free(pod->uid);
    free(pod->skel);
    free(pod);
}

static const char *meta_str(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

static void write_status(hollow_pods_t *p, hpod_t *pod)
{
    write_queue_add(p->h->wq, OP_POD_STATUS, pod->key);
    write_queue_pump(p->h->wq);
}

static void take_ip(hpod_t *pod)
{
    if (pod->has_ip) return;
    if (pod_range_take(&pod->node->range, &pod->ip) == 0) {
        pod->has_ip = 1;
        return;
    }
    /* more pods than addresses (bound past --pods): share the last one */
    log_warn("agent", "node %s has no pod address left for %s", pod->node->name, pod->key);
    pod->ip = pod->node->range.base + pod->node->range.size - 2;
}

/* A pod we see for the first time (or after a restart of the agent):
 * pick up where its status says it is. */
static hpod_t *pod_new(hollow_pods_t *p, const char *key, const json_t *obj, hnode_t *node)
{
    hpod_t *pod = calloc(1, sizeof *pod);
    if (!pod) return NULL;
    pod->key = strdup(key);
    pod->uid = strdup(meta_str(obj, "uid") ? meta_str(obj, "uid") : "");
    pod->node = node;
    pod->heap_idx = NONE;
    if (!pod->key || !pod->uid) {
        free(pod->key);
        free(pod->uid);
        free(pod);
        return NULL;
    }
    if (hollow_pod_behaviour(obj, &pod->never_ready, &pod->run_for_ms, &pod->exit_code) != 0)
        log_warn("agent", "pod %s: malformed hollow.skiff.io annotation; using the defaults", key);
    int64_t now = skiff_now_ms(), mono = hollow_mono_ms();
    const json_t *st = json_object_get(obj, "status");
    const char *phase = json_string_value(json_object_get(st, "phase"));
    const char *ip = json_string_value(json_object_get(st, "podIP"));
    int64_t start = skiff_time_parse(json_string_value(json_object_get(st, "startTime")));
    pod->accepted_ms = start > 0 ? start : now;
    if (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))) {
        pod->stage = PS_TERMINATED;
    } else if (phase && !strcmp(phase, "Running") && ip) {
        pod->stage = PS_RUNNING;
        uint32_t a;
        if (ipam_parse_ip(ip, &a) == 0 && pod_range_claim(&node->range, a) == 0) {
            pod->ip = a;
            pod->has_ip = 1;
        } else {
            take_ip(pod);
            pod->rewrite = 1; /* its address is not one of this node's any more */
        }
        const json_t *cs = json_array_get(json_object_get(st, "containerStatuses"), 0);
        int64_t s = skiff_time_parse(json_string_value(
            json_object_get(json_object_get(json_object_get(cs, "state"), "running"), "startedAt")));
        pod->started_ms = s > 0 ? s : pod->accepted_ms;
        if (pod->run_for_ms >= 0) {
            int64_t left = pod->started_ms + pod->run_for_ms - now;
            schedule(p, pod, mono + (left > 0 ? left : 0));
        }
    } else {
        pod->stage = PS_WAITING;
        schedule(p, pod, mono + p->h->o.ready_delay_ms);
    }
    return pod;
}

static void observe(hollow_pods_t *p, json_t *obj)
{
    if (p->stopped) return;
    const char *node_name =
        json_string_value(json_object_get(json_object_get(obj, "spec"), "nodeName"));
    hnode_t *node = node_name ? strmap_get(p->h->by_name, node_name) : NULL;
    if (!node) return; /* another agent's pod */
    char key[600];
    if (skiff_object_key(key, sizeof key, obj) >= (int)sizeof key) return;
    hpod_t *pod = strmap_get(p->pods, key);
    const char *uid = meta_str(obj, "uid");
    if (pod && uid && strcmp(pod->uid, uid) != 0) { /* same name, another pod */
        strmap_remove(p->pods, key);
        pod_free(p, pod);
        pod = NULL;
    }
    if (!pod) {
        pod = pod_new(p, key, obj, node);
        if (!pod) return;
        strmap_put(p->pods, key, pod);
        if (pod->rewrite) write_status(p, pod);
    }
    pod->gen = p->gen;
    json_t *sk = hollow_pod_skeleton(obj);
    char *skel = sk ? json_dumps(sk, JSON_COMPACT) : NULL;
    json_decref(sk);
    if (skel) {
        free(pod->skel);
        pod->skel = skel;
    }
    if (meta_str(obj, "deletionTimestamp") && pod->stage != PS_DELETING) {
        pod->stage = PS_DELETING;
        heap_remove(p, pod);
        write_queue_add(p->h->wq, OP_POD_DELETE, pod->key);
        write_queue_pump(p->h->wq);
    }
}

static void on_upsert(void *data, json_t *obj)
{
    observe(data, obj);
}

static void on_relist_begin(void *data)
{
    hollow_pods_t *p = data;
    p->gen++;
}

typedef struct stale {
    hollow_pods_t *p;
    char **keys;
    size_t n;
} stale_t;

static void collect_stale(const char *key, void *value, void *data)
{
    stale_t *s = data;
    hpod_t *pod = value;
    if (pod->gen != s->p->gen) s->keys[s->n++] = strdup(key);
}

/* After a list that followed a lost watch: pods it no longer has are gone. */
static void on_relist_end(void *data)
{
    hollow_pods_t *p = data;
    stale_t s = {p, calloc(strmap_size(p->pods) + 1, sizeof(char *)), 0};
    if (!s.keys) return;
    strmap_each(p->pods, collect_stale, &s);
    for (size_t i = 0; i < s.n; i++) {
        hpod_t *pod = s.keys[i] ? strmap_remove(p->pods, s.keys[i]) : NULL;
        if (pod) pod_free(p, pod);
        free(s.keys[i]);
    }
    free(s.keys);
}

static void on_delete(void *data, json_t *obj)
{
    hollow_pods_t *p = data;
    char key[600];
    if (skiff_object_key(key, sizeof key, obj) >= (int)sizeof key) return;
    hpod_t *pod = strmap_get(p->pods, key);
    if (!pod) return;
    strmap_remove(p->pods, key);
    pod_free(p, pod);
}

/* Deadlines: containers start, or finish. */
static void on_timer(uv_timer_t *t)
{
    hollow_pods_t *p = t->data;
    p->armed = 0;
    int64_t mono = hollow_mono_ms();
    while (p->heap_len && p->heap[0]->due <= mono) {
        hpod_t *pod = p->heap[0];
        heap_remove(p, pod);
        int64_t now = skiff_now_ms();
        if (pod->stage == PS_WAITING) {
            pod->stage = PS_RUNNING;
            pod->started_ms = now;
            take_ip(pod);
            if (pod->run_for_ms >= 0) schedule(p, pod, mono + pod->run_for_ms);
        } else if (pod->stage == PS_RUNNING) {
            pod->stage = PS_TERMINATED;
            pod->finished_ms = now;
        } else {
            continue;
        }
        write_status(p, pod);
    }
    arm(p);
}

/* ---- writes --------------------------------------------------------------------------- */

int hollow_pods_op_start(hollow_pods_t *p, int kind, const char *key, write_op_t *op)
{
    hollow_t *h = p->h;
    hpod_t *pod = strmap_get(p->pods, key);
    if (!pod || h->stopping) return 1;
    const char *slash = strchr(key, '/');
    if (!slash) return 1;
    char ns[300];
    snprintf(ns, sizeof ns, "%.*s", (int)(slash - key), key);
    if (kind == OP_POD_DELETE) {
        skiff_write_opts_t wo = {.grace_period_seconds = 0};
        return skiff_client_delete(hollow_node_writer(h, pod->node), &PODS, ns, slash + 1, &wo, write_queue_client_cb,
                                   op);
    }
    if (pod->stage != PS_RUNNING && pod->stage != PS_TERMINATED) return 1;
    json_t *obj = pod->skel ? json_loads(pod->skel, 0, NULL) : NULL;
    if (!obj) return SKIFF_ENOMEM;
    char pod_ip[20], host_ip[20];
    ipam_format(pod->ip, pod_ip, sizeof pod_ip);
    snprintf(host_ip, sizeof host_ip, "%s", pod->node->ip);
    hollow_pod_view_t v = {.stage = pod->stage == PS_RUNNING ? HOLLOW_POD_RUNNING
                                                             : HOLLOW_POD_TERMINATED,
                           .ready = !pod->never_ready,
                           .exit_code = pod->exit_code,
                           .pod_ip = pod_ip,
                           .host_ip = host_ip,
                           .accepted_ms = pod->accepted_ms,
                           .started_ms = pod->started_ms ? pod->started_ms : pod->accepted_ms,
                           .finished_ms = pod->finished_ms};
    json_t *st = hollow_pod_status(obj, &v);
    json_decref(obj);
    if (!st) return SKIFF_ENOMEM;
    /* the uid makes the write a precondition: a new pod of the same name
     * is not given the old one's status */
    json_t *patch = json_pack("{s:{s:s}, s:o}", "metadata", "uid", pod->uid, "status", st);
    char *body = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
    json_decref(patch);
    if (!body) return SKIFF_ENOMEM;
    skiff_write_opts_t wo = {.grace_period_seconds = -1};
    int rc = skiff_client_patch(hollow_node_writer(h, pod->node), &PODS_STATUS, ns, slash + 1, SKIFF_PATCH_MERGE, body,
                                &wo, write_queue_client_cb, op);
    free(body);
    return rc;
}

int64_t hollow_pods_op_done(hollow_pods_t *p, int kind, const char *key, int status, json_t *obj)
{
    if (p->h->stopping) return 0;
    if ((status >= 200 && status < 300) || status == 404) return 0;
    if (status == 0 || status == 409 || status == 429 || status >= 500) return 500;
    const char *msg = json_string_value(json_object_get(obj, "message"));
    log_warn("agent", "%s of pod %s: status %d%s%s",
             kind == OP_POD_DELETE ? "deletion" : "status update", key, status, msg ? ": " : "",
             msg ? msg : "");
    return 0;
}

/* ---- life cycle ------------------------------------------------------------------------- */

hollow_pods_t *hollow_pods_new(hollow_t *h)
{
    hollow_pods_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->h = h;
    p->pods = strmap_new();
    if (!p->pods) {
        free(p);
        return NULL;
    }
    uv_timer_init(h->loop, &p->timer);
    p->timer.data = p;
    p->timer_init = 1;
    return p;
}

int hollow_pods_start(hollow_pods_t *p)
{
    if (p->watch || p->stopped) return 0;
    /* one watch for every node: all bound pods, filtered here by node */
    pod_watch_handler_t hd = {on_relist_begin, on_upsert, on_delete, on_relist_end, p};
    p->watch = pod_watch_start(p->h->loop, p->h->client, "spec.nodeName!=", &hd);
    return p->watch ? 0 : SKIFF_ENOMEM;
}

void hollow_pods_stop(hollow_pods_t *p)
{
    if (p->stopped) return;
    p->stopped = 1;
    pod_watch_stop(p->watch); /* frees itself once the loop has run */
    p->watch = NULL;
    uv_timer_stop(&p->timer);
}

void hollow_pods_close(hollow_pods_t *p)
{
    if (!p || !p->timer_init) return;
    p->timer_init = 0;
    uv_close((uv_handle_t *)&p->timer, NULL);
}

void hollow_pods_free(hollow_pods_t *p)
{
    if (!p) return;
    pod_watch_stop(p->watch);
    strmap_free(p->pods, free_value);
    free(p->heap);
    free(p);
}
