/* plugins/controllers/statefulset/statefulset.c - the StatefulSet
 * controller (plugin controller-statefulset): pods <set>-<ordinal> with a
 * stable hostname, subdomain and PersistentVolumeClaims from
 * volumeClaimTemplates; OrderedReady (one pod at a time, each after the
 * one before is Running and Ready; removal from the highest ordinal) or
 * Parallel management; RollingUpdate from the highest ordinal down to the
 * partition (maxUnavailable at a time) or OnDelete; ControllerRevisions
 * for currentRevision/updateRevision and `kubectl rollout`; the status
 * kubectl reads; Events as statefulset-controller.
 *
 * The steps follow Kubernetes' stateful_set_control: one reconcile makes
 * the writes its policy allows, claims before pods, and the next one
 * waits until the caches show them (workload.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>

#include "../common/workload.h"

#define COMPONENT "statefulset-controller"
enum { SEC_PODS = 0, SEC_REVISIONS = 1, SEC_CLAIMS = 2, N_SEC = 3 };

typedef struct sts_state {
    skiff_plugin_ctx_t *ctx;
    skiff_controller_desc_t desc;
    skiff_controller_watch_t watches[N_SEC];
    skiff_controller_t *ctl;
    skiff_event_recorder_t *events;
    wl_barriers_t *barriers;
    int refs; /* the running controller + reconciles in flight */
} sts_state_t;

/* One reconcile in flight. */
typedef struct sts_run {
    skiff_reconcile_t *r;
    sts_state_t *st;
    json_t *set;          /* shallow copy with kind/apiVersion, for Events */
    json_t *later;        /* writes for after the claims: [{op, ...}] */
    int failures;
    int64_t requeue_ms;
} sts_run_t;

static void state_unref(sts_state_t *st)
{
    if (--st->refs > 0) return;
    skiff_event_recorder_free(st->events);
    wl_barriers_free(st->barriers);
    free(st);
}

static const char *set_name(const sts_run_t *run) { return wl_str(run->set, "metadata", "name"); }
static const char *set_ns(const sts_run_t *run) { return wl_str(run->set, "metadata", "namespace"); }

static void run_finish(sts_run_t *run)
{
    skiff_reconcile_result_t res = {SKIFF_RECONCILE_DONE, 0, 0};
    if (run->failures) res = (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_EIO};
    else if (run->requeue_ms > 0)
        res = (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, run->requeue_ms, 0};
    skiff_reconcile_done(run->r, res);
    sts_state_t *st = run->st;
    json_decref(run->set);
    json_decref(run->later);
    free(run);
    state_unref(st);
}

/* ---- write callbacks: Events worded as Kubernetes' stateful_pod_control ---------- */

typedef struct item {
    sts_run_t *run;
    char name[520];
    char pod[320];
} item_t;

static item_t *item_new(sts_run_t *run, const char *name, const char *pod)
{
    item_t *it = calloc(1, sizeof *it);
    if (!it) return NULL;
    it->run = run;
    snprintf(it->name, sizeof it->name, "%s", name ? name : "");
    snprintf(it->pod, sizeof it->pod, "%s", pod ? pod : "");
    return it;
}

static void on_claim_created(wl_batch_t *b, void *data, int status, json_t *obj)
{
    item_t *it = data;
    sts_run_t *run = it->run;
    if (status == 201 || status == 200)
        skiff_event_record(run->st->events, run->set, "Normal", "SuccessfulCreate",
                           "create Claim %s Pod %s in StatefulSet %s success", it->name, it->pod,
                           set_name(run));
    else if (status != 409)
        skiff_event_record(run->st->events, run->set, "Warning", "FailedCreate",
                           "create Claim %s for Pod %s in StatefulSet %s failed error: %s",
                           it->name, it->pod, set_name(run), skiff_answer_message(obj));
}

