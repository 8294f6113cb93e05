/* plugins/controllers/daemonset/daemonset.c - the DaemonSet controller
 * (plugin controller-daemonset): one pod per eligible node, created with a
 * required node affinity on the node's name so the scheduler binds it
 * there; pods removed from nodes that stop qualifying or disappear;
 * RollingUpdate (maxUnavailable, maxSurge) and OnDelete updates;
 * ControllerRevisions for `kubectl rollout history/undo`; the status
 * `kubectl get/rollout status` read; Events as daemonset-controller.
 *
 * One reconcile reads the caches, decides every write, sends them at once
 * and finishes when all have answered; the next reconcile of that
 * DaemonSet waits until the caches show those writes (workload.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>

#include "../common/workload.h"
#include "placement.h"

#define COMPONENT "daemonset-controller"
enum { SEC_PODS = 0, SEC_REVISIONS = 1, SEC_NODES = 2, N_SEC = 3 };

typedef struct ds_state {
    skiff_plugin_ctx_t *ctx;
    skiff_controller_desc_t desc;
    skiff_controller_watch_t watches[N_SEC];
    skiff_controller_t *ctl;
    skiff_event_recorder_t *events;
    wl_barriers_t *barriers;
    skiff_informer_t *node_inf;
    int node_hid;
    int refs; /* the running controller + reconciles in flight */
} ds_state_t;

/* One reconcile in flight. */
typedef struct ds_run {
    skiff_reconcile_t *r;
    ds_state_t *st;
    json_t *ds;        /* a shallow copy with kind/apiVersion, for Events */
    int64_t requeue_ms; /* > 0: look again after this long */
} ds_run_t;

static void state_unref(ds_state_t *st)
{
    if (--st->refs > 0) return;
    skiff_event_recorder_free(st->events);
    wl_barriers_free(st->barriers);
    free(st);
}

static void run_finish(ds_run_t *run, wl_batch_t *b)
{
    skiff_reconcile_result_t res = {SKIFF_RECONCILE_DONE, 0, 0};
    if (b) {
        wl_barriers_note(run->st->barriers, run->r->key, b);
        if (b->failures) res = (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_EIO};
    }
    if (res.outcome == SKIFF_RECONCILE_DONE && run->requeue_ms > 0)
        res = (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, run->requeue_ms, 0};
    skiff_reconcile_done(run->r, res);
    ds_state_t *st = run->st;
    json_decref(run->ds);
    free(run);
    state_unref(st);
}

static void on_batch_done(wl_batch_t *b)
{
    ds_run_t *run = b->data;
    run_finish(run, b);
    wl_batch_free(b);
}

/* ---- write callbacks: Events as Kubernetes' controllers word them --------------- */

typedef struct item {
    ds_run_t *run;
    char name[256];
    char node[256];
} item_t;

static item_t *item_new(ds_run_t *run, const char *name, const char *node)
{
    item_t *it = calloc(1, sizeof *it);
    if (!it) return NULL;
    it->run = run;
    snprintf(it->name, sizeof it->name, "%s", name ? name : "");
    snprintf(it->node, sizeof it->node, "%s", node ? node : "");
    return it;
}

static void on_pod_created(wl_batch_t *b, void *data, int status, json_t *obj)
{
    item_t *it = data;
    if (status == 201 || status == 200)
        skiff_event_record(it->run->st->events, it->run->ds, "Normal", "SuccessfulCreate",
                           "Created pod: %s", wl_str(obj, "metadata", "name"));
    else
        skiff_event_record(it->run->st->events, it->run->ds, "Warning", "FailedCreate",
                           "Error creating: %s", skiff_answer_message(obj));
}

static void on_pod_deleted(wl_batch_t *b, void *data, int status, json_t *obj)
{
    item_t *it = data;
    if (status == 200 || status == 202)
        skiff_event_record(it->run->st->events, it->run->ds, "Normal", "SuccessfulDelete",
                           "Deleted pod: %s", it->name);
    else if (status != 404)
        skiff_event_record(it->run->st->events, it->run->ds, "Warning", "FailedDelete",
                           "Error deleting: %s", skiff_answer_message(obj));
}

/* ---- pods ---------------------------------------------------------------------------- */

/* The pod this DaemonSet runs on node: the template with the daemon
 * tolerations, the revision's labels and the node affinity. */
