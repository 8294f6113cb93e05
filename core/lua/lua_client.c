/* core/lua/lua_client.c - skiff.get, list, create, update, patch, apply
 * and delete on the plugin's API client (ctx->client).
 *
 * Each call sends its request and yields the calling coroutine; the
 * answer resumes it, so a callback reads like blocking code while the loop
 * runs on. Success returns the object (delete: true); failure returns
 * nil and an error table {code, reason, message} taken from the server's
 * Status (code 0 when no answer came). skiff.apply is client-side: it
 * creates the object, or merge-patches it when a field it names differs
 * from the current object (read from the plugin's informer cache when it
 * watches that kind, else with a GET). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

#include "lua/lua_int.h"

/* ---- kinds ------------------------------------------------------------------------ */

const kind_def_t *lua_kind_lookup(const char *name)
{
    if (!name || !*name) return NULL;
    const char *slash = strrchr(name, '/');
    if (!slash) return registry_find_name(name);
    /* "apps/v1/Deployment" or "v1/ConfigMap" */
    char api[256];
    size_t n = (size_t)(slash - name);
    if (n >= sizeof api) return NULL;
    memcpy(api, name, n);
    api[n] = '\0';
    const char *kind = slash + 1;
    char *gs = strchr(api, '/');
    if (!gs) return registry_find_kind("", api, kind);
    *gs = '\0';
    return registry_find_kind(api, gs + 1, kind);
}

const kind_def_t *lua_kind_of_object(const json_t *obj)
{
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (!av || !kind) return NULL;
    char buf[300];
    snprintf(buf, sizeof buf, "%s/%s", av, kind);
    return lua_kind_lookup(buf);
}

int lua_push_error(lua_State *L, int code, const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushnil(L);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    return 2;
}

/* The error values for an answer that is not a success. */
static int push_status_error(lua_State *L, int status, json_t *obj)
{
    const char *reason = json_string_value(json_object_get(obj, "reason"));
    const char *msg = json_string_value(json_object_get(obj, "message"));
    if (status == 0)
        return lua_push_error(L, 0, "ServiceUnavailable", "%s",
                              msg ? msg : "no answer from the API server");
    return lua_push_error(L, status, reason ? reason : "Unknown", "%s",
                          msg ? msg : "the API server refused the request");
}

static const char *kind_arg(lua_State *L, int idx, const kind_def_t **k)
{
    const char *name = luaL_checkstring(L, idx);
    *k = lua_kind_lookup(name);
    return name;
}

static skiff_resource_t resource_of(const kind_def_t *k, const char *sub)
{
    return (skiff_resource_t){k->group, k->version, k->resource, sub};
}

static skiff_client_t *client_of(lua_State *L, lua_plugin_t **pp)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    *pp = p;
    if (!p->ctx || !p->ctx->client) luaL_error(L, "this plugin has no API client");
    return p->ctx->client;
}

/* ---- one request in flight --------------------------------------------------------- */

enum { OP_OBJECT, OP_LIST, OP_DELETE, OP_APPLY_GET, OP_APPLY_CREATE, OP_APPLY_PATCH };

typedef struct op {
    lua_task_t *t;
    int type;
    /* apply */
    const kind_def_t *k;
    json_t *want;
    char *ns, *name;
    int tries;
} op_t;

static void op_free(op_t *op)
{
    json_decref(op->want);
    free(op->ns);
    free(op->name);
    free(op);
}

static int apply_step(op_t *op, json_t *current, int have_current);

