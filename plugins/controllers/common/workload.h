/* plugins/controllers/common/workload.h - pieces the DaemonSet and
 * StatefulSet controllers share, compiled into each plugin (no core
 * headers): ControllerRevision history, batches of asynchronous writes
 * that report when all have answered, a cache barrier per key, and small
 * readers for the fields both controllers use.
 *
 * ControllerRevisions hold what `kubectl rollout history/undo` reads: a
 * strategic merge patch {"spec":{"template":{..., "$patch":"replace"}}}
 * that puts a template back, the owner's controller reference, the
 * template's labels plus controller-revision-hash, and a revision number
 * (kubectl rolls back by applying that patch to the owner). */
#ifndef SKIFF_CONTROLLERS_WORKLOAD_H
#define SKIFF_CONTROLLERS_WORKLOAD_H

#include <stdint.h>

#include <jansson.h>
#include <skiff/skiff.h>

extern const skiff_resource_t wl_pods, wl_pods_status, wl_revisions, wl_nodes, wl_claims;

/* ---- readers ------------------------------------------------------------------ */

/* obj.a.b (b may be NULL), borrowed. */
json_t *wl_get(const json_t *obj, const char *a, const char *b);
const char *wl_str(const json_t *obj, const char *a, const char *b);
/* Integer at obj.a.b, or def when missing. */
int64_t wl_int(const json_t *obj, const char *a, const char *b, int64_t def);
/* An IntOrString ("25%" or 2) scaled against total, rounding up or down as
 * Kubernetes' GetScaledValueFromIntOrPercent; def when missing or bad. */
int wl_int_or_percent(const json_t *v, int total, int round_up, int def);
/* 1 when the pod has a deletionTimestamp. */
int wl_terminating(const json_t *pod);
/* A new controller ownerReference to owner (apiVersion/kind given, since
 * cached objects may lack them). */
json_t *wl_controller_ref(const json_t *owner, const char *api_version, const char *kind);
/* Objects of an informer whose controller reference names uid (new array). */
json_t *wl_list_controlled(skiff_informer_t *inf, const char *uid);
/* Sorts an array of objects by metadata.name in natural order. */
void wl_sort_by_name(json_t *arr);

/* ---- ControllerRevisions ----------------------------------------------------------- */

/* The revision data for a pod template (new reference). */
json_t *wl_revision_data(const json_t *tmpl);
/* The template a revision's data restores, without "$patch" (new), or NULL. */
json_t *wl_revision_template(const json_t *cr);
/* The owner's revisions (from the informer), sorted by .revision (new). */
json_t *wl_revisions_of(skiff_informer_t *inf, const char *owner_uid);
/* The newest revision in sorted whose data equals data (borrowed), or NULL. */
json_t *wl_revision_find_equal(const json_t *sorted, const json_t *data);
/* 1 + the highest revision number (1 for none). */
int64_t wl_revision_next(const json_t *sorted);
/* A new ControllerRevision "<owner>-<hash>" for owner. */
json_t *wl_revision_new(const json_t *owner, const char *api_version, const char *kind,
                        const json_t *tmpl, const json_t *data, int64_t revision,
                        const char *hash);

/* ---- batches of writes --------------------------------------------------------------- */

/* Several asynchronous writes for one reconcile; `done` runs once after
 * every write has answered (or at once from wl_batch_seal when none was
 * sent). Each write may have its own callback. */
typedef struct wl_batch wl_batch_t;
typedef void (*wl_batch_item_cb)(wl_batch_t *b, void *item, int status, json_t *obj);

enum { WL_RES_PODS = 0, WL_RES_REVISIONS = 1, WL_RES_CLAIMS = 2, WL_RES_OTHER = 3, WL_RES_N };

struct wl_batch {
    skiff_client_t *client;
    void (*done)(wl_batch_t *b);
    void *data;
    int pending;
    int sealed;
    int failures;           /* answers other than 2xx (404 on delete excepted) */
    int conflicts;          /* 409 answers */
    int64_t max_rv[WL_RES_N]; /* highest resourceVersion written, per resource */
};

