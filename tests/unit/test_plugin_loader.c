/* tests/unit/test_plugin_loader.c - the plugin loader: search order, the ABI
 * check, what the user reads when loading fails, settings and ctx->log.
 *
 * Uses the real storage-sqlite plugin and the small plugins built from
 * tests/unit/plugins/, found under $SKIFF_BUILD_DIR. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include <skiff/errors.h>
#include <skiff/store.h>

#include "plugin/loader.h"

static char build_dir[1024];
static char sqlite_so[1200];
static char test_plugins[1200]; /* directory holding bad_abi.so and friends */
static char tmpdir[256];
static uv_loop_t loop;

static int group_setup(void **state)
{
    const char *b = getenv("SKIFF_BUILD_DIR");
    snprintf(build_dir, sizeof build_dir, "%s", b && b[0] ? b : ".");
    snprintf(sqlite_so, sizeof sqlite_so, "%s/plugins/.libs/storage-sqlite.so", build_dir);
    snprintf(test_plugins, sizeof test_plugins, "%s/tests/unit/plugins/.libs", build_dir);
    return uv_loop_init(&loop);
}

static int group_teardown(void **state) { return uv_loop_close(&loop); }

static int test_setup(void **state)
{
    plugin_loader_reset_dirs();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-loader-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int test_teardown(void **state)
{
    plugin_loader_reset_dirs();
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Makes <tmpdir>/<sub>/<name>.so a link to `target`; returns the directory. */
static const char *link_as(const char *sub, const char *name, const char *target)
{
    static char dir[512];
    char path[700];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    assert_int_equal(symlink(target, path), 0);
    return dir;
}

static void test_loads_storage_sqlite(void **state)
{
    char err[512] = "";
    loaded_plugin_t *p = plugin_load(sqlite_so, &loop, "/tmp/data", err, sizeof err);
    if (p == NULL) fprintf(stderr, "# %s\n", err);
    assert_non_null(p);
    assert_string_equal(p->name, "storage-sqlite");
    assert_string_equal(p->path, sqlite_so);
    assert_int_equal(p->state, PLUGIN_LOADED);
    assert_int_equal(p->desc->abi_version, SKIFF_ABI_VERSION);
    assert_int_equal(p->desc->kind, SKIFF_PLUGIN_STORAGE);
    assert_non_null(p->desc->vtable);
    const skiff_store_vtable_t *vt = p->desc->vtable;
    assert_non_null(vt->open);
    assert_non_null(vt->watch);
    assert_ptr_equal(p->ctx.loop, &loop);
    assert_string_equal(p->ctx.name, "storage-sqlite");
    assert_string_equal(p->ctx.data_dir, "/tmp/data");

    /* Its settings table, as `skiff plugins list` shows it. */
    int found_batch = 0, found_cache = 0;
    assert_non_null(p->desc->settings);
    for (const skiff_setting_t *s = p->desc->settings; s->name; s++) {
        assert_non_null(s->help);
        fprintf(stderr, "# setting %s (default %s): %s\n", s->name,
                s->default_value ? s->default_value : "-", s->help);
        found_batch |= strcmp(s->name, "max-batch") == 0;
        found_cache |= strcmp(s->name, "cache-size") == 0;
    }
    assert_true(found_batch && found_cache);
    assert_int_equal(plugin_start(p, err, sizeof err), 0);
    assert_int_equal(p->state, PLUGIN_STARTED);
    plugin_unload(p);
}

static void test_search_dirs_in_order(void **state)
{
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/bad_abi.so", test_plugins);
    const char *a = link_as("a", "thing", bad);
    char dir_a[512];
    snprintf(dir_a, sizeof dir_a, "%s", a);
    const char *b = link_as("b", "thing", sqlite_so);
    char dir_b[512];
    snprintf(dir_b, sizeof dir_b, "%s", b);
    char err[512] = "";

    /* First directory wins: its thing.so is the bad one. */
    plugin_loader_add_dir(dir_a);
    plugin_loader_add_dir(dir_b);
    assert_null(plugin_load("thing", &loop, NULL, err, sizeof err));
    assert_non_null(strstr(err, dir_a));

    plugin_loader_reset_dirs();
    plugin_loader_add_dir(dir_b);
    plugin_loader_add_dir(dir_a);
    loaded_plugin_t *p = plugin_load("thing", &loop, NULL, err, sizeof err);
    assert_non_null(p);
    assert_string_equal(p->name, "storage-sqlite");
    char want[700];
    snprintf(want, sizeof want, "%s/thing.so", dir_b);
    assert_string_equal(p->path, want);
    plugin_unload(p);
}

static void test_bad_abi_refused(void **state)
{
    plugin_loader_add_dir(test_plugins);
    char err[512] = "";
    loaded_plugin_t *p = plugin_load("bad_abi", &loop, NULL, err, sizeof err);
    assert_null(p);
    fprintf(stderr, "# %s\n", err);
    char theirs[32], ours[32];
    snprintf(theirs, sizeof theirs, "ABI %u", 44u);
    snprintf(ours, sizeof ours, "ABI %u", SKIFF_ABI_VERSION);
    assert_non_null(strstr(err, theirs));
    assert_non_null(strstr(err, ours));
    assert_non_null(strstr(err, "bad_abi"));
    assert_non_null(strstr(err, "bad_abi.so")); /* the file */
    assert_non_null(strstr(err, "rebuild"));    /* what to do */
}

static void test_missing_symbol(void **state)
{
    char path[1300], err[512] = "";
    snprintf(path, sizeof path, "%s/no_symbol.so", test_plugins);
    assert_null(plugin_load(path, &loop, NULL, err, sizeof err));
    fprintf(stderr, "# %s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, SKIFF_PLUGIN_SYMBOL));
}

static void test_not_found(void **state)
{
    plugin_loader_add_dir(tmpdir);
    char err[512] = "";
    assert_null(plugin_load("no-such-plugin", &loop, NULL, err, sizeof err));
    fprintf(stderr, "# %s\n", err);
    assert_non_null(strstr(err, "no-such-plugin"));
    assert_non_null(strstr(err, "not found"));
    char want[400];
    snprintf(want, sizeof want, "%s/no-such-plugin.so", tmpdir);
    assert_non_null(strstr(err, want));

    assert_null(plugin_load("/nonexistent/dir/x.so", &loop, NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/dir/x.so"));
}

static void test_not_a_shared_object(void **state)
{
    char path[400], err[512] = "";
    snprintf(path, sizeof path, "%s/junk.so", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    plugin_loader_add_dir(tmpdir);
    assert_null(plugin_load("junk", &loop, NULL, err, sizeof err));
    fprintf(stderr, "# %s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot load plugin junk"));
}

static void test_init_failure_reported(void **state)
{
    plugin_loader_add_dir(test_plugins);
    char err[512] = "";
    loaded_plugin_t *p = plugin_load("init_fails", &loop, NULL, err, sizeof err);
    assert_non_null(p);
    assert_string_equal(p->name, "init-fails");
    int rc = plugin_start(p, err, sizeof err);
    assert_int_equal(rc, SKIFF_EIO);
    assert_int_equal(p->state, PLUGIN_FAILED);
    fprintf(stderr, "# %s\n", err);
    assert_non_null(strstr(err, "init-fails"));
    assert_non_null(strstr(err, "init failed"));
    assert_non_null(strstr(err, skiff_strerror(SKIFF_EIO)));
    plugin_unload(p);

    /* With the setting that lets it start. */
    p = plugin_load("init_fails", &loop, NULL, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(plugin_set_setting(p, "mode", "ok", err, sizeof err), 0);
    assert_int_equal(plugin_start(p, err, sizeof err), 0);
    assert_int_equal(p->state, PLUGIN_STARTED);
    plugin_unload(p);
}

static void test_settings(void **state)
{
    plugin_loader_add_dir(test_plugins);
    char err[512] = "";
    loaded_plugin_t *p = plugin_load("init_fails", &loop, NULL, err, sizeof err);
    assert_non_null(p);
    /* Declared default, then the profile's value, then a second value wins. */
    assert_string_equal(p->ctx.setting(&p->ctx, "mode"), "fail");
    assert_string_equal(p->ctx.setting(&p->ctx, "retries"), "3");
    assert_int_equal(plugin_set_setting(p, "retries", "5", err, sizeof err), 0);
    assert_string_equal(p->ctx.setting(&p->ctx, "retries"), "5");
    assert_int_equal(plugin_set_setting(p, "retries", "6", err, sizeof err), 0);
    assert_string_equal(p->ctx.setting(&p->ctx, "retries"), "6");
    assert_string_equal(p->ctx.setting(&p->ctx, "mode"), "fail");
    assert_string_equal(p->settings[0], "retries");
    assert_string_equal(p->settings[1], "6");
    assert_null(p->settings[2]);

    /* Undeclared: refused with a message naming it and the known ones. */
    assert_int_equal(plugin_set_setting(p, "colour", "red", err, sizeof err), SKIFF_EINVAL);
    fprintf(stderr, "# %s\n", err);
    assert_non_null(strstr(err, "colour"));
    assert_non_null(strstr(err, "init-fails"));
    assert_non_null(strstr(err, "mode"));
    assert_null(p->ctx.setting(&p->ctx, "colour"));
    plugin_unload(p);
}

static void test_log_prefixed_with_name(void **state)
{
    plugin_loader_add_dir(test_plugins);
    char err[512] = "";
    loaded_plugin_t *p = plugin_load("init_fails", &loop, NULL, err, sizeof err);
    assert_non_null(p);
    char path[400];
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    p->ctx.log(&p->ctx, SKIFF_LOG_WARN, "disk %d%% full", 93);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    char line[512] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "init-fails: disk 93% full"));
    plugin_unload(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loads_storage_sqlite, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_search_dirs_in_order, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_abi_refused, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_missing_symbol, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_not_found, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_not_a_shared_object, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_init_failure_reported, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_settings, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_log_prefixed_with_name, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("plugin loader", tests, group_setup, group_teardown);
}
