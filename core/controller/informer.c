/* core/controller/informer.c - shared informers: one list and one watch per
 * resource (and namespace and selectors), a local cache of the objects with
 * indexes by namespace, label and owner uid, and event handlers for any
 * number of controllers.
 *
 * Like client-go's reflector: list, then watch from the list's
 * resourceVersion with bookmarks; a watch that ends is resumed from the
 * last resourceVersion seen; a 410 Expired (the version was compacted)
 * relists and turns the differences into add/update/delete events. An
 * informer with a transform caches what the transform makes of each
 * object instead of the object. It reads through skiff_client_t only and
 * never writes. */
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>

#include "controller/informer_cache.h"
#include "util/watch_retry.h"


typedef struct handler_ent {
    int id;
    int removed;
    skiff_informer_handler_t h;
} handler_ent_t;

struct skiff_informer {
    uv_loop_t *loop;
    skiff_client_t *client;
    char *group, *version, *resource;
    skiff_resource_t res;
    char *ns, *ls, *fs;
    int resync_ms;
    int watch_timeout_s;
    /* what each object received becomes before it is cached (NULL: itself) */
    skiff_informer_transform_fn transform;
    void *transform_data;
    informer_cache_t *cache; /* objects by key, indexed by namespace, label and owner */
    char rv[64];
    /* a paged list in progress: the items so far, the first page's
     * version, and whether paging is off (after an expired continue) */
    json_t *pages;
    char page_rv[64];
    int no_paging;
    int started, synced, stopping;
    int need_relist;
    watch_retry_t retry;
    handler_ent_t *handlers;
    size_t n_handlers, cap_handlers;
    int next_id;
    int dispatching;
    skiff_client_watch_t *watch;
    int list_pending;
    int closed_handles;
    int lists, watches;
    uv_timer_t retry_timer;
    uv_timer_t resync_timer;
    /* the factory's chain */
    skiff_informer_t *next;
    char *factory_key;
};

struct skiff_informer_factory {
    uv_loop_t *loop;
    skiff_client_t *client;
    skiff_informer_t *informers;
};

/* ---- object helpers --------------------------------------------------------------- */

static json_t *meta(json_t *obj) { return json_object_get(obj, "metadata"); }

static const char *meta_str(json_t *obj, const char *field)
{
    return json_string_value(json_object_get(meta(obj), field));
}

int skiff_object_key(char *buf, size_t len, json_t *obj)
{
    const char *name = meta_str(obj, "name");
    const char *ns = meta_str(obj, "namespace");
    if (!name || !*name) return SKIFF_EINVAL;
    int n = ns && *ns ? snprintf(buf, len, "%s/%s", ns, name) : snprintf(buf, len, "%s", name);
    return n < 0 ? SKIFF_EINVAL : n;
}

/* Key of obj in buf when it fits (names are at most 253 bytes, namespaces
 * 63), else in a malloc'd string; NULL without a name or memory. Release
 * with key_done. */
#define KEY_BUF 320
static char *key_of(json_t *obj, char buf[KEY_BUF])
{
    int n = skiff_object_key(buf, KEY_BUF, obj);
    if (n < 0) return NULL;
    if (n < KEY_BUF) return buf;
    char *k = malloc((size_t)n + 1);
    if (k) skiff_object_key(k, (size_t)n + 1, obj);
    return k;
}

static void key_done(char *k, char buf[KEY_BUF])
{
    if (k != buf) free(k);
}

static char *sdup(const char *s) { return s && *s ? strdup(s) : NULL; }

/* The object to cache for obj, a new reference: the transform's, or obj
 * itself when there is none or it failed. */
static json_t *transformed(skiff_informer_t *inf, json_t *obj)
{
    if (!inf->transform) return json_incref(obj);
    json_t *t = inf->transform(inf->transform_data, obj);
    return t ? t : json_incref(obj);
}

/* A new array of what items become (an incref'd items without a transform). */
static json_t *transformed_items(skiff_informer_t *inf, json_t *items)
{
    if (!inf->transform) return json_incref(items);
    json_t *a = json_array();
    size_t i;
    json_t *it;
    if (a) json_array_foreach(items, i, it) json_array_append_new(a, transformed(inf, it));
    return a;
}

