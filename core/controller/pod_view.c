/* core/controller/pod_view.c - skiff_pod_view (skiff/controller.h): what
 * the control plane keeps of a pod, the transform of the one pods
 * informer that the workload controllers, the garbage collector, the
 * endpoints controllers and the default scheduler share. A pod stored
 * whole is a jansson tree of ~12 KB (defaulted containers, the service
 * account volume and its mounts, managedFields); of a pod bound to a node
 * they read a few members, so the cache holds a reduced copy instead. A
 * pod not bound yet is kept whole: the scheduler runs its steps (C or
 * Lua, any of which may read any member) on it, and it is bound soon.
 *
 * Kept of a bound pod, and who reads it:
 *  - apiVersion, kind: Events and ownerReferences that name the pod
 *    (StatefulSet claims owned by a pod, the garbage collector's Events).
 *  - metadata name, namespace, uid, resourceVersion, generation,
 *    creationTimestamp, deletionTimestamp,
 *    deletionGracePeriodSeconds, labels, ownerReferences, finalizers:
 *    everyone (keys, owner and label indexes, selectors, adoption and
 *    release patches, template-hash and controller-revision-hash labels,
 *    StatefulSet identity labels, ranking by age, terminating pods, Job
 *    tracking finalizers, the garbage collector's owners and finalizers,
 *    endpoints' targetRef, inter-pod affinity and spread).
 *  - metadata.annotations, without kubectl's last-applied-configuration
 *    (a copy of the whole object): pod-deletion-cost (ReplicaSet ranking),
 *    the Job completion index.
 *  - spec nodeName (ranking, DaemonSet placement, endpoints' nodeName, the
 *    scheduler's node), hostname and subdomain (StatefulSet identity,
 *    endpoints' hostname), restartPolicy (whether a pod belongs in
 *    endpoints), affinity (the node a DaemonSet pod targets; the
 *    scheduler's inter-pod anti-affinity of placed pods), schedulerName,
 *    priority, preemptionPolicy and overhead (the scheduler's accounting
 *    and preemption) -- restartPolicy, schedulerName, priority and
 *    preemptionPolicy only when they are not Kubernetes' defaults (Always,
 *    default-scheduler, 0, PreemptLowerPriority), which a reader takes
 *    for a missing one --, containers and initContainers with their name, image
 *    (image locality), resources (requests counted on the node), ports
 *    (host ports; endpoints' named target ports) and restartPolicy
 *    (sidecars), volumes that are persistentVolumeClaims with their name
 *    and claim (StatefulSet storage).
 *  - status phase, podIP, reason, nominatedNodeName (endpoints, Jobs,
 *    preemption); podIPs when it says more than podIP (a second address:
 *    its readers fall back to podIP); the Ready and DisruptionTarget
 *    conditions with their type, status, reason and lastTransitionTime
 *    (readiness and availability, Ready's time for ranking and endpoints'
 *    trigger time; why a pod was stopped); and containerStatuses and
 *    initContainerStatuses with their name, ready, started, restartCount,
 *    and state and lastState when terminated (restart counts for ranking
 *    and Jobs, exit codes).
 * Everything else (generateName, command, args, env, volumeMounts, probes,
 * securityContext, tolerations, other volumes, managedFields, other
 * conditions, qosClass, hostIP(s), startTime, a running container's start
 * time, image ids...) is dropped. No controller writes a
 * cached pod back whole: pod writes are creates from a template, deletes,
 * bindings and patches built from the members above.
 *
 * The received pod is shared and read-only, and is only read: the view
 * is built of copies (see view_copy_members). Values that many pods have alike (a
 * template's labels, annotations and reduced containers, its owner
 * reference, the namespace) are interned: one tree serves every pod that
 * has it. Runs on the loop. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>
#include <skiff/objects.h>

#include "controller/view_copy.h"
#include "controller/view_intern.h"

/* ---- building the copy ------------------------------------------------------------- */

/* A new array of the elements of list (an array of objects), each with
 * only keys; keep(e) may skip an element (NULL: keep all). NULL when list
 * is empty or missing, or out of memory (*failed set). */
