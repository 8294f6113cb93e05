/* core/api/watch_cache.c - per-resource object cache, event ring and
 * watchers, and the packing of settled snapshots (see pack_tick). */
#include "api/watch_cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <skiff/objects.h>

#include "api/cache_pack.h"
#include "api/object_meta.h"
#include "util/strmap.h"

const char *const cache_event_names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};

typedef struct cache_event {
    int type;
    int64_t rev;
    cache_obj_t *obj;  /* new state (or the deleted state for DELETED) */
    cache_obj_t *prev; /* state before, or NULL */
} cache_event_t;

struct cache_watcher {
    watch_cache_t *cache;
    cache_watcher_t *prev, *next;
    char *ns;                    /* NULL: all namespaces */
    const label_selector_t *ls;
    const field_selector_t *fs;
    cache_watch_fn fn;
    void *data;
    int dead;
    int bookmarks;
    int objects; /* takes parsed objects (an in-process watch) */
    uint32_t id; /* for cache_obj_t.match_watcher; never 0 */
};

struct watch_cache {
    const kind_def_t *kind;
    strmap_t *objects;           /* key -> cache_obj_t* */
    int64_t rev;                 /* complete up to this revision */
    cache_event_t *ring;
    size_t cap, head, count;     /* ring of the last `cap` events */
    int64_t ring_start;          /* events after this revision are all in the ring */
    cache_watcher_t *watchers;
    size_t nwatchers;
    int dispatching;
    int has_dead;
    size_t object_watchers;
    uint32_t last_watcher_id;
    struct pack_state *pack; /* NULL: snapshots stay as written */
};

int64_t cache_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cache_obj_ref(cache_obj_t *o) { o->refs++; }

void cache_obj_unref(cache_obj_t *o)
{
    if (!o || --o->refs > 0) return;
    json_decref(o->labels);
    json_decref(o->parsed);
    cache_dict_unref(o->dict);
    free(o);
}

const char *cache_obj_text(cache_obj_t *o, size_t *len, char **tmp)
{
    *tmp = NULL;
    if (!o->dict) {
        *len = o->len;
        return o->json;
    }
    *tmp = cache_unpack(o->dict, o->json, o->len, o->text_len);
    *len = *tmp ? o->text_len : 0;
    return *tmp;
}

int cache_obj_text_has(cache_obj_t *o, const char *needle)
{
    size_t len;
    char *tmp;
    const char *text = cache_obj_text(o, &len, &tmp);
    int has = text ? strstr(text, needle) != NULL : -1;
    free(tmp);
    return has;
}

/* The object's text decoded (a new tree), or NULL. */
static json_t *text_decode(cache_obj_t *o)
{
    size_t len;
    char *tmp;
    const char *text = cache_obj_text(o, &len, &tmp);
    json_t *j = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(tmp);
    return j;
}

json_t *cache_obj_decode(cache_obj_t *o)
{
    /* a copy: callers change what they decode, and the parsed tree is
     * shared (watchers in this process hold it) */
    if (o->parsed) return skiff_json_copy(o->parsed);
    return text_decode(o);
}

void cache_obj_drop_parsed(cache_obj_t *o)
{
    json_decref(o->parsed);
    o->parsed = NULL;
}

const json_t *cache_obj_parsed(cache_obj_t *o)
{
    if (!o->parsed) {
        o->parsed = text_decode(o);
        o->handed = o->parsed;
    }
    return o->parsed;
}

/* A snapshot in one block: the struct, its key, its namespace and room for
 * json_len bytes of JSON (o->json, to fill in, NUL-terminated), so an
 * object costs one allocation besides its labels and tree. */
static cache_obj_t *obj_alloc(const char *key, int namespaced, size_t json_len)
{
    if (json_len >= UINT32_MAX) return NULL;
    size_t klen = strlen(key);
    const char *slash = namespaced ? strchr(key, '/') : NULL;
    size_t nslen = slash ? (size_t)(slash - key) : 0;
    cache_obj_t *o = calloc(1, sizeof *o + klen + 1 + (slash ? nslen + 1 : 0) + json_len + 1);
    if (!o) return NULL;
    char *p = (char *)(o + 1);
    o->key = p;
    memcpy(p, key, klen + 1);
    p += klen + 1;
    if (slash) {
        memcpy(p, key, nslen);
        p[nslen] = '\0';
        o->ns = p;
        o->name = o->key + nslen + 1;
        p += nslen + 1;
    } else {
        o->ns = "";
        o->name = o->key;
    }
    o->json = p;
    o->len = json_len;
    o->refs = 1;
    o->written_ms = cache_clock_ms();
    return o;
}

