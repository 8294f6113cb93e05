/* core/lua/lua_admission.c - a Lua admission plugin, wrapped into the
 * skiff_admission_vtable_t of skiff/admission.h so the API server's
 * admission chain runs it like a C one:
 *
 *   return skiff.plugin{ name = "owner-label", kind = "admission",
 *     kinds = {"Deployment"}, operations = {"CREATE", "UPDATE"},
 *     mutate = function(req) req.object.metadata.labels.x = "y" end,
 *     validate = function(req) return false, "what to fix", 422 end }
 *
 * Hooks run synchronously on the loop, under the plugin's time limit; they
 * read other objects from the server's cache with skiff.lookup and
 * skiff.lookup_list and add warnings with skiff.warn. A hook returning
 * nothing (or true) allows; false, message [, code] denies (403 unless
 * code says 422, 400, 404, 409 or 429). In mutate, changes to req.object
 * are what gets stored. A hook that raises an error, or a plugin stopped
 * by a limit, denies the request when the plugin's failure-policy is
 * Fail (the default, as for Kubernetes webhooks) and lets it through with
 * Ignore. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/admission.h>

#include "lua/lua_int.h"

typedef struct ladm {
    skiff_admission_vtable_t vt;
    int mutate_ref, validate_ref;
    char **kinds, **ops; /* NULL-terminated filters, or NULL: all */
    skiff_admission_request_t *cur; /* the request a hook is running for */
} ladm_t;

static int in_list(char **list, const char *s)
{
    if (!list) return 1;
    for (; *list; list++)
        if (s && !strcmp(*list, s)) return 1;
    return 0;
}