static void on_pod_written(wl_batch_t *b, void *data, int status, json_t *obj, const char *verb)
{
    item_t *it = data;
    sts_run_t *run = it->run;
    int ok = status >= 200 && status < 300;
    const char *reason = ok ? (strcmp(verb, "create") == 0   ? "SuccessfulCreate"
                               : strcmp(verb, "delete") == 0 ? "SuccessfulDelete"
                                                             : "SuccessfulUpdate")
                            : (strcmp(verb, "create") == 0   ? "FailedCreate"
                               : strcmp(verb, "delete") == 0 ? "FailedDelete"
                                                             : "FailedUpdate");
    if (!ok && strcmp(verb, "delete") == 0 && status == 404) return;
    if (ok)
        skiff_event_record(run->st->events, run->set, "Normal", reason,
                           "%s Pod %s in StatefulSet %s successful", verb, it->name,
                           set_name(run));
    else
        skiff_event_record(run->st->events, run->set, "Warning", reason,
                           "%s Pod %s in StatefulSet %s failed error: %s", verb, it->name,
                           set_name(run), skiff_answer_message(obj));
}

static void on_pod_created(wl_batch_t *b, void *d, int s, json_t *o) { on_pod_written(b, d, s, o, "create"); }
static void on_pod_deleted(wl_batch_t *b, void *d, int s, json_t *o) { on_pod_written(b, d, s, o, "delete"); }
static void on_pod_updated(wl_batch_t *b, void *d, int s, json_t *o) { on_pod_written(b, d, s, o, "update"); }

/* ---- pods and claims ---------------------------------------------------------------- */

/* The ordinal of a pod of this set ("web-3" -> 3), or -1. */
static long pod_ordinal(const json_t *pod, const char *set)
{
    const char *name = wl_str(pod, "metadata", "name");
    size_t sl = strlen(set);
    if (!name || strncmp(name, set, sl) != 0 || name[sl] != '-') return -1;
    const char *d = name + sl + 1;
    if (!*d) return -1;
    for (const char *p = d; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    if (d[0] == '0' && d[1]) return -1;
    return strtol(d, NULL, 10);
}

static const char *pod_revision(const json_t *pod)
{
    return json_string_value(
        json_object_get(wl_get(pod, "metadata", "labels"), "controller-revision-hash"));
}

static int phase_is(const json_t *pod, const char *phase)
{
    const char *p = wl_str(pod, "status", "phase");
    return p && strcmp(p, phase) == 0;
}

static int running_and_ready(const json_t *pod)
{
    return phase_is(pod, "Running") && skiff_pod_is_ready(pod);
}

static int healthy(const json_t *pod) { return running_and_ready(pod) && !wl_terminating(pod); }

static const char *policy(const json_t *set, const char *when)
{
    const char *v = wl_str(wl_get(set, "spec", "persistentVolumeClaimRetentionPolicy"), when, NULL);
    return v ? v : "Retain";
}

static void claim_name(char *buf, size_t len, const json_t *tmpl, const char *set, long ord)
{
    snprintf(buf, len, "%s-%s-%ld", wl_str(tmpl, "metadata", "name"), set, ord);
}

/* The pod of ordinal ord from template tmpl at revision rev. */
static json_t *new_pod(const json_t *set, const json_t *tmpl, const char *rev, long ord)
{
    const char *sname = wl_str(set, "metadata", "name");
    char name[300], idx[32];
    snprintf(name, sizeof name, "%s-%ld", sname, ord);
    snprintf(idx, sizeof idx, "%ld", ord);
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
    json_object_set_new(labels, "statefulset.kubernetes.io/pod-name", json_string(name));
    json_object_set_new(labels, "apps.kubernetes.io/pod-index", json_string(idx));
    json_object_set_new(labels, "controller-revision-hash", json_string(rev));
    json_object_del(meta, "generateName");
    json_object_set_new(meta, "name", json_string(name));
    json_object_set_new(meta, "namespace", json_string(wl_str(set, "metadata", "namespace")));
    json_object_set_new(meta, "ownerReferences",
                        json_pack("[o]", wl_controller_ref(set, "apps/v1", "StatefulSet")));
    json_t *spec = skiff_json_copy(json_object_get(tmpl, "spec"));
    if (!json_is_object(spec)) {
        json_decref(spec);
        spec = json_object();
    }
    json_object_set_new(spec, "hostname", json_string(name));
    const char *svc = wl_str(set, "spec", "serviceName");
    if (svc && *svc) json_object_set_new(spec, "subdomain", json_string(svc));
    /* a volume per claim template, replacing a template volume of that name */
    json_t *vols = json_array();
    const json_t *claims = wl_get(set, "spec", "volumeClaimTemplates");
    size_t i;
    json_t *ct, *v;
    json_array_foreach(claims, i, ct)
    {
        char cn[512];
        claim_name(cn, sizeof cn, ct, sname, ord);
        json_array_append_new(vols, json_pack("{s:s?, s:{s:s}}", "name",
                                              wl_str(ct, "metadata", "name"),
                                              "persistentVolumeClaim", "claimName", cn));
    }
    json_array_foreach(json_object_get(spec, "volumes"), i, v)
    {
        const char *vn = wl_str(v, "name", NULL);
        int replaced = 0;
        size_t j;
        json_array_foreach(claims, j, ct)
            if (vn && wl_str(ct, "metadata", "name") &&
                strcmp(vn, wl_str(ct, "metadata", "name")) == 0)
                replaced = 1;
        if (!replaced) json_array_append(vols, v);
    }
    if (json_array_size(vols)) json_object_set_new(spec, "volumes", vols);
    else json_decref(vols);
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", meta,
                     "spec", spec);
}

