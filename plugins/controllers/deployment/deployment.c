/* plugins/controllers/deployment/deployment.c - the Deployment controller
 * (plugin controller-deployment): owns ReplicaSets named
 * "<deployment>-<pod-template-hash>", rolls a changed template out with
 * the RollingUpdate (maxSurge/maxUnavailable) or Recreate strategy,
 * resizes ReplicaSets proportionally when the Deployment is scaled
 * mid-rollout, keeps revisionHistoryLimit old ReplicaSets, and writes the
 * status, the Progressing/Available conditions and the revision
 * annotations that `kubectl rollout status/history/undo` read, as
 * Kubernetes' deployment-controller does.
 *
 * A reconcile computes from the caches, issues one round of writes in
 * parallel (ReplicaSet creates, resizes, deletes, the status) and ends; the
 * watch events of its own writes bring the next round. Before acting, a
 * round waits until the caches hold every object version the previous
 * round wrote, so it never acts twice on a stale view. The numbers come
 * from rollout.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>
#include <skiff/objects.h>
#include <skiff/skiff.h>

#include "../common/candidates.h"
#include "../common/workers_setting.h"
#include "rollout.h"

#define COMPONENT "deployment-controller"
#define HASH_LABEL "pod-template-hash"
#define ANN_REVISION "deployment.kubernetes.io/revision"
#define ANN_REVISION_HISTORY "deployment.kubernetes.io/revision-history"
#define ANN_DESIRED "deployment.kubernetes.io/desired-replicas"
#define ANN_MAX "deployment.kubernetes.io/max-replicas"
/* a round whose writes the caches have not shown after this long acts anyway */
#define WAIT_TTL_MS 10000
/* the revision-history annotation is kept under this length, as Kubernetes does */
#define MAX_REV_HISTORY_CHARS 2000

static const skiff_resource_t rs_res = {"apps", "v1", "replicasets", NULL};
static const skiff_resource_t dep_res = {"apps", "v1", "deployments", NULL};
static const skiff_resource_t dep_status_res = {"apps", "v1", "deployments", "status"};

typedef struct dep_ctl {
    skiff_plugin_ctx_t *ctx;
    skiff_controller_t *c;
    skiff_event_recorder_t *events;
    /* "ns/name" -> {"t": ms, "o": {"deployment" | "rs/NAME": resourceVersion}} */
    json_t *waits;
    skiff_controller_desc_t desc;
    int runs;
    int stopped;
} dep_ctl_t;

typedef struct dep_run {
    dep_ctl_t *ctl;
    skiff_reconcile_t *r;
    json_t *dep;     /* as cached (own reference) */
    json_t *rss;     /* owned ReplicaSets: deep copies, changed in place before writing */
    json_t *new_rs;  /* the one whose template is the Deployment's, in rss, or NULL */
    json_t *olds;    /* the others, oldest first */
    json_t *status;  /* conditions being built (a deep copy of the Deployment's status) */
    int replicas, rolling, max_surge, max_unavailable;
    int pending;     /* writes in flight, plus one while issuing */
    int conflict, failed;
    /* the Deployment's own metadata patches in flight (its revision): the
     * status is written after them, with the resourceVersion they made,
     * or it would conflict with our own write */
    int dep_patches;
    int status_deferred;
    char dep_rv[32];
    skiff_reconcile_result_t res;
} dep_run_t;

typedef struct write_ctx {
    dep_run_t *run;
    char wait_key[320]; /* what to wait for in the caches, "" for nothing */
    char *event_reason; /* Event on the Deployment after success, or NULL */
    char *event_msg;
    int is_delete;
    int dep_patch; /* a patch of the Deployment's metadata */
} write_ctx_t;

#define LOG(ctl, level, ...) (ctl)->ctx->log((ctl)->ctx, level, __VA_ARGS__)

/* ---- small JSON helpers ----------------------------------------------------------------- */

static const char *str2(const json_t *o, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(o, a), b));
}

static json_t *meta(const json_t *o) { return json_object_get(o, "metadata"); }
static json_t *spec(const json_t *o) { return json_object_get(o, "spec"); }

static const char *name_of(const json_t *o) { return str2(o, "metadata", "name"); }
static const char *uid_of(const json_t *o) { return str2(o, "metadata", "uid"); }

static int being_deleted(const json_t *o)
{
    json_t *d = json_object_get(meta(o), "deletionTimestamp");
    return d && !json_is_null(d);
}

static int get_int(const json_t *o, const char *a, const char *b, int dflt)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

static int rs_spec(const json_t *rs) { return get_int(rs, "spec", "replicas", 1); }
static int rs_stat(const json_t *rs, const char *f) { return get_int(rs, "status", f, 0); }

static const char *annotation(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(json_object_get(meta(o), "annotations"), k));
}

/* A mutable annotations object of o (created as needed). */
static json_t *annotations(json_t *o)
{
    json_t *m = json_object_get(o, "metadata");
    json_t *a = json_object_get(m, "annotations");
    if (!json_is_object(a)) {
        a = json_object();
        json_object_set_new(m, "annotations", a);
    }
    return a;
}

static int64_t revision_of(const json_t *rs)
{
    const char *v = annotation(rs, ANN_REVISION);
    if (!v) return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    return *end || n < 0 ? 0 : (int64_t)n;
}

static int64_t rv_of(const json_t *o)
{
    const char *v = str2(o, "metadata", "resourceVersion");
    return v ? strtoll(v, NULL, 10) : 0;
}

static int64_t created_of(const json_t *o)
{
    return skiff_time_parse(str2(o, "metadata", "creationTimestamp"));
}

static int set_str(json_t *obj, const char *k, const char *v)
{
    const char *cur = json_string_value(json_object_get(obj, k));
    if (cur && strcmp(cur, v) == 0) return 0;
    json_object_set_new(obj, k, json_string(v));
    return 1;
}

static int set_int_annotation(json_t *o, const char *k, int v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%d", v);
    return set_str(annotations(o), k, buf);
}

/* Annotations the Deployment does not hand down to its ReplicaSets (and
 * `kubectl rollout undo` does not copy back). */
static int skip_annotation(const char *k)
{
    static const char *const skip[] = {"kubectl.kubernetes.io/last-applied-configuration",
                                       ANN_REVISION, ANN_REVISION_HISTORY, ANN_DESIRED, ANN_MAX,
                                       "deprecated.deployment.rollback.to", NULL};
    for (int i = 0; skip[i]; i++)
        if (strcmp(k, skip[i]) == 0) return 1;
    return 0;
}

/* Removes null members everywhere in v: Kubernetes decodes a template into
 * typed structs, where `creationTimestamp: null` (which kubectl sends in
 * `rollout undo`) and an absent field are the same. */
static void strip_nulls(json_t *v)
{
    const char *k;
    json_t *m, *tmp;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, k, m)
        {
            if (json_is_null(m)) json_object_del(v, k);
            else strip_nulls(m);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m) strip_nulls(m);
    }
}