static json_t *new_pod(const json_t *ds, const char *hash, const char *node)
{
    const json_t *tmpl = wl_get(ds, "spec", "template");
    json_t *meta = skiff_json_copy(json_object_get(tmpl, "metadata"));
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    json_t *labels = json_object_get(meta, "labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(meta, "labels", labels);
    }
    json_object_set_new(labels, "controller-revision-hash", json_string(hash));
    const char *gen = json_string_value(json_object_get(
        wl_get(ds, "metadata", "annotations"), "deprecated.daemonset.template.generation"));
    /* the API server keeps this annotation in Kubernetes; without it the
     * label would only mislead */
    if (gen) json_object_set_new(labels, "pod-template-generation", json_string(gen));
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%.200s-", wl_str(ds, "metadata", "name"));
    json_object_del(meta, "name");
    json_object_set_new(meta, "generateName", json_string(prefix));
    json_object_set_new(meta, "namespace", json_string(wl_str(ds, "metadata", "namespace")));
    json_object_set_new(meta, "ownerReferences",
                        json_pack("[o]", wl_controller_ref(ds, "apps/v1", "DaemonSet")));
    json_t *spec = skiff_json_copy(json_object_get(tmpl, "spec"));
    if (!json_is_object(spec)) {
        json_decref(spec);
        spec = json_object();
    }
    ds_add_daemon_tolerations(spec);
    ds_set_node_affinity(spec, node);
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", meta,
                     "spec", spec);
}

static int64_t created_ms(const json_t *pod)
{
    return skiff_time_parse(wl_str(pod, "metadata", "creationTimestamp"));
}

/* Oldest first; among equals a running pod before a pending one. */
static int cmp_pod_age(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int64_t ta = created_ms(a), tb = created_ms(b);
    if (ta != tb) return ta < tb ? -1 : 1;
    const char *na = wl_str(a, "metadata", "name"), *nb = wl_str(b, "metadata", "name");
    return strcmp(na ? na : "", nb ? nb : "");
}

static json_t *sorted_by_age(json_t *pods)
{
    size_t n = json_array_size(pods);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    json_t *out = json_array();
    if (!v) return out;
    for (size_t i = 0; i < n; i++) v[i] = json_array_get(pods, i);
    qsort(v, n, sizeof *v, cmp_pod_age);
    for (size_t i = 0; i < n; i++) json_array_append(out, v[i]);
    free(v);
    return out;
}

static int pod_is_updated(const json_t *pod, const char *hash)
{
    const char *h = json_string_value(json_object_get(wl_get(pod, "metadata", "labels"),
                                                      "controller-revision-hash"));
    return h && strcmp(h, hash) == 0;
}

static const char *pod_phase(const json_t *pod) { return wl_str(pod, "status", "phase"); }

static int phase_is(const json_t *pod, const char *phase)
{
    const char *p = pod_phase(pod);
    return p && strcmp(p, phase) == 0;
}

/* ---- the sync ------------------------------------------------------------------------ */

typedef struct plan {
    json_t *create_on;  /* node names */
    json_t *delete;     /* pod name -> grace (integer, -1 default) */
    int desired, current, misscheduled, ready, available, updated;
    int waiting_available; /* ready but not yet available for minReadySeconds */
} plan_t;

static void plan_delete(plan_t *p, const json_t *pod, int64_t grace)
{
    const char *name = wl_str(pod, "metadata", "name");
    if (name && !wl_terminating(pod)) json_object_set_new(p->delete, name, json_integer(grace));
}

/* New and old pod on a node (terminating ones ignored); 0 when there is
 * more than one of either (findUpdatedPodsOnNode). */
static int updated_pods_on_node(json_t *pods, const char *hash, json_t **newp, json_t **oldp)
{
    *newp = *oldp = NULL;
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        if (wl_terminating(pod)) continue;
        json_t **slot = pod_is_updated(pod, hash) ? newp : oldp;
        if (*slot) return 0;
        *slot = pod;
    }
    return 1;
}

/* The part of RollingUpdate that replaces old pods (Kubernetes'
 * rollingUpdate). node_pods: node name -> {"pods": [...], "run": bool} for
 * every node that has pods or should run one. */
