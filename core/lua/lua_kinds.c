/* core/lua/lua_kinds.c - Lua plugins of the kinds other than controllers:
 * scheduler steps and admission. Not written yet: such a script is
 * refused at load with a message saying so. */
#include <stdio.h>

#include "lua/lua_int.h"

int lua_sched_build(lua_plugin_t *p, int idx, char *err, size_t errlen)
{
    (void)idx;
    snprintf(err, errlen, "%s: Lua scheduler steps are not supported yet", p->path);
    return -1;
}

void lua_sched_free(lua_plugin_t *p) { (void)p; }

int lua_admission_build(lua_plugin_t *p, int idx, char *err, size_t errlen)
{
    (void)idx;
    snprintf(err, errlen, "%s: Lua admission plugins are not supported yet", p->path);
    return -1;
}

void lua_admission_free(lua_plugin_t *p) { (void)p; }