/* The ReplicaSet's template equals the Deployment's but for the hash label. */
static int template_matches(const json_t *rs, const json_t *dep)
{
    json_t *a = skiff_json_copy(json_object_get(spec(rs), "template"));
    json_t *b = skiff_json_copy(json_object_get(spec(dep), "template"));
    json_t *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        strip_nulls(both[i]);
        json_t *m = json_object_get(both[i], "metadata");
        json_t *l = json_object_get(m, "labels");
        json_object_del(l, HASH_LABEL);
        if (l && json_object_size(l) == 0) json_object_del(m, "labels");
        if (m && json_object_size(m) == 0) json_object_del(both[i], "metadata");
    }
    int eq = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

static int cmp_created(const void *x, const void *y)
{
    json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int64_t ta = created_of(a), tb = created_of(b);
    if (ta != tb) return ta < tb ? -1 : 1;
    const char *na = name_of(a), *nb = name_of(b);
    return strcmp(na ? na : "", nb ? nb : "");
}

static int cmp_revision(const void *x, const void *y)
{
    json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int64_t ra = revision_of(a), rb = revision_of(b);
    if (ra != rb) return ra < rb ? -1 : 1;
    return cmp_created(x, y);
}

/* A new array of arr's members sorted by cmp. */
static json_t *sorted(const json_t *arr, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(arr);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    json_t *out = json_array();
    if (!v) return out;
    for (size_t i = 0; i < n; i++) v[i] = json_array_get(arr, i);
    qsort(v, n, sizeof *v, cmp);
    for (size_t i = 0; i < n; i++) json_array_append(out, v[i]);
    free(v);
    return out;
}

/* ---- waiting for the caches to show our writes -------------------------------------------- */

static skiff_informer_t *rs_cache(dep_ctl_t *ctl)
{
    return skiff_controller_secondary_informer(ctl->c, 0);
}

static skiff_informer_t *pod_cache(dep_ctl_t *ctl)
{
    return skiff_controller_secondary_informer(ctl->c, 1);
}

static int caught_up(dep_ctl_t *ctl, const char *key, const char *ns)
{
    json_t *e = json_object_get(ctl->waits, key);
    if (!e) return 1;
    json_t *objs = json_object_get(e, "o");
    const char *k;
    json_t *v, *tmp;
    json_object_foreach_safe(objs, tmp, k, v)
    {
        json_t *o;
        if (strcmp(k, "deployment") == 0) {
            o = skiff_informer_get(skiff_controller_informer(ctl->c), key);
        } else {
            char rk[512];
            snprintf(rk, sizeof rk, "%s/%s", ns, k + 3);
            o = skiff_informer_get(rs_cache(ctl), rk);
        }
        /* gone counts as seen: a delete is a newer version too */
        if (!o || rv_of(o) >= json_integer_value(v)) json_object_del(objs, k);
    }
    if (json_object_size(objs) == 0 ||
        skiff_now_ms() - json_integer_value(json_object_get(e, "t")) > WAIT_TTL_MS) {
        json_object_del(ctl->waits, key);
        return 1;
    }
    return 0;
}

static void remember_write(dep_ctl_t *ctl, const char *key, const char *what, int64_t rv)
{
    json_t *e = json_object_get(ctl->waits, key);
    if (!e) {
        e = json_pack("{s:I, s:{}}", "t", (json_int_t)skiff_now_ms(), "o");
        json_object_set_new(ctl->waits, key, e);
    }
    json_object_set_new(e, "t", json_integer(skiff_now_ms()));
    json_object_set_new(json_object_get(e, "o"), what, json_integer(rv));
}

/* ---- mapping ReplicaSet and pod events to Deployments ------------------------------------- */

static void enqueue_ref(skiff_controller_t *c, const char *ns, const char *name)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    skiff_controller_enqueue(c, key);
}

static void map_rs(void *data, skiff_controller_t *c, json_t *rs)
{
    (void)data;
    const char *ns = str2(rs, "metadata", "namespace");
    if (!ns) return;
    json_t *ref = skiff_controller_ref(rs);
    if (ref) {
        const char *kind = json_string_value(json_object_get(ref, "kind"));
        const char *name = json_string_value(json_object_get(ref, "name"));
        if (kind && name && strcmp(kind, "Deployment") == 0) enqueue_ref(c, ns, name);
        return;
    }
    /* an orphan: the Deployments that may adopt it */
    json_t *deps = skiff_informer_list_namespace(skiff_controller_informer(c), ns);
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        json_t *sel = json_object_get(spec(d), "selector");
        if (json_object_size(sel) == 0) continue;
        if (skiff_label_selector_matches(sel, json_object_get(meta(rs), "labels")) == 1)
            enqueue_ref(c, ns, name_of(d));
    }
    json_decref(deps);
}

/* Only a Recreate rollout waits for pods (the old ones to be gone). */
static void map_pod(void *data, skiff_controller_t *c, json_t *pod)
{
    dep_ctl_t *ctl = data;
    const char *ns = str2(pod, "metadata", "namespace");
    json_t *ref = skiff_controller_ref(pod);
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    if (!ns || !kind || !name || strcmp(kind, "ReplicaSet") != 0) return;
    char key[512];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    json_t *rs = skiff_informer_get(rs_cache(ctl), key);
    json_t *dref = skiff_controller_ref(rs);
    const char *dkind = json_string_value(json_object_get(dref, "kind"));
    const char *dname = json_string_value(json_object_get(dref, "name"));
    if (!dkind || !dname || strcmp(dkind, "Deployment") != 0) return;
    snprintf(key, sizeof key, "%s/%s", ns, dname);
    json_t *dep = skiff_informer_get(skiff_controller_informer(c), key);
    const char *type = json_string_value(
        json_object_get(json_object_get(spec(dep), "strategy"), "type"));
    if (type && strcmp(type, "Recreate") == 0) skiff_controller_enqueue(c, key);
}

/* ---- the run and its writes ---------------------------------------------------------------- */

static void ctl_free(dep_ctl_t *ctl)
{
    skiff_event_recorder_free(ctl->events);
    json_decref(ctl->waits);
    free(ctl);
}

static void run_finish(dep_run_t *run, skiff_reconcile_result_t res)
{
    dep_ctl_t *ctl = run->ctl;
    skiff_reconcile_done(run->r, res);
    json_decref(run->dep);
    json_decref(run->rss);
    json_decref(run->olds);
    json_decref(run->status);
    free(run);
    if (--ctl->runs == 0 && ctl->stopped) ctl_free(ctl);
}

static void run_release(dep_run_t *run)
{
    if (--run->pending > 0) return;
    skiff_reconcile_result_t res = run->res;
    if (run->failed) res = (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_EIO};
    else if (run->conflict) res = (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE};
    run_finish(run, res);
}