static void rolling_update(const json_t *ds, json_t *node_pods, const char *hash, int desired,
                           int64_t min_ready, int64_t now, plan_t *p)
{
    const json_t *ru = wl_get(wl_get(ds, "spec", "updateStrategy"), "rollingUpdate", NULL);
    int max_surge = wl_int_or_percent(json_object_get(ru, "maxSurge"), desired, 1, 0);
    int max_unavail = wl_int_or_percent(json_object_get(ru, "maxUnavailable"), desired, 1, 1);
    if (desired > 0 && max_surge == 0 && max_unavail == 0) max_unavail = 1;
    const char *node;
    json_t *e;
    if (max_surge == 0) {
        /* delete just enough old pods to stay within maxUnavailable; the
         * node's new pod follows on the next pass */
        int unavailable = 0;
        json_t *candidates = json_array();
        json_object_foreach(node_pods, node, e)
        {
            json_t *np, *op;
            if (!updated_pods_on_node(json_object_get(e, "pods"), hash, &np, &op)) {
                unavailable++;
                continue;
            }
            if ((!np && !op) || (np && op)) {
                /* the node's pods are being created or removed */
                unavailable++;
            } else if (np) {
                if (!skiff_pod_is_available(np, min_ready, now)) unavailable++;
            } else if (!skiff_pod_is_available(op, min_ready, now)) {
                plan_delete(p, op, -1); /* not serving anyway: replace now */
                unavailable++;
            } else if (unavailable < max_unavail) {
                json_array_append(candidates, op);
            }
        }
        int budget = max_unavail - unavailable;
        for (size_t i = 0; budget > 0 && i < json_array_size(candidates); i++, budget--)
            plan_delete(p, json_array_get(candidates, i), -1);
        json_decref(candidates);
        return;
    }
    /* surge: start the new pod first, remove the old one once the new is
     * available; pods on nodes that no longer qualify go only while enough
     * others are available */
    int surging = 0, available = 0;
    json_t *candidates = json_array(), *sunset = json_array();
    json_object_foreach(node_pods, node, e)
    {
        json_t *np, *op;
        int run = json_is_true(json_object_get(e, "run"));
        if (!updated_pods_on_node(json_object_get(e, "pods"), hash, &np, &op)) {
            surging++;
            continue;
        }
        if (op ? skiff_pod_is_available(op, min_ready, now)
               : np && skiff_pod_is_available(np, min_ready, now))
            available++;
        if (!op) continue;
        if (!np) {
            if (!skiff_pod_is_available(op, min_ready, now)) {
                if (!run) plan_delete(p, op, -1);
                else json_array_append_new(p->create_on, json_string(node));
            } else if (!run) {
                json_array_append(sunset, op);
            } else if (surging < max_surge) {
                json_array_append_new(candidates, json_string(node));
            }
        } else if (!skiff_pod_is_available(np, min_ready, now)) {
            surging++;
        } else {
            plan_delete(p, op, -1);
        }
    }
    int spare = available - desired;
    for (size_t i = 0; spare > 0 && i < json_array_size(sunset); i++, spare--)
        plan_delete(p, json_array_get(sunset, i), -1);
    int budget = max_surge - surging;
    for (size_t i = 0; budget > 0 && i < json_array_size(candidates); i++, budget--)
        json_array_append(p->create_on, json_array_get(candidates, i));
    json_decref(candidates);
    json_decref(sunset);
}