static json_t *reduce_list(const json_t *list, const char *const *keys,
                           int (*keep)(const json_t *e), int *failed)
{
    if (!json_array_size(list)) return NULL;
    json_t *a = json_array();
    size_t i;
    json_t *e;
    if (!a) goto fail;
    json_array_foreach(list, i, e) {
        if (!json_is_object(e) || (keep && !keep(e))) continue;
        json_t *o = json_object();
        if (!o || json_array_append_new(a, o) != 0 || view_copy_members(o, e, keys) != 0)
            goto fail;
    }
    if (json_array_size(a)) return a;
    json_decref(a);
    return NULL;
fail:
    json_decref(a);
    *failed = 1;
    return NULL;
}

static json_t *meta_view(const json_t *meta)
{
    /* unique to each pod: as they are */
    static const char *const own[] = {"name", "uid", "resourceVersion", "generation",
                                      "deletionTimestamp", "deletionGracePeriodSeconds", NULL};
    /* alike across a template's pods: interned */
    static const char *const alike[] = {"namespace", "creationTimestamp", "labels",
                                        "ownerReferences", "finalizers", NULL};
    json_t *m = json_object();
    if (!m || view_copy_members(m, meta, own) != 0 || view_copy_interned(m, meta, alike) != 0 ||
        view_set_annotations(m, json_object_get(meta, "annotations")) != 0)
        goto fail;
    return m;
fail:
    json_decref(m);
    return NULL;
}

static int is_claim_volume(const json_t *v)
{
    return json_is_object(json_object_get(v, "persistentVolumeClaim"));
}

/* Members the API server sets on every pod, left out of a bound pod's
 * view when they hold Kubernetes' default: a reader takes a missing one
 * as that default (a member of a pod costs ~80 bytes, repeated in
 * every pod: 20 MB at 50,000 pods for these four). */
static int is_spec_default(const char *key, const json_t *v)
{
    static const char *const defaults[][2] = {
        {"restartPolicy", "Always"},
        {"schedulerName", "default-scheduler"},
        {"preemptionPolicy", "PreemptLowerPriority"},
    };
    if (strcmp(key, "priority") == 0) return json_is_integer(v) && json_integer_value(v) == 0;
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
        if (strcmp(key, defaults[i][0]) == 0) {
            const char *s = json_string_value(v);
            return s && strcmp(s, defaults[i][1]) == 0;
        }
    return 0;
}

static json_t *spec_view(const json_t *spec)
{
    static const char *const own[] = {"nodeName", "hostname", NULL};
    static const char *const alike[] = {"subdomain",  "restartPolicy",    "affinity",
                                        "schedulerName", "priority", "preemptionPolicy",
                                        "overhead",   NULL};
    static const char *const container_keys[] = {"name", "image", "resources", "ports",
                                                 "restartPolicy", NULL};
    static const char *const volume_keys[] = {"name", "persistentVolumeClaim", NULL};
    static const char *const lists[] = {"containers", "initContainers", "volumes"};
    json_t *s = json_object();
    if (!s || view_copy_members(s, spec, own) != 0) goto fail;
    for (const char *const *k = alike; *k; k++) {
        const json_t *v = json_object_get(spec, *k);
        if (!is_spec_default(*k, v) && view_set_interned(s, *k, v) != 0) goto fail;
    }
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        int failed = 0, vols = i == 2;
        json_t *a = reduce_list(json_object_get(spec, lists[i]),
                                vols ? volume_keys : container_keys,
                                vols ? is_claim_volume : NULL, &failed);
        if (failed || view_set_interned_own(s, lists[i], a) != 0) goto fail;
    }
    return s;
fail:
    json_decref(s);
    return NULL;
}

/* Ready (readiness, availability, ranking, endpoints) and DisruptionTarget
 * (why a pod was stopped, for Jobs); nothing reads the others. */
static int is_kept_condition(const json_t *c)
{
    const char *t = json_string_value(json_object_get(c, "type"));
    return t && (strcmp(t, "Ready") == 0 || strcmp(t, "DisruptionTarget") == 0);
}

/* podIPs is worth keeping when it says more than podIP: a second address
 * (dual-stack) or none; its readers fall back to podIP (one array and
 * object per pod less, ~0.5 KB). */
static int pod_ips_add_to(const json_t *status)
{
    const json_t *ips = json_object_get(status, "podIPs");
    if (json_array_size(ips) != 1) return 1;
    const char *one = json_string_value(json_object_get(json_array_get(ips, 0), "ip"));
    const char *ip = json_string_value(json_object_get(status, "podIP"));
    return !one || !ip || strcmp(one, ip) != 0 ||
           json_object_size(json_array_get(ips, 0)) != 1;
}