/* The ownerReferences a claim should have under the retention policy
 * (Kubernetes' updateClaimOwnerRefForSetAndPod): refs to the set and the
 * pod scrubbed, then the set's (whenDeleted: Delete, pod in range) or
 * the pod's (whenScaled: Delete, pod scaled away) added as controller.
 * pod may be NULL (not created yet). New array. */
static json_t *claim_refs(const json_t *set, const json_t *claim, const json_t *pod, int in_range)
{
    json_t *refs = json_array();
    const char *set_uid = wl_str(set, "metadata", "uid");
    const char *pod_uid = pod ? wl_str(pod, "metadata", "uid") : NULL;
    size_t i;
    json_t *r;
    json_array_foreach(wl_get(claim, "metadata", "ownerReferences"), i, r)
    {
        const char *kind = wl_str(r, "kind", NULL), *uid = wl_str(r, "uid", NULL);
        if (kind && strcmp(kind, "StatefulSet") == 0 && uid && set_uid && !strcmp(uid, set_uid))
            continue;
        if (kind && strcmp(kind, "Pod") == 0 && uid && pod_uid && !strcmp(uid, pod_uid)) continue;
        json_array_append(refs, r);
    }
    int del_deleted = strcmp(policy(set, "whenDeleted"), "Delete") == 0;
    int del_scaled = strcmp(policy(set, "whenScaled"), "Delete") == 0;
    if (!in_range && del_scaled && pod && pod_uid)
        json_array_append_new(refs, wl_controller_ref(pod, "v1", "Pod"));
    if (in_range && del_deleted)
        json_array_append_new(refs, wl_controller_ref(set, "apps/v1", "StatefulSet"));
    return refs;
}

/* Claims of ordinal ord that are missing get created (batch b); existing
 * ones whose owners do not follow the retention policy are patched. */
