/* core/admission/namespace_lifecycle.c - NamespaceLifecycle, as in
 * kube-apiserver: nothing is created in a namespace that does not exist
 * (404) or is being deleted (403), and the namespaces the system needs
 * (default, kube-system, kube-public, kube-node-lease) cannot be deleted.
 * Updates and deletes inside a terminating namespace go on: that is how it
 * empties. */
#include "admission/admission.h"

#include <string.h>

#include "api/apiserver_int.h"

static const char *const immortal[] = {"default", "kube-system", "kube-public",
                                       "kube-node-lease", NULL};

/* Review kinds are answered, not stored, and may name any namespace. */
static int exempt(const skiff_admission_request_t *req)
{
    return strcmp(req->group, "authorization.k8s.io") == 0 ||
           strcmp(req->group, "authentication.k8s.io") == 0;
}

/* a mutating module in kube-apiserver (it runs first, before validation) */
static int admit(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req)
{
    if (req->operation == SKIFF_ADMISSION_DELETE && admission_is(req, "", "namespaces")) {
        for (size_t i = 0; immortal[i]; i++)
            if (strcmp(req->name, immortal[i]) == 0)
                return admission_forbid(req, "this namespace may not be deleted");
        return 0;
    }
    if (req->operation != SKIFF_ADMISSION_CREATE || !req->ns[0] || exempt(req)) return 0;
    const json_t *ns = admission_peek(req, "namespaces", NULL, req->ns);
    if (!ns)
        return admission_deny_raw(req, 404, "NotFound",
                                  json_pack("{s:s, s:s}", "name", req->ns, "kind", "namespaces"),
                                  "namespaces \"%s\" not found", req->ns);
    const json_t *dt = json_object_get(json_object_get(ns, "metadata"), "deletionTimestamp");
    int terminating = dt && !json_is_null(dt);
    if (terminating)
        return admission_forbid(req,
                                "unable to create new content in namespace %s because it is "
                                "being terminated",
                                req->ns);
    return 0;
}

static const skiff_admission_vtable_t vt = {.mutate = admit};

const admission_builtin_t admission_namespace_lifecycle = {
    .name = "NamespaceLifecycle",
    .default_on = 1,
    .vt = &vt,
};
