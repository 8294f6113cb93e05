/* plugins/controllers/garbage-collector/garbage_collector.c - the garbage
 * collector: deletes objects whose owners are gone, and carries out the
 * Foreground and Orphan deletion of owners (Kubernetes'
 * pkg/controller/garbagecollector, same rules, our own design).
 *
 * It watches every resource discovery lists with list, watch and delete
 * (events excepted), through the shared informers (packed metadata
 * informers but for pods), and keeps one index: uid -> resource, key and
 * deletion state (uid_index.h). Dependents of a uid come from each
 * informer's owner index. The work queue holds uids; handling one looks at
 * the object as cached now:
 *  - being deleted with the `orphan` finalizer: every dependent loses its
 *    ownerReference to it, then the finalizer is removed;
 *  - being deleted with `foregroundDeletion`: its dependents are queued
 *    (each is deleted, or loses the reference if another owner keeps it),
 *    and once no dependent with blockOwnerDeletion is left the finalizer
 *    is removed, so the API server deletes it;
 *  - otherwise, with ownerReferences: each owner is solid (exists),
 *    dangling (absent: no object with that uid, or a namespaced owner in
 *    another namespace), or waiting (itself in foreground deletion). An
 *    owner not in the caches is looked up with a GET before it is called
 *    absent. With a solid owner the dangling and waiting references are
 *    removed; without one the object is deleted (in Foreground when a
 *    waiting owner needs its own dependents gone first).
 * Deleting an owner makes its dependents' uids queued again, so deletion
 * cascades. It never decides before every cache has its first list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>

#include "uid_index.h"


#define GC_WORKERS 64
#define GC_REDISCOVER_MS 30000
#define GC_SYNC_POLL_MS 50
/* How long to wait for every cache's first list before acting anyway: an
 * owner missing from a cache is looked up with a GET, so a cache that cannot
 * list (a broken resource) only costs GETs, it must not stop collection. */
#define GC_SYNC_WAIT_MS 10000
/* uids seen deleted are remembered as absent owners; past this many the
 * set starts over (a forgotten uid costs one GET) */
#define GC_ABSENT_MAX 50000

typedef struct gc gc_t;

typedef struct gc_resource {
    gc_t *gc;
    char *group, *version, *resource, *kind;
    int namespaced;
    skiff_resource_t res;
    skiff_informer_t *inf;
    int hid;
} gc_resource_t;

struct gc {
    skiff_plugin_ctx_t *ctx;
    gc_resource_t **res;
    size_t n_res;
    json_t *kinds;  /* "group/Kind" -> {"resource", "version", "namespaced"} (every version) */
    uid_index_t *uids; /* every object cached, by uid */
    json_t *absent; /* uid -> true */
    skiff_workqueue_t *q;
    skiff_event_recorder_t *rec;
    uv_timer_t timer;
    int inflight;   /* items being handled */
    int calls;      /* discovery runs in flight */
    int rediscover; /* a CRD changed while discovery ran: run it again */
    int stopping;
    int timer_closed;
    int discovered; /* a first discovery has given the resources */
    int64_t sync_deadline_ms;
    int sync_gave_up;
};

/* ---- small helpers ---------------------------------------------------------------- */

static json_t *meta(const json_t *o) { return json_object_get(o, "metadata"); }

static const char *meta_str(const json_t *o, const char *f)
{
    return json_string_value(json_object_get(meta(o), f));
}

static int has_finalizer(const json_t *o, const char *f)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(meta(o), "finalizers"), i, v)
    {
        if (json_string_value(v) && strcmp(json_string_value(v), f) == 0) return 1;
    }
    return 0;
}

static int being_deleted(const json_t *o)
{
    json_t *dt = json_object_get(meta(o), "deletionTimestamp");
    return dt && !json_is_null(dt);
}

static int deleting_dependents(const json_t *o)
{
    return being_deleted(o) && has_finalizer(o, "foregroundDeletion");
}

static int orphaning(const json_t *o)
{
    return being_deleted(o) && has_finalizer(o, "orphan");
}

/* "apps/v1" -> group "apps"; "v1" -> "". */
static void api_group(const char *api_version, char *buf, size_t len)
{
    const char *slash = api_version ? strchr(api_version, '/') : NULL;
    if (!slash) {
        snprintf(buf, len, "%s", "");
        return;
    }
    snprintf(buf, len, "%.*s", (int)(slash - api_version), api_version);
}

