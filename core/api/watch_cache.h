/* core/api/watch_cache.h - the per-resource cache that serves lists and watches.
 *
 * One cache per resource holds every object's latest serialized form (with
 * its resourceVersion) and a ring of recent events. The API server feeds all
 * caches from one store watch, so any number of API watchers cost nothing
 * more at the store. A watch asking for a revision older than the ring can
 * replay is told so (the caller then falls back to a store watch or 410).
 * Snapshots that have settled are kept packed (watch_cache_enable_packing). */
#ifndef SKIFF_WATCH_CACHE_H
#define SKIFF_WATCH_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <skiff/store.h>
#include <uv.h>

#include "api/selector.h"
#include "object/registry.h"

/* Immutable, reference-counted snapshot of one object. There is one for
 * every object cached (tens of thousands of pods, each with Events), so
 * it is laid out without holes: 104 bytes on 64-bit systems. */
typedef struct cache_obj {
    int refs;
    uint32_t len;       /* bytes at json (objects are far below 4 GB) */
    char *key;          /* "ns/name" (namespaced) or "name" */
    const char *ns;     /* "" for cluster-scoped */
    const char *name;
    char *json;         /* serialized object including metadata.resourceVersion */
    int64_t rev;        /* mod revision */
    json_t *labels;     /* metadata.labels or NULL, once labels_known */
    json_t *parsed;     /* lazily parsed whole object (for field selectors); may be NULL */
    /* identity (never dereferenced) of the last tree parsed or handed over
     * for this version: a tree an in-process caller holds is this
     * version's own when the pointers are equal (see api_request_t.base_obj) */
    const json_t *handed;
    int64_t written_ms; /* cache_clock_ms() when this version was cached (Event TTL) */
    /* packed (cache_pack.h): json holds len bytes packed with dict, which
     * unpack to text_len bytes; read them with cache_obj_text. NULL: json
     * is the text itself. */
    struct cache_dict *dict;
    uint32_t text_len;
    /* whether the watcher numbered match_watcher (0: none yet) selects this
     * version (match_result): an event matches its new state and then,
     * with the next event, the same state again as the one before, which
     * would mean decoding it twice for a field selector */
    uint32_t match_watcher;
    unsigned labels_known : 1;
    /* parsed is the tree a write handed over, kept while the object is among
     * the cache's newest events (a pod just created is bound next) */
    unsigned parsed_recent : 1;
    unsigned packless : 1; /* packing was tried and would not shrink it */
    unsigned match_result : 1;
    /* key, namespace and json live in the same allocation, after the struct */
} cache_obj_t;

/* Monotonic milliseconds, the clock of written_ms. */
int64_t cache_clock_ms(void);
void cache_obj_ref(cache_obj_t *o);
void cache_obj_unref(cache_obj_t *o);
/* The object's JSON text (NUL-terminated) and its length in *len: o->json
 * itself, or for a packed snapshot a copy unpacked into *tmp, which the
 * caller frees (*tmp is NULL otherwise). NULL if it cannot be unpacked
 * (out of memory). */
const char *cache_obj_text(cache_obj_t *o, size_t *len, char **tmp);
/* Does the object's JSON text contain needle (a cheap filter before
 * decoding it)? 1 or 0; -1 if it cannot be unpacked (out of memory). */
int cache_obj_text_has(cache_obj_t *o, const char *needle);
/* metadata.labels (decoded on first use; borrowed; NULL if none). */
const json_t *cache_obj_labels(cache_obj_t *o);
/* The object decoded, as a new reference the caller releases; the cache
 * keeps only bytes, so a one-off reader does not pin a tree in memory. */
json_t *cache_obj_decode(cache_obj_t *o);
/* Parsed object (parsed once, kept with the snapshot; borrowed). Shared:
 * never modified; cache_obj_decode gives a copy to change. */
const json_t *cache_obj_parsed(cache_obj_t *o);
/* Forgets the parsed object (holders of a reference keep theirs). */
void cache_obj_drop_parsed(cache_obj_t *o);

/* Builds a snapshot from stored bytes: sets metadata.resourceVersion = rev. NULL on bad JSON. */
cache_obj_t *cache_obj_from_store(const char *key, int namespaced, const char *value, size_t len,
                                  int64_t rev);

typedef struct watch_cache watch_cache_t;
typedef struct cache_watcher cache_watcher_t;

