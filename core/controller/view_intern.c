/* core/controller/view_intern.c - the interner the informer views share
 * (view_intern.h): values many objects have alike (a template's labels
 * and containers, a namespace, a machine type's allocatable) are one
 * read-only tree that every view holding them references. */
#include "controller/view_intern.h"

#include <skiff/objects.h>

#define LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

/* For the life of the process: informers of every plugin hold views. */
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

json_t *view_intern(const json_t *v) { return skiff_json_intern_copy(interner(), v); }

json_t *view_intern_own(json_t *v) { return v ? skiff_json_intern(interner(), v) : NULL; }

int view_set_interned(json_t *to, const char *key, const json_t *v)
{
    if (!v || json_is_null(v)) return 0;
    return json_object_set_new_nocheck(to, key, view_intern(v));
}

int view_set_interned_own(json_t *to, const char *key, json_t *v)
{
    if (!v || json_is_null(v)) {
        json_decref(v);
        return 0;
    }
    return json_object_set_new_nocheck(to, key, view_intern_own(v));
}

int view_copy_interned(json_t *to, const json_t *from, const char *const *keys)
{
    for (; *keys; keys++)
        if (view_set_interned(to, *keys, json_object_get(from, *keys)) != 0) return -1;
    return 0;
}

int view_set_annotations(json_t *m, const json_t *ann)
{
    if (!json_object_size(ann)) return 0;
    if (!json_object_get(ann, LAST_APPLIED)) return view_set_interned(m, "annotations", ann);
    json_t *a = skiff_json_copy(ann);
    if (!a) return -1;
    json_object_del(a, LAST_APPLIED);
    if (json_object_size(a)) return view_set_interned_own(m, "annotations", a);
    json_decref(a);
    return 0;
}
