/* core/api/crd.c - CustomResourceDefinitions: a CRD in the store makes the
 * API server serve its custom resources, as the Kubernetes apiextensions
 * server does.
 *
 * The server's one store watch tells this file about every CRD write
 * (crd_on_events); at start the initial load does (crd_boot). For a CRD it
 *  - checks its names against what is served already (NamesAccepted),
 *  - adds one kind per served version to the kind registry (registry_add),
 *    sorted by version priority so the preferred version comes first, with
 *    a watch cache for the resource, and refreshes discovery and OpenAPI;
 *  - writes the CRD's status (conditions NamesAccepted and Established,
 *    acceptedNames, storedVersions) and its finalizer
 *    customresourcecleanup.apiextensions.k8s.io;
 *  - once the CRD is being deleted, deletes every custom resource, then
 *    drops the finalizer so the CRD goes, and stops serving the kind.
 * Kind entries and what they point to are never freed while the server
 * runs (a request in flight may hold one); a changed CRD adds new entries
 * and retires the old ones. Validation, defaulting and pruning of the
 * objects are crd_schema.c's; the CRD object's own rules crd_validate.c's. */
#include "api/crd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

#include "api/apiserver_int.h"
#include "api/discovery.h"
#include "api/object_meta.h"
#include "api/openapi.h"
#include "object/crd_schema.h"
#include "util/log.h"

#define CRD_PREFIX "/registry/apiextensions.k8s.io/customresourcedefinitions/"
#define CRD_FINALIZER "customresourcecleanup.apiextensions.k8s.io"

/* One served version: the kind entry and everything it points to. */
typedef struct crd_served {
    kind_def_t def;
    crd_version_t ver;
    json_t *hold;                /* copy of the CRD; def's strings point into it */
    kind_column_t *columns;
    const char **short_names;
    const char **categories;
    char schema_name[256];     /* "com.example.stable.v1.CronTab" */
    char warning[768];         /* Warning header of a deprecated version */
    const kind_def_t *registered; /* the registry's copy, or NULL once retired */
    struct crd_served *next;     /* every block ever made, freed at the end */
} crd_served_t;

typedef struct crd_entry {
    char *name;
    json_t *spec;                /* spec the served kinds were made from */
    const kind_def_t **kinds;    /* registered entries */
    size_t nkinds;
    int accepted;
    int terminating;
    int deletes_inflight;
    int finishing;               /* the finalizer removal was written */
    int dropped;                 /* the CRD is gone; freed once its deletes are back */
    api_server_t *srv;
    struct crd_entry *next;
} crd_entry_t;

static struct {
    crd_entry_t *entries;
    crd_entry_t *zombies;        /* dropped entries with deletes in flight */
    crd_served_t *blocks;
} C;

/* ---- finding ------------------------------------------------------------------ */

static crd_entry_t *entry_find(const char *name)
{
    for (crd_entry_t *e = C.entries; e; e = e->next)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

static crd_entry_t *entry_of_kind(const kind_def_t *k)
{
    for (crd_entry_t *e = C.entries; e; e = e->next)
        for (size_t i = 0; i < e->nkinds; i++)
            if (e->kinds[i] == k) return e;
    return NULL;
}

int crd_terminating(const kind_def_t *k)
{
    if (!k || !k->crd) return 0;
    crd_entry_t *e = entry_of_kind(k);
    return e && e->terminating;
}

/* ---- serving ------------------------------------------------------------------- */

static void unserve(crd_entry_t *e)
{
    for (size_t i = 0; i < e->nkinds; i++) {
        for (crd_served_t *b = C.blocks; b; b = b->next)
            if (b->registered == e->kinds[i]) b->registered = NULL;
        registry_remove(e->kinds[i]);
    }
    free(e->kinds);
    e->kinds = NULL;
    e->nkinds = 0;
    json_decref(e->spec);
    e->spec = NULL;
}

static const char **string_list(const json_t *arr)
{
    size_t n = json_array_size(arr);
    if (!n) return NULL;
    const char **out = calloc(n + 1, sizeof *out);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) out[i] = json_string_value(json_array_get(arr, i));
    return out;
}

