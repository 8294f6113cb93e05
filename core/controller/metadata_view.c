/* core/controller/metadata_view.c - skiff_metadata_view (skiff/controller.h):
 * an object reduced to what a reader of metadata alone needs, the
 * transform of metadata informers (Kubernetes' PartialObjectMetadata). The
 * garbage collector watches every resource this way: holding each
 * ConfigMap, Secret, Lease and Event whole for it cost as much as the rest
 * of the server (95 against 23 MB with 20,000 ConfigMaps).
 *
 * Kept: apiVersion, kind, and of metadata name, namespace, uid,
 * resourceVersion, deletionTimestamp, deletionGracePeriodSeconds,
 * ownerReferences and finalizers (owners and dependents, deletion in the
 * background, foreground or orphaning, preconditions, Events about the
 * object). Copies (view_copy_members). Runs on the loop. */
#include <skiff/controller.h>

#include "controller/view_copy.h"

json_t *skiff_metadata_view(void *data, json_t *obj)
{
    (void)data;
    static const char *const top[] = {"apiVersion", "kind", NULL};
    static const char *const kept[] = {"name", "namespace", "uid", "resourceVersion",
                                       "deletionTimestamp", "deletionGracePeriodSeconds",
                                       "ownerReferences", "finalizers", NULL};
    if (!json_is_object(obj)) return json_incref(obj);
    json_t *out = json_object();
    json_t *m = out ? json_object() : NULL;
    /* out holds m from here on (set_new releases it on failure) */
    if (!m || json_object_set_new_nocheck(out, "metadata", m) != 0 ||
        view_copy_members(out, obj, top) != 0 ||
        view_copy_members(m, json_object_get(obj, "metadata"), kept) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}
