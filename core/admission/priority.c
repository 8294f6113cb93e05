/* core/admission/priority.c - Priority, as in kube-apiserver: a pod's
 * spec.priorityClassName (or the global default class) becomes
 * spec.priority and spec.preemptionPolicy, and PriorityClass writes are
 * checked. The rules themselves live with the API server's PriorityClass
 * code (core/api/priority.c); this file only puts them in the chain. */
#include "admission/admission.h"

#include <string.h>

#include "api/apiserver_int.h"

static int admit(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req)
{
    if (req->operation != SKIFF_ADMISSION_CREATE || !req->object) return 0;
    api_call_t *c = admission_call(req);
    if (admission_is(req, "", "pods") && api_pod_resolve_priority(c, req->object) != 0)
        return admission_answered(req);
    return 0;
}

static int validate(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req)
{
    if (!req->object || !admission_is(req, "scheduling.k8s.io", "priorityclasses")) return 0;
    if (req->operation != SKIFF_ADMISSION_CREATE && req->operation != SKIFF_ADMISSION_UPDATE)
        return 0;
    api_call_t *c = admission_call(req);
    if (api_priority_class_check(c, req->object, req->operation == SKIFF_ADMISSION_CREATE) != 0)
        return admission_answered(req);
    return 0;
}

static const skiff_admission_vtable_t vt = {.mutate = admit, .validate = validate};

const admission_builtin_t admission_priority = {
    .name = "Priority",
    .default_on = 1,
    .vt = &vt,
};