const json_t *cache_obj_labels(cache_obj_t *o)
{
    if (!o->labels_known) {
        const json_t *p = o->parsed;
        json_t *tmp = p ? NULL : text_decode(o);
        const json_t *labels = json_object_get(json_object_get(p ? p : tmp, "metadata"), "labels");
        if (json_is_object(labels) && json_object_size(labels) > 0)
            o->labels = json_incref((json_t *)labels);
        /* a snapshot that could not be decoded (out of memory) is tried again */
        if (p || tmp) o->labels_known = 1;
        json_decref(tmp);
    }
    return o->labels;
}

static cache_obj_t *obj_build(const char *key, int namespaced, const char *value, size_t len,
                              int64_t rev, int may_splice);

cache_obj_t *cache_obj_from_store(const char *key, int namespaced, const char *value, size_t len,
                                  int64_t rev)
{
    return obj_build(key, namespaced, value, len, rev, 1);
}

/* may_splice 0: value already carries a resourceVersion (re-stamping a snapshot). */
static cache_obj_t *obj_build(const char *key, int namespaced, const char *value, size_t len,
                              int64_t rev, int may_splice)
{
    size_t head = may_splice ? api_splice_rv_at(value, len) : 0;
    if (head) {
        /* canonical bytes: no decoding; labels are read when a selector needs them */
        char ins[API_RV_MEMBER_MAX];
        size_t n = api_rv_member(rev, ins);
        cache_obj_t *o = obj_alloc(key, namespaced, len + n);
        if (!o) return NULL;
        o->rev = rev;
        api_splice_rv_place(o->json, value, len, head, ins, n);
        return o;
    }
    json_t *obj = json_loadb(value, len, 0, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    char rvs[32];
    snprintf(rvs, sizeof rvs, "%lld", (long long)rev);
    json_object_set_new(meta, "resourceVersion", json_string(rvs));
    char *text = json_dumps(obj, JSON_COMPACT);
    cache_obj_t *o = text ? obj_alloc(key, namespaced, strlen(text)) : NULL;
    if (!o) {
        free(text);
        json_decref(obj);
        return NULL;
    }
    o->rev = rev;
    memcpy(o->json, text, o->len + 1);
    free(text);
    json_t *labels = json_object_get(meta, "labels");
    if (json_is_object(labels) && json_object_size(labels) > 0) o->labels = json_incref(labels);
    o->labels_known = 1;
    json_decref(obj);
    return o;
}

static void free_obj_value(void *v) { cache_obj_unref(v); }

static void pack_note(watch_cache_t *c);
static void pack_detach(watch_cache_t *c);

watch_cache_t *watch_cache_new(const kind_def_t *k, size_t ring_capacity)
{
    watch_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kind = k;
    c->objects = strmap_new_borrowed(); /* keyed by each object's own key */
    c->cap = ring_capacity ? ring_capacity : 1024;
    c->ring = calloc(c->cap, sizeof *c->ring);
    if (!c->objects || !c->ring) {
        strmap_free(c->objects, NULL);
        free(c->ring);
        free(c);
        return NULL;
    }
    return c;
}

static void event_clear(cache_event_t *e)
{
    cache_obj_unref(e->obj);
    cache_obj_unref(e->prev);
    memset(e, 0, sizeof *e);
}

static void watcher_free(cache_watcher_t *w)
{
    free(w->ns);
    free(w);
}

void watch_cache_free(watch_cache_t *c)
{
    if (!c) return;
    cache_watcher_t *w = c->watchers;
    while (w) {
        cache_watcher_t *next = w->next;
        watcher_free(w);
        w = next;
    }
    for (size_t i = 0; i < c->count; i++) event_clear(&c->ring[(c->head + i) % c->cap]);
    free(c->ring);
    pack_detach(c);
    strmap_free(c->objects, free_obj_value);
    free(c);
}

const kind_def_t *watch_cache_kind(const watch_cache_t *c) { return c->kind; }
void watch_cache_set_kind(watch_cache_t *c, const kind_def_t *k) { c->kind = k; }
int64_t watch_cache_revision(const watch_cache_t *c) { return c->rev; }
size_t watch_cache_size(const watch_cache_t *c) { return strmap_size(c->objects); }
size_t watch_cache_watcher_count(const watch_cache_t *c) { return c->nwatchers; }
cache_obj_t *watch_cache_get(const watch_cache_t *c, const char *key)
{
    return strmap_get(c->objects, key);
}

int watch_cache_match(cache_obj_t *o, const char *ns, const label_selector_t *ls,
                      const field_selector_t *fs)
{
    if (!o) return 0;
    if (ns && *ns && strcmp(o->ns, ns) != 0) return 0;
    if (ls && !label_selector_empty(ls) && !label_selector_matches(ls, cache_obj_labels(o))) return 0;
    if (fs && !field_selector_empty(fs)) {
        const json_t *p = cache_obj_parsed(o);
        if (!p || !field_selector_matches(fs, p)) return 0;
    }
    return 1;
}

static void reap_dead(watch_cache_t *c)
{
    if (!c->has_dead || c->dispatching) return;
    cache_watcher_t *w = c->watchers;
    while (w) {
        cache_watcher_t *next = w->next;
        if (w->dead) {
            if (w->prev) w->prev->next = w->next;
            else c->watchers = w->next;
            if (w->next) w->next->prev = w->prev;
            c->nwatchers--;
            watcher_free(w);
        }
        w = next;
    }
    c->has_dead = 0;
}

/* watch_cache_match for w, remembered on o for a watcher with selectors
 * (a version and a watcher's selectors never change) */
static int watcher_match(cache_watcher_t *w, cache_obj_t *o)
{
    if (!o) return 0;
    if ((!w->ls || label_selector_empty(w->ls)) && (!w->fs || field_selector_empty(w->fs)))
        return watch_cache_match(o, w->ns, NULL, NULL);
    if (o->match_watcher == w->id) return o->match_result;
    o->match_result = watch_cache_match(o, w->ns, w->ls, w->fs) != 0;
    o->match_watcher = w->id;
    return o->match_result;
}

/* What one watcher sees of an event: k8s turns a MODIFIED that leaves or
 * enters a watcher's selection into DELETED or ADDED. */
static void deliver(cache_watcher_t *w, const cache_event_t *e)
{
    if (w->dead) return;
    int now = e->type != CACHE_DELETED && watcher_match(w, e->obj);
    int before = e->type == CACHE_DELETED ? watcher_match(w, e->obj) : watcher_match(w, e->prev);
    if (e->type == CACHE_DELETED) {
        if (before) w->fn(w->data, CACHE_DELETED, e->obj, e->rev);
        return;
    }
    if (now && before) w->fn(w->data, CACHE_MODIFIED, e->obj, e->rev);
    else if (now) w->fn(w->data, CACHE_ADDED, e->obj, e->rev);
    else if (before) w->fn(w->data, CACHE_DELETED, e->obj, e->rev);
}

/* Drop a decoded copy made only for matching: the cache keeps bytes, not trees. */
static void drop_parsed_unless(cache_obj_t *o, int had)
{
    if (o && !had && o->parsed) {
        json_decref(o->parsed);
        o->parsed = NULL;
    }
}

/* Objects of the newest RECENT_TREES events keep the tree their write
 * handed over: a write that follows at once (a status update after a
 * create) then copies the tree instead of decoding. Few: a tree kept
 * longer is cold in the cache by the time it is freed, and its blocks
 * cold when they are reused (512 cost the scheduling benchmark a quarter
 * of its throughput). */
#define RECENT_TREES 16

static void forget_old_tree(watch_cache_t *c)
{
    if (c->count <= RECENT_TREES) return;
    cache_event_t *e = &c->ring[(c->head + c->count - 1 - RECENT_TREES) % c->cap];
    if (e->obj && e->obj->parsed_recent) {
        e->obj->parsed_recent = 0;
        cache_obj_drop_parsed(e->obj);
    }
}

static void record(watch_cache_t *c, int type, cache_obj_t *obj, cache_obj_t *prev, int64_t rev)
{
    if (c->count == c->cap) {
        cache_event_t *old = &c->ring[c->head];
        c->ring_start = old->rev;
        event_clear(old);
        c->head = (c->head + 1) % c->cap;
        c->count--;
    }
    cache_event_t *e = &c->ring[(c->head + c->count) % c->cap];
    e->type = type;
    e->rev = rev;
    e->obj = obj;
    e->prev = prev;
    if (obj) cache_obj_ref(obj);
    if (prev) cache_obj_ref(prev);
    c->count++;
    if (rev > c->rev) c->rev = rev;
    int had_obj = obj && obj->parsed, had_prev = prev && prev->parsed;
    c->dispatching++;
    for (cache_watcher_t *w = c->watchers; w; w = w->next) deliver(w, e);
    c->dispatching--;
    drop_parsed_unless(obj, had_obj);
    drop_parsed_unless(prev, had_prev);
    forget_old_tree(c);
    reap_dead(c);
}

void watch_cache_put(watch_cache_t *c, const char *key, const char *value, size_t len,
                     int64_t rev)
{
    cache_obj_t *o = cache_obj_from_store(key, c->kind->namespaced, value, len, rev);
    if (!o) return;
    cache_obj_t *prev = strmap_put(c->objects, o->key, o);
    record(c, prev ? CACHE_MODIFIED : CACHE_ADDED, o, prev, rev);
    cache_obj_unref(prev);
    pack_note(c);
}

void watch_cache_put_parsed(watch_cache_t *c, const char *key, const char *value, size_t len,
                            int64_t rev, json_t *tree)
{
    cache_obj_t *o = cache_obj_from_store(key, c->kind->namespaced, value, len, rev);
    if (!o) {
        json_decref(tree);
        return;
    }
    if (tree) {
        json_t *meta = json_object_get(tree, "metadata");
        char rvs[32];
        snprintf(rvs, sizeof rvs, "%lld", (long long)rev);
        const char *cur = json_string_value(json_object_get(meta, "resourceVersion"));
        /* an in-process writer that asked for the tree as its answer has
         * stamped it already */
        if (json_is_object(meta) &&
            ((cur && strcmp(cur, rvs) == 0) ||
             json_object_set_new(meta, "resourceVersion", json_string(rvs)) == 0)) {
            o->parsed = tree;
            o->handed = tree;
        } else {
            json_decref(tree);
        }
    }
    if (o->parsed) o->parsed_recent = 1;
    cache_obj_t *prev = strmap_put(c->objects, o->key, o);
    record(c, prev ? CACHE_MODIFIED : CACHE_ADDED, o, prev, rev);
    if (c->cap <= RECENT_TREES && o->parsed == tree) {
        /* a small ring: kept while dispatching only */
        o->parsed_recent = 0;
        cache_obj_drop_parsed(o);
    }
    cache_obj_unref(prev);
    pack_note(c);
}

int watch_cache_wants_objects(const watch_cache_t *c) { return c->object_watchers > 0; }

void watch_cache_watcher_want_objects(cache_watcher_t *w)
{
    if (w->objects) return;
    w->objects = 1;
    w->cache->object_watchers++;
}

void watch_cache_load(watch_cache_t *c, const char *key, const char *value, size_t len,
                      int64_t rev)
{
    cache_obj_t *o = cache_obj_from_store(key, c->kind->namespaced, value, len, rev);
    if (!o) return;
    cache_obj_unref(strmap_put(c->objects, o->key, o));
    pack_note(c);
}

void watch_cache_delete(watch_cache_t *c, const char *key, int64_t rev)
{
    cache_obj_t *prev = strmap_remove(c->objects, key);
    if (!prev) {
        if (rev > c->rev) c->rev = rev;
        return;
    }
    /* The DELETED event carries the last state, with the deletion revision
     * as its resourceVersion, the way Kubernetes reports it. */
    size_t plen;
    char *ptmp;
    const char *ptext = cache_obj_text(prev, &plen, &ptmp);
    cache_obj_t *gone = ptext ? obj_build(key, c->kind->namespaced, ptext, plen, rev, 0) : NULL;
    free(ptmp);
    if (gone) {
        /* the same state (only its resourceVersion differs): selected alike */
        gone->match_watcher = prev->match_watcher;
        gone->match_result = prev->match_result;
    }
    record(c, CACHE_DELETED, gone ? gone : prev, prev, rev);
    cache_obj_unref(gone);
    cache_obj_unref(prev);
}

void watch_cache_compact(watch_cache_t *c, int64_t rev)
{
    while (c->count > 0 && c->ring[c->head].rev <= rev) {
        event_clear(&c->ring[c->head]);
        c->head = (c->head + 1) % c->cap;
        c->count--;
    }
    if (c->ring_start < rev) c->ring_start = rev;
}

void watch_cache_progress(watch_cache_t *c, int64_t rev)
{
    if (rev > c->rev) c->rev = rev;
    /* The first progress marks the end of the initial load: history before
     * it is not in the ring. */
    if (c->ring_start == 0 && c->count == 0) c->ring_start = rev;
}

typedef struct list_ctx {
    const char *ns;
    const label_selector_t *ls;
    const field_selector_t *fs;
    cache_obj_t **items;
    size_t n, cap;
    int failed;
} list_ctx_t;

static void list_one(const char *key, void *value, void *data)
{
    list_ctx_t *l = data;
    cache_obj_t *o = value;
    int had = o->parsed != NULL;
    int match = watch_cache_match(o, l->ns, l->ls, l->fs);
    drop_parsed_unless(o, had);
    if (!match) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        cache_obj_t **ni = realloc(l->items, nc * sizeof *ni);
        if (!ni) {
            l->failed = 1;
            return;
        }
        l->items = ni;
        l->cap = nc;
    }
    cache_obj_ref(o);
    l->items[l->n++] = o;
}

