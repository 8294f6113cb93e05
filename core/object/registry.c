/* core/object/registry.c - the kind registry: lookups by resource and by kind.
 *
 * Holds a copy of every built-in kind (core/object/kinds.c) with its schema
 * resolved, plus kinds added at run time (CRDs). Lookups run on every
 * request, so both indexes are open-addressing hashes over (group,
 * resource) and (group, kind) that never allocate; versions of one
 * resource are chained. Validation lives in validate.c, defaults in
 * defaults.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <skiff/errors.h>
#include <skiff/objects.h>

#include "object/crd_schema.h"
#include "object/registry.h"
#include "util/hash.h"

typedef struct reg_entry {
    kind_def_t def;
    char api_version[128];
    int next_res;  /* next entry with the same (group, resource), or -1 */
    int next_kind; /* next entry with the same (group, kind), or -1 */
} reg_entry_t;

static struct {
    int ready;
    reg_entry_t **removed; /* entries no longer served, freed at shutdown */
    size_t nremoved;
    reg_entry_t **entries; /* each entry allocated once: pointers handed out stay valid */
    size_t count, cap;
    int *res_index;  /* heads of chains, -1 empty */
    int *kind_index;
    size_t index_cap;
} R;

static uint64_t hash2(const char *a, const char *b)
{
    return fnv1a_add_str(fnv1a_add(fnv1a_str(a), "/", 1), b);
}

static int index_slot(const int *index, const char *group, const char *name, int by_kind)
{
    size_t mask = R.index_cap - 1;
    size_t j = hash2(group, name) & mask;
    while (index[j] >= 0) {
        const kind_def_t *d = &R.entries[index[j]]->def;
        const char *n = by_kind ? d->kind : d->resource;
        if (strcmp(d->group, group) == 0 && strcmp(n, name) == 0)
            return (int)j;
        j = (j + 1) & mask;
    }
    return (int)j;
}

static int rebuild_index(void)
{
    size_t cap = 64;
    while (cap < R.count * 4)
        cap *= 2;
    int *ri = malloc(cap * sizeof(int));
    int *ki = malloc(cap * sizeof(int));
    if (!ri || !ki) {
        free(ri);
        free(ki);
        return SKIFF_ENOMEM;
    }
    free(R.res_index);
    free(R.kind_index);
    R.res_index = ri;
    R.kind_index = ki;
    R.index_cap = cap;
    for (size_t i = 0; i < cap; i++)
        ri[i] = ki[i] = -1;
    /* Insert in reverse so each chain lists entries in registration order. */
    for (size_t n = R.count; n-- > 0;) {
        reg_entry_t *e = R.entries[n];
        int s = index_slot(ri, e->def.group, e->def.resource, 0);
        e->next_res = ri[s];
        ri[s] = (int)n;
        s = index_slot(ki, e->def.group, e->def.kind, 1);
        e->next_kind = ki[s];
        ki[s] = (int)n;
    }
    return 0;
}

static int add_entry(const kind_def_t *k)
{
    if (!k || !k->group || !k->version || !k->kind || !k->resource)
        return SKIFF_EINVAL;
    if (registry_find_resource(k->group, k->version, k->resource))
        return SKIFF_EEXIST;
    if (R.count == R.cap) {
        size_t ncap = R.cap ? R.cap * 2 : 32;
        reg_entry_t **ne = realloc(R.entries, ncap * sizeof(*ne));
        if (!ne)
            return SKIFF_ENOMEM;
        R.entries = ne;
        R.cap = ncap;
    }
    reg_entry_t *e = calloc(1, sizeof(*e));
    if (!e)
        return SKIFF_ENOMEM;
    R.entries[R.count] = e;
    e->def = *k;
    if (!e->def.schema && e->def.schema_name)
        e->def.schema = schema_lookup(e->def.schema_name);
    if (k->group[0])
        snprintf(e->api_version, sizeof(e->api_version), "%s/%s", k->group, k->version);
    else
        snprintf(e->api_version, sizeof(e->api_version), "%s", k->version);
    R.count++;
    return 0;
}

int registry_add(const kind_def_t *k)
{
    int rc = add_entry(k);
    if (rc < 0)
        return rc;
    rc = rebuild_index();
    if (rc < 0)
        free(R.entries[--R.count]);
    return rc;
}

int registry_remove(const kind_def_t *k)
{
    for (size_t i = 0; i < R.count; i++) {
        if (&R.entries[i]->def != k)
            continue;
        reg_entry_t **nr = realloc(R.removed, (R.nremoved + 1) * sizeof(*nr));
        if (!nr)
            return SKIFF_ENOMEM;
        R.removed = nr;
        R.removed[R.nremoved++] = R.entries[i];
        memmove(&R.entries[i], &R.entries[i + 1], (R.count - i - 1) * sizeof(*R.entries));
        R.count--;
        return rebuild_index();
    }
    return SKIFF_ENOENT;
}

