/* plugins/scheduler-default/scheduler.c - the default scheduler plugin:
 * watches pods and nodes through the shared informers, keeps the node
 * cache incrementally, orders pending pods by priority, runs a cycle per
 * pod (framework.c), assumes the pod on the chosen node and binds it
 * through pods/binding with many bindings in flight, and reports pods
 * that fit nowhere (PodScheduled=False, FailedScheduling) or preempts
 * lower-priority pods for them. Retries follow kube-scheduler's queues:
 * back-off after each failure, and unschedulable pods move back when the
 * cluster changes or after a while. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>
#include <skiff/controller.h>
#include <skiff/objects.h>
#include <skiff/scheduler.h>

#include "sched.h"

#define SCHEDULER_NAME "default-scheduler"

static const skiff_setting_t settings[] = {
    {"filters", SKIFF_SETTING_STRING, "all",
     "filter steps to run: all, none, a list (NodeResourcesFit,TaintToleration,...) or removals "
     "from all (-NodePorts,-InterPodAffinity); plugin/Step names another plugin's step, "
     "all,plugin/Step adds it to the defaults"},
    {"scores", SKIFF_SETTING_STRING,
     "NodeResourcesFit:1,BalancedAllocation:1,ImageLocality:1,InterPodAffinity:2,"
     "NodeAffinity:2,PodTopologySpread:2,TaintToleration:3",
     "score steps with weights (Name:weight,...); NodeResourcesFit is the scoring-strategy's step; "
     "LeastAllocated and MostAllocated may be named directly; none disables scoring; "
     "plugin/Step:weight names another plugin's step, default,plugin/Step:weight adds it to "
     "the defaults"},
    {"scoring-strategy", SKIFF_SETTING_STRING, "LeastAllocated",
     "what NodeResourcesFit scores: LeastAllocated (spread) or MostAllocated (bin packing)"},
    {"percentage-of-nodes-to-score", SKIFF_SETTING_INT, "0",
     "stop filtering after this share of the nodes is feasible (0: adaptive as kube-scheduler, "
     "50% falling to 5% as the cluster grows, at least 100 nodes)"},
    {"max-inflight-bindings", SKIFF_SETTING_INT, "2000", "bindings in flight at most"},
    {"scheduling-slice", SKIFF_SETTING_DURATION, "25ms",
     "how long the scheduler may run at a stretch before the server's other work goes on"},
    {"pod-initial-backoff", SKIFF_SETTING_DURATION, "1s", "back-off after a pod's first failure"},
    {"pod-max-backoff", SKIFF_SETTING_DURATION, "10s", "longest back-off between attempts"},
    {"max-unschedulable-duration", SKIFF_SETTING_DURATION, "5m",
     "an unschedulable pod is tried again after this long even if nothing changed"},
    {"trim-bound-pods", SKIFF_SETTING_BOOL, "true",
     "cache pods already on nodes reduced, in the pods view the controllers share "
     "(skiff_pod_view); false: a pods informer of its own keeping every pod whole"},
    {"trim-nodes", SKIFF_SETTING_BOOL, "true",
     "cache nodes reduced, in the nodes view the controllers share (skiff_node_view: no "
     "status conditions, addresses or nodeInfo); false: a nodes informer of its own keeping "
     "every Node whole"},
    {"scheduled-events", SKIFF_SETTING_BOOL, "true",
     "record a Normal Scheduled Event for every pod bound"},
    {NULL},
};

typedef struct sched {
    skiff_plugin_ctx_t *ctx;
    sched_profile_t prof;
    sched_cache_t cache;
    skiff_informer_t *pods_inf, *nodes_inf, *ns_inf;
    int pods_h, nodes_h;
    skiff_event_recorder_t *events;
    /* active queue: a heap by priority, then arrival */
    pod_info_t **heap;
    size_t n_heap, cap_heap;
    uint64_t seq;
    pod_info_t *waiting;       /* unschedulable or backing off */
    pod_info_t *nominated;     /* pending pods with a nominated node */
    uv_idle_t idle;
    uv_timer_t tick;
    int idle_on;
    int closing_handles;
    int stopping;
    int inflight;              /* bindings and status writes in flight */
    int binds_inflight;
    uint64_t bind_seq;
    size_t next_start;
    uint64_t rng;
    /* settings */
    int pct;
    int max_inflight;
    uint64_t slice_ns;         /* scheduling-slice */
    int64_t backoff_initial_ms, backoff_max_ms, max_unschedulable_ms;
    int scheduled_events;
    /* figures for the log */
    uint64_t n_bound, n_failed;
    int synced_logged;
} sched_t;

