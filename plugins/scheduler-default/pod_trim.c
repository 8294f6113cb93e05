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

/* The values trimmed pods share, by a hash of their content (json_equal
 * decides); open addressing, rebuilt without the values no pod uses any
 * more each time it fills up. */
typedef struct interned {
    uint64_t h;
    json_t *v; /* NULL: free */
} interned_t;

static interned_t *table;
static size_t table_cap, table_n;

__attribute__((destructor)) static void table_free(void)
{
    for (size_t i = 0; i < table_cap; i++) json_decref(table[i].v);
    free(table);
    table = NULL;
    table_cap = table_n = 0;
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Equal values (json_equal) hash alike: an object's members in any order. */
static uint64_t hash_json(const json_t *v)
{
    uint64_t h = (uint64_t)json_typeof(v) + 1;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return mix(h, hash_bytes(json_string_value(v), json_string_length(v)));
    case JSON_INTEGER:
        return mix(h, (uint64_t)json_integer_value(v));
    case JSON_REAL: {
        double d = json_real_value(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return mix(h, bits);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)v, i, e) h = mix(h, hash_json(e));
        return h;
    }
    case JSON_OBJECT: {
        uint64_t sum = 0;
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) sum += mix(hash_bytes(k, strlen(k)), hash_json(e));
        return mix(h, sum);
    }
    default:
        return h;
    }
}

static void table_place(interned_t *t, size_t cap, uint64_t h, json_t *v)
{
    size_t i = h & (cap - 1);
    while (t[i].v) i = (i + 1) & (cap - 1);
    t[i].h = h;
    t[i].v = v;
}

/* Keeps what pods still use, in a table with room for as many again. */
static int table_rebuild(void)
{
    size_t live = 0;
    for (size_t i = 0; i < table_cap; i++)
        if (table[i].v && table[i].v->refcount > 1) live++;
    size_t cap = 1024;
    while (cap < live * 4) cap *= 2;
    /* the new table first: the old one stays whole when memory runs out */
    interned_t *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    for (size_t i = 0; i < table_cap; i++) {
        if (!table[i].v) continue;
        if (table[i].v->refcount == 1) json_decref(table[i].v);
        else table_place(t, cap, table[i].h, table[i].v);
    }
    free(table);
    table = t;
    table_cap = cap;
    table_n = live;
    return 0;
}

/* The table's value equal to v (hashing to h), or NULL. */
static json_t *lookup(uint64_t h, const json_t *v)
{
    if (!table_cap) return NULL;
    for (size_t i = h & (table_cap - 1); table[i].v; i = (i + 1) & (table_cap - 1))
        if (table[i].h == h && json_equal(table[i].v, (json_t *)v)) return table[i].v;
    return NULL;
}

/* Puts v (a reference the table takes) in the table; -1 on ENOMEM. */
static int insert(uint64_t h, json_t *v)
{
    if ((table_n + 1) * 2 > table_cap && table_rebuild() != 0) return -1;
    table_place(table, table_cap, h, json_incref(v));
    table_n++;
    return 0;
}

/* Takes a reference to v, a value of our own, and returns one to the
 * shared value equal to it (v itself when it is the first, or on ENOMEM). */
static json_t *intern(json_t *v)
{
    if (!v) return v;
    uint64_t h = hash_json(v);
    json_t *t = lookup(h, v);
    if (t) {
        json_decref(v);
        return json_incref(t);
    }
    insert(h, v);
    return v;
}

/* A reference to the shared value equal to v, a member of a received pod,
 * which stays untouched: the first of its kind is copied into the table.
 * The received tree is shared with the watch cache and other threads, so
 * taking references to its members would write to memory they read. */
static json_t *intern_copy(const json_t *v)
{
    uint64_t h = hash_json(v);
    json_t *t = lookup(h, v);
    if (t) return json_incref(t);
    json_t *c = skiff_json_copy(v);
    if (c) insert(h, c);
    return c;
}

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