/* What one node needs (podsShouldBeOnNode), and its share of the status. */
static void plan_node(ds_run_t *run, const json_t *node, int should_run, int should_continue,
                      json_t *pods, const char *hash, int surge, int64_t min_ready, int64_t now,
                      plan_t *p)
{
    const char *name = wl_str(node, "metadata", "name");
    size_t n = json_array_size(pods);
    json_t *sorted = sorted_by_age(pods);
    if (should_run) {
        p->desired++;
        if (n) {
            p->current++;
            json_t *first = json_array_get(sorted, 0);
            if (skiff_pod_is_ready(first)) {
                p->ready++;
                if (skiff_pod_is_available(first, min_ready, now)) p->available++;
                else p->waiting_available++;
            }
            if (pod_is_updated(first, hash)) p->updated++;
        }
    } else if (n) {
        p->misscheduled++;
    }
    if (should_run && n == 0) {
        json_array_append_new(p->create_on, json_string(name));
    } else if (should_continue) {
        json_t *running = json_array();
        size_t i;
        json_t *pod;
        json_array_foreach(sorted, i, pod)
        {
            if (wl_terminating(pod)) continue;
            if (phase_is(pod, "Failed") || phase_is(pod, "Succeeded")) {
                if (phase_is(pod, "Failed"))
                    skiff_event_record(run->st->events, run->ds, "Warning", "FailedDaemonPod",
                                       "Found failed daemon pod %s/%s on node %s, will try to kill it",
                                       wl_str(pod, "metadata", "namespace"),
                                       wl_str(pod, "metadata", "name"), name);
                plan_delete(p, pod, -1);
            } else {
                json_array_append(running, pod);
            }
        }
        size_t nr = json_array_size(running);
        if (nr > 1 && !surge) {
            /* one pod a node: keep the oldest */
            for (i = 1; i < nr; i++) plan_delete(p, json_array_get(running, i), -1);
        } else if (nr > 1) {
            /* with surge, an old and a new pod may share a node while the
             * new one becomes available; the oldest of each is kept */
            json_t *oldest_new = NULL, *oldest_old = NULL;
            json_array_foreach(running, i, pod)
            {
                json_t **slot = pod_is_updated(pod, hash) ? &oldest_new : &oldest_old;
                if (!*slot) *slot = pod;
                else plan_delete(p, pod, -1);
            }
            if (oldest_new && oldest_old &&
                (!skiff_pod_is_ready(oldest_old) ||
                 skiff_pod_is_available(oldest_new, min_ready, now)))
                plan_delete(p, oldest_old, -1);
        }
        json_decref(running);
    } else if (n) {
        size_t i;
        json_t *pod;
        json_array_foreach(sorted, i, pod) plan_delete(p, pod, -1);
    }
    json_decref(sorted);
}

static int status_differs(const json_t *ds, const char *field, int64_t want)
{
    return wl_int(json_object_get(ds, "status"), field, NULL, -1) != want;
}