static const skiff_resource_t pods_res = {"", "v1", "pods", NULL};
static const skiff_resource_t nodes_res = {"", "v1", "nodes", NULL};
static const skiff_resource_t ns_res = {"", "v1", "namespaces", NULL};
static const skiff_resource_t pod_status_res = {"", "v1", "pods", "status"};

/* ---- settings ------------------------------------------------------------------------ */

static int64_t parse_duration_ms(const char *s, int64_t dflt)
{
    if (!s || !*s) return dflt;
    char *end;
    double v = strtod(s, &end);
    if (end == s) return dflt;
    if (strcmp(end, "ms") == 0) return (int64_t)v;
    if (strcmp(end, "s") == 0 || !*end) return (int64_t)(v * 1000);
    if (strcmp(end, "m") == 0) return (int64_t)(v * 60000);
    if (strcmp(end, "h") == 0) return (int64_t)(v * 3600000);
    return dflt;
}

static int setting_int(skiff_plugin_ctx_t *ctx, const char *name, int dflt)
{
    const char *v = ctx->setting(ctx, name);
    return v && *v ? atoi(v) : dflt;
}

/* ---- the queue ------------------------------------------------------------------------ */

static int heap_less(const pod_info_t *a, const pod_info_t *b)
{
    if (a->p.priority != b->p.priority) return a->p.priority > b->p.priority;
    return a->seq < b->seq;
}

static void heap_swap(sched_t *s, size_t i, size_t j)
{
    pod_info_t *t = s->heap[i];
    s->heap[i] = s->heap[j];
    s->heap[j] = t;
    s->heap[i]->heap_index = i;
    s->heap[j]->heap_index = j;
}

static void heap_up(sched_t *s, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(s->heap[i], s->heap[p])) break;
        heap_swap(s, i, p);
        i = p;
    }
}

static void heap_down(sched_t *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->n_heap && heap_less(s->heap[l], s->heap[m])) m = l;
        if (r < s->n_heap && heap_less(s->heap[r], s->heap[m])) m = r;
        if (m == i) return;
        heap_swap(s, i, m);
        i = m;
    }
}

static void kick(sched_t *s);

static void push_active(sched_t *s, pod_info_t *pi)
{
    if (s->n_heap == s->cap_heap) {
        size_t cap = s->cap_heap ? s->cap_heap * 2 : 256;
        pod_info_t **h = realloc(s->heap, cap * sizeof *h);
        if (!h) return;
        s->heap = h;
        s->cap_heap = cap;
    }
    pi->q = Q_ACTIVE;
    pi->seq = ++s->seq;
    pi->heap_index = s->n_heap;
    s->heap[s->n_heap++] = pi;
    heap_up(s, pi->heap_index);
    kick(s);
}

static pod_info_t *pop_active(sched_t *s)
{
    if (!s->n_heap) return NULL;
    pod_info_t *pi = s->heap[0];
    s->n_heap--;
    if (s->n_heap) {
        s->heap[0] = s->heap[s->n_heap];
        s->heap[0]->heap_index = 0;
        heap_down(s, 0);
    }
    pi->q = Q_NONE;
    return pi;
}

static void waiting_add(sched_t *s, pod_info_t *pi, qstate_t q)
{
    pi->q = q;
    pi->wprev = NULL;
    pi->wnext = s->waiting;
    if (s->waiting) s->waiting->wprev = pi;
    s->waiting = pi;
}

static void waiting_del(sched_t *s, pod_info_t *pi)
{
    if (pi->wprev) pi->wprev->wnext = pi->wnext;
    else s->waiting = pi->wnext;
    if (pi->wnext) pi->wnext->wprev = pi->wprev;
    pi->wprev = pi->wnext = NULL;
}

/* Takes pi out of whichever queue holds it. */
static void dequeue(sched_t *s, pod_info_t *pi)
{
    if (pi->q == Q_ACTIVE) {
        size_t i = pi->heap_index;
        s->n_heap--;
        if (i != s->n_heap) {
            s->heap[i] = s->heap[s->n_heap];
            s->heap[i]->heap_index = i;
            heap_down(s, i);
            heap_up(s, s->heap[i] == pi ? i : s->heap[i]->heap_index);
        }
    } else if (pi->q == Q_UNSCHEDULABLE || pi->q == Q_BACKOFF) {
        waiting_del(s, pi);
    }
    pi->q = Q_NONE;
}

/* A change that may let unschedulable pods fit: they go back to the
 * active queue once their back-off is over (kube-scheduler's
 * MoveAllToActiveOrBackoffQueue). */
