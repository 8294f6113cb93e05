/* core/controller/controller.c - the controller runner: turns informer
 * events into primary keys on a work queue and runs the descriptor's
 * reconcile for them, at most `workers` at a time, each asynchronously.
 *
 * The runner decides when a key is reconciled and what happens to the
 * result (forget, back-off, delayed requeue); the controller decides what
 * reconciling means. Nothing here talks to the API server itself. */
#include <stdlib.h>
#include <string.h>

#include <skiff/controller.h>

/* How often to look again while the caches are still loading. */
#define SYNC_POLL_MS 10

typedef struct sec_link {
    skiff_controller_t *c;
    size_t index;
} sec_link_t;

struct skiff_controller {
    skiff_plugin_ctx_t *ctx;
    const skiff_controller_desc_t *d;
    skiff_informer_t *primary;
    int primary_hid;
    skiff_informer_t **sec;
    int *sec_hid;
    sec_link_t *links;
    skiff_workqueue_t *q;
    uv_timer_t sync_timer;
    int workers;
    int inflight;
    int started;
    int stopping;
    int timer_closed;
};

/* A reconcile with its strings in one allocation. */
typedef struct reconcile_run {
    skiff_reconcile_t pub;
    char buf[];
} reconcile_run_t;

#define CLOG(c, level, ...)                                                                    \
    do {                                                                                       \
        if ((c)->ctx && (c)->ctx->log) (c)->ctx->log((c)->ctx, level, __VA_ARGS__);            \
    } while (0)

/* ---- events to keys ----------------------------------------------------------------- */

int skiff_controller_enqueue(skiff_controller_t *c, const char *key)
{
    if (!c || !key) return SKIFF_EINVAL;
    if (c->stopping) return SKIFF_ECLOSED;
    return skiff_workqueue_add(c->q, key);
}

static void enqueue_obj(skiff_controller_t *c, json_t *obj)
{
    char key[512];
    int n = skiff_object_key(key, sizeof key, obj);
    if (n < 0 || (size_t)n >= sizeof key) return;
    skiff_controller_enqueue(c, key);
}

static void on_primary_add(void *data, json_t *obj) { enqueue_obj(data, obj); }
static void on_primary_update(void *data, json_t *o, json_t *n) { enqueue_obj(data, n); }
static void on_primary_delete(void *data, json_t *obj) { enqueue_obj(data, obj); }

/* The primary keys an object's ownerReferences name. */
static void enqueue_owners(skiff_controller_t *c, const skiff_controller_watch_t *w, json_t *obj)
{
    const skiff_controller_desc_t *d = c->d;
    json_t *m = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(m, "namespace"));
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(m, "ownerReferences"), i, ref)
    {
        const char *kind = json_string_value(json_object_get(ref, "kind"));
        const char *api = json_string_value(json_object_get(ref, "apiVersion"));
        const char *name = json_string_value(json_object_get(ref, "name"));
        if (!kind || !name || !d->primary_kind || strcmp(kind, d->primary_kind) != 0) continue;
        if (d->primary_api_version && (!api || strcmp(api, d->primary_api_version) != 0)) continue;
        if (w->controller_only && !json_is_true(json_object_get(ref, "controller"))) continue;
        char key[512];
        int n = ns && *ns && !d->primary_cluster_scoped
                    ? snprintf(key, sizeof key, "%s/%s", ns, name)
                    : snprintf(key, sizeof key, "%s", name);
        if (n > 0 && (size_t)n < sizeof key) skiff_controller_enqueue(c, key);
    }
}

static void map_secondary(sec_link_t *l, json_t *obj)
{
    const skiff_controller_watch_t *w = &l->c->d->secondary[l->index];
    if (w->by_owner) enqueue_owners(l->c, w, obj);
    else if (w->map) w->map(l->c->d->data, l->c, obj);
}

static void on_sec_add(void *data, json_t *obj) { map_secondary(data, obj); }
static void on_sec_update(void *data, json_t *o, json_t *n)
{
    /* an owner may have been removed: both versions count */
    if (o != n) map_secondary(data, o);
    map_secondary(data, n);
}
static void on_sec_delete(void *data, json_t *obj) { map_secondary(data, obj); }

/* ---- running reconciles ------------------------------------------------------------- */

static int all_synced(skiff_controller_t *c)
{
    if (!skiff_informer_has_synced(c->primary)) return 0;
    for (size_t i = 0; i < c->d->n_secondary; i++)
        if (!skiff_informer_has_synced(c->sec[i])) return 0;
    return 1;
}

