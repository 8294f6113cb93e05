/* tests/bench/step_bench_lua.h - the Lua half of step_bench: the Lua score
 * steps (plain Lua, and Lua calling C through skiff.ffi) and the raw call
 * timings. */
#ifndef STEP_BENCH_LUA_H
#define STEP_BENCH_LUA_H

#include <stddef.h>

#include <skiff/scheduler.h>
#include <uv.h>

typedef struct step_bench_lua {
    void *L;                             /* a lua_State once open */
    const skiff_sched_step_t *lua_step;  /* NULL when unavailable */
    const skiff_sched_step_t *ffi_step;
    void *priv;
} step_bench_lua_t;

/* 0, or -1 with err saying why the Lua steps are unavailable. */
int step_bench_lua_open(step_bench_lua_t *b, uv_loop_t *loop, char *err, size_t errlen);
/* Prints the raw cost of skiff.ffi.call, a loaded module's call and a
 * plain Lua call (median of runs, `calls` calls each). */
void step_bench_lua_calls(step_bench_lua_t *b, long calls, int runs);
void step_bench_lua_close(step_bench_lua_t *b);

#endif