static void push_req(lua_State *L, const skiff_admission_request_t *r)
{
    lua_createtable(L, 0, 14);
    lua_pushstring(L, skiff_admission_operation_name(r->operation));
    lua_setfield(L, -2, "operation");
    const char *strs[][2] = {{"group", r->group},         {"version", r->version},
                             {"kind", r->kind},           {"resource", r->resource},
                             {"subresource", r->subresource}, {"namespace", r->ns},
                             {"name", r->name},           {"user", r->user}};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        lua_pushstring(L, strs[i][1] ? strs[i][1] : "");
        lua_setfield(L, -2, strs[i][0]);
    }
    lua_newtable(L);
    for (int i = 0; r->groups && r->groups[i]; i++) {
        lua_pushstring(L, r->groups[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "groups");
    lua_pushboolean(L, r->dry_run);
    lua_setfield(L, -2, "dryRun");
    lua_json_push(L, r->object);
    lua_setfield(L, -2, "object");
    lua_json_push(L, r->old_object);
    lua_setfield(L, -2, "oldObject");
    lua_json_push(L, r->options);
    lua_setfield(L, -2, "options");
}

/* Makes dst equal to src changing only what differs: the write path holds
 * pointers into the request's object (its name, its metadata), which a
 * wholesale replacement would free. */
static void update_in_place(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(dst, tmp, k, v)
        if (!json_object_get(src, k)) json_object_del(dst, k);
    json_object_foreach(src, k, v) {
        json_t *d = json_object_get(dst, k);
        if (json_is_object(d) && json_is_object(v)) update_in_place(d, v);
        else if (!d || !json_equal(d, v)) json_object_set(dst, k, v);
    }
}

static int fail_closed(lua_plugin_t *p)
{
    const char *pol = p->ctx ? p->ctx->setting(p->ctx, "failure-policy") : NULL;
    return !pol || strcmp(pol, "Ignore") != 0;
}

/* Runs one hook; the chain's answer. */
static int run_hook(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req, int mutate)
{
    lua_plugin_t *p = ctx->plugin_data;
    ladm_t *a = p->admission;
    int ref = mutate ? a->mutate_ref : a->validate_ref;
    if (ref == LUA_NOREF || !in_list(a->kinds, req->kind) ||
        !in_list(a->ops, skiff_admission_operation_name(req->operation)))
        return SKIFF_ADMISSION_ALLOW;
    if (p->failed) {
        if (!fail_closed(p)) return SKIFF_ADMISSION_ALLOW;
        return skiff_admission_deny(req, 403, "the Lua plugin %s is stopped (%s)", p->name,
                                    p->failure);
    }
    lua_State *L = p->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    push_req(L, req);
    lua_pushvalue(L, -1);
    lua_insert(L, top + 1); /* a copy of req stays below the call, for mutate */
    a->cur = req;
    p->slice_start = lua_slice_clock();
    int rc = lua_pcall(L, 1, 3, 0);
    p->slice_start = 0;
    a->cur = NULL;
    int answer = SKIFF_ADMISSION_ALLOW;
    const char *hook = mutate ? "mutate" : "validate";
    if (rc != LUA_OK) {
        const char *msg = p->over_memory ? "memory limit exceeded" : lua_tostring(L, -1);
        lua_plugin_log(p, SKIFF_LOG_WARN, "%s of %s %s/%s failed: %s", hook, req->kind, req->ns,
                       req->name, msg ? msg : "?");
        if (fail_closed(p))
            answer = skiff_admission_deny(req, 403, "the Lua plugin %s failed: %s", p->name,
                                          msg ? msg : "error");
        if (p->over_time || p->over_memory) {
            if (p->over_time)
                lua_plugin_fail(p, "time limit of %llums per callback exceeded in %s",
                                (unsigned long long)(p->time_limit_ns / 1000000u), hook);
            else
                lua_plugin_fail(p, "memory limit of %zu MiB exceeded in %s", p->mem_limit >> 20,
                                hook);
        }
        lua_settop(L, top);
        return answer;
    }
    int req_idx = top + 1, first = top + 2;
    if (lua_type(L, first) == LUA_TBOOLEAN && !lua_toboolean(L, first)) {
        const char *msg = lua_tostring(L, first + 1);
        int code = lua_isinteger(L, first + 2) ? (int)lua_tointeger(L, first + 2) : 403;
        answer = skiff_admission_deny(req, code, "%s", msg ? msg : "denied");
    } else if (mutate && req->object) {
        lua_getfield(L, req_idx, "object");
        char err[256];
        json_t *obj = lua_istable(L, -1) ? lua_json_to(L, -1, err, sizeof err) : NULL;
        if (!obj || !json_is_object(obj)) {
            answer = skiff_admission_deny(req, 403, "the Lua plugin %s made req.object something "
                                                    "that is not an object%s%s",
                                          p->name, obj ? "" : ": ", obj ? "" : err);
        } else if (!json_equal(obj, req->object)) {
            update_in_place(req->object, obj);
        }
        json_decref(obj);
    }
    lua_settop(L, top);
    return answer;
}

static int l_mutate(skiff_plugin_ctx_t *ctx, skiff_admission_request_t *req)
{
    return run_hook(ctx, req, 1);
}

static int l_validate(skiff_plugin_ctx_t *ctx, const skiff_admission_request_t *req)
{
    /* validate hooks may not change the object: run_hook only reads it */
    return run_hook(ctx, (skiff_admission_request_t *)req, 0);
}

/* ---- skiff.warn, skiff.lookup, skiff.lookup_list (inside a hook) ---- */

static skiff_admission_request_t *current(lua_State *L, const char *fn)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    ladm_t *a = p->admission;
    if (!a || !a->cur) luaL_error(L, "%s is for admission hooks", fn);
    return a->cur;
}

static int l_warn(lua_State *L)
{
    skiff_admission_request_t *req = current(L, "skiff.warn");
    skiff_admission_warn(req, "%s", luaL_checkstring(L, 1));
    return 0;
}

static const kind_def_t *kind_arg(lua_State *L, int idx, char *av, size_t len)
{
    const char *name = luaL_checkstring(L, idx);
    const kind_def_t *k = lua_kind_lookup(name);
    if (!k) luaL_error(L, "the server doesn't have a resource type \"%s\"", name);
    snprintf(av, len, "%s", registry_api_version(k));
    return k;
}