static void op_done(void *data, int status, json_t *obj)
{
    op_t *op = data;
    lua_task_t *t = op->t;
    if (!lua_task_answer(t)) {
        op_free(op);
        return;
    }
    lua_State *co = t->co;
    int ok = status >= 200 && status < 300, n = 1;
    switch (op->type) {
    case OP_OBJECT:
        if (ok) lua_json_push(co, obj);
        else n = push_status_error(co, status, obj);
        break;
    case OP_LIST:
        if (ok) {
            lua_json_push(co, json_object_get(obj, "items"));
            lua_json_push(co, json_object_get(obj, "metadata"));
            n = 2;
        } else n = push_status_error(co, status, obj);
        break;
    case OP_DELETE:
        if (ok) lua_pushboolean(co, 1);
        else n = push_status_error(co, status, obj);
        break;
    case OP_APPLY_GET:
        if (ok || status == 404) {
            int before = lua_gettop(co);
            if (apply_step(op, ok ? obj : NULL, 1) == 0) return; /* another request went out */
            n = lua_gettop(co) - before;
            break;
        }
        n = push_status_error(co, status, obj);
        break;
    case OP_APPLY_CREATE:
    case OP_APPLY_PATCH:
        /* a stale cache: created meanwhile, or deleted meanwhile */
        if ((status == 409 && op->type == OP_APPLY_CREATE) ||
            (status == 404 && op->type == OP_APPLY_PATCH)) {
            if (op->tries++ < 2) {
                op->type = OP_APPLY_GET;
                skiff_resource_t r = resource_of(op->k, NULL);
                t->waiting = 1;
                if (skiff_client_get(t->p->ctx->client, &r, op->ns, op->name, op_done, op) == 0)
                    return;
                t->waiting = 0;
            }
        }
        if (ok) {
            lua_pushstring(co, op->type == OP_APPLY_CREATE ? "created" : "configured");
            lua_json_push(co, obj);
            n = 2;
        } else n = push_status_error(co, status, obj);
        break;
    }
    op_free(op);
    lua_task_resume(t, n);
}

static op_t *op_new(lua_task_t *t, int type)
{
    op_t *op = calloc(1, sizeof *op);
    if (op) {
        op->t = t;
        op->type = type;
    }
    return op;
}

/* After a call was sent (rc 0) the coroutine yields; a refused call
 * returns its error at once. */
static int sent(lua_State *L, lua_task_t *t, op_t *op, int rc)
{
    if (rc != 0) {
        op_free(op);
        return lua_push_error(L, 0, "InternalError", "the request was refused: %s",
                              skiff_strerror(rc));
    }
    t->waiting = 1;
    return lua_yield(L, 0);
}

/* namespace and name from (ns, name), (key "ns/name") or (name) */
static void ns_name_args(lua_State *L, int idx, const kind_def_t *k, char *ns, size_t nslen,
                         char *name, size_t namelen)
{
    const char *a = luaL_optstring(L, idx, NULL);
    const char *b = luaL_optstring(L, idx + 1, NULL);
    ns[0] = name[0] = '\0';
    if (b) {
        snprintf(ns, nslen, "%s", a ? a : "");
        snprintf(name, namelen, "%s", b);
    } else if (a) {
        const char *slash = strchr(a, '/');
        if (slash && k->namespaced) {
            snprintf(ns, nslen, "%.*s", (int)(slash - a), a);
            snprintf(name, namelen, "%s", slash + 1);
        } else snprintf(name, namelen, "%s", a);
    }
    if (!name[0]) luaL_error(L, "no name given");
    if (k->namespaced && !ns[0]) snprintf(ns, nslen, "default");
    if (!k->namespaced) ns[0] = '\0';
}

static int unknown_kind(lua_State *L, const char *name)
{
    return lua_push_error(L, 404, "NotFound", "the server doesn't have a resource type \"%s\"",
                          name);
}

/* skiff.get(kind, namespace, name) or skiff.get(kind, "ns/name") */
static int l_get(lua_State *L)
{
    lua_task_t *t = lua_need_task(L, "skiff.get");
    const kind_def_t *k;
    const char *kn = kind_arg(L, 1, &k);
    if (!k) return unknown_kind(L, kn);
    char ns[256], name[256];
    ns_name_args(L, 2, k, ns, sizeof ns, name, sizeof name);
    lua_plugin_t *p;
    skiff_client_t *c = client_of(L, &p);
    op_t *op = op_new(t, OP_OBJECT);
    if (!op) return luaL_error(L, "out of memory");
    skiff_resource_t r = resource_of(k, NULL);
    return sent(L, t, op, skiff_client_get(c, &r, ns, name, op_done, op));
}

