/* tests/unit/test_plugin_sources.c - which plugins load from --plugin-dir
 * folders and --plugins, and what the plugin table says of each: states,
 * origins, reasons, duplicates, hand-over to hosts by kind, Lua scripts
 * and the offline listing.
 *
 * Uses the small plugins built from tests/unit/plugins/ and the real
 * storage-sqlite, found under $SKIFF_BUILD_DIR. */
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include <skiff/errors.h>

#include "plugin/loader.h"
#include "plugin/registry.h"
#include "plugin/sources.h"
#include "util/log.h"

static char built[1200];  /* tests/unit/plugins/.libs */
static char sqlite_so[1200];
static char tmpdir[256];
static uv_loop_t loop;

static int group_setup(void **state)
{
    const char *b = getenv("SKIFF_BUILD_DIR");
    snprintf(built, sizeof built, "%s/tests/unit/plugins/.libs", b && *b ? b : ".");
    snprintf(sqlite_so, sizeof sqlite_so, "%s/plugins/.libs/storage-sqlite.so", b && *b ? b : ".");
    log_set_level(-1);
    return uv_loop_init(&loop);
}

static int group_teardown(void **state) { return uv_loop_close(&loop); }

static int test_setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-sources-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int test_teardown(void **state)
{
    plugin_registry_clear();
    plugin_loader_reset_dirs();
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* <tmpdir>/<sub>/<as>: a link to the built test plugin <file>.so (or to
 * target when it has a '/'); returns the folder. */
static const char *put(const char *sub, const char *as, const char *file)
{
    static char dir[512];
    char path[800], target[1400];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, as);
    if (strchr(file, '/')) snprintf(target, sizeof target, "%s", file);
    else snprintf(target, sizeof target, "%s/%s.so", built, file);
    assert_int_equal(symlink(target, path), 0);
    return dir;
}

/* The table's entry for name (borrowed from doc), or fail. */
static json_t *entry(json_t *doc, const char *name)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(doc, "items"), i, it)
        if (strcmp(json_string_value(json_object_get(it, "name")), name) == 0) return it;
    fail_msg("no entry for %s in the plugin table", name);
    return NULL;
}

static const char *get(json_t *doc, const char *name, const char *field)
{
    const char *v = json_string_value(json_object_get(entry(doc, name), field));
    return v ? v : "";
}

static size_t count(json_t *doc)
{
    return json_array_size(json_object_get(doc, "items"));
}

static void test_split_dirs(void **state)
{
    const char *dirs[8];
    char *a = NULL, *b = NULL;
    size_t n = plugin_sources_split_dirs("/a::/b", &a, dirs, 0, 8);
    n = plugin_sources_split_dirs("/c", &b, dirs, n, 8);
    assert_int_equal(n, 3);
    assert_string_equal(dirs[0], "/a");
    assert_string_equal(dirs[1], "/b");
    assert_string_equal(dirs[2], "/c");
    free(a);
    free(b);
}

static void test_folder_loads_everything_and_records_each(void **state)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", put("d", "counting_controller.so", "counting_controller"));
    put("d", "bad_abi.so", "bad_abi");
    put("d", "runtime_stub.so", "runtime_stub");
    put("d", "storage-sqlite.so", sqlite_so);
    put("d", "notes.txt", "no_symbol");
    put("d", ".hidden.so", "no_symbol");
    const char *dirs[] = {dir};
    plugin_sources_opts_t o = {.loop = &loop, .data_dir = tmpdir, .dirs = dirs, .ndirs = 1};
    plugin_sources_t *s = NULL;
    assert_int_equal(plugin_sources_load(&o, &s), 0);
    json_t *doc = plugin_registry_json();
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "PluginList");
    /* counting, bad_abi, runtime, storage: not the .txt nor the hidden file */
    assert_int_equal(count(doc), 4);
    assert_string_equal(get(doc, "counting-controller", "state"), "loaded");
    assert_string_equal(get(doc, "counting-controller", "origin"), "plugin-dir");
    assert_string_equal(get(doc, "counting-controller", "kind"), "controller");
    assert_string_equal(get(doc, "counting-controller", "version"), "0.0.1");
    /* its declared settings, as --output json shows them */
    json_t *st = json_array_get(json_object_get(entry(doc, "counting-controller"), "settings"), 0);
    assert_string_equal(json_string_value(json_object_get(st, "name")), "marker");
    assert_string_equal(json_string_value(json_object_get(st, "type")), "string");
    assert_string_equal(json_string_value(json_object_get(st, "default")), "x");
    assert_string_equal(get(doc, "bad_abi", "state"), "failed");
    assert_non_null(strstr(get(doc, "bad_abi", "reason"), "built for SDK ABI 44"));
    assert_string_equal(get(doc, "storage-sqlite", "state"), "stopped");
    assert_non_null(strstr(get(doc, "storage-sqlite", "reason"), "--store"));
    json_decref(doc);

    /* hand-over by kind: the controller once, nothing for admission */
    size_t n = 0;
    loaded_plugin_t **c = plugin_sources_take(s, SKIFF_PLUGIN_CONTROLLER, &n);
    assert_int_equal(n, 1);
    assert_string_equal(c[0]->name, "counting-controller");
    assert_null(plugin_sources_take(s, SKIFF_PLUGIN_CONTROLLER, &n));
    assert_int_equal(n, 0);
    assert_null(plugin_sources_take(s, SKIFF_PLUGIN_ADMISSION, &n));
    /* what no host took says why */
    plugin_sources_settle(s);
    doc = plugin_registry_json();
    assert_string_equal(get(doc, "runtime-stub", "state"), "loaded");
    assert_non_null(strstr(get(doc, "runtime-stub", "reason"), "runtime plugins"));
    json_decref(doc);
    plugin_registry_forget(c[0]);
    plugin_unload(c[0]);
    free(c);
    plugin_sources_free(s);
}