static void write_status(dep_run_t *run);

static void on_written(void *data, int status, json_t *obj)
{
    write_ctx_t *w = data;
    dep_run_t *run = w->run;
    dep_ctl_t *ctl = run->ctl;
    if (w->dep_patch) {
        run->dep_patches--;
        if (status == 200)
            snprintf(run->dep_rv, sizeof run->dep_rv, "%lld", (long long)rv_of(obj));
    }
    if (status == 200 || status == 201 || status == 202 || (w->is_delete && status == 404)) {
        if (w->wait_key[0] && !ctl->stopped && status != 404)
            remember_write(ctl, run->r->key, w->wait_key, rv_of(obj));
        if (w->event_reason && !ctl->stopped)
            skiff_event_record(ctl->events, run->dep, "Normal", w->event_reason, "%s",
                               w->event_msg);
    } else if (status == 409 || status == 404) {
        run->conflict = 1;
    } else {
        run->failed = 1;
        const char *msg = json_string_value(json_object_get(obj, "message"));
        LOG(ctl, SKIFF_LOG_WARN, "deployment %s: a write failed (%d): %s", run->r->key, status,
            msg ? msg : "no answer");
    }
    int then_status = w->dep_patch && run->dep_patches == 0 && run->status_deferred;
    free(w->event_reason);
    free(w->event_msg);
    free(w);
    if (then_status) {
        /* issued before this write is released, so the round waits for it */
        run->status_deferred = 0;
        write_status(run);
    }
    run_release(run);
}

static write_ctx_t *write_ctx(dep_run_t *run, const char *wait_key, const char *reason,
                              const char *msg)
{
    write_ctx_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->run = run;
    snprintf(w->wait_key, sizeof w->wait_key, "%s", wait_key ? wait_key : "");
    if (reason) {
        w->event_reason = strdup(reason);
        w->event_msg = strdup(msg);
    }
    run->pending++;
    return w;
}

static void issued(dep_run_t *run, write_ctx_t *w, int rc)
{
    if (rc >= 0) return;
    run->failed = 1;
    free(w->event_reason);
    free(w->event_msg);
    free(w);
    run->pending--;
}

static void rs_wait_key(char *buf, size_t len, const json_t *rs)
{
    snprintf(buf, len, "rs/%s", name_of(rs));
}

/* PUT a changed ReplicaSet copy (optimistic concurrency on its resourceVersion). */
static void put_rs(dep_run_t *run, json_t *rs, const char *reason, const char *msg)
{
    char wk[320];
    rs_wait_key(wk, sizeof wk, rs);
    write_ctx_t *w = write_ctx(run, wk, reason, msg);
    if (!w) {
        run->failed = 1;
        return;
    }
    issued(run, w, skiff_client_update(run->ctl->ctx->client, &rs_res, run->r->ns, rs, NULL,
                                       on_written, w));
}

/* Sizes rs to n and stamps the desired/max replicas annotations; writes it
 * when anything changed. 1 when a write went out. */
static int scale_rs(dep_run_t *run, json_t *rs, int n)
{
    int from = rs_spec(rs);
    int changed = from != n;
    changed |= set_int_annotation(rs, ANN_DESIRED, run->replicas);
    changed |= set_int_annotation(rs, ANN_MAX, run->replicas + run->max_surge);
    if (!changed) return 0;
    json_object_set_new(spec(rs), "replicas", json_integer(n));
    char msg[512];
    if (from != n)
        snprintf(msg, sizeof msg, "Scaled %s replica set %s from %d to %d",
                 n > from ? "up" : "down", name_of(rs), from, n);
    put_rs(run, rs, from != n ? "ScalingReplicaSet" : NULL, msg);
    return 1;
}

/* ---- status ------------------------------------------------------------------------------- */

/* Available pods of a ReplicaSet for the rollout arithmetic: at most its
 * spec.replicas, since a ReplicaSet just scaled down may still count pods
 * it is about to delete (its status lags its spec). */
static int rs_available(const json_t *rs)
{
    int a = rs_stat(rs, "availableReplicas"), s = rs_spec(rs);
    return a < s ? a : s;
}

static int sum_available(const json_t *rss)
{
    int s = 0;
    size_t i;
    json_t *rs;
    json_array_foreach(rss, i, rs) s += rs_available(rs);
    return s;
}

static int sum_status(const json_t *rss, const char *field)
{
    int s = 0;
    size_t i;
    json_t *rs;
    json_array_foreach(rss, i, rs) s += rs_stat(rs, field);
    return s;
}

static int sum_spec(const json_t *rss)
{
    int s = 0;
    size_t i;
    json_t *rs;
    json_array_foreach(rss, i, rs) s += rs_spec(rs);
    return s;
}

static void put_count(json_t *st, const char *k, int v)
{
    if (v) json_object_set_new(st, k, json_integer(v));
    else json_object_del(st, k);
}

/* The counts and the Available condition from the ReplicaSets as they are
 * in this round (Kubernetes' calculateStatus), into run->status. */
static void calculate_status(dep_run_t *run)
{
    json_t *st = run->status;
    int available = sum_status(run->rss, "availableReplicas");
    int unavailable = sum_spec(run->rss) - available;
    if (unavailable < 0) unavailable = 0;
    json_object_set_new(st, "observedGeneration",
                        json_integer(json_integer_value(
                            json_object_get(meta(run->dep), "generation"))));
    put_count(st, "replicas", sum_status(run->rss, "replicas"));
    put_count(st, "updatedReplicas", run->new_rs ? rs_stat(run->new_rs, "replicas") : 0);
    put_count(st, "readyReplicas", sum_status(run->rss, "readyReplicas"));
    put_count(st, "availableReplicas", available);
    put_count(st, "unavailableReplicas", unavailable);
    json_t *holder = json_pack("{s:O}", "status", st);
    if (available >= run->replicas - run->max_unavailable)
        skiff_condition_set(holder, "Available", "True", "MinimumReplicasAvailable",
                            "Deployment has minimum availability.", 1);
    else
        skiff_condition_set(holder, "Available", "False", "MinimumReplicasUnavailable",
                            "Deployment does not have minimum availability.", 1);
    json_decref(holder);
}

static const char *cond_reason(const json_t *st, const char *type)
{
    json_t *holder = json_pack("{s:O}", "status", (json_t *)st);
    json_t *c = skiff_condition_get(holder, type);
    const char *r = json_string_value(json_object_get(c, "reason"));
    json_decref(holder);
    return r; /* still owned by st */
}

static void set_cond(dep_run_t *run, const char *type, const char *status, const char *reason,
                     const char *msg)
{
    json_t *holder = json_pack("{s:O}", "status", run->status);
    skiff_condition_set(holder, type, status, reason, msg, 1);
    json_decref(holder);
}

