/* core/lua/lua_kinds.c - Lua admission plugins: not written yet (the
 * admission interface is not in the SDK yet); such a script is refused at
 * load with a message saying so. Scheduler steps are in lua_sched.c. */
#include <stdio.h>

#include "lua/lua_int.h"

int lua_admission_build(lua_plugin_t *p, int idx, char *err, size_t errlen)
{
    (void)idx;
    snprintf(err, errlen, "%s: Lua admission plugins are not supported yet", p->path);
    return -1;
}

void lua_admission_free(lua_plugin_t *p) { (void)p; }
