/* plugins/controllers/job/job.c - the Job controller (controller-job): runs
 * a Job's pods to completion the way Kubernetes' job-controller does.
 *
 * Pods are counted exactly once through the batch.kubernetes.io/job-tracking
 * finalizer, as Kubernetes does: every pod is created with it; a pod that
 * finished is first written into status.uncountedTerminatedPods, then its
 * finalizer is removed, then it moves into status.succeeded/failed. A pod
 * deleted by hand is therefore still counted. Indexed Jobs keep
 * status.completedIndexes instead of uids. Terminal conditions come in two
 * steps (SuccessCriteriaMet / FailureTarget, then Complete / Failed once no
 * pod is left running), as in Kubernetes 1.31. This file talks to the API
 * only through the SDK client; the pure helpers are in job_util.c. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>

#include "../common/workers_setting.h"
#include "job_util.h"

#define TRACKING_FINALIZER "batch.kubernetes.io/job-tracking"
#define INDEX_KEY "batch.kubernetes.io/job-completion-index"
#define EXPECT_TIMEOUT_MS (30 * 1000)
#define MSG_BACKOFF "Job has reached the specified backoff limit"
#define MSG_DEADLINE "Job was active longer than specified deadline"
#define MSG_COMPLETIONS "Reached expected number of succeeded pods"

static const skiff_resource_t jobs_res = {"batch", "v1", "jobs", NULL};
static const skiff_resource_t jobs_status_res = {"batch", "v1", "jobs", "status"};
static const skiff_resource_t pods_res = {"", "v1", "pods", NULL};

typedef struct job_ctl {
    skiff_plugin_ctx_t *ctx;
    skiff_controller_t *c;
    skiff_controller_desc_t desc;
    skiff_controller_watch_t watch;
    skiff_event_recorder_t *rec;
    skiff_informer_t *jobs, *pods;
    int job_handler;
    int64_t backoff_base_ms, backoff_max_ms;
    /* Pods created or deleted but not yet seen in the cache, per Job key:
     * {"add": {name: deadline_ms}, "del": {uid: deadline_ms}}. Until the
     * cache shows them, the Job's pods are not managed (client-go's
     * expectations). */
    json_t *expect;
    /* Consecutive pod failures per Job uid: {"n": count, "at": ms}. */
    json_t *failures;
    int refs; /* the plugin, reconciles in flight, background writes */
    int stopping;
} job_ctl_t;

static void ctl_unref(job_ctl_t *jc)
{
    if (--jc->refs > 0) return;
    json_decref(jc->expect);
    json_decref(jc->failures);
    free(jc);
}

/* Events go out only while running: after stop the recorder is gone. */
#define record(jc, ...)                                                                          \
    do {                                                                                         \
        if (!(jc)->stopping) skiff_event_record((jc)->rec, __VA_ARGS__);                         \
    } while (0)

/* ---- small JSON helpers ------------------------------------------------------------ */

static json_t *at(const json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    return b ? json_object_get(v, b) : v;
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    return json_string_value(at(o, a, b));
}

static int64_t int_at(const json_t *o, const char *a, const char *b, int64_t def)
{
    json_t *v = at(o, a, b);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static int finalizer_index(const json_t *pod)
{
    size_t i;
    json_t *f;
    json_array_foreach(at(pod, "metadata", "finalizers"), i, f)
    {
        const char *s = json_string_value(f);
        if (s && strcmp(s, TRACKING_FINALIZER) == 0) return (int)i;
    }
    return -1;
}

static int uid_in(const json_t *arr, const char *uid)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strcmp(s, uid) == 0) return 1;
    }
    return 0;
}

static int64_t pod_index(const json_t *pod)
{
    return job_parse_index(str_at(at(pod, "metadata", NULL), "annotations", INDEX_KEY));
}

static int64_t time_at(const json_t *o, const char *a, const char *b)
{
    const char *s = str_at(o, a, b);
    return s ? skiff_time_parse(s) : -1;
}

/* ---- background writes (not tied to a reconcile) ------------------------------------ */

static void on_bg_write(void *data, int status, json_t *obj)
{
    job_ctl_t *jc = data;
    if (status != 200 && status != 201 && status != 404 && !jc->stopping)
        jc->ctx->log(jc->ctx, SKIFF_LOG_WARN, "removing a pod's tracking finalizer: HTTP %d",
                     status);
    ctl_unref(jc);
}

/* JSON patch that removes our finalizer only if it is still where we saw it. */
static char *finalizer_patch(int idx)
{
    char *p = NULL;
    if (asprintf(&p,
                 "[{\"op\":\"test\",\"path\":\"/metadata/finalizers/%d\",\"value\":\"%s\"},"
                 "{\"op\":\"remove\",\"path\":\"/metadata/finalizers/%d\"}]",
                 idx, TRACKING_FINALIZER, idx) < 0)
        return NULL;
    return p;
}

/* A pod whose Job is gone keeps nothing waiting: drop its finalizer. */
static void release_orphan(job_ctl_t *jc, const json_t *pod)
{
    int idx = finalizer_index(pod);
    if (idx < 0) return;
    char *patch = finalizer_patch(idx);
    if (!patch) return;
    jc->refs++;
    if (skiff_client_patch(jc->ctx->client, &pods_res, str_at(pod, "metadata", "namespace"),
                           str_at(pod, "metadata", "name"), SKIFF_PATCH_JSON, patch, NULL,
                           on_bg_write, jc) != 0)
        ctl_unref(jc);
    free(patch);
}