static void on_sync_poll(uv_timer_t *t) { skiff_workqueue_kick(((skiff_controller_t *)t->data)->q); }

static int start_one(skiff_controller_t *c)
{
    const char *key;
    if (skiff_workqueue_get(c->q, &key) != 0) return 0;
    size_t kl = strlen(key);
    reconcile_run_t *run = malloc(sizeof *run + 2 * kl + 3);
    if (!run) {
        skiff_workqueue_done(c->q, key);
        skiff_workqueue_add_rate_limited(c->q, key);
        return 0;
    }
    char *k = run->buf, *ns = k + kl + 1;
    memcpy(k, key, kl + 1);
    const char *slash = strchr(key, '/');
    char *name;
    if (slash) {
        size_t nl = (size_t)(slash - key);
        memcpy(ns, key, nl);
        ns[nl] = '\0';
        name = ns + nl + 1;
        memcpy(name, slash + 1, kl - nl);
    } else {
        ns[0] = '\0';
        name = ns + 1;
        memcpy(name, key, kl + 1);
    }
    run->pub = (skiff_reconcile_t){.ctx = c->ctx, .controller = c, .key = k, .ns = ns,
                                   .name = name, .data = c->d->data};
    c->inflight++;
    c->d->reconcile(&run->pub);
    return 1;
}

static void on_queue_ready(void *data)
{
    skiff_controller_t *c = data;
    if (c->stopping) return;
    if (!all_synced(c)) {
        /* keys wait until every cache is whole: a partial cache would make
         * the controller think objects are missing */
        if (!uv_is_active((uv_handle_t *)&c->sync_timer))
            uv_timer_start(&c->sync_timer, on_sync_poll, SYNC_POLL_MS, 0);
        return;
    }
    while (!c->stopping && c->inflight < c->workers && start_one(c)) {
    }
}

static void controller_maybe_free(skiff_controller_t *c)
{
    if (!c->stopping || !c->timer_closed || c->inflight) return;
    free(c->sec);
    free(c->sec_hid);
    free(c->links);
    free(c);
}

void skiff_reconcile_done(skiff_reconcile_t *r, skiff_reconcile_result_t res)
{
    if (!r) return;
    skiff_controller_t *c = r->controller;
    if (!c->stopping) {
        const char *key = r->key;
        switch (res.outcome) {
        case SKIFF_RECONCILE_DONE:
            skiff_workqueue_forget(c->q, key);
            break;
        case SKIFF_RECONCILE_REQUEUE_AFTER:
            skiff_workqueue_forget(c->q, key);
            skiff_workqueue_add_after(c->q, key, res.after_ms);
            break;
        case SKIFF_RECONCILE_ERROR:
            CLOG(c, SKIFF_LOG_WARN, "%s: reconciling %s failed: %s (retry %d)", c->d->name, key,
                 skiff_strerror(res.error), skiff_workqueue_num_requeues(c->q, key) + 1);
            skiff_workqueue_add_rate_limited(c->q, key);
            break;
        case SKIFF_RECONCILE_REQUEUE:
        default:
            skiff_workqueue_add_rate_limited(c->q, key);
            break;
        }
        skiff_workqueue_done(c->q, key);
    }
    c->inflight--;
    free((reconcile_run_t *)r);
    if (c->stopping) controller_maybe_free(c);
    else skiff_workqueue_kick(c->q);
}

/* ---- life cycle ------------------------------------------------------------------------ */

/* The transform t names for secondary watch i, or NULL. */
static const skiff_controller_transform_t *transform_for(const skiff_controller_transform_t *t,
                                                         size_t n_t, size_t i)
{
    for (size_t k = 0; k < n_t; k++)
        if (t[k].secondary == i) return &t[k];
    return NULL;
}

int skiff_controller_new(skiff_plugin_ctx_t *ctx, skiff_informer_factory_t *f,
                         const skiff_controller_desc_t *d, skiff_controller_t **out)
{
    return skiff_controller_new_transformed(ctx, f, d, NULL, 0, out);
}

