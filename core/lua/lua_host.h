/* core/lua/lua_host.h - the Lua host: runs `.lua` plugins through the same
 * loader as `.so` ones.
 *
 * A Lua plugin is a script that returns `skiff.plugin{...}` (see
 * sdk/lua/skiff.lua and docs/plugins.md). The loader hands any file whose
 * name ends in ".lua" to lua_plugin_open(), which runs the script in a Lua
 * state of its own (with a memory limit) and synthesizes a skiff_plugin_t
 * from what it declares; the hooks of that descriptor call the script's
 * functions. Controllers are written with skiff.watch; scheduler plugins
 * lend steps (lua_sched.c) and admission plugins hooks (lua_admission.c)
 * through their kind's vtable. Other C code adds modules to the script's
 * `skiff` table with lua_host_register_module(). */
#ifndef SKIFF_LUA_HOST_H
#define SKIFF_LUA_HOST_H

#include <stddef.h>

#include <lua.h>
#include <skiff/plugin.h>
#include <uv.h>

typedef struct lua_plugin lua_plugin_t;

/* 1 when name_or_path names a Lua plugin (ends in ".lua"). */
int lua_host_is_script(const char *name_or_path);

/* Runs the script at path and builds its descriptor. 0 with *desc (owned
 * by *out, valid until lua_plugin_close) and *out, or a SKIFF_E* code
 * with a message naming the file and the reason in err. */
int lua_plugin_open(const char *path, uv_loop_t *loop, const skiff_plugin_t **desc,
                    lua_plugin_t **out, char *err, size_t errlen);
/* Ties the plugin to the context the loader prepared for it (sets
 * ctx->plugin_data: the Lua host is that plugin's code). */
void lua_plugin_bind(lua_plugin_t *lp, skiff_plugin_ctx_t *ctx);
/* Stops whatever still runs and closes the Lua state. */
void lua_plugin_close(lua_plugin_t *lp);

/* Callbacks of the plugin in flight (running or waiting for an answer). */
size_t lua_plugin_busy(const lua_plugin_t *lp);
/* Why the plugin was stopped ("time limit of 1s exceeded in ..."), or NULL
 * while it is healthy. */
const char *lua_plugin_failure(const lua_plugin_t *lp);
/* Reconciles finished (for benchmarks and tests). */
uint64_t lua_plugin_reconciles(const lua_plugin_t *lp);

/* Adds skiff.NAME to every Lua plugin opened afterwards: open is called
 * with the plugin's state and must push one value (usually a table of
 * functions), as a luaopen_* function does. 0, SKIFF_EEXIST for a name
 * taken, SKIFF_EINVAL or SKIFF_ENOMEM. Call before plugins load (from the
 * thread running the loop). */
int lua_host_register_module(const char *name, lua_CFunction open);

/* The plugin a Lua state belongs to (for registered modules' functions). */
lua_plugin_t *lua_host_plugin_of(lua_State *L);
/* The plugin's context (loop, client, log), or NULL before it is bound. */
skiff_plugin_ctx_t *lua_plugin_ctx(lua_plugin_t *lp);

#endif