static void sync_claims(sts_run_t *run, wl_batch_t *b, skiff_informer_t *claims_inf, long ord,
                        const json_t *pod, int in_range)
{
    const json_t *set = run->set;
    const char *sname = set_name(run), *ns = set_ns(run);
    char pod_name[300];
    snprintf(pod_name, sizeof pod_name, "%s-%ld", sname, ord);
    size_t i;
    json_t *ct;
    json_array_foreach(wl_get(set, "spec", "volumeClaimTemplates"), i, ct)
    {
        char cn[512], key[1024];
        claim_name(cn, sizeof cn, ct, sname, ord);
        snprintf(key, sizeof key, "%s/%s", ns, cn);
        json_t *have = skiff_informer_get(claims_inf, key);
        if (!have) {
            if (!in_range) continue;
            json_t *claim = skiff_json_copy(ct);
            json_t *meta = json_object_get(claim, "metadata");
            if (!json_is_object(meta)) {
                meta = json_object();
                json_object_set_new(claim, "metadata", meta);
            }
            json_object_set_new(meta, "name", json_string(cn));
            json_object_set_new(meta, "namespace", json_string(ns));
            json_t *labels = json_object_get(meta, "labels");
            if (!json_is_object(labels)) {
                labels = json_object();
                json_object_set_new(meta, "labels", labels);
            }
            json_object_update(labels, wl_get(wl_get(set, "spec", "selector"), "matchLabels", NULL));
            json_t *refs = claim_refs(set, claim, pod, 1);
            if (json_array_size(refs)) json_object_set(meta, "ownerReferences", refs);
            json_decref(refs);
            json_object_set_new(claim, "apiVersion", json_string("v1"));
            json_object_set_new(claim, "kind", json_string("PersistentVolumeClaim"));
            json_object_del(claim, "status");
            wl_batch_ensure(b, WL_RES_CLAIMS, &wl_claims, ns, claim, on_claim_created,
                            item_new(run, cn, pod_name));
            json_decref(claim);
            continue;
        }
        if (!pod || wl_terminating(have)) continue;
        json_t *refs = claim_refs(set, have, pod, in_range);
        json_t *cur = wl_get(have, "metadata", "ownerReferences");
        json_t *empty = json_array();
        if (!json_equal(refs, cur ? cur : empty)) {
            json_t *patch = json_pack("{s:{s:O}}", "metadata", "ownerReferences", refs);
            char *text = json_dumps(patch, JSON_COMPACT);
            if (text)
                wl_batch_patch(b, WL_RES_CLAIMS, &wl_claims, ns, cn, SKIFF_PATCH_MERGE, text, NULL,
                               NULL);
            free(text);
            json_decref(patch);
        }
        json_decref(empty);
        json_decref(refs);
    }
}

/* ---- the sync ------------------------------------------------------------------------ */

/* A pod write deferred until the claims are written: {"op":"create","obj":..} etc. */
static void later(sts_run_t *run, const char *op, json_t *obj, const char *name)
{
    json_t *w = json_pack("{s:s}", "op", op);
    if (obj) json_object_set(w, "obj", obj);
    if (name) json_object_set_new(w, "name", json_string(name));
    json_array_append_new(run->later, w);
}

typedef struct counts {
    int replicas, ready, available, current, updated;
} counts_t;

static void count_pod(counts_t *c, const json_t *pod, int64_t min_ready, int64_t now,
                      const char *cur_rev, const char *upd_rev)
{
    const char *phase = wl_str(pod, "status", "phase");
    int created = phase && *phase;
    if (created) c->replicas++;
    if (running_and_ready(pod)) {
        c->ready++;
        if (skiff_pod_is_available(pod, min_ready, now)) c->available++;
    }
    if (created && !wl_terminating(pod)) {
        const char *rev = pod_revision(pod);
        if (rev && cur_rev && strcmp(rev, cur_rev) == 0) c->current++;
        if (rev && upd_rev && strcmp(rev, upd_rev) == 0) c->updated++;
    }
}

static int int_differs(const json_t *status, const char *field, int64_t want)
{
    return wl_int(status, field, NULL, -1) != want;
}

static int str_differs(const json_t *status, const char *field, const char *want)
{
    const char *have = wl_str(status, field, NULL);
    return !have || strcmp(have, want) != 0;
}

