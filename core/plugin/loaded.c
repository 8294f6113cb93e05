/* core/plugin/loaded.c - the list of loaded plugins and the lookup by
 * name behind skiff_plugin_find. It loads a plugin only when one is asked
 * for by name and not loaded yet; it never starts one (starting belongs to
 * whoever runs plugins of that kind). */
#define _GNU_SOURCE
#include "plugin/loaded.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>
#include <skiff/plugin.h>

#include "plugin/ffi_bridge.h"

typedef struct entry {
    loaded_plugin_t *p;
    int owned; /* loaded by plugin_loaded_require */
    struct entry *next;
} entry_t;

static entry_t *entries;

void plugin_loaded_add(loaded_plugin_t *p)
{
    entry_t *e = calloc(1, sizeof *e);
    if (!e) return;
    e->p = p;
    e->next = entries;
    entries = e;
}

void plugin_loaded_remove(loaded_plugin_t *p)
{
    /* the bridge holds pointers into the plugin's code: drop them first */
    ffib_forget(p);
    for (entry_t **e = &entries; *e; e = &(*e)->next) {
        if ((*e)->p != p) continue;
        entry_t *dead = *e;
        *e = dead->next;
        free(dead);
        return;
    }
}

static int file_is(const char *path, const char *name)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(name);
    /* "name" for name.so; a script is named with its extension (x.lua) */
    return strncmp(base, name, n) == 0 && (strcmp(base + n, ".so") == 0 || !base[n]);
}

loaded_plugin_t *plugin_loaded_find(const char *name)
{
    if (!name) return NULL;
    for (entry_t *e = entries; e; e = e->next)
        if (strcmp(e->p->name, name) == 0) return e->p;
    for (entry_t *e = entries; e; e = e->next)
        if (e->p->path && file_is(e->p->path, name)) return e->p;
    return NULL;
}

loaded_plugin_t *plugin_loaded_require(const char *name, uv_loop_t *loop, const char *data_dir,
                                         char *err, size_t errlen)
{
    loaded_plugin_t *p = plugin_loaded_find(name);
    if (p) {
        if (p->state == PLUGIN_FAILED) {
            snprintf(err, errlen, "plugin %s (%s) failed to start and cannot be used", p->name,
                     p->path);
            return NULL;
        }
        return p;
    }
    p = plugin_load(name, loop, data_dir, err, errlen);
    if (!p) return NULL;
    int rc = p->desc->init ? p->desc->init(&p->ctx) : 0;
    if (rc != 0) {
        snprintf(err, errlen, "plugin %s (%s): init failed: %s (%d)", p->name, p->path,
                 skiff_strerror(rc), rc);
        plugin_unload(p);
        return NULL;
    }
    for (entry_t *e = entries; e; e = e->next)
        if (e->p == p) e->owned = 1;
    return p;
}

void plugin_loaded_unload_owned(void)
{
    for (;;) {
        entry_t *e = entries;
        while (e && !e->owned) e = e->next;
        if (!e) return;
        plugin_unload(e->p); /* removes e */
    }
}

const skiff_plugin_t *skiff_plugin_find(skiff_plugin_ctx_t *ctx, const char *name, char *err,
                                        size_t errlen)
{
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!name || !*name) {
        snprintf(err, errlen, "no plugin name given");
        return NULL;
    }
    loaded_plugin_t *p = plugin_loaded_require(name, ctx ? ctx->loop : NULL,
                                                 ctx ? ctx->data_dir : NULL, err, errlen);
    return p ? p->desc : NULL;
}
