/* core/lua/lua_watch.c - skiff.watch(kind, opts, fn): a controller over
 * the server's shared informers (list + watch, a work queue with
 * de-duplication, back-off and never two reconciles of one key at once)
 * whose reconcile is the Lua function fn(obj, key); skiff.requeue(after)
 * and skiff.cached(kind, namespace, name) for reconciles.
 *
 * A kind the server does not serve yet (a CRD created after the plugin
 * started) is looked up again every second until it appears. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_int.h"

#define RESOLVE_RETRY_MS 1000

struct lua_watch {
    lua_plugin_t *p;
    int fn_ref;
    int stopped;
    char *kind_name;
    char **owns;          /* kind names */
    size_t nowns;
    const kind_def_t *k;
    const kind_def_t **owned;
    char *ns, *selector, *cname;
    int workers;
    int64_t resync_ms;
    skiff_controller_watch_t *sec;
    skiff_controller_desc_t desc;
    skiff_controller_t *c;
    uv_timer_t *retry;    /* while a kind is not served yet */
    int warned;
    lua_watch_t *next;
};

static void retry_closed(uv_handle_t *h) { free(h); }

static void watch_stop(lua_watch_t *w)
{
    if (w->stopped) return;
    w->stopped = 1;
    if (w->c) skiff_controller_free(w->c);
    w->c = NULL;
    if (w->retry) uv_close((uv_handle_t *)w->retry, retry_closed);
    w->retry = NULL;
    luaL_unref(w->p->L, LUA_REGISTRYINDEX, w->fn_ref);
    w->fn_ref = LUA_NOREF;
}

static void watch_free(lua_watch_t *w)
{
    watch_stop(w);
    for (size_t i = 0; i < w->nowns; i++) free(w->owns[i]);
    free(w->owns);
    free(w->owned);
    free(w->sec);
    free(w->kind_name);
    free(w->ns);
    free(w->selector);
    free(w->cname);
    free(w);
}

void lua_watch_stop_all(lua_plugin_t *p)
{
    /* The structs stay until the plugin closes: a stopped controller may
     * still read its descriptor while its handles close. */
    for (lua_watch_t *w = p->watches; w; w = w->next) watch_stop(w);
}

/* Called by lua_plugin_close through lua_timers_stop_all's sibling. */
static void watches_free(lua_plugin_t *p)
{
    while (p->watches) {
        lua_watch_t *w = p->watches;
        p->watches = w->next;
        watch_free(w);
    }
}

json_t *lua_watch_cached(lua_plugin_t *p, const kind_def_t *k, const char *key, int *cached)
{
    *cached = 0;
    for (lua_watch_t *w = p->watches; w; w = w->next) {
        if (w->stopped || !w->c) continue;
        if (w->k == k) {
            *cached = 1;
            return skiff_informer_get(skiff_controller_informer(w->c), key);
        }
        for (size_t i = 0; i < w->nowns; i++)
            if (w->owned[i] == k) {
                *cached = 1;
                return skiff_informer_get(skiff_controller_secondary_informer(w->c, i), key);
            }
    }
    return NULL;
}

/* ---- reconcile ----------------------------------------------------------------------- */

static void reconcile_finished(lua_task_t *t, int how, int nres, const char *msg)
{
    skiff_reconcile_t *r = t->data;
    lua_plugin_t *p = t->p;
    skiff_reconcile_result_t res = {SKIFF_RECONCILE_DONE};
    if (how == TASK_OK) {
        p->reconciles++;
        if (t->requeue) {
            res.outcome = SKIFF_RECONCILE_REQUEUE_AFTER;
            res.after_ms = t->requeue_ms;
        }
    } else if (how == TASK_ERROR) {
        p->reconciles++;
        lua_plugin_log(p, SKIFF_LOG_WARN, "%s failed (retried with back-off): %s", t->what,
                       msg ? msg : "error");
        res.outcome = SKIFF_RECONCILE_ERROR;
        res.error = SKIFF_EINVAL;
    }
    t->data = NULL;
    skiff_reconcile_done(r, res);
}