static void cluster_changed(sched_t *s)
{
    int64_t now = skiff_now_ms();
    for (pod_info_t *pi = s->waiting, *next; pi; pi = next) {
        next = pi->wnext;
        if (pi->q != Q_UNSCHEDULABLE) continue;
        if (pi->backoff_until_ms <= now) {
            waiting_del(s, pi);
            push_active(s, pi);
        } else {
            pi->q = Q_BACKOFF;
        }
    }
}

static void on_tick(uv_timer_t *t)
{
    sched_t *s = t->data;
    int64_t now = skiff_now_ms();
    for (pod_info_t *pi = s->waiting, *next; pi; pi = next) {
        next = pi->wnext;
        int go = pi->q == Q_BACKOFF ? pi->backoff_until_ms <= now
                                    : now - pi->unschedulable_since_ms >= s->max_unschedulable_ms;
        if (!go) continue;
        waiting_del(s, pi);
        push_active(s, pi);
    }
    kick(s);
}

/* ---- informer events ------------------------------------------------------------------ */

static int is_terminal(const json_t *pod)
{
    const char *ph = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return ph && (strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0);
}

static int ours(const json_t *pod)
{
    const char *sn = json_string_value(json_object_get(json_object_get(pod, "spec"), "schedulerName"));
    return !sn || !*sn || strcmp(sn, SCHEDULER_NAME) == 0;
}

static void nominated_del(sched_t *s, pod_info_t *pi)
{
    if (!pi->in_nominated) return;
    if (pi->nprev) pi->nprev->nnext = pi->nnext;
    else s->nominated = pi->nnext;
    if (pi->nnext) pi->nnext->nprev = pi->nprev;
    pi->nnext = pi->nprev = NULL;
    pi->in_nominated = 0;
}

static void nominated_add(sched_t *s, pod_info_t *pi)
{
    if (pi->in_nominated || !pi->nominated) return;
    pi->nprev = NULL;
    pi->nnext = s->nominated;
    if (s->nominated) s->nominated->nprev = pi;
    s->nominated = pi;
    pi->in_nominated = 1;
}

static void forget_pod(sched_t *s, pod_info_t *pi)
{
    nominated_del(s, pi);
    dequeue(s, pi);
    if (pi->node) node_remove_pod(pi);
    else if (pi->p.node_name[0] && !pi->p.assumed && s->cache.n_orphans) s->cache.n_orphans--;
    smap_del(&s->cache.pods, pi->key);
    pod_info_free(pi);
}

static void attach(sched_t *s, pod_info_t *pi)
{
    node_info_t *ni = cache_node_get(&s->cache, pi->p.node_name);
    if (ni) node_add_pod(ni, pi);
    else s->cache.n_orphans++;
}

static void pod_event(sched_t *s, json_t *pod)
{
    const char *ns = json_string_value(json_object_get(json_object_get(pod, "metadata"), "namespace"));
    const char *name = json_string_value(json_object_get(json_object_get(pod, "metadata"), "name"));
    if (!ns || !name) return;
    char key[512];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    pod_info_t *old = smap_get(&s->cache.pods, key);
    const char *node = json_string_value(json_object_get(json_object_get(pod, "spec"), "nodeName"));
    int bound = node && *node;
    if (bound && is_terminal(pod)) {
        /* finished pods hold nothing on their node */
        if (old) {
            forget_pod(s, old);
            cluster_changed(s);
        }
        return;
    }
    /* the binding seen, or a bound pod's status written (it started, it is
     * Ready): what the node holds stays as it is; the pod info takes the
     * new object (rebuilding it was 2-3% of the scheduling benchmark's
     * event loop) */
    if (bound && old && old->node && strcmp(old->p.node_name, node) == 0 &&
        pod_info_refresh(old, pod)) {
        if (old->p.assumed) {
            /* confirmed: no longer an assumption, out of every queue */
            old->p.assumed = 0;
            dequeue(s, old);
            nominated_del(s, old);
        }
        return;
    }
    if (!bound) {
        if (!ours(pod)) return;
        json_t *dt = json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp");
        if (dt && !json_is_null(dt)) {
            if (old && !old->p.assumed) forget_pod(s, old);
            return;
        }
        /* our own status writes come back as updates: a pod being bound
         * or waiting keeps its place */
        if (old && (old->p.assumed || old->q == Q_INFLIGHT)) return;
    }
    pod_info_t *pi = pod_info_new(pod);
    if (!pi) return;
    qstate_t was = Q_NONE;
    int changed_spec = 1;
    if (old) {
        was = old->q;
        pi->attempts = old->attempts;
        pi->backoff_until_ms = old->backoff_until_ms;
        pi->unschedulable_since_ms = old->unschedulable_since_ms;
        if (!pi->nominated) pod_info_set_nominated(pi, old->nominated);
        if (old->last_message) pi->last_message = strdup(old->last_message);
        changed_spec = !json_equal(json_object_get(old->obj, "spec"), json_object_get(pod, "spec")) ||
                       !json_equal(old->p.labels, pi->p.labels);
        int labels_changed = old->node && !json_equal(old->p.labels, pi->p.labels);
        forget_pod(s, old);
        if (labels_changed) cluster_changed(s);
    }
    if (smap_put(&s->cache.pods, pi->key, pi) != 0) {
        pod_info_free(pi);
        return;
    }
    if (bound) {
        attach(s, pi);
        return;
    }
    nominated_add(s, pi);
    if ((was == Q_UNSCHEDULABLE || was == Q_BACKOFF) && !changed_spec) {
        waiting_add(s, pi, was);
        return;
    }
    push_active(s, pi);
}

