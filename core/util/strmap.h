/* core/util/strmap.h - a string-keyed hash map (chained), used by the watch
 * cache and the registry lookups. Keys are copied (or, in a borrowed map,
 * kept by pointer); values are the caller's. */
#ifndef SKIFF_STRMAP_H
#define SKIFF_STRMAP_H

#include <stddef.h>

typedef struct strmap strmap_t;

strmap_t *strmap_new(void);
/* A map whose keys are not copied: each put's key must stay valid while
 * that value is in the map (typically it is part of the value). */
strmap_t *strmap_new_borrowed(void);
/* Frees the map; free_value (may be NULL) is called on every value. */
void strmap_free(strmap_t *m, void (*free_value)(void *));
void *strmap_get(const strmap_t *m, const char *key);
/* Inserts or replaces; returns the previous value (or NULL). */
void *strmap_put(strmap_t *m, const char *key, void *value);
/* Removes; returns the value that was there (or NULL). */
void *strmap_remove(strmap_t *m, const char *key);
size_t strmap_size(const strmap_t *m);
/* Calls fn for each entry; fn must not modify the map. */
void strmap_each(const strmap_t *m, void (*fn)(const char *key, void *value, void *data),
                 void *data);

#endif
