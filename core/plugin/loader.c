/* core/plugin/loader.c - finds plugin shared objects, checks their descriptor
 * (ABI version first) and prepares the context each plugin is handed.
 *
 * It does not decide which plugins load (profiles do) nor what a plugin of a
 * given kind is used for (the store and controller code do). */
#define _GNU_SOURCE
#include "plugin/loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <skiff/errors.h>

#include "lua/lua_host.h"
#include "plugin/loaded.h"
#include "util/log.h"

/* The public struct plus what only the loader needs. */
typedef struct loader_plugin {
    loaded_plugin_t pub;
    char *data_dir;
    size_t nsettings; /* pairs stored in pub.settings */
    int is_lua;       /* handle is a lua_plugin_t (core/lua), not a dlopen handle */
} loader_plugin_t;

static char **search_dirs;
static size_t search_ndirs;

void plugin_loader_add_dir(const char *dir)
{
    if (dir == NULL || dir[0] == '\0') return;
    char **n = realloc(search_dirs, (search_ndirs + 1) * sizeof *n);
    if (n == NULL) return;
    search_dirs = n;
    char *copy = strdup(dir);
    if (copy == NULL) return;
    search_dirs[search_ndirs++] = copy;
}

void plugin_loader_reset_dirs(void)
{
    for (size_t i = 0; i < search_ndirs; i++) free(search_dirs[i]);
    free(search_dirs);
    search_dirs = NULL;
    search_ndirs = 0;
}

const char *plugin_loader_dir(size_t i)
{
    return i < search_ndirs ? search_dirs[i] : NULL;
}

static const skiff_setting_t *find_declared(const skiff_plugin_t *desc, const char *name)
{
    if (desc->settings == NULL || name == NULL) return NULL;
    for (const skiff_setting_t *s = desc->settings; s->name != NULL; s++)
        if (strcmp(s->name, name) == 0) return s;
    return NULL;
}

static const char *ctx_setting(skiff_plugin_ctx_t *ctx, const char *name)
{
    loader_plugin_t *lp = ctx->core_private;
    const skiff_setting_t *decl = find_declared(lp->pub.desc, name);
    if (decl == NULL) {
        log_error(lp->pub.name, "asked for setting \"%s\", which the plugin does not declare",
                  name ? name : "(null)");
        return NULL;
    }
    for (size_t i = 0; i < lp->nsettings; i++)
        if (strcmp(lp->pub.settings[2 * i], name) == 0) return lp->pub.settings[2 * i + 1];
    return decl->default_value;
}

static void ctx_log(skiff_plugin_ctx_t *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, ctx->name, fmt, ap);
    va_end(ap);
}

/* Resolves a name to an existing file; 0, or SKIFF_ENOENT with a message
 * listing what was tried. */
static int resolve_path(const char *name, char **out, char *err, size_t errlen)
{
    if (strchr(name, '/') != NULL) {
        if (access(name, F_OK) != 0) {
            snprintf(err, errlen, "plugin file %s: %s", name, strerror(errno));
            return SKIFF_ENOENT;
        }
        *out = strdup(name);
        return *out ? 0 : SKIFF_ENOMEM;
    }
    const char *fallback[] = {
#ifdef SKIFF_PLUGIN_DIR
        SKIFF_PLUGIN_DIR,
#endif
#ifdef SKIFF_BUILD_PLUGIN_DIR
        SKIFF_BUILD_PLUGIN_DIR,
#endif
        NULL,
    };
    char tried[1024];
    size_t used = 0;
    tried[0] = '\0';
    size_t total = search_ndirs + sizeof fallback / sizeof fallback[0] - 1;
    for (size_t i = 0; i < total; i++) {
        const char *dir = i < search_ndirs ? search_dirs[i] : fallback[i - search_ndirs];
        char *path = NULL;
        /* a Lua plugin is named with its extension: "website.lua" */
        if (asprintf(&path, lua_host_is_script(name) ? "%s/%s" : "%s/%s.so", dir, name) < 0)
            return SKIFF_ENOMEM;
        if (access(path, F_OK) == 0) {
            *out = path;
            return 0;
        }
        if (used < sizeof tried) {
            int n = snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", path);
            if (n > 0) used += (size_t)n;
        }
        free(path);
    }
    snprintf(err, errlen, "plugin %s not found (looked for %s); add its directory with --plugin-dir",
             name, used ? tried : "nothing: no plugin directories configured");
    return SKIFF_ENOENT;
}