/* ---- handlers ---------------------------------------------------------------------------- */

enum { EV_ADD, EV_UPDATE, EV_DELETE };

static void dispatch(skiff_informer_t *inf, int ev, json_t *old_obj, json_t *new_obj)
{
    size_t n = inf->n_handlers;
    inf->dispatching++;
    for (size_t i = 0; i < n && !inf->stopping; i++) {
        handler_ent_t *e = &inf->handlers[i];
        if (e->removed) continue;
        if (ev == EV_ADD && e->h.on_add) e->h.on_add(e->h.data, new_obj);
        else if (ev == EV_UPDATE && e->h.on_update) e->h.on_update(e->h.data, old_obj, new_obj);
        else if (ev == EV_DELETE && e->h.on_delete) e->h.on_delete(e->h.data, old_obj);
    }
    if (--inf->dispatching == 0) {
        size_t j = 0;
        for (size_t i = 0; i < inf->n_handlers; i++)
            if (!inf->handlers[i].removed) inf->handlers[j++] = inf->handlers[i];
        inf->n_handlers = j;
    }
}

static void replay_add(const char *key, json_t *obj, void *data)
{
    (void)key;
    const skiff_informer_handler_t *h = data;
    h->on_add(h->data, obj);
}

int skiff_informer_add_handler(skiff_informer_t *inf, const skiff_informer_handler_t *h)
{
    if (!inf || !h || inf->stopping) return SKIFF_EINVAL;
    if (inf->n_handlers == inf->cap_handlers) {
        size_t cap = inf->cap_handlers ? inf->cap_handlers * 2 : 4;
        handler_ent_t *p = realloc(inf->handlers, cap * sizeof *p);
        if (!p) return SKIFF_ENOMEM;
        inf->handlers = p;
        inf->cap_handlers = cap;
    }
    handler_ent_t *e = &inf->handlers[inf->n_handlers++];
    e->id = ++inf->next_id;
    e->removed = 0;
    e->h = *h;
    int id = e->id;
    if (h->on_add) {
        skiff_informer_handler_t hc = *h;
        informer_cache_each(inf->cache, replay_add, &hc);
    }
    return id;
}

void skiff_informer_remove_handler(skiff_informer_t *inf, int id)
{
    if (!inf) return;
    for (size_t i = 0; i < inf->n_handlers; i++) {
        if (inf->handlers[i].id != id) continue;
        if (inf->dispatching) {
            inf->handlers[i].removed = 1;
        } else {
            memmove(&inf->handlers[i], &inf->handlers[i + 1],
                    (inf->n_handlers - i - 1) * sizeof *inf->handlers);
            inf->n_handlers--;
        }
        return;
    }
}

/* ---- the cache -------------------------------------------------------------------------- */

static void note_rv(skiff_informer_t *inf, json_t *obj)
{
    const char *rv = meta_str(obj, "resourceVersion");
    if (rv && *rv) snprintf(inf->rv, sizeof inf->rv, "%s", rv);
}

/* Puts obj under key and tells the handlers (add, or update when it was
 * cached already). */
static void cache_put(skiff_informer_t *inf, const char *key, json_t *obj, int quiet_if_same)
{
    int err;
    json_t *old = informer_cache_put(inf->cache, key, obj, &err);
    if (err) return;
    if (!old) {
        dispatch(inf, EV_ADD, NULL, obj);
    } else {
        const char *a = meta_str(old, "resourceVersion"), *b = meta_str(obj, "resourceVersion");
        int same = a && b && strcmp(a, b) == 0;
        if (!(quiet_if_same && same)) dispatch(inf, EV_UPDATE, old, obj);
    }
    json_decref(old);
}

static void cache_del(skiff_informer_t *inf, const char *key, json_t *last)
{
    json_t *old = informer_cache_remove(inf->cache, key);
    if (!old) return;
    /* the final state from the watch when there is one */
    dispatch(inf, EV_DELETE, last ? last : old, NULL);
    json_decref(old);
}

/* Collects into acc[1] the keys not in acc[0] (the keys a list returned). */
static void note_gone(const char *key, void *data)
{
    json_t **acc = data;
    if (!json_object_get(acc[0], key)) json_array_append_new(acc[1], json_string_nocheck(key));
}