static const char *opt_field(lua_State *L, int idx, const char *field)
{
    if (!lua_istable(L, idx)) return NULL;
    lua_getfield(L, idx, field);
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the string stays anchored in the table */
    return s;
}

/* skiff.list(kind, {namespace=, labelSelector=, fieldSelector=, limit=})
 * -> items, listmeta */
static int l_list(lua_State *L)
{
    lua_task_t *t = lua_need_task(L, "skiff.list");
    const kind_def_t *k;
    const char *kn = kind_arg(L, 1, &k);
    if (!k) return unknown_kind(L, kn);
    skiff_list_opts_t lo = {0};
    lo.label_selector = opt_field(L, 2, "labelSelector");
    lo.field_selector = opt_field(L, 2, "fieldSelector");
    const char *ns = k->namespaced ? opt_field(L, 2, "namespace") : NULL;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "limit");
        lo.limit = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_plugin_t *p;
    skiff_client_t *c = client_of(L, &p);
    op_t *op = op_new(t, OP_LIST);
    if (!op) return luaL_error(L, "out of memory");
    skiff_resource_t r = resource_of(k, NULL);
    return sent(L, t, op, skiff_client_list(c, &r, ns, &lo, op_done, op));
}

/* The object argument as JSON with its kind and namespace. */
static json_t *object_arg(lua_State *L, int idx, const kind_def_t **k, const char **ns,
                          const char *fn)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    char err[256];
    json_t *obj = lua_json_to(L, idx, err, sizeof err);
    if (!obj) luaL_error(L, "%s: %s", fn, err);
    *k = lua_kind_of_object(obj);
    json_t *meta = json_object_get(obj, "metadata");
    *ns = json_string_value(json_object_get(meta, "namespace"));
    if (*k && !(*k)->namespaced) *ns = NULL;
    else if (*k && (!*ns || !**ns)) {
        json_object_set_new(meta ? meta : (json_object_set_new(obj, "metadata", json_object()),
                                           json_object_get(obj, "metadata")),
                            "namespace", json_string("default"));
        *ns = "default";
    }
    return obj;
}

static skiff_write_opts_t write_opts(lua_State *L, int idx, lua_plugin_t *p, const char **sub)
{
    skiff_write_opts_t wo = {.field_manager = p->name, .grace_period_seconds = -1};
    *sub = opt_field(L, idx, "subresource");
    wo.propagation_policy = opt_field(L, idx, "propagationPolicy");
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "dryRun");
        wo.dry_run = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, idx, "gracePeriodSeconds");
        if (lua_isinteger(L, -1)) wo.grace_period_seconds = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return wo;
}

static int write_object(lua_State *L, int update)
{
    const char *fn = update ? "skiff.update" : "skiff.create";
    lua_task_t *t = lua_need_task(L, fn);
    const kind_def_t *k;
    const char *ns;
    json_t *obj = object_arg(L, 1, &k, &ns, fn);
    if (!k) {
        const char *av = json_string_value(json_object_get(obj, "apiVersion"));
        const char *kind = json_string_value(json_object_get(obj, "kind"));
        int n = lua_push_error(L, 404, "NotFound",
                               "no kind \"%s\" is served in \"%s\"", kind ? kind : "",
                               av ? av : "");
        json_decref(obj);
        return n;
    }
    lua_plugin_t *p;
    skiff_client_t *c = client_of(L, &p);
    const char *sub;
    skiff_write_opts_t wo = write_opts(L, 2, p, &sub);
    op_t *op = op_new(t, OP_OBJECT);
    if (!op) {
        json_decref(obj);
        return luaL_error(L, "out of memory");
    }
    skiff_resource_t r = resource_of(k, sub);
    int rc = update ? skiff_client_update(c, &r, ns, obj, &wo, op_done, op)
                    : skiff_client_create(c, &r, ns, obj, &wo, op_done, op);
    json_decref(obj);
    return sent(L, t, op, rc);
}

static int l_create(lua_State *L) { return write_object(L, 0); }
static int l_update(lua_State *L) { return write_object(L, 1); }

