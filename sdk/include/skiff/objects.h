/* skiff/objects.h - helpers every controller needs on Kubernetes objects:
 * label selectors, owner references, status conditions, timestamps,
 * resource quantities, pod state, template hashes and Events.
 *
 * Objects are jansson json_t values in the wire format. Functions that
 * return json_t * say whether the reference is new (the caller
 * json_decref()s it) or borrowed. */
#ifndef SKIFF_OBJECTS_H
#define SKIFF_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <skiff/client.h>
#include <skiff/errors.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- label selectors ---------------------------------------------------- */

/* Whether a metav1.LabelSelector ({matchLabels, matchExpressions}) selects
 * an object with these labels (a JSON object, or NULL for none): 1 or 0;
 * SKIFF_EINVAL for a malformed selector. A NULL selector selects nothing;
 * an empty one ({}) selects everything, as in Kubernetes. */
int skiff_label_selector_matches(const json_t *selector, const json_t *labels);
/* The selector in query form ("app=web,tier in (a,b)") for list options,
 * as a new string the caller frees; NULL for a malformed selector. An
 * empty selector gives "". */
char *skiff_label_selector_string(const json_t *selector);

/* ---- owner references ----------------------------------------------------- */

/* A new ownerReference naming owner (apiVersion, kind, name, uid), with
 * controller and blockOwnerDeletion set when controller is non-zero. */
json_t *skiff_owner_ref_new(const json_t *owner, int controller);
/* The ownerReference with controller: true (borrowed), or NULL. */
json_t *skiff_controller_ref(const json_t *obj);
/* 1 when obj's controller reference names this uid. */
int skiff_is_controlled_by(const json_t *obj, const char *owner_uid);

/* ---- status conditions ---------------------------------------------------- */

/* The condition of that type in obj's status.conditions (borrowed), or NULL. */
json_t *skiff_condition_get(const json_t *obj, const char *type);
/* "True", "False", "Unknown", or NULL when absent. */
const char *skiff_condition_status(const json_t *obj, const char *type);
/* Sets a condition in obj's status.conditions (created as needed):
 * lastTransitionTime moves only when the status changes; with
 * update_time, lastUpdateTime is set when anything changes (Deployment
 * style). reason and message may be NULL. Returns 1 when the condition
 * changed, 0 when it was already so, or SKIFF_ENOMEM. */
int skiff_condition_set(json_t *obj, const char *type, const char *status, const char *reason,
                        const char *message, int update_time);
/* Removes a condition; 1 if one was removed. */
int skiff_condition_remove(json_t *obj, const char *type);

/* ---- time -------------------------------------------------------------------- */

/* Wall clock in milliseconds since the epoch. */
int64_t skiff_now_ms(void);
/* RFC 3339 in UTC with second precision ("2026-11-26T12:00:00Z") into buf
 * (at least 21 bytes). */
void skiff_time_format(int64_t ms, char *buf, size_t len);
/* Milliseconds since the epoch of an RFC 3339 time (fractions and offsets
 * accepted), or -1. */
int64_t skiff_time_parse(const char *s);

/* ---- resource quantities --------------------------------------------------- */

/* Parses a quantity ("100m", "0.5", "128Mi", "1e3", "2G") into milli-units,
 * rounded up as Kubernetes' MilliValue does: "100m" -> 100, "1" -> 1000,
 * "1Ki" -> 1024000. 0 or SKIFF_EINVAL (malformed or out of range). A JSON
 * number is accepted as well by skiff_quantity_milli_json. */
int skiff_quantity_milli(const char *s, int64_t *milli);
/* Same for a JSON string or number; a missing value (NULL) is 0. */
int skiff_quantity_milli_json(const json_t *v, int64_t *milli);

/* ---- pods ---------------------------------------------------------------------- */

/* 1 when the pod's Ready condition is True. */
int skiff_pod_is_ready(const json_t *pod);
/* 1 when the pod is neither Succeeded nor Failed nor being deleted. */
int skiff_pod_is_active(const json_t *pod);
/* 1 when Ready for at least min_ready_seconds at now_ms (the Ready
 * condition's lastTransitionTime), as ReplicaSet availability counts. */
int skiff_pod_is_available(const json_t *pod, int64_t min_ready_seconds, int64_t now_ms);
/* Total requests of a pod's containers (max with each init container, plus
 * spec.overhead) for one resource ("cpu", "memory", ...) in milli-units. */
int64_t skiff_pod_request_milli(const json_t *pod, const char *resource);
/* The same for n resources in one pass over the containers: out[i] is
 * skiff_pod_request_milli(pod, resources[i]). */
