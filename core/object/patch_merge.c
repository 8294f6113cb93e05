/* core/object/patch_merge.c - JSON merge patch (RFC 7386).
 *
 * null deletes a member, objects merge recursively, anything else (arrays
 * included) replaces. The input document is never modified. */
#include "object/patch.h"

#include <skiff/objects.h>

/* Merges patch into target (owned, may be NULL); returns the new owned value. */
static json_t *merge(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return skiff_json_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (!target)
            return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        if (json_is_null(v)) {
            json_object_del(target, k);
            continue;
        }
        json_t *cur = json_object_get(target, k);
        json_t *merged = merge(json_incref(cur), v);
        if (!merged || json_object_set_new(target, k, merged) < 0) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

json_t *patch_merge_apply(const json_t *doc, const json_t *patch, char *err, size_t errlen)
{
    patch_fail_(0, NULL, 0, "%s", "");
    if (!patch)
        return patch_fail_(1, err, errlen, "merge patch: no patch document");
    json_t *target = doc ? skiff_json_copy(doc) : NULL;
    if (doc && !target)
        return patch_fail_(1, err, errlen, "merge patch: out of memory");
    json_t *out = merge(target, patch);
    if (!out)
        return patch_fail_(1, err, errlen, "merge patch: out of memory");
    return out;
}
