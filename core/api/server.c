/* core/api/server.c - the API server's life cycle and router.
 *
 * Boot: one store range loads every watch cache, one store watch keeps
 * them current, and the system namespaces are created if missing. Then each
 * request is routed: health and version, discovery and OpenAPI documents,
 * or a resource path (/api/v1/..., /apis/<group>/<version>/...) that is
 * parsed into an api_call_t and handed to the read or write path. */
#include "api/apiserver_int.h"
#include "admission/admission.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/crd.h"
#include "api/discovery.h"
#include "api/event_ttl.h"
#include "api/object_meta.h"
#include "api/openapi.h"
#include "api/path.h"
#include "api/plugins_api.h"
#include "security/tokens.h"
#include "api/table.h"
#include "util/log.h"
#include "util/percent.h"

#define SYSTEM_NAMESPACES_COUNT 4
static const char *const system_namespaces[SYSTEM_NAMESPACES_COUNT] = {
    "default", "kube-system", "kube-public", "kube-node-lease"};

int api_object_key(char *buf, size_t len, const char *group, const char *resource, const char *ns,
                   const char *name)
{
    const char *g = group[0] ? group : "core";
    const char *parts[4] = {g, resource, ns && *ns ? ns : NULL, name};
    size_t lens[4], total = 9; /* "/registry" */
    for (int i = 0; i < 4; i++) {
        lens[i] = parts[i] ? strlen(parts[i]) : 0;
        total += parts[i] ? 1 + lens[i] : 0;
    }
    if (total >= len) {
        /* too long: what fits, as snprintf cuts it */
        if (parts[2])
            snprintf(buf, len, "/registry/%s/%s/%s/%s", g, resource, ns, name);
        else
            snprintf(buf, len, "/registry/%s/%s/%s", g, resource, name);
        return SKIFF_ETOOLARGE;
    }
    /* every request asks: pieced together, not printed */
    char *p = buf;
    memcpy(p, "/registry", 9);
    p += 9;
    for (int i = 0; i < 4; i++) {
        if (!parts[i])
            continue;
        *p++ = '/';
        memcpy(p, parts[i], lens[i]);
        p += lens[i];
    }
    *p = '\0';
    return 0;
}

void api_key_for(api_call_t *c, const char *ns, const char *name)
{
    api_object_key(c->key, sizeof c->key, c->kind->group, c->kind->resource,
                   c->kind->namespaced ? ns : NULL, name);
}

/* "<group or core>/<resource>", cut to len - 1 bytes; asked several times a
 * request, so pieced together rather than printed */
static void cache_map_key(char *buf, size_t len, const char *group, const char *resource)
{
    const char *g = group[0] ? group : "core";
    size_t gl = strlen(g), rl = strlen(resource);
    if (!len) return;
    if (gl + 1 + rl >= len) {
        snprintf(buf, len, "%s/%s", g, resource);
        return;
    }
    memcpy(buf, g, gl);
    buf[gl] = '/';
    memcpy(buf + gl + 1, resource, rl + 1);
}

watch_cache_t *api_cache_for(api_server_t *s, const kind_def_t *k)
{
    char mk[256];
    cache_map_key(mk, sizeof mk, k->group, k->resource);
    return strmap_get(s->caches, mk);
}

/* "/registry/<g>/<r>/<rest>" -> cache and rest. */
static watch_cache_t *cache_for_key(api_server_t *s, const char *key, const char **rest)
{
    if (strncmp(key, "/registry/", 10) != 0) return NULL;
    const char *g = key + 10;
    const char *r = strchr(g, '/');
    if (!r) return NULL;
    const char *tail = strchr(r + 1, '/');
    if (!tail) return NULL;
    char mk[256];
    int n = snprintf(mk, sizeof mk, "%.*s", (int)(tail - g), g);
    if (n < 0 || (size_t)n >= sizeof mk) return NULL;
    *rest = tail + 1;
    return strmap_get(s->caches, mk);
}

typedef struct any_scan {
    int (*pred)(cache_obj_t *o, void *data);
    void *data;
    int found;
} any_scan_t;

static void any_one(cache_obj_t *o, void *data)
{
    any_scan_t *a = data;
    if (!a->found && a->pred(o, a->data)) a->found = 1;
}

