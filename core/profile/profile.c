/* core/profile/profile.c - loads a cluster profile (built-in or a file,
 * JSON or Lua), checks its shape, and fills `skiff server`'s settings
 * through the server's options table (see profile.h).
 *
 * The structured sections only translate into option names; whether an
 * option exists is decided by the table, so a section whose option this
 * build lacks (admission before the admission chain, plugins before plugin
 * lists) is refused with a message naming the missing option. */
#include "profile/profile.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <skiff/objects.h>

#include "util/strbuf.h"

#define PROFILE_MAX_BYTES (1024 * 1024)
#define PROFILE_MAX_EXTENDS 4

struct profile {
    char *origin;    /* "built-in single-node" or the file's path */
    char *name;
    char *text;      /* the top file's text, to find lines */
    int lua;
    json_t *doc;     /* merged document (extends resolved) */
    json_t *addons;  /* resolved addon paths */
    json_t *owned;   /* strings built for settings, kept alive here */
    /* values the profile gave options that accumulate (*plugin-settings),
     * by option index, for the merge with the command line */
    const char **accumulated;
    size_t naccumulated;
};

/* ---- errors with file, line and setting ------------------------------------ */

static int ident_char(int c)
{
    return isalnum(c) || c == '_';
}

/* Where a key is written in the text: JSON `"key" :` or Lua `key =` /
 * `["key"] =`, searched from pos on. Returns its offset or -1. */
static long find_key(const char *text, int lua, const char *key, size_t klen, size_t pos)
{
    size_t n = strlen(text);
    for (size_t i = pos; i + klen <= n; i++) {
        if (strncmp(text + i, key, klen) != 0) continue;
        size_t end = i + klen;
        if (!lua || (i > 0 && text[i - 1] == '"')) {
            if (i == 0 || text[i - 1] != '"' || end >= n || text[end] != '"') continue;
            end++;
            if (lua) {
                if (i < 2 || text[i - 2] != '[' || end >= n || text[end] != ']') continue;
                end++;
            }
        } else if ((i > 0 && ident_char((unsigned char)text[i - 1])) ||
                   (end < n && ident_char((unsigned char)text[end]))) {
            continue;
        }
        while (end < n && isspace((unsigned char)text[end])) end++;
        if (end < n && text[end] == (lua ? '=' : ':') && !(lua && text[end + 1] == '='))
            return (long)i;
    }
    return -1;
}

/* The line of a setting "a.b.c" (each key searched after the previous
 * one), or of the deepest key found; 0 when none is. */
static int locate(const profile_t *p, const char *path)
{
    if (!p || !p->text || !path) return 0;
    size_t pos = 0;
    long found = -1;
    const char *s = path;
    while (*s) {
        size_t len = strcspn(s, ".[");
        if (len > 0) {
            long at = find_key(p->text, p->lua, s, len, pos);
            if (at < 0) break;
            found = at;
            pos = (size_t)at + len;
        }
        s += len;
        if (*s == '[') s += strcspn(s, "]");
        if (*s) s++;
    }
    if (found < 0) return 0;
    int line = 1;
    for (long i = 0; i < found; i++)
        if (p->text[i] == '\n') line++;
    return line;
}