/* A container's status as the controllers read it: its name, readiness
 * and restart count, and its state and last state only when terminated
 * (exit code and reason; a running container's start time, unique to
 * each pod, would keep the statuses of a template's pods from being one
 * shared tree). */
static json_t *container_statuses_view(const json_t *list, int *failed)
{
    static const char *const keys[] = {"name", "ready", "started", "restartCount", NULL};
    static const char *const states[] = {"state", "lastState", NULL};
    json_t *a = reduce_list(list, keys, NULL, failed);
    size_t i, j = 0;
    const json_t *from;
    json_array_foreach(list, i, from) {
        if (!json_is_object(from)) continue; /* as reduce_list skipped it */
        json_t *e = json_array_get(a, j++);
        for (const char *const *k = states; *k && e; k++) {
            const json_t *t = json_object_get(json_object_get(from, *k), "terminated");
            if (!t) continue;
            json_t *v = json_object();
            if (!v || json_object_set_new_nocheck(v, "terminated", skiff_json_copy(t)) != 0) {
                json_decref(v);
                goto fail;
            }
            if (json_object_set_new_nocheck(e, *k, v) != 0) goto fail;
        }
    }
    return a;
fail:
    json_decref(a);
    *failed = 1;
    return NULL;
}

static json_t *status_view(const json_t *status)
{
    static const char *const own[] = {"phase", "podIP", "reason", "nominatedNodeName", NULL};
    static const char *const cond_keys[] = {"lastTransitionTime", NULL};
    /* the same words in every pod's condition: one string each (a
     * condition not shared as a whole still shares them) */
    static const char *const cond_alike[] = {"type", "status", "reason", NULL};
    json_t *st = json_object();
    if (!st || view_copy_members(st, status, own) != 0) goto fail;
    if (pod_ips_add_to(status)) {
        static const char *const ips[] = {"podIPs", NULL};
        if (view_copy_members(st, status, ips) != 0) goto fail;
    }
    int failed = 0;
    json_t *a = reduce_list(json_object_get(status, "conditions"), cond_keys, is_kept_condition,
                            &failed);
    size_t i, j = 0;
    const json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c) {
        if (failed || !json_is_object(c) || !is_kept_condition(c)) continue; /* as reduce_list */
        if (view_copy_interned(json_array_get(a, j++), c, cond_alike) != 0) failed = 1;
    }
    if (failed) {
        json_decref(a);
        goto fail;
    }
    /* times have a resolution of one second: the pods that turned ready in
     * the same second have one conditions tree */
    if (view_set_interned_own(st, "conditions", a) != 0) goto fail;
    static const char *const lists[] = {"containerStatuses", "initContainerStatuses"};
    for (i = 0; i < sizeof lists / sizeof *lists; i++) {
        a = container_statuses_view(json_object_get(status, lists[i]), &failed);
        if (failed || view_set_interned_own(st, lists[i], a) != 0) goto fail;
    }
    return st;
fail:
    json_decref(st);
    return NULL;
}

/* The status view, shared while the pod has no address of its own yet
 * (the address makes it unique: looking it up would only cost). */
static json_t *status_part(const json_t *status)
{
    json_t *st = status_view(status);
    return st && !json_object_get(st, "podIP") ? view_intern_own(st) : st;
}

json_t *skiff_pod_view(void *data, json_t *pod)
{
    (void)data;
    static const char *const type_keys[] = {"apiVersion", "kind", NULL};
    const json_t *spec = json_object_get(pod, "spec");
    const char *node = json_string_value(json_object_get(spec, "nodeName"));
    if (!json_is_object(pod) || !node || !*node) return json_incref(pod);
    json_t *out = json_object();
    if (!out || view_copy_interned(out, pod, type_keys) != 0 ||
        view_set_part(out, "metadata", meta_view(json_object_get(pod, "metadata"))) != 0 ||
        /* a spec is alike across a template's pods on one node, a status
         * across pods not started yet (bare pods bound by the thousand:
         * 60 MB less at 50,000): one shared tree each */
        view_set_part(out, "spec", view_intern_own(spec_view(spec))) != 0 ||
        view_set_part(out, "status", status_part(json_object_get(pod, "status"))) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}