static int by_key(const void *a, const void *b)
{
    return strcmp((*(cache_obj_t *const *)a)->key, (*(cache_obj_t *const *)b)->key);
}

size_t watch_cache_list(watch_cache_t *c, const char *ns, const label_selector_t *ls,
                        const field_selector_t *fs, cache_obj_t ***out)
{
    list_ctx_t l = {.ns = ns, .ls = ls, .fs = fs};
    /* sized for everything up front: no partial list from a failed realloc */
    l.cap = strmap_size(c->objects) + 1;
    l.items = malloc(l.cap * sizeof *l.items);
    if (!l.items) {
        *out = NULL;
        return 0;
    }
    strmap_each(c->objects, list_one, &l);
    if (l.n > 1) qsort(l.items, l.n, sizeof *l.items, by_key);
    *out = l.items;
    return l.n;
}

void watch_cache_list_free(cache_obj_t **objs, size_t n)
{
    for (size_t i = 0; i < n; i++) cache_obj_unref(objs[i]);
    free(objs);
}

typedef struct each_ctx {
    void (*fn)(cache_obj_t *, void *);
    void *data;
} each_ctx_t;

static void each_one(const char *key, void *value, void *data)
{
    each_ctx_t *e = data;
    e->fn(value, e->data);
}

void watch_cache_each(watch_cache_t *c, void (*fn)(cache_obj_t *, void *), void *data)
{
    each_ctx_t e = {fn, data};
    strmap_each(c->objects, each_one, &e);
}