/* ---- mapping pods to Jobs ----------------------------------------------------------- */

static void map_pod(void *data, skiff_controller_t *c, json_t *pod)
{
    job_ctl_t *jc = data;
    json_t *ref = skiff_controller_ref(pod);
    const char *kind = str_at(ref, "kind", NULL), *name = str_at(ref, "name", NULL);
    const char *api = str_at(ref, "apiVersion", NULL);
    if (!kind || !name || !api || strcmp(kind, "Job") != 0 || strncmp(api, "batch/", 6) != 0)
        return;
    char key[512];
    snprintf(key, sizeof key, "%s/%s", str_at(pod, "metadata", "namespace"), name);
    skiff_controller_enqueue(c, key);
    if (jc->stopping || finalizer_index(pod) < 0 || !skiff_informer_has_synced(jc->jobs)) return;
    json_t *job = skiff_informer_get(jc->jobs, key);
    const char *juid = str_at(job, "metadata", "uid"), *ruid = str_at(ref, "uid", NULL);
    if (!job || !juid || !ruid || strcmp(juid, ruid) != 0) release_orphan(jc, pod);
}

/* A deleted Job's pods are released at once (the garbage collector then
 * deletes them without waiting on us). */
static void on_job_deleted(void *data, json_t *job)
{
    job_ctl_t *jc = data;
    const char *uid = str_at(job, "metadata", "uid");
    if (!uid || jc->stopping) return;
    json_object_del(jc->failures, uid);
    json_t *pods = skiff_informer_list_owner(jc->pods, uid);
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p) if (skiff_is_controlled_by(p, uid)) release_orphan(jc, p);
    json_decref(pods);
}

/* ---- one sync ------------------------------------------------------------------------ */

typedef struct sync {
    job_ctl_t *jc;
    skiff_reconcile_t *r;
    json_t *job;       /* our copy */
    json_t *status;    /* the status to write, or NULL when unchanged */
    json_t *creates;   /* pods to create */
    json_t *deletes;   /* [name, ...] pods to delete */
    json_t *releases;  /* [[name, finalizer index], ...]: after the status write */
    json_t *events;    /* [[type, reason, message], ...]: after the status write */
    int delete_job;    /* ttlSecondsAfterFinished expired */
    int pending;
    int error;
    int64_t requeue_ms; /* -1: none */
} sync_t;

static void sync_requeue(sync_t *s, int64_t ms)
{
    if (ms < 0) return;
    if (s->requeue_ms < 0 || ms < s->requeue_ms) s->requeue_ms = ms;
}

static void sync_finish(sync_t *s)
{
    skiff_reconcile_result_t res = {SKIFF_RECONCILE_DONE, 0, 0};
    if (s->error) res = (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, s->error};
    else if (s->requeue_ms >= 0)
        res = (skiff_reconcile_result_t){SKIFF_RECONCILE_REQUEUE_AFTER, s->requeue_ms, 0};
    job_ctl_t *jc = s->jc;
    skiff_reconcile_done(s->r, res);
    json_decref(s->job);
    json_decref(s->status);
    json_decref(s->creates);
    json_decref(s->deletes);
    json_decref(s->releases);
    json_decref(s->events);
    free(s);
    ctl_unref(jc);
}

static void sync_op_done(sync_t *s)
{
    if (--s->pending == 0) sync_finish(s);
}

static json_t *expect_for(job_ctl_t *jc, const char *key)
{
    json_t *e = json_object_get(jc->expect, key);
    if (!e) {
        e = json_pack("{s:{}, s:{}}", "add", "del");
        json_object_set_new(jc->expect, key, e);
    }
    return e;
}

typedef struct op {
    sync_t *s;
    char name[256];
    char uid[64];
} op_t;

static op_t *op_new(sync_t *s, const char *name, const char *uid)
{
    op_t *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->s = s;
    snprintf(o->name, sizeof o->name, "%s", name ? name : "");
    snprintf(o->uid, sizeof o->uid, "%s", uid ? uid : "");
    s->pending++;
    return o;
}

static void on_pod_created(void *data, int status, json_t *obj)
{
    op_t *o = data;
    sync_t *s = o->s;
    job_ctl_t *jc = s->jc;
    if (status == 201) {
        const char *name = str_at(obj, "metadata", "name");
        if (name && !jc->stopping)
            json_object_set_new(json_object_get(expect_for(jc, s->r->key), "add"), name,
                                json_integer(skiff_now_ms() + EXPECT_TIMEOUT_MS));
        if (name) record(jc, s->job, "Normal", "SuccessfulCreate",
                                     "Created pod: %s", name);
    } else {
        record(jc, s->job, "Warning", "FailedCreate", "Error creating: %s",
               skiff_answer_message(obj));
        if (!s->error) s->error = status == 409 ? SKIFF_ECONFLICT : SKIFF_EIO;
    }
    free(o);
    sync_op_done(s);
}