enum { CACHE_ADDED = 0, CACHE_MODIFIED = 1, CACHE_DELETED = 2, CACHE_BOOKMARK = 3 };
extern const char *const cache_event_names[];

/* A watcher's callback: type is CACHE_*; obj is borrowed. For bookmarks obj is NULL and rev set. */
typedef void (*cache_watch_fn)(void *data, int type, cache_obj_t *obj, int64_t rev);

watch_cache_t *watch_cache_new(const kind_def_t *k, size_t ring_capacity);
/* Snapshots not written for a while are packed (cache_pack.h) once the
 * resource has enough objects to train a dictionary on; the work runs on
 * loop's thread pool. Off until called. */
void watch_cache_enable_packing(watch_cache_t *c, uv_loop_t *loop);
/* Ends every watcher (callback not called) and frees. */
void watch_cache_free(watch_cache_t *c);
const kind_def_t *watch_cache_kind(const watch_cache_t *c);
/* A served kind replaced by a new entry of the same resource (a CRD changed). */
void watch_cache_set_kind(watch_cache_t *c, const kind_def_t *k);

/* Feed: an object put or deleted at rev. key is "ns/name" or "name". */
void watch_cache_put(watch_cache_t *c, const char *key, const char *value, size_t len,
                     int64_t rev);
/* The same, with tree (owned, may be NULL): the object the writer stored as
 * value, without resourceVersion; it serves as the parsed object while the
 * event is dispatched instead of decoding value again. */
void watch_cache_put_parsed(watch_cache_t *c, const char *key, const char *value, size_t len,
                            int64_t rev, json_t *tree);
void watch_cache_delete(watch_cache_t *c, const char *key, int64_t rev);
/* Initial load: insert without recording an event (call before any watcher). */
void watch_cache_load(watch_cache_t *c, const char *key, const char *value, size_t len,
                      int64_t rev);
/* The cache is complete up to rev (store progress; used at load and for bookmarks). */
void watch_cache_progress(watch_cache_t *c, int64_t rev);
int64_t watch_cache_revision(const watch_cache_t *c);
/* The store was compacted at rev: forget events at or below it, so a watch
 * from an older revision gets the same 410 the store gives. */
void watch_cache_compact(watch_cache_t *c, int64_t rev);

/* Latest snapshot of key, borrowed (NULL if absent). */
cache_obj_t *watch_cache_get(const watch_cache_t *c, const char *key);
/* Objects in ns ("" or NULL: all) matching both selectors (NULL: any), sorted by key.
 * *out is a new array of referenced snapshots; release with watch_cache_list_free. */
size_t watch_cache_list(watch_cache_t *c, const char *ns, const label_selector_t *ls,
                        const field_selector_t *fs, cache_obj_t ***out);
void watch_cache_list_free(cache_obj_t **objs, size_t n);
/* Is o in namespace ns (NULL or "": any) and selected by ls and fs (NULL: any)? */
int watch_cache_match(cache_obj_t *o, const char *ns, const label_selector_t *ls,
                      const field_selector_t *fs);
size_t watch_cache_size(const watch_cache_t *c);
/* Calls fn on every object (for scans such as dependents lookup). */
void watch_cache_each(watch_cache_t *c, void (*fn)(cache_obj_t *o, void *data), void *data);

/* Start a watcher. after_rev < 0: first an ADDED for every matching object,
 * then live events; otherwise replay events after after_rev from the ring,
 * then live. Returns NULL and *too_old = 1 when after_rev is older than the
 * ring can replay. Selectors are borrowed and must outlive the watcher. */
cache_watcher_t *watch_cache_watch(watch_cache_t *c, const char *ns, const label_selector_t *ls,
                                   const field_selector_t *fs, int64_t after_rev,
                                   cache_watch_fn fn, void *data, int *too_old);
void watch_cache_unwatch(cache_watcher_t *w);
/* The watcher takes parsed objects (cache_obj_parsed): writers may then
 * hand over the trees they wrote (watch_cache_put_parsed). */
void watch_cache_watcher_want_objects(cache_watcher_t *w);
int watch_cache_wants_objects(const watch_cache_t *c);
/* Send a BOOKMARK with the cache's current revision to every watcher that wants one. */
void watch_cache_bookmark_all(watch_cache_t *c, int64_t rev);
void watch_cache_watcher_want_bookmarks(cache_watcher_t *w, int on);
size_t watch_cache_watcher_count(const watch_cache_t *c);

#endif