cache_watcher_t *watch_cache_watch(watch_cache_t *c, const char *ns, const label_selector_t *ls,
                                   const field_selector_t *fs, int64_t after_rev,
                                   cache_watch_fn fn, void *data, int *too_old)
{
    *too_old = 0;
    if (after_rev >= 0 && after_rev < c->ring_start) {
        *too_old = 1;
        return NULL;
    }
    cache_watcher_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->cache = c;
    if (++c->last_watcher_id == 0) c->last_watcher_id = 1; /* 0: no watcher */
    w->id = c->last_watcher_id;
    w->ns = ns && *ns ? strdup(ns) : NULL;
    w->ls = ls;
    w->fs = fs;
    w->fn = fn;
    w->data = data;
    c->dispatching++;
    if (after_rev < 0) {
        cache_obj_t **items;
        size_t n = watch_cache_list(c, ns, ls, fs, &items);
        for (size_t i = 0; i < n && !w->dead; i++) fn(data, CACHE_ADDED, items[i], items[i]->rev);
        watch_cache_list_free(items, n);
    } else {
        for (size_t i = 0; i < c->count && !w->dead; i++) {
            cache_event_t *e = &c->ring[(c->head + i) % c->cap];
            if (e->rev > after_rev) deliver(w, e);
        }
    }
    c->dispatching--;
    w->next = c->watchers;
    if (c->watchers) c->watchers->prev = w;
    c->watchers = w;
    c->nwatchers++;
    if (w->dead) {
        /* The callback ended the watch during the replay. */
        c->has_dead = 1;
        reap_dead(c);
        return NULL;
    }
    return w;
}

