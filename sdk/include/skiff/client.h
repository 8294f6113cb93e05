/* skiff/client.h - the API client every controller, scheduler and agent uses.
 *
 * Two implementations share these semantics exactly: the in-process client
 * (inside `skiff server`, no HTTP round trip) and the HTTP client (any other
 * process). A plugin cannot tell which one it was handed.
 *
 * Objects are jansson json_t values in the Kubernetes wire format. Calls are
 * asynchronous; callbacks run on the client's loop. A callback receives
 * borrowed references: json_incref() what must outlive the callback.
 * status is the HTTP status code of the answer (200, 201, 404, 409, ...) or
 * 0 when no answer came (connection failure); on an error `obj` is the
 * Kubernetes Status object the server returned (or NULL). */
#ifndef SKIFF_CLIENT_H
#define SKIFF_CLIENT_H

#include <stdint.h>

#include <jansson.h>
#include <skiff/errors.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skiff_client skiff_client_t;
typedef struct skiff_client_watch skiff_client_watch_t;

/* Which resource a call is about: "" group for core/v1. */
typedef struct skiff_resource {
    const char *group;       /* "" or "apps" */
    const char *version;     /* "v1" */
    const char *resource;    /* plural: "pods" */
    const char *subresource; /* NULL, "status", "scale", "binding" */
} skiff_resource_t;

typedef struct skiff_list_opts {
    const char *label_selector;   /* "app=web,tier!=db" */
    const char *field_selector;   /* "spec.nodeName=n1" */
    int64_t limit;                /* 0: all */
    const char *continue_token;
    const char *resource_version; /* for watch: start after this version */
    int allow_bookmarks;
    int timeout_seconds;          /* watch: server ends it after this long; 0 = server default */
} skiff_list_opts_t;

typedef struct skiff_write_opts {
    int dry_run;                  /* dryRun=All */
    const char *field_manager;
    const char *propagation_policy; /* delete: "Background", "Foreground", "Orphan" */
    int64_t grace_period_seconds; /* delete: -1 = default */
    /* delete: only the object with this uid (409 Conflict when the name now
     * belongs to another one), as DeleteOptions.preconditions.uid */
    const char *precondition_uid;
} skiff_write_opts_t;

typedef enum skiff_patch_type {
    SKIFF_PATCH_JSON = 1,      /* application/json-patch+json */
    SKIFF_PATCH_MERGE = 2,     /* application/merge-patch+json */
    SKIFF_PATCH_STRATEGIC = 3, /* application/strategic-merge-patch+json */
} skiff_patch_type_t;

/* Completion of get/list/create/update/patch/delete. */
typedef void (*skiff_client_cb)(void *data, int status, json_t *obj);

/* One watch event: type "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or
 * "ERROR" (obj is a Status). After the watch ends (server closed it,
 * timeout, error) the callback runs once with type NULL and obj NULL; no
 * call follows. */
typedef void (*skiff_client_watch_cb)(void *data, const char *type, json_t *obj);

typedef struct skiff_client_vtable {
    int (*get)(skiff_client_t *c, const skiff_resource_t *r, const char *ns, const char *name,
               skiff_client_cb cb, void *data);
    int (*list)(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                const skiff_list_opts_t *opts, skiff_client_cb cb, void *data);
    int (*watch)(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                 const skiff_list_opts_t *opts, skiff_client_watch_cb cb, void *data,
                 skiff_client_watch_t **out);
    /* Stop a watch; its callback is not called again. */
    void (*watch_cancel)(skiff_client_watch_t *w);
    int (*create)(skiff_client_t *c, const skiff_resource_t *r, const char *ns, json_t *obj,
                  const skiff_write_opts_t *opts, skiff_client_cb cb, void *data);
    /* PUT; obj carries metadata.name and (for optimistic concurrency) metadata.resourceVersion. */
    int (*update)(skiff_client_t *c, const skiff_resource_t *r, const char *ns, json_t *obj,
                  const skiff_write_opts_t *opts, skiff_client_cb cb, void *data);
    int (*patch)(skiff_client_t *c, const skiff_resource_t *r, const char *ns, const char *name,
                 skiff_patch_type_t type, const char *patch, const skiff_write_opts_t *opts,
                 skiff_client_cb cb, void *data);
    int (*remove)(skiff_client_t *c, const skiff_resource_t *r, const char *ns, const char *name,
                  const skiff_write_opts_t *opts, skiff_client_cb cb, void *data);
    void (*free)(skiff_client_t *c);
    /* GET of a path that is not a resource: the discovery documents
     * ("/api", "/api/v1", "/apis", "/apis/apps/v1"), "/version". path
     * starts with '/' and is sent as it is (percent-encoded by the caller). */
    int (*get_path)(skiff_client_t *c, const char *path, skiff_client_cb cb, void *data);
} skiff_client_vtable_t;

struct skiff_client {
    const skiff_client_vtable_t *vt;
};

static inline int skiff_client_get(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                                   const char *name, skiff_client_cb cb, void *data)
{
    return c->vt->get(c, r, ns, name, cb, data);
}
static inline int skiff_client_list(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                                    const skiff_list_opts_t *o, skiff_client_cb cb, void *data)
{
    return c->vt->list(c, r, ns, o, cb, data);
}
static inline int skiff_client_watch(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                                     const skiff_list_opts_t *o, skiff_client_watch_cb cb,
                                     void *data, skiff_client_watch_t **out)
{
    return c->vt->watch(c, r, ns, o, cb, data, out);
}
static inline int skiff_client_create(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                                      json_t *obj, const skiff_write_opts_t *o,
                                      skiff_client_cb cb, void *data)
{
    return c->vt->create(c, r, ns, obj, o, cb, data);
}
/* skiff_client_create for a caller that only reads the answer: cb's obj
 * is read-only (in process the server may hand over the object it stored,
 * shared with the watch cache, instead of a copy). */
int skiff_client_create_ro(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                           json_t *obj, const skiff_write_opts_t *o, skiff_client_cb cb,
                           void *data);
static inline int skiff_client_update(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                                      json_t *obj, const skiff_write_opts_t *o,
                                      skiff_client_cb cb, void *data)
{
    return c->vt->update(c, r, ns, obj, o, cb, data);
}
static inline int skiff_client_patch(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                                     const char *name, skiff_patch_type_t t, const char *patch,
                                     const skiff_write_opts_t *o, skiff_client_cb cb, void *data)
{
    return c->vt->patch(c, r, ns, name, t, patch, o, cb, data);
}
static inline int skiff_client_delete(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                                      const char *name, const skiff_write_opts_t *o,
                                      skiff_client_cb cb, void *data)
{
    return c->vt->remove(c, r, ns, name, o, cb, data);
}
static inline int skiff_client_get_path(skiff_client_t *c, const char *path, skiff_client_cb cb,
                                        void *data)
{
    return c->vt->get_path ? c->vt->get_path(c, path, cb, data) : SKIFF_ENOTSUP;
}

#ifdef __cplusplus
}
#endif
#endif
