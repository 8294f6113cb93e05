/* tests/unit/api_fixture.c - a real API server for unit tests. */
#include "api_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "object/registry.h"

int api_fixture_wait(api_fixture_t *f, int *flag)
{
    for (int i = 0; i < 200000 && !*flag; i++) uv_run(f->loop, UV_RUN_ONCE);
    return *flag;
}

static void on_ready(void *data, int status) { *(int *)data = status == 0 ? 1 : -1; }

static void on_http(void *data, const api_request_t *req, api_response_t *resp)
{
    api_server_handle(((api_fixture_t *)data)->api, req, resp);
}

int api_fixture_start(api_fixture_t *f, uv_loop_t *loop, api_server_opts_t opts, int with_http)
{
    memset(f, 0, sizeof *f);
    f->loop = loop;
    uv_loop_init(loop);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/skiff-test-api-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir) || registry_init() != 0) return -1;
    char err[512], path[1024], db[400];
    const char *build = getenv("SKIFF_BUILD_DIR");
    snprintf(path, sizeof path, "%s/plugins/.libs/storage-sqlite.so", build ? build : ".");
    f->plugin = plugin_load(path, loop, f->dir, err, sizeof err);
    if (!f->plugin || plugin_start(f->plugin, err, sizeof err) != 0) {
        fprintf(stderr, "# %s\n", err);
        return -1;
    }
    const skiff_store_vtable_t *vt = f->plugin->desc->vtable;
    snprintf(db, sizeof db, "%s/store.db", f->dir);
    if (vt->open(&f->plugin->ctx, db, &f->store) != 0) return -1;
    opts.loop = loop;
    opts.store = f->store;
    int ready = 0;
    if (api_server_new(&opts, on_ready, &ready, &f->api) != 0) return -1;
    if (api_fixture_wait(f, &ready) != 1) return -1;
    if (!with_http) return 0;
    http_server_opts_t ho = {.host = "127.0.0.1", .port = 0, .max_body = 3 << 20,
                             .max_header = 1 << 20, .handler = on_http, .handler_data = f};
    return http_server_start(loop, &ho, &f->http);
}

static void on_closed(void *data) { (*(int *)data)++; }

int api_fixture_stop(api_fixture_t *f)
{
    int closed = 0;
    if (f->http) {
        http_server_stop(f->http, on_closed, &closed);
        api_fixture_wait(f, &closed);
        closed = 0;
    }
    api_server_free(f->api, on_closed, &closed);
    api_fixture_wait(f, &closed);
    closed = 0;
    f->store->vt->close(f->store, on_closed, &closed);
    api_fixture_wait(f, &closed);
    uv_run(f->loop, UV_RUN_DEFAULT);
    plugin_unload(f->plugin);
    registry_shutdown();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0) return -1;
    return uv_loop_close(f->loop) == 0 ? 0 : -1;
}