/* A list's items become the cache; what changed since becomes events. */
static void cache_replace(skiff_informer_t *inf, json_t *items)
{
    json_t *seen = json_object();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        char kb[KEY_BUF];
        char *k = key_of(it, kb);
        if (!k) continue;
        if (seen) json_object_set_nocheck(seen, k, json_true());
        cache_put(inf, k, it, 1);
        key_done(k, kb);
    }
    json_t *gone = json_array();
    if (seen && gone) {
        json_t *acc[2] = {seen, gone};
        informer_cache_each_key(inf->cache, note_gone, acc);
    }
    json_array_foreach(gone, i, it) cache_del(inf, json_string_value(it), NULL);
    json_decref(gone);
    json_decref(seen);
}

/* ---- list and watch ------------------------------------------------------------------ */

static void start_list(skiff_informer_t *inf);
static void start_watch(skiff_informer_t *inf);

static void on_retry(uv_timer_t *t)
{
    skiff_informer_t *inf = t->data;
    if (inf->stopping) return;
    if (inf->need_relist || !inf->synced) start_list(inf);
    else start_watch(inf);
}

static void retry_after(skiff_informer_t *inf, int ms)
{
    if (inf->stopping) return;
    uv_timer_start(&inf->retry_timer, on_retry, (uint64_t)ms, 0);
}

static void maybe_free(skiff_informer_t *inf);

/* Objects per list page: a large collection comes in pieces, so neither
 * side builds one huge answer (client-go's reflector pages by 500 too). */
#define LIST_PAGE 500

static void request_page(skiff_informer_t *inf, const char *continue_token);

static void on_list(void *data, int status, json_t *obj)
{
    skiff_informer_t *inf = data;
    inf->list_pending = 0;
    informer_cache_release_reads(inf->cache);
    if (inf->stopping) {
        maybe_free(inf);
        return;
    }
    if (status == 410 && inf->pages) {
        /* the continue token expired: list everything in one go */
        json_decref(inf->pages);
        inf->pages = NULL;
        inf->no_paging = 1;
        request_page(inf, NULL);
        return;
    }
    json_t *items = json_object_get(obj, "items");
    if (status != 200 || !json_is_array(items)) {
        json_decref(inf->pages);
        inf->pages = NULL;
        retry_after(inf, watch_retry_failed(&inf->retry));
        return;
    }
    const char *rv = json_string_value(json_object_get(meta(obj), "resourceVersion"));
    const char *cont = json_string_value(json_object_get(meta(obj), "continue"));
    if (!inf->pages) snprintf(inf->page_rv, sizeof inf->page_rv, "%s", rv ? rv : "");
    /* transformed page by page, so a relist never holds every full object */
    json_t *page = transformed_items(inf, items);
    if (!page) {
        json_decref(inf->pages);
        inf->pages = NULL;
        retry_after(inf, watch_retry_failed(&inf->retry));
        return;
    }
    if (cont && *cont) {
        /* more to come: keep this page and ask for the next */
        if (!inf->pages) inf->pages = json_array();
        if (inf->pages) json_array_extend(inf->pages, page);
        json_decref(page);
        request_page(inf, cont);
        return;
    }
    if (inf->pages) {
        json_array_extend(inf->pages, page);
        json_decref(page);
        page = json_incref(inf->pages);
    }
    inf->need_relist = 0;
    inf->no_paging = 0;
    snprintf(inf->rv, sizeof inf->rv, "%s", inf->page_rv);
    cache_replace(inf, page);
    json_decref(page);
    json_decref(inf->pages);
    inf->pages = NULL;
    inf->synced = 1;
    watch_retry_listed(&inf->retry);
    if (!inf->stopping) start_watch(inf);
}

static void request_page(skiff_informer_t *inf, const char *continue_token)
{
    skiff_list_opts_t o = {.label_selector = inf->ls,
                           .field_selector = inf->fs,
                           .limit = inf->no_paging ? 0 : LIST_PAGE,
                           .continue_token = continue_token};
    inf->list_pending = 1;
    int e = skiff_client_list(inf->client, &inf->res, inf->ns, &o, on_list, inf);
    if (e < 0) {
        inf->list_pending = 0;
        json_decref(inf->pages);
        inf->pages = NULL;
        retry_after(inf, watch_retry_failed(&inf->retry));
    }
}

