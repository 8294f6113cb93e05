/* core/plugin/sources.h - which plugins load besides the built-in ones a
 * server names itself (--store, --controllers, --scheduler): the plugins
 * named by --plugins (a profile's list) and every plugin file found in a
 * --plugin-dir folder.
 *
 * Each file is loaded (dlopen, descriptor and ABI checks), recorded in the
 * plugin registry with its origin and state, and kept for the host of its
 * kind, which takes it with plugin_sources_take: the controller host takes
 * controllers and schedulers, the admission chain takes admission plugins.
 * A plugin that fails to load is recorded as failed with the reason and
 * logged; it never stops the server. Lua files (*.lua) load the same
 * way: the loader hands them to the Lua host (core/lua). */
#ifndef SKIFF_PLUGIN_SOURCES_H
#define SKIFF_PLUGIN_SOURCES_H

#include <stddef.h>
#include <uv.h>

#include "plugin/loader.h"

typedef struct plugin_sources plugin_sources_t;

typedef struct plugin_sources_opts {
    uv_loop_t *loop;
    const char *data_dir;
    const char *names;        /* "a,b,/path/c.so": --plugins; NULL: none */
    const char *const *dirs;  /* folders whose plugins all load (--plugin-dir) */
    size_t ndirs;
    /* Offline listing (`skiff plugins list --plugin-dir`): load each file to
     * check it, record it as would-load (or failed), unload it; also list
     * the built-in plugins as available. */
    int dry_run;
} plugin_sources_opts_t;

/* Loads what o names. Returns 0 (failures are recorded, not returned) or
 * -1 when out of memory. */
int plugin_sources_load(const plugin_sources_opts_t *o, plugin_sources_t **out);

/* Hands over the loaded plugins of a kind (SKIFF_PLUGIN_*): a new array
 * (the caller frees it) of plugins the caller now owns (plugin_unload),
 * its length in *n. NULL with *n = 0 when there are none. */
loaded_plugin_t **plugin_sources_take(plugin_sources_t *s, int kind, size_t *n);

/* Marks the plugins no host took (kinds without a host in this server yet:
 * runtime, proxy, cloud) as loaded with a reason saying so. */
void plugin_sources_settle(plugin_sources_t *s);

/* Unloads the plugins still held. */
void plugin_sources_free(plugin_sources_t *s);

/* Splits "a:b" values of a repeatable --plugin-dir into folders, appended
 * to dirs (up to max); returns the new count. The strings point into buf
 * (a copy the caller frees). */
size_t plugin_sources_split_dirs(const char *value, char **buf, const char **dirs, size_t n,
                                 size_t max);


#endif