/* A served version of crd (a copy it may keep) as a registry kind. */
static crd_served_t *served_new(json_t *crd, const json_t *version, const char *storage,
                                int64_t rev)
{
    const json_t *sp = json_object_get(crd, "spec"), *nm = json_object_get(sp, "names");
    /* what validation guarantees, checked again for objects written
     * before these rules (the store is not trusted blindly) */
    if (!json_string_value(json_object_get(sp, "group")) ||
        !json_string_value(json_object_get(version, "name")) ||
        !json_string_value(json_object_get(nm, "kind")) ||
        !json_string_value(json_object_get(nm, "listKind")) ||
        !json_string_value(json_object_get(nm, "plural")))
        return NULL;
    crd_served_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->hold = crd;
    json_incref(crd);
    b->next = C.blocks;
    C.blocks = b;
    const json_t *spec = json_object_get(crd, "spec");
    const json_t *names = json_object_get(spec, "names");
    kind_def_t *d = &b->def;
    d->group = json_string_value(json_object_get(spec, "group"));
    d->version = json_string_value(json_object_get(version, "name"));
    d->kind = json_string_value(json_object_get(names, "kind"));
    d->list_kind = json_string_value(json_object_get(names, "listKind"));
    d->resource = json_string_value(json_object_get(names, "plural"));
    d->singular = json_string_value(json_object_get(names, "singular"));
    d->namespaced = strcmp(json_string_value(json_object_get(spec, "scope")) ?: "", "Namespaced") == 0;
    d->short_names = b->short_names = string_list(json_object_get(names, "shortNames"));
    d->categories = b->categories = string_list(json_object_get(names, "categories"));
    /* OpenAPI names custom kinds by the reversed group: com.example.stable.v1.CronTab */
    char rgroup[256] = "";
    const char *g = d->group;
    size_t off = 0;
    for (const char *end = g + strlen(g); end > g;) {
        const char *dot = end;
        while (dot > g && dot[-1] != '.') dot--;
        int n = snprintf(rgroup + off, sizeof rgroup - off, "%s%.*s", off ? "." : "",
                         (int)(end - dot), dot);
        if (n > 0 && off + (size_t)n < sizeof rgroup) off += (size_t)n;
        end = dot > g ? dot - 1 : g;
    }
    snprintf(b->schema_name, sizeof b->schema_name, "%s.%s.%s", rgroup, d->version, d->kind);
    d->schema_name = b->schema_name;
    const json_t *sub = json_object_get(version, "subresources");
    d->has_status = json_object_get(sub, "status") != NULL;
    const json_t *scale = json_object_get(sub, "scale");
    crd_version_t *v = &b->ver;
    v->crd_name = (char *)json_string_value(json_object_get(json_object_get(crd, "metadata"), "name"));
    v->schema = json_object_get(json_object_get(version, "schema"), "openAPIV3Schema");
    v->has_defaults = crd_schema_has_defaults(v->schema);
    v->schema_rev = rev;
    v->selectable_fields = json_object_get(version, "selectableFields");
    if (scale) {
        d->has_scale = 1;
        v->spec_replicas_path = (char *)json_string_value(json_object_get(scale, "specReplicasPath"));
        v->status_replicas_path = (char *)json_string_value(json_object_get(scale, "statusReplicasPath"));
        v->label_selector_path = (char *)json_string_value(json_object_get(scale, "labelSelectorPath"));
    }
    const json_t *cols = json_object_get(version, "additionalPrinterColumns");
    size_t nc = json_array_size(cols);
    if (nc) {
        b->columns = calloc(nc + 1, sizeof *b->columns);
        if (b->columns) {
            for (size_t i = 0; i < nc; i++) {
                const json_t *c = json_array_get(cols, i);
                b->columns[i].name = json_string_value(json_object_get(c, "name"));
                b->columns[i].type = json_string_value(json_object_get(c, "type"));
                b->columns[i].priority = (int)json_integer_value(json_object_get(c, "priority"));
                b->columns[i].json_path = json_string_value(json_object_get(c, "jsonPath"));
            }
            v->has_columns = 1;
            d->columns = b->columns;
        }
    }
    if (json_is_true(json_object_get(version, "deprecated"))) {
        /* Kubernetes' words: "<group>/<version> <Kind> is deprecated; use
         * <group>/<newest served, not deprecated, newer version> <Kind>" */
        const char *text = json_string_value(json_object_get(version, "deprecationWarning"));
        char dflt[512];
        if (!text) {
            int n = snprintf(dflt, sizeof dflt, "%s/%s %s is deprecated", d->group, d->version,
                             d->kind);
            const char *best = NULL;
            size_t i;
            json_t *o;
            json_array_foreach(json_object_get(spec, "versions"), i, o)
            {
                const char *on = json_string_value(json_object_get(o, "name"));
                if (!on || !json_is_true(json_object_get(o, "served")) ||
                    json_is_true(json_object_get(o, "deprecated")) ||
                    !discovery_version_newer(on, d->version))
                    continue;
                if (!best || discovery_version_newer(on, best)) best = on;
            }
            if (best && n > 0 && (size_t)n < sizeof dflt)
                snprintf(dflt + n, sizeof dflt - (size_t)n, "; use %s/%s %s", d->group, best, d->kind);
            text = dflt;
        }
        char *o = b->warning;
        size_t left = sizeof b->warning;
        int n = snprintf(o, left, "Warning: 299 - \"");
        o += n;
        left -= (size_t)n;
        /* header-safe: printable ASCII, quotes escaped */
        for (const char *t = text; *t && left > 8; t++) {
            unsigned char ch = (unsigned char)*t;
            if (ch == '"' || ch == '\\') {
                *o++ = '\\';
                left--;
            }
            *o++ = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
            left--;
        }
        snprintf(o, left, "\"\r\n");
        v->warning = b->warning;
    }
    d->storage_version = storage;
    d->crd = v;
    return b;
}

