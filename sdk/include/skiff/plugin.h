/* skiff/plugin.h - the plugin descriptor: the one symbol a plugin exports.
 *
 * A C plugin is a shared object exporting `const skiff_plugin_t skiff_plugin`.
 * The loader reads abi_version before anything else and refuses a plugin
 * built against another SDK ABI with a message naming both versions.
 * Everything a plugin may do goes through the skiff_plugin_ctx_t it is
 * handed; a plugin never includes core headers. */
#ifndef SKIFF_PLUGIN_H
#define SKIFF_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to a struct or vtable in sdk/include. */
#define SKIFF_ABI_VERSION 4u

/* Name of the exported descriptor symbol. */
#define SKIFF_PLUGIN_SYMBOL "skiff_plugin"

typedef enum skiff_plugin_kind {
    SKIFF_PLUGIN_STORAGE = 1,
    SKIFF_PLUGIN_CONTROLLER = 2,
    SKIFF_PLUGIN_SCHEDULER = 3,
    SKIFF_PLUGIN_ADMISSION = 4,
    SKIFF_PLUGIN_RUNTIME = 5,
    SKIFF_PLUGIN_PROXY = 6,
    SKIFF_PLUGIN_CLOUD = 7,
} skiff_plugin_kind_t;

typedef enum skiff_setting_type {
    SKIFF_SETTING_STRING = 1,
    SKIFF_SETTING_INT = 2,
    SKIFF_SETTING_BOOL = 3,
    SKIFF_SETTING_DURATION = 4, /* "10ms", "2s", "1m" */
} skiff_setting_type_t;

/* One declared setting; a descriptor's table ends with a {NULL} entry.
 * The core validates profile values against this table and prints it in
 * `skiff plugins list`; the plugin reads values with ctx->setting(). */
typedef struct skiff_setting {
    const char *name;
    skiff_setting_type_t type;
    const char *default_value;
    const char *help;
} skiff_setting_t;

enum { SKIFF_LOG_ERROR = 0, SKIFF_LOG_WARN = 1, SKIFF_LOG_INFO = 2, SKIFF_LOG_DEBUG = 3 };

struct skiff_client;           /* skiff/client.h */
struct skiff_informer_factory; /* skiff/controller.h */

/* Handed to every hook. The core owns it; plugin_data is the plugin's. */
typedef struct skiff_plugin_ctx {
    uv_loop_t *loop;           /* the server's event loop; hooks must not block it */
    const char *name;          /* the plugin's name as loaded */
    const char *data_dir;      /* the server's data directory */
    struct skiff_client *client; /* API client (in-process in the server); may be NULL for storage */
    /* Shared informers (skiff/controller.h): controllers and the scheduler
     * asking for the same resource share one list and one watch. NULL for
     * storage plugins. */
    struct skiff_informer_factory *informers;
    /* Identity for Events and Leases ("skiff-controller-manager"), or NULL. */
    const char *component;
    void *plugin_data;         /* free for the plugin */
    /* Value of a declared setting (profile value or its default); NULL if undeclared. */
    const char *(*setting)(struct skiff_plugin_ctx *ctx, const char *name);
    /* printf-style log line tagged with the plugin's name. */
    void (*log)(struct skiff_plugin_ctx *ctx, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    void *core_private;        /* the core's; do not touch */
} skiff_plugin_ctx_t;

typedef struct skiff_plugin {
    uint32_t abi_version;      /* always SKIFF_ABI_VERSION */
    const char *name;
    const char *version;
    skiff_plugin_kind_t kind;
    const char *description;
    const skiff_setting_t *settings; /* NULL-terminated table, or NULL */
    int (*init)(skiff_plugin_ctx_t *ctx);  /* optional; 0 or SKIFF_E* */
    /* optional. Controllers and schedulers are started when their server
     * becomes the leader and stopped when it stops leading (or shuts
     * down); start may then run again after a stop. stop must release
     * everything start made (closing handles is enough: the loop runs on). */
    int (*start)(skiff_plugin_ctx_t *ctx);
    void (*stop)(skiff_plugin_ctx_t *ctx); /* optional */
    const void *vtable;        /* kind-specific: skiff_store_vtable_t for storage,
                                * skiff_admission_vtable_t for admission */
} skiff_plugin_t;

/* Another plugin's descriptor, by its name (or its file's, "<name>.so"):
 * how a plugin reaches what another one lends, such as the scheduler
 * taking a step plugin's steps (skiff/scheduler.h). A plugin not loaded
 * yet is loaded now from the plugin directories, with its init hook run
 * (not start: a plugin loaded this way gets no client nor informers), and
 * stays loaded until the server exits. NULL when it cannot be found or
 * loaded; err (may be NULL) then says why. Call it from the loop's thread. */
const skiff_plugin_t *skiff_plugin_find(skiff_plugin_ctx_t *ctx, const char *name, char *err,
                                        size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