void skiff_pod_requests_milli(const json_t *pod, const char *const *resources, size_t n,
                              int64_t *out);
/* Binds pod to node through the pods/binding subresource, as a scheduler
 * does: a v1 Binding with the pod's uid as precondition. cb gets 201, or
 * 409 when the pod is bound already, being deleted or replaced, 404 when
 * it is gone, with a Status (read-only, like every obj cb gets here). pod
 * is best the object as the client's informer handed it, unchanged: in
 * process the server then applies the binding to that tree (its current
 * version) instead of decoding the stored pod again. */
int skiff_pod_bind(skiff_client_t *client, json_t *pod, const char *node, skiff_client_cb cb,
                   void *data);

/* ---- copies ---------------------------------------------------------------------- */

/* A deep copy of v (a new reference; NULL for NULL or when memory runs
 * out). Unlike json_deep_copy it does not check for cycles, a check that
 * costs a formatted address and a hash table entry for every object and
 * array: for trees, as every parsed object is (a cyclic v never ends). */
json_t *skiff_json_copy(const json_t *v);
/* 1 when a and b are both absent (NULL) or equal (json_equal, which
 * compares shared members by pointer first: cheap on views whose members
 * are interned). */
int skiff_json_same(const json_t *a, const json_t *b);

/* ---- shared values ---------------------------------------------------------------- */

/* A table of JSON values shared by content (json_equal): objects cached
 * by the thousand that are alike in parts (a template's labels and
 * containers, an owner reference) hold one tree for each such part.
 * Interned values are read-only. One no one else holds any more leaves
 * the table when it next fills up. For one thread. */
typedef struct skiff_json_interner skiff_json_interner_t;
skiff_json_interner_t *skiff_json_interner_new(void);
/* Releases the table's references (values held elsewhere stay valid). */
void skiff_json_interner_free(skiff_json_interner_t *t);
/* A new reference to the table's value equal to v, which is only read (a
 * member of a received object, say): a copy of v goes in when there is
 * none yet. NULL when memory runs out. */
json_t *skiff_json_intern_copy(skiff_json_interner_t *t, const json_t *v);
/* The same for a value of the caller's own that nothing changes any more:
 * takes the caller's reference to v and returns one to the shared value
 * (v itself when it is the first, or when memory runs out). */
json_t *skiff_json_intern(skiff_json_interner_t *t, json_t *v);
/* Values in the table (some may be held by no one until it fills up). */
size_t skiff_json_interner_size(const skiff_json_interner_t *t);

/* ---- hashes --------------------------------------------------------------------- */

/* A short, name-safe hash of a JSON value (keys sorted), like the
 * pod-template-hash and controller-revision-hash labels ("5d4f8b9c7"),
 * written into buf (at least 11 bytes). collision_count, when non-zero,
 * is mixed in so a colliding name can be retried. */
void skiff_json_hash(const json_t *v, uint32_t collision_count, char *buf, size_t len);

/* ---- Events --------------------------------------------------------------------- */

typedef struct skiff_event_recorder skiff_event_recorder_t;

/* Records core/v1 Events through client as component (e.g.
 * "deployment-controller"), which `kubectl describe` and `kubectl get
 * events` show, correlated as Kubernetes' recorder does: a repeat of the
 * same event for the same object within ten minutes increments its count
 * instead of creating another; from the tenth different message of the
 * same object, type and reason within ten minutes on, one Event
 * "(combined from similar events): <message>" counts them; at most 25
 * Events about one object are written in a burst, then one every five
 * minutes (the occurrences over that are counted into the next write). */
skiff_event_recorder_t *skiff_event_recorder_new(skiff_client_t *client, const char *component);
/* Makes r fold only exact repeats into a count: no combined Events and no
 * per-object budget, as kube-scheduler's recorder (events.k8s.io) does;
 * for a component whose Events about one object must all show (the
 * scheduler's FailedScheduling and then Scheduled). Call before recording. */
void skiff_event_recorder_uncorrelated(skiff_event_recorder_t *r);
/* type is "Normal" or "Warning". Fire and forget: failures are logged. */
void skiff_event_record(skiff_event_recorder_t *r, const json_t *obj, const char *type,
                        const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Frees once the events in flight are written; the loop must run. */
void skiff_event_recorder_free(skiff_event_recorder_t *r);

/* The message of a refused write's answer (a Status), for Events and logs:
 * its "message", or "no answer from the API server" when there is none
 * (obj NULL: the connection was lost). Borrowed from obj. */
const char *skiff_answer_message(const json_t *obj);

#ifdef __cplusplus
}
#endif
#endif