/* Is a name of this CRD taken by a kind it does not own? Fills why. */
static int names_conflict(crd_entry_t *e, const json_t *spec, char *why, size_t len)
{
    const char *group = json_string_value(json_object_get(spec, "group"));
    const json_t *names = json_object_get(spec, "names");
    const char *plural = json_string_value(json_object_get(names, "plural"));
    const char *kind = json_string_value(json_object_get(names, "kind"));
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        int mine = 0;
        for (size_t j = 0; j < e->nkinds; j++) mine |= e->kinds[j] == k;
        if (mine || strcmp(k->group, group ? group : "") != 0) continue;
        if (plural && strcmp(k->resource, plural) == 0) {
            snprintf(why, len, "\"%s\" is already in use", plural);
            return 1;
        }
        if (kind && strcmp(k->kind, kind) == 0) {
            snprintf(why, len, "\"%s\" is already in use", kind);
            return 1;
        }
    }
    return 0;
}

static int by_priority(const void *a, const void *b)
{
    const char *va = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *vb = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    if (discovery_version_newer(va, vb)) return -1;
    if (discovery_version_newer(vb, va)) return 1;
    return 0;
}

/* Serve the CRD's versions (again, if its spec changed). 0 or -1. */
static int serve(api_server_t *s, crd_entry_t *e, json_t *crd, int64_t rev)
{
    json_t *spec = json_object_get(crd, "spec");
    if (e->spec && json_equal(e->spec, spec)) return 0;
    unserve(e);
    const json_t *versions = json_object_get(spec, "versions");
    size_t nv = json_array_size(versions), i;
    json_t *v;
    json_t **order = calloc(nv ? nv : 1, sizeof *order);
    e->kinds = calloc(nv ? nv : 1, sizeof *e->kinds);
    if (!order || !e->kinds) {
        free(order);
        return -1;
    }
    size_t no = 0;
    json_array_foreach(versions, i, v) if (json_is_true(json_object_get(v, "served"))) order[no++] = v;
    qsort(order, no, sizeof *order, by_priority);
    json_t *copy = skiff_json_copy(crd);
    for (i = 0; i < no; i++) {
        /* the copy's version object, so every string lives in the copy */
        const char *vn = json_string_value(json_object_get(order[i], "name"));
        json_t *cv = NULL, *it;
        size_t j;
        json_array_foreach(json_object_get(json_object_get(copy, "spec"), "versions"), j, it)
            if (strcmp(json_string_value(json_object_get(it, "name")) ?: "", vn) == 0) cv = it;
        const char *cstorage = NULL;
        json_array_foreach(json_object_get(json_object_get(copy, "spec"), "versions"), j, it)
            if (json_is_true(json_object_get(it, "storage")))
                cstorage = json_string_value(json_object_get(it, "name"));
        crd_served_t *b = served_new(copy, cv, cstorage, rev);
        if (!b || registry_add(&b->def) != 0) {
            log_error("crd", "%s: could not serve version %s", e->name, vn);
            continue;
        }
        b->registered = registry_find_resource(b->def.group, b->def.version, b->def.resource);
        e->kinds[e->nkinds++] = b->registered;
    }
    json_decref(copy);
    free(order);
    e->spec = skiff_json_copy(spec);
    if (e->nkinds) {
        /* the cache's kind: the preferred version, as the initial cache creation picks */
        watch_cache_t *c = api_cache_ensure(s, registry_find_resource(e->kinds[0]->group, NULL,
                                                                      e->kinds[0]->resource));
        if (!c) log_error("crd", "%s: no watch cache", e->name);
    }
    discovery_invalidate();
    openapi_invalidate();
    return 0;
}

