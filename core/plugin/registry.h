/* core/plugin/registry.h - the server's table of plugins: every plugin it
 * tried to load, with its kind, version, origin and state, for
 * `skiff plugins list` (GET /skiff/v1/plugins).
 *
 * A record is a copy of what the user needs to read: it stays valid after
 * the plugin is unloaded or when loading failed before any descriptor was
 * read. Hosts note state changes (started, standby, failed with a reason).
 * It does not load or start anything. One table per process: `skiff
 * server` clears it when it stops. */
#ifndef SKIFF_PLUGIN_REGISTRY_H
#define SKIFF_PLUGIN_REGISTRY_H

#include <jansson.h>

#include "plugin/loader.h"

typedef enum plugin_rec_state {
    PLUGIN_REC_LOADED = 1,  /* loaded, waiting for its host */
    PLUGIN_REC_STARTED = 2, /* init and start ran */
    PLUGIN_REC_STANDBY = 3, /* loaded; another server leads its group */
    PLUGIN_REC_STOPPED = 4,
    PLUGIN_REC_FAILED = 5,  /* reason says why */
    PLUGIN_REC_AVAILABLE = 6, /* offline listing: loads when named */
    PLUGIN_REC_WOULD_LOAD = 7, /* offline listing: loads at start (a --plugin-dir) */
} plugin_rec_state_t;

/* Where a plugin came from. */
typedef enum plugin_origin {
    PLUGIN_ORIGIN_BUILTIN = 1, /* shipped with skiff: the install prefix or build tree */
    PLUGIN_ORIGIN_DIR = 2,     /* a --plugin-dir folder */
    PLUGIN_ORIGIN_FILE = 3,    /* named by path */
} plugin_origin_t;

/* Adds a record for a plugin p loaded from path (p NULL: loading failed,
 * name is then the file's name without ".so"). Returns 0 or -1 (memory). */
int plugin_registry_add(const char *name, const char *path, const loaded_plugin_t *p,
                        plugin_origin_t origin, plugin_rec_state_t state, const char *reason);
/* Adds a started module compiled into skiff (a built-in admission plugin),
 * which has no file nor descriptor. */
int plugin_registry_add_builtin(const char *name, int kind, const char *reason);
/* Notes a new state of the loaded plugin p (reason NULL: none). */
void plugin_registry_note(const loaded_plugin_t *p, plugin_rec_state_t state, const char *reason);
/* The plugin p is about to be unloaded: its record stays, notes stop. */
void plugin_registry_forget(const loaded_plugin_t *p);
/* 1 when a plugin of this descriptor name is recorded and not failed, and its
 * path into path (may be NULL). */
int plugin_registry_has(const char *name, const char **path);
/* The origin of a file: BUILTIN under the prefix's or build tree's plugin
 * folder, DIR under a --plugin-dir folder (plugin_loader_add_dir), else FILE. */
plugin_origin_t plugin_registry_origin_of(const char *path);
/* The table as a new JSON document (the caller json_decref()s it):
 *   {"kind": "PluginList", "apiVersion": "skiff/v1", "items": [
 *     {"name", "kind", "version", "origin", "path", "state", "reason",
 *      "settings": [{"name", "type", "default", "help"}]}]}
 * (reason and path absent when there is none; settings absent when no
 * descriptor could be read) */
json_t *plugin_registry_json(void);
/* Forgets every record. */
void plugin_registry_clear(void);

/* "controller", "scheduler", ... for a descriptor kind. */
const char *plugin_kind_name(int kind);
const char *plugin_rec_state_name(plugin_rec_state_t s);
const char *plugin_origin_name(plugin_origin_t o);

#endif