static void on_pod_deleted(void *data, int status, json_t *obj)
{
    op_t *o = data;
    sync_t *s = o->s;
    job_ctl_t *jc = s->jc;
    if (status == 200 || status == 202) {
        if (!jc->stopping && o->uid[0])
            json_object_set_new(json_object_get(expect_for(jc, s->r->key), "del"), o->uid,
                                json_integer(skiff_now_ms() + EXPECT_TIMEOUT_MS));
        record(jc, s->job, "Normal", "SuccessfulDelete", "Deleted pod: %s",
                           o->name);
    } else if (status != 404) {
        record(jc, s->job, "Warning", "FailedDelete", "Error deleting: %s",
               skiff_answer_message(obj));
        if (!s->error) s->error = SKIFF_EIO;
    }
    free(o);
    sync_op_done(s);
}

static void on_released(void *data, int status, json_t *obj)
{
    sync_t *s = data;
    /* 404: gone already. 422/409: the finalizer was already removed or
     * moved (the cache was behind): look again shortly, no error. */
    if (status == 409 || status == 422) sync_requeue(s, 500);
    else if (status != 200 && status != 404 && !s->error) s->error = SKIFF_EIO;
    sync_op_done(s);
}

static void on_job_deleted_ttl(void *data, int status, json_t *obj)
{
    sync_t *s = data;
    if (status != 200 && status != 202 && status != 404 && !s->error) s->error = SKIFF_EIO;
    sync_op_done(s);
}

/* Pods, finalizers and the TTL delete: after the status is written. */
static void sync_act(sync_t *s)
{
    job_ctl_t *jc = s->jc;
    skiff_client_t *cl = jc->ctx->client;
    const char *ns = s->r->ns;
    size_t i;
    json_t *v;
    s->pending++; /* held while issuing */
    json_array_foreach(s->events, i, v)
        record(jc, s->job, json_string_value(json_array_get(v, 0)),
                           json_string_value(json_array_get(v, 1)), "%s",
                           json_string_value(json_array_get(v, 2)));
    json_array_foreach(s->releases, i, v)
    {
        char *patch = finalizer_patch((int)json_integer_value(json_array_get(v, 1)));
        if (!patch) continue;
        s->pending++;
        if (skiff_client_patch(cl, &pods_res, ns, json_string_value(json_array_get(v, 0)),
                               SKIFF_PATCH_JSON, patch, NULL, on_released, s) != 0) {
            s->pending--;
            s->error = SKIFF_EIO;
        }
        free(patch);
    }
    json_array_foreach(s->deletes, i, v)
    {
        op_t *o = op_new(s, json_string_value(json_array_get(v, 0)),
                         json_string_value(json_array_get(v, 1)));
        if (!o) continue;
        skiff_write_opts_t del = {.grace_period_seconds = -1};
        if (skiff_client_delete(cl, &pods_res, ns, o->name, &del, on_pod_deleted, o) != 0) {
            s->pending--;
            free(o);
            s->error = SKIFF_EIO;
        }
    }
    json_array_foreach(s->creates, i, v)
    {
        op_t *o = op_new(s, NULL, NULL);
        if (!o) continue;
        if (skiff_client_create(cl, &pods_res, ns, v, NULL, on_pod_created, o) != 0) {
            s->pending--;
            free(o);
            s->error = SKIFF_EIO;
        }
    }
    if (s->delete_job) {
        skiff_write_opts_t del = {.grace_period_seconds = -1, .propagation_policy = "Background"};
        s->pending++;
        if (skiff_client_delete(cl, &jobs_res, ns, s->r->name, &del, on_job_deleted_ttl, s) != 0) {
            s->pending--;
            s->error = SKIFF_EIO;
        }
    }
    sync_op_done(s);
}

static void on_status_written(void *data, int status, json_t *obj)
{
    sync_t *s = data;
    if (status != 200) {
        s->error = status == 409 ? SKIFF_ECONFLICT : status == 404 ? 0 : SKIFF_EIO;
        if (status == 404) s->requeue_ms = -1;
        sync_finish(s);
        return;
    }
    json_decref(s->job);
    s->job = json_incref(obj);
    sync_act(s);
}

/* ---- computing what a Job needs ------------------------------------------------------ */

typedef struct counts {
    json_t *active;      /* active pods (borrowed from the cache) */
    int64_t ready, terminating, restarts;
} counts_t;

/* Is the key's expectation met (every pod we created is in the cache,
 * every pod we deleted gone or terminating)? Expired entries are dropped. */
static int expectations_met(job_ctl_t *jc, const char *key, const char *ns, int64_t now)
{
    json_t *e = json_object_get(jc->expect, key);
    if (!e) return 1;
    const char *k;
    json_t *v;
    void *tmp;
    json_t *add = json_object_get(e, "add"), *del = json_object_get(e, "del");
    json_object_foreach_safe(add, tmp, k, v)
    {
        char pk[512];
        snprintf(pk, sizeof pk, "%s/%s", ns, k);
        if (skiff_informer_get(jc->pods, pk) || json_integer_value(v) < now)
            json_object_del(add, k);
    }
    json_object_foreach_safe(del, tmp, k, v)
    {
        int gone = 1;
        if (json_integer_value(v) >= now) {
            json_t *pods = skiff_informer_list_namespace(jc->pods, ns);
            size_t i;
            json_t *p;
            json_array_foreach(pods, i, p)
            {
                const char *uid = str_at(p, "metadata", "uid");
                if (uid && strcmp(uid, k) == 0 && !at(p, "metadata", "deletionTimestamp")) gone = 0;
            }
            json_decref(pods);
        }
        if (gone) json_object_del(del, k);
    }
    if (json_object_size(add) == 0 && json_object_size(del) == 0) {
        json_object_del(jc->expect, key);
        return 1;
    }
    return 0;
}