static int fail(const profile_t *p, char *err, size_t errlen, const char *path, const char *fmt,
                ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = locate(p, path);
    if (line > 0)
        snprintf(err, errlen, "%s:%d: %s: %s", p->origin, line, path, msg);
    else
        snprintf(err, errlen, "%s: %s: %s", p->origin, path, msg);
    return -1;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a table/object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* ---- reading ---------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read the profile: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PROFILE_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, PROFILE_MAX_BYTES + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > PROFILE_MAX_BYTES) {
        snprintf(err, errlen, "%s: %s", path,
                 !buf ? "out of memory" : bad ? "read error" : "larger than 1 MiB");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

const char *profile_builtin_text(const char *name)
{
    for (const profile_builtin_file_t *f = profile_builtin_files; f->name; f++)
        if (strcmp(f->name, name) == 0) return f->text;
    return NULL;
}

static void builtin_names(char *buf, size_t len)
{
    buf[0] = '\0';
    for (const profile_builtin_file_t *f = profile_builtin_files; f->name; f++) {
        if (strchr(f->name, '/')) continue;
        size_t l = strlen(buf), dot = strcspn(f->name, ".");
        snprintf(buf + l, len - l, "%s%.*s", l ? ", " : "", (int)dot, f->name);
    }
}

/* ---- the document's shape ----------------------------------------------------- */

typedef int (*check_fn)(const profile_t *p, const json_t *v, const char *path, char *err,
                        size_t errlen);

typedef struct section {
    const char *key;
    check_fn check;
    const char *help;
} section_t;

static int is_string_list(const json_t *v)
{
    size_t i;
    json_t *e;
    if (json_is_string(v)) return 1;
    if (json_is_object(v) && json_object_size(v) == 0) return 1; /* Lua's {} */
    if (!json_is_array(v)) return 0;
    json_array_foreach(v, i, e) if (!json_is_string(e)) return 0;
    return 1;
}

static int check_string(const profile_t *p, const json_t *v, const char *path, char *err,
                        size_t errlen)
{
    if (json_is_string(v)) return 0;
    return fail(p, err, errlen, path, "expected a string, got %s", type_name(v));
}

static int check_list(const profile_t *p, const json_t *v, const char *path, char *err,
                      size_t errlen)
{
    if (is_string_list(v)) return 0;
    return fail(p, err, errlen, path, "expected a string or a list of strings, got %s",
                type_name(v));
}

static int check_keys(const profile_t *p, const json_t *v, const char *path,
                      const section_t *keys, char *err, size_t errlen)
{
    if (!json_is_object(v))
        return fail(p, err, errlen, path, "expected a table/object, got %s", type_name(v));
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) {
        const section_t *s = keys;
        while (s->key && strcmp(s->key, k) != 0) s++;
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
        if (!s->key) {
            char valid[512] = "";
            for (s = keys; s->key; s++) {
                size_t l = strlen(valid);
                snprintf(valid + l, sizeof valid - l, "%s%s", l ? ", " : "", s->key);
            }
            return fail(p, err, errlen, sub, "unknown setting; valid here: %s", valid);
        }
        if (!s->check) /* reserved for a later plugin kind */
            return fail(p, err, errlen, sub, "%s", s->help);
        if (s->check(p, e, sub, err, errlen) != 0) return -1;
    }
    return 0;
}

/* plugin settings: {"plugin": {"setting": scalar | list | {k: v}}} */
static int check_setting_value(const profile_t *p, const json_t *v, const char *path, char *err,
                               size_t errlen)
{
    if (json_is_object(v) || json_is_array(v)) {
        size_t i;
        const char *k;
        json_t *e;
        if (json_is_array(v)) {
            json_array_foreach(v, i, e) if (json_is_object(e) || json_is_array(e) ||
                                            json_is_null(e))
                return fail(p, err, errlen, path, "a list of plain values was expected");
        } else {
            json_object_foreach((json_t *)v, k, e) if (json_is_object(e) || json_is_array(e) ||
                                                       json_is_null(e))
                return fail(p, err, errlen, path,
                            "a table of plain values (name = weight) was expected");
        }
        return 0;
    }
    if (json_is_null(v)) return fail(p, err, errlen, path, "expected a value, got null");
    return 0;
}

static int check_plugin_settings(const profile_t *p, const json_t *v, const char *path,
                                 char *err, size_t errlen)
{
    if (!json_is_object(v))
        return fail(p, err, errlen, path, "expected a table/object of settings, got %s",
                    type_name(v));
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, k);
        if (check_setting_value(p, e, sub, err, errlen) != 0) return -1;
    }
    return 0;
}

static int check_settings_by_plugin(const profile_t *p, const json_t *v, const char *path,
                                    char *err, size_t errlen)
{
    if (!json_is_object(v))
        return fail(p, err, errlen, path,
                    "expected a table/object {plugin = {setting = value}}, got %s", type_name(v));
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, k);
        if (check_plugin_settings(p, e, sub, err, errlen) != 0) return -1;
    }
    return 0;
}

static const section_t scheduler_keys[] = {
    {"plugin", check_string, NULL},
    {"settings", check_plugin_settings, NULL},
    {NULL, NULL, NULL},
};

static int check_scheduler(const profile_t *p, const json_t *v, const char *path, char *err,
                           size_t errlen)
{
    if (json_is_string(v)) return 0;
    if (!json_is_object(v))
        return fail(p, err, errlen, path,
                    "expected a plugin name, \"none\", or {plugin = ..., settings = {...}}, got %s",
                    type_name(v));
    return check_keys(p, v, path, scheduler_keys, err, errlen);
}

static const section_t admission_keys[] = {
    {"enable", check_list, NULL},
    {"disable", check_list, NULL},
    {"settings", check_settings_by_plugin, NULL},
    {NULL, NULL, NULL},
};

static int check_admission(const profile_t *p, const json_t *v, const char *path, char *err,
                           size_t errlen)
{
    return check_keys(p, v, path, admission_keys, err, errlen);
}

