/* plugins/scheduler-default/cache.c - the scheduler's view of the cluster:
 * one entry per node with what is bound or assumed on it, kept
 * incrementally (adding or removing one pod touches one node), and the
 * parsed form of each pod. No API calls and no libuv here. */
#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

#include "sched.h"

/* ---- string map ------------------------------------------------------------ */

#define TOMB ((char *)1)

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static int smap_grow(smap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    while (cap < (m->n + 1) * 2) cap *= 2;
    smap_entry_t *e = calloc(cap, sizeof *e);
    if (!e) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        char *k = m->e[i].key;
        if (!k || k == TOMB) continue;
        size_t j = hash_str(k) & (cap - 1);
        while (e[j].key) j = (j + 1) & (cap - 1);
        e[j] = m->e[i];
    }
    free(m->e);
    m->e = e;
    m->cap = cap;
    m->used = m->n;
    return 0;
}

static smap_entry_t *smap_find(const smap_t *m, const char *key)
{
    if (!m->cap) return NULL;
    size_t j = hash_str(key) & (m->cap - 1);
    for (size_t probes = 0; probes < m->cap; probes++) {
        smap_entry_t *e = &m->e[j];
        if (!e->key) return NULL;
        if (e->key != TOMB && strcmp(e->key, key) == 0) return e;
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void *smap_get(const smap_t *m, const char *key)
{
    smap_entry_t *e = smap_find(m, key);
    return e ? e->value : NULL;
}

int smap_put(smap_t *m, const char *key, void *value)
{
    smap_entry_t *e = smap_find(m, key);
    if (e) {
        e->value = value;
        if (m->borrowed) e->key = (char *)key;
        return 0;
    }
    if ((m->used + 1) * 4 >= m->cap * 3 && smap_grow(m) != 0) return -1;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->e[j].key && m->e[j].key != TOMB) j = (j + 1) & (m->cap - 1);
    char *k = m->borrowed ? (char *)key : strdup(key);
    if (!k) return -1;
    if (!m->e[j].key) m->used++;
    m->e[j].key = k;
    m->e[j].value = value;
    m->n++;
    return 0;
}

void *smap_del(smap_t *m, const char *key)
{
    smap_entry_t *e = smap_find(m, key);
    if (!e) return NULL;
    void *v = e->value;
    if (!m->borrowed) free(e->key);
    e->key = TOMB;
    e->value = NULL;
    m->n--;
    return v;
}

void smap_clear(smap_t *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].key || m->e[i].key == TOMB) continue;
        if (!m->borrowed) free(m->e[i].key);
        if (free_value) free_value(m->e[i].value);
    }
    int borrowed = m->borrowed;
    free(m->e);
    memset(m, 0, sizeof *m);
    m->borrowed = borrowed;
}

int smap_next(const smap_t *m, size_t *i, const char **key, void **value)
{
    for (; *i < m->cap; (*i)++) {
        smap_entry_t *e = &m->e[*i];
        if (!e->key || e->key == TOMB) continue;
        if (key) *key = e->key;
        if (value) *value = e->value;
        (*i)++;
        return 1;
    }
    return 0;
}

/* ---- resources ---------------------------------------------------------------- */

static int is_standard(const char *name)
{
    return strcmp(name, "cpu") == 0 || strcmp(name, "memory") == 0 ||
           strcmp(name, "ephemeral-storage") == 0 || strcmp(name, "pods") == 0;
}

static void scalar_add(skiff_sched_resources_t *r, const char *name, int64_t milli)
{
    for (size_t i = 0; i < r->n_scalar; i++)
        if (strcmp(r->scalar[i].name, name) == 0) {
            r->scalar[i].milli += milli;
            return;
        }
    skiff_sched_scalar_t *n = realloc(r->scalar, (r->n_scalar + 1) * sizeof *n);
    if (!n) return;
    r->scalar = n;
    n[r->n_scalar].name = strdup(name);
    if (!n[r->n_scalar].name) return;
    n[r->n_scalar].milli = milli;
    r->n_scalar++;
}

int64_t resources_scalar(const skiff_sched_resources_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_scalar; i++)
        if (strcmp(r->scalar[i].name, name) == 0) return r->scalar[i].milli;
    return 0;
}

void resources_free(skiff_sched_resources_t *r)
{
    for (size_t i = 0; i < r->n_scalar; i++) free(r->scalar[i].name);
    free(r->scalar);
    memset(r, 0, sizeof *r);
}

