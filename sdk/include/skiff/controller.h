/* skiff/controller.h - the reconcile framework: shared informers, a work
 * queue and the controller runner that ties them to a reconcile function.
 *
 * Everything runs on one libuv loop and nothing here blocks it. A
 * controller says only what to do with one key ("ns/name"); the framework
 * decides when: it lists and watches through a skiff_client_t, keeps a
 * local cache, de-duplicates keys, retries failures with back-off and
 * resyncs periodically, as client-go's informers and workqueue do.
 *
 * Objects handed to callbacks are borrowed: json_incref() what must outlive
 * the callback. They are read-only: an informer's objects are shared with
 * every handler and, in the server, with the API server's watch cache;
 * json_deep_copy() one before changing it. Functions return 0 or a negative SKIFF_E* code.
 * Freeing (informer factory, work queue, controller) closes libuv handles:
 * the loop must run afterwards for the memory to be released. */
#ifndef SKIFF_CONTROLLER_H
#define SKIFF_CONTROLLER_H

#include <stdint.h>

#include <jansson.h>
#include <skiff/client.h>
#include <skiff/errors.h>
#include <skiff/plugin.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- shared informers ------------------------------------------------------- */

typedef struct skiff_informer skiff_informer_t;
typedef struct skiff_informer_factory skiff_informer_factory_t;

/* What one informer lists and watches. Strings are copied. */
typedef struct skiff_informer_opts {
    const char *namespace_;     /* NULL or "": every namespace */
    const char *label_selector; /* NULL: none */
    const char *field_selector; /* NULL: none */
    int resync_ms;              /* re-deliver every cached object as an update; 0: never */
    int watch_timeout_s;        /* timeoutSeconds asked of each watch; 0: server default */
    /* 1: keep each cached object as compact JSON text rather than a tree,
     * about a tenth of the memory (a 150-byte metadata view costs 1.5 KB
     * as a tree), paid for by a parse at every read: get, the lists and
     * the old object of an update or a delete are new trees each time.
     * For informers that hold many objects and read few of them (the
     * garbage collector's metadata informers). Packed and unpacked
     * informers of the same objects are two informers. */
    int packed;
} skiff_informer_opts_t;

/* Event handlers. Any member may be NULL. On update, old and new may be the
 * same object (a resync). */
typedef struct skiff_informer_handler {
    void (*on_add)(void *data, json_t *obj);
    void (*on_update)(void *data, json_t *old_obj, json_t *new_obj);
    void (*on_delete)(void *data, json_t *obj);
    void *data;
} skiff_informer_handler_t;

/* What an informer caches for each object it receives (list items, watch
 * events), as client-go's SharedInformer.SetTransform: a new reference,
 * either obj itself (json_incref) or a new, usually smaller, tree; NULL
 * keeps obj. The cache, the indexes and the handlers (old and new objects
 * alike) then see only what it returned. obj is shared and read-only: build
 * a new tree (json_object_set may share obj's members, which are read-only
 * too), never change obj. Keep metadata.name, namespace and
 * resourceVersion, and labels and ownerReferences where list_label and
 * list_owner are used. Runs on the loop for every object; must not block. */
typedef json_t *(*skiff_informer_transform_fn)(void *data, json_t *obj);

/* A factory hands out one informer per (resource, namespace, selectors):
 * several controllers asking for the same get the same informer, so share
 * one list and one watch. The client must outlive the factory. */
int skiff_informer_factory_new(uv_loop_t *loop, skiff_client_t *client,
                               skiff_informer_factory_t **out);
/* The informer for r and opts (created on first use, owned by the factory).
 * A later request with a shorter resync_ms shortens the informer's. */
int skiff_informer_factory_get(skiff_informer_factory_t *f, const skiff_resource_t *r,
                               const skiff_informer_opts_t *opts, skiff_informer_t **out);