/* Sets lastUpdateTime of a condition to now (progress was made). */
static void touch_cond(dep_run_t *run, const char *type)
{
    json_t *holder = json_pack("{s:O}", "status", run->status);
    json_t *c = skiff_condition_get(holder, type);
    char now[32];
    skiff_time_format(skiff_now_ms(), now, sizeof now);
    if (c) json_object_set_new(c, "lastUpdateTime", json_string(now));
    json_decref(holder);
}

static int has_deadline(const json_t *dep)
{
    json_t *v = json_object_get(spec(dep), "progressDeadlineSeconds");
    return json_is_integer(v) && json_integer_value(v) != 2147483647;
}

static int64_t deadline_s(const json_t *dep)
{
    return json_integer_value(json_object_get(spec(dep), "progressDeadlineSeconds"));
}

/* Kubernetes' DeploymentComplete for status st. */
static int complete(const dep_run_t *run, const json_t *st)
{
    int gen = (int)json_integer_value(json_object_get(meta(run->dep), "generation"));
    return json_integer_value(json_object_get(st, "updatedReplicas")) == run->replicas &&
           json_integer_value(json_object_get(st, "replicas")) == run->replicas &&
           json_integer_value(json_object_get(st, "availableReplicas")) == run->replicas &&
           json_integer_value(json_object_get(st, "observedGeneration")) >= gen;
}

static json_int_t st_int(const json_t *st, const char *k)
{
    return json_integer_value(json_object_get(st, k));
}

/* The Progressing condition of a rollout (Kubernetes' syncRolloutStatus);
 * returns ms after which to look again for the progress deadline, or 0. */
static int64_t rollout_progress(dep_run_t *run)
{
    json_t *st = run->status;
    json_t *old = json_object_get(run->dep, "status");
    if (!has_deadline(run->dep)) {
        json_t *holder = json_pack("{s:O}", "status", st);
        skiff_condition_remove(holder, "Progressing");
        json_decref(holder);
        return 0;
    }
    const char *reason = cond_reason(st, "Progressing");
    const char *rs_name = run->new_rs ? name_of(run->new_rs) : "";
    char msg[512];
    int done = st_int(st, "replicas") == st_int(st, "updatedReplicas") && reason &&
               strcmp(reason, "NewReplicaSetAvailable") == 0;
    if (!done) {
        json_int_t old_upd = st_int(old, "updatedReplicas");
        json_int_t old_old = st_int(old, "replicas") - old_upd;
        json_int_t new_old = st_int(st, "replicas") - st_int(st, "updatedReplicas");
        if (complete(run, st)) {
            snprintf(msg, sizeof msg, "ReplicaSet \"%s\" has successfully progressed.", rs_name);
            set_cond(run, "Progressing", "True", "NewReplicaSetAvailable", msg);
        } else if (st_int(st, "updatedReplicas") > old_upd || new_old < old_old ||
                   st_int(st, "readyReplicas") > st_int(old, "readyReplicas") ||
                   st_int(st, "availableReplicas") > st_int(old, "availableReplicas")) {
            snprintf(msg, sizeof msg, "ReplicaSet \"%s\" is progressing.", rs_name);
            set_cond(run, "Progressing", "True", "ReplicaSetUpdated", msg);
            touch_cond(run, "Progressing");
        } else if (reason && strcmp(reason, "ProgressDeadlineExceeded") != 0 &&
                   strcmp(reason, "NewReplicaSetAvailable") != 0) {
            json_t *holder = json_pack("{s:O}", "status", st);
            json_t *c = skiff_condition_get(holder, "Progressing");
            int64_t from = skiff_time_parse(json_string_value(json_object_get(c, "lastUpdateTime")));
            json_decref(holder);
            if (from >= 0 && from + deadline_s(run->dep) * 1000 < skiff_now_ms()) {
                snprintf(msg, sizeof msg, "ReplicaSet \"%s\" has timed out progressing.", rs_name);
                set_cond(run, "Progressing", "False", "ProgressDeadlineExceeded", msg);
            }
        }
    }
    /* ReplicaSets' ReplicaFailure shows on the Deployment */
    json_t *failure = NULL;
    size_t i;
    json_t *rs;
    json_array_foreach(run->rss, i, rs)
    {
        json_t *c = skiff_condition_get(rs, "ReplicaFailure");
        if (c && strcmp(json_string_value(json_object_get(c, "status")) ?: "", "True") == 0) {
            failure = c;
            break;
        }
    }
    if (failure)
        set_cond(run, "ReplicaFailure", "True",
                 json_string_value(json_object_get(failure, "reason")),
                 json_string_value(json_object_get(failure, "message")));
    else {
        json_t *holder = json_pack("{s:O}", "status", st);
        skiff_condition_remove(holder, "ReplicaFailure");
        json_decref(holder);
    }

    /* when to look again (Kubernetes' requeueStuckDeployment) */
    reason = cond_reason(st, "Progressing");
    if (!reason || complete(run, st) || strcmp(reason, "ProgressDeadlineExceeded") == 0 ||
        strcmp(reason, "NewReplicaSetAvailable") == 0)
        return 0;
    json_t *holder = json_pack("{s:O}", "status", st);
    json_t *c = skiff_condition_get(holder, "Progressing");
    int64_t from = skiff_time_parse(json_string_value(json_object_get(c, "lastUpdateTime")));
    json_decref(holder);
    if (from < 0) return 0;
    int64_t after = from + deadline_s(run->dep) * 1000 - skiff_now_ms();
    return (after > 0 ? after : 0) + 1000;
}

/* Writes run->status when it differs from the Deployment's. */
static void write_status(dep_run_t *run)
{
    json_t *old = json_object_get(run->dep, "status");
    if (run->ctl->stopped || (old && json_equal(old, run->status))) return;
    if (run->dep_patches > 0) {
        run->status_deferred = 1;
        return;
    }
    json_t *obj = skiff_json_copy(run->dep);
    json_object_set(obj, "status", run->status);
    /* after our own patch of its metadata: the version that patch made
     * (the status subresource takes nothing else of the object) */
    if (run->dep_rv[0])
        json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion",
                            json_string(run->dep_rv));
    write_ctx_t *w = write_ctx(run, "deployment", NULL, NULL);
    if (!w) {
        run->failed = 1;
        json_decref(obj);
        return;
    }
    issued(run, w, skiff_client_update(run->ctl->ctx->client, &dep_status_res, run->r->ns, obj,
                                       NULL, on_written, w));
    json_decref(obj);
}

/* The status of a scale or pause round (Kubernetes' syncDeploymentStatus). */
static void finish_plain(dep_run_t *run)
{
    calculate_status(run);
    write_status(run);
    run_release(run);
}

/* The status of a rollout round (Kubernetes' syncRolloutStatus). */
static void finish_rollout(dep_run_t *run)
{
    calculate_status(run);
    int64_t after = rollout_progress(run);
    if (after > 0) run->res = (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, after, 0};
    write_status(run);
    run_release(run);
}

