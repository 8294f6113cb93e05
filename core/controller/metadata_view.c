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
 * object). Copies: the received tree is shared with the API server's
 * threads and is only read. Runs on the loop. */
#include <skiff/controller.h>
#include <skiff/objects.h>

#define METADATA_KEPT                                                                          \
    "name", "namespace", "uid", "resourceVersion", "deletionTimestamp",                        \
        "deletionGracePeriodSeconds", "ownerReferences", "finalizers"

/* Copies the members of from named in keys that are there and not null. */
static int copy_members(json_t *to, const json_t *from, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(from, keys[i]);
        if (v && !json_is_null(v) &&
            json_object_set_new_nocheck(to, keys[i], skiff_json_copy(v)) != 0)
            return -1;
    }
    return 0;
}

json_t *skiff_metadata_view(void *data, json_t *obj)
{
    (void)data;
    static const char *const top[] = {"apiVersion", "kind"};
    static const char *const kept[] = {METADATA_KEPT};
    if (!json_is_object(obj)) return json_incref(obj);
    json_t *out = json_object();
    json_t *m = out ? json_object() : NULL;
    /* out holds m from here on (set_new releases it on failure) */
    if (!m || json_object_set_new_nocheck(out, "metadata", m) != 0 ||
        copy_members(out, obj, top, sizeof top / sizeof *top) != 0 ||
        copy_members(m, json_object_get(obj, "metadata"), kept, sizeof kept / sizeof *kept) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}