/* The informer for r and opts whose objects go through fn (created on
 * first use, owned by the factory). transform_id names the transform: every
 * caller passing the same id gets the same informer, the transform of the
 * first one, so an id must always stand for the same function and data
 * (e.g. "scheduler-default/bound-pods"); callers of
 * skiff_informer_factory_get never get a transformed informer. fn and data
 * must stay valid until the factory is freed. */
int skiff_informer_factory_get_transformed(skiff_informer_factory_t *f,
                                           const skiff_resource_t *r,
                                           const skiff_informer_opts_t *opts,
                                           const char *transform_id,
                                           skiff_informer_transform_fn fn, void *data,
                                           skiff_informer_t **out);
/* Starts every informer not started yet (informers got later start when
 * this is called again, or with skiff_informer_start). */
int skiff_informer_factory_start(skiff_informer_factory_t *f);
/* 1 when every informer of the factory has synced. */
int skiff_informer_factory_has_synced(const skiff_informer_factory_t *f);
/* Stops and frees every informer; the loop must run to finish it. */
void skiff_informer_factory_free(skiff_informer_factory_t *f);

/* A stand-alone informer (the factory uses the same calls). */
int skiff_informer_new(uv_loop_t *loop, skiff_client_t *client, const skiff_resource_t *r,
                       const skiff_informer_opts_t *opts, skiff_informer_t **out);
/* Sets a stand-alone informer's transform (NULL: none); SKIFF_EINVAL once
 * started. */
int skiff_informer_set_transform(skiff_informer_t *inf, skiff_informer_transform_fn fn,
                                 void *data);
/* Begins the list, then the watch. Idempotent. */
int skiff_informer_start(skiff_informer_t *inf);
/* Stops watching and frees; no handler runs after this returns. */
void skiff_informer_free(skiff_informer_t *inf);

/* Registers a handler; returns its id (> 0) or a SKIFF_E* code. If the
 * informer already holds objects, on_add runs for each of them before this
 * returns, as client-go does for a late handler. */
int skiff_informer_add_handler(skiff_informer_t *inf, const skiff_informer_handler_t *h);
void skiff_informer_remove_handler(skiff_informer_t *inf, int id);

/* 1 once the first list is in the cache. */
int skiff_informer_has_synced(const skiff_informer_t *inf);
/* The resourceVersion the informer has seen last ("" before the list). */
const char *skiff_informer_resource_version(const skiff_informer_t *inf);
/* How many lists and watches the informer has started (for tests and
 * metrics). */
void skiff_informer_stats(const skiff_informer_t *inf, int *lists, int *watches);

/* Cache key of an object: "ns/name", or "name" for a cluster-scoped one,
 * written into buf; the length it needs (like snprintf) or SKIFF_EINVAL. */
int skiff_object_key(char *buf, size_t len, json_t *obj);

/* A cached object by key (borrowed: valid until the informer next handles
 * an event, even when packed), or NULL. On the loop only: a packed
 * informer holds the tree it parsed for the caller until that event. */
json_t *skiff_informer_get(const skiff_informer_t *inf, const char *key);
/* The same as a new reference (the caller json_decref()s it): what a
 * reader of a packed informer uses outside its event handlers (a work
 * queue's worker), so that no parsed tree is held for it. */
json_t *skiff_informer_get_ref(const skiff_informer_t *inf, const char *key);
/* New JSON arrays (the caller json_decref()s them) of cached objects:
 * all; those in a namespace; those with label key=value; those whose
 * metadata.ownerReferences name the uid. */
json_t *skiff_informer_list(const skiff_informer_t *inf);
json_t *skiff_informer_list_namespace(const skiff_informer_t *inf, const char *ns);
json_t *skiff_informer_list_label(const skiff_informer_t *inf, const char *key,
                                  const char *value);
json_t *skiff_informer_list_owner(const skiff_informer_t *inf, const char *uid);

/* ---- work queue ------------------------------------------------------------------ */

typedef struct skiff_workqueue skiff_workqueue_t;