static json_t *kind_info(gc_t *g, const json_t *ref)
{
    char grp[256], key[512];
    api_group(json_string_value(json_object_get(ref, "apiVersion")), grp, sizeof grp);
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    if (!kind) return NULL;
    snprintf(key, sizeof key, "%s/%s", grp, kind);
    return json_object_get(g->kinds, key);
}

/* ---- the queue and the index ------------------------------------------------------ */

static void enqueue(gc_t *g, const char *uid)
{
    if (!g->stopping && uid && *uid) skiff_workqueue_add(g->q, uid);
}

/* Every cached object naming uid as an owner (new array). With ns set,
 * only those in that namespace: a namespaced owner has no dependents
 * elsewhere. */
static json_t *dependents(gc_t *g, const char *uid, const char *ns)
{
    json_t *all = json_array();
    for (size_t i = 0; i < g->n_res && all; i++) {
        json_t *d = skiff_informer_list_owner(g->res[i]->inf, uid);
        size_t j;
        json_t *o;
        json_array_foreach(d, j, o)
        {
            const char *ons = meta_str(o, "namespace");
            if (ns && *ns && (!ons || strcmp(ons, ns) != 0)) continue;
            json_array_append(all, o);
        }
        json_decref(d);
    }
    return all;
}

/* The reference of dep to owner uid, or NULL. */
static json_t *ref_to(const json_t *dep, const char *uid)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(meta(dep), "ownerReferences"), i, r)
    {
        const char *u = json_string_value(json_object_get(r, "uid"));
        if (u && strcmp(u, uid) == 0) return r;
    }
    return NULL;
}

/* Owners being deleted (Foreground or Orphan) wait on their dependents:
 * when one changes, look at them again. */
static void enqueue_deleting_owners(gc_t *g, const json_t *obj)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(meta(obj), "ownerReferences"), i, r)
    {
        const char *u = json_string_value(json_object_get(r, "uid"));
        const gc_node_t *n = u ? uid_index_get(g->uids, u) : NULL;
        if (n && (n->flags & GC_NODE_DELETING)) enqueue(g, u);
    }
}

static size_t index_of(gc_t *g, const gc_resource_t *r)
{
    size_t idx = 0;
    while (idx < g->n_res && g->res[idx] != r) idx++;
    return idx;
}

static void index_put(gc_t *g, gc_resource_t *r, json_t *obj, const char *uid)
{
    char buf[512];
    int n = skiff_object_key(buf, sizeof buf, obj);
    if (n < 0) return;
    /* names of some kinds (RBAC's) have no length limit */
    char *key = (size_t)n < sizeof buf ? buf : malloc((size_t)n + 1);
    if (key && key != buf) skiff_object_key(key, (size_t)n + 1, obj);
    int flags = (being_deleted(obj) ? GC_NODE_DELETING : 0) |
                (deleting_dependents(obj) ? GC_NODE_DELETING_DEPENDENTS : 0);
    if (!key || uid_index_put(g->uids, uid, (uint32_t)index_of(g, r), key, flags) != 0)
        g->ctx->log(g->ctx, SKIFF_LOG_WARN, "cannot index %s: out of memory", key ? key : uid);
    if (key != buf) free(key);
}

static void discover(gc_t *g);

/* A CustomResourceDefinition written: its resource is served (or no longer
 * is) as soon as the server has taken it, so discovery runs again now
 * rather than at the next periodic run. */
static void crd_changed(gc_resource_t *r)
{
    gc_t *g = r->gc;
    if (strcmp(r->group, "apiextensions.k8s.io") != 0 ||
        strcmp(r->resource, "customresourcedefinitions") != 0)
        return;
    if (g->calls) g->rediscover = 1;
    else discover(g);
}

static void on_add(void *data, json_t *obj)
{
    gc_resource_t *r = data;
    gc_t *g = r->gc;
    const char *uid = meta_str(obj, "uid");
    if (!uid || g->stopping) return;
    crd_changed(r);
    index_put(g, r, obj, uid);
    if (json_array_size(json_object_get(meta(obj), "ownerReferences")) || orphaning(obj) ||
        deleting_dependents(obj))
        enqueue(g, uid);
    enqueue_deleting_owners(g, obj);
}

/* Only what can change a decision queues work: most updates (a pod's
 * status) change neither ownerReferences nor the deletion state. */
static void on_delete(void *data, json_t *obj);

