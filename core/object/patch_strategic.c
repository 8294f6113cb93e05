/* core/object/patch_strategic.c - Kubernetes strategic merge patch.
 *
 * Walks the document and the patch together with the kind's schema. Each
 * field's patchStrategy/patchMergeKey decides how a list merges: lists with
 * strategy "merge" and a merge key match items by that key, lists of
 * primitives with strategy "merge" merge as ordered sets, every other list is
 * replaced. The directives kubectl sends are honoured and never survive into
 * the result: $patch (replace, delete, merge) on maps and list items,
 * $retainKeys, $setElementOrder/<field> and $deleteFromPrimitiveList/<field>.
 * Without a schema (NULL, SCHEMA_ANY, maps of anything) it behaves like a
 * JSON merge patch that still honours and strips the directives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

#include "object/patch.h"

#define DIRECTIVE_PATCH "$patch"
#define DIRECTIVE_RETAIN_KEYS "$retainKeys"
#define PREFIX_SET_ORDER "$setElementOrder/"
#define PREFIX_DELETE_PRIMITIVE "$deleteFromPrimitiveList/"

typedef struct smp {
    char *err;
    size_t errlen;
    char path[512]; /* field path for messages, "spec.containers[name=app]" */
    size_t pathlen;
} smp_t;

/* Appends ".seg" (or "seg" at the root, or "[seg]" for a list item). */
static size_t path_push(smp_t *s, const char *seg, int item)
{
    size_t old = s->pathlen;
    size_t room = sizeof(s->path) - s->pathlen;
    int n = item ? snprintf(s->path + s->pathlen, room, "[%s]", seg)
                 : snprintf(s->path + s->pathlen, room, "%s%s", s->pathlen ? "." : "", seg);
    if (n > 0)
        s->pathlen += (size_t)n < room ? (size_t)n : room - 1;
    return old;
}

static void path_pop(smp_t *s, size_t old)
{
    s->pathlen = old;
    s->path[old] = '\0';
}

static const char *path_or_root(const smp_t *s)
{
    return s->pathlen ? s->path : "<root>";
}

static int is_directive_key(const char *k)
{
    return strcmp(k, DIRECTIVE_PATCH) == 0 || strcmp(k, DIRECTIVE_RETAIN_KEYS) == 0 ||
           strncmp(k, PREFIX_SET_ORDER, strlen(PREFIX_SET_ORDER)) == 0 ||
           strncmp(k, PREFIX_DELETE_PRIMITIVE, strlen(PREFIX_DELETE_PRIMITIVE)) == 0;
}

/* Linear lookup by JSON name: it holds for any field order (hand-built and
 * CRD types need not be sorted for schema_field's search), structs have tens
 * of fields at most, and a patch is applied once per request. */
static const schema_field_t *field_of(const schema_type_t *t, const char *name)
{
    if (!t || t->kind != SCHEMA_OBJECT || !t->fields)
        return NULL;
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].name && strcmp(t->fields[i].name, name) == 0)
            return &t->fields[i];
    return NULL;
}

/* Schema of the value under key name in a value of type t (a struct field
 * or a map's values); *field is the struct field, which carries the patch
 * strategy, or NULL. */
static const schema_type_t *child_type(const schema_type_t *t, const char *name,
                                       const schema_field_t **field)
{
    *field = NULL;
    if (!t)
        return NULL;
    if (t->kind == SCHEMA_MAP)
        return t->elem;
    *field = field_of(t, name);
    return *field ? (*field)->type : NULL;
}