static void ds_sync(ds_run_t *run, const json_t *ds, const char *hash, json_t *revs,
                    json_t *cur_rev, wl_batch_t *b)
{
    skiff_controller_t *c = run->r->controller;
    const char *ns = wl_str(ds, "metadata", "namespace");
    const char *uid = wl_str(ds, "metadata", "uid");
    int64_t now = skiff_now_ms();
    int64_t min_ready = wl_int(json_object_get(ds, "spec"), "minReadySeconds", NULL, 0);
    const char *strategy = wl_str(wl_get(ds, "spec", "updateStrategy"), "type", NULL);
    int rolling = !strategy || strcmp(strategy, "OnDelete") != 0;
    const json_t *ru = wl_get(wl_get(ds, "spec", "updateStrategy"), "rollingUpdate", NULL);

    /* the spec every daemon pod gets, for the eligibility checks */
    json_t *spec = skiff_json_copy(wl_get(ds, "spec", "template") ?
                                      wl_get(wl_get(ds, "spec", "template"), "spec", NULL) : NULL);
    if (!json_is_object(spec)) {
        json_decref(spec);
        spec = json_object();
    }
    ds_add_daemon_tolerations(spec);

    json_t *nodes = skiff_informer_list(skiff_controller_secondary_informer(c, SEC_NODES));
    json_t *pods = wl_list_controlled(skiff_controller_secondary_informer(c, SEC_PODS), uid);
    json_t *by_node = json_object();
    size_t i;
    json_t *pod, *node;
    json_array_foreach(pods, i, pod)
    {
        const char *target = ds_target_node(pod);
        if (!target) continue;
        json_t *arr = json_object_get(by_node, target);
        if (!arr) {
            arr = json_array();
            json_object_set_new(by_node, target, arr);
        }
        json_array_append(arr, pod);
    }
    plan_t p = {.create_on = json_array(), .delete = json_object()};
    /* each node's eligibility, computed once: (should run) | (may continue) << 1 */
    size_t nn = json_array_size(nodes);
    unsigned char *elig = calloc(nn ? nn : 1, 1);
    if (!elig) {
        /* no memory: decide nothing now (a missing answer could delete pods) */
        b->failures++;
        json_decref(p.create_on);
        json_decref(p.delete);
        json_decref(by_node);
        json_decref(pods);
        json_decref(nodes);
        json_decref(spec);
        return;
    }
    int desired_total = 0;
    json_array_foreach(nodes, i, node)
    {
        int sr, sc;
        ds_node_should_run(spec, node, &sr, &sc);
        elig[i] = (unsigned char)(sr | sc << 1);
        desired_total += sr;
    }
    int surge = rolling && wl_int_or_percent(json_object_get(ru, "maxSurge"), desired_total, 1, 0) > 0;
    json_t *update_nodes = json_object(); /* see rolling_update */
    json_array_foreach(nodes, i, node)
    {
        const char *name = wl_str(node, "metadata", "name");
        json_t *on = json_object_get(by_node, name);
        json_t *empty = NULL;
        if (!on) on = empty = json_array();
        int sr = elig[i] & 1, sc = elig[i] >> 1;
        plan_node(run, node, sr, sc, on, hash, surge, min_ready, now, &p);
        if (sr || json_array_size(on))
            json_object_set_new(update_nodes, name, json_pack("{s:O, s:b}", "pods", on, "run", sr));
        json_decref(empty);
        json_object_del(by_node, name);
    }
    /* pods for nodes that are gone: unbound ones go at once; bound ones
     * have no kubelet left to stop them, so they go with grace 0 (what
     * Kubernetes' pod garbage collector does) */
    const char *gone;
    json_t *arr;
    json_object_foreach(by_node, gone, arr)
    {
        json_array_foreach(arr, i, pod)
        {
            const char *bound = wl_str(pod, "spec", "nodeName");
            const char *name = wl_str(pod, "metadata", "name");
            if (bound && *bound && name) json_object_set_new(p.delete, name, json_integer(0));
            else plan_delete(&p, pod, -1);
        }
    }
    if (rolling) rolling_update(ds, update_nodes, hash, p.desired, min_ready, now, &p);

    /* writes */
    json_array_foreach(p.create_on, i, node)
    {
        json_t *newpod = new_pod(ds, hash, json_string_value(node));
        wl_batch_create(b, WL_RES_PODS, &wl_pods, ns, newpod, on_pod_created,
                        item_new(run, NULL, json_string_value(node)));
        json_decref(newpod);
    }
    const char *pname;
    json_t *grace;
    json_object_foreach(p.delete, pname, grace)
    {
        wl_batch_delete(b, WL_RES_PODS, &wl_pods, ns, pname, json_integer_value(grace),
                        on_pod_deleted, item_new(run, pname, NULL));
    }

    /* history (cleanupHistory): beyond revisionHistoryLimit old revisions,
     * the oldest that no pod uses go */
    int64_t limit = wl_int(json_object_get(ds, "spec"), "revisionHistoryLimit", NULL, 10);
    json_t *live = json_object();
    json_array_foreach(pods, i, pod)
    {
        const char *h = json_string_value(json_object_get(wl_get(pod, "metadata", "labels"),
                                                          "controller-revision-hash"));
        if (h) json_object_set_new(live, h, json_true());
    }
    int64_t to_kill = (int64_t)json_array_size(revs) - 1 - limit;
    json_t *cr;
    json_array_foreach(revs, i, cr)
    {
        if (to_kill <= 0) break;
        const char *h = json_string_value(json_object_get(wl_get(cr, "metadata", "labels"),
                                                          "controller-revision-hash"));
        if (cr == cur_rev || (h && json_object_get(live, h))) continue;
        wl_batch_delete(b, WL_RES_REVISIONS, &wl_revisions, ns, wl_str(cr, "metadata", "name"), -1,
                        NULL, NULL);
        to_kill--;
    }

    /* status */
    int64_t gen = wl_int(json_object_get(ds, "metadata"), "generation", NULL, 1);
    if (status_differs(ds, "desiredNumberScheduled", p.desired) ||
        status_differs(ds, "currentNumberScheduled", p.current) ||
        status_differs(ds, "numberMisscheduled", p.misscheduled) ||
        status_differs(ds, "numberReady", p.ready) ||
        status_differs(ds, "numberAvailable", p.available) ||
        status_differs(ds, "numberUnavailable", p.desired - p.available) ||
        status_differs(ds, "updatedNumberScheduled", p.updated) ||
        status_differs(ds, "observedGeneration", gen)) {
        char patch[512];
        snprintf(patch, sizeof patch,
                 "{\"status\":{\"desiredNumberScheduled\":%d,\"currentNumberScheduled\":%d,"
                 "\"numberMisscheduled\":%d,\"numberReady\":%d,\"numberAvailable\":%d,"
                 "\"numberUnavailable\":%d,\"updatedNumberScheduled\":%d,"
                 "\"observedGeneration\":%lld}}",
                 p.desired, p.current, p.misscheduled, p.ready, p.available,
                 p.desired - p.available, p.updated, (long long)gen);
        static const skiff_resource_t ds_status = {"apps", "v1", "daemonsets", "status"};
        wl_batch_patch(b, WL_RES_OTHER, &ds_status, ns, wl_str(ds, "metadata", "name"),
                       SKIFF_PATCH_MERGE, patch, NULL, NULL);
    }
    if (min_ready > 0 && p.waiting_available) run->requeue_ms = min_ready * 1000 / 2 + 100;

    json_decref(live);
    json_decref(update_nodes);
    free(elig);
    json_decref(p.create_on);
    json_decref(p.delete);
    json_decref(by_node);
    json_decref(pods);
    json_decref(nodes);
    json_decref(spec);
}