static void on_update(void *data, json_t *old, json_t *obj)
{
    gc_resource_t *r = data;
    gc_t *g = r->gc;
    if (old == obj || g->stopping) return; /* a resync: nothing new */
    const char *uid = meta_str(obj, "uid");
    if (!uid) return;
    const char *old_uid = meta_str(old, "uid");
    if (old_uid && strcmp(old_uid, uid) != 0) {
        /* deleted and created again under the name while the watch was
         * down (a relist): the old object went */
        on_delete(data, old);
        on_add(data, obj);
        return;
    }
    crd_changed(r);
    index_put(g, r, obj, uid);
    int refs_changed = !json_equal(json_object_get(meta(old), "ownerReferences"),
                                   json_object_get(meta(obj), "ownerReferences"));
    int deletion_changed = being_deleted(old) != being_deleted(obj) ||
                           !json_equal(json_object_get(meta(old), "finalizers"),
                                       json_object_get(meta(obj), "finalizers"));
    if (refs_changed || (deletion_changed && (orphaning(obj) || deleting_dependents(obj))))
        enqueue(g, uid);
    if (refs_changed || deletion_changed) {
        /* owners waiting on this dependent, before and after the change */
        enqueue_deleting_owners(g, obj);
        if (refs_changed) enqueue_deleting_owners(g, old);
    }
}

static void on_delete(void *data, json_t *obj)
{
    gc_resource_t *r = data;
    gc_t *g = r->gc;
    const char *uid = meta_str(obj, "uid");
    if (!uid || g->stopping) return;
    uid_index_del(g->uids, uid);
    if (json_object_size(g->absent) >= GC_ABSENT_MAX) json_object_clear(g->absent);
    json_object_set_new(g->absent, uid, json_true());
    /* its dependents may have lost their last owner */
    json_t *deps = dependents(g, uid, NULL);
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d) enqueue(g, meta_str(d, "uid"));
    json_decref(deps);
    enqueue_deleting_owners(g, obj);
}

/* ---- resources from discovery ------------------------------------------------------ */

static int watched(const json_t *res)
{
    const char *group = json_string_value(json_object_get(res, "group"));
    const char *name = json_string_value(json_object_get(res, "resource"));
    if (!json_is_true(json_object_get(res, "preferred"))) return 0;
    /* Kubernetes' garbage collector ignores Events */
    if (name && strcmp(name, "events") == 0 &&
        (!group || !*group || strcmp(group, "events.k8s.io") == 0))
        return 0;
    return skiff_resource_has_verb(res, "list") && skiff_resource_has_verb(res, "watch") &&
           skiff_resource_has_verb(res, "delete");
}

static int known(gc_t *g, const char *group, const char *resource)
{
    for (size_t i = 0; i < g->n_res; i++)
        if (strcmp(g->res[i]->group, group) == 0 && strcmp(g->res[i]->resource, resource) == 0)
            return 1;
    return 0;
}

static void resource_free(gc_resource_t *r)
{
    if (!r) return;
    free(r->group);
    free(r->version);
    free(r->resource);
    free(r->kind);
    free(r);
}

static void add_resource(gc_t *g, const json_t *res)
{
    const char *group = json_string_value(json_object_get(res, "group"));
    const char *version = json_string_value(json_object_get(res, "version"));
    const char *name = json_string_value(json_object_get(res, "resource"));
    const char *kind = json_string_value(json_object_get(res, "kind"));
    if (!group || !version || !name || !kind || known(g, group, name)) return;
    gc_resource_t *r = calloc(1, sizeof *r);
    gc_resource_t **grown = realloc(g->res, (g->n_res + 1) * sizeof *grown);
    if (grown) g->res = grown;
    if (!r || !grown) {
        free(r);
        return;
    }
    r->gc = g;
    r->group = strdup(group);
    r->version = strdup(version);
    r->resource = strdup(name);
    r->kind = strdup(kind);
    r->namespaced = json_is_true(json_object_get(res, "namespaced"));
    if (!r->group || !r->version || !r->resource || !r->kind) {
        resource_free(r);
        return;
    }
    r->res = (skiff_resource_t){r->group, r->version, r->resource, NULL};
    /* the collector reads only metadata: pods through the reduced copies
     * the workload controllers share, everything else through packed
     * metadata informers (a ConfigMap or a Secret whole costs several
     * times its metadata, and that metadata as a tree ten times its text;
     * the collector reads few of them) */
    int pods = !*r->group && strcmp(r->resource, "pods") == 0;
    skiff_informer_opts_t o = {.packed = !pods};
    if (skiff_informer_factory_get_transformed(
            g->ctx->informers, &r->res, &o, pods ? SKIFF_POD_VIEW_ID : SKIFF_METADATA_VIEW_ID,
            pods ? skiff_pod_view : skiff_metadata_view, NULL, &r->inf) != 0) {
        resource_free(r);
        return;
    }
    g->res[g->n_res++] = r;
    skiff_informer_handler_t h = {on_add, on_update, on_delete, r};
    int id = skiff_informer_add_handler(r->inf, &h);
    r->hid = id > 0 ? id : 0;
    skiff_informer_start(r->inf);
}