static void sts_sync(sts_run_t *run, wl_batch_t *b, json_t *revs, json_t *cur_rev,
                     json_t *upd_rev)
{
    skiff_controller_t *c = run->r->controller;
    const json_t *set = run->set;
    const char *sname = set_name(run), *ns = set_ns(run);
    const json_t *spec = json_object_get(set, "spec");
    int64_t replicas = wl_int(spec, "replicas", NULL, 1);
    int64_t start = wl_int(json_object_get(spec, "ordinals"), "start", NULL, 0);
    int64_t min_ready = wl_int(spec, "minReadySeconds", NULL, 0);
    int64_t now = skiff_now_ms();
    const char *pmp = wl_str(spec, "podManagementPolicy", NULL);
    int monotonic = !(pmp && strcmp(pmp, "Parallel") == 0);
    const char *strategy = wl_str(json_object_get(spec, "updateStrategy"), "type", NULL);
    int rolling = !strategy || strcmp(strategy, "OnDelete") != 0;
    const json_t *ru = wl_get(json_object_get(spec, "updateStrategy"), "rollingUpdate", NULL);
    const char *cur_name = wl_str(cur_rev, "metadata", "name");
    const char *upd_name = wl_str(upd_rev, "metadata", "name");
    json_t *cur_tmpl = wl_revision_template(cur_rev);
    const json_t *upd_tmpl = json_object_get(spec, "template");
    skiff_informer_t *claims_inf = skiff_controller_secondary_informer(c, SEC_CLAIMS);
    if (replicas < 0) replicas = 0;

    json_t *pods = wl_list_controlled(skiff_controller_secondary_informer(c, SEC_PODS),
                                      wl_str(set, "metadata", "uid"));
    json_t **slot = calloc((size_t)replicas + 1, sizeof *slot);
    json_t *condemned = json_array();
    counts_t cnt = {0};
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        long ord = pod_ordinal(pod, sname);
        if (ord < 0) continue;
        count_pod(&cnt, pod, min_ready, now, cur_name, upd_name);
        if (ord >= start && ord < start + replicas) slot[ord - start] = pod;
        else json_array_append(condemned, pod);
    }
    /* highest ordinal first */
    wl_sort_by_name(condemned);
    size_t nc = json_array_size(condemned);
    /* the first unhealthy pod: among the replicas by ordinal, then among
     * the condemned from the lowest */
    const json_t *first_unhealthy = NULL;
    int missing_first = 0;
    for (int64_t k = 0; k < replicas && !first_unhealthy && !missing_first; k++) {
        if (!slot[k]) missing_first = 1;
        else if (!healthy(slot[k])) first_unhealthy = slot[k];
    }
    for (size_t k = 0; k < nc && !first_unhealthy && !missing_first; k++)
        if (!healthy(json_array_get(condemned, k))) first_unhealthy = json_array_get(condemned, k);

    int stop = 0;
    /* the replicas, lowest ordinal first */
    for (int64_t k = 0; k < replicas && !stop; k++) {
        long ord = (long)(start + k);
        json_t *p = slot[k];
        if (!p) {
            /* below the partition a new pod gets the current revision
             * (newVersionedStatefulSetPod) */
            int at_current =
                ru ? ord < start + wl_int(ru, "partition", NULL, 0)
                   : rolling && ord < start + wl_int(json_object_get(set, "status"),
                                                     "currentReplicas", NULL, 0);
            if (!cur_tmpl) at_current = 0;
            const json_t *tmpl = at_current ? cur_tmpl : upd_tmpl;
            sync_claims(run, b, claims_inf, ord, NULL, 1);
            json_t *np = new_pod(set, tmpl, at_current ? cur_name : upd_name, ord);
            later(run, "create", np, wl_str(np, "metadata", "name"));
            json_decref(np);
            if (monotonic) stop = 1;
            continue;
        }
        const char *pname = wl_str(p, "metadata", "name");
        if (phase_is(p, "Failed") || phase_is(p, "Succeeded")) {
            /* a pod that ended is replaced under the same name */
            if (!wl_terminating(p)) later(run, "delete", NULL, pname);
            if (monotonic) stop = 1;
            continue;
        }
        sync_claims(run, b, claims_inf, ord, p, 1);
        if (monotonic && wl_terminating(p)) { stop = 1; break; }
        if (monotonic && !running_and_ready(p)) { stop = 1; break; }
        if (monotonic && !skiff_pod_is_available(p, min_ready, now)) {
            run->requeue_ms = min_ready * 1000 / 2 + 100;
            stop = 1;
            break;
        }
        /* identity: the labels a pod of this set must carry */
        json_t *labels = wl_get(p, "metadata", "labels");
        char idx[32];
        snprintf(idx, sizeof idx, "%ld", ord);
        const char *pn = json_string_value(json_object_get(labels, "statefulset.kubernetes.io/pod-name"));
        const char *pi = json_string_value(json_object_get(labels, "apps.kubernetes.io/pod-index"));
        if (!wl_terminating(p) && (!pn || strcmp(pn, pname) || !pi || strcmp(pi, idx))) {
            json_t *patch = json_pack("{s:{s:{s:s, s:s}}}", "metadata", "labels",
                                      "statefulset.kubernetes.io/pod-name", pname,
                                      "apps.kubernetes.io/pod-index", idx);
            later(run, "label", patch, pname);
            json_decref(patch);
        }
    }
    /* claims of pods scaled away follow whenScaled */
    for (size_t k = 0; k < nc && !stop; k++) {
        json_t *p = json_array_get(condemned, k);
        sync_claims(run, b, claims_inf, pod_ordinal(p, sname), p, 0);
    }
    /* scale down, highest ordinal first */
    for (size_t k = nc; k-- > 0 && !stop;) {
        json_t *p = json_array_get(condemned, k);
        if (wl_terminating(p)) {
            if (monotonic) stop = 1;
            continue;
        }
        if (monotonic && p != first_unhealthy &&
            (!running_and_ready(p) || !skiff_pod_is_available(p, min_ready, now))) {
            stop = 1;
            break;
        }
        later(run, "delete", NULL, wl_str(p, "metadata", "name"));
        if (monotonic) stop = 1;
    }
    /* rolling update: from the highest ordinal down to the partition */
    if (!stop && rolling) {
        int64_t partition = wl_int(ru, "partition", NULL, 0);
        json_t *mu = json_object_get(ru, "maxUnavailable");
        if (!mu) {
            for (int64_t k = replicas - 1; k >= partition && k >= 0; k--) {
                json_t *p = slot[k];
                if (!p) break;
                const char *rev = pod_revision(p);
                if ((!rev || strcmp(rev, upd_name) != 0) && !wl_terminating(p)) {
                    later(run, "delete", NULL, wl_str(p, "metadata", "name"));
                    break;
                }
                if (!healthy(p)) break;
            }
        } else {
            int max_unavail = wl_int_or_percent(mu, (int)replicas, 0, 1);
            if (max_unavail < 1) max_unavail = 1;
            int unavailable = 0;
            for (int64_t k = 0; k < replicas; k++)
                if (!slot[k] || !healthy(slot[k])) unavailable++;
            int budget = max_unavail - unavailable;
            for (int64_t k = replicas - 1; k >= partition && k >= 0 && budget > 0; k--) {
                json_t *p = slot[k];
                if (!p) continue;
                const char *rev = pod_revision(p);
                if ((!rev || strcmp(rev, upd_name) != 0) && !wl_terminating(p)) {
                    later(run, "delete", NULL, wl_str(p, "metadata", "name"));
                    budget--;
                }
            }
        }
    }

    /* history: keep revisionHistoryLimit revisions beyond the live ones */
    int64_t limit = wl_int(spec, "revisionHistoryLimit", NULL, 10);
    json_t *live = json_object();
    json_object_set_new(live, cur_name, json_true());
    json_object_set_new(live, upd_name, json_true());
    json_array_foreach(pods, i, pod)
        if (pod_revision(pod)) json_object_set_new(live, pod_revision(pod), json_true());
    int64_t old = 0;
    json_t *cr;
    json_array_foreach(revs, i, cr)
        if (!json_object_get(live, wl_str(cr, "metadata", "name"))) old++;
    json_array_foreach(revs, i, cr)
    {
        if (old <= limit) break;
        const char *n = wl_str(cr, "metadata", "name");
        if (json_object_get(live, n)) continue;
        wl_batch_delete(b, WL_RES_REVISIONS, &wl_revisions, ns, n, -1, NULL, NULL);
        old--;
    }
    json_decref(live);

    /* status (completeRollingUpdate: all updated and ready ends the update) */
    const char *status_cur = cur_name;
    int current = cnt.current;
    if (rolling && cnt.updated == cnt.replicas && cnt.ready == cnt.replicas) {
        status_cur = upd_name;
        current = cnt.updated;
    }
    const json_t *st = json_object_get(set, "status");
    int64_t gen = wl_int(json_object_get(set, "metadata"), "generation", NULL, 1);
    int64_t cc = wl_int(st, "collisionCount", NULL, 0);
    if (int_differs(st, "observedGeneration", gen) || int_differs(st, "replicas", cnt.replicas) ||
        int_differs(st, "readyReplicas", cnt.ready) ||
        int_differs(st, "availableReplicas", cnt.available) ||
        int_differs(st, "currentReplicas", current) ||
        int_differs(st, "updatedReplicas", cnt.updated) ||
        int_differs(st, "collisionCount", cc) || str_differs(st, "currentRevision", status_cur) ||
        str_differs(st, "updateRevision", upd_name)) {
        json_t *patch = json_pack("{s:{s:I, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:I}}", "status",
                                  "observedGeneration", (json_int_t)gen, "replicas", cnt.replicas,
                                  "readyReplicas", cnt.ready, "availableReplicas", cnt.available,
                                  "currentReplicas", current, "updatedReplicas", cnt.updated,
                                  "currentRevision", status_cur, "updateRevision", upd_name,
                                  "collisionCount", (json_int_t)cc);
        later(run, "status", patch, NULL);
        json_decref(patch);
    }
    if (min_ready > 0 && cnt.ready != cnt.available && !run->requeue_ms)
        run->requeue_ms = min_ready * 1000 / 2 + 100;
    free(slot);
    json_decref(condemned);
    json_decref(pods);
    json_decref(cur_tmpl);
}

