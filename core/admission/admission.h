/* core/admission/admission.h - the admission chain inside the API server.
 *
 * The chain is an ordered list of modules, each with the SDK's admission
 * vtable (skiff/admission.h): the built-ins Kubernetes users expect
 * (NamespaceLifecycle, LimitRanger, ServiceAccount, ...; one file each in
 * this folder) and plugins loaded from the plugin directories. The server
 * chooses which run with --enable-admission-plugins and
 * --disable-admission-plugins. The write path (core/api/handle_write.c)
 * calls admission_run() once for the mutating phase and once for the
 * validating phase; this file turns a denial into the Status the client
 * sees. Nothing here parses requests or touches the store directly except
 * through the hooks of the built-ins that keep state (ResourceQuota). */
#ifndef SKIFF_ADMISSION_INT_H
#define SKIFF_ADMISSION_INT_H

#include <stddef.h>

#include <jansson.h>
#include <skiff/admission.h>
#include <uv.h>

struct api_server;
struct api_call;

typedef struct admission_chain admission_chain_t;

/* A module compiled into the server. attach/store_event/detach are for
 * built-ins that keep state next to the server (ResourceQuota's usage):
 * attach runs once the chain knows its server, store_event for every key
 * the store changes, detach when the server closes (may be NULL). */
typedef struct admission_builtin {
    const char *name;             /* kube-apiserver's name: "NamespaceLifecycle" */
    int default_on;
    const skiff_admission_vtable_t *vt;
    int (*attach)(skiff_plugin_ctx_t *ctx, struct api_server *s);
    void (*store_event)(skiff_plugin_ctx_t *ctx, const char *key);
    void (*detach)(skiff_plugin_ctx_t *ctx);
} admission_builtin_t;

/* The built-ins, in chain order (admission_builtins.c). */
extern const admission_builtin_t *const admission_builtin_list[];

/* Builds the chain: the default built-ins, plus what enable names
 * (built-in names or plugin names, comma-separated), minus what disable
 * names. Named plugins are loaded from the plugin directories and must be
 * of kind SKIFF_PLUGIN_ADMISSION; their init and start hooks run here,
 * after their settings ("plugin.setting=value;...", NULL for none).
 * 0, or SKIFF_E* with a message for the user in err. */
int admission_chain_new(uv_loop_t *loop, const char *data_dir, const char *enable,
                        const char *disable, const char *settings, admission_chain_t **out,
                        char *err, size_t errlen);
/* "NamespaceLifecycle,LimitRanger,..." (borrowed) */
const char *admission_chain_summary(const admission_chain_t *ch);
/* The server the chain serves (its caches, its store). */
void admission_chain_attach(admission_chain_t *ch, struct api_server *s);
/* A key the store changed ("/registry/core/pods/ns/name"). */
void admission_chain_store_event(admission_chain_t *ch, const char *key);
/* Stops the built-ins' background work (handles closed by the time the
 * loop has run once more). */
void admission_chain_detach(admission_chain_t *ch);
void admission_chain_free(admission_chain_t *ch);

enum { ADMISSION_MUTATE = 1, ADMISSION_VALIDATE = 2 };

/* Runs one phase of the chain for call c on object obj (NULL for delete)
 * and old (NULL for create). 0 when every module allowed it; -1 after
 * sending the denial. Warnings go to c's Warning headers. */
int admission_run(admission_chain_t *ch, struct api_call *c, int phase,
                  skiff_admission_operation_t op, json_t *obj, const json_t *old);

/* For built-ins: deny with Kubernetes' own wording.
 * admission_forbid: 403 `<resource> "<name>" is forbidden: MESSAGE`.
 * admission_deny_raw: code, reason and the whole message as given
 * (details name the object). Both return SKIFF_ADMISSION_DENIED. */
int admission_forbid(const skiff_admission_request_t *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int admission_deny_raw(const skiff_admission_request_t *req, int code, const char *reason,
                       json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* 422 Invalid for one field, worded as validation words it
 * (`Namespace "x" is invalid: FIELD: MESSAGE`); reason is a cause reason
 * such as "FieldValueInvalid". */
int admission_invalid(const skiff_admission_request_t *req, const char *field, const char *reason,
                      const char *message);
/* For built-ins wrapping code that answers the call itself on failure:
 * the request is denied and already answered. */
int admission_answered(const skiff_admission_request_t *req);
/* A core (v1) object from the cache, borrowed and shared (never change
 * it): valid until the hook returns. Cheaper than skiff_admission_get,
 * which decodes a copy. NULL when absent. */
const json_t *admission_peek(const skiff_admission_request_t *req, const char *resource,
                             const char *ns, const char *name);
/* The call a request belongs to (built-ins that need the server). */
struct api_call *admission_call(const skiff_admission_request_t *req);
/* Is this request about the core-group resource `resource` itself (no subresource)? */
int admission_is(const skiff_admission_request_t *req, const char *group, const char *resource);

#endif