/* skiff.lookup(kind, namespace, name): the object from the server's cache */
static int l_lookup(lua_State *L)
{
    skiff_admission_request_t *req = current(L, "skiff.lookup");
    char av[200];
    const kind_def_t *k = kind_arg(L, 1, av, sizeof av);
    const char *ns = k->namespaced ? luaL_optstring(L, 2, "") : NULL;
    const char *name = luaL_checkstring(L, 3);
    json_t *obj = skiff_admission_get(req, av, k->resource, ns, name);
    lua_json_push(L, obj);
    json_decref(obj);
    return 1;
}

/* skiff.lookup_list(kind [, namespace]) */
static int l_lookup_list(lua_State *L)
{
    skiff_admission_request_t *req = current(L, "skiff.lookup_list");
    char av[200];
    const kind_def_t *k = kind_arg(L, 1, av, sizeof av);
    const char *ns = k->namespaced ? luaL_optstring(L, 2, NULL) : NULL;
    json_t *items = skiff_admission_list(req, av, k->resource, ns);
    if (items) lua_json_push(L, items);
    else lua_newtable(L);
    json_decref(items);
    return 1;
}

static char **string_list(lua_State *L, int idx, const char *field, char *err, size_t errlen,
                          const char *path)
{
    lua_getfield(L, idx, field);
    char **list = NULL;
    if (lua_istable(L, -1)) {
        size_t n = lua_rawlen(L, -1);
        list = calloc(n + 1, sizeof *list);
        for (size_t i = 0; list && i < n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            const char *s = lua_tostring(L, -1);
            list[i] = strdup(s ? s : "");
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        snprintf(err, errlen, "%s: %s must be a list of names", path, field);
    }
    lua_pop(L, 1);
    return list;
}

static void free_list(char **l)
{
    for (size_t i = 0; l && l[i]; i++) free(l[i]);
    free(l);
}

void lua_admission_free(lua_plugin_t *p)
{
    ladm_t *a = p->admission;
    if (!a) return;
    free_list(a->kinds);
    free_list(a->ops);
    free(a);
    p->admission = NULL;
}

int lua_admission_build(lua_plugin_t *p, int idx, char *err, size_t errlen)
{
    lua_State *L = p->L;
    ladm_t *a = calloc(1, sizeof *a);
    if (!a) return -1;
    p->admission = a;
    a->mutate_ref = a->validate_ref = LUA_NOREF;
    lua_getfield(L, idx, "mutate");
    if (lua_isfunction(L, -1)) a->mutate_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else lua_pop(L, 1);
    lua_getfield(L, idx, "validate");
    if (lua_isfunction(L, -1)) a->validate_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else lua_pop(L, 1);
    if (a->mutate_ref == LUA_NOREF && a->validate_ref == LUA_NOREF) {
        snprintf(err, errlen, "%s: an admission plugin has a mutate or a validate function",
                 p->path);
        return -1;
    }
    err[0] = '\0';
    a->kinds = string_list(L, idx, "kinds", err, errlen, p->path);
    if (!err[0]) a->ops = string_list(L, idx, "operations", err, errlen, p->path);
    if (err[0]) return -1;
    if (lua_plugin_add_setting(p, "failure-policy", SKIFF_SETTING_STRING, "Fail",
                               "Fail: a hook that errs or a stopped plugin denies the request; "
                               "Ignore: lets it through") != 0)
        return -1;
    a->vt = (skiff_admission_vtable_t){l_mutate, l_validate};
    p->desc.vtable = &a->vt;
    /* the functions only hooks may call */
    lua_getglobal(L, "skiff");
    static const luaL_Reg fns[] = {{"warn", l_warn},
                                   {"lookup", l_lookup},
                                   {"lookup_list", l_lookup_list},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
    return 0;
}