/* Phase two: the pod writes (and the status) once the claims exist. */
static void on_pods_written(wl_batch_t *b)
{
    sts_run_t *run = b->data;
    wl_barriers_note(run->st->barriers, run->r->key, b);
    run->failures += b->failures;
    wl_batch_free(b);
    run_finish(run);
}

static void write_pods(sts_run_t *run)
{
    wl_batch_t *b = wl_batch_new(run->st->ctx->client, on_pods_written, run);
    if (!b) {
        run->failures++;
        run_finish(run);
        return;
    }
    const char *ns = set_ns(run);
    static const skiff_resource_t sts_status = {"apps", "v1", "statefulsets", "status"};
    size_t i;
    json_t *w;
    json_array_foreach(run->later, i, w)
    {
        const char *op = wl_str(w, "op", NULL), *name = wl_str(w, "name", NULL);
        json_t *obj = json_object_get(w, "obj");
        if (strcmp(op, "create") == 0) {
            wl_batch_create(b, WL_RES_PODS, &wl_pods, ns, obj, on_pod_created,
                            item_new(run, name, NULL));
        } else if (strcmp(op, "delete") == 0) {
            wl_batch_delete(b, WL_RES_PODS, &wl_pods, ns, name, -1, on_pod_deleted,
                            item_new(run, name, NULL));
        } else {
            char *text = json_dumps(obj, JSON_COMPACT);
            if (!text) continue;
            if (strcmp(op, "label") == 0)
                wl_batch_patch(b, WL_RES_PODS, &wl_pods, ns, name, SKIFF_PATCH_MERGE, text,
                               on_pod_updated, item_new(run, name, NULL));
            else
                wl_batch_patch(b, WL_RES_OTHER, &sts_status, ns, set_name(run), SKIFF_PATCH_MERGE,
                               text, NULL, NULL);
            free(text);
        }
    }
    wl_batch_seal(b);
}