/* A new pod for the Job (index -1: NonIndexed). */
static json_t *pod_for(const json_t *job, int64_t index)
{
    const json_t *tmpl = at(at(job, "spec", NULL), "template", NULL);
    const json_t *tm = json_object_get(tmpl, "metadata");
    const char *jname = str_at(job, "metadata", "name");
    const char *jns = str_at(job, "metadata", "namespace");
    json_t *labels = json_is_object(at(tm, "labels", NULL)) ? skiff_json_copy(at(tm, "labels", NULL))
                                                          : json_object();
    json_t *ann = json_is_object(at(tm, "annotations", NULL))
                      ? skiff_json_copy(at(tm, "annotations", NULL))
                      : json_object();
    json_t *spec = json_is_object(json_object_get(tmpl, "spec"))
                       ? skiff_json_copy(json_object_get(tmpl, "spec"))
                       : json_object();
    char gen[300], idx[32];
    if (index >= 0) {
        snprintf(idx, sizeof idx, "%lld", (long long)index);
        snprintf(gen, sizeof gen, "%s-%s-", jname, idx);
        json_object_set_new(labels, INDEX_KEY, json_string(idx));
        json_object_set_new(ann, INDEX_KEY, json_string(idx));
        if (!str_at(spec, "hostname", NULL)) {
            char host[300];
            snprintf(host, sizeof host, "%s-%s", jname, idx);
            json_object_set_new(spec, "hostname", json_string(host));
        }
        /* every container learns its index from the annotation, as in Kubernetes */
        static const char *const lists[] = {"initContainers", "containers"};
        for (int l = 0; l < 2; l++) {
            size_t i;
            json_t *c;
            json_array_foreach(json_object_get(spec, lists[l]), i, c)
            {
                json_t *env = json_object_get(c, "env");
                if (!json_is_array(env)) {
                    env = json_array();
                    json_object_set_new(c, "env", env);
                }
                size_t j;
                json_t *e;
                int have = 0;
                json_array_foreach(env, j, e)
                {
                    const char *n = str_at(e, "name", NULL);
                    if (n && strcmp(n, "JOB_COMPLETION_INDEX") == 0) have = 1;
                }
                if (!have)
                    json_array_append_new(
                        env, json_pack("{s:s, s:{s:{s:s}}}", "name", "JOB_COMPLETION_INDEX",
                                       "valueFrom", "fieldRef", "fieldPath",
                                       "metadata.annotations['" INDEX_KEY "']"));
            }
        }
    } else {
        snprintf(gen, sizeof gen, "%s-", jname);
    }
    json_t *ref = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion", "batch/v1", "kind",
                            "Job", "name", jname, "uid", str_at(job, "metadata", "uid"),
                            "controller", 1, "blockOwnerDeletion", 1);
    json_t *meta = json_pack("{s:s, s:s, s:o, s:[o], s:[s]}", "generateName", gen, "namespace",
                             jns, "labels", labels, "ownerReferences", ref, "finalizers",
                             TRACKING_FINALIZER);
    if (json_object_size(ann)) json_object_set_new(meta, "annotations", ann);
    else json_decref(ann);
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", meta,
                     "spec", spec);
}

static void add_event(sync_t *s, const char *type, const char *reason, const char *msg)
{
    json_array_append_new(s->events, json_pack("[s,s,s]", type, reason, msg));
}

/* Sets a condition in st (a status object) through the SDK helper, which
 * works on an object with a status. */
static int set_cond(json_t *st, const char *type, const char *status, const char *reason,
                    const char *msg)
{
    json_t *wrap = json_pack("{s:O}", "status", st);
    int rc = skiff_condition_set(wrap, type, status, reason, msg, 0);
    json_decref(wrap);
    return rc;
}

static const char *cond_status(json_t *st, const char *type)
{
    json_t *wrap = json_pack("{s:O}", "status", st);
    const char *s = skiff_condition_status(wrap, type);
    json_decref(wrap);
    return s; /* the strings are constants inside the condition, still held by st */
}

static json_t *cond_get(json_t *st, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(st, "conditions"), i, c)
    {
        const char *t = str_at(c, "type", NULL);
        if (t && strcmp(t, type) == 0) return c;
    }
    return NULL;
}

static int cond_true(json_t *st, const char *type)
{
    const char *s = cond_status(st, type);
    return s && strcmp(s, "True") == 0;
}

static void set_count(json_t *st, const char *field, int64_t v, int always)
{
    if (v || always) json_object_set_new(st, field, json_integer(v));
    else json_object_del(st, field);
}

/* Sorts candidates for deletion: not yet running before running, not
 * ready before ready, newest first (ReplicaSet-like ranking). */