typedef struct skiff_workqueue_opts {
    int64_t base_delay_ms; /* first back-off; 0: 5 ms */
    int64_t max_delay_ms;  /* back-off cap; 0: 1000 s */
    double qps;            /* overall token bucket for rate-limited adds; 0: none */
    int burst;             /* bucket size; 0: 1 (with qps) */
} skiff_workqueue_opts_t;

/* on_ready runs (from the loop, never inside a queue call) after keys became
 * available or skiff_workqueue_kick was called: take them with
 * skiff_workqueue_get. */
int skiff_workqueue_new(uv_loop_t *loop, const skiff_workqueue_opts_t *opts,
                        void (*on_ready)(void *data), void *data, skiff_workqueue_t **out);
/* Queues key unless it is already waiting; a key being processed is queued
 * again only when skiff_workqueue_done is called for it. */
int skiff_workqueue_add(skiff_workqueue_t *q, const char *key);
/* Adds key after delay_ms (keeps the earliest of several pending delays). */
int skiff_workqueue_add_after(skiff_workqueue_t *q, const char *key, int64_t delay_ms);
/* Adds key after its back-off (base doubling per failure up to the cap)
 * or the token bucket's wait, whichever is longer; returns that delay in
 * ms (>= 0) or a SKIFF_E* code. */
int64_t skiff_workqueue_add_rate_limited(skiff_workqueue_t *q, const char *key);
/* Clears key's failure count (after a success). */
void skiff_workqueue_forget(skiff_workqueue_t *q, const char *key);
int skiff_workqueue_num_requeues(const skiff_workqueue_t *q, const char *key);
/* Takes the next key: *key is the queue's copy, valid until
 * skiff_workqueue_done(q, key). SKIFF_ENOENT when none waits,
 * SKIFF_ECLOSED after shut down. */
int skiff_workqueue_get(skiff_workqueue_t *q, const char **key);
/* Ends processing of key (the string skiff_workqueue_get returned). */
void skiff_workqueue_done(skiff_workqueue_t *q, const char *key);
/* Runs on_ready again on the next loop turn if keys wait. */
void skiff_workqueue_kick(skiff_workqueue_t *q);
/* Keys waiting (not processing, not delayed). */
size_t skiff_workqueue_len(const skiff_workqueue_t *q);
/* Refuses further adds, drops waiting and delayed keys; keys being
 * processed may still be passed to done. */
void skiff_workqueue_shut_down(skiff_workqueue_t *q);
/* Shuts down and frees (after the loop runs). Keys from get must not be
 * used afterwards. */
void skiff_workqueue_free(skiff_workqueue_t *q);

/* ---- controller runner ------------------------------------------------------------------ */

typedef struct skiff_controller skiff_controller_t;

typedef enum skiff_reconcile_outcome {
    SKIFF_RECONCILE_DONE = 0,          /* converged: forget the key's failures */
    SKIFF_RECONCILE_REQUEUE = 1,       /* run again soon, with back-off */
    SKIFF_RECONCILE_REQUEUE_AFTER = 2, /* run again after after_ms, no back-off */
    SKIFF_RECONCILE_ERROR = 3,         /* failed: logged, run again with back-off */
} skiff_reconcile_outcome_t;

typedef struct skiff_reconcile_result {
    skiff_reconcile_outcome_t outcome;
    int64_t after_ms; /* SKIFF_RECONCILE_REQUEUE_AFTER */
    int error;        /* SKIFF_RECONCILE_ERROR: a SKIFF_E* code for the log */
} skiff_reconcile_result_t;

/* One reconcile in flight. The framework owns it; it stays valid until
 * skiff_reconcile_done is called for it, exactly once. */
typedef struct skiff_reconcile {
    skiff_plugin_ctx_t *ctx;
    skiff_controller_t *controller;
    const char *key;  /* "ns/name" or "name" */
    const char *ns;   /* "" for cluster-scoped */
    const char *name;
    void *data;       /* the descriptor's data */
} skiff_reconcile_t;