int api_any_object(api_server_t *s, int namespaced_only, int (*pred)(cache_obj_t *, void *),
                   void *data)
{
    any_scan_t a = {pred, data, 0};
    for (size_t i = 0; i < registry_count() && !a.found; i++) {
        const kind_def_t *k = registry_at(i);
        if (namespaced_only && !k->namespaced) continue;
        watch_cache_t *c = api_cache_for(s, k);
        if (c && watch_cache_kind(c) == k) watch_cache_each(c, any_one, &a);
    }
    return a.found;
}

json_t *api_object_from_kv(const skiff_kv_t *kv)
{
    json_t *o = json_loadb(kv->value, kv->value_len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    json_t *meta = json_object_get(o, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(o, "metadata", meta);
    }
    char rv[32];
    snprintf(rv, sizeof rv, "%lld", (long long)kv->mod_revision);
    json_object_set_new(meta, "resourceVersion", json_string(rv));
    return o;
}

/* ---- RBAC objects feed the authorizer's index ---------------------------- */

static void rbac_feed(api_server_t *s, const char *key, const char *type, const char *value,
                      size_t len)
{
    static const char prefix[] = "/registry/rbac.authorization.k8s.io/";
    if (!s->rbac || !value || strncmp(key, prefix, sizeof prefix - 1) != 0) return;
    json_t *obj = json_loadb(value, len, 0, NULL);
    if (obj) rbac_index_apply_event(s->rbac, type, obj);
    json_decref(obj);
}

/* ---- boot ----------------------------------------------------------------- */

static void maybe_finish_free(api_server_t *s);

static void boot_finish(api_server_t *s, int status)
{
    if (s->closing) return;
    if (status == 0) s->ready = 1;
    if (s->on_ready) s->on_ready(s->on_ready_data, status);
}

/* The server's own store operations (boot, compaction) hold it alive: a
 * server freed meanwhile is released when the last one completes. */
static void op_begin(api_server_t *s) { s->inflight++; }

static int op_end(api_server_t *s)
{
    s->inflight--;
    if (s->closing) {
        maybe_finish_free(s);
        return 1;
    }
    return 0;
}

int api_op_end(api_server_t *s) { return op_end(s); }

watch_cache_t *api_cache_ensure(api_server_t *s, const kind_def_t *k)
{
    if (!k) return NULL;
    char mk[256];
    cache_map_key(mk, sizeof mk, k->group, k->resource);
    watch_cache_t *c = strmap_get(s->caches, mk);
    if (c) {
        watch_cache_set_kind(c, k);
        return c;
    }
    c = watch_cache_new(k, s->ring_capacity);
    if (!c) return NULL;
    watch_cache_enable_packing(c, s->loop);
    strmap_put(s->caches, mk, c);
    watch_cache_progress(c, s->last_rev);
    return c;
}
void api_server_hold(api_server_t *s) { op_begin(s); }
void api_server_release(api_server_t *s) { op_end(s); }

/* ---- trees just written -------------------------------------------------- */

typedef struct api_fresh {
    json_t *tree;
    size_t len;
    char bytes[]; /* what was written: the store event must carry the same */
} api_fresh_t;

static void fresh_free(void *v)
{
    api_fresh_t *f = v;
    if (!f) return;
    json_decref(f->tree);
    free(f);
}

void api_fresh_put(api_server_t *s, watch_cache_t *c, const char *key, json_t *tree,
                   const char *bytes, size_t len)
{
    if (!s->fresh || !c || !tree || !watch_cache_wants_objects(c)) return;
    /* a copy and a memcmp cost a fraction of hashing the bytes */
    api_fresh_t *f = malloc(sizeof *f + len);
    if (!f) return;
    f->tree = json_incref(tree);
    f->len = len;
    memcpy(f->bytes, bytes, len);
    fresh_free(strmap_put(s->fresh, key, f));
}

void api_fresh_forget(api_server_t *s, const char *key)
{
    if (s->fresh) fresh_free(strmap_remove(s->fresh, key));
}

/* The tree written as value under key, if that is what was written last. */
static json_t *fresh_take(api_server_t *s, const char *key, const char *value, size_t len)
{
    api_fresh_t *f = s->fresh && strmap_size(s->fresh) ? strmap_remove(s->fresh, key) : NULL;
    if (!f) return NULL;
    json_t *tree = NULL;
    if (f->len == len && memcmp(f->bytes, value, len) == 0) {
        tree = f->tree;
        f->tree = NULL;
    }
    fresh_free(f);
    return tree;
}

static void on_store_events(void *data, int status, const skiff_store_event_t *ev, size_t n)
{
    api_server_t *s = data;
    if (status != 0) {
        /* The caches can no longer follow the store: stop claiming readiness
         * rather than serve stale lists. (A store watch ends only when the
         * store fails or closes; resuming it is left to a restart.) */
        if (status != SKIFF_ECLOSED) {
            log_error("apiserver", "store watch ended: %s; the server is no longer ready",
                      skiff_strerror(status));
            s->ready = 0;
        }
        s->watch = NULL;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *rest;
        watch_cache_t *c = cache_for_key(s, ev[i].kv.key, &rest);
        if (!c) continue;
        if (ev[i].type == SKIFF_EVENT_PUT) {
            json_t *tree = fresh_take(s, ev[i].kv.key, ev[i].kv.value, ev[i].kv.value_len);
            watch_cache_put_parsed(c, rest, ev[i].kv.value, ev[i].kv.value_len,
                                   ev[i].kv.mod_revision, tree);
            rbac_feed(s, ev[i].kv.key, "MODIFIED", ev[i].kv.value, ev[i].kv.value_len);
        } else {
            api_fresh_forget(s, ev[i].kv.key);
            watch_cache_delete(c, rest, ev[i].kv.mod_revision);
            rbac_feed(s, ev[i].kv.key, "DELETED", ev[i].prev.value, ev[i].prev.value_len);
        }
        crd_on_event(s, &ev[i]);
        /* usage the admission chain keeps (ResourceQuota status) */
        admission_chain_store_event(s->admission, ev[i].kv.key);
    }
    crd_after_events(s);
    /* Every cache has now seen everything up to this revision, changed or
     * not: lists of quiet resources report it, and bookmarks never run
     * ahead of delivered events. */
    if (n > 0 && ev[n - 1].kv.mod_revision > s->last_rev) {
        s->last_rev = ev[n - 1].kv.mod_revision;
        for (size_t i = 0; i < registry_count(); i++) {
            watch_cache_t *c = api_cache_for(s, registry_at(i));
            if (c) watch_cache_progress(c, s->last_rev);
        }
    }
}

static void on_boot_object_created(void *data, int status, const skiff_kv_t *kv)
{
    api_server_t *s = data;
    if (op_end(s)) return;
    if (status != 0 && status != SKIFF_EEXIST)
        log_error("apiserver", "creating a system object failed: %s", skiff_strerror(status));
    if (--s->pending_boot == 0) boot_finish(s, 0);
}

static json_t *new_namespace_object(const char *name);

/* Create an object the server needs at start (missing ones only); the
 * boot finishes when every such write has completed. */
static void boot_create(api_server_t *s, const char *key, json_t *obj)
{
    json_t *ordered = api_canonical_order(obj);
    char *body = json_dumps(ordered, JSON_COMPACT);
    json_decref(ordered);
    s->pending_boot++;
    op_begin(s);
    if (!body ||
        s->store->vt->create(s->store, key, body, strlen(body), on_boot_object_created, s) != 0) {
        s->pending_boot--;
        s->inflight--;
    }
    free(body);
}

/* The default ClusterRoles and bindings (cluster-admin, admin, edit, view,
 * system roles) are created when missing, as the Kubernetes API server
 * reconciles its bootstrap policy. */
static void ensure_default_rbac(api_server_t *s)
{
    json_t *objs = rbac_default_objects_new();
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o)
    {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *name = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
        const kind_def_t *k = kind ? registry_find_kind("rbac.authorization.k8s.io", "v1", kind) : NULL;
        watch_cache_t *c = k ? api_cache_for(s, k) : NULL;
        if (!c || !name || watch_cache_get(c, name)) continue;
        char uid[40], ts[32], key[512];
        api_new_uid(uid);
        api_now_rfc3339(ts, sizeof ts);
        json_t *meta = json_object_get(o, "metadata");
        json_object_set_new(meta, "uid", json_string(uid));
        json_object_set_new(meta, "creationTimestamp", json_string(ts));
        api_object_key(key, sizeof key, k->group, k->resource, NULL, name);
        boot_create(s, key, o);
    }
    json_decref(objs);
}