static const section_t plugins_keys[] = {
    {"load", check_list, NULL},
    {"settings", check_settings_by_plugin, NULL},
    {NULL, NULL, NULL},
};

static int check_plugins(const profile_t *p, const json_t *v, const char *path, char *err,
                         size_t errlen)
{
    return check_keys(p, v, path, plugins_keys, err, errlen);
}

static const section_t network_keys[] = {
    {"service-cluster-ip-range", check_list, NULL},
    {"cluster-cidr", check_list, NULL},
    {NULL, NULL, NULL},
};

static int check_network(const profile_t *p, const json_t *v, const char *path, char *err,
                         size_t errlen)
{
    return check_keys(p, v, path, network_keys, err, errlen);
}

static int check_server(const profile_t *p, const json_t *v, const char *path, char *err,
                        size_t errlen)
{
    /* names and types are checked against the options table when applied */
    if (json_is_object(v)) return 0;
    return fail(p, err, errlen, path, "expected a table/object of server options, got %s",
                type_name(v));
}

static const section_t top_keys[] = {
    {"name", check_string, NULL},
    {"description", check_string, NULL},
    {"extends", check_string, NULL},
    {"store", check_string, NULL},
    {"controllers", check_list, NULL},
    {"scheduler", check_scheduler, NULL},
    {"admission", check_admission, NULL},
    {"plugins", check_plugins, NULL},
    {"network", check_network, NULL},
    {"addons", check_list, NULL},
    {"server", check_server, NULL},
    {"runtime", NULL, "runtime plugins come with the node agent; this build has none to choose"},
    {"proxy", NULL, "proxy plugins come with Services networking; this build has none to choose"},
    {"cloud", NULL, "cloud plugins come with LoadBalancer Services; this build has none to choose"},
    {NULL, NULL, NULL},
};

/* ---- loading ------------------------------------------------------------------ */

static json_t *parse(profile_t *p, const char *text, size_t len, char *err, size_t errlen)
{
    if (p->lua) return profile_lua_eval(p->origin, text, len, err, errlen);
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) snprintf(err, errlen, "%s:%d:%d: %s", p->origin, je.line, je.column, je.text);
    return doc;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* The addons of one file, resolved against where the file is: a path
 * relative to a file's directory, a built-in file for a built-in profile. */
static int resolve_addons(profile_t *p, json_t *doc, const char *dir, char *err, size_t errlen)
{
    json_t *a = json_object_get(doc, "addons");
    if (!a) return 0;
    json_t *out = json_array();
    json_t *list = json_is_string(a) ? json_pack("[O]", a) : json_incref(a);
    size_t i;
    json_t *e;
    int rc = 0;
    json_array_foreach(list, i, e) {
        const char *s = json_string_value(e);
        char buf[2048];
        if (!*s) {
            rc = fail(p, err, errlen, "addons", "an empty path");
            break;
        }
        if (!dir) { /* built-in profile */
            if (!profile_builtin_text(s)) {
                rc = fail(p, err, errlen, "addons", "no built-in addon %s", s);
                break;
            }
            snprintf(buf, sizeof buf, "builtin:%s", s);
        } else if (s[0] == '/' || strncmp(s, "builtin:", 8) == 0) {
            snprintf(buf, sizeof buf, "%s", s);
        } else {
            snprintf(buf, sizeof buf, "%s/%s", dir, s);
        }
        json_array_append_new(out, json_string(buf));
    }
    json_decref(list);
    if (rc == 0) json_object_set(doc, "addons", out);
    json_decref(out);
    return rc;
}

/* plugins.load: a relative path (with a '/') is relative to the file's
 * folder, as addons are; a plain name is looked up in the plugin folders. */
static void resolve_plugin_paths(json_t *doc, const char *dir)
{
    json_t *load = json_object_get(json_object_get(doc, "plugins"), "load");
    if (!dir || !load) return;
    json_t *list = json_is_string(load) ? json_pack("[O]", load) : json_incref(load);
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *s = json_string_value(e);
        if (s && s[0] != '/' && strchr(s, '/')) {
            char buf[2048];
            snprintf(buf, sizeof buf, "%s/%s", dir, s);
            json_array_append_new(out, json_string(buf));
        } else {
            json_array_append(out, e);
        }
    }
    json_object_set_new(json_object_get(doc, "plugins"), "load", out);
    json_decref(list);
}

static profile_t *load_depth(const char *spec, const char *base_dir, int depth, char *err,
                             size_t errlen);

