/* tests/bench/step_bench_lua.c - the Lua half of step_bench. Until the Lua
 * host is built into the core, only the C step can be measured. */
#include <stdio.h>

#include "step_bench_lua.h"

int step_bench_lua_open(step_bench_lua_t *b, uv_loop_t *loop, char *err, size_t errlen)
{
    snprintf(err, errlen, "this build has no Lua host");
    return -1;
}

void step_bench_lua_calls(step_bench_lua_t *b, long calls, int runs) {}
void step_bench_lua_close(step_bench_lua_t *b) {}