void resources_from_list(skiff_sched_resources_t *r, const json_t *list)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)list, k, v) {
        int64_t m = 0;
        if (skiff_quantity_milli_json(v, &m) != 0) continue;
        if (strcmp(k, "cpu") == 0) r->cpu = m;
        else if (strcmp(k, "memory") == 0) r->memory = m;
        else if (strcmp(k, "ephemeral-storage") == 0) r->ephemeral_storage = m;
        else if (strcmp(k, "pods") == 0) r->pods = m;
        else scalar_add(r, k, m);
    }
}

static void resources_add(skiff_sched_resources_t *to, const skiff_sched_resources_t *r, int sign)
{
    to->cpu += sign * r->cpu;
    to->memory += sign * r->memory;
    to->ephemeral_storage += sign * r->ephemeral_storage;
    to->pods += sign * r->pods;
    for (size_t i = 0; i < r->n_scalar; i++) scalar_add(to, r->scalar[i].name, sign * r->scalar[i].milli);
}

static void resources_copy(skiff_sched_resources_t *to, const skiff_sched_resources_t *r)
{
    memset(to, 0, sizeof *to);
    resources_add(to, r, 1);
}

/* ---- pods --------------------------------------------------------------------- */

/* kube-scheduler's scoring defaults for a container without requests. */
#define DEFAULT_MILLI_CPU 100
#define DEFAULT_MEMORY_MILLI (200LL * 1024 * 1024 * 1000)

static void container_requests(const json_t *containers, skiff_sched_resources_t *names)
{
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        const char *k;
        json_t *v;
        json_t *req = json_object_get(json_object_get(c, "resources"), "requests");
        json_t *lim = json_object_get(json_object_get(c, "resources"), "limits");
        json_object_foreach(req, k, v) if (!is_standard(k)) scalar_add(names, k, 0);
        /* a limit without a request defaults the request (API defaulting) */
        json_object_foreach(lim, k, v) if (!is_standard(k)) scalar_add(names, k, 0);
    }
}

static int64_t nonzero(const json_t *pod, const char *res, int64_t dflt)
{
    /* the sum over containers with the default for each that asks for none,
     * then the max with each init container, plus overhead */
    const json_t *spec = json_object_get(pod, "spec");
    int64_t sum = 0, init_max = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, "containers"), i, c) {
        json_t *q = json_object_get(json_object_get(json_object_get(c, "resources"), "requests"), res);
        if (!q) q = json_object_get(json_object_get(json_object_get(c, "resources"), "limits"), res);
        int64_t m = 0;
        if (!q || skiff_quantity_milli_json(q, &m) != 0 || m == 0) m = dflt;
        sum += m;
    }
    json_array_foreach(json_object_get(spec, "initContainers"), i, c) {
        json_t *q = json_object_get(json_object_get(json_object_get(c, "resources"), "requests"), res);
        int64_t m = 0;
        if (!q || skiff_quantity_milli_json(q, &m) != 0 || m == 0) m = dflt;
        if (m > init_max) init_max = m;
    }
    if (init_max > sum) sum = init_max;
    int64_t oh = 0;
    skiff_quantity_milli_json(json_object_get(json_object_get(spec, "overhead"), res), &oh);
    return sum + oh;
}

static void parse_ports(pod_info_t *pi)
{
    const json_t *spec = json_object_get(pi->obj, "spec");
    size_t n = 0, i, j;
    json_t *c, *p;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
        json_array_foreach(json_object_get(c, "ports"), j, p)
            if (json_integer_value(json_object_get(p, "hostPort")) > 0) n++;
    if (!n) return;
    pi->ports = calloc(n, sizeof *pi->ports);
    if (!pi->ports) return;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
        json_array_foreach(json_object_get(c, "ports"), j, p) {
            json_int_t hp = json_integer_value(json_object_get(p, "hostPort"));
            if (hp <= 0) continue;
            skiff_sched_port_t *sp = &pi->ports[pi->p.n_ports++];
            sp->port = (int)hp;
            const char *proto = json_string_value(json_object_get(p, "protocol"));
            const char *ip = json_string_value(json_object_get(p, "hostIP"));
            snprintf(sp->protocol, sizeof sp->protocol, "%s", proto && *proto ? proto : "TCP");
            snprintf(sp->host_ip, sizeof sp->host_ip, "%s", ip && *ip ? ip : "0.0.0.0");
        }
    pi->p.ports = pi->ports;
}

/* Makes pod pi's object (a reference of its own, the one before released)
 * and points the SDK view's strings and labels into it. */
