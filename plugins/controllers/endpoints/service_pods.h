/* plugins/controllers/endpoints/service_pods.h - what the Endpoints and
 * EndpointSlice controllers share: which pods a Service selects, which of
 * them belong in its endpoints, the port a named targetPort means on one
 * pod, the change-trigger time, and a reconcile that waits for several API
 * writes. Compiled into both plugins; it talks to nothing by itself. */
#ifndef SKIFF_SERVICE_PODS_H
#define SKIFF_SERVICE_PODS_H

#include <stdint.h>

#include <skiff/controller.h>
#include <skiff/objects.h>

/* A Service's spec.selector when it has one with at least one label and
 * is not of type ExternalName (a Service without one has its endpoints
 * managed by the user), else NULL. Borrowed. */
json_t *svc_selector(const json_t *svc);
/* 1 when every label of the selector (a map) is on the object. */
int selector_map_matches(const json_t *selector, const json_t *obj);
/* New array of the pods in the Service's namespace its selector picks. */
json_t *svc_selected_pods(const json_t *svc, skiff_informer_t *pods);
/* Queues every Service in the pod's namespace whose selector picks it. */
void svc_enqueue_for_pod(skiff_controller_t *c, json_t *pod);

/* Kubernetes' ShouldPodBeInEndpoints: the pod has an IP, is not being
 * deleted (unless include_terminating) and will still run (a pod that
 * finished for good is out). */
int pod_in_endpoints(const json_t *pod, int include_terminating);
/* The container port a Service port targets on this pod: a number as is,
 * a name looked up among the pod's container ports of the same protocol.
 * The port, or -1 when the pod has no such named port. */
int pod_target_port(const json_t *pod, const json_t *svc_port);
/* The pod's hostname when it should be published for the Service: the pod
 * names a hostname and its subdomain is the Service's name. Borrowed. */
const char *pod_hostname_for(const json_t *pod, const json_t *svc);
/* 1 when an IP address text is IPv6. */
int ip_is_v6(const char *ip);
/* A string at a path of object keys (NULL-terminated), or NULL. */
const char *jstr(const json_t *o, ...);
/* metadata.name / namespace / uid of an object (never NULL). */
const char *obj_name(const json_t *o);
const char *obj_ns(const json_t *o);
const char *obj_uid(const json_t *o);
/* 1 when spec.clusterIP is "None". The server does not allocate cluster
 * IPs, so an empty clusterIP does not make a Service headless here. */
int svc_is_headless(const json_t *svc);

/* Kubernetes' TriggerTimeTracker: per Service, the pods' last change times
 * (their Ready condition's lastTransitionTime) seen at the previous sync. */
typedef struct trigger_tracker {
    json_t *services; /* "ns/name" -> {"svc": ms, "pods": {name: ms}} */
} trigger_tracker_t;

/* The earliest change not reflected yet (ms), or -1 when nothing changed;
 * records the pods as seen. */
int64_t trigger_time(trigger_tracker_t *t, const char *key, const json_t *svc,
                     const json_t *pods);
void trigger_forget(trigger_tracker_t *t, const char *key);

/* ---- a reconcile waiting for several writes --------------------------------- */

/* Plugin state shared by reconciles in flight: stop drops the plugin's
 * reference and the last write's callback frees it. */
typedef struct ctl_state {
    int refs;
    int stopped;
    skiff_plugin_ctx_t *ctx;
    skiff_controller_t *c;
    skiff_controller_desc_t desc;
    skiff_controller_watch_t watches[4];
    trigger_tracker_t tracker;
    /* "ns/svc" -> {object name: {"rv": n (-1: deleted), "at": ms}}: what
     * our last writes left, until the informer has seen it */
    json_t *expect;
    int max_per_slice; /* the most endpoints in one object */
    int64_t batch_ms;  /* a Service is synced at most once in this long */
    json_t *last_sync; /* "ns/name" -> ms of its last sync */
    void *extra;
    /* Own event handlers on the pods informer and on the informer of the
     * objects the controller writes, so that changes which cannot move an
     * endpoint (a pod's other status fields, our own writes coming back)
     * cost no reconcile. */
    skiff_informer_t *pod_inf, *own_inf;
    int pod_hid, own_hid;
    /* "ns/name" of an object we wrote -> the resourceVersion we wrote */
    json_t *written;
    /* The Service key an owned object belongs to, into buf; 0 or -1. */
    int (*service_key)(const json_t *obj, char *buf, size_t len);
} ctl_state_t;

ctl_state_t *ctl_state_new(skiff_plugin_ctx_t *ctx);
void ctl_state_unref(ctl_state_t *s);

/* Reads the plugin's batchPeriod setting ("100ms", "1s", "0") into
 * s->batch_ms; SKIFF_EINVAL (logged) when malformed. */
int ctl_read_batch_period(ctl_state_t *s);
/* 0 when the Service key may be synced now (and records the sync), or the
 * milliseconds to wait: events that come faster than the batch period fold
 * into one sync, as kube-controller-manager's endpoint update batching
 * does, so a Service with many pods is not recomputed for every pod. */
int64_t ctl_sync_wait(ctl_state_t *s, const char *key);
void ctl_sync_forget(ctl_state_t *s, const char *key);

/* Registers the handlers on s->c's secondary informers pods_index and
 * own_index (whose watches map nothing themselves); removed by
 * ctl_unwatch, which stop must call before freeing the controller. */
int ctl_watch(ctl_state_t *s, size_t pods_index, size_t own_index);
void ctl_unwatch(ctl_state_t *s);
/* Builds s->c from s->desc (secondary 0 the pods, 1 the controller's own
 * objects), registers the handlers and starts it; on failure undoes all
 * of it, s included. 0 or SKIFF_E*. The plugin's start hook. */
int ctl_start(ctl_state_t *s, skiff_plugin_ctx_t *ctx);
/* The plugin's stop hook for a state ctl_start started. */
void ctl_stop(skiff_plugin_ctx_t *ctx);
/* A secondary watch mapper for informers whose events ctl_watch handles. */
void map_nothing(void *data, skiff_controller_t *c, json_t *obj);

typedef struct write_batch {
    skiff_reconcile_t *r;
    ctl_state_t *s;
    int pending; /* writes in flight + 1 while they are being issued */
    int error;   /* first SKIFF_E* code */
    int64_t requeue_after_ms;
} write_batch_t;

write_batch_t *batch_new(skiff_reconcile_t *r, ctl_state_t *s);
/* Issues one write; the batch owns nothing of obj. what names it in logs. */
void batch_create(write_batch_t *b, const skiff_resource_t *res, const char *ns, json_t *obj);
void batch_update(write_batch_t *b, const skiff_resource_t *res, const char *ns, json_t *obj);
void batch_delete(write_batch_t *b, const skiff_resource_t *res, const char *ns,
                  const char *name);
/* 1 when the informer's cache holds what this Service's previous writes
 * made (objects at least at the written resourceVersion, deleted ones
 * gone), so a reconcile does not act on a cache older than its own
 * writes; records older than a few seconds are dropped. */
int expectations_met(ctl_state_t *s, const char *key, skiff_informer_t *inf, const char *ns);

/* All writes issued: the reconcile ends when the last one answered. */
void batch_finish(write_batch_t *b);

#endif