static profile_t *load_doc(char *origin, char *name, char *text, size_t len, int lua,
                           const char *dir, int depth, char *err, size_t errlen)
{
    profile_t *p = calloc(1, sizeof *p);
    if (!p) {
        free(origin);
        free(name);
        free(text);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->origin = origin;
    p->name = name;
    p->text = text;
    p->lua = lua;
    p->owned = json_array();
    json_t *doc = parse(p, text, len, err, errlen);
    if (!doc) goto fail;
    p->doc = doc;
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "%s: a profile is %s, got %s", origin,
                 lua ? "a table returned by the chunk" : "a JSON object", type_name(doc));
        goto fail;
    }
    if (check_keys(p, doc, "", top_keys, err, errlen) != 0) goto fail;
    if (resolve_addons(p, doc, dir, err, errlen) != 0) goto fail;
    resolve_plugin_paths(doc, dir);
    const char *n = json_string_value(json_object_get(doc, "name"));
    if (n) {
        free(p->name);
        p->name = strdup(n);
    }
    const char *ext = json_string_value(json_object_get(doc, "extends"));
    if (ext) {
        if (depth >= PROFILE_MAX_EXTENDS) {
            fail(p, err, errlen, "extends", "more than %d profiles extend one another",
                 PROFILE_MAX_EXTENDS);
            goto fail;
        }
        char sub[1536];
        profile_t *base = load_depth(ext, dir, depth + 1, sub, sizeof sub);
        if (!base) {
            fail(p, err, errlen, "extends", "%s", sub);
            goto fail;
        }
        /* the base's values, overridden key by key (tables merged, lists
         * and plain values replaced) */
        json_t *merged = skiff_json_copy(base->doc);
        json_object_update_recursive(merged, doc);
        json_object_del(merged, "extends");
        json_object_set_new(merged, "name", json_string(p->name));
        json_decref(p->doc);
        p->doc = merged;
        profile_free(base);
    }
    p->addons = json_object_get(p->doc, "addons");
    p->addons = p->addons ? json_incref(p->addons) : json_array();
    return p;
fail:
    profile_free(p);
    return NULL;
}

static profile_t *load_depth(const char *spec, const char *base_dir, int depth, char *err,
                             size_t errlen)
{
    int is_file = strchr(spec, '/') || ends_with(spec, ".json") || ends_with(spec, ".lua");
    if (!is_file) {
        char file[256];
        const char *text = NULL;
        int lua = 0;
        snprintf(file, sizeof file, "%s.json", spec);
        text = profile_builtin_text(file);
        if (!text) {
            snprintf(file, sizeof file, "%s.lua", spec);
            text = profile_builtin_text(file);
            lua = 1;
        }
        if (!text) {
            char names[512];
            builtin_names(names, sizeof names);
            if (strcmp(spec, "ha") == 0)
                snprintf(err, errlen,
                         "profile ha: several servers on one etcd need the storage-etcd plugin, "
                         "which this build does not have yet (built-in profiles: %s)",
                         names);
            else
                snprintf(err, errlen,
                         "no built-in profile \"%s\" (built-in: %s; a file is given by its path, "
                         "NAME.json or NAME.lua)",
                         spec, names);
            return NULL;
        }
        char origin[300];
        snprintf(origin, sizeof origin, "built-in profile %s", file);
        return load_doc(strdup(origin), strdup(spec), strdup(text), strlen(text), lua, NULL,
                        depth, err, errlen);
    }
    char path[2048];
    if (spec[0] != '/' && base_dir)
        snprintf(path, sizeof path, "%s/%s", base_dir, spec);
    else
        snprintf(path, sizeof path, "%s", spec);
    size_t len = 0;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return NULL;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *name = strndup(base, strcspn(base, "."));
    char *dir = dir_of(path);
    profile_t *p = load_doc(strdup(path), name, text, len, ends_with(path, ".lua"), dir, depth,
                            err, errlen);
    free(dir);
    return p;
}

profile_t *profile_load(const char *spec, char *err, size_t errlen)
{
    if (!spec || !*spec) spec = PROFILE_DEFAULT;
    return load_depth(spec, NULL, 0, err, errlen);
}

profile_t *profile_load_text(const char *origin, const char *text, size_t len, int lua,
                             char *err, size_t errlen)
{
    char *copy = strndup(text, len);
    char *dir = dir_of(origin);
    profile_t *p = load_doc(strdup(origin), strdup("custom"), copy, len, lua, dir, 0, err,
                            errlen);
    free(dir);
    return p;
}