loaded_plugin_t *plugin_load(const char *name_or_path, uv_loop_t *loop, const char *data_dir,
                             char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (name_or_path == NULL || name_or_path[0] == '\0') {
        snprintf(err, errlen, "no plugin name given");
        return NULL;
    }
    char *path = NULL;
    if (resolve_path(name_or_path, &path, err, errlen) != 0) return NULL;

    /* a plugin named by its path is called by its file name in messages,
     * which show the path as well */
    const char *slash = strrchr(name_or_path, '/');
    if (slash && slash[1]) name_or_path = slash + 1;
    const skiff_plugin_t *desc = NULL;
    int is_lua = lua_host_is_script(path);
    void *handle = NULL;
    if (is_lua) {
        lua_plugin_t *lh = NULL;
        if (lua_plugin_open(path, loop, &desc, &lh, err, errlen) != 0) {
            free(path);
            return NULL;
        }
        handle = lh;
        goto checked;
    }
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *why = dlerror();
        snprintf(err, errlen, "cannot load plugin %s (%s): %s", name_or_path, path,
                 why ? why : "unknown dlopen error");
        free(path);
        return NULL;
    }
    dlerror();
    desc = dlsym(handle, SKIFF_PLUGIN_SYMBOL);
    if (desc == NULL) {
        const char *why = dlerror();
        snprintf(err, errlen,
                 "%s is not a skiff plugin: it does not export the descriptor symbol \"%s\" (%s)",
                 path, SKIFF_PLUGIN_SYMBOL, why ? why : "symbol is NULL");
        goto fail;
    }
    /* The ABI version is the only field whose layout every SDK version agrees on;
     * nothing else in the descriptor may be read before it matches. */
    if (desc->abi_version != SKIFF_ABI_VERSION) {
        snprintf(err, errlen,
                 "plugin %s (%s) was built for SDK ABI %u, this skiff speaks ABI %u; "
                 "rebuild it against this SDK",
                 name_or_path, path, (unsigned)desc->abi_version, (unsigned)SKIFF_ABI_VERSION);
        goto fail;
    }
    if (desc->name == NULL || desc->name[0] == '\0') {
        snprintf(err, errlen, "plugin %s (%s) has a descriptor without a name", name_or_path, path);
        goto fail;
    }
    if (desc->kind == SKIFF_PLUGIN_STORAGE && desc->vtable == NULL) {
        snprintf(err, errlen, "storage plugin %s (%s) has no store vtable", desc->name, path);
        goto fail;
    }

checked:;
    loader_plugin_t *lp = calloc(1, sizeof *lp);
    if (lp == NULL) {
        snprintf(err, errlen, "out of memory loading plugin %s", name_or_path);
        goto fail;
    }
    lp->pub.name = strdup(desc->name);
    lp->data_dir = data_dir ? strdup(data_dir) : NULL;
    lp->pub.settings = calloc(1, sizeof(char *));
    if (lp->pub.name == NULL || (data_dir && lp->data_dir == NULL) || lp->pub.settings == NULL) {
        free(lp->pub.name);
        free(lp->data_dir);
        free(lp->pub.settings);
        free(lp);
        snprintf(err, errlen, "out of memory loading plugin %s", name_or_path);
        goto fail;
    }
    lp->pub.path = path;
    lp->pub.handle = handle;
    lp->pub.desc = desc;
    lp->pub.state = PLUGIN_LOADED;
    lp->pub.ctx.loop = loop;
    lp->pub.ctx.name = lp->pub.name;
    lp->pub.ctx.data_dir = lp->data_dir;
    lp->pub.ctx.setting = ctx_setting;
    lp->pub.ctx.log = ctx_log;
    lp->pub.ctx.core_private = lp;
    lp->is_lua = is_lua;
    if (is_lua) lua_plugin_bind(handle, &lp->pub.ctx);
    plugin_loaded_add(&lp->pub);
    return &lp->pub;

