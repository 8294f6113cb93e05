/* core/plugin/registry.c - the table of plugins the server knows of and
 * their states, read by GET /skiff/v1/plugins and `skiff plugins list`. */
#define _GNU_SOURCE
#include "plugin/registry.h"

#include <stdlib.h>
#include <string.h>

typedef struct record {
    char *name, *kind, *version, *path, *reason;
    json_t *settings; /* the descriptor's declared settings, or NULL */
    const loaded_plugin_t *p; /* identity for notes; never dereferenced after add */
    plugin_origin_t origin;
    plugin_rec_state_t state;
} record_t;

static record_t *records;
static size_t nrecords;

const char *plugin_kind_name(int kind)
{
    switch (kind) {
    case SKIFF_PLUGIN_STORAGE: return "storage";
    case SKIFF_PLUGIN_CONTROLLER: return "controller";
    case SKIFF_PLUGIN_SCHEDULER: return "scheduler";
    case SKIFF_PLUGIN_ADMISSION: return "admission";
    case SKIFF_PLUGIN_RUNTIME: return "runtime";
    case SKIFF_PLUGIN_PROXY: return "proxy";
    case SKIFF_PLUGIN_CLOUD: return "cloud";
    default: return "unknown";
    }
}

const char *plugin_rec_state_name(plugin_rec_state_t s)
{
    switch (s) {
    case PLUGIN_REC_LOADED: return "loaded";
    case PLUGIN_REC_STARTED: return "started";
    case PLUGIN_REC_STANDBY: return "standby";
    case PLUGIN_REC_STOPPED: return "stopped";
    case PLUGIN_REC_FAILED: return "failed";
    case PLUGIN_REC_AVAILABLE: return "available";
    case PLUGIN_REC_WOULD_LOAD: return "would-load";
    }
    return "unknown";
}

const char *plugin_origin_name(plugin_origin_t o)
{
    switch (o) {
    case PLUGIN_ORIGIN_BUILTIN: return "built-in";
    case PLUGIN_ORIGIN_DIR: return "plugin-dir";
    case PLUGIN_ORIGIN_FILE: return "file";
    }
    return "unknown";
}

static const char *setting_type(skiff_setting_type_t t)
{
    switch (t) {
    case SKIFF_SETTING_STRING: return "string";
    case SKIFF_SETTING_INT: return "int";
    case SKIFF_SETTING_BOOL: return "bool";
    case SKIFF_SETTING_DURATION: return "duration";
    }
    return "unknown";
}

/* [{"name", "type", "default", "help"}] of a descriptor's settings table. */
static json_t *settings_json(const skiff_plugin_t *d)
{
    json_t *a = json_array();
    if (!a || !d->settings) return a;
    for (const skiff_setting_t *st = d->settings; st->name; st++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s?, s:s?}", "name", st->name, "type",
                                           setting_type(st->type), "default", st->default_value,
                                           "help", st->help));
    return a;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void set_reason(record_t *r, const char *reason)
{
    free(r->reason);
    r->reason = dup_or_null(reason);
}

int plugin_registry_add(const char *name, const char *path, const loaded_plugin_t *p,
                        plugin_origin_t origin, plugin_rec_state_t state, const char *reason)
{
    record_t *n = realloc(records, (nrecords + 1) * sizeof *n);
    if (!n) return -1;
    records = n;
    record_t *r = &records[nrecords];
    memset(r, 0, sizeof *r);
    const skiff_plugin_t *d = p ? p->desc : NULL;
    r->name = strdup(p ? p->name : name ? name : "?");
    r->kind = strdup(d ? plugin_kind_name(d->kind) : "unknown");
    r->version = strdup(d && d->version ? d->version : "");
    r->path = dup_or_null(path);
    r->reason = dup_or_null(reason);
    r->settings = d ? settings_json(d) : NULL;
    r->p = p;
    r->origin = origin;
    r->state = state;
    if (!r->name || !r->kind || !r->version) {
        free(r->name);
        free(r->kind);
        free(r->version);
        free(r->path);
        free(r->reason);
        json_decref(r->settings);
        return -1;
    }
    nrecords++;
    return 0;
}

int plugin_registry_add_builtin(const char *name, int kind, const char *reason)
{
    if (plugin_registry_add(name, NULL, NULL, PLUGIN_ORIGIN_BUILTIN, PLUGIN_REC_STARTED, reason))
        return -1;
    record_t *r = &records[nrecords - 1];
    char *k = strdup(plugin_kind_name(kind));
    if (!k) return -1;
    free(r->kind);
    r->kind = k;
    return 0;
}

void plugin_registry_note(const loaded_plugin_t *p, plugin_rec_state_t state, const char *reason)
{
    for (size_t i = 0; i < nrecords; i++) {
        if (records[i].p != p) continue;
        records[i].state = state;
        set_reason(&records[i], reason);
        return;
    }
}

void plugin_registry_forget(const loaded_plugin_t *p)
{
    for (size_t i = 0; i < nrecords; i++)
        if (records[i].p == p) records[i].p = NULL;
}

int plugin_registry_has(const char *name, const char **path)
{
    for (size_t i = 0; i < nrecords; i++) {
        if (records[i].state == PLUGIN_REC_FAILED || strcmp(records[i].name, name) != 0) continue;
        if (path) *path = records[i].path;
        return 1;
    }
    return 0;
}

static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    return strncmp(path, dir, n) == 0 && path[n] == '/' && strchr(path + n + 1, '/') == NULL;
}

plugin_origin_t plugin_registry_origin_of(const char *path)
{
    if (!path) return PLUGIN_ORIGIN_FILE;
#ifdef SKIFF_PLUGIN_DIR
    if (under(path, SKIFF_PLUGIN_DIR)) return PLUGIN_ORIGIN_BUILTIN;
#endif
#ifdef SKIFF_BUILD_PLUGIN_DIR
    if (under(path, SKIFF_BUILD_PLUGIN_DIR)) return PLUGIN_ORIGIN_BUILTIN;
#endif
    for (size_t i = 0;; i++) {
        const char *d = plugin_loader_dir(i);
        if (!d) break;
        if (under(path, d)) return PLUGIN_ORIGIN_DIR;
    }
    return PLUGIN_ORIGIN_FILE;
}

json_t *plugin_registry_json(void)
{
    json_t *items = json_array();
    for (size_t i = 0; i < nrecords; i++) {
        record_t *r = &records[i];
        json_array_append_new(
            items, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s?, s:O?}", "name", r->name,
                             "kind", r->kind, "version", r->version, "origin",
                             plugin_origin_name(r->origin), "path", r->path, "state",
                             plugin_rec_state_name(r->state), "reason", r->reason, "settings",
                             r->settings));
    }
    return json_pack("{s:s, s:s, s:o}", "kind", "PluginList", "apiVersion", "skiff/v1", "items",
                     items);
}

void plugin_registry_clear(void)
{
    for (size_t i = 0; i < nrecords; i++) {
        free(records[i].name);
        free(records[i].kind);
        free(records[i].version);
        free(records[i].path);
        free(records[i].reason);
        json_decref(records[i].settings);
    }
    free(records);
    records = NULL;
    nrecords = 0;
}