int skiff_controller_new_transformed(skiff_plugin_ctx_t *ctx, skiff_informer_factory_t *f,
                                     const skiff_controller_desc_t *d,
                                     const skiff_controller_transform_t *t, size_t n_t,
                                     skiff_controller_t **out)
{
    if (!ctx || !ctx->loop || !f || !d || !d->name || !d->reconcile || !out ||
        (d->n_secondary && !d->secondary) || (n_t && !t))
        return SKIFF_EINVAL;
    for (size_t i = 0; i < d->n_secondary; i++)
        if (!d->secondary[i].by_owner && !d->secondary[i].map) return SKIFF_EINVAL;
    for (size_t k = 0; k < n_t; k++)
        if (t[k].secondary >= d->n_secondary || !t[k].transform_id || !t[k].fn)
            return SKIFF_EINVAL;
    skiff_controller_t *c = calloc(1, sizeof *c);
    if (!c) return SKIFF_ENOMEM;
    c->ctx = ctx;
    c->d = d;
    c->workers = d->workers > 0 ? d->workers : 1;
    size_t n = d->n_secondary ? d->n_secondary : 1;
    c->sec = calloc(n, sizeof *c->sec);
    c->sec_hid = calloc(n, sizeof *c->sec_hid);
    c->links = calloc(n, sizeof *c->links);
    int e = SKIFF_ENOMEM;
    if (!c->sec || !c->sec_hid || !c->links) goto fail;
    e = skiff_informer_factory_get(f, &d->primary, &d->primary_opts, &c->primary);
    if (e < 0) goto fail;
    for (size_t i = 0; i < d->n_secondary; i++) {
        const skiff_controller_transform_t *tr = transform_for(t, n_t, i);
        const skiff_controller_watch_t *w = &d->secondary[i];
        e = tr ? skiff_informer_factory_get_transformed(f, &w->resource, &w->opts,
                                                        tr->transform_id, tr->fn, tr->data,
                                                        &c->sec[i])
               : skiff_informer_factory_get(f, &w->resource, &w->opts, &c->sec[i]);
        if (e < 0) goto fail;
    }
    e = skiff_workqueue_new(ctx->loop, &d->queue, on_queue_ready, c, &c->q);
    if (e < 0) goto fail;
    uv_timer_init(ctx->loop, &c->sync_timer);
    c->sync_timer.data = c;
    *out = c;
    return 0;
fail:
    free(c->sec);
    free(c->sec_hid);
    free(c->links);
    free(c);
    return e;
}

int skiff_controller_start(skiff_controller_t *c)
{
    if (!c || c->stopping) return SKIFF_EINVAL;
    if (c->started) return 0;
    skiff_informer_handler_t ph = {on_primary_add, on_primary_update, on_primary_delete, c};
    int id = skiff_informer_add_handler(c->primary, &ph);
    if (id < 0) return id;
    c->primary_hid = id;
    for (size_t i = 0; i < c->d->n_secondary; i++) {
        c->links[i] = (sec_link_t){c, i};
        skiff_informer_handler_t sh = {on_sec_add, on_sec_update, on_sec_delete, &c->links[i]};
        id = skiff_informer_add_handler(c->sec[i], &sh);
        if (id < 0) return id;
        c->sec_hid[i] = id;
    }
    c->started = 1;
    int e = skiff_informer_start(c->primary);
    for (size_t i = 0; e == 0 && i < c->d->n_secondary; i++) e = skiff_informer_start(c->sec[i]);
    if (e < 0) return e;
    CLOG(c, SKIFF_LOG_INFO, "%s: started with %d worker(s)", c->d->name, c->workers);
    skiff_workqueue_kick(c->q);
    return 0;
}

skiff_informer_t *skiff_controller_informer(skiff_controller_t *c)
{
    return c ? c->primary : NULL;
}

skiff_informer_t *skiff_controller_secondary_informer(skiff_controller_t *c, size_t i)
{
    return c && i < c->d->n_secondary ? c->sec[i] : NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    skiff_controller_t *c = h->data;
    c->timer_closed = 1;
    controller_maybe_free(c);
}

void skiff_controller_free(skiff_controller_t *c)
{
    if (!c || c->stopping) return;
    c->stopping = 1;
    if (c->primary_hid) skiff_informer_remove_handler(c->primary, c->primary_hid);
    for (size_t i = 0; i < c->d->n_secondary; i++)
        if (c->sec_hid[i]) skiff_informer_remove_handler(c->sec[i], c->sec_hid[i]);
    skiff_workqueue_free(c->q);
    c->q = NULL;
    uv_close((uv_handle_t *)&c->sync_timer, on_timer_closed);
}