static void gc_maybe_free(gc_t *g);

static void on_discovered(void *data, json_t *resources, const char *error)
{
    gc_t *g = data;
    g->calls--;
    if (g->stopping) {
        gc_maybe_free(g);
        return;
    }
    if (error)
        g->ctx->log(g->ctx, SKIFF_LOG_WARN, "discovery incomplete: %s; retrying in %d s", error,
                    GC_REDISCOVER_MS / 1000);
    size_t i, before = g->n_res;
    json_t *res;
    json_array_foreach(resources, i, res)
    {
        const char *group = json_string_value(json_object_get(res, "group"));
        const char *kind = json_string_value(json_object_get(res, "kind"));
        char key[512];
        snprintf(key, sizeof key, "%s/%s", group ? group : "", kind ? kind : "");
        /* the preferred version wins the kind's mapping */
        if (kind && (!json_object_get(g->kinds, key) || json_is_true(json_object_get(res, "preferred"))))
            json_object_set_new(g->kinds, key,
                                json_pack("{s:O, s:O, s:O}", "resource",
                                          json_object_get(res, "resource"), "version",
                                          json_object_get(res, "version"), "namespaced",
                                          json_object_get(res, "namespaced")));
        if (watched(res)) add_resource(g, res);
    }
    if (g->n_res > before) {
        /* new caches: wait a while for their first list */
        g->sync_deadline_ms = skiff_now_ms() + GC_SYNC_WAIT_MS;
        g->sync_gave_up = 0;
    }
    if (json_array_size(resources) > 0 && !g->discovered) {
        g->discovered = 1;
        g->ctx->log(g->ctx, SKIFF_LOG_INFO, "watching %zu resources for ownerReferences",
                    g->n_res);
    }
    skiff_workqueue_kick(g->q);
    if (g->rediscover) {
        g->rediscover = 0;
        discover(g);
    }
}

static void discover(gc_t *g)
{
    if (g->stopping || g->calls) return;
    g->calls++;
    if (skiff_discover_resources(g->ctx->client, on_discovered, g) != 0) g->calls--;
}

static void on_timer(uv_timer_t *t)
{
    discover(t->data);
}

/* ---- handling one uid --------------------------------------------------------------- */

typedef struct gc_work gc_work_t;

struct gc_work {
    gc_t *g;
    const char *key; /* the queue's: valid until skiff_workqueue_done */
    json_t *obj;     /* the object as cached when the work began */
    gc_resource_t *r;
    json_t *live;    /* owner uid -> object found by GET, or null when absent */
    int pending;
    int failed;      /* a call failed: look again after a back-off */
    void (*then)(gc_work_t *w);
};

static void gc_maybe_free(gc_t *g);
static void pump(void *data);

static void work_end(gc_work_t *w)
{
    gc_t *g = w->g;
    if (!g->stopping) {
        if (w->failed) skiff_workqueue_add_rate_limited(g->q, w->key);
        else skiff_workqueue_forget(g->q, w->key);
        skiff_workqueue_done(g->q, w->key);
    }
    json_decref(w->obj);
    json_decref(w->live);
    free(w);
    g->inflight--;
    if (g->stopping) gc_maybe_free(g);
    else skiff_workqueue_kick(g->q);
}

/* Client calls of a work item: when the last one answers, `then` runs. */
static void call_done(gc_work_t *w)
{
    if (--w->pending > 0) return;
    if (w->g->stopping || !w->then) {
        work_end(w);
        return;
    }
    void (*then)(gc_work_t *) = w->then;
    w->then = NULL;
    then(w);
}

static void start_calls(gc_work_t *w, void (*then)(gc_work_t *))
{
    w->then = then;
    w->pending++; /* held while the calls are made */
}

static void end_calls(gc_work_t *w)
{
    call_done(w);
}

static void on_written(void *data, int status, json_t *obj)
{
    gc_work_t *w = data;
    /* 404: already gone, which is what was wanted; 409: changed meanwhile */
    if (status != 0 && (status < 200 || status >= 300) && status != 404) {
        w->failed = 1;
        if (status != 409 && !w->g->stopping) /* the key is the queue's: gone after stop */
            w->g->ctx->log(w->g->ctx, SKIFF_LOG_WARN, "write for %s failed with status %d: %s",
                           w->key, status,
                           json_string_value(json_object_get(obj, "message")) ?: "no answer");
    } else if (status == 0) {
        w->failed = 1;
    }
    call_done(w);
}