/* ---- the CRD's status ------------------------------------------------------------ */

static void on_crd_written(void *data, int status, const skiff_kv_t *kv)
{
    (void)kv;
    api_server_t *s = data;
    if (status != 0 && status != SKIFF_ECONFLICT && status != SKIFF_ENOENT)
        log_error("crd", "writing a CustomResourceDefinition failed: %s", skiff_strerror(status));
    api_op_end(s);
}

static void set_condition(json_t *conds, const char *type, const char *status, const char *reason,
                          const char *message, const char *now)
{
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")) ?: "", type) != 0) continue;
        if (strcmp(json_string_value(json_object_get(c, "status")) ?: "", status) != 0)
            json_object_set_new(c, "lastTransitionTime", json_string(now));
        json_object_set_new(c, "status", json_string(status));
        json_object_set_new(c, "reason", json_string(reason));
        json_object_set_new(c, "message", json_string(message));
        return;
    }
    json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "status",
                                           status, "lastTransitionTime", now, "reason", reason,
                                           "message", message));
}

static void write_crd(api_server_t *s, const char *name, json_t *obj, int64_t rev)
{
    char key[1024];
    snprintf(key, sizeof key, CRD_PREFIX "%s", name);
    json_t *ordered = api_canonical_order(obj);
    json_t *meta = skiff_json_copy(json_object_get(ordered, "metadata"));
    json_object_del(meta, "resourceVersion");
    json_object_set_new(ordered, "metadata", meta);
    char *body = json_dumps(ordered, JSON_COMPACT);
    json_decref(ordered);
    if (!body) return;
    s->inflight++;
    int rc = s->store->vt->update(s->store, key, body, strlen(body), rev, on_crd_written, s);
    free(body);
    if (rc != 0) {
        log_error("crd", "%s: store update failed: %s", name, skiff_strerror(rc));
        api_op_end(s);
    }
}

