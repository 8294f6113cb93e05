/* core/controller/node_view.c - skiff_node_view (skiff/controller.h): what
 * the control plane keeps of a Node, the transform of the one nodes
 * informer that the default scheduler, the DaemonSet controller and the
 * EndpointSlice controller share. A Node stored whole is a jansson tree of
 * ~11 KB (conditions with their messages and heartbeat times, addresses,
 * nodeInfo, daemonEndpoints...) and a later status patch shares most of
 * the tree it came from: 5,000 nodes cost the scheduler 87 MB of them.
 * Its readers need a few members.
 *
 * Kept, and who reads it:
 *  - apiVersion, kind: Events about the node.
 *  - metadata name, uid, resourceVersion, generation, creationTimestamp,
 *    deletionTimestamp, deletionGracePeriodSeconds, labels, ownerReferences,
 *    finalizers, and the annotations without kubectl's
 *    last-applied-configuration: the scheduler (node selectors and
 *    affinity, topology domains, steps reading annotations), DaemonSets
 *    (eligibility), EndpointSlices (the zone label).
 *  - spec, whole (taints, unschedulable, podCIDR(s), providerID): taints
 *    and unschedulable for the scheduler and DaemonSets.
 *  - status capacity, allocatable and images: the scheduler's resource
 *    fit and image locality.
 * Dropped: every other member of status (conditions, addresses, nodeInfo,
 * daemonEndpoints, volumes...) and managedFields. None of the readers
 * reads conditions: like kube-scheduler, the scheduler goes by taints
 * (which Kubernetes' node lifecycle controller derives from conditions).
 *
 * The received node is shared and read-only, and is only read: the view
 * is built of copies (see view_copy_members). Values many nodes have alike
 * (a machine type's capacity and allocatable, images, annotations) are
 * interned. Runs on the loop. */
#include <skiff/controller.h>
#include <skiff/objects.h>

#include "controller/view_copy.h"
#include "controller/view_intern.h"

static json_t *meta_view(const json_t *meta)
{
    /* unique to each node: as they are */
    static const char *const own[] = {"name", "uid", "resourceVersion", "generation",
                                      "deletionTimestamp", "deletionGracePeriodSeconds",
                                      "labels", NULL};
    static const char *const alike[] = {"creationTimestamp", "ownerReferences", "finalizers",
                                        NULL};
    json_t *m = json_object();
    if (!m || view_copy_members(m, meta, own) != 0 || view_copy_interned(m, meta, alike) != 0 ||
        view_set_annotations(m, json_object_get(meta, "annotations")) != 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static json_t *status_view(const json_t *status)
{
    static const char *const alike[] = {"capacity", "allocatable", "images", NULL};
    json_t *st = json_object();
    if (!st || view_copy_interned(st, status, alike) != 0) {
        json_decref(st);
        return NULL;
    }
    return st;
}

json_t *skiff_node_view(void *data, json_t *node)
{
    (void)data;
    static const char *const type_keys[] = {"apiVersion", "kind", NULL};
    static const char *const spec_key[] = {"spec", NULL};
    if (!json_is_object(node)) return json_incref(node);
    json_t *out = json_object();
    if (!out || view_copy_interned(out, node, type_keys) != 0 ||
        view_set_part(out, "metadata", meta_view(json_object_get(node, "metadata"))) != 0 ||
        view_copy_members(out, node, spec_key) != 0 ||
        view_set_part(out, "status", status_view(json_object_get(node, "status"))) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}
