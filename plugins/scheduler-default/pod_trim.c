/* plugins/scheduler-default/pod_trim.c - what the scheduler keeps of a pod
 * bound to a node: the transform of its pods informer. A bound pod is only
 * counted on its node (requests, ports, labels for affinity and spread,
 * its own affinity terms, priority for preemption), so its cached object
 * is a reduced copy, a few members of the Pod instead of the whole tree;
 * a pending pod is kept whole, since the cycle and step plugins read all
 * of it. skiff/scheduler.h lists what a bound pod's object holds.
 *
 * The received pod is shared and read-only, and is not even referenced:
 * taking references to its members writes their reference counts, memory
 * the watch cache and other threads read; what is kept is copied
 * (skiff_json_copy). Members that many pods have alike (a template's
 * labels and containers, a node's spec, the namespace) are interned: one
 * tree serves every pod that has it, so a bound pod costs little more
 * than its metadata. Everything here runs on the server's loop. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

#include "sched.h"

/* ---- interning ----------------------------------------------------------------------- */

/* The values trimmed pods share (skiff_json_interner_t); it lives as long
 * as the plugin, the pods informer's transform being this file's. */
static skiff_json_interner_t *shared;

__attribute__((destructor)) static void shared_free(void)
{
    skiff_json_interner_free(shared);
    shared = NULL;
}

static skiff_json_interner_t *interner(void)
{
    if (!shared) shared = skiff_json_interner_new();
    return shared;
}

/* Takes a reference to v, a value of our own, and returns one to the
 * shared value equal to it. */
static json_t *intern(json_t *v) { return skiff_json_intern(interner(), v); }

/* A reference to the shared value equal to v, a member of a received pod,
 * which stays untouched: the first of its kind is copied. The received
 * tree is shared with the watch cache and other threads, so taking
 * references to its members would write to memory they read. */
static json_t *intern_copy(const json_t *v) { return skiff_json_intern_copy(interner(), v); }

/* Sets the received from's member key on to, interned. */
static void set_interned(json_t *to, const char *key, const json_t *from)
{
    json_t *v = json_object_get(from, key);
    if (v && !json_is_null(v)) json_object_set_new_nocheck(to, key, intern_copy(v));
}

/* Sets our own from's member key on to, interned. */
static void set_interned_own(json_t *to, const char *key, json_t *from)
{
    json_t *v = json_object_get(from, key);
    if (v && !json_is_null(v)) json_object_set_new_nocheck(to, key, intern(json_incref(v)));
}

/* ---- the reduced pod ---------------------------------------------------------------------- */

/* Copies of from's members keys (from is received: see intern_copy). */
static void copy_keys(json_t *to, const json_t *from, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(from, *keys);
        if (v && !json_is_null(v)) json_object_set_new_nocheck(to, *keys, skiff_json_copy(v));
    }
}

static const char *const container_keys[] = {"name", "image", "resources", "ports",
                                             "restartPolicy", NULL};

static int copy_containers(json_t *spec, const json_t *from, const char *name)
{
    const json_t *list = json_object_get(from, name);
    if (!json_array_size(list)) return 0;
    json_t *a = json_array();
    if (!a || json_object_set_new_nocheck(spec, name, a) != 0) return -1;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        json_t *o = json_object();
        if (!o || json_array_append_new(a, o) != 0) return -1;
        copy_keys(o, c, container_keys);
    }
    return 0;
}

json_t *pod_trim_bound(void *data, json_t *pod)
{
    (void)data;
    /* unique to each pod: copied as they are */
    static const char *const meta_keys[] = {"name", "uid", "resourceVersion",
                                            "deletionTimestamp", NULL};
    /* alike across pods: interned */
    static const char *const meta_shared[] = {"namespace", "creationTimestamp", "labels",
                                              "ownerReferences", NULL};
    static const char *const spec_keys[] = {"nodeName", "schedulerName", "priority",
                                            "preemptionPolicy", "affinity", "overhead", NULL};
    static const char *const status_keys[] = {"phase", "nominatedNodeName", NULL};
    const json_t *spec = json_object_get(pod, "spec");
    const char *node = json_string_value(json_object_get(spec, "nodeName"));
    if (!json_is_object(pod) || !node || !*node) return json_incref(pod);
    json_t *out = json_object(), *m = json_object(), *s = json_object(), *st = json_object();
    if (!out || !m || !s || !st) goto fail;
    /* no apiVersion and kind: a member costs a bound pod ~70 bytes, and a
     * node's pods are Pods by construction */
    const json_t *meta = json_object_get(pod, "metadata");
    copy_keys(m, meta, meta_keys);
    for (const char *const *k = meta_shared; *k; k++) set_interned(m, *k, meta);
    if (json_object_set_nocheck(out, "metadata", m) != 0) goto fail;
    copy_keys(s, spec, spec_keys);
    if (copy_containers(s, spec, "containers") != 0 ||
        copy_containers(s, spec, "initContainers") != 0)
        goto fail;
    /* the containers of a template are alike across its pods, the whole
     * spec across its pods on one node */
    set_interned_own(s, "containers", s);
    set_interned_own(s, "initContainers", s);
    s = intern(s);
    if (json_object_set_nocheck(out, "spec", s) != 0) goto fail;
    copy_keys(st, json_object_get(pod, "status"), status_keys);
    if (json_object_size(st)) {
        st = intern(st);
        if (json_object_set_nocheck(out, "status", st) != 0) goto fail;
    }
    json_decref(m);
    json_decref(s);
    json_decref(st);
    return out;
fail:
    json_decref(out);
    json_decref(m);
    json_decref(s);
    json_decref(st);
    return NULL;
}