void watch_cache_unwatch(cache_watcher_t *w)
{
    if (!w) return;
    if (w->objects) {
        w->objects = 0;
        w->cache->object_watchers--;
    }
    w->dead = 1;
    w->cache->has_dead = 1;
    reap_dead(w->cache);
}

void watch_cache_watcher_want_bookmarks(cache_watcher_t *w, int on) { w->bookmarks = on; }

void watch_cache_bookmark_all(watch_cache_t *c, int64_t rev)
{
    c->dispatching++;
    for (cache_watcher_t *w = c->watchers; w; w = w->next)
        if (!w->dead && w->bookmarks) w->fn(w->data, CACHE_BOOKMARK, NULL, rev > c->rev ? rev : c->rev);
    c->dispatching--;
    reap_dead(c);
}

/* ---- packing settled snapshots ------------------------------------------------------ */

/* A resource gets a dictionary once it holds TRAIN_AT objects (after a
 * failed training, four times as many), trained on up to TRAIN_SAMPLES of
 * them (TRAIN_BYTES in all, none over SAMPLE_MAX). */
#define TRAIN_AT 512
#define TRAIN_SAMPLES 1000
#define TRAIN_BYTES ((size_t)4 << 20)
#define SAMPLE_MAX ((size_t)16 << 10)
/* Snapshots written in the last SETTLE_MS stay as written: what was just
 * written is what is read and written next (a pod just created is bound,
 * then started), and watches send it now. */
