/* core/plugin/sources.c - loads the plugins of --plugins and of the
 * --plugin-dir folders (shared objects and Lua scripts alike, through
 * plugin_load), records each in the plugin registry, and keeps them for
 * the host of their kind. */
#define _GNU_SOURCE
#include "plugin/sources.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <skiff/errors.h>

#include "plugin/registry.h"
#include "util/log.h"

struct plugin_sources {
    plugin_sources_opts_t o;
    loaded_plugin_t **held;
    size_t nheld;
};

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

/* "hello-controller" from ".../hello-controller.so" */
static void base_name(const char *path, char *out, size_t len)
{
    const char *b = strrchr(path, '/');
    snprintf(out, len, "%s", b ? b + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

static int hold(plugin_sources_t *s, loaded_plugin_t *p)
{
    loaded_plugin_t **n = realloc(s->held, (s->nheld + 1) * sizeof *n);
    if (!n) return -1;
    s->held = n;
    s->held[s->nheld++] = p;
    return 0;
}

/* 1 when both paths name one file (a folder given twice, relative and
 * absolute, or a symbolic link). */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return strcmp(a, b) == 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Loads one file or name; failures are recorded and logged. */
static int load_one(plugin_sources_t *s, const char *what, int from_dir)
{
    char err[1024] = "";
    loaded_plugin_t *p = plugin_load(what, s->o.loop, s->o.data_dir, err, sizeof err);
    char name[256];
    base_name(what, name, sizeof name);
    if (!p) {
        /* the path it was found at is in the message; a name not found has none */
        plugin_registry_add(name, strchr(what, '/') ? what : NULL, NULL,
                            from_dir             ? PLUGIN_ORIGIN_DIR
                            : strchr(what, '/') ? plugin_registry_origin_of(what)
                                                : PLUGIN_ORIGIN_FILE,
                            PLUGIN_REC_FAILED, err);
        log_error("plugins", "%s; the rest of the cluster keeps running", err);
        return 0;
    }
    const char *other = NULL;
    if (plugin_registry_has(p->name, &other)) {
        /* the same file named twice (--plugins and its folder) is no news */
        if (other && !same_file(other, p->path)) {
            char why[1200];
            snprintf(why, sizeof why, "another plugin named %s is already loaded from %s",
                     p->name, other);
            plugin_registry_add(p->name, p->path, NULL, plugin_registry_origin_of(p->path),
                                PLUGIN_REC_FAILED, why);
            log_error("plugins", "%s: %s", p->path, why);
        }
        plugin_unload(p);
        return 0;
    }
    plugin_origin_t origin = from_dir ? PLUGIN_ORIGIN_DIR : plugin_registry_origin_of(p->path);
    if (s->o.dry_run) {
        plugin_registry_add(p->name, p->path, p, origin,
                            from_dir ? PLUGIN_REC_WOULD_LOAD : PLUGIN_REC_AVAILABLE,
                            from_dir ? "loads when the server starts (in a --plugin-dir)"
                            : p->desc->kind == SKIFF_PLUGIN_STORAGE
                                ? "loads when named by --store"
                                : "loads when named (--controllers, --scheduler, --plugins)");
        plugin_registry_forget(p);
        plugin_unload(p);
        return 0;
    }
    if (p->desc->kind == SKIFF_PLUGIN_STORAGE) {
        plugin_registry_add(p->name, p->path, NULL, origin, PLUGIN_REC_STOPPED,
                            "storage plugins are chosen with --store, not loaded from a folder");
        plugin_unload(p);
        return 0;
    }
    if (plugin_registry_add(p->name, p->path, p, origin, PLUGIN_REC_LOADED, NULL) != 0 ||
        hold(s, p) != 0) {
        plugin_unload(p);
        return -1;
    }
    log_info("plugins", "loaded %s %s (%s) from %s", plugin_kind_name(p->desc->kind), p->name,
             p->desc->version ? p->desc->version : "no version", p->path);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int load_dir(plugin_sources_t *s, const char *dir)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, by_name);
    if (n < 0) {
        log_error("plugins", "--plugin-dir %s: cannot read the folder: %m", dir);
        return 0;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *f = list[i]->d_name;
        if (rc == 0 && f[0] != '.' && (ends_with(f, ".so") || ends_with(f, ".lua"))) {
            char *path = NULL;
            struct stat st;
            if (asprintf(&path, "%s/%s", dir, f) < 0) rc = -1;
            else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) rc = load_one(s, path, 1);
            free(path);
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

/* Offline: the built-in plugins, which load when a server names them. */
static int list_builtins(plugin_sources_t *s)
{
    const char *dirs[] = {
#ifdef SKIFF_PLUGIN_DIR
        SKIFF_PLUGIN_DIR,
#endif
#ifdef SKIFF_BUILD_PLUGIN_DIR
        SKIFF_BUILD_PLUGIN_DIR,
#endif
        NULL,
    };
    for (size_t d = 0; dirs[d]; d++) {
        struct dirent **list = NULL;
        int n = scandir(dirs[d], &list, NULL, by_name);
        if (n < 0) continue;
        for (int i = 0; i < n; i++) {
            char *path = NULL;
            if (ends_with(list[i]->d_name, ".so") &&
                asprintf(&path, "%s/%s", dirs[d], list[i]->d_name) >= 0)
                load_one(s, path, 0);
            free(path);
            free(list[i]);
        }
        free(list);
    }
    return 0;
}

int plugin_sources_load(const plugin_sources_opts_t *o, plugin_sources_t **out)
{
    plugin_sources_t *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->o = *o;
    *out = s;
    /* folders first, so a name in --plugins that one of them holds is
     * the same plugin, not a second copy */
    for (size_t i = 0; i < o->ndirs; i++)
        if (load_dir(s, o->dirs[i]) != 0) return -1;
    if (o->names && *o->names) {
        char *buf = strdup(o->names), *save = NULL;
        if (!buf) return -1;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            if (*t && load_one(s, t, 0) != 0) {
                free(buf);
                return -1;
            }
        }
        free(buf);
    }
    if (o->dry_run) list_builtins(s);
    return 0;
}

loaded_plugin_t **plugin_sources_take(plugin_sources_t *s, int kind, size_t *n)
{
    *n = 0;
    if (!s) return NULL;
    size_t count = 0;
    for (size_t i = 0; i < s->nheld; i++)
        if (s->held[i] && (int)s->held[i]->desc->kind == kind) count++;
    if (!count) return NULL;
    loaded_plugin_t **taken = calloc(count, sizeof *taken);
    if (!taken) return NULL;
    for (size_t i = 0; i < s->nheld; i++) {
        if (s->held[i] && (int)s->held[i]->desc->kind == kind) {
            taken[(*n)++] = s->held[i];
            s->held[i] = NULL;
        }
    }
    return taken;
}

void plugin_sources_settle(plugin_sources_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nheld; i++) {
        loaded_plugin_t *p = s->held[i];
        if (!p) continue;
        char why[160];
        if (p->desc->kind == SKIFF_PLUGIN_ADMISSION)
            /* the chain's order is the user's to choose: admission plugins
             * from folders run when named */
            snprintf(why, sizeof why, "admission plugins run when named by "
                                      "--enable-admission-plugins");
        else
            snprintf(why, sizeof why, "nothing in this server runs %s plugins yet",
                     plugin_kind_name(p->desc->kind));
        plugin_registry_note(p, PLUGIN_REC_LOADED, why);
        log_warn("plugins", "%s (%s): %s", p->name, p->path, why);
    }
}

void plugin_sources_free(plugin_sources_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nheld; i++)
        if (s->held[i]) plugin_unload(s->held[i]);
    free(s->held);
    free(s);
}

size_t plugin_sources_split_dirs(const char *value, char **buf, const char **dirs, size_t n,
                                 size_t max)
{
    if (!value || !*value) return n;
    *buf = strdup(value);
    if (!*buf) return n;
    char *save = NULL;
    for (char *t = strtok_r(*buf, ":", &save); t && n < max; t = strtok_r(NULL, ":", &save))
        if (*t) dirs[n++] = t;
    return n;
}
