/* skiff/store.h - the revisioned key-value interface every storage plugin
 * implements (storage-sqlite embedded, storage-etcd for HA).
 *
 * Semantics follow etcd v3 so that a backend on etcd means the same thing:
 *  - one revision counter for the whole store, starting at 1 for an empty
 *    store; every successful create, update or delete bumps it by one;
 *  - a key's create_revision is the revision that created it, mod_revision
 *    the revision of its last change, version the number of changes since
 *    creation (1 after create);
 *  - a write is acknowledged (its callback runs with status 0) only once it
 *    is durable: it survives a crash of the process or the machine;
 *  - watch events are delivered in revision order, only for durable writes;
 *  - compaction drops history at or below a revision: reads and watches
 *    asking for an older revision fail with SKIFF_ECOMPACTED.
 *
 * All operations are asynchronous and complete on the loop the store was
 * opened on. A callback may run before the call returns (a backend whose
 * answer is in memory may answer at once); callers must allow for that.
 * Pointers handed to a callback are valid only during the callback.
 * Calls return 0 when the operation was queued (its callback will run
 * exactly once) or a negative SKIFF_E* code when it was refused outright
 * (then the callback never runs). */
#ifndef SKIFF_STORE_H
#define SKIFF_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <skiff/errors.h>
#include <skiff/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skiff_kv {
    const char *key;
    const char *value;      /* not NUL-terminated in general; NULL for a deletion */
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
} skiff_kv_t;

typedef enum skiff_event_type {
    SKIFF_EVENT_PUT = 0,    /* created or updated: kv is the new state */
    SKIFF_EVENT_DELETE = 1, /* deleted: kv.mod_revision is the deletion revision, kv.value NULL */
} skiff_event_type_t;

typedef struct skiff_store_event {
    skiff_event_type_t type;
    skiff_kv_t kv;
    skiff_kv_t prev;        /* state before the event; prev.value NULL after a create */
} skiff_store_event_t;

typedef struct skiff_store skiff_store_t;
typedef struct skiff_store_watch skiff_store_watch_t;

/* Completion of create/update/delete.
 * status 0: kv is the new state (for a delete: the deleted state, with
 *   mod_revision set to the deletion revision).
 * SKIFF_EEXIST (create), SKIFF_ENOENT (update/delete), SKIFF_ECONFLICT
 *   (revision mismatch): kv is the current state if the key exists, else NULL.
 * SKIFF_EIO: nothing was written. */
typedef void (*skiff_store_write_cb)(void *data, int status, const skiff_kv_t *kv);

/* Completion of get: status 0 with kv, or SKIFF_ENOENT / SKIFF_ECOMPACTED / SKIFF_EIO. */
typedef void (*skiff_store_get_cb)(void *data, int status, const skiff_kv_t *kv);

/* Completion of range: kvs sorted by key. `more` is non-zero when the limit
 * cut the result; continue with start = the last key with "\x01" appended
 * (keys are C strings, so that is the next possible key). `revision` is the
 * store revision the range was read at; pass it back for a consistent next page. */
typedef void (*skiff_store_range_cb)(void *data, int status, const skiff_kv_t *kvs, size_t count,
                                     int more, int64_t revision);

/* Events for one watch, in revision order; status 0, or a final
 * SKIFF_ECOMPACTED / SKIFF_ECLOSED / SKIFF_EIO after which no call follows. */
typedef void (*skiff_store_watch_cb)(void *data, int status, const skiff_store_event_t *events,
                                     size_t count);

typedef void (*skiff_store_compact_cb)(void *data, int status);

typedef struct skiff_store_vtable {
    /* Open the store at `location` (backend-specific: a file path for
     * sqlite, a comma-separated list of URLs for etcd). */
    int (*open)(skiff_plugin_ctx_t *ctx, const char *location, skiff_store_t **out);
    /* Close: pending writes complete (durably) or fail with SKIFF_ECLOSED,
     * watches end with SKIFF_ECLOSED, then `done` runs. */
    void (*close)(skiff_store_t *s, void (*done)(void *data), void *data);

    int (*create)(skiff_store_t *s, const char *key, const char *value, size_t len,
                  skiff_store_write_cb cb, void *data);
    /* Update only if the key's mod_revision equals expect_revision;
     * expect_revision 0 means "whatever it is now". */
    int (*update)(skiff_store_t *s, const char *key, const char *value, size_t len,
                  int64_t expect_revision, skiff_store_write_cb cb, void *data);
    /* Delete only if mod_revision equals expect_revision (0: unconditional). */
    int (*remove)(skiff_store_t *s, const char *key, int64_t expect_revision,
                  skiff_store_write_cb cb, void *data);

    /* Read a key at `revision` (0: latest). */
    int (*get)(skiff_store_t *s, const char *key, int64_t revision, skiff_store_get_cb cb,
               void *data);
    /* Keys in [start, end) at `revision` (0: latest); at most `limit` (0: no limit). */
    int (*range)(skiff_store_t *s, const char *start, const char *end, int64_t limit,
                 int64_t revision, skiff_store_range_cb cb, void *data);

    /* Events for keys starting with `prefix` with revision > after_revision
     * (after_revision 0: from now on). */
    int (*watch)(skiff_store_t *s, const char *prefix, int64_t after_revision,
                 skiff_store_watch_cb cb, void *data, skiff_store_watch_t **out);
    /* Stop a watch; its callback is not called again (not even with ECLOSED). */
    void (*watch_cancel)(skiff_store_watch_t *w);

    /* Drop history at or below `revision`. */
    int (*compact)(skiff_store_t *s, int64_t revision, skiff_store_compact_cb cb, void *data);

    /* Latest durable revision, and the oldest revision still readable. */
    int64_t (*revision)(skiff_store_t *s);
    int64_t (*compacted_revision)(skiff_store_t *s);
} skiff_store_vtable_t;

/* A backend's store object starts with this header. */
struct skiff_store {
    const skiff_store_vtable_t *vt;
};

/* End of a prefix range: the smallest key greater than every key that
 * starts with `prefix`. Writes into buf (at least strlen(prefix)+1 bytes). */
static inline char *skiff_prefix_end(const char *prefix, char *buf, size_t buflen)
{
    size_t n = 0;
    while (prefix[n] != '\0') n++;
    if (n + 1 > buflen || n == 0) return NULL;
    for (size_t i = 0; i < n; i++) buf[i] = prefix[i];
    buf[n] = '\0';
    while (n > 0) {
        unsigned char c = (unsigned char)buf[n - 1];
        if (c < 0xff) { buf[n - 1] = (char)(c + 1); buf[n] = '\0'; return buf; }
        n--;
        buf[n] = '\0';
    }
    return NULL;
}

#ifdef __cplusplus
}
#endif
#endif