/* The system PriorityClasses exist from the start, as in Kubernetes. */
static void ensure_system_priority_classes(api_server_t *s)
{
    const kind_def_t *k = registry_find_resource("scheduling.k8s.io", "v1", "priorityclasses");
    watch_cache_t *c = k ? api_cache_for(s, k) : NULL;
    json_t *objs = c ? api_system_priority_classes_new() : NULL;
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o) {
        const char *name = api_meta_str(o, "name");
        if (watch_cache_get(c, name)) continue;
        char uid[40], ts[32], key[512];
        api_new_uid(uid);
        api_now_rfc3339(ts, sizeof ts);
        json_t *meta = json_object_get(o, "metadata");
        json_object_set_new(meta, "uid", json_string(uid));
        json_object_set_new(meta, "creationTimestamp", json_string(ts));
        api_object_key(key, sizeof key, k->group, k->resource, NULL, name);
        boot_create(s, key, o);
    }
    json_decref(objs);
}

static void ensure_system_namespaces(api_server_t *s)
{
    const kind_def_t *nsk = registry_find_resource("", "v1", "namespaces");
    watch_cache_t *c = nsk ? api_cache_for(s, nsk) : NULL;
    s->pending_boot = 1;
    for (int i = 0; c && i < SYSTEM_NAMESPACES_COUNT; i++) {
        if (watch_cache_get(c, system_namespaces[i])) continue;
        json_t *ns = new_namespace_object(system_namespaces[i]);
        char key[256];
        api_object_key(key, sizeof key, "", "namespaces", NULL, system_namespaces[i]);
        boot_create(s, key, ns);
        json_decref(ns);
    }
    ensure_default_rbac(s);
    ensure_system_priority_classes(s);
    if (--s->pending_boot == 0) boot_finish(s, 0);
}