/* patchStrategy is a comma-separated list: "merge", "retainKeys", "merge,retainKeys". */
static int strategy_has(const schema_field_t *f, const char *word)
{
    if (!f || !f->patch_strategy)
        return 0;
    size_t wl = strlen(word);
    const char *p = f->patch_strategy;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == wl && strncmp(p, word, wl) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static const schema_type_t *elem_type(const schema_type_t *t)
{
    return t && t->kind == SCHEMA_ARRAY ? t->elem : NULL;
}

static json_t *merge_map(smp_t *s, json_t *orig, const json_t *patch, const schema_type_t *t,
                         int *deleted);

/* A list that replaces the original: items keep their order, directive
 * markers ({"$patch": ...}) and items marked for deletion are dropped, and
 * maps are stripped of directives and nulls. */
static json_t *replace_list(smp_t *s, const json_t *patch, const schema_type_t *et)
{
    json_t *out = json_array();
    if (!out)
        return patch_fail_(1, s->err, s->errlen, "strategic merge patch: out of memory");
    size_t i;
    json_t *item;
    json_array_foreach(patch, i, item) {
        json_t *copy;
        if (json_is_object(item)) {
            const char *d = json_string_value(json_object_get(item, DIRECTIVE_PATCH));
            if (d && (strcmp(d, "delete") == 0 || json_object_size(item) == 1))
                continue;
            int del = 0;
            copy = merge_map(s, NULL, item, et, &del);
            if (!copy)
                goto fail;
            if (del) {
                json_decref(copy);
                continue;
            }
        } else if (json_is_array(item)) {
            /* a list of lists: the inner lists are plain values too */
            copy = replace_list(s, item, elem_type(et));
            if (!copy)
                goto fail;
        } else {
            copy = skiff_json_copy(item);
        }
        if (!copy || json_array_append_new(out, copy) < 0) {
            patch_fail_(1, s->err, s->errlen, "strategic merge patch: out of memory");
            goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* Index of the first item of list whose merge key equals key, or -1. */
static long find_by_key(const json_t *list, const char *mk, const json_t *key)
{
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *v = json_object_get(item, mk);
        if (v && json_equal(v, (json_t *)key))
            return (long)i;
    }
    return -1;
}

/* "name=app", naming a list item in messages. */
static const char *key_text(const char *mk, const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        snprintf(buf, len, "%s=%.100s", mk, json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%s=%lld", mk, (long long)json_integer_value(v));
    else
        snprintf(buf, len, "%s=?", mk);
    return buf;
}

/* Set union keeping the original order, then new values in patch order. */
static json_t *merge_primitive_list(smp_t *s, json_t *orig, const json_t *patch)
{
    json_t *out = json_is_array(orig) ? orig : json_array();
    if (out != orig)
        json_decref(orig);
    if (!out)
        return patch_fail_(1, s->err, s->errlen, "strategic merge patch: out of memory");
    size_t i, j;
    json_t *v, *w;
    json_array_foreach(patch, i, v) {
        int found = 0;
        json_array_foreach(out, j, w) {
            if (json_equal(v, w)) {
                found = 1;
                break;
            }
        }
        if (found)
            continue;
        json_t *copy = json_is_array(v) ? replace_list(s, v, NULL) : skiff_json_copy(v);
        if (!copy) {
            json_decref(out);
            return json_is_array(v) ? NULL
                                    : patch_fail_(1, s->err, s->errlen,
                                                  "strategic merge patch: out of memory");
        }
        json_array_append_new(out, copy);
    }
    return out;
}

/* A list with patchStrategy "merge". orig (owned, may be NULL) is updated in place. */
static json_t *merge_list(smp_t *s, json_t *orig, const json_t *patch, const schema_field_t *f,
                          const schema_type_t *t)
{
    const schema_type_t *et = elem_type(t);
    const char *mk = f ? f->patch_merge_key : NULL;
    int maps = 0;
    size_t i;
    json_t *item;
    json_array_foreach(patch, i, item) {
        if (json_is_object(item))
            maps = 1;
    }
    if (!maps)
        return merge_primitive_list(s, orig, patch);

    /* $patch: replace anywhere in the list: the list becomes the other items. */
    json_array_foreach(patch, i, item) {
        const char *d = json_string_value(json_object_get(item, DIRECTIVE_PATCH));
        if (d && strcmp(d, "replace") == 0) {
            json_decref(orig);
            return replace_list(s, patch, et);
        }
    }
    if (!mk || !*mk) {
        /* Declared "merge" without a key: nothing to match items by. */
        json_decref(orig);
        return replace_list(s, patch, et);
    }

    json_t *out = json_is_array(orig) ? orig : json_array();
    if (out != orig)
        json_decref(orig);
    if (!out)
        return patch_fail_(1, s->err, s->errlen, "strategic merge patch: out of memory");

    json_array_foreach(patch, i, item) {
        if (!json_is_object(item)) {
            patch_fail_(1, s->err, s->errlen,
                        "strategic merge patch: %s: item %zu must be an object like the others",
                        path_or_root(s), i);
            goto fail;
        }
        json_t *key = json_object_get(item, mk);
        json_t *dv = json_object_get(item, DIRECTIVE_PATCH);
        const char *d = json_string_value(dv);
        if (dv && (!d || (strcmp(d, "delete") && strcmp(d, "merge") && strcmp(d, "replace")))) {
            patch_fail_(1, s->err, s->errlen,
                        "strategic merge patch: %s: item %zu has an unknown $patch directive "
                        "(want replace, merge or delete)",
                        path_or_root(s), i);
            goto fail;
        }
        if (!key) {
            patch_fail_(1, s->err, s->errlen,
                        "strategic merge patch: %s: item %zu does not contain the declared merge "
                        "key \"%s\"",
                        path_or_root(s), i, mk);
            goto fail;
        }
        long at = find_by_key(out, mk, key);
        if (d && strcmp(d, "delete") == 0) {
            while (at >= 0) {
                json_array_remove(out, (size_t)at);
                at = find_by_key(out, mk, key);
            }
            continue;
        }
        char kb[160];
        size_t old = path_push(s, key_text(mk, key, kb, sizeof(kb)), 1);
        int del = 0;
        json_t *cur = at >= 0 ? json_incref(json_array_get(out, (size_t)at)) : NULL;
        json_t *merged = merge_map(s, cur, item, et, &del);
        path_pop(s, old);
        if (!merged)
            goto fail;
        if (del) {
            json_decref(merged);
            if (at >= 0)
                json_array_remove(out, (size_t)at);
        } else if (at >= 0) {
            json_array_set_new(out, (size_t)at, merged);
        } else {
            json_array_append_new(out, merged);
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* 1 when item matches an entry of $setElementOrder: the same primitive, a
 * map with the same merge key value (mk, when known and present in the
 * entry), or else a map whose every member named by the entry is equal. */
static int order_entry_matches(const json_t *entry, const json_t *item, const char *mk)
{
    if (!json_is_object(entry))
        return json_equal((json_t *)entry, (json_t *)item);
    if (!json_is_object(item) || json_object_size(entry) == 0)
        return 0;
    json_t *ek = mk ? json_object_get(entry, mk) : NULL;
    if (ek) {
        json_t *ik = json_object_get(item, mk);
        return ik && json_equal(ek, ik);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)entry, k, v) {
        json_t *w = json_object_get(item, k);
        if (!w || !json_equal(v, w))
            return 0;
    }
    return 1;
}

/* Reorders list in place: items named by order first, in that order, then
 * the others in their current relative order. */
static int apply_element_order(json_t *list, const json_t *order, const char *mk)
{
    size_t n = json_array_size(list);
    if (n < 2)
        return 0;
    json_t *out = json_array();
    char *placed = calloc(n, 1);
    if (!out || !placed) {
        json_decref(out);
        free(placed);
        return -1;
    }
    size_t i, j;
    json_t *entry;
    json_array_foreach(order, i, entry) {
        for (j = 0; j < n; j++) {
            if (!placed[j] && order_entry_matches(entry, json_array_get(list, j), mk)) {
                placed[j] = 1;
                json_array_append(out, json_array_get(list, j));
                break;
            }
        }
    }
    for (j = 0; j < n; j++)
        if (!placed[j])
            json_array_append(out, json_array_get(list, j));
    json_array_clear(list);
    json_array_extend(list, out);
    json_decref(out);
    free(placed);
    return 0;
}

/* $retainKeys: the patch may only set listed keys; other keys of orig go. */
static int apply_retain_keys(smp_t *s, json_t *orig, const json_t *patch, const json_t *keys)
{
    if (!json_is_array(keys)) {
        patch_fail_(1, s->err, s->errlen,
                    "strategic merge patch: %s: $retainKeys must be a list of strings",
                    path_or_root(s));
        return -1;
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        if (!json_is_string(k)) {
            patch_fail_(1, s->err, s->errlen,
                        "strategic merge patch: %s: $retainKeys must be a list of strings",
                        path_or_root(s));
            return -1;
        }
    }
    const char *pk;
    json_t *pv;
    json_object_foreach((json_t *)patch, pk, pv) {
        if (is_directive_key(pk) || json_is_null(pv))
            continue;
        int listed = 0;
        json_array_foreach(keys, i, k) {
            if (strcmp(json_string_value(k), pk) == 0)
                listed = 1;
        }
        if (!listed) {
            patch_fail_(0, s->err, s->errlen,
                        "strategic merge patch: %s: field \"%s\" is set but not listed in "
                        "$retainKeys",
                        path_or_root(s), pk);
            return -1;
        }
    }
    const char *ok;
    json_t *ov;
    void *tmp;
    json_object_foreach_safe(orig, tmp, ok, ov) {
        int listed = 0;
        json_array_foreach(keys, i, k) {
            if (strcmp(json_string_value(k), ok) == 0)
                listed = 1;
        }
        if (!listed)
            json_object_del(orig, ok);
    }
    return 0;
}

static int delete_from_primitive_lists(smp_t *s, json_t *orig, const json_t *patch)
{
    const char *pk;
    json_t *pv;
    size_t plen = strlen(PREFIX_DELETE_PRIMITIVE);
    json_object_foreach((json_t *)patch, pk, pv) {
        if (strncmp(pk, PREFIX_DELETE_PRIMITIVE, plen) != 0)
            continue;
        if (!json_is_array(pv)) {
            patch_fail_(1, s->err, s->errlen, "strategic merge patch: %s: %s must be a list",
                        path_or_root(s), pk);
            return -1;
        }
        json_t *list = json_object_get(orig, pk + plen);
        if (!json_is_array(list))
            continue;
        size_t i = 0;
        while (i < json_array_size(list)) {
            json_t *item = json_array_get(list, i);
            int drop = 0;
            size_t j;
            json_t *v;
            json_array_foreach(pv, j, v) {
                if (json_equal(item, v))
                    drop = 1;
            }
            if (drop)
                json_array_remove(list, i);
            else
                i++;
        }
    }
    return 0;
}

static int set_element_orders(smp_t *s, json_t *orig, const json_t *patch,
                              const schema_type_t *t)
{
    const char *pk;
    json_t *pv;
    size_t plen = strlen(PREFIX_SET_ORDER);
    json_object_foreach((json_t *)patch, pk, pv) {
        if (strncmp(pk, PREFIX_SET_ORDER, plen) != 0)
            continue;
        if (!json_is_array(pv)) {
            patch_fail_(1, s->err, s->errlen, "strategic merge patch: %s: %s must be a list",
                        path_or_root(s), pk);
            return -1;
        }
        json_t *list = json_object_get(orig, pk + plen);
        const schema_field_t *f = field_of(t, pk + plen);
        const char *mk = f ? f->patch_merge_key : NULL;
        if (json_is_array(list) && apply_element_order(list, pv, mk) < 0) {
            patch_fail_(1, s->err, s->errlen, "strategic merge patch: out of memory");
            return -1;
        }
    }
    return 0;
}

/* Merges one member k of patch into orig. 0 or -1. */
static int merge_member(smp_t *s, json_t *orig, const char *k, const json_t *v,
                        const schema_type_t *t)
{
    if (json_is_null(v)) {
        json_object_del(orig, k);
        return 0;
    }
    const schema_field_t *f;
    const schema_type_t *ft = child_type(t, k, &f);
    json_t *cur = json_object_get(orig, k);
    json_t *res = NULL;
    size_t old = path_push(s, k, 0);
    if (json_is_object(v)) {
        int del = 0;
        json_t *base = strategy_has(f, "replace") ? NULL : json_incref(cur);
        res = merge_map(s, base, v, ft, &del);
        if (res && del) {
            json_decref(res);
            json_object_del(orig, k);
            path_pop(s, old);
            return 0;
        }
    } else if (json_is_array(v)) {
        if (strategy_has(f, "merge") && (!cur || json_is_array(cur)))
            res = merge_list(s, json_incref(cur), v, f, ft);
        else
            res = replace_list(s, v, elem_type(ft));
    } else {
        res = skiff_json_copy(v);
        if (!res)
            patch_fail_(1, s->err, s->errlen, "strategic merge patch: out of memory");
    }
    path_pop(s, old);
    if (!res)
        return -1;
    if (json_object_set_new(orig, k, res) < 0) {
        patch_fail_(1, s->err, s->errlen, "strategic merge patch: cannot set \"%s\"", k);
        return -1;
    }
    return 0;
}

/* Merges patch (an object) into orig (owned, may be NULL or not an object).
 * Returns the owned result, or NULL on error. *deleted is set when the patch
 * says `$patch: delete` (the caller drops the value). */
static json_t *merge_map(smp_t *s, json_t *orig, const json_t *patch, const schema_type_t *t,
                         int *deleted)
{
    *deleted = 0;
    json_t *dv = json_object_get(patch, DIRECTIVE_PATCH);
    if (dv) {
        const char *d = json_string_value(dv);
        if (d && strcmp(d, "delete") == 0) {
            json_decref(orig);
            *deleted = 1;
            return json_object();
        }
        if (d && strcmp(d, "replace") == 0) {
            json_decref(orig);
            orig = NULL;
        } else if (!d || strcmp(d, "merge") != 0) {
            json_decref(orig);
            return patch_fail_(1, s->err, s->errlen,
                               "strategic merge patch: %s: unknown $patch directive (want "
                               "replace, merge or delete)",
                               path_or_root(s));
        }
    }
    if (!json_is_object(orig)) {
        json_decref(orig);
        orig = json_object();
        if (!orig)
            return patch_fail_(1, s->err, s->errlen, "strategic merge patch: out of memory");
    }
    json_t *retain = json_object_get(patch, DIRECTIVE_RETAIN_KEYS);
    if (retain && apply_retain_keys(s, orig, patch, retain) < 0)
        goto fail;
    if (delete_from_primitive_lists(s, orig, patch) < 0)
        goto fail;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        if (is_directive_key(k))
            continue;
        if (merge_member(s, orig, k, v, t) < 0)
            goto fail;
    }
    if (set_element_orders(s, orig, patch, t) < 0)
        goto fail;
    return orig;
fail:
    json_decref(orig);
    return NULL;
}

json_t *patch_strategic_apply(const json_t *doc, const json_t *patch, const schema_type_t *type,
                              char *err, size_t errlen)
{
    patch_fail_(0, NULL, 0, "%s", "");
    if (!json_is_object(patch))
        return patch_fail_(1, err, errlen,
                           "strategic merge patch: the patch must be a JSON object");
    smp_t s = {.err = err, .errlen = errlen};
    json_t *copy = json_is_object(doc) ? skiff_json_copy(doc) : NULL;
    if (json_is_object(doc) && !copy)
        return patch_fail_(1, err, errlen, "strategic merge patch: out of memory");
    int del = 0;
    json_t *out = merge_map(&s, copy, patch, type, &del);
    if (out && del) {
        /* `$patch: delete` at the top leaves an empty object, as Kubernetes does. */
        json_object_clear(out);
    }
    return out;
}