/* The status and finalizer the CRD should have; written when it differs. */
static void sync_status(api_server_t *s, crd_entry_t *e, const json_t *crd, int64_t rev,
                        const char *conflict)
{
    json_t *want = skiff_json_copy(crd);
    json_t *meta = api_meta(want);
    char now[32];
    api_now_rfc3339(now, sizeof now);
    if (!e->terminating) {
        json_t *fin = json_object_get(meta, "finalizers");
        int has = 0;
        size_t i;
        json_t *f;
        json_array_foreach(fin, i, f) has |= strcmp(json_string_value(f) ?: "", CRD_FINALIZER) == 0;
        if (!has) {
            if (!json_is_array(fin)) {
                fin = json_array();
                json_object_set_new(meta, "finalizers", fin);
            }
            json_array_append_new(fin, json_string(CRD_FINALIZER));
        }
    }
    json_t *status = json_object_get(want, "status");
    if (!json_is_object(status)) {
        status = json_object();
        json_object_set_new(want, "status", status);
    }
    json_t *conds = json_object_get(status, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(status, "conditions", conds);
    }
    const json_t *spec = json_object_get(want, "spec");
    if (conflict) {
        set_condition(conds, "NamesAccepted", "False", "NameConflict", conflict, now);
        set_condition(conds, "Established", "False", "NotAccepted", "not all names are accepted", now);
    } else {
        set_condition(conds, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now);
        set_condition(conds, "Established", "True", "InitialNamesAccepted",
                      "the initial names have been accepted", now);
        json_object_set(status, "acceptedNames", json_object_get(spec, "names"));
    }
    if (e->terminating)
        set_condition(conds, "Terminating", "True", "InstanceDeletionInProgress",
                      "CustomResource deletion is in progress", now);
    if (!json_object_get(status, "acceptedNames"))
        json_object_set_new(status, "acceptedNames", json_pack("{s:s, s:s}", "plural", "", "kind", ""));
    json_t *stored = json_object_get(status, "storedVersions");
    if (!json_is_array(stored)) {
        stored = json_array();
        json_object_set_new(status, "storedVersions", stored);
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(spec, "versions"), i, v)
    {
        if (!json_is_true(json_object_get(v, "storage"))) continue;
        json_t *vn = json_object_get(v, "name");
        int seen = 0;
        size_t j;
        json_t *sv;
        json_array_foreach(stored, j, sv) seen |= json_equal(sv, vn);
        if (!seen && vn) json_array_append(stored, vn);
    }
    json_t *cur = skiff_json_copy(crd);
    json_object_del(api_meta(cur), "resourceVersion");
    json_object_del(meta, "resourceVersion");
    if (!json_equal(cur, want)) write_crd(s, e->name, want, rev);
    json_decref(cur);
    json_decref(want);
}

/* ---- deletion ------------------------------------------------------------------------ */

static void advance_terminating(api_server_t *s);

static void on_cr_deleted(void *data, int status, const skiff_kv_t *kv)
{
    (void)kv;
    (void)status;
    crd_entry_t *e = data;
    api_server_t *s = e->srv;
    e->deletes_inflight--;
    if (e->dropped) {
        /* the CRD went meanwhile (its finalizer removed by hand) */
        if (e->deletes_inflight == 0) {
            for (crd_entry_t **p = &C.zombies; *p; p = &(*p)->next)
                if (*p == e) {
                    *p = e->next;
                    break;
                }
            free(e->name);
            free(e);
        }
        api_op_end(s);
        return;
    }
    /* entries live until the server is freed, which waits for this call */
    if (api_op_end(s)) return;
    if (e->deletes_inflight == 0) advance_terminating(s);
}

static void on_crd_removed(void *data, int status, const skiff_kv_t *kv)
{
    on_crd_written(data, status, kv);
}

/* Delete every object of the CRD's resource; once none is left, drop the
 * finalizer (and with it the CRD). */