static void start_list(skiff_informer_t *inf)
{
    inf->lists++;
    json_decref(inf->pages);
    inf->pages = NULL;
    request_page(inf, NULL);
}

static void on_watch(void *data, const char *type, json_t *obj)
{
    skiff_informer_t *inf = data;
    if (inf->stopping) return;
    informer_cache_release_reads(inf->cache);
    if (!type) {
        /* ended (timeout, server closed it): resume from the last version,
         * with back-off when it ended at once with nothing (the server
         * refused the connection, is gone or restarting) */
        inf->watch = NULL;
        retry_after(inf, watch_retry_ended(&inf->retry));
        return;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        skiff_client_watch_t *w = inf->watch;
        inf->watch = NULL;
        if (w) inf->client->vt->watch_cancel(w);
        if (code == 410) {
            /* the version is gone from history: start over from a list
             * (with back-off when that list's own watch expired at once) */
            inf->need_relist = 1;
            retry_after(inf, watch_retry_expired(&inf->retry));
        } else {
            retry_after(inf, watch_retry_failed(&inf->retry));
        }
        return;
    }
    watch_retry_event(&inf->retry);
    if (strcmp(type, "BOOKMARK") == 0) {
        note_rv(inf, obj);
        return;
    }
    char kb[KEY_BUF];
    char *k = key_of(obj, kb);
    if (!k) return;
    note_rv(inf, obj);
    int deleted = strcmp(type, "DELETED") == 0;
    if (deleted || strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        json_t *t = transformed(inf, obj);
        if (deleted) cache_del(inf, k, t);
        else cache_put(inf, k, t, 0);
        json_decref(t);
    }
    key_done(k, kb);
}

static void start_watch(skiff_informer_t *inf)
{
    skiff_list_opts_t o = {.label_selector = inf->ls,
                           .field_selector = inf->fs,
                           .resource_version = inf->rv[0] ? inf->rv : NULL,
                           .allow_bookmarks = 1,
                           .timeout_seconds = inf->watch_timeout_s};
    inf->watches++;
    watch_retry_watching(&inf->retry);
    skiff_client_watch_t *w = NULL;
    int e = skiff_client_watch(inf->client, &inf->res, inf->ns, &o, on_watch, inf, &w);
    if (e < 0) {
        retry_after(inf, watch_retry_failed(&inf->retry));
        return;
    }
    inf->watch = w;
}

/* ---- resync -------------------------------------------------------------------------------- */

static void on_resync(uv_timer_t *t)
{
    skiff_informer_t *inf = t->data;
    if (inf->stopping || !inf->synced) return;
    informer_cache_release_reads(inf->cache);
    /* a snapshot: handlers run while the loop is ours, but stay safe */
    json_t *all = skiff_informer_list(inf);
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o) dispatch(inf, EV_UPDATE, o, o);
    json_decref(all);
}