/* Phase one done: claims (and revisions) written. */
static void on_claims_written(wl_batch_t *b)
{
    sts_run_t *run = b->data;
    wl_barriers_note(run->st->barriers, run->r->key, b);
    int failed = b->failures;
    run->failures += failed;
    wl_batch_free(b);
    /* a pod is not created without its claims */
    if (failed) run_finish(run);
    else write_pods(run);
}

static int is_member(const json_t *pod, void *set)
{
    return pod_ordinal(pod, set) >= 0;
}

static void sts_reconcile(skiff_reconcile_t *r)
{
    sts_state_t *st = r->data;
    skiff_controller_t *c = r->controller;
    json_t *cached = skiff_informer_get(skiff_controller_informer(c), r->key);
    if (!cached) {
        wl_barriers_forget(st->barriers, r->key);
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE, 0, 0});
        return;
    }
    if (wl_str(cached, "metadata", "deletionTimestamp")) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE, 0, 0});
        return;
    }
    skiff_informer_t *infs[WL_RES_N] = {skiff_controller_secondary_informer(c, SEC_PODS),
                                        skiff_controller_secondary_informer(c, SEC_REVISIONS),
                                        skiff_controller_secondary_informer(c, SEC_CLAIMS), NULL};
    if (!wl_barriers_passed(st->barriers, r->key, infs)) {
        /* the caches have not caught up with our last writes yet */
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, 50, 0});
        return;
    }
    sts_run_t *run = calloc(1, sizeof *run);
    if (!run) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_ENOMEM});
        return;
    }
    run->r = r;
    run->st = st;
    st->refs++;
    run->later = json_array();
    run->set = json_copy(cached);
    json_object_set_new(run->set, "apiVersion", json_string("apps/v1"));
    json_object_set_new(run->set, "kind", json_string("StatefulSet"));
    const json_t *set = run->set;
    wl_batch_t *b = wl_batch_new(st->ctx->client, on_claims_written, run);
    if (!b) {
        run->failures++;
        run_finish(run);
        return;
    }
    /* pods named <set>-<ordinal> that match the selector and have no
     * controller are adopted, ours that stopped matching are released;
     * the rest waits until the cache shows that */
    if (wl_claim_pods(b, infs[WL_RES_PODS], set, "apps/v1", "StatefulSet", is_member,
                      (void *)set_name(run)) > 0) {
        wl_batch_seal(b);
        return;
    }
    static const skiff_resource_t sts_status = {"apps", "v1", "statefulsets", "status"};
    json_t *tmpl = wl_get(set, "spec", "template");
    json_t *data = wl_revision_data(tmpl);
    json_t *revs = wl_revisions_of(infs[WL_RES_REVISIONS], wl_str(set, "metadata", "uid"));
    json_t *upd = wl_revision_ensure(b, set, "StatefulSet", &sts_status, tmpl, data, revs);
    if (upd) {
        const char *cur_name = wl_str(wl_get(set, "status", NULL), "currentRevision", NULL);
        json_t *cur = NULL;
        size_t i;
        json_t *cr;
        json_array_foreach(revs, i, cr)
            if (cur_name && strcmp(cur_name, wl_str(cr, "metadata", "name")) == 0) cur = cr;
        sts_sync(run, b, revs, cur ? cur : upd, upd);
    }
    json_decref(revs);
    json_decref(data);
    wl_batch_seal(b);
}