static void test_names_and_duplicates(void **state)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", put("d", "counting-controller.so", "counting_controller"));
    /* a second file with the same descriptor name (a copy: a link to the
     * same file is the same plugin) */
    char from[1400], to[700], cmd[2200];
    snprintf(from, sizeof from, "%s/counting_controller.so", built);
    snprintf(to, sizeof to, "%s/zz-copy.so", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
    put("d", "zz-link.so", "counting_controller");
    plugin_loader_add_dir(dir);
    const char *dirs[] = {dir};
    plugin_sources_opts_t o = {.loop = &loop,
                               .data_dir = tmpdir,
                               .dirs = dirs,
                               .ndirs = 1,
                               /* in the folder already; then one that is nowhere */
                               .names = "counting-controller, no-such-plugin"};
    plugin_sources_t *s = NULL;
    assert_int_equal(plugin_sources_load(&o, &s), 0);
    json_t *doc = plugin_registry_json();
    /* counting-controller once loaded, its copy failed, the unknown name failed */
    assert_int_equal(count(doc), 3);
    size_t i, copies = 0;
    json_t *it;
    json_array_foreach(json_object_get(doc, "items"), i, it) {
        if (strcmp(json_string_value(json_object_get(it, "name")), "counting-controller") != 0)
            continue;
        copies++;
        const char *path = json_string_value(json_object_get(it, "path"));
        if (strstr(path, "zz-copy")) {
            assert_string_equal(json_string_value(json_object_get(it, "state")), "failed");
            assert_non_null(strstr(json_string_value(json_object_get(it, "reason")),
                                   "another plugin named counting-controller is already loaded"));
        } else {
            assert_string_equal(json_string_value(json_object_get(it, "state")), "loaded");
        }
    }
    assert_int_equal(copies, 2);
    assert_string_equal(get(doc, "no-such-plugin", "state"), "failed");
    assert_non_null(strstr(get(doc, "no-such-plugin", "reason"), "not found"));
    json_decref(doc);
    plugin_sources_free(s); /* unloads what nobody took */
}

/* <tmpdir>/<sub>/<name>: a file holding text. */
static void write_file(const char *sub, const char *name, const char *text)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", tmpdir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", tmpdir, sub, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_lua_scripts_load_like_shared_objects(void **state)
{
    write_file("d", "hello.lua",
               "return skiff.plugin{ name = \"hello\", kind = \"controller\",\n"
               "  start = function() end }\n");
    write_file("d", "broken.lua", "return skiff.plugin{ name = \"broken\",\n  start = function( end }\n");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/d", tmpdir);
    const char *dirs[] = {dir};
    plugin_sources_opts_t o = {.loop = &loop, .data_dir = tmpdir, .dirs = dirs, .ndirs = 1};
    plugin_sources_t *s = NULL;
    assert_int_equal(plugin_sources_load(&o, &s), 0);
    json_t *doc = plugin_registry_json();
    assert_string_equal(get(doc, "hello", "state"), "loaded");
    assert_string_equal(get(doc, "hello", "kind"), "controller");
    assert_string_equal(get(doc, "broken", "state"), "failed");
    assert_non_null(strstr(get(doc, "broken", "reason"), "broken.lua:2:"));
    json_decref(doc);
    size_t n = 0;
    loaded_plugin_t **c = plugin_sources_take(s, SKIFF_PLUGIN_CONTROLLER, &n);
    assert_int_equal(n, 1);
    plugin_registry_forget(c[0]);
    plugin_unload(c[0]);
    free(c);
    plugin_sources_free(s);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_offline_listing(void **state)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", put("d", "counting_controller.so", "counting_controller"));
    put("d", "no_symbol.so", "no_symbol");
    const char *dirs[] = {dir};
    plugin_sources_opts_t o = {.loop = &loop, .dirs = dirs, .ndirs = 1, .dry_run = 1};
    plugin_sources_t *s = NULL;
    assert_int_equal(plugin_sources_load(&o, &s), 0);
    size_t n = 0;
    assert_null(plugin_sources_take(s, SKIFF_PLUGIN_CONTROLLER, &n)); /* nothing stays loaded */
    plugin_sources_free(s);
    json_t *doc = plugin_registry_json();
    assert_string_equal(get(doc, "counting-controller", "state"), "would-load");
    assert_string_equal(get(doc, "no_symbol", "state"), "failed");
    /* the plugins of the build tree, which load when named */
    assert_string_equal(get(doc, "storage-sqlite", "state"), "available");
    assert_string_equal(get(doc, "storage-sqlite", "origin"), "built-in");
    assert_non_null(strstr(get(doc, "storage-sqlite", "reason"), "--store"));
    /* (controllers need SDK functions this test program does not link in) */
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_dirs, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_folder_loads_everything_and_records_each, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_names_and_duplicates, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_lua_scripts_load_like_shared_objects, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_offline_listing, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("plugin sources", tests, group_setup, group_teardown);
}