static void w_reconcile(skiff_reconcile_t *r)
{
    lua_watch_t *w = r->data;
    lua_plugin_t *p = w->p;
    lua_State *L = p->L;
    if (w->stopped || p->failed) {
        skiff_reconcile_done(r, (skiff_reconcile_result_t){SKIFF_RECONCILE_DONE});
        return;
    }
    json_t *obj = skiff_informer_get(skiff_controller_informer(w->c), r->key);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->fn_ref);
    lua_json_push(L, obj);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, r->key);
    lua_setfield(L, -2, "key");
    lua_pushstring(L, r->ns);
    lua_setfield(L, -2, "namespace");
    lua_pushstring(L, r->name);
    lua_setfield(L, -2, "name");
    char what[160];
    snprintf(what, sizeof what, "reconcile of %s %s", w->k->kind, r->key);
    lua_task_spawn(p, 2, what, reconcile_finished, r);
}

/* Resolves the kinds and starts the controller: 0, or 1 when a kind is
 * not served yet. */
static int watch_try_start(lua_watch_t *w)
{
    lua_plugin_t *p = w->p;
    w->k = lua_kind_lookup(w->kind_name);
    const char *missing = w->k ? NULL : w->kind_name;
    for (size_t i = 0; i < w->nowns && !missing; i++) {
        w->owned[i] = lua_kind_lookup(w->owns[i]);
        if (!w->owned[i]) missing = w->owns[i];
    }
    if (missing) {
        if (!w->warned)
            lua_plugin_log(p, SKIFF_LOG_INFO, "waiting for kind \"%s\" to be served", missing);
        w->warned = 1;
        return 1;
    }
    const kind_def_t *k = w->k;
    skiff_informer_opts_t io = {.namespace_ = w->ns, .label_selector = w->selector,
                                .resync_ms = (int)w->resync_ms};
    for (size_t i = 0; i < w->nowns; i++)
        w->sec[i] = (skiff_controller_watch_t){
            .resource = {w->owned[i]->group, w->owned[i]->version, w->owned[i]->resource, NULL},
            .opts = {.namespace_ = w->ns},
            .by_owner = 1};
    free(w->cname);
    if (asprintf(&w->cname, "%s/%s", p->name, k->kind) < 0) w->cname = NULL;
    w->desc = (skiff_controller_desc_t){.name = w->cname ? w->cname : p->name,
                                        .primary = {k->group, k->version, k->resource, NULL},
                                        .primary_opts = io,
                                        .primary_kind = k->kind,
                                        .primary_api_version = registry_api_version(k),
                                        .primary_cluster_scoped = !k->namespaced,
                                        .secondary = w->sec,
                                        .n_secondary = w->nowns,
                                        .reconcile = w_reconcile,
                                        .workers = w->workers,
                                        .data = w};
    int rc = skiff_controller_new(p->ctx, p->ctx->informers, &w->desc, &w->c);
    if (rc == 0) rc = skiff_controller_start(w->c);
    if (rc != 0) lua_plugin_log(p, SKIFF_LOG_ERROR, "cannot watch %s: %s", k->kind, skiff_strerror(rc));
    else if (w->warned) lua_plugin_log(p, SKIFF_LOG_INFO, "kind \"%s\" is served now", w->kind_name);
    return 0;
}

static void on_retry(uv_timer_t *t)
{
    lua_watch_t *w = t->data;
    if (w->stopped) return;
    if (watch_try_start(w) == 0) {
        uv_close((uv_handle_t *)w->retry, retry_closed);
        w->retry = NULL;
    }
}