int registry_init(void)
{
    if (R.ready)
        return 0;
    int rc = schema_load_builtin();
    if (rc < 0)
        return rc;
    rc = rebuild_index();
    if (rc < 0)
        goto fail;
    for (size_t i = 0; i < kinds_builtin_count; i++) {
        const kind_def_t *k = &kinds_builtin[i];
        /* A built-in kind whose schema is missing means the generated set is
         * out of date with kinds.c: refuse to start rather than serve it
         * unvalidated. */
        if (!schema_lookup(k->schema_name)) {
            rc = SKIFF_EINVAL;
            goto fail;
        }
        for (const kind_subresource_t *sr = k->subresources; sr && sr->name; sr++)
            if (!schema_lookup(sr->schema_name)) {
                rc = SKIFF_EINVAL;
                goto fail;
            }
        rc = add_entry(k);
        if (rc < 0)
            goto fail;
    }
    /* CustomResourceDefinition: its schema is not in the generated set */
    rc = add_entry(crd_definition_kind_get());
    if (rc < 0)
        goto fail;
    rc = rebuild_index();
    if (rc < 0)
        goto fail;
    R.ready = 1;
    return 0;
fail:
    registry_shutdown();
    return rc;
}

void registry_shutdown(void)
{
    for (size_t i = 0; i < R.count; i++)
        free(R.entries[i]);
    free(R.entries);
    for (size_t i = 0; i < R.nremoved; i++)
        free(R.removed[i]);
    free(R.removed);
    free(R.res_index);
    free(R.kind_index);
    memset(&R, 0, sizeof(R));
    schema_unload();
}

size_t registry_count(void)
{
    return R.count;
}

const kind_def_t *registry_at(size_t i)
{
    return i < R.count ? &R.entries[i]->def : NULL;
}

static const kind_def_t *find(int by_kind, const char *group, const char *version,
                              const char *name)
{
    if (!R.index_cap || !name)
        return NULL;
    if (!group)
        group = "";
    int *index = by_kind ? R.kind_index : R.res_index;
    int s = index_slot(index, group, name, by_kind);
    for (int i = index[s]; i >= 0;) {
        reg_entry_t *e = R.entries[i];
        /* version NULL: the first registered version is the preferred one. */
        if (!version || strcmp(e->def.version, version) == 0)
            return &e->def;
        i = by_kind ? e->next_kind : e->next_res;
    }
    return NULL;
}

const kind_def_t *registry_find_resource(const char *group, const char *version,
                                         const char *resource)
{
    return find(0, group, version, resource);
}

const kind_def_t *registry_find_kind(const char *group, const char *version, const char *kind)
{
    return find(1, group, version, kind);
}

static const char *const k_standard_verbs[] = {"create", "delete", "deletecollection", "get",
                                               "list",   "patch",  "update",           "watch",
                                               NULL};

const char *const *registry_verbs(const kind_def_t *k)
{
    return k && k->verbs ? k->verbs : k_standard_verbs;
}

int registry_verb_allowed(const kind_def_t *k, const char *verb)
{
    if (!k || !verb)
        return 0;
    for (const char *const *v = registry_verbs(k); *v; v++)
        if (strcmp(*v, verb) == 0)
            return 1;
    return 0;
}

const kind_subresource_t *registry_find_subresource(const kind_def_t *k, const char *name)
{
    if (!k || !name)
        return NULL;
    for (const kind_subresource_t *sr = k->subresources; sr && sr->name; sr++)
        if (strcmp(sr->name, name) == 0)
            return sr;
    return NULL;
}

const kind_def_t *registry_find_name(const char *name)
{
    if (!name || !*name)
        return NULL;
    char res[128];
    const char *dot = strchr(name, '.');
    const char *group = "";
    size_t len = strlen(name);
    if (dot) {
        len = (size_t)(dot - name);
        group = dot + 1;
    }
    if (len >= sizeof(res))
        return NULL;
    memcpy(res, name, len);
    res[len] = '\0';
    for (size_t i = 0; i < R.count; i++) {
        const kind_def_t *d = &R.entries[i]->def;
        if (dot && strcmp(d->group, group) != 0)
            continue;
        if (strcmp(d->resource, res) == 0 || (d->singular && strcmp(d->singular, res) == 0))
            return d;
        if (strcasecmp(d->kind, res) == 0)
            return d;
        for (const char *const *s = d->short_names; s && *s; s++)
            if (strcmp(*s, res) == 0)
                return d;
    }
    return NULL;
}

