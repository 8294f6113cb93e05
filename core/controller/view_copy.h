/* core/controller/view_copy.h - what the informer views (pod_view.c,
 * node_view.c, metadata_view.c) build their reduced objects with. Header only. */
#ifndef SKIFF_CONTROLLER_VIEW_COPY_H
#define SKIFF_CONTROLLER_VIEW_COPY_H

#include <jansson.h>
#include <skiff/objects.h>

/* Copies onto to the members of from named in keys (NULL-terminated)
 * that are there and not null; 0, or -1 when out of memory. Copied, never
 * referenced: the received tree is shared with the API server's watch
 * cache and with the threads encoding it for watchers, and taking
 * references writes its reference counts from this thread while they
 * read it. Measured at 50,000 pods: the pods view cost 7.6 s of server
 * CPU with references, 2.7 s with copies. */
static inline int view_copy_members(json_t *to, const json_t *from, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(from, *keys);
        if (v && !json_is_null(v) &&
            json_object_set_new_nocheck(to, *keys, skiff_json_copy(v)) != 0)
            return -1;
    }
    return 0;
}

/* Sets part (a new reference, or NULL: out of memory) on to as key unless
 * it is empty; 0, or -1 when part is NULL or out of memory. */
static inline int view_set_part(json_t *to, const char *key, json_t *part)
{
    if (!part) return -1;
    if (!json_object_size(part)) {
        json_decref(part);
        return 0;
    }
    return json_object_set_new_nocheck(to, key, part);
}

#endif