/* skiff.watch(kind, [opts,] fn) */
static int l_watch(lua_State *L)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    const char *kind = luaL_checkstring(L, 1);
    int fn = lua_isfunction(L, 2) ? 2 : 3;
    luaL_checktype(L, fn, LUA_TFUNCTION);
    int opts = fn == 3 && lua_istable(L, 2) ? 2 : 0;
    if (!p->ctx || !p->ctx->informers)
        return luaL_error(L, "skiff.watch: this plugin has no informers (call it from start)");
    lua_watch_t *w = calloc(1, sizeof *w);
    if (!w) return luaL_error(L, "out of memory");
    w->p = p;
    w->fn_ref = LUA_NOREF;
    w->kind_name = strdup(kind);
    w->workers = 4;
    if (opts) {
        lua_getfield(L, opts, "namespace");
        if (lua_isstring(L, -1)) w->ns = strdup(lua_tostring(L, -1));
        lua_getfield(L, opts, "labelSelector");
        if (lua_isstring(L, -1)) w->selector = strdup(lua_tostring(L, -1));
        lua_getfield(L, opts, "workers");
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) w->workers = (int)lua_tointeger(L, -1);
        lua_getfield(L, opts, "resync");
        if (!lua_isnil(L, -1)) w->resync_ms = lua_duration_ms(L, -1);
        lua_pop(L, 4);
        if (w->resync_ms < 0) {
            watch_free(w);
            return luaL_error(L, "skiff.watch: resync is a duration (seconds or \"30s\")");
        }
        lua_getfield(L, opts, "owns");
        if (lua_istable(L, -1)) {
            size_t n = lua_rawlen(L, -1);
            w->owns = calloc(n + 1, sizeof *w->owns);
            w->owned = calloc(n + 1, sizeof *w->owned);
            w->sec = calloc(n + 1, sizeof *w->sec);
            for (size_t i = 0; w->owns && w->owned && w->sec && i < n; i++) {
                lua_rawgeti(L, -1, (lua_Integer)i + 1);
                const char *s = lua_tostring(L, -1);
                if (s) w->owns[w->nowns++] = strdup(s);
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    if (!w->sec) w->sec = calloc(1, sizeof *w->sec);
    if (!w->owned) w->owned = calloc(1, sizeof *w->owned);
    lua_pushvalue(L, fn);
    w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->next = p->watches;
    p->watches = w;
    if (watch_try_start(w) == 1) {
        w->retry = malloc(sizeof *w->retry);
        if (!w->retry) return luaL_error(L, "out of memory");
        uv_timer_init(p->loop, w->retry);
        w->retry->data = w;
        uv_timer_start(w->retry, on_retry, RESOLVE_RETRY_MS, RESOLVE_RETRY_MS);
    }
    return 0;
}

/* skiff.requeue([after]): reconcile this key again after `after` (seconds
 * or "10s"; default now, with back-off), even though it succeeded. */
static int l_requeue(lua_State *L)
{
    lua_task_t *t = lua_task_current(L);
    if (!t) return luaL_error(L, "skiff.requeue is for reconciles");
    int64_t ms = lua_isnoneornil(L, 1) ? 0 : lua_duration_ms(L, 1);
    if (ms < 0) return luaL_error(L, "skiff.requeue: after is a duration (seconds or \"10s\")");
    t->requeue = 1;
    t->requeue_ms = ms;
    return 0;
}

/* skiff.cached(kind, namespace, name) or (kind, "ns/name"): the object in
 * the informer cache of one of this plugin's watches (primary or owned),
 * or nil. Reads no API. */
static int l_cached(lua_State *L)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    const char *kn = luaL_checkstring(L, 1);
    const kind_def_t *k = lua_kind_lookup(kn);
    if (!k) return luaL_error(L, "skiff.cached: the server doesn't have a resource type \"%s\"", kn);
    const char *a = luaL_checkstring(L, 2);
    const char *b = luaL_optstring(L, 3, NULL);
    char key[600];
    if (b && k->namespaced) snprintf(key, sizeof key, "%s/%s", a, b);
    else snprintf(key, sizeof key, "%s", b ? b : a);
    int cached = 0;
    json_t *obj = lua_watch_cached(p, k, key, &cached);
    if (!cached)
        return luaL_error(L, "skiff.cached: no watch of this plugin caches %s (watch it or "
                             "list it in owns)", k->kind);
    lua_json_push(L, obj);
    return 1;
}

void lua_watch_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"watch", l_watch}, {"requeue", l_requeue}, {"cached", l_cached}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}

/* For lua_plugin_close (through lua_host.c). */
void lua_watch_free_all(lua_plugin_t *p) { watches_free(p); }
