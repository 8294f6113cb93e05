/* core/lua/lua_ffi.h - the skiff.ffi module of Lua plugins (lua_ffi.c). */
#ifndef SKIFF_LUA_FFI_H
#define SKIFF_LUA_FFI_H

#include <lua.h>

/* Pushes the skiff.ffi table (call, load, exports), as a luaopen_* does. */
int lua_ffi_open(lua_State *L);
/* Sets field "ffi" of the table on the top of L's stack (the skiff table
 * the Lua host builds for every plugin). */
void lua_ffi_install(lua_State *L);

#endif