void profile_free(profile_t *p)
{
    if (!p) return;
    json_decref(p->doc);
    json_decref(p->addons);
    json_decref(p->owned);
    free(p->origin);
    free(p->name);
    free(p->text);
    free(p->accumulated);
    free(p);
}

const char *profile_name(const profile_t *p)
{
    return p->name ? p->name : "custom";
}

const char *profile_origin(const profile_t *p)
{
    return p->origin;
}

json_t *profile_addons(const profile_t *p)
{
    return p->addons;
}

/* ---- applying to the options table ---------------------------------------------- */

typedef struct applier {
    profile_t *p;
    const option_t *opts;
    size_t nopts;
    void *settings;
    const char **set_by; /* per option: the profile path that set it */
    strbuf_t plugin_settings;
    const char *plugin_settings_path;
    char *err;
    size_t errlen;
} applier_t;

static const option_t *find_option(const applier_t *a, const char *name)
{
    for (size_t i = 0; i < a->nopts; i++)
        if (strcmp(a->opts[i].name, name) == 0) return &a->opts[i];
    return NULL;
}

/* A string owned by the profile for as long as the settings are used. */
static const char *keep(applier_t *a, const char *s)
{
    json_t *j = json_string(s);
    if (!j) return NULL;
    json_array_append_new(a->p->owned, j);
    return json_string_value(j);
}

/* "a,b,c" from a string or a list of strings; NULL on ENOMEM. */
static const char *joined(applier_t *a, const json_t *v, const char *sep)
{
    if (json_is_string(v)) return json_string_value(v);
    strbuf_t b = {0};
    size_t i;
    json_t *e;
    strbuf_add(&b, "");
    if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            if (i) strbuf_add(&b, sep);
            strbuf_add(&b, json_string_value(e));
        }
    }
    const char *s = b.failed ? NULL : keep(a, b.p);
    strbuf_free(&b);
    return s;
}

static int set_option(applier_t *a, const char *name, const json_t *v, const char *path)
{
    const option_t *o = find_option(a, name);
    if (!o)
        return fail(a->p, a->err, a->errlen, path,
                    "this build of skiff server has no --%s option to carry it", name);
    size_t idx = (size_t)(o - a->opts);
    if (a->set_by[idx])
        return fail(a->p, a->err, a->errlen, path, "--%s is already set by %s", name,
                    a->set_by[idx]);
    char *field = (char *)a->settings + o->offset;
    switch (o->type) {
    case OPT_STRING: {
        if (!is_string_list(v))
            return fail(a->p, a->err, a->errlen, path,
                        "expected a string (%s) or a list of strings, got %s", o->metavar,
                        type_name(v));
        const char *s = joined(a, v, ",");
        if (!s) return fail(a->p, a->err, a->errlen, path, "out of memory");
        *(const char **)field = s;
        break;
    }
    case OPT_INT:
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > 65535 * 1000LL)
            return fail(a->p, a->err, a->errlen, path,
                        "expected a whole number (%s) from 0 to 65535000, got %s", o->metavar,
                        json_is_integer(v) ? "a negative or too large number" : type_name(v));
        *(int *)field = (int)json_integer_value(v);
        break;
    case OPT_FLAG:
        if (!json_is_boolean(v))
            return fail(a->p, a->err, a->errlen, path, "expected true or false, got %s",
                        type_name(v));
        *(int *)field = json_is_true(v);
        break;
    case OPT_LIST: {
        /* a repeatable option (--plugin-dir): one value or a list of them */
        if (!is_string_list(v))
            return fail(a->p, a->err, a->errlen, path,
                        "expected a string (%s) or a list of strings, got %s", o->metavar,
                        type_name(v));
        option_list_t *l = (option_list_t *)field;
        l->n = 0;
        size_t n = json_is_array(v) ? json_array_size(v) : json_is_string(v) ? 1 : 0;
        if (n > OPTION_LIST_MAX)
            return fail(a->p, a->err, a->errlen, path, "at most %d values, got %zu",
                        OPTION_LIST_MAX, n);
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            const char *s = keep(a, json_string_value(e));
            if (!s) return fail(a->p, a->err, a->errlen, path, "out of memory");
            l->v[l->n++] = s;
        }
        break;
    }
    }
    a->set_by[idx] = path;
    return 0;
}

/* One plugin setting as --plugin-settings text: lists "a,b", tables
 * "name:weight,...", plain values as written. */