static void on_pod_add(void *data, json_t *obj) { pod_event(data, obj); }
static void on_pod_update(void *data, json_t *o, json_t *n) { pod_event(data, n); }

static void on_pod_delete(void *data, json_t *obj)
{
    sched_t *s = data;
    const json_t *meta = json_object_get(obj, "metadata");
    char key[512];
    snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(meta, "namespace")),
             json_string_value(json_object_get(meta, "name")));
    pod_info_t *pi = smap_get(&s->cache.pods, key);
    if (!pi) return;
    int freed = pi->node != NULL;
    forget_pod(s, pi);
    if (freed) cluster_changed(s);
}

/* Nodes: a new node or a change to what scheduling reads moves
 * unschedulable pods; heartbeats alone do not. Annotations count, as
 * kube-scheduler's UpdateNodeAnnotation event: step plugins may filter on
 * them. */
static int node_relevant_change(const json_t *a, const json_t *b)
{
    const json_t *sa = json_object_get(a, "status"), *sb = json_object_get(b, "status");
    const json_t *ma = json_object_get(a, "metadata"), *mb = json_object_get(b, "metadata");
    return !json_equal(json_object_get(ma, "labels"), json_object_get(mb, "labels")) ||
           !json_equal(json_object_get(ma, "annotations"), json_object_get(mb, "annotations")) ||
           !json_equal(json_object_get(a, "spec"), json_object_get(b, "spec")) ||
           !json_equal(json_object_get(sa, "allocatable"), json_object_get(sb, "allocatable")) ||
           !json_equal(json_object_get(sa, "images"), json_object_get(sb, "images"));
}

static void adopt_orphans(sched_t *s, node_info_t *ni)
{
    if (!s->cache.n_orphans) return;
    size_t it = 0;
    void *v;
    while (smap_next(&s->cache.pods, &it, NULL, &v)) {
        pod_info_t *pi = v;
        if (pi->node || !pi->p.node_name[0] || strcmp(pi->p.node_name, ni->name) != 0) continue;
        node_add_pod(ni, pi);
        if (s->cache.n_orphans) s->cache.n_orphans--;
    }
}

static void on_node_add(void *data, json_t *obj)
{
    sched_t *s = data;
    node_info_t *ni = cache_node_set(&s->cache, obj);
    if (!ni) return;
    adopt_orphans(s, ni);
    cluster_changed(s);
}

static void on_node_update(void *data, json_t *o, json_t *n)
{
    sched_t *s = data;
    if (!cache_node_set(&s->cache, n)) return;
    if (o != n && node_relevant_change(o, n)) cluster_changed(s);
}

static void on_node_delete(void *data, json_t *obj)
{
    sched_t *s = data;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    node_info_t *ni = name ? cache_node_get(&s->cache, name) : NULL;
    if (!ni) return;
    /* its pods become orphans until the node returns or they go */
    s->cache.n_orphans += ni->n.n_pods;
    cache_node_del(&s->cache, name);
}

static const json_t *namespace_labels(void *data, const char *ns)
{
    sched_t *s = data;
    json_t *o = s->ns_inf ? skiff_informer_get(s->ns_inf, ns) : NULL;
    return json_object_get(json_object_get(o, "metadata"), "labels");
}

/* ---- life cycle of in-flight work ----------------------------------------------------- */

static void sched_free(sched_t *s);

static void maybe_free(sched_t *s)
{
    if (s->stopping && s->inflight == 0 && s->closing_handles == 0) sched_free(s);
}