static void cleanup(api_server_t *s, crd_entry_t *e, const json_t *crd, int64_t rev)
{
    if (e->deletes_inflight || e->finishing) return;
    if (e->nkinds) {
        const kind_def_t *k = registry_find_resource(e->kinds[0]->group, NULL, e->kinds[0]->resource);
        watch_cache_t *c = k ? api_cache_for(s, k) : NULL;
        if (c && watch_cache_size(c) > 0) {
            cache_obj_t **objs = NULL;
            size_t n = watch_cache_list(c, NULL, NULL, NULL, &objs);
            for (size_t i = 0; i < n; i++) {
                int rc = api_delete_cached(s, registry_storage_kind(k), objs[i], on_cr_deleted, e);
                /* the store call backs through on_cr_deleted, which is done
                 * before the server is freed: the store finishes its calls */
                if (rc == API_DELETE_REMOVING || rc == API_DELETE_MARKING) {
                    e->deletes_inflight++;
                    s->inflight++;
                }
            }
            watch_cache_list_free(objs, n);
            return;
        }
    }
    /* nothing left: the finalizer goes, and the CRD with it when it was the last */
    json_t *obj = skiff_json_copy(crd);
    json_t *meta = api_meta(obj);
    json_t *fin = json_object_get(meta, "finalizers");
    json_t *keep = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(fin, i, f) if (strcmp(json_string_value(f) ?: "", CRD_FINALIZER) != 0)
        json_array_append(keep, f);
    e->finishing = 1;
    if (json_array_size(keep) == 0) {
        char key[1024];
        snprintf(key, sizeof key, CRD_PREFIX "%s", e->name);
        s->inflight++;
        if (s->store->vt->remove(s->store, key, rev, on_crd_removed, s) != 0) api_op_end(s);
    } else if (json_array_size(keep) != json_array_size(fin)) {
        json_object_set_new(meta, "finalizers", keep);
        keep = NULL;
        write_crd(s, e->name, obj, rev);
    }
    json_decref(keep);
    json_decref(obj);
}

/* ---- following the store ----------------------------------------------------------- */

static crd_entry_t *entry_get(const char *name)
{
    crd_entry_t *e = entry_find(name);
    if (e) return e;
    e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->name = strdup(name);
    if (!e->name) {
        free(e);
        return NULL;
    }
    e->next = C.entries;
    C.entries = e;
    return e;
}

static void entry_drop(crd_entry_t *e)
{
    for (crd_entry_t **p = &C.entries; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    unserve(e);
    if (e->deletes_inflight) {
        e->dropped = 1;
        e->next = C.zombies;
        C.zombies = e;
        return;
    }
    free(e->name);
    free(e);
}

/* A CRD as stored now (value NULL: deleted). act: write status and clean up. */
static void follow(api_server_t *s, const char *name, const char *value, size_t len, int64_t rev,
                   int act)
{
    crd_entry_t *e = entry_find(name);
    if (!value) {
        if (e) {
            log_info("crd", "%s deleted: its resource is no longer served", name);
            /* watches of the resource end, as they do in Kubernetes */
            if (e->nkinds)
                api_streams_close_resource(s, e->kinds[0]->group, e->kinds[0]->resource);
            entry_drop(e);
            discovery_invalidate();
            openapi_invalidate();
        }
        return;
    }
    json_t *crd = json_loadb(value, len, 0, NULL);
    if (!json_is_object(crd)) {
        json_decref(crd);
        return;
    }
    e = entry_get(name);
    if (!e) {
        json_decref(crd);
        return;
    }
    e->srv = s;
    if (act) e->finishing = 0; /* a new state of the CRD: look again */
    json_t *dt = json_object_get(api_meta(crd), "deletionTimestamp");
    e->terminating = dt && !json_is_null(dt);
    char why[256];
    const char *conflict = NULL;
    if (names_conflict(e, json_object_get(crd, "spec"), why, sizeof why)) {
        conflict = why;
        if (e->nkinds) {
            unserve(e);
            discovery_invalidate();
            openapi_invalidate();
        }
    } else {
        serve(s, e, crd, rev);
    }
    if (act) {
        if (e->terminating) cleanup(s, e, crd, rev);
        if (!e->finishing) sync_status(s, e, crd, rev, conflict);
    }
    json_decref(crd);
}

void crd_boot(api_server_t *s, const skiff_kv_t *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(kvs[i].key, CRD_PREFIX, sizeof CRD_PREFIX - 1) == 0)
            follow(s, kvs[i].key + sizeof CRD_PREFIX - 1, kvs[i].value, kvs[i].value_len,
                   kvs[i].mod_revision, 0);
}