static void on_initial_range(void *data, int status, const skiff_kv_t *kvs, size_t n, int more,
                             int64_t revision)
{
    api_server_t *s = data;
    if (op_end(s)) return;
    if (status != 0) {
        log_error("apiserver", "loading objects from the store failed: %s",
                  skiff_strerror(status));
        boot_finish(s, status);
        return;
    }
    crd_boot(s, kvs, n);
    for (size_t i = 0; i < n; i++) {
        const char *rest;
        watch_cache_t *c = cache_for_key(s, kvs[i].key, &rest);
        if (c) watch_cache_load(c, rest, kvs[i].value, kvs[i].value_len, kvs[i].mod_revision);
        rbac_feed(s, kvs[i].key, "ADDED", kvs[i].value, kvs[i].value_len);
    }
    s->last_rev = revision;
    for (size_t i = 0; i < registry_count(); i++) {
        watch_cache_t *c = api_cache_for(s, registry_at(i));
        if (c) watch_cache_progress(c, revision);
    }
    int rc = s->store->vt->watch(s->store, "/registry/", revision, on_store_events, s, &s->watch);
    if (rc != 0) {
        log_error("apiserver", "watching the store failed: %s", skiff_strerror(rc));
        boot_finish(s, rc);
        return;
    }
    crd_boot_done(s);
    ensure_system_namespaces(s);
}

static void on_bookmark_timer(uv_timer_t *t)
{
    api_server_t *s = t->data;
    int64_t rev = s->last_rev;
    for (size_t i = 0; i < registry_count(); i++) {
        watch_cache_t *c = api_cache_for(s, registry_at(i));
        if (c && watch_cache_watcher_count(c) > 0) watch_cache_bookmark_all(c, rev);
    }
}

typedef struct compaction {
    api_server_t *srv;
    int64_t rev;
} compaction_t;

static void on_compacted(void *data, int status)
{
    compaction_t *cp = data;
    api_server_t *s = cp->srv;
    if (op_end(s)) {
        free(cp);
        return;
    }
    if (status != 0 && status != SKIFF_ECOMPACTED) {
        log_warn("apiserver", "store compaction failed: %s", skiff_strerror(status));
    } else if (!s->closing) {
        for (size_t i = 0; i < registry_count(); i++) {
            watch_cache_t *c = api_cache_for(s, registry_at(i));
            if (c) watch_cache_compact(c, cp->rev);
        }
        log_debug("apiserver", "compacted the store to revision %lld", (long long)cp->rev);
    }
    free(cp);
}