static int rank_for_delete(const void *a, const void *b)
{
    const json_t *pa = *(json_t *const *)a, *pb = *(json_t *const *)b;
    const char *pha = str_at(pa, "status", "phase"), *phb = str_at(pb, "status", "phase");
    int ra = pha && strcmp(pha, "Running") == 0, rb = phb && strcmp(phb, "Running") == 0;
    if (ra != rb) return ra - rb;
    int ya = skiff_pod_is_ready(pa), yb = skiff_pod_is_ready(pb);
    if (ya != yb) return ya - yb;
    const char *ca = str_at(pa, "metadata", "creationTimestamp");
    const char *cb = str_at(pb, "metadata", "creationTimestamp");
    return -strcmp(ca ? ca : "", cb ? cb : "");
}

static void delete_pod(sync_t *s, const json_t *pod)
{
    json_array_append_new(s->deletes, json_pack("[s,s]", str_at(pod, "metadata", "name"),
                                                str_at(pod, "metadata", "uid")));
}

static void job_sync(skiff_reconcile_t *r)
{
    job_ctl_t *jc = r->data;
    json_t *cached = skiff_informer_get(jc->jobs, r->key);
    if (!cached || jc->stopping) {
        json_object_del(jc->expect, r->key);
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE, 0, 0});
        return;
    }
    sync_t *s = calloc(1, sizeof *s);
    if (!s) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_ERROR, 0, SKIFF_ENOMEM});
        return;
    }
    jc->refs++;
    s->jc = jc;
    s->r = r;
    s->requeue_ms = -1;
    s->job = skiff_json_copy(cached);
    s->creates = json_array();
    s->deletes = json_array();
    s->releases = json_array();
    s->events = json_array();
    json_t *job = s->job;
    if (at(job, "metadata", "deletionTimestamp")) {
        /* being deleted (foreground: the garbage collector waits for the
         * pods): nothing new runs and no pod waits on us */
        const char *juid = str_at(job, "metadata", "uid");
        json_t *pods = skiff_informer_list_owner(jc->pods, juid);
        size_t i;
        json_t *p;
        json_array_foreach(pods, i, p)
        {
            int fin = finalizer_index(p);
            if (fin >= 0 && skiff_is_controlled_by(p, juid))
                json_array_append_new(s->releases,
                                      json_pack("[s,i]", str_at(p, "metadata", "name"), fin));
        }
        json_decref(pods);
        sync_act(s);
        return;
    }
    int64_t now = skiff_now_ms();
    const char *uid = str_at(job, "metadata", "uid");
    json_t *spec = json_object_get(job, "spec");
    json_t *old_st = json_is_object(json_object_get(job, "status")) ? json_object_get(job, "status")
                                                                   : NULL;
    json_t *st = old_st ? skiff_json_copy(old_st) : json_object();
    int indexed = str_at(spec, "completionMode", NULL) &&
                  strcmp(str_at(spec, "completionMode", NULL), "Indexed") == 0;
    json_t *compl_v = json_object_get(spec, "completions");
    int has_completions = json_is_integer(compl_v);
    int64_t completions = has_completions ? (int64_t)json_integer_value(compl_v) : -1;
    int64_t parallelism = int_at(spec, "parallelism", NULL, 1);
    int64_t backoff_limit = int_at(spec, "backoffLimit", NULL, 6);
    int suspended = json_is_true(json_object_get(spec, "suspend"));
    const char *restart = str_at(at(at(spec, "template", NULL), "spec", NULL), "restartPolicy", NULL);
    int on_failure = restart && strcmp(restart, "OnFailure") == 0;
    int finished = cond_true(st, "Complete") || cond_true(st, "Failed");

    job_index_set_t done_ix = {0};
    if (job_index_set_init(&done_ix, indexed && has_completions ? completions : 0) != 0) {
        json_decref(st);
        s->error = SKIFF_ENOMEM;
        sync_finish(s);
        return;
    }
    if (indexed) job_index_set_parse(&done_ix, str_at(st, "completedIndexes", NULL));

    /* uncounted pods carried over from the last status */
    json_t *unc = json_object_get(st, "uncountedTerminatedPods");
    json_t *unc_s = json_is_array(at(unc, "succeeded", NULL)) ? skiff_json_copy(at(unc, "succeeded", NULL))
                                                             : json_array();
    json_t *unc_f = json_is_array(at(unc, "failed", NULL)) ? skiff_json_copy(at(unc, "failed", NULL))
                                                          : json_array();
    int64_t succeeded = int_at(st, "succeeded", NULL, 0), failed = int_at(st, "failed", NULL, 0);
    int64_t new_failures = 0, new_successes = 0;

    /* the Job's pods as the cache has them */
    json_t *owned = skiff_informer_list_owner(jc->pods, uid);
    json_t *active = json_array();
    json_t *with_fin = json_object(); /* uid -> 1: pods still holding our finalizer */
    int64_t ready = 0, terminating = 0, restarts = 0;
    size_t i;
    json_t *p;
    json_array_foreach(owned, i, p)
    {
        if (!skiff_is_controlled_by(p, uid)) continue;
        const char *puid = str_at(p, "metadata", "uid");
        const char *phase = str_at(p, "status", "phase");
        int deleting = at(p, "metadata", "deletionTimestamp") != NULL;
        int fin = finalizer_index(p);
        int succ = phase && strcmp(phase, "Succeeded") == 0;
        int fail = phase && strcmp(phase, "Failed") == 0;
        if (!succ && !fail && deleting) {
            terminating++;
            /* A pod deleted before it finished counts as failed (it may never
             * reach the Failed phase), except when the Job was suspended. */
            if (!suspended) fail = 1;
        }
        if (indexed && succ) {
            int64_t ix = pod_index(p);
            if (ix >= 0 && ix < done_ix.n && !done_ix.has[ix]) {
                done_ix.has[ix] = 1;
                if (fin >= 0) new_successes++;
            }
        }
        if (!succ && !fail) {
            if (deleting) {
                if (fin >= 0) json_array_append_new(s->releases, json_pack("[s,i]",
                                                    str_at(p, "metadata", "name"), fin));
                continue;
            }
            json_array_append(active, p);
            if (skiff_pod_is_ready(p)) ready++;
            static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
            for (int l = 0; l < 2; l++) {
                size_t j;
                json_t *cs;
                json_array_foreach(at(p, "status", lists[l]), j, cs)
                    restarts += int_at(cs, "restartCount", NULL, 0);
            }
            continue;
        }
        if (fin < 0 || !puid) continue; /* counted already */
        json_object_set_new(with_fin, puid, json_true());
        if (!uid_in(unc_s, puid) && !uid_in(unc_f, puid)) {
            if (succ) {
                if (!indexed) json_array_append_new(unc_s, json_string(puid));
                new_successes += !indexed;
            } else {
                json_array_append_new(unc_f, json_string(puid));
                new_failures++;
            }
        }
        json_array_append_new(s->releases, json_pack("[s,i]", str_at(p, "metadata", "name"), fin));
    }
    /* uncounted pods whose finalizer is gone move into the counters */
    json_t *lists[2] = {unc_s, unc_f};
    for (int l = 0; l < 2; l++) {
        for (size_t k = json_array_size(lists[l]); k-- > 0;) {
            const char *u = json_string_value(json_array_get(lists[l], k));
            if (u && json_object_get(with_fin, u)) continue;
            if (l == 0) succeeded++;
            else failed++;
            json_array_remove(lists[l], k);
        }
    }
    json_decref(with_fin);
    if (indexed) succeeded = job_index_set_count(&done_ix);

    /* consecutive failures, for the pod creation back-off */
    json_t *rec = json_object_get(jc->failures, uid);
    if (!rec) {
        rec = json_pack("{s:I, s:I}", "n", (json_int_t)0, "at", (json_int_t)0);
        json_object_set_new(jc->failures, uid, rec);
    }
    if (new_successes) json_object_set_new(rec, "n", json_integer(0));
    if (new_failures) {
        json_object_set_new(rec, "n", json_integer(json_integer_value(json_object_get(rec, "n")) +
                                                   new_failures));
        json_object_set_new(rec, "at", json_integer(now));
    }

    int64_t n_active = (int64_t)json_array_size(active);
    int64_t succ_total = succeeded + (int64_t)json_array_size(unc_s);
    int64_t fail_total = failed + (int64_t)json_array_size(unc_f);

    /* startTime, suspension */
    if (!finished) {
        if (suspended) {
            if (set_cond(st, "Suspended", "True", "JobSuspended", "Job suspended") == 1)
                add_event(s, "Normal", "Suspended", "Job suspended");
        } else if (cond_get(st, "Suspended") &&
                   set_cond(st, "Suspended", "False", "JobResumed", "Job resumed") == 1) {
            add_event(s, "Normal", "Resumed", "Job resumed");
            /* activeDeadlineSeconds counts time continuously active */
            char ts[32];
            skiff_time_format(now, ts, sizeof ts);
            json_object_set_new(st, "startTime", json_string(ts));
        }
        if (!suspended && !str_at(st, "startTime", NULL)) {
            char ts[32];
            skiff_time_format(now, ts, sizeof ts);
            json_object_set_new(st, "startTime", json_string(ts));
        }
    }

    if (!finished) {
        int target_fail = cond_true(st, "FailureTarget");
        int target_ok = cond_true(st, "SuccessCriteriaMet");
        if (!target_fail && !target_ok) {
            const char *reason = NULL, *msg = NULL;
            json_t *ads = json_object_get(spec, "activeDeadlineSeconds");
            int64_t start = time_at(st, "startTime", NULL);
            int past_on_failure = on_failure && (backoff_limit == 0 ? restarts > 0
                                                                    : restarts >= backoff_limit);
            if (fail_total > backoff_limit || past_on_failure) {
                reason = "BackoffLimitExceeded";
                msg = MSG_BACKOFF;
            } else if (json_is_integer(ads) && start >= 0 && !suspended) {
                int64_t end = start + (int64_t)json_integer_value(ads) * 1000;
                if (now >= end) {
                    reason = "DeadlineExceeded";
                    msg = MSG_DEADLINE;
                } else {
                    sync_requeue(s, end - now + 10);
                }
            }
            if (reason) {
                set_cond(st, "FailureTarget", "True", reason, msg);
                target_fail = 1;
            } else if ((indexed && has_completions && succeeded >= completions) ||
                       (!indexed && has_completions && succ_total >= completions) ||
                       (!has_completions && succ_total > 0 && n_active == 0)) {
                set_cond(st, "SuccessCriteriaMet", "True", "CompletionsReached", MSG_COMPLETIONS);
                target_ok = 1;
            }
        }
        if (target_fail || target_ok) {
            /* no new pods; the running ones are stopped, then the Job ends */
            json_array_foreach(active, i, p) delete_pod(s, p);
            int settled = n_active == 0 && json_array_size(unc_s) == 0 &&
                          json_array_size(unc_f) == 0 && json_array_size(s->releases) == 0;
            if (settled && target_fail) {
                json_t *ft = cond_get(st, "FailureTarget");
                const char *reason = str_at(ft, "reason", NULL), *msg = str_at(ft, "message", NULL);
                char rbuf[64], mbuf[256];
                snprintf(rbuf, sizeof rbuf, "%s", reason ? reason : "BackoffLimitExceeded");
                snprintf(mbuf, sizeof mbuf, "%s", msg ? msg : MSG_BACKOFF);
                set_cond(st, "Failed", "True", rbuf, mbuf);
                add_event(s, "Warning", rbuf, mbuf);
                finished = 1;
            } else if (settled) {
                set_cond(st, "Complete", "True", "CompletionsReached", MSG_COMPLETIONS);
                char ts[32];
                skiff_time_format(now, ts, sizeof ts);
                json_object_set_new(st, "completionTime", json_string(ts));
                add_event(s, "Normal", "Completed", "Job completed");
                finished = 1;
            }
            n_active = 0;
        } else if (suspended) {
            json_array_foreach(active, i, p) delete_pod(s, p);
            n_active = 0;
        } else if (expectations_met(jc, r->key, r->ns, now)) {
            /* how many pods should run, and which indexes */
            int64_t want;
            if (indexed) want = has_completions ? completions - succeeded : 0;
            else if (has_completions) want = completions - succ_total;
            else want = succ_total > 0 ? 0 : parallelism;
            if (want > parallelism) want = parallelism;
            if (want < 0) want = 0;
            json_t *keep = json_array();
            if (indexed) {
                /* one active pod per unfinished index; extras go */
                job_index_set_t running = {0};
                job_index_set_init(&running, done_ix.n);
                json_array_foreach(active, i, p)
                {
                    int64_t ix = pod_index(p);
                    if (ix < 0 || ix >= done_ix.n || done_ix.has[ix] || !running.has ||
                        running.has[ix])
                        delete_pod(s, p);
                    else {
                        running.has[ix] = 1;
                        json_array_append(keep, p);
                    }
                }
                job_index_set_free(&running);
            } else {
                json_array_extend(keep, active);
            }
            int64_t have = (int64_t)json_array_size(keep);
            if (have > want) {
                size_t nk = json_array_size(keep);
                json_t **v = calloc(nk ? nk : 1, sizeof *v);
                for (size_t k = 0; v && k < nk; k++) v[k] = json_array_get(keep, k);
                if (v) {
                    qsort(v, nk, sizeof *v, rank_for_delete);
                    for (int64_t k = 0; k < have - want; k++) delete_pod(s, v[k]);
                }
                free(v);
                n_active = want;
            } else if (have < want) {
                json_t *r2 = json_object_get(jc->failures, uid);
                int64_t nf = json_integer_value(json_object_get(r2, "n"));
                int64_t last = json_integer_value(json_object_get(r2, "at"));
                int64_t delay = job_backoff_delay_ms(nf, jc->backoff_base_ms, jc->backoff_max_ms);
                if (delay > 0 && now < last + delay) {
                    sync_requeue(s, last + delay - now);
                } else if (indexed) {
                    job_index_set_t busy = {0};
                    job_index_set_init(&busy, done_ix.n);
                    json_array_foreach(keep, i, p)
                    {
                        int64_t ix = pod_index(p);
                        if (busy.has && ix >= 0 && ix < busy.n) busy.has[ix] = 1;
                    }
                    int64_t need = want - have;
                    for (int64_t ix = 0; busy.has && ix < done_ix.n && need > 0; ix++) {
                        if (done_ix.has[ix] || busy.has[ix]) continue;
                        json_array_append_new(s->creates, pod_for(job, ix));
                        need--;
                    }
                    job_index_set_free(&busy);
                } else {
                    for (int64_t k = have; k < want; k++)
                        json_array_append_new(s->creates, pod_for(job, -1));
                }
            }
            json_decref(keep);
        } else {
            /* our own writes are not in the cache yet; look again shortly */
            sync_requeue(s, 1000);
        }
    }

    /* pods of a finished Job keep no finalizer; active ones are stopped */
    if (finished) {
        json_object_del(jc->failures, uid);
        json_array_foreach(active, i, p)
        {
            delete_pod(s, p);
            int fin = finalizer_index(p);
            if (fin >= 0)
                json_array_append_new(s->releases, json_pack("[s,i]", str_at(p, "metadata", "name"), fin));
        }
        n_active = 0;
        json_t *ttl = json_object_get(spec, "ttlSecondsAfterFinished");
        if (json_is_integer(ttl)) {
            int64_t end = time_at(st, "completionTime", NULL);
            if (end < 0) end = time_at(cond_get(st, "Failed"), "lastTransitionTime", NULL);
            if (end < 0) end = time_at(cond_get(st, "Complete"), "lastTransitionTime", NULL);
            if (end < 0) end = now;
            int64_t expire = end + (int64_t)json_integer_value(ttl) * 1000;
            if (now >= expire) s->delete_job = 1;
            else sync_requeue(s, expire - now + 10);
        }
    }

    /* the status as it now stands */
    set_count(st, "active", n_active, 0);
    set_count(st, "succeeded", succeeded, 0);
    set_count(st, "failed", failed, 0);
    set_count(st, "ready", finished ? 0 : ready, 1);
    set_count(st, "terminating", terminating, 1);
    json_t *u = json_object();
    if (json_array_size(unc_s)) json_object_set(u, "succeeded", unc_s);
    if (json_array_size(unc_f)) json_object_set(u, "failed", unc_f);
    json_object_set_new(st, "uncountedTerminatedPods", u);
    if (indexed) {
        char *ci = job_index_set_format(&done_ix);
        if (ci && *ci) json_object_set_new(st, "completedIndexes", json_string(ci));
        else json_object_del(st, "completedIndexes");
        free(ci);
    }
    json_decref(unc_s);
    json_decref(unc_f);
    json_decref(active);
    json_decref(owned);
    job_index_set_free(&done_ix);

    if (old_st && json_equal(old_st, st)) {
        json_decref(st);
        sync_act(s);
        return;
    }
    json_object_set_new(job, "status", st);
    s->pending = 0;
    if (skiff_client_update(jc->ctx->client, &jobs_status_res, r->ns, job, NULL, on_status_written,
                            s) != 0) {
        s->error = SKIFF_EIO;
        sync_finish(s);
    }
}

