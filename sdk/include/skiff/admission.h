/* skiff/admission.h - admission plugins: look at (and change) every write
 * before it is stored, and allow or deny it.
 *
 * The API server runs a chain of admission plugins on every create,
 * update and delete (and connect, e.g. pods/exec), after authorization and
 * before validation and the store, as kube-apiserver does: first every
 * enabled plugin's mutate hook in chain order, then the object is
 * defaulted and validated, then every enabled plugin's validate hook. The
 * first denial ends the request with a Kubernetes Status.
 *
 * A C admission plugin is a shared object whose descriptor (skiff/plugin.h)
 * has kind SKIFF_PLUGIN_ADMISSION and a skiff_admission_vtable_t as its
 * vtable. It joins the chain when the server names it in
 * --enable-admission-plugins (it is then loaded from the plugin
 * directories like any plugin; its init and start hooks run once at server
 * start, before the first request). A Lua admission plugin is wrapped into
 * the same vtable by the Lua host.
 *
 *   static int mutate(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req);
 *   static int validate(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req);
 *
 * Each hook returns SKIFF_ADMISSION_ALLOW (0) to let the request go on, or
 * the value of skiff_admission_deny() to refuse it. Any other non-zero
 * return also denies, with a generic message. Hooks run synchronously on
 * the server's event loop: they must be quick and never block (no network,
 * no disk); what they need to know about other objects they read from the
 * server's cache with skiff_admission_get / skiff_admission_list.
 *
 * Objects are jansson values in the wire format (apiVersion, kind,
 * metadata, spec, ...). In mutate, req->object belongs to the request and
 * may be changed in place; in validate it must not be changed. Every other
 * pointer in the request is borrowed for the duration of the hook. */
#ifndef SKIFF_ADMISSION_H
#define SKIFF_ADMISSION_H

#include <jansson.h>
#include <skiff/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum skiff_admission_operation {
    SKIFF_ADMISSION_CREATE = 1,
    SKIFF_ADMISSION_UPDATE = 2,
    SKIFF_ADMISSION_DELETE = 3,
    SKIFF_ADMISSION_CONNECT = 4,
} skiff_admission_operation_t;

enum { SKIFF_ADMISSION_ALLOW = 0, SKIFF_ADMISSION_DENIED = 1 };

/* What is being written, by whom (kube-apiserver's admission.Attributes). */
typedef struct skiff_admission_request {
    skiff_admission_operation_t operation;
    const char *group;        /* "" for the core group, "apps", ... */
    const char *version;      /* "v1" */
    const char *kind;         /* "Pod" */
    const char *resource;     /* "pods" */
    const char *subresource;  /* "" for the object itself; "status", "scale", "exec", ... */
    const char *ns;           /* namespace, "" for cluster-scoped objects */
    const char *name;         /* object name ("" when not yet known) */
    const char *user;         /* who asks: "system:admin", "system:serviceaccount:ns:sa" */
    const char *const *groups;/* the user's groups, NULL-terminated */
    int dry_run;              /* nothing will be stored: hooks must have no side effects */
    /* The object after the write: the new object of a create or update
     * (changeable in mutate), NULL for delete and connect. */
    json_t *object;
    /* The object before the write (update, delete), else NULL. */
    const json_t *old_object;
    /* DeleteOptions of a delete, CreateOptions/UpdateOptions otherwise; may be NULL. */
    const json_t *options;
    void *core_private;       /* the core's; do not touch */
} skiff_admission_request_t;

typedef struct skiff_admission_vtable {
    /* Either hook may be NULL. */
    int (*mutate)(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req);
    int (*validate)(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req);
} skiff_admission_vtable_t;

/* Refuse the request. code is the HTTP status: 403 (Forbidden, what
 * Kubernetes' admission plugins answer), 422 (Invalid), 400, 404, 409 or
 * 429; anything else is sent as 403. The message says what to fix; the
 * user sees it as
 *   Error from server (Forbidden): pods "web" is forbidden:
 *     admission plugin "require-labels" denied the request: MESSAGE
 * (for 422: `Pod "web" is invalid: ...`). Returns SKIFF_ADMISSION_DENIED,
 * so a hook can end with `return skiff_admission_deny(...)`. */
int skiff_admission_deny(const skiff_admission_request_t *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Add a warning for the client (an HTTP Warning header; kubectl prints
 * "Warning: MESSAGE"). The request goes on unless a hook denies it. */
void skiff_admission_warn(const skiff_admission_request_t *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An object as the server currently holds it, from its cache (no store
 * round trip): a new reference the caller json_decref()s, or NULL when it
 * does not exist. api_version is "v1" or "group/version"; ns is NULL or
 * "" for cluster-scoped resources. */
json_t *skiff_admission_get(const skiff_admission_request_t *req, const char *api_version,
                            const char *resource, const char *ns, const char *name);
/* Every object of a resource in ns (NULL: all namespaces), as a new JSON
 * array the caller json_decref()s; NULL for an unknown resource. */
json_t *skiff_admission_list(const skiff_admission_request_t *req, const char *api_version,
                             const char *resource, const char *ns);

/* "CREATE", "UPDATE", "DELETE", "CONNECT" */
const char *skiff_admission_operation_name(skiff_admission_operation_t op);

#ifdef __cplusplus
}
#endif
#endif