#define SETTLE_MS 1000
#define TICK_MS 500
/* At most this many snapshots go to a worker thread at once. */
#define PACK_BATCH 8192
/* Smaller snapshots are not worth it. */
#define PACK_MIN_BYTES 256

/* Training and packing jobs out, over all caches: one at a time, so they
 * never hold more than one of the thread pool's threads (the store's
 * commits and encodings run there too); a cache whose tick found another
 * cache's job out waits in line and goes next. Loop thread only. */
static int jobs_out;
static struct pack_state *waiting, *waiting_tail;

typedef struct pack_state {
    watch_cache_t *c; /* NULL once the cache is freed (a job may still be out) */
    uv_timer_t timer;
    uv_work_t work;
    cache_dict_t *dict;
    size_t train_at;
    int busy;         /* a job is out */
    int timer_closed;
    /* a training job */
    char *samples;
    size_t *sample_lens, n_samples;
    cache_dict_t *trained;
    struct pack_state *next_waiting;
    int in_line;      /* in the waiting line */
    /* a packing job: objs[i] (a reference each) packed into packed[i] */
    cache_obj_t **objs;
    char **packed;
    size_t *packed_lens, n_objs;
} pack_state_t;

static void pack_maybe_free(pack_state_t *p)
{
    if (p->c || p->busy || p->in_line || !p->timer_closed) return;
    cache_dict_unref(p->dict);
    free(p);
}

static void pack_timer_closed(uv_handle_t *h)
{
    pack_state_t *p = h->data;
    p->timer_closed = 1;
    pack_maybe_free(p);
}

static void pack_detach(watch_cache_t *c)
{
    pack_state_t *p = c->pack;
    if (!p) return;
    c->pack = NULL;
    p->c = NULL; /* if it waits in line, it leaves when the job out ends */
    uv_close((uv_handle_t *)&p->timer, pack_timer_closed);
}

static void pack_tick(uv_timer_t *t);
static void pack_next(void);