/* ---- plugin life cycle ----------------------------------------------------------------- */

static const skiff_setting_t job_settings[] = {
    {"backoff-base", SKIFF_SETTING_DURATION, "10s",
     "delay before re-creating a failed pod; doubles per consecutive failure (lower it for tests)"},
    {"backoff-max", SKIFF_SETTING_DURATION, "6m", "cap of the pod re-creation back-off"},
    {"workers", SKIFF_SETTING_INT, "4", "Jobs synced at once"},
    {NULL, 0, NULL, NULL},
};

static int job_start(skiff_plugin_ctx_t *ctx)
{
    int64_t base = job_parse_duration_ms(ctx->setting(ctx, "backoff-base"));
    int64_t max = job_parse_duration_ms(ctx->setting(ctx, "backoff-max"));
    if (base < 0 || max < 0) {
        ctx->log(ctx, SKIFF_LOG_ERROR,
                 "backoff-base and backoff-max must be durations (\"10s\", \"250ms\")");
        return SKIFF_EINVAL;
    }
    int workers = controller_workers_setting(ctx);
    if (workers < 1) return SKIFF_EINVAL;
    job_ctl_t *jc = calloc(1, sizeof *jc);
    if (!jc) return SKIFF_ENOMEM;
    jc->ctx = ctx;
    jc->refs = 1;
    jc->backoff_base_ms = base;
    jc->backoff_max_ms = max;
    jc->expect = json_object();
    jc->failures = json_object();
    jc->watch = (skiff_controller_watch_t){.resource = pods_res, .map = map_pod};
    jc->desc = (skiff_controller_desc_t){
        .name = "job-controller",
        .primary = jobs_res,
        .primary_kind = "Job",
        .primary_api_version = "batch/v1",
        .secondary = &jc->watch,
        .n_secondary = 1,
        .reconcile = job_sync,
        .workers = workers,
        .data = jc,
    };
    jc->rec = skiff_event_recorder_new(ctx->client, "job-controller");
    skiff_controller_transform_t pods_view = skiff_pod_view_transform(0);
    int rc = jc->rec ? skiff_controller_new_transformed(ctx, ctx->informers, &jc->desc,
                                                        &pods_view, 1, &jc->c)
                     : SKIFF_ENOMEM;
    if (rc == 0) {
        jc->jobs = skiff_controller_informer(jc->c);
        jc->pods = skiff_controller_secondary_informer(jc->c, 0);
        skiff_informer_handler_t h = {.on_delete = on_job_deleted, .data = jc};
        jc->job_handler = skiff_informer_add_handler(jc->jobs, &h);
        rc = jc->job_handler < 0 ? jc->job_handler : skiff_controller_start(jc->c);
    }
    ctx->plugin_data = jc;
    if (rc != 0) {
        ctx->log(ctx, SKIFF_LOG_ERROR, "cannot start: %s", skiff_strerror(rc));
        return rc;
    }
    return 0;
}

static void job_stop(skiff_plugin_ctx_t *ctx)
{
    job_ctl_t *jc = ctx->plugin_data;
    if (!jc) return;
    ctx->plugin_data = NULL;
    jc->stopping = 1;
    if (jc->job_handler > 0) skiff_informer_remove_handler(jc->jobs, jc->job_handler);
    if (jc->c) skiff_controller_free(jc->c);
    if (jc->rec) skiff_event_recorder_free(jc->rec);
    ctl_unref(jc);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-job",
    .version = "0.1.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "Jobs: runs pods to completion (completions, parallelism, backoffLimit, "
                   "activeDeadlineSeconds, Indexed mode, suspend, ttlSecondsAfterFinished)",
    .settings = job_settings,
    .start = job_start,
    .stop = job_stop,
};