static void patch_metadata(gc_work_t *w, gc_resource_t *r, const json_t *obj, const char *field,
                           json_t *value)
{
    /* resourceVersion makes the patch conditional: what was read is what
     * is changed, or 409 and a fresh look */
    json_t *p = json_pack("{s:{s:s?, s:o}}", "metadata", "resourceVersion",
                          meta_str(obj, "resourceVersion"), field, value ? value : json_null());
    char *body = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    w->pending++;
    const char *ns = meta_str(obj, "namespace");
    skiff_write_opts_t o = {.grace_period_seconds = -1, .field_manager = "garbage-collector"};
    int e = body ? skiff_client_patch(w->g->ctx->client, &r->res, r->namespaced ? ns : NULL,
                                      meta_str(obj, "name"), SKIFF_PATCH_MERGE, body, &o,
                                      on_written, w)
                 : SKIFF_ENOMEM;
    free(body);
    if (e < 0) {
        w->failed = 1;
        w->pending--;
    }
}

/* The object's ownerReferences without those whose uid is in drop. */
static json_t *refs_without(const json_t *obj, const json_t *drop)
{
    json_t *keep = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(meta(obj), "ownerReferences"), i, r)
    {
        const char *u = json_string_value(json_object_get(r, "uid"));
        if (!u || !json_object_get(drop, u)) json_array_append(keep, r);
    }
    if (json_array_size(keep) == 0) {
        json_decref(keep);
        return NULL; /* null in a merge patch: the field goes */
    }
    return keep;
}

static json_t *finalizers_without(const json_t *obj, const char *f)
{
    json_t *keep = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(meta(obj), "finalizers"), i, v)
    {
        if (!json_string_value(v) || strcmp(json_string_value(v), f) != 0)
            json_array_append(keep, v);
    }
    if (json_array_size(keep) == 0) {
        json_decref(keep);
        return NULL;
    }
    return keep;
}

/* The resource of the object with uid, or NULL when none is cached; its
 * object too when obj is set (a new reference: a packed informer's parse,
 * which nothing else holds). */
static gc_resource_t *resource_of(gc_t *g, const char *uid, json_t **obj)
{
    const gc_node_t *n = uid_index_get(g->uids, uid);
    gc_resource_t *r = n && n->res < g->n_res ? g->res[n->res] : NULL;
    if (obj) {
        *obj = r ? skiff_informer_get_ref(r->inf, gc_node_key(n)) : NULL;
        const char *u = meta_str(*obj, "uid");
        if (!u || strcmp(u, uid) != 0) { /* the name has a new object */
            json_decref(*obj);
            *obj = NULL;
        }
    }
    return r;
}

static void delete_object(gc_work_t *w, const char *policy)
{
    const char *ns = meta_str(w->obj, "namespace");
    /* the uid as a precondition: never a new object that took the name */
    skiff_write_opts_t o = {.propagation_policy = policy, .grace_period_seconds = -1,
                            .precondition_uid = meta_str(w->obj, "uid")};
    w->pending++;
    int e = skiff_client_delete(w->g->ctx->client, &w->r->res, w->r->namespaced ? ns : NULL,
                                meta_str(w->obj, "name"), &o, on_written, w);
    if (e < 0) {
        w->failed = 1;
        w->pending--;
    }
}

/* ---- an owner being deleted ---------------------------------------------------------- */

static void finish_removing(gc_work_t *w, const char *finalizer)
{
    patch_metadata(w, w->r, w->obj, "finalizers", finalizers_without(w->obj, finalizer));
}

static void after_orphaning(gc_work_t *w)
{
    if (w->failed) {
        work_end(w);
        return;
    }
    /* every dependent let go of it: the owner may go */
    start_calls(w, work_end);
    finish_removing(w, "orphan");
    end_calls(w);
}

static void orphan_dependents(gc_work_t *w)
{
    const char *uid = meta_str(w->obj, "uid");
    json_t *deps = dependents(w->g, uid, NULL);
    json_t *drop = json_pack("{s:b}", uid, 1);
    start_calls(w, after_orphaning);
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        gc_resource_t *dr = resource_of(w->g, meta_str(d, "uid"), NULL);
        if (dr) patch_metadata(w, dr, d, "ownerReferences", refs_without(d, drop));
    }
    json_decref(drop);
    json_decref(deps);
    end_calls(w);
}

