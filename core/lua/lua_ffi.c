/* core/lua/lua_ffi.c - skiff.ffi: Lua calls the C functions plugins export
 * (skiff/ffi.h) through the libffi bridge (core/plugin/ffi_bridge.c).
 *
 *   skiff.ffi.call(plugin, fn, args...)   one call by name
 *   local m = skiff.ffi.load(plugin)       the plugin's functions:
 *   m.fn(args...)                          m.fn is a plain Lua function
 *   skiff.ffi.exports(plugin)              { fn = "int64(json labels, ...)", ... }
 *
 * Only the conversion between Lua values and the bridge's tagged values
 * lives here; the checks against the declaration are the bridge's. A bad
 * call raises a Lua error with the bridge's message. */
#include <stdio.h>
#include <string.h>

#include "lua/lua_ffi.h"
#include "lua/lua_int.h"
#include "plugin/ffi_bridge.h"

static ffib_module_t *module_of(lua_State *L, const char *plugin, char *err, size_t errlen)
{
    skiff_plugin_ctx_t *ctx = lua_plugin_ctx(lua_host_plugin_of(L));
    return ffib_module_get(plugin, ctx ? ctx->loop : NULL, ctx ? ctx->data_dir : NULL, err,
                           errlen);
}

/* Calls f with the Lua values at first..top; pushes the result (nothing
 * for void) and returns how many, or raises. */
static int call_fn(lua_State *L, const ffib_fn_t *f, int first)
{
    int top = lua_gettop(L);
    size_t n = top >= first ? (size_t)(top - first + 1) : 0;
    ffib_value_t args[FFIB_MAX_ARGS + 1];
    json_t *owned[FFIB_MAX_ARGS + 1];
    size_t nowned = 0;
    char err[512] = "";
    int rc = 0;
    if (n > FFIB_MAX_ARGS) n = FFIB_MAX_ARGS + 1; /* the bridge refuses the count */
    for (size_t i = 0; i < n && i < FFIB_MAX_ARGS; i++) {
        int idx = first + (int)i;
        ffib_value_t *v = &args[i];
        memset(v, 0, sizeof *v);
        int t = lua_type(L, idx);
        /* a json argument takes any Lua value a JSON value can be */
        if (i < ffib_fn_nargs(f) && ffib_fn_arg(f, i) == FFIB_JSON && t != LUA_TNIL) {
            char why[256] = "";
            json_t *j = lua_json_to(L, idx, why, sizeof why);
            if (!j) {
                snprintf(err, sizeof err, "%s.%s: argument %zu is not a JSON value: %s",
                         ffib_fn_plugin(f), ffib_fn_name(f), i + 1, why);
                rc = -1;
                break;
            }
            owned[nowned++] = j;
            v->kind = FFIB_V_JSON;
            v->u.j = j;
            continue;
        }
        switch (t) {
        case LUA_TNIL: v->kind = FFIB_V_NIL; break;
        case LUA_TBOOLEAN:
            v->kind = FFIB_V_BOOL;
            v->u.b = lua_toboolean(L, idx);
            break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx)) {
                v->kind = FFIB_V_INT;
                v->u.i = (int64_t)lua_tointeger(L, idx);
            } else {
                v->kind = FFIB_V_NUMBER;
                v->u.d = (double)lua_tonumber(L, idx);
            }
            break;
        case LUA_TSTRING:
            v->kind = FFIB_V_STRING;
            v->u.s.p = lua_tolstring(L, idx, &v->u.s.len);
            break;
        default:
            v->kind = FFIB_V_OTHER;
            v->u.other = luaL_typename(L, idx);
            break;
        }
    }
    ffib_value_t ret = {0};
    if (rc == 0) rc = ffib_call(f, args, n, &ret, err, sizeof err);
    for (size_t i = 0; i < nowned; i++) json_decref(owned[i]);
    if (rc != 0) return luaL_error(L, "%s", err);
    int nret = 1;
    switch (ret.kind) {
    case FFIB_V_NIL:
        if (ffib_fn_result(f) == FFIB_VOID) nret = 0;
        else lua_pushnil(L);
        break;
    case FFIB_V_BOOL: lua_pushboolean(L, ret.u.b); break;
    case FFIB_V_INT: lua_pushinteger(L, (lua_Integer)ret.u.i); break;
    case FFIB_V_NUMBER: lua_pushnumber(L, (lua_Number)ret.u.d); break;
    case FFIB_V_STRING: lua_pushlstring(L, ret.u.s.p, ret.u.s.len); break;
    case FFIB_V_JSON: lua_json_push(L, ret.u.j); break;
    case FFIB_V_OTHER: lua_pushnil(L); break;
    }
    ffib_result_free(&ret);
    return nret;
}

/* skiff.ffi.call(plugin, fn, ...) */
static int l_call(lua_State *L)
{
    const char *plugin = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    char err[1024] = "";
    ffib_module_t *m = module_of(L, plugin, err, sizeof err);
    const ffib_fn_t *f = m ? ffib_module_fn(m, name, err, sizeof err) : NULL;
    if (!f) return luaL_error(L, "skiff.ffi.call: %s", err);
    return call_fn(L, f, 3);
}

static int l_bound(lua_State *L)
{
    const ffib_fn_t *f = lua_touserdata(L, lua_upvalueindex(1));
    return call_fn(L, f, 1);
}

/* m.nope: an error naming what the plugin exports, rather than a call of nil */
static int l_missing(lua_State *L)
{
    const char *plugin = lua_tostring(L, lua_upvalueindex(1));
    char err[1024] = "";
    ffib_module_t *m = module_of(L, plugin ? plugin : "", err, sizeof err);
    if (m) ffib_module_fn(m, luaL_tolstring(L, 2, NULL), err, sizeof err);
    return luaL_error(L, "%s", err);
}

/* skiff.ffi.load(plugin) */
static int l_load(lua_State *L)
{
    const char *plugin = luaL_checkstring(L, 1);
    char err[1024] = "";
    ffib_module_t *m = module_of(L, plugin, err, sizeof err);
    if (!m) return luaL_error(L, "skiff.ffi.load: %s", err);
    size_t n = ffib_module_count(m);
    lua_createtable(L, 0, (int)n + 1);
    for (size_t i = 0; i < n; i++) {
        const ffib_fn_t *f = ffib_module_at(m, i);
        lua_pushlightuserdata(L, (void *)f);
        lua_pushcclosure(L, l_bound, 1);
        lua_setfield(L, -2, ffib_fn_name(f));
    }
    lua_createtable(L, 0, 1);
    lua_pushstring(L, ffib_module_plugin(m));
    lua_pushcclosure(L, l_missing, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    return 1;
}

/* skiff.ffi.exports(plugin) */
static int l_exports(lua_State *L)
{
    const char *plugin = luaL_checkstring(L, 1);
    char err[1024] = "";
    ffib_module_t *m = module_of(L, plugin, err, sizeof err);
    if (!m) return luaL_error(L, "skiff.ffi.exports: %s", err);
    size_t n = ffib_module_count(m);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const ffib_fn_t *f = ffib_module_at(m, i);
        lua_pushstring(L, ffib_fn_signature(f));
        lua_setfield(L, -2, ffib_fn_name(f));
    }
    return 1;
}

int lua_ffi_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"call", l_call},
        {"load", l_load},
        {"exports", l_exports},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}

void lua_ffi_install(lua_State *L)
{
    lua_ffi_open(L);
    lua_setfield(L, -2, "ffi");
}
