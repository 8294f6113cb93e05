/* core/admission/default_storage_class.c - DefaultStorageClass, as in
 * kube-apiserver: a PersistentVolumeClaim created without
 * spec.storageClassName (absent, not "") gets the StorageClass annotated
 * storageclass.kubernetes.io/is-default-class: "true" (or the beta
 * annotation); with several, the newest, then the first by name, as
 * Kubernetes picks. */
#include "admission/admission.h"

#include <string.h>

static int is_default(const json_t *sc)
{
    const json_t *ann = json_object_get(json_object_get(sc, "metadata"), "annotations");
    const char *v = json_string_value(json_object_get(ann, "storageclass.kubernetes.io/is-default-class"));
    if (!v) v = json_string_value(json_object_get(ann, "storageclass.beta.kubernetes.io/is-default-class"));
    return v && strcmp(v, "true") == 0;
}

static const char *meta_str(const json_t *o, const char *f)
{
    return json_string_value(json_object_get(json_object_get(o, "metadata"), f));
}

static int admit(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req)
{
    if (req->operation != SKIFF_ADMISSION_CREATE ||
        !admission_is(req, "", "persistentvolumeclaims"))
        return 0;
    json_t *spec = json_object_get(req->object, "spec");
    if (!json_is_object(spec)) return 0;
    json_t *cur = json_object_get(spec, "storageClassName");
    if (cur && !json_is_null(cur)) return 0;
    json_t *classes = skiff_admission_list(req, "storage.k8s.io/v1", "storageclasses", NULL);
    const json_t *best = NULL;
    size_t i;
    json_t *sc;
    json_array_foreach(classes, i, sc)
    {
        if (!is_default(sc)) continue;
        if (!best) {
            best = sc;
            continue;
        }
        /* RFC 3339 UTC timestamps order as strings */
        const char *t = meta_str(sc, "creationTimestamp"), *bt = meta_str(best, "creationTimestamp");
        int cmp = strcmp(t ? t : "", bt ? bt : "");
        if (cmp > 0 || (cmp == 0 && strcmp(meta_str(sc, "name"), meta_str(best, "name")) < 0))
            best = sc;
    }
    if (best) json_object_set_new(spec, "storageClassName", json_string(meta_str(best, "name")));
    json_decref(classes);
    return 0;
}

static const skiff_admission_vtable_t vt = {.mutate = admit};

const admission_builtin_t admission_default_storage_class = {
    .name = "DefaultStorageClass",
    .default_on = 1,
    .vt = &vt,
};