/* ---- plugin life cycle ------------------------------------------------------------- */

static void map_pod(void *data, skiff_controller_t *c, json_t *pod)
{
    wl_map_pod(c, pod, "StatefulSet");
}

static int sts_start(skiff_plugin_ctx_t *ctx)
{
    sts_state_t *st = calloc(1, sizeof *st);
    if (!st) return SKIFF_ENOMEM;
    st->ctx = ctx;
    st->refs = 1;
    st->events = skiff_event_recorder_new(ctx->client, COMPONENT);
    st->barriers = wl_barriers_new();
    st->watches[SEC_PODS] = (skiff_controller_watch_t){.resource = wl_pods, .map = map_pod};
    st->watches[SEC_REVISIONS] = (skiff_controller_watch_t){.resource = wl_revisions,
                                                            .by_owner = 1, .controller_only = 1};
    st->watches[SEC_CLAIMS] = (skiff_controller_watch_t){.resource = wl_claims, .by_owner = 1};
    st->desc = (skiff_controller_desc_t){
        .name = "statefulset",
        .primary = {"apps", "v1", "statefulsets", NULL},
        .primary_kind = "StatefulSet",
        .primary_api_version = "apps/v1",
        .secondary = st->watches,
        .n_secondary = N_SEC,
        .reconcile = sts_reconcile,
        .workers = 4,
        .data = st,
    };
    int e = st->events && st->barriers ? 0 : SKIFF_ENOMEM;
    skiff_controller_transform_t pods_view = skiff_pod_view_transform(SEC_PODS);
    if (!e)
        e = skiff_controller_new_transformed(ctx, ctx->informers, &st->desc, &pods_view, 1,
                                             &st->ctl);
    if (!e) e = skiff_controller_start(st->ctl);
    if (e) {
        skiff_controller_free(st->ctl);
        state_unref(st);
        return e;
    }
    ctx->plugin_data = st;
    return 0;
}

static void sts_stop(skiff_plugin_ctx_t *ctx)
{
    sts_state_t *st = ctx->plugin_data;
    if (!st) return;
    ctx->plugin_data = NULL;
    skiff_controller_free(st->ctl);
    state_unref(st);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-statefulset",
    .version = "0.1.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "StatefulSet controller: ordinal pods, claims, ordered or parallel, rolling updates",
    .start = sts_start,
    .stop = sts_stop,
};