/* Something was written: make sure a tick comes. */
static void pack_note(watch_cache_t *c)
{
    pack_state_t *p = c->pack;
    if (p && !uv_is_active((uv_handle_t *)&p->timer))
        uv_timer_start(&p->timer, pack_tick, TICK_MS, TICK_MS);
}

void watch_cache_enable_packing(watch_cache_t *c, uv_loop_t *loop)
{
    if (c->pack) return;
    pack_state_t *p = calloc(1, sizeof *p);
    if (!p) return;
    if (uv_timer_init(loop, &p->timer) != 0) {
        free(p);
        return;
    }
    p->c = c;
    p->train_at = TRAIN_AT;
    p->timer.data = p->work.data = p;
    c->pack = p;
    pack_note(c);
}

/* -- training (a worker thread trains on copies of plain snapshots) -- */

typedef struct sample_ctx {
    pack_state_t *p;
    size_t step, seen, used;
} sample_ctx_t;

static void take_sample(const char *key, void *value, void *data)
{
    sample_ctx_t *s = data;
    pack_state_t *p = s->p;
    cache_obj_t *o = value;
    if (o->dict || p->n_samples == TRAIN_SAMPLES || o->len > SAMPLE_MAX || s->seen++ % s->step)
        return;
    if (s->used + o->len > TRAIN_BYTES) return;
    memcpy(p->samples + s->used, o->json, o->len);
    p->sample_lens[p->n_samples++] = o->len;
    s->used += o->len;
}

/* Forgets a training job's samples. */
static void train_job_clear(pack_state_t *p)
{
    free(p->samples);
    free(p->sample_lens);
    p->samples = NULL;
    p->sample_lens = NULL;
    p->n_samples = 0;
}

static void train_work(uv_work_t *w)
{
    pack_state_t *p = w->data;
    p->trained = cache_dict_train(p->samples, p->sample_lens, p->n_samples);
}

static void train_done(uv_work_t *w, int status)
{
    pack_state_t *p = w->data;
    jobs_out--;
    train_job_clear(p);
    p->busy = 0;
    if (p->c && p->trained) p->dict = p->trained;
    else cache_dict_unref(p->trained);
    if (!p->trained) p->train_at *= 4; /* zstd found too little to learn from */
    p->trained = NULL;
    pack_maybe_free(p);
    pack_next();
}

static void start_training(pack_state_t *p)
{
    watch_cache_t *c = p->c;
    p->samples = malloc(TRAIN_BYTES);
    p->sample_lens = malloc(TRAIN_SAMPLES * sizeof *p->sample_lens);
    if (!p->samples || !p->sample_lens) goto fail;
    size_t n = strmap_size(c->objects);
    sample_ctx_t s = {.p = p, .step = n > TRAIN_SAMPLES ? n / TRAIN_SAMPLES : 1};
    strmap_each(c->objects, take_sample, &s);
    p->busy = 1;
    if (uv_queue_work(p->timer.loop, &p->work, train_work, train_done) == 0) {
        jobs_out++;
        return;
    }
    p->busy = 0;
fail:
    train_job_clear(p);
}

/* -- packing (a worker thread packs settled snapshots; the loop swaps them in) -- */

typedef struct settle_ctx {
    pack_state_t *p;
    int64_t before;  /* written no later than this */
    size_t unsettled; /* plain snapshots still too new */
} settle_ctx_t;

static void take_settled(const char *key, void *value, void *data)
{
    settle_ctx_t *s = data;
    pack_state_t *p = s->p;
    cache_obj_t *o = value;
    if (o->dict || o->packless || o->len < PACK_MIN_BYTES || p->n_objs == PACK_BATCH) return;
    if (o->written_ms > s->before) {
        s->unsettled++;
        return;
    }
    /* a reader keeps its tree (quota, admission lookups): left plain */
    if (o->parsed) return;
    cache_obj_ref(o);
    p->objs[p->n_objs++] = o;
}

/* Forgets a packing job's arrays (the references in objs are gone). */
static void pack_job_clear(pack_state_t *p)
{
    free(p->objs);
    free(p->packed);
    free(p->packed_lens);
    p->objs = NULL;
    p->packed = NULL;
    p->packed_lens = NULL;
    p->n_objs = 0;
}