/* Like the Kubernetes API server, keep one interval of history: compact to
 * the revision that was current one tick ago. */
static void on_compact_timer(uv_timer_t *t)
{
    api_server_t *s = t->data;
    if (s->compact_next > s->store->vt->compacted_revision(s->store)) {
        compaction_t *cp = malloc(sizeof *cp);
        if (cp) {
            cp->srv = s;
            cp->rev = s->compact_next;
            op_begin(s);
            int rc = s->store->vt->compact(s->store, cp->rev, on_compacted, cp);
            if (rc != 0) {
                s->inflight--;
                log_warn("apiserver", "store compaction failed: %s", skiff_strerror(rc));
                free(cp);
            }
        }
    }
    s->compact_next = s->store->vt->revision(s->store);
}

static void free_cache(void *v) { watch_cache_free(v); }

int api_server_new(const api_server_opts_t *opts, void (*on_ready)(void *, int), void *data,
                   api_server_t **out)
{
    api_server_t *s = calloc(1, sizeof *s);
    if (!s) return SKIFF_ENOMEM;
    s->loop = opts->loop;
    s->store = opts->store;
    s->ring_capacity = opts->ring_capacity ? opts->ring_capacity : 4096;
    s->bookmark_interval_ms = opts->bookmark_interval_ms ? opts->bookmark_interval_ms : 10000;
    s->watch_timeout_max_s = opts->watch_timeout_max_s ? opts->watch_timeout_max_s : 1800;
    s->on_ready = on_ready;
    s->on_ready_data = data;
    s->rewrite_unchanged = opts->rewrite_unchanged;
    s->pipeline.audit = opts->audit;
    s->pipeline.limits = opts->limits;
    s->rbac = rbac_index_new();
    s->pipeline.rbac = s->rbac;
    s->pipeline.tokens = opts->tokens;
    s->pipeline.anonymous = opts->anonymous;
    s->pipeline.any_host = opts->any_host;
    s->pipeline.sa_exists = api_service_account_exists;
    s->pipeline.sa_data = s;
    s->pipeline.bootstrap = api_bootstrap_authenticate;
    s->pipeline.node_inputs = api_node_inputs;
    s->pipeline.node_inputs_data = s;
    s->rewrite_unchanged_data = opts->rewrite_unchanged_data;
    s->caches = strmap_new();
    s->fresh = strmap_new();
    s->admission = opts->admission;
    if (!s->admission) {
        char err[256];
        if (admission_chain_new(s->loop, NULL, NULL, NULL, NULL, &s->admission, err, sizeof err) != 0)
            log_error("apiserver", "admission: %s", err);
    }
    if (!s->caches || !s->fresh || !s->admission) {
        admission_chain_free(s->admission);
        strmap_free(s->caches, NULL);
        strmap_free(s->fresh, NULL);
        free(s);
        return SKIFF_ENOMEM;
    }
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        char mk[256];
        cache_map_key(mk, sizeof mk, k->group, k->resource);
        if (strmap_get(s->caches, mk)) continue;
        watch_cache_t *c = watch_cache_new(k, s->ring_capacity);
        if (!c) {
            strmap_free(s->caches, free_cache);
            strmap_free(s->fresh, NULL);
            admission_chain_free(s->admission);
            free(s);
            return SKIFF_ENOMEM;
        }
        watch_cache_enable_packing(c, s->loop);
        strmap_put(s->caches, mk, c);
    }
    admission_chain_attach(s->admission, s);
    uv_timer_init(s->loop, &s->bookmark_timer);
    s->bookmark_timer.data = s;
    uv_timer_start(&s->bookmark_timer, on_bookmark_timer, (uint64_t)s->bookmark_interval_ms,
                   (uint64_t)s->bookmark_interval_ms);
    uint64_t every = (uint64_t)(opts->compaction_interval_s ? opts->compaction_interval_s : 300) *
                     1000u;
    uv_timer_init(s->loop, &s->compact_timer);
    s->compact_timer.data = s;
    uv_timer_start(&s->compact_timer, on_compact_timer, every, every);
    api_event_ttl_init(s, opts->event_ttl_ms);
    *out = s;
    op_begin(s);
    int rc = s->store->vt->range(s->store, "/registry/", "/registry0", 0, 0, on_initial_range, s);
    if (rc != 0) {
        s->inflight--;
        log_error("apiserver", "store range failed: %s", skiff_strerror(rc));
        return rc;
    }
    return 0;
}

