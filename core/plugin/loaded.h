/* core/plugin/loaded.h - the plugins loaded in this process, by name, so
 * one plugin can find another (skiff_plugin_find in skiff/plugin.h: the
 * scheduler taking another plugin's steps, Lua calling a plugin's C
 * functions through the libffi bridge).
 *
 * plugin_load adds every plugin it loads and plugin_unload removes it;
 * whoever loaded a plugin keeps owning it. A plugin asked for by name and
 * not loaded yet is loaded here (init hook run, never started) and owned
 * by this list until plugin_loaded_unload_owned. */
#ifndef SKIFF_PLUGIN_LOADED_H
#define SKIFF_PLUGIN_LOADED_H

#include <stddef.h>

#include "plugin/loader.h"

void plugin_loaded_add(loaded_plugin_t *p);
void plugin_loaded_remove(loaded_plugin_t *p);

/* A loaded plugin whose descriptor name is `name`, or whose file is
 * "<name>.so"; NULL if none. */
loaded_plugin_t *plugin_loaded_find(const char *name);

/* plugin_loaded_find, else loads `name` from the plugin directories and
 * runs its init hook. NULL with a message in err when it cannot. */
loaded_plugin_t *plugin_loaded_require(const char *name, uv_loop_t *loop, const char *data_dir,
                                         char *err, size_t errlen);

/* Unloads the plugins plugin_loaded_require loaded (at server exit,
 * after everything that used them has stopped). */
void plugin_loaded_unload_owned(void);

#endif