/* Terminating CRDs move on as their objects go; the CRD's own latest state
 * comes from its cache. */
static void advance_terminating(api_server_t *s)
{
    const kind_def_t *ck = registry_find_resource("apiextensions.k8s.io", "v1",
                                                  "customresourcedefinitions");
    watch_cache_t *cc = ck ? api_cache_for(s, ck) : NULL;
    for (crd_entry_t *e = C.entries; e; e = e->next) {
        if (!e->terminating || e->deletes_inflight || e->finishing || !cc) continue;
        cache_obj_t *o = watch_cache_get(cc, e->name);
        json_t *crd = o ? cache_obj_decode(o) : NULL;
        if (crd) cleanup(s, e, crd, o->rev);
        json_decref(crd);
    }
}

void crd_on_event(api_server_t *s, const skiff_store_event_t *ev)
{
    if (strncmp(ev->kv.key, CRD_PREFIX, sizeof CRD_PREFIX - 1) != 0) return;
    const char *name = ev->kv.key + sizeof CRD_PREFIX - 1;
    if (ev->type == SKIFF_EVENT_PUT)
        follow(s, name, ev->kv.value, ev->kv.value_len, ev->kv.mod_revision, 1);
    else
        follow(s, name, NULL, 0, ev->kv.mod_revision, 1);
}

void crd_after_events(api_server_t *s)
{
    int any_terminating = 0;
    for (crd_entry_t *e = C.entries; e; e = e->next) any_terminating |= e->terminating;
    if (any_terminating) advance_terminating(s);
}

/* At start the status of every CRD is brought up to date (a CRD written
 * while the server was down, or before it knew CRDs). */
void crd_boot_done(api_server_t *s)
{
    const kind_def_t *ck = registry_find_resource("apiextensions.k8s.io", "v1",
                                                  "customresourcedefinitions");
    watch_cache_t *cc = ck ? api_cache_for(s, ck) : NULL;
    if (!cc) return;
    for (crd_entry_t *e = C.entries; e; e = e->next) {
        cache_obj_t *o = watch_cache_get(cc, e->name);
        json_t *crd = o ? cache_obj_decode(o) : NULL;
        if (crd) {
            char why[256];
            int conflict = e->nkinds == 0 && names_conflict(e, json_object_get(crd, "spec"), why, sizeof why);
            if (e->terminating) cleanup(s, e, crd, o->rev);
            else sync_status(s, e, crd, o->rev, conflict ? why : NULL);
        }
        json_decref(crd);
    }
}

void crd_server_free(api_server_t *s)
{
    (void)s;
    while (C.entries) {
        C.entries->deletes_inflight = 0; /* the server is going: nothing calls back */
        entry_drop(C.entries);
    }
    while (C.zombies) {
        crd_entry_t *z = C.zombies;
        C.zombies = z->next;
        free(z->name);
        free(z);
    }
    while (C.blocks) {
        crd_served_t *b = C.blocks;
        C.blocks = b->next;
        json_decref(b->hold);
        free(b->columns);
        free(b->short_names);
        free(b->categories);
        free(b);
    }
    crd_schema_cache_clear();
    discovery_invalidate();
    openapi_invalidate();
}

void crd_request_warning(api_call_t *c)
{
    const char *w = c->kind->crd ? c->kind->crd->warning : NULL;
    if (!w || c->warnings) return;
    c->warnings = strdup(w);
    c->resp->extra_headers = c->warnings;
}

/* ---- updates of CRDs ----------------------------------------------------------- */

int crd_admit_update(api_call_t *c, const json_t *obj, const json_t *old)
{
    const kind_def_t *k = c->kind;
    if (k->crd || strcmp(k->group, crd_definition_kind.group) != 0 ||
        strcmp(k->kind, crd_definition_kind.kind) != 0 || c->sub)
        return 0;
    validation_result_t res;
    memset(&res, 0, sizeof res);
    crd_definition_validate_update(obj, old, &res);
    if (res.count == 0) return 0;
    status_send(c->resp, status_invalid(k, api_meta_str(obj, "name"), &res));
    validation_result_free(&res);
    return -1;
}