int api_server_is_ready(const api_server_t *s) { return s->ready; }


static void on_timer_closed(uv_handle_t *h)
{
    api_server_t *s = h->data;
    s->closing_handles--;
    maybe_finish_free(s);
}

static void maybe_finish_free(api_server_t *s)
{
    if (s->closing_handles > 0 || s->inflight > 0 || s->freed) return;
    s->freed = 1;
    crd_server_free(s);
    admission_chain_free(s->admission);
    rbac_index_free(s->rbac);
    strmap_free(s->caches, free_cache);
    strmap_free(s->fresh, fresh_free);
    void (*done)(void *) = s->free_done;
    void *dd = s->free_done_data;
    free(s);
    if (done) done(dd);
}

void api_server_free(api_server_t *s, void (*done)(void *), void *data)
{
    if (!s) return;
    s->closing = 1;
    s->free_done = done;
    s->free_done_data = data;
    api_streams_close_all(s);
    if (s->watch) s->store->vt->watch_cancel(s->watch);
    s->watch = NULL;
    uv_timer_stop(&s->bookmark_timer);
    uv_timer_stop(&s->compact_timer);
    admission_chain_detach(s->admission);
    s->closing_handles = 3;
    uv_close((uv_handle_t *)&s->bookmark_timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->compact_timer, on_timer_closed);
    api_event_ttl_close(s, on_timer_closed);
    discovery_shutdown();
    openapi_shutdown();
}

/* ---- objects the server makes itself ----------------------------------- */

static json_t *new_namespace_object(const char *name)
{
    char uid[40], ts[32];
    api_new_uid(uid);
    api_now_rfc3339(ts, sizeof ts);
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}, s:{s:[s]}, s:{s:s}}", "kind",
                     "Namespace", "apiVersion", "v1", "metadata", "name", name, "uid", uid,
                     "creationTimestamp", ts, "labels", "kubernetes.io/metadata.name", name,
                     "spec", "finalizers", "kubernetes", "status", "phase", "Active");
}

/* ---- request parsing --------------------------------------------------- */



static void parse_query(api_call_t *c, const char *q)
{
    while (q && *q && c->q.n < API_MAX_QUERY) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        if (klen > 0) {
            c->q.key[c->q.n] = percent_decode_dup(q, klen, 1);
            c->q.value[c->q.n] = eq ? percent_decode_dup(eq + 1, len - klen - 1, 1) : strdup("");
            c->q.n++;
        }
        if (!amp) break;
        q = amp + 1;
    }
}

const char *api_query_get(const api_call_t *c, const char *key)
{
    for (int i = c->q.n - 1; i >= 0; i--)
        if (c->q.key[i] && strcmp(c->q.key[i], key) == 0) return c->q.value[i];
    return NULL;
}

void api_call_free(api_call_t *c)
{
    if (!c) return;
    for (int i = 0; i < c->q.n; i++) {
        free(c->q.key[i]);
        free(c->q.value[i]);
    }
    free(c->ns);
    free(c->name);
    free(c->sub);
    free(c->warnings);
    json_decref(c->opts);
    json_decref(c->body);
    json_decref(c->obj);
    json_decref(c->old);
    json_decref(c->written);
    free(c);
}

void api_not_found(api_call_t *c, const char *name)
{
    char rn[256];
    status_resource_name(c->kind, rn, sizeof rn);
    status_reply(c->resp, 404, "NotFound", status_details(c->kind, name), "%s \"%s\" not found",
                 rn, name);
}

static void reply_text(api_response_t *resp, int code, const char *text)
{
    resp->ops->send(resp, code, "text/plain; charset=utf-8", text, strlen(text));
}

static void reply_doc(api_response_t *resp, const api_doc_reply_t *d)
{
    char headers[1024];
    int n = 0;
    if (d->cache_control)
        n += snprintf(headers + n, sizeof headers - (size_t)n, "Cache-Control: %.200s\r\n",
                      d->cache_control);
    if (d->etag)
        n += snprintf(headers + n, sizeof headers - (size_t)n, "Etag: %.200s\r\n", d->etag);
    if (d->location)
        n += snprintf(headers + n, sizeof headers - (size_t)n, "Location: %.400s\r\n",
                      d->location);
    resp->extra_headers = n > 0 ? headers : NULL;
    resp->ops->send(resp, d->status, d->content_type ? d->content_type : "application/json",
                    d->body, d->len);
}


