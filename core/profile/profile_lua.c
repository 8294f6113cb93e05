/* core/profile/profile_lua.c - evaluates a Lua profile in a sandbox and
 * turns the table it returns into the JSON shape of a JSON profile.
 *
 * The state is the profile's alone and closed before this returns. It has
 * the base library without dofile/loadfile/load/require, string, table,
 * math and utf8, and an `os` holding only getenv, time, clock and date:
 * no files, no processes, no code from elsewhere. Memory and the number
 * of instructions are bounded, so a profile that loops is an error, not a
 * server that never starts. This file must not depend on the Lua plugin
 * host: a profile is data computed by a short script. */
#include "profile/profile.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define LUA_PROFILE_MAX_MEMORY (16u * 1024u * 1024u)
#define LUA_PROFILE_MAX_COUNT 10000000 /* instructions */
#define LUA_PROFILE_HOOK_EVERY 10000
#define LUA_PROFILE_MAX_DEPTH 32

typedef struct sandbox {
    size_t used;
    long steps;
} sandbox_t;

static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sandbox_t *sb = ud;
    if (!ptr) osize = 0;
    if (nsize == 0) {
        sb->used -= osize;
        free(ptr);
        return NULL;
    }
    if (nsize > osize && sb->used + (nsize - osize) > LUA_PROFILE_MAX_MEMORY) return NULL;
    void *n = realloc(ptr, nsize);
    if (n) sb->used = sb->used - osize + nsize;
    return n;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    sandbox_t *sb;
    lua_getallocf(L, (void **)&sb);
    sb->steps += LUA_PROFILE_HOOK_EVERY;
    if (sb->steps > LUA_PROFILE_MAX_COUNT)
        luaL_error(L, "the profile runs too long (more than %d instructions)",
                   LUA_PROFILE_MAX_COUNT);
}

static void open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_OSLIBNAME, luaopen_os},
        {NULL, NULL},
    };
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    static const char *const unsafe[] = {"dofile", "loadfile", "load", "require",
                                         "collectgarbage", "print", NULL};
    for (const char *const *u = unsafe; *u; u++) {
        lua_pushnil(L);
        lua_setglobal(L, *u);
    }
    /* os: only what reads the clock and the environment */
    lua_getglobal(L, "os");
    lua_newtable(L);
    static const char *const keep[] = {"getenv", "time", "clock", "date", NULL};
    for (const char *const *k = keep; *k; k++) {
        lua_getfield(L, -2, *k);
        lua_setfield(L, -2, *k);
    }
    lua_setglobal(L, "os");
    lua_pop(L, 1);
    /* string.dump hands out bytecode; nothing a profile needs */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
}

static json_t *to_json(lua_State *L, int idx, const char *path, int depth, char *err,
                       size_t errlen);

/* A table whose keys are exactly 1..n is a list; any other is an object
 * with string keys. */
static json_t *table_to_json(lua_State *L, int idx, const char *path, int depth, char *err,
                             size_t errlen)
{
    if (depth > LUA_PROFILE_MAX_DEPTH) {
        snprintf(err, errlen, "%s: tables nested deeper than %d", path, LUA_PROFILE_MAX_DEPTH);
        return NULL;
    }
    idx = lua_absindex(L, idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    int strings = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        if (lua_type(L, -2) == LUA_TSTRING) strings++;
        lua_pop(L, 1);
    }
    int is_list = count > 0 && count == n && strings == 0;
    json_t *out = is_list ? json_array() : json_object();
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (is_list) {
        for (lua_Integer i = 1; i <= n; i++) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s[%lld]", path, (long long)i);
            lua_rawgeti(L, idx, i);
            json_t *v = to_json(L, -1, sub, depth + 1, err, errlen);
            lua_pop(L, 1);
            if (!v) goto fail;
            json_array_append_new(out, v);
        }
        return out;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            snprintf(err, errlen, "%s: a table mixes a list with named keys, or has a key "
                     "that is not a string", *path ? path : "the returned table");
            lua_pop(L, 2);
            goto fail;
        }
        const char *k = lua_tostring(L, -2);
        char sub[512];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
        json_t *v = to_json(L, -1, sub, depth + 1, err, errlen);
        lua_pop(L, 1);
        if (!v) {
            lua_pop(L, 1);
            goto fail;
        }
        json_object_set_new(out, k, v);
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static json_t *to_json(lua_State *L, int idx, const char *path, int depth, char *err,
                       size_t errlen)
{
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *v = json_stringn(s, len);
        if (!v) snprintf(err, errlen, "%s: not valid UTF-8 text", path);
        return v;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
        return json_real(lua_tonumber(L, idx));
    case LUA_TTABLE: return table_to_json(L, idx, path, depth, err, errlen);
    default:
        snprintf(err, errlen, "%s: a %s cannot be a setting (strings, numbers, booleans and "
                 "tables only)", *path ? path : "the returned value",
                 lua_typename(L, lua_type(L, idx)));
        return NULL;
    }
}

json_t *profile_lua_eval(const char *origin, const char *text, size_t len, char *err,
                         size_t errlen)
{
    sandbox_t sb = {0};
    lua_State *L = lua_newstate(sandbox_alloc, &sb);
    if (!L) {
        snprintf(err, errlen, "%s: cannot create a Lua state", origin);
        return NULL;
    }
    json_t *out = NULL;
    char chunk[1100];
    /* "@file" makes Lua's messages read "file:LINE: ..." */
    snprintf(chunk, sizeof chunk, "@%s", origin);
    open_sandbox(L);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, LUA_PROFILE_HOOK_EVERY);
    /* text only: precompiled chunks could break the sandbox */
    if (luaL_loadbufferx(L, text, len, chunk, "t") != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (!m) m = "the profile failed (its error is not a string)";
        /* Lua's message names file and line, except for limits hit in a hook */
        if (strncmp(m, origin, strlen(origin)) == 0) snprintf(err, errlen, "%s", m);
        else snprintf(err, errlen, "%s: %s", origin, m);
        goto done;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: the profile must return a table (return { ... }), it "
                 "returned %s", origin, luaL_typename(L, -1));
        goto done;
    }
    char sub[768];
    out = table_to_json(L, -1, "", 0, sub, sizeof sub);
    if (!out) snprintf(err, errlen, "%s: %s", origin, sub);
done:
    lua_close(L);
    return out;
}