/* Maps an event on a secondary object to primary keys: call
 * skiff_controller_enqueue(c, key) for each. */
typedef void (*skiff_controller_map_fn)(void *data, skiff_controller_t *c, json_t *obj);

typedef struct skiff_controller_watch {
    skiff_resource_t resource;
    skiff_informer_opts_t opts;
    /* Map through metadata.ownerReferences whose kind (and apiVersion, if
     * set) is the descriptor's primary_kind / primary_api_version; with
     * controller_only, only the reference with controller: true. */
    int by_owner;
    int controller_only;
    skiff_controller_map_fn map; /* custom mapper (used when by_owner is 0) */
} skiff_controller_watch_t;

typedef struct skiff_controller_desc {
    const char *name;
    skiff_resource_t primary;
    skiff_informer_opts_t primary_opts;
    const char *primary_kind;        /* "ConfigMap": for owner-reference mapping */
    const char *primary_api_version; /* "v1"; NULL: any */
    int primary_cluster_scoped;      /* owner keys are "name", not "ns/name" */
    const skiff_controller_watch_t *secondary;
    size_t n_secondary;
    /* Starts the reconcile of r->key; calls skiff_reconcile_done(r, ...)
     * when finished, now or from a later callback. Never blocks. */
    void (*reconcile)(skiff_reconcile_t *r);
    int workers;                     /* reconciles in flight at most; 0: 1 */
    skiff_workqueue_opts_t queue;
    void *data;
} skiff_controller_desc_t;

/* Builds a controller over the factory's informers (the factory must
 * outlive it); ctx gives the loop and the log. The descriptor's strings
 * and arrays are borrowed and must outlive the controller. */
int skiff_controller_new(skiff_plugin_ctx_t *ctx, skiff_informer_factory_t *f,
                         const skiff_controller_desc_t *d, skiff_controller_t **out);
/* A secondary watch whose informer caches transformed objects: the
 * descriptor's secondary[secondary] comes from
 * skiff_informer_factory_get_transformed with transform_id, fn and data
 * (the same sharing rules: one informer per id, the first caller's
 * function). */
typedef struct skiff_controller_transform {
    size_t secondary;          /* index into the descriptor's secondary watches */
    const char *transform_id;  /* e.g. SKIFF_POD_VIEW_ID */
    skiff_informer_transform_fn fn;
    void *data;
} skiff_controller_transform_t;

/* skiff_controller_new whose secondary watches named in t[0..n_t) use
 * transformed informers (the others, and the primary, plain ones). t is
 * read during the call only; transform_id is copied by the factory. */
int skiff_controller_new_transformed(skiff_plugin_ctx_t *ctx, skiff_informer_factory_t *f,
                                     const skiff_controller_desc_t *d,
                                     const skiff_controller_transform_t *t, size_t n_t,
                                     skiff_controller_t **out);
/* ---- the pods view -------------------------------------------------------------- */

/* The transform of the pods informer that the built-in controllers and the
 * default scheduler share (one informer, one reduced copy of each bound
 * pod in the whole server, unless the scheduler's trim-bound-pods is
 * false: it then keeps a plain informer of its own). A pod not bound to a node yet is kept whole
 * (json_incref: the scheduler's steps may read any member of the pod they
 * place). Of a pod bound to a node it keeps apiVersion and kind;
 * metadata name, namespace, uid, resourceVersion, generation,
 * creationTimestamp, deletionTimestamp,
 * deletionGracePeriodSeconds, labels, ownerReferences, finalizers and the
 * annotations without kubectl's last-applied-configuration; spec
 * nodeName, hostname, subdomain, restartPolicy, affinity, schedulerName,
 * priority, preemptionPolicy, overhead (restartPolicy, schedulerName,
 * priority and preemptionPolicy only when not Kubernetes' default: read a
 * missing one as Always, default-scheduler, 0, PreemptLowerPriority),
 * containers and initContainers
 * with their name, image, resources, ports and restartPolicy, and the
 * volumes that are persistentVolumeClaims (name and claim); status phase,
 * reason, podIP, nominatedNodeName, podIPs when it holds more than podIP,
 * the Ready and DisruptionTarget conditions (type, status, reason,
 * lastTransitionTime) and the container and init container statuses
 * (name, ready, started, restartCount, and state and lastState when
 * terminated). Members alike across pods (a template's
 * labels and containers, the namespace) are one shared tree: the view is
 * read-only. The received pod is only read, never referenced below its
 * top (it is shared with the API server's threads). NULL when out of
 * memory. */