static void route_resource(api_server_t *s, const api_request_t *req, api_response_t *resp,
                           const api_path_t *p)
{
    const char *group = p->group, *version = p->version, *ns = p->ns, *resource = p->resource,
               *name = p->name, *sub = p->sub;
    const kind_def_t *k = resource ? registry_find_resource(group, version, resource) : NULL;
    if (!k) {
        status_reply(resp, 404, "NotFound", NULL,
                     "the server could not find the requested resource (%s %s)", req->method,
                     req->path);
        return;
    }
    if (k->namespaced == 0 && ns) {
        status_reply(resp, 404, "NotFound", NULL, "%s is cluster-scoped, not namespaced",
                     k->resource);
        return;
    }
    int token_request = sub && strcmp(sub, "token") == 0 && registry_find_subresource(k, sub);
    int binding_request = sub && strcmp(sub, "binding") == 0 && registry_find_subresource(k, sub);
    int finalize_request = sub && strcmp(sub, "finalize") == 0 && registry_find_subresource(k, sub);
    int approval = sub && strcmp(sub, "approval") == 0 && registry_find_subresource(k, sub);
    if (sub && !token_request && !binding_request && !finalize_request && !approval &&
        !((strcmp(sub, "status") == 0 && k->has_status) ||
                                   (strcmp(sub, "scale") == 0 && k->has_scale))) {
        status_reply(resp, 404, "NotFound", NULL,
                     "the server could not find the requested resource (%s %s)", req->method,
                     req->path);
        return;
    }
    if (!s->ready) {
        status_reply(resp, 503, "ServiceUnavailable", NULL,
                     "the server is starting up; try again shortly");
        return;
    }
    if (strcmp(req->method, "POST") == 0 && !sub && crd_terminating(k)) {
        status_reply(resp, 405, "MethodNotAllowed", NULL,
                     "create not allowed while custom resource definition is terminating");
        return;
    }
    api_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        status_reply(resp, 500, "InternalError", NULL, "out of memory");
        return;
    }
    c->srv = s;
    c->req = req;
    c->resp = resp;
    c->kind = k;
    c->cache = api_cache_for(s, k);
    c->ns = ns ? strdup(ns) : NULL;
    c->name = name ? strdup(name) : NULL;
    c->sub = sub ? strdup(sub) : NULL;
    if ((ns && !c->ns) || (name && !c->name) || (sub && !c->sub)) {
        status_reply(resp, 500, "InternalError", NULL, "out of memory");
        api_call_free(c);
        return;
    }
    if (k->crd) crd_request_warning(c);
    parse_query(c, req->query);
    const char *dry = api_query_get(c, "dryRun");
    c->dry_run = dry && strcmp(dry, "All") == 0;
    if (dry && !c->dry_run && *dry) {
        status_reply(resp, 400, "BadRequest", NULL,
                     "invalid dryRun value %s: the only supported value is \"All\"", dry);
        api_call_free(c);
        return;
    }
    c->table = table_accept(req->accept, NULL) != TABLE_NONE;
    const char *m = req->method;
    const char *watch = api_query_get(c, "watch");
    int is_watch = watch && (strcmp(watch, "true") == 0 || strcmp(watch, "1") == 0);
    if (token_request) {
        if (strcmp(m, "POST") == 0 && c->name) {
            api_handle_token_request(c);
        } else {
            status_reply(resp, 405, "MethodNotAllowed", NULL,
                         "serviceaccounts/token only accepts POST (TokenRequest)");
            api_call_free(c);
        }
        return;
    }
    if (binding_request) {
        if (strcmp(m, "POST") == 0 && c->name) {
            api_handle_binding(c);
        } else {
            status_reply(resp, 405, "MethodNotAllowed", NULL,
                         "pods/binding only accepts POST (a v1 Binding)");
            api_call_free(c);
        }
        return;
    }
    if (finalize_request) {
        if (strcmp(m, "PUT") == 0 && c->name) {
            api_handle_update(c);
        } else {
            status_reply(resp, 405, "MethodNotAllowed", NULL,
                         "namespaces/finalize only accepts PUT (a v1 Namespace whose "
                         "spec.finalizers is kept)");
            api_call_free(c);
        }
        return;
    }
    if (!registry_verb_allowed(k, api_path_verb(p, m, is_watch))) {
        status_reply(resp, 405, "MethodNotAllowed", NULL,
                     "the server does not allow %s on %s (it supports: %s)", m, k->resource,
                     registry_verb_allowed(k, "get") ? "get, list, watch, create, update, patch, delete"
                                                      : "create");
        api_call_free(c);
        return;
    }
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
        if (is_watch) api_handle_watch(c);
        else if (c->name) api_handle_get(c);
        else api_handle_list(c);
    } else if (strcmp(m, "POST") == 0 && !c->name) {
        api_handle_create(c);
    } else if (strcmp(m, "PUT") == 0 && c->name) {
        api_handle_update(c);
    } else if (strcmp(m, "PATCH") == 0 && c->name) {
        api_handle_patch(c);
    } else if (strcmp(m, "DELETE") == 0) {
        if (c->name) api_handle_delete(c);
        else api_handle_delete_collection(c);
    } else {
        status_reply(resp, 405, "MethodNotAllowed", NULL, "the server does not allow %s on %s",
                     m, req->path);
        api_call_free(c);
    }
}

