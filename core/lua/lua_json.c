/* core/lua/lua_json.c - objects cross between C and Lua as tables: jansson
 * values to Lua and back, and skiff.json (encode, decode, null, array,
 * object, copy, equal, contains).
 *
 * JSON arrays and objects become tables marked with the metatables
 * skiff.json.array_mt and skiff.json.object_mt, so an empty one goes back
 * as what it was. An unmarked table is an array when its keys are exactly
 * 1..n (n > 0), an object otherwise; an unmarked empty table is an object.
 * Integers stay integers and reals stay reals in both directions; JSON
 * null is the value skiff.json.null. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua/lua_int.h"

#define MAX_DEPTH 200

static char null_key, array_key, object_key;

static void push_mt(lua_State *L, void *key)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
}

/* Creates the two metatables and the null value once per state. */
static void ensure_types(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key);
    int have = lua_istable(L, -1);
    lua_pop(L, 1);
    if (have) return;
    lua_newtable(L);
    lua_pushstring(L, "array");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_key);
    lua_newtable(L);
    lua_pushstring(L, "object");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &object_key);
}

static void push_null(lua_State *L) { lua_pushlightuserdata(L, &null_key); }
static int is_null(lua_State *L, int idx)
{
    return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == &null_key;
}

static void push_value(lua_State *L, const json_t *v, int amt, int omt)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *k;
        size_t klen;
        json_t *e;
        json_object_keylen_foreach((json_t *)v, k, klen, e)
        {
            lua_pushlstring(L, k, klen);
            push_value(L, e, amt, omt);
            lua_rawset(L, -3);
        }
        lua_pushvalue(L, omt);
        lua_setmetatable(L, -2);
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            push_value(L, json_array_get(v, i), amt, omt);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_pushvalue(L, amt);
        lua_setmetatable(L, -2);
        break;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    default: push_null(L);
    }
}

void lua_json_push(lua_State *L, const json_t *v)
{
    if (!v) {
        lua_pushnil(L);
        return;
    }
    luaL_checkstack(L, 8, "JSON value");
    ensure_types(L);
    push_mt(L, &array_key);
    push_mt(L, &object_key);
    int amt = lua_gettop(L) - 1, omt = amt + 1;
    push_value(L, v, amt, omt);
    lua_replace(L, amt);
    lua_pop(L, 1);
}

/* 1 array, 0 object, for the table at idx. */
static int table_is_array(lua_State *L, int idx)
{
    if (lua_getmetatable(L, idx)) {
        push_mt(L, &array_key);
        int arr = lua_rawequal(L, -1, -2);
        push_mt(L, &object_key);
        int obj = lua_rawequal(L, -1, -3);
        lua_pop(L, 3);
        if (arr) return 1;
        if (obj) return 0;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n == 0) return 0;
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n;
}

static json_t *to_json(lua_State *L, int idx, int depth, char *err, size_t errlen)
{
    if (depth > MAX_DEPTH) {
        snprintf(err, errlen, "value nested deeper than %d levels (a cycle?)", MAX_DEPTH);
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
        else {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d)) {
                snprintf(err, errlen, "a number that is not finite cannot be JSON");
                return NULL;
            }
            return json_real(d);
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *j = json_stringn(s, len);
        if (!j) snprintf(err, errlen, "string is not valid UTF-8");
        return j;
    }
    case LUA_TLIGHTUSERDATA:
        if (is_null(L, idx)) return json_null();
        break;
    case LUA_TTABLE: {
        luaL_checkstack(L, 4, "JSON value");
        if (table_is_array(L, idx)) {
            json_t *a = json_array();
            lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, i);
                json_t *e = to_json(L, lua_gettop(L), depth + 1, err, errlen);
                lua_pop(L, 1);
                if (!e) {
                    json_decref(a);
                    return NULL;
                }
                json_array_append_new(a, e);
            }
            return a;
        }
        json_t *o = json_object();
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                snprintf(err, errlen, "a table with keys that are not strings (%s) mixed with "
                                      "others cannot be JSON",
                         luaL_typename(L, -2));
                lua_pop(L, 2);
                json_decref(o);
                return NULL;
            }
            json_t *e = to_json(L, lua_gettop(L), depth + 1, err, errlen);
            if (!e) {
                lua_pop(L, 2);
                json_decref(o);
                return NULL;
            }
            size_t klen;
            const char *k = lua_tolstring(L, -2, &klen);
            json_object_setn_new_nocheck(o, k, klen, e);
            lua_pop(L, 1);
        }
        return o;
    }
    default: break;
    }
    snprintf(err, errlen, "a %s cannot be JSON", luaL_typename(L, idx));
    return NULL;
}

json_t *lua_json_to(lua_State *L, int idx, char *err, size_t errlen)
{
    idx = lua_absindex(L, idx);
    ensure_types(L);
    return to_json(L, idx, 0, err, errlen);
}

int lua_json_contains(const json_t *want, const json_t *have)
{
    if (!want) return 1;
    if (!have) return 0;
    if (json_is_number(want) && json_is_number(have))
        return json_number_value(want) == json_number_value(have);
    if (json_typeof(want) != json_typeof(have)) return 0;
    if (json_is_object(want)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            json_t *h = json_object_get(have, k);
            if (json_is_null(v) ? h != NULL && !json_is_null(h) : !lua_json_contains(v, h))
                return 0;
        }
        return 1;
    }
    if (json_is_array(want)) {
        if (json_array_size(want) != json_array_size(have)) return 0;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!lua_json_contains(json_array_get(want, i), json_array_get(have, i))) return 0;
        return 1;
    }
    return json_equal((json_t *)want, (json_t *)have);
}