static int add_plugin_setting(applier_t *a, strbuf_t *out, const char *plugin, const char *key,
                              const json_t *v, const char *path)
{
    strbuf_t val = {0};
    strbuf_add(&val, "");
    char num[64];
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_array(v) || json_is_object(v)) {
        int first = 1;
        if (json_is_array(v)) {
            json_array_foreach((json_t *)v, i, e) {
                if (!first) strbuf_add(&val, ",");
                first = 0;
                if (json_is_string(e)) strbuf_add(&val, json_string_value(e));
                else if (json_is_integer(e))
                    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(e)),
                        strbuf_add(&val, num);
                else if (json_is_real(e))
                    snprintf(num, sizeof num, "%g", json_real_value(e)), strbuf_add(&val, num);
                else strbuf_add(&val, json_is_true(e) ? "true" : "false");
            }
        } else {
            json_object_foreach((json_t *)v, k, e) {
                if (!first) strbuf_add(&val, ",");
                first = 0;
                strbuf_add(&val, k);
                strbuf_add(&val, ":");
                if (json_is_string(e)) strbuf_add(&val, json_string_value(e));
                else if (json_is_integer(e))
                    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(e)),
                        strbuf_add(&val, num);
                else if (json_is_real(e))
                    snprintf(num, sizeof num, "%g", json_real_value(e)), strbuf_add(&val, num);
                else strbuf_add(&val, json_is_true(e) ? "true" : "false");
            }
        }
    } else if (json_is_string(v)) {
        strbuf_add(&val, json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        strbuf_add(&val, num);
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%g", json_real_value(v));
        strbuf_add(&val, num);
    } else {
        strbuf_add(&val, json_is_true(v) ? "true" : "false");
    }
    int rc = 0;
    if (val.failed) rc = fail(a->p, a->err, a->errlen, path, "out of memory");
    else if (strchr(val.p, ';') || strchr(plugin, '.') || strchr(key, '='))
        rc = fail(a->p, a->err, a->errlen, path,
                  "a plugin setting may not contain ';' (nor '.' in the plugin's name or '=' in "
                  "the setting's)");
    if (rc == 0) {
        if (out->len) strbuf_add(out, ";");
        strbuf_add(out, plugin);
        strbuf_add(out, ".");
        strbuf_add(out, key);
        strbuf_add(out, "=");
        strbuf_add(out, val.p);
        if (out == &a->plugin_settings && !a->plugin_settings_path) a->plugin_settings_path = path;
    }
    strbuf_free(&val);
    return rc;
}

static int add_plugin_settings(applier_t *a, strbuf_t *out, const char *plugin,
                               const json_t *settings, const char *path)
{
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)settings, k, e) {
        const char *sub = keep(a, path);
        if (!sub || add_plugin_setting(a, out, plugin, k, e, sub) != 0) return -1;
    }
    return 0;
}