/* ---- binding ----------------------------------------------------------------------------- */

typedef struct bind_req {
    sched_t *s;
    char *key;
    char node[256];
    uint64_t seq;
    json_t *pod;      /* for the Event */
    int64_t started_ms;
} bind_req_t;

static void requeue_after_failure(sched_t *s, pod_info_t *pi)
{
    pi->attempts++;
    int64_t b = s->backoff_initial_ms;
    for (int i = 1; i < pi->attempts && b < s->backoff_max_ms; i++) b *= 2;
    if (b > s->backoff_max_ms) b = s->backoff_max_ms;
    pi->backoff_until_ms = skiff_now_ms() + b;
    waiting_add(s, pi, Q_BACKOFF);
}

static void on_bound(void *data, int status, json_t *obj)
{
    bind_req_t *r = data;
    sched_t *s = r->s;
    s->inflight--;
    s->binds_inflight--;
    if (!s->stopping) {
        pod_info_t *pi = smap_get(&s->cache.pods, r->key);
        if (status == 201 || status == 200) {
            s->n_bound++;
            if (pi && pi->bind_seq == r->seq) pi->q = Q_NONE;
            if (s->scheduled_events)
                skiff_event_record(s->events, r->pod, "Normal", "Scheduled",
                                   "Successfully assigned %s to %s", r->key, r->node);
        } else {
            s->n_failed++;
            const char *msg = json_string_value(json_object_get(obj, "message"));
            s->ctx->log(s->ctx, SKIFF_LOG_INFO, "binding %s to %s failed (%d): %s", r->key,
                        r->node, status, msg ? msg : "no answer");
            if (pi && pi->bind_seq == r->seq && pi->p.assumed) {
                /* forget the assumption; try again after a back-off */
                node_remove_pod(pi);
                pi->p.assumed = 0;
                pod_info_set_node(pi, NULL);
                pi->q = Q_NONE;
                if (status != 409 && status != 404) requeue_after_failure(s, pi);
                cluster_changed(s);
            }
        }
        kick(s);
    }
    json_decref(r->pod);
    free(r->key);
    free(r);
    maybe_free(s);
}

static int bind_pod(sched_t *s, pod_info_t *pi, node_info_t *ni)
{
    bind_req_t *r = calloc(1, sizeof *r);
    if (!r || !(r->key = strdup(pi->key))) {
        free(r);
        return -1;
    }
    r->s = s;
    r->seq = pi->bind_seq = ++s->bind_seq;
    r->pod = json_incref(pi->obj);
    snprintf(r->node, sizeof r->node, "%s", ni->name);
    /* the pod as the informer handed it: the server binds that tree */
    if (skiff_pod_bind(s->ctx->client, pi->obj, ni->name, on_bound, r) != 0) {
        json_decref(r->pod);
        free(r->key);
        free(r);
        return -1;
    }
    s->inflight++;
    s->binds_inflight++;
    return 0;
}

/* ---- unschedulable pods and preemption ---------------------------------------------------- */

typedef struct write_req {
    sched_t *s;
    char *what;
} write_req_t;

static void on_written(void *data, int status, json_t *obj)
{
    write_req_t *w = data;
    sched_t *s = w->s;
    s->inflight--;
    if (status >= 300 && status != 404 && !s->stopping) {
        const char *msg = json_string_value(json_object_get(obj, "message"));
        s->ctx->log(s->ctx, SKIFF_LOG_INFO, "%s failed (%d): %s", w->what, status,
                    msg ? msg : "no answer");
    }
    free(w->what);
    free(w);
    maybe_free(s);
}

static write_req_t *write_req(sched_t *s, const char *fmt, const char *a, const char *b)
{
    write_req_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->s = s;
    if (asprintf(&w->what, fmt, a, b) < 0) w->what = NULL;
    return w;
}

static void patch_status(sched_t *s, pod_info_t *pi, const char *message, const char *nominated)
{
    char ts[32];
    skiff_time_format(skiff_now_ms(), ts, sizeof ts);
    /* lastTransitionTime only when the condition turns False */
    const char *cur = skiff_condition_status(pi->obj, "PodScheduled");
    json_t *cond = json_pack("{s:s,s:s,s:s,s:s,s:n}", "type", "PodScheduled", "status", "False",
                             "reason", "Unschedulable", "message", message, "lastProbeTime");
    if (!cur || strcmp(cur, "False") != 0)
        json_object_set_new(cond, "lastTransitionTime", json_string(ts));
    json_t *st = json_pack("{s:[o]}", "conditions", cond);
    if (nominated) json_object_set_new(st, "nominatedNodeName", json_string(nominated));
    json_t *patch = json_pack("{s:o}", "status", st);
    char *body = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    write_req_t *w = body ? write_req(s, "writing the PodScheduled condition of %s%s", pi->key, "") : NULL;
    if (w && skiff_client_patch(s->ctx->client, &pod_status_res, pi->p.ns, pi->p.name,
                                SKIFF_PATCH_STRATEGIC, body, NULL, on_written, w) == 0) {
        s->inflight++;
    } else if (w) {
        free(w->what);
        free(w);
    }
    free(body);
}