static void pack_work(uv_work_t *w)
{
    pack_state_t *p = w->data;
    cache_packer_t *pk = cache_packer_new();
    for (size_t i = 0; i < p->n_objs; i++)
        p->packed[i] = pk ? cache_pack(pk, p->dict, p->objs[i]->json, p->objs[i]->len,
                                       &p->packed_lens[i])
                          : NULL;
    cache_packer_free(pk);
}

/* The packed form of o (still the cache's current one) takes its place. */
static void swap_in(watch_cache_t *c, cache_obj_t *o, const char *packed, size_t len,
                    cache_dict_t *dict)
{
    cache_obj_t *n = obj_alloc(o->key, c->kind->namespaced, len);
    if (!n) return;
    memcpy(n->json, packed, len);
    n->dict = dict;
    cache_dict_ref(dict);
    n->text_len = o->len;
    n->rev = o->rev;
    n->written_ms = o->written_ms;
    n->handed = o->handed;
    n->match_watcher = o->match_watcher;
    n->match_result = o->match_result;
    if (o->labels_known) {
        n->labels = json_incref(o->labels);
        n->labels_known = 1;
    }
    cache_obj_unref(strmap_put(c->objects, n->key, n));
}

static void pack_done(uv_work_t *w, int status)
{
    pack_state_t *p = w->data;
    jobs_out--;
    watch_cache_t *c = p->c;
    for (size_t i = 0; i < p->n_objs; i++) {
        cache_obj_t *o = p->objs[i];
        if (c && p->packed[i] && strmap_get(c->objects, o->key) == o)
            swap_in(c, o, p->packed[i], p->packed_lens[i], p->dict);
        else if (!p->packed[i])
            o->packless = 1; /* packing would not shrink it: not tried again */
        free(p->packed[i]);
        cache_obj_unref(o);
    }
    pack_job_clear(p);
    p->busy = 0;
    pack_maybe_free(p);
    pack_next();
}

/* Packs what has settled; 1 if plain snapshots remain to look at later. */
static int start_packing(pack_state_t *p)
{
    watch_cache_t *c = p->c;
    size_t n = strmap_size(c->objects);
    size_t cap = n < PACK_BATCH ? n : PACK_BATCH;
    if (!cap) return 0;
    p->objs = malloc(cap * sizeof *p->objs);
    p->packed = calloc(cap, sizeof *p->packed);
    p->packed_lens = calloc(cap, sizeof *p->packed_lens);
    settle_ctx_t s = {.p = p, .before = cache_clock_ms() - SETTLE_MS};
    if (p->objs && p->packed && p->packed_lens) strmap_each(c->objects, take_settled, &s);
    if (p->n_objs) {
        p->busy = 1;
        if (uv_queue_work(p->timer.loop, &p->work, pack_work, pack_done) == 0) {
            jobs_out++;
            return 1;
        }
        p->busy = 0;
        for (size_t i = 0; i < p->n_objs; i++) cache_obj_unref(p->objs[i]);
    }
    pack_job_clear(p);
    return s.unsettled > 0;
}

/* Trains or packs for p now (no job of any cache is out). */
static void pack_run(pack_state_t *p)
{
    if (!p->dict) {
        if (strmap_size(p->c->objects) >= p->train_at) start_training(p);
        else uv_timer_stop(&p->timer); /* the next write looks again */
        return;
    }
    if (!start_packing(p)) uv_timer_stop(&p->timer);
}

static void pack_tick(uv_timer_t *t)
{
    pack_state_t *p = t->data;
    if (!p->c || p->busy || p->in_line) return;
    if (jobs_out) {
        /* another cache's job is out: go next */
        p->next_waiting = NULL;
        if (waiting_tail) waiting_tail->next_waiting = p;
        else waiting = p;
        waiting_tail = p;
        p->in_line = 1;
        return;
    }
    pack_run(p);
}

/* A job ended: the first cache in line runs (one whose cache is gone
 * is freed). Something waits in line only while a job is out, so the line
 * is always emptied by this. */
static void pack_next(void)
{
    while (waiting && !jobs_out) {
        pack_state_t *p = waiting;
        waiting = p->next_waiting;
        if (!waiting) waiting_tail = NULL;
        p->in_line = 0;
        if (p->c) pack_run(p);
        else pack_maybe_free(p);
    }
}
