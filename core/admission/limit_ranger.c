/* core/admission/limit_ranger.c - LimitRanger, as in kube-apiserver: on
 * pod create, the LimitRanges of the namespace fill missing container
 * requests and limits (mutate); pods (on create) and
 * PersistentVolumeClaims (create and update) must then keep within their
 * min, max and maxLimitRequestRatio (validate), else 403
 * `pods "x" is forbidden: maximum cpu usage per Container is 1, but limit is 2`.
 * The rules are in limit_range.c. */
#include "admission/admission.h"

#include <stdlib.h>
#include <string.h>

#include "admission/limit_range.h"

static int applies(const skiff_admission_request_t *req, const char **kind)
{
    if (!req->object) return 0;
    /* a pod's containers cannot change after create */
    if (admission_is(req, "", "pods") && req->operation == SKIFF_ADMISSION_CREATE) {
        *kind = "Pod";
        return 1;
    }
    if (admission_is(req, "", "persistentvolumeclaims") &&
        (req->operation == SKIFF_ADMISSION_CREATE || req->operation == SKIFF_ADMISSION_UPDATE)) {
        *kind = "PersistentVolumeClaim";
        return 1;
    }
    return 0;
}

static int admit(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req)
{
    const char *kind;
    if (!applies(req, &kind) || strcmp(kind, "Pod") != 0) return 0;
    json_t *ranges = skiff_admission_list(req, "v1", "limitranges", req->ns);
    if (json_array_size(ranges) > 0) limitrange_default_pod(ranges, req->object);
    json_decref(ranges);
    return 0;
}

static int validate(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req)
{
    const char *kind;
    if (!applies(req, &kind)) return 0;
    json_t *ranges = skiff_admission_list(req, "v1", "limitranges", req->ns);
    char *why = json_array_size(ranges) > 0 ? limitrange_violations(ranges, kind, req->object)
                                            : NULL;
    json_decref(ranges);
    if (!why) return 0;
    int rc = admission_forbid(req, "%s", why);
    free(why);
    return rc;
}

static const skiff_admission_vtable_t vt = {.mutate = admit, .validate = validate};

const admission_builtin_t admission_limit_ranger = {
    .name = "LimitRanger",
    .default_on = 1,
    .vt = &vt,
};