/* ---- ReplicaSets: claiming, the new one, revisions ----------------------------------------- */

static void on_claimed(void *data, int status, json_t *obj)
{
    (void)obj;
    dep_run_t *run = data;
    if (status != 200 && status != 404) run->conflict = 1;
    run_release(run);
}

static void patch_rs_meta(dep_run_t *run, const json_t *rs, json_t *patch)
{
    char *text = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    if (!text) {
        run->failed = 1;
        return;
    }
    run->pending++;
    if (skiff_client_patch(run->ctl->ctx->client, &rs_res, run->r->ns, name_of(rs),
                           SKIFF_PATCH_STRATEGIC, text, NULL, on_claimed, run) < 0) {
        run->pending--;
        run->failed = 1;
    }
    free(text);
}

/* Owned ReplicaSets into run->rss (deep copies); adoption and release
 * patches for the others. Returns how many patches went out. */
static int claim_replicasets(dep_run_t *run)
{
    dep_ctl_t *ctl = run->ctl;
    const char *uid = uid_of(run->dep);
    json_t *sel = json_object_get(spec(run->dep), "selector");
    int deleting = being_deleted(run->dep);
    json_t *cands = wl_candidates(rs_cache(ctl), run->r->ns, uid, sel);
    int claims = 0;
    size_t i;
    json_t *rs;
    json_array_foreach(cands, i, rs)
    {
        json_t *ref = skiff_controller_ref(rs);
        const char *ruid = json_string_value(json_object_get(ref, "uid"));
        /* another owner's: not ours to look at */
        if (ref && (!ruid || !uid || strcmp(ruid, uid) != 0)) continue;
        int matches = skiff_label_selector_matches(sel, json_object_get(meta(rs), "labels")) == 1;
        if (ref) {
            if (!matches) {
                if (!being_deleted(rs)) {
                    patch_rs_meta(run, rs,
                                  json_pack("{s:{s:[{s:s, s:s}], s:s}}", "metadata",
                                            "ownerReferences", "$patch", "delete", "uid", uid,
                                            "uid", uid_of(rs)));
                    claims++;
                }
                continue;
            }
            json_array_append_new(run->rss, skiff_json_copy(rs));
        } else if (matches && !deleting && !being_deleted(rs)) {
            patch_rs_meta(run, rs,
                          json_pack("{s:{s:[{s:s, s:s, s:s, s:s, s:b, s:b}], s:s}}", "metadata",
                                    "ownerReferences", "apiVersion", "apps/v1", "kind",
                                    "Deployment", "name", run->r->name, "uid", uid, "controller",
                                    1, "blockOwnerDeletion", 1, "uid", uid_of(rs)));
            claims++;
        }
    }
    json_decref(cands);
    return claims;
}

/* Splits run->rss into the new ReplicaSet and the old ones (oldest first). */
static void find_new_and_old(dep_run_t *run)
{
    json_t *all = sorted(run->rss, cmp_created);
    run->olds = json_array();
    size_t i;
    json_t *rs;
    json_array_foreach(all, i, rs)
    {
        if (!run->new_rs && template_matches(rs, run->dep)) run->new_rs = rs;
        else json_array_append(run->olds, rs);
    }
    json_decref(all);
}

static int64_t max_old_revision(const dep_run_t *run)
{
    int64_t m = 0;
    size_t i;
    json_t *rs;
    json_array_foreach(run->olds, i, rs)
        if (revision_of(rs) > m) m = revision_of(rs);
    return m;
}

/* Copies the Deployment's annotations (but the skipped ones) to rs. */
static int copy_annotations(const json_t *dep, json_t *rs)
{
    int changed = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(meta(dep), "annotations"), k, v)
    {
        if (skip_annotation(k) || !json_is_string(v)) continue;
        changed |= set_str(annotations(rs), k, json_string_value(v));
    }
    return changed;
}

/* Brings the new ReplicaSet's revision annotations (and history), copied
 * annotations and minReadySeconds up to date, and the Deployment's
 * revision annotation to the new ReplicaSet's. 1 when writes went out. */
static int sync_revision(dep_run_t *run)
{
    json_t *rs = run->new_rs;
    if (!rs) return 0;
    int64_t want = max_old_revision(run) + 1;
    int changed = copy_annotations(run->dep, rs);
    int64_t have = revision_of(rs);
    const char *had = annotation(rs, ANN_REVISION);
    char buf[32];
    if (have < want || !had) {
        if (had && have < want) {
            /* an old template came back (rollout undo): keep its revisions */
            const char *hist = annotation(rs, ANN_REVISION_HISTORY);
            char h[MAX_REV_HISTORY_CHARS + 64];
            if (hist && *hist) snprintf(h, sizeof h, "%s,%s", hist, had);
            else snprintf(h, sizeof h, "%s", had);
            const char *keep = h;
            while (strlen(keep) > MAX_REV_HISTORY_CHARS && strchr(keep, ','))
                keep = strchr(keep, ',') + 1;
            set_str(annotations(rs), ANN_REVISION_HISTORY, keep);
        }
        snprintf(buf, sizeof buf, "%lld", (long long)want);
        set_str(annotations(rs), ANN_REVISION, buf);
        changed = 1;
    }
    json_t *mrs = json_object_get(spec(run->dep), "minReadySeconds");
    json_int_t dm = json_integer_value(mrs);
    if (json_integer_value(json_object_get(spec(rs), "minReadySeconds")) != dm) {
        json_object_set_new(spec(rs), "minReadySeconds", json_integer(dm));
        changed = 1;
    }
    if (changed) put_rs(run, rs, NULL, NULL);

    const char *rev = annotation(rs, ANN_REVISION);
    const char *drev = annotation(run->dep, ANN_REVISION);
    int dep_changed = rev && (!drev || strcmp(rev, drev) != 0);
    if (dep_changed) {
        json_t *p = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", ANN_REVISION, rev);
        char *text = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        write_ctx_t *w = text ? write_ctx(run, "deployment", NULL, NULL) : NULL;
        if (w) {
            w->dep_patch = 1;
            run->dep_patches++;
            int rc = skiff_client_patch(run->ctl->ctx->client, &dep_res, run->r->ns, run->r->name,
                                        SKIFF_PATCH_MERGE, text, NULL, on_written, w);
            if (rc < 0) run->dep_patches--;
            issued(run, w, rc);
        } else {
            run->failed = 1;
        }
        free(text);
    }
    /* Kubernetes notes the found ReplicaSet when there is no condition yet */
    if (has_deadline(run->dep) && !cond_reason(run->status, "Progressing")) {
        char msg[512];
        snprintf(msg, sizeof msg, "Found new replica set \"%s\"", name_of(rs));
        set_cond(run, "Progressing", "True", "FoundNewReplicaSet", msg);
    }
    return changed || dep_changed;
}