static void evict(sched_t *s, pod_info_t *victim, pod_info_t *preemptor, const char *node)
{
    skiff_event_record(s->events, victim->obj, "Normal", "Preempted",
                       "Preempted by pod %s on node %s", preemptor->p.uid, node);
    write_req_t *w = write_req(s, "deleting preemption victim %s%s", victim->key, "");
    if (w && skiff_client_delete(s->ctx->client, &pods_res, victim->p.ns, victim->p.name, NULL,
                                 on_written, w) == 0) {
        s->inflight++;
    } else if (w) {
        free(w->what);
        free(w);
    }
}

static void unschedulable(sched_t *s, pod_info_t *pi, cycle_result_t *res, cycle_opts_t *o)
{
    char *msg = NULL;
    const char *nominated = NULL;
    preempt_result_t pr = {0};
    if (s->cache.n_nodes == 0) {
        msg = strdup("no nodes available to schedule pods");
    } else {
        int found = preempt_find(&s->prof, &s->cache, pi, o, res, &pr) == 0;
        msg = fit_error_message(s->cache.n_nodes, res->prefilter_msg, res->verdicts,
                                s->cache.n_nodes, found ? NULL : pr.message);
        if (found) {
            for (size_t i = 0; i < pr.n_victims; i++) evict(s, pr.victims[i], pi, pr.node->name);
            nominated_del(s, pi);
            pod_info_set_nominated(pi, pr.node->name);
            nominated_add(s, pi);
            nominated = pi->nominated;
            s->ctx->log(s->ctx, SKIFF_LOG_INFO, "preempting %zu pod(s) on %s for %s",
                        pr.n_victims, pr.node->name, pi->key);
        }
    }
    if (!msg) return;
    skiff_event_record(s->events, pi->obj, "Warning", "FailedScheduling", "%s", msg);
    if (!pi->last_message || strcmp(pi->last_message, msg) != 0 || nominated) {
        patch_status(s, pi, msg, nominated);
        free(pi->last_message);
        pi->last_message = msg;
    } else {
        free(msg);
    }
    preempt_result_free(&pr);
    if (!pi->unschedulable_since_ms || pi->q == Q_NONE) pi->unschedulable_since_ms = skiff_now_ms();
    pi->attempts++;
    int64_t b = s->backoff_initial_ms;
    for (int i = 1; i < pi->attempts && b < s->backoff_max_ms; i++) b *= 2;
    if (b > s->backoff_max_ms) b = s->backoff_max_ms;
    pi->backoff_until_ms = skiff_now_ms() + b;
    /* a preemptor waits for its victims to go, which is a cluster change */
    waiting_add(s, pi, Q_UNSCHEDULABLE);
}

/* ---- the scheduling loop ---------------------------------------------------------------- */

static void schedule_one(sched_t *s, pod_info_t *pi)
{
    cycle_opts_t o = {.percentage_of_nodes_to_score = s->pct,
                      .next_start = &s->next_start,
                      .rng = &s->rng,
                      .namespace_labels = namespace_labels,
                      .namespace_data = s,
                      .nominated = s->nominated};
    cycle_result_t res;
    cycle_run(&s->prof, &s->cache, pi, &o, &res);
    if (res.chosen) {
        node_info_t *ni = res.chosen;
        /* assume before the binding answers, so the next cycle counts it */
        pod_info_set_node(pi, ni->name);
        nominated_del(s, pi);
        pi->p.assumed = 1;
        node_add_pod(ni, pi);
        pi->q = Q_INFLIGHT;
        if (bind_pod(s, pi, ni) != 0) {
            node_remove_pod(pi);
            pi->p.assumed = 0;
            pod_info_set_node(pi, NULL);
            pi->q = Q_NONE;
            requeue_after_failure(s, pi);
        }
    } else {
        unschedulable(s, pi, &res, &o);
    }
    cycle_result_free(&res);
}