static void arm_resync(skiff_informer_t *inf)
{
    if (!inf->started || inf->stopping) return;
    if (inf->resync_ms > 0)
        uv_timer_start(&inf->resync_timer, on_resync, (uint64_t)inf->resync_ms,
                       (uint64_t)inf->resync_ms);
    else
        uv_timer_stop(&inf->resync_timer);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

int skiff_informer_new(uv_loop_t *loop, skiff_client_t *client, const skiff_resource_t *r,
                       const skiff_informer_opts_t *opts, skiff_informer_t **out)
{
    if (!loop || !client || !r || !r->version || !r->resource || !out) return SKIFF_EINVAL;
    skiff_informer_t *inf = calloc(1, sizeof *inf);
    if (!inf) return SKIFF_ENOMEM;
    inf->loop = loop;
    inf->client = client;
    inf->group = strdup(r->group ? r->group : "");
    inf->version = strdup(r->version);
    inf->resource = strdup(r->resource);
    inf->cache = informer_cache_new(opts && opts->packed);
    if (opts) {
        inf->ns = sdup(opts->namespace_);
        inf->ls = sdup(opts->label_selector);
        inf->fs = sdup(opts->field_selector);
        inf->resync_ms = opts->resync_ms;
        inf->watch_timeout_s = opts->watch_timeout_s;
    }
    if (!inf->group || !inf->version || !inf->resource || !inf->cache ||
        (opts && opts->namespace_ && *opts->namespace_ && !inf->ns) ||
        (opts && opts->label_selector && *opts->label_selector && !inf->ls) ||
        (opts && opts->field_selector && *opts->field_selector && !inf->fs)) {
        inf->closed_handles = 2;
        inf->stopping = 1;
        maybe_free(inf);
        return SKIFF_ENOMEM;
    }
    inf->res.group = inf->group;
    inf->res.version = inf->version;
    inf->res.resource = inf->resource;
    uv_timer_init(loop, &inf->retry_timer);
    inf->retry_timer.data = inf;
    uv_timer_init(loop, &inf->resync_timer);
    inf->resync_timer.data = inf;
    *out = inf;
    return 0;
}

int skiff_informer_set_transform(skiff_informer_t *inf, skiff_informer_transform_fn fn,
                                 void *data)
{
    if (!inf || inf->started || inf->stopping) return SKIFF_EINVAL;
    inf->transform = fn;
    inf->transform_data = fn ? data : NULL;
    return 0;
}

int skiff_informer_start(skiff_informer_t *inf)
{
    if (!inf || inf->stopping) return SKIFF_EINVAL;
    if (inf->started) return 0;
    inf->started = 1;
    arm_resync(inf);
    start_list(inf);
    return 0;
}

static void maybe_free(skiff_informer_t *inf)
{
    if (!inf->stopping || inf->closed_handles < 2 || inf->list_pending) return;
    informer_cache_free(inf->cache);
    json_decref(inf->pages);
    free(inf->handlers);
    free(inf->group);
    free(inf->version);
    free(inf->resource);
    free(inf->ns);
    free(inf->ls);
    free(inf->fs);
    free(inf->factory_key);
    free(inf);
}

static void on_handle_closed(uv_handle_t *h)
{
    skiff_informer_t *inf = h->data;
    inf->closed_handles++;
    maybe_free(inf);
}

void skiff_informer_free(skiff_informer_t *inf)
{
    if (!inf || inf->stopping) return;
    inf->stopping = 1;
    inf->n_handlers = 0;
    if (inf->watch) {
        skiff_client_watch_t *w = inf->watch;
        inf->watch = NULL;
        inf->client->vt->watch_cancel(w);
    }
    uv_close((uv_handle_t *)&inf->retry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&inf->resync_timer, on_handle_closed);
}

/* ---- queries --------------------------------------------------------------------------------- */

int skiff_informer_has_synced(const skiff_informer_t *inf) { return inf && inf->synced; }

const char *skiff_informer_resource_version(const skiff_informer_t *inf)
{
    return inf ? inf->rv : "";
}

void skiff_informer_stats(const skiff_informer_t *inf, int *lists, int *watches)
{
    if (lists) *lists = inf ? inf->lists : 0;
    if (watches) *watches = inf ? inf->watches : 0;
}

json_t *skiff_informer_get(const skiff_informer_t *inf, const char *key)
{
    return inf ? informer_cache_get(inf->cache, key) : NULL;
}

json_t *skiff_informer_get_ref(const skiff_informer_t *inf, const char *key)
{
    return inf ? informer_cache_get_ref(inf->cache, key) : NULL;
}

json_t *skiff_informer_list(const skiff_informer_t *inf)
{
    return informer_cache_list(inf ? inf->cache : NULL);
}

json_t *skiff_informer_list_namespace(const skiff_informer_t *inf, const char *ns)
{
    return informer_cache_list_namespace(inf ? inf->cache : NULL, ns);
}

json_t *skiff_informer_list_label(const skiff_informer_t *inf, const char *key,
                                  const char *value)
{
    return informer_cache_list_label(inf ? inf->cache : NULL, key, value);
}

json_t *skiff_informer_list_owner(const skiff_informer_t *inf, const char *uid)
{
    return informer_cache_list_owner(inf ? inf->cache : NULL, uid);
}

/* ---- the factory -------------------------------------------------------------------------------- */

int skiff_informer_factory_new(uv_loop_t *loop, skiff_client_t *client,
                               skiff_informer_factory_t **out)
{
    if (!loop || !client || !out) return SKIFF_EINVAL;
    skiff_informer_factory_t *f = calloc(1, sizeof *f);
    if (!f) return SKIFF_ENOMEM;
    f->loop = loop;
    f->client = client;
    *out = f;
    return 0;
}

/* The factory's informer for r, opts and transform_id (NULL: untransformed). */
static int factory_get(skiff_informer_factory_t *f, const skiff_resource_t *r,
                       const skiff_informer_opts_t *opts, const char *transform_id,
                       skiff_informer_transform_fn fn, void *data, skiff_informer_t **out)
{
    if (!f || !r || !r->version || !r->resource || !out) return SKIFF_EINVAL;
    /* '\x1f' cannot occur in names or selectors; a transformed informer's
     * key has one more field, so it never matches an untransformed one */
    size_t n = strlen(r->group ? r->group : "") + strlen(r->version) + strlen(r->resource) + 11;
    const char *ns = opts && opts->namespace_ ? opts->namespace_ : "";
    const char *ls = opts && opts->label_selector ? opts->label_selector : "";
    const char *fs = opts && opts->field_selector ? opts->field_selector : "";
    n += strlen(ns) + strlen(ls) + strlen(fs) + (transform_id ? strlen(transform_id) : 0);
    char *key = malloc(n);
    if (!key) return SKIFF_ENOMEM;
    /* packed and unpacked caches of the same objects are two informers */
    snprintf(key, n, "%s/%s/%s\x1f%s\x1f%s\x1f%s\x1f%d%s%s", r->group ? r->group : "",
             r->version, r->resource, ns, ls, fs, opts && opts->packed ? 1 : 0,
             transform_id ? "\x1f" : "", transform_id ? transform_id : "");
    for (skiff_informer_t *i = f->informers; i; i = i->next) {
        if (strcmp(i->factory_key, key) != 0) continue;
        free(key);
        int want = opts ? opts->resync_ms : 0;
        if (want > 0 && (i->resync_ms == 0 || want < i->resync_ms)) {
            i->resync_ms = want;
            arm_resync(i);
        }
        *out = i;
        return 0;
    }
    skiff_informer_t *inf;
    int e = skiff_informer_new(f->loop, f->client, r, opts, &inf);
    if (e < 0) {
        free(key);
        return e;
    }
    if (fn) skiff_informer_set_transform(inf, fn, data);
    inf->factory_key = key;
    inf->next = f->informers;
    f->informers = inf;
    *out = inf;
    return 0;
}

int skiff_informer_factory_get(skiff_informer_factory_t *f, const skiff_resource_t *r,
                               const skiff_informer_opts_t *opts, skiff_informer_t **out)
{
    return factory_get(f, r, opts, NULL, NULL, NULL, out);
}

int skiff_informer_factory_get_transformed(skiff_informer_factory_t *f,
                                           const skiff_resource_t *r,
                                           const skiff_informer_opts_t *opts,
                                           const char *transform_id,
                                           skiff_informer_transform_fn fn, void *data,
                                           skiff_informer_t **out)
{
    if (!transform_id || !*transform_id || strchr(transform_id, '\x1f') || !fn) return SKIFF_EINVAL;
    return factory_get(f, r, opts, transform_id, fn, data, out);
}

int skiff_informer_factory_start(skiff_informer_factory_t *f)
{
    if (!f) return SKIFF_EINVAL;
    for (skiff_informer_t *i = f->informers; i; i = i->next) {
        int e = skiff_informer_start(i);
        if (e < 0) return e;
    }
    return 0;
}

int skiff_informer_factory_has_synced(const skiff_informer_factory_t *f)
{
    if (!f) return 0;
    for (skiff_informer_t *i = f->informers; i; i = i->next)
        if (!i->synced) return 0;
    return 1;
}

void skiff_informer_factory_free(skiff_informer_factory_t *f)
{
    if (!f) return;
    skiff_informer_t *i = f->informers;
    while (i) {
        skiff_informer_t *next = i->next;
        skiff_informer_free(i);
        i = next;
    }
    free(f);
}