static void hold_pod(pod_info_t *pi, json_t *pod)
{
    json_t *meta = json_object_get(pod, "metadata");
    json_incref(pod);
    json_decref(pi->obj);
    pi->obj = pod;
    pi->p.obj = pod;
    pi->p.ns = json_string_value(json_object_get(meta, "namespace"));
    if (!pi->p.ns) pi->p.ns = "";
    pi->p.name = json_string_value(json_object_get(meta, "name"));
    if (!pi->p.name) pi->p.name = "";
    pi->p.uid = json_string_value(json_object_get(meta, "uid"));
    if (!pi->p.uid) pi->p.uid = "";
    json_t *labels = json_object_get(meta, "labels");
    pi->p.labels = json_is_object(labels) ? labels : NULL;
}

pod_info_t *pod_info_new(json_t *pod)
{
    pod_info_t *pi = calloc(1, sizeof *pi);
    if (!pi) return NULL;
    json_t *meta = json_object_get(pod, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    size_t len = strlen(ns ? ns : "") + strlen(name ? name : "") + 2;
    pi->key = malloc(len);
    if (!pi->key) {
        free(pi);
        return NULL;
    }
    snprintf(pi->key, len, "%s/%s", ns ? ns : "", name ? name : "");
    hold_pod(pi, pod);
    const json_t *spec = json_object_get(pod, "spec");
    const char *node = json_string_value(json_object_get(spec, "nodeName"));
    pod_info_set_node(pi, node);
    pi->p.priority = (int32_t)json_integer_value(json_object_get(spec, "priority"));
    const char *pp = json_string_value(json_object_get(spec, "preemptionPolicy"));
    pi->preempt_never = pp && strcmp(pp, "Never") == 0;
    const char *nom = json_string_value(json_object_get(json_object_get(pod, "status"), "nominatedNodeName"));
    pod_info_set_nominated(pi, nom);
    json_t *dt = json_object_get(meta, "deletionTimestamp");
    pi->p.terminating = dt && !json_is_null(dt);
    pi->created_ms = skiff_time_parse(json_string_value(json_object_get(meta, "creationTimestamp")));
    skiff_sched_resources_t *r = &pi->p.requests;
    static const char *const standard[] = {"cpu", "memory", "ephemeral-storage"};
    int64_t std_req[3];
    skiff_pod_requests_milli(pod, standard, 3, std_req);
    r->cpu = std_req[0];
    r->memory = std_req[1];
    r->ephemeral_storage = std_req[2];
    r->pods = 1000;
    skiff_sched_resources_t names = {0};
    container_requests(json_object_get(spec, "containers"), &names);
    container_requests(json_object_get(spec, "initContainers"), &names);
    for (size_t i = 0; i < names.n_scalar; i++) {
        int64_t m = skiff_pod_request_milli(pod, names.scalar[i].name);
        if (m > 0) scalar_add(r, names.scalar[i].name, m);
    }
    resources_free(&names);
    pi->p.nonzero_cpu = nonzero(pod, "cpu", DEFAULT_MILLI_CPU);
    pi->p.nonzero_memory = nonzero(pod, "memory", DEFAULT_MEMORY_MILLI);
    json_t *aff = json_object_get(spec, "affinity");
    json_t *pa = json_object_get(aff, "podAffinity"), *paa = json_object_get(aff, "podAntiAffinity");
    pi->p.has_affinity = json_is_object(pa) && json_object_size(pa) > 0;
    pi->p.has_anti_affinity = json_is_object(paa) && json_object_size(paa) > 0;
    parse_ports(pi);
    return pi;
}

int pod_info_refresh(pod_info_t *pi, json_t *pod)
{
    json_t *meta = json_object_get(pod, "metadata");
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    json_t *labels = json_object_get(meta, "labels");
    json_t *dt = json_object_get(meta, "deletionTimestamp");
    int terminating = dt && !json_is_null(dt);
    if (pod == pi->obj) return 1;
    if (!uid || strcmp(uid, pi->p.uid) != 0 || terminating != pi->p.terminating ||
        !skiff_json_same(json_is_object(labels) ? labels : NULL, pi->p.labels))
        return 0;
    hold_pod(pi, pod);
    return 1;
}

void pod_info_set_node(pod_info_t *pi, const char *node)
{
    free(pi->node_buf);
    pi->node_buf = node && *node ? strdup(node) : NULL;
    pi->p.node_name = pi->node_buf ? pi->node_buf : "";
}

void pod_info_set_nominated(pod_info_t *pi, const char *node)
{
    free(pi->nominated);
    pi->nominated = node && *node ? strdup(node) : NULL;
}

void pod_info_free(pod_info_t *pi)
{
    if (!pi) return;
    json_decref(pi->obj);
    resources_free(&pi->p.requests);
    free(pi->ports);
    free(pi->key);
    free(pi->last_message);
    free(pi->node_buf);
    free(pi->nominated);
    free(pi);
}

/* ---- nodes -------------------------------------------------------------------- */

void cache_init(sched_cache_t *c)
{
    memset(c, 0, sizeof *c);
    c->pods.borrowed = 1; /* keyed by each pod_info's own key */
}

static void node_info_free(node_info_t *ni)
{
    if (!ni) return;
    for (size_t i = 0; i < ni->n.n_pods; i++) ni->pods[i]->node = NULL;
    json_decref(ni->obj);
    resources_free(&ni->n.allocatable);
    resources_free(&ni->n.requested);
    free(ni->pods);
    free(ni->name);
    free(ni);
}

void cache_free(sched_cache_t *c)
{
    for (size_t i = 0; i < c->n_nodes; i++) node_info_free(c->list[i]);
    free(c->list);
    smap_clear(&c->nodes, NULL);
    smap_clear(&c->pods, (void (*)(void *))pod_info_free);
    memset(c, 0, sizeof *c);
}

node_info_t *cache_node_get(sched_cache_t *c, const char *name)
{
    return smap_get(&c->nodes, name);
}

node_info_t *cache_node_set(sched_cache_t *c, json_t *node)
{
    const char *name = json_string_value(json_object_get(json_object_get(node, "metadata"), "name"));
    if (!name) return NULL;
    node_info_t *ni = smap_get(&c->nodes, name);
    if (!ni) {
        ni = calloc(1, sizeof *ni);
        if (!ni || !(ni->name = strdup(name))) {
            free(ni);
            return NULL;
        }
        if (c->n_nodes == c->cap_nodes) {
            size_t cap = c->cap_nodes ? c->cap_nodes * 2 : 64;
            node_info_t **l = realloc(c->list, cap * sizeof *l);
            if (!l) {
                free(ni->name);
                free(ni);
                return NULL;
            }
            c->list = l;
            c->cap_nodes = cap;
        }
        if (smap_put(&c->nodes, name, ni) != 0) {
            free(ni->name);
            free(ni);
            return NULL;
        }
        ni->index = c->n_nodes;
        ni->cache = c;
        c->list[c->n_nodes++] = ni;
        ni->n.name = ni->name;
    }
    json_incref(node);
    json_decref(ni->obj);
    ni->obj = node;
    ni->n.obj = node;
    json_t *labels = json_object_get(json_object_get(node, "metadata"), "labels");
    ni->n.labels = json_is_object(labels) ? labels : NULL;
    json_t *spec = json_object_get(node, "spec");
    ni->n.unschedulable = json_is_true(json_object_get(spec, "unschedulable"));
    json_t *taints = json_object_get(spec, "taints");
    ni->n.taints = json_array_size(taints) ? taints : NULL;
    ni->n.n_prefer_no_schedule = 0;
    size_t ti;
    json_t *t;
    json_array_foreach(taints, ti, t) {
        const char *e = json_string_value(json_object_get(t, "effect"));
        if (e && strcmp(e, "PreferNoSchedule") == 0) ni->n.n_prefer_no_schedule++;
    }
    resources_free(&ni->n.allocatable);
    json_t *st = json_object_get(node, "status");
    json_t *images = json_object_get(st, "images");
    ni->n.images = json_array_size(images) ? images : NULL;
    json_t *alloc = json_object_get(st, "allocatable");
    resources_from_list(&ni->n.allocatable, json_object_size(alloc) ? alloc
                                                                    : json_object_get(st, "capacity"));
    ni->n.generation++;
    return ni;
}

void cache_node_del(sched_cache_t *c, const char *name)
{
    node_info_t *ni = smap_del(&c->nodes, name);
    if (!ni) return;
    c->n_anti -= ni->n.n_pods_with_anti_affinity;
    c->n_aff -= ni->n.n_pods_with_affinity;
    size_t i = ni->index;
    c->list[i] = c->list[--c->n_nodes];
    c->list[i]->index = i;
    node_info_free(ni);
}

void node_add_pod(node_info_t *ni, pod_info_t *pi)
{
    if (ni->n.n_pods == ni->cap) {
        size_t cap = ni->cap ? ni->cap * 2 : 8;
        pod_info_t **p = realloc(ni->pods, cap * sizeof *p);
        if (!p) return;
        ni->pods = p;
        ni->cap = cap;
        ni->n.pods = (skiff_sched_pod_t *const *)p;
    }
    pi->node = ni;
    pi->node_index = ni->n.n_pods;
    ni->pods[ni->n.n_pods++] = pi;
    resources_add(&ni->n.requested, &pi->p.requests, 1);
    ni->n.nonzero_cpu += pi->p.nonzero_cpu;
    ni->n.nonzero_memory += pi->p.nonzero_memory;
    if (pi->p.has_anti_affinity) ni->n.n_pods_with_anti_affinity++;
    if (pi->p.has_affinity) ni->n.n_pods_with_affinity++;
    if (ni->cache) {
        ni->cache->n_anti += pi->p.has_anti_affinity;
        ni->cache->n_aff += pi->p.has_affinity;
    }
    ni->n.generation++;
}

void node_remove_pod(pod_info_t *pi)
{
    node_info_t *ni = pi->node;
    if (!ni) return;
    size_t i = pi->node_index;
    ni->pods[i] = ni->pods[--ni->n.n_pods];
    ni->pods[i]->node_index = i;
    resources_add(&ni->n.requested, &pi->p.requests, -1);
    ni->n.nonzero_cpu -= pi->p.nonzero_cpu;
    ni->n.nonzero_memory -= pi->p.nonzero_memory;
    if (pi->p.has_anti_affinity) ni->n.n_pods_with_anti_affinity--;
    if (pi->p.has_affinity) ni->n.n_pods_with_affinity--;
    if (ni->cache) {
        ni->cache->n_anti -= pi->p.has_anti_affinity;
        ni->cache->n_aff -= pi->p.has_affinity;
    }
    ni->n.generation++;
    pi->node = NULL;
}

node_info_t *node_info_copy_without(const node_info_t *ni, pod_info_t *const *skip, size_t n_skip)
{
    node_info_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->n = ni->n;
    c->name = NULL;
    c->obj = NULL;
    resources_copy(&c->n.allocatable, &ni->n.allocatable);
    memset(&c->n.requested, 0, sizeof c->n.requested);
    c->n.nonzero_cpu = c->n.nonzero_memory = 0;
    c->n.n_pods = 0;
    c->n.n_pods_with_anti_affinity = 0;
    c->n.n_pods_with_affinity = 0;
    c->cache = NULL;
    c->pods = calloc(ni->n.n_pods + 1, sizeof *c->pods);
    c->cap = ni->n.n_pods + 1;
    c->n.pods = (skiff_sched_pod_t *const *)c->pods;
    for (size_t i = 0; i < ni->n.n_pods; i++) {
        pod_info_t *p = ni->pods[i];
        int skipped = 0;
        for (size_t j = 0; j < n_skip; j++) skipped |= skip[j] == p;
        if (skipped || !c->pods) continue;
        c->pods[c->n.n_pods++] = p;
        resources_add(&c->n.requested, &p->p.requests, 1);
        c->n.nonzero_cpu += p->p.nonzero_cpu;
        c->n.nonzero_memory += p->p.nonzero_memory;
        if (p->p.has_anti_affinity) c->n.n_pods_with_anti_affinity++;
        if (p->p.has_affinity) c->n.n_pods_with_affinity++;
    }
    return c;
}

node_info_t *node_info_copy_with(const node_info_t *ni, pod_info_t *const *add, size_t n_add)
{
    node_info_t *c = node_info_copy_without(ni, NULL, 0);
    if (!c) return NULL;
    pod_info_t **p = realloc(c->pods, (c->n.n_pods + n_add + 1) * sizeof *p);
    if (!p) {
        node_info_copy_free(c);
        return NULL;
    }
    c->pods = p;
    c->n.pods = (skiff_sched_pod_t *const *)p;
    for (size_t i = 0; i < n_add; i++) {
        p[c->n.n_pods++] = add[i];
        resources_add(&c->n.requested, &add[i]->p.requests, 1);
        c->n.nonzero_cpu += add[i]->p.nonzero_cpu;
        c->n.nonzero_memory += add[i]->p.nonzero_memory;
    }
    return c;
}

void node_info_copy_free(node_info_t *c)
{
    if (!c) return;
    resources_free(&c->n.allocatable);
    resources_free(&c->n.requested);
    free(c->pods);
    free(c);
}