static void on_idle(uv_idle_t *h)
{
    sched_t *s = h->data;
    if (s->stopping) return;
    if (!skiff_informer_has_synced(s->pods_inf) || !skiff_informer_has_synced(s->nodes_inf)) {
        /* the tick looks again shortly; no busy loop while lists load */
        uv_idle_stop(&s->idle);
        s->idle_on = 0;
        return;
    }
    if (!s->synced_logged) {
        s->synced_logged = 1;
        s->ctx->log(s->ctx, SKIFF_LOG_INFO, "caches synced: %zu node(s), %zu pod(s) to schedule",
                    s->cache.n_nodes, s->n_heap);
    }
    uint64_t t0 = uv_hrtime();
    int n = 0;
    while (s->n_heap && s->binds_inflight < s->max_inflight) {
        schedule_one(s, pop_active(s));
        /* a slice of the loop, then let I/O run: long enough to empty the
         * queue of what arrived since the last turn, so that pods do not
         * pile up behind new creates (which wait instead) */
        if (++n % 16 == 0 && uv_hrtime() - t0 > s->slice_ns) break;
    }
    if (!s->n_heap || s->binds_inflight >= s->max_inflight) {
        uv_idle_stop(&s->idle);
        s->idle_on = 0;
    }
}

static void kick(sched_t *s)
{
    if (s->idle_on || s->stopping || !s->n_heap) return;
    if (s->binds_inflight >= s->max_inflight) return;
    uv_idle_start(&s->idle, on_idle);
    s->idle_on = 1;
}

static void on_tick_kick(uv_timer_t *t)
{
    on_tick(t);
}

/* ---- plugin hooks ----------------------------------------------------------------------- */

/* "plugin/Step" in the settings: a step another plugin lends through a
 * skiff_sched_step_table_t (skiff/scheduler.h), loaded by name if no one
 * loaded it yet. */
static const skiff_sched_step_t *resolve_step(void *data, const char *plugin, const char *step,
                                              char *err, size_t errlen)
{
    skiff_plugin_ctx_t *ctx = data;
    const skiff_plugin_t *d = skiff_plugin_find(ctx, plugin, err, errlen);
    if (!d) return NULL;
    const skiff_sched_step_table_t *t = d->vtable;
    if (d->kind != SKIFF_PLUGIN_SCHEDULER || !t) {
        snprintf(err, errlen, "plugin %s lends no scheduler steps (it is not a scheduler plugin "
                 "with a step table)", d->name);
        return NULL;
    }
    if (t->abi_version != SKIFF_SCHED_STEP_ABI) {
        snprintf(err, errlen, "plugin %s's step table is for step ABI %u, this scheduler speaks %u; "
                 "rebuild it against this SDK", d->name, (unsigned)t->abi_version,
                 (unsigned)SKIFF_SCHED_STEP_ABI);
        return NULL;
    }
    size_t used = 0;
    char known[256] = "";
    for (size_t i = 0; i < t->n_steps; i++) {
        if (t->steps[i].name && strcmp(t->steps[i].name, step) == 0) return &t->steps[i];
        if (used < sizeof known)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                     t->steps[i].name ? t->steps[i].name : "?");
    }
    snprintf(err, errlen, "plugin %s has no step %s (its steps: %s)", d->name, step,
             used ? known : "none");
    return NULL;
}

static void sched_free(sched_t *s)
{
    cache_free(&s->cache);
    free(s->heap);
    free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    sched_t *s = h->data;
    s->closing_handles--;
    maybe_free(s);
}

/* The informer of r the scheduler reads: the shared transformed one
 * (view id and fn), or, when the setting trim says "false", a plain one
 * keeping whole objects. */
static int view_informer(skiff_plugin_ctx_t *ctx, const char *trim, const skiff_resource_t *r,
                         const char *id, skiff_informer_transform_fn fn, skiff_informer_t **out)
{
    skiff_informer_opts_t all = {0};
    const char *v = ctx->setting(ctx, trim);
    if (v && strcmp(v, "false") == 0) return skiff_informer_factory_get(ctx->informers, r, &all, out);
    return skiff_informer_factory_get_transformed(ctx->informers, r, &all, id, fn, NULL, out);
}

