/* tests/bench/step_bench_lua.c - the Lua half of step_bench: loads the
 * worked example plugins/examples/weight-score (a Lua score step calling
 * node-weight's C label_weight through skiff.ffi), its plain Lua twin
 * tests/bench/weight_score_plain.lua and tests/bench/weight_score_scalar.lua
 * (the label's string, not the labels table, crossing into C) through the
 * real plugin loader and
 * Lua host, and times raw calls inside a Lua plugin's state. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/lua_int.h"
#include "plugin/loader.h"
#include "step_bench_lua.h"

/* CPU time of this thread: the figures hold on a busy machine, where
 * wall time would count the time other processes ran. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifndef STEP_BENCH_SRC_DIR
#define STEP_BENCH_SRC_DIR "."
#endif

typedef struct priv {
    loaded_plugin_t *ffi_plugin, *plain_plugin, *scalar_plugin, *calls_plugin;
} priv_t;

static loaded_plugin_t *load_lua(const char *rel, uv_loop_t *loop, char *err, size_t errlen)
{
    char path[1200];
    const char *src = getenv("SKIFF_SRC_DIR");
    snprintf(path, sizeof path, "%s/%s", src && *src ? src : STEP_BENCH_SRC_DIR, rel);
    loaded_plugin_t *p = plugin_load(path, loop, NULL, err, errlen);
    if (!p) return NULL;
    /* long timing loops run inside the plugin's state: no time limit */
    if (plugin_set_setting(p, "time-limit", "600s", err, errlen) != 0 ||
        plugin_start(p, err, errlen) != 0) {
        plugin_unload(p);
        return NULL;
    }
    return p;
}

static loaded_plugin_t *load_step(const char *rel, uv_loop_t *loop,
                                  const skiff_sched_step_t **step, char *err, size_t errlen)
{
    loaded_plugin_t *p = load_lua(rel, loop, err, errlen);
    if (!p) return NULL;
    const skiff_sched_step_table_t *t = p->desc->vtable;
    if (!t || t->n_steps < 1) {
        snprintf(err, errlen, "%s lends no step", rel);
        plugin_unload(p);
        return NULL;
    }
    *step = &t->steps[0];
    return p;
}

int step_bench_lua_open(step_bench_lua_t *b, uv_loop_t *loop, char *err, size_t errlen)
{
    priv_t *pv = calloc(1, sizeof *pv);
    if (!pv) return -1;
    b->priv = pv;
    pv->calls_plugin = load_lua("tests/bench/ffi_calls.lua", loop, err, errlen);
    if (!pv->calls_plugin) return -1;
    b->L = ((lua_plugin_t *)pv->calls_plugin->handle)->L;
    pv->ffi_plugin = load_step("plugins/examples/weight-score/weight_score.lua", loop,
                               &b->ffi_step, err, errlen);
    if (!pv->ffi_plugin) return -1;
    pv->plain_plugin = load_step("tests/bench/weight_score_plain.lua", loop, &b->lua_step, err,
                                 errlen);
    if (!pv->plain_plugin) return -1;
    pv->scalar_plugin = load_step("tests/bench/weight_score_scalar.lua", loop, &b->scalar_step,
                                  err, errlen);
    return pv->scalar_plugin ? 0 : -1;
}

/* Runs `kind` n times inside the plugin's state; nanoseconds. */
static const char *const timing_chunk =
    "local nw = skiff.ffi.load('node-weight')\n"
    "local call = skiff.ffi.call\n"
    "local labels = { ['skiff.dev/weight'] = '42', zone = 'a', ['kubernetes.io/hostname'] = 'n' }\n"
    "local function plain(v) return tonumber(v) end\n"
    "return function(kind, n)\n"
    "  if kind == 'empty' then for i = 1, n do end\n"
    "  elseif kind == 'plain' then for i = 1, n do plain('42') end\n"
    "  elseif kind == 'module' then local f = nw.parse_weight for i = 1, n do f('42') end\n"
    "  elseif kind == 'call' then for i = 1, n do call('node-weight', 'parse_weight', '42') end\n"
    "  elseif kind == 'module-json' then local f = nw.label_weight\n"
    "    for i = 1, n do f(labels, 'skiff.dev/weight') end\n"
    "  end\n"
    "end\n";

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void step_bench_lua_calls(step_bench_lua_t *b, long calls, int runs)
{
    lua_State *L = b->L;
    if (luaL_loadstring(L, timing_chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        printf("# raw calls: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    int fn = lua_gettop(L);
    const char *kinds[] = {"empty", "plain", "module", "call", "module-json"};
    double per[5] = {0};
    uint64_t *t = calloc((size_t)runs, sizeof *t);
    for (size_t k = 0; t && k < 5; k++) {
        for (int r = 0; r < runs; r++) {
            lua_pushvalue(L, fn);
            lua_pushstring(L, kinds[k]);
            lua_pushinteger(L, calls);
            uint64_t t0 = cpu_ns();
            if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
                printf("# raw calls (%s): %s\n", kinds[k], lua_tostring(L, -1));
                lua_pop(L, 1);
            }
            t[r] = cpu_ns() - t0;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_u64);
        per[k] = (double)t[runs / 2] / (double)calls;
    }
    free(t);
    lua_settop(L, fn - 1);
    printf("# raw calls from Lua, %ld calls a run, median of %d runs, the empty loop "
           "(%.1f ns a turn) subtracted\n", calls, runs, per[0]);
    printf("call=plain_lua_function      ns=%.1f  (tonumber(v) in a Lua function)\n",
           per[1] - per[0]);
    printf("call=ffi_module_function     ns=%.1f  (nw.parse_weight(v): string -> int64)\n",
           per[2] - per[0]);
    printf("call=skiff.ffi.call          ns=%.1f  (skiff.ffi.call('node-weight', 'parse_weight', v))\n",
           per[3] - per[0]);
    printf("call=ffi_module_json_arg     ns=%.1f  (nw.label_weight(labels, key): a 3-label table "
           "to JSON each call)\n", per[4] - per[0]);
}

void step_bench_lua_close(step_bench_lua_t *b)
{
    priv_t *pv = b->priv;
    if (!pv) return;
    if (pv->ffi_plugin) plugin_unload(pv->ffi_plugin);
    if (pv->plain_plugin) plugin_unload(pv->plain_plugin);
    if (pv->scalar_plugin) plugin_unload(pv->scalar_plugin);
    if (pv->calls_plugin) plugin_unload(pv->calls_plugin);
    free(pv);
    b->priv = NULL;
}
