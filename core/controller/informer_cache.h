/* core/controller/informer_cache.h - an informer's local store: objects by
 * key ("ns/name" or "name") with indexes by namespace, label ("k=v") and
 * owner uid. One small entry per object, shared by every index it is in,
 * so a cache of many objects costs little beyond the objects themselves.
 * Lists come in the order objects were first cached. A packed cache keeps
 * each object as compact text, about a tenth of a tree's memory, and
 * parses it again for every read. Not thread-safe: the informer's loop
 * owns it. */
#ifndef SKIFF_INFORMER_CACHE_H
#define SKIFF_INFORMER_CACHE_H

#include <stddef.h>

#include <jansson.h>

typedef struct informer_cache informer_cache_t;

/* packed: keep objects as text (see informer_cache.c). */
informer_cache_t *informer_cache_new(int packed);
/* Releases every object and the cache. */
void informer_cache_free(informer_cache_t *c);

size_t informer_cache_size(const informer_cache_t *c);
/* The object under key (borrowed), or NULL. A packed cache's is parsed
 * and held until informer_cache_release_reads. */
json_t *informer_cache_get(informer_cache_t *c, const char *key);
/* The object under key as a new reference, or NULL (a packed cache parses
 * it and holds nothing). */
json_t *informer_cache_get_ref(const informer_cache_t *c, const char *key);
/* Lets go of what get parsed in a packed cache (a no-op otherwise). */
void informer_cache_release_reads(informer_cache_t *c);
/* Caches obj (a new reference) under key and indexes it; an object already
 * there keeps its place in the order and is returned (a reference the
 * caller releases), else NULL. -1 in *err on ENOMEM (nothing changed). */
json_t *informer_cache_put(informer_cache_t *c, const char *key, json_t *obj, int *err);
/* Removes key; returns its object (a reference the caller releases) or NULL. */
json_t *informer_cache_remove(informer_cache_t *c, const char *key);

/* New arrays of the objects (every one, or those of one index value); a
 * packed cache's are new trees, parsed for each list. */
json_t *informer_cache_list(const informer_cache_t *c);
json_t *informer_cache_list_namespace(const informer_cache_t *c, const char *ns);
json_t *informer_cache_list_label(const informer_cache_t *c, const char *key, const char *value);
json_t *informer_cache_list_owner(const informer_cache_t *c, const char *uid);

/* Calls fn for every key and object in order; fn must not change the cache. */
void informer_cache_each(const informer_cache_t *c,
                         void (*fn)(const char *key, json_t *obj, void *data), void *data);
/* The same for the keys alone (a packed cache parses nothing). */
void informer_cache_each_key(const informer_cache_t *c,
                             void (*fn)(const char *key, void *data), void *data);

#endif