static int sched_start(skiff_plugin_ctx_t *ctx)
{
    sched_t *s = calloc(1, sizeof *s);
    if (!s) return SKIFF_ENOMEM;
    s->ctx = ctx;
    char err[256] = "";
    if (profile_parse_with(&s->prof, ctx->setting(ctx, "filters"), ctx->setting(ctx, "scores"),
                           ctx->setting(ctx, "scoring-strategy"), resolve_step, ctx, err,
                           sizeof err) != 0) {
        ctx->log(ctx, SKIFF_LOG_ERROR, "%s", err[0] ? err : "out of memory");
        free(s);
        return SKIFF_EINVAL;
    }
    s->pct = setting_int(ctx, "percentage-of-nodes-to-score", 0);
    s->max_inflight = setting_int(ctx, "max-inflight-bindings", 2000);
    if (s->max_inflight < 1) s->max_inflight = 1;
    int64_t slice_ms = parse_duration_ms(ctx->setting(ctx, "scheduling-slice"), 25);
    s->slice_ns = (uint64_t)(slice_ms > 0 ? slice_ms : 1) * 1000000u;
    s->backoff_initial_ms = parse_duration_ms(ctx->setting(ctx, "pod-initial-backoff"), 1000);
    s->backoff_max_ms = parse_duration_ms(ctx->setting(ctx, "pod-max-backoff"), 10000);
    s->max_unschedulable_ms = parse_duration_ms(ctx->setting(ctx, "max-unschedulable-duration"), 300000);
    const char *ev = ctx->setting(ctx, "scheduled-events");
    s->scheduled_events = !ev || strcmp(ev, "false") != 0;
    s->rng = (uint64_t)skiff_now_ms() * 2654435761u + 1;
    cache_init(&s->cache);
    s->events = skiff_event_recorder_new(ctx->client, SCHEDULER_NAME);
    /* kube-scheduler's Events are not combined or budgeted: a pod long
     * Pending still shows its Scheduled Event */
    skiff_event_recorder_uncorrelated(s->events);
    /* bound pods are cached reduced, in the pods view the controllers
     * share (skiff_pod_view): a 50,000-pod cluster would otherwise keep a
     * full tree per pod, and a second informer beside theirs; nodes too,
     * in the nodes view (skiff_node_view): of a Node it keeps what steps
     * read (labels, annotations, spec, capacity, allocatable, images);
     * whole, 5,000 nodes cost 87 MB */
    int rc = view_informer(ctx, "trim-bound-pods", &pods_res, SKIFF_POD_VIEW_ID, skiff_pod_view,
                           &s->pods_inf);
    int rn = view_informer(ctx, "trim-nodes", &nodes_res, SKIFF_NODE_VIEW_ID, skiff_node_view,
                           &s->nodes_inf);
    skiff_informer_opts_t all = {0};
    if (rc != 0 || rn != 0 ||
        skiff_informer_factory_get(ctx->informers, &ns_res, &all, &s->ns_inf) != 0) {
        skiff_event_recorder_free(s->events);
        free(s);
        return SKIFF_ENOMEM;
    }
    uv_idle_init(ctx->loop, &s->idle);
    uv_timer_init(ctx->loop, &s->tick);
    s->idle.data = s->tick.data = s;
    ctx->plugin_data = s;
    skiff_informer_handler_t nh = {on_node_add, on_node_update, on_node_delete, s};
    skiff_informer_handler_t ph = {on_pod_add, on_pod_update, on_pod_delete, s};
    /* nodes first, so pods already bound find their node */
    s->nodes_h = skiff_informer_add_handler(s->nodes_inf, &nh);
    s->pods_h = skiff_informer_add_handler(s->pods_inf, &ph);
    skiff_informer_factory_start(ctx->informers);
    uv_timer_start(&s->tick, on_tick_kick, 100, 200);
    ctx->log(ctx, SKIFF_LOG_INFO, "scheduling with %zu filter(s) and %zu score(s)",
             s->prof.n_filters, s->prof.n_scores);
    return 0;
}

static void sched_stop(skiff_plugin_ctx_t *ctx)
{
    sched_t *s = ctx->plugin_data;
    if (!s) return;
    ctx->plugin_data = NULL;
    s->stopping = 1;
    skiff_informer_remove_handler(s->pods_inf, s->pods_h);
    skiff_informer_remove_handler(s->nodes_inf, s->nodes_h);
    skiff_event_recorder_free(s->events);
    s->events = NULL;
    s->closing_handles = 2;
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
    uv_close((uv_handle_t *)&s->tick, on_handle_closed);
    ctx->log(ctx, SKIFF_LOG_INFO, "stopped: %llu pod(s) bound, %llu binding(s) failed",
             (unsigned long long)s->n_bound, (unsigned long long)s->n_failed);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "scheduler-default",
    .version = "1.0",
    .kind = SKIFF_PLUGIN_SCHEDULER,
    .description = "kube-scheduler's filters, scores, priority queue and preemption; binds "
                   "pods through pods/binding",
    .settings = settings,
    .start = sched_start,
    .stop = sched_stop,
};