#define SKIFF_POD_VIEW_ID "skiff/pods"
json_t *skiff_pod_view(void *data, json_t *pod);
/* The transform of metadata informers (Kubernetes' PartialObjectMetadata):
 * of any object, apiVersion and kind, and of its metadata name, namespace,
 * uid, resourceVersion, deletionTimestamp, deletionGracePeriodSeconds,
 * ownerReferences and finalizers; copies, a new tree. For a reader of
 * owners and deletion state over every resource (the garbage collector),
 * which would otherwise hold every object whole. NULL when out of memory. */
#define SKIFF_METADATA_VIEW_ID "skiff/metadata"
json_t *skiff_metadata_view(void *data, json_t *obj);

/* The transform of the nodes informer that the default scheduler, the
 * DaemonSet and the EndpointSlice controllers share (one reduced copy of
 * each Node in the whole server). Of a Node it keeps apiVersion and kind;
 * metadata name, uid, resourceVersion, generation, creationTimestamp,
 * deletionTimestamp, deletionGracePeriodSeconds, labels, ownerReferences,
 * finalizers and the annotations without kubectl's
 * last-applied-configuration; spec whole; status capacity, allocatable
 * and images. Everything else of status (conditions, addresses, nodeInfo,
 * daemonEndpoints...) and managedFields is dropped. Members alike across
 * nodes (capacity, allocatable, images, annotations) are one shared
 * tree: the view is read-only. The received node is only read, never
 * referenced. NULL when out of memory. */
#define SKIFF_NODE_VIEW_ID "skiff/nodes"
json_t *skiff_node_view(void *data, json_t *node);

/* The transform for a controller's secondary watch number i on pods. */
static inline skiff_controller_transform_t skiff_pod_view_transform(size_t i)
{
    skiff_controller_transform_t t;
    t.secondary = i;
    t.transform_id = SKIFF_POD_VIEW_ID;
    t.fn = skiff_pod_view;
    t.data = NULL;
    return t;
}

/* The transform for a controller's secondary watch number i on nodes. */
static inline skiff_controller_transform_t skiff_node_view_transform(size_t i)
{
    skiff_controller_transform_t t;
    t.secondary = i;
    t.transform_id = SKIFF_NODE_VIEW_ID;
    t.fn = skiff_node_view;
    t.data = NULL;
    return t;
}

/* Starts the informers and runs reconciles once they have synced. */
int skiff_controller_start(skiff_controller_t *c);
/* Queues a primary key. */
int skiff_controller_enqueue(skiff_controller_t *c, const char *key);
/* The primary informer, and the i-th secondary one: read caches here. */
skiff_informer_t *skiff_controller_informer(skiff_controller_t *c);
skiff_informer_t *skiff_controller_secondary_informer(skiff_controller_t *c, size_t i);
/* Ends one reconcile; r is freed. */
void skiff_reconcile_done(skiff_reconcile_t *r, skiff_reconcile_result_t result);
/* Stops; reconciles still in flight must still call skiff_reconcile_done
 * (their results are dropped) and the memory goes when the last one has. */
void skiff_controller_free(skiff_controller_t *c);

#ifdef __cplusplus
}
#endif
#endif