const char *registry_api_version(const kind_def_t *k)
{
    if (!k)
        return NULL;
    /* def is the first member of reg_entry_t, so a registered kind leads
     * straight to its entry; check membership to accept foreign pointers. */
    for (size_t i = 0; i < R.count; i++)
        if (&R.entries[i]->def == k)
            return R.entries[i]->api_version;
    for (size_t i = 0; i < R.nremoved; i++)
        if (&R.removed[i]->def == k)
            return R.removed[i]->api_version;
    /* A kind not in the registry (a caller's own definition): compute into a
     * per-thread buffer rather than failing. */
    static __thread char buf[128];
    if (k->group && k->group[0])
        snprintf(buf, sizeof(buf), "%s/%s", k->group, k->version);
    else
        snprintf(buf, sizeof(buf), "%s", k->version ? k->version : "");
    return buf;
}

void registry_set_defaults(const kind_def_t *k, json_t *obj)
{
    if (k && k->crd && k->crd->schema && json_is_object(obj))
        crd_schema_default(k->crd->schema, obj);
    if (k && k->set_defaults && json_is_object(obj))
        k->set_defaults(obj);
}

/* ---- versions of one resource --------------------------------------------- */

const kind_def_t *registry_storage_kind(const kind_def_t *k)
{
    if (!k || !k->storage_version || strcmp(k->storage_version, k->version) == 0)
        return k;
    const kind_def_t *s = registry_find_resource(k->group, k->storage_version, k->resource);
    return s ? s : k;
}

/* Does obj say it is a `kind` of `api_version`? Absent fields agree. */
static int object_is(const json_t *obj, const char *kind, const char *api_version)
{
    const char *ok = json_string_value(json_object_get(obj, "kind"));
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    return json_is_object(obj) && (!ok || strcmp(ok, kind) == 0) &&
           (!av || strcmp(av, api_version) == 0);
}

/* Custom resources are converted with the strategy None: the object stays
 * as it is, only apiVersion names the other version. */
static json_t *crd_convert(const kind_def_t *from, const kind_def_t *to, const json_t *obj)
{
    int defaults = to->crd && to->crd->has_defaults && to->crd->schema;
    if (!object_is(obj, from->kind, registry_api_version(from)) || (from == to && !defaults))
        return json_incref((json_t *)obj);
    /* defaults apply on read too: objects stored before a default was
     * added to the schema read with it, as in Kubernetes */
    json_t *c = defaults ? skiff_json_copy((json_t *)obj) : json_copy((json_t *)obj);
    if (c && from != to && json_object_get(c, "apiVersion"))
        json_object_set_new(c, "apiVersion", json_string(registry_api_version(to)));
    if (c && defaults)
        crd_schema_default(to->crd->schema, c);
    return c;
}

int registry_converts_on_read(const kind_def_t *k, int64_t rev)
{
    /* an object written after the schema was served had its defaults
     * applied by the write */
    return registry_storage_kind(k) != k ||
           (k->crd && k->crd->has_defaults && (rev < 0 || rev <= k->crd->schema_rev));
}

json_t *registry_convert_to_storage(const kind_def_t *k, const json_t *obj)
{
    const kind_def_t *s = registry_storage_kind(k);
    if (!obj)
        return NULL;
    if (k->crd)
        return crd_convert(k, s, obj);
    if (s == k || !k->to_storage || !object_is(obj, k->kind, registry_api_version(k)))
        return json_incref((json_t *)obj);
    return k->to_storage(obj);
}

json_t *registry_convert_from_storage(const kind_def_t *k, const json_t *obj)
{
    const kind_def_t *s = registry_storage_kind(k);
    if (!obj)
        return NULL;
    if (!registry_converts_on_read(k, -1) || (!k->from_storage && !k->crd) || !json_is_object(obj))
        return json_incref((json_t *)obj);
    const json_t *items = json_object_get(obj, "items");
    if (json_is_array(items)) {
        json_t *list = json_copy((json_t *)obj);
        json_t *out = json_array();
        if (!list || !out)
            goto oom;
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            json_t *c = registry_convert_from_storage(k, it);
            if (!c || json_array_append_new(out, c) < 0)
                goto oom;
        }
        if (json_object_set_new(list, "items", out) < 0) {
            out = NULL;
            goto oom;
        }
        if (json_object_get(list, "apiVersion"))
            json_object_set_new(list, "apiVersion", json_string(registry_api_version(k)));
        return list;
    oom:
        json_decref(out);
        json_decref(list);
        return NULL;
    }
    /* Only a whole stored object of this resource is converted. */
    const char *ok = json_string_value(json_object_get(obj, "kind"));
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    if (!ok || !av || strcmp(ok, s->kind) != 0 || strcmp(av, registry_api_version(s)) != 0)
        return json_incref((json_t *)obj);
    if (k->crd)
        return crd_convert(s, k, obj);
    return k->from_storage(obj);
}