/* skiff.patch(kind, namespace, name, patch [, {type=, subresource=}]):
 * patch is a table or a JSON string; type "merge" (default), "json" or
 * "strategic". */
static int l_patch(lua_State *L)
{
    lua_task_t *t = lua_need_task(L, "skiff.patch");
    const kind_def_t *k;
    const char *kn = kind_arg(L, 1, &k);
    if (!k) return unknown_kind(L, kn);
    char ns[256], name[256];
    ns_name_args(L, 2, k, ns, sizeof ns, name, sizeof name);
    const char *type = opt_field(L, 5, "type");
    skiff_patch_type_t pt = SKIFF_PATCH_MERGE;
    if (type && !strcmp(type, "json")) pt = SKIFF_PATCH_JSON;
    else if (type && !strcmp(type, "strategic")) pt = SKIFF_PATCH_STRATEGIC;
    else if (type && strcmp(type, "merge") != 0)
        return luaL_error(L, "skiff.patch: type \"%s\"; use merge, json or strategic", type);
    char *body = NULL;
    if (lua_type(L, 4) == LUA_TSTRING) body = strdup(lua_tostring(L, 4));
    else {
        luaL_checktype(L, 4, LUA_TTABLE);
        char err[256];
        json_t *j = lua_json_to(L, 4, err, sizeof err);
        if (!j) return luaL_error(L, "skiff.patch: %s", err);
        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    if (!body) return luaL_error(L, "out of memory");
    lua_plugin_t *p;
    skiff_client_t *c = client_of(L, &p);
    const char *sub;
    skiff_write_opts_t wo = write_opts(L, 5, p, &sub);
    op_t *op = op_new(t, OP_OBJECT);
    if (!op) {
        free(body);
        return luaL_error(L, "out of memory");
    }
    skiff_resource_t r = resource_of(k, sub);
    int rc = skiff_client_patch(c, &r, ns, name, pt, body, &wo, op_done, op);
    free(body);
    return sent(L, t, op, rc);
}

/* skiff.delete(kind, namespace, name [, {propagationPolicy=,
 * gracePeriodSeconds=}]) -> true */
static int l_delete(lua_State *L)
{
    lua_task_t *t = lua_need_task(L, "skiff.delete");
    const kind_def_t *k;
    const char *kn = kind_arg(L, 1, &k);
    if (!k) return unknown_kind(L, kn);
    char ns[256], name[256];
    ns_name_args(L, 2, k, ns, sizeof ns, name, sizeof name);
    lua_plugin_t *p;
    skiff_client_t *c = client_of(L, &p);
    const char *sub;
    skiff_write_opts_t wo = write_opts(L, 4, p, &sub);
    op_t *op = op_new(t, OP_DELETE);
    if (!op) return luaL_error(L, "out of memory");
    skiff_resource_t r = resource_of(k, NULL);
    return sent(L, t, op, skiff_client_delete(c, &r, ns, name, &wo, op_done, op));
}

/* Decides what apply does with the current object (NULL: none). 0 when a
 * request went out; 1 when the results are pushed on the task's stack. */
static int apply_step(op_t *op, json_t *current, int have_current)
{
    lua_task_t *t = op->t;
    lua_State *co = t->co;
    skiff_client_t *c = t->p->ctx->client;
    skiff_resource_t r = resource_of(op->k, NULL);
    skiff_write_opts_t wo = {.field_manager = t->p->name, .grace_period_seconds = -1};
    int rc;
    if (!current) {
        op->type = OP_APPLY_CREATE;
        rc = skiff_client_create(c, &r, op->ns, op->want, &wo, op_done, op);
    } else if (lua_json_contains(op->want, current)) {
        lua_pushstring(co, "unchanged");
        return 1;
    } else {
        op->type = OP_APPLY_PATCH;
        json_t *patch = skiff_json_copy(op->want);
        json_t *meta = json_object_get(patch, "metadata");
        /* the current resourceVersion would turn the patch into a
         * compare-and-swap; apply means "make it so" */
        json_object_del(meta, "resourceVersion");
        char *body = json_dumps(patch, JSON_COMPACT);
        json_decref(patch);
        rc = body ? skiff_client_patch(c, &r, op->ns, op->name, SKIFF_PATCH_MERGE, body, &wo,
                                       op_done, op)
                  : SKIFF_ENOMEM;
        free(body);
    }
    (void)have_current;
    if (rc == 0) {
        t->waiting = 1;
        return 0;
    }
    lua_push_error(co, 0, "InternalError", "the request was refused: %s", skiff_strerror(rc));
    return 1;
}

/* skiff.apply(obj) -> "created"|"configured", obj  or "unchanged" */
/* The fast path of apply: when the plugin caches the kind and the cached
 * object already holds every field obj names, "unchanged" without
 * converting obj. 1 when it answered. */
static int apply_unchanged(lua_State *L)
{
    if (!lua_istable(L, 1)) return 0;
    lua_getfield(L, 1, "apiVersion");
    lua_getfield(L, 1, "kind");
    lua_getfield(L, 1, "metadata");
    const char *av = lua_tostring(L, -3), *kind = lua_tostring(L, -2);
    const char *name = NULL, *ns = NULL;
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "name");
        lua_getfield(L, -2, "namespace");
        name = lua_tostring(L, -2);
        ns = lua_tostring(L, -1);
        lua_pop(L, 2); /* the strings stay anchored in metadata */
    }
    int done = 0;
    if (av && kind && name) {
        char buf[300];
        snprintf(buf, sizeof buf, "%s/%s", av, kind);
        const kind_def_t *k = lua_kind_lookup(buf);
        if (k) {
            char key[600];
            if (k->namespaced)
                snprintf(key, sizeof key, "%s/%s", ns && *ns ? ns : "default", name);
            else snprintf(key, sizeof key, "%s", name);
            int cached = 0;
            json_t *cur = lua_watch_cached(lua_host_plugin_of(L), k, key, &cached);
            done = cached && cur && lua_json_contains_lua(L, 1, cur);
        }
    }
    lua_pop(L, 3);
    if (done) lua_pushstring(L, "unchanged");
    return done;
}

