/* plugins/controllers/common/candidates.c - the objects a workload
 * controller may own or adopt, found through the informer's owner and label
 * indexes rather than by scanning the namespace: a reconcile then costs what
 * its owner has, not what the namespace holds (500 Deployments each looking
 * at 500 ReplicaSets, or a ReplicaSet at 50,000 pods, at every sync). */
#include "candidates.h"

#include <string.h>

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

json_t *wl_candidates(skiff_informer_t *inf, const char *ns, const char *owner_uid,
                      const json_t *selector)
{
    json_t *out = json_array();
    json_t *seen = json_object();
    json_t *owned = owner_uid ? skiff_informer_list_owner(inf, owner_uid) : NULL;
    const json_t *ml = json_object_get(selector, "matchLabels");
    json_t *more = NULL;
    if (json_object_size(ml) > 0) {
        void *it = json_object_iter((json_t *)ml);
        const char *v = json_string_value(json_object_iter_value(it));
        more = v ? skiff_informer_list_label(inf, json_object_iter_key(it), v) : json_array();
    } else {
        more = skiff_informer_list_namespace(inf, ns);
    }
    json_t *lists[2] = {owned, more};
    for (size_t l = 0; l < 2 && out && seen; l++) {
        size_t i;
        json_t *o;
        json_array_foreach(lists[l], i, o) {
            const char *ons = meta_str(o, "namespace");
            const char *name = meta_str(o, "name");
            if (!name || strcmp(ons ? ons : "", ns ? ns : "") != 0 || json_object_get(seen, name))
                continue;
            json_object_set_new(seen, name, json_true());
            json_array_append(out, o);
        }
    }
    json_decref(owned);
    json_decref(more);
    json_decref(seen);
    return out;
}
