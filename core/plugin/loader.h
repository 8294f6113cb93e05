/* core/plugin/loader.h - loads plugins (dlopen) and checks their descriptor.
 *
 * The loader finds a plugin by name in the plugin directories (--plugin-dir,
 * the install prefix, the build tree), reads its descriptor's ABI version
 * before anything else, and refuses a mismatch with a message naming both
 * versions. It prepares the skiff_plugin_ctx_t each plugin is handed. */
#ifndef SKIFF_PLUGIN_LOADER_H
#define SKIFF_PLUGIN_LOADER_H

#include <skiff/plugin.h>

typedef struct loaded_plugin {
    char *name;              /* descriptor name */
    char *path;              /* file it came from */
    void *handle;            /* dlopen handle */
    const skiff_plugin_t *desc;
    skiff_plugin_ctx_t ctx;
    char **settings;         /* name, value pairs given by the profile, NULL-terminated */
    int state;               /* PLUGIN_LOADED, PLUGIN_STARTED, PLUGIN_FAILED */
} loaded_plugin_t;

enum { PLUGIN_LOADED = 1, PLUGIN_STARTED = 2, PLUGIN_FAILED = 3, PLUGIN_STOPPED = 4 };

/* Add a directory to search (searched in the order added). */
void plugin_loader_add_dir(const char *dir);
void plugin_loader_reset_dirs(void);
/* The i-th directory added, or NULL past the last. */
const char *plugin_loader_dir(size_t i);

/* Load `name_or_path` (a name like "storage-sqlite" looked up as
 * "<dir>/storage-sqlite.so", or a path containing '/'). On failure returns
 * NULL and writes a message for the user into err, e.g.
 * "plugin storage-sqlite (/x/storage-sqlite.so) was built for SDK ABI 2,
 *  this skiff speaks ABI 1; rebuild it against this SDK". */
loaded_plugin_t *plugin_load(const char *name_or_path, uv_loop_t *loop, const char *data_dir,
                             char *err, size_t errlen);
/* Settings from a profile: pairs of name, value; the plugin reads them
 * through ctx->setting (declared defaults apply to the rest). 0 or
 * SKIFF_EINVAL with a message naming an undeclared setting. */
int plugin_set_setting(loaded_plugin_t *p, const char *name, const char *value, char *err,
                       size_t errlen);
/* Runs the descriptor's init then start hooks (either may be absent) once
 * settings are in place. 0, or the hook's SKIFF_E* code with a message
 * naming the plugin and the failing hook; the plugin is then PLUGIN_FAILED. */
int plugin_start(loaded_plugin_t *p, char *err, size_t errlen);
/* Calls the stop hook of a started plugin; it is PLUGIN_STOPPED, and a
 * later plugin_start runs only its start hook (init ran once). */
void plugin_stop(loaded_plugin_t *p);
/* Calls stop (if started), dlclose, frees. */
void plugin_unload(loaded_plugin_t *p);

#endif