typedef struct create_ctx {
    dep_run_t *run;
    char name[300];
    int replicas;
} create_ctx_t;

/* The new ReplicaSet's create answered: the status says so (Kubernetes'
 * NewReplicaSetCreated, or FailedRSCreate with a Warning Event). */
static void on_rs_created(void *data, int status, json_t *obj)
{
    create_ctx_t *cc = data;
    dep_run_t *run = cc->run;
    dep_ctl_t *ctl = run->ctl;
    char msg[768], wk[320];
    if (status == 201 || status == 200) {
        snprintf(wk, sizeof wk, "rs/%s", cc->name);
        if (!ctl->stopped) {
            remember_write(ctl, run->r->key, wk, rv_of(obj));
            if (cc->replicas > 0)
                skiff_event_record(ctl->events, run->dep, "Normal", "ScalingReplicaSet",
                                   "Scaled up replica set %s from 0 to %d", cc->name,
                                   cc->replicas);
        }
        if (has_deadline(run->dep)) {
            snprintf(msg, sizeof msg, "Created new replica set \"%s\"", cc->name);
            set_cond(run, "Progressing", "True", "NewReplicaSetCreated", msg);
        }
    } else if (status == 409) {
        /* our cache has not seen it yet: the next round finds it */
        run->conflict = 1;
    } else {
        run->failed = 1;
        snprintf(msg, sizeof msg, "Failed to create new replica set \"%s\": %s", cc->name,
                 skiff_answer_message(obj));
        if (has_deadline(run->dep))
            set_cond(run, "Progressing", "False", "FailedRSCreate", msg);
        if (!ctl->stopped)
            skiff_event_record(ctl->events, run->dep, "Warning", "FailedRSCreate", "%s", msg);
    }
    free(cc);
    /* the counts include the new ReplicaSet once it is cached */
    calculate_status(run);
    write_status(run);
    run_release(run);
}

/* Creates the new ReplicaSet with `replicas` pods. */
static void create_new_rs(dep_run_t *run, int replicas)
{
    json_t *dep = run->dep;
    json_t *tmpl = json_object_get(spec(dep), "template");
    json_int_t collisions = json_integer_value(json_object_get(json_object_get(dep, "status"),
                                                               "collisionCount"));
    char hash[16];
    json_t *canonical = skiff_json_copy(tmpl);
    strip_nulls(canonical);
    skiff_json_hash(canonical, (uint32_t)collisions, hash, sizeof hash);
    json_decref(canonical);
    char name[300];
    snprintf(name, sizeof name, "%s-%s", run->r->name, hash);

    char key[600];
    snprintf(key, sizeof key, "%s/%s", run->r->ns, name);
    json_t *clash = skiff_informer_get(rs_cache(run->ctl), key);
    if (clash) {
        /* a ReplicaSet of that name with another template: hash again
         * with one more collision (Kubernetes' status.collisionCount) */
        if (!skiff_is_controlled_by(clash, uid_of(dep)) || !template_matches(clash, dep)) {
            json_object_set_new(run->status, "collisionCount", json_integer(collisions + 1));
            LOG(run->ctl, SKIFF_LOG_INFO, "deployment %s: hash collision with %s", run->r->key,
                name);
        }
        finish_plain(run);
        return;
    }

    json_t *t = skiff_json_copy(tmpl);
    strip_nulls(t);
    json_t *tm = json_object_get(t, "metadata");
    if (!json_is_object(tm)) {
        tm = json_object();
        json_object_set_new(t, "metadata", tm);
    }
    json_t *labels = json_object_get(tm, "labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(tm, "labels", labels);
    }
    json_object_set_new(labels, HASH_LABEL, json_string(hash));
    json_t *sel = skiff_json_copy(json_object_get(spec(dep), "selector"));
    json_t *ml = json_object_get(sel, "matchLabels");
    if (!json_is_object(ml)) {
        ml = json_object();
        json_object_set_new(sel, "matchLabels", ml);
    }
    json_object_set_new(ml, HASH_LABEL, json_string(hash));

    json_t *ref = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion", "apps/v1", "kind",
                            "Deployment", "name", run->r->name, "uid", uid_of(dep), "controller",
                            1, "blockOwnerDeletion", 1);
    json_t *rs = json_pack("{s:s, s:s, s:{s:s, s:s, s:O, s:[o]}, s:{s:i, s:o, s:o}}",
                           "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", "name",
                           name, "namespace", run->r->ns, "labels", labels, "ownerReferences",
                           ref, "spec", "replicas", replicas, "selector", sel, "template", t);
    json_t *mrs = json_object_get(spec(dep), "minReadySeconds");
    if (json_is_integer(mrs)) json_object_set(spec(rs), "minReadySeconds", mrs);
    copy_annotations(dep, rs);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)(max_old_revision(run) + 1));
    set_str(annotations(rs), ANN_REVISION, buf);
    set_int_annotation(rs, ANN_DESIRED, run->replicas);
    set_int_annotation(rs, ANN_MAX, run->replicas + run->max_surge);

    create_ctx_t *cc = calloc(1, sizeof *cc);
    if (!cc) {
        json_decref(rs);
        run->failed = 1;
        run_release(run);
        return;
    }
    cc->run = run;
    cc->replicas = replicas;
    snprintf(cc->name, sizeof cc->name, "%s", name);
    run->pending++;
    if (skiff_client_create(run->ctl->ctx->client, &rs_res, run->r->ns, rs, NULL, on_rs_created,
                            cc) < 0) {
        run->pending--;
        run->failed = 1;
        free(cc);
    }
    json_decref(rs);
    run_release(run);
}

/* Deletes old ReplicaSets beyond revisionHistoryLimit that are scaled
 * down and settled (Kubernetes' cleanupDeployment). 1 when any went. */
static int cleanup_history(dep_run_t *run)
{
    json_t *lim = json_object_get(spec(run->dep), "revisionHistoryLimit");
    if (!json_is_integer(lim)) return 0;
    json_t *alive = json_array();
    size_t i;
    json_t *rs;
    json_array_foreach(run->olds, i, rs)
        if (!being_deleted(rs)) json_array_append(alive, rs);
    int diff = (int)json_array_size(alive) - (int)json_integer_value(lim);
    int any = 0;
    if (diff > 0) {
        json_t *by_rev = sorted(alive, cmp_revision);
        for (int k = 0; k < diff; k++) {
            rs = json_array_get(by_rev, (size_t)k);
            json_int_t gen = json_integer_value(json_object_get(meta(rs), "generation"));
            if (rs_stat(rs, "replicas") != 0 || rs_spec(rs) != 0 ||
                gen > rs_stat(rs, "observedGeneration"))
                continue;
            char wk[320];
            rs_wait_key(wk, sizeof wk, rs);
            write_ctx_t *w = write_ctx(run, wk, NULL, NULL);
            if (!w) break;
            w->is_delete = 1;
            skiff_write_opts_t o = {.grace_period_seconds = -1};
            issued(run, w, skiff_client_delete(run->ctl->ctx->client, &rs_res, run->r->ns,
                                               name_of(rs), &o, on_written, w));
            any = 1;
        }
        json_decref(by_rev);
    }
    json_decref(alive);
    return any;
}

