/* core/cmd_plugins.c - `skiff plugins list`: each plugin with its kind,
 * version, origin and state. It asks the running server (GET
 * /skiff/v1/plugins with the admin kubeconfig, or the one given); with
 * --plugin-dir it asks no server and lists what a server started with
 * those folders would load, each file loaded once to check it. */
#define _GNU_SOURCE
#include "cmd_plugins.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include <skiff/client.h>

#include "cli/options.h"
#include "client_config.h"
#include "plugin/loader.h"
#include "plugin/registry.h"
#include "plugin/sources.h"
#include "util/log.h"

typedef struct plugins_settings {
    const char *data_dir;
    const char *kubeconfig;
    option_list_t plugin_dir;
    const char *output;
} plugins_settings_t;

static const option_t plugins_options[] = {
    {"data-dir", OPT_STRING, "DIR", "$HOME/.local/share/skiff",
     "the server's data directory (its admin kubeconfig is used)",
     offsetof(plugins_settings_t, data_dir)},
    {"kubeconfig", OPT_STRING, "FILE", NULL,
     "kubeconfig to reach the server with, instead of the admin one in --data-dir",
     offsetof(plugins_settings_t, kubeconfig)},
    {"plugin-dir", OPT_LIST, "DIR", NULL,
     "ask no server: list what a server started with these plugin folders would load "
     "(repeat it or separate folders with ':')",
     offsetof(plugins_settings_t, plugin_dir)},
    {"output", OPT_STRING, "FORMAT", "table", "table or json", offsetof(plugins_settings_t, output)},
};

static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v && *v ? v : "-";
}

static void print_table(json_t *items)
{
    static const char *const cols[] = {"name", "kind", "version", "origin", "state", "path"};
    static const char *const heads[] = {"NAME", "KIND", "VERSION", "ORIGIN", "STATE", "PATH"};
    enum { NCOLS = sizeof cols / sizeof *cols };
    int w[NCOLS];
    for (size_t c = 0; c < NCOLS; c++) w[c] = (int)strlen(heads[c]);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
        for (size_t c = 0; c < NCOLS; c++) {
            int n = (int)strlen(str(it, cols[c]));
            if (n > w[c]) w[c] = n;
        }
    for (size_t c = 0; c < NCOLS; c++) printf("%-*s   ", w[c], heads[c]);
    printf("REASON\n");
    json_array_foreach(items, i, it) {
        for (size_t c = 0; c < NCOLS; c++) printf("%-*s   ", w[c], str(it, cols[c]));
        printf("%s\n", str(it, "reason"));
    }
}

static int print_doc(json_t *doc, const char *output)
{
    if (strcmp(output, "json") == 0) {
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        print_table(json_object_get(doc, "items"));
    }
    return 0;
}

static int list_offline(plugins_settings_t *set)
{
    const char *dirs[64];
    char *bufs[OPTION_LIST_MAX] = {0};
    size_t n = 0;
    for (int i = 0; i < set->plugin_dir.n; i++)
        n = plugin_sources_split_dirs(set->plugin_dir.v[i], &bufs[i], dirs, n,
                                      sizeof dirs / sizeof *dirs);
    for (size_t i = 0; i < n; i++) {
        if (access(dirs[i], R_OK | X_OK) != 0) {
            fprintf(stderr, "skiff plugins list: --plugin-dir %s: %s\n", dirs[i], strerror(errno));
            for (int j = 0; j < OPTION_LIST_MAX; j++) free(bufs[j]);
            return 1;
        }
        plugin_loader_add_dir(dirs[i]);
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* loading messages go to the table, not to stderr */
    log_set_level(-1);
    plugin_sources_t *s = NULL;
    plugin_sources_opts_t o = {.loop = &loop, .dirs = dirs, .ndirs = n, .dry_run = 1};
    int rc = plugin_sources_load(&o, &s);
    plugin_sources_free(s);
    json_t *doc = plugin_registry_json();
    if (rc == 0) print_doc(doc, set->output);
    json_decref(doc);
    plugin_registry_clear();
    plugin_loader_reset_dirs();
    for (int i = 0; i < OPTION_LIST_MAX; i++) free(bufs[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc == 0 ? 0 : 1;
}

typedef struct answer {
    int done, status;
    json_t *obj;
} answer_t;

static void on_answer(void *data, int status, json_t *obj)
{
    answer_t *a = data;
    a->done = 1;
    a->status = status;
    a->obj = json_incref(obj);
}

static int list_online(plugins_settings_t *set)
{
    char path[1100];
    if (set->kubeconfig) {
        snprintf(path, sizeof path, "%s", set->kubeconfig);
    } else {
        const char *home = getenv("HOME");
        if (set->data_dir) snprintf(path, sizeof path, "%s/kubeconfig", set->data_dir);
        else snprintf(path, sizeof path, "%s/.local/share/skiff/kubeconfig", home ? home : ".");
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[1024], server[512] = "";
    skiff_client_t *c = client_from_kubeconfig(&loop, path, server, sizeof server, err, sizeof err);
    int code = 1;
    answer_t a = {0};
    if (!c) {
        fprintf(stderr, "skiff plugins list: %s\n", err);
        goto out;
    }
    if (skiff_client_get_path(c, "/skiff/v1/plugins", on_answer, &a) != 0) {
        fprintf(stderr, "skiff plugins list: cannot send the request\n");
        goto out;
    }
    while (!a.done && uv_run(&loop, UV_RUN_ONCE)) {
    }
    if (a.status == 200 && json_is_array(json_object_get(a.obj, "items"))) {
        code = print_doc(a.obj, set->output);
    } else if (a.status == 0) {
        fprintf(stderr, "skiff plugins list: no answer from %s: is the server running?\n",
                server);
    } else {
        const char *msg = json_string_value(json_object_get(a.obj, "message"));
        fprintf(stderr, "skiff plugins list: the server answered %d: %s\n", a.status,
                msg ? msg : "(no message)");
    }
out:
    json_decref(a.obj);
    if (c) c->vt->free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return code;
}

int cmd_plugins(int argc, char **argv)
{
    const char *usage =
        "Lists plugins with their kind, version, origin and state (loaded, started, standby,\n"
        "failed with the reason). Asks the running server, or with --plugin-dir lists what\n"
        "would load from those folders.\n"
        "  skiff plugins list [options]";
    size_t nopts = sizeof plugins_options / sizeof *plugins_options;
    if (argc < 1 || strcmp(argv[0], "list") != 0) {
        if (argc >= 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
            options_print_help("skiff plugins list", usage, plugins_options, nopts);
            return 0;
        }
        fprintf(stderr, "skiff plugins: expected `list` (see skiff plugins --help)\n");
        return 2;
    }
    plugins_settings_t set = {.output = "table"};
    int rc = options_parse("skiff plugins list", usage, plugins_options, nopts, argc - 1, argv + 1,
                           &set);
    if (rc != 0) return rc > 0 ? 0 : 2;
    if (strcmp(set.output, "table") != 0 && strcmp(set.output, "json") != 0) {
        fprintf(stderr, "skiff plugins list: --output must be table or json\n");
        return 2;
    }
    return set.plugin_dir.n ? list_offline(&set) : list_online(&set);
}