wl_batch_t *wl_batch_new(skiff_client_t *client, void (*done)(wl_batch_t *b), void *data);
/* Writes; item (may be NULL) is freed with free() after cb ran. The
 * object is borrowed. res_class is one of WL_RES_*. */
void wl_batch_create(wl_batch_t *b, int res_class, const skiff_resource_t *r, const char *ns,
                     json_t *obj, wl_batch_item_cb cb, void *item);
/* A create for which AlreadyExists (409) is no failure. */
void wl_batch_ensure(wl_batch_t *b, int res_class, const skiff_resource_t *r, const char *ns,
                     json_t *obj, wl_batch_item_cb cb, void *item);
/* grace < 0: the pod's own grace period. */
void wl_batch_delete(wl_batch_t *b, int res_class, const skiff_resource_t *r, const char *ns,
                     const char *name, int64_t grace, wl_batch_item_cb cb, void *item);
void wl_batch_patch(wl_batch_t *b, int res_class, const skiff_resource_t *r, const char *ns,
                    const char *name, skiff_patch_type_t type, const char *patch,
                    wl_batch_item_cb cb, void *item);
/* No more writes: done runs when the last answers (maybe now). */
void wl_batch_seal(wl_batch_t *b);
/* Frees the batch (call from done, or after it). */
void wl_batch_free(wl_batch_t *b);

/* The owner's ControllerRevision for data (from tmpl), given its sorted
 * revisions: when the newest one already holds data, that one (borrowed
 * from revs). Otherwise queues on b the write that makes it so and returns
 * NULL: a new revision "<owner>-<hash>" numbered next (a name taken by
 * other data bumps the owner's status.collisionCount through status_res,
 * so the next name differs, as Kubernetes does), or, for an older equal
 * revision (rollout undo), its renumbering as the newest. */
json_t *wl_revision_ensure(wl_batch_t *b, const json_t *owner, const char *kind,
                           const skiff_resource_t *status_res, const json_t *tmpl,
                           const json_t *data, const json_t *revs);

/* ---- adoption and release ------------------------------------------------------------ */

/* Kubernetes' ClaimPods: pods of owner's namespace that match its
 * selector, have no controller and are not being deleted are adopted (a
 * controller reference is added) when accept(pod, data) agrees (NULL:
 * any); pods it controls whose labels no longer match are released (the
 * reference is removed). The patches go into b (class WL_RES_PODS);
 * returns how many were queued. */
int wl_claim_pods(wl_batch_t *b, skiff_informer_t *pods, const json_t *owner,
                  const char *api_version, const char *kind,
                  int (*accept)(const json_t *pod, void *data), void *data);

/* Maps a pod event to owner keys, as Kubernetes' pod handlers do: the
 * owner its controller reference names (when of this kind), or, for a pod
 * without a controller, every owner in its namespace whose selector
 * matches it (so that one of them can adopt it). */
void wl_map_pod(skiff_controller_t *c, json_t *pod, const char *kind);

/* ---- cache barriers ------------------------------------------------------------------ */

/* Per primary key, the resourceVersions our last writes produced. A
 * reconcile that runs before the informers have seen them would act on a
 * stale cache (and create a second pod, say), so it waits. */
typedef struct wl_barriers wl_barriers_t;
wl_barriers_t *wl_barriers_new(void);
void wl_barriers_free(wl_barriers_t *bs);
void wl_barriers_note(wl_barriers_t *bs, const char *key, const wl_batch_t *b);
void wl_barriers_forget(wl_barriers_t *bs, const char *key);
/* 1 when every informer given (indexed by WL_RES_*, NULL to skip) has
 * seen the key's writes (or the barrier is older than 30 s). */
int wl_barriers_passed(wl_barriers_t *bs, const char *key, skiff_informer_t *const *informers);

#endif