void api_server_set_signer(api_server_t *s, const struct pki *pki)
{
    s->pki = pki;
}

void api_server_handle(api_server_t *s, const api_request_t *req, api_response_t *resp)
{
    const char *path = req->path ? req->path : "/";
    json_t *utf8 = json_string(path); /* jansson checks UTF-8 */
    if (!utf8) {
        status_reply(resp, 400, "BadRequest", NULL,
                     "the request path is not valid UTF-8 once percent-decoded");
        return;
    }
    json_decref(utf8);
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0 ||
        strncmp(path, "/healthz/", 9) == 0 || strncmp(path, "/livez/", 7) == 0) {
        reply_text(resp, 200, "ok");
        return;
    }
    if (strcmp(path, "/readyz") == 0 || strncmp(path, "/readyz/", 8) == 0) {
        if (s->ready) reply_text(resp, 200, "ok");
        else reply_text(resp, 503, "[-]store not loaded\nreadyz check failed");
        return;
    }
    if (s->pipeline.tokens && (strcmp(path, "/.well-known/openid-configuration") == 0 ||
                               strcmp(path, "/openid/v1/jwks") == 0)) {
        /* public: whoever verifies ServiceAccount tokens needs the key */
        const char *doc = path[1] == '.' ? tokens_openid_configuration(s->pipeline.tokens)
                                         : tokens_jwks(s->pipeline.tokens);
        resp->ops->send(resp, 200, path[1] == '.' ? "application/json" : "application/jwk-set+json",
                        doc, strlen(doc));
        return;
    }
    api_path_t p;
    int parsed = api_path_parse(path, &p) == 0;
    resp = api_pipeline_enter(&s->pipeline, req, &p, resp);
    if (!resp) return; /* refused (429) */
    api_doc_reply_t doc;
    memset(&doc, 0, sizeof doc);
    if (strcmp(path, "/openapi/v2") == 0 && req->accept &&
        strstr(req->accept, "com.github.proto-openapi.spec.v2") && !strstr(req->accept, "json")) {
        /* kubectl asks for OpenAPI v2 in protobuf only to validate kinds the
         * server does not serve (everything it serves is validated on the
         * server, announced through OpenAPI v3). An empty v2 document
         * (swagger "2.0", info, no paths or definitions) tells it exactly
         * that, so it goes on and reports the unknown kind the way it does
         * against Kubernetes. The full v2 document is served as JSON. */
        static const char empty_v2[] = "\x0a\x03" "2.0"
                                       "\x12\x10\x0a\x05" "Skiff" "\x12\x07" "v1.32.0"
                                       "\x42\x00";
        resp->ops->send(resp, 200, "application/octet-stream",
                        empty_v2, sizeof empty_v2 - 1);
        return;
    }
    if (plugins_api_handle(req, resp)) return;
    if (discovery_handle(req, &doc) || openapi_handle(req, &doc)) {
        reply_doc(resp, &doc);
        return;
    }
    if (parsed && p.resource_request) {
        route_resource(s, req, resp, &p);
        return;
    }
    status_reply(resp, 404, "NotFound", NULL, "the server could not find the requested resource");
}