static void delete_dependents_first(gc_work_t *w)
{
    const char *uid = meta_str(w->obj, "uid");
    const char *ns = w->r->namespaced ? meta_str(w->obj, "namespace") : NULL;
    json_t *deps = dependents(w->g, uid, ns);
    int blocking = 0;
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        json_t *ref = ref_to(d, uid);
        if (json_is_true(json_object_get(ref, "blockOwnerDeletion"))) blocking++;
        /* each dependent decides: deleted, or freed of this reference */
        if (!being_deleted(d) || deleting_dependents(d)) enqueue(w->g, meta_str(d, "uid"));
    }
    json_decref(deps);
    if (blocking) {
        /* a dependent's deletion queues this owner again */
        work_end(w);
        return;
    }
    start_calls(w, work_end);
    finish_removing(w, "foregroundDeletion");
    end_calls(w);
}

/* ---- a dependent: are its owners there? ------------------------------------------------- */

/* OWNER_ELSEWHERE: a namespaced owner with that uid lives in another
 * namespace; it counts as absent, and a Warning Event says why. */
enum { OWNER_SOLID, OWNER_DANGLING, OWNER_WAITING, OWNER_UNKNOWN, OWNER_INVALID, OWNER_ELSEWHERE };

static int owner_state(gc_work_t *w, const json_t *ref)
{
    gc_t *g = w->g;
    const char *uid = json_string_value(json_object_get(ref, "uid"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    const char *dep_ns = meta_str(w->obj, "namespace");
    json_t *ki = kind_info(g, ref);
    if (!uid || !name || !ki) return OWNER_INVALID;
    int owner_namespaced = json_is_true(json_object_get(ki, "namespaced"));
    /* a cluster-scoped object cannot be owned by a namespaced one */
    if (owner_namespaced && !w->r->namespaced) return OWNER_INVALID;
    const gc_node_t *owner = uid_index_get(g->uids, uid);
    if (owner && owner->res < g->n_res) {
        /* the key: "ns/name", or "name" for a cluster-scoped owner */
        const char *okey = gc_node_key(owner), *slash = strchr(okey, '/');
        const char *oname = slash ? slash + 1 : okey;
        size_t ons_len = slash ? (size_t)(slash - okey) : 0;
        /* ownerReferences have no namespace: a namespaced owner is looked
         * for in the dependent's, and one elsewhere counts as absent */
        if (owner_namespaced &&
            (!slash || !dep_ns || strlen(dep_ns) != ons_len || strncmp(okey, dep_ns, ons_len) != 0))
            return OWNER_ELSEWHERE;
        if (strcmp(oname, name) != 0) return OWNER_DANGLING;
        return (owner->flags & GC_NODE_DELETING_DEPENDENTS) ? OWNER_WAITING : OWNER_SOLID;
    }
    if (json_object_get(g->absent, uid)) return OWNER_DANGLING;
    json_t *live = json_object_get(w->live, uid);
    if (!live) return OWNER_UNKNOWN;
    if (json_is_null(live)) return OWNER_DANGLING;
    return deleting_dependents(live) ? OWNER_WAITING : OWNER_SOLID;
}

typedef struct lookup {
    gc_work_t *w;
    char *uid;
} lookup_t;

static void on_owner_read(void *data, int status, json_t *obj)
{
    lookup_t *l = data;
    gc_work_t *w = l->w;
    if (status == 200) {
        const char *uid = meta_str(obj, "uid");
        /* the same name with another uid: the owner named is gone */
        json_object_set(w->live, l->uid, uid && strcmp(uid, l->uid) == 0 ? obj : json_null());
    } else if (status == 404) {
        json_object_set_new(w->live, l->uid, json_null());
    } else {
        w->failed = 1;
    }
    free(l->uid);
    free(l);
    call_done(w);
}

static void look_up_owner(gc_work_t *w, const json_t *ref)
{
    gc_t *g = w->g;
    json_t *ki = kind_info(g, ref);
    const char *uid = json_string_value(json_object_get(ref, "uid"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    char grp[256];
    api_group(json_string_value(json_object_get(ref, "apiVersion")), grp, sizeof grp);
    skiff_resource_t res = {grp, json_string_value(json_object_get(ki, "version")),
                            json_string_value(json_object_get(ki, "resource")), NULL};
    lookup_t *l = calloc(1, sizeof *l);
    if (!l || !(l->uid = strdup(uid))) {
        free(l);
        w->failed = 1;
        return;
    }
    l->w = w;
    w->pending++;
    const char *ns = json_is_true(json_object_get(ki, "namespaced")) ? meta_str(w->obj, "namespace")
                                                                     : NULL;
    int e = skiff_client_get(g->ctx->client, &res, ns, name, on_owner_read, l);
    if (e < 0) {
        w->pending--;
        w->failed = 1;
        free(l->uid);
        free(l);
    }
}

static void decide(gc_work_t *w);

static void after_lookups(gc_work_t *w)
{
    if (w->failed) work_end(w);
    else decide(w);
}

static void report_invalid(gc_work_t *w, const json_t *ref)
{
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    json_t *ki = kind_info(w->g, ref);
    if (!ki) {
        /* the kind may not be served yet (a CRD being added): look again later */
        w->g->ctx->log(w->g->ctx, SKIFF_LOG_WARN,
                       "%s: ownerReference to %s %s: kind %s/%s is not served; not collected",
                       w->key, kind ? kind : "?", name ? name : "?",
                       json_string_value(json_object_get(ref, "apiVersion")) ?: "?",
                       kind ? kind : "?");
        w->failed = 1;
        return;
    }
    skiff_event_record(w->g->rec, w->obj, "Warning", "OwnerRefInvalidNamespace",
                       "ownerRef [%s, namespace: %s, name: %s, uid: %s] does not exist in "
                       "namespace \"%s\"",
                       kind ? kind : "", meta_str(w->obj, "namespace") ?: "", name ? name : "",
                       json_string_value(json_object_get(ref, "uid")) ?: "",
                       meta_str(w->obj, "namespace") ?: "");
}

static void decide(gc_work_t *w)
{
    json_t *refs = json_object_get(meta(w->obj), "ownerReferences");
    int solid = 0, waiting = 0, unknown = 0, invalid = 0;
    json_t *drop = json_object();
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const char *uid = json_string_value(json_object_get(ref, "uid"));
        int st = owner_state(w, ref);
        if (st == OWNER_SOLID) solid++;
        else if (st == OWNER_INVALID) invalid++;
        else if (st == OWNER_UNKNOWN) unknown++;
        else {
            if (st == OWNER_WAITING) waiting++;
            if (st == OWNER_ELSEWHERE) report_invalid(w, ref);
            if (uid) json_object_set_new(drop, uid, json_true());
        }
    }
    if (unknown) {
        json_decref(drop);
        start_calls(w, after_lookups);
        json_array_foreach(refs, i, ref) if (owner_state(w, ref) == OWNER_UNKNOWN) look_up_owner(w, ref);
        end_calls(w);
        return;
    }
    if (invalid) {
        json_array_foreach(refs, i, ref) if (owner_state(w, ref) == OWNER_INVALID) report_invalid(w, ref);
    }
    if (solid || invalid) {
        /* kept by an owner: only references to absent owners, and to owners
         * waiting for their dependents, are dropped */
        if (json_object_size(drop) == 0) {
            json_decref(drop);
            work_end(w);
            return;
        }
        start_calls(w, work_end);
        patch_metadata(w, w->r, w->obj, "ownerReferences", refs_without(w->obj, drop));
        json_decref(drop);
        end_calls(w);
        return;
    }
    json_decref(drop);
    const char *uid = meta_str(w->obj, "uid");
    json_t *deps = dependents(w->g, uid, w->r->namespaced ? meta_str(w->obj, "namespace") : NULL);
    int has_deps = json_array_size(deps) > 0;
    json_decref(deps);
    const char *policy = "Background";
    if (waiting && has_deps) policy = "Foreground"; /* its own dependents go first */
    else if (has_finalizer(w->obj, "orphan")) policy = "Orphan";
    else if (has_finalizer(w->obj, "foregroundDeletion")) policy = "Foreground";
    w->g->ctx->log(w->g->ctx, SKIFF_LOG_DEBUG, "deleting %s %s/%s (%s): its owners are gone",
                   w->r->kind, meta_str(w->obj, "namespace") ?: "", meta_str(w->obj, "name"),
                   policy);
    start_calls(w, work_end);
    delete_object(w, policy);
    end_calls(w);
}

static void handle(gc_t *g, const char *key)
{
    gc_work_t *w = calloc(1, sizeof *w);
    json_t *obj = NULL;
    gc_resource_t *r = resource_of(g, key, &obj);
    if (!w || !(w->live = json_object())) {
        free(w);
        json_decref(obj);
        skiff_workqueue_done(g->q, key);
        skiff_workqueue_add_rate_limited(g->q, key);
        return;
    }
    g->inflight++;
    w->g = g;
    w->key = key;
    if (!r || !obj) {
        /* gone: its dependents were queued when it went */
        work_end(w);
        return;
    }
    w->r = r;
    w->obj = obj;
    if (orphaning(obj)) orphan_dependents(w);
    else if (deleting_dependents(obj)) delete_dependents_first(w);
    else if (being_deleted(obj) || json_array_size(json_object_get(meta(obj), "ownerReferences")) == 0)
        work_end(w);
    else decide(w);
}

static int all_synced(gc_t *g)
{
    if (!g->discovered) return 0;
    if (g->sync_gave_up) return 1;
    for (size_t i = 0; i < g->n_res; i++) {
        if (skiff_informer_has_synced(g->res[i]->inf)) continue;
        if (skiff_now_ms() < g->sync_deadline_ms) return 0;
        g->sync_gave_up = 1;
        g->ctx->log(g->ctx, SKIFF_LOG_WARN,
                    "%s%s%s has not listed after %d s; collecting without waiting for it",
                    g->res[i]->group, g->res[i]->group[0] ? "/" : "", g->res[i]->resource,
                    GC_SYNC_WAIT_MS / 1000);
        return 1;
    }
    return 1;
}

static void on_sync_poll(uv_timer_t *t)
{
    gc_t *g = t->data;
    skiff_workqueue_kick(g->q);
    uv_timer_start(&g->timer, on_timer, GC_REDISCOVER_MS, GC_REDISCOVER_MS);
}

static void pump(void *data)
{
    gc_t *g = data;
    if (g->stopping) return;
    if (!all_synced(g)) {
        /* a partial cache would make owners look absent */
        if (g->discovered) uv_timer_start(&g->timer, on_sync_poll, GC_SYNC_POLL_MS, 0);
        return;
    }
    const char *key;
    while (!g->stopping && g->inflight < GC_WORKERS && skiff_workqueue_get(g->q, &key) == 0)
        handle(g, key);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static void gc_maybe_free(gc_t *g)
{
    if (!g->stopping || !g->timer_closed || g->inflight || g->calls) return;
    for (size_t i = 0; i < g->n_res; i++) resource_free(g->res[i]);
    free(g->res);
    json_decref(g->kinds);
    uid_index_free(g->uids);
    json_decref(g->absent);
    free(g);
}

static void on_timer_closed(uv_handle_t *h)
{
    gc_t *g = h->data;
    g->timer_closed = 1;
    gc_maybe_free(g);
}

static int gc_start(skiff_plugin_ctx_t *ctx)
{
    if (!ctx->client || !ctx->informers) return SKIFF_EINVAL;
    gc_t *g = calloc(1, sizeof *g);
    if (!g) return SKIFF_ENOMEM;
    g->ctx = ctx;
    g->kinds = json_object();
    g->uids = uid_index_new();
    g->absent = json_object();
    skiff_workqueue_opts_t qo = {.base_delay_ms = 50, .max_delay_ms = 30000};
    if (!g->kinds || !g->uids || !g->absent ||
        skiff_workqueue_new(ctx->loop, &qo, pump, g, &g->q) != 0) {
        json_decref(g->kinds);
        uid_index_free(g->uids);
        json_decref(g->absent);
        free(g);
        return SKIFF_ENOMEM;
    }
    g->rec = skiff_event_recorder_new(ctx->client, "garbage-collector-controller");
    uv_timer_init(ctx->loop, &g->timer);
    g->timer.data = g;
    uv_timer_start(&g->timer, on_timer, GC_REDISCOVER_MS, GC_REDISCOVER_MS);
    ctx->plugin_data = g;
    discover(g);
    return 0;
}

static void gc_stop(skiff_plugin_ctx_t *ctx)
{
    gc_t *g = ctx->plugin_data;
    if (!g) return;
    ctx->plugin_data = NULL;
    g->stopping = 1;
    /* the informers are shared and stay; only our handlers go */
    for (size_t i = 0; i < g->n_res; i++)
        if (g->res[i]->hid) skiff_informer_remove_handler(g->res[i]->inf, g->res[i]->hid);
    skiff_workqueue_free(g->q);
    g->q = NULL;
    skiff_event_recorder_free(g->rec);
    g->rec = NULL;
    uv_timer_stop(&g->timer);
    uv_close((uv_handle_t *)&g->timer, on_timer_closed);
}

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "controller-garbage-collector",
    .version = "1.0.0",
    .kind = SKIFF_PLUGIN_CONTROLLER,
    .description = "deletes objects whose owners are gone; Foreground and Orphan deletion",
    .start = gc_start,
    .stop = gc_stop,
};