fail:
    if (is_lua) lua_plugin_close(handle);
    else dlclose(handle);
    free(path);
    return NULL;
}

int plugin_set_setting(loaded_plugin_t *p, const char *name, const char *value, char *err,
                       size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    if (p == NULL || name == NULL || value == NULL) {
        snprintf(err, errlen, "plugin setting needs a name and a value");
        return SKIFF_EINVAL;
    }
    loader_plugin_t *lp = (loader_plugin_t *)p;
    if (find_declared(p->desc, name) == NULL) {
        char known[512];
        size_t used = 0;
        known[0] = '\0';
        if (p->desc->settings != NULL)
            for (const skiff_setting_t *s = p->desc->settings; s->name && used < sizeof known; s++) {
                int n = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "",
                                 s->name);
                if (n > 0) used += (size_t)n;
            }
        snprintf(err, errlen, "plugin %s has no setting \"%s\" (its settings: %s)", p->name, name,
                 used ? known : "none");
        return SKIFF_EINVAL;
    }
    char *v = strdup(value);
    if (v == NULL) return SKIFF_ENOMEM;
    for (size_t i = 0; i < lp->nsettings; i++) {
        if (strcmp(p->settings[2 * i], name) == 0) {
            free(p->settings[2 * i + 1]);
            p->settings[2 * i + 1] = v;
            return 0;
        }
    }
    char *k = strdup(name);
    char **n = realloc(p->settings, (2 * lp->nsettings + 3) * sizeof *n);
    if (k == NULL || n == NULL) {
        free(k);
        free(v);
        if (n) p->settings = n;
        return SKIFF_ENOMEM;
    }
    p->settings = n;
    p->settings[2 * lp->nsettings] = k;
    p->settings[2 * lp->nsettings + 1] = v;
    lp->nsettings++;
    p->settings[2 * lp->nsettings] = NULL;
    return 0;
}

int plugin_start(loaded_plugin_t *p, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    if (p == NULL) return SKIFF_EINVAL;
    if (p->state == PLUGIN_STARTED) return 0;
    if (p->state == PLUGIN_FAILED) {
        snprintf(err, errlen, "plugin %s (%s) failed earlier and cannot be started", p->name,
                 p->path);
        return SKIFF_EINVAL;
    }
    int rc = p->state == PLUGIN_STOPPED ? 0 : p->desc->init ? p->desc->init(&p->ctx) : 0;
    if (rc != 0) {
        p->state = PLUGIN_FAILED;
        snprintf(err, errlen, "plugin %s (%s): init failed: %s (%d)", p->name, p->path,
                 skiff_strerror(rc), rc);
        return rc < 0 ? rc : SKIFF_EIO;
    }
    rc = p->desc->start ? p->desc->start(&p->ctx) : 0;
    if (rc != 0) {
        p->state = PLUGIN_FAILED;
        snprintf(err, errlen, "plugin %s (%s): start failed: %s (%d)", p->name, p->path,
                 skiff_strerror(rc), rc);
        return rc < 0 ? rc : SKIFF_EIO;
    }
    p->state = PLUGIN_STARTED;
    return 0;
}

void plugin_stop(loaded_plugin_t *p)
{
    if (p == NULL || p->state != PLUGIN_STARTED) return;
    if (p->desc->stop) p->desc->stop(&p->ctx);
    p->state = PLUGIN_STOPPED;
}

void plugin_unload(loaded_plugin_t *p)
{
    if (p == NULL) return;
    loader_plugin_t *lp = (loader_plugin_t *)p;
    if (p->state == PLUGIN_STARTED && p->desc->stop) p->desc->stop(&p->ctx);
    plugin_loaded_remove(p);
    if (p->settings)
        for (size_t i = 0; i < 2 * lp->nsettings; i++) free(p->settings[i]);
    free(p->settings);
    if (lp->is_lua) lua_plugin_close(p->handle);
    else dlclose(p->handle);
    free(p->path);
    free(p->name);
    free(lp->data_dir);
    free(lp);
}