/* ---- the strategies ------------------------------------------------------------------------ */

static int active_count(const json_t *rss)
{
    int n = 0;
    size_t i;
    json_t *rs;
    json_array_foreach(rss, i, rs) n += rs_spec(rs) > 0;
    return n;
}

/* Resizing without a template change (Kubernetes' scale()): one active
 * ReplicaSet takes the whole size; otherwise the difference is spread in
 * proportion. 1 when writes went out. */
static int scale(dep_run_t *run)
{
    json_t *target = NULL;
    int active = active_count(run->rss);
    if (active == 1) {
        size_t i;
        json_t *rs;
        json_array_foreach(run->rss, i, rs) if (rs_spec(rs) > 0) target = rs;
    } else if (active == 0) {
        target = run->new_rs ? run->new_rs
                             : json_array_get(run->olds, json_array_size(run->olds) - 1);
    }
    if (target || active <= 1) {
        if (!target || rs_spec(target) == run->replicas) return 0;
        return scale_rs(run, target, run->replicas);
    }
    /* saturated new ReplicaSet: the old ones go to zero */
    json_t *nrs = run->new_rs;
    if (nrs && rs_spec(nrs) == run->replicas && annotation(nrs, ANN_DESIRED) &&
        atoi(annotation(nrs, ANN_DESIRED)) == run->replicas &&
        rs_stat(nrs, "availableReplicas") == run->replicas) {
        int any = 0;
        size_t i;
        json_t *rs;
        json_array_foreach(run->olds, i, rs) if (rs_spec(rs) > 0) any |= scale_rs(run, rs, 0);
        return any;
    }
    if (!run->rolling) return 0;
    size_t n = json_array_size(run->rss), k = 0;
    dep_rs_t *v = calloc(n ? n : 1, sizeof *v);
    json_t **objs = calloc(n ? n : 1, sizeof *objs);
    if (!v || !objs) {
        free(v);
        free(objs);
        return 0;
    }
    size_t i;
    json_t *rs;
    json_array_foreach(run->rss, i, rs)
    {
        if (rs_spec(rs) <= 0) continue;
        const char *mx = annotation(rs, ANN_MAX);
        v[k] = (dep_rs_t){name_of(rs), created_of(rs), rs_spec(rs),
                          rs_stat(rs, "availableReplicas"), mx ? atoi(mx) : -1};
        objs[k++] = rs;
    }
    dep_proportional_scale(v, k, run->replicas, run->max_surge,
                           (int)st_int(json_object_get(run->dep, "status"), "replicas"));
    int any = 0;
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < k; b++)
            if (strcmp(v[a].name, name_of(objs[b])) == 0) any |= scale_rs(run, objs[b], v[a].spec);
    free(v);
    free(objs);
    return any;
}

/* A scaling event: an active ReplicaSet was sized for another replicas. */
static int is_scaling_event(const dep_run_t *run)
{
    size_t i;
    json_t *rs;
    json_array_foreach(run->rss, i, rs)
    {
        if (rs_spec(rs) <= 0) continue;
        const char *d = annotation(rs, ANN_DESIRED);
        if (d && atoi(d) != run->replicas) return 1;
    }
    return 0;
}

static void sync_scale(dep_run_t *run, int paused)
{
    if (!scale(run) && paused) cleanup_history(run);
    finish_plain(run);
}

/* dep_rs_t views of the old ReplicaSets (oldest first). */
static dep_rs_t *old_views(dep_run_t *run, size_t *n)
{
    *n = json_array_size(run->olds);
    dep_rs_t *v = calloc(*n ? *n : 1, sizeof *v);
    if (!v) return NULL;
    size_t i;
    json_t *rs;
    json_array_foreach(run->olds, i, rs)
        v[i] = (dep_rs_t){name_of(rs), created_of(rs), rs_spec(rs), rs_available(rs), -1};
    return v;
}

static int apply_old_views(dep_run_t *run, const dep_rs_t *v, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *rs = json_array_get(run->olds, i);
        if (v[i].spec != rs_spec(rs)) any |= scale_rs(run, rs, v[i].spec);
    }
    return any;
}

static void rollout_rolling(dep_run_t *run)
{
    if (!run->new_rs) {
        int total = sum_spec(run->rss);
        create_new_rs(run, dep_new_rs_replicas(1, run->replicas, run->max_surge, total, 0));
        return;
    }
    /* the new ReplicaSet grows as far as the surge allows */
    json_t *nrs = run->new_rs;
    int want = rs_spec(nrs) > run->replicas
                   ? run->replicas
                   : dep_new_rs_replicas(1, run->replicas, run->max_surge, sum_spec(run->rss),
                                         rs_spec(nrs));
    if (want != rs_spec(nrs)) {
        scale_rs(run, nrs, want);
        finish_rollout(run);
        return;
    }
    /* the old ones shrink as far as availability allows */
    size_t n;
    dep_rs_t *v = old_views(run, &n);
    int old_total = 0;
    for (size_t i = 0; v && i < n; i++) old_total += v[i].spec;
    if (v && old_total > 0) {
        int all = sum_spec(run->rss);
        int min_available = run->replicas - run->max_unavailable;
        int new_unavailable = rs_spec(nrs) - rs_available(nrs);
        int max_down = all - min_available - new_unavailable;
        if (max_down > 0) {
            dep_cleanup_unhealthy(v, n, max_down);
            dep_scale_down_old(v, n, sum_available(run->rss), min_available);
            if (apply_old_views(run, v, n)) {
                free(v);
                finish_rollout(run);
                return;
            }
        }
    }
    free(v);
    if (complete(run, json_object_get(run->dep, "status"))) cleanup_history(run);
    finish_rollout(run);
}

/* Old pods still running (not Succeeded/Failed), or counted by an old
 * ReplicaSet's status. */
static int old_pods_running(dep_run_t *run)
{
    size_t i, j;
    json_t *rs, *pod;
    json_array_foreach(run->olds, i, rs)
    {
        if (rs_stat(rs, "replicas") > 0) return 1;
        json_t *pods = skiff_informer_list_owner(pod_cache(run->ctl), uid_of(rs));
        int running = 0;
        json_array_foreach(pods, j, pod)
        {
            if (!skiff_is_controlled_by(pod, uid_of(rs))) continue;
            const char *phase = str2(pod, "status", "phase");
            if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
                continue;
            running = 1;
        }
        json_decref(pods);
        if (running) return 1;
    }
    return 0;
}