/* The Lua value at idx against a JSON value, with lua_json_contains's
 * rules, without converting it: a drift check that finds nothing to do
 * allocates nothing. */
static int contains_lj(lua_State *L, int idx, const json_t *have, int depth)
{
    if (depth > MAX_DEPTH) return 0;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (!json_is_number(have)) return 0;
        if (lua_isinteger(L, idx) && json_is_integer(have))
            return (json_int_t)lua_tointeger(L, idx) == json_integer_value(have);
        return lua_tonumber(L, idx) == json_number_value(have);
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return json_is_string(have) && json_string_length(have) == len &&
               memcmp(json_string_value(have), s, len) == 0;
    }
    case LUA_TBOOLEAN: return json_is_boolean(have) && json_is_true(have) == lua_toboolean(L, idx);
    case LUA_TLIGHTUSERDATA: return is_null(L, idx) && (!have || json_is_null(have));
    case LUA_TTABLE: break;
    default: return 0;
    }
    luaL_checkstack(L, 4, "compare");
    if (table_is_array(L, idx)) {
        size_t n = lua_rawlen(L, idx);
        if (!json_is_array(have) || json_array_size(have) != n) return 0;
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i + 1);
            int ok = contains_lj(L, lua_gettop(L), json_array_get(have, i), depth + 1);
            lua_pop(L, 1);
            if (!ok) return 0;
        }
        return 1;
    }
    if (!json_is_object(have)) return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t klen;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
        int ok = k && contains_lj(L, lua_gettop(L), json_object_getn(have, k, klen), depth + 1);
        lua_pop(L, 1);
        if (!ok) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return 1;
}

int lua_json_contains_lua(lua_State *L, int idx, const json_t *have)
{
    if (!have) return 0;
    ensure_types(L);
    return contains_lj(L, lua_absindex(L, idx), have, 0);
}

/* ---- skiff.json ---------------------------------------------------------------------------- */

static int j_encode(lua_State *L)
{
    char err[256];
    int pretty = 0;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "pretty");
        pretty = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    json_t *j = lua_json_to(L, 1, err, sizeof err);
    if (!j) return luaL_error(L, "skiff.json.encode: %s", err);
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_SORT_KEYS | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
    json_decref(j);
    if (!s) return luaL_error(L, "skiff.json.encode: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static int j_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    json_error_t e;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON at line %d, column %d: %s", e.line, e.column, e.text);
        return 2;
    }
    lua_json_push(L, j);
    json_decref(j);
    return 1;
}

static int mark(lua_State *L, void *key)
{
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    ensure_types(L);
    push_mt(L, key);
    lua_setmetatable(L, 1);
    return 1;
}
static int j_array(lua_State *L) { return mark(L, &array_key); }
static int j_object(lua_State *L) { return mark(L, &object_key); }

static int j_is_array(lua_State *L)
{
    lua_pushboolean(L, lua_istable(L, 1) && table_is_array(L, 1));
    return 1;
}

static void copy_value(lua_State *L, int idx, int depth)
{
    if (!lua_istable(L, idx)) {
        lua_pushvalue(L, idx);
        return;
    }
    if (depth > MAX_DEPTH) luaL_error(L, "skiff.json.copy: nested deeper than %d levels", MAX_DEPTH);
    luaL_checkstack(L, 6, "copy");
    lua_newtable(L);
    int dst = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        copy_value(L, lua_gettop(L) - 1, depth + 1);
        lua_rawset(L, dst);
        lua_pop(L, 1);
    }
    if (lua_getmetatable(L, idx)) lua_setmetatable(L, dst);
}

static int j_copy(lua_State *L)
{
    luaL_checkany(L, 1);
    copy_value(L, 1, 0);
    return 1;
}

/* contains(want, have): every field of want has that value in have;
 * equal: contains both ways. */
static int lua_contains(lua_State *L, int want, int have, int depth)
{
    if (depth > MAX_DEPTH) luaL_error(L, "skiff.json: nested deeper than %d levels", MAX_DEPTH);
    int tw = lua_type(L, want), th = lua_type(L, have);
    if (tw != LUA_TTABLE || th != LUA_TTABLE) {
        if (is_null(L, want)) return th == LUA_TNIL || is_null(L, have);
        return lua_rawequal(L, want, have);
    }
    luaL_checkstack(L, 6, "compare");
    int arr = table_is_array(L, want);
    if (arr && lua_rawlen(L, want) != lua_rawlen(L, have)) return 0;
    lua_pushnil(L);
    while (lua_next(L, want)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, have);
        int ok = lua_contains(L, lua_gettop(L) - 1, lua_gettop(L), depth + 1);
        lua_pop(L, 2);
        if (!ok) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return 1;
}

static int j_contains(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushboolean(L, lua_contains(L, 1, 2, 0));
    return 1;
}

static int j_equal(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushboolean(L, lua_contains(L, 1, 2, 0) && lua_contains(L, 2, 1, 0));
    return 1;
}

void lua_json_open(lua_State *L)
{
    ensure_types(L);
    static const luaL_Reg fns[] = {{"encode", j_encode},   {"decode", j_decode},
                                   {"array", j_array},     {"object", j_object},
                                   {"is_array", j_is_array}, {"copy", j_copy},
                                   {"equal", j_equal},     {"contains", j_contains},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    push_null(L);
    lua_setfield(L, -2, "null");
    push_mt(L, &array_key);
    lua_setfield(L, -2, "array_mt");
    push_mt(L, &object_key);
    lua_setfield(L, -2, "object_mt");
    lua_setfield(L, -2, "json");
}