static int apply_sections(applier_t *a)
{
    json_t *doc = a->p->doc, *v;
    if ((v = json_object_get(doc, "store"))) {
        const char *s = json_string_value(v);
        /* "sqlite" alone keeps the default path under the data directory */
        if (strcmp(s, "sqlite") != 0) {
            if (strncmp(s, "sqlite:", 7) != 0 && strncmp(s, "etcd:", 5) != 0)
                return fail(a->p, a->err, a->errlen, "store",
                            "expected \"sqlite\", \"sqlite:PATH\" or \"etcd:URL[,URL...]\"");
            if (set_option(a, "store", v, "store") != 0) return -1;
        }
    }
    if ((v = json_object_get(doc, "controllers")) &&
        set_option(a, "controllers", v, "controllers") != 0)
        return -1;
    if ((v = json_object_get(doc, "scheduler"))) {
        json_t *plugin = json_is_string(v) ? v : json_object_get(v, "plugin");
        json_t *settings = json_is_object(v) ? json_object_get(v, "settings") : NULL;
        if (plugin && set_option(a, "scheduler", plugin, "scheduler.plugin") != 0) return -1;
        const char *name = plugin ? json_string_value(plugin) : "scheduler-default";
        if (settings && json_object_size(settings)) {
            if (strcmp(name, "none") == 0)
                return fail(a->p, a->err, a->errlen, "scheduler.settings",
                            "settings for scheduler \"none\"");
            if (add_plugin_settings(a, &a->plugin_settings, name, settings,
                                    "scheduler.settings") != 0)
                return -1;
        }
    }
    if ((v = json_object_get(doc, "admission"))) {
        json_t *e;
        if ((e = json_object_get(v, "enable")) &&
            set_option(a, "enable-admission-plugins", e, "admission.enable") != 0)
            return -1;
        if ((e = json_object_get(v, "disable")) &&
            set_option(a, "disable-admission-plugins", e, "admission.disable") != 0)
            return -1;
        if ((e = json_object_get(v, "settings"))) {
            strbuf_t b = {0};
            const char *k;
            json_t *s;
            int rc = 0;
            json_object_foreach(e, k, s) {
                char path[256];
                snprintf(path, sizeof path, "admission.settings.%s", k);
                if ((rc = add_plugin_settings(a, &b, k, s, keep(a, path))) != 0) break;
            }
            json_t *j = rc == 0 && b.len && !b.failed ? json_string(b.p) : NULL;
            strbuf_free(&b);
            if (rc != 0) return -1;
            if (j && json_array_append_new(a->p->owned, j) == 0 &&
                set_option(a, "admission-plugin-settings", j, "admission.settings") != 0)
                return -1;
        }
    }
    if ((v = json_object_get(doc, "plugins"))) {
        json_t *e;
        if ((e = json_object_get(v, "load")) && set_option(a, "plugins", e, "plugins.load") != 0)
            return -1;
        if ((e = json_object_get(v, "settings"))) {
            const char *k;
            json_t *s;
            json_object_foreach(e, k, s) {
                char path[256];
                snprintf(path, sizeof path, "plugins.settings.%s", k);
                if (add_plugin_settings(a, &a->plugin_settings, k, s, keep(a, path)) != 0)
                    return -1;
            }
        }
    }
    if ((v = json_object_get(doc, "network"))) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            char path[256];
            snprintf(path, sizeof path, "network.%s", k);
            if (set_option(a, k, e, keep(a, path)) != 0) return -1;
        }
    }
    if ((v = json_object_get(doc, "server"))) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            char path[256];
            snprintf(path, sizeof path, "server.%s", k);
            if (!find_option(a, k)) {
                strbuf_t names = {0};
                for (size_t i = 0; i < a->nopts; i++) {
                    if (i) strbuf_add(&names, ", ");
                    strbuf_add(&names, a->opts[i].name);
                }
                fail(a->p, a->err, a->errlen, path,
                     "unknown server option; valid: %s", names.p ? names.p : "");
                strbuf_free(&names);
                return -1;
            }
            /* options about the profile itself are not set from one */
            if (strcmp(k, "profile") == 0 || strcmp(k, "print-profile") == 0)
                return fail(a->p, a->err, a->errlen, path,
                            "is a command-line option (a profile names its base with extends)");
            if (strcmp(k, "plugin-settings") == 0)
                return fail(a->p, a->err, a->errlen, path,
                            "plugin settings go in plugins.settings (or scheduler.settings)");
            if (set_option(a, k, e, keep(a, path)) != 0) return -1;
        }
    }
    if (a->plugin_settings.len) {
        if (a->plugin_settings.failed)
            return fail(a->p, a->err, a->errlen, "plugins.settings", "out of memory");
        /* kept by the profile: the settings point into it */
        json_t *s = json_string(a->plugin_settings.p);
        if (!s || json_array_append_new(a->p->owned, s) != 0)
            return fail(a->p, a->err, a->errlen, "plugins.settings", "out of memory");
        if (set_option(a, "plugin-settings", s, a->plugin_settings_path) != 0) return -1;
    }
    return 0;
}

/* Options whose values add up: plugin settings "P.S=V;..." */
static int accumulates(const option_t *o)
{
    size_t n = strlen(o->name);
    return o->type == OPT_STRING && n >= 15 && strcmp(o->name + n - 15, "plugin-settings") == 0;
}

int profile_apply(profile_t *p, const option_t *opts, size_t nopts, void *settings, char *err,
                  size_t errlen)
{
    applier_t a = {.p = p, .opts = opts, .nopts = nopts, .settings = settings, .err = err,
                   .errlen = errlen};
    a.set_by = calloc(nopts ? nopts : 1, sizeof *a.set_by);
    if (!a.set_by) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = apply_sections(&a);
    free(p->accumulated);
    p->accumulated = calloc(nopts ? nopts : 1, sizeof *p->accumulated);
    p->naccumulated = p->accumulated ? nopts : 0;
    for (size_t i = 0; rc == 0 && i < p->naccumulated; i++)
        if (a.set_by[i] && accumulates(&opts[i]))
            p->accumulated[i] = *(const char **)((char *)settings + opts[i].offset);
    free(a.set_by);
    strbuf_free(&a.plugin_settings);
    return rc;
}