static void ds_reconcile(skiff_reconcile_t *r)
{
    ds_state_t *st = r->data;
    skiff_controller_t *c = r->controller;
    json_t *cached = skiff_informer_get(skiff_controller_informer(c), r->key);
    if (!cached) {
        wl_barriers_forget(st->barriers, r->key);
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE, 0, 0});
        return;
    }
    skiff_informer_t *infs[WL_RES_N] = {
        skiff_controller_secondary_informer(c, SEC_PODS),
        skiff_controller_secondary_informer(c, SEC_REVISIONS), NULL, NULL};
    if (wl_str(cached, "metadata", "deletionTimestamp")) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE, 0, 0});
        return;
    }
    if (!wl_barriers_passed(st->barriers, r->key, infs)) {
        /* the caches have not caught up with our last writes yet */
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, 50, 0});
        return;
    }
    ds_run_t *run = calloc(1, sizeof *run);
    if (!run) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_ENOMEM});
        return;
    }
    run->r = r;
    run->st = st;
    st->refs++;
    run->ds = json_copy(cached);
    json_object_set_new(run->ds, "apiVersion", json_string("apps/v1"));
    json_object_set_new(run->ds, "kind", json_string("DaemonSet"));
    const json_t *ds = run->ds;

    const json_t *sel = wl_get(ds, "spec", "selector");
    if (!json_is_object(sel) || json_object_size(sel) == 0 ||
        (json_object_size(json_object_get(sel, "matchLabels")) == 0 &&
         json_array_size(json_object_get(sel, "matchExpressions")) == 0)) {
        skiff_event_record(st->events, ds, "Warning", "SelectingAll",
                           "This daemon set is selecting all pods. A non-empty selector is required.");
        run_finish(run, NULL);
        return;
    }
    wl_batch_t *b = wl_batch_new(st->ctx->client, on_batch_done, run);
    if (!b) {
        run_finish(run, NULL);
        return;
    }

    /* pods that match the selector but have no controller are adopted,
     * ours that stopped matching are released; the rest of the work waits
     * until the cache shows that */
    if (wl_claim_pods(b, infs[WL_RES_PODS], ds, "apps/v1", "DaemonSet", NULL, NULL) > 0) {
        wl_batch_seal(b);
        return;
    }

    /* the revision of the current template: found, renumbered or created */
    static const skiff_resource_t ds_status = {"apps", "v1", "daemonsets", "status"};
    json_t *tmpl = wl_get(ds, "spec", "template");
    json_t *data = wl_revision_data(tmpl);
    json_t *revs = wl_revisions_of(infs[WL_RES_REVISIONS], wl_str(ds, "metadata", "uid"));
    json_t *cur = wl_revision_ensure(b, ds, "DaemonSet", &ds_status, tmpl, data, revs);
    if (cur) {
        const char *hash = json_string_value(
            json_object_get(wl_get(cur, "metadata", "labels"), "controller-revision-hash"));
        ds_sync(run, ds, hash ? hash : "", revs, cur, b);
    }
    json_decref(revs);
    json_decref(data);
    wl_batch_seal(b);
}