/* ---- scale ------------------------------------------------------------------------ */

json_t *crd_scale_view(const kind_def_t *k, const json_t *obj)
{
    const crd_version_t *v = k->crd;
    const json_t *meta = json_object_get(obj, "metadata");
    json_t *m = json_object();
    static const char *const keep[] = {"name", "namespace", "uid", "resourceVersion",
                                       "creationTimestamp"};
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        json_t *x = json_object_get(meta, keep[i]);
        if (x) json_object_set(m, keep[i], x);
    }
    json_int_t spec = json_integer_value(crd_path_get(obj, v->spec_replicas_path));
    json_int_t status = json_integer_value(crd_path_get(obj, v->status_replicas_path));
    json_t *scale = json_pack("{s:s, s:s, s:o, s:{s:I}, s:{s:I}}", "kind", "Scale", "apiVersion",
                              "autoscaling/v1", "metadata", m, "spec", "replicas", spec, "status",
                              "replicas", status);
    const json_t *sel = v->label_selector_path ? crd_path_get(obj, v->label_selector_path) : NULL;
    if (json_is_string(sel))
        json_object_set(json_object_get(scale, "status"), "selector", (json_t *)sel);
    return scale;
}

int crd_scale_set(const kind_def_t *k, json_t *obj, json_int_t replicas)
{
    if (!k->crd || !k->crd->spec_replicas_path) return -1;
    return crd_path_set(obj, k->crd->spec_replicas_path, json_integer(replicas));
}

/* ---- OpenAPI ------------------------------------------------------------------------ */

/* v2 has no nullable and no anyOf for int-or-string: dropped, as the
 * Kubernetes server does when it publishes CRDs in v2. */
static void strip_v2(json_t *s)
{
    if (!json_is_object(s)) return;
    json_object_del(s, "nullable");
    if (json_is_true(json_object_get(s, "x-kubernetes-int-or-string"))) {
        json_object_del(s, "anyOf");
        json_object_del(s, "type");
    }
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(s, "properties"), key, v) strip_v2(v);
    strip_v2(json_object_get(s, "items"));
    strip_v2(json_object_get(s, "additionalProperties"));
}

json_t *crd_openapi_definition(const kind_def_t *k, const char *ref_prefix, int v3)
{
    json_t *d = k->crd && json_is_object(k->crd->schema) ? skiff_json_copy(k->crd->schema)
                                                          : json_pack("{s:s}", "type", "object");
    if (!d) return NULL;
    if (!v3) strip_v2(d);
    json_t *props = json_object_get(d, "properties");
    if (!json_is_object(props)) {
        props = json_object();
        json_object_set_new(d, "properties", props);
        if (!k->crd || !k->crd->schema)
            json_object_set_new(d, "x-kubernetes-preserve-unknown-fields", json_true());
    }
    json_object_set_new(props, "apiVersion",
                        json_pack("{s:s, s:s}", "description",
                                  "APIVersion defines the versioned schema of this representation "
                                  "of an object.",
                                  "type", "string"));
    json_object_set_new(props, "kind",
                        json_pack("{s:s, s:s}", "description",
                                  "Kind is a string value representing the REST resource this "
                                  "object represents.",
                                  "type", "string"));
    char ref[512];
    snprintf(ref, sizeof ref, "%sio.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", ref_prefix);
    if (v3)
        json_object_set_new(props, "metadata",
                            json_pack("{s:[{s:s}], s:s, s:{}}", "allOf", "$ref", ref, "description",
                                      "Standard object's metadata.", "default"));
    else
        json_object_set_new(props, "metadata", json_pack("{s:s}", "$ref", ref));
    json_object_set_new(d, "x-kubernetes-group-version-kind",
                        json_pack("[{s:s, s:s, s:s}]", "group", k->group, "kind", k->kind,
                                  "version", k->version));
    return d;
}