int profile_merge_cli(profile_t *p, const option_t *opts, size_t nopts, void *settings)
{
    for (size_t i = 0; i < nopts && i < p->naccumulated; i++) {
        const char *mine = p->accumulated[i];
        const char **field = (const char **)((char *)settings + opts[i].offset);
        if (!mine || !*field || *field == mine) continue;
        size_t n = strlen(mine) + strlen(*field) + 2;
        char *m = malloc(n);
        if (!m) return -1;
        snprintf(m, n, "%s;%s", mine, *field);
        json_t *j = json_string(m);
        free(m);
        if (!j || json_array_append_new(p->owned, j) != 0) return -1;
        *field = json_string_value(j);
    }
    return 0;
}

json_t *profile_resolved(const profile_t *p, const option_t *opts, size_t nopts,
                         const void *settings)
{
    json_t *server = json_object();
    for (size_t i = 0; i < nopts; i++) {
        const char *field = (const char *)settings + opts[i].offset;
        json_t *v;
        if (strcmp(opts[i].name, "profile") == 0 || strcmp(opts[i].name, "print-profile") == 0)
            continue;
        switch (opts[i].type) {
        case OPT_STRING: {
            const char *s = *(const char *const *)field;
            v = s ? json_string(s) : json_null();
            break;
        }
        case OPT_INT: v = json_integer(*(const int *)field); break;
        case OPT_LIST: {
            /* every value of a repeatable option, in order */
            const option_list_t *l = (const option_list_t *)(const void *)field;
            v = json_array();
            for (int k = 0; k < l->n; k++) json_array_append_new(v, json_string(l->v[k]));
            break;
        }
        default: v = json_boolean(*(const int *)field); break;
        }
        json_object_set_new(server, opts[i].name, v);
    }
    const char *desc = json_string_value(json_object_get(p->doc, "description"));
    return json_pack("{s:s, s:s, s:s?, s:o, s:O}", "profile", profile_name(p), "origin",
                     p->origin, "description", desc, "server", server, "addons", p->addons);
}

int profile_parse_args(const char *prog, const char *usage, const option_t *opts, size_t nopts,
                       int argc, char **argv, void *settings, size_t settings_size,
                       profile_t **out)
{
    *out = NULL;
    /* first pass on a scratch copy: --help, bad options, and --profile */
    void *scratch = malloc(settings_size);
    if (!scratch) return -1;
    memcpy(scratch, settings, settings_size);
    int rc = options_parse(prog, usage, opts, nopts, argc, argv, scratch);
    const char *spec = NULL;
    for (size_t i = 0; rc == 0 && i < nopts; i++)
        if (strcmp(opts[i].name, "profile") == 0 && opts[i].type == OPT_STRING)
            spec = *(const char **)((char *)scratch + opts[i].offset);
    free(scratch);
    if (rc != 0) return rc;
    char err[2048];
    profile_t *p = profile_load(spec, err, sizeof err);
    if (!p || profile_apply(p, opts, nopts, settings, err, sizeof err) != 0) {
        fprintf(stderr, "%s: profile error: %s\n", prog, err);
        profile_free(p);
        return -1;
    }
    rc = options_parse(prog, usage, opts, nopts, argc, argv, settings);
    if (rc == 0 && profile_merge_cli(p, opts, nopts, settings) != 0) rc = -1;
    if (rc != 0) {
        profile_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

json_t *profile_addon_vars(const profile_t *p, const option_t *opts, size_t nopts,
                           const void *settings)
{
    json_t *r = profile_resolved(p, opts, nopts, settings);
    json_t *vars = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(r, "server"), k, v) {
        char name[128];
        size_t i = 0;
        for (; k[i] && i + 1 < sizeof name; i++)
            name[i] = k[i] == '-' ? '_' : (char)toupper((unsigned char)k[i]);
        name[i] = '\0';
        if (json_is_array(v)) { /* a repeatable option: its values, comma-separated */
            strbuf_t b = {0};
            size_t j;
            json_t *e;
            strbuf_add(&b, "");
            json_array_foreach(v, j, e) {
                if (j) strbuf_add(&b, ",");
                strbuf_add(&b, json_string_value(e));
            }
            if (!b.failed) json_object_set_new(vars, name, json_string(b.p));
            strbuf_free(&b);
        } else if (json_is_string(v)) json_object_set(vars, name, v);
        else if (json_is_integer(v)) {
            char num[32];
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            json_object_set_new(vars, name, json_string(num));
        } else if (json_is_boolean(v)) {
            json_object_set_new(vars, name, json_string(json_is_true(v) ? "true" : "false"));
        } else {
            json_object_set_new(vars, name, json_string(""));
        }
    }
    json_object_set_new(vars, "PROFILE", json_string(profile_name(p)));
    json_decref(r);
    return vars;
}