static int l_apply(lua_State *L)
{
    lua_task_t *t = lua_need_task(L, "skiff.apply");
    if (apply_unchanged(L)) return 1;
    const kind_def_t *k;
    const char *ns;
    json_t *obj = object_arg(L, 1, &k, &ns, "skiff.apply");
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (!k || !name || !*name) {
        int n = !k ? lua_push_error(L, 404, "NotFound", "no kind \"%s\" is served in \"%s\"",
                                    json_string_value(json_object_get(obj, "kind")) ?: "",
                                    json_string_value(json_object_get(obj, "apiVersion")) ?: "")
                   : lua_push_error(L, 422, "Invalid", "skiff.apply: metadata.name is required");
        json_decref(obj);
        return n;
    }
    lua_plugin_t *p;
    skiff_client_t *c = client_of(L, &p);
    op_t *op = op_new(t, OP_APPLY_GET);
    if (!op) {
        json_decref(obj);
        return luaL_error(L, "out of memory");
    }
    op->k = k;
    op->want = obj;
    op->ns = strdup(ns ? ns : "");
    op->name = strdup(name);
    char key[600];
    snprintf(key, sizeof key, "%s%s%s", ns && *ns ? ns : "", ns && *ns ? "/" : "", name);
    int cached = 0;
    json_t *cur = lua_watch_cached(p, k, key, &cached);
    if (cached) {
        int before = lua_gettop(L);
        /* apply_step pushes on the task's stack: L is that coroutine */
        if (apply_step(op, cur, 1) == 0) return lua_yield(L, 0);
        op_free(op);
        return lua_gettop(L) - before;
    }
    skiff_resource_t r = resource_of(k, NULL);
    return sent(L, t, op, skiff_client_get(c, &r, op->ns, op->name, op_done, op));
}

void lua_client_open(lua_State *L)
{
    static const luaL_Reg fns[] = {{"get", l_get},       {"list", l_list},
                                   {"create", l_create}, {"update", l_update},
                                   {"patch", l_patch},   {"delete", l_delete},
                                   {"apply", l_apply},   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