/* ---- nodes: only changes that can change eligibility wake DaemonSets ----------- */

static int node_changed(const json_t *a, const json_t *b)
{
    if (!a || !b || a == b) return a != b;
    return !json_equal(wl_get(a, "metadata", "labels"), wl_get(b, "metadata", "labels")) ||
           !json_equal(wl_get(a, "spec", "taints"), wl_get(b, "spec", "taints")) ||
           !json_equal(wl_get(a, "spec", "unschedulable"), wl_get(b, "spec", "unschedulable"));
}

static void enqueue_all(ds_state_t *st)
{
    json_t *all = skiff_informer_list(skiff_controller_informer(st->ctl));
    size_t i;
    json_t *ds;
    json_array_foreach(all, i, ds)
    {
        char key[512];
        int n = skiff_object_key(key, sizeof key, ds);
        if (n > 0 && (size_t)n < sizeof key) skiff_controller_enqueue(st->ctl, key);
    }
    json_decref(all);
}

static void on_node_add(void *data, json_t *node) { enqueue_all(data); }
static void on_node_update(void *data, json_t *o, json_t *n)
{
    if (node_changed(o, n)) enqueue_all(data);
}
static void on_node_delete(void *data, json_t *node) { enqueue_all(data); }
static void map_nothing(void *data, skiff_controller_t *c, json_t *obj) {}

/* ---- plugin life cycle ------------------------------------------------------------- */

static void map_pod(void *data, skiff_controller_t *c, json_t *pod)
{
    wl_map_pod(c, pod, "DaemonSet");
}

static int ds_start(skiff_plugin_ctx_t *ctx)
{
    ds_state_t *st = calloc(1, sizeof *st);
    if (!st) return SKIFF_ENOMEM;
    st->ctx = ctx;
    st->refs = 1;
    st->events = skiff_event_recorder_new(ctx->client, COMPONENT);
    st->barriers = wl_barriers_new();
    st->watches[SEC_PODS] = (skiff_controller_watch_t){.resource = wl_pods, .map = map_pod};
    st->watches[SEC_REVISIONS] = (skiff_controller_watch_t){.resource = wl_revisions,
                                                            .by_owner = 1, .controller_only = 1};
    st->watches[SEC_NODES] = (skiff_controller_watch_t){.resource = wl_nodes, .map = map_nothing};
    st->desc = (skiff_controller_desc_t){
        .name = "daemonset",
        .primary = {"apps", "v1", "daemonsets", NULL},
        .primary_kind = "DaemonSet",
        .primary_api_version = "apps/v1",
        .secondary = st->watches,
        .n_secondary = N_SEC,
        .reconcile = ds_reconcile,
        .workers = 4,
        .data = st,
    };
    int e = st->events && st->barriers ? 0 : SKIFF_ENOMEM;
    skiff_controller_transform_t views[] = {skiff_pod_view_transform(SEC_PODS),
                                            skiff_node_view_transform(SEC_NODES)};
    if (!e)
        e = skiff_controller_new_transformed(ctx, ctx->informers, &st->desc, views, 2, &st->ctl);
    if (!e) {
        st->node_inf = skiff_controller_secondary_informer(st->ctl, SEC_NODES);
        skiff_informer_handler_t h = {on_node_add, on_node_update, on_node_delete, st};
        st->node_hid = skiff_informer_add_handler(st->node_inf, &h);
        if (st->node_hid < 0) e = st->node_hid;
    }
    if (!e) e = skiff_controller_start(st->ctl);
    if (e) {
        if (st->node_inf && st->node_hid > 0)
            skiff_informer_remove_handler(st->node_inf, st->node_hid);
        skiff_controller_free(st->ctl);
        state_unref(st);
        return e;
    }
    ctx->plugin_data = st;
    return 0;
}

static void ds_stop(skiff_plugin_ctx_t *ctx)
{
    ds_state_t *st = ctx->plugin_data;
    if (!st) return;
    ctx->plugin_data = NULL;
    if (st->node_inf && st->node_hid > 0) skiff_informer_remove_handler(st->node_inf, st->node_hid);
    skiff_controller_free(st->ctl);
    state_unref(st);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-daemonset",
    .version = "0.1.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "DaemonSet controller: one pod per eligible node, rolling updates, history",
    .start = ds_start,
    .stop = ds_stop,
};
