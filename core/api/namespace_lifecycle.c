/* core/api/namespace_lifecycle.c - empties a terminating namespace, then
 * removes it.
 *
 * `kubectl delete namespace x` marks the namespace Terminating; every
 * second (and at once after such a delete) this sweep deletes the objects
 * left in each terminating namespace (objects with finalizers are marked
 * for deletion and waited for), and removes the namespace once it is
 * empty. The state is the store itself, so a restart resumes the work.
 * The namespace controller of the controller framework will take this
 * over; until then the API server does it, so namespaces behave as users
 * expect. */
#include "api/apiserver_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/object_meta.h"
#include "util/log.h"

typedef struct ns_sweep {
    api_server_t *srv;
    char *ns;
    int pending;
    int remaining; /* objects still in the namespace after this round */
} ns_sweep_t;

static void sweep_finish(ns_sweep_t *sw);

static void sweep_free(ns_sweep_t *sw)
{
    if (sw->srv) strmap_remove(sw->srv->ns_sweeps, sw->ns);
    free(sw->ns);
    free(sw);
}

static void on_ns_deleted(void *data, int status, const skiff_kv_t *kv)
{
    ns_sweep_t *sw = data;
    if (status == 0) log_info("namespaces", "namespace %s is empty and removed", sw->ns);
    sweep_free(sw);
}

static void sweep_finish(ns_sweep_t *sw)
{
    api_server_t *s = sw->srv;
    if (!s) {
        /* the server went away while this round's writes completed */
        sweep_free(sw);
        return;
    }
    if (sw->remaining > 0 || s->closing) {
        sweep_free(sw);
        return;
    }
    char key[512];
    api_object_key(key, sizeof key, "", "namespaces", NULL, sw->ns);
    if (s->store->vt->remove(s->store, key, 0, on_ns_deleted, sw) != 0) sweep_free(sw);
}

static void on_object_written(void *data, int status, const skiff_kv_t *kv)
{
    ns_sweep_t *sw = data;
    if (status != 0 && status != SKIFF_ENOENT) sw->remaining++;
    if (--sw->pending == 0) sweep_finish(sw);
}

static void sweep_object(ns_sweep_t *sw, const kind_def_t *k, cache_obj_t *o)
{
    sw->pending++;
    int rc = api_delete_cached(sw->srv, k, o, on_object_written, sw);
    if (rc == API_DELETE_MARKING || rc == API_DELETE_WAITING) sw->remaining++; /* its finalizers decide */
    if (rc != API_DELETE_REMOVING && rc != API_DELETE_MARKING) {
        sw->pending--;
        if (rc < 0) sw->remaining++;
    }
}

static void sweep_namespace(api_server_t *s, const char *ns)
{
    if (strmap_get(s->ns_sweeps, ns)) return; /* a round is still running */
    ns_sweep_t *sw = calloc(1, sizeof *sw);
    if (!sw) return;
    sw->srv = s;
    sw->ns = strdup(ns);
    strmap_put(s->ns_sweeps, ns, sw);
    sw->pending = 1;
    for (size_t i = 0; i < registry_count(); i++) {
        const kind_def_t *k = registry_at(i);
        if (!k->namespaced) continue;
        watch_cache_t *c = api_cache_for(s, k);
        if (!c || watch_cache_kind(c) != k) continue; /* one pass per cache */
        cache_obj_t **items;
        size_t n = watch_cache_list(c, ns, NULL, NULL, &items);
        for (size_t j = 0; j < n; j++) sweep_object(sw, k, items[j]);
        watch_cache_list_free(items, n);
    }
    if (--sw->pending == 0) sweep_finish(sw);
}

typedef struct terminating {
    char **names;
    size_t n, cap;
} terminating_t;

static void find_terminating(cache_obj_t *o, void *data)
{
    terminating_t *t = data;
    if (!strstr(o->json, "\"deletionTimestamp\"")) return; /* cheap pre-filter */
    json_t *ns = cache_obj_decode(o);
    int terminating = json_object_get(json_object_get(ns, "metadata"), "deletionTimestamp") != NULL;
    json_decref(ns);
    if (!terminating) return;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 8;
        char **nn = realloc(t->names, nc * sizeof *nn);
        if (!nn) return; /* the next tick tries again */
        t->names = nn;
        t->cap = nc;
    }
    t->names[t->n] = strdup(o->name);
    if (t->names[t->n]) t->n++;
}

static void on_sweep_timer(uv_timer_t *tm)
{
    api_server_t *s = tm->data;
    if (s->closing || !s->ready) return;
    const kind_def_t *nsk = registry_find_resource("", "v1", "namespaces");
    watch_cache_t *c = nsk ? api_cache_for(s, nsk) : NULL;
    if (!c) return;
    /* names first: sweeping writes, and a store may answer a write at once,
     * which must not change the map being walked */
    terminating_t t = {0};
    watch_cache_each(c, find_terminating, &t);
    for (size_t i = 0; i < t.n; i++) {
        sweep_namespace(s, t.names[i]);
        free(t.names[i]);
    }
    free(t.names);
}

void api_namespace_lifecycle_start(api_server_t *s)
{
    s->ns_sweeps = strmap_new();
    uv_timer_init(s->loop, &s->ns_timer);
    s->ns_timer.data = s;
    uv_timer_start(&s->ns_timer, on_sweep_timer, 1000, 1000);
}

void api_namespace_sweep_soon(api_server_t *s)
{
    if (!s->closing) uv_timer_start(&s->ns_timer, on_sweep_timer, 0, 1000);
}

void api_namespace_lifecycle_stop(api_server_t *s, uv_close_cb cb)
{
    uv_timer_stop(&s->ns_timer);
    uv_close((uv_handle_t *)&s->ns_timer, cb);
}

static void detach(const char *key, void *value, void *data)
{
    ((ns_sweep_t *)value)->srv = NULL;
}

void api_namespace_lifecycle_free(api_server_t *s)
{
    /* Rounds still in flight free themselves when their writes complete
     * (the store completes every write before it closes). */
    if (!s->ns_sweeps) return;
    strmap_each(s->ns_sweeps, detach, NULL);
    strmap_free(s->ns_sweeps, NULL);
    s->ns_sweeps = NULL;
}