static void rollout_recreate(dep_run_t *run)
{
    int any = 0;
    size_t i;
    json_t *rs;
    json_array_foreach(run->olds, i, rs) if (rs_spec(rs) > 0) any |= scale_rs(run, rs, 0);
    if (any || old_pods_running(run)) {
        finish_rollout(run);
        return;
    }
    if (!run->new_rs) {
        create_new_rs(run, run->replicas);
        return;
    }
    if (rs_spec(run->new_rs) != run->replicas) {
        scale_rs(run, run->new_rs, run->replicas);
        finish_rollout(run);
        return;
    }
    if (complete(run, json_object_get(run->dep, "status"))) cleanup_history(run);
    finish_rollout(run);
}

/* ---- the reconcile --------------------------------------------------------------------------- */

static void dep_reconcile(skiff_reconcile_t *r)
{
    dep_ctl_t *ctl = r->data;
    json_t *dep = skiff_informer_get(skiff_controller_informer(ctl->c), r->key);
    if (!dep) {
        json_object_del(ctl->waits, r->key);
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    if (!caught_up(ctl, r->key, r->ns)) {
        /* the events of our last writes are on their way and requeue us */
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, 1000, 0});
        return;
    }
    dep_run_t *run = calloc(1, sizeof *run);
    if (!run) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_ENOMEM});
        return;
    }
    ctl->runs++;
    run->ctl = ctl;
    run->r = r;
    run->dep = json_incref(dep);
    run->rss = json_array();
    run->pending = 1;
    run->res = (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE};
    json_t *st = json_object_get(dep, "status");
    run->status = json_is_object(st) ? skiff_json_copy(st) : json_object();

    json_t *sp = spec(dep);
    run->replicas = get_int(dep, "spec", "replicas", 1);
    json_t *strategy = json_object_get(sp, "strategy");
    const char *type = json_string_value(json_object_get(strategy, "type"));
    run->rolling = !type || strcmp(type, "Recreate") != 0;
    json_t *ru = json_object_get(strategy, "rollingUpdate");
    json_t *surge_v = json_object_get(ru, "maxSurge");
    json_t *unav_v = json_object_get(ru, "maxUnavailable");
    json_t *dflt = json_string("25%");
    run->max_surge = dep_max_surge(run->rolling, surge_v ? surge_v : dflt,
                                   unav_v ? unav_v : dflt, run->replicas);
    run->max_unavailable = dep_max_unavailable(run->rolling, surge_v ? surge_v : dflt,
                                               unav_v ? unav_v : dflt, run->replicas);
    json_decref(dflt);

    json_t *sel = json_object_get(sp, "selector");
    if (json_object_size(sel) == 0 || skiff_label_selector_matches(sel, NULL) < 0) {
        /* Kubernetes refuses such a Deployment at validation */
        if (json_integer_value(json_object_get(st, "observedGeneration")) !=
            json_integer_value(json_object_get(meta(dep), "generation"))) {
            skiff_event_record(ctl->events, dep, "Warning", "SelectingAll",
                               "This deployment is selecting all pods. A non-empty selector is "
                               "required.");
            json_object_set_new(run->status, "observedGeneration",
                                json_integer(json_integer_value(
                                    json_object_get(meta(dep), "generation"))));
            write_status(run);
        }
        run_release(run);
        return;
    }
    if (claim_replicasets(run) > 0) {
        run->olds = json_array();
        run_release(run);
        return;
    }
    find_new_and_old(run);
    if (being_deleted(dep)) {
        finish_plain(run);
        return;
    }

    int paused = json_is_true(json_object_get(sp, "paused"));
    const char *preason = cond_reason(run->status, "Progressing");
    if (paused && (!preason || strcmp(preason, "DeploymentPaused") != 0))
        set_cond(run, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused");
    else if (!paused && preason && strcmp(preason, "DeploymentPaused") == 0)
        set_cond(run, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed");

    if (sync_revision(run)) {
        /* the next round sees the annotations in the caches */
        finish_plain(run);
        return;
    }
    if (paused || is_scaling_event(run)) {
        sync_scale(run, paused);
        return;
    }
    if (run->rolling) rollout_rolling(run);
    else rollout_recreate(run);
}

/* ---- plugin life cycle ------------------------------------------------------------------------ */

static const skiff_controller_watch_t dep_watches[] = {
    {.resource = {"apps", "v1", "replicasets", NULL}, .map = map_rs},
    {.resource = {"", "v1", "pods", NULL}, .map = map_pod},
};

static const skiff_controller_desc_t dep_desc = {
    .name = "deployment",
    .primary = {"apps", "v1", "deployments", NULL},
    .primary_opts = {.resync_ms = 30000},
    .primary_kind = "Deployment",
    .primary_api_version = "apps/v1",
    .secondary = dep_watches,
    .n_secondary = 2,
    .reconcile = dep_reconcile,
};

/* kube-controller-manager's --concurrent-deployment-syncs */
static const skiff_setting_t dep_settings[] = {
    {"workers", SKIFF_SETTING_INT, "4", "Deployments synced at once"},
    {NULL, 0, NULL, NULL},
};

static int dep_start(skiff_plugin_ctx_t *ctx)
{
    dep_ctl_t *ctl = calloc(1, sizeof *ctl);
    if (!ctl) return SKIFF_ENOMEM;
    ctl->ctx = ctx;
    ctl->waits = json_object();
    ctl->events = skiff_event_recorder_new(ctx->client, COMPONENT);
    ctl->desc = dep_desc;
    ctl->desc.data = ctl;
    ctl->desc.workers = controller_workers_setting(ctx);
    int rc = SKIFF_EINVAL;
    if (ctl->desc.workers < 1) goto fail;
    rc = SKIFF_ENOMEM;
    if (!ctl->waits || !ctl->events) goto fail;
    skiff_controller_transform_t pods_view = skiff_pod_view_transform(1);
    rc = skiff_controller_new_transformed(ctx, ctx->informers, &ctl->desc, &pods_view, 1,
                                          &ctl->c);
    if (rc < 0) goto fail;
    ctx->plugin_data = ctl;
    rc = skiff_controller_start(ctl->c);
    if (rc < 0) ctx->log(ctx, SKIFF_LOG_ERROR, "cannot start: %s", skiff_strerror(rc));
    return rc;
fail:
    ctl_free(ctl);
    return rc;
}

static void dep_stop(skiff_plugin_ctx_t *ctx)
{
    dep_ctl_t *ctl = ctx->plugin_data;
    if (!ctl) return;
    ctx->plugin_data = NULL;
    ctl->stopped = 1;
    skiff_controller_free(ctl->c);
    if (ctl->runs == 0) ctl_free(ctl);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-deployment",
    .version = "1",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "Deployment controller: rolling update and recreate over ReplicaSets",
    .settings = dep_settings,
    .start = dep_start,
    .stop = dep_stop,
};
